/* fuse_ops.c - FUSE low-level requests translated into engine calls. */
#include "fuse_ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "ctl_link.h"
#include "inode.h"
#include "log.h"
#include "passthrough.h"

/* Largest read and write request wanted: FUSE_MAX_MAX_PAGES (256) pages,
 * 1 MiB with 4 KiB pages. */
#define MAX_REQUEST (1u << 20)
/* Room that libfuse wants in its splice pipe besides the reply's data:
 * the reply header and three pages. */
#define SPLICE_SLACK_PAGES 4

/* d_ino of a readdir entry the kernel has not looked up yet (the value
 * libfuse's high-level API uses). */
#define UNKNOWN_INO 0xffffffffu

/* A path the engine reported changed, waiting for the notifier thread. */
struct inval_item {
	struct inval_item *next;
	char path[];
};

#define PATH_LOCKS 64	/* a power of two */

struct nearfs_fs {
	struct cache *cache;
	struct inode_table *inodes;
	struct fuse_session *se;
	char *ctl_path;		/* target of NEARFS_CTL_LINK; NULL until set */
	atomic_bool ctl_hiding_logged;	/* an origin entry is hidden */
	uid_t uid;		/* owner shown when the origin stores none */
	gid_t gid;
	bool force_uid, force_gid;	/* uid=, gid=: shown for every file */
	mode_t umask;		/* umask=: bits cleared from every mode */
	struct timespec mounted;	/* mtime of directories with none */
	bool read_only;
	int mount_id;		/* in /proc/self/mountinfo; -1: unknown */
	struct passthrough *pt;	/* FUSE passthrough of complete copies */
	bool want_passthrough;	/* -o passthrough */

	pthread_mutex_t open_lock;
	struct open_file *open_files;	/* every open regular file */

	pthread_mutex_t inval_lock;
	pthread_cond_t inval_cond;
	pthread_cond_t inval_idle;	/* the queue emptied and the last
					 * notification was sent */
	struct inval_item *inval_head;
	struct inval_item **inval_tail;
	bool inval_busy;	/* the notifier sends one now */
	bool notifier_running;
	bool stopping;		/* set by nearfs_fs_stop() */
	pthread_t notifier;

	/* A rename holds the locks of both paths for writing, and a
	 * lookup holds its path's for reading, so that a lookup never
	 * pairs one file's attributes with another file's inode. */
	pthread_rwlock_t path_locks[PATH_LOCKS];
};

/*
 * fi->fh of a regular file.  Every open file is also on the list of its
 * nearfs_fs, so that getattr of an unlinked inode (which has no path any
 * more) can ask one of its handles.  refs counts the list's reference and
 * the getattr calls in progress.
 */
struct open_file {
	struct cache_file *file;
	fuse_ino_t ino;
	bool commit;		/* opened for writing or created */
	enum open_mode mode;	/* how the kernel serves the open */
	bool counted;		/* mode is counted in nearfs_fs.pt */
	unsigned refs;		/* under nearfs_fs.open_lock */
	struct open_file *prev, *next;
};

struct dir_entry {
	char *name;
	struct origin_attr attr;
};

/*
 * fi->fh of a directory: the entries listed so far, appended in order as
 * the engine's cursor fetches them, so that offsets stay valid across
 * readdir calls.  Index 0 is ".", 1 is "..", and the offset of an entry
 * is its index plus one.
 */
struct dir_handle {
	pthread_mutex_t lock;
	uint64_t ino;
	char *path;
	struct dir_entry *entries;
	size_t count, cap;
	struct cache_dir *cursor;	/* NULL after a failed open */
	bool served;		/* a readdir went past offset 0 */
	bool error_logged;	/* a failed page was logged */
};

static struct nearfs_fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Seconds the kernel may keep entries and attributes: attr_ttl, which
 * nearfs-ctl set may change while mounted. */
static double attr_timeout(const struct nearfs_fs *fs)
{
	return (double)cache_attr_ttl_ms(fs->cache) / 1000.0;
}

/* Seconds the kernel may keep a missing name (neg_ttl); 0 disables
 * negative entries. */
static double neg_timeout(const struct nearfs_fs *fs)
{
	return (double)cache_neg_ttl_ms(fs->cache) / 1000.0;
}

static struct open_file *fi_file(const struct fuse_file_info *fi)
{
	return (struct open_file *)(uintptr_t)fi->fh;
}

static struct dir_handle *fi_dir(const struct fuse_file_info *fi)
{
	return (struct dir_handle *)(uintptr_t)fi->fh;
}

/* Reply with a negative errno from the engine. */
static void reply_error(fuse_req_t req, int ret)
{
	fuse_reply_err(req, ret < 0 ? -ret : EIO);
}

static int join_path(const char *dir, const char *name, char **out)
{
	size_t len = strlen(name);

	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	if (len == 0 || strchr(name, '/'))
		return -EINVAL;
	if (*dir == '\0')
		*out = strdup(name);
	else if (asprintf(out, "%s/%s", dir, name) < 0)
		*out = NULL;
	return *out ? 0 : -ENOMEM;
}

/* The engine path of name inside the directory parent; caller frees. */
static int child_path(struct nearfs_fs *fs, fuse_ino_t parent,
		      const char *name, char **out)
{
	char *dir;
	int ret;

	ret = inode_path(fs->inodes, parent, &dir);
	if (ret)
		return ret;
	ret = join_path(dir, name, out);
	free(dir);
	return ret;
}

static void attr_to_stat(const struct nearfs_fs *fs, fuse_ino_t ino,
			 const struct origin_attr *attr, struct stat *st)
{
	mode_t type = attr->mode & S_IFMT;
	mode_t known = ino ? inode_type(fs->inodes, ino) : 0;
	bool retyped = known && known != type;
	mode_t perm;

	/*
	 * A HEAD may find a link where an S3 listing showed a file.  The
	 * kernel makes an inode whose type changes unusable, so replies
	 * keep the inode's type, and the next lookup gets a new inode.
	 */
	if (retyped)
		type = known;

	memset(st, 0, sizeof(*st));
	if (attr->valid & ORIGIN_ATTR_MODE && !retyped)
		perm = attr->mode & 07777;
	else if (type == S_IFDIR)
		perm = 0755;
	else if (type == S_IFLNK)
		perm = 0777;
	else
		perm = 0644;
	st->st_ino = ino;
	st->st_mode = type | (perm & ~fs->umask);
	st->st_nlink = type == S_IFDIR ? 2 : 1;
	st->st_uid = attr->valid & ORIGIN_ATTR_UID && !fs->force_uid ?
		     attr->uid : fs->uid;
	st->st_gid = attr->valid & ORIGIN_ATTR_GID && !fs->force_gid ?
		     attr->gid : fs->gid;
	st->st_size = (off_t)attr->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((attr->size + 511) / 512);
	st->st_mtim = attr->mtime;
	/* S3 prefixes without a marker object have no time of their own. */
	if (type == S_IFDIR && !(attr->valid & ORIGIN_ATTR_MTIME) &&
	    attr->mtime.tv_sec == 0)
		st->st_mtim = fs->mounted;
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}

/* Take a reference on path and fill e; the caller must hand e to the
 * kernel or give the reference back with inode_forget(). */
static int make_entry(struct nearfs_fs *fs, const char *path,
		      const struct origin_attr *attr,
		      struct fuse_entry_param *e)
{
	uint64_t ino, generation;
	int ret;

	ret = inode_ref(fs->inodes, path, attr->mode & S_IFMT, &ino,
			&generation);
	if (ret)
		return ret;
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->generation = generation;
	e->attr_timeout = attr_timeout(fs);
	e->entry_timeout = e->attr_timeout;
	attr_to_stat(fs, ino, attr, &e->attr);
	return 0;
}

