/*
 * index.h - the persistent index of a cache folder: an append-only log.
 *
 * The file starts with a header (magic "NEARFSIX", format version, chunk
 * size) and continues with records, each with its own XXH3 checksum:
 *
 *   OBJECT     an object version: id, attributes, version, path, and
 *              when the origin last confirmed that version
 *   OBJECT_DEL the object and all its chunks are gone
 *   CHUNK      chunk N of an object is in its data file, with its checksum
 *   CHUNK_DEL  chunk N was evicted
 *   TOUCH      chunk N was used (moves it to the young end of the LRU)
 *   LENT       a read-only descriptor of the object's data file was handed
 *              to a program, so its chunks are never punched out
 *
 * Replaying the records in order rebuilds the objects, their chunks and
 * the LRU order.  A record that fails its checksum ends the replay: it is
 * the torn tail of a crash, and the file is cut there.  Data files are
 * written before their CHUNK record, without fsync: a record whose data
 * did not reach the disk fails the chunk checksum later and is refetched.
 * The log is rewritten compactly at open when mostly garbage, and at close.
 */
#ifndef NEARFS_INDEX_H
#define NEARFS_INDEX_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "origin.h"
#include "recordlog.h"

#define INDEX_FORMAT_VERSION 1

struct index;

struct index_replay {
	void *arg;
	void (*object)(void *arg, uint64_t id, const char *path,
		       const struct origin_attr *attr,
		       int64_t checked_wall_ms);
	void (*object_del)(void *arg, uint64_t id);
	void (*chunk)(void *arg, uint64_t id, uint32_t index, uint32_t len,
		      uint64_t sum);
	void (*chunk_del)(void *arg, uint64_t id, uint32_t index);
	void (*touch)(void *arg, uint64_t id, uint32_t index);
	void (*lent)(void *arg, uint64_t id);
};

/*
 * Open or create the index at path and replay it through r.  When the
 * file was written with another chunk size, *reset is set and the index
 * starts empty (the caller drops the data files).  Returns 0, or a
 * negative errno with a message in err (an unknown format version is
 * -EPROTO).
 */
int index_open(const char *path, uint32_t chunk_size,
	       const struct index_replay *r, struct index **out, int *reset,
	       char *err, size_t errlen);
void index_close(struct index *idx);

/*
 * Replay the index at path through r without changing the file (see
 * recordlog_read(): scan->param is the chunk size, scan->valid the
 * offset where the replay stopped).  Returns 0 or a negative errno with
 * a message in err.
 */
int index_read(const char *path, const struct index_replay *r,
	       struct recordlog_scan *scan, char *err, size_t errlen);
/* Read the chunk size from the header of the index at path. */
int index_read_chunk_size(const char *path, uint32_t *chunk_size, char *err,
			  size_t errlen);

/* Bytes of live records after the last replay or compaction, and the
 * file's size: the caller compacts when the file is mostly garbage. */
uint64_t index_file_size(const struct index *idx);

/*
 * Append one record.  Each returns 0 or a negative errno (-ENOSPC on a
 * full disk).  A record that could not be appended leaves the file as it
 * was, and index_lost() true until the next compaction.
 * checked_wall_ms: CLOCK_REALTIME milliseconds of the last check.
 */
int index_log_object(struct index *idx, uint64_t id, const char *path,
		     const struct origin_attr *attr, int64_t checked_wall_ms);
int index_log_object_del(struct index *idx, uint64_t id);
int index_log_chunk(struct index *idx, uint64_t id, uint32_t index,
		    uint32_t len, uint64_t sum);
int index_log_chunk_del(struct index *idx, uint64_t id, uint32_t index);
int index_log_touch(struct index *idx, uint64_t id, uint32_t index);
int index_log_lent(struct index *idx, uint64_t id);

/* Whether a record could not be appended since the index was opened or
 * last compacted: the file then differs from the engine's state until
 * store_compact() rewrites it. */
bool index_lost(const struct index *idx);

/*
 * Start writing a compact copy: later index_log_* calls go to a new file
 * until index_compact_end() replaces the log with it (fsync, rename), or
 * abandons it when ok is 0.  Returns 0 or a negative errno.
 */
int index_compact_begin(struct index *idx);
int index_compact_end(struct index *idx, int ok);

#endif
