/*
 * cache.c - opening a cache folder, attributes, listings and the
 * namespace operations of the engine.  File content is in file.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "clock.h"
#include "index.h"
#include "journal.h"
#include "internal.h"
#include "log.h"

bool cache_is_fresh(uint64_t since_ms, uint64_t ttl_ms)
{
	return clock_now_ms() - since_ms < ttl_ms;
}

/* Make every missing folder of path, mode 0700. */
static int mkdir_parents(const char *path)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * Name the folder of an origin inside cache_dir: its identity with
 * unsafe characters replaced, cut to 48 bytes, and a hash of the whole
 * identity, so that two origins never share a folder.
 */
static char *origin_folder(const struct cache_config *cfg,
			   const struct origin *o)
{
	char safe[49];
	size_t n = 0;
	char *path;

	for (const char *p = o->identity; *p && n < sizeof(safe) - 1; p++) {
		char ch = *p;

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '-'))
			ch = '_';
		safe[n++] = ch;
	}
	safe[n] = '\0';
	if (asprintf(&path, "%s/%s-%016" PRIx64, cfg->dir, safe,
		     (uint64_t)XXH3_64bits(o->identity,
					   strlen(o->identity))) < 0)
		return NULL;
	return path;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Empty a subfolder of the cache folder (tmp/, or data/ on reset). */
static void empty_folder(struct cache *c, const char *name)
{
	char *path;

	if (asprintf(&path, "%s/%s", c->root, name) < 0)
		return;
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	mkdir(path, 0700);
	free(path);
}

int cache_lock_folder(int root_fd, char *holder, size_t len, bool *unclean)
{
	char pid[32];
	int fd, n;

	fd = openat(root_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		snprintf(holder, len, "%s", pid[0] ? pid : "unknown");
		close(fd);
		return -EBUSY;
	}
	if (unclean)
		*unclean = pread(fd, pid, 1, 0) == 1;
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, n, 0) < 0)
		log_debug("cannot write the pid to the lock file");
	return fd;
}

/* Line that a daemon adds to its lock file once it no longer serves its
 * mount and is only finishing its work (cache_mark_stopping()). */
#define LOCK_STOPPING "stopping\n"
/* How long a start waits for a stopping daemon to release the folder. */
#define STOPPING_WAIT_MS 30000
#define STOPPING_POLL_MS 100

/* Whether the daemon that holds the lock of the folder is stopping. */
static bool holder_stopping(int root_fd)
{
	char text[64];
	int fd = openat(root_fd, "lock", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	return strstr(text, "\n" LOCK_STOPPING) != NULL;
}

void cache_mark_stopping(struct cache *c)
{
	char text[64];
	int n;

	if (c->lock_fd < 0)
		return;
	n = snprintf(text, sizeof(text), "%d\n" LOCK_STOPPING, (int)getpid());
	if (pwrite(c->lock_fd, text, n, 0) != n)
		log_debug("cannot mark the lock file of %s", c->root);
}

/*
 * Take the lock of the cache folder.  A daemon that was just unmounted
 * may still hold it while it commits and uploads what it has left, so a
 * start waits up to STOPPING_WAIT_MS for such a daemon to exit.
 */
static int lock_folder(struct cache *c, char *err, size_t errlen)
{
	char pid[32];
	unsigned waited_ms = 0;

	for (;;) {
		c->lock_fd = cache_lock_folder(c->root_fd, pid, sizeof(pid),
					       &c->unclean_start);
		if (c->lock_fd != -EBUSY || !holder_stopping(c->root_fd) ||
		    waited_ms >= STOPPING_WAIT_MS)
			break;
		if (waited_ms == 0)
			log_info("waiting for nearfs pid %s, which is stopping, "
				 "to release the cache folder %s", pid,
				 c->root);
		usleep(STOPPING_POLL_MS * 1000);
		waited_ms += STOPPING_POLL_MS;
	}
	if (c->lock_fd == -EBUSY && waited_ms >= STOPPING_WAIT_MS) {
		snprintf(err, errlen, "the cache folder %s is still held by "
			 "nearfs pid %s, which stopped serving its mount %u s "
			 "ago and is still finishing (its log tells what it "
			 "uploads): wait for it to exit, or give this mount "
			 "another cache_dir", c->root, pid,
			 (unsigned)(STOPPING_WAIT_MS / 1000));
		c->lock_fd = -1;
		return -EBUSY;
	}
	if (c->lock_fd == -EBUSY) {
		snprintf(err, errlen, "the cache folder %s is in use by "
			 "another nearfs (pid %s): unmount it first, or give "
			 "this mount another cache_dir", c->root, pid);
		c->lock_fd = -1;
		return -EBUSY;
	}
	if (c->lock_fd < 0) {
		int ret = c->lock_fd;

		snprintf(err, errlen, "cannot create %s/lock: %s", c->root,
			 strerror(-ret));
		c->lock_fd = -1;
		return ret;
	}
	return 0;
}

/*
 * Check that a cache folder belongs to the user that runs nearfs and has
 * none of the mode bits in forbidden.  A user who can replace files in
 * it could make nearfs serve any bytes.
 */
static int check_owner(const char *path, mode_t forbidden, char *err,
		       size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "cannot check the cache folder %s: %s",
			 path, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "the cache folder %s is not a folder: "
			 "give another cache_dir", path);
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "the cache folder %s belongs to uid %u, "
			 "not to uid %u that runs nearfs: chown it, or give "
			 "another cache_dir", path, (unsigned)st.st_uid,
			 (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & forbidden) {
		snprintf(err, errlen, "the cache folder %s has mode %03o, open "
			 "to other users: run chmod %s %s", path,
			 (unsigned)(st.st_mode & 0777),
			 forbidden == 077 ? "700" : "go-w", path);
		return -EPERM;
	}
	return 0;
}

