/* options.c - parse the nearfs command line and its -o mount options. */
#include "options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "roots.h"

#define USAGE "usage: nearfs [-f] [-d] [-o OPTION[,OPTION...]] " \
	      "ORIGIN MOUNTPOINT"
#define SEE_HELP "see nearfs --help for the list"

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)

#define DEFAULT_CACHE_SIZE (10 * GIB)
#define DEFAULT_MIN_FREE_PCT 5
#define DEFAULT_CHUNK_SIZE (4 * MIB)
#define MIN_CHUNK_SIZE (64 * KIB)
#define MAX_CHUNK_SIZE (64 * MIB)
#define MAX_MIN_FREE_PCT 99
#define DEFAULT_TTL_MS 60000
#define DEFAULT_NEG_TTL_MS 5000
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_DIRTY GIB
#define DEFAULT_READAHEAD (128 * MIB)

/* Keys one recursive listing of a subtree may cover: ten pages of 1000. */
#define DEFAULT_DIR_PREFETCH 10000
#define DEFAULT_WRITEBACK_DELAY_MS 5000
#define ROOT_CACHE_DIR "/var/cache/nearfs"

/* Growing comma-separated list of the -o options handed to FUSE. */
struct fuse_opts {
	char *text;
	size_t len;
};

struct parse_state {
	struct nearfs_options *opts;
	struct fuse_opts fuse;
	const char *positional[2];
	int npositional;
	bool permissions_set;	/* default_permissions or its negation */
	/* The first FUSE option given, which nomount rejects; "" if none. */
	char fuse_given[32];
	char *err;
	size_t errlen;
};

struct option_def;
typedef int (*option_apply_fn)(struct parse_state *ps,
			       const struct option_def *def,
			       const char *value);

/* One nearfs option: its syntax, where it is stored and its help line. */
struct option_def {
	const char *name;
	const char *metavar;	/* NULL: a flag that takes no value */
	option_apply_fn apply;
	size_t field;		/* offset in struct nearfs_options */
	const char *example;	/* a valid use, for error messages */
	const char *help;	/* may hold '\n' for continuation lines */
};

static int fail(struct parse_state *ps, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct parse_state *ps, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ps->err, ps->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Parse the leading decimal digits of text and point *end past them. */
static int parse_digits(const char *text, uint64_t *value, const char **end)
{
	uint64_t v = 0;
	const char *p = text;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned digit = *p - '0';

		if (v > (UINT64_MAX - digit) / 10)
			return -1;
		v = v * 10 + digit;
	}
	*value = v;
	*end = p;
	return 0;
}

static int multiply(uint64_t value, uint64_t unit, uint64_t *out)
{
	if (unit && value > UINT64_MAX / unit)
		return -1;
	*out = value * unit;
	return 0;
}

int parse_size(const char *text, uint64_t *bytes)
{
	static const char units[] = "KMGT";
	const char *p, *unit;
	uint64_t value, scale = 1;

	if (!text || parse_digits(text, &value, &p))
		return -1;
	unit = *p ? strchr(units, *p >= 'a' ? *p - 'a' + 'A' : *p) : NULL;
	if (unit) {
		scale = 1ull << (10 * (unit - units + 1));
		p++;
		if ((p[0] == 'i' || p[0] == 'I') &&
		    (p[1] == 'B' || p[1] == 'b'))
			p++;
	}
	if (*p == 'B' || *p == 'b')
		p++;
	if (*p)
		return -1;
	return multiply(value, scale, bytes);
}

int parse_duration(const char *text, uint64_t *ms)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	const char *p;
	uint64_t value;

	if (!text || parse_digits(text, &value, &p))
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(p, units[i].suffix) == 0)
			return multiply(value, units[i].ms, ms);
	return -1;
}

static uint64_t *field_u64(struct parse_state *ps,
			   const struct option_def *def)
{
	return (uint64_t *)((char *)ps->opts + def->field);
}

static char **field_str(struct parse_state *ps, const struct option_def *def)
{
	return (char **)((char *)ps->opts + def->field);
}

static int replace_string(struct parse_state *ps, char **slot,
			  const char *value)
{
	char *copy = strdup(value);

	if (!copy)
		return fail(ps, "out of memory");
	free(*slot);
	*slot = copy;
	return 0;
}

static int apply_string(struct parse_state *ps, const struct option_def *def,
			const char *value)
{
	return replace_string(ps, field_str(ps, def), value);
}

static int apply_size(struct parse_state *ps, const struct option_def *def,
		      const char *value)
{
	if (parse_size(value, field_u64(ps, def)) == 0)
		return 0;
	return fail(ps, "invalid size '%s' for %s: use a number with an "
		    "optional K, M, G or T suffix, for example %s",
		    value, def->name, def->example);
}

static int apply_duration(struct parse_state *ps,
			  const struct option_def *def, const char *value)
{
	if (parse_duration(value, field_u64(ps, def)) == 0)
		return 0;
	return fail(ps, "invalid duration '%s' for %s: use a number with an "
		    "optional ms, s, m, h or d suffix, for example %s",
		    value, def->name, def->example);
}

static int apply_count(struct parse_state *ps, const struct option_def *def,
		       const char *value)
{
	const char *end;

	if (parse_digits(value, field_u64(ps, def), &end) == 0 && !*end)
		return 0;
	return fail(ps, "invalid count '%s' for %s: use a whole number, for "
		    "example %s", value, def->name, def->example);
}

static int apply_timeout(struct parse_state *ps,
			 const struct option_def *def, const char *value)
{
	if (apply_duration(ps, def, value))
		return -1;
	if (ps->opts->s3.timeout_ms == 0)
		return fail(ps, "invalid timeout '%s': use a duration greater "
			    "than 0, for example %s", value, def->example);
	return 0;
}

static int apply_min_free(struct parse_state *ps,
			  const struct option_def *def, const char *value)
{
	struct cache_config *cache = &ps->opts->cache;
	size_t len = strlen(value);
	uint64_t n;
	const char *end;

	if (len > 1 && value[len - 1] == '%') {
		if (parse_digits(value, &n, &end) || end != value + len - 1 ||
		    n > MAX_MIN_FREE_PCT)
			return fail(ps, "invalid percentage '%s' for min_free: "
				    "use 0%% to %d%%, for example min_free=5%%",
				    value, MAX_MIN_FREE_PCT);
		cache->min_free_pct = (unsigned)n;
		cache->min_free = 0;
		return 0;
	}
	if (parse_size(value, &cache->min_free))
		return fail(ps, "invalid size '%s' for min_free: use a "
			    "percentage or a number with an optional K, M, G "
			    "or T suffix, for example %s", value,
			    def->example);
	cache->min_free_pct = 0;
	return 0;
}

