/*
 * preload.c - the functions libnearfs-preload.so interposes that open,
 * close, duplicate and stat descriptors.
 *
 * A read-only open of a regular file on a nearfs mount goes through FUSE
 * as usual.  Then the library requests a descriptor of the complete
 * local copy from the daemon and puts it in place of the FUSE
 * descriptor, with the same number, offset, status flags and FD_CLOEXEC
 * (swap_fd()).
 * When the daemon lends nothing, the FUSE descriptor stays.  The stat
 * functions report the FUSE file's attributes for a swapped descriptor,
 * and close, dup and fclose keep the table of swapped descriptors
 * (fdtable.c) up to date.  An open of a path served without FUSE goes to
 * nomount_fd.c instead of libc, and close, dup and fclose commit the
 * files it opened for writing.  The functions that take a path are in
 * nomount_calls.c.  docs/preload.md describes the limits.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "preload.h"

/* fstat64() and fstat() share the code; on 64-bit Linux the two
 * structures are one layout. */
_Static_assert(sizeof(struct stat) == sizeof(struct stat64),
	       "struct stat64 differs from struct stat: a 64-bit build is "
	       "required");

/* The mode argument of an open(2) of flags, from the caller's va_list
 * that starts after last. */
#define OPEN_MODE(flags, last) __extension__ ({		\
	mode_t mode_ = 0;					\
	if (open_needs_mode(flags)) {				\
		va_list ap_;					\
		va_start(ap_, last);				\
		mode_ = (mode_t)va_arg(ap_, int);		\
		va_end(ap_);					\
	}							\
	mode_;							\
})

/* ---- settings and debug messages ---- */

static _Atomic bool config_read;
static bool debug_enabled;
static char socket_override[PRELOAD_SOCKET_PATH_MAX];
static char rundir_override[PATH_MAX];
static char runtime_dir[PATH_MAX];

/* Copy the variable name into buf, when it is set and fits; returns
 * false when it is set but too long. */
static bool copy_variable(const char *name, char *buf, size_t size)
{
	const char *value = secure_getenv(name);

	if (!value || strlen(value) >= size)
		return !value;
	strcpy(buf, value);
	return true;
}

static void read_config(void)
{
	const char *value;
	bool socket_fits, rundir_fits;

	if (atomic_load_explicit(&config_read, memory_order_acquire))
		return;
	value = secure_getenv("NEARFS_PRELOAD_DEBUG");
	debug_enabled = value && *value && strcmp(value, "0") != 0;
	socket_fits = copy_variable("NEARFS_PRELOAD_SOCKET", socket_override,
				    sizeof(socket_override));
	rundir_fits = copy_variable("NEARFS_PRELOAD_RUNDIR", rundir_override,
				    sizeof(rundir_override));
	copy_variable("XDG_RUNTIME_DIR", runtime_dir, sizeof(runtime_dir));
	atomic_store_explicit(&config_read, true, memory_order_release);
	if (!socket_fits)
		preload_debug("NEARFS_PRELOAD_SOCKET is longer than the %zu "
			      "bytes of a socket path; ignored",
			      sizeof(socket_override) - 1);
	if (!rundir_fits)
		preload_debug("NEARFS_PRELOAD_RUNDIR is longer than the %zu "
			      "bytes of a path; ignored",
			      sizeof(rundir_override) - 1);
}

bool preload_debug_enabled(void)
{
	read_config();
	return debug_enabled;
}

const char *preload_socket_override(void)
{
	read_config();
	return socket_override[0] ? socket_override : NULL;
}

const char *preload_rundir_override(void)
{
	read_config();
	return rundir_override[0] ? rundir_override : NULL;
}

const char *preload_runtime_dir(void)
{
	read_config();
	return runtime_dir[0] ? runtime_dir : NULL;
}

