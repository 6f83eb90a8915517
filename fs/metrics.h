/*
 * metrics.h - the HTTP endpoint of -o metrics=ADDRESS:PORT.  GET /metrics
 * returns the counters in the Prometheus text format (stats.h).
 *
 * It listens on a loopback address only, and options.c rejects others,
 * because the endpoint has no access control and the counters name the
 * origin and the mount.  One thread serves one connection at a time, and
 * a client gets 5 s to send its request and read the reply.
 */
#ifndef NEARFS_METRICS_H
#define NEARFS_METRICS_H

#include <stddef.h>

struct ctl_info;
struct metrics_server;

/*
 * Listen on address (an IPv4 or IPv6 literal) and port, and start the
 * thread that serves the counters of info, which must outlive the
 * server.  On failure returns -errno and writes a message naming the
 * address and the fix to err.
 */
int metrics_start(const struct ctl_info *info, const char *address,
		  unsigned port, struct metrics_server **out, char *err,
		  size_t errlen);

/* Stop the thread, after the request in progress, and close the socket.
 * NULL is ignored. */
void metrics_stop(struct metrics_server *m);

#endif
