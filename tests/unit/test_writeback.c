/* test_writeback.c - the write-back queue: local commits, quiet time,
 * retries, back-pressure, flush, unlink, rename and journal replay, over
 * a fake origin and the fake clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "fake_origin.c"
#include "internal.h"
#include "journal.h"
#include "log.h"

#define CS (64u * 1024)
/* Real time a poll waits for an upload before the test fails. */
#define POLL_MS 3000
/* Real time to wait before checking that no upload happened. */
#define QUIET_MS 200
#define PROGRESS_MAX 64

/*
 * A gate in front of the fake origin's write: while closed, every upload
 * waits in the origin, as it would on a slow link.  Tests that use it set
 * it up before opening the cache; the teardown opens it so that no
 * uploader stays blocked in cache_close().
 */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t opened;
	bool closed;
	unsigned waiting;	/* writes blocked in the gate */
} gate = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.opened = PTHREAD_COND_INITIALIZER,
};

static struct origin_ops gated_ops;

static int gated_write(struct origin *o, const char *path, int fd,
		       uint64_t size, const struct origin_attr *meta,
		       struct origin_attr *result)
{
	pthread_mutex_lock(&gate.lock);
	gate.waiting++;
	while (gate.closed)
		pthread_cond_wait(&gate.opened, &gate.lock);
	gate.waiting--;
	pthread_mutex_unlock(&gate.lock);
	return fake_write(o, path, fd, size, meta, result);
}

static void gate_set(bool closed)
{
	pthread_mutex_lock(&gate.lock);
	gate.closed = closed;
	pthread_cond_broadcast(&gate.opened);
	pthread_mutex_unlock(&gate.lock);
}

static unsigned gate_waiting(void)
{
	unsigned n;

	pthread_mutex_lock(&gate.lock);
	n = gate.waiting;
	pthread_mutex_unlock(&gate.lock);
	return n;
}

/* Route the origin's writes of env through the gate. */
static void use_gate(struct test_env *env)
{
	gated_ops = fake_ops;
	gated_ops.write = gated_write;
	env->fo->base.ops = &gated_ops;
}

/* Reopen the cache with uploads held in the closed gate: replayed files
 * have no quiet time, so they would otherwise go at once. */
static void reopen_held(struct test_env *env)
{
	use_gate(env);
	gate_set(true);
	assert_int_equal(test_env_open(env), 0);
}

/* A thread that calls cache_file_write() or reads a path once, for the
 * tests that check what waits.  The teardown joins it when a failed check
 * left it running. */
struct worker {
	pthread_t thread;
	bool started;
	struct cache_file *f;	/* write: the handle */
	struct cache *c;	/* read, chmod: the cache and the path */
	const char *path;
	mode_t mode;		/* chmod: the new mode */
	void *buf;
	size_t len;
	_Atomic bool done;
	ssize_t result;
};

static struct worker worker;

static void *write_main(void *arg)
{
	struct worker *w = arg;

	w->result = cache_file_write(w->f, w->buf, w->len, 0);
	atomic_store(&w->done, true);
	return NULL;
}

static void *read_main(void *arg)
{
	struct worker *w = arg;

	w->result = test_read_path(w->c, w->path, w->buf, w->len, 0);
	atomic_store(&w->done, true);
	return NULL;
}

static void *chmod_main(void *arg)
{
	struct worker *w = arg;
	struct origin_attr attr = { .mode = w->mode };

	w->result = cache_setattr(w->c, w->path, &attr, ORIGIN_ATTR_MODE,
				  false, 0);
	atomic_store(&w->done, true);
	return NULL;
}

static void worker_start(void *(*fn)(void *))
{
	assert_int_equal(pthread_create(&worker.thread, NULL, fn, &worker),
			 0);
	worker.started = true;
}

static void worker_join(void)
{
	pthread_join(worker.thread, NULL);
	worker.started = false;
}

static struct test_env *start(void **state, uint64_t delay_ms,
			      uint64_t max_dirty)
{
	struct test_env *env = test_env_create(state, "wb-tests-XXXXXX", CS,
					       64 * CS, 60000);

	env->cfg.write_mode = WRITE_BACK;
	env->cfg.writeback_delay_ms = delay_ms;
	env->cfg.max_dirty = max_dirty;
	env->cfg.fsync_local = false;
	return env;
}

static struct test_env *start_open(void **state, uint64_t delay_ms)
{
	struct test_env *env = start(state, delay_ms, 64 * CS);

	assert_int_equal(test_env_open(env), 0);
	return env;
}

static int teardown(void **state)
{
	gate_set(false);
	if (worker.started)
		pthread_join(worker.thread, NULL);
	memset(&worker, 0, sizeof(worker));
	test_env_free(*state);
	return 0;
}

static uint64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	usleep(ms * 1000u);
}

/* Make the uploaders check the queue now: they sleep in real time up to
 * the fake time left, which the fake clock does not shorten. */
static void wake_uploaders(struct cache *c)
{
	pthread_mutex_lock(&c->lock);
	pthread_cond_broadcast(&c->wb_wake);
	pthread_mutex_unlock(&c->lock);
}

static void advance(struct cache *c, uint64_t ms)
{
	fake_clock_advance(ms);
	wake_uploaders(c);
}

