/* inode.c - the inode number <-> path table of the FUSE layer. */
#include "inode.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

/*
 * Entries live in two indexes: slots[ino] (a direct-mapped array, so
 * lookups by number cost one load) and a chained hash table by path that
 * holds only linked entries.  An unlinked entry stays in slots until the
 * kernel forgets it.  Freed numbers go on a stack and come back with
 * slot_gen[ino] raised by one.
 */
struct inode {
	uint64_t ino;
	uint64_t nlookup;
	uint64_t hash;		/* of path, valid while linked */
	char *path;
	unsigned type;		/* S_IFMT bits given to the kernel */
	bool linked;		/* in the path hash */
	struct inode *next;	/* chain of the path hash */
	void *pin;		/* see inode_pin(), or NULL */
};

struct inode_table {
	pthread_mutex_t lock;
	struct inode **slots;	/* by ino; slot 0 is never used */
	uint64_t *slot_gen;	/* generation of each slot's current use */
	uint64_t nslots;	/* allocated length of slots and slot_gen */
	uint64_t next_ino;	/* lowest number never handed out */
	uint64_t *free_inos;	/* stack of numbers to reuse */
	uint64_t nfree, free_cap;
	struct inode **buckets;
	uint64_t nbuckets;	/* a power of two */
	uint64_t nlinked;
	uint64_t count;
	void (*unpin)(void *pin);
};

#define INITIAL_SLOTS 1024
#define INITIAL_BUCKETS 1024

static uint64_t path_hash(const char *path)
{
	return XXH3_64bits(path, strlen(path));
}

static void hash_insert(struct inode_table *t, struct inode *node)
{
	uint64_t b;

	node->hash = path_hash(node->path);
	b = node->hash & (t->nbuckets - 1);
	node->next = t->buckets[b];
	t->buckets[b] = node;
	node->linked = true;
	t->nlinked++;
}

static void hash_remove(struct inode_table *t, struct inode *node)
{
	struct inode **pp;

	if (!node->linked)
		return;
	pp = &t->buckets[node->hash & (t->nbuckets - 1)];
	while (*pp != node)
		pp = &(*pp)->next;
	*pp = node->next;
	node->next = NULL;
	node->linked = false;
	t->nlinked--;
}

static struct inode *hash_find(struct inode_table *t, const char *path)
{
	uint64_t h = path_hash(path);
	struct inode *node = t->buckets[h & (t->nbuckets - 1)];

	for (; node; node = node->next)
		if (node->hash == h && strcmp(node->path, path) == 0)
			return node;
	return NULL;
}

/* Double the bucket array when the chains average more than one entry.
 * Failing to grow is harmless: the chains only get longer. */
static void hash_maybe_grow(struct inode_table *t)
{
	uint64_t n = t->nbuckets * 2;
	struct inode **buckets;

	if (t->nlinked < t->nbuckets)
		return;
	buckets = calloc(n, sizeof(*buckets));
	if (!buckets)
		return;
	for (uint64_t i = 0; i < t->nbuckets; i++) {
		struct inode *node = t->buckets[i];

		while (node) {
			struct inode *next = node->next;
			uint64_t b = node->hash & (n - 1);

			node->next = buckets[b];
			buckets[b] = node;
			node = next;
		}
	}
	free(t->buckets);
	t->buckets = buckets;
	t->nbuckets = n;
}

