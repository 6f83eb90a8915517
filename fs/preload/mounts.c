/*
 * mounts.c - which paths and descriptors are on a nearfs mount, and
 * which paths are served without FUSE.
 *
 * The library keeps the nearfs mounts of /proc/self/mountinfo (type
 * fuse.nearfs) and the roots served without FUSE (roots.c) in a list,
 * so that the open of a path on another filesystem costs no system
 * call:
 *
 *  - an absolute path is compared with the mount points;
 *  - a relative path, or one relative to a directory descriptor, cannot
 *    be placed without resolving it, so the descriptor it opened is
 *    checked: fstatfs(2) for FUSE, then its st_dev against the list.
 *    This costs nothing while the list is empty.
 *  - while there are roots, a path is normalized (paths.h), relative
 *    ones from the current directory (cwd.c), and compared with them.
 *
 * The list is read again, at most once per REFRESH_MS, in three cases.
 * An absolute path is not below any mount point, a relative open happens
 * while the list is empty, or a descriptor on FUSE has an st_dev that is
 * not in the list.  So a mount made after the program started is found
 * within REFRESH_MS of its first use, and so is a new root.
 *
 * Two lists alternate, each under a sequence lock (preload.h): the
 * refresh writes the one readers do not use, then makes it current.
 * One refresh runs at a time; a thread that finds another one running
 * uses the current list.  The first list is read at load time, before
 * the program starts threads that would find none.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "mountinfo.h"
#include "paths.h"
#include "preload.h"

/* f_type of fstatfs(2) on FUSE (fs/fuse/inode.c in Linux). */
#define FUSE_SUPER_MAGIC 0x65735546
#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x00001000U
#endif

#define REFRESH_MS 1000
/* nearfs mounts kept, roots kept, and the bytes of their paths in all;
 * the mounts and roots past these limits are not bypassed or served. */
#define MOUNTS_MAX 32
#define ROOTS_MAX 32
#define MOUNT_PATHS_SIZE (16 * 1024)
/* The st_dev that files below a root report: major 0, as for other
 * filesystems without a device, and a minor from the root's path far
 * above those that the kernel hands out first. */
#define ROOT_DEV_MINOR_BASE 0x80000U
#define ROOT_DEV_MINOR_MASK 0x7ffffU
/* Maximum length of a line of /proc/self/mountinfo; longer lines are
 * skipped. */
#define LINE_MAX_BYTES (3 * PATH_MAX)

struct nearfs_mount {
	dev_t dev;
	unsigned path_offset;	/* mount point, in paths[] */
	unsigned path_len;
	bool top;		/* the mount shows the filesystem's root */
};

/* A root served without FUSE. */
struct nomount_root {
	unsigned path_offset;	/* the root, in paths[] */
	unsigned path_len;
	unsigned socket_offset;	/* its daemon's control socket, in paths[] */
	unsigned socket_len;
	dev_t dev;
};

struct mount_list {
	_Atomic unsigned seq;
	unsigned count;
	unsigned root_count;
	unsigned paths_used;
	struct nearfs_mount mounts[MOUNTS_MAX];
	struct nomount_root roots[ROOTS_MAX];
	char paths[MOUNT_PATHS_SIZE];
};

static struct mount_list lists[2];
static _Atomic int current_list = -1;	/* -1 until the first refresh */
static _Atomic long long refreshed_ms;
static atomic_flag refreshing = ATOMIC_FLAG_INIT;
/* Used only by the thread that set refreshing. */
static char read_buf[LINE_MAX_BYTES];

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copy len bytes of path and a NUL to the paths of list; returns their
 * offset, or -1 when they do not fit. */
static long add_path(struct mount_list *list, const char *path, size_t len)
{
	size_t used = list->paths_used;

	if (used + len + 1 > MOUNT_PATHS_SIZE)
		return -1;
	memcpy(list->paths + used, path, len);
	list->paths[used + len] = '\0';
	list->paths_used = (unsigned)(used + len + 1);
	return (long)used;
}

