/*
 * ingest.c - exactly-once acceptance: the dedupe index and the WAL append.
 *
 * Locking: ingest.mu protects the dedupe table and is held across the whole
 * check-then-append of a batch, so two requests carrying the same messageId
 * can never both be appended. Lock order: ingest.mu, then the WAL's own lock
 * (taken inside wal_append). The WAL's rollback hook takes ingest.mu without
 * holding the WAL lock.
 */
#include "collect/collect.h"
#include "base/td.h"
#include "wal/wal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct slot {
	uint64_t h1, h2; /* XXH3-128 of (source id, messageId) */
	uint64_t lsn;	 /* of the stored copy; 0 = empty slot */
	int64_t recv_ms; /* when the stored copy was received */
};

struct ingest {
	pthread_mutex_t mu;
	struct slot *slots;
	size_t mask, used;
	int64_t window_ms;
	struct wal *wal;
};

struct ingest *ingest_new(int64_t window_ms)
{
	struct ingest *g = td_calloc(1, sizeof(*g));
	pthread_mutex_init(&g->mu, NULL);
	g->mask = (1u << 16) - 1;
	g->slots = td_calloc(g->mask + 1, sizeof(*g->slots));
	g->window_ms = window_ms;
	return g;
}

void ingest_free(struct ingest *g)
{
	if (!g)
		return;
	pthread_mutex_destroy(&g->mu);
	free(g->slots);
	free(g);
}

static void rollback(void *ctx, uint64_t first);

void ingest_attach(struct ingest *g, struct wal *w)
{
	g->wal = w;
	wal_set_rollback(w, rollback, g);
}

size_t ingest_dedupe_size(struct ingest *g)
{
	pthread_mutex_lock(&g->mu);
	size_t n = g->used;
	pthread_mutex_unlock(&g->mu);
	return n;
}

static void key_hash(uint32_t source, const char *mid, size_t mlen, uint64_t *h1, uint64_t *h2)
{
	char key[4 + COLLECT_MSGID_MAX];
	memcpy(key, &source, 4);
	memcpy(key + 4, mid, mlen);
	XXH128_hash_t h = XXH3_128bits(key, 4 + mlen);
	*h1 = h.low64;
	*h2 = h.high64;
}

/* Rebuilds the table into `cap` slots keeping live entries with lsn < below
 * and received at or after `since`. */
static void rebuild(struct ingest *g, size_t cap, int64_t since, uint64_t below)
{
	struct slot *old = g->slots;
	size_t oldn = g->mask + 1;
	g->slots = td_calloc(cap, sizeof(*g->slots));
	g->mask = cap - 1;
	g->used = 0;
	for (size_t i = 0; i < oldn; i++) {
		struct slot *s = &old[i];
		if (!s->lsn || s->recv_ms < since || s->lsn >= below)
			continue;
		size_t j = s->h1 & g->mask;
		while (g->slots[j].lsn)
			j = (j + 1) & g->mask;
		g->slots[j] = *s;
		g->used++;
	}
	free(old);
}

/* Finds the slot of a key, or the empty slot where it would go. */
static struct slot *find(struct ingest *g, uint64_t h1, uint64_t h2)
{
	size_t j = h1 & g->mask;
	for (;;) {
		struct slot *s = &g->slots[j];
		if (!s->lsn || (s->h1 == h1 && s->h2 == h2))
			return s;
		j = (j + 1) & g->mask;
	}
}

static void insert(struct ingest *g, uint64_t h1, uint64_t h2, uint64_t lsn, int64_t recv,
		   int64_t now)
{
	/* at most half full: linear probing stays short, and a probe is a cache
	 * miss once the table outgrows the caches */
	if ((g->used + 1) * 2 > g->mask + 1) {
		size_t cap = g->mask + 1;
		rebuild(g, cap, now - g->window_ms, UINT64_MAX);
		if ((g->used + 1) * 8 > cap * 3)
			rebuild(g, cap * 2, now - g->window_ms, UINT64_MAX);
	}
	struct slot *s = find(g, h1, h2);
	if (!s->lsn)
		g->used++;
	*s = (struct slot){h1, h2, lsn, recv};
}

int ingest_replay(void *ctx, const struct wal_record *rec)
{
	struct ingest *g = ctx;
	struct collect_event_view v;
	if (rec->type != WAL_REC_EVENT || collect_event_decode(rec->payload, rec->len, &v))
		return 0;
	int64_t now = v.received_ms; /* replay runs in time order; window checked at lookup */
	if (v.id_assigned)
		return 0;
	uint64_t h1, h2;
	key_hash(v.source_id, v.message_id, v.message_id_len, &h1, &h2);
	insert(g, h1, h2, rec->lsn, v.received_ms, now);
	return 0;
}

/* The WAL lost every record from `first` on: forget their dedupe entries so
 * a retry of those messages is stored, not mistaken for a duplicate. */
static void rollback(void *ctx, uint64_t first)
{
	struct ingest *g = ctx;
	pthread_mutex_lock(&g->mu);
	rebuild(g, g->mask + 1, INT64_MIN, first);
	pthread_mutex_unlock(&g->mu);
}

void ingest_submit(struct ingest *g, const struct collect_batch *b, int64_t now,
		   struct ingest_result *res)
{
	memset(res, 0, sizeof(*res));
	if (!g->wal) {
		res->error = TD_ECLOSED;
		return;
	}
	pthread_mutex_lock(&g->mu);
	/* all or nothing: a batch the WAL cannot take now is refused whole, so a
	 * client retrying after 429/503 never finds half of it already stored */
	size_t bytes = 0;
	for (size_t i = 0; i < b->n; i++)
		bytes += b->len[i];
	res->error = b->n ? wal_reserve_check(g->wal, bytes, b->n) : 0;
	if (res->error == TD_EFULL && bytes + b->n * WAL_REC_HEADER > wal_max_pending(g->wal))
		res->error = 0; /* larger than the whole queue: append what fits, wait, go on */
	if (res->error) {
		pthread_mutex_unlock(&g->mu);
		return;
	}
	for (size_t i = 0; i < b->n; i++) {
		const char *p = b->payloads.data + b->off[i];
		struct collect_event_view v;
		collect_event_decode(p, b->len[i], &v);
		uint64_t h1 = 0, h2 = 0;
		if (!v.id_assigned) {
			key_hash(v.source_id, v.message_id, v.message_id_len, &h1, &h2);
			struct slot *s = find(g, h1, h2);
			if (s->lsn && s->recv_ms >= now - g->window_ms) {
				res->duplicates++;
				if (s->lsn > res->wait_lsn)
					res->wait_lsn = s->lsn;
				continue;
			}
		}
		uint64_t lsn;
		int rc = wal_append(g->wal, WAL_REC_EVENT, p, b->len[i], &lsn);
		if (rc) {
			res->error = rc;
			break;
		}
		if (!v.id_assigned)
			insert(g, h1, h2, lsn, v.received_ms, now);
		res->accepted++;
		res->wait_lsn = lsn;
	}
	pthread_mutex_unlock(&g->mu);
}
