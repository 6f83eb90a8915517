/* s3_names.c - object keys to origin paths and back (s3_names.h). */
#include "s3_names.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_xml.h"

char *s3_key_of(const char *prefix, const char *path, bool dir_slash)
{
	const char *slash = dir_slash ? "/" : "";
	char *key;
	int n;

	if (!*prefix)
		n = asprintf(&key, "%s%s", path, *path ? slash : "");
	else if (!*path)
		n = asprintf(&key, "%s%s", prefix, slash);
	else
		n = asprintf(&key, "%s/%s%s", prefix, path, slash);
	return n < 0 ? NULL : key;
}

char *s3_decode_listed(const char *encoded)
{
	if (strstr(encoded, "%00"))
		return NULL;
	return s3_url_decode(encoded);
}

const char *s3_name_invalid(const char *name)
{
	if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
		return "'.', '..' or an empty path component is not a file "
		       "name";
	if (strchr(name, '/'))
		return "the name contains '/', which a listing with the "
		       "delimiter '/' never returns";
	if (strlen(name) > NAME_MAX)
		return "a path component is longer than NAME_MAX (255 bytes)";
	return NULL;
}

/* Return the part of key after list_prefix.  NULL sets *reason, unless
 * key is list_prefix itself, the directory's marker. */
static const char *key_rest(const char *key, const char *list_prefix,
			    const char **reason)
{
	size_t plen = strlen(list_prefix);

	*reason = NULL;
	if (!key) {
		*reason = "a NUL byte cannot be in a file name";
		return NULL;
	}
	if (strncmp(key, list_prefix, plen)) {
		*reason = "outside the mounted prefix";
		return NULL;
	}
	return key[plen] ? key + plen : NULL;
}

const char *s3_entry_name(const char *key, const char *list_prefix,
			  const char **reason)
{
	const char *name = key_rest(key, list_prefix, reason);

	if (!name)
		return NULL;
	*reason = s3_name_invalid(name);
	return *reason ? NULL : name;
}

/* Each component is checked on its own: the path as a whole may be
 * longer than NAME_MAX. */
char *s3_tree_path(char *key, const char *list_prefix, const char **reason)
{
	char *rel = (char *)key_rest(key, list_prefix, reason);
	char *p, *slash;

	if (!rel)
		return NULL;
	for (p = rel; (slash = strchr(p, '/')); p = slash + 1) {
		*slash = '\0';
		*reason = s3_name_invalid(p);
		*slash = '/';
		if (*reason)
			break;
	}
	if (!slash && (!*p || !(*reason = s3_name_invalid(p))))
		return rel;
	if (p == rel)
		return NULL;
	*p = '\0';	/* keep "dir/" up to the invalid component */
	return rel;
}
