/*
 * nomount_calls.c - the interposed functions that take a path, for
 * paths served without FUSE, and those that the library must follow to
 * serve them: directory streams, chdir(2) for relative paths, fsync(2)
 * and exec(3) for files open for writing.
 *
 * Each function calls mounts_classify_path() first.  A path that is not
 * below a root goes to libc's function at the cost of that check, and a
 * DIR that is not the library's costs one look at the registry while
 * the library has streams open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "preload.h"

/* Groups of the process that access(2) looks at; more are not. */
#define GROUPS_MAX 1024
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

/* ---- stat ---- */

int nomount_served_statx(int dirfd, const char **path,
			 struct nomount_target *t, struct statx *stx, int *ret)
{
	if (mounts_classify_path(dirfd, path, t) != PATH_NOMOUNT)
		return 0;
	*ret = result(nomount_stat(t, stx));
	return 1;
}

int nomount_served_stat(int dirfd, const char **path,
			struct nomount_target *t, struct stat *st, int *ret)
{
	struct statx stx;

	if (!nomount_served_statx(dirfd, path, t, &stx, ret))
		return 0;
	if (*ret == 0)
		statx_to_stat(&stx, st);
	return 1;
}

PRELOAD_EXPORT int stat(const char *path, struct stat *st)
{
	struct nomount_target t;
	int ret;

	if (nomount_served_stat(AT_FDCWD, &path, &t, st, &ret))
		return ret;
	return CALL_REAL(stat, (path, st), sys_fstatat(AT_FDCWD, path, st, 0));
}

PRELOAD_EXPORT int stat64(const char *path, struct stat64 *st)
{
	struct nomount_target t;
	struct stat *plain = (struct stat *)st;
	int ret;

	if (nomount_served_stat(AT_FDCWD, &path, &t, plain, &ret))
		return ret;
	return CALL_REAL(stat64, (path, st),
			 sys_fstatat(AT_FDCWD, path, plain, 0));
}

PRELOAD_EXPORT int lstat(const char *path, struct stat *st)
{
	struct nomount_target t;
	int ret;

	if (nomount_served_stat(AT_FDCWD, &path, &t, st, &ret))
		return ret;
	return CALL_REAL(lstat, (path, st),
			 sys_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW));
}

PRELOAD_EXPORT int lstat64(const char *path, struct stat64 *st)
{
	struct nomount_target t;
	struct stat *plain = (struct stat *)st;
	int ret;

	if (nomount_served_stat(AT_FDCWD, &path, &t, plain, &ret))
		return ret;
	return CALL_REAL(lstat64, (path, st),
			 sys_fstatat(AT_FDCWD, path, plain,
				     AT_SYMLINK_NOFOLLOW));
}

/* The stat entry points of programs built before glibc 2.33. */
PRELOAD_EXPORT int __xstat(int ver, const char *path, struct stat *st)
{
	struct nomount_target t;
	int ret;

	if (nomount_served_stat(AT_FDCWD, &path, &t, st, &ret))
		return ret;
	return CALL_REAL(__xstat, (ver, path, st),
			 sys_fstatat(AT_FDCWD, path, st, 0));
}

PRELOAD_EXPORT int __xstat64(int ver, const char *path, struct stat64 *st)
{
	struct nomount_target t;
	struct stat *plain = (struct stat *)st;
	int ret;

	if (nomount_served_stat(AT_FDCWD, &path, &t, plain, &ret))
		return ret;
	return CALL_REAL(__xstat64, (ver, path, st),
			 sys_fstatat(AT_FDCWD, path, plain, 0));
}

PRELOAD_EXPORT int __lxstat(int ver, const char *path, struct stat *st)
{
	struct nomount_target t;
	int ret;

	if (nomount_served_stat(AT_FDCWD, &path, &t, st, &ret))
		return ret;
	return CALL_REAL(__lxstat, (ver, path, st),
			 sys_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW));
}