/* Wait up to POLL_MS real milliseconds for uploads_done to reach n. */
static bool wait_uploads_done(struct cache *c, uint64_t n)
{
	uint64_t deadline = real_ms() + POLL_MS;

	while (test_stats(c).uploads_done < n) {
		if (real_ms() > deadline)
			return false;
		sleep_ms(5);
	}
	return true;
}

/* Wait up to POLL_MS real milliseconds for upload_retries to reach n. */
static bool wait_retries(struct cache *c, uint64_t n)
{
	uint64_t deadline = real_ms() + POLL_MS;

	while (test_stats(c).upload_retries < n) {
		if (real_ms() > deadline)
			return false;
		sleep_ms(5);
	}
	return true;
}

/* Create path, write len bytes of data, commit and release.  Returns
 * what the commit returned. */
static int commit_new(struct cache *c, const char *path, const void *data,
		      size_t len)
{
	struct cache_file *f;
	int ret;

	assert_int_equal(cache_file_create(c, path, 0644, getuid(),
					   getgid(), &f), 0);
	assert_int_equal(cache_file_write(f, data, len, 0), len);
	ret = cache_file_commit(f);
	cache_file_release(f);
	return ret;
}

/* Replace the content of an existing path and commit it. */
static int commit_replace(struct cache *c, const char *path,
			  const void *data, size_t len)
{
	struct cache_file *f;
	bool changed;
	int ret;

	assert_int_equal(cache_file_open(c, path, O_WRONLY | O_TRUNC, &f,
					 &changed), 0);
	assert_int_equal(cache_file_write(f, data, len, 0), len);
	ret = cache_file_commit(f);
	cache_file_release(f);
	return ret;
}

static char *pattern(size_t size, unsigned seed)
{
	char *buf = malloc(size ? size : 1);

	assert_non_null(buf);
	test_fill_pattern(buf, size, 0, seed);
	return buf;
}

/* Entries in the dirty/ folder of the cache, "." and ".." excluded. */
static unsigned dirty_files(struct cache *c)
{
	char path[PATH_MAX];
	struct dirent *e;
	unsigned n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/dirty", cache_path(c));
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_writeback_close_is_local(void **state)
{
	struct test_env *env = start_open(state, 60000);
	size_t size = 2 * CS + 100;
	char *want = pattern(size, 1);
	struct origin_attr attr;
	struct cache_stats st;

	assert_int_equal(commit_new(env->c, "f", want, size), 0);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 0);
	assert_false(fake_exists(env->fo, "f"));

	assert_int_equal(cache_getattr(env->c, "f", &attr), 0);
	assert_true(S_ISREG(attr.mode));
	assert_int_equal(attr.size, size);
	test_assert_cache_has(env->c, "f", want, size);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);

	st = test_stats(env->c);
	assert_int_equal(st.uploads_pending, 1);
	assert_int_equal(st.dirty_bytes, size);
	assert_int_equal(st.uploads_done, 0);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 0);
	free(want);
}

static void test_writeback_delay_respected(void **state)
{
	struct test_env *env = start_open(state, 5000);
	struct cache_stats st;

	assert_int_equal(commit_new(env->c, "d", "delayed", 7), 0);
	sleep_ms(QUIET_MS);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 0);

	/* One millisecond short of the quiet time: still nothing. */
	advance(env->c, 4999);
	sleep_ms(QUIET_MS);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 0);

	advance(env->c, 2);
	assert_true(wait_uploads_done(env->c, 1));
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 1);
	test_assert_origin_has(env->fo, "d", "delayed", 7);
	st = test_stats(env->c);
	assert_int_equal(st.uploads_done, 1);
	assert_int_equal(st.dirty_bytes, 0);
	assert_int_equal(st.uploads_pending, 0);
	assert_int_equal(st.uploads_failed, 0);
	assert_int_equal(dirty_files(env->c), 0);
}

static void test_writeback_rewrite_uploaded_once(void **state)
{
	struct test_env *env = start_open(state, 5000);
	char text[32];
	int len = 0;

	for (int i = 0; i < 10; i++) {
		/* The lengths differ, so dirty_bytes shows the last one. */
		len = snprintf(text, sizeof(text), "version %d %.*s", i, i,
			       "xxxxxxxxxx");
		if (i == 0)
			assert_int_equal(commit_new(env->c, "r", text, len),
					 0);
		else
			assert_int_equal(commit_replace(env->c, "r", text,
							len), 0);
		assert_int_equal(test_stats(env->c).dirty_bytes, len);
		assert_int_equal(test_stats(env->c).uploads_pending, 1);
		advance(env->c, 1000);
	}
	sleep_ms(QUIET_MS);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 0);

	advance(env->c, 5001);
	assert_true(wait_uploads_done(env->c, 1));
	sleep_ms(QUIET_MS);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 1);
	test_assert_origin_has(env->fo, "r", text, len);
	assert_int_equal(test_stats(env->c).uploads_pending, 0);
	assert_int_equal(test_stats(env->c).dirty_bytes, 0);
}

