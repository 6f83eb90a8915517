/*
 * notify.h - state messages to a service manager, as sd_notify(3) sends
 * them, for a systemd unit of Type=notify.
 *
 * systemd passes the path of a datagram socket in NOTIFY_SOCKET (a path,
 * or "@name" in the abstract namespace).  Each message is one datagram of
 * newline-separated VARIABLE=VALUE lines: READY=1 once the mount is
 * ready, STOPPING=1 when the daemon starts to stop, STATUS= for a line
 * that `systemctl status` shows.  Without NOTIFY_SOCKET nothing is sent.
 */
#ifndef NEARFS_NOTIFY_H
#define NEARFS_NOTIFY_H

/*
 * Send state, formatted as by printf, to the socket of NOTIFY_SOCKET.
 * Returns 0 (also when the variable is unset), or -errno when the
 * message could not be sent; the first failure is logged as a warning.
 */
int service_notify(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

#endif
