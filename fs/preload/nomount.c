/*
 * nomount.c - the requests for paths served without FUSE.
 *
 * One connection to the root's control socket per request, as
 * protocol.h defines it, except that the connection of a file opened for
 * writing stays open as its handle.  The daemon may take as long as a
 * FUSE request would (it may fetch a whole file first), so no request
 * has a time limit.  A daemon that cannot be reached is reported once
 * per process (preload_warn_once()), and every call on a path below its
 * root then fails with EIO.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "paths.h"
#include "preload.h"
#include "preload/protocol.h"

#define REPLY_OK "ok"
#define REPLY_ERR "err"
#define REPLY_END "end"
/* Bytes of a request line besides its paths: the verb, two spaces and
 * the numbers, which fit in 64 bytes. */
#define REQUEST_EXTRA_MAX 64
/* Reported as st_blksize, like most local filesystems. */
#define REPORTED_BLKSIZE 4096
#define ERRNO_MAX 4095

/* A request line, sent in pieces of up to sizeof(buf) bytes. */
struct line_writer {
	int sock;
	int error;	/* the first send error, or 0 */
	size_t len;
	char buf[512];
};

static void writer_flush(struct line_writer *w)
{
	if (!w->error && w->len > 0)
		w->error = sock_send_all(w->sock, w->buf, w->len);
	w->len = 0;
}

static void writer_put(struct line_writer *w, const char *s, size_t len)
{
	while (len > 0) {
		size_t n = sizeof(w->buf) - w->len;

		if (n == 0) {
			writer_flush(w);
			continue;
		}
		if (n > len)
			n = len;
		memcpy(w->buf + w->len, s, n);
		w->len += n;
		s += n;
		len -= n;
	}
}

/* Write path percent-encoded, as protocol.h defines it. */
static void writer_put_path(struct line_writer *w, const char *path)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *path; path++) {
		unsigned char c = (unsigned char)*path;
		char escaped[3] = { '%', hex[c >> 4], hex[c & 15] };

		if (path_byte_is_encoded(c))
			writer_put(w, escaped, 3);
		else
			writer_put(w, path, 1);
	}
}

/* Log the daemon of t as gone, once per process, and return -EIO. */
static int daemon_gone(const struct nomount_target *t, int err)
{
	preload_warn_once("%.*s: the nearfs daemon at %s cannot be reached "
			  "(%s); calls on paths below it fail with EIO",
			  (int)t->root_len, t->path, t->socket,
			  strerror(-err));
	/* A daemon that stopped removed its root; one that restarted
	 * left a new socket. */
	mounts_refresh();
	return -EIO;
}

/* Whether err from sock_connect() means that the socket itself failed,
 * for lack of descriptors or memory, and not the daemon. */
static bool is_local_failure(int err)
{
	return err == -EMFILE || err == -ENFILE || err == -ENOMEM ||
	       err == -ENOBUFS;
}

/* Connect to the daemon of t.  Returns the socket or -errno. */
static int connect_daemon(const struct nomount_target *t)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int sock = sock_connect(t->socket, 0);

	if (sock < 0)
		return is_local_failure(sock) ? sock : daemon_gone(t, sock);
	/* A socket in a trusted folder is the daemon's, but check that a
	 * process of another user did not take its place. */
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
	    (cred.uid != getuid() && cred.uid != 0)) {
		preload_debug("%s: the process at the socket is not of uid %u "
			      "or root; not sending it requests", t->socket,
			      (unsigned)getuid());
		sys_close(sock);
		return -EIO;
	}
	return sock;
}

/*
 * Connect to the daemon of t and send "VERB PATH[ PATH2][ TAIL]\n",
 * with the paths inside their root.  Returns the socket, or -errno.
 */
