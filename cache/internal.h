/*
 * internal.h - the engine's shared state, seen only by the engine's own files.
 *
 * Locking: one mutex, cache.lock, protects every table, list and counter
 * below, except the shadow fields marked otherwise.  No origin request and
 * no chunk read or write happens with cache.lock held, so a slow origin
 * never blocks a hit; only opening data files, punching evicted chunks and
 * appending index records happen under it.  A chunk being fetched is marked CHUNK_FETCHING; other
 * readers of it wait on cache.fetched instead of fetching it again.
 */
#ifndef NEARFS_INTERNAL_H
#define NEARFS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "htab.h"
#include "list.h"

enum chunk_state {
	CHUNK_FETCHING,	/* a reader is fetching it; not in the LRU */
	CHUNK_PRESENT,	/* in the data file and in the LRU */
};

struct object;

/* One per cached or fetching chunk, so kept at 48 bytes (see store.c for
 * how they are allocated). */
struct chunk {
	struct object *obj;
	struct list_node lru;	/* cache.lru, oldest first; while free,
				 * lru.next links cache.chunk_free */
	uint64_t sum;		/* XXH3-64 of the chunk's bytes */
	uint32_t index;		/* chunk number within the object */
	uint32_t len;		/* bytes; only the last chunk is short */
	uint32_t touched_s;	/* when a TOUCH record was last logged */
	uint16_t readers;	/* reads in progress; eviction skips it */
	uint8_t state : 1;	/* enum chunk_state */
	bool verified : 1;	/* checksum checked since the index loaded */
	bool verifying : 1;	/* a reader is checking it; others wait */
	bool ahead : 1;		/* queued by readahead and not read yet */
};

_Static_assert(sizeof(struct chunk) <= 48, "struct chunk grew");

/*
 * One cached version of one origin file.  Its chunks live in one sparse
 * data file, data/XX/ID, at their offset in the file.  A newer version
 * gets a new id and a new data file, so a descriptor of the old one never
 * sees the new bytes.
 */
struct object {
	uint64_t id;
	char *path;		/* origin path; NULL once detached */
	struct origin_attr attr;	/* the version the chunks belong to */
	uint64_t checked_ms;	/* when the version was last confirmed */
	uint32_t nchunks;
	struct chunk **chunks;	/* [nchunks], NULL where not cached */
	uint32_t ncached;	/* chunks in CHUNK_PRESENT */
	uint32_t nahead;	/* chunks with chunk.ahead set */
	unsigned refs;		/* open handles pinning this version */
	int fd;			/* data file while refs > 0, else -1 */
	bool logged;		/* an OBJ record is in the index */
	bool detached;		/* replaced or removed; freed at refs 0 */
	/* Replaced by a newer version of the path: reads of it fail
	 * (cache_file_read()), so none of its bytes enter the kernel's
	 * page cache, which all handles of the inode share, after the
	 * version change invalidated it. */
	bool superseded;
	/* A read returned bytes of it, so the page cache may hold them
	 * and give them to any handle without asking the daemon. */
	bool served;
	bool lent;		/* a program holds a read-only descriptor of
				 * the data file: never punched (LENT) */
	/* Open while this mount removed it from the origin by an unlink or
	 * a rename over it.  Its chunks are the only copy, so they are
	 * stored past the budget and never evicted.  Its reads never
	 * switch to the file now at its path. */
	bool kept;
	/* The version a commit of this mount made in its place, held while
	 * this one lives, so that handles still reading it follow the
	 * writes (file.c: follow_local_writes()). */
	struct object *rewritten_as;
	/* The shadow that writes on top of this version, while it lives. */
	struct shadow *shadow;
	/* A shadow on top of it was discarded with writes the origin did
	 * not accept, which the kernel's page cache may still hold: the
	 * next open drops that cache. */
	bool discarded;
};

/*
 * Local content of a file open for writing: a temporary file in tmp/
 * that contains the new bytes.  Chunks below base_limit that were not
 * written are copied in from the base version before they are needed
 * (a partial write, or the commit).
 */
