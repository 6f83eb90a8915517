/* fake_origin.c - the in-memory origin and test helpers of fake_origin.h. */
#include "fake_origin.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

struct fake_node {
	char *path;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec mtime;
	char *data;		/* file content or link target */
	size_t size;
	char version[ORIGIN_VERSION_MAX];
};

struct fake_origin {
	struct origin base;	/* first: the engine's struct origin * */
	struct origin_ops ops;	/* fake_ops, with list_page, list_tree and
				 * read_stream when set */
	unsigned list_page;	/* entries per list_page() page */
	unsigned tree_page;	/* entries per list_tree() page */
	pthread_mutex_t lock;
	struct fake_node *nodes;
	size_t count, alloc;
	uint64_t next_version;
	_Atomic unsigned refs;
	_Atomic unsigned calls[FAKE_OP_MAX];
	unsigned fail_left[FAKE_OP_MAX];	/* under lock */
	int fail_errno[FAKE_OP_MAX];
	_Atomic unsigned read_delay_ms;
	fake_stat_hook_fn stat_hook;	/* under lock */
	void *stat_hook_arg;
	uint64_t last_read_offset;	/* under lock */
	size_t last_read_len;
	uint64_t stream_cut;		/* under lock; 0: none */
	bool stream_cut_retry;
	uint64_t stream_stall;		/* under lock; 0: none */
	uint64_t hold_from;		/* under lock; UINT64_MAX: none */
	pthread_cond_t released;	/* hold_from was raised */
	char discarded[1024];		/* under lock */
};

static struct fake_origin *to_fake(struct origin *o)
{
	return (struct fake_origin *)o;
}

/* Count a call of op and return the injected error, or 0.  Unlocked. */
static int fake_enter(struct fake_origin *fo, enum fake_op op,
		      enum origin_request kind)
{
	int ret = 0;

	atomic_fetch_add(&fo->calls[op], 1);
	origin_count(&fo->base, kind);
	pthread_mutex_lock(&fo->lock);
	if (fo->fail_left[op] > 0) {
		fo->fail_left[op]--;
		ret = -fo->fail_errno[op];
	}
	pthread_mutex_unlock(&fo->lock);
	if (ret) {
		atomic_fetch_add(&fo->base.counters.errors, 1);
		origin_set_detail("injected failure %d", -ret);
	}
	return ret;
}

/* The node of path, or NULL.  Lock held. */
static struct fake_node *find_node(struct fake_origin *fo, const char *path)
{
	for (size_t i = 0; i < fo->count; i++)
		if (strcmp(fo->nodes[i].path, path) == 0)
			return &fo->nodes[i];
	return NULL;
}

/* The parent folder of path ("" for a top-level name) into buf. */
static void parent_of(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	if (n >= len)
		n = len - 1;
	memcpy(buf, path, n);
	buf[n] = '\0';
}

static bool is_below(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 0)
		return path[0] != '\0';
	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

/* True when the parent of path is an existing directory.  Lock held. */
static bool parent_is_dir(struct fake_origin *fo, const char *path)
{
	char parent[4096];
	struct fake_node *n;

	parent_of(path, parent, sizeof(parent));
	n = find_node(fo, parent);
	return n && S_ISDIR(n->mode);
}

static void new_version(struct fake_origin *fo, struct fake_node *n)
{
	snprintf(n->version, sizeof(n->version), "v%llu",
		 (unsigned long long)++fo->next_version);
}

/* Add a node for path, or return NULL when out of memory.  Lock held. */
static struct fake_node *add_node(struct fake_origin *fo, const char *path,
				  mode_t mode)
{
	struct fake_node *n;

	if (fo->count == fo->alloc) {
		size_t alloc = fo->alloc ? fo->alloc * 2 : 16;
		struct fake_node *p = realloc(fo->nodes, alloc * sizeof(*p));

		if (!p)
			return NULL;
		fo->nodes = p;
		fo->alloc = alloc;
	}
	n = &fo->nodes[fo->count];
	memset(n, 0, sizeof(*n));
	n->path = strdup(path);
	if (!n->path)
		return NULL;
	n->mode = mode;
	n->uid = getuid();
	n->gid = getgid();
	clock_gettime(CLOCK_REALTIME, &n->mtime);
	fo->count++;
	return n;
}

static void remove_node(struct fake_origin *fo, struct fake_node *n)
{
	size_t i = n - fo->nodes;

	free(n->path);
	free(n->data);
	memmove(n, n + 1, (fo->count - i - 1) * sizeof(*n));
	fo->count--;
}

static bool has_children(struct fake_origin *fo, const char *dir)
{
	for (size_t i = 0; i < fo->count; i++)
		if (is_below(fo->nodes[i].path, dir))
			return true;
	return false;
}

static void node_attr(const struct fake_node *n, struct origin_attr *attr)
{
	memset(attr, 0, sizeof(*attr));
	attr->mode = n->mode;
	attr->uid = n->uid;
	attr->gid = n->gid;
	attr->size = n->size;
	attr->mtime = n->mtime;
	attr->valid = ORIGIN_ATTR_MODE | ORIGIN_ATTR_UID | ORIGIN_ATTR_GID |
		      ORIGIN_ATTR_MTIME;
	memcpy(attr->version, n->version, sizeof(attr->version));
}

