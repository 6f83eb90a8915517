/* ctl.c - the control socket server: statistics for nearfs-ctl. */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

/* Size of the request buffer; longer request lines are rejected. */
#define REQUEST_MAX 1024
/* Seconds a client may take to send its request or read the reply. */
#define CLIENT_TIMEOUT_S 5

struct ctl_server {
	struct ctl_info info;
	int listen_fd;
	int stop_pipe[2];	/* written by ctl_stop() to end the thread */
	pthread_t thread;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/*
 * A control command.  run() writes the reply to out; a rejected request
 * writes a line that starts with "error: ".  Adding a command means adding
 * a function and a row to the commands table.
 */
struct ctl_command {
	const char *name;
	const char *usage;
	void (*run)(struct ctl_server *s, const char *args, FILE *out);
};

static const char *write_mode_name(enum write_mode mode)
{
	switch (mode) {
	case WRITE_THROUGH:
		return "write-through";
	case WRITE_BACK:
		return "write-back";
	case WRITE_AROUND:
		return "write-around";
	}
	return "unknown";
}

/* ---- statistics ---- */

/* One counter of the report: its name and where it sits in the stats. */
struct stat_field {
	const char *name;
	size_t offset;
};

#define STAT_FIELD(name, member) { name, offsetof(struct cache_stats, member) }

static const struct stat_field stat_fields[] = {
	STAT_FIELD("hits", hits),
	STAT_FIELD("misses", misses),
	STAT_FIELD("bytes_from_cache", bytes_from_cache),
	STAT_FIELD("bytes_from_origin", bytes_from_origin),
	STAT_FIELD("chunks_cached", chunks_cached),
	STAT_FIELD("bytes_cached", bytes_cached),
	STAT_FIELD("cache_size", size_max),
	STAT_FIELD("objects_cached", objects_cached),
	STAT_FIELD("evictions", evictions),
	STAT_FIELD("checksum_failures", checksum_failures),
	STAT_FIELD("revalidations", revalidations),
	STAT_FIELD("invalidations", invalidations),
	STAT_FIELD("origin_errors", origin_errors),
	STAT_FIELD("origin_retries", origin_retries),
};

#define NFIELDS (sizeof(stat_fields) / sizeof(stat_fields[0]))

static uint64_t field_value(const struct cache_stats *st, size_t i)
{
	return *(const uint64_t *)((const char *)st + stat_fields[i].offset);
}

static double hit_ratio(const struct cache_stats *st)
{
	uint64_t total = st->hits + st->misses;

	return total ? (double)st->hits / (double)total : 0.0;
}

static void format_text(const struct ctl_info *info,
			const struct cache_stats *st, FILE *out)
{
	const struct cache_config *cfg = cache_config(info->cache);

	fprintf(out, "origin: %s\n", info->origin);
	fprintf(out, "mountpoint: %s\n", info->mountpoint);
	fprintf(out, "cache_dir: %s\n", cache_path(info->cache));
	fprintf(out, "write_mode: %s\n", write_mode_name(cfg->write_mode));
	fprintf(out, "chunk_size: %" PRIu32 "\n", cfg->chunk_size);
	fprintf(out, "pid: %ld\n", (long)getpid());
	for (size_t i = 0; i < NFIELDS; i++) {
		fprintf(out, "%s: %" PRIu64 "\n", stat_fields[i].name,
			field_value(st, i));
		if (strcmp(stat_fields[i].name, "misses") == 0)
			fprintf(out, "hit_ratio: %.4f\n", hit_ratio(st));
	}
	for (size_t i = 0; i < ORIGIN_REQ_MAX; i++)
		fprintf(out, "requests.%s: %" PRIu64 "\n",
			origin_request_names[i], st->origin_requests[i]);
}

static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

static void json_string_field(FILE *out, const char *name, const char *value)
{
	fprintf(out, "\"%s\":", name);
	json_string(out, value);
	fputc(',', out);
}

static void format_json(const struct ctl_info *info,
			const struct cache_stats *st, FILE *out)
{
	const struct cache_config *cfg = cache_config(info->cache);

	fputc('{', out);
	json_string_field(out, "origin", info->origin);
	json_string_field(out, "mountpoint", info->mountpoint);
	json_string_field(out, "cache_dir", cache_path(info->cache));
	json_string_field(out, "write_mode",
			  write_mode_name(cfg->write_mode));
	fprintf(out, "\"chunk_size\":%" PRIu32 ",", cfg->chunk_size);
	fprintf(out, "\"pid\":%ld,", (long)getpid());
	for (size_t i = 0; i < NFIELDS; i++)
		fprintf(out, "\"%s\":%" PRIu64 ",", stat_fields[i].name,
			field_value(st, i));
	fprintf(out, "\"hit_ratio\":%.4f,", hit_ratio(st));
	fputs("\"requests\":{", out);
	for (size_t i = 0; i < ORIGIN_REQ_MAX; i++)
		fprintf(out, "%s\"%s\":%" PRIu64, i ? "," : "",
			origin_request_names[i], st->origin_requests[i]);
	fputs("}}\n", out);
}

int ctl_format_stats(const struct ctl_info *info, bool json, char **out)
{
	struct cache_stats st;
	size_t len;
	FILE *mem;

	mem = open_memstream(out, &len);
	if (!mem)
		return -ENOMEM;
	memset(&st, 0, sizeof(st));
	cache_get_stats(info->cache, &st);
	if (json)
		format_json(info, &st, mem);
	else
		format_text(info, &st, mem);
	if (fclose(mem) != 0) {
		free(*out);
		return -ENOMEM;
	}
	return 0;
}

/* ---- commands ---- */

static void cmd_stats(struct ctl_server *s, const char *args, FILE *out)
{
	bool json;
	char *text;

	if (*args == '\0') {
		json = false;
	} else if (strcmp(args, "json") == 0) {
		json = true;
	} else {
		fprintf(out, "error: invalid argument '%s' to stats: "
			"expected nothing or 'json'\n", args);
		return;
	}
	if (ctl_format_stats(&s->info, json, &text)) {
		fputs("error: out of memory\n", out);
		return;
	}
	fputs(text, out);
	free(text);
}

static const struct ctl_command commands[] = {
	{ "stats", "stats [json]", cmd_stats },
};

/* Split "name args" at the first space and run the matching command. */
static void dispatch(struct ctl_server *s, char *line, FILE *out)
{
	char *args = strchr(line, ' ');

	if (*line == '\0') {
		fputs("error: empty request\n", out);
		return;
	}
	if (args) {
		*args++ = '\0';
		args += strspn(args, " ");
	} else {
		args = line + strlen(line);
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(line, commands[i].name) == 0) {
			commands[i].run(s, args, out);
			return;
		}
	}
	fprintf(out, "error: unknown command '%s'; known commands:", line);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "%s %s", i ? "," : "", commands[i].usage);
	fputc('\n', out);
}

