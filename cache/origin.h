/*
 * origin.h - the interface between the cache engine and the place data
 * comes from (an S3 bucket or a directory).
 *
 * Every origin implements struct origin_ops.  Paths are relative to the
 * origin's root, use '/' as separator, carry no leading or trailing slash,
 * and "" names the root.  Every function returns 0 or a negative errno.
 * Origins are called from many threads at once and must be thread-safe.
 */
#ifndef NEARFS_ORIGIN_H
#define NEARFS_ORIGIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

/* Maximum length of a version string; an S3 ETag of a multipart upload
 * fits. */
#define ORIGIN_VERSION_MAX 96

/* Bits of origin_attr.valid, and of the `which` argument of setattr. */
#define ORIGIN_ATTR_MODE	(1u << 0)
#define ORIGIN_ATTR_UID		(1u << 1)
#define ORIGIN_ATTR_GID		(1u << 2)
#define ORIGIN_ATTR_MTIME	(1u << 3)

struct origin_attr {
	/* File type (S_IFREG, S_IFDIR, S_IFLNK) and permission bits. */
	mode_t mode;
	uid_t uid;
	gid_t gid;
	uint64_t size;
	struct timespec mtime;
	/* ORIGIN_ATTR_* bits for the fields the origin really stored; the
	 * type bits of mode are always valid. */
	unsigned valid;
	/* ETag for S3 (quotes removed); "ino-size-mtime_ns" for a directory
	 * origin.  Empty for directories. */
	char version[ORIGIN_VERSION_MAX];
};

/* Bytes of a list_page() continuation token, its terminating NUL
 * included.  NOTE: S3 documents no maximum for ListObjectsV2 tokens;
 * this leaves room for one that encodes a 1024-byte key in base64. */
#define ORIGIN_TOKEN_MAX 4096

/* Copy the fields of from that which selects (ORIGIN_ATTR_*) into to, and
 * mark them valid.  The file type bits of to stay. */
void origin_attr_merge(struct origin_attr *to, const struct origin_attr *from,
		       unsigned which);

/* Kinds of origin request, counted for statistics. */
enum origin_request {
	ORIGIN_REQ_GET,
	ORIGIN_REQ_HEAD,
	ORIGIN_REQ_LIST,
	ORIGIN_REQ_PUT,
	ORIGIN_REQ_COPY,
	ORIGIN_REQ_DELETE,
	ORIGIN_REQ_MULTIPART,	/* initiate, part upload, complete, abort */
	ORIGIN_REQ_MAX
};

extern const char *const origin_request_names[ORIGIN_REQ_MAX];

/*
 * Buckets of a request duration histogram.  Bucket i counts the
 * requests that took at most ORIGIN_LATENCY_MIN_US << i microseconds
 * (origin_latency_bound_us()).  The last bucket also counts the longer
 * ones.  The bounds run from 16 us to 67 s in powers of two.
 */
#define ORIGIN_LATENCY_BUCKETS 24
#define ORIGIN_LATENCY_MIN_US 16u

/* The durations of the requests of one kind. */
struct origin_latency {
	_Atomic uint64_t buckets[ORIGIN_LATENCY_BUCKETS];
	_Atomic uint64_t sum_us;
};

/* A copy of a struct origin_latency, for reports. */
struct origin_latency_stats {
	uint64_t buckets[ORIGIN_LATENCY_BUCKETS];
	uint64_t count;		/* the sum of the buckets */
	uint64_t sum_us;
};

struct origin_counters {
	_Atomic uint64_t requests[ORIGIN_REQ_MAX];
	struct origin_latency latency[ORIGIN_REQ_MAX];
	_Atomic uint64_t errors;	/* requests that failed after retries */
	_Atomic uint64_t retries;
	_Atomic uint64_t bytes_read;	/* body bytes received by read() */
	_Atomic uint64_t bytes_written;	/* body bytes sent by write() */
};

/*
 * Called once per entry of a listing.  `name` is one path component.  A
 * non-zero return stops the listing and is returned by list().
 */
typedef int (*origin_list_fn)(void *arg, const char *name,
			      const struct origin_attr *attr);

/*
 * Receives the body of read_stream() in order: n bytes at position pos of
 * the range.  After a failed attempt is retried, bytes come again from
 * position 0, and the sink must ignore what it already has.  A non-zero
 * return (a negative errno) stops the read, which then returns it.
 */
typedef int (*origin_sink_fn)(void *arg, uint64_t pos, const void *data,
			      size_t n);

/* A sink that copies each piece to (char *)arg + pos. */
int origin_sink_copy(void *arg, uint64_t pos, const void *data, size_t n);

/*
 * One entry of a recursive listing.  path is relative to the listed
 * directory and may contain '/'.  A path ending in '/' names a directory
 * known only from a marker, or from a key below it that no name can
 * carry; attr then holds what list() reports for that directory.
 */
struct origin_tree_entry {
	const char *path;
	struct origin_attr attr;
};

