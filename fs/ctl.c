/*
 * ctl.c - the control socket server: statistics and flush for nearfs-ctl,
 * and local copies and, without FUSE, path requests for the preload
 * library.
 */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fdpass.h"
#include "fuse_ops.h"
#include "log.h"
#include "nomount.h"
#include "options.h"
#include "preload/protocol.h"
#include "roots.h"
#include "stats.h"

/* Size of the request buffer of commands other than path requests, which
 * may be up to NEARFS_PATH_LINE_MAX; longer request lines are rejected. */
#define REQUEST_MAX 1024
/* Seconds a client may take to send its request or read the reply. */
#define CLIENT_TIMEOUT_S 5

struct ctl_server {
	struct ctl_info info;
	int listen_fd;
	int stop_pipe[2];	/* written by ctl_stop() to end the thread */
	pthread_t thread;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *mount_root;	/* canonical mountpoint, for "open" */

	/* Detached threads that serve a flush, an open or a path request;
	 * ctl_stop() waits for them because they use the engine. */
	pthread_mutex_t jobs_lock;
	pthread_cond_t jobs_idle;	/* signalled when jobs drops to 0 */
	unsigned jobs;
	/* Path requests in progress, under jobs_lock: ctl_stop() ends the
	 * handles of files open for writing through their connections. */
	struct path_job *path_jobs;
};

/* One request on a connection. */
struct ctl_request {
	int fd;			/* the client */
	const char *name;	/* the command name of the request line */
	struct ucred peer;	/* its SO_PEERCRED credentials */
	int passed_fd;		/* sent with the request (SCM_RIGHTS), or -1;
				 * a command that keeps it sets it to -1 */
};

/*
 * A control command, with exactly one of run and start set.  run() writes
 * the whole reply to out.  start() serves a reply that streams or takes
 * long: it takes over req->fd and returns true, or writes an error to
 * req->fd and returns false.  A rejected request gets a line that starts
 * with "error: ".  Commands without any_user are served to the daemon's
 * uid and root only.  A descriptor sent with a command without takes_fd
 * is closed.  Adding a command means adding a function and a row to the
 * commands table.  The path requests are one command, path_command, for
 * the names that nomount_serves() accepts.  They are rejected with
 * "err ERRNO" as protocol.h specifies, and their lines may be up to
 * NEARFS_PATH_LINE_MAX bytes long.
 */
struct ctl_command {
	const char *name;
	const char *usage;
	void (*run)(struct ctl_server *s, const char *args, FILE *out);
	bool (*start)(struct ctl_server *s, const char *args,
		      struct ctl_request *req);
	bool any_user;
	bool takes_fd;
	bool path;
};

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

/* "metrics": the counters in the Prometheus text format. */
static void cmd_metrics(struct ctl_server *s, const char *args, FILE *out)
{
	char *text;

	if (*args) {
		fprintf(out, "error: invalid argument '%s' to metrics: "
			"expected nothing\n", args);
		return;
	}
	if (stats_format_metrics(&s->info, &text)) {
		fputs("error: out of memory\n", out);
		return;
	}
	fputs(text, out);
	free(text);
}

/* ---- settings ---- */

/*
 * "set OPTION=VALUE[,OPTION=VALUE...]": change settings while mounted,
 * parsed as the mount options are.  The reply names each setting that
 * changed, "NAME: OLD -> NEW" with the names of the stats report.
 */
