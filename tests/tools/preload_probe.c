/*
 * preload_probe.c - read files in the ways the preload library must
 * handle, for tests: stdio, threads, fork, vfork, stat calls, dups and
 * reopens through /proc/self/fd.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static const char usage[] =
	"usage: preload_probe COMMAND ARGS...\n"
	"  stdio FILE        copy FILE to stdout with fopen(3) and fread(3)\n"
	"  threads N FILE    N threads each read FILE 4 times (open, fstat,\n"
	"                    pread, close); print one copy\n"
	"  fork FILE         print the first half of FILE, fork, and let the\n"
	"                    child print the rest through the same descriptor\n"
	"  vfork FILE        open FILE, let a vfork(2) child closefrom(3) and\n"
	"                    exit, then print FILE through the descriptor\n"
	"  fdlink FILE       print the target of /proc/self/fd/N of FILE\n"
	"  stat FILE OTHER   print 'CALL DEV INO MODE UID SIZE MTIME' for each\n"
	"                    stat call on a descriptor of FILE and of its\n"
	"                    dups; OTHER takes a closed number at the end\n"
	"  errno FILE        set errno to EXDEV, open FILE, print the result\n"
	"                    and errno\n"
	"  reopen FILE       reopen FILE through /proc/self/fd/N for reading\n"
	"                    and for writing, and print the results\n"
	"Exits with 0, 1 for a usage error, 2 when a call fails and 3 when\n"
	"the results differ between readers.\n";

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "preload_probe: %s %s: %s\n", what, arg,
		strerror(errno));
	exit(2);
}

static int open_or_die(const char *path)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		die("cannot open", path);
	return fd;
}

static void write_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDOUT_FILENO, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("cannot write", "to stdout");
		buf += n;
		len -= (size_t)n;
	}
}

/* Copy up to limit bytes (all when limit < 0) from fd to stdout. */
static void copy_out(int fd, long long limit, const char *path)
{
	char buf[65536];

	while (limit != 0) {
		size_t want = sizeof(buf);
		ssize_t n;

		if (limit > 0 && (long long)want > limit)
			want = (size_t)limit;
		n = read(fd, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("cannot read", path);
		if (n == 0)
			break;
		write_all(buf, (size_t)n);
		if (limit > 0)
			limit -= n;
	}
}

static int cmd_stdio(const char *path)
{
	char buf[8192];
	size_t n;
	FILE *fp = fopen(path, "r");

	if (!fp)
		die("cannot open", path);
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		write_all(buf, n);
	if (ferror(fp))
		die("cannot read", path);
	fclose(fp);
	return 0;
}

struct reader {
	pthread_t thread;
	const char *path;
	pthread_barrier_t *start;
	char *data;
	size_t size;
	bool failed;
};

static bool read_whole(struct reader *r)
{
	struct stat st;
	size_t done = 0;
	int fd = open(r->path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) != 0)
		return false;
	free(r->data);
	r->size = (size_t)st.st_size;
	r->data = malloc(r->size ? r->size : 1);
	while (r->data && done < r->size) {
		ssize_t n = pread(fd, r->data + done, r->size - done,
				  (off_t)done);

		if (n <= 0)
			break;
		done += (size_t)n;
	}
	close(fd);
	return r->data && done == r->size;
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	pthread_barrier_wait(r->start);
	for (int i = 0; i < 4 && !r->failed; i++)
		r->failed = !read_whole(r);
	return NULL;
}

