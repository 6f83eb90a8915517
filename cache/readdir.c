/*
 * readdir.c - directory listings for the filesystem layer: cursors that
 * fetch a listing one origin page at a time, and cache_readdir().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "internal.h"

struct cache_dir {
	struct cache *c;
	char *path;
	/* Entries fetched so far, in the origin's order; NULL once
	 * complete. */
	struct listing *l;
	char token[ORIGIN_TOKEN_MAX];	/* of the next page; "" first */
	bool started;		/* the first page was requested */
	bool complete;
	uint64_t started_ms;	/* when the first page was requested */
	/* Under cache.lock: on cache.dir_cursors from the first request to
	 * the last page, and whether the directory changed meanwhile. */
	struct list_node node;
	bool stale;
};

struct list_collect {
	struct listing *l;
	int err;
};

static int collect_entry(void *arg, const char *name,
			 const struct origin_attr *attr)
{
	struct list_collect *lc = arg;

	lc->err = listing_add(lc->l, name, attr);
	return lc->err;
}

/* Copy the cached listing of dir, with local attributes where newer;
 * NULL when there is none, or only an expired one and fresh is set. */
static struct listing *copy_listing(struct cache *c, const char *dir,
				    bool fresh)
{
	struct listing *l = meta_listing_get(c, dir), *copy;
	char path[4096];

	if (!l || (fresh && !cache_is_fresh(l->fetched_ms,
					    c->cfg.dir_ttl_ms)))
		return NULL;
	copy = calloc(1, sizeof(*copy));
	for (size_t i = 0; copy && i < l->count; i++) {
		struct origin_attr attr = l->entries[i].attr;

		snprintf(path, sizeof(path), "%s%s%s", dir, dir[0] ? "/" : "",
			 l->entries[i].name);
		cache_local_attr(c, path, &attr);
		if (listing_add(copy, l->entries[i].name, &attr) < 0) {
			listing_free(copy);
			return NULL;
		}
	}
	return copy;
}

/* Pass entries [from, l->count) of l to fn, with attrs[i - from] as the
 * attributes of entry i when attrs is set. */
static int deliver(const struct listing *l, size_t from,
		   const struct origin_attr *attrs, cache_readdir_fn fn,
		   void *arg)
{
	int ret = 0;

	for (size_t i = from; !ret && i < l->count; i++)
		ret = fn(arg, l->entries[i].name,
			 attrs ? &attrs[i - from] : &l->entries[i].attr);
	return ret;
}

/* Drop the entries of l from count on. */
static void listing_truncate(struct listing *l, size_t count)
{
	for (size_t i = count; i < l->count; i++)
		free(l->entries[i].name);
	l->count = count;
}

int cache_dir_open(struct cache *c, const char *path, cache_readdir_fn fn,
		   void *arg, struct cache_dir **out)
{
	struct cache_dir *d = calloc(1, sizeof(*d));
	struct listing *cached;
	int ret = 0;

	*out = NULL;
	if (!d)
		return -ENOMEM;
	d->c = c;
	list_init(&d->node);
	d->path = strdup(path);
	d->l = calloc(1, sizeof(*d->l));
	if (!d->path || !d->l) {
		ret = -ENOMEM;
		goto out_close;
	}

	pthread_mutex_lock(&c->lock);
	cached = copy_listing(c, path, true);
	if (!cached && prefetch_wait(c, path))
		cached = copy_listing(c, path, true);
	pthread_mutex_unlock(&c->lock);
	if (cached) {
		listing_free(d->l);
		d->l = NULL;
		d->complete = true;
		ret = deliver(cached, 0, NULL, fn, arg);
		listing_free(cached);
		if (ret)
			goto out_close;
	}
	*out = d;
	return 0;

out_close:
	cache_dir_close(d);
	return ret;
}

/* Put d on the list of cursors that local changes mark stale, before its
 * first request. */
static void start_listing(struct cache_dir *d)
{
	struct cache *c = d->c;

	pthread_mutex_lock(&c->lock);
	list_add_tail(&c->dir_cursors, &d->node);
	d->stale = false;
	d->started_ms = clock_now_ms();
	d->started = true;
	pthread_mutex_unlock(&c->lock);
}

/*
 * The attributes to show for entries [first, count) of d's listing, with
 * local attributes where newer, malloc'ed; NULL when out of memory.  The
 * origin's attributes of those entries go to the attribute cache unless
 * d is stale.
 */
static struct origin_attr *page_attrs(struct cache_dir *d, size_t first)
{
	struct cache *c = d->c;
	struct listing *l = d->l;
	const struct listing *old;
	struct origin_attr *attrs;
	char path[4096];

