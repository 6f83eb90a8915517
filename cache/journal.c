/* journal.c - the records of the write-back journal over a record log. */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "htab.h"
#include "log.h"
#include "recordlog.h"

/*
 * Not locked: the callers serialize every call on one journal (the engine
 * calls it under its lock).
 */

#define JOURNAL_MAGIC "NEARFSJL"
#define JOURNAL_PARAM 0u

/*
 * Version 1 wrote REC_PUT records, version 2 writes REC_PUT_SIZE, which
 * adds the size of dirty/SEQ, and version 3 adds REC_RENAME.  A version 1
 * journal replays with sizes unknown, and the compaction at open
 * rewrites an older journal as the current version.  Until then (when
 * that compaction fails) new records go to it in its own version's
 * records, so that the nearfs version that wrote it can still replay it.
 */
#define JOURNAL_OLDEST_VERSION 1

enum record_type {
	REC_PUT = 1,
	REC_MOVE,
	REC_DONE,
	REC_PUT_SIZE,
	REC_RENAME,
};

/* Fixed part of a PUT record.  The path follows: path_len bytes, no NUL. */
struct put_record {
	uint64_t seq;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint32_t mode, uid, gid, valid;
	uint32_t path_len;
};

/* Fixed part of a PUT_SIZE record: a PUT with the bytes of dirty/SEQ
 * (JOURNAL_SIZE_UNKNOWN for an entry replayed from REC_PUT).  The path
 * follows as in PUT. */
struct put_size_record {
	struct put_record put;
	uint64_t size;
};

/* Fixed part of a MOVE record.  The path follows as in PUT. */
struct move_record {
	uint64_t seq;
	uint32_t path_len;
	uint32_t pad;
};

/* Fixed part of a RENAME record.  The two paths follow, no NULs. */
struct rename_record {
	uint64_t seq;
	uint64_t replaced;
	uint32_t from_len;
	uint32_t to_len;
};

struct journal {
	struct recordlog *log;
	uint64_t max_seq;
	/* Renames without a DONE, in seq order: those replayed at open and
	 * those journal_rename() started since.  A rewrite keeps them. */
	struct journal_rename *renames;
	size_t nrenames, renames_cap;
};

/* One pending upload while the journal is replayed. */
struct pending {
	uint64_t seq;
	char *path;
	struct origin_attr meta;
	bool replaced;		/* by a rename in progress: not reported */
};

struct replay_state {
	struct htab map;	/* seq in hex -> struct pending */
	struct htab renames;	/* seq in hex -> struct journal_rename */
	uint64_t max_seq;
	int error;		/* -ENOMEM while replaying, or 0 */
};

static const struct recordlog_kind journal_kind = {
	.magic = JOURNAL_MAGIC,
	.version = JOURNAL_FORMAT_VERSION,
	.oldest_version = JOURNAL_OLDEST_VERSION,
	.what = "write-back journal",
	.fix = "the pending uploads it lists are kept; use the nearfs "
	       "version that wrote it to upload them, or move the cache "
	       "folder away",
};

static void seq_key(uint64_t seq, char key[17])
{
	snprintf(key, 17, "%" PRIx64, seq);
}

static void pending_free(struct pending *p)
{
	if (!p)
		return;
	free(p->path);
	free(p);
}

static bool seq_valid(uint64_t seq)
{
	return seq >= 1 && seq <= JOURNAL_SEQ_MAX;
}

/* Copy len bytes of src into a string, or return NULL if they are not a
 * valid origin path or cannot be allocated (then *error is -ENOMEM). */
static char *path_dup(const char *src, uint32_t len, int *error)
{
	char *path;

	if (len == 0 || memchr(src, '\0', len))
		return NULL;
	path = strndup(src, len);
	if (!path) {
		*error = -ENOMEM;
		return NULL;
	}
	if (origin_path_check(path) < 0) {
		free(path);
		return NULL;
	}
	return path;
}

