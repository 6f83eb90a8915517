/* kernel_ra.c - raise the kernel's readahead on a new mount. */
#include "kernel_ra.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

/*
 * Compare a path from /proc/self/mountinfo, where space, tab, newline and
 * backslash appear as \040, \011, \012 and \134, with a plain path.
 */
static bool escaped_equal(const char *escaped, const char *path)
{
	while (*escaped && *path) {
		char c = *escaped;

		if (c == '\\' && escaped[1] >= '0' && escaped[1] <= '3' &&
		    escaped[2] >= '0' && escaped[2] <= '7' &&
		    escaped[3] >= '0' && escaped[3] <= '7') {
			c = (char)((escaped[1] - '0') << 6 |
				   (escaped[2] - '0') << 3 | (escaped[3] - '0'));
			escaped += 4;
		} else {
			escaped++;
		}
		if (c != *path++)
			return false;
	}
	return !*escaped && !*path;
}

int mount_ids(const char *mountpoint, int *id, unsigned *major,
	      unsigned *minor)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int ret = -ENOENT;

	if (!f)
		return -errno;
	/* id parent major:minor root mountpoint options ... - type ... */
	while (getline(&line, &cap, f) > 0) {
		char point[4096], type[64];
		unsigned maj, min;
		int mnt;
		char *sep = strstr(line, " - ");

		if (!sep || sscanf(line, "%d %*u %u:%u %*s %4095s", &mnt, &maj,
				   &min, point) != 4 ||
		    sscanf(sep + 3, "%63s", type) != 1)
			continue;
		/* The newest mount on the path is the last one listed. */
		if (!strncmp(type, "fuse", 4) &&
		    escaped_equal(point, mountpoint)) {
			if (id)
				*id = mnt;
			if (major)
				*major = maj;
			if (minor)
				*minor = min;
			ret = 0;
		}
	}
	free(line);
	fclose(f);
	return ret;
}

void kernel_readahead_raise(const char *mountpoint, unsigned kib)
{
	char path[64];
	unsigned major, minor;
	FILE *f;
	int ret;

	ret = mount_ids(mountpoint, NULL, &major, &minor);
	if (ret) {
		log_debug("kernel readahead left as it is: no device for %s"
			  " (%s)", mountpoint, strerror(-ret));
		return;
	}
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb",
		 major, minor);
	f = fopen(path, "we");
	if (f) {
		bool written = fprintf(f, "%u\n", kib) > 0;

		ret = fclose(f) == 0 && written ? 0 : -EIO;
	} else {
		ret = -errno;
	}
	if (ret) {
		/* Only root may write it; the kernel's default then stays. */
		log_debug("kernel readahead left as it is: %s: %s", path,
			  strerror(-ret));
		return;
	}
	log_debug("kernel readahead of %s set to %u KiB", mountpoint, kib);
}

/* The thread's own copy of the mountpoint: main() frees the options
 * at exit while the detached thread may still read them. */
struct raise_args {
	unsigned kib;
	char mountpoint[];
};

static void *raise_when_ready(void *arg)
{
	struct raise_args *a = arg;
	struct stat st;

	/* The stat returns once the kernel has taken the INIT reply. */
	if (stat(a->mountpoint, &st) == 0)
		kernel_readahead_raise(a->mountpoint, a->kib);
	free(a);
	return NULL;
}

void kernel_readahead_raise_later(const char *mountpoint, unsigned kib)
{
	size_t len = strlen(mountpoint) + 1;
	struct raise_args *a = malloc(sizeof(*a) + len);
	pthread_attr_t attr;
	pthread_t thread;

	if (!a)
		return;
	memcpy(a->mountpoint, mountpoint, len);
	a->kib = kib;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&thread, &attr, raise_when_ready, a) != 0) {
		log_debug("kernel readahead left as it is: no thread");
		free(a);
	}
	pthread_attr_destroy(&attr);
}
