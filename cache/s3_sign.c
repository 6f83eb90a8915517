/* s3_sign.c - AWS Signature Version 4 for S3 requests (see s3_sign.h). */
#include "s3_sign.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SHA256_LEN 32
#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"

/*
 * A growing string, NUL-terminated once anything was appended.  After a
 * failed allocation, error is -ENOMEM and later appends do nothing.
 */
struct strbuf {
	char *data;
	size_t len;
	size_t cap;
	int error;
};

static void sb_append_len(struct strbuf *sb, const char *s, size_t n)
{
	if (sb->error)
		return;
	if (sb->len + n + 1 > sb->cap) {
		size_t cap = sb->cap ? sb->cap : 256;
		char *data;

		while (sb->len + n + 1 > cap)
			cap *= 2;
		data = realloc(sb->data, cap);
		if (!data) {
			sb->error = -ENOMEM;
			return;
		}
		sb->data = data;
		sb->cap = cap;
	}
	memcpy(sb->data + sb->len, s, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

static void sb_append(struct strbuf *sb, const char *s)
{
	sb_append_len(sb, s, strlen(s));
}

static void sb_append_char(struct strbuf *sb, char c)
{
	sb_append_len(sb, &c, 1);
}

static void hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

void s3_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) ||
	    mdlen != SHA256_LEN) {
		out[0] = '\0';
		return;
	}
	hex_encode(md, SHA256_LEN, out);
}

void s3_amz_date(long t, char out[17])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) ||
	    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
		out[0] = '\0';
}

static bool is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
	       c == '~';
}

char *s3_uri_encode(const char *src, int keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t n = strlen(src);
	char *out = malloc(3 * n + 1);
	char *p = out;

	if (!out)
		return NULL;
	for (const unsigned char *s = (const unsigned char *)src; *s; s++) {
		if (is_unreserved(*s) || (keep_slash && *s == '/')) {
			*p++ = (char)*s;
			continue;
		}
		*p++ = '%';
		*p++ = digits[*s >> 4];
		*p++ = digits[*s & 0xf];
	}
	*p = '\0';
	return out;
}

int s3_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decode n bytes of a query component.  A '%' that does not start a valid
 * escape is kept as it is, so that re-encoding turns it into "%25".  '+'
 * is not special: S3 clients send a space as "%20".
 */
static char *query_decode(const char *src, size_t n)
{
	char *out = malloc(n + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (src[i] == '%' && i + 2 < n) {
			int hi = s3_hex_value(src[i + 1]);
			int lo = s3_hex_value(src[i + 2]);

			if (hi >= 0 && lo >= 0) {
				out[o++] = (char)(hi << 4 | lo);
				i += 2;
				continue;
			}
		}
		out[o++] = src[i];
	}
	out[o] = '\0';
	return out;
}

struct query_param {
	char *name;	/* SigV4-encoded */
	char *value;	/* SigV4-encoded */
};

static int compare_params(const void *a, const void *b)
{
	const struct query_param *pa = a, *pb = b;
	int r = strcmp(pa->name, pb->name);

	return r ? r : strcmp(pa->value, pb->value);
}

/* Decode one component of n bytes, then encode it in the SigV4 form. */
static char *query_reencode(const char *src, size_t n)
{
	char *decoded = query_decode(src, n);
	char *encoded;

	if (!decoded)
		return NULL;
	encoded = s3_uri_encode(decoded, 0);
	free(decoded);
	return encoded;
}

static void free_params(struct query_param *params, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(params[i].name);
		free(params[i].value);
	}
	free(params);
}

/* Split query on '&' into re-encoded name/value pairs, skipping empty ones. */
static int split_query(const char *query, struct query_param **out,
		       size_t *count)
{
	struct query_param *params;
	size_t max = 1, n = 0;

	for (const char *p = query; *p; p++)
		if (*p == '&')
			max++;
	params = calloc(max, sizeof(*params));
	if (!params)
		return -ENOMEM;

	for (const char *p = query; *p;) {
		size_t seglen = strcspn(p, "&");
		const char *eq = memchr(p, '=', seglen);
		size_t namelen = eq ? (size_t)(eq - p) : seglen;

		if (seglen > 0) {
			params[n].name = query_reencode(p, namelen);
			params[n].value = eq ?
				query_reencode(eq + 1, seglen - namelen - 1) :
				strdup("");
			n++;
			if (!params[n - 1].name || !params[n - 1].value) {
				free_params(params, n);
				return -ENOMEM;
			}
		}
		p += seglen;
		if (*p == '&')
			p++;
	}
	*out = params;
	*count = n;
	return 0;
}

