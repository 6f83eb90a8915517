/*
 * kernel_ra.h - the kernel's own readahead for a nearfs mount.
 *
 * The kernel reads ahead of a FUSE file by 128 KiB by default, so a
 * re-read of cached data after drop_caches reaches the daemon in small
 * requests.  nearfs raises it through the mount's backing device info in
 * sysfs, which only root may change.  The kernel lowers it again to the
 * max_readahead of the INIT reply, so it is raised only after that reply.
 */
#ifndef NEARFS_KERNEL_RA_H
#define NEARFS_KERNEL_RA_H

#include <stdbool.h>

/* Mount id (*id) and device numbers of the newest FUSE mount on
 * mountpoint (an absolute path), from /proc/self/mountinfo.  Any pointer
 * may be NULL.  Returns 0, -ENOENT when there is no such mount, or the
 * -errno of opening mountinfo. */
int mount_ids(const char *mountpoint, int *id, unsigned *major,
	      unsigned *minor);

/* Set the kernel's readahead of the mount to kib KiB.  Failures (not
 * root, no sysfs) leave the default and are logged at debug level. */
void kernel_readahead_raise(const char *mountpoint, unsigned kib);

/* Raise it from a new thread once a stat() of the mount returns, which
 * is after the FUSE loop runs and the kernel has taken the INIT reply.
 * The thread reads a copy of mountpoint. */
void kernel_readahead_raise_later(const char *mountpoint, unsigned kib);

#endif
