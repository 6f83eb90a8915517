/*
 * roots.h - the files that name the roots served without FUSE.
 *
 * A daemon started with -o nomount writes its ROOT and a newline to
 * <pid>.nomount (NEARFS_NOMOUNT_SUFFIX in preload/protocol.h) beside its
 * control socket <pid>.sock, once the socket listens, and removes the
 * file when it stops.  The daemon uses these functions to reject a
 * second daemon for the same root, and nearfs-ctl to find the daemon of
 * a root.  They use only libc, because nearfs-ctl links them too.
 */
#ifndef NEARFS_ROOTS_H
#define NEARFS_ROOTS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Folders that hold the control sockets of the caller's daemons:
 * /run/nearfs, $XDG_RUNTIME_DIR/nearfs and /tmp/nearfs-UID. */
#define ROOTS_DIRS_MAX 3

/*
 * Write absolute path to out (size bytes) without empty and "."
 * components and without a trailing slash ("/" stays "/").  With dotdot
 * set a ".." component removes the one before it, as a string, else it
 * is rejected.  Returns 0, -EINVAL for a relative path, a rejected ".."
 * or one above "/", or -ENAMETOOLONG.
 */
int roots_normalize(const char *path, bool dotdot, char *out, size_t size);

/* Store the folders that may hold the caller's control sockets in dirs
 * and return their count; folders that cannot be named are left out. */
size_t roots_dirs(char dirs[ROOTS_DIRS_MAX][PATH_MAX]);

/* Called for every live daemon that serves a root: its pid, its root and
 * the path of its socket.  A non-zero return stops the scan. */
typedef int (*roots_fn)(void *arg, pid_t pid, const char *root,
			const char *sock);

/*
 * Call fn for each <pid>.nomount file in dir whose daemon accepts a
 * connection on <pid>.sock; other files are left to their owners.
 * Returns 0 (also when dir is missing) or the non-zero return of fn.
 */
int roots_scan(const char *dir, roots_fn fn, void *arg);

/*
 * Find the live daemon in dir that serves root.  Returns its pid, or 0
 * when there is none.
 */
pid_t roots_find(const char *dir, const char *root);

/*
 * Write root to the .nomount file of the socket sock (".../<pid>.sock"),
 * holding an flock(2) of its folder, so that two daemons that start
 * together cannot both claim one root.  Returns 0, -EEXIST when a live
 * daemon serves root already (its pid in *other), or -errno with a
 * message in err.
 */
int roots_publish(const char *sock, const char *root, pid_t *other,
		  char *err, size_t errlen);

/* Remove the .nomount file of the socket sock. */
void roots_unpublish(const char *sock);

/*
 * Remove the control sockets in dir of daemons that ended without
 * removing them (a kill -9, a second SIGTERM during the upload at exit):
 * each <pid>.sock whose pid is gone and that refuses connections.
 */
void roots_remove_stale_sockets(const char *dir);

#endif
