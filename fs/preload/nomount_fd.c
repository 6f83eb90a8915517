/*
 * nomount_fd.c - descriptors of paths served without FUSE.
 *
 * An open of a file gets a descriptor of its local copy from the daemon
 * (nomount_open()).  An open for writing also keeps the request's
 * connection as the file's handle: "close" on it commits the file when
 * the last descriptor of the file closes, in the process that opened
 * it, and "fsync" commits it at fsync(2).  The handle is FD_CLOEXEC,
 * never 0, 1 or 2, and has an entry of kind SWAP_HANDLE in the table,
 * so that the program cannot close or replace it by accident.
 *
 * A directory (or an O_PATH open) cannot be opened at all, so it gets a
 * sealed memfd that contains its path and represents it.  The *at()
 * functions resolve relative paths from that path, fdopendir(3) lists
 * it, and its table entry reports the directory's attributes.  Other
 * uses fail as the kernel fails them on a memfd, getdents(2) with
 * ENOTDIR for example.
 *
 * A child of fork(2) inherits the descriptors and the handles but
 * commits nothing: when it closes them, only its copies go.  Before an
 * exec, the handle of a file that the new program inherits is made to
 * survive the exec as well, so that the daemon commits the file when
 * the last process with the handle closes it (protocol.h), which
 * is after the new program's writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"

#define DIR_MEMFD_NAME "nearfs-dir"
/* The open flags that the daemon acts on.  The others are properties of
 * the descriptor, which the library sets itself. */
#define SENT_FLAGS (O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND)

/* Set while a command is on its way on the handle at that number, so
 * that two threads never interleave requests on one connection. */
static atomic_flag handle_busy[PRELOAD_FD_MAX];

/* Send command on handle, one thread at a time, and return what
 * nomount_commit() returns. */
static int commit(int handle, const char *command)
{
	int ret;

	while (atomic_flag_test_and_set(&handle_busy[handle]))
		sched_yield();
	ret = nomount_commit(handle, command);
	atomic_flag_clear(&handle_busy[handle]);
	return ret;
}

/* Fill entry with what fd refers to. */
static int entry_for(int fd, enum swap_kind kind, struct swap_entry *entry)
{
	struct stat st;

	if (sys_fstatat(fd, "", &st, AT_EMPTY_PATH) != 0)
		return -errno;
	entry->kind = kind;
	entry->local_dev = st.st_dev;
	entry->local_ino = st.st_ino;
	entry->handle = -1;
	entry->opener = getpid();
	return 0;
}

static int set_cloexec(int fd, int flags)
{
	if (!(flags & O_CLOEXEC) && sys_fcntl(fd, F_SETFD, 0) < 0)
		return -errno;
	return 0;
}

