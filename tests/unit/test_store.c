/* test_store.c - the chunk store and its eviction, over a fake origin. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "fake_origin.c"
#include "log.h"

#define CS (64u * 1024)		/* chunk size of every test */
#define READERS 8

static struct test_env *start(void **state, uint64_t size_max)
{
	return test_env_start(state, "cache-tests-store-XXXXXX", CS, size_max,
			      60000);
}

static void assert_pattern(const void *buf, size_t len, uint64_t offset,
			   unsigned seed)
{
	char *want = test_pattern_new(len, offset, seed);

	assert_memory_equal(buf, want, len);
	free(want);
}

/* Read one whole chunk of path and check its bytes. */
static void read_chunk_ok(struct cache *c, const char *path, uint32_t index,
			  unsigned seed)
{
	char *buf = malloc(CS);

	assert_non_null(buf);
	assert_int_equal(test_read_path(c, path, buf, CS,
					(uint64_t)index * CS), CS);
	assert_pattern(buf, CS, (uint64_t)index * CS, seed);
	free(buf);
}

static void test_store_tail_read_fetches_one_chunk(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	uint64_t size = 16 * CS;
	char buf[4096];

	test_put_pattern(env->fo, "big", size, 1);
	assert_int_equal(test_read_path(env->c, "big", buf, sizeof(buf),
					size - sizeof(buf)), sizeof(buf));
	assert_pattern(buf, sizeof(buf), size - sizeof(buf), 1);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 1);
	assert_int_equal(fake_last_read_offset(env->fo), 15 * CS);
	assert_int_equal(fake_last_read_len(env->fo), CS);
}

static void test_store_second_read_is_hit(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	uint64_t size = 16 * CS;
	char buf[4096];

	test_put_pattern(env->fo, "big", size, 1);
	assert_int_equal(test_read_path(env->c, "big", buf, sizeof(buf),
					size - sizeof(buf)), sizeof(buf));
	memset(buf, 0, sizeof(buf));
	assert_int_equal(test_read_path(env->c, "big", buf, sizeof(buf),
					size - sizeof(buf)), sizeof(buf));
	assert_pattern(buf, sizeof(buf), size - sizeof(buf), 1);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 1);
}

static void test_store_stats_count_hits_misses(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	uint64_t size = 16 * CS;
	struct cache_stats st;
	char buf[4096];

	test_put_pattern(env->fo, "big", size, 1);
	assert_int_equal(test_read_path(env->c, "big", buf, sizeof(buf),
					size - sizeof(buf)), sizeof(buf));
	assert_int_equal(test_read_path(env->c, "big", buf, sizeof(buf),
					size - sizeof(buf)), sizeof(buf));
	assert_int_equal(test_read_path(env->c, "big", buf, 100, 3 * CS),
			 100);
	st = test_stats(env->c);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.bytes_from_origin, 2 * CS);
	assert_int_equal(st.bytes_from_cache, sizeof(buf));
	assert_int_equal(st.chunks_cached, 2);
	assert_int_equal(st.bytes_cached, 2 * CS);
	assert_int_equal(st.objects_cached, 1);
	assert_int_equal(st.evictions, 0);
	assert_int_equal(st.origin_requests[ORIGIN_REQ_GET], 2);
}

static void test_store_read_spans_chunks(void **state)
{
	struct test_env *env = start(state, 64 * CS);
	uint64_t size = 3 * CS + 1000;
	size_t len = CS + 2000;
	char *buf = malloc(len);

	assert_non_null(buf);
	test_put_pattern(env->fo, "f", size, 2);
	assert_int_equal(test_read_path(env->c, "f", buf, len, CS - 1000),
			 len);
	assert_pattern(buf, len, CS - 1000, 2);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 3);
	/* Short at end of file, 0 past it. */
	assert_int_equal(test_read_path(env->c, "f", buf, len, 3 * CS), 1000);
	assert_pattern(buf, 1000, 3 * CS, 2);
	assert_int_equal(test_read_path(env->c, "f", buf, len, size), 0);
	free(buf);
}

static void test_store_budget_never_exceeded(void **state)
{
	struct test_env *env = start(state, 4 * CS);
	struct cache_file *f;
	struct cache_stats st;
	bool changed;
	char *buf = malloc(CS);

	assert_non_null(buf);
	test_put_pattern(env->fo, "big", 12 * CS, 3);
	test_put_pattern(env->fo, "other", 3 * CS, 4);
	assert_int_equal(cache_file_open(env->c, "big", O_RDONLY, &f,
					 &changed), 0);
	for (uint32_t i = 0; i < 12; i++) {
		assert_int_equal(cache_file_read(f, buf, CS,
						 (uint64_t)i * CS), CS);
		assert_pattern(buf, CS, (uint64_t)i * CS, 3);
		st = test_stats(env->c);
		assert_true(st.bytes_cached <= st.size_max);
	}
	for (uint32_t i = 0; i < 3; i++) {
		read_chunk_ok(env->c, "other", i, 4);
		st = test_stats(env->c);
		assert_true(st.bytes_cached <= st.size_max);
	}
	cache_file_release(f);
	st = test_stats(env->c);
	assert_int_equal(st.size_max, 4 * CS);
	assert_int_equal(st.chunks_cached, 4);
	assert_int_equal(st.bytes_cached, 4 * CS);
	assert_int_equal(st.evictions, 11);
	free(buf);
}

