/*
 * store.c - the chunk store: objects, their chunks, and eviction.
 *
 * Invariants, all under cache.lock:
 *
 * - bytes_cached is the sum of the lengths of PRESENT chunks plus the
 *   reservations of fetches in flight, and never exceeds size_max:
 *   store_reserve() evicts before it grants a reservation.
 * - Every PRESENT chunk is on the LRU list exactly once, oldest first.
 *   FETCHING chunks are not on it.  A chunk with readers > 0 is being
 *   read outside the lock and is skipped by eviction, so a reader never
 *   sees a hole punched under it.
 * - Evicting a chunk punches a hole in the object's data file and logs
 *   CHUNK_DEL; the last chunk of an unreferenced object takes the whole
 *   object (data file and OBJECT record) with it.
 * - The data file of a lent object is never changed in place, because
 *   programs read it through descriptors of their own.  Evicting one of
 *   its chunks, or finding one damaged, unlinks the data file and drops
 *   the whole object instead (drop_lent()).
 * - A chunk loaded from the index is not trusted until its checksum was
 *   checked once (chunk.verified); a failure makes it a miss.
 * - A chunk that readahead queued and no read has touched yet
 *   (chunk.ahead) gets a second chance: eviction moves it to the young
 *   end once instead of taking it.  ahead_chunks counts them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "checksum.h"
#include "clock.h"
#include "index.h"
#include "internal.h"
#include "journal.h"
#include "log.h"

/* A TOUCH record is logged at most this often per chunk. */
#define TOUCH_INTERVAL_S 30

/*
 * Chunks come from slabs of CHUNK_SLAB_COUNT, so that each costs
 * sizeof(struct chunk) and no malloc header and rounding (a 48-byte
 * calloc takes 64 bytes with glibc).  A freed chunk goes on
 * cache.chunk_free for reuse, and the slabs are freed at close only, so
 * this memory stays at the largest number of chunks held at once.
 */
#define CHUNK_SLAB_COUNT 1024

/*
 * AddressSanitizer cannot see a use of a freed chunk that stays in its
 * slab, so a free chunk is poisoned, all but its free list link.
 */
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>

static void chunk_poison(struct chunk *ch, bool poison)
{
	char *start = (char *)ch, *link = (char *)&ch->lru.next;
	char *after = link + sizeof(ch->lru.next);

	if (poison) {
		ASAN_POISON_MEMORY_REGION(start, link - start);
		ASAN_POISON_MEMORY_REGION(after, start + sizeof(*ch) - after);
	} else {
		ASAN_UNPOISON_MEMORY_REGION(ch, sizeof(*ch));
	}
}
#else
static void chunk_poison(struct chunk *ch, bool poison)
{
	(void)ch;
	(void)poison;
}
#endif

struct chunk_slab {
	struct chunk_slab *next;
	struct chunk chunks[CHUNK_SLAB_COUNT];
};

static struct chunk *chunk_new(struct cache *c, struct object *obj,
			       uint32_t index, enum chunk_state state)
{
	struct chunk *ch;

	if (!c->chunk_free) {
		struct chunk_slab *slab = malloc(sizeof(*slab));

		if (!slab)
			return NULL;
		slab->next = c->chunk_slabs;
		c->chunk_slabs = slab;
		for (size_t i = CHUNK_SLAB_COUNT; i-- > 0;) {
			slab->chunks[i].lru.next = c->chunk_free;
			c->chunk_free = &slab->chunks[i].lru;
			chunk_poison(&slab->chunks[i], true);
		}
	}
	ch = list_entry(c->chunk_free, struct chunk, lru);
	c->chunk_free = ch->lru.next;
	chunk_poison(ch, false);
	memset(ch, 0, sizeof(*ch));
	ch->obj = obj;
	ch->index = index;
	ch->state = state;
	return ch;
}

static void chunk_free(struct cache *c, struct chunk *ch)
{
	ch->lru.next = c->chunk_free;
	c->chunk_free = &ch->lru;
	chunk_poison(ch, true);
}

void store_free_chunks(struct cache *c)
{
	while (c->chunk_slabs) {
		struct chunk_slab *next = c->chunk_slabs->next;

		for (size_t i = 0; i < CHUNK_SLAB_COUNT; i++)
			chunk_poison(&c->chunk_slabs->chunks[i], false);
		free(c->chunk_slabs);
		c->chunk_slabs = next;
	}
	c->chunk_free = NULL;
}

static uint32_t chunk_length(const struct cache *c, const struct object *obj,
			     uint32_t index)
{
	uint64_t start = (uint64_t)index * c->cfg.chunk_size;
	uint64_t left = obj->attr.size - start;

	return left < c->cfg.chunk_size ? left : c->cfg.chunk_size;
}

void store_data_path(const struct cache *c, uint64_t id, char *buf,
		     size_t len)
{
	snprintf(buf, len, "data/%02x/%016" PRIx64, (unsigned)(id & 0xff),
		 id);
}

static struct object *object_alloc(struct cache *c, uint64_t id,
				   const char *path,
				   const struct origin_attr *attr)
{
	struct object *obj = calloc(1, sizeof(*obj));
	uint64_t n = (attr->size + c->cfg.chunk_size - 1) / c->cfg.chunk_size;

	if (!obj || n > UINT32_MAX)
		goto out_free;
	obj->id = id;
	obj->attr = *attr;
	obj->nchunks = n;
	obj->fd = -1;
	obj->path = strdup(path);
	obj->chunks = calloc(n ? n : 1, sizeof(*obj->chunks));
	if (!obj->path || !obj->chunks)
		goto out_free;
	return obj;
out_free:
	if (obj) {
		free(obj->path);
		free(obj->chunks);
	}
	free(obj);
	return NULL;
}

struct object *store_object_new(struct cache *c, const char *path,
				const struct origin_attr *attr)
{
	struct object *obj = object_alloc(c, c->next_id, path, attr);

	if (!obj)
		return NULL;
	if (htab_put(&c->objects, path, obj) < 0) {
		free(obj->path);
		free(obj->chunks);
		free(obj);
		return NULL;
	}
	c->next_id++;
	c->objects_cached++;
	return obj;
}

int store_log_object(struct cache *c, struct object *obj)
{
	int64_t age = clock_now_ms() - obj->checked_ms;
	int ret;

	/* A detached object must not take its old path back at replay. */
	if (obj->detached)
		return 0;
	ret = index_log_object(c->index, obj->id, obj->path ? obj->path : "",
			       &obj->attr,
			       obj->checked_ms ? clock_wall_ms() - age : 0);
	store_index_result(c, ret);
	/* A record that is lost is written by the next compaction. */
	obj->logged = true;
	return ret;
}

/*
 * Space shortage in cache_dir.  The first failure to write there (a data
 * file, the index, the journal, a shadow) or to keep min_free logs one
 * line with the fix, and the rest of the shortage is only counted in
 * cache_dir_errors.  A write that works once min_free and
 * SHORTAGE_END_CHUNKS chunks are free ends the shortage, logs that, and
 * has the index and the journal rewritten if they lost records.
 */

/* Rewrite an index or journal that lost records at most this often. */
#define INDEX_REPAIR_INTERVAL_MS 1000
/* A shortage ends once min_free and this many chunks are free. */
#define SHORTAGE_END_CHUNKS 2
#define SHORTAGE_LOG_INTERVAL_MS (60 * 1000)

static bool below_min_free(struct cache *c, uint64_t len);

static bool is_no_space(int err)
{
	return err == -ENOSPC || err == -EDQUOT;
}

void store_note_write_error(struct cache *c, const char *what, int err)
{
	const char *dir = c->cache_dir ? c->cache_dir : c->root;
	uint64_t now = clock_now_ms();

	c->cache_dir_errors++;
	if (c->space_short)
		return;
	c->space_short = true;
	/* A shortage that ends and comes back is logged once a minute. */
	c->short_logged = !c->short_logged_ms ||
			  now - c->short_logged_ms >= SHORTAGE_LOG_INTERVAL_MS;
	if (!c->short_logged)
		return;
	c->short_logged_ms = now ? now : 1;
	if (is_no_space(err))
		log_err("cache_dir %s is full: cannot write %s (%s). Until "
			"there is room, reads are served from the origin "
			"without caching and writes that need local space "
			"fail with ENOSPC: free space on that filesystem, "
			"lower cache_size, or raise min_free to leave room "
			"for other programs", dir, what, strerror(-err));
	else
		log_err("cache_dir %s: cannot write %s (%s). Reads are served "
			"from the origin without caching meanwhile: check the "
			"disk", dir, what, strerror(-err));
}