/* Write "nearfs-preload: MESSAGE\n" to stderr in one write(2). */
static void write_message(const char *fmt, va_list ap)
{
	static const char prefix[] = "nearfs-preload: ";
	char line[1024];
	int saved_errno = errno;
	size_t len = sizeof(prefix) - 1;
	int n;

	memcpy(line, prefix, len);
	n = vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
	if (n < 0)
		n = 0;
	len += (size_t)n < sizeof(line) - len - 1 ? (size_t)n :
						    sizeof(line) - len - 2;
	line[len++] = '\n';
	if (write(STDERR_FILENO, line, len) < 0) {
		/* Nowhere left to report it. */
	}
	errno = saved_errno;
}

void preload_debug(const char *fmt, ...)
{
	va_list ap;

	if (!preload_debug_enabled())
		return;
	va_start(ap, fmt);
	write_message(fmt, ap);
	va_end(ap);
}

void preload_warn_once(const char *fmt, ...)
{
	/* The pid that wrote it: a child of fork(2) is a process of its
	 * own and writes its own line. */
	static _Atomic pid_t warned;
	pid_t pid = getpid(), before = atomic_load(&warned);
	va_list ap;

	if (before == pid ||
	    !atomic_compare_exchange_strong(&warned, &before, pid))
		return;
	va_start(ap, fmt);
	write_message(fmt, ap);
	va_end(ap);
}

static void after_fork_in_child(void)
{
	fdtable_claim();
	mounts_after_fork();
	cwd_after_fork();
}

__attribute__((constructor)) static void preload_init(void)
{
	read_config();
	fdtable_claim();
	mounts_init();
	pthread_atfork(NULL, NULL, after_fork_in_child);
}

/* ---- the swap ---- */

static bool open_needs_mode(int flags)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

/* Whether an open with these flags may get a local copy. */
static bool is_candidate(int flags)
{
	if ((flags & O_ACCMODE) != O_RDONLY)
		return false;
	/* O_TMPFILE contains O_DIRECTORY.  O_DIRECT and O_ASYNC behave
	 * differently on the local file, so they stay on FUSE. */
	if (flags & (O_PATH | O_DIRECTORY | O_TRUNC | O_DIRECT | O_ASYNC))
		return false;
	/* A file this open created has nothing to lend. */
	return (flags & (O_CREAT | O_EXCL)) != (O_CREAT | O_EXCL);
}

static bool opens_for_writing(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

/* N for "/proc/self/fd/N", "/proc/thread-self/fd/N" and "/dev/fd/N",
 * else -1. */
static int proc_fd_number(const char *path)
{
	static const char *const prefixes[] = {
		"/proc/self/fd/", "/proc/thread-self/fd/", "/dev/fd/",
	};
	const char *digits = NULL;
	long n = 0;

	if (!path || path[0] != '/')
		return -1;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t len = strlen(prefixes[i]);

		if (strncmp(path, prefixes[i], len) == 0) {
			digits = path + len;
			break;
		}
	}
	if (!digits || *digits == '\0')
		return -1;
	for (; *digits; digits++) {
		if (*digits < '0' || *digits > '9' || n >= INT_MAX / 10)
			return -1;
		n = n * 10 + (*digits - '0');
	}
	return (int)n;
}

/*
 * Reject an open for writing of /proc/self/fd/N when N is swapped: it
 * would open the daemon's local copy, not the file on the mount.
 * Returns true, with errno EACCES, when the open must fail.
 */
static bool reopen_denied(const char *path, int flags)
{
	int fd;

	if (!opens_for_writing(flags))
		return false;
	fd = proc_fd_number(path);
	if (fd < 0 || !fdtable_is_local_copy(fd))
		return false;
	preload_debug("%s: rejected an open for writing: fd %d reads a local "
		      "copy, not the file on the mount", path, fd);
	errno = EACCES;
	return true;
}