static int fake_stat(struct origin *o, const char *path,
		     struct origin_attr *attr)
{
	struct fake_origin *fo = to_fake(o);
	struct fake_node *n;
	fake_stat_hook_fn hook;
	void *hook_arg;
	int ret = fake_enter(fo, FAKE_STAT, ORIGIN_REQ_HEAD);

	if (ret)
		return ret;
	pthread_mutex_lock(&fo->lock);
	hook = fo->stat_hook;
	hook_arg = fo->stat_hook_arg;
	pthread_mutex_unlock(&fo->lock);
	if (hook)
		hook(hook_arg, path);
	pthread_mutex_lock(&fo->lock);
	n = find_node(fo, path);
	if (n)
		node_attr(n, attr);
	pthread_mutex_unlock(&fo->lock);
	return n ? 0 : -ENOENT;
}

/* 0 when dir is a directory, else -ENOENT or -ENOTDIR.  Lock held. */
static int check_dir(struct fake_origin *fo, const char *dir)
{
	struct fake_node *n = find_node(fo, dir);

	if (!n)
		return -ENOENT;
	return S_ISDIR(n->mode) ? 0 : -ENOTDIR;
}

struct fake_entry {
	char *name;
	struct origin_attr attr;
};

/* Copy the entries of dir.  Lock held. */
static int collect_children(struct fake_origin *fo, const char *dir,
			    struct fake_entry **out, size_t *count)
{
	struct fake_entry *e = calloc(fo->count + 1, sizeof(*e));
	char parent[4096];
	size_t k = 0;

	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < fo->count; i++) {
		const struct fake_node *n = &fo->nodes[i];
		const char *slash = strrchr(n->path, '/');

		if (n->path[0] == '\0')
			continue;
		parent_of(n->path, parent, sizeof(parent));
		if (strcmp(parent, dir) != 0)
			continue;
		e[k].name = strdup(slash ? slash + 1 : n->path);
		node_attr(n, &e[k].attr);
		k++;
	}
	*out = e;
	*count = k;
	return 0;
}

/* Count one FAKE_LIST call and copy the entries of dir. */
static int list_children(struct fake_origin *fo, const char *dir,
			 struct fake_entry **out, size_t *count)
{
	int ret = fake_enter(fo, FAKE_LIST, ORIGIN_REQ_LIST);

	if (ret)
		return ret;
	pthread_mutex_lock(&fo->lock);
	ret = check_dir(fo, dir);
	if (!ret)
		ret = collect_children(fo, dir, out, count);
	pthread_mutex_unlock(&fo->lock);
	return ret;
}

static int fake_list(struct origin *o, const char *dir, origin_list_fn fn,
		     void *arg)
{
	struct fake_origin *fo = to_fake(o);
	struct fake_entry *e = NULL;
	size_t count = 0;
	int ret = list_children(fo, dir, &e, &count);

	/* The callback runs unlocked, as it may call back into the test. */
	for (size_t i = 0; i < count; i++) {
		if (ret == 0 && e[i].name)
			ret = fn(arg, e[i].name, &e[i].attr);
		free(e[i].name);
	}
	free(e);
	return ret;
}

static int fake_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fake_entry *)a)->name,
		      ((const struct fake_entry *)b)->name);
}

/* List the entries of dir in name order, list_page entries a page.  The
 * token is the last name of the page before, and a page starts after it. */
static int fake_list_page(struct origin *o, const char *dir,
			  const char *token, origin_list_fn fn, void *arg,
			  char *next_token, size_t len)
{
	struct fake_origin *fo = to_fake(o);
	struct fake_entry *e = NULL;
	size_t count = 0, first = 0, end;
	int ret = list_children(fo, dir, &e, &count);

	if (!ret)
		qsort(e, count, sizeof(*e), fake_entry_cmp);
	while (*token && first < count && strcmp(e[first].name, token) <= 0)
		first++;
	end = count - first > fo->list_page ? first + fo->list_page : count;

	/* The callback runs unlocked, as it may call back into the test. */
	for (size_t i = first; ret == 0 && i < end; i++)
		ret = fn(arg, e[i].name, &e[i].attr);
	if (ret == 0)
		snprintf(next_token, len, "%s",
			 end < count ? e[end - 1].name : "");
	for (size_t i = 0; i < count; i++)
		free(e[i].name);
	free(e);
	return ret;
}

static int tree_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct origin_tree_entry *)a)->path,
		      ((const struct origin_tree_entry *)b)->path);
}

/* Copy every node below dir as a relative path, "a/" for a directory,
 * sorted by path.  Lock held. */
static int collect_tree(struct fake_origin *fo, const char *dir,
			struct origin_tree_entry **out, size_t *count)
{
	struct origin_tree_entry *e = calloc(fo->count + 1, sizeof(*e));
	size_t skip = dir[0] ? strlen(dir) + 1 : 0, k = 0;

	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < fo->count; i++) {
		const struct fake_node *n = &fo->nodes[i];
		char *path;

		if (!is_below(n->path, dir))
			continue;
		if (asprintf(&path, "%s%s", n->path + skip,
			     S_ISDIR(n->mode) ? "/" : "") < 0)
			continue;
		e[k].path = path;
		node_attr(n, &e[k].attr);
		k++;
	}
	qsort(e, k, sizeof(*e), tree_entry_cmp);
	*out = e;
	*count = k;
	return 0;
}

