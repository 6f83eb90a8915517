/* nearfs-ctl.c - query and flush a nearfs daemon through its control socket. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl_link.h"

/* Seconds to wait for the daemon's reply. */
#define REPLY_TIMEOUT_S 10
/* Bytes of one request line, its newline excluded, that the daemon
 * accepts at most (REQUEST_MAX in fs/ctl.c, less its newline and NUL). */
#define REQUEST_LINE_MAX 1022

enum {
	EXIT_OK = 0,
	EXIT_USAGE = 1,
	EXIT_UNREACHABLE = 2,	/* not a nearfs mount, or no daemon */
	/* Part of the work was not done.  flush: some files could not be
	 * uploaded.  forget: files with data not uploaded yet were kept. */
	EXIT_INCOMPLETE = 3,
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

/* Print a command and its summary in two columns.  A '\n' in summary
 * starts a continuation line. */
static void print_command(FILE *out, const struct command *cmd)
{
	const char *line = cmd->summary;

	fprintf(out, "  %-26s", cmd->usage);
	while (line) {
		const char *nl = strchr(line, '\n');
		int len = nl ? (int)(nl - line) : (int)strlen(line);

		fprintf(out, " %.*s\n", len, line);
		line = nl ? nl + 1 : NULL;
		if (line)
			fprintf(out, "  %-26s", "");
	}
}

static void print_help(FILE *out)
{
	fprintf(out, "usage: nearfs-ctl COMMAND [OPTIONS] MOUNTPOINT [PATH]\n"
		"       nearfs-ctl --help | --version\n\n"
		"MOUNTPOINT is the mount point of a nearfs filesystem or any "
		"path inside it.\n\nCommands:\n");
	for (size_t i = 0; i < ncommands; i++)
		print_command(out, &commands[i]);
	fprintf(out, "\nflush shows a progress bar when its output is a "
		"terminal, else a line per\nsecond at most.\n"
		"\nExit status: 0 success, 1 usage error, 2 not a nearfs mount "
		"or the daemon\nis unreachable, 3 some files could not be "
		"uploaded (flush; the daemon\nkeeps them queued and retries "
		"them).\n");
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

/* Read the socket path of the daemon that serves the mount of path: the
 * target of the control link in the mount root. */
static int find_socket(const char *path, char *root, char *sock,
		       size_t size)
{
	char link[PATH_MAX + sizeof(NEARFS_CTL_LINK) + 1];
	ssize_t n;

	if (find_mount_root(path, root) != 0)
		return -1;
	snprintf(link, sizeof(link), "%s/%s", strcmp(root, "/") ? root : "",
		 NEARFS_CTL_LINK);
	n = readlink(link, sock, size - 1);
	if (n < 0) {
		fprintf(stderr, "nearfs-ctl: %s is not on a nearfs mount "
			"(cannot read the link %s: %s)\n", path, link,
			strerror(errno));
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

/* The reply lines of one connection. */
struct reader {
	int fd;
	size_t len;		/* bytes in buf */
	size_t taken;		/* bytes of the line handed out last */
	char buf[4096];
};

/*
 * Point *line at the next reply line, without its newline, which stays
 * valid until the next call.  Returns 1, 0 at the end of the reply, -1
 * with errno set when the read fails (EAGAIN when the receive timeout
 * passed), or -2 for a line longer than the buffer.
 */
static int reader_next(struct reader *r, char **line)
{
	/* Drop the line handed out last. */
	r->len -= r->taken;
	memmove(r->buf, r->buf + r->taken, r->len);
	r->taken = 0;
	for (;;) {
		char *nl = memchr(r->buf, '\n', r->len);
		ssize_t n;

		if (nl) {
			*nl = '\0';
			*line = r->buf;
			r->taken = (size_t)(nl + 1 - r->buf);
			return 1;
		}
		if (r->len == sizeof(r->buf))
			return -2;
		n = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		r->len += (size_t)n;
	}
}

/*
 * Connect to the daemon serving path and send one request line.  root
 * and sock (PATH_MAX bytes each) receive the mount root and the socket
 * path.  Returns the socket, or -1 after printing why.
 */
static int ctl_send(const char *path, const char *request, char *root,
		    char *sock)
{
	int fd;

	if (find_socket(path, root, sock, PATH_MAX) != 0)
		return -1;
	fd = connect_socket(root, sock);
	if (fd < 0)
		return -1;
	if (send_all(fd, request, strlen(request)) != 0 ||
	    send_all(fd, "\n", 1) != 0) {
		fprintf(stderr, "nearfs-ctl: sending to the nearfs daemon of "
			"%s at %s failed: %s\n", root, sock, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
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

	fd = ctl_send(path, request, root, sock);
	if (fd < 0)
		return EXIT_UNREACHABLE;
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
		status = EXIT_USAGE;
	} else {
		fputs(reply, stdout);
		status = fflush(stdout) == 0 ? EXIT_OK : EXIT_UNREACHABLE;
	}
	free(reply);

out_close:
	close(fd);
	return status;
}

/* ---- flush ---- */

/* Seconds without any line from the daemon before a flush gives up
 * waiting; the daemon reports progress about twice a second. */
#define FLUSH_SILENCE_S 60
/* Milliseconds between two progress lines when stdout is not a terminal. */
#define PLAIN_INTERVAL_MS 1000
#define BAR_WIDTH 20
/* Result of a reply line that is not the last one. */
#define FLUSH_MORE (-1)

/* Progress of a flush as the daemon reports it, and its display. */
struct flush_view {
	const char *root;	/* mount root, for messages */
	bool tty;		/* draw a bar on one line of stdout */
	bool bar_drawn;		/* the bar line still needs its newline */
	bool started;		/* a progress line arrived */
	uint64_t start_ms;	/* when the first progress line arrived */
	uint64_t shown_ms;	/* when the last plain line was printed */
	uint64_t files_total;	/* files left in the first report */
	uint64_t files_left, bytes_left, bytes_total;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Format bytes in powers of 1024: "512 B", "12.0 MiB". */
static void format_bytes(double bytes, char *buf, size_t size)
{
	static const char *const units[] = {
		"KiB", "MiB", "GiB", "TiB", "PiB", "EiB",
	};
	size_t i = 0;

	if (bytes < 1024) {
		snprintf(buf, size, "%.0f B", bytes);
		return;
	}
	bytes /= 1024;
	while (bytes >= 1024 && i + 1 < sizeof(units) / sizeof(units[0])) {
		bytes /= 1024;
		i++;
	}
	snprintf(buf, size, "%.1f %s", bytes, units[i]);
}

static uint64_t bytes_done(const struct flush_view *v)
{
	return v->bytes_total > v->bytes_left ?
	       v->bytes_total - v->bytes_left : 0;
}

/* Redraw the bar: percentage, bytes done and total, files left, rate. */
static void draw_bar(struct flush_view *v)
{
	uint64_t done = bytes_done(v);
	double fraction = v->bytes_total ?
			  (double)done / (double)v->bytes_total : 1.0;
	double seconds = (double)(now_ms() - v->start_ms) / 1000.0;
	int filled = (int)(fraction * BAR_WIDTH);
	char bar[BAR_WIDTH + 1], done_text[24], total_text[24];
	char rate_text[32] = "";

	memset(bar, '#', (size_t)filled);
	memset(bar + filled, ' ', (size_t)(BAR_WIDTH - filled));
	bar[BAR_WIDTH] = '\0';

	format_bytes((double)done, done_text, sizeof(done_text));
	format_bytes((double)v->bytes_total, total_text, sizeof(total_text));
	if (seconds >= 0.5) {
		format_bytes((double)done / seconds, rate_text,
			     sizeof(rate_text));
		strcat(rate_text, "/s");
	}
	/* \033[K clears the rest of the line after a longer earlier one. */
	printf("\r%3d%% [%s] %s / %s, %" PRIu64 " file%s left%s%s\033[K",
	       (int)(fraction * 100), bar, done_text, total_text,
	       v->files_left, v->files_left == 1 ? "" : "s",
	       rate_text[0] ? ", " : "", rate_text);
	fflush(stdout);
	v->bar_drawn = true;
}

static void print_plain(struct flush_view *v)
{
	char left[24];
	uint64_t now = now_ms();

	if (v->shown_ms && now - v->shown_ms < PLAIN_INTERVAL_MS)
		return;
	v->shown_ms = now;
	format_bytes((double)v->bytes_left, left, sizeof(left));
	printf("flush: %" PRIu64 " file%s, %s left\n", v->files_left,
	       v->files_left == 1 ? "" : "s", left);
	fflush(stdout);
}

static void show_progress(struct flush_view *v, uint64_t files_left,
			  uint64_t bytes_left, uint64_t bytes_total)
{
	if (!v->started) {
		v->started = true;
		v->start_ms = now_ms();
		v->files_total = files_left;
	}
	v->files_left = files_left;
	v->bytes_left = bytes_left;
	v->bytes_total = bytes_total;
	if (v->tty)
		draw_bar(v);
	else if (files_left > 0)
		print_plain(v);
}

static void end_bar(struct flush_view *v)
{
	if (!v->bar_drawn)
		return;
	draw_bar(v);
	putchar('\n');
	v->bar_drawn = false;
}

static void print_done(const struct flush_view *v)
{
	char total[24];

	if (v->files_total == 0) {
		printf("flush: no file was waiting for upload\n");
		return;
	}
	format_bytes((double)v->bytes_total, total, sizeof(total));
	printf("flush: %" PRIu64 " file%s (%s) uploaded\n", v->files_total,
	       v->files_total == 1 ? "" : "s", total);
}

/* Act on one reply line.  Returns FLUSH_MORE, or the exit status when the
 * line was the last one. */
static int flush_line(struct flush_view *v, const char *line)
{
	uint64_t files, left, total;

	if (sscanf(line, "progress %" SCNu64 " %" SCNu64 " %" SCNu64,
		   &files, &left, &total) == 3) {
		show_progress(v, files, left, total);
		return FLUSH_MORE;
	}
	end_bar(v);
	if (strcmp(line, "ok") == 0) {
		print_done(v);
		return fflush(stdout) == 0 ? EXIT_OK : EXIT_UNREACHABLE;
	}
	if (strncmp(line, "error: ", 7) == 0) {
		fprintf(stderr, "nearfs-ctl: the daemon of %s rejected the "
			"flush: %s\n", v->root, line + 7);
		return EXIT_USAGE;
	}
	if (strncmp(line, "error ", 6) == 0) {
		fprintf(stderr, "nearfs-ctl: flush of %s: %s\n", v->root,
			line + 6);
		return EXIT_INCOMPLETE;
	}
	fprintf(stderr, "nearfs-ctl: unexpected reply from the daemon of "
		"%s: '%s'\n", v->root, line);
	return EXIT_UNREACHABLE;
}

/* Report why the reply of the daemon of root ended before its last
 * line, for reader_next() result ret. */
static void report_cut_reply(const char *root, const char *what, int ret)
{
	if (ret == -2)
		fprintf(stderr, "nearfs-ctl: a reply line of the daemon of %s "
			"is longer than %zu bytes\n", root,
			sizeof(((struct reader *)0)->buf));
	else if (ret < 0 && errno == EAGAIN)
		fprintf(stderr, "nearfs-ctl: the daemon of %s sent no "
			"progress for %d s; the %s may still run there\n",
			root, FLUSH_SILENCE_S, what);
	else
		fprintf(stderr, "nearfs-ctl: the daemon of %s closed the "
			"connection before the %s ended: %s\n", root, what,
			ret < 0 ? strerror(errno) :
			"end of file (did the daemon stop?)");
}

/* Read reply lines until the last one.  Returns the exit status. */
static int flush_read(int fd, struct flush_view *v)
{
	struct reader r = { .fd = fd };
	char *line;
	int ret;

	while ((ret = reader_next(&r, &line)) == 1) {
		int status = flush_line(v, line);

		if (status != FLUSH_MORE)
			return status;
	}
	end_bar(v);
	report_cut_reply(v->root, "flush", ret);
	return EXIT_UNREACHABLE;
}

/*
 * Convert a PATH argument of command cmd to a path relative to the mount
 * root, in out (PATH_MAX bytes).  An absolute PATH must lie inside the
 * mount, a relative one is taken from the mount root, and ".." is
 * rejected.
 */
static int mount_path(const char *cmd, const char *root, const char *arg,
		      char *out)
{
	char resolved[PATH_MAX], copy[PATH_MAX];
	const char *rest = arg;
	char *component, *save = NULL;
	size_t root_len = strlen(root), len = 0;

	if (arg[0] == '/') {
		if (realpath(arg, resolved))
			rest = resolved;
		if (strcmp(root, "/") == 0)
			root_len = 0;
		if (strncmp(rest, root, root_len) != 0 ||
		    (rest[root_len] != '\0' && rest[root_len] != '/'))
			return usage_error("%s: %s is not inside the mount "
					   "%s", cmd, arg, root);
		rest += root_len;
	}
	if (strlen(rest) >= sizeof(copy))
		return usage_error("%s: the path %s is too long", cmd, arg);
	if (strchr(rest, '\n'))
		return usage_error("%s: the path %s contains a newline, which "
				   "requests to the daemon cannot carry", cmd,
				   arg);
	strcpy(copy, rest);
	for (component = strtok_r(copy, "/", &save); component;
	     component = strtok_r(NULL, "/", &save)) {
		if (strcmp(component, ".") == 0)
			continue;
		if (strcmp(component, "..") == 0)
			return usage_error("%s: '..' is not allowed in %s: "
					   "give a path inside the mount",
					   cmd, arg);
		len += (size_t)sprintf(out + len, "%s%s", len ? "/" : "",
				       component);
	}
	out[len] = '\0';
	return EXIT_OK;
}

/* Send "flush PATH" and follow its progress until the last line. */
static int flush_run(const char *root, const char *path)
{
	struct timeval silence = { .tv_sec = FLUSH_SILENCE_S };
	struct flush_view view = { .root = root, .tty = isatty(1) };
	char request[PATH_MAX + 8], found[PATH_MAX], sock[PATH_MAX];
	int fd, status;

	snprintf(request, sizeof(request), "flush%s%s", path[0] ? " " : "",
		 path);
	fd = ctl_send(root, request, found, sock);
	if (fd < 0)
		return EXIT_UNREACHABLE;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &silence, sizeof(silence));
	status = flush_read(fd, &view);
	close(fd);
	return status;
}

/* ---- requests with paths ---- */

/* The paths of warm or forget, relative to the mount root. */
struct path_list {
	char root[PATH_MAX];
	size_t count;
	char **paths;
};

static void path_list_free(struct path_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->paths[i]);
	free(l->paths);
}

/*
 * Find the mount of mountpoint and convert each of the n PATH arguments
 * of cmd to a path relative to its root.  Returns EXIT_OK, or the exit
 * status after printing why not.
 */
static int path_list_make(const char *cmd, const char *mountpoint,
			  char **args, int n, struct path_list *l)
{
	char path[PATH_MAX];
	int status;

	memset(l, 0, sizeof(*l));
	if (find_mount_root(mountpoint, l->root) != 0)
		return EXIT_UNREACHABLE;
	l->paths = calloc((size_t)n, sizeof(*l->paths));
	if (!l->paths) {
		fprintf(stderr, "nearfs-ctl: out of memory\n");
		return EXIT_UNREACHABLE;
	}
	for (int i = 0; i < n; i++) {
		status = mount_path(cmd, l->root, args[i], path);
		if (status != EXIT_OK)
			return status;
		l->paths[i] = strdup(path);
		if (!l->paths[i]) {
			fprintf(stderr, "nearfs-ctl: out of memory\n");
			return EXIT_UNREACHABLE;
		}
		l->count++;
	}
	return EXIT_OK;
}

/*
 * Send "CMD COUNT" to the daemon of l->root, wait for its "ready" and
 * send the paths, one a line.  Returns the socket, with r set up to read
 * the reply, or -1 after printing why, with the exit status in *status.
 */
static int send_paths(const char *cmd, const struct path_list *l,
		      struct reader *r, int *status)
{
	char request[64], found[PATH_MAX], sock[PATH_MAX];
	char *line;
	int fd, ret;

	snprintf(request, sizeof(request), "%s %zu", cmd, l->count);
	*status = EXIT_UNREACHABLE;
	fd = ctl_send(l->root, request, found, sock);
	if (fd < 0)
		return -1;
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	ret = reader_next(r, &line);
	if (ret == 1 && strncmp(line, "error: ", 7) == 0) {
		fprintf(stderr, "nearfs-ctl: the daemon of %s rejected the %s "
			"request: %s\n", l->root, cmd, line + 7);
		*status = EXIT_USAGE;
		goto out_close;
	}
	if (ret != 1 || strcmp(line, "ready") != 0) {
		if (ret == 1)
			fprintf(stderr, "nearfs-ctl: unexpected reply from the "
				"daemon of %s: '%s'\n", l->root, line);
		else
			report_cut_reply(l->root, cmd, ret);
		goto out_close;
	}
	for (size_t i = 0; i < l->count; i++) {
		if (send_all(fd, l->paths[i], strlen(l->paths[i])) != 0 ||
		    send_all(fd, "\n", 1) != 0) {
			fprintf(stderr, "nearfs-ctl: sending the paths to the "
				"daemon of %s at %s failed: %s\n", l->root,
				sock, strerror(errno));
			goto out_close;
		}
	}
	return fd;

out_close:
	close(fd);
	return -1;
}

/* ---- forget ---- */

/* Read and print the reply "forgot FILES BYTES KEPT" of a forget.
 * Returns the exit status. */
static int forget_reply(const char *root, struct reader *r)
{
	uint64_t files, bytes, kept;
	char size[24], *line;
	int ret = reader_next(r, &line);

	if (ret == 1 && strncmp(line, "error: ", 7) == 0) {
		fprintf(stderr, "nearfs-ctl: the daemon of %s rejected the "
			"forget request: %s\n", root, line + 7);
		return EXIT_USAGE;
	}
	if (ret != 1 || sscanf(line, "forgot %" SCNu64 " %" SCNu64 " %"
			       SCNu64, &files, &bytes, &kept) != 3) {
		if (ret == 1)
			fprintf(stderr, "nearfs-ctl: unexpected reply from the "
				"daemon of %s: '%s'\n", root, line);
		else
			report_cut_reply(root, "forget", ret);
		return EXIT_UNREACHABLE;
	}
	format_bytes((double)bytes, size, sizeof(size));
	printf("forget: dropped %" PRIu64 " file%s (%s) from the cache\n",
	       files, files == 1 ? "" : "s", size);
	if (kept == 0)
		return EXIT_OK;
	fprintf(stderr, "nearfs-ctl: forget: kept %" PRIu64 " file%s whose "
		"data is not uploaded yet; see nearfs-ctl uploads\n", kept,
		kept == 1 ? "" : "s");
	return EXIT_INCOMPLETE;
}

static int cmd_forget(int argc, char **argv)
{
	struct path_list list;
	struct reader r;
	int fd, status;

	if (argc < 1)
		return usage_error("forget: missing the mount point");
	if (argc < 2)
		return usage_error("forget: missing PATH: give the files or "
				   "folders to forget, '.' for the whole "
				   "mount");
	status = path_list_make("forget", argv[0], argv + 1, argc - 1,
				&list);
	if (status == EXIT_OK) {
		fd = send_paths("forget", &list, &r, &status);
		if (fd >= 0) {
			status = forget_reply(list.root, &r);
			close(fd);
		}
	}
	path_list_free(&list);
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

/*
 * Parse the arguments "[--json] MOUNTPOINT [PATH]" of cmd, --json only
 * where json is not NULL and PATH only where path is not NULL, into the
 * mount root and PATH relative to it, "" without PATH (PATH_MAX bytes
 * each).  Returns EXIT_OK, or the exit status after printing why not.
 */
static int parse_mount_path(const char *cmd, int argc, char **argv,
			    bool *json, char *root, char *path)
{
	const char *args[2] = { NULL, NULL };
	int nargs = 0;

	for (int i = 0; i < argc; i++) {
		if (json && strcmp(argv[i], "--json") == 0)
			*json = true;
		else if (argv[i][0] == '-' && argv[i][1] != '\0')
			return usage_error("%s: unknown option '%s'", cmd,
					   argv[i]);
		else if (nargs == (path ? 2 : 1))
			return usage_error("%s: unexpected argument '%s'", cmd,
					   argv[i]);
		else
			args[nargs++] = argv[i];
	}
	if (!args[0])
		return usage_error("%s: missing the mount point", cmd);
	if (find_mount_root(args[0], root) != 0)
		return EXIT_UNREACHABLE;
	if (!path)
		return EXIT_OK;
	path[0] = '\0';
	if (!args[1])
		return EXIT_OK;
	return mount_path(cmd, root, args[1], path);
}

static int cmd_flush(int argc, char **argv)
{
	char root[PATH_MAX], path[PATH_MAX];
	int status;

	status = parse_mount_path("flush", argc, argv, NULL, root, path);
	if (status != EXIT_OK)
		return status;
	return flush_run(root, path);
}

/* usage [--json] MOUNTPOINT [PATH]: the request "usage text|json PATH". */
static int cmd_usage(int argc, char **argv)
{
	char root[PATH_MAX], path[PATH_MAX], request[PATH_MAX + 16];
	bool json = false;
	int status;

	status = parse_mount_path("usage", argc, argv, &json, root, path);
	if (status != EXIT_OK)
		return status;
	snprintf(request, sizeof(request), "usage %s%s%s",
		 json ? "json" : "text", path[0] ? " " : "", path);
	if (strlen(request) > REQUEST_LINE_MAX)
		return usage_error("usage: the path %s is longer than a "
				   "request may be (%d bytes)", path,
				   REQUEST_LINE_MAX - 11);
	return ctl_request(root, request);
}

static int cmd_uploads(int argc, char **argv)
{
	char root[PATH_MAX];
	bool json = false;
	int status;

	status = parse_mount_path("uploads", argc, argv, &json, root, NULL);
	if (status != EXIT_OK)
		return status;
	return ctl_request(root, json ? "uploads json" : "uploads");
}

/* set MOUNTPOINT OPTION=VALUE...: one request with the options joined
 * by commas, as in -o. */
static int cmd_set(int argc, char **argv)
{
	char request[REQUEST_LINE_MAX + 1] = "set ";
	size_t len = strlen(request);

	if (argc < 1)
		return usage_error("set: missing the mount point");
	if (argc < 2)
		return usage_error("set: missing OPTION=VALUE, for example "
				   "ttl=30s");
	for (int i = 1; i < argc; i++) {
		size_t n = strlen(argv[i]);

		if (!strchr(argv[i], '=') || argv[i][0] == '=')
			return usage_error("set: invalid setting '%s': use "
					   "OPTION=VALUE, for example ttl=30s",
					   argv[i]);
		if (strchr(argv[i], '\n'))
			return usage_error("set: invalid setting '%s': it "
					   "contains a newline", argv[i]);
		if (len + n + 1 > REQUEST_LINE_MAX)
			return usage_error("set: the settings are longer than "
					   "%d bytes: give fewer at once",
					   REQUEST_LINE_MAX - 4);
		len += (size_t)sprintf(request + len, "%s%s", i > 1 ? "," : "",
				       argv[i]);
	}
	return ctl_request(argv[0], request);
}

static const struct command commands[] = {
	{ "stats", "stats [--json] MOUNTPOINT",
	  "print the cache counters, as text or JSON", cmd_stats },
	{ "flush", "flush MOUNTPOINT [PATH]",
	  "upload now the files that wait in the write-back\n"
	  "queue, all or those at or below PATH (inside the\n"
	  "mount, or relative to its root), and wait for them",
	  cmd_flush },
	{ "forget", "forget MOUNTPOINT PATH...",
	  "drop the cached data and metadata of files or\n"
	  "trees (paths inside the mount, or relative to its\n"
	  "root), but none that is not uploaded yet", cmd_forget },
	{ "usage", "usage [--json] MOUNTPOINT [PATH]",
	  "count the files, chunks and bytes cached at and\n"
	  "below PATH (default: the whole mount)", cmd_usage },
	{ "uploads", "uploads [--json] MOUNTPOINT",
	  "list the files of the write-back queue: state,\n"
	  "failed attempts, age, size, path, last error", cmd_uploads },
	{ "set", "set MOUNTPOINT OPTION=VALUE...",
	  "change ttl, attr_ttl, neg_ttl, dir_ttl, cache_size,\n"
	  "min_free, max_dirty, writeback_delay or log_level\n"
	  "while mounted", cmd_set },
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
