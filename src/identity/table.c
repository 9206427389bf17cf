/*
 * table.c - the identifier hash table (see identity_int.h): 96-bit hashes
 * and ids in one 16-byte slot, linear probing, doubled past 70 % full.
 */
#include "base/td.h"
#include "identity/identity_int.h"

#include <stdlib.h>
#include <xxhash.h>

struct identity_hash identity_hash_key(const char *key, size_t len)
{
	XXH128_hash_t h = XXH3_128bits(key, len);
	return (struct identity_hash){h.low64, (uint32_t)h.high64};
}

static size_t slot_of(const struct identity_table *t, struct identity_hash h)
{
	size_t i = (size_t)h.h0 & t->mask;
	for (;; i = (i + 1) & t->mask) {
		const struct identity_slot *s = &t->slots[i];
		if (!s->id || (s->h0 == h.h0 && s->h1 == h.h1))
			return i;
	}
}

uint32_t identity_table_find(const struct identity_table *t, struct identity_hash h)
{
	if (!t->slots)
		return IDENTITY_NONE;
	const struct identity_slot *s = &t->slots[slot_of(t, h)];
	return s->id ? s->id - 1 : IDENTITY_NONE;
}

static void grow(struct identity_table *t)
{
	size_t n = t->slots ? (t->mask + 1) * 2 : 4096;
	struct identity_slot *old = t->slots;
	size_t oldn = t->slots ? t->mask + 1 : 0;
	t->slots = td_calloc(n, sizeof(*t->slots));
	t->mask = n - 1;
	for (size_t i = 0; i < oldn; i++)
		if (old[i].id)
			t->slots[slot_of(t, (struct identity_hash){old[i].h0, old[i].h1})] = old[i];
	free(old);
}

void identity_table_put(struct identity_table *t, struct identity_hash h, uint32_t id)
{
	if (!t->slots || (t->n + 1) * 10 > (t->mask + 1) * 7)
		grow(t);
	struct identity_slot *s = &t->slots[slot_of(t, h)];
	if (!s->id)
		t->n++;
	*s = (struct identity_slot){h.h0, h.h1, id + 1};
}

void identity_table_release(struct identity_table *t)
{
	free(t->slots);
	t->slots = NULL;
	t->mask = t->n = 0;
}
