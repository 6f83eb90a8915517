/* test_export.c - descriptors of open files written and read without the
 * engine (cache_file_export, cache_file_import, cache_file_copy) in each
 * write mode, over a fake origin. */
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

#include "cache.h"
#include "fake_origin.c"
#include "log.h"

#define CS (64u * 1024)

/* Open a cache in write mode over an empty fake origin. */
static struct test_env *start_mode(void **state, enum write_mode mode,
				   uint64_t size_max)
{
	struct test_env *env = test_env_create(state, "export-tests-XXXXXX",
					       CS, size_max, 60000);

	env->cfg.write_mode = mode;
	env->cfg.writeback_delay_ms = 60000;
	env->cfg.max_dirty = 64 * CS;
	assert_int_equal(test_env_open(env), 0);
	return env;
}

/* Export f and return the descriptor. */
static int export_fd(struct cache_file *f)
{
	int fd = -1;

	assert_int_equal(cache_file_export(f, &fd), 0);
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
	return fd;
}

/* Assert that the whole content of fd is the len bytes of want. */
static void assert_fd_has(int fd, const void *want, size_t len)
{
	char *buf = malloc(len + 1);
	struct stat st;

	assert_non_null(buf);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, len);
	assert_int_equal(pread(fd, buf, len + 1, 0), len);
	assert_memory_equal(buf, want, len);
	free(buf);
}

static void put_at(int fd, const void *data, size_t len, uint64_t offset)
{
	assert_int_equal(pwrite(fd, data, len, offset), len);
}

/* Import the writes of f's descriptor as its last ones and commit. */
static int import_commit(struct cache_file *f)
{
	assert_int_equal(cache_file_import(f, true), 0);
	return cache_file_commit(f);
}

static void test_export_holds_current_content(void **state)
{
	struct test_env *env = start_mode(state, WRITE_THROUGH, 64 * CS);
	size_t size = 2 * CS + 100;
	char *want = test_pattern_new(size, 0, 1);
	struct cache_file *f;
	int fd;

	assert_int_equal(fake_put_file(env->fo, "f", want, size), 0);
	f = test_open_file(env->c, "f", O_RDWR);
	fd = export_fd(f);
	assert_fd_has(fd, want, size);
	close(fd);
	cache_file_release(f);
	free(want);
}

static void test_export_through_stores_writes(void **state)
{
	struct test_env *env = start_mode(state, WRITE_THROUGH, 64 * CS);
	size_t size = 2 * CS + 100;
	char *want = test_pattern_new(size, 0, 2);
	struct cache_file *f;
	unsigned reads;
	int fd;

	assert_int_equal(fake_put_file(env->fo, "f", want, size), 0);
	f = test_open_file(env->c, "f", O_RDWR);
	fd = export_fd(f);
	/* Across the first chunk boundary, and in the short last chunk. */
	memset(want + CS - 10, 'x', 20);
	put_at(fd, want + CS - 10, 20, CS - 10);
	memset(want + size - 5, 'y', 5);
	put_at(fd, want + size - 5, 5, size - 5);
	assert_int_equal(import_commit(f), 0);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 1);
	test_assert_origin_has(env->fo, "f", want, size);
	close(fd);
	cache_file_release(f);

	reads = fake_calls(env->fo, FAKE_READ);
	test_assert_cache_has(env->c, "f", want, size);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), reads);
	free(want);
}

static void test_export_truncate_and_extend(void **state)
{
	struct test_env *env = start_mode(state, WRITE_THROUGH, 64 * CS);
	size_t size = 3 * CS, cut = CS / 2, end = 3 * CS + 5 + 4;
	char *orig = test_pattern_new(size, 0, 3);
	char *want = calloc(1, end);
	struct cache_file *f;
	int fd;

	assert_non_null(want);
	assert_int_equal(fake_put_file(env->fo, "f", orig, size), 0);
	memcpy(want, orig, cut);
	memcpy(want + end - 4, "tail", 4);

	f = test_open_file(env->c, "f", O_RDWR);
	fd = export_fd(f);
	assert_int_equal(ftruncate(fd, cut), 0);
	put_at(fd, "tail", 4, end - 4);
	assert_int_equal(import_commit(f), 0);
	test_assert_origin_has(env->fo, "f", want, end);
	close(fd);
	cache_file_release(f);
	test_assert_cache_has(env->c, "f", want, end);

	/* Shrink only. */
	f = test_open_file(env->c, "f", O_RDWR);
	fd = export_fd(f);
	assert_int_equal(ftruncate(fd, 10), 0);
	assert_int_equal(import_commit(f), 0);
	test_assert_origin_has(env->fo, "f", want, 10);
	close(fd);
	cache_file_release(f);
	free(orig);
	free(want);
}

