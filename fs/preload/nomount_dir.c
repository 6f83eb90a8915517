/*
 * nomount_dir.c - directory streams of paths served without FUSE.
 *
 * glibc's DIR is opaque, so the library makes its own streams and keeps
 * their addresses in a registry: the interposed readdir(3) and the like
 * serve the streams found there and pass every other DIR to libc.  A
 * stream reads the whole listing (path-list) when it is opened and at
 * rewinddir(3), and keeps it as struct dirent64 records back to back,
 * "." and ".." first.  telldir(3) returns the offset of the next
 * record.  dirfd(3) returns the memfd that represents the directory
 * (nomount_fd.c), which it creates at its first call for a stream of
 * opendir(3).
 *
 * Streams are allocated with malloc(3), as glibc allocates its own.
 * One stream must not be used by two threads at once, as for glibc's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "paths.h"
#include "preload.h"

/* Streams open at once; opendir(3) fails with EMFILE past this. */
#define DIRS_MAX 256
#define RECORD_ALIGN 8

_Static_assert(sizeof(struct dirent) == sizeof(struct dirent64) &&
	       offsetof(struct dirent, d_name) ==
	       offsetof(struct dirent64, d_name),
	       "struct dirent differs from struct dirent64: a 64-bit build "
	       "is required");

struct nomount_dir {
	char *path;		/* absolute and normalized */
	int fd;			/* the memfd of dirfd(3), or -1 */
	char *records;
	size_t size;		/* bytes of records */
	size_t pos;		/* the offset of the next record */
};

static struct nomount_dir *_Atomic registry[DIRS_MAX];
static _Atomic int registered;	/* streams in the registry */
static _Atomic int slots_used;	/* slots that ever held one */

static bool register_dir(struct nomount_dir *d)
{
	for (int i = 0; i < DIRS_MAX; i++) {
		struct nomount_dir *expected = NULL;
		int used = atomic_load(&slots_used);

		if (!atomic_compare_exchange_strong(&registry[i], &expected, d))
			continue;
		while (used < i + 1 &&
		       !atomic_compare_exchange_weak(&slots_used, &used, i + 1))
			;
		atomic_fetch_add(&registered, 1);
		return true;
	}
	return false;
}

/* The registry slot of dir, or -1 when dir is libc's. */
static int find_dir(DIR *dir)
{
	int used;

	if (atomic_load_explicit(&registered, memory_order_relaxed) == 0)
		return -1;
	used = atomic_load(&slots_used);
	for (int i = 0; i < used; i++)
		if ((DIR *)atomic_load(&registry[i]) == dir)
			return i;
	return -1;
}

bool nomount_is_dir(DIR *dir)
{
	return find_dir(dir) >= 0;
}

struct listing {
	char *records;
	size_t size, capacity;
	uint64_t dir_hash;	/* of the directory's path */
	int err;
};

static int add_record(struct listing *l, uint64_t ino, unsigned char type,
		      const char *name)
{
	size_t name_len = strlen(name);
	size_t reclen = (offsetof(struct dirent64, d_name) + name_len + 1 +
			 RECORD_ALIGN - 1) & ~(size_t)(RECORD_ALIGN - 1);
	struct dirent64 *d;

	/* Room for one whole struct dirent64 after the last record too, for
	 * programs that copy sizeof(struct dirent64) bytes of each. */
	if (l->size + reclen + sizeof(struct dirent64) > l->capacity) {
		size_t capacity = l->capacity ? l->capacity * 2 : 4096;
		char *grown;

		while (l->size + reclen + sizeof(struct dirent64) > capacity)
			capacity *= 2;
		grown = realloc(l->records, capacity);
		if (!grown)
			return -ENOMEM;
		memset(grown + l->capacity, 0, capacity - l->capacity);
		l->records = grown;
		l->capacity = capacity;
	}
	d = (struct dirent64 *)(l->records + l->size);
	d->d_ino = ino ? ino : 1;
	d->d_off = (off64_t)(l->size + reclen);
	d->d_reclen = (unsigned short)reclen;
	d->d_type = type;
	memcpy(d->d_name, name, name_len + 1);
	l->size += reclen;
	return 0;
}

/* nomount_entry_fn of nomount_list(). */
static int add_entry(void *arg, const struct nomount_entry *entry)
{
	struct listing *l = arg;
	uint64_t ino = path_hash(l->dir_hash, "/", 1);

	ino = path_hash(ino, entry->name, strlen(entry->name));
	return add_record(l, ino, (unsigned char)IFTODT(entry->mode),
			  entry->name);
}

