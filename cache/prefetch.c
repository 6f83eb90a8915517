/*
 * prefetch.c - the listings of a whole subtree from one recursive origin
 * listing, stored while its pages arrive, so that a walk over a distant
 * origin sends ceil(keys / page) requests instead of one per directory.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

/* Recursive listings in flight at most; past that, directories are
 * listed one by one as before. */
#define PREFETCH_MAX 4
/* list_tree() result when the prefetch stopped before the end. */
#define PREFETCH_STOPPED 1

/* ---- builder ---------------------------------------------------------- */

/* One directory whose run of entries the listing is in. */
struct tree_level {
	char *dir;		/* full path */
	size_t rel_len;		/* length of "a/b/" below the root; 0 there */
	struct listing *l;
};

struct tree_builder {
	char *root;
	struct tree_level *levels;	/* levels[0] is the root */
	size_t depth, alloc;
	tree_done_fn done;
	void *arg;
};

/* Join dir and a relative path of len bytes into a new string. */
static char *join_rel(const char *dir, const char *rel, size_t len)
{
	char *path;

	if (asprintf(&path, "%s%s%.*s", dir, dir[0] && len ? "/" : "",
		     (int)len, rel) < 0)
		return NULL;
	return path;
}

static int push_level(struct tree_builder *b, const char *rel,
		      size_t rel_len)
{
	struct tree_level *lv;

	if (b->depth == b->alloc) {
		size_t n = b->alloc ? b->alloc * 2 : 8;
		struct tree_level *p = realloc(b->levels, n * sizeof(*p));

		if (!p)
			return -ENOMEM;
		b->levels = p;
		b->alloc = n;
	}
	lv = &b->levels[b->depth];
	lv->rel_len = rel_len;
	/* "a/b/" names directory "a/b": the slash is not part of it. */
	lv->dir = join_rel(b->root, rel, rel_len ? rel_len - 1 : 0);
	lv->l = calloc(1, sizeof(*lv->l));
	if (!lv->dir || !lv->l) {
		free(lv->dir);
		free(lv->l);
		return -ENOMEM;
	}
	b->depth++;
	return 0;
}

/* Sort a finished listing.  A name that is both a file and a directory
 * ("a" and "a/x") is listed once, as the file, which is what stat()
 * reports for it. */
static void finish_listing(struct listing *l)
{
	size_t out = 0;

	listing_sort(l);
	for (size_t i = 0; i < l->count; i++) {
		struct dir_entry *e = &l->entries[i];
		struct dir_entry *prev = out ? &l->entries[out - 1] : NULL;

		if (prev && strcmp(prev->name, e->name) == 0) {
			if (S_ISDIR(prev->attr.mode) && !S_ISDIR(e->attr.mode))
				prev->attr = e->attr;
			free(e->name);
			continue;
		}
		l->entries[out++] = *e;
	}
	l->count = out;
}

/* Pass the deepest open directory on: the listing went past it. */
static void pop_level(struct tree_builder *b)
{
	struct tree_level *lv = &b->levels[--b->depth];

	finish_listing(lv->l);
	b->done(b->arg, lv->dir, lv->l);
	free(lv->dir);
}

struct tree_builder *tree_builder_new(const char *root, tree_done_fn done,
				      void *arg)
{
	struct tree_builder *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->done = done;
	b->arg = arg;
	b->root = strdup(root);
	if (!b->root || push_level(b, "", 0) < 0) {
		tree_builder_free(b);
		return NULL;
	}
	return b;
}

/* Whether the entry at rel lies below the directory of level lv. */
static bool level_contains(const struct tree_level *lv, const char *rel,
			   const char *root)
{
	const char *lrel = lv->dir + strlen(root) + (root[0] ? 1 : 0);

	return strncmp(rel, lrel, lv->rel_len - 1) == 0 &&
	       rel[lv->rel_len - 1] == '/';
}

/* Add a name of len bytes to the listing of the deepest open level. */
static int add_name(struct tree_builder *b, const char *name, size_t len,
		    const struct origin_attr *attr)
{
	char *copy = strndup(name, len);
	int ret;

	if (!copy)
		return -ENOMEM;
	ret = listing_add(b->levels[b->depth - 1].l, copy, attr);
	free(copy);
	return ret;
}