static void test_writeback_failure_retried_with_backoff(void **state)
{
	struct test_env *env = start_open(state, 0);
	size_t size = CS + 10;
	char *want = pattern(size, 2);
	struct cache_stats st;

	fake_fail_next(env->fo, FAKE_WRITE, 2, EIO);
	assert_int_equal(commit_new(env->c, "b", want, size), 0);

	/* First attempt, at once (no quiet time), fails. */
	assert_true(wait_retries(env->c, 1));
	st = test_stats(env->c);
	assert_int_equal(st.uploads_failed, 1);
	assert_int_equal(st.uploads_pending, 1);
	assert_int_equal(st.dirty_bytes, size);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 1);

	/* The first backoff is 1 s of engine time. */
	advance(env->c, 999);
	sleep_ms(QUIET_MS);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 1);
	advance(env->c, 2);
	assert_true(wait_retries(env->c, 2));
	st = test_stats(env->c);
	assert_int_equal(st.upload_retries, 2);
	assert_int_equal(st.uploads_failed, 1);
	assert_int_equal(st.uploads_done, 0);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 2);

	/* The second backoff is 2 s. */
	advance(env->c, 1500);
	sleep_ms(QUIET_MS);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 2);
	advance(env->c, 501);
	assert_true(wait_uploads_done(env->c, 1));
	st = test_stats(env->c);
	assert_int_equal(st.upload_retries, 2);
	assert_int_equal(st.uploads_failed, 0);
	assert_int_equal(st.uploads_pending, 0);
	assert_int_equal(st.dirty_bytes, 0);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 3);
	test_assert_origin_has(env->fo, "b", want, size);
	test_assert_cache_has(env->c, "b", want, size);
	free(want);
}

/* The last line logged about a failed upload. */
static char upload_line[512];

static void capture_upload_line(void *arg, int level, const char *line)
{
	(void)arg;
	(void)level;
	if (strstr(line, "cannot upload"))
		snprintf(upload_line, sizeof(upload_line), "%s", line);
}

/*
 * A failed upload names when it is tried again: after the backoff, or
 * after writeback_delay of quiet when that ends later, as for a flush
 * that failed right after the file was closed.
 */
static void test_writeback_retry_time_logged(void **state)
{
	struct test_env *env = start_open(state, 3600 * 1000);
	int saved_level = log_max_level;

	/* Past the rate limit's window of the failures logged before. */
	fake_clock_advance(24 * 3600 * 1000);
	upload_line[0] = '\0';
	log_max_level = LOG_WARNING;
	log_set_output(capture_upload_line, NULL);
	fake_fail_next(env->fo, FAKE_WRITE, 1, EIO);
	assert_int_equal(commit_new(env->c, "p", "precious", 8), 0);
	assert_int_equal(cache_flush(env->c, "", NULL, NULL), -EIO);
	log_set_output(NULL, NULL);
	log_max_level = saved_level;
	assert_non_null(strstr(upload_line, "(attempt 1)"));
	assert_non_null(strstr(upload_line, "retried in 3600 s"));
	assert_int_equal(test_stats(env->c).uploads_pending, 1);
}

static void test_writeback_permanent_failure_kept(void **state)
{
	struct test_env *env = start_open(state, 0);
	struct cache_stats st;

	fake_fail_next(env->fo, FAKE_WRITE, 1000, EACCES);
	assert_int_equal(commit_new(env->c, "p", "precious", 8), 0);
	assert_true(wait_retries(env->c, 1));
	/* Several backoff periods later, still kept. */
	for (int i = 0; i < 3; i++) {
		advance(env->c, 10 * 60 * 1000);
		sleep_ms(50);
	}
	st = test_stats(env->c);
	assert_int_equal(st.uploads_pending, 1);
	assert_int_equal(st.uploads_failed, 1);
	assert_int_equal(st.dirty_bytes, 8);
	assert_int_equal(st.uploads_done, 0);
	test_assert_cache_has(env->c, "p", "precious", 8);
	assert_false(fake_exists(env->fo, "p"));

	assert_int_equal(cache_flush(env->c, "", NULL, NULL), -EIO);
	assert_int_equal(test_stats(env->c).uploads_pending, 1);
	test_assert_cache_has(env->c, "p", "precious", 8);

	fake_fail_next(env->fo, FAKE_WRITE, 0, 0);
	assert_int_equal(cache_flush(env->c, "", NULL, NULL), 0);
	test_assert_origin_has(env->fo, "p", "precious", 8);
	st = test_stats(env->c);
	assert_int_equal(st.uploads_pending, 0);
	assert_int_equal(st.uploads_failed, 0);
	assert_int_equal(st.uploads_done, 1);
	assert_int_equal(st.dirty_bytes, 0);
}

/*
 * Three files of one chunk each, written while all three are open and
 * committed together, pass max_dirty (two chunks) by one write.  A write
 * of a fourth file must then wait until uploads make room.
 */
