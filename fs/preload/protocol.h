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

#endif