PRELOAD_EXPORT int __lxstat64(int ver, const char *path, struct stat64 *st)
{
	struct nomount_target t;
	struct stat *plain = (struct stat *)st;
	int ret;

	if (nomount_served_stat(AT_FDCWD, &path, &t, plain, &ret))
		return ret;
	return CALL_REAL(__lxstat64, (ver, path, st),
			 sys_fstatat(AT_FDCWD, path, plain,
				     AT_SYMLINK_NOFOLLOW));
}

/* ---- access ---- */

static bool in_group(gid_t file_gid, gid_t gid)
{
	gid_t groups[GROUPS_MAX];
	int count;

	if (file_gid == gid)
		return true;
	count = getgroups(GROUPS_MAX, groups);
	for (int i = 0; i < count; i++)
		if (groups[i] == file_gid)
			return true;
	return false;
}

/* Check mode (R_OK, W_OK, X_OK) against the file's mode bits as the
 * kernel does, for the real or the effective ids. */
static int check_access(const struct statx *stx, int mode, bool effective)
{
	uid_t uid = effective ? geteuid() : getuid();
	gid_t gid = effective ? getegid() : getgid();
	int allowed;

	if (mode == F_OK)
		return 0;
	if (uid == 0) {
		/* root may execute what anyone may, and any directory. */
		if ((mode & X_OK) && !S_ISDIR(stx->stx_mode) &&
		    !(stx->stx_mode & (S_IXUSR | S_IXGRP | S_IXOTH)))
			return -EACCES;
		return 0;
	}
	if (uid == stx->stx_uid)
		allowed = (stx->stx_mode >> 6) & 7;
	else if (in_group(stx->stx_gid, gid))
		allowed = (stx->stx_mode >> 3) & 7;
	else
		allowed = stx->stx_mode & 7;
	return (mode & ~allowed) ? -EACCES : 0;
}

static int served_access(int dirfd, const char **path,
			 struct nomount_target *t, int mode, int flags,
			 int *ret)
{
	struct statx stx;
	int err;

	if (mounts_classify_path(dirfd, path, t) != PATH_NOMOUNT)
		return 0;
	if (mode & ~(R_OK | W_OK | X_OK))
		err = -EINVAL;
	else
		err = nomount_stat(t, &stx);
	if (err == 0)
		err = check_access(&stx, mode, flags & AT_EACCESS);
	*ret = result(err);
	return 1;
}

PRELOAD_EXPORT int access(const char *path, int mode)
{
	struct nomount_target t;
	int ret;

	if (served_access(AT_FDCWD, &path, &t, mode, 0, &ret))
		return ret;
	return CALL_REAL(access, (path, mode),
			 (int)syscall(SYS_faccessat, AT_FDCWD, path, mode));
}

PRELOAD_EXPORT int faccessat(int dirfd, const char *path, int mode, int flags)
{
	struct nomount_target t;
	int ret;

	if (served_access(dirfd, &path, &t, mode, flags, &ret))
		return ret;
	return CALL_REAL(faccessat, (dirfd, path, mode, flags),
			 sys_missing());
}

PRELOAD_EXPORT int eaccess(const char *path, int mode)
{
	struct nomount_target t;
	int ret;

	if (served_access(AT_FDCWD, &path, &t, mode, AT_EACCESS, &ret))
		return ret;
	return CALL_REAL(eaccess, (path, mode), sys_missing());
}

PRELOAD_EXPORT int euidaccess(const char *path, int mode)
{
	struct nomount_target t;
	int ret;

	if (served_access(AT_FDCWD, &path, &t, mode, AT_EACCESS, &ret))
		return ret;
	return CALL_REAL(euidaccess, (path, mode), sys_missing());
}

/* ---- extended attributes: the daemon stores none ---- */

static int served_xattr(const char **path, struct nomount_target *t,
			ssize_t *ret)
{
	struct statx stx;
	int err;

	if (mounts_classify_path(AT_FDCWD, path, t) != PATH_NOMOUNT)
		return 0;
	/* ENOTSUP, as the FUSE mount replies, once the file exists. */
	err = nomount_stat(t, &stx);
	*ret = result(err ? err : -ENOTSUP);
	return 1;
}

