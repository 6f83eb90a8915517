/*
 * cache.h - the caching engine seen from the filesystem layer.
 *
 * The engine is path based: it has no notion of inodes or of FUSE.  It
 * keeps chunked local copies of origin files under a byte budget, caches
 * attributes, "does not exist" answers and directory listings, and
 * implements the write policy.  Every function returns 0 (or a byte count)
 * on success and a negative errno on failure, and is safe to call from
 * many threads at once.
 */
#ifndef NEARFS_CACHE_H
#define NEARFS_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "origin.h"

enum write_mode {
	WRITE_THROUGH,
	WRITE_BACK,
	WRITE_AROUND,
};

struct cache_config {
	const char *dir;	/* cache_dir; one subfolder per origin */
	uint64_t size_max;	/* hard budget for cached chunk bytes */
	uint64_t min_free;	/* bytes to keep free, when min_free_pct is 0 */
	unsigned min_free_pct;	/* percent of the cache filesystem to keep free */
	uint32_t chunk_size;	/* bytes; a power of two */
	uint64_t ttl_ms;	/* data revalidation interval */
	uint64_t attr_ttl_ms;	/* attributes of files and directories */
	uint64_t neg_ttl_ms;	/* "does not exist"; 0 disables */
	uint64_t dir_ttl_ms;	/* directory listings */
	uint64_t dir_prefetch;	/* entries one recursive listing of a
				 * subtree may cover; 0 disables it */
	uint64_t dir_entries_max;	/* cached listing entries kept at
					 * most; 0 picks the default */
	uint64_t readahead;	/* bytes fetched ahead of a sequential
				 * reader, at most; 0 disables */
	enum write_mode write_mode;
	bool read_only;
	/* Write-back only. */
	uint64_t max_dirty;	/* bytes closed but not uploaded, before
				 * writers wait */
	uint64_t writeback_delay_ms;	/* quiet time before an upload */
	bool fsync_local;	/* fsync waits for the journal, not the
				 * upload */
};

struct cache_stats {
	uint64_t hits;		/* chunk reads served from the cache */
	uint64_t misses;	/* chunk reads that went to the origin */
	uint64_t bytes_from_cache;
	uint64_t bytes_from_origin;
	uint64_t bytes_zero_copy;	/* of bytes_from_cache, sent from the
					 * data file without a copy */
	uint64_t readaheads;	/* chunks queued by readahead */
	uint64_t chunks_cached;
	uint64_t bytes_cached;
	uint64_t size_max;
	uint64_t evictions;	/* chunks evicted */
	uint64_t checksum_failures;
	uint64_t cache_dir_errors;	/* writes into cache_dir that failed */
	uint64_t cache_dir_full;	/* 1 while they fail, else 0 */
	uint64_t revalidations;	/* cheap version checks made */
	uint64_t invalidations;	/* cached files dropped for a new version */
	uint64_t objects_cached;
	uint64_t origin_requests[ORIGIN_REQ_MAX];
	/* Durations of the origin requests, by kind. */
	struct origin_latency_stats latency[ORIGIN_REQ_MAX];
	uint64_t origin_errors;
	uint64_t origin_retries;
	uint64_t bytes_to_origin;	/* body bytes sent by writes */
	/* Write-back. */
	uint64_t dirty_bytes;	/* closed, not yet uploaded */
	uint64_t max_dirty;
	uint64_t uploads_pending;	/* files waiting or uploading */
	uint64_t uploads_failed;	/* pending files whose last try failed */
	uint64_t uploads_done;
	uint64_t upload_retries;
	/* cache_lend(). */
	uint64_t lends;		/* descriptors lent */
	uint64_t lends_refused;	/* requests that got no descriptor */
	/* Settings that cache_set_config() may change; size_max and
	 * max_dirty are above. */
	uint64_t ttl_ms, attr_ttl_ms, neg_ttl_ms, dir_ttl_ms;
	uint64_t min_free;	/* bytes, when min_free_pct is 0 */
	uint64_t min_free_pct;
	uint64_t writeback_delay_ms;
};

struct cache;
struct cache_file;

/*
 * Called (from any thread, without engine locks held) when the cached
 * content of path changed under the filesystem, so that the kernel's page
 * cache for it must be dropped.
 */
typedef void (*cache_invalidate_fn)(void *arg, const char *path);

/*
 * Open the cache for an origin.  The engine takes ownership of origin
 * when this succeeds.  On failure origin stays the caller's, and err
 * receives a message that names the value and the fix.
 */
