/* test_lend.c - lending read-only descriptors of complete local copies,
 * over a fake origin. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "cache.h"
#include "fake_origin.c"
#include "log.h"

#define CS (64u * 1024)		/* chunk size of every test */
#define TTL_MS 60000

static struct test_env *start(void **state, uint64_t size_max)
{
	return test_env_start(state, "cache-tests-lend-XXXXXX", CS, size_max,
			      TTL_MS);
}

/* Lend path for the version cache_getattr() shows, as a program that
 * opened it would ask. */
static int lend(struct cache *c, const char *path, uint64_t fetch_max,
		int *fd, const char **reason)
{
	struct cache_lend_request req = { .fetch_max = fetch_max };
	struct origin_attr attr;

	assert_int_equal(cache_getattr(c, path, &attr), 0);
	req.size = attr.size;
	req.mtime = attr.mtime;
	return cache_lend(c, path, &req, fd, reason);
}

/* Lend path and expect a descriptor. */
static int lend_ok(struct cache *c, const char *path, uint64_t fetch_max)
{
	const char *reason = NULL;
	int fd = -1;

	assert_int_equal(lend(c, path, fetch_max, &fd, &reason), 0);
	assert_null(reason);
	assert_true(fd >= 0);
	return fd;
}

/* Lend path and expect a refusal with the given reason. */
static void lend_refused(struct cache *c, const char *path,
			 uint64_t fetch_max, const char *want)
{
	const char *reason = NULL;
	int fd = 0;

	assert_int_equal(lend(c, path, fetch_max, &fd, &reason), 0);
	assert_int_equal(fd, -1);
	assert_non_null(reason);
	assert_string_equal(reason, want);
}

/* XXH3-64 of the whole content of fd, which must be len bytes long. */
static uint64_t fd_sum(int fd, size_t len)
{
	char *buf = malloc(len + 1);
	size_t done = 0;
	uint64_t sum;

	assert_non_null(buf);
	for (;;) {
		ssize_t n = pread(fd, buf + done, len + 1 - done, done);

		assert_true(n >= 0);
		if (n == 0)
			break;
		done += n;
		assert_true(done <= len);
	}
	assert_int_equal(done, len);
	sum = XXH3_64bits(buf, len);
	free(buf);
	return sum;
}

static uint64_t pattern_sum(size_t len, unsigned seed)
{
	char *buf = test_pattern_new(len, 0, seed);
	uint64_t sum = XXH3_64bits(buf, len);

	free(buf);
	return sum;
}

/* Read path whole through the cache, so that every chunk is cached. */
static void read_whole(struct cache *c, const char *path, size_t size,
		       unsigned seed)
{
	char *buf = malloc(size + 1);

	assert_non_null(buf);
	assert_int_equal(test_read_path(c, path, buf, size + 1, 0), size);
	assert_int_equal(XXH3_64bits(buf, size), pattern_sum(size, seed));
	free(buf);
}

static nlink_t link_count(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_nlink;
}

static void test_lend_complete_file(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	size_t size = 3 * CS + 1000;
	struct cache_stats st;
	int fd;

	test_put_pattern(env->fo, "a", size, 1);
	read_whole(env->c, "a", size, 1);
	fd = lend_ok(env->c, "a", 0);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(fd_sum(fd, size), pattern_sum(size, 1));
	st = test_stats(env->c);
	assert_int_equal(st.lends, 1);
	assert_int_equal(st.lends_refused, 0);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 4);
	close(fd);
}

static void test_lend_empty_file(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	struct cache_file *f;
	bool changed;
	int fd;

	/* An object without chunks lasts while a handle pins it, as the
	 * program's own descriptor does. */
	test_put_pattern(env->fo, "empty", 0, 1);
	assert_int_equal(cache_file_open(env->c, "empty", O_RDONLY, &f,
					 &changed), 0);
	fd = lend_ok(env->c, "empty", 0);
	assert_int_equal(fd_sum(fd, 0), XXH3_64bits("", 0));
	cache_file_release(f);
	close(fd);
}

