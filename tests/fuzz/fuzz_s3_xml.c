/*
 * fuzz_s3_xml.c - the S3 XML parsers of cache/s3_xml.c on arbitrary
 * bytes: ListObjectsV2 pages, <Error> bodies, single elements, and the
 * ISO 8601 times and URL escapes inside them.
 *
 * Properties:
 * - the list and error parsers return 0, -EINVAL or -ENOMEM, and a
 *   failed list parse leaves an empty page;
 * - a parsed page has a key for every Contents and a name for every
 *   CommonPrefixes, ETags shorter than their buffer, valid nanoseconds,
 *   and texts within the 64 KiB element limit, as the element parser
 *   returns them;
 * - parsing with URL decoding succeeds only where parsing without it
 *   does, with the same counts, and each decoded name is the decoding of
 *   the raw one;
 * - error codes and messages are cut to their buffers;
 * - a parsed time formats back to the same calendar fields;
 * - URL decoding rejects "%00", its result is never longer than its
 *   input, and s3_uri_encode() of the result decodes back to it.
 */
#include <errno.h>
#include <time.h>

#include "fuzz.h"
#include "s3_sign.h"
#include "s3_xml.h"

/* The element text limit of cache/s3_xml.c. */
#define TEXT_MAX (64 * 1024)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_max_level = LOG_CRIT;	/* no log lines between the runs */
	return 0;
}

static void check_page(const struct s3_list_page *page)
{
	for (size_t i = 0; i < page->nentries; i++) {
		const struct s3_list_entry *e = &page->entries[i];

		FUZZ_ASSERT(e->key != NULL);
		FUZZ_ASSERT(strlen(e->key) <= TEXT_MAX);
		FUZZ_ASSERT(strlen(e->etag) < sizeof(e->etag));
		FUZZ_ASSERT(e->mtime.tv_nsec >= 0);
		FUZZ_ASSERT(e->mtime.tv_nsec < 1000000000);
	}
	for (size_t i = 0; i < page->nprefixes; i++) {
		FUZZ_ASSERT(page->prefixes[i] != NULL);
		FUZZ_ASSERT(strlen(page->prefixes[i]) <= TEXT_MAX);
	}
	if (page->next_token)
		FUZZ_ASSERT(strlen(page->next_token) <= TEXT_MAX);
}

static void check_empty(const struct s3_list_page *page)
{
	FUZZ_ASSERT(page->entries == NULL);
	FUZZ_ASSERT(page->nentries == 0);
	FUZZ_ASSERT(page->prefixes == NULL);
	FUZZ_ASSERT(page->nprefixes == 0);
	FUZZ_ASSERT(page->next_token == NULL);
	FUZZ_ASSERT(!page->truncated);
}

/* The decoding of raw must be decoded, as s3_url_decode() makes it. */
static void check_decoded(const char *raw, const char *decoded)
{
	char *want = s3_url_decode(raw);

	FUZZ_ASSERT(want != NULL);
	FUZZ_ASSERT(strcmp(want, decoded) == 0);
	free(want);
}

static void fuzz_list(const char *xml, size_t len)
{
	struct s3_list_page raw, decoded;
	int ret_raw = s3_xml_parse_list(xml, len, false, &raw);
	int ret_decoded = s3_xml_parse_list(xml, len, true, &decoded);

	FUZZ_ASSERT(ret_raw == 0 || ret_raw == -EINVAL || ret_raw == -ENOMEM);
	FUZZ_ASSERT(ret_decoded == 0 || ret_decoded == -EINVAL ||
		    ret_decoded == -ENOMEM);
	if (ret_raw)
		check_empty(&raw);
	else
		check_page(&raw);
	if (ret_decoded) {
		check_empty(&decoded);
	} else {
		check_page(&decoded);
		FUZZ_ASSERT(ret_raw == 0);
		FUZZ_ASSERT(decoded.nentries == raw.nentries);
		FUZZ_ASSERT(decoded.nprefixes == raw.nprefixes);
		FUZZ_ASSERT(decoded.truncated == raw.truncated);
		for (size_t i = 0; i < raw.nentries; i++) {
			check_decoded(raw.entries[i].key,
				      decoded.entries[i].key);
			FUZZ_ASSERT(raw.entries[i].size ==
				    decoded.entries[i].size);
		}
		for (size_t i = 0; i < raw.nprefixes; i++)
			check_decoded(raw.prefixes[i], decoded.prefixes[i]);
	}
	s3_list_page_free(&raw);
	s3_list_page_free(&decoded);
}

static void fuzz_error(const char *xml, size_t len)
{
	/* Exact sizes, so that AddressSanitizer detects a write past them. */
	size_t codelen = 16, messagelen = 64;
	char *code = malloc(codelen), *message = malloc(messagelen);
	int ret;

	FUZZ_ASSERT(code && message);
	ret = s3_xml_parse_error(xml, len, code, codelen, message,
				 messagelen);
	FUZZ_ASSERT(ret == 0 || ret == -EINVAL || ret == -ENOMEM);
	FUZZ_ASSERT(strnlen(code, codelen) < codelen);
	FUZZ_ASSERT(strnlen(message, messagelen) < messagelen);
	free(code);
	free(message);
}

static void fuzz_find(const char *xml, size_t len)
{
	char *text = s3_xml_find_text(xml, len, "UploadId");

	if (text)
		FUZZ_ASSERT(strlen(text) <= TEXT_MAX);
	free(text);
}

/* Parse digits of text at [at, at + n) that s3_parse_iso8601() accepted. */
static int field(const char *text, int at, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++)
		v = v * 10 + (text[at + i] - '0');
	return v;
}

static void fuzz_time(const char *text)
{
	struct timespec ts = { 0, 0 };
	struct tm tm;

	if (s3_parse_iso8601(text, &ts))
		return;
	FUZZ_ASSERT(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
	if (field(text, 17, 2) == 60)
		return;		/* a leap second is the next minute's 0 */
	FUZZ_ASSERT(gmtime_r(&ts.tv_sec, &tm) != NULL);
	FUZZ_ASSERT(tm.tm_year + 1900 == field(text, 0, 4));
	FUZZ_ASSERT(tm.tm_mon + 1 == field(text, 5, 2));
	FUZZ_ASSERT(tm.tm_mday == field(text, 8, 2));
	FUZZ_ASSERT(tm.tm_hour == field(text, 11, 2));
	FUZZ_ASSERT(tm.tm_min == field(text, 14, 2));
	FUZZ_ASSERT(tm.tm_sec == field(text, 17, 2));
}

static void fuzz_url(const char *text)
{
	char *decoded = s3_url_decode(text), *encoded, *again;

	if (strstr(text, "%00"))
		FUZZ_ASSERT(decoded == NULL);
	if (!decoded)
		return;
	FUZZ_ASSERT(strlen(decoded) <= strlen(text));
	encoded = s3_uri_encode(decoded, 1);
	FUZZ_ASSERT(encoded != NULL);
	again = s3_url_decode(encoded);
	FUZZ_ASSERT(again != NULL);
	FUZZ_ASSERT(strcmp(again, decoded) == 0);
	free(again);
	free(encoded);
	free(decoded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *xml = (const char *)data;
	char *text = fuzz_strndup(data, size);

	fuzz_list(xml, size);
	fuzz_error(xml, size);
	fuzz_find(xml, size);
	fuzz_time(text);
	fuzz_url(text);
	free(text);
	return 0;
}
