/*
 * passthrough.h - FUSE passthrough of complete local copies.
 *
 * Linux 6.9 and later can serve the reads of an open FUSE file from a
 * "backing" file that the daemon registers (FUSE_PASSTHROUGH), without
 * READ requests and without the FUSE file's page cache.  On Linux 6.18 a
 * FUSE file's page cache holds 4 KiB folios only, so a warm re-read of a
 * cached file through it costs about 1.4 times the CPU of a re-read of
 * the ext4 data file with its large folios.  Passthrough of the lent
 * data file (cache_lend()) reads at the speed of the local file.
 *
 * libfuse 3.14 knows neither the INIT flag nor the open reply fields, so
 * this module wraps the session's I/O (fuse_session_custom_io()) and
 * edits those two replies on their way to the kernel.  Backing files need
 * CAP_SYS_ADMIN; without it, or on an older kernel, every open stays a
 * normal, page-cached open.
 *
 * The kernel (fs/fuse/iomode.c) fails with EIO an open that does not pass
 * through to the same backing file while the inode has passthrough files
 * open, and a passthrough open while it has page-cached files open.  So
 * this module counts the opens of each inode.  An open passes through
 * when the inode has no page-cached open, uses the page cache when the
 * inode has no passthrough open, and is a conflict otherwise: an open for
 * writing, or of a newer version, while readers pass through to the old
 * copy.  The caller then detaches the path from the inode and fails the
 * open with ESTALE, which makes the kernel look the path up again
 * (LOOKUP_REVAL) and open a new inode.  The readers keep the version
 * they opened, as after a rename over the file.
 */
#ifndef NEARFS_PASSTHROUGH_H
#define NEARFS_PASSTHROUGH_H

#include <stdbool.h>

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312	/* the libfuse 3.12 API */
#endif
#include <fuse_lowlevel.h>

struct passthrough;

/* How the kernel serves an open file. */
enum open_mode {
	OPEN_CACHED,		/* the FUSE page cache (keep_cache) */
	OPEN_PASSTHROUGH,	/* reads go to the backing file */
	OPEN_CONFLICT,		/* neither is possible now: not counted */
};

struct passthrough *passthrough_new(void);
void passthrough_free(struct passthrough *pt);

/*
 * Wrap the I/O of se, a mounted session, before its loop runs.  Returns 0
 * or -errno; on failure the session keeps libfuse's own I/O and every
 * open uses the page cache.
 */
int passthrough_attach(struct passthrough *pt, struct fuse_session *se);

/* Whether an open of ino may use passthrough: the kernel accepted it at
 * INIT, no backing open has failed, and ino has no page-cached open. */
bool passthrough_possible(struct passthrough *pt, fuse_ino_t ino);

/*
 * Choose the mode of a new open of ino and count it.  lent_fd is a
 * read-only descriptor of the complete local copy (cache_lend()), or -1
 * when the open cannot use one (written, incomplete, changed).  The call
 * takes lent_fd over.  For OPEN_PASSTHROUGH it stores the backing id to
 * pass to passthrough_reply_open() in *backing_id.
 */
enum open_mode passthrough_open(struct passthrough *pt, fuse_ino_t ino,
				int lent_fd, int *backing_id);

/*
 * Count the release of an open of ino that passthrough_open() counted.
 * The last passthrough open of ino unregisters its backing file.  Returns
 * true when the last page-cached open of ino closed: the next open may
 * pass through, and the kernel then drops the inode's page cache in that
 * open() call, which the caller can do earlier, off the reader's path.
 */
bool passthrough_release(struct passthrough *pt, fuse_ino_t ino,
			 enum open_mode mode);

/*
 * fuse_reply_open() with the mode applied: for OPEN_PASSTHROUGH,
 * FOPEN_PASSTHROUGH with backing_id and FOPEN_NOFLUSH, and without
 * FOPEN_KEEP_CACHE, which the kernel rejects with it.  Returns
 * fuse_reply_open()'s result.
 */
int passthrough_reply_open(fuse_req_t req, struct fuse_file_info *fi,
			   enum open_mode mode, int backing_id);

#endif