/*
 * An fsync while the descriptor stays in use stores what it holds.  The
 * descriptor keeps writing to the file the engine stores from, so a
 * truncation and writes after the fsync reach the origin at the next
 * commit.
 */
static void test_export_fsync_then_more_writes(void **state)
{
	struct test_env *env = start_mode(state, WRITE_THROUGH, 64 * CS);
	size_t size = CS + 7, size2 = CS / 2;
	char *first = test_pattern_new(size, 0, 4);
	char *second = test_pattern_new(size2, 0, 5);
	struct cache_file *f;
	int fd;

	assert_int_equal(cache_file_create(env->c, "f", 0640, getuid(),
					   getgid(), &f), 0);
	fd = export_fd(f);
	assert_fd_has(fd, "", 0);
	put_at(fd, first, size, 0);
	assert_int_equal(cache_file_import(f, false), 0);
	assert_int_equal(cache_file_fsync(f), 0);
	test_assert_origin_has(env->fo, "f", first, size);

	assert_int_equal(ftruncate(fd, 0), 0);
	put_at(fd, second, size2, 0);
	test_assert_origin_has(env->fo, "f", first, size);
	test_assert_cache_has(env->c, "f", second, size2);
	assert_int_equal(import_commit(f), 0);
	test_assert_origin_has(env->fo, "f", second, size2);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 2);
	close(fd);
	cache_file_release(f);
	test_assert_cache_has(env->c, "f", second, size2);
	free(first);
	free(second);
}

static void test_export_o_trunc_is_empty(void **state)
{
	struct test_env *env = start_mode(state, WRITE_THROUGH, 64 * CS);
	struct cache_file *f;
	int fd;

	test_put_text(env->fo, "f", "old content");
	f = test_open_file(env->c, "f", O_WRONLY | O_TRUNC);
	fd = export_fd(f);
	assert_fd_has(fd, "", 0);
	put_at(fd, "new", 3, 0);
	assert_int_equal(import_commit(f), 0);
	test_assert_origin_has(env->fo, "f", "new", 3);
	close(fd);
	cache_file_release(f);
}

/* The engine takes the mtime that the program gave the copy. */
static void test_export_keeps_program_mtime(void **state)
{
	struct test_env *env = start_mode(state, WRITE_THROUGH, 64 * CS);
	struct timespec times[2] = {
		{ .tv_sec = 1000000000, .tv_nsec = 0 },
		{ .tv_sec = 1234567890, .tv_nsec = 0 },
	};
	struct origin_attr attr;
	struct cache_file *f;
	int fd;

	assert_int_equal(cache_file_create(env->c, "f", 0644, getuid(),
					   getgid(), &f), 0);
	fd = export_fd(f);
	put_at(fd, "dated", 5, 0);
	assert_int_equal(futimens(fd, times), 0);
	assert_int_equal(import_commit(f), 0);
	close(fd);
	cache_file_release(f);
	assert_int_equal(cache_getattr(env->c, "f", &attr), 0);
	assert_int_equal(attr.mtime.tv_sec, 1234567890);
	assert_int_equal(attr.size, 5);
}

static void test_export_around_keeps_no_copy(void **state)
{
	struct test_env *env = start_mode(state, WRITE_AROUND, 64 * CS);
	size_t size = CS + 1;
	char *want = test_pattern_new(size, 0, 6);
	struct cache_file *f;
	unsigned reads;
	int fd;

	test_put_text(env->fo, "f", "short");
	f = test_open_file(env->c, "f", O_RDWR);
	fd = export_fd(f);
	assert_fd_has(fd, "short", 5);
	put_at(fd, want, size, 0);
	assert_int_equal(import_commit(f), 0);
	test_assert_origin_has(env->fo, "f", want, size);
	close(fd);
	cache_file_release(f);

	reads = fake_calls(env->fo, FAKE_READ);
	test_assert_cache_has(env->c, "f", want, size);
	assert_true(fake_calls(env->fo, FAKE_READ) > reads);
	free(want);
}

static void test_export_back_uploads_at_flush(void **state)
{
	struct test_env *env = start_mode(state, WRITE_BACK, 64 * CS);
	size_t size = 2 * CS + 9;
	char *want = test_pattern_new(size, 0, 7);
	struct cache_stats st;
	struct cache_file *f;
	int fd;

	test_put_text(env->fo, "f", "before");
	f = test_open_file(env->c, "f", O_RDWR);
	fd = export_fd(f);
	put_at(fd, want, size, 0);
	assert_int_equal(import_commit(f), 0);
	close(fd);
	cache_file_release(f);

	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 0);
	test_assert_origin_has(env->fo, "f", "before", 6);
	test_assert_cache_has(env->c, "f", want, size);
	st = test_stats(env->c);
	assert_int_equal(st.uploads_pending, 1);
	assert_int_equal(st.dirty_bytes, size);

	assert_int_equal(cache_flush(env->c, "", NULL, NULL), 0);
	test_assert_origin_has(env->fo, "f", want, size);
	assert_int_equal(test_stats(env->c).uploads_pending, 0);
	free(want);
}

