/*
 * s3_xml.h - parsers for the S3 XML responses nearfs uses, built on expat.
 */
#ifndef NEARFS_S3_XML_H
#define NEARFS_S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct s3_list_entry {
	char *key;		/* full key, URL-decoded */
	uint64_t size;
	struct timespec mtime;	/* from LastModified */
	char etag[96];		/* quotes removed */
};

struct s3_list_page {
	struct s3_list_entry *entries;	/* Contents */
	size_t nentries;
	char **prefixes;		/* CommonPrefixes, URL-decoded */
	size_t nprefixes;
	bool truncated;			/* IsTruncated */
	char *next_token;		/* NextContinuationToken or NULL */
};

/*
 * Parse one ListObjectsV2 page.  When url_encoded is set (the request
 * carried encoding-type=url), Key and Prefix values are URL-decoded.
 * Returns 0, -EINVAL for malformed XML, -ENOMEM.
 */
int s3_xml_parse_list(const char *xml, size_t len, bool url_encoded,
		      struct s3_list_page *page);
void s3_list_page_free(struct s3_list_page *page);

/* Parse an <Error> body: Code and Message into the given buffers (empty
 * strings when absent).  Returns 0 or -EINVAL. */
int s3_xml_parse_error(const char *xml, size_t len, char *code,
		       size_t codelen, char *message, size_t messagelen);

/*
 * Return the text of the first element called `name` (for example
 * UploadId in InitiateMultipartUploadResult, ETag in CopyObjectResult),
 * malloc'ed, or NULL when absent or malformed.
 */
char *s3_xml_find_text(const char *xml, size_t len, const char *name);

/* Parse an ISO 8601 time as S3 writes it ("2026-12-04T07:00:00.000Z").
 * Returns 0 or -EINVAL. */
int s3_parse_iso8601(const char *text, struct timespec *ts);

/* Decode %XX escapes ("+" is not special).  Returns a malloc'ed string,
 * or NULL for an invalid escape or on allocation failure. */
char *s3_url_decode(const char *src);

#endif
