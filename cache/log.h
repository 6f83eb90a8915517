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
#include <syslog.h>

extern int log_max_level;	/* LOG_ERR .. LOG_DEBUG */

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

void log_write(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define nf_log(level, ...)					\
	do {							\
		if ((level) <= log_max_level)			\
			log_write((level), __VA_ARGS__);	\
	} while (0)

#define log_err(...)	nf_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...)	nf_log(LOG_WARNING, __VA_ARGS__)
#define log_info(...)	nf_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...)	nf_log(LOG_DEBUG, __VA_ARGS__)

#endif