static void test_writeback_backpressure_waits(void **state)
{
	static const char *const names[] = { "f0", "f1", "f2" };
	struct test_env *env = start(state, 60000, 2 * CS);
	uint64_t max_seen = 0, deadline;
	struct cache_file *f[3], *g;
	char *data[3], *more = pattern(CS, 9);

	use_gate(env);
	gate_set(true);
	assert_int_equal(test_env_open(env), 0);

	for (int i = 0; i < 3; i++) {
		data[i] = pattern(CS, 3 + i);
		assert_int_equal(cache_file_create(env->c, names[i], 0644,
						   getuid(), getgid(), &f[i]),
				 0);
		assert_int_equal(cache_file_write(f[i], data[i], CS, 0), CS);
	}
	for (int i = 0; i < 3; i++) {
		assert_int_equal(cache_file_commit(f[i]), 0);
		cache_file_release(f[i]);
	}
	assert_int_equal(test_stats(env->c).dirty_bytes, 3 * CS);
	assert_int_equal(test_stats(env->c).uploads_pending, 3);

	assert_int_equal(cache_file_create(env->c, "g", 0644, getuid(),
					   getgid(), &g), 0);
	worker.f = g;
	worker.buf = more;
	worker.len = CS;
	worker_start(write_main);

	/* The waiting writer starts the uploads without the quiet time;
	 * they stay in the closed gate. */
	deadline = real_ms() + 300;
	while (real_ms() < deadline) {
		uint64_t dirty = test_stats(env->c).dirty_bytes;

		if (dirty > max_seen)
			max_seen = dirty;
		sleep_ms(5);
	}
	assert_false(atomic_load(&worker.done));
	assert_true(gate_waiting() > 0);
	assert_int_equal(test_stats(env->c).uploads_done, 0);

	gate_set(false);
	deadline = real_ms() + POLL_MS;
	while (!atomic_load(&worker.done) && real_ms() < deadline) {
		uint64_t dirty = test_stats(env->c).dirty_bytes;

		if (dirty > max_seen)
			max_seen = dirty;
		sleep_ms(1);
	}
	assert_true(atomic_load(&worker.done));
	worker_join();
	assert_int_equal(worker.result, CS);
	assert_true(test_stats(env->c).uploads_done >= 2);
	assert_true(max_seen <= 2 * CS + CS);

	assert_int_equal(cache_file_commit(g), 0);
	cache_file_release(g);
	assert_true(test_stats(env->c).dirty_bytes <= 2 * CS + CS);
	assert_int_equal(cache_flush(env->c, "", NULL, NULL), 0);
	for (int i = 0; i < 3; i++) {
		test_assert_origin_has(env->fo, names[i], data[i], CS);
		free(data[i]);
	}
	test_assert_origin_has(env->fo, "g", more, CS);
	assert_int_equal(test_stats(env->c).dirty_bytes, 0);
	free(more);
}

struct progress {
	unsigned calls;
	uint64_t files_left[PROGRESS_MAX];
	uint64_t bytes_total;
};

static void record_progress(void *arg, uint64_t files_left,
			    uint64_t bytes_left, uint64_t bytes_total)
{
	struct progress *p = arg;

	if (p->calls < PROGRESS_MAX)
		p->files_left[p->calls] = files_left;
	p->calls++;
	p->bytes_total = bytes_total;
}

static void test_writeback_flush_subtree(void **state)
{
	struct test_env *env = start(state, 60000, 64 * CS);
	struct progress p = { 0 };
	unsigned last;

	assert_int_equal(fake_put_dir(env->fo, "a"), 0);
	assert_int_equal(fake_put_dir(env->fo, "b"), 0);
	assert_int_equal(test_env_open(env), 0);
	assert_int_equal(commit_new(env->c, "a/x", "xx", 2), 0);
	assert_int_equal(commit_new(env->c, "a/y", "yyy", 3), 0);
	assert_int_equal(commit_new(env->c, "b/z", "zzzz", 4), 0);
	/* A sibling whose name starts with "a" is not below "a". */
	assert_int_equal(commit_new(env->c, "ab", "ab", 2), 0);

	assert_int_equal(cache_flush(env->c, "a", record_progress, &p), 0);
	test_assert_origin_has(env->fo, "a/x", "xx", 2);
	test_assert_origin_has(env->fo, "a/y", "yyy", 3);
	assert_false(fake_exists(env->fo, "b/z"));
	assert_false(fake_exists(env->fo, "ab"));
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 2);
	assert_int_equal(test_stats(env->c).uploads_pending, 2);
	assert_int_equal(test_stats(env->c).dirty_bytes, 6);

	assert_true(p.calls >= 2);
	assert_true(p.calls <= PROGRESS_MAX);
	assert_int_equal(p.files_left[0], 2);
	for (unsigned i = 1; i < p.calls; i++)
		assert_true(p.files_left[i] <= p.files_left[i - 1]);
	last = p.calls - 1;
	assert_int_equal(p.files_left[last], 0);
	assert_int_equal(p.bytes_total, 5);
}

static void test_writeback_unlink_pending_cancels(void **state)
{
	struct test_env *env = start_open(state, 60000);
	struct origin_attr attr;
	struct cache_stats st;

	assert_int_equal(commit_new(env->c, "u", "unwanted", 8), 0);
	assert_int_equal(commit_new(env->c, "k", "kept", 4), 0);
	assert_int_equal(dirty_files(env->c), 2);
	assert_int_equal(cache_unlink(env->c, "u"), 0);
	st = test_stats(env->c);
	assert_int_equal(st.uploads_pending, 1);
	assert_int_equal(st.dirty_bytes, 4);
	assert_int_equal(dirty_files(env->c), 1);
	assert_int_equal(cache_getattr(env->c, "u", &attr), -ENOENT);

	advance(env->c, 120000);
	assert_true(wait_uploads_done(env->c, 1));
	assert_int_equal(cache_flush(env->c, "", NULL, NULL), 0);
	sleep_ms(QUIET_MS);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 1);
	assert_false(fake_exists(env->fo, "u"));
	test_assert_origin_has(env->fo, "k", "kept", 4);

	test_env_close(env);
	assert_int_equal(test_env_open(env), 0);
	st = test_stats(env->c);
	assert_int_equal(st.uploads_pending, 0);
	assert_int_equal(st.dirty_bytes, 0);
	assert_int_equal(dirty_files(env->c), 0);
	assert_int_equal(cache_getattr(env->c, "u", &attr), -ENOENT);
	assert_int_equal(cache_flush(env->c, "", NULL, NULL), 0);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 1);
}