int cache_open(const struct cache_config *cfg, struct origin *origin,
	       struct cache **out, char *err, size_t errlen);

/* Record in the lock of the cache folder that this daemon no longer
 * serves its mount, so that a new start waits for it to exit instead of
 * failing at once. */
void cache_mark_stopping(struct cache *c);
/* Write the index back and free everything, the origin included. */
void cache_close(struct cache *c);

void cache_set_invalidate(struct cache *c, cache_invalidate_fn fn, void *arg);

/* The folder of this origin inside cache_dir. */
const char *cache_path(const struct cache *c);
/* The settings.  Read the fields that cache_set_config() changes through
 * cache_get_config() or the accessors below instead. */
const struct cache_config *cache_config(const struct cache *c);
struct origin *cache_origin(const struct cache *c);
void cache_get_stats(struct cache *c, struct cache_stats *st);

/* Copy the settings in force, as cache_set_config() left them. */
void cache_get_config(struct cache *c, struct cache_config *out);

/*
 * Change the settings that may change while the cache is open: ttl_ms,
 * attr_ttl_ms, neg_ttl_ms, dir_ttl_ms, size_max, min_free, min_free_pct,
 * max_dirty and writeback_delay_ms are taken from cfg, and its other
 * fields are ignored.  A lower size_max evicts the least recently used
 * chunks down to it at once, except chunks being read, which go at a
 * later eviction.  A new min_free applies from the next fetch on.  A new
 * writeback_delay moves the upload time of every pending file by the
 * difference.  Returns 0, or -EINVAL with a message in err when
 * size_max, or in write-back mode max_dirty, is smaller than one chunk.
 */
int cache_set_config(struct cache *c, const struct cache_config *cfg,
		     char *err, size_t errlen);

/* attr_ttl_ms and neg_ttl_ms as they are now, read without the engine
 * lock, for the timeouts of replies to the kernel. */
uint64_t cache_attr_ttl_ms(const struct cache *c);
uint64_t cache_neg_ttl_ms(const struct cache *c);

/* Attributes of path, from the attribute cache within attr_ttl. */
int cache_getattr(struct cache *c, const char *path, struct origin_attr *attr);

/* Called once per entry.  A non-zero return stops the entries, which
 * cache_readdir() then ends with 0; the cursor calls return it. */
typedef int (*cache_readdir_fn)(void *arg, const char *name,
				const struct origin_attr *attr);

/* List a directory, from the listing cache within dir_ttl.  The entries'
 * attributes are cached too, so lookups after a listing are free. */
int cache_readdir(struct cache *c, const char *path, cache_readdir_fn fn,
		  void *arg);

/*
 * A listing cursor: the listing of one directory, fetched one origin
 * page per cache_dir_next() call where the origin lists by pages (S3),
 * else whole.  Calls on one cursor must not overlap; the caller
 * serializes them.
 */
struct cache_dir;

/*
 * Open a cursor on the directory at path.  When the listing cache
 * contains a fresh listing of it, or a listing prefetch in flight stores
 * one, fn receives its entries at once and the cursor is complete.  Sends
 * no origin request.  Returns 0, -ENOMEM or the non-zero return of fn.
 */
int cache_dir_open(struct cache *c, const char *path, cache_readdir_fn fn,
		   void *arg, struct cache_dir **out);

/*
 * Fetch the next page of the listing and pass its entries to fn, in the
 * origin's order.  After the last page, fn also receives the files
 * created here and not on the origin yet.  The complete listing is then
 * stored in the listing cache as cache_readdir() stores it, unless the
 * directory changed locally meanwhile.  Does nothing on a complete
 * cursor.  Returns
 * 0, the origin's error (the cursor stays at that page, so the next call
 * asks for it again), or the non-zero return of fn, which stops the
 * delivery of that page.
 */
int cache_dir_next(struct cache_dir *d, cache_readdir_fn fn, void *arg);

/* Whether fn has received the whole listing. */
bool cache_dir_complete(const struct cache_dir *d);

/* Free the cursor; NULL is ignored. */
void cache_dir_close(struct cache_dir *d);

/*
 * Open a file.  flags are open(2) flags: O_ACCMODE and O_TRUNC matter.
 * When ttl has passed since the file was last checked, the open checks the
 * origin's version first.  *changed is set when the cached copy was
 * dropped for a newer version, or when the cache held no copy of the
 * file: the kernel's page cache must go too, because it may contain
 * pages of a version that this cache no longer has.
 */