struct shadow {
	char *path;		/* current path; NULL once unlinked */
	pthread_mutex_t lock;	/* serializes writes, commits, uploads */
	int fd;
	char *file;		/* its name in the cache folder: tmp/...,
				 * or dirty/SEQ while pending */
	/* cache.lock: the tmp/ file that fd refers to while a pending file
	 * is changed again, or NULL.  dirty/SEQ then keeps the version
	 * last committed, and the next commit renames this over it. */
	char *cow_file;
	uint64_t size;		/* logical size */
	/* Write-around: the empty successor that the last commit made for
	 * readers of an older version, who read this shadow through it
	 * while it stays open (follow_local_writes()).  Holds a reference. */
	struct object *follower;
	uint64_t base_limit;	/* bytes still to be taken from base */
	uint8_t *have;		/* bit per chunk below base_limit: copied */
	uint32_t nhave;		/* chunks covered by have */
	struct object *base;	/* pinned version it started from, or NULL */
	struct origin_attr attr;	/* metadata to store at commit */
	bool dirty;		/* changed since the last commit */
	bool modified;		/* written or truncated since it was made */
	uint64_t write_gen;	/* counts writes and truncations */
	uint64_t commit_gen;	/* write_gen at the last commit attempt;
				 * UINT64_MAX before the first */
	int commit_err;		/* result of that commit */
	uint8_t *changed;	/* bit per chunk written since the last
				 * store on the origin */
	uint32_t nchanged;	/* bits allocated in changed */
	char origin_version[ORIGIN_VERSION_MAX];	/* what the origin
				 * holds at path, as far as known */
	unsigned refs;		/* cache.lock; a pending upload holds one */
	unsigned writers;	/* cache.lock: handles open for writing */
	/* sh->lock: descriptors from cache_file_export() that may still
	 * write, so the commit must copy the file, not move it away. */
	unsigned exported;

	/* Write-back state, under cache.lock. */
	struct list_node wb;	/* on cache.wb_list while pending */
	uint64_t seq;		/* journal sequence number, 0 if none */
	bool pending;		/* journaled, not uploaded yet */
	bool uploading;
	uint64_t counted;	/* bytes counted in cache.dirty_bytes */
	uint64_t queued_ms;	/* when it entered the queue */
	uint64_t ready_ms;	/* not uploaded before (quiet time) */
	uint64_t next_try_ms;	/* retry backoff after a failure */
	unsigned attempts;	/* failed uploads in a row */
	int last_error;		/* negative errno of the last failure */
	char last_detail[ORIGIN_DETAIL_MAX];	/* its origin_detail() */
	uint64_t flush_gen;	/* last cache_flush() that waits for it */
	uint64_t tried_gen;	/* last flush generation it was tried in */
};

struct cache_file {
	struct cache *c;
	struct object *obj;	/* version pinned at open */
	struct shadow *sh;	/* for handles that write, else NULL */
	bool writable;
	bool exported;		/* counted in sh->exported */
	bool has_read;		/* some bytes were returned already */
	/* Bytes of obj were returned, so obj may no longer be replaced
	 * by a newer version.  Set and checked under cache.lock. */
	bool served;
	uint64_t next_offset;	/* where a sequential read would start */
	uint32_t ra_window;	/* chunks to keep fetched ahead; 0: random */
	uint32_t ra_entered;	/* chunks before this one were entered */
	uint64_t last_read_offset;	/* the last read read_ahead() saw */
	size_t last_read_len;
};

/* A cached attribute, or a cached "does not exist". */
struct attr_entry {
	struct origin_attr attr;
	uint64_t fetched_ms;
	bool negative;
};

struct dir_entry {
	char *name;
	struct origin_attr attr;
};

/* A cached directory listing, sorted by name. */
struct listing {
	struct dir_entry *entries;
	size_t count, alloc;
	uint64_t fetched_ms;
	/* While in cache.listings: its key, and its place in
	 * cache.listing_age. */
	char *dir;
	struct list_node age;
};

struct index;
struct journal;

/* Threads uploading closed files in write-back mode. */
#define WB_THREADS 4
/* Threads fetching chunks ahead of sequential readers. */
#define RA_THREADS 8
/* Chunks a sequential reader may have queued ahead of it, at most. */
#define RA_WINDOW_MAX 32
/* Cached chunks a sequential reader has read from disk ahead of it. */
#define RA_WILLNEED_CHUNKS 2
/* Bytes of consecutive chunks readahead fetches with one request. */
#define RA_RUN_BYTES (16u << 20)

