/*
 * live.c - what the collector took, per minute (the last 24 h) and per hour
 * (the last 7 days), in memory since the process started: GET /api/stats/live
 * and GET /api/health/data read it.
 *
 * Cost on the ingest path: a few relaxed atomic adds per request (not per
 * event), into rings of buckets indexed by minute (hour) number modulo the
 * ring size. A bucket carries the number of the minute it counts (plus 1;
 * 0 = never used); the first writer of a new minute takes rotate_mu, zeroes
 * the bucket and publishes the new number with a release store, so a writer
 * that sees the new number adds after the zeroing. That lock is taken about
 * once per minute per series.
 */
#include "ops/metrics.h"
#include "base/td.h"
#include "base/timeutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct bucket {
	_Atomic int64_t stamp; /* minute (hour) number + 1 it counts; 0 = unused */
	_Atomic uint64_t accepted, rejected, deduplicated;
};

struct series {
	struct bucket minutes[LIVE_MINUTES];
	struct bucket hours[LIVE_HOURS];
	_Atomic int64_t last_ms; /* newest receivedAt */
};

/* [0]: every source (and requests refused before a source was known) */
static _Atomic(struct series *) series[LIVE_MAX_SOURCES + 1];
static pthread_mutex_t rotate_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int64_t started_ms;

static struct series *get_series(size_t i)
{
	struct series *s = atomic_load_explicit(&series[i], memory_order_acquire);
	if (s)
		return s;
	struct series *fresh = td_calloc(1, sizeof(*fresh));
	if (atomic_compare_exchange_strong(&series[i], &s, fresh))
		return fresh;
	free(fresh); /* another thread was first; s is its series */
	return s;
}

static void bump(struct bucket *b, int64_t stamp, uint64_t a, uint64_t r, uint64_t d)
{
	int64_t cur = atomic_load_explicit(&b->stamp, memory_order_acquire);
	if (cur != stamp) {
		if (cur > stamp)
			return; /* the ring moved past this time already */
		pthread_mutex_lock(&rotate_mu);
		cur = atomic_load_explicit(&b->stamp, memory_order_relaxed);
		if (cur < stamp) {
			atomic_store_explicit(&b->accepted, 0, memory_order_relaxed);
			atomic_store_explicit(&b->rejected, 0, memory_order_relaxed);
			atomic_store_explicit(&b->deduplicated, 0, memory_order_relaxed);
			atomic_store_explicit(&b->stamp, stamp, memory_order_release);
		}
		pthread_mutex_unlock(&rotate_mu);
		if (cur > stamp)
			return;
	}
	if (a)
		atomic_fetch_add_explicit(&b->accepted, a, memory_order_relaxed);
	if (r)
		atomic_fetch_add_explicit(&b->rejected, r, memory_order_relaxed);
	if (d)
		atomic_fetch_add_explicit(&b->deduplicated, d, memory_order_relaxed);
}

void live_start(int64_t now_ms)
{
	int64_t zero = 0;
	atomic_compare_exchange_strong(&started_ms, &zero, now_ms);
}

int64_t live_started_ms(void)
{
	return atomic_load(&started_ms);
}

void live_record(uint32_t source_id, int64_t now_ms, uint64_t accepted, uint64_t rejected,
		 uint64_t deduplicated)
{
	if (!(accepted | rejected | deduplicated) || now_ms < 0 ||
	    (source_id && source_id > LIVE_MAX_SOURCES))
		return;
	struct series *s = get_series(source_id);
	int64_t minute = now_ms / 60000, hour = now_ms / 3600000;
	bump(&s->minutes[minute % LIVE_MINUTES], minute + 1, accepted, rejected, deduplicated);
	bump(&s->hours[hour % LIVE_HOURS], hour + 1, accepted, rejected, deduplicated);
	int64_t last = atomic_load_explicit(&s->last_ms, memory_order_relaxed);
	while (last < now_ms &&
	       !atomic_compare_exchange_weak_explicit(&s->last_ms, &last, now_ms,
						      memory_order_relaxed, memory_order_relaxed))
		;
}

void live_read(uint32_t source_id, bool hourly, int64_t first, size_t n, struct live_counts *out)
{
	memset(out, 0, n * sizeof(*out));
	struct series *s = source_id <= LIVE_MAX_SOURCES
			       ? atomic_load_explicit(&series[source_id], memory_order_acquire)
			       : NULL;
	if (!s)
		return;
	struct bucket *ring = hourly ? s->hours : s->minutes;
	int64_t size = hourly ? LIVE_HOURS : LIVE_MINUTES;
	for (size_t i = 0; i < n; i++) {
		int64_t t = first + (int64_t)i;
		if (t < 0)
			continue;
		struct bucket *b = &ring[t % size];
		if (atomic_load_explicit(&b->stamp, memory_order_acquire) != t + 1)
			continue;
		out[i].accepted = atomic_load_explicit(&b->accepted, memory_order_relaxed);
		out[i].rejected = atomic_load_explicit(&b->rejected, memory_order_relaxed);
		out[i].deduplicated = atomic_load_explicit(&b->deduplicated, memory_order_relaxed);
	}
}

int64_t live_last_ms(uint32_t source_id)
{
	struct series *s = source_id <= LIVE_MAX_SOURCES
			       ? atomic_load_explicit(&series[source_id], memory_order_acquire)
			       : NULL;
	return s ? atomic_load_explicit(&s->last_ms, memory_order_relaxed) : 0;
}
