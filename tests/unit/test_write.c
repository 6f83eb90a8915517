/* test_write.c - writes, truncation, rename and unlink in write-through
 * mode, over a fake origin. */
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
#include "internal.h"
#include "log.h"

#define CS (64u * 1024)
#define NAMES_MAX 16

static struct test_env *start(void **state)
{
	return test_env_start(state, "cache-tests-write-XXXXXX", CS, 64 * CS,
			      60000);
}

/* Create path on the fake origin with size pattern bytes, and return
 * them in a buffer that the caller frees. */
static char *put_pattern(struct fake_origin *fo, const char *path,
			 size_t size, unsigned seed)
{
	char *buf = test_pattern_new(size, 0, seed);

	assert_int_equal(fake_put_file(fo, path, buf, size), 0);
	return buf;
}

struct names {
	size_t count;
	char name[NAMES_MAX][64];
};

static int collect_name(void *arg, const char *name,
			const struct origin_attr *attr)
{
	struct names *n = arg;

	if (n->count == NAMES_MAX)
		return 1;
	snprintf(n->name[n->count++], sizeof(n->name[0]), "%s", name);
	return 0;
}

static bool listed(struct cache *c, const char *dir, const char *name)
{
	struct names n = { 0 };

	assert_int_equal(cache_readdir(c, dir, collect_name, &n), 0);
	for (size_t i = 0; i < n.count; i++)
		if (strcmp(n.name[i], name) == 0)
			return true;
	return false;
}

static void test_write_create_commit_stores_bytes(void **state)
{
	struct test_env *env = start(state);
	struct cache_file *f;

	assert_int_equal(cache_file_create(env->c, "n", 0644, getuid(),
					   getgid(), &f), 0);
	assert_int_equal(cache_file_write(f, "hello", 5, 0), 5);
	assert_int_equal(cache_file_commit(f), 0);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 1);
	test_assert_origin_has(env->fo, "n", "hello", 5);
	/* Nothing changed since: neither a second commit nor the release
	 * uploads again. */
	assert_int_equal(cache_file_commit(f), 0);
	cache_file_release(f);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 1);

	test_assert_cache_has(env->c, "n", "hello", 5);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
}

static void test_write_failed_commit_keeps_old(void **state)
{
	static const int errors[] = { EIO, ENOSPC, EACCES };
	static const char old[] = "old content";
	struct test_env *env = start(state);
	struct cache_file *f;

	test_put_text(env->fo, "f", old);
	test_assert_cache_has(env->c, "f", old, strlen(old));
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
		f = test_open_file(env->c, "f", O_WRONLY);
		assert_int_equal(cache_file_write(f, "NEW", 3, 0), 3);
		fake_fail_next(env->fo, FAKE_WRITE, 1, errors[i]);
		assert_int_equal(cache_file_commit(f), -errors[i]);
		cache_file_release(f);

		test_assert_cache_has(env->c, "f", old, strlen(old));
		test_assert_origin_has(env->fo, "f", old, strlen(old));
	}
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 3);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 1);
}

/* After a failed close, the release (or another flush) with nothing new
 * written must not store the rejected version once the origin is back. */
static void test_write_failed_commit_not_retried(void **state)
{
	static const char old[] = "old content";
	struct test_env *env = start(state);
	struct cache_file *f;

	test_put_text(env->fo, "f", old);
	f = test_open_file(env->c, "f", O_WRONLY);
	assert_int_equal(cache_file_write(f, "NEW", 3, 0), 3);
	fake_fail_next(env->fo, FAKE_WRITE, 1, EIO);
	assert_int_equal(cache_file_commit(f), -EIO);
	assert_int_equal(cache_file_commit(f), -EIO);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 1);
	test_assert_origin_has(env->fo, "f", old, strlen(old));

	/* A new write is a new version: that one is stored. */
	assert_int_equal(cache_file_write(f, "N", 1, 0), 1);
	assert_int_equal(cache_file_commit(f), 0);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 2);
	test_assert_origin_has(env->fo, "f", "NEW content", 11);
	cache_file_release(f);
}

/* A file whose first upload failed does not exist on the origin, so the
 * cache must not show it once the last handle is gone. */
static void test_write_failed_create_leaves_nothing(void **state)
{
	struct test_env *env = start(state);
	struct origin_attr attr;
	struct cache_file *f;

	assert_false(listed(env->c, "", "n"));
	assert_int_equal(cache_file_create(env->c, "n", 0644, getuid(),
					   getgid(), &f), 0);
	assert_int_equal(cache_file_write(f, "hello", 5, 0), 5);
	fake_fail_next(env->fo, FAKE_WRITE, 1, EIO);
	assert_int_equal(cache_file_commit(f), -EIO);
	cache_file_release(f);

	assert_false(fake_exists(env->fo, "n"));
	assert_int_equal(cache_getattr(env->c, "n", &attr), -ENOENT);
	assert_false(listed(env->c, "", "n"));
}

/* An empty new file: a flush with skip_new stores nothing, and one
 * without returns the origin's error, so close(2) can report it. */
