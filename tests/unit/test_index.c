/* test_index.c - the persistent index: reopening, damage and compaction. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "fake_origin.c"
#include "log.h"

#define CS (64u * 1024)		/* chunk size, unless a test changes it */
#define VERSION_OFFSET 8	/* after the 8-byte magic of the header */

static struct test_env *start(void **state, uint64_t size_max)
{
	return test_env_start(state, "cache-tests-index-XXXXXX", CS, size_max,
			      60000);
}

/* Read chunks [first, first + count) of path, checking their bytes. */
static void read_chunks_ok(struct cache *c, const char *path,
			   uint32_t first, uint32_t count, unsigned seed)
{
	char *buf = malloc(CS), *want = malloc(CS);

	assert_non_null(buf);
	assert_non_null(want);
	for (uint32_t i = first; i < first + count; i++) {
		uint64_t off = (uint64_t)i * CS;

		assert_int_equal(test_read_path(c, path, buf, CS, off), CS);
		test_fill_pattern(want, CS, off, seed);
		assert_memory_equal(buf, want, CS);
	}
	free(buf);
	free(want);
}

/* The path of the index of the open cache into buf. */
static void index_path(struct test_env *env, char *buf, size_t len)
{
	snprintf(buf, len, "%s/index", cache_path(env->c));
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void append_bytes(const char *path, int byte, size_t len)
{
	char buf[256];
	int fd = open(path, O_WRONLY | O_APPEND);

	assert_true(fd >= 0);
	assert_true(len <= sizeof(buf));
	memset(buf, byte, len);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void patch_u32(const char *path, off_t offset, uint32_t value)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &value, sizeof(value), offset),
			 sizeof(value));
	assert_int_equal(close(fd), 0);
}

static uint32_t read_u32(const char *path, off_t offset)
{
	uint32_t value = 0;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &value, sizeof(value), offset),
			 sizeof(value));
	assert_int_equal(close(fd), 0);
	return value;
}

/* Regular files below root/data. */
static int count_data_files(const char *root)
{
	char data[PATH_MAX + 16], sub[PATH_MAX + 512];
	struct dirent *e, *fe;
	int count = 0;
	DIR *d, *sd;

	snprintf(data, sizeof(data), "%s/data", root);
	d = opendir(data);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", data, e->d_name);
		sd = opendir(sub);
		if (!sd)
			continue;
		while ((fe = readdir(sd)))
			if (fe->d_name[0] != '.')
				count++;
		closedir(sd);
	}
	closedir(d);
	return count;
}

static void test_index_chunks_survive_reopen(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	struct cache_stats st;

	test_put_pattern(env->fo, "f", 3 * CS, 1);
	read_chunks_ok(env->c, "f", 0, 3, 1);
	test_env_close(env);

	assert_int_equal(test_env_open(env), 0);
	st = test_stats(env->c);
	assert_int_equal(st.chunks_cached, 3);
	assert_int_equal(st.bytes_cached, 3 * CS);
	assert_int_equal(st.objects_cached, 1);
	fake_reset_calls(env->fo);
	read_chunks_ok(env->c, "f", 0, 3, 1);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
	/* The time of the last check survives the reopen. */
	assert_int_equal(fake_calls(env->fo, FAKE_STAT), 0);
}

static void test_index_check_time_expires(void **state)
{
	struct test_env *env = start(state, 64 * CS);

	test_put_pattern(env->fo, "f", 2 * CS, 1);
	read_chunks_ok(env->c, "f", 0, 2, 1);
	test_env_close(env);

	fake_clock_advance(61000);
	assert_int_equal(test_env_open(env), 0);
	fake_reset_calls(env->fo);
	read_chunks_ok(env->c, "f", 0, 2, 1);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
	assert_int_equal(fake_calls(env->fo, FAKE_STAT), 1);
}

static void test_index_torn_record_drops_only_it(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	char path[PATH_MAX + 16];

	test_put_pattern(env->fo, "f", 3 * CS, 2);
	read_chunks_ok(env->c, "f", 0, 3, 2);
	index_path(env, path, sizeof(path));
	test_env_close(env);
	assert_int_equal(truncate(path, file_size(path) - 3), 0);

	assert_int_equal(test_env_open(env), 0);
	assert_int_equal(test_stats(env->c).chunks_cached, 2);
	fake_reset_calls(env->fo);
	read_chunks_ok(env->c, "f", 0, 3, 2);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 1);
}

static void test_index_garbage_tail_ignored(void **state)
{
	static const int fills[] = { 0xa5, 0x00, 0xff };
	struct test_env *env = start(state, 64 * CS);
	char path[PATH_MAX + 16];
	off_t good;

	test_put_pattern(env->fo, "f", 3 * CS, 3);
	read_chunks_ok(env->c, "f", 0, 3, 3);
	index_path(env, path, sizeof(path));
	for (size_t i = 0; i < sizeof(fills) / sizeof(fills[0]); i++) {
		test_env_close(env);
		good = file_size(path);
		append_bytes(path, fills[i], 200);

		assert_int_equal(test_env_open(env), 0);
		assert_int_equal(test_stats(env->c).chunks_cached, 3);
		/* The damaged tail was cut off. */
		assert_int_equal(file_size(path), good);
		fake_reset_calls(env->fo);
		read_chunks_ok(env->c, "f", 0, 3, 3);
		assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
	}
}

