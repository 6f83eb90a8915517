/* test_journal.c - the write-back journal: replay, damage and compaction. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"
#include "recordlog.h"

#define VERSION_OFFSET 8	/* after the 8-byte magic of the header */
#define HEADER_SIZE 16		/* magic, version, param */
/* Fixed parts of the records as journal.c lays them out. */
#define PUT_FIXED 40		/* of format version 1 */
#define PUT_SIZE_FIXED 48
#define MOVE_FIXED 16
#define RENAME_FIXED 24
/* Record types of journal.c. */
#define REC_PUT 1		/* of format version 1, without the size */
#define REC_MOVE 2
#define REC_DONE 3
#define REC_PUT_SIZE 4
#define REC_RENAME 5
#define MAX_SEEN 64

/* The pending entries one journal_open() reported. */
struct seen {
	size_t count;
	uint64_t seq[MAX_SEEN];
	char *path[MAX_SEEN];
	struct origin_attr meta[MAX_SEEN];
};

struct env {
	char dir[64];
	char path[96];
	struct journal *j;
	struct seen seen;
};

static void seen_reset(struct seen *s)
{
	for (size_t i = 0; i < s->count; i++)
		free(s->path[i]);
	s->count = 0;
}

static void record_pending(void *arg, uint64_t seq, const char *path,
			   const struct origin_attr *meta)
{
	struct seen *s = arg;

	assert_true(s->count < MAX_SEEN);
	s->seq[s->count] = seq;
	s->path[s->count] = strdup(path);
	assert_non_null(s->path[s->count]);
	s->meta[s->count] = *meta;
	s->count++;
}

static int setup(void **state)
{
	struct env *env = calloc(1, sizeof(*env));

	assert_non_null(env);
	strcpy(env->dir, "/tmp/journal-tests-XXXXXX");
	assert_non_null(mkdtemp(env->dir));
	snprintf(env->path, sizeof(env->path), "%s/journal", env->dir);
	*state = env;
	return 0;
}

