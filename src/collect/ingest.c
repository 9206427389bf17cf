/*
 * ingest.c - exactly-once acceptance: the dedupe index and the WAL append.
 *
 * The index maps (source, messageId) to the second the stored copy was
 * received. A key is its 128-bit XXH3 hash, of which 96 bits are kept: 64
 * pick the shard and slot, 32 more confirm (a false "duplicate" needs two
 * different keys to agree on 96 bits: about 1 in 10^10 after a billion
 * messages in the window). 16 bytes a slot, tables kept 35-70% full: under
 * 50 bytes per remembered message. 64 shards grow one at a time, so growing
 * never stalls ingest for long.
 *
 * Locking: ingest.mu protects everything here and is held across the whole
 * check-then-append of a batch, so two requests carrying the same messageId
 * can never both be appended. Lock order: ingest.mu, then the WAL's own lock
 * (taken inside wal_append). The WAL's rollback hook takes ingest.mu without
 * holding the WAL lock.
 */
#include "collect/ingest_int.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "wal/wal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct ingest *ingest_new(int64_t window_ms)
{
	struct ingest *g = td_calloc(1, sizeof(*g));
	pthread_mutex_init(&g->mu, NULL);
	pthread_mutex_init(&g->save_mu, NULL);
	pthread_mutex_init(&g->ck_mu, NULL);
	for (int i = 0; i < NSHARDS; i++) {
		g->shards[i].mask = 1023;
		g->shards[i].slots = td_calloc(1024, sizeof(struct slot));
	}
	int64_t ws = (window_ms + 999) / 1000;
	g->window_sec = ws > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)ws;
	return g;
}

void ingest_free(struct ingest *g)
{
	if (!g)
		return;
	pthread_mutex_destroy(&g->mu);
	pthread_mutex_destroy(&g->save_mu);
	pthread_mutex_destroy(&g->ck_mu);
	for (int i = 0; i < NSHARDS; i++)
		free(g->shards[i].slots);
	free(g->pend);
	free(g);
}

size_t ingest_dedupe_size(struct ingest *g)
{
	size_t n = 0;
	pthread_mutex_lock(&g->mu);
	for (int i = 0; i < NSHARDS; i++)
		n += g->shards[i].used - g->shards[i].dead;
	pthread_mutex_unlock(&g->mu);
	return n; /* entries past the window count until a shard is rebuilt */
}

static void key_hash(uint32_t source, const char *mid, size_t mlen, uint64_t *h1, uint32_t *h2)
{
	char key[4 + COLLECT_MSGID_MAX];
	memcpy(key, &source, 4);
	memcpy(key + 4, mid, mlen);
	XXH128_hash_t h = XXH3_128bits(key, 4 + mlen);
	*h1 = h.low64;
	*h2 = (uint32_t)h.high64;
}

/* Rehashes a shard, dropping expired entries, into a size that leaves it at
 * most half full. */
static void rebuild(struct ingest *g, struct shard *sh, uint32_t now_sec)
{
	size_t live = 0, cap = sh->mask + 1;
	for (size_t i = 0; i < cap; i++)
		live += is_live(&sh->slots[i], now_sec, g->window_sec);
	size_t ncap = 1024;
	while ((live + 1) * 2 > ncap)
		ncap *= 2;
	struct slot *old = sh->slots;
	sh->slots = td_calloc(ncap, sizeof(*sh->slots));
	sh->mask = ncap - 1;
	sh->used = 0;
	sh->dead = 0;
	for (size_t i = 0; i < cap; i++) {
		if (!is_live(&old[i], now_sec, g->window_sec))
			continue;
		*find(sh, old[i].h1, old[i].h2) = old[i];
		sh->used++;
	}
	free(old);
}

void ingest_insert(struct ingest *g, uint64_t h1, uint32_t h2, uint32_t sec, uint32_t now_sec)
{
	struct shard *sh = shard_of(g, h1);
	if ((sh->used + 1) * 10 > (sh->mask + 1) * 7)
		rebuild(g, sh, now_sec);
	struct slot *s = find(sh, h1, h2);
	if (!s->sec)
		sh->used++;
	else if (s->sec == SEC_EXPIRED)
		sh->dead--;
	*s = (struct slot){h1, h2, sec};
}

int ingest_replay(void *ctx, const struct wal_record *rec)
{
	struct ingest *g = ctx;
	struct collect_event_view v;
	if (rec->lsn <= g->replay_after_lsn)
		return 0; /* in the checkpoint already */
	if (rec->type != WAL_REC_EVENT || collect_event_decode(rec->payload, rec->len, &v) ||
	    v.id_assigned)
		return 0;
	uint32_t now_sec = second_of(td_now_ms()), at = second_of(v.received_ms);
	if (at + g->window_sec < now_sec)
		return 0; /* already outside the window */
	uint64_t h1;
	uint32_t h2;
	key_hash(v.source_id, v.message_id, v.message_id_len, &h1, &h2);
	ingest_insert(g, h1, h2, at, now_sec);
	return 0;
}

/* Takes an entry back: it stays in place (probe chains go on through it)
 * but never counts as seen. */
static void forget(struct ingest *g, uint64_t h1, uint32_t h2)
{
	struct shard *sh = shard_of(g, h1);
	struct slot *s = find(sh, h1, h2);
	if (s->sec && s->sec != SEC_EXPIRED) {
		s->sec = SEC_EXPIRED;
		sh->dead++;
	}
}

