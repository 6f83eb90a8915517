/* test_s3_xml.c - unit tests of the S3 XML response parsers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3_xml.h"

#define NS "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""
#define XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

static int parse_list(const char *xml, bool url_encoded,
		      struct s3_list_page *page)
{
	return s3_xml_parse_list(xml, strlen(xml), url_encoded, page);
}

static const char plain_page[] =
	XML_DECL
	"<ListBucketResult " NS ">"
	"<Name>bucket</Name><Prefix>dir/</Prefix><KeyCount>3</KeyCount>"
	"<MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter>"
	"<IsTruncated>true</IsTruncated>"
	"<Contents><Key>dir/a.txt</Key>"
	"<LastModified>2026-12-04T07:00:00.000Z</LastModified>"
	"<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>"
	"<Size>11</Size><Owner><ID>x</ID><DisplayName>y</DisplayName>"
	"</Owner><StorageClass>STANDARD</StorageClass></Contents>"
	"<Contents><Key>dir/big.bin</Key>"
	"<LastModified>2026-01-02T03:04:05Z</LastModified>"
	"<ETag>\"d41d8cd98f00b204e9800998ecf8427e-12\"</ETag>"
	"<Size>\n  18446744073709551615\n</Size></Contents>"
	"<CommonPrefixes><Prefix>dir/sub/</Prefix></CommonPrefixes>"
	"<NextContinuationToken>1a+B/c=d==</NextContinuationToken>"
	"</ListBucketResult>";

static void test_s3_xml_list_plain_page(void **state)
{
	struct s3_list_page page;

	assert_int_equal(parse_list(plain_page, false, &page), 0);
	assert_int_equal(page.nentries, 2);
	assert_string_equal(page.entries[0].key, "dir/a.txt");
	assert_int_equal(page.entries[0].size, 11);
	assert_int_equal(page.entries[0].mtime.tv_sec, 1796367600);
	assert_int_equal(page.entries[0].mtime.tv_nsec, 0);
	assert_string_equal(page.entries[0].etag,
			    "9b2cf535f27731c974343645a3985328");
	assert_string_equal(page.entries[1].key, "dir/big.bin");
	assert_true(page.entries[1].size == UINT64_MAX);
	assert_int_equal(page.entries[1].mtime.tv_sec, 1767323045);
	assert_string_equal(page.entries[1].etag,
			    "d41d8cd98f00b204e9800998ecf8427e-12");
	assert_int_equal(page.nprefixes, 1);
	assert_string_equal(page.prefixes[0], "dir/sub/");
	assert_true(page.truncated);
	assert_non_null(page.next_token);
	assert_string_equal(page.next_token, "1a+B/c=d==");
	s3_list_page_free(&page);
	assert_null(page.entries);
	assert_int_equal(page.nentries, 0);
}

/* With encoding-type=url, keys and prefixes arrive %-encoded. */
static void test_s3_xml_list_url_encoded(void **state)
{
	static const struct {
		const char *wire;
		const char *key;
	} keys[] = {
		{ "dir/a%20b%2Bc%25d%20%C3%A9.txt",
		  "dir/a b+c%d \303\251.txt" },
		{ "line%0Abreak%0D", "line\nbreak\r" },
		{ "plus+stays", "plus+stays" },
		{ "%20lead%20and%20trail%20", " lead and trail " },
		{ "%E6%97%A5%E6%9C%AC", "\346\227\245\346\234\254" },
	};
	size_t n = sizeof(keys) / sizeof(keys[0]);
	char xml[4096];
	size_t off;
	struct s3_list_page page;

	off = (size_t)snprintf(xml, sizeof(xml),
			       "<ListBucketResult " NS ">"
			       "<EncodingType>url</EncodingType>"
			       "<Prefix>dir%%2F</Prefix>");
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(xml + off, sizeof(xml) - off,
					"<Contents><Key>%s</Key>"
					"<Size>%zu</Size></Contents>",
					keys[i].wire, i);
	snprintf(xml + off, sizeof(xml) - off,
		 "<CommonPrefixes><Prefix>sub%%20dir%%2F</Prefix>"
		 "</CommonPrefixes><IsTruncated>false</IsTruncated>"
		 "</ListBucketResult>");

	assert_int_equal(parse_list(xml, true, &page), 0);
	assert_int_equal(page.nentries, n);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(page.entries[i].key, keys[i].key);
		assert_int_equal(page.entries[i].size, i);
	}
	assert_int_equal(page.nprefixes, 1);
	assert_string_equal(page.prefixes[0], "sub dir/");
	assert_false(page.truncated);
	assert_null(page.next_token);
	s3_list_page_free(&page);
}

