/*
 * ingtest.h - code shared by the ingest and checkpoint tests: a fresh
 * temporary data directory per test (it_setup / it_teardown; the WAL in
 * it_dir/wal, the checkpoint in it_dir/dedupe.ckpt), an ingest attached to
 * its WAL, and batches submitted from JSON.
 */
#ifndef TD_TESTS_COLLECT_INGTEST_H
#define TD_TESTS_COLLECT_INGTEST_H

#include "collect/collect.h"
#include "wal/wal.h"

#include <stddef.h>
#include <stdint.h>

extern char it_dir[64];

void it_setup(void);
void it_teardown(void);

struct it_env {
	struct ingest *g;
	struct wal *w;
};

/* An ingest with the given window, rebuilt from the WAL and attached to it
 * (queue_bytes 0: the default WAL queue). */
void it_env_open(struct it_env *e, int64_t window_ms, size_t queue_bytes);
/* The same, restoring the checkpoint first (*ckpt_lsn receives its LSN, 0 if
 * none) and replaying only the WAL records after it, as tandem serve does. */
void it_env_open_ckpt(struct it_env *e, int64_t window_ms, size_t queue_bytes, uint64_t *ckpt_lsn);
void it_env_close(struct it_env *e);
void it_ckpt_path(char *out, size_t cap);

/* Prepares `body` (a batch) as source `source` received at `now`. */
void it_prep(struct collect_batch *b, const char *body, uint32_t source, int64_t now);
/* Submits it and waits until it is durable. */
void it_submit(struct it_env *e, const char *body, uint32_t source, int64_t now,
	       struct ingest_result *res);
/* Records in the WAL, read with a reader. */
size_t it_count_records(void);

#endif