static void add_mount(struct mount_list *list, char *line)
{
	struct mountinfo_line info;
	struct nearfs_mount *m;
	size_t len;
	long offset = -1;

	if (mountinfo_parse_line(line, &info) != 0 ||
	    strcmp(info.type, MOUNTINFO_NEARFS_TYPE) != 0)
		return;
	len = strlen(info.mountpoint);
	if (list->count < MOUNTS_MAX)
		offset = add_path(list, info.mountpoint, len);
	if (offset < 0) {
		preload_debug("more nearfs mounts than the %d (or %d bytes of "
			      "mount points) it tracks; %s is not bypassed",
			      MOUNTS_MAX, MOUNT_PATHS_SIZE, info.mountpoint);
		return;
	}
	m = &list->mounts[list->count++];
	m->dev = makedev(info.major, info.minor);
	m->path_offset = (unsigned)offset;
	m->path_len = (unsigned)len;
	m->top = strcmp(info.root, "/") == 0;
}

/* root_found_fn of roots_scan(). */
static void add_root(void *arg, const char *path, size_t len,
		     const char *socket)
{
	struct mount_list *list = arg;
	size_t socket_len = strlen(socket);
	struct nomount_root *r;
	unsigned used = list->paths_used;
	long path_offset = -1, socket_offset = -1;

	if (list->root_count < ROOTS_MAX) {
		path_offset = add_path(list, path, len);
		socket_offset = add_path(list, socket, socket_len);
	}
	if (path_offset < 0 || socket_offset < 0) {
		list->paths_used = used;
		preload_debug("more roots served without FUSE than the %d (or "
			      "%d bytes of paths) it tracks; %s is not served",
			      ROOTS_MAX, MOUNT_PATHS_SIZE, path);
		return;
	}
	r = &list->roots[list->root_count++];
	r->path_offset = (unsigned)path_offset;
	r->path_len = (unsigned)len;
	r->socket_offset = (unsigned)socket_offset;
	r->socket_len = (unsigned)socket_len;
	r->dev = makedev(0, ROOT_DEV_MINOR_BASE |
			    (path_hash(PATH_HASH_INIT, path, len) &
			     ROOT_DEV_MINOR_MASK));
}

/* Read the nearfs mounts of fd, an open /proc/self/mountinfo. */
static void read_mounts(int fd, struct mount_list *list)
{
	size_t len = 0;
	bool skipping = false;

	for (;;) {
		ssize_t n = read(fd, read_buf + len, sizeof(read_buf) - len);
		char *start = read_buf, *newline;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		while ((newline = memchr(start, '\n',
					 len - (size_t)(start - read_buf)))) {
			*newline = '\0';
			if (!skipping)
				add_mount(list, start);
			skipping = false;
			start = newline + 1;
		}
		len -= (size_t)(start - read_buf);
		memmove(read_buf, start, len);
		if (len == sizeof(read_buf)) {
			skipping = true;
			len = 0;
		}
	}
}

/* Read the mount table and the roots again, unless that happened less
 * than REFRESH_MS ago or another thread is at it.  Returns whether it
 * read them. */
static bool refresh(void)
{
	long long now = now_ms();
	int current, target, fd, saved_errno;
	unsigned odd;

	if (atomic_load(&current_list) >= 0 &&
	    now - atomic_load(&refreshed_ms) < REFRESH_MS)
		return false;
	if (atomic_flag_test_and_set(&refreshing))
		return false;
	saved_errno = errno;
	current = atomic_load(&current_list);
	target = current == 0 ? 1 : 0;
	odd = seq_write_begin(&lists[target].seq);
	lists[target].count = 0;
	lists[target].root_count = 0;
	lists[target].paths_used = 0;
	fd = sys_openat(AT_FDCWD, "/proc/self/mountinfo", O_RDONLY | O_CLOEXEC,
			0);
	if (fd >= 0) {
		read_mounts(fd, &lists[target]);
		sys_close(fd);
	} else {
		preload_debug("cannot read /proc/self/mountinfo: %s; no mount "
			      "is bypassed", strerror(errno));
	}
	roots_scan(add_root, &lists[target]);
	seq_write_end(&lists[target].seq, odd);
	atomic_store(&current_list, target);
	atomic_store(&refreshed_ms, now);
	atomic_flag_clear(&refreshing);
	errno = saved_errno;
	return true;
}

void mounts_init(void)
{
	(void)refresh();
}

void mounts_refresh(void)
{
	(void)refresh();
}

void mounts_after_fork(void)
{
	atomic_flag_clear(&refreshing);
}

/*
 * Run match() on a consistent copy of the current list and return what
 * it returns, or -ENOENT when there is no list or it kept changing.
 * match() must stay within the list's arrays whatever they contain,
 * since it may read them halfway through a refresh.
 */