static void test_store_lru_evicts_least_recent(void **state)
{
	struct test_env *env = start(state, 2 * CS);

	test_put_pattern(env->fo, "a", CS, 10);
	test_put_pattern(env->fo, "b", CS, 11);
	test_put_pattern(env->fo, "c", CS, 12);
	read_chunk_ok(env->c, "a", 0, 10);
	read_chunk_ok(env->c, "b", 0, 11);
	read_chunk_ok(env->c, "a", 0, 10);
	read_chunk_ok(env->c, "c", 0, 12);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 3);
	assert_int_equal(test_stats(env->c).evictions, 1);

	/* a was used after b, so b went and a stayed. */
	read_chunk_ok(env->c, "a", 0, 10);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 3);
	read_chunk_ok(env->c, "b", 0, 11);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 4);
}

static void test_store_open_file_chunks_evictable(void **state)
{
	struct test_env *env = start(state, 2 * CS);
	struct cache_file *f;
	struct cache_stats st;
	bool changed;
	char *buf = malloc(CS);

	assert_non_null(buf);
	test_put_pattern(env->fo, "a", 2 * CS, 20);
	test_put_pattern(env->fo, "b", 2 * CS, 21);
	assert_int_equal(cache_file_open(env->c, "a", O_RDONLY, &f,
					 &changed), 0);
	assert_int_equal(cache_file_read(f, buf, CS, 0), CS);
	assert_int_equal(cache_file_read(f, buf, CS, CS), CS);

	/* a stays open while b takes the whole budget. */
	read_chunk_ok(env->c, "b", 0, 21);
	read_chunk_ok(env->c, "b", 1, 21);
	st = test_stats(env->c);
	assert_int_equal(st.evictions, 2);
	assert_true(st.bytes_cached <= st.size_max);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 4);

	/* The open handle still reads a, from the origin again. */
	memset(buf, 0, CS);
	assert_int_equal(cache_file_read(f, buf, CS, 0), CS);
	assert_pattern(buf, CS, 0, 20);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 5);
	cache_file_release(f);
	free(buf);
}

struct reader {
	struct cache_file *f;
	char *buf;
	ssize_t n;
};

static void *read_first_chunk(void *arg)
{
	struct reader *r = arg;

	r->n = cache_file_read(r->f, r->buf, CS, 0);
	return NULL;
}

static void test_store_concurrent_readers_fetch_once(void **state)
{
	struct test_env *env = start(state, 16 * CS);
	struct reader readers[READERS];
	pthread_t threads[READERS];
	struct cache_stats st;
	bool changed;

	test_put_pattern(env->fo, "f", 2 * CS, 30);
	for (int i = 0; i < READERS; i++) {
		readers[i].buf = malloc(CS);
		assert_non_null(readers[i].buf);
		assert_int_equal(cache_file_open(env->c, "f", O_RDONLY,
						 &readers[i].f, &changed), 0);
	}
	fake_set_read_delay_ms(env->fo, 200);
	for (int i = 0; i < READERS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL,
						read_first_chunk,
						&readers[i]), 0);
	for (int i = 0; i < READERS; i++)
		assert_int_equal(pthread_join(threads[i], NULL), 0);

	assert_int_equal(fake_calls(env->fo, FAKE_READ), 1);
	for (int i = 0; i < READERS; i++) {
		assert_int_equal(readers[i].n, CS);
		assert_pattern(readers[i].buf, CS, 0, 30);
		cache_file_release(readers[i].f);
		free(readers[i].buf);
	}
	st = test_stats(env->c);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.hits, READERS - 1);
}

/* The path of the only data file below root/data. */
static void find_data_file(const char *root, char *out, size_t len)
{
	char data[PATH_MAX + 16], sub[PATH_MAX + 512];
	struct dirent *e, *fe;
	int found = 0;
	DIR *d, *sd;

	snprintf(data, sizeof(data), "%s/data", root);
	d = opendir(data);
	assert_non_null(d);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", data, e->d_name);
		sd = opendir(sub);
		assert_non_null(sd);
		while ((fe = readdir(sd))) {
			if (fe->d_name[0] == '.')
				continue;
			snprintf(out, len, "%s/%s", sub, fe->d_name);
			found++;
		}
		closedir(sd);
	}
	closedir(d);
	assert_int_equal(found, 1);
}

static void flip_byte(const char *path, off_t offset)
{
	int fd = open(path, O_RDWR);
	unsigned char b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, offset), 1);
	b ^= 0xff;
	assert_int_equal(pwrite(fd, &b, 1, offset), 1);
	assert_int_equal(close(fd), 0);
}

static void test_store_corrupt_chunk_refetched(void **state)
{
	struct test_env *env = start(state, 16 * CS);
	char root[PATH_MAX], file[2 * PATH_MAX];
	struct cache_stats st;

	test_put_pattern(env->fo, "f", 2 * CS, 40);
	read_chunk_ok(env->c, "f", 0, 40);
	read_chunk_ok(env->c, "f", 1, 40);
	snprintf(root, sizeof(root), "%s", cache_path(env->c));
	test_env_close(env);
	find_data_file(root, file, sizeof(file));
	flip_byte(file, 10);

	assert_int_equal(test_env_open(env), 0);
	fake_reset_calls(env->fo);
	read_chunk_ok(env->c, "f", 0, 40);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 1);
	st = test_stats(env->c);
	assert_int_equal(st.checksum_failures, 1);

	/* The intact chunk passes its check and is a hit. */
	read_chunk_ok(env->c, "f", 1, 40);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 1);
	assert_int_equal(test_stats(env->c).checksum_failures, 1);
}

/* Readers that find the same damaged chunk after a restart drop it once
 * and fetch it once. */
