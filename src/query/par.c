/*
 * par.c - fork-join inside one query: a loop over independent tasks run on
 * up to q->nthreads threads, the calling thread among them.
 *
 * Threads are started per loop and joined before it returns (a query runs
 * a handful of loops, and starting a thread costs tens of microseconds, far
 * below a loop worth splitting). Tasks are handed out one at a time from an
 * atomic counter, so uneven tasks balance themselves.
 *
 * Rules for tasks (they run concurrently): no arena allocation except
 * qa_try_big_realloc(), no output, no qerr(); each task writes only memory
 * that belongs to it (its own slot of a result array, or the scratch of its
 * worker number) and reports errors through it.
 */
#include "query/query_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define QPAR_ROWS_PER_THREAD 262144 /* below this, another thread does not pay */

struct qpar {
	void (*task)(void *arg, size_t i, unsigned worker);
	void *arg;
	size_t ntasks;
	atomic_size_t next;
};

struct qpar_worker {
	struct qpar *p;
	unsigned id;
	pthread_t th;
};

static void drain(struct qpar *p, unsigned worker)
{
	for (;;) {
		size_t i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
		if (i >= p->ntasks)
			return;
		p->task(p->arg, i, worker);
	}
}

static void *worker_main(void *arg)
{
	struct qpar_worker *w = arg;
	drain(w->p, w->id);
	return NULL;
}

unsigned qpar_cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return n > QUERY_MAX_THREADS ? QUERY_MAX_THREADS : (unsigned)n;
}

unsigned qpar_threads(const struct qctx *q, uint64_t rows)
{
	if (!q->threads_auto || q->nthreads <= 1)
		return q->nthreads ? q->nthreads : 1;
	uint64_t want = rows / QPAR_ROWS_PER_THREAD;
	if (want < 1)
		return 1;
	return want < q->nthreads ? (unsigned)want : q->nthreads;
}

void qpar_for(unsigned nthreads, size_t ntasks, void (*task)(void *arg, size_t i, unsigned worker),
	      void *arg)
{
	struct qpar p = {.task = task, .arg = arg, .ntasks = ntasks};
	atomic_init(&p.next, 0);
	if (nthreads > ntasks)
		nthreads = ntasks ? (unsigned)ntasks : 1;
	struct qpar_worker w[QUERY_MAX_THREADS];
	unsigned started = 0;
	for (unsigned t = 1; t < nthreads && t < QUERY_MAX_THREADS; t++) {
		w[t].p = &p;
		w[t].id = t;
		/* a thread that cannot start leaves its share to the others */
		if (pthread_create(&w[t].th, NULL, worker_main, &w[t]) != 0)
			break;
		started = t;
	}
	drain(&p, 0);
	for (unsigned t = 1; t <= started; t++)
		pthread_join(w[t].th, NULL);
}