/* Replay a PUT record, or a PUT_SIZE record when sized is set. */
static int replay_put(struct replay_state *st, const char *p, uint32_t len,
		      bool sized)
{
	size_t fixed = sized ? sizeof(struct put_size_record) :
			       sizeof(struct put_record);
	uint64_t size = JOURNAL_SIZE_UNKNOWN;
	struct put_record r;
	struct pending *e;
	char key[17];
	int error = 0;

	if (len < fixed)
		return -EINVAL;
	memcpy(&r, p, sizeof(r));
	if (sized)
		memcpy(&size, p + offsetof(struct put_size_record, size),
		       sizeof(size));
	if (fixed + (uint64_t)r.path_len != len || !seq_valid(r.seq))
		return -EINVAL;
	/* Its dirty file may exist even when the rest is invalid. */
	if (r.seq > st->max_seq)
		st->max_seq = r.seq;
	if (r.mtime_nsec >= 1000000000)
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		goto out_nomem;
	e->path = path_dup(p + fixed, r.path_len, &error);
	if (!e->path) {
		free(e);
		if (error)
			goto out_nomem;
		return -EINVAL;
	}
	e->seq = r.seq;
	e->meta.mode = r.mode;
	e->meta.uid = r.uid;
	e->meta.gid = r.gid;
	e->meta.valid = r.valid;
	e->meta.mtime.tv_sec = r.mtime_sec;
	e->meta.mtime.tv_nsec = r.mtime_nsec;
	e->meta.size = size;
	seq_key(r.seq, key);
	pending_free(htab_remove(&st->map, key));
	if (htab_put(&st->map, key, e) < 0) {
		pending_free(e);
		goto out_nomem;
	}
	return 0;
out_nomem:
	/* Returning an error would cut the file here, so fail the open
	 * instead and leave the file as it is. */
	st->error = -ENOMEM;
	return 0;
}

static int replay_move(struct replay_state *st, const char *p, uint32_t len)
{
	struct move_record r;
	struct pending *e;
	char key[17], *path;
	int error = 0;

	if (len < sizeof(r))
		return -EINVAL;
	memcpy(&r, p, sizeof(r));
	if (sizeof(r) + (uint64_t)r.path_len != len || !seq_valid(r.seq))
		return -EINVAL;
	if (r.seq > st->max_seq)
		st->max_seq = r.seq;
	path = path_dup(p + sizeof(r), r.path_len, &error);
	if (!path) {
		if (!error)
			return -EINVAL;
		st->error = error;
		return 0;
	}
	seq_key(r.seq, key);
	e = htab_get(&st->map, key);
	if (!e) {
		free(path);
		return 0;
	}
	free(e->path);
	e->path = path;
	return 0;
}

static void rename_free(struct journal_rename *r)
{
	if (!r)
		return;
	free(r->from);
	free(r->to);
	free(r);
}

/* The path that path has after a rename of from to to, or NULL when the
 * rename leaves it alone.  *error is -ENOMEM when it cannot be allocated. */
static char *renamed_path(const char *path, const char *from, const char *to,
			  int *error)
{
	size_t len = strlen(from);
	char *moved;

	if (strncmp(path, from, len) != 0 ||
	    (path[len] != '\0' && path[len] != '/'))
		return NULL;
	if (asprintf(&moved, "%s%s", to, path + len) < 0) {
		*error = -ENOMEM;
		return NULL;
	}
	return moved;
}

struct rename_move {
	const struct journal_rename *rn;
	struct replay_state *st;
};

static void move_one(void *arg, const char *key, void *value)
{
	struct rename_move *m = arg;
	struct pending *p = value;
	int error = 0;
	char *moved;

	if (p->seq > m->rn->seq)
		return;
	moved = renamed_path(p->path, m->rn->from, m->rn->to, &error);
	if (error)
		m->st->error = error;
	if (!moved)
		return;
	if (origin_path_check(moved) < 0) {
		/* Too long below `to`: the rename failed there. */
		free(moved);
		return;
	}
	free(p->path);
	p->path = moved;
}

/*
 * Do to the pending files that the journal lists before the RENAME record
 * of rn what the rename would have done: move those at or below its
 * `from` to `to`.  Files closed after it keep their paths, and so do the
 * PUT records that a rewrite writes after its RENAME records.
 */
static void move_pending(struct replay_state *st,
			 const struct journal_rename *rn)
{
	struct rename_move m = { .rn = rn, .st = st };

	htab_for_each(&st->map, move_one, &m);
}

