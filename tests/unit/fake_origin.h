/*
 * fake_origin.h - an in-memory origin, a fake clock and helpers for the
 * unit tests of the cache engine.
 *
 * The Makefile builds each test from one source file, so a test includes
 * fake_origin.c itself.  The origin contains regular files, directories and
 * symbolic links in memory, gives a file a new version string on every
 * change, counts the calls of each operation and fails the next N calls
 * of an operation on request.  It is reference counted, so that a test
 * can inspect it after cache_close() freed the engine's reference, and
 * hand it to cache_open() again to reopen the same cache folder.
 *
 * Every function is thread-safe, except the clock setters.
 */
#ifndef NEARFS_FAKE_ORIGIN_H
#define NEARFS_FAKE_ORIGIN_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "origin.h"

enum fake_op {
	FAKE_STAT,
	FAKE_LIST,	/* one per list() call or list_page() page */
	FAKE_READ,
	FAKE_WRITE,
	FAKE_SETATTR,
	FAKE_UNLINK,
	FAKE_MKDIR,
	FAKE_RMDIR,
	FAKE_RENAME,
	FAKE_STATFS,
	FAKE_SYMLINK,
	FAKE_READLINK,
	FAKE_LIST_TREE,	/* one per list_tree() call, of any page count */
	FAKE_DISCARD,
	FAKE_OP_MAX
};

struct fake_origin;

/* Create an empty origin (the root directory only) with one reference,
 * the caller's.  identity names the cache subfolder. */
struct fake_origin *fake_origin_new(const char *identity);

/* Take a reference for cache_open(), which frees it through ops->free in
 * cache_close().  cache_open() does not take it on failure: drop it then
 * with fake_origin_put(). */
struct origin *fake_origin_ref(struct fake_origin *fo);

/* Drop a reference.  The last one frees the origin and its files. */
void fake_origin_put(struct fake_origin *fo);

/* Create or replace a regular file, mode 0644, with a new version.  This
 * is also how a test changes a file behind the cache's back.  The parent
 * directory must exist.  Returns 0 or -ENOENT. */
int fake_put_file(struct fake_origin *fo, const char *path,
		  const void *data, size_t len);

/* Create a directory, mode 0755.  Returns 0, -ENOENT or -EEXIST. */
int fake_put_dir(struct fake_origin *fo, const char *path);

/* Remove a file or an empty directory behind the cache's back. */
int fake_remove(struct fake_origin *fo, const char *path);

/* Copy the content of a regular file into a malloc'ed buffer, which the
 * caller frees.  Returns 0 or -ENOENT. */
int fake_get_file(struct fake_origin *fo, const char *path, void **data,
		  size_t *len);

bool fake_exists(struct fake_origin *fo, const char *path);

/* Copy the version string of path into buf, or "" when path is absent. */
void fake_get_version(struct fake_origin *fo, const char *path, char *buf,
		      size_t len);

/* Calls of op since creation or the last fake_reset_calls(), failed
 * calls included. */
unsigned fake_calls(struct fake_origin *fo, enum fake_op op);
void fake_reset_calls(struct fake_origin *fo);

/* Make the next count calls of op fail with -err (err is positive), with
 * the origin_detail() "injected failure ERR". */
void fake_fail_next(struct fake_origin *fo, enum fake_op op,
		    unsigned count, int err);

/* Copy into buf the ids that discard() was called with and did not
 * fail, in call order, each followed by ';'. */
void fake_get_discarded(struct fake_origin *fo, char *buf, size_t len);

/* Give the origin a read_stream operation (it has none at first), which
 * counts as a FAKE_READ call and hands out the bytes in pieces of 16 KiB.
 * Call it before cache_open(). */
void fake_enable_stream(struct fake_origin *fo);

/* Cut the next read_stream call after `after` bytes.  With retry it then
 * hands out the whole range again from position 0, as a retried request
 * does; without, it fails with -EIO. */
void fake_cut_next_stream(struct fake_origin *fo, uint64_t after, bool retry);

/* Have every read_stream call hand out `after` bytes and then wait for
 * the process to be killed, as a transfer that a crash interrupts. */
void fake_stall_streams(struct fake_origin *fo, uint64_t after);

/* Give the origin a list_page() op (none by default, like a directory
 * origin) that lists page_size entries a page in name order, each page
 * one FAKE_LIST call.  0 removes the op again.  Call it before
 * cache_open(). */
void fake_set_list_page(struct fake_origin *fo, unsigned page_size);

/* Give the origin a list_tree() op (none by default, like a directory
 * origin) that returns pages of page_size entries, each page counted as
 * one LIST request in the origin's counters.  Directories come as "a/"
 * entries.  0 removes the op again.  Call it before cache_open(). */
void fake_set_tree_page(struct fake_origin *fo, unsigned page_size);

/* Called at the start of every stat call that no injected fault fails,
 * with no lock of the origin held, so that a test can act while the
 * engine waits for the origin.  NULL removes the hook. */
typedef void (*fake_stat_hook_fn)(void *arg, const char *path);
void fake_set_stat_hook(struct fake_origin *fo, fake_stat_hook_fn fn,
			void *arg);