static int open_folder(struct cache *c, const char *cache_dir, char *err,
		       size_t errlen)
{
	struct stat st;
	int ret;

	/* A cache_dir of another user explains a failed mkdir best. */
	if (stat(cache_dir, &st) == 0) {
		ret = check_owner(cache_dir, 022, err, errlen);
		if (ret < 0)
			return ret;
	}
	ret = mkdir_parents(c->root);
	if (ret < 0) {
		snprintf(err, errlen, "cannot create the cache folder %s: %s; "
			 "give a cache_dir on a writable filesystem, in a "
			 "folder that uid %u may write to (now %s)", c->root,
			 strerror(-ret), (unsigned)geteuid(), cache_dir);
		return ret;
	}
	ret = check_owner(cache_dir, 022, err, errlen);
	if (ret == 0)
		ret = check_owner(c->root, 077, err, errlen);
	if (ret < 0)
		return ret;
	c->root_fd = open(c->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->root_fd < 0) {
		snprintf(err, errlen, "cannot open the cache folder %s: %s",
			 c->root, strerror(errno));
		return -errno;
	}
	ret = lock_folder(c, err, errlen);
	if (ret < 0)
		return ret;
	if ((mkdirat(c->root_fd, "data", 0700) < 0 && errno != EEXIST) ||
	    (mkdirat(c->root_fd, "tmp", 0700) < 0 && errno != EEXIST)) {
		snprintf(err, errlen, "cannot create folders in %s: %s",
			 c->root, strerror(errno));
		return -errno;
	}
	/* Files open for writing when a daemon died: never committed. */
	empty_folder(c, "tmp");
	return 0;
}

static int load_index(struct cache *c, char *err, size_t errlen)
{
	int ret = store_replay(c, err, errlen);

	if (ret < 0)
		return ret;
	if (ret == 1)
		empty_folder(c, "data");
	if (index_file_size(c->index) > 2 * store_live_index_bytes(c) &&
	    store_compact(c) < 0)
		log_warn("cannot compact the cache index in %s", c->root);
	log_info("cache %s: %" PRIu64 " chunks, %" PRIu64 " bytes of %"
		 PRIu64 " allowed", c->root, c->chunks_cached,
		 c->bytes_cached, c->cfg.size_max);
	return 0;
}

static int check_config(const struct cache_config *cfg, char *err,
			size_t errlen)
{
	if (!cfg->dir || cfg->dir[0] != '/') {
		snprintf(err, errlen, "cache_dir must be an absolute path");
		return -EINVAL;
	}
	if (cfg->chunk_size == 0 ||
	    (cfg->chunk_size & (cfg->chunk_size - 1)) != 0) {
		snprintf(err, errlen, "chunk_size %u is not a power of two",
			 cfg->chunk_size);
		return -EINVAL;
	}
	if (cfg->size_max < cfg->chunk_size) {
		snprintf(err, errlen, "cache_size %" PRIu64 " is smaller than "
			 "one chunk (%u bytes): raise cache_size or lower "
			 "chunk_size", cfg->size_max, cfg->chunk_size);
		return -EINVAL;
	}
	return 0;
}

struct cache *cache_alloc(const struct cache_config *cfg)
{
	struct cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->cfg = *cfg;
	c->cfg.dir = NULL;	/* the caller's string; use c->root */
	c->cache_dir = cfg->dir ? strdup(cfg->dir) : NULL;
	c->root_fd = c->lock_fd = -1;
	c->next_id = 1;
	pthread_mutex_init(&c->invalidate_lock, NULL);
	list_init(&c->lru);
	list_init(&c->wb_list);
	list_init(&c->listing_age);
	list_init(&c->prefetches);
	list_init(&c->dir_cursors);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->fetched, NULL);
	pthread_cond_init(&c->prefetched, NULL);
	if (htab_init(&c->objects) < 0 || htab_init(&c->shadows) < 0 ||
	    htab_init(&c->attrs) < 0 || htab_init(&c->listings) < 0) {
		cache_close(c);
		return NULL;
	}
	return c;
}

int cache_open(const struct cache_config *cfg, struct origin *origin,
	       struct cache **out, char *err, size_t errlen)
{
	struct cache *c;
	int ret = check_config(cfg, err, errlen);

	if (ret < 0)
		return ret;
	c = cache_alloc(cfg);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->origin = origin;
	c->root = origin_folder(cfg, origin);
	if (!c->root) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out_close;
	}
	ret = open_folder(c, cfg->dir, err, errlen);
	if (ret < 0)
		goto out_close;
	ret = load_index(c, err, errlen);
	if (ret < 0)
		goto out_close;
	leftovers_open(c);
	ret = wb_open(c, err, errlen);
	if (ret < 0)
		goto out_close;
	if (store_ra_start(c) < 0) {
		snprintf(err, errlen, "cannot start the readahead threads");
		ret = -EAGAIN;
		goto out_close;
	}
	*out = c;
	return 0;
out_close:
	origin->leftovers = NULL;	/* the register goes with c */
	c->origin = NULL;	/* still the caller's on failure */
	cache_close(c);
	return ret;
}

static void free_object(void *arg, const char *key, void *value)
{
	struct object *obj = value;

	(void)arg;
	(void)key;
	/* The chunks go with their slabs, in store_free_chunks(). */
	if (obj->fd >= 0)
		close(obj->fd);
	free(obj->chunks);
	free(obj->path);
	free(obj);
}

static void free_shadow(void *arg, const char *key, void *value)
{
	struct cache *c = arg;
	struct shadow *sh = value;

	(void)key;
	/* A pending file stays in dirty/ for the next mount. */
	shadow_free(c, sh, sh->pending);
}

void cache_close(struct cache *c)
{
	if (!c)
		return;
	prefetch_stop_all(c);
	leftovers_close(c);
	if (c->ra_tail)
		store_ra_stop(c);
	if (c->journal)
		wb_close(c);
	if (c->shadows.buckets)
		htab_for_each(&c->shadows, free_shadow, c);
	if (c->index) {
		if (store_compact(c) < 0)
			log_warn("cannot compact the cache index in %s; the "
				 "log is kept as it is", c->root);
		index_close(c->index);
	}
	if (c->objects.buckets)
		htab_for_each(&c->objects, free_object, NULL);
	htab_release(&c->objects);
	store_free_chunks(c);
	htab_release(&c->shadows);
	meta_release(c);
	if (c->lock_fd >= 0) {
		/* An empty lock file means that the cache was closed, so no
		 * chunk was arriving.  A start that failed before
		 * store_replay() leaves the pid in place. */
		if (!c->unclean_start && ftruncate(c->lock_fd, 0) < 0)
			log_debug("cannot empty the lock file of %s", c->root);
		close(c->lock_fd);
	}
	if (c->root_fd >= 0)
		close(c->root_fd);
	origin_free(c->origin);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->invalidate_lock);
	pthread_cond_destroy(&c->fetched);
	pthread_cond_destroy(&c->prefetched);
	free(c->root);
	free(c->cache_dir);
	free(c);
}

