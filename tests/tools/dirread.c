/* dirread.c - read part of a directory, then rewind or wait, for tests. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"usage: dirread DIR COUNT [rewind|pause]\n"
	"Read the first COUNT names of DIR (\".\" and \"..\" not counted;\n"
	"0 reads all) and print them, one per line, then close DIR.\n"
	"  rewind  after COUNT names, rewinddir(3) and print every name\n"
	"          instead\n"
	"  pause   after COUNT names, write \"paused\" to stderr, wait for a\n"
	"          line on stdin, then read the rest; print every name\n"
	"Exits with 0, 1 for a usage error, 2 when DIR cannot be opened and\n"
	"3 when readdir(3) fails (the names read before are printed).\n";

static int is_dot(const char *name)
{
	return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

/*
 * Read up to count names of dir (0: all), printing them when print is
 * set.  Returns the names read, or -1 with a message when readdir fails.
 */
static long read_names(DIR *dir, const char *path, long count, int print)
{
	struct dirent *e;
	long n = 0;

	while (count == 0 || n < count) {
		errno = 0;
		e = readdir(dir);
		if (!e) {
			if (errno == 0)
				break;
			fprintf(stderr, "dirread: readdir %s failed after %ld "
				"names: %s\n", path, n, strerror(errno));
			return -1;
		}
		if (is_dot(e->d_name))
			continue;
		if (print)
			printf("%s\n", e->d_name);
		n++;
	}
	return n;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 3 ? argv[3] : "";
	char line[64];
	long count;
	char *end;
	DIR *dir;
	int status = 0;

	if (argc < 3 || argc > 4 ||
	    (*mode && strcmp(mode, "rewind") && strcmp(mode, "pause"))) {
		fputs(usage, stderr);
		return 1;
	}
	count = strtol(argv[2], &end, 10);
	if (*end || count < 0) {
		fprintf(stderr, "dirread: invalid COUNT %s: expected a "
			"number of names\n", argv[2]);
		return 1;
	}
	dir = opendir(argv[1]);
	if (!dir) {
		fprintf(stderr, "dirread: opendir %s failed: %s\n", argv[1],
			strerror(errno));
		return 2;
	}
	if (read_names(dir, argv[1], count, strcmp(mode, "rewind") != 0) < 0)
		status = 3;
	if (!status && strcmp(mode, "rewind") == 0) {
		rewinddir(dir);
		if (read_names(dir, argv[1], 0, 1) < 0)
			status = 3;
	} else if (!status && strcmp(mode, "pause") == 0) {
		fflush(stdout);
		fputs("paused\n", stderr);
		if (!fgets(line, sizeof(line), stdin))
			fputs("dirread: stdin closed, reading on\n", stderr);
		if (read_names(dir, argv[1], 0, 1) < 0)
			status = 3;
	}
	closedir(dir);
	return status;
}
