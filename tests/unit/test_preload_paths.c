/* test_preload_paths.c - the preload library's lexical path functions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "preload/paths.c"

struct normalize_case {
	const char *base, *path, *want;
};

static const struct normalize_case normalize_cases[] = {
	{ NULL, "/", "/" },
	{ NULL, "/a/b", "/a/b" },
	{ NULL, "//a///b//", "/a/b" },
	{ NULL, "/a/./b/.", "/a/b" },
	{ NULL, "/a/b/../c", "/a/c" },
	{ NULL, "/a/b/../../..", "/" },
	{ NULL, "/..", "/" },
	{ NULL, "/a/..b/c..", "/a/..b/c.." },
	{ NULL, "/a/.../b", "/a/.../b" },
	{ "/w/x", "y", "/w/x/y" },
	{ "/w/x", "../root/f", "/w/root/f" },
	{ "/w/x", "./../../", "/" },
	{ "/w/x", ".", "/w/x" },
	{ "/", "a", "/a" },
	{ "/w/x", "/abs", "/abs" },
	{ "/w//x/", "y//z", "/w/x/y/z" },
};

static void normalize_table(void **state)
{
	char out[PATH_MAX];

	for (size_t i = 0; i < sizeof(normalize_cases) /
			       sizeof(normalize_cases[0]); i++) {
		const struct normalize_case *c = &normalize_cases[i];
		int len = path_normalize(c->base, c->path, out, sizeof(out));

		assert_int_equal(len, (int)strlen(c->want));
		assert_string_equal(out, c->want);
	}
}

static void normalize_relative_without_base(void **state)
{
	char out[64];

	assert_int_equal(path_normalize(NULL, "a/b", out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(path_normalize("rel", "a/b", out, sizeof(out)),
			 -EINVAL);
}

static void normalize_too_long(void **state)
{
	char out[8];

	assert_int_equal(path_normalize(NULL, "/abc/def", out, sizeof(out)),
			 -ENAMETOOLONG);
	/* Seven bytes and the NUL fit. */
	assert_int_equal(path_normalize(NULL, "/abc/de", out, sizeof(out)),
			 7);
	/* ".." frees room again. */
	assert_int_equal(path_normalize(NULL, "/abc/de/../x", out,
					sizeof(out)), 6);
	assert_string_equal(out, "/abc/x");
}

static void normalize_prefix(void **state)
{
	const char *path = "/r/a/../../b";
	char out[64];

	assert_int_equal(path_normalize_prefix(NULL, path, 4, out,
					       sizeof(out)), 4);
	assert_string_equal(out, "/r/a");
	assert_int_equal(path_normalize_prefix("/w", "../x", 0, out,
					       sizeof(out)), 2);
	assert_string_equal(out, "/w");
}

static void next_dotdot(void **state)
{
	const char *path = "a/..b/../c../..", *relative = "../x";
	const char *first = path_next_dotdot(path, path);

	assert_non_null(first);
	assert_int_equal(first - path, 6);
	first = path_next_dotdot(path, first + 2);
	assert_non_null(first);
	assert_int_equal(first - path, 13);
	assert_null(path_next_dotdot(path, first + 2));
	assert_ptr_equal(path_next_dotdot(relative, relative), relative);
	assert_null(path_next_dotdot("/a/b", "/a/b"));
}

static void below(void **state)
{
	assert_int_equal(path_below("/r", "/r", 2), 2);
	assert_int_equal(path_below("/r/x", "/r", 2), 2);
	assert_int_equal(path_below("/rx", "/r", 2), 0);
	assert_int_equal(path_below("/", "/r", 2), 0);
	assert_int_equal(path_below("/q/x", "/r", 2), 0);
}

static void encoded_len(void **state)
{
	assert_int_equal(path_encoded_len("/plain/name"), 11);
	/* space, '%', DEL and a byte above 0x7f: three bytes each */
	assert_int_equal(path_encoded_len("/a b%\x7f\xc3"), 15);
	assert_int_equal(path_encoded_len("\t\n"), 6);
}

static void decode_valid(void **state)
{
	char out[32];

	assert_int_equal(path_decode("a%20b", 5, out, sizeof(out)), 3);
	assert_string_equal(out, "a b");
	assert_int_equal(path_decode("%25%7f%C3%a9", 12, out, sizeof(out)),
			 4);
	assert_memory_equal(out, "%\x7f\xc3\xa9", 5);
	/* len limits what is decoded. */
	assert_int_equal(path_decode("abcdef", 3, out, sizeof(out)), 3);
	assert_string_equal(out, "abc");
}

static void decode_invalid(void **state)
{
	char out[4];

	assert_int_equal(path_decode("%2", 2, out, sizeof(out)), -EINVAL);
	assert_int_equal(path_decode("%zz", 3, out, sizeof(out)), -EINVAL);
	assert_int_equal(path_decode("%00", 3, out, sizeof(out)), -EINVAL);
	assert_int_equal(path_decode("abcd", 4, out, sizeof(out)), -EINVAL);
	assert_int_equal(path_decode("abc", 3, out, 0), -EINVAL);
}

static void hash_continues(void **state)
{
	uint64_t whole = path_hash(PATH_HASH_INIT, "/r/a", 4);
	uint64_t parts = path_hash(path_hash(PATH_HASH_INIT, "/r", 2), "/a", 2);

	assert_true(whole == parts);
	assert_true(whole != path_hash(PATH_HASH_INIT, "/r/b", 4));
	/* FNV-1a of the empty string is its offset basis. */
	assert_true(path_hash(PATH_HASH_INIT, "", 0) == PATH_HASH_INIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(normalize_table),
		cmocka_unit_test(normalize_relative_without_base),
		cmocka_unit_test(normalize_too_long),
		cmocka_unit_test(normalize_prefix),
		cmocka_unit_test(next_dotdot),
		cmocka_unit_test(below),
		cmocka_unit_test(encoded_len),
		cmocka_unit_test(decode_valid),
		cmocka_unit_test(decode_invalid),
		cmocka_unit_test(hash_continues),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
