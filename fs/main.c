/*
 * main.c - the nearfs daemon: parse options, open the cache, serve FUSE,
 * or with -o nomount serve the root over the control socket only.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "ctl.h"
#include "fuse_ops.h"
#include "kernel_ra.h"
#include "log.h"
#include "metrics.h"
#include "nomount.h"
#include "notify.h"
#include "options.h"
#include "roots.h"

/* Exit statuses. */
enum {
	EXIT_OK = 0,
	/* Invalid options; also a FUSE loop that failed after mounting. */
	EXIT_USAGE = 1,
	/* The origin could not be created or failed its check. */
	EXIT_ORIGIN = 2,
	EXIT_CACHE = 3,		/* cache_open() failed */
	/* The FUSE session or mount failed, or without FUSE, the root is
	 * served by another daemon or cannot be published. */
	EXIT_MOUNT = 4,
	/* Unmounted, but write-back files could not be uploaded: they stay
	 * in the journal and are uploaded after the next mount. */
	EXIT_JOURNAL = 5,
};

/* Milliseconds between two progress messages of the upload at exit. */
#define EXIT_PROGRESS_MS 2000

/* Idle worker threads the FUSE loop keeps. */
#define IDLE_THREADS 10

/* The kernel's readahead of a mount when readahead is on: a chunk of the
 * default size, asked for in FUSE reads of up to 1 MiB. */
#define KERNEL_READAHEAD_KIB 4096

/* Everything the daemon builds, torn down in reverse order. */
struct daemon {
	const struct nearfs_options *opts;
	struct cache *cache;
	struct nearfs_fs *fs;
	struct metrics_server *metrics;	/* -o metrics=, or NULL */
	struct fuse_session *se;
	bool signals_set;
	bool mounted;
	int stop_signal;	/* the signal that ended the FUSE loop, or
				 * without FUSE the wait; else 0 */
	struct ctl_server *ctl;
	struct ctl_info ctl_info;
	struct nomount nomount;	/* the path requests, with -o nomount */
	bool published;		/* the root's .nomount file exists */
	int ready_fd;		/* pipe to the waiting parent, or -1 */
};

/*
 * Background mode forks before anything else is built: the engine may run
 * threads, which fork() would not carry over, and the parent must be able
 * to exit with the status of a failed start.  The parent waits for one
 * status byte on a pipe and exits with it.
 */
