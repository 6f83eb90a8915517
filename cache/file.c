/*
 * file.c - open files: reads through the chunk store, writes into a
 * shadow file, and the write-through commit.
 *
 * A file open for writing has one shadow, shared by every handle of that
 * path, so that two programs writing the same file see each other's bytes.
 * The commit uploads the whole shadow (materializing what was not written
 * from the cached or origin version first) and, once the origin accepted
 * it, installs a copy of it as the new cached version.  When the origin
 * fails, the error goes to the caller and the cache keeps the old version:
 * it never contains a version that the origin lacks.
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

#include "checksum.h"
#include "clock.h"
#include "internal.h"
#include "journal.h"
#include "log.h"

static uint32_t chunk_count(const struct cache *c, uint64_t size)
{
	return (size + c->cfg.chunk_size - 1) / c->cfg.chunk_size;
}

/* Create the shadow of path, starting from base (NULL: empty file).
 * Lock held. */
struct shadow *shadow_new(struct cache *c, const char *path,
			  struct object *base, const struct origin_attr *attr)
{
	struct shadow *sh = calloc(1, sizeof(*sh));

	if (!sh)
		return NULL;
	if (asprintf(&sh->file, "tmp/w%d-%" PRIu64, (int)getpid(),
		     c->next_tmp++) < 0) {
		sh->file = NULL;
		goto out_free;
	}
	sh->fd = openat(c->root_fd, sh->file, O_RDWR | O_CREAT | O_EXCL |
			O_CLOEXEC, 0600);
	if (sh->fd < 0) {
		log_err("cannot create %s/%s for a file open for writing: %s",
			c->root, sh->file, strerror(errno));
		goto out_free;
	}
	list_init(&sh->wb);
	sh->commit_gen = UINT64_MAX;
	sh->path = strdup(path);
	sh->attr = *attr;
	if (base) {
		memcpy(sh->origin_version, base->attr.version,
		       sizeof(sh->origin_version));
		sh->size = base->attr.size;
		sh->base_limit = base->attr.size;
		sh->nhave = chunk_count(c, base->attr.size);
		sh->base = base;
		base->refs++;
	}
	sh->have = calloc(sh->nhave / 8 + 1, 1);
	if (!sh->path || !sh->have || ftruncate(sh->fd, sh->size) < 0 ||
	    htab_put(&c->shadows, path, sh) < 0)
		goto out_close;
	pthread_mutex_init(&sh->lock, NULL);
	sh->refs = 1;
	if (base && !base->shadow)
		base->shadow = sh;
	return sh;
out_close:
	if (base)
		base->refs--;
	close(sh->fd);
	unlinkat(c->root_fd, sh->file, 0);
	free(sh->have);
	free(sh->path);
out_free:
	free(sh->file);
	free(sh);
	return NULL;
}

/* Make obj (NULL: none) the follower of sh, dropping the old one.  Lock
 * held. */
static void set_follower(struct cache *c, struct shadow *sh,
			 struct object *obj)
{
	struct object *old = sh->follower;

	if (old == obj)
		return;
	if (obj) {
		obj->refs++;
		if (!obj->shadow)
			obj->shadow = sh;
	}
	sh->follower = obj;
	if (old) {
		if (old->shadow == sh)
			old->shadow = NULL;
		store_object_put(c, old);
	}
}

void shadow_put(struct cache *c, struct shadow *sh)
{
	if (--sh->refs > 0)
		return;
	if (sh->path && htab_get(&c->shadows, sh->path) == sh)
		htab_remove(&c->shadows, sh->path);
	if (sh->dirty && sh->path) {
		log_warn("discarding changes to %s that the origin did not "
			 "accept", sh->path);
		if (!sh->base) {
			/* Created here and never stored: it does not exist. */
			meta_attr_set_negative(c, sh->path);
			meta_listing_remove(c, sh->path);
		} else {
			sh->base->discarded = true;
		}
		cache_notify(c, sh->path);
	}
	if (sh->base) {
		if (sh->base->shadow == sh)
			sh->base->shadow = NULL;
		store_object_put(c, sh->base);
		sh->base = NULL;
	}
	set_follower(c, sh, NULL);
	shadow_free(c, sh, false);
}

void shadow_free(struct cache *c, struct shadow *sh, bool keep_file)
{
	if (sh->base && sh->base->shadow == sh)
		sh->base->shadow = NULL;
	/* shadow_put() dropped the follower; at close, objects go too. */
	if (sh->follower && sh->follower->shadow == sh)
		sh->follower->shadow = NULL;
	pthread_mutex_destroy(&sh->lock);
	close(sh->fd);
	if (!keep_file && sh->file)
		unlinkat(c->root_fd, sh->file, 0);
	if (sh->cow_file)
		unlinkat(c->root_fd, sh->cow_file, 0);
	free(sh->cow_file);
	free(sh->file);
	free(sh->have);
	free(sh->changed);
	free(sh->path);
	free(sh);
}

static bool has_chunk(const struct shadow *sh, uint32_t i)
{
	return i >= sh->nhave || (sh->have[i / 8] & (1u << (i % 8)));
}

static void set_chunk(struct shadow *sh, uint32_t i)
{
	if (i < sh->nhave)
		sh->have[i / 8] |= 1u << (i % 8);
}

/*
 * Make room in cache_dir after a write of len bytes into a shadow failed
 * with err: evict cached chunks and, in write-back mode, wait for an
 * upload of a pending file to end.  Returns whether the write is worth
 * another try.  sh->lock held.
 */
static bool make_room(struct cache *c, size_t len, int err)
{
	bool freed;

	if (err != -ENOSPC && err != -EDQUOT)
		return false;
	pthread_mutex_lock(&c->lock);
	freed = store_evict_bytes(c, len);
	pthread_mutex_unlock(&c->lock);
	if (!freed && c->cfg.write_mode == WRITE_BACK)
		freed = wb_wait_for_upload(c);
	return freed;
}

static void note_shadow_error(struct cache *c, int err)
{
	pthread_mutex_lock(&c->lock);
	store_note_write_error(c, "a file open for writing", err);
	pthread_mutex_unlock(&c->lock);
}