static void reply_entry(fuse_req_t req, struct nearfs_fs *fs,
			const char *path, const struct origin_attr *attr)
{
	struct fuse_entry_param e;
	int ret;

	ret = make_entry(fs, path, attr, &e);
	if (ret) {
		reply_error(req, ret);
		return;
	}
	/* A failed reply (the request was interrupted) gives the kernel no
	 * reference, so drop the one taken for it. */
	if (fuse_reply_entry(req, &e) != 0)
		inode_forget(fs->inodes, e.ino, 1);
}

/* Reply with the entry of a path that an operation just made. */
static void reply_new_entry(fuse_req_t req, struct nearfs_fs *fs,
			    const char *path)
{
	struct origin_attr attr;
	int ret;

	ret = cache_getattr(fs->cache, path, &attr);
	if (ret)
		reply_error(req, ret);
	else
		reply_entry(req, fs, path, &attr);
}

/* ---- the control link ---- */

/* Whether an engine path names the control link (a name in the root). */
static bool is_ctl_link(const struct nearfs_fs *fs, const char *path)
{
	return fs->ctl_path && strcmp(path, NEARFS_CTL_LINK) == 0;
}

static void ctl_link_attr(const struct nearfs_fs *fs,
			  struct origin_attr *attr)
{
	memset(attr, 0, sizeof(*attr));
	attr->mode = S_IFLNK | 0777;
	attr->size = strlen(fs->ctl_path);
	attr->mtime = fs->mounted;
}

/* Remove an origin entry named like the control link from the entries
 * of a listing of the root from index from on, because lookups of that
 * name return the link. */
static void hide_ctl_name(struct nearfs_fs *fs, struct dir_handle *dh,
			  size_t from)
{
	if (dh->path[0] != '\0' || !fs->ctl_path)
		return;
	for (size_t i = from < 2 ? 2 : from; i < dh->count; i++) {
		if (strcmp(dh->entries[i].name, NEARFS_CTL_LINK) != 0)
			continue;
		if (!atomic_exchange(&fs->ctl_hiding_logged, true))
			log_info("the origin has an entry '%s' in its root: "
				 "the mount shows its control link under "
				 "that name instead", NEARFS_CTL_LINK);
		free(dh->entries[i].name);
		memmove(&dh->entries[i], &dh->entries[i + 1],
			(dh->count - i - 1) * sizeof(dh->entries[0]));
		dh->count--;
		return;
	}
}

/* ---- open files ---- */

static void on_invalidate(void *arg, const char *path);

/* Queue the invalidation of ino's page cache, by its path. */
static void invalidate_ino(struct nearfs_fs *fs, fuse_ino_t ino)
{
	char *path;

	if (inode_path(fs->inodes, ino, &path) != 0)
		return;
	on_invalidate(fs, path);
	free(path);
}

static int open_file_new(struct nearfs_fs *fs, fuse_ino_t ino,
			 struct cache_file *file, bool commit,
			 struct fuse_file_info *fi)
{
	struct open_file *of = calloc(1, sizeof(*of));

	if (!of)
		return -ENOMEM;
	of->file = file;
	of->ino = ino;
	of->commit = commit;
	of->refs = 1;
	pthread_mutex_lock(&fs->open_lock);
	of->next = fs->open_files;
	if (of->next)
		of->next->prev = of;
	fs->open_files = of;
	pthread_mutex_unlock(&fs->open_lock);
	fi->fh = (uintptr_t)of;
	return 0;
}

static void open_file_put(struct nearfs_fs *fs, struct open_file *of)
{
	unsigned refs;

	pthread_mutex_lock(&fs->open_lock);
	refs = --of->refs;
	pthread_mutex_unlock(&fs->open_lock);
	if (refs > 0)
		return;
	cache_file_release(of->file);
	free(of);
}

/* Take of off the list and drop the list's reference. */
static void open_file_free(struct nearfs_fs *fs, struct open_file *of)
{
	if (of->counted && passthrough_release(fs->pt, of->ino, of->mode))
		invalidate_ino(fs, of->ino);
	pthread_mutex_lock(&fs->open_lock);
	if (of->prev)
		of->prev->next = of->next;
	else
		fs->open_files = of->next;
	if (of->next)
		of->next->prev = of->prev;
	pthread_mutex_unlock(&fs->open_lock);
	open_file_put(fs, of);
}

/* A referenced open handle of ino, or NULL.  Scans every open file, so it
 * serves only the rare getattr of an unlinked inode. */
static struct open_file *open_file_find(struct nearfs_fs *fs,
					fuse_ino_t ino)
{
	struct open_file *of;

	pthread_mutex_lock(&fs->open_lock);
	for (of = fs->open_files; of; of = of->next)
		if (of->ino == ino)
			break;
	if (of)
		of->refs++;
	pthread_mutex_unlock(&fs->open_lock);
	return of;
}

/* ---- invalidation ---- */

static void on_invalidate(void *arg, const char *path)
{
	struct nearfs_fs *fs = arg;
	size_t len = strlen(path) + 1;
	struct inval_item *item;

	item = malloc(sizeof(*item) + len);
	if (!item) {
		log_warn("cannot queue the page cache invalidation of '%s': "
			 "out of memory", path);
		return;
	}
	memcpy(item->path, path, len);
	item->next = NULL;

	pthread_mutex_lock(&fs->inval_lock);
	if (fs->stopping) {
		free(item);
		goto out_unlock;
	}
	*fs->inval_tail = item;
	fs->inval_tail = &item->next;
	pthread_cond_signal(&fs->inval_cond);

out_unlock:
	pthread_mutex_unlock(&fs->inval_lock);
}

static struct inval_item *inval_pop(struct nearfs_fs *fs)
{
	struct inval_item *item = fs->inval_head;

	if (item) {
		fs->inval_head = item->next;
		if (!fs->inval_head)
			fs->inval_tail = &fs->inval_head;
	}
	return item;
}

static void inval_notify(struct nearfs_fs *fs, const char *path)
{
	uint64_t ino = inode_find(fs->inodes, path);
	int ret;

	if (ino == 0)
		return;
	ret = fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
	/* -ENOENT: the kernel dropped the inode already. */
	if (ret && ret != -ENOENT)
		log_debug("page cache invalidation of '%s' (inode %llu) "
			  "failed: %s", path, (unsigned long long)ino,
			  strerror(-ret));
}

/*
 * Runs the kernel notifications outside of request handlers: notifying
 * an inode from a handler that works on that inode can deadlock on the
 * kernel's page locks.
 */
static void *notifier_main(void *arg)
{
	struct nearfs_fs *fs = arg;
	struct inval_item *item;

	pthread_mutex_lock(&fs->inval_lock);
	for (;;) {
		while (!fs->stopping && !fs->inval_head)
			pthread_cond_wait(&fs->inval_cond, &fs->inval_lock);
		if (fs->stopping)
			break;
		item = inval_pop(fs);
		fs->inval_busy = true;
		pthread_mutex_unlock(&fs->inval_lock);
		inval_notify(fs, item->path);
		free(item);
		pthread_mutex_lock(&fs->inval_lock);
		fs->inval_busy = false;
		if (!fs->inval_head)
			pthread_cond_broadcast(&fs->inval_idle);
	}
	pthread_mutex_unlock(&fs->inval_lock);
	return NULL;
}

void nearfs_fs_wait_invalidations(struct nearfs_fs *fs)
{
	pthread_mutex_lock(&fs->inval_lock);
	while (!fs->stopping && fs->notifier_running &&
	       (fs->inval_head || fs->inval_busy))
		pthread_cond_wait(&fs->inval_idle, &fs->inval_lock);
	pthread_mutex_unlock(&fs->inval_lock);
}

/* ---- lifecycle ---- */

