/*
 * fuzz_s3_names.c - the mapping of cache/s3_names.c between S3 object
 * keys and origin paths.
 *
 * The input is three parts separated by NUL bytes: the mount prefix
 * (leading and trailing slashes dropped, as fs/options.c drops them), the
 * origin path of the listed directory (the root when it is not a valid
 * path), and a listed key, URL-encoded as ListObjectsV2 returns it with
 * encoding-type=url.  The third part also serves as an origin path below
 * the directory.
 *
 * Properties, where a valid name is non-empty, not "." or "..", free of
 * '/' and at most NAME_MAX bytes:
 * - the name of a listed object or common prefix is a valid name, and
 *   s3_key_of() maps it back to the same key;
 * - no name but no reason means the key is the directory's own marker;
 * - a key below the listed prefix whose rest is a valid name is shown;
 * - a path of a recursive listing consists of valid names, maps back to
 *   the key or to a directory above it, and is the whole rest of the key
 *   when all its components are valid names;
 * - every valid origin path maps to a key that both listings map back
 *   to the path, and that survives URL encoding and decoding.
 */
#include <limits.h>
#include <stdbool.h>

#include "fuzz.h"
#include "s3_names.h"
#include "s3_sign.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_max_level = LOG_CRIT;
	return 0;
}

static bool valid_name(const char *name, size_t len)
{
	if (len == 0 || len > NAME_MAX || memchr(name, '/', len))
		return false;
	return !(len == 1 && name[0] == '.') &&
	       !(len == 2 && name[0] == '.' && name[1] == '.');
}

/* An origin path (origin.h): valid names joined by '/', and with
 * dir_slash one more '/' at the end.  "" is valid only when empty_ok. */
static bool valid_path(const char *path, bool dir_slash, bool empty_ok)
{
	size_t len = strlen(path);

	if (len == 0)
		return empty_ok;
	if (dir_slash) {
		if (path[len - 1] != '/')
			return false;
		len--;
	}
	for (size_t start = 0; start <= len;) {
		const char *slash = memchr(path + start, '/', len - start);
		size_t end = slash ? (size_t)(slash - path) : len;

		if (!valid_name(path + start, end - start))
			return false;
		start = end + 1;
	}
	return true;
}

static char *join(const char *dir, const char *name)
{
	char *s;

	if (asprintf(&s, "%s%s%s", dir, *dir ? "/" : "", name) < 0)
		abort();
	return s;
}

/* The key of dir/rel below prefix must be key. */
static void check_maps_back(const char *prefix, const char *dir,
			    const char *rel, bool dir_slash, const char *key)
{
	char *path = join(dir, rel);
	char *back = s3_key_of(prefix, path, dir_slash);

	FUZZ_ASSERT(back != NULL);
	FUZZ_ASSERT(strcmp(back, key) == 0);
	free(back);
	free(path);
}

/* A listed object (is_dir false) or common prefix (is_dir true). */
static void check_entry(const char *prefix, const char *dir,
			const char *list_prefix, const char *encoded,
			bool is_dir)
{
	char *key = s3_decode_listed(encoded), *cut;
	const char *reason = NULL, *name;
	size_t plen = strlen(list_prefix);

	cut = key ? strdup(key) : NULL;
	FUZZ_ASSERT(!key || cut);
	/* A common prefix ends in the delimiter, which is not in the name. */
	if (cut && is_dir && *cut && cut[strlen(cut) - 1] == '/')
		cut[strlen(cut) - 1] = '\0';
	name = s3_entry_name(cut, list_prefix, &reason);
	if (name) {
		FUZZ_ASSERT(reason == NULL);
		FUZZ_ASSERT(valid_name(name, strlen(name)));
		check_maps_back(prefix, dir, name, is_dir &&
				strcmp(cut, key) != 0, key);
	} else if (!reason) {
		FUZZ_ASSERT(cut != NULL);
		FUZZ_ASSERT(strcmp(cut, list_prefix) == 0);
	}
	if (cut && strncmp(cut, list_prefix, plen) == 0 &&
	    valid_name(cut + plen, strlen(cut + plen)))
		FUZZ_ASSERT(name == cut + plen);
	free(cut);
	free(key);
}