void store_index_result(struct cache *c, int ret)
{
	/* A failed compaction leaves the old index as it was. */
	if (ret < 0 && ret != -E2BIG && !c->compacting)
		store_note_write_error(c, "the cache index", ret);
}

void store_note_write_ok(struct cache *c)
{
	bool index_short = c->index && index_lost(c->index);
	bool journal_short = c->journal && journal_lost(c->journal);
	uint64_t now;

	/* One write that fits ends no shortage: wait for real room. */
	if (c->space_short && below_min_free(c, SHORTAGE_END_CHUNKS *
					     (uint64_t)c->cfg.chunk_size))
		return;
	if (c->space_short) {
		c->space_short = false;
		c->index_repair_ms = 0;
		if (c->short_logged)
			log_info("cache_dir %s has room again: caching resumes "
				 "(%" PRIu64 " writes failed in all)",
				 c->cache_dir ? c->cache_dir : c->root,
				 c->cache_dir_errors);
	}
	if (!index_short && !journal_short)
		return;
	now = clock_now_ms();
	if (c->index_repair_ms && now - c->index_repair_ms <
				  INDEX_REPAIR_INTERVAL_MS)
		return;
	c->index_repair_ms = now ? now : 1;
	if (index_short && store_compact(c) == 0)
		log_info("rewrote the cache index of %s, which lost records "
			 "while cache_dir was full", c->root);
	if (journal_short)
		wb_repair_journal(c);
}

/* The monotonic time of a check made at checked_wall_ms, or 0 (never
 * checked) when it lies in the future or before this boot's clock. */
static uint64_t checked_since(int64_t checked_wall_ms)
{
	int64_t age = clock_wall_ms() - checked_wall_ms;
	uint64_t now = clock_now_ms();

	if (checked_wall_ms <= 0 || age < 0 || (uint64_t)age >= now)
		return 0;
	return now - age;
}

static int open_data(struct cache *c, uint64_t id, int flags)
{
	char rel[64];

	store_data_path(c, id, rel, sizeof(rel));
	return openat(c->root_fd, rel, flags | O_CLOEXEC, 0600);
}

static void drop_all_chunks(struct cache *c, struct object *obj);

int store_object_open_fd(struct cache *c, struct object *obj)
{
	char dir[16];
	struct stat st;
	int fd;

	if (obj->fd >= 0)
		return obj->fd;
	snprintf(dir, sizeof(dir), "data/%02x", (unsigned)(obj->id & 0xff));
	if (mkdirat(c->root_fd, dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = open_data(c, obj->id, O_RDWR);
	if (fd < 0 && errno == ENOENT && obj->ncached > 0) {
		/* Removed behind the daemon's back: its chunks are gone. */
		log_warn("the data file of %s vanished from the cache folder: "
			 "fetching its %u chunks again", obj->path ?
			 obj->path : "(removed)", obj->ncached);
		drop_all_chunks(c, obj);
	}
	if (fd < 0) {
		/* The OBJECT record comes before the data file, so that a
		 * crash leaves no data file that the index does not name. */
		if (!obj->logged && obj->path && c->index &&
		    store_log_object(c, obj) < 0)
			obj->logged = false;	/* the first chunk tries again */
		fd = open_data(c, obj->id, O_RDWR | O_CREAT);
	}
	if (fd < 0)
		return -errno;
	/* Sized up front and sparse: a complete copy is a plain file. */
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_size != obj->attr.size &&
	    ftruncate(fd, obj->attr.size) < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	obj->fd = fd;
	return fd;
}

void store_punch_range(struct cache *c, struct object *obj, uint64_t off,
			uint64_t len)
{
	int fd;

	if (obj->lent)
		return;
	fd = obj->fd >= 0 ? obj->fd : open_data(c, obj->id, O_RDWR);
	if (fd < 0)
		return;
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
		      len) < 0)
		log_debug("cannot punch bytes %" PRIu64 "-%" PRIu64 " of %s: "
			  "%s", off, off + len - 1,
			  obj->path ? obj->path : "(removed)",
			  strerror(errno));
	if (fd != obj->fd)
		close(fd);
}

static void punch(struct cache *c, struct object *obj, struct chunk *ch)
{
	store_punch_range(c, obj, (uint64_t)ch->index * c->cfg.chunk_size,
			  ch->len);
}

/* Clear the readahead mark of ch: a read reached it, or eviction gave
 * it its second chance. */
static void ahead_clear(struct cache *c, struct chunk *ch)
{
	if (!ch->ahead)
		return;
	ch->ahead = false;
	ch->obj->nahead--;
	c->ahead_chunks--;
}

/* Forget chunk index of obj; the caller punched or never wrote it. */
static void chunk_remove(struct cache *c, struct object *obj, uint32_t index)
{
	struct chunk *ch = obj->chunks[index];

	ahead_clear(c, ch);
	if (ch->state == CHUNK_PRESENT) {
		list_del(&ch->lru);
		c->bytes_cached -= ch->len;
		c->chunks_cached--;
		obj->ncached--;
		if (obj->logged && c->index)
			store_index_result(c, index_log_chunk_del(c->index,
								  obj->id,
								  index));
	}
	obj->chunks[index] = NULL;
	chunk_free(c, ch);
}

/* Forget every chunk of obj, counting each as a checksum failure. */
static void drop_all_chunks(struct cache *c, struct object *obj)
{
	for (uint32_t i = 0; i < obj->nchunks; i++) {
		struct chunk *ch = obj->chunks[i];

		if (ch && ch->state == CHUNK_PRESENT && !ch->readers) {
			c->checksum_failures++;
			chunk_remove(c, obj, i);
		}
	}
}

static void object_destroy(struct cache *c, struct object *obj)
{
	char rel[64];

	for (uint32_t i = 0; i < obj->nchunks; i++)
		if (obj->chunks[i])
			chunk_remove(c, obj, i);
	if (obj->fd >= 0)
		close(obj->fd);
	store_data_path(c, obj->id, rel, sizeof(rel));
	if (!c->keep_files)
		unlinkat(c->root_fd, rel, 0);
	if (obj->logged && c->index)
		store_index_result(c, index_log_object_del(c->index, obj->id));
	if (obj->rewritten_as)
		store_object_put(c, obj->rewritten_as);
	free(obj->chunks);
	free(obj->path);
	free(obj);
}

void store_object_detach(struct cache *c, struct object *obj)
{
	if (obj->detached)
		return;
	if (obj->path && htab_get(&c->objects, obj->path) == obj)
		htab_remove(&c->objects, obj->path);
	obj->detached = true;
	c->objects_cached--;
	/*
	 * Record the removal now, while handles may still hold obj.  If the
	 * record waited for the last close, a crash before it would leave
	 * the OBJECT record live, and the next start would show a removed
	 * file at its old path again.
	 * A compaction before that close drops both records, so such a
	 * crash leaves the data file with no record: the start after the
	 * crash removes it (remove_orphans()).
	 */
	if (obj->logged && c->index) {
		store_index_result(c, index_log_object_del(c->index, obj->id));
		obj->logged = false;
	}
	if (obj->refs == 0)
		object_destroy(c, obj);
}

/*
 * Give up a lent object in place of punching its chunks: unlink its data
 * file, drop the chunks that no read is using and detach it from its
 * path, so that the next open of the path makes a new object.  Programs
 * with a lent descriptor keep the inode and its bytes.  Its disk space is
 * released when the last of them closes it.  Lock held; obj may
 * be freed.  Returns the number of chunks forgotten.
 */
static uint32_t drop_lent(struct cache *c, struct object *obj)
{
	uint32_t dropped = 0;
	char rel[64];

	store_data_path(c, obj->id, rel, sizeof(rel));
	if (unlinkat(c->root_fd, rel, 0) < 0 && errno != ENOENT)
		log_warn("cannot remove %s/%s, the lent copy of %s: %s",
			 c->root, rel, obj->path ? obj->path : "(removed)",
			 strerror(errno));
	for (uint32_t i = 0; i < obj->nchunks; i++) {
		struct chunk *ch = obj->chunks[i];

		if (ch && ch->state == CHUNK_PRESENT && !ch->readers) {
			chunk_remove(c, obj, i);
			dropped++;
		}
	}
	store_object_detach(c, obj);
	return dropped;
}