static int apply_chunk_size(struct parse_state *ps,
			    const struct option_def *def, const char *value)
{
	uint64_t bytes;

	if (parse_size(value, &bytes))
		return apply_size(ps, def, value);
	if (bytes < MIN_CHUNK_SIZE || bytes > MAX_CHUNK_SIZE ||
	    (bytes & (bytes - 1)))
		return fail(ps, "invalid chunk_size '%s': use a power of two "
			    "from 64K to 64M, for example %s", value,
			    def->example);
	ps->opts->cache.chunk_size = (uint32_t)bytes;
	return 0;
}

static int apply_write_mode(struct parse_state *ps,
			    const struct option_def *def, const char *value)
{
	static const struct {
		const char *name;
		enum write_mode mode;
	} modes[] = {
		{ "through", WRITE_THROUGH },
		{ "back", WRITE_BACK },
		{ "around", WRITE_AROUND },
	};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(value, modes[i].name) == 0) {
			ps->opts->cache.write_mode = modes[i].mode;
			return 0;
		}
	}
	return fail(ps, "invalid write_mode '%s': use through, back or "
		    "around, for example %s", value, def->example);
}

const char *write_mode_name(enum write_mode mode)
{
	switch (mode) {
	case WRITE_THROUGH:
		return "write-through";
	case WRITE_BACK:
		return "write-back";
	case WRITE_AROUND:
		return "write-around";
	}
	return "unknown";
}

static int apply_fsync(struct parse_state *ps, const struct option_def *def,
		       const char *value)
{
	if (strcmp(value, "local") == 0) {
		ps->opts->cache.fsync_local = true;
		return 0;
	}
	if (strcmp(value, "origin") == 0) {
		ps->opts->cache.fsync_local = false;
		return 0;
	}
	return fail(ps, "invalid fsync '%s': use local or origin, for "
		    "example %s", value, def->example);
}

/* Whether the host part of url, after "://", is not empty and ends in
 * no port or in a port of 1 to 65535. */
static bool url_port_valid(const char *url)
{
	const char *host = strstr(url, "://") + 3;
	const char *end = host + strcspn(host, "/?#");
	const char *p = host;
	unsigned long port;
	char *stop;

	if (host == end)
		return false;
	if (*p == '[') {	/* an IPv6 address */
		while (p < end && *p != ']')
			p++;
		if (p == end)
			return false;
		p++;
	} else {
		while (p < end && *p != ':')
			p++;
		if (p == host)
			return false;
	}
	if (p == end)
		return true;
	if (*p != ':' || !(p[1] >= '0' && p[1] <= '9'))
		return false;
	port = strtoul(p + 1, &stop, 10);
	return stop == end && port >= 1 && port <= 65535;
}

static int apply_endpoint(struct parse_state *ps,
			  const struct option_def *def, const char *value)
{
	if (strncmp(value, "http://", 7) != 0 &&
	    strncmp(value, "https://", 8) != 0)
		return fail(ps, "invalid endpoint '%s': use a URL that starts "
			    "with http:// or https://, for example %s",
			    value, def->example);
	if (!url_port_valid(value))
		return fail(ps, "invalid endpoint '%s': give a host, and after "
			    "a colon a port of 1 to 65535 or no colon, for "
			    "example %s", value, def->example);
	return apply_string(ps, def, value);
}

static int apply_path_style(struct parse_state *ps,
			    const struct option_def *def, const char *value)
{
	int path_style = strcmp(def->name, "path_style") == 0;

	if (ps->opts->s3.path_style == !path_style)
		return fail(ps, "path_style and virtual_host exclude each "
			    "other: give one of them");
	ps->opts->s3.path_style = path_style;
	return 0;
}

static int apply_passthrough(struct parse_state *ps,
			     const struct option_def *def, const char *value)
{
	ps->opts->passthrough = true;
	return 0;
}

static int apply_anonymous(struct parse_state *ps,
			   const struct option_def *def, const char *value)
{
	ps->opts->s3.anonymous = true;
	return 0;
}

static int fuse_opts_add(struct parse_state *ps, const char *opt)
{
	struct fuse_opts *f = &ps->fuse;
	size_t add = strlen(opt) + (f->len ? 1 : 0);
	char *text = realloc(f->text, f->len + add + 1);

	if (!text)
		return fail(ps, "out of memory");
	snprintf(text + f->len, add + 1, "%s%s", f->len ? "," : "", opt);
	f->text = text;
	f->len += add;
	return 0;
}

static int apply_read_only(struct parse_state *ps,
			   const struct option_def *def, const char *value)
{
	ps->opts->cache.read_only = true;
	ps->opts->s3.read_only = true;
	return fuse_opts_add(ps, "ro");
}

static int apply_nomount(struct parse_state *ps, const struct option_def *def,
			 const char *value)
{
	ps->opts->nomount = true;
	return 0;
}

static int apply_log_level(struct parse_state *ps,
			   const struct option_def *def, const char *value)
{
	int level = log_level_parse(value);

	if (level < 0)
		return fail(ps, "invalid log_level '%s': use error, warn, "
			    "info or debug", value);
	ps->opts->log_level = level;
	return 0;
}

/*
 * metrics=ADDRESS:PORT, the address of the HTTP metrics endpoint: an IPv4
 * address in 127.0.0.0/8 or [::1], because the endpoint has no access
 * control, and a port from 1 to 65535.
 */