/*
 * The largest request whose READ reply libfuse can splice.  libfuse sends
 * a spliced reply through a pipe that it grows to the reply's size plus
 * SPLICE_SLACK_PAGES.  Without CAP_SYS_RESOURCE a pipe grows only up to
 * /proc/sys/fs/pipe-max-size, 1 MiB by default, and libfuse copies every
 * larger reply through a buffer instead.  The kernel's READ requests are
 * at most max_write long (libfuse sets max_pages from it), so max_write
 * leaves that room.
 *
 * It is a power of two, 512 KiB with the default pipe limit.  chunk_size
 * is a power of two too, so each request of a sequential reader lies
 * within one chunk or covers whole chunks.  With 1008 KiB requests, one
 * chunk served the end of one request and the start of the next, and a
 * full cache could evict it between the two.
 */
static unsigned splice_request_max(void)
{
	unsigned long pipe_max = MAX_REQUEST, room, size;
	long page = sysconf(_SC_PAGESIZE);
	FILE *f = fopen("/proc/sys/fs/pipe-max-size", "re");

	if (page <= 0)
		page = 4096;
	if (f) {
		if (fscanf(f, "%lu", &pipe_max) != 1)
			pipe_max = MAX_REQUEST;
		fclose(f);
	}
	if (pipe_max < (SPLICE_SLACK_PAGES + 16) * (unsigned long)page)
		return MAX_REQUEST;	/* too small a pipe to splice through */
	room = pipe_max - SPLICE_SLACK_PAGES * (unsigned long)page;
	for (size = MAX_REQUEST; size > room; size /= 2)
		;
	return size;
}

static void nf_init(void *userdata, struct fuse_conn_info *conn)
{
	/* No FUSE_CAP_SPLICE_READ: write data goes to nf_write() in a
	 * buffer in any case, and splicing each request in first costs
	 * small requests a second system call. */
	const unsigned wanted = FUSE_CAP_ASYNC_READ | FUSE_CAP_READDIRPLUS |
		FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_SPLICE_WRITE |
		FUSE_CAP_SPLICE_MOVE;

	conn->want |= conn->capable & wanted;
	/* Always readdirplus: a listing then needs no lookups. */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	/* File handles (NFS export) would need lookups of inode numbers
	 * that the table has already dropped. */
	conn->want &= ~FUSE_CAP_EXPORT_SUPPORT;
	/*
	 * The daemon drops a file's page cache itself: keep_cache is off
	 * at an open that finds a new version or nothing cached, and
	 * inval_notify() serves the other changes.  With
	 * auto_inval_data the kernel (6.18) also drops it whenever a
	 * GETATTR shows a new mtime, as concurrent writes do.  But it
	 * marks fully written pages uptodate before their WRITE reaches
	 * the daemon.  A read that fetched such pages again in between
	 * kept the bytes of the write before.
	 */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	conn->want |= conn->capable & FUSE_CAP_EXPLICIT_INVAL_DATA;
	conn->max_write = splice_request_max();
	/* max_readahead stays at what the kernel offered, its maximum. */
	log_debug("FUSE protocol %u.%u, capable 0x%x, want 0x%x, "
		  "max_write %u", conn->proto_major, conn->proto_minor,
		  conn->capable, conn->want, conn->max_write);
}

/* ---- names ---- */

static pthread_rwlock_t *path_lock(struct nearfs_fs *fs, const char *path)
{
	return &fs->path_locks[XXH3_64bits(path, strlen(path)) &
			       (PATH_LOCKS - 1)];
}

/* Take the path locks of a rename, in a fixed order. */
static void lock_rename(struct nearfs_fs *fs, const char *from,
			const char *to)
{
	pthread_rwlock_t *a = path_lock(fs, from), *b = path_lock(fs, to);

	if (a > b) {
		pthread_rwlock_t *t = a;

		a = b;
		b = t;
	}
	pthread_rwlock_wrlock(a);
	if (b != a)
		pthread_rwlock_wrlock(b);
}

static void unlock_rename(struct nearfs_fs *fs, const char *from,
			  const char *to)
{
	pthread_rwlock_t *a = path_lock(fs, from), *b = path_lock(fs, to);

	pthread_rwlock_unlock(a);
	if (b != a)
		pthread_rwlock_unlock(b);
}

/*
 * Copy the path of ino and take its path lock, for writing when write is
 * set and else for reading.  No rename then puts another file at the
 * path before the caller's request to the cache returns, so the reply
 * describes the file of ino.  The caller unlocks with unlock_path() and
 * frees *path.
 */
static int lock_inode_path_for(struct nearfs_fs *fs, fuse_ino_t ino,
			       char **path, bool write)
{
	for (;;) {
		char *again;
		int ret = inode_path(fs->inodes, ino, path);

		if (ret)
			return ret;
		if (write)
			pthread_rwlock_wrlock(path_lock(fs, *path));
		else
			pthread_rwlock_rdlock(path_lock(fs, *path));
		ret = inode_path(fs->inodes, ino, &again);
		if (ret == 0 && strcmp(again, *path) == 0) {
			free(again);
			return 0;
		}
		/* Renamed meanwhile: look again. */
		pthread_rwlock_unlock(path_lock(fs, *path));
		free(*path);
		if (ret)
			return ret;
		free(again);
	}
}

static int lock_inode_path(struct nearfs_fs *fs, fuse_ino_t ino, char **path)
{
	return lock_inode_path_for(fs, ino, path, false);
}

static void unlock_path(struct nearfs_fs *fs, const char *path)
{
	pthread_rwlock_unlock(path_lock(fs, path));
}

static void nf_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct nearfs_fs *fs = req_fs(req);
	struct origin_attr attr;
	double negative;
	char *path;
	int ret;

	ret = child_path(fs, parent, name, &path);
	if (ret)
		goto out_reply;
	if (is_ctl_link(fs, path)) {
		ctl_link_attr(fs, &attr);
		reply_entry(req, fs, path, &attr);
		free(path);
		return;
	}
	/* NOTE: a rename of an ancestor between child_path() and the
	 * reply (the kernel does not lock ancestors for a lookup) leaves
	 * the entry under its old path until the kernel forgets it. */
	pthread_rwlock_rdlock(path_lock(fs, path));
	ret = cache_getattr(fs->cache, path, &attr);
	if (ret == 0)
		reply_entry(req, fs, path, &attr);
	pthread_rwlock_unlock(path_lock(fs, path));
	free(path);

out_reply:
	negative = ret == -ENOENT ? neg_timeout(fs) : 0;
	if (negative > 0) {
		struct fuse_entry_param e = {
			.ino = 0,
			.entry_timeout = negative,
		};

		fuse_reply_entry(req, &e);
	} else if (ret) {
		reply_error(req, ret);
	}
}

static void nf_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	inode_forget(req_fs(req)->inodes, ino, nlookup);
	fuse_reply_none(req);
}

static void nf_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	struct nearfs_fs *fs = req_fs(req);

	for (size_t i = 0; i < count; i++)
		inode_forget(fs->inodes, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

/* ---- attributes ---- */

static int getattr_pin(void *pin, void *arg)
{
	return cache_file_getattr(pin, arg);
}

static int get_attr(struct nearfs_fs *fs, fuse_ino_t ino,
		    struct fuse_file_info *fi, struct origin_attr *attr)
{
	struct open_file *of;
	char *path;
	int ret;

	/* The kernel keeps one size per inode, which all its handles read
	 * at: a handle of a version that changed on the origin gives the
	 * file's current attributes instead of its own. */
	if (fi && fi->fh && !cache_file_superseded(fi_file(fi)->file))
		return cache_file_getattr(fi_file(fi)->file, attr);
	ret = lock_inode_path(fs, ino, &path);
	if (ret == 0) {
		if (is_ctl_link(fs, path))
			ctl_link_attr(fs, attr);
		else
			ret = cache_getattr(fs->cache, path, attr);
		unlock_path(fs, path);
		free(path);
		return ret;
	}
	if (ret != -ENOENT)
		return ret;
	/* A file replaced by a rename: the version it was. */
	if (inode_copy_pin(fs->inodes, ino, getattr_pin, attr) == 0)
		return 0;
	/* fstat(2) of an unlinked file arrives without a handle. */
	if (!(of = open_file_find(fs, ino)))
		return ret;
	ret = cache_file_getattr(of->file, attr);
	open_file_put(fs, of);
	return ret;
}

static void reply_attr(fuse_req_t req, struct nearfs_fs *fs, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct origin_attr attr;
	struct stat st;
	int ret;

	ret = get_attr(fs, ino, fi, &attr);
	if (ret) {
		reply_error(req, ret);
		return;
	}
	attr_to_stat(fs, ino, &attr, &st);
	fuse_reply_attr(req, &st, attr_timeout(fs));
}

static void nf_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	reply_attr(req, req_fs(req), ino, fi);
}