void store_object_put(struct cache *c, struct object *obj)
{
	if (--obj->refs > 0)
		return;
	/* The last handle closed, so the chunks readahead fetched for it
	 * are plain LRU data now and no longer take readahead's room. */
	for (uint32_t i = 0; obj->nahead && i < obj->nchunks; i++)
		if (obj->chunks[i])
			ahead_clear(c, obj->chunks[i]);
	if (obj->fd >= 0) {
		close(obj->fd);
		obj->fd = -1;
	}
	if (obj->detached) {
		object_destroy(c, obj);
		return;
	}
	/* Nothing cached, or eviction took it all: nothing to keep. */
	if (obj->ncached == 0)
		store_object_detach(c, obj);
}

/*
 * Evict the oldest chunk that no read is using.  Returns false when
 * there is none.  A chunk that readahead fetched for a reader that has
 * not reached it yet looks older than it is, because the reader touches
 * the chunks before it.  Such a chunk moves to the young end once and
 * the search goes on, so the search still ends.
 */
static bool evict_one(struct cache *c)
{
	struct list_node *n, *next;

	for (n = c->lru.next; n != &c->lru; n = next) {
		struct chunk *ch = list_entry(n, struct chunk, lru);
		struct object *obj = ch->obj;

		next = n->next;
		if (ch->readers || obj->kept)
			continue;
		if (ch->ahead) {
			ahead_clear(c, ch);
			list_del(&ch->lru);
			list_add_tail(&c->lru, &ch->lru);
			if (next == &c->lru)
				next = &ch->lru;
			continue;
		}
		if (obj->lent) {
			c->evictions += drop_lent(c, obj);
			return true;
		}
		punch(c, obj, ch);
		chunk_remove(c, obj, ch->index);
		c->evictions++;
		if (obj->ncached == 0 && obj->refs == 0) {
			if (!obj->detached) {
				htab_remove(&c->objects, obj->path);
				c->objects_cached--;
			}
			object_destroy(c, obj);
		}
		return true;
	}
	return false;
}

bool store_evict_bytes(struct cache *c, uint64_t len)
{
	uint64_t before = c->bytes_cached;

	while (before - c->bytes_cached < len && evict_one(c))
		;
	return c->bytes_cached < before;
}

static bool below_min_free(struct cache *c, uint64_t len)
{
	struct statvfs st;
	uint64_t avail, need;

	if (fstatvfs(c->root_fd, &st) < 0)
		return false;
	avail = (uint64_t)st.f_bavail * st.f_frsize;
	if (c->cfg.min_free_pct)
		need = (uint64_t)st.f_blocks * st.f_frsize / 100 *
		       c->cfg.min_free_pct;
	else
		need = c->cfg.min_free;
	return avail < need + len;
}

/* Make room for len bytes.  *budget is set when a failure came from
 * cache_size, because a shortage of free disk space is logged apart. */
static int reserve_room(struct cache *c, uint64_t len, bool *budget)
{
	*budget = true;
	if (len > c->cfg.size_max)
		return -ENOSPC;
	while (c->bytes_cached + len > c->cfg.size_max)
		if (!evict_one(c))
			return -ENOSPC;
	*budget = false;
	while (below_min_free(c, len))
		if (!evict_one(c)) {
			const char *what = "a chunk";

			if (c->cfg.min_free || c->cfg.min_free_pct)
				what = "a chunk: the free space is below "
				       "min_free";
			store_note_write_error(c, what, -ENOSPC);
			return -ENOSPC;
		}
	c->bytes_cached += len;
	return 0;
}

/*
 * Log the start and the end of eviction pressure, once each.  Pressure
 * is a stretch of reservations that fail at cache_size because nothing
 * is left to evict: every cached chunk is being read or lent.  A disk
 * below min_free is logged by store_note_write_error().  Lock held.
 */
static void note_pressure(struct cache *c, uint64_t len, int ret)
{
	struct statvfs st;
	uint64_t avail = 0;

	if (ret == 0 && c->pressure_failures == 0)
		return;
	if (ret == 0) {
		log_info("cache %s has room again after %" PRIu64 " chunks "
			 "were not cached: %" PRIu64 " bytes cached of "
			 "cache_size %" PRIu64, c->root, c->pressure_failures,
			 c->bytes_cached, c->cfg.size_max);
		c->pressure_failures = 0;
		return;
	}
	if (c->pressure_failures++ > 0)
		return;
	if (fstatvfs(c->root_fd, &st) == 0)
		avail = (uint64_t)st.f_bavail * st.f_frsize;
	log_warn("cache %s has no room for %" PRIu64 " bytes and nothing to "
		 "evict: %" PRIu64 " bytes cached of cache_size %" PRIu64
		 ", %" PRIu64 " bytes free on its disk (min_free %" PRIu64
		 "%s), %" PRIu64 " bytes waiting for upload.  Reads are "
		 "served from the origin without caching until there is room",
		 c->root, len, c->bytes_cached, c->cfg.size_max, avail,
		 c->cfg.min_free_pct ? (uint64_t)c->cfg.min_free_pct :
		 c->cfg.min_free, c->cfg.min_free_pct ? "%" : " bytes",
		 c->dirty_bytes);
}

int store_reserve(struct cache *c, uint64_t len)
{
	bool budget;
	int ret = reserve_room(c, len, &budget);

	if (ret == 0 || budget)
		note_pressure(c, len, ret);
	return ret;
}

int store_insert_chunk(struct cache *c, struct object *obj, uint32_t index,
		       uint32_t len, uint64_t sum)
{
	struct chunk *ch = obj->chunks[index];
	int ret;

	if (ch && ch->state == CHUNK_PRESENT) {
		/*
		 * Stored meanwhile by another thread: it is on the LRU list
		 * already, and a second list_add_tail() would break the list
		 * (a daemon crashed in list_add_tail() here under
		 * test_kill_rounds.sh).  Give back the caller's reservation.
		 * NOTE: which two callers stored the same chunk was not
		 * found.  add_chunks() fills a version that is already in
		 * cache.objects, dropping the lock between chunks, so a
		 * fetch of the same chunk is one candidate.
		 */
		log_debug("chunk %u of %s was stored twice; keeping the first",
			  index, obj->path ? obj->path : "(removed)");
		c->bytes_cached -= len;
		return 0;
	}
	/* A chunk the index does not list would be lost at the next
	 * start, and its bytes would stay behind in the data file. */
	ret = 0;
	if (!obj->logged && !obj->detached) {
		ret = store_log_object(c, obj);
		if (ret < 0)
			obj->logged = false;	/* the next chunk tries again */
	}
	/* A detached object has no record for the chunk to belong to. */
	if (ret == 0 && !obj->detached) {
		ret = index_log_chunk(c->index, obj->id, index, len, sum);
		store_index_result(c, ret);
	}
	if (ret < 0) {
		c->bytes_cached -= len;
		return ret;
	}
	if (!ch) {
		ch = chunk_new(c, obj, index, CHUNK_PRESENT);
		if (!ch) {
			c->bytes_cached -= len;
			index_log_chunk_del(c->index, obj->id, index);
			return -ENOMEM;
		}
		obj->chunks[index] = ch;
	}
	ch->len = len;
	ch->sum = sum;
	ch->state = CHUNK_PRESENT;
	ch->verified = true;
	ch->touched_s = clock_now_ms() / 1000;
	list_add_tail(&c->lru, &ch->lru);
	c->chunks_cached++;
	obj->ncached++;
	store_note_write_ok(c);
	return 0;
}

static void touch(struct cache *c, struct object *obj, struct chunk *ch)
{
	uint32_t now = clock_now_ms() / 1000;

	ahead_clear(c, ch);
	list_del(&ch->lru);
	list_add_tail(&c->lru, &ch->lru);
	if (now - ch->touched_s >= TOUCH_INTERVAL_S) {
		ch->touched_s = now;
		/* A lost TOUCH only ages the chunk in the next start's LRU:
		 * no shortage to report. */
		index_log_touch(c->index, obj->id, ch->index);
	}
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
				  off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += n;
	}
	return 0;
}

