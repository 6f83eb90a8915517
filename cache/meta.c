/*
 * meta.c - in-memory caches of attributes, "does not exist" answers and
 * directory listings.  Callers hold cache.lock and decide freshness
 * against attr_ttl, neg_ttl and dir_ttl themselves.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "internal.h"

/* The cached listing of dir changed, or with subtree also those below
 * it: listings fetched before the change must not be stored.  Lock held. */
static void note_listing_change(struct cache *c, const char *dir,
				bool subtree)
{
	prefetch_note_change(c, dir, subtree);
	dir_cursor_note_change(c, dir, subtree);
}

const char *path_split(const char *path, char *parent, size_t len)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	if (len == 0)
		return slash ? slash + 1 : path;
	if (n >= len)
		n = len - 1;
	memcpy(parent, path, n);
	parent[n] = '\0';
	return slash ? slash + 1 : path;
}

bool path_is_below(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 0)
		return path[0] != '\0';
	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

struct attr_entry *meta_attr_get(struct cache *c, const char *path)
{
	return htab_get(&c->attrs, path);
}

/* Cached attributes kept at most; past that, expired ones are dropped,
 * and if that is not enough, all of them: they are only a cache. */
#define ATTRS_MAX 1000000

struct sweep {
	struct cache *c;
	char **keys;
	size_t count, alloc;
	bool all;
};

static void collect_expired(void *arg, const char *key, void *value)
{
	struct sweep *sw = arg;
	struct attr_entry *e = value;
	uint64_t ttl = e->negative ? sw->c->cfg.neg_ttl_ms :
				     sw->c->cfg.attr_ttl_ms;

	if (!sw->all && cache_is_fresh(e->fetched_ms, ttl))
		return;
	if (sw->count == sw->alloc) {
		size_t n = sw->alloc ? sw->alloc * 2 : 1024;
		char **k = realloc(sw->keys, n * sizeof(*k));

		if (!k)
			return;
		sw->keys = k;
		sw->alloc = n;
	}
	sw->keys[sw->count] = strdup(key);
	if (sw->keys[sw->count])
		sw->count++;
}

static void sweep_attrs(struct cache *c, bool all)
{
	struct sweep sw = { .c = c, .all = all };

	htab_for_each(&c->attrs, collect_expired, &sw);
	for (size_t i = 0; i < sw.count; i++) {
		free(htab_remove(&c->attrs, sw.keys[i]));
		free(sw.keys[i]);
	}
	free(sw.keys);
}

static struct attr_entry *attr_slot(struct cache *c, const char *path)
{
	struct attr_entry *e = htab_get(&c->attrs, path);

	if (e)
		return e;
	if (c->attrs.count >= ATTRS_MAX) {
		sweep_attrs(c, false);
		if (c->attrs.count >= ATTRS_MAX / 2)
			sweep_attrs(c, true);
	}
	e = calloc(1, sizeof(*e));
	if (e && htab_put(&c->attrs, path, e) < 0) {
		free(e);
		e = NULL;
	}
	return e;
}

void meta_attr_set(struct cache *c, const char *path,
		   const struct origin_attr *attr)
{
	struct attr_entry *e = attr_slot(c, path);

	if (!e)
		return;
	e->attr = *attr;
	e->negative = false;
	e->fetched_ms = clock_now_ms();
}

void meta_attr_merge(struct origin_attr *listed,
		     const struct origin_attr *known)
{
	unsigned take = known->valid;

	if (!take || !listed->version[0] || listed->size != known->size ||
	    strcmp(listed->version, known->version) != 0)
		return;
	origin_attr_merge(listed, known, take);
	/* A symbolic link lists as a regular file. */
	if (take & ORIGIN_ATTR_MODE)
		listed->mode = known->mode;
}

void meta_attr_set_negative(struct cache *c, const char *path)
{
	struct attr_entry *e;

	if (c->cfg.neg_ttl_ms == 0) {
		meta_attr_forget(c, path);
		return;
	}
	e = attr_slot(c, path);
	if (!e)
		return;
	memset(&e->attr, 0, sizeof(e->attr));
	e->negative = true;
	e->fetched_ms = clock_now_ms();
}

