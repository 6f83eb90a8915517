/*
 * lend.c - read-only descriptors of complete local copies, which programs
 * read without FUSE (see cache_lend() in cache.h).
 *
 * A complete object's data file is the file's content, so lending it is
 * opening it again read-only.  What keeps the bytes of a lent descriptor
 * unchanged is in store.c: a lent object is never punched, and a newer
 * version or an eviction unlinks its data file instead.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

/* Why obj, the cached object at path, cannot be lent to req, or NULL.
 * Lock held. */
static const char *lend_refusal(struct cache *c, const char *path,
				const struct cache_lend_request *req,
				const struct object *obj)
{
	if (htab_get(&c->shadows, path))
		return "the file is open for writing or has unsaved writes";
	if (!obj)
		return "the file is not cached";
	if (obj->attr.size != req->size ||
	    obj->attr.mtime.tv_sec != req->mtime.tv_sec ||
	    obj->attr.mtime.tv_nsec != req->mtime.tv_nsec)
		return "the version changed";
	if (req->may_read && !req->may_read(req->arg, &obj->attr))
		return "permission denied";
	return NULL;
}

/*
 * Fetch the missing chunks of a pinned obj through the read path, which
 * evicts other chunks to keep the budget.  Readahead fetches them in
 * parallel runs where the budget has room.  Returns 0 or -errno, -ESTALE
 * when the origin has a newer version.
 */
static int fetch_missing(struct cache *c, struct object *obj)
{
	uint32_t cs = c->cfg.chunk_size;
	char *buf = malloc(cs);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	store_prefetch(c, obj, 0, obj->nchunks);
	for (uint32_t i = 0; i < obj->nchunks && ret >= 0; i++) {
		struct chunk *ch;
		bool missing;

		pthread_mutex_lock(&c->lock);
		ch = obj->chunks[i];
		missing = !ch || ch->state != CHUNK_PRESENT;
		pthread_mutex_unlock(&c->lock);
		if (missing)
			ret = store_read(c, obj, buf, cs, (uint64_t)i * cs);
	}
	free(buf);
	return ret < 0 ? ret : 0;
}

int cache_lend(struct cache *c, const char *path,
	       const struct cache_lend_request *req, int *fd,
	       const char **reason)
{
	struct object *obj;
	bool complete;
	int ret = 0;

	*fd = -1;
	*reason = NULL;
	pthread_mutex_lock(&c->lock);
	obj = htab_get(&c->objects, path);
	*reason = lend_refusal(c, path, req, obj);
	if (*reason)
		goto out_count;
	obj->refs++;
	complete = store_complete(c, obj);
	if (!complete && obj->attr.size <= req->fetch_max) {
		pthread_mutex_unlock(&c->lock);
		ret = fetch_missing(c, obj);
		pthread_mutex_lock(&c->lock);
		if (ret == -ESTALE) {
			obj->checked_ms = 0;	/* the next open asks */
			*reason = "the version changed";
			ret = 0;
		}
		if (ret == 0 && !*reason)
			complete = store_complete(c, obj);
	}
	/* The lock may have been dropped: check again. */
	if (ret == 0 && !*reason && htab_get(&c->objects, path) != obj)
		*reason = "the version changed";
	else if (ret == 0 && !*reason)
		*reason = lend_refusal(c, path, req, obj);
	if (ret == 0 && !*reason && !complete)
		*reason = "the copy is not complete";
	if (ret == 0 && !*reason) {
		ret = store_lend(c, obj);
		if (ret >= 0) {
			*fd = ret;
			ret = 0;
		}
	}
	store_object_put(c, obj);
out_count:
	if (*fd >= 0)
		c->lends++;
	else
		c->lends_refused++;
	pthread_mutex_unlock(&c->lock);
	if (ret < 0)
		log_warn("cannot lend the local copy of %s: %s", path,
			 strerror(-ret));
	return ret;
}
