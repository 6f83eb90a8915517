/*
 * nomount.c - the path requests of a root served without FUSE, mapped to
 * engine calls (nomount.h, fs/preload/protocol.h).
 *
 * On a FUSE mount the kernel resolves a path before the daemon receives
 * it: each component but the last must be a directory, unlink fails on
 * directories and rmdir on files.  Here the daemon receives whole paths,
 * so it makes those checks itself, with cache_getattr() of the components,
 * which the attribute cache serves after the first time.
 */
#include "nomount.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "fdpass.h"
#include "fuse_ops.h"
#include "log.h"
#include "preload/protocol.h"
#include "roots.h"

/* Maximum number of arguments of a request: path-open PATH FLAGS MODE. */
#define ARGS_MAX 3
/* Maximum length of a command line on a handle ("fsync", "close"). */
#define HANDLE_LINE_MAX 64
/* Maximum length of a reply line other than a listing entry. */
#define REPLY_MAX 160

struct request {
	const struct nomount *nm;
	struct cache *cache;
	int fd;			/* the client */
	const struct ucred *peer;
	char *argv[ARGS_MAX];	/* the request's arguments, split */
};

/* ---- replies ---- */

static int reply(struct request *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int reply(struct request *r, const char *fmt, ...)
{
	char line[REPLY_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -EOVERFLOW;
	return fdpass_send_all(r->fd, line, (size_t)n);
}

static int reply_ok(struct request *r)
{
	return reply(r, "ok\n");
}

/* "ok", or "err ERRNO" for a negative errno ret. */
static int reply_result(struct request *r, int ret)
{
	return ret ? reply(r, "err %d\n", -ret) : reply_ok(r);
}

/* ---- paths ---- */

static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Undo the %XX escapes of text into out, which has room for it.
 * -EINVAL for an invalid escape or a NUL byte. */
static int percent_decode(const char *text, char *out)
{
	size_t len = 0;

	for (const char *p = text; *p; p++) {
		int high, low;

		if (*p != '%') {
			out[len++] = *p;
			continue;
		}
		high = hex_value(p[1]);
		low = high < 0 ? -1 : hex_value(p[2]);
		if (low < 0 || (high == 0 && low == 0))
			return -EINVAL;
		out[len++] = (char)(high * 16 + low);
		p += 2;
	}
	out[len] = '\0';
	return 0;
}

/*
 * Turn the encoded PATH of a request ("/" for ROOT, "/a/b") into an
 * engine path ("", "a/b").  Empty and "." components are dropped and
 * ".." removes the component before it, as a string: -EINVAL when it
 * would leave ROOT, or for a PATH that does not start with '/'.  The
 * caller frees *out.
 */
static int decode_path(const char *text, char **out)
{
	char *raw = malloc(strlen(text) + 1), *path = malloc(PATH_MAX);
	int ret = -ENOMEM;

	if (raw && path)
		ret = percent_decode(text, raw);
	if (ret == 0)
		ret = roots_normalize(raw, true, path, PATH_MAX);
	if (ret == 0) {
		/* Engine paths have no leading slash. */
		memmove(path, path + 1, strlen(path));
		*out = path;
		path = NULL;
	}
	free(raw);
	free(path);
	return ret;
}

/* Write name to out with the bytes up to 0x20, '%' and those from 0x7f
 * up as %XX, as protocol.h encodes paths. */
static void encode_name(FILE *out, const char *name)
{
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p <= 0x20 || *p == '%' || *p >= 0x7f)
			fprintf(out, "%%%02X", *p);
		else
			fputc(*p, out);
	}
}

/* Whether path lies strictly below dir; both are engine paths. */
static bool is_below(const char *path, const char *dir)
{
	size_t len = strlen(dir);

	if (len == 0)
		return path[0] != '\0';
	return strncmp(path, dir, len) == 0 && path[len] == '/';
}

/*
 * Check the folders that lead to path: 0 when each is a directory,
 * -ENOTDIR at the first that is not one, or the error of the first that
 * cannot be found (-ENOENT).
 */
static int check_parents(struct cache *c, const char *path)
{
	char *copy = strdup(path);
	struct origin_attr attr;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (char *slash = strchr(copy, '/'); slash && ret == 0;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		ret = cache_getattr(c, copy, &attr);
		if (ret == 0 && !S_ISDIR(attr.mode))
			ret = -ENOTDIR;
		*slash = '/';
	}
	free(copy);
	return ret;
}

/* cache_getattr(), with -ENOENT turned into -ENOTDIR where a component
 * before the last is not a directory, as the kernel reports it. */
