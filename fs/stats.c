/*
 * stats.c - the counters and settings of a mount, as the control socket
 * reports them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "options.h"

/* The fsync= option in its mount syntax: local or origin. */
static const char *fsync_name(const struct cache_config *cfg)
{
	return cfg->fsync_local ? "local" : "origin";
}

/* ---- statistics ---- */

/* One counter of the report: its name and where it sits in the stats. */
struct stat_field {
	const char *name;
	size_t offset;
};

#define STAT_FIELD(name, member) { name, offsetof(struct cache_stats, member) }

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
	STAT_FIELD("cache_size", size_max),
	STAT_FIELD("objects_cached", objects_cached),
	STAT_FIELD("evictions", evictions),
	STAT_FIELD("checksum_failures", checksum_failures),
	STAT_FIELD("revalidations", revalidations),
	STAT_FIELD("invalidations", invalidations),
	STAT_FIELD("origin_errors", origin_errors),
	STAT_FIELD("origin_retries", origin_retries),
	STAT_FIELD("dirty_bytes", dirty_bytes),
	STAT_FIELD("max_dirty", max_dirty),
	STAT_FIELD("uploads_pending", uploads_pending),
	STAT_FIELD("uploads_failed", uploads_failed),
	STAT_FIELD("uploads_done", uploads_done),
	STAT_FIELD("upload_retries", upload_retries),
	STAT_FIELD("lends", lends),
	STAT_FIELD("lends_refused", lends_refused),
};

#define NFIELDS (sizeof(stat_fields) / sizeof(stat_fields[0]))

static uint64_t field_value(const struct cache_stats *st, size_t i)
{
	return *(const uint64_t *)((const char *)st + stat_fields[i].offset);
}

static double hit_ratio(const struct cache_stats *st)
{
	uint64_t total = st->hits + st->misses;

	return total ? (double)st->hits / (double)total : 0.0;
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
	fprintf(out, "writeback_delay_ms: %" PRIu64 "\n",
		cfg->writeback_delay_ms);
	fprintf(out, "fsync: %s\n", fsync_name(cfg));
	fprintf(out, "pid: %ld\n", (long)getpid());
	for (size_t i = 0; i < NFIELDS; i++) {
		fprintf(out, "%s: %" PRIu64 "\n", stat_fields[i].name,
			field_value(st, i));
		if (strcmp(stat_fields[i].name, "misses") == 0)
			fprintf(out, "hit_ratio: %.4f\n", hit_ratio(st));
	}
	for (size_t i = 0; i < ORIGIN_REQ_MAX; i++)
		fprintf(out, "requests.%s: %" PRIu64 "\n",
			origin_request_names[i], st->origin_requests[i]);
}

static void json_string(FILE *out, const char *s)
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
	fprintf(out, "\"writeback_delay_ms\":%" PRIu64 ",",
		cfg->writeback_delay_ms);
	json_string_field(out, "fsync", fsync_name(cfg));
	fprintf(out, "\"pid\":%ld,", (long)getpid());
	for (size_t i = 0; i < NFIELDS; i++)
		fprintf(out, "\"%s\":%" PRIu64 ",", stat_fields[i].name,
			field_value(st, i));
	fprintf(out, "\"hit_ratio\":%.4f,", hit_ratio(st));
	fputs("\"requests\":{", out);
	for (size_t i = 0; i < ORIGIN_REQ_MAX; i++)
		fprintf(out, "%s\"%s\":%" PRIu64, i ? "," : "",
			origin_request_names[i], st->origin_requests[i]);
	fputs("}}\n", out);
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