/* Put local, a descriptor of the local copy, in place of fd. */
static void swap_fd(int fd, int local, const char *name,
		    const struct swap_entry *entry)
{
	long fd_flags = sys_fcntl(fd, F_GETFD, 0);
	long status = sys_fcntl(fd, F_GETFL, 0);
	off_t offset = lseek(fd, 0, SEEK_CUR);
	long keep = status & (O_APPEND | O_NONBLOCK);
	int ret = -1;

	if (fd_flags < 0 || status < 0 || offset < 0)
		goto out;
	if (keep && sys_fcntl(local, F_SETFL, keep) < 0)
		goto out;
	if (offset && lseek(local, offset, SEEK_SET) != offset)
		goto out;
	/* Set before the swap: until dup3 returns, the check of the
	 * entry against st_dev and st_ino ignores it. */
	fdtable_set(fd, entry);
	ret = sys_dup3(local, fd, (fd_flags & FD_CLOEXEC) ? O_CLOEXEC : 0);
	if (ret < 0)
		fdtable_forget(fd);
out:
	if (ret < 0)
		preload_debug("%s: kept the FUSE descriptor: cannot put the "
			      "local copy in place of fd %d: %s", name, fd,
			      strerror(errno));
	else
		preload_debug("%s: fd %d now reads a local copy (%llu bytes)",
			      name, fd,
			      (unsigned long long)entry->attrs.stx_size);
	sys_close(local);
}

static void try_swap(enum path_class class, const char *path, int fd)
{
	struct swap_entry entry = { .kind = SWAP_LENT, .handle = -1 };
	char root[PATH_MAX];
	int local;

	if (fd >= PRELOAD_FD_MAX || class == PATH_OTHER)
		return;
	/* Not in the child of vfork(2), whose table is its parent's. */
	if (!fdtable_owned())
		return;
	if (mounts_check_fd(fd, class, &entry.attrs, root, sizeof(root)) != 0)
		return;
	local = lend_request(root, fd, path, &entry);
	if (local >= 0)
		swap_fd(fd, local, path, &entry);
}

/* Finish an open of path, of the given class, that returned fd;
 * returns fd. */
static int open_done(enum path_class class, const char *path, int flags,
		     int fd)
{
	int saved_errno, source;

	if (fd < 0)
		return fd;
	saved_errno = errno;
	/* An entry left by a close the library did not see. */
	fdtable_forget(fd);
	source = proc_fd_number(path);
	if (source >= 0)
		fdtable_copy(source, fd);
	else if (is_candidate(flags))
		try_swap(class, path, fd);
	errno = saved_errno;
	return fd;
}

/*
 * Start an open of (dirfd, *path): returns true, with *fd the result,
 * when the library serves it without libc, else false with *class set
 * for open_done() and *path for libc (see mounts_classify_path()).
 */
static bool open_served(int dirfd, const char **path, int flags, mode_t mode,
			struct nomount_target *t, enum path_class *class,
			int *fd)
{
	if (reopen_denied(*path, flags)) {
		*fd = -1;
		return true;
	}
	*class = mounts_classify_path(dirfd, path, t);
	if (*class != PATH_NOMOUNT)
		return false;
	*fd = nomount_open_fd(t, flags, mode);
	return true;
}

/* ---- open ---- */

typedef int open_fn(const char *path, int flags, ...);
typedef int openat_fn(int dirfd, const char *path, int flags, ...);
typedef int open_2_fn(const char *path, int flags);
typedef int openat_2_fn(int dirfd, const char *path, int flags);
typedef int creat_fn(const char *path, mode_t mode);

static int open_with(open_fn *real, const char *path, int flags, mode_t mode)
{
	struct nomount_target t;
	enum path_class class;
	int fd;

	if (open_served(AT_FDCWD, &path, flags, mode, &t, &class, &fd))
		return fd;
	return open_done(class, path, flags,
			 real ? real(path, flags, mode) :
				sys_openat(AT_FDCWD, path, flags, mode));
}

