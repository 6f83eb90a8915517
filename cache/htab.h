/*
 * htab.h - a hash table from strings to pointers, with chaining.
 *
 * The table copies keys and never owns values.  It is not locked: the
 * caller serializes access.
 */
#ifndef NEARFS_HTAB_H
#define NEARFS_HTAB_H

#include <stdbool.h>
#include <stddef.h>

struct htab_entry {
	struct htab_entry *next;
	void *value;
	char key[];
};

struct htab {
	struct htab_entry **buckets;
	size_t nbuckets;	/* a power of two */
	size_t count;
};

int htab_init(struct htab *t);
/* Free the entries; values are the caller's. */
void htab_release(struct htab *t);

void *htab_get(const struct htab *t, const char *key);
/* Insert or replace.  Returns 0 or -ENOMEM. */
int htab_put(struct htab *t, const char *key, void *value);
/* Remove key and return its value, or NULL when absent. */
void *htab_remove(struct htab *t, const char *key);

/* Call fn for every entry; fn may not change the table. */
void htab_for_each(const struct htab *t,
		   void (*fn)(void *arg, const char *key, void *value),
		   void *arg);

#endif
