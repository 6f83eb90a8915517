/* test_verify.c - the offline check and repair of a cache folder, over a
 * real cache folder filled through a fake origin, with a pending
 * write-back upload. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "fake_origin.c"
#include "internal.h"
#include "verify.h"

#define CS (64u * 1024)
#define A_SIZE (3 * CS + 1000)	/* 4 chunks, the last one short */
#define B_SIZE (2 * CS)
#define NEW_SIZE 5000
#define DELAY_MS (3600 * 1000)	/* no upload before the fake clock moves */

/* What the callbacks received. */
struct seen {
	unsigned problems[VERIFY_KIND_MAX];
	unsigned repaired;
	unsigned pending;
	char pending_path[256];
	unsigned leftovers;
	char leftover_file[64];
	char leftover_id[256];
	char last_file[PATH_MAX];
	char last_message[512];
	char last_outcome[256];
};

static void on_problem(void *arg, const struct verify_problem *p)
{
	struct seen *s = arg;

	s->problems[p->kind]++;
	if (p->repaired)
		s->repaired++;
	snprintf(s->last_file, sizeof(s->last_file), "%s", p->file);
	snprintf(s->last_message, sizeof(s->last_message), "%s", p->message);
	snprintf(s->last_outcome, sizeof(s->last_outcome), "%s",
		 p->outcome ? p->outcome : "");
}

static void on_pending(void *arg, const char *path, const char *file,
		       uint64_t size)
{
	struct seen *s = arg;

	(void)file;
	(void)size;
	s->pending++;
	snprintf(s->pending_path, sizeof(s->pending_path), "%s", path);
}

static void on_leftover(void *arg, const char *file, const char *id)
{
	struct seen *s = arg;

	s->leftovers++;
	snprintf(s->leftover_file, sizeof(s->leftover_file), "%s", file);
	snprintf(s->leftover_id, sizeof(s->leftover_id), "%s", id);
}

struct run {
	struct seen seen;
	struct verify_counts counts;
	char err[1024];
	int ret;
};

static struct run run_verify(const char *root, bool repair)
{
	struct run r;
	struct verify_report report = {
		.problem = on_problem,
		.pending = on_pending,
		.leftover = on_leftover,
	};

	memset(&r, 0, sizeof(r));
	report.arg = &r.seen;
	r.ret = verify_folder(root, repair, &report, &r.counts, r.err,
			      sizeof(r.err));
	return r;
}

static unsigned total_problems(const struct verify_counts *n)
{
	unsigned total = 0;

	for (int k = 0; k < VERIFY_KIND_MAX; k++)
		total += n->problems[k];
	return total;
}

/* Verify root without repair, fail on any problem, and return the run. */
static struct run run_verify_clean(const char *root)
{
	struct run r = run_verify(root, false);

	assert_int_equal(r.ret, 0);
	assert_int_equal(total_problems(&r.counts), 0);
	return r;
}

static void read_whole(struct cache *c, const char *path, size_t len,
		       unsigned seed)
{
	char *expected = test_pattern_new(len, 0, seed);
	char *buf = malloc(len);
	struct cache_file *f;
	bool changed;

	assert_non_null(buf);
	assert_int_equal(cache_file_open(c, path, O_RDONLY, &f, &changed), 0);
	assert_int_equal(cache_file_read(f, buf, len, 0), len);
	assert_memory_equal(buf, expected, len);
	cache_file_release(f);
	free(buf);
	free(expected);
}

static void commit_new(struct cache *c, const char *path, size_t len,
		       unsigned seed)
{
	char *data = test_pattern_new(len, 0, seed);
	struct cache_file *f;

	assert_int_equal(cache_file_create(c, path, 0644, getuid(), getgid(),
					   &f), 0);
	assert_int_equal(cache_file_write(f, data, len, 0), len);
	assert_int_equal(cache_file_commit(f), 0);
	cache_file_release(f);
	free(data);
}

