/* s3_xml.c - expat parsers for S3 XML responses (see s3_xml.h). */
#include "s3_xml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <expat.h>

#include "s3_sign.h"

/*
 * Maximum text length of one element; longer text fails the parse with
 * -EINVAL.  S3 keys are at most 1024 bytes (3072 once URL-encoded), and
 * the bound caps what a hostile server can make the parser allocate.
 */
#define XML_TEXT_MAX (64 * 1024)
/* Bytes handed to expat per XML_Parse call, which takes an int length. */
#define XML_CHUNK (1024 * 1024)
/* Namespace separator: expat reports "uri|local" for qualified names. */
#define XML_NS_SEP '|'

/* Character data of the element being captured. */
struct xml_text {
	char *data;
	size_t len;
	size_t cap;
	bool capturing;
};

/* State shared by every parser below, the first member of each context. */
struct xml_base {
	XML_Parser parser;
	int error;		/* 0, or the -errno that stopped the parse */
	bool done;		/* stopped early on purpose */
	unsigned depth;		/* 1 inside the root element */
	struct xml_text text;
};

static const char *local_name(const XML_Char *name)
{
	const char *sep = strrchr(name, XML_NS_SEP);

	return sep ? sep + 1 : name;
}

static void xml_fail(struct xml_base *base, int error)
{
	if (!base->error)
		base->error = error;
	XML_StopParser(base->parser, XML_FALSE);
}

static void text_start(struct xml_base *base)
{
	base->text.len = 0;
	base->text.capturing = true;
	if (base->text.data)
		base->text.data[0] = '\0';
}

/* Stop capturing and return the text, "" when the element was empty. */
static const char *text_end(struct xml_base *base)
{
	base->text.capturing = false;
	return base->text.data ? base->text.data : "";
}

/* expat may split one text node over several calls, so append. */
static void on_text(void *user, const XML_Char *s, int len)
{
	struct xml_base *base = user;
	struct xml_text *text = &base->text;
	size_t n = (size_t)len;

	if (!text->capturing || len <= 0)
		return;
	if (text->len + n > XML_TEXT_MAX) {
		xml_fail(base, -EINVAL);
		return;
	}
	if (text->len + n + 1 > text->cap) {
		size_t cap = text->cap ? text->cap : 256;
		char *data;

		while (cap < text->len + n + 1)
			cap *= 2;
		data = realloc(text->data, cap);
		if (!data) {
			xml_fail(base, -ENOMEM);
			return;
		}
		text->data = data;
		text->cap = cap;
	}
	memcpy(text->data + text->len, s, n);
	text->len += n;
	text->data[text->len] = '\0';
}

/* S3 never sends a DTD, and rejecting one rules out entity expansion. */
static void on_doctype(void *user, const XML_Char *name,
		       const XML_Char *sysid, const XML_Char *pubid,
		       int has_internal_subset)
{
	xml_fail(user, -EINVAL);
}

/*
 * Parse len bytes with the given handlers; base must be the first member
 * of the handlers' context.  Returns 0, -EINVAL for malformed XML, or the
 * error a handler set.
 */
static int xml_run(struct xml_base *base, const char *xml, size_t len,
		   XML_StartElementHandler start, XML_EndElementHandler end)
{
	size_t off = 0;
	int ret = 0;

	base->parser = XML_ParserCreateNS("UTF-8", XML_NS_SEP);
	if (!base->parser)
		return -ENOMEM;
	XML_SetUserData(base->parser, base);
	XML_SetElementHandler(base->parser, start, end);
	XML_SetCharacterDataHandler(base->parser, on_text);
	XML_SetStartDoctypeDeclHandler(base->parser, on_doctype);

	do {
		size_t n = len - off < XML_CHUNK ? len - off : XML_CHUNK;
		int final = off + n == len;

		if (XML_Parse(base->parser, xml + off, (int)n, final) !=
		    XML_STATUS_OK) {
			ret = base->done ? 0 : base->error ? base->error :
							     -EINVAL;
			break;
		}
		off += n;
	} while (off < len);

	if (!ret && base->error)
		ret = base->error;
	XML_ParserFree(base->parser);
	free(base->text.data);
	base->text.data = NULL;
	return ret;
}

/* ---- ListObjectsV2 ---- */

enum list_field {
	LIST_NONE,
	LIST_KEY,
	LIST_SIZE,
	LIST_MTIME,
	LIST_ETAG,
	LIST_PREFIX,
	LIST_TRUNCATED,
	LIST_TOKEN,
};