PRELOAD_EXPORT ssize_t getxattr(const char *path, const char *name,
				void *value, size_t size)
{
	struct nomount_target t;
	ssize_t ret;

	if (served_xattr(&path, &t, &ret))
		return ret;
	return CALL_REAL(getxattr, (path, name, value, size),
			 syscall(SYS_getxattr, path, name, value, size));
}

PRELOAD_EXPORT ssize_t lgetxattr(const char *path, const char *name,
				 void *value, size_t size)
{
	struct nomount_target t;
	ssize_t ret;

	if (served_xattr(&path, &t, &ret))
		return ret;
	return CALL_REAL(lgetxattr, (path, name, value, size),
			 syscall(SYS_lgetxattr, path, name, value, size));
}

PRELOAD_EXPORT ssize_t listxattr(const char *path, char *list, size_t size)
{
	struct nomount_target t;
	ssize_t ret;

	if (served_xattr(&path, &t, &ret))
		return ret;
	return CALL_REAL(listxattr, (path, list, size),
			 syscall(SYS_listxattr, path, list, size));
}

PRELOAD_EXPORT ssize_t llistxattr(const char *path, char *list, size_t size)
{
	struct nomount_target t;
	ssize_t ret;

	if (served_xattr(&path, &t, &ret))
		return ret;
	return CALL_REAL(llistxattr, (path, list, size),
			 syscall(SYS_llistxattr, path, list, size));
}

/* ---- changes of the tree ---- */

static int served_mkdir(int dirfd, const char **path,
			struct nomount_target *t, mode_t mode, int *ret)
{
	if (mounts_classify_path(dirfd, path, t) != PATH_NOMOUNT)
		return 0;
	*ret = result(nomount_mkdir(t, mode & 07777 & ~nomount_umask()));
	return 1;
}

PRELOAD_EXPORT int mkdir(const char *path, mode_t mode)
{
	struct nomount_target t;
	int ret;

	if (served_mkdir(AT_FDCWD, &path, &t, mode, &ret))
		return ret;
	return CALL_REAL(mkdir, (path, mode),
			 (int)syscall(SYS_mkdirat, AT_FDCWD, path, mode));
}

PRELOAD_EXPORT int mkdirat(int dirfd, const char *path, mode_t mode)
{
	struct nomount_target t;
	int ret;

	if (served_mkdir(dirfd, &path, &t, mode, &ret))
		return ret;
	return CALL_REAL(mkdirat, (dirfd, path, mode),
			 (int)syscall(SYS_mkdirat, dirfd, path, mode));
}

static int served_unlink(int dirfd, const char **path,
			 struct nomount_target *t, int flags, int *ret)
{
	if (mounts_classify_path(dirfd, path, t) != PATH_NOMOUNT)
		return 0;
	if (flags & ~AT_REMOVEDIR)
		*ret = result(-EINVAL);
	else if (flags & AT_REMOVEDIR)
		*ret = result(nomount_rmdir(t));
	else
		*ret = result(nomount_unlink(t));
	return 1;
}

PRELOAD_EXPORT int unlink(const char *path)
{
	struct nomount_target t;
	int ret;

	if (served_unlink(AT_FDCWD, &path, &t, 0, &ret))
		return ret;
	return CALL_REAL(unlink, (path),
			 (int)syscall(SYS_unlinkat, AT_FDCWD, path, 0));
}

PRELOAD_EXPORT int unlinkat(int dirfd, const char *path, int flags)
{
	struct nomount_target t;
	int ret;

	if (served_unlink(dirfd, &path, &t, flags, &ret))
		return ret;
	return CALL_REAL(unlinkat, (dirfd, path, flags),
			 (int)syscall(SYS_unlinkat, dirfd, path, flags));
}