static void put_pattern(struct fake_origin *fo, const char *path, size_t len,
			unsigned seed)
{
	char *data = test_pattern_new(len, 0, seed);

	assert_int_equal(fake_put_file(fo, path, data, len), 0);
	free(data);
}

/* root/rel, in a buffer that the next call reuses. */
static const char *in_root(const char *root, const char *rel)
{
	static char path[2 * PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	return path;
}

static void flip_byte(const char *root, const char *rel, off_t off)
{
	char path[2 * PATH_MAX];
	unsigned char b;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static bool exists(const char *root, const char *rel)
{
	char path[2 * PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	return access(path, F_OK) == 0;
}

/* Append 4 bytes to a record file, as a crash in a record write leaves
 * them. */
static void append_torn_record(const char *root, const char *rel)
{
	int fd = open(in_root(root, rel), O_WRONLY | O_APPEND);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "torn", 4), 4);
	close(fd);
}

/* Bytes of a file, or NULL when it cannot be read; *len gets the size. */
static char *slurp(const char *root, const char *rel, size_t *len)
{
	char path[2 * PATH_MAX];
	struct stat st;
	char *buf;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0)
		return NULL;
	buf = malloc(st.st_size + 1);
	assert_int_equal(pread(fd, buf, st.st_size, 0), st.st_size);
	close(fd);
	*len = st.st_size;
	return buf;
}

/*
 * A cache with a (4 chunks) and b (2 chunks) read whole through a fake
 * origin, and new.txt and gone.txt waiting for upload.  Returns the
 * origin folder in root.
 */
static struct test_env *fill(void **state, char *root, size_t len)
{
	struct test_env *env = test_env_create(state, "verify-XXXXXX", CS,
					       64 * CS, 60000);

	env->cfg.write_mode = WRITE_BACK;
	env->cfg.writeback_delay_ms = DELAY_MS;
	env->cfg.max_dirty = 64 * CS;
	put_pattern(env->fo, "a", A_SIZE, 1);
	put_pattern(env->fo, "b", B_SIZE, 2);
	assert_int_equal(test_env_open(env), 0);
	snprintf(root, len, "%s", cache_path(env->c));
	read_whole(env->c, "a", A_SIZE, 1);
	read_whole(env->c, "b", B_SIZE, 2);
	commit_new(env->c, "new.txt", NEW_SIZE, 3);
	commit_new(env->c, "gone.txt", 100, 4);
	assert_int_equal(test_stats(env->c).uploads_pending, 2);
	test_env_close(env);
	return env;
}

static void test_verify_clean_cache(void **state)
{
	char root[PATH_MAX];
	struct run r;

	fill(state, root, sizeof(root));
	r = run_verify(root, false);
	assert_int_equal(r.ret, 0);
	assert_int_equal(total_problems(&r.counts), 0);
	assert_int_equal(r.counts.objects, 2);
	assert_int_equal(r.counts.chunks, 6);
	assert_int_equal(r.counts.bytes, A_SIZE + B_SIZE);
	assert_int_equal(r.counts.pending, 2);
	assert_int_equal(r.counts.pending_bytes, NEW_SIZE + 100);
	assert_int_equal(r.seen.pending, 2);
	assert_int_equal(r.counts.leftovers, 0);
}

/* Entries of leftovers/ are listed, not problems, and a repair keeps
 * them.  An entry cut short or without an id is a tmp problem. */
