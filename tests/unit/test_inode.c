/* test_inode.c - the inode number <-> path table of the FUSE layer:
 * references, renames, and the pins that keep a replaced file's
 * content for its inode. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "inode.h"

static int released[8];
static int nreleased;

static void count_unpin(void *pin)
{
	released[nreleased++] = *(int *)pin;
}

static int read_pin(void *pin, void *arg)
{
	*(int *)arg = *(int *)pin;
	return 0;
}

static struct inode_table *table(void)
{
	struct inode_table *t;

	assert_int_equal(inode_table_new(&t), 0);
	inode_table_set_unpin(t, count_unpin);
	nreleased = 0;
	return t;
}

static uint64_t ref(struct inode_table *t, const char *path)
{
	uint64_t ino, generation;

	assert_int_equal(inode_ref(t, path, S_IFREG, &ino, &generation), 0);
	return ino;
}

static uint64_t ref_type(struct inode_table *t, const char *path,
			 unsigned type)
{
	uint64_t ino, generation;

	assert_int_equal(inode_ref(t, path, type, &ino, &generation), 0);
	return ino;
}

static void test_inode_type_change_detaches(void **state)
{
	struct inode_table *t = table();
	uint64_t file = ref_type(t, "a", S_IFREG);
	uint64_t dir = ref_type(t, "d", S_IFDIR);
	uint64_t child = ref_type(t, "d/x", S_IFREG);
	uint64_t link, now_file;
	char *path;

	(void)state;
	assert_int_equal(ref_type(t, "a", S_IFREG), file);
	link = ref_type(t, "a", S_IFLNK);
	assert_int_not_equal(link, file);
	assert_int_equal(inode_type(t, file), S_IFREG);
	assert_int_equal(inode_type(t, link), S_IFLNK);
	assert_int_equal(inode_path(t, file, &path), -ENOENT);
	assert_int_equal(inode_find(t, "a"), link);

	now_file = ref_type(t, "d", S_IFREG);
	assert_int_not_equal(now_file, dir);
	assert_int_equal(inode_path(t, child, &path), -ENOENT);
	assert_int_equal(inode_find(t, "d/x"), 0);
	assert_int_equal(inode_type(t, INODE_ROOT), S_IFDIR);
	assert_int_equal(inode_type(t, 999999), 0);
	inode_table_free(t);
}

static void test_inode_rename_moves_and_detaches(void **state)
{
	struct inode_table *t = table();
	uint64_t a = ref(t, "a"), b = ref(t, "b");
	char *path;

	(void)state;
	assert_int_equal(inode_rename(t, "a", "b", false), 0);
	assert_int_equal(inode_path(t, a, &path), 0);
	assert_string_equal(path, "b");
	free(path);
	assert_int_equal(inode_path(t, b, &path), -ENOENT);
	assert_int_equal(inode_find(t, "b"), a);
	assert_int_equal(inode_find(t, "a"), 0);
	inode_table_free(t);
}

static void test_inode_pin_survives_rename(void **state)
{
	static int one = 1;
	struct inode_table *t = table();
	uint64_t a = ref(t, "a"), b = ref(t, "b");
	int got = 0;

	(void)state;
	assert_int_equal(inode_pin(t, "b", &one), 0);
	assert_int_equal(inode_rename(t, "a", "b", false), 0);
	assert_int_equal(inode_copy_pin(t, b, read_pin, &got), 0);
	assert_int_equal(got, 1);
	assert_int_equal(inode_copy_pin(t, a, read_pin, &got), -ENOENT);
	assert_int_equal(nreleased, 0);

	inode_forget(t, b, 1);
	assert_int_equal(nreleased, 1);
	assert_int_equal(released[0], 1);
	inode_table_free(t);
	assert_int_equal(nreleased, 1);
}

static void test_inode_pin_rejects_missing_second(void **state)
{
	static int one = 1, two = 2;
	struct inode_table *t = table();

	(void)state;
	assert_int_equal(inode_pin(t, "missing", &one), -ENOENT);
	ref(t, "b");
	assert_int_equal(inode_pin(t, "b", &one), 0);
	assert_int_equal(inode_pin(t, "b", &two), -EEXIST);
	assert_ptr_equal(inode_unpin(t, "b"), &one);
	assert_null(inode_unpin(t, "b"));
	assert_int_equal(nreleased, 0);
	inode_table_free(t);
	assert_int_equal(nreleased, 0);
}

static void test_inode_unpin_all_releases_each(void **state)
{
	static int one = 1, two = 2;
	struct inode_table *t = table();
	uint64_t a = ref(t, "a");
	int got = 0;

	(void)state;
	ref(t, "b");
	assert_int_equal(inode_pin(t, "a", &one), 0);
	assert_int_equal(inode_pin(t, "b", &two), 0);
	inode_unpin_all(t);
	assert_int_equal(nreleased, 2);
	assert_int_equal(released[0] + released[1], 3);
	assert_int_equal(inode_copy_pin(t, a, read_pin, &got), -ENOENT);
	inode_table_free(t);
	assert_int_equal(nreleased, 2);
}

static void test_inode_table_free_releases_pins(void **state)
{
	static int three = 3;
	struct inode_table *t = table();

	(void)state;
	ref(t, "c");
	assert_int_equal(inode_pin(t, "c", &three), 0);
	inode_table_free(t);
	assert_int_equal(nreleased, 1);
	assert_int_equal(released[0], 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inode_type_change_detaches),
		cmocka_unit_test(test_inode_rename_moves_and_detaches),
		cmocka_unit_test(test_inode_pin_survives_rename),
		cmocka_unit_test(test_inode_pin_rejects_missing_second),
		cmocka_unit_test(test_inode_unpin_all_releases_each),
		cmocka_unit_test(test_inode_table_free_releases_pins),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
