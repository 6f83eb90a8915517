/*
 * stats.c - the reports of the control socket: the counters and settings
 * of a mount, what is cached under a path, and the write-back queue.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "options.h"
#include "stats.h"

/* The fsync= option in its mount syntax: local or origin. */
static const char *fsync_name(const struct cache_config *cfg)
{
	return cfg->fsync_local ? "local" : "origin";
}

/* ---- statistics ---- */

/* One number of the report: its name and where it sits in the stats. */
struct stat_field {
	const char *name;
	size_t offset;
	bool setting;		/* nearfs-ctl set may change it */
};

#define STAT_FIELD(field_name, member) \
	{ .name = field_name, .offset = offsetof(struct cache_stats, member) }
#define SETTING_FIELD(field_name, member) \
	{ .name = field_name, .offset = offsetof(struct cache_stats, member), \
	  .setting = true }

/* Settings that nearfs-ctl set may change, in the header of the report. */
static const struct stat_field setting_fields[] = {
	SETTING_FIELD("writeback_delay_ms", writeback_delay_ms),
	SETTING_FIELD("ttl_ms", ttl_ms),
	SETTING_FIELD("attr_ttl_ms", attr_ttl_ms),
	SETTING_FIELD("neg_ttl_ms", neg_ttl_ms),
	SETTING_FIELD("dir_ttl_ms", dir_ttl_ms),
	SETTING_FIELD("min_free", min_free),
	SETTING_FIELD("min_free_pct", min_free_pct),
};

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
	SETTING_FIELD("cache_size", size_max),
	STAT_FIELD("objects_cached", objects_cached),
	STAT_FIELD("evictions", evictions),
	STAT_FIELD("checksum_failures", checksum_failures),
	STAT_FIELD("revalidations", revalidations),
	STAT_FIELD("invalidations", invalidations),
	STAT_FIELD("origin_errors", origin_errors),
	STAT_FIELD("origin_retries", origin_retries),
	STAT_FIELD("dirty_bytes", dirty_bytes),
	SETTING_FIELD("max_dirty", max_dirty),
	STAT_FIELD("uploads_pending", uploads_pending),
	STAT_FIELD("uploads_failed", uploads_failed),
	STAT_FIELD("uploads_done", uploads_done),
	STAT_FIELD("upload_retries", upload_retries),
	STAT_FIELD("lends", lends),
	STAT_FIELD("lends_refused", lends_refused),
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The quantiles of the request durations that the report shows. */
static const struct {
	const char *name;
	double q;
} latency_quantiles[] = {
	{ "p50_ms", 0.5 },
	{ "p99_ms", 0.99 },
};

/* The value of field in base, a struct cache_stats or the struct the
 * table of field describes. */
static uint64_t field_value(const void *base, const struct stat_field *field)
{
	return *(const uint64_t *)((const char *)base + field->offset);
}

static double hit_ratio(const struct cache_stats *st)
{
	uint64_t total = st->hits + st->misses;

	return total ? (double)st->hits / (double)total : 0.0;
}

static double latency_ms(const struct cache_stats *st, size_t kind,
			 size_t quantile)
{
	return origin_latency_quantile(&st->latency[kind],
				       latency_quantiles[quantile].q) / 1000.0;
}

static void text_fields(FILE *out, const void *base,
			const struct stat_field *fields, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s: %" PRIu64 "\n", fields[i].name,
			field_value(base, &fields[i]));
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
	fprintf(out, "fsync: %s\n", fsync_name(cfg));
	text_fields(out, st, setting_fields, ARRAY_LEN(setting_fields));
	fprintf(out, "log_level: %s\n", log_level_name(log_max_level));
	fprintf(out, "pid: %ld\n", (long)getpid());
	/* hit_ratio follows hits and misses, the first two counters. */
	text_fields(out, st, stat_fields, 2);
	fprintf(out, "hit_ratio: %.4f\n", hit_ratio(st));
	text_fields(out, st, stat_fields + 2, ARRAY_LEN(stat_fields) - 2);
	for (size_t i = 0; i < ORIGIN_REQ_MAX; i++)
		fprintf(out, "requests.%s: %" PRIu64 "\n",
			origin_request_names[i], st->origin_requests[i]);
	for (size_t i = 0; i < ORIGIN_REQ_MAX; i++)
		for (size_t q = 0; q < ARRAY_LEN(latency_quantiles); q++)
			fprintf(out, "latency.%s.%s: %.3f\n",
				origin_request_names[i],
				latency_quantiles[q].name,
				latency_ms(st, i, q));
}

