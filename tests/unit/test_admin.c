/*
 * test_admin.c - the engine functions behind nearfs-ctl: settings
 * changed while open and the runtime option parser, warming, forgetting
 * and counting cached data, and listing the write-back queue, over a
 * fake origin and the fake clock.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "fake_origin.c"
#include "log.h"
#include "options.h"

#define CS (64u * 1024)
#define TEMPLATE "cache-tests-admin-XXXXXX"
/* Real time a poll waits for an upload before the test fails. */
#define POLL_MS 3000

static struct test_env *start(void **state, uint64_t size_max)
{
	return test_env_start(state, TEMPLATE, CS, size_max, 60000);
}

/* Open a write-back cache whose uploads wait an hour after each close,
 * so that written files stay pending. */
static struct test_env *start_write_back(void **state)
{
	struct test_env *env = test_env_create(state, TEMPLATE, CS, 16 * CS,
					       60000);

	env->cfg.write_mode = WRITE_BACK;
	env->cfg.max_dirty = 16 * CS;
	env->cfg.writeback_delay_ms = 3600 * 1000;
	assert_int_equal(test_env_open(env), 0);
	return env;
}

/* Read every byte of path through a new handle; fails the test unless
 * all size bytes arrive. */
static void read_all(struct cache *c, const char *path, size_t size)
{
	char *buf = malloc(size ? size : 1);

	assert_non_null(buf);
	assert_int_equal(test_read_path(c, path, buf, size, 0), size);
	free(buf);
}

/* ---- cache_set_config ---- */

static void test_set_cache_size_evicts(void **state)
{
	struct test_env *env = start(state, 16 * CS);
	struct cache_config cfg;
	struct cache_stats st;
	char err[256];

	for (unsigned i = 0; i < 8; i++) {
		char path[16];

		snprintf(path, sizeof(path), "f%u", i);
		test_put_pattern(env->fo, path, CS, i);
		read_all(env->c, path, CS);
	}
	assert_int_equal(test_stats(env->c).chunks_cached, 8);

	cache_get_config(env->c, &cfg);
	cfg.size_max = 3 * CS;
	assert_int_equal(cache_set_config(env->c, &cfg, err, sizeof(err)), 0);
	st = test_stats(env->c);
	assert_int_equal(st.size_max, 3 * CS);
	assert_int_equal(st.chunks_cached, 3);
	assert_int_equal(st.bytes_cached, 3 * CS);
	assert_int_equal(st.evictions, 5);

	/* The three most recently read files stay. */
	fake_reset_calls(env->fo);
	read_all(env->c, "f5", CS);
	read_all(env->c, "f6", CS);
	read_all(env->c, "f7", CS);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
	read_all(env->c, "f0", CS);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 1);
	assert_true(test_stats(env->c).bytes_cached <= 3 * CS);
}

static void test_set_rejects_tiny_sizes(void **state)
{
	struct test_env *env = start(state, 16 * CS);
	struct cache_config cfg;
	char err[256] = "";

	cache_get_config(env->c, &cfg);
	cfg.size_max = CS - 1;
	assert_int_equal(cache_set_config(env->c, &cfg, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "cache_size 65535"));
	cache_get_config(env->c, &cfg);
	assert_int_equal(cfg.size_max, 16 * CS);
}

static void test_set_rejects_tiny_max_dirty(void **state)
{
	struct test_env *env = start_write_back(state);
	struct cache_config cfg;
	char err[256] = "";

	cache_get_config(env->c, &cfg);
	cfg.max_dirty = 1;
	assert_int_equal(cache_set_config(env->c, &cfg, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "max_dirty 1"));
	assert_int_equal(test_stats(env->c).max_dirty, 16 * CS);
}

