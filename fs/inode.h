/*
 * inode.h - the table that maps FUSE inode numbers to engine paths.
 *
 * The engine is path based and FUSE is inode based.  The table gives each
 * path the kernel has looked up an inode number that stays the same while
 * the kernel holds a reference (nlookup > 0), follows renames (a renamed
 * directory moves every known path below it) and survives unlink until the
 * kernel forgets the inode.  Freed numbers are reused with a new
 * generation, so (ino, generation) never names two files in one run.
 *
 * The root is INODE_ROOT with path "" and is never freed.  Every function
 * takes the table's mutex and may be called from any thread.
 */
#ifndef NEARFS_INODE_H
#define NEARFS_INODE_H

#include <stdbool.h>
#include <stdint.h>

#define INODE_ROOT 1	/* FUSE_ROOT_ID */

struct inode_table;

/* Create an empty table that holds only the root.  -ENOMEM. */
int inode_table_new(struct inode_table **out);

/* Free the table and every entry, whatever their nlookup. */
void inode_table_free(struct inode_table *t);

/*
 * Find or add the entry of path and add one to its nlookup, as every
 * successful fuse_reply_entry(), fuse_reply_create() and readdirplus entry
 * requires.  *ino and *generation receive its identity.  -ENOMEM.
 */
int inode_ref(struct inode_table *t, const char *path, uint64_t *ino,
	      uint64_t *generation);

/* Subtract n from the nlookup of ino, and free the entry at zero.  Unknown
 * numbers and the root are ignored. */
void inode_forget(struct inode_table *t, uint64_t ino, uint64_t n);

/*
 * Copy the path of ino into a new string that the caller frees.
 * -ESTALE when ino is unknown, -ENOENT when its path was unlinked,
 * -ENOMEM.
 */
int inode_path(struct inode_table *t, uint64_t ino, char **path);

/* The inode number of path, or 0 when the kernel does not know it.  No
 * reference is taken. */
uint64_t inode_find(struct inode_table *t, const char *path);

/*
 * Move from, and every known path below it, to to.  An entry already at to
 * (and below it) is detached as if unlinked, unless exchange is set: then
 * the two trees swap places, as with RENAME_EXCHANGE.  -ENOMEM leaves the
 * table unchanged.
 */
int inode_rename(struct inode_table *t, const char *from, const char *to,
		 bool exchange);

/*
 * Detach path after an unlink or rmdir, and with tree set every known path
 * below it too (a scan of the whole table).  The inodes live on until
 * forgotten, but inode_path() returns -ENOENT for them.
 */
void inode_unlink(struct inode_table *t, const char *path, bool tree);

/* Number of entries, the root included (for tests and statistics). */
uint64_t inode_count(struct inode_table *t);

#endif