static void test_write_empty_create_flush_error(void **state)
{
	struct test_env *env = start(state);
	struct origin_attr attr;
	struct cache_file *f;

	assert_int_equal(cache_file_create(env->c, "e", 0644, getuid(),
					   getgid(), &f), 0);
	assert_int_equal(cache_file_flush(f, true), 0);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 0);
	fake_fail_next(env->fo, FAKE_WRITE, 1, EACCES);
	assert_int_equal(cache_file_flush(f, false), -EACCES);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 1);
	cache_file_release(f);
	assert_false(fake_exists(env->fo, "e"));
	assert_int_equal(cache_getattr(env->c, "e", &attr), -ENOENT);

	/* Without a fault the empty file reaches the origin at the flush. */
	assert_int_equal(cache_file_create(env->c, "e", 0644, getuid(),
					   getgid(), &f), 0);
	assert_int_equal(cache_file_flush(f, false), 0);
	assert_true(fake_exists(env->fo, "e"));
	cache_file_release(f);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 2);
}

static void test_write_partial_overwrite_uploads_all(void **state)
{
	struct test_env *env = start(state);
	size_t size = 5 * CS + 1000;
	char *want = put_pattern(env->fo, "big", size, 1);
	uint64_t off = 3 * CS - 50;
	struct cache_stats st;
	struct cache_file *f;
	char patch[100];

	test_assert_cache_has(env->c, "big", want, size);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 6);

	memset(patch, 'P', sizeof(patch));
	memcpy(want + off, patch, sizeof(patch));
	f = test_open_file(env->c, "big", O_RDWR);
	assert_int_equal(cache_file_write(f, patch, sizeof(patch), off),
			 sizeof(patch));
	assert_int_equal(cache_file_commit(f), 0);
	cache_file_release(f);

	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 1);
	test_assert_origin_has(env->fo, "big", want, size);
	/* The unchanged chunks came from the cache, and so does the new
	 * version. */
	test_assert_cache_has(env->c, "big", want, size);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 6);
	st = test_stats(env->c);
	assert_int_equal(st.chunks_cached, 6);
	assert_int_equal(st.bytes_cached, size);
	free(want);
}

static void test_write_partial_overwrite_uncached(void **state)
{
	struct test_env *env = start(state);
	size_t size = 3 * CS + 10;
	char *want = put_pattern(env->fo, "big", size, 2);
	struct cache_file *f;

	memcpy(want + CS + 7, "patched", 7);
	f = test_open_file(env->c, "big", O_RDWR);
	assert_int_equal(cache_file_write(f, "patched", 7, CS + 7), 7);
	assert_int_equal(cache_file_commit(f), 0);
	cache_file_release(f);
	test_assert_origin_has(env->fo, "big", want, size);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 4);
	free(want);
}

/* After a commit (fsync) the handle, and any handle opened while it is
 * open, read the bytes just written. */
static void test_write_read_after_commit_sees_new(void **state)
{
	struct test_env *env = start(state);
	size_t size = 3 * CS;
	char *want = put_pattern(env->fo, "m", size, 3);
	struct cache_file *f, *r;
	char buf[8] = "";

	test_assert_cache_has(env->c, "m", want, size);
	f = test_open_file(env->c, "m", O_RDWR);
	assert_int_equal(cache_file_write(f, "written", 7, CS + 5), 7);
	assert_int_equal(cache_file_read(f, buf, 7, CS + 5), 7);
	assert_memory_equal(buf, "written", 7);
	assert_int_equal(cache_file_commit(f), 0);

	memset(buf, 0, sizeof(buf));
	assert_int_equal(cache_file_read(f, buf, 7, CS + 5), 7);
	assert_memory_equal(buf, "written", 7);
	r = test_open_file(env->c, "m", O_RDONLY);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(cache_file_read(r, buf, 7, CS + 5), 7);
	assert_memory_equal(buf, "written", 7);
	cache_file_release(r);
	cache_file_release(f);
	free(want);
}

/* A read-only handle opened before a writer reads what the writer wrote,
 * past the old end too, during the write and after the commit. */
static void test_write_earlier_reader_sees_writes(void **state)
{
	struct test_env *env = start(state);
	size_t size = 2 * CS;
	char *want = put_pattern(env->fo, "e", size, 12);
	struct origin_attr attr;
	struct cache_file *r, *w;
	char buf[8] = "";

	r = test_open_file(env->c, "e", O_RDONLY);
	assert_int_equal(cache_file_read(r, buf, 4, 0), 4);
	assert_memory_equal(buf, want, 4);
	w = test_open_file(env->c, "e", O_RDWR);
	assert_int_equal(cache_file_write(w, "grown", 5, size), 5);
	assert_int_equal(cache_file_write(w, "head", 4, 0), 4);

	assert_int_equal(cache_file_getattr(r, &attr), 0);
	assert_int_equal(attr.size, size + 5);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(cache_file_read(r, buf, 8, size), 5);
	assert_memory_equal(buf, "grown", 5);
	assert_int_equal(cache_file_read(r, buf, 4, 0), 4);
	assert_memory_equal(buf, "head", 4);

	assert_int_equal(cache_file_commit(w), 0);
	cache_file_release(w);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(cache_file_read(r, buf, 8, size), 5);
	assert_memory_equal(buf, "grown", 5);
	cache_file_release(r);
	free(want);
}

