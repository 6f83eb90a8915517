/*
 * nomount_calls.c - the interposed functions that the library must follow
 * to serve paths without FUSE: chdir(2) for relative paths, fsync(2) and
 * exec(3) for files open for writing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"

/* Handles an exec can hand to the new program. */
#define EXEC_HANDLES_MAX 64

/* Return 0, or -1 with errno -err. */
static int result(int err)
{
	if (err) {
		errno = -err;
		return -1;
	}
	return 0;
}

/* ---- the current directory ---- */

/*
 * A root does not exist on disk, so the kernel cannot enter it, and the
 * library does not pretend to: chdir(2) into a root or below, and
 * fchdir(2) of a memfd that represents a directory, fail with ENOTSUP.
 */
PRELOAD_EXPORT int chdir(const char *path)
{
	struct nomount_target t;
	int ret;

	if (mounts_classify_path(AT_FDCWD, &path, &t) == PATH_NOMOUNT) {
		preload_debug("%s: chdir into a path served without FUSE is "
			      "not supported", path);
		return result(-ENOTSUP);
	}
	ret = CALL_REAL(chdir, (path), (int)syscall(SYS_chdir, path));
	if (ret == 0)
		cwd_changed();
	return ret;
}

PRELOAD_EXPORT int fchdir(int fd)
{
	char path[PATH_MAX];
	int ret;

	if (nomount_dir_path(fd, path, sizeof(path)) == 0) {
		preload_debug("%s: fchdir into a path served without FUSE is "
			      "not supported", path);
		return result(-ENOTSUP);
	}
	ret = CALL_REAL(fchdir, (fd), (int)syscall(SYS_fchdir, fd));
	if (ret == 0)
		cwd_changed();
	return ret;
}

/* ---- fsync ---- */

PRELOAD_EXPORT int fsync(int fd)
{
	int ret;

	if (nomount_fd_sync(fd, &ret))
		return ret;
	return CALL_REAL(fsync, (fd), (int)syscall(SYS_fsync, fd));
}

PRELOAD_EXPORT int fdatasync(int fd)
{
	int ret;

	if (nomount_fd_sync(fd, &ret))
		return ret;
	return CALL_REAL(fdatasync, (fd), (int)syscall(SYS_fdatasync, fd));
}

/* ---- exec ---- */

/*
 * Each exec hands the handles of inherited files open for writing to the
 * new program (nomount_fd_before_exec()) and takes them back when it
 * fails.  CALL is the call of the function that the library hides.
 */
#define EXEC_WITH_HANDLES(call) __extension__ ({			\
	int changed_[EXEC_HANDLES_MAX];					\
	int count_ = nomount_fd_before_exec(changed_, EXEC_HANDLES_MAX);\
	int ret_ = (call);						\
	nomount_fd_exec_failed(changed_, count_);			\
	ret_;								\
})

PRELOAD_EXPORT int execve(const char *path, char *const argv[],
			  char *const envp[])
{
	return EXEC_WITH_HANDLES(CALL_REAL(execve, (path, argv, envp),
					   (int)syscall(SYS_execve, path,
							argv, envp)));
}

PRELOAD_EXPORT int execveat(int dirfd, const char *path, char *const argv[],
			    char *const envp[], int flags)
{
	return EXEC_WITH_HANDLES(CALL_REAL(execveat,
					   (dirfd, path, argv, envp, flags),
					   (int)syscall(SYS_execveat, dirfd,
							path, argv, envp,
							flags)));
}

PRELOAD_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	return EXEC_WITH_HANDLES(CALL_REAL(fexecve, (fd, argv, envp),
					   sys_missing()));
}

PRELOAD_EXPORT int execv(const char *path, char *const argv[])
{
	return EXEC_WITH_HANDLES(CALL_REAL(execv, (path, argv),
					   sys_missing()));
}

PRELOAD_EXPORT int execvp(const char *file, char *const argv[])
{
	return EXEC_WITH_HANDLES(CALL_REAL(execvp, (file, argv),
					   sys_missing()));
}

PRELOAD_EXPORT int execvpe(const char *file, char *const argv[],
			   char *const envp[])
{
	return EXEC_WITH_HANDLES(CALL_REAL(execvpe, (file, argv, envp),
					   sys_missing()));
}

enum execl_kind {
	EXECL_PATH,	/* execl(3) */
	EXECL_SEARCH,	/* execlp(3) */
	EXECL_ENV,	/* execle(3), with envp after the NULL */
};

/* The arguments in ap before their NULL; ap stays where it is. */
static size_t count_args(va_list ap)
{
	size_t count = 0;
	va_list counting;

	va_copy(counting, ap);
	while (va_arg(counting, char *))
		count++;
	va_end(counting);
	return count;
}

/* Collect arg and the arguments in ap up to their NULL into an argv,
 * and exec it as kind selects. */
static int execl_with(enum execl_kind kind, const char *path, const char *arg,
		      va_list ap)
{
	size_t count = count_args(ap) + 1;
	char *argv[count + 1];

	argv[0] = (char *)arg;
	/* The last one read is the NULL. */
	for (size_t i = 1; i <= count; i++)
		argv[i] = va_arg(ap, char *);
	if (kind == EXECL_SEARCH)
		return execvp(path, argv);
	if (kind == EXECL_ENV)
		return execve(path, argv, va_arg(ap, char **));
	return execv(path, argv);
}

PRELOAD_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	int ret;

	va_start(ap, arg);
	ret = execl_with(EXECL_PATH, path, arg, ap);
	va_end(ap);
	return ret;
}

PRELOAD_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	int ret;

	va_start(ap, arg);
	ret = execl_with(EXECL_SEARCH, file, arg, ap);
	va_end(ap);
	return ret;
}

PRELOAD_EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	int ret;

	va_start(ap, arg);
	ret = execl_with(EXECL_ENV, path, arg, ap);
	va_end(ap);
	return ret;
}
