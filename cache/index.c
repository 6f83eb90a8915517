/* index.c - the append-only index log: records, replay and compaction. */
#include "index.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "log.h"

#define INDEX_MAGIC "NEARFSIX"
#define RECORD_MAX (1u << 16)

enum record_type {
	REC_OBJECT = 1,
	REC_OBJECT_DEL,
	REC_CHUNK,
	REC_CHUNK_DEL,
	REC_TOUCH,
};

struct file_header {
	char magic[8];
	uint32_t version;
	uint32_t chunk_size;
};

struct record_header {
	uint8_t type;
	uint8_t pad[3];
	uint32_t len;		/* payload bytes */
	uint64_t sum;		/* XXH3-64 of the payload, seeded by type */
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
	char *path;
	int fd;
	int compact_fd;		/* target of a compaction, or -1 */
	uint32_t chunk_size;
	uint64_t size;		/* bytes in the file */
	bool failed;		/* a write failed; logged once */
};

static uint64_t record_sum(uint8_t type, const void *payload, uint32_t len)
{
	return XXH3_64bits_withSeed(payload, len, type);
}

static void append(struct index *idx, uint8_t type, const void *a,
		   size_t alen, const void *b, size_t blen, const void *c,
		   size_t clen)
{
	char buf[sizeof(struct record_header) + RECORD_MAX];
	struct record_header h = { .type = type };
	int fd = idx->compact_fd >= 0 ? idx->compact_fd : idx->fd;
	size_t len = alen + blen + clen;
	char *p = buf + sizeof(h);
	ssize_t n;

	if (len > RECORD_MAX)
		return;
	memcpy(p, a, alen);
	if (blen)
		memcpy(p + alen, b, blen);
	if (clen)
		memcpy(p + alen + blen, c, clen);
	h.len = len;
	h.sum = record_sum(type, p, len);
	memcpy(buf, &h, sizeof(h));

	n = write(fd, buf, sizeof(h) + len);
	if (n != (ssize_t)(sizeof(h) + len)) {
		if (!idx->failed)
			log_err("cannot append to the cache index %s: %s; "
				"the cache keeps working, and chunks not "
				"recorded are fetched again after a restart",
				idx->path, n < 0 ? strerror(errno) : "short write");
		idx->failed = true;
		return;
	}
	if (fd == idx->fd)
		idx->size += n;
}

void index_log_object(struct index *idx, uint64_t id, const char *path,
		      const struct origin_attr *attr,
		      int64_t checked_wall_ms)
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

	append(idx, REC_OBJECT, &r, sizeof(r), attr->version, r.version_len,
	       path, r.path_len);
}

void index_log_object_del(struct index *idx, uint64_t id)
{
	append(idx, REC_OBJECT_DEL, &id, sizeof(id), NULL, 0, NULL, 0);
}

void index_log_chunk(struct index *idx, uint64_t id, uint32_t index,
		     uint32_t len, uint64_t sum)
{
	struct chunk_record r = { id, index, len, sum };

	append(idx, REC_CHUNK, &r, sizeof(r), NULL, 0, NULL, 0);
}

void index_log_chunk_del(struct index *idx, uint64_t id, uint32_t index)
{
	struct chunk_record r = { .id = id, .index = index };

	append(idx, REC_CHUNK_DEL, &r, sizeof(r), NULL, 0, NULL, 0);
}

void index_log_touch(struct index *idx, uint64_t id, uint32_t index)
{
	struct chunk_record r = { .id = id, .index = index };

	append(idx, REC_TOUCH, &r, sizeof(r), NULL, 0, NULL, 0);
}