/* Translate the FUSE_SET_ATTR_* bits other than the size. */
static unsigned setattr_fields(const struct stat *st, int to_set,
			       struct origin_attr *attr)
{
	unsigned which = 0;

	memset(attr, 0, sizeof(*attr));
	if (to_set & FUSE_SET_ATTR_MODE) {
		attr->mode = st->st_mode;
		which |= ORIGIN_ATTR_MODE;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		attr->uid = st->st_uid;
		which |= ORIGIN_ATTR_UID;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		attr->gid = st->st_gid;
		which |= ORIGIN_ATTR_GID;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		clock_gettime(CLOCK_REALTIME, &attr->mtime);
		which |= ORIGIN_ATTR_MTIME;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		attr->mtime = st->st_mtim;
		which |= ORIGIN_ATTR_MTIME;
	}
	attr->valid = which;
	return which;
}

/* Apply a setattr request; atime and ctime are not stored, so a request
 * that sets only them just returns the attributes. */
static int do_setattr(struct nearfs_fs *fs, fuse_ino_t ino,
		      const struct stat *st, int to_set,
		      struct fuse_file_info *fi)
{
	struct open_file *of = fi && fi->fh ? fi_file(fi) : NULL;
	bool set_size = to_set & FUSE_SET_ATTR_SIZE;
	struct origin_attr attr;
	unsigned which;
	char *path = NULL;
	int ret;

	which = setattr_fields(st, to_set, &attr);
	if (!which && !set_size)
		return 0;
	if (fs->read_only)
		return -EROFS;
	if (set_size && of) {
		ret = cache_file_truncate(of->file, (uint64_t)st->st_size);
		if (ret)
			return ret;
		set_size = false;
	}
	if (!which && !set_size)
		return 0;

	/* For writing, so that an open waits for the change.  The kernel
	 * does not order an open or the writes of a shared mapping with
	 * this request, and such a writer would store the old mode again. */
	ret = lock_inode_path_for(fs, ino, &path, true);
	if (ret)
		return ret;
	if (is_ctl_link(fs, path))
		ret = -EPERM;
	else
		ret = cache_setattr(fs->cache, path, &attr, which, set_size,
				    (uint64_t)st->st_size);
	unlock_path(fs, path);
	free(path);
	return ret;
}

static void nf_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct nearfs_fs *fs = req_fs(req);
	int ret;

	ret = do_setattr(fs, ino, attr, to_set, fi);
	if (ret)
		reply_error(req, ret);
	else
		reply_attr(req, fs, ino, fi);
}

static void nf_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct nearfs_fs *fs = req_fs(req);
	char target[PATH_MAX + 1];
	char *path;
	int ret;

	ret = inode_path(fs->inodes, ino, &path);
	if (ret)
		goto out_reply;
	if (is_ctl_link(fs, path)) {
		free(path);
		fuse_reply_readlink(req, fs->ctl_path);
		return;
	}
	ret = cache_readlink(fs->cache, path, target, sizeof(target) - 1);
	free(path);
	if (ret < 0)
		goto out_reply;

	/* Accept both conventions: a length, or 0 with a terminated
	 * string. */
	if (ret > 0)
		target[ret] = '\0';
	else
		target[sizeof(target) - 1] = '\0';
	fuse_reply_readlink(req, target);
	return;

out_reply:
	reply_error(req, ret);
}

/* ---- namespace changes ---- */

/* Path of an entry to create, remove or rename, or an error when the
 * mount is read-only.  ctl_err is the error for the control link. */
static int new_entry_path(struct nearfs_fs *fs, fuse_ino_t parent,
			  const char *name, int ctl_err, char **path)
{
	int ret;

	if (fs->read_only)
		return -EROFS;
	ret = child_path(fs, parent, name, path);
	if (ret == 0 && is_ctl_link(fs, *path)) {
		free(*path);
		*path = NULL;
		ret = ctl_err;
	}
	return ret;
}

static void nf_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct nearfs_fs *fs = req_fs(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	char *path;
	int ret;

	ret = new_entry_path(fs, parent, name, -EEXIST, &path);
	if (ret)
		goto out_reply;
	ret = cache_mkdir(fs->cache, path, S_IFDIR | (mode & 07777),
			  ctx->uid, ctx->gid);
	if (ret == 0)
		reply_new_entry(req, fs, path);
	free(path);

out_reply:
	if (ret)
		reply_error(req, ret);
}

static void nf_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	struct nearfs_fs *fs = req_fs(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct cache_file *file;
	char *path;
	int ret;

	/* The origins store regular files, directories and symlinks only. */
	if (!S_ISREG(mode)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	ret = new_entry_path(fs, parent, name, -EEXIST, &path);
	if (ret)
		goto out_reply;
	ret = cache_file_create(fs->cache, path, S_IFREG | (mode & 07777),
				ctx->uid, ctx->gid, &file);
	if (ret)
		goto out_free;
	ret = cache_file_commit(file);
	cache_file_release(file);
	if (ret == 0)
		reply_new_entry(req, fs, path);

out_free:
	free(path);
out_reply:
	if (ret)
		reply_error(req, ret);
}

static void nf_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	struct nearfs_fs *fs = req_fs(req);
	char *path;
	int ret;

	ret = new_entry_path(fs, parent, name, -EEXIST, &path);
	if (ret)
		goto out_reply;
	ret = cache_symlink(fs->cache, link, path);
	if (ret == 0)
		reply_new_entry(req, fs, path);
	free(path);

out_reply:
	if (ret)
		reply_error(req, ret);
}

static void remove_entry(fuse_req_t req, fuse_ino_t parent,
			 const char *name, bool is_dir)
{
	struct nearfs_fs *fs = req_fs(req);
	char *path;
	int ret;

	/* rmdir(2) of a symbolic link fails with ENOTDIR. */
	ret = new_entry_path(fs, parent, name, is_dir ? -ENOTDIR : -EPERM,
			     &path);
	if (ret)
		goto out_reply;
	if (is_dir)
		ret = cache_rmdir(fs->cache, path);
	else
		ret = cache_unlink(fs->cache, path);
	if (ret == 0)
		inode_unlink(fs->inodes, path, is_dir);
	free(path);

out_reply:
	fuse_reply_err(req, ret < 0 ? -ret : 0);
}

static void nf_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, false);
}

static void nf_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, true);
}

/*
 * Keep the content of the regular file that a rename replaced at path,
 * given as file, for the inode number the kernel has for it.  The kernel
 * may send a getattr of that inode after the rename: without the pin it
 * would reach the new file under the old inode, whose page cache and size
 * are the old file's, or fail with ENOENT.  An open of the inode uses the
 * pin when all of the file is cached.  Best effort: without a pin the
 * inode behaves as an unlinked one.
 */
static void pin_replaced(struct nearfs_fs *fs, const char *path,
			 struct cache_file *file)
{
	if (file && inode_pin(fs->inodes, path, file) != 0)
		cache_file_release(file);
}

static int copy_pin(void *pin, void *arg)
{
	return cache_file_dup(pin, arg);
}