static int cmd_threads(const char *count_text, const char *path)
{
	int count = atoi(count_text), status = 0;
	pthread_barrier_t start;
	struct reader *readers;

	if (count < 1 || count > 64) {
		fputs(usage, stderr);
		return 1;
	}
	readers = calloc((size_t)count, sizeof(*readers));
	if (!readers)
		die("cannot allocate", "readers");
	pthread_barrier_init(&start, NULL, (unsigned)count);
	for (int i = 0; i < count; i++) {
		readers[i].path = path;
		readers[i].start = &start;
		if (pthread_create(&readers[i].thread, NULL, reader_main,
				   &readers[i]) != 0)
			die("cannot start a thread for", path);
	}
	for (int i = 0; i < count; i++)
		pthread_join(readers[i].thread, NULL);
	for (int i = 0; i < count; i++) {
		if (readers[i].failed) {
			fprintf(stderr, "preload_probe: thread %d could not "
				"read %s\n", i, path);
			status = 2;
		} else if (readers[i].size != readers[0].size ||
			   memcmp(readers[i].data, readers[0].data,
				  readers[0].size) != 0) {
			fprintf(stderr, "preload_probe: thread %d read other "
				"bytes than thread 0\n", i);
			status = 3;
		}
	}
	if (status == 0)
		write_all(readers[0].data, readers[0].size);
	return status;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static int cmd_fork(const char *path)
{
	struct stat before, after;
	int fd = open_or_die(path), status, again;
	pid_t pid;

	if (fstat(fd, &before) != 0)
		die("cannot fstat", path);
	copy_out(fd, before.st_size / 2, path);
	pid = fork();
	if (pid < 0)
		die("cannot fork for", path);
	if (pid == 0) {
		/* The child shares the offset and must see the same file. */
		if (fstat(fd, &after) != 0 || !same_file(&before, &after))
			_exit(3);
		copy_out(fd, -1, path);
		again = open(path, O_RDONLY);
		if (again < 0 || fstat(again, &after) != 0 ||
		    !same_file(&before, &after))
			_exit(3);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		die("cannot wait for the child reading", path);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}

static int cmd_vfork(const char *path)
{
	struct stat before, after;
	int fd = open_or_die(path), status;
	pid_t pid;

	if (fstat(fd, &before) != 0)
		die("cannot fstat", path);
	pid = vfork();
	if (pid < 0)
		die("cannot vfork for", path);
	if (pid == 0) {
		/* The child closes its own descriptors, as a spawn does. */
		closefrom(3);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		die("cannot wait for the child of", path);
	if (fstat(fd, &after) != 0)
		die("cannot fstat", path);
	if (!same_file(&before, &after)) {
		fprintf(stderr, "preload_probe: fstat after vfork shows inode "
			"%llu, before %llu\n", (unsigned long long)after.st_ino,
			(unsigned long long)before.st_ino);
		return 3;
	}
	copy_out(fd, -1, path);
	return 0;
}

static int cmd_fdlink(const char *path)
{
	char link[64], target[4096];
	int fd = open_or_die(path);
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		die("cannot read the link", link);
	target[n] = '\0';
	printf("%s\n", target);
	return 0;
}

static void print_stat(const char *call, const struct stat *st)
{
	printf("%s %llu %llu %x %u %lld %lld\n", call,
	       (unsigned long long)st->st_dev, (unsigned long long)st->st_ino,
	       (unsigned)st->st_mode, (unsigned)st->st_uid,
	       (long long)st->st_size, (long long)st->st_mtim.tv_sec);
}

/* _STAT_VER of the pre-2.33 glibc stat entry points. */
#ifdef __x86_64__
#define STAT_VER 1
#else
#define STAT_VER 0
#endif

typedef int fstat_fn(int, struct stat *);
typedef int fxstat_fn(int, int, struct stat *);
typedef int fstatat_fn(int, const char *, struct stat *, int);
typedef int fxstatat_fn(int, int, const char *, struct stat *, int);
typedef int statx_fn(int, const char *, int, unsigned, struct statx *);

static void *symbol(const char *name)
{
	void *fn = dlsym(RTLD_DEFAULT, name);

	if (!fn) {
		fprintf(stderr, "preload_probe: no symbol %s\n", name);
		exit(2);
	}
	return fn;
}

/* Print the stat of fd by every entry point, looked up by name so that
 * each exported symbol is called. */
static void print_every_stat(const char *prefix, int fd)
{
	static const char *const fstats[] = { "fstat", "fstat64" };
	static const char *const fxstats[] = { "__fxstat", "__fxstat64" };
	static const char *const fstatats[] = { "fstatat", "fstatat64" };
	static const char *const fxstatats[] = { "__fxstatat",
						 "__fxstatat64" };
	char call[64];
	struct statx stx;
	struct stat st;

	for (int i = 0; i < 2; i++) {
		snprintf(call, sizeof(call), "%s%s", prefix, fstats[i]);
		if (((fstat_fn *)symbol(fstats[i]))(fd, &st) != 0)
			die("cannot call", call);
		print_stat(call, &st);
		snprintf(call, sizeof(call), "%s%s", prefix, fxstats[i]);
		if (((fxstat_fn *)symbol(fxstats[i]))(STAT_VER, fd, &st) != 0)
			die("cannot call", call);
		print_stat(call, &st);
		snprintf(call, sizeof(call), "%s%s", prefix, fstatats[i]);
		if (((fstatat_fn *)symbol(fstatats[i]))(fd, "", &st,
							AT_EMPTY_PATH) != 0)
			die("cannot call", call);
		print_stat(call, &st);
		snprintf(call, sizeof(call), "%s%s", prefix, fxstatats[i]);
		if (((fxstatat_fn *)symbol(fxstatats[i]))(STAT_VER, fd, "",
							  &st,
							  AT_EMPTY_PATH) != 0)
			die("cannot call", call);
		print_stat(call, &st);
	}
	snprintf(call, sizeof(call), "%sstatx", prefix);
	if (((statx_fn *)symbol("statx"))(fd, "", AT_EMPTY_PATH,
					  STATX_BASIC_STATS, &stx) != 0)
		die("cannot call", call);
	memset(&st, 0, sizeof(st));
	st.st_dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	st.st_ino = stx.stx_ino;
	st.st_mode = stx.stx_mode;
	st.st_uid = stx.stx_uid;
	st.st_size = (off_t)stx.stx_size;
	st.st_mtim.tv_sec = stx.stx_mtime.tv_sec;
	print_stat(call, &st);
}

static int cmd_stat(const char *path, const char *other)
{
	int fd = open_or_die(path), other_fd;
	int dups[5];

	print_every_stat("", fd);
	dups[0] = dup(fd);
	dups[1] = dup2(fd, 100);
	dups[2] = dup3(fd, 101, O_CLOEXEC);
	dups[3] = fcntl(fd, F_DUPFD, 200);
	dups[4] = fcntl(fd, F_DUPFD_CLOEXEC, 300);
	for (int i = 0; i < 5; i++)
		if (dups[i] < 0)
			die("cannot duplicate the descriptor of", path);
	close(fd);
	for (int i = 0; i < 5; i++) {
		char prefix[32];

		snprintf(prefix, sizeof(prefix), "dup%d-", i);
		print_every_stat(prefix, dups[i]);
	}
	/* A close and an open the library cannot see leave its entry for
	 * the number behind; stat must show the new file all the same. */
	syscall(SYS_close, dups[1]);
	other_fd = (int)syscall(SYS_openat, AT_FDCWD, other, O_RDONLY);
	if (other_fd < 0)
		die("cannot open", other);
	if (other_fd != dups[1] && dup2(other_fd, dups[1]) < 0)
		die("cannot duplicate the descriptor of", other);
	print_every_stat("stale-", dups[1]);
	return 0;
}

static int cmd_errno(const char *path)
{
	int fd;

	errno = EXDEV;
	fd = open(path, O_RDONLY);
	printf("%s %s\n", fd >= 0 ? "opened" : "failed",
	       strerrorname_np(errno));
	return 0;
}

static const char *result_name(bool ok)
{
	return ok ? "ok" : strerrorname_np(errno);
}

static int cmd_reopen(const char *path)
{
	struct stat st, reopened_st;
	char link[64];
	int fd = open_or_die(path), reopened;
	FILE *fp;

	if (fstat(fd, &st) != 0)
		die("cannot fstat", path);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	reopened = open(link, O_RDONLY);
	printf("read %s\n", result_name(reopened >= 0));
	if (reopened >= 0) {
		if (fstat(reopened, &reopened_st) != 0)
			die("cannot fstat", link);
		printf("read-inode %s\n",
		       same_file(&st, &reopened_st) ? "same" : "different");
	}
	printf("write %s\n", result_name(open(link, O_WRONLY) >= 0));
	fp = fopen(path, "r");
	if (!fp)
		die("cannot open", path);
	printf("freopen-write %s\n",
	       result_name(freopen(NULL, "r+", fp) != NULL));
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (strcmp(cmd, "stdio") == 0 && argc == 3)
		return cmd_stdio(argv[2]);
	if (strcmp(cmd, "threads") == 0 && argc == 4)
		return cmd_threads(argv[2], argv[3]);
	if (strcmp(cmd, "fork") == 0 && argc == 3)
		return cmd_fork(argv[2]);
	if (strcmp(cmd, "vfork") == 0 && argc == 3)
		return cmd_vfork(argv[2]);
	if (strcmp(cmd, "fdlink") == 0 && argc == 3)
		return cmd_fdlink(argv[2]);
	if (strcmp(cmd, "stat") == 0 && argc == 4)
		return cmd_stat(argv[2], argv[3]);
	if (strcmp(cmd, "errno") == 0 && argc == 3)
		return cmd_errno(argv[2]);
	if (strcmp(cmd, "reopen") == 0 && argc == 3)
		return cmd_reopen(argv[2]);
	fputs(usage, stderr);
	return 1;
}
