/* test_options.c - the command line and -o option parser. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "options.h"

#define MAX_ARGS 16
#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)
#define TIB (1024ull * GIB)

/* A scratch tree: origin/ (a directory origin), mnt/, cache/, file. */
static char root[PATH_MAX];
static char origin_dir[PATH_MAX + 16];
static char mnt_dir[PATH_MAX + 16];
static char cache_dir[PATH_MAX + 16];
static char plain_file[PATH_MAX + 16];
static char cache_opt[PATH_MAX + 32];

static struct nearfs_options opts;
static char err[1024];

/* Parse the NULL-terminated arguments that follow argv[0] "nearfs". */
static int parse(const char *first, ...)
{
	char *argv[MAX_ARGS + 2] = { "nearfs" };
	int argc = 1;
	va_list ap;

	va_start(ap, first);
	for (const char *a = first; a; a = va_arg(ap, const char *)) {
		assert_true(argc <= MAX_ARGS);
		argv[argc++] = (char *)a;
	}
	va_end(ap);
	options_free(&opts);
	return options_parse(argc, argv, &opts, err, sizeof(err));
}

/* Whether option starts with one that applies only to an S3 origin. */
static bool s3_only(const char *option)
{
	static const char *const names[] = {
		"endpoint", "region", "profile", "path_style", "virtual_host",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t n = strlen(names[i]);

		if (strncmp(option, names[i], n) == 0 &&
		    (option[n] == '\0' || option[n] == '=' || option[n] == ','))
			return true;
	}
	return false;
}

/* Parse "-o OPTION" on the scratch mountpoint, and on the scratch origin
 * or, for an S3-only option, on s3://bucket. */
static int parse_opt(const char *option)
{
	return parse("-o", cache_opt, "-o", option,
		     s3_only(option) ? "s3://bucket" : origin_dir, mnt_dir,
		     NULL);
}

static void assert_error_contains(const char *fragment)
{
	if (!strstr(err, fragment))
		fail_msg("error '%s' lacks '%s'", err, fragment);
}

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	return remove(path);
}

