#include "base/arena.h"
#include "base/td.h"

#include <stdint.h>
#include <stdlib.h>

struct td_arena_chunk {
	struct td_arena_chunk *next;
	size_t size, used;
	_Alignas(16) unsigned char mem[];
};

void td_arena_init(struct td_arena *a, size_t chunk_size)
{
	a->head = NULL;
	a->chunk_size = chunk_size ? chunk_size : 64 * 1024;
}

void *td_arena_alloc(struct td_arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct td_arena_chunk *c = a->head;
	if (!c || c->size - c->used < n) {
		size_t size = n > a->chunk_size ? n : a->chunk_size;
		c = td_malloc(sizeof(*c) + size);
		c->size = size;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	void *p = c->mem + c->used;
	c->used += n;
	return p;
}

bool td_arena_owns(const struct td_arena *a, const void *p)
{
	uintptr_t x = (uintptr_t)p;
	for (const struct td_arena_chunk *c = a->head; c; c = c->next)
		if (x >= (uintptr_t)c->mem && x < (uintptr_t)c->mem + c->size)
			return true;
	return false;
}

void td_arena_reset(struct td_arena *a)
{
	struct td_arena_chunk *c = a->head;
	if (!c)
		return;
	/* keep the oldest (first allocated) chunk if it has the default size */
	struct td_arena_chunk *keep = NULL;
	while (c) {
		struct td_arena_chunk *next = c->next;
		if (!next && c->size == a->chunk_size) {
			keep = c;
			keep->used = 0;
			keep->next = NULL;
		} else {
			free(c);
		}
		c = next;
	}
	a->head = keep;
}

void td_arena_release(struct td_arena *a)
{
	td_arena_reset(a);
	free(a->head);
	a->head = NULL;
}
