/*
 * ctl.h - the daemon's control socket, the server side of nearfs-ctl and
 * of the preload library.
 *
 * A Unix stream socket at /run/nearfs/<pid>.sock for root, else at
 * $XDG_RUNTIME_DIR/nearfs/<pid>.sock or /tmp/nearfs-<uid>/<pid>.sock.
 * A client sends one request line, such as "stats" or "stats json", and
 * reads the reply until the server closes the connection.  A reply that
 * starts with "error: " reports a rejected request.
 *
 * "open" (fs/preload/protocol.h) is served to every user that can connect,
 * because it checks the client's credentials against the file's mode
 * itself.  The other commands are served to the daemon's uid and root only
 * (SO_PEERCRED).  A daemon without FUSE (-o nomount) also serves the path
 * requests of protocol.h (nomount.h).  Without allow_other, folders are 0700 and the socket
 * 0600, so only the daemon's user can connect at all.  With allow_other,
 * which lets other users access the mount, the socket is 0666 and its
 * folder 0711, and a non-root daemon uses /tmp/nearfs-<uid>, because other
 * users cannot enter XDG_RUNTIME_DIR.
 */
#ifndef NEARFS_CTL_H
#define NEARFS_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"

struct nearfs_fs;
struct nomount;

/* What the server serves: the engine, the names shown beside its
 * counters, and how "open" lends local copies.  The strings must outlive
 * the server. */
struct ctl_info {
	struct cache *cache;
	const char *origin;	/* printable origin name */
	const char *mountpoint;	/* absolute, as mounted; ROOT without FUSE */
	/* The mount, which shows the mode, owner and group that "open"
	 * checks the client's permission against. */
	struct nearfs_fs *fs;
	uint64_t lend_fetch_max;	/* preload_fetch= */
	bool allow_other;	/* other users may access the mount */
	/* The path requests of a root served without FUSE; NULL on a FUSE
	 * mount, which rejects them as unknown commands. */
	const struct nomount *nomount;
};

struct ctl_server;

/*
 * Create the socket and start the server thread.  Call in the process that
 * serves the mount, after any fork into the background, because the socket
 * is named by the pid.  On failure returns -errno and writes a message
 * naming the path to err.
 */
int ctl_start(const struct ctl_info *info, struct ctl_server **out,
	      char *err, size_t errlen);

/*
 * Choose, and create, the folder of the control socket: see the top of
 * this file, with shared set for allow_other.  Returns 0 or -errno with a
 * message in err.
 */
int ctl_socket_dir(bool shared, char *dir, size_t size, char *err,
		   size_t errlen);

/* Path of the socket, valid until ctl_stop(). */
const char *ctl_socket_path(const struct ctl_server *s);

/* Stop the thread, end the handles of files open for writing through
 * path requests (which commits them), wait for the requests in progress
 * and remove the socket.  NULL is ignored. */
void ctl_stop(struct ctl_server *s);

/*
 * Format the statistics as "name: value" lines, or as one JSON object when
 * json is set, into a new string that the caller frees.  -ENOMEM.
 */
int ctl_format_stats(const struct ctl_info *info, bool json, char **out);

#endif