static int send_request(const struct nomount_target *t, const char *verb,
			const struct nomount_target *t2, const char *tail)
{
	struct line_writer w = { .error = 0, .len = 0 };
	size_t len = strlen(verb) + path_encoded_len(target_inner(t)) +
		     (t2 ? path_encoded_len(target_inner(t2)) : 0) +
		     (tail ? strlen(tail) : 0);

	if (len + REQUEST_EXTRA_MAX > NEARFS_PATH_LINE_MAX)
		return -ENAMETOOLONG;
	w.sock = connect_daemon(t);
	if (w.sock < 0)
		return w.sock;
	writer_put(&w, verb, strlen(verb));
	writer_put(&w, " ", 1);
	writer_put_path(&w, target_inner(t));
	if (t2) {
		writer_put(&w, " ", 1);
		writer_put_path(&w, target_inner(t2));
	}
	if (tail) {
		writer_put(&w, " ", 1);
		writer_put(&w, tail, strlen(tail));
	}
	writer_put(&w, "\n", 1);
	writer_flush(&w);
	if (w.error) {
		preload_debug("%s: cannot send a %s request: %s", t->socket,
			      verb, strerror(-w.error));
		sys_close(w.sock);
		return -EIO;
	}
	return w.sock;
}

/*
 * Read a reply line: 0 for "ok" (*rest points after "ok " or at ""),
 * -ERRNO for "err ERRNO", and -EIO for anything else.
 */
static int read_status(struct line_reader *r, const char *socket,
		       char **rest)
{
	char *line, *end;
	long err;
	int len = reader_next_line(r, &line);

	if (len < 0) {
		preload_debug("%s: no whole reply line: %s", socket,
			      strerror(len == -EPROTO ? ECONNRESET : -len));
		return -EIO;
	}
	if (strcmp(line, REPLY_OK) == 0 ||
	    strncmp(line, REPLY_OK " ", strlen(REPLY_OK " ")) == 0) {
		*rest = line + strlen(REPLY_OK) + (line[strlen(REPLY_OK)] ?
						    1 : 0);
		return 0;
	}
	if (strncmp(line, REPLY_ERR " ", strlen(REPLY_ERR " ")) == 0) {
		errno = 0;
		err = strtol(line + strlen(REPLY_ERR " "), &end, 10);
		if (!errno && *end == '\0' && err > 0 && err <= ERRNO_MAX)
			return (int)-err;
	}
	preload_debug("%s: invalid reply '%.*s'", socket, len, line);
	return -EIO;
}

/* Parse count decimal numbers separated by single spaces from s into
 * out.  Returns what follows them (after one space, if any), or NULL. */
static const char *parse_numbers(const char *s, long long *out, int count)
{
	for (int i = 0; i < count; i++) {
		char *end;

		if (*s == '\0' || *s == ' ')
			return NULL;
		errno = 0;
		out[i] = strtoll(s, &end, 10);
		if (errno || end == s || (*end != ' ' && *end != '\0'))
			return NULL;
		s = *end ? end + 1 : end;
	}
	return s;
}

/*
 * Send a request and read the status line of its reply into *rest (see
 * read_status()).  The caller then reads the rest of the reply from r
 * and calls end_request(), also after a failure.
 */
static int start_request(struct line_reader *r, const struct nomount_target *t,
			 const char *verb, const struct nomount_target *t2,
			 const char *tail, char **rest)
{
	int sock = send_request(t, verb, t2, tail);

	reader_init(r, sock);
	return sock < 0 ? sock : read_status(r, t->socket, rest);
}

/* Close the connection of r, and the received descriptor unless the
 * caller took it. */
static void end_request(struct line_reader *r)
{
	if (r->fd >= 0)
		sys_close(r->fd);
	if (r->sock >= 0)
		sys_close(r->sock);
}

/* Send a request that has no reply but the status line. */
static int simple_request(const struct nomount_target *t, const char *verb,
			  const struct nomount_target *t2, const char *tail)
{
	struct line_reader r;
	char *rest;
	int saved_errno = errno;
	int ret = start_request(&r, t, verb, t2, tail, &rest);

	if (ret == 0 && *rest)
		ret = -EIO;
	end_request(&r);
	errno = saved_errno;
	return ret;
}

void nomount_identify(const struct nomount_target *t, struct statx *stx)
{
	uint64_t ino = path_hash(PATH_HASH_INIT, t->path, strlen(t->path));

	stx->stx_mask = STATX_BASIC_STATS;
	stx->stx_dev_major = major(t->dev);
	stx->stx_dev_minor = minor(t->dev);
	/* Some programs skip directory entries with inode number 0. */
	stx->stx_ino = ino ? ino : 1;
}

