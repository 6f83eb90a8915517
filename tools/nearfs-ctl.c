/* nearfs-ctl.c - query and flush a nearfs daemon through its control socket. */
#include <errno.h>
#include <inttypes.h>
#include <dirent.h>
#include <limits.h>
#include <signal.h>
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

#include "log.h"
#include "verify.h"
#include "ctl_link.h"
#include "roots.h"

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
 * starts a continuation line.  A usage wider than its column gets a line
 * of its own. */
static void print_command(FILE *out, const struct command *cmd)
{
	const char *line = cmd->summary;

	if (strlen(cmd->usage) > 26)
		fprintf(out, "  %s\n  %-26s", cmd->usage, "");
	else
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
		"path inside it,\nor the root of a daemon started with -o "
		"nomount.\n\nCommands:\n");
	for (size_t i = 0; i < ncommands; i++)
		print_command(out, &commands[i]);
	fprintf(out, "\nflush and warm show a progress bar when their output "
		"is a terminal, else a\nline per second at most.\n"
		"\nExit status: 0 success; 1 usage error, or a request the "
		"daemon rejected;\n2 not a nearfs mount, or the daemon is "
		"unreachable; 3 part of the work was\nnot done: flush could "
		"not upload some files (the daemon retries them), warm\nleft "
		"out files over cache_size or could not fetch some, forget "
		"kept files\nwhose data is not uploaded yet.\n");
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

/* ---- verify ---- */

/* Exit statuses of verify, which differ from the other commands'. */
enum {
	VERIFY_EXIT_CLEAN = 0,
	VERIFY_EXIT_PROBLEMS = 1,
	VERIFY_EXIT_ERROR = 2,	/* usage error, or a folder not checked */
};

static void verify_print_problem(void *arg, const struct verify_problem *p)
{
	(void)arg;
	printf("%s: %s: %s%s%s\n", verify_kind_names[p->kind], p->file,
	       p->message, p->outcome ? "; " : "", p->outcome ? p->outcome :
	       "");
}

static void verify_print_pending(void *arg, const char *path,
				 const char *file, uint64_t size)
{
	(void)arg;
	printf("pending: %s: upload of %s, %" PRIu64 " bytes; kept for the "
	       "next mount\n", file, path, size);
}

/* The id of an S3 leftover is an upload id, a newline and a key. */
static void verify_print_leftover(void *arg, const char *file,
				  const char *id)
{
	const char *key = strchr(id, '\n');

	(void)arg;
	if (key)
		printf("leftover: %s: upload %.*s of %s", file,
		       (int)(key - id), id, key + 1);
	else
		printf("leftover: %s: temporary file %s", file, id);
	printf(" at the origin; the next mount without ro removes it\n");
}

static void verify_print_summary(const struct verify_counts *n, bool repair)
{
	uint64_t total = 0;

	for (int k = 0; k < VERIFY_KIND_MAX; k++)
		total += n->problems[k];
	printf("verify: %" PRIu64 " object%s, %" PRIu64 " chunk%s, %" PRIu64
	       " byte%s checked; %" PRIu64 " upload%s pending (%" PRIu64
	       " byte%s); %" PRIu64 " problem%s", n->objects,
	       n->objects == 1 ? "" : "s", n->chunks, n->chunks == 1 ? "" : "s",
	       n->bytes, n->bytes == 1 ? "" : "s", n->pending,
	       n->pending == 1 ? "" : "s", n->pending_bytes,
	       n->pending_bytes == 1 ? "" : "s", total, total == 1 ? "" : "s");
	for (int k = 0, first = 1; k < VERIFY_KIND_MAX; k++) {
		if (!n->problems[k])
			continue;
		printf("%s%s %" PRIu64, first ? " (" : ", ",
		       verify_kind_names[k], n->problems[k]);
		first = 0;
	}
	if (total)
		printf(")");
	if (n->leftovers)
		printf("; %" PRIu64 " leftovers at the origin", n->leftovers);
	if (repair)
		printf("; %" PRIu64 " repaired, %" PRIu64 " kept", n->repaired,
		       n->kept);
	printf("\n");
}

