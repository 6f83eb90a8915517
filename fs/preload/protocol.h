/*
 * protocol.h - how the preload library requests a local copy from the daemon.
 *
 * The library talks to the daemon over the mount's control socket, found
 * with readlink(2) of MOUNTPOINT/.nearfs-ctl (see ctl_link.h).  One
 * connection carries one request:
 *
 *   client: "open SIZE MTIME_SEC MTIME_NSEC\n", sent with sendmsg(2)
 *           and one SCM_RIGHTS descriptor: the caller's own descriptor
 *           of the file, opened O_RDONLY through the mount.  SIZE and
 *           MTIME are what fstat(2) of that descriptor reports, and name
 *           the version the caller opened.
 *   server: "ok SIZE\n" with one SCM_RIGHTS descriptor, read-only, of a
 *           local file whose bytes 0..SIZE are that version's content;
 *           or "no REASON\n" when it lends nothing (the copy is not
 *           complete, the file has unsaved writes, the version changed,
 *           the caller may not read it); or "error: MESSAGE\n".
 *
 * The daemon finds the file from the passed descriptor, so a client can
 * only ask for files it has opened; it checks the caller's SO_PEERCRED
 * credentials against the file's mode too.  The bytes of a lent
 * descriptor never change: eviction and newer versions leave them alone.
 */
#ifndef NEARFS_PRELOAD_PROTOCOL_H
#define NEARFS_PRELOAD_PROTOCOL_H

#define NEARFS_LEND_REQUEST "open"
#define NEARFS_LEND_OK "ok"
#define NEARFS_LEND_NO "no"
/* Maximum length of a request or reply line, newline included. */
#define NEARFS_LEND_LINE_MAX 256

/*
 * Paths served without FUSE (nearfs -o nomount ORIGIN ROOT).  The daemon
 * writes ROOT, an absolute path and a newline, to the file
 * <pid>.nomount beside its control socket <pid>.sock, and removes both
 * when it stops.  The library finds the roots by reading those files in
 * the control socket folders (/run/nearfs, $XDG_RUNTIME_DIR/nearfs,
 * /tmp/nearfs-<uid>), and serves every call on a path at or below a
 * root through that socket.  Only the daemon's uid and root are served.
 *
 * PATH arguments are relative to ROOT, start with "/" and are
 * percent-encoded: every byte up to 0x20, '%' and every byte from 0x7f
 * up is written as %XX.  Numbers are decimal.  ERRNO is a positive errno
 * value that the library sets for the failed call.
 *
 *   "path-stat PATH"         "ok MODE UID GID SIZE MTIME_SEC MTIME_NSEC
 *                            NLINK\n", MODE with its type bits
 *   "path-list PATH"         "ok\n", then one line per entry, "MODE SIZE
 *                            MTIME_SEC MTIME_NSEC NAME\n" (NAME encoded
 *                            as a path component), then "end\n"
 *   "path-open PATH FLAGS MODE"
 *                            "ok SIZE\n" with one SCM_RIGHTS descriptor.
 *                            FLAGS are open(2) flags.  Read-only: a
 *                            read-only descriptor of the complete local
 *                            copy, fetched first if need be.  Otherwise
 *                            a read-write descriptor of a local file
 *                            with the current content (empty after
 *                            O_TRUNC or a create); the connection then
 *                            stays open as the handle of the file, and
 *                            "fsync\n" or "close\n" on it commit what
 *                            the descriptor holds, by the mount's write
 *                            mode, and reply "ok\n" or "err ERRNO\n".
 *                            The server closes the handle after "close";
 *                            a handle that ends without it is committed
 *                            as if closed.
 *   "path-mkdir PATH MODE", "path-unlink PATH", "path-rmdir PATH",
 *   "path-rename FROM TO", "path-truncate PATH SIZE"
 *                            "ok\n"
 *
 * Any of them may instead reply "err ERRNO\n".
 */
#define NEARFS_NOMOUNT_SUFFIX ".nomount"
/* Maximum length of a path request line, newline included. */
#define NEARFS_PATH_LINE_MAX 16384

#endif
