/*
 * preload.h - the parts of libnearfs-preload.so that its files share.
 *
 * The library runs inside other programs.  So every function here keeps
 * errno as it found it, unless its comment states otherwise, and writes
 * nothing unless NEARFS_PRELOAD_DEBUG is set (the one exception is the
 * line of preload_warn_once()).  None takes a lock or allocates memory,
 * except for dlsym(3) in real_symbol() and the directory streams of
 * nomount_dir.c, which use malloc(3) as glibc's opendir(3) does.  See
 * docs/preload.md for what the library does.
 */
#ifndef NEARFS_PRELOAD_H
#define NEARFS_PRELOAD_H

#include <dirent.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

/* The functions the library interposes; everything else is hidden. */
#define PRELOAD_EXPORT __attribute__((visibility("default")))

/* Descriptors at or above this number are never swapped, so that the
 * table of swapped descriptors can be indexed by descriptor. */
#define PRELOAD_FD_MAX 1024

/* Interposed functions that glibc's headers do not declare (the
 * _FORTIFY_SOURCE entry points, and the stat entry points of programs
 * built before glibc 2.33). */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
int __fxstat(int ver, int fd, struct stat *st);
int __fxstat64(int ver, int fd, struct stat64 *st);
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st,
	       int flags);
int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st,
		 int flags);
int __xstat(int ver, const char *path, struct stat *st);
int __xstat64(int ver, const char *path, struct stat64 *st);
int __lxstat(int ver, const char *path, struct stat *st);
int __lxstat64(int ver, const char *path, struct stat64 *st);

/* Bytes of a Unix socket path, its NUL included. */
#define PRELOAD_SOCKET_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

/*
 * Sequence locks, for state that signal handlers and forked children
 * may read while its writer is stopped halfway.  The writer makes the
 * sequence odd while it changes the data.  A reader retries when the
 * sequence was odd or changed under it.  A writer stopped by fork(2)
 * leaves the sequence odd in the child, and the next writer makes it
 * even again.  Callers keep to one writer at a time.
 */
static inline unsigned seq_write_begin(_Atomic unsigned *seq)
{
	unsigned odd = atomic_load_explicit(seq, memory_order_relaxed) | 1;

	atomic_store_explicit(seq, odd, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	return odd;
}

static inline void seq_write_end(_Atomic unsigned *seq, unsigned odd)
{
	atomic_store_explicit(seq, odd + 1, memory_order_release);
}

/* Start a read; false when a writer is at work. */
static inline bool seq_read_begin(_Atomic unsigned *seq, unsigned *start)
{
	*start = atomic_load_explicit(seq, memory_order_acquire);
	return !(*start & 1);
}

/* Whether the data read since seq_read_begin() is whole. */
static inline bool seq_read_valid(_Atomic unsigned *seq, unsigned start)
{
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(seq, memory_order_relaxed) == start;
}

/* Attempts a reader makes before it gives up: the writer may be the
 * very thread that a signal handler interrupted. */
#define SEQ_READ_ATTEMPTS 64

/* ---- real.c: the next definition of each interposed function ---- */

#define PRELOAD_REAL_SYMBOLS(X) \
	X(open) X(open64) X(openat) X(openat64) \
	X(__open_2) X(__open64_2) X(__openat_2) X(__openat64_2) \
	X(creat) X(creat64) \
	X(fopen) X(fopen64) X(freopen) X(freopen64) X(fclose) \
	X(close) X(close_range) X(closefrom) \
	X(dup) X(dup2) X(dup3) X(fcntl) X(fcntl64) \
	X(fstat) X(fstat64) X(__fxstat) X(__fxstat64) \
	X(fstatat) X(fstatat64) X(__fxstatat) X(__fxstatat64) X(statx) \
	X(stat) X(stat64) X(lstat) X(lstat64) \
	X(__xstat) X(__xstat64) X(__lxstat) X(__lxstat64) \
	X(access) X(faccessat) X(eaccess) X(euidaccess) \
	X(opendir) X(fdopendir) X(readdir) X(readdir64) \
	X(readdir_r) X(readdir64_r) X(closedir) X(rewinddir) X(dirfd) \
	X(telldir) X(seekdir) \
	X(mkdir) X(mkdirat) X(unlink) X(unlinkat) X(rmdir) \
	X(rename) X(renameat) X(renameat2) X(truncate) X(truncate64) \
	X(fsync) X(fdatasync) \
	X(getxattr) X(lgetxattr) X(listxattr) X(llistxattr) \
	X(chdir) X(fchdir) \
	X(execve) X(execv) X(execvp) X(execvpe) X(execveat) X(fexecve)

enum real_symbol {
#define PRELOAD_REAL_ENUM(name) REAL_##name,
	PRELOAD_REAL_SYMBOLS(PRELOAD_REAL_ENUM)
#undef PRELOAD_REAL_ENUM
	REAL_SYMBOL_COUNT
};

void *real_symbol(enum real_symbol id);

/*
 * The definition of name that the library hides, typed like name, or
 * NULL while the calling thread is inside dlsym(3) itself: callers then
 * fall back to the sys_*() functions below.
 */
#define REAL(name) ((__typeof__(&name))real_symbol(REAL_##name))

/* Call the definition that name hides, or fallback while there is none
 * (see REAL()). */
#define CALL_REAL(name, args, fallback) __extension__ ({	\
	__typeof__(&name) real_fn_ = REAL(name);		\
	real_fn_ ? real_fn_ args : (fallback);			\
})