/* An unlink that the origin fails keeps the pending upload, so that the
 * origin never keeps a version older than the last closed one. */
static void test_writeback_unlink_failed_keeps_upload(void **state)
{
	struct test_env *env = start_open(state, 60000);
	struct cache_stats st;

	assert_int_equal(fake_put_file(env->fo, "f", "old", 3), 0);
	assert_int_equal(commit_new(env->c, "f", "newer", 5), 0);
	fake_fail_next(env->fo, FAKE_UNLINK, 1, EIO);
	assert_int_equal(cache_unlink(env->c, "f"), -EIO);
	st = test_stats(env->c);
	assert_int_equal(st.uploads_pending, 1);

	assert_int_equal(cache_flush(env->c, "", NULL, NULL), 0);
	test_assert_origin_has(env->fo, "f", "newer", 5);
}

/* Unlinking a file that was never uploaded must not close the journal
 * entry of a new file later committed at the same path. */
static void test_writeback_unlink_then_recreate(void **state)
{
	struct test_env *env = start_open(state, 60000);

	assert_int_equal(commit_new(env->c, "u", "first", 5), 0);
	assert_int_equal(cache_unlink(env->c, "u"), 0);
	assert_int_equal(commit_new(env->c, "u", "second", 6), 0);
	assert_int_equal(test_stats(env->c).uploads_pending, 1);
	test_assert_cache_has(env->c, "u", "second", 6);

	test_env_close(env);
	reopen_held(env);
	assert_int_equal(test_stats(env->c).uploads_pending, 1);
	gate_set(false);
	assert_int_equal(cache_flush(env->c, "", NULL, NULL), 0);
	test_assert_origin_has(env->fo, "u", "second", 6);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 1);
}

static void test_writeback_rename_pending_moves(void **state)
{
	struct test_env *env = start_open(state, 60000);
	struct origin_attr attr;

	assert_int_equal(commit_new(env->c, "old", "moved", 5), 0);
	assert_int_equal(cache_rename(env->c, "old", "new", 0, NULL), 0);
	assert_int_equal(cache_getattr(env->c, "old", &attr), -ENOENT);
	test_assert_cache_has(env->c, "new", "moved", 5);
	assert_int_equal(test_stats(env->c).uploads_pending, 1);

	assert_int_equal(cache_flush(env->c, "", NULL, NULL), 0);
	test_assert_origin_has(env->fo, "new", "moved", 5);
	assert_false(fake_exists(env->fo, "old"));
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 1);
	assert_int_equal(test_stats(env->c).uploads_pending, 0);
}

/* The journal records the new name, so a restart uploads it there. */
static void test_writeback_rename_pending_survives_reopen(void **state)
{
	struct test_env *env = start_open(state, 60000);

	assert_int_equal(commit_new(env->c, "old", "moved", 5), 0);
	assert_int_equal(cache_rename(env->c, "old", "new", 0, NULL), 0);
	test_env_close(env);

	reopen_held(env);
	assert_int_equal(test_stats(env->c).uploads_pending, 1);
	gate_set(false);
	assert_int_equal(cache_flush(env->c, "", NULL, NULL), 0);
	test_assert_origin_has(env->fo, "new", "moved", 5);
	assert_false(fake_exists(env->fo, "old"));
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 1);
}

static void test_writeback_journal_replay_after_close(void **state)
{
	static const char *const names[] = { "j0", "j1", "j2" };
	struct test_env *env = start_open(state, 60000);
	size_t sizes[] = { 10, CS, 2 * CS + 3 };
	char *data[3];
	struct cache_stats st;
	struct origin_attr attr;

	for (int i = 0; i < 3; i++) {
		data[i] = pattern(sizes[i], 20 + i);
		assert_int_equal(commit_new(env->c, names[i], data[i],
					    sizes[i]), 0);
	}
	test_env_close(env);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 0);

	/* Replayed files may be uploaded at once: keep the origin failing
	 * so that they stay pending while the test looks at them. */
	fake_fail_next(env->fo, FAKE_WRITE, 1000, EIO);
	assert_int_equal(test_env_open(env), 0);
	st = test_stats(env->c);
	assert_int_equal(st.uploads_pending, 3);
	assert_int_equal(st.dirty_bytes, sizes[0] + sizes[1] + sizes[2]);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(cache_getattr(env->c, names[i], &attr), 0);
		assert_int_equal(attr.size, sizes[i]);
		test_assert_cache_has(env->c, names[i], data[i], sizes[i]);
	}
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);

	fake_fail_next(env->fo, FAKE_WRITE, 0, 0);
	assert_int_equal(cache_flush(env->c, "", NULL, NULL), 0);
	for (int i = 0; i < 3; i++) {
		test_assert_origin_has(env->fo, names[i], data[i], sizes[i]);
		free(data[i]);
	}
	st = test_stats(env->c);
	assert_int_equal(st.uploads_pending, 0);
	assert_int_equal(st.dirty_bytes, 0);
	assert_int_equal(st.uploads_done, 3);
	assert_int_equal(dirty_files(env->c), 0);
}