void cache_set_invalidate(struct cache *c, cache_invalidate_fn fn, void *arg)
{
	pthread_mutex_lock(&c->invalidate_lock);
	c->invalidate = fn;
	c->invalidate_arg = arg;
	pthread_mutex_unlock(&c->invalidate_lock);
}

const char *cache_path(const struct cache *c)
{
	return c->root;
}

const struct cache_config *cache_config(const struct cache *c)
{
	return &c->cfg;
}

struct origin *cache_origin(const struct cache *c)
{
	return c->origin;
}

void cache_get_stats(struct cache *c, struct cache_stats *st)
{
	struct origin_counters *oc = &c->origin->counters;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&c->lock);
	st->hits = c->hits;
	st->misses = c->misses;
	st->bytes_from_cache = c->bytes_from_cache;
	st->bytes_from_origin = c->bytes_from_origin;
	st->bytes_zero_copy = c->bytes_zero_copy;
	st->readaheads = c->readaheads;
	st->chunks_cached = c->chunks_cached;
	st->bytes_cached = c->bytes_cached;
	st->size_max = c->cfg.size_max;
	st->evictions = c->evictions;
	st->checksum_failures = c->checksum_failures;
	st->cache_dir_errors = c->cache_dir_errors;
	st->cache_dir_full = c->space_short;
	st->revalidations = c->revalidations;
	st->invalidations = c->invalidations;
	st->objects_cached = c->objects_cached;
	st->lends = c->lends;
	st->lends_refused = c->lends_refused;
	st->ttl_ms = c->cfg.ttl_ms;
	st->attr_ttl_ms = c->cfg.attr_ttl_ms;
	st->neg_ttl_ms = c->cfg.neg_ttl_ms;
	st->dir_ttl_ms = c->cfg.dir_ttl_ms;
	st->min_free = c->cfg.min_free;
	st->min_free_pct = c->cfg.min_free_pct;
	st->writeback_delay_ms = c->cfg.writeback_delay_ms;
	wb_stats(c, st);
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < ORIGIN_REQ_MAX; i++) {
		st->origin_requests[i] = atomic_load(&oc->requests[i]);
		origin_latency_read(&oc->latency[i], &st->latency[i]);
	}
	st->origin_errors = atomic_load(&oc->errors);
	st->origin_retries = atomic_load(&oc->retries);
	st->bytes_to_origin = atomic_load(&oc->bytes_written);
}

void cache_get_config(struct cache *c, struct cache_config *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->cfg;
	pthread_mutex_unlock(&c->lock);
}