int tree_builder_add(struct tree_builder *b,
		     const struct origin_tree_entry *e,
		     const struct origin_attr *dir_attr)
{
	const char *rel = e->path, *slash;
	size_t keep = 1, start;
	int ret;

	if (!*rel)
		return 0;
	while (keep < b->depth &&
	       level_contains(&b->levels[keep], rel, b->root))
		keep++;
	while (b->depth > keep)
		pop_level(b);

	/* Open each directory on the way down that is not open yet.  Its
	 * own marker ("a/b/" itself) carries its attributes. */
	start = b->levels[b->depth - 1].rel_len;
	while ((slash = strchr(rel + start, '/'))) {
		size_t end = slash - rel;
		const struct origin_attr *attr = slash[1] ? dir_attr : &e->attr;

		ret = add_name(b, rel + start, end - start, attr);
		if (!ret)
			ret = push_level(b, rel, end + 1);
		if (ret)
			return ret;
		start = end + 1;
	}
	if (!rel[start])
		return 0;
	return add_name(b, rel + start, strlen(rel + start), &e->attr);
}

void tree_builder_finish(struct tree_builder *b)
{
	while (b->depth > 0)
		pop_level(b);
}

void tree_builder_free(struct tree_builder *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->depth; i++) {
		listing_free(b->levels[i].l);
		free(b->levels[i].dir);
	}
	free(b->levels);
	free(b->root);
	free(b);
}

/* ---- prefetch jobs ---------------------------------------------------- */

/* One recursive listing in flight, on cache.prefetches while it runs. */
struct prefetch {
	struct list_node node;
	struct cache *c;
	char *root;
	struct tree_builder *b;
	uint64_t budget;	/* entries it may still take */
	/* Under cache.lock: the full path of the last entry taken, and
	 * whether a local change made what it lists unsafe to store. */
	char *position;
	bool stale;
};

static bool listing_is_fresh(struct cache *c, const char *dir)
{
	struct listing *l = meta_listing_get(c, dir);

	return l && cache_is_fresh(l->fetched_ms, c->cfg.dir_ttl_ms);
}

/* Store a listing the builder finished, unless a fresh one is cached,
 * which may contain local changes. */
static void store_done(void *arg, const char *dir, struct listing *l)
{
	struct prefetch *pf = arg;
	struct cache *c = pf->c;

	pthread_mutex_lock(&c->lock);
	if (!pf->stale && !c->prefetch_stop && !listing_is_fresh(c, dir)) {
		cache_install_listing(c, dir, l);
		l = NULL;
	}
	pthread_cond_broadcast(&c->prefetched);
	pthread_mutex_unlock(&c->lock);
	listing_free(l);
}

static int take_page(void *arg, const struct origin_tree_page *page)
{
	struct prefetch *pf = arg;
	struct cache *c = pf->c;
	size_t n = page->count;
	char *position = NULL;
	bool stop;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	stop = c->prefetch_stop || pf->stale;
	pthread_mutex_unlock(&c->lock);
	if (stop)
		return PREFETCH_STOPPED;
	if (n > pf->budget)
		n = pf->budget;
	for (size_t i = 0; !ret && i < n; i++)
		ret = tree_builder_add(pf->b, &page->entries[i],
				       &page->dir_attr);
	pf->budget -= n;
	if (ret)
		return ret;
	if (n)
		position = join_rel(pf->root, page->entries[n - 1].path,
				    strlen(page->entries[n - 1].path));

	pthread_mutex_lock(&c->lock);
	if (position) {
		free(pf->position);
		pf->position = position;
	}
	pthread_cond_broadcast(&c->prefetched);
	pthread_mutex_unlock(&c->lock);
	if (pf->budget == 0) {
		log_debug("listing prefetch of '%s' stopped at its budget of "
			  "%" PRIu64 " entries", pf->root,
			  c->cfg.dir_prefetch);
		return PREFETCH_STOPPED;
	}
	return 0;
}

static void prefetch_free(struct prefetch *pf)
{
	tree_builder_free(pf->b);
	free(pf->root);
	free(pf->position);
	free(pf);
}

static void *prefetch_main(void *arg)
{
	struct prefetch *pf = arg;
	struct cache *c = pf->c;
	int ret;

	ret = c->origin->ops->list_tree(c->origin, pf->root, take_page, pf);
	if (ret == 0)
		tree_builder_finish(pf->b);
	else if (ret < 0)
		log_warn("listing prefetch of '%s' failed: %s, so its "
			 "directories are listed one by one", pf->root,
			 strerror(-ret));

	pthread_mutex_lock(&c->lock);
	list_del(&pf->node);
	c->prefetch_running--;
	pthread_cond_broadcast(&c->prefetched);
	pthread_mutex_unlock(&c->lock);
	prefetch_free(pf);
	return NULL;
}

