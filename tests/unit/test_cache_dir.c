/* test_cache_dir.c - who may own and use the cache folder, the modes of
 * what the engine creates in it, and its register of origin leftovers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "fake_origin.c"
#include "internal.h"

#define CS (64u * 1024)
#define TTL_MS 1000

static struct test_env *create(void **state)
{
	return test_env_create(state, "cache-tests-dir-XXXXXX", CS, 64 * CS,
			       TTL_MS);
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

/* The folder of the only origin in env's cache_dir. */
static void origin_folder(struct test_env *env, char *buf, size_t len)
{
	snprintf(buf, len, "%s", cache_path(env->c));
}

static int data_files, data_files_open;

static int count_file(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F) {
		data_files++;
		if (st->st_mode & 077)
			data_files_open++;
	}
	return 0;
}

static void test_cache_dir_modes_private(void **state)
{
	struct test_env *env = create(state);
	char root[PATH_MAX], path[PATH_MAX + 16];

	test_put_text(env->fo, "/f", "some bytes");
	assert_int_equal(test_env_open(env), 0);
	assert_int_equal(test_read_path(env->c, "/f", path, 10, 0), 10);
	origin_folder(env, root, sizeof(root));
	assert_int_equal(mode_of(root), 0700);
	snprintf(path, sizeof(path), "%s/data", root);
	assert_int_equal(mode_of(path), 0700);
	snprintf(path, sizeof(path), "%s/lock", root);
	assert_int_equal(mode_of(path), 0600);
	snprintf(path, sizeof(path), "%s/leftovers", root);
	assert_int_equal(mode_of(path), 0700);
	snprintf(path, sizeof(path), "%s/data", root);
	data_files = data_files_open = 0;
	assert_int_equal(nftw(path, count_file, 8, FTW_PHYS), 0);
	assert_int_equal(data_files, 1);
	assert_int_equal(data_files_open, 0);
}

static void test_cache_dir_group_writable(void **state)
{
	struct test_env *env = create(state);

	assert_int_equal(chmod(env->dir, 0775), 0);
	assert_int_equal(test_env_open(env), -EPERM);
	assert_non_null(strstr(env->err, env->dir));
	assert_non_null(strstr(env->err, "mode 775"));
	assert_non_null(strstr(env->err, "chmod go-w"));
}

static void test_cache_dir_readable_allowed(void **state)
{
	struct test_env *env = create(state);

	assert_int_equal(chmod(env->dir, 0755), 0);
	assert_int_equal(test_env_open(env), 0);
}

static void test_cache_dir_origin_folder_open(void **state)
{
	struct test_env *env = create(state);
	char root[PATH_MAX];

	assert_int_equal(test_env_open(env), 0);
	origin_folder(env, root, sizeof(root));
	test_env_close(env);
	assert_int_equal(chmod(root, 0750), 0);
	assert_int_equal(test_env_open(env), -EPERM);
	assert_non_null(strstr(env->err, root));
	assert_non_null(strstr(env->err, "chmod 700"));
}

static void test_cache_dir_other_owner(void **state)
{
	struct test_env *env = create(state);

	if (geteuid() != 0)
		skip();
	assert_int_equal(chown(env->dir, 65534, 65534), 0);
	assert_int_equal(test_env_open(env), -EPERM);
	assert_non_null(strstr(env->err, "belongs to uid 65534"));
	assert_int_equal(chown(env->dir, 0, 0), 0);
}

static void test_cache_dir_not_folder(void **state)
{
	struct test_env *env = create(state);
	char file[PATH_MAX + 8];
	FILE *f;

	snprintf(file, sizeof(file), "%s/file", env->dir);
	f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	env->cfg.dir = file;
	assert_int_equal(test_env_open(env), -ENOTDIR);
	env->cfg.dir = env->dir;
}

/* A cache_dir that cannot be created: the message names it and states
 * what a usable one needs. */
static void test_cache_dir_cannot_create(void **state)
{
	struct test_env *env = create(state);
	char file[PATH_MAX + 8], below[PATH_MAX + 16];
	FILE *f;

	snprintf(file, sizeof(file), "%s/file", env->dir);
	snprintf(below, sizeof(below), "%s/sub", file);
	f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	env->cfg.dir = below;
	assert_int_equal(test_env_open(env), -ENOTDIR);
	assert_non_null(strstr(env->err, "cannot create the cache folder"));
	assert_non_null(strstr(env->err, "give a cache_dir on a writable "
				      "filesystem"));
	assert_non_null(strstr(env->err, below));
	env->cfg.dir = env->dir;
}

static void put_text_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* The path of the register entry of handle. */
static void entry_path(struct test_env *env, uint64_t handle, char *buf,
		       size_t len)
{
	snprintf(buf, len, "%s/leftovers/%016" PRIx64, cache_path(env->c),
		 handle);
}

static void test_leftover_discarded_at_start(void **state)
{
	struct test_env *env = create(state);
	char path[PATH_MAX + 32], got[256];
	uint64_t handle;

	assert_int_equal(test_env_open(env), 0);
	handle = origin_leftover_add(&env->fo->base, "d/.nearfs-tmp-abc123");
	assert_int_not_equal(handle, 0);
	entry_path(env, handle, path, sizeof(path));
	assert_int_equal(mode_of(path), 0600);

	/* A daemon that dies leaves the entry: the next start discards. */
	test_env_close(env);
	assert_int_equal(test_env_open(env), 0);
	leftovers_wait(env->c);
	fake_get_discarded(env->fo, got, sizeof(got));
	assert_string_equal(got, "d/.nearfs-tmp-abc123;");
	assert_int_equal(access(path, F_OK), -1);

	test_env_close(env);
	assert_int_equal(test_env_open(env), 0);
	leftovers_wait(env->c);
	assert_int_equal(fake_calls(env->fo, FAKE_DISCARD), 1);
}

