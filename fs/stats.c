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

/*
 * One number of the report: its name, where it sits in the stats, and
 * for the Prometheus format its metric.  Rows that share a metric (with
 * different labels) are adjacent, and the first one carries the help.
 */
struct stat_field {
	const char *name;
	size_t offset;
	bool setting;		/* nearfs-ctl set may change it */
	const char *metric;	/* NULL: not exported */
	const char *labels;	/* name="value" pairs, or NULL */
	bool gauge;		/* else a counter */
	const char *help;
};

#define FIELD(field_name, member, ...) \
	{ .name = field_name, .offset = offsetof(struct cache_stats, member), \
	  __VA_ARGS__ }

/* Settings that nearfs-ctl set may change, in the header of the report. */
static const struct stat_field setting_fields[] = {
	FIELD("writeback_delay_ms", writeback_delay_ms, .setting = true),
	FIELD("ttl_ms", ttl_ms, .setting = true),
	FIELD("attr_ttl_ms", attr_ttl_ms, .setting = true),
	FIELD("neg_ttl_ms", neg_ttl_ms, .setting = true),
	FIELD("dir_ttl_ms", dir_ttl_ms, .setting = true),
	FIELD("min_free", min_free, .setting = true),
	FIELD("min_free_pct", min_free_pct, .setting = true),
};

