/* test_s3_names.c - object keys to origin paths and back (s3_names.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "s3_names.h"

static void test_s3_names_key_of_table(void **state)
{
	static const struct {
		const char *prefix, *path;
		bool dir_slash;
		const char *key;
	} cases[] = {
		{ "", "", false, "" },
		{ "", "", true, "" },
		{ "", "a", false, "a" },
		{ "", "a/b", true, "a/b/" },
		{ "p", "", false, "p" },
		{ "p", "", true, "p/" },
		{ "p/q", "a", false, "p/q/a" },
		{ "p/q", "a/b", true, "p/q/a/b/" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *key = s3_key_of(cases[i].prefix, cases[i].path,
				      cases[i].dir_slash);

		assert_non_null(key);
		assert_string_equal(key, cases[i].key);
		free(key);
	}
}

static void test_s3_names_decode_listed(void **state)
{
	char *key = s3_decode_listed("a%20b/%C3%A9");

	assert_non_null(key);
	assert_string_equal(key, "a b/\xc3\xa9");
	free(key);
	assert_null(s3_decode_listed("a%00b"));
	assert_null(s3_decode_listed("a%zz"));
}

static void test_s3_names_entry_name_table(void **state)
{
	static const struct {
		const char *key, *list_prefix;
		const char *name;	/* NULL: hidden or the marker */
		bool has_reason;
	} cases[] = {
		{ "p/a", "p/", "a", false },
		{ "a b", "", "a b", false },
		{ "p/", "p/", NULL, false },		/* the marker */
		{ "q/a", "p/", NULL, true },
		{ "p/.", "p/", NULL, true },
		{ "p/..", "p/", NULL, true },
		/* A name with '/', which a delimited listing never returns,
		 * would name a file in another directory or outside. */
		{ "x/./y", "", NULL, true },
		{ "d/../etc/passwd", "d/", NULL, true },
		{ "/a", "", NULL, true },
		{ "p/a/", "p/", NULL, true },
	};
	const char *reason;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *name = s3_entry_name(cases[i].key,
						 cases[i].list_prefix, &reason);

		if (cases[i].name) {
			assert_non_null(name);
			assert_string_equal(name, cases[i].name);
		} else {
			assert_null(name);
		}
		assert_int_equal(reason != NULL, cases[i].has_reason);
	}
	assert_null(s3_entry_name(NULL, "", &reason));
	assert_non_null(reason);
}

static void test_s3_names_entry_name_max(void **state)
{
	char key[NAME_MAX + 2];
	const char *reason;

	memset(key, 'n', NAME_MAX);
	key[NAME_MAX] = '\0';
	assert_non_null(s3_entry_name(key, "", &reason));
	key[NAME_MAX] = 'n';
	key[NAME_MAX + 1] = '\0';
	assert_null(s3_entry_name(key, "", &reason));
	assert_non_null(reason);
}

static void test_s3_names_tree_path_table(void **state)
{
	static const struct {
		const char *key, *list_prefix;
		const char *path;	/* NULL: nothing left */
	} cases[] = {
		{ "p/a/b", "p/", "a/b" },
		{ "p/a/b/", "p/", "a/b/" },
		{ "x/./y", "", "x/" },
		{ "a//b", "", "a/" },
		{ "./a", "", NULL },
		{ "/a", "", NULL },
		{ "p/", "p/", NULL },
		{ "q/a", "p/", NULL },
	};
	const char *reason;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *key = strdup(cases[i].key);
		char *path;

		assert_non_null(key);
		path = s3_tree_path(key, cases[i].list_prefix, &reason);
		if (cases[i].path) {
			assert_non_null(path);
			assert_string_equal(path, cases[i].path);
		} else {
			assert_null(path);
		}
		free(key);
	}
}

/* Only each component is limited to NAME_MAX, not the whole path. */
static void test_s3_names_tree_path_long(void **state)
{
	char key[200 + 1 + 200 + 2 + 1];
	const char *reason;
	char *path;

	memset(key, 'd', 200);
	key[200] = '/';
	memset(key + 201, 'e', 200);
	strcpy(key + 401, "/f");
	path = s3_tree_path(key, "", &reason);
	assert_non_null(path);
	assert_int_equal(strlen(path), 403);
	assert_null(reason);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_s3_names_key_of_table),
		cmocka_unit_test(test_s3_names_decode_listed),
		cmocka_unit_test(test_s3_names_entry_name_table),
		cmocka_unit_test(test_s3_names_entry_name_max),
		cmocka_unit_test(test_s3_names_tree_path_table),
		cmocka_unit_test(test_s3_names_tree_path_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