static int daemon_fork(int *ready_fd)
{
	int fds[2];
	unsigned char status;
	int wstatus;
	pid_t pid;
	ssize_t n;

	if (pipe2(fds, O_CLOEXEC) != 0) {
		fprintf(stderr, "nearfs: cannot create a pipe: %s\n",
			strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "nearfs: cannot fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		setsid();
		*ready_fd = fds[1];
		/* Log to syslog from now on.  Until daemon_ready(), warnings
		 * and errors also go to the terminal of the parent. */
		log_use_syslog(true);
		log_copy_to_stderr(LOG_WARNING);
		return 0;
	}

	close(fds[1]);
	do
		n = read(fds[0], &status, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1)
		_exit(status);
	/* The child ended without sending a status. */
	if (waitpid(pid, &wstatus, 0) == pid && WIFEXITED(wstatus) &&
	    WEXITSTATUS(wstatus) != EXIT_OK)
		_exit(WEXITSTATUS(wstatus));
	fprintf(stderr, "nearfs: the daemon process ended during start\n");
	_exit(EXIT_MOUNT);
}

/* Tell the parent how the start went and, on success, detach from the
 * terminal: logs go to syslog only, stdio to /dev/null. */
static void daemon_ready(struct daemon *d, unsigned char status)
{
	int null_fd;

	if (d->ready_fd < 0)
		return;
	if (status == EXIT_OK) {
		log_copy_to_stderr(-1);
		if (chdir("/") != 0)
			log_warn("cannot change to /: %s", strerror(errno));
		null_fd = open("/dev/null", O_RDWR);
		if (null_fd >= 0) {
			dup2(null_fd, STDIN_FILENO);
			dup2(null_fd, STDOUT_FILENO);
			dup2(null_fd, STDERR_FILENO);
			if (null_fd > STDERR_FILENO)
				close(null_fd);
		}
	}
	while (write(d->ready_fd, &status, 1) < 0 && errno == EINTR)
		;
	close(d->ready_fd);
	d->ready_fd = -1;
}

/* Route the messages of libfuse through log.h, so that they reach syslog
 * in the background.  libfuse's levels are the syslog levels. */
static void fuse_log_to_log(enum fuse_log_level level, const char *fmt,
			    va_list ap)
{
	char line[1024];
	size_t len;

	if ((int)level > log_max_level)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	len = strlen(line);
	while (len > 0 && line[len - 1] == '\n')
		line[--len] = '\0';
	log_write((int)level, "%s", line);
}

static int origin_create(const struct nearfs_options *opts,
			 struct origin **origin)
{
	char err[512] = "";
	int ret;

	if (opts->is_s3)
		ret = origin_s3_new(&opts->s3, origin, err, sizeof(err));
	else
		ret = origin_dir_new(opts->dir, origin, err, sizeof(err));
	if (ret) {
		log_err("%s", err[0] ? err : strerror(-ret));
		return EXIT_ORIGIN;
	}

	ret = (*origin)->ops->check(*origin, err, sizeof(err));
	if (ret) {
		log_err("%s", err[0] ? err : strerror(-ret));
		origin_free(*origin);
		*origin = NULL;
		return EXIT_ORIGIN;
	}
	return EXIT_OK;
}

static int cache_start(struct daemon *d)
{
	struct origin *origin;
	char err[512] = "";
	int status, ret;

	status = origin_create(d->opts, &origin);
	if (status)
		return status;
	/* cache_open() owns origin once it succeeded. */
	ret = cache_open(&d->opts->cache, origin, &d->cache, err,
			 sizeof(err));
	if (ret) {
		log_err("%s", err[0] ? err : strerror(-ret));
		origin_free(origin);
		return EXIT_CACHE;
	}
	ret = nearfs_fs_new(d->cache, &d->fs);
	if (ret) {
		log_err("cannot set up the filesystem: %s", strerror(-ret));
		return EXIT_CACHE;
	}
	nearfs_fs_set_owner(d->fs, d->opts->owner_uid, d->opts->owner_gid,
			    d->opts->umask);
	nearfs_fs_set_passthrough(d->fs, d->opts->passthrough);
	/* Without FUSE there is no kernel page cache to drop. */
	if (d->opts->nomount)
		cache_set_invalidate(d->cache, NULL, NULL);
	return EXIT_OK;
}

/* Whether the passed-through FUSE options set name= (e.g. "fsname="). */
static bool has_fuse_option(const struct nearfs_options *opts,
			    const char *name)
{
	for (int i = 0; i < opts->fuse_argc; i++) {
		const char *p = opts->fuse_argv[i];

		while ((p = strstr(p, name))) {
			if (p == opts->fuse_argv[i] || p[-1] == ',')
				return true;
			p++;
		}
	}
	return false;
}

/*
 * The FUSE arguments: the ones options passed through, "ro" for a
 * read-only cache so that the kernel rejects writes early, and unless
 * given, the origin as fsname and "nearfs" as subtype, so that df and
 * /proc/mounts show "s3://bucket on /mnt type fuse.nearfs".
 */
static int fuse_args_build(const struct nearfs_options *opts,
			   struct fuse_args *args)
{
	char *name = NULL;
	int ret = -1;

	for (int i = 0; i < opts->fuse_argc; i++)
		if (fuse_opt_add_arg(args, opts->fuse_argv[i]) != 0)
			return -1;
	if (args->argc == 0 && fuse_opt_add_arg(args, "nearfs") != 0)
		return -1;
	if (opts->cache.read_only && fuse_opt_add_arg(args, "-oro") != 0)
		return -1;
	if (!has_fuse_option(opts, "subtype=") &&
	    fuse_opt_add_arg(args, "-osubtype=nearfs") != 0)
		return -1;
	/* A comma would split the option; such an origin keeps the
	 * default name. */
	if (has_fuse_option(opts, "fsname=") || strpbrk(opts->origin, ",\\"))
		return 0;
	if (asprintf(&name, "-ofsname=%s", opts->origin) >= 0)
		ret = fuse_opt_add_arg(args, name) == 0 ? 0 : -1;
	free(name);
	return ret;
}

static int session_mount(struct daemon *d)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	int mount_id;
	int status = EXIT_MOUNT;

	if (fuse_args_build(d->opts, &args) != 0) {
		log_err("cannot build the FUSE arguments: out of memory");
		goto out_free;
	}
	d->se = fuse_session_new(&args, &nearfs_fuse_ops,
				 sizeof(nearfs_fuse_ops), d->fs);
	if (!d->se) {
		/* libfuse printed the reason (an unknown option, ...). */
		log_err("cannot create the FUSE session");
		goto out_free;
	}
	if (fuse_set_signal_handlers(d->se) != 0) {
		log_err("cannot install the signal handlers");
		goto out_free;
	}
	d->signals_set = true;
	if (fuse_session_mount(d->se, d->opts->mountpoint) != 0) {
		log_err("cannot mount on %s (see the FUSE message above)",
			d->opts->mountpoint);
		goto out_free;
	}
	d->mounted = true;
	if (mount_ids(d->opts->mountpoint, &mount_id, NULL, NULL) == 0)
		nearfs_fs_set_mount_id(d->fs, mount_id);
	status = EXIT_OK;

out_free:
	fuse_opt_free_args(&args);
	return status;
}

