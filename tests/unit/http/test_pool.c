/*
 * test_pool.c - the worker pool that runs queries off the event-loop
 * threads: every job runs or is cancelled exactly once, the queue is
 * bounded, stop waits for running jobs.
 */
#include "base/td.h"
#include "http/http_int.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

static _Atomic int ran, cancelled;
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static _Atomic int waiting; /* jobs blocked at the gate */

static void run_counted(void *arg)
{
	atomic_fetch_add(&ran, 1);
	atomic_fetch_add((_Atomic int *)arg, 1);
}

/* Blocks until the gate opens: a long query. */
static void run_gated(void *arg)
{
	atomic_fetch_add(&waiting, 1);
	pthread_mutex_lock(&gate_mu);
	while (!gate_open)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
	run_counted(arg);
}

static void cancel_counted(void *arg)
{
	atomic_fetch_add(&cancelled, 1);
	atomic_fetch_add((_Atomic int *)arg, 1);
}

static void open_gate(void)
{
	pthread_mutex_lock(&gate_mu);
	gate_open = true;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

static void *stop_thread(void *p)
{
	http_pool_stop(p);
	return NULL;
}

static void reset(void)
{
	ran = cancelled = waiting = 0;
	gate_open = false;
}

Test(http_pool, runs_every_job_once, .init = reset)
{
	struct http_pool *p;
	cr_assert_eq(http_pool_start(&p, 2, 1000), 0);
	_Atomic int per_job[500];
	for (int i = 0; i < 500; i++) {
		per_job[i] = 0;
		struct http_job j = {run_counted, cancel_counted, &per_job[i]};
		cr_assert_eq(http_pool_submit(p, &j), 0);
	}
	for (int i = 0; i < 2000 && atomic_load(&ran) < 500; i++)
		usleep(1000);
	http_pool_stop(p);
	cr_assert_eq(ran, 500);
	cr_assert_eq(cancelled, 0);
	for (int i = 0; i < 500; i++)
		cr_assert_eq(per_job[i], 1, "job %d ran %d times", i, per_job[i]);
}

Test(http_pool, bounded_queue_and_stop_cancels_waiting_jobs, .init = reset)
{
	struct http_pool *p;
	_Atomic int n[6] = {0};
	cr_assert_eq(http_pool_start(&p, 2, 3), 0);
	/* two long jobs occupy both workers */
	for (int i = 0; i < 2; i++) {
		struct http_job j = {run_gated, cancel_counted, &n[i]};
		cr_assert_eq(http_pool_submit(p, &j), 0);
	}
	for (int i = 0; i < 2000 && atomic_load(&waiting) < 2; i++)
		usleep(1000);
	cr_assert_eq(waiting, 2);
	/* three wait in the queue, the fourth is refused */
	for (int i = 2; i < 5; i++) {
		struct http_job j = {run_counted, cancel_counted, &n[i]};
		cr_assert_eq(http_pool_submit(p, &j), 0);
	}
	struct http_job extra = {run_counted, cancel_counted, &n[5]};
	cr_assert_eq(http_pool_submit(p, &extra), TD_EFULL);
	/* stop from another thread while the long jobs still run */
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, stop_thread, p), 0);
	for (int i = 0; i < 2000 && atomic_load(&cancelled) < 3; i++)
		usleep(1000);
	cr_assert_eq(cancelled, 3, "queued jobs are cancelled at once");
	cr_assert_eq(ran, 0, "running jobs are not interrupted");
	open_gate();
	pthread_join(t, NULL);
	cr_assert_eq(ran, 2);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(n[i], 1, "job %d: %d", i, n[i]);
	cr_assert_eq(n[5], 0);
}

Test(http_pool, stop_of_null_is_a_no_op)
{
	http_pool_stop(NULL);
}
