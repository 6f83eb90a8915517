/* test_scale.c - a cache of 100,000 chunks: its memory, and a reopen that
 * reads the index only. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "cache.h"
#include "fake_origin.c"
#include "htab.h"
#include "internal.h"
#include "log.h"

#define CS (64u * 1024)
#define OBJECTS 1000u
#define CHUNKS_PER_OBJECT 100u
#define CHUNKS (OBJECTS * CHUNKS_PER_OBJECT)
#define OBJECT_SIZE ((uint64_t)CHUNKS_PER_OBJECT * CS)
/* The one object that also exists on the origin, to be read back. */
#define READ_PATH "file0000"
/* Heap of an open cache that does not grow with its size: struct cache,
 * the record buffer of the index (64 KiB), empty tables, the last partly
 * used chunk slab (up to 48 KiB) and the readahead threads.  Measured at
 * about 150 KiB with glibc 2.36. */
#define FIXED_MARGIN (256u * 1024)

static int teardown(void **state)
{
	test_env_free(*state);
	return 0;
}

/* Heap bytes that glibc's malloc takes for a request of n bytes: an
 * 8-byte header, rounded up to 16 bytes, at least 32. */
static size_t heap_cost(size_t n)
{
	size_t total = (n + 8 + 15) & ~(size_t)15;

	return total < 32 ? 32 : total;
}

static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void object_path(unsigned i, char *buf, size_t len)
{
	snprintf(buf, len, "file%04u", i);
}

/* Attributes of object i: those of the origin's file for READ_PATH, so
 * that a read after the reopen finds the same version there. */
static void object_attr(struct test_env *env, unsigned i,
			struct origin_attr *attr)
{
	struct origin *o = &env->fo->base;

	if (i == 0) {
		assert_int_equal(o->ops->stat(o, READ_PATH, attr), 0);
		return;
	}
	memset(attr, 0, sizeof(*attr));
	attr->mode = S_IFREG | 0644;
	attr->size = OBJECT_SIZE;
	attr->valid = ORIGIN_ATTR_MODE;
	snprintf(attr->version, sizeof(attr->version), "v%u", i);
}

/*
 * Fill the cache through the store's own calls, which log every object
 * and chunk to the real index.  The data files are created sparse: their
 * zeros match the checksum given to every chunk, so a chunk read later
 * verifies.  Fetching 6.4 GB through the origin instead would only cost
 * time and disk.
 */
static void fill_cache(struct test_env *env)
{
	struct cache *c = env->c;
	char *zeros = calloc(1, CS);
	uint64_t sum;
	char path[32];

	assert_non_null(zeros);
	sum = XXH3_64bits(zeros, CS);
	free(zeros);
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < OBJECTS; i++) {
		struct origin_attr attr;
		struct object *obj;

		object_path(i, path, sizeof(path));
		object_attr(env, i, &attr);
		obj = store_object_new(c, path, &attr);
		assert_non_null(obj);
		assert_true(store_object_open_fd(c, obj) >= 0);
		close(obj->fd);
		obj->fd = -1;
		for (uint32_t n = 0; n < CHUNKS_PER_OBJECT; n++) {
			assert_int_equal(store_reserve(c, CS), 0);
			assert_int_equal(store_insert_chunk(c, obj, n, CS,
							    sum), 0);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

/* Watch data/ and its 256 subfolders for opens and reads of anything in
 * them.  Returns a non-blocking inotify descriptor. */
static int watch_data_files(const char *root)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	char dir[PATH_MAX + 16];

	assert_true(fd >= 0);
	snprintf(dir, sizeof(dir), "%s/data", root);
	assert_true(inotify_add_watch(fd, dir, IN_OPEN | IN_ACCESS) >= 0);
	for (unsigned i = 0; i < 256; i++) {
		snprintf(dir, sizeof(dir), "%s/data/%02x", root, i);
		assert_true(inotify_add_watch(fd, dir,
					      IN_OPEN | IN_ACCESS) >= 0);
	}
	return fd;
}

/* Bytes of inotify events waiting on fd, 0 when there are none. */
static ssize_t pending_events(int fd)
{
	char buf[64 * 1024];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n < 0 && errno == EAGAIN)
		return 0;
	assert_true(n > 0);
	return n;
}

