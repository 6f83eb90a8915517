/* test_latency.c - the request duration histograms of the origins. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "origin.h"

static struct origin_latency_stats snapshot(const struct origin_latency *h)
{
	struct origin_latency_stats s;

	origin_latency_read(h, &s);
	return s;
}

static void add_many(struct origin_latency *h, uint64_t us, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		origin_latency_add(h, us);
}

static void test_latency_bucket_bounds(void **state)
{
	(void)state;
	assert_int_equal(origin_latency_bound_us(0), 16);
	assert_int_equal(origin_latency_bound_us(1), 32);
	assert_int_equal(origin_latency_bound_us(ORIGIN_LATENCY_BUCKETS - 2),
			 16ull << (ORIGIN_LATENCY_BUCKETS - 2));
	assert_true(origin_latency_bound_us(ORIGIN_LATENCY_BUCKETS - 1) ==
		    UINT64_MAX);
}

static void test_latency_add_picks_bucket(void **state)
{
	struct origin_latency h;
	struct origin_latency_stats s;

	(void)state;
	memset(&h, 0, sizeof(h));
	origin_latency_add(&h, 0);
	origin_latency_add(&h, 16);
	origin_latency_add(&h, 17);
	origin_latency_add(&h, 1000);
	origin_latency_add(&h, 1000ull * 1000 * 1000);
	s = snapshot(&h);
	assert_int_equal(s.buckets[0], 2);
	assert_int_equal(s.buckets[1], 1);
	/* 1000 us lies in (512, 1024]. */
	assert_int_equal(s.buckets[6], 1);
	assert_int_equal(s.buckets[ORIGIN_LATENCY_BUCKETS - 1], 1);
	assert_int_equal(s.count, 5);
	assert_int_equal(s.sum_us, 0 + 16 + 17 + 1000 + 1000000000ull);
}

static void test_latency_quantile_empty(void **state)
{
	struct origin_latency h;
	struct origin_latency_stats s;

	(void)state;
	memset(&h, 0, sizeof(h));
	s = snapshot(&h);
	assert_true(origin_latency_quantile(&s, 0.5) == 0.0);
	assert_true(origin_latency_quantile(&s, 0.99) == 0.0);
}

static void test_latency_quantile_one_bucket(void **state)
{
	struct origin_latency h;
	struct origin_latency_stats s;

	(void)state;
	memset(&h, 0, sizeof(h));
	add_many(&h, 1000, 100);
	s = snapshot(&h);
	/* Interpolated inside (512, 1024]: 512 + 512 * rank / 100. */
	assert_float_equal(origin_latency_quantile(&s, 0.5), 768.0, 1e-9);
	assert_float_equal(origin_latency_quantile(&s, 0.99), 1018.88, 1e-9);
	assert_float_equal(origin_latency_quantile(&s, 1.0), 1024.0, 1e-9);
}

static void test_latency_quantile_two_buckets(void **state)
{
	struct origin_latency h;
	struct origin_latency_stats s;

	(void)state;
	memset(&h, 0, sizeof(h));
	add_many(&h, 100, 90);		/* (64, 128] */
	add_many(&h, 10000, 10);	/* (8192, 16384] */
	s = snapshot(&h);
	assert_float_equal(origin_latency_quantile(&s, 0.5),
			   64.0 + 64.0 * 50.0 / 90.0, 1e-9);
	assert_float_equal(origin_latency_quantile(&s, 0.9), 128.0, 1e-9);
	assert_float_equal(origin_latency_quantile(&s, 0.99),
			   8192.0 + 8192.0 * 9.0 / 10.0, 1e-9);
}

static void test_latency_quantile_last_bucket(void **state)
{
	struct origin_latency h;
	struct origin_latency_stats s;
	double top = (double)origin_latency_bound_us(ORIGIN_LATENCY_BUCKETS -
						     2);

	(void)state;
	memset(&h, 0, sizeof(h));
	add_many(&h, 100ull * 1000 * 1000, 4);
	s = snapshot(&h);
	assert_float_equal(origin_latency_quantile(&s, 0.5), top, 1e-9);
	assert_float_equal(origin_latency_quantile(&s, 0.99), top, 1e-9);
}

static void test_latency_timer_counts_request(void **state)
{
	struct origin o;
	struct origin_timer t;
	struct origin_latency_stats s;

	(void)state;
	memset(&o, 0, sizeof(o));
	origin_request_start(&o, ORIGIN_REQ_HEAD, &t);
	origin_request_end(&o, &t);
	s = snapshot(&o.counters.latency[ORIGIN_REQ_HEAD]);
	assert_int_equal(o.counters.requests[ORIGIN_REQ_HEAD], 1);
	assert_int_equal(s.count, 1);
	s = snapshot(&o.counters.latency[ORIGIN_REQ_GET]);
	assert_int_equal(s.count, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_latency_bucket_bounds),
		cmocka_unit_test(test_latency_add_picks_bucket),
		cmocka_unit_test(test_latency_quantile_empty),
		cmocka_unit_test(test_latency_quantile_one_bucket),
		cmocka_unit_test(test_latency_quantile_two_buckets),
		cmocka_unit_test(test_latency_quantile_last_bucket),
		cmocka_unit_test(test_latency_timer_counts_request),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