static void nf_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct nearfs_fs *fs = req_fs(req);
	char *from = NULL, *to = NULL;
	struct cache_file *replaced;
	bool known;
	int ret;

	ret = new_entry_path(fs, parent, name, -EPERM, &from);
	if (ret)
		goto out_reply;
	ret = child_path(fs, newparent, newname, &to);
	if (ret == 0 && is_ctl_link(fs, to))
		ret = -EPERM;
	if (ret)
		goto out_free;
	lock_rename(fs, from, to);
	known = inode_find(fs->inodes, to) != 0;
	ret = cache_rename(fs->cache, from, to, flags,
			   known ? &replaced : NULL);
	if (ret) {
		unlock_rename(fs, from, to);
		goto out_free;
	}
	if (known)
		pin_replaced(fs, to, replaced);
	ret = inode_rename(fs->inodes, from, to, flags & RENAME_EXCHANGE);
	unlock_rename(fs, from, to);
	if (ret)
		log_warn("rename of '%s' to '%s' succeeded, but the inode "
			 "table could not follow it: %s; the old names stay "
			 "cached until their inodes are forgotten", from, to,
			 strerror(-ret));
	ret = 0;

out_free:
	free(from);
	free(to);
out_reply:
	fuse_reply_err(req, ret < 0 ? -ret : 0);
}

static void nf_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	/* Neither S3 nor the directory origin stores hard links. */
	fuse_reply_err(req, EPERM);
}

/* ---- files ---- */

static bool is_write_open(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

/* Open path for fi->flags and store the handle in fi. */
/*
 * Have the kernel ask for ino's attributes again.  An open that found a
 * new version may follow a lookup that gave the old size, and the
 * kernel would end reads there until its attribute timeout.  Only the
 * attributes are invalidated, which takes no page lock, so a request
 * handler may do it.
 */
static void forget_kernel_attr(struct nearfs_fs *fs, fuse_ino_t ino)
{
	int ret = fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);

	/* -ENOENT: the kernel has no attributes of it left. */
	if (ret && ret != -ENOENT)
		log_debug("attribute invalidation of inode %llu failed: %s",
			  (unsigned long long)ino, strerror(-ret));
}

static int do_open(struct nearfs_fs *fs, fuse_ino_t ino, const char *path,
		   struct fuse_file_info *fi)
{
	struct cache_file *file;
	bool changed = false;
	int ret;

	ret = cache_file_open(fs->cache, path, fi->flags, &file, &changed);
	if (ret)
		return ret;
	ret = open_file_new(fs, ino, file, (fi->flags & O_ACCMODE) != O_RDONLY,
			    fi);
	if (ret) {
		cache_file_release(file);
		return ret;
	}
	fi->keep_cache = !changed;
	if (changed)
		forget_kernel_attr(fs, ino);
	return 0;
}

/* Lend a read-only descriptor of the complete local copy of path, in
 * the version that of reads.  Returns it, or -1 when none is lent. */
static int lend_for_passthrough(struct nearfs_fs *fs, const char *path,
				struct open_file *of)
{
	struct cache_lend_request lend = { 0 };
	struct origin_attr attr;
	const char *reason;
	int fd = -1;

	if (cache_file_getattr(of->file, &attr) != 0)
		return -1;
	lend.size = attr.size;
	lend.mtime = attr.mtime;
	if (cache_lend(fs->cache, path, &lend, &fd, &reason) < 0)
		return -1;
	if (fd < 0)
		log_debug("FUSE passthrough: '%s' is read through the page "
			  "cache: %s", path, reason);
	return fd;
}

/*
 * Choose and count how the kernel serves the open of, which fi describes
 * after do_open().  A read-only open whose version did not change may
 * pass its reads through to the local copy of path; path NULL rules that
 * out.  Stores the backing id of a passthrough open in *backing_id.
 */
static void open_file_set_mode(struct nearfs_fs *fs, struct open_file *of,
			       const char *path, struct fuse_file_info *fi,
			       int *backing_id)
{
	int lent = -1;

	if (path && !of->commit && !is_write_open(fi->flags) &&
	    fi->keep_cache && passthrough_possible(fs->pt, of->ino))
		lent = lend_for_passthrough(fs, path, of);
	of->mode = passthrough_open(fs->pt, of->ino, lent, backing_id);
	of->counted = of->mode != OPEN_CONFLICT;
}

/*
 * Detach path from ino, whose readers pass through to a copy that a new
 * open cannot share (see passthrough.h), so that the kernel's next lookup
 * of path gets a new inode.  The caller then fails the open with ESTALE.
 */
static void detach_for_conflict(struct nearfs_fs *fs, fuse_ino_t ino,
				const char *path)
{
	pthread_rwlock_wrlock(path_lock(fs, path));
	if (inode_find(fs->inodes, path) == ino)
		inode_unlink(fs->inodes, path, false);
	pthread_rwlock_unlock(path_lock(fs, path));
	log_debug("FUSE passthrough: '%s' (inode %llu) is open through "
		  "passthrough, so the open gets a new inode", path,
		  (unsigned long long)ino);
}

static void nf_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct nearfs_fs *fs = req_fs(req);
	struct cache_file *file;
	int backing_id = 0;
	char *path;
	int ret;

	if (fs->read_only && is_write_open(fi->flags)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	ret = lock_inode_path(fs, ino, &path);
	/*
	 * The file was replaced by a rename or unlinked after the kernel
	 * resolved the path to this inode.  A replaced file whose content is
	 * all local opens as what it was.  Otherwise ESTALE has the kernel
	 * look the path up again and open what is there now, as if the open
	 * came after the rename.
	 */
	if (ret == -ENOENT && (fi->flags & O_ACCMODE) == O_RDONLY &&
	    inode_copy_pin(fs->inodes, ino, copy_pin, &file) == 0) {
		ret = open_file_new(fs, ino, file, false, fi);
		if (ret) {
			cache_file_release(file);
			goto out_reply;
		}
		fi->keep_cache = 1;
		open_file_set_mode(fs, fi_file(fi), NULL, fi, &backing_id);
		if (fi_file(fi)->mode == OPEN_CONFLICT) {
			/* Readers pass through to the replaced copy. */
			open_file_free(fs, fi_file(fi));
			ret = -ESTALE;
			goto out_reply;
		}
		goto out_open;
	}
	if (ret == -ENOENT)
		ret = -ESTALE;
	if (ret)
		goto out_reply;
	ret = do_open(fs, ino, path, fi);
	if (ret == 0)
		open_file_set_mode(fs, fi_file(fi), path, fi, &backing_id);
	unlock_path(fs, path);
	if (ret == 0 && fi_file(fi)->mode == OPEN_CONFLICT) {
		open_file_free(fs, fi_file(fi));
		detach_for_conflict(fs, ino, path);
		ret = -ESTALE;
	}
	free(path);
	if (ret)
		goto out_reply;
out_open:
	/* The kernel calls no release after a failed open reply. */
	if (passthrough_reply_open(req, fi, fi_file(fi)->mode,
				   backing_id) != 0)
		open_file_free(fs, fi_file(fi));
	return;

out_reply:
	reply_error(req, ret);
}

/* Create path, or open it when it exists and O_EXCL is not set (the
 * kernel's negative entry may be older than the file).  The handle's inode
 * number is set once the entry exists. */
static int create_or_open(fuse_req_t req, struct nearfs_fs *fs,
			  const char *path, mode_t mode,
			  struct fuse_file_info *fi)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct origin_attr attr;
	struct cache_file *file;
	int ret;

	ret = cache_getattr(fs->cache, path, &attr);
	if (ret == 0) {
		if (fi->flags & O_EXCL)
			return -EEXIST;
		if (S_ISDIR(attr.mode))
			return -EISDIR;
		return do_open(fs, 0, path, fi);
	}
	if (ret != -ENOENT)
		return ret;

	ret = cache_file_create(fs->cache, path, S_IFREG | (mode & 07777),
				ctx->uid, ctx->gid, &file);
	if (ret)
		return ret;
	/* A new file reaches the origin at flush even when opened
	 * read-only. */
	ret = open_file_new(fs, 0, file, true, fi);
	if (ret)
		cache_file_release(file);
	return ret;
}

