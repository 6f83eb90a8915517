/* test_ttl.c - revalidation after ttl, negative entries and listings,
 * driven by the fake clock. */
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
#define TTL_MS 1000		/* every ttl of these tests */
#define NAMES_MAX 16

static struct test_env *create(void **state)
{
	return test_env_create(state, "cache-tests-ttl-XXXXXX", CS, 64 * CS,
			       TTL_MS);
}

static struct test_env *start(void **state)
{
	return test_env_start(state, "cache-tests-ttl-XXXXXX", CS, 64 * CS,
			      TTL_MS);
}

/* Read path whole through a new handle and compare it with text. */
static void assert_reads(struct cache *c, const char *path, const char *text)
{
	char buf[256] = "";
	ssize_t n = test_read_path(c, path, buf, sizeof(buf) - 1, 0);

	assert_int_equal(n, strlen(text));
	assert_string_equal(buf, text);
}

struct notes {
	int calls;
	char path[256];
};

static void note_invalidate(void *arg, const char *path)
{
	struct notes *n = arg;

	n->calls++;
	snprintf(n->path, sizeof(n->path), "%s", path);
}

struct names {
	size_t count;
	char name[NAMES_MAX][64];
	uint64_t size[NAMES_MAX];
};

static int collect_name(void *arg, const char *name,
			const struct origin_attr *attr)
{
	struct names *n = arg;

	if (n->count == NAMES_MAX)
		return 1;
	snprintf(n->name[n->count], sizeof(n->name[0]), "%s", name);
	n->size[n->count] = attr->size;
	n->count++;
	return 0;
}

/* Index of name in a listing, or -1. */
static int find_name(const struct names *n, const char *name)
{
	for (size_t i = 0; i < n->count; i++)
		if (strcmp(n->name[i], name) == 0)
			return i;
	return -1;
}

static struct names list_dir(struct cache *c, const char *dir)
{
	struct names n = { 0 };

	assert_int_equal(cache_readdir(c, dir, collect_name, &n), 0);
	return n;
}

static void test_ttl_open_within_ttl_skips_stat(void **state)
{
	struct test_env *env = start(state);

	test_put_text(env->fo, "f", "first");
	assert_reads(env->c, "f", "first");
	assert_int_equal(fake_calls(env->fo, FAKE_STAT), 1);
	fake_clock_advance(TTL_MS / 2);
	assert_reads(env->c, "f", "first");
	assert_int_equal(fake_calls(env->fo, FAKE_STAT), 1);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 1);
}

static void test_ttl_open_after_ttl_stats_once(void **state)
{
	struct test_env *env = start(state);

	test_put_text(env->fo, "f", "first");
	assert_reads(env->c, "f", "first");
	fake_clock_advance(TTL_MS + 1);
	assert_reads(env->c, "f", "first");
	assert_int_equal(fake_calls(env->fo, FAKE_STAT), 2);
	assert_int_equal(test_stats(env->c).revalidations, 1);
	/* Confirmed again: trusted for another ttl. */
	assert_reads(env->c, "f", "first");
	assert_int_equal(fake_calls(env->fo, FAKE_STAT), 2);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 1);
}

static void test_ttl_zero_ttl_checks_every_open(void **state)
{
	struct test_env *env = create(state);

	env->cfg.ttl_ms = 0;
	assert_int_equal(test_env_open(env), 0);
	test_put_text(env->fo, "f", "first");
	for (int i = 1; i <= 3; i++) {
		assert_reads(env->c, "f", "first");
		assert_int_equal(fake_calls(env->fo, FAKE_STAT), i);
	}
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 1);
}