int cache_set_config(struct cache *c, const struct cache_config *cfg,
		     char *err, size_t errlen)
{
	if (cfg->size_max < c->cfg.chunk_size) {
		snprintf(err, errlen, "cache_size %" PRIu64 " is smaller than "
			 "one chunk (%" PRIu32 " bytes): give at least that",
			 cfg->size_max, c->cfg.chunk_size);
		return -EINVAL;
	}
	if (c->cfg.write_mode == WRITE_BACK &&
	    cfg->max_dirty < c->cfg.chunk_size) {
		snprintf(err, errlen, "max_dirty %" PRIu64 " is smaller than "
			 "one chunk (%" PRIu32 " bytes): give at least that",
			 cfg->max_dirty, c->cfg.chunk_size);
		return -EINVAL;
	}
	pthread_mutex_lock(&c->lock);
	c->cfg.ttl_ms = cfg->ttl_ms;
	/* Read without the lock by cache_attr_ttl_ms(), cache_neg_ttl_ms(). */
	__atomic_store_n(&c->cfg.attr_ttl_ms, cfg->attr_ttl_ms,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&c->cfg.neg_ttl_ms, cfg->neg_ttl_ms,
			 __ATOMIC_RELAXED);
	c->cfg.dir_ttl_ms = cfg->dir_ttl_ms;
	c->cfg.min_free = cfg->min_free;
	c->cfg.min_free_pct = cfg->min_free_pct;
	c->cfg.size_max = cfg->size_max;
	store_shrink(c);
	c->cfg.max_dirty = cfg->max_dirty;
	wb_set_delay(c, cfg->writeback_delay_ms);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

uint64_t cache_attr_ttl_ms(const struct cache *c)
{
	return __atomic_load_n(&c->cfg.attr_ttl_ms, __ATOMIC_RELAXED);
}

uint64_t cache_neg_ttl_ms(const struct cache *c)
{
	return __atomic_load_n(&c->cfg.neg_ttl_ms, __ATOMIC_RELAXED);
}

void cache_notify(struct cache *c, const char *path)
{
	pthread_mutex_lock(&c->invalidate_lock);
	if (c->invalidate)
		c->invalidate(c->invalidate_arg, path);
	pthread_mutex_unlock(&c->invalidate_lock);
}

bool cache_same_version(const struct origin_attr *a,
			const struct origin_attr *b)
{
	return a->size == b->size && strcmp(a->version, b->version) == 0;
}

/*
 * Compare the cached version of path with fresh origin attributes.
 * Returns true when the cached copy was dropped for a newer version.
 * Called with the lock held.
 */
bool cache_check_version(struct cache *c, struct object *obj,
			 const struct origin_attr *fresh)
{
	c->revalidations++;
	if (cache_same_version(&obj->attr, fresh)) {
		unsigned type = obj->attr.mode & S_IFMT;

		obj->checked_ms = clock_now_ms();
		obj->attr = *fresh;	/* metadata may have changed */
		obj->attr.mode = (fresh->mode & ~S_IFMT) | type;
		if (obj->logged)
			store_log_object(c, obj);	/* keeps the check time */
		return false;
	}
	log_debug("%s changed on the origin: dropping %u cached chunks",
		  obj->path, obj->ncached);
	c->invalidations++;
	obj->superseded = true;
	store_object_detach(c, obj);
	return true;
}

bool cache_local_attr(struct cache *c, const char *path,
		      struct origin_attr *attr)
{
	struct shadow *sh = htab_get(&c->shadows, path);
	struct object *obj;

	if (sh) {
		*attr = sh->attr;
		attr->size = sh->size;
		/* Not sh->attr.version, which no upload updates: a rename
		 * records this for the new name. */
		memcpy(attr->version, sh->origin_version, sizeof(attr->version));
		return true;
	}
	obj = htab_get(&c->objects, path);
	if (obj && cache_is_fresh(obj->checked_ms, c->cfg.ttl_ms)) {
		*attr = obj->attr;
		return true;
	}
	return false;
}

/*
 * Answer from the attribute and listing caches.  Returns 0 with attr
 * filled, -ENOENT for a fresh negative answer, or 1 when the origin must
 * be asked.  Lock held.
 */
static int cached_attr(struct cache *c, const char *path,
		       struct origin_attr *attr)
{
	struct attr_entry *e = meta_attr_get(c, path);
	struct object *obj = htab_get(&c->objects, path);
	char parent[4096];
	const char *name;
	struct listing *l;
	struct dir_entry *de;

	if (cache_local_attr(c, path, attr))
		return 0;
	if (e && e->negative &&
	    cache_is_fresh(e->fetched_ms, c->cfg.neg_ttl_ms))
		return -ENOENT;
	if (e && !e->negative && !obj &&
	    cache_is_fresh(e->fetched_ms, c->cfg.attr_ttl_ms)) {
		*attr = e->attr;
		return 0;
	}
	if (path[0] == '\0' || obj)
		return 1;
	name = path_split(path, parent, sizeof(parent));
	l = meta_listing_get(c, parent);
	if (!l || !cache_is_fresh(l->fetched_ms, c->cfg.dir_ttl_ms))
		return 1;
	de = listing_find(l, name);
	if (de) {
		*attr = de->attr;
		return 0;
	}
	return c->cfg.neg_ttl_ms ? -ENOENT : 1;
}

/* Record the result of an origin stat of path.  Lock held.  Returns
 * true when a cached version was dropped. */
static bool record_stat(struct cache *c, const char *path, int ret,
			const struct origin_attr *attr)
{
	struct object *obj = htab_get(&c->objects, path);

	if (ret == -ENOENT) {
		meta_attr_set_negative(c, path);
		meta_listing_remove(c, path);
		if (obj)
			store_object_detach(c, obj);
		return obj != NULL;
	}
	if (ret < 0)
		return false;
	meta_attr_set(c, path, attr);
	meta_listing_merge(c, path, attr);
	if (obj)
		return cache_check_version(c, obj, attr);
	return false;
}

/*
 * Whether obj was confirmed on the origin after sent_ms, when the stat
 * being recorded was sent.  The stat's result may then be older than
 * obj, so obj is kept and its attributes are returned instead.  A
 * confirmation in the same millisecond counts as older, so that ttl=0
 * checks every open.  Lock held.
 */
static bool confirmed_since(const struct object *obj, uint64_t sent_ms)
{
	return obj && obj->checked_ms > sent_ms;
}

/*
 * Replace the result of a stat of path sent at sent_ms with what
 * another request learned after it was sent, as confirmed_since() does.
 * Returns 0 with attr filled, -ENOENT, or 1 when nothing newer is
 * known.  Lock held.
 */
static int newer_result(struct cache *c, const char *path, uint64_t sent_ms,
			struct origin_attr *attr)
{
	struct object *obj = htab_get(&c->objects, path);
	struct attr_entry *e = obj ? NULL : meta_attr_get(c, path);

	if (confirmed_since(obj, sent_ms)) {
		*attr = obj->attr;
		return 0;
	}
	if (!e || e->fetched_ms <= sent_ms)
		return 1;
	if (e->negative)
		return -ENOENT;
	*attr = e->attr;
	return 0;
}

/* cached_attr(), after waiting for a prefetch in flight that may still
 * store the listing of path's parent.  Lock held. */
static int cached_attr_after_prefetch(struct cache *c, const char *path,
				      struct origin_attr *attr)
{
	char parent[4096];
	int ret = cached_attr(c, path, attr);

	if (ret != 1 || path[0] == '\0' || htab_get(&c->objects, path))
		return ret;
	path_split(path, parent, sizeof(parent));
	if (prefetch_wait(c, parent))
		ret = cached_attr(c, path, attr);
	return ret;
}

int cache_getattr(struct cache *c, const char *path, struct origin_attr *attr)
{
	struct object *obj;
	uint64_t sent;
	bool dropped;
	int ret, newer;

	pthread_mutex_lock(&c->lock);
	ret = cached_attr_after_prefetch(c, path, attr);
	pthread_mutex_unlock(&c->lock);
	if (ret <= 0)
		return ret;

	sent = clock_now_ms();
	ret = c->origin->ops->stat(c->origin, path, attr);

	pthread_mutex_lock(&c->lock);
	obj = htab_get(&c->objects, path);
	newer = newer_result(c, path, sent, attr);
	if (newer <= 0) {
		ret = newer;
		dropped = false;
	} else if (ret < 0 && ret != -ENOENT && obj) {
		/* The origin is unreachable: keep serving the copy. */
		log_limited(LOG_WARNING, "cannot check %s on the origin (%s): "
			    "using the cached version", path, strerror(-ret));
		*attr = obj->attr;
		ret = 0;
		dropped = false;
	} else {
		dropped = record_stat(c, path, ret, attr);
	}
	pthread_mutex_unlock(&c->lock);
	if (dropped)
		cache_notify(c, path);
	return ret;
}

struct merge_state {
	struct cache *c;
	const char *dir;
	const struct listing *l;
	struct listing *out;
};

/* Add files created below dir and not yet on the origin. */
static void merge_shadow(void *arg, const char *key, void *value)
{
	struct merge_state *m = arg;
	struct shadow *sh = value;
	char parent[4096];
	const char *name = path_split(key, parent, sizeof(parent));
	struct origin_attr attr;

	if (strcmp(parent, m->dir) != 0 || !path_is_below(key, m->dir) ||
	    listing_find(m->l, name))
		return;
	attr = sh->attr;
	attr.size = sh->size;
	listing_add(m->out, name, &attr);
}

void cache_add_unlisted_shadows(struct cache *c, const char *dir,
				const struct listing *l, struct listing *out)
{
	struct merge_state m = { .c = c, .dir = dir, .l = l, .out = out };

	htab_for_each(&c->shadows, merge_shadow, &m);
}

void cache_merge_known_attr(struct cache *c, const char *path,
			    const struct listing *old, struct dir_entry *e)
{
	struct object *obj = htab_get(&c->objects, path);
	struct attr_entry *known = meta_attr_get(c, path);
	struct dir_entry *before = old ? listing_find(old, e->name) : NULL;

	if (obj)
		meta_attr_merge(&e->attr, &obj->attr);
	if (known && !known->negative)
		meta_attr_merge(&e->attr, &known->attr);
	if (before)
		meta_attr_merge(&e->attr, &before->attr);
}

void cache_install_listing(struct cache *c, const char *dir,
			   struct listing *l)
{
	struct listing *old = meta_listing_get(c, dir);
	char path[4096];

	cache_add_unlisted_shadows(c, dir, l, l);
	listing_sort(l);
	for (size_t i = 0; i < l->count; i++) {
		struct dir_entry *e = &l->entries[i];

		snprintf(path, sizeof(path), "%s%s%s", dir, dir[0] ? "/" : "",
			 e->name);
		cache_merge_known_attr(c, path, old, e);
		if (!htab_get(&c->objects, path))
			meta_attr_set(c, path, &e->attr);
	}
	meta_listing_store(c, dir, l);
}

static void now_attr(struct origin_attr *attr, mode_t mode, uid_t uid,
		     gid_t gid)
{
	memset(attr, 0, sizeof(*attr));
	attr->mode = mode;
	attr->uid = uid;
	attr->gid = gid;
	clock_gettime(CLOCK_REALTIME, &attr->mtime);
	attr->valid = ORIGIN_ATTR_MODE | ORIGIN_ATTR_UID | ORIGIN_ATTR_GID |
		      ORIGIN_ATTR_MTIME;
}

/* Record that path now exists with attr.  Lock held. */
static void record_created(struct cache *c, const char *path,
			   const struct origin_attr *attr)
{
	meta_attr_set(c, path, attr);
	meta_listing_update(c, path, attr);
}

/* Forget obj, which this mount removed from the origin.  Lock held. */
static void remove_version(struct cache *c, struct object *obj)
{
	if (obj->refs > 0)
		obj->kept = true;
	store_object_detach(c, obj);
}

/* Record that path is gone.  Lock held. */
static void record_removed(struct cache *c, const char *path)
{
	struct object *obj = htab_get(&c->objects, path);

	if (obj)
		remove_version(c, obj);
	meta_attr_set_negative(c, path);
	meta_listing_remove(c, path);
}

int cache_mkdir(struct cache *c, const char *path, mode_t mode, uid_t uid,
		gid_t gid)
{
	struct origin_attr attr;
	struct listing *empty;
	int ret;

	if (c->cfg.read_only)
		return -EROFS;
	now_attr(&attr, S_IFDIR | (mode & 07777), uid, gid);
	ret = c->origin->ops->mkdir(c->origin, path, &attr);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&c->lock);
	record_created(c, path, &attr);
	empty = calloc(1, sizeof(*empty));
	if (empty)
		meta_listing_store(c, path, empty);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

struct below_state {
	const char *dir;
	bool found;
};

static void find_below(void *arg, const char *key, void *value)
{
	struct below_state *b = arg;

	(void)value;
	if (path_is_below(key, b->dir))
		b->found = true;
}

/* Whether a file not yet on the origin lies below dir.  Lock held. */
static bool has_local_children(struct cache *c, const char *dir)
{
	struct below_state b = { .dir = dir };

	htab_for_each(&c->shadows, find_below, &b);
	return b.found;
}

int cache_rmdir(struct cache *c, const char *path)
{
	bool busy;
	int ret;

	if (c->cfg.read_only)
		return -EROFS;
	pthread_mutex_lock(&c->lock);
	busy = has_local_children(c, path);
	pthread_mutex_unlock(&c->lock);
	if (busy)
		return -ENOTEMPTY;
	ret = c->origin->ops->rmdir(c->origin, path);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&c->lock);
	record_removed(c, path);
	meta_listing_forget(c, path);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/*
 * Before path goes away on the origin, fetch what its open descriptors
 * may still read: every chunk of an open cached version, kept from then
 * on (struct object: kept), and what a file open for writing still needs
 * from its old version.  pin, when not NULL, is a handle that only
 * keeps the content for a later open of the file's inode.  Its version
 * is fetched only when it has at most pin_max bytes, unless other
 * handles have it open.  Returns that version with a reference, for
 * keep_done().
 */
static struct object *keep_open_content(struct cache *c, const char *path,
					const struct cache_file *pin,
					uint64_t pin_max)
{
	struct object *obj;
	struct shadow *sh;
	bool pinned, opened;
	uint64_t missing;
	char *buf;

	pthread_mutex_lock(&c->lock);
	obj = htab_get(&c->objects, path);
	pinned = obj && pin && pin->obj == obj;
	opened = obj && obj->refs > (pinned ? 1 : 0);
	if (opened || (pinned && obj->attr.size <= pin_max)) {
		obj->refs++;
		obj->kept = true;
	} else {
		obj = NULL;
	}
	sh = htab_get(&c->shadows, path);
	if (sh)
		sh->refs++;
	pthread_mutex_unlock(&c->lock);

	/* Missing chunks in runs, one request each, then every chunk
	 * checked as a read would. */
	if (obj)
		store_fetch(c, obj, 0, obj->attr.size, &missing);
	buf = obj ? malloc(c->cfg.chunk_size) : NULL;
	for (uint64_t off = 0; buf && off < obj->attr.size;
	     off += c->cfg.chunk_size)
		if (store_read(c, obj, buf, c->cfg.chunk_size, off) < 0)
			break;
	free(buf);
	if (sh) {
		pthread_mutex_lock(&sh->lock);
		shadow_materialize_all(c, sh);
		pthread_mutex_unlock(&sh->lock);
	}

	if (sh) {
		pthread_mutex_lock(&c->lock);
		shadow_put(c, sh);
		pthread_mutex_unlock(&c->lock);
	}
	return obj;
}

/* End keep_open_content().  When the origin still has the file, because
 * the operation failed, its chunks are evictable again. */
static void keep_done(struct cache *c, struct object *obj, bool removed)
{
	if (!obj)
		return;
	pthread_mutex_lock(&c->lock);
	if (!removed)
		obj->kept = false;
	store_object_put(c, obj);
	pthread_mutex_unlock(&c->lock);
}

/*
 * Take a reference to the shadow of path, if there is one, and its lock.
 * A commit reads the shadow's path once and then stores the file there,
 * all under the shadow lock, so a rename or an unlink that holds the lock
 * cannot slip between the two.  Otherwise the kernel's release of a
 * created file, which commits it and arrives after close(2) returned,
 * stores the file under the old name after the rename or the unlink.
 */
struct shadow *lock_shadow(struct cache *c, const char *path)
{
	struct shadow *sh;

	pthread_mutex_lock(&c->lock);
	sh = htab_get(&c->shadows, path);
	if (sh)
		sh->refs++;
	pthread_mutex_unlock(&c->lock);
	if (sh)
		pthread_mutex_lock(&sh->lock);
	return sh;
}

void unlock_shadow(struct cache *c, struct shadow *sh)
{
	if (!sh)
		return;
	pthread_mutex_unlock(&sh->lock);
	pthread_mutex_lock(&c->lock);
	shadow_put(c, sh);
	pthread_mutex_unlock(&c->lock);
}

/* The shadows a rename locks, gathered by collect_renamed(). */
struct renamed {
	const char *from, *to;
	bool exchange;
	struct shadow **shadows;
	size_t count, alloc;
	bool failed;
};

static void collect_renamed(void *arg, const char *key, void *value)
{
	struct renamed *r = arg;
	struct shadow *sh = value;

	if (strcmp(key, r->from) != 0 && strcmp(key, r->to) != 0 &&
	    !path_is_below(key, r->from) &&
	    !(r->exchange && path_is_below(key, r->to)))
		return;
	if (r->count == r->alloc) {
		size_t n = r->alloc ? r->alloc * 2 : 8;
		struct shadow **p = realloc(r->shadows, n * sizeof(*p));

		if (!p) {
			r->failed = true;
			return;
		}
		r->shadows = p;
		r->alloc = n;
	}
	sh->refs++;
	r->shadows[r->count++] = sh;
}

static int shadow_addr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(struct shadow *const *)a;
	uintptr_t y = (uintptr_t)*(struct shadow *const *)b;

	return x < y ? -1 : x > y;
}