PRELOAD_EXPORT int rmdir(const char *path)
{
	struct nomount_target t;
	int ret;

	if (served_unlink(AT_FDCWD, &path, &t, AT_REMOVEDIR, &ret))
		return ret;
	return CALL_REAL(rmdir, (path),
			 (int)syscall(SYS_unlinkat, AT_FDCWD, path,
				      AT_REMOVEDIR));
}

/*
 * rename(2) between two paths: within one root through its daemon, and
 * EXDEV between a root and anything else, so that mv(1) copies.
 * RENAME_NOREPLACE is checked with a path-stat first, which another
 * process may race with; RENAME_EXCHANGE and RENAME_WHITEOUT fail with
 * EINVAL, as on filesystems that do not support them.
 */
static int served_rename(int olddirfd, const char **oldpath, int newdirfd,
			 const char **newpath, struct nomount_target targets[2],
			 unsigned flags, int *ret)
{
	struct nomount_target *from = &targets[0], *to = &targets[1];
	bool from_served, to_served;
	struct statx stx;
	int err;

	from_served = mounts_classify_path(olddirfd, oldpath, from) ==
		      PATH_NOMOUNT;
	to_served = mounts_classify_path(newdirfd, newpath, to) ==
		    PATH_NOMOUNT;
	if (!from_served && !to_served)
		return 0;
	if (!from_served || !to_served ||
	    strcmp(from->socket, to->socket) != 0) {
		err = -EXDEV;
	} else if (flags & ~RENAME_NOREPLACE) {
		err = -EINVAL;
	} else {
		err = 0;
		if (flags & RENAME_NOREPLACE)
			err = nomount_stat(to, &stx);
		if (flags & RENAME_NOREPLACE && err == 0)
			err = -EEXIST;
		else if (err == -ENOENT)
			err = 0;
		if (err == 0)
			err = nomount_rename(from, to);
	}
	*ret = result(err);
	return 1;
}

PRELOAD_EXPORT int rename(const char *oldpath, const char *newpath)
{
	struct nomount_target targets[2];
	int ret;

	if (served_rename(AT_FDCWD, &oldpath, AT_FDCWD, &newpath, targets, 0,
			  &ret))
		return ret;
	return CALL_REAL(rename, (oldpath, newpath),
			 (int)syscall(SYS_renameat2, AT_FDCWD, oldpath,
				      AT_FDCWD, newpath, 0));
}

PRELOAD_EXPORT int renameat(int olddirfd, const char *oldpath, int newdirfd,
			    const char *newpath)
{
	struct nomount_target targets[2];
	int ret;

	if (served_rename(olddirfd, &oldpath, newdirfd, &newpath, targets, 0,
			  &ret))
		return ret;
	return CALL_REAL(renameat, (olddirfd, oldpath, newdirfd, newpath),
			 (int)syscall(SYS_renameat2, olddirfd, oldpath,
				      newdirfd, newpath, 0));
}

PRELOAD_EXPORT int renameat2(int olddirfd, const char *oldpath, int newdirfd,
			     const char *newpath, unsigned flags)
{
	struct nomount_target targets[2];
	int ret;

	if (served_rename(olddirfd, &oldpath, newdirfd, &newpath, targets,
			  flags, &ret))
		return ret;
	return CALL_REAL(renameat2,
			 (olddirfd, oldpath, newdirfd, newpath, flags),
			 (int)syscall(SYS_renameat2, olddirfd, oldpath,
				      newdirfd, newpath, flags));
}

static int served_truncate(const char **path, struct nomount_target *t,
			   off_t size, int *ret)
{
	if (mounts_classify_path(AT_FDCWD, path, t) != PATH_NOMOUNT)
		return 0;
	*ret = result(size < 0 ? -EINVAL : nomount_truncate(t, size));
	return 1;
}

PRELOAD_EXPORT int truncate(const char *path, off_t size)
{
	struct nomount_target t;
	int ret;

	if (served_truncate(&path, &t, size, &ret))
		return ret;
	return CALL_REAL(truncate, (path, size),
			 (int)syscall(SYS_truncate, path, size));
}