static void test_lend_incomplete_refused(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	char buf[100];

	test_put_pattern(env->fo, "a", 4 * CS, 2);
	assert_int_equal(test_read_path(env->c, "a", buf, sizeof(buf), 0),
			 sizeof(buf));
	lend_refused(env->c, "a", 0, "the copy is not complete");
	/* A limit below the size does not fetch either. */
	lend_refused(env->c, "a", 4 * CS - 1, "the copy is not complete");
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 1);
	assert_int_equal(test_stats(env->c).lends_refused, 2);
	assert_int_equal(test_stats(env->c).lends, 0);
}

static void test_lend_uncached_refused(void **state)
{
	struct test_env *env = start(state, 64 * CS);

	test_put_pattern(env->fo, "a", CS, 3);
	lend_refused(env->c, "a", 0, "the file is not cached");
}

static void test_lend_version_mismatch_refused(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	struct cache_lend_request req = { 0 };
	struct origin_attr attr;
	const char *reason;
	int fd;

	test_put_pattern(env->fo, "a", 2 * CS, 4);
	read_whole(env->c, "a", 2 * CS, 4);
	assert_int_equal(cache_getattr(env->c, "a", &attr), 0);

	req.size = attr.size + 1;
	req.mtime = attr.mtime;
	assert_int_equal(cache_lend(env->c, "a", &req, &fd, &reason), 0);
	assert_int_equal(fd, -1);
	assert_string_equal(reason, "the version changed");

	req.size = attr.size;
	req.mtime.tv_nsec = (attr.mtime.tv_nsec + 1) % 1000000000;
	assert_int_equal(cache_lend(env->c, "a", &req, &fd, &reason), 0);
	assert_int_equal(fd, -1);
	assert_string_equal(reason, "the version changed");

	req.mtime = attr.mtime;
	assert_int_equal(cache_lend(env->c, "a", &req, &fd, &reason), 0);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(test_stats(env->c).lends_refused, 2);
	assert_int_equal(test_stats(env->c).lends, 1);
}

static bool deny_all(void *arg, const struct origin_attr *attr)
{
	unsigned *calls = arg;

	assert_true(S_ISREG(attr->mode));
	(*calls)++;
	return false;
}

static void test_lend_permission_refused(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	struct cache_lend_request req = { 0 };
	struct origin_attr attr;
	const char *reason;
	unsigned calls = 0;
	int fd;

	test_put_pattern(env->fo, "a", CS, 5);
	read_whole(env->c, "a", CS, 5);
	assert_int_equal(cache_getattr(env->c, "a", &attr), 0);
	req.size = attr.size;
	req.mtime = attr.mtime;
	req.may_read = deny_all;
	req.arg = &calls;
	assert_int_equal(cache_lend(env->c, "a", &req, &fd, &reason), 0);
	assert_int_equal(fd, -1);
	assert_string_equal(reason, "permission denied");
	assert_true(calls >= 1);
}

static void test_lend_writer_refused(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	struct cache_file *f;
	bool changed;
	int fd;

	test_put_pattern(env->fo, "a", 2 * CS, 6);
	read_whole(env->c, "a", 2 * CS, 6);
	assert_int_equal(cache_file_open(env->c, "a", O_WRONLY, &f,
					 &changed), 0);
	lend_refused(env->c, "a", 0,
		     "the file is open for writing or has unsaved writes");
	cache_file_release(f);
	fd = lend_ok(env->c, "a", 0);
	assert_int_equal(fd_sum(fd, 2 * CS), pattern_sum(2 * CS, 6));
	close(fd);
}

static void test_lend_pending_upload_refused(void **state)
{
	struct test_env *env = test_env_create(state, "cache-tests-lend-XXXXXX",
					       CS, 64 * CS, TTL_MS);
	char *data = test_pattern_new(CS, 0, 7);
	struct cache_file *f;
	bool changed;

	env->cfg.write_mode = WRITE_BACK;
	env->cfg.writeback_delay_ms = 3600 * 1000;
	assert_int_equal(test_env_open(env), 0);
	test_put_pattern(env->fo, "a", CS, 8);
	read_whole(env->c, "a", CS, 8);
	assert_int_equal(cache_file_open(env->c, "a", O_WRONLY, &f,
					 &changed), 0);
	assert_int_equal(cache_file_write(f, data, CS, 0), CS);
	assert_int_equal(cache_file_flush(f, false), 0);
	cache_file_release(f);
	/* Closed, and waiting for its upload: the fake clock stays put. */
	assert_int_equal(test_stats(env->c).uploads_pending, 1);
	lend_refused(env->c, "a", 0,
		     "the file is open for writing or has unsaved writes");
	free(data);
}