/*
 * Lock the shadows of from and to, and of every file below from (and
 * below to for an exchange).  An upload or commit of any of them then
 * ends before the rename starts, and the next one sends the new name.
 * Otherwise an upload still on its way to a moved file's old key could
 * land over a file moved there next, and its cleanup delete it.  The
 * locks are taken in address order, which no rename can change, so two
 * renames cannot deadlock.  -ENOMEM.
 */
static int lock_renamed(struct cache *c, const char *from, const char *to,
			bool exchange, struct renamed *r)
{
	memset(r, 0, sizeof(*r));
	r->from = from;
	r->to = to;
	r->exchange = exchange;
	pthread_mutex_lock(&c->lock);
	htab_for_each(&c->shadows, collect_renamed, r);
	if (r->failed) {
		for (size_t i = 0; i < r->count; i++)
			shadow_put(c, r->shadows[i]);
	}
	pthread_mutex_unlock(&c->lock);
	if (r->failed) {
		free(r->shadows);
		return -ENOMEM;
	}
	if (r->count > 1)
		qsort(r->shadows, r->count, sizeof(*r->shadows),
		      shadow_addr_cmp);
	for (size_t i = 0; i < r->count; i++)
		pthread_mutex_lock(&r->shadows[i]->lock);
	return 0;
}