/* Whether a rename record could come from append_rename(). */
static bool rename_valid(uint64_t seq, uint64_t replaced)
{
	return seq_valid(seq) && replaced < seq;
}

static int replay_rename(struct replay_state *st, const char *p,
			 uint32_t len)
{
	struct rename_record r;
	struct journal_rename *e;
	char key[17];
	int error = 0;

	if (len < sizeof(r))
		return -EINVAL;
	memcpy(&r, p, sizeof(r));
	if (sizeof(r) + (uint64_t)r.from_len + r.to_len != len ||
	    !rename_valid(r.seq, r.replaced))
		return -EINVAL;
	if (r.seq > st->max_seq)
		st->max_seq = r.seq;
	e = calloc(1, sizeof(*e));
	if (!e)
		goto out_nomem;
	e->seq = r.seq;
	e->replaced = r.replaced;
	e->from = path_dup(p + sizeof(r), r.from_len, &error);
	e->to = path_dup(p + sizeof(r) + r.from_len, r.to_len, &error);
	if (!e->from || !e->to || strcmp(e->from, e->to) == 0) {
		rename_free(e);
		if (error)
			goto out_nomem;
		return -EINVAL;
	}
	seq_key(r.seq, key);
	rename_free(htab_remove(&st->renames, key));
	if (htab_put(&st->renames, key, e) < 0) {
		rename_free(e);
		goto out_nomem;
	}
	move_pending(st, e);
	return 0;
out_nomem:
	/* As in replay_put(): fail the open, keep the file. */
	st->error = -ENOMEM;
	return 0;
}

static int replay_done(struct replay_state *st, const char *p, uint32_t len)
{
	uint64_t seq;
	char key[17];

	if (len != sizeof(seq))
		return -EINVAL;
	memcpy(&seq, p, sizeof(seq));
	if (!seq_valid(seq))
		return -EINVAL;
	if (seq > st->max_seq)
		st->max_seq = seq;
	seq_key(seq, key);
	pending_free(htab_remove(&st->map, key));
	rename_free(htab_remove(&st->renames, key));
	return 0;
}

static int replay_one(void *arg, uint8_t type, const char *payload,
		      uint32_t len)
{
	struct replay_state *st = arg;

	if (st->error)
		return 0;
	switch (type) {
	case REC_PUT:
		return replay_put(st, payload, len, false);
	case REC_PUT_SIZE:
		return replay_put(st, payload, len, true);
	case REC_MOVE:
		return replay_move(st, payload, len);
	case REC_DONE:
		return replay_done(st, payload, len);
	case REC_RENAME:
		return replay_rename(st, payload, len);
	}
	return -EINVAL;
}

struct pending_list {
	struct pending **items;
	size_t count;
};

static void collect_one(void *arg, const char *key, void *value)
{
	struct pending_list *list = arg;

	list->items[list->count++] = value;
}

