/* origin_dir.c - an origin over a local directory that may be slow (NFS). */
#include "origin.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

/*
 * Every path is resolved below root_fd, an O_PATH descriptor of the root
 * taken at creation.  Components "." and ".." and empty components are
 * rejected, and no symbolic link is followed inside a path, so nothing
 * outside the root is reachable.  The last component is never followed
 * either: stat and list report a symbolic link as a link.
 *
 * Requests are counted as their S3 counterparts: read and readlink as GET,
 * stat as HEAD, list as LIST, write, mkdir and symlink as PUT, unlink and
 * rmdir as DELETE, rename and setattr as COPY.
 */

#define TMP_PREFIX ".nearfs-tmp-"
#define TMP_PREFIX_LEN (sizeof(TMP_PREFIX) - 1)
#define TMP_SUFFIX_LEN 6
#define TMP_ATTEMPTS 100
#define DEFAULT_FILE_MODE 0644
#define DEFAULT_DIR_MODE 0755

struct dir_origin {
	struct origin base;
	int root_fd;
};

/* A resolved path: the parent directory and the last component.  fd is
 * the origin's root_fd or an O_PATH descriptor that loc_close closes. */
struct dir_loc {
	int fd;
	bool owns_fd;
	const char *name;	/* "." for the root */
	bool is_root;
};

/* Set once openat2(2) returned ENOSYS (kernels before 5.6). */
static _Atomic bool no_openat2;

static struct dir_origin *to_dir(struct origin *o)
{
	return (struct dir_origin *)o;
}

static bool is_tmp_name(const char *name)
{
	return strncmp(name, TMP_PREFIX, TMP_PREFIX_LEN) == 0;
}

/*
 * Check a relative path: no leading or trailing slash, no empty, "." or
 * ".." component.  Components named like our temporary files are
 * reported as absent, as list hides them.
 */
static int path_check(const char *path)
{
	const char *p = path;
	size_t len = strlen(path);

	if (len >= PATH_MAX)
		return -ENAMETOOLONG;
	if (len == 0)
		return 0;
	while (*p) {
		const char *end = strchrnul(p, '/');
		size_t n = end - p;

		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return -EINVAL;
		if (n > NAME_MAX)
			return -ENAMETOOLONG;
		if (n >= TMP_PREFIX_LEN && is_tmp_name(p))
			return -ENOENT;
		if (*end == '/' && end[1] == '\0')
			return -EINVAL;
		p = *end ? end + 1 : end;
	}
	return 0;
}

/* Open a directory below the root one component at a time, refusing
 * symbolic links, for kernels without openat2(2). */
static int walk_open(int root_fd, char *dir)
{
	int fd = root_fd;
	char *save = NULL;

	for (char *c = strtok_r(dir, "/", &save); c;
	     c = strtok_r(NULL, "/", &save)) {
		int next = openat(fd, c, O_PATH | O_DIRECTORY | O_NOFOLLOW |
				  O_CLOEXEC);
		int err = errno;

		if (fd != root_fd)
			close(fd);
		if (next < 0)
			return -err;
		fd = next;
	}
	if (fd == root_fd)
		fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
	return fd < 0 ? -errno : fd;
}

static int beneath_open(int root_fd, char *dir)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS,
	};
	long fd;

	if (!atomic_load_explicit(&no_openat2, memory_order_relaxed)) {
		fd = syscall(SYS_openat2, root_fd, dir, &how, sizeof(how));
		if (fd >= 0)
			return (int)fd;
		if (errno != ENOSYS)
			return -errno;
		atomic_store_explicit(&no_openat2, true,
				      memory_order_relaxed);
	}
	return walk_open(root_fd, dir);
}

/*
 * Resolve path into its parent directory and last component.  buf must
 * hold PATH_MAX bytes and outlive loc.  Returns 0 or -EINVAL (a bad
 * component), -ENOENT, -ENOTDIR, -ELOOP (a symbolic link in the path).
 */
static int loc_open(struct dir_origin *d, const char *path, char *buf,
		    struct dir_loc *loc)
{
	char *slash;
	int ret = path_check(path);