static void test_verify_lists_leftovers(void **state)
{
	char root[PATH_MAX];
	struct run r;

	fill(state, root, sizeof(root));
	test_write_text(root, "leftovers/0000000000000003", "UPLOAD-1\ndir/big");
	test_write_text(root, "leftovers/0000000000000004.part", "d/.nearfs-tmp-");
	test_write_text(root, "leftovers/0000000000000005", "");
	test_write_text(root, "leftovers/notes", "not an entry");

	r = run_verify(root, false);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.counts.leftovers, 1);
	assert_int_equal(r.seen.leftovers, 1);
	assert_string_equal(r.seen.leftover_file,
			    "leftovers/0000000000000003");
	assert_string_equal(r.seen.leftover_id, "UPLOAD-1\ndir/big");
	assert_int_equal(r.counts.problems[VERIFY_TMP], 2);
	assert_int_equal(total_problems(&r.counts), 2);

	r = run_verify(root, true);
	assert_int_equal(r.seen.repaired, 2);
	assert_true(exists(root, "leftovers/0000000000000003"));
	assert_false(exists(root, "leftovers/0000000000000004.part"));
	assert_false(exists(root, "leftovers/0000000000000005"));
	assert_true(exists(root, "leftovers/notes"));

	r = run_verify_clean(root);
	assert_int_equal(r.counts.leftovers, 1);
}

static void test_verify_reports_damage(void **state)
{
	char root[PATH_MAX], *index_before, *index_after;
	size_t before_len, after_len;
	struct run r;

	fill(state, root, sizeof(root));
	/* a has id 1 and b id 2: the order of their first reads. */
	flip_byte(root, "data/01/0000000000000001", CS + 17);
	assert_int_equal(truncate(in_root(root, "data/02/0000000000000002"),
				  CS + 10), 0);
	assert_int_equal(mkdir(in_root(root, "data/ff"), 0700), 0);
	test_write_text(root, "data/ff/00000000000000ff", "orphan");
	test_write_text(root, "tmp/w1-1", "left over");
	/* new.txt is dirty/...1, gone.txt dirty/...2. */
	assert_true(exists(root, "dirty/0000000000000002"));
	assert_int_equal(unlink(in_root(root, "dirty/0000000000000002")), 0);
	index_before = slurp(root, "index", &before_len);
	assert_non_null(index_before);

	r = run_verify(root, false);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.counts.problems[VERIFY_CHECKSUM], 1);
	assert_int_equal(r.counts.problems[VERIFY_SHORT], 1);
	assert_int_equal(r.counts.problems[VERIFY_ORPHAN], 1);
	assert_int_equal(r.counts.problems[VERIFY_TMP], 1);
	assert_int_equal(r.counts.problems[VERIFY_JOURNAL], 1);
	assert_int_equal(total_problems(&r.counts), 5);
	assert_int_equal(r.seen.problems[VERIFY_CHECKSUM], 1);
	assert_int_equal(r.seen.repaired, 0);
	assert_int_equal(r.counts.pending, 1);
	assert_string_equal(r.seen.pending_path, "new.txt");
	/* The check changed nothing. */
	index_after = slurp(root, "index", &after_len);
	assert_non_null(index_after);
	assert_int_equal(after_len, before_len);
	assert_memory_equal(index_after, index_before, before_len);
	assert_true(exists(root, "data/ff/00000000000000ff"));
	assert_true(exists(root, "tmp/w1-1"));
	free(index_before);
	free(index_after);
}