/* A read-only handle follows a truncation by path, and then the commit
 * of a later writer. */
static void test_write_earlier_reader_sees_truncate(void **state)
{
	struct test_env *env = start(state);
	struct origin_attr attr = { 0 };
	char *want = put_pattern(env->fo, "k", 3 * CS, 13);
	struct cache_file *r, *w;
	char buf[16] = "";

	r = test_open_file(env->c, "k", O_RDONLY);
	assert_int_equal(cache_file_read(r, buf, 16, CS), 16);
	assert_memory_equal(buf, want + CS, 16);
	assert_int_equal(cache_setattr(env->c, "k", &attr, 0, true, 10), 0);
	assert_int_equal(cache_file_getattr(r, &attr), 0);
	assert_int_equal(attr.size, 10);
	assert_int_equal(cache_file_read(r, buf, 16, CS), 0);
	assert_int_equal(cache_file_read(r, buf, 16, 0), 10);
	assert_memory_equal(buf, want, 10);

	w = test_open_file(env->c, "k", O_WRONLY);
	assert_int_equal(cache_file_write(w, "0123456789abcdef", 16, 0), 16);
	assert_int_equal(cache_file_commit(w), 0);
	cache_file_release(w);
	assert_int_equal(cache_file_read(r, buf, 16, 0), 16);
	assert_memory_equal(buf, "0123456789abcdef", 16);
	cache_file_release(r);
	free(want);
}

/* In write-around mode the commit leaves no cached copy, and a reader
 * that opened the file before the writer, without reading while it
 * wrote, still reads what the writer stored, as after a truncation by
 * path. */
