/*
 * lend.c - ask the daemon for a local copy of an open file.
 *
 * One connection to the mount's control socket per request, as
 * protocol.h defines it.  Every failure (no daemon, a "no", an error, a
 * reply that does not fit) means: keep the FUSE descriptor.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl_link.h"
#include "preload.h"
#include "preload/protocol.h"

/* Seconds the daemon has to accept the request and reply, so that a
 * daemon that hangs delays an open by this much at most. */
#define REPLY_TIMEOUT_S 2

/* Log "NAME: kept the FUSE descriptor: MESSAGE". */
static void __attribute__((format(printf, 2, 3)))
keep_fuse(const char *name, const char *fmt, ...)
{
	char message[512];
	va_list ap;

	if (!preload_debug_enabled())
		return;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	preload_debug("%s: kept the FUSE descriptor: %s", name, message);
}

/* Write the control socket path of the mount at root into buf: the
 * target of its control link, or NEARFS_PRELOAD_SOCKET. */
static int socket_path(const char *root, char *buf, size_t size)
{
	const char *override = preload_socket_override();
	char link[PATH_MAX + sizeof(NEARFS_CTL_LINK) + 1];
	ssize_t n;

	if (override) {
		if (strlen(override) >= size)
			return -ENAMETOOLONG;
		strcpy(buf, override);
		return 0;
	}
	if (root[0] == '\0')
		return -ENOENT;
	snprintf(link, sizeof(link), "%s/%s", strcmp(root, "/") ? root : "",
		 NEARFS_CTL_LINK);
	n = readlink(link, buf, size - 1);
	if (n < 0)
		return -errno;
	if ((size_t)n == size - 1)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return 0;
}

/* Send "open SIZE MTIME_SEC MTIME_NSEC\n" with fd attached. */
static int send_request(int sock, int fd, const struct statx *stx)
{
	char line[NEARFS_LEND_LINE_MAX];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = line };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	struct cmsghdr *cmsg;
	ssize_t n;

	iov.iov_len = (size_t)snprintf(line, sizeof(line),
				       "%s %" PRIu64 " %lld %" PRIu32 "\n",
				       NEARFS_LEND_REQUEST,
				       (uint64_t)stx->stx_size,
				       (long long)stx->stx_mtime.tv_sec,
				       (uint32_t)stx->stx_mtime.tv_nsec);
	memset(control.buf, 0, sizeof(control.buf));
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	do {
		/* MSG_NOSIGNAL: a daemon that hung up must not raise
		 * SIGPIPE in the program. */
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == iov.iov_len ? 0 : -EIO;
}

/* The reply line, without its newline, and the descriptors that came
 * with it. */
struct reply {
	char *line;
	int fd;		/* the one descriptor received, or -1 */
	bool extra_fds;	/* more than one arrived, or some were cut off */
};

/* Read the one reply line; -EPROTO when the daemon hangs up before a
 * whole line. */
static int read_reply(struct line_reader *reader, struct reply *reply)
{
	int len = reader_next_line(reader, &reply->line);

	reply->fd = reader->fd;
	reply->extra_fds = reader->extra_fds;
	if (len == -EMSGSIZE)
		return -EPROTO;
	return len < 0 ? len : 0;
}

/* The length of line, for messages. */
static int text_len(const char *line)
{
	return (int)strlen(line);
}

/* Whether line is WORD alone or WORD followed by a space. */
static bool starts_with_word(const char *line, const char *word)
{
	size_t len = strlen(word);

	return strncmp(line, word, len) == 0 &&
	       (line[len] == ' ' || line[len] == '\0');
}

/* Check an "ok SIZE" reply and its descriptor against the file. */
static int check_lent(const char *name, const struct reply *reply,
		      struct swap_entry *entry)
{
	const char *size_text = reply->line + strlen(NEARFS_LEND_OK) + 1;
	uint64_t want = entry->attrs.stx_size;
	unsigned long long size;
	struct stat st;
	char *end;
	long flags;