/* Without encoding-type=url the text is taken as is, entities decoded. */
static void test_s3_xml_list_entities_split(void **state)
{
	static const char xml[] =
		"<ListBucketResult " NS "><Contents>"
		"<Key>a &amp; b&lt;c&gt;&#10;d&#x20;%41\n"
		"\303\251 </Key></Contents></ListBucketResult>";
	struct s3_list_page page;

	assert_int_equal(parse_list(xml, false, &page), 0);
	assert_int_equal(page.nentries, 1);
	assert_string_equal(page.entries[0].key,
			    "a & b<c>\nd %41\n\303\251 ");
	s3_list_page_free(&page);
}

/* A namespace prefix instead of a default namespace. */
static void test_s3_xml_list_prefixed_namespace(void **state)
{
	static const char xml[] =
		"<s3:ListBucketResult "
		"xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<s3:Contents><s3:Key>k</s3:Key><s3:Size>5</s3:Size>"
		"</s3:Contents><s3:IsTruncated>TRUE</s3:IsTruncated>"
		"</s3:ListBucketResult>";
	struct s3_list_page page;

	assert_int_equal(parse_list(xml, false, &page), 0);
	assert_int_equal(page.nentries, 1);
	assert_string_equal(page.entries[0].key, "k");
	assert_int_equal(page.entries[0].size, 5);
	assert_true(page.truncated);
	s3_list_page_free(&page);
}

static void test_s3_xml_list_empty_page(void **state)
{
	static const char xml[] =
		"<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount>"
		"<IsTruncated>false</IsTruncated></ListBucketResult>";
	struct s3_list_page page;

	assert_int_equal(parse_list(xml, false, &page), 0);
	assert_int_equal(page.nentries, 0);
	assert_int_equal(page.nprefixes, 0);
	assert_false(page.truncated);
	assert_null(page.next_token);
	s3_list_page_free(&page);
}

static void test_s3_xml_list_many_entries(void **state)
{
	const size_t n = 5000;
	size_t cap = 128 + n * 64, off;
	char *xml = malloc(cap);
	struct s3_list_page page;

	assert_non_null(xml);
	off = (size_t)snprintf(xml, cap, "<ListBucketResult>");
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(xml + off, cap - off,
					"<Contents><Key>k%05zu</Key>"
					"<Size>%zu</Size></Contents>", i, i);
	snprintf(xml + off, cap - off, "</ListBucketResult>");

	assert_int_equal(parse_list(xml, false, &page), 0);
	assert_int_equal(page.nentries, n);
	assert_string_equal(page.entries[n - 1].key, "k04999");
	assert_int_equal(page.entries[n - 1].size, n - 1);
	s3_list_page_free(&page);
	free(xml);
}

