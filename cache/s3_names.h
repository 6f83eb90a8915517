/*
 * s3_names.h - the mapping between S3 object keys and origin paths.
 *
 * Below the mount prefix P, the origin path "a/b" (origin.h) is the key
 * "P/a/b", or "a/b" without a prefix.  A directory's key ends in "/".
 * Listed keys go the other way.  A key is shown only when every path
 * component below the listed prefix is a valid file name: non-empty, not
 * "." or "..", free of '/' and at most NAME_MAX bytes.  Other keys are
 * hidden, because no path can carry them.
 */
#ifndef NEARFS_S3_NAMES_H
#define NEARFS_S3_NAMES_H

#include <stdbool.h>

/*
 * Return the object key of path below prefix, which has no leading or
 * trailing slash ("" for none).  A dir_slash adds a trailing "/" to a
 * path other than the root, and the root then becomes "prefix/" ("" when
 * there is no prefix).  malloc'ed, NULL when out of memory.
 */
char *s3_key_of(const char *prefix, const char *path, bool dir_slash);

/*
 * Decode a key or prefix of an encoding-type=url listing.  Returns NULL
 * for an invalid escape or a NUL byte ("%00"), which no path can carry.
 */
char *s3_decode_listed(const char *encoded);

/* Return NULL when name is a valid file name, else the reason it is not. */
const char *s3_name_invalid(const char *name);

/*
 * Return the entry name of key in a delimited listing of list_prefix, a
 * key from s3_key_of() with dir_slash set.  key is decoded, or NULL when
 * it could not be.  The result points into key.  It is NULL when key is
 * the listed directory's own marker (then *reason is NULL) or when no
 * file name can carry it (then *reason is set).
 */
const char *s3_entry_name(const char *key, const char *list_prefix,
			  const char **reason);

/*
 * Map a decoded key of a recursive listing below list_prefix to the path
 * that the delimited listings imply, in place.  Each component must be a
 * valid file name.  At the first one that is not, the path ends with the
 * directory above it ("a/./x" gives "a/") and *reason is set.  Returns
 * NULL when nothing is left, with *reason as s3_entry_name() sets it.
 */
char *s3_tree_path(char *key, const char *list_prefix, const char **reason);

#endif