static void test_set_ttl_revalidates(void **state)
{
	struct test_env *env = start(state, 16 * CS);
	struct cache_config cfg;
	char err[256];

	test_put_pattern(env->fo, "f", CS, 1);
	read_all(env->c, "f", CS);
	fake_reset_calls(env->fo);
	read_all(env->c, "f", CS);
	assert_int_equal(fake_calls(env->fo, FAKE_STAT), 0);

	cache_get_config(env->c, &cfg);
	cfg.ttl_ms = 0;
	cfg.attr_ttl_ms = 1000;
	cfg.neg_ttl_ms = 0;
	assert_int_equal(cache_set_config(env->c, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cache_attr_ttl_ms(env->c), 1000);
	assert_int_equal(cache_neg_ttl_ms(env->c), 0);
	assert_int_equal(test_stats(env->c).ttl_ms, 0);

	fake_clock_advance(1);
	read_all(env->c, "f", CS);
	assert_int_equal(fake_calls(env->fo, FAKE_STAT), 1);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
	assert_int_equal(test_stats(env->c).revalidations, 1);
}

/* Create path in write-back mode, write len bytes and close it. */
static void write_back_file(struct cache *c, const char *path, size_t len)
{
	char *data = test_pattern_new(len, 0, 7);
	struct cache_file *f;

	assert_int_equal(cache_file_create(c, path, 0644, 0, 0, &f), 0);
	assert_int_equal(cache_file_write(f, data, len, 0), len);
	assert_int_equal(cache_file_flush(f, false), 0);
	cache_file_release(f);
	free(data);
}

static void test_set_writeback_delay_moves_upload(void **state)
{
	struct test_env *env = start_write_back(state);
	struct cache_config cfg;
	char err[256];
	unsigned waited = 0;

	write_back_file(env->c, "new", 100);
	assert_int_equal(test_stats(env->c).uploads_pending, 1);

	cache_get_config(env->c, &cfg);
	cfg.writeback_delay_ms = 0;
	assert_int_equal(cache_set_config(env->c, &cfg, err, sizeof(err)), 0);
	assert_int_equal(test_stats(env->c).writeback_delay_ms, 0);
	while (test_stats(env->c).uploads_done == 0 && waited < POLL_MS) {
		usleep(10000);
		waited += 10;
	}
	assert_int_equal(test_stats(env->c).uploads_done, 1);
	assert_true(fake_exists(env->fo, "new"));
}

/* ---- cache_warm ---- */

/* The reports of one cache_warm() after its listing. */
struct warm_log {
	unsigned calls;
	struct cache_warm_progress first, last;
};

static int record_progress(void *arg, const struct cache_warm_progress *p)
{
	struct warm_log *log = arg;

	if (p->listing)
		return 0;
	if (log->calls++ == 0)
		log->first = *p;
	log->last = *p;
	return 0;
}

/* Warm path with threads threads, recording the reports in log. */
static int warm(struct cache *c, const char *path, unsigned threads,
		struct warm_log *log, char *err, size_t errlen)
{
	const char *paths[] = { path };

	memset(log, 0, sizeof(*log));
	return cache_warm(c, paths, 1, threads, record_progress, log, err,
			  errlen);
}

static void test_warm_tree_fills_cache(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	struct warm_log log;
	struct cache_stats st;
	char err[256];

	assert_int_equal(fake_put_dir(env->fo, "t"), 0);
	assert_int_equal(fake_put_dir(env->fo, "t/sub"), 0);
	test_put_pattern(env->fo, "t/a", 3 * CS + 1, 1);
	test_put_pattern(env->fo, "t/empty", 0, 2);
	test_put_pattern(env->fo, "t/sub/b", CS, 3);
	test_put_pattern(env->fo, "outside", CS, 4);
	assert_int_equal(warm(env->c, "t", 4, &log, err, sizeof(err)), 0);
	assert_true(log.calls >= 2);
	assert_int_equal(log.first.files_total, 3);
	assert_int_equal(log.first.bytes_total, 4 * CS + 1);
	assert_int_equal(log.first.files_done, 0);
	assert_int_equal(log.last.files_done, 3);
	assert_int_equal(log.last.bytes_done, 4 * CS + 1);
	assert_int_equal(log.last.files_skipped, 0);
	assert_int_equal(log.last.files_failed, 0);

	st = test_stats(env->c);
	assert_int_equal(st.bytes_cached, 4 * CS + 1);
	assert_int_equal(st.chunks_cached, 5);
	assert_int_equal(st.hits, 0);
	assert_int_equal(st.misses, 5);
	assert_int_equal(st.bytes_from_origin, 4 * CS + 1);

	fake_reset_calls(env->fo);
	read_all(env->c, "t/a", 3 * CS + 1);
	read_all(env->c, "t/sub/b", CS);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
}

static void test_warm_streams_runs(void **state)
{
	struct test_env *env = test_env_create(state, TEMPLATE, CS, 64 * CS,
					       60000);
	struct warm_log log;
	char err[256];

	fake_enable_stream(env->fo);
	assert_int_equal(test_env_open(env), 0);
	test_put_pattern(env->fo, "big", 5 * CS, 1);
	assert_int_equal(warm(env->c, "big", 4, &log, err, sizeof(err)), 0);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 1);
	assert_int_equal(test_stats(env->c).chunks_cached, 5);

	/* Warm again: nothing to fetch, and no hit counted. */
	fake_reset_calls(env->fo);
	assert_int_equal(warm(env->c, "", 4, &log, err, sizeof(err)), 0);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
	assert_int_equal(test_stats(env->c).hits, 0);
	assert_int_equal(log.last.files_done, 1);
}

