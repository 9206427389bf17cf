/*
 * imgpool.c - buffers of in-memory segment images, kept for reuse.
 *
 * The applier seals its memtable into a fresh image every half second, and
 * the flusher frees the images once they are in a file. Fresh memory costs a
 * page fault and a zeroed page per 4 KiB written (large blocks come straight
 * from the kernel and go back to it when freed): measured, about a seventh
 * of the applier's time at 150,000 events/s. Freed images wait here instead
 * and the next seal writes into one that is already mapped.
 *
 * Bounded: at most IMGPOOL_MAX buffers and IMGPOOL_MAX_BYTES in all (the
 * largest is freed first when over); a buffer unused for IMGPOOL_IDLE_MS is
 * given back, so an idle server holds nothing here. Thread-safe.
 */
#include "base/td.h"
#include "store/seg.h"

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define IMGPOOL_MAX	  32
#define IMGPOOL_MAX_BYTES (1ull << 30)
#define IMGPOOL_IDLE_MS	  30000

struct pooled {
	void *p;
	size_t cap;
	int64_t since_ms;
};

static struct {
	pthread_mutex_t mu;
	struct pooled b[IMGPOOL_MAX];
	size_t n, bytes;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void take_out(size_t i)
{
	pool.bytes -= pool.b[i].cap;
	pool.b[i] = pool.b[--pool.n];
}

/* Under the lock: the buffers to free (idle ones) into out; returns how many. */
static size_t expire(int64_t now, void **out)
{
	size_t k = 0;
	for (size_t i = 0; i < pool.n;) {
		if (now - pool.b[i].since_ms >= IMGPOOL_IDLE_MS) {
			out[k++] = pool.b[i].p;
			take_out(i);
		} else {
			i++;
		}
	}
	return k;
}

void *seg_img_alloc(size_t need, size_t *cap)
{
	void *gone[IMGPOOL_MAX], *p = NULL;
	pthread_mutex_lock(&pool.mu);
	size_t ngone = expire(now_ms(), gone), best = SIZE_MAX;
	for (size_t i = 0; i < pool.n; i++)
		if (pool.b[i].cap >= need && (best == SIZE_MAX || pool.b[i].cap < pool.b[best].cap))
			best = i;
	if (best != SIZE_MAX) {
		p = pool.b[best].p;
		*cap = pool.b[best].cap;
		take_out(best);
	}
	pthread_mutex_unlock(&pool.mu);
	for (size_t i = 0; i < ngone; i++)
		free(gone[i]);
	if (!p) {
		p = td_try_malloc(need);
		*cap = p ? malloc_usable_size(p) : 0;
	}
	return p;
}

void seg_img_free(void *p)
{
	if (!p)
		return;
	size_t cap = malloc_usable_size(p);
	void *gone[IMGPOOL_MAX + 1];
	int64_t now = now_ms();
	pthread_mutex_lock(&pool.mu);
	size_t ngone = expire(now, gone);
	if (cap <= IMGPOOL_MAX_BYTES) {
		pool.b[pool.n++] = (struct pooled){p, cap, now};
		pool.bytes += cap;
		p = NULL;
		/* over a bound: the largest go */
		while (pool.n > IMGPOOL_MAX - 1 || pool.bytes > IMGPOOL_MAX_BYTES) {
			size_t big = 0;
			for (size_t i = 1; i < pool.n; i++)
				if (pool.b[i].cap > pool.b[big].cap)
					big = i;
			gone[ngone++] = pool.b[big].p;
			take_out(big);
		}
	}
	pthread_mutex_unlock(&pool.mu);
	free(p);
	for (size_t i = 0; i < ngone; i++)
		free(gone[i]);
}

size_t seg_img_pooled(size_t *bytes)
{
	pthread_mutex_lock(&pool.mu);
	size_t n = pool.n;
	if (bytes)
		*bytes = pool.bytes;
	pthread_mutex_unlock(&pool.mu);
	return n;
}
