/*
 * writeback.c - the write-back queue: closed files waiting for upload.
 *
 * In write-back mode a close commits a file locally: its shadow file is
 * moved to dirty/SEQ and a PUT record naming SEQ and the path goes to the
 * journal.  The shadow stays in cache.shadows, so reads, stat and
 * listings see the new content, and a pending reference keeps it alive
 * until the upload.  Invariants, under cache.lock:
 *
 * - Every pending shadow is on wb_list, has a seq, a PUT record in the
 *   journal and its bytes in dirty/SEQ; it counts its size in
 *   dirty_bytes.  Nothing in dirty/ is ever evicted.
 * - A shadow is uploaded only when no handle has it open for writing, its
 *   quiet time (writeback_delay) has passed and its retry backoff is over,
 *   unless a flush asks for it now.  The uploader holds shadow.lock for
 *   the whole upload, so no write changes the bytes being sent.
 * - After the origin stored it, the new version is installed in the
 *   cache, then the DONE record is written and the file leaves dirty/.
 *   A crash in between uploads it again at the next start: uploads are
 *   idempotent, so nothing closed is ever lost.
 * - A file that fails to upload stays pending with its error and is
 *   retried with exponential backoff (1 s doubling to 5 min), forever.
 *
 * A daemon crash loses nothing that was closed: the data is in dirty/ in
 * the kernel's page cache even without fsync.  A machine crash can lose
 * what was not yet written back by the kernel, unless fsync returned.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "journal.h"
#include "internal.h"
#include "log.h"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS (5 * 60 * 1000)
/* A writer short of space waits this long for an upload to end. */
#define UPLOAD_WAIT_S 5

char *wb_dirty_name(uint64_t seq)
{
	char *name;

	if (asprintf(&name, "dirty/%016" PRIx64, seq) < 0)
		return NULL;
	return name;
}

/* Move the shadow's file into dirty/ under a new seq.  Lock held. */
static int make_pending(struct cache *c, struct shadow *sh)
{
	uint64_t seq = c->wb_seq + 1;
	char *name = wb_dirty_name(seq);

	if (!name)
		return -ENOMEM;
	if (renameat(c->root_fd, sh->file, c->root_fd, name) < 0) {
		int ret = -errno;

		log_err("cannot move %s into %s/dirty: %s", sh->path,
			c->root, strerror(errno));
		free(name);
		return ret;
	}
	free(sh->file);
	sh->file = name;
	c->wb_seq = seq;
	sh->seq = seq;
	sh->pending = true;
	sh->queued_ms = clock_now_ms();
	sh->refs++;		/* the pending reference */
	list_add_tail(&c->wb_list, &sh->wb);
	c->pending_count++;
	return 0;
}

/* Leave the queue: the upload is done or the file was removed.  The
 * file goes back to tmp/, where it lives as long as the shadow.  Lock
 * held; the caller drops the pending reference. */
static void leave_queue(struct cache *c, struct shadow *sh)
{
	char *name;
	int ret = journal_done(c->journal, sh->seq);

	/* NOTE: until wb_repair_journal() rewrites the journal, a restart
	 * replays the PUT of this file and logs its dirty/ file as missing. */
	if (ret < 0)
		store_note_write_error(c, "the write-back journal", ret);
	if (sh->cow_file) {
		/* The file is being changed again: its committed version in
		 * dirty/ is not needed any more. */
		unlinkat(c->root_fd, sh->file, 0);
		free(sh->file);
		sh->file = sh->cow_file;
		sh->cow_file = NULL;
	} else if (asprintf(&name, "tmp/w%d-%" PRIu64, (int)getpid(),
			    c->next_tmp++) >= 0) {
		if (renameat(c->root_fd, sh->file, c->root_fd, name) == 0) {
			free(sh->file);
			sh->file = name;
		} else {
			free(name);
		}
	}
	list_del(&sh->wb);
	c->dirty_bytes -= sh->counted;
	c->pending_count--;
	sh->counted = 0;
	sh->pending = false;
	sh->seq = 0;
	sh->attempts = 0;
	sh->last_error = 0;
	sh->last_detail[0] = '\0';
	pthread_cond_broadcast(&c->wb_done);
}

