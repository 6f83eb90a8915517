/*
 * fuzz_options.c - the option parser of fs/options.c: the -o list of the
 * command line and the OPTION=VALUE list that nearfs-ctl set changes
 * while mounted.
 *
 * The input is the -o list, then a NUL byte and the runtime list.  The
 * -o list is parsed as in "nearfs -o LIST s3://fuzz-bucket/prefix DIR",
 * with DIR a folder this harness creates.
 *
 * Properties:
 * - a rejected command line leaves a message and the default options;
 * - accepted options are within their documented ranges.  chunk_size is
 *   a power of two from 64K to 64M, cache_size and max_dirty are at
 *   least one chunk, min_free is at most 99%, the timeout is above 0,
 *   the metrics address is on loopback with a port from 1 to 65535, and
 *   uid, gid and umask were given as digits only;
 * - the FUSE arguments contain only items of the list, "ro" and
 *   default_permissions, and with nomount only "ro";
 * - a rejected runtime list leaves the configuration unchanged;
 * - a runtime list is accepted exactly when the same list given to -o
 *   is, as long as it names only options that may change while mounted,
 *   and both give the same values.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdbool.h>
#include <unistd.h>

#include "fuzz.h"
#include "options.h"

#define DEFAULT_CHUNK_SIZE (4u << 20)

static char mount_dir[] = "/tmp/nearfs-fuzz-options-XXXXXX";
static struct nearfs_options defaults;

/* The options that options_parse_runtime() takes (options.h). */
static const char *const runtime_names[] = {
	"ttl", "attr_ttl", "neg_ttl", "dir_ttl", "cache_size", "min_free",
	"max_dirty", "writeback_delay", "log_level",
};

static void remove_mount_dir(void)
{
	rmdir(mount_dir);
}

static int parse_list(const char *list, struct nearfs_options *opts,
		      char *err, size_t errlen)
{
	char *argv[] = {
		"nearfs", "-o", (char *)list, "s3://fuzz-bucket/prefix",
		mount_dir, NULL,
	};

	return options_parse(5, argv, opts, err, errlen);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512];

	log_max_level = LOG_CRIT;
	unsetenv("AWS_ENDPOINT_URL");
	if (!mkdtemp(mount_dir))
		abort();
	atexit(remove_mount_dir);
	if (parse_list("", &defaults, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_options: the defaults fail: %s\n", err);
		abort();
	}
	return 0;
}

/* Call fn for each non-empty item of a comma-separated list. */
static bool all_items(const char *list, bool (*fn)(const char *item,
						   size_t len, void *arg),
		      void *arg)
{
	const char *p = list;

	while (*p) {
		size_t len = strcspn(p, ",");

		if (len && !fn(p, len, arg))
			return false;
		p += len;
		if (*p == ',')
			p++;
	}
	return true;
}

static bool item_named(const char *item, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len > n && strncmp(item, name, n) == 0 && item[n] == '=';
}

/* uid=, gid= and umask= take digits only (umask octal digits). */
static bool owner_value_is_digits(const char *item, size_t len, void *arg)
{
	const char *value = memchr(item, '=', len);
	const char *digits;
	size_t n;

	if (!item_named(item, len, "uid") && !item_named(item, len, "gid") &&
	    !item_named(item, len, "umask"))
		return true;
	value++;
	n = len - (size_t)(value - item);
	digits = item[0] == 'u' && item[1] == 'm' ? "01234567" : "0123456789";
	for (size_t i = 0; i < n; i++)
		if (!strchr(digits, value[i]))
			return false;
	return true;
}

/* An item of the FUSE arguments must be an item of the -o list. */
static bool in_list(const char *item, size_t len, void *arg)
{
	const char *list = arg;
	bool found = false;

	if ((len == 2 && strncmp(item, "ro", 2) == 0) ||
	    (len == 19 && strncmp(item, "default_permissions", 19) == 0))
		return true;
	for (const char *p = list; *p && !found;) {
		size_t n = strcspn(p, ",");

		found = n == len && strncmp(p, item, len) == 0;
		p += n;
		if (*p == ',')
			p++;
	}
	return found;
}