static int apply_metrics(struct parse_state *ps, const struct option_def *def,
			 const char *value)
{
	const char *colon = strrchr(value, ':');
	struct in_addr in4;
	struct in6_addr in6;
	char host[INET6_ADDRSTRLEN + 2];
	uint64_t port;
	const char *end;
	size_t len;

	if (!colon || parse_digits(colon + 1, &port, &end) || *end ||
	    port == 0 || port > 65535)
		return fail(ps, "invalid metrics address '%s': use ADDRESS:PORT "
			    "with a port from 1 to 65535, for example %s", value,
			    def->example);
	len = (size_t)(colon - value);
	if (len >= sizeof(host))
		len = sizeof(host) - 1;
	memcpy(host, value, len);
	host[len] = '\0';
	if (len > 2 && host[0] == '[' && host[len - 1] == ']') {
		memmove(host, host + 1, len - 2);
		host[len - 2] = '\0';
		if (inet_pton(AF_INET6, host, &in6) != 1 ||
		    !IN6_IS_ADDR_LOOPBACK(&in6))
			goto out_not_loopback;
	} else if (inet_pton(AF_INET, host, &in4) != 1 ||
		   (ntohl(in4.s_addr) >> 24) != 127) {
		goto out_not_loopback;
	}
	if (replace_string(ps, &ps->opts->metrics_address, host))
		return -1;
	ps->opts->metrics_port = (unsigned)port;
	return 0;

out_not_loopback:
	return fail(ps, "invalid metrics address '%s': the endpoint has no "
		    "access control, so it listens on loopback addresses only: "
		    "use 127.0.0.1:PORT (or another address in 127.0.0.0/8) or "
		    "[::1]:PORT, for example %s", value, def->example);
}

/* uid=N, gid=N (decimal ids) and umask=NNN (octal). */
static int apply_owner(struct parse_state *ps, const struct option_def *def,
		       const char *value)
{
	int base = strcmp(def->name, "umask") == 0 ? 8 : 10;
	const char *digits = base == 8 ? "01234567" : "0123456789";
	unsigned long max = base == 8 ? 0777 : 0xfffffffeUL;
	/* strtoul() alone would also take leading blanks and a sign. */
	bool digits_only = value[0] && !value[strspn(value, digits)];
	unsigned long n = 0;

	errno = 0;
	if (digits_only)
		n = strtoul(value, NULL, base);
	if (!digits_only || errno || n > max)
		return fail(ps, "invalid %s '%s': use %s", def->name, value,
			    base == 8 ? "an octal mask such as umask=022" :
			    "a numeric id such as uid=1000");
	if (base == 8)
		ps->opts->umask = n;
	else if (def->name[0] == 'u')
		ps->opts->owner_uid = n;
	else
		ps->opts->owner_gid = n;
	return 0;
}

#define FIELD(member) offsetof(struct nearfs_options, member)

static const struct option_def nearfs_option_defs[] = {
	{ "cache_dir", "PATH", apply_string, FIELD(cache_dir),
	  "cache_dir=/var/tmp/nearfs",
	  "cache directory (default: $XDG_CACHE_HOME/nearfs,\n"
	  "else ~/.cache/nearfs; " ROOT_CACHE_DIR " for root)" },
	{ "cache_size", "SIZE", apply_size, FIELD(cache.size_max),
	  "cache_size=20G", "maximum bytes of cached data (default: 10G)" },
	{ "min_free", "SIZE|N%", apply_min_free, 0, "min_free=2G",
	  "space to keep free on the cache filesystem\n(default: 5%)" },
	{ "chunk_size", "SIZE", apply_chunk_size, 0, "chunk_size=4M",
	  "unit of caching, a power of two from 64K to 64M\n"
	  "(default: 4M)" },
	{ "ttl", "DURATION", apply_duration, FIELD(cache.ttl_ms), "ttl=60s",
	  "time before cached data is checked against the\n"
	  "origin (default: 60s)" },
	{ "attr_ttl", "DURATION", apply_duration, FIELD(cache.attr_ttl_ms),
	  "attr_ttl=60s", "time attributes are cached (default: 60s)" },
	{ "neg_ttl", "DURATION", apply_duration, FIELD(cache.neg_ttl_ms),
	  "neg_ttl=5s",
	  "time a missing path is remembered, 0 disables\n(default: 5s)" },
	{ "dir_ttl", "DURATION", apply_duration, FIELD(cache.dir_ttl_ms),
	  "dir_ttl=60s", "time directory listings are cached (default: 60s)" },
	{ "dir_prefetch", "N", apply_count, FIELD(cache.dir_prefetch),
	  "dir_prefetch=50000",
	  "S3: a listed directory with subdirectories gets\n"
	  "the listings below it from one recursive listing\n"
	  "of up to N keys, in the background; 0 disables\n"
	  "(default: 10000)" },
	{ "readahead", "SIZE", apply_size, FIELD(cache.readahead),
	  "readahead=256M", "bytes fetched ahead of a sequential reader, in\n"
	  "parallel requests; 0 disables (default: 128M)" },
	{ "preload_fetch", "SIZE", apply_size, FIELD(preload_fetch),
	  "preload_fetch=256M",
	  "preload library: fetch the missing chunks of\n"
	  "files up to SIZE before lending their local copy;\n"
	  "0 lends complete copies only (default: 0)" },
	{ "write_mode", "through|back|around", apply_write_mode, 0,
	  "write_mode=back",
	  "through: close and fsync return once the origin\n"
	  "stores the file (default); back: close returns\n"
	  "at once and the file is uploaded later; around:\n"
	  "like through, but written data is not cached" },
	{ "max_dirty", "SIZE", apply_size, FIELD(cache.max_dirty),
	  "max_dirty=4G",
	  "write_mode=back: bytes closed but not uploaded\n"
	  "before writers wait, at least one chunk\n"
	  "(default: 1G)" },
	{ "writeback_delay", "DURATION", apply_duration,
	  FIELD(cache.writeback_delay_ms), "writeback_delay=30s",
	  "write_mode=back: time a closed file stays\n"
	  "unchanged before its upload, 0 uploads at once\n"
	  "(default: 5s)" },
	{ "fsync", "local|origin", apply_fsync, 0, "fsync=local",
	  "write_mode=back: fsync returns once the file is\n"
	  "in the local journal (local) or on the origin\n"
	  "(default: origin)" },
	{ "endpoint", "URL", apply_endpoint, FIELD(endpoint),
	  "endpoint=http://127.0.0.1:9000",
	  "S3 endpoint URL (default: $AWS_ENDPOINT_URL, else AWS)" },
	{ "region", "NAME", apply_string, FIELD(region), "region=us-east-1",
	  "S3 region (default: $AWS_REGION, ~/.aws/config,\n"
	  "else us-east-1)" },
	{ "profile", "NAME", apply_string, FIELD(profile), "profile=default",
	  "credentials profile (default: $AWS_PROFILE,\nelse default)" },
	{ "path_style", NULL, apply_path_style, 0, "path_style",
	  "address buckets as ENDPOINT/BUCKET\n(default: automatic)" },
	{ "virtual_host", NULL, apply_path_style, 0, "virtual_host",
	  "address buckets as BUCKET.ENDPOINT\n(default: automatic)" },
	{ "anonymous", NULL, apply_anonymous, 0, "anonymous",
	  "send unsigned requests, for public buckets" },
	{ "uid", "N", apply_owner, 0, "uid=1000",
	  "owner shown for every file (default: the stored\n"
	  "owner, else the daemon's user)" },
	{ "gid", "N", apply_owner, 0, "gid=1000",
	  "group shown for every file (default: the stored\n"
	  "group, else the daemon's group)" },
	{ "umask", "OCTAL", apply_owner, 0, "umask=022",
	  "permission bits to clear on every file (default:\nnone)" },
	{ "passthrough", NULL, apply_passthrough, 0, "passthrough",
	  "serve reads of complete cached copies from the\n"
	  "local copy through FUSE passthrough (Linux 6.9+,\n"
	  "root), without the page cache (default: off)" },
	{ "ro", NULL, apply_read_only, 0, "ro",
	  "mount read-only (default: read-write)" },
	{ "nomount", NULL, apply_nomount, 0, "nomount",
	  "serve MOUNTPOINT without FUSE, to programs run\n"
	  "with libnearfs-preload.so; it need not exist" },
	{ "log_level", "LEVEL", apply_log_level, 0, "log_level=info",
	  "error, warn, info or debug (default: info)" },
	{ "timeout", "DURATION", apply_timeout, FIELD(s3.timeout_ms),
	  "timeout=30s", "time limit of one S3 request attempt; retries\n"
	  "stop after three times that (default: 30s)" },
	{ "metrics", "ADDRESS:PORT", apply_metrics, 0, "metrics=127.0.0.1:9100",
	  "serve the counters for Prometheus at\n"
	  "http://ADDRESS:PORT/metrics; ADDRESS in 127.0.0.0/8\n"
	  "or [::1] (default: off)" },
};