static void cmd_set(struct ctl_server *s, const char *args, FILE *out)
{
	struct cache *c = s->info.cache;
	int level_before = log_max_level, level = log_max_level;
	struct cache_stats before, after;
	struct cache_config cfg;
	char err[512];

	/* Buffered commands run on the server thread one at a time, so no
	 * other set changes cfg between here and cache_set_config(). */
	cache_get_config(c, &cfg);
	cache_get_stats(c, &before);
	if (options_parse_runtime(args, &cfg, &level, err, sizeof(err)) ||
	    cache_set_config(c, &cfg, err, sizeof(err))) {
		log_info("control socket: rejected the settings '%s': %s",
			 args, err);
		fprintf(out, "error: %s\n", err);
		return;
	}
	log_max_level = level;
	cache_get_stats(c, &after);
	log_info("control socket: settings changed: %s", args);
	stats_print_changes(out, &before, level_before, &after, level);
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

/* Run fn(job) on a detached thread that counts as a job of s. */
static int start_job(struct ctl_server *s, void *(*fn)(void *), void *job)
{
	pthread_attr_t attr;
	pthread_t thread;
	int ret;

	jobs_add(s);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = -pthread_create(&thread, &attr, fn, job);
	pthread_attr_destroy(&attr);
	if (ret)
		jobs_remove(s);
	return ret;
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
static bool start_flush(struct ctl_server *s, const char *args,
			struct ctl_request *req)
{
	struct flush_job *job = calloc(1, sizeof(*job));
	int fd = req->fd;
	char msg[REQUEST_MAX + 160];
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

	ret = start_job(s, flush_main, job);
	if (ret == 0)
		return true;
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

/* ---- usage ---- */

/*
 * "usage FORMAT [PATH]", FORMAT text or json: what the cache contains at and
 * below PATH, relative to the mount root as for flush.  The format word
 * always comes first, so that any PATH can follow it.
 */
static void cmd_usage(struct ctl_server *s, const char *args, FILE *out)
{
	const char *space = strchr(args, ' ');
	size_t len = space ? (size_t)(space - args) : strlen(args);
	bool json = len == 4 && strncmp(args, "json", 4) == 0;
	struct cache_usage usage;
	char *path;
	int ret;

	if (!json && !(len == 4 && strncmp(args, "text", 4) == 0)) {
		fprintf(out, "error: invalid usage request '%s': expected "
			"'usage text [PATH]' or 'usage json [PATH]'\n", args);
		return;
	}
	ret = flush_path(space ? space + 1 : "", &path);
	if (ret == -EINVAL) {
		fprintf(out, "error: invalid path '%s' for usage: give a path "
			"relative to the mount root, without '..'\n",
			space + 1);
		return;
	}
	if (ret) {
		fprintf(out, "error: %s\n", strerror(-ret));
		return;
	}
	cache_usage(s->info.cache, path, &usage);
	stats_format_usage(out, path, &usage, json);
	free(path);
}

/* ---- uploads ---- */

/* "uploads [json]": the files of the write-back queue, oldest first. */
static void cmd_uploads(struct ctl_server *s, const char *args, FILE *out)
{
	bool json = strcmp(args, "json") == 0;
	struct cache_upload *list;
	size_t count;

	if (!json && *args) {
		fprintf(out, "error: invalid argument '%s' to uploads: "
			"expected nothing or 'json'\n", args);
		return;
	}
	if (cache_list_uploads(s->info.cache, &list, &count)) {
		fputs("error: out of memory\n", out);
		return;
	}
	stats_format_uploads(out, list, count, json);
	cache_free_uploads(list, count);
}

/* ---- requests with paths on lines of their own ---- */

/* Paths that one request may name at most. */
#define PATHS_MAX 100000

static const char *parse_number(const char *text, bool negative,
				long long *value);

/*
 * A request that names its paths on lines of their own, because they may
 * be many and each up to PATH_MAX long.  Its line is "NAME COUNT".  Once
 * the server replied "ready", COUNT lines follow, each with a path
 * relative to the mount root as flush takes it ("" or "." for the root).
 * serve() writes the reply.
 */
struct paths_job {
	struct ctl_server *server;
	int fd;			/* the client; closed by the job */
	const char *name;	/* the command, for messages */
	void (*serve)(struct paths_job *job);
	size_t count;
	char **paths;		/* engine paths, count of them */
};

/* The lines a client sends after its request line. */
struct line_reader {
	int fd;
	size_t len;		/* bytes in buf */
	char buf[PATH_MAX + 1];
};

/*
 * Read the next line, without its newline, into out (size bytes).
 * Returns 0, -EMSGSIZE for a line that does not fit, -ENODATA at the end
 * of the stream, -ETIMEDOUT when the client sends nothing for
 * CLIENT_TIMEOUT_S, or another -errno.
 */
static int read_line(struct line_reader *r, char *out, size_t size)
{
	for (;;) {
		char *nl = memchr(r->buf, '\n', r->len);
		ssize_t n;

		if (nl) {
			size_t len = (size_t)(nl - r->buf);

			if (len >= size)
				return -EMSGSIZE;
			memcpy(out, r->buf, len);
			out[len] = '\0';
			r->len -= len + 1;
			memmove(r->buf, nl + 1, r->len);
			return 0;
		}
		if (r->len == sizeof(r->buf))
			return -EMSGSIZE;
		n = recv(r->fd, r->buf + r->len, sizeof(r->buf) - r->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (n == 0)
			return -ENODATA;
		r->len += (size_t)n;
	}
}

static void paths_job_free(struct paths_job *job)
{
	for (size_t i = 0; job->paths && i < job->count; i++)
		free(job->paths[i]);
	free(job->paths);
	free(job);
}

/* Send "ready" and read the paths of job.  Returns 0, or -1 with the
 * reply line for the client in msg. */
static int read_paths(struct paths_job *job, char *msg, size_t size)
{
	struct line_reader *r = calloc(1, sizeof(*r));
	char *line = malloc(PATH_MAX);
	int ret = r && line ? 0 : -ENOMEM;
	size_t i;

	job->paths = calloc(job->count, sizeof(*job->paths));
	if (!job->paths)
		ret = -ENOMEM;
	if (ret == 0) {
		r->fd = job->fd;
		write_all(job->fd, "ready\n", 6);
	}
	for (i = 0; ret == 0 && i < job->count; i++) {
		ret = read_line(r, line, PATH_MAX);
		if (ret == 0)
			ret = flush_path(line, &job->paths[i]);
	}
	if (ret == -EINVAL)
		snprintf(msg, size, "error: invalid path '%s' for %s: give a "
			 "path relative to the mount root, without '..'\n",
			 line, job->name);
	else if (ret)
		snprintf(msg, size, "error: reading path %zu of %zu of the "
			 "%s request failed: %s\n", i, job->count, job->name,
			 ret == -ENODATA ? "the client closed the connection" :
			 strerror(-ret));
	free(line);
	free(r);
	return ret ? -1 : 0;
}

static void *paths_main(void *arg)
{
	struct paths_job *job = arg;
	struct ctl_server *s = job->server;
	char msg[PATH_MAX + 160];

	if (read_paths(job, msg, sizeof(msg)) == 0) {
		job->serve(job);
	} else {
		log_warn("control socket: rejected a %s request: %s",
			 job->name, msg + strlen("error: "));
		write_all(job->fd, msg, strlen(msg));
	}
	close(job->fd);
	paths_job_free(job);
	jobs_remove(s);
	return NULL;
}

/* Start a request with paths on lines of their own, whose request line
 * is "NAME COUNT".  serve() writes the reply on the job's thread. */
static bool start_paths(struct ctl_server *s, const char *args,
			struct ctl_request *req, const char *name,
			void (*serve)(struct paths_job *job))
{
	struct paths_job *job;
	const char *end;
	long long count;
	char msg[160];
	int ret;

	end = parse_number(args, false, &count);
	if (!end || *end || count < 1 || count > PATHS_MAX) {
		snprintf(msg, sizeof(msg), "error: invalid %s request: "
			 "expected '%s COUNT', COUNT from 1 to %d\n", name,
			 name, PATHS_MAX);
		goto out_reply;
	}
	job = calloc(1, sizeof(*job));
	if (!job) {
		snprintf(msg, sizeof(msg), "error: out of memory\n");
		goto out_reply;
	}
	job->server = s;
	job->fd = req->fd;
	job->name = name;
	job->serve = serve;
	job->count = (size_t)count;
	ret = start_job(s, paths_main, job);
	if (ret == 0)
		return true;
	log_err("control socket: cannot start a thread for %s: %s", name,
		strerror(-ret));
	snprintf(msg, sizeof(msg), "error: cannot start the %s request: "
		 "%s\n", name, strerror(-ret));
	paths_job_free(job);
out_reply:
	write_all(req->fd, msg, strlen(msg));
	return false;
}

/* ---- forget ---- */

/*
 * "forget COUNT" and COUNT paths: drop the cached data and metadata at
 * and below each path, but nothing that is not on the origin yet, and
 * wait until the kernel dropped its page cache of the dropped files.
 * The reply is "forgot FILES BYTES KEPT": files and bytes dropped, and
 * files kept because their data is not uploaded yet.
 */
static void serve_forget(struct paths_job *job)
{
	struct ctl_server *s = job->server;
	struct cache_forget_result result = { 0 };
	char line[96];

	for (size_t i = 0; i < job->count; i++)
		cache_forget(s->info.cache, job->paths[i], &result);
	if (s->info.fs)
		nearfs_fs_wait_invalidations(s->info.fs);
	log_info("control socket: forget of %zu path%s: dropped %" PRIu64
		 " files (%" PRIu64 " bytes), kept %" PRIu64 " with data not "
		 "uploaded yet", job->count, job->count == 1 ? "" : "s",
		 result.files, result.bytes, result.kept);
	snprintf(line, sizeof(line), "forgot %" PRIu64 " %" PRIu64 " %" PRIu64
		 "\n", result.files, result.bytes, result.kept);
	write_all(job->fd, line, strlen(line));
}

static bool start_forget(struct ctl_server *s, const char *args,
			 struct ctl_request *req)
{
	return start_paths(s, args, req, "forget", serve_forget);
}

/* ---- warm ---- */

/* Threads that fetch the files of one warm. */
#define WARM_THREADS 4

/* One warm request, for its progress reports. */
struct warm_report {
	struct ctl_server *server;
	int fd;			/* the client */
	bool set_sent;		/* the "set" line went out */
	bool cancelled;		/* warm_cancelled() said so once */
	uint64_t cache_size;
	struct cache_warm_progress last;	/* the last report */
};

/* Send one line to the client of a warm; a client that went away is not
 * waited for, and the warm goes on. */
static void warm_send(struct warm_report *wr, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void warm_send(struct warm_report *wr, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		write_all(wr->fd, line, (size_t)n < sizeof(line) ?
			  (size_t)n : sizeof(line) - 1);
}

/*
 * Whether a warm must stop: its client closed the connection (it sends
 * nothing after its paths, so a readable socket is at its end), or the
 * server stops (ctl_stop() wrote to the stop pipe, which nothing reads).
 */
static bool warm_cancelled(const struct warm_report *wr)
{
	struct pollfd fds[2] = {
		{ .fd = wr->fd, .events = POLLIN },
		{ .fd = wr->server->stop_pipe[0], .events = POLLIN },
	};

	if (poll(fds, 2, 0) <= 0)
		return false;
	if (fds[1].revents) {
		log_info("control socket: the server stops: warm cancelled");
		return true;
	}
	if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
		log_info("control socket: the client of a warm went away: "
			 "warm cancelled");
		return true;
	}
	return false;
}

/*
 * Report the progress of cache_warm(): "listing FILES BYTES" while the
 * folders are listed, "set FILES BYTES SKIPPED_FILES SKIPPED_BYTES
 * CACHE_SIZE" once, then "progress FILES_DONE BYTES_DONE FILES_FAILED".
 * Returns non-zero to cancel the warm.
 */
static int warm_progress(void *arg, const struct cache_warm_progress *p)
{
	struct warm_report *wr = arg;

	wr->last = *p;
	if (!wr->cancelled)
		wr->cancelled = warm_cancelled(wr);
	if (wr->cancelled)
		return 1;
	if (p->listing) {
		warm_send(wr, "listing %" PRIu64 " %" PRIu64 "\n",
			  p->files_total, p->bytes_total);
		return 0;
	}
	if (!wr->set_sent) {
		wr->set_sent = true;
		warm_send(wr, "set %" PRIu64 " %" PRIu64 " %" PRIu64 " %"
			  PRIu64 " %" PRIu64 "\n", p->files_total,
			  p->bytes_total, p->files_skipped, p->bytes_skipped,
			  wr->cache_size);
	}
	warm_send(wr, "progress %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
		  p->files_done, p->bytes_done, p->files_failed);
	return 0;
}

/*
 * "warm COUNT" and COUNT paths: fetch the files at and below the paths
 * into the cache, with the progress lines of warm_progress().  The last
 * line is "ok", or "error TEXT" when files failed, did not fit in
 * cache_size or the warm was cancelled, or "error: TEXT" when a path
 * could not be listed and nothing was fetched.
 */
static void serve_warm(struct paths_job *job)
{
	struct ctl_server *s = job->server;
	struct warm_report wr = { .server = s, .fd = job->fd };
	const struct cache_warm_progress *p = &wr.last;
	struct cache_stats st;
	char err[512];
	int ret;

	cache_get_stats(s->info.cache, &st);
	wr.cache_size = st.size_max;
	log_info("control socket: warm of %zu path%s requested", job->count,
		 job->count == 1 ? "" : "s");
	ret = cache_warm(s->info.cache, (const char *const *)job->paths,
			 job->count, WARM_THREADS, warm_progress, &wr, err,
			 sizeof(err));
	if (ret == 0) {
		log_info("control socket: warm done: %" PRIu64 " files (%"
			 PRIu64 " bytes)", p->files_total, p->bytes_total);
		warm_send(&wr, "ok\n");
	} else if (ret == -EIO) {
		log_warn("control socket: warm: %" PRIu64 " of %" PRIu64
			 " files failed, the first: %s", p->files_failed,
			 p->files_total, p->error);
		warm_send(&wr, "error %" PRIu64 " file%s could not be cached, "
			  "the first: %s\n", p->files_failed,
			  p->files_failed == 1 ? "" : "s", p->error);
	} else if (ret == -ECANCELED) {
		log_info("control socket: warm cancelled after %" PRIu64 " of %"
			 PRIu64 " files", p->files_done, p->files_total);
		warm_send(&wr, "error the warm was cancelled after %" PRIu64
			  " of %" PRIu64 " files\n", p->files_done,
			  p->files_total);
	} else if (ret == -ENOSPC) {
		log_info("control socket: warm done, without %" PRIu64
			 " files (%" PRIu64 " bytes) over cache_size",
			 p->files_skipped, p->bytes_skipped);
		warm_send(&wr, "error %" PRIu64 " file%s (%" PRIu64 " bytes) "
			  "left out: the set does not fit in cache_size (%"
			  PRIu64 " bytes)\n", p->files_skipped,
			  p->files_skipped == 1 ? "" : "s", p->bytes_skipped,
			  st.size_max);
	} else {
		log_warn("control socket: warm failed: %s", err[0] ? err :
			 strerror(-ret));
		warm_send(&wr, "error: %s\n", err[0] ? err : strerror(-ret));
	}
}

static bool start_warm(struct ctl_server *s, const char *args,
		       struct ctl_request *req)
{
	return start_paths(s, args, req, "warm", serve_warm);
}

/* ---- open: local copies for the preload library ---- */

/*
 * The client of an "open" request.  Any user may send one when the mount
 * has allow_other, so its refusals and rejections are logged at debug
 * level only.
 */
struct lend_peer {
	uid_t uid;
	gid_t gid;
	gid_t *groups;		/* supplementary groups (SO_PEERGROUPS) */
	size_t ngroups;
	const struct nearfs_fs *fs;
};

/* One "open" request, served on its own thread. */
struct lend_job {
	struct ctl_server *server;
	int fd;			/* the client; closed by the job */
	int file_fd;		/* the client's descriptor of the file;
				 * closed by the job */
	pid_t pid;		/* the client's, for messages */
	struct cache_lend_request req;
	struct lend_peer peer;
};

static bool peer_in_group(const struct lend_peer *p, gid_t gid)
{
	if (p->gid == gid)
		return true;
	for (size_t i = 0; i < p->ngroups; i++)
		if (p->groups[i] == gid)
			return true;
	return false;
}

/* Whether the client may read a file with attr, as the kernel checks the
 * mode bits that stat(2) shows on the mount; root always may. */
static bool peer_may_read(void *arg, const struct origin_attr *attr)
{
	const struct lend_peer *p = arg;
	struct stat st;

	if (p->uid == 0)
		return true;
	nearfs_fs_file_stat(p->fs, attr, &st);
	if (st.st_uid == p->uid)
		return st.st_mode & S_IRUSR;
	if (peer_in_group(p, st.st_gid))
		return st.st_mode & S_IRGRP;
	return st.st_mode & S_IROTH;
}

/* Store the supplementary groups of the client on fd in p. */
static int peer_groups(int fd, struct lend_peer *p)
{
	socklen_t len = 0;
	gid_t *groups = NULL;

	/* The first call returns the length needed, with ERANGE. */
	while (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		free(groups);
		if (errno != ERANGE)
			return -errno;
		groups = malloc(len ? len : 1);
		if (!groups)
			return -ENOMEM;
	}
	p->groups = groups;
	p->ngroups = len / sizeof(gid_t);
	return 0;
}

/* Parse a decimal number of text into *value, with a leading '-' when
 * negative is set.  Returns the text after it, or NULL. */
static const char *parse_number(const char *text, bool negative,
				long long *value)
{
	char *end;

	if (!(*text >= '0' && *text <= '9') && !(negative && *text == '-'))
		return NULL;
	errno = 0;
	*value = strtoll(text, &end, 10);
	if (errno || end == text)
		return NULL;
	return end;
}

/* Parse "SIZE MTIME_SEC MTIME_NSEC" into req.  Returns 0 or -EINVAL. */
static int parse_open_args(const char *args, struct cache_lend_request *req)
{
	long long size, sec, nsec;
	const char *p = parse_number(args, false, &size);

	if (!p || *p++ != ' ')
		return -EINVAL;
	p = parse_number(p, true, &sec);
	if (!p || *p++ != ' ')
		return -EINVAL;
	p = parse_number(p, false, &nsec);
	if (!p || *p != '\0' || nsec >= 1000000000)
		return -EINVAL;
	req->size = (uint64_t)size;
	req->mtime.tv_sec = (time_t)sec;
	req->mtime.tv_nsec = (long)nsec;
	return 0;
}

/* The ID of the mount that fd was opened on, from /proc/self/fdinfo. */
static int fd_mount_id(int fd, int *id)
{
	char path[64], line[256];
	int ret = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (ret && fgets(line, sizeof(line), f))
		if (sscanf(line, "mnt_id: %d", id) == 1)
			ret = 0;
	fclose(f);
	return ret;
}

/* Undo the octal escapes (\040 for a space, ...) of a field of
 * /proc/self/mountinfo, in place. */
static void unescape_mount_field(char *field)
{
	char *out = field;

	for (const char *p = field; *p; out++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' &&
		    p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
			*out = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 +
				      (p[3] - '0'));
			p += 4;
		} else {
			*out = *p++;
		}
	}
	*out = '\0';
}

/* Whether the mount with ID id is mounted at dir. */
static bool mount_is_at(int id, const char *dir)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, point[PATH_MAX];
	size_t cap = 0;
	bool found = false;
	int line_id;

	if (!f)
		return false;
	while (getline(&line, &cap, f) > 0) {
		/* "ID PARENT MAJOR:MINOR ROOT MOUNT_POINT ..." */
		if (sscanf(line, "%d %*d %*s %*s %4095s", &line_id,
			   point) != 2 || line_id != id)
			continue;
		unescape_mount_field(point);
		found = strcmp(point, dir) == 0;
		break;
	}
	free(line);
	fclose(f);
	return found;
}

/*
 * Find the engine path of the file behind file_fd, a descriptor that the
 * client opened on this mount, without any request to the file system:
 * an fstat(2) would send a FUSE request to this daemon.  Returns NULL
 * with the path in *out (for the caller to free), or why the descriptor
 * does not qualify.
 */
static const char *lend_path(const struct ctl_server *s, int file_fd,
			     char **out)
{
	const char *root = s->mount_root;
	size_t root_len = strcmp(root, "/") == 0 ? 0 : strlen(root);
	char link[64], target[PATH_MAX];
	int flags, mount_id;
	ssize_t n;

	flags = fcntl(file_fd, F_GETFL);
	if (flags < 0 || (flags & O_ACCMODE) != O_RDONLY)
		return "the descriptor sent with open must be opened O_RDONLY";
	snprintf(link, sizeof(link), "/proc/self/fd/%d", file_fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0 || (size_t)n >= sizeof(target) - 1)
		return "cannot find the path of the descriptor sent with open";
	target[n] = '\0';
	if (strncmp(target, root, root_len) != 0 ||
	    target[root_len] != '/' || fd_mount_id(file_fd, &mount_id) ||
	    !mount_is_at(mount_id, root))
		return "the descriptor sent with open is not a file on this "
		       "nearfs mount";
	*out = strdup(target + root_len + 1);
	return *out ? NULL : "out of memory";
}

/* Lend the local copy of the file behind job->file_fd, and reply with
 * one line of at most NEARFS_LEND_LINE_MAX bytes. */
static void serve_lend(struct lend_job *job)
{
	struct ctl_server *s = job->server;
	char reply[NEARFS_LEND_LINE_MAX];
	const char *reason = NULL;
	char *path = NULL;
	int fd = -1, ret = 0;

	reason = lend_path(s, job->file_fd, &path);
	if (reason) {
		log_debug("control socket: rejected an open from uid %u (pid "
			  "%d): %s", (unsigned)job->peer.uid, (int)job->pid,
			  reason);
		snprintf(reply, sizeof(reply), "error: %s\n", reason);
		goto out_reply;
	}
	ret = cache_lend(s->info.cache, path, &job->req, &fd, &reason);
	if (ret < 0) {
		snprintf(reply, sizeof(reply), "error: cannot lend the local "
			 "copy: %s\n", strerror(-ret));
	} else if (fd < 0) {
		log_debug("control socket: lent no copy of '%s' to uid %u "
			  "(pid %d): %s", path, (unsigned)job->peer.uid,
			  (int)job->pid, reason);
		snprintf(reply, sizeof(reply), NEARFS_LEND_NO " %s\n",
			 reason);
	} else {
		log_debug("control socket: lent the local copy of '%s' to "
			  "uid %u (pid %d)", path, (unsigned)job->peer.uid,
			  (int)job->pid);
		snprintf(reply, sizeof(reply), NEARFS_LEND_OK " %" PRIu64
			 "\n", job->req.size);
		ret = fdpass_send(job->fd, reply, strlen(reply), fd);
		if (ret)
			log_debug("control socket: cannot send a lent "
				  "descriptor: %s", strerror(-ret));
		close(fd);
		free(path);
		return;
	}
out_reply:
	write_all(job->fd, reply, strlen(reply));
	free(path);
}

static void lend_job_free(struct lend_job *job)
{
	free(job->peer.groups);
	free(job);
}

static void *lend_main(void *arg)
{
	struct lend_job *job = arg;
	struct ctl_server *s = job->server;
	int file_fd = job->file_fd;

	serve_lend(job);
	close(job->fd);
	lend_job_free(job);
	jobs_remove(s);
	/* Not a job any more: ctl_stop() need not wait for this close (see
	 * close_passed_fd()). */
	close(file_fd);
	return NULL;
}

/*
 * "open SIZE MTIME_SEC MTIME_NSEC" with the client's O_RDONLY descriptor
 * of a file on the mount (fs/preload/protocol.h): reply "ok SIZE" with a
 * read-only descriptor of the complete local copy, or "no REASON".  A
 * fetch of missing chunks can take long, so the request runs on a thread
 * of its own.
 */
static bool start_lend(struct ctl_server *s, const char *args,
		       struct ctl_request *req)
{
	struct lend_job *job = calloc(1, sizeof(*job));
	const char *msg = NULL;
	int ret;

	if (!job) {
		msg = "error: out of memory\n";
		goto out_reply;
	}
	if (parse_open_args(args, &job->req) < 0) {
		msg = "error: invalid open request: expected 'open SIZE "
		      "MTIME_SEC MTIME_NSEC' in decimal\n";
		goto out_reply;
	}
	if (req->passed_fd < 0) {
		msg = "error: open needs the file's descriptor, sent with "
		      "the request as SCM_RIGHTS\n";
		goto out_reply;
	}
	ret = peer_groups(req->fd, &job->peer);
	if (ret) {
		log_warn("control socket: SO_PEERGROUPS failed: %s",
			 strerror(-ret));
		msg = "error: cannot read the client's groups\n";
		goto out_reply;
	}
	job->server = s;
	job->fd = req->fd;
	job->file_fd = req->passed_fd;
	job->pid = req->peer.pid;
	job->peer.uid = req->peer.uid;
	job->peer.gid = req->peer.gid;
	job->peer.fs = s->info.fs;
	job->req.fetch_max = s->info.lend_fetch_max;
	job->req.may_read = peer_may_read;
	job->req.arg = &job->peer;
	ret = start_job(s, lend_main, job);
	if (ret == 0) {
		req->passed_fd = -1;
		return true;
	}
	log_err("control socket: cannot start an open thread: %s",
		strerror(-ret));
	msg = "error: cannot start the open: out of threads\n";

out_reply:
	if (job) {
		log_debug("control socket: rejected an open from uid %u: %s",
			  (unsigned)req->peer.uid, msg);
		lend_job_free(job);
	}
	write_all(req->fd, msg, strlen(msg));
	return false;
}

/* ---- path requests, without FUSE ---- */

/* One path request, served on its own thread. */
struct path_job {
	struct ctl_server *server;
	int fd;			/* the client; closed by the job */
	struct ucred peer;
	char *name, *args;
	struct path_job *prev, *next;	/* server->path_jobs */
};

static void path_job_add(struct ctl_server *s, struct path_job *job)
{
	pthread_mutex_lock(&s->jobs_lock);
	job->next = s->path_jobs;
	if (job->next)
		job->next->prev = job;
	s->path_jobs = job;
	pthread_mutex_unlock(&s->jobs_lock);
}

static void path_job_remove(struct ctl_server *s, struct path_job *job)
{
	pthread_mutex_lock(&s->jobs_lock);
	if (job->prev)
		job->prev->next = job->next;
	else
		s->path_jobs = job->next;
	if (job->next)
		job->next->prev = job->prev;
	pthread_mutex_unlock(&s->jobs_lock);
}

static void path_job_free(struct path_job *job)
{
	free(job->name);
	free(job->args);
	free(job);
}

static void *path_main(void *arg)
{
	struct path_job *job = arg;
	struct ctl_server *s = job->server;

	nomount_serve(s->info.nomount, job->name, job->args, job->fd,
		      &job->peer);
	path_job_remove(s, job);
	close(job->fd);
	path_job_free(job);
	jobs_remove(s);
	return NULL;
}

/*
 * A path request of fs/preload/protocol.h.  It runs on a thread of its
 * own, so that a path-open that fetches a file, or the handle of a file
 * open for writing, does not hold up other clients.
 */
static bool start_path(struct ctl_server *s, const char *args,
		       struct ctl_request *req)
{
	struct path_job *job = calloc(1, sizeof(*job));
	char msg[32];
	int ret = -ENOMEM;

	if (!job)
		goto out_reply;
	job->server = s;
	job->fd = req->fd;
	job->peer = req->peer;
	job->name = strdup(req->name);
	job->args = strdup(args);
	if (!job->name || !job->args)
		goto out_reply;
	path_job_add(s, job);
	ret = start_job(s, path_main, job);
	if (ret == 0)
		return true;
	path_job_remove(s, job);
	log_err("control socket: cannot start a thread for %s: %s",
		req->name, strerror(-ret));

out_reply:
	if (job)
		path_job_free(job);
	snprintf(msg, sizeof(msg), "err %d\n", -ret);
	write_all(req->fd, msg, strlen(msg));
	return false;
}

static const struct ctl_command path_command = {
	.name = "path-*",
	.usage = "path-stat PATH, path-list PATH, ... (fs/preload/protocol.h)",
	.start = start_path, .path = true,
};

static const struct ctl_command commands[] = {
	{ .name = "stats", .usage = "stats [json]", .run = cmd_stats },
	{ .name = "flush", .usage = "flush [PATH]", .start = start_flush },
	{ .name = "set", .usage = "set OPTION=VALUE[,OPTION=VALUE...]",
	  .run = cmd_set },
	{ .name = "metrics", .usage = "metrics", .run = cmd_metrics },
	{ .name = "forget", .usage = "forget COUNT, then COUNT paths",
	  .start = start_forget },
	{ .name = "warm", .usage = "warm COUNT, then COUNT paths",
	  .start = start_warm },
	{ .name = "usage", .usage = "usage text|json [PATH]",
	  .run = cmd_usage },
	{ .name = "uploads", .usage = "uploads [json]", .run = cmd_uploads },
	{ .name = NEARFS_LEND_REQUEST,
	  .usage = NEARFS_LEND_REQUEST " SIZE MTIME_SEC MTIME_NSEC (with a "
		   "descriptor)",
	  .start = start_lend, .any_user = true, .takes_fd = true },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void write_unknown(const struct ctl_server *s, const char *name,
			  FILE *out)
{
	fprintf(out, "error: unknown command '%s'; known commands:", name);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "%s %s", i ? "," : "", commands[i].usage);
	if (s->info.nomount)
		fprintf(out, ", %s", path_command.usage);
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
		write_unknown(s, name, out);
	else
		cmd->run(s, args, out);
	if (fclose(out) == 0)
		write_all(fd, reply, len);
	free(reply);
}

static void *close_main(void *arg)
{
	close((int)(intptr_t)arg);
	return NULL;
}

/*
 * Close a descriptor that a client sent, on a detached thread that
 * nothing waits for.  close(2) of a file on a FUSE file system waits for
 * its server to reply to FLUSH, and the client may have sent one whose
 * server never replies.  Closing a file of this mount sends requests to
 * this daemon, which its FUSE threads serve.
 */
static void close_passed_fd(int fd)
{
	pthread_attr_t attr;
	pthread_t thread;
	int ret;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&thread, &attr, close_main, (void *)(intptr_t)fd);
	pthread_attr_destroy(&attr);
	if (ret)
		close(fd);
}