static void test_verify_repair_then_clean(void **state)
{
	struct test_env *env;
	char root[PATH_MAX];
	struct cache_stats st;
	struct run r;
	void *data;
	size_t len;

	env = fill(state, root, sizeof(root));
	flip_byte(root, "data/01/0000000000000001", CS + 17);
	assert_int_equal(truncate(in_root(root, "data/02/0000000000000002"),
				  CS + 10), 0);
	test_write_text(root, "data/01/0000000000000099", "orphan");
	test_write_text(root, "tmp/w1-1", "left over");
	assert_int_equal(unlink(in_root(root, "dirty/0000000000000002")), 0);

	r = run_verify(root, true);
	assert_int_equal(r.ret, 0);
	assert_int_equal(total_problems(&r.counts), 5);
	assert_int_equal(r.counts.repaired, 5);
	assert_int_equal(r.counts.kept, 0);
	assert_int_equal(r.seen.repaired, 5);
	assert_false(exists(root, "data/01/0000000000000099"));
	assert_false(exists(root, "tmp/w1-1"));
	/* The pending upload is kept. */
	assert_true(exists(root, "dirty/0000000000000001"));

	r = run_verify(root, false);
	assert_int_equal(r.ret, 0);
	assert_int_equal(total_problems(&r.counts), 0);
	assert_int_equal(r.counts.chunks, 4);
	assert_int_equal(r.counts.pending, 1);

	/* The daemon fetches exactly the dropped chunks again. */
	assert_int_equal(test_env_open(env), 0);
	read_whole(env->c, "a", A_SIZE, 1);
	read_whole(env->c, "b", B_SIZE, 2);
	st = test_stats(env->c);
	assert_int_equal(st.bytes_from_origin, 2 * CS);
	assert_int_equal(st.checksum_failures, 0);
	/* A replayed upload starts at once: wait for it. */
	assert_int_equal(cache_flush(env->c, "", NULL, NULL), 0);
	assert_int_equal(fake_get_file(env->fo, "new.txt", &data, &len), 0);
	assert_int_equal(len, NEW_SIZE);
	free(data);
	assert_false(fake_exists(env->fo, "gone.txt"));
}

static void test_verify_torn_index(void **state)
{
	char root[PATH_MAX];
	struct run r;

	fill(state, root, sizeof(root));
	append_torn_record(root, "index");

	r = run_verify(root, false);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.counts.problems[VERIFY_INDEX], 1);
	assert_int_equal(total_problems(&r.counts), 1);
	assert_int_equal(r.counts.chunks, 6);
	r = run_verify(root, true);
	assert_int_equal(r.counts.repaired, 1);
	r = run_verify(root, false);
	assert_int_equal(total_problems(&r.counts), 0);
	assert_int_equal(r.counts.chunks, 6);
}

static void test_verify_torn_journal_keeps_dirty(void **state)
{
	char root[PATH_MAX];
	struct run r;

	fill(state, root, sizeof(root));
	append_torn_record(root, "journal");
	test_write_text(root, "dirty/0000000000000007", "unlisted");

	r = run_verify(root, false);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.counts.problems[VERIFY_JOURNAL], 1);
	assert_int_equal(r.counts.problems[VERIFY_DIRTY], 1);
	assert_int_equal(total_problems(&r.counts), 2);
	assert_int_equal(r.counts.pending, 2);

	r = run_verify(root, true);
	assert_int_equal(r.counts.repaired, 1);
	assert_int_equal(r.counts.kept, 1);
	assert_true(exists(root, "dirty/0000000000000007"));
	assert_true(exists(root, "dirty/0000000000000001"));
	assert_true(exists(root, "dirty/0000000000000002"));

	/* With the journal whole again, the unlisted file is left over. */
	r = run_verify(root, true);
	assert_int_equal(r.counts.problems[VERIFY_DIRTY], 1);
	assert_int_equal(r.counts.repaired, 1);
	assert_false(exists(root, "dirty/0000000000000007"));
	r = run_verify(root, false);
	assert_int_equal(total_problems(&r.counts), 0);
	assert_int_equal(r.counts.pending, 2);
}

static off_t size_of(const char *root, const char *rel)
{
	struct stat st;

	assert_int_equal(stat(in_root(root, rel), &st), 0);
	return st.st_size;
}