/* Check one origin folder; false when it could not be checked. */
static bool verify_print_folder(const char *path, bool repair,
				const struct verify_report *report,
				struct verify_counts *counts)
{
	char err[1024];

	if (verify_folder(path, repair, report, counts, err,
			  sizeof(err)) == 0)
		return true;
	fprintf(stderr, "nearfs-ctl: verify: %s\n", err);
	return false;
}

/*
 * verify [--repair] CACHE_DIR: check every origin folder of CACHE_DIR,
 * or CACHE_DIR itself when it is one.  Exits 0 when all are clean, 1 when
 * problems were found (also when repaired), 2 on a usage error or when a
 * folder could not be checked.
 */
static int cmd_verify(int argc, char **argv)
{
	struct verify_report report = {
		.problem = verify_print_problem,
		.pending = verify_print_pending,
		.leftover = verify_print_leftover,
	};
	struct verify_counts counts = { 0 };
	struct dirent **entries = NULL;
	char dir[PATH_MAX] = "";
	bool repair = false, failed = false;
	int n = 0, checked = 0;
	size_t len;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--repair") == 0) {
			repair = true;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			usage_error("verify: unknown option '%s'", argv[i]);
			return VERIFY_EXIT_ERROR;
		} else if (dir[0]) {
			usage_error("verify: unexpected argument '%s'",
				    argv[i]);
			return VERIFY_EXIT_ERROR;
		} else {
			snprintf(dir, sizeof(dir), "%s", argv[i]);
		}
	}
	if (!dir[0]) {
		usage_error("verify: missing the cache folder");
		return VERIFY_EXIT_ERROR;
	}
	/* verify prints every problem itself: the engine's warnings about
	 * the same records would only repeat them. */
	log_max_level = LOG_ERR;
	/* Trailing slashes would double in the file names printed. */
	len = strlen(dir);
	while (len > 1 && dir[len - 1] == '/')
		dir[--len] = '\0';
	if (verify_is_origin_folder(dir)) {
		checked = 1;
		failed = !verify_print_folder(dir, repair, &report, &counts);
	} else {
		n = scandir(dir, &entries, NULL, alphasort);
		if (n < 0) {
			fprintf(stderr, "nearfs-ctl: verify: cannot list %s: "
				"%s\n", dir, strerror(errno));
			return VERIFY_EXIT_ERROR;
		}
	}
	for (int i = 0; i < n; i++) {
		char path[PATH_MAX];

		if (entries[i]->d_name[0] != '.' &&
		    snprintf(path, sizeof(path), "%s/%s", dir,
			     entries[i]->d_name) < (int)sizeof(path) &&
		    verify_is_origin_folder(path)) {
			checked++;
			if (!verify_print_folder(path, repair, &report,
						 &counts))
				failed = true;
		}
		free(entries[i]);
	}
	free(entries);
	if (checked == 0) {
		fprintf(stderr, "nearfs-ctl: verify: %s contains no cache "
			"folder (a folder with an index or a lock file): give "
			"the cache_dir or one of its origin folders\n", dir);
		return VERIFY_EXIT_ERROR;
	}
	/* A summary of zeros would read as a clean folder. */
	if (!failed || checked > 1)
		verify_print_summary(&counts, repair);
	if (fflush(stdout) != 0 || failed)
		return VERIFY_EXIT_ERROR;
	for (int k = 0; k < VERIFY_KIND_MAX; k++)
		if (counts.problems[k])
			return VERIFY_EXIT_PROBLEMS;
	return VERIFY_EXIT_CLEAN;
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

/* The daemon without FUSE whose root is the longest one that is path or
 * contains it. */
struct root_match {
	const char *path;
	char *root;		/* PATH_MAX bytes each */
	char *sock;
	size_t len;		/* of the root found, 0 while none */
};

