/*
 * retention.c - retention: of the persons who did the start event in a
 * period (their first time ever, or any time), how many did the return
 * event 0, 1, ..., N-1 periods later.
 *
 * Per cohort period C and person p this is ClickHouse's
 *   retention(start in C, return in C, return in C+1, ..., return in C+N-1)
 * summed over persons (docs/queries.md spells out the mapping). Both
 * events become (person, period) pairs; a counting sort by person puts
 * each person's pairs together and they are matched there.
 */
#include "query/query_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { COHORT_FIRST, COHORT_RECURRING };

struct retention {
	struct qsel start, ret;
	int cohort;
	enum qinterval iv;
	int64_t periods;
	int64_t k0, k1; /* cohort period keys */
};

static int parse(struct qctx *q, struct retention *r)
{
	static const char *const keys[] = {"kind",     "start",	  "return",	  "cohort",
					   "period",   "periods", "date_from",	  "date_to",
					   "timezone", "filters", "include_bots", NULL};
	int rc = qj_keys(q, q->root, "", keys);
	if (rc || (rc = qj_time(q, true)))
		return rc;
	const cJSON *js = cJSON_GetObjectItemCaseSensitive(q->root, "start");
	const cJSON *jr = cJSON_GetObjectItemCaseSensitive(q->root, "return");
	if (!js)
		return qerr(q, "start: required ({\"event\": ..., \"filters\": [...]})");
	if (!jr)
		return qerr(q, "return: required ({\"event\": ..., \"filters\": [...]})");
	if ((rc = qsel_parse(q, js, "start", NULL, true, &r->start)) ||
	    (rc = qsel_parse(q, jr, "return", NULL, true, &r->ret)))
		return rc;
	static const char *const cohorts[] = {"first_time", "recurring", NULL};
	static const char *const ivs[] = {"day", "week", "month", NULL};
	r->cohort = COHORT_FIRST;
	r->iv = QI_DAY;
	r->periods = 8;
	if ((rc = qj_enum(q, q->root, "cohort", "", cohorts, &r->cohort)) ||
	    (rc = qj_interval(q, q->root, "period", "", ivs, &r->iv)) ||
	    (rc = qj_int(q, q->root, "periods", "", 1, QUERY_MAX_PERIODS, &r->periods)))
		return rc;
	struct qbucketer b;
	qbucketer_init(&b, &q->tz, r->iv);
	r->k0 = qbucketer_key(&b, q->range.from);
	r->k1 = qbucketer_key(&b, q->range.to - 1);
	if (r->k1 - r->k0 + 1 > QUERY_MAX_BUCKETS)
		return qerr(q, "date_to: the range holds %lld cohorts; at most %d",
			    (long long)(r->k1 - r->k0 + 1), QUERY_MAX_BUCKETS);
	return 0;
}

/* First instant of period key. */
static int64_t period_start(const struct qctx *q, const struct retention *r, int64_t key)
{
	return query_tz_to_utc(&q->tz, q_bucket_local_start(r->iv, key));
}

/* Rows of spans one at a time: calls row(ctx, ts, person) for every
 * passing row. */
static int span_rows(struct qctx *q, const struct qspan *sp, size_t n,
		     void (*row)(struct qctx *q, void *ctx, int64_t ts, uint32_t person), void *ctx)
{
	for (size_t s = 0; s < n; s++) {
		const struct qspan *x = &sp[s];
		for (size_t i = x->lo; i < x->hi; i++) {
			if (x->pass && !qbit(x->pass, i - x->lo))
				continue;
			uint32_t person;
			if (qperson(q, x->c->pid[i], &person))
				return qerr_pid(q, x->c->pid[i]);
			row(q, ctx, x->c->ts[i], person);
		}
	}
	return 0;
}

struct rpairs {
	struct qbucketer b;
	int64_t base, nkeys;
	struct qvec *pp, *pk;
	int64_t *first; /* first_pairs(): earliest start per person */
};

static void pair_row(struct qctx *q, void *ctx, int64_t ts, uint32_t person)
{
	struct rpairs *rp = ctx;
	/* a clock set back across a period boundary can give an instant inside
	 * [from, to) a key outside: skip it */
	int64_t k = qbucketer_key(&rp->b, ts) - rp->base;
	if (k < 0 || k >= rp->nkeys)
		return;
	*(uint32_t *)qvec_push(&q->arena, rp->pp) = person;
	*(uint32_t *)qvec_push(&q->arena, rp->pk) = (uint32_t)k;
}