void meta_attr_forget(struct cache *c, const char *path)
{
	free(htab_remove(&c->attrs, path));
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dir_entry *)a)->name,
		      ((const struct dir_entry *)b)->name);
}

void listing_sort(struct listing *l)
{
	if (l->count > 1)
		qsort(l->entries, l->count, sizeof(*l->entries), entry_cmp);
}

struct dir_entry *listing_find(const struct listing *l, const char *name)
{
	struct dir_entry key = { .name = (char *)name };

	if (l->count == 0)
		return NULL;
	return bsearch(&key, l->entries, l->count, sizeof(*l->entries),
		       entry_cmp);
}

/* Append an entry; the caller sorts before the listing is searched. */
int listing_add(struct listing *l, const char *name,
		const struct origin_attr *attr)
{
	if (l->count == l->alloc) {
		size_t n = l->alloc ? l->alloc * 2 : 16;
		struct dir_entry *e = realloc(l->entries, n * sizeof(*e));

		if (!e)
			return -ENOMEM;
		l->entries = e;
		l->alloc = n;
	}
	l->entries[l->count].name = strdup(name);
	if (!l->entries[l->count].name)
		return -ENOMEM;
	l->entries[l->count].attr = *attr;
	l->count++;
	return 0;
}

void listing_free(struct listing *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		free(l->entries[i].name);
	free(l->entries);
	free(l->dir);
	free(l);
}

/* Cached listing entries kept at most, over all listings, unless
 * dir_entries_max sets another bound.  Past it whole listings are
 * dropped, oldest first: they are only a cache. */
#define LISTING_ENTRIES_MAX 1000000

struct listing *meta_listing_get(struct cache *c, const char *dir)
{
	return htab_get(&c->listings, dir);
}

/* Remove the listing of dir from the cache and free it. */
static void drop_listing(struct cache *c, const char *dir)
{
	struct listing *l = htab_remove(&c->listings, dir);

	if (!l)
		return;
	list_del(&l->age);
	c->listing_entries -= l->count;
	listing_free(l);
}

/* Drop the oldest listings while over the bound, keeping the newest one
 * even when it alone exceeds the bound. */
static void trim_listings(struct cache *c)
{
	uint64_t max = c->cfg.dir_entries_max ? c->cfg.dir_entries_max :
						LISTING_ENTRIES_MAX;

	while (c->listing_entries > max &&
	       c->listing_age.next != c->listing_age.prev) {
		struct listing *oldest = list_entry(c->listing_age.next,
						    struct listing, age);

		drop_listing(c, oldest->dir);
	}
}

void meta_listing_store(struct cache *c, const char *dir,
			struct listing *l)
{
	drop_listing(c, dir);
	l->fetched_ms = clock_now_ms();
	free(l->dir);
	l->dir = strdup(dir);
	if (!l->dir || htab_put(&c->listings, dir, l) < 0) {
		listing_free(l);
		return;
	}
	list_add_tail(&c->listing_age, &l->age);
	c->listing_entries += l->count;
	trim_listings(c);
}

void meta_listing_forget(struct cache *c, const char *dir)
{
	note_listing_change(c, dir, false);
	drop_listing(c, dir);
}

/* Insert or update the entry of path in its parent's cached listing. */
void meta_listing_update(struct cache *c, const char *path,
			 const struct origin_attr *attr)
{
	char parent[4096];
	const char *name = path_split(path, parent, sizeof(parent));
	struct listing *l = htab_get(&c->listings, parent);
	struct dir_entry *e;

	note_listing_change(c, parent, false);
	if (!l)
		return;
	e = listing_find(l, name);
	if (e) {
		e->attr = *attr;
		return;
	}
	if (listing_add(l, name, attr) < 0) {
		drop_listing(c, parent);
		return;
	}
	listing_sort(l);
	c->listing_entries++;
	trim_listings(c);
}

void meta_listing_merge(struct cache *c, const char *path,
			const struct origin_attr *attr)
{
	char parent[4096];
	const char *name = path_split(path, parent, sizeof(parent));
	struct listing *l = htab_get(&c->listings, parent);
	struct dir_entry *e = l ? listing_find(l, name) : NULL;

	if (e)
		meta_attr_merge(&e->attr, attr);
}