static int openat_with(openat_fn *real, int dirfd, const char *path,
		       int flags, mode_t mode)
{
	struct nomount_target t;
	enum path_class class;
	int fd;

	if (open_served(dirfd, &path, flags, mode, &t, &class, &fd))
		return fd;
	return open_done(class, path, flags,
			 real ? real(dirfd, path, flags, mode) :
				sys_openat(dirfd, path, flags, mode));
}

/* The _FORTIFY_SOURCE entry points, for flags not known at compile
 * time, take no mode. */
static int open_2_with(open_2_fn *real, const char *path, int flags)
{
	struct nomount_target t;
	enum path_class class;
	int fd;

	if (open_served(AT_FDCWD, &path, flags, 0, &t, &class, &fd))
		return fd;
	return open_done(class, path, flags,
			 real ? real(path, flags) :
				sys_openat(AT_FDCWD, path, flags, 0));
}

static int openat_2_with(openat_2_fn *real, int dirfd, const char *path,
			 int flags)
{
	struct nomount_target t;
	enum path_class class;
	int fd;

	if (open_served(dirfd, &path, flags, 0, &t, &class, &fd))
		return fd;
	return open_done(class, path, flags,
			 real ? real(dirfd, path, flags) :
				sys_openat(dirfd, path, flags, 0));
}

#define CREAT_FLAGS (O_CREAT | O_WRONLY | O_TRUNC)

/* Write opens are never swapped.  open_done() runs for them all the
 * same, so that the table drops a stale entry of the new descriptor. */
static int creat_with(creat_fn *real, const char *path, mode_t mode)
{
	struct nomount_target t;
	enum path_class class;
	int fd;

	if (open_served(AT_FDCWD, &path, CREAT_FLAGS, mode, &t, &class,
			&fd))
		return fd;
	return open_done(class, path, CREAT_FLAGS,
			 real ? real(path, mode) :
				sys_openat(AT_FDCWD, path, CREAT_FLAGS, mode));
}

PRELOAD_EXPORT int open(const char *path, int flags, ...)
{
	return open_with(REAL(open), path, flags, OPEN_MODE(flags, flags));
}

PRELOAD_EXPORT int open64(const char *path, int flags, ...)
{
	return open_with(REAL(open64), path, flags, OPEN_MODE(flags, flags));
}

PRELOAD_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	return openat_with(REAL(openat), dirfd, path, flags,
			   OPEN_MODE(flags, flags));
}

PRELOAD_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	return openat_with(REAL(openat64), dirfd, path, flags,
			   OPEN_MODE(flags, flags));
}

PRELOAD_EXPORT int __open_2(const char *path, int flags)
{
	return open_2_with(REAL(__open_2), path, flags);
}

PRELOAD_EXPORT int __open64_2(const char *path, int flags)
{
	return open_2_with(REAL(__open64_2), path, flags);
}

PRELOAD_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	return openat_2_with(REAL(__openat_2), dirfd, path, flags);
}

PRELOAD_EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
	return openat_2_with(REAL(__openat64_2), dirfd, path, flags);
}

PRELOAD_EXPORT int creat(const char *path, mode_t mode)
{
	return creat_with(REAL(creat), path, mode);
}

PRELOAD_EXPORT int creat64(const char *path, mode_t mode)
{
	return creat_with(REAL(creat64), path, mode);
}

/* ---- stdio ---- */

/* The open(2) flags of an fopen(3) mode. */
static int stdio_flags(const char *mode)
{
	int flags;

	switch (mode ? mode[0] : '\0') {
	case 'r':
		flags = O_RDONLY;
		break;
	case 'w':
		flags = O_WRONLY | O_CREAT | O_TRUNC;
		break;
	case 'a':
		flags = O_WRONLY | O_CREAT | O_APPEND;
		break;
	default:
		return O_WRONLY;
	}
	/* glibc reads the mode up to a ",ccs=" part. */
	for (const char *p = mode + 1; *p && *p != ','; p++) {
		if (*p == '+')
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		else if (*p == 'x')
			flags |= O_EXCL;
		else if (*p == 'e')
			flags |= O_CLOEXEC;
	}
	return flags;
}

