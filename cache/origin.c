/*
 * origin.c - what every origin shares: request names, request timing,
 * sinks, freeing, the check of paths.
 */
#include "origin.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

const char *const origin_request_names[ORIGIN_REQ_MAX] = {
	[ORIGIN_REQ_GET] = "GET",
	[ORIGIN_REQ_HEAD] = "HEAD",
	[ORIGIN_REQ_LIST] = "LIST",
	[ORIGIN_REQ_PUT] = "PUT",
	[ORIGIN_REQ_COPY] = "COPY",
	[ORIGIN_REQ_DELETE] = "DELETE",
	[ORIGIN_REQ_MULTIPART] = "MULTIPART",
};

void origin_request_start(struct origin *o, enum origin_request kind,
			  struct origin_timer *t)
{
	origin_count(o, kind);
	t->kind = kind;
	clock_gettime(CLOCK_MONOTONIC, &t->start);
}

void origin_request_end(struct origin *o, const struct origin_timer *t)
{
	struct timespec now;
	int64_t us;

	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (int64_t)(now.tv_sec - t->start.tv_sec) * 1000000 +
	     (now.tv_nsec - t->start.tv_nsec) / 1000;
	origin_latency_add(&o->counters.latency[t->kind],
			   us > 0 ? (uint64_t)us : 0);
}

uint64_t origin_latency_bound_us(unsigned i)
{
	if (i + 1 >= ORIGIN_LATENCY_BUCKETS)
		return UINT64_MAX;
	return (uint64_t)ORIGIN_LATENCY_MIN_US << i;
}

void origin_latency_add(struct origin_latency *h, uint64_t us)
{
	unsigned i = 0;

	while (i + 1 < ORIGIN_LATENCY_BUCKETS &&
	       us > origin_latency_bound_us(i))
		i++;
	atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

void origin_latency_read(const struct origin_latency *h,
			 struct origin_latency_stats *out)
{
	out->count = 0;
	for (unsigned i = 0; i < ORIGIN_LATENCY_BUCKETS; i++) {
		out->buckets[i] = atomic_load_explicit(&h->buckets[i],
						       memory_order_relaxed);
		out->count += out->buckets[i];
	}
	out->sum_us = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
}

double origin_latency_quantile(const struct origin_latency_stats *s,
			       double q)
{
	double rank = q * (double)s->count;
	uint64_t below = 0;

	if (s->count == 0)
		return 0;
	for (unsigned i = 0; i < ORIGIN_LATENCY_BUCKETS; i++) {
		double lower = i ? (double)origin_latency_bound_us(i - 1) : 0;
		uint64_t upto = below + s->buckets[i];
		double upper;

		if (s->buckets[i] == 0 || (double)upto < rank) {
			below = upto;
			continue;
		}
		if (i + 1 == ORIGIN_LATENCY_BUCKETS)
			return lower;
		upper = (double)origin_latency_bound_us(i);
		return lower + (upper - lower) * (rank - (double)below) /
		       (double)s->buckets[i];
	}
	/* Only reached for q > 1. */
	return (double)origin_latency_bound_us(ORIGIN_LATENCY_BUCKETS - 2);
}

int origin_sink_copy(void *arg, uint64_t pos, const void *data, size_t n)
{
	memcpy((char *)arg + pos, data, n);
	return 0;
}

void origin_free(struct origin *o)
{
	if (o)
		o->ops->free(o);
}

uint64_t origin_leftover_add(struct origin *o, const char *id)
{
	return o->leftovers ? o->leftovers->add(o->leftovers->arg, id) : 0;
}

void origin_leftover_done(struct origin *o, uint64_t handle)
{
	if (o->leftovers && handle)
		o->leftovers->done(o->leftovers->arg, handle);
}

int origin_path_check(const char *path)
{
	const char *p = path;

	if (strlen(path) >= PATH_MAX)
		return -ENAMETOOLONG;
	for (;;) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return -EINVAL;
		if (n > NAME_MAX)
			return -ENAMETOOLONG;
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

void origin_attr_merge(struct origin_attr *to, const struct origin_attr *from,
		       unsigned which)
{
	which &= ORIGIN_ATTR_MODE | ORIGIN_ATTR_UID | ORIGIN_ATTR_GID |
		 ORIGIN_ATTR_MTIME;
	if (which & ORIGIN_ATTR_MODE)
		to->mode = (to->mode & S_IFMT) | (from->mode & 07777);
	if (which & ORIGIN_ATTR_UID)
		to->uid = from->uid;
	if (which & ORIGIN_ATTR_GID)
		to->gid = from->gid;
	if (which & ORIGIN_ATTR_MTIME)
		to->mtime = from->mtime;
	to->valid |= which;
}

static _Thread_local char detail[ORIGIN_DETAIL_MAX];

void origin_set_detail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
}

void origin_clear_detail(void)
{
	detail[0] = '\0';
}

const char *origin_detail(void)
{
	return detail;
}