struct ra_job;
struct chunk_slab;

struct cache {
	struct cache_config cfg;
	struct origin *origin;
	char *root;		/* cache_dir/<origin folder> */
	char *cache_dir;	/* cache_dir, for messages; may be NULL */
	int root_fd;
	int lock_fd;		/* flock(2) held while open */
	bool unclean_start;	/* the last daemon on the folder did not
				 * close it; cleared by store_replay() */
	struct index *index;
	bool keep_files;	/* removing an object leaves its data file:
				 * an offline check changes nothing */
	struct origin_leftovers leftovers;	/* register in leftovers/ */
	_Atomic uint64_t leftover_next;	/* handle of the next entry */
	char **leftover_names;	/* entries found at start */
	size_t leftover_count;
	pthread_t leftover_thread;	/* discards them */
	bool leftover_running;
	_Atomic bool leftover_stop;

	pthread_mutex_t lock;
	pthread_cond_t fetched;	/* a fetch finished */
	struct htab objects;	/* path -> struct object */
	struct htab shadows;	/* path -> struct shadow */
	struct htab attrs;	/* path -> struct attr_entry */
	struct htab listings;	/* dir path -> struct listing */
	struct list_node listing_age;	/* stored listings, oldest first */
	uint64_t listing_entries;	/* entries of stored listings */
	struct list_node lru;
	struct chunk_slab *chunk_slabs;	/* memory of every struct chunk */
	struct list_node *chunk_free;	/* free chunks, by lru.next */
	uint64_t next_id;
	uint64_t bytes_cached;	/* present and reserved chunk bytes */
	uint64_t chunks_cached;
	uint64_t objects_cached;
	uint64_t next_tmp;

	/* The page cache callback, under its own lock because the uploader
	 * may call it while the daemon sets it, with c->lock held or not. */
	pthread_mutex_t invalidate_lock;
	cache_invalidate_fn invalidate;
	void *invalidate_arg;

	/* Readahead, under lock. */
	struct ra_job *ra_head, **ra_tail;
	unsigned ra_queued;
	pthread_t ra_threads[RA_THREADS];
	unsigned ra_nthreads;
	pthread_cond_t ra_wake;
	bool ra_stop;
	uint64_t readaheads;	/* chunks queued by readahead */
	uint64_t ahead_chunks;	/* chunks with chunk.ahead set */
	unsigned ra_readers;	/* handles with a readahead window */

	/* Listing prefetch, under lock. */
	struct list_node prefetches;	/* struct prefetch in flight */
	pthread_cond_t prefetched;	/* a prefetch stored or ended */
	unsigned prefetch_running;
	bool prefetch_stop;
	struct list_node dir_cursors;	/* struct cache_dir being listed */

	/* Write-back, under lock. */
	struct journal *journal;
	struct list_node wb_list;	/* pending shadows */
	pthread_t wb_threads[WB_THREADS];
	unsigned wb_nthreads;
	pthread_cond_t wb_wake;	/* uploaders: work may be ready */
	pthread_cond_t wb_done;	/* flushers, writers: an upload ended */
	bool wb_stop;
	uint64_t wb_seq;	/* last journal sequence number used */
	/* Renames between their RENAME and DONE records (cache_rename()). */
	unsigned renames_running;
	uint64_t flush_gen;
	uint64_t dirty_bytes, pending_count, uploads_done, upload_retries;

	/* Counters for cache_get_stats(), under lock. */
	uint64_t hits, misses, bytes_from_cache, bytes_from_origin;
	uint64_t evictions, checksum_failures, revalidations;
	/* Reservations failed since eviction pressure began, or 0. */
	uint64_t pressure_failures;
	uint64_t bytes_zero_copy;
	uint64_t invalidations;
	uint64_t lends, lends_refused;

	/* Space shortage in cache_dir (store.c), under lock. */
	bool space_short;	/* a write failed, and no later one found
				 * room (store_note_write_ok()) */
	bool short_logged;	/* this shortage was logged */
	uint64_t short_logged_ms;	/* when a shortage was last logged */
	bool compacting;	/* store_compact() runs: failures are its own */
	uint64_t cache_dir_errors;	/* writes into cache_dir that failed */
	uint64_t index_repair_ms;	/* last rewrite of an index that
					 * lost records, or 0 */
};

