/*
 * applier.h - the thread that follows the WAL into the store: the WAL's
 * commit hook hands it every durable record, it applies them to the store in
 * LSN order and ticks the store (seal, flush) at least every 100 ms.
 *
 * Start-up: replay the WAL with applier_replay() (directly, before the WAL
 * takes appends), then applier_start() and wal_set_commit_hook(w,
 * applier_feed, applier_full, a). Stop: unhook, applier_stop() (applies what is queued),
 * then store_close() writes the rest.
 */
#ifndef TD_STORE_APPLIER_H
#define TD_STORE_APPLIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct wal_record;
struct applier;

int applier_start(struct applier **out, struct store *s);
void applier_stop(struct applier *a);
/* wal_commit_fn: copies the framed records into the queue. */
void applier_feed(void *applier, const void *records, size_t len);
/* For wal_set_commit_hook: true while too much waits to be applied. */
bool applier_full(void *applier);
/* A replay step for wal_open: applies an event record to the store (ctx). */
int applier_replay(struct store *s, const struct wal_record *rec);

#endif