/* ---- connections ---- */

/* Read one line (without its newline) into buf.  -EMSGSIZE when it does
 * not fit, -ETIMEDOUT or another -errno when the read fails. */
static int read_request(int fd, char *buf, size_t size)
{
	size_t len = 0;

	while (len + 1 < size) {
		ssize_t n = read(fd, buf + len, size - 1 - len);
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (n == 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		nl = memchr(buf, '\n', len);
		if (nl) {
			*nl = '\0';
			len = (size_t)(nl - buf);
			break;
		}
	}
	if (len + 1 >= size)
		return -EMSGSIZE;
	buf[len] = '\0';
	if (len > 0 && buf[len - 1] == '\r')
		buf[len - 1] = '\0';
	return 0;
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		/* MSG_NOSIGNAL: a client that hung up must not raise SIGPIPE
		 * in the daemon. */
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

static bool is_peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		log_warn("control socket: SO_PEERCRED failed: %s",
			 strerror(errno));
		return false;
	}
	if (cred.uid == 0 || cred.uid == getuid())
		return true;
	log_warn("control socket: rejected a client with uid %u (pid %d); "
		 "only uid %u and root are served", (unsigned)cred.uid,
		 (int)cred.pid, (unsigned)getuid());
	return false;
}

static void serve_client(struct ctl_server *s, int fd)
{
	struct timeval timeout = { .tv_sec = CLIENT_TIMEOUT_S };
	char line[REQUEST_MAX];
	char *reply = NULL;
	size_t len = 0;
	FILE *out;
	int ret;

	if (!is_peer_allowed(fd)) {
		static const char denied[] = "error: permission denied\n";

		write_all(fd, denied, sizeof(denied) - 1);
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
	ret = read_request(fd, line, sizeof(line));
	if (ret == -EMSGSIZE) {
		char msg[80];
		int n = snprintf(msg, sizeof(msg), "error: request line "
				 "longer than %d bytes\n", REQUEST_MAX - 2);

		write_all(fd, msg, (size_t)n);
		return;
	}
	if (ret) {
		log_debug("control socket: reading a request failed: %s",
			  strerror(-ret));
		return;
	}
	log_debug("control socket: request '%s'", line);

	out = open_memstream(&reply, &len);
	if (!out)
		return;
	dispatch(s, line, out);
	if (fclose(out) == 0)
		write_all(fd, reply, len);
	free(reply);
}

static void *ctl_main(void *arg)
{
	struct ctl_server *s = arg;
	struct pollfd fds[2] = {
		{ .fd = s->listen_fd, .events = POLLIN },
		{ .fd = s->stop_pipe[0], .events = POLLIN },
	};

	for (;;) {
		int fd;

		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_err("control socket: poll failed: %s; the server "
				"stops", strerror(errno));
			break;
		}
		if (fds[1].revents)
			break;
		if (!(fds[0].revents & POLLIN))
			continue;
		fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve_client(s, fd);
		close(fd);
	}
	return NULL;
}

