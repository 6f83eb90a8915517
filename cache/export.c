/*
 * export.c - descriptors of open files for programs that read and write
 * them without going through the engine (see cache_file_export(),
 * cache_file_import() and cache_file_copy() in cache.h).
 *
 * A file open for writing already has its content in a local file, the
 * shadow.  Exporting it opens that file again for the program, and
 * importing it takes the file's size and every chunk as written, so the
 * usual commit stores whatever the program left in it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "log.h"

int cache_file_export(struct cache_file *f, int *fd)
{
	struct cache *c = f->c;
	struct shadow *sh = f->sh;
	int ret;

	*fd = -1;
	if (!sh || !f->writable)
		return -EBADF;
	pthread_mutex_lock(&sh->lock);
	ret = shadow_materialize_all(c, sh);
	if (ret < 0)
		goto out_unlock;
	/* The file's name changes only under cache.lock (write-back moves
	 * it between tmp/ and dirty/). */
	pthread_mutex_lock(&c->lock);
	*fd = openat(c->root_fd, sh->file, O_RDWR | O_CLOEXEC);
	if (*fd < 0) {
		ret = -errno;
		log_err("cannot open %s/%s again for a program that writes %s: "
			"%s", c->root, sh->file, sh->path ? sh->path :
			"(removed)", strerror(errno));
	}
	pthread_mutex_unlock(&c->lock);
	if (ret < 0)
		goto out_unlock;
	/* Reads must come from the shadow file now, even before the first
	 * import, because the program may have written to it. */
	sh->modified = true;
	if (!f->exported) {
		f->exported = true;
		sh->exported++;
	}
out_unlock:
	pthread_mutex_unlock(&sh->lock);
	return ret;
}

int cache_file_import(struct cache_file *f, bool last)
{
	struct cache *c = f->c;
	struct shadow *sh = f->sh;
	struct stat st;
	int ret = 0;

	if (!f->exported)
		return -EINVAL;
	if (c->cfg.write_mode == WRITE_BACK && fstat(sh->fd, &st) == 0)
		wb_wait_for_room(c, st.st_size);
	pthread_mutex_lock(&sh->lock);
	if (fstat(sh->fd, &st) < 0) {
		ret = -errno;
		goto out_unlock;
	}
	/* Everything below the new size was copied in at the export, and
	 * whatever lies past it is gone. */
	if (sh->base_limit > (uint64_t)st.st_size)
		sh->base_limit = st.st_size;
	shadow_mark_changed(c, sh, 0, st.st_size);
	/* getattr and listings read the size and mtime under c->lock. */
	pthread_mutex_lock(&c->lock);
	sh->size = st.st_size;
	shadow_touch(sh);
	sh->attr.mtime = st.st_mtim;
	pthread_mutex_unlock(&c->lock);
	if (last) {
		f->exported = false;
		sh->exported--;
	}
out_unlock:
	pthread_mutex_unlock(&sh->lock);
	return ret;
}

/* Create a file in tmp/ that is unlinked at once, and store a read-write
 * and a read-only descriptor of it. */
static int copy_file_new(struct cache *c, int *rw_fd, int *ro_fd)
{
	char *name;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	if (asprintf(&name, "tmp/c%d-%" PRIu64, (int)getpid(),
		     c->next_tmp++) < 0)
		name = NULL;
	pthread_mutex_unlock(&c->lock);
	if (!name)
		return -ENOMEM;
	*rw_fd = openat(c->root_fd, name, O_RDWR | O_CREAT | O_EXCL |
			O_CLOEXEC, 0600);
	*ro_fd = *rw_fd >= 0 ? openat(c->root_fd, name, O_RDONLY |
				      O_CLOEXEC) : -1;
	if (*ro_fd < 0) {
		ret = -errno;
		log_err("cannot create %s/%s for a copy of a file: %s",
			c->root, name, strerror(errno));
		if (*rw_fd >= 0)
			close(*rw_fd);
	}
	if (*rw_fd >= 0)
		unlinkat(c->root_fd, name, 0);
	free(name);
	return ret;
}

int cache_file_copy(struct cache_file *f, int *fd)
{
	uint32_t cs = f->c->cfg.chunk_size;
	int rw_fd, ro_fd, ret;
	uint64_t offset = 0;
	char *buf;

	*fd = -1;
	buf = malloc(cs);
	if (!buf)
		return -ENOMEM;
	ret = copy_file_new(f->c, &rw_fd, &ro_fd);
	if (ret < 0)
		goto out_free;
	for (;;) {
		ssize_t n = cache_file_read(f, buf, cs, offset);

		if (n <= 0) {
			ret = n;
			break;
		}
		ret = store_pwrite(rw_fd, buf, n, offset);
		if (ret < 0)
			break;
		offset += n;
	}
	close(rw_fd);
	if (ret < 0) {
		close(ro_fd);
		goto out_free;
	}
	*fd = ro_fd;
out_free:
	free(buf);
	return ret;
}
