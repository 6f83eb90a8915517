/*
 * journal.h - the write-back journal: which closed files still have to
 * be uploaded, and under which path.
 *
 * The content of a pending file lives in dirty/SEQ of the cache folder;
 * the journal maps SEQ to the origin path and the metadata to store with
 * it.  Records (over recordlog.h):
 *
 *   PUT  seq, metadata, size, path
 *                              dirty/SEQ, of size bytes at the last
 *                              close, is to be stored at path
 *   MOVE seq, path             a rename moved it before the upload
 *   RENAME seq, replaced, from, to
 *                              a rename on the origin has started;
 *                              replaced is the seq of the pending file
 *                              at to that it replaces, or 0
 *   DONE seq                   uploaded, dropped by an unlink, or the
 *                              rename of seq ended
 *
 * The size lets `nearfs-ctl verify` check dirty/SEQ.  No checksum of
 * the content is stored, because computing one would read the whole
 * file again at every close.
 *
 * Replay is idempotent: a PUT of a known seq replaces it, a MOVE or DONE
 * of an unknown seq is ignored.  A torn last record is cut, and so is
 * everything from a record that no append makes: a seq outside 1 to
 * JOURNAL_SEQ_MAX, a path that origin_path_check() rejects, a
 * modification time of 10^9 nanoseconds or more, or a RENAME whose two
 * paths are equal or whose replaced seq is not below its own.  Records
 * are written without fsync; journal_sync() makes them durable.
 *
 * A RENAME without its DONE is a rename that a crash interrupted.  An S3
 * rename is a copy and a delete, so the origin may hold both names.
 * Replay drops the pending file that the rename replaces.  It moves to
 * `to` the pending files at and below `from` that the journal lists
 * before the RENAME record, as the rename would have, but not those
 * after it.  journal_renames() lists such renames so that the engine
 * completes them on the origin.
 *
 * RENAME records came with format version 3, which nearfs versions
 * without them refuse to open rather than cut at the first one.
 */
#ifndef NEARFS_JOURNAL_H
#define NEARFS_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "origin.h"
#include "recordlog.h"

/* Version 2 added the size to PUT.  Version 1 journals still replay. */
#define JOURNAL_FORMAT_VERSION 3

/* The size of a pending file that a version 1 journal listed. */
#define JOURNAL_SIZE_UNKNOWN UINT64_MAX

/* The largest seq of a record, far below UINT64_MAX, so that the seq
 * after the largest one replayed never wraps to 0. */
#define JOURNAL_SEQ_MAX ((uint64_t)INT64_MAX)

struct journal;

/* Called once per pending file after replay, in increasing seq order.
 * meta->size is the recorded size of dirty/SEQ, or JOURNAL_SIZE_UNKNOWN. */
typedef void (*journal_pending_fn)(void *arg, uint64_t seq,
				   const char *path,
				   const struct origin_attr *meta);

/*
 * Open or create the journal at path, replay it, and report every file
 * still pending through fn.  The journal is then rewritten with only
 * those.  Returns 0, or a negative errno with a message in err (-EPROTO
 * for an unknown format version: the file is left untouched, so no
 * pending upload is lost).
 */
int journal_open(const char *path, journal_pending_fn fn, void *arg,
		 struct journal **out, char *err, size_t errlen);
void journal_close(struct journal *j);

/*
 * Replay the journal at path and report every pending file through fn,
 * as journal_open() does, but without changing the file (see
 * recordlog_read() for scan).  Returns 0 or a negative errno with a
 * message in err.
 */
int journal_read(const char *path, journal_pending_fn fn, void *arg,
		 struct recordlog_scan *scan, char *err, size_t errlen);

/* A rename on the origin that has no DONE record yet. */
struct journal_rename {
	uint64_t seq;
	uint64_t replaced;	/* seq of the pending file it replaces, or 0 */
	char *from, *to;
};

/*
 * The renames in progress, in seq order: after journal_open() those that
 * a crash interrupted, which the caller completes and then ends with
 * journal_done().  The array belongs to the journal and is valid until
 * the next journal_rename(), journal_done() or journal_close().
 */
const struct journal_rename *journal_renames(const struct journal *j,
					     size_t *count);

/* The largest seq ever replayed or written; new files use larger ones. */
uint64_t journal_max_seq(const struct journal *j);

/* Append a record.  meta->size of a PUT is the size of dirty/SEQ.  0 or
 * a negative errno: -EINVAL for a seq outside 1 to JOURNAL_SEQ_MAX, an
 * invalid nanosecond count, or a path that origin_path_check() rejects,
 * which may also return -ENAMETOOLONG. */
int journal_put(struct journal *j, uint64_t seq, const char *path,
		const struct origin_attr *meta);
int journal_move(struct journal *j, uint64_t seq, const char *path);
/*
 * Record that a rename of from to to starts on the origin.  seq is a new
 * sequence number, which journal_done() ends.  replaced is the seq of
 * the pending file at to, or 0, and must be below seq.  The rename is
 * kept for journal_rewrite_begin() until journal_done(), also when its
 * record could not be appended (then the error is returned).  -EINVAL
 * and -ENAMETOOLONG as for journal_put(), also for from equal to to.
 */
int journal_rename(struct journal *j, uint64_t seq, uint64_t replaced,
		   const char *from, const char *to);
int journal_done(struct journal *j, uint64_t seq);

/* Whether a record could not be appended since the journal was opened
 * or last rewritten: the file then lacks records. */
bool journal_lost(const struct journal *j);

/*
 * Rewrite the journal from the caller's state.  journal_rewrite_begin()
 * starts a new file with a RENAME record for each rename in progress,
 * and journal_put() then appends to it.  Those PUTs come after the
 * RENAME records, so replay does not move them: their paths must be
 * those after the renames.  journal_rewrite_end() syncs
 * the file and renames it over the journal, or drops it when ok is 0 or
 * an append failed.  A failure keeps the old file.  Both return 0 or a
 * negative errno.
 */
int journal_rewrite_begin(struct journal *j);
int journal_rewrite_end(struct journal *j, int ok);

/* fdatasync the journal.  0 or -errno. */
int journal_sync(struct journal *j);

#endif
