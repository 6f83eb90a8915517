/*
 * options.h - the nearfs command line and its -o mount options.
 *
 * nearfs [-f] [-d] [-o OPTION[,OPTION...]] ORIGIN MOUNTPOINT
 *
 * Options that nearfs does not know but FUSE does (allow_other, uid=,
 * fsname=, ...) are collected in fuse_args for fuse_session_new().
 */
#ifndef NEARFS_OPTIONS_H
#define NEARFS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "origin.h"

struct nearfs_options {
	bool foreground;	/* -f, and -d */
	bool debug;		/* -d */
	bool show_help;		/* --help, -h */
	bool show_version;	/* --version, -V */

	char *origin;		/* as given: s3://bucket/prefix or a path */
	char *mountpoint;	/* absolute; ROOT with nomount */
	/* -o nomount: serve mountpoint over the control socket to the
	 * preload library, without a FUSE mount. */
	bool nomount;

	/* Parsed from origin when it is s3://; points into owned strings. */
	bool is_s3;
	char *bucket;
	char *prefix;		/* "" or "a/b" */
	char *dir;		/* absolute path of a directory origin */

	struct cache_config cache;	/* cache_dir, sizes, ttls, write mode */
	char *cache_dir;	/* owned storage behind cache.dir */
	struct s3_config s3;	/* endpoint, region, profile, style, ... */
	char *endpoint, *region, *profile;	/* owned storage behind s3 */
	int log_level;		/* LOG_ERR .. LOG_DEBUG */

	/* preload_fetch=: files up to this size are fetched whole before
	 * their local copy is lent to a program; 0 never fetches. */
	uint64_t preload_fetch;
	/* passthrough: complete copies are read through FUSE passthrough
	 * (fs/passthrough.h). */
	bool passthrough;
	bool allow_other;	/* FUSE lets other users access the mount */

	/* metrics=: where the HTTP metrics endpoint listens, a loopback
	 * address without brackets; NULL when off. */
	char *metrics_address;
	unsigned metrics_port;

	/* uid=, gid=, umask=: what every file and directory shows, as the
	 * high-level libfuse API offers them; -1 when not given. */
	long owner_uid;
	long owner_gid;
	int umask;

	/* Arguments for fuse_session_new(): argv[0], then "-o" and the
	 * FUSE options that passed through (allow_other, fsname=, ...). */
	int fuse_argc;
	char **fuse_argv;
};

/*
 * Parse argv into opts (defaults filled in first).  Returns 0, or -1 with
 * a message in err that names the value and what to do.  Environment
 * defaults (AWS_ENDPOINT_URL, XDG_CACHE_HOME, HOME) are read here;
 * AWS_REGION and ~/.aws files are read by the S3 origin.
 */
int options_parse(int argc, char **argv, struct nearfs_options *opts,
		  char *err, size_t errlen);

void options_free(struct nearfs_options *opts);

/*
 * Apply list, "OPTION=VALUE[,OPTION=VALUE...]" as in -o, to cfg and
 * *log_level, for options that may change while mounted: ttl, attr_ttl,
 * neg_ttl, dir_ttl, cache_size, min_free, max_dirty, writeback_delay and
 * log_level.  Values are parsed and checked as at mount time.  Returns 0,
 * or -1 with a message in err, leaving cfg and *log_level unchanged,
 * for an unknown option, one that cannot change while mounted, or an
 * invalid value.
 */
int options_parse_runtime(const char *list, struct cache_config *cfg,
			  int *log_level, char *err, size_t errlen);

/* Print the usage text to stdout. */
void options_print_help(const char *argv0);

/* The name of mode in messages and status output: "write-through",
 * "write-back" or "write-around". */
const char *write_mode_name(enum write_mode mode);

/* "10G", "512K", "4096": powers of 1024.  Returns 0 or -1. */
int parse_size(const char *text, uint64_t *bytes);

/* "60s", "500ms", "2m", "1h", "1d", "30" (seconds).  Returns 0 or -1. */
int parse_duration(const char *text, uint64_t *ms);

#endif
