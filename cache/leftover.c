/*
 * leftover.c - the register of what writes leave at the origin while they
 * run (see struct origin_leftovers in origin.h).
 *
 * Each entry is a file in the folder leftovers/ of the cache folder, named
 * by its handle in hex, that contains the origin's id of the leftover.  An
 * entry is written before the write can leave anything for good, and
 * removed when the write has ended.  So after a crash of the daemon the
 * folder lists what may still be at the origin, and the next start has
 * the origin discard it.  Entries are not synced: after a crash of the
 * machine, one may be missing, which leaves a stray temporary file or
 * upload at the origin and loses no data.
 */
#include <dirent.h>
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

#define LEFTOVER_DIR "leftovers"
/* Maximum bytes of an id read back.  An S3 key of 1024 bytes with its
 * upload id fits, and so does a path of PATH_MAX bytes. */
#define LEFTOVER_ID_MAX 8192

static void entry_name(char *buf, size_t len, uint64_t handle)
{
	snprintf(buf, len, LEFTOVER_DIR "/%016" PRIx64, handle);
}

static uint64_t leftover_add(void *arg, const char *id)
{
	struct cache *c = arg;
	uint64_t handle = atomic_fetch_add(&c->leftover_next, 1);
	size_t len = strlen(id);
	char name[64];
	ssize_t n;
	int fd;

	entry_name(name, sizeof(name), handle);
	fd = openat(c->root_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600);
	if (fd < 0) {
		log_warn("cannot record a write in %s/%s: %s; if the daemon "
			 "dies during that write, what it leaves at the "
			 "origin stays there", c->root, name, strerror(errno));
		return 0;
	}
	n = write(fd, id, len);
	close(fd);
	if (n != (ssize_t)len) {
		log_warn("cannot record a write in %s/%s: %s", c->root, name,
			 n < 0 ? strerror(errno) : "short write");
		unlinkat(c->root_fd, name, 0);
		return 0;
	}
	return handle;
}

static void leftover_done(void *arg, uint64_t handle)
{
	struct cache *c = arg;
	char name[64];

	entry_name(name, sizeof(name), handle);
	if (unlinkat(c->root_fd, name, 0) < 0 && errno != ENOENT)
		log_warn("cannot remove %s/%s: %s", c->root, name,
			 strerror(errno));
}

/* Read the id of entry name into a new string.  NULL when it cannot be
 * read; an empty or oversized entry is logged. */
static char *read_entry(struct cache *c, const char *name)
{
	char *id = malloc(LEFTOVER_ID_MAX + 1);
	ssize_t n = -1;
	int fd;

	fd = openat(c->root_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0 && id) {
		n = read(fd, id, LEFTOVER_ID_MAX + 1);
		close(fd);
	}
	if (n <= 0 || n > LEFTOVER_ID_MAX) {
		if (id)
			log_warn("%s/%s is not a leftover entry (%zd bytes);"
				 " it is removed", c->root, name, n);
		free(id);
		return NULL;
	}
	id[n] = '\0';
	return id;
}

/* Discard the leftover of entry name, and remove the entry unless the
 * origin failed: the next start then tries again.  A read-only mount
 * changes nothing at the origin and keeps every entry. */
static void discard_entry(struct cache *c, const char *name)
{
	struct origin *o = c->origin;
	char *id;
	int ret = 0;

	if (c->cfg.read_only) {
		log_warn("%s/%s: a leftover of an interrupted upload stays at"
			 " the origin until a start without read_only",
			 c->root, name);
		return;
	}
	id = read_entry(c, name);
	if (id && o->ops->discard)
		ret = o->ops->discard(o, id);
	free(id);
	if (ret < 0 && ret != -ENOENT && ret != -EINVAL)
		return;
	if (unlinkat(c->root_fd, name, 0) < 0)
		log_warn("cannot remove %s/%s: %s", c->root, name,
			 strerror(errno));
}

void leftovers_open(struct cache *c)
{
	uint64_t next = 1;
	struct dirent *e;
	DIR *d;
	int fd;

	c->leftovers.add = leftover_add;
	c->leftovers.done = leftover_done;
	c->leftovers.arg = c;
	if (mkdirat(c->root_fd, LEFTOVER_DIR, 0700) < 0 && errno != EEXIST)
		log_warn("cannot create %s/" LEFTOVER_DIR ": %s", c->root,
			 strerror(errno));
	fd = openat(c->root_fd, LEFTOVER_DIR,
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d && fd >= 0)
		close(fd);
	while (d && (e = readdir(d))) {
		char name[64];
		char *end;
		uint64_t handle;

		if (e->d_name[0] == '.')
			continue;
		handle = strtoull(e->d_name, &end, 16);
		if (*end || strlen(e->d_name) != 16)
			continue;	/* not an entry: leave it alone */
		if (handle >= next)
			next = handle + 1;
		snprintf(name, sizeof(name), LEFTOVER_DIR "/%s", e->d_name);
		discard_entry(c, name);
	}
	if (d)
		closedir(d);
	atomic_store(&c->leftover_next, next);
	c->origin->leftovers = &c->leftovers;
}
