/*
 * store_bench.c - the event store end to end: generated journeys go through
 * the collector's normalization into the store (apply, seal, flush, merge),
 * then the four queries run on a snapshot of it.
 *
 * usage: store_bench [--events N] [--users N] [--days N] [--dir DIR] [--reuse]
 *                    [--runs N] [--threads N]
 *
 * Building: a generator thread produces messages and normalizes them into WAL
 * payloads (what the collector does before the WAL); the main thread applies
 * them to the store, as the applier would. The figure "apply" counts only the
 * applier's time, which is what has to keep up with the collector. With
 * --reuse and an existing DIR the build is skipped (queries only).
 */
#include "base/td.h"
#include "base/timeutil.h"
#include "collect/collect.h"
#include "demo/demo.h"
#include "query/query.h"
#include "store/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define BATCH 4096

struct batch {
	struct collect_batch b;
	bool last;
};

struct pipe {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct batch *q[4];
	size_t head, n;
	struct demo_options o;
	struct batch *cur;
	struct collect_limits lim;
	struct collect_origin origin;
};

static void push(struct pipe *p, struct batch *b)
{
	pthread_mutex_lock(&p->mu);
	while (p->n == TD_ARRAY_LEN(p->q))
		pthread_cond_wait(&p->cond, &p->mu);
	p->q[(p->head + p->n++) % TD_ARRAY_LEN(p->q)] = b;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mu);
}

static struct batch *pop(struct pipe *p)
{
	pthread_mutex_lock(&p->mu);
	while (p->n == 0)
		pthread_cond_wait(&p->cond, &p->mu);
	struct batch *b = p->q[p->head];
	p->head = (p->head + 1) % TD_ARRAY_LEN(p->q);
	p->n--;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mu);
	return b;
}

static struct batch *new_batch(void)
{
	struct batch *b = td_calloc(1, sizeof(*b));
	collect_batch_init(&b->b);
	return b;
}

static int emit(void *ctx, const char *line, size_t len)
{
	struct pipe *p = ctx;
	collect_prepare_line(line, len - 1, 0, &p->origin, &p->lim, &p->cur->b);
	if (p->cur->b.n == BATCH) {
		push(p, p->cur);
		p->cur = new_batch();
	}
	return 0;
}

static void *producer(void *arg)
{
	struct pipe *p = arg;
	p->cur = new_batch();
	if (demo_generate(&p->o, emit, p))
		fprintf(stderr, "store_bench: generator failed\n");
	p->cur->last = true;
	push(p, p->cur);
	return NULL;
}

static double now_s(void)
{
	return (double)td_mono_ns() / 1e9;
}

/* CPU time of the calling thread: the applier's cost, whatever else runs. */
static double cpu_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int build(const char *dir, const struct demo_options *o)
{
	struct store_options so = {.dir = dir};
	struct store *s;
	if (store_open(&s, &so)) {
		fprintf(stderr, "store_bench: cannot open %s\n", dir);
		return 1;
	}
	struct pipe p = {.o = *o};
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cond, NULL);
	collect_limits_default(&p.lim);
	p.origin.source_id = 1;
	p.origin.received_ms = o->end_ms;
	pthread_t th;
	pthread_create(&th, NULL, producer, &p);
	double t0 = now_s(), busy = 0, applying = 0, last_print = t0;
	uint64_t lsn = 0;
	for (;;) {
		struct batch *b = pop(&p);
		double a = cpu_s();
		for (size_t i = 0; i < b->b.n; i++)
			store_apply(s, ++lsn, b->b.payloads.data + b->b.off[i], b->b.len[i]);
		double m = cpu_s();
		store_tick(s, false);
		busy += cpu_s() - a;
		applying += m - a;
		bool last = b->last;
		collect_batch_release(&b->b);
		free(b);
		if (now_s() - last_print > 5) {
			last_print = now_s();
			fprintf(stderr, "  %llu events applied (%.0f s)\n", (unsigned long long)lsn,
				last_print - t0);
		}
		if (last)
			break;
	}
	pthread_join(th, NULL);
	double a = cpu_s();
	store_tick(s, true);
	busy += cpu_s() - a;
	double wall = now_s() - t0;
	printf("build: %llu events in %.1f s wall; applier CPU %.1f s = %.0f events/s per core "
	       "(apply + seal + flush)\n",
	       (unsigned long long)lsn, wall, busy, (double)lsn / busy);
	printf("       of which store_apply (parse, intern) %.1f s, seal + flush %.1f s\n",
	       applying, busy - applying);
	a = now_s();
	store_close(s); /* waits for the merge thread */
	printf("close (final merge): %.1f s\n", now_s() - a);
	return 0;
}

static double run_query(const struct query_source *src, const char *q, int runs, char *first,
			size_t cap, int threads)
{
	double best = 1e9;
	for (int r = 0; r < runs; r++) {
		struct td_buf out;
		td_buf_init(&out, 256u << 20);
		char err[300];
		double t = now_s();
		int rc = query_run(q, strlen(q), src, &out, err, sizeof(err));
		t = now_s() - t;
		if (rc) {
			fprintf(stderr, "query failed: %s\n", err);
			exit(1);
		}
		if (t < best)
			best = t;
		if (r == 0)
			snprintf(first, cap, "%.200s", out.data);
		td_buf_release(&out);
	}
	(void)threads;
	return best * 1000;
}