int wb_commit(struct cache *c, struct shadow *sh)
{
	bool journaled;
	int ret = 0;

	if (!sh->dirty)
		return 0;
	/* Copy in what the upload will need from the old version now,
	 * while it is still cached or on the origin. */
	ret = shadow_materialize_all(c, sh);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&c->lock);
	if (!sh->path) {
		sh->dirty = false;	/* unlinked while open */
		goto out_unlock;
	}
	if (!sh->pending) {
		ret = make_pending(c, sh);
		if (ret < 0)
			goto out_unlock;
	} else if (sh->cow_file) {
		/* Replace the version committed before at once. */
		if (renameat(c->root_fd, sh->cow_file, c->root_fd,
			     sh->file) < 0) {
			ret = -errno;
			log_err("cannot move %s/%s over %s/%s for %s: %s",
				c->root, sh->cow_file, c->root, sh->file,
				sh->path, strerror(errno));
			goto out_unlock;
		}
		free(sh->cow_file);
		sh->cow_file = NULL;
	}
	sh->attr.size = sh->size;
	ret = journal_put(c->journal, sh->seq, sh->path, &sh->attr);
	journaled = ret == 0;
	if (journaled)
		store_note_write_ok(c);
	else
		store_note_write_error(c, "the write-back journal", ret);
	c->dirty_bytes += sh->size - sh->counted;
	sh->counted = sh->size;
	sh->ready_ms = clock_now_ms() + c->cfg.writeback_delay_ms;
	sh->dirty = false;
	pthread_cond_broadcast(&c->wb_wake);
	pthread_mutex_unlock(&c->lock);
	if (journaled)
		return 0;
	/*
	 * A crash would lose a file that the journal does not list, so
	 * store it on the origin now, as write-through does.  When that
	 * fails too, the close gets the journal's error.  The file stays
	 * queued and is retried, and wb_repair_journal() records it once
	 * the journal can be written again.
	 */
	return wb_upload(c, sh) < 0 ? ret : 0;