/* store.c: objects, chunks, eviction. */
struct object *store_object_new(struct cache *c, const char *path,
				const struct origin_attr *attr);
void store_object_detach(struct cache *c, struct object *obj);
void store_object_put(struct cache *c, struct object *obj);
int store_object_open_fd(struct cache *c, struct object *obj);
/* Read from a pinned object, fetching missing chunks.  With buf NULL it
 * only fetches them and marks the cached ones recently used, counting no
 * hits. */
int store_read(struct cache *c, struct object *obj, void *buf, size_t len,
	       uint64_t offset);
/* Fetch what a pinned obj lacks of [offset, offset + len), each run of
 * missing chunks with one request where the origin streams.  See
 * cache_fetch() for *missing.  Returns 0 or -errno. */
int store_fetch(struct cache *c, struct object *obj, uint64_t offset,
		uint64_t len, uint64_t *missing);
int store_reserve(struct cache *c, uint64_t len);
/* Write all len bytes of buf at off of a data or shadow file, in pieces
 * (see WRITE_PIECE in store.c).  Returns 0 or -errno. */
int store_pwrite(int fd, const void *buf, size_t len, uint64_t off);
/* Register chunk index of obj, whose bytes are in its data file and
 * whose len bytes store_reserve() granted.  When its index record cannot
 * be written it releases the reservation, registers nothing and returns
 * -errno; an existing FETCHING entry is then the caller's to remove. */
int store_insert_chunk(struct cache *c, struct object *obj, uint32_t index,
		       uint32_t len, uint64_t sum);
void store_data_path(const struct cache *c, uint64_t id, char *buf,
		     size_t len);
/* Whether name consists of exactly digits lowercase hex digits, as the
 * cache names its files.  Sets *value.  digits is at most 16. */
bool hex_name_value(const char *name, size_t digits, uint64_t *value);
/* Whether name, in the folder data/XX with XX the hex of folder, is that
 * of a data file: the 16 hex digits of an id whose low byte is folder.
 * Sets *id. */
bool store_data_name_id(unsigned folder, const char *name, uint64_t *id);
/* Punch [off, off + len) out of the data file of obj, unless it was
 * lent.  Lock held. */
void store_punch_range(struct cache *c, struct object *obj, uint64_t off,
		       uint64_t len);
/* Evict the least recently used chunks that no read is using until len
 * bytes are freed or none is left, to make room on a full cache_dir.
 * Returns whether any was evicted.  Lock held. */
bool store_evict_bytes(struct cache *c, uint64_t len);
/* Log an OBJECT record and mark obj logged.  Returns 0 or -errno. */
int store_log_object(struct cache *c, struct object *obj);
/* Report a write into cache_dir that failed with err (negative errno):
 * the first of a shortage logs the fix, the others only count.  Lock
 * held. */
void store_note_write_error(struct cache *c, const char *what, int err);
/* Report the result of an index append (0 or -errno).  Lock held. */
void store_index_result(struct cache *c, int ret);
/* Report a write into cache_dir that worked: ends a shortage, and
 * rewrites the index and the journal if they lost records.  Lock held. */
void store_note_write_ok(struct cache *c);
int store_replay(struct cache *c, char *err, size_t errlen);
/* Replay the index into c as store_replay() does, but without changing
 * any file (see index_read() for scan).  c->index stays NULL. */
struct recordlog_scan;
int store_read_index(struct cache *c, struct recordlog_scan *scan, char *err,
		     size_t errlen);
/* Forget a damaged chunk: punch it out of its data file, or drop the
 * whole object when it was lent.  Lock held; obj may be freed. */
void store_drop_chunk(struct cache *c, struct object *obj, struct chunk *ch);
/* Read chunk ch of the data file fd into buf (ch->len bytes) and check
 * its checksum.  Returns 0, -EILSEQ on a mismatch, or -errno (-EIO when
 * the file ends inside the chunk). */
int store_check_chunk(const struct cache *c, int fd, const struct chunk *ch,
		      void *buf);