static void test_ttl_change_seen_after_ttl(void **state)
{
	struct test_env *env = start(state);
	struct notes notes = { 0 };
	struct cache_file *f;
	char buf[16] = "";
	bool changed;

	cache_set_invalidate(env->c, note_invalidate, &notes);
	test_put_text(env->fo, "f", "AAAA");
	assert_reads(env->c, "f", "AAAA");
	/* Same size, new version: only the version string differs. */
	test_put_text(env->fo, "f", "BBBB");

	fake_clock_advance(TTL_MS / 2);
	assert_reads(env->c, "f", "AAAA");
	assert_int_equal(test_stats(env->c).invalidations, 0);
	assert_int_equal(notes.calls, 0);

	fake_clock_advance(TTL_MS / 2 + 100);
	assert_int_equal(cache_file_open(env->c, "f", O_RDONLY, &f,
					 &changed), 0);
	assert_true(changed);
	assert_int_equal(cache_file_read(f, buf, sizeof(buf) - 1, 0), 4);
	assert_string_equal(buf, "BBBB");
	cache_file_release(f);
	assert_int_equal(test_stats(env->c).invalidations, 1);
	assert_int_equal(notes.calls, 1);
	assert_string_equal(notes.path, "f");
}

/* A chmod after another writer changed the file: the copy goes to the
 * new version, so the cached bytes must not take the ETag it returns. */
static void test_ttl_chmod_after_change(void **state)
{
	struct test_env *env = start(state);
	struct origin_attr attr = { .mode = 0600 };
	struct notes notes = { 0 };

	cache_set_invalidate(env->c, note_invalidate, &notes);
	test_put_text(env->fo, "f", "AAAA");
	assert_reads(env->c, "f", "AAAA");
	test_put_text(env->fo, "f", "BBBB");
	assert_int_equal(cache_setattr(env->c, "f", &attr, ORIGIN_ATTR_MODE,
				       false, 0), 0);
	assert_int_equal(test_stats(env->c).invalidations, 1);
	assert_int_equal(notes.calls, 1);
	fake_clock_advance(TTL_MS + 1);
	assert_reads(env->c, "f", "BBBB");
}

/* A chmod of the cached version keeps the cached bytes under the new
 * ETag: the next open after ttl finds them current. */
static void test_ttl_chmod_keeps_cached(void **state)
{
	struct test_env *env = start(state);
	struct origin_attr attr = { .mode = 0600 };

	test_put_text(env->fo, "f", "AAAA");
	assert_reads(env->c, "f", "AAAA");
	assert_int_equal(cache_setattr(env->c, "f", &attr, ORIGIN_ATTR_MODE,
				       false, 0), 0);
	assert_int_equal(test_stats(env->c).invalidations, 0);
	fake_clock_advance(TTL_MS + 1);
	fake_reset_calls(env->fo);
	assert_reads(env->c, "f", "AAAA");
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
	assert_int_equal(test_stats(env->c).invalidations, 0);
}

static void test_ttl_getattr_within_attr_ttl(void **state)
{
	struct test_env *env = start(state);
	struct origin_attr attr;

	test_put_text(env->fo, "g", "1234");
	assert_int_equal(cache_getattr(env->c, "g", &attr), 0);
	assert_int_equal(attr.size, 4);
	test_put_text(env->fo, "g", "123456");
	assert_int_equal(cache_getattr(env->c, "g", &attr), 0);
	assert_int_equal(attr.size, 4);
	assert_int_equal(fake_calls(env->fo, FAKE_STAT), 1);

	fake_clock_advance(TTL_MS + 1);
	assert_int_equal(cache_getattr(env->c, "g", &attr), 0);
	assert_int_equal(attr.size, 6);
	assert_int_equal(fake_calls(env->fo, FAKE_STAT), 2);
}

static void test_ttl_negative_cached_within_neg_ttl(void **state)
{
	struct test_env *env = start(state);
	struct origin_attr attr;
	struct cache_file *f;
	bool changed;

	assert_int_equal(cache_getattr(env->c, "missing", &attr), -ENOENT);
	assert_int_equal(cache_getattr(env->c, "missing", &attr), -ENOENT);
	assert_int_equal(cache_file_open(env->c, "missing", O_RDONLY, &f,
					 &changed), -ENOENT);
	assert_int_equal(fake_calls(env->fo, FAKE_STAT), 1);

	/* Created behind the cache's back: unseen until neg_ttl passed. */
	test_put_text(env->fo, "missing", "here");
	fake_clock_advance(TTL_MS / 2);
	assert_int_equal(cache_getattr(env->c, "missing", &attr), -ENOENT);
	assert_int_equal(fake_calls(env->fo, FAKE_STAT), 1);
	fake_clock_advance(TTL_MS / 2 + 1);
	assert_int_equal(cache_getattr(env->c, "missing", &attr), 0);
	assert_int_equal(fake_calls(env->fo, FAKE_STAT), 2);
	assert_int_equal(attr.size, 4);
}

