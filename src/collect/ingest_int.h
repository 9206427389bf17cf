/*
 * ingest_int.h - the dedupe index's structures, shared by ingest.c (submit,
 * replay, rollback) and checkpoint.c (saving and loading it). Not public.
 *
 * Locking: ingest.mu protects the shards, the pending list and last_lsn (see
 * ingest.c); ck_mu the checkpoint statistics; save_mu is held through one
 * whole checkpoint save.
 */
#ifndef TD_COLLECT_INGEST_INT_H
#define TD_COLLECT_INGEST_INT_H

#include "collect/collect.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define NSHARDS	    64
#define EPOCH_MS    1577836800000LL /* 2020-01-01: seconds count from here */
#define SEC_EXPIRED 1u		    /* a rolled-back entry: never inside the window */

struct slot {
	uint64_t h1;  /* low 64 bits of the hash */
	uint32_t h2;  /* 32 more bits */
	uint32_t sec; /* 0 = empty slot, else seconds since EPOCH_MS + 2 (to 2156) */
};

struct shard {
	struct slot *slots;
	size_t mask, used; /* used counts every non-empty slot */
	size_t dead;	   /* of those, taken back (SEC_EXPIRED) */
};

/* Messages appended but maybe not durable yet, oldest first: what a failed
 * WAL write takes back. */
struct pend {
	uint64_t h1, lsn;
	uint32_t h2;
};

struct ingest {
	pthread_mutex_t mu;
	struct shard shards[NSHARDS];
	uint32_t window_sec;
	struct wal *wal;
	uint64_t last_lsn; /* last LSN this ingest appended */
	struct pend *pend;
	size_t pend_head, npend, cappend;

	/* checkpoint.c */
	uint64_t replay_after_lsn; /* covered by the loaded checkpoint: ingest_replay
				    * skips records at or below it (set before replay) */
	pthread_mutex_t save_mu;   /* one checkpoint save at a time */
	pthread_mutex_t ck_mu;	   /* guards ck */
	struct ingest_checkpoint_stats ck;
};

static inline uint32_t second_of(int64_t ms)
{
	int64_t sec = (ms - EPOCH_MS) / 1000 + 2;
	return sec < 2 ? 2 : sec > UINT32_MAX ? UINT32_MAX : (uint32_t)sec;
}

static inline bool is_live(const struct slot *s, uint32_t now_sec, uint32_t window)
{
	/* 64-bit sum: a second near 2^32 (read from a file) must not wrap */
	return s->sec > SEC_EXPIRED && (uint64_t)s->sec + window >= now_sec;
}

static inline struct shard *shard_of(struct ingest *g, uint64_t h1)
{
	return &g->shards[h1 >> 58];
}

/* The slot of a key, or the empty slot where it would go. */
static inline struct slot *find(struct shard *sh, uint64_t h1, uint32_t h2)
{
	size_t j = h1 & sh->mask;
	for (;;) {
		struct slot *s = &sh->slots[j];
		if (!s->sec || (s->h1 == h1 && s->h2 == h2))
			return s;
		j = (j + 1) & sh->mask;
	}
}

/* Remembers a key received in second `sec` (g->mu held). */
void ingest_insert(struct ingest *g, uint64_t h1, uint32_t h2, uint32_t sec, uint32_t now_sec);

#endif
