/* origin.c - what every origin shares: request names, sinks, freeing. */
#include "origin.h"

#include <stdlib.h>
#include <string.h>

const char *const origin_request_names[ORIGIN_REQ_MAX] = {
	[ORIGIN_REQ_GET] = "GET",
	[ORIGIN_REQ_HEAD] = "HEAD",
	[ORIGIN_REQ_LIST] = "LIST",
	[ORIGIN_REQ_PUT] = "PUT",
	[ORIGIN_REQ_COPY] = "COPY",
	[ORIGIN_REQ_DELETE] = "DELETE",
	[ORIGIN_REQ_MULTIPART] = "MULTIPART",
};

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