/* Read the listing of the directory at path into d. */
static int load(struct nomount_dir *d)
{
	struct nomount_target t;
	struct listing l = { .records = NULL };
	char parent[PATH_MAX];
	size_t len = strlen(d->path);
	int ret;

	const char *path = d->path;

	if (mounts_classify_path(AT_FDCWD, &path, &t) != PATH_NOMOUNT)
		return -ENOENT;
	l.dir_hash = path_hash(PATH_HASH_INIT, d->path, len);
	ret = path_normalize(d->path, "..", parent, sizeof(parent));
	if (ret >= 0)
		ret = add_record(&l, l.dir_hash, DT_DIR, ".");
	if (ret >= 0)
		ret = add_record(&l, path_hash(PATH_HASH_INIT, parent,
					       strlen(parent)), DT_DIR, "..");
	if (ret >= 0)
		ret = nomount_list(&t, add_entry, &l);
	if (ret < 0) {
		free(l.records);
		return ret;
	}
	free(d->records);
	d->records = l.records;
	d->size = l.size;
	d->pos = 0;
	return 0;
}

static DIR *open_stream(const char *path, int fd)
{
	struct nomount_dir *d = calloc(1, sizeof(*d));
	int saved_errno = errno, ret = -ENOMEM;

	if (d) {
		d->fd = fd;
		d->path = strdup(path);
		ret = d->path ? load(d) : -ENOMEM;
	}
	if (ret == 0 && !register_dir(d))
		ret = -EMFILE;
	if (ret) {
		if (d) {
			free(d->records);
			free(d->path);
		}
		free(d);
		errno = -ret;
		return NULL;
	}
	errno = saved_errno;
	return (DIR *)d;
}

DIR *nomount_opendir(const struct nomount_target *t)
{
	return open_stream(t->path, -1);
}

DIR *nomount_fdopendir(int fd)
{
	char path[PATH_MAX];
	int ret = nomount_dir_path(fd, path, sizeof(path));

	if (ret) {
		errno = -ret;
		return NULL;
	}
	return open_stream(path, fd);
}

static struct nomount_dir *stream(DIR *dir)
{
	return (struct nomount_dir *)dir;
}

struct dirent64 *nomount_readdir(DIR *dir)
{
	struct nomount_dir *d = stream(dir);
	struct dirent64 *entry;

	if (d->pos >= d->size)
		return NULL;
	entry = (struct dirent64 *)(d->records + d->pos);
	d->pos += entry->d_reclen;
	return entry;
}

int nomount_closedir(DIR *dir)
{
	struct nomount_dir *d = stream(dir);
	int slot = find_dir(dir), ret = 0;

	if (slot >= 0) {
		atomic_store(&registry[slot], NULL);
		atomic_fetch_sub(&registered, 1);
	}
	if (d->fd >= 0) {
		fdtable_forget(d->fd);
		ret = sys_close(d->fd);
	}
	free(d->records);
	free(d->path);
	free(d);
	return ret;
}

void nomount_rewinddir(DIR *dir)
{
	struct nomount_dir *d = stream(dir);
	int saved_errno = errno;

	/* Like glibc's, it cannot report a failure: the old listing stays. */
	if (load(d) != 0)
		d->pos = 0;
	errno = saved_errno;
}

int nomount_dirfd(DIR *dir)
{
	struct nomount_dir *d = stream(dir);
	struct nomount_target t;
	int saved_errno = errno;

	if (d->fd >= 0)
		return d->fd;
	const char *path = d->path;

	if (d->fd >= 0)
		return d->fd;
	if (mounts_classify_path(AT_FDCWD, &path, &t) != PATH_NOMOUNT) {
		errno = ENOENT;
		return -1;
	}
	d->fd = nomount_open_fd(&t, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (d->fd >= 0)
		errno = saved_errno;
	return d->fd;
}

long nomount_telldir(DIR *dir)
{
	return (long)stream(dir)->pos;
}

void nomount_seekdir(DIR *dir, long pos)
{
	struct nomount_dir *d = stream(dir);
	size_t offset = 0;

	/* Only offsets that telldir returned, which start records, are
	 * valid; others end the stream. */
	while (pos >= 0 && offset < (size_t)pos && offset < d->size)
		offset += ((struct dirent64 *)(d->records + offset))->d_reclen;
	d->pos = pos >= 0 && offset == (size_t)pos ? offset : d->size;
}