static int teardown(void **state)
{
	struct env *env = *state;
	DIR *d;
	struct dirent *de;

	journal_close(env->j);
	seen_reset(&env->seen);
	setrlimit(RLIMIT_FSIZE, &(struct rlimit){ RLIM_INFINITY,
						   RLIM_INFINITY });
	d = opendir(env->dir);
	if (d) {
		while ((de = readdir(d))) {
			char p[400];

			if (de->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", env->dir, de->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(env->dir);
	free(env);
	return 0;
}

/* Close the journal if open, then open it, recording what it reports. */
static void reopen(struct env *env)
{
	char err[512] = "";
	int ret;

	journal_close(env->j);
	env->j = NULL;
	seen_reset(&env->seen);
	ret = journal_open(env->path, record_pending, &env->seen, &env->j,
			   err, sizeof(err));
	if (ret != 0)
		fail_msg("journal_open: %d: %s", ret, err);
}

static struct origin_attr meta_of(unsigned n)
{
	struct origin_attr m = {
		.mode = 0100600 | n, .uid = 1000 + n, .gid = 2000 + n,
		.mtime = { .tv_sec = 1700000000 + n, .tv_nsec = 1000 * n },
		.valid = n,
		.size = 1000 * n + 7,
	};

	return m;
}

static void put(struct env *env, uint64_t seq, const char *path,
		unsigned meta)
{
	struct origin_attr m = meta_of(meta);

	assert_int_equal(journal_put(env->j, seq, path, &m), 0);
}

/* Check every field of meta_of(n) but the size. */
static void assert_meta_fields(const struct origin_attr *got, unsigned n)
{
	struct origin_attr want = meta_of(n);

	assert_int_equal(got->mode, want.mode);
	assert_int_equal(got->uid, want.uid);
	assert_int_equal(got->gid, want.gid);
	assert_int_equal(got->valid, want.valid);
	assert_int_equal(got->mtime.tv_sec, want.mtime.tv_sec);
	assert_int_equal(got->mtime.tv_nsec, want.mtime.tv_nsec);
}

static void assert_meta(const struct origin_attr *got, unsigned n)
{
	assert_meta_fields(got, n);
	assert_int_equal(got->size, meta_of(n).size);
}

static void assert_entry(const struct env *env, size_t i, uint64_t seq,
			 const char *path, unsigned meta)
{
	assert_true(i < env->seen.count);
	assert_int_equal(env->seen.seq[i], seq);
	assert_string_equal(env->seen.path[i], path);
	assert_meta(&env->seen.meta[i], meta);
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* Read the whole file at path into a new buffer. */
static char *slurp(const char *path, size_t *size)
{
	int fd = open(path, O_RDONLY);
	char *buf;

	assert_true(fd >= 0);
	*size = file_size(path);
	buf = malloc(*size + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, *size, 0), (ssize_t)*size);
	close(fd);
	return buf;
}

static void test_journal_append_and_replay(void **state)
{
	struct env *env = *state;

	reopen(env);
	assert_int_equal(env->seen.count, 0);
	put(env, 4, "d", 4);
	put(env, 1, "a", 1);
	put(env, 2, "b", 2);
	put(env, 3, "dir/c", 3);
	assert_int_equal(journal_move(env->j, 2, "moved/b"), 0);
	assert_int_equal(journal_done(env->j, 3), 0);
	assert_int_equal(journal_sync(env->j), 0);

	reopen(env);
	assert_int_equal(env->seen.count, 3);
	assert_entry(env, 0, 1, "a", 1);
	assert_entry(env, 1, 2, "moved/b", 2);
	assert_entry(env, 2, 4, "d", 4);
}

static void test_journal_torn_last_record(void **state)
{
	struct env *env = *state;

	reopen(env);
	put(env, 1, "a", 1);
	put(env, 2, "b", 2);
	journal_close(env->j);
	env->j = NULL;
	assert_int_equal(truncate(env->path, file_size(env->path) - 3), 0);

	reopen(env);
	assert_int_equal(env->seen.count, 1);
	assert_entry(env, 0, 1, "a", 1);

	put(env, 3, "c", 3);
	reopen(env);
	assert_int_equal(env->seen.count, 2);
	assert_entry(env, 0, 1, "a", 1);
	assert_entry(env, 1, 3, "c", 3);
}

static void test_journal_garbage_tail(void **state)
{
	struct env *env = *state;
	static const char garbage[] = "\x01\x00\x00\x00\x07\x00\x00\x00"
				      "not a record at all";
	int fd;

	reopen(env);
	put(env, 1, "a", 1);
	put(env, 2, "b", 2);
	journal_close(env->j);
	env->j = NULL;
	fd = open(env->path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, garbage, sizeof(garbage)),
			 (ssize_t)sizeof(garbage));
	close(fd);

	reopen(env);
	assert_int_equal(env->seen.count, 2);
	assert_entry(env, 0, 1, "a", 1);
	assert_entry(env, 1, 2, "b", 2);

	assert_int_equal(journal_done(env->j, 1), 0);
	reopen(env);
	assert_int_equal(env->seen.count, 1);
	assert_entry(env, 0, 2, "b", 2);
}

static int ignore_record(void *arg, uint8_t type, const char *payload,
			 uint32_t len)
{
	return 0;
}

/* Append one record of two parts (b may be NULL) to the journal file
 * with the record log directly.  A missing file is created with format
 * version `version`. */
static void append_record(struct env *env, uint32_t version, uint8_t type,
			  const void *a, size_t alen, const void *b,
			  size_t blen)
{
	const struct recordlog_kind kind = {
		.magic = "NEARFSJL", .version = version, .oldest_version = 1,
		.what = "write-back journal", .fix = "none",
	};
	struct recordlog *log;
	char err[256];
	int changed;

	assert_int_equal(recordlog_open(env->path, &kind, 0, ignore_record,
					NULL, &log, &changed, err,
					sizeof(err)), 0);
	assert_int_equal(changed, 0);
	assert_int_equal(recordlog_append(log, type, a, alen, b, blen, NULL,
					  0), 0);
	recordlog_close(log);
}

static void append_raw(struct env *env, uint8_t type, const void *payload,
		       size_t len)
{
	append_record(env, JOURNAL_FORMAT_VERSION, type, payload, len, NULL,
		      0);
}

/* A PUT record of format version 1, as journal.c lays it out. */
struct v1_put {
	uint64_t seq;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint32_t mode, uid, gid, valid;
	uint32_t path_len;
};

/* Append a version 1 PUT of meta_of(n), creating a version 1 journal
 * when there is none. */
static void append_v1_put(struct env *env, uint64_t seq, const char *path,
			  unsigned n)
{
	struct origin_attr m = meta_of(n);
	struct v1_put r = {
		.seq = seq,
		.mtime_sec = m.mtime.tv_sec, .mtime_nsec = m.mtime.tv_nsec,
		.mode = m.mode, .uid = m.uid, .gid = m.gid, .valid = m.valid,
		.path_len = strlen(path),
	};

	assert_int_equal(sizeof(r), 40);
	append_record(env, 1, REC_PUT, &r, sizeof(r), path, strlen(path));
}

static uint32_t header_version(const struct env *env)
{
	uint32_t version = 0;
	int fd = open(env->path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &version, sizeof(version), VERSION_OFFSET),
			 sizeof(version));
	close(fd);
	return version;
}

/* Records of each type, as count_types_v1() found them. */
struct type_counts {
	unsigned n[8];
};

static int count_type(void *arg, uint8_t type, const char *payload,
		      uint32_t len)
{
	struct type_counts *counts = arg;

	assert_true(type < 8);
	counts->n[type]++;
	return 0;
}

/* Count the records of the journal file with a reader of format
 * version 1 only, as the nearfs version that wrote version 1 reads it. */
static struct type_counts count_types_v1(const struct env *env)
{
	static const struct recordlog_kind kind = {
		.magic = "NEARFSJL", .version = 1,
		.what = "write-back journal", .fix = "none",
	};
	struct type_counts counts = { { 0 } };
	struct recordlog_scan scan;
	char err[256];

	assert_int_equal(recordlog_read(env->path, &kind, count_type, &counts,
					&scan, err, sizeof(err)), 0);
	assert_int_equal(scan.valid, scan.size);
	return counts;
}

static void test_journal_malformed_record_ends_replay(void **state)
{
	struct env *env = *state;
	uint64_t seq = 1;

	reopen(env);
	put(env, 1, "a", 1);
	journal_close(env->j);
	env->j = NULL;
	/* A DONE with a 3-byte payload, then a valid DONE of seq 1 that
	 * the replay must not reach. */
	append_raw(env, REC_DONE, &seq, 3);
	append_raw(env, REC_DONE, &seq, sizeof(seq));

	reopen(env);
	assert_int_equal(env->seen.count, 1);
	assert_entry(env, 0, 1, "a", 1);
}

static void test_journal_replay_idempotent(void **state)
{
	struct env *env = *state;

	reopen(env);
	put(env, 5, "first", 1);
	put(env, 5, "second", 2);
	put(env, 6, "z", 3);
	assert_int_equal(journal_move(env->j, 40, "unknown"), 0);
	assert_int_equal(journal_done(env->j, 41), 0);

	reopen(env);
	assert_int_equal(env->seen.count, 2);
	assert_entry(env, 0, 5, "second", 2);
	assert_entry(env, 1, 6, "z", 3);

	reopen(env);
	assert_int_equal(env->seen.count, 2);
	assert_entry(env, 0, 5, "second", 2);
	assert_entry(env, 1, 6, "z", 3);
}

static void test_journal_unknown_version(void **state)
{
	struct env *env = *state;
	uint32_t version = JOURNAL_FORMAT_VERSION + 1;
	char err[512] = "", want[64], *before, *after;
	size_t before_size, after_size;
	struct journal *j = NULL;
	int fd;

	reopen(env);
	put(env, 1, "a", 1);
	journal_close(env->j);
	env->j = NULL;
	fd = open(env->path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &version, sizeof(version),
				VERSION_OFFSET), sizeof(version));
	close(fd);
	before = slurp(env->path, &before_size);

	assert_int_equal(journal_open(env->path, record_pending, &env->seen,
				      &j, err, sizeof(err)), -EPROTO);
	assert_null(j);
	assert_int_equal(env->seen.count, 0);
	snprintf(want, sizeof(want), "version %u", version);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "reads versions 1 to 3"));
	assert_non_null(strstr(err, "pending uploads"));

	after = slurp(env->path, &after_size);
	assert_int_equal(after_size, before_size);
	assert_memory_equal(after, before, before_size);
	free(before);
	free(after);
}