static int lookup(struct cache *c, const char *path,
		  struct origin_attr *attr)
{
	int ret = cache_getattr(c, path, attr);

	if (ret == -ENOENT) {
		ret = check_parents(c, path);
		if (ret == 0)
			ret = -ENOENT;
	}
	return ret;
}

/* The path a request creates: 0 when it exists, with its attributes in
 * *attr, NEW_PATH when only path itself is missing, or the -errno of its
 * folder (lookup()). */
#define NEW_PATH 1

static int lookup_target(struct cache *c, const char *path,
			 struct origin_attr *attr)
{
	int ret = cache_getattr(c, path, attr);

	if (ret != -ENOENT)
		return ret;
	ret = check_parents(c, path);
	return ret ? ret : NEW_PATH;
}

/* Check that path does not exist yet and that its folder does. */
static int check_new(struct cache *c, const char *path)
{
	struct origin_attr attr;
	int ret = lookup_target(c, path, &attr);

	if (ret == 0)
		return -EEXIST;
	return ret == NEW_PATH ? 0 : ret;
}

static int check_writable(const struct request *r)
{
	return cache_config(r->cache)->read_only ? -EROFS : 0;
}

/* Parse a decimal number of at most max. */
static int parse_number(const char *text, uint64_t max, uint64_t *value)
{
	char *end;

	if (text[0] < '0' || text[0] > '9')
		return -EINVAL;
	errno = 0;
	*value = strtoull(text, &end, 10);
	if (errno || *end || *value > max)
		return -EINVAL;
	return 0;
}

/* ---- requests on paths ---- */