static void test_leftover_done_forgets(void **state)
{
	struct test_env *env = create(state);
	char path[PATH_MAX + 32];
	uint64_t handle;

	assert_int_equal(test_env_open(env), 0);
	handle = origin_leftover_add(&env->fo->base, "upload-1\nkey");
	entry_path(env, handle, path, sizeof(path));
	assert_int_equal(access(path, F_OK), 0);
	origin_leftover_done(&env->fo->base, handle);
	assert_int_equal(access(path, F_OK), -1);

	test_env_close(env);
	assert_int_equal(test_env_open(env), 0);
	leftovers_wait(env->c);
	assert_int_equal(fake_calls(env->fo, FAKE_DISCARD), 0);
}

static void test_leftover_kept_on_failure(void **state)
{
	struct test_env *env = create(state);
	char path[PATH_MAX + 32], got[256];
	uint64_t handle, next;

	assert_int_equal(test_env_open(env), 0);
	handle = origin_leftover_add(&env->fo->base, "a/.nearfs-tmp-x1y2z3");
	entry_path(env, handle, path, sizeof(path));
	test_env_close(env);

	fake_fail_next(env->fo, FAKE_DISCARD, 1, EIO);
	assert_int_equal(test_env_open(env), 0);
	leftovers_wait(env->c);
	fake_get_discarded(env->fo, got, sizeof(got));
	assert_string_equal(got, "");
	assert_int_equal(access(path, F_OK), 0);
	/* A new entry does not take the handle of the one kept. */
	next = origin_leftover_add(&env->fo->base, "b/.nearfs-tmp-000000");
	assert_true(next > handle);
	origin_leftover_done(&env->fo->base, next);

	test_env_close(env);
	assert_int_equal(test_env_open(env), 0);
	leftovers_wait(env->c);
	fake_get_discarded(env->fo, got, sizeof(got));
	assert_string_equal(got, "a/.nearfs-tmp-x1y2z3;");
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(fake_calls(env->fo, FAKE_DISCARD), 2);
}

static void test_leftover_kept_read_only(void **state)
{
	struct test_env *env = create(state);
	char path[PATH_MAX + 32], got[256];
	uint64_t handle;

	assert_int_equal(test_env_open(env), 0);
	handle = origin_leftover_add(&env->fo->base, "c/.nearfs-tmp-qwerty");
	entry_path(env, handle, path, sizeof(path));
	test_env_close(env);

	env->cfg.read_only = true;
	assert_int_equal(test_env_open(env), 0);
	leftovers_wait(env->c);
	assert_int_equal(fake_calls(env->fo, FAKE_DISCARD), 0);
	assert_int_equal(access(path, F_OK), 0);
	test_env_close(env);

	env->cfg.read_only = false;
	assert_int_equal(test_env_open(env), 0);
	leftovers_wait(env->c);
	fake_get_discarded(env->fo, got, sizeof(got));
	assert_string_equal(got, "c/.nearfs-tmp-qwerty;");
	assert_int_equal(access(path, F_OK), -1);
}

static void test_leftover_foreign_files(void **state)
{
	struct test_env *env = create(state);
	char dir[PATH_MAX], path[PATH_MAX + 32], got[256];
	uint64_t handle;

	assert_int_equal(test_env_open(env), 0);
	snprintf(dir, sizeof(dir), "%s/leftovers", cache_path(env->c));
	handle = origin_leftover_add(&env->fo->base, "e/.nearfs-tmp-aaaaaa");
	assert_int_not_equal(handle, 0);
	snprintf(path, sizeof(path), "%s/%016" PRIx64 ".part", dir, handle);
	assert_int_equal(access(path, F_OK), -1);
	test_env_close(env);

	/* A FIFO named like an entry must not stop the start, a name with
	 * "0x" is no entry, an entry whose write a crash cut short goes
	 * without a discard, and an empty entry at the last handle must not
	 * wrap the handles to 0. */
	snprintf(path, sizeof(path), "%s/0000000000000009.part", dir);
	put_text_file(path, "h/.nearfs-tmp-dddddd");
	snprintf(path, sizeof(path), "%s/0000000000000007", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	snprintf(path, sizeof(path), "%s/0x0000000000000f", dir);
	put_text_file(path, "g/.nearfs-tmp-cccccc");
	snprintf(path, sizeof(path), "%s/ffffffffffffffff", dir);
	put_text_file(path, "");

	assert_int_equal(test_env_open(env), 0);
	leftovers_wait(env->c);
	fake_get_discarded(env->fo, got, sizeof(got));
	assert_string_equal(got, "e/.nearfs-tmp-aaaaaa;");
	snprintf(path, sizeof(path), "%s/0000000000000007", dir);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/0x0000000000000f", dir);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/ffffffffffffffff", dir);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/0000000000000009.part", dir);
	assert_int_equal(access(path, F_OK), -1);
	handle = origin_leftover_add(&env->fo->base, "f/.nearfs-tmp-bbbbbb");
	assert_true(handle > 9);
	assert_true(handle < UINT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_cache_dir_modes_private,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_cache_dir_group_writable,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_cache_dir_readable_allowed,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_cache_dir_origin_folder_open,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_cache_dir_other_owner,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_cache_dir_cannot_create,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_cache_dir_not_folder,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_leftover_discarded_at_start,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_leftover_done_forgets,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_leftover_kept_on_failure,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_leftover_kept_read_only,
					  test_env_teardown),
		cmocka_unit_test_teardown(test_leftover_foreign_files,
					  test_env_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