static void test_warm_skips_what_does_not_fit(void **state)
{
	struct test_env *env = start(state, 4 * CS);
	struct warm_log log;
	char err[256];

	assert_int_equal(fake_put_dir(env->fo, "t"), 0);
	test_put_pattern(env->fo, "t/a", 3 * CS, 1);
	test_put_pattern(env->fo, "t/b", 2 * CS, 2);
	test_put_pattern(env->fo, "t/c", CS, 3);
	assert_int_equal(warm(env->c, "t", 4, &log, err, sizeof(err)), -ENOSPC);
	assert_int_equal(log.first.files_total, 2);
	assert_int_equal(log.first.bytes_total, 4 * CS);
	assert_int_equal(log.last.files_skipped, 1);
	assert_int_equal(log.last.bytes_skipped, 2 * CS);
	assert_int_equal(log.last.files_done, 2);
	assert_int_equal(test_stats(env->c).bytes_cached, 4 * CS);
	fake_reset_calls(env->fo);
	read_all(env->c, "t/a", 3 * CS);
	read_all(env->c, "t/c", CS);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
}

static void test_warm_missing_path(void **state)
{
	struct test_env *env = start(state, 16 * CS);
	struct warm_log log;
	char err[256];

	assert_int_equal(warm(env->c, "nope", 4, &log, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nope"));
	assert_int_equal(log.calls, 0);
}

static void test_warm_reports_failure(void **state)
{
	struct test_env *env = start(state, 16 * CS);
	struct warm_log log;
	char err[256];

	test_put_pattern(env->fo, "bad", CS, 1);
	test_put_pattern(env->fo, "good", CS, 2);
	/* One thread fetches the files in path order: "bad" first. */
	fake_fail_next(env->fo, FAKE_READ, 1, EIO);
	assert_int_equal(warm(env->c, "", 1, &log, err, sizeof(err)), -EIO);
	assert_int_equal(log.last.files_failed, 1);
	assert_int_equal(log.last.files_done, 2);
	assert_non_null(strstr(log.last.error, "/bad: "));
	assert_true(fake_exists(env->fo, "good"));
	fake_reset_calls(env->fo);
	read_all(env->c, "good", CS);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
}

static int cancel_at_once(void *arg, const struct cache_warm_progress *p)
{
	(*(unsigned *)arg)++;
	return p->listing ? 0 : 1;
}

static void test_warm_cancelled_by_report(void **state)
{
	struct test_env *env = start(state, 16 * CS);
	const char *paths[] = { "" };
	unsigned reports = 0;
	char err[256];

	test_put_pattern(env->fo, "a", CS, 1);
	test_put_pattern(env->fo, "b", CS, 2);
	assert_int_equal(cache_warm(env->c, paths, 1, 4, cancel_at_once,
				    &reports, err, sizeof(err)), -ECANCELED);
	/* The report of the set, and the last one. */
	assert_int_equal(reports, 2);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
	assert_int_equal(test_stats(env->c).bytes_cached, 0);
}

/* ---- cache_forget ---- */

/* Paths that the invalidate callback received. */
static struct {
	char paths[8][64];
	unsigned count;
} notified;

static void record_invalidate(void *arg, const char *path)
{
	(void)arg;
	if (notified.count < 8)
		snprintf(notified.paths[notified.count], 64, "%s", path);
	notified.count++;
}

static int count_entry(void *arg, const char *name,
		       const struct origin_attr *attr)
{
	(void)name;
	(void)attr;
	(*(unsigned *)arg)++;
	return 0;
}

static void test_forget_file_reads_again(void **state)
{
	struct test_env *env = start(state, 16 * CS);
	struct cache_forget_result result = { 0 };
	char *want = test_pattern_new(2 * CS, 0, 1);
	struct cache_stats st;

	memset(&notified, 0, sizeof(notified));
	cache_set_invalidate(env->c, record_invalidate, NULL);
	test_put_pattern(env->fo, "f", 2 * CS, 1);
	test_put_pattern(env->fo, "other", CS, 2);
	read_all(env->c, "f", 2 * CS);
	read_all(env->c, "other", CS);
	assert_int_equal(cache_forget(env->c, "f", &result), 0);
	assert_int_equal(result.files, 1);
	assert_int_equal(result.bytes, 2 * CS);
	assert_int_equal(result.kept, 0);
	assert_int_equal(notified.count, 1);
	assert_string_equal(notified.paths[0], "f");
	st = test_stats(env->c);
	assert_int_equal(st.chunks_cached, 1);
	assert_int_equal(st.bytes_cached, CS);
	assert_int_equal(st.objects_cached, 1);

	fake_reset_calls(env->fo);
	test_assert_cache_has(env->c, "f", want, 2 * CS);
	assert_int_equal(fake_calls(env->fo, FAKE_STAT), 1);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 2);
	read_all(env->c, "other", CS);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 2);
	free(want);
}