static void test_export_back_journal_survives_reopen(void **state)
{
	struct test_env *env = start_mode(state, WRITE_BACK, 64 * CS);
	size_t size = 3 * CS, cut = CS + 3;
	char *orig = test_pattern_new(size, 0, 8);
	char *want = malloc(cut + 4);
	struct cache_file *f;
	int fd;

	assert_non_null(want);
	assert_int_equal(fake_put_dir(env->fo, "d"), 0);
	assert_int_equal(fake_put_file(env->fo, "d/f", orig, size), 0);
	memcpy(want, orig, cut);
	memcpy(want + cut, "more", 4);

	f = test_open_file(env->c, "d/f", O_RDWR);
	fd = export_fd(f);
	assert_int_equal(ftruncate(fd, cut), 0);
	put_at(fd, "more", 4, cut);
	assert_int_equal(import_commit(f), 0);
	close(fd);
	cache_file_release(f);
	test_env_close(env);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 0);
	test_assert_origin_has(env->fo, "d/f", orig, size);

	assert_int_equal(test_env_open(env), 0);
	test_assert_cache_has(env->c, "d/f", want, cut + 4);
	assert_int_equal(cache_flush(env->c, "", NULL, NULL), 0);
	test_assert_origin_has(env->fo, "d/f", want, cut + 4);
	assert_int_equal(test_stats(env->c).uploads_done, 1);
	free(orig);
	free(want);
}

static void test_export_rejects_misuse(void **state)
{
	struct test_env *env = start_mode(state, WRITE_THROUGH, 64 * CS);
	struct cache_file *f;
	int fd = 0;

	test_put_text(env->fo, "f", "text");
	f = test_open_file(env->c, "f", O_RDONLY);
	assert_int_equal(cache_file_export(f, &fd), -EBADF);
	assert_int_equal(fd, -1);
	assert_int_equal(cache_file_import(f, true), -EINVAL);
	cache_file_release(f);

	f = test_open_file(env->c, "f", O_RDWR);
	assert_int_equal(cache_file_import(f, true), -EINVAL);
	cache_file_release(f);
}

/* Assert that fd is a read-only descriptor of an unlinked file with the
 * len bytes of want. */
static void assert_private_copy(int fd, const void *want, size_t len)
{
	struct stat st;

	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_nlink, 0);
	assert_fd_has(fd, want, len);
}

static void test_copy_of_pending_file(void **state)
{
	struct test_env *env = start_mode(state, WRITE_BACK, 64 * CS);
	size_t size = CS + 50;
	char *want = test_pattern_new(size, 0, 9);
	struct cache_file *f;
	int fd;

	assert_int_equal(cache_file_create(env->c, "p", 0644, getuid(),
					   getgid(), &f), 0);
	assert_int_equal(cache_file_write(f, want, size, 0), size);
	assert_int_equal(cache_file_commit(f), 0);
	cache_file_release(f);

	f = test_open_file(env->c, "p", O_RDONLY);
	assert_int_equal(cache_file_copy(f, &fd), 0);
	cache_file_release(f);
	assert_private_copy(fd, want, size);
	close(fd);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
	free(want);
}

static void test_copy_larger_than_cache(void **state)
{
	struct test_env *env = start_mode(state, WRITE_THROUGH, 4 * CS);
	size_t size = 6 * CS + 7;
	char *want = test_pattern_new(size, 0, 10);
	struct cache_file *f;
	int fd;

	assert_int_equal(fake_put_file(env->fo, "big", want, size), 0);
	f = test_open_file(env->c, "big", O_RDONLY);
	assert_int_equal(cache_file_copy(f, &fd), 0);
	cache_file_release(f);
	assert_private_copy(fd, want, size);
	close(fd);
	assert_true(test_stats(env->c).bytes_cached <= 4 * CS);
	free(want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_export_holds_current_content,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_export_through_stores_writes,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_export_truncate_and_extend,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_export_fsync_then_more_writes,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_export_o_trunc_is_empty,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_export_keeps_program_mtime,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_export_around_keeps_no_copy,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_export_back_uploads_at_flush,
					  test_env_teardown),
		cmocka_unit_test_teardown(
			test_export_back_journal_survives_reopen,
			test_env_teardown),
		cmocka_unit_test_teardown(test_export_rejects_misuse,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_copy_of_pending_file,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_copy_larger_than_cache,
					  test_env_teardown),
	};

	log_max_level = LOG_ERR;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