	errno = 0;
	size = strtoull(size_text, &end, 10);
	if (errno || end == size_text || *end != '\0' || size != want) {
		keep_fuse(name, "the reply '%.*s' does not match the file "
			  "size %" PRIu64, text_len(reply->line), reply->line,
			  want);
		return -EPROTO;
	}
	if (reply->fd < 0 || reply->extra_fds) {
		keep_fuse(name, "the reply '%.*s' came with %s descriptor "
			  "instead of one", text_len(reply->line),
			  reply->line, reply->fd < 0 ? "no" : "more than one");
		return -EPROTO;
	}
	flags = sys_fcntl(reply->fd, F_GETFL, 0);
	if (sys_fstatat(reply->fd, "", &st, AT_EMPTY_PATH) != 0 ||
	    !S_ISREG(st.st_mode) || (uint64_t)st.st_size != want ||
	    flags < 0 || (flags & O_ACCMODE) != O_RDONLY) {
		keep_fuse(name, "the lent descriptor is not a read-only "
			  "regular file of %" PRIu64 " bytes", want);
		return -EPROTO;
	}
	entry->local_dev = st.st_dev;
	entry->local_ino = st.st_ino;
	return 0;
}

/* Make sense of the reply; 0 when it lends a usable copy. */
static int check_reply(const char *name, const struct reply *reply,
		       struct swap_entry *entry)
{
	const char *line = reply->line;

	if (strncmp(line, NEARFS_LEND_OK " ", strlen(NEARFS_LEND_OK " ")) == 0)
		return check_lent(name, reply, entry);
	if (starts_with_word(line, NEARFS_LEND_NO)) {
		/* The reason follows the word and its space. */
		const char *reason = line + strlen(NEARFS_LEND_NO);

		reason += strspn(reason, " ");
		keep_fuse(name, "the daemon lends no copy: %.*s",
			  text_len(reason), reason);
	} else if (strncmp(line, "error:", 6) == 0)
		keep_fuse(name, "the daemon rejected the request: %.*s",
			  text_len(line), line);
	else
		keep_fuse(name, "invalid reply '%.*s'", text_len(line), line);
	return -EPROTO;
}

int lend_request(const char *root, int fd, const char *name,
		 struct swap_entry *entry)
{
	struct reply reply = { .line = NULL, .fd = -1 };
	struct line_reader reader;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int sock, ret;

	ret = socket_path(root, path, sizeof(path));
	if (ret == -ENOENT && root[0] == '\0') {
		keep_fuse(name, "only bind mounts of a subdirectory show this "
			  "nearfs mount, so its control link %s is out of "
			  "reach", NEARFS_CTL_LINK);
		return -1;
	}
	if (ret) {
		keep_fuse(name, "cannot read the control link %s/%s: %s",
			  strcmp(root, "/") ? root : "", NEARFS_CTL_LINK,
			  strerror(-ret));
		return -1;
	}
	sock = sock_connect(path, REPLY_TIMEOUT_S);
	if (sock < 0) {
		keep_fuse(name, "cannot connect to %s: %s", path,
			  strerror(-sock));
		return -1;
	}
	ret = send_request(sock, fd, &entry->attrs);
	if (ret) {
		keep_fuse(name, "cannot send the request to %s: %s", path,
			  strerror(-ret));
	} else {
		reader_init(&reader, sock);
		ret = read_reply(&reader, &reply);
		if (ret == -EPROTO)
			keep_fuse(name, "%s closed the connection before a "
				  "whole reply line", path);
		else if (ret)
			keep_fuse(name, "no reply from %s: %s", path,
				  strerror(-ret));
		else
			ret = check_reply(name, &reply, entry);
	}
	sys_close(sock);
	if (ret == 0)
		return reply.fd;
	if (reply.fd >= 0)
		sys_close(reply.fd);
	return -1;
}
