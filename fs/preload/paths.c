/*
 * paths.c - lexical path handling for paths served without FUSE.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"

/* Append the components of the len bytes of path to out[0..*len_out),
 * which contains an absolute path, or "/" when *len_out is 0. */
static int append_components(const char *path, size_t len, char *out,
			     size_t size, size_t *len_out)
{
	const char *end_of_path = path + len;

	while (path < end_of_path) {
		const char *end;
		size_t n;

		if (*path == '/') {
			path++;
			continue;
		}
		end = memchr(path, '/', (size_t)(end_of_path - path));
		if (!end)
			end = end_of_path;
		n = (size_t)(end - path);
		if (n == 2 && path[0] == '.' && path[1] == '.') {
			while (*len_out > 0 && out[*len_out - 1] != '/')
				(*len_out)--;
			if (*len_out > 0)
				(*len_out)--;
		} else if (n != 1 || path[0] != '.') {
			if (*len_out + 1 + n >= size)
				return -ENAMETOOLONG;
			out[(*len_out)++] = '/';
			memcpy(out + *len_out, path, n);
			*len_out += n;
		}
		path = end;
	}
	return 0;
}

int path_normalize_prefix(const char *base, const char *path, size_t len,
			  char *out, size_t size)
{
	size_t out_len = 0;
	int ret;

	if (size < 2)
		return -ENAMETOOLONG;
	if (len == 0 || path[0] != '/') {
		if (!base || base[0] != '/')
			return -EINVAL;
		ret = append_components(base, strlen(base), out, size,
					&out_len);
		if (ret)
			return ret;
	}
	ret = append_components(path, len, out, size, &out_len);
	if (ret)
		return ret;
	if (out_len == 0)
		out[out_len++] = '/';
	out[out_len] = '\0';
	return (int)out_len;
}

int path_normalize(const char *base, const char *path, char *out,
		   size_t size)
{
	return path_normalize_prefix(base, path, strlen(path), out, size);
}

const char *path_next_dotdot(const char *path, const char *start)
{
	for (const char *p = start; (p = strstr(p, "..")); p += 2) {
		if ((p == path || p[-1] == '/') && (p[2] == '/' || !p[2]))
			return p;
	}
	return NULL;
}

size_t path_below(const char *path, const char *root, size_t root_len)
{
	if (strncmp(path, root, root_len) != 0)
		return 0;
	return path[root_len] == '/' || path[root_len] == '\0' ? root_len : 0;
}

size_t path_encoded_len(const char *s)
{
	size_t len = 0;

	for (; *s; s++)
		len += path_byte_is_encoded((unsigned char)*s) ? 3 : 1;
	return len;
}

int path_decode(const char *in, size_t len, char *out, size_t size)
{
	size_t n = 0;

	if (size == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)in[i];

		if (c == '%') {
			char hex[3];

			if (len - i < 3 ||
			    !isxdigit((unsigned char)in[i + 1]) ||
			    !isxdigit((unsigned char)in[i + 2]))
				return -EINVAL;
			memcpy(hex, in + i + 1, 2);
			hex[2] = '\0';
			c = (int)strtoul(hex, NULL, 16);
			i += 2;
		}
		if (c == 0 || n + 1 >= size)
			return -EINVAL;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return (int)n;
}

uint64_t path_hash(uint64_t hash, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		hash ^= (unsigned char)s[i];
		hash *= 0x100000001b3ULL;
	}
	return hash;
}
