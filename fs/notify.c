/* notify.c - send state messages to the service manager (notify.h). */
#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

static int send_datagram(const char *path, const char *msg)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	socklen_t addrlen;
	int fd, ret = 0;

	if ((path[0] != '/' && path[0] != '@') || len < 2 ||
	    len >= sizeof(addr.sun_path))
		return -EINVAL;
	memcpy(addr.sun_path, path, len);
	/* "@name" is a name in the abstract namespace: a leading NUL. */
	if (path[0] == '@')
		addr.sun_path[0] = '\0';
	addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL,
		   (struct sockaddr *)&addr, addrlen) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int service_notify(const char *fmt, ...)
{
	static atomic_bool warned;
	const char *path = getenv("NOTIFY_SOCKET");
	char msg[1024];
	va_list ap;
	int ret;

	if (!path || !*path)
		return 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ret = send_datagram(path, msg);
	if (ret && !atomic_exchange(&warned, true))
		log_warn("cannot notify the service manager at "
			 "NOTIFY_SOCKET=%s: %s", path, strerror(-ret));
	return ret;
}