/* The WAL lost every record from `first` on: forget their entries so a retry
 * of those messages is stored, not mistaken for a duplicate. */
static void rollback(void *ctx, uint64_t first)
{
	struct ingest *g = ctx;
	pthread_mutex_lock(&g->mu);
	for (size_t i = g->pend_head; i < g->npend; i++) {
		struct pend *p = &g->pend[i];
		if (p->lsn < first)
			continue;
		forget(g, p->h1, p->h2);
	}
	g->pend_head = g->npend = 0;
	g->last_lsn = first - 1;
	pthread_mutex_unlock(&g->mu);
}

void ingest_attach(struct ingest *g, struct wal *w)
{
	g->wal = w;
	wal_set_rollback(w, rollback, g);
}

/* Drops pending entries the WAL has made durable. */
static void trim_pending(struct ingest *g)
{
	uint64_t durable = wal_durable_lsn(g->wal);
	while (g->pend_head < g->npend && g->pend[g->pend_head].lsn <= durable)
		g->pend_head++;
	if (g->pend_head == g->npend) {
		g->pend_head = g->npend = 0;
	} else if (g->pend_head > 4096 && g->pend_head * 2 > g->npend) {
		memmove(g->pend, g->pend + g->pend_head,
			(g->npend - g->pend_head) * sizeof(*g->pend));
		g->npend -= g->pend_head;
		g->pend_head = 0;
	}
}

/*
 * Events [from, to) of b, all or nothing: duplicates are looked up, the new
 * events are remembered and appended with one wal_append_many(), so one
 * commit makes them all durable or loses them all. Called with g->mu held.
 */
static int submit_range(struct ingest *g, const struct collect_batch *b, size_t from, size_t to,
			uint32_t now_sec, struct ingest_result *res)
{
	size_t n = to - from, nnew = 0, ndup = 0;
	struct wal_iov *iov = td_malloc(n * sizeof(*iov));
	struct pend *keys = td_malloc(n * sizeof(*keys)); /* the new ones' keys, lsn 0 = none */
	for (size_t i = from; i < to; i++) {
		const char *p = b->payloads.data + b->off[i];
		struct collect_event_view v;
		collect_event_decode(p, b->len[i], &v);
		struct pend k = {0, 0, 0};
		if (!v.id_assigned) {
			key_hash(v.source_id, v.message_id, v.message_id_len, &k.h1, &k.h2);
			struct slot *s = find(shard_of(g, k.h1), k.h1, k.h2);
			if (is_live(s, now_sec, g->window_sec)) {
				ndup++; /* stored before, or earlier in this batch */
				continue;
			}
			ingest_insert(g, k.h1, k.h2, second_of(v.received_ms), now_sec);
			k.lsn = 1; /* remembered: needs a pending entry */
		}
		keys[nnew] = k;
		iov[nnew++] = (struct wal_iov){p, b->len[i]};
	}
	uint64_t first = 0;
	int rc = nnew ? wal_append_many(g->wal, WAL_REC_EVENT, iov, nnew, &first) : 0;
	for (size_t k = 0; k < nnew; k++) {
		if (!keys[k].lsn)
			continue;
		if (rc) { /* not appended: forget it again */
			forget(g, keys[k].h1, keys[k].h2);
			continue;
		}
		if (g->npend == g->cappend) {
			g->cappend = g->cappend ? g->cappend * 2 : 1024;
			g->pend = td_realloc(g->pend, g->cappend * sizeof(*g->pend));
		}
		g->pend[g->npend++] = (struct pend){keys[k].h1, first + k, keys[k].h2};
	}
	free(iov);
	free(keys);
	if (rc)
		return rc;
	if (nnew)
		g->last_lsn = first + nnew - 1;
	res->accepted += nnew;
	res->duplicates += ndup;
	/* a duplicate's stored copy was appended before now: once everything
	 * appended so far is durable, so is it */
	if (nnew || ndup)
		res->wait_lsn = g->last_lsn;
	return 0;
}

void ingest_submit(struct ingest *g, const struct collect_batch *b, int64_t now,
		   struct ingest_result *res)
{
	memset(res, 0, sizeof(*res));
	if (!g->wal) {
		res->error = TD_ECLOSED;
		return;
	}
	uint32_t now_sec = second_of(now);
	pthread_mutex_lock(&g->mu);
	trim_pending(g);
	size_t bytes = 0;
	for (size_t i = 0; i < b->n; i++)
		bytes += b->len[i] + WAL_REC_HEADER;
	size_t cap = wal_max_pending(g->wal);
	if (bytes <= cap) {
		res->error = submit_range(g, b, 0, b->n, now_sec, res);
	} else {
		/* larger than the WAL queue can ever hold at once (a queue set
		 * smaller than a batch): append it in pieces that fit, in order */
		for (size_t from = 0; from < b->n && !res->error;) {
			size_t to = from, piece = 0;
			while (to < b->n &&
			       (to == from || piece + b->len[to] + WAL_REC_HEADER <= cap))
				piece += b->len[to++] + WAL_REC_HEADER;
			res->error = submit_range(g, b, from, to, now_sec, res);
			from = to;
		}
	}
	pthread_mutex_unlock(&g->mu);
}
