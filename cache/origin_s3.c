/* origin_s3.c - the S3 origin: struct origin_ops over libcurl and SigV4. */
#include "origin.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "htab.h"
#include "log.h"
#include "s3_creds.h"
#include "s3_names.h"
#include "s3_sign.h"
#include "s3_xml.h"

/*
 * Hidden tuning knobs read from the environment at creation, for tests:
 *   NEARFS_S3_LIST_MAX_KEYS         max-keys of every listing page
 *                                   (default: the server's, 1000 on AWS)
 *   NEARFS_S3_MULTIPART_THRESHOLD   bytes above which write() uses a
 *                                   multipart upload (default: the part
 *                                   size)
 */
#define ENV_LIST_MAX_KEYS "NEARFS_S3_LIST_MAX_KEYS"
#define ENV_MULTIPART_THRESHOLD "NEARFS_S3_MULTIPART_THRESHOLD"

#define MIB (1024ull * 1024)
#define DEFAULT_PART_SIZE (16 * MIB)
#define DEFAULT_TIMEOUT_MS 30000
#define CONNECT_TIMEOUT_MS 10000
/* AWS limits: a single PUT or CopyObject takes up to 5 GiB, a multipart
 * upload up to 10000 parts. */
#define MAX_SINGLE_PUT (5120 * MIB)
#define MAX_PARTS 10000

/* Parts of one multipart upload in flight at once. */
#define PART_THREADS 4

#define MAX_ATTEMPTS 5
#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 5000

/* Error bodies and listing pages are kept in memory up to this size. */
#define MAX_RESPONSE_BODY (64 * MIB)
#define MAX_REQUEST_HEADERS 16

/* Directory listings and stat report these when nothing is stored. */
#define DEFAULT_FILE_MODE (S_IFREG | 0644)
#define DEFAULT_DIR_MODE (S_IFDIR | 0755)

struct s3_origin {
	struct origin base;
	char *bucket;
	char *prefix;		/* "" or "a/b" */
	char *endpoint;		/* as configured, no trailing slash */
	char *region;
	char *host;		/* Host header: [bucket.]host[:port] */
	char *url_base;		/* scheme://host[:port], no path */
	char *path_base;	/* "/bucket", "" (virtual host), or with the
				 * endpoint's own path in front */
	bool anonymous;
	bool read_only;
	struct s3_creds creds;
	long low_speed_time;	/* seconds */
	uint64_t timeout_ms;	/* one attempt; retries stop after 3x */
	uint64_t part_size;
	uint64_t multipart_threshold;
	unsigned list_max_keys;	/* 0: the server's default */
	atomic_bool bucket_missing_logged;

	/* A retry burst: attempts keep failing with errors that are
	 * retried.  Its start and its end are logged once each, and the
	 * retries in between are counted under burst_lock. */
	pthread_mutex_t burst_lock;
	atomic_bool burst;
	uint64_t burst_retries;

	pthread_mutex_t pool_lock;
	CURL **pool;		/* idle easy handles */
	size_t pool_len;
	size_t pool_cap;
};

/* A request body, sent from memory or with pread from a file. */
struct s3_body {
	const char *mem;	/* NULL: read from fd */
	int fd;
	uint64_t offset;	/* of the body in fd */
	uint64_t len;
	uint64_t pos;		/* bytes handed to curl */
	int error;		/* -errno of a failed pread */
};

struct s3_response {
	long status;
	CURLcode curl_code;
	char curl_error[CURL_ERROR_SIZE];
	bool headers_complete;	/* the blank line that ends them arrived */
	bool has_length;
	uint64_t content_length;
	char etag[ORIGIN_VERSION_MAX];
	char last_modified[64];
	char content_type[128];
	char bucket_region[64];
	char meta_mode[24];
	char meta_uid[24];
	char meta_gid[24];
	char meta_mtime[48];

	/* Body of a non-2xx response, or of any response when dst is NULL. */
	char *data;
	size_t len;
	size_t cap;

	/* A 2xx body goes to sink instead, at most dst_cap bytes, with the
	 * position of each piece (dst_len before it).  A 200 response to a
	 * ranged GET first drops `skip` bytes. */
	origin_sink_fn sink;
	void *sink_arg;
	int sink_error;		/* what sink returned to stop the body */
	uint64_t dst_cap;
	uint64_t dst_len;
	uint64_t skip;
	uint64_t skipped;

	char code[64];		/* S3 error code, "" when none */
	char message[256];
};

struct s3_request {
	const char *method;
	enum origin_request kind;
	const char *key;	/* object key; NULL for a bucket request */
	const char *query;	/* encoded query string, "" or NULL */
	struct s3_header headers[MAX_REQUEST_HEADERS];
	size_t nheaders;
	const char *payload_sha256;	/* NULL: empty body */
	struct s3_body *body;		/* NULL: no body */
	struct s3_body empty_body;	/* sent when body is NULL */
	/* CopyObject and CompleteMultipartUpload may fail with status 200
	 * and an <Error> body, which is then retried like a 500. */
	bool error_in_body;
	/* The caller reports a failure itself: log none of the attempts. */
	bool quiet;
	struct s3_response resp;
};

/* Metadata headers and the storage behind their values. */
struct s3_meta {
	char mode[24];
	char uid[24];
	char gid[24];
	char mtime[32];
};

static const struct origin_ops s3_ops;

static struct s3_origin *s3_of(struct origin *o)
{
	return (struct s3_origin *)o;
}

/* ---- small helpers ---------------------------------------------------- */

