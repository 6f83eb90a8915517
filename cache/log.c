/* log.c - stderr or syslog output for log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int log_max_level = LOG_INFO;
static bool to_syslog;
/* While to_syslog is set, messages up to this level also go to stderr. */
static int stderr_max_level = -1;

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

void log_write(int level, const char *fmt, ...)
{
	static const char *const prefix[] = {
		[LOG_ERR] = "error", [LOG_WARNING] = "warning",
		[LOG_NOTICE] = "notice", [LOG_INFO] = "info",
		[LOG_DEBUG] = "debug",
	};
	char line[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);

	if (to_syslog) {
		syslog(level, "%s", line);
		if (level > stderr_max_level)
			return;
	}
	if (level < LOG_ERR || level > LOG_DEBUG || !prefix[level])
		level = LOG_ERR;
	fprintf(stderr, "nearfs: %s: %s\n", prefix[level], line);
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