/* Ask the kernel (posix_fadvise WILLNEED) to read the cached chunks of obj
 * from first on, up to count of them, from the data file.  The FUSE reads
 * of a sequential reader reach that file out of order and in parallel,
 * which defeats the kernel's own readahead of it. */
void store_willneed(struct cache *c, struct object *obj, uint32_t first,
		    uint32_t count);
/* Queue chunks [first, first + count) of a pinned object for fetching,
 * ahead of a reader that is in chunk first - 1. */
void store_prefetch(struct cache *c, struct object *obj, uint32_t first,
		    uint32_t count);
int store_ra_start(struct cache *c);
/* Wait while a chunk of obj in [offset, offset + len) is being fetched.
 * Returns whether all of them are cached then.  Lock not held. */
bool store_wait_fetched(struct cache *c, struct object *obj,
			uint64_t offset, size_t len);
/* Pin the cached, verified chunks from offset; see cache_file_read_fd. */
int store_pin(struct cache *c, struct object *obj, uint64_t offset,
	      size_t len, int *fd, size_t *n);
void store_unpin(struct cache *c, struct object *obj, uint64_t offset,
		 size_t n);
void store_ra_stop(struct cache *c);
/* Whether every chunk of a pinned obj is cached and verified, checking
 * the chunks not verified since the index loaded.  Lock held; it is
 * dropped while a chunk is checked. */
bool store_complete(struct cache *c, struct object *obj);
/* Mark a pinned, complete obj lent and open its data file read-only.
 * Returns the new descriptor or -errno.  Lock held. */
int store_lend(struct cache *c, struct object *obj);
int store_compact(struct cache *c);
/* Evict the least recently used chunks that no read is using while the
 * cached bytes exceed size_max.  Lock held. */
void store_shrink(struct cache *c);
/* Free the memory of every chunk, at close, after the objects. */
void store_free_chunks(struct cache *c);
uint64_t store_live_index_bytes(const struct cache *c);

/* meta.c: attribute, negative and listing caches. */
struct attr_entry *meta_attr_get(struct cache *c, const char *path);
/* Copy into listed, attributes from a listing, the fields that known
 * (from a HEAD, GET or earlier merge) has, when both describe the same
 * version of a file.  A listing carries no stored mode, owner, mtime or
 * link type: for S3 its mtime is the upload time. */
void meta_attr_merge(struct origin_attr *listed,
		     const struct origin_attr *known);
void meta_attr_set(struct cache *c, const char *path,
		   const struct origin_attr *attr);
void meta_attr_set_negative(struct cache *c, const char *path);
void meta_attr_forget(struct cache *c, const char *path);
struct listing *meta_listing_get(struct cache *c, const char *dir);
void meta_listing_store(struct cache *c, const char *dir,
			struct listing *l);
void meta_listing_forget(struct cache *c, const char *dir);
/* Merge attr, from a HEAD of path, into the entry of path in its parent's
 * cached listing, if both describe the same version (meta_attr_merge). */
void meta_listing_merge(struct cache *c, const char *path,
			const struct origin_attr *attr);
void meta_listing_update(struct cache *c, const char *path,
			 const struct origin_attr *attr);
void meta_listing_remove(struct cache *c, const char *path);
struct dir_entry *listing_find(const struct listing *l, const char *name);
int listing_add(struct listing *l, const char *name,
		const struct origin_attr *attr);
void listing_sort(struct listing *l);
void listing_free(struct listing *l);
void meta_release(struct cache *c);
void meta_rename_prefix(struct cache *c, const char *from, const char *to);
/* Drop the cached attributes, missing names and listings at and below
 * dir ("" for all).  Lock held. */
void meta_forget_subtree(struct cache *c, const char *dir);

/* Copies of the keys of a table that are dir or lie below it. */
struct key_list {
	const char *dir;
	char **keys;
	size_t count, alloc;
};

/* Append the keys of t at and below dir to out; keys that do not fit in
 * memory are left out.  Free them with key_list_free(). */
void keys_below(const struct htab *t, const char *dir, struct key_list *out);
void key_list_free(struct key_list *list);