/* Create the memfd that represents the directory at t, and return it. */
static int open_dir_memfd(const struct nomount_target *t,
			 const struct statx *stx, int flags)
{
	const unsigned seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW |
			       F_SEAL_WRITE;
	size_t len = strlen(t->path);
	struct swap_entry entry;
	int fd, ret;

	fd = (int)syscall(SYS_memfd_create, DIR_MEMFD_NAME,
			  MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (fd >= PRELOAD_FD_MAX) {
		sys_close(fd);
		return -EMFILE;
	}
	/* Sealed, so that a write(2) of the program cannot change it. */
	ret = pwrite(fd, t->path, len, 0) == (ssize_t)len &&
	      sys_fcntl(fd, F_ADD_SEALS, seals) == 0 ? 0 : -EIO;
	if (ret == 0)
		ret = set_cloexec(fd, flags);
	if (ret == 0)
		ret = entry_for(fd, SWAP_NOMOUNT_DIR, &entry);
	if (ret) {
		sys_close(fd);
		return ret;
	}
	entry.attrs = *stx;
	fdtable_set(fd, &entry);
	return fd;
}

/* Whether fd is tracked with a valid entry of the given kind.  Only
 * entries of that kind cost an fstat. */
static bool lookup_kind(int fd, enum swap_kind kind, struct swap_entry *entry)
{
	return fdtable_peek(fd, entry) && entry->kind == kind &&
	       fdtable_lookup(fd, entry) && entry->kind == kind;
}

/* Whether handle is a handle connection of the library, with entry. */
static bool lookup_handle(int handle, struct swap_entry *entry)
{
	return lookup_kind(handle, SWAP_HANDLE, entry);
}

int nomount_dir_path(int fd, char *buf, size_t size)
{
	struct swap_entry entry;
	ssize_t n;
	int saved_errno = errno;

	if (!lookup_kind(fd, SWAP_NOMOUNT_DIR, &entry))
		return -ENOENT;
	if (!S_ISDIR(entry.attrs.stx_mode))
		return -ENOTDIR;
	n = pread(fd, buf, size - 1, 0);
	errno = saved_errno;
	if (n <= 0 || (size_t)n == size - 1)
		return -ENOENT;
	buf[n] = '\0';
	return 0;
}

/*
 * Give fd, a descriptor of the local file, the access mode, status
 * flags and FD_CLOEXEC that flags request.  The daemon lends a file open
 * for writing read-write, so O_WRONLY reopens it through /proc.  Without
 * /proc the descriptor stays read-write.
 */
static int finish_fd(int fd, int flags, bool writable)
{
	int access = flags & O_ACCMODE;
	long status = flags & (O_APPEND | O_NONBLOCK);
	char proc[40];
	int reopened;

	if (writable && access != O_RDWR) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		reopened = sys_openat(AT_FDCWD, proc,
				      access | (int)status | O_CLOEXEC, 0);
		if (reopened >= 0) {
			int ret = sys_dup3(reopened, fd, O_CLOEXEC);

			sys_close(reopened);
			if (ret < 0)
				return -errno;
			status = 0;
		}
	}
	if (status && sys_fcntl(fd, F_SETFL, status) < 0)
		return -errno;
	return set_cloexec(fd, flags);
}

/*
 * Give the file the number that open(2) would have returned: the lowest
 * one that is free or that the request took.  The file arrived while the
 * request's connection held a number, and the handle of a file open for
 * writing may still hold the lower one, so the handle moves out of the
 * way.  On failure the numbers stay as they are.
 */
static void renumber(int *fd, int *handle, int flags)
{
	int dup_cmd = (flags & O_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD;
	int low, moved;

	if (*handle >= 0 && *handle < *fd) {
		moved = (int)sys_fcntl(*handle, F_DUPFD_CLOEXEC,
				       STDERR_FILENO + 1);
		if (moved < 0)
			return;
		/* dup3 closes the old copy of the handle. */
		if (sys_dup3(*fd, *handle, flags & O_CLOEXEC) < 0) {
			sys_close(moved);
			return;
		}
		sys_close(*fd);
		*fd = *handle;
		*handle = moved;
		return;
	}
	low = (int)sys_fcntl(*fd, dup_cmd, 0);
	if (low < 0)
		return;
	if (low < *fd) {
		sys_close(*fd);
		*fd = low;
	} else {
		sys_close(low);
	}
}

/* The attributes that the file at t, open at fd, reports. */
static void file_attrs(const struct nomount_target *t, int fd,
		       struct statx *stx)
{
	if (nomount_stat(t, stx) == 0 && S_ISREG(stx->stx_mode))
		return;
	/* Removed or replaced since the open: report the local copy. */
	if (sys_statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, stx) != 0)
		memset(stx, 0, sizeof(*stx));
	nomount_identify(t, stx);
}

