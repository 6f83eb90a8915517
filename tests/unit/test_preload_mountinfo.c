/* test_preload_mountinfo.c - the preload library's mountinfo parser. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "preload/mountinfo.c"

static void parse_ok(const char *text, struct mountinfo_line *out,
		     char *buf, size_t size)
{
	assert_true(strlen(text) < size);
	strcpy(buf, text);
	assert_int_equal(mountinfo_parse_line(buf, out), 0);
}

struct valid_case {
	const char *line;
	unsigned major, minor;
	const char *root, *mountpoint, *type;
};

static const struct valid_case valid_cases[] = {
	/* the example of proc(5) */
	{ "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 "
	  "/dev/root rw,errors=continue",
	  98, 0, "/mnt1", "/mnt/parent", "ext3" },
	{ "871 27 0:77 / /mnt/data rw,nosuid,nodev,relatime - fuse.nearfs "
	  "s3://bucket rw,user_id=0,group_id=0",
	  0, 77, "/", "/mnt/data", MOUNTINFO_NEARFS_TYPE },
	/* no optional fields */
	{ "22 27 0:21 / /proc rw,relatime - proc proc rw",
	  0, 21, "/", "/proc", "proc" },
	/* several optional fields */
	{ "40 30 0:50 / /a rw shared:5 master:2 propagate_from:1 - "
	  "fuse.nearfs /src rw",
	  0, 50, "/", "/a", "fuse.nearfs" },
	/* escaped space, tab, newline and backslash */
	{ "40 30 0:50 /sub\\040dir /mnt/my\\040data\\011tab\\012nl\\134back "
	  "rw - fuse.nearfs src rw",
	  0, 50, "/sub dir", "/mnt/my data\ttab\nnl\\back", "fuse.nearfs" },
	/* a backslash without three octal digits stays */
	{ "40 30 0:50 / /mnt/a\\b\\04 rw - fuse.nearfs src rw",
	  0, 50, "/", "/mnt/a\\b\\04", "fuse.nearfs" },
	{ "1 0 4095:1048575 / / rw - ext4 /dev/x rw",
	  4095, 1048575, "/", "/", "ext4" },
};

static void test_valid_lines(void **state)
{
	for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]);
	     i++) {
		const struct valid_case *c = &valid_cases[i];
		struct mountinfo_line m;
		char buf[512];

		parse_ok(c->line, &m, buf, sizeof(buf));
		assert_int_equal(m.major, c->major);
		assert_int_equal(m.minor, c->minor);
		assert_string_equal(m.root, c->root);
		assert_string_equal(m.mountpoint, c->mountpoint);
		assert_string_equal(m.type, c->type);
	}
}

static void test_invalid_lines(void **state)
{
	static const char *const lines[] = {
		"",
		"36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1",
		"36 35 98:0 /mnt1 /mnt/parent rw - ",
		"36 35 98-0 / /mnt rw - ext3 /dev/root rw",
		"36 35 :0 / /mnt rw - ext3 /dev/root rw",
		"36 35 98: / /mnt rw - ext3 /dev/root rw",
		"36 35 98:0x / /mnt rw - ext3 /dev/root rw",
		"36 35 98:0 /",
	};
	char buf[512];

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		struct mountinfo_line m;

		strcpy(buf, lines[i]);
		assert_int_equal(mountinfo_parse_line(buf, &m), -EINVAL);
	}
}

static void test_errno_kept(void **state)
{
	struct mountinfo_line m;
	char buf[512];

	errno = EXDEV;
	strcpy(buf, "36 35 99999999999999999999:0 / /mnt rw - ext3 x rw");
	assert_int_equal(mountinfo_parse_line(buf, &m), -EINVAL);
	assert_int_equal(errno, EXDEV);
	parse_ok("36 35 8:1 / /mnt rw - ext3 x rw", &m, buf, sizeof(buf));
	assert_int_equal(errno, EXDEV);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_lines),
		cmocka_unit_test(test_invalid_lines),
		cmocka_unit_test(test_errno_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
