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
	static const char *const keys[] = {"kind",     "start",	  "return",    "cohort",
					   "period",   "periods", "date_from", "date_to",
					   "timezone", "filters", NULL};
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

/* (person, period key - base) pairs of sel's rows in [from, to). */
static int pairs(struct qctx *q, const struct retention *r, const struct qsel *sel, int64_t from,
		 int64_t to, int64_t base, int64_t nkeys, struct qvec *pp, struct qvec *pk)
{
	struct qbucketer b;
	qbucketer_init(&b, &q->tz, r->iv);
	const struct query_chunk *chunks;
	size_t nchunks = q->src->chunks(q->src->ctx, sel->event, &chunks);
	uint64_t *pass = NULL;
	struct qbits passb = {0};
	for (size_t ci = 0; ci < nchunks; ci++) {
		const struct query_chunk *c = &chunks[ci];
		size_t lo, hi;
		qchunk_span(c, from, to, &lo, &hi);
		if (lo >= hi)
			continue;
		pass = qbits_fit(&q->arena, &passb, hi - lo, 1);
		int rc = qsel_eval(q, sel, c, lo, hi, pass);
		if (rc)
			return rc;
		for (size_t i = 0; i < hi - lo; i++) {
			if (!qbit(pass, i))
				continue;
			uint32_t person;
			if (qperson(q, c->pid[lo + i], &person))
				return qerr_pid(q, c->pid[lo + i]);
			/* a clock set back across a period boundary can give an
			 * instant inside [from, to) a key outside: skip it */
			int64_t k = qbucketer_key(&b, c->ts[lo + i]) - base;
			if (k < 0 || k >= nkeys)
				continue;
			*(uint32_t *)qvec_push(&q->arena, pp) = person;
			*(uint32_t *)qvec_push(&q->arena, pk) = (uint32_t)k;
		}
	}
	qa_big_free(&q->arena, pass);
	return 0;
}

/* First start event of every person, over all time before the last cohort ends. */
static int first_pairs(struct qctx *q, const struct retention *r, int64_t to, struct qvec *pp,
		       struct qvec *pk)
{
	uint32_t np = q->src->npersons;
	int64_t *first = qa_big_realloc(&q->arena, NULL, ((size_t)np + 1) * sizeof(int64_t));
	for (uint32_t p = 0; p < np; p++)
		first[p] = INT64_MAX;
	const struct query_chunk *chunks;
	size_t nchunks = q->src->chunks(q->src->ctx, r->start.event, &chunks);
	uint64_t *pass = NULL;
	struct qbits passb = {0};
	for (size_t ci = 0; ci < nchunks; ci++) {
		const struct query_chunk *c = &chunks[ci];
		size_t lo, hi;
		qchunk_span(c, INT64_MIN, to, &lo, &hi);
		if (lo >= hi)
			continue;
		pass = qbits_fit(&q->arena, &passb, hi - lo, 1);
		int rc = qsel_eval(q, &r->start, c, lo, hi, pass);
		if (rc)
			return rc;
		for (size_t i = 0; i < hi - lo; i++) {
			if (!qbit(pass, i))
				continue;
			uint32_t person;
			if (qperson(q, c->pid[lo + i], &person))
				return qerr_pid(q, c->pid[lo + i]);
			if (c->ts[lo + i] < first[person])
				first[person] = c->ts[lo + i];
		}
	}
	qa_big_free(&q->arena, pass);
	struct qbucketer b;
	qbucketer_init(&b, &q->tz, r->iv);
	for (uint32_t p = 0; p < np; p++) {
		if (first[p] == INT64_MAX)
			continue;
		int64_t k = qbucketer_key(&b, first[p]);
		if (k < r->k0 || k > r->k1)
			continue;
		*(uint32_t *)qvec_push(&q->arena, pp) = p;
		*(uint32_t *)qvec_push(&q->arena, pk) = (uint32_t)(k - r->k0);
	}
	qa_big_free(&q->arena, first);
	return 0;
}

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

int query_retention(struct qctx *q)
{
	struct retention *r = qa_calloc(&q->arena, 1, sizeof(*r));
	int rc = parse(q, r);
	if (rc)
		return rc;
	size_t ncoh = (size_t)(r->k1 - r->k0 + 1), N = (size_t)r->periods;
	int64_t coh_from = period_start(q, r, r->k0);
	int64_t coh_to = period_start(q, r, r->k1 + 1);
	int64_t ret_to = period_start(q, r, r->k1 + (int64_t)N);

	struct qvec sp, sk, rp, rk;
	qvec_init(&sp, sizeof(uint32_t));
	qvec_init(&sk, sizeof(uint32_t));
	qvec_init(&rp, sizeof(uint32_t));
	qvec_init(&rk, sizeof(uint32_t));
	if (r->cohort == COHORT_FIRST)
		rc = first_pairs(q, r, coh_to, &sp, &sk);
	else
		rc = pairs(q, r, &r->start, coh_from, coh_to, r->k0, (int64_t)ncoh, &sp, &sk);
	if (rc ||
	    (rc = pairs(q, r, &r->ret, coh_from, ret_to, r->k0, (int64_t)(ncoh + N - 1), &rp, &rk)))
		return rc;

	/* group both by person */
	size_t np = q->src->npersons;
	uint32_t *s_start, *r_start;
	uint32_t *s_perm = q_by_key(q, sp.p, sp.n, np, &s_start);
	uint32_t *r_perm = q_by_key(q, rp.p, rp.n, np, &r_start);
	const uint32_t *skey = sk.p, *rkey = rk.p;
	uint64_t *size = qa_calloc(&q->arena, ncoh, sizeof(uint64_t));
	uint64_t *val = qa_big_realloc(&q->arena, NULL, ncoh * N * sizeof(uint64_t));
	memset(val, 0, ncoh * N * sizeof(uint64_t));
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