static int do_stat(struct request *r)
{
	struct origin_attr attr;
	struct stat st;
	char *path;
	int ret;

	ret = decode_path(r->argv[0], &path);
	if (ret)
		return ret;
	ret = lookup(r->cache, path, &attr);
	free(path);
	if (ret)
		return ret;
	nearfs_fs_file_stat(r->nm->fs, &attr, &st);
	return reply(r, "ok %u %u %u %" PRIu64 " %lld %ld %lu\n",
		     (unsigned)st.st_mode, (unsigned)st.st_uid,
		     (unsigned)st.st_gid, (uint64_t)st.st_size,
		     (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
		     (unsigned long)st.st_nlink);
}

struct list_state {
	const struct nomount *nm;
	FILE *out;
};

static int list_entry(void *arg, const char *name,
		      const struct origin_attr *attr)
{
	struct list_state *ls = arg;
	struct stat st;

	nearfs_fs_file_stat(ls->nm->fs, attr, &st);
	fprintf(ls->out, "%u %" PRIu64 " %lld %ld ", (unsigned)st.st_mode,
		(uint64_t)st.st_size, (long long)st.st_mtim.tv_sec,
		st.st_mtim.tv_nsec);
	encode_name(ls->out, name);
	fputc('\n', ls->out);
	return 0;
}

/* Write the listing of the directory path to ls->out. */
static int list_dir(struct cache *c, const char *path,
		    struct list_state *ls)
{
	struct cache_dir *cursor = NULL;
	int ret;

	ret = cache_dir_open(c, path, list_entry, ls, &cursor);
	while (ret == 0 && !cache_dir_complete(cursor))
		ret = cache_dir_next(cursor, list_entry, ls);
	cache_dir_close(cursor);
	return ret;
}

/*
 * The whole listing is built before the reply, so that a failed page
 * turns into "err ERRNO" rather than a listing cut short.  That costs
 * memory in proportion to the entries, as the FUSE side keeps them too.
 */
static int do_list(struct request *r)
{
	struct list_state ls = { .nm = r->nm };
	struct origin_attr attr;
	char *path, *text = NULL;
	size_t len = 0;
	int ret;

	ret = decode_path(r->argv[0], &path);
	if (ret)
		return ret;
	ret = lookup(r->cache, path, &attr);
	if (ret == 0 && !S_ISDIR(attr.mode))
		ret = -ENOTDIR;
	if (ret)
		goto out_free;
	ls.out = open_memstream(&text, &len);
	if (!ls.out) {
		ret = -ENOMEM;
		goto out_free;
	}
	fputs("ok\n", ls.out);
	ret = list_dir(r->cache, path, &ls);
	fputs("end\n", ls.out);
	if (fclose(ls.out) != 0 && ret == 0)
		ret = -ENOMEM;
	if (ret == 0)
		ret = fdpass_send_all(r->fd, text, len);
	if (ret)
		log_debug("path-list of /%s failed: %s", path, strerror(-ret));
out_free:
	free(text);
	free(path);
	return ret;
}

static int do_mkdir(struct request *r)
{
	uint64_t mode;
	char *path;
	int ret;

	ret = check_writable(r);
	if (ret == 0)
		ret = parse_number(r->argv[1], UINT32_MAX, &mode);
	if (ret == 0)
		ret = decode_path(r->argv[0], &path);
	if (ret)
		return ret;
	ret = check_new(r->cache, path);
	if (ret == 0)
		ret = cache_mkdir(r->cache, path, S_IFDIR | (mode & 07777),
				  r->peer->uid, r->peer->gid);
	free(path);
	return ret ? ret : reply_ok(r);
}

/* unlink and rmdir: remove path, a directory when is_dir is set. */
static int remove_path(struct request *r, bool is_dir)
{
	struct origin_attr attr;
	char *path;
	int ret;

	ret = check_writable(r);
	if (ret == 0)
		ret = decode_path(r->argv[0], &path);
	if (ret)
		return ret;
	ret = lookup(r->cache, path, &attr);
	if (ret == 0 && !is_dir && S_ISDIR(attr.mode))
		ret = -EISDIR;
	else if (ret == 0 && is_dir && !S_ISDIR(attr.mode))
		ret = -ENOTDIR;
	else if (ret == 0 && is_dir && path[0] == '\0')
		ret = -EBUSY;
	if (ret == 0)
		ret = is_dir ? cache_rmdir(r->cache, path) :
			       cache_unlink(r->cache, path);
	free(path);
	return ret ? ret : reply_ok(r);
}

static int do_unlink(struct request *r)
{
	return remove_path(r, false);
}

static int do_rmdir(struct request *r)
{
	return remove_path(r, true);
}

/* The checks of rename(2) that the kernel makes before a FUSE request
 * reaches the daemon. */
static int check_rename(struct cache *c, const char *from, const char *to)
{
	struct origin_attr from_attr, to_attr;
	int ret;

	if (from[0] == '\0' || to[0] == '\0')
		return -EBUSY;
	ret = lookup(c, from, &from_attr);
	if (ret)
		return ret;
	if (is_below(to, from))
		return -EINVAL;
	ret = lookup_target(c, to, &to_attr);
	if (ret == NEW_PATH)
		return 0;
	if (ret)
		return ret;
	if (S_ISDIR(from_attr.mode) && !S_ISDIR(to_attr.mode))
		return -ENOTDIR;
	if (!S_ISDIR(from_attr.mode) && S_ISDIR(to_attr.mode))
		return -EISDIR;
	return 0;
}

static int do_rename(struct request *r)
{
	char *from = NULL, *to = NULL;
	int ret;

	ret = check_writable(r);
	if (ret == 0)
		ret = decode_path(r->argv[0], &from);
	if (ret == 0)
		ret = decode_path(r->argv[1], &to);
	if (ret == 0)
		ret = check_rename(r->cache, from, to);
	if (ret == 0 && strcmp(from, to) != 0)
		ret = cache_rename(r->cache, from, to, 0, NULL);
	free(from);
	free(to);
	return ret ? ret : reply_ok(r);
}

static int do_truncate(struct request *r)
{
	struct origin_attr attr;
	uint64_t size;
	char *path;
	int ret;

	ret = check_writable(r);
	if (ret == 0)
		ret = parse_number(r->argv[1], INT64_MAX, &size);
	if (ret == 0)
		ret = decode_path(r->argv[0], &path);
	if (ret)
		return ret;
	ret = lookup(r->cache, path, &attr);
	if (ret == 0 && S_ISDIR(attr.mode))
		ret = -EISDIR;
	else if (ret == 0 && !S_ISREG(attr.mode))
		ret = -EINVAL;
	if (ret == 0) {
		memset(&attr, 0, sizeof(attr));
		ret = cache_setattr(r->cache, path, &attr, 0, true, size);
	}
	free(path);
	return ret ? ret : reply_ok(r);
}

/* ---- path-open ---- */

/* Send "ok SIZE" with the descriptor fd, SIZE being the size of its
 * file, and close fd. */
static int reply_fd(struct request *r, int fd)
{
	char line[REPLY_MAX];
	struct stat st;
	int ret;

	if (fstat(fd, &st) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	snprintf(line, sizeof(line), NEARFS_LEND_OK " %" PRIu64 "\n",
		 (uint64_t)st.st_size);
	ret = fdpass_send(r->fd, line, strlen(line), fd);
	close(fd);
	return ret;
}

/*
 * A read-only descriptor of the version f reads: its complete local copy,
 * fetched whole first, when it fits in cache_size and has no unsaved
 * writes, else a private copy (cache_file_copy()).
 */
static int read_only_fd(struct cache *c, const char *path,
			struct cache_file *f, int *fd)
{
	struct cache_lend_request req = { .fetch_max = UINT64_MAX };
	struct origin_attr attr;
	const char *reason = NULL;
	int ret;

	ret = cache_file_getattr(f, &attr);
	if (ret)
		return ret;
	if (attr.size <= cache_config(c)->size_max) {
		req.size = attr.size;
		req.mtime = attr.mtime;
		ret = cache_lend(c, path, &req, fd, &reason);
		if (ret || *fd >= 0)
			return ret;
	} else {
		reason = "it is larger than cache_size";
	}
	log_debug("path-open of /%s: no local copy can be lent (%s), so it "
		  "is copied", path, reason);
	return cache_file_copy(f, fd);
}

static int open_read(struct request *r, const char *path, int flags,
		     mode_t mode, bool create)
{
	struct cache_file *f;
	struct origin_attr none;
	bool changed;
	int fd, ret;

	if (create) {
		/* The file exists from now on, as after open(2). */
		ret = cache_file_create(r->cache, path, S_IFREG | mode,
					r->peer->uid, r->peer->gid, &f);
		if (ret)
			return ret;
		ret = cache_file_commit(f);
		cache_file_release(f);
	} else if (flags & O_TRUNC) {
		memset(&none, 0, sizeof(none));
		ret = cache_setattr(r->cache, path, &none, 0, true, 0);
	} else {
		ret = 0;
	}
	if (ret)
		return ret;
	ret = cache_file_open(r->cache, path, O_RDONLY, &f, &changed);
	if (ret)
		return ret;
	ret = read_only_fd(r->cache, path, f, &fd);
	cache_file_release(f);
	return ret ? ret : reply_fd(r, fd);
}

/* Read one line of a handle, without its newline, into line.  Returns 1,
 * 0 at the end of the connection, or -errno. */
static int read_handle_line(int sock, char *buf, size_t *have, char *line)
{
	for (;;) {
		char *nl = memchr(buf, '\n', *have);
		ssize_t n;

		if (nl) {
			size_t len = (size_t)(nl - buf);

			memcpy(line, buf, len);
			line[len] = '\0';
			*have -= len + 1;
			memmove(buf, nl + 1, *have);
			return 1;
		}
		if (*have == HANDLE_LINE_MAX)
			return -EMSGSIZE;
		n = recv(sock, buf + *have, HANDLE_LINE_MAX - *have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		*have += (size_t)n;
	}
}

/* Take the descriptor's writes and commit them as a close does. */
static int commit_last(struct cache_file *f)
{
	int ret = cache_file_import(f, true);

	return ret ? ret : cache_file_commit(f);
}

/*
 * Serve the handle of a file open for writing: "fsync" and "close"
 * commit what the client's descriptor holds.  A connection that ends
 * without "close" (the client exited, or the daemon stops) commits it
 * as a close would.
 */
static void serve_handle(struct request *r, const char *path,
			 struct cache_file *f)
{
	struct timeval forever = { 0 };
	char buf[HANDLE_LINE_MAX], line[HANDLE_LINE_MAX + 1];
	size_t have = 0;
	int ret;

	/* A file may stay open for as long as the program runs. */
	setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &forever, sizeof(forever));
	for (;;) {
		ret = read_handle_line(r->fd, buf, &have, line);
		if (ret <= 0)
			break;
		if (strcmp(line, "fsync") == 0) {
			ret = cache_file_import(f, false);
			if (ret == 0)
				ret = cache_file_fsync(f);
		} else if (strcmp(line, "close") == 0) {
			reply_result(r, commit_last(f));
			return;
		} else {
			log_debug("path-open of /%s: invalid handle request "
				  "'%s'", path, line);
			ret = -EINVAL;
		}
		reply_result(r, ret);
	}
	ret = commit_last(f);
	if (ret)
		log_err("/%s was not closed by its program, and storing what "
			"it wrote failed: %s", path, strerror(-ret));
	else
		log_debug("/%s was not closed by its program: stored what it "
			  "wrote", path);
}

static int open_write(struct request *r, const char *path, int flags,
		      mode_t mode, bool create)
{
	struct cache_file *f;
	bool changed;
	int fd, ret;

	if (create)
		ret = cache_file_create(r->cache, path, S_IFREG | mode,
					r->peer->uid, r->peer->gid, &f);
	else
		ret = cache_file_open(r->cache, path,
				      flags & (O_ACCMODE | O_TRUNC), &f,
				      &changed);
	if (ret)
		return ret;
	ret = cache_file_export(f, &fd);
	if (ret == 0)
		ret = reply_fd(r, fd);
	if (ret == 0)
		serve_handle(r, path, f);
	cache_file_release(f);
	return ret;
}

/* Whether flags and the attributes of an existing file allow the open. */
static int check_open(int flags, const struct origin_attr *attr)
{
	if ((flags & O_CREAT) && (flags & O_EXCL))
		return -EEXIST;
	if (S_ISDIR(attr->mode))
		return -EISDIR;
	if (flags & O_DIRECTORY)
		return -ENOTDIR;
	/* The protocol has no readlink: the library resolves links. */
	if (S_ISLNK(attr->mode))
		return -ELOOP;
	return S_ISREG(attr->mode) ? 0 : -EINVAL;
}

static int do_open(struct request *r)
{
	struct origin_attr attr;
	uint64_t flags, mode;
	bool writable, create = false;
	char *path;
	int ret;

	ret = parse_number(r->argv[1], INT32_MAX, &flags);
	if (ret == 0)
		ret = parse_number(r->argv[2], UINT32_MAX, &mode);
	if (ret == 0 && (flags & O_ACCMODE) == O_ACCMODE)
		ret = -EINVAL;
	if (ret == 0)
		ret = decode_path(r->argv[0], &path);
	if (ret)
		return ret;
	writable = (flags & O_ACCMODE) != O_RDONLY;
	ret = lookup_target(r->cache, path, &attr);
	if (ret == 0)
		ret = check_open((int)flags, &attr);
	create = ret == NEW_PATH && (flags & O_CREAT);
	if (create)
		ret = 0;
	else if (ret == NEW_PATH)
		ret = -ENOENT;
	if (ret == 0 && (writable || create || (flags & O_TRUNC)))
		ret = check_writable(r);
	if (ret == 0 && writable)
		ret = open_write(r, path, (int)flags, mode & 07777, create);
	else if (ret == 0)
		ret = open_read(r, path, (int)flags, mode & 07777, create);
	free(path);
	return ret;
}

/* ---- dispatch ---- */

struct handler {
	const char *name;
	int nargs;
	int (*run)(struct request *r);
};

static const struct handler handlers[] = {
	{ "path-stat", 1, do_stat },
	{ "path-list", 1, do_list },
	{ "path-open", 3, do_open },
	{ "path-mkdir", 2, do_mkdir },
	{ "path-unlink", 1, do_unlink },
	{ "path-rmdir", 1, do_rmdir },
	{ "path-rename", 2, do_rename },
	{ "path-truncate", 2, do_truncate },
};

#define NHANDLERS (sizeof(handlers) / sizeof(handlers[0]))

static const struct handler *find_handler(const char *name)
{
	for (size_t i = 0; i < NHANDLERS; i++)
		if (strcmp(name, handlers[i].name) == 0)
			return &handlers[i];
	return NULL;
}

bool nomount_serves(const char *name)
{
	return find_handler(name) != NULL;
}

/* Split copy, the request's arguments, at single spaces into exactly n
 * words.  -EINVAL for another count. */
static int split_args(char *copy, int n, char **argv)
{
	char *save = NULL;
	int count = 0;

	for (char *word = strtok_r(copy, " ", &save); word;
	     word = strtok_r(NULL, " ", &save)) {
		if (count == n)
			return -EINVAL;
		argv[count++] = word;
	}
	return count == n ? 0 : -EINVAL;
}

void nomount_serve(const struct nomount *nm, const char *name,
		   const char *args, int fd, const struct ucred *peer)
{
	const struct handler *h = find_handler(name);
	struct request r = {
		.nm = nm, .cache = nm->cache, .fd = fd, .peer = peer,
	};
	char *copy = strdup(args);
	int ret;

	if (!h)
		ret = -ENOSYS;
	else if (!copy)
		ret = -ENOMEM;
	else
		ret = split_args(copy, h->nargs, r.argv);
	if (ret == 0)
		ret = h->run(&r);
	if (ret) {
		log_debug("control socket: %s %s from uid %u failed: %s", name,
			  args, (unsigned)peer->uid, strerror(-ret));
		reply_result(&r, ret);
	}
	free(copy);
}
