/* index.c - the records of the cache index over a record log. */
#include "index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "recordlog.h"

#define INDEX_MAGIC "NEARFSIX"

enum record_type {
	REC_OBJECT = 1,
	REC_OBJECT_DEL,
	REC_CHUNK,
	REC_CHUNK_DEL,
	REC_TOUCH,
	REC_LENT,
};

/* Fixed part of an OBJECT record; version and path follow. */
struct object_record {
	uint64_t id;
	uint64_t size;
	int64_t checked_wall_ms;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint32_t mode, uid, gid, valid;
	uint16_t version_len, path_len;
};

struct chunk_record {
	uint64_t id;
	uint32_t index;
	uint32_t len;
	uint64_t sum;
};

struct index {
	struct recordlog *log;
};

static const struct recordlog_kind index_kind = {
	.magic = INDEX_MAGIC,
	.version = INDEX_FORMAT_VERSION,
	.what = "cache index",
	.fix = "use another cache_dir, or delete the folder to start an "
	       "empty cache",
};

static int append(struct index *idx, uint8_t type, const void *a,
		  size_t alen, const void *b, size_t blen, const void *c,
		  size_t clen)
{
	return recordlog_append(idx->log, type, a, alen, b, blen, c, clen);
}

int index_log_object(struct index *idx, uint64_t id, const char *path,
		     const struct origin_attr *attr, int64_t checked_wall_ms)
{
	struct object_record r = {
		.id = id, .size = attr->size,
		.checked_wall_ms = checked_wall_ms,
		.mtime_sec = attr->mtime.tv_sec,
		.mtime_nsec = attr->mtime.tv_nsec,
		.mode = attr->mode, .uid = attr->uid, .gid = attr->gid,
		.valid = attr->valid,
		.version_len = strlen(attr->version),
		.path_len = strlen(path),
	};

	return append(idx, REC_OBJECT, &r, sizeof(r), attr->version, r.version_len,
	       path, r.path_len);
}

int index_log_object_del(struct index *idx, uint64_t id)
{
	return append(idx, REC_OBJECT_DEL, &id, sizeof(id), NULL, 0, NULL, 0);
}

int index_log_chunk(struct index *idx, uint64_t id, uint32_t index,
		    uint32_t len, uint64_t sum)
{
	struct chunk_record r = { id, index, len, sum };

	return append(idx, REC_CHUNK, &r, sizeof(r), NULL, 0, NULL, 0);
}

int index_log_chunk_del(struct index *idx, uint64_t id, uint32_t index)
{
	struct chunk_record r = { .id = id, .index = index };

	return append(idx, REC_CHUNK_DEL, &r, sizeof(r), NULL, 0, NULL, 0);
}

int index_log_touch(struct index *idx, uint64_t id, uint32_t index)
{
	struct chunk_record r = { .id = id, .index = index };

	return append(idx, REC_TOUCH, &r, sizeof(r), NULL, 0, NULL, 0);
}

int index_log_lent(struct index *idx, uint64_t id)
{
	return append(idx, REC_LENT, &id, sizeof(id), NULL, 0, NULL, 0);
}

static int replay_object(const struct index_replay *r, const char *p,
			 uint32_t len)
{
	struct object_record o;
	struct origin_attr attr = { 0 };
	char path[RECORDLOG_PAYLOAD_MAX];

	if (len < sizeof(o))
		return -EINVAL;
	memcpy(&o, p, sizeof(o));
	if (sizeof(o) + o.version_len + o.path_len != len ||
	    o.version_len >= sizeof(attr.version))
		return -EINVAL;
	attr.size = o.size;
	attr.mtime.tv_sec = o.mtime_sec;
	attr.mtime.tv_nsec = o.mtime_nsec;
	attr.mode = o.mode;
	attr.uid = o.uid;
	attr.gid = o.gid;
	attr.valid = o.valid;
	memcpy(attr.version, p + sizeof(o), o.version_len);
	memcpy(path, p + sizeof(o) + o.version_len, o.path_len);
	path[o.path_len] = '\0';
	if (memchr(path, '\0', o.path_len))
		return -EINVAL;
	r->object(r->arg, o.id, path, &attr, o.checked_wall_ms);
	return 0;
}

static int replay_record(const struct index_replay *r, uint8_t type,
			 const char *p, uint32_t len)
{
	struct chunk_record c;

	if (type == REC_OBJECT)
		return replay_object(r, p, len);
	if (type == REC_OBJECT_DEL || type == REC_LENT) {
		uint64_t id;

		if (len != sizeof(id))
			return -EINVAL;
		memcpy(&id, p, sizeof(id));
		if (type == REC_LENT)
			r->lent(r->arg, id);
		else
			r->object_del(r->arg, id);
		return 0;
	}
	if (len != sizeof(c))
		return -EINVAL;
	memcpy(&c, p, sizeof(c));
	switch (type) {
	case REC_CHUNK:
		r->chunk(r->arg, c.id, c.index, c.len, c.sum);
		return 0;
	case REC_CHUNK_DEL:
		r->chunk_del(r->arg, c.id, c.index);
		return 0;
	case REC_TOUCH:
		r->touch(r->arg, c.id, c.index);
		return 0;
	}
	return -EINVAL;
}

static int replay_one(void *arg, uint8_t type, const char *payload,
		      uint32_t len)
{
	return replay_record(arg, type, payload, len);
}

int index_open(const char *path, uint32_t chunk_size,
	       const struct index_replay *r, struct index **out, int *reset,
	       char *err, size_t errlen)
{
	struct index *idx = calloc(1, sizeof(*idx));
	int ret;

	/* replay_index() in store.c passes a NULL reset only together with
	 * a scan, and then calls index_read() instead. */
	/* cppcheck-suppress ctunullpointer */
	*reset = 0;
	if (!idx)
		return -ENOMEM;
	ret = recordlog_open(path, &index_kind, chunk_size, replay_one,
			     (void *)r, &idx->log, reset, err, errlen);
	if (ret < 0) {
		free(idx);
		return ret;
	}
	if (*reset)
		log_info("chunk_size changed: the cache at %s starts empty",
			 path);
	*out = idx;
	return 0;
}

int index_read(const char *path, const struct index_replay *r,
	       struct recordlog_scan *scan, char *err, size_t errlen)
{
	return recordlog_read(path, &index_kind, replay_one, (void *)r, scan,
			      err, errlen);
}

int index_read_chunk_size(const char *path, uint32_t *chunk_size, char *err,
			  size_t errlen)
{
	return recordlog_read_param(path, &index_kind, chunk_size, err,
				    errlen);
}

void index_close(struct index *idx)
{
	if (!idx)
		return;
	recordlog_close(idx->log);
	free(idx);
}

bool index_lost(const struct index *idx)
{
	return recordlog_lost(idx->log);
}

uint64_t index_file_size(const struct index *idx)
{
	return recordlog_size(idx->log);
}

int index_compact_begin(struct index *idx)
{
	return recordlog_compact_begin(idx->log);
}

int index_compact_end(struct index *idx, int ok)
{
	return recordlog_compact_end(idx->log, ok);
}