/* Write all of buf at off of the shadow file, making room as
 * make_room() does.  Returns 0 or -errno.  sh->lock held. */
static int shadow_write_all(struct cache *c, struct shadow *sh,
			    const void *buf, size_t len, uint64_t off)
{
	int ret;

	while ((ret = store_pwrite(sh->fd, buf, len, off)) < 0)
		if (!make_room(c, len, ret)) {
			note_shadow_error(c, ret);
			return ret;
		}
	return 0;
}

/* pwrite() into the shadow file, making room as make_room() does.
 * Returns the bytes written or -errno.  sh->lock held. */
static ssize_t shadow_pwrite(struct cache *c, struct shadow *sh,
			     const void *buf, size_t len, uint64_t off)
{
	ssize_t n;

	while ((n = pwrite(sh->fd, buf, len, off)) < 0) {
		int err = -errno;

		if (err == -EINTR)
			continue;
		if (!make_room(c, len, err)) {
			note_shadow_error(c, err);
			return err;
		}
	}
	return n;
}

/* Copy chunk i of the base version into the shadow.  sh->lock held. */
static int materialize(struct cache *c, struct shadow *sh, uint32_t i)
{
	uint64_t start = (uint64_t)i * c->cfg.chunk_size;
	uint64_t len;
	char *buf;
	int ret;

	if (has_chunk(sh, i))
		return 0;
	if (start >= sh->base_limit) {
		set_chunk(sh, i);
		return 0;
	}
	len = sh->base_limit - start;
	if (len > c->cfg.chunk_size)
		len = c->cfg.chunk_size;
	buf = calloc(1, len);
	if (!buf)
		return -ENOMEM;
	ret = store_read(c, sh->base, buf, len, start);
	if (ret >= 0)
		ret = shadow_write_all(c, sh, buf, len, start);
	free(buf);
	if (ret < 0)
		return ret;
	set_chunk(sh, i);
	return 0;
}