int cache_file_open(struct cache *c, const char *path, int flags,
		    struct cache_file **out, bool *changed);

/* Create and open an empty regular file (O_EXCL semantics are the
 * caller's, through getattr). */
int cache_file_create(struct cache *c, const char *path, mode_t mode,
		      uid_t uid, gid_t gid, struct cache_file **out);

ssize_t cache_file_read(struct cache_file *f, void *buf, size_t len,
			uint64_t offset);
/* Chunks pinned by cache_file_read_fd(); the caller's storage. */
struct cache_read_pin {
	void *obj;		/* the version, pinned too */
	uint64_t offset;
	size_t n;
};

/*
 * Zero-copy reads.  When [offset, offset + len) lies in chunks of f's
 * version that are cached and verified, pin them and the version against
 * eviction and freeing, and return 1 with the data file's descriptor in
 * *fd and the byte count at offset in *n (len, or less at the end of the
 * file); the bytes are at offset in *fd, so the caller can splice them.
 * Chunks of the range that are being fetched are waited for.  The pin
 * outlives f, so the caller may reply first, even if the kernel then
 * releases f, and must call cache_read_unpin() afterwards.  Returns 0,
 * pinning nothing, when the caller must use cache_file_read().
 */
int cache_file_read_fd(struct cache_file *f, uint64_t offset, size_t len,
		       int *fd, size_t *n, struct cache_read_pin *pin);
void cache_read_unpin(struct cache *c, struct cache_read_pin *pin);

ssize_t cache_file_write(struct cache_file *f, const void *buf, size_t len,
			 uint64_t offset);
int cache_file_truncate(struct cache_file *f, uint64_t size);
int cache_file_getattr(struct cache_file *f, struct origin_attr *attr);

/*
 * Make the origin hold what was written through f (close, flush, fsync).
 * In write-through mode the call returns after the origin stored it; when
 * the origin fails, the error is returned and the cache keeps no version
 * the origin lacks.
 */
int cache_file_commit(struct cache_file *f);

/*
 * close(2) of one descriptor of f: cache_file_commit(), except, with
 * skip_new, for a file created by f and not written yet, which a later
 * close or the release commits.  A shell redirection opens, duplicates
 * and closes the new file before the program writes to it, and skip_new
 * saves that close an upload of an empty file.  The caller sets it only
 * when another descriptor will close the file later, because an error of
 * the release reaches no program.
 */
int cache_file_flush(struct cache_file *f, bool skip_new);

/* Whether f created its file and nothing was written or committed yet. */
bool cache_file_untouched(struct cache_file *f);

/*
 * fsync(2) of f: write-through and write-around commit to the origin;
 * write-back commits to the journal and then, unless fsync_local is set,
 * uploads before returning.
 */
int cache_file_fsync(struct cache_file *f);

/* Progress of cache_flush(): files and bytes left of those it waits for. */
typedef void (*cache_flush_fn)(void *arg, uint64_t files_left,
			       uint64_t bytes_left, uint64_t bytes_total);

/*
 * Upload every closed file waiting in the write-back queue at or below
 * path ("" for all), now, and wait for them, calling fn (may be NULL)
 * about twice a second.  Returns 0 when all were uploaded, or -EIO when
 * some failed (they stay queued and are retried).  Files still open for
 * writing are not waited for.  In other write modes it returns 0.
 */
int cache_flush(struct cache *c, const char *path, cache_flush_fn fn,
		void *arg);

/* Whether the version that f reads changed on the origin since. */
bool cache_file_superseded(struct cache_file *f);

/* Drop the reference taken by open or create. */
void cache_file_release(struct cache_file *f);

/* Open a second read-only handle on what the read-only handle f reads,
 * the same version or shadow.  -EBADF for a handle open for writing,
 * -ESTALE when some of its bytes are not local: the origin may no
 * longer have them. */
int cache_file_dup(struct cache_file *f, struct cache_file **out);


/*
 * Hand the content of f, open for writing, to a program that reads and
 * writes it through a descriptor of its own instead of through f.  The
 * file's local copy (its shadow) is made to hold the whole current
 * content first: the chunks not written yet are copied in from the cached
 * version or the origin, as a commit does.  *fd receives a new O_RDWR
 * descriptor of that copy, with an open file description of its own, so
 * O_APPEND or an offset set on it affects only the caller.
 *
 * What the program writes is not seen by the engine until
 * cache_file_import(), and other readers of the path may read it before
 * that.  Returns 0 or -errno, -EBADF when f is not open for writing.
 */