	if (ret)
		return ret;
	loc->fd = d->root_fd;
	loc->owns_fd = false;
	loc->is_root = path[0] == '\0';
	loc->name = loc->is_root ? "." : path;

	slash = strrchr(path, '/');
	if (!slash)
		return 0;
	memcpy(buf, path, slash - path);
	buf[slash - path] = '\0';
	ret = beneath_open(d->root_fd, buf);
	if (ret < 0)
		return ret;
	loc->fd = ret;
	loc->owns_fd = true;
	loc->name = slash + 1;
	return 0;
}

static void loc_close(struct dir_loc *loc)
{
	if (loc->owns_fd)
		close(loc->fd);
	loc->owns_fd = false;
}

/* Count ret in counters.errors unless it describes the tree (ENOENT,
 * EEXIST, ...) rather than a failure of the origin.  Returns ret. */
static int count_error(struct origin *o, int ret)
{
	switch (ret) {
	case 0:
	case -ENOENT:
	case -ENOTDIR:
	case -EISDIR:
	case -EEXIST:
	case -ENOTEMPTY:
	case -ESTALE:
	case -EINVAL:
	case -ELOOP:
	case -ENAMETOOLONG:
	case -EXDEV:
	case -EBUSY:
	case -EOPNOTSUPP:
	case -EACCES:
	case -EPERM:
		break;
	default:
		atomic_fetch_add_explicit(&o->counters.errors, 1,
					  memory_order_relaxed);
	}
	return ret;
}

/* End the timer of a request and count its error as count_error() does.
 * Returns ret. */
static int request_done(struct origin *o, const struct origin_timer *t,
			int ret)
{
	origin_request_end(o, t);
	return count_error(o, ret);
}

