/* roots.c - the files that name the roots served without FUSE (roots.h). */
#include "roots.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "preload/protocol.h"

#define SOCK_SUFFIX ".sock"
/* A folder and one name in it. */
#define ENTRY_PATH_MAX (PATH_MAX + NAME_MAX + 2)

int roots_normalize(const char *path, bool dotdot, char *out, size_t size)
{
	const char *p = path;
	size_t len = 0;

	if (path[0] != '/' || size < 2)
		return -EINVAL;
	while (*p) {
		size_t n;

		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.')) {
			p += n;
			continue;
		}
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (!dotdot || len == 0)
				return -EINVAL;
			while (out[--len] != '/')
				;
			p += n;
			continue;
		}
		if (n > NAME_MAX || len + 1 + n + 1 > size)
			return -ENAMETOOLONG;
		out[len++] = '/';
		memcpy(out + len, p, n);
		len += n;
		p += n;
	}
	if (len == 0)
		out[len++] = '/';
	out[len] = '\0';
	return 0;
}

size_t roots_dirs(char dirs[ROOTS_DIRS_MAX][PATH_MAX])
{
	const char *runtime = getenv("XDG_RUNTIME_DIR");
	size_t n = 0;
	int len;

	snprintf(dirs[n++], PATH_MAX, "/run/nearfs");
	if (runtime && runtime[0] == '/') {
		len = snprintf(dirs[n], PATH_MAX, "%s/nearfs", runtime);
		if (len > 0 && len < PATH_MAX)
			n++;
	}
	snprintf(dirs[n++], PATH_MAX, "/tmp/nearfs-%u", (unsigned)getuid());
	return n;
}

/* Connect to the socket at path and close the connection.  Returns 0
 * when a daemon accepted it, else the errno of the failure. */
static int socket_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, ret = 0;

	if (strlen(path) >= sizeof(addr.sun_path))
		return ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		ret = errno;
	close(fd);
	return ret;
}

/* Whether a daemon accepts connections on the socket at path. */
static int socket_answers(const char *path)
{
	return socket_connect(path) == 0;
}

/* Read the root named by the .nomount file at path into root. */
static int read_root(const char *path, char *root, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, root, size - 1);
	close(fd);
	if (n <= 0 || root[n - 1] != '\n' || root[0] != '/')
		return -EINVAL;
	root[n - 1] = '\0';
	return 0;
}

/* The pid of a file named <pid>suffix, or 0 for another name. */
static pid_t name_pid(const char *name, const char *suffix)
{
	size_t digits = strspn(name, "0123456789");

	if (digits == 0 || digits > 9 || strcmp(name + digits, suffix) != 0)
		return 0;
	return (pid_t)atol(name);
}

/* The pid of a file named "<pid>.nomount", or 0 for another name. */
static pid_t nomount_pid(const char *name)
{
	return name_pid(name, NEARFS_NOMOUNT_SUFFIX);
}

int roots_scan(const char *dir, roots_fn fn, void *arg)
{
	char path[ENTRY_PATH_MAX], sock[ENTRY_PATH_MAX], root[PATH_MAX];
	struct dirent *e;
	int ret = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return 0;
	while (ret == 0 && (e = readdir(d))) {
		pid_t pid = nomount_pid(e->d_name);

		if (!pid)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		snprintf(sock, sizeof(sock), "%s/%ld" SOCK_SUFFIX, dir,
			 (long)pid);
		if (read_root(path, root, sizeof(root)) == 0 &&
		    socket_answers(sock))
			ret = fn(arg, pid, root, sock);
	}
	closedir(d);
	return ret;
}

struct find_state {
	const char *root;
	pid_t pid;
};

static int find_root(void *arg, pid_t pid, const char *root,
		     const char *sock)
{
	struct find_state *fs = arg;

	if (pid == getpid() || strcmp(root, fs->root) != 0)
		return 0;
	fs->pid = pid;
	return 1;
}

