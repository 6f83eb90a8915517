/*
 * fuzz.h - what the libFuzzer harnesses of tests/fuzz share.
 *
 * FUZZ_ASSERT checks a property of the product and aborts with the
 * failed condition when it does not hold, so that libFuzzer records the
 * input as a crash.  It stays active in every build, unlike assert().
 */
#ifndef NEARFS_FUZZ_H
#define NEARFS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define FUZZ_ASSERT(cond)                                                  \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "%s:%d: property failed: %s\n",    \
				__FILE__, __LINE__, #cond);                \
			abort();                                           \
		}                                                          \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Copy size bytes of data into a new NUL-terminated string; bytes after
 * a NUL are dropped. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* Return the part of data before its first byte sep as a new string,
 * and point *rest and *rest_size at the bytes after that byte. */
static inline char *fuzz_split(const uint8_t *data, size_t size, uint8_t sep,
			       const uint8_t **rest, size_t *rest_size)
{
	const uint8_t *at = memchr(data, sep, size);
	size_t n = at ? (size_t)(at - data) : size;

	*rest = at ? at + 1 : data + size;
	*rest_size = at ? size - n - 1 : 0;
	return fuzz_strndup(data, n);
}

#endif
