/* test_listing.c - per-directory listings built from a recursive listing,
 * the listing prefetch of a subtree, listing cursors over pages, and the
 * bound on cached listings. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cache.h"
#include "fake_origin.c"
#include "internal.h"
#include "log.h"

#define CS (64u * 1024)
#define TTL_MS 60000
#define DONE_MAX 16

/* ---- builder ---- */

/* The listings a builder passed on, in order. */
struct done_log {
	char *dirs[DONE_MAX];
	struct listing *listings[DONE_MAX];
	size_t count;
};

static void record_done(void *arg, const char *dir, struct listing *l)
{
	struct done_log *log = arg;

	assert_true(log->count < DONE_MAX);
	log->dirs[log->count] = strdup(dir);
	log->listings[log->count] = l;
	log->count++;
}

static void done_log_free(struct done_log *log)
{
	for (size_t i = 0; i < log->count; i++) {
		free(log->dirs[i]);
		listing_free(log->listings[i]);
	}
}

/* Feed entries (path, mode) to b.  Mode 0 means a 3-byte file. */
struct feed {
	const char *path;
	mode_t mode;
};

static void feed_all(struct tree_builder *b, const struct feed *f,
		     size_t n)
{
	struct origin_attr dir_attr = { .mode = S_IFDIR | 0755 };

	for (size_t i = 0; i < n; i++) {
		struct origin_tree_entry e = { .path = f[i].path };

		e.attr.mode = f[i].mode ? f[i].mode : S_IFREG | 0644;
		e.attr.size = f[i].mode ? 0 : 3;
		assert_int_equal(tree_builder_add(b, &e, &dir_attr), 0);
	}
}

/* Assert that listing l has exactly the names in want, space-separated,
 * with d after a directory's name ("a d b"). */
static void assert_names(const struct listing *l, const char *want)
{
	char got[512] = "";
	size_t len = 0;

	for (size_t i = 0; i < l->count; i++)
		len += snprintf(got + len, sizeof(got) - len, "%s%s%s",
				i ? " " : "", l->entries[i].name,
				S_ISDIR(l->entries[i].attr.mode) ? " d" : "");
	assert_string_equal(got, want);
}

static void test_builder_nested_and_markers(void **state)
{
	static const struct feed entries[] = {
		{ "a.txt", 0 },
		{ "d/", S_IFDIR | 0700 },	/* marker with its own mode */
		{ "d/e/", S_IFDIR | 0755 },
		{ "d/e/f", 0 },
		{ "d/g", 0 },
		{ "h/x", 0 },			/* no marker: dir_attr */
		{ "h/y/", S_IFDIR | 0755 },	/* an empty directory */
		{ "z", 0 },
	};
	struct done_log log = { 0 };
	struct tree_builder *b = tree_builder_new("top", record_done, &log);
	struct dir_entry *d;

	assert_non_null(b);
	feed_all(b, entries, sizeof(entries) / sizeof(entries[0]));
	/* Passed on as soon as "z" showed the listing is beyond them. */
	assert_int_equal(log.count, 4);
	assert_string_equal(log.dirs[0], "top/d/e");
	assert_names(log.listings[0], "f");
	assert_string_equal(log.dirs[1], "top/d");
	assert_names(log.listings[1], "e d g");
	assert_string_equal(log.dirs[2], "top/h/y");
	assert_names(log.listings[2], "");
	assert_string_equal(log.dirs[3], "top/h");
	assert_names(log.listings[3], "x y d");
	tree_builder_finish(b);
	assert_int_equal(log.count, 5);
	assert_string_equal(log.dirs[4], "top");
	assert_names(log.listings[4], "a.txt d d h d z");
	d = listing_find(log.listings[4], "d");
	assert_int_equal(d->attr.mode, S_IFDIR | 0700);
	d = listing_find(log.listings[4], "h");
	assert_int_equal(d->attr.mode, S_IFDIR | 0755);
	assert_int_equal(listing_find(log.listings[4], "z")->attr.size, 3);
	tree_builder_free(b);
	done_log_free(&log);
}