/* Start the control socket, with the path requests when nomount is set. */
static int control_start(struct daemon *d)
{
	char err[512] = "";
	int ret;

	d->ctl_info.cache = d->cache;
	d->ctl_info.origin = cache_origin(d->cache)->name;
	d->ctl_info.mountpoint = d->opts->mountpoint;
	d->ctl_info.fs = d->fs;
	d->ctl_info.lend_fetch_max = d->opts->preload_fetch;
	d->ctl_info.allow_other = d->opts->allow_other;
	if (d->opts->nomount) {
		d->nomount.cache = d->cache;
		d->nomount.fs = d->fs;
		d->ctl_info.nomount = &d->nomount;
	}
	ret = ctl_start(&d->ctl_info, &d->ctl, err, sizeof(err));
	if (ret) {
		log_err("%s", err);
		return EXIT_MOUNT;
	}
	return EXIT_OK;
}

static int services_start(struct daemon *d)
{
	int ret;

	ret = nearfs_fs_start(d->fs, d->se);
	if (ret) {
		log_err("cannot start the invalidation thread: %s",
			strerror(-ret));
		return EXIT_MOUNT;
	}
	if (control_start(d) != EXIT_OK)
		return EXIT_MOUNT;
	ret = nearfs_fs_set_ctl_path(d->fs, ctl_socket_path(d->ctl));
	if (ret) {
		log_err("cannot store the control socket path: %s",
			strerror(-ret));
		return EXIT_MOUNT;
	}
	return EXIT_OK;
}

/* Start the HTTP metrics endpoint of -o metrics=, after the control
 * socket, whose counters it serves. */
static int metrics_begin(struct daemon *d)
{
	char err[512] = "";

	if (!d->opts->metrics_address)
		return EXIT_OK;
	if (metrics_start(&d->ctl_info, d->opts->metrics_address,
			  d->opts->metrics_port, &d->metrics, err,
			  sizeof(err)) != 0) {
		log_err("%s", err);
		return EXIT_MOUNT;
	}
	return EXIT_OK;
}