static void test_write_around_earlier_reader(void **state)
{
	struct test_env *env = test_env_create(state, "cache-tests-write-XXXXXX",
					       CS, 64 * CS, 60000);
	size_t size = CS + 10;
	char *want;
	struct origin_attr attr = { 0 };
	struct cache_file *r, *w;
	char buf[16] = "";
	void *stored;
	size_t stored_len;

	env->cfg.write_mode = WRITE_AROUND;
	assert_int_equal(test_env_open(env), 0);
	want = put_pattern(env->fo, "a", size, 14);
	r = test_open_file(env->c, "a", O_RDONLY);
	w = test_open_file(env->c, "a", O_RDWR);
	assert_int_equal(cache_file_write(w, "grown", 5, size), 5);
	assert_int_equal(cache_file_commit(w), 0);
	cache_file_release(w);

	assert_int_equal(cache_file_getattr(r, &attr), 0);
	assert_int_equal(attr.size, size + 5);
	assert_int_equal(cache_file_read(r, buf, 16, size), 5);
	assert_memory_equal(buf, "grown", 5);
	assert_int_equal(cache_file_read(r, buf, 10, 0), 10);
	assert_memory_equal(buf, want, 10);

	memset(&attr, 0, sizeof(attr));
	assert_int_equal(cache_setattr(env->c, "a", &attr, 0, true, 3 * CS),
			 0);
	assert_int_equal(cache_file_getattr(r, &attr), 0);
	assert_int_equal(attr.size, 3 * CS);
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(cache_file_read(r, buf, 16, 2 * CS), 16);
	assert_memory_equal(buf, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
	cache_file_release(r);
	assert_int_equal(fake_get_file(env->fo, "a", &stored, &stored_len), 0);
	assert_int_equal(stored_len, 3 * CS);
	assert_memory_equal(stored, want, 10);
	free(stored);
	free(want);
}

/* Open a cache in write-around mode. */
static struct test_env *start_around(void **state)
{
	struct test_env *env = test_env_create(state, "cache-tests-write-XXXXXX",
					       CS, 64 * CS, 60000);

	env->cfg.write_mode = WRITE_AROUND;
	assert_int_equal(test_env_open(env), 0);
	return env;
}

/*
 * In write-around mode a reader that opened the file before a commit
 * also sees what the writer writes after that commit, while it still
 * has the file open: the kernel takes the size a reader's handle
 * returns for the file's one inode, and a smaller one would cut the
 * writer's reads short.
 */
static void test_write_around_reader_after_commit(void **state)
{
	struct test_env *env = start_around(state);
	size_t size = CS + 10;
	struct origin_attr attr = { 0 };
	struct cache_file *r, *w;
	char buf[16] = "";
	char *want;

	want = put_pattern(env->fo, "a", size, 15);
	r = test_open_file(env->c, "a", O_RDONLY);
	assert_int_equal(cache_file_read(r, buf, 10, 0), 10);
	w = test_open_file(env->c, "a", O_RDWR);
	assert_int_equal(cache_file_write(w, "first", 5, size), 5);
	assert_int_equal(cache_file_commit(w), 0);
	assert_int_equal(cache_file_write(w, "later", 5, 3 * CS), 5);

	assert_int_equal(cache_file_getattr(r, &attr), 0);
	assert_int_equal(attr.size, 3 * CS + 5);
	assert_int_equal(cache_file_read(r, buf, 16, 3 * CS), 5);
	assert_memory_equal(buf, "later", 5);
	assert_int_equal(cache_file_read(r, buf, 5, size), 5);
	assert_memory_equal(buf, "first", 5);
	cache_file_release(w);
	cache_file_release(r);
	free(want);
}

/*
 * A file renamed while a handle that wrote it is open keeps the origin's
 * version of the file, the one the last commit stored, under its new
 * name: a later writer of the new name fetches the rest of the file
 * from that version, which a stale version would turn into ESTALE.
 */
static void test_write_around_rename_open_writer(void **state)
{
	struct test_env *env = start_around(state);
	size_t size = 2 * CS + 100;
	char *want = put_pattern(env->fo, "x", size, 16);
	struct cache_file *w, *v;
	void *stored;
	size_t stored_len;

	w = test_open_file(env->c, "x", O_RDWR);
	assert_int_equal(cache_file_write(w, "head", 4, 0), 4);
	assert_int_equal(cache_file_commit(w), 0);
	assert_int_equal(cache_rename(env->c, "x", "y", 0, NULL), 0);
	cache_file_release(w);
	memcpy(want, "head", 4);

	v = test_open_file(env->c, "y", O_RDWR);
	assert_int_equal(cache_file_write(v, "tail", 4, CS + 3), 4);
	assert_int_equal(cache_file_commit(v), 0);
	cache_file_release(v);
	memcpy(want + CS + 3, "tail", 4);
	assert_int_equal(fake_get_file(env->fo, "y", &stored, &stored_len), 0);
	assert_int_equal(stored_len, size);
	assert_memory_equal(stored, want, size);
	free(stored);
	free(want);
}

static void count_invalidation(void *arg, const char *path)
{
	(void)path;
	(*(unsigned *)arg)++;
}

/*
 * Commit a file three times in the given write mode while a writer keeps
 * it open and a reader of the version it started from reads on.  Returns
 * the page cache invalidations that the commits requested.
 */
static unsigned invalidations_of_commits(void **state, enum write_mode mode)
{
	struct test_env *env = test_env_create(state,
					       "cache-tests-write-XXXXXX", CS,
					       64 * CS, 60000);
	char *want = put_pattern(env->fo, "f", 2 * CS, 17);
	struct cache_file *r, *w;
	unsigned count = 0;
	char buf[10];

	env->cfg.write_mode = mode;
	assert_int_equal(test_env_open(env), 0);
	r = test_open_file(env->c, "f", O_RDONLY);
	assert_int_equal(cache_file_read(r, buf, 10, 0), 10);
	w = test_open_file(env->c, "f", O_RDWR);
	cache_set_invalidate(env->c, count_invalidation, &count);
	for (int round = 0; round < 3; round++) {
		char text[8];

		snprintf(text, sizeof(text), "round%d", round);
		assert_int_equal(cache_file_write(w, text, 6, CS - 3), 6);
		assert_int_equal(cache_file_commit(w), 0);
		memcpy(want + CS - 3, text, 6);
		test_assert_origin_has(env->fo, "f", want, 2 * CS);
	}
	assert_int_equal(cache_file_read(r, buf, 6, CS - 3), 6);
	assert_memory_equal(buf, "round2", 6);
	cache_set_invalidate(env->c, NULL, NULL);
	cache_file_release(w);
	cache_file_release(r);
	free(want);
	return count;
}

/*
 * A commit keeps the kernel's page cache of the file, which contains what
 * the commit stored.  Dropping it would also drop the pages of WRITEs of
 * other threads still on their way to the daemon.
 */
static void test_write_through_commits_keep_page_cache(void **state)
{
	assert_int_equal(invalidations_of_commits(state, WRITE_THROUGH), 0);
}

/* The same in write-around mode, where each commit leaves an empty
 * version for the reader, which the next commit replaces. */
static void test_write_around_commits_keep_page_cache(void **state)
{
	assert_int_equal(invalidations_of_commits(state, WRITE_AROUND), 0);
}

/* A file made anew over a cached one leaves pages of the cached version
 * in the kernel's page cache, which its commit drops. */
static void check_create_over_cached_drops_page_cache(void **state,
						       enum write_mode mode)
{
	struct test_env *env = test_env_create(state,
					       "cache-tests-write-XXXXXX", CS,
					       64 * CS, 60000);
	char *old = put_pattern(env->fo, "f", CS, 18);
	char *buf = malloc(CS);
	struct cache_file *r, *w;
	unsigned count = 0;

	assert_non_null(buf);
	env->cfg.write_mode = mode;
	assert_int_equal(test_env_open(env), 0);
	r = test_open_file(env->c, "f", O_RDONLY);
	assert_int_equal(cache_file_read(r, buf, CS, 0), CS);
	assert_memory_equal(buf, old, CS);
	cache_file_release(r);
	cache_set_invalidate(env->c, count_invalidation, &count);
	assert_int_equal(cache_file_create(env->c, "f", 0644, getuid(),
					   getgid(), &w), 0);
	assert_int_equal(cache_file_write(w, "new", 3, 0), 3);
	assert_int_equal(cache_file_commit(w), 0);
	test_assert_origin_has(env->fo, "f", "new", 3);
	assert_int_equal(count, 1);
	cache_set_invalidate(env->c, NULL, NULL);
	cache_file_release(w);
	free(buf);
	free(old);
}

static void test_write_through_create_over_cached(void **state)
{
	check_create_over_cached_drops_page_cache(state, WRITE_THROUGH);
}

static void test_write_around_create_over_cached(void **state)
{
	check_create_over_cached_drops_page_cache(state, WRITE_AROUND);
}

/* A reader of a file that is being written follows the writer also
 * after another file was renamed over the name: both descriptors are
 * of the replaced file. */
static void test_write_reader_follows_renamed_over(void **state)
{
	struct test_env *env = start(state);
	char *old = put_pattern(env->fo, "b", CS, 16);
	char *other = put_pattern(env->fo, "c", CS, 17);
	struct origin_attr attr;
	struct cache_file *r, *w;
	char buf[8] = "";

	r = test_open_file(env->c, "b", O_RDONLY);
	assert_int_equal(cache_file_read(r, buf, 4, 0), 4);
	w = test_open_file(env->c, "b", O_RDWR);
	assert_int_equal(cache_file_write(w, "first", 5, CS), 5);
	assert_int_equal(cache_rename(env->c, "c", "b", 0, NULL), 0);
	assert_int_equal(cache_file_write(w, "again", 5, CS + 5), 5);

	assert_int_equal(cache_file_getattr(r, &attr), 0);
	assert_int_equal(attr.size, CS + 10);
	assert_int_equal(cache_file_read(r, buf, 8, CS + 2), 8);
	assert_memory_equal(buf, "rstagain", 8);
	cache_file_release(w);
	cache_file_release(r);
	test_assert_cache_has(env->c, "b", other, CS);
	free(old);
	free(other);
}

/* A file replaced by a rename is another file: its reader keeps the
 * bytes it opened. */
static void test_write_reader_of_replaced_file(void **state)
{
	struct test_env *env = start(state);
	char *old = put_pattern(env->fo, "p", CS, 14);
	char *new = put_pattern(env->fo, "q", CS, 15);
	struct cache_file *r;
	char buf[16] = "";

	r = test_open_file(env->c, "p", O_RDONLY);
	assert_int_equal(cache_file_read(r, buf, 16, 0), 16);
	assert_int_equal(cache_rename(env->c, "q", "p", 0, NULL), 0);
	assert_int_equal(cache_file_read(r, buf, 16, 100), 16);
	assert_memory_equal(buf, old + 100, 16);
	cache_file_release(r);
	test_assert_cache_has(env->c, "p", new, CS);
	free(old);
	free(new);
}

static void test_write_truncate_down_up(void **state)
{
	static const uint64_t cuts[] = { 1000, CS, CS + 4000 };
	struct test_env *env = start(state);
	size_t size = 3 * CS, grown = 150000;
	char *base = put_pattern(env->fo, "t", size, 4);
	char *want = calloc(1, grown);
	struct cache_file *f;
	char name[8];

	assert_non_null(want);
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		snprintf(name, sizeof(name), "t%zu", i);
		assert_int_equal(fake_put_file(env->fo, name, base, size), 0);
		memset(want, 0, grown);
		memcpy(want, base, cuts[i]);
		f = test_open_file(env->c, name, O_RDWR);
		assert_int_equal(cache_file_truncate(f, cuts[i]), 0);
		assert_int_equal(cache_file_truncate(f, grown), 0);
		assert_int_equal(cache_file_commit(f), 0);
		cache_file_release(f);
		test_assert_origin_has(env->fo, name, want, grown);
		test_assert_cache_has(env->c, name, want, grown);
	}
	free(base);
	free(want);
}