static int match_root(void *arg, pid_t pid, const char *root,
		      const char *sock)
{
	struct root_match *m = arg;
	size_t len = strlen(root);

	if (strncmp(m->path, root, len) != 0 ||
	    (m->path[len] != '\0' && m->path[len] != '/') || len <= m->len ||
	    strlen(sock) >= PATH_MAX)
		return 0;
	strcpy(m->root, root);
	strcpy(m->sock, sock);
	m->len = len;
	return 0;
}

/* Find the daemon started with -o nomount whose root contains path, by
 * the .nomount files beside the control sockets (roots.h).  The root
 * need not exist, so path is compared as a string. */
static bool find_served_root(const char *path, char *root, char *sock)
{
	char full[PATH_MAX], abs[PATH_MAX], cwd[PATH_MAX];
	char dirs[ROOTS_DIRS_MAX][PATH_MAX];
	struct root_match m = { .path = abs, .root = root, .sock = sock };
	size_t ndirs;
	int n;

	if (path[0] == '/')
		n = snprintf(full, sizeof(full), "%s", path);
	else if (getcwd(cwd, sizeof(cwd)))
		n = snprintf(full, sizeof(full), "%s/%s", cwd, path);
	else
		return false;
	if (n < 0 || (size_t)n >= sizeof(full) ||
	    roots_normalize(full, false, abs, sizeof(abs)) != 0)
		return false;
	ndirs = roots_dirs(dirs);
	for (size_t i = 0; i < ndirs; i++)
		roots_scan(dirs[i], match_root, &m);
	return m.len > 0;
}

/* Find the root that contains path: that of a daemon without FUSE, else
 * the mount root. */
static int find_root(const char *path, char *root)
{
	char sock[PATH_MAX];

	if (find_served_root(path, root, sock))
		return 0;
	return find_mount_root(path, root);
}

/* Read the socket path of the daemon that serves path: the one of a root
 * served without FUSE, else the target of the control link in the mount
 * root. */