static void test_writeback_fsync_origin_uploads(void **state)
{
	struct test_env *env = start_open(state, 60000);
	struct cache_file *f;

	assert_int_equal(cache_file_create(env->c, "s", 0644, getuid(),
					   getgid(), &f), 0);
	assert_int_equal(cache_file_write(f, "synced", 6, 0), 6);
	assert_int_equal(cache_file_fsync(f), 0);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 1);
	test_assert_origin_has(env->fo, "s", "synced", 6);
	assert_int_equal(test_stats(env->c).uploads_pending, 0);
	assert_int_equal(test_stats(env->c).dirty_bytes, 0);
	cache_file_release(f);

	/* Nothing new to upload after the release. */
	assert_int_equal(cache_flush(env->c, "", NULL, NULL), 0);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 1);
}

static void count_invalidation(void *arg, const char *path)
{
	(void)path;
	(*(unsigned *)arg)++;
}

/*
 * An upload that fsync makes while the file stays open for writing
 * keeps the kernel's page cache, which contains what was uploaded.
 * Dropping it would also drop the pages of WRITEs of other threads
 * still on their way to the daemon.
 */
static void test_writeback_fsync_upload_keeps_page_cache(void **state)
{
	struct test_env *env = start_open(state, 60000);
	struct cache_file *f;
	unsigned count = 0;
	char want[8] = "old";

	assert_int_equal(fake_put_file(env->fo, "f", "old", 3), 0);
	f = test_open_file(env->c, "f", O_RDWR);
	cache_set_invalidate(env->c, count_invalidation, &count);
	for (int round = 0; round < 3; round++) {
		snprintf(want, sizeof(want), "round%d", round);
		assert_int_equal(cache_file_write(f, want, 6, 0), 6);
		assert_int_equal(cache_file_fsync(f), 0);
		test_assert_origin_has(env->fo, "f", want, 6);
	}
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 3);
	assert_int_equal(count, 0);
	cache_set_invalidate(env->c, NULL, NULL);
	cache_file_release(f);
}

/*
 * A read-only handle opened before an upload that fsync makes while the
 * file stays open for writing reads the writes that follow the upload,
 * also after a rename, as every descriptor of a local file does.
 */
static void test_writeback_reader_follows_after_fsync(void **state)
{
	struct test_env *env = start_open(state, 60000);
	struct cache_file *reader, *writer;
	char buf[16] = "";

	assert_int_equal(fake_put_file(env->fo, "a", "old", 3), 0);
	reader = test_open_file(env->c, "a", O_RDONLY);
	writer = test_open_file(env->c, "a", O_RDWR);
	assert_int_equal(cache_file_write(writer, "first", 5, 0), 5);
	assert_int_equal(cache_file_fsync(writer), 0);
	test_assert_origin_has(env->fo, "a", "first", 5);
	assert_int_equal(cache_rename(env->c, "a", "c", 0, NULL), 0);
	assert_int_equal(cache_file_write(writer, "+second", 7, 5), 7);

	assert_int_equal(cache_file_read(reader, buf, sizeof(buf), 0), 12);
	assert_memory_equal(buf, "first+second", 12);
	cache_file_release(writer);
	cache_file_release(reader);
}

static void test_writeback_fsync_local_journal(void **state)
{
	struct test_env *env = start(state, 60000, 64 * CS);
	struct cache_file *f;

	env->cfg.fsync_local = true;
	assert_int_equal(test_env_open(env), 0);
	assert_int_equal(cache_file_create(env->c, "s", 0644, getuid(),
					   getgid(), &f), 0);
	assert_int_equal(cache_file_write(f, "synced", 6, 0), 6);
	assert_int_equal(cache_file_fsync(f), 0);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 0);
	assert_int_equal(test_stats(env->c).uploads_pending, 1);
	assert_int_equal(test_stats(env->c).dirty_bytes, 6);
	assert_int_equal(dirty_files(env->c), 1);
	cache_file_release(f);
	sleep_ms(QUIET_MS);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 0);

	test_env_close(env);
	reopen_held(env);
	assert_int_equal(test_stats(env->c).uploads_pending, 1);
	assert_int_equal(test_stats(env->c).dirty_bytes, 6);
	gate_set(false);
	assert_int_equal(cache_flush(env->c, "", NULL, NULL), 0);
	test_assert_origin_has(env->fo, "s", "synced", 6);
}

/* Open the cache of env with the gate closed, commit path with len bytes
 * of data, and wait until its upload is held in the gate. */
static void open_upload_held(struct test_env *env, const char *path,
			     const char *data, size_t len)
{
	uint64_t deadline;

	use_gate(env);
	gate_set(true);
	assert_int_equal(test_env_open(env), 0);
	assert_int_equal(commit_new(env->c, path, data, len), 0);
	deadline = real_ms() + POLL_MS;
	while (gate_waiting() == 0 && real_ms() < deadline)
		sleep_ms(1);
	assert_int_equal(gate_waiting(), 1);
}

