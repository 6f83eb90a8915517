/*
 * mounts.c - which paths and descriptors are on a nearfs mount.
 *
 * The library keeps the nearfs mounts of /proc/self/mountinfo (type
 * fuse.nearfs) in a list, so that the open of a path on another
 * filesystem costs no system call:
 *
 *  - an absolute path is compared with the mount points;
 *  - a relative path, or one relative to a directory descriptor, cannot
 *    be placed without resolving it, so the descriptor it opened is
 *    checked: fstatfs(2) for FUSE, then its st_dev against the list.
 *    This costs nothing while the list is empty.
 *
 * The list is read again, at most once per REFRESH_MS, in three cases.
 * An absolute path is not below any mount point, a relative open happens
 * while the list is empty, or a descriptor on FUSE has an st_dev that is
 * not in the list.  So a mount made after the program started is found
 * within REFRESH_MS of its first use.
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
#include "preload.h"

/* f_type of fstatfs(2) on FUSE (fs/fuse/inode.c in Linux). */
#define FUSE_SUPER_MAGIC 0x65735546
#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x00001000U
#endif

#define REFRESH_MS 1000
/* nearfs mounts kept, and the bytes of their mount points in all; the
 * mounts past these limits are not bypassed. */
#define MOUNTS_MAX 32
#define MOUNT_PATHS_SIZE (16 * 1024)
/* Maximum length of a line of /proc/self/mountinfo; longer lines are
 * skipped. */
#define LINE_MAX_BYTES (3 * PATH_MAX)

struct nearfs_mount {
	dev_t dev;
	unsigned path_offset;	/* mount point, in paths[] */
	unsigned path_len;
	bool top;		/* the mount shows the filesystem's root */
};

struct mount_list {
	_Atomic unsigned seq;
	unsigned count;
	struct nearfs_mount mounts[MOUNTS_MAX];
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

static void add_mount(struct mount_list *list, char *line)
{
	struct mountinfo_line info;
	struct nearfs_mount *m;
	size_t len, used = 0;

	if (mountinfo_parse_line(line, &info) != 0 ||
	    strcmp(info.type, MOUNTINFO_NEARFS_TYPE) != 0)
		return;
	if (list->count > 0) {
		m = &list->mounts[list->count - 1];
		used = m->path_offset + m->path_len + 1;
	}
	len = strlen(info.mountpoint);
	if (list->count == MOUNTS_MAX || used + len + 1 > MOUNT_PATHS_SIZE) {
		preload_debug("more nearfs mounts than the %d (or %d bytes of "
			      "mount points) it tracks; %s is not bypassed",
			      MOUNTS_MAX, MOUNT_PATHS_SIZE, info.mountpoint);
		return;
	}
	m = &list->mounts[list->count++];
	m->dev = makedev(info.major, info.minor);
	m->path_offset = (unsigned)used;
	m->path_len = (unsigned)len;
	m->top = strcmp(info.root, "/") == 0;
	memcpy(list->paths + used, info.mountpoint, len + 1);
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

/* Read the mount table again, unless it was read less than REFRESH_MS
 * ago or another thread is at it. */
static void refresh(void)
{
	long long now = now_ms();
	int current, target, fd, saved_errno;
	unsigned odd;

	if (atomic_load(&current_list) >= 0 &&
	    now - atomic_load(&refreshed_ms) < REFRESH_MS)
		return;
	if (atomic_flag_test_and_set(&refreshing))
		return;
	saved_errno = errno;
	current = atomic_load(&current_list);
	target = current == 0 ? 1 : 0;
	odd = seq_write_begin(&lists[target].seq);
	lists[target].count = 0;
	fd = sys_openat(AT_FDCWD, "/proc/self/mountinfo", O_RDONLY | O_CLOEXEC,
			0);
	if (fd >= 0) {
		read_mounts(fd, &lists[target]);
		sys_close(fd);
	} else {
		preload_debug("cannot read /proc/self/mountinfo: %s; no mount "
			      "is bypassed", strerror(errno));
	}
	seq_write_end(&lists[target].seq, odd);
	atomic_store(&current_list, target);
	atomic_store(&refreshed_ms, now);
	atomic_flag_clear(&refreshing);
	errno = saved_errno;
}

void mounts_init(void)
{
	refresh();
}

void mounts_refresh(void)
{
	refresh();
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

/* The mount point of m, or NULL when a refresh garbled m. */
static const char *mount_path(const struct mount_list *list,
			      const struct nearfs_mount *m, size_t *len)
{
	if (m->path_offset >= MOUNT_PATHS_SIZE ||
	    m->path_len >= MOUNT_PATHS_SIZE - m->path_offset)
		return NULL;
	*len = m->path_len;
	return list->paths + m->path_offset;
}

static unsigned mount_count(const struct mount_list *list)
{
	return list->count < MOUNTS_MAX ? list->count : MOUNTS_MAX;
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

/*
 * The one place that decides, from a path alone, whether an open of it
 * may reach a nearfs mount.  dirfd is unused for now: a relative path
 * is placed by the descriptor it opened.
 */
enum path_class mounts_classify_path(int dirfd, const char *path)
{
	if (!path || path[0] == '\0')
		return PATH_OTHER;
	if (path[0] != '/') {
		if (search_list(match_any, NULL) == 0)
			return PATH_MAYBE;
		refresh();
		return search_list(match_any, NULL) == 0 ? PATH_MAYBE :
							   PATH_OTHER;
	}
	if (search_list(match_prefix, (void *)path) == 0)
		return PATH_MOUNTED;
	refresh();
	return search_list(match_prefix, (void *)path) == 0 ? PATH_MOUNTED :
							      PATH_OTHER;
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

	if (class == PATH_OTHER)
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
