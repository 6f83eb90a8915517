/* recordlog.c - checksummed append-only record files (recordlog.h). */
#include "recordlog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "log.h"

struct file_header {
	char magic[8];
	uint32_t version;
	uint32_t param;
};

struct record_header {
	uint8_t type;
	uint8_t pad[3];
	uint32_t len;		/* payload bytes */
	uint64_t sum;		/* XXH3-64 of the payload, seeded by type */
};

struct recordlog {
	const struct recordlog_kind *kind;
	char *path;
	int fd;
	int compact_fd;		/* target of a compaction, or -1 */
	uint32_t param;
	uint32_t version;	/* of the file's header */
	uint64_t size;		/* bytes in the file */
	uint64_t compact_size;	/* bytes in the compaction target */
	bool failed;		/* the last append failed; logged once */
	int compact_error;	/* of the first failed append to the
				 * compaction target, or 0 */
	bool lost;		/* records were lost since the last
				 * compaction (recordlog_lost()) */
	char *buf;		/* one record being formed */
};

static uint64_t record_sum(uint8_t type, const void *payload, uint32_t len)
{
	return XXH3_64bits_withSeed(payload, len, type);
}

/* Write len bytes of buf at off, *done of them before an error.  Returns
 * 0 or -errno: a full disk writes what fits and then fails. */
static int write_at(int fd, const char *buf, size_t len, uint64_t off,
		    size_t *done)
{
	*done = 0;
	while (*done < len) {
		ssize_t n = pwrite(fd, buf + *done, len - *done, off + *done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		*done += n;
	}
	return 0;
}

int recordlog_append(struct recordlog *log, uint8_t type, const void *a,
		     size_t alen, const void *b, size_t blen, const void *c,
		     size_t clen)
{
	char *buf = log->buf;
	struct record_header h = { .type = type };
	bool compacting = log->compact_fd >= 0;
	int fd = compacting ? log->compact_fd : log->fd;
	uint64_t *end = compacting ? &log->compact_size : &log->size;
	size_t len = alen + blen + clen;
	char *p = buf + sizeof(h);
	size_t n;
	int ret;

	if (len > RECORDLOG_PAYLOAD_MAX)
		return -E2BIG;
	memcpy(p, a, alen);
	if (blen)
		memcpy(p + alen, b, blen);
	if (clen)
		memcpy(p + alen + blen, c, clen);
	h.len = len;
	h.sum = record_sum(type, p, len);
	memcpy(buf, &h, sizeof(h));

	ret = write_at(fd, buf, sizeof(h) + len, *end, &n);
	if (ret < 0) {
		/* A short write on a full disk leaves part of a record.
		 * Cut it off, or every record appended after it would be
		 * lost at the next replay. */
		if (n > 0 && ftruncate(fd, *end) < 0)
			log_err("cannot cut a partial record off the %s %s: "
				"%s", log->kind->what, log->path,
				strerror(errno));
		if (compacting) {
			if (!log->compact_error)
				log->compact_error = ret;
			return ret;
		}
		log->lost = true;
		/* Callers report a full disk themselves, with the fix. */
		if (!log->failed && ret != -ENOSPC && ret != -EDQUOT)
			log_err("cannot append to the %s %s: %s",
				log->kind->what, log->path, strerror(-ret));
		log->failed = true;
		return ret;
	}
	*end += n;
	if (!compacting)
		log->failed = false;
	return 0;
}

bool recordlog_lost(const struct recordlog *log)
{
	return log->lost;
}

int recordlog_sync(struct recordlog *log)
{
	return fdatasync(log->fd) < 0 ? -errno : 0;
}

uint64_t recordlog_size(const struct recordlog *log)
{
	return log->size;
}

uint32_t recordlog_version(const struct recordlog *log)
{
	return log->compact_fd >= 0 ? log->kind->version : log->version;
}

/* Replay the records of buf; returns the length of the valid prefix. */
static size_t replay_all(recordlog_replay_fn fn, void *arg,
			 const char *buf, size_t size)
{
	size_t off = sizeof(struct file_header);

	while (off + sizeof(struct record_header) <= size) {
		struct record_header h;
		const char *p = buf + off + sizeof(h);

		memcpy(&h, buf + off, sizeof(h));
		if (h.len > RECORDLOG_PAYLOAD_MAX ||
		    off + sizeof(h) + h.len > size)
			break;
		if (record_sum(h.type, p, h.len) != h.sum)
			break;
		if (fn(arg, h.type, p, h.len) < 0)
			break;
		off += sizeof(h) + h.len;
	}
	return off;
}

static int write_header(const struct recordlog *log, int fd)
{
	struct file_header fh = { .version = log->kind->version,
				  .param = log->param };

	memcpy(fh.magic, log->kind->magic, sizeof(fh.magic));
	if (pwrite(fd, &fh, sizeof(fh), 0) != sizeof(fh))
		return errno ? -errno : -EIO;
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
			*buf = NULL;
			return n < 0 ? -errno : -EIO;
		}
		done += n;
	}
	return 0;
}

