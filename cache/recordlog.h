/*
 * recordlog.h - append-only files of checksummed records, the base of the
 * cache index and of the write-back journal.
 *
 * A file starts with a header (8-byte magic, format version, one 32-bit
 * parameter such as the chunk size) and continues with records: a type,
 * a length, an XXH3-64 checksum of the payload, and the payload.  Replay
 * stops at the first record that fails its checksum or its replay: that
 * is the torn tail of a crash, and the file is cut there.  Appends are
 * not synced unless recordlog_sync() is called.  Compaction writes a new
 * file next to the old one and renames it over, so a crash during it
 * leaves the old file intact.  Callers serialize access.
 */
#ifndef NEARFS_RECORDLOG_H
#define NEARFS_RECORDLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RECORDLOG_PAYLOAD_MAX (1u << 16)

struct recordlog_kind {
	const char *magic;	/* exactly 8 characters */
	uint32_t version;	/* format version this build writes */
	uint32_t oldest_version;	/* oldest version it reads; 0: only
					 * version */
	const char *what;	/* "cache index", for messages */
	const char *fix;	/* what to do with a file of another version */
};

/* Replay one record; a negative return ends the replay there. */
typedef int (*recordlog_replay_fn)(void *arg, uint8_t type,
				   const char *payload, uint32_t len);

struct recordlog;

/*
 * Open or create the file at path and replay it through fn.  When the
 * file was written with another param, *param_changed is set and the
 * file starts empty.  A file of an older version that kind reads keeps
 * its header until a compaction rewrites it.  Returns 0, or a negative
 * errno with a message in err (-EPROTO for a bad magic or an unknown
 * format version).
 */
int recordlog_open(const char *path, const struct recordlog_kind *kind,
		   uint32_t param, recordlog_replay_fn fn, void *arg,
		   struct recordlog **out, int *param_changed, char *err,
		   size_t errlen);
void recordlog_close(struct recordlog *log);

/* The result of recordlog_read() on a file. */
struct recordlog_scan {
	uint32_t version;	/* the header's format version */
	uint32_t param;		/* the header's parameter */
	uint64_t valid;		/* bytes of the header and of the records
				 * replayed; 0 when the header is torn */
	uint64_t size;		/* bytes in the file */
};

/*
 * Replay the file at path through fn, as recordlog_open() does, but
 * without changing or creating it.  Replay stops at the first torn or
 * damaged record, at offset scan->valid.  Returns 0, or a negative errno
 * with a message in err (-ENOENT for a missing file, -EPROTO for a bad
 * magic or an unknown format version).
 */
int recordlog_read(const char *path, const struct recordlog_kind *kind,
		   recordlog_replay_fn fn, void *arg,
		   struct recordlog_scan *scan, char *err, size_t errlen);

/* Read only the header parameter of the file at path, with the errors of
 * recordlog_read(), and -ENODATA when the file is shorter than a header
 * (a crash cut it; recordlog_open() starts it empty). */
int recordlog_read_param(const char *path, const struct recordlog_kind *kind,
			 uint32_t *param, char *err, size_t errlen);

/*
 * Append a record made of up to three parts (b and c may be NULL).
 * Returns 0 or a negative errno.  A failed append leaves the file as it
 * was, also after a short write on a full disk.  The first failure in a
 * row is logged, except ENOSPC and EDQUOT, which the caller reports.
 */
int recordlog_append(struct recordlog *log, uint8_t type, const void *a,
		     size_t alen, const void *b, size_t blen, const void *c,
		     size_t clen);

/* Whether an append failed since the log was opened or last compacted:
 * the file then lacks records, and a compaction from the caller's state
 * makes it whole again. */
bool recordlog_lost(const struct recordlog *log);

/* Make the appended records durable (fdatasync).  0 or -errno. */
int recordlog_sync(struct recordlog *log);

/* Bytes in the file. */
uint64_t recordlog_size(const struct recordlog *log);

/* The format version of the file that appends go to: the version read
 * from its header, or kind->version once it was started empty or
 * compacted. */
uint32_t recordlog_version(const struct recordlog *log);

/*
 * Start a compact copy: later appends go to a new file until
 * recordlog_compact_end() syncs it and renames it over the log, or drops
 * it when ok is 0.  0 or a negative errno.
 */
int recordlog_compact_begin(struct recordlog *log);
int recordlog_compact_end(struct recordlog *log, int ok);

#endif