static void test_forget_folder_and_metadata(void **state)
{
	struct test_env *env = start(state, 16 * CS);
	struct cache_forget_result result = { 0 };
	struct origin_attr attr;
	unsigned entries = 0;

	assert_int_equal(fake_put_dir(env->fo, "a"), 0);
	assert_int_equal(fake_put_dir(env->fo, "a/sub"), 0);
	assert_int_equal(fake_put_dir(env->fo, "ab"), 0);
	test_put_pattern(env->fo, "a/x", CS, 1);
	test_put_pattern(env->fo, "a/sub/y", CS, 2);
	test_put_pattern(env->fo, "ab/z", CS, 3);
	assert_int_equal(cache_readdir(env->c, "a", count_entry, &entries), 0);
	assert_int_equal(entries, 2);
	read_all(env->c, "a/x", CS);
	read_all(env->c, "a/sub/y", CS);
	read_all(env->c, "ab/z", CS);

	assert_int_equal(cache_forget(env->c, "a", &result), 0);
	assert_int_equal(result.files, 2);
	assert_int_equal(result.bytes, 2 * CS);
	assert_int_equal(test_stats(env->c).chunks_cached, 1);

	fake_reset_calls(env->fo);
	read_all(env->c, "ab/z", CS);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
	assert_int_equal(cache_getattr(env->c, "a/x", &attr), 0);
	assert_int_equal(fake_calls(env->fo, FAKE_STAT), 1);
	entries = 0;
	assert_int_equal(cache_readdir(env->c, "a", count_entry, &entries), 0);
	assert_int_equal(fake_calls(env->fo, FAKE_LIST), 1);
	assert_int_equal(entries, 2);
}