struct list_parser {
	struct xml_base base;
	bool url_encoded;
	struct s3_list_page *page;
	size_t entries_cap;
	size_t prefixes_cap;
	bool in_contents;
	bool in_prefixes;
	bool have_name;		/* Key or Prefix seen in this group */
	enum list_field field;
	unsigned field_depth;
};

static int grow(void **array, size_t *cap, size_t count, size_t size)
{
	size_t newcap;
	void *p;

	if (count < *cap)
		return 0;
	newcap = *cap ? *cap * 2 : 64;
	p = realloc(*array, newcap * size);
	if (!p)
		return -ENOMEM;
	memset((char *)p + *cap * size, 0, (newcap - *cap) * size);
	*array = p;
	*cap = newcap;
	return 0;
}

static enum list_field list_child_field(const struct list_parser *lp,
					const char *name)
{
	static const struct {
		const char *name;
		enum list_field field;
	} contents[] = {
		{ "Key", LIST_KEY }, { "Size", LIST_SIZE },
		{ "LastModified", LIST_MTIME }, { "ETag", LIST_ETAG },
	};

	if (lp->base.depth == 2) {
		if (strcmp(name, "IsTruncated") == 0)
			return LIST_TRUNCATED;
		if (strcmp(name, "NextContinuationToken") == 0)
			return LIST_TOKEN;
		return LIST_NONE;
	}
	if (lp->base.depth != 3)
		return LIST_NONE;
	if (lp->in_prefixes)
		return strcmp(name, "Prefix") == 0 ? LIST_PREFIX : LIST_NONE;
	if (!lp->in_contents)
		return LIST_NONE;
	for (size_t i = 0; i < sizeof(contents) / sizeof(contents[0]); i++)
		if (strcmp(name, contents[i].name) == 0)
			return contents[i].field;
	return LIST_NONE;
}

static void list_open_group(struct list_parser *lp, const char *name)
{
	struct s3_list_page *page = lp->page;
	int ret = 0;

	if (strcmp(name, "Contents") == 0) {
		ret = grow((void **)&page->entries, &lp->entries_cap,
			   page->nentries, sizeof(*page->entries));
		if (!ret) {
			page->nentries++;
			lp->in_contents = true;
		}
	} else if (strcmp(name, "CommonPrefixes") == 0) {
		ret = grow((void **)&page->prefixes, &lp->prefixes_cap,
			   page->nprefixes, sizeof(*page->prefixes));
		if (!ret) {
			page->nprefixes++;
			lp->in_prefixes = true;
		}
	}
	lp->have_name = false;
	if (ret)
		xml_fail(&lp->base, ret);
}

static void list_on_start(void *user, const XML_Char *qname,
			  const XML_Char **attrs)
{
	struct list_parser *lp = user;
	const char *name = local_name(qname);

	lp->base.depth++;
	if (lp->base.depth == 1) {
		if (strcmp(name, "ListBucketResult") != 0)
			xml_fail(&lp->base, -EINVAL);
		return;
	}
	if (lp->field != LIST_NONE)
		return;		/* an element inside a text field: ignored */
	if (lp->base.depth == 2)
		list_open_group(lp, name);
	lp->field = list_child_field(lp, name);
	if (lp->field != LIST_NONE) {
		lp->field_depth = lp->base.depth;
		text_start(&lp->base);
	}
}

static char *list_name_value(struct list_parser *lp, const char *text)
{
	return lp->url_encoded ? s3_url_decode(text) : strdup(text);
}