static bool is_ro(const char *item, size_t len, void *arg)
{
	return len == 2 && strncmp(item, "ro", 2) == 0;
}

static bool is_runtime(const char *item, size_t len, void *arg)
{
	size_t name_len = strcspn(item, "=,");

	if (name_len > len)
		name_len = len;
	for (size_t i = 0; i < sizeof(runtime_names) / sizeof(*runtime_names);
	     i++)
		if (strlen(runtime_names[i]) == name_len &&
		    strncmp(item, runtime_names[i], name_len) == 0)
			return true;
	return false;
}

static void check_fuse_args(const struct nearfs_options *opts,
			    const char *list)
{
	const char *fuse_list;

	FUZZ_ASSERT(opts->fuse_argc == 1 || opts->fuse_argc == 3);
	FUZZ_ASSERT(strcmp(opts->fuse_argv[0], "nearfs") == 0);
	FUZZ_ASSERT(opts->fuse_argv[opts->fuse_argc] == NULL);
	if (opts->fuse_argc == 1)
		return;
	FUZZ_ASSERT(strcmp(opts->fuse_argv[1], "-o") == 0);
	fuse_list = opts->fuse_argv[2];
	FUZZ_ASSERT(fuse_list[0] != '\0' && fuse_list[0] != ',');
	FUZZ_ASSERT(fuse_list[strlen(fuse_list) - 1] != ',');
	FUZZ_ASSERT(strstr(fuse_list, ",,") == NULL);
	FUZZ_ASSERT(all_items(fuse_list, in_list, (void *)list));
	if (opts->nomount)
		FUZZ_ASSERT(all_items(fuse_list, is_ro, NULL));
}

static void check_metrics(const struct nearfs_options *opts)
{
	struct in_addr in4;
	struct in6_addr in6;

	if (!opts->metrics_address) {
		FUZZ_ASSERT(opts->metrics_port == 0);
		return;
	}
	FUZZ_ASSERT(opts->metrics_port >= 1 && opts->metrics_port <= 65535);
	if (inet_pton(AF_INET, opts->metrics_address, &in4) == 1) {
		FUZZ_ASSERT((ntohl(in4.s_addr) >> 24) == 127);
		return;
	}
	FUZZ_ASSERT(inet_pton(AF_INET6, opts->metrics_address, &in6) == 1);
	FUZZ_ASSERT(IN6_IS_ADDR_LOOPBACK(&in6));
}

static void check_accepted(const struct nearfs_options *opts,
			   const char *list)
{
	const struct cache_config *c = &opts->cache;

	FUZZ_ASSERT(opts->is_s3);
	FUZZ_ASSERT(strcmp(opts->bucket, "fuzz-bucket") == 0);
	FUZZ_ASSERT(strcmp(opts->prefix, "prefix") == 0);
	FUZZ_ASSERT(c->chunk_size >= (64u << 10));
	FUZZ_ASSERT(c->chunk_size <= (64u << 20));
	FUZZ_ASSERT((c->chunk_size & (c->chunk_size - 1)) == 0);
	FUZZ_ASSERT(c->size_max >= c->chunk_size);
	FUZZ_ASSERT(c->max_dirty >= c->chunk_size);
	FUZZ_ASSERT(c->min_free_pct <= 99);
	FUZZ_ASSERT(c->min_free_pct == 0 || c->min_free == 0);
	FUZZ_ASSERT(c->write_mode == WRITE_THROUGH ||
		    c->write_mode == WRITE_BACK ||
		    c->write_mode == WRITE_AROUND);
	FUZZ_ASSERT(c->dir != NULL && c->dir[0] == '/');
	FUZZ_ASSERT(opts->s3.timeout_ms > 0);
	FUZZ_ASSERT(opts->s3.path_style >= -1 && opts->s3.path_style <= 1);
	FUZZ_ASSERT(opts->log_level >= LOG_ERR && opts->log_level <= LOG_DEBUG);
	FUZZ_ASSERT(opts->umask >= -1 && opts->umask <= 0777);
	FUZZ_ASSERT(opts->owner_uid >= -1 && opts->owner_uid <= 0xfffffffeL);
	FUZZ_ASSERT(opts->owner_gid >= -1 && opts->owner_gid <= 0xfffffffeL);
	FUZZ_ASSERT(all_items(list, owner_value_is_digits, NULL));
	FUZZ_ASSERT(opts->mountpoint && opts->mountpoint[0] == '/');
	if (opts->cache.read_only)
		FUZZ_ASSERT(opts->s3.read_only);
	check_metrics(opts);
	check_fuse_args(opts, list);
}