int main(int argc, char **argv)
{
	store_tune_malloc();
	struct demo_options o;
	demo_options_default(&o);
	o.events = 10000000;
	o.users = 300000;
	o.days = 90;
	o.end_ms = 1711929600000LL; /* 2024-04-01T00:00:00Z */
	const char *dir = "/tmp/tandem-store-bench";
	bool reuse = false;
	int runs = 3, threads = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--events") && v)
			o.events = strtoull(v, NULL, 10), i++;
		else if (!strcmp(a, "--users") && v)
			o.users = (uint32_t)strtoul(v, NULL, 10), i++;
		else if (!strcmp(a, "--days") && v)
			o.days = (uint32_t)strtoul(v, NULL, 10), i++;
		else if (!strcmp(a, "--dir") && v)
			dir = v, i++;
		else if (!strcmp(a, "--runs") && v)
			runs = strtol(v, NULL, 10) > 0 ? (int)strtol(v, NULL, 10) : 1, i++;
		else if (!strcmp(a, "--threads") && v)
			threads = (int)strtol(v, NULL, 10), i++;
		else if (!strcmp(a, "--reuse"))
			reuse = true;
		else {
			fprintf(
			    stderr,
			    "usage: store_bench [--events N] [--users N] [--days N] [--dir DIR] "
			    "[--reuse] [--runs N] [--threads N]\n");
			return 2;
		}
	}
	char man[4200];
	snprintf(man, sizeof(man), "%s/MANIFEST", dir);
	struct stat sb;
	if (!(reuse && stat(man, &sb) == 0)) {
		printf("building %s: %llu events, %u users, %u days\n", dir,
		       (unsigned long long)o.events, o.users, o.days);
		if (build(dir, &o))
			return 1;
	}
	struct store_options so = {.dir = dir, .read_only = true};
	struct store *s;
	if (store_open(&s, &so)) {
		fprintf(stderr, "store_bench: cannot open %s\n", dir);
		return 1;
	}
	struct store_stats st;
	store_get_stats(s, &st);
	double n = (double)(st.rows ? st.rows : 1);
	printf("store: %llu events, %llu persons, %llu segments, %.1f MB\n",
	       (unsigned long long)st.rows, (unsigned long long)st.pids,
	       (unsigned long long)st.segments, (double)st.segment_bytes / 1e6);
	printf("bytes per event: time %.2f + person %.2f + name/directory %.2f = core %.2f; "
	       "property columns %.2f; raw messages %.2f; total %.2f\n",
	       (double)st.bytes_ts / n, (double)st.bytes_pid / n, (double)st.bytes_name / n,
	       (double)(st.bytes_ts + st.bytes_pid + st.bytes_name) / n, (double)st.bytes_props / n,
	       (double)st.bytes_raw / n, (double)st.segment_bytes / n);
	static const struct {
		const char *name, *q;
		double target_ms;
	} qs[] = {
	    {"trend: count per day of one event, 90 days",
	     "{\"kind\":\"trends\",\"series\":[{\"event\":\"Product Viewed\"}],\"interval\":"
	     "\"day\",\"date_from\":\"2024-01-02\",\"date_to\":\"2024-03-31\"}",
	     50},
	    {"unique persons per day, all events",
	     "{\"kind\":\"trends\",\"series\":[{\"event\":\"\",\"math\":\"unique_persons\"}],"
	     "\"interval\":\"day\",\"date_from\":\"2024-01-02\",\"date_to\":\"2024-03-31\"}",
	     300},
	    {"4-step sequential funnel, 7-day window",
	     "{\"kind\":\"funnel\",\"steps\":[{\"event\":\"Product Viewed\"},{\"event\":"
	     "\"Product Added\"},{\"event\":\"Checkout Started\"},{\"event\":\"Order "
	     "Completed\"}],\"window\":\"7d\"}",
	     300},
	    {"weekly retention, 8 periods",
	     "{\"kind\":\"retention\",\"start\":{\"event\":\"$page\"},\"return\":{\"event\":"
	     "\"Order Completed\"},\"period\":\"week\",\"periods\":8,\"date_from\":"
	     "\"2024-01-01\",\"date_to\":\"2024-03-31\"}",
	     300},
	};
	struct store_snap *sn = store_snapshot(s);
	printf("\n%-45s %10s %10s  %s\n", "query (best of runs, warm)", "ms", "target", "");
	for (size_t i = 0; i < TD_ARRAY_LEN(qs); i++) {
		char first[256];
		run_query(store_snap_source(sn), qs[i].q, 1, first, sizeof(first), threads);
		double ms =
		    run_query(store_snap_source(sn), qs[i].q, runs, first, sizeof(first), threads);
		printf("%-45s %10.1f %10.0f  %s\n", qs[i].name, ms, qs[i].target_ms,
		       ms <= qs[i].target_ms ? "PASS" : "MISS");
	}
	store_snap_release(sn);
	store_close(s);
	return 0;
}