static void unlock_renamed(struct cache *c, struct renamed *r)
{
	for (size_t i = 0; i < r->count; i++)
		unlock_shadow(c, r->shadows[i]);
	free(r->shadows);
}

int cache_unlink(struct cache *c, const char *path)
{
	struct shadow *sh, *locked;
	struct object *kept;
	bool cached;
	int ret;

	if (c->cfg.read_only)
		return -EROFS;
	kept = keep_open_content(c, path, NULL, 0);
	/* The shadow's lock keeps its upload from running meanwhile. */
	locked = lock_shadow(c, path);
	/*
	 * Delete on the origin before the pending upload leaves the
	 * journal: a crash in between then uploads the last closed version
	 * again, where the other order would leave the version before it.
	 */
	ret = c->origin->ops->unlink(c->origin, path);

	pthread_mutex_lock(&c->lock);
	cached = htab_get(&c->objects, path) != NULL;
	/* The file was created here and never stored, or another client
	 * (or a crash in an earlier unlink) removed it from the origin.
	 * Either way, the local copy goes. */
	if (ret == -ENOENT && (htab_get(&c->shadows, path) || cached))
		ret = 0;
	sh = ret == 0 ? htab_remove(&c->shadows, path) : NULL;
	if (sh) {
		/* Open descriptors keep working; commits are no-ops. */
		free(sh->path);
		sh->path = NULL;
		wb_cancel(c, sh);
	}
	pthread_mutex_unlock(&c->lock);
	unlock_shadow(c, locked);
	keep_done(c, kept, ret == 0);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&c->lock);
	record_removed(c, path);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* The new name of key, which is from or below it. */
static char *moved_path(const char *from, const char *to, const char *key)
{
	char *p;

	if (asprintf(&p, "%s%s", to, key + strlen(from)) < 0)
		return NULL;
	return p;
}

