/*
 * metrics.c - a minimal HTTP/1.1 server for GET /metrics (metrics.h):
 * it reads one request per connection, replies, and closes it.
 */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "stats.h"

/* Seconds a client may take to send its request or read the reply. */
#define METRICS_CLIENT_TIMEOUT_S 5
/* Bytes of a request head (request line and headers) read at most. */
#define REQUEST_HEAD_MAX 8192

struct metrics_server {
	const struct ctl_info *info;
	int listen_fd;
	atomic_bool stopping;	/* set by metrics_stop() */
	pthread_t thread;
	char name[64];		/* ADDRESS:PORT, for messages */
};

/* Send all of buf; a client that went away gets nothing. */
static void send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

static void send_response(int fd, const char *status, const char *extra,
			  const char *body, size_t len, bool head_only)
{
	char head[512];
	int n;

	n = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Type: %s\r\n"
		     "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
		     status, body && strncmp(status, "200", 3) == 0 ?
		     "text/plain; version=0.0.4; charset=utf-8" :
		     "text/plain; charset=utf-8", len, extra);
	send_all(fd, head, (size_t)n);
	if (!head_only)
		send_all(fd, body, len);
}

static void send_error(int fd, const char *status, const char *extra,
		       const char *message, bool head_only)
{
	send_response(fd, status, extra, message, strlen(message), head_only);
}

/* Read the request head into buf (size bytes).  Returns its length, or
 * -1 when the client sent no complete head in time. */
static ssize_t read_head(int fd, char *buf, size_t size)
{
	size_t len = 0;

	while (len + 1 < size) {
		ssize_t n = recv(fd, buf + len, size - 1 - len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
			return (ssize_t)len;
	}
	return -1;
}

/* Reply to one request: the metrics for GET or HEAD of /metrics, else an
 * error status.  Rejected requests are logged at debug level, because
 * any local program can send them. */
static void serve_request(struct metrics_server *m, int fd)
{
	char head[REQUEST_HEAD_MAX], method[16], target[1024], version[16];
	char *body, *query;
	bool head_only;

	if (read_head(fd, head, sizeof(head)) < 0) {
		log_debug("metrics endpoint %s: no complete request within "
			  "%d s or %d bytes", m->name, METRICS_CLIENT_TIMEOUT_S,
			  REQUEST_HEAD_MAX);
		return;
	}
	if (sscanf(head, "%15s %1023s %15s", method, target, version) != 3 ||
	    strncmp(version, "HTTP/1.", 7) != 0) {
		log_debug("metrics endpoint %s: rejected a request that is not "
			  "HTTP/1.x", m->name);
		send_error(fd, "400 Bad Request", "",
			   "invalid request: expected GET /metrics\n", false);
		return;
	}
	head_only = strcmp(method, "HEAD") == 0;
	if (strcmp(method, "GET") != 0 && !head_only) {
		log_debug("metrics endpoint %s: rejected method %s", m->name,
			  method);
		send_error(fd, "405 Method Not Allowed", "Allow: GET, HEAD\r\n",
			   "only GET /metrics is served\n", false);
		return;
	}
	query = strchr(target, '?');
	if (query)
		*query = '\0';
	if (strcmp(target, "/metrics") != 0) {
		log_debug("metrics endpoint %s: %s not found", m->name, target);
		send_error(fd, "404 Not Found", "",
			   "not found: the metrics are at /metrics\n",
			   head_only);
		return;
	}
	if (stats_format_metrics(m->info, &body) != 0) {
		log_warn("metrics endpoint %s: out of memory for the reply",
			 m->name);
		send_error(fd, "500 Internal Server Error", "",
			   "out of memory\n", head_only);
		return;
	}
	send_response(fd, "200 OK", "", body, strlen(body), head_only);
	free(body);
}

/*
 * Accept and serve connections until metrics_stop() shuts the listening
 * socket down, which makes a blocked accept(2) fail with EINVAL (Linux).
 */
static void *metrics_main(void *arg)
{
	struct metrics_server *m = arg;
	struct timeval timeout = { .tv_sec = METRICS_CLIENT_TIMEOUT_S };

	while (!atomic_load(&m->stopping)) {
		int fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED ||
			    atomic_load(&m->stopping))
				continue;
			log_err("metrics endpoint %s: accept failed: %s; it "
				"stops", m->name, strerror(errno));
			break;
		}
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout,
			   sizeof(timeout));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout,
			   sizeof(timeout));
		serve_request(m, fd);
		close(fd);
	}
	return NULL;
}

/* Create the listening socket of address:port. */
static int listen_on(struct metrics_server *m, const char *address,
		     unsigned port, char *err, size_t errlen)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int one = 1, saved;

	if (inet_pton(AF_INET, address, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, address, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		len = sizeof(*in6);
	} else {
		snprintf(err, errlen, "invalid metrics address '%s': give an "
			 "IP address, for example metrics=127.0.0.1:9100",
			 address);
		return -EINVAL;
	}
	m->listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (m->listen_fd < 0) {
		saved = errno;
		snprintf(err, errlen, "cannot create the socket of the metrics "
			 "endpoint %s: %s", m->name, strerror(saved));
		return -saved;
	}
	setsockopt(m->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(m->listen_fd, (struct sockaddr *)&ss, len) != 0 ||
	    listen(m->listen_fd, 16) != 0) {
		saved = errno;
		snprintf(err, errlen, "cannot listen on %s for the metrics "
			 "endpoint: %s%s", m->name, strerror(saved),
			 saved == EADDRINUSE ? "; choose another port with -o "
			 "metrics=ADDRESS:PORT" : "");
		close(m->listen_fd);
		m->listen_fd = -1;
		return -saved;
	}
	return 0;
}

int metrics_start(const struct ctl_info *info, const char *address,
		  unsigned port, struct metrics_server **out, char *err,
		  size_t errlen)
{
	struct metrics_server *m = calloc(1, sizeof(*m));
	int ret;

	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->info = info;
	m->listen_fd = -1;
	snprintf(m->name, sizeof(m->name), strchr(address, ':') ?
		 "[%s]:%u" : "%s:%u", address, port);
	ret = listen_on(m, address, port, err, errlen);
	if (ret) {
		free(m);
		return ret;
	}
	ret = -pthread_create(&m->thread, NULL, metrics_main, m);
	if (ret) {
		snprintf(err, errlen, "cannot start the metrics thread: %s",
			 strerror(-ret));
		close(m->listen_fd);
		free(m);
		return ret;
	}
	log_info("metrics endpoint at http://%s/metrics", m->name);
	*out = m;
	return 0;
}

void metrics_stop(struct metrics_server *m)
{
	if (!m)
		return;
	atomic_store(&m->stopping, true);
	shutdown(m->listen_fd, SHUT_RDWR);
	pthread_join(m->thread, NULL);
	close(m->listen_fd);
	free(m);
}