/* Make read calls from offset on wait, counted but not served, until a
 * later call raises offset past theirs.  UINT64_MAX releases them all. */
void fake_hold_reads_from(struct fake_origin *fo, uint64_t offset);

/* Sleep this many milliseconds at the start of every read call. */
void fake_set_read_delay_ms(struct fake_origin *fo, unsigned ms);

/* Offset and length of the last successful read call. */
uint64_t fake_last_read_offset(struct fake_origin *fo);
size_t fake_last_read_len(struct fake_origin *fo);

/* Install a fake clock in clock_now_ms, starting at start_ms, or move it
 * forward.  The clock only moves when a test moves it. */
void fake_clock_install(uint64_t start_ms);
void fake_clock_advance(uint64_t ms);

/* Create a fresh folder from template (ending in XXXXXX) under /tmp, or
 * under $TMPDIR when set, and store its name in path.  Returns 0 or
 * -errno. */
int test_make_temp_dir(const char *name_template, char *path, size_t len);

/* Remove a folder and everything below it. */
void test_remove_tree(const char *path);

/*
 * Point the descriptor that this process has open on path (the cache
 * index, the journal) at /dev/full, where every write fails with ENOSPC
 * as on a full disk.  Returns a copy of the original descriptor for
 * test_unfill_file(), which puts it back.  Fails the test when no
 * descriptor has path open.
 */
int test_fill_file(const char *path, int *fd);
void test_unfill_file(int fd, int saved);

/* Copy the file at from to to, replacing it, failing the test unless
 * that works. */
void test_copy_file(const char *from, const char *to);

/* Write text into root/rel, replacing it, failing the test unless that
 * works. */
void test_write_text(const char *root, const char *rel, const char *text);

/* Fill buf with hashed bytes of seed and of each byte's offset in the
 * file, so that two chunks or two files are unlikely to look alike. */
void test_fill_pattern(void *buf, size_t len, uint64_t offset,
		       unsigned seed);

/* A cache_config for dir with every field set: no min_free, write
 * through, and ttl_ms as the ttl of data, attributes, negative entries
 * and listings. */
struct cache_config test_config(const char *dir, uint32_t chunk_size,
				uint64_t size_max, uint64_t ttl_ms);

/* A cache folder over a fake origin, as most engine tests need it. */
struct test_env {
	char dir[PATH_MAX];	/* cache_dir, removed by the teardown */
	struct fake_origin *fo;
	struct cache_config cfg;
	struct cache *c;	/* NULL while closed */
	char err[512];		/* message of the last cache_open() */
};

/*
 * Allocate an environment: a temporary cache_dir from name_template, an
 * empty fake origin, test_config() and the fake clock.  The cache is not
 * open yet.  Returns NULL on failure.
 */
struct test_env *test_env_new(const char *name_template,
			      uint32_t chunk_size, uint64_t size_max,
			      uint64_t ttl_ms);

/* Open the cache with env->cfg and return what cache_open() returned,
 * with its message in env->err.  The working folder is env->dir
 * afterwards. */
int test_env_open(struct test_env *env);

/* Close the cache when open (writing its index). */
void test_env_close(struct test_env *env);

/* Close, remove the cache folder and free everything. */
void test_env_free(struct test_env *env);

/* Allocate an environment with test_env_new() and store it in *state
 * for test_env_teardown().  Fails the test when that is not possible. */
struct test_env *test_env_create(void **state, const char *name_template,
				 uint32_t chunk_size, uint64_t size_max,
				 uint64_t ttl_ms);

/* Create an environment as test_env_create() does and open its cache.
 * Fails the test unless the cache opens. */
struct test_env *test_env_start(void **state, const char *name_template,
				uint32_t chunk_size, uint64_t size_max,
				uint64_t ttl_ms);

/* A cmocka teardown for the environment in *state. */
int test_env_teardown(void **state);

/* The engine's counters, from cache_get_stats(). */
struct cache_stats test_stats(struct cache *c);

/* A buffer of len test_fill_pattern() bytes for offset and seed, which
 * the caller frees.  Fails the test when out of memory. */
char *test_pattern_new(size_t len, uint64_t offset, unsigned seed);

/* Create path on the fake origin with size test_fill_pattern() bytes of
 * seed, or with the bytes of text, failing the test unless that works. */
void test_put_pattern(struct fake_origin *fo, const char *path, size_t size,
		      unsigned seed);
void test_put_text(struct fake_origin *fo, const char *path,
		   const char *text);

/* Open path with open(2) flags, failing the test unless that works. */
struct cache_file *test_open_file(struct cache *c, const char *path,
				  int flags);

/* Open path read-only, read len bytes at offset and release it.  Returns
 * the byte count or a negative errno. */
ssize_t test_read_path(struct cache *c, const char *path, void *buf,
		       size_t len, uint64_t offset);

/* Assert that path on the origin is exactly the len bytes of want, or
 * that a read of path through a new cache handle returns them. */
void test_assert_origin_has(struct fake_origin *fo, const char *path,
			    const void *want, size_t len);
void test_assert_cache_has(struct cache *c, const char *path,
			   const void *want, size_t len);

#endif
