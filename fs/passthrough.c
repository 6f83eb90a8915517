/* passthrough.c - FUSE passthrough of complete local copies. */
#include "passthrough.h"

#include <errno.h>
#include <linux/fuse.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"

/*
 * Definitions of the FUSE protocol 7.40 (Linux 6.9), which the
 * <linux/fuse.h> of Debian 12 (7.38) lacks.
 */
#ifndef FUSE_PASSTHROUGH
#define FUSE_PASSTHROUGH (1ULL << 37)
#endif
#ifndef FOPEN_PASSTHROUGH
#define FOPEN_PASSTHROUGH (1 << 7)
#endif
#ifndef FUSE_DEV_IOC_BACKING_OPEN
struct fuse_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};
#define FUSE_DEV_IOC_BACKING_OPEN _IOW(FUSE_DEV_IOC_MAGIC, 1, \
					struct fuse_backing_map)
#define FUSE_DEV_IOC_BACKING_CLOSE _IOW(FUSE_DEV_IOC_MAGIC, 2, uint32_t)
#endif

/* fuse_init_out.max_stack_depth (7.40) takes the place of unused[0]. */
#define INIT_OUT_STACK_DEPTH_OFFSET 36
/* Stacking depth of the backing files: the cache folder is on a plain
 * filesystem (depth 0), so one level above it is enough. */
#define MAX_STACK_DEPTH 1

#define INODE_BUCKETS 1024	/* a power of two */

/* The opens of one inode, while it has any. */
struct pt_inode {
	struct pt_inode *next;
	fuse_ino_t ino;
	unsigned cached;	/* OPEN_CACHED opens */
	unsigned passthrough;	/* OPEN_PASSTHROUGH opens */
	int backing_id;		/* registered while passthrough > 0 */
	int backing_fd;		/* the lent descriptor behind it */
	dev_t dev;		/* of the backing file */
	ino_t file_ino;
};

struct passthrough {
	int dev_fd;		/* the session's /dev/fuse descriptor */
	atomic_bool offered;	/* the kernel's INIT offered passthrough */
	atomic_bool enabled;	/* the INIT reply asked for it */
	atomic_bool init_sent;	/* the INIT reply went out */
	atomic_bool failed;	/* a backing open failed: use no more */
	atomic_uint_least64_t init_unique;	/* of the INIT request */
	pthread_mutex_t lock;
	struct pt_inode *buckets[INODE_BUCKETS];
};

/* The one instance whose session I/O is wrapped; libfuse's callbacks get
 * the session's userdata, which belongs to fuse_ops.c. */
static struct passthrough *attached;

/* The reply that passthrough_reply_open() is sending on this thread. */
static __thread struct {
	bool active;
	enum open_mode mode;
	int backing_id;
} reply_edit;

struct passthrough *passthrough_new(void)
{
	struct passthrough *pt = calloc(1, sizeof(*pt));

	if (!pt)
		return NULL;
	pt->dev_fd = -1;
	pthread_mutex_init(&pt->lock, NULL);
	return pt;
}

void passthrough_free(struct passthrough *pt)
{
	if (!pt)
		return;
	for (size_t i = 0; i < INODE_BUCKETS; i++) {
		struct pt_inode *e = pt->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			if (e->passthrough > 0)
				close(e->backing_fd);
			free(e);
		}
	}
	if (attached == pt)
		attached = NULL;
	pthread_mutex_destroy(&pt->lock);
	free(pt);
}

/* ---- session I/O ---- */

/* Record the unique of an INIT request and whether the kernel offers
 * passthrough. */
static void inspect_request(struct passthrough *pt, const void *buf,
			    ssize_t len)
{
	const struct fuse_in_header *in = buf;
	const struct fuse_init_in *init;

	if (len < (ssize_t)(sizeof(*in) + offsetof(struct fuse_init_in,
						      flags2) +
			    sizeof(init->flags2)) ||
	    in->opcode != FUSE_INIT)
		return;
	init = (const void *)(in + 1);
	atomic_store(&pt->init_unique, in->unique);
	atomic_store(&pt->offered,
		     (init->flags & FUSE_INIT_EXT) &&
		     (init->flags2 & (uint32_t)(FUSE_PASSTHROUGH >> 32)));
}

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n = read(fd, buf, len);

	if (n > 0 && attached && !atomic_load(&attached->init_sent))
		inspect_request(attached, buf, n);
	return n;
}

/* Point iov at copy, the INIT reply with passthrough requested, when iov
 * is the INIT reply and the kernel offered passthrough.  Returns whether
 * it did. */