static bool is_stdio_mode(const char *mode)
{
	return mode && (mode[0] == 'r' || mode[0] == 'w' || mode[0] == 'a');
}

static int stream_fd(FILE *fp)
{
	int saved_errno = errno;
	int fd = fp ? fileno_unlocked(fp) : -1;

	errno = saved_errno;
	return fd;
}

static FILE *no_real_stdio(void)
{
	errno = ENOSYS;
	return NULL;
}

/* Finish an fopen of path, of the given class, that returned fp. */
static FILE *stream_done(enum path_class class, const char *path, int flags,
			 FILE *fp)
{
	if (fp)
		open_done(class, path, flags, stream_fd(fp));
	return fp;
}

/* A stream of fd, a descriptor of a path served without FUSE, which is
 * closed when that fails. */
static FILE *stream_of(int fd, const char *mode)
{
	FILE *fp = fd < 0 ? NULL : fdopen(fd, mode);
	int saved_errno = errno;

	if (fd >= 0 && !fp) {
		close(fd);
		errno = saved_errno;
	}
	return fp;
}

static FILE *fopen_with(__typeof__(&fopen) real, const char *path,
			const char *mode)
{
	int flags = stdio_flags(mode), fd;
	struct nomount_target t;
	enum path_class class;

	if (!real)
		return no_real_stdio();
	if (!is_stdio_mode(mode))
		return real(path, mode);
	if (open_served(AT_FDCWD, &path, flags, 0666, &t, &class, &fd))
		return stream_of(fd, mode);
	return stream_done(class, path, flags, real(path, mode));
}

PRELOAD_EXPORT FILE *fopen(const char *path, const char *mode)
{
	return fopen_with(REAL(fopen), path, mode);
}

PRELOAD_EXPORT FILE *fopen64(const char *path, const char *mode)
{
	return fopen_with(REAL(fopen64), path, mode);
}

PRELOAD_EXPORT int fclose(FILE *fp)
{
	struct swap_entry written;
	int fd = stream_fd(fp), ret, err;
	bool taken = nomount_fd_take(fd, &written);

	/* glibc closes the descriptor with an internal call that close()
	 * does not see. */
	if (!taken)
		fdtable_forget(fd);
	ret = CALL_REAL(fclose, (fp), (errno = ENOSYS, EOF));
	if (!taken)
		return ret;
	err = nomount_fd_release(&written);
	if (err && ret == 0) {
		errno = -err;
		ret = EOF;
	}
	return ret;
}

/*
 * freopen(3) of a path served without FUSE: open it, then let glibc
 * reopen the local file through /proc/self/fd, so that the stream keeps
 * its descriptor number.  The mode loses its 'x', which the first open
 * applied already.  The old file of the stream, when it was open for
 * writing, is committed once the stream no longer uses it.
 */
