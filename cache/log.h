/*
 * log.h - one logging function for the daemon and the engine.
 *
 * Messages go to stderr in the foreground and to syslog (facility daemon,
 * ident "nearfs") in the background.  A background daemon that is still
 * starting also copies its warnings and errors to stderr.  The level is
 * checked before the message is formatted.
 */
#ifndef NEARFS_LOG_H
#define NEARFS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

/* LOG_ERR .. LOG_DEBUG.  Atomic, because `nearfs-ctl set log_level=`
 * changes it while other threads log. */
extern _Atomic int log_max_level;

/* Send later messages to syslog (true) or stderr (false). */
void log_use_syslog(bool on);

/*
 * While syslog is in use, also write messages up to max_level (LOG_ERR ..
 * LOG_DEBUG) to stderr; -1 stops the copies.  A daemon that is still
 * starting uses this to show its errors on the terminal as well.
 */
void log_copy_to_stderr(int max_level);

/* Parse "error", "warn", "info" or "debug"; -1 when invalid. */
int log_level_parse(const char *name);

/* The name of a level as log_level_parse() takes it: "warn" for
 * LOG_WARNING. */
const char *log_level_name(int level);

/* Copy in into out, of size bytes, with each control character written
 * as \xNN, so that a name with a newline or an escape sequence cannot
 * split a line or drive the terminal.  The copy is cut to fit. */
void log_escape(const char *in, char *out, size_t size);

void log_write(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define nf_log(level, ...)					\
	do {							\
		if ((level) <= log_max_level)			\
			log_write((level), __VA_ARGS__);	\
	} while (0)

/*
 * Rate limiting.  A call site of log_limited() writes its first message
 * and starts a window of LOG_LIMIT_WINDOW_MS on clock_now_ms().  Repeats
 * inside the window are counted, not written.  The first message after
 * the window is written with " (N similar messages suppressed)" appended
 * and starts the next window.  log_flush_suppressed() writes what is
 * still counted.  Messages above log_max_level are neither written nor
 * counted.
 */
#define LOG_LIMIT_WINDOW_MS 10000

/* The state of one rate-limited call site; zero-initialized. */
struct log_limit {
	bool started;
	uint64_t window_start_ms;
	uint64_t suppressed;	/* messages not written in this window */
	char *last;		/* the last of them, for the flush */
	int last_level;
	bool listed;		/* on the list of sites to flush */
	struct log_limit *next;
};

void log_write_limited(struct log_limit *limit, int level, const char *fmt,
		       ...) __attribute__((format(printf, 3, 4)));

/*
 * For each site with suppressed messages, write the last of them with
 * the count of the others, and start its window again.  The daemon calls
 * this before its stop line.
 */
void log_flush_suppressed(void);

/*
 * Send every line to fn instead of stderr and syslog, with its level
 * and without the "nearfs: LEVEL: " prefix; NULL restores the normal
 * output.  For tests.
 */
typedef void (*log_output_fn)(void *arg, int level, const char *line);
void log_set_output(log_output_fn fn, void *arg);

#define log_limited(level, ...)						\
	do {								\
		static struct log_limit nf_log_limit_;			\
		if ((level) <= log_max_level)				\
			log_write_limited(&nf_log_limit_, (level),	\
					  __VA_ARGS__);			\
	} while (0)

#define log_err(...)	nf_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...)	nf_log(LOG_WARNING, __VA_ARGS__)
#define log_info(...)	nf_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...)	nf_log(LOG_DEBUG, __VA_ARGS__)

#endif