int nomount_stat(const struct nomount_target *t, struct statx *stx)
{
	struct line_reader r;
	long long n[7];
	char *rest;
	const char *end;
	int saved_errno = errno;
	int ret = start_request(&r, t, "path-stat", NULL, NULL, &rest);

	if (ret == 0) {
		/* MODE UID GID SIZE MTIME_SEC MTIME_NSEC NLINK */
		end = parse_numbers(rest, n, 7);
		if (!end || *end || n[3] < 0 || n[5] < 0 || n[5] > 999999999) {
			preload_debug("%s: invalid path-stat reply 'ok %s'",
				      t->socket, rest);
			ret = -EIO;
		}
	}
	end_request(&r);
	errno = saved_errno;
	if (ret)
		return ret;
	memset(stx, 0, sizeof(*stx));
	stx->stx_mode = (uint16_t)n[0];
	stx->stx_uid = (uint32_t)n[1];
	stx->stx_gid = (uint32_t)n[2];
	stx->stx_size = (uint64_t)n[3];
	stx->stx_mtime.tv_sec = n[4];
	stx->stx_mtime.tv_nsec = (uint32_t)n[5];
	stx->stx_nlink = (uint32_t)n[6];
	stx->stx_atime = stx->stx_mtime;
	stx->stx_ctime = stx->stx_mtime;
	stx->stx_blksize = REPORTED_BLKSIZE;
	stx->stx_blocks = (stx->stx_size + 511) / 512;
	nomount_identify(t, stx);
	return 0;
}

/* Parse one entry line of a path-list reply and call fn with it. */
static int list_entry(const char *socket, const char *line,
		      nomount_entry_fn *fn, void *arg)
{
	char name[NAME_MAX + 1];
	struct nomount_entry entry;
	long long n[4];
	const char *encoded = parse_numbers(line, n, 4);
	int len;

	if (!encoded || n[1] < 0 || n[3] < 0 || n[3] > 999999999) {
		preload_debug("%s: invalid path-list entry '%s'", socket, line);
		return -EIO;
	}
	len = path_decode(encoded, strlen(encoded), name, sizeof(name));
	if (len <= 0 || memchr(name, '/', (size_t)len)) {
		preload_debug("%s: invalid name in path-list entry '%s'",
			      socket, line);
		return -EIO;
	}
	/* The library makes up "." and ".." itself. */
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return 0;
	entry.mode = (mode_t)n[0];
	entry.size = (uint64_t)n[1];
	entry.mtime.tv_sec = n[2];
	entry.mtime.tv_nsec = n[3];
	entry.name = name;
	return fn(arg, &entry);
}

int nomount_list(const struct nomount_target *t, nomount_entry_fn *fn,
		 void *arg)
{
	struct line_reader r;
	char *line;
	int saved_errno = errno, len;
	int ret = start_request(&r, t, "path-list", NULL, NULL, &line);

	if (ret == 0 && *line)
		ret = -EIO;
	while (ret == 0) {
		len = reader_next_line(&r, &line);
		if (len < 0) {
			preload_debug("%s: the path-list reply ended before "
				      "'end': %s", t->socket,
				      strerror(len == -EPROTO ? ECONNRESET :
								-len));
			ret = -EIO;
		} else if (strcmp(line, REPLY_END) == 0) {
			break;
		} else {
			ret = list_entry(t->socket, line, fn, arg);
		}
	}
	end_request(&r);
	errno = saved_errno;
	return ret;
}