void json_string(FILE *out, const char *s)
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

/* "name":value for each of fields, each followed by a comma unless last
 * is set and it is the last one. */
static void json_fields(FILE *out, const void *base,
			const struct stat_field *fields, size_t n, bool last)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "\"%s\":%" PRIu64 "%s", fields[i].name,
			field_value(base, &fields[i]),
			last && i + 1 == n ? "" : ",");
}

/* "latency":{"GET":{"p50_ms":0.5,"p99_ms":2.1},...} */
static void json_latency(FILE *out, const struct cache_stats *st)
{
	fputs("\"latency\":{", out);
	for (size_t i = 0; i < ORIGIN_REQ_MAX; i++) {
		fprintf(out, "%s\"%s\":{", i ? "," : "",
			origin_request_names[i]);
		for (size_t q = 0; q < ARRAY_LEN(latency_quantiles); q++)
			fprintf(out, "%s\"%s\":%.3f", q ? "," : "",
				latency_quantiles[q].name,
				latency_ms(st, i, q));
		fputc('}', out);
	}
	fputc('}', out);
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
	json_string_field(out, "fsync", fsync_name(cfg));
	json_fields(out, st, setting_fields, ARRAY_LEN(setting_fields), false);
	json_string_field(out, "log_level", log_level_name(log_max_level));
	fprintf(out, "\"pid\":%ld,", (long)getpid());
	json_fields(out, st, stat_fields, ARRAY_LEN(stat_fields), false);
	fprintf(out, "\"hit_ratio\":%.4f,", hit_ratio(st));
	fputs("\"requests\":{", out);
	for (size_t i = 0; i < ORIGIN_REQ_MAX; i++)
		fprintf(out, "%s\"%s\":%" PRIu64, i ? "," : "",
			origin_request_names[i], st->origin_requests[i]);
	fputs("},", out);
	json_latency(out, st);
	fputs("}\n", out);
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

/* Print "NAME: OLD -> NEW" for each setting of fields that differs. */
static size_t print_changed(FILE *out, const struct stat_field *fields,
			    size_t n, const struct cache_stats *before,
			    const struct cache_stats *after)
{
	size_t changed = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t old = field_value(before, &fields[i]);
		uint64_t now = field_value(after, &fields[i]);

		if (!fields[i].setting || old == now)
			continue;
		fprintf(out, "%s: %" PRIu64 " -> %" PRIu64 "\n",
			fields[i].name, old, now);
		changed++;
	}
	return changed;
}

void stats_print_changes(FILE *out, const struct cache_stats *before,
			 int level_before, const struct cache_stats *after,
			 int level_after)
{
	size_t changed;

	changed = print_changed(out, setting_fields, ARRAY_LEN(setting_fields),
				before, after);
	changed += print_changed(out, stat_fields, ARRAY_LEN(stat_fields),
				 before, after);
	if (level_before != level_after) {
		fprintf(out, "log_level: %s -> %s\n",
			log_level_name(level_before),
			log_level_name(level_after));
		changed++;
	}
	if (changed == 0)
		fputs("no setting changed\n", out);
}


/* ---- usage ---- */