static void check_rejected(const struct nearfs_options *opts,
			   const char *err)
{
	FUZZ_ASSERT(err[0] != '\0');
	FUZZ_ASSERT(opts->origin == NULL);
	FUZZ_ASSERT(opts->fuse_argv == NULL);
	FUZZ_ASSERT(opts->cache.chunk_size == DEFAULT_CHUNK_SIZE);
}

static void fuzz_mount_list(const char *list)
{
	struct nearfs_options opts;
	char err[512] = "";

	if (parse_list(list, &opts, err, sizeof(err)) == 0)
		check_accepted(&opts, list);
	else
		check_rejected(&opts, err);
	options_free(&opts);
}

/* The runtime options of a and b, which must be equal. */
static void check_same_runtime(const struct cache_config *a, int a_level,
			       const struct cache_config *b, int b_level)
{
	FUZZ_ASSERT(a->ttl_ms == b->ttl_ms);
	FUZZ_ASSERT(a->attr_ttl_ms == b->attr_ttl_ms);
	FUZZ_ASSERT(a->neg_ttl_ms == b->neg_ttl_ms);
	FUZZ_ASSERT(a->dir_ttl_ms == b->dir_ttl_ms);
	FUZZ_ASSERT(a->size_max == b->size_max);
	FUZZ_ASSERT(a->min_free == b->min_free);
	FUZZ_ASSERT(a->min_free_pct == b->min_free_pct);
	FUZZ_ASSERT(a->max_dirty == b->max_dirty);
	FUZZ_ASSERT(a->writeback_delay_ms == b->writeback_delay_ms);
	FUZZ_ASSERT(a_level == b_level);
}

static void fuzz_runtime_list(const char *list)
{
	struct cache_config cfg = defaults.cache;
	int level = defaults.log_level;
	struct nearfs_options mounted;
	char err[512] = "", mount_err[512] = "";
	int ret = options_parse_runtime(list, &cfg, &level, err, sizeof(err));
	int mount_ret = parse_list(list, &mounted, mount_err,
				   sizeof(mount_err));
	bool only_runtime = strspn(list, ",") != strlen(list) &&
			    all_items(list, is_runtime, NULL);

	if (ret == 0) {
		FUZZ_ASSERT(cfg.size_max >= cfg.chunk_size);
		FUZZ_ASSERT(cfg.max_dirty >= cfg.chunk_size);
		FUZZ_ASSERT(cfg.min_free_pct <= 99);
		FUZZ_ASSERT(level >= LOG_ERR && level <= LOG_DEBUG);
		FUZZ_ASSERT(only_runtime);
		FUZZ_ASSERT(mount_ret == 0);
		check_same_runtime(&cfg, level, &mounted.cache,
				   mounted.log_level);
	} else {
		FUZZ_ASSERT(err[0] != '\0');
		check_same_runtime(&cfg, level, &defaults.cache,
				   defaults.log_level);
		FUZZ_ASSERT(cfg.chunk_size == defaults.cache.chunk_size);
		if (only_runtime)
			FUZZ_ASSERT(mount_ret != 0);
	}
	options_free(&mounted);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *rest;
	size_t rest_size;
	char *list = fuzz_split(data, size, 0, &rest, &rest_size);
	char *runtime = fuzz_strndup(rest, rest_size);

	fuzz_mount_list(list);
	fuzz_runtime_list(runtime);
	free(runtime);
	free(list);
	return 0;
}