static const struct {
	const char *name;
	bool url_encoded;
	const char *xml;
} bad_lists[] = {
	{ "empty", false, "" },
	{ "not xml", false, "this is not XML" },
	{ "truncated", false,
	  "<ListBucketResult><Contents><Key>a</Key>" },
	{ "mismatched tag", false,
	  "<ListBucketResult><Contents><Key>a</Size></Contents>"
	  "</ListBucketResult>" },
	{ "wrong root", false,
	  "<Error><Code>NoSuchBucket</Code></Error>" },
	{ "contents without key", false,
	  "<ListBucketResult><Contents><Size>1</Size></Contents>"
	  "</ListBucketResult>" },
	{ "prefix group without prefix", false,
	  "<ListBucketResult><CommonPrefixes></CommonPrefixes>"
	  "</ListBucketResult>" },
	{ "two keys", false,
	  "<ListBucketResult><Contents><Key>a</Key><Key>b</Key>"
	  "</Contents></ListBucketResult>" },
	{ "negative size", false,
	  "<ListBucketResult><Contents><Key>a</Key><Size>-1</Size>"
	  "</Contents></ListBucketResult>" },
	{ "size overflow", false,
	  "<ListBucketResult><Contents><Key>a</Key>"
	  "<Size>18446744073709551616</Size></Contents>"
	  "</ListBucketResult>" },
	{ "size with text", false,
	  "<ListBucketResult><Contents><Key>a</Key><Size>12kB</Size>"
	  "</Contents></ListBucketResult>" },
	{ "bad date", false,
	  "<ListBucketResult><Contents><Key>a</Key>"
	  "<LastModified>yesterday</LastModified></Contents>"
	  "</ListBucketResult>" },
	{ "bad truncated flag", false,
	  "<ListBucketResult><IsTruncated>maybe</IsTruncated>"
	  "</ListBucketResult>" },
	{ "etag too long", false,
	  "<ListBucketResult><Contents><Key>a</Key><ETag>"
	  "0123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789"
	  "</ETag></Contents></ListBucketResult>" },
	{ "invalid escape", true,
	  "<ListBucketResult><Contents><Key>a%zz</Key></Contents>"
	  "</ListBucketResult>" },
	{ "short escape", true,
	  "<ListBucketResult><Contents><Key>a%4</Key></Contents>"
	  "</ListBucketResult>" },
	{ "escaped nul", true,
	  "<ListBucketResult><Contents><Key>a%00b</Key></Contents>"
	  "</ListBucketResult>" },
	{ "doctype", false,
	  "<!DOCTYPE l [<!ENTITY x \"xx\">]>"
	  "<ListBucketResult><Contents><Key>&x;</Key></Contents>"
	  "</ListBucketResult>" },
	{ "unbound prefix", false,
	  "<s3:ListBucketResult></s3:ListBucketResult>" },
	{ "trailing garbage", false,
	  "<ListBucketResult></ListBucketResult><more/>" },
};

static void test_s3_xml_list_malformed(void **state)
{
	for (size_t i = 0; i < sizeof(bad_lists) / sizeof(bad_lists[0]);
	     i++) {
		struct s3_list_page page;

		print_message("case %s\n", bad_lists[i].name);
		assert_int_equal(parse_list(bad_lists[i].xml,
					    bad_lists[i].url_encoded, &page),
				 -EINVAL);
		assert_null(page.entries);
		assert_null(page.prefixes);
		assert_null(page.next_token);
		assert_int_equal(page.nentries, 0);
	}
}

/* A key longer than the per-element text bound is rejected. */
static void test_s3_xml_list_oversized_text(void **state)
{
	const size_t keylen = 100 * 1024;
	char *xml = malloc(keylen + 128);
	struct s3_list_page page;
	size_t off;

	assert_non_null(xml);
	off = (size_t)sprintf(xml, "<ListBucketResult><Contents><Key>");
	memset(xml + off, 'k', keylen);
	strcpy(xml + off + keylen, "</Key></Contents></ListBucketResult>");
	assert_int_equal(parse_list(xml, false, &page), -EINVAL);
	assert_null(page.entries);
	free(xml);
}

/* Every prefix of a valid page is malformed and must fail cleanly. */
static void test_s3_xml_list_every_truncation(void **state)
{
	size_t len = strlen(plain_page);

	for (size_t n = 0; n < len - 1; n++) {
		struct s3_list_page page;
		int ret = s3_xml_parse_list(plain_page, n, false, &page);

		assert_int_equal(ret, -EINVAL);
		assert_null(page.entries);
	}
}