/* Move the objects and open files at and below from.  Lock held. */
static void move_entries(struct cache *c, const char *from, const char *to)
{
	struct key_list keys = { 0 };
	struct shadow *sh;
	struct object *obj;

	keys_below(&c->objects, from, &keys);
	for (size_t i = 0; i < keys.count; i++) {
		char *dest = moved_path(from, to, keys.keys[i]);

		obj = htab_remove(&c->objects, keys.keys[i]);
		if (dest && obj) {
			free(obj->path);
			obj->path = dest;
			dest = NULL;
			htab_put(&c->objects, obj->path, obj);
			if (obj->logged)
				store_log_object(c, obj);
		}
		free(dest);
	}
	key_list_free(&keys);
	keys_below(&c->shadows, from, &keys);
	for (size_t i = 0; i < keys.count; i++) {
		char *dest = moved_path(from, to, keys.keys[i]);

		sh = htab_remove(&c->shadows, keys.keys[i]);
		if (dest && sh) {
			free(sh->path);
			sh->path = dest;
			dest = NULL;
			htab_put(&c->shadows, sh->path, sh);
			wb_moved(c, sh);
		}
		free(dest);
	}
	key_list_free(&keys);
}

/* Drop what was cached at to, which a rename replaces.  Lock held. */
static void drop_target(struct cache *c, const char *to)
{
	struct shadow *sh = htab_remove(&c->shadows, to);
	struct object *obj;

	if (sh) {
		free(sh->path);
		sh->path = NULL;
		wb_cancel(c, sh);
	}
	/*
	 * Looked up only now: wb_cancel() may drop the last reference to
	 * the shadow and with it the shadow's base object at to.
	 */
	obj = htab_get(&c->objects, to);
	if (obj)
		remove_version(c, obj);
	meta_rename_prefix(c, to, to);
}

