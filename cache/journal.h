/*
 * journal.h - the write-back journal: which closed files still have to
 * be uploaded, and under which path.
 *
 * The content of a pending file lives in dirty/SEQ of the cache folder;
 * the journal maps SEQ to the origin path and the metadata to store with
 * it.  Records (over recordlog.h):
 *
 *   PUT  seq, metadata, path   dirty/SEQ is to be stored at path
 *   MOVE seq, path             a rename moved it before the upload
 *   DONE seq                   uploaded, or dropped by an unlink
 *
 * Replay is idempotent: a PUT of a known seq replaces it, a MOVE or DONE
 * of an unknown seq is ignored.  A torn last record is cut, and so is
 * everything from a record that no append makes: a seq outside 1 to
 * JOURNAL_SEQ_MAX, a path that origin_path_check() rejects, or a
 * modification time of 10^9 nanoseconds or more.  Records are written
 * without fsync; journal_sync() makes them durable.
 */
#ifndef NEARFS_JOURNAL_H
#define NEARFS_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "origin.h"
#include "recordlog.h"

#define JOURNAL_FORMAT_VERSION 1

/* The largest seq of a record, far below UINT64_MAX, so that the seq
 * after the largest one replayed never wraps to 0. */
#define JOURNAL_SEQ_MAX ((uint64_t)INT64_MAX)

struct journal;

/* Called once per pending file after replay, in increasing seq order. */
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

/* The largest seq ever replayed or written; new files use larger ones. */
uint64_t journal_max_seq(const struct journal *j);

/* Append a record.  0 or a negative errno: -EINVAL for a seq outside 1
 * to JOURNAL_SEQ_MAX, an invalid nanosecond count, or a path that
 * origin_path_check() rejects, which may also return -ENAMETOOLONG. */
int journal_put(struct journal *j, uint64_t seq, const char *path,
		const struct origin_attr *meta);
int journal_move(struct journal *j, uint64_t seq, const char *path);
int journal_done(struct journal *j, uint64_t seq);

/* fdatasync the journal.  0 or -errno. */
int journal_sync(struct journal *j);

#endif