static void test_ttl_neg_ttl_zero_asks_every_time(void **state)
{
	struct test_env *env = create(state);
	struct origin_attr attr;

	env->cfg.neg_ttl_ms = 0;
	assert_int_equal(test_env_open(env), 0);
	for (int i = 1; i <= 3; i++) {
		assert_int_equal(cache_getattr(env->c, "missing", &attr),
				 -ENOENT);
		assert_int_equal(fake_calls(env->fo, FAKE_STAT), i);
	}
	/* A fresh listing without the name is not used as a negative entry. */
	list_dir(env->c, "");
	assert_int_equal(cache_getattr(env->c, "missing", &attr), -ENOENT);
	assert_int_equal(fake_calls(env->fo, FAKE_STAT), 4);
}

static void test_ttl_listing_cached_within_dir_ttl(void **state)
{
	struct test_env *env = start(state);
	struct names n;

	assert_int_equal(fake_put_dir(env->fo, "d"), 0);
	test_put_text(env->fo, "d/x", "xx");
	test_put_text(env->fo, "d/y", "yyy");
	n = list_dir(env->c, "d");
	assert_int_equal(n.count, 2);
	assert_true(find_name(&n, "x") >= 0);
	assert_true(find_name(&n, "y") >= 0);

	/* Added behind the cache's back: unseen until dir_ttl passed. */
	test_put_text(env->fo, "d/z", "z");
	fake_clock_advance(TTL_MS / 2);
	n = list_dir(env->c, "d");
	assert_int_equal(n.count, 2);
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 1);

	fake_clock_advance(TTL_MS / 2 + 1);
	n = list_dir(env->c, "d");
	assert_int_equal(n.count, 3);
	assert_true(find_name(&n, "z") >= 0);
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 2);
}

static void test_ttl_lookup_from_listing_no_stat(void **state)
{
	struct test_env *env = start(state);
	struct origin_attr attr;

	assert_int_equal(fake_put_dir(env->fo, "d"), 0);
	test_put_text(env->fo, "d/x", "xx");
	list_dir(env->c, "d");
	assert_int_equal(cache_getattr(env->c, "d/x", &attr), 0);
	assert_true(S_ISREG(attr.mode));
	assert_int_equal(attr.size, 2);
	/* A name the fresh listing lacks does not exist. */
	assert_int_equal(cache_getattr(env->c, "d/nope", &attr), -ENOENT);
	assert_int_equal(fake_calls(env->fo, FAKE_STAT), 0);
}

static void test_ttl_created_file_in_cached_listing(void **state)
{
	struct test_env *env = start(state);
	struct cache_file *f;
	struct names n;
	int i;

	test_put_text(env->fo, "old", "o");
	n = list_dir(env->c, "");
	assert_int_equal(n.count, 1);

	assert_int_equal(cache_file_create(env->c, "new", 0644, getuid(),
					   getgid(), &f), 0);
	n = list_dir(env->c, "");
	assert_true(find_name(&n, "new") >= 0);
	assert_int_equal(cache_file_write(f, "hello", 5, 0), 5);
	assert_int_equal(cache_file_commit(f), 0);
	cache_file_release(f);
	n = list_dir(env->c, "");
	i = find_name(&n, "new");
	assert_true(i >= 0);
	assert_int_equal(n.size[i], 5);

	assert_int_equal(cache_mkdir(env->c, "sub", 0755, getuid(), getgid()),
			 0);
	assert_int_equal(cache_unlink(env->c, "old"), 0);
	n = list_dir(env->c, "");
	assert_true(find_name(&n, "sub") >= 0);
	assert_int_equal(find_name(&n, "old"), -1);
	assert_int_equal(n.count, 2);
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 1);
}