/* Check the header of the file at path and store its version and
 * parameter.  Returns 0, or -EPROTO with a message in err. */
static int read_header(const char *path, const struct recordlog_kind *kind,
		       const char *buf, size_t size, uint32_t *version,
		       uint32_t *param, char *err, size_t errlen)
{
	uint32_t oldest = kind->oldest_version ? kind->oldest_version :
						  kind->version;
	struct file_header fh;

	if (size < sizeof(fh) ||
	    memcmp(buf, kind->magic, sizeof(fh.magic)) != 0) {
		snprintf(err, errlen, "%s is not a nearfs %s (bad magic): %s",
			 path, kind->what, kind->fix);
		return -EPROTO;
	}
	memcpy(&fh, buf, sizeof(fh));
	if (fh.version < oldest || fh.version > kind->version) {
		if (oldest == kind->version)
			snprintf(err, errlen, "%s %s has format version %u, but "
				 "this nearfs reads version %u: %s",
				 kind->what, path, fh.version, kind->version,
				 kind->fix);
		else
			snprintf(err, errlen, "%s %s has format version %u, but "
				 "this nearfs reads versions %u to %u: %s",
				 kind->what, path, fh.version, oldest,
				 kind->version, kind->fix);
		return -EPROTO;
	}
	*version = fh.version;
	*param = fh.param;
	return 0;
}

static int start_empty(struct recordlog *log)
{
	if (ftruncate(log->fd, 0) < 0)
		return -errno;
	log->size = sizeof(struct file_header);
	log->version = log->kind->version;
	return write_header(log, log->fd);
}

static int load(struct recordlog *log, recordlog_replay_fn fn, void *arg,
		int *param_changed, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t size = 0, valid;
	uint32_t param;
	int ret = read_file(log->fd, &buf, &size);

	if (ret < 0) {
		snprintf(err, errlen, "cannot read the %s %s: %s",
			 log->kind->what, log->path, strerror(-ret));
		return ret;
	}
	if (size < sizeof(struct file_header)) {
		/* Created, and cut short by a crash before the header was
		 * complete: it can hold no record. */
		if (size)
			log_warn("%s %s: ignoring a torn header of %zu bytes",
				 log->kind->what, log->path, size);
		ret = start_empty(log);
		goto out_free;
	}
	ret = read_header(log->path, log->kind, buf, size, &log->version,
			  &param, err, errlen);
	if (ret < 0)
		goto out_free;
	if (param != log->param) {
		*param_changed = 1;
		ret = start_empty(log);
		goto out_free;
	}
	valid = replay_all(fn, arg, buf, size);
	if (valid < size) {
		log_warn("%s %s: ignoring %zu bytes of a torn or damaged "
			 "record at offset %zu", log->kind->what, log->path,
			 size - valid, valid);
		if (ftruncate(log->fd, valid) < 0)
			log_warn("cannot cut the %s %s: %s", log->kind->what,
				 log->path, strerror(errno));
	}
	log->size = valid;
	ret = 0;
out_free:
	free(buf);
	return ret;
}

