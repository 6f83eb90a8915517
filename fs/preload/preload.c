/*
 * preload.c - the functions libnearfs-preload.so interposes.
 *
 * A read-only open of a regular file on a nearfs mount goes through FUSE
 * as usual.  Then the library requests a descriptor of the complete
 * local copy from the daemon and puts it in place of the FUSE
 * descriptor, with the same number, offset, status flags and FD_CLOEXEC
 * (swap_fd()).
 * When the daemon lends nothing, the FUSE descriptor stays.  The stat
 * functions report the FUSE file's attributes for a swapped descriptor,
 * and close, dup and fclose keep the table of swapped descriptors
 * (fdtable.c) up to date.  docs/preload.md describes the limits.
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

/* Call the definition that name hides, or fallback while there is none
 * (see REAL()). */
#define CALL_REAL(name, args, fallback) __extension__ ({	\
	__typeof__(&name) real_fn_ = REAL(name);		\
	real_fn_ ? real_fn_ args : (fallback);			\
})

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
static char socket_override[sizeof(((struct sockaddr_un *)0)->sun_path)];

static void read_config(void)
{
	const char *value;

	if (atomic_load_explicit(&config_read, memory_order_acquire))
		return;
	value = secure_getenv("NEARFS_PRELOAD_DEBUG");
	debug_enabled = value && *value && strcmp(value, "0") != 0;
	value = secure_getenv("NEARFS_PRELOAD_SOCKET");
	if (value && strlen(value) < sizeof(socket_override))
		strcpy(socket_override, value);
	atomic_store_explicit(&config_read, true, memory_order_release);
	if (value && strlen(value) >= sizeof(socket_override))
		preload_debug("NEARFS_PRELOAD_SOCKET is longer than the %zu "
			      "bytes of a socket path; ignored",
			      sizeof(socket_override) - 1);
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

static void try_swap(int dirfd, const char *path, int fd)
{
	enum path_class class;
	struct swap_entry entry = { .kind = SWAP_LENT, .handle = -1 };
	char root[PATH_MAX];
	int local;

	if (fd >= PRELOAD_FD_MAX)
		return;
	class = mounts_classify_path(dirfd, path);
	if (class == PATH_OTHER)
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

/* Finish an open of path that returned fd; returns fd. */
static int open_done(int dirfd, const char *path, int flags, int fd)
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
		try_swap(dirfd, path, fd);
	errno = saved_errno;
	return fd;
}

/* ---- open ---- */

typedef int open_fn(const char *path, int flags, ...);
typedef int openat_fn(int dirfd, const char *path, int flags, ...);
typedef int open_2_fn(const char *path, int flags);
typedef int openat_2_fn(int dirfd, const char *path, int flags);
typedef int creat_fn(const char *path, mode_t mode);

static int open_with(open_fn *real, const char *path, int flags, mode_t mode)
{
	if (reopen_denied(path, flags))
		return -1;
	return open_done(AT_FDCWD, path, flags,
			 real ? real(path, flags, mode) :
				sys_openat(AT_FDCWD, path, flags, mode));
}

static int openat_with(openat_fn *real, int dirfd, const char *path,
		       int flags, mode_t mode)
{
	if (reopen_denied(path, flags))
		return -1;
	return open_done(dirfd, path, flags,
			 real ? real(dirfd, path, flags, mode) :
				sys_openat(dirfd, path, flags, mode));
}

/* The _FORTIFY_SOURCE entry points, for flags not known at compile
 * time, take no mode. */
static int open_2_with(open_2_fn *real, const char *path, int flags)
{
	if (reopen_denied(path, flags))
		return -1;
	return open_done(AT_FDCWD, path, flags,
			 real ? real(path, flags) :
				sys_openat(AT_FDCWD, path, flags, 0));
}

static int openat_2_with(openat_2_fn *real, int dirfd, const char *path,
			 int flags)
{
	if (reopen_denied(path, flags))
		return -1;
	return open_done(dirfd, path, flags,
			 real ? real(dirfd, path, flags) :
				sys_openat(dirfd, path, flags, 0));
}

#define CREAT_FLAGS (O_CREAT | O_WRONLY | O_TRUNC)

/* Write opens are never swapped.  open_done() runs for them all the
 * same, so that the table forgets a stale entry of the new descriptor. */
static int creat_with(creat_fn *real, const char *path, mode_t mode)
{
	if (reopen_denied(path, CREAT_FLAGS))
		return -1;
	return open_done(AT_FDCWD, path, CREAT_FLAGS,
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

/* The open(2) flags of an fopen(3) mode, as far as the swap cares. */
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
	for (const char *p = mode + 1; *p && *p != ','; p++)
		if (*p == '+')
			flags = (flags & ~O_ACCMODE) | O_RDWR;
	return flags;
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

/* Finish an fopen of path that returned fp. */
static FILE *stream_done(const char *path, int flags, FILE *fp)
{
	if (fp)
		open_done(AT_FDCWD, path, flags, stream_fd(fp));
	return fp;
}

static FILE *fopen_with(__typeof__(&fopen) real, const char *path,
			const char *mode)
{
	int flags = stdio_flags(mode);

	if (!real)
		return no_real_stdio();
	if (reopen_denied(path, flags))
		return NULL;
	return stream_done(path, flags, real(path, mode));
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
	/* glibc closes the descriptor with an internal call that close()
	 * does not see. */
	fdtable_forget(stream_fd(fp));
	return CALL_REAL(fclose, (fp), (errno = ENOSYS, EOF));
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

	if (!real)
		return no_real_stdio();
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
	return stream_done(path, flags, real(path, mode, fp));
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

PRELOAD_EXPORT int close(int fd)
{
	/* Forget first: once the number is free, another thread's open
	 * may get it and swap it. */
	fdtable_forget(fd);
	return CALL_REAL(close, (fd), sys_close(fd));
}

PRELOAD_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	if (!(flags & CLOSE_RANGE_CLOEXEC))
		fdtable_forget_range(first, last);
	return CALL_REAL(close_range, (first, last, flags),
			 sys_close_range(first, last, flags));
}

PRELOAD_EXPORT void closefrom(int lowfd)
{
	__typeof__(&closefrom) real = REAL(closefrom);

	if (lowfd >= 0)
		fdtable_forget_range((unsigned)lowfd, UINT_MAX);
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

PRELOAD_EXPORT int dup(int fd)
{
	return dup_done(fd, CALL_REAL(dup, (fd),
				      (int)sys_fcntl(fd, F_DUPFD, 0)));
}

PRELOAD_EXPORT int dup2(int fd, int newfd)
{
	return dup_done(fd, CALL_REAL(dup2, (fd, newfd),
				      sys_dup3(fd, newfd, 0)));
}

PRELOAD_EXPORT int dup3(int fd, int newfd, int flags)
{
	return dup_done(fd, CALL_REAL(dup3, (fd, newfd, flags),
				      sys_dup3(fd, newfd, flags)));
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
	return statat_done(dirfd, path, flags, st,
			   CALL_REAL(fstatat, (dirfd, path, st, flags),
				     sys_fstatat(dirfd, path, st, flags)));
}

PRELOAD_EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st,
			     int flags)
{
	struct stat *plain = (struct stat *)st;

	return statat_done(dirfd, path, flags, plain,
			   CALL_REAL(fstatat64, (dirfd, path, st, flags),
				     sys_fstatat(dirfd, path, plain, flags)));
}

PRELOAD_EXPORT int __fxstatat(int ver, int dirfd, const char *path,
			      struct stat *st, int flags)
{
	return statat_done(dirfd, path, flags, st,
			   CALL_REAL(__fxstatat, (ver, dirfd, path, st, flags),
				     sys_fstatat(dirfd, path, st, flags)));
}

PRELOAD_EXPORT int __fxstatat64(int ver, int dirfd, const char *path,
				struct stat64 *st, int flags)
{
	struct stat *plain = (struct stat *)st;

	return statat_done(dirfd, path, flags, plain,
			   CALL_REAL(__fxstatat64,
				     (ver, dirfd, path, st, flags),
				     sys_fstatat(dirfd, path, plain, flags)));
}

PRELOAD_EXPORT int statx(int dirfd, const char *path, int flags,
			 unsigned mask, struct statx *stx)
{
	int ret = CALL_REAL(statx, (dirfd, path, flags, mask, stx),
			    sys_statx(dirfd, path, flags, mask, stx));

	if (ret == 0 && stats_dirfd(path, flags))
		fdtable_fix_statx(dirfd, stx);
	return ret;
}
