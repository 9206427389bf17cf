/*
 * funnel_seq.h - what the files of the sequential funnel path share:
 * funnel_seq.c (the plan, and the design in its opening comment),
 * funnel_part.c (the partition of rows into entries by person bucket) and
 * funnel_walk.c (the walk of one bucket). Nothing else includes it.
 */
#ifndef TD_QUERY_FUNNEL_SEQ_H
#define TD_QUERY_FUNNEL_SEQ_H

#include "query/query_int.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Person state of one bucket: about this much, so that it stays in L2 with
 * the bucket's entries. */
#define FS_STATE_BYTES (192 * 1024)
#define FS_MAX_BUCKETS 4096	  /* fan-out of the partition */
#define FS_SLICE       (1u << 20) /* most rows per partition task (a multiple of 64) */
#define FS_NO_TIME     INT64_MIN  /* no chain yet: beyond any window (see within()) */
/* Merged ids read their canonical ids from a packed table (struct
 * qcanon_packed) from this many persons on: canonical[] no longer stays in
 * cache while the rows of merged ids read it at random. */
#define FS_PACKED_FROM 65536

/* The rows of one step in a slice of a chunk. */
struct fs_job {
	const struct query_chunk *c;
	size_t lo, hi;
	const uint64_t *pass; /* bit i: row lo + i passes the step's selector; NULL: all */
	uint32_t step;	      /* 0-based */
	uint64_t base;	      /* its entries are at e + base (room for hi - lo) */
	uint64_t *off;	      /* nb + 1: those of bucket b at e + base + [off[b], off[b + 1]) */
	int rc;		      /* TD_ECORRUPT: bad is a stored id out of range, or whose
			       * canonical id is */
	uint32_t bad;
};

/* A worker's scratch and results (tasks write only their worker's). */
struct fs_worker {
	/* partition */
	uint32_t *canon; /* canonical ids of the slice's passing rows */
	uint64_t *pos;	 /* per bucket: where the slice's next entry goes */
	/* walk */
	uint64_t *buf, *tmp;   /* step 1's runs when they overlap, and merge room */
	uint64_t *rbuf, *rtmp; /* a later step's runs, and merge room */
	size_t *ends;	       /* run ends */
	uint64_t *key[2];      /* passing entries of the last two steps... */
	int64_t *start[2];     /* ... and the starts of their chains */
	int64_t *s0;	       /* per person: time of the latest step-1 entry, or FS_NO_TIME */
	int64_t *st;	       /* per person: start and time of the latest passing entry of
				* the previous step (start FS_NO_TIME: none yet) */
	uint8_t *lvl;	       /* per person: furthest step >= 2 reached (0: none), then
				* the level (count_levels()) */
	uint64_t count[QUERY_MAX_STEPS]; /* persons at step s + 1 */
	int64_t *ms[QUERY_MAX_STEPS];	 /* conversion times by step */
	uint64_t *hist;			 /* and by qfunnel_bin(), QFUNNEL_BINS per step */
	size_t nms[QUERY_MAX_STEPS], capms[QUERY_MAX_STEPS];
	int rc;
};

/* One funnel: the plan, read by every task; the entries, written by the
 * partition and read by the walk. */
struct fs_par {
	struct fs_job *jobs;
	size_t njobs;
	size_t *group_last; /* per run group: its last job (jobs of a group are consecutive) */
	size_t ngroups;
	size_t sgroup[QUERY_MAX_STEPS + 1]; /* step s's groups: [sgroup[s], sgroup[s + 1]) */
	const uint32_t *canonical;
	const uint64_t *moved;	 /* ids whose canonical id is another; NULL: none */
	struct qcanon_packed pk; /* with moved, from FS_PACKED_FROM persons: packed */
	uint32_t np;
	unsigned shift, sbits; /* LB and SB of the entries (funnel_seq.c) */
	size_t nb;	       /* buckets */
	int64_t tmin, window;
	int nsteps;
	uint64_t *e; /* the entries */
	struct fs_worker *w;
	uint64_t *persons; /* as in struct qfunnel_seq */
	int64_t p_step;
	bool p_dropped;
	struct qarena *arena;
};

/* Partitions slice ji into entries (a qpar_for() task over the jobs). */
void fs_part_task(void *arg, size_t ji, unsigned worker);
/* Walks bucket b (a qpar_for() task over the buckets). */
void fs_walk_task(void *arg, size_t b, unsigned worker);

#endif