/* Enter fd, the local file of t, and its handle in the table. */
static int track_file(const struct nomount_target *t, int fd, int handle)
{
	struct swap_entry entry, handle_entry;
	int ret;

	if (handle >= 0 && (fd >= PRELOAD_FD_MAX || handle >= PRELOAD_FD_MAX))
		return -EMFILE;
	ret = entry_for(fd, handle >= 0 ? SWAP_NOMOUNT_WRITE :
					 SWAP_NOMOUNT_READ, &entry);
	if (ret == 0 && handle >= 0)
		ret = entry_for(handle, SWAP_HANDLE, &handle_entry);
	if (ret)
		return ret;
	file_attrs(t, fd, &entry.attrs);
	if (handle >= 0) {
		entry.handle = handle;
		memset(&handle_entry.attrs, 0, sizeof(handle_entry.attrs));
		fdtable_set(handle, &handle_entry);
	}
	/* A read-only copy at 1024 or above reports its own attributes. */
	fdtable_set(fd, &entry);
	return 0;
}

static int open_file(const struct nomount_target *t, int flags, mode_t mode)
{
	bool writable = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
	int sent = flags & SENT_FLAGS, handle, fd, ret;
	struct statx stx;

	/* Linux truncates at O_RDONLY | O_TRUNC, so that is an open for
	 * writing too. */
	if (writable && (sent & O_ACCMODE) == O_RDONLY)
		sent = (sent & ~O_ACCMODE) | O_RDWR;
	if (flags & O_CREAT)
		mode &= 07777 & ~nomount_umask();
	else
		mode = 0;
	fd = nomount_open(t, sent, mode, &handle);
	if (fd == -EISDIR && !writable) {
		ret = nomount_stat(t, &stx);
		if (ret)
			return ret;
		return S_ISDIR(stx.stx_mode) ? open_dir_memfd(t, &stx, flags) :
					       -EISDIR;
	}
	if (fd < 0)
		return fd;
	ret = finish_fd(fd, flags, writable);
	if (ret == 0)
		renumber(&fd, &handle, flags);
	if (ret == 0 && fdtable_owned())
		ret = track_file(t, fd, handle);
	if (ret) {
		sys_close(fd);
		if (handle >= 0)
			sys_close(handle);
		return ret;
	}
	return fd;
}

static int open_fd(const struct nomount_target *t, int flags, mode_t mode)
{
	struct statx stx;
	int ret;

	if ((flags & O_TMPFILE) == O_TMPFILE)
		return -EOPNOTSUPP;
	if (!(flags & (O_DIRECTORY | O_PATH)))
		return open_file(t, flags, mode);
	ret = nomount_stat(t, &stx);
	if (ret)
		return ret;
	if ((flags & O_DIRECTORY) && !S_ISDIR(stx.stx_mode))
		return -ENOTDIR;
	return open_dir_memfd(t, &stx, flags);
}

int nomount_open_fd(const struct nomount_target *t, int flags, mode_t mode)
{
	int saved_errno = errno;
	int fd = open_fd(t, flags, mode);

	if (fd < 0) {
		preload_debug("%s: open without FUSE failed: %s", t->path,
			      strerror(-fd));
		errno = -fd;
		return -1;
	}
	preload_debug("%s: fd %d opened without FUSE", t->path, fd);
	errno = saved_errno;
	return fd;
}

bool nomount_fd_is_handle(int fd)
{
	struct swap_entry entry;

	return lookup_handle(fd, &entry);
}

bool nomount_fd_take(int fd, struct swap_entry *entry)
{
	if (!lookup_kind(fd, SWAP_NOMOUNT_WRITE, entry) || !fdtable_owned())
		return false;
	fdtable_forget(fd);
	return true;
}

int nomount_fd_release(const struct swap_entry *entry)
{
	struct swap_entry handle_entry;
	int handle = entry->handle, ret = 0;

	if (fdtable_handle_in_use(handle, -1))
		return 0;
	if (!lookup_handle(handle, &handle_entry)) {
		preload_debug("the handle connection %d of a file open for "
			      "writing was closed behind the library's back; "
			      "the daemon committed the file then", handle);
		return -EIO;
	}
	/* Another thread that closed a dup of the file commits it. */
	if (!fdtable_take_handle(handle, &handle_entry))
		return 0;
	if (entry->opener == getpid())
		ret = commit(handle, "close");
	sys_close(handle);
	return ret;
}