static void test_s3_xml_error_fields(void **state)
{
	static const char xml[] =
		XML_DECL "<Error><Code>NoSuchKey</Code>"
		"<Message>The specified key does not exist.</Message>"
		"<Key>a b</Key><RequestId>4442587FB7D0A2F9</RequestId>"
		"</Error>";
	char code[64], message[256];

	assert_int_equal(s3_xml_parse_error(xml, strlen(xml), code,
					    sizeof(code), message,
					    sizeof(message)), 0);
	assert_string_equal(code, "NoSuchKey");
	assert_string_equal(message, "The specified key does not exist.");
}

static void test_s3_xml_error_truncates(void **state)
{
	static const char xml[] =
		"<Error><Message>0123456789</Message>"
		"<Code>SlowDown</Code></Error>";
	char code[5], message[4];

	assert_int_equal(s3_xml_parse_error(xml, strlen(xml), code,
					    sizeof(code), message,
					    sizeof(message)), 0);
	assert_string_equal(code, "Slow");
	assert_string_equal(message, "012");
}

static void test_s3_xml_error_absent_fields(void **state)
{
	static const char xml[] = "<Error><Other>x</Other></Error>";
	char code[16] = "junk", message[16] = "junk";

	assert_int_equal(s3_xml_parse_error(xml, strlen(xml), code,
					    sizeof(code), message,
					    sizeof(message)), 0);
	assert_string_equal(code, "");
	assert_string_equal(message, "");
}

static void test_s3_xml_error_malformed(void **state)
{
	static const char *const bad[] = {
		"", "<Error><Code>x</Code>", "<<>>", "<Error></Code>",
	};
	char code[16], message[16];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(s3_xml_parse_error(bad[i], strlen(bad[i]),
						    code, sizeof(code),
						    message,
						    sizeof(message)),
				 -EINVAL);
}

static const struct {
	const char *xml;
	const char *name;
	const char *expected;	/* NULL: absent or malformed */
} find_cases[] = {
	{ XML_DECL "<InitiateMultipartUploadResult " NS ">"
	  "<Bucket>b</Bucket><Key>k</Key>"
	  "<UploadId>VXBsb2FkIElE+Zm9y/IDY==</UploadId>"
	  "</InitiateMultipartUploadResult>",
	  "UploadId", "VXBsb2FkIElE+Zm9y/IDY==" },
	{ "<CopyObjectResult " NS ">"
	  "<LastModified>2026-12-04T07:00:00.000Z</LastModified>"
	  "<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>"
	  "</CopyObjectResult>",
	  "ETag", "\"9b2cf535f27731c974343645a3985328\"" },
	{ "<CompleteMultipartUploadResult><Location>l</Location>"
	  "<ETag>\"abc-2\"</ETag></CompleteMultipartUploadResult>",
	  "ETag", "\"abc-2\"" },
	{ "<a><b><ETag>first</ETag></b><ETag>second</ETag></a>",
	  "ETag", "first" },
	{ "<a><ETag></ETag></a>", "ETag", "" },
	{ "<Error><Code>InternalError</Code></Error>", "ETag", NULL },
	{ "<a><UploadId>x", "UploadId", NULL },
	{ "", "UploadId", NULL },
	{ "<a><b></a><UploadId>x</UploadId>", "UploadId", NULL },
};

static void test_s3_xml_find_text_table(void **state)
{
	for (size_t i = 0; i < sizeof(find_cases) / sizeof(find_cases[0]);
	     i++) {
		const char *xml = find_cases[i].xml;
		char *text = s3_xml_find_text(xml, strlen(xml),
					      find_cases[i].name);

		print_message("case %zu\n", i);
		if (!find_cases[i].expected) {
			assert_null(text);
			continue;
		}
		assert_non_null(text);
		assert_string_equal(text, find_cases[i].expected);
		free(text);
	}
}