static char *str_printf(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static char *str_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/* Copy src to dst without the surrounding double quotes of an ETag. */
static void copy_unquoted(char *dst, size_t dstlen, const char *src)
{
	size_t n;

	if (!strncmp(src, "W/", 2))
		src += 2;
	if (*src == '"')
		src++;
	n = strlen(src);
	if (n && src[n - 1] == '"')
		n--;
	if (n >= dstlen)
		n = dstlen - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Return the object key of path below the mount prefix (s3_key_of()). */
static char *key_of(const struct s3_origin *so, const char *path,
		    bool dir_slash)
{
	return s3_key_of(so->prefix, path, dir_slash);
}

/* Append "&name=value" (value SigV4-encoded) to a query string. */
static int query_add(char **query, const char *name, const char *value)
{
	char *enc = s3_uri_encode(value, 0);
	char *next;

	if (!enc)
		return -ENOMEM;
	next = str_printf("%s%s%s=%s", *query ? *query : "",
			  *query ? "&" : "", name, enc);
	free(enc);
	if (!next)
		return -ENOMEM;
	free(*query);
	*query = next;
	return 0;
}

static void request_init(struct s3_request *req, const char *method,
			 enum origin_request kind, const char *key)
{
	memset(req, 0, sizeof(*req));
	req->method = method;
	req->kind = kind;
	req->key = key;
}

/* The value of the request's Range header, or NULL. */
static const char *request_range(const struct s3_request *req)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (!strcmp(req->headers[i].name, "Range"))
			return req->headers[i].value;
	return NULL;
}

static void request_add_header(struct s3_request *req, const char *name,
			       const char *value)
{
	if (req->nheaders == MAX_REQUEST_HEADERS) {
		/* A programming error: the table is sized for every op. */
		log_err("s3: too many headers for %s, %s dropped",
			req->method, name);
		return;
	}
	req->headers[req->nheaders].name = name;
	req->headers[req->nheaders].value = value;
	req->nheaders++;
}

static void request_free(struct s3_request *req)
{
	free(req->resp.data);
	req->resp.data = NULL;
}

/* ---- connection pool -------------------------------------------------- */

static CURL *pool_take(struct s3_origin *so)
{
	CURL *curl = NULL;

	pthread_mutex_lock(&so->pool_lock);
	if (so->pool_len)
		curl = so->pool[--so->pool_len];
	pthread_mutex_unlock(&so->pool_lock);
	if (curl) {
		/* Options go back to defaults but open connections stay. */
		curl_easy_reset(curl);
		return curl;
	}
	return curl_easy_init();
}

static void pool_give(struct s3_origin *so, CURL *curl)
{
	pthread_mutex_lock(&so->pool_lock);
	if (so->pool_len == so->pool_cap) {
		size_t cap = so->pool_cap ? 2 * so->pool_cap : 8;
		CURL **pool = realloc(so->pool, cap * sizeof(*pool));

		if (!pool) {
			pthread_mutex_unlock(&so->pool_lock);
			curl_easy_cleanup(curl);
			return;
		}
		so->pool = pool;
		so->pool_cap = cap;
	}
	so->pool[so->pool_len++] = curl;
	pthread_mutex_unlock(&so->pool_lock);
}

/* ---- curl callbacks --------------------------------------------------- */

static size_t on_send(char *buf, size_t size, size_t nitems, void *arg)
{
	struct s3_body *body = arg;
	size_t want = size * nitems;
	uint64_t left = body->len - body->pos;
	ssize_t got;

	if (want > left)
		want = (size_t)left;
	if (!want)
		return 0;
	if (body->mem) {
		memcpy(buf, body->mem + body->pos, want);
		body->pos += want;
		return want;
	}
	do {
		got = pread(body->fd, buf, want, (off_t)(body->offset +
							  body->pos));
	} while (got < 0 && errno == EINTR);
	if (got <= 0) {
		/* got == 0: the file is shorter than the size to upload. */
		body->error = got < 0 ? -errno : -EIO;
		return CURL_READFUNC_ABORT;
	}
	body->pos += (uint64_t)got;
	return (size_t)got;
}

static int on_seek(void *arg, curl_off_t offset, int origin)
{
	struct s3_body *body = arg;

	if (origin != SEEK_SET)
		return CURL_SEEKFUNC_CANTSEEK;
	if (offset < 0 || (uint64_t)offset > body->len)
		return CURL_SEEKFUNC_FAIL;
	body->pos = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

static int append_body(struct s3_response *resp, const char *data,
		       size_t len)
{
	if (resp->len + len + 1 > resp->cap) {
		size_t cap = resp->cap ? resp->cap : 4096;
		char *next;

		while (resp->len + len + 1 > cap)
			cap *= 2;
		if (cap > MAX_RESPONSE_BODY)
			return -EFBIG;
		next = realloc(resp->data, cap);
		if (!next)
			return -ENOMEM;
		resp->data = next;
		resp->cap = cap;
	}
	memcpy(resp->data + resp->len, data, len);
	resp->len += len;
	resp->data[resp->len] = '\0';
	return 0;
}

static size_t on_receive(char *data, size_t size, size_t nitems, void *arg)
{
	struct s3_response *resp = arg;
	size_t len = size * nitems;
	size_t n;

	if (!resp->sink || resp->status < 200 || resp->status >= 300)
		return append_body(resp, data, len) ? 0 : len;

	n = len;
	if (resp->status == 200 && resp->skipped < resp->skip) {
		uint64_t drop = resp->skip - resp->skipped;

		if (drop > n)
			drop = n;
		resp->skipped += drop;
		data += drop;
		n -= (size_t)drop;
	}
	if (n > resp->dst_cap - resp->dst_len)
		n = resp->dst_cap - resp->dst_len;
	if (n) {
		resp->sink_error = resp->sink(resp->sink_arg, resp->dst_len,
					      data, n);
		if (resp->sink_error)
			return 0;	/* CURLE_WRITE_ERROR ends the body */
	}
	resp->dst_len += n;
	return len;
}

/* Store a header value without surrounding blanks. */
static void header_copy(char *dst, size_t dstlen, const char *value,
			size_t len)
{
	while (len && (*value == ' ' || *value == '\t')) {
		value++;
		len--;
	}
	while (len && (value[len - 1] == '\r' || value[len - 1] == '\n' ||
		       value[len - 1] == ' ' || value[len - 1] == '\t'))
		len--;
	if (len >= dstlen)
		len = dstlen - 1;
	memcpy(dst, value, len);
	dst[len] = '\0';
}

static void reset_headers(struct s3_response *resp)
{
	resp->headers_complete = false;
	resp->has_length = false;
	resp->content_length = 0;
	resp->etag[0] = '\0';
	resp->last_modified[0] = '\0';
	resp->content_type[0] = '\0';
	resp->bucket_region[0] = '\0';
	resp->meta_mode[0] = '\0';
	resp->meta_uid[0] = '\0';
	resp->meta_gid[0] = '\0';
	resp->meta_mtime[0] = '\0';
}

/* Response headers stored verbatim, by their field in s3_response. */
static const struct {
	const char *name;
	size_t offset;
	size_t size;
} stored_headers[] = {
#define STORED(name, field) \
	{ name, offsetof(struct s3_response, field), \
	  sizeof(((struct s3_response *)0)->field) }
	STORED("last-modified", last_modified),
	STORED("content-type", content_type),
	STORED("x-amz-bucket-region", bucket_region),
	STORED("x-amz-meta-mode", meta_mode),
	STORED("x-amz-meta-uid", meta_uid),
	STORED("x-amz-meta-gid", meta_gid),
	STORED("x-amz-meta-mtime", meta_mtime),
#undef STORED
};

static bool header_is(const char *line, size_t name_len, const char *name)
{
	return strlen(name) == name_len && !strncasecmp(line, name, name_len);
}

static size_t on_header(char *line, size_t size, size_t nitems, void *arg)
{
	struct s3_response *resp = arg;
	size_t len = size * nitems;
	const char *colon, *value;
	size_t name_len, value_len;
	char text[ORIGIN_VERSION_MAX + 8];

	if (len > 5 && !strncmp(line, "HTTP/", 5)) {
		/* A new status line: 100 Continue or a redirect came first. */
		const char *sp = memchr(line, ' ', len);

		resp->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		reset_headers(resp);
		return len;
	}
	if (len == 2 && !memcmp(line, "\r\n", 2)) {
		resp->headers_complete = true;
		return len;
	}
	colon = memchr(line, ':', len);
	if (!colon)
		return len;
	name_len = (size_t)(colon - line);
	value = colon + 1;
	value_len = len - name_len - 1;

	if (header_is(line, name_len, "content-length")) {
		header_copy(text, sizeof(text), value, value_len);
		resp->has_length = true;
		resp->content_length = strtoull(text, NULL, 10);
	} else if (header_is(line, name_len, "etag")) {
		header_copy(text, sizeof(text), value, value_len);
		copy_unquoted(resp->etag, sizeof(resp->etag), text);
	}
	for (size_t i = 0; i < sizeof(stored_headers) /
			       sizeof(stored_headers[0]); i++) {
		if (header_is(line, name_len, stored_headers[i].name))
			header_copy((char *)resp + stored_headers[i].offset,
				    stored_headers[i].size, value, value_len);
	}
	return len;
}

/* ---- one HTTP exchange ------------------------------------------------ */

/* Build the signed header list; returns NULL on allocation failure. */
static struct curl_slist *build_headers(struct s3_origin *so,
					struct s3_request *req,
					const char *path, const char *query)
{
	struct s3_header headers[MAX_REQUEST_HEADERS + 4];
	const char *payload = req->payload_sha256 ? req->payload_sha256 :
						    S3_EMPTY_SHA256;
	struct curl_slist *list = NULL, *next;
	char amz_date[17];
	char auth[1024];
	size_t n = 0;

	s3_amz_date((long)time(NULL), amz_date);
	headers[n++] = (struct s3_header){ "Host", so->host };
	headers[n++] = (struct s3_header){ "x-amz-date", amz_date };
	headers[n++] = (struct s3_header){ "x-amz-content-sha256", payload };
	if (!so->anonymous && so->creds.session_token)
		headers[n++] = (struct s3_header){ "x-amz-security-token",
						   so->creds.session_token };
	for (size_t i = 0; i < req->nheaders; i++)
		headers[n++] = req->headers[i];

	if (!so->anonymous) {
		struct s3_sign_request sr = {
			.method = req->method,
			.path = path,
			.query = query,
			.headers = headers,
			.nheaders = n,
			.payload_sha256 = payload,
			.region = so->region,
			.service = "s3",
			.amz_date = amz_date,
			.access_key = so->creds.access_key,
			.secret_key = so->creds.secret_key,
		};

		if (s3_sign(&sr, auth, sizeof(auth)))
			return NULL;
	}

	for (size_t i = 0; i <= n; i++) {
		char *line;

		if (i < n)
			line = str_printf("%s: %s", headers[i].name,
					  headers[i].value);
		else if (!so->anonymous)
			line = str_printf("Authorization: %s", auth);
		else
			break;
		next = line ? curl_slist_append(list, line) : NULL;
		free(line);
		if (!next)
			goto out_free;
		list = next;
	}
	/* No "Expect: 100-continue" round trip before bodies. */
	next = curl_slist_append(list, "Expect:");
	if (!next)
		goto out_free;
	return next;

out_free:
	curl_slist_free_all(list);
	return NULL;
}

static void set_method(CURL *curl, struct s3_request *req)
{
	struct s3_body *body = req->body;

	curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_send);
	curl_easy_setopt(curl, CURLOPT_READDATA, body);
	curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, on_seek);
	curl_easy_setopt(curl, CURLOPT_SEEKDATA, body);
	if (!strcmp(req->method, "HEAD")) {
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(req->method, "PUT")) {
		curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)body->len);
	} else if (!strcmp(req->method, "POST")) {
		curl_easy_setopt(curl, CURLOPT_POST, 1L);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)body->len);
	} else if (!strcmp(req->method, "GET")) {
		curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
	}
}

static void set_common_options(struct s3_origin *so, CURL *curl,
			       struct s3_request *req)
{
	struct s3_response *resp = &req->resp;

	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPINTVL, 15L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)CONNECT_TIMEOUT_MS);
	/* An attempt ends after the operation's timeout, and sooner when
	 * the transfer moves less than 1 KiB/s for low_speed_time. */
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)so->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, so->low_speed_time);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "nearfs/" NEARFS_VERSION);
	/* Fewer, larger pieces of a body: less time in the callbacks. */
	curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 256L * 1024);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, resp->curl_error);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, resp);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_receive);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
}