static void test_index_unknown_version_rejected(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	char path[PATH_MAX + 16];

	test_put_pattern(env->fo, "f", CS, 4);
	read_chunks_ok(env->c, "f", 0, 1, 4);
	index_path(env, path, sizeof(path));
	test_env_close(env);
	patch_u32(path, VERSION_OFFSET, 99);

	assert_int_equal(test_env_open(env), -EPROTO);
	assert_null(env->c);
	/* The message names the version found and what to do about it. */
	assert_non_null(strstr(env->err, "version 99"));
	assert_non_null(strstr(env->err, "cache_dir"));
	/* The rejected index is left as it was. */
	assert_int_equal(read_u32(path, VERSION_OFFSET), 99);
}

static void test_index_bad_magic_rejected(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	char path[PATH_MAX + 16];

	test_put_pattern(env->fo, "f", CS, 5);
	read_chunks_ok(env->c, "f", 0, 1, 5);
	index_path(env, path, sizeof(path));
	test_env_close(env);
	patch_u32(path, 0, 0x21212121);

	assert_int_equal(test_env_open(env), -EPROTO);
	assert_null(env->c);
	assert_non_null(strstr(env->err, "not a nearfs cache index"));
	assert_non_null(strstr(env->err, "cache_dir"));
}

static void test_index_chunk_size_change_resets(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	char root[PATH_MAX];
	struct cache_stats st;
	char buf[4096];

	test_put_pattern(env->fo, "f", 3 * CS, 6);
	read_chunks_ok(env->c, "f", 0, 3, 6);
	snprintf(root, sizeof(root), "%s", cache_path(env->c));
	test_env_close(env);
	assert_int_equal(count_data_files(root), 1);

	env->cfg.chunk_size = 2 * CS;
	assert_int_equal(test_env_open(env), 0);
	st = test_stats(env->c);
	assert_int_equal(st.chunks_cached, 0);
	assert_int_equal(st.bytes_cached, 0);
	assert_int_equal(st.objects_cached, 0);
	assert_int_equal(count_data_files(root), 0);

	fake_reset_calls(env->fo);
	assert_int_equal(test_read_path(env->c, "f", buf, sizeof(buf), 0),
			 sizeof(buf));
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 1);
	assert_int_equal(fake_last_read_len(env->fo), 2 * CS);
}

static void test_index_compaction_keeps_content(void **state)
{
	struct test_env *env = start(state, 2 * CS);
	char path[PATH_MAX + 16];
	struct cache_stats st;
	off_t before;

	/* Three passes over 8 chunks through a 2-chunk budget log many
	 * CHUNK and CHUNK_DEL records that a compaction drops. */
	test_put_pattern(env->fo, "f", 8 * CS, 7);
	for (int pass = 0; pass < 3; pass++)
		read_chunks_ok(env->c, "f", 0, 8, 7);
	index_path(env, path, sizeof(path));
	before = file_size(path);
	test_env_close(env);
	assert_true(file_size(path) < before);

	assert_int_equal(test_env_open(env), 0);
	st = test_stats(env->c);
	assert_int_equal(st.chunks_cached, 2);
	assert_int_equal(st.bytes_cached, 2 * CS);
	fake_reset_calls(env->fo);
	read_chunks_ok(env->c, "f", 6, 2, 7);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
}

/* The engine's working folder is env->dir (see test_env_open): the index
 * and its compacted copy must stay inside the cache folder below it. */
static void test_index_compaction_stays_in_folder(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	char stray[PATH_MAX + 16];
	struct stat st;

	test_put_pattern(env->fo, "f", CS, 8);
	read_chunks_ok(env->c, "f", 0, 1, 8);
	test_env_close(env);
	snprintf(stray, sizeof(stray), "%s/index", env->dir);
	assert_int_equal(stat(stray, &st), -1);
	snprintf(stray, sizeof(stray), "%s/index.new", env->dir);
	assert_int_equal(stat(stray, &st), -1);
}

static void test_index_lru_order_survives_reopen(void **state)
{
	struct test_env *env = start(state, 2 * CS);

	test_put_pattern(env->fo, "a", CS, 10);
	test_put_pattern(env->fo, "b", CS, 11);
	test_put_pattern(env->fo, "c", CS, 12);
	read_chunks_ok(env->c, "a", 0, 1, 10);
	read_chunks_ok(env->c, "b", 0, 1, 11);
	read_chunks_ok(env->c, "a", 0, 1, 10);
	test_env_close(env);

	assert_int_equal(test_env_open(env), 0);
	fake_reset_calls(env->fo);
	read_chunks_ok(env->c, "c", 0, 1, 12);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 1);
	/* b was the least recently used chunk before the restart. */
	read_chunks_ok(env->c, "a", 0, 1, 10);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 1);
	read_chunks_ok(env->c, "b", 0, 1, 11);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 2);
}

