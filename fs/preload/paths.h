/*
 * paths.h - lexical path handling for paths served without FUSE.
 *
 * A root served without FUSE does not exist on disk, so the kernel
 * cannot resolve paths below it.  The library normalizes them as
 * strings instead, and names them in requests in the percent-encoding
 * of protocol.h.  These functions only work on strings: they make no
 * system call and keep errno.
 */
#ifndef NEARFS_PRELOAD_PATHS_H
#define NEARFS_PRELOAD_PATHS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Write the absolute form of path into out (size bytes): path itself
 * when it is absolute, else base (an absolute path) followed by path.
 * Empty and "." components are dropped, ".." removes the component
 * before it ("/.." is "/"), and the result has no trailing "/" unless
 * it is "/".  Symbolic links are not looked at.  Returns the length of
 * the result, -EINVAL when path is relative and base is NULL or
 * relative, or -ENAMETOOLONG when the result does not fit.
 */
int path_normalize(const char *base, const char *path, char *out,
		   size_t size);
/* path_normalize() of the first len bytes of path. */
int path_normalize_prefix(const char *base, const char *path, size_t len,
			  char *out, size_t size);
/* The first ".." component of path that starts at or after start, or
 * NULL. */
const char *path_next_dotdot(const char *path, const char *start);

/*
 * Whether path (normalized) is root (normalized) or below it.  Returns
 * the length of root when it is, else 0.
 */
size_t path_below(const char *path, const char *root, size_t root_len);

/* Whether byte c is written as %XX in a request. */
static inline int path_byte_is_encoded(unsigned char c)
{
	return c <= 0x20 || c == '%' || c >= 0x7f;
}

/* The length of the percent-encoded form of s. */
size_t path_encoded_len(const char *s);

/*
 * Decode the len bytes of in (percent-encoded) into out (size bytes,
 * NUL-terminated).  Returns the decoded length, or -EINVAL for an
 * invalid %XX, a decoded NUL byte, or a result that does not fit.
 */
int path_decode(const char *in, size_t len, char *out, size_t size);

/*
 * 64-bit FNV-1a hash of the len bytes of s, continuing from hash
 * (PATH_HASH_INIT to start).  The library reports it as the inode
 * number of the file at a normalized path.
 */
#define PATH_HASH_INIT 0xcbf29ce484222325ULL
uint64_t path_hash(uint64_t hash, const char *s, size_t len);

#endif
