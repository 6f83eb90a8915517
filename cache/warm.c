/*
 * warm.c - fetching files and whole trees into the cache ahead of their
 * readers (nearfs-ctl warm).
 *
 * cache_warm() lists the trees through the listing cache, sums the sizes
 * of the files and keeps those that fit in cache_size.  A few threads
 * then fetch them in pieces of up to RA_RUN_BYTES, so that the pieces of
 * one large file are fetched in parallel too.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "internal.h"
#include "log.h"

/* Milliseconds between two progress reports. */
#define WARM_REPORT_MS 500
/* Failed files logged one by one at most; the rest are counted. */
#define WARM_LOG_FAILURES 10

int cache_fetch(struct cache *c, const char *path, uint64_t offset,
		uint64_t len, uint64_t *missing)
{
	struct object *obj;
	bool changed, local;
	int ret;

	*missing = 0;
	pthread_mutex_lock(&c->lock);
	local = htab_get(&c->shadows, path) != NULL;
	pthread_mutex_unlock(&c->lock);
	if (local)
		return -EBUSY;
	ret = cache_acquire_object(c, path, &obj, &changed);
	if (ret < 0)
		return ret;
	ret = store_fetch(c, obj, offset, len, missing);
	pthread_mutex_lock(&c->lock);
	store_object_put(c, obj);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

struct warm_file {
	char *path;
	uint64_t size;
	uint64_t pieces_left;	/* pieces not fetched yet */
	bool failed;		/* counted in files_failed */
};

/* One warm: its files, the next piece to fetch, and the progress. */
struct warm {
	struct cache *c;
	struct warm_file *files;	/* sorted by path */
	size_t count, alloc;
	uint64_t piece;		/* bytes fetched by one call */

	cache_warm_fn fn;	/* the caller's progress report */
	void *arg;
	uint64_t listed_ms;	/* when the listing was last reported */

	pthread_mutex_t lock;	/* protects what follows */
	pthread_cond_t changed;	/* a piece was done, or a worker ended */
	size_t next_file;	/* the next piece: file and offset */
	uint64_t next_offset;
	unsigned running;	/* workers that have not ended */
	bool cancelled;		/* fn asked to stop: no new piece starts */
	struct cache_warm_progress progress;
};

static int add_file(struct warm *w, const char *path, uint64_t size)
{
	struct warm_file *f;

	if (w->count == w->alloc) {
		size_t n = w->alloc ? w->alloc * 2 : 64;

		f = realloc(w->files, n * sizeof(*f));
		if (!f)
			return -ENOMEM;
		w->files = f;
		w->alloc = n;
	}
	f = &w->files[w->count];
	memset(f, 0, sizeof(*f));
	f->path = strdup(path);
	if (!f->path)
		return -ENOMEM;
	f->size = size;
	w->count++;
	return 0;
}

/* Folders still to be listed, in the order found. */
struct dir_queue {
	char **dirs;
	size_t head, count, alloc;
};

static int queue_dir(struct dir_queue *q, const char *dir)
{
	if (q->count == q->alloc) {
		size_t n = q->alloc ? q->alloc * 2 : 16;
		char **d = realloc(q->dirs, n * sizeof(*d));

		if (!d)
			return -ENOMEM;
		q->dirs = d;
		q->alloc = n;
	}
	q->dirs[q->count] = strdup(dir);
	if (!q->dirs[q->count])
		return -ENOMEM;
	q->count++;
	return 0;
}

struct walk {
	struct warm *w;
	struct dir_queue *queue;
	const char *dir;
};

/* Sort an entry of a listing: files join the set and folders the queue.
 * Symbolic links are not followed. */
static int walk_entry(void *arg, const char *name,
		      const struct origin_attr *attr)
{
	struct walk *wk = arg;
	char *path;
	int ret = 0;

	if (!S_ISREG(attr->mode) && !S_ISDIR(attr->mode))
		return 0;
	if (asprintf(&path, "%s%s%s", wk->dir, wk->dir[0] ? "/" : "",
		     name) < 0)
		return -ENOMEM;
	if (S_ISREG(attr->mode))
		ret = add_file(wk->w, path, attr->size);
	else
		ret = queue_dir(wk->queue, path);
	free(path);
	return ret;
}

static uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Report the files found so far, every WARM_REPORT_MS at most, so that
 * the listing of a large tree shows progress too.  Runs before the
 * workers start, so w->lock is not needed. */
static void report_listing(struct warm *w)
{
	struct cache_warm_progress p = { .listing = true };
	uint64_t now = monotonic_ms();

	if (!w->fn || now - w->listed_ms < WARM_REPORT_MS)
		return;
	w->listed_ms = now;
	p.files_total = w->count;
	for (size_t i = 0; i < w->count; i++)
		p.bytes_total += w->files[i].size;
	if (w->fn(w->arg, &p) != 0)
		w->cancelled = true;
}

/* Add the file at path, or every file below the folder at path. */
static int walk_path(struct warm *w, const char *path, char *err,
		     size_t errlen)
{
	struct dir_queue q = { 0 };
	struct origin_attr attr;
	int ret;

	ret = cache_getattr(w->c, path, &attr);
	if (ret < 0) {
		snprintf(err, errlen, "cannot warm /%s: %s", path,
			 strerror(-ret));
		return ret;
	}
	if (S_ISREG(attr.mode))
		return add_file(w, path, attr.size);
	if (!S_ISDIR(attr.mode))
		return 0;
	ret = queue_dir(&q, path);
	while (ret == 0 && q.head < q.count && !w->cancelled) {
		struct walk wk = { .w = w, .queue = &q, .dir = q.dirs[q.head] };

		ret = cache_readdir(w->c, wk.dir, walk_entry, &wk);
		if (ret < 0 && ret != -ENOMEM)
			snprintf(err, errlen, "cannot list /%s: %s", wk.dir,
				 strerror(-ret));
		q.head++;
		report_listing(w);
	}
	if (ret == -ENOMEM)
		snprintf(err, errlen, "out of memory while listing /%s",
			 path);
	for (size_t i = 0; i < q.count; i++)
		free(q.dirs[i]);
	free(q.dirs);
	return ret;
}

static int file_cmp(const void *a, const void *b)
{
	return strcmp(((const struct warm_file *)a)->path,
		      ((const struct warm_file *)b)->path);
}

/* Sort the files and drop those named twice (a file given alone and
 * again in its folder). */
static void sort_unique(struct warm *w)
{
	size_t kept = 0;

	if (w->count > 1)
		qsort(w->files, w->count, sizeof(*w->files), file_cmp);
	for (size_t i = 0; i < w->count; i++) {
		if (kept && strcmp(w->files[kept - 1].path,
				   w->files[i].path) == 0) {
			free(w->files[i].path);
			continue;
		}
		w->files[kept++] = w->files[i];
	}
	w->count = kept;
}

/*
 * Keep the files, in path order, while their sum fits in size_max, and
 * count the others as skipped, because fetching more than the cache can
 * contain would evict what was fetched first.  Sets the totals and the
 * pieces.
 */
static void choose_files(struct warm *w, uint64_t size_max)
{
	struct cache_warm_progress *p = &w->progress;
	size_t kept = 0;

	for (size_t i = 0; i < w->count; i++) {
		struct warm_file f = w->files[i];

		if (p->bytes_total + f.size > size_max) {
			p->files_skipped++;
			p->bytes_skipped += f.size;
			free(f.path);
			continue;
		}
		p->files_total++;
		p->bytes_total += f.size;
		f.pieces_left = f.size ? (f.size + w->piece - 1) / w->piece : 1;
		w->files[kept++] = f;
	}
	w->count = kept;
}

/* Take the next piece: file *index, [*offset, *offset + *len).  Returns
 * false when none is left.  w->lock held. */
static bool next_piece(struct warm *w, size_t *index, uint64_t *offset,
		       uint64_t *len)
{
	struct warm_file *f;

	if (w->next_file >= w->count || w->cancelled)
		return false;
	f = &w->files[w->next_file];
	*index = w->next_file;
	*offset = w->next_offset;
	*len = f->size - w->next_offset < w->piece ?
	       f->size - w->next_offset : w->piece;
	w->next_offset += w->piece;
	if (w->next_offset >= f->size) {
		w->next_file++;
		w->next_offset = 0;
	}
	return true;
}

/* Count a fetched piece; ret and missing are what cache_fetch()
 * returned.  w->lock held. */
static void piece_done(struct warm *w, size_t index, uint64_t len, int ret,
		       uint64_t missing)
{
	struct cache_warm_progress *p = &w->progress;
	struct warm_file *f = &w->files[index];
	const char *why = NULL;

	/* A file open for writing or waiting for upload is local. */
	if (ret == -EBUSY)
		ret = 0;
	else if (ret == 0 && missing > 0)
		why = "not kept in the cache: no room left (min_free, or "
		      "other reads took it)";
	if (ret < 0)
		why = strerror(-ret);
	if (why && !f->failed) {
		f->failed = true;
		p->files_failed++;
		if (!p->error[0])
			snprintf(p->error, sizeof(p->error), "/%s: %s",
				 f->path, why);
		if (p->files_failed <= WARM_LOG_FAILURES)
			log_warn("warm: /%s: %s", f->path, why);
	}
	p->bytes_done += len;
	if (--f->pieces_left == 0)
		p->files_done++;
	pthread_cond_broadcast(&w->changed);
}

static void *warm_worker(void *arg)
{
	struct warm *w = arg;
	uint64_t offset, len, missing;
	size_t index;
	int ret;

	pthread_mutex_lock(&w->lock);
	while (next_piece(w, &index, &offset, &len)) {
		const char *path = w->files[index].path;

		pthread_mutex_unlock(&w->lock);
		ret = cache_fetch(w->c, path, offset, len, &missing);
		pthread_mutex_lock(&w->lock);
		piece_done(w, index, len, ret, missing);
	}
	w->running--;
	pthread_cond_broadcast(&w->changed);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Call fn with a copy of the progress, and stop handing out pieces when
 * it returns non-zero.  w->lock held, and dropped for the call. */
static void report(struct warm *w)
{
	struct cache_warm_progress copy = w->progress;
	int stop;

	if (!w->fn)
		return;
	pthread_mutex_unlock(&w->lock);
	stop = w->fn(w->arg, &copy);
	pthread_mutex_lock(&w->lock);
	if (stop)
		w->cancelled = true;
}

static void wait_report(pthread_cond_t *cond, pthread_mutex_t *lock)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += WARM_REPORT_MS * 1000000L;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(cond, lock, &ts);
}

/* Fetch the chosen files with up to threads workers, reporting to fn. */
static void fetch_files(struct warm *w, unsigned threads)
{
	pthread_t *ids = calloc(threads ? threads : 1, sizeof(*ids));
	unsigned started = 0;

	pthread_mutex_lock(&w->lock);
	report(w);
	for (; ids && !w->cancelled && started < threads &&
	       started < w->count; started++) {
		if (pthread_create(&ids[started], NULL, warm_worker, w) != 0)
			break;
		w->running++;
	}
	if (started == 0 && !w->cancelled) {
		/* No thread: fetch on this one. */
		w->running++;
		pthread_mutex_unlock(&w->lock);
		warm_worker(w);
		pthread_mutex_lock(&w->lock);
	}
	while (w->running > 0) {
		wait_report(&w->changed, &w->lock);
		report(w);
	}
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(ids[i], NULL);
	free(ids);
}

int cache_warm(struct cache *c, const char *const *paths, size_t count,
	       unsigned threads, cache_warm_fn fn, void *arg, char *err,
	       size_t errlen)
{
	struct warm w = { .c = c, .fn = fn, .arg = arg };
	struct cache_config cfg;
	int ret = 0;

	err[0] = '\0';
	w.listed_ms = monotonic_ms();
	cache_get_config(c, &cfg);
	w.piece = RA_RUN_BYTES > cfg.chunk_size ?
		  RA_RUN_BYTES / cfg.chunk_size * cfg.chunk_size :
		  cfg.chunk_size;
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.changed, NULL);
	for (size_t i = 0; i < count && ret == 0 && !w.cancelled; i++)
		ret = walk_path(&w, paths[i], err, errlen);
	if (ret == 0 && !w.cancelled) {
		sort_unique(&w);
		choose_files(&w, cfg.size_max);
		fetch_files(&w, threads);
		if (fn)
			fn(arg, &w.progress);
		if (w.progress.files_failed > WARM_LOG_FAILURES)
			log_warn("warm: %" PRIu64 " more files failed",
				 w.progress.files_failed - WARM_LOG_FAILURES);
	}
	if (ret == 0 && w.cancelled)
		ret = -ECANCELED;
	else if (ret == 0 && w.progress.files_failed)
		ret = -EIO;
	else if (ret == 0 && w.progress.files_skipped)
		ret = -ENOSPC;
	for (size_t i = 0; i < w.count; i++)
		free(w.files[i].path);
	free(w.files);
	pthread_cond_destroy(&w.changed);
	pthread_mutex_destroy(&w.lock);
	return ret;
}