static void nf_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct nearfs_fs *fs = req_fs(req);
	struct fuse_entry_param e;
	struct origin_attr attr;
	char *path;
	int ret;

	ret = new_entry_path(fs, parent, name, -EEXIST, &path);
	if (ret)
		goto out_reply;
	ret = create_or_open(req, fs, path, mode, fi);
	if (ret)
		goto out_free;
	ret = cache_file_getattr(fi_file(fi)->file, &attr);
	if (ret == 0)
		ret = make_entry(fs, path, &attr, &e);
	if (ret) {
		open_file_free(fs, fi_file(fi));
		goto out_free;
	}
	pthread_mutex_lock(&fs->open_lock);
	fi_file(fi)->ino = e.ino;
	pthread_mutex_unlock(&fs->open_lock);
	/* libfuse sends the create reply in one piece that passthrough
	 * does not edit, so a create never passes through. */
	open_file_set_mode(fs, fi_file(fi), NULL, fi, &(int){ 0 });
	if (fi_file(fi)->mode == OPEN_CONFLICT) {
		inode_forget(fs->inodes, e.ino, 1);
		open_file_free(fs, fi_file(fi));
		detach_for_conflict(fs, e.ino, path);
		ret = -ESTALE;
		goto out_free;
	}
	if (fuse_reply_create(req, &e, fi) != 0) {
		inode_forget(fs->inodes, e.ino, 1);
		open_file_free(fs, fi_file(fi));
	}

out_free:
	free(path);
out_reply:
	if (ret)
		reply_error(req, ret);
}

/* Reply with cached bytes straight from the data file (splice where the
 * kernel allows it).  Returns false when the range is not cached.  Once
 * the reply is sent the kernel may release the handle, so only the pin is
 * used afterwards. */
static bool reply_from_fd(fuse_req_t req, struct nearfs_fs *fs,
			  struct open_file *of, size_t size, off_t off)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(0);
	struct cache_read_pin pin;
	size_t n;
	int fd;

	if (!cache_file_read_fd(of->file, (uint64_t)off, size, &fd, &n, &pin))
		return false;
	bv.buf[0].size = n;
	bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv.buf[0].fd = fd;
	bv.buf[0].pos = off;
	fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
	cache_read_unpin(fs->cache, &pin);
	return true;
}

static void nf_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct open_file *of = fi_file(fi);
	size_t done = 0;
	ssize_t n = 0;
	char *buf;

	if (reply_from_fd(req, req_fs(req), of, size, off))
		return;
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* The kernel takes a short read as end of file, so fill the
	 * buffer unless the engine reports the end.  For the same reason
	 * an error after some bytes fails the whole request: a later read
	 * of the bytes before the error requests them again. */
	while (done < size) {
		n = cache_file_read(of->file, buf + done, size - done,
				    (uint64_t)off + done);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	if (n < 0)
		reply_error(req, (int)n);
	else
		fuse_reply_buf(req, buf, done);
	free(buf);
}

static void nf_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	ssize_t n;

	n = cache_file_write(fi_file(fi)->file, buf, size, (uint64_t)off);
	if (n < 0)
		reply_error(req, (int)n);
	else
		fuse_reply_write(req, (size_t)n);
}

static int commit_file(struct open_file *of)
{
	return of->commit ? cache_file_commit(of->file) : 0;
}

/* Read the "mnt_id:" and "ino:" lines of the fdinfo file name, in the
 * folder open as dir_fd.  Returns false unless it has both. */
static bool read_fdinfo(int dir_fd, const char *name, int *mnt_id,
			unsigned long long *ino)
{
	char buf[1024];
	const char *mnt, *node;
	ssize_t n;
	int fd;

	fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	mnt = strstr(buf, "\nmnt_id:");
	node = strstr(buf, "\nino:");
	if (!mnt || !node)
		return false;
	*mnt_id = atoi(mnt + strlen("\nmnt_id:"));
	*ino = strtoull(node + strlen("\nino:"), NULL, 10);
	return true;
}

/*
 * Whether the process that sent req still has a descriptor of inode ino
 * of this mount, as /proc/PID/fdinfo shows it (Linux 5.14 and later).
 * The kernel sends FLUSH after it has taken the closed descriptor out of
 * the table.  False when that cannot be read: another pid namespace, or
 * no right to read the process's files.
 */
static bool caller_holds_inode(const struct nearfs_fs *fs, fuse_req_t req,
			       fuse_ino_t ino)
{
	pid_t pid = fuse_req_ctx(req)->pid;
	struct dirent *e;
	bool found = false;
	char dir[64];
	DIR *d;

	if (fs->mount_id < 0 || pid <= 0)
		return false;
	snprintf(dir, sizeof(dir), "/proc/%d/fdinfo", (int)pid);
	d = opendir(dir);
	if (!d)
		return false;
	while (!found && (e = readdir(d))) {
		unsigned long long node;
		int mnt;

		if (e->d_name[0] != '.' &&
		    read_fdinfo(dirfd(d), e->d_name, &mnt, &node))
			found = mnt == fs->mount_id && node == ino;
	}
	closedir(d);
	return found;
}

/*
 * Commit at close(2).  A new file without writes reaches the origin here
 * too, because an error of the release reaches no program.  The one
 * exception is a process that still has another descriptor of the file,
 * as a shell redirection has when it closes the first of two.  There the
 * upload of an empty file is saved.
 */
static void nf_flush(fuse_req_t req, fuse_ino_t ino,
		     struct fuse_file_info *fi)
{
	struct open_file *of = fi_file(fi);
	int ret = 0;

	/* /proc is read only for a new file that nothing was written to. */
	if (of->commit)
		ret = cache_file_flush(of->file,
				       cache_file_untouched(of->file) &&
				       caller_holds_inode(req_fs(req), req,
							  of->ino));
	fuse_reply_err(req, -ret);
}

/* Read-only handles are passed on too: the engine decides what their
 * fsync has to do. */
static void nf_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	int ret = cache_file_fsync(fi_file(fi)->file);

	fuse_reply_err(req, -ret);
}

/* Commit the file of and close it, as the RELEASE of its handle does. */
static void open_file_release(struct nearfs_fs *fs, struct open_file *of)
{
	int ret;

	/*
	 * Writes through a shared mapping can arrive after the last flush.
	 * The engine's commit does nothing for a file without new writes,
	 * so committing again here costs nothing in the usual case.
	 */
	ret = commit_file(of);
	if (ret)
		log_err("commit at release of inode %llu failed: %s; the "
			"last writes may not be on the origin",
			(unsigned long long)of->ino, strerror(-ret));
	open_file_free(fs, of);
}

static void nf_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	open_file_release(req_fs(req), fi_file(fi));
	fuse_reply_err(req, 0);
}

/* ---- directories ---- */

static int dir_collect(void *arg, const char *name,
		       const struct origin_attr *attr)
{
	struct dir_handle *dh = arg;
	struct dir_entry *entry;

	if (dh->count == dh->cap) {
		size_t cap = dh->cap * 2;
		struct dir_entry *bigger;

		bigger = realloc(dh->entries, cap * sizeof(*bigger));
		if (!bigger)
			return -ENOMEM;
		dh->entries = bigger;
		dh->cap = cap;
	}
	entry = &dh->entries[dh->count];
	entry->name = strdup(name);
	if (!entry->name)
		return -ENOMEM;
	entry->attr = *attr;
	dh->count++;
	return 0;
}

static void dir_clear(struct dir_handle *dh)
{
	for (size_t i = 0; i < dh->count; i++)
		free(dh->entries[i].name);
	dh->count = 0;
}