static void assert_every_object_cached(struct cache *c)
{
	char path[32];

	pthread_mutex_lock(&c->lock);
	assert_int_equal(c->objects.count, OBJECTS);
	for (unsigned i = 0; i < OBJECTS; i++) {
		struct object *obj;

		object_path(i, path, sizeof(path));
		obj = htab_get(&c->objects, path);
		assert_non_null(obj);
		assert_int_equal(obj->ncached, CHUNKS_PER_OBJECT);
		assert_int_equal(obj->attr.size, OBJECT_SIZE);
	}
	pthread_mutex_unlock(&c->lock);
}

/*
 * The heap an open cache of these objects may use.  Each chunk costs its
 * struct and a slot in the chunk array of its object.  Each object costs
 * its struct, path and chunk array, an entry in the path table and up to
 * two buckets of that table.
 */
static size_t heap_bound(void)
{
	size_t path_len = strlen(READ_PATH) + 1;
	size_t per_chunk = sizeof(struct chunk);
	size_t per_object = heap_cost(sizeof(struct object)) +
		heap_cost(path_len) +
		heap_cost(CHUNKS_PER_OBJECT * sizeof(struct chunk *)) +
		heap_cost(sizeof(struct htab_entry) + path_len) +
		2 * sizeof(struct htab_entry *);

	print_message("bound: %zu bytes per chunk, %zu per object of %u "
		      "chunks (their slots included), %u fixed\n", per_chunk,
		      per_object, CHUNKS_PER_OBJECT, FIXED_MARGIN);
	return CHUNKS * per_chunk + OBJECTS * per_object + FIXED_MARGIN;
}

static void test_scale_reopen_100k_chunks(void **state)
{
	struct test_env *env = test_env_new("cache-tests-scale-XXXXXX", CS,
					    16ull << 30, 60000);
	struct cache_stats st;
	size_t before, growth, bound;
	double start, elapsed;
	char *zeros = calloc(1, OBJECT_SIZE), *buf = malloc(CS);
	char root[PATH_MAX];
	int watch;

	assert_non_null(env);
	*state = env;
	assert_non_null(zeros);
	assert_non_null(buf);
	assert_int_equal(fake_put_file(env->fo, READ_PATH, zeros,
				       OBJECT_SIZE), 0);
	assert_int_equal(test_env_open(env), 0);
	fill_cache(env);
	snprintf(root, sizeof(root), "%s", cache_path(env->c));
	test_env_close(env);

	watch = watch_data_files(root);
	before = heap_in_use();
	start = now_s();
	assert_int_equal(test_env_open(env), 0);
	elapsed = now_s() - start;
	growth = heap_in_use() - before;

	cache_get_stats(env->c, &st);
	assert_int_equal(st.chunks_cached, CHUNKS);
	assert_int_equal(st.bytes_cached, (uint64_t)CHUNKS * CS);
	assert_int_equal(st.objects_cached, OBJECTS);
	assert_every_object_cached(env->c);
	assert_int_equal(pending_events(watch), 0);

	bound = heap_bound();
	print_message("reopen of %u chunks in %u objects: %.3f s, heap "
		      "+%zu bytes, %.1f bytes per chunk (bound %zu)\n",
		      CHUNKS, OBJECTS, elapsed, growth,
		      (double)growth / CHUNKS, bound);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	/* The allocators of AddressSanitizer and ThreadSanitizer are
	 * invisible to mallinfo2(). */
	assert_true(growth >= CHUNKS * sizeof(struct chunk));
	assert_true(growth <= bound);
#endif

	/* The watch works: a read opens a data file, and the chunk, never
	 * read before, verifies against the checksum in the index. */
	assert_int_equal(test_read_path(env->c, READ_PATH, buf, CS, 0), CS);
	assert_memory_equal(buf, zeros, CS);
	assert_int_equal(fake_calls(env->fo, FAKE_READ), 0);
	cache_get_stats(env->c, &st);
	assert_int_equal(st.checksum_failures, 0);
	assert_int_equal(st.hits, 1);
	assert_true(pending_events(watch) > 0);
	close(watch);
	free(buf);
	free(zeros);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_scale_reopen_100k_chunks,
					  teardown),
	};

	log_max_level = LOG_WARNING;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