static void test_ttl_removed_file_dropped_after_ttl(void **state)
{
	struct test_env *env = start(state);
	struct notes notes = { 0 };
	struct origin_attr attr;

	cache_set_invalidate(env->c, note_invalidate, &notes);
	test_put_text(env->fo, "f", "gone soon");
	assert_reads(env->c, "f", "gone soon");
	assert_int_equal(fake_remove(env->fo, "f"), 0);
	fake_clock_advance(TTL_MS + 1);
	assert_int_equal(cache_getattr(env->c, "f", &attr), -ENOENT);
	assert_int_equal(test_stats(env->c).chunks_cached, 0);
	assert_int_equal(notes.calls, 1);
}

static void test_ttl_origin_down_serves_cached(void **state)
{
	struct test_env *env = start(state);
	struct origin_attr attr;

	test_put_text(env->fo, "f", "cached");
	assert_reads(env->c, "f", "cached");
	fake_clock_advance(TTL_MS + 1);
	fake_fail_next(env->fo, FAKE_STAT, 2, EIO);
	assert_reads(env->c, "f", "cached");
	assert_int_equal(cache_getattr(env->c, "f", &attr), 0);
	assert_int_equal(attr.size, 6);
	assert_int_equal(fake_calls(env->fo, FAKE_STAT), 3);
}

/* A handle that returned bytes of one version never returns bytes of
 * another: the read of a chunk that changed meanwhile fails. */
static void test_ttl_change_during_read_fails(void **state)
{
	struct test_env *env = start(state);
	char *buf = malloc(2 * CS);
	struct cache_file *f;
	bool changed;

	assert_non_null(buf);
	test_fill_pattern(buf, 2 * CS, 0, 1);
	assert_int_equal(fake_put_file(env->fo, "f", buf, 2 * CS), 0);
	assert_int_equal(cache_file_open(env->c, "f", O_RDONLY, &f,
					 &changed), 0);
	assert_int_equal(cache_file_read(f, buf, CS, 0), CS);
	test_fill_pattern(buf, 2 * CS, 0, 2);
	assert_int_equal(fake_put_file(env->fo, "f", buf, 2 * CS), 0);
	assert_int_equal(cache_file_read(f, buf, CS, CS), -EIO);
	cache_file_release(f);
	free(buf);
}

/* After a read failed on a changed file, the next open has the new
 * version, also within ttl. */
static void test_ttl_change_during_read_next_open(void **state)
{
	struct test_env *env = start(state);
	char *buf = malloc(2 * CS), *want = malloc(2 * CS);
	struct cache_file *f;
	bool changed;

	assert_non_null(buf);
	assert_non_null(want);
	test_fill_pattern(buf, 2 * CS, 0, 1);
	assert_int_equal(fake_put_file(env->fo, "f", buf, 2 * CS), 0);
	assert_int_equal(cache_file_open(env->c, "f", O_RDONLY, &f,
					 &changed), 0);
	assert_int_equal(cache_file_read(f, buf, CS, 0), CS);
	test_fill_pattern(want, 2 * CS, 0, 2);
	assert_int_equal(fake_put_file(env->fo, "f", want, 2 * CS), 0);
	assert_int_equal(cache_file_read(f, buf, CS, CS), -EIO);
	cache_file_release(f);

	assert_int_equal(cache_file_open(env->c, "f", O_RDONLY, &f,
					 &changed), 0);
	assert_true(changed);
	assert_int_equal(cache_file_read(f, buf, 2 * CS, 0), 2 * CS);
	assert_memory_equal(buf, want, 2 * CS);
	cache_file_release(f);
	assert_int_equal(test_stats(env->c).invalidations, 1);
	free(buf);
	free(want);
}

struct racing_read {
	struct cache_file *f;
	char *buf;
	ssize_t n;
	bool done;
};