static const struct stat_field stat_fields[] = {
	FIELD("hits", hits, .metric = "nearfs_cache_hits_total",
	      .help = "Chunk reads served from the cache."),
	FIELD("misses", misses, .metric = "nearfs_cache_misses_total",
	      .help = "Chunk reads sent to the origin."),
	FIELD("bytes_from_cache", bytes_from_cache,
	      .metric = "nearfs_read_bytes_total",
	      .labels = "source=\"cache\"",
	      .help = "Bytes read, by where they came from."),
	FIELD("bytes_from_origin", bytes_from_origin,
	      .metric = "nearfs_read_bytes_total",
	      .labels = "source=\"origin\""),
	FIELD("bytes_zero_copy", bytes_zero_copy,
	      .metric = "nearfs_zero_copy_bytes_total",
	      .help = "Bytes read from the cache without a copy through the "
		      "daemon."),
	FIELD("bytes_to_origin", bytes_to_origin,
	      .metric = "nearfs_written_bytes_total",
	      .help = "Bytes sent to the origin by writes."),
	FIELD("readaheads", readaheads,
	      .metric = "nearfs_readahead_chunks_total",
	      .help = "Chunks fetched ahead of sequential readers."),
	FIELD("chunks_cached", chunks_cached, .metric = "nearfs_cache_chunks",
	      .gauge = true, .help = "Chunks in the cache."),
	FIELD("bytes_cached", bytes_cached, .metric = "nearfs_cache_bytes",
	      .gauge = true, .help = "Bytes of the chunks in the cache."),
	FIELD("cache_size", size_max, .setting = true,
	      .metric = "nearfs_cache_size_bytes", .gauge = true,
	      .help = "The budget of the cache: cache_size."),
	FIELD("objects_cached", objects_cached,
	      .metric = "nearfs_cache_files", .gauge = true,
	      .help = "Files with chunks in the cache."),
	FIELD("evictions", evictions, .metric = "nearfs_evictions_total",
	      .help = "Chunks evicted to stay within the budget."),
	FIELD("checksum_failures", checksum_failures,
	      .metric = "nearfs_checksum_failures_total",
	      .help = "Cached chunks that failed their check and were "
		      "fetched again."),
	FIELD("cache_dir_errors", cache_dir_errors,
	      .metric = "nearfs_cache_dir_errors_total",
	      .help = "Writes into cache_dir that failed (a full disk, "
		      "min_free), whose data was served or stored without "
		      "the cache."),
	FIELD("cache_dir_full", cache_dir_full, .metric = "nearfs_cache_dir_full",
	      .gauge = true,
	      .help = "1 while writes into cache_dir fail, else 0."),
	FIELD("revalidations", revalidations,
	      .metric = "nearfs_revalidations_total",
	      .help = "Version checks of cached files after ttl."),
	FIELD("invalidations", invalidations,
	      .metric = "nearfs_invalidations_total",
	      .help = "Cached files dropped for a newer version."),
	FIELD("origin_errors", origin_errors,
	      .metric = "nearfs_origin_errors_total",
	      .help = "Origin requests that failed after their retries."),
	FIELD("origin_retries", origin_retries,
	      .metric = "nearfs_origin_retries_total",
	      .help = "Origin request attempts that were retried."),
	FIELD("dirty_bytes", dirty_bytes, .metric = "nearfs_dirty_bytes",
	      .gauge = true,
	      .help = "Write-back: bytes of closed files not uploaded yet."),
	FIELD("max_dirty", max_dirty, .setting = true,
	      .metric = "nearfs_max_dirty_bytes", .gauge = true,
	      .help = "Write-back: the limit of dirty bytes, max_dirty."),
	FIELD("uploads_pending", uploads_pending,
	      .metric = "nearfs_uploads_pending", .gauge = true,
	      .help = "Write-back: files waiting for or in upload."),
	FIELD("uploads_failed", uploads_failed,
	      .metric = "nearfs_uploads_failed", .gauge = true,
	      .help = "Write-back: pending files whose last upload failed."),
	FIELD("uploads_done", uploads_done, .metric = "nearfs_uploads_total",
	      .help = "Write-back: uploads completed."),
	FIELD("upload_retries", upload_retries,
	      .metric = "nearfs_upload_retries_total",
	      .help = "Write-back: failed upload attempts."),
	FIELD("lends", lends, .metric = "nearfs_lends_total",
	      .help = "Descriptors of local copies lent to programs."),
	FIELD("lends_refused", lends_refused,
	      .metric = "nearfs_lends_refused_total",
	      .help = "Requests for a local copy that got none."),
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

/* Write the report of st into a new string that the caller frees. */
static int format_stats(const struct ctl_info *info,
			void (*write)(const struct ctl_info *info,
				      const struct cache_stats *st, FILE *out),
			char **out)
{
	struct cache_stats st;
	size_t len;
	FILE *mem;

	mem = open_memstream(out, &len);
	if (!mem)
		return -ENOMEM;
	cache_get_stats(info->cache, &st);
	write(info, &st, mem);
	if (fclose(mem) != 0) {
		free(*out);
		return -ENOMEM;
	}
	return 0;
}

int ctl_format_stats(const struct ctl_info *info, bool json, char **out)
{
	return format_stats(info, json ? format_json : format_text, out);
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


/* ---- Prometheus metrics ---- */

/* Write s as the value of a label: backslash, double quote and newline
 * escaped, as the text exposition format requires. */
static void label_value(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(out, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", out);
		else
			fputc(*s, out);
	}
	fputc('"', out);
}

static void metric_header(FILE *out, const char *name, const char *type,
			  const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_info(const struct ctl_info *info, FILE *out)
{
	const struct cache_config *cfg = cache_config(info->cache);

	metric_header(out, "nearfs_info", "gauge",
		      "The mount: origin, mount point, cache folder and write "
		      "mode; always 1.");
	fputs("nearfs_info{origin=", out);
	label_value(out, info->origin);
	fputs(",mountpoint=", out);
	label_value(out, info->mountpoint);
	fputs(",cache_dir=", out);
	label_value(out, cache_path(info->cache));
	fputs(",write_mode=", out);
	label_value(out, write_mode_name(cfg->write_mode));
	fputs("} 1\n", out);
}

static void metrics_fields(const struct cache_stats *st, FILE *out)
{
	for (size_t i = 0; i < ARRAY_LEN(stat_fields); i++) {
		const struct stat_field *f = &stat_fields[i];

		if (!f->metric)
			continue;
		if (f->help)
			metric_header(out, f->metric,
				      f->gauge ? "gauge" : "counter", f->help);
		fprintf(out, "%s%s%s%s %" PRIu64 "\n", f->metric,
			f->labels ? "{" : "", f->labels ? f->labels : "",
			f->labels ? "}" : "", field_value(st, f));
	}
}

/* The request counts, and their durations as a histogram in seconds. */
static void metrics_requests(const struct cache_stats *st, FILE *out)
{
	const char *hist = "nearfs_origin_request_duration_seconds";

	metric_header(out, "nearfs_origin_requests_total", "counter",
		      "Requests sent to the origin, by kind.");
	for (size_t i = 0; i < ORIGIN_REQ_MAX; i++)
		fprintf(out, "nearfs_origin_requests_total{kind=\"%s\"} %"
			PRIu64 "\n", origin_request_names[i],
			st->origin_requests[i]);
	metric_header(out, hist, "histogram",
		      "Durations of the origin requests, by kind.");
	for (size_t i = 0; i < ORIGIN_REQ_MAX; i++) {
		const struct origin_latency_stats *l = &st->latency[i];
		const char *kind = origin_request_names[i];
		uint64_t below = 0;

		for (unsigned b = 0; b + 1 < ORIGIN_LATENCY_BUCKETS; b++) {
			below += l->buckets[b];
			fprintf(out, "%s_bucket{kind=\"%s\",le=\"%.6f\"} %"
				PRIu64 "\n", hist, kind,
				(double)origin_latency_bound_us(b) / 1e6,
				below);
		}
		fprintf(out, "%s_bucket{kind=\"%s\",le=\"+Inf\"} %" PRIu64 "\n",
			hist, kind, l->count);
		fprintf(out, "%s_sum{kind=\"%s\"} %.6f\n", hist, kind,
			(double)l->sum_us / 1e6);
		fprintf(out, "%s_count{kind=\"%s\"} %" PRIu64 "\n", hist, kind,
			l->count);
	}
}

static void format_metrics(const struct ctl_info *info,
			   const struct cache_stats *st, FILE *out)
{
	metrics_info(info, out);
	metrics_fields(st, out);
	metrics_requests(st, out);
}

int stats_format_metrics(const struct ctl_info *info, char **out)
{
	return format_stats(info, format_metrics, out);
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

/* Write s to out with its control characters escaped as the log escapes
 * them, so that a file name can neither split a line nor drive the
 * terminal. */
static void put_escaped(FILE *out, const char *s)
{
	char shown[4 * PATH_MAX + 1];

	log_escape(s, shown, sizeof(shown));
	fputs(shown, out);
}

void stats_format_usage(FILE *out, const char *path,
			const struct cache_usage *u, bool json)
{
	char shown[PATH_MAX + 2];

	snprintf(shown, sizeof(shown), "/%s", path);
	if (!json) {
		/* Relative to the mount root, as nearfs-ctl takes it back. */
		fputs("path: ", out);
		put_escaped(out, path[0] ? path : ".");
		fputc('\n', out);
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

/* The last error of u: the errno text, then the origin's reason. */
static void upload_error(const struct cache_upload *u, char *buf,
			 size_t size)
{
	if (u->last_detail[0])
		snprintf(buf, size, "%s, %s", strerror(-u->last_error),
			 u->last_detail);
	else
		snprintf(buf, size, "%s", strerror(-u->last_error));
}

static void text_upload(FILE *out, const struct cache_upload *u)
{
	char age[24], wait[24], error[ORIGIN_DETAIL_MAX + 64];

	format_duration(u->age_ms, age, sizeof(age));
	format_duration(u->wait_ms, wait, sizeof(wait));
	upload_error(u, error, sizeof(error));
	fprintf(out, "%-9s %8u %7s %12" PRIu64 "  ", upload_state_name(
		u->state), u->attempts, age, u->size);
	put_escaped(out, u->path);
	if (u->state == CACHE_UPLOAD_RETRY) {
		fputs("  (last error: ", out);
		put_escaped(out, error);
		fprintf(out, "; next try in %s)", wait);
	} else if (u->last_error) {
		fputs("  (last error: ", out);
		put_escaped(out, error);
		fputc(')', out);
	} else if (u->state == CACHE_UPLOAD_QUIET) {
		fprintf(out, "  (upload in %s)", wait);
	}
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
	fputs(",\"last_error_detail\":", out);
	if (u->last_detail[0])
		json_string(out, u->last_detail);
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
