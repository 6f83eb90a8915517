/* ctl.c - the control socket server: statistics and flush for nearfs-ctl. */
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
#include "options.h"

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

	/* Detached threads that serve a flush; ctl_stop() waits for them
	 * because they use the engine. */
	pthread_mutex_t jobs_lock;
	pthread_cond_t jobs_idle;	/* signalled when jobs drops to 0 */
	unsigned jobs;
};

/*
 * A control command, with exactly one of run and start set.  run() writes
 * the whole reply to out.  start() serves a reply that streams: it takes
 * over fd and returns true, or writes an error to fd and returns false.
 * A rejected request gets a line that starts with "error: ".  Adding a
 * command means adding a function and a row to the commands table.
 */
struct ctl_command {
	const char *name;
	const char *usage;
	void (*run)(struct ctl_server *s, const char *args, FILE *out);
	bool (*start)(struct ctl_server *s, const char *args, int fd);
};

/* The fsync= option in its mount syntax: local or origin. */
static const char *fsync_name(const struct cache_config *cfg)
{
	return cfg->fsync_local ? "local" : "origin";
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
	STAT_FIELD("bytes_zero_copy", bytes_zero_copy),
	STAT_FIELD("bytes_to_origin", bytes_to_origin),
	STAT_FIELD("readaheads", readaheads),
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
	STAT_FIELD("dirty_bytes", dirty_bytes),
	STAT_FIELD("max_dirty", max_dirty),
	STAT_FIELD("uploads_pending", uploads_pending),
	STAT_FIELD("uploads_failed", uploads_failed),
	STAT_FIELD("uploads_done", uploads_done),
	STAT_FIELD("upload_retries", upload_retries),
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
	fprintf(out, "writeback_delay_ms: %" PRIu64 "\n",
		cfg->writeback_delay_ms);
	fprintf(out, "fsync: %s\n", fsync_name(cfg));
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
	fprintf(out, "\"writeback_delay_ms\":%" PRIu64 ",",
		cfg->writeback_delay_ms);
	json_string_field(out, "fsync", fsync_name(cfg));
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

static void write_all(int fd, const char *buf, size_t len);

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

/* ---- flush ---- */

/* One flush request, served on its own thread. */
struct flush_job {
	struct ctl_server *server;
	int fd;			/* the client; closed by the job */
	char *path;		/* engine path, "" for every file */
	uint64_t files_left;	/* from the last progress report */
};

/*
 * Turn the request's PATH, relative to the mount root, into an engine
 * path: empty and "." components are dropped, and an absolute path or a
 * ".." component is rejected with -EINVAL.  The caller frees *out.
 */
static int flush_path(const char *text, char **out)
{
	char *copy, *path, *component, *save = NULL;
	size_t len = 0;
	int ret = 0;

	if (text[0] == '/')
		return -EINVAL;
	copy = strdup(text);
	path = malloc(strlen(text) + 1);
	if (!copy || !path) {
		ret = -ENOMEM;
		goto out_free;
	}
	for (component = strtok_r(copy, "/", &save); component;
	     component = strtok_r(NULL, "/", &save)) {
		if (strcmp(component, ".") == 0)
			continue;
		if (strcmp(component, "..") == 0) {
			ret = -EINVAL;
			goto out_free;
		}
		len += (size_t)sprintf(path + len, "%s%s", len ? "/" : "",
				       component);
	}
	path[len] = '\0';
	*out = path;
	path = NULL;

out_free:
	free(path);
	free(copy);
	return ret;
}

/* Send one progress line.  A client that does not read is not waited
 * for: the line is dropped, and later ones carry the newer numbers. */
static void flush_progress(void *arg, uint64_t files_left,
			   uint64_t bytes_left, uint64_t bytes_total)
{
	struct flush_job *job = arg;
	char line[96];
	int n;

	job->files_left = files_left;
	n = snprintf(line, sizeof(line), "progress %" PRIu64 " %" PRIu64
		     " %" PRIu64 "\n", files_left, bytes_left, bytes_total);
	if (send(job->fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("control socket: a flush progress line was not "
			  "sent: %s", strerror(errno));
}

/*
 * The last line of a flush reply, for the result ret of cache_flush().
 * The engine reports progress once more before it returns, so after -EIO
 * the last count of files left is the count of files that failed.
 */
static void flush_result(const struct flush_job *job, int ret, char *line,
			 size_t size)
{
	if (ret == 0)
		snprintf(line, size, "ok\n");
	else if (ret != -EIO)
		snprintf(line, size, "error the flush failed: %s; see the "
			 "daemon's log\n", strerror(-ret));
	else if (job->files_left == 0)
		snprintf(line, size, "error some files could not be uploaded; "
			 "see the daemon's log\n");
	else
		snprintf(line, size, "error %" PRIu64 " file%s could not be "
			 "uploaded; see the daemon's log\n", job->files_left,
			 job->files_left == 1 ? "" : "s");
}

static void jobs_add(struct ctl_server *s)
{
	pthread_mutex_lock(&s->jobs_lock);
	s->jobs++;
	pthread_mutex_unlock(&s->jobs_lock);
}

/* The last access of a job to its server: ctl_stop() may free it next. */
static void jobs_remove(struct ctl_server *s)
{
	pthread_mutex_lock(&s->jobs_lock);
	if (--s->jobs == 0)
		pthread_cond_broadcast(&s->jobs_idle);
	pthread_mutex_unlock(&s->jobs_lock);
}

static void *flush_main(void *arg)
{
	struct flush_job *job = arg;
	struct ctl_server *s = job->server;
	char shown[REQUEST_MAX + 4], line[160];
	int ret;

	if (job->path[0])
		snprintf(shown, sizeof(shown), "'%s'", job->path);
	else
		snprintf(shown, sizeof(shown), "all files");
	log_info("control socket: flush of %s requested", shown);
	ret = cache_flush(s->info.cache, job->path, flush_progress, job);
	flush_result(job, ret, line, sizeof(line));
	if (ret)
		log_warn("control socket: flush of %s failed: %s", shown,
			 strerror(-ret));
	else
		log_info("control socket: flush of %s done", shown);
	write_all(job->fd, line, strlen(line));
	close(job->fd);
	free(job->path);
	free(job);
	jobs_remove(s);
	return NULL;
}

/*
 * "flush [PATH]": upload the files waiting below PATH now.  The reply is a
 * "progress FILES_LEFT BYTES_LEFT BYTES_TOTAL" line about twice a second,
 * then "ok", or "error ..." when some files could not be uploaded.  The
 * wait can be long, so the request runs on a thread of its own and the
 * server goes on serving other clients.
 */
static bool start_flush(struct ctl_server *s, const char *args, int fd)
{
	struct flush_job *job = calloc(1, sizeof(*job));
	char msg[REQUEST_MAX + 160];
	pthread_attr_t attr;
	pthread_t thread;
	int ret;

	if (!job) {
		ret = -ENOMEM;
		goto out_reply;
	}
	job->server = s;
	job->fd = fd;
	ret = flush_path(args, &job->path);
	if (ret == -EINVAL) {
		log_warn("control socket: rejected a flush of the invalid "
			 "path '%s'", args);
		snprintf(msg, sizeof(msg), "error: invalid path '%s' for "
			 "flush: give a path relative to the mount root, "
			 "without '..'\n", args);
		goto out_free;
	}
	if (ret)
		goto out_reply;

	jobs_add(s);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = -pthread_create(&thread, &attr, flush_main, job);
	pthread_attr_destroy(&attr);
	if (ret == 0)
		return true;
	jobs_remove(s);
	log_err("control socket: cannot start a flush thread: %s",
		strerror(-ret));

out_reply:
	snprintf(msg, sizeof(msg), "error: cannot start the flush: %s\n",
		 strerror(-ret));
out_free:
	if (job)
		free(job->path);
	free(job);
	write_all(fd, msg, strlen(msg));
	return false;
}

static const struct ctl_command commands[] = {
	{ "stats", "stats [json]", cmd_stats, NULL },
	{ "flush", "flush [PATH]", NULL, start_flush },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void write_unknown(const char *name, FILE *out)
{
	fprintf(out, "error: unknown command '%s'; known commands:", name);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "%s %s", i ? "," : "", commands[i].usage);
	fputc('\n', out);
}

/* Run a command whose reply is built whole, or reject an unknown or
 * empty request, and send the reply to fd. */
static void reply_buffered(struct ctl_server *s,
			   const struct ctl_command *cmd, const char *name,
			   const char *args, int fd)
{
	char *reply = NULL;
	size_t len = 0;
	FILE *out;

	out = open_memstream(&reply, &len);
	if (!out)
		return;
	if (*name == '\0')
		fputs("error: empty request\n", out);
	else if (!cmd)
		write_unknown(name, out);
	else
		cmd->run(s, args, out);
	if (fclose(out) == 0)
		write_all(fd, reply, len);
	free(reply);
}

/* Split "name args" at the first space and run the matching command.
 * Returns true when the command took over fd. */
static bool dispatch(struct ctl_server *s, char *line, int fd)
{
	const struct ctl_command *cmd = NULL;
	char *args = strchr(line, ' ');

	if (args) {
		*args++ = '\0';
		args += strspn(args, " ");
	} else {
		args = line + strlen(line);
	}
	for (size_t i = 0; i < NCOMMANDS && *line; i++)
		if (strcmp(line, commands[i].name) == 0)
			cmd = &commands[i];
	if (cmd && cmd->start)
		return cmd->start(s, args, fd);
	reply_buffered(s, cmd, line, args, fd);
	return false;
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

/* Serve one connection.  Returns true when a command took over fd, else
 * the caller closes it. */
static bool serve_client(struct ctl_server *s, int fd)
{
	struct timeval timeout = { .tv_sec = CLIENT_TIMEOUT_S };
	char line[REQUEST_MAX];
	int ret;

	if (!is_peer_allowed(fd)) {
		static const char denied[] = "error: permission denied\n";

		write_all(fd, denied, sizeof(denied) - 1);
		return false;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
	ret = read_request(fd, line, sizeof(line));
	if (ret == -EMSGSIZE) {
		char msg[80];
		int n = snprintf(msg, sizeof(msg), "error: request line "
				 "longer than %d bytes\n", REQUEST_MAX - 2);

		write_all(fd, msg, (size_t)n);
		return false;
	}
	if (ret) {
		log_debug("control socket: reading a request failed: %s",
			  strerror(-ret));
		return false;
	}
	log_debug("control socket: request '%s'", line);
	return dispatch(s, line, fd);
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
		if (!serve_client(s, fd))
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
	pthread_mutex_init(&s->jobs_lock, NULL);
	pthread_cond_init(&s->jobs_idle, NULL);
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
	pthread_cond_destroy(&s->jobs_idle);
	pthread_mutex_destroy(&s->jobs_lock);
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
	pthread_mutex_lock(&s->jobs_lock);
	if (s->jobs)
		log_info("control socket: waiting for %u flush request%s",
			 s->jobs, s->jobs == 1 ? "" : "s");
	while (s->jobs)
		pthread_cond_wait(&s->jobs_idle, &s->jobs_lock);
	pthread_mutex_unlock(&s->jobs_lock);
	pthread_cond_destroy(&s->jobs_idle);
	pthread_mutex_destroy(&s->jobs_lock);
	close(s->stop_pipe[0]);
	close(s->stop_pipe[1]);
	close(s->listen_fd);
	unlink(s->path);
	free(s);
}