/*
 * Chunks are written to their data file in pieces of this size.  One
 * pwrite() of a whole 4 MiB chunk cost the kernel twice the CPU of the
 * same bytes in 256 KiB pieces, nearly all in the copy into new page
 * cache folios: 1.8 s of daemon CPU against 0.8 s for a cold 512 MiB
 * read, measured on one VM.  A long write also keeps the file's lock
 * while other fetch threads spin on it.
 */
#define WRITE_PIECE (256u * 1024)

int store_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		size_t want = len - done < WRITE_PIECE ? len - done
						       : WRITE_PIECE;
		ssize_t n = pwrite(fd, (const char *)buf + done, want,
				   off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += n;
	}
	return 0;
}

void store_drop_chunk(struct cache *c, struct object *obj, struct chunk *ch)
{
	if (obj->lent) {
		drop_lent(c, obj);
		return;
	}
	punch(c, obj, ch);
	chunk_remove(c, obj, ch->index);
}

/* Drop a damaged chunk so that the next read refetches it. */
static void drop_damaged(struct cache *c, struct object *obj,
			 struct chunk *ch, const char *why)
{
	c->checksum_failures++;
	log_warn("cached chunk %u of %s is damaged (%s): fetching it again",
		 ch->index, obj->path ? obj->path : "(removed)", why);
	store_drop_chunk(c, obj, ch);
}

int store_check_chunk(const struct cache *c, int fd, const struct chunk *ch,
		      void *buf)
{
	uint64_t off = (uint64_t)ch->index * c->cfg.chunk_size;
	int ret = pread_full(fd, buf, ch->len, off);

	if (ret < 0)
		return ret;
	return XXH3_64bits(buf, ch->len) == ch->sum ? 0 : -EILSEQ;
}

/*
 * Check a chunk loaded from the index.  Called with the lock held, by the
 * one reader that set ch->verifying; drops the lock while reading.  A
 * damaged chunk still being read by others is left unverified, and the
 * next reader checks it again.
 */
static void verify(struct cache *c, struct object *obj, struct chunk *ch)
{
	char *buf = malloc(ch->len ? ch->len : 1);
	int fd = obj->fd;
	int ret = -ENOMEM;

	ch->readers++;
	pthread_mutex_unlock(&c->lock);
	if (buf)
		ret = store_check_chunk(c, fd, ch, buf);
	pthread_mutex_lock(&c->lock);
	ch->readers--;
	ch->verifying = false;
	pthread_cond_broadcast(&c->fetched);
	if (ret == 0)
		ch->verified = true;
	else if (ret != -ENOMEM && ch->readers == 0)
		drop_damaged(c, obj, ch, ret == -EILSEQ ? "checksum mismatch" :
			     strerror(-ret));
	free(buf);
}

/* Give up the FETCHING entry of chunk index, so that a reader fetches it. */
static void unfetch(struct cache *c, struct object *obj, uint32_t index)
{
	pthread_mutex_lock(&c->lock);
	chunk_remove(c, obj, index);
	pthread_cond_broadcast(&c->fetched);
	pthread_mutex_unlock(&c->lock);
}

/*
 * A chunk stored while it arrives.  The checksum is summed over the
 * pieces as they come, and they go to the data file through a buffer of
 * WRITE_PIECE bytes.  So the whole chunk is never in one buffer, and the
 * bytes are still in the CPU's cache from the receive when they are
 * written.  libcurl passes a body to its write callback in pieces of at
 * most CURL_MAX_WRITE_SIZE (16 KiB), and a pwrite() per piece would make
 * 16 times the system calls.
 */
struct chunk_write {
	int fd;			/* the data file; -1 when not stored */
	bool reserved;		/* len bytes of bytes_cached are ours */
	int err;		/* the first write error */
	XXH3_state_t *sum;
	char *buf;		/* WRITE_PIECE bytes */
	size_t fill;		/* bytes in buf */
	uint64_t buf_off;	/* where they go in the data file */
};

/* Allocate what w needs for any number of chunks.  Returns false when
 * memory is short. */
static bool chunk_write_init(struct chunk_write *w)
{
	w->sum = XXH3_createState();
	w->buf = malloc(WRITE_PIECE);
	return w->sum && w->buf;
}

static void chunk_write_free(struct chunk_write *w)
{
	XXH3_freeState(w->sum);
	free(w->buf);
}

/*
 * Start storing chunk index of obj, len bytes, which is FETCHING: reserve
 * its room and open the data file.  Called without the lock.  When there
 * is no room the bytes are only summed, and chunk_write_end() gives the
 * chunk up.
 *
 * A crash while a chunk arrives leaves the bytes written so far in the
 * data file, outside bytes_cached.  The next start punches them (see
 * punch_unlisted()).
 */
static void chunk_write_begin(struct cache *c, struct object *obj,
			      uint32_t len, struct chunk_write *w)
{
	int ret;

	w->fd = -1;
	w->err = 0;
	w->fill = 0;
	XXH3_64bits_reset(w->sum);
	pthread_mutex_lock(&c->lock);
	if (obj->kept)
		c->bytes_cached += len;	/* the only copy: past the budget */
	w->reserved = obj->kept || store_reserve(c, len) == 0;
	if (w->reserved) {
		ret = store_object_open_fd(c, obj);
		if (ret >= 0)
			w->fd = ret;
		else
			w->err = ret;
	}
	pthread_mutex_unlock(&c->lock);
}

static void chunk_write_flush(struct chunk_write *w)
{
	if (w->fill && w->fd >= 0 && !w->err)
		w->err = store_pwrite(w->fd, w->buf, w->fill, w->buf_off);
	w->fill = 0;
}

/* Store n bytes of the chunk that w writes, at off in the data file,
 * right after the bytes before. */
static void chunk_write_data(struct chunk_write *w, const void *data,
			     size_t n, uint64_t off)
{
	const char *p = data;

	XXH3_64bits_update(w->sum, data, n);
	if (w->fd < 0 || w->err)
		return;
	while (n) {
		size_t take = WRITE_PIECE - w->fill;

		if (w->fill == 0 && n >= WRITE_PIECE) {
			/* A whole piece needs no copy. */
			w->err = store_pwrite(w->fd, p, n, off);
			return;
		}
		if (take > n)
			take = n;
		if (w->fill == 0)
			w->buf_off = off;
		memcpy(w->buf + w->fill, p, take);
		w->fill += take;
		p += take;
		off += take;
		n -= take;
		if (w->fill == WRITE_PIECE)
			chunk_write_flush(w);
	}
}

/*
 * Finish chunk index of obj, len bytes, and wake the readers waiting for
 * it.  complete is false when not all its bytes arrived.  A chunk that
 * could not be stored (no room, disk error, incomplete) is given up, and
 * readers fetch it themselves.
 */
static void chunk_write_end(struct cache *c, struct object *obj,
			    uint32_t index, uint32_t len,
			    struct chunk_write *w, bool complete)
{
	uint64_t off = (uint64_t)index * c->cfg.chunk_size;
	uint64_t sum = XXH3_64bits_digest(w->sum);
	bool stored;

	chunk_write_flush(w);
	stored = w->fd >= 0 && complete;

	pthread_mutex_lock(&c->lock);
	if (complete) {
		c->misses++;
		c->bytes_from_origin += len;
	}
	if (w->err < 0) {
		store_note_write_error(c, w->fd >= 0 ?
				       "a chunk into its data file" :
				       "a data file", w->err);
		stored = false;
	}
	if (stored && store_insert_chunk(c, obj, index, len, sum) < 0)
		stored = false;	/* it released the reservation */
	else if (!stored && w->reserved)
		c->bytes_cached -= len;
	if (!stored) {
		/* Free the blocks of what was written, and serve the chunk
		 * from the origin. */
		if (w->fd >= 0)
			store_punch_range(c, obj, off, len);
		chunk_remove(c, obj, index);
	}
	pthread_cond_broadcast(&c->fetched);
	pthread_mutex_unlock(&c->lock);
}

/*
 * Fetch chunk index of obj from the origin into the store, and copy
 * [skip, skip + n) of it to out.  Called without the lock; the chunk is
 * FETCHING.  When the chunk cannot be stored (no room, disk error) the
 * bytes are still returned.
 */
