/*
 * real.c - find the definitions that the library's functions hide.
 *
 * Each interposed function calls the next definition of its own name,
 * found with dlsym(RTLD_NEXT) on first use: that is libc's, or the one of
 * another preloaded library after this one.  dlsym may itself open files
 * or allocate, and the allocator may open files too, so a call that
 * arrives while the same thread is inside dlsym gets NULL and makes the
 * system call directly.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"

static const char *const real_names[REAL_SYMBOL_COUNT] = {
#define PRELOAD_REAL_NAME(name) [REAL_##name] = #name,
	PRELOAD_REAL_SYMBOLS(PRELOAD_REAL_NAME)
#undef PRELOAD_REAL_NAME
};

static void *_Atomic real_fns[REAL_SYMBOL_COUNT];

/* initial-exec: a preloaded library has static TLS, and reaching it
 * this way calls nothing that could come back here. */
static __thread int resolving __attribute__((tls_model("initial-exec")));

void *real_symbol(enum real_symbol id)
{
	void *fn = atomic_load_explicit(&real_fns[id], memory_order_acquire);
	int saved_errno;

	if (fn || resolving)
		return fn;
	saved_errno = errno;
	resolving = 1;
	fn = dlsym(RTLD_NEXT, real_names[id]);
	resolving = 0;
	errno = saved_errno;
	/* Two threads may both look up the same name; they find the same
	 * address. */
	atomic_store_explicit(&real_fns[id], fn, memory_order_release);
	return fn;
}

int sys_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

int sys_close(int fd)
{
	return (int)syscall(SYS_close, fd);
}

int sys_dup3(int oldfd, int newfd, int flags)
{
	/* dup2(fd, fd) returns fd when it is open, where dup3 fails. */
	if (oldfd == newfd && flags == 0)
		return syscall(SYS_fcntl, oldfd, F_GETFD) < 0 ? -1 : newfd;
	return (int)syscall(SYS_dup3, oldfd, newfd, flags);
}

long sys_fcntl(int fd, int cmd, long arg)
{
	return syscall(SYS_fcntl, fd, cmd, arg);
}

int sys_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	/* On 64-bit Linux the kernel's struct stat is glibc's. */
	return (int)syscall(SYS_newfstatat, dirfd, path, st, flags);
}

int sys_statx(int dirfd, const char *path, int flags, unsigned mask,
	      struct statx *stx)
{
	return (int)syscall(SYS_statx, dirfd, path, flags, mask, stx);
}

int sys_close_range(unsigned first, unsigned last, int flags)
{
	return (int)syscall(SYS_close_range, first, last, flags);
}

int sys_missing(void)
{
	errno = ENOSYS;
	return -1;
}