static void test_write_setattr_size_truncates(void **state)
{
	struct test_env *env = start(state);
	struct origin_attr attr = { 0 };
	char *want = put_pattern(env->fo, "s", 2 * CS, 5);

	assert_int_equal(cache_setattr(env->c, "s", &attr, 0, true, 10), 0);
	test_assert_origin_has(env->fo, "s", want, 10);
	test_assert_cache_has(env->c, "s", want, 10);
	assert_int_equal(cache_getattr(env->c, "s", &attr), 0);
	assert_int_equal(attr.size, 10);
	free(want);
}

static void test_write_past_eof_leaves_zeros(void **state)
{
	struct test_env *env = start(state);
	size_t size = 100, end = 200001;
	char *base = put_pattern(env->fo, "e", size, 6);
	char *want = calloc(1, end), *buf = malloc(end);
	struct cache_file *f;

	assert_non_null(want);
	assert_non_null(buf);
	memcpy(want, base, size);
	want[end - 1] = 'X';
	f = test_open_file(env->c, "e", O_RDWR);
	assert_int_equal(cache_file_write(f, "X", 1, end - 1), 1);
	assert_int_equal(cache_file_read(f, buf, end, 0), end);
	assert_memory_equal(buf, want, end);
	assert_int_equal(cache_file_commit(f), 0);
	cache_file_release(f);
	test_assert_origin_has(env->fo, "e", want, end);
	test_assert_cache_has(env->c, "e", want, end);
	free(base);
	free(want);
	free(buf);
}