/* Read the first chunk through the handle, once. */
static void read_first_chunk(void *arg, const char *path)
{
	struct racing_read *r = arg;

	if (r->done)
		return;
	r->done = true;
	r->n = cache_file_read(r->f, r->buf, CS, 0);
}

/* A handle whose version was read before finds the change: the read
 * fails rather than return bytes of the new version, because the
 * kernel's page cache may hold bytes of the old one.  The cached chunk
 * of the old version is still read through the handle. */
static void test_ttl_change_race_never_mixes(void **state)
{
	struct test_env *env = start(state);
	char *old = test_pattern_new(2 * CS, 0, 1);
	char *new = test_pattern_new(2 * CS, 0, 2);
	char *buf = malloc(CS), *first = malloc(CS);
	struct racing_read race = { .buf = first };
	struct cache_file *f;
	bool changed;

	assert_non_null(buf);
	assert_non_null(first);
	assert_int_equal(fake_put_file(env->fo, "f", old, 2 * CS), 0);
	assert_int_equal(test_read_path(env->c, "f", buf, CS, 0), CS);
	assert_int_equal(fake_put_file(env->fo, "f", new, 2 * CS), 0);
	assert_int_equal(cache_file_open(env->c, "f", O_RDONLY, &f,
					 &changed), 0);
	race.f = f;
	/* The fetch of the second chunk finds the file changed.  A read of
	 * the first chunk during a stat that followed would race with it,
	 * but the version was read before, so the read fails at once. */
	fake_set_stat_hook(env->fo, read_first_chunk, &race);
	assert_int_equal(cache_file_read(f, buf, CS, CS), -EIO);
	fake_set_stat_hook(env->fo, NULL, NULL);
	assert_false(race.done);
	read_first_chunk(&race, "f");
	assert_int_equal(race.n, CS);
	assert_memory_equal(first, old, CS);
	cache_file_release(f);
	test_assert_cache_has(env->c, "f", new, 2 * CS);
	free(old);
	free(new);
	free(buf);
	free(first);
}

struct late_stat {
	struct test_env *env;
	const char *old, *new;
	size_t old_len, new_len;
	bool done;
};

/* Once: while this stat is on its way, another request confirms a new
 * version, and this stat then returns the state from before. */
static void confirm_newer_meanwhile(void *arg, const char *path)
{
	struct late_stat *l = arg;
	struct origin_attr attr;

	if (l->done)
		return;
	l->done = true;
	fake_clock_advance(1);
	assert_int_equal(fake_put_file(l->env->fo, path, l->new, l->new_len),
			 0);
	assert_int_equal(cache_getattr(l->env->c, path, &attr), 0);
	assert_int_equal(attr.size, l->new_len);
	assert_int_equal(fake_put_file(l->env->fo, path, l->old, l->old_len),
			 0);
}

/* A stat result that another request overtook does not replace the
 * version that request confirmed, which would give the kernel the old
 * size for a file that its handles read at the new one. */
static void test_ttl_late_stat_keeps_newer(void **state)
{
	struct test_env *env = start(state);
	struct late_stat late = {
		.env = env, .old = "old", .old_len = 3,
		.new = "newer", .new_len = 5,
	};
	struct origin_attr attr;

	test_put_text(env->fo, "f", "old");
	assert_reads(env->c, "f", "old");
	fake_clock_advance(2 * TTL_MS);
	fake_set_stat_hook(env->fo, confirm_newer_meanwhile, &late);
	assert_int_equal(cache_getattr(env->c, "f", &attr), 0);
	fake_set_stat_hook(env->fo, NULL, NULL);
	assert_true(late.done);
	assert_int_equal(attr.size, 5);
	assert_int_equal(test_stats(env->c).invalidations, 1);
}

/* A handle of a version that a newer one replaced reads nothing more of
 * it: its bytes would enter the page cache that the new version's
 * handles read. */
