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
	free(t->ent);
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

static uint32_t hash32(const char *s, size_t len)
{
	return (uint32_t)XXH3_64bits(s, len);
}

/* The slot holding s (hash h), or the empty one where it would go. */
static size_t slot_of(const struct intern *t, uint32_t h, const char *s, size_t len)
{
	size_t mask = t->nslots - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		uint64_t v = t->slots[i];
		if (!v)
			return i;
		if ((uint32_t)(v >> 32) != h)
			continue;
		const struct intern_ent *e = &t->ent[(uint32_t)v - 1];
		if (e->len == len && memcmp(t->arena + e->off, s, len) == 0)
			return i;
	}
}

static void grow(struct intern *t)
{
	size_t n = t->nslots ? t->nslots * 2 : 1024, mask = n - 1;
	uint64_t *old = t->slots;
	size_t oldn = t->nslots;
	t->slots = td_calloc(n, sizeof(*t->slots));
	t->nslots = n;
	for (size_t k = 0; k < oldn; k++) {
		uint64_t v = old[k];
		if (!v)
			continue;
		size_t i = (uint32_t)(v >> 32) & mask;
		while (t->slots[i])
			i = (i + 1) & mask;
		t->slots[i] = v;
	}
	free(old);
}

uint32_t intern_find(const struct intern *t, const char *s, size_t len)
{
	if (!t->nslots)
		return UINT32_MAX;
	uint64_t v = t->slots[slot_of(t, hash32(s, len), s, len)];
	return v ? (uint32_t)v - 1 : UINT32_MAX;
}

uint32_t intern_id(struct intern *t, const char *s, size_t len)
{
	if ((size_t)t->n * 2 >= t->nslots)
		grow(t);
	uint32_t h = hash32(s, len);
	size_t i = slot_of(t, h, s, len);
	if (t->slots[i])
		return (uint32_t)t->slots[i] - 1;
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 1024;
		t->ent = td_realloc(t->ent, t->cap * sizeof(*t->ent));
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
	t->ent[t->n] = (struct intern_ent){.off = t->arena_len, .len = (uint32_t)len};
	t->arena_len += len + 1;
	t->slots[i] = (uint64_t)h << 32 | ++t->n;
	return t->n - 1;
}