static int append_canonical_query(struct strbuf *sb, const char *query)
{
	struct query_param *params;
	size_t n;
	int ret;

	ret = split_query(query ? query : "", &params, &n);
	if (ret)
		return ret;
	qsort(params, n, sizeof(*params), compare_params);
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_append_char(sb, '&');
		sb_append(sb, params[i].name);
		sb_append_char(sb, '=');
		sb_append(sb, params[i].value);
	}
	free_params(params, n);
	return 0;
}

struct canon_header {
	char *name;		/* lower case */
	char *value;		/* trimmed, blank runs collapsed */
	size_t order;		/* position in the request, for a stable sort */
};

static int compare_headers(const void *a, const void *b)
{
	const struct canon_header *ha = a, *hb = b;
	int r = strcmp(ha->name, hb->name);

	if (r)
		return r;
	return ha->order < hb->order ? -1 : ha->order > hb->order;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trim blanks at both ends and replace each inner run by one space. */
static char *canonical_value(const char *value)
{
	char *out = malloc(strlen(value) + 1);
	size_t o = 0;
	bool pending_space = false;

	if (!out)
		return NULL;
	for (const char *p = value; *p; p++) {
		if (is_blank(*p)) {
			pending_space = o > 0;
			continue;
		}
		if (pending_space)
			out[o++] = ' ';
		pending_space = false;
		out[o++] = *p;
	}
	out[o] = '\0';
	return out;
}

static char *lower_name(const char *name)
{
	const char *start = name;
	size_t n;
	char *out;

	while (is_blank(*start))
		start++;
	n = strlen(start);
	while (n > 0 && is_blank(start[n - 1]))
		n--;
	out = malloc(n + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char c = start[i];

		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[n] = '\0';
	return out;
}

static void free_headers(struct canon_header *headers, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(headers[i].name);
		free(headers[i].value);
	}
	free(headers);
}

static int sorted_headers(const struct s3_sign_request *req,
			  struct canon_header **out)
{
	struct canon_header *headers;

	headers = calloc(req->nheaders ? req->nheaders : 1, sizeof(*headers));
	if (!headers)
		return -ENOMEM;
	for (size_t i = 0; i < req->nheaders; i++) {
		headers[i].name = lower_name(req->headers[i].name);
		headers[i].value = canonical_value(req->headers[i].value ?
						   req->headers[i].value : "");
		headers[i].order = i;
		if (!headers[i].name || !headers[i].value) {
			free_headers(headers, i + 1);
			return -ENOMEM;
		}
	}
	qsort(headers, req->nheaders, sizeof(*headers), compare_headers);
	*out = headers;
	return 0;
}

/*
 * Append the canonical header block ("name:value\n" per distinct name,
 * repeated names joined with ',') to canon and the signed header list
 * ("a;b;c") to signed_list.
 */
static int append_headers(struct strbuf *canon, struct strbuf *signed_list,
			  const struct s3_sign_request *req)
{
	struct canon_header *headers;
	int ret;

	ret = sorted_headers(req, &headers);
	if (ret)
		return ret;
	for (size_t i = 0; i < req->nheaders; i++) {
		bool repeat = i > 0 &&
			      strcmp(headers[i].name, headers[i - 1].name) == 0;

		if (repeat) {
			sb_append_char(canon, ',');
		} else {
			if (i > 0) {
				sb_append_char(canon, '\n');
				sb_append_char(signed_list, ';');
			}
			sb_append(canon, headers[i].name);
			sb_append_char(canon, ':');
			sb_append(signed_list, headers[i].name);
		}
		sb_append(canon, headers[i].value);
	}
	if (req->nheaders)
		sb_append_char(canon, '\n');
	free_headers(headers, req->nheaders);
	return 0;
}

static int hmac_sha256(const void *key, size_t keylen, const char *msg,
		       unsigned char out[SHA256_LEN])
{
	unsigned int outlen = 0;

	if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg,
		  strlen(msg), out, &outlen) || outlen != SHA256_LEN)
		return -ENOMEM;
	return 0;
}