/* Start the listing of dh again: ".", "..", then what the engine has at
 * once, or else its first page. */
static int dir_load(struct nearfs_fs *fs, struct dir_handle *dh)
{
	struct origin_attr dot = { .mode = S_IFDIR | 0755 };
	int ret;

	dir_clear(dh);
	cache_dir_close(dh->cursor);
	dh->cursor = NULL;
	dh->served = false;
	if (dir_collect(dh, ".", &dot) || dir_collect(dh, "..", &dot))
		return -ENOMEM;
	ret = cache_dir_open(fs->cache, dh->path, dir_collect, dh,
			     &dh->cursor);
	if (ret == 0 && !cache_dir_complete(dh->cursor))
		ret = cache_dir_next(dh->cursor, dir_collect, dh);
	hide_ctl_name(fs, dh, 2);
	return ret;
}

/*
 * Fetch listing pages until dh has the entry at offset off or the
 * listing is complete: one page, unless a page adds no entry or off lies
 * further ahead (seekdir).  A failed page returns EIO, and the entries
 * before it stay valid.
 */
static int dir_fetch(struct nearfs_fs *fs, struct dir_handle *dh, off_t off)
{
	while (dh->cursor && (size_t)off >= dh->count &&
	       !cache_dir_complete(dh->cursor)) {
		size_t from = dh->count;
		int ret = cache_dir_next(dh->cursor, dir_collect, dh);

		hide_ctl_name(fs, dh, from);
		if (ret == 0)
			continue;
		if (!dh->error_logged)
			log_err("listing of /%s failed after %zu entries: %s",
				dh->path, dh->count - 2, strerror(-ret));
		dh->error_logged = true;
		return -EIO;
	}
	return 0;
}

static void dir_handle_free(struct dir_handle *dh)
{
	if (!dh)
		return;
	cache_dir_close(dh->cursor);
	dir_clear(dh);
	free(dh->entries);
	free(dh->path);
	pthread_mutex_destroy(&dh->lock);
	free(dh);
}

static int dir_handle_new(struct nearfs_fs *fs, fuse_ino_t ino,
			  struct dir_handle **out)
{
	struct dir_handle *dh = calloc(1, sizeof(*dh));
	int ret = -ENOMEM;

	if (!dh)
		return -ENOMEM;
	pthread_mutex_init(&dh->lock, NULL);
	dh->ino = ino;
	dh->cap = 16;
	dh->entries = malloc(dh->cap * sizeof(*dh->entries));
	if (!dh->entries)
		goto out_free;
	ret = inode_path(fs->inodes, ino, &dh->path);
	if (ret)
		goto out_free;
	ret = dir_load(fs, dh);
	if (ret)
		goto out_free;
	*out = dh;
	return 0;

out_free:
	dir_handle_free(dh);
	return ret;
}

static void nf_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct dir_handle *dh;
	int ret;

	ret = dir_handle_new(req_fs(req), ino, &dh);
	if (ret) {
		reply_error(req, ret);
		return;
	}
	fi->fh = (uintptr_t)dh;
	if (fuse_reply_open(req, fi) != 0)
		dir_handle_free(dh);
}

/* References taken for one readdirplus reply, given back if the reply
 * fails. */
struct plus_refs {
	uint64_t *inos;
	size_t count;
};

/* Add entry i to buf for readdir; returns the bytes it needs, which the
 * caller compares with the room left. */
static size_t add_plain(fuse_req_t req, struct nearfs_fs *fs,
			struct dir_handle *dh, size_t i, char *buf,
			size_t room)
{
	const struct dir_entry *entry = &dh->entries[i];
	struct stat st = { .st_mode = entry->attr.mode & S_IFMT };
	char *path;

	st.st_ino = i < 2 ? dh->ino : UNKNOWN_INO;
	if (i >= 2 && join_path(dh->path, entry->name, &path) == 0) {
		uint64_t ino = inode_find(fs->inodes, path);

		if (ino)
			st.st_ino = ino;
		free(path);
	}
	return fuse_add_direntry(req, buf, room, entry->name, &st,
				 (off_t)i + 1);
}

/* Add entry i to buf for readdirplus, taking a reference on it when it
 * fits.  Returns the bytes it needs, or 0 when it could not be made. */
static size_t add_plus(fuse_req_t req, struct nearfs_fs *fs,
		       struct dir_handle *dh, size_t i, char *buf,
		       size_t room, struct plus_refs *refs)
{
	const struct dir_entry *entry = &dh->entries[i];
	struct fuse_entry_param e;
	char *path;
	size_t need;

	if (i < 2) {
		/* The kernel takes no reference on "." and "..". */
		memset(&e, 0, sizeof(e));
		e.attr.st_ino = dh->ino;
		e.attr.st_mode = S_IFDIR;
		return fuse_add_direntry_plus(req, buf, room, entry->name, &e,
					      (off_t)i + 1);
	}
	if (join_path(dh->path, entry->name, &path))
		return 0;
	if (make_entry(fs, path, &entry->attr, &e)) {
		free(path);
		return 0;
	}
	free(path);
	need = fuse_add_direntry_plus(req, buf, room, entry->name, &e,
				      (off_t)i + 1);
	if (need > room)
		inode_forget(fs->inodes, e.ino, 1);
	else
		refs->inos[refs->count++] = e.ino;
	return need;
}

/* Fill buf with the entries from offset off on; the caller holds dh->lock.
 * Returns the bytes used. */
static size_t dir_fill(fuse_req_t req, struct nearfs_fs *fs,
		       struct dir_handle *dh, char *buf, size_t size,
		       off_t off, struct plus_refs *refs)
{
	size_t pos = 0;

	for (size_t i = (size_t)off; i < dh->count; i++) {
		size_t need;

		if (refs)
			need = add_plus(req, fs, dh, i, buf + pos, size - pos,
					refs);
		else
			need = add_plain(req, fs, dh, i, buf + pos,
					 size - pos);
		if (need == 0 || need > size - pos)
			break;
		pos += need;
	}
	return pos;
}

static void read_dir(fuse_req_t req, size_t size, off_t off,
		     struct fuse_file_info *fi, bool plus)
{
	struct nearfs_fs *fs = req_fs(req);
	struct dir_handle *dh = fi_dir(fi);
	struct plus_refs refs = { 0 };
	size_t len = 0;
	int ret = 0;
	char *buf;

	buf = malloc(size);
	/* A readdirplus entry takes at least 152 bytes. */
	refs.inos = malloc((size / 152 + 1) * sizeof(*refs.inos));
	if (!buf || !refs.inos) {
		ret = -ENOMEM;
		goto out_reply;
	}

	pthread_mutex_lock(&dh->lock);
	/* rewinddir(3): list again so that the reader sees changes. */
	if (off == 0 && dh->served)
		ret = dir_load(fs, dh);
	if (off > 0)
		dh->served = true;
	if (ret == 0)
		ret = dir_fetch(fs, dh, off < 0 ? 0 : off);
	if (ret == 0)
		len = dir_fill(req, fs, dh, buf, size, off < 0 ? 0 : off,
			       plus ? &refs : NULL);
	/* Unlock before the reply: once the kernel has it, a releasedir
	 * may free dh on another thread. */
	pthread_mutex_unlock(&dh->lock);

out_reply:
	if (ret) {
		reply_error(req, ret);
	} else if (fuse_reply_buf(req, buf, len) != 0) {
		for (size_t i = 0; i < refs.count; i++)
			inode_forget(fs->inodes, refs.inos[i], 1);
	}
	free(refs.inos);
	free(buf);
}

static void nf_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	read_dir(req, size, off, fi, false);
}

static void nf_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	read_dir(req, size, off, fi, true);
}

static void nf_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	dir_handle_free(fi_dir(fi));
	fuse_reply_err(req, 0);
}

