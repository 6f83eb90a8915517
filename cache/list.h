/* list.h - intrusive doubly linked lists, circular with a head node. */
#ifndef NEARFS_LIST_H
#define NEARFS_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_node {
	struct list_node *prev, *next;
};

static inline void list_init(struct list_node *head)
{
	head->prev = head->next = head;
}

static inline bool list_is_empty(const struct list_node *head)
{
	return head->next == head;
}

/* Insert node before head, which makes it the last element. */
static inline void list_add_tail(struct list_node *head,
				 struct list_node *node)
{
	node->prev = head->prev;
	node->next = head;
	head->prev->next = node;
	head->prev = node;
}

static inline void list_del(struct list_node *node)
{
	node->prev->next = node->next;
	node->next->prev = node->prev;
	node->prev = node->next = node;
}

#define list_entry(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#endif