int cache_file_export(struct cache_file *f, int *fd);

/*
 * Take what was written through the descriptor of cache_file_export() as
 * written through f, before cache_file_commit() or cache_file_fsync()
 * stores it by the write mode.  The size becomes the size of the local
 * copy (fstat), every chunk counts as changed, and the mtime becomes its
 * mtime.  In write-back mode the call first waits, as a write does, while
 * max_dirty is reached.  Pass last when the descriptor writes no more:
 * the commit may then move the copy into the cache instead of copying it.
 * Returns 0 or -errno, -EINVAL when f was not exported.
 */
int cache_file_import(struct cache_file *f, bool last);

/*
 * Copy the content that f reads into a new unnamed file in the cache
 * folder and store a read-only descriptor of it in *fd.  It serves
 * programs that read without the engine when no local copy can be lent:
 * the file has unsaved writes, or it does not fit in cache_size.  The
 * copy is not counted in cache_size and is freed with its last
 * descriptor.  Returns 0 or -errno, -ENOSPC when the disk is full.
 */
int cache_file_copy(struct cache_file *f, int *fd);

/* A request of cache_lend(). */
struct cache_lend_request {
	uint64_t size;		/* the version the program opened, as */
	struct timespec mtime;	/* fstat(2) of its descriptor shows it */
	uint64_t fetch_max;	/* fetch the missing chunks of files up to
				 * this size first; 0 never fetches */
	/* Whether the program may read a file with these attributes; NULL
	 * allows every file.  Called with the engine lock held, so it must
	 * not call the engine. */
	bool (*may_read)(void *arg, const struct origin_attr *attr);
	void *arg;
};

/*
 * Lend a read-only descriptor of the local copy of path, so that a
 * program can read the file without FUSE.  Only the cached version whose
 * size and mtime are those of req is lent, and only when every chunk of
 * it is cached (after fetching the missing ones, if its size is at most
 * req->fetch_max) and no handle has the file open for writing or waits
 * for its upload.  The bytes of a lent descriptor never change: eviction
 * and newer versions unlink its data file instead of changing it.
 *
 * Returns 0 with a new O_RDONLY descriptor in *fd, 0 with *fd = -1 and a
 * static phrase in *reason that explains why nothing was lent, or -errno
 * when the check or a fetch failed.
 */
int cache_lend(struct cache *c, const char *path,
	       const struct cache_lend_request *req, int *fd,
	       const char **reason);

/* setattr on a path: mode, uid, gid, mtime through `which`
 * (ORIGIN_ATTR_*), and size when set_size is true. */
int cache_setattr(struct cache *c, const char *path,
		  const struct origin_attr *attr, unsigned which,
		  bool set_size, uint64_t size);

int cache_unlink(struct cache *c, const char *path);
int cache_mkdir(struct cache *c, const char *path, mode_t mode, uid_t uid,
		gid_t gid);
int cache_rmdir(struct cache *c, const char *path);
/* Rename from to to.  When replaced is not NULL, it gets a read-only
 * handle of the regular file that the rename replaced, which the caller
 * releases, or NULL when there is none. */
int cache_rename(struct cache *c, const char *from, const char *to,
		 unsigned flags, struct cache_file **replaced);
int cache_symlink(struct cache *c, const char *target, const char *path);
int cache_readlink(struct cache *c, const char *path, char *buf,
		   size_t size);
int cache_statfs(struct cache *c, struct statvfs *st);

/* ---- operator commands (nearfs-ctl) ---- */

/* The state of a file waiting for upload. */
enum cache_upload_state {
	CACHE_UPLOAD_OPEN,	/* open for writing: waits for its close */
	CACHE_UPLOAD_QUIET,	/* waits for writeback_delay to pass */
	CACHE_UPLOAD_RETRY,	/* its last upload failed; waits to retry */
	CACHE_UPLOAD_DUE,	/* waits for an upload thread */
	CACHE_UPLOAD_SENDING,	/* being uploaded */
};

/* One file of the write-back queue, from cache_list_uploads(). */
struct cache_upload {
	char *path;
	uint64_t size;
	uint64_t age_ms;	/* since it entered the queue */
	unsigned attempts;	/* failed uploads in a row */
	int last_error;		/* -errno of the last failure, or 0 */
	/* The origin's reason for it, such as "HTTP 403 AccessDenied:
	 * Access Denied", or "". */
	char last_detail[ORIGIN_DETAIL_MAX];
	enum cache_upload_state state;
	uint64_t wait_ms;	/* QUIET and RETRY: until it is due */
};

