/*
 * fdpass.h - send and receive a descriptor with a message on a Unix
 * socket (SCM_RIGHTS), for the control socket and its clients.
 */
#ifndef NEARFS_FDPASS_H
#define NEARFS_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

/* Send the len bytes of buf with descriptor fd attached, in one
 * sendmsg(2) without SIGPIPE.  Returns 0 or -errno (-EIO when only part
 * of buf was sent). */
int fdpass_send(int sock, const void *buf, size_t len, int fd);

/* Send all len bytes of buf, retrying after EINTR and short sends,
 * without SIGPIPE.  Returns 0 or -errno. */
int fdpass_send_all(int sock, const void *buf, size_t len);

/*
 * Receive up to len bytes into buf with one recvmsg(2), retried after
 * EINTR.  The first descriptor that arrives goes to *fd when *fd is -1,
 * with close-on-exec set; every other one is passed to close_fd (close(2)
 * when NULL).  Returns the byte count, 0 at the end of the stream, or
 * -errno.
 */
ssize_t fdpass_recv(int sock, void *buf, size_t len, int *fd,
		    void (*close_fd)(int fd));

#endif