/* ---- setup ---- */

/* Create dir as a 0700 folder, or accept it when it already is one that
 * belongs to us. */
static int make_private_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		int saved = errno;

		snprintf(err, errlen, "cannot create the control socket "
			 "folder %s: %s", dir, strerror(saved));
		return -saved;
	}
	if (lstat(dir, &st) != 0) {
		int saved = errno;

		snprintf(err, errlen, "cannot check the control socket "
			 "folder %s: %s", dir, strerror(saved));
		return -saved;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
	    (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "the control socket folder %s must be "
			 "a folder owned by uid %u with mode 0700: fix or "
			 "remove it", dir, (unsigned)getuid());
		return -EPERM;
	}
	return 0;
}

/* Choose, and create, the folder of the socket. */
static int socket_dir(char *dir, size_t size, char *err, size_t errlen)
{
	const char *runtime = getenv("XDG_RUNTIME_DIR");
	uid_t uid = getuid();
	int n;

	if (uid == 0)
		n = snprintf(dir, size, "/run/nearfs");
	else if (runtime && runtime[0] == '/')
		n = snprintf(dir, size, "%s/nearfs", runtime);
	else
		n = snprintf(dir, size, "/tmp/nearfs-%u", (unsigned)uid);
	if (n < 0 || (size_t)n >= size) {
		snprintf(err, errlen, "the control socket folder under "
			 "XDG_RUNTIME_DIR=%s is too long", runtime);
		return -ENAMETOOLONG;
	}
	return make_private_dir(dir, err, errlen);
}

static int socket_listen(struct ctl_server *s, char *err, size_t errlen)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int saved;

	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0) {
		saved = errno;
		snprintf(err, errlen, "cannot create the control socket: %s",
			 strerror(saved));
		return -saved;
	}
	memcpy(addr.sun_path, s->path, strlen(s->path) + 1);
	/* A socket left by a crashed daemon that had the same pid. */
	unlink(s->path);
	if (bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    chmod(s->path, 0600) != 0 || listen(s->listen_fd, 16) != 0) {
		saved = errno;
		snprintf(err, errlen, "cannot listen on the control socket "
			 "%s: %s", s->path, strerror(saved));
		unlink(s->path);
		return -saved;
	}
	return 0;
}

static int socket_path(struct ctl_server *s, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	int ret, n;

	ret = socket_dir(dir, sizeof(dir), err, errlen);
	if (ret)
		return ret;
	n = snprintf(s->path, sizeof(s->path), "%s/%ld.sock", dir,
		     (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(s->path)) {
		snprintf(err, errlen, "the control socket path %s/%ld.sock "
			 "is longer than %zu bytes: set XDG_RUNTIME_DIR to a "
			 "shorter folder", dir, (long)getpid(),
			 sizeof(s->path) - 1);
		return -ENAMETOOLONG;
	}
	return 0;
}

int ctl_start(const struct ctl_info *info, struct ctl_server **out,
	      char *err, size_t errlen)
{
	struct ctl_server *s = calloc(1, sizeof(*s));
	int ret;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->info = *info;
	s->listen_fd = -1;
	s->stop_pipe[0] = s->stop_pipe[1] = -1;
	ret = socket_path(s, err, errlen);
	if (ret)
		goto out_free;
	ret = socket_listen(s, err, errlen);
	if (ret)
		goto out_close;
	if (pipe2(s->stop_pipe, O_CLOEXEC) != 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot create a pipe: %s",
			 strerror(-ret));
		goto out_unlink;
	}
	ret = -pthread_create(&s->thread, NULL, ctl_main, s);
	if (ret) {
		snprintf(err, errlen, "cannot start the control thread: %s",
			 strerror(-ret));
		goto out_pipe;
	}
	log_debug("control socket at %s", s->path);
	*out = s;
	return 0;

out_pipe:
	close(s->stop_pipe[0]);
	close(s->stop_pipe[1]);
out_unlink:
	unlink(s->path);
out_close:
	if (s->listen_fd >= 0)
		close(s->listen_fd);
out_free:
	free(s);
	return ret;
}

const char *ctl_socket_path(const struct ctl_server *s)
{
	return s->path;
}

void ctl_stop(struct ctl_server *s)
{
	if (!s)
		return;
	while (write(s->stop_pipe[1], "x", 1) < 0 && errno == EINTR)
		;
	pthread_join(s->thread, NULL);
	close(s->stop_pipe[0]);
	close(s->stop_pipe[1]);
	close(s->listen_fd);
	unlink(s->path);
	free(s);
}