static int find_socket(const char *path, char *root, char *sock,
		       size_t size)
{
	char link[PATH_MAX + sizeof(NEARFS_CTL_LINK) + 1];
	ssize_t n;

	if (size >= PATH_MAX && find_served_root(path, root, sock))
		return 0;
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

/* ---- progress of long requests ---- */

/* Seconds without any line from the daemon before a flush or a warm gives
 * up waiting; the daemon reports progress about twice a second. */
#define PROGRESS_SILENCE_S 60
/* Milliseconds between two progress lines when stdout is not a terminal. */
#define PLAIN_INTERVAL_MS 1000
#define BAR_WIDTH 20
/* Result of a reply line that is not the last one. */
#define REPLY_MORE (-1)

/*
 * The progress of a flush or a warm and its display: on a terminal a bar
 * redrawn in place (percentage, bytes done and total, files, rate, time
 * left), else a plain line once a second at most.
 */
struct progress {
	const char *label;	/* the command: "flush", "warm" */
	const char *root;	/* mount root, for messages */
	bool tty;		/* draw a bar on one line of stdout */
	bool bar_drawn;		/* the bar line still needs its newline */
	bool status_drawn;	/* a status line waits to be cleared */
	bool started;		/* a progress report arrived */
	uint64_t start_ms;	/* when the first report arrived */
	uint64_t shown_ms;	/* when the last plain line was printed */
	uint64_t files_done, files_total;
	uint64_t bytes_done, bytes_total;
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

/* Format seconds as "m:ss", or "h:mm:ss" from an hour on. */
static void format_eta(double seconds, char *buf, size_t size)
{
	uint64_t s = (uint64_t)(seconds + 0.5);

	if (s >= 3600)
		snprintf(buf, size, "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64,
			 s / 3600, s % 3600 / 60, s % 60);
	else
		snprintf(buf, size, "%" PRIu64 ":%02" PRIu64, s / 60, s % 60);
}

/* The rate and time left of the bar, after half a second of progress. */
static void format_rate(const struct progress *p, char *buf, size_t size)
{
	double seconds = (double)(now_ms() - p->start_ms) / 1000.0;
	double rate = seconds > 0 ? (double)p->bytes_done / seconds : 0;
	char rate_text[24], eta[24];

	buf[0] = '\0';
	if (seconds < 0.5)
		return;
	format_bytes(rate, rate_text, sizeof(rate_text));
	if (rate > 0 && p->bytes_done < p->bytes_total) {
		format_eta((double)(p->bytes_total - p->bytes_done) / rate,
			   eta, sizeof(eta));
		snprintf(buf, size, ", %s/s, ETA %s", rate_text, eta);
	} else {
		snprintf(buf, size, ", %s/s", rate_text);
	}
}

/* Redraw the bar: percentage, bytes done and total, files, rate, ETA. */
static void draw_bar(struct progress *p)
{
	double fraction = p->bytes_total ?
			  (double)p->bytes_done / (double)p->bytes_total : 1.0;
	int filled = (int)(fraction * BAR_WIDTH);
	char bar[BAR_WIDTH + 1], done[24], total[24], rate[64];

	if (filled > BAR_WIDTH)
		filled = BAR_WIDTH;
	memset(bar, '#', (size_t)filled);
	memset(bar + filled, ' ', (size_t)(BAR_WIDTH - filled));
	bar[BAR_WIDTH] = '\0';
	format_bytes((double)p->bytes_done, done, sizeof(done));
	format_bytes((double)p->bytes_total, total, sizeof(total));
	format_rate(p, rate, sizeof(rate));
	/* \033[K clears the rest of the line after a longer earlier one. */
	printf("\r%3d%% [%s] %s / %s, %" PRIu64 "/%" PRIu64 " files%s\033[K",
	       (int)(fraction * 100), bar, done, total, p->files_done,
	       p->files_total, rate);
	fflush(stdout);
	p->bar_drawn = true;
}

static void print_plain(struct progress *p)
{
	char done[24], total[24];
	uint64_t now = now_ms();

	if (p->shown_ms && now - p->shown_ms < PLAIN_INTERVAL_MS)
		return;
	p->shown_ms = now;
	format_bytes((double)p->bytes_done, done, sizeof(done));
	format_bytes((double)p->bytes_total, total, sizeof(total));
	printf("%s: %" PRIu64 "/%" PRIu64 " files, %s of %s\n", p->label,
	       p->files_done, p->files_total, done, total);
	fflush(stdout);
}

static void progress_update(struct progress *p, uint64_t files_done,
			    uint64_t files_total, uint64_t bytes_done,
			    uint64_t bytes_total)
{
	if (!p->started) {
		p->started = true;
		p->start_ms = now_ms();
	}
	p->files_done = files_done;
	p->files_total = files_total;
	p->bytes_done = bytes_done;
	p->bytes_total = bytes_total;
	if (p->tty)
		draw_bar(p);
	else if (files_done < files_total)
		print_plain(p);
}

/* Draw the bar a last time and end its line. */
static void progress_end(struct progress *p)
{
	if (!p->bar_drawn)
		return;
	draw_bar(p);
	putchar('\n');
	p->bar_drawn = false;
}

/* Show a line of status in place of the bar: in place on a terminal,
 * else as a plain line once a second at most. */
static void progress_status(struct progress *p, const char *text)
{
	uint64_t now = now_ms();

	if (p->tty) {
		printf("\r%s\033[K", text);
		p->status_drawn = true;
	} else if (!p->shown_ms || now - p->shown_ms >= PLAIN_INTERVAL_MS) {
		p->shown_ms = now;
		printf("%s\n", text);
	}
	fflush(stdout);
}

/* Clear a status line from the terminal before other output. */
static void progress_clear_status(struct progress *p)
{
	if (!p->status_drawn)
		return;
	printf("\r\033[K");
	fflush(stdout);
	p->status_drawn = false;
}

/* ---- flush ---- */

static void flush_done(const struct progress *p)
{
	char total[24];

	if (p->files_total == 0) {
		printf("flush: no file was waiting for upload\n");
		return;
	}
	format_bytes((double)p->bytes_total, total, sizeof(total));
	printf("flush: %" PRIu64 " file%s (%s) uploaded\n", p->files_total,
	       p->files_total == 1 ? "" : "s", total);
}

/*
 * Act on one reply line of a flush: "progress FILES_LEFT BYTES_LEFT
 * BYTES_TOTAL", then "ok" or "error ...".  Returns REPLY_MORE, or the
 * exit status when the line was the last one.
 */
static int flush_line(void *ctx, const char *line)
{
	struct progress *p = ctx;
	uint64_t left, bytes_left, total;

	if (sscanf(line, "progress %" SCNu64 " %" SCNu64 " %" SCNu64,
		   &left, &bytes_left, &total) == 3) {
		/* The first report counts the files the flush waits for. */
		uint64_t files = p->started ? p->files_total : left;

		progress_update(p, files > left ? files - left : 0, files,
				total > bytes_left ? total - bytes_left : 0,
				total);
		return REPLY_MORE;
	}
	progress_end(p);
	if (strcmp(line, "ok") == 0) {
		flush_done(p);
		return fflush(stdout) == 0 ? EXIT_OK : EXIT_UNREACHABLE;
	}
	if (strncmp(line, "error: ", 7) == 0) {
		fprintf(stderr, "nearfs-ctl: the daemon of %s rejected the "
			"flush: %s\n", p->root, line + 7);
		return EXIT_USAGE;
	}
	if (strncmp(line, "error ", 6) == 0) {
		fprintf(stderr, "nearfs-ctl: flush of %s: %s\n", p->root,
			line + 6);
		return EXIT_INCOMPLETE;
	}
	fprintf(stderr, "nearfs-ctl: unexpected reply from the daemon of "
		"%s: '%s'\n", p->root, line);
	return EXIT_UNREACHABLE;
}

/* Report why the reply of the daemon of root to the request what ended
 * before its last line, for reader_next() result ret after a receive
 * timeout of seconds. */
static void report_cut_reply(const char *root, const char *what, int ret,
			     int seconds)
{
	if (ret == -2)
		fprintf(stderr, "nearfs-ctl: a reply line of the daemon of %s "
			"is longer than %zu bytes\n", root,
			sizeof(((struct reader *)0)->buf));
	else if (ret < 0 && errno == EAGAIN)
		fprintf(stderr, "nearfs-ctl: the daemon of %s sent nothing "
			"for %d s; the %s may still run there\n", root,
			seconds, what);
	else
		fprintf(stderr, "nearfs-ctl: the daemon of %s closed the "
			"connection before the %s ended: %s\n", root, what,
			ret < 0 ? strerror(errno) :
			"end of file (did the daemon stop?)");
}

/*
 * Hand the reply lines of a flush or a warm to line() until it returns
 * an exit status, waiting PROGRESS_SILENCE_S at most for each line.
 * Returns the exit status.
 */
static int follow_reply(struct reader *r, struct progress *p,
			int (*line)(void *ctx, const char *text), void *ctx)
{
	struct timeval silence = { .tv_sec = PROGRESS_SILENCE_S };
	char *text;
	int ret;

	setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &silence, sizeof(silence));
	while ((ret = reader_next(r, &text)) == 1) {
		int status = line(ctx, text);

		if (status != REPLY_MORE)
			return status;
	}
	progress_end(p);
	report_cut_reply(p->root, p->label, ret, PROGRESS_SILENCE_S);
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
	struct progress p = {
		.label = "flush", .root = root, .tty = isatty(1),
	};
	char request[PATH_MAX + 8], found[PATH_MAX], sock[PATH_MAX];
	struct reader r = { 0 };
	int status;

	snprintf(request, sizeof(request), "flush%s%s", path[0] ? " " : "",
		 path);
	r.fd = ctl_send(root, request, found, sock);
	if (r.fd < 0)
		return EXIT_UNREACHABLE;
	status = follow_reply(&r, &p, flush_line, &p);
	close(r.fd);
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
	/* A "--" before the paths, as other tools take it, is no path. */
	if (n > 0 && strcmp(args[0], "--") == 0) {
		args++;
		n--;
	}
	if (n == 0)
		return usage_error("%s: missing PATH: give the files or "
				   "folders, '.' for the whole mount", cmd);
	if (find_root(mountpoint, l->root) != 0)
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
			report_cut_reply(l->root, cmd, ret, REPLY_TIMEOUT_S);
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
			report_cut_reply(root, "forget", ret,
					 REPLY_TIMEOUT_S);
		return EXIT_UNREACHABLE;
	}
	format_bytes((double)bytes, size, sizeof(size));
	printf("forget: dropped %" PRIu64 " file%s (%s) from the cache\n",
	       files, files == 1 ? "" : "s", size);
	if (kept == 0)
		return EXIT_OK;
	fprintf(stderr, "nearfs-ctl: forget of %s: kept %" PRIu64 " file%s "
		"whose data is not uploaded yet; see nearfs-ctl uploads %s\n",
		root, kept, kept == 1 ? "" : "s", root);
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

/* ---- warm ---- */

/* A warm as the daemon reports it: the progress, and what failed. */
struct warm_view {
	struct progress p;
	uint64_t files_failed;
	uint64_t files_skipped;
};

/* "set FILES BYTES SKIPPED_FILES SKIPPED_BYTES CACHE_SIZE": the set is
 * known.  Print a warning when it does not fit in cache_size. */
static void warm_set(struct warm_view *v, uint64_t files, uint64_t bytes,
		     uint64_t skipped, uint64_t skipped_bytes,
		     uint64_t cache_size)
{
	char all[24], kept[24], left[24], size[24];

	progress_clear_status(&v->p);
	v->files_skipped = skipped;
	if (skipped) {
		format_bytes((double)(bytes + skipped_bytes), all, sizeof(all));
		format_bytes((double)bytes, kept, sizeof(kept));
		format_bytes((double)skipped_bytes, left, sizeof(left));
		format_bytes((double)cache_size, size, sizeof(size));
		fprintf(stderr, "nearfs-ctl: warm: the files come to %s, more "
			"than cache_size (%s) of %s: warming %" PRIu64
			" file%s (%s) and leaving out %" PRIu64 " (%s)\n",
			all, size, v->p.root, files, files == 1 ? "" : "s",
			kept, skipped, left);
	}
	progress_update(&v->p, 0, files, 0, bytes);
}

static void warm_done(const struct warm_view *v)
{
	const struct progress *p = &v->p;
	uint64_t cached = p->files_total - v->files_failed;
	char total[24];

	format_bytes((double)p->bytes_total, total, sizeof(total));
	if (v->files_failed)
		printf("warm: %" PRIu64 " of %" PRIu64 " files in the cache\n",
		       cached, p->files_total);
	else
		printf("warm: %" PRIu64 " file%s (%s) in the cache\n", cached,
		       cached == 1 ? "" : "s", total);
	if (v->files_skipped)
		printf("warm: %" PRIu64 " file%s left out, over cache_size\n",
		       v->files_skipped, v->files_skipped == 1 ? "" : "s");
}

/* Act on one reply line of a warm (see serve_warm() in fs/ctl.c).
 * Returns REPLY_MORE, or the exit status when the line was the last. */
static int warm_line(void *ctx, const char *line)
{
	struct warm_view *v = ctx;
	uint64_t a, b, c, d, e;
	char text[96], size[24];

	if (sscanf(line, "listing %" SCNu64 " %" SCNu64, &a, &b) == 2) {
		format_bytes((double)b, size, sizeof(size));
		snprintf(text, sizeof(text), "warm: listing, %" PRIu64
			 " files (%s) so far", a, size);
		progress_status(&v->p, text);
		return REPLY_MORE;
	}
	if (sscanf(line, "set %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
		   " %" SCNu64, &a, &b, &c, &d, &e) == 5) {
		warm_set(v, a, b, c, d, e);
		return REPLY_MORE;
	}
	if (sscanf(line, "progress %" SCNu64 " %" SCNu64 " %" SCNu64, &a, &b,
		   &c) == 3) {
		v->files_failed = c;
		progress_update(&v->p, a, v->p.files_total, b,
				v->p.bytes_total);
		return REPLY_MORE;
	}
	progress_clear_status(&v->p);
	progress_end(&v->p);
	if (strncmp(line, "error: ", 7) == 0) {
		fprintf(stderr, "nearfs-ctl: the daemon of %s rejected the "
			"warm: %s\n", v->p.root, line + 7);
		return EXIT_USAGE;
	}
	if (strcmp(line, "ok") == 0) {
		warm_done(v);
		return fflush(stdout) == 0 ? EXIT_OK : EXIT_UNREACHABLE;
	}
	if (strncmp(line, "error ", 6) == 0) {
		warm_done(v);
		fflush(stdout);
		fprintf(stderr, "nearfs-ctl: warm of %s: %s\n", v->p.root,
			line + 6);
		return EXIT_INCOMPLETE;
	}
	fprintf(stderr, "nearfs-ctl: unexpected reply from the daemon of "
		"%s: '%s'\n", v->p.root, line);
	return EXIT_UNREACHABLE;
}

static int cmd_warm(int argc, char **argv)
{
	struct warm_view view = { .p = { .label = "warm", .tty = isatty(1) } };
	struct path_list list;
	struct reader r;
	int fd, status;

	if (argc < 1)
		return usage_error("warm: missing the mount point");
	if (argc < 2)
		return usage_error("warm: missing PATH: give the files or "
				   "folders to fetch, '.' for the whole "
				   "mount");
	status = path_list_make("warm", argv[0], argv + 1, argc - 1, &list);
	if (status == EXIT_OK) {
		view.p.root = list.root;
		fd = send_paths("warm", &list, &r, &status);
		if (fd >= 0) {
			status = follow_reply(&r, &view.p, warm_line, &view);
			close(fd);
		}
	}
	path_list_free(&list);
	return status;
}

/* ---- commands ---- */

/* Set by SIGINT and SIGTERM during stats --watch. */
static volatile sig_atomic_t watch_stopped;

static void stop_watch(int sig)
{
	(void)sig;
	watch_stopped = 1;
}

/* Sleep ms milliseconds, or less when a signal stops the watch. */
static void watch_sleep(uint64_t ms)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ms / 1000),
		.tv_nsec = (long)(ms % 1000) * 1000000,
	};

	while (!watch_stopped && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/*
 * Print the stats every interval_ms until count reports are printed (0:
 * no limit) or SIGINT or SIGTERM arrives.  On a terminal each text
 * report replaces the last one.  Otherwise text reports are separated by
 * an empty line, and JSON reports are one object a line.
 */
static int watch_stats(const char *path, const char *request,
		       uint64_t interval_ms, uint64_t count, bool json)
{
	struct sigaction sa = { .sa_handler = stop_watch };
	bool tty = isatty(1) && !json;
	int status = EXIT_OK;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (uint64_t n = 0; !watch_stopped && (count == 0 || n < count); n++) {
		if (n > 0)
			watch_sleep(interval_ms);
		if (watch_stopped)
			break;
		if (tty)
			printf("\033[H\033[2J");	/* home, clear screen */
		else if (n > 0 && !json)
			putchar('\n');
		status = ctl_request(path, request);
		if (status != EXIT_OK)
			break;
	}
	return status;
}

/* Parse the seconds of --watch: a number greater than 0, with a decimal
 * part if wanted.  Returns milliseconds, or 0 when invalid. */
static uint64_t parse_interval(const char *text)
{
	char *end;
	double seconds;

	errno = 0;
	seconds = strtod(text, &end);
	if (errno || end == text || *end || !(seconds > 0) ||
	    seconds > 86400.0 * 365)
		return 0;
	return seconds * 1000 < 1 ? 1 : (uint64_t)(seconds * 1000);
}

/* stats [--json] [--watch SECONDS [--count N]] MOUNTPOINT */
static int cmd_stats(int argc, char **argv)
{
	const char *path = NULL;
	uint64_t interval_ms = 0, count = 0;
	bool json = false, counted = false;

	for (int i = 0; i < argc; i++) {
		bool last = i + 1 == argc;

		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "--watch") == 0) {
			if (last || !(interval_ms = parse_interval(argv[++i])))
				return usage_error("stats: --watch needs the "
						   "seconds between reports, "
						   "a number greater than 0, "
						   "for example --watch 2");
		} else if (strcmp(argv[i], "--count") == 0) {
			char *end;

			errno = 0;
			count = last ? 0 : strtoull(argv[++i], &end, 10);
			if (last || errno || *end || count == 0 ||
			    argv[i][0] == '-')
				return usage_error("stats: --count needs the "
						   "number of reports, at "
						   "least 1, for example "
						   "--count 10");
			counted = true;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return usage_error("stats: unknown option '%s'",
					   argv[i]);
		} else if (path) {
			return usage_error("stats: unexpected argument '%s'",
					   argv[i]);
		} else {
			path = argv[i];
		}
	}
	if (!path)
		return usage_error("stats: missing the mount point");
	if (counted && !interval_ms)
		return usage_error("stats: --count needs --watch SECONDS");
	if (!interval_ms)
		return ctl_request(path, json ? "stats json" : "stats");
	return watch_stats(path, json ? "stats json" : "stats", interval_ms,
			   count, json);
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
	bool options = true;
	int nargs = 0;

	for (int i = 0; i < argc; i++) {
		if (options && strcmp(argv[i], "--") == 0)
			options = false;	/* what follows is no option */
		else if (options && json && strcmp(argv[i], "--json") == 0)
			*json = true;
		else if (options && argv[i][0] == '-' && argv[i][1] != '\0')
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
	if (find_root(args[0], root) != 0)
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

static int cmd_metrics(int argc, char **argv)
{
	char root[PATH_MAX];
	int status;

	status = parse_mount_path("metrics", argc, argv, NULL, root, NULL);
	if (status != EXIT_OK)
		return status;
	return ctl_request(root, "metrics");
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
	{ "stats", "stats [--json] [--watch SECONDS [--count N]] MOUNTPOINT",
	  "print the counters, latencies and settings, as\n"
	  "text or JSON; with --watch again every SECONDS,\n"
	  "N times or until interrupted", cmd_stats },
	{ "metrics", "metrics MOUNTPOINT",
	  "print the counters in the Prometheus text format", cmd_metrics },
	{ "verify", "verify [--repair] CACHE_DIR",
	  "check the cache folder of a stopped daemon: chunk\n"
	  "checksums, index, journal, stray files; --repair\n"
	  "removes what is broken (exit 0 clean, 1 problems\n"
	  "found, 2 usage error or not checked)", cmd_verify },
	{ "flush", "flush MOUNTPOINT [PATH]",
	  "upload now the files that wait in the write-back\n"
	  "queue, all or those at or below PATH (inside the\n"
	  "mount, or relative to its root), and wait for them",
	  cmd_flush },
	{ "warm", "warm MOUNTPOINT PATH...",
	  "fetch files or whole trees into the cache, as far\n"
	  "as cache_size allows, with a progress bar", cmd_warm },
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