/*
 * Directory changes reach the origin when they are made, except in
 * write-back mode, where a created or renamed file reaches it with its
 * upload.  With fsync=origin, fsyncdir therefore waits for the uploads of
 * the closed files below the directory, its subfolders included.
 */
static void nf_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	struct cache *c = req_fs(req)->cache;
	const struct cache_config *cfg = cache_config(c);
	int ret = 0;

	if (cfg->write_mode == WRITE_BACK && !cfg->fsync_local)
		ret = cache_flush(c, fi_dir(fi)->path, NULL, NULL);
	fuse_reply_err(req, -ret);
}

static void nf_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;
	int ret;

	memset(&st, 0, sizeof(st));
	ret = cache_statfs(req_fs(req)->cache, &st);
	if (ret)
		reply_error(req, ret);
	else
		fuse_reply_statfs(req, &st);
}

/* ---- extended attributes ---- */

/*
 * Extended attributes are not supported.  ENOSYS, unlike ENODATA or
 * ENOTSUP, makes the kernel set no_getxattr (no_listxattr, ...) on the
 * connection and return EOPNOTSUPP itself from then on (Linux
 * fs/fuse/xattr.c).  The security.selinux and system.posix_acl_access
 * lookups of ls -l and the security.capability check before each write
 * then cost no round trip.
 * Each operation reaches the daemon once per mount (more often only when
 * requests race the first reply) and logs one debug line, which the
 * integration tests count.
 */
static void reply_no_xattr(fuse_req_t req, const char *op)
{
	log_debug("%s: extended attributes are not supported, replying "
		  "ENOSYS", op);
	fuse_reply_err(req, ENOSYS);
}

static void nf_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	reply_no_xattr(req, "getxattr");
}

static void nf_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	reply_no_xattr(req, "listxattr");
}

static void nf_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	reply_no_xattr(req, "setxattr");
}

static void nf_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	reply_no_xattr(req, "removexattr");
}

const struct fuse_lowlevel_ops nearfs_fuse_ops = {
	.init = nf_init,
	.lookup = nf_lookup,
	.forget = nf_forget,
	.forget_multi = nf_forget_multi,
	.getattr = nf_getattr,
	.setattr = nf_setattr,
	.readlink = nf_readlink,
	.mknod = nf_mknod,
	.mkdir = nf_mkdir,
	.unlink = nf_unlink,
	.rmdir = nf_rmdir,
	.symlink = nf_symlink,
	.rename = nf_rename,
	.link = nf_link,
	.open = nf_open,
	.read = nf_read,
	.write = nf_write,
	.flush = nf_flush,
	.release = nf_release,
	.fsync = nf_fsync,
	.opendir = nf_opendir,
	.readdir = nf_readdir,
	.readdirplus = nf_readdirplus,
	.releasedir = nf_releasedir,
	.fsyncdir = nf_fsyncdir,
	.statfs = nf_statfs,
	.setxattr = nf_setxattr,
	.getxattr = nf_getxattr,
	.listxattr = nf_listxattr,
	.removexattr = nf_removexattr,
	.create = nf_create,
};

/* ---- state ---- */

void nearfs_fs_file_stat(const struct nearfs_fs *fs,
			 const struct origin_attr *attr, struct stat *st)
{
	attr_to_stat(fs, 0, attr, st);
}

void nearfs_fs_set_passthrough(struct nearfs_fs *fs, bool on)
{
	fs->want_passthrough = on;
}

void nearfs_fs_set_mount_id(struct nearfs_fs *fs, int id)
{
	fs->mount_id = id;
}

void nearfs_fs_set_owner(struct nearfs_fs *fs, long uid, long gid,
			 int umask)
{
	if (uid >= 0) {
		fs->uid = uid;
		fs->force_uid = true;
	}
	if (gid >= 0) {
		fs->gid = gid;
		fs->force_gid = true;
	}
	if (umask >= 0)
		fs->umask = umask;
}

static void release_pin(void *pin)
{
	cache_file_release(pin);
}

int nearfs_fs_new(struct cache *c, struct nearfs_fs **out)
{
	const struct cache_config *cfg = cache_config(c);
	struct nearfs_fs *fs = calloc(1, sizeof(*fs));
	int ret;

	if (!fs)
		return -ENOMEM;
	ret = inode_table_new(&fs->inodes);
	if (ret) {
		free(fs);
		return ret;
	}
	inode_table_set_unpin(fs->inodes, release_pin);
	fs->pt = passthrough_new();
	if (!fs->pt) {
		inode_table_free(fs->inodes);
		free(fs);
		return -ENOMEM;
	}
	fs->cache = c;
	fs->mount_id = -1;
	fs->uid = getuid();
	fs->gid = getgid();
	clock_gettime(CLOCK_REALTIME, &fs->mounted);
	fs->read_only = cfg->read_only;
	pthread_mutex_init(&fs->open_lock, NULL);
	pthread_mutex_init(&fs->inval_lock, NULL);
	for (size_t i = 0; i < PATH_LOCKS; i++)
		pthread_rwlock_init(&fs->path_locks[i], NULL);
	pthread_cond_init(&fs->inval_cond, NULL);
	pthread_cond_init(&fs->inval_idle, NULL);
	fs->inval_tail = &fs->inval_head;
	cache_set_invalidate(c, on_invalidate, fs);
	*out = fs;
	return 0;
}

int nearfs_fs_start(struct nearfs_fs *fs, struct fuse_session *se)
{
	int ret;

	fs->se = se;
	ret = fs->want_passthrough ? passthrough_attach(fs->pt, se) : 0;
	if (ret)
		log_warn("FUSE passthrough is off: cannot wrap the session's "
			 "I/O: %s; reads use the page cache", strerror(-ret));
	ret = pthread_create(&fs->notifier, NULL, notifier_main, fs);
	if (ret)
		return -ret;
	pthread_mutex_lock(&fs->inval_lock);
	fs->notifier_running = true;
	pthread_mutex_unlock(&fs->inval_lock);
	return 0;
}

int nearfs_fs_set_ctl_path(struct nearfs_fs *fs, const char *path)
{
	char *copy = strdup(path);

	if (!copy)
		return -ENOMEM;
	free(fs->ctl_path);
	fs->ctl_path = copy;
	return 0;
}

void nearfs_fs_stop(struct nearfs_fs *fs)
{
	struct inval_item *item;

	pthread_mutex_lock(&fs->inval_lock);
	fs->stopping = true;
	pthread_cond_broadcast(&fs->inval_cond);
	pthread_cond_broadcast(&fs->inval_idle);
	while ((item = inval_pop(fs)))
		free(item);
	pthread_mutex_unlock(&fs->inval_lock);

	if (fs->notifier_running) {
		pthread_join(fs->notifier, NULL);
		fs->notifier_running = false;
	}
	/*
	 * The session has ended, so no RELEASE comes any more.  Commit the
	 * files still open (a program holds them, or their RELEASE was still
	 * queued), so that their writes are uploaded and not lost.
	 */
	for (;;) {
		struct open_file *of;

		pthread_mutex_lock(&fs->open_lock);
		of = fs->open_files;
		pthread_mutex_unlock(&fs->open_lock);
		if (!of)
			break;
		open_file_release(fs, of);
	}
	inode_unpin_all(fs->inodes);
}

void nearfs_fs_free(struct nearfs_fs *fs)
{
	if (!fs)
		return;
	nearfs_fs_stop(fs);
	inode_table_free(fs->inodes);
	passthrough_free(fs->pt);
	pthread_cond_destroy(&fs->inval_idle);
	pthread_cond_destroy(&fs->inval_cond);
	pthread_mutex_destroy(&fs->inval_lock);
	pthread_mutex_destroy(&fs->open_lock);
	for (size_t i = 0; i < PATH_LOCKS; i++)
		pthread_rwlock_destroy(&fs->path_locks[i]);
	free(fs->ctl_path);
	free(fs);
}