static int fetch(struct cache *c, struct object *obj, uint32_t index,
		 const char *path, void *out, uint32_t skip, uint32_t n)
{
	uint32_t len = chunk_length(c, obj, index);
	uint64_t off = (uint64_t)index * c->cfg.chunk_size;
	struct chunk_write w;
	char *buf = malloc(len ? len : 1);
	bool ready = chunk_write_init(&w);
	size_t done = 0;
	int ret;

	ret = buf && ready ? c->origin->ops->read(c->origin, path,
						  obj->attr.version, off, len,
						  buf, &done) : -ENOMEM;
	if (ret == 0 && done != len)
		ret = -ESTALE;	/* shorter than this version: it changed */
	if (ret < 0) {
		unfetch(c, obj, index);
	} else {
		if (out)
			memcpy(out, buf + skip, n);
		chunk_write_begin(c, obj, len, &w);
		chunk_write_data(&w, buf, len, off);
		chunk_write_end(c, obj, index, len, &w, true);
	}
	chunk_write_free(&w);
	free(buf);
	return ret;
}

/*
 * A run of chunks fetched with one ranged read: each chunk is written as
 * its bytes arrive and stored once its last byte is in, so a reader
 * waits for its own chunk only.
 */
struct run {
	struct cache *c;
	struct object *obj;
	uint64_t start;		/* the offset of the run in the file */
	uint32_t index;		/* the chunk being filled */
	uint32_t end;		/* one past the last chunk of the run */
	uint64_t taken;		/* bytes of the run received so far */
	bool writing;		/* chunk index is begun */
	struct chunk_write w;
};

static int run_sink(void *arg, uint64_t pos, const void *data, size_t n)
{
	struct run *r = arg;
	const char *p = data;
	uint32_t cs = r->c->cfg.chunk_size;

	if (pos + n <= r->taken)
		return 0;	/* a retry sends again what we have */
	p += r->taken - pos;
	n -= r->taken - pos;
	while (n && r->index < r->end) {
		uint32_t len = chunk_length(r->c, r->obj, r->index);
		uint32_t fill = r->taken % cs;
		uint32_t take = n < len - fill ? n : len - fill;

		if (!r->writing) {
			chunk_write_begin(r->c, r->obj, len, &r->w);
			r->writing = true;
		}
		chunk_write_data(&r->w, p, take, r->start + r->taken);
		r->taken += take;
		p += take;
		n -= take;
		if (fill + take == len) {
			chunk_write_end(r->c, r->obj, r->index++, len, &r->w,
					true);
			r->writing = false;
		}
	}
	return 0;
}

/* Fetch chunks [first, first + count) of obj, all FETCHING.  Returns 0,
 * or the origin's error when some chunks did not arrive. */
static int fetch_run(struct cache *c, struct object *obj, uint32_t first,
		     uint32_t count, const char *path)
{
	uint64_t off = (uint64_t)first * c->cfg.chunk_size;
	uint64_t len = 0, done = 0;
	int ret = -ENOMEM;
	struct run r = {
		.c = c,
		.obj = obj,
		.start = off,
		.index = first,
		.end = first + count,
	};

	for (uint32_t i = first; i < first + count; i++)
		len += chunk_length(c, obj, i);
	if (chunk_write_init(&r.w))
		ret = c->origin->ops->read_stream(c->origin, path,
						  obj->attr.version, off, len,
						  run_sink, &r, &done);
	/* Shorter than this version: it changed. */
	if (ret == 0 && r.index < r.end)
		ret = -ESTALE;
	/* What did not arrive complete is left to the readers. */
	if (r.writing) {
		chunk_write_end(c, obj, r.index, chunk_length(c, obj, r.index),
				&r.w, false);
		r.index++;
	}
	for (; r.index < r.end; r.index++)
		unfetch(c, obj, r.index);
	chunk_write_free(&r.w);
	return ret;
}

/* Fetch chunks [first, first + count) of obj, all FETCHING: a run with
 * one request, or a single chunk.  Returns 0 or the origin's error. */
static int fetch_chunks(struct cache *c, struct object *obj, uint32_t first,
			uint32_t count, const char *path)
{
	if (count > 1)
		return fetch_run(c, obj, first, count, path);
	return fetch(c, obj, first, path, NULL, 0, 0);
}

/* Read [skip, skip + n) of chunk index of a pinned object. */
static int read_chunk(struct cache *c, struct object *obj, uint32_t index,
		      void *out, uint32_t skip, uint32_t n)
{
	uint64_t off = (uint64_t)index * c->cfg.chunk_size + skip;
	struct chunk *ch;
	char *path;
	int ret;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		ch = obj->chunks[index];
		if (!ch)
			break;
		if (ch->state == CHUNK_FETCHING) {
			pthread_cond_wait(&c->fetched, &c->lock);
			continue;
		}
		ret = store_object_open_fd(c, obj);
		if (ret < 0) {
			pthread_mutex_unlock(&c->lock);
			return ret;
		}
		if (ch->verifying) {
			pthread_cond_wait(&c->fetched, &c->lock);
			continue;
		}
		if (!ch->verified) {
			ch->verifying = true;
			verify(c, obj, ch);
			continue;
		}
		if (!out) {
			/* store_fetch(): cached, and now recently used. */
			touch(c, obj, ch);
			pthread_mutex_unlock(&c->lock);
			return 0;
		}
		ch->readers++;
		touch(c, obj, ch);
		c->hits++;
		c->bytes_from_cache += n;
		pthread_mutex_unlock(&c->lock);

		ret = pread_full(obj->fd, out, n, off);

		pthread_mutex_lock(&c->lock);
		ch->readers--;
		if (ret == 0) {
			pthread_mutex_unlock(&c->lock);
			return 0;
		}
		/* The next pass checks the chunk, or drops it. */
		ch->verified = false;
	}

	path = obj->path ? strdup(obj->path) : NULL;
	ch = path ? chunk_new(c, obj, index, CHUNK_FETCHING) : NULL;
	if (!ch) {
		pthread_mutex_unlock(&c->lock);
		free(path);
		return obj->path ? -ENOMEM : -ESTALE;
	}
	obj->chunks[index] = ch;
	pthread_mutex_unlock(&c->lock);

	ret = fetch(c, obj, index, path, out, skip, n);
	free(path);
	return ret;
}

int store_read(struct cache *c, struct object *obj, void *buf, size_t len,
	       uint64_t offset)
{
	uint32_t cs = c->cfg.chunk_size;
	size_t done = 0;

	if (offset >= obj->attr.size)
		return 0;
	if (len > obj->attr.size - offset)
		len = obj->attr.size - offset;
	while (done < len) {
		uint64_t pos = offset + done;
		uint32_t index = pos / cs;
		uint32_t skip = pos % cs;
		uint32_t n = cs - skip;
		int ret;

		if (n > len - done)
			n = len - done;
		ret = read_chunk(c, obj, index, buf ? (char *)buf + done : NULL,
				 skip, n);
		if (ret < 0)
			return done ? (int)done : ret;
		done += n;
	}
	return done;
}

/* Chunks that one request may fetch: a run of RA_RUN_BYTES where the
 * origin streams, else one. */
static uint32_t run_chunks_max(const struct cache *c)
{
	uint32_t cs = c->cfg.chunk_size;

	return c->origin->ops->read_stream && RA_RUN_BYTES > cs ?
	       RA_RUN_BYTES / cs : 1;
}

/* Mark the missing chunks of obj from first on as FETCHING, up to end and
 * run_max of them in a row.  Returns their count.  Lock held. */
static uint32_t claim_run(struct cache *c, struct object *obj, uint32_t first,
			  uint32_t end, uint32_t run_max)
{
	uint32_t n = 0;

	while (first + n < end && n < run_max && !obj->chunks[first + n]) {
		struct chunk *ch = chunk_new(c, obj, first + n,
					     CHUNK_FETCHING);

		if (!ch)
			break;
		obj->chunks[first + n++] = ch;
	}
	return n;
}

/* The offset where chunk index of obj ends. */
static uint64_t chunk_end(const struct cache *c, const struct object *obj,
			  uint32_t index)
{
	return (uint64_t)index * c->cfg.chunk_size +
	       chunk_length(c, obj, index);
}

/* Bytes of the chunks [first, end) of obj that are cached.  Lock held. */
static uint64_t present_bytes(const struct object *obj, uint32_t first,
			      uint32_t end)
{
	uint64_t bytes = 0;

	for (uint32_t i = first; i < end; i++)
		if (obj->chunks[i] && obj->chunks[i]->state == CHUNK_PRESENT)
			bytes += obj->chunks[i]->len;
	return bytes;
}