out_unlock:
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static uint64_t backoff_ms(unsigned attempts)
{
	uint64_t ms = BACKOFF_MIN_MS;

	while (--attempts > 0 && ms < BACKOFF_MAX_MS)
		ms *= 2;
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

static bool is_permanent(int err)
{
	return err == -EACCES || err == -EPERM || err == -EROFS ||
	       err == -EFBIG || err == -ENAMETOOLONG || err == -EINVAL;
}

/* When sh may be uploaded next: after its quiet time and its backoff. */
static uint64_t next_try_at(const struct shadow *sh)
{
	return sh->ready_ms > sh->next_try_ms ? sh->ready_ms :
						sh->next_try_ms;
}

/* Record a failed upload of path.  Lock held. */
static void upload_failed(struct cache *c, struct shadow *sh,
			  const char *path, int err)
{
	uint64_t now = clock_now_ms();

	sh->attempts++;
	sh->last_error = err;
	snprintf(sh->last_detail, sizeof(sh->last_detail), "%s",
		 origin_detail());
	sh->next_try_ms = now + backoff_ms(sh->attempts);
	sh->tried_gen = c->flush_gen;
	c->upload_retries++;
	if (sh->attempts == 1 || sh->attempts % 10 == 0 || is_permanent(err))
		log_limited(is_permanent(err) ? LOG_ERR : LOG_WARNING,
			    "cannot upload %s (attempt %u): %s; it stays in "
			    "the write-back journal and is retried in %" PRIu64
			    " s", path, sh->attempts, strerror(-err),
			    (next_try_at(sh) - now + 999) / 1000);
	pthread_cond_broadcast(&c->wb_done);
}

int wb_upload(struct cache *c, struct shadow *sh)
{
	char prior[ORIGIN_VERSION_MAX];
	struct origin_attr result, meta;
	uint64_t size;
	char *path;
	int ret;

	pthread_mutex_lock(&c->lock);
	path = sh->pending && sh->path ? strdup(sh->path) : NULL;
	meta = sh->attr;
	size = sh->size;
	pthread_mutex_unlock(&c->lock);
	if (!path)
		return 0;

	origin_clear_detail();
	ret = shadow_upload(c, sh, path, &meta, size, &result, prior);

	pthread_mutex_lock(&c->lock);
	if (ret < 0) {
		upload_failed(c, sh, path, ret);
		goto out_unlock;
	}
	if (!sh->pending || !sh->path || strcmp(sh->path, path) != 0) {
		/* Renamed or removed during the upload: the key just written
		 * is stale.  A renamed file is uploaded again. */
		pthread_mutex_unlock(&c->lock);
		c->origin->ops->unlink(c->origin, path);
		pthread_mutex_lock(&c->lock);
		sh->ready_ms = 0;
		goto out_unlock;
	}
	pthread_mutex_unlock(&c->lock);

	shadow_install(c, sh, path, &result, prior);

	pthread_mutex_lock(&c->lock);
	if (sh->pending) {
		c->uploads_done++;
		leave_queue(c, sh);
		shadow_put(c, sh);	/* the pending reference */
	}
	log_debug("uploaded %s (%" PRIu64 " bytes)", path, size);
out_unlock:
	pthread_mutex_unlock(&c->lock);
	free(path);
	return ret;
}

void wb_cancel(struct cache *c, struct shadow *sh)
{
	if (!sh->pending)
		return;
	leave_queue(c, sh);
	shadow_put(c, sh);
}

void wb_moved(struct cache *c, struct shadow *sh)
{
	int ret;

	if (!sh->pending || !sh->path)
		return;
	/* TODO: a crash before wb_repair_journal() rewrites the journal
	 * uploads the file under its old path. */
	ret = journal_move(c->journal, sh->seq, sh->path);
	if (ret < 0)
		store_note_write_error(c, "the write-back journal", ret);
}

void wb_repair_journal(struct cache *c)
{
	struct list_node *n;
	int ret;

	if (!c->journal || !journal_lost(c->journal))
		return;
	/* A running rename may not have moved its pending files yet, and
	 * the rewrite would record them at their old paths after its RENAME
	 * record, which replay does not move.  The next write tries again. */
	if (c->renames_running)
		return;
	ret = journal_rewrite_begin(c->journal);
	for (n = c->wb_list.next; ret == 0 && n != &c->wb_list; n = n->next) {
		struct shadow *sh = list_entry(n, struct shadow, wb);

		if (sh->path)
			ret = journal_put(c->journal, sh->seq, sh->path,
					  &sh->attr);
	}
	if (ret == 0)
		ret = journal_rewrite_end(c->journal, 1);
	else
		journal_rewrite_end(c->journal, 0);
	if (ret == 0)
		log_info("rewrote the write-back journal of %s, which lost "
			 "records while cache_dir was full: %" PRIu64
			 " files pending", c->root, c->pending_count);
}

/* Copy the first keep bytes of from_fd into to_fd. */
static int copy_bytes(int from_fd, int to_fd, uint64_t keep)
{
	loff_t in = 0, out = 0;

	while ((uint64_t)in < keep) {
		ssize_t n = copy_file_range(from_fd, &in, to_fd, &out,
					    keep - in, 0);

		if (n < 0)
			return -errno;
		if (n == 0)
			break;	/* the file is shorter than keep */
	}
	return 0;
}

/*
 * Give a pending file a copy of its own before its first change since
 * the last commit.  dirty/SEQ then keeps the committed version whole
 * until the next commit renames the copy over it, so a crash while a
 * program rewrites the file replays the version last closed, never a
 * mix or a cut file.  keep is how many bytes the change keeps (0 for a
 * truncation to 0).  The copy takes over the number of sh->fd with
 * dup2(), because readers of a pending file may read sh->fd without
 * sh->lock.  sh->lock held, cache.lock not.
 *
 * A failed copy fails the change and counts as a write error of
 * cache_dir (store_note_write_error()), which logs a full disk once.
 *
 * NOTE: a file with exported descriptors is changed in place, because
 * those write to its file directly.  The copy does not evict cached
 * chunks to make room, as a write into the shadow does.
 */
int wb_before_change(struct cache *c, struct shadow *sh, uint64_t keep)
{
	uint64_t tmp_id;
	char *name;
	bool needed;
	int fd, ret;

	pthread_mutex_lock(&c->lock);
	needed = sh->pending && !sh->cow_file && sh->exported == 0;
	tmp_id = c->next_tmp++;
	pthread_mutex_unlock(&c->lock);
	if (!needed)
		return 0;
	if (asprintf(&name, "tmp/w%d-%" PRIu64, (int)getpid(), tmp_id) < 0)
		return -ENOMEM;
	fd = openat(c->root_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600);
	ret = fd < 0 ? -errno :
		copy_bytes(sh->fd, fd, keep < sh->size ? keep : sh->size);
	pthread_mutex_lock(&c->lock);
	if (ret == 0 && sh->pending && dup2(fd, sh->fd) < 0)
		ret = -errno;
	if (ret == 0 && sh->pending) {
		sh->cow_file = name;
		name = NULL;
	}
	if (ret < 0)
		store_note_write_error(c, "a copy of a pending file", ret);
	pthread_mutex_unlock(&c->lock);
	if (fd >= 0)
		close(fd);
	if (name) {
		/* Failed, or the file left the queue meanwhile and is
		 * changed in place. */
		unlinkat(c->root_fd, name, 0);
		free(name);
	}
	return ret;
}

void wb_writer_closed(struct cache *c, struct shadow *sh)
{
	if (sh->pending)
		pthread_cond_broadcast(&c->wb_wake);
}

static bool is_ready(const struct cache *c, const struct shadow *sh,
		     uint64_t now)
{
	bool flushing = sh->flush_gen > sh->tried_gen;

	if (sh->uploading || sh->writers > 0)
		return false;
	if (flushing)
		return true;
	return now >= sh->ready_ms && now >= sh->next_try_ms;
}

/* The next shadow to upload, or NULL; *wait_ms receives how long until
 * one may be ready.  Lock held. */
static struct shadow *next_ready(struct cache *c, uint64_t *wait_ms)
{
	uint64_t now = clock_now_ms();
	struct list_node *n;

	*wait_ms = 60000;
	for (n = c->wb_list.next; n != &c->wb_list; n = n->next) {
		struct shadow *sh = list_entry(n, struct shadow, wb);
		uint64_t at;

		if (is_ready(c, sh, now))
			return sh;
		if (sh->uploading || sh->writers > 0)
			continue;
		at = next_try_at(sh);
		if (at > now && at - now < *wait_ms)
			*wait_ms = at - now;
	}
	return NULL;
}

static void timed_wait(pthread_cond_t *cond, pthread_mutex_t *lock,
		       uint64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(cond, lock, &ts);
}

static void *uploader(void *arg)
{
	struct cache *c = arg;
	struct shadow *sh;
	uint64_t wait_ms;

	pthread_mutex_lock(&c->lock);
	while (!c->wb_stop) {
		sh = next_ready(c, &wait_ms);
		if (!sh) {
			timed_wait(&c->wb_wake, &c->lock, wait_ms);
			continue;
		}
		sh->uploading = true;
		sh->tried_gen = c->flush_gen;
		sh->refs++;
		pthread_mutex_unlock(&c->lock);

		pthread_mutex_lock(&sh->lock);
		wb_upload(c, sh);
		pthread_mutex_unlock(&sh->lock);

		pthread_mutex_lock(&c->lock);
		sh->uploading = false;
		pthread_cond_broadcast(&c->wb_done);
		shadow_put(c, sh);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static bool has_uploadable(struct cache *c)
{
	struct list_node *n;

	for (n = c->wb_list.next; n != &c->wb_list; n = n->next) {
		struct shadow *sh = list_entry(n, struct shadow, wb);

		/* A file the origin rejects for good frees no room. */
		if (sh->writers == 0 && !is_permanent(sh->last_error))
			return true;
	}
	return false;
}

void wb_wait_for_room(struct cache *c, size_t len)
{
	bool waited = false;

	pthread_mutex_lock(&c->lock);
	while (c->dirty_bytes + len > c->cfg.max_dirty && !c->wb_stop &&
	       has_uploadable(c)) {
		if (!waited)
			log_info("%" PRIu64 " bytes wait for upload "
				 "(max_dirty %" PRIu64 "): writers wait",
				 c->dirty_bytes, c->cfg.max_dirty);
		waited = true;
		/* Upload now rather than after the quiet time. */
		for (struct list_node *n = c->wb_list.next;
		     n != &c->wb_list; n = n->next)
			list_entry(n, struct shadow, wb)->ready_ms = 0;
		pthread_cond_broadcast(&c->wb_wake);
		timed_wait(&c->wb_done, &c->lock, 1000);
	}
	pthread_mutex_unlock(&c->lock);
}

bool wb_wait_for_upload(struct cache *c)
{
	uint64_t done;
	bool progress = false;

	pthread_mutex_lock(&c->lock);
	done = c->uploads_done;
	for (int i = 0; i < UPLOAD_WAIT_S && !progress && !c->wb_stop &&
			has_uploadable(c); i++) {
		/* Upload now rather than after the quiet time. */
		for (struct list_node *n = c->wb_list.next;
		     n != &c->wb_list; n = n->next)
			list_entry(n, struct shadow, wb)->ready_ms = 0;
		pthread_cond_broadcast(&c->wb_wake);
		timed_wait(&c->wb_done, &c->lock, 1000);
		progress = c->uploads_done != done;
	}
	pthread_mutex_unlock(&c->lock);
	return progress;
}

static bool matches(const struct shadow *sh, const char *path)
{
	return path[0] == '\0' || (sh->path && (strcmp(sh->path, path) == 0 ||
						path_is_below(sh->path, path)));
}

struct flush_count {
	uint64_t files, bytes, untried;
};

static struct flush_count count_flush(struct cache *c, const char *path,
				      uint64_t gen)
{
	struct flush_count fc = { 0 };
	struct list_node *n;

	for (n = c->wb_list.next; n != &c->wb_list; n = n->next) {
		struct shadow *sh = list_entry(n, struct shadow, wb);

		if (sh->flush_gen != gen || !matches(sh, path))
			continue;
		fc.files++;
		fc.bytes += sh->size;
		if (sh->tried_gen < gen || sh->uploading)
			fc.untried++;
	}
	return fc;
}

int cache_flush(struct cache *c, const char *path, cache_flush_fn fn,
		void *arg)
{
	struct flush_count fc;
	uint64_t gen, total = 0;
	struct list_node *n;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	gen = ++c->flush_gen;
	for (n = c->wb_list.next; n != &c->wb_list; n = n->next) {
		struct shadow *sh = list_entry(n, struct shadow, wb);

		if (!matches(sh, path) || sh->writers > 0)
			continue;
		sh->flush_gen = gen;
		total += sh->size;
	}
	pthread_cond_broadcast(&c->wb_wake);
	for (;;) {
		fc = count_flush(c, path, gen);
		if (fc.files == 0)
			break;
		if (fc.untried == 0) {
			ret = -EIO;	/* each was tried and failed */
			break;
		}
		if (fn) {
			pthread_mutex_unlock(&c->lock);
			fn(arg, fc.files, fc.bytes, total);
			pthread_mutex_lock(&c->lock);
		}
		timed_wait(&c->wb_done, &c->lock, 500);
	}
	pthread_mutex_unlock(&c->lock);
	if (fn)
		fn(arg, fc.files, fc.bytes, total);
	return ret;
}

void wb_stats(struct cache *c, struct cache_stats *st)
{
	struct list_node *n;

	st->dirty_bytes = c->dirty_bytes;
	st->max_dirty = c->cfg.max_dirty;
	st->uploads_pending = c->pending_count;
	st->uploads_done = c->uploads_done;
	st->upload_retries = c->upload_retries;
	for (n = c->wb_list.next; n != &c->wb_list; n = n->next)
		if (list_entry(n, struct shadow, wb)->last_error)
			st->uploads_failed++;
}

/* What an operator sees of a pending file.  Lock held. */
static void describe_upload(const struct shadow *sh, uint64_t now,
			    struct cache_upload *u)
{
	uint64_t at = next_try_at(sh);

	u->size = sh->size;
	u->age_ms = now > sh->queued_ms ? now - sh->queued_ms : 0;
	u->attempts = sh->attempts;
	u->last_error = sh->last_error;
	memcpy(u->last_detail, sh->last_detail, sizeof(u->last_detail));
	u->wait_ms = 0;
	if (sh->uploading) {
		u->state = CACHE_UPLOAD_SENDING;
	} else if (sh->writers > 0) {
		u->state = CACHE_UPLOAD_OPEN;
	} else if (at > now) {
		u->state = sh->last_error ? CACHE_UPLOAD_RETRY :
					    CACHE_UPLOAD_QUIET;
		u->wait_ms = at - now;
	} else {
		u->state = CACHE_UPLOAD_DUE;
	}
}

int cache_list_uploads(struct cache *c, struct cache_upload **out,
		       size_t *count)
{
	struct cache_upload *list;
	uint64_t now = clock_now_ms();
	struct list_node *n;
	size_t i = 0;

	pthread_mutex_lock(&c->lock);
	list = calloc(c->pending_count ? c->pending_count : 1, sizeof(*list));
	for (n = c->wb_list.next; list && n != &c->wb_list; n = n->next) {
		struct shadow *sh = list_entry(n, struct shadow, wb);

		list[i].path = strdup(sh->path ? sh->path : "");
		if (!list[i].path)
			break;
		describe_upload(sh, now, &list[i++]);
	}
	pthread_mutex_unlock(&c->lock);
	if (!list || n != &c->wb_list) {
		cache_free_uploads(list, i);
		return -ENOMEM;
	}
	*out = list;
	*count = i;
	return 0;
}

void cache_free_uploads(struct cache_upload *list, size_t count)
{
	for (size_t i = 0; list && i < count; i++)
		free(list[i].path);
	free(list);
}

void wb_usage(struct cache *c, const char *path, struct cache_usage *u)
{
	struct list_node *n;

	for (n = c->wb_list.next; n != &c->wb_list; n = n->next) {
		struct shadow *sh = list_entry(n, struct shadow, wb);

		if (!matches(sh, path))
			continue;
		u->dirty_files++;
		u->dirty_bytes += sh->size;
	}
}

void wb_set_delay(struct cache *c, uint64_t delay_ms)
{
	uint64_t old = c->cfg.writeback_delay_ms;
	struct list_node *n;

	c->cfg.writeback_delay_ms = delay_ms;
	for (n = c->wb_list.next; n != &c->wb_list; n = n->next) {
		struct shadow *sh = list_entry(n, struct shadow, wb);

		/* ready_ms is the last close plus the old delay, or 0 when
		 * the upload must start at once. */
		if (sh->ready_ms != 0 && sh->ready_ms >= old)
			sh->ready_ms = sh->ready_ms - old + delay_ms;
	}
	pthread_cond_broadcast(&c->wb_wake);
	pthread_cond_broadcast(&c->wb_done);
}

/* Replay: a journaled file becomes a pending shadow again. */

struct replay {
	struct cache *c;
	uint64_t *lost;		/* seqs missing or replaced: DONE them */
	size_t nlost;
};

static void remember_dropped(struct replay *r, uint64_t seq)
{
	uint64_t *l = realloc(r->lost, (r->nlost + 1) * sizeof(*l));

	if (l) {
		r->lost = l;
		r->lost[r->nlost++] = seq;
	}
}

/* Forget a replayed file that a later record of its path replaces.  The
 * journal is not open yet: its DONE record is written after the replay. */
static void drop_replayed(struct replay *r, struct shadow *old)
{
	struct cache *c = r->c;

	remember_dropped(r, old->seq);
	list_del(&old->wb);
	c->dirty_bytes -= old->counted;
	c->pending_count--;
	shadow_free(c, old, false);
}

static void replay_pending(void *arg, uint64_t seq, const char *path,
			   const struct origin_attr *meta)
{
	struct replay *r = arg;
	struct cache *c = r->c;
	struct shadow *sh, *old;
	char *name = wb_dirty_name(seq);
	struct stat st;
	int fd;

	fd = name ? openat(c->root_fd, name, O_RDWR | O_CLOEXEC) : -1;
	if (fd < 0 || fstat(fd, &st) < 0) {
		log_limited(LOG_ERR, "the write-back journal lists %s, but "
			    "%s/%s is missing: that change cannot be uploaded",
			    path, c->root, name ? name : "dirty/?");
		remember_dropped(r, seq);
		if (fd >= 0)
			close(fd);
		free(name);
		return;
	}
	if (meta->size != JOURNAL_SIZE_UNKNOWN &&
	    meta->size != (uint64_t)st.st_size)
		log_limited(LOG_WARNING, "the write-back journal recorded %"
			    PRIu64 " bytes for %s, but %s/%s has %" PRIu64
			    ": the file is uploaded as it is now", meta->size,
			    path, c->root, name, (uint64_t)st.st_size);
	sh = calloc(1, sizeof(*sh));
	if (!sh) {
		close(fd);
		free(name);
		return;
	}
	pthread_mutex_init(&sh->lock, NULL);
	list_init(&sh->wb);
	sh->commit_gen = UINT64_MAX;
	sh->fd = fd;
	sh->file = name;
	sh->path = strdup(path);
	sh->attr = *meta;
	sh->attr.mode = S_IFREG | (meta->mode & 07777);
	sh->size = st.st_size;
	sh->attr.size = st.st_size;
	sh->have = calloc(1, 1);
	sh->modified = true;
	sh->seq = seq;
	sh->pending = true;
	/* The journal has no time: the age counts from this start. */
	sh->queued_ms = clock_now_ms();
	sh->refs = 1;		/* the pending reference */
	sh->counted = st.st_size;
	c->dirty_bytes += st.st_size;
	c->pending_count++;
	list_add_tail(&c->wb_list, &sh->wb);
	if (seq > c->wb_seq)
		c->wb_seq = seq;
	old = htab_get(&c->shadows, path);
	htab_put(&c->shadows, path, sh);
	if (old)
		drop_replayed(r, old);	/* a newer version of the same path */
}

static void drop_cached_version(struct cache *c, const char *path)
{
	struct object *obj = htab_get(&c->objects, path);

	if (obj)
		store_object_detach(c, obj);
}

static bool rename_is_final(int err)
{
	return err == 0 || err == -ENOENT || err == -ENOTEMPTY ||
	       err == -EEXIST || err == -ENOTDIR || err == -EISDIR ||
	       err == -EINVAL || is_permanent(err);
}

/*
 * Complete on the origin the renames that a crash interrupted, before
 * any upload starts: an S3 rename is a copy and a delete, so both names
 * may exist.  A rename whose `from` is gone has completed.  The cached
 * versions of both names are dropped, because the crash may have come
 * before the cache moved them.  A rename that fails for a reason that may
 * pass stays in the journal and is tried again at the next start.
 */
static void finish_renames(struct cache *c)
{
	size_t i = 0;

	for (;;) {
		size_t count;
		const struct journal_rename *rn =
			journal_renames(c->journal, &count) + i;
		int ret;

		if (i >= count)
			break;
		if (rn->replaced) {
			/* The journal dropped the file that it replaces. */
			char *name = wb_dirty_name(rn->replaced);

			if (name)
				unlinkat(c->root_fd, name, 0);
			free(name);
		}
		ret = c->origin->ops->rename(c->origin, rn->from, rn->to, 0);
		if (!rename_is_final(ret)) {
			log_warn("cannot complete the interrupted rename of %s "
				 "to %s on the origin: %s; it is tried again "
				 "at the next start", rn->from, rn->to,
				 strerror(-ret));
			i++;
			continue;
		}
		log_info("completed the interrupted rename of %s to %s on the "
			 "origin: %s", rn->from, rn->to,
			 ret == 0 ? "moved" : ret == -ENOENT ?
			 "already moved" : strerror(-ret));
		drop_cached_version(c, rn->from);
		drop_cached_version(c, rn->to);
		/* Removes rn from the list, so i stays. */
		ret = journal_done(c->journal, rn->seq);
		if (ret < 0)
			store_note_write_error(c, "the write-back journal",
					       ret);
	}
}

int wb_open(struct cache *c, char *err, size_t errlen)
{
	struct replay r = { .c = c };
	char *path;
	int ret;

	list_init(&c->wb_list);
	pthread_cond_init(&c->wb_wake, NULL);
	pthread_cond_init(&c->wb_done, NULL);
	if (mkdirat(c->root_fd, "dirty", 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s/dirty: %s", c->root,
			 strerror(errno));
		return -errno;
	}
	if (asprintf(&path, "%s/journal", c->root) < 0)
		return -ENOMEM;
	ret = journal_open(path, replay_pending, &r, &c->journal, err,
			   errlen);
	free(path);
	if (ret < 0)
		return ret;
	if (journal_max_seq(c->journal) > c->wb_seq)
		c->wb_seq = journal_max_seq(c->journal);
	for (size_t i = 0; i < r.nlost; i++)
		journal_done(c->journal, r.lost[i]);
	free(r.lost);
	finish_renames(c);
	if (c->pending_count)
		log_info("recovered the write-back journal %s/journal: %"
			 PRIu64 " pending uploads, %" PRIu64 " bytes", c->root,
			 c->pending_count, c->dirty_bytes);

	for (; c->wb_nthreads < WB_THREADS; c->wb_nthreads++) {
		ret = pthread_create(&c->wb_threads[c->wb_nthreads], NULL,
				     uploader, c);
		if (ret) {
			snprintf(err, errlen, "cannot start an upload thread: "
				 "%s", strerror(ret));
			return -ret;
		}
	}
	return 0;
}

void wb_close(struct cache *c)
{
	pthread_mutex_lock(&c->lock);
	c->wb_stop = true;
	pthread_cond_broadcast(&c->wb_wake);
	pthread_cond_broadcast(&c->wb_done);
	pthread_mutex_unlock(&c->lock);
	for (unsigned i = 0; i < c->wb_nthreads; i++)
		pthread_join(c->wb_threads[i], NULL);
	c->wb_nthreads = 0;
	pthread_mutex_lock(&c->lock);
	wb_repair_journal(c);
	pthread_mutex_unlock(&c->lock);
	if (c->pending_count)
		log_debug("%" PRIu64 " files stay in the write-back journal "
			  "of %s", c->pending_count, c->root);
	journal_close(c->journal);
	c->journal = NULL;
}