static int session_run(struct daemon *d)
{
	struct fuse_loop_config *cfg;
	int ret;

	cfg = fuse_loop_cfg_create();
	if (!cfg) {
		log_err("cannot create the FUSE loop configuration");
		return EXIT_MOUNT;
	}
	fuse_loop_cfg_set_clone_fd(cfg, 1);
	fuse_loop_cfg_set_idle_threads(cfg, IDLE_THREADS);
	ret = fuse_session_loop_mt(d->se, cfg);
	fuse_loop_cfg_destroy(cfg);
	/* A positive value is the signal that ended the loop. */
	if (ret > 0)
		d->stop_signal = ret;
	if (ret < 0) {
		log_err("the FUSE loop of %s failed: %s", d->opts->mountpoint,
			strerror(-ret));
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Format bytes in powers of 1024: "512 B", "34.0 MiB". */
static void format_bytes(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = {
		"KiB", "MiB", "GiB", "TiB", "PiB", "EiB",
	};
	double value = (double)bytes / 1024;
	size_t i = 0;

	if (bytes < 1024) {
		snprintf(buf, size, "%" PRIu64 " B", bytes);
		return;
	}
	while (value >= 1024 && i + 1 < sizeof(units) / sizeof(units[0])) {
		value /= 1024;
		i++;
	}
	snprintf(buf, size, "%.1f %s", value, units[i]);
}

/* Progress of the upload at exit, logged every EXIT_PROGRESS_MS. */
struct exit_flush {
	uint64_t logged_ms;	/* 0 before the first message */
	uint64_t files_left;	/* from the last report */
};

static void exit_flush_progress(void *arg, uint64_t files_left,
				uint64_t bytes_left, uint64_t bytes_total)
{
	struct exit_flush *ef = arg;
	uint64_t now = now_ms();
	char left[24];

	ef->files_left = files_left;
	if (files_left == 0 ||
	    (ef->logged_ms && now - ef->logged_ms < EXIT_PROGRESS_MS))
		return;
	ef->logged_ms = now;
	format_bytes(bytes_left, left, sizeof(left));
	log_info("uploading %" PRIu64 " file%s (%s) before exit", files_left,
		 files_left == 1 ? "" : "s", left);
	service_notify("STATUS=uploading %" PRIu64 " file%s (%s) before exit",
		       files_left, files_left == 1 ? "" : "s", left);
}

/*
 * Upload what waits in the write-back queue before the engine closes.
 * The mount is gone by now and the signal handlers are removed, so a
 * second SIGINT or SIGTERM ends the daemon here and the files stay in the
 * journal.  Returns EXIT_OK, or EXIT_JOURNAL when some files remain.
 */
static int upload_before_exit(struct daemon *d)
{
	struct exit_flush ef = { 0 };
	struct cache_stats st;
	int ret;

	if (d->opts->cache.write_mode != WRITE_BACK)
		return EXIT_OK;
	/* libfuse set SIGPIPE back to its default action; an upload must
	 * not end the daemon that way. */
	signal(SIGPIPE, SIG_IGN);
	ret = cache_flush(d->cache, "", exit_flush_progress, &ef);
	if (ret == 0) {
		log_info("all data uploaded");
		return EXIT_OK;
	}
	memset(&st, 0, sizeof(st));
	cache_get_stats(d->cache, &st);
	log_err("%" PRIu64 " file%s could not be uploaded (%s): they stay in "
		"the write-back journal at %s and are uploaded after the next "
		"mount", st.uploads_pending, st.uploads_pending == 1 ? "" : "s",
		strerror(-ret), cache_path(d->cache));
	return EXIT_JOURNAL;
}

/* Unmount and end the session, so that the upload at exit runs with the
 * mount already gone. */
static void session_teardown(struct daemon *d)
{
	if (d->fs)
		nearfs_fs_stop(d->fs);
	if (d->mounted)
		fuse_session_unmount(d->se);
	if (d->signals_set)
		fuse_remove_signal_handlers(d->se);
	if (d->se)
		fuse_session_destroy(d->se);
	d->se = NULL;
	d->mounted = false;
	d->signals_set = false;
}

static void daemon_teardown(struct daemon *d)
{
	session_teardown(d);
	metrics_stop(d->metrics);
	ctl_stop(d->ctl);
	if (d->cache)
		cache_close(d->cache);
	nearfs_fs_free(d->fs);
	/* The counts of rate-limited lines come before the stop line. */
	log_flush_suppressed();
}

static void log_write_mode(const struct cache_config *cfg)
{
	char max_dirty[24];

	if (cfg->write_mode != WRITE_BACK)
		return;
	format_bytes(cfg->max_dirty, max_dirty, sizeof(max_dirty));
	log_info("write-back: max_dirty %s, writeback_delay %" PRIu64 " ms, "
		 "fsync waits for the %s", max_dirty, cfg->writeback_delay_ms,
		 cfg->fsync_local ? "local journal" : "origin");
}

/* The one info line of a stop, with its cause. */
static void log_stopped(const struct daemon *d, int status)
{
	const char *mnt = d->opts->mountpoint;
	const char *left = status == EXIT_JOURNAL ?
			   ", files left in the write-back journal" : "";
	const char *sig = d->stop_signal ? sigabbrev_np(d->stop_signal) : NULL;
	const char *state = d->opts->nomount ? "is no longer served" :
					       "is unmounted";

	if (sig)
		log_info("stopped on SIG%s: %s %s%s", sig, mnt, state, left);
	else if (d->opts->nomount)
		log_info("stopped: %s %s%s", mnt, state, left);
	else
		log_info("stopped: %s was unmounted%s", mnt, left);
}

/* ---- without FUSE ---- */

/* The signals that stop a daemon without FUSE: those that end a FUSE
 * session through libfuse's handlers. */
static void stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

/* Fail early, before the cache opens, when another daemon serves the
 * root; roots_publish() checks again under a lock. */
static int root_check(const struct nearfs_options *opts)
{
	char dir[4096], err[512] = "";
	pid_t other;

	if (ctl_socket_dir(false, dir, sizeof(dir), err, sizeof(err)) != 0) {
		log_err("%s", err);
		return EXIT_MOUNT;
	}
	other = roots_find(dir, opts->mountpoint);
	if (!other)
		return EXIT_OK;
	log_err("%s is served already by nearfs pid %ld: stop that daemon "
		"first (kill %ld)", opts->mountpoint, (long)other,
		(long)other);
	return EXIT_MOUNT;
}

/* Start the control socket and publish the root beside it. */
static int root_publish(struct daemon *d)
{
	char err[512] = "";
	pid_t other;

	if (control_start(d) != EXIT_OK)
		return EXIT_MOUNT;
	if (roots_publish(ctl_socket_path(d->ctl), d->opts->mountpoint,
			  &other, err, sizeof(err)) != 0) {
		log_err("%s", err);
		return EXIT_MOUNT;
	}
	d->published = true;
	return EXIT_OK;
}

static void root_unpublish(struct daemon *d)
{
	if (!d->published)
		return;
	roots_unpublish(ctl_socket_path(d->ctl));
	d->published = false;
}

/* Wait for one of the signals of set and return it. */
static int wait_for_stop(const sigset_t *set)
{
	siginfo_t info;
	int sig;

	do
		sig = sigwaitinfo(set, &info);
	while (sig < 0 && errno == EINTR);
	if (sig > 0)
		log_debug("SIG%s from pid %ld", sigabbrev_np(sig),
			  (long)info.si_pid);
	return sig > 0 ? sig : 0;
}

/*
 * Serve the root over the control socket until SIGTERM, SIGINT or SIGHUP,
 * then stop in the order of an unmount: no new clients, the handles of
 * files open for writing committed, the write-back queue uploaded.  The
 * signals are blocked before any thread starts, so that only the wait
 * here receives them, and unblocked once it returns, so that a second one
 * ends the daemon at once with the files left in the journal.
 */
static int nomount_run(struct daemon *d)
{
	const struct nearfs_options *opts = d->opts;
	sigset_t stop;
	int status;

	stop_signals(&stop);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	status = root_check(opts);
	if (status == EXIT_OK)
		status = cache_start(d);
	if (status == EXIT_OK)
		status = root_publish(d);
	if (status == EXIT_OK)
		status = metrics_begin(d);
	daemon_ready(d, (unsigned char)status);
	if (status != EXIT_OK)
		goto out_teardown;

	log_info("serving %s at %s without FUSE (cache %s, %s, socket %s, "
		 "pid %ld)", cache_origin(d->cache)->name, opts->mountpoint,
		 cache_path(d->cache), write_mode_name(opts->cache.write_mode),
		 ctl_socket_path(d->ctl), (long)getpid());
	service_notify("READY=1\nSTATUS=serving %s at %s without FUSE",
		       cache_origin(d->cache)->name, opts->mountpoint);
	log_write_mode(&opts->cache);
	d->stop_signal = wait_for_stop(&stop);
	cache_mark_stopping(d->cache);
	service_notify("STOPPING=1\nSTATUS=no longer serving %s",
		       opts->mountpoint);
	log_debug("stopping: closing the files open for writing and the "
		  "control socket of %s", opts->mountpoint);
	root_unpublish(d);
	pthread_sigmask(SIG_UNBLOCK, &stop, NULL);
	ctl_stop(d->ctl);
	d->ctl = NULL;
	status = upload_before_exit(d);

out_teardown:
	root_unpublish(d);
	daemon_teardown(d);
	if (status == EXIT_OK || status == EXIT_JOURNAL)
		log_stopped(d, status);
	return status;
}

static int daemon_run(const struct nearfs_options *opts)
{
	struct daemon d = { .opts = opts, .ready_fd = -1 };
	int status;

	if (!opts->foreground && daemon_fork(&d.ready_fd) != 0)
		return EXIT_MOUNT;
	if (opts->nomount)
		return nomount_run(&d);
	status = cache_start(&d);
	if (status == EXIT_OK)
		status = session_mount(&d);
	if (status == EXIT_OK)
		status = services_start(&d);
	if (status == EXIT_OK)
		status = metrics_begin(&d);
	if (status != EXIT_OK) {
		/* Unmounted before the parent exits, so that no one finds
		 * a mount that nothing serves. */
		daemon_teardown(&d);
		daemon_ready(&d, (unsigned char)status);
		return status;
	}
	daemon_ready(&d, EXIT_OK);

	log_info("mounted %s on %s (cache %s, %s, pid %ld)",
		 cache_origin(d.cache)->name, opts->mountpoint,
		 cache_path(d.cache), write_mode_name(opts->cache.write_mode),
		 (long)getpid());
	service_notify("READY=1\nSTATUS=mounted %s on %s",
		       cache_origin(d.cache)->name, opts->mountpoint);
	log_write_mode(&opts->cache);
	if (opts->cache.readahead)
		kernel_readahead_raise_later(opts->mountpoint,
					     KERNEL_READAHEAD_KIB);
	status = session_run(&d);
	cache_mark_stopping(d.cache);
	service_notify("STOPPING=1\nSTATUS=unmounting %s", opts->mountpoint);
	log_debug("unmounting %s", opts->mountpoint);
	session_teardown(&d);
	if (upload_before_exit(&d) == EXIT_JOURNAL && status == EXIT_OK)
		status = EXIT_JOURNAL;
	daemon_teardown(&d);
	if (status == EXIT_OK || status == EXIT_JOURNAL)
		log_stopped(&d, status);
	return status;
}

int main(int argc, char **argv)
{
	struct nearfs_options opts;
	char err[512] = "";
	int status;

	memset(&opts, 0, sizeof(opts));
	if (options_parse(argc, argv, &opts, err, sizeof(err)) != 0) {
		fprintf(stderr, "nearfs: %s\n", err);
		options_free(&opts);
		return EXIT_USAGE;
	}
	if (opts.show_help) {
		options_print_help(argv[0]);
		status = EXIT_OK;
	} else if (opts.show_version) {
		printf("nearfs %s (libfuse %s)\n", NEARFS_VERSION,
		       fuse_pkgversion());
		status = EXIT_OK;
	} else {
		log_max_level = opts.log_level;
		fuse_set_log_func(fuse_log_to_log);
		status = daemon_run(&opts);
	}
	options_free(&opts);
	return status;
}