static void test_journal_records_size(void **state)
{
	struct env *env = *state;
	struct origin_attr m = meta_of(1);

	reopen(env);
	m.size = 0;
	assert_int_equal(journal_put(env->j, 1, "empty", &m), 0);
	m.size = 5000;
	assert_int_equal(journal_put(env->j, 2, "five", &m), 0);
	m.size = 6000;
	assert_int_equal(journal_put(env->j, 2, "five", &m), 0);

	reopen(env);
	assert_int_equal(env->seen.count, 2);
	assert_int_equal(env->seen.meta[0].size, 0);
	assert_int_equal(env->seen.meta[1].size, 6000);
	assert_int_equal(header_version(env), JOURNAL_FORMAT_VERSION);
	/* The compaction kept the sizes. */
	reopen(env);
	assert_int_equal(env->seen.meta[0].size, 0);
	assert_int_equal(env->seen.meta[1].size, 6000);
}

static void test_journal_replays_version_1(void **state)
{
	struct env *env = *state;
	uint64_t seq = 1;

	append_v1_put(env, 1, "a", 1);
	append_v1_put(env, 2, "b", 2);
	append_record(env, 1, REC_DONE, &seq, sizeof(seq), NULL, 0);
	assert_int_equal(header_version(env), 1);

	reopen(env);
	assert_int_equal(env->seen.count, 1);
	assert_int_equal(env->seen.seq[0], 2);
	assert_string_equal(env->seen.path[0], "b");
	assert_meta_fields(&env->seen.meta[0], 2);
	assert_true(env->seen.meta[0].size == JOURNAL_SIZE_UNKNOWN);
	/* The compaction at open rewrote it as the current version. */
	assert_int_equal(header_version(env), JOURNAL_FORMAT_VERSION);

	put(env, 3, "c", 3);
	reopen(env);
	assert_int_equal(env->seen.count, 2);
	assert_true(env->seen.meta[0].size == JOURNAL_SIZE_UNKNOWN);
	assert_entry(env, 1, 3, "c", 3);
}