static void test_store_corrupt_chunk_concurrent(void **state)
{
	struct test_env *env = start(state, 16 * CS);
	char root[PATH_MAX], file[2 * PATH_MAX];
	struct reader readers[READERS];
	pthread_t threads[READERS];
	bool changed;

	test_put_pattern(env->fo, "f", CS, 41);
	read_chunk_ok(env->c, "f", 0, 41);
	snprintf(root, sizeof(root), "%s", cache_path(env->c));
	test_env_close(env);
	find_data_file(root, file, sizeof(file));
	flip_byte(file, 10);

	assert_int_equal(test_env_open(env), 0);
	fake_reset_calls(env->fo);
	for (int i = 0; i < READERS; i++) {
		readers[i].buf = malloc(CS);
		assert_non_null(readers[i].buf);
		assert_int_equal(cache_file_open(env->c, "f", O_RDONLY,
						 &readers[i].f, &changed), 0);
	}
	for (int i = 0; i < READERS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL,
						read_first_chunk,
						&readers[i]), 0);
	for (int i = 0; i < READERS; i++)
		assert_int_equal(pthread_join(threads[i], NULL), 0);
	for (int i = 0; i < READERS; i++) {
		assert_int_equal(readers[i].n, CS);
		assert_pattern(readers[i].buf, CS, 0, 41);
		cache_file_release(readers[i].f);
		free(readers[i].buf);
	}
	assert_int_equal(test_stats(env->c).checksum_failures, 1);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 1);
}

static void test_store_origin_error_caches_nothing(void **state)
{
	struct test_env *env = start(state, 16 * CS);
	struct cache_stats st;
	char *buf = malloc(CS);

	assert_non_null(buf);
	test_put_pattern(env->fo, "f", CS, 50);
	fake_fail_next(env->fo, FAKE_READ, 1, EIO);
	assert_int_equal(test_read_path(env->c, "f", buf, CS, 0), -EIO);
	st = test_stats(env->c);
	assert_int_equal(st.chunks_cached, 0);
	assert_int_equal(st.bytes_cached, 0);
	assert_int_equal(st.misses, 0);

	/* The next read requests the chunk again and succeeds. */
	read_chunk_ok(env->c, "f", 0, 50);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 2);
	assert_int_equal(test_stats(env->c).chunks_cached, 1);
	free(buf);
}

/*
 * When a fetched chunk cannot be written to its data file, the bytes are
 * returned and the reservation taken for them must be given back.  A
 * regular file where the object's data folder belongs makes the data
 * file impossible to create.
 */
static void test_store_unstorable_chunk_frees_budget(void **state)
{
	struct test_env *env = start(state, 16 * CS);
	char path[PATH_MAX + 64];
	char *buf = malloc(CS);
	struct cache_file *f;
	struct cache_stats st;
	bool changed;
	int fd;

	assert_non_null(buf);
	test_put_pattern(env->fo, "f", 2 * CS, 60);
	/* The first object has id 1: its data file is data/01/<id>. */
	snprintf(path, sizeof(path), "%s/data/01", cache_path(env->c));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);

	/* One handle keeps the object, so both chunks hit the same folder. */
	assert_int_equal(cache_file_open(env->c, "f", O_RDONLY, &f, &changed),
			 0);
	for (uint64_t off = 0; off < 2 * CS; off += CS) {
		assert_int_equal(cache_file_read(f, buf, CS, off), CS);
		assert_pattern(buf, CS, off, 60);
	}
	st = test_stats(env->c);
	assert_int_equal(st.chunks_cached, 0);
	assert_int_equal(st.bytes_cached, 0);
	cache_file_release(f);
	free(buf);
}

/* The lines the engine logged while a test captured them. */
struct log_lines {
	unsigned count;
	char line[16][512];
};

static void capture_line(void *arg, int level, const char *line)
{
	struct log_lines *lines = arg;

	(void)level;
	assert_true(lines->count < 16);
	snprintf(lines->line[lines->count], sizeof(lines->line[0]), "%s",
		 line);
	lines->count++;
}

static void test_store_pressure_logged_once(void **state)
{
	struct test_env *env = test_env_create(state,
					       "cache-tests-store-XXXXXX", CS,
					       2 * CS, 60000);
	struct cache_read_pin pins[2];
	struct log_lines lines = { 0 };
	struct cache_file *f;
	size_t n;
	int fd;

	assert_int_equal(test_env_open(env), 0);
	test_put_pattern(env->fo, "f", 4 * CS, 61);
	read_chunk_ok(env->c, "f", 0, 61);
	read_chunk_ok(env->c, "f", 1, 61);
	/* Reads in progress pin both cached chunks: nothing to evict. */
	f = test_open_file(env->c, "f", O_RDONLY);
	for (uint32_t i = 0; i < 2; i++)
		assert_int_equal(cache_file_read_fd(f, (uint64_t)i * CS, CS,
						    &fd, &n, &pins[i]), 1);
	log_max_level = LOG_INFO;
	log_set_output(capture_line, &lines);

	read_chunk_ok(env->c, "f", 2, 61);
	read_chunk_ok(env->c, "f", 3, 61);
	read_chunk_ok(env->c, "f", 2, 61);
	assert_int_equal(test_stats(env->c).chunks_cached, 2);
	assert_int_equal(lines.count, 1);
	assert_non_null(strstr(lines.line[0], "has no room for 65536 bytes "
			       "and nothing to evict: 131072 bytes cached of "
			       "cache_size 131072"));

	for (uint32_t i = 0; i < 2; i++)
		cache_read_unpin(env->c, &pins[i]);
	cache_file_release(f);
	read_chunk_ok(env->c, "f", 3, 61);
	assert_int_equal(lines.count, 2);
	assert_non_null(strstr(lines.line[1], "has room again after 3 chunks "
			       "were not cached: 131072 bytes cached of "
			       "cache_size 131072"));

	log_set_output(NULL, NULL);
	log_max_level = LOG_ERR;
}

