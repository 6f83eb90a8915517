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
 * requires.  type is the file type (S_IFMT bits) given to the kernel with
 * it.  The kernel makes an inode whose type changes unusable (EIO), so an
 * entry of another type is detached, with the entries below it, and path
 * gets a new entry.  *ino and *generation receive its identity.  -ENOMEM.
 */
int inode_ref(struct inode_table *t, const char *path, unsigned type,
	      uint64_t *ino, uint64_t *generation);

/* The file type that the kernel was given for ino, or 0 when ino is
 * unknown. */
unsigned inode_type(struct inode_table *t, uint64_t ino);

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

/*
 * Pins: an entry may carry one opaque pin, an open handle of the file it
 * names, so that the inode keeps its content after a rename replaces the
 * file at its path.  The table hands each pin to the function set with
 * inode_table_set_unpin() when its entry is freed, outside the table's
 * mutex.  Lock order: the table's mutex comes before any lock that
 * copy() of inode_copy_pin() takes.
 */
void inode_table_set_unpin(struct inode_table *t, void (*unpin)(void *pin));

/* Attach pin to the linked entry of path.  -ENOENT when the kernel does
 * not know path, -EEXIST when the entry has a pin: the caller keeps pin. */
int inode_pin(struct inode_table *t, const char *path, void *pin);

/* Detach the pin of path's linked entry and return it, or NULL. */
void *inode_unpin(struct inode_table *t, const char *path);

/* Detach every pin and give it to the unpin function.  Call it while the
 * pinned handles can still be released, before the cache closes. */
void inode_unpin_all(struct inode_table *t);

/* Return copy(pin, arg) for the pin of ino, called with the table's
 * mutex held so that the pin stays alive; -ENOENT when ino has none. */
int inode_copy_pin(struct inode_table *t, uint64_t ino,
		   int (*copy)(void *pin, void *arg), void *arg);

/* Number of entries, the root included (for tests and statistics). */
uint64_t inode_count(struct inode_table *t);

#endif