static void test_journal_version_1_uncompacted(void **state)
{
	struct env *env = *state;
	struct type_counts counts;
	char new_path[128];

	append_v1_put(env, 1, "a", 1);
	/* A folder in the way of journal.new makes the compaction fail. */
	snprintf(new_path, sizeof(new_path), "%s.new", env->path);
	assert_int_equal(mkdir(new_path, 0700), 0);
	reopen(env);
	assert_int_equal(env->seen.count, 1);
	assert_int_equal(header_version(env), 1);
	put(env, 2, "b", 2);
	assert_int_equal(journal_rename(env->j, 3, 0, "b", "z"), 0);
	assert_int_equal(journal_done(env->j, 3), 0);
	journal_close(env->j);
	env->j = NULL;

	/* Only record types of version 1 went to the version 1 file. */
	counts = count_types_v1(env);
	assert_int_equal(counts.n[REC_PUT], 2);
	assert_int_equal(counts.n[REC_PUT_SIZE], 0);
	assert_int_equal(counts.n[REC_RENAME], 0);

	assert_int_equal(rmdir(new_path), 0);
	reopen(env);
	assert_int_equal(env->seen.count, 2);
	assert_true(env->seen.meta[0].size == JOURNAL_SIZE_UNKNOWN);
	assert_true(env->seen.meta[1].size == JOURNAL_SIZE_UNKNOWN);
	assert_meta_fields(&env->seen.meta[1], 2);
	assert_int_equal(header_version(env), JOURNAL_FORMAT_VERSION);
}

static void test_journal_max_seq(void **state)
{
	struct env *env = *state;

	reopen(env);
	assert_int_equal(journal_max_seq(env->j), 0);
	put(env, 3, "a", 1);
	put(env, 7, "b", 2);
	assert_int_equal(journal_max_seq(env->j), 7);
	assert_int_equal(journal_done(env->j, 7), 0);
	assert_int_equal(journal_max_seq(env->j), 7);

	reopen(env);
	assert_int_equal(journal_max_seq(env->j), 7);
	assert_int_equal(env->seen.count, 1);
	assert_entry(env, 0, 3, "a", 1);

	/* A MOVE or DONE of an unknown seq still counts as used. */
	assert_int_equal(journal_move(env->j, 9, "c"), 0);
	assert_int_equal(journal_max_seq(env->j), 9);
	assert_int_equal(journal_done(env->j, 12), 0);
	reopen(env);
	assert_int_equal(journal_max_seq(env->j), 12);
}

static void test_journal_compaction_shrinks(void **state)
{
	struct env *env = *state;
	char path[64];

	reopen(env);
	for (uint64_t seq = 1; seq <= 2000; seq++) {
		snprintf(path, sizeof(path), "dir/file-%llu",
			 (unsigned long long)seq);
		put(env, seq, path, 1);
		assert_int_equal(journal_done(env->j, seq), 0);
	}
	put(env, 2001, "kept", 5);
	assert_true(file_size(env->path) > 100000);

	reopen(env);
	assert_int_equal(env->seen.count, 1);
	assert_entry(env, 0, 2001, "kept", 5);
	assert_int_equal(journal_max_seq(env->j), 2001);
	/* The header and one PUT with its 16-byte record header. */
	assert_int_equal(file_size(env->path),
			 HEADER_SIZE + 16 + PUT_SIZE_FIXED + strlen("kept"));
}

/* A valid origin path of len bytes: names of 99 letters joined by '/'. */
static char *long_path(size_t len)
{
	char *p = malloc(len + 1);

	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = i % 100 == 99 && i + 1 < len ? '/' : 'a' + i % 26;
	p[len] = '\0';
	return p;
}

static void test_journal_long_paths(void **state)
{
	struct env *env = *state;
	char *longest = long_path(PATH_MAX - 1);
	char *too_long = long_path(PATH_MAX);
	char name_max[NAME_MAX + 2];
	struct origin_attr m = meta_of(1);

	memset(name_max, 'n', NAME_MAX + 1);
	name_max[NAME_MAX + 1] = '\0';
	reopen(env);
	assert_int_equal(journal_put(env->j, 1, longest, &m), 0);
	assert_int_equal(journal_put(env->j, 2, longest + 1, &m), 0);
	assert_int_equal(journal_put(env->j, 3, too_long, &m), -ENAMETOOLONG);
	assert_int_equal(journal_move(env->j, 2, too_long), -ENAMETOOLONG);
	assert_int_equal(journal_put(env->j, 4, name_max, &m), -ENAMETOOLONG);
	name_max[NAME_MAX] = '\0';
	assert_int_equal(journal_put(env->j, 5, name_max, &m), 0);

	reopen(env);
	assert_int_equal(env->seen.count, 3);
	assert_entry(env, 0, 1, longest, 1);
	assert_entry(env, 1, 2, longest + 1, 1);
	assert_entry(env, 2, 5, name_max, 1);
	free(longest);
	free(too_long);
}