static bool edit_init_reply(struct passthrough *pt, struct iovec *iov,
			    int count, struct fuse_init_out *copy)
{
	const struct fuse_out_header *out = iov[0].iov_base;
	uint32_t depth = MAX_STACK_DEPTH;

	if (count != 2 || iov[0].iov_len < sizeof(*out) ||
	    out->unique != atomic_load(&pt->init_unique))
		return false;
	atomic_store(&pt->init_sent, true);
	if (out->error != 0 || iov[1].iov_len != sizeof(*copy))
		return false;
	if (!atomic_load(&pt->offered)) {
		log_info("FUSE passthrough is off: the kernel does not offer "
			 "it (it needs Linux 6.9 or later, built with "
			 "CONFIG_FUSE_PASSTHROUGH); reads use the page cache");
		return false;
	}
	memcpy(copy, iov[1].iov_base, sizeof(*copy));
	copy->flags |= FUSE_INIT_EXT;
	copy->flags2 |= (uint32_t)(FUSE_PASSTHROUGH >> 32);
	memcpy((char *)copy + INIT_OUT_STACK_DEPTH_OFFSET, &depth,
	       sizeof(depth));
	iov[1].iov_base = copy;
	atomic_store(&pt->enabled, true);
	log_debug("FUSE passthrough requested in the INIT reply");
	return true;
}

/* Point iov at copy, the open reply of this thread with its mode
 * applied. */
static void edit_open_reply(struct iovec *iov, int count,
			    struct fuse_open_out *copy)
{
	const struct fuse_out_header *out = iov[0].iov_base;

	if (count != 2 || iov[0].iov_len < sizeof(*out) || out->error != 0 ||
	    iov[1].iov_len != sizeof(*copy))
		return;
	memcpy(copy, iov[1].iov_base, sizeof(*copy));
	if (reply_edit.mode == OPEN_PASSTHROUGH) {
		/* The kernel accepts no other flag with passthrough. */
		copy->open_flags &= FOPEN_NOFLUSH;
		copy->open_flags |= FOPEN_PASSTHROUGH;
		/* fuse_open_out.backing_id (7.40) is the old padding. */
		copy->padding = (uint32_t)reply_edit.backing_id;
	}
	iov[1].iov_base = copy;
}

static ssize_t io_writev(int fd, struct iovec *iov, int count,
			 void *userdata)
{
	struct iovec edited[2];
	struct fuse_init_out init;
	struct fuse_open_out open_out;

	if (!attached || count != 2)
		return writev(fd, iov, count);
	memcpy(edited, iov, sizeof(edited));
	if (reply_edit.active)
		edit_open_reply(edited, count, &open_out);
	else if (!atomic_load(&attached->init_sent))
		edit_init_reply(attached, edited, count, &init);
	return writev(fd, edited, count);
}

static ssize_t io_splice_receive(int fdin, off_t *offin, int fdout,
				 off_t *offout, size_t len, unsigned flags,
				 void *userdata)
{
	return splice(fdin, offin, fdout, offout, len, flags);
}

static ssize_t io_splice_send(int fdin, off_t *offin, int fdout,
			      off_t *offout, size_t len, unsigned flags,
			      void *userdata)
{
	return splice(fdin, offin, fdout, offout, len, flags);
}

int passthrough_attach(struct passthrough *pt, struct fuse_session *se)
{
	static const struct fuse_custom_io io = {
		.writev = io_writev,
		.read = io_read,
		.splice_receive = io_splice_receive,
		.splice_send = io_splice_send,
	};
	int fd = fuse_session_fd(se);
	int ret;

	if (fd < 0)
		return -EBADF;
	if (attached)
		return -EBUSY;
	attached = pt;
	ret = fuse_session_custom_io(se, &io, fd);
	if (ret) {
		attached = NULL;
		return ret < 0 ? ret : -EINVAL;
	}
	pt->dev_fd = fd;
	return 0;
}

/* ---- opens ---- */

static struct pt_inode **bucket(struct passthrough *pt, fuse_ino_t ino)
{
	return &pt->buckets[(ino ^ (ino >> 10)) & (INODE_BUCKETS - 1)];
}

/* The entry of ino, or NULL.  Lock held. */
static struct pt_inode *inode_find(struct passthrough *pt, fuse_ino_t ino)
{
	struct pt_inode *e;

	for (e = *bucket(pt, ino); e; e = e->next)
		if (e->ino == ino)
			return e;
	return NULL;
}

/* The entry of ino, created empty if need be; NULL without memory.  Lock
 * held. */
static struct pt_inode *inode_get(struct passthrough *pt, fuse_ino_t ino)
{
	struct pt_inode **head = bucket(pt, ino);
	struct pt_inode *e = inode_find(pt, ino);

	if (e)
		return e;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->ino = ino;
	e->backing_fd = -1;
	e->next = *head;
	*head = e;
	return e;
}

/* Free the entry of ino once it counts no open.  Lock held. */
static void inode_drop_if_unused(struct passthrough *pt, struct pt_inode *e)
{
	struct pt_inode **p;

	if (e->cached > 0 || e->passthrough > 0)
		return;
	for (p = bucket(pt, e->ino); *p; p = &(*p)->next) {
		if (*p == e) {
			*p = e->next;
			free(e);
			return;
		}
	}
}

bool passthrough_possible(struct passthrough *pt, fuse_ino_t ino)
{
	struct pt_inode *e;
	bool possible;

	if (!pt || !atomic_load(&pt->enabled) || atomic_load(&pt->failed))
		return false;
	pthread_mutex_lock(&pt->lock);
	e = inode_find(pt, ino);
	possible = !e || e->cached == 0;
	pthread_mutex_unlock(&pt->lock);
	return possible;
}