static int search_list(int (*match)(const struct mount_list *, void *),
		       void *arg)
{
	for (int i = 0; i < SEQ_READ_ATTEMPTS; i++) {
		int index = atomic_load(&current_list), ret;
		struct mount_list *list;
		unsigned start;

		if (index < 0)
			return -ENOENT;
		list = &lists[index];
		if (!seq_read_begin(&list->seq, &start))
			continue;
		ret = match(list, arg);
		if (seq_read_valid(&list->seq, start))
			return ret;
	}
	return -ENOENT;
}

/* The path at offset (len bytes) in the paths of list, or NULL when a
 * refresh garbled the numbers. */
static const char *list_path(const struct mount_list *list, unsigned offset,
			     unsigned len)
{
	if (offset >= MOUNT_PATHS_SIZE || len >= MOUNT_PATHS_SIZE - offset)
		return NULL;
	return list->paths + offset;
}

/* The mount point of m, or NULL when a refresh garbled m. */
static const char *mount_path(const struct mount_list *list,
			      const struct nearfs_mount *m, size_t *len)
{
	*len = m->path_len;
	return list_path(list, m->path_offset, m->path_len);
}

static unsigned mount_count(const struct mount_list *list)
{
	return list->count < MOUNTS_MAX ? list->count : MOUNTS_MAX;
}

static unsigned root_count(const struct mount_list *list)
{
	return list->root_count < ROOTS_MAX ? list->root_count : ROOTS_MAX;
}

static int match_any_root(const struct mount_list *list, void *arg)
{
	return root_count(list) > 0 ? 0 : -ENOENT;
}

/* Find the root of target->path, the longest one, and fill the rest of
 * target from it. */
static int match_root(const struct mount_list *list, void *arg)
{
	struct nomount_target *t = arg;
	const struct nomount_root *best = NULL;
	const char *socket;

	for (unsigned i = 0; i < root_count(list); i++) {
		const struct nomount_root *r = &list->roots[i];
		const char *root = list_path(list, r->path_offset, r->path_len);

		if (root && (!best || r->path_len > best->path_len) &&
		    path_below(t->path, root, r->path_len))
			best = r;
	}
	if (!best)
		return -ENOENT;
	socket = list_path(list, best->socket_offset, best->socket_len);
	if (!socket || best->socket_len >= sizeof(t->socket))
		return -ENOENT;
	memcpy(t->socket, socket, best->socket_len);
	t->socket[best->socket_len] = '\0';
	t->root_len = best->path_len;
	t->dev = best->dev;
	return 0;
}

static int match_any(const struct mount_list *list, void *arg)
{
	return mount_count(list) > 0 ? 0 : -ENOENT;
}

static int match_prefix(const struct mount_list *list, void *arg)
{
	const char *path = arg;

	for (unsigned i = 0; i < mount_count(list); i++) {
		size_t len;
		const char *mnt = mount_path(list, &list->mounts[i], &len);

		if (!mnt)
			continue;
		/* A mount on "/" contains every absolute path. */
		if (len == 1)
			return 0;
		if (strncmp(path, mnt, len) == 0 &&
		    (path[len] == '/' || path[len] == '\0'))
			return 0;
	}
	return -ENOENT;
}

struct dev_query {
	dev_t dev;
	char *root;
	size_t root_size;
};

/* Copy the mount point of the mount of dev that shows the filesystem's
 * root, or "" when only mounts of a subdirectory show it. */
static int match_dev(const struct mount_list *list, void *arg)
{
	struct dev_query *q = arg;
	int ret = -ENOENT;

	for (unsigned i = 0; i < mount_count(list); i++) {
		const struct nearfs_mount *m = &list->mounts[i];
		size_t len;
		const char *mnt = mount_path(list, m, &len);

		if (!mnt || m->dev != q->dev)
			continue;
		q->root[0] = '\0';
		ret = 0;
		if (m->top && len < q->root_size) {
			memcpy(q->root, mnt, len);
			q->root[len] = '\0';
			return 0;
		}
	}
	return ret;
}

enum root_match {
	ROOT_NONE,	/* the path never reaches a root */
	ROOT_BELOW,	/* it ends at or below a root */
	ROOT_LEFT,	/* it enters a root and leaves it through ".." */
};

/*
 * Whether a path that does not end below a root enters one on its way:
 * only a ".." component can leave a root, so one of the prefixes before
 * them is then below the root.  t->path is overwritten.
 */