static int parse_u64(const char *text, uint64_t *out)
{
	unsigned long long v;
	char *end;

	while (*text == ' ' || *text == '\t' || *text == '\n')
		text++;
	if (*text < '0' || *text > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno)
		return -EINVAL;
	while (*end == ' ' || *end == '\t' || *end == '\n')
		end++;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Copy an ETag without its surrounding quotes into out[outlen]. */
static int copy_etag(const char *text, char *out, size_t outlen)
{
	size_t n = strlen(text);

	if (n >= 2 && text[0] == '"' && text[n - 1] == '"') {
		text++;
		n -= 2;
	}
	if (n >= outlen)
		return -EINVAL;
	memcpy(out, text, n);
	out[n] = '\0';
	return 0;
}

static int parse_bool(const char *text, bool *out)
{
	size_t n;

	while (*text == ' ' || *text == '\t' || *text == '\n')
		text++;
	n = strcspn(text, " \t\n");
	if (text[n + strspn(text + n, " \t\n")])
		return -EINVAL;
	if (n == 4 && strncasecmp(text, "true", 4) == 0)
		*out = true;
	else if (n == 5 && strncasecmp(text, "false", 5) == 0)
		*out = false;
	else
		return -EINVAL;
	return 0;
}

/* Store the text of a Key or Prefix, -EINVAL for a repeat or bad escape. */
static int list_store_name(struct list_parser *lp, char **slot,
			   const char *text)
{
	char *value;

	if (lp->have_name)
		return -EINVAL;
	value = list_name_value(lp, text);
	if (!value)
		return lp->url_encoded ? -EINVAL : -ENOMEM;
	*slot = value;
	lp->have_name = true;
	return 0;
}

static int list_store_field(struct list_parser *lp, const char *text)
{
	struct s3_list_page *page = lp->page;
	struct s3_list_entry *entry = page->nentries ?
		&page->entries[page->nentries - 1] : NULL;

	switch (lp->field) {
	case LIST_KEY:
		return list_store_name(lp, &entry->key, text);
	case LIST_SIZE:
		return parse_u64(text, &entry->size);
	case LIST_MTIME:
		return s3_parse_iso8601(text, &entry->mtime);
	case LIST_ETAG:
		return copy_etag(text, entry->etag, sizeof(entry->etag));
	case LIST_PREFIX:
		return list_store_name(lp,
				       &page->prefixes[page->nprefixes - 1],
				       text);
	case LIST_TRUNCATED:
		return parse_bool(text, &page->truncated);
	case LIST_TOKEN:
		free(page->next_token);
		page->next_token = strdup(text);
		return page->next_token ? 0 : -ENOMEM;
	case LIST_NONE:
		break;
	}
	return 0;
}

static void list_on_end(void *user, const XML_Char *qname)
{
	struct list_parser *lp = user;
	unsigned depth = lp->base.depth--;
	int ret = 0;

	if (lp->field != LIST_NONE) {
		if (depth != lp->field_depth)
			return;
		ret = list_store_field(lp, text_end(&lp->base));
		lp->field = LIST_NONE;
	} else if (depth == 2 && (lp->in_contents || lp->in_prefixes)) {
		/* A Contents or CommonPrefixes group without its name. */
		if (!lp->have_name)
			ret = -EINVAL;
		lp->in_contents = false;
		lp->in_prefixes = false;
	}
	if (ret)
		xml_fail(&lp->base, ret);
}

int s3_xml_parse_list(const char *xml, size_t len, bool url_encoded,
		      struct s3_list_page *page)
{
	struct list_parser lp = {
		.url_encoded = url_encoded,
		.page = page,
	};
	int ret;

	memset(page, 0, sizeof(*page));
	ret = xml_run(&lp.base, xml, len, list_on_start, list_on_end);
	if (ret)
		s3_list_page_free(page);
	return ret;
}

void s3_list_page_free(struct s3_list_page *page)
{
	if (!page)
		return;
	for (size_t i = 0; i < page->nentries; i++)
		free(page->entries[i].key);
	for (size_t i = 0; i < page->nprefixes; i++)
		free(page->prefixes[i]);
	free(page->entries);
	free(page->prefixes);
	free(page->next_token);
	memset(page, 0, sizeof(*page));
}

/* ---- Error ---- */

struct error_parser {
	struct xml_base base;
	char *code;
	size_t codelen;
	char *message;
	size_t messagelen;
	char *target;		/* buffer of the field being captured */
	size_t targetlen;
};

static void error_on_start(void *user, const XML_Char *qname,
			   const XML_Char **attrs)
{
	struct error_parser *ep = user;
	const char *name = local_name(qname);

	ep->base.depth++;
	if (ep->base.depth != 2 || ep->target)
		return;
	if (strcmp(name, "Code") == 0) {
		ep->target = ep->code;
		ep->targetlen = ep->codelen;
	} else if (strcmp(name, "Message") == 0) {
		ep->target = ep->message;
		ep->targetlen = ep->messagelen;
	}
	if (ep->target)
		text_start(&ep->base);
}

/* Copy src into dst[dstlen], cutting it short when it does not fit. */
static void copy_truncated(char *dst, size_t dstlen, const char *src)
{
	size_t n = strlen(src);

	if (!dst || !dstlen)
		return;
	if (n >= dstlen)
		n = dstlen - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void error_on_end(void *user, const XML_Char *qname)
{
	struct error_parser *ep = user;

	if (ep->base.depth-- != 2 || !ep->target)
		return;
	copy_truncated(ep->target, ep->targetlen, text_end(&ep->base));
	ep->target = NULL;
}

int s3_xml_parse_error(const char *xml, size_t len, char *code,
		       size_t codelen, char *message, size_t messagelen)
{
	struct error_parser ep = {
		.code = code,
		.codelen = codelen,
		.message = message,
		.messagelen = messagelen,
	};

	copy_truncated(code, codelen, "");
	copy_truncated(message, messagelen, "");
	return xml_run(&ep.base, xml, len, error_on_start, error_on_end);
}

/* ---- first element by name ---- */

struct find_parser {
	struct xml_base base;
	const char *name;
	unsigned found_depth;	/* depth of the element, 0 until seen */
	char *result;
};

static void find_on_start(void *user, const XML_Char *qname,
			  const XML_Char **attrs)
{
	struct find_parser *fp = user;

	fp->base.depth++;
	if (fp->found_depth || strcmp(local_name(qname), fp->name) != 0)
		return;
	fp->found_depth = fp->base.depth;
	text_start(&fp->base);
}

static void find_on_end(void *user, const XML_Char *qname)
{
	struct find_parser *fp = user;

	if (fp->base.depth-- != fp->found_depth)
		return;
	fp->result = strdup(text_end(&fp->base));
	if (!fp->result) {
		xml_fail(&fp->base, -ENOMEM);
		return;
	}
	fp->base.done = true;
	XML_StopParser(fp->base.parser, XML_FALSE);
}

char *s3_xml_find_text(const char *xml, size_t len, const char *name)
{
	struct find_parser fp = { .name = name };

	if (xml_run(&fp.base, xml, len, find_on_start, find_on_end) ||
	    !fp.base.done) {
		free(fp.result);
		return NULL;
	}
	return fp.result;
}

/* ---- scalars ---- */

/* Parse exactly n decimal digits. */
static int parse_digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static bool is_leap(int year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int year, int month)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30,
				    31, 31, 30, 31, 30, 31 };

	return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

/*
 * Parse an optional ".123" at *p and advance *p past it.  Digits beyond
 * the ninth are ignored, so the result is in whole nanoseconds.
 */
static int parse_fraction(const char **p, long *nsec)
{
	const char *s = *p + 1;
	long scale = 100000000;
	long v = 0;

	if (**p != '.')
		return 0;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		v += (*s - '0') * scale;
		scale /= 10;
	}
	*nsec = v;
	*p = s;
	return 0;
}

