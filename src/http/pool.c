/*
 * pool.c - worker threads for requests too slow for the event-loop threads
 * (queries): a bounded FIFO of jobs taken by a few threads.
 *
 * The workers run at a lower scheduling priority (nice +5) than the rest of
 * the process, so on a busy machine the collector's loop threads and the WAL
 * writer get the CPU first and a long query cannot slow acknowledgements.
 */
#include "http/http_int.h"
#include "base/log.h"
#include "base/td.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define POOL_NICE 5

/* Locking: mu guards q, head, n and stopping; threads is written only by
 * start and stop. */
struct http_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct http_job *q; /* ring of cap jobs, n queued from head */
	size_t cap, head, n;
	bool stopping;
	bool closed; /* http_pool_close ran (owner thread only) */
	pthread_t *threads;
	unsigned nthreads;
};

static void *worker(void *arg)
{
	pthread_setname_np(pthread_self(), "td-query");
	struct http_pool *p = arg;
	/* Linux: the nice value is per thread */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), POOL_NICE) != 0)
		td_log_warn("http: could not lower the priority of a query thread");
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->n && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		if (!p->n)
			break; /* stopping, nothing left */
		struct http_job job = p->q[p->head];
		p->head = (p->head + 1) % p->cap;
		p->n--;
		pthread_mutex_unlock(&p->mu);
		job.run(job.arg);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int http_pool_start(struct http_pool **out, unsigned threads, size_t max_queued)
{
	struct http_pool *p = td_calloc(1, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->cap = max_queued ? max_queued : 1;
	p->q = td_calloc(p->cap, sizeof(*p->q));
	p->threads = td_calloc(threads ? threads : 1, sizeof(*p->threads));
	for (unsigned i = 0; i < (threads ? threads : 1); i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
			td_log_error("http: cannot start query worker thread %u", i);
			http_pool_stop(p);
			return TD_ENOMEM;
		}
		p->nthreads++;
	}
	*out = p;
	return 0;
}

int http_pool_submit(struct http_pool *p, const struct http_job *job)
{
	int rc = 0;
	pthread_mutex_lock(&p->mu);
	if (p->stopping)
		rc = TD_ECLOSED;
	else if (p->n == p->cap)
		rc = TD_EFULL;
	else {
		p->q[(p->head + p->n) % p->cap] = *job;
		p->n++;
		pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

void http_pool_close(struct http_pool *p)
{
	if (!p || p->closed)
		return;
	p->closed = true;
	/* Queued jobs are cancelled, running ones finish; later submits fail. */
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	struct http_job *left = td_calloc(p->n + 1, sizeof(*left));
	size_t nleft = 0;
	for (; p->n; p->n--, p->head = (p->head + 1) % p->cap)
		left[nleft++] = p->q[p->head];
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (size_t i = 0; i < nleft; i++)
		left[i].cancel(left[i].arg);
	free(left);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
}

void http_pool_stop(struct http_pool *p)
{
	if (!p)
		return;
	http_pool_close(p);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p->q);
	free(p);
}