static void test_builder_cut_keeps_dir_open(void **state)
{
	/* The listing stops inside "b": b and the root are never passed
	 * on, since keys of theirs may follow. */
	static const struct feed entries[] = {
		{ "a/1", 0 }, { "a/2", 0 }, { "b/1", 0 },
	};
	struct done_log log = { 0 };
	struct tree_builder *b = tree_builder_new("", record_done, &log);

	assert_non_null(b);
	feed_all(b, entries, sizeof(entries) / sizeof(entries[0]));
	assert_int_equal(log.count, 1);
	assert_string_equal(log.dirs[0], "a");
	assert_names(log.listings[0], "1 2");
	tree_builder_free(b);
	assert_int_equal(log.count, 1);
	done_log_free(&log);
}

static void test_builder_file_and_dir_same_name(void **state)
{
	/* "a" is a file and a prefix: listed once, as the file. */
	static const struct feed entries[] = {
		{ "a", 0 }, { "a!", 0 }, { "a/x", 0 },
	};
	struct done_log log = { 0 };
	struct tree_builder *b = tree_builder_new("", record_done, &log);

	assert_non_null(b);
	feed_all(b, entries, sizeof(entries) / sizeof(entries[0]));
	tree_builder_finish(b);
	assert_int_equal(log.count, 2);
	assert_string_equal(log.dirs[1], "");
	assert_names(log.listings[1], "a a!");
	tree_builder_free(b);
	done_log_free(&log);
}

/* ---- engine ---- */

static int teardown(void **state)
{
	test_env_free(*state);
	return 0;
}

/* Open a cache over a fake origin with list_tree() in pages of
 * page_size, and dir_prefetch set to budget. */
static struct test_env *start(void **state, unsigned page_size,
			      uint64_t budget)
{
	struct test_env *env = test_env_new("cache-tests-listing-XXXXXX", CS,
					    64 * CS, TTL_MS);

	assert_non_null(env);
	*state = env;
	fake_set_tree_page(env->fo, page_size);
	env->cfg.dir_prefetch = budget;
	return env;
}

static void put_tree(struct fake_origin *fo, const char *const *paths,
		     size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(paths[i]);

		if (paths[i][len - 1] == '/') {
			char dir[64];

			snprintf(dir, sizeof(dir), "%.*s", (int)len - 1,
				 paths[i]);
			assert_int_equal(fake_put_dir(fo, dir), 0);
		} else {
			assert_int_equal(fake_put_file(fo, paths[i], "abc", 3),
					 0);
		}
	}
}

struct names {
	char text[512];
	size_t len;
};

static int collect_name(void *arg, const char *name,
			const struct origin_attr *attr)
{
	struct names *n = arg;

	n->len += snprintf(n->text + n->len, sizeof(n->text) - n->len,
			   "%s%s", n->len ? " " : "", name);
	return 0;
}

static void assert_readdir(struct cache *c, const char *dir,
			   const char *want)
{
	struct names n = { .len = 0 };

	assert_int_equal(cache_readdir(c, dir, collect_name, &n), 0);
	assert_string_equal(n.text, want);
}

static uint64_t list_requests(struct cache *c)
{
	struct cache_stats st;

	cache_get_stats(c, &st);
	return st.origin_requests[ORIGIN_REQ_LIST];
}

static const char *const tree[] = {
	"a/", "a/1", "a/2", "a/deep/", "a/deep/x",
	"b/", "b/1", "b/2",
	"c/", "c/1",
	"top.txt",
};

/* List every directory of tree, top down. */
static void assert_walk(struct cache *c)
{
	assert_readdir(c, "", "a b c top.txt");
	assert_readdir(c, "a", "1 2 deep");
	assert_readdir(c, "a/deep", "x");
	assert_readdir(c, "b", "1 2");
	assert_readdir(c, "c", "1");
}