static int fake_list_tree(struct origin *o, const char *dir,
			  origin_tree_fn fn, void *arg)
{
	struct fake_origin *fo = to_fake(o);
	struct origin_tree_entry *e = NULL;
	struct origin_tree_page page = { 0 };
	size_t count = 0;
	int ret = fake_enter(fo, FAKE_LIST_TREE, ORIGIN_REQ_LIST);

	if (ret)
		return ret;
	pthread_mutex_lock(&fo->lock);
	ret = check_dir(fo, dir);
	if (!ret)
		ret = collect_tree(fo, dir, &e, &count);
	pthread_mutex_unlock(&fo->lock);

	page.dir_attr.mode = S_IFDIR | 0755;
	for (size_t i = 0; ret == 0 && i < count; i += fo->tree_page) {
		if (i > 0)	/* fake_enter counted the first page */
			origin_count(&fo->base, ORIGIN_REQ_LIST);
		page.entries = &e[i];
		page.count = count - i < fo->tree_page ? count - i :
							 fo->tree_page;
		ret = fn(arg, &page);
	}
	for (size_t i = 0; i < count; i++)
		free((char *)e[i].path);
	free(e);
	return ret;
}

static int fake_read(struct origin *o, const char *path, const char *version,
		     uint64_t offset, size_t len, void *buf, size_t *done)
{
	struct fake_origin *fo = to_fake(o);
	unsigned delay = atomic_load(&fo->read_delay_ms);
	struct fake_node *n;
	int ret = fake_enter(fo, FAKE_READ, ORIGIN_REQ_GET);

	*done = 0;
	if (delay)
		usleep(delay * 1000u);
	if (ret)
		return ret;
	pthread_mutex_lock(&fo->lock);
	while (offset >= fo->hold_from)
		pthread_cond_wait(&fo->released, &fo->lock);
	n = find_node(fo, path);
	if (!n) {
		ret = -ENOENT;
	} else if (!S_ISREG(n->mode)) {
		ret = -EISDIR;
	} else if (version && version[0] && strcmp(version, n->version)) {
		ret = -ESTALE;
	} else {
		if (offset < n->size) {
			*done = n->size - offset < len ? n->size - offset
						       : len;
			memcpy(buf, n->data + offset, *done);
		}
		fo->last_read_offset = offset;
		fo->last_read_len = len;
		atomic_fetch_add(&fo->base.counters.bytes_read, *done);
	}
	pthread_mutex_unlock(&fo->lock);
	return ret;
}

/* The pieces read_stream hands out, so that a chunk spans several. */
#define FAKE_STREAM_PIECE (16u * 1024)

static int stream_out(const char *buf, uint64_t len, origin_sink_fn fn,
		      void *arg)
{
	for (uint64_t pos = 0; pos < len; pos += FAKE_STREAM_PIECE) {
		uint64_t n = len - pos < FAKE_STREAM_PIECE ? len - pos
							  : FAKE_STREAM_PIECE;
		int ret = fn(arg, pos, buf + pos, n);

		if (ret)
			return ret;
	}
	return 0;
}

/* A read, then its bytes handed out to fn, cut as fake_cut_next_stream()
 * asked. */
static int fake_read_stream(struct origin *o, const char *path,
			    const char *version, uint64_t offset, uint64_t len,
			    origin_sink_fn fn, void *arg, uint64_t *done)
{
	struct fake_origin *fo = to_fake(o);
	char *buf = malloc(len ? len : 1);
	uint64_t cut;
	bool retry;
	size_t n = 0;
	int ret;

	*done = 0;
	if (!buf)
		return -ENOMEM;
	ret = fake_read(o, path, version, offset, len, buf, &n);
	pthread_mutex_lock(&fo->lock);
	if (!ret && fo->stream_stall && fo->stream_stall < n) {
		uint64_t stall = fo->stream_stall;

		pthread_mutex_unlock(&fo->lock);
		stream_out(buf, stall, fn, arg);
		for (;;)
			pause();	/* until the process is killed */
	}
	cut = fo->stream_cut;
	retry = fo->stream_cut_retry;
	if (!ret && cut && cut < n)
		fo->stream_cut = 0;	/* this call is the one cut */
	else
		cut = 0;
	pthread_mutex_unlock(&fo->lock);
	if (cut) {
		ret = stream_out(buf, cut, fn, arg);
		if (!ret && !retry)
			ret = -EIO;
	}
	if (!ret)
		ret = stream_out(buf, n, fn, arg);
	if (!ret)
		*done = n;
	free(buf);
	return ret;
}

static int read_fd(int fd, uint64_t size, char **out)
{
	char *buf = malloc(size ? size : 1);
	uint64_t done = 0;

	if (!buf)
		return -ENOMEM;
	while (done < size) {
		ssize_t n = pread(fd, buf + done, size - done, done);

		if (n <= 0) {
			free(buf);
			return n < 0 ? -errno : -EIO;
		}
		done += n;
	}
	*out = buf;
	return 0;
}