static bool is_owner(const struct ucred *peer)
{
	return peer->uid == 0 || peer->uid == getuid();
}

/* The command of name, or NULL.  Path requests are known only to a
 * server without FUSE. */
static const struct ctl_command *find_command(const struct ctl_server *s,
					      const char *name)
{
	for (size_t i = 0; i < NCOMMANDS && *name; i++)
		if (strcmp(name, commands[i].name) == 0)
			return &commands[i];
	if (s->info.nomount && nomount_serves(name))
		return &path_command;
	return NULL;
}

/* Reject a request that the client may not send, in the reply format of
 * its command. */
static void reject(const struct ctl_command *cmd, int fd, int err,
		   const char *message)
{
	char line[128];

	if (cmd && cmd->path)
		snprintf(line, sizeof(line), "err %d\n", err);
	else
		snprintf(line, sizeof(line), "error: %s\n", message);
	write_all(fd, line, strlen(line));
}

/* Split "name args" at the first space and run the matching command.
 * Returns true when the command took over req->fd. */
static bool dispatch(struct ctl_server *s, char *line,
		     struct ctl_request *req)
{
	const struct ctl_command *cmd;
	size_t len = strlen(line);
	char *args = strchr(line, ' ');
	char message[64];

	if (args) {
		*args++ = '\0';
		args += strspn(args, " ");
	} else {
		args = line + len;
	}
	cmd = find_command(s, line);
	req->name = line;
	if (req->passed_fd >= 0 && !(cmd && cmd->takes_fd)) {
		close_passed_fd(req->passed_fd);
		req->passed_fd = -1;
	}
	if (len > REQUEST_MAX - 2 && !(cmd && cmd->path)) {
		snprintf(message, sizeof(message), "request line longer than "
			 "%d bytes", REQUEST_MAX - 2);
		reject(cmd, req->fd, E2BIG, message);
		return false;
	}
	if (!(cmd && cmd->any_user) && !is_owner(&req->peer)) {
		log_warn("control socket: rejected a client with uid %u (pid "
			 "%d); only uid %u and root are served",
			 (unsigned)req->peer.uid, (int)req->peer.pid,
			 (unsigned)getuid());
		reject(cmd, req->fd, EACCES, "permission denied");
		return false;
	}
	if (cmd && cmd->start)
		return cmd->start(s, args, req);
	reply_buffered(s, cmd, line, args, req->fd);
	return false;
}

