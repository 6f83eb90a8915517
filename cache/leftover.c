/*
 * leftover.c - the register of what writes leave at the origin while they
 * run (see struct origin_leftovers in origin.h).
 *
 * Each entry is a regular file in the folder leftovers/ of the cache
 * folder, named by its handle as 16 hex digits, that contains the
 * origin's id of the leftover.  An entry is written under a partial name
 * and renamed, so it is whole or absent.  The directory origin records its
 * temporary file before it creates it.  The S3 origin records an upload as
 * soon as the upload id comes back.  The entry goes when the write has
 * ended.  So after a crash of the daemon the folder lists what may still
 * be at the origin.
 * The next start has the origin discard it, in a thread of its own so
 * that a slow origin does not delay the mount.  Entries are not synced:
 * after a crash of the machine one may be missing, which leaves a stray
 * temporary file or upload at the origin and loses no data.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "log.h"

#define HANDLE_DIGITS 16
/* Suffix of an entry still being written. */
#define PART_SUFFIX ".part"
#define PART_SUFFIX_LEN (sizeof(PART_SUFFIX) - 1)
/* Maximum bytes of an id read back.  An S3 key of 1024 bytes with its
 * upload id fits, and so does a path of PATH_MAX bytes. */
#define LEFTOVER_ID_MAX 8192

static void entry_name(char *buf, size_t len, uint64_t handle)
{
	snprintf(buf, len, LEFTOVER_DIR "/%016" PRIx64, handle);
}

/* Count a failed entry as a write error of cache_dir, which logs it
 * once per shortage.  Without its entry, what the write leaves at the
 * origin stays there if the daemon dies during it. */
static void note_add_error(struct cache *c, int err)
{
	pthread_mutex_lock(&c->lock);
	store_note_write_error(c, "a record of an upload in " LEFTOVER_DIR,
			       err);
	pthread_mutex_unlock(&c->lock);
}

static uint64_t leftover_add(void *arg, const char *id)
{
	struct cache *c = arg;
	uint64_t handle = atomic_fetch_add(&c->leftover_next, 1);
	size_t len = strlen(id);
	char name[64], part[64 + PART_SUFFIX_LEN];
	ssize_t n;
	int fd, err;

	entry_name(name, sizeof(name), handle);
	snprintf(part, sizeof(part), "%s" PART_SUFFIX, name);
	fd = openat(c->root_fd, part, O_WRONLY | O_CREAT | O_TRUNC |
		    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		note_add_error(c, -errno);
		return 0;
	}
	n = write(fd, id, len);
	err = n < 0 ? -errno : -ENOSPC;	/* a short write: out of room */
	close(fd);
	if (n == (ssize_t)len && renameat(c->root_fd, part, c->root_fd,
					  name) == 0)
		return handle;
	if (n == (ssize_t)len)
		err = -errno;
	note_add_error(c, err);
	unlinkat(c->root_fd, part, 0);
	return 0;
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

int leftover_read_id(int dir_fd, const char *name, char **id)
{
	char *buf = malloc(LEFTOVER_ID_MAX + 1);
	ssize_t n = -1;
	int fd, err;

	if (!buf)
		return -ENOMEM;
	/* O_NONBLOCK: a FIFO put there must not stop the reader. */
	fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		    O_CLOEXEC);
	err = errno;
	if (fd >= 0) {
		n = read(fd, buf, LEFTOVER_ID_MAX + 1);
		err = errno;
		close(fd);
	}
	if (n <= 0 || n > LEFTOVER_ID_MAX || memchr(buf, '\0', n)) {
		free(buf);
		return n < 0 ? -err : -EINVAL;
	}
	buf[n] = '\0';
	*id = buf;
	return 0;
}

/* Read the id of entry name into *id (a new string).  Returns 0, -EINVAL
 * for an entry without an id, which can go, or another negative errno for
 * an entry to keep and read again at the next start. */
static int read_entry(struct cache *c, const char *name, char **id)
{
	int ret = leftover_read_id(c->root_fd, name, id);

	if (ret == -EINVAL)
		log_warn("%s/%s contains no id of a leftover; it is removed",
			 c->root, name);
	else if (ret < 0)
		log_warn("cannot read %s/%s: %s; the next start tries again",
			 c->root, name, strerror(-ret));
	return ret;
}

/* Discard the leftover of entry name, and remove the entry unless the
 * origin failed: the next start then tries again. */