static void test_write_o_trunc_replaces_content(void **state)
{
	struct test_env *env = start(state);
	struct cache_file *f;

	test_put_text(env->fo, "t", "a long old content");
	test_assert_cache_has(env->c, "t", "a long old content", 18);
	f = test_open_file(env->c, "t", O_WRONLY | O_TRUNC);
	assert_int_equal(cache_file_write(f, "new", 3, 0), 3);
	assert_int_equal(cache_file_commit(f), 0);
	cache_file_release(f);
	test_assert_origin_has(env->fo, "t", "new", 3);
	test_assert_cache_has(env->c, "t", "new", 3);
}

static void test_write_rename_moves_cached(void **state)
{
	struct test_env *env = start(state);
	size_t size = 2 * CS;
	char *want = put_pattern(env->fo, "a", size, 7);
	struct origin_attr attr;
	unsigned reads;

	test_assert_cache_has(env->c, "a", want, size);
	reads = fake_calls(env->fo, FAKE_READ);
	assert_int_equal(cache_rename(env->c, "a", "b", 0, NULL), 0);
	assert_int_equal(fake_calls(env->fo, FAKE_RENAME), 1);
	assert_true(fake_exists(env->fo, "b"));
	assert_false(fake_exists(env->fo, "a"));

	test_assert_cache_has(env->c, "b", want, size);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), reads);
	assert_int_equal(cache_getattr(env->c, "a", &attr), -ENOENT);
	assert_int_equal(cache_getattr(env->c, "b", &attr), 0);
	assert_int_equal(attr.size, size);
	free(want);
}

/* Read all of f from offset 0 into a new buffer of size bytes. */
static char *read_all(struct cache_file *f, size_t size)
{
	char *buf = malloc(size);

	assert_non_null(buf);
	for (size_t off = 0; off < size; off += CS) {
		size_t n = size - off < CS ? size - off : CS;

		assert_int_equal(cache_file_read(f, buf + off, n, off), n);
	}
	return buf;
}

/* A rename over a file that no handle reads and that is larger than
 * RA_RUN_BYTES fetches none of it.  A copy of the handle it returns for
 * the replaced file fails with ESTALE, because the origin no longer has
 * what is not cached. */
static void test_write_rename_over_unread(void **state)
{
	struct test_env *env = start(state);
	uint64_t size = RA_RUN_BYTES + 3 * CS;
	char *want = put_pattern(env->fo, "old", size, 15);
	struct cache_file *replaced, *copy;
	struct origin_attr attr;

	test_put_text(env->fo, "new", "new");
	assert_int_equal(cache_getattr(env->c, "old", &attr), 0);
	assert_int_equal(cache_rename(env->c, "new", "old", 0, &replaced), 0);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
	assert_non_null(replaced);
	assert_int_equal(cache_file_getattr(replaced, &attr), 0);
	assert_int_equal(attr.size, size);
	assert_int_equal(cache_file_dup(replaced, &copy), -ESTALE);
	cache_file_release(replaced);
	test_assert_cache_has(env->c, "old", "new", 3);
	free(want);
}

/* Create path in env's cache with size bytes of pattern seed, commit
 * it and close it.  Returns the bytes, which the caller frees. */
static char *create_pattern(struct test_env *env, const char *path,
			    size_t size, unsigned seed)
{
	char *buf = test_pattern_new(size, 0, seed);
	struct cache_file *f;

	assert_int_equal(cache_file_create(env->c, path, 0644, getuid(),
					   getgid(), &f), 0);
	assert_int_equal(cache_file_write(f, buf, size, 0), (ssize_t)size);
	assert_int_equal(cache_file_commit(f), 0);
	cache_file_release(f);
	return buf;
}

/*
 * In write-around mode a commit caches nothing, so a rename over a file
 * written through the mount fetches the replaced file, when it has at
 * most RA_RUN_BYTES, with one request, for the handle it returns.  A
 * copy of that handle then reads the old file whole, as an open of the
 * replaced file's inode needs.
 */
static void test_write_around_rename_over_written(void **state)
{
	struct test_env *env = test_env_create(state,
					       "cache-tests-write-XXXXXX", CS,
					       64 * CS, 60000);
	size_t size = 2 * CS + 77;
	struct cache_file *replaced, *copy;
	char *first, *second, *got;
	unsigned reads;

	env->cfg.write_mode = WRITE_AROUND;
	fake_enable_stream(env->fo);
	assert_int_equal(test_env_open(env), 0);
	first = create_pattern(env, "tmp-1", size, 21);
	assert_int_equal(cache_rename(env->c, "tmp-1", "f", 0, NULL), 0);
	second = create_pattern(env, "tmp-2", size + 1, 22);

	reads = fake_calls(env->fo, FAKE_READ);
	assert_int_equal(cache_rename(env->c, "tmp-2", "f", 0, &replaced), 0);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), reads + 1);
	assert_non_null(replaced);
	assert_int_equal(cache_file_dup(replaced, &copy), 0);
	cache_file_release(replaced);
	got = read_all(copy, size);
	assert_memory_equal(got, first, size);
	cache_file_release(copy);
	test_assert_cache_has(env->c, "f", second, size + 1);
	free(got);
	free(first);
	free(second);
}

