/*
 * intern.h - a string -> dense id table: ids count up
 * from 0 in order of first insertion; strings are kept NUL-terminated in one
 * growing arena. Not thread-safe.
 */
#ifndef TD_BASE_INTERN_H
#define TD_BASE_INTERN_H

#include <stddef.h>
#include <stdint.h>

struct intern_ent {
	uint64_t off; /* of the string in arena */
	uint32_t len;
};

struct intern {
	/* low 32 bits: id + 1 (0 = empty); high 32: the low half of the string's
	 * hash, which is also where its probe starts. Probes compare it before
	 * touching the string, so a miss costs one cache line, not three. */
	uint64_t *slots;
	size_t nslots;
	struct intern_ent *ent; /* by id */
	uint32_t n, cap;
	char *arena;
	size_t arena_len, arena_cap;
};

void intern_init(struct intern *t);
void intern_release(struct intern *t);
/* Empties the table, keeping its memory. */
void intern_clear(struct intern *t);
/* The id of s (len bytes), inserting it if new. */
uint32_t intern_id(struct intern *t, const char *s, size_t len);
/* The id of s, or UINT32_MAX if absent. */
uint32_t intern_find(const struct intern *t, const char *s, size_t len);
static inline const char *intern_str(const struct intern *t, uint32_t id)
{
	return t->arena + t->ent[id].off;
}
static inline uint32_t intern_len(const struct intern *t, uint32_t id)
{
	return t->ent[id].len;
}

#endif