static void format_version(const struct stat *st, char *out)
{
	if (!S_ISREG(st->st_mode)) {
		out[0] = '\0';
		return;
	}
	snprintf(out, ORIGIN_VERSION_MAX, "%llu-%llu-%lld.%09ld",
		 (unsigned long long)st->st_ino,
		 (unsigned long long)st->st_size,
		 (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
}

static void attr_from_stat(const struct stat *st, struct origin_attr *attr)
{
	memset(attr, 0, sizeof(*attr));
	attr->mode = st->st_mode;
	attr->uid = st->st_uid;
	attr->gid = st->st_gid;
	attr->size = st->st_size;
	attr->mtime = st->st_mtim;
	attr->valid = ORIGIN_ATTR_MODE | ORIGIN_ATTR_UID | ORIGIN_ATTR_GID |
		      ORIGIN_ATTR_MTIME;
	format_version(st, attr->version);
}

static int loc_stat(const struct dir_loc *loc, struct stat *st)
{
	if (fstatat(loc->fd, loc->name, st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

static int dir_stat(struct origin *o, const char *path,
		    struct origin_attr *attr)
{
	struct origin_timer timer;
	char buf[PATH_MAX];
	struct dir_loc loc;
	struct stat st;
	int ret;

	origin_request_start(o, ORIGIN_REQ_HEAD, &timer);
	ret = loc_open(to_dir(o), path, buf, &loc);
	if (ret)
		goto out;
	ret = loc_stat(&loc, &st);
	if (ret == 0)
		attr_from_stat(&st, attr);
	loc_close(&loc);
out:
	return request_done(o, &timer, ret);
}

/* Open path itself with flags, adding O_NOFOLLOW and O_CLOEXEC.  Returns
 * the descriptor or an error of loc_open() or openat(2). */
static int path_open(struct origin *o, const char *path, int flags)
{
	char buf[PATH_MAX];
	struct dir_loc loc;
	int fd, ret;

	ret = loc_open(to_dir(o), path, buf, &loc);
	if (ret)
		return ret;
	fd = openat(loc.fd, loc.name, flags | O_NOFOLLOW | O_CLOEXEC);
	ret = fd < 0 ? -errno : fd;
	loc_close(&loc);
	/* The caller owns the descriptor returned in ret. */
	/* cppcheck-suppress resourceLeak */
	return ret;
}

static int list_entries(DIR *dir, origin_list_fn fn, void *arg)
{
	struct origin_attr attr;
	struct dirent *de;
	struct stat st;
	int ret;

	for (;;) {
		errno = 0;
		de = readdir(dir);
		if (!de)
			return errno ? -errno : 0;
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 || is_tmp_name(de->d_name))
			continue;
		if (fstatat(dirfd(dir), de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)	/* removed meanwhile */
				continue;
			return -errno;
		}
		attr_from_stat(&st, &attr);
		ret = fn(arg, de->d_name, &attr);
		if (ret)
			return ret;
	}
}

static int dir_list(struct origin *o, const char *path, origin_list_fn fn,
		    void *arg)
{
	struct origin_timer timer;
	DIR *dir;
	int fd, ret;

	origin_request_start(o, ORIGIN_REQ_LIST, &timer);
	fd = path_open(o, path, O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	dir = fdopendir(fd);
	if (!dir) {
		ret = -errno;
		close(fd);
		goto out;
	}
	ret = list_entries(dir, fn, arg);
	closedir(dir);
out:
	return request_done(o, &timer, ret);
}

/* -ESTALE unless the open file still has the requested version. */
static int check_version(int fd, const char *version)
{
	char now[ORIGIN_VERSION_MAX];
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	format_version(&st, now);
	return strcmp(now, version) == 0 ? 0 : -ESTALE;
}

static int read_full(int fd, uint64_t offset, size_t len, void *buf,
		     size_t *done)
{
	size_t total = 0;

	while (total < len) {
		ssize_t n = pread(fd, (char *)buf + total, len - total,
				  offset + total);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		total += n;
	}
	*done = total;
	return 0;
}

static int dir_read(struct origin *o, const char *path, const char *version,
		    uint64_t offset, size_t len, void *buf, size_t *done)
{
	struct origin_timer timer;
	bool pinned = version && version[0];
	int fd, ret;

	origin_request_start(o, ORIGIN_REQ_GET, &timer);
	*done = 0;
	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	fd = path_open(o, path, O_RDONLY | O_NONBLOCK);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	if (pinned) {
		ret = check_version(fd, version);
		if (ret)
			goto out_close;
	}
	ret = read_full(fd, offset, len, buf, done);
	/* A change during the read may have mixed two versions. */
	if (ret == 0 && pinned)
		ret = check_version(fd, version);
	if (ret)
		*done = 0;
	else
		atomic_fetch_add_explicit(&o->counters.bytes_read, *done,
					  memory_order_relaxed);
out_close:
	close(fd);
out:
	return request_done(o, &timer, ret);
}

/* Record the temporary file tmp, beside path, as a leftover of the write
 * of path.  Returns the handle of the entry. */
static uint64_t record_tmp(struct origin *o, const char *path,
			   const struct dir_loc *loc, const char *tmp)
{
	int dir_len = (int)(loc->name - path);
	uint64_t handle;
	char *id;

	if (asprintf(&id, "%.*s%s", dir_len, path, tmp) < 0)
		return 0;
	handle = origin_leftover_add(o, id);
	free(id);
	return handle;
}

/* Create ".nearfs-tmp-XXXXXX" in the folder of path, open as loc, and
 * store its name in name.  The name is recorded as a leftover before the
 * file exists, so that no crash can leave the file unrecorded.  Sets
 * *leftover to the handle of the entry. */
static int tmp_create(struct origin *o, const char *path,
		      const struct dir_loc *loc, char *name, size_t size,
		      uint64_t *leftover)
{
	static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char rnd[TMP_SUFFIX_LEN];

	for (int attempt = 0; attempt < TMP_ATTEMPTS; attempt++) {
		int fd, err;

		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
			return -EIO;
		snprintf(name, size, "%s", TMP_PREFIX);
		for (int i = 0; i < TMP_SUFFIX_LEN; i++)
			name[TMP_PREFIX_LEN + i] =
				chars[rnd[i] % (sizeof(chars) - 1)];
		name[TMP_PREFIX_LEN + TMP_SUFFIX_LEN] = '\0';

		*leftover = record_tmp(o, path, loc, name);
		fd = openat(loc->fd, name, O_RDWR | O_CREAT | O_EXCL |
			    O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0)
			return fd;
		err = errno;
		origin_leftover_done(o, *leftover);
		if (err != EEXIST)
			return -err;
	}
	return -EEXIST;
}

static int copy_plain(int src, int dst, uint64_t offset, uint64_t size)
{
	char buf[65536];

	while (offset < size) {
		size_t want = size - offset < sizeof(buf) ?
			      size - offset : sizeof(buf);
		ssize_t n = pread(src, buf, want, offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;	/* source shorter than size */
		for (ssize_t put = 0; put < n;) {
			ssize_t w = pwrite(dst, buf + put, n - put,
					   offset + put);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -errno;
			put += w;
		}
		offset += n;
	}
	return 0;
}

/* Copy the first size bytes of src to dst, in the kernel when it can. */
static int copy_data(int src, int dst, uint64_t size)
{
	loff_t in = 0, out = 0;

	while ((uint64_t)in < size) {
		ssize_t n = copy_file_range(src, &in, dst, &out,
					    size - in, 0);

		if (n < 0 && errno == EINTR)
			continue;
		/* Other filesystems, old kernels, special files: copy by
		 * hand from where the kernel stopped. */
		if (n <= 0)
			break;
	}
	if (in != out)
		return -EIO;
	return copy_plain(src, dst, in, size);
}

/* Apply owner, mode and mtime of meta to the open temporary file.  When
 * the target existed, old supplies the owner and mode meta leaves out. */
static int apply_meta(int fd, const struct origin_attr *meta,
		      const struct stat *old)
{
	unsigned valid = meta ? meta->valid : 0;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	mode_t mode = DEFAULT_FILE_MODE;

	if (valid & ORIGIN_ATTR_UID)
		uid = meta->uid;
	else if (old)
		uid = old->st_uid;
	if (valid & ORIGIN_ATTR_GID)
		gid = meta->gid;
	else if (old)
		gid = old->st_gid;
	/* Only root may give files away, so EPERM keeps the caller's ids. */
	if (fchown(fd, uid, gid) < 0 && errno != EPERM)
		return -errno;

	if (valid & ORIGIN_ATTR_MODE)
		mode = meta->mode;
	else if (old)
		mode = old->st_mode;
	if (fchmod(fd, mode & 07777) < 0)
		return -errno;

	if (valid & ORIGIN_ATTR_MTIME) {
		struct timespec ts[2] = {
			{ .tv_nsec = UTIME_NOW }, meta->mtime,
		};

		if (futimens(fd, ts) < 0)
			return -errno;
	}
	return 0;
}

/* Flush a rename to disk.  A failure costs only durability, so it is
 * logged and ignored. */
static void sync_dir(int dir_fd)
{
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0)
		log_debug("fsync of a directory failed: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* Write path, whose folder loc is open, through a temporary file renamed
 * over it. */
static int write_tmp(struct origin *o, const char *path, struct dir_loc *loc,
		     int src, uint64_t size, const struct origin_attr *meta,
		     struct stat *st)
{
	char tmp[TMP_PREFIX_LEN + TMP_SUFFIX_LEN + 1];
	struct stat old;
	uint64_t leftover;
	bool has_old;
	int fd, ret;

	has_old = fstatat(loc->fd, loc->name, &old, AT_SYMLINK_NOFOLLOW) == 0;
	if (has_old && S_ISDIR(old.st_mode))
		return -EISDIR;
	/* A replaced symbolic link or special file lends no metadata. */
	has_old = has_old && S_ISREG(old.st_mode);

	fd = tmp_create(o, path, loc, tmp, sizeof(tmp), &leftover);
	if (fd < 0)
		return fd;
	ret = copy_data(src, fd, size);
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	if (ret == 0)
		ret = apply_meta(fd, meta, has_old ? &old : NULL);
	if (ret == 0 && renameat(loc->fd, tmp, loc->fd, loc->name) < 0)
		ret = -errno;
	if (ret == 0 && fstat(fd, st) < 0)
		ret = -errno;
	if (ret == 0)
		sync_dir(loc->fd);
	if (ret == 0 || unlinkat(loc->fd, tmp, 0) == 0 || errno == ENOENT)
		origin_leftover_done(o, leftover);
	else
		log_warn("cannot remove the temporary file %s of %s: %s; the"
			 " next start tries again", tmp, path, strerror(errno));
	close(fd);
	return ret;
}

static int dir_write(struct origin *o, const char *path, int fd,
		     uint64_t size, const struct origin_attr *meta,
		     struct origin_attr *result)
{
	struct origin_timer timer;
	char buf[PATH_MAX];
	struct dir_loc loc;
	struct stat st;
	int ret;

	origin_request_start(o, ORIGIN_REQ_PUT, &timer);
	ret = loc_open(to_dir(o), path, buf, &loc);
	if (ret)
		goto out;
	if (loc.is_root) {
		ret = -EISDIR;
		goto out_close;
	}
	ret = write_tmp(o, path, &loc, fd, size, meta, &st);
	if (ret)
		goto out_close;
	attr_from_stat(&st, result);
	atomic_fetch_add_explicit(&o->counters.bytes_written, size,
				  memory_order_relaxed);
out_close:
	loc_close(&loc);
out:
	return request_done(o, &timer, ret);
}

/* Copy the marked chunks of src into dst, at the same offsets. */
static int copy_chunks(int src, int dst, uint64_t size, uint32_t chunk_size,
		       const uint8_t *changed, uint32_t nbits,
		       uint64_t *copied)
{
	char *buf = malloc(chunk_size);
	int ret = buf ? 0 : -ENOMEM;

	*copied = 0;
	for (uint32_t i = 0; ret == 0 && i < nbits; i++) {
		uint64_t off = (uint64_t)i * chunk_size;
		size_t len;
		ssize_t n;

		if (!(changed[i / 8] & (1u << (i % 8))) || off >= size)
			continue;
		len = size - off < chunk_size ? size - off : chunk_size;
		n = pread(src, buf, len, off);
		if (n == (ssize_t)len)
			n = pwrite(dst, buf, len, off);
		if (n != (ssize_t)len)
			ret = n < 0 ? -errno : -EIO;
		*copied += len;
	}
	free(buf);
	return ret;
}

/*
 * Patch the chunks that changed into the file in place: a slow network
 * directory then receives the changed bytes only.  Readers of the origin
 * may see the file half patched meanwhile, as with any program that
 * writes a file in place.
 */
static int dir_write_chunks(struct origin *o, const char *path, int fd,
			    uint64_t size, uint32_t chunk_size,
			    const uint8_t *changed, uint32_t nbits,
			    const char *base_version,
			    const struct origin_attr *meta,
			    struct origin_attr *result)
{
	struct origin_timer timer;
	char buf[PATH_MAX], version[ORIGIN_VERSION_MAX];
	struct dir_loc loc;
	struct stat st;
	uint64_t copied = 0;
	int dst = -1, ret;

	origin_request_start(o, ORIGIN_REQ_PUT, &timer);
	ret = loc_open(to_dir(o), path, buf, &loc);
	if (ret)
		goto out;
	dst = loc.is_root ? -1 : openat(loc.fd, loc.name, O_WRONLY |
					O_NOFOLLOW | O_CLOEXEC);
	if (dst < 0 || fstat(dst, &st) < 0) {
		ret = loc.is_root ? -EISDIR : -errno;
		/* Removed since it was read: the caller writes it whole. */
		if (ret == -ENOENT)
			ret = -ESTALE;
		goto out_close;
	}
	format_version(&st, version);
	if (!S_ISREG(st.st_mode) || strcmp(version, base_version) != 0) {
		ret = -ESTALE;
		goto out_close;
	}
	ret = copy_chunks(fd, dst, size, chunk_size, changed, nbits, &copied);
	if (ret == 0 && ftruncate(dst, size) < 0)
		ret = -errno;
	if (ret == 0 && fsync(dst) < 0)
		ret = -errno;
	if (ret == 0)
		ret = apply_meta(dst, meta, &st);
	if (ret == 0 && fstat(dst, &st) < 0)
		ret = -errno;
	if (ret == 0)
		attr_from_stat(&st, result);
	atomic_fetch_add_explicit(&o->counters.bytes_written, copied,
				  memory_order_relaxed);
out_close:
	if (dst >= 0)
		close(dst);
	loc_close(&loc);
out:
	origin_request_end(o, &timer);
	return ret == -ESTALE ? ret : count_error(o, ret);
}

static int set_attrs(const struct dir_loc *loc,
		     const struct origin_attr *attr, unsigned which)
{
	uid_t uid = (which & ORIGIN_ATTR_UID) ? attr->uid : (uid_t)-1;
	gid_t gid = (which & ORIGIN_ATTR_GID) ? attr->gid : (gid_t)-1;

	if ((which & (ORIGIN_ATTR_UID | ORIGIN_ATTR_GID)) &&
	    fchownat(loc->fd, loc->name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	/* Linux has no modes on symbolic links: EOPNOTSUPP for them. */
	if ((which & ORIGIN_ATTR_MODE) &&
	    fchmodat(loc->fd, loc->name, attr->mode & 07777,
		     AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (which & ORIGIN_ATTR_MTIME) {
		struct timespec ts[2] = {
			{ .tv_nsec = UTIME_OMIT }, attr->mtime,
		};

		if (utimensat(loc->fd, loc->name, ts,
			      AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	return 0;
}

static int dir_setattr(struct origin *o, const char *path,
		       const struct origin_attr *attr, unsigned which,
		       struct origin_attr *result, char *prior)
{
	struct origin_attr before;
	struct origin_timer timer;
	char buf[PATH_MAX];
	struct dir_loc loc;
	struct stat st;
	int ret;

	origin_request_start(o, ORIGIN_REQ_COPY, &timer);
	ret = loc_open(to_dir(o), path, buf, &loc);
	if (ret)
		goto out;
	ret = loc_stat(&loc, &st);
	if (ret == 0) {
		attr_from_stat(&st, &before);
		if (prior)
			memcpy(prior, before.version, ORIGIN_VERSION_MAX);
		ret = set_attrs(&loc, attr, which);
	}
	if (ret == 0)
		ret = loc_stat(&loc, &st);
	if (ret == 0)
		attr_from_stat(&st, result);
	loc_close(&loc);
out:
	return request_done(o, &timer, ret);
}

/* Run unlinkat(2) with flags on path; the root cannot be removed. */
static int remove_path(struct origin *o, const char *path, int flags)
{
	struct origin_timer timer;
	char buf[PATH_MAX];
	struct dir_loc loc;
	int ret;

	origin_request_start(o, ORIGIN_REQ_DELETE, &timer);
	ret = loc_open(to_dir(o), path, buf, &loc);
	if (ret)
		goto out;
	if (loc.is_root)
		ret = -EBUSY;
	else if (unlinkat(loc.fd, loc.name, flags) < 0)
		ret = -errno;
	loc_close(&loc);
out:
	return request_done(o, &timer, ret);
}

static int dir_unlink(struct origin *o, const char *path)
{
	return remove_path(o, path, 0);
}

static int dir_rmdir(struct origin *o, const char *path)
{
	int ret = remove_path(o, path, AT_REMOVEDIR);

	/* POSIX allows EEXIST for a directory with entries.
	 * NOTE: leftover temporary files of an interrupted write, hidden
	 * from list, also make the directory non-empty here. */
	return ret == -EEXIST ? -ENOTEMPTY : ret;
}

/* Run renameat2(2).  Where the filesystem lacks RENAME_NOREPLACE (NFS,
 * some FUSE filesystems), emulate it with a check first.
 * NOTE: the emulation races with a concurrent create of the target. */
static int rename_noreplace(const struct dir_loc *from,
			    const struct dir_loc *to, unsigned flags)
{
	struct stat st;

	if (renameat2(from->fd, from->name, to->fd, to->name, flags) == 0)
		return 0;
	if (errno != EINVAL || flags != RENAME_NOREPLACE)
		return -errno;
	if (fstatat(to->fd, to->name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return -EEXIST;
	if (errno != ENOENT)
		return -errno;
	if (renameat(from->fd, from->name, to->fd, to->name) < 0)
		return -errno;
	return 0;
}

static int dir_rename(struct origin *o, const char *from, const char *to,
		      unsigned flags)
{
	struct origin_timer timer;
	char from_buf[PATH_MAX], to_buf[PATH_MAX];
	struct dir_loc from_loc, to_loc;
	int ret;

	origin_request_start(o, ORIGIN_REQ_COPY, &timer);
	ret = loc_open(to_dir(o), from, from_buf, &from_loc);
	if (ret)
		goto out;
	ret = loc_open(to_dir(o), to, to_buf, &to_loc);
	if (ret)
		goto out_from;
	if (from_loc.is_root || to_loc.is_root)
		ret = -EBUSY;
	else if (flags)
		ret = rename_noreplace(&from_loc, &to_loc, flags);
	else if (renameat(from_loc.fd, from_loc.name, to_loc.fd,
			  to_loc.name) < 0)
		ret = -errno;
	loc_close(&to_loc);
out_from:
	loc_close(&from_loc);
out:
	return request_done(o, &timer, ret);
}

static int dir_mkdir(struct origin *o, const char *path,
		     const struct origin_attr *meta)
{
	struct origin_timer timer;
	unsigned valid = meta ? meta->valid : 0;
	mode_t mode = DEFAULT_DIR_MODE;
	char buf[PATH_MAX];
	struct dir_loc loc;
	int ret;

	origin_request_start(o, ORIGIN_REQ_PUT, &timer);
	ret = loc_open(to_dir(o), path, buf, &loc);
	if (ret)
		goto out;
	if (valid & ORIGIN_ATTR_MODE)
		mode = meta->mode & 07777;
	if (loc.is_root)
		ret = -EEXIST;
	else if (mkdirat(loc.fd, loc.name, mode) < 0)
		ret = -errno;
	if (ret == 0 && (valid & (ORIGIN_ATTR_UID | ORIGIN_ATTR_GID))) {
		/* As for files: only root may give a directory away. */
		ret = set_attrs(&loc, meta, valid & (ORIGIN_ATTR_UID |
						     ORIGIN_ATTR_GID));
		if (ret == -EPERM)
			ret = 0;
	}
	loc_close(&loc);
out:
	return request_done(o, &timer, ret);
}

static int dir_statfs(struct origin *o, struct statvfs *st)
{
	if (fstatvfs(to_dir(o)->root_fd, st) < 0)
		return count_error(o, -errno);
	return 0;
}

static int dir_symlink(struct origin *o, const char *target,
		       const char *path, struct origin_attr *result)
{
	struct origin_timer timer;
	char buf[PATH_MAX];
	struct dir_loc loc;
	struct stat st;
	int ret;

	origin_request_start(o, ORIGIN_REQ_PUT, &timer);
	ret = loc_open(to_dir(o), path, buf, &loc);
	if (ret)
		goto out;
	if (loc.is_root)
		ret = -EEXIST;
	else if (symlinkat(target, loc.fd, loc.name) < 0 ||
		 fstatat(loc.fd, loc.name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		ret = -errno;
	else
		attr_from_stat(&st, result);
	loc_close(&loc);
out:
	return request_done(o, &timer, ret);
}

/* Store the link target in buf, truncated and always terminated. */
static int dir_readlink(struct origin *o, const char *path, char *buf,
			size_t size)
{
	struct origin_timer timer;
	char pathbuf[PATH_MAX];
	struct dir_loc loc;
	ssize_t n;
	int ret;

	if (size == 0)
		return -EINVAL;
	origin_request_start(o, ORIGIN_REQ_GET, &timer);
	ret = loc_open(to_dir(o), path, pathbuf, &loc);
	if (ret)
		goto out;
	n = readlinkat(loc.fd, loc.name, buf, size - 1);
	if (n < 0)
		ret = -errno;
	else
		buf[n] = '\0';
	loc_close(&loc);
out:
	return request_done(o, &timer, ret);
}

/* Remove the temporary file id, which a write left when the daemon
 * died. */
static int dir_discard(struct origin *o, const char *id)
{
	const char *slash = strrchr(id, '/');
	const char *name = slash ? slash + 1 : id;
	char buf[PATH_MAX], probe[PATH_MAX];
	struct dir_loc loc;
	struct stat st;
	int ret;

	if (!is_tmp_name(name) || strlen(name) > NAME_MAX)
		return -EINVAL;
	/* Paths name no temporary file, so open its folder through a
	 * stand-in name beside it. */
	if (snprintf(probe, sizeof(probe), "%.*sx", (int)(name - id), id) >=
	    (int)sizeof(probe))
		return -ENAMETOOLONG;
	ret = loc_open(to_dir(o), probe, buf, &loc);
	if (ret == -ENOENT || ret == -ENOTDIR)
		return -ENOENT;	/* its folder is gone, and so is the file */
	if (ret) {
		log_warn("cannot open the folder of %s/%s, left by an"
			 " interrupted upload: %s%s", o->name, id,
			 strerror(-ret), ret == -ELOOP ? "; a folder on its"
			 " path is now a symbolic link, so remove the file by"
			 " hand" : "; the next start tries again");
		return ret == -ELOOP ? -EINVAL : ret;
	}
	if (fstatat(loc.fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		ret = -errno;
	else if (!S_ISREG(st.st_mode))
		ret = -EINVAL;
	else if (unlinkat(loc.fd, name, 0) < 0)
		ret = -errno;
	loc_close(&loc);
	if (ret == 0)
		log_info("removed %s/%s, left by an interrupted upload",
			 o->name, id);
	else if (ret == -EINVAL)
		log_warn("%s/%s, left by an interrupted upload, is no longer a"
			 " regular file, so it is left alone", o->name, id);
	else if (ret != -ENOENT)
		log_warn("cannot remove %s/%s, left by an interrupted upload:"
			 " %s; the next start tries again", o->name, id,
			 strerror(-ret));
	return ret;
}

static int dir_check(struct origin *o, char *msg, size_t msglen)
{
	const char *path = o->name;
	struct stat st;
	int fd;

	if (stat(path, &st) < 0) {
		int err = errno;

		snprintf(msg, msglen, "origin directory '%s' is not "
			 "accessible (%s): give the path of an existing "
			 "directory", path, strerror(err));
		return -err;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(msg, msglen, "origin '%s' is not a directory: "
			 "give the path of a directory", path);
		return -ENOTDIR;
	}
	if (access(path, R_OK | X_OK) < 0) {
		int err = errno;

		snprintf(msg, msglen, "origin directory '%s' is not readable "
			 "and searchable (%s): grant read and execute "
			 "permission (chmod u+rx) or mount as its owner",
			 path, strerror(err));
		return -err;
	}
	fd = openat(to_dir(o)->root_fd, ".", O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC);
	if (fd < 0) {
		int err = errno;

		snprintf(msg, msglen, "cannot open origin directory '%s' "
			 "(%s): check that it is mounted and readable",
			 path, strerror(err));
		return -err;
	}
	close(fd);
	return 0;
}

static void dir_free(struct origin *o)
{
	struct dir_origin *d = to_dir(o);

	close(d->root_fd);
	free(o->name);
	free(o->identity);
	free(d);
}

static const struct origin_ops dir_ops = {
	.stat = dir_stat,
	.list = dir_list,
	.read = dir_read,
	.write = dir_write,
	.write_chunks = dir_write_chunks,
	.setattr = dir_setattr,
	.unlink = dir_unlink,
	.mkdir = dir_mkdir,
	.rmdir = dir_rmdir,
	.rename = dir_rename,
	.statfs = dir_statfs,
	.symlink = dir_symlink,
	.readlink = dir_readlink,
	.check = dir_check,
	.discard = dir_discard,
	.free = dir_free,
};

int origin_dir_new(const char *path, struct origin **out, char *err,
		   size_t errlen)
{
	struct dir_origin *d;
	char *abs;
	int ret;

	abs = realpath(path, NULL);
	if (!abs) {
		ret = -errno;
		snprintf(err, errlen, "origin directory '%s' is not "
			 "accessible (%s): give the path of an existing "
			 "directory", path, strerror(-ret));
		return ret;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out_free_abs;
	}
	d->root_fd = open(abs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (d->root_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot open origin directory '%s' "
			 "(%s): give the path of an existing directory",
			 abs, strerror(-ret));
		goto out_free_d;
	}
	d->base.ops = &dir_ops;
	d->base.name = abs;
	if (asprintf(&d->base.identity, "dir:%s", abs) < 0) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out_close;
	}
	*out = &d->base;
	return 0;

out_close:
	close(d->root_fd);
out_free_d:
	free(d);
out_free_abs:
	free(abs);
	return ret;
}