/* Appends reject what replay would take for damage. */
static void test_journal_append_rejects_invalid(void **state)
{
	static const char *const paths[] = {
		"", "/a", "a/", "a//b", ".", "..", "../up", "a/./b", "a/../b",
	};
	struct env *env = *state;
	struct origin_attr m = meta_of(1);

	reopen(env);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (journal_put(env->j, 1, paths[i], &m) != -EINVAL)
			fail_msg("journal_put of '%s' not rejected", paths[i]);
		if (journal_move(env->j, 1, paths[i]) != -EINVAL)
			fail_msg("journal_move to '%s' not rejected", paths[i]);
	}
	assert_int_equal(journal_put(env->j, 0, "a", &m), -EINVAL);
	assert_int_equal(journal_put(env->j, JOURNAL_SEQ_MAX + 1, "a", &m),
			 -EINVAL);
	assert_int_equal(journal_done(env->j, 0), -EINVAL);
	assert_int_equal(journal_done(env->j, UINT64_MAX), -EINVAL);
	assert_int_equal(journal_move(env->j, 0, "a"), -EINVAL);
	m.mtime.tv_nsec = 1000000000;
	assert_int_equal(journal_put(env->j, 1, "a", &m), -EINVAL);
	assert_int_equal(journal_max_seq(env->j), 1);
	m.mtime.tv_nsec = 999999999;
	assert_int_equal(journal_put(env->j, JOURNAL_SEQ_MAX, "a", &m), 0);

	reopen(env);
	assert_int_equal(env->seen.count, 1);
	assert_int_equal(env->seen.seq[0], JOURNAL_SEQ_MAX);
	assert_int_equal(env->seen.meta[0].mtime.tv_nsec, 999999999);
	assert_int_equal(journal_max_seq(env->j), JOURNAL_SEQ_MAX);
}

/* The fixed part of a PUT record as journal.c lays it out. */
struct raw_put {
	uint64_t seq;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint32_t mode, uid, gid, valid;
	uint32_t path_len;
};

/* Append a PUT record of seq and path with the given nanoseconds. */
static void append_raw_put(struct env *env, uint64_t seq, uint32_t nsec,
			   const char *path)
{
	struct raw_put r = {
		.seq = seq, .mtime_sec = 0x6553f100, .mtime_nsec = nsec,
		.mode = 0x5b0007, .uid = 1000, .gid = 1000, .valid = 15,
		.path_len = strlen(path),
	};
	char buf[sizeof(r) + 64];

	assert_int_equal(sizeof(r), PUT_FIXED);
	assert_true(strlen(path) <= 64);
	memcpy(buf, &r, sizeof(r));
	memcpy(buf + sizeof(r), path, strlen(path));
	append_raw(env, REC_PUT, buf, sizeof(r) + strlen(path));
}

/*
 * A record with a valid checksum that no append makes ends the replay
 * like a torn one, so no entry names a path outside the origin, a seq
 * that would wrap, or an invalid time.  The first case is the record
 * the fuzzer of the journal found: a PUT of "first" with 0x81a4cd15
 * nanoseconds.
 */
static void test_journal_invalid_record_ends_replay(void **state)
{
	static const struct {
		uint64_t seq;
		uint32_t nsec;
		const char *path;
		uint64_t max_seq;	/* a seq in range counts as used */
	} puts[] = {
		{ 5, 0x81a4cd15, "first", 5 },
		{ 5, 1000000000, "first", 5 },
		{ 5, 0, "../up", 5 },
		{ 5, 0, "/etc/passwd", 5 },
		{ 5, 0, "a//b", 5 },
		{ 5, 0, "a/", 5 },
		{ 0, 0, "zero", 1 },
		{ UINT64_MAX, 0, "wraps", 1 },
		{ JOURNAL_SEQ_MAX + 1, 0, "above", 1 },
	};
	struct env *env = *state;
	uint64_t done_seq = 1;

	for (size_t i = 0; i < sizeof(puts) / sizeof(puts[0]); i++) {
		unlink(env->path);
		reopen(env);
		put(env, 1, "a", 1);
		journal_close(env->j);
		env->j = NULL;
		append_raw_put(env, puts[i].seq, puts[i].nsec, puts[i].path);
		append_raw(env, REC_DONE, &done_seq, sizeof(done_seq));

		reopen(env);
		if (env->seen.count != 1)
			fail_msg("case %zu: %zu entries", i, env->seen.count);
		assert_entry(env, 0, 1, "a", 1);
		assert_int_equal(journal_max_seq(env->j), puts[i].max_seq);
		assert_int_equal(file_size(env->path),
				 HEADER_SIZE + 16 + PUT_SIZE_FIXED + 1);
	}
}

