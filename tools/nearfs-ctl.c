/* nearfs-ctl.c - query a running nearfs daemon through its control socket. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Extended attribute on the mount root that names the control socket. */
#define CTL_XATTR "user.nearfs.ctl"
/* Seconds to wait for the daemon's reply. */
#define REPLY_TIMEOUT_S 10

enum {
	EXIT_OK = 0,
	EXIT_USAGE = 1,
	EXIT_UNREACHABLE = 2,	/* not a nearfs mount, or no daemon */
};

/*
 * A subcommand.  run() gets the arguments after the command name and
 * returns an exit status.  Adding a command means adding a function and a
 * row to the commands table.
 */
struct command {
	const char *name;
	const char *usage;
	const char *summary;
	int (*run)(int argc, char **argv);
};

static const struct command commands[];
static const size_t ncommands;

static void print_help(FILE *out)
{
	fprintf(out, "usage: nearfs-ctl COMMAND [OPTIONS] PATH\n"
		"       nearfs-ctl --help | --version\n\n"
		"PATH is the mount point of a nearfs filesystem or any path "
		"inside it.\n\nCommands:\n");
	for (size_t i = 0; i < ncommands; i++)
		fprintf(out, "  %-24s %s\n", commands[i].usage,
			commands[i].summary);
	fprintf(out, "\nExit status: 0 success, 1 usage error, 2 not a "
		"nearfs mount or the daemon\nis unreachable.\n");
}

static int usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "nearfs-ctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'nearfs-ctl --help'.\n");
	return EXIT_USAGE;
}

/* ---- finding the daemon ---- */

static void parent_dir(const char *path, char *parent)
{
	const char *slash = strrchr(path, '/');
	size_t len = slash == path ? 1 : (size_t)(slash - path);

	memcpy(parent, path, len);
	parent[len] = '\0';
}

/* Write the mount root that contains path (the highest ancestor on the
 * same device) to root, a buffer of PATH_MAX bytes. */
static int find_mount_root(const char *path, char *root)
{
	char parent[PATH_MAX];
	struct stat st, parent_st;

	if (!realpath(path, root) || stat(root, &st) != 0) {
		fprintf(stderr, "nearfs-ctl: cannot access %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	while (strcmp(root, "/") != 0) {
		parent_dir(root, parent);
		if (stat(parent, &parent_st) != 0 ||
		    parent_st.st_dev != st.st_dev)
			break;
		strcpy(root, parent);
	}
	return 0;
}

/* Read the socket path of the daemon that serves the mount of path. */
static int find_socket(const char *path, char *root, char *sock,
		       size_t size)
{
	ssize_t n;

	if (find_mount_root(path, root) != 0)
		return -1;
	n = getxattr(root, CTL_XATTR, sock, size - 1);
	if (n < 0) {
		fprintf(stderr, "nearfs-ctl: %s is not on a nearfs mount (no "
			"%s attribute at %s)\n", path, CTL_XATTR, root);
		return -1;
	}
	sock[n] = '\0';
	return 0;
}

static int connect_socket(const char *root, const char *sock)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct timeval timeout = { .tv_sec = REPLY_TIMEOUT_S };
	int fd;

	if (strlen(sock) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "nearfs-ctl: the control socket path of %s "
			"is too long: %s\n", root, sock);
		return -1;
	}
	strcpy(addr.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "nearfs-ctl: cannot create a socket: %s\n",
			strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		int saved = errno;
		bool gone = saved == ECONNREFUSED || saved == ENOENT;

		fprintf(stderr, "nearfs-ctl: cannot connect to the nearfs "
			"daemon of %s at %s: %s%s\n", root, sock,
			strerror(saved),
			gone ? " (is the daemon still running?)" : "");
		close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
	return fd;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read the whole reply into a new string that the caller frees. */
static char *read_reply(int fd)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	while (buf) {
		ssize_t n;

		if (len + 1 == cap) {
			char *bigger = realloc(buf, cap * 2);

			if (!bigger)
				break;
			buf = bigger;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (n == 0) {
			buf[len] = '\0';
			return buf;
		}
		len += (size_t)n;
	}
	free(buf);
	return NULL;
}

/*
 * Send one request line to the daemon serving path and print its reply.
 * A reply that starts with "error: " goes to stderr.
 */
static int ctl_request(const char *path, const char *request)
{
	char root[PATH_MAX], sock[PATH_MAX];
	int status = EXIT_UNREACHABLE;
	char *reply;
	int fd;

	if (find_socket(path, root, sock, sizeof(sock)) != 0)
		return EXIT_UNREACHABLE;
	fd = connect_socket(root, sock);
	if (fd < 0)
		return EXIT_UNREACHABLE;
	if (send_all(fd, request, strlen(request)) != 0 ||
	    send_all(fd, "\n", 1) != 0) {
		fprintf(stderr, "nearfs-ctl: sending to the nearfs daemon of "
			"%s at %s failed: %s\n", root, sock, strerror(errno));
		goto out_close;
	}
	reply = read_reply(fd);
	if (!reply) {
		fprintf(stderr, "nearfs-ctl: reading the reply of the nearfs "
			"daemon of %s at %s failed: %s\n", root, sock,
			errno ? strerror(errno) : "out of memory");
		goto out_close;
	}
	if (strncmp(reply, "error: ", 7) == 0) {
		fprintf(stderr, "nearfs-ctl: the daemon of %s rejected "
			"'%s': %s", root, request, reply + 7);
	} else {
		fputs(reply, stdout);
		status = fflush(stdout) == 0 ? EXIT_OK : EXIT_UNREACHABLE;
	}
	free(reply);

out_close:
	close(fd);
	return status;
}

/* ---- commands ---- */

static int cmd_stats(int argc, char **argv)
{
	const char *path = NULL;
	bool json = false;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (argv[i][0] == '-' && argv[i][1] != '\0')
			return usage_error("stats: unknown option '%s'",
					   argv[i]);
		else if (path)
			return usage_error("stats: unexpected argument '%s'",
					   argv[i]);
		else
			path = argv[i];
	}
	if (!path)
		return usage_error("stats: missing the mount point");
	return ctl_request(path, json ? "stats json" : "stats");
}

static const struct command commands[] = {
	{ "stats", "stats [--json] PATH",
	  "print the cache counters, as text or JSON", cmd_stats },
};

static const size_t ncommands = sizeof(commands) / sizeof(commands[0]);

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage_error("missing command");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		print_help(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("nearfs-ctl %s\n", NEARFS_VERSION);
		return EXIT_OK;
	}
	for (size_t i = 0; i < ncommands; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 2, argv + 2);
	return usage_error("unknown command '%s'", argv[1]);
}