/* A copy of the live log taken while the cache is open is what a crash
 * leaves behind: replaying it must give the state at that moment. */
static void test_index_log_replays_without_compaction(void **state)
{
	struct test_env *env = start(state, 2 * CS);
	char path[PATH_MAX + 16], saved[PATH_MAX + 32];
	struct cache_stats st;

	test_put_pattern(env->fo, "a", CS, 20);
	test_put_pattern(env->fo, "b", CS, 21);
	test_put_pattern(env->fo, "c", CS, 22);
	read_chunks_ok(env->c, "a", 0, 1, 20);
	read_chunks_ok(env->c, "b", 0, 1, 21);
	read_chunks_ok(env->c, "c", 0, 1, 22);
	index_path(env, path, sizeof(path));
	snprintf(saved, sizeof(saved), "%s.saved", path);
	test_copy_file(path, saved);
	test_env_close(env);
	test_copy_file(saved, path);
	unlink(saved);

	assert_int_equal(test_env_open(env), 0);
	st = test_stats(env->c);
	assert_int_equal(st.chunks_cached, 2);
	assert_int_equal(st.bytes_cached, 2 * CS);
	assert_int_equal(st.objects_cached, 2);
	fake_reset_calls(env->fo);
	read_chunks_ok(env->c, "b", 0, 1, 21);
	read_chunks_ok(env->c, "c", 0, 1, 22);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
	read_chunks_ok(env->c, "a", 0, 1, 20);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 1);
}

static void test_index_budget_enforced_at_open(void **state)
{
	struct test_env *env = start(state, 4 * CS);
	struct cache_stats st;

	test_put_pattern(env->fo, "f", 4 * CS, 30);
	read_chunks_ok(env->c, "f", 0, 4, 30);
	test_env_close(env);

	env->cfg.size_max = 2 * CS;
	assert_int_equal(test_env_open(env), 0);
	st = test_stats(env->c);
	assert_int_equal(st.size_max, 2 * CS);
	assert_true(st.bytes_cached <= st.size_max);
}

static void test_index_rename_survives_reopen(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	struct cache_file *f;
	bool changed;

	test_put_pattern(env->fo, "a", 2 * CS, 40);
	read_chunks_ok(env->c, "a", 0, 2, 40);
	assert_int_equal(cache_rename(env->c, "a", "b", 0, NULL), 0);
	test_env_close(env);

	assert_int_equal(test_env_open(env), 0);
	assert_int_equal(test_stats(env->c).chunks_cached, 2);
	fake_reset_calls(env->fo);
	read_chunks_ok(env->c, "b", 0, 2, 40);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
	assert_int_equal(cache_file_open(env->c, "a", O_RDONLY, &f,
					 &changed), -ENOENT);
}

static void test_index_unlinked_object_not_restored(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	char root[PATH_MAX];
	struct cache_stats st;

	test_put_pattern(env->fo, "f", 2 * CS, 50);
	read_chunks_ok(env->c, "f", 0, 2, 50);
	snprintf(root, sizeof(root), "%s", cache_path(env->c));
	assert_int_equal(cache_unlink(env->c, "f"), 0);
	test_env_close(env);
	assert_int_equal(count_data_files(root), 0);

	assert_int_equal(test_env_open(env), 0);
	st = test_stats(env->c);
	assert_int_equal(st.chunks_cached, 0);
	assert_int_equal(st.bytes_cached, 0);
	assert_int_equal(st.objects_cached, 0);
}

static void test_index_new_version_replaces_old(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	struct cache_stats st;

	test_put_pattern(env->fo, "f", 2 * CS, 60);
	read_chunks_ok(env->c, "f", 0, 2, 60);
	test_put_pattern(env->fo, "f", 2 * CS, 61);
	fake_clock_advance(env->cfg.ttl_ms + 1);
	read_chunks_ok(env->c, "f", 0, 2, 61);
	test_env_close(env);

	assert_int_equal(test_env_open(env), 0);
	st = test_stats(env->c);
	assert_int_equal(st.chunks_cached, 2);
	assert_int_equal(st.objects_cached, 1);
	fake_reset_calls(env->fo);
	read_chunks_ok(env->c, "f", 0, 2, 61);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
}

/* An argument runs only the tests whose names match it (cmocka pattern). */
int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_index_chunks_survive_reopen,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_index_check_time_expires,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_index_torn_record_drops_only_it,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_index_garbage_tail_ignored,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_index_unknown_version_rejected,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_index_bad_magic_rejected,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_index_chunk_size_change_resets,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_index_compaction_keeps_content,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_index_compaction_stays_in_folder,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_index_lru_order_survives_reopen,
					  test_env_teardown),
		cmocka_unit_test_teardown(
			test_index_log_replays_without_compaction,
			test_env_teardown),
		cmocka_unit_test_teardown(test_index_budget_enforced_at_open,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_index_rename_survives_reopen,
					  test_env_teardown),
		cmocka_unit_test_teardown(
			test_index_unlinked_object_not_restored,
			test_env_teardown),
		cmocka_unit_test_teardown(test_index_new_version_replaces_old,
					  test_env_teardown),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	log_max_level = LOG_ERR;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