struct origin_tree_page {
	const struct origin_tree_entry *entries;
	size_t count;
	/* What list() reports for a directory seen only as a prefix. */
	struct origin_attr dir_attr;
};

/* Called once per page of list_tree().  A non-zero return stops the
 * listing and is returned by list_tree(). */
typedef int (*origin_tree_fn)(void *arg, const struct origin_tree_page *p);

struct origin;

struct origin_ops {
	/* Attributes of one path (HEAD for S3).  -ENOENT when absent.  For S3
	 * a path with no object but with keys below it is a directory. */
	int (*stat)(struct origin *o, const char *path,
		    struct origin_attr *attr);

	/* Stream the entries of a directory, "." and ".." excluded. */
	int (*list)(struct origin *o, const char *dir, origin_list_fn fn,
		    void *arg);

	/*
	 * Optional (NULL where unsupported): list one page of the entries
	 * of dir, as list() names them, in the origin's order.  token is ""
	 * for the first page, else the next_token of the page before.
	 * next_token (len bytes) receives the token of the next page, ""
	 * after the last one.  -ENOENT as list() for a missing directory,
	 * -EOVERFLOW when the token does not fit in len.
	 */
	int (*list_page)(struct origin *o, const char *dir, const char *token,
			 origin_list_fn fn, void *arg, char *next_token,
			 size_t len);

	/*
	 * Optional (NULL where unsupported): list every entry below dir at
	 * any depth, one page at a time, for prefetching the listings of a
	 * subtree.  Entries come in the byte order of their origin keys, so
	 * the entries below any one directory come in one run.  list() of
	 * any directory below dir gives the names that these paths imply,
	 * with the same attributes.  Returns 0 after the last page.
	 */
	int (*list_tree)(struct origin *o, const char *dir, origin_tree_fn fn,
			 void *arg);

	/*
	 * Read up to len bytes at offset into buf; *done receives the count,
	 * short only at end of file.  When version is non-empty the read must
	 * come from that version: -ESTALE if the object changed (S3 answers
	 * 412 to If-Match).
	 */
	int (*read)(struct origin *o, const char *path, const char *version,
		    uint64_t offset, size_t len, void *buf, size_t *done);

	/*
	 * Optional (NULL where unsupported): read as read() does, but hand
	 * the bytes to fn as they arrive, so that a long range needs no
	 * buffer of its size.  *done as read().
	 */
	int (*read_stream)(struct origin *o, const char *path,
			   const char *version, uint64_t offset, uint64_t len,
			   origin_sink_fn fn, void *arg, uint64_t *done);

	/*
	 * Replace the content of path with the first size bytes of fd
	 * (read with pread, the offset of fd is not used), storing the
	 * fields of meta selected by meta->valid.  On success *result holds
	 * the new attributes, version included.
	 */
	int (*write)(struct origin *o, const char *path, int fd,
		     uint64_t size, const struct origin_attr *meta,
		     struct origin_attr *result);

	/*
	 * Optional (NULL where unsupported): store only the chunks whose
	 * bit is set in changed (bit i covers bytes [i * chunk_size,
	 * (i + 1) * chunk_size) of fd) into the existing file at path, then
	 * set its size to size, but only while that file is still at
	 * base_version.  -ESTALE when it is not, or when the file is gone;
	 * the caller then writes the whole file with write().  Other errors
	 * and *result as write().
	 */
	int (*write_chunks)(struct origin *o, const char *path, int fd,
			    uint64_t size, uint32_t chunk_size,
			    const uint8_t *changed, uint32_t nbits,
			    const char *base_version,
			    const struct origin_attr *meta,
			    struct origin_attr *result);

	/* Change the metadata fields selected by `which` (ORIGIN_ATTR_*).
	 * *result receives the attributes afterwards; S3 changes the ETag.
	 * prior, when not NULL, receives the version that the change was
	 * made to (ORIGIN_VERSION_MAX bytes), or "" when it is unknown. */
	int (*setattr)(struct origin *o, const char *path,
		       const struct origin_attr *attr, unsigned which,
		       struct origin_attr *result, char *prior);

	int (*unlink)(struct origin *o, const char *path);
	int (*mkdir)(struct origin *o, const char *path,
		     const struct origin_attr *meta);
	/* -ENOTEMPTY when the directory has entries. */
	int (*rmdir)(struct origin *o, const char *path);
	/* Rename a file or a whole directory; flags as renameat2(2). */
	int (*rename)(struct origin *o, const char *from, const char *to,
		      unsigned flags);
	int (*statfs)(struct origin *o, struct statvfs *st);

	/* Optional, NULL where unsupported (-EPERM is then returned).
	 * symlink sets *result to the new link's attributes, its version
	 * (ETag) included, as a stat would return them. */
	int (*symlink)(struct origin *o, const char *target, const char *path,
		       struct origin_attr *result);
	int (*readlink)(struct origin *o, const char *path, char *buf,
			size_t size);

	/* Check before mounting that the origin is reachable and usable;
	 * on failure write a message naming the value and the fix. */
	int (*check)(struct origin *o, char *msg, size_t msglen);