void meta_listing_remove(struct cache *c, const char *path)
{
	char parent[4096];
	const char *name = path_split(path, parent, sizeof(parent));
	struct listing *l = htab_get(&c->listings, parent);
	struct dir_entry *e;
	size_t i;

	note_listing_change(c, parent, false);
	if (!l)
		return;
	e = listing_find(l, name);
	if (!e)
		return;
	i = e - l->entries;
	free(e->name);
	memmove(e, e + 1, (l->count - i - 1) * sizeof(*e));
	l->count--;
	c->listing_entries--;
}

static void collect_below(void *arg, const char *key, void *value)
{
	struct key_list *list = arg;

	(void)value;
	if (!path_is_below(key, list->dir) && strcmp(key, list->dir) != 0)
		return;
	if (list->count == list->alloc) {
		size_t n = list->alloc ? list->alloc * 2 : 16;
		char **k = realloc(list->keys, n * sizeof(*k));

		if (!k)
			return;
		list->keys = k;
		list->alloc = n;
	}
	list->keys[list->count] = strdup(key);
	if (list->keys[list->count])
		list->count++;
}

void keys_below(const struct htab *t, const char *dir, struct key_list *out)
{
	out->dir = dir;
	htab_for_each(t, collect_below, out);
}

void key_list_free(struct key_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->keys[i]);
	free(list->keys);
	list->keys = NULL;
	list->count = list->alloc = 0;
}

void meta_forget_subtree(struct cache *c, const char *dir)
{
	struct key_list attrs = { 0 }, listings = { 0 };

	note_listing_change(c, dir, true);
	keys_below(&c->attrs, dir, &attrs);
	for (size_t i = 0; i < attrs.count; i++)
		free(htab_remove(&c->attrs, attrs.keys[i]));
	key_list_free(&attrs);
	keys_below(&c->listings, dir, &listings);
	for (size_t i = 0; i < listings.count; i++)
		drop_listing(c, listings.keys[i]);
	key_list_free(&listings);
}

/*
 * Move the attributes cached below from to the same paths below to, marked
 * as expired.  A lookup still sends a request to the origin, but a listing
 * of the moved tree merges them while the version is the same.  An S3
 * listing carries no mode, so without them the symbolic links of a renamed
 * folder would list as regular files.  Lock held.
 */
static void move_attrs_below(struct cache *c, const char *from,
			     const char *to)
{
	struct key_list attrs = { 0 };
	size_t from_len = strlen(from);
	char path[4096];

	keys_below(&c->attrs, from, &attrs);
	for (size_t i = 0; i < attrs.count; i++) {
		const char *key = attrs.keys[i];
		struct attr_entry *e;

		if (!path_is_below(key, from))
			continue;
		e = htab_remove(&c->attrs, key);
		if (!e || e->negative ||
		    (size_t)snprintf(path, sizeof(path), "%s%s", to,
				     key + from_len) >= sizeof(path)) {
			free(e);
			continue;
		}
		e->fetched_ms = 0;
		free(htab_remove(&c->attrs, path));
		if (htab_put(&c->attrs, path, e) < 0)
			free(e);
	}
	key_list_free(&attrs);
}

/* After a rename of from to to, drop the cached metadata at and below
 * from, except the attributes below it, which move to the same paths below
 * to.  The caller has dropped what was cached at and below to.  The next
 * access sends a request to the origin. */
void meta_rename_prefix(struct cache *c, const char *from, const char *to)
{
	if (strcmp(from, to) != 0 && from[0] != '\0')
		move_attrs_below(c, from, to);
	meta_forget_subtree(c, from);
	note_listing_change(c, to, true);
}

static void free_attr(void *arg, const char *key, void *value)
{
	(void)arg;
	(void)key;
	free(value);
}

static void free_listing(void *arg, const char *key, void *value)
{
	(void)arg;
	(void)key;
	listing_free(value);
}

void meta_release(struct cache *c)
{
	htab_for_each(&c->attrs, free_attr, NULL);
	htab_release(&c->attrs);
	htab_for_each(&c->listings, free_listing, NULL);
	htab_release(&c->listings);
}