/* Whether some subdirectory in l has no fresh listing yet. */
static bool has_unlisted_subdir(struct cache *c, const char *dir,
				const struct listing *l)
{
	char path[4096];

	for (size_t i = 0; i < l->count; i++) {
		if (!S_ISDIR(l->entries[i].attr.mode))
			continue;
		snprintf(path, sizeof(path), "%s%s%s", dir, dir[0] ? "/" : "",
			 l->entries[i].name);
		if (!listing_is_fresh(c, path))
			return true;
	}
	return false;
}

/* Whether a prefetch in flight lists dir as part of its subtree. */
static bool covered(struct cache *c, const char *dir)
{
	for (struct list_node *n = c->prefetches.next; n != &c->prefetches;
	     n = n->next) {
		struct prefetch *pf = list_entry(n, struct prefetch, node);

		if (strcmp(pf->root, dir) == 0 || path_is_below(dir, pf->root))
			return true;
	}
	return false;
}

static int spawn(struct prefetch *pf)
{
	pthread_attr_t attr;
	pthread_t thread;
	int ret;

	if (pthread_attr_init(&attr))
		return -ENOMEM;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&thread, &attr, prefetch_main, pf);
	pthread_attr_destroy(&attr);
	return -ret;
}

void prefetch_start(struct cache *c, const char *dir,
		    const struct listing *l)
{
	struct prefetch *pf;
	int ret;

	if (!c->origin->ops->list_tree || c->cfg.dir_prefetch == 0 ||
	    c->cfg.dir_ttl_ms == 0 || c->prefetch_stop ||
	    c->prefetch_running >= PREFETCH_MAX ||
	    !has_unlisted_subdir(c, dir, l) || covered(c, dir))
		return;
	pf = calloc(1, sizeof(*pf));
	if (!pf)
		return;
	pf->c = c;
	pf->budget = c->cfg.dir_prefetch;
	pf->root = strdup(dir);
	pf->b = tree_builder_new(dir, store_done, pf);
	if (!pf->root || !pf->b) {
		prefetch_free(pf);
		return;
	}
	list_add_tail(&c->prefetches, &pf->node);
	c->prefetch_running++;
	ret = spawn(pf);
	if (ret < 0) {
		log_warn("cannot start the listing prefetch of '%s': %s",
			 dir, strerror(-ret));
		list_del(&pf->node);
		c->prefetch_running--;
		prefetch_free(pf);
	}
}

/* Whether the listing of pf has gone past every key below dir. */
static bool passed(const struct prefetch *pf, const char *dir)
{
	size_t n = strlen(dir);
	int cmp;

	if (!pf->position)
		return false;
	cmp = strncmp(pf->position, dir, n);
	if (cmp)
		return cmp > 0;
	return (unsigned char)pf->position[n] > '/';
}

/* Whether a prefetch in flight may still store the listing of dir. */
static bool pending_for(struct cache *c, const char *dir)
{
	for (struct list_node *n = c->prefetches.next; n != &c->prefetches;
	     n = n->next) {
		struct prefetch *pf = list_entry(n, struct prefetch, node);

		if (!pf->stale && path_is_below(dir, pf->root) &&
		    !passed(pf, dir))
			return true;
	}
	return false;
}

bool prefetch_wait(struct cache *c, const char *dir)
{
	bool waited = false;

	while (!listing_is_fresh(c, dir) && pending_for(c, dir)) {
		pthread_cond_wait(&c->prefetched, &c->lock);
		waited = true;
	}
	return waited;
}

void prefetch_note_change(struct cache *c, const char *dir, bool subtree)
{
	for (struct list_node *n = c->prefetches.next; n != &c->prefetches;
	     n = n->next) {
		struct prefetch *pf = list_entry(n, struct prefetch, node);

		if (path_is_below(dir, pf->root) ||
		    (subtree && (strcmp(dir, pf->root) == 0 ||
				 path_is_below(pf->root, dir)))) {
			pf->stale = true;
			pthread_cond_broadcast(&c->prefetched);
		}
	}
}

void prefetch_stop_all(struct cache *c)
{
	pthread_mutex_lock(&c->lock);
	c->prefetch_stop = true;
	while (c->prefetch_running > 0)
		pthread_cond_wait(&c->prefetched, &c->lock);
	pthread_mutex_unlock(&c->lock);
}