static void test_forget_everything(void **state)
{
	struct test_env *env = start(state, 16 * CS);
	struct cache_forget_result result = { 0 };
	struct cache_stats st;

	test_put_pattern(env->fo, "one", CS, 1);
	test_put_pattern(env->fo, "two", CS + 10, 2);
	read_all(env->c, "one", CS);
	read_all(env->c, "two", CS + 10);
	assert_int_equal(cache_forget(env->c, "", &result), 0);
	assert_int_equal(result.files, 2);
	assert_int_equal(result.bytes, 2 * CS + 10);
	st = test_stats(env->c);
	assert_int_equal(st.chunks_cached, 0);
	assert_int_equal(st.bytes_cached, 0);
	assert_int_equal(st.objects_cached, 0);
}

static void test_forget_keeps_open_handle(void **state)
{
	struct test_env *env = start(state, 16 * CS);
	struct cache_forget_result result = { 0 };
	char *want = test_pattern_new(CS, 0, 4);
	char *buf = malloc(CS);
	struct cache_file *f;
	bool changed;

	assert_non_null(buf);
	test_put_pattern(env->fo, "f", CS, 4);
	assert_int_equal(cache_file_open(env->c, "f", O_RDONLY, &f, &changed),
			 0);
	assert_int_equal(cache_file_read(f, buf, CS, 0), CS);
	assert_int_equal(cache_forget(env->c, "f", &result), 0);
	assert_int_equal(result.files, 1);
	fake_reset_calls(env->fo);
	memset(buf, 0, CS);
	assert_int_equal(cache_file_read(f, buf, CS, 0), CS);
	assert_memory_equal(buf, want, CS);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
	cache_file_release(f);
	assert_int_equal(test_stats(env->c).bytes_cached, 0);
	free(buf);
	free(want);
}

static void test_forget_keeps_pending_upload(void **state)
{
	struct test_env *env = start_write_back(state);
	struct cache_forget_result result = { 0 };
	char *want = test_pattern_new(CS + 5, 0, 7);
	struct cache_stats st;

	assert_int_equal(fake_put_dir(env->fo, "d"), 0);
	test_put_pattern(env->fo, "d/clean", CS, 1);
	read_all(env->c, "d/clean", CS);
	write_back_file(env->c, "d/new", CS + 5);

	assert_int_equal(cache_forget(env->c, "d", &result), 0);
	assert_int_equal(result.files, 1);
	assert_int_equal(result.bytes, CS);
	assert_int_equal(result.kept, 1);
	st = test_stats(env->c);
	assert_int_equal(st.uploads_pending, 1);
	assert_int_equal(st.dirty_bytes, CS + 5);
	fake_reset_calls(env->fo);
	test_assert_cache_has(env->c, "d/new", want, CS + 5);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
	assert_false(fake_exists(env->fo, "d/new"));
	free(want);
}

/* ---- cache_usage ---- */

static void test_usage_counts_cached_bytes(void **state)
{
	struct test_env *env = start(state, 16 * CS);
	struct cache_usage u;
	char buf[100];

	assert_int_equal(fake_put_dir(env->fo, "d"), 0);
	assert_int_equal(fake_put_dir(env->fo, "d/e"), 0);
	test_put_pattern(env->fo, "d/one", 2 * CS + 7, 1);
	test_put_pattern(env->fo, "d/e/two", 3 * CS, 2);
	test_put_pattern(env->fo, "dx", CS, 3);
	test_put_pattern(env->fo, "top", CS, 4);
	read_all(env->c, "d/one", 2 * CS + 7);
	/* One chunk of the three. */
	assert_int_equal(test_read_path(env->c, "d/e/two", buf, sizeof(buf),
					CS), sizeof(buf));
	read_all(env->c, "dx", CS);

	cache_usage(env->c, "d", &u);
	assert_int_equal(u.files, 2);
	assert_int_equal(u.chunks, 4);
	assert_int_equal(u.bytes, 3 * CS + 7);
	assert_int_equal(u.dirty_files, 0);
	assert_int_equal(u.dirty_bytes, 0);

	cache_usage(env->c, "d/one", &u);
	assert_int_equal(u.files, 1);
	assert_int_equal(u.chunks, 3);
	assert_int_equal(u.bytes, 2 * CS + 7);

	cache_usage(env->c, "", &u);
	assert_int_equal(u.files, 3);
	assert_int_equal(u.chunks, 5);
	assert_int_equal(u.bytes, 4 * CS + 7);
	assert_int_equal(u.bytes, test_stats(env->c).bytes_cached);

	cache_usage(env->c, "top", &u);
	assert_int_equal(u.files, 0);
	assert_int_equal(u.bytes, 0);
}

