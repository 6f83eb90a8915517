/*
 * cwd.c - the current directory, for relative paths below a root served
 * without FUSE.
 *
 * A relative path can reach such a root only through the current
 * directory, which the library must join to the path itself because the
 * kernel cannot resolve the root.  So the library keeps a copy of
 * getcwd(2) and forgets it when chdir(2) or fchdir(2) succeeds, and a
 * relative path costs no system call while the copy is valid.
 *
 * The copy is under a sequence lock (preload.h); one thread at a time
 * writes it, and a thread that finds another one writing reads the
 * kernel's answer for itself.  The generation counts changes of the
 * directory.  A writer stores the generation it read before its
 * getcwd(2), so a change that races with it makes the copy stale at
 * once.  A chdir made by a direct system call, or by a thread that
 * unshared its directory (unshare(CLONE_FS)), is not seen.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"

static _Atomic unsigned generation = 1;

static struct {
	_Atomic unsigned seq;
	unsigned generation;	/* 0: nothing stored */
	size_t len;
	char path[PATH_MAX];
} copy;

static atomic_flag storing = ATOMIC_FLAG_INIT;

void cwd_changed(void)
{
	atomic_fetch_add(&generation, 1);
}

void cwd_after_fork(void)
{
	atomic_flag_clear(&storing);
}

/* Read the stored copy into buf when it is of the expected generation. */
static bool read_copy(unsigned expected, char *buf, size_t size)
{
	for (int i = 0; i < SEQ_READ_ATTEMPTS; i++) {
		unsigned start;
		bool ok;

		if (!seq_read_begin(&copy.seq, &start))
			continue;
		ok = copy.generation == expected && copy.len < size &&
		     copy.len < sizeof(copy.path);
		if (ok)
			memcpy(buf, copy.path, copy.len + 1);
		if (seq_read_valid(&copy.seq, start))
			return ok;
	}
	return false;
}

static void store_copy(unsigned current, const char *path, size_t len)
{
	unsigned odd;

	/* Not in the child of vfork(2), whose directory may differ from
	 * that of the parent it shares this memory with. */
	if (len >= sizeof(copy.path) || !fdtable_owned() ||
	    atomic_flag_test_and_set(&storing))
		return;
	odd = seq_write_begin(&copy.seq);
	copy.generation = current;
	copy.len = len;
	memcpy(copy.path, path, len + 1);
	seq_write_end(&copy.seq, odd);
	atomic_flag_clear(&storing);
}

int cwd_get(char *buf, size_t size)
{
	unsigned current = atomic_load(&generation);
	int saved_errno = errno;
	long len;

	if (read_copy(current, buf, size))
		return 0;
	/* The system call returns the length with the NUL. */
	len = syscall(SYS_getcwd, buf, size);
	if (len < 0) {
		len = -errno;
		errno = saved_errno;
		return (int)len;
	}
	if (len < 2 || buf[0] != '/')
		return -ENOENT;
	store_copy(current, buf, (size_t)len - 1);
	return 0;
}