/* A cached file that another client removed from the origin is removed
 * all the same: the unlink succeeds and the file is gone. */
static void test_write_unlink_removed_behind(void **state)
{
	struct test_env *env = start(state);
	struct origin_attr attr;

	test_put_text(env->fo, "f", "cached");
	test_assert_cache_has(env->c, "f", "cached", 6);
	assert_int_equal(fake_remove(env->fo, "f"), 0);
	assert_int_equal(cache_unlink(env->c, "f"), 0);
	assert_int_equal(cache_getattr(env->c, "f", &attr), -ENOENT);
	assert_int_equal(cache_unlink(env->c, "f"), -ENOENT);
}

/* A handle open on a file that a rename replaces, or an unlink removes,
 * reads all of it afterwards even when the budget holds only one chunk:
 * the cache is the only copy left.  The budget applies again once the
 * handle is closed. */
static void test_write_replaced_reader_past_budget(void **state)
{
	struct test_env *env = test_env_start(state, "cache-tests-write-XXXXXX",
					      CS, CS, 60000);
	size_t size = 3 * CS + 7;
	char *want = put_pattern(env->fo, "a", size, 16);
	char *want_b = put_pattern(env->fo, "b", size, 17);
	struct cache_file *r, *s;
	unsigned reads;
	char *got;

	r = test_open_file(env->c, "a", O_RDONLY);
	s = test_open_file(env->c, "b", O_RDONLY);
	test_put_text(env->fo, "new", "new");
	assert_int_equal(cache_rename(env->c, "new", "a", 0, NULL), 0);
	assert_int_equal(cache_unlink(env->c, "b"), 0);
	assert_false(fake_exists(env->fo, "b"));

	reads = fake_calls(env->fo, FAKE_READ);
	got = read_all(r, size);
	assert_memory_equal(got, want, size);
	free(got);
	got = read_all(s, size);
	assert_memory_equal(got, want_b, size);
	free(got);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), reads);
	assert_true(test_stats(env->c).bytes_cached > CS);

	cache_file_release(r);
	cache_file_release(s);
	assert_true(test_stats(env->c).bytes_cached <= CS);
	free(want);
	free(want_b);
}

static void test_write_unlink_open_file_reads(void **state)
{
	struct test_env *env = start(state);
	size_t size = 2 * CS;
	char *want = put_pattern(env->fo, "u", size, 8);
	char *buf = malloc(size);
	struct origin_attr attr;
	struct cache_file *f, *g;
	bool changed;

	assert_non_null(buf);
	f = test_open_file(env->c, "u", O_RDONLY);
	assert_int_equal(cache_file_read(f, buf, size, 0), size);
	assert_int_equal(cache_unlink(env->c, "u"), 0);
	assert_false(fake_exists(env->fo, "u"));

	memset(buf, 0, size);
	assert_int_equal(cache_file_read(f, buf, size, 0), size);
	assert_memory_equal(buf, want, size);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 2);
	assert_int_equal(cache_getattr(env->c, "u", &attr), -ENOENT);
	assert_int_equal(cache_file_open(env->c, "u", O_RDONLY, &g,
					 &changed), -ENOENT);
	assert_false(listed(env->c, "", "u"));
	cache_file_release(f);
	assert_int_equal(test_stats(env->c).chunks_cached, 0);
	free(want);
	free(buf);
}

static void test_write_unlink_uncommitted_file(void **state)
{
	struct test_env *env = start(state);
	struct origin_attr attr;
	struct cache_file *f;
	char buf[8] = "";

	assert_int_equal(cache_file_create(env->c, "w", 0644, getuid(),
					   getgid(), &f), 0);
	assert_int_equal(cache_file_write(f, "data", 4, 0), 4);
	assert_int_equal(cache_unlink(env->c, "w"), 0);
	assert_int_equal(cache_file_read(f, buf, sizeof(buf), 0), 4);
	assert_memory_equal(buf, "data", 4);
	assert_int_equal(cache_file_commit(f), 0);
	cache_file_release(f);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 0);
	assert_false(fake_exists(env->fo, "w"));
	assert_int_equal(cache_getattr(env->c, "w", &attr), -ENOENT);
}

static void test_write_committed_survives_reopen(void **state)
{
	struct test_env *env = start(state);
	struct cache_file *f;

	assert_int_equal(cache_file_create(env->c, "k", 0644, getuid(),
					   getgid(), &f), 0);
	assert_int_equal(cache_file_write(f, "kept", 4, 0), 4);
	assert_int_equal(cache_file_commit(f), 0);
	cache_file_release(f);
	test_env_close(env);

	assert_int_equal(test_env_open(env), 0);
	test_assert_cache_has(env->c, "k", "kept", 4);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
}