static int replay_object(const struct index_replay *r, const char *p,
			 uint32_t len)
{
	struct object_record o;
	struct origin_attr attr = { 0 };
	char path[RECORD_MAX];

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
	if (type == REC_OBJECT_DEL) {
		uint64_t id;

		if (len != sizeof(id))
			return -EINVAL;
		memcpy(&id, p, sizeof(id));
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

/* Replay the records of buf; returns the length of the valid prefix. */
static size_t replay_all(const struct index_replay *r, const char *buf,
			 size_t size)
{
	size_t off = sizeof(struct file_header);

	while (off + sizeof(struct record_header) <= size) {
		struct record_header h;
		const char *p = buf + off + sizeof(h);

		memcpy(&h, buf + off, sizeof(h));
		if (h.len > RECORD_MAX || off + sizeof(h) + h.len > size)
			break;
		if (record_sum(h.type, p, h.len) != h.sum)
			break;
		if (replay_record(r, h.type, p, h.len) < 0)
			break;
		off += sizeof(h) + h.len;
	}
	return off;
}

static int write_header(int fd, uint32_t chunk_size)
{
	struct file_header fh = { .version = INDEX_FORMAT_VERSION,
				  .chunk_size = chunk_size };

	memcpy(fh.magic, INDEX_MAGIC, sizeof(fh.magic));
	if (pwrite(fd, &fh, sizeof(fh), 0) != sizeof(fh))
		return -errno ? -errno : -EIO;
	return 0;
}

static int read_file(int fd, char **buf, size_t *size)
{
	struct stat st;
	size_t done = 0;

	if (fstat(fd, &st) < 0)
		return -errno;
	*size = st.st_size;
	*buf = malloc(*size + 1);
	if (!*buf)
		return -ENOMEM;
	while (done < *size) {
		ssize_t n = pread(fd, *buf + done, *size - done, done);

		if (n <= 0) {
			free(*buf);
			return n < 0 ? -errno : -EIO;
		}
		done += n;
	}
	return 0;
}

/* Check the header; returns 1 when the chunk size differs. */
static int check_header(const char *path, const char *buf, size_t size,
			uint32_t chunk_size, char *err, size_t errlen)
{
	struct file_header fh;

	if (size < sizeof(fh) ||
	    memcmp(buf, INDEX_MAGIC, sizeof(fh.magic)) != 0) {
		snprintf(err, errlen, "%s is not a nearfs cache index (bad "
			 "magic): use another cache_dir, or delete the file "
			 "to start an empty cache", path);
		return -EPROTO;
	}
	memcpy(&fh, buf, sizeof(fh));
	if (fh.version != INDEX_FORMAT_VERSION) {
		snprintf(err, errlen, "cache index %s has format version %u, "
			 "but this nearfs reads version %u: use another "
			 "cache_dir, or delete the folder to start an empty "
			 "cache", path, fh.version, INDEX_FORMAT_VERSION);
		return -EPROTO;
	}
	return fh.chunk_size != chunk_size;
}

static int load(struct index *idx, const struct index_replay *r,
		int *reset, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t size = 0, valid;
	int ret = read_file(idx->fd, &buf, &size);

	if (ret < 0) {
		snprintf(err, errlen, "cannot read the cache index %s: %s",
			 idx->path, strerror(-ret));
		return ret;
	}
	if (size == 0) {
		ret = write_header(idx->fd, idx->chunk_size);
		idx->size = sizeof(struct file_header);
		goto out_free;
	}
	ret = check_header(idx->path, buf, size, idx->chunk_size, err, errlen);
	if (ret < 0)
		goto out_free;
	if (ret == 1) {
		log_info("chunk_size changed: the cache at %s starts empty",
			 idx->path);
		*reset = 1;
		ret = ftruncate(idx->fd, 0) < 0 ? -errno :
			write_header(idx->fd, idx->chunk_size);
		idx->size = sizeof(struct file_header);
		goto out_free;
	}
	valid = replay_all(r, buf, size);
	if (valid < size) {
		log_warn("cache index %s: ignoring %zu bytes of a torn or "
			 "damaged record at offset %zu", idx->path,
			 size - valid, valid);
		if (ftruncate(idx->fd, valid) < 0)
			log_warn("cannot cut the cache index %s: %s",
				 idx->path, strerror(errno));
	}
	idx->size = valid;
	ret = 0;
out_free:
	free(buf);
	return ret;
}

int index_open(const char *path, uint32_t chunk_size,
	       const struct index_replay *r, struct index **out, int *reset,
	       char *err, size_t errlen)
{
	struct index *idx = calloc(1, sizeof(*idx));
	int ret;

	*reset = 0;
	if (!idx)
		return -ENOMEM;
	idx->path = strdup(path);
	idx->chunk_size = chunk_size;
	idx->compact_fd = -1;
	idx->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (idx->fd < 0 || !idx->path) {
		ret = -errno;
		snprintf(err, errlen, "cannot open the cache index %s: %s",
			 path, strerror(errno));
		goto out_free;
	}
	ret = load(idx, r, reset, err, errlen);
	if (ret < 0)
		goto out_free;
	if (lseek(idx->fd, 0, SEEK_END) < 0) {
		ret = -errno;
		goto out_free;
	}
	*out = idx;
	return 0;
out_free:
	index_close(idx);
	return ret;
}

void index_close(struct index *idx)
{
	if (!idx)
		return;
	if (idx->compact_fd >= 0)
		index_compact_end(idx, 0);
	if (idx->fd >= 0)
		close(idx->fd);
	free(idx->path);
	free(idx);
}

uint64_t index_file_size(const struct index *idx)
{
	return idx->size;
}

static char *compact_path(const struct index *idx)
{
	char *p;

	if (asprintf(&p, "%s.new", idx->path) < 0)
		return NULL;
	return p;
}

int index_compact_begin(struct index *idx)
{
	char *p = compact_path(idx);
	int ret;

	if (!p)
		return -ENOMEM;
	idx->compact_fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
			       0600);
	free(p);
	if (idx->compact_fd < 0)
		return -errno;
	ret = write_header(idx->compact_fd, idx->chunk_size);
	if (ret == 0 && lseek(idx->compact_fd, 0, SEEK_END) < 0)
		ret = -errno;
	if (ret < 0) {
		close(idx->compact_fd);
		idx->compact_fd = -1;
	}
	return ret;
}

int index_compact_end(struct index *idx, int ok)
{
	char *p = compact_path(idx);
	int fd = idx->compact_fd;
	struct stat st;
	int ret = 0;

	idx->compact_fd = -1;
	if (!p) {
		close(fd);
		return -ENOMEM;
	}
	if (!ok || idx->failed || fsync(fd) < 0 || fstat(fd, &st) < 0 ||
	    rename(p, idx->path) < 0) {
		ret = ok ? -EIO : 0;
		unlink(p);
		close(fd);
		goto out_free;
	}
	close(idx->fd);
	idx->fd = fd;
	idx->size = st.st_size;
out_free:
	free(p);
	return ret;
}