pid_t roots_find(const char *dir, const char *root)
{
	struct find_state fs = { .root = root };

	roots_scan(dir, find_root, &fs);
	return fs.pid;
}

/* The .nomount file of the socket sock, with suffix appended. */
static int nomount_file(const char *sock, const char *suffix, char *out,
			size_t size)
{
	size_t len = strlen(sock), cut = strlen(SOCK_SUFFIX);
	int n;

	if (len < cut || strcmp(sock + len - cut, SOCK_SUFFIX) != 0)
		return -EINVAL;
	n = snprintf(out, size, "%.*s" NEARFS_NOMOUNT_SUFFIX "%s",
		     (int)(len - cut), sock, suffix);
	return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

/* Remove the files of daemons in dir that ended without removing them,
 * so that clients do not try them again. */
static void remove_stale(const char *dir)
{
	char path[ENTRY_PATH_MAX];
	struct dirent *e;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d))) {
		pid_t pid = nomount_pid(e->d_name);

		if (!pid || kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
		snprintf(path, sizeof(path), "%s/%ld" SOCK_SUFFIX, dir,
			 (long)pid);
		unlink(path);
	}
	closedir(d);
}

void roots_remove_stale_sockets(const char *dir)
{
	char path[ENTRY_PATH_MAX];
	struct dirent *e;
	struct stat st;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d))) {
		pid_t pid = name_pid(e->d_name, SOCK_SUFFIX);

		if (!pid || pid == getpid() || kill(pid, 0) == 0 ||
		    errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		/* A listener means a live daemon, maybe of another pid
		 * namespace. */
		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
		    socket_connect(path) == ECONNREFUSED)
			unlink(path);
	}
	closedir(d);
}

/* Write root and a newline to a new file at path, then move it to
 * final, so that a reader never sees a partial root. */
static int write_file(const char *path, const char *final, const char *root)
{
	size_t len = strlen(root);
	char *text = malloc(len + 2);
	int fd, ret = 0;

	if (!text)
		return -ENOMEM;
	memcpy(text, root, len);
	text[len] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		free(text);
		return ret;
	}
	errno = 0;
	if (write(fd, text, len + 1) != (ssize_t)(len + 1))
		ret = errno ? -errno : -EIO;
	if (close(fd) != 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && rename(path, final) != 0)
		ret = -errno;
	if (ret)
		unlink(path);
	free(text);
	return ret;
}

int roots_publish(const char *sock, const char *root, pid_t *other,
		  char *err, size_t errlen)
{
	char final[PATH_MAX], tmp[PATH_MAX], dir[PATH_MAX];
	const char *slash = strrchr(sock, '/');
	int dir_fd, ret;

	*other = 0;
	ret = nomount_file(sock, "", final, sizeof(final));
	if (ret == 0)
		ret = nomount_file(sock, ".tmp", tmp, sizeof(tmp));
	if (ret || !slash || slash == sock) {
		snprintf(err, errlen, "cannot name the %s file of the control "
			 "socket %s", NEARFS_NOMOUNT_SUFFIX, sock);
		return ret ? ret : -EINVAL;
	}
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - sock), sock);
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0 || flock(dir_fd, LOCK_EX) != 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot lock the control socket folder "
			 "%s: %s", dir, strerror(-ret));
		goto out_close;
	}
	remove_stale(dir);
	*other = roots_find(dir, root);
	if (*other) {
		ret = -EEXIST;
		snprintf(err, errlen, "%s is served already by nearfs pid %ld: "
			 "stop that daemon first (kill %ld)", root,
			 (long)*other, (long)*other);
		goto out_close;
	}
	ret = write_file(tmp, final, root);
	if (ret)
		snprintf(err, errlen, "cannot write %s: %s", final,
			 strerror(-ret));
out_close:
	if (dir_fd >= 0)
		close(dir_fd);	/* releases the lock */
	return ret;
}

void roots_unpublish(const char *sock)
{
	char path[PATH_MAX];

	if (nomount_file(sock, "", path, sizeof(path)) == 0)
		unlink(path);
}