static FILE *reopen_served(const struct nomount_target *t, const char *mode,
			   FILE *fp, __typeof__(&freopen) real)
{
	char proc[40], local_mode[32];
	int old = stream_fd(fp), fd, saved_errno;
	struct swap_entry written;
	size_t len = 0;
	bool taken;
	FILE *ret;

	for (const char *p = mode; *p && len < sizeof(local_mode) - 1; p++)
		if (*p != 'x')
			local_mode[len++] = *p;
	local_mode[len] = '\0';
	fd = nomount_open_fd(t, stdio_flags(mode), 0666);
	if (fd < 0) {
		saved_errno = errno;
		fclose(fp);
		errno = saved_errno;
		return NULL;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	taken = nomount_fd_take(old, &written);
	if (!taken)
		fdtable_forget(old);
	ret = real(proc, local_mode, fp);
	saved_errno = errno;
	if (ret)
		fdtable_copy(fd, stream_fd(ret));
	close(fd);
	if (taken)
		(void)nomount_fd_release(&written);
	errno = saved_errno;
	return ret;
}

/*
 * freopen(3) keeps the descriptor number of fp.  With a path, it closes
 * the old file inside glibc.  Without one, it reopens the same file
 * through /proc/self/fd, which for a swapped descriptor is the local
 * copy.  That is fine for reading and wrong for writing.
 */
static FILE *reopen_stream(const char *path, const char *mode, FILE *fp,
			   __typeof__(&freopen) real)
{
	int flags = stdio_flags(mode), old = stream_fd(fp);

	enum path_class class = PATH_OTHER;
	struct nomount_target t;

	if (!real)
		return no_real_stdio();
	if (path)
		class = mounts_classify_path(AT_FDCWD, &path, &t);
	if (class == PATH_NOMOUNT && is_stdio_mode(mode))
		return reopen_served(&t, mode, fp, real);
	if (!path && opens_for_writing(flags) && fdtable_is_local_copy(old)) {
		preload_debug("freopen of fd %d for writing rejected: it reads "
			      "a local copy, not the file on the mount", old);
		fclose(fp);
		errno = EACCES;
		return NULL;
	}
	if (!path)
		return real(NULL, mode, fp);
	if (reopen_denied(path, flags)) {
		fclose(fp);
		errno = EACCES;
		return NULL;
	}
	fdtable_forget(old);
	return stream_done(class, path, flags, real(path, mode, fp));
}

PRELOAD_EXPORT FILE *freopen(const char *path, const char *mode, FILE *fp)
{
	return reopen_stream(path, mode, fp, REAL(freopen));
}

PRELOAD_EXPORT FILE *freopen64(const char *path, const char *mode, FILE *fp)
{
	return reopen_stream(path, mode, fp, REAL(freopen64));
}

/* ---- close and dup ---- */

/*
 * Close a file of a path served without FUSE open for writing: commit
 * it when this was its last descriptor, and return the commit's error
 * as the close's.
 */
static int close_written(int fd, const struct swap_entry *written)
{
	int ret = CALL_REAL(close, (fd), sys_close(fd));
	int err = nomount_fd_release(written);

	if (err && ret == 0) {
		errno = -err;
		ret = -1;
	}
	return ret;
}

PRELOAD_EXPORT int close(int fd)
{
	struct swap_entry written;

	if (fdtable_is_swapped(fd)) {
		/* The program never opened the library's handle. */
		if (nomount_fd_is_handle(fd)) {
			errno = EBADF;
			return -1;
		}
		if (nomount_fd_take(fd, &written))
			return close_written(fd, &written);
	}
	/* Forget first: once the number is free, another thread's open
	 * may get it and swap it. */
	fdtable_forget(fd);
	return CALL_REAL(close, (fd), sys_close(fd));
}

PRELOAD_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	if (!(flags & CLOSE_RANGE_CLOEXEC)) {
		nomount_fd_close_range(first, last);
		fdtable_forget_range(first, last);
	}
	return CALL_REAL(close_range, (first, last, flags),
			 sys_close_range(first, last, flags));
}

PRELOAD_EXPORT void closefrom(int lowfd)
{
	__typeof__(&closefrom) real = REAL(closefrom);

	if (lowfd >= 0) {
		nomount_fd_close_range((unsigned)lowfd, UINT_MAX);
		fdtable_forget_range((unsigned)lowfd, UINT_MAX);
	}
	if (real)
		real(lowfd);
	else if (lowfd >= 0)
		sys_close_range((unsigned)lowfd, UINT_MAX, 0);
}

/* Let a new descriptor from a dup of fd report what fd reports. */
static int dup_done(int fd, int newfd)
{
	if (newfd >= 0)
		fdtable_copy(fd, newfd);
	return newfd;
}

/*
 * Before a dup of fd onto newfd, which closes what newfd refers to:
 * move a handle of the library away from newfd, and take the entry of a
 * file open for writing at newfd (returns true) for
 * after_replace().
 */