	/*
	 * Optional (NULL where nothing is left behind): remove a leftover
	 * that an earlier daemon recorded with origin_leftover_add() and
	 * did not finish.  id is the string the origin recorded.  -ENOENT
	 * when it is gone already, -EINVAL when id does not have the
	 * form that the origin records.
	 */
	int (*discard)(struct origin *o, const char *id);

	void (*free)(struct origin *o);
};

/*
 * The register of leftovers: what a write leaves at the origin while it
 * runs, such as a temporary file or an unfinished multipart upload, and
 * what stays there when the daemon dies before the write ends.  The cache
 * keeps the register and, at the next start, passes each entry to the
 * origin's discard op.
 */
struct origin_leftovers {
	/* Record id.  Returns the entry's handle, or 0 when not recorded. */
	uint64_t (*add)(void *arg, const char *id);
	/* Forget the entry of handle: its leftover is gone. */
	void (*done)(void *arg, uint64_t handle);
	void *arg;
};

struct origin {
	const struct origin_ops *ops;
	/* Set by the cache before any write, NULL without a register. */
	struct origin_leftovers *leftovers;
	/* Printable name, "s3://bucket/prefix" or an absolute path. */
	char *name;
	/* Stable identity of the data, used to name the cache subfolder:
	 * endpoint, bucket and prefix, or the directory's path. */
	char *identity;
	struct origin_counters counters;
};

struct s3_config {
	const char *bucket;
	const char *prefix;	/* "" or "a/b", no slashes at the ends */
	const char *endpoint;	/* NULL: AWS_ENDPOINT_URL or AWS for region */
	const char *region;	/* NULL: AWS_REGION, AWS_DEFAULT_REGION,
				 * ~/.aws/config, then us-east-1 */
	const char *profile;	/* NULL: AWS_PROFILE, then "default" */
	int path_style;		/* 1 path, 0 virtual host, -1 automatic */
	bool anonymous;
	bool read_only;
	uint64_t timeout_ms;	/* per request; 0 picks the default */
	uint64_t multipart_size; /* part size; 0 picks the default */
};

/* Create an S3 origin; on failure write the reason to err. */
int origin_s3_new(const struct s3_config *cfg, struct origin **out,
		  char *err, size_t errlen);

/* Create an origin over the directory at path. */
int origin_dir_new(const char *path, struct origin **out, char *err,
		   size_t errlen);

static inline void origin_count(struct origin *o, enum origin_request kind)
{
	atomic_fetch_add_explicit(&o->counters.requests[kind], 1,
				  memory_order_relaxed);
}

/* One request being timed, from origin_request_start() to
 * origin_request_end(). */
struct origin_timer {
	enum origin_request kind;
	struct timespec start;	/* CLOCK_MONOTONIC */
};

/* Count a request of kind, as origin_count() does, and start its timer. */
void origin_request_start(struct origin *o, enum origin_request kind,
			  struct origin_timer *t);

/* Add the time since origin_request_start() to the latency histogram of
 * the request's kind. */
void origin_request_end(struct origin *o, const struct origin_timer *t);

/* The upper bound of bucket i in microseconds; UINT64_MAX for the last. */
uint64_t origin_latency_bound_us(unsigned i);

/* Count one request that took us microseconds. */
void origin_latency_add(struct origin_latency *h, uint64_t us);

/* Copy h into out.  The buckets are read one by one while requests may
 * still be counted, so the sum may include a request that the buckets
 * lack. */
void origin_latency_read(const struct origin_latency *h,
			 struct origin_latency_stats *out);

/*
 * Estimate the q-quantile (0 < q <= 1) of the durations in microseconds,
 * as Prometheus' histogram_quantile() does: linear interpolation inside
 * the bucket that contains it, so the estimate lies within that bucket's
 * bounds (a factor of two).  A quantile in the last bucket is its lower
 * bound.  Returns 0 without requests.
 */
double origin_latency_quantile(const struct origin_latency_stats *s,
			       double q);

void origin_free(struct origin *o);

/* Record the leftover id of a write that has started.  Returns the handle
 * for origin_leftover_done(), 0 when there is no register or it failed. */
uint64_t origin_leftover_add(struct origin *o, const char *id);

/* Forget the leftover of handle once it is gone; 0 does nothing. */
void origin_leftover_done(struct origin *o, uint64_t handle);

/*
 * The reason for the last failed request of the calling thread, such as
 * the origin's error code and message, or "" when the origin gave none.
 * Origins set it where they map a failure to an errno.  A caller clears
 * it before the request whose reason it wants.
 */
#define ORIGIN_DETAIL_MAX 160
void origin_set_detail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
void origin_clear_detail(void);
const char *origin_detail(void);

/*
 * Check the origin path of a file or directory other than the root (see
 * the top of this file).  Returns 0, -EINVAL for an empty path, a leading
 * or trailing slash, or an empty, "." or ".." component, or
 * -ENAMETOOLONG for a path of PATH_MAX bytes or more or a component
 * longer than NAME_MAX.
 */
int origin_path_check(const char *path);

#endif