static void test_ttl_superseded_version_unread(void **state)
{
	struct test_env *env = create(state);
	char *old = test_pattern_new(2 * CS, 0, 1);
	char *new = test_pattern_new(3 * CS, 0, 2);
	char *buf = malloc(3 * CS);
	struct cache_file *held, *idle, *f;
	bool changed;

	env->cfg.ttl_ms = 0;
	assert_int_equal(test_env_open(env), 0);
	assert_non_null(buf);
	assert_int_equal(fake_put_file(env->fo, "f", old, 2 * CS), 0);
	assert_int_equal(cache_file_open(env->c, "f", O_RDONLY, &held,
					 &changed), 0);
	assert_int_equal(cache_file_open(env->c, "f", O_RDONLY, &idle,
					 &changed), 0);
	assert_int_equal(cache_file_read(held, buf, 2 * CS, 0), 2 * CS);
	assert_memory_equal(buf, old, 2 * CS);

	assert_int_equal(fake_put_file(env->fo, "f", new, 3 * CS), 0);
	assert_int_equal(cache_file_open(env->c, "f", O_RDONLY, &f,
					 &changed), 0);
	assert_true(changed);
	assert_int_equal(cache_file_read(held, buf, CS, 0), -EIO);
	assert_int_equal(cache_file_read(idle, buf, CS, 0), -EIO);
	assert_int_equal(cache_file_read(f, buf, 3 * CS, 0), 3 * CS);
	assert_memory_equal(buf, new, 3 * CS);
	cache_file_release(held);
	cache_file_release(idle);
	cache_file_release(f);
	free(old);
	free(new);
	free(buf);
}

/* A handle that returned nothing yet moves to the new version. */
static void test_ttl_change_before_read_switches(void **state)
{
	struct test_env *env = start(state);
	char *buf = malloc(CS), *want = malloc(CS);
	struct cache_file *f;
	bool changed;

	assert_non_null(buf);
	assert_non_null(want);
	test_fill_pattern(buf, CS, 0, 1);
	assert_int_equal(fake_put_file(env->fo, "f", buf, CS), 0);
	assert_int_equal(cache_file_open(env->c, "f", O_RDONLY, &f,
					 &changed), 0);
	test_fill_pattern(want, CS, 0, 2);
	assert_int_equal(fake_put_file(env->fo, "f", want, CS), 0);
	assert_int_equal(cache_file_read(f, buf, CS, 0), CS);
	assert_memory_equal(buf, want, CS);
	cache_file_release(f);
	free(buf);
	free(want);
}

/* An argument runs only the tests whose names match it (cmocka pattern). */
int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_ttl_open_within_ttl_skips_stat,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_ttl_open_after_ttl_stats_once,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_ttl_zero_ttl_checks_every_open,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_ttl_change_seen_after_ttl,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_ttl_getattr_within_attr_ttl,
					  test_env_teardown),
		cmocka_unit_test_teardown(
			test_ttl_negative_cached_within_neg_ttl,
			test_env_teardown),
		cmocka_unit_test_teardown(test_ttl_neg_ttl_zero_asks_every_time,
					  test_env_teardown),
		cmocka_unit_test_teardown(
			test_ttl_listing_cached_within_dir_ttl,
			test_env_teardown),
		cmocka_unit_test_teardown(test_ttl_lookup_from_listing_no_stat,
					  test_env_teardown),
		cmocka_unit_test_teardown(
			test_ttl_created_file_in_cached_listing,
			test_env_teardown),
		cmocka_unit_test_teardown(
			test_ttl_removed_file_dropped_after_ttl,
			test_env_teardown),
		cmocka_unit_test_teardown(test_ttl_origin_down_serves_cached,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_ttl_change_during_read_fails,
					  test_env_teardown),
		cmocka_unit_test_teardown(
			test_ttl_change_during_read_next_open,
			test_env_teardown),
		cmocka_unit_test_teardown(test_ttl_change_race_never_mixes,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_ttl_chmod_after_change,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_ttl_chmod_keeps_cached,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_ttl_late_stat_keeps_newer,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_ttl_superseded_version_unread,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_ttl_change_before_read_switches,
					  test_env_teardown),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	log_max_level = LOG_ERR;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
