/*
 * roots.c - find the roots that daemons serve without FUSE.
 *
 * A daemon started with -o nomount writes its ROOT to <pid>.nomount
 * beside its control socket <pid>.sock (protocol.h).  The library scans
 * the folders where daemons of its uid put their sockets: /run/nearfs,
 * $XDG_RUNTIME_DIR/nearfs and /tmp/nearfs-<uid>, or only the folder of
 * NEARFS_PRELOAD_RUNDIR.  A folder or file that another user could have
 * written is skipped, since its root would send the program's files to
 * that user's socket.  So the folder and the file must belong to the
 * process's uid or to root, and group and others must not be able to
 * write them.
 *
 * Only the thread that refreshes the lists of mounts.c calls
 * roots_scan(), so the buffers below are not shared.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "paths.h"
#include "preload.h"
#include "preload/protocol.h"

#define SOCKET_SUFFIX ".sock"

static char dirents[8192] __attribute__((aligned(8)));
static char content[PATH_MAX + 1];
static char root[PATH_MAX];

/* Whether st is of the given type and only its owner, the process's uid
 * or root, can change it. */
static bool is_trusted(const struct stat *st, mode_t type)
{
	return (st->st_mode & S_IFMT) == type &&
	       (st->st_uid == getuid() || st->st_uid == 0) &&
	       !(st->st_mode & (S_IWGRP | S_IWOTH));
}

/* The length of the pid in name when name is "<pid>.nomount", else 0. */
static size_t pid_len(const char *name)
{
	size_t digits = strspn(name, "0123456789");

	if (digits == 0 || strcmp(name + digits, NEARFS_NOMOUNT_SUFFIX) != 0)
		return 0;
	return digits;
}

/* Read the first line of the file name in the folder dirfd into root.
 * Returns its normalized length, or 0 when it names no usable root. */
static size_t read_root(int dirfd, const char *dir, const char *name)
{
	struct stat st;
	ssize_t n;
	char *newline;
	int fd, len;

	fd = sys_openat(dirfd, name,
			O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0);
	if (fd < 0)
		return 0;
	if (sys_fstatat(fd, "", &st, AT_EMPTY_PATH) != 0 ||
	    !is_trusted(&st, S_IFREG)) {
		preload_debug("%s/%s: skipped: not a regular file that only "
			      "uid %u or root can write", dir, name,
			      (unsigned)getuid());
		sys_close(fd);
		return 0;
	}
	do {
		n = read(fd, content, sizeof(content) - 1);
	} while (n < 0 && errno == EINTR);
	sys_close(fd);
	if (n <= 0)
		return 0;
	content[n] = '\0';
	/* A daemon that is still writing the file has no newline yet. */
	newline = strchr(content, '\n');
	if (!newline)
		return 0;
	*newline = '\0';
	len = path_normalize(NULL, content, root, sizeof(root));
	if (len <= 1) {
		preload_debug("%s/%s: skipped: '%s' is not an absolute path "
			      "below /", dir, name, content);
		return 0;
	}
	return (size_t)len;
}

static void scan_entry(int dirfd, const char *dir, const char *name,
		       root_found_fn *found, void *arg)
{
	char socket[PRELOAD_SOCKET_PATH_MAX];
	size_t digits = pid_len(name), len;
	int n;

	if (digits == 0)
		return;
	n = snprintf(socket, sizeof(socket), "%s/%.*s" SOCKET_SUFFIX, dir,
		     (int)digits, name);
	if (n < 0 || (size_t)n >= sizeof(socket)) {
		preload_debug("%s/%s: skipped: its socket path is longer than "
			      "%zu bytes", dir, name, sizeof(socket) - 1);
		return;
	}
	len = read_root(dirfd, dir, name);
	if (len > 0)
		found(arg, root, len, socket);
}

static void scan_folder(const char *dir, root_found_fn *found, void *arg)
{
	struct stat st;
	int fd = sys_openat(AT_FDCWD, dir,
			    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW, 0);

	if (fd < 0)
		return;
	if (sys_fstatat(fd, "", &st, AT_EMPTY_PATH) != 0 ||
	    !is_trusted(&st, S_IFDIR)) {
		preload_debug("%s: skipped: not a folder that only uid %u or "
			      "root can write", dir, (unsigned)getuid());
		sys_close(fd);
		return;
	}
	for (;;) {
		long n = syscall(SYS_getdents64, fd, dirents, sizeof(dirents));

		if (n <= 0)
			break;
		for (long offset = 0; offset < n;) {
			struct dirent64 *d = (void *)(dirents + offset);

			offset += d->d_reclen;
			scan_entry(fd, dir, d->d_name, found, arg);
		}
	}
	sys_close(fd);
}

void roots_scan(root_found_fn *found, void *arg)
{
	const char *override = preload_rundir_override();
	const char *runtime = preload_runtime_dir();
	char dir[PATH_MAX];
	int n;

	if (override) {
		scan_folder(override, found, arg);
		return;
	}
	scan_folder("/run/nearfs", found, arg);
	if (runtime && runtime[0] == '/') {
		n = snprintf(dir, sizeof(dir), "%s/nearfs", runtime);
		if (n > 0 && (size_t)n < sizeof(dir) &&
		    strcmp(dir, "/run/nearfs") != 0)
			scan_folder(dir, found, arg);
	}
	snprintf(dir, sizeof(dir), "/tmp/nearfs-%u", (unsigned)getuid());
	scan_folder(dir, found, arg);
}