static void test_lend_survives_eviction(void **state)
{
	struct test_env *env = start(state, 4 * CS);
	uint64_t size = 3 * CS, want = pattern_sum(size, 9);
	struct cache_stats st;
	int fd, again;

	test_put_pattern(env->fo, "a", size, 9);
	test_put_pattern(env->fo, "b", size, 10);
	test_put_pattern(env->fo, "c", size, 11);
	read_whole(env->c, "a", size, 9);
	fd = lend_ok(env->c, "a", 0);
	assert_int_equal(link_count(fd), 1);

	read_whole(env->c, "b", size, 10);
	read_whole(env->c, "c", size, 11);
	st = test_stats(env->c);
	assert_true(st.bytes_cached <= st.size_max);
	assert_int_equal(st.bytes_cached, 4 * CS);
	assert_int_equal(st.chunks_cached, 4);
	/* a went whole, with its data file, and then two chunks of b. */
	assert_int_equal(st.evictions, 5);
	assert_int_equal(st.objects_cached, 2);
	assert_int_equal(link_count(fd), 0);
	assert_int_equal(fd_sum(fd, size), want);

	/* The next open makes a new copy, which can be lent again. */
	read_whole(env->c, "a", size, 9);
	again = lend_ok(env->c, "a", 0);
	assert_int_equal(link_count(again), 1);
	assert_int_equal(fd_sum(again, size), want);
	assert_int_equal(fd_sum(fd, size), want);
	st = test_stats(env->c);
	assert_true(st.bytes_cached <= st.size_max);
	close(again);
	close(fd);
}

static void test_lend_survives_new_version(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	uint64_t size = 2 * CS + 10, new_size = CS + 20;
	char *new_data = test_pattern_new(new_size, 0, 13);
	int fd, again;

	test_put_pattern(env->fo, "a", size, 12);
	read_whole(env->c, "a", size, 12);
	fd = lend_ok(env->c, "a", 0);

	assert_int_equal(fake_put_file(env->fo, "a", new_data, new_size), 0);
	fake_clock_advance(TTL_MS + 1);
	test_assert_cache_has(env->c, "a", new_data, new_size);
	assert_int_equal(test_stats(env->c).invalidations, 1);
	assert_int_equal(link_count(fd), 0);
	assert_int_equal(fd_sum(fd, size), pattern_sum(size, 12));

	again = lend_ok(env->c, "a", 0);
	assert_int_equal(fd_sum(again, new_size),
			 XXH3_64bits(new_data, new_size));
	assert_int_equal(fd_sum(fd, size), pattern_sum(size, 12));
	close(again);
	close(fd);
	free(new_data);
}

static void test_lend_restart_then_eviction(void **state)
{
	struct test_env *env = start(state, 4 * CS);
	uint64_t size = 3 * CS, want = pattern_sum(size, 14);
	struct cache_stats st;
	int fd;

	test_put_pattern(env->fo, "a", size, 14);
	test_put_pattern(env->fo, "b", 4 * CS, 15);
	read_whole(env->c, "a", size, 14);
	fd = lend_ok(env->c, "a", 0);

	test_env_close(env);
	assert_int_equal(test_env_open(env), 0);
	st = test_stats(env->c);
	assert_int_equal(st.chunks_cached, 3);
	assert_int_equal(link_count(fd), 1);

	/* b needs the whole budget, so a must go. */
	read_whole(env->c, "b", 4 * CS, 15);
	st = test_stats(env->c);
	assert_int_equal(st.bytes_cached, 4 * CS);
	assert_int_equal(st.evictions, 3);
	assert_int_equal(link_count(fd), 0);
	assert_int_equal(fd_sum(fd, size), want);
	close(fd);
}