/*
 * A slow upload must not stall readers of the file: the bytes being sent
 * cannot change, and write-back exists to hide the origin's latency.
 */
static void test_writeback_read_during_slow_upload(void **state)
{
	struct test_env *env = start(state, 0, 64 * CS);
	uint64_t deadline;
	char buf[16];

	open_upload_held(env, "r", "readable", 8);

	worker.c = env->c;
	worker.path = "r";
	worker.buf = buf;
	worker.len = sizeof(buf);
	worker_start(read_main);
	deadline = real_ms() + 1000;
	while (!atomic_load(&worker.done) && real_ms() < deadline)
		sleep_ms(1);
	assert_true(atomic_load(&worker.done));
	worker_join();
	assert_int_equal(worker.result, 8);
	assert_memory_equal(buf, "readable", 8);
}

/* A chmod during the upload of the same file waits for it, then changes
 * the stored object.  Recorded only in the journal, the mode would be
 * lost: the upload already sent the metadata it had at its start, and
 * its end removes the journal entry. */
static void test_writeback_chmod_during_upload(void **state)
{
	struct test_env *env = start(state, 0, 64 * CS);
	struct origin_attr attr;

	open_upload_held(env, "m", "mode", 4);

	worker.c = env->c;
	worker.path = "m";
	worker.mode = 0600;
	worker_start(chmod_main);
	sleep_ms(QUIET_MS);
	assert_false(atomic_load(&worker.done));
	gate_set(false);
	worker_join();
	assert_int_equal(worker.result, 0);
	assert_true(wait_uploads_done(env->c, 1));
	assert_int_equal(env->fo->base.ops->stat(&env->fo->base, "m", &attr),
			 0);
	assert_int_equal(attr.mode & 07777, 0600);
	assert_int_equal(attr.size, 4);
	assert_int_equal(fake_calls(env->fo, FAKE_SETATTR), 1);
}

/* A directory whose files wait for upload is not empty, although the
 * origin does not list them yet. */
static void test_writeback_rmdir_pending_child(void **state)
{
	struct test_env *env = start(state, 60000, 64 * CS);

	assert_int_equal(fake_put_dir(env->fo, "d"), 0);
	assert_int_equal(test_env_open(env), 0);
	assert_int_equal(commit_new(env->c, "d/x", "child", 5), 0);
	assert_int_equal(cache_rmdir(env->c, "d"), -ENOTEMPTY);
	assert_true(fake_exists(env->fo, "d"));
	assert_int_equal(cache_flush(env->c, "", NULL, NULL), 0);
	test_assert_origin_has(env->fo, "d/x", "child", 5);
}

/* rename(2) onto a directory that is not empty fails, also when its
 * files are only pending; else two pending files share one path. */
static void test_writeback_rename_onto_pending_dir(void **state)
{
	struct test_env *env = start(state, 60000, 64 * CS);

	assert_int_equal(fake_put_dir(env->fo, "d1"), 0);
	assert_int_equal(fake_put_dir(env->fo, "d2"), 0);
	assert_int_equal(test_env_open(env), 0);
	assert_int_equal(commit_new(env->c, "d1/x", "one", 3), 0);
	assert_int_equal(commit_new(env->c, "d2/x", "two", 3), 0);
	assert_int_equal(cache_rename(env->c, "d1", "d2", 0, NULL), -ENOTEMPTY);
	assert_true(fake_exists(env->fo, "d1"));
	test_assert_cache_has(env->c, "d1/x", "one", 3);
	test_assert_cache_has(env->c, "d2/x", "two", 3);
	assert_int_equal(cache_flush(env->c, "", NULL, NULL), 0);
	test_assert_origin_has(env->fo, "d1/x", "one", 3);
	test_assert_origin_has(env->fo, "d2/x", "two", 3);
}

static void ignore_pending(void *arg, uint64_t seq, const char *path,
			   const struct origin_attr *meta)
{
}

/*
 * A journal with two pending versions of one path (a newer PUT under a
 * new seq) replays to the newer one.  The test writes the second record
 * through the journal API: the one sequence of public calls known to
 * leave it is the rename that test_writeback_rename_onto_pending_dir
 * expects to fail.
 */
static void test_writeback_replay_duplicate_path(void **state)
{
	struct test_env *env = start_open(state, 60000);
	struct origin_attr meta = { .mode = S_IFREG | 0644 };
	char path[PATH_MAX], err[256];
	struct journal *j = NULL;
	uint64_t seq;
	int fd;

	assert_int_equal(commit_new(env->c, "x", "older", 5), 0);
	snprintf(path, sizeof(path), "%s", cache_path(env->c));
	test_env_close(env);

	assert_true(strlen(path) + 32 < sizeof(path));
	strcat(path, "/journal");
	assert_int_equal(journal_open(path, ignore_pending, NULL, &j, err,
				      sizeof(err)), 0);
	seq = journal_max_seq(j) + 1;
	path[strlen(path) - strlen("journal")] = '\0';
	snprintf(path + strlen(path), 32, "dirty/%016" PRIx64, seq);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "newer", 5), 5);
	close(fd);
	assert_int_equal(journal_put(j, seq, "x", &meta), 0);
	journal_close(j);

	/* Replayed files may be uploaded at once: hold them pending. */
	fake_fail_next(env->fo, FAKE_WRITE, 1000, EIO);
	assert_int_equal(test_env_open(env), 0);
	assert_int_equal(test_stats(env->c).uploads_pending, 1);
	assert_int_equal(test_stats(env->c).dirty_bytes, 5);
	test_assert_cache_has(env->c, "x", "newer", 5);
	fake_fail_next(env->fo, FAKE_WRITE, 0, 0);
	fake_reset_calls(env->fo);
	assert_int_equal(cache_flush(env->c, "", NULL, NULL), 0);
	test_assert_origin_has(env->fo, "x", "newer", 5);
	assert_int_equal(fake_calls(env->fo, FAKE_WRITE), 1);
	assert_int_equal(dirty_files(env->c), 0);
}

