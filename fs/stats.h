/*
 * stats.h - reports of the control socket besides the counters of
 * ctl_format_stats() (ctl.h).
 */
#ifndef NEARFS_STATS_H
#define NEARFS_STATS_H

#include <stdbool.h>
#include <stdio.h>

#include "cache.h"

struct ctl_info;

/*
 * Format the counters in the Prometheus text exposition format (version
 * 0.0.4), into a new string that the caller frees: counters named
 * nearfs_*_total, gauges, and the durations of the origin requests as
 * the histogram nearfs_origin_request_duration_seconds.  -ENOMEM.
 */
int stats_format_metrics(const struct ctl_info *info, char **out);

/* Write s as a JSON string, quotes included. */
void json_string(FILE *out, const char *s);

/*
 * Print "NAME: OLD -> NEW" for each setting that differs between before
 * and after, named as in the stats report, or "no setting changed".
 */
void stats_print_changes(FILE *out, const struct cache_stats *before,
			 int level_before, const struct cache_stats *after,
			 int level_after);

/* Write what cache_usage() counted at path, an engine path, as
 * "name: value" lines or as one JSON object. */
void stats_format_usage(FILE *out, const char *path,
			const struct cache_usage *u, bool json);

/* Write the write-back queue of cache_list_uploads() as a table with a
 * header line, or as one JSON object. */
void stats_format_uploads(FILE *out, const struct cache_upload *list,
			  size_t count, bool json);

#endif
