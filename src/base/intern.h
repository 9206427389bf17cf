/*
 * intern.h - a string -> dense id table: ids count up
 * from 0 in order of first insertion; strings are kept NUL-terminated in one
 * growing arena. Not thread-safe.
 */
#ifndef TD_BASE_INTERN_H
#define TD_BASE_INTERN_H

#include <stddef.h>
#include <stdint.h>

struct intern {
	uint32_t *slots; /* id + 1, 0 = empty */
	size_t nslots;
	uint64_t *off; /* id -> offset of the string in arena */
	uint32_t *len;
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
	return t->arena + t->off[id];
}
static inline uint32_t intern_len(const struct intern *t, uint32_t id)
{
	return t->len[id];
}

#endif