/* The path of the journal of c, which the caller frees. */
static char *journal_path(struct cache *c)
{
	char *path;

	assert_true(asprintf(&path, "%s/journal", cache_path(c)) > 0);
	return path;
}

static void test_writeback_journal_full_uploads_at_close(void **state)
{
	struct test_env *env = start_open(state, 60000);
	char *journal = journal_path(env->c);
	char *want = pattern(CS + 7, 40);
	struct cache_stats st;
	int fd, saved;

	saved = test_fill_file(journal, &fd);
	/* Not in the journal, the file would not survive a crash: the
	 * close stores it on the origin, as write-through does. */
	assert_int_equal(commit_new(env->c, "a", want, CS + 7), 0);
	test_assert_origin_has(env->fo, "a", want, CS + 7);
	st = test_stats(env->c);
	assert_int_equal(st.uploads_pending, 0);
	assert_int_equal(st.uploads_done, 1);
	assert_true(st.cache_dir_errors >= 1);
	test_unfill_file(fd, saved);
	test_assert_cache_has(env->c, "a", want, CS + 7);
	free(want);
	free(journal);
}

static void test_writeback_journal_full_origin_down(void **state)
{
	struct test_env *env = start_open(state, 60000);
	char *journal = journal_path(env->c);
	char *b = pattern(100, 41), *c = pattern(200, 42);
	struct cache_stats st;
	int fd, saved;

	saved = test_fill_file(journal, &fd);
	fake_fail_next(env->fo, FAKE_WRITE, 1000, EIO);
	/* Neither in the journal nor on the origin: the close fails. */
	assert_int_equal(commit_new(env->c, "b", b, 100), -ENOSPC);
	st = test_stats(env->c);
	assert_int_equal(st.uploads_pending, 1);
	assert_false(fake_exists(env->fo, "b"));

	/* The next record that fits rewrites the journal from the queue,
	 * so b is listed too, and both survive a restart. */
	test_unfill_file(fd, saved);
	assert_int_equal(commit_new(env->c, "c", c, 200), 0);
	test_env_close(env);
	assert_int_equal(test_env_open(env), 0);
	st = test_stats(env->c);
	assert_int_equal(st.uploads_pending, 2);
	assert_int_equal(st.dirty_bytes, 300);

	fake_fail_next(env->fo, FAKE_WRITE, 0, 0);
	assert_int_equal(cache_flush(env->c, "", NULL, NULL), 0);
	test_assert_origin_has(env->fo, "b", b, 100);
	test_assert_origin_has(env->fo, "c", c, 200);
	free(b);
	free(c);
	free(journal);
}

#define WB_TEST(name) cmocka_unit_test_teardown(name, teardown)

/* An argument runs only the tests whose names match it (cmocka pattern). */
int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		WB_TEST(test_writeback_close_is_local),
		WB_TEST(test_writeback_delay_respected),
		WB_TEST(test_writeback_rewrite_uploaded_once),
		WB_TEST(test_writeback_failure_retried_with_backoff),
		WB_TEST(test_writeback_retry_time_logged),
		WB_TEST(test_writeback_permanent_failure_kept),
		WB_TEST(test_writeback_backpressure_waits),
		WB_TEST(test_writeback_flush_subtree),
		WB_TEST(test_writeback_unlink_pending_cancels),
		WB_TEST(test_writeback_unlink_failed_keeps_upload),
		WB_TEST(test_writeback_unlink_then_recreate),
		WB_TEST(test_writeback_rename_pending_moves),
		WB_TEST(test_writeback_rename_pending_survives_reopen),
		WB_TEST(test_writeback_journal_replay_after_close),
		WB_TEST(test_writeback_fsync_origin_uploads),
		WB_TEST(test_writeback_reader_follows_after_fsync),
		WB_TEST(test_writeback_fsync_local_journal),
		WB_TEST(test_writeback_fsync_upload_keeps_page_cache),
		WB_TEST(test_writeback_read_during_slow_upload),
		WB_TEST(test_writeback_chmod_during_upload),
		WB_TEST(test_writeback_rmdir_pending_child),
		WB_TEST(test_writeback_rename_onto_pending_dir),
		WB_TEST(test_writeback_journal_full_uploads_at_close),
		WB_TEST(test_writeback_journal_full_origin_down),
		/* Last: when the replay crashes, cmocka goes on after the
		 * signal with the cache's locks in an unknown state. */
		WB_TEST(test_writeback_replay_duplicate_path),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	/* Failed uploads are expected here and log at LOG_ERR. */
	log_max_level = LOG_CRIT;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