static void apply_meta(struct fake_node *n, const struct origin_attr *attr,
		       unsigned which)
{
	if (which & ORIGIN_ATTR_MODE)
		n->mode = (n->mode & S_IFMT) | (attr->mode & 07777);
	if (which & ORIGIN_ATTR_UID)
		n->uid = attr->uid;
	if (which & ORIGIN_ATTR_GID)
		n->gid = attr->gid;
	if (which & ORIGIN_ATTR_MTIME)
		n->mtime = attr->mtime;
}

/* Add a node of mode at path, which must not exist yet, in a folder that
 * does.  fo->lock held.  Returns 0 with the node in *out, -EEXIST,
 * -ENOENT or -ENOMEM. */
static int create_node(struct fake_origin *fo, const char *path,
		       mode_t mode, struct fake_node **out)
{
	if (find_node(fo, path))
		return -EEXIST;
	if (!parent_is_dir(fo, path))
		return -ENOENT;
	*out = add_node(fo, path, mode);
	return *out ? 0 : -ENOMEM;
}

/*
 * Give the file at path the size bytes of *data, which it owns from then
 * on (*data becomes NULL), and the current time as mtime.  The file is
 * created when missing and its folder exists.  fo->lock held.  Returns 0
 * with the node in *out, -ENOENT or -ENOMEM.
 */
static int replace_data(struct fake_origin *fo, const char *path,
			char **data, uint64_t size, struct fake_node **out)
{
	struct fake_node *n = find_node(fo, path);
	int ret;

	if (!n) {
		ret = create_node(fo, path, S_IFREG | 0644, &n);
		if (ret)
			return ret;
	}
	free(n->data);
	n->data = *data;
	*data = NULL;
	n->size = size;
	clock_gettime(CLOCK_REALTIME, &n->mtime);
	*out = n;
	return 0;
}

static int fake_write(struct origin *o, const char *path, int fd,
		      uint64_t size, const struct origin_attr *meta,
		      struct origin_attr *result)
{
	struct fake_origin *fo = to_fake(o);
	struct fake_node *n;
	char *data = NULL;
	int ret = fake_enter(fo, FAKE_WRITE, ORIGIN_REQ_PUT);

	if (ret)
		return ret;
	ret = read_fd(fd, size, &data);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&fo->lock);
	n = find_node(fo, path);
	if (n && !S_ISREG(n->mode)) {
		ret = -EISDIR;
		goto out_unlock;
	}
	ret = replace_data(fo, path, &data, size, &n);
	if (ret)
		goto out_unlock;
	apply_meta(n, meta, meta->valid);
	new_version(fo, n);
	node_attr(n, result);
	atomic_fetch_add(&fo->base.counters.bytes_written, size);
out_unlock:
	pthread_mutex_unlock(&fo->lock);
	free(data);
	return ret;
}

static int fake_setattr(struct origin *o, const char *path,
			const struct origin_attr *attr, unsigned which,
			struct origin_attr *result, char *prior)
{
	struct fake_origin *fo = to_fake(o);
	struct fake_node *n;
	int ret = fake_enter(fo, FAKE_SETATTR, ORIGIN_REQ_COPY);

	if (ret)
		return ret;
	pthread_mutex_lock(&fo->lock);
	n = find_node(fo, path);
	if (n) {
		if (prior)
			memcpy(prior, n->version, ORIGIN_VERSION_MAX);
		apply_meta(n, attr, which);
		/* As S3's copy onto itself, a new ETag for the same bytes. */
		if (S_ISREG(n->mode))
			new_version(fo, n);
		node_attr(n, result);
	}
	pthread_mutex_unlock(&fo->lock);
	return n ? 0 : -ENOENT;
}

static int fake_unlink(struct origin *o, const char *path)
{
	struct fake_origin *fo = to_fake(o);
	struct fake_node *n;
	int ret = fake_enter(fo, FAKE_UNLINK, ORIGIN_REQ_DELETE);

	if (ret)
		return ret;
	pthread_mutex_lock(&fo->lock);
	n = find_node(fo, path);
	if (!n)
		ret = -ENOENT;
	else if (S_ISDIR(n->mode))
		ret = -EISDIR;
	else
		remove_node(fo, n);
	pthread_mutex_unlock(&fo->lock);
	return ret;
}

static int fake_mkdir(struct origin *o, const char *path,
		      const struct origin_attr *meta)
{
	struct fake_origin *fo = to_fake(o);
	struct fake_node *n;
	int ret = fake_enter(fo, FAKE_MKDIR, ORIGIN_REQ_PUT);

	if (ret)
		return ret;
	pthread_mutex_lock(&fo->lock);
	ret = create_node(fo, path, S_IFDIR | 0755, &n);
	if (ret == 0)
		apply_meta(n, meta, meta->valid);
	pthread_mutex_unlock(&fo->lock);
	return ret;
}