/* A key of a recursive listing. */
static void check_tree(const char *prefix, const char *dir,
		       const char *list_prefix, const char *encoded)
{
	char *key = s3_decode_listed(encoded), *copy, *path, *rel;
	size_t plen = strlen(list_prefix), len;
	const char *reason = NULL;

	if (!key)
		return;
	copy = strdup(key);
	FUZZ_ASSERT(copy != NULL);
	path = s3_tree_path(copy, list_prefix, &reason);
	rel = strncmp(key, list_prefix, plen) == 0 ? key + plen : NULL;
	if (path) {
		len = strlen(path);
		FUZZ_ASSERT(rel != NULL);
		FUZZ_ASSERT(strncmp(rel, path, len) == 0);
		if (path[len - 1] == '/') {
			/* A directory above the key: its key is a prefix of
			 * the key. */
			char *dirpath, *dirkey;

			FUZZ_ASSERT(valid_path(path, true, false));
			path[len - 1] = '\0';
			dirpath = join(dir, path);
			dirkey = s3_key_of(prefix, dirpath, true);
			FUZZ_ASSERT(dirkey != NULL);
			FUZZ_ASSERT(strncmp(key, dirkey, strlen(dirkey)) == 0);
			free(dirkey);
			free(dirpath);
			path[len - 1] = '/';
		} else {
			FUZZ_ASSERT(valid_path(path, false, false));
			check_maps_back(prefix, dir, path, false, key);
		}
	}
	if (rel && (valid_path(rel, false, false) ||
		    valid_path(rel, true, false))) {
		FUZZ_ASSERT(path != NULL);
		FUZZ_ASSERT(strcmp(path, rel) == 0);
	}
	free(copy);
	free(key);
}

/* An origin path below dir: both listings must map its key back. */
static void check_path(const char *prefix, const char *dir,
		       const char *list_prefix, const char *rel)
{
	char *path, *key, *encoded, *decoded, *copy;
	const char *slash = strrchr(rel, '/'), *reason;
	const char *name;

	if (!valid_path(rel, false, false))
		return;
	path = join(dir, rel);
	key = s3_key_of(prefix, path, false);
	FUZZ_ASSERT(key != NULL);

	copy = strdup(key);
	FUZZ_ASSERT(copy != NULL);
	FUZZ_ASSERT(s3_tree_path(copy, list_prefix, &reason) != NULL);
	FUZZ_ASSERT(strcmp(copy + strlen(list_prefix), rel) == 0);
	free(copy);

	if (!slash) {
		name = s3_entry_name(key, list_prefix, &reason);
		FUZZ_ASSERT(name != NULL);
		FUZZ_ASSERT(strcmp(name, rel) == 0);
	}

	encoded = s3_uri_encode(key, 1);
	FUZZ_ASSERT(encoded != NULL);
	decoded = s3_decode_listed(encoded);
	FUZZ_ASSERT(decoded != NULL);
	FUZZ_ASSERT(strcmp(decoded, key) == 0);
	free(decoded);
	free(encoded);
	free(key);
	free(path);
}

/* Drop leading and trailing slashes of a mount prefix, in place. */
static char *trim_slashes(char *s)
{
	size_t len;

	while (*s == '/')
		s++;
	len = strlen(s);
	while (len && s[len - 1] == '/')
		s[--len] = '\0';
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *rest;
	size_t rest_size;
	char *prefix_buf = fuzz_split(data, size, 0, &rest, &rest_size);
	char *dir = fuzz_split(rest, rest_size, 0, &rest, &rest_size);
	char *third = fuzz_strndup(rest, rest_size);
	char *prefix = trim_slashes(prefix_buf);
	const char *listed_dir = valid_path(dir, false, true) ? dir : "";
	char *list_prefix = s3_key_of(prefix, listed_dir, true);

	FUZZ_ASSERT(list_prefix != NULL);
	check_entry(prefix, listed_dir, list_prefix, third, false);
	check_entry(prefix, listed_dir, list_prefix, third, true);
	check_tree(prefix, listed_dir, list_prefix, third);
	check_path(prefix, listed_dir, list_prefix, third);
	free(list_prefix);
	free(third);
	free(dir);
	free(prefix_buf);
	return 0;
}