/* Check the descriptor of an "ok SIZE" reply to a path-open. */
static int check_opened(const struct nomount_target *t,
			const struct line_reader *r, const char *rest,
			bool writable)
{
	long long size;
	const char *end = parse_numbers(rest, &size, 1);
	struct stat st;
	long flags;

	if (!end || *end || size < 0) {
		preload_debug("%s: invalid path-open reply 'ok %s'", t->socket,
			      rest);
		return -EIO;
	}
	if (r->fd < 0 || r->extra_fds) {
		preload_debug("%s: the path-open reply came with %s "
			      "descriptor instead of one", t->socket,
			      r->fd < 0 ? "no" : "more than one");
		return -EIO;
	}
	flags = sys_fcntl(r->fd, F_GETFL, 0);
	if (sys_fstatat(r->fd, "", &st, AT_EMPTY_PATH) != 0 ||
	    !S_ISREG(st.st_mode) || flags < 0 ||
	    (flags & O_ACCMODE) != (writable ? O_RDWR : O_RDONLY) ||
	    (!writable && st.st_size != size)) {
		preload_debug("%s: the descriptor of %s is not a %s regular "
			      "file of %lld bytes", t->socket, t->path,
			      writable ? "read-write" : "read-only", size);
		return -EIO;
	}
	return 0;
}

int nomount_open(const struct nomount_target *t, int flags, mode_t mode,
		 int *handle)
{
	bool writable = (flags & O_ACCMODE) != O_RDONLY;
	struct line_reader r;
	char tail[REQUEST_EXTRA_MAX / 2];
	char *rest;
	int saved_errno = errno, ret;

	*handle = -1;
	snprintf(tail, sizeof(tail), "%d %u", flags, (unsigned)mode);
	ret = start_request(&r, t, "path-open", NULL, tail, &rest);
	if (ret == 0)
		ret = check_opened(t, &r, rest, writable);
	if (ret == 0) {
		/* The caller takes the descriptor, and the handle. */
		ret = r.fd;
		r.fd = -1;
		if (writable) {
			*handle = r.sock;
			r.sock = -1;
		}
	}
	end_request(&r);
	errno = saved_errno;
	return ret;
}

int nomount_mkdir(const struct nomount_target *t, mode_t mode)
{
	char tail[16];

	snprintf(tail, sizeof(tail), "%u", (unsigned)mode);
	return simple_request(t, "path-mkdir", NULL, tail);
}

int nomount_unlink(const struct nomount_target *t)
{
	return simple_request(t, "path-unlink", NULL, NULL);
}

int nomount_rmdir(const struct nomount_target *t)
{
	return simple_request(t, "path-rmdir", NULL, NULL);
}

int nomount_rename(const struct nomount_target *from,
		   const struct nomount_target *to)
{
	return simple_request(from, "path-rename", to, NULL);
}

int nomount_truncate(const struct nomount_target *t, off_t size)
{
	char tail[32];

	snprintf(tail, sizeof(tail), "%lld", (long long)size);
	return simple_request(t, "path-truncate", NULL, tail);
}

int nomount_commit(int handle, const char *command)
{
	struct line_reader r;
	char line[16], *rest;
	int saved_errno = errno, len, ret;

	len = snprintf(line, sizeof(line), "%s\n", command);
	ret = sock_send_all(handle, line, (size_t)len);
	if (ret) {
		preload_debug("handle %d: cannot send %s: %s", handle, command,
			      strerror(-ret));
		errno = saved_errno;
		return -EIO;
	}
	reader_init(&r, handle);
	ret = read_status(&r, "the handle connection", &rest);
	if (ret == 0 && *rest)
		ret = -EIO;
	if (r.fd >= 0)
		sys_close(r.fd);
	errno = saved_errno;
	return ret;
}

mode_t nomount_umask(void)
{
	static const char key[] = "\nUmask:";
	char buf[1024], *found, *end;
	ssize_t n;
	unsigned long mask = 022;
	int saved_errno = errno;
	int fd = sys_openat(AT_FDCWD, "/proc/self/status",
			    O_RDONLY | O_CLOEXEC, 0);

	/* umask(2) can only be read by setting it, which would race with
	 * the program's other threads.  Linux 4.7 and later show it here. */
	if (fd < 0) {
		errno = saved_errno;
		return 022;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	sys_close(fd);
	buf[n > 0 ? n : 0] = '\0';
	found = strstr(buf, key);
	if (found) {
		mask = strtoul(found + strlen(key), &end, 8);
		if (end == found + strlen(key))
			found = NULL;
	}
	errno = saved_errno;
	return found ? (mode_t)(mask & 0777) : 022;
}