static int slots_grow(struct inode_table *t)
{
	uint64_t n = t->nslots * 2;
	struct inode **slots;
	uint64_t *gen;

	slots = realloc(t->slots, n * sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	t->slots = slots;
	gen = realloc(t->slot_gen, n * sizeof(*gen));
	if (!gen)
		return -ENOMEM;
	t->slot_gen = gen;
	memset(slots + t->nslots, 0, (n - t->nslots) * sizeof(*slots));
	memset(gen + t->nslots, 0, (n - t->nslots) * sizeof(*gen));
	t->nslots = n;
	return 0;
}

/* Pick a number for a new entry: a freed one, else the next unused. */
static int ino_alloc(struct inode_table *t, uint64_t *ino)
{
	int ret;

	if (t->nfree > 0) {
		*ino = t->free_inos[--t->nfree];
		t->slot_gen[*ino]++;
		return 0;
	}
	if (t->next_ino >= t->nslots) {
		ret = slots_grow(t);
		if (ret)
			return ret;
	}
	*ino = t->next_ino++;
	return 0;
}

/* Keep ino for reuse; when the stack cannot grow the number is dropped,
 * which only wastes it. */
static void ino_release(struct inode_table *t, uint64_t ino)
{
	if (t->nfree == t->free_cap) {
		uint64_t cap = t->free_cap ? t->free_cap * 2 : 256;
		uint64_t *stack = realloc(t->free_inos, cap * sizeof(*stack));

		if (!stack)
			return;
		t->free_inos = stack;
		t->free_cap = cap;
	}
	t->free_inos[t->nfree++] = ino;
}

static struct inode *node_new(struct inode_table *t, const char *path,
			      unsigned type)
{
	struct inode *node = calloc(1, sizeof(*node));

	if (!node)
		return NULL;
	node->type = type;
	node->path = strdup(path);
	if (!node->path)
		goto out_free;
	if (ino_alloc(t, &node->ino))
		goto out_free_path;
	t->slots[node->ino] = node;
	t->count++;
	hash_insert(t, node);
	hash_maybe_grow(t);
	return node;

out_free_path:
	free(node->path);
out_free:
	free(node);
	return NULL;
}

/* Free node and return its pin, which the caller gives to t->unpin once
 * the mutex is released. */
static void *node_free(struct inode_table *t, struct inode *node)
{
	void *pin = node->pin;

	hash_remove(t, node);
	t->slots[node->ino] = NULL;
	t->count--;
	ino_release(t, node->ino);
	free(node->path);
	free(node);
	return pin;
}

static void unpin(struct inode_table *t, void *pin)
{
	if (pin && t->unpin)
		t->unpin(pin);
}

int inode_table_new(struct inode_table **out)
{
	struct inode_table *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	t->nslots = INITIAL_SLOTS;
	t->slots = calloc(t->nslots, sizeof(*t->slots));
	t->slot_gen = calloc(t->nslots, sizeof(*t->slot_gen));
	t->nbuckets = INITIAL_BUCKETS;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (!t->slots || !t->slot_gen || !t->buckets)
		goto out_free;

	/* Numbers below INODE_ROOT are never handed out, so the first
	 * allocation yields the root. */
	t->next_ino = INODE_ROOT;
	if (!node_new(t, "", S_IFDIR))
		goto out_free;
	*out = t;
	return 0;

out_free:
	inode_table_free(t);
	return -ENOMEM;
}

void inode_table_free(struct inode_table *t)
{
	if (!t)
		return;
	for (uint64_t i = 0; t->slots && i < t->nslots; i++) {
		if (t->slots[i]) {
			unpin(t, t->slots[i]->pin);
			free(t->slots[i]->path);
			free(t->slots[i]);
		}
	}
	free(t->slots);
	free(t->slot_gen);
	free(t->buckets);
	free(t->free_inos);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static void unlink_locked(struct inode_table *t, const char *path,
			  bool tree);

int inode_ref(struct inode_table *t, const char *path, unsigned type,
	      uint64_t *ino, uint64_t *generation)
{
	struct inode *node;
	int ret = 0;

	pthread_mutex_lock(&t->lock);
	node = hash_find(t, path);
	if (node && node->ino != INODE_ROOT && node->type != type) {
		unlink_locked(t, path, node->type == S_IFDIR);
		node = NULL;
	}
	if (!node)
		node = node_new(t, path, type);
	if (!node) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	node->nlookup++;
	*ino = node->ino;
	*generation = t->slot_gen[node->ino];

out_unlock:
	pthread_mutex_unlock(&t->lock);
	return ret;
}

unsigned inode_type(struct inode_table *t, uint64_t ino)
{
	struct inode *node;
	unsigned type = 0;

	pthread_mutex_lock(&t->lock);
	if (ino < t->nslots && (node = t->slots[ino]))
		type = node->type;
	pthread_mutex_unlock(&t->lock);
	return type;
}

void inode_forget(struct inode_table *t, uint64_t ino, uint64_t n)
{
	struct inode *node;
	void *pin = NULL;

	if (ino == INODE_ROOT)
		return;
	pthread_mutex_lock(&t->lock);
	if (ino >= t->nslots || !(node = t->slots[ino]))
		goto out_unlock;
	if (n >= node->nlookup)
		pin = node_free(t, node);
	else
		node->nlookup -= n;

out_unlock:
	pthread_mutex_unlock(&t->lock);
	unpin(t, pin);
}

void inode_table_set_unpin(struct inode_table *t, void (*fn)(void *pin))
{
	t->unpin = fn;
}

int inode_pin(struct inode_table *t, const char *path, void *pin)
{
	struct inode *node;
	int ret = 0;

	pthread_mutex_lock(&t->lock);
	node = hash_find(t, path);
	if (!node)
		ret = -ENOENT;
	else if (node->pin)
		ret = -EEXIST;
	else
		node->pin = pin;
	pthread_mutex_unlock(&t->lock);
	return ret;
}

void *inode_unpin(struct inode_table *t, const char *path)
{
	struct inode *node;
	void *pin = NULL;

	pthread_mutex_lock(&t->lock);
	node = hash_find(t, path);
	if (node) {
		pin = node->pin;
		node->pin = NULL;
	}
	pthread_mutex_unlock(&t->lock);
	return pin;
}

void inode_unpin_all(struct inode_table *t)
{
	for (;;) {
		void *pin = NULL;

		pthread_mutex_lock(&t->lock);
		for (uint64_t i = 0; i < t->nslots && !pin; i++) {
			if (t->slots[i] && t->slots[i]->pin) {
				pin = t->slots[i]->pin;
				t->slots[i]->pin = NULL;
			}
		}
		pthread_mutex_unlock(&t->lock);
		if (!pin)
			return;
		unpin(t, pin);
	}
}

int inode_copy_pin(struct inode_table *t, uint64_t ino,
		   int (*copy)(void *pin, void *arg), void *arg)
{
	struct inode *node;
	int ret = -ENOENT;

	pthread_mutex_lock(&t->lock);
	if (ino < t->nslots && (node = t->slots[ino]) && node->pin)
		ret = copy(node->pin, arg);
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int inode_path(struct inode_table *t, uint64_t ino, char **path)
{
	struct inode *node;
	int ret = 0;

	pthread_mutex_lock(&t->lock);
	if (ino >= t->nslots || !(node = t->slots[ino])) {
		ret = -ESTALE;
		goto out_unlock;
	}
	if (!node->linked) {
		ret = -ENOENT;
		goto out_unlock;
	}
	*path = strdup(node->path);
	if (!*path)
		ret = -ENOMEM;

out_unlock:
	pthread_mutex_unlock(&t->lock);
	return ret;
}

uint64_t inode_find(struct inode_table *t, const char *path)
{
	struct inode *node;
	uint64_t ino;

	pthread_mutex_lock(&t->lock);
	node = hash_find(t, path);
	ino = node ? node->ino : 0;
	pthread_mutex_unlock(&t->lock);
	return ino;
}

/* The length of root when path is root or below it, else -1. */
static long tree_prefix(const char *path, const char *root)
{
	size_t n = strlen(root);

	if (n == 0)
		return 0;
	if (strncmp(path, root, n) != 0)
		return -1;
	if (path[n] != '\0' && path[n] != '/')
		return -1;
	return (long)n;
}

static char *path_replace_prefix(const char *path, size_t old_len,
				 const char *new_root)
{
	const char *rest = path + old_len;
	size_t n = strlen(new_root);
	char *out;

	/* Moving to the root ("") drops the separator after the prefix. */
	if (n == 0 && *rest == '/')
		rest++;
	out = malloc(n + strlen(rest) + 1);
	if (!out)
		return NULL;
	memcpy(out, new_root, n);
	strcpy(out + n, rest);
	return out;
}

/* An entry that a rename moves (new_path set) or detaches (NULL). */
struct move {
	struct inode *node;
	char *new_path;
};

/* Collect the linked entries at or below from and to into *moves, with
 * their new paths computed; nothing in the table changes yet. */
static int rename_plan(struct inode_table *t, const char *from,
		       const char *to, bool exchange, struct move **moves,
		       size_t *nmoves)
{
	struct move *list = NULL;
	size_t n = 0, cap = 0;

	for (uint64_t i = 0; i < t->nslots; i++) {
		struct inode *node = t->slots[i];
		long from_len, to_len;
		char *new_path = NULL;

		if (!node || !node->linked || node->ino == INODE_ROOT)
			continue;
		from_len = tree_prefix(node->path, from);
		to_len = tree_prefix(node->path, to);
		if (from_len < 0 && to_len < 0)
			continue;
		if (from_len >= 0) {
			new_path = path_replace_prefix(node->path, from_len,
						       to);
			if (!new_path)
				goto out_nomem;
		} else if (exchange) {
			new_path = path_replace_prefix(node->path, to_len,
						       from);
			if (!new_path)
				goto out_nomem;
		}
		if (n == cap) {
			struct move *bigger;

			cap = cap ? cap * 2 : 16;
			bigger = realloc(list, cap * sizeof(*list));
			if (!bigger) {
				free(new_path);
				goto out_nomem;
			}
			list = bigger;
		}
		list[n].node = node;
		list[n].new_path = new_path;
		n++;
	}
	*moves = list;
	*nmoves = n;
	return 0;

out_nomem:
	for (size_t i = 0; i < n; i++)
		free(list[i].new_path);
	free(list);
	return -ENOMEM;
}

int inode_rename(struct inode_table *t, const char *from, const char *to,
		 bool exchange)
{
	struct move *moves;
	size_t n;
	int ret;

	if (strcmp(from, to) == 0)
		return 0;
	pthread_mutex_lock(&t->lock);
	ret = rename_plan(t, from, to, exchange, &moves, &n);
	if (ret)
		goto out_unlock;

	/* Unhash everything first, so that no moved path meets one that
	 * has yet to move. */
	for (size_t i = 0; i < n; i++)
		hash_remove(t, moves[i].node);
	for (size_t i = 0; i < n; i++) {
		struct inode *node = moves[i].node;

		if (!moves[i].new_path)
			continue;
		free(node->path);
		node->path = moves[i].new_path;
		hash_insert(t, node);
	}
	hash_maybe_grow(t);
	free(moves);

out_unlock:
	pthread_mutex_unlock(&t->lock);
	return ret;
}

/* inode_unlink() with the lock held. */
static void unlink_locked(struct inode_table *t, const char *path,
			  bool tree)
{
	struct inode *node = hash_find(t, path);

	if (node)
		hash_remove(t, node);
	for (uint64_t i = 0; tree && i < t->nslots; i++) {
		node = t->slots[i];
		if (node && node->linked && tree_prefix(node->path, path) >= 0)
			hash_remove(t, node);
	}
}

void inode_unlink(struct inode_table *t, const char *path, bool tree)
{
	if (*path == '\0')
		return;
	pthread_mutex_lock(&t->lock);
	unlink_locked(t, path, tree);
	pthread_mutex_unlock(&t->lock);
}

uint64_t inode_count(struct inode_table *t)
{
	uint64_t n;

	pthread_mutex_lock(&t->lock);
	n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}