static int materialize_range(struct cache *c, struct shadow *sh,
			     uint64_t offset, uint64_t len, bool partial_only)
{
	uint32_t cs = c->cfg.chunk_size;
	uint64_t end = offset + len;

	for (uint64_t pos = offset - offset % cs; pos < end; pos += cs) {
		uint32_t i = pos / cs;
		uint64_t chunk_end = pos + cs;
		int ret;

		if (chunk_end > sh->base_limit)
			chunk_end = sh->base_limit;
		/* A chunk the range covers whole needs no copy. */
		if (partial_only && pos >= offset && chunk_end <= end) {
			set_chunk(sh, i);
			continue;
		}
		ret = materialize(c, sh, i);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int shadow_materialize_all(struct cache *c, struct shadow *sh)
{
	return materialize_range(c, sh, 0, sh->base_limit, false);
}

int cache_file_open(struct cache *c, const char *path, int flags,
		    struct cache_file **out, bool *changed)
{
	bool writable = (flags & O_ACCMODE) != O_RDONLY;
	struct cache_file *f;
	struct shadow *sh;
	int ret;

	*changed = false;
	if (writable && c->cfg.read_only)
		return -EROFS;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->c = c;
	f->writable = writable;

	pthread_mutex_lock(&c->lock);
	sh = htab_get(&c->shadows, path);
	if (sh)
		sh->refs++;
	pthread_mutex_unlock(&c->lock);
	if (!sh) {
		ret = cache_acquire_object(c, path, &f->obj, changed);
		if (ret < 0)
			goto out_free;
	}
	if (writable && !sh) {
		pthread_mutex_lock(&c->lock);
		sh = htab_get(&c->shadows, path);
		if (sh)
			sh->refs++;
		else
			sh = shadow_new(c, path, f->obj, &f->obj->attr);
		pthread_mutex_unlock(&c->lock);
		if (!sh) {
			ret = -EIO;
			goto out_put;
		}
	}
	f->sh = sh;
	if (writable) {
		pthread_mutex_lock(&c->lock);
		sh->writers++;
		pthread_mutex_unlock(&c->lock);
	}
	if (writable && (flags & O_TRUNC)) {
		ret = cache_file_truncate(f, 0);
		if (ret < 0)
			goto out_put;
	}
	*out = f;
	return 0;
out_put:
	cache_file_release(f);
	return ret;
out_free:
	free(f);
	return ret;
}

int cache_file_create(struct cache *c, const char *path, mode_t mode,
		      uid_t uid, gid_t gid, struct cache_file **out)
{
	struct origin_attr attr;
	struct cache_file *f;
	struct shadow *sh;

	if (c->cfg.read_only)
		return -EROFS;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	cache_default_attr(&attr, S_IFREG | (mode & 07777), uid, gid);

	pthread_mutex_lock(&c->lock);
	sh = htab_get(&c->shadows, path);
	if (sh) {
		sh->refs++;
	} else {
		sh = shadow_new(c, path, NULL, &attr);
		if (sh)
			sh->dirty = true;	/* the file itself is new */
	}
	if (sh) {
		sh->writers++;
		cache_record_created(c, path, &attr);
	}
	pthread_mutex_unlock(&c->lock);
	if (!sh) {
		free(f);
		return -EIO;
	}
	f->c = c;
	f->sh = sh;
	f->writable = true;
	*out = f;
	return 0;
}

static ssize_t read_unlocked(struct shadow *sh, void *buf, size_t len,
			     uint64_t offset)
{
	uint64_t size = sh->size;
	ssize_t n;

	if (offset >= size)
		return 0;
	if (len > size - offset)
		len = size - offset;
	n = pread(sh->fd, buf, len, offset);
	return n < 0 ? -errno : n;
}

static ssize_t read_shadow(struct cache *c, struct shadow *sh, void *buf,
			   size_t len, uint64_t offset)
{
	bool uploading;
	ssize_t n;
	int ret;

	/*
	 * A file waiting for upload is complete, and the uploader does not
	 * change it while it has the lock, so a reader need not wait for
	 * the upload to end.  A writer making the first change since the
	 * commit may have the lock too.  The reader then gets the committed
	 * version, or the copy that wb_before_change() swapped in while the
	 * write goes on, as any read that overlaps a write may.  pending,
	 * and dirty while pending, change under c->lock.
	 */
	if (pthread_mutex_trylock(&sh->lock) != 0) {
		pthread_mutex_lock(&c->lock);
		uploading = sh->pending && !sh->dirty;
		pthread_mutex_unlock(&c->lock);
		if (uploading)
			return read_unlocked(sh, buf, len, offset);
		pthread_mutex_lock(&sh->lock);
	}
	if (offset >= sh->size) {
		n = 0;
		goto out_unlock;
	}
	if (len > sh->size - offset)
		len = sh->size - offset;
	if (!sh->modified && sh->base) {
		/* Nothing written yet: read the version itself. */
		n = store_read(c, sh->base, buf, len, offset);
		goto out_unlock;
	}
	ret = materialize_range(c, sh, offset, len, false);
	if (ret < 0) {
		n = ret;
		goto out_unlock;
	}
	n = pread(sh->fd, buf, len, offset);
	if (n < 0)
		n = -errno;
out_unlock:
	pthread_mutex_unlock(&sh->lock);
	return n;
}

static int changed_while_read(void)
{
	log_warn("a file changed on the origin while it was being read: "
		 "returning EIO rather than mixing versions");
	return -EIO;
}

/* The version old of f changed on the origin during a read: pin the new
 * version if nothing was returned from the old one yet. */
static int switch_version(struct cache_file *f, struct object *old)
{
	struct cache *c = f->c;
	struct object *obj;
	char *path = NULL;
	bool changed, served;
	int ret;

	pthread_mutex_lock(&c->lock);
	if (f->obj != old) {
		pthread_mutex_unlock(&c->lock);
		return 0;	/* another read switched already */
	}
	/* Stale also for a handle that fails: the next open checks the
	 * version on the origin and reads the new one. */
	old->checked_ms = 0;
	if (old->path && !f->served && !old->served && !old->kept)
		path = strdup(old->path);
	pthread_mutex_unlock(&c->lock);
	if (!path)
		return changed_while_read();
	ret = cache_acquire_object(c, path, &obj, &changed);
	free(path);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&c->lock);
	/* Another read may have returned bytes of old meanwhile. */
	served = f->obj == old && (f->served || old->served);
	if (f->obj == old && !served) {
		store_object_put(c, f->obj);
		f->obj = obj;
	} else {
		store_object_put(c, obj);
	}
	pthread_mutex_unlock(&c->lock);
	return served ? changed_while_read() : 0;
}

/*
 * Record that a read returns bytes of obj, unless another read switched
 * f to a newer version since the read pinned obj: the caller then reads
 * again.  With switch_version(), this keeps a handle from returning
 * bytes of two versions.
 */
static bool claim_version(struct cache_file *f, struct object *obj)
{
	bool current;

	pthread_mutex_lock(&f->c->lock);
	current = f->obj == obj;
	if (current) {
		f->served = true;
		obj->served = true;
	}
	pthread_mutex_unlock(&f->c->lock);
	return current;
}

/*
 * Queue the chunks of obj ahead of a sequential reader.  The window starts
 * at one chunk and doubles each time the reader enters a chunk it has not
 * entered before, up to the readahead option and RA_WINDOW_MAX.  A first
 * read counts as sequential when it starts the file.  The kernel sends its
 * own readahead as parallel requests that arrive out of order.  So a read
 * still counts as sequential when it ends at most one chunk before where
 * the reader has got to, or starts at most one chunk after it.  A read
 * anywhere else turns readahead off until the reader is sequential
 * again.  On entering a chunk the reader also has the
 * kernel read that chunk and the next from the data file, where they are
 * cached.  Reads of one handle may run in parallel: the window is kept
 * under the cache lock.
 *
 * A read that is about to wait for the origin calls this with before set,
 * so that the window moves on while it waits.  That call does nothing for
 * the first read of a handle, which may be all it ever reads.  Calling it
 * again for the same bytes changes nothing.  Returns whether it ran.
 */
static bool read_ahead(struct cache_file *f, struct object *obj,
		       uint64_t offset, size_t n, bool before)
{
	uint32_t cs = f->c->cfg.chunk_size;
	uint32_t last;
	uint64_t max = f->c->cfg.readahead / cs;
	uint32_t window;
	bool sequential, was_reading_ahead, entered;

	if (offset >= obj->attr.size || n == 0)
		return true;
	if (n > obj->attr.size - offset)
		n = obj->attr.size - offset;
	last = (offset + n - 1) / cs;
	if (max > RA_WINDOW_MAX)
		max = RA_WINDOW_MAX;
	pthread_mutex_lock(&f->c->lock);
	if (before && !f->has_read) {
		pthread_mutex_unlock(&f->c->lock);
		return false;
	}
	if (f->has_read && offset == f->last_read_offset &&
	    n == f->last_read_len) {
		/* The same read again, or another read of the same bytes:
		 * the reader has not moved. */
		pthread_mutex_unlock(&f->c->lock);
		return true;
	}
	f->last_read_offset = offset;
	f->last_read_len = n;
	if (f->has_read)
		sequential = offset <= f->next_offset + cs &&
			     offset + n + cs >= f->next_offset;
	else
		sequential = offset == 0;
	entered = !sequential || last >= f->ra_entered;
	if (entered)
		f->ra_entered = last + 1;
	if (!sequential || offset + n > f->next_offset)
		f->next_offset = offset + n;
	was_reading_ahead = f->ra_window != 0;
	if (!sequential || max == 0)
		f->ra_window = 0;
	else if (f->ra_window == 0)
		f->ra_window = 1;
	else if (entered && f->ra_window < max)
		f->ra_window *= 2;
	if (f->ra_window > max)
		f->ra_window = max;
	window = f->ra_window;
	if (was_reading_ahead != (window != 0))
		f->c->ra_readers += window ? 1 : -1;
	f->has_read = true;
	pthread_mutex_unlock(&f->c->lock);
	if (window)
		store_prefetch(f->c, obj, last + 1, window);
	if (window && entered)
		store_willneed(f->c, obj, last, RA_WILLNEED_CHUNKS);
	return true;
}

/*
 * Make a read-only handle see what the writers of this mount wrote to its
 * file, as every descriptor of a local file does.  A version that a local
 * commit replaced leads to the version the commit made, and the shadow
 * that writes on top of that version is read in its place, also after a
 * rename or an unlink of the file.  A version replaced on the origin,
 * unlinked or replaced by a rename has no successor, so the handle keeps
 * reading what it opened.  Lock held.
 */
static void follow_local_writes(struct cache_file *f)
{
	struct cache *c = f->c;
	struct object *obj = f->obj;
	struct shadow *sh;

	if (f->sh || !obj)
		return;
	while (obj->rewritten_as)
		obj = obj->rewritten_as;
	if (obj != f->obj) {
		obj->refs++;
		store_object_put(c, f->obj);
		f->obj = obj;
	}
	sh = obj->shadow;
	if (sh) {
		sh->refs++;
		__atomic_store_n(&f->sh, sh, __ATOMIC_RELEASE);
	}
}

/* Return the shadow f reads, following local writes first. */
static struct shadow *file_shadow(struct cache_file *f)
{
	struct shadow *sh = __atomic_load_n(&f->sh, __ATOMIC_ACQUIRE);

	if (sh || f->writable)
		return sh;
	pthread_mutex_lock(&f->c->lock);
	follow_local_writes(f);
	sh = f->sh;
	pthread_mutex_unlock(&f->c->lock);
	return sh;
}

/*
 * Take a reference on the version f reads now.  Reads of one handle may
 * run in parallel, and one of them may switch f to a new version and drop
 * the old one while another still reads it.
 */
static struct object *pin_version(struct cache_file *f)
{
	struct object *obj;

	pthread_mutex_lock(&f->c->lock);
	obj = f->obj;
	obj->refs++;
	pthread_mutex_unlock(&f->c->lock);
	return obj;
}

static void unpin_version(struct cache_file *f, struct object *obj)
{
	pthread_mutex_lock(&f->c->lock);
	store_object_put(f->c, obj);
	pthread_mutex_unlock(&f->c->lock);
}

/*
 * Return whether a newer version replaced obj.  The kernel keeps one
 * size and one page cache per inode.  Reads of obj would put its bytes
 * into the page cache that handles of the new version read, and the
 * kernel would cut them short or pad them with zeros at the new size.
 */
static bool superseded(struct cache *c, struct object *obj)
{
	bool old;

	pthread_mutex_lock(&c->lock);
	old = obj->superseded;
	pthread_mutex_unlock(&c->lock);
	return old;
}

ssize_t cache_file_read(struct cache_file *f, void *buf, size_t len,
			uint64_t offset)
{
	struct shadow *sh = file_shadow(f);
	struct object *obj;
	ssize_t n;
	bool ahead = false;

	if (sh)
		return read_shadow(f->c, sh, buf, len, offset);
	obj = pin_version(f);
	for (int attempt = 0; attempt < 3; attempt++) {
		/* Such a version is read as one that changed on the origin:
		 * a handle that returned none of it switches to the new one,
		 * the others get EIO. */
		if (superseded(f->c, obj)) {
			n = -ESTALE;
		} else {
			if (attempt == 0)
				ahead = read_ahead(f, obj, offset, len, true);
			n = store_read(f->c, obj, buf, len, offset);
		}
		if (n == -ESTALE)
			n = switch_version(f, obj);
		else if (n > 0 && !claim_version(f, obj))
			n = 0;	/* read again, from the new version */
		else
			break;
		unpin_version(f, obj);
		obj = pin_version(f);
		if (n < 0)
			break;
		n = -EIO;
	}
	if (n > 0 && !ahead)
		read_ahead(f, obj, offset, n, false);
	unpin_version(f, obj);
	return n;
}

/* When the bitmap cannot grow, forget the origin's version: the next
 * store then sends the whole file. */
void shadow_mark_changed(struct cache *c, struct shadow *sh, uint64_t offset,
			 uint64_t end)
{
	uint32_t cs = c->cfg.chunk_size;
	uint64_t last;

	if (end <= offset)
		return;
	last = (end - 1) / cs;
	if (last >= sh->nchanged) {
		uint32_t n = (last / 64 + 1) * 64;
		uint8_t *bits = realloc(sh->changed, n / 8);

		if (!bits || last >= UINT32_MAX - 64) {
			sh->origin_version[0] = '\0';
			return;
		}
		memset(bits + sh->nchanged / 8, 0, (n - sh->nchanged) / 8);
		sh->changed = bits;
		sh->nchanged = n;
	}
	for (uint64_t i = offset / cs; i <= last; i++)
		sh->changed[i / 8] |= 1u << (i % 8);
}

void shadow_touch(struct shadow *sh)
{
	sh->dirty = true;
	sh->modified = true;
	sh->write_gen++;
	clock_gettime(CLOCK_REALTIME, &sh->attr.mtime);
	sh->attr.valid |= ORIGIN_ATTR_MTIME;
}

int shadow_upload(struct cache *c, struct shadow *sh, const char *path,
		  const struct origin_attr *meta, uint64_t size,
		  struct origin_attr *result, char prior[ORIGIN_VERSION_MAX])
{
	const struct origin_ops *ops = c->origin->ops;
	int ret = -ESTALE;

	memcpy(prior, sh->origin_version, ORIGIN_VERSION_MAX);
	if (ops->write_chunks && sh->origin_version[0] && sh->changed) {
		ret = ops->write_chunks(c->origin, path, sh->fd, size,
					c->cfg.chunk_size, sh->changed,
					sh->nchanged, sh->origin_version,
					meta, result);
		if (ret == -ESTALE)
			log_warn("%s changed or was removed on the origin since "
				 "this mount read it: writing this mount's "
				 "version over it whole (the last upload wins)",
				 path);
	}
	if (ret == -ESTALE)
		ret = ops->write(c->origin, path, sh->fd, size, meta, result);
	if (ret < 0)
		return ret;
	if (sh->changed)
		memset(sh->changed, 0, sh->nchanged / 8);
	memcpy(sh->origin_version, result->version,
	       sizeof(sh->origin_version));
	return 0;
}

int cache_file_read_fd(struct cache_file *f, uint64_t offset, size_t len,
		       int *fd, size_t *n, struct cache_read_pin *pin)
{
	struct object *obj;
	int ret;
	bool ahead = false;

	if (file_shadow(f))
		return 0;
	obj = pin_version(f);
	if (superseded(f->c, obj)) {
		/* cache_file_read() fails or switches the handle. */
		unpin_version(f, obj);
		return 0;
	}
	ret = store_pin(f->c, obj, offset, len, fd, n);
	/* Chunks that readahead is fetching are spliced too once they are
	 * in, rather than copied out by cache_file_read(). */
	if (!ret) {
		ahead = read_ahead(f, obj, offset, len, true);
		if (store_wait_fetched(f->c, obj, offset, len))
			ret = store_pin(f->c, obj, offset, len, fd, n);
	}
	if (ret && !claim_version(f, obj)) {
		/* Switched to a new version: the caller reads it instead. */
		store_unpin(f->c, obj, offset, *n);
		ret = 0;
	}
	if (ret) {
		pin->obj = obj;
		pin->offset = offset;
		pin->n = *n;
		if (!ahead)
			read_ahead(f, obj, offset, *n, false);
	}
	unpin_version(f, obj);	/* store_pin took its own reference */
	return ret;
}

void cache_read_unpin(struct cache *c, struct cache_read_pin *pin)
{
	store_unpin(c, pin->obj, pin->offset, pin->n);
}

ssize_t cache_file_write(struct cache_file *f, const void *buf, size_t len,
			 uint64_t offset)
{
	struct shadow *sh = f->sh;
	ssize_t n;
	int ret;

	if (!sh || !f->writable)
		return -EBADF;
	if (f->c->cfg.write_mode == WRITE_BACK)
		wb_wait_for_room(f->c, len);
	pthread_mutex_lock(&sh->lock);
	ret = wb_before_change(f->c, sh, sh->size);
	if (ret < 0) {
		n = ret;
		goto out_unlock;
	}
	if (offset < sh->base_limit) {
		ret = materialize_range(f->c, sh, offset, len, true);
		if (ret < 0) {
			n = ret;
			goto out_unlock;
		}
	}
	n = shadow_pwrite(f->c, sh, buf, len, offset);
	if (n < 0)
		goto out_unlock;
	shadow_mark_changed(f->c, sh, offset, offset + n);
	/* getattr and listings read the size and mtime under the cache
	 * lock only. */
	pthread_mutex_lock(&f->c->lock);
	if (offset + n > sh->size)
		sh->size = offset + n;
	shadow_touch(sh);
	pthread_mutex_unlock(&f->c->lock);
out_unlock:
	pthread_mutex_unlock(&sh->lock);
	return n;
}

int cache_file_truncate(struct cache_file *f, uint64_t size)
{
	uint32_t cs = f->c->cfg.chunk_size;
	struct shadow *sh = f->sh;
	int ret = 0;

	if (!sh || !f->writable)
		return -EBADF;
	pthread_mutex_lock(&sh->lock);
	ret = wb_before_change(f->c, sh, size);
	if (size < sh->base_limit && ret == 0) {
		/* Keep the bytes before size of a partly cut chunk. */
		if (size % cs)
			ret = materialize(f->c, sh, size / cs);
		if (ret == 0)
			sh->base_limit = size;
	}
	if (ret == 0 && ftruncate(sh->fd, size) < 0)
		ret = -errno;
	if (ret == 0) {
		/* The bytes cut off read as zeros if the file grows again. */
		shadow_mark_changed(f->c, sh, size, sh->size);
		pthread_mutex_lock(&f->c->lock);
		sh->size = size;
		shadow_touch(sh);
		pthread_mutex_unlock(&f->c->lock);
	}
	pthread_mutex_unlock(&sh->lock);
	return ret;
}

bool cache_file_superseded(struct cache_file *f)
{
	bool old;

	pthread_mutex_lock(&f->c->lock);
	old = !f->sh && f->obj && f->obj->superseded;
	pthread_mutex_unlock(&f->c->lock);
	return old;
}

int cache_file_getattr(struct cache_file *f, struct origin_attr *attr)
{
	struct cache *c = f->c;

	pthread_mutex_lock(&c->lock);
	if (!f->writable)
		follow_local_writes(f);
	if (f->sh) {
		*attr = f->sh->attr;
		attr->size = f->sh->size;
	} else {
		*attr = f->obj->attr;
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/*
 * Register the chunks of obj from the first on, reading each from src_fd
 * into buf (one chunk long) and, unless src_fd is obj's own data file,
 * copying it there before registering it.  Stops at the first chunk that cannot be read,
 * copied or given room in the budget.  Lock not held.  Returns the number
 * of chunks registered.
 */
static uint32_t add_chunks(struct cache *c, struct object *obj, int src_fd,
			   char *buf)
{
	uint32_t cs = c->cfg.chunk_size;
	bool copy = src_fd != obj->fd;
	uint32_t i;

	for (i = 0; i < obj->nchunks; i++) {
		uint64_t off = (uint64_t)i * cs;
		uint32_t len = obj->attr.size - off < cs ?
			       obj->attr.size - off : cs;
		int ret;

		if (pread(src_fd, buf, len, off) != len)
			break;
		pthread_mutex_lock(&c->lock);
		ret = store_reserve(c, len);
		if (ret == 0 && !copy)
			ret = store_insert_chunk(c, obj, i, len,
						 XXH3_64bits(buf, len));
		pthread_mutex_unlock(&c->lock);
		if (ret < 0)
			break;
		if (!copy)
			continue;
		/* No chunk write happens with cache.lock held. */
		ret = store_pwrite(obj->fd, buf, len, off);
		pthread_mutex_lock(&c->lock);
		if (ret < 0) {
			store_note_write_error(c, "a chunk into its data file",
					       ret);
			c->bytes_cached -= len;
		} else {
			ret = store_insert_chunk(c, obj, i, len,
						 XXH3_64bits(buf, len));
		}
		/* Free what a failed copy wrote: the chunk is not cached. */
		if (ret < 0)
			store_punch_range(c, obj, off, len);
		pthread_mutex_unlock(&c->lock);
		if (ret < 0)
			break;
	}
	return i;
}

/* Record that a commit of this mount replaced old with obj, for the
 * handles that still read old.  Lock held; obj must have its data file
 * open, which the reference taken here keeps open. */
static void link_rewrite(struct object *old, struct object *obj)
{
	if (old == obj || old->rewritten_as || old->refs == 0)
		return;
	old->rewritten_as = obj;
	obj->refs++;
}

/* Make the new cached version of path that the origin just accepted,
 * with its data file open and one reference for the caller.  Lock held.
 * Returns NULL when either fails. */
static struct object *new_version(struct cache *c, const char *path,
				  const struct origin_attr *attr)
{
	struct object *obj = store_object_new(c, path, attr);

	if (!obj)
		return NULL;
	obj->checked_ms = clock_now_ms();
	obj->refs++;
	if (store_object_open_fd(c, obj) < 0) {
		store_object_put(c, obj);
		return NULL;
	}
	return obj;
}

/*
 * Return whether cached, the version of a path that a commit of this
 * mount replaces in the cache, may have left pages in the kernel's page
 * cache that the committed version lacks.  prior is the version that the
 * shadow started from or last stored.  The page cache contains that
 * version plus the writes that passed through it, which is what the
 * commit stored, so only another version calls for dropping it.  Dropping
 * it would also drop the pages of WRITEs still on their way to the daemon,
 * which the kernel does not lock, and a READ served before such a WRITE
 * would bring back the bytes it replaces.  Lock held.
 */
static bool other_version_cached(const struct object *cached,
				 const char *prior)
{
	return cached && (prior[0] == '\0' ||
			  strcmp(cached->attr.version, prior) != 0);
}

/*
 * Copy the committed shadow into a new cached version of path with the
 * attributes the origin returned.  Chunks that do not fit the budget are
 * left out.  prior is the version shadow_upload() stored.  sh->lock held.
 */
void shadow_install(struct cache *c, struct shadow *sh, const char *path,
		    const struct origin_attr *attr, const char *prior)
{
	uint32_t cs = c->cfg.chunk_size;
	struct object *obj, *old;
	char *buf = malloc(cs);
	bool other_cached;

	pthread_mutex_lock(&c->lock);
	old = htab_get(&c->objects, path);
	other_cached = other_version_cached(old, prior);
	if (old) {
		old->refs++;	/* kept until linked to its successor */
		store_object_detach(c, old);
	}
	obj = buf ? new_version(c, path, attr) : NULL;
	if (old && obj)
		link_rewrite(old, obj);
	/* The handles that follow old to obj read the shadow, which goes
	 * on taking the writes of handles still open. */
	if (obj)
		set_follower(c, sh, obj);
	if (old)
		store_object_put(c, old);
	cache_record_created(c, path, attr);
	pthread_mutex_unlock(&c->lock);
	if (other_cached)
		cache_notify(c, path);
	if (!obj)
		goto out_free;

	add_chunks(c, obj, sh->fd, buf);
	pthread_mutex_lock(&c->lock);
	store_object_put(c, obj);
	pthread_mutex_unlock(&c->lock);
out_free:
	free(buf);
}

/* Register the chunks of obj's data file that fit the budget, with their
 * checksums, and punch out the others unless obj was lent meanwhile.
 * Lock not held. */
static void register_chunks(struct cache *c, struct object *obj)
{
	uint32_t cs = c->cfg.chunk_size;
	char *buf = malloc(cs);
	uint32_t i = buf ? add_chunks(c, obj, obj->fd, buf) : 0;
	bool lent;

	pthread_mutex_lock(&c->lock);
	lent = obj->lent;
	pthread_mutex_unlock(&c->lock);
	if (i < obj->nchunks && !lent &&
	    fallocate(obj->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (uint64_t)i * cs, obj->attr.size - (uint64_t)i * cs) < 0)
		log_debug("cannot punch the uncached end of %s: %s", obj->path,
			  strerror(errno));
	free(buf);
}

/*
 * Make the file of a committed shadow the new cached version of path,
 * without copying it: it moves to data/ and the shadow goes on with a new
 * empty file, reading the new version as its base until written again.
 * Falls back to shadow_install() when a step fails.  sh->lock held; not
 * for write-back, whose readers may read the shadow file unlocked, nor
 * while an exported descriptor may write to it.
 */
static void shadow_adopt(struct cache *c, struct shadow *sh,
			 const char *path, const struct origin_attr *attr,
			 const char *prior)
{
	uint32_t nchunks = (attr->size + c->cfg.chunk_size - 1) /
			   c->cfg.chunk_size;
	uint8_t *have = calloc(nchunks / 8 + 1, 1);
	struct object *obj = NULL, *old, *prev;
	char *file = NULL, rel[64], dir[16];
	uint64_t tmp_id;
	bool other_cached;
	int fd = -1;

	pthread_mutex_lock(&c->lock);
	tmp_id = c->next_tmp++;
	pthread_mutex_unlock(&c->lock);
	if (!have || asprintf(&file, "tmp/w%d-%" PRIu64, (int)getpid(),
			      tmp_id) < 0) {
		file = NULL;
		goto out_fallback;
	}
	fd = openat(c->root_fd, file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600);
	if (fd < 0 || ftruncate(fd, attr->size) < 0)
		goto out_fallback;

	pthread_mutex_lock(&c->lock);
	prev = htab_get(&c->objects, path);
	other_cached = other_version_cached(prev, prior);
	if (prev) {
		prev->refs++;	/* kept until linked to its successor */
		store_object_detach(c, prev);
	}
	obj = store_object_new(c, path, attr);
	if (obj) {
		store_data_path(c, obj->id, rel, sizeof(rel));
		snprintf(dir, sizeof(dir), "data/%02x",
			 (unsigned)(obj->id & 0xff));
		mkdirat(c->root_fd, dir, 0700);
	}
	if (!obj || renameat(c->root_fd, sh->file, c->root_fd, rel) < 0) {
		if (obj)
			store_object_detach(c, obj);
		if (prev)
			store_object_put(c, prev);
		pthread_mutex_unlock(&c->lock);
		goto out_fallback;
	}
	old = sh->base;
	obj->checked_ms = clock_now_ms();
	obj->fd = sh->fd;
	obj->refs++;		/* the shadow's base */
	if (prev)
		link_rewrite(prev, obj);
	if (old && old != prev)
		link_rewrite(old, obj);
	if (old && old->shadow == sh)
		old->shadow = NULL;
	obj->shadow = sh;
	sh->base = obj;
	sh->fd = fd;
	free(sh->file);
	sh->file = file;
	free(sh->have);
	sh->have = have;
	sh->nhave = nchunks;
	sh->base_limit = attr->size;
	sh->modified = false;
	if (old)
		store_object_put(c, old);
	if (prev)
		store_object_put(c, prev);
	cache_record_created(c, path, attr);
	pthread_mutex_unlock(&c->lock);
	register_chunks(c, obj);
	if (other_cached)
		cache_notify(c, path);
	return;

out_fallback:
	if (fd >= 0) {
		close(fd);
		unlinkat(c->root_fd, file, 0);
	}
	free(file);
	free(have);
	shadow_install(c, sh, path, attr, prior);
}

/*
 * Drop the cached copy prev of path that a write-around commit replaced.
 * Handles still reading prev, or the version the shadow started from,
 * are given an empty successor with the attributes the origin returned,
 * so that their next read fetches what was just stored.  Lock held.
 */
static void around_successor(struct cache *c, struct shadow *sh,
			     struct object *prev, const char *path,
			     const struct origin_attr *attr)
{
	struct object *base = sh->base, *successor = NULL;
	bool readers;

	if (prev)
		prev->refs++;	/* kept until linked to its successor */
	/* The shadow holds one reference on its base, this function one. */
	readers = (prev && prev->refs > 1 + (prev == base)) ||
		  (base && base != prev && base->refs > 1);
	if (prev)
		store_object_detach(c, prev);
	if (readers)
		successor = new_version(c, path, attr);
	if (successor) {
		if (prev)
			link_rewrite(prev, successor);
		if (base && base != prev)
			link_rewrite(base, successor);
		/* The readers that reach it read on in the shadow, which may
		 * still be written. */
		set_follower(c, sh, successor);
		store_object_put(c, successor);
	}
	if (prev)
		store_object_put(c, prev);
}

/*
 * Store the shadow on the origin (write-through and write-around).
 * Write-through keeps the new version in the cache; write-around drops
 * every cached copy of the file.  sh->lock held.
 */
static int commit_to_origin(struct cache *c, struct shadow *sh)
{
	char prior[ORIGIN_VERSION_MAX];
	struct origin_attr result;
	struct object *obj;
	char *path = NULL;
	bool other_cached;
	int ret;

	if (!sh->dirty)
		return 0;
	ret = materialize_range(c, sh, 0, sh->base_limit, false);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&c->lock);
	path = sh->path ? strdup(sh->path) : NULL;
	pthread_mutex_unlock(&c->lock);
	if (!path)
		return 0;	/* unlinked: nothing to store */

	ret = shadow_upload(c, sh, path, &sh->attr, sh->size, &result, prior);
	if (ret < 0) {
		log_limited(LOG_ERR, "cannot store %s on the origin: %s", path,
			    strerror(-ret));
		goto out_free;
	}
	sh->dirty = false;
	/* An exported descriptor would go on writing into the new version's
	 * data file if the shadow's file moved there. */
	if (c->cfg.write_mode == WRITE_THROUGH && sh->exported) {
		shadow_install(c, sh, path, &result, prior);
		goto out_free;
	}
	if (c->cfg.write_mode == WRITE_THROUGH) {
		shadow_adopt(c, sh, path, &result, prior);
		goto out_free;
	}
	pthread_mutex_lock(&c->lock);
	obj = htab_get(&c->objects, path);
	/* Usually the shadow's base, or the empty version that its last
	 * commit left for older readers. */
	other_cached = other_version_cached(obj, prior);
	around_successor(c, sh, obj, path, &result);
	cache_record_created(c, path, &result);
	pthread_mutex_unlock(&c->lock);
	if (other_cached)
		cache_notify(c, path);
out_free:
	free(path);
	return ret;
}

int cache_file_commit(struct cache_file *f)
{
	struct cache *c = f->c;
	struct shadow *sh = f->sh;
	int ret;

	if (!sh || !f->writable)
		return 0;
	pthread_mutex_lock(&sh->lock);
	/*
	 * Nothing was written since the last attempt: report its result
	 * again.  A version the origin rejected at close is never stored
	 * later by another flush or the release: that is the rollback.
	 */
	if (sh->commit_gen == sh->write_gen) {
		ret = sh->commit_err;
		goto out_unlock;
	}
	if (c->cfg.write_mode == WRITE_BACK)
		ret = wb_commit(c, sh);
	else
		ret = commit_to_origin(c, sh);
	sh->commit_gen = sh->write_gen;
	sh->commit_err = ret;
out_unlock:
	pthread_mutex_unlock(&sh->lock);
	return ret;
}

bool cache_file_untouched(struct cache_file *f)
{
	struct shadow *sh = f->sh;
	bool untouched;

	if (!sh || !f->writable)
		return false;
	/* Another handle's commit changes these fields under sh->lock. */
	pthread_mutex_lock(&sh->lock);
	untouched = !sh->base && sh->write_gen == 0 && sh->size == 0 &&
		sh->commit_gen == UINT64_MAX;
	pthread_mutex_unlock(&sh->lock);
	return untouched;
}

int cache_file_flush(struct cache_file *f, bool skip_new)
{
	if (!f->sh || !f->writable)
		return 0;
	if (skip_new && cache_file_untouched(f))
		return 0;
	return cache_file_commit(f);
}

int cache_file_fsync(struct cache_file *f)
{
	struct cache *c = f->c;
	struct shadow *sh = f->sh;
	bool pending;
	int ret = 0;

	if (!sh || c->cfg.write_mode != WRITE_BACK)
		return cache_file_commit(f);
	/* Any descriptor of a file makes its data durable, also a
	 * read-only one of a file waiting for upload. */
	pthread_mutex_lock(&sh->lock);
	if (f->writable)
		ret = wb_commit(c, sh);
	if (ret < 0)
		goto out_unlock;
	pthread_mutex_lock(&c->lock);
	pending = sh->pending;
	pthread_mutex_unlock(&c->lock);
	if (!pending)
		goto out_unlock;
	if (!c->cfg.fsync_local) {
		ret = wb_upload(c, sh);
		goto out_unlock;
	}
	if (fdatasync(sh->fd) < 0) {
		ret = -errno;
		goto out_unlock;
	}
	pthread_mutex_lock(&c->lock);
	ret = journal_sync(c->journal);
	pthread_mutex_unlock(&c->lock);
out_unlock:
	pthread_mutex_unlock(&sh->lock);
	return ret;
}

void cache_file_release(struct cache_file *f)
{
	struct cache *c = f->c;

	if (f->exported) {
		pthread_mutex_lock(&f->sh->lock);
		f->sh->exported--;
		pthread_mutex_unlock(&f->sh->lock);
	}
	pthread_mutex_lock(&c->lock);
	if (f->ra_window)
		c->ra_readers--;
	if (f->sh && f->writable && --f->sh->writers == 0)
		wb_writer_closed(c, f->sh);
	if (f->sh)
		shadow_put(c, f->sh);
	if (f->obj)
		store_object_put(c, f->obj);
	pthread_mutex_unlock(&c->lock);
	free(f);
}

int cache_file_dup(struct cache_file *f, struct cache_file **out)
{
	struct cache *c = f->c;
	struct cache_file *g;
	bool local;

	if (f->writable)
		return -EBADF;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->c = c;
	pthread_mutex_lock(&c->lock);
	follow_local_writes(f);
	local = f->sh || !f->obj || f->obj->ncached == f->obj->nchunks;
	if (local) {
		g->obj = f->obj;
		if (g->obj)
			g->obj->refs++;
		g->sh = f->sh;
		if (g->sh)
			g->sh->refs++;
	}
	pthread_mutex_unlock(&c->lock);
	if (!local) {
		free(g);
		return -ESTALE;
	}
	*out = g;
	return 0;
}

static int truncate_path(struct cache *c, const char *path, uint64_t size)
{
	struct cache_file *f;
	bool changed;
	int ret = cache_file_open(c, path, O_WRONLY, &f, &changed);

	if (ret < 0)
		return ret;
	ret = cache_file_truncate(f, size);
	if (ret == 0)
		ret = cache_file_commit(f);
	cache_file_release(f);
	return ret;
}

/* Apply metadata to the cached state of path.  Lock held. */
static void apply_attr(struct cache *c, const char *path,
		       const struct origin_attr *attr, unsigned which)
{
	struct shadow *sh = htab_get(&c->shadows, path);
	struct object *obj = htab_get(&c->objects, path);
	struct attr_entry *e = meta_attr_get(c, path);
	struct origin_attr *targets[] = {
		sh ? &sh->attr : NULL, obj ? &obj->attr : NULL,
		e && !e->negative ? &e->attr : NULL,
	};

	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		struct origin_attr *t = targets[i];

		if (t)
			origin_attr_merge(t, attr, which);
	}
	if (obj && obj->logged)
		store_log_object(c, obj);
	if (e && !e->negative)
		meta_listing_update(c, path, &e->attr);
}

int cache_setattr(struct cache *c, const char *path,
		  const struct origin_attr *attr, unsigned which,
		  bool set_size, uint64_t size)
{
	char prior[ORIGIN_VERSION_MAX] = "";
	struct origin_attr result;
	struct shadow *sh, *locked;
	struct object *obj;
	bool local_only, dropped = false;
	int ret = 0;

	if (c->cfg.read_only)
		return -EROFS;
	if (set_size) {
		ret = truncate_path(c, path, size);
		if (ret < 0 || !which)
			return ret;
	}
	if (!which)
		return 0;
	/* An upload of the same file holds the shadow lock, so it cannot
	 * land between the copy below and the version recorded after it. */
	locked = lock_shadow(c, path);
	pthread_mutex_lock(&c->lock);
	sh = htab_get(&c->shadows, path);
	local_only = sh && (sh->dirty || sh->pending);
	pthread_mutex_unlock(&c->lock);

	/* A file not stored yet takes its metadata with its upload. */
	if (!local_only)
		ret = c->origin->ops->setattr(c->origin, path, attr, which,
					      &result, prior);
	if (ret < 0) {
		unlock_shadow(c, locked);
		return ret;
	}
	pthread_mutex_lock(&c->lock);
	/* What the origin stored, which may be coarser than the request. */
	apply_attr(c, path, local_only ? attr : &result, which);
	sh = htab_get(&c->shadows, path);
	if (local_only && sh && sh->pending) {
		sh->attr.size = sh->size;
		journal_put(c->journal, sh->seq, sh->path, &sh->attr);
	}
	obj = htab_get(&c->objects, path);
	if (!local_only && obj && result.size == obj->attr.size &&
	    strcmp(prior, obj->attr.version) == 0) {
		/* S3 gives the same bytes a new ETag. */
		memcpy(obj->attr.version, result.version,
		       sizeof(obj->attr.version));
		obj->checked_ms = clock_now_ms();
		if (obj->logged)
			store_log_object(c, obj);
	} else if (!local_only && obj) {
		/* The change went to another version than the cached one,
		 * or to one the origin did not name. */
		dropped = cache_check_version(c, obj, &result);
	}
	if (!local_only)
		meta_attr_set(c, path, &result);
	pthread_mutex_unlock(&c->lock);
	unlock_shadow(c, locked);
	if (dropped)
		cache_notify(c, path);
	return 0;
}