int s3_parse_iso8601(const char *text, struct timespec *ts)
{
	struct tm tm = { 0 };
	const char *p = text;
	long nsec = 0;
	time_t t;

	if (strlen(text) < 20 || text[4] != '-' || text[7] != '-' ||
	    text[10] != 'T' || text[13] != ':' || text[16] != ':')
		return -EINVAL;
	if (parse_digits(p, 4, &tm.tm_year) ||
	    parse_digits(p + 5, 2, &tm.tm_mon) ||
	    parse_digits(p + 8, 2, &tm.tm_mday) ||
	    parse_digits(p + 11, 2, &tm.tm_hour) ||
	    parse_digits(p + 14, 2, &tm.tm_min) ||
	    parse_digits(p + 17, 2, &tm.tm_sec))
		return -EINVAL;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > days_in_month(tm.tm_year, tm.tm_mon) ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -EINVAL;

	p += 19;
	if (parse_fraction(&p, &nsec) || strcmp(p, "Z") != 0)
		return -EINVAL;

	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	ts->tv_sec = t;
	ts->tv_nsec = nsec;
	return 0;
}

char *s3_url_decode(const char *src)
{
	char *out = malloc(strlen(src) + 1);
	char *o = out;

	if (!out)
		return NULL;
	for (const char *p = src; *p; p++) {
		int hi, lo;

		if (*p != '%') {
			*o++ = *p;
			continue;
		}
		hi = s3_hex_value(p[1]);
		lo = hi < 0 ? -1 : s3_hex_value(p[2]);
		/* A NUL byte cannot be part of a C string key. */
		if (lo < 0 || (hi == 0 && lo == 0)) {
			free(out);
			return NULL;
		}
		*o++ = (char)(hi << 4 | lo);
		p += 2;
	}
	*o = '\0';
	return out;
}
