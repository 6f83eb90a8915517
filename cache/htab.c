/* htab.c - string-keyed chained hash table, grown at load factor 1. */
#include "htab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

int htab_init(struct htab *t)
{
	t->nbuckets = 64;
	t->count = 0;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	return t->buckets ? 0 : -ENOMEM;
}

void htab_release(struct htab *t)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct htab_entry *e = t->buckets[i];

		while (e) {
			struct htab_entry *next = e->next;

			free(e);
			e = next;
		}
	}
	free(t->buckets);
	t->buckets = NULL;
	t->nbuckets = t->count = 0;
}

static size_t bucket_of(size_t nbuckets, const char *key)
{
	return XXH3_64bits(key, strlen(key)) & (nbuckets - 1);
}

static struct htab_entry **find_slot(const struct htab *t, const char *key)
{
	struct htab_entry **slot = &t->buckets[bucket_of(t->nbuckets, key)];

	while (*slot && strcmp((*slot)->key, key) != 0)
		slot = &(*slot)->next;
	return slot;
}

void *htab_get(const struct htab *t, const char *key)
{
	struct htab_entry *e = *find_slot(t, key);

	return e ? e->value : NULL;
}

static void grow(struct htab *t)
{
	size_t n = t->nbuckets * 2;
	struct htab_entry **b = calloc(n, sizeof(*b));

	if (!b)
		return;	/* a longer chain is still correct */
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct htab_entry *e = t->buckets[i];

		while (e) {
			struct htab_entry *next = e->next;
			size_t j = bucket_of(n, e->key);

			e->next = b[j];
			b[j] = e;
			e = next;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
}

int htab_put(struct htab *t, const char *key, void *value)
{
	struct htab_entry **slot = find_slot(t, key);
	size_t len;

	if (*slot) {
		(*slot)->value = value;
		return 0;
	}
	len = strlen(key);
	*slot = malloc(sizeof(**slot) + len + 1);
	if (!*slot)
		return -ENOMEM;
	memcpy((*slot)->key, key, len + 1);
	(*slot)->value = value;
	(*slot)->next = NULL;
	if (++t->count > t->nbuckets)
		grow(t);
	return 0;
}

void *htab_remove(struct htab *t, const char *key)
{
	struct htab_entry **slot = find_slot(t, key);
	struct htab_entry *e = *slot;
	void *value;

	if (!e)
		return NULL;
	*slot = e->next;
	value = e->value;
	free(e);
	t->count--;
	return value;
}

void htab_for_each(const struct htab *t,
		   void (*fn)(void *arg, const char *key, void *value),
		   void *arg)
{
	for (size_t i = 0; i < t->nbuckets; i++)
		for (struct htab_entry *e = t->buckets[i]; e; e = e->next)
			fn(arg, e->key, e->value);
}