static void test_journal_invalid_move_and_done(void **state)
{
	struct env *env = *state;
	struct {
		uint64_t seq;
		uint32_t path_len;
		uint32_t pad;
		char path[8];
	} move = { .seq = 1, .path_len = 5 };
	uint64_t done_seq = JOURNAL_SEQ_MAX + 1;

	assert_int_equal(offsetof(__typeof__(move), path), MOVE_FIXED);
	memcpy(move.path, "../up", 5);
	reopen(env);
	put(env, 1, "a", 1);
	journal_close(env->j);
	env->j = NULL;
	append_raw(env, REC_MOVE, &move, MOVE_FIXED + 5);
	reopen(env);
	assert_int_equal(env->seen.count, 1);
	assert_entry(env, 0, 1, "a", 1);

	journal_close(env->j);
	env->j = NULL;
	append_raw(env, REC_DONE, &done_seq, sizeof(done_seq));
	reopen(env);
	assert_int_equal(env->seen.count, 1);
	assert_int_equal(journal_max_seq(env->j), 1);
}

/*
 * Limit the size of the files this process writes to bytes, or lift the
 * limit with RLIM_INFINITY.  A write that would pass the limit writes
 * what fits and then fails with EFBIG, as a write on a full disk writes
 * what fits and then fails with ENOSPC.
 */