static bool before_replace(int fd, int newfd, struct swap_entry *replaced)
{
	if (fd == newfd || !fdtable_is_swapped(newfd))
		return false;
	if (nomount_fd_is_handle(newfd)) {
		if (!nomount_fd_move_handle(newfd, STDERR_FILENO + 1))
			preload_debug("fd %d replaces the handle connection of "
				      "a file open for writing; the daemon "
				      "commits the file now", newfd);
		return false;
	}
	return nomount_fd_take(newfd, replaced);
}

/* After the dup that returned ret: commit the replaced file, or keep it
 * when the dup failed.  A dup cannot report the commit's error. */
static int after_replace(bool taken, int newfd, int ret,
			 const struct swap_entry *replaced)
{
	int saved_errno = errno;

	if (taken && ret < 0)
		fdtable_set(newfd, replaced);
	else if (taken)
		(void)nomount_fd_release(replaced);
	errno = saved_errno;
	return ret;
}

PRELOAD_EXPORT int dup(int fd)
{
	return dup_done(fd, CALL_REAL(dup, (fd),
				      (int)sys_fcntl(fd, F_DUPFD, 0)));
}

PRELOAD_EXPORT int dup2(int fd, int newfd)
{
	struct swap_entry replaced;
	bool taken = before_replace(fd, newfd, &replaced);

	return after_replace(taken, newfd,
			     dup_done(fd, CALL_REAL(dup2, (fd, newfd),
						    sys_dup3(fd, newfd, 0))),
			     &replaced);
}

PRELOAD_EXPORT int dup3(int fd, int newfd, int flags)
{
	struct swap_entry replaced;
	bool taken = before_replace(fd, newfd, &replaced);

	return after_replace(taken, newfd,
			     dup_done(fd, CALL_REAL(dup3, (fd, newfd, flags),
						    sys_dup3(fd, newfd,
							     flags))),
			     &replaced);
}

/*
 * The argument of an fcntl(2) call, from the caller's va_list that
 * starts after last.  Every fcntl argument is an int or a pointer, which
 * the x86-64 and AArch64 calling conventions pass alike, and glibc reads
 * it this way too.  A command without an argument reads an unused
 * register.
 */
#define FCNTL_ARG(last) __extension__ ({			\
	va_list ap_;						\
	void *arg_;						\
	va_start(ap_, last);					\
	arg_ = va_arg(ap_, void *);				\
	va_end(ap_);						\
	arg_;							\
})

static int fcntl_with(__typeof__(&fcntl) real, int fd, int cmd, void *arg)
{
	int ret = real ? real(fd, cmd, arg) :
			 (int)sys_fcntl(fd, cmd, (long)arg);

	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
		return dup_done(fd, ret);
	return ret;
}

PRELOAD_EXPORT int fcntl(int fd, int cmd, ...)
{
	return fcntl_with(REAL(fcntl), fd, cmd, FCNTL_ARG(cmd));
}

PRELOAD_EXPORT int fcntl64(int fd, int cmd, ...)
{
	return fcntl_with(REAL(fcntl64), fd, cmd, FCNTL_ARG(cmd));
}

/* ---- stat of a descriptor ---- */

/* Whether a stat of (dirfd, path, flags) is a stat of dirfd itself. */
static bool stats_dirfd(const char *path, int flags)
{
	return (flags & AT_EMPTY_PATH) && (!path || path[0] == '\0');
}

static int stat_done(int fd, struct stat *st, int ret)
{
	if (ret == 0)
		fdtable_fix_stat(fd, st);
	return ret;
}

static int statat_done(int dirfd, const char *path, int flags,
		       struct stat *st, int ret)
{
	if (stats_dirfd(path, flags))
		return stat_done(dirfd, st, ret);
	return ret;
}

/* A stat of a path, not of dirfd itself, served without FUSE: returns 1
 * with *ret set, else 0 with *path for libc. */
