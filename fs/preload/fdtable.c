/*
 * fdtable.c - the descriptors the library tracks and what they report.
 *
 * Swapped descriptors report the attributes of their FUSE file, and the
 * descriptors of paths served without FUSE report the daemon's
 * attributes and keep their handle connection (enum swap_kind).
 *
 * One entry per descriptor number below PRELOAD_FD_MAX, so that threads
 * working on different descriptors never touch the same entry.  The
 * table takes no lock: a signal handler may call close(2) or fstat(2)
 * while its thread is inside the library, and a fork may happen at any
 * moment.  Each entry has a sequence lock instead (preload.h).  Only the
 * thread that owns a descriptor number writes its entry, unless the
 * program itself races on that number.
 *
 * Entries are hints checked on use: a stat result is replaced only when
 * its st_dev and st_ino are those of the local copy.  So an entry that
 * outlived its descriptor, after a close the library did not see (one
 * inside libc, say), never changes what a stat reports.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "preload.h"

struct slot {
	_Atomic unsigned seq;
	struct swap_entry entry;
};

static _Atomic bool swapped[PRELOAD_FD_MAX];
static struct slot slots[PRELOAD_FD_MAX];

/*
 * The process the table belongs to.  0 until the library's constructor
 * ran, so nothing is swapped before then.  The child of fork(2) sets its
 * own pid; the child of vfork(2) shares this memory with its parent and
 * must leave the table alone.
 */
static _Atomic pid_t owner;

bool fdtable_owned(void)
{
	pid_t pid = atomic_load_explicit(&owner, memory_order_relaxed);

	return pid != 0 && pid == getpid();
}

void fdtable_claim(void)
{
	atomic_store_explicit(&owner, getpid(), memory_order_relaxed);
}

static bool in_range(int fd)
{
	return fd >= 0 && fd < PRELOAD_FD_MAX;
}

bool fdtable_is_swapped(int fd)
{
	return in_range(fd) &&
	       atomic_load_explicit(&swapped[fd], memory_order_acquire);
}

/* Copy the entry of fd into out; false when fd is not swapped. */
static bool read_entry(int fd, struct swap_entry *out)
{
	struct slot *slot = &slots[fd];
	unsigned start;

	for (int i = 0; i < SEQ_READ_ATTEMPTS; i++) {
		if (!seq_read_begin(&slot->seq, &start))
			continue;
		if (!atomic_load_explicit(&swapped[fd], memory_order_relaxed))
			return false;
		memcpy(out, &slot->entry, sizeof(*out));
		if (seq_read_valid(&slot->seq, start))
			return true;
	}
	return false;
}

static void set_entry(int fd, const struct swap_entry *entry)
{
	struct slot *slot = &slots[fd];
	unsigned odd = seq_write_begin(&slot->seq);

	if (entry)
		memcpy(&slot->entry, entry, sizeof(*entry));
	atomic_store_explicit(&swapped[fd], entry != NULL,
			      memory_order_relaxed);
	seq_write_end(&slot->seq, odd);
}

void fdtable_set(int fd, const struct swap_entry *entry)
{
	if (in_range(fd) && fdtable_owned())
		set_entry(fd, entry);
}

void fdtable_forget(int fd)
{
	if (fdtable_is_swapped(fd) && fdtable_owned())
		set_entry(fd, NULL);
}

void fdtable_forget_range(unsigned first, unsigned last)
{
	bool owned = false, checked = false;

	for (unsigned fd = first; fd <= last && fd < PRELOAD_FD_MAX; fd++) {
		if (!fdtable_is_swapped((int)fd))
			continue;
		if (!checked) {
			owned = fdtable_owned();
			checked = true;
		}
		if (!owned)
			return;
		set_entry((int)fd, NULL);
	}
}

void fdtable_copy(int from, int to)
{
	struct swap_entry entry;
	bool from_swapped = fdtable_is_swapped(from);

	if (from == to || !in_range(to))
		return;
	if (!from_swapped && !fdtable_is_swapped(to))
		return;
	if (!fdtable_owned())
		return;
	if (from_swapped && read_entry(from, &entry) &&
	    entry.kind != SWAP_HANDLE)
		set_entry(to, &entry);
	else
		set_entry(to, NULL);
}

bool fdtable_handle_in_use(int handle, int skip)
{
	struct swap_entry entry;

	for (int fd = 0; fd < PRELOAD_FD_MAX; fd++) {
		if (fd == skip || !fdtable_is_swapped(fd) ||
		    !read_entry(fd, &entry))
			continue;
		if (entry.kind == SWAP_NOMOUNT_WRITE && entry.handle == handle)
			return true;
	}
	return false;
}

void fdtable_move_handle(int handle, int moved)
{
	struct swap_entry entry;

	if (!fdtable_owned() || !in_range(moved))
		return;
	for (int fd = 0; fd < PRELOAD_FD_MAX; fd++) {
		if (!fdtable_is_swapped(fd) || !read_entry(fd, &entry))
			continue;
		if (entry.kind == SWAP_NOMOUNT_WRITE &&
		    entry.handle == handle) {
			entry.handle = moved;
			set_entry(fd, &entry);
		}
	}
	if (fdtable_is_swapped(handle) && read_entry(handle, &entry) &&
	    entry.kind == SWAP_HANDLE) {
		set_entry(moved, &entry);
		set_entry(handle, NULL);
	}
}

