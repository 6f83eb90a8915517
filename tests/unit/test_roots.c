/* test_roots.c - the .nomount files of roots served without FUSE, and
 * the normalization of their paths. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_origin.c"
#include "roots.h"

static char dir[PATH_MAX];

static int setup(void **state)
{
	assert_int_equal(test_make_temp_dir("roots-tests-XXXXXX", dir,
					    sizeof(dir)), 0);
	return 0;
}

static int teardown(void **state)
{
	test_remove_tree(dir);
	return 0;
}

static void test_normalize_cases(void **state)
{
	static const struct {
		const char *path;
		bool dotdot;
		int ret;
		const char *want;
	} cases[] = {
		{ "/", false, 0, "/" },
		{ "//", false, 0, "/" },
		{ "/a//b/./c/", false, 0, "/a/b/c" },
		{ "/./a", false, 0, "/a" },
		{ "/a/../b", false, -EINVAL, NULL },
		{ "/a/../b", true, 0, "/b" },
		{ "/a/b/../../c/..", true, 0, "/" },
		{ "/..", true, -EINVAL, NULL },
		{ "/a/../..", true, -EINVAL, NULL },
		{ "/a..b/..c", false, 0, "/a..b/..c" },
		{ "a/b", false, -EINVAL, NULL },
		{ "", true, -EINVAL, NULL },
	};
	char out[PATH_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = roots_normalize(cases[i].path, cases[i].dotdot, out,
					  sizeof(out));

		if (ret != cases[i].ret)
			fail_msg("'%s': returned %d, expected %d",
				 cases[i].path, ret, cases[i].ret);
		if (cases[i].want && strcmp(out, cases[i].want) != 0)
			fail_msg("'%s': got '%s', expected '%s'",
				 cases[i].path, out, cases[i].want);
	}
}

static void test_normalize_limits(void **state)
{
	char name[NAME_MAX + 3], out[16];

	memset(name, 'n', sizeof(name) - 1);
	name[0] = '/';
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(roots_normalize(name, false, out, sizeof(out)),
			 -ENAMETOOLONG);
	assert_int_equal(roots_normalize("/0123456789abcdef", false, out,
					 sizeof(out)), -ENAMETOOLONG);
	assert_int_equal(roots_normalize("/0123456789abcd", false, out,
					 sizeof(out)), 0);
	assert_string_equal(out, "/0123456789abcd");
}

/* Listen on dir/<pid>.sock and name root in dir/<pid>.nomount, as a
 * daemon with that pid would.  Returns the listening socket. */
static int fake_daemon(pid_t pid, const char *root)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char path[PATH_MAX + 32];
	FILE *f;
	int fd, n;

	n = snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/%ld.sock", dir,
		     (long)pid);
	assert_true(n > 0 && (size_t)n < sizeof(addr.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(fd, 4), 0);
	snprintf(path, sizeof(path), "%s/%ld.nomount", dir, (long)pid);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", root);
	fclose(f);
	return fd;
}

static bool exists(const char *name)
{
	char path[PATH_MAX + 80];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

/* A pid that no process has: a child that already exited. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	return pid;
}

static void test_publish_rejects_served_root(void **state)
{
	pid_t other = getppid();
	int fd = fake_daemon(other, "/data");
	char sock[PATH_MAX + 32], err[256], text[64], path[PATH_MAX + 32];
	pid_t found;
	FILE *f;

	assert_int_equal(roots_find(dir, "/data"), other);
	assert_int_equal(roots_find(dir, "/data/sub"), 0);

	snprintf(sock, sizeof(sock), "%s/%ld.sock", dir, (long)getpid());
	assert_int_equal(roots_publish(sock, "/data", &found, err,
				       sizeof(err)), -EEXIST);
	assert_int_equal(found, other);
	assert_non_null(strstr(err, "served already by nearfs pid"));

	assert_int_equal(roots_publish(sock, "/other", &found, err,
				       sizeof(err)), 0);
	assert_int_equal(found, 0);
	snprintf(path, sizeof(path), "%s/%ld.nomount", dir, (long)getpid());
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(text, sizeof(text), f));
	fclose(f);
	assert_string_equal(text, "/other\n");

	roots_unpublish(sock);
	assert_int_equal(access(path, F_OK), -1);
	close(fd);
	/* No daemon listens any more, so the root counts as free. */
	assert_int_equal(roots_find(dir, "/data"), 0);
}

static void test_publish_removes_stale(void **state)
{
	pid_t dead = dead_pid();
	int fd = fake_daemon(dead, "/data");
	char sock[PATH_MAX + 32], err[256], name[64];
	pid_t found;

	close(fd);
	snprintf(sock, sizeof(sock), "%s/%ld.sock", dir, (long)getpid());
	assert_int_equal(roots_publish(sock, "/data", &found, err,
				       sizeof(err)), 0);
	snprintf(name, sizeof(name), "%ld.nomount", (long)dead);
	assert_false(exists(name));
	snprintf(name, sizeof(name), "%ld.sock", (long)dead);
	assert_false(exists(name));
	snprintf(name, sizeof(name), "%ld.nomount", (long)getpid());
	assert_true(exists(name));
	roots_unpublish(sock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize_cases),
		cmocka_unit_test(test_normalize_limits),
		cmocka_unit_test_setup_teardown(
			test_publish_rejects_served_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_publish_removes_stale,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
