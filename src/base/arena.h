/*
 * arena.h - a bump allocator for request-scoped memory (h2o's mem pool habit):
 * allocations are freed all at once by td_arena_reset(). Not thread-safe;
 * use one arena per thread.
 */
#ifndef TD_BASE_ARENA_H
#define TD_BASE_ARENA_H

#include <stdbool.h>
#include <stddef.h>

struct td_arena_chunk;

struct td_arena {
	struct td_arena_chunk *head; /* newest chunk first */
	size_t chunk_size;
};

void td_arena_init(struct td_arena *a, size_t chunk_size);
/* 16-byte aligned; aborts on out-of-memory like td_malloc. Valid until reset. */
void *td_arena_alloc(struct td_arena *a, size_t n);
/* True if p points into memory this arena handed out. */
bool td_arena_owns(const struct td_arena *a, const void *p);
/* Frees everything but the first chunk, which is kept for reuse. */
void td_arena_reset(struct td_arena *a);
void td_arena_release(struct td_arena *a);

#endif