int nomount_fd_sync(int fd, int *ret)
{
	struct swap_entry entry, handle_entry;
	int err;

	if (!lookup_kind(fd, SWAP_NOMOUNT_WRITE, &entry) ||
	    entry.opener != getpid())
		return 0;
	if (!lookup_handle(entry.handle, &handle_entry)) {
		*ret = -1;
		errno = EIO;
		return 1;
	}
	/* The daemon makes the file durable by its write mode. */
	err = commit(entry.handle, "fsync");
	*ret = err ? -1 : 0;
	if (err)
		errno = -err;
	return 1;
}

bool nomount_fd_move_handle(int fd, int min)
{
	int moved = (int)sys_fcntl(fd, F_DUPFD_CLOEXEC, min);

	if (moved < 0)
		return false;
	if (moved >= PRELOAD_FD_MAX) {
		sys_close(moved);
		return false;
	}
	fdtable_move_handle(fd, moved);
	return true;
}

struct range {
	unsigned first, last;
};

/* Close the file at fd when it lies in the range, and commit it. */
static void close_in_range(int fd, const struct swap_entry *entry, void *arg)
{
	const struct range *range = arg;
	struct swap_entry taken;

	if ((unsigned)fd < range->first || (unsigned)fd > range->last ||
	    !nomount_fd_take(fd, &taken))
		return;
	sys_close(fd);
	/* close_range(2) has no way to report it. */
	(void)nomount_fd_release(&taken);
}

/* Move the handle at fd out of the range when a file still uses it. */
static void move_out_of_range(int fd, const struct swap_entry *entry,
			      void *arg)
{
	const struct range *range = arg;

	if ((unsigned)fd < range->first || (unsigned)fd > range->last ||
	    !fdtable_handle_in_use(fd, -1))
		return;
	if (range->last >= PRELOAD_FD_MAX - 1 ||
	    !nomount_fd_move_handle(fd, (int)range->last + 1))
		preload_debug("close_range(%u, %u) closes the handle "
			      "connection %d of a file open for writing; the "
			      "daemon commits the file now", range->first,
			      range->last, fd);
}

void nomount_fd_close_range(unsigned first, unsigned last)
{
	struct range range = { first, last };

	fdtable_each(SWAP_NOMOUNT_WRITE, close_in_range, &range);
	fdtable_each(SWAP_HANDLE, move_out_of_range, &range);
}

struct exec_changes {
	int *changed;
	int max, count;
};

/* Let the handle of fd survive the exec when fd does. */
static void keep_for_exec(int fd, const struct swap_entry *entry, void *arg)
{
	struct exec_changes *changes = arg;
	struct swap_entry checked, handle_entry;
	long fd_flags, handle_flags;

	if (changes->count == changes->max ||
	    !lookup_kind(fd, SWAP_NOMOUNT_WRITE, &checked) ||
	    !lookup_handle(checked.handle, &handle_entry))
		return;
	fd_flags = sys_fcntl(fd, F_GETFD, 0);
	handle_flags = sys_fcntl(checked.handle, F_GETFD, 0);
	if (fd_flags < 0 || (fd_flags & FD_CLOEXEC) || handle_flags < 0 ||
	    !(handle_flags & FD_CLOEXEC))
		return;
	if (sys_fcntl(checked.handle, F_SETFD, 0) == 0)
		changes->changed[changes->count++] = checked.handle;
}

int nomount_fd_before_exec(int *changed, int max)
{
	struct exec_changes changes = { changed, max, 0 };
	int saved_errno = errno;

	fdtable_each(SWAP_NOMOUNT_WRITE, keep_for_exec, &changes);
	errno = saved_errno;
	return changes.count;
}

void nomount_fd_exec_failed(const int *changed, int count)
{
	int saved_errno = errno;

	for (int i = 0; i < count; i++)
		sys_fcntl(changed[i], F_SETFD, FD_CLOEXEC);
	errno = saved_errno;
}