/*
 * List the files of the write-back queue, oldest first, into a new array
 * of *count entries, which the caller frees with cache_free_uploads().
 * The list is empty in the other write modes.  Returns 0 or -ENOMEM.
 */
int cache_list_uploads(struct cache *c, struct cache_upload **out,
		       size_t *count);
void cache_free_uploads(struct cache_upload *list, size_t count);

/*
 * Fetch into the cache what the file at path lacks of [offset,
 * offset + len), as a read would, but without returning the bytes: runs
 * of missing chunks go out as one request where the origin streams.
 * Cached chunks of the range become the most recently used, and are
 * checked first if they were not since the index loaded.  *missing
 * receives the bytes of the range that are not cached at the end: the
 * fetch found no room (min_free), or other reads evicted them.  Fetched
 * chunks count as misses and bytes_from_origin in the stats.  Returns 0,
 * -EBUSY for a file whose data is not on the origin yet (open for
 * writing, or waiting for upload), -EISDIR, or the origin's error.
 */
int cache_fetch(struct cache *c, const char *path, uint64_t offset,
		uint64_t len, uint64_t *missing);

/* Progress of cache_warm(). */
struct cache_warm_progress {
	bool listing;		/* the files are still being listed: the
				 * totals count those found so far */
	uint64_t files_total, bytes_total;	/* the set being warmed */
	uint64_t files_done, bytes_done;	/* fetched, or failed */
	uint64_t files_skipped, bytes_skipped;	/* over cache_size */
	uint64_t files_failed;	/* a fetch failed, or it was not kept */
	char error[320];	/* the first failure: "/PATH: reason" */
};

/* A progress report of cache_warm().  A non-zero return cancels the
 * warm: the listing stops, and fetches already started finish. */
typedef int (*cache_warm_fn)(void *arg, const struct cache_warm_progress *p);

/*
 * Fetch into the cache the files at paths ("" for the root), and every
 * file below those that are folders, with up to threads threads.  Folders
 * are listed through the listing cache; symbolic links are not followed.
 * The sizes are summed first: when they exceed cache_size, the files are
 * kept in path order while their sum fits, and the others are skipped,
 * because fetching more than the cache can contain would evict what was
 * fetched first.  fn (may be NULL) is called about twice a second while
 * the folders are listed (progress.listing set), once the set is known,
 * about twice a second while it is fetched, and once at the end.
 * Returns 0 when every file of the set is cached, -ECANCELED when fn
 * cancelled it, -EIO when some failed (progress.error names the first),
 * -ENOSPC when none failed but some were skipped, or the error of a path
 * that could not be listed, with a message in err, before anything is
 * fetched.
 */
int cache_warm(struct cache *c, const char *const *paths, size_t count,
	       unsigned threads, cache_warm_fn fn, void *arg, char *err,
	       size_t errlen);

/* The cached content at and below a path, as cache_usage() counts it. */
struct cache_usage {
	uint64_t files;		/* files with cached chunks */
	uint64_t chunks;	/* their cached chunks */
	uint64_t bytes;		/* the bytes of those chunks */
	uint64_t dirty_files;	/* files waiting for upload (write-back) */
	uint64_t dirty_bytes;	/* their sizes */
};

/* Count what the cache contains at and below path ("" for everything):
 * cached chunks of the files there, and the files waiting for upload. */
void cache_usage(struct cache *c, const char *path, struct cache_usage *u);

/* Totals of cache_forget(): files dropped and kept, summed over calls. */
struct cache_forget_result {
	uint64_t files;		/* cached versions dropped */
	uint64_t bytes;		/* their cached bytes */
	uint64_t kept;		/* files with data not uploaded yet */
};

/*
 * Drop what the cache contains at and below path ("" for everything).
 * The cached versions of files go, so that the next read fetches from
 * the origin.  The cached attributes, missing names and listings go too,
 * so that the next lookup sends a request.  Data that is not on the
 * origin yet is never dropped: a file open for writing or waiting for its upload
 * keeps its content and its cached version, and counts in result->kept.
 * Handles open on a dropped version go on reading it until they close.
 * The invalidate callback is called for each dropped file, so that the
 * kernel's page cache of it goes too.  Adds to *result.  Returns 0.
 */
int cache_forget(struct cache *c, const char *path,
		 struct cache_forget_result *result);

#endif
