/* log.c - stderr or syslog output and rate limiting for log.h. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"

/* Bytes of one line, its NUL included.  Longer messages are cut. */
#define LINE_MAX_BYTES 2048

_Atomic int log_max_level = LOG_INFO;
static bool to_syslog;
/* While to_syslog is set, messages up to this level also go to stderr. */
static int stderr_max_level = -1;
static log_output_fn output_fn;
static void *output_arg;

/* Guards every struct log_limit and the list of sites to flush. */
static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_limit *limits;

void log_use_syslog(bool on)
{
	if (on && !to_syslog)
		openlog("nearfs", LOG_PID, LOG_DAEMON);
	to_syslog = on;
}

void log_copy_to_stderr(int max_level)
{
	stderr_max_level = max_level;
}

int log_level_parse(const char *name)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {
		{ "error", LOG_ERR }, { "warn", LOG_WARNING },
		{ "warning", LOG_WARNING }, { "info", LOG_INFO },
		{ "debug", LOG_DEBUG },
	};

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcasecmp(name, levels[i].name) == 0)
			return levels[i].level;
	return -1;
}

void log_set_output(log_output_fn fn, void *arg)
{
	output_fn = fn;
	output_arg = arg;
}

void log_escape(const char *in, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		bool control = *p < 0x20 || *p == 0x7f;

		if (n + (control ? 4 : 1) >= size)
			break;
		if (!control) {
			out[n++] = (char)*p;
			continue;
		}
		out[n++] = '\\';
		out[n++] = 'x';
		out[n++] = hex[*p >> 4];
		out[n++] = hex[*p & 0xf];
	}
	out[n] = '\0';
}

static void emit(int level, const char *raw)
{
	char line[LINE_MAX_BYTES];
	static const char *const prefix[] = {
		[LOG_ERR] = "error", [LOG_WARNING] = "warning",
		[LOG_NOTICE] = "notice", [LOG_INFO] = "info",
		[LOG_DEBUG] = "debug",
	};

	log_escape(raw, line, sizeof(line));
	if (output_fn) {
		output_fn(output_arg, level, line);
		return;
	}
	if (to_syslog) {
		syslog(level, "%s", line);
		if (level > stderr_max_level)
			return;
	}
	if (level < LOG_ERR || level > LOG_DEBUG || !prefix[level])
		level = LOG_ERR;
	fprintf(stderr, "nearfs: %s: %s\n", prefix[level], line);
}

void log_write(int level, const char *fmt, ...)
{
	char line[LINE_MAX_BYTES];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	emit(level, line);
}

/* Write line with the count of the messages suppressed before it. */
static void emit_with_count(int level, const char *line, uint64_t count)
{
	if (count == 0) {
		emit(level, line);
		return;
	}
	log_write(level, "%s (%llu similar message%s suppressed)", line,
		  (unsigned long long)count, count == 1 ? "" : "s");
}

void log_write_limited(struct log_limit *limit, int level, const char *fmt,
		       ...)
{
	char line[LINE_MAX_BYTES];
	uint64_t now = clock_now_ms(), count;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);

	pthread_mutex_lock(&limit_lock);
	if (limit->started && now - limit->window_start_ms <
	    LOG_LIMIT_WINDOW_MS) {
		/* Keep the last message for the flush.  A message that
		 * cannot be copied is counted all the same. */
		char *copy = strdup(line);

		if (copy) {
			free(limit->last);
			limit->last = copy;
			limit->last_level = level;
		}
		limit->suppressed++;
		if (!limit->listed) {
			limit->listed = true;
			limit->next = limits;
			limits = limit;
		}
		pthread_mutex_unlock(&limit_lock);
		return;
	}
	count = limit->suppressed;
	limit->started = true;
	limit->window_start_ms = now;
	limit->suppressed = 0;
	free(limit->last);
	limit->last = NULL;
	/* Writing under the lock keeps the lines of one site in order. */
	emit_with_count(level, line, count);
	pthread_mutex_unlock(&limit_lock);
}

void log_flush_suppressed(void)
{
	uint64_t now = clock_now_ms();
	struct log_limit *limit, *next;

	pthread_mutex_lock(&limit_lock);
	for (limit = limits; limit; limit = next) {
		next = limit->next;
		limit->next = NULL;
		limit->listed = false;
		if (limit->suppressed == 0)
			continue;
		/* The last message is written, so the count leaves it out. */
		if (limit->last)
			emit_with_count(limit->last_level, limit->last,
					limit->suppressed - 1);
		limit->window_start_ms = now;
		limit->suppressed = 0;
		free(limit->last);
		limit->last = NULL;
	}
	limits = NULL;
	pthread_mutex_unlock(&limit_lock);
}

const char *log_level_name(int level)
{
	switch (level) {
	case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warn";
	case LOG_INFO:
		return "info";
	case LOG_DEBUG:
		return "debug";
	}
	return "unknown";
}