/* The path of name in the cache folder of c, which the caller frees. */
static char *cache_file_path(struct cache *c, const char *name)
{
	char *path;

	assert_true(asprintf(&path, "%s/%s", cache_path(c), name) > 0);
	return path;
}

static void test_store_index_full_serves_uncached(void **state)
{
	struct test_env *env = start(state, 16 * CS);
	char *index = cache_file_path(env->c, "index");
	struct cache_stats st;
	int fd, saved;

	test_put_pattern(env->fo, "f", 2 * CS, 61);
	saved = test_fill_file(index, &fd);
	/* The bytes come from the origin, and no chunk is registered that
	 * the index does not list. */
	read_chunk_ok(env->c, "f", 0, 61);
	read_chunk_ok(env->c, "f", 1, 61);
	st = test_stats(env->c);
	assert_int_equal(st.chunks_cached, 0);
	assert_int_equal(st.bytes_cached, 0);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.cache_dir_full, 1);
	assert_true(st.cache_dir_errors >= 2);

	/* Room again: the next reads are cached and listed. */
	test_unfill_file(fd, saved);
	read_chunk_ok(env->c, "f", 0, 61);
	read_chunk_ok(env->c, "f", 1, 61);
	st = test_stats(env->c);
	assert_int_equal(st.chunks_cached, 2);
	assert_int_equal(st.cache_dir_full, 0);
	read_chunk_ok(env->c, "f", 1, 61);
	assert_int_equal(test_stats(env->c).hits, 1);

	test_env_close(env);
	assert_int_equal(test_env_open(env), 0);
	assert_int_equal(test_stats(env->c).chunks_cached, 2);
	read_chunk_ok(env->c, "f", 0, 61);
	assert_int_equal(test_stats(env->c).misses, 0);
	free(index);
}

static void test_store_index_rewritten_after_lost_evictions(void **state)
{
	struct test_env *env = start(state, 2 * CS);
	char *index = cache_file_path(env->c, "index");
	int fd, saved;

	test_put_pattern(env->fo, "a", 2 * CS, 62);
	test_put_pattern(env->fo, "b", 2 * CS, 63);
	read_chunk_ok(env->c, "a", 0, 62);
	read_chunk_ok(env->c, "a", 1, 62);
	/* Reading b evicts a, whose CHUNK_DEL records are lost. */
	saved = test_fill_file(index, &fd);
	read_chunk_ok(env->c, "b", 0, 63);
	assert_int_equal(test_stats(env->c).cache_dir_full, 1);
	test_unfill_file(fd, saved);
	read_chunk_ok(env->c, "b", 0, 63);
	read_chunk_ok(env->c, "b", 1, 63);
	assert_int_equal(test_stats(env->c).chunks_cached, 2);

	/* A crash now, without the compaction at close, must find b and
	 * not the evicted chunks of a. */
	test_copy_file(index, "index.crash");
	test_env_close(env);
	test_copy_file("index.crash", index);
	assert_int_equal(test_env_open(env), 0);
	assert_int_equal(test_stats(env->c).chunks_cached, 2);
	read_chunk_ok(env->c, "a", 0, 62);
	read_chunk_ok(env->c, "b", 1, 63);
	assert_int_equal(test_stats(env->c).checksum_failures, 0);
	free(index);
}

/* A file unlinked while a handle still reads it must stay removed after a
 * crash: the index records the removal at the unlink, not at the last
 * close of the handle. */
static void test_store_unlink_while_open_survives_crash(void **state)
{
	struct test_env *env = start(state, 8 * CS);
	char *index = cache_file_path(env->c, "index");
	struct origin_attr attr;
	struct cache_file *f;
	char *buf = malloc(CS);
	bool changed;

	assert_non_null(buf);
	test_put_pattern(env->fo, "gone", CS, 64);
	assert_int_equal(cache_file_open(env->c, "gone", O_RDONLY, &f,
					 &changed), 0);
	assert_int_equal(cache_file_read(f, buf, CS, 0), CS);
	assert_int_equal(cache_unlink(env->c, "gone"), 0);

	/* The daemon dies before the handle is released. */
	test_copy_file(index, "index.crash");
	cache_file_release(f);
	test_env_close(env);
	test_copy_file("index.crash", index);
	assert_int_equal(test_env_open(env), 0);
	assert_int_equal(cache_getattr(env->c, "gone", &attr), -ENOENT);
	free(buf);
	free(index);
}