#define N_OPTION_DEFS (sizeof(nearfs_option_defs) / \
		       sizeof(nearfs_option_defs[0]))

/*
 * Options that fuse_session_new() of libfuse 3.14 accepts (its own and
 * its mount options), handed over unchanged.  A trailing '=' marks an
 * option that takes a value.
 */
static const char *const fuse_passthrough[] = {
	"allow_other", "allow_root", "default_permissions", "auto_unmount",
	"blkdev", "debug", "fsname=", "subtype=", "max_read=", "blksize=",
	"context=", "fscontext=", "defcontext=", "rootcontext=", "user=",
	"suid", "nosuid", "dev", "nodev", "exec", "noexec", "atime",
	"noatime", "sync", "async", "dirsync",
};

/*
 * Options that mount(8), mount.fuse3 and fstab hand over, meaningless to
 * nearfs and unknown to libfuse, so dropped.  The access time options
 * after "rw" are among them because nearfs stores no access times and
 * fuse_session_new() of libfuse 3.14 rejects them.
 */
static const char *const ignored_options[] = {
	"_netdev", "nofail", "auto", "noauto", "user", "users", "nouser",
	"owner", "group", "defaults", "rw", "relatime", "norelatime",
	"strictatime", "nostrictatime", "diratime", "nodiratime", "lazytime",
	"nolazytime",
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static bool list_has(const char *const *list, size_t n, const char *name,
		     size_t namelen, bool *takes_value)
{
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(list[i]);
		bool valued = len > 0 && list[i][len - 1] == '=';

		if (valued)
			len--;
		if (len == namelen && strncmp(list[i], name, len) == 0) {
			if (takes_value)
				*takes_value = valued;
			return true;
		}
	}
	return false;
}

static const struct option_def *find_def(const char *name, size_t len)
{
	for (size_t i = 0; i < N_OPTION_DEFS; i++) {
		const struct option_def *def = &nearfs_option_defs[i];

		if (strlen(def->name) == len && strncmp(def->name, name,
							len) == 0)
			return def;
	}
	return NULL;
}

static int apply_nearfs_option(struct parse_state *ps,
			       const struct option_def *def,
			       const char *value)
{
	if (!def->metavar && value)
		return fail(ps, "option '%s' takes no value: use -o %s",
			    def->name, def->name);
	if (def->metavar && (!value || !*value))
		return fail(ps, "missing value for %s: use %s=%s, for "
			    "example %s", def->name, def->name,
			    def->metavar, def->example);
	return def->apply(ps, def, value);
}

static int apply_fuse_option(struct parse_state *ps, const char *opt,
			     size_t namelen, const char *value,
			     bool takes_value)
{
	if (takes_value && (!value || !*value))
		return fail(ps, "missing value for %.*s: use %.*s=VALUE",
			    (int)namelen, opt, (int)namelen, opt);
	if (!takes_value && value)
		return fail(ps, "option '%.*s' takes no value: use -o %.*s",
			    (int)namelen, opt, (int)namelen, opt);
	return fuse_opts_add(ps, opt);
}

/* Apply one item of a -o list: "name" or "name=value". */
static int apply_option(struct parse_state *ps, const char *opt)
{
	const char *eq = strchr(opt, '=');
	size_t len = eq ? (size_t)(eq - opt) : strlen(opt);
	const char *value = eq ? eq + 1 : NULL;
	const struct option_def *def = find_def(opt, len);
	bool takes_value;

	if (def)
		return apply_nearfs_option(ps, def, value);
	/* Before the FUSE list: "user" is dropped, "user=NAME" kept. */
	if ((!eq && list_has(ignored_options, ARRAY_LEN(ignored_options),
			     opt, len, NULL)) ||
	    strncmp(opt, "x-", 2) == 0 || strncmp(opt, "comment=", 8) == 0)
		return 0;
	if (strcmp(opt, "nodefault_permissions") == 0) {
		ps->permissions_set = true;
		return 0;
	}
	if (list_has(fuse_passthrough, ARRAY_LEN(fuse_passthrough), opt, len,
		     &takes_value)) {
		if (strcmp(opt, "allow_other") == 0)
			ps->opts->allow_other = true;
		if (strcmp(opt, "default_permissions") == 0)
			ps->permissions_set = true;
		if (!ps->fuse_given[0])
			snprintf(ps->fuse_given, sizeof(ps->fuse_given),
				 "%.*s", (int)len, opt);
		return apply_fuse_option(ps, opt, len, value, takes_value);
	}
	return fail(ps, "unknown option '%.*s'; " SEE_HELP, (int)len, opt);
}