static void test_lend_crash_then_eviction(void **state)
{
	struct test_env *env = start(state, 4 * CS);
	uint64_t size = 2 * CS, want = pattern_sum(size, 16);
	char index[PATH_MAX + 16], saved[PATH_MAX + 16];
	int fd;

	test_put_pattern(env->fo, "a", size, 16);
	test_put_pattern(env->fo, "b", 4 * CS, 17);
	read_whole(env->c, "a", size, 16);
	fd = lend_ok(env->c, "a", 0);
	/* The index as a crash leaves it: appended to, never compacted. */
	snprintf(index, sizeof(index), "%s/index", cache_path(env->c));
	snprintf(saved, sizeof(saved), "%s/index.saved", env->dir);
	test_copy_file(index, saved);
	test_env_close(env);
	test_copy_file(saved, index);
	assert_int_equal(test_env_open(env), 0);
	assert_int_equal(test_stats(env->c).chunks_cached, 2);

	read_whole(env->c, "b", 4 * CS, 17);
	assert_int_equal(test_stats(env->c).evictions, 2);
	assert_int_equal(link_count(fd), 0);
	assert_int_equal(fd_sum(fd, size), want);
	close(fd);
}

/* Overwrite the first bytes of the only data file in the cache folder. */
static void damage_data_file(const char *root)
{
	char path[PATH_MAX + 32];
	int fd;

	/* The first object has id 1: its data file is data/01/<id>. */
	snprintf(path, sizeof(path), "%s/data/01/%016x", root, 1);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "damage", 6, 0), 6);
	close(fd);
}

static void test_lend_checks_unverified_chunks(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	uint64_t size = 2 * CS;
	char root[PATH_MAX];
	int fd;

	test_put_pattern(env->fo, "a", size, 18);
	read_whole(env->c, "a", size, 18);
	snprintf(root, sizeof(root), "%s", cache_path(env->c));
	test_env_close(env);
	damage_data_file(root);
	assert_int_equal(test_env_open(env), 0);
	lend_refused(env->c, "a", 0, "the copy is not complete");
	assert_int_equal(test_stats(env->c).checksum_failures, 1);
	/* With a fetch the damaged chunk comes again. */
	fd = lend_ok(env->c, "a", size);
	assert_int_equal(fd_sum(fd, size), pattern_sum(size, 18));
	close(fd);
}

static void test_lend_fetch_completes_file(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	uint64_t size = 5 * CS + 7;
	struct cache_stats st;
	char buf[100];
	int fd;

	test_put_pattern(env->fo, "a", size, 19);
	assert_int_equal(test_read_path(env->c, "a", buf, sizeof(buf), CS),
			 sizeof(buf));
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 1);
	fd = lend_ok(env->c, "a", size);
	assert_int_equal(fd_sum(fd, size), pattern_sum(size, 19));
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 6);
	st = test_stats(env->c);
	assert_int_equal(st.chunks_cached, 6);
	assert_int_equal(st.bytes_cached, size);
	assert_int_equal(st.lends, 1);
	close(fd);
}

static void test_lend_fetch_over_budget_refused(void **state)
{
	struct test_env *env = start(state, 2 * CS);
	uint64_t size = 3 * CS;
	struct cache_stats st;

	test_put_pattern(env->fo, "a", size, 20);
	lend_refused(env->c, "a", 0, "the file is not cached");
	read_whole(env->c, "a", size, 20);
	lend_refused(env->c, "a", size, "the copy is not complete");
	st = test_stats(env->c);
	assert_true(st.bytes_cached <= st.size_max);
}

#define LEND_TEST(fn) cmocka_unit_test_teardown(fn, test_env_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		LEND_TEST(test_lend_complete_file),
		LEND_TEST(test_lend_empty_file),
		LEND_TEST(test_lend_incomplete_refused),
		LEND_TEST(test_lend_uncached_refused),
		LEND_TEST(test_lend_version_mismatch_refused),
		LEND_TEST(test_lend_permission_refused),
		LEND_TEST(test_lend_writer_refused),
		LEND_TEST(test_lend_pending_upload_refused),
		LEND_TEST(test_lend_survives_eviction),
		LEND_TEST(test_lend_survives_new_version),
		LEND_TEST(test_lend_restart_then_eviction),
		LEND_TEST(test_lend_crash_then_eviction),
		LEND_TEST(test_lend_checks_unverified_chunks),
		LEND_TEST(test_lend_fetch_completes_file),
		LEND_TEST(test_lend_fetch_over_budget_refused),
	};

	(void)argc;
	(void)argv;
	log_max_level = LOG_ERR;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
