/*
 * metrics.h - process-wide counters and histograms, rendered in the
 * Prometheus text exposition format (version 0.0.4) for GET /metrics.
 * Counters are lock-free atomics, safe from any thread.
 */
#ifndef TD_OPS_METRICS_H
#define TD_OPS_METRICS_H

#include "base/buf.h"
#include "collect/collect.h"

#include <stdint.h>

struct wal;
struct ingest;

void metrics_event_accepted(uint64_t n);
void metrics_event_duplicate(uint64_t n);
void metrics_event_rejected(enum collect_reason r, uint64_t n);
/* Requests refused as a whole: "unauthorized", "overloaded", "unavailable". */
void metrics_request_refused(const char *why);
void metrics_request_observe(double seconds);

/* Per-source counts (sources with id < METRICS_MAX_SOURCES; the rest are
 * summed under source="other"). name is copied the first time an id is seen. */
#define METRICS_MAX_SOURCES 1024
void metrics_source_events(uint32_t source_id, const char *name, uint64_t accepted,
			   uint64_t duplicates, uint64_t rejected);

uint64_t metrics_accepted_total(void);

/* Appends the whole exposition to out. wal and ingest may be NULL. */
int metrics_render(struct td_buf *out, struct wal *w, struct ingest *g);
/* The event store's series (sizes, LSNs, lag behind the WAL, flushes, merges). */
struct store;
void metrics_render_store(struct td_buf *out, struct store *s, struct wal *w);

#endif