/* ---- connections ---- */

/*
 * Read one line (without its newline) into buf, and the first descriptor
 * sent with it (SCM_RIGHTS) into *passed_fd, or -1.  -EMSGSIZE when the
 * line does not fit, -ETIMEDOUT or another -errno when the read fails;
 * the caller closes *passed_fd in every case.
 */
static int read_request(int fd, char *buf, size_t size, int *passed_fd)
{
	size_t len = 0;

	*passed_fd = -1;
	while (len + 1 < size) {
		ssize_t n = fdpass_recv(fd, buf + len, size - 1 - len,
					passed_fd, close_passed_fd);
		char *nl;

		if (n < 0)
			return n == -EAGAIN ? -ETIMEDOUT : (int)n;
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

/* Send a reply; a client that went away gets nothing. */
static void write_all(int fd, const char *buf, size_t len)
{
	fdpass_send_all(fd, buf, len);
}

/* Read and serve the request of one connection.  Returns true when a
 * command took over fd, else the caller closes it. */
static bool serve_request(struct ctl_server *s, struct ctl_request *req)
{
	char line[NEARFS_PATH_LINE_MAX];
	int ret;

	ret = read_request(req->fd, line, sizeof(line), &req->passed_fd);
	if (ret == -EMSGSIZE) {
		char msg[80];
		int n;

		if (s->info.nomount && strncmp(line, "path-", 5) == 0)
			n = snprintf(msg, sizeof(msg), "err %d\n",
				     ENAMETOOLONG);
		else
			n = snprintf(msg, sizeof(msg), "error: request line "
				     "longer than %d bytes\n",
				     REQUEST_MAX - 2);
		write_all(req->fd, msg, (size_t)n);
		return false;
	}
	if (ret) {
		log_debug("control socket: reading a request failed: %s",
			  strerror(-ret));
		return false;
	}
	log_debug("control socket: request '%s' from uid %u", line,
		  (unsigned)req->peer.uid);
	return dispatch(s, line, req);
}

/* Serve one connection.  Returns true when a command took over fd, else
 * the caller closes it. */
static bool serve_client(struct ctl_server *s, int fd)
{
	struct timeval timeout = { .tv_sec = CLIENT_TIMEOUT_S };
	struct ctl_request req = { .fd = fd, .passed_fd = -1 };
	socklen_t len = sizeof(req.peer);
	bool taken;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &req.peer, &len) != 0) {
		static const char failed[] = "error: cannot read the "
					     "client's credentials\n";

		log_warn("control socket: SO_PEERCRED failed: %s",
			 strerror(errno));
		write_all(fd, failed, sizeof(failed) - 1);
		return false;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
	taken = serve_request(s, &req);
	if (req.passed_fd >= 0)
		close_passed_fd(req.passed_fd);
	return taken;
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

/*
 * Create dir as a 0700 folder, or 0711 when shared is set, so that other
 * users can reach a socket in it.  An existing folder must belong to us
 * and give other users no read or write access.
 */
static int make_private_dir(const char *dir, bool shared, char *err,
			    size_t errlen)
{
	mode_t want = shared ? 0711 : 0700;
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
	    (st.st_mode & 066) != 0) {
		snprintf(err, errlen, "the control socket folder %s must be "
			 "a folder owned by uid %u with mode 0700 or 0711: fix "
			 "or remove it", dir, (unsigned)getuid());
		return -EPERM;
	}
	if (shared && (st.st_mode & 0777) != want && chmod(dir, want) != 0) {
		int saved = errno;

		snprintf(err, errlen, "cannot make the control socket folder "
			 "%s reachable for other users (mode 0711): %s", dir,
			 strerror(saved));
		return -saved;
	}
	return 0;
}

/*
 * Choose, and create, the folder of the socket.  With allow_other a
 * non-root daemon uses /tmp/nearfs-UID, because other users cannot enter
 * XDG_RUNTIME_DIR (mode 0700).
 */
int ctl_socket_dir(bool shared, char *dir, size_t size, char *err,
		   size_t errlen)
{
	const char *runtime = getenv("XDG_RUNTIME_DIR");
	uid_t uid = getuid();
	int n;

	if (uid == 0)
		n = snprintf(dir, size, "/run/nearfs");
	else if (runtime && runtime[0] == '/' && !shared)
		n = snprintf(dir, size, "%s/nearfs", runtime);
	else
		n = snprintf(dir, size, "/tmp/nearfs-%u", (unsigned)uid);
	if (n < 0 || (size_t)n >= size) {
		snprintf(err, errlen, "the control socket folder under "
			 "XDG_RUNTIME_DIR=%s is too long", runtime);
		return -ENAMETOOLONG;
	}
	return make_private_dir(dir, shared, err, errlen);
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
	    chmod(s->path, s->info.allow_other ? 0666 : 0600) != 0 ||
	    listen(s->listen_fd, 16) != 0) {
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

	ret = ctl_socket_dir(s->info.allow_other, dir, sizeof(dir), err,
			     errlen);
	if (ret)
		return ret;
	roots_remove_stale_sockets(dir);
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

/*
 * Store the canonical path of the mountpoint, as readlink(2) of a
 * descriptor on the mount shows it.  Only the parent goes through
 * realpath(3): a stat(2) of the mount root itself would wait for the FUSE
 * loop, which has not started yet.
 */
static int resolve_mount_root(struct ctl_server *s, char *err,
			      size_t errlen)
{
	const char *mnt = s->info.mountpoint;
	const char *name = strrchr(mnt, '/');
	char *parent, *real;
	int ret = 0;

	/* A root served without FUSE need not exist, and lends nothing. */
	if (s->info.nomount || !name || name[1] == '\0') {
		/* "/", or a path without a folder: kept as it is. */
		s->mount_root = strdup(mnt);
		goto out_check;
	}
	parent = strndup(mnt, name == mnt ? 1 : (size_t)(name - mnt));
	if (!parent)
		goto out_check;
	real = realpath(parent, NULL);
	if (!real) {
		ret = -errno;
		snprintf(err, errlen, "cannot resolve the folder of the "
			 "mountpoint %s: %s", mnt, strerror(-ret));
	} else if (asprintf(&s->mount_root, "%s%s",
			    strcmp(real, "/") == 0 ? "" : real, name) < 0) {
		s->mount_root = NULL;
	}
	free(real);
	free(parent);
	if (ret)
		return ret;
out_check:
	if (!s->mount_root) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
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
	ret = resolve_mount_root(s, err, errlen);
	if (ret)
		goto out_free;
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
	free(s->mount_root);
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
	/* A handle reads its connection until the client ends it: end it
	 * here, which commits the file as a close does. */
	for (struct path_job *job = s->path_jobs; job; job = job->next)
		shutdown(job->fd, SHUT_RD);
	if (s->jobs)
		log_info("control socket: waiting for %u request%s in "
			 "progress", s->jobs, s->jobs == 1 ? "" : "s");
	while (s->jobs)
		pthread_cond_wait(&s->jobs_idle, &s->jobs_lock);
	pthread_mutex_unlock(&s->jobs_lock);
	pthread_cond_destroy(&s->jobs_idle);
	pthread_mutex_destroy(&s->jobs_lock);
	close(s->stop_pipe[0]);
	close(s->stop_pipe[1]);
	close(s->listen_fd);
	unlink(s->path);
	free(s->mount_root);
	free(s);
}