static int statat_served(int dirfd, const char **path, int flags,
			 struct nomount_target *t, struct stat *st, int *ret)
{
	return !stats_dirfd(*path, flags) &&
	       nomount_served_stat(dirfd, path, t, st, ret);
}

PRELOAD_EXPORT int fstat(int fd, struct stat *st)
{
	return stat_done(fd, st, CALL_REAL(fstat, (fd, st),
					   sys_fstatat(fd, "", st,
						       AT_EMPTY_PATH)));
}

PRELOAD_EXPORT int fstat64(int fd, struct stat64 *st)
{
	struct stat *plain = (struct stat *)st;

	return stat_done(fd, plain, CALL_REAL(fstat64, (fd, st),
					     sys_fstatat(fd, "", plain,
							 AT_EMPTY_PATH)));
}

PRELOAD_EXPORT int __fxstat(int ver, int fd, struct stat *st)
{
	return stat_done(fd, st, CALL_REAL(__fxstat, (ver, fd, st),
					   sys_fstatat(fd, "", st,
						       AT_EMPTY_PATH)));
}

PRELOAD_EXPORT int __fxstat64(int ver, int fd, struct stat64 *st)
{
	struct stat *plain = (struct stat *)st;

	return stat_done(fd, plain, CALL_REAL(__fxstat64, (ver, fd, st),
					     sys_fstatat(fd, "", plain,
							 AT_EMPTY_PATH)));
}

PRELOAD_EXPORT int fstatat(int dirfd, const char *path, struct stat *st,
			   int flags)
{
	struct nomount_target t;
	int ret;

	if (statat_served(dirfd, &path, flags, &t, st, &ret))
		return ret;
	return statat_done(dirfd, path, flags, st,
			   CALL_REAL(fstatat, (dirfd, path, st, flags),
				     sys_fstatat(dirfd, path, st, flags)));
}

PRELOAD_EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st,
			     int flags)
{
	struct stat *plain = (struct stat *)st;
	struct nomount_target t;
	int ret;

	if (statat_served(dirfd, &path, flags, &t, plain, &ret))
		return ret;
	return statat_done(dirfd, path, flags, plain,
			   CALL_REAL(fstatat64, (dirfd, path, st, flags),
				     sys_fstatat(dirfd, path, plain, flags)));
}

PRELOAD_EXPORT int __fxstatat(int ver, int dirfd, const char *path,
			      struct stat *st, int flags)
{
	struct nomount_target t;
	int ret;

	if (statat_served(dirfd, &path, flags, &t, st, &ret))
		return ret;
	return statat_done(dirfd, path, flags, st,
			   CALL_REAL(__fxstatat, (ver, dirfd, path, st, flags),
				     sys_fstatat(dirfd, path, st, flags)));
}

PRELOAD_EXPORT int __fxstatat64(int ver, int dirfd, const char *path,
				struct stat64 *st, int flags)
{
	struct stat *plain = (struct stat *)st;
	struct nomount_target t;
	int ret;

	if (statat_served(dirfd, &path, flags, &t, plain, &ret))
		return ret;
	return statat_done(dirfd, path, flags, plain,
			   CALL_REAL(__fxstatat64,
				     (ver, dirfd, path, st, flags),
				     sys_fstatat(dirfd, path, plain, flags)));
}

PRELOAD_EXPORT int statx(int dirfd, const char *path, int flags,
			 unsigned mask, struct statx *stx)
{
	struct nomount_target t;
	int ret;

	if (!stats_dirfd(path, flags) &&
	    nomount_served_statx(dirfd, &path, &t, stx, &ret))
		return ret;
	ret = CALL_REAL(statx, (dirfd, path, flags, mask, stx),
			sys_statx(dirfd, path, flags, mask, stx));

	if (ret == 0 && stats_dirfd(path, flags))
		fdtable_fix_statx(dirfd, stx);
	return ret;
}