static void test_usage_counts_pending_files(void **state)
{
	struct test_env *env = start_write_back(state);
	struct cache_usage u;

	assert_int_equal(fake_put_dir(env->fo, "d"), 0);
	write_back_file(env->c, "d/new", CS + 5);
	write_back_file(env->c, "other", 10);
	cache_usage(env->c, "d", &u);
	assert_int_equal(u.dirty_files, 1);
	assert_int_equal(u.dirty_bytes, CS + 5);
	cache_usage(env->c, "", &u);
	assert_int_equal(u.dirty_files, 2);
	assert_int_equal(u.dirty_bytes, CS + 15);
}

/* ---- cache_list_uploads ---- */

static void test_uploads_list_states(void **state)
{
	struct test_env *env = start_write_back(state);
	struct cache_upload *list;
	struct cache_file *open_file;
	size_t count;

	write_back_file(env->c, "first", 100);
	fake_clock_advance(5000);
	write_back_file(env->c, "second", CS + 1);
	/* Open "first" for writing again: it waits for the close. */
	assert_int_equal(cache_file_open(env->c, "first", O_RDWR, &open_file,
					 &(bool){ false }), 0);
	fake_clock_advance(1000);

	assert_int_equal(cache_list_uploads(env->c, &list, &count), 0);
	assert_int_equal(count, 2);
	assert_string_equal(list[0].path, "first");
	assert_int_equal(list[0].size, 100);
	assert_int_equal(list[0].age_ms, 6000);
	assert_int_equal(list[0].state, CACHE_UPLOAD_OPEN);
	assert_string_equal(list[1].path, "second");
	assert_int_equal(list[1].size, CS + 1);
	assert_int_equal(list[1].age_ms, 1000);
	assert_int_equal(list[1].attempts, 0);
	assert_int_equal(list[1].last_error, 0);
	assert_int_equal(list[1].state, CACHE_UPLOAD_QUIET);
	assert_int_equal(list[1].wait_ms, 3600 * 1000 - 1000);
	cache_free_uploads(list, count);
	cache_file_release(open_file);
}

static void test_uploads_list_failure(void **state)
{
	struct test_env *env = start_write_back(state);
	struct cache_upload *list;
	size_t count;

	write_back_file(env->c, "denied", 10);
	fake_fail_next(env->fo, FAKE_WRITE, 1, EACCES);
	assert_int_equal(cache_flush(env->c, "", NULL, NULL), -EIO);
	assert_int_equal(cache_list_uploads(env->c, &list, &count), 0);
	assert_int_equal(count, 1);
	assert_string_equal(list[0].path, "denied");
	assert_int_equal(list[0].attempts, 1);
	assert_int_equal(list[0].last_error, -EACCES);
	assert_string_equal(list[0].last_detail, "injected failure 13");
	assert_int_equal(list[0].state, CACHE_UPLOAD_RETRY);
	/* The first retry comes after 1 s, but the quiet time is longer. */
	assert_int_equal(list[0].wait_ms, 3600 * 1000);
	cache_free_uploads(list, count);
}

static void test_uploads_list_empty(void **state)
{
	struct test_env *env = start(state, 16 * CS);
	struct cache_upload *list;
	size_t count = 1;

	assert_int_equal(cache_list_uploads(env->c, &list, &count), 0);
	assert_int_equal(count, 0);
	cache_free_uploads(list, count);
}

/* ---- options_parse_runtime ---- */