/* (person, period key - base) pairs of sel's rows in [from, to). */
static int pairs(struct qctx *q, const struct retention *r, const struct qsel *sel, int64_t from,
		 int64_t to, int64_t base, int64_t nkeys, struct qvec *pp, struct qvec *pk)
{
	struct rpairs rp = {.base = base, .nkeys = nkeys, .pp = pp, .pk = pk};
	qbucketer_init(&rp.b, &q->tz, r->iv);
	struct qspan *sp;
	size_t n;
	int rc = qspans_get(q, sel, from, to, &sp, &n);
	return rc ? rc : span_rows(q, sp, n, pair_row, &rp);
}

static void first_row(struct qctx *q, void *ctx, int64_t ts, uint32_t person)
{
	struct rpairs *rp = ctx;
	(void)q;
	if (ts < rp->first[person])
		rp->first[person] = ts;
}

/* First start event of every person, over all time before the last cohort ends. */
static int first_pairs(struct qctx *q, const struct retention *r, int64_t to, struct qvec *pp,
		       struct qvec *pk)
{
	uint32_t np = q->src->npersons;
	struct rpairs rp = {0};
	rp.first = qa_big_realloc(&q->arena, NULL, ((size_t)np + 1) * sizeof(int64_t));
	for (uint32_t p = 0; p < np; p++)
		rp.first[p] = INT64_MAX;
	struct qspan *sp;
	size_t n;
	int rc = qspans_get(q, &r->start, INT64_MIN, to, &sp, &n);
	if (rc || (rc = span_rows(q, sp, n, first_row, &rp)))
		return rc;
	struct qbucketer b;
	qbucketer_init(&b, &q->tz, r->iv);
	for (uint32_t p = 0; p < np; p++) {
		if (rp.first[p] == INT64_MAX)
			continue;
		int64_t k = qbucketer_key(&b, rp.first[p]);
		if (k < r->k0 || k > r->k1)
			continue;
		*(uint32_t *)qvec_push(&q->arena, pp) = p;
		*(uint32_t *)qvec_push(&q->arena, pk) = (uint32_t)(k - r->k0);
	}
	qa_big_free(&q->arena, rp.first);
	return 0;
}

/* The cohorts and return periods of a query: [coh_from, coh_to) holds the
 * cohort periods, returns count until ret_to. */