int recordlog_open(const char *path, const struct recordlog_kind *kind,
		   uint32_t param, recordlog_replay_fn fn, void *arg,
		   struct recordlog **out, int *param_changed, char *err,
		   size_t errlen)
{
	struct recordlog *log = calloc(1, sizeof(*log));
	int ret;

	*param_changed = 0;
	if (!log)
		return -ENOMEM;
	log->kind = kind;
	log->buf = malloc(sizeof(struct record_header) +
			  RECORDLOG_PAYLOAD_MAX);
	log->path = strdup(path);
	log->param = param;
	log->compact_fd = -1;
	log->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (log->fd < 0 || !log->path || !log->buf) {
		ret = log->fd < 0 ? -errno : -ENOMEM;
		snprintf(err, errlen, "cannot open the %s %s: %s", kind->what,
			 path, strerror(-ret));
		goto out_close;
	}
	ret = load(log, fn, arg, param_changed, err, errlen);
	if (ret < 0)
		goto out_close;
	if (lseek(log->fd, 0, SEEK_END) < 0) {
		ret = -errno;
		goto out_close;
	}
	*out = log;
	return 0;
out_close:
	recordlog_close(log);
	return ret;
}

int recordlog_read(const char *path, const struct recordlog_kind *kind,
		   recordlog_replay_fn fn, void *arg,
		   struct recordlog_scan *scan, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t size = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret;

	/* replay() in journal.c passes a NULL scan only together with a
	 * journal, and then calls recordlog_open() instead. */
	/* cppcheck-suppress ctunullpointer */
	memset(scan, 0, sizeof(*scan));
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot open the %s %s: %s", kind->what,
			 path, strerror(errno));
		return ret;
	}
	ret = read_file(fd, &buf, &size);
	close(fd);
	if (ret < 0) {
		snprintf(err, errlen, "cannot read the %s %s: %s", kind->what,
			 path, strerror(-ret));
		return ret;
	}
	scan->size = size;
	if (size >= sizeof(struct file_header)) {
		ret = read_header(path, kind, buf, size, &scan->version,
				  &scan->param, err, errlen);
		if (ret == 0 && fn)
			scan->valid = replay_all(fn, arg, buf, size);
	}
	free(buf);
	return ret;
}

int recordlog_read_param(const char *path, const struct recordlog_kind *kind,
			 uint32_t *param, char *err, size_t errlen)
{
	struct recordlog_scan scan;
	int ret = recordlog_read(path, kind, NULL, NULL, &scan, err, errlen);

	if (ret == 0 && scan.size < sizeof(struct file_header)) {
		snprintf(err, errlen, "torn header of %" PRIu64 " bytes",
			 scan.size);
		return -ENODATA;
	}
	*param = scan.param;
	return ret;
}

void recordlog_close(struct recordlog *log)
{
	if (!log)
		return;
	if (log->compact_fd >= 0)
		recordlog_compact_end(log, 0);
	if (log->fd >= 0)
		close(log->fd);
	free(log->buf);
	free(log->path);
	free(log);
}

static char *compact_path(const struct recordlog *log)
{
	char *p;

	if (asprintf(&p, "%s.new", log->path) < 0)
		return NULL;
	return p;
}

int recordlog_compact_begin(struct recordlog *log)
{
	char *p = compact_path(log);
	int ret;

	if (!p)
		return -ENOMEM;
	log->compact_fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
			       0600);
	free(p);
	if (log->compact_fd < 0)
		return -errno;
	log->compact_size = sizeof(struct file_header);
	log->compact_error = 0;
	ret = write_header(log, log->compact_fd);
	if (ret < 0) {
		close(log->compact_fd);
		log->compact_fd = -1;
	}
	return ret;
}

int recordlog_compact_end(struct recordlog *log, int ok)
{
	char *p = compact_path(log);
	int fd = log->compact_fd;
	struct stat st;
	int ret = 0;

	log->compact_fd = -1;
	if (!p) {
		close(fd);
		return -ENOMEM;
	}
	if (!ok || log->compact_error || fsync(fd) < 0 ||
	    fstat(fd, &st) < 0 || rename(p, log->path) < 0) {
		ret = 0;
		if (ok)
			ret = log->compact_error ? log->compact_error : -EIO;
		unlink(p);
		close(fd);
		goto out_free;
	}
	close(log->fd);
	log->fd = fd;
	log->size = st.st_size;
	log->version = log->kind->version;
	log->failed = false;
	log->lost = false;
out_free:
	free(p);
	return ret;
}
