/*
 * sock.c - connections to a daemon's control socket, and reading its
 * reply lines and the descriptors that come with them.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "preload.h"

int sock_connect(const char *path, int timeout_s)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct timeval timeout = { .tv_sec = timeout_s };
	int sock, ret;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	if (sock <= STDERR_FILENO) {
		/* The program closed a standard descriptor: keep the socket
		 * off it, so that debug messages never reach the daemon. */
		int moved = (int)sys_fcntl(sock, F_DUPFD_CLOEXEC,
					   STDERR_FILENO + 1);

		sys_close(sock);
		if (moved < 0)
			return -errno;
		sock = moved;
	}
	/* SO_SNDTIMEO also limits connect(2) on a Unix socket. */
	if ((timeout_s > 0 &&
	     (setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &timeout,
			 sizeof(timeout)) != 0 ||
	      setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &timeout,
			 sizeof(timeout)) != 0)) ||
	    connect(sock, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		ret = -errno;
		sys_close(sock);
		return ret;
	}
	return sock;
}

int sock_send_all(int sock, const char *buf, size_t len)
{
	while (len > 0) {
		/* MSG_NOSIGNAL: a daemon that hung up must not raise
		 * SIGPIPE in the program. */
		ssize_t n = send(sock, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

void sock_take_fds(struct msghdr *msg, int *fd, bool *extra_fds)
{
	struct cmsghdr *cmsg;

	if (msg->msg_flags & MSG_CTRUNC)
		*extra_fds = true;
	for (cmsg = CMSG_FIRSTHDR(msg); cmsg; cmsg = CMSG_NXTHDR(msg, cmsg)) {
		size_t count;

		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < count; i++) {
			int received;

			memcpy(&received, CMSG_DATA(cmsg) + i * sizeof(int),
			       sizeof(int));
			if (*fd < 0) {
				*fd = received;
			} else {
				sys_close(received);
				*extra_fds = true;
			}
		}
	}
}

void reader_init(struct line_reader *r, int sock)
{
	r->sock = sock;
	r->fd = -1;
	r->extra_fds = false;
	r->start = 0;
	r->len = 0;
}

/* Receive more bytes after the ones kept; 0 at the end of the stream. */
static ssize_t reader_fill(struct line_reader *r)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(SOCK_FDS_MAX * sizeof(int))];
	} control;
	struct iovec iov;
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	ssize_t n;

	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->len - r->start);
		r->len -= r->start;
		r->start = 0;
	}
	iov.iov_base = r->buf + r->len;
	iov.iov_len = sizeof(r->buf) - 1 - r->len;
	do {
		n = recvmsg(r->sock, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	sock_take_fds(&msg, &r->fd, &r->extra_fds);
	r->len += (size_t)n;
	return n;
}

int reader_next_line(struct line_reader *r, char **line)
{
	for (;;) {
		char *start = r->buf + r->start;
		char *newline = memchr(start, '\n', r->len - r->start);
		ssize_t n;

		if (newline) {
			*newline = '\0';
			*line = start;
			r->start = (size_t)(newline + 1 - r->buf);
			return (int)(newline - start);
		}
		if (r->start == 0 && r->len == sizeof(r->buf) - 1)
			return -EMSGSIZE;
		n = reader_fill(r);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EPROTO;
	}
}