/* Register fd as the backing file of e.  Returns 0 or -errno.  Lock
 * held. */
static int backing_open(struct passthrough *pt, struct pt_inode *e, int fd)
{
	struct fuse_backing_map map = { .fd = fd };
	struct stat st;
	int id;

	if (fstat(fd, &st) != 0)
		return -errno;
	id = ioctl(pt->dev_fd, FUSE_DEV_IOC_BACKING_OPEN, &map);
	if (id < 0)
		return -errno;
	if (id == 0) {
		/* The kernel numbers backing files from 1. */
		ioctl(pt->dev_fd, FUSE_DEV_IOC_BACKING_CLOSE, &(uint32_t){ 0 });
		return -EPROTO;
	}
	e->backing_id = id;
	e->backing_fd = fd;
	e->dev = st.st_dev;
	e->file_ino = st.st_ino;
	return 0;
}

/* Whether fd is the data file that backs e. */
static bool same_backing(const struct pt_inode *e, int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && st.st_dev == e->dev &&
	       st.st_ino == e->file_ino;
}

enum open_mode passthrough_open(struct passthrough *pt, fuse_ino_t ino,
				int lent_fd, int *backing_id)
{
	enum open_mode mode = OPEN_CACHED;
	struct pt_inode *e;
	int ret;

	*backing_id = 0;
	if (!pt || !atomic_load(&pt->enabled)) {
		/* Without passthrough every open uses the page cache and
		 * needs no counting. */
		if (lent_fd >= 0)
			close(lent_fd);
		return OPEN_CACHED;
	}
	pthread_mutex_lock(&pt->lock);
	e = inode_get(pt, ino);
	if (!e) {
		/* NOTE: without memory for an entry the open is not
		 * counted.  The inode has no passthrough open (it would have
		 * an entry), so the page cache is safe now, but a later
		 * passthrough open of it then fails with EIO. */
		mode = OPEN_CACHED;
	} else if (e->passthrough > 0) {
		if (lent_fd >= 0 && same_backing(e, lent_fd)) {
			mode = OPEN_PASSTHROUGH;
			*backing_id = e->backing_id;
			e->passthrough++;
		} else {
			mode = OPEN_CONFLICT;
		}
	} else if (lent_fd >= 0 && e->cached == 0 &&
		   !atomic_load(&pt->failed)) {
		ret = backing_open(pt, e, lent_fd);
		if (ret == 0) {
			lent_fd = -1;	/* e owns it now */
			mode = OPEN_PASSTHROUGH;
			*backing_id = e->backing_id;
			e->passthrough = 1;
		} else {
			if (!atomic_exchange(&pt->failed, true))
				log_info("FUSE passthrough is off: the kernel "
					 "did not register a backing file (%s"
					 "); reads use the page cache",
					 strerror(-ret));
			e->cached++;
		}
	} else {
		e->cached++;
	}
	if (e && mode == OPEN_CONFLICT)
		inode_drop_if_unused(pt, e);
	pthread_mutex_unlock(&pt->lock);
	if (lent_fd >= 0)
		close(lent_fd);
	return mode;
}

bool passthrough_release(struct passthrough *pt, fuse_ino_t ino,
			 enum open_mode mode)
{
	bool last_cached = false;
	struct pt_inode *e;

	if (!pt || !atomic_load(&pt->enabled) || mode == OPEN_CONFLICT)
		return false;
	pthread_mutex_lock(&pt->lock);
	e = inode_find(pt, ino);
	if (!e) {
		pthread_mutex_unlock(&pt->lock);
		return false;
	}
	if (mode == OPEN_CACHED && e->cached > 0) {
		last_cached = --e->cached == 0;
	} else if (mode == OPEN_PASSTHROUGH && e->passthrough > 0 &&
		   --e->passthrough == 0) {
		uint32_t id = (uint32_t)e->backing_id;

		if (ioctl(pt->dev_fd, FUSE_DEV_IOC_BACKING_CLOSE, &id) != 0)
			log_debug("FUSE passthrough: closing backing file %u "
				  "of inode %llu failed: %s", id,
				  (unsigned long long)ino, strerror(errno));
		close(e->backing_fd);
		e->backing_fd = -1;
		e->backing_id = 0;
	}
	inode_drop_if_unused(pt, e);
	pthread_mutex_unlock(&pt->lock);
	return last_cached && !atomic_load(&pt->failed);
}

int passthrough_reply_open(fuse_req_t req, struct fuse_file_info *fi,
			   enum open_mode mode, int backing_id)
{
	int ret;

	if (mode != OPEN_PASSTHROUGH)
		return fuse_reply_open(req, fi);
	fi->direct_io = 0;
	fi->keep_cache = 0;
	fi->noflush = 1;
	reply_edit.active = true;
	reply_edit.mode = mode;
	reply_edit.backing_id = backing_id;
	ret = fuse_reply_open(req, fi);
	reply_edit.active = false;
	return ret;
}