/* Derive the signing key and write the hex signature of string_to_sign. */
static int compute_signature(const struct s3_sign_request *req,
			     const char *date, const char *string_to_sign,
			     char signature[2 * SHA256_LEN + 1])
{
	const char *steps[] = { date, req->region, req->service,
				"aws4_request", string_to_sign };
	unsigned char key[SHA256_LEN];
	unsigned char sig[SHA256_LEN];
	size_t secretlen = strlen(req->secret_key);
	char *first_key = malloc(secretlen + 5);
	int ret;

	if (!first_key)
		return -ENOMEM;
	memcpy(first_key, "AWS4", 4);
	memcpy(first_key + 4, req->secret_key, secretlen + 1);

	ret = hmac_sha256(first_key, secretlen + 4, steps[0], key);
	for (size_t i = 1; i < 4 && !ret; i++)
		ret = hmac_sha256(key, sizeof(key), steps[i], key);
	if (!ret)
		ret = hmac_sha256(key, sizeof(key), steps[4], sig);
	if (!ret)
		hex_encode(sig, sizeof(sig), signature);

	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(first_key, secretlen + 4);
	free(first_key);
	return ret;
}

static bool request_complete(const struct s3_sign_request *req)
{
	return req->method && req->path && req->region && req->service &&
	       req->amz_date && strlen(req->amz_date) == 16 &&
	       req->access_key && req->secret_key &&
	       (req->headers || !req->nheaders);
}

int s3_sign(const struct s3_sign_request *req, char *out, size_t outlen)
{
	struct strbuf canon = { 0 }, signed_list = { 0 }, sts = { 0 };
	char date[9], request_hash[65], signature[2 * SHA256_LEN + 1];
	int ret, n;

	if (!request_complete(req))
		return -EINVAL;
	memcpy(date, req->amz_date, 8);
	date[8] = '\0';

	/* The canonical request. */
	sb_append(&canon, req->method);
	sb_append_char(&canon, '\n');
	sb_append(&canon, req->path[0] ? req->path : "/");
	sb_append_char(&canon, '\n');
	ret = append_canonical_query(&canon, req->query);
	if (ret)
		goto out_free;
	sb_append_char(&canon, '\n');
	ret = append_headers(&canon, &signed_list, req);
	if (ret)
		goto out_free;
	sb_append_char(&canon, '\n');
	sb_append(&canon, signed_list.data ? signed_list.data : "");
	sb_append_char(&canon, '\n');
	sb_append(&canon, req->payload_sha256 ? req->payload_sha256 :
						S3_EMPTY_SHA256);
	ret = canon.error ? canon.error : signed_list.error;
	if (ret)
		goto out_free;

	/* The string to sign: algorithm, time, scope, request hash. */
	s3_sha256_hex(canon.data, canon.len, request_hash);
	sb_append(&sts, SIGV4_ALGORITHM "\n");
	sb_append(&sts, req->amz_date);
	sb_append_char(&sts, '\n');
	sb_append(&sts, date);
	sb_append_char(&sts, '/');
	sb_append(&sts, req->region);
	sb_append_char(&sts, '/');
	sb_append(&sts, req->service);
	sb_append(&sts, "/aws4_request\n");
	sb_append(&sts, request_hash);
	ret = sts.error;
	if (ret)
		goto out_free;

	ret = compute_signature(req, date, sts.data, signature);
	if (ret)
		goto out_free;
	n = snprintf(out, outlen,
		     SIGV4_ALGORITHM " Credential=%s/%s/%s/%s/aws4_request, "
		     "SignedHeaders=%s, Signature=%s",
		     req->access_key, date, req->region, req->service,
		     signed_list.data ? signed_list.data : "", signature);
	if (n < 0 || (size_t)n >= outlen) {
		if (outlen)
			out[0] = '\0';
		ret = -ENOSPC;
	}

out_free:
	free(canon.data);
	free(signed_list.data);
	free(sts.data);
	return ret;
}
