/*
 * stats.h - reports of the control socket besides the counters of
 * ctl_format_stats() (ctl.h).
 */
#ifndef NEARFS_STATS_H
#define NEARFS_STATS_H

#include <stdio.h>

/* Write s as a JSON string, quotes included. */
void json_string(FILE *out, const char *s);

#endif
