/*
 * checksum.h - the hash of cached chunks.
 *
 * Chunks carry an XXH3-64 checksum, computed as their bytes arrive and
 * checked when a chunk recorded before a restart is first read.  On
 * x86-64 the library's dispatching entry points pick AVX2 or AVX-512 at
 * run time.  The plain entry points are built for SSE2 and hashed at a
 * third of the speed on a Xeon with AVX-512 (9 against 25 to 31 GB/s).
 * Both give the same values, so a cache written by one build reads in
 * the other.
 */
#ifndef NEARFS_CHECKSUM_H
#define NEARFS_CHECKSUM_H

#include <xxhash.h>
#if defined(__x86_64__) && defined(__has_include)
#if __has_include(<xxh_x86dispatch.h>)
#include <xxh_x86dispatch.h>
#endif
#endif

#endif
