/* test_log.c - the rate limiter of log.h, driven by a fake clock, and the
 * escaping of control characters. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

#define MAX_LINES 64

/* The lines log_set_output() received. */
struct captured {
	size_t count;
	int level[MAX_LINES];
	size_t len[MAX_LINES];	/* of the whole line, before the copy's cut */
	char line[MAX_LINES][256];
};

static struct captured out;
static uint64_t fake_ms;

static uint64_t fake_now(void)
{
	return fake_ms;
}

static void capture(void *arg, int level, const char *line)
{
	struct captured *c = arg;

	assert_true(c->count < MAX_LINES);
	c->level[c->count] = level;
	c->len[c->count] = strlen(line);
	snprintf(c->line[c->count], sizeof(c->line[0]), "%s", line);
	c->count++;
}

/* Each test starts an hour after the last one, so no window of an
 * earlier test is still open, and with nothing suppressed. */
static int setup(void **state)
{
	clock_now_ms = fake_now;
	fake_ms += 3600 * 1000;
	log_max_level = LOG_DEBUG;
	log_set_output(NULL, NULL);
	log_flush_suppressed();
	memset(&out, 0, sizeof(out));
	log_set_output(capture, &out);
	return 0;
}

static int teardown(void **state)
{
	log_set_output(NULL, NULL);
	return 0;
}

/* Two call sites, each with its own limiter. */
static void site_a(int level, int n)
{
	log_limited(level, "a %d", n);
}

static void site_b(int n)
{
	log_limited(LOG_WARNING, "b %d", n);
}

static void test_limit_suppresses_in_window(void **state)
{
	site_a(LOG_WARNING, 1);
	for (int n = 2; n <= 10; n++) {
		fake_ms += 1000;
		site_a(LOG_WARNING, n);
	}
	fake_ms += 999;		/* 9999 ms after the first */
	site_a(LOG_WARNING, 11);
	assert_int_equal(out.count, 1);
	assert_string_equal(out.line[0], "a 1");
	assert_int_equal(out.level[0], LOG_WARNING);

	fake_ms += 1;		/* the window of 10 s is over */
	site_a(LOG_WARNING, 12);
	assert_int_equal(out.count, 2);
	assert_string_equal(out.line[1],
			    "a 12 (10 similar messages suppressed)");
	assert_int_equal(out.level[1], LOG_WARNING);

	/* The second window starts at the second line. */
	fake_ms += 5000;
	site_a(LOG_WARNING, 13);
	fake_ms += 5000;
	site_a(LOG_WARNING, 14);
	assert_int_equal(out.count, 3);
	assert_string_equal(out.line[2],
			    "a 14 (1 similar message suppressed)");
}

static void test_limit_quiet_site_writes_plain(void **state)
{
	site_a(LOG_INFO, 1);
	fake_ms += 20000;
	site_a(LOG_INFO, 2);
	fake_ms += 20000;
	site_a(LOG_INFO, 3);
	assert_int_equal(out.count, 3);
	assert_string_equal(out.line[0], "a 1");
	assert_string_equal(out.line[1], "a 2");
	assert_string_equal(out.line[2], "a 3");
}

static void test_limit_flush_writes_last(void **state)
{
	site_a(LOG_ERR, 1);
	site_a(LOG_ERR, 2);
	site_a(LOG_ERR, 3);
	site_a(LOG_ERR, 4);
	assert_int_equal(out.count, 1);

	log_flush_suppressed();
	assert_int_equal(out.count, 2);
	assert_string_equal(out.line[1], "a 4 (2 similar messages suppressed)");
	assert_int_equal(out.level[1], LOG_ERR);

	/* Nothing is left to flush. */
	log_flush_suppressed();
	assert_int_equal(out.count, 2);

	/* The flush starts a new window: one more message is held back,
	 * and a flush writes it without a count. */
	fake_ms += 1000;
	site_a(LOG_ERR, 5);
	assert_int_equal(out.count, 2);
	log_flush_suppressed();
	assert_int_equal(out.count, 3);
	assert_string_equal(out.line[2], "a 5");
}

static void test_limit_sites_independent(void **state)
{
	for (int n = 1; n <= 5; n++) {
		site_a(LOG_WARNING, n);
		site_b(n);
	}
	assert_int_equal(out.count, 2);
	assert_string_equal(out.line[0], "a 1");
	assert_string_equal(out.line[1], "b 1");

	fake_ms += LOG_LIMIT_WINDOW_MS;
	site_b(6);
	assert_int_equal(out.count, 3);
	assert_string_equal(out.line[2], "b 6 (4 similar messages suppressed)");

	log_flush_suppressed();
	assert_int_equal(out.count, 4);
	assert_string_equal(out.line[3], "a 5 (3 similar messages suppressed)");
}

static void test_limit_skips_hidden_levels(void **state)
{
	log_max_level = LOG_WARNING;
	site_a(LOG_INFO, 1);
	site_a(LOG_INFO, 2);
	assert_int_equal(out.count, 0);

	/* Hidden messages neither open a window nor count. */
	site_a(LOG_WARNING, 3);
	assert_int_equal(out.count, 1);
	assert_string_equal(out.line[0], "a 3");
	site_a(LOG_INFO, 4);
	log_flush_suppressed();
	assert_int_equal(out.count, 1);
}

static void test_limit_plain_log_unlimited(void **state)
{
	for (int n = 1; n <= 3; n++)
		log_warn("plain %d", n);
	assert_int_equal(out.count, 3);
	assert_string_equal(out.line[2], "plain 3");
}

static void test_escape_newline_in_name(void **state)
{
	log_warn("cannot read %s: %s", "a\nnearfs: error: fake\x1b[31m\x7f",
		 "Input/output error");
	assert_int_equal(out.count, 1);
	assert_string_equal(out.line[0], "cannot read a\\x0anearfs: error:"
			    " fake\\x1b[31m\\x7f: Input/output error");
}

static void test_escape_keeps_utf8(void **state)
{
	log_info("mounted %s", "caf\xc3\xa9/\t");
	assert_int_equal(out.count, 1);
	assert_string_equal(out.line[0], "mounted caf\xc3\xa9/\\x09");
}

/* A line full of control characters is cut to whole escapes within the
 * 2048 bytes of a line. */
static void test_escape_cuts_long_line(void **state)
{
	char name[1500];

	memset(name, '\n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	log_warn("%s", name);
	assert_int_equal(out.count, 1);
	assert_int_equal(out.len[0], 2044);
	assert_int_equal(strncmp(out.line[0], "\\x0a\\x0a", 8), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_limit_suppresses_in_window, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_limit_quiet_site_writes_plain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit_flush_writes_last,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit_sites_independent,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit_skips_hidden_levels,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit_plain_log_unlimited,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_escape_newline_in_name,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_escape_keeps_utf8,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_escape_cuts_long_line,
						setup, teardown),
	};

	(void)argc;
	(void)argv;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