static const struct {
	const char *text;
	long sec;
	long nsec;
} good_times[] = {
	{ "2026-12-04T07:00:00.000Z", 1796367600, 0 },
	{ "2026-12-04T07:00:00Z", 1796367600, 0 },
	{ "2026-12-04T07:00:00.5Z", 1796367600, 500000000 },
	{ "2026-12-04T07:00:00.123456789Z", 1796367600, 123456789 },
	{ "2026-12-04T07:00:00.1234567891Z", 1796367600, 123456789 },
	{ "1970-01-01T00:00:00Z", 0, 0 },
	{ "2000-02-29T23:59:59.999Z", 951868799, 999000000 },
	{ "1969-12-31T23:59:59Z", -1, 0 },
};

static const char *const bad_times[] = {
	"", "2026-12-04", "2026-12-04T07:00:00", "2026-12-04T07:00:00+00:00",
	"2026-12-04 07:00:00Z", "2026-13-04T07:00:00Z",
	"2026-00-04T07:00:00Z", "2026-02-29T07:00:00Z",
	"2026-04-31T07:00:00Z", "2026-12-04T24:00:00Z",
	"2026-12-04T07:60:00Z", "2026-12-04T07:00:00.Z",
	"2026-12-04T07:00:00.000ZZ", "2026-12-04T07:00:00.000z",
	"20x6-12-04T07:00:00Z", "2026-12-04T07:00:00.12a4Z",
};

static void test_s3_xml_parse_iso8601_table(void **state)
{
	struct timespec ts;

	for (size_t i = 0; i < sizeof(good_times) / sizeof(good_times[0]);
	     i++) {
		print_message("time %s\n", good_times[i].text);
		assert_int_equal(s3_parse_iso8601(good_times[i].text, &ts), 0);
		assert_int_equal(ts.tv_sec, good_times[i].sec);
		assert_int_equal(ts.tv_nsec, good_times[i].nsec);
	}
	for (size_t i = 0; i < sizeof(bad_times) / sizeof(bad_times[0]);
	     i++) {
		print_message("time %s\n", bad_times[i]);
		assert_int_equal(s3_parse_iso8601(bad_times[i], &ts),
				 -EINVAL);
	}
}

static const struct {
	const char *src;
	const char *expected;	/* NULL: rejected */
} decode_cases[] = {
	{ "", "" },
	{ "plain", "plain" },
	{ "a%20b", "a b" },
	{ "a+b", "a+b" },
	{ "%2b%2B", "++" },
	{ "%C3%A9", "\303\251" },
	{ "%25%32%35", "%25" },
	{ "%", NULL },
	{ "%2", NULL },
	{ "%g0", NULL },
	{ "%0g", NULL },
	{ "%00", NULL },
};

static void test_s3_xml_url_decode_table(void **state)
{
	for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]);
	     i++) {
		char *out = s3_url_decode(decode_cases[i].src);

		print_message("decode %s\n", decode_cases[i].src);
		if (!decode_cases[i].expected) {
			assert_null(out);
			continue;
		}
		assert_non_null(out);
		assert_string_equal(out, decode_cases[i].expected);
		free(out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_s3_xml_list_plain_page),
		cmocka_unit_test(test_s3_xml_list_url_encoded),
		cmocka_unit_test(test_s3_xml_list_entities_split),
		cmocka_unit_test(test_s3_xml_list_prefixed_namespace),
		cmocka_unit_test(test_s3_xml_list_empty_page),
		cmocka_unit_test(test_s3_xml_list_many_entries),
		cmocka_unit_test(test_s3_xml_list_malformed),
		cmocka_unit_test(test_s3_xml_list_oversized_text),
		cmocka_unit_test(test_s3_xml_list_every_truncation),
		cmocka_unit_test(test_s3_xml_error_fields),
		cmocka_unit_test(test_s3_xml_error_truncates),
		cmocka_unit_test(test_s3_xml_error_absent_fields),
		cmocka_unit_test(test_s3_xml_error_malformed),
		cmocka_unit_test(test_s3_xml_find_text_table),
		cmocka_unit_test(test_s3_xml_parse_iso8601_table),
		cmocka_unit_test(test_s3_xml_url_decode_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
