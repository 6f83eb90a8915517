/*
 * verify.h - offline check and repair of a cache folder, for
 * `nearfs-ctl verify`.
 *
 * The check reads the index and the write-back journal with the engine's
 * own replay, without changing them, reads every chunk the index lists
 * and compares it with its checksum, and looks for files that nothing
 * names.  It holds the folder's lock for the whole run, so no daemon can
 * start on it meanwhile.  The repair drops what is broken and writes the
 * index back through the engine's compaction; it never removes a file
 * that the journal lists as still to be uploaded, also when its size
 * differs from the one the journal records, nor an entry of leftovers/
 * that has an id.  The engine prints
 * nothing: problems go to the caller's callbacks.
 */
#ifndef NEARFS_VERIFY_H
#define NEARFS_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum verify_kind {
	VERIFY_CHECKSUM,	/* a cached chunk fails its checksum */
	VERIFY_SHORT,		/* a data file ends inside cached chunks */
	VERIFY_MISSING,		/* the index lists chunks of a missing
				 * data file */
	VERIFY_ORPHAN,		/* a data file that no index record names */
	VERIFY_TMP,		/* a file left in tmp/, or an unfinished
				 * compaction (index.new, journal.new) */
	VERIFY_INDEX,		/* the index is torn, damaged or unreadable */
	VERIFY_JOURNAL,		/* the journal is torn, damaged or lists a
				 * missing file */
	VERIFY_DIRTY,		/* a file in dirty/ the journal does not list */
	VERIFY_SIZE,		/* a pending file in dirty/ is shorter or
				 * longer than the journal records */
	VERIFY_KIND_MAX
};

/* The name of each kind, as nearfs-ctl prints it: "checksum", ... */
extern const char *const verify_kind_names[VERIFY_KIND_MAX];

struct verify_problem {
	enum verify_kind kind;
	const char *file;	/* the file concerned, below the folder */
	const char *message;	/* what is wrong */
	const char *outcome;	/* with repair: what was done, or why the
				 * file was kept; NULL without repair */
	bool repaired;
};

struct verify_report {
	void *arg;
	void (*problem)(void *arg, const struct verify_problem *p);
	/* A file the journal lists as still to be uploaded: its origin
	 * path, its file in dirty/ and the bytes in that file. */
	void (*pending)(void *arg, const char *path, const char *file,
			uint64_t size);
	/* An entry in leftovers/: what an interrupted upload left at the
	 * origin, which the next start without ro removes.  id is the path
	 * of a temporary file, or an upload id, a newline and a key. */
	void (*leftover)(void *arg, const char *file, const char *id);
};

struct verify_counts {
	uint64_t objects;	/* objects with cached chunks checked */
	uint64_t chunks;	/* chunks read and checksummed */
	uint64_t bytes;		/* bytes of those chunks */
	uint64_t pending;	/* uploads the journal lists */
	uint64_t pending_bytes;
	uint64_t leftovers;	/* entries in leftovers/ */
	uint64_t problems[VERIFY_KIND_MAX];
	uint64_t repaired;
	uint64_t kept;
};

/*
 * Check the origin folder root (CACHE_DIR/<origin folder>), and with
 * repair fix what it found.  Adds to counts.  Returns 0 once the folder
 * was checked, whatever was found, or a negative errno with a message in
 * err when it cannot be checked: -EBUSY when a daemon holds its lock.
 */
int verify_folder(const char *root, bool repair,
		  const struct verify_report *report,
		  struct verify_counts *counts, char *err, size_t errlen);

/* Whether path is an origin folder of a cache: it contains an index or
 * a lock file. */
bool verify_is_origin_folder(const char *path);

#endif