static int compare_seq(const void *a, const void *b)
{
	const struct pending *x = *(struct pending *const *)a;
	const struct pending *y = *(struct pending *const *)b;

	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Collect the entries of map sorted by seq (items is NULL if none). */
static int sorted_pending(const struct htab *map, struct pending_list *list)
{
	list->count = 0;
	list->items = NULL;
	if (map->count == 0)
		return 0;
	list->items = calloc(map->count, sizeof(*list->items));
	if (!list->items)
		return -ENOMEM;
	htab_for_each(map, collect_one, list);
	qsort(list->items, list->count, sizeof(*list->items), compare_seq);
	return 0;
}

static int append_put(struct journal *j, uint64_t seq, const char *path,
		      const struct origin_attr *meta)
{
	size_t path_len = strlen(path);
	struct put_size_record r = {
		.put = {
			.seq = seq,
			.mtime_sec = meta->mtime.tv_sec,
			.mtime_nsec = meta->mtime.tv_nsec,
			.mode = meta->mode, .uid = meta->uid, .gid = meta->gid,
			.valid = meta->valid,
			.path_len = path_len,
		},
		.size = meta->size,
	};
	bool sized = recordlog_version(j->log) >= 2;
	size_t fixed = sized ? sizeof(r) : sizeof(r.put);
	int ret = origin_path_check(path);

	if (ret < 0)
		return ret;
	if (!seq_valid(seq) || meta->mtime.tv_nsec < 0 ||
	    meta->mtime.tv_nsec >= 1000000000)
		return -EINVAL;
	if (fixed + path_len > RECORDLOG_PAYLOAD_MAX)
		return -ENAMETOOLONG;
	return recordlog_append(j->log, sized ? REC_PUT_SIZE : REC_PUT, &r,
				fixed, path, path_len, NULL, 0);
}

static int append_rename(struct journal *j, const struct journal_rename *rn)
{
	struct rename_record r = {
		.seq = rn->seq,
		.replaced = rn->replaced,
		.from_len = strlen(rn->from),
		.to_len = strlen(rn->to),
	};
	int ret = origin_path_check(rn->from);

	if (ret == 0)
		ret = origin_path_check(rn->to);
	if (ret < 0)
		return ret;
	if (!rename_valid(rn->seq, rn->replaced) ||
	    strcmp(rn->from, rn->to) == 0)
		return -EINVAL;
	if (sizeof(r) + (size_t)r.from_len + r.to_len > RECORDLOG_PAYLOAD_MAX)
		return -ENAMETOOLONG;
	/* An older journal that the compaction at open left as it was: the
	 * nearfs version that wrote it would stop at a RENAME record. */
	if (recordlog_version(j->log) < 3)
		return 0;
	return recordlog_append(j->log, REC_RENAME, &r, sizeof(r), rn->from,
				r.from_len, rn->to, r.to_len);
}

/*
 * Rewrite the journal with the RENAME records that journal_rewrite_begin()
 * writes first, then one PUT per pending entry that no rename in
 * progress replaces.  The PUTs carry the paths after the renames, which
 * replay does not move again.  A failure keeps the old file, which
 * replays to the same entries.
 */
static void compact(struct journal *j, const char *path,
		    const struct pending_list *list)
{
	int ret = journal_rewrite_begin(j);

	for (size_t i = 0; ret == 0 && i < list->count; i++)
		if (!list->items[i]->replaced)
			ret = append_put(j, list->items[i]->seq,
					 list->items[i]->path,
					 &list->items[i]->meta);
	if (ret == 0)
		ret = journal_rewrite_end(j, 1);
	else
		journal_rewrite_end(j, 0);
	if (ret < 0)
		log_warn("failed to compact the write-back journal %s: %s. "
			 "It keeps its old records", path, strerror(-ret));
}

/*
 * recordlog_open() empties a file whose header parameter differs, which
 * would drop pending uploads.  Reject such a file instead, and leave the
 * magic and version checks to recordlog_open().
 */
static int check_param(const char *path, char *err, size_t errlen)
{
	struct {
		char magic[8];
		uint32_t version;
		uint32_t param;
	} h;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = pread(fd, &h, sizeof(h), 0);
	close(fd);
	if (n != sizeof(h) || memcmp(h.magic, JOURNAL_MAGIC, 8) != 0 ||
	    h.version < JOURNAL_OLDEST_VERSION ||
	    h.version > JOURNAL_FORMAT_VERSION || h.param == JOURNAL_PARAM)
		return 0;
	snprintf(err, errlen, "write-back journal %s has header parameter "
		 "%u, expected %u (damaged header): %s", path, h.param,
		 JOURNAL_PARAM, journal_kind.fix);
	return -EPROTO;
}

static void free_one(void *arg, const char *key, void *value)
{
	pending_free(value);
}

static void free_rename(void *arg, const char *key, void *value)
{
	rename_free(value);
}

static int compare_rename_seq(const void *a, const void *b)
{
	const struct journal_rename *x = a, *y = b;

	return (x->seq > y->seq) - (x->seq < y->seq);
}

static void free_renames(struct journal *j)
{
	for (size_t i = 0; i < j->nrenames; i++) {
		free(j->renames[i].from);
		free(j->renames[i].to);
	}
	free(j->renames);
	j->renames = NULL;
	j->nrenames = 0;
	j->renames_cap = 0;
}

/* Add a rename in progress to j->renames.  Each new rename takes a new
 * seq, so appending keeps the array in seq order once take_renames()
 * sorted the replayed ones. */
static int track_rename(struct journal *j, uint64_t seq, uint64_t replaced,
			const char *from, const char *to)
{
	struct journal_rename *rn;

	if (j->nrenames == j->renames_cap) {
		size_t cap = j->renames_cap ? 2 * j->renames_cap : 4;
		struct journal_rename *grown;

		grown = realloc(j->renames, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		j->renames = grown;
		j->renames_cap = cap;
	}
	rn = &j->renames[j->nrenames];
	rn->seq = seq;
	rn->replaced = replaced;
	rn->from = strdup(from);
	rn->to = strdup(to);
	if (!rn->from || !rn->to) {
		free(rn->from);
		free(rn->to);
		return -ENOMEM;
	}
	j->nrenames++;
	return 0;
}

static void untrack_rename(struct journal *j, uint64_t seq)
{
	for (size_t i = 0; i < j->nrenames; i++) {
		if (j->renames[i].seq != seq)
			continue;
		free(j->renames[i].from);
		free(j->renames[i].to);
		memmove(&j->renames[i], &j->renames[i + 1],
			(j->nrenames - i - 1) * sizeof(*j->renames));
		j->nrenames--;
		return;
	}
}

/* Copy one replayed rename into the journal (htab_for_each() callback). */
static void collect_rename(void *arg, const char *key, void *value)
{
	const struct journal_rename *rn = value;

	track_rename(arg, rn->seq, rn->replaced, rn->from, rn->to);
}

/* Copy the renames in progress of st into j, in seq order, and mark the
 * pending file that each replaces, which is not reported. */
static int take_renames(struct journal *j, struct replay_state *st,
			const struct pending_list *list)
{
	htab_for_each(&st->renames, collect_rename, j);
	if (j->nrenames < st->renames.count)
		return -ENOMEM;
	if (j->nrenames == 0)
		return 0;
	qsort(j->renames, j->nrenames, sizeof(*j->renames),
	      compare_rename_seq);
	for (size_t r = 0; r < j->nrenames; r++)
		for (size_t i = 0; i < list->count; i++)
			if (j->renames[r].replaced &&
			    list->items[i]->seq == j->renames[r].replaced)
				list->items[i]->replaced = true;
	return 0;
}

/* Replay path into st.  With j, open its log into j (which cuts a torn
 * tail), else read the file unchanged and describe it in scan. */
static int replay(struct journal *j, const char *path,
		  struct replay_state *st, struct recordlog_scan *scan,
		  char *err, size_t errlen)
{
	int param_changed = 0;
	int ret = check_param(path, err, errlen);

	if (ret < 0)
		return ret;
	if (j)
		ret = recordlog_open(path, &journal_kind, JOURNAL_PARAM,
				     replay_one, st, &j->log, &param_changed,
				     err, errlen);
	else
		ret = recordlog_read(path, &journal_kind, replay_one, st, scan,
				     err, errlen);
	if (ret < 0)
		return ret;
	if (st->error) {
		snprintf(err, errlen, "cannot replay the write-back journal "
			 "%s: %s", path, strerror(-st->error));
		if (j) {
			recordlog_close(j->log);
			j->log = NULL;
		}
		return st->error;
	}
	return 0;
}

/* Replay the journal at path and pass every pending file to fn; with j,
 * as journal_open() does, else as journal_read() does. */
static int replay_and_report(struct journal *j, const char *path,
			     journal_pending_fn fn, void *arg,
			     struct recordlog_scan *scan, char *err,
			     size_t errlen)
{
	struct replay_state st = { .max_seq = 0 };
	struct pending_list list = { NULL, 0 };
	struct journal unused = { 0 };
	int ret = htab_init(&st.map);

	if (ret < 0)
		return ret;
	ret = htab_init(&st.renames);
	if (ret < 0) {
		htab_release(&st.map);
		return ret;
	}
	ret = replay(j, path, &st, scan, err, errlen);
	if (ret < 0)
		goto out_release;
	ret = sorted_pending(&st.map, &list);
	if (ret == 0)
		ret = take_renames(j ? j : &unused, &st, &list);
	if (ret < 0) {
		snprintf(err, errlen, "cannot replay the write-back journal "
			 "%s: %s", path, strerror(-ret));
		if (j) {
			recordlog_close(j->log);
			free_renames(j);
		}
		free(list.items);
		goto out_release;
	}
	for (size_t i = 0; i < list.count; i++)
		if (!list.items[i]->replaced)
			fn(arg, list.items[i]->seq, list.items[i]->path,
			   &list.items[i]->meta);
	if (j) {
		j->max_seq = st.max_seq;
		compact(j, path, &list);
	}
	free(list.items);
out_release:
	free_renames(&unused);
	htab_for_each(&st.map, free_one, NULL);
	htab_release(&st.map);
	htab_for_each(&st.renames, free_rename, NULL);
	htab_release(&st.renames);
	return ret;
}

int journal_open(const char *path, journal_pending_fn fn, void *arg,
		 struct journal **out, char *err, size_t errlen)
{
	struct journal *j = calloc(1, sizeof(*j));
	int ret;

	if (!j)
		return -ENOMEM;
	ret = replay_and_report(j, path, fn, arg, NULL, err, errlen);
	if (ret < 0) {
		free(j);
		return ret;
	}
	*out = j;
	return 0;
}

int journal_read(const char *path, journal_pending_fn fn, void *arg,
		 struct recordlog_scan *scan, char *err, size_t errlen)
{
	return replay_and_report(NULL, path, fn, arg, scan, err, errlen);
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	recordlog_close(j->log);
	free_renames(j);
	free(j);
}

const struct journal_rename *journal_renames(const struct journal *j,
					     size_t *count)
{
	*count = j->nrenames;
	return j->renames;
}

uint64_t journal_max_seq(const struct journal *j)
{
	return j->max_seq;
}

/* A seq counts as used even when its record could not be written. */
static void note_seq(struct journal *j, uint64_t seq)
{
	if (seq > j->max_seq)
		j->max_seq = seq;
}

int journal_put(struct journal *j, uint64_t seq, const char *path,
		const struct origin_attr *meta)
{
	if (!seq_valid(seq))
		return -EINVAL;
	note_seq(j, seq);
	return append_put(j, seq, path, meta);
}

int journal_move(struct journal *j, uint64_t seq, const char *path)
{
	size_t path_len = strlen(path);
	struct move_record r = { .seq = seq, .path_len = path_len };
	int ret = origin_path_check(path);

	if (!seq_valid(seq))
		return -EINVAL;
	note_seq(j, seq);
	if (ret < 0)
		return ret;
	if (sizeof(r) + path_len > RECORDLOG_PAYLOAD_MAX)
		return -ENAMETOOLONG;
	return recordlog_append(j->log, REC_MOVE, &r, sizeof(r), path,
				path_len, NULL, 0);
}

int journal_rename(struct journal *j, uint64_t seq, uint64_t replaced,
		   const char *from, const char *to)
{
	struct journal_rename rn = {
		.seq = seq, .replaced = replaced,
		.from = (char *)from, .to = (char *)to,
	};
	int ret;

	if (!seq_valid(seq))
		return -EINVAL;
	note_seq(j, seq);
	/* Tracked also when the append fails, so that the next rewrite
	 * writes the record. */
	ret = append_rename(j, &rn);
	if (ret == -EINVAL || ret == -ENAMETOOLONG)
		return ret;
	if (track_rename(j, seq, replaced, from, to) < 0)
		return -ENOMEM;
	return ret;
}

int journal_done(struct journal *j, uint64_t seq)
{
	if (!seq_valid(seq))
		return -EINVAL;
	note_seq(j, seq);
	untrack_rename(j, seq);
	return recordlog_append(j->log, REC_DONE, &seq, sizeof(seq), NULL, 0,
				NULL, 0);
}

bool journal_lost(const struct journal *j)
{
	return recordlog_lost(j->log);
}

int journal_rewrite_begin(struct journal *j)
{
	int ret = recordlog_compact_begin(j->log);

	for (size_t i = 0; ret == 0 && i < j->nrenames; i++)
		ret = append_rename(j, &j->renames[i]);
	return ret;
}

int journal_rewrite_end(struct journal *j, int ok)
{
	return recordlog_compact_end(j->log, ok);
}

int journal_sync(struct journal *j)
{
	return recordlog_sync(j->log);
}