/* Apply a comma-separated list with apply, skipping empty items. */
static int apply_option_list(struct parse_state *ps, const char *list,
			     int (*apply)(struct parse_state *ps,
					  const char *opt))
{
	char *copy = strdup(list);
	char *save = NULL;
	int ret = 0;

	if (!copy)
		return fail(ps, "out of memory");
	for (char *opt = strtok_r(copy, ",", &save); opt && ret == 0;
	     opt = strtok_r(NULL, ",", &save))
		ret = apply(ps, opt);
	free(copy);
	return ret;
}

/* Apply "-f", "-d", "-fd", "-o LIST" or "-oLIST".  A separate -o
 * argument moves *index past its list. */
static int apply_short_flags(struct parse_state *ps, int argc, char **argv,
			     int *index)
{
	const char *arg = argv[*index];
	struct nearfs_options *opts = ps->opts;

	for (const char *c = arg + 1; *c; c++) {
		switch (*c) {
		case 'f':
			opts->foreground = true;
			break;
		case 'd':
			opts->debug = true;
			opts->foreground = true;
			break;
		case 'h':
			opts->show_help = true;
			break;
		case 'V':
			opts->show_version = true;
			break;
		case 'n':	/* mount(8) hands these to mount helpers: */
		case 's':	/* no mtab, sloppy, verbose */
		case 'v':
			break;
		case 'o':
			if (c[1])
				return apply_option_list(ps, c + 1,
							 apply_option);
			if (*index + 1 >= argc)
				return fail(ps, "missing value after -o: use "
					    "-o OPTION[,OPTION...]; "
					    SEE_HELP);
			return apply_option_list(ps, argv[++*index],
						 apply_option);
		default:
			return fail(ps, "unknown option '-%c'; " SEE_HELP,
				    *c);
		}
	}
	return 0;
}

static int add_positional(struct parse_state *ps, const char *arg)
{
	if (ps->npositional == 2)
		return fail(ps, "unexpected argument '%s': give only ORIGIN "
			    "and MOUNTPOINT\n" USAGE, arg);
	ps->positional[ps->npositional++] = arg;
	return 0;
}

static int parse_args(struct parse_state *ps, int argc, char **argv)
{
	bool options_end = false;
	int ret = 0;

	for (int i = 1; i < argc && ret == 0; i++) {
		const char *arg = argv[i];

		if (options_end || arg[0] != '-' || arg[1] == '\0')
			ret = add_positional(ps, arg);
		else if (strcmp(arg, "--") == 0)
			options_end = true;
		else if (strcmp(arg, "--help") == 0)
			ps->opts->show_help = true;
		else if (strcmp(arg, "--version") == 0)
			ps->opts->show_version = true;
		else if (arg[1] == '-')
			ret = fail(ps, "unknown option '%s'; " SEE_HELP, arg);
		else
			ret = apply_short_flags(ps, argc, argv, &i);
	}
	return ret;
}

static void set_defaults(struct nearfs_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->cache.size_max = DEFAULT_CACHE_SIZE;
	opts->cache.min_free_pct = DEFAULT_MIN_FREE_PCT;
	opts->cache.chunk_size = DEFAULT_CHUNK_SIZE;
	opts->cache.ttl_ms = DEFAULT_TTL_MS;
	opts->cache.attr_ttl_ms = DEFAULT_TTL_MS;
	opts->cache.neg_ttl_ms = DEFAULT_NEG_TTL_MS;
	opts->cache.dir_ttl_ms = DEFAULT_TTL_MS;
	opts->cache.dir_prefetch = DEFAULT_DIR_PREFETCH;
	opts->cache.write_mode = WRITE_THROUGH;
	opts->cache.max_dirty = DEFAULT_MAX_DIRTY;
	opts->cache.readahead = DEFAULT_READAHEAD;
	opts->cache.writeback_delay_ms = DEFAULT_WRITEBACK_DELAY_MS;
	opts->cache.fsync_local = false;
	opts->s3.path_style = -1;
	opts->s3.timeout_ms = DEFAULT_TIMEOUT_MS;
	opts->log_level = LOG_INFO;
	opts->owner_uid = -1;
	opts->owner_gid = -1;
	opts->umask = -1;
}

/* S3 rules: 3 to 63 characters of [a-z0-9.-], a letter or digit at both
 * ends, no "..", and not in the form of an IPv4 address. */
static bool is_valid_bucket(const char *name)
{
	size_t len = strlen(name);
	int dots = 0;
	bool all_digits_dots = true;

	if (len < 3 || len > 63)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (!alnum && c != '.' && c != '-')
			return false;
		if ((i == 0 || i == len - 1) && !alnum)
			return false;
		if (c == '.' && name[i + 1] == '.')
			return false;
		dots += c == '.';
		if (c != '.' && (c < '0' || c > '9'))
			all_digits_dots = false;
	}
	return !(all_digits_dots && dots == 3);
}

static int parse_s3_origin(struct parse_state *ps, const char *origin)
{
	struct nearfs_options *opts = ps->opts;
	const char *rest = origin + 5;	/* after "s3://" */
	const char *slash = strchr(rest, '/');
	size_t bucket_len = slash ? (size_t)(slash - rest) : strlen(rest);
	size_t prefix_len;
	const char *prefix = slash ? slash : "";

	opts->bucket = strndup(rest, bucket_len);
	if (!opts->bucket)
		return fail(ps, "out of memory");
	if (!is_valid_bucket(opts->bucket))
		return fail(ps, "invalid bucket name '%s' in '%s': use 3 to 63 "
			    "lowercase letters, digits, '.' or '-', starting "
			    "and ending with a letter or digit, as in "
			    "s3://my-bucket/prefix", opts->bucket, origin);

	while (*prefix == '/')
		prefix++;
	prefix_len = strlen(prefix);
	while (prefix_len > 0 && prefix[prefix_len - 1] == '/')
		prefix_len--;
	opts->prefix = strndup(prefix, prefix_len);
	if (!opts->prefix)
		return fail(ps, "out of memory");
	opts->is_s3 = true;
	opts->s3.bucket = opts->bucket;
	opts->s3.prefix = opts->prefix;
	return 0;
}