int store_fetch(struct cache *c, struct object *obj, uint64_t offset,
		uint64_t len, uint64_t *missing)
{
	uint32_t cs = c->cfg.chunk_size, run_max = run_chunks_max(c);
	uint32_t first, end, i;
	int ret = 0;

	*missing = 0;
	if (offset >= obj->attr.size || len == 0)
		return 0;
	if (len > obj->attr.size - offset)
		len = obj->attr.size - offset;
	first = offset / cs;
	end = (offset + len - 1) / cs + 1;
	pthread_mutex_lock(&c->lock);
	for (i = first; i < end && ret == 0 && !obj->detached;) {
		uint32_t n;
		char *path;

		if (obj->chunks[i]) {
			i++;
			continue;
		}
		n = claim_run(c, obj, i, end, run_max);
		if (n == 0) {
			ret = -ENOMEM;
			break;
		}
		path = obj->path ? strdup(obj->path) : NULL;
		ret = obj->path ? -ENOMEM : -ESTALE;
		pthread_mutex_unlock(&c->lock);
		if (path)
			ret = fetch_chunks(c, obj, i, n, path);
		for (uint32_t k = 0; !path && k < n; k++)
			unfetch(c, obj, i + k);
		free(path);
		pthread_mutex_lock(&c->lock);
		i += n;
	}
	pthread_mutex_unlock(&c->lock);
	/* Wait for the chunks that others fetch, check those loaded from
	 * the index, and mark every chunk of the range recently used. */
	if (ret == 0)
		ret = store_read(c, obj, NULL, len, offset);
	pthread_mutex_lock(&c->lock);
	*missing = chunk_end(c, obj, end - 1) - (uint64_t)first * cs -
		   present_bytes(obj, first, end);
	pthread_mutex_unlock(&c->lock);
	return ret < 0 ? ret : 0;
}

bool store_wait_fetched(struct cache *c, struct object *obj,
			uint64_t offset, size_t len)
{
	uint32_t cs = c->cfg.chunk_size;
	uint32_t first, end, i;
	bool present = true;

	if (offset >= obj->attr.size || len == 0)
		return false;
	if (len > obj->attr.size - offset)
		len = obj->attr.size - offset;
	first = offset / cs;
	end = (offset + len - 1) / cs + 1;
	pthread_mutex_lock(&c->lock);
	for (i = first; i < end && present;) {
		struct chunk *ch = obj->chunks[i];

		if (ch && ch->state == CHUNK_FETCHING) {
			pthread_cond_wait(&c->fetched, &c->lock);
			i = first;	/* a chunk may be gone meanwhile */
			continue;
		}
		present = ch != NULL;
		i++;
	}
	pthread_mutex_unlock(&c->lock);
	return present;
}

int store_pin(struct cache *c, struct object *obj, uint64_t offset,
	      size_t len, int *fd, size_t *n)
{
	uint32_t cs = c->cfg.chunk_size;
	uint64_t end = offset + len, pinned_end = offset;
	uint32_t i;

	if (offset >= obj->attr.size || len == 0)
		return 0;
	if (end > obj->attr.size)
		end = obj->attr.size;
	pthread_mutex_lock(&c->lock);
	if (store_object_open_fd(c, obj) < 0)
		goto out_unlock;
	i = offset / cs;
	for (; pinned_end < end; i++) {
		struct chunk *ch = obj->chunks[i];

		if (!ch || ch->state != CHUNK_PRESENT || !ch->verified ||
		    ch->verifying)
			break;
		ch->readers++;
		touch(c, obj, ch);
		c->hits++;
		pinned_end = (uint64_t)(i + 1) * cs;
	}
	if (pinned_end < end) {
		/* A short reply reads as end of file: all or nothing. */
		while (i-- > offset / cs) {
			obj->chunks[i]->readers--;
			c->hits--;
		}
		pinned_end = offset;
		goto out_unlock;
	}
	*fd = obj->fd;
	*n = end - offset;
	obj->refs++;		/* the caller's pin keeps fd open */
	c->bytes_from_cache += *n;
	c->bytes_zero_copy += *n;
out_unlock:
	pthread_mutex_unlock(&c->lock);
	return pinned_end > offset;
}

void store_unpin(struct cache *c, struct object *obj, uint64_t offset,
		 size_t n)
{
	uint32_t cs = c->cfg.chunk_size;

	pthread_mutex_lock(&c->lock);
	for (uint64_t i = offset / cs; i <= (offset + n - 1) / cs; i++)
		obj->chunks[i]->readers--;
	store_object_put(c, obj);
	pthread_mutex_unlock(&c->lock);
}

bool store_complete(struct cache *c, struct object *obj)
{
	bool unlocked;

	/* Only a pass that never dropped the lock proves completeness. */
	do {
		unlocked = false;
		for (uint32_t i = 0; i < obj->nchunks; i++) {
			struct chunk *ch = obj->chunks[i];

			if (!ch || ch->state != CHUNK_PRESENT)
				return false;
			if (ch->verified)
				continue;
			unlocked = true;
			if (ch->verifying) {
				pthread_cond_wait(&c->fetched, &c->lock);
			} else if (store_object_open_fd(c, obj) < 0) {
				return false;
			} else {
				ch->verifying = true;
				verify(c, obj, ch);
			}
		}
	} while (unlocked);
	return true;
}

int store_lend(struct cache *c, struct object *obj)
{
	int fd = store_object_open_fd(c, obj);

	if (fd < 0)
		return fd;
	fd = open_data(c, obj->id, O_RDONLY);
	if (fd < 0)
		return -errno;
	if (!obj->lent) {
		obj->lent = true;
		if (!obj->logged)
			store_log_object(c, obj);
		store_index_result(c, index_log_lent(c->index, obj->id));
	}
	return fd;
}

/* Replay of the index into the store (see index.h). */

struct replay_state {
	struct cache *c;
	struct htab by_id;	/* "%016x" id -> object */
};

static void id_key(uint64_t id, char key[17])
{
	snprintf(key, 17, "%016" PRIx64, id);
}

static struct object *by_id(struct replay_state *st, uint64_t id)
{
	char key[17];

	id_key(id, key);
	return htab_get(&st->by_id, key);
}

static void replay_object(void *arg, uint64_t id, const char *path,
			  const struct origin_attr *attr,
			  int64_t checked_wall_ms)
{
	struct replay_state *st = arg;
	struct cache *c = st->c;
	struct object *obj = by_id(st, id), *old;
	char key[17];

	if (obj) {
		/* A rename or a metadata change of a known object. */
		if (htab_get(&c->objects, obj->path) == obj)
			htab_remove(&c->objects, obj->path);
		free(obj->path);
		obj->path = strdup(path);
		if (attr->size == obj->attr.size)
			obj->attr = *attr;
	} else {
		obj = object_alloc(c, id, path, attr);
		if (!obj)
			return;
		obj->logged = true;
		id_key(id, key);
		htab_put(&st->by_id, key, obj);
		c->objects_cached++;
	}
	if (!obj->path)
		return;
	obj->checked_ms = checked_since(checked_wall_ms);
	old = htab_get(&c->objects, path);
	htab_put(&c->objects, path, obj);
	if (old && old != obj) {
		/* A crash came before the old version's OBJECT_DEL. */
		id_key(old->id, key);
		htab_remove(&st->by_id, key);
		store_object_detach(c, old);
	}
	if (id >= c->next_id)
		c->next_id = id + 1;
}

static void replay_object_del(void *arg, uint64_t id)
{
	struct replay_state *st = arg;
	struct object *obj = by_id(st, id);
	char key[17];

	if (!obj)
		return;
	id_key(id, key);
	htab_remove(&st->by_id, key);
	store_object_detach(st->c, obj);
}

static void replay_chunk(void *arg, uint64_t id, uint32_t index,
			 uint32_t len, uint64_t sum)
{
	struct replay_state *st = arg;
	struct cache *c = st->c;
	struct object *obj = by_id(st, id);
	struct chunk *ch;

	if (!obj || index >= obj->nchunks ||
	    len != chunk_length(c, obj, index))
		return;
	if (obj->chunks[index])
		chunk_remove(c, obj, index);
	ch = chunk_new(c, obj, index, CHUNK_PRESENT);
	if (!ch)
		return;
	ch->len = len;
	ch->sum = sum;
	obj->chunks[index] = ch;
	list_add_tail(&c->lru, &ch->lru);
	c->bytes_cached += len;
	c->chunks_cached++;
	obj->ncached++;
}