static void limit_file_size(rlim_t bytes)
{
	struct rlimit rl = { bytes, RLIM_INFINITY };

	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

static void test_journal_short_write_leaves_no_torn_record(void **state)
{
	struct env *env = *state;
	struct origin_attr m = meta_of(2);
	off_t before;

	reopen(env);
	put(env, 1, "a", 1);
	before = file_size(env->path);
	/* Half of the next PUT fits. */
	limit_file_size(before + (PUT_SIZE_FIXED + 8) / 2);
	assert_int_equal(journal_put(env->j, 2, "lost/b", &m), -EFBIG);
	limit_file_size(RLIM_INFINITY);
	assert_int_equal(file_size(env->path), before);
	assert_true(journal_lost(env->j));
	/* Appends after the failed one must survive a replay. */
	put(env, 3, "c", 3);
	reopen(env);
	assert_int_equal(env->seen.count, 2);
	assert_entry(env, 0, 1, "a", 1);
	assert_entry(env, 1, 3, "c", 3);
}

static void test_journal_rewrite_after_failed_append(void **state)
{
	struct env *env = *state;
	struct origin_attr m = meta_of(1);

	reopen(env);
	put(env, 1, "a", 1);
	put(env, 2, "b", 2);
	limit_file_size(file_size(env->path));
	assert_int_equal(journal_done(env->j, 1), -EFBIG);
	limit_file_size(RLIM_INFINITY);
	/* The caller's state, in which seq 1 is done. */
	assert_int_equal(journal_rewrite_begin(env->j), 0);
	m = meta_of(2);
	assert_int_equal(journal_put(env->j, 2, "b", &m), 0);
	assert_int_equal(journal_rewrite_end(env->j, 1), 0);
	assert_false(journal_lost(env->j));
	reopen(env);
	assert_int_equal(env->seen.count, 1);
	assert_entry(env, 0, 2, "b", 2);
}

static void test_journal_rewrite_fails_when_full(void **state)
{
	struct env *env = *state;
	struct origin_attr m = meta_of(1);

	reopen(env);
	put(env, 1, "a", 1);
	limit_file_size(file_size(env->path));
	assert_int_equal(journal_done(env->j, 1), -EFBIG);
	/* The new file has room for its header only. */
	assert_int_equal(journal_rewrite_begin(env->j), 0);
	assert_int_equal(journal_put(env->j, 2, "a-much-longer-path", &m),
			 -EFBIG);
	assert_int_equal(journal_rewrite_end(env->j, 1), -EFBIG);
	limit_file_size(RLIM_INFINITY);
	assert_true(journal_lost(env->j));
	reopen(env);
	assert_int_equal(env->seen.count, 1);
	assert_entry(env, 0, 1, "a", 1);
}

/*
 * A RENAME without its DONE survives reopens until it is done, and moves
 * the older pending files at and below its `from` to `to`, as the
 * rename would have.  Files written after it and a rename that ended
 * stay as they are.
 */
static void test_journal_interrupted_rename(void **state)
{
	struct env *env = *state;
	const struct journal_rename *list;
	size_t count;

	reopen(env);
	put(env, 1, "dir/a.bin", 1);
	put(env, 2, "dir/sub/b.bin", 2);
	put(env, 3, "dirx/c.bin", 3);
	assert_int_equal(journal_rename(env->j, 4, 0, "dir", "new"), 0);
	put(env, 5, "dir/d.bin", 5);
	assert_int_equal(journal_rename(env->j, 6, 0, "x", "y"), 0);
	assert_int_equal(journal_done(env->j, 6), 0);

	for (int round = 0; round < 2; round++) {
		reopen(env);
		assert_int_equal(env->seen.count, 4);
		assert_string_equal(env->seen.path[0], "new/a.bin");
		assert_string_equal(env->seen.path[1], "new/sub/b.bin");
		assert_string_equal(env->seen.path[2], "dirx/c.bin");
		assert_string_equal(env->seen.path[3], "dir/d.bin");
		list = journal_renames(env->j, &count);
		assert_int_equal(count, 1);
		assert_int_equal(list[0].seq, 4);
		assert_string_equal(list[0].from, "dir");
		assert_string_equal(list[0].to, "new");
	}

	assert_int_equal(journal_done(env->j, 4), 0);
	reopen(env);
	journal_renames(env->j, &count);
	assert_int_equal(count, 0);
	assert_int_equal(env->seen.count, 4);
	assert_string_equal(env->seen.path[0], "new/a.bin");
}

/*
 * The pending file that an interrupted rename replaces is dropped, also
 * when its seq is larger than that of the file moved over it, and the
 * moved file takes its path.
 */
static void test_journal_interrupted_rename_replaces(void **state)
{
	struct env *env = *state;
	const struct journal_rename *list;
	size_t count;

	reopen(env);
	put(env, 1, "a.tmp", 1);
	put(env, 2, "a.bin", 2);
	assert_int_equal(journal_rename(env->j, 3, 2, "a.tmp", "a.bin"), 0);

	for (int round = 0; round < 2; round++) {
		reopen(env);
		assert_int_equal(env->seen.count, 1);
		assert_int_equal(env->seen.seq[0], 1);
		assert_string_equal(env->seen.path[0], "a.bin");
		assert_meta(&env->seen.meta[0], 1);
		list = journal_renames(env->j, &count);
		assert_int_equal(count, 1);
		assert_int_equal(list[0].replaced, 2);
	}
}

/* The fixed part of a RENAME record as journal.c lays it out. */
struct raw_rename {
	uint64_t seq;
	uint64_t replaced;
	uint32_t from_len;
	uint32_t to_len;
};

/* Append a RENAME record of from to to. */
static void append_raw_rename(struct env *env, uint64_t seq,
			      uint64_t replaced, const char *from,
			      const char *to)
{
	struct raw_rename r = {
		.seq = seq, .replaced = replaced,
		.from_len = strlen(from), .to_len = strlen(to),
	};
	char buf[sizeof(r) + 128];

	assert_int_equal(sizeof(r), RENAME_FIXED);
	assert_true(strlen(from) <= 64 && strlen(to) <= 64);
	memcpy(buf, &r, sizeof(r));
	memcpy(buf + sizeof(r), from, strlen(from));
	memcpy(buf + sizeof(r) + strlen(from), to, strlen(to));
	append_raw(env, REC_RENAME, buf, sizeof(r) + strlen(from) +
		   strlen(to));
}

/* A RENAME record with a valid checksum that no append makes ends the
 * replay there, as an invalid PUT does, and is not listed. */
static void test_journal_invalid_rename_ends_replay(void **state)
{
	static const struct {
		uint64_t seq, replaced;
		const char *from, *to;
	} renames[] = {
		{ 0, 0, "a", "b" },
		{ JOURNAL_SEQ_MAX + 1, 0, "a", "b" },
		{ UINT64_MAX, 0, "a", "b" },
		{ 5, 5, "a", "b" },
		{ 5, 6, "a", "b" },
		{ 5, 0, "../up", "b" },
		{ 5, 0, "a", "/etc/passwd" },
		{ 5, 0, "a", "b//c" },
		{ 5, 0, "", "b" },
		{ 5, 0, "a", "" },
		{ 5, 0, "a", "a" },
	};
	struct env *env = *state;
	uint64_t done_seq = 1;
	size_t count;

	for (size_t i = 0; i < sizeof(renames) / sizeof(renames[0]); i++) {
		unlink(env->path);
		reopen(env);
		put(env, 1, "a", 1);
		journal_close(env->j);
		env->j = NULL;
		append_raw_rename(env, renames[i].seq, renames[i].replaced,
				  renames[i].from, renames[i].to);
		append_raw(env, REC_DONE, &done_seq, sizeof(done_seq));

		reopen(env);
		if (env->seen.count != 1)
			fail_msg("case %zu: %zu entries", i, env->seen.count);
		assert_entry(env, 0, 1, "a", 1);
		journal_renames(env->j, &count);
		if (count != 0)
			fail_msg("case %zu: %zu renames listed", i, count);
		assert_int_equal(file_size(env->path),
				 HEADER_SIZE + 16 + PUT_SIZE_FIXED + 1);
	}
}

/* journal_rename() rejects what replay would take for damage, and keeps
 * no rename it rejected. */
static void test_journal_rename_rejects_invalid(void **state)
{
	static const char *const paths[] = {
		"", "/a", "a/", "a//b", ".", "..", "../up", "a/./b",
	};
	struct env *env = *state;
	size_t count;

	reopen(env);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (journal_rename(env->j, 2, 0, paths[i], "ok") != -EINVAL)
			fail_msg("rename from '%s' not rejected", paths[i]);
		if (journal_rename(env->j, 2, 0, "ok", paths[i]) != -EINVAL)
			fail_msg("rename to '%s' not rejected", paths[i]);
	}
	assert_int_equal(journal_rename(env->j, 0, 0, "a", "b"), -EINVAL);
	assert_int_equal(journal_rename(env->j, JOURNAL_SEQ_MAX + 1, 0, "a",
					"b"), -EINVAL);
	assert_int_equal(journal_rename(env->j, 2, 2, "a", "b"), -EINVAL);
	assert_int_equal(journal_rename(env->j, 2, 0, "a", "a"), -EINVAL);
	journal_renames(env->j, &count);
	assert_int_equal(count, 0);

	reopen(env);
	assert_int_equal(env->seen.count, 0);
	journal_renames(env->j, &count);
	assert_int_equal(count, 0);
}