static int parse_dir_origin(struct parse_state *ps, const char *origin)
{
	struct stat st;

	ps->opts->dir = realpath(origin, NULL);
	if (!ps->opts->dir)
		return fail(ps, "origin directory '%s' not found (%s): give "
			    "the path of an existing directory or "
			    "s3://BUCKET[/PREFIX]", origin, strerror(errno));
	if (stat(ps->opts->dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return fail(ps, "origin '%s' is not a directory: give the "
			    "path of a directory or s3://BUCKET[/PREFIX]",
			    origin);
	return 0;
}

static int parse_origin(struct parse_state *ps, const char *origin)
{
	if (replace_string(ps, &ps->opts->origin, origin))
		return -1;
	if (strncmp(origin, "s3://", 5) == 0)
		return parse_s3_origin(ps, origin);
	return parse_dir_origin(ps, origin);
}

static int parse_mountpoint(struct parse_state *ps, const char *path)
{
	struct stat st;
	int err;

	ps->opts->mountpoint = realpath(path, NULL);
	if (!ps->opts->mountpoint) {
		err = errno;
		if (err == ENOTCONN)
			return fail(ps, "mountpoint '%s' is a stale FUSE "
				    "mount: unmount it with fusermount3 -u "
				    "%s", path, path);
		return fail(ps, "mountpoint '%s' not found (%s): create it "
			    "with mkdir -p %s", path, strerror(err), path);
	}
	if (stat(ps->opts->mountpoint, &st) < 0 || !S_ISDIR(st.st_mode))
		return fail(ps, "mountpoint '%s' is not a directory: give the "
			    "path of an empty directory", path);
	return 0;
}

/*
 * The ROOT of -o nomount: an absolute path that need not exist, kept
 * without empty and "." components and without a trailing slash.  It is
 * compared as a string with the paths that programs use, so ".." and
 * "/" itself are rejected.
 */
static int parse_nomount_root(struct parse_state *ps, const char *path)
{
	char root[PATH_MAX];
	int ret = roots_normalize(path, false, root, sizeof(root));

	if (ret == -ENAMETOOLONG)
		return fail(ps, "invalid nomount root '%s': longer than %d "
			    "bytes, or a name longer than %d", path,
			    PATH_MAX - 1, NAME_MAX);
	if (ret && path[0] != '/')
		return fail(ps, "invalid nomount root '%s': give an absolute "
			    "path, such as /data", path);
	if (ret)
		return fail(ps, "invalid nomount root '%s': give it without "
			    "'..'", path);
	if (strcmp(root, "/") == 0)
		return fail(ps, "invalid nomount root '%s': / would take over "
			    "every path; give a folder such as /data", path);
	return replace_string(ps, &ps->opts->mountpoint, root);
}

/* Return path made absolute against the working directory, with
 * trailing slashes removed; NULL with errno set on failure. */
static char *join_cwd(const char *path)
{
	char cwd[PATH_MAX], *full;
	size_t len;

	if (path[0] == '/') {
		full = strdup(path);
	} else {
		if (!getcwd(cwd, sizeof(cwd)))
			return NULL;
		if (asprintf(&full, "%s/%s", cwd, path) < 0)
			return NULL;
	}
	if (!full)
		return NULL;
	len = strlen(full);
	while (len > 1 && full[len - 1] == '/')
		full[--len] = '\0';
	return full;
}

/*
 * Make path absolute and free of symbolic links, although its last
 * components may not exist yet: the longest existing ancestor is
 * resolved and the rest appended unchanged.  NULL with errno set on
 * failure.
 */
static char *absolute_path(const char *path)
{
	char *full = join_cwd(path), *real = NULL, *out = NULL;
	size_t cut;

	if (!full)
		return NULL;
	for (cut = strlen(full); cut > 0; cut--) {
		char saved = full[cut];

		if (saved != '\0' && saved != '/')
			continue;
		full[cut] = '\0';
		real = realpath(full, NULL);
		full[cut] = saved;
		if (real)
			break;
	}
	if (!real) {
		/* Only "/" is left, and it always resolves. */
		return full;
	}
	if (asprintf(&out, "%s%s", strcmp(real, "/") == 0 ? "" : real,
		     full + cut) < 0)
		out = NULL;
	free(real);
	free(full);
	return out;
}

/* True when path is dir or lies below it.  Both must be absolute. */
static bool is_within(const char *path, const char *dir)
{
	size_t len = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return true;
	return strncmp(path, dir, len) == 0 &&
	       (path[len] == '\0' || path[len] == '/');
}

static int default_cache_dir(struct parse_state *ps, char **out)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	struct passwd *pw;
	int n;

	if (geteuid() == 0)
		n = asprintf(out, "%s", ROOT_CACHE_DIR);
	else if (xdg && xdg[0] == '/')
		n = asprintf(out, "%s/nearfs", xdg);
	else if (home && home[0] == '/')
		n = asprintf(out, "%s/.cache/nearfs", home);
	/* Options are parsed before the daemon starts threads. */
	/* cppcheck-suppress getpwuidCalled */
	else if ((pw = getpwuid(geteuid())) && pw->pw_dir)
		n = asprintf(out, "%s/.cache/nearfs", pw->pw_dir);
	else
		return fail(ps, "cannot find a cache directory: HOME is not "
			    "set; give one with -o cache_dir=PATH");
	if (n < 0)
		return fail(ps, "out of memory");
	return 0;
}

static int resolve_cache_dir(struct parse_state *ps)
{
	struct nearfs_options *opts = ps->opts;
	char *chosen = opts->cache_dir, *abs;
	int err;

	if (!chosen && default_cache_dir(ps, &chosen))
		return -1;
	abs = absolute_path(chosen);
	err = errno;
	if (!abs) {
		fail(ps, "cannot resolve cache_dir '%s': %s", chosen,
		     strerror(err));
		if (chosen != opts->cache_dir)
			free(chosen);
		return -1;
	}
	if (chosen != opts->cache_dir)
		free(chosen);
	free(opts->cache_dir);
	opts->cache_dir = abs;
	opts->cache.dir = abs;
	return 0;
}

/* Whether the host of an http:// or https:// URL is an IP address, which
 * cannot take a bucket name in front of it. */
static bool url_host_is_ip(const char *url)
{
	const char *host = strstr(url, "://");
	char name[64];
	struct in_addr addr;
	size_t n;

	if (!host)
		return false;
	host += 3;
	if (host[0] == '[')
		return true;
	n = strcspn(host, ":/");
	if (n >= sizeof(name))
		return false;
	memcpy(name, host, n);
	name[n] = '\0';
	return inet_pton(AF_INET, name, &addr) == 1;
}

static int resolve_endpoint(struct parse_state *ps)
{
	struct nearfs_options *opts = ps->opts;
	const char *env = getenv("AWS_ENDPOINT_URL");
	const char *s3_only = opts->endpoint ? "endpoint" :
			      opts->region ? "region" :
			      opts->profile ? "profile" :
			      opts->s3.path_style == 1 ? "path_style" :
			      opts->s3.path_style == 0 ? "virtual_host" : NULL;

	if (!opts->is_s3 && s3_only)
		return fail(ps, "%s applies to an S3 origin (s3://BUCKET), and "
			    "%s is a directory: drop the option", s3_only,
			    opts->origin);
	if (!opts->endpoint && opts->is_s3 && env && *env) {
		if (strncmp(env, "http://", 7) != 0 &&
		    strncmp(env, "https://", 8) != 0)
			return fail(ps, "invalid AWS_ENDPOINT_URL '%s': use a "
				    "URL that starts with http:// or "
				    "https://, or give -o endpoint=URL", env);
		if (replace_string(ps, &opts->endpoint, env))
			return -1;
	}
	if (opts->is_s3 && opts->s3.path_style == 0 && opts->endpoint &&
	    url_host_is_ip(opts->endpoint))
		return fail(ps, "virtual_host needs an endpoint with a host "
			    "name, and %s has an IP address: drop "
			    "virtual_host, or give the endpoint by name",
			    opts->endpoint);
	opts->s3.endpoint = opts->endpoint;
	opts->s3.region = opts->region;
	opts->s3.profile = opts->profile;
	return 0;
}

/* Reject layouts where the cache or the mount would contain itself. */
static int check_layout(struct parse_state *ps)
{
	const struct nearfs_options *opts = ps->opts;
	const char *cache = opts->cache_dir, *mnt = opts->mountpoint;

	if (opts->dir && is_within(cache, opts->dir))
		return fail(ps, "cache_dir '%s' is inside the origin directory "
			    "'%s': choose a cache_dir outside it with -o "
			    "cache_dir=PATH", cache, opts->dir);
	if (is_within(mnt, cache))
		return fail(ps, "mountpoint '%s' is inside cache_dir '%s': "
			    "choose a mountpoint outside the cache directory",
			    mnt, cache);
	if (is_within(cache, mnt))
		return fail(ps, "cache_dir '%s' is inside the mountpoint '%s': "
			    "choose a cache_dir outside it with -o "
			    "cache_dir=PATH", cache, mnt);
	/* Without FUSE the daemon reads the origin directly, so a root
	 * inside the origin contains nothing of itself. */
	if (opts->dir && !opts->nomount && strcmp(mnt, opts->dir) != 0 &&
	    is_within(mnt, opts->dir))
		return fail(ps, "mountpoint '%s' is inside the origin "
			    "directory '%s', so the mount would contain "
			    "itself: choose a mountpoint outside it",
			    mnt, opts->dir);
	return 0;
}

static int check_sizes(struct parse_state *ps)
{
	const struct cache_config *cache = &ps->opts->cache;

	if (cache->size_max < cache->chunk_size)
		return fail(ps, "cache_size %llu is smaller than chunk_size "
			    "%u: give a cache_size of at least one chunk, for "
			    "example cache_size=10G",
			    (unsigned long long)cache->size_max,
			    cache->chunk_size);
	if (cache->max_dirty < cache->chunk_size)
		return fail(ps, "max_dirty %llu is smaller than chunk_size "
			    "%u: give a max_dirty of at least one chunk, for "
			    "example max_dirty=1G",
			    (unsigned long long)cache->max_dirty,
			    cache->chunk_size);
	return 0;
}

static int build_fuse_argv(struct parse_state *ps, const char *argv0)
{
	struct nearfs_options *opts = ps->opts;
	char **argv;
	int argc = 0;

	/* Other users see the files: let the kernel check the modes. */
	if (opts->allow_other && !ps->permissions_set &&
	    fuse_opts_add(ps, "default_permissions") < 0)
		return -1;
	argv = calloc(4, sizeof(*argv));
	if (!argv)
		return fail(ps, "out of memory");
	opts->fuse_argv = argv;
	argv[argc] = strdup(argv0 ? argv0 : "nearfs");
	if (!argv[argc++])
		return fail(ps, "out of memory");
	if (ps->fuse.len) {
		argv[argc] = strdup("-o");
		if (!argv[argc++])
			return fail(ps, "out of memory");
		argv[argc++] = ps->fuse.text;
		ps->fuse.text = NULL;
	}
	opts->fuse_argc = argc;
	return 0;
}

static int finish(struct parse_state *ps, const char *argv0)
{
	struct nearfs_options *opts = ps->opts;

	if (ps->npositional == 0)
		return fail(ps, "missing ORIGIN and MOUNTPOINT\n" USAGE);
	if (ps->npositional == 1)
		return fail(ps, "missing MOUNTPOINT after ORIGIN '%s'\n" USAGE,
			    ps->positional[0]);
	if (opts->nomount && ps->fuse_given[0])
		return fail(ps, "option '%s' is a FUSE option, and nomount "
			    "runs without FUSE: remove it", ps->fuse_given);
	if (parse_origin(ps, ps->positional[0]))
		return -1;
	if (opts->nomount ? parse_nomount_root(ps, ps->positional[1]) :
			    parse_mountpoint(ps, ps->positional[1]))
		return -1;
	if (resolve_cache_dir(ps) || resolve_endpoint(ps) ||
	    check_layout(ps) || check_sizes(ps))
		return -1;
	if (opts->debug)
		opts->log_level = LOG_DEBUG;
	return build_fuse_argv(ps, argv0);
}

/* Options that nearfs-ctl set may change while mounted. */
static const char *const runtime_options[] = {
	"ttl", "attr_ttl", "neg_ttl", "dir_ttl", "cache_size", "min_free",
	"max_dirty", "writeback_delay", "log_level",
};

/* Apply one item of a runtime list: "name=value". */
static int apply_runtime_option(struct parse_state *ps, const char *opt)
{
	const char *eq = strchr(opt, '=');
	size_t len = eq ? (size_t)(eq - opt) : strlen(opt);
	const struct option_def *def = find_def(opt, len);
	char names[160] = "";

	if (list_has(runtime_options, ARRAY_LEN(runtime_options), opt, len,
		     NULL))
		return apply_nearfs_option(ps, def, eq ? eq + 1 : NULL);
	for (size_t i = 0; i < ARRAY_LEN(runtime_options); i++)
		snprintf(names + strlen(names), sizeof(names) - strlen(names),
			 "%s%s", i ? ", " : "", runtime_options[i]);
	if (def || list_has(fuse_passthrough, ARRAY_LEN(fuse_passthrough),
			    opt, len, NULL))
		return fail(ps, "option '%.*s' cannot change while mounted: "
			    "unmount and mount again with -o %s; these can "
			    "change: %s", (int)len, opt, opt, names);
	return fail(ps, "unknown option '%.*s'; these can change while "
		    "mounted: %s", (int)len, opt, names);
}

int options_parse_runtime(const char *list, struct cache_config *cfg,
			  int *log_level, char *err, size_t errlen)
{
	struct nearfs_options opts;
	struct parse_state ps = { .opts = &opts, .err = err, .errlen = errlen };
	int ret;

	if (errlen)
		err[0] = '\0';
	if (strspn(list, ",") == strlen(list))
		return fail(&ps, "missing OPTION=VALUE, for example ttl=30s");
	/* The runtime options set numbers only, so opts owns no string. */
	memset(&opts, 0, sizeof(opts));
	opts.cache = *cfg;
	opts.log_level = *log_level;
	ret = apply_option_list(&ps, list, apply_runtime_option);
	if (ret == 0)
		ret = check_sizes(&ps);
	if (ret)
		return ret;
	*cfg = opts.cache;
	*log_level = opts.log_level;
	return 0;
}

int options_parse(int argc, char **argv, struct nearfs_options *opts,
		  char *err, size_t errlen)
{
	struct parse_state ps = {
		.opts = opts, .err = err, .errlen = errlen,
	};
	int ret;

	set_defaults(opts);
	if (errlen)
		err[0] = '\0';
	ret = parse_args(&ps, argc, argv);
	if (ret == 0 && !opts->show_help && !opts->show_version)
		ret = finish(&ps, argc > 0 ? argv[0] : NULL);
	free(ps.fuse.text);
	if (ret) {
		options_free(opts);
		set_defaults(opts);
	}
	return ret;
}

void options_free(struct nearfs_options *opts)
{
	free(opts->origin);
	free(opts->mountpoint);
	free(opts->bucket);
	free(opts->prefix);
	free(opts->dir);
	free(opts->cache_dir);
	free(opts->endpoint);
	free(opts->region);
	free(opts->profile);
	free(opts->metrics_address);
	if (opts->fuse_argv)
		for (int i = 0; opts->fuse_argv[i]; i++)
			free(opts->fuse_argv[i]);
	free(opts->fuse_argv);
	memset(opts, 0, sizeof(*opts));
}

/* Print an option and its help in two columns.  A '\n' in help starts
 * a continuation line.  A left column wider than 22 characters gets a
 * line of its own. */
static void print_option(const char *left, const char *help)
{
	const char *line = help;

	if (strlen(left) > 22)
		printf("  %s\n  %-22s", left, "");
	else
		printf("  %-22s", left);
	while (line) {
		const char *nl = strchr(line, '\n');
		int len = nl ? (int)(nl - line) : (int)strlen(line);

		printf(" %.*s\n", len, line);
		line = nl ? nl + 1 : NULL;
		if (line)
			printf("  %-22s", "");
	}
}

static void print_list(const char *title, const char *const *list,
		       size_t n)
{
	size_t col = 2;

	printf("%s\n ", title);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(list[i]) + 2;

		if (col + len > 78) {
			printf("\n ");
			col = 2;
		}
		printf(" %s%s", list[i], i + 1 < n ? "," : "");
		col += len;
	}
	printf("\n\n");
}

