/*
 * applier.c - the store's single writer thread (see applier.h).
 */
#include "store/applier.h"
#include "base/log.h"
#include "base/td.h"
#include "store/store.h"
#include "wal/wal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Past this many bytes waiting for the store, the WAL refuses appends (429). */
/* (64 MiB is about 0.3 s of applying: queries stay within a second of the
 * acknowledgement even while ingest is held back.) */
#define APPLIER_MAX_BACKLOG (64u << 20)

struct applier {
	struct store *s;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	unsigned char *q; /* framed records waiting */
	size_t qlen, qcap;
	size_t queued;	 /* bytes in q (atomic: read without the lock) */
	size_t applying; /* bytes of the batch being applied not yet applied (atomic) */
	bool stop;
	uint64_t replayed;
};

void applier_feed(void *ctx, const void *records, size_t len)
{
	struct applier *a = ctx;
	pthread_mutex_lock(&a->mu);
	if (a->qlen + len > a->qcap) {
		size_t c = a->qcap ? a->qcap : (1u << 20);
		while (c < a->qlen + len)
			c *= 2;
		a->q = td_realloc(a->q, c);
		a->qcap = c;
	}
	memcpy(a->q + a->qlen, records, len);
	a->qlen += len;
	__atomic_store_n(&a->queued, a->qlen, __ATOMIC_RELAXED);
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->mu);
}

bool applier_full(void *ctx)
{
	struct applier *a = ctx;
	return __atomic_load_n(&a->queued, __ATOMIC_RELAXED) +
		   __atomic_load_n(&a->applying, __ATOMIC_RELAXED) >
	       APPLIER_MAX_BACKLOG;
}

static void apply_frames(struct applier *a, const unsigned char *p, size_t len)
{
	size_t pos = 0;
	unsigned k = 0;
	while (pos + WAL_REC_HEADER <= len) {
		uint32_t n;
		uint64_t lsn;
		memcpy(&n, p + pos, 4);
		memcpy(&lsn, p + pos + 8, 8);
		uint8_t type = p[pos + 16];
		if (n > len - pos - WAL_REC_HEADER)
			break; /* cannot happen: the WAL hands whole records */
		if (type == WAL_REC_EVENT &&
		    store_apply(a->s, lsn, p + pos + WAL_REC_HEADER, n) == TD_ECORRUPT)
			td_log_warn("store: WAL record %llu is not a valid event; skipped",
				    (unsigned long long)lsn);
		pos += WAL_REC_HEADER + n;
		if (++k % 1024 == 0) /* let ingest resume as the backlog shrinks */
			__atomic_store_n(&a->applying, len - pos, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&a->applying, 0, __ATOMIC_RELAXED);
}

static void *applier_main(void *arg)
{
	pthread_setname_np(pthread_self(), "td-apply");
	struct applier *a = arg;
	unsigned char *work = NULL;
	size_t workcap = 0;
	pthread_mutex_lock(&a->mu);
	for (;;) {
		if (a->qlen == 0 && !a->stop) {
			struct timespec t;
			clock_gettime(CLOCK_REALTIME, &t);
			t.tv_nsec += 100 * 1000000L;
			if (t.tv_nsec >= 1000000000L) {
				t.tv_sec++;
				t.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&a->cond, &a->mu, &t);
		}
		/* swap the queue out, apply without the lock */
		unsigned char *q = a->q;
		size_t qlen = a->qlen, qcap = a->qcap;
		a->q = work;
		a->qcap = workcap;
		a->qlen = 0;
		/* counts as waiting until applied: apply_frames counts it down */
		__atomic_store_n(&a->applying, qlen, __ATOMIC_RELAXED);
		__atomic_store_n(&a->queued, 0, __ATOMIC_RELAXED);
		bool stop = a->stop;
		pthread_mutex_unlock(&a->mu);
		if (qlen)
			apply_frames(a, q, qlen);
		store_tick(a->s, false);
		work = q;
		workcap = qcap;
		pthread_mutex_lock(&a->mu);
		if (stop && a->qlen == 0)
			break;
	}
	pthread_mutex_unlock(&a->mu);
	free(work);
	return NULL;
}

int applier_start(struct applier **out, struct store *s)
{
	struct applier *a = td_calloc(1, sizeof(*a));
	a->s = s;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cond, NULL);
	if (pthread_create(&a->thread, NULL, applier_main, a)) {
		free(a);
		return TD_ENOMEM;
	}
	*out = a;
	return 0;
}

void applier_stop(struct applier *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = true;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->thread, NULL);
	free(a->q);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cond);
	free(a);
}

int applier_replay(struct store *s, const struct wal_record *rec)
{
	if (rec->type != WAL_REC_EVENT || rec->lsn <= store_flushed_lsn(s))
		return 0;
	if (store_apply(s, rec->lsn, rec->payload, rec->len) == TD_ECORRUPT)
		td_log_warn("store: WAL record %llu is not a valid event; skipped",
			    (unsigned long long)rec->lsn);
	store_tick(s, false); /* a failed flush is logged and retried later */
	return 0;
}