#define USAGE_FIELD(member) \
	{ .name = #member, .offset = offsetof(struct cache_usage, member) }

static const struct stat_field usage_fields[] = {
	USAGE_FIELD(files),
	USAGE_FIELD(chunks),
	USAGE_FIELD(bytes),
	USAGE_FIELD(dirty_files),
	USAGE_FIELD(dirty_bytes),
};

void stats_format_usage(FILE *out, const char *path,
			const struct cache_usage *u, bool json)
{
	char shown[PATH_MAX + 2];

	snprintf(shown, sizeof(shown), "/%s", path);
	if (!json) {
		fprintf(out, "path: %s\n", shown);
		text_fields(out, u, usage_fields, ARRAY_LEN(usage_fields));
		return;
	}
	fputc('{', out);
	json_string_field(out, "path", shown);
	json_fields(out, u, usage_fields, ARRAY_LEN(usage_fields), true);
	fputs("}\n", out);
}

/* ---- uploads ---- */

static const char *upload_state_name(enum cache_upload_state state)
{
	switch (state) {
	case CACHE_UPLOAD_OPEN:
		return "open";
	case CACHE_UPLOAD_QUIET:
		return "waiting";
	case CACHE_UPLOAD_RETRY:
		return "retrying";
	case CACHE_UPLOAD_DUE:
		return "due";
	case CACHE_UPLOAD_SENDING:
		return "uploading";
	}
	return "unknown";
}

/* Format a duration for a table cell: "12s", "5m03s", "2h05m" or
 * "3d04h". */
static void format_duration(uint64_t ms, char *buf, size_t size)
{
	uint64_t s = ms / 1000;

	if (s < 60)
		snprintf(buf, size, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, size, "%" PRIu64 "m%02" PRIu64 "s", s / 60,
			 s % 60);
	else if (s < 86400)
		snprintf(buf, size, "%" PRIu64 "h%02" PRIu64 "m", s / 3600,
			 s % 3600 / 60);
	else
		snprintf(buf, size, "%" PRIu64 "d%02" PRIu64 "h", s / 86400,
			 s % 86400 / 3600);
}

static void text_upload(FILE *out, const struct cache_upload *u)
{
	char age[24], wait[24];

	format_duration(u->age_ms, age, sizeof(age));
	format_duration(u->wait_ms, wait, sizeof(wait));
	fprintf(out, "%-9s %8u %7s %12" PRIu64 "  /%s", upload_state_name(
		u->state), u->attempts, age, u->size, u->path);
	if (u->state == CACHE_UPLOAD_RETRY)
		fprintf(out, "  (last error: %s; next try in %s)",
			strerror(-u->last_error), wait);
	else if (u->last_error)
		fprintf(out, "  (last error: %s)", strerror(-u->last_error));
	else if (u->state == CACHE_UPLOAD_QUIET)
		fprintf(out, "  (upload in %s)", wait);
	fputc('\n', out);
}

static void json_upload(FILE *out, const struct cache_upload *u)
{
	char path[PATH_MAX + 2];

	snprintf(path, sizeof(path), "/%s", u->path);
	fputc('{', out);
	json_string_field(out, "path", path);
	fprintf(out, "\"size\":%" PRIu64 ",\"age_ms\":%" PRIu64 ","
		"\"attempts\":%u,", u->size, u->age_ms, u->attempts);
	json_string_field(out, "state", upload_state_name(u->state));
	fputs("\"last_error\":", out);
	if (u->last_error)
		json_string(out, strerror(-u->last_error));
	else
		fputs("null", out);
	fprintf(out, ",\"wait_ms\":%" PRIu64 "}", u->wait_ms);
}

void stats_format_uploads(FILE *out, const struct cache_upload *list,
			  size_t count, bool json)
{
	if (json) {
		fputs("{\"uploads\":[", out);
		for (size_t i = 0; i < count; i++) {
			if (i)
				fputc(',', out);
			json_upload(out, &list[i]);
		}
		fputs("]}\n", out);
		return;
	}
	if (count == 0) {
		fputs("no file waits for upload\n", out);
		return;
	}
	fprintf(out, "%-9s %8s %7s %12s  %s\n", "STATE", "ATTEMPTS", "AGE",
		"SIZE", "PATH");
	for (size_t i = 0; i < count; i++)
		text_upload(out, &list[i]);
}