void options_print_help(const char *argv0)
{
	char left[64];

	printf("usage: %s [-f] [-d] [-o OPTION[,OPTION...]] ORIGIN "
	       "MOUNTPOINT\n\n", argv0 ? argv0 : "nearfs");
	printf("Mount ORIGIN, an S3 bucket (s3://BUCKET[/PREFIX]) or a "
	       "directory, at\nMOUNTPOINT, with a local cache of its "
	       "data.\n\n");
	print_option("-f", "stay in the foreground");
	print_option("-d", "print debug messages (log_level=debug),\n"
		     "implies -f");
	print_option("-o OPTION[,OPTION...]", "mount options, listed below");
	print_option("-h, --help", "print this text");
	print_option("-V, --version", "print the version");

	printf("\nnearfs options:\n");
	for (size_t i = 0; i < N_OPTION_DEFS; i++) {
		const struct option_def *def = &nearfs_option_defs[i];

		if (def->metavar)
			snprintf(left, sizeof(left), "%s=%s", def->name,
				 def->metavar);
		else
			snprintf(left, sizeof(left), "%s", def->name);
		print_option(left, def->help);
	}
	printf("\nSIZE is a number of bytes with an optional K, M, G or T "
	       "suffix (powers\nof 1024). DURATION is a number with an "
	       "optional ms, s, m, h or d suffix;\na plain number is "
	       "seconds.\n\nmax_dirty, writeback_delay and fsync only matter "
	       "with write_mode=back;\nthe other write modes accept and "
	       "ignore them.\n\n");
	print_list("FUSE options, passed to libfuse (see mount.fuse3(8)):",
		   fuse_passthrough, ARRAY_LEN(fuse_passthrough));
	printf("allow_other turns on default_permissions, so that the kernel "
	       "checks file\nmodes for other users; nodefault_permissions "
	       "keeps it off.\n\n");
	print_list("Ignored, as given by fstab and mount(8) (also x-* and "
		   "comment=):", ignored_options, ARRAY_LEN(ignored_options));
	printf("Exit status: 0 unmounted, 1 invalid options or a failed FUSE "
	       "loop, 2 origin\nnot usable or failed its check, 3 cache "
	       "could not be opened, 4 mount\nfailed (nomount: the root is "
	       "served by another daemon),\n5 unmounted with data left in "
	       "the write-back journal (uploaded after the\nnext mount).\n");
}