static bool exists_in(const char *root, const char *name)
{
	char path[2 * PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", root, name);
	return access(path, F_OK) == 0;
}

/* The start after a crash removes the data files that no index record
 * names, and keeps the others and what is not a data file.  A clean
 * start does not look. */
static void test_store_orphans_removed_after_crash(void **state)
{
	struct test_env *env = start(state, 8 * CS);
	char root[PATH_MAX], dir[PATH_MAX + 16];

	snprintf(root, sizeof(root), "%s", cache_path(env->c));
	test_put_pattern(env->fo, "kept", 2 * CS, 65);
	read_chunk_ok(env->c, "kept", 0, 65);
	read_chunk_ok(env->c, "kept", 1, 65);
	test_env_close(env);
	snprintf(dir, sizeof(dir), "%s/data/ff", root);
	mkdir(dir, 0700);
	test_write_text(root, "data/ff/00000000000abcff", "orphan");
	test_write_text(root, "data/ff/notes", "not a data file");

	assert_int_equal(test_env_open(env), 0);
	test_env_close(env);
	assert_true(exists_in(root, "data/ff/00000000000abcff"));

	/* A pid in the lock file: the last daemon did not stop cleanly. */
	test_write_text(root, "lock", "4242\n");
	assert_int_equal(test_env_open(env), 0);
	assert_false(exists_in(root, "data/ff/00000000000abcff"));
	assert_true(exists_in(root, "data/ff/notes"));
	assert_int_equal(test_stats(env->c).chunks_cached, 2);
	read_chunk_ok(env->c, "kept", 0, 65);
	read_chunk_ok(env->c, "kept", 1, 65);
	assert_int_equal(test_stats(env->c).misses, 0);
}

/* Open a cache of size_max bytes with readahead of four chunks. */
static struct test_env *start_readahead_in(void **state, uint64_t size_max)
{
	struct test_env *env = test_env_create(state,
					       "cache-tests-store-XXXXXX", CS,
					       size_max, 60000);

	env->cfg.readahead = 4 * CS;
	assert_int_equal(test_env_open(env), 0);
	return env;
}

/* Open a cache of 64 chunks with readahead of four chunks. */
static struct test_env *start_readahead(void **state)
{
	return start_readahead_in(state, 64 * CS);
}

/* Wait up to two seconds for the origin to have served want reads. */
static unsigned wait_for_reads(struct fake_origin *fo, unsigned want)
{
	for (int i = 0; i < 200 && fake_calls(fo, FAKE_READ) < want; i++)
		usleep(10000);
	usleep(50000);		/* and let any extra read show */
	return fake_calls(fo, FAKE_READ);
}

static void test_store_readahead_sequential(void **state)
{
	struct test_env *env = start_readahead(state);
	char *buf = malloc(CS);
	struct cache_file *f;
	bool changed;

	assert_non_null(buf);
	test_put_pattern(env->fo, "f", 16 * CS, 40);
	assert_int_equal(cache_file_open(env->c, "f", O_RDONLY, &f, &changed),
			 0);
	/* Windows of 1, 2 and 4 chunks: 1, then 2-3, then 3-6. */
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(cache_file_read(f, buf, CS, (uint64_t)i * CS),
				 CS);
		assert_pattern(buf, CS, (uint64_t)i * CS, 40);
	}
	assert_int_equal(wait_for_reads(env->fo, 7), 7);
	assert_int_equal(test_stats(env->c).chunks_cached, 7);
	for (uint32_t i = 3; i < 7; i++) {
		assert_int_equal(cache_file_read(f, buf, CS, (uint64_t)i * CS),
				 CS);
		assert_pattern(buf, CS, (uint64_t)i * CS, 40);
	}
	/* Chunks read ahead are not fetched again by the reader. */
	assert_int_equal(wait_for_reads(env->fo, 11), 11);
	cache_file_release(f);
	free(buf);
}

/* Read "f", 64 chunks but the last 1000 bytes of pattern 42, chunk by
 * chunk from the start, checking every byte. */
static void read_run_file(struct cache *c, char *buf)
{
	struct cache_file *f;
	bool changed;

	assert_int_equal(cache_file_open(c, "f", O_RDONLY, &f, &changed), 0);
	for (uint32_t i = 0; i < 64; i++) {
		uint32_t want = i < 63 ? CS : CS - 1000;

		assert_int_equal(cache_file_read(f, buf, CS, (uint64_t)i * CS),
				 want);
		assert_pattern(buf, want, (uint64_t)i * CS, 42);
	}
	cache_file_release(f);
}

/*
 * Read a file of 64 chunks from start to end through readahead of 16
 * chunks over a streaming origin, whose next stream is cut after 2.5
 * chunks (when cut is set).  Every byte must arrive right, in at most
 * one request per two chunks, and no chunk may be fetched twice.  The
 * chunks are written while their 16 KiB pieces arrive: after a restart
 * each must pass its checksum, and the cut chunk must leave no bytes
 * reserved.
 */
static void read_through_runs(void **state, bool cut, bool retry)
{
	struct test_env *env = test_env_create(state,
					       "cache-tests-store-XXXXXX", CS,
					       128 * CS, 60000);
	char *buf = malloc(CS);
	struct cache_stats st;

	assert_non_null(buf);
	env->cfg.readahead = 16 * CS;
	fake_enable_stream(env->fo);
	assert_int_equal(test_env_open(env), 0);
	test_put_pattern(env->fo, "f", 64 * CS - 1000, 42);
	if (cut)
		fake_cut_next_stream(env->fo, 2 * CS + CS / 2, retry);
	read_run_file(env->c, buf);
	st = test_stats(env->c);
	assert_int_equal(st.chunks_cached, 64);
	assert_int_equal(st.bytes_cached, 64 * CS - 1000);
	assert_int_equal(st.bytes_from_origin, 64 * CS - 1000);
	assert_in_range(fake_calls(env->fo, FAKE_READ), 2, 32);

	test_env_close(env);
	assert_int_equal(test_env_open(env), 0);
	fake_reset_calls(env->fo);
	read_run_file(env->c, buf);
	st = test_stats(env->c);
	assert_int_equal(st.checksum_failures, 0);
	assert_int_equal(st.bytes_from_origin, 0);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
	free(buf);
}

static void test_store_readahead_runs(void **state)
{
	read_through_runs(state, false, false);
}

/* A retried request hands out the start of the run again. */
static void test_store_readahead_run_retried(void **state)
{
	read_through_runs(state, true, true);
}

/* The chunks a failed run completed stay; the rest is fetched again. */
static void test_store_readahead_run_failed(void **state)
{
	read_through_runs(state, true, false);
}