static void test_prefetch_lists_subtree_once(void **state)
{
	struct test_env *env = start(state, 3, 1000);
	struct origin_attr attr;

	put_tree(env->fo, tree, sizeof(tree) / sizeof(tree[0]));
	assert_int_equal(test_env_open(env), 0);
	assert_walk(env->c);
	assert_int_equal(cache_getattr(env->c, "b/2", &attr), 0);
	assert_int_equal(attr.size, 3);
	assert_int_equal(cache_getattr(env->c, "b/none", &attr), -ENOENT);
	/* One delimited listing of the root, one recursive listing of 11
	 * entries in pages of 3, and no stat. */
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 1);
	assert_int_equal(fake_calls(env->fo, FAKE_LIST_TREE), 1);
	assert_int_equal(fake_calls(env->fo, FAKE_STAT), 0);
	assert_int_equal(list_requests(env->c), 1 + 4);
}

static void test_prefetch_budget_cut_lists_rest(void **state)
{
	/* 6 entries are taken, "a/" to "a/deep/x" and "b/", so b is cut. */
	struct test_env *env = start(state, 4, 6);

	put_tree(env->fo, tree, sizeof(tree) / sizeof(tree[0]));
	assert_int_equal(test_env_open(env), 0);
	assert_readdir(env->c, "", "a b c top.txt");
	assert_readdir(env->c, "a", "1 2 deep");
	assert_readdir(env->c, "a/deep", "x");
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 1);
	assert_readdir(env->c, "b", "1 2");
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 2);
	assert_readdir(env->c, "c", "1");
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 3);
	assert_int_equal(fake_calls(env->fo, FAKE_LIST_TREE), 1);
	/* Pages of 4: the second one reached the budget. */
	assert_int_equal(list_requests(env->c), 3 + 2);
}

static void test_prefetch_off_lists_each_dir(void **state)
{
	struct test_env *env = start(state, 3, 0);

	put_tree(env->fo, tree, sizeof(tree) / sizeof(tree[0]));
	assert_int_equal(test_env_open(env), 0);
	assert_readdir(env->c, "", "a b c top.txt");
	assert_readdir(env->c, "a", "1 2 deep");
	assert_readdir(env->c, "b", "1 2");
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 3);
	assert_int_equal(fake_calls(env->fo, FAKE_LIST_TREE), 0);
}

/* ---- cursor ---- */

static const char *const seven[] = {
	"d/", "d/f0", "d/f1", "d/f2", "d/f3", "d/f4", "d/f5", "d/f6",
};

/* Open a cache over seven files in d, listed in pages of 3 entries. */
static struct test_env *start_paged(void **state)
{
	struct test_env *env = start(state, 0, 0);

	fake_set_list_page(env->fo, 3);
	put_tree(env->fo, seven, sizeof(seven) / sizeof(seven[0]));
	assert_int_equal(test_env_open(env), 0);
	return env;
}

/* Fetch the next page of d into a fresh n and check its names. */
static void assert_next(struct cache_dir *d, const char *want)
{
	struct names n = { .len = 0 };

	assert_int_equal(cache_dir_next(d, collect_name, &n), 0);
	assert_string_equal(n.text, want);
}

static void test_cursor_appends_pages_in_order(void **state)
{
	struct test_env *env = start_paged(state);
	struct names n = { .len = 0 };
	struct origin_attr attr;
	struct cache_dir *d;

	assert_int_equal(cache_dir_open(env->c, "d", collect_name, &n, &d),
			 0);
	assert_string_equal(n.text, "");
	assert_false(cache_dir_complete(d));
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 0);
	assert_next(d, "f0 f1 f2");
	assert_null(meta_listing_get(env->c, "d"));
	assert_next(d, "f3 f4 f5");
	assert_null(meta_listing_get(env->c, "d"));
	assert_false(cache_dir_complete(d));
	assert_next(d, "f6");
	assert_true(cache_dir_complete(d));
	assert_non_null(meta_listing_get(env->c, "d"));
	assert_int_equal(meta_listing_get(env->c, "d")->count, 7);
	assert_next(d, "");
	cache_dir_close(d);
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 3);

	/* The stored listing answers listings and lookups. */
	assert_readdir(env->c, "d", "f0 f1 f2 f3 f4 f5 f6");
	assert_int_equal(cache_getattr(env->c, "d/f4", &attr), 0);
	assert_int_equal(attr.size, 3);
	assert_int_equal(cache_getattr(env->c, "d/none", &attr), -ENOENT);
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 3);
	assert_int_equal(fake_calls(env->fo, FAKE_STAT), 0);
}