static void replay_chunk_del(void *arg, uint64_t id, uint32_t index)
{
	struct replay_state *st = arg;
	struct object *obj = by_id(st, id);

	if (!obj || index >= obj->nchunks || !obj->chunks[index])
		return;
	chunk_remove(st->c, obj, index);
}

static void replay_touch(void *arg, uint64_t id, uint32_t index)
{
	struct replay_state *st = arg;
	struct object *obj = by_id(st, id);
	struct chunk *ch;

	if (!obj || index >= obj->nchunks || !obj->chunks[index])
		return;
	ch = obj->chunks[index];
	list_del(&ch->lru);
	list_add_tail(&st->c->lru, &ch->lru);
}

static void replay_lent(void *arg, uint64_t id)
{
	struct object *obj = by_id(arg, id);

	if (obj)
		obj->lent = true;
}

/* Replay the index of c through the store's replay functions: with
 * scan, read it unchanged, else open it into c->index. */
static int replay_index(struct cache *c, struct recordlog_scan *scan,
			int *reset, char *err, size_t errlen)
{
	struct replay_state st = { .c = c };
	struct index_replay r = {
		.arg = &st,
		.object = replay_object,
		.object_del = replay_object_del,
		.chunk = replay_chunk,
		.chunk_del = replay_chunk_del,
		.touch = replay_touch,
		.lent = replay_lent,
	};
	char *path;
	int ret;

	if (asprintf(&path, "%s/index", c->root) < 0)
		return -ENOMEM;
	if (htab_init(&st.by_id) < 0) {
		free(path);
		return -ENOMEM;
	}
	if (scan)
		ret = index_read(path, &r, scan, err, errlen);
	else
		ret = index_open(path, c->cfg.chunk_size, &r, &c->index, reset,
				 err, errlen);
	htab_release(&st.by_id);
	free(path);
	return ret;
}

static void collect_empty(void *arg, const char *key, void *value)
{
	struct object *obj = value, ***next = arg;

	(void)key;
	if (obj->ncached == 0 && obj->refs == 0)
		*(*next)++ = obj;
}

/* Remove the replayed objects that have no chunk: a crash can leave one
 * between its OBJECT record and its first chunk. */
static int drop_empty_objects(struct cache *c)
{
	struct object **empty = calloc(c->objects.count + 1, sizeof(*empty));
	struct object **next = empty;

	if (!empty)
		return -ENOMEM;
	htab_for_each(&c->objects, collect_empty, &next);
	for (struct object **p = empty; p < next; p++)
		store_object_detach(c, *p);
	free(empty);
	return 0;
}

/*
 * Punch the ranges of obj's data file that no replayed chunk covers.  A
 * chunk that was arriving when the last daemon died left its bytes
 * there, outside bytes_cached.  Returns the number of ranges punched.
 */
static unsigned punch_unlisted(struct cache *c, struct object *obj)
{
	uint64_t cs = c->cfg.chunk_size, off;
	unsigned punched = 0;
	uint32_t i = 0;
	int fd;

	if (obj->lent || obj->ncached == obj->nchunks)
		return 0;
	fd = open_data(c, obj->id, O_RDWR);
	if (fd < 0)
		return 0;
	while (i < obj->nchunks) {
		if (obj->chunks[i]) {
			i++;
			continue;
		}
		off = i * cs;
		while (i < obj->nchunks && !obj->chunks[i])
			i++;
		if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)off, (off_t)(i * cs - off)) == 0)
			punched++;
		else
			log_debug("cannot punch bytes %" PRIu64 "-%" PRIu64
				  " of %s: %s", off, i * cs - 1, obj->path,
				  strerror(errno));
	}
	close(fd);
	return punched;
}

struct punch_state {
	struct cache *c;
	unsigned ranges;
};

static void punch_unlisted_entry(void *arg, const char *key, void *value)
{
	struct punch_state *st = arg;

	(void)key;
	st->ranges += punch_unlisted(st->c, value);
}

bool hex_name_value(const char *name, size_t digits, uint64_t *value)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < digits; i++) {
		char ch = name[i];

		if (ch >= '0' && ch <= '9')
			v = v << 4 | (uint64_t)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v = v << 4 | (uint64_t)(ch - 'a' + 10);
		else
			return false;
	}
	if (name[i] != '\0')
		return false;
	*value = v;
	return true;
}

bool store_data_name_id(unsigned folder, const char *name, uint64_t *id)
{
	return hex_name_value(name, 16, id) && (*id & 0xff) == folder;
}

struct id_set {
	uint64_t *ids;
	size_t count;
};

static void add_id(void *arg, const char *key, void *value)
{
	struct id_set *set = arg;
	const struct object *obj = value;

	(void)key;
	set->ids[set->count++] = obj->id;
}

