/*
 * metrics.h - process-wide counters and histograms, rendered in the
 * Prometheus text exposition format (version 0.0.4) for GET /metrics.
 * Counters are lock-free atomics, safe from any thread.
 */
#ifndef TD_OPS_METRICS_H
#define TD_OPS_METRICS_H

#include "base/buf.h"
#include "collect/collect.h"

#include <stdbool.h>
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

/* The collector's request latency histogram (per-bucket counts for the
 * bounds metrics_request_bounds, the last one +Inf); returns the count. */
#define METRICS_REQ_BUCKETS 12
extern const double metrics_request_bounds[METRICS_REQ_BUCKETS];
uint64_t metrics_request_histogram(uint64_t counts[METRICS_REQ_BUCKETS + 1]);
/* The q-quantile (0..1) of a histogram with per-bucket counts[0..n] for the
 * upper bounds[0..n) (counts[n]: above the last bound), interpolated
 * linearly inside the bucket as Prometheus' histogram_quantile does; a value
 * in the +Inf bucket is reported as the last bound. -1 if it is empty. */
double metrics_quantile(const double *bounds, const uint64_t *counts, size_t n, double q);

/*
 * Live counts (live.c): events accepted, rejected and deduplicated per
 * minute for the last LIVE_MINUTES minutes and per hour for the last
 * LIVE_HOURS hours, in memory since the process started, for source ids
 * 1..LIVE_MAX_SOURCES and for everything (source id 0). The metrics_event_*
 * calls record into source 0 and metrics_source_events into the source, so
 * the ingest path needs no other call. Lock-free on the hot path; any thread.
 */
#define LIVE_MINUTES	 1440
#define LIVE_HOURS	 168
#define LIVE_MAX_SOURCES METRICS_MAX_SOURCES
struct live_counts {
	uint64_t accepted, rejected, deduplicated;
};
/* Remembers when counting started (the first call wins). */
void live_start(int64_t now_ms);
/* 0 before live_start. */
int64_t live_started_ms(void);
void live_record(uint32_t source_id, int64_t now_ms, uint64_t accepted, uint64_t rejected,
		 uint64_t deduplicated);
/* out[i] = the counts of minute (hourly: hour) number first + i since the
 * epoch; zeros for times the ring does not hold. */
void live_read(uint32_t source_id, bool hourly, int64_t first, size_t n, struct live_counts *out);
/* When the newest counted request of the source arrived (ms); 0: none yet. */
int64_t live_last_ms(uint32_t source_id);

/* Appends the whole exposition to out. wal and ingest may be NULL. */
int metrics_render(struct td_buf *out, struct wal *w, struct ingest *g);
/* The event store's series (sizes, LSNs, lag behind the WAL, flushes, merges). */
struct store;
void metrics_render_store(struct td_buf *out, struct store *s, struct wal *w);

#endif