struct rwin {
	size_t ncoh, N;
	int64_t coh_from, coh_to, ret_to;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* Sorts and dedupes a small array in place; returns the new length. */
static size_t uniq(uint32_t *v, size_t n)
{
	if (n < 2)
		return n;
	q_qsort(v, n, sizeof(*v), cmp_u32);
	size_t u = 0;
	for (size_t i = 0; i < n; i++)
		if (u == 0 || v[u - 1] != v[i])
			v[u++] = v[i];
	return u;
}

/* ---- with person bitmaps ---------------------------------------------
 *
 * Each run of time with one period key (scan.c) gets a bitmap of the persons
 * with a return row in it, and one of those with a start row (the same
 * bitmaps when both selectors are the same). A person's first-time cohort is
 * the key of the first run, in time order, where they have a start row (and
 * none when they have one before the first cohort); the recurring cohorts
 * are the keys of every run where they have one. Then size[c] and
 * val[c][k] are bit counts of cohort c's bitmap, alone and ANDed with the
 * return bitmap of period c + k. Every step is a parallel loop: marking
 * (a task per run), cohorts (a task per block of words: the first-time rule
 * looks at one person's bits across runs), counting (a task per cohort).
 * The bitmaps take npersons / 8 bytes each, so this path is taken when
 * they fit in RB_BUDGET (and in half the query's memory limit). */

#define RB_BUDGET      (256u << 20)
#define RB_BLOCK_WORDS 4096 /* words of a cohort task */

struct rjob {
	const struct qspan *sp;
	size_t nsp;
	int64_t from, to;
	uint64_t *bits;
	int rc;
	uint32_t bad;
};

struct rbits {
	const struct query_source *src;
	const uint64_t *moved;
	struct rjob *jobs;
	size_t nw;
	uint64_t *raw; /* per worker: stored ids of a job's rows */
	/* cohort step */
	const uint64_t *before;	  /* persons with a start row before coh_from, or NULL */
	uint64_t *const *start;	  /* per cohort run, in time order */
	const int64_t *start_key; /* its key - k0 */
	size_t nstart;
	bool first_time;
	uint64_t **cohort; /* per cohort */
	/* counting step */
	uint64_t *const *ret; /* per return period key - k0 (NULL: nobody) */
	size_t nret, ncoh, N;
	uint64_t *size, *val;
};

static void rjob_task(void *arg, size_t i, unsigned worker)
{
	struct rbits *b = arg;
	struct rjob *j = &b->jobs[i];
	uint64_t *raw = b->raw + worker * b->nw;
	j->rc = qmark_pids(b->src->npersons, j->sp, j->nsp, j->from, j->to, raw, &j->bad);
	if (j->rc)
		memset(raw, 0, b->nw * sizeof(uint64_t));
	else
		j->rc = qcanon_bits(b->src, b->moved, raw, j->bits, b->nw, &j->bad);
}

static void cohort_task(void *arg, size_t blk, unsigned worker)
{
	struct rbits *b = arg;
	size_t w0 = blk * RB_BLOCK_WORDS, w1 = TD_MIN(b->nw, w0 + RB_BLOCK_WORDS);
	(void)worker;
	for (size_t w = w0; w < w1; w++) {
		uint64_t seen = b->before ? b->before[w] : 0;
		for (size_t i = 0; i < b->nstart; i++) {
			uint64_t x = b->start[i][w], add = b->first_time ? x & ~seen : x;
			seen |= x;
			int64_t c = b->start_key[i];
			if (add && c >= 0 && c < (int64_t)b->ncoh)
				b->cohort[c][w] |= add;
		}
	}
}

static void count_task(void *arg, size_t c, unsigned worker)
{
	struct rbits *b = arg;
	const uint64_t *m = b->cohort[c];
	(void)worker;
	b->size[c] = qbits_count(m, b->nw);
	for (size_t k = 0; k < b->N && c + k < b->nret; k++) {
		const uint64_t *x = b->ret[c + k];
		uint64_t n = 0;
		for (size_t w = 0; x && w < b->nw; w++)
			n += (uint64_t)__builtin_popcountll(m[w] & x[w]);
		b->val[c * b->N + k] = n;
	}
}

static uint64_t *rb_new(struct qctx *q, size_t nw)
{
	uint64_t *p = qa_big_realloc(&q->arena, NULL, (nw ? nw : 1) * sizeof(uint64_t));
	memset(p, 0, (nw ? nw : 1) * sizeof(uint64_t));
	return p;
}

/* Runs the marking jobs; returns the first error. */
static int run_jobs(struct qctx *q, struct rbits *b, size_t njobs, uint64_t rows)
{
	unsigned nt = qpar_threads(q, rows);
	size_t words = (b->nw ? b->nw : 1) * nt;
	b->moved = qcanon_moved(q);
	b->raw = qa_big_realloc(&q->arena, NULL, words * sizeof(uint64_t));
	memset(b->raw, 0, words * sizeof(uint64_t));
	qpar_for(nt, njobs, rjob_task, b);
	qa_big_free(&q->arena, b->raw);
	for (size_t i = 0; i < njobs; i++)
		if (b->jobs[i].rc)
			return qerr_pid(q, b->jobs[i].bad);
	return 0;
}

static int by_bitmaps(struct qctx *q, const struct retention *r, const struct rwin *w,
		      uint64_t *size, uint64_t *val, bool *done)
{
	struct qrun *runs;
	size_t nruns = qruns_get(q, r->iv, w->coh_from, w->ret_to, &runs);
	size_t ncr = 0; /* runs before coh_to: the cohort runs */
	while (ncr < nruns && runs[ncr].from < w->coh_to)
		ncr++;
	bool same = qsel_same(&r->start, &r->ret);
	bool first = r->cohort == COHORT_FIRST;
	size_t nret = w->ncoh + w->N - 1;
	/* bitmaps: per run, per start run unless shared, before, per cohort, per
	 * return period (at most) */
	size_t nbitmaps = nruns + (same ? 0 : ncr) + (first ? 1 : 0) + w->ncoh + nret;
	size_t nw = ((size_t)q->src->npersons + 63) / 64;
	double bytes = (double)nbitmaps * (double)(nw ? nw : 1) * 8.0;
	if (bytes > (double)RB_BUDGET || (q->arena.limit && bytes > (double)q->arena.limit / 2)) {
		*done = false;
		return 0;
	}
	*done = true;
	struct rbits b = {.src = q->src,
			  .nw = nw,
			  .ncoh = w->ncoh,
			  .N = w->N,
			  .nret = nret,
			  .size = size,
			  .val = val,
			  .first_time = first};
	struct qspan *rsp, *ssp = NULL, *bsp = NULL;
	size_t nrsp, nssp = 0, nbsp = 0;
	int rc = qspans_get(q, &r->ret, w->coh_from, w->ret_to, &rsp, &nrsp);
	if (rc)
		return rc;
	if (!same && (rc = qspans_get(q, &r->start, w->coh_from, w->coh_to, &ssp, &nssp)))
		return rc;
	if (first && (rc = qspans_get(q, &r->start, INT64_MIN, w->coh_from, &bsp, &nbsp)))
		return rc;
	uint64_t rows = qspans_rows(rsp, nrsp) + qspans_rows(ssp, nssp) + qspans_rows(bsp, nbsp);

	/* marking: a job per run for returns, per cohort run for starts unless
	 * shared, one for the time before the cohorts */
	b.jobs = qa_calloc(&q->arena, nruns + ncr + 1, sizeof(*b.jobs));
	size_t nj = 0;
	uint64_t **tbits = qa_alloc(&q->arena, (nruns ? nruns : 1) * sizeof(*tbits));
	uint64_t **sbits = qa_alloc(&q->arena, (ncr ? ncr : 1) * sizeof(*sbits));
	int64_t *skey = qa_alloc(&q->arena, (ncr ? ncr : 1) * sizeof(*skey));
	for (size_t i = 0; i < nruns; i++) {
		tbits[i] = rb_new(q, nw);
		b.jobs[nj++] = (struct rjob){.sp = rsp,
					     .nsp = nrsp,
					     .from = runs[i].from,
					     .to = runs[i].to,
					     .bits = tbits[i]};
	}
	for (size_t i = 0; i < ncr; i++) {
		skey[i] = runs[i].key - r->k0;
		/* starts count only before coh_to (a cohort run may reach past it
		 * only if the clock went back; its tail is not a start) */
		if (same && runs[i].to <= w->coh_to) {
			sbits[i] = tbits[i];
			continue;
		}
		sbits[i] = rb_new(q, nw);
		b.jobs[nj++] = (struct rjob){.sp = same ? rsp : ssp,
					     .nsp = same ? nrsp : nssp,
					     .from = runs[i].from,
					     .to = TD_MIN(runs[i].to, w->coh_to),
					     .bits = sbits[i]};
	}
	uint64_t *before = NULL;
	if (first) {
		before = rb_new(q, nw);
		b.jobs[nj++] = (struct rjob){
		    .sp = bsp, .nsp = nbsp, .from = INT64_MIN, .to = w->coh_from, .bits = before};
	}
	if ((rc = run_jobs(q, &b, nj, rows)))
		return rc;

	/* return period bitmaps: a run's own, or the union of runs of one key */
	uint64_t **ret = qa_calloc(&q->arena, nret ? nret : 1, sizeof(*ret));
	bool *own = qa_calloc(&q->arena, nret ? nret : 1, sizeof(*own));
	for (size_t i = 0; i < nruns; i++) {
		int64_t k = runs[i].key - r->k0;
		if (k < 0 || k >= (int64_t)nret)
			continue;
		if (!ret[k]) {
			ret[k] = tbits[i];
			continue;
		}
		if (!own[k]) { /* a second run of this key: a union of our own */
			uint64_t *u = rb_new(q, nw);
			memcpy(u, ret[k], nw * sizeof(uint64_t));
			ret[k] = u;
			own[k] = true;
		}
		for (size_t x = 0; x < nw; x++)
			ret[k][x] |= tbits[i][x];
	}
	b.before = before;
	b.start = sbits;
	b.start_key = skey;
	b.nstart = ncr;
	b.cohort = qa_alloc(&q->arena, (w->ncoh ? w->ncoh : 1) * sizeof(*b.cohort));
	for (size_t c = 0; c < w->ncoh; c++)
		b.cohort[c] = rb_new(q, nw);
	b.ret = ret;
	unsigned nt = qpar_threads(q, (uint64_t)nw * (ncr + nret));
	qpar_for(nt, (nw + RB_BLOCK_WORDS - 1) / RB_BLOCK_WORDS, cohort_task, &b);
	qpar_for(nt, w->ncoh, count_task, &b);
	return 0;
}

/* Per person: both events become (person, period) pairs, grouped by person
 * with a counting sort and matched there. Memory grows with the rows, not
 * with the periods: the path for ranges with too many periods for bitmaps. */
static int by_pairs(struct qctx *q, const struct retention *r, const struct rwin *w, uint64_t *size,
		    uint64_t *val)
{
	size_t ncoh = w->ncoh, N = w->N;
	struct qvec sp, sk, rp, rk;
	qvec_init(&sp, sizeof(uint32_t));
	qvec_init(&sk, sizeof(uint32_t));
	qvec_init(&rp, sizeof(uint32_t));
	qvec_init(&rk, sizeof(uint32_t));
	int rc;
	if (r->cohort == COHORT_FIRST)
		rc = first_pairs(q, r, w->coh_to, &sp, &sk);
	else
		rc = pairs(q, r, &r->start, w->coh_from, w->coh_to, r->k0, (int64_t)ncoh, &sp, &sk);
	if (rc || (rc = pairs(q, r, &r->ret, w->coh_from, w->ret_to, r->k0, (int64_t)(ncoh + N - 1),
			      &rp, &rk)))
		return rc;

	/* group both by person */
	size_t np = q->src->npersons;
	uint32_t *s_start, *r_start;
	uint32_t *s_perm = q_by_key(q, sp.p, sp.n, np, &s_start);
	uint32_t *r_perm = q_by_key(q, rp.p, rp.n, np, &r_start);
	const uint32_t *skey = sk.p, *rkey = rk.p;
	uint32_t *cs = NULL, *rs = NULL;
	size_t ccap = 0, rcap = 0;
	for (size_t p = 0; p < np; p++) {
		size_t na = s_start[p + 1] - s_start[p];
		if (!na)
			continue;
		size_t nr = r_start[p + 1] - r_start[p];
		if (na > ccap) {
			ccap = na * 2;
			cs = qa_big_realloc(&q->arena, cs, ccap * sizeof(*cs));
		}
		if (nr > rcap) {
			rcap = nr * 2;
			rs = qa_big_realloc(&q->arena, rs, rcap * sizeof(*rs));
		}
		for (size_t i = 0; i < na; i++)
			cs[i] = skey[s_perm[s_start[p] + i]];
		for (size_t i = 0; i < nr; i++)
			rs[i] = rkey[r_perm[r_start[p] + i]];
		na = uniq(cs, na);
		nr = uniq(rs, nr);
		size_t j = 0;
		for (size_t i = 0; i < na; i++) {
			uint32_t c = cs[i];
			size[c]++;
			while (j < nr && rs[j] < c)
				j++;
			for (size_t k = j; k < nr && rs[k] < c + N; k++)
				val[c * N + (rs[k] - c)]++;
		}
	}
	return 0;
}

int query_retention(struct qctx *q)
{
	struct retention *r = qa_calloc(&q->arena, 1, sizeof(*r));
	int rc = parse(q, r);
	if (rc)
		return rc;
	struct rwin w;
	w.ncoh = (size_t)(r->k1 - r->k0 + 1);
	w.N = (size_t)r->periods;
	size_t ncoh = w.ncoh, N = w.N;
	w.coh_from = period_start(q, r, r->k0);
	w.coh_to = period_start(q, r, r->k1 + 1);
	w.ret_to = period_start(q, r, r->k1 + (int64_t)N);
	uint64_t *size = qa_calloc(&q->arena, ncoh, sizeof(uint64_t));
	uint64_t *val = qa_big_realloc(&q->arena, NULL, ncoh * N * sizeof(uint64_t));
	memset(val, 0, ncoh * N * sizeof(uint64_t));
	bool done = false;
	if ((rc = by_bitmaps(q, r, &w, size, val, &done)))
		return rc;
	if (!done && (rc = by_pairs(q, r, &w, size, val)))
		return rc;

	static const char *const ivs[] = {"hour", "day", "week", "month"};
	qo_printf(q,
		  "{\"kind\":\"retention\",\"period\":\"%s\",\"cohort\":\"%s\",\"periods\":%zu,"
		  "\"timezone\":",
		  ivs[r->iv], r->cohort == COHORT_FIRST ? "first_time" : "recurring", N);
	qo_str(q, q->tz.name);
	qo_raw(q, ",\"cohorts\":[");
	for (size_t c = 0; c < ncoh; c++) {
		char label[Q_LOCAL_LEN];
		q_format_local(q_bucket_local_start(r->iv, r->k0 + (int64_t)c), label);
		qo_printf(q, "%s{\"start\":\"%s\",\"size\":%llu,\"values\":[", c ? "," : "", label,
			  (unsigned long long)size[c]);
		for (size_t k = 0; k < N; k++)
			qo_printf(q, "%s%llu", k ? "," : "", (unsigned long long)val[c * N + k]);
		qo_raw(q, "],\"percentages\":[");
		for (size_t k = 0; k < N; k++) {
			if (k)
				qo_raw(q, ",");
			qo_num(q, size[c] ? 100.0 * (double)val[c * N + k] / (double)size[c] : NAN);
		}
		qo_raw(q, "]}");
	}
	qo_raw(q, "]}");
	return 0;
}