/* The kernel's parallel reads arrive out of order: still sequential. */
static void test_store_readahead_out_of_order(void **state)
{
	struct test_env *env = start_readahead(state);
	static const uint64_t offsets[] = { 0, CS, CS / 2, 2 * CS,
					    3 * CS / 2 };
	char buf[CS / 2];
	struct cache_file *f;
	bool changed;

	test_put_pattern(env->fo, "f", 16 * CS, 43);
	assert_int_equal(cache_file_open(env->c, "f", O_RDONLY, &f, &changed),
			 0);
	for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
		assert_int_equal(cache_file_read(f, buf, sizeof(buf),
						 offsets[i]), sizeof(buf));
		assert_pattern(buf, sizeof(buf), offsets[i], 43);
	}
	/* Windows of 1, 2, 2, 4 and 4 chunks: chunks 0-6 in all. */
	assert_int_equal(wait_for_reads(env->fo, 7), 7);
	assert_int_equal(test_stats(env->c).chunks_cached, 7);
	cache_file_release(f);
}

static void test_store_readahead_not_random(void **state)
{
	struct test_env *env = start_readahead(state);
	static const uint32_t chunks[] = { 5, 2, 9, 12 };
	char buf[4096];
	struct cache_file *f;
	bool changed;

	test_put_pattern(env->fo, "f", 16 * CS, 41);
	assert_int_equal(cache_file_open(env->c, "f", O_RDONLY, &f, &changed),
			 0);
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		uint64_t off = (uint64_t)chunks[i] * CS + 100;

		assert_int_equal(cache_file_read(f, buf, sizeof(buf), off),
				 sizeof(buf));
		assert_pattern(buf, sizeof(buf), off, 41);
	}
	assert_int_equal(wait_for_reads(env->fo, 4), 4);
	assert_int_equal(test_stats(env->c).chunks_cached, 4);
	cache_file_release(f);
}

static void test_store_read_fd_cached_range(void **state)
{
	struct test_env *env = start(state, 16 * CS);
	char *buf = malloc(2 * CS);
	struct cache_read_pin pin;
	struct cache_file *f;
	bool changed;
	size_t n = 0;
	int fd = -1;

	assert_non_null(buf);
	test_put_pattern(env->fo, "f", 3 * CS + 100, 50);
	assert_int_equal(cache_file_open(env->c, "f", O_RDONLY, &f, &changed),
			 0);
	/* Nothing cached yet: the caller must read through the engine. */
	assert_int_equal(cache_file_read_fd(f, 0, CS, &fd, &n, &pin), 0);
	assert_int_equal(cache_file_read(f, buf, 2 * CS, 0), 2 * CS);

	assert_int_equal(cache_file_read_fd(f, 100, CS, &fd, &n, &pin), 1);
	assert_int_equal(n, CS);
	/* The pin outlives the handle, as when the kernel releases the
	 * file while the reply is being sent. */
	cache_file_release(f);
	assert_int_equal(pread(fd, buf, n, 100), (ssize_t)n);
	assert_pattern(buf, n, 100, 50);
	cache_read_unpin(env->c, &pin);
	assert_int_equal(cache_file_open(env->c, "f", O_RDONLY, &f, &changed),
			 0);
	assert_int_equal(test_stats(env->c).bytes_zero_copy, CS);

	/* Half cached, half not: all or nothing. */
	assert_int_equal(cache_file_read_fd(f, CS + 10, CS, &fd, &n, &pin), 0);
	assert_int_equal(test_stats(env->c).bytes_zero_copy, CS);
	cache_file_release(f);
	free(buf);
}

/* Read chunks [from, to) of f in order through handle f. */
static void read_chunks_with(struct cache_file *f, uint32_t from, uint32_t to,
			     unsigned seed)
{
	char *buf = malloc(CS);

	assert_non_null(buf);
	for (uint32_t i = from; i < to; i++) {
		assert_int_equal(cache_file_read(f, buf, CS, (uint64_t)i * CS),
				 CS);
		assert_pattern(buf, CS, (uint64_t)i * CS, seed);
	}
	free(buf);
}

/* Read chunks [from, to) of path in order through one handle. */
static void read_chunks(struct cache *c, const char *path, uint32_t from,
			uint32_t to, unsigned seed)
{
	struct cache_file *f;
	bool changed;

	assert_int_equal(cache_file_open(c, path, O_RDONLY, &f, &changed), 0);
	read_chunks_with(f, from, to, seed);
	cache_file_release(f);
}

/*
 * A cache full of one file still reads ahead for the next: readahead
 * evicts the old chunks as any fetch does, and fetches no chunk twice.
 */
static void test_store_readahead_full_cache(void **state)
{
	struct test_env *env = start_readahead_in(state, 16 * CS);
	struct cache_stats before, after;

	test_put_pattern(env->fo, "old", 16 * CS, 60);
	test_put_pattern(env->fo, "f", 32 * CS, 61);
	read_chunks(env->c, "old", 0, 16, 60);
	assert_int_equal(wait_for_reads(env->fo, 16), 16);
	assert_int_equal(test_stats(env->c).bytes_cached, 16 * CS);

	before = test_stats(env->c);
	fake_reset_calls(env->fo);
	read_chunks(env->c, "f", 0, 32, 61);
	after = test_stats(env->c);
	assert_true(after.readaheads - before.readaheads >= 16);
	assert_int_equal(after.bytes_from_origin - before.bytes_from_origin,
			 32 * CS);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 32);
	assert_int_equal(after.bytes_cached, 16 * CS);
}

/*
 * Chunks that readahead fetched before their reader got to them outlive
 * older chunks the reader touched since: eviction passes over each of
 * them once.
 */