static int fake_rmdir(struct origin *o, const char *path)
{
	struct fake_origin *fo = to_fake(o);
	struct fake_node *n;
	int ret = fake_enter(fo, FAKE_RMDIR, ORIGIN_REQ_DELETE);

	if (ret)
		return ret;
	pthread_mutex_lock(&fo->lock);
	n = find_node(fo, path);
	if (!n)
		ret = -ENOENT;
	else if (!S_ISDIR(n->mode))
		ret = -ENOTDIR;
	else if (has_children(fo, path))
		ret = -ENOTEMPTY;
	else
		remove_node(fo, n);
	pthread_mutex_unlock(&fo->lock);
	return ret;
}

/* Give node n, which is from or below it, the matching path below to. */
static int move_node(struct fake_node *n, const char *from, const char *to)
{
	char *p;

	if (asprintf(&p, "%s%s", to, n->path + strlen(from)) < 0)
		return -ENOMEM;
	free(n->path);
	n->path = p;
	return 0;
}

/* Rename from to to.  Lock held.  Versions are kept, as a directory
 * origin keeps the inode and S3 keeps the ETag of a single-part copy. */
static int rename_locked(struct fake_origin *fo, const char *from,
			 const char *to, unsigned flags)
{
	struct fake_node *src = find_node(fo, from);
	struct fake_node *dst = find_node(fo, to);

	if (!src)
		return -ENOENT;
	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL;
	if (!parent_is_dir(fo, to) || is_below(to, from))
		return -EINVAL;
	if (dst && (flags & RENAME_NOREPLACE))
		return -EEXIST;
	if (dst && S_ISDIR(dst->mode) && has_children(fo, to))
		return -ENOTEMPTY;
	if (dst && S_ISDIR(dst->mode) != S_ISDIR(src->mode))
		return S_ISDIR(dst->mode) ? -EISDIR : -ENOTDIR;
	if (dst)
		remove_node(fo, dst);
	for (size_t i = 0; i < fo->count; i++) {
		struct fake_node *n = &fo->nodes[i];

		if (strcmp(n->path, from) != 0 && !is_below(n->path, from))
			continue;
		if (move_node(n, from, to) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int fake_rename(struct origin *o, const char *from, const char *to,
		       unsigned flags)
{
	struct fake_origin *fo = to_fake(o);
	int ret = fake_enter(fo, FAKE_RENAME, ORIGIN_REQ_COPY);

	if (ret)
		return ret;
	pthread_mutex_lock(&fo->lock);
	ret = rename_locked(fo, from, to, flags);
	pthread_mutex_unlock(&fo->lock);
	return ret;
}

static int fake_statfs(struct origin *o, struct statvfs *st)
{
	int ret = fake_enter(to_fake(o), FAKE_STATFS, ORIGIN_REQ_HEAD);

	if (ret)
		return ret;
	memset(st, 0, sizeof(*st));
	st->f_bsize = st->f_frsize = 4096;
	st->f_blocks = st->f_bfree = st->f_bavail = 1u << 20;
	st->f_namemax = 255;
	return 0;
}

static int fake_symlink(struct origin *o, const char *target,
			const char *path, struct origin_attr *result)
{
	struct fake_origin *fo = to_fake(o);
	struct fake_node *n;
	int ret = fake_enter(fo, FAKE_SYMLINK, ORIGIN_REQ_PUT);

	if (ret)
		return ret;
	pthread_mutex_lock(&fo->lock);
	ret = create_node(fo, path, S_IFLNK | 0777, &n);
	if (ret == 0) {
		n->data = strdup(target);
		if (!n->data)
			ret = -ENOMEM;
		else
			n->size = strlen(target);
	}
	if (ret == 0)
		node_attr(n, result);
	pthread_mutex_unlock(&fo->lock);
	return ret;
}

static int fake_readlink(struct origin *o, const char *path, char *buf,
			 size_t size)
{
	struct fake_origin *fo = to_fake(o);
	struct fake_node *n;
	int ret = fake_enter(fo, FAKE_READLINK, ORIGIN_REQ_GET);

	if (ret)
		return ret;
	if (size == 0)
		return -EINVAL;
	pthread_mutex_lock(&fo->lock);
	n = find_node(fo, path);
	if (!n)
		ret = -ENOENT;
	else if (!S_ISLNK(n->mode))
		ret = -EINVAL;
	else
		snprintf(buf, size, "%s", n->data);
	pthread_mutex_unlock(&fo->lock);
	return ret;
}

static int fake_check(struct origin *o, char *msg, size_t msglen)
{
	return 0;
}

static int fake_discard(struct origin *o, const char *id)
{
	struct fake_origin *fo = to_fake(o);
	int ret = fake_enter(fo, FAKE_DISCARD, ORIGIN_REQ_DELETE);
	size_t used;

	if (ret)
		return ret;
	pthread_mutex_lock(&fo->lock);
	used = strlen(fo->discarded);
	snprintf(fo->discarded + used, sizeof(fo->discarded) - used, "%s;",
		 id);
	pthread_mutex_unlock(&fo->lock);
	return 0;
}

void fake_get_discarded(struct fake_origin *fo, char *buf, size_t len)
{
	size_t n;

	pthread_mutex_lock(&fo->lock);
	n = strnlen(fo->discarded, len - 1);
	memcpy(buf, fo->discarded, n);
	buf[n] = '\0';
	pthread_mutex_unlock(&fo->lock);
}

static void fake_free(struct origin *o)
{
	fake_origin_put(to_fake(o));
}

static const struct origin_ops fake_ops = {
	.stat = fake_stat,
	.list = fake_list,
	.read = fake_read,
	.write = fake_write,
	.setattr = fake_setattr,
	.unlink = fake_unlink,
	.mkdir = fake_mkdir,
	.rmdir = fake_rmdir,
	.rename = fake_rename,
	.statfs = fake_statfs,
	.symlink = fake_symlink,
	.readlink = fake_readlink,
	.check = fake_check,
	.discard = fake_discard,
	.free = fake_free,
};

struct fake_origin *fake_origin_new(const char *identity)
{
	struct fake_origin *fo = calloc(1, sizeof(*fo));

	if (!fo)
		return NULL;
	fo->ops = fake_ops;
	fo->base.ops = &fo->ops;
	fo->base.name = strdup(identity);
	fo->base.identity = strdup(identity);
	pthread_mutex_init(&fo->lock, NULL);
	pthread_cond_init(&fo->released, NULL);
	fo->hold_from = UINT64_MAX;
	atomic_store(&fo->refs, 1);
	if (!fo->base.name || !fo->base.identity ||
	    !add_node(fo, "", S_IFDIR | 0755)) {
		fake_origin_put(fo);
		return NULL;
	}
	return fo;
}

struct origin *fake_origin_ref(struct fake_origin *fo)
{
	atomic_fetch_add(&fo->refs, 1);
	return &fo->base;
}

void fake_origin_put(struct fake_origin *fo)
{
	if (!fo || atomic_fetch_sub(&fo->refs, 1) != 1)
		return;
	for (size_t i = 0; i < fo->count; i++) {
		free(fo->nodes[i].path);
		free(fo->nodes[i].data);
	}
	free(fo->nodes);
	pthread_cond_destroy(&fo->released);
	pthread_mutex_destroy(&fo->lock);
	free(fo->base.name);
	free(fo->base.identity);
	free(fo);
}

int fake_put_file(struct fake_origin *fo, const char *path,
		  const void *data, size_t len)
{
	char *copy = malloc(len ? len : 1);
	struct fake_node *n;
	int ret;

	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	pthread_mutex_lock(&fo->lock);
	ret = replace_data(fo, path, &copy, len, &n);
	if (ret == 0)
		new_version(fo, n);
	pthread_mutex_unlock(&fo->lock);
	free(copy);
	return ret;
}

int fake_put_dir(struct fake_origin *fo, const char *path)
{
	struct fake_node *n;
	int ret;

	pthread_mutex_lock(&fo->lock);
	ret = create_node(fo, path, S_IFDIR | 0755, &n);
	pthread_mutex_unlock(&fo->lock);
	return ret;
}

int fake_remove(struct fake_origin *fo, const char *path)
{
	struct fake_node *n;
	int ret = 0;

	pthread_mutex_lock(&fo->lock);
	n = find_node(fo, path);
	if (!n || path[0] == '\0')
		ret = -ENOENT;
	else if (has_children(fo, path))
		ret = -ENOTEMPTY;
	else
		remove_node(fo, n);
	pthread_mutex_unlock(&fo->lock);
	return ret;
}

int fake_get_file(struct fake_origin *fo, const char *path, void **data,
		  size_t *len)
{
	struct fake_node *n;
	int ret = 0;

	pthread_mutex_lock(&fo->lock);
	n = find_node(fo, path);
	if (!n || !S_ISREG(n->mode)) {
		ret = -ENOENT;
		goto out_unlock;
	}
	*data = malloc(n->size ? n->size : 1);
	if (!*data) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	if (n->size)
		memcpy(*data, n->data, n->size);
	*len = n->size;
out_unlock:
	pthread_mutex_unlock(&fo->lock);
	return ret;
}

bool fake_exists(struct fake_origin *fo, const char *path)
{
	bool found;

	pthread_mutex_lock(&fo->lock);
	found = find_node(fo, path) != NULL;
	pthread_mutex_unlock(&fo->lock);
	return found;
}

void fake_get_version(struct fake_origin *fo, const char *path, char *buf,
		      size_t len)
{
	struct fake_node *n;

	pthread_mutex_lock(&fo->lock);
	n = find_node(fo, path);
	snprintf(buf, len, "%s", n ? n->version : "");
	pthread_mutex_unlock(&fo->lock);
}

unsigned fake_calls(struct fake_origin *fo, enum fake_op op)
{
	return atomic_load(&fo->calls[op]);
}

void fake_reset_calls(struct fake_origin *fo)
{
	for (int i = 0; i < FAKE_OP_MAX; i++)
		atomic_store(&fo->calls[i], 0);
}

void fake_fail_next(struct fake_origin *fo, enum fake_op op,
		    unsigned count, int err)
{
	pthread_mutex_lock(&fo->lock);
	fo->fail_left[op] = count;
	fo->fail_errno[op] = err;
	pthread_mutex_unlock(&fo->lock);
}

void fake_enable_stream(struct fake_origin *fo)
{
	fo->ops.read_stream = fake_read_stream;
}

void fake_stall_streams(struct fake_origin *fo, uint64_t after)
{
	pthread_mutex_lock(&fo->lock);
	fo->stream_stall = after;
	pthread_mutex_unlock(&fo->lock);
}

void fake_cut_next_stream(struct fake_origin *fo, uint64_t after, bool retry)
{
	pthread_mutex_lock(&fo->lock);
	fo->stream_cut = after;
	fo->stream_cut_retry = retry;
	pthread_mutex_unlock(&fo->lock);
}

void fake_set_list_page(struct fake_origin *fo, unsigned page_size)
{
	fo->list_page = page_size;
	fo->ops.list_page = page_size ? fake_list_page : NULL;
}

void fake_set_tree_page(struct fake_origin *fo, unsigned page_size)
{
	fo->tree_page = page_size;
	fo->ops.list_tree = page_size ? fake_list_tree : NULL;
}

void fake_set_stat_hook(struct fake_origin *fo, fake_stat_hook_fn fn,
			void *arg)
{
	pthread_mutex_lock(&fo->lock);
	fo->stat_hook = fn;
	fo->stat_hook_arg = arg;
	pthread_mutex_unlock(&fo->lock);
}

void fake_hold_reads_from(struct fake_origin *fo, uint64_t offset)
{
	pthread_mutex_lock(&fo->lock);
	fo->hold_from = offset;
	pthread_cond_broadcast(&fo->released);
	pthread_mutex_unlock(&fo->lock);
}

void fake_set_read_delay_ms(struct fake_origin *fo, unsigned ms)
{
	atomic_store(&fo->read_delay_ms, ms);
}

uint64_t fake_last_read_offset(struct fake_origin *fo)
{
	uint64_t off;

	pthread_mutex_lock(&fo->lock);
	off = fo->last_read_offset;
	pthread_mutex_unlock(&fo->lock);
	return off;
}

size_t fake_last_read_len(struct fake_origin *fo)
{
	size_t len;

	pthread_mutex_lock(&fo->lock);
	len = fo->last_read_len;
	pthread_mutex_unlock(&fo->lock);
	return len;
}

static _Atomic uint64_t fake_now_ms;

static uint64_t fake_clock_now(void)
{
	return atomic_load(&fake_now_ms);
}

/* The wall clock moves with the monotonic one, from a fixed date. */
static int64_t fake_wall_now(void)
{
	return 1796367600000LL + (int64_t)atomic_load(&fake_now_ms);
}

void fake_clock_install(uint64_t start_ms)
{
	atomic_store(&fake_now_ms, start_ms);
	clock_now_ms = fake_clock_now;
	clock_wall_ms = fake_wall_now;
}

void fake_clock_advance(uint64_t ms)
{
	atomic_fetch_add(&fake_now_ms, ms);
}

int test_make_temp_dir(const char *name_template, char *path, size_t len)
{
	const char *tmp = getenv("TMPDIR");

	if (snprintf(path, len, "%s/%s", tmp && *tmp ? tmp : "/tmp",
		     name_template) >= (int)len)
		return -ENAMETOOLONG;
	return mkdtemp(path) ? 0 : -errno;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	remove(path);
	return 0;
}

int test_fill_file(const char *path, int *fd)
{
	char want[PATH_MAX], link[300], got[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int full, saved;

	assert_non_null(realpath(path, want));
	d = opendir("/proc/self/fd");
	assert_non_null(d);
	*fd = -1;
	while (*fd < 0 && (de = readdir(d))) {
		ssize_t n;

		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		n = readlink(link, got, sizeof(got) - 1);
		if (n <= 0)
			continue;
		got[n] = '\0';
		if (strcmp(got, want) == 0)
			*fd = atoi(de->d_name);
	}
	closedir(d);
	if (*fd < 0)
		fail_msg("no descriptor of %s is open", want);
	saved = dup(*fd);
	full = open("/dev/full", O_RDWR);
	assert_true(saved >= 0);
	assert_true(full >= 0);
	assert_true(dup2(full, *fd) == *fd);
	close(full);
	return saved;
}

void test_unfill_file(int fd, int saved)
{
	assert_true(dup2(saved, fd) == fd);
	close(saved);
}

void test_remove_tree(const char *path)
{
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void test_copy_file(const char *from, const char *to)
{
	char buf[4096];
	int in = open(from, O_RDONLY);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ssize_t n;

	assert_true(in >= 0);
	assert_true(out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, n), n);
	assert_int_equal(n, 0);
	assert_int_equal(close(in), 0);
	assert_int_equal(close(out), 0);
}

void test_write_text(const char *root, const char *rel, const char *text)
{
	char path[2 * PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

void test_fill_pattern(void *buf, size_t len, uint64_t offset,
		       unsigned seed)
{
	unsigned char *p = buf;

	for (size_t i = 0; i < len; i++) {
		uint64_t x = (offset + i) * 0x9E3779B97F4A7C15ull + seed;

		x ^= x >> 29;
		p[i] = (unsigned char)(x ^ (x >> 17));
	}
}

struct cache_config test_config(const char *dir, uint32_t chunk_size,
				uint64_t size_max, uint64_t ttl_ms)
{
	struct cache_config cfg = {
		.dir = dir,
		.size_max = size_max,
		.min_free = 0,
		.min_free_pct = 0,
		.chunk_size = chunk_size,
		.ttl_ms = ttl_ms,
		.attr_ttl_ms = ttl_ms,
		.neg_ttl_ms = ttl_ms,
		.dir_ttl_ms = ttl_ms,
		.write_mode = WRITE_THROUGH,
		.read_only = false,
	};

	return cfg;
}

struct test_env *test_env_new(const char *name_template,
			      uint32_t chunk_size, uint64_t size_max,
			      uint64_t ttl_ms)
{
	struct test_env *env = calloc(1, sizeof(*env));

	if (!env)
		return NULL;
	if (test_make_temp_dir(name_template, env->dir, sizeof(env->dir)))
		goto out_free;
	env->fo = fake_origin_new("fake-origin");
	if (!env->fo)
		goto out_remove;
	env->cfg = test_config(env->dir, chunk_size, size_max, ttl_ms);
	fake_clock_install(1000000);
	return env;
out_remove:
	test_remove_tree(env->dir);
out_free:
	free(env);
	return NULL;
}

int test_env_open(struct test_env *env)
{
	struct origin *o = fake_origin_ref(env->fo);
	int ret;

	env->err[0] = '\0';
	ret = cache_open(&env->cfg, o, &env->c, env->err, sizeof(env->err));
	if (ret < 0) {
		env->c = NULL;
		fake_origin_put(env->fo);	/* not taken on failure */
	}
	/* load_index() in cache/cache.c leaves the working folder at "/".
	 * Moving back into the test's folder keeps files that the engine
	 * creates by relative path inside it. */
	if (chdir(env->dir) < 0 && ret == 0)
		ret = -errno;
	return ret;
}

void test_env_close(struct test_env *env)
{
	if (!env->c)
		return;
	cache_close(env->c);
	env->c = NULL;
}

void test_env_free(struct test_env *env)
{
	if (!env)
		return;
	test_env_close(env);
	fake_origin_put(env->fo);
	test_remove_tree(env->dir);
	free(env);
}

struct test_env *test_env_create(void **state, const char *name_template,
				 uint32_t chunk_size, uint64_t size_max,
				 uint64_t ttl_ms)
{
	struct test_env *env = test_env_new(name_template, chunk_size,
					    size_max, ttl_ms);

	assert_non_null(env);
	*state = env;
	return env;
}

struct test_env *test_env_start(void **state, const char *name_template,
				uint32_t chunk_size, uint64_t size_max,
				uint64_t ttl_ms)
{
	struct test_env *env = test_env_create(state, name_template,
					       chunk_size, size_max, ttl_ms);

	assert_int_equal(test_env_open(env), 0);
	return env;
}

int test_env_teardown(void **state)
{
	test_env_free(*state);
	return 0;
}

struct cache_stats test_stats(struct cache *c)
{
	struct cache_stats st;

	cache_get_stats(c, &st);
	return st;
}

char *test_pattern_new(size_t len, uint64_t offset, unsigned seed)
{
	char *buf = malloc(len ? len : 1);

	assert_non_null(buf);
	test_fill_pattern(buf, len, offset, seed);
	return buf;
}

void test_put_pattern(struct fake_origin *fo, const char *path, size_t size,
		      unsigned seed)
{
	char *buf = test_pattern_new(size, 0, seed);

	assert_int_equal(fake_put_file(fo, path, buf, size), 0);
	free(buf);
}

void test_put_text(struct fake_origin *fo, const char *path,
		   const char *text)
{
	assert_int_equal(fake_put_file(fo, path, text, strlen(text)), 0);
}

struct cache_file *test_open_file(struct cache *c, const char *path,
				  int flags)
{
	struct cache_file *f = NULL;
	bool changed;

	assert_int_equal(cache_file_open(c, path, flags, &f, &changed), 0);
	return f;
}

ssize_t test_read_path(struct cache *c, const char *path, void *buf,
		       size_t len, uint64_t offset)
{
	struct cache_file *f;
	bool changed;
	ssize_t n;
	int ret = cache_file_open(c, path, O_RDONLY, &f, &changed);

	if (ret < 0)
		return ret;
	n = cache_file_read(f, buf, len, offset);
	cache_file_release(f);
	return n;
}

/* Check that path on the origin contains exactly len bytes of want. */
void test_assert_origin_has(struct fake_origin *fo, const char *path,
			    const void *want, size_t len)
{
	void *data = NULL;
	size_t size = 0;

	assert_int_equal(fake_get_file(fo, path, &data, &size), 0);
	assert_int_equal(size, len);
	assert_memory_equal(data, want, len);
	free(data);
}

/* Read path whole through a new handle and compare it with want. */
void test_assert_cache_has(struct cache *c, const char *path,
			   const void *want, size_t len)
{
	char *buf = malloc(len + 1);

	assert_non_null(buf);
	assert_int_equal(test_read_path(c, path, buf, len + 1, 0), len);
	assert_memory_equal(buf, want, len);
	free(buf);
}