static void test_runtime_options_apply(void **state)
{
	struct cache_config cfg = test_config("/tmp", CS, 16 * CS, 60000);
	int level = LOG_INFO;
	char err[512];

	(void)state;
	cfg.max_dirty = 16 * CS;
	assert_int_equal(options_parse_runtime("ttl=0,attr_ttl=2s,neg_ttl=0,"
					       "dir_ttl=1m,cache_size=1M,"
					       "min_free=10%,max_dirty=2M,"
					       "writeback_delay=500ms,"
					       "log_level=debug",
					       &cfg, &level, err,
					       sizeof(err)), 0);
	assert_int_equal(cfg.ttl_ms, 0);
	assert_int_equal(cfg.attr_ttl_ms, 2000);
	assert_int_equal(cfg.neg_ttl_ms, 0);
	assert_int_equal(cfg.dir_ttl_ms, 60000);
	assert_int_equal(cfg.size_max, 1024 * 1024);
	assert_int_equal(cfg.min_free_pct, 10);
	assert_int_equal(cfg.min_free, 0);
	assert_int_equal(cfg.max_dirty, 2 * 1024 * 1024);
	assert_int_equal(cfg.writeback_delay_ms, 500);
	assert_int_equal(level, LOG_DEBUG);
	assert_int_equal(cfg.chunk_size, CS);

	assert_int_equal(options_parse_runtime("min_free=1G", &cfg, &level,
					       err, sizeof(err)), 0);
	assert_int_equal(cfg.min_free, 1024 * 1024 * 1024);
	assert_int_equal(cfg.min_free_pct, 0);
}

/* Check that list is rejected with a message containing fragment, and
 * that cfg stays as it was. */
static void assert_runtime_rejected(const char *list, const char *fragment)
{
	struct cache_config cfg = test_config("/tmp", CS, 16 * CS, 60000);
	struct cache_config before;
	int level = LOG_INFO;
	char err[512] = "";

	cfg.max_dirty = 16 * CS;
	before = cfg;
	assert_int_equal(options_parse_runtime(list, &cfg, &level, err,
					       sizeof(err)), -1);
	if (!strstr(err, fragment))
		fail_msg("error '%s' for '%s' lacks '%s'", err, list,
			 fragment);
	assert_memory_equal(&cfg, &before, sizeof(cfg));
	assert_int_equal(level, LOG_INFO);
}

static void test_runtime_options_rejected(void **state)
{
	(void)state;
	assert_runtime_rejected("", "missing OPTION=VALUE");
	assert_runtime_rejected("chunk_size=1M",
				"'chunk_size' cannot change while mounted");
	assert_runtime_rejected("allow_other",
				"'allow_other' cannot change while mounted");
	assert_runtime_rejected("nosuch=1", "unknown option 'nosuch'");
	assert_runtime_rejected("ttl=soon", "invalid duration 'soon' for ttl");
	assert_runtime_rejected("ttl", "missing value for ttl");
	assert_runtime_rejected("cache_size=1k",
				"cache_size 1024 is smaller than chunk_size");
	assert_runtime_rejected("ttl=1s,log_level=loud",
				"invalid log_level 'loud'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_set_cache_size_evicts,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_set_rejects_tiny_sizes,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_set_rejects_tiny_max_dirty,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_set_ttl_revalidates,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_set_writeback_delay_moves_upload,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_warm_tree_fills_cache,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_warm_streams_runs,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_warm_skips_what_does_not_fit,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_warm_missing_path,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_warm_reports_failure,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_warm_cancelled_by_report,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_forget_file_reads_again,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_forget_folder_and_metadata,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_forget_everything,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_forget_keeps_open_handle,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_forget_keeps_pending_upload,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_usage_counts_cached_bytes,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_usage_counts_pending_files,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_uploads_list_states,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_uploads_list_failure,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_uploads_list_empty,
					  test_env_teardown),
		cmocka_unit_test(test_runtime_options_apply),
		cmocka_unit_test(test_runtime_options_rejected),
	};

	log_max_level = LOG_ERR;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