static void test_verify_pending_size_mismatch(void **state)
{
	struct test_env *env;
	char root[PATH_MAX], want[2 * PATH_MAX], tail[50];
	struct run r;
	void *data;
	size_t len;
	int fd;

	env = fill(state, root, sizeof(root));
	/* new.txt (5000 bytes) is dirty/...1, gone.txt (100) dirty/...2. */
	assert_int_equal(truncate(in_root(root, "dirty/0000000000000001"),
				  4000), 0);
	fd = open(in_root(root, "dirty/0000000000000002"),
		  O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	memset(tail, 'x', sizeof(tail));
	assert_int_equal(write(fd, tail, sizeof(tail)), 50);
	close(fd);

	r = run_verify(root, false);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.counts.problems[VERIFY_SIZE], 2);
	assert_int_equal(total_problems(&r.counts), 2);
	assert_int_equal(r.counts.pending, 2);
	assert_int_equal(r.counts.pending_bytes, 4000 + 150);
	snprintf(want, sizeof(want), "%s/dirty/0000000000000002", root);
	assert_string_equal(r.seen.last_file, want);
	assert_string_equal(r.seen.last_message,
			    "the journal records 100 bytes for gone.txt, but "
			    "the file has 150 bytes (50 bytes longer)");
	assert_string_equal(r.seen.last_outcome, "");
	assert_string_equal(verify_kind_names[VERIFY_SIZE], "size");

	r = run_verify(root, true);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.counts.problems[VERIFY_SIZE], 2);
	assert_int_equal(r.counts.repaired, 0);
	assert_int_equal(r.counts.kept, 2);
	assert_int_equal(r.seen.repaired, 0);
	assert_string_equal(r.seen.last_outcome,
			    "kept: verify never removes a pending upload, and "
			    "the next mount uploads the file as it is now");
	assert_int_equal(size_of(root, "dirty/0000000000000001"), 4000);
	assert_int_equal(size_of(root, "dirty/0000000000000002"), 150);

	/* The next start uploads the files as they are. */
	assert_int_equal(test_env_open(env), 0);
	assert_int_equal(cache_flush(env->c, "", NULL, NULL), 0);
	assert_int_equal(fake_get_file(env->fo, "new.txt", &data, &len), 0);
	assert_int_equal(len, 4000);
	free(data);
	assert_int_equal(fake_get_file(env->fo, "gone.txt", &data, &len), 0);
	assert_int_equal(len, 150);
	free(data);
}

static void test_verify_pending_shorter_message(void **state)
{
	char root[PATH_MAX];
	struct run r;

	fill(state, root, sizeof(root));
	assert_int_equal(truncate(in_root(root, "dirty/0000000000000001"), 0),
			 0);
	r = run_verify(root, false);
	assert_int_equal(r.counts.problems[VERIFY_SIZE], 1);
	assert_int_equal(total_problems(&r.counts), 1);
	assert_string_equal(r.seen.last_message,
			    "the journal records 5000 bytes for new.txt, but "
			    "the file has 0 bytes (5000 bytes shorter)");
}

/*
 * A daemon killed while a chunk arrives leaves its data file behind.  The
 * index names that file before it exists, the check finds nothing wrong,
 * and the next start removes the file of the chunkless object.
 */
static void test_verify_kill_mid_fetch(void **state)
{
	struct test_env *env = test_env_create(state, "verify-XXXXXX", CS,
					       64 * CS, 60000);
	const char *paths[] = { "big" };
	const char *data = "data/01/0000000000000001";
	char root[PATH_MAX], err[256];
	struct timespec nap = { 0, 10 * 1000 * 1000 };
	int status, tries, pipefd[2];
	struct run r;
	pid_t pid;

	fake_enable_stream(env->fo);
	put_pattern(env->fo, "big", 4 * CS, 5);
	fake_stall_streams(env->fo, CS / 2);
	memset(root, 0, sizeof(root));
	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (test_env_open(env) < 0)
			_exit(2);
		snprintf(root, sizeof(root), "%s", cache_path(env->c));
		if (write(pipefd[1], root, sizeof(root)) != sizeof(root))
			_exit(2);
		cache_warm(env->c, paths, 1, 1, NULL, NULL, err, sizeof(err));
		_exit(3);	/* the stalled stream never returns */
	}
	close(pipefd[1]);
	assert_int_equal(read(pipefd[0], root, sizeof(root)), sizeof(root));
	close(pipefd[0]);
	for (tries = 0; tries < 500 && access(in_root(root, data), F_OK);
	     tries++)
		nanosleep(&nap, NULL);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(access(in_root(root, data), F_OK), 0);

	r = run_verify_clean(root);
	assert_int_equal(r.counts.chunks, 0);

	fake_stall_streams(env->fo, 0);
	assert_int_equal(test_env_open(env), 0);
	assert_int_equal(test_stats(env->c).bytes_cached, 0);
	assert_int_equal(test_stats(env->c).chunks_cached, 0);
	assert_int_equal(access(in_root(root, data), F_OK), -1);
	test_env_close(env);

	r = run_verify_clean(root);
	assert_int_equal(r.counts.objects, 0);
}

