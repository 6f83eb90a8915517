/* origin.c - what every origin shares: request names and freeing. */
#include "origin.h"

#include <stdlib.h>

const char *const origin_request_names[ORIGIN_REQ_MAX] = {
	[ORIGIN_REQ_GET] = "GET",
	[ORIGIN_REQ_HEAD] = "HEAD",
	[ORIGIN_REQ_LIST] = "LIST",
	[ORIGIN_REQ_PUT] = "PUT",
	[ORIGIN_REQ_COPY] = "COPY",
	[ORIGIN_REQ_DELETE] = "DELETE",
	[ORIGIN_REQ_MULTIPART] = "MULTIPART",
};

void origin_free(struct origin *o)
{
	if (o)
		o->ops->free(o);
}