bool fdtable_take_handle(int handle, struct swap_entry *entry)
{
	if (!fdtable_is_swapped(handle) || !fdtable_owned() ||
	    !read_entry(handle, entry) || entry->kind != SWAP_HANDLE)
		return false;
	/* Clearing the flag leaves the entry whole for readers, and only
	 * one of two threads that race here finds it set. */
	return atomic_exchange(&swapped[handle], false);
}

void fdtable_each(enum swap_kind kind,
		  void (*fn)(int fd, const struct swap_entry *entry, void *arg),
		  void *arg)
{
	struct swap_entry entry;

	for (int fd = 0; fd < PRELOAD_FD_MAX; fd++) {
		if (fdtable_is_swapped(fd) && read_entry(fd, &entry) &&
		    entry.kind == kind)
			fn(fd, &entry, arg);
	}
}

/* Read the entry of fd when it describes the local file (dev, ino). */
static bool lookup_local(int fd, dev_t dev, ino_t ino,
			 struct swap_entry *entry)
{
	if (!fdtable_is_swapped(fd) || !read_entry(fd, entry))
		return false;
	return entry->local_dev == dev && entry->local_ino == ino;
}

bool fdtable_peek(int fd, struct swap_entry *entry)
{
	return fdtable_is_swapped(fd) && read_entry(fd, entry);
}

bool fdtable_lookup(int fd, struct swap_entry *entry)
{
	struct stat st;
	int saved_errno = errno;
	bool ok;

	if (!fdtable_is_swapped(fd))
		return false;
	ok = sys_fstatat(fd, "", &st, AT_EMPTY_PATH) == 0;
	errno = saved_errno;
	return ok && lookup_local(fd, st.st_dev, st.st_ino, entry);
}

void statx_to_stat(const struct statx *stx, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = makedev(stx->stx_dev_major, stx->stx_dev_minor);
	st->st_ino = stx->stx_ino;
	st->st_nlink = stx->stx_nlink;
	st->st_mode = stx->stx_mode;
	st->st_uid = stx->stx_uid;
	st->st_gid = stx->stx_gid;
	st->st_rdev = makedev(stx->stx_rdev_major, stx->stx_rdev_minor);
	st->st_size = (off_t)stx->stx_size;
	st->st_blksize = (blksize_t)stx->stx_blksize;
	st->st_blocks = (blkcnt_t)stx->stx_blocks;
	st->st_atim.tv_sec = stx->stx_atime.tv_sec;
	st->st_atim.tv_nsec = stx->stx_atime.tv_nsec;
	st->st_mtim.tv_sec = stx->stx_mtime.tv_sec;
	st->st_mtim.tv_nsec = stx->stx_mtime.tv_nsec;
	st->st_ctim.tv_sec = stx->stx_ctime.tv_sec;
	st->st_ctim.tv_nsec = stx->stx_ctime.tv_nsec;
}

void fdtable_fix_stat(int fd, struct stat *st)
{
	struct swap_entry entry;
	off_t size = st->st_size;
	blkcnt_t blocks = st->st_blocks;

	if (!lookup_local(fd, st->st_dev, st->st_ino, &entry) ||
	    entry.kind == SWAP_HANDLE)
		return;
	statx_to_stat(&entry.attrs, st);
	if (entry.kind == SWAP_NOMOUNT_WRITE) {
		/* The program's own writes change the size. */
		st->st_size = size;
		st->st_blocks = blocks;
	}
}

bool fdtable_is_local_copy(int fd)
{
	struct swap_entry entry;

	if (!fdtable_lookup(fd, &entry))
		return false;
	return entry.kind == SWAP_LENT || entry.kind == SWAP_NOMOUNT_READ ||
	       entry.kind == SWAP_NOMOUNT_DIR;
}

void fdtable_fix_statx(int fd, struct statx *stx)
{
	struct swap_entry entry;
	struct stat st;
	uint64_t size, blocks;
	int saved_errno;

	if (!fdtable_is_swapped(fd))
		return;
	if (stx->stx_mask & STATX_INO) {
		st.st_dev = makedev(stx->stx_dev_major, stx->stx_dev_minor);
		st.st_ino = stx->stx_ino;
	} else {
		/* The caller's statx did not return the inode number. */
		saved_errno = errno;
		if (sys_fstatat(fd, "", &st, AT_EMPTY_PATH) != 0)
			st.st_ino = 0;
		errno = saved_errno;
	}
	if (!lookup_local(fd, st.st_dev, st.st_ino, &entry) ||
	    entry.kind == SWAP_HANDLE)
		return;
	size = stx->stx_size;
	blocks = stx->stx_blocks;
	memcpy(stx, &entry.attrs, sizeof(*stx));
	if (entry.kind == SWAP_NOMOUNT_WRITE) {
		stx->stx_size = size;
		stx->stx_blocks = blocks;
	}
}
