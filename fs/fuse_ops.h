/*
 * fuse_ops.h - the FUSE low-level operations over the caching engine.
 *
 * A struct nearfs_fs joins the engine, the inode table and the FUSE
 * session.  Its operations table is given to fuse_session_new() with the
 * nearfs_fs as userdata.  Requests may run on many threads at once.
 */
#ifndef NEARFS_FUSE_OPS_H
#define NEARFS_FUSE_OPS_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312	/* the libfuse 3.12 API */
#endif

#include <fuse_lowlevel.h>

#include "cache.h"

struct nearfs_fs;

extern const struct fuse_lowlevel_ops nearfs_fuse_ops;

/*
 * Create the filesystem state over c (which stays owned by the caller and
 * must outlive the state) and register its invalidation callback with the
 * engine.  Files are shown with the daemon's uid and gid when the origin
 * stores none.  -ENOMEM.
 */
int nearfs_fs_new(struct cache *c, struct nearfs_fs **out);

/* Apply uid=, gid= and umask= (each -1 when not given): the owner and
 * group shown for every file, and the mode bits cleared from it. */
void nearfs_fs_set_owner(struct nearfs_fs *fs, long uid, long gid,
			 int umask);

/* Ask for FUSE passthrough of complete copies (-o passthrough) at the
 * next nearfs_fs_start(). */
void nearfs_fs_set_passthrough(struct nearfs_fs *fs, bool on);

/* Set the id of the mount in /proc/self/mountinfo, so that a close can
 * tell whether its process has another descriptor of the file. */
void nearfs_fs_set_mount_id(struct nearfs_fs *fs, int id);

/* Fill st with the attributes that stat(2) of a file with attr shows on
 * the mount: uid=, gid= and umask= applied, and default modes where the
 * origin stores none.  st_ino is 0. */
void nearfs_fs_file_stat(const struct nearfs_fs *fs,
			 const struct origin_attr *attr, struct stat *st);

/*
 * Start the thread that turns engine invalidations into kernel
 * notifications on se.  Call it once, after fuse_session_mount() and in
 * the process that runs the session loop.  Returns 0, or -errno from
 * pthread_create().
 */
int nearfs_fs_start(struct nearfs_fs *fs, struct fuse_session *se);

/*
 * Wait until the kernel has received every page cache invalidation that
 * the engine reported before this call, so that the next read of those
 * files reaches the daemon.  Returns at once when the notification
 * thread does not run.  Must not be called from a FUSE request handler.
 */
void nearfs_fs_wait_invalidations(struct nearfs_fs *fs);

/* Set the target of the control link in the root (NEARFS_CTL_LINK of
 * ctl_link.h), the path of the control socket; the string is copied.
 * Call before the session loop starts.  -ENOMEM. */
int nearfs_fs_set_ctl_path(struct nearfs_fs *fs, const char *path);

/*
 * Stop the notification thread.  Invalidations that arrive later are
 * dropped.  Call after the session loop returned and before the session
 * is destroyed.
 */
void nearfs_fs_stop(struct nearfs_fs *fs);

/* Stop the thread if it still runs and free the state.  The engine may
 * call the invalidation callback until cache_close(), so call this after
 * it. */
void nearfs_fs_free(struct nearfs_fs *fs);

#endif
