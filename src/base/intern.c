/*
 * intern.c - string interning with open addressing (XXH3, linear probing,
 * load factor at most 1/2).
 */
#include "base/intern.h"
#include "base/td.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

void intern_init(struct intern *t)
{
	memset(t, 0, sizeof(*t));
}

void intern_release(struct intern *t)
{
	free(t->slots);
	free(t->off);
	free(t->len);
	free(t->arena);
	memset(t, 0, sizeof(*t));
}

void intern_clear(struct intern *t)
{
	if (t->slots)
		memset(t->slots, 0, t->nslots * sizeof(*t->slots));
	t->n = 0;
	t->arena_len = 0;
}

static size_t slot_of(const struct intern *t, const char *s, size_t len)
{
	size_t mask = t->nslots - 1;
	size_t i = (size_t)XXH3_64bits(s, len) & mask;
	for (;; i = (i + 1) & mask) {
		uint32_t v = t->slots[i];
		if (!v)
			return i;
		uint32_t id = v - 1;
		if (t->len[id] == len && memcmp(t->arena + t->off[id], s, len) == 0)
			return i;
	}
}

static void grow(struct intern *t)
{
	size_t n = t->nslots ? t->nslots * 2 : 1024;
	free(t->slots);
	t->slots = td_calloc(n, sizeof(*t->slots));
	t->nslots = n;
	for (uint32_t id = 0; id < t->n; id++)
		t->slots[slot_of(t, t->arena + t->off[id], t->len[id])] = id + 1;
}

uint32_t intern_find(const struct intern *t, const char *s, size_t len)
{
	if (!t->nslots)
		return UINT32_MAX;
	uint32_t v = t->slots[slot_of(t, s, len)];
	return v ? v - 1 : UINT32_MAX;
}

uint32_t intern_id(struct intern *t, const char *s, size_t len)
{
	if ((size_t)t->n * 2 >= t->nslots)
		grow(t);
	size_t i = slot_of(t, s, len);
	if (t->slots[i])
		return t->slots[i] - 1;
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 1024;
		t->off = td_realloc(t->off, t->cap * sizeof(*t->off));
		t->len = td_realloc(t->len, t->cap * sizeof(*t->len));
	}
	if (t->arena_len + len + 1 > t->arena_cap) {
		size_t c = t->arena_cap ? t->arena_cap * 2 : 65536;
		while (c < t->arena_len + len + 1)
			c *= 2;
		t->arena = td_realloc(t->arena, c);
		t->arena_cap = c;
	}
	memcpy(t->arena + t->arena_len, s, len);
	t->arena[t->arena_len + len] = '\0';
	t->off[t->n] = t->arena_len;
	t->len[t->n] = (uint32_t)len;
	t->arena_len += len + 1;
	t->slots[i] = ++t->n;
	return t->n - 1;
}