static void test_store_readahead_second_chance(void **state)
{
	/* A quarter of 8 chunks may be read ahead and not read yet. */
	struct test_env *env = start_readahead_in(state, 8 * CS);
	struct cache_file *f;
	bool changed;

	test_put_pattern(env->fo, "f", 8 * CS, 62);
	test_put_pattern(env->fo, "g", 8 * CS, 63);
	/* Windows of 1, 2 and 4 chunks, capped at two chunks ahead:
	 * chunks 3 and 4 arrive unread, for a reader that stays open. */
	assert_int_equal(cache_file_open(env->c, "f", O_RDONLY, &f, &changed),
			 0);
	read_chunks_with(f, 0, 3, 62);
	assert_int_equal(wait_for_reads(env->fo, 5), 5);
	/* Touch 2, 1 and 0 again, without readahead: the unread 3 and 4
	 * are now the oldest. */
	for (uint32_t i = 3; i-- > 0;)
		read_chunk_ok(env->c, "f", i, 62);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 5);

	/* Six chunks of g, last first so that nothing is read ahead,
	 * push three chunks out. */
	for (uint32_t i = 6; i-- > 0;)
		read_chunk_ok(env->c, "g", i, 63);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 11);
	assert_int_equal(test_stats(env->c).evictions, 3);

	fake_reset_calls(env->fo);
	read_chunk_ok(env->c, "f", 4, 62);
	read_chunk_ok(env->c, "f", 3, 62);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
	read_chunk_ok(env->c, "f", 2, 62);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 1);
	cache_file_release(f);
}

/*
 * Chunks read ahead for a reader that closed its file before reaching
 * them no longer take readahead's room, so the next reader gets
 * readahead in a cache that still has room.
 */
static void test_store_readahead_after_close(void **state)
{
	/* Four of 16 chunks may be read ahead and not read yet. */
	struct test_env *env = start_readahead_in(state, 16 * CS);
	struct cache_stats before;

	test_put_pattern(env->fo, "a", 8 * CS, 64);
	test_put_pattern(env->fo, "b", 8 * CS, 65);
	/* Windows of 1, 2 and 4: chunks 3 to 6 arrive unread. */
	read_chunks(env->c, "a", 0, 3, 64);
	assert_int_equal(wait_for_reads(env->fo, 7), 7);

	before = test_stats(env->c);
	read_chunks(env->c, "b", 0, 8, 65);
	assert_int_equal(wait_for_reads(env->fo, 15), 15);
	assert_true(test_stats(env->c).readaheads - before.readaheads >= 5);
	assert_int_equal(test_stats(env->c).evictions, 0);
}

/*
 * A full cache of 8 chunks reads ahead for two sequential readers, which
 * leaves each of them four chunks, but not for a third: whatever it
 * evicted could be a chunk that one of the others is still in.
 */
static void test_store_readahead_crowded_cache(void **state)
{
	struct test_env *env = start_readahead_in(state, 8 * CS);
	struct cache_file *x, *y, *z;
	bool changed;

	test_put_pattern(env->fo, "old", 8 * CS, 66);
	test_put_pattern(env->fo, "x", 2 * CS, 67);
	test_put_pattern(env->fo, "y", 2 * CS, 68);
	test_put_pattern(env->fo, "z", 8 * CS, 69);
	read_chunks(env->c, "old", 0, 8, 66);
	assert_int_equal(wait_for_reads(env->fo, 8), 8);
	assert_int_equal(test_stats(env->c).bytes_cached, 8 * CS);

	/* x and y read ahead: each first read queues chunk 1, which the
	 * second read takes.  Both stay open, still sequential. */
	fake_reset_calls(env->fo);
	assert_int_equal(cache_file_open(env->c, "x", O_RDONLY, &x, &changed),
			 0);
	assert_int_equal(cache_file_open(env->c, "y", O_RDONLY, &y, &changed),
			 0);
	read_chunks_with(x, 0, 1, 67);
	assert_int_equal(wait_for_reads(env->fo, 2), 2);
	read_chunks_with(x, 1, 2, 67);
	read_chunks_with(y, 0, 1, 68);
	assert_int_equal(wait_for_reads(env->fo, 4), 4);
	read_chunks_with(y, 1, 2, 68);

	/* The third reader gets no readahead: only z0 is fetched. */
	assert_int_equal(cache_file_open(env->c, "z", O_RDONLY, &z, &changed),
			 0);
	read_chunks_with(z, 0, 1, 69);
	assert_int_equal(wait_for_reads(env->fo, 6), 5);
	cache_file_release(z);
	cache_file_release(y);
	cache_file_release(x);
	assert_int_equal(test_stats(env->c).bytes_cached, 8 * CS);
}

/*
 * A zero-copy read of a chunk that readahead is fetching waits for the
 * fetch and pins the stored chunk, with no second request.  A read of a
 * chunk that nobody fetches pins nothing.
 */
static void test_store_read_fd_waits_for_fetch(void **state)
{
	struct test_env *env = start_readahead(state);
	struct cache_read_pin pin;
	struct cache_file *f;
	char *buf = malloc(CS);
	bool changed;
	size_t n;
	int fd;

	assert_non_null(buf);
	test_put_pattern(env->fo, "f", 16 * CS, 51);
	assert_int_equal(cache_file_open(env->c, "f", O_RDONLY, &f, &changed),
			 0);
	/* Each fetch takes 300 ms: the first read fetches chunk 0 and
	 * queues chunk 1, which is still being fetched after it. */
	fake_set_read_delay_ms(env->fo, 300);
	assert_int_equal(cache_file_read(f, buf, CS, 0), CS);
	assert_int_equal(cache_file_read_fd(f, CS, CS, &fd, &n, &pin), 1);
	assert_int_equal(n, CS);
	assert_int_equal(pread(fd, buf, n, CS), (ssize_t)n);
	assert_pattern(buf, n, CS, 51);
	cache_read_unpin(env->c, &pin);
	assert_int_equal(test_stats(env->c).bytes_zero_copy, CS);

	fake_set_read_delay_ms(env->fo, 0);
	assert_int_equal(cache_file_read_fd(f, 12 * CS, CS, &fd, &n, &pin), 0);
	assert_int_equal(test_stats(env->c).bytes_zero_copy, CS);
	cache_file_release(f);

	/* Once readahead is done, no chunk came twice. */
	wait_for_reads(env->fo, 4);
	assert_int_equal(test_stats(env->c).bytes_from_origin,
			 test_stats(env->c).chunks_cached * CS);
	free(buf);
}