static void test_cursor_open_returns_fresh_listing(void **state)
{
	struct test_env *env = start_paged(state);
	struct names n = { .len = 0 };
	struct cache_dir *d;

	assert_readdir(env->c, "d", "f0 f1 f2 f3 f4 f5 f6");
	assert_int_equal(cache_dir_open(env->c, "d", collect_name, &n, &d),
			 0);
	assert_string_equal(n.text, "f0 f1 f2 f3 f4 f5 f6");
	assert_true(cache_dir_complete(d));
	cache_dir_close(d);
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 3);

	/* After dir_ttl the cursor lists from the origin again. */
	fake_clock_advance(TTL_MS);
	n.len = 0;
	n.text[0] = '\0';
	assert_int_equal(cache_dir_open(env->c, "d", collect_name, &n, &d),
			 0);
	assert_string_equal(n.text, "");
	assert_false(cache_dir_complete(d));
	assert_next(d, "f0 f1 f2");
	cache_dir_close(d);
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 4);
}

static void test_cursor_failed_page_stores_nothing(void **state)
{
	struct test_env *env = start_paged(state);
	struct names n = { .len = 0 };
	struct cache_dir *d;

	assert_int_equal(cache_dir_open(env->c, "d", collect_name, &n, &d),
			 0);
	assert_next(d, "f0 f1 f2");
	fake_fail_next(env->fo, FAKE_LIST, 1, EIO);
	assert_int_equal(cache_dir_next(d, collect_name, &n), -EIO);
	assert_string_equal(n.text, "");
	assert_false(cache_dir_complete(d));
	/* The next call asks for the failed page again. */
	assert_next(d, "f3 f4 f5");
	fake_fail_next(env->fo, FAKE_LIST, 1, EIO);
	assert_int_equal(cache_dir_next(d, collect_name, &n), -EIO);
	assert_false(cache_dir_complete(d));
	assert_null(meta_listing_get(env->c, "d"));
	cache_dir_close(d);
	assert_null(meta_listing_get(env->c, "d"));
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 4);

	/* A cursor closed before its last page stores nothing either. */
	assert_int_equal(cache_dir_open(env->c, "d", collect_name, &n, &d),
			 0);
	assert_next(d, "f0 f1 f2");
	cache_dir_close(d);
	assert_null(meta_listing_get(env->c, "d"));
	assert_readdir(env->c, "d", "f0 f1 f2 f3 f4 f5 f6");
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 5 + 3);
}

static void test_cursor_local_change_not_stored(void **state)
{
	struct test_env *env = start_paged(state);
	struct cache_file *f;
	struct names n = { .len = 0 };
	struct cache_dir *d;

	assert_int_equal(cache_dir_open(env->c, "d", collect_name, &n, &d),
			 0);
	assert_next(d, "f0 f1 f2");
	assert_int_equal(cache_file_create(env->c, "d/g", 0644, 0, 0, &f),
			 0);
	assert_int_equal(cache_file_commit(f), 0);
	cache_file_release(f);
	assert_next(d, "f3 f4 f5");
	assert_next(d, "f6 g");
	assert_true(cache_dir_complete(d));
	cache_dir_close(d);
	/* The listing may have missed the change, so it is not stored. */
	assert_null(meta_listing_get(env->c, "d"));
}

static void test_cursor_lists_file_not_uploaded(void **state)
{
	struct test_env *env = start_paged(state);
	struct origin_attr attr;
	struct cache_file *f;
	struct names n = { .len = 0 };
	struct cache_dir *d;

	assert_int_equal(cache_file_create(env->c, "d/e", 0644, 0, 0, &f),
			 0);
	assert_false(fake_exists(env->fo, "d/e"));
	assert_int_equal(cache_dir_open(env->c, "d", collect_name, &n, &d),
			 0);
	assert_next(d, "f0 f1 f2");
	assert_next(d, "f3 f4 f5");
	assert_next(d, "f6 e");
	cache_dir_close(d);
	assert_readdir(env->c, "d", "e f0 f1 f2 f3 f4 f5 f6");
	assert_int_equal(cache_getattr(env->c, "d/e", &attr), 0);
	assert_int_equal(attr.size, 0);
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 3);
	cache_file_release(f);
}