/* System calls made without any interposed function.  They return what
 * the libc wrapper would: -1 with errno set on failure. */
int sys_openat(int dirfd, const char *path, int flags, mode_t mode);
int sys_close(int fd);
int sys_dup3(int oldfd, int newfd, int flags);
long sys_fcntl(int fd, int cmd, long arg);
int sys_fstatat(int dirfd, const char *path, struct stat *st, int flags);
int sys_statx(int dirfd, const char *path, int flags, unsigned mask,
	      struct statx *stx);
int sys_close_range(unsigned first, unsigned last, int flags);
/* Returns -1 with errno ENOSYS: the fallback of functions that have no
 * single system call, such as opendir(3). */
int sys_missing(void);

/* ---- preload.c ---- */

/* Is NEARFS_PRELOAD_DEBUG set (and not "0")? */
bool preload_debug_enabled(void);
/* Write "nearfs-preload: MESSAGE\n" to stderr when debugging is on. */
void preload_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Write "nearfs-preload: MESSAGE\n" to stderr, debugging or not, the
 * first time this process calls it; later calls write nothing. */
void preload_warn_once(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
/* NEARFS_PRELOAD_SOCKET, the control socket to use for every mount
 * instead of the target of its control link, or NULL. */
const char *preload_socket_override(void);
/* NEARFS_PRELOAD_RUNDIR, the one folder to scan for roots served
 * without FUSE instead of the control socket folders, or NULL. */
const char *preload_rundir_override(void);
/* $XDG_RUNTIME_DIR as it was at load time, or NULL. */
const char *preload_runtime_dir(void);

/* ---- fdtable.c: descriptors the library tracks ---- */

enum swap_kind {
	SWAP_LENT,		/* a local copy in place of a FUSE descriptor */
	SWAP_NOMOUNT_READ,	/* a read-only local copy of a file served
				 * without FUSE */
	SWAP_NOMOUNT_WRITE,	/* a local file that its handle commits */
	SWAP_NOMOUNT_DIR,	/* a memfd that represents a directory (or an
				 * O_PATH open) served without FUSE */
	SWAP_HANDLE,		/* the library's own handle connection of a
				 * file open for writing */
};

struct swap_entry {
	enum swap_kind kind;
	dev_t local_dev;	/* what the descriptor really refers to */
	ino_t local_ino;
	int handle;		/* SWAP_NOMOUNT_WRITE: its handle connection */
	pid_t opener;		/* SWAP_NOMOUNT_WRITE: the process that opened
				 * the file, and commits it */
	struct statx attrs;	/* what a stat of the descriptor reports */
};

/*
 * Whether this process may change the table: false in the child of
 * vfork(2), which shares the parent's memory, and in a child that
 * skipped the fork handlers (_Fork(3), clone(2)).
 */
bool fdtable_owned(void);
/* Make the calling process the owner: at load time, and in the child
 * after fork(2). */
void fdtable_claim(void);
bool fdtable_is_swapped(int fd);
/* Whether fd is a copy that the daemon lent read-only (SWAP_LENT,
 * SWAP_NOMOUNT_READ) or a directory memfd, and still refers to it, so
 * that a reopen of it for writing must fail. */
bool fdtable_is_local_copy(int fd);
/* Copy the entry of fd into entry, when there is one, without checking
 * that fd still refers to what it describes. */
bool fdtable_peek(int fd, struct swap_entry *entry);
/* Copy the entry of fd into entry when fd still refers to what the
 * entry describes (st_dev and st_ino); costs one fstat. */
bool fdtable_lookup(int fd, struct swap_entry *entry);
void fdtable_set(int fd, const struct swap_entry *entry);
/* Forget fd, before it is closed. */
void fdtable_forget(int fd);
/* Forget every descriptor from first to last, both included. */
void fdtable_forget_range(unsigned first, unsigned last);
/* Make to report what from reports, after a dup of from to to.  The
 * entry of a handle is not copied: the new descriptor is the
 * program's. */
void fdtable_copy(int from, int to);
/* Whether an entry of kind SWAP_NOMOUNT_WRITE uses handle; skip is a
 * descriptor not to count. */
bool fdtable_handle_in_use(int handle, int skip);
/* Let the files that use handle use moved instead. */
void fdtable_move_handle(int handle, int moved);
/* Forget the entry of handle and return true, for one caller only, when
 * it is a handle entry; entry receives it. */
bool fdtable_take_handle(int handle, struct swap_entry *entry);
/* Call fn on each tracked descriptor of the given kind. */
void fdtable_each(enum swap_kind kind,
		  void (*fn)(int fd, const struct swap_entry *entry, void *arg),
		  void *arg);
/*
 * Replace the attributes a stat of fd returned with those of the entry,
 * when fd is tracked and the attributes are those of what it refers to
 * (st_dev and st_ino).  A file open for writing keeps its own size.  A
 * stale entry, such as one left by a close the library did not see,
 * changes nothing.
 */
void fdtable_fix_stat(int fd, struct stat *st);
void fdtable_fix_statx(int fd, struct statx *stx);
void statx_to_stat(const struct statx *stx, struct stat *st);

/* ---- mounts.c: which paths and descriptors are the library's ---- */

enum path_class {
	PATH_OTHER,	/* cannot be on a nearfs mount */
	PATH_MAYBE,	/* relative: the opened descriptor decides */
	PATH_MOUNTED,	/* absolute, below a nearfs mount point */
	PATH_NOMOUNT,	/* at or below a root served without FUSE */
};

/* A path at or below a root served without FUSE. */
struct nomount_target {
	char path[PATH_MAX];	/* absolute and normalized */
	size_t root_len;	/* the root is path[0..root_len) */
	char socket[PRELOAD_SOCKET_PATH_MAX];	/* its daemon's socket */
	dev_t dev;		/* the st_dev its files report */
};

/* The path inside the root, as requests name it: "/" for the root. */
static inline const char *target_inner(const struct nomount_target *t)
{
	return t->path[t->root_len] ? t->path + t->root_len : "/";
}

/*
 * The one place that decides, from a path alone, whether a call on it
 * may reach a nearfs mount or is served without FUSE.  For PATH_NOMOUNT
 * it fills target.  A relative path counts from dirfd: from the current
 * directory for AT_FDCWD, from the directory of a memfd that represents
 * one, and from any other descriptor it is PATH_MAYBE or PATH_OTHER.
 * A path that passes through a root and leaves it again ("ROOT/..")
 * cannot be resolved by the kernel, so *path then points to its
 * normalized form in target, which the caller hands to libc instead.
 */
enum path_class mounts_classify_path(int dirfd, const char **path,
				     struct nomount_target *target);
/*
 * Check that fd, opened by a path of the given class, is a non-empty
 * regular file on a nearfs mount.  Fills stx with its attributes and root
 * with the mount point of the mount's root directory (root_size bytes).
 * Returns 0, or -errno (-ENOENT: not on a nearfs mount).
 */
int mounts_check_fd(int fd, enum path_class class, struct statx *stx,
		    char *root, size_t root_size);
/* Read the mount table and the roots for the first time, at load time. */
void mounts_init(void);
/* Read them again unless that happened less than a second ago: after a
 * daemon was found gone. */
void mounts_refresh(void);
/* Let the child of fork(2) refresh the list even when the fork
 * interrupted a refresh. */
void mounts_after_fork(void);

/* ---- roots.c: the roots served without FUSE ---- */

typedef void root_found_fn(void *arg, const char *root, size_t root_len,
			   const char *socket);
/* Call found for each root that a <pid>.nomount file in a control
 * socket folder names, with the path of the <pid>.sock beside it. */
void roots_scan(root_found_fn *found, void *arg);

/* ---- cwd.c: the current directory, for relative paths ---- */

/* Copy the current directory into buf (size bytes); -errno when it is
 * unknown, such as a directory outside the process's root. */
int cwd_get(char *buf, size_t size);
/* Forget the copy, after chdir(2) or fchdir(2) succeeded. */
void cwd_changed(void);
/* Let the child of fork(2) store a copy even when the fork interrupted
 * a store. */
void cwd_after_fork(void);

/* ---- lend.c: the request for a local copy ---- */

/*
 * Ask the daemon of the mount at root ("" when no mount shows the
 * mount's root directory) for a local copy of the file open at fd, whose
 * attributes through the mount are in entry->attrs.  Returns a read-only
 * descriptor of the copy and sets entry->local_dev and local_ino, or
 * returns -1 when the daemon lends nothing.  name is the path for debug
 * messages.
 */
int lend_request(const char *root, int fd, const char *name,
		 struct swap_entry *entry);

/* ---- sock.c: connections to a daemon ---- */

/* Descriptors a reply may carry before it counts as invalid. */
#define SOCK_FDS_MAX 4

/*
 * Connect to the Unix socket at path.  The socket is FD_CLOEXEC and
 * never 0, 1 or 2.  timeout_s limits the connect and each send and
 * receive (0: no limit).  Returns the socket, or -errno.
 */
int sock_connect(const char *path, int timeout_s);
int sock_send_all(int sock, const char *buf, size_t len);
/* Keep the first descriptor msg carries in *fd when *fd is -1, close
 * the others and set *extra_fds for them. */
void sock_take_fds(struct msghdr *msg, int *fd, bool *extra_fds);

/* Reply lines of one connection, and the descriptors that came with
 * them (received FD_CLOEXEC). */
struct line_reader {
	int sock;
	int fd;		/* the first descriptor received, or -1 */
	bool extra_fds;	/* more than one arrived, or some were cut off */
	size_t start;	/* the first byte not returned yet */
	size_t len;	/* bytes in buf */
	char buf[4096];
};

void reader_init(struct line_reader *r, int sock);
/*
 * Point *line at the next line, without its newline and NUL-terminated;
 * it stays valid until the next call.  Returns its length, -EPROTO when
 * the connection ends first, -EMSGSIZE for a line longer than the
 * buffer, or another -errno.
 */
int reader_next_line(struct line_reader *r, char **line);

/* ---- nomount.c: the requests of paths served without FUSE ---- */

/* An entry of a path-list reply; name is decoded. */
struct nomount_entry {
	mode_t mode;
	uint64_t size;
	struct timespec mtime;
	const char *name;
};

typedef int nomount_entry_fn(void *arg, const struct nomount_entry *entry);

/*
 * Each request returns 0 or -errno: the ERRNO of an "err ERRNO" reply,
 * or -EIO when the daemon is gone or replies what protocol.h does not
 * define.
 */
int nomount_stat(const struct nomount_target *t, struct statx *stx);
/* Call fn for each entry of the directory at t, until fn returns
 * non-zero, which the call then returns. */
int nomount_list(const struct nomount_target *t, nomount_entry_fn *fn,
		 void *arg);
/*
 * Open the file at t.  Returns a descriptor of its local copy (FD_CLOEXEC)
 * and sets *handle to the handle connection for an open for writing, or
 * to -1.
 */
int nomount_open(const struct nomount_target *t, int flags, mode_t mode,
		 int *handle);
int nomount_mkdir(const struct nomount_target *t, mode_t mode);
int nomount_unlink(const struct nomount_target *t);
int nomount_rmdir(const struct nomount_target *t);
int nomount_rename(const struct nomount_target *from,
		   const struct nomount_target *to);
int nomount_truncate(const struct nomount_target *t, off_t size);
/* Send command ("fsync" or "close") on a handle connection. */
int nomount_commit(int handle, const char *command);
/* Set the st_dev and st_ino that the library reports for the file at t,
 * and the mask of what the other fields hold. */
void nomount_identify(const struct nomount_target *t, struct statx *stx);
/* The process's umask, for modes that the daemon creates with. */
mode_t nomount_umask(void);

/* ---- nomount_fd.c: descriptors of paths served without FUSE ---- */

/* open(2) of t; returns the descriptor, or -1 with errno set. */
int nomount_open_fd(const struct nomount_target *t, int flags, mode_t mode);
/* Copy the path of the directory that the memfd fd represents into buf;
 * -ENOENT when fd is no such memfd. */
int nomount_dir_path(int fd, char *buf, size_t size);
/* Take the entry of fd when fd is a file open for writing; the caller
 * closes fd and then calls nomount_fd_release(). */
bool nomount_fd_take(int fd, struct swap_entry *entry);
/* Commit the file of entry when no descriptor uses its handle any more;
 * returns 0 or -errno. */
int nomount_fd_release(const struct swap_entry *entry);
/* Whether fd is a handle connection of the library. */
bool nomount_fd_is_handle(int fd);
/* Move the handle at fd to another number (at or above min); false
 * when that fails. */
bool nomount_fd_move_handle(int fd, int min);
/* fsync(2) or fdatasync(2) of fd, a file open for writing: commit it.
 * Returns 1 with *ret set when fd is such a file, else 0. */
int nomount_fd_sync(int fd, int *ret);
/* Before close_range(first, last): commit the files in the range and
 * move the handles that files outside it still use. */
void nomount_fd_close_range(unsigned first, unsigned last);
/*
 * Before an exec: let the handles of files that the new program
 * inherits survive it too, so that the daemon commits them when the
 * last holder closes them.  Stores what it changed in changed (max
 * entries) and returns the count, for nomount_fd_exec_failed().
 */
int nomount_fd_before_exec(int *changed, int max);
void nomount_fd_exec_failed(const int *changed, int count);

/* ---- nomount_calls.c: the functions that take a path ---- */

/*
 * stat(2) of (dirfd, *path): returns 1 with *ret set when the path is
 * served without FUSE, else 0 with *path as mounts_classify_path() left
 * it in t.
 */
int nomount_served_stat(int dirfd, const char **path,
			struct nomount_target *t, struct stat *st, int *ret);
int nomount_served_statx(int dirfd, const char **path,
			 struct nomount_target *t, struct statx *stx, int *ret);

/* ---- nomount_dir.c: directory streams of paths served without FUSE ---- */

DIR *nomount_opendir(const struct nomount_target *t);
/* fdopendir(3) of the memfd fd of a directory; NULL with errno when fd
 * is no such memfd. */
DIR *nomount_fdopendir(int fd);
/* Whether dir is a stream of nomount_opendir() or nomount_fdopendir(). */
bool nomount_is_dir(DIR *dir);
struct dirent64 *nomount_readdir(DIR *dir);
int nomount_closedir(DIR *dir);
void nomount_rewinddir(DIR *dir);
int nomount_dirfd(DIR *dir);
long nomount_telldir(DIR *dir);
void nomount_seekdir(DIR *dir, long pos);

#endif