PRELOAD_EXPORT int truncate64(const char *path, off64_t size)
{
	struct nomount_target t;
	int ret;

	if (served_truncate(&path, &t, (off_t)size, &ret))
		return ret;
	return CALL_REAL(truncate64, (path, size),
			 (int)syscall(SYS_truncate, path, size));
}

/* ---- directory streams ---- */

PRELOAD_EXPORT DIR *opendir(const char *path)
{
	struct nomount_target t;

	if (mounts_classify_path(AT_FDCWD, &path, &t) == PATH_NOMOUNT)
		return nomount_opendir(&t);
	return CALL_REAL(opendir, (path), (sys_missing(), NULL));
}

PRELOAD_EXPORT DIR *fdopendir(int fd)
{
	char path[PATH_MAX];

	if (nomount_dir_path(fd, path, sizeof(path)) == 0)
		return nomount_fdopendir(fd);
	return CALL_REAL(fdopendir, (fd), (sys_missing(), NULL));
}

PRELOAD_EXPORT struct dirent *readdir(DIR *dir)
{
	if (nomount_is_dir(dir))
		return (struct dirent *)nomount_readdir(dir);
	return CALL_REAL(readdir, (dir), (sys_missing(), NULL));
}

PRELOAD_EXPORT struct dirent64 *readdir64(DIR *dir)
{
	if (nomount_is_dir(dir))
		return nomount_readdir(dir);
	return CALL_REAL(readdir64, (dir), (sys_missing(), NULL));
}

/* Copy the next entry of dir into entry, for readdir_r(3). */
static int read_entry_into(DIR *dir, struct dirent64 *entry,
			   struct dirent64 **result_entry)
{
	struct dirent64 *next = nomount_readdir(dir);

	*result_entry = NULL;
	if (next) {
		memcpy(entry, next, offsetof(struct dirent64, d_name) +
				    strlen(next->d_name) + 1);
		*result_entry = entry;
	}
	return 0;
}

/* readdir_r(3) is deprecated, but programs still call it. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
PRELOAD_EXPORT int readdir_r(DIR *dir, struct dirent *entry,
			     struct dirent **result_entry)
{
	if (nomount_is_dir(dir))
		return read_entry_into(dir, (struct dirent64 *)entry,
				       (struct dirent64 **)result_entry);
	return CALL_REAL(readdir_r, (dir, entry, result_entry), ENOSYS);
}

PRELOAD_EXPORT int readdir64_r(DIR *dir, struct dirent64 *entry,
			       struct dirent64 **result_entry)
{
	if (nomount_is_dir(dir))
		return read_entry_into(dir, entry, result_entry);
	return CALL_REAL(readdir64_r, (dir, entry, result_entry), ENOSYS);
}
#pragma GCC diagnostic pop

PRELOAD_EXPORT int closedir(DIR *dir)
{
	if (nomount_is_dir(dir))
		return nomount_closedir(dir);
	return CALL_REAL(closedir, (dir), sys_missing());
}

PRELOAD_EXPORT void rewinddir(DIR *dir)
{
	__typeof__(&rewinddir) real = REAL(rewinddir);

	if (nomount_is_dir(dir))
		nomount_rewinddir(dir);
	else if (real)
		real(dir);
}

PRELOAD_EXPORT int dirfd(DIR *dir)
{
	if (nomount_is_dir(dir))
		return nomount_dirfd(dir);
	return CALL_REAL(dirfd, (dir), sys_missing());
}

PRELOAD_EXPORT long telldir(DIR *dir)
{
	if (nomount_is_dir(dir))
		return nomount_telldir(dir);
	return CALL_REAL(telldir, (dir), sys_missing());
}

PRELOAD_EXPORT void seekdir(DIR *dir, long pos)
{
	__typeof__(&seekdir) real = REAL(seekdir);

	if (nomount_is_dir(dir))
		nomount_seekdir(dir, pos);
	else if (real)
		real(dir, pos);
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