static void test_cursor_last_page_starts_prefetch(void **state)
{
	struct test_env *env = start(state, 3, 1000);

	fake_set_list_page(env->fo, 2);
	put_tree(env->fo, tree, sizeof(tree) / sizeof(tree[0]));
	assert_int_equal(test_env_open(env), 0);
	assert_walk(env->c);
	/* Two pages of the root, then one recursive listing. */
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 2);
	assert_int_equal(fake_calls(env->fo, FAKE_LIST_TREE), 1);
	assert_int_equal(list_requests(env->c), 2 + 4);
}

/* ---- bound ---- */

static void test_bound_drops_oldest_listing(void **state)
{
	static const char *const files[] = {
		"a/", "a/1", "a/2", "a/3", "b/", "b/1", "b/2", "b/3",
		"big/", "big/1", "big/2", "big/3", "big/4", "big/5", "big/6",
	};
	struct test_env *env = start(state, 0, 0);

	env->cfg.dir_entries_max = 5;
	put_tree(env->fo, files, sizeof(files) / sizeof(files[0]));
	assert_int_equal(test_env_open(env), 0);
	assert_readdir(env->c, "a", "1 2 3");
	assert_readdir(env->c, "b", "1 2 3");
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 2);
	/* 6 entries > 5: the listing of a went, that of b stays. */
	assert_readdir(env->c, "b", "1 2 3");
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 2);
	assert_readdir(env->c, "a", "1 2 3");
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 3);
	/* The newest listing stays even when it alone is over the bound. */
	assert_readdir(env->c, "big", "1 2 3 4 5 6");
	assert_readdir(env->c, "big", "1 2 3 4 5 6");
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 4);
	assert_int_equal(env->c->listing_entries, 6);
	assert_int_equal(env->c->listings.count, 1);
}

static void test_bound_counts_created_entries(void **state)
{
	static const char *const files[] = { "a/", "a/1", "b/", "b/1" };
	struct test_env *env = start(state, 0, 0);
	struct cache_file *f;

	env->cfg.dir_entries_max = 3;
	put_tree(env->fo, files, sizeof(files) / sizeof(files[0]));
	assert_int_equal(test_env_open(env), 0);
	assert_readdir(env->c, "a", "1");
	assert_readdir(env->c, "b", "1");
	assert_int_equal(env->c->listing_entries, 2);
	assert_int_equal(cache_file_create(env->c, "b/2", 0644, 0, 0, &f),
			 0);
	assert_int_equal(cache_file_commit(f), 0);
	cache_file_release(f);
	assert_int_equal(env->c->listing_entries, 3);
	assert_int_equal(cache_unlink(env->c, "b/2"), 0);
	assert_int_equal(env->c->listing_entries, 2);
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 2);
}

/* An argument runs only the tests whose names match it (cmocka pattern). */
int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builder_nested_and_markers),
		cmocka_unit_test(test_builder_cut_keeps_dir_open),
		cmocka_unit_test(test_builder_file_and_dir_same_name),
		cmocka_unit_test_teardown(test_prefetch_lists_subtree_once,
					  teardown),
		cmocka_unit_test_teardown(test_prefetch_budget_cut_lists_rest,
					  teardown),
		cmocka_unit_test_teardown(test_prefetch_off_lists_each_dir,
					  teardown),
		cmocka_unit_test_teardown(test_cursor_appends_pages_in_order,
					  teardown),
		cmocka_unit_test_teardown(
			test_cursor_open_returns_fresh_listing, teardown),
		cmocka_unit_test_teardown(
			test_cursor_failed_page_stores_nothing, teardown),
		cmocka_unit_test_teardown(test_cursor_local_change_not_stored,
					  teardown),
		cmocka_unit_test_teardown(test_cursor_lists_file_not_uploaded,
					  teardown),
		cmocka_unit_test_teardown(test_cursor_last_page_starts_prefetch,
					  teardown),
		cmocka_unit_test_teardown(test_bound_drops_oldest_listing,
					  teardown),
		cmocka_unit_test_teardown(test_bound_counts_created_entries,
					  teardown),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	log_max_level = LOG_ERR;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