/* The rest of cache_rename, with the shadow of from locked. */
static int rename_locked(struct cache *c, const char *from, const char *to,
			 unsigned flags, bool local_only, bool have_attr,
			 const struct origin_attr *attr)
{
	int ret;

	ret = c->origin->ops->rename(c->origin, from, to, flags);
	if (ret == -ENOENT && local_only)
		ret = 0;	/* created here and not committed yet */
	if (ret < 0)
		return ret;

	pthread_mutex_lock(&c->lock);
	drop_target(c, to);
	move_entries(c, from, to);
	meta_listing_remove(c, from);
	meta_rename_prefix(c, from, to);
	meta_attr_set_negative(c, from);
	if (have_attr) {
		record_created(c, to, attr);
	} else {
		char parent[4096];

		path_split(to, parent, sizeof(parent));
		meta_listing_forget(c, parent);
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Open the regular file at path, which a rename is about to replace,
 * read-only into *out; *out stays NULL for anything else. */
static void open_replaced(struct cache *c, const char *path,
			  struct cache_file **out)
{
	struct origin_attr attr;
	bool changed;

	if (cache_getattr(c, path, &attr) != 0 || !S_ISREG(attr.mode) ||
	    cache_file_open(c, path, O_RDONLY, out, &changed) != 0)
		*out = NULL;
}

int cache_rename(struct cache *c, const char *from, const char *to,
		 unsigned flags, struct cache_file **replaced)
{
	struct origin_attr attr;
	struct object *kept;
	struct renamed locked;
	bool local_only, have_attr, busy;
	uint64_t seq = 0;
	int ret;

	if (replaced)
		*replaced = NULL;
	if (c->cfg.read_only)
		return -EROFS;
	/*
	 * An exchange (or a whiteout) would need the cached versions, pending
	 * uploads, attributes and listings of both paths swapped, and
	 * rename_locked() drops those of to.  So only RENAME_NOREPLACE is
	 * accepted, as the S3 origin accepts only it.
	 */
	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL;
	/*
	 * The file a rename replaces.  The kernel may send an open of its
	 * inode after the rename, which gets the old file only when all of
	 * it is cached and fails with ESTALE otherwise.  The kernel repeats
	 * such an open only once, and another rename over the path in
	 * between leaves ESTALE to the caller.  So the replaced file is
	 * fetched whole when it has at most RA_RUN_BYTES, at the cost of
	 * one request.  That matters most in write-around mode, whose
	 * commits cache nothing.
	 */
	if (replaced && !(flags & RENAME_EXCHANGE))
		open_replaced(c, to, replaced);
	kept = flags & RENAME_EXCHANGE ? NULL :
	       keep_open_content(c, to, replaced ? *replaced : NULL,
				 RA_RUN_BYTES);
	/*
	 * The target's lock too, so that an upload of the file being
	 * replaced ends before the rename starts: otherwise the upload
	 * could store the old file over the one just moved there.
	 */
	ret = lock_renamed(c, from, to, flags & RENAME_EXCHANGE, &locked);
	if (ret < 0) {
		keep_done(c, kept, false);
		if (replaced && *replaced) {
			cache_file_release(*replaced);
			*replaced = NULL;
		}
		return ret;
	}
	pthread_mutex_lock(&c->lock);
	local_only = htab_get(&c->shadows, from) != NULL;
	have_attr = cached_attr(c, from, &attr) == 0;
	/* A directory is not empty while files below it wait for upload. */
	busy = !(flags & RENAME_EXCHANGE) && has_local_children(c, to);
	/* A crash before the DONE record makes the next start complete the
	 * rename on the origin (finish_renames() in writeback.c). */
	if (!busy && c->journal && !(flags & RENAME_EXCHANGE) &&
	    strcmp(from, to) != 0) {
		struct shadow *old = htab_get(&c->shadows, to);

		seq = ++c->wb_seq;
		c->renames_running++;
		ret = journal_rename(c->journal, seq,
				     old && old->pending ? old->seq : 0, from,
				     to);
		if (ret < 0)
			store_note_write_error(c, "the write-back journal",
					       ret);
	}
	pthread_mutex_unlock(&c->lock);
	ret = busy ? -ENOTEMPTY : rename_locked(c, from, to, flags,
						local_only, have_attr, &attr);
	if (seq) {
		/* Also after a failed RENAME append: the journal keeps the
		 * rename for its next rewrite until this DONE. */
		int done;

		pthread_mutex_lock(&c->lock);
		c->renames_running--;
		done = journal_done(c->journal, seq);
		if (done < 0)
			store_note_write_error(c, "the write-back journal",
					       done);
		pthread_mutex_unlock(&c->lock);
	}
	unlock_renamed(c, &locked);
	keep_done(c, kept, ret == 0);
	if (ret < 0 && replaced && *replaced) {
		cache_file_release(*replaced);
		*replaced = NULL;
	}
	return ret;
}


int cache_symlink(struct cache *c, const char *target, const char *path)
{
	struct origin_attr attr;
	int ret;

	if (c->cfg.read_only)
		return -EROFS;
	if (!c->origin->ops->symlink)
		return -EPERM;
	memset(&attr, 0, sizeof(attr));
	ret = c->origin->ops->symlink(c->origin, target, path, &attr);
	if (ret < 0)
		return ret;
	/* With its version, later listings keep the link's type. */
	pthread_mutex_lock(&c->lock);
	record_created(c, path, &attr);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int cache_readlink(struct cache *c, const char *path, char *buf,
		   size_t size)
{
	if (!c->origin->ops->readlink)
		return -EINVAL;
	return c->origin->ops->readlink(c->origin, path, buf, size);
}

int cache_statfs(struct cache *c, struct statvfs *st)
{
	return c->origin->ops->statfs(c->origin, st);
}

void cache_default_attr(struct origin_attr *attr, mode_t mode, uid_t uid,
			gid_t gid)
{
	now_attr(attr, mode, uid, gid);
}

void cache_record_created(struct cache *c, const char *path,
			  const struct origin_attr *attr)
{
	record_created(c, path, attr);
}

int cache_acquire_object(struct cache *c, const char *path,
			 struct object **out, bool *changed)
{
	struct origin_attr attr;
	struct object *obj;
	bool offline = false, created = false;
	uint64_t sent;
	int ret, newer;

	*changed = false;
	pthread_mutex_lock(&c->lock);
	obj = htab_get(&c->objects, path);
	if (obj && cache_is_fresh(obj->checked_ms, c->cfg.ttl_ms))
		goto out_pin;
	ret = obj ? 1 : cached_attr(c, path, &attr);
	pthread_mutex_unlock(&c->lock);

	sent = clock_now_ms();
	if (ret == 1)
		ret = c->origin->ops->stat(c->origin, path, &attr);

	pthread_mutex_lock(&c->lock);
	obj = htab_get(&c->objects, path);
	if (confirmed_since(obj, sent))
		goto out_pin;
	newer = newer_result(c, path, sent, &attr);
	if (newer <= 0)
		ret = newer;
	if (ret < 0 && ret != -ENOENT && obj) {
		offline = true;
		goto out_pin;
	}
	*changed = record_stat(c, path, ret, &attr);
	if (ret < 0)
		goto out_unlock;
	if (!S_ISREG(attr.mode)) {
		ret = S_ISDIR(attr.mode) ? -EISDIR : -EINVAL;
		goto out_unlock;
	}
	obj = htab_get(&c->objects, path);
	if (!obj) {
		obj = store_object_new(c, path, &attr);
		if (!obj) {
			ret = -ENOMEM;
			goto out_unlock;
		}
		obj->checked_ms = clock_now_ms();
		/*
		 * The kernel may still cache pages of a version that this
		 * cache no longer has: dropped by a stat that found a change,
		 * or evicted whole.  A new version drops them at open.
		 */
		created = true;
	}
out_pin:
	obj->refs++;
	*out = obj;
	if (obj->discarded) {
		/* The kernel may hold the pages of the rejected writes. */
		obj->discarded = false;
		created = true;
	}
	ret = 0;
out_unlock:
	pthread_mutex_unlock(&c->lock);
	if (offline)
		log_limited(LOG_WARNING, "cannot check %s on the origin: "
			    "using the cached version", path);
	if (*changed)
		cache_notify(c, path);
	*changed = *changed || created;
	return ret;
}

/* Bytes of the chunks of obj that are in the cache.  Lock held. */
static uint64_t cached_bytes(const struct object *obj)
{
	uint64_t bytes = 0;

	for (uint32_t i = 0; i < obj->nchunks; i++)
		if (obj->chunks[i] && obj->chunks[i]->state == CHUNK_PRESENT)
			bytes += obj->chunks[i]->len;
	return bytes;
}

struct usage_state {
	const char *path;
	struct cache_usage *usage;
};

static void add_usage(void *arg, const char *key, void *value)
{
	struct usage_state *us = arg;
	struct object *obj = value;

	if (obj->ncached == 0 || (strcmp(key, us->path) != 0 &&
				  !path_is_below(key, us->path)))
		return;
	us->usage->files++;
	us->usage->chunks += obj->ncached;
	us->usage->bytes += cached_bytes(obj);
}

void cache_usage(struct cache *c, const char *path, struct cache_usage *u)
{
	struct usage_state us = { .path = path, .usage = u };

	memset(u, 0, sizeof(*u));
	pthread_mutex_lock(&c->lock);
	htab_for_each(&c->objects, add_usage, &us);
	wb_usage(c, path, u);
	pthread_mutex_unlock(&c->lock);
}

int cache_forget(struct cache *c, const char *path,
		 struct cache_forget_result *result)
{
	struct key_list objects = { 0 }, shadows = { 0 };
	size_t dropped = 0;

	pthread_mutex_lock(&c->lock);
	keys_below(&c->shadows, path, &shadows);
	result->kept += shadows.count;
	keys_below(&c->objects, path, &objects);
	for (size_t i = 0; i < objects.count; i++) {
		char *key = objects.keys[i];
		struct object *obj = htab_get(&c->objects, key);

		if (!obj || htab_get(&c->shadows, key))
			continue;
		result->files++;
		result->bytes += cached_bytes(obj);
		store_object_detach(c, obj);
		/* The dropped paths gather at the front of the list. */
		objects.keys[i] = objects.keys[dropped];
		objects.keys[dropped++] = key;
	}
	meta_forget_subtree(c, path);
	pthread_mutex_unlock(&c->lock);

	for (size_t i = 0; i < dropped; i++)
		cache_notify(c, objects.keys[i]);
	key_list_free(&objects);
	key_list_free(&shadows);
	return 0;
}