/*
 * prefetch.c: the listings of a subtree from one recursive origin
 * listing (origin_ops.list_tree).  The builder turns the entries of such
 * a listing into the listing of each directory, and passes each one to
 * done once the listing has gone past it: a directory whose run of
 * entries is cut off is never passed.  done owns the listing it gets.
 */
struct tree_builder;
typedef void (*tree_done_fn)(void *arg, const char *dir, struct listing *l);
struct tree_builder *tree_builder_new(const char *root, tree_done_fn done,
				      void *arg);
/* Add the next entry of the listing.  Returns 0 or -ENOMEM. */
int tree_builder_add(struct tree_builder *b,
		     const struct origin_tree_entry *e,
		     const struct origin_attr *dir_attr);
/* The listing reached its end: pass every directory still open. */
void tree_builder_finish(struct tree_builder *b);
/* Free the builder and the listings it has not passed on. */
void tree_builder_free(struct tree_builder *b);

/* After dir was listed with subdirectories, start a recursive listing of
 * dir in the background when none covers it yet.  Lock held. */
void prefetch_start(struct cache *c, const char *dir,
		    const struct listing *l);
/* Wait (lock held, released while waiting) while a prefetch in flight may
 * still store the listing of dir.  Returns true when it waited. */
bool prefetch_wait(struct cache *c, const char *dir);
/* The cached listing of dir changed here, or with subtree set also those
 * below it: prefetches that might store an older one stop.  Lock held. */
void prefetch_note_change(struct cache *c, const char *dir, bool subtree);
/* Stop every prefetch and wait for their threads to end.  Unlocked. */
void prefetch_stop_all(struct cache *c);

/* readdir.c: the listing of dir changed here, or with subtree set also
 * those below it, so cursors listing it must not store what they fetched.
 * Lock held. */
void dir_cursor_note_change(struct cache *c, const char *dir, bool subtree);

/* cache.c: helpers shared with file.c and verify.c. */
/* Allocate a cache with cfg and no folder, origin or index yet; close it
 * with cache_close().  Returns NULL when out of memory. */
struct cache *cache_alloc(const struct cache_config *cfg);
/* Give the origin the register in leftovers/ for the writes to come, and
 * start a thread that removes what the writes of an earlier daemon left
 * at the origin, as the register lists it.  Called once the folder is
 * locked. */
void leftovers_open(struct cache *c);

/* Wait until that thread has gone through every entry. */
void leftovers_wait(struct cache *c);

/* The folder of the register, below the cache folder. */
#define LEFTOVER_DIR "leftovers"

/* Whether name is that of an entry: 16 lower-case hex digits, then
 * ".part" for an entry still being written (*part).  Sets *handle. */
bool leftover_parse_name(const char *name, uint64_t *handle, bool *part);

/* Read the id in the entry name below the folder open as dir_fd into *id
 * (a new string).  Returns 0, -EINVAL for an entry without an id, or
 * another negative errno. */
int leftover_read_id(int dir_fd, const char *name, char **id);

/* Stop that thread after the entry it is at, and free what it used. */
void leftovers_close(struct cache *c);

/* Take the flock(2) on the lock file of the cache folder open as root_fd
 * and write this process's pid in it.  Sets *unclean, unless NULL, when
 * the file contained a pid, because its last holder did not close the
 * cache.  Returns the lock descriptor, or -EBUSY with the holder's pid
 * ("unknown" when not written) in holder, or another negative errno. */
int cache_lock_folder(int root_fd, char *holder, size_t len, bool *unclean);
bool cache_is_fresh(uint64_t since_ms, uint64_t ttl_ms);
void cache_notify(struct cache *c, const char *path);
bool cache_same_version(const struct origin_attr *a,
			const struct origin_attr *b);
bool cache_check_version(struct cache *c, struct object *obj,
			 const struct origin_attr *fresh);
void cache_default_attr(struct origin_attr *attr, mode_t mode, uid_t uid,
			gid_t gid);
void cache_record_created(struct cache *c, const char *path,
			  const struct origin_attr *attr);
/* Attributes of path from local state: the file open for writing, then
 * a cached version within ttl.  Returns false when there is none.  Lock
 * held. */
bool cache_local_attr(struct cache *c, const char *path,
		      struct origin_attr *attr);
/* Append to out the files created in dir and not on the origin yet whose
 * names the sorted listing l lacks.  Lock held. */