static void test_write_second_commit_uploads_both(void **state)
{
	struct test_env *env = start(state);
	size_t size = 3 * CS;
	char *want = put_pattern(env->fo, "two", size, 9);
	struct cache_file *f;

	memcpy(want + 10, "first", 5);
	memcpy(want + 2 * CS + 10, "second", 6);
	f = test_open_file(env->c, "two", O_RDWR);
	assert_int_equal(cache_file_write(f, "first", 5, 10), 5);
	assert_int_equal(cache_file_commit(f), 0);
	assert_int_equal(cache_file_write(f, "second", 6, 2 * CS + 10), 6);
	assert_int_equal(cache_file_commit(f), 0);
	cache_file_release(f);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 2);
	test_assert_origin_has(env->fo, "two", want, size);
	test_assert_cache_has(env->c, "two", want, size);
	free(want);
}

/* The path of the one file in the tmp/ folder of c: the shadow of the
 * only file open for writing.  The caller frees it. */
static char *shadow_file(struct cache *c)
{
	char *dir, *path = NULL;
	struct dirent *de;
	DIR *d;

	assert_true(asprintf(&dir, "%s/tmp", cache_path(c)) > 0);
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.') {
			assert_null(path);
			assert_true(asprintf(&path, "%s/%s", dir,
					     de->d_name) > 0);
		}
	closedir(d);
	free(dir);
	assert_non_null(path);
	return path;
}

static void test_write_full_disk_evicts_then_fails(void **state)
{
	struct test_env *env = start(state);
	char *cached = put_pattern(env->fo, "cached", 2 * CS, 30);
	char *buf = malloc(CS);
	struct cache_file *f;
	struct cache_stats st;
	char *shadow;
	int fd, saved;

	assert_non_null(buf);
	assert_int_equal(test_read_path(env->c, "cached", buf, CS, 0), CS);
	assert_int_equal(test_read_path(env->c, "cached", buf, CS, CS), CS);
	assert_int_equal(test_stats(env->c).chunks_cached, 2);

	assert_int_equal(cache_file_create(env->c, "new", 0644, getuid(),
					   getgid(), &f), 0);
	shadow = shadow_file(env->c);
	saved = test_fill_file(shadow, &fd);
	/* The write evicts what it can to make room, then gives up. */
	assert_int_equal(cache_file_write(f, cached, CS, 0), -ENOSPC);
	st = test_stats(env->c);
	assert_int_equal(st.chunks_cached, 0);
	assert_int_equal(st.evictions, 2);
	assert_int_equal(st.cache_dir_full, 1);
	assert_true(st.cache_dir_errors >= 1);
	test_unfill_file(fd, saved);

	/* With room again the same write works and reaches the origin. */
	assert_int_equal(cache_file_write(f, cached, CS, 0), CS);
	assert_int_equal(cache_file_commit(f), 0);
	cache_file_release(f);
	test_assert_origin_has(env->fo, "new", cached, CS);
	free(shadow);
	free(buf);
	free(cached);
}

/* An argument runs only the tests whose names match it (cmocka pattern). */
int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_write_full_disk_evicts_then_fails,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_write_create_commit_stores_bytes,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_write_failed_commit_keeps_old,
					  test_env_teardown),
		cmocka_unit_test_teardown(
			test_write_failed_create_leaves_nothing,
			test_env_teardown),
		cmocka_unit_test_teardown(test_write_failed_commit_not_retried,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_write_empty_create_flush_error,
					  test_env_teardown),
		cmocka_unit_test_teardown(
			test_write_partial_overwrite_uploads_all,
			test_env_teardown),
		cmocka_unit_test_teardown(test_write_partial_overwrite_uncached,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_write_read_after_commit_sees_new,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_write_earlier_reader_sees_writes,
					  test_env_teardown),
		cmocka_unit_test_teardown(
			test_write_earlier_reader_sees_truncate, test_env_teardown),
		cmocka_unit_test_teardown(
			test_write_reader_follows_renamed_over,
			test_env_teardown),
		cmocka_unit_test_teardown(test_write_around_earlier_reader,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_write_around_reader_after_commit,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_write_around_rename_open_writer,
					  test_env_teardown),
		cmocka_unit_test_teardown(
			test_write_through_commits_keep_page_cache,
			test_env_teardown),
		cmocka_unit_test_teardown(
			test_write_around_commits_keep_page_cache,
			test_env_teardown),
		cmocka_unit_test_teardown(test_write_through_create_over_cached,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_write_around_create_over_cached,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_write_reader_of_replaced_file,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_write_truncate_down_up,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_write_setattr_size_truncates,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_write_past_eof_leaves_zeros,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_write_o_trunc_replaces_content,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_write_around_rename_over_written,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_write_rename_over_unread,
					  test_env_teardown),
		cmocka_unit_test_teardown(
			test_write_replaced_reader_past_budget,
			test_env_teardown),
		cmocka_unit_test_teardown(test_write_rename_moves_cached,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_write_unlink_open_file_reads,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_write_unlink_removed_behind,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_write_unlink_uncommitted_file,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_write_committed_survives_reopen,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_write_second_commit_uploads_both,
					  test_env_teardown),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	log_max_level = LOG_ERR;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