static void make_dir(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", root, name);
	assert_int_equal(mkdir(out, 0755), 0);
}

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	char tmpl[PATH_MAX];
	FILE *f;

	snprintf(tmpl, sizeof(tmpl), "%s/nearfs-test-options-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(tmpl));
	assert_non_null(realpath(tmpl, root));
	make_dir(origin_dir, sizeof(origin_dir), "origin");
	make_dir(mnt_dir, sizeof(mnt_dir), "mnt");
	make_dir(cache_dir, sizeof(cache_dir), "cache");
	snprintf(plain_file, sizeof(plain_file), "%s/file", root);
	f = fopen(plain_file, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(cache_opt, sizeof(cache_opt), "cache_dir=%s", cache_dir);
	unsetenv("AWS_ENDPOINT_URL");
	return 0;
}

static int teardown(void **state)
{
	options_free(&opts);
	nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static void test_parse_size_valid(void **state)
{
	static const struct {
		const char *text;
		uint64_t bytes;
	} cases[] = {
		{ "0", 0 }, { "4096", 4096 }, { "1K", KIB },
		{ "512k", 512 * KIB },
		{ "4M", 4 * MIB }, { "4MB", 4 * MIB }, { "4MiB", 4 * MIB },
		{ "10G", 10 * GIB }, { "2gib", 2 * GIB }, { "1T", TIB },
		{ "100B", 100 }, { "16777215T", 16777215 * TIB },
		{ "18446744073709551615", UINT64_MAX },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t bytes = 1;

		if (parse_size(cases[i].text, &bytes) != 0)
			fail_msg("'%s' rejected", cases[i].text);
		assert_int_equal(bytes, cases[i].bytes);
	}
}

static void test_parse_size_invalid(void **state)
{
	static const char *const cases[] = {
		"", "ten", "-1", "+1", " 1", "1 G", "1.5G", "10X", "1KiBB",
		"1iB", "G", "1P", "16777216T", "18446744073709551616",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t bytes = 7;

		if (parse_size(cases[i], &bytes) != -1)
			fail_msg("'%s' accepted", cases[i]);
		assert_int_equal(bytes, 7);
	}
	assert_int_equal(parse_size(NULL, NULL), -1);
}

static void test_parse_duration_valid(void **state)
{
	static const struct {
		const char *text;
		uint64_t ms;
	} cases[] = {
		{ "0", 0 }, { "30", 30000 }, { "500ms", 500 }, { "60s", 60000 },
		{ "2m", 120000 }, { "1h", 3600000 }, { "1d", 86400000 },
		{ "0s", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t ms = 1;

		if (parse_duration(cases[i].text, &ms) != 0)
			fail_msg("'%s' rejected", cases[i].text);
		assert_int_equal(ms, cases[i].ms);
	}
}

static void test_parse_duration_invalid(void **state)
{
	static const char *const cases[] = {
		"", "s", "-5s", "1.5s", "5 s", "1x", "1M", "1S", "10sec",
		"18446744073709551615d", "18446744073709551616",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t ms = 7;

		if (parse_duration(cases[i], &ms) != -1)
			fail_msg("'%s' accepted", cases[i]);
	}
}

static void test_defaults(void **state)
{
	assert_int_equal(parse("-o", cache_opt, origin_dir, mnt_dir, NULL),
			 0);
	assert_false(opts.foreground);
	assert_false(opts.debug);
	assert_false(opts.is_s3);
	assert_string_equal(opts.origin, origin_dir);
	assert_string_equal(opts.dir, origin_dir);
	assert_string_equal(opts.mountpoint, mnt_dir);
	assert_string_equal(opts.cache.dir, cache_dir);
	assert_int_equal(opts.cache.size_max, 10 * GIB);
	assert_int_equal(opts.cache.min_free_pct, 5);
	assert_int_equal(opts.cache.min_free, 0);
	assert_int_equal(opts.cache.chunk_size, 4 * MIB);
	assert_int_equal(opts.cache.ttl_ms, 60000);
	assert_int_equal(opts.cache.attr_ttl_ms, 60000);
	assert_int_equal(opts.cache.neg_ttl_ms, 5000);
	assert_int_equal(opts.cache.dir_ttl_ms, 60000);
	assert_int_equal(opts.cache.dir_prefetch, 10000);
	assert_int_equal(opts.cache.write_mode, WRITE_THROUGH);
	assert_int_equal(opts.cache.max_dirty, GIB);
	assert_int_equal(opts.cache.writeback_delay_ms, 5000);
	assert_false(opts.cache.fsync_local);
	assert_false(opts.cache.read_only);
	assert_int_equal(opts.s3.path_style, -1);
	assert_false(opts.s3.anonymous);
	assert_int_equal(opts.s3.timeout_ms, 30000);
	assert_null(opts.s3.endpoint);
	assert_int_equal(opts.preload_fetch, 0);
	assert_false(opts.allow_other);
	assert_int_equal(opts.log_level, LOG_INFO);
	assert_int_equal(opts.fuse_argc, 1);
	assert_string_equal(opts.fuse_argv[0], "nearfs");
	assert_null(opts.fuse_argv[1]);
}

static void test_default_cache_dir(void **state)
{
	char expect[PATH_MAX + 32];

	setenv("XDG_CACHE_HOME", cache_dir, 1);
	assert_int_equal(parse(origin_dir, mnt_dir, NULL), 0);
	if (geteuid() == 0)
		snprintf(expect, sizeof(expect), "/var/cache/nearfs");
	else
		snprintf(expect, sizeof(expect), "%s/nearfs", cache_dir);
	assert_string_equal(opts.cache_dir, expect);

	unsetenv("XDG_CACHE_HOME");
	setenv("HOME", root, 1);
	assert_int_equal(parse(origin_dir, mnt_dir, NULL), 0);
	if (geteuid() != 0)
		snprintf(expect, sizeof(expect), "%s/.cache/nearfs", root);
	assert_string_equal(opts.cache_dir, expect);
}

static void test_relative_cache_dir(void **state)
{
	char cwd[PATH_MAX], expect[PATH_MAX + 32];

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(root), 0);
	assert_int_equal(parse("-o", "cache_dir=cache/new/deeper/", origin_dir,
			       mnt_dir, NULL), 0);
	snprintf(expect, sizeof(expect), "%s/new/deeper", cache_dir);
	assert_string_equal(opts.cache_dir, expect);
	assert_ptr_equal(opts.cache.dir, opts.cache_dir);
	assert_int_equal(chdir(cwd), 0);
}

#define FIELD(member) offsetof(struct nearfs_options, member), \
	sizeof(((struct nearfs_options *)0)->member)

static uint64_t read_field(size_t offset, size_t size)
{
	const char *p = (const char *)&opts + offset;

	switch (size) {
	case sizeof(uint8_t):
		return *(const uint8_t *)p;
	case sizeof(uint32_t):
		return *(const uint32_t *)p;
	default:
		return *(const uint64_t *)p;
	}
}

static void test_each_option(void **state)
{
	static const struct {
		const char *option;
		size_t offset, size;
		uint64_t expect;
	} cases[] = {
		{ "cache_size=20G", FIELD(cache.size_max), 20 * GIB },
		{ "preload_fetch=256M", FIELD(preload_fetch), 256 * MIB },
		{ "preload_fetch=0", FIELD(preload_fetch), 0 },
		{ "allow_other", FIELD(allow_other), 1 },
		{ "min_free=2G", FIELD(cache.min_free), 2 * GIB },
		{ "min_free=2G", FIELD(cache.min_free_pct), 0 },
		{ "min_free=12%", FIELD(cache.min_free_pct), 12 },
		{ "min_free=0", FIELD(cache.min_free_pct), 0 },
		{ "chunk_size=64K", FIELD(cache.chunk_size), 64 * KIB },
		{ "chunk_size=1M", FIELD(cache.chunk_size), MIB },
		{ "chunk_size=64M", FIELD(cache.chunk_size), 64 * MIB },
		{ "ttl=5m", FIELD(cache.ttl_ms), 300000 },
		{ "ttl=0", FIELD(cache.ttl_ms), 0 },
		{ "attr_ttl=2s", FIELD(cache.attr_ttl_ms), 2000 },
		{ "neg_ttl=0", FIELD(cache.neg_ttl_ms), 0 },
		{ "dir_ttl=1h", FIELD(cache.dir_ttl_ms), 3600000 },
		{ "dir_prefetch=0", FIELD(cache.dir_prefetch), 0 },
		{ "dir_prefetch=250000", FIELD(cache.dir_prefetch), 250000 },
		{ "write_mode=through", FIELD(cache.write_mode),
		  WRITE_THROUGH },
		{ "write_mode=back", FIELD(cache.write_mode), WRITE_BACK },
		{ "write_mode=around", FIELD(cache.write_mode),
		  WRITE_AROUND },
		{ "max_dirty=4G", FIELD(cache.max_dirty), 4 * GIB },
		{ "max_dirty=4M", FIELD(cache.max_dirty), 4 * MIB },
		{ "writeback_delay=30s", FIELD(cache.writeback_delay_ms),
		  30000 },
		{ "writeback_delay=250ms", FIELD(cache.writeback_delay_ms),
		  250 },
		{ "writeback_delay=0", FIELD(cache.writeback_delay_ms), 0 },
		{ "fsync=local", FIELD(cache.fsync_local), 1 },
		{ "fsync=origin", FIELD(cache.fsync_local), 0 },
		{ "path_style", FIELD(s3.path_style), 1 },
		{ "virtual_host", FIELD(s3.path_style), 0 },
		{ "anonymous", FIELD(s3.anonymous), 1 },
		{ "ro", FIELD(cache.read_only), 1 },
		{ "ro", FIELD(s3.read_only), 1 },
		{ "log_level=error", FIELD(log_level), LOG_ERR },
		{ "log_level=warn", FIELD(log_level), LOG_WARNING },
		{ "log_level=debug", FIELD(log_level), LOG_DEBUG },
		{ "timeout=500ms", FIELD(s3.timeout_ms), 500 },
		{ "timeout=2m", FIELD(s3.timeout_ms), 120000 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t got;

		if (parse_opt(cases[i].option) != 0)
			fail_msg("'%s' rejected: %s", cases[i].option, err);
		got = read_field(cases[i].offset, cases[i].size);
		if (got != cases[i].expect)
			fail_msg("'%s' stored %llu, expected %llu",
				 cases[i].option, (unsigned long long)got,
				 (unsigned long long)cases[i].expect);
	}
}

static void test_string_options(void **state)
{
	assert_int_equal(parse("-o", "region=eu-west-1,profile=test",
			       "-o", "endpoint=http://127.0.0.1:9000",
			       "s3://bucket", mnt_dir, "-o", cache_opt, NULL),
			 0);
	assert_string_equal(opts.region, "eu-west-1");
	assert_string_equal(opts.s3.region, "eu-west-1");
	assert_string_equal(opts.profile, "test");
	assert_string_equal(opts.s3.profile, "test");
	assert_string_equal(opts.endpoint, "http://127.0.0.1:9000");
	assert_string_equal(opts.s3.endpoint, "http://127.0.0.1:9000");
	assert_int_equal(parse_opt("endpoint=https://127.0.0.1:9443"), 0);
	assert_string_equal(opts.endpoint, "https://127.0.0.1:9443");
}

/* Endpoints with and without a port, IPv6 and a path are accepted. */
static void test_endpoint_ports(void **state)
{
	static const char *const ok[] = {
		"endpoint=http://127.0.0.1", "endpoint=http://127.0.0.1:1",
		"endpoint=https://127.0.0.1:65535/",
		"endpoint=http://[::1]:9000", "endpoint=http://[::1]/s3",
		"endpoint=http://s3.example.test:9000/base?x=1",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (parse_opt(ok[i]) != 0)
			fail_msg("'%s' rejected: %s", ok[i], err);
}

/* An S3 option on a directory origin is rejected with its name. */
static void test_s3_option_on_directory(void **state)
{
	static const char *const cases[][2] = {
		{ "endpoint=http://127.0.0.1:9000", "endpoint applies to an "
						    "S3 origin" },
		{ "region=eu-west-1", "region applies to an S3 origin" },
		{ "profile=test", "profile applies to an S3 origin" },
		{ "path_style", "path_style applies to an S3 origin" },
		{ "virtual_host", "virtual_host applies to an S3 origin" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse("-o", cache_opt, "-o", cases[i][0],
				       origin_dir, mnt_dir, NULL), -1);
		assert_error_contains(cases[i][1]);
		assert_error_contains(origin_dir);
		assert_error_contains("drop the option");
	}
}

static void test_later_option_wins(void **state)
{
	assert_int_equal(parse("-o", "cache_size=1G,cache_size=2G",
			       "-o", "region=a", "-o", "region=b",
			       "-o", cache_opt, "s3://bucket", mnt_dir, NULL),
			 0);
	assert_int_equal(opts.cache.size_max, 2 * GIB);
	assert_string_equal(opts.region, "b");
}

static void test_write_back_options(void **state)
{
	assert_int_equal(parse_opt("write_mode=back,max_dirty=64K,"
				   "chunk_size=64K,writeback_delay=0,"
				   "fsync=local"), 0);
	assert_int_equal(opts.cache.write_mode, WRITE_BACK);
	assert_int_equal(opts.cache.max_dirty, 64 * KIB);
	assert_int_equal(opts.cache.chunk_size, 64 * KIB);
	assert_int_equal(opts.cache.writeback_delay_ms, 0);
	assert_true(opts.cache.fsync_local);
}

static void test_write_back_options_other_modes(void **state)
{
	static const char *const modes[] = {
		"write_mode=through", "write_mode=around",
	};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		assert_int_equal(parse("-o", cache_opt, "-o", modes[i], "-o",
				       "max_dirty=2G,writeback_delay=1m,"
				       "fsync=local", origin_dir, mnt_dir,
				       NULL), 0);
		assert_int_equal(opts.cache.max_dirty, 2 * GIB);
		assert_int_equal(opts.cache.writeback_delay_ms, 60000);
		assert_true(opts.cache.fsync_local);
	}
}

static void test_owner_options(void **state)
{
	assert_int_equal(parse_opt("ro"), 0);
	assert_int_equal(opts.owner_uid, -1);
	assert_int_equal(opts.owner_gid, -1);
	assert_int_equal(opts.umask, -1);
	assert_int_equal(parse_opt("uid=1000,gid=100,umask=027"), 0);
	assert_int_equal(opts.owner_uid, 1000);
	assert_int_equal(opts.owner_gid, 100);
	assert_int_equal(opts.umask, 027);
}

static void test_metrics_address(void **state)
{
	assert_int_equal(parse_opt("ro"), 0);
	assert_null(opts.metrics_address);
	assert_int_equal(parse_opt("metrics=127.0.0.1:9100"), 0);
	assert_string_equal(opts.metrics_address, "127.0.0.1");
	assert_int_equal(opts.metrics_port, 9100);
	assert_int_equal(parse_opt("metrics=127.1.2.3:1"), 0);
	assert_string_equal(opts.metrics_address, "127.1.2.3");
	assert_int_equal(opts.metrics_port, 1);
	assert_int_equal(parse_opt("metrics=[::1]:65535"), 0);
	assert_string_equal(opts.metrics_address, "::1");
	assert_int_equal(opts.metrics_port, 65535);
}

static void test_metrics_address_invalid(void **state)
{
	static const struct {
		const char *option;
		const char *fragment;
	} cases[] = {
		{ "metrics=10.0.0.1:9100", "listens on loopback addresses only" },
		{ "metrics=0.0.0.0:9100", "listens on loopback addresses only" },
		{ "metrics=[::]:9100", "listens on loopback addresses only" },
		{ "metrics=[::2]:9100", "listens on loopback addresses only" },
		{ "metrics=localhost:9100", "use 127.0.0.1:PORT" },
		{ "metrics=::1:9100", "or [::1]:PORT" },
		{ "metrics=127.0.0.1", "a port from 1 to 65535" },
		{ "metrics=127.0.0.1:0", "a port from 1 to 65535" },
		{ "metrics=127.0.0.1:65536", "a port from 1 to 65535" },
		{ "metrics=127.0.0.1:http", "a port from 1 to 65535" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (parse_opt(cases[i].option) == 0)
			fail_msg("'%s' was accepted", cases[i].option);
		assert_error_contains(cases[i].fragment);
		assert_error_contains("for example metrics=127.0.0.1:9100");
	}
}

static void test_endpoint_from_env(void **state)
{
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566", 1);
	assert_int_equal(parse("-o", cache_opt, "s3://bucket", mnt_dir, NULL),
			 0);
	assert_string_equal(opts.s3.endpoint, "http://127.0.0.1:4566");
	assert_int_equal(parse("-o", cache_opt, "-o",
			       "endpoint=http://127.0.0.1:9000",
			       "s3://bucket", mnt_dir, NULL), 0);
	assert_string_equal(opts.s3.endpoint, "http://127.0.0.1:9000");

	setenv("AWS_ENDPOINT_URL", "127.0.0.1:4566", 1);
	assert_int_equal(parse("-o", cache_opt, "s3://bucket", mnt_dir, NULL),
			 -1);
	assert_error_contains("invalid AWS_ENDPOINT_URL '127.0.0.1:4566'");
	unsetenv("AWS_ENDPOINT_URL");
}

/* A bucket name cannot go in front of an IP address, so virtual_host
 * with such an endpoint is rejected before any request. */
static void test_virtual_host_needs_name(void **state)
{
	static const char *const rejected[] = {
		"endpoint=http://127.0.0.1:9000,virtual_host",
		"endpoint=https://10.1.2.3/,virtual_host",
		"endpoint=http://[::1]:9000,virtual_host",
	};

	for (size_t i = 0; i < sizeof(rejected) / sizeof(rejected[0]); i++) {
		if (parse("-o", cache_opt, "-o", rejected[i], "s3://bucket",
			  mnt_dir, NULL) != -1)
			fail_msg("'%s' accepted", rejected[i]);
		assert_error_contains("virtual_host needs an endpoint with a "
				      "host name");
	}
	assert_int_equal(parse("-o", cache_opt, "-o",
			       "endpoint=http://s3.example.test:9000,"
			       "virtual_host", "s3://bucket", mnt_dir, NULL),
			 0);
	assert_int_equal(opts.s3.path_style, 0);
	assert_int_equal(parse("-o", cache_opt, "-o",
			       "endpoint=http://127.0.0.1:9000,path_style",
			       "s3://bucket", mnt_dir, NULL), 0);
}

static void test_flags(void **state)
{
	assert_int_equal(parse("-f", "-o", cache_opt, origin_dir, mnt_dir,
			       NULL), 0);
	assert_true(opts.foreground);
	assert_false(opts.debug);
	assert_int_equal(opts.log_level, LOG_INFO);

	assert_int_equal(parse("-d", "-o", cache_opt, origin_dir, mnt_dir,
			       NULL), 0);
	assert_true(opts.foreground);
	assert_true(opts.debug);
	assert_int_equal(opts.log_level, LOG_DEBUG);

	assert_int_equal(parse("-fo", cache_opt, origin_dir, mnt_dir, NULL),
			 0);
	assert_true(opts.foreground);
	assert_string_equal(opts.cache_dir, cache_dir);
}

static void test_help_and_version(void **state)
{
	assert_int_equal(parse("--help", NULL), 0);
	assert_true(opts.show_help);
	assert_int_equal(parse("-h", NULL), 0);
	assert_true(opts.show_help);
	assert_int_equal(parse("--version", NULL), 0);
	assert_true(opts.show_version);
	assert_int_equal(parse("-V", origin_dir, NULL), 0);
	assert_true(opts.show_version);
}

static void test_fuse_passthrough(void **state)
{
	assert_int_equal(parse("-o", "allow_other,fsname=data,noatime",
			       "-o", cache_opt, "-o",
			       "default_permissions,max_read=131072,ro",
			       "-oauto_unmount,subtype=nearfs",
			       origin_dir, mnt_dir, NULL), 0);
	assert_int_equal(opts.fuse_argc, 3);
	assert_string_equal(opts.fuse_argv[0], "nearfs");
	assert_string_equal(opts.fuse_argv[1], "-o");
	assert_string_equal(opts.fuse_argv[2],
			    "allow_other,fsname=data,noatime,"
			    "default_permissions,max_read=131072,ro,"
			    "auto_unmount,subtype=nearfs");
	assert_null(opts.fuse_argv[3]);
	assert_true(opts.cache.read_only);
}

static void test_allow_other_adds_permissions(void **state)
{
	assert_int_equal(parse_opt("allow_other"), 0);
	assert_string_equal(opts.fuse_argv[2],
			    "allow_other,default_permissions");
	assert_int_equal(parse_opt("allow_other,nodefault_permissions"), 0);
	assert_string_equal(opts.fuse_argv[2], "allow_other");
	assert_int_equal(parse_opt("fsname=x"), 0);
	assert_string_equal(opts.fuse_argv[2], "fsname=x");
}

static void test_fuse_mount_flags(void **state)
{
	static const char *const cases[] = {
		"allow_root", "dev", "nodev", "suid", "nosuid", "exec",
		"noexec", "atime", "noatime", "sync", "async", "dirsync",
		"blkdev", "debug", "blksize=4096", "user=alice",
		"context=system_u:object_r:tmp_t:s0",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (parse_opt(cases[i]) != 0)
			fail_msg("'%s' rejected: %s", cases[i], err);
		assert_int_equal(opts.fuse_argc, 3);
		assert_string_equal(opts.fuse_argv[2], cases[i]);
	}
}

static void test_fstab_options_ignored(void **state)
{
	assert_int_equal(parse(origin_dir, mnt_dir, "-o",
			       "rw,_netdev,nofail,noauto,auto,user,users,"
			       "defaults,x-systemd.automount,"
			       "x-systemd.idle-timeout=60,comment=x,"
			       "relatime,norelatime,strictatime,"
			       "nostrictatime,diratime,nodiratime,lazytime,"
			       "nolazytime",
			       "-o", cache_opt, NULL), 0);
	assert_int_equal(opts.fuse_argc, 1);
	assert_null(opts.fuse_argv[1]);
}

static void test_fstab_argument_order(void **state)
{
	assert_int_equal(parse(origin_dir, mnt_dir, "-o",
			       "rw,cache_size=1G,allow_other", "-o",
			       cache_opt, NULL), 0);
	assert_string_equal(opts.dir, origin_dir);
	assert_string_equal(opts.mountpoint, mnt_dir);
	assert_int_equal(opts.cache.size_max, GIB);
	assert_string_equal(opts.fuse_argv[2],
			    "allow_other,default_permissions");

	assert_int_equal(parse("-o", cache_opt, "--", origin_dir, mnt_dir,
			       NULL), 0);
	assert_string_equal(opts.mountpoint, mnt_dir);
}

static void test_invalid_values(void **state)
{
	static const struct {
		const char *option;
		const char *fragment;
	} cases[] = {
		{ "cache_sise=1G", "unknown option 'cache_sise'; see nearfs "
				   "--help for the list" },
		{ "kernel_cache", "unknown option 'kernel_cache'" },
		{ "cache_size=ten", "invalid size 'ten' for cache_size: use a "
				    "number with an optional K, M, G or T "
				    "suffix, for example cache_size=20G" },
		{ "cache_size=-1G", "invalid size '-1G' for cache_size" },
		{ "cache_size=99999999999T", "invalid size" },
		{ "cache_size=", "missing value for cache_size" },
		{ "cache_size", "missing value for cache_size" },
		{ "cache_size=1K", "cache_size 1024 is smaller than "
				   "chunk_size" },
		{ "min_free=150%", "invalid percentage '150%' for min_free" },
		{ "min_free=x%", "invalid percentage 'x%'" },
		{ "min_free=lots", "invalid size 'lots' for min_free" },
		{ "chunk_size=3M", "invalid chunk_size '3M': use a power of "
				   "two from 64K to 64M" },
		{ "chunk_size=32K", "from 64K to 64M" },
		{ "chunk_size=128M", "from 64K to 64M" },
		{ "chunk_size=big", "invalid size 'big' for chunk_size" },
		{ "ttl=soon", "invalid duration 'soon' for ttl: use a number "
			      "with an optional ms, s, m, h or d suffix" },
		{ "attr_ttl=1y", "invalid duration '1y' for attr_ttl" },
		{ "neg_ttl=-1", "invalid duration '-1' for neg_ttl" },
		{ "dir_ttl=1.5s", "invalid duration '1.5s' for dir_ttl" },
		{ "dir_prefetch=10k", "invalid count '10k' for dir_prefetch: "
				      "use a whole number" },
		{ "write_mode=fast", "invalid write_mode 'fast': use "
				     "through, back or around, for "
				     "example write_mode=back" },
		{ "write_mode=Back", "invalid write_mode 'Back'" },
		{ "write_mode=", "missing value for write_mode" },
		{ "max_dirty=lots", "invalid size 'lots' for max_dirty: use "
				    "a number with an optional K, M, G or T "
				    "suffix, for example max_dirty=4G" },
		{ "max_dirty=1M", "max_dirty 1048576 is smaller than "
				  "chunk_size 4194304: give a max_dirty of "
				  "at least one chunk" },
		{ "max_dirty=0", "max_dirty 0 is smaller than chunk_size" },
		{ "max_dirty=", "missing value for max_dirty" },
		{ "writeback_delay=soon", "invalid duration 'soon' for "
					  "writeback_delay: use a number "
					  "with an optional ms, s, m, h or "
					  "d suffix, for example "
					  "writeback_delay=30s" },
		{ "writeback_delay=-5s", "invalid duration '-5s' for "
					 "writeback_delay" },
		{ "fsync=disk", "invalid fsync 'disk': use local or origin, "
				"for example fsync=local" },
		{ "fsync", "missing value for fsync" },
		{ "endpoint=127.0.0.1:9000", "invalid endpoint "
					     "'127.0.0.1:9000': use a URL "
					     "that starts with http:// or "
					     "https://" },
		{ "endpoint=ftp://127.0.0.1", "invalid endpoint" },
		{ "endpoint=https://127.0.0.1:", "invalid endpoint "
						 "'https://127.0.0.1:': give a "
						 "host, and after a colon a "
						 "port of 1 to 65535" },
		{ "endpoint=http://127.0.0.1:0", "invalid endpoint" },
		{ "endpoint=http://127.0.0.1:65536", "invalid endpoint" },
		{ "endpoint=http://127.0.0.1:9x", "invalid endpoint" },
		{ "endpoint=http://:9000", "invalid endpoint" },
		{ "endpoint=http://[::1", "invalid endpoint" },
		{ "region=", "missing value for region" },
		{ "log_level=loud", "invalid log_level 'loud': use error, "
				    "warn, info or debug" },
		{ "timeout=0", "invalid timeout '0': use a duration greater "
			       "than 0" },
		{ "timeout=fast", "invalid duration 'fast' for timeout" },
		{ "anonymous=yes", "option 'anonymous' takes no value" },
		{ "ro=1", "option 'ro' takes no value" },
		{ "allow_other=1", "option 'allow_other' takes no value" },
		{ "preload_fetch=lots", "invalid size 'lots' for "
					"preload_fetch" },
		{ "fsname=", "missing value for fsname" },
		{ "uid=abc", "invalid uid 'abc': use a numeric id" },
		{ "gid=-1", "invalid gid '-1'" },
		{ "umask=999", "invalid umask '999': use an octal mask" },
		{ "umask=+22", "invalid umask '+22': use an octal mask" },
		{ "uid= 1000", "invalid uid ' 1000': use a numeric id" },
		{ "gid=+100", "invalid gid '+100'" },
		{ "uid=99999999999999999999", "invalid uid" },
		{ "_netdev=1", "unknown option '_netdev'" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (parse_opt(cases[i].option) != -1)
			fail_msg("'%s' accepted", cases[i].option);
		if (!strstr(err, cases[i].fragment))
			fail_msg("'%s': error '%s' lacks '%s'",
				 cases[i].option, err, cases[i].fragment);
		assert_null(opts.fuse_argv);
	}
}

static void test_bad_command_line(void **state)
{
	static const struct {
		const char *args[4];
		const char *fragment;
	} cases[] = {
		{ { "-x" }, "unknown option '-x'; see nearfs --help" },
		{ { "--foreground" }, "unknown option '--foreground'" },
		{ { "-o" }, "missing value after -o" },
		{ { NULL }, "missing ORIGIN and MOUNTPOINT\nusage: nearfs " },
		{ { "s3://bucket" }, "missing MOUNTPOINT after ORIGIN "
				     "'s3://bucket'\nusage:" },
		{ { "a", "b", "c" }, "unexpected argument 'c'" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *const *a = cases[i].args;

		assert_int_equal(parse(a[0], a[1], a[2], a[3], NULL), -1);
		if (!strstr(err, cases[i].fragment))
			fail_msg("case %zu: error '%s' lacks '%s'", i, err,
				 cases[i].fragment);
	}
}

#define BUCKET_63 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static void test_s3_origins(void **state)
{
	static const struct {
		const char *origin, *bucket, *prefix;
	} cases[] = {
		{ "s3://bucket", "bucket", "" },
		{ "s3://bucket/", "bucket", "" },
		{ "s3://my.bucket-1/a/b", "my.bucket-1", "a/b" },
		{ "s3://abc/photos/2024///", "abc", "photos/2024" },
		{ "s3://abc//x/", "abc", "x" },
		{ "s3://" BUCKET_63, BUCKET_63, "" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (parse("-o", cache_opt, cases[i].origin, mnt_dir,
			  NULL) != 0)
			fail_msg("'%s' rejected: %s", cases[i].origin, err);
		assert_true(opts.is_s3);
		assert_string_equal(opts.origin, cases[i].origin);
		assert_string_equal(opts.bucket, cases[i].bucket);
		assert_string_equal(opts.prefix, cases[i].prefix);
		assert_string_equal(opts.s3.bucket, cases[i].bucket);
		assert_string_equal(opts.s3.prefix, cases[i].prefix);
		assert_null(opts.dir);
	}
}

static void test_invalid_buckets(void **state)
{
	static const char *const cases[] = {
		"s3://", "s3://ab", "s3://Bucket", "s3://bu_cket",
		"s3://-bucket", "s3://bucket-", "s3://.bucket", "s3://a..b",
		"s3://192.168.1.1",
		/* 64 characters, one over the limit. */
		"s3://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (parse("-o", cache_opt, cases[i], mnt_dir, NULL) != -1)
			fail_msg("'%s' accepted", cases[i]);
		assert_error_contains("invalid bucket name");
		assert_error_contains(cases[i]);
	}
}

static void test_directory_origins(void **state)
{
	char missing[PATH_MAX + 16], relative[PATH_MAX], cwd[PATH_MAX];

	snprintf(missing, sizeof(missing), "%s/absent", root);
	assert_int_equal(parse("-o", cache_opt, missing, mnt_dir, NULL), -1);
	assert_error_contains("origin directory");
	assert_error_contains(missing);
	assert_error_contains("not found");

	assert_int_equal(parse("-o", cache_opt, plain_file, mnt_dir, NULL),
			 -1);
	assert_error_contains("is not a directory");
	assert_error_contains(plain_file);

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(root), 0);
	snprintf(relative, sizeof(relative), "./origin/");
	assert_int_equal(parse("-o", cache_opt, relative, "mnt", NULL), 0);
	assert_string_equal(opts.origin, relative);
	assert_string_equal(opts.dir, origin_dir);
	assert_string_equal(opts.mountpoint, mnt_dir);
	assert_int_equal(chdir(cwd), 0);
}

static void test_bad_mountpoints(void **state)
{
	char missing[PATH_MAX + 16];

	snprintf(missing, sizeof(missing), "%s/nomnt", root);
	assert_int_equal(parse("-o", cache_opt, origin_dir, missing, NULL),
			 -1);
	assert_error_contains("mountpoint");
	assert_error_contains(missing);
	assert_error_contains("mkdir -p");

	assert_int_equal(parse("-o", cache_opt, origin_dir, plain_file, NULL),
			 -1);
	assert_error_contains("is not a directory");
}

static void test_layout_conflicts(void **state)
{
	char inside[PATH_MAX + 32], opt[PATH_MAX + 64], sub[PATH_MAX + 32];

	snprintf(inside, sizeof(inside), "%s/.cache", origin_dir);
	snprintf(opt, sizeof(opt), "cache_dir=%s", inside);
	assert_int_equal(parse("-o", opt, origin_dir, mnt_dir, NULL), -1);
	assert_error_contains("is inside the origin directory");
	assert_error_contains(inside);

	snprintf(opt, sizeof(opt), "cache_dir=%s", origin_dir);
	assert_int_equal(parse("-o", opt, origin_dir, mnt_dir, NULL), -1);
	assert_error_contains("is inside the origin directory");

	snprintf(sub, sizeof(sub), "%s/mnt", cache_dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(parse("-o", cache_opt, origin_dir, sub, NULL), -1);
	assert_error_contains("is inside cache_dir");
	assert_error_contains(sub);

	snprintf(opt, sizeof(opt), "cache_dir=%s/cache", mnt_dir);
	assert_int_equal(parse("-o", opt, origin_dir, mnt_dir, NULL), -1);
	assert_error_contains("is inside the mountpoint");

	snprintf(sub, sizeof(sub), "%s/sub", origin_dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(parse("-o", cache_opt, origin_dir, sub, NULL), -1);
	assert_error_contains("mountpoint");
	assert_error_contains("is inside the origin directory");

	/* Mounting over the origin itself is allowed. */
	assert_int_equal(parse("-o", cache_opt, origin_dir, origin_dir, NULL),
			 0);
	/* For S3 the cache may sit anywhere but around the mount. */
	snprintf(opt, sizeof(opt), "cache_dir=%s/.cache", origin_dir);
	assert_int_equal(parse("-o", opt, "s3://bucket", mnt_dir, NULL), 0);
}

static void test_nomount_root(void **state)
{
	char missing[PATH_MAX + 32], want[PATH_MAX + 32], opt[PATH_MAX + 64];

	snprintf(missing, sizeof(missing), "%s//none/./deeper/", root);
	snprintf(want, sizeof(want), "%s/none/deeper", root);
	assert_int_equal(parse("-o", cache_opt, "-o", "nomount", origin_dir,
			       missing, NULL), 0);
	assert_true(opts.nomount);
	assert_string_equal(opts.mountpoint, want);
	assert_int_equal(access(want, F_OK), -1);

	/* Off by default, and ro keeps working. */
	assert_int_equal(parse_opt("ro"), 0);
	assert_false(opts.nomount);
	assert_int_equal(parse("-o", cache_opt, "-o", "nomount,ro",
			       origin_dir, "/data", NULL), 0);
	assert_true(opts.cache.read_only);
	assert_string_equal(opts.mountpoint, "/data");

	/* A root inside the origin directory contains nothing of itself. */
	snprintf(want, sizeof(want), "%s/sub", origin_dir);
	assert_int_equal(parse("-o", cache_opt, "-o", "nomount", origin_dir,
			       want, NULL), 0);
	assert_string_equal(opts.mountpoint, want);
	snprintf(opt, sizeof(opt), "cache_dir=%s/cache", want);
	assert_int_equal(parse("-o", opt, "-o", "nomount", "s3://bucket",
			       want, NULL), -1);
	assert_error_contains("is inside the mountpoint");
}

static void test_nomount_invalid(void **state)
{
	static const struct {
		const char *root;
		const char *options;
		const char *fragment;
	} cases[] = {
		{ "data", "nomount", "invalid nomount root 'data': give an "
				     "absolute path" },
		{ "/data/../x", "nomount", "without '..'" },
		{ "/", "nomount", "invalid nomount root '/'" },
		{ "//.", "nomount", "invalid nomount root '//.'" },
		{ "/data", "nomount,allow_other", "option 'allow_other' is a "
						  "FUSE option" },
		{ "/data", "fsname=x,nomount", "option 'fsname' is a FUSE "
					       "option, and nomount runs "
					       "without FUSE: remove it" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (parse("-o", cache_opt, "-o", cases[i].options,
			  "s3://bucket", cases[i].root, NULL) == 0)
			fail_msg("root '%s' with '%s' was accepted",
				 cases[i].root, cases[i].options);
		assert_error_contains(cases[i].fragment);
	}
}

static void test_free_after_failure(void **state)
{
	assert_int_equal(parse("-o", "region=x,cache_size=bad", origin_dir,
			       mnt_dir, NULL), -1);
	assert_null(opts.region);
	assert_null(opts.fuse_argv);
	options_free(&opts);
	options_free(&opts);
}

static void test_help_lists_options(void **state)
{
	static const char *const names[] = {
		"cache_dir=PATH", "cache_size=SIZE", "min_free=SIZE|N%",
		"chunk_size=SIZE", "ttl=DURATION", "attr_ttl=DURATION",
		"neg_ttl=DURATION", "dir_ttl=DURATION", "dir_prefetch=N",
		"(default: 10000)",
		"write_mode=through|back|around", "max_dirty=SIZE",
		"writeback_delay=DURATION", "fsync=local|origin",
		"(default: 1G)", "(default: 5s)", "(default: origin)",
		"only matter with write_mode=back",
		"5 unmounted with data left in the write-back journal",
		"endpoint=URL", "region=NAME", "profile=NAME", "path_style",
		"virtual_host", "anonymous", "ro ", "log_level=LEVEL",
		"timeout=DURATION", "preload_fetch=SIZE", "allow_other",
		"nomount",
		"_netdev", "-f", "-d",
		"--help", "--version", "(default: 10G)", "(default: 4M)",
		"(default: 30s)", "usage: nearfs",
	};
	char path[PATH_MAX + 16], text[8192];
	FILE *f;
	size_t n;
	int saved = dup(STDOUT_FILENO);

	snprintf(path, sizeof(path), "%s/help.txt", root);
	fflush(stdout);
	assert_non_null(freopen(path, "w", stdout));
	options_print_help("nearfs");
	fflush(stdout);
	assert_int_equal(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
	close(saved);

	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strstr(text, names[i]))
			fail_msg("help lacks '%s'", names[i]);
	for (char *line = text; *line;) {
		char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);

		if (len > 79)
			fail_msg("help line too long: %.*s", (int)len, line);
		line += len + (nl ? 1 : 0);
	}
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_parse_size_valid),
		TEST(test_parse_size_invalid),
		TEST(test_parse_duration_valid),
		TEST(test_parse_duration_invalid),
		TEST(test_defaults),
		TEST(test_default_cache_dir),
		TEST(test_relative_cache_dir),
		TEST(test_each_option),
		TEST(test_string_options),
		TEST(test_later_option_wins),
		TEST(test_endpoint_ports),
		TEST(test_s3_option_on_directory),
		TEST(test_write_back_options),
		TEST(test_write_back_options_other_modes),
		TEST(test_owner_options),
		TEST(test_metrics_address),
		TEST(test_metrics_address_invalid),
		TEST(test_endpoint_from_env),
		TEST(test_virtual_host_needs_name),
		TEST(test_flags),
		TEST(test_help_and_version),
		TEST(test_fuse_passthrough),
		TEST(test_allow_other_adds_permissions),
		TEST(test_fuse_mount_flags),
		TEST(test_fstab_options_ignored),
		TEST(test_fstab_argument_order),
		TEST(test_invalid_values),
		TEST(test_bad_command_line),
		TEST(test_s3_origins),
		TEST(test_invalid_buckets),
		TEST(test_directory_origins),
		TEST(test_bad_mountpoints),
		TEST(test_layout_conflicts),
		TEST(test_nomount_root),
		TEST(test_nomount_invalid),
		TEST(test_free_after_failure),
		TEST(test_help_lists_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