static void discard_entry(struct cache *c, const char *name)
{
	struct origin *o = c->origin;
	char *id = NULL;
	int ret = read_entry(c, name, &id);

	if (ret == 0 && o->ops->discard)
		ret = o->ops->discard(o, id);
	free(id);
	if (ret < 0 && ret != -ENOENT && ret != -EINVAL)
		return;
	if (unlinkat(c->root_fd, name, 0) < 0)
		log_warn("cannot remove %s/%s: %s", c->root, name,
			 strerror(errno));
}

static void *leftover_worker(void *arg)
{
	struct cache *c = arg;

	for (size_t i = 0; i < c->leftover_count; i++) {
		if (atomic_load(&c->leftover_stop))
			break;
		discard_entry(c, c->leftover_names[i]);
	}
	return NULL;
}

bool leftover_parse_name(const char *name, uint64_t *handle, bool *part)
{
	size_t len = strlen(name);
	char digits[HANDLE_DIGITS + 1];

	*part = len == HANDLE_DIGITS + PART_SUFFIX_LEN &&
		strcmp(name + HANDLE_DIGITS, PART_SUFFIX) == 0;
	if (len != HANDLE_DIGITS && !*part)
		return false;
	memcpy(digits, name, HANDLE_DIGITS);
	digits[HANDLE_DIGITS] = '\0';
	return hex_name_value(digits, HANDLE_DIGITS, handle);
}

/* Keep the entries of a read-only mount, and log what stays. */
static void keep_entries(struct cache *c)
{
	for (size_t i = 0; i < c->leftover_count; i++) {
		char *id = NULL;

		if (read_entry(c, c->leftover_names[i], &id) < 0)
			continue;
		id[strcspn(id, "\n")] = '\0';
		log_warn("a leftover of an interrupted upload (%s) stays at the"
			 " origin until a start without ro", id);
		free(id);
	}
}

/* Collect the names of the entries in the folder open as fd, and set
 * c->leftover_next past their handles. */
static void scan_entries(struct cache *c, int fd)
{
	uint64_t next = 1;
	struct dirent *e;
	DIR *d = fdopendir(fd);

	if (!d) {
		close(fd);
		return;
	}
	while ((e = readdir(d))) {
		uint64_t handle;
		struct stat st;
		char **names;
		bool part;

		if (!leftover_parse_name(e->d_name, &handle, &part))
			continue;
		/* New entries must not take any name in use. */
		if (handle >= next && handle < UINT64_MAX)
			next = handle + 1;
		if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;	/* not written by the daemon */
		if (part) {
			/* A crash cut the write of this entry short, so it
			 * goes as if the crash had come before it. */
			unlinkat(fd, e->d_name, 0);
			continue;
		}
		names = realloc(c->leftover_names, (c->leftover_count + 1) *
				sizeof(*names));
		if (!names)
			break;
		c->leftover_names = names;
		if (asprintf(&names[c->leftover_count], LEFTOVER_DIR "/%s",
			     e->d_name) < 0)
			break;
		c->leftover_count++;
	}
	closedir(d);
	atomic_store(&c->leftover_next, next);
}

void leftovers_open(struct cache *c)
{
	int fd;

	c->leftovers.add = leftover_add;
	c->leftovers.done = leftover_done;
	c->leftovers.arg = c;
	atomic_store(&c->leftover_next, 1);
	if (mkdirat(c->root_fd, LEFTOVER_DIR, 0700) < 0 && errno != EEXIST)
		log_warn("cannot create %s/" LEFTOVER_DIR ": %s", c->root,
			 strerror(errno));
	fd = openat(c->root_fd, LEFTOVER_DIR,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		scan_entries(c, fd);
	c->origin->leftovers = &c->leftovers;
	if (c->leftover_count == 0)
		return;
	if (c->cfg.read_only) {
		keep_entries(c);
		return;
	}
	if (pthread_create(&c->leftover_thread, NULL, leftover_worker, c) == 0)
		c->leftover_running = true;
	else
		log_warn("cannot start the thread that removes leftovers of"
			 " interrupted uploads; the next start tries again");
}

void leftovers_wait(struct cache *c)
{
	if (c->leftover_running)
		pthread_join(c->leftover_thread, NULL);
	c->leftover_running = false;
}

void leftovers_close(struct cache *c)
{
	atomic_store(&c->leftover_stop, true);
	leftovers_wait(c);
	for (size_t i = 0; i < c->leftover_count; i++)
		free(c->leftover_names[i]);
	free(c->leftover_names);
	c->leftover_names = NULL;
	c->leftover_count = 0;
}