/* Bytes of disk that the file at path takes. */
static uint64_t disk_bytes(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

/*
 * A daemon killed while the second chunk of a file arrives leaves that
 * chunk's first pieces in the data file, which the index does not list.
 * The next start punches them, and keeps the first chunk.
 */
static void test_verify_kill_mid_second_chunk(void **state)
{
	const uint32_t cs = 1024 * 1024;	/* four write pieces */
	struct test_env *env = test_env_create(state, "verify-XXXXXX", cs,
					       64 * (uint64_t)cs, 60000);
	const char *data = "data/01/0000000000000001";
	const char *paths[] = { "big" };
	struct timespec nap = { 0, 10 * 1000 * 1000 };
	char root[PATH_MAX], err[256], *buf = malloc(cs);
	char *expected = test_pattern_new(cs, 0, 6);
	struct cache_file *f;
	int status, tries;
	bool changed;
	pid_t pid;

	assert_non_null(buf);
	put_pattern(env->fo, "big", 3 * (size_t)cs, 6);
	assert_int_equal(test_env_open(env), 0);
	snprintf(root, sizeof(root), "%s", cache_path(env->c));
	assert_int_equal(cache_file_open(env->c, "big", O_RDONLY, &f,
					 &changed), 0);
	assert_int_equal(cache_file_read(f, buf, cs, 0), cs);
	cache_file_release(f);
	test_env_close(env);

	fake_enable_stream(env->fo);
	fake_stall_streams(env->fo, cs / 4 * 3);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (test_env_open(env) < 0)
			_exit(2);
		cache_warm(env->c, paths, 1, 1, NULL, NULL, err, sizeof(err));
		_exit(3);	/* the stalled stream never returns */
	}
	for (tries = 0; tries < 500 &&
	     disk_bytes(in_root(root, data)) < cs + cs / 4 * 3; tries++)
		nanosleep(&nap, NULL);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_true(disk_bytes(in_root(root, data)) >= cs + cs / 4 * 3);

	fake_stall_streams(env->fo, 0);
	assert_int_equal(test_env_open(env), 0);
	assert_int_equal(test_stats(env->c).bytes_cached, cs);
	assert_true(disk_bytes(in_root(root, data)) < cs + cs / 4);
	assert_int_equal(cache_file_open(env->c, "big", O_RDONLY, &f,
					 &changed), 0);
	assert_int_equal(cache_file_read(f, buf, cs, 0), cs);
	cache_file_release(f);
	assert_memory_equal(buf, expected, cs);
	assert_int_equal(test_stats(env->c).misses, 0);
	test_env_close(env);
	run_verify_clean(root);
	free(expected);
	free(buf);
}

/*
 * Eviction takes every chunk of a file that is still open.  Its data file
 * stays until the file is closed, and then goes with its index record.
 */
