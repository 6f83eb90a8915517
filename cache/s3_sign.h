/*
 * s3_sign.h - AWS Signature Version 4 for S3 requests.
 *
 * The signer works on an already formed request: method, the URL path as
 * it is sent (already URI-encoded), the raw query string as it is sent,
 * and the headers to sign.  It produces the Authorization header value.
 */
#ifndef NEARFS_S3_SIGN_H
#define NEARFS_S3_SIGN_H

#include <stddef.h>

/* SHA-256 of an empty body, as hex, the x-amz-content-sha256 of GET/HEAD. */
#define S3_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

struct s3_header {
	const char *name;	/* any case; signed in lower case */
	const char *value;	/* leading/trailing blanks are trimmed */
};

struct s3_sign_request {
	const char *method;		/* "GET", "PUT", ... */
	const char *path;		/* "/bucket/key%20x", as sent */
	const char *query;		/* "list-type=2&prefix=a%2F", or "" */
	const struct s3_header *headers;	/* host, x-amz-date, ... */
	size_t nheaders;
	const char *payload_sha256;	/* hex, or S3_UNSIGNED_PAYLOAD */
	const char *region;
	const char *service;		/* "s3" */
	const char *amz_date;		/* "20261204T070000Z" */
	const char *access_key;
	const char *secret_key;
};

/*
 * Write the Authorization header value ("AWS4-HMAC-SHA256 Credential=...,
 * SignedHeaders=..., Signature=...") into out.  The query string is
 * canonicalized here: parameters sorted by name, then value, and each
 * name and value re-encoded in the SigV4 form.  Returns 0, -ENOSPC when
 * out is too small (out is then ""), -EINVAL for a missing field or an
 * amz_date that is not 16 characters, -ENOMEM.
 */
int s3_sign(const struct s3_sign_request *req, char *out, size_t outlen);

/* Format t (UTC) as "YYYYMMDDTHHMMSSZ" into out[17]. */
void s3_amz_date(long t, char out[17]);

/* The value of one hex digit of either case, or -1. */
int s3_hex_value(char c);

/* Hex SHA-256 of len bytes into out[65]. */
void s3_sha256_hex(const void *data, size_t len, char out[65]);

/*
 * URI-encode src in the SigV4 way: unreserved characters (A-Z a-z 0-9
 * - _ . ~) stay, every other byte becomes %XX in upper case; '/' stays
 * when keep_slash is set.  Returns a malloc'ed string the caller frees,
 * or NULL.
 */
char *s3_uri_encode(const char *src, int keep_slash);

#endif