static int compare_ids(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Remove the files of data/XX, open as dir_fd, whose id is not in set.
 * Returns how many it removed. */
static unsigned remove_orphans_in(int dir_fd, unsigned folder,
				  const struct id_set *set)
{
	DIR *d = fdopendir(dir_fd);
	unsigned removed = 0;
	struct dirent *e;

	if (!d) {
		close(dir_fd);
		return 0;
	}
	while ((e = readdir(d))) {
		uint64_t id;

		if (!store_data_name_id(folder, e->d_name, &id) ||
		    bsearch(&id, set->ids, set->count, sizeof(id),
			    compare_ids))
			continue;
		if (unlinkat(dir_fd, e->d_name, 0) == 0)
			removed++;
		else
			log_debug("cannot remove the orphan data file %02x/%s:"
				  " %s", folder, e->d_name, strerror(errno));
	}
	closedir(d);
	return removed;
}

/*
 * Remove the data files that no object of the index names.  A crash
 * leaves them when it comes between a data file's creation and its first
 * record, or after a compaction dropped the records of a file removed
 * while a handle still held it.  Returns how many it removed.
 */
static unsigned remove_orphans(struct cache *c)
{
	struct id_set set = { .ids = malloc((c->objects.count + 1) *
					    sizeof(uint64_t)) };
	unsigned removed = 0;

	if (!set.ids)
		return 0;
	htab_for_each(&c->objects, add_id, &set);
	qsort(set.ids, set.count, sizeof(uint64_t), compare_ids);
	for (unsigned folder = 0; folder < 256; folder++) {
		char dir[16];
		int fd;

		snprintf(dir, sizeof(dir), "data/%02x", folder);
		fd = openat(c->root_fd, dir, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			removed += remove_orphans_in(fd, folder, &set);
	}
	free(set.ids);
	return removed;
}

int store_replay(struct cache *c, char *err, size_t errlen)
{
	int reset, ret = replay_index(c, NULL, &reset, err, errlen);

	if (ret < 0)
		return ret;
	ret = drop_empty_objects(c);
	if (ret < 0) {
		snprintf(err, errlen, "out of memory");
		return ret;
	}
	if (c->unclean_start && !reset) {
		struct punch_state st = { .c = c };

		unsigned orphans;

		htab_for_each(&c->objects, punch_unlisted_entry, &st);
		orphans = remove_orphans(c);
		log_info("cache %s was not closed cleanly: punched %u ranges "
			 "of data files that no cached chunk covers, removed %u"
			 " data files that no index record names", c->root,
			 st.ranges, orphans);
	}
	c->unclean_start = false;
	/* A lower cache_size than the last run's takes effect now. */
	store_shrink(c);
	return reset;
}

void store_shrink(struct cache *c)
{
	while (c->bytes_cached > c->cfg.size_max && evict_one(c))
		;
}

int store_read_index(struct cache *c, struct recordlog_scan *scan, char *err,
		     size_t errlen)
{
	bool keep = c->keep_files;
	int ret;

	c->keep_files = true;
	ret = replay_index(c, scan, NULL, err, errlen);
	c->keep_files = keep;
	return ret;
}

static void compact_object(void *arg, const char *key, void *value)
{
	struct cache *c = arg;
	struct object *obj = value;

	(void)key;
	obj->logged = false;
	/* An open object without chunks keeps its record, because its data
	 * file may exist, as when eviction took every chunk of an open file.
	 * Its last close, or else the next start, removes both. */
	if (obj->ncached == 0 && obj->refs == 0)
		return;
	store_log_object(c, obj);
	if (obj->lent)
		index_log_lent(c->index, obj->id);
}

/* Rewrite the index with only live records, chunks in LRU order. */
int store_compact(struct cache *c)
{
	struct list_node *n;
	int ret = index_compact_begin(c->index);

	if (ret < 0)
		return ret;
	c->compacting = true;
	htab_for_each(&c->objects, compact_object, c);
	for (n = c->lru.next; n != &c->lru; n = n->next) {
		struct chunk *ch = list_entry(n, struct chunk, lru);

		if (ch->obj->logged)
			index_log_chunk(c->index, ch->obj->id, ch->index,
					ch->len, ch->sum);
	}
	c->compacting = false;
	return index_compact_end(c->index, 1);
}

/* Estimated bytes of a compact index, to decide when to compact. */
uint64_t store_live_index_bytes(const struct cache *c)
{
	return c->objects_cached * 160 + c->chunks_cached * 40 + 4096;
}

/*
 * Readahead: sequential readers queue the chunks after the one they read,
 * and RA_THREADS threads fetch them in parallel.  Consecutive missing
 * chunks go out as runs of up to RA_RUN_BYTES in one ranged read when the
 * origin can stream, which saves a request and its round trip per chunk.
 * A queued chunk is FETCHING from the moment it is queued, so a reader
 * that reaches it waits for that fetch instead of starting another one.
 * Each job pins its object.  Memory stays bounded: each thread holds one
 * chunk buffer, and the queue holds at most RA_QUEUE_MAX jobs.
 */
#define RA_QUEUE_MAX 64

struct ra_job {
	struct ra_job *next;
	struct object *obj;
	uint32_t index;
	uint32_t count;
};

/* Run job, called without the lock. */
static void ra_run(struct cache *c, struct ra_job *job, const char *path)
{
	if (!path) {
		/* Detached while queued: nothing to read. */
		for (uint32_t i = 0; i < job->count; i++)
			unfetch(c, job->obj, job->index + i);
	} else {
		fetch_chunks(c, job->obj, job->index, job->count, path);
	}
}

static void *ra_worker(void *arg)
{
	struct cache *c = arg;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct ra_job *job;
		char *path;

		while (!c->ra_head && !c->ra_stop)
			pthread_cond_wait(&c->ra_wake, &c->lock);
		if (c->ra_stop)
			break;
		job = c->ra_head;
		c->ra_head = job->next;
		if (!c->ra_head)
			c->ra_tail = &c->ra_head;
		c->ra_queued--;
		path = job->obj->path ? strdup(job->obj->path) : NULL;
		pthread_mutex_unlock(&c->lock);

		ra_run(c, job, path);
		free(path);
		pthread_mutex_lock(&c->lock);
		store_object_put(c, job->obj);
		free(job);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* Queue chunks [first, first + count) of obj, all missing, as one job. */
static bool queue_run(struct cache *c, struct object *obj, uint32_t first,
		      uint32_t count)
{
	struct ra_job *job = calloc(1, sizeof(*job));
	uint32_t i;

	if (!job)
		return false;
	for (i = 0; i < count; i++) {
		struct chunk *ch = chunk_new(c, obj, first + i,
					     CHUNK_FETCHING);

		if (!ch)
			break;
		ch->ahead = true;
		obj->nahead++;
		c->ahead_chunks++;
		obj->chunks[first + i] = ch;
	}
	if (i == 0) {
		free(job);
		return false;
	}
	obj->refs++;
	job->obj = obj;
	job->index = first;
	job->count = i;
	*c->ra_tail = job;
	c->ra_tail = &job->next;
	c->ra_queued++;
	c->readaheads += i;
	return i == count;
}

/* Chunks of the cache per sequential reader below which readahead
 * stops evicting: the chunk the reader is in, the next, and room ahead. */
#define RA_READER_CHUNKS 4

/*
 * Return how many more chunks readahead may queue.  The chunks it queued
 * that no reader has reached yet take at most a quarter of cache_size,
 * so that they and the chunks the readers are in fit together.  Older
 * chunks are evicted for them as for any fetch.  Lock held.
 */
static uint64_t ahead_room(const struct cache *c)
{
	uint64_t chunks = c->cfg.size_max / c->cfg.chunk_size;
	uint64_t max = chunks / 4, room, free_chunks;

	room = max > c->ahead_chunks ? max - c->ahead_chunks : 0;
	if ((uint64_t)c->ra_readers * RA_READER_CHUNKS <= chunks)
		return room;
	/* Too many readers for the cache: any chunk readahead evicts
	 * would be one that a reader is still in.  Use free room only. */
	free_chunks = c->cfg.size_max > c->bytes_cached ?
		      (c->cfg.size_max - c->bytes_cached) / c->cfg.chunk_size :
		      0;
	return room < free_chunks ? room : free_chunks;
}

/*
 * Queue the missing chunks of [first, first + count) in runs.  A run
 * shorter than the longest allowed waits for the window to grow over it,
 * unless it starts in the nearer half of the window, where the reader
 * will soon need it.
 */
void store_prefetch(struct cache *c, struct object *obj, uint32_t first,
		    uint32_t count)
{
	uint32_t run_max = run_chunks_max(c);
	uint32_t end = first + count, i = first;

	if (end > obj->nchunks)
		end = obj->nchunks;
	pthread_mutex_lock(&c->lock);
	/* The reader is in the chunk before first, maybe still waiting for
	 * it: that chunk no longer takes readahead's room. */
	if (first > 0 && first <= obj->nchunks && obj->chunks[first - 1])
		ahead_clear(c, obj->chunks[first - 1]);
	while (i < end && c->ra_queued < RA_QUEUE_MAX && !obj->detached &&
	       c->ra_nthreads) {
		uint64_t room = ahead_room(c);
		uint32_t n = 0;

		if (obj->chunks[i]) {
			i++;
			continue;
		}
		while (i + n < end && n < run_max && n < room &&
		       !obj->chunks[i + n])
			n++;
		if (n == 0)
			break;
		if (n < run_max && i + n == end && i - first > count / 2)
			break;
		if (!queue_run(c, obj, i, n))
			break;
		i += n;
	}
	pthread_cond_broadcast(&c->ra_wake);
	pthread_mutex_unlock(&c->lock);
}

void store_willneed(struct cache *c, struct object *obj, uint32_t first,
		    uint32_t count)
{
	uint32_t cs = c->cfg.chunk_size;
	uint32_t i = first;
	int fd;

	pthread_mutex_lock(&c->lock);
	fd = obj->fd;
	while (i < obj->nchunks && i < first + count && obj->chunks[i] &&
	       obj->chunks[i]->state == CHUNK_PRESENT)
		i++;
	if (i > first && fd >= 0)
		obj->refs++;	/* keeps fd open */
	pthread_mutex_unlock(&c->lock);
	if (i == first || fd < 0)
		return;
	posix_fadvise(fd, (off_t)first * cs, (off_t)(i - first) * cs,
		      POSIX_FADV_WILLNEED);
	pthread_mutex_lock(&c->lock);
	store_object_put(c, obj);
	pthread_mutex_unlock(&c->lock);
}

int store_ra_start(struct cache *c)
{
	c->ra_tail = &c->ra_head;
	pthread_cond_init(&c->ra_wake, NULL);
	for (; c->ra_nthreads < RA_THREADS; c->ra_nthreads++)
		if (pthread_create(&c->ra_threads[c->ra_nthreads], NULL,
				   ra_worker, c) != 0)
			return -EAGAIN;
	return 0;
}

void store_ra_stop(struct cache *c)
{
	struct ra_job *job;

	pthread_mutex_lock(&c->lock);
	c->ra_stop = true;
	pthread_cond_broadcast(&c->ra_wake);
	pthread_mutex_unlock(&c->lock);
	for (unsigned i = 0; i < c->ra_nthreads; i++)
		pthread_join(c->ra_threads[i], NULL);
	c->ra_nthreads = 0;
	pthread_mutex_lock(&c->lock);
	while ((job = c->ra_head)) {
		c->ra_head = job->next;
		for (uint32_t i = 0; i < job->count; i++)
			chunk_remove(c, job->obj, job->index + i);
		store_object_put(c, job->obj);
		free(job);
	}
	c->ra_tail = &c->ra_head;
	pthread_mutex_unlock(&c->lock);
}