struct waiting_read {
	struct cache_file *f;
	bool zero_copy;		/* cache_file_read_fd(), else cache_file_read() */
	char *buf;
	ssize_t ret;
	struct cache_read_pin pin;
	int fd;
	size_t n;
};

static void *read_chunk_1(void *arg)
{
	struct waiting_read *r = arg;

	if (r->zero_copy)
		r->ret = cache_file_read_fd(r->f, CS, CS, &r->fd, &r->n,
					    &r->pin);
	else
		r->ret = cache_file_read(r->f, r->buf, CS, CS);
	return NULL;
}

/*
 * A sequential reader that reaches a chunk still being fetched queues the
 * chunks after it before it waits, so that they arrive during the wait
 * rather than after it.  The origin keeps every read of chunk 1 waiting
 * until chunks 2 and 3 have been requested.
 */
static void readahead_before_wait(void **state, bool zero_copy)
{
	struct test_env *env = start_readahead(state);
	struct waiting_read r = { .zero_copy = zero_copy };
	struct cache_file *f;
	pthread_t thread;
	unsigned requested;
	bool changed;

	r.buf = malloc(CS);
	assert_non_null(r.buf);
	test_put_pattern(env->fo, "f", 16 * CS, 52);
	assert_int_equal(cache_file_open(env->c, "f", O_RDONLY, &f, &changed),
			 0);
	r.f = f;
	fake_hold_reads_from(env->fo, CS);
	/* Window of 1: chunk 0 comes, chunk 1 is asked for and held. */
	assert_int_equal(cache_file_read(f, r.buf, CS, 0), CS);
	assert_int_equal(wait_for_reads(env->fo, 2), 2);
	/* Window of 2: chunks 2 and 3 are asked for while chunk 1 is
	 * still held. */
	assert_int_equal(pthread_create(&thread, NULL, read_chunk_1, &r), 0);
	requested = wait_for_reads(env->fo, 4);
	fake_hold_reads_from(env->fo, UINT64_MAX);
	assert_int_equal(pthread_join(thread, NULL), 0);
	assert_int_equal(requested, 4);
	if (zero_copy) {
		assert_int_equal(r.ret, 1);
		assert_int_equal(r.n, CS);
		assert_int_equal(pread(r.fd, r.buf, CS, CS), CS);
		cache_read_unpin(env->c, &r.pin);
	} else {
		assert_int_equal(r.ret, CS);
	}
	assert_pattern(r.buf, CS, CS, 52);
	cache_file_release(f);
	assert_int_equal(wait_for_reads(env->fo, 4), 4);
	assert_int_equal(test_stats(env->c).bytes_from_origin, 4 * CS);
	free(r.buf);
}

static void test_store_readahead_before_wait(void **state)
{
	readahead_before_wait(state, false);
}

static void test_store_readahead_before_wait_zero_copy(void **state)
{
	readahead_before_wait(state, true);
}

/* An argument runs only the tests whose names match it (cmocka pattern). */
int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(
			test_store_tail_read_fetches_one_chunk,
			test_env_teardown),
		cmocka_unit_test_teardown(test_store_second_read_is_hit,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_store_readahead_before_wait,
					  test_env_teardown),
		cmocka_unit_test_teardown(
			test_store_readahead_before_wait_zero_copy,
			test_env_teardown),
		cmocka_unit_test_teardown(test_store_read_fd_waits_for_fetch,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_store_readahead_full_cache,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_store_readahead_second_chance,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_store_readahead_after_close,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_store_readahead_crowded_cache,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_store_stats_count_hits_misses,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_store_read_spans_chunks,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_store_budget_never_exceeded,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_store_lru_evicts_least_recent,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_store_open_file_chunks_evictable,
					  test_env_teardown),
		cmocka_unit_test_teardown(
			test_store_concurrent_readers_fetch_once,
			test_env_teardown),
		cmocka_unit_test_teardown(test_store_corrupt_chunk_refetched,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_store_read_fd_cached_range,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_store_index_full_serves_uncached,
					  test_env_teardown),
		cmocka_unit_test_teardown(
			test_store_index_rewritten_after_lost_evictions,
			test_env_teardown),
		cmocka_unit_test_teardown(test_store_readahead_sequential,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_store_readahead_not_random,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_store_readahead_out_of_order,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_store_readahead_runs, test_env_teardown),
		cmocka_unit_test_teardown(test_store_readahead_run_retried,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_store_readahead_run_failed,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_store_corrupt_chunk_concurrent,
					  test_env_teardown),
		cmocka_unit_test_teardown(
			test_store_origin_error_caches_nothing,
			test_env_teardown),
		cmocka_unit_test_teardown(
			test_store_unstorable_chunk_frees_budget,
			test_env_teardown),
		cmocka_unit_test_teardown(test_store_pressure_logged_once,
					  test_env_teardown),
		cmocka_unit_test_teardown(
			test_store_unlink_while_open_survives_crash,
			test_env_teardown),
		cmocka_unit_test_teardown(
			test_store_orphans_removed_after_crash,
			test_env_teardown),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	log_max_level = LOG_ERR;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