static bool enters_root(const char *base, const char *path,
			struct nomount_target *t)
{
	for (const char *dotdot = path_next_dotdot(path, path); dotdot;
	     dotdot = path_next_dotdot(path, dotdot + 2)) {
		if (path_normalize_prefix(base, path, (size_t)(dotdot - path),
					  t->path, sizeof(t->path)) >= 0 &&
		    search_list(match_root, t) == 0)
			return true;
	}
	return false;
}

/*
 * Match path, from dirfd, against the roots served without FUSE.  The
 * base of a relative path is the current directory or the directory
 * that a memfd of nomount_fd.c represents.  Other descriptors refer to
 * real directories, which the kernel resolves.  Unless it returns
 * ROOT_NONE, the normalized path is left in t->path.
 */
static enum root_match match_roots(int dirfd, const char *path,
				   struct nomount_target *t)
{
	char base[PATH_MAX];

	if (search_list(match_any_root, NULL) != 0)
		return ROOT_NONE;
	if (path[0] != '/') {
		if (dirfd == AT_FDCWD) {
			if (cwd_get(base, sizeof(base)) != 0)
				return ROOT_NONE;
		} else if (nomount_dir_path(dirfd, base, sizeof(base)) != 0) {
			return ROOT_NONE;
		}
	}
	if (path_normalize(base, path, t->path, sizeof(t->path)) < 0)
		return ROOT_NONE;
	if (search_list(match_root, t) == 0)
		return ROOT_BELOW;
	if (!enters_root(base, path, t))
		return ROOT_NONE;
	/* The kernel cannot resolve it, since the root does not exist on
	 * disk, so libc gets the normalized path. */
	path_normalize(base, path, t->path, sizeof(t->path));
	return ROOT_LEFT;
}

/* Classify *path against the current lists. */
static enum path_class classify(int dirfd, const char **path,
				struct nomount_target *t)
{
	switch (match_roots(dirfd, *path, t)) {
	case ROOT_BELOW:
		return PATH_NOMOUNT;
	case ROOT_LEFT:
		*path = t->path;
		break;
	case ROOT_NONE:
		break;
	}
	if ((*path)[0] != '/')
		return search_list(match_any, NULL) == 0 ? PATH_MAYBE :
							   PATH_OTHER;
	return search_list(match_prefix, (void *)*path) == 0 ? PATH_MOUNTED :
							       PATH_OTHER;
}

enum path_class mounts_classify_path(int dirfd, const char **path,
				     struct nomount_target *target)
{
	enum path_class class;

	if (!*path || (*path)[0] == '\0')
		return PATH_OTHER;
	class = classify(dirfd, path, target);
	if (class != PATH_OTHER || !refresh())
		return class;
	return classify(dirfd, path, target);
}

static bool is_on_fuse(int fd)
{
	struct statfs sfs;

	return fstatfs(fd, &sfs) == 0 &&
	       (unsigned long)sfs.f_type == FUSE_SUPER_MAGIC;
}

static int stat_fd(int fd, struct statx *stx)
{
	const unsigned mask = STATX_BASIC_STATS | STATX_BTIME | STATX_MNT_ID;
	__typeof__(&statx) real_statx = REAL(statx);

	if (real_statx)
		return real_statx(fd, "", AT_EMPTY_PATH, mask, stx);
	return sys_statx(fd, "", AT_EMPTY_PATH, mask, stx);
}

int mounts_check_fd(int fd, enum path_class class, struct statx *stx,
		    char *root, size_t root_size)
{
	struct dev_query q = { .root = root, .root_size = root_size };
	int ret;

	if (class == PATH_OTHER || class == PATH_NOMOUNT)
		return -ENOENT;
	if (class == PATH_MAYBE && !is_on_fuse(fd))
		return -ENOENT;
	if (stat_fd(fd, stx) != 0)
		return -errno;
	if (!S_ISREG(stx->stx_mode) || stx->stx_size == 0)
		return -ENOENT;
	q.dev = makedev(stx->stx_dev_major, stx->stx_dev_minor);
	ret = search_list(match_dev, &q);
	/* PATH_MAYBE was checked for FUSE above. */
	if (ret == -ENOENT && (class == PATH_MAYBE || is_on_fuse(fd))) {
		/* A mount made or replaced since the list was read. */
		refresh();
		ret = search_list(match_dev, &q);
	}
	return ret;
}