	attrs = calloc(l->count - first + 1, sizeof(*attrs));
	if (!attrs)
		return NULL;
	pthread_mutex_lock(&c->lock);
	old = meta_listing_get(c, d->path);
	for (size_t i = first; i < l->count; i++) {
		struct dir_entry *e = &l->entries[i];

		snprintf(path, sizeof(path), "%s%s%s", d->path,
			 d->path[0] ? "/" : "", e->name);
		cache_merge_known_attr(c, path, old, e);
		if (!d->stale && !htab_get(&c->objects, path))
			meta_attr_set(c, path, &e->attr);
		attrs[i - first] = e->attr;
		cache_local_attr(c, path, &attrs[i - first]);
	}
	pthread_mutex_unlock(&c->lock);
	return attrs;
}

/*
 * Store the complete listing of d, unless d is stale or a listing
 * requested after d's first page is stored already.  The listing counts
 * as fetched when its first page was requested.  Lock held.
 */
static void store_listing(struct cache *c, struct cache_dir *d)
{
	struct listing *cur = meta_listing_get(c, d->path);

	if (d->stale || (cur && cur->fetched_ms >= d->started_ms))
		return;
	cache_install_listing(c, d->path, d->l);
	d->l = NULL;
	cur = meta_listing_get(c, d->path);
	if (!cur)
		return;
	cur->fetched_ms = d->started_ms;
	prefetch_start(c, d->path, cur);
}

/* After the last page: store the listing, and return the files created
 * in the directory that the origin did not list (NULL when out of
 * memory). */
static struct listing *finish_listing(struct cache_dir *d)
{
	struct cache *c = d->c;
	struct listing *extra = calloc(1, sizeof(*extra));

	pthread_mutex_lock(&c->lock);
	list_del(&d->node);
	listing_sort(d->l);
	if (extra)
		cache_add_unlisted_shadows(c, d->path, d->l, extra);
	store_listing(c, d);
	pthread_mutex_unlock(&c->lock);
	listing_free(d->l);
	d->l = NULL;
	d->complete = true;
	return extra;
}

int cache_dir_next(struct cache_dir *d, cache_readdir_fn fn, void *arg)
{
	struct origin *o = d->c->origin;
	struct list_collect lc = { .l = d->l };
	struct origin_attr *attrs = NULL;
	char next[ORIGIN_TOKEN_MAX] = "";
	struct listing *extra;
	size_t first;
	int ret;

	if (d->complete)
		return 0;
	first = d->l->count;
	if (!d->started)
		start_listing(d);
	if (o->ops->list_page)
		ret = o->ops->list_page(o, d->path, d->token, collect_entry,
					&lc, next, sizeof(next));
	else
		ret = o->ops->list(o, d->path, collect_entry, &lc);
	/* A whole listing comes sorted by name, as from the cache. */
	if (!ret && !o->ops->list_page)
		listing_sort(d->l);
	if (!ret) {
		attrs = page_attrs(d, first);
		if (!attrs)
			ret = -ENOMEM;
	}
	if (ret) {
		listing_truncate(d->l, first);
		return ret;
	}
	memcpy(d->token, next, sizeof(next));
	ret = deliver(d->l, first, attrs, fn, arg);
	free(attrs);
	if (next[0] != '\0')
		return ret;
	extra = finish_listing(d);
	if (!ret)
		ret = extra ? deliver(extra, 0, NULL, fn, arg) : -ENOMEM;
	listing_free(extra);
	return ret;
}

bool cache_dir_complete(const struct cache_dir *d)
{
	return d->complete;
}

void cache_dir_close(struct cache_dir *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->c->lock);
	list_del(&d->node);
	pthread_mutex_unlock(&d->c->lock);
	listing_free(d->l);
	free(d->path);
	free(d);
}

void dir_cursor_note_change(struct cache *c, const char *dir, bool subtree)
{
	for (struct list_node *n = c->dir_cursors.next;
	     n != &c->dir_cursors; n = n->next) {
		struct cache_dir *d = list_entry(n, struct cache_dir, node);

		if (strcmp(d->path, dir) == 0 ||
		    (subtree && path_is_below(d->path, dir)))
			d->stale = true;
	}
}

/* The caller's callback of cache_readdir(), which gets entries until it
 * returns non-zero. */
struct readdir_target {
	cache_readdir_fn fn;
	void *arg;
	bool stopped;
};

static int pass_entry(void *arg, const char *name,
		      const struct origin_attr *attr)
{
	struct readdir_target *t = arg;

	if (!t->stopped)
		t->stopped = t->fn(t->arg, name, attr) != 0;
	return 0;
}

/* The whole listing is fetched even after fn stopped the entries, so
 * that it is cached as a complete one. */
int cache_readdir(struct cache *c, const char *path, cache_readdir_fn fn,
		  void *arg)
{
	struct readdir_target t = { .fn = fn, .arg = arg };
	struct cache_dir *d;
	int ret = cache_dir_open(c, path, pass_entry, &t, &d);

	while (!ret && !cache_dir_complete(d))
		ret = cache_dir_next(d, pass_entry, &t);
	cache_dir_close(d);
	return ret;
}