static void test_verify_open_file_evicted(void **state)
{
	struct test_env *env = test_env_create(state, "verify-XXXXXX", CS,
					       2 * CS, 60000);
	const char *a_data = "data/01/0000000000000001";
	char root[PATH_MAX], *buf = malloc(CS);
	struct cache_file *f;
	bool changed;
	struct run r;

	assert_non_null(buf);
	put_pattern(env->fo, "a", 2 * CS, 1);
	put_pattern(env->fo, "b", 2 * CS, 2);
	assert_int_equal(test_env_open(env), 0);
	snprintf(root, sizeof(root), "%s", cache_path(env->c));
	assert_int_equal(cache_file_open(env->c, "a", O_RDONLY, &f, &changed),
			 0);
	assert_int_equal(cache_file_read(f, buf, CS, 0), CS);
	read_whole(env->c, "b", 2 * CS, 2);	/* evicts the chunk of a */
	assert_int_equal(test_stats(env->c).chunks_cached, 2);
	assert_int_equal(access(in_root(root, a_data), F_OK), 0);
	cache_file_release(f);
	free(buf);
	/* Closed: the chunkless copy of a goes at once. */
	assert_int_equal(access(in_root(root, a_data), F_OK), -1);
	test_env_close(env);
	r = run_verify_clean(root);
	assert_int_equal(r.counts.objects, 1);
	assert_int_equal(r.counts.chunks, 2);
}

static void test_verify_rejects_locked(void **state)
{
	struct test_env *env;
	char root[PATH_MAX], pid[32];
	struct run r;

	env = fill(state, root, sizeof(root));
	assert_int_equal(test_env_open(env), 0);
	r = run_verify(root, false);
	assert_int_equal(r.ret, -EBUSY);
	snprintf(pid, sizeof(pid), "pid %d", (int)getpid());
	assert_non_null(strstr(r.err, pid));
	assert_int_equal(total_problems(&r.counts), 0);
}

static void test_verify_origin_folder_detected(void **state)
{
	char root[PATH_MAX];
	struct test_env *env = fill(state, root, sizeof(root));

	assert_true(verify_is_origin_folder(root));
	assert_false(verify_is_origin_folder(env->dir));
}

/* The names of data files, data folders and leftover entries. */
static void test_verify_hex_names(void **state)
{
	uint64_t v = 7;
	bool part = false;

	(void)state;
	assert_true(hex_name_value("0a", 2, &v));
	assert_int_equal(v, 10);
	assert_true(hex_name_value("ffffffffffffffff", 16, &v));
	assert_true(v == UINT64_MAX);
	v = 7;
	assert_false(hex_name_value("0A", 2, &v));
	assert_false(hex_name_value("0a1", 2, &v));
	assert_false(hex_name_value("0", 2, &v));
	assert_false(hex_name_value("-1", 2, &v));
	assert_int_equal(v, 7);

	assert_true(store_data_name_id(0x2a, "000000000000012a", &v));
	assert_int_equal(v, 0x12a);
	assert_false(store_data_name_id(0x2b, "000000000000012a", &v));
	assert_false(store_data_name_id(0x2a, "00000000000012a", &v));

	assert_true(leftover_parse_name("0000000000000010", &v, &part));
	assert_int_equal(v, 16);
	assert_false(part);
	assert_true(leftover_parse_name("0000000000000011.part", &v, &part));
	assert_int_equal(v, 17);
	assert_true(part);
	assert_false(leftover_parse_name("0000000000000011.tmp", &v, &part));
	assert_false(leftover_parse_name("00000000000000112", &v, &part));
	assert_false(leftover_parse_name("000000000000001g", &v, &part));
	assert_false(leftover_parse_name("", &v, &part));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verify_hex_names),
		cmocka_unit_test_teardown(test_verify_clean_cache,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_verify_lists_leftovers,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_verify_reports_damage,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_verify_repair_then_clean,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_verify_torn_index,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_verify_torn_journal_keeps_dirty,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_verify_pending_size_mismatch,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_verify_pending_shorter_message,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_verify_kill_mid_fetch,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_verify_kill_mid_second_chunk,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_verify_open_file_evicted,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_verify_rejects_locked,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_verify_origin_folder_detected,
					  test_env_teardown),
	};

	(void)argc;
	(void)argv;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