/*
 * A rewrite from the caller's state keeps the renames in progress, also
 * one whose RENAME record could not be appended, and drops those that
 * ended.  The caller's PUTs carry the paths after the renames, and the
 * replay of the rewritten file does not move them again.
 */
static void test_journal_rewrite_keeps_renames(void **state)
{
	struct env *env = *state;
	const struct journal_rename *list;
	struct origin_attr m;
	size_t count;

	reopen(env);
	put(env, 1, "dir/a", 1);
	put(env, 2, "new", 2);
	assert_int_equal(journal_rename(env->j, 3, 0, "x", "y"), 0);
	assert_int_equal(journal_done(env->j, 3), 0);
	limit_file_size(file_size(env->path));
	assert_int_equal(journal_rename(env->j, 4, 2, "dir", "new"), -EFBIG);
	limit_file_size(RLIM_INFINITY);
	assert_true(journal_lost(env->j));
	list = journal_renames(env->j, &count);
	assert_int_equal(count, 1);
	assert_int_equal(list[0].seq, 4);

	/* The caller's state after the rename moved seq 1 and dropped seq
	 * 2, and a file closed under dir since. */
	assert_int_equal(journal_rewrite_begin(env->j), 0);
	m = meta_of(1);
	assert_int_equal(journal_put(env->j, 1, "new/a", &m), 0);
	m = meta_of(5);
	assert_int_equal(journal_put(env->j, 5, "dir/b", &m), 0);
	assert_int_equal(journal_rewrite_end(env->j, 1), 0);
	assert_false(journal_lost(env->j));

	for (int round = 0; round < 2; round++) {
		reopen(env);
		assert_int_equal(env->seen.count, 2);
		assert_entry(env, 0, 1, "new/a", 1);
		assert_entry(env, 1, 5, "dir/b", 5);
		list = journal_renames(env->j, &count);
		assert_int_equal(count, 1);
		assert_int_equal(list[0].seq, 4);
		assert_int_equal(list[0].replaced, 2);
		assert_string_equal(list[0].from, "dir");
		assert_string_equal(list[0].to, "new");
		assert_int_equal(journal_max_seq(env->j), 5);
	}

	/* Once done, the next rewrite leaves it out. */
	assert_int_equal(journal_done(env->j, 4), 0);
	assert_int_equal(journal_rewrite_begin(env->j), 0);
	m = meta_of(1);
	assert_int_equal(journal_put(env->j, 1, "new/a", &m), 0);
	assert_int_equal(journal_rewrite_end(env->j, 1), 0);
	reopen(env);
	assert_int_equal(env->seen.count, 1);
	assert_entry(env, 0, 1, "new/a", 1);
	journal_renames(env->j, &count);
	assert_int_equal(count, 0);
}

/*
 * A rename moves only the pending files that the journal lists before
 * its RENAME record, and reopening (which compacts the journal) moves
 * none of them again.  The case the fuzzer of the journal found: seq 5
 * moved from dir/c to new/c by rename 20, which a compacted journal
 * then replayed through the older rename 7 of new/c to a.
 */
static void test_journal_renames_in_record_order(void **state)
{
	struct env *env = *state;
	size_t count;

	reopen(env);
	put(env, 5, "dir/c", 5);
	assert_int_equal(journal_rename(env->j, 7, 0, "new/c", "a"), 0);
	assert_int_equal(journal_rename(env->j, 20, 0, "dir", "new"), 0);
	put(env, 21, "dir/d", 1);

	for (int round = 0; round < 3; round++) {
		reopen(env);
		assert_int_equal(env->seen.count, 2);
		assert_entry(env, 0, 5, "new/c", 5);
		assert_entry(env, 1, 21, "dir/d", 1);
		journal_renames(env->j, &count);
		assert_int_equal(count, 2);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_journal_append_and_replay,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_torn_last_record,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_garbage_tail,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_journal_malformed_record_ends_replay, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_journal_replay_idempotent,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_unknown_version,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_max_seq, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_journal_records_size,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_replays_version_1,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_journal_version_1_uncompacted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_compaction_shrinks,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_journal_short_write_leaves_no_torn_record, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_journal_rewrite_after_failed_append, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_journal_rewrite_fails_when_full, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_journal_append_rejects_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_journal_invalid_record_ends_replay, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_journal_invalid_move_and_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_long_paths, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_journal_interrupted_rename,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_journal_interrupted_rename_replaces, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_journal_invalid_rename_ends_replay, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_journal_rename_rejects_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_journal_rewrite_keeps_renames, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_journal_renames_in_record_order, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