static bool curl_code_retryable(CURLcode code)
{
	switch (code) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

static bool status_retryable(long status)
{
	return status == 408 || status == 429 || status == 500 ||
	       status == 502 || status == 503 || status == 504;
}

/* Parse an <Error> body into resp->code and resp->message. */
static void parse_error_body(struct s3_response *resp)
{
	resp->code[0] = '\0';
	resp->message[0] = '\0';
	if (!resp->len || !strstr(resp->data, "<Error"))
		return;
	if (s3_xml_parse_error(resp->data, resp->len, resp->code,
			       sizeof(resp->code), resp->message,
			       sizeof(resp->message))) {
		resp->code[0] = '\0';
		resp->message[0] = '\0';
	}
}

static void reset_response(struct s3_response *resp)
{
	resp->status = 0;
	resp->curl_code = CURLE_OK;
	resp->curl_error[0] = '\0';
	resp->len = 0;
	if (resp->data)
		resp->data[0] = '\0';
	resp->dst_len = 0;
	resp->sink_error = 0;
	resp->skipped = 0;
	resp->code[0] = '\0';
	resp->message[0] = '\0';
	reset_headers(resp);
}

/*
 * Send req once.  Returns 0 when a response (any status) arrived, a
 * negative errno when the request could not be made, and sets *retry
 * when a new attempt can succeed.
 */
static int attempt_once(struct s3_origin *so, struct s3_request *req,
			const char *url, const char *path, bool *retry)
{
	struct s3_response *resp = &req->resp;
	const char *query = req->query ? req->query : "";
	struct curl_slist *headers;
	struct origin_timer timer;
	CURL *curl;
	int rc = 0;

	*retry = false;
	reset_response(resp);
	if (!req->body) {
		/* curl reads stdin for an upload without a read function. */
		req->empty_body = (struct s3_body){ .fd = -1, .mem = "" };
		req->body = &req->empty_body;
	}
	if (req->body) {
		req->body->pos = 0;
		req->body->error = 0;
	}
	curl = pool_take(so);
	if (!curl)
		return -ENOMEM;
	headers = build_headers(so, req, path, query);
	if (!headers) {
		rc = -ENOMEM;
		goto out_give;
	}
	set_common_options(so, curl, req);
	set_method(curl, req);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

	/* Every S3 request passes here: this is where it is timed. */
	origin_request_start(&so->base, req->kind, &timer);
	resp->curl_code = curl_easy_perform(curl);
	origin_request_end(&so->base, &timer);
	if (resp->curl_code != CURLE_OK) {
		if (req->body && req->body->error)
			rc = req->body->error;
		else
			rc = -EIO;
		*retry = curl_code_retryable(resp->curl_code);
		goto out_free_headers;
	}
	if (!resp->headers_complete) {
		/* libcurl 7.88 takes a connection closed within the header
		 * block for the end of a response without a body. */
		snprintf(resp->curl_error, sizeof(resp->curl_error),
			 "connection closed within the response headers");
		rc = -EIO;
		*retry = true;
		goto out_free_headers;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
	parse_error_body(resp);
	if (status_retryable(resp->status))
		*retry = true;
	if (req->error_in_body && resp->status == 200 && resp->code[0])
		*retry = true;

out_free_headers:
	curl_slist_free_all(headers);
out_give:
	pool_give(so, curl);
	return rc;
}

/* Sleep a random time up to min(cap, base * 2^(attempt - 1)), the
 * "full jitter" backoff. */
static void backoff(unsigned attempt)
{
	static _Thread_local unsigned seed;
	uint64_t ceiling = (uint64_t)BACKOFF_BASE_MS << (attempt - 1);
	uint64_t ms;

	if (!seed)
		seed = (unsigned)now_ms() ^ (unsigned)(uintptr_t)&seed;
	if (ceiling > BACKOFF_CAP_MS)
		ceiling = BACKOFF_CAP_MS;
	ms = (uint64_t)rand_r(&seed) % (ceiling + 1);
	usleep((useconds_t)(ms * 1000));
}

static const char *request_target(const struct s3_request *req)
{
	return req->key && *req->key ? req->key : "(bucket)";
}

/* Record why req failed as this thread's origin_detail(): curl's error
 * message, else the status, code and message of the response. */
static void set_failure_detail(const struct s3_request *req)
{
	const struct s3_response *resp = &req->resp;

	if (resp->curl_error[0])
		origin_set_detail("%s", resp->curl_error);
	else if (resp->status)
		origin_set_detail("HTTP %ld%s%s%s%s", resp->status,
				  resp->code[0] ? " " : "", resp->code,
				  resp->message[0] ? ": " : "",
				  resp->message);
}

/* Map a final response to 0 or -errno, logging what the caller cannot. */
static int status_to_errno(struct s3_origin *so, struct s3_request *req)
{
	struct s3_response *resp = &req->resp;
	const char *code = resp->code;
	long status = resp->status;

	if (status >= 200 && status < 300 &&
	    !(req->error_in_body && code[0]))
		return 0;
	if (!strcmp(code, "NoSuchBucket")) {
		if (!req->quiet &&
		    !atomic_exchange(&so->bucket_missing_logged, true))
			log_err("s3: bucket %s not found at %s", so->bucket,
				so->endpoint);
		return -ENOENT;
	}
	switch (status) {
	case 404:
		return -ENOENT;
	case 412:
		return -ESTALE;
	case 416:
		return -ERANGE;
	case 403:
		if (!req->quiet)
			log_limited(LOG_WARNING, "s3: %s %s: access denied "
				    "(%s)", req->method, request_target(req),
				    code[0] ? code : "403");
		return -EACCES;
	default:
		break;
	}
	if (!strcmp(code, "EntityTooLarge"))
		return -EFBIG;
	if (!strcmp(code, "KeyTooLongError"))
		return -ENAMETOOLONG;
	if (!req->quiet)
		log_limited(LOG_WARNING, "s3: %s %s failed: HTTP %ld %s%s%s",
			    req->method, request_target(req), status, code,
			    code[0] ? ": " : "", resp->message);
	if (status == 400)
		return -EINVAL;
	return -EIO;
}

static uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Note an attempt that failed with an error that is retried, and log the
 * start of a burst. */
static void burst_note_failure(struct s3_origin *so,
			       const struct s3_request *req, int rc)
{
	char error[CURL_ERROR_SIZE + 96];

	if (atomic_load(&so->burst))
		return;
	if (rc)
		snprintf(error, sizeof(error), "%s", req->resp.curl_error[0] ?
			 req->resp.curl_error : strerror(-rc));
	else
		snprintf(error, sizeof(error), "HTTP %ld %s", req->resp.status,
			 req->resp.code);
	pthread_mutex_lock(&so->burst_lock);
	if (!atomic_load(&so->burst)) {
		atomic_store(&so->burst, true);
		so->burst_retries = 0;
		log_warn("s3: origin %s (bucket %s) is failing: %s %s: %s. "
			 "Requests are retried, and one line follows when it "
			 "answers again", so->endpoint, so->bucket,
			 req->method, request_target(req), error);
	}
	pthread_mutex_unlock(&so->burst_lock);
}

static void burst_count_retry(struct s3_origin *so)
{
	if (!atomic_load(&so->burst))
		return;
	pthread_mutex_lock(&so->burst_lock);
	if (atomic_load(&so->burst))
		so->burst_retries++;
	pthread_mutex_unlock(&so->burst_lock);
}

/* Note an attempt that got a response which is not retried, and log the
 * end of a burst. */
static void burst_note_answer(struct s3_origin *so)
{
	if (!atomic_load(&so->burst))
		return;
	pthread_mutex_lock(&so->burst_lock);
	if (atomic_load(&so->burst)) {
		atomic_store(&so->burst, false);
		log_info("s3: origin %s (bucket %s) answered again after %"
			 PRIu64 " retries", so->endpoint, so->bucket,
			 so->burst_retries);
	}
	pthread_mutex_unlock(&so->burst_lock);
}

/*
 * Send req with retries and return 0 for a 2xx response, else -errno
 * (see status_to_errno, and -EIO when every attempt failed).  The response
 * stays in req->resp; the caller frees it with request_free().
 */
static int request_send(struct s3_origin *so, struct s3_request *req)
{
	char *enc = req->key ? s3_uri_encode(req->key, 1) : NULL;
	uint64_t start_ms;
	const char *query = req->query ? req->query : "";
	char *path, *url;
	bool retry = false;
	int rc = -ENOMEM;

	if (req->key && !enc)
		return -ENOMEM;
	path = str_printf("%s/%s", so->path_base, enc ? enc : "");
	free(enc);
	if (!path)
		return -ENOMEM;
	url = str_printf("%s%s%s%s", so->url_base, path, *query ? "?" : "",
			 query);
	if (!url)
		goto out_free_path;

	start_ms = monotonic_ms();
	for (unsigned attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		if (attempt) {
			atomic_fetch_add(&so->base.counters.retries, 1);
			burst_count_retry(so);
			backoff(attempt);
		}
		uint64_t sent_ms = monotonic_ms();

		rc = attempt_once(so, req, url, path, &retry);
		log_debug("s3: %s %s%s%s%s%s: %s%ld (attempt %u, %" PRIu64
			  " ms)", req->method, request_target(req),
			  *query ? " ?" : "", query,
			  request_range(req) ? " " : "",
			  request_range(req) ? request_range(req) : "",
			  rc ? req->resp.curl_error : "HTTP ",
			  rc ? 0L : req->resp.status, attempt + 1,
			  monotonic_ms() - sent_ms);
		if (!retry) {
			if (rc == 0)
				burst_note_answer(so);
			break;
		}
		if (!req->quiet)
			burst_note_failure(so, req, rc);
		/* Each attempt may take timeout; no new one starts once
		 * three times that has passed. */
		if (monotonic_ms() - start_ms >= 3 * so->timeout_ms)
			break;
	}
	if (rc) {
		if (!req->quiet)
			log_limited(LOG_WARNING, "s3: %s %s at %s failed: %s",
				    req->method, request_target(req),
				    so->endpoint, req->resp.curl_error[0] ?
				    req->resp.curl_error : strerror(-rc));
		if (rc != -ENOMEM && !(req->body && req->body->error))
			rc = -EIO;
	} else if (retry) {
		if (!req->quiet)
			log_limited(LOG_WARNING, "s3: %s %s failed after "
				    "retries: HTTP %ld %s", req->method,
				    request_target(req), req->resp.status,
				    req->resp.code);
		rc = -EIO;
	} else {
		rc = status_to_errno(so, req);
	}
	/* Not found, precondition failed and range not satisfiable are
	 * valid results, not failures of the origin. */
	if (rc && rc != -ENOENT && rc != -ESTALE && rc != -ERANGE) {
		atomic_fetch_add(&so->base.counters.errors, 1);
		set_failure_detail(req);
	}
	free(url);
out_free_path:
	free(path);
	return rc;
}

/* ---- metadata --------------------------------------------------------- */

/* Parse "seconds[.fraction]" into ts.  Returns 0 or -EINVAL. */
static int parse_mtime(const char *text, struct timespec *ts)
{
	char *end;
	long long sec;
	long nsec = 0, scale = 100000000;

	errno = 0;
	sec = strtoll(text, &end, 10);
	if (errno || end == text)
		return -EINVAL;
	if (*end == '.') {
		for (end++; *end >= '0' && *end <= '9'; end++) {
			nsec += (*end - '0') * scale;
			scale /= 10;
		}
	}
	if (*end)
		return -EINVAL;
	ts->tv_sec = (time_t)sec;
	ts->tv_nsec = nsec;
	return 0;
}

static bool parse_ulong(const char *text, unsigned long *out)
{
	char *end;

	if (!*text)
		return false;
	errno = 0;
	*out = strtoul(text, &end, 10);
	return !errno && !*end;
}

static mode_t file_type_of(mode_t mode, bool is_dir)
{
	mode_t type = mode & S_IFMT;

	if (is_dir)
		return S_IFDIR;
	if (type == S_IFREG || type == S_IFDIR || type == S_IFLNK)
		return type;
	return S_IFREG;
}

/* Fill attr from the headers of a HEAD or GET response.  is_dir: the
 * object is a "dir/" marker. */
static void attr_from_headers(const struct s3_response *resp, bool is_dir,
			      struct origin_attr *attr)
{
	unsigned long value;

	memset(attr, 0, sizeof(*attr));
	attr->mode = is_dir ? DEFAULT_DIR_MODE : DEFAULT_FILE_MODE;
	if (parse_ulong(resp->meta_mode, &value)) {
		attr->mode = file_type_of((mode_t)value, is_dir) |
			     ((mode_t)value & 07777);
		attr->valid |= ORIGIN_ATTR_MODE;
	}
	if (parse_ulong(resp->meta_uid, &value)) {
		attr->uid = (uid_t)value;
		attr->valid |= ORIGIN_ATTR_UID;
	}
	if (parse_ulong(resp->meta_gid, &value)) {
		attr->gid = (gid_t)value;
		attr->valid |= ORIGIN_ATTR_GID;
	}
	if (resp->meta_mtime[0] && !parse_mtime(resp->meta_mtime,
						&attr->mtime)) {
		attr->valid |= ORIGIN_ATTR_MTIME;
	} else if (resp->last_modified[0]) {
		time_t t = curl_getdate(resp->last_modified, NULL);

		if (t != -1) {
			attr->mtime.tv_sec = t;
			attr->valid |= ORIGIN_ATTR_MTIME;
		}
	}
	if (S_ISDIR(attr->mode))
		return;
	attr->size = resp->content_length;
	snprintf(attr->version, sizeof(attr->version), "%s", resp->etag);
}

/*
 * Add x-amz-meta-* headers for the fields of attr selected by `which`,
 * formatted into meta.  The mode always carries its type bits.
 */
static void add_meta_headers(struct s3_request *req, struct s3_meta *meta,
			     const struct origin_attr *attr, unsigned which)
{
	if (which & ORIGIN_ATTR_MODE) {
		snprintf(meta->mode, sizeof(meta->mode), "%u",
			 (unsigned)attr->mode);
		request_add_header(req, "x-amz-meta-mode", meta->mode);
	}
	if (which & ORIGIN_ATTR_UID) {
		snprintf(meta->uid, sizeof(meta->uid), "%u",
			 (unsigned)attr->uid);
		request_add_header(req, "x-amz-meta-uid", meta->uid);
	}
	if (which & ORIGIN_ATTR_GID) {
		snprintf(meta->gid, sizeof(meta->gid), "%u",
			 (unsigned)attr->gid);
		request_add_header(req, "x-amz-meta-gid", meta->gid);
	}
	if (which & ORIGIN_ATTR_MTIME) {
		snprintf(meta->mtime, sizeof(meta->mtime), "%lld",
			 (long long)attr->mtime.tv_sec);
		request_add_header(req, "x-amz-meta-mtime", meta->mtime);
	}
}

/*
 * The metadata a new object stores: the fields of `given` selected by
 * its valid bits, mode with the type bits of `type`, and an mtime (now
 * when none is given, in whole seconds as s3fs writes it).
 */
static void new_object_attr(const struct origin_attr *given, mode_t type,
			    struct origin_attr *attr)
{
	memset(attr, 0, sizeof(*attr));
	attr->mode = type | (type == S_IFDIR ? 0755 : 0644);
	if (given)
		attr->valid = given->valid & (ORIGIN_ATTR_MODE |
					      ORIGIN_ATTR_UID |
					      ORIGIN_ATTR_GID |
					      ORIGIN_ATTR_MTIME);
	if (attr->valid & ORIGIN_ATTR_MODE)
		attr->mode = type | (given->mode & 07777);
	if (attr->valid & ORIGIN_ATTR_UID)
		attr->uid = given->uid;
	if (attr->valid & ORIGIN_ATTR_GID)
		attr->gid = given->gid;
	if (attr->valid & ORIGIN_ATTR_MTIME)
		attr->mtime.tv_sec = given->mtime.tv_sec;
	else
		attr->mtime.tv_sec = time(NULL);
	attr->valid |= ORIGIN_ATTR_MTIME;
}

/* ---- request helpers per S3 operation --------------------------------- */

static int head_object(struct s3_origin *so, const char *key,
		       struct s3_request *req)
{
	request_init(req, "HEAD", ORIGIN_REQ_HEAD, key);
	return request_send(so, req);
}

static int delete_object(struct s3_origin *so, const char *key)
{
	struct s3_request req;
	int rc;

	request_init(&req, "DELETE", ORIGIN_REQ_DELETE, key);
	rc = request_send(so, &req);
	request_free(&req);
	return rc;
}

/*
 * Fetch one ListObjectsV2 page of keys under prefix.  delimiter and
 * token may be NULL; start_after is used when token is NULL and
 * start_after is non-NULL; max_keys 0 leaves the server's default.
 * Keys and prefixes in page stay URL-encoded as sent (encoding-type=url).
 */
static int list_page(struct s3_origin *so, const char *prefix,
		     const char *delimiter, const char *token,
		     const char *start_after, unsigned max_keys,
		     struct s3_list_page *page)
{
	struct s3_request req;
	char *query = NULL;
	char keys[16];
	int rc = 0;

	memset(page, 0, sizeof(*page));
	if (token)
		rc = query_add(&query, "continuation-token", token);
	if (!rc && delimiter)
		rc = query_add(&query, "delimiter", delimiter);
	if (!rc)
		rc = query_add(&query, "encoding-type", "url");
	if (!rc)
		rc = query_add(&query, "list-type", "2");
	if (!rc && max_keys) {
		snprintf(keys, sizeof(keys), "%u", max_keys);
		rc = query_add(&query, "max-keys", keys);
	}
	if (!rc)
		rc = query_add(&query, "prefix", prefix);
	if (!rc && !token && start_after)
		rc = query_add(&query, "start-after", start_after);
	if (rc)
		goto out_free;

	request_init(&req, "GET", ORIGIN_REQ_LIST, NULL);
	req.query = query;
	rc = request_send(so, &req);
	if (!rc && s3_xml_parse_list(req.resp.data ? req.resp.data : "",
				     req.resp.len, false, page)) {
		log_warn("s3: invalid ListObjectsV2 response for prefix %s",
			 prefix);
		rc = -EIO;
	}
	request_free(&req);
out_free:
	free(query);
	return rc;
}

static char *decode_listed(const char *encoded)
{
	return s3_decode_listed(encoded);
}

/* ---- stat ------------------------------------------------------------- */

static void dir_attr(struct origin_attr *attr)
{
	memset(attr, 0, sizeof(*attr));
	attr->mode = DEFAULT_DIR_MODE;
}

/*
 * Stat a path with no object of its own: a directory when some key
 * starts with "key/".  The "key/" marker object, when it exists, contains
 * the directory's metadata.
 */
static int stat_dir(struct s3_origin *so, const char *key,
		    struct origin_attr *attr)
{
	struct s3_list_page page;
	struct s3_request req;
	char *dirkey = str_printf("%s/", key);
	char *first = NULL;
	int rc;

	if (!dirkey)
		return -ENOMEM;
	rc = list_page(so, dirkey, NULL, NULL, NULL, 1, &page);
	if (rc)
		goto out_free;
	if (!page.nentries && !page.nprefixes) {
		rc = -ENOENT;
		goto out_page;
	}
	dir_attr(attr);
	if (page.nentries)
		first = decode_listed(page.entries[0].key);
	if (!first || strcmp(first, dirkey))
		goto out_page;

	if (!head_object(so, dirkey, &req))
		attr_from_headers(&req.resp, true, attr);
	request_free(&req);
out_page:
	free(first);
	s3_list_page_free(&page);
out_free:
	free(dirkey);
	return rc;
}

static int s3_stat(struct origin *o, const char *path,
		   struct origin_attr *attr)
{
	struct s3_origin *so = s3_of(o);
	struct s3_request req;
	char *key;
	int rc;

	if (!*path) {
		dir_attr(attr);
		return 0;
	}
	key = key_of(so, path, false);
	if (!key)
		return -ENOMEM;
	rc = head_object(so, key, &req);
	if (!rc)
		attr_from_headers(&req.resp, false, attr);
	request_free(&req);
	if (rc == -ENOENT)
		rc = stat_dir(so, key, attr);
	free(key);
	return rc;
}

/* ---- list ------------------------------------------------------------- */

/* The reason logged for a prefix that an object of its name hides. */
#define SHADOWED_PREFIX "an object of the same name without the slash is " \
	"listed in its place, so the keys below it are hidden"

/* Maximum number of hidden keys logged at warning level. */
#define SKIPPED_LOG_MAX 100

/* Hidden keys already logged, so that each is logged once. */
static struct htab skipped_keys;
static pthread_mutex_t skipped_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Log that a listed key is hidden because no file name can carry it:
 * at warning level the first time for each key, up to SKIPPED_LOG_MAX
 * keys, and at debug level after that.
 */
static void log_skipped(const char *encoded, const char *reason)
{
	bool first = false;

	pthread_mutex_lock(&skipped_lock);
	if (!skipped_keys.buckets && htab_init(&skipped_keys) < 0)
		goto out;
	if (skipped_keys.count >= SKIPPED_LOG_MAX ||
	    htab_get(&skipped_keys, encoded))
		goto out;
	first = htab_put(&skipped_keys, encoded, &skipped_keys) == 0;
	if (first && skipped_keys.count == SKIPPED_LOG_MAX)
		log_warn("s3: %u keys hidden so far; further ones are logged "
			 "at debug level only", SKIPPED_LOG_MAX);
out:
	pthread_mutex_unlock(&skipped_lock);
	if (first)
		log_warn("s3: key %s is hidden: %s", encoded, reason);
	else
		log_debug("s3: key %s is hidden: %s", encoded, reason);
}

/* Return the entry name of a listed key below prefix, or NULL (with a
 * log line) when no path component can carry it. */
static const char *entry_name(const char *key, const char *prefix,
			      const char *encoded)
{
	const char *reason;
	const char *name = s3_entry_name(key, prefix, &reason);

	if (reason)
		log_skipped(encoded, reason);
	return name;
}

static void file_attr(const struct s3_list_entry *entry,
		      struct origin_attr *attr)
{
	memset(attr, 0, sizeof(*attr));
	attr->mode = DEFAULT_FILE_MODE;
	attr->size = entry->size;
	attr->mtime = entry->mtime;
	attr->valid = ORIGIN_ATTR_MTIME;
	snprintf(attr->version, sizeof(attr->version), "%s", entry->etag);
}

static int emit_file(const struct s3_list_entry *entry, const char *prefix,
		     origin_list_fn fn, void *arg)
{
	char *key = decode_listed(entry->key);
	const char *name = entry_name(key, prefix, entry->key);
	struct origin_attr attr;
	int rc = 0;

	if (name) {
		file_attr(entry, &attr);
		rc = fn(arg, name, &attr);
	}
	free(key);
	return rc;
}

static int emit_dir(const char *encoded, const char *prefix,
		    origin_list_fn fn, void *arg)
{
	char *key = decode_listed(encoded);
	struct origin_attr attr;
	const char *name;
	int rc = 0;

	/* A common prefix ends in the delimiter, which is not part of the
	 * name: "dir/a/" is entry "a". */
	if (key && has_suffix(key, "/"))
		key[strlen(key) - 1] = '\0';
	name = entry_name(key, prefix, encoded);
	if (name) {
		dir_attr(&attr);
		rc = fn(arg, name, &attr);
	}
	free(key);
	return rc;
}

/* Compare the names behind a listed key and a common prefix. */
static int compare_listed(const char *key, const char *common_prefix)
{
	size_t n = strlen(common_prefix);
	int cmp;

	if (n && common_prefix[n - 1] == '/')
		n--;
	cmp = strncmp(key, common_prefix, n);
	if (cmp)
		return cmp;
	return key[n] ? 1 : 0;
}

/*
 * Emit one page, Contents and CommonPrefixes merged in key order.  An
 * object "a" and a prefix "a/" in the same page give one entry, the
 * file, which is what stat() of "a" reports.
 */
static int emit_page(const struct s3_list_page *page, const char *prefix,
		     origin_list_fn fn, void *arg)
{
	size_t i = 0, j = 0;
	int rc = 0;

	while (!rc && (i < page->nentries || j < page->nprefixes)) {
		int cmp;

		if (i == page->nentries)
			cmp = 1;
		else if (j == page->nprefixes)
			cmp = -1;
		else
			cmp = compare_listed(page->entries[i].key,
					     page->prefixes[j]);
		if (cmp <= 0)
			rc = emit_file(&page->entries[i++], prefix, fn, arg);
		else
			rc = emit_dir(page->prefixes[j++], prefix, fn, arg);
		if (!cmp)
			log_skipped(page->prefixes[j++], SHADOWED_PREFIX);
	}
	return rc;
}

typedef int (*page_fn)(const struct s3_list_page *page, const char *prefix,
		       void *arg);

/*
 * Fetch the ListObjectsV2 page at token (NULL for the first) of the keys
 * below dir, which have the key prefix prefix, grouped by delimiter
 * unless it is NULL, and pass it to fn.  *next receives the token of the
 * next page, malloc'ed, or NULL after the last page.
 */
static int fetch_page(struct s3_origin *so, const char *dir,
		      const char *prefix, const char *delimiter,
		      const char *token, page_fn fn, void *arg, char **next)
{
	struct s3_list_page page;
	int rc;

	*next = NULL;
	rc = list_page(so, prefix, delimiter, token, NULL, so->list_max_keys,
		       &page);
	if (rc)
		return rc;
	/* An empty first page: no key below, not even a marker. */
	if (!token && *dir && !page.nentries && !page.nprefixes)
		rc = -ENOENT;
	if (!rc)
		rc = fn(&page, prefix, arg);
	if (!rc && page.truncated && page.next_token && *page.next_token) {
		*next = strdup(page.next_token);
		if (!*next)
			rc = -ENOMEM;
	}
	s3_list_page_free(&page);
	return rc;
}

/* Fetch every ListObjectsV2 page of the keys below dir, grouped by
 * delimiter unless it is NULL, and pass each page to fn. */
static int list_pages(struct s3_origin *so, const char *dir,
		      const char *delimiter, page_fn fn, void *arg)
{
	char *prefix = key_of(so, dir, true);
	char *token = NULL, *next;
	int rc = 0;

	if (!prefix)
		return -ENOMEM;
	do {
		rc = fetch_page(so, dir, prefix, delimiter, token, fn, arg,
				&next);
		free(token);
		token = next;
	} while (!rc && token);
	free(token);
	free(prefix);
	return rc;
}

struct list_target {
	origin_list_fn fn;
	void *arg;
};

static int list_one_page(const struct s3_list_page *page, const char *prefix,
			 void *arg)
{
	struct list_target *t = arg;

	return emit_page(page, prefix, t->fn, t->arg);
}

/* NOTE: an object "a" and a prefix "a/" that fall on different pages
 * are both emitted, so the callback receives the name twice. */
static int s3_list(struct origin *o, const char *dir, origin_list_fn fn,
		   void *arg)
{
	struct list_target t = { .fn = fn, .arg = arg };

	return list_pages(s3_of(o), dir, "/", list_one_page, &t);
}

/* One page of the delimited listing of s3_list(), with the same NOTE. */
static int s3_list_page(struct origin *o, const char *dir,
			const char *token, origin_list_fn fn, void *arg,
			char *next_token, size_t len)
{
	struct s3_origin *so = s3_of(o);
	struct list_target t = { .fn = fn, .arg = arg };
	char *prefix = key_of(so, dir, true);
	char *next = NULL;
	int rc;

	if (!prefix)
		return -ENOMEM;
	rc = fetch_page(so, dir, prefix, "/", *token ? token : NULL,
			list_one_page, &t, &next);
	if (!rc && next && strlen(next) >= len) {
		log_warn("s3: continuation token of %zu bytes listing %s "
			 "is longer than the %zu bytes nearfs keeps",
			 strlen(next), prefix, len - 1);
		rc = -EOVERFLOW;
	}
	if (!rc)
		snprintf(next_token, len, "%s", next ? next : "");
	free(next);
	free(prefix);
	return rc;
}

/* Map a decoded key of a recursive listing to its path (s3_tree_path()),
 * logging the keys it hides or cuts. */
static char *tree_path(char *key, const char *prefix, const char *encoded)
{
	const char *reason;
	char *path = s3_tree_path(key, prefix, &reason);

	if (reason)
		log_skipped(encoded, reason);
	return path;
}

/* A file of a recursive listing whose name may come back as a folder. */
struct listed_file {
	char *path;		/* relative path, decoded */
	char *encoded;		/* the key as listed */
};

struct tree_target {
	origin_tree_fn fn;
	void *arg;
	/* Files listed so far whose names are prefixes of the last path,
	 * innermost last.  Keys arrive sorted, so a file leaves this stack
	 * at the first path that does not start with its name. */
	struct listed_file *files;
	size_t nfiles, alloc;
};

static void tree_target_pop(struct tree_target *t)
{
	struct listed_file *f = &t->files[--t->nfiles];

	free(f->path);
	free(f->encoded);
}

/*
 * Return whether path (listed as the key encoded) is below a file listed
 * before it, as "a/x" is below "a".  Such a name is shown as the file,
 * so the keys below it are hidden, and the prefix "a/" is logged once,
 * as a delimited listing does.
 */
static bool tree_hidden(struct tree_target *t, const char *path,
			const char *encoded)
{
	struct listed_file *f;
	size_t n;

	while (t->nfiles) {
		f = &t->files[t->nfiles - 1];
		n = strlen(f->path);
		if (strncmp(path, f->path, n) != 0)
			tree_target_pop(t);
		else if (path[n] == '/')
			break;
		else
			goto keep;
	}
	if (t->nfiles) {
		char *prefix;

		if (asprintf(&prefix, "%s/", f->encoded) >= 0) {
			log_skipped(prefix, SHADOWED_PREFIX);
			free(prefix);
		}
		return true;
	}
keep:
	if (has_suffix(path, "/"))
		return false;
	if (t->nfiles == t->alloc) {
		size_t count = t->alloc ? t->alloc * 2 : 8;
		struct listed_file *p = realloc(t->files, count * sizeof(*p));

		if (!p)
			return false;	/* the log line is lost, not the entry */
		t->files = p;
		t->alloc = count;
	}
	f = &t->files[t->nfiles];
	f->path = strdup(path);
	f->encoded = strdup(encoded);
	if (f->path && f->encoded)
		t->nfiles++;
	else {
		free(f->path);
		free(f->encoded);
	}
	return false;
}

static int tree_one_page(const struct s3_list_page *page, const char *prefix,
			 void *arg)
{
	struct tree_target *t = arg;
	struct origin_tree_entry *entries;
	struct origin_tree_page tp = { 0 };
	char **keys;
	int rc = -ENOMEM;

	entries = calloc(page->nentries + 1, sizeof(*entries));
	keys = calloc(page->nentries + 1, sizeof(*keys));
	if (!entries || !keys)
		goto out_free;
	dir_attr(&tp.dir_attr);
	for (size_t i = 0; i < page->nentries; i++) {
		const struct s3_list_entry *e = &page->entries[i];
		struct origin_tree_entry *te = &entries[tp.count];
		const char *path;

		keys[i] = decode_listed(e->key);
		path = keys[i] ? tree_path(keys[i], prefix, e->key) : NULL;
		if (!path)
			continue;
		if (tree_hidden(t, path, e->key))
			continue;
		te->path = path;
		if (has_suffix(path, "/"))
			te->attr = tp.dir_attr;
		else
			file_attr(e, &te->attr);
		tp.count++;
	}
	tp.entries = entries;
	rc = t->fn(t->arg, &tp);
out_free:
	for (size_t i = 0; keys && i < page->nentries; i++)
		free(keys[i]);
	free(keys);
	free(entries);
	return rc;
}

/* NOTE: a key that cannot be decoded ("%00") is skipped whole, so a
 * directory above it that holds no other key is missing here although a
 * delimited listing shows it. */
static int s3_list_tree(struct origin *o, const char *dir, origin_tree_fn fn,
			void *arg)
{
	struct tree_target t = { .fn = fn, .arg = arg };
	int rc = list_pages(s3_of(o), dir, NULL, tree_one_page, &t);

	while (t.nfiles)
		tree_target_pop(&t);
	free(t.files);
	return rc;
}

/* ---- read ------------------------------------------------------------- */

static int get_range(struct s3_origin *so, const char *key,
		     const char *version, uint64_t offset, uint64_t len,
		     origin_sink_fn fn, void *arg, uint64_t *done)
{
	struct s3_request req;
	char range[64];
	char if_match[ORIGIN_VERSION_MAX + 2];
	int rc;

	*done = 0;
	if (!len)
		return 0;
	request_init(&req, "GET", ORIGIN_REQ_GET, key);
	snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, offset,
		 offset + len - 1);
	request_add_header(&req, "Range", range);
	if (version && *version) {
		snprintf(if_match, sizeof(if_match), "\"%s\"", version);
		request_add_header(&req, "If-Match", if_match);
	}
	req.resp.sink = fn;
	req.resp.sink_arg = arg;
	req.resp.dst_cap = len;
	/* Used only if a 200 response ignores the range. */
	req.resp.skip = offset;
	rc = request_send(so, &req);
	if (req.resp.sink_error) {
		rc = req.resp.sink_error;
	} else if (!rc) {
		*done = req.resp.dst_len;
	} else if (rc == -ERANGE) {
		rc = 0;		/* 416: offset at or past the end */
	}
	request_free(&req);
	return rc;
}

static int s3_read_stream(struct origin *o, const char *path,
			  const char *version, uint64_t offset, uint64_t len,
			  origin_sink_fn fn, void *arg, uint64_t *done)
{
	struct s3_origin *so = s3_of(o);
	char *key = key_of(so, path, false);
	int rc;

	if (!key)
		return -ENOMEM;
	rc = get_range(so, key, version, offset, len, fn, arg, done);
	if (!rc)
		atomic_fetch_add(&o->counters.bytes_read, *done);
	free(key);
	return rc;
}

static int s3_read(struct origin *o, const char *path, const char *version,
		   uint64_t offset, size_t len, void *buf, size_t *done)
{
	uint64_t n;
	int rc;

	rc = s3_read_stream(o, path, version, offset, len, origin_sink_copy,
			    buf, &n);
	*done = n;
	return rc;
}

/* ---- write ------------------------------------------------------------ */

/* PutObject of body under key with the metadata of attr. */
static int put_object(struct s3_origin *so, const char *key,
		      struct s3_body *body, const struct origin_attr *attr,
		      char *etag, size_t etaglen)
{
	struct s3_request req;
	struct s3_meta meta;
	int rc;

	request_init(&req, "PUT", ORIGIN_REQ_PUT, key);
	req.body = body;
	req.payload_sha256 = S3_UNSIGNED_PAYLOAD;
	request_add_header(&req, "Content-Type", "application/octet-stream");
	add_meta_headers(&req, &meta, attr, attr->valid);
	rc = request_send(so, &req);
	if (!rc) {
		snprintf(etag, etaglen, "%s", req.resp.etag);
		atomic_fetch_add(&so->base.counters.bytes_written, body->len);
	}
	request_free(&req);
	return rc;
}

struct multipart {
	const char *key;
	char *upload_id;
	char *encoded_id;	/* upload_id, SigV4-encoded for queries */
	char (*etags)[ORIGIN_VERSION_MAX];
	unsigned nparts;
	uint64_t leftover;	/* its entry in the register of leftovers */
};

static int multipart_initiate(struct s3_origin *so, struct multipart *mp,
			      const struct origin_attr *attr)
{
	struct s3_request req;
	struct s3_meta meta;
	int rc;

	request_init(&req, "POST", ORIGIN_REQ_MULTIPART, mp->key);
	req.query = "uploads";
	request_add_header(&req, "Content-Type", "application/octet-stream");
	add_meta_headers(&req, &meta, attr, attr->valid);
	rc = request_send(so, &req);
	if (!rc) {
		mp->upload_id = s3_xml_find_text(req.resp.data ?
						 req.resp.data : "",
						 req.resp.len, "UploadId");
		if (!mp->upload_id) {
			log_warn("s3: no UploadId in the response to the"
				 " multipart upload of %s", mp->key);
			rc = -EIO;
		}
	}
	if (!rc) {
		mp->encoded_id = s3_uri_encode(mp->upload_id, 0);
		if (!mp->encoded_id)
			rc = -ENOMEM;
	}
	if (!rc) {
		/* The id of the leftover: the upload id, which contains
		 * no newline, then the key. */
		char *id = str_printf("%s\n%s", mp->upload_id, mp->key);

		if (id)
			mp->leftover = origin_leftover_add(&so->base, id);
		free(id);
	}
	request_free(&req);
	return rc;
}

static int multipart_part(struct s3_origin *so, struct multipart *mp,
			  unsigned number, struct s3_body *body)
{
	struct s3_request req;
	char *query;
	int rc;

	query = str_printf("partNumber=%u&uploadId=%s", number,
			   mp->encoded_id);
	if (!query)
		return -ENOMEM;
	request_init(&req, "PUT", ORIGIN_REQ_MULTIPART, mp->key);
	req.query = query;
	req.body = body;
	req.payload_sha256 = S3_UNSIGNED_PAYLOAD;
	rc = request_send(so, &req);
	if (!rc && !req.resp.etag[0]) {
		log_warn("s3: no ETag for part %u of %s", number, mp->key);
		rc = -EIO;
	}
	if (!rc) {
		snprintf(mp->etags[number - 1], ORIGIN_VERSION_MAX, "%s",
			 req.resp.etag);
		atomic_fetch_add(&so->base.counters.bytes_written, body->len);
	}
	request_free(&req);
	free(query);
	return rc;
}

static char *complete_body(const struct multipart *mp)
{
	char *xml = strdup("<CompleteMultipartUpload>");

	for (unsigned i = 0; xml && i < mp->nparts; i++) {
		char *next = str_printf("%s<Part><PartNumber>%u</PartNumber>"
					"<ETag>\"%s\"</ETag></Part>", xml,
					i + 1, mp->etags[i]);

		free(xml);
		xml = next;
	}
	if (xml) {
		char *next = str_printf("%s</CompleteMultipartUpload>", xml);

		free(xml);
		xml = next;
	}
	return xml;
}

static int multipart_complete(struct s3_origin *so, struct multipart *mp,
			      char *etag, size_t etaglen)
{
	struct s3_body body = { .fd = -1 };
	struct s3_request req;
	char sha256[65];
	char *query, *xml, *tag;
	int rc = -ENOMEM;

	xml = complete_body(mp);
	query = str_printf("uploadId=%s", mp->encoded_id);
	if (!xml || !query)
		goto out_free;
	body.mem = xml;
	body.len = strlen(xml);
	s3_sha256_hex(xml, body.len, sha256);

	request_init(&req, "POST", ORIGIN_REQ_MULTIPART, mp->key);
	req.query = query;
	req.body = &body;
	req.payload_sha256 = sha256;
	req.error_in_body = true;
	request_add_header(&req, "Content-Type", "application/xml");
	rc = request_send(so, &req);
	if (!rc) {
		tag = s3_xml_find_text(req.resp.data ? req.resp.data : "",
				       req.resp.len, "ETag");
		copy_unquoted(etag, etaglen, tag ? tag : "");
		free(tag);
	}
	request_free(&req);
out_free:
	free(query);
	free(xml);
	return rc;
}

/* Abort the multipart upload mp, which removes its parts. */
static int multipart_abort(struct s3_origin *so, struct multipart *mp)
{
	struct s3_request req;
	char *query = str_printf("uploadId=%s", mp->encoded_id);
	int rc;

	if (!query)
		return -ENOMEM;
	request_init(&req, "DELETE", ORIGIN_REQ_MULTIPART, mp->key);
	req.query = query;
	rc = request_send(so, &req);
	request_free(&req);
	free(query);
	return rc;
}

/* Part size for size bytes: the configured one, raised to whole MiB
 * when the upload would need more than MAX_PARTS parts. */
static uint64_t part_size_for(const struct s3_origin *so, uint64_t size)
{
	uint64_t part = so->part_size;

	if ((size + part - 1) / part > MAX_PARTS)
		part = ((size + MAX_PARTS - 1) / MAX_PARTS + MIB - 1) /
		       MIB * MIB;
	return part;
}

/* The parts of one upload, taken in order by up to PART_THREADS threads. */
struct part_queue {
	struct s3_origin *so;
	struct multipart *mp;
	int fd;
	uint64_t size;
	uint64_t part;
	_Atomic unsigned next;	/* index of the next part to send */
	_Atomic int rc;		/* the first error, 0 while none */
};

static void *part_worker(void *arg)
{
	struct part_queue *q = arg;
	unsigned i;

	while (!atomic_load(&q->rc) &&
	       (i = atomic_fetch_add(&q->next, 1)) < q->mp->nparts) {
		struct s3_body body = { .fd = q->fd,
					.offset = (uint64_t)i * q->part };
		int rc, none = 0;

		body.len = q->size - body.offset < q->part ?
			   q->size - body.offset : q->part;
		rc = multipart_part(q->so, q->mp, i + 1, &body);
		if (rc)
			atomic_compare_exchange_strong(&q->rc, &none, rc);
	}
	return NULL;
}

/*
 * Send every part of mp, several at once over separate connections, as
 * one connection to S3 carries far less than the link.  The calling
 * thread sends parts too.  Returns the first error; the parts not yet
 * started are then not sent.
 */
static int send_parts(struct s3_origin *so, struct multipart *mp, int fd,
		      uint64_t size, uint64_t part)
{
	struct part_queue q = { .so = so, .mp = mp, .fd = fd, .size = size,
				.part = part };
	pthread_t threads[PART_THREADS - 1];
	unsigned started = 0;

	while (started < PART_THREADS - 1 && started + 1 < mp->nparts &&
	       pthread_create(&threads[started], NULL, part_worker, &q) == 0)
		started++;
	part_worker(&q);
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	return atomic_load(&q.rc);
}

static int put_multipart(struct s3_origin *so, const char *key, int fd,
			 uint64_t size, const struct origin_attr *attr,
			 char *etag, size_t etaglen)
{
	uint64_t part = part_size_for(so, size);
	struct multipart mp = { .key = key };
	int rc, abort_rc;

	mp.nparts = (unsigned)((size + part - 1) / part);
	mp.etags = calloc(mp.nparts, sizeof(*mp.etags));
	if (!mp.etags)
		return -ENOMEM;
	rc = multipart_initiate(so, &mp, attr);
	if (rc)
		goto out_free;
	rc = send_parts(so, &mp, fd, size, part);
	if (!rc)
		rc = multipart_complete(so, &mp, etag, etaglen);
	if (!rc) {
		origin_leftover_done(&so->base, mp.leftover);
	} else if ((abort_rc = multipart_abort(so, &mp)) < 0) {
		log_warn("s3: abort of the multipart upload %s of %s failed:"
			 " %s; the next start tries again", mp.upload_id, key,
			 strerror(-abort_rc));
	} else {
		origin_leftover_done(&so->base, mp.leftover);
	}
out_free:
	free(mp.encoded_id);
	free(mp.upload_id);
	free(mp.etags);
	return rc;
}

static int s3_write(struct origin *o, const char *path, int fd,
		    uint64_t size, const struct origin_attr *meta,
		    struct origin_attr *result)
{
	struct s3_origin *so = s3_of(o);
	struct origin_attr attr;
	char *key;
	int rc;

	if (so->read_only)
		return -EROFS;
	if (!*path)
		return -EISDIR;
	key = key_of(so, path, false);
	if (!key)
		return -ENOMEM;
	new_object_attr(meta, S_IFREG, &attr);
	attr.size = size;
	if (size <= so->multipart_threshold) {
		struct s3_body body = { .fd = fd, .len = size };

		rc = put_object(so, key, &body, &attr, attr.version,
				sizeof(attr.version));
	} else {
		rc = put_multipart(so, key, fd, size, &attr, attr.version,
				   sizeof(attr.version));
	}
	if (!rc && result)
		*result = attr;
	free(key);
	return rc;
}

/* ---- copy, setattr ---------------------------------------------------- */

/*
 * CopyObject src_key onto dst_key.  With attr, the metadata is replaced
 * by the fields attr->valid selects and the copy happens only while the
 * source still has ETag if_match.  Without attr, the metadata is copied.
 * The new ETag goes to etag.
 * NOTE: CopyObject takes sources up to 5 GiB; larger objects would need
 * a multipart upload with UploadPartCopy, which is not implemented, so
 * they fail with the server's error (-EINVAL for AWS's InvalidRequest).
 */
static int copy_object(struct s3_origin *so, const char *src_key,
		       const char *dst_key, const struct origin_attr *attr,
		       const char *content_type, const char *if_match,
		       char *etag, size_t etaglen)
{
	char *enc = s3_uri_encode(src_key, 1);
	char match[ORIGIN_VERSION_MAX + 2];
	struct s3_request req;
	struct s3_meta meta;
	char *source, *tag;
	int rc;

	if (!enc)
		return -ENOMEM;
	source = str_printf("/%s/%s", so->bucket, enc);
	free(enc);
	if (!source)
		return -ENOMEM;
	request_init(&req, "PUT", ORIGIN_REQ_COPY, dst_key);
	req.error_in_body = true;
	request_add_header(&req, "x-amz-copy-source", source);
	if (attr) {
		request_add_header(&req, "x-amz-metadata-directive",
				   "REPLACE");
		request_add_header(&req, "Content-Type",
				   content_type && *content_type ?
				   content_type : "application/octet-stream");
		add_meta_headers(&req, &meta, attr, attr->valid);
	}
	if (if_match && *if_match) {
		snprintf(match, sizeof(match), "\"%s\"", if_match);
		request_add_header(&req, "x-amz-copy-source-if-match", match);
	}
	rc = request_send(so, &req);
	if (!rc) {
		tag = s3_xml_find_text(req.resp.data ? req.resp.data : "",
				       req.resp.len, "ETag");
		copy_unquoted(etag, etaglen, tag ? tag : "");
		free(tag);
	}
	request_free(&req);
	free(source);
	return rc;
}

/* Put a "key/" marker for an implicit directory, with attr's metadata. */
static int put_marker(struct s3_origin *so, const char *dirkey,
		      const struct origin_attr *attr)
{
	struct s3_body body = { .fd = -1, .mem = "" };
	char etag[ORIGIN_VERSION_MAX];

	return put_object(so, dirkey, &body, attr, etag, sizeof(etag));
}

/* Setattr of a directory: rewrite its marker, or create one. */
static int setattr_dir(struct s3_origin *so, const char *path,
		       const struct origin_attr *attr, unsigned which,
		       struct origin_attr *result)
{
	char *dirkey = key_of(so, path, true);
	struct s3_request req;
	struct origin_attr cur = { 0 };
	int rc;

	if (!dirkey)
		return -ENOMEM;
	rc = head_object(so, dirkey, &req);
	if (!rc) {
		attr_from_headers(&req.resp, true, &cur);
		origin_attr_merge(&cur, attr, which);
		rc = copy_object(so, dirkey, dirkey, &cur,
				 req.resp.content_type, req.resp.etag,
				 cur.version, sizeof(cur.version));
	} else if (rc == -ENOENT) {
		/* An implicit directory: the new marker stores it all. */
		rc = s3_stat(&so->base, path, &cur);
		if (!rc) {
			new_object_attr(NULL, S_IFDIR, &cur);
			origin_attr_merge(&cur, attr, which);
			rc = put_marker(so, dirkey, &cur);
		}
	}
	request_free(&req);
	cur.version[0] = '\0';
	if (!rc && result)
		*result = cur;
	free(dirkey);
	return rc;
}

/* Copy attempts when the object changes between HEAD and copy. */
#define SETATTR_ATTEMPTS 3

static int s3_setattr(struct origin *o, const char *path,
		      const struct origin_attr *attr, unsigned which,
		      struct origin_attr *result, char *prior)
{
	char copied[ORIGIN_VERSION_MAX] = "";
	struct s3_origin *so = s3_of(o);
	struct origin_attr cur;
	struct s3_request req;
	char *key;
	int rc = -ESTALE;

	if (so->read_only)
		return -EROFS;
	if (!*path)
		return -EPERM;	/* the root has no object to store it */
	key = key_of(so, path, false);
	if (!key)
		return -ENOMEM;
	for (int i = 0; i < SETATTR_ATTEMPTS && rc == -ESTALE; i++) {
		rc = head_object(so, key, &req);
		if (!rc) {
			attr_from_headers(&req.resp, false, &cur);
			memcpy(copied, cur.version, sizeof(copied));
			origin_attr_merge(&cur, attr, which);
			/* x-amz-meta-mtime keeps whole seconds. */
			cur.mtime.tv_nsec = 0;
			/* The source ETag guards against a concurrent
			 * write between HEAD and copy (412: try again). */
			rc = copy_object(so, key, key, &cur,
					 req.resp.content_type, req.resp.etag,
					 cur.version, sizeof(cur.version));
		}
		request_free(&req);
	}
	if (rc == -ENOENT) {
		rc = setattr_dir(so, path, attr, which, &cur);
		copied[0] = '\0';
	}
	if (!rc && result)
		*result = cur;
	if (!rc && prior)
		memcpy(prior, copied, sizeof(copied));
	free(key);
	return rc;
}

/* ---- unlink, mkdir, rmdir --------------------------------------------- */

static int s3_unlink(struct origin *o, const char *path)
{
	struct s3_origin *so = s3_of(o);
	char *key;
	int rc;

	if (so->read_only)
		return -EROFS;
	if (!*path)
		return -EISDIR;
	key = key_of(so, path, false);
	if (!key)
		return -ENOMEM;
	rc = delete_object(so, key);
	free(key);
	return rc;
}

static int s3_mkdir(struct origin *o, const char *path,
		    const struct origin_attr *meta)
{
	struct s3_origin *so = s3_of(o);
	struct origin_attr attr;
	char *dirkey;
	int rc;

	if (so->read_only)
		return -EROFS;
	if (!*path)
		return -EEXIST;
	dirkey = key_of(so, path, true);
	if (!dirkey)
		return -ENOMEM;
	new_object_attr(meta, S_IFDIR, &attr);
	rc = put_marker(so, dirkey, &attr);
	free(dirkey);
	return rc;
}

/*
 * Log the first content key of a folder that rmdir found not empty when
 * no file name can carry that key (s3_names.h), because the folder then
 * looks empty.  page contains the first keys, the marker dirkey among
 * them.
 */
static void log_hidden_content(const struct s3_list_page *page,
			       const char *dirkey, const char *path)
{
	for (size_t i = 0; i < page->nentries; i++) {
		char *key = decode_listed(page->entries[i].key);
		const char *reason = NULL;

		if (key && strcmp(key, dirkey) == 0) {
			free(key);
			continue;
		}
		if (key)
			s3_tree_path(key, dirkey, &reason);
		else
			reason = "its name cannot be decoded";
		if (reason)
			log_warn("cannot remove the folder %s: it contains the "
				 "hidden key %s (%s); remove or rename the key"
				 " with an S3 client", path,
				 page->entries[i].key, reason);
		free(key);
		return;
	}
}

static int s3_rmdir(struct origin *o, const char *path)
{
	struct s3_origin *so = s3_of(o);
	struct s3_list_page page;
	char *dirkey, *first = NULL;
	int rc;

	if (so->read_only)
		return -EROFS;
	if (!*path)
		return -EBUSY;
	dirkey = key_of(so, path, true);
	if (!dirkey)
		return -ENOMEM;
	/* Two keys tell the marker alone from the marker plus content. */
	rc = list_page(so, dirkey, NULL, NULL, NULL, 2, &page);
	if (rc)
		goto out_free;
	if (page.nentries)
		first = decode_listed(page.entries[0].key);
	if (!page.nentries) {
		rc = -ENOENT;
	} else if (page.nentries > 1 || !first || strcmp(first, dirkey)) {
		log_hidden_content(&page, dirkey, path);
		rc = -ENOTEMPTY;
	} else if (page.entries[0].size > 0) {
		/* A marker with bytes is an object of its own: keep it. */
		log_warn("cannot remove the folder %s: its key %s contains %"
			 PRIu64 " bytes, which nearfs does not delete; remove"
			 " the key with an S3 client if it is not needed",
			 path, dirkey, page.entries[0].size);
		rc = -ENOTEMPTY;
	} else {
		rc = delete_object(so, dirkey);
	}
	free(first);
	s3_list_page_free(&page);
out_free:
	free(dirkey);
	return rc;
}

/* ---- rename ----------------------------------------------------------- */

static int move_object(struct s3_origin *so, const char *from_key,
		       const char *to_key)
{
	char etag[ORIGIN_VERSION_MAX];
	int rc;

	rc = copy_object(so, from_key, to_key, NULL, NULL, NULL, etag,
			 sizeof(etag));
	if (!rc)
		rc = delete_object(so, from_key);
	return rc;
}

/* Move every key under from_dir ("a/") to the same name under to_dir. */
static int move_tree(struct s3_origin *so, const char *from_dir,
		     const char *to_dir)
{
	size_t from_len = strlen(from_dir);
	char *last = NULL;
	int rc;

	/*
	 * Keys are deleted while the listing goes on, so each page starts
	 * after the last key moved instead of using a continuation token.
	 */
	for (;;) {
		struct s3_list_page page;
		size_t i;

		rc = list_page(so, from_dir, NULL, NULL, last,
			       so->list_max_keys, &page);
		if (rc)
			break;
		for (i = 0; !rc && i < page.nentries; i++) {
			char *key = decode_listed(page.entries[i].key);
			char *to_key = NULL;

			if (key && !strncmp(key, from_dir, from_len))
				to_key = str_printf("%s%s", to_dir,
						    key + from_len);
			if (!to_key)
				rc = key ? -ENOMEM : -EINVAL;
			else
				rc = move_object(so, key, to_key);
			free(to_key);
			free(last);
			last = key;
		}
		if (!page.truncated || !page.nentries) {
			s3_list_page_free(&page);
			break;
		}
		s3_list_page_free(&page);
		if (rc)
			break;
	}
	free(last);
	return rc;
}

/* Return 0 when a rename of a `from` of from_attr onto `to` can go on,
 * checking POSIX rules against what exists at `to`. */
static int rename_check_target(struct s3_origin *so, const char *to,
			       const struct origin_attr *from_attr,
			       unsigned flags)
{
	struct origin_attr to_attr;
	int rc;

	rc = s3_stat(&so->base, to, &to_attr);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	if (flags & RENAME_NOREPLACE)
		return -EEXIST;
	if (S_ISDIR(from_attr->mode) && !S_ISDIR(to_attr.mode))
		return -ENOTDIR;
	if (!S_ISDIR(from_attr->mode) && S_ISDIR(to_attr.mode))
		return -EISDIR;
	if (S_ISDIR(to_attr.mode)) {
		rc = s3_rmdir(&so->base, to);
		/* An implicit empty directory has no marker to remove. */
		if (rc == -ENOENT)
			rc = 0;
	}
	return rc;
}

static int s3_rename(struct origin *o, const char *from, const char *to,
		     unsigned flags)
{
	struct s3_origin *so = s3_of(o);
	struct origin_attr attr;
	size_t from_len = strlen(from);
	char *from_key = NULL, *to_key = NULL;
	int rc;

	if (so->read_only)
		return -EROFS;
	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL;	/* RENAME_EXCHANGE, RENAME_WHITEOUT */
	if (!*from || !*to)
		return -EBUSY;
	if (!strcmp(from, to))
		return 0;
	if (!strncmp(to, from, from_len) && to[from_len] == '/')
		return -EINVAL;	/* into its own subdirectory */
	rc = s3_stat(o, from, &attr);
	if (!rc)
		rc = rename_check_target(so, to, &attr, flags);
	if (rc)
		return rc;

	from_key = key_of(so, from, S_ISDIR(attr.mode));
	to_key = key_of(so, to, S_ISDIR(attr.mode));
	if (!from_key || !to_key)
		rc = -ENOMEM;
	else if (S_ISDIR(attr.mode))
		rc = move_tree(so, from_key, to_key);
	else
		rc = move_object(so, from_key, to_key);
	free(from_key);
	free(to_key);
	return rc;
}

/* ---- symlink, readlink (stored as s3fs-fuse stores them) -------------- */

static int s3_symlink(struct origin *o, const char *target, const char *path,
		      struct origin_attr *result)
{
	struct s3_origin *so = s3_of(o);
	struct s3_body body = { .fd = -1, .mem = target };
	char *key;
	int rc;

	if (so->read_only)
		return -EROFS;
	key = key_of(so, path, false);
	if (!key)
		return -ENOMEM;
	new_object_attr(NULL, S_IFLNK, result);
	result->mode = S_IFLNK | 0777;
	result->valid |= ORIGIN_ATTR_MODE;
	result->size = body.len = strlen(target);
	rc = put_object(so, key, &body, result, result->version,
			sizeof(result->version));
	free(key);
	return rc;
}

static int s3_readlink(struct origin *o, const char *path, char *buf,
		       size_t size)
{
	struct s3_origin *so = s3_of(o);
	char *key;
	uint64_t done = 0;
	int rc;

	if (size < 1)
		return -EINVAL;
	key = key_of(so, path, false);
	if (!key)
		return -ENOMEM;
	rc = get_range(so, key, NULL, 0, size - 1, origin_sink_copy, buf,
		       &done);
	buf[done] = '\0';
	free(key);
	return rc;
}

/* ---- statfs, check ---------------------------------------------------- */

static int s3_statfs(struct origin *o, struct statvfs *st)
{
	/* A bucket has no capacity: report 4 PiB free and 2^32 inodes. */
	memset(st, 0, sizeof(*st));
	st->f_bsize = 4096;
	st->f_frsize = 4096;
	st->f_blocks = 1ull << 40;
	st->f_bfree = st->f_blocks;
	st->f_bavail = st->f_blocks;
	st->f_files = 1ull << 32;
	st->f_ffree = st->f_files;
	st->f_favail = st->f_files;
	st->f_namemax = 1024;
	return 0;
}

static const char *creds_source(const struct s3_origin *so)
{
	if (so->anonymous)
		return "anonymous access";
	return so->creds.source ? so->creds.source : "unknown source";
}

static void check_message(struct s3_origin *so, const struct s3_request *req,
			  char *msg, size_t msglen)
{
	const struct s3_response *resp = &req->resp;

	if (resp->curl_code == CURLE_OPERATION_TIMEDOUT) {
		snprintf(msg, msglen, "S3 endpoint %s did not answer in time:"
			 " %s; check that it is an S3 server and reachable,"
			 " or raise -o timeout= (now %" PRIu64 " ms)",
			 so->endpoint, resp->curl_error[0] ?
			 resp->curl_error : curl_easy_strerror(
				 resp->curl_code), so->timeout_ms);
	} else if (resp->curl_code != CURLE_OK) {
		snprintf(msg, msglen, "cannot reach S3 endpoint %s: %s;"
			 " check the endpoint URL and the network",
			 so->endpoint, resp->curl_error[0] ?
			 resp->curl_error : curl_easy_strerror(
				 resp->curl_code));
	} else if (!strcmp(resp->code, "NoSuchBucket")) {
		snprintf(msg, msglen, "bucket %s not found at %s: check"
			 " the bucket name and the endpoint", so->bucket,
			 so->endpoint);
	} else if (resp->bucket_region[0] &&
		   strcmp(resp->bucket_region, so->region)) {
		snprintf(msg, msglen, "bucket %s is in region %s, not %s:"
			 " set AWS_REGION or -o region=%s", so->bucket,
			 resp->bucket_region, so->region,
			 resp->bucket_region);
	} else if (resp->status == 403 && so->anonymous) {
		snprintf(msg, msglen, "access denied to bucket %s without"
			 " credentials (%s): the bucket does not allow"
			 " anonymous listing; drop -o anonymous and give"
			 " credentials", so->bucket,
			 resp->code[0] ? resp->code : "403 Forbidden");
	} else if (resp->status == 403) {
		snprintf(msg, msglen, "access denied to bucket %s with"
			 " credentials from %s (%s): check the keys and"
			 " that their policy allows s3:ListBucket on the"
			 " bucket", so->bucket, creds_source(so),
			 resp->code[0] ? resp->code : "403 Forbidden");
	} else {
		snprintf(msg, msglen, "listing bucket %s at %s failed:"
			 " HTTP %ld %s %s", so->bucket, so->endpoint,
			 resp->status, resp->code, resp->message);
	}
}

/* Whether key lies below the prefix of the mount. */
static bool key_below_prefix(const struct s3_origin *so, const char *key)
{
	size_t len = strlen(so->prefix);

	return len == 0 ||
	       (strncmp(key, so->prefix, len) == 0 && key[len] == '/');
}

/* Abort the multipart upload of id, "UPLOAD_ID\nKEY", which a write
 * left when the daemon died. */
static int s3_discard(struct origin *o, const char *id)
{
	struct s3_origin *so = s3_of(o);
	const char *newline = strchr(id, '\n');
	struct multipart mp = { 0 };
	int rc = -ENOMEM;

	if (!newline || newline == id || !newline[1])
		return -EINVAL;
	if (so->read_only)
		return -EROFS;
	mp.key = newline + 1;
	if (!key_below_prefix(so, mp.key)) {
		log_warn("s3: the multipart upload %.*s of %s, left by an"
			 " interrupted upload, is outside s3://%s/%s, so it is"
			 " left alone", (int)(newline - id), id, mp.key, so->bucket,
			 so->prefix);
		return -EINVAL;
	}
	mp.upload_id = strndup(id, newline - id);
	if (mp.upload_id)
		mp.encoded_id = s3_uri_encode(mp.upload_id, 0);
	if (mp.encoded_id)
		rc = multipart_abort(so, &mp);
	if (rc == 0)
		log_info("s3: aborted the multipart upload %s of %s, left by an"
			 " interrupted upload", mp.upload_id, mp.key);
	else if (rc != -ENOENT)
		log_warn("s3: cannot abort the multipart upload %s of %s, left"
			 " by an interrupted upload: %s; the next start tries"
			 " again", mp.upload_id, mp.key, strerror(-rc));
	free(mp.encoded_id);
	free(mp.upload_id);
	return rc;
}

static int s3_check(struct origin *o, char *msg, size_t msglen)
{
	struct s3_origin *so = s3_of(o);
	struct s3_request req;
	char *query = NULL;
	char *prefix = key_of(so, "", true);
	int rc;

	if (!prefix)
		return -ENOMEM;
	rc = query_add(&query, "list-type", "2");
	if (!rc)
		rc = query_add(&query, "max-keys", "1");
	if (!rc)
		rc = query_add(&query, "prefix", prefix);
	if (rc)
		goto out_free;
	request_init(&req, "GET", ORIGIN_REQ_LIST, NULL);
	req.query = query;
	req.quiet = true;
	rc = request_send(so, &req);
	if (rc)
		check_message(so, &req, msg, msglen);
	request_free(&req);
out_free:
	free(query);
	free(prefix);
	return rc;
}

/* ---- creation and teardown -------------------------------------------- */

static void s3_free(struct origin *o)
{
	struct s3_origin *so = s3_of(o);

	if (!so)
		return;
	if (atomic_load(&so->burst))
		log_warn("s3: origin %s (bucket %s) still failed at close, "
			 "after %" PRIu64 " retries", so->endpoint, so->bucket,
			 so->burst_retries);
	for (size_t i = 0; i < so->pool_len; i++)
		curl_easy_cleanup(so->pool[i]);
	free(so->pool);
	pthread_mutex_destroy(&so->pool_lock);
	pthread_mutex_destroy(&so->burst_lock);
	if (!so->anonymous)
		s3_creds_free(&so->creds);
	free(so->bucket);
	free(so->prefix);
	free(so->endpoint);
	free(so->region);
	free(so->host);
	free(so->url_base);
	free(so->path_base);
	free(so->base.name);
	free(so->base.identity);
	free(so);
}

static const struct origin_ops s3_ops = {
	.stat = s3_stat,
	.list = s3_list,
	.list_page = s3_list_page,
	.list_tree = s3_list_tree,
	.read = s3_read,
	.read_stream = s3_read_stream,
	.write = s3_write,
	.setattr = s3_setattr,
	.unlink = s3_unlink,
	.mkdir = s3_mkdir,
	.rmdir = s3_rmdir,
	.rename = s3_rename,
	.statfs = s3_statfs,
	.symlink = s3_symlink,
	.readlink = s3_readlink,
	.check = s3_check,
	.discard = s3_discard,
	.free = s3_free,
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_code;

static void curl_init(void)
{
	curl_init_code = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static uint64_t env_u64(const char *name, uint64_t fallback)
{
	const char *text = getenv(name);
	char *end;
	unsigned long long value;

	if (!text || !*text)
		return fallback;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno || *end) {
		log_warn("s3: ignored %s=%s: expected a decimal number", name,
			 text);
		return fallback;
	}
	return value;
}

/*
 * Split the endpoint into url_base (scheme://host[:port]), host, and
 * path_base (the endpoint's own path, then "/bucket" in path style).
 */
static int setup_endpoint(struct s3_origin *so, int path_style,
			  bool custom, char *err, size_t errlen)
{
	const char *scheme_end = strstr(so->endpoint, "://");
	const char *host, *path;
	bool https;
	int hostlen;

	https = !strncmp(so->endpoint, "https://", 8);
	if (!scheme_end || (!https && strncmp(so->endpoint, "http://", 7))) {
		snprintf(err, errlen, "invalid S3 endpoint %s: expected"
			 " http://HOST[:PORT] or https://HOST[:PORT]",
			 so->endpoint);
		return -EINVAL;
	}
	host = scheme_end + 3;
	path = strchr(host, '/');
	if (!path)
		path = host + strlen(host);
	hostlen = (int)(path - host);
	if (!hostlen) {
		snprintf(err, errlen, "invalid S3 endpoint %s: no host",
			 so->endpoint);
		return -EINVAL;
	}
	if (path_style < 0)
		path_style = custom || (https && strchr(so->bucket, '.'));
	if (path_style) {
		so->host = strndup(host, (size_t)hostlen);
		so->path_base = str_printf("%s/%s", path, so->bucket);
	} else {
		so->host = str_printf("%s.%.*s", so->bucket, hostlen, host);
		so->path_base = strdup(path);
	}
	so->url_base = str_printf("%s://%s", https ? "https" : "http",
				  so->host);
	if (!so->host || !so->path_base || !so->url_base)
		return -ENOMEM;
	return 0;
}

static int setup_credentials(struct s3_origin *so, const char *profile,
			     char *err, size_t errlen)
{
	char why[1024] = "";
	int rc;

	if (so->anonymous)
		return 0;
	rc = s3_creds_load(profile, &so->creds, why, sizeof(why));
	if (!rc)
		return 0;
	so->anonymous = true;	/* nothing to free */
	/* why names the places looked at and what to set there. */
	snprintf(err, errlen, "no usable AWS credentials for s3://%s: %s; "
		 "or mount a public bucket with -o anonymous", so->bucket,
		 why);
	return rc;
}

static int setup_names(struct s3_origin *so)
{
	const char *slash = *so->prefix ? "/" : "";

	so->base.name = str_printf("s3://%s%s%s", so->bucket, slash,
				   so->prefix);
	so->base.identity = str_printf("%s/%s/%s", so->endpoint, so->bucket,
				       so->prefix);
	return so->base.name && so->base.identity ? 0 : -ENOMEM;
}

static void setup_limits(struct s3_origin *so, const struct s3_config *cfg)
{
	uint64_t timeout_ms = cfg->timeout_ms ? cfg->timeout_ms :
						DEFAULT_TIMEOUT_MS;

	so->timeout_ms = timeout_ms;
	so->low_speed_time = (long)((timeout_ms + 999) / 1000);
	if (so->low_speed_time > 10)
		so->low_speed_time = 10;
	so->part_size = cfg->multipart_size ? cfg->multipart_size :
					      DEFAULT_PART_SIZE;
	so->multipart_threshold = env_u64(ENV_MULTIPART_THRESHOLD,
					  so->part_size);
	if (so->multipart_threshold > MAX_SINGLE_PUT)
		so->multipart_threshold = MAX_SINGLE_PUT;
	so->list_max_keys = (unsigned)env_u64(ENV_LIST_MAX_KEYS, 0);
}

int origin_s3_new(const struct s3_config *cfg, struct origin **out,
		  char *err, size_t errlen)
{
	struct s3_origin *so;
	size_t n;
	int rc;

	*out = NULL;
	if (!cfg->bucket || !*cfg->bucket) {
		snprintf(err, errlen, "missing S3 bucket name");
		return -EINVAL;
	}
	pthread_once(&curl_once, curl_init);
	if (curl_init_code != CURLE_OK) {
		snprintf(err, errlen, "libcurl initialization failed: %s",
			 curl_easy_strerror(curl_init_code));
		return -EIO;
	}
	so = calloc(1, sizeof(*so));
	if (!so)
		return -ENOMEM;
	so->base.ops = &s3_ops;
	pthread_mutex_init(&so->pool_lock, NULL);
	pthread_mutex_init(&so->burst_lock, NULL);
	so->anonymous = true;	/* until credentials are loaded */
	so->read_only = cfg->read_only;
	so->bucket = strdup(cfg->bucket);
	so->prefix = strdup(cfg->prefix ? cfg->prefix : "");
	so->region = cfg->region ? strdup(cfg->region) :
				   s3_region_load(cfg->profile);
	if (cfg->endpoint && *cfg->endpoint)
		so->endpoint = strdup(cfg->endpoint);
	else if (so->region)
		so->endpoint = str_printf("https://s3.%s.amazonaws.com",
					  so->region);
	rc = -ENOMEM;
	if (!so->bucket || !so->prefix || !so->region || !so->endpoint)
		goto out_free;
	n = strlen(so->endpoint);
	while (n && so->endpoint[n - 1] == '/')
		so->endpoint[--n] = '\0';

	rc = setup_endpoint(so, cfg->path_style,
			    cfg->endpoint && *cfg->endpoint, err, errlen);
	if (!rc)
		rc = setup_names(so);
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	so->anonymous = cfg->anonymous;
	if (!rc)
		rc = setup_credentials(so, cfg->profile, err, errlen);
	if (rc)
		goto out_free;
	setup_limits(so, cfg);
	*out = &so->base;
	return 0;

out_free:
	s3_free(&so->base);
	return rc;
}