void cache_add_unlisted_shadows(struct cache *c, const char *dir,
				const struct listing *l, struct listing *out);
/* Store a listing fetched from the origin, merged with files not on the
 * origin yet, and the attributes of its entries.  Lock held. */
/* Give e, the entry of path in a new listing, the stored metadata learnt
 * earlier for the same version: from a cached copy, a HEAD, or old, the
 * listing it replaces (may be NULL).  Lock held. */
void cache_merge_known_attr(struct cache *c, const char *path,
			    const struct listing *old, struct dir_entry *e);
void cache_install_listing(struct cache *c, const char *dir,
			   struct listing *l);
/* Pin the current version of path, checking it when ttl has passed. */
int cache_acquire_object(struct cache *c, const char *path,
			 struct object **out, bool *changed);

/* file.c: helpers shared with writeback.c. */
struct shadow *shadow_new(struct cache *c, const char *path,
			  struct object *base,
			  const struct origin_attr *attr);
void shadow_put(struct cache *c, struct shadow *sh);
/* Take a reference to the shadow of path and its lock, if there is one.
 * unlock_shadow() releases both. */
struct shadow *lock_shadow(struct cache *c, const char *path);
void unlock_shadow(struct cache *c, struct shadow *sh);
/* Free a shadow without references; its file is removed unless keep_file
 * is set (a pending upload kept for the next mount). */
void shadow_free(struct cache *c, struct shadow *sh, bool keep_file);
/* Store the shadow on the origin, as changed chunks where the origin can
 * patch its file, else whole.  Stores in prior the version that the
 * shadow started from or last stored ("" when unknown).  sh->lock held. */
int shadow_upload(struct cache *c, struct shadow *sh, const char *path,
		  const struct origin_attr *meta, uint64_t size,
		  struct origin_attr *result, char prior[ORIGIN_VERSION_MAX]);
/* Copy every chunk the shadow still needs from its base.  sh->lock. */
int shadow_materialize_all(struct cache *c, struct shadow *sh);
/* Mark bytes [offset, end) as changed since the last store on the
 * origin.  sh->lock held. */
void shadow_mark_changed(struct cache *c, struct shadow *sh, uint64_t offset,
			 uint64_t end);
/* Count a change of the shadow's content made now.  sh->lock and c->lock
 * held, because getattr reads the mtime under c->lock only. */
void shadow_touch(struct shadow *sh);
void shadow_install(struct cache *c, struct shadow *sh, const char *path,
		    const struct origin_attr *attr, const char *prior);

/* writeback.c: the write-back queue. */
/* The name of the file of a pending upload, "dirty/SEQ"; NULL when out
 * of memory.  The caller frees it. */
char *wb_dirty_name(uint64_t seq);
int wb_open(struct cache *c, char *err, size_t errlen);
void wb_close(struct cache *c);
int wb_commit(struct cache *c, struct shadow *sh);
int wb_upload(struct cache *c, struct shadow *sh);
void wb_cancel(struct cache *c, struct shadow *sh);
void wb_moved(struct cache *c, struct shadow *sh);
/* Rewrite the journal from the queue if it lost records.  Lock held. */
void wb_repair_journal(struct cache *c);
/* Have the pending files uploaded now, and wait up to a few seconds for
 * one upload to end.  Returns whether one ended.  Lock not held. */
bool wb_wait_for_upload(struct cache *c);
void wb_writer_closed(struct cache *c, struct shadow *sh);
int wb_before_change(struct cache *c, struct shadow *sh, uint64_t keep);
void wb_wait_for_room(struct cache *c, size_t len);
void wb_stats(struct cache *c, struct cache_stats *st);
/* Add the pending files at and below path to u.  Lock held. */
void wb_usage(struct cache *c, const char *path, struct cache_usage *u);
/* Set writeback_delay_ms, moving the upload time of the pending files by
 * the difference, and wake the uploaders and the writers that wait for
 * room under max_dirty.  Lock held. */
void wb_set_delay(struct cache *c, uint64_t delay_ms);

/* Split path into its parent folder (into buf) and return the name. */
const char *path_split(const char *path, char *parent, size_t len);
bool path_is_below(const char *path, const char *dir);

#endif
