/*
 * nomount.h - the path requests of the preload library for a root served
 * without FUSE (nearfs -o nomount; fs/preload/protocol.h defines them).
 *
 * The control socket (ctl.c) reads a request line and passes each one for
 * whose name nomount_serves() returns true to nomount_serve(), on a
 * thread of its own, because a path-open may fetch a whole file and a
 * writable path-open keeps its connection as the file's handle.
 */
#ifndef NEARFS_NOMOUNT_H
#define NEARFS_NOMOUNT_H

#include <stdbool.h>
#include <sys/socket.h>

#include "cache.h"

struct nearfs_fs;

/* The engine and mount state that the path requests use; both must
 * outlive the server. */
struct nomount {
	struct cache *cache;
	/* The attributes that stat(2) would show on a FUSE mount with the
	 * same uid=, gid= and umask= options. */
	const struct nearfs_fs *fs;
};

/* Whether name is the name of a path request ("path-stat", ...). */
bool nomount_serves(const char *name);

/*
 * Serve the path request "name args" of the client peer on the socket fd
 * and send the reply.  A writable path-open returns only when its handle
 * ends: after "close", or at the end of the connection, which commits
 * the file as a close does.  The caller closes fd.
 */
void nomount_serve(const struct nomount *nm, const char *name,
		   const char *args, int fd, const struct ucred *peer);

#endif
