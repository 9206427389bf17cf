/*
 * trends.c - trends: one number per time bucket for each series (count,
 * unique persons, or sum / avg / min / max / p50 / p90 / p99 of a numeric
 * property), optionally broken down by a property and compared with the
 * previous period of the same length.
 *
 * Counts, sums, minima and maxima accumulate straight into per-bucket
 * arrays; unique persons and percentiles keep one small record per row and
 * are finished with a counting sort by (group, bucket) plus a bitmap over
 * persons (distinct counts) or a sort of each group's values (percentiles).
 */
#include "query/query_int.h"

#include <math.h>
#include <string.h>

enum { M_COUNT, M_UNIQUE, M_SUM, M_AVG, M_MIN, M_MAX, M_P50, M_P90, M_P99 };
static const char *const math_names[] = {
    "count", "unique_persons", "sum", "avg", "min", "max", "p50", "p90", "p99", NULL};

static bool math_needs_property(int m)
{
	return m >= M_SUM;
}

static bool math_keeps_values(int m)
{
	return m >= M_P50;
}

static double math_quantile(int m)
{
	return m == M_P50 ? 0.5 : m == M_P90 ? 0.9 : 0.99;
}

struct tseries {
	struct qsel sel;
	const char *name;
	int math;
	const char *property;
	int32_t *top; /* breakdown value ids chosen on the current period */
	size_t ntop;
};

struct tperiod {
	int64_t from, to; /* UTC ms, [from, to) */
	int64_t k0;	  /* first bucket key */
	size_t nb;
};

struct trends {
	struct tseries series[QUERY_MAX_SERIES];
	int nseries;
	enum qinterval iv;
	const char *bd_path;
	int64_t bd_limit;
	bool compare;
	struct qintern intern;
	struct tperiod cur, prev;
	/* "costs": true: the costs of each period per breakdown value */
	bool costs;
	struct tcosts {
		struct qcosts rows;
		struct qintern values; /* breakdown values that have costs ("" = none) */
		double *cost;	       /* per value */
		double total;
	} ccur, cprev;
};

/* Accumulators of one breakdown slot, nb buckets each. */
struct tacc {
	int64_t *count, *nval;
	double *sum, *min, *max;
};

/* What one (series, period) scan collects. */
struct tscan {
	struct tacc **acc; /* per slot (value id + 1), NULL until seen */
	size_t nacc;
	struct qvec rslot, rbucket, rpid; /* uint32 each: rows for unique persons */
	struct qvec rval;		  /* double: values for percentiles (with rslot, rbucket) */
	uint64_t *ucell;		  /* unique persons per bucket, when found with bitmaps */
	uint64_t utotal;		  /* ... and over the whole period */
};

static int parse_series(struct qctx *q, struct trends *t)
{
	const cJSON *js = cJSON_GetObjectItemCaseSensitive(q->root, "series");
	if (!js)
		return qerr(q, "series: required (1 to %d series)", QUERY_MAX_SERIES);
	if (!cJSON_IsArray(js))
		return qerr(q, "series: must be an array of 1 to %d series", QUERY_MAX_SERIES);
	int n = cJSON_GetArraySize(js);
	if (n < 1 || n > QUERY_MAX_SERIES)
		return qerr(q, "series: 1 to %d series (got %d)", QUERY_MAX_SERIES, n);
	t->nseries = n;
	static const char *const extra[] = {"math", "property", "name", NULL};
	int i = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, js)
	{
		struct tseries *s = &t->series[i];
		char *field = qa_printf(&q->arena, "series[%d]", i);
		int rc = qsel_parse(q, it, field, extra, true, &s->sel);
		if (rc || (rc = qj_enum(q, it, "math", field, math_names, &s->math)) ||
		    (rc = qj_string(q, it, "property", field, &s->property)) ||
		    (rc = qj_string(q, it, "name", field, &s->name)))
			return rc;
		if (math_needs_property(s->math) && !s->property)
			return qerr(q,
				    "%s.property: required with math \"%s\" (a numeric property)",
				    field, math_names[s->math]);
		if (!math_needs_property(s->math) && s->property)
			return qerr(q, "%s.property: not used with math \"%s\"", field,
				    math_names[s->math]);
		if (s->property) {
			char *pf = qa_printf(&q->arena, "%s.property", field);
			struct query_column col;
			bool found;
			if ((rc = qprop_find(q, s->sel.event, s->property, &col, &found)))
				return rc;
			if (!found)
				return qsel_check_property(q, s->sel.event, s->property, pf, NULL);
			if (col.kind != QCOL_NUMBER)
				return qerr(q, "%s: property \"%s\" holds %s; %s needs numbers", pf,
					    s->property,
					    col.kind == QCOL_STRING ? "strings" : "booleans",
					    math_names[s->math]);
		}
		i++;
	}
	return 0;
}

static int parse(struct qctx *q, struct trends *t)
{
	static const char *const keys[] = {"kind",    "series",	  "interval",	  "date_from",
					   "date_to", "timezone", "breakdown",	  "breakdown_limit",
					   "compare", "filters",  "include_bots", "costs",
					   NULL};
	int rc = qj_keys(q, q->root, "", keys);
	if (rc || (rc = qj_time(q, true)) || (rc = parse_series(q, t)))
		return rc;
	static const char *const ivs[] = {"hour", "day", "week", "month", NULL};
	t->iv = QI_DAY;
	t->bd_limit = 10;
	if ((rc = qj_interval(q, q->root, "interval", "", ivs, &t->iv)) ||
	    (rc = qj_string(q, q->root, "breakdown", "", &t->bd_path)) ||
	    (rc =
		 qj_int(q, q->root, "breakdown_limit", "", 1, QUERY_MAX_BREAKDOWN, &t->bd_limit)) ||
	    (rc = qj_bool(q, q->root, "compare", "", &t->compare)))
		return rc;
	if (t->bd_path) {
		if (!*t->bd_path)
			return qerr(q, "breakdown: must be a property path");
		bool found = false;
		for (int s = 0; s < t->nseries && !found; s++) {
			struct query_column col;
			if ((rc = qprop_find(q, t->series[s].sel.event, t->bd_path, &col, &found)))
				return rc;
		}
		if (!found)
			return qerr(q,
				    "breakdown: unknown property \"%s\" (no series' event has it)",
				    t->bd_path);
	} else if (cJSON_GetObjectItemCaseSensitive(q->root, "breakdown_limit")) {
		return qerr(q, "breakdown: required when breakdown_limit is given");
	}
	if ((rc = qj_bool(q, q->root, "costs", "", &t->costs)))
		return rc;
	if (t->costs && (!t->bd_path || !qcost_path(t->bd_path)))
		return qerr(q, "costs: needs a breakdown by enriched.campaign.name, "
			       "enriched.campaign.source, enriched.campaign.medium or "
			       "enriched.channel (costs are per campaign, source and medium)");
	return 0;
}

/* Sums the costs of a period per breakdown value. */
static int load_costs(struct qctx *q, struct trends *t, const struct tperiod *p, struct tcosts *tc)
{
	int rc = qcosts_load(q, "costs", p->from, p->to, &tc->rows);
	if (rc)
		return rc;
	struct qchannels ch;
	bool by_channel = strcmp(t->bd_path, QUERY_CHANNEL_PATH) == 0;
	if (by_channel && tc->rows.n && (rc = qchannels_scan(q, p->from, p->to, &ch)))
		return rc;
	qintern_init(&tc->values);
	tc->cost = qa_calloc(&q->arena, tc->rows.n + 1, sizeof(double));
	for (size_t i = 0; i < tc->rows.n; i++) {
		const struct query_cost *r = &tc->rows.rows[i];
		const char *v = by_channel ? qchannels_of(q, &ch, r->source, r->medium)
					   : qcost_value(r, t->bd_path);
		tc->cost[qintern_get(&q->arena, &tc->values, v ? v : "")] += r->cost;
		tc->total += r->cost;
	}
	return 0;
}

/* The cost of output line o of s: its value's, or for "other" those of the
 * values outside the top; false when no cost row went there. */
static bool line_cost(const struct trends *t, const struct tcosts *tc, const struct tseries *s,
		      size_t o, size_t other, double *out)
{
	*out = 0;
	if (o != other) {
		const char *v = s->top[o] == QBD_NONE ? "" : t->intern.str[s->top[o]];
		for (size_t k = 0; k < tc->values.n; k++)
			if (!strcmp(tc->values.str[k], v)) {
				*out = tc->cost[k];
				return true;
			}
		return false;
	}
	bool any = false;
	for (size_t k = 0; k < tc->values.n; k++) {
		bool top = false;
		for (size_t i = 0; i < s->ntop && !top; i++) {
			const char *v = s->top[i] == QBD_NONE ? "" : t->intern.str[s->top[i]];
			top = !strcmp(tc->values.str[k], v);
		}
		if (!top) {
			*out += tc->cost[k];
			any = true;
		}
	}
	return any;
}

/* A period's costs: every value's cost, the most first. */
static void write_costs(struct qctx *q, const char *key, const struct tcosts *tc)
{
	size_t n = tc->values.n;
	struct qgroup_rank *g = qa_alloc(&q->arena, (n ? n : 1) * sizeof(*g));
	for (size_t k = 0; k < n; k++) {
		g[k].id = (int32_t)k;
		g[k].weight = tc->cost[k];
	}
	qgroups_sort(&tc->values, g, n);
	qo_printf(q, ",\"%s\":{\"currency\":", key);
	qo_str(q, tc->rows.currency);
	qo_raw(q, ",\"total\":");
	qo_num(q, tc->rows.n ? tc->total : NAN);
	qo_raw(q, ",\"values\":[");
	for (size_t i = 0; i < n; i++) {
		const char *v = tc->values.str[g[i].id];
		qo_raw(q, i ? ",{\"breakdown_value\":" : "{\"breakdown_value\":");
		qo_str(q, *v ? v : NULL);
		qo_raw(q, ",\"cost\":");
		qo_num(q, g[i].weight);
		qo_raw(q, "}");
	}
	qo_raw(q, "]}");
}

static int set_period(struct qctx *q, struct trends *t, struct tperiod *p, int64_t from, int64_t to)
{
	struct qbucketer b;
	qbucketer_init(&b, &q->tz, t->iv);
	p->from = from;
	p->to = to;
	p->k0 = qbucketer_key(&b, from);
	int64_t k1 = qbucketer_key(&b, to - 1);
	if (k1 - p->k0 + 1 > QUERY_MAX_BUCKETS) {
		static const char *const ivs[] = {"hour", "day", "week", "month"};
		return qerr(q,
			    "interval: \"%s\" over this date range gives %lld buckets; at most %d "
			    "(use a longer interval or a shorter range)",
			    ivs[t->iv], (long long)(k1 - p->k0 + 1), QUERY_MAX_BUCKETS);
	}
	p->nb = (size_t)(k1 - p->k0 + 1);
	return 0;
}

static struct tacc *slot_acc(struct qctx *q, struct tscan *sc, size_t slot, size_t nb)
{
	if (slot >= sc->nacc) {
		size_t n = sc->nacc ? sc->nacc : 16;
		while (n <= slot)
			n *= 2;
		sc->acc = qa_big_realloc(&q->arena, sc->acc, n * sizeof(*sc->acc));
		memset(sc->acc + sc->nacc, 0, (n - sc->nacc) * sizeof(*sc->acc));
		sc->nacc = n;
	}
	if (!sc->acc[slot]) {
		struct tacc *a = qa_alloc(&q->arena, sizeof(*a));
		a->count = qa_calloc(&q->arena, nb, sizeof(int64_t));
		a->nval = qa_calloc(&q->arena, nb, sizeof(int64_t));
		a->sum = qa_calloc(&q->arena, nb, sizeof(double));
		a->min = qa_alloc(&q->arena, nb * sizeof(double));
		a->max = qa_alloc(&q->arena, nb * sizeof(double));
		for (size_t i = 0; i < nb; i++) {
			a->min[i] = INFINITY;
			a->max[i] = -INFINITY;
		}
		sc->acc[slot] = a;
	}
	return sc->acc[slot];
}

/* Unique persons without breakdown: one task per bucket marks the persons
 * of the bucket's rows in its worker's bitmap (npersons bits, small enough
 * to stay in cache), counts them and folds them into the worker's bitmap of
 * the whole range. */
struct tuniq {
	const struct query_source *src;
	const struct qspan *sp;
	size_t nsp;
	const struct qrun *runs;
	const uint32_t *first, *order; /* runs of bucket b: order[first[b] .. first[b + 1]) */
	const uint64_t *moved;
	size_t nw;
	uint64_t *raw, *cur, *all; /* per worker: nw words each */
	uint64_t *cell;		   /* distinct persons per bucket */
	int *rc;		   /* per bucket */
	uint32_t *bad;
};

static void uniq_task(void *arg, size_t b, unsigned worker)
{
	struct tuniq *u = arg;
	uint64_t *cur = u->cur + worker * u->nw, *all = u->all + worker * u->nw;
	uint64_t *raw = u->raw + worker * u->nw;
	for (uint32_t k = u->first[b]; k < u->first[b + 1]; k++) {
		const struct qrun *r = &u->runs[u->order[k]];
		int rc =
		    qmark_pids(u->src->npersons, u->sp, u->nsp, r->from, r->to, raw, &u->bad[b]);
		if (rc) {
			u->rc[b] = rc;
			memset(raw, 0, u->nw * sizeof(uint64_t));
			return;
		}
	}
	int rc = qcanon_bits(u->src, u->moved, raw, cur, u->nw, &u->bad[b]);
	if (rc) {
		u->rc[b] = rc;
		return;
	}
	/* count, keep for the total, clear for the next bucket: one pass */
	uint64_t n = 0;
	for (size_t i = 0; i < u->nw; i++) {
		uint64_t x = cur[i];
		if (!x)
			continue;
		n += (uint64_t)__builtin_popcountll(x);
		all[i] |= x;
		cur[i] = 0;
	}
	u->cell[b] = n;
}

/* Bucket of a run's key, clamped: a clock set back across a bucket boundary
 * at the range's edge can give a key outside; it counts in the edge bucket. */
static uint32_t run_bucket(const struct tperiod *p, int64_t key)
{
	int64_t k = key - p->k0;
	return (uint32_t)(k < 0 ? 0 : k >= (int64_t)p->nb ? (int64_t)p->nb - 1 : k);
}

static int scan_unique(struct qctx *q, const struct tseries *s, const struct tperiod *p,
		       const struct qrun *runs, size_t nruns, struct tscan *sc)
{
	struct tuniq u = {.src = q->src, .runs = runs};
	struct qspan *sp;
	int rc = qspans_get(q, &s->sel, p->from, p->to, &sp, &u.nsp);
	if (rc)
		return rc;
	u.sp = sp;
	size_t nb = p->nb;
	uint32_t *first = qa_calloc(&q->arena, nb + 1, sizeof(uint32_t));
	uint32_t *order = qa_alloc(&q->arena, (nruns ? nruns : 1) * sizeof(uint32_t));
	for (size_t r = 0; r < nruns; r++)
		first[run_bucket(p, runs[r].key) + 1]++;
	for (size_t b = 0; b < nb; b++)
		first[b + 1] += first[b];
	uint32_t *next = qa_alloc(&q->arena, (nb + 1) * sizeof(uint32_t));
	memcpy(next, first, (nb + 1) * sizeof(uint32_t));
	for (size_t r = 0; r < nruns; r++)
		order[next[run_bucket(p, runs[r].key)]++] = (uint32_t)r;
	u.first = first;
	u.order = order;
	unsigned nt = qpar_threads(q, qspans_rows(sp, u.nsp));
	u.nw = ((size_t)q->src->npersons + 63) / 64;
	size_t words = (u.nw ? u.nw : 1) * nt;
	u.moved = qcanon_moved(q);
	u.raw = qa_big_realloc(&q->arena, NULL, words * sizeof(uint64_t));
	u.cur = qa_big_realloc(&q->arena, NULL, words * sizeof(uint64_t));
	u.all = qa_big_realloc(&q->arena, NULL, words * sizeof(uint64_t));
	memset(u.raw, 0, words * sizeof(uint64_t));
	memset(u.cur, 0, words * sizeof(uint64_t));
	memset(u.all, 0, words * sizeof(uint64_t));
	u.cell = qa_calloc(&q->arena, nb, sizeof(uint64_t));
	u.rc = qa_calloc(&q->arena, nb, sizeof(int));
	u.bad = qa_calloc(&q->arena, nb, sizeof(uint32_t));
	qpar_for(nt, nb, uniq_task, &u);
	for (size_t b = 0; b < nb; b++)
		if (u.rc[b])
			return qerr_pid(q, u.bad[b]);
	qbits_or_workers(u.all, u.nw, nt);
	sc->ucell = u.cell;
	sc->utotal = qbits_count(u.all, u.nw);
	qa_big_free(&q->arena, u.raw);
	qa_big_free(&q->arena, u.cur);
	qa_big_free(&q->arena, u.all);
	for (size_t i = 0; i < u.nsp; i++)
		qa_big_free(&q->arena, (void *)sp[i].pass);
	qa_big_free(&q->arena, sp);
	return 0;
}

/* Rows [a, b) of c, all in one bucket. */
static int scan_rows(struct qctx *q, struct trends *t, const struct tseries *s,
		     const struct tperiod *p, struct tscan *sc, const struct query_chunk *c,
		     size_t lo, const uint64_t *pass, size_t a, size_t b, uint32_t bucket,
		     struct qbdcol *bc, const struct query_column *pc, bool has_prop)
{
	if (!t->bd_path && s->math == M_COUNT) {
		/* counting needs no row: the run's length, or its passing bits */
		struct tacc *acc = slot_acc(q, sc, 0, p->nb);
		acc->count[bucket] += pass ? qbits_count_range(pass, a - lo, b - lo) : b - a;
		return 0;
	}
	struct tacc *acc = t->bd_path ? NULL : slot_acc(q, sc, 0, p->nb);
	for (size_t row = a; row < b; row++) {
		if (pass && !qbit(pass, row - lo))
			continue;
		uint32_t slot = 0;
		if (t->bd_path) {
			slot = (uint32_t)(qbdcol_get(q, &t->intern, bc, row) + 1);
			acc = slot_acc(q, sc, slot, p->nb);
		}
		acc->count[bucket]++;
		if (s->math == M_UNIQUE) {
			uint32_t person;
			if (qperson(q, c->pid[row], &person))
				return qerr_pid(q, c->pid[row]);
			*(uint32_t *)qvec_push(&q->arena, &sc->rslot) = slot;
			*(uint32_t *)qvec_push(&q->arena, &sc->rbucket) = bucket;
			*(uint32_t *)qvec_push(&q->arena, &sc->rpid) = person;
		} else if (has_prop && qcol_has(pc, row)) {
			double v = pc->num[row];
			acc->nval[bucket]++;
			acc->sum[bucket] += v;
			if (v < acc->min[bucket])
				acc->min[bucket] = v;
			if (v > acc->max[bucket])
				acc->max[bucket] = v;
			if (math_keeps_values(s->math)) {
				*(uint32_t *)qvec_push(&q->arena, &sc->rslot) = slot;
				*(uint32_t *)qvec_push(&q->arena, &sc->rbucket) = bucket;
				*(double *)qvec_push(&q->arena, &sc->rval) = v;
			}
		}
	}
	return 0;
}

/* Every row of the period is in one run of time with one bucket key: rows
 * are walked run by run (found by binary search in the time-ordered chunk),
 * never keyed one at a time. */
static int scan(struct qctx *q, struct trends *t, const struct tseries *s, const struct tperiod *p,
		struct tscan *sc)
{
	memset(sc, 0, sizeof(*sc));
	qvec_init(&sc->rslot, sizeof(uint32_t));
	qvec_init(&sc->rbucket, sizeof(uint32_t));
	qvec_init(&sc->rpid, sizeof(uint32_t));
	qvec_init(&sc->rval, sizeof(double));
	struct qrun *runs;
	size_t nruns = qruns_get(q, t->iv, p->from, p->to, &runs);
	if (s->math == M_UNIQUE && !t->bd_path)
		return scan_unique(q, s, p, runs, nruns, sc);
	const struct query_chunk *chunks;
	size_t nchunks = q->src->chunks(q->src->ctx, s->sel.event, &chunks);
	uint64_t *pass = NULL;
	struct qbits passb = {0};
	for (size_t ci = 0; ci < nchunks; ci++) {
		const struct query_chunk *c = &chunks[ci];
		size_t lo, hi;
		qchunk_span(c, p->from, p->to, &lo, &hi);
		if (lo >= hi)
			continue;
		const uint64_t *rpass = NULL;
		int rc;
		if (s->sel.nf) {
			pass = qbits_fit(&q->arena, &passb, hi - lo, 1);
			if ((rc = qsel_eval(q, &s->sel, c, lo, hi, pass)))
				return rc;
			rpass = pass;
		}
		struct qbdcol bc;
		if (t->bd_path && (rc = qbdcol_open(q, &t->intern, t->bd_path, c, &bc)))
			return rc;
		struct query_column pc;
		bool has_prop = false;
		if (s->property) {
			rc = c->column(c, s->property, &pc);
			if (rc && rc != TD_ENOTFOUND)
				return qerr_code(q, rc, "store: reading property \"%s\" failed: %s",
						 s->property, td_strerror(rc));
			has_prop = rc == 0;
			if (has_prop && pc.kind != QCOL_NUMBER)
				return qerr(q,
					    "%s.property: property \"%s\" holds %s in some events; "
					    "%s needs numbers",
					    s->sel.field, s->property,
					    pc.kind == QCOL_STRING ? "strings" : "booleans",
					    math_names[s->math]);
		}
		/* the run holding the chunk's first row, then run after run */
		size_t r = 0, rhi = nruns;
		while (r < rhi) {
			size_t m = r + (rhi - r) / 2;
			if (runs[m].to <= c->ts[lo])
				r = m + 1;
			else
				rhi = m;
		}
		for (size_t a = lo; a < hi && r < nruns; r++) {
			size_t b = qlower_bound(c->ts, a, hi, runs[r].to);
			if (b > a &&
			    (rc = scan_rows(q, t, s, p, sc, c, lo, rpass, a, b,
					    run_bucket(p, runs[r].key), &bc, &pc, has_prop)))
				return rc;
			a = b;
		}
		if (t->bd_path)
			qbdcol_close(q, &bc);
	}
	qa_big_free(&q->arena, pass);
	return 0;
}

/* Chooses the top values of a series on the current period. */
static void choose_top(struct qctx *q, struct trends *t, struct tseries *s, const struct tscan *sc,
		       size_t nb)
{
	struct qgroup_rank *g = qa_alloc(&q->arena, (sc->nacc ? sc->nacc : 1) * sizeof(*g));
	size_t ng = 0;
	for (size_t sl = 0; sl < sc->nacc; sl++) {
		if (!sc->acc[sl])
			continue;
		int64_t w = 0;
		for (size_t b = 0; b < nb; b++)
			w += sc->acc[sl]->count[b];
		if (!w)
			continue;
		g[ng].id = (int32_t)sl - 1;
		g[ng++].weight = (double)w;
	}
	qgroups_sort(&t->intern, g, ng);
	s->ntop = ng < (size_t)t->bd_limit ? ng : (size_t)t->bd_limit;
	s->top = qa_alloc(&q->arena, (s->ntop ? s->ntop : 1) * sizeof(*s->top));
	for (size_t i = 0; i < s->ntop; i++)
		s->top[i] = g[i].id;
}

static void write_series(struct qctx *q, struct trends *t, const struct tseries *s, int index,
			 const struct tperiod *p, struct tscan *sc, bool previous, bool *first)
{
	size_t nb = p->nb;
	/* output groups: the top values then "other"; without breakdown, one */
	size_t ntop = t->bd_path ? s->ntop : 1;
	size_t nout = ntop + 1, other = ntop;
	size_t nslots = t->bd_path ? t->intern.n + 1 : 1;
	uint32_t *pos = qa_alloc(&q->arena, nslots * sizeof(*pos));
	for (size_t sl = 0; sl < nslots; sl++)
		pos[sl] = (uint32_t)other;
	if (t->bd_path)
		for (size_t i = 0; i < ntop; i++)
			pos[s->top[i] + 1] = (uint32_t)i;
	else
		pos[0] = 0;
	size_t cells = nout * nb;
	int64_t *count = qa_calloc(&q->arena, cells, sizeof(int64_t));
	int64_t *nval = qa_calloc(&q->arena, cells, sizeof(int64_t));
	double *sum = qa_calloc(&q->arena, cells, sizeof(double));
	double *mn = qa_alloc(&q->arena, cells * sizeof(double));
	double *mx = qa_alloc(&q->arena, cells * sizeof(double));
	for (size_t i = 0; i < cells; i++) {
		mn[i] = INFINITY;
		mx[i] = -INFINITY;
	}
	for (size_t sl = 0; sl < sc->nacc && sl < nslots; sl++) {
		const struct tacc *a = sc->acc[sl];
		if (!a)
			continue;
		size_t o = pos[sl];
		for (size_t b = 0; b < nb; b++) {
			size_t c = o * nb + b;
			count[c] += a->count[b];
			nval[c] += a->nval[b];
			sum[c] += a->sum[b];
			if (a->min[b] < mn[c])
				mn[c] = a->min[b];
			if (a->max[b] > mx[c])
				mx[c] = a->max[b];
		}
	}
	/* unique persons and percentiles, per cell and per group */
	double *cellv = NULL, *totv = NULL;
	uint64_t *cellu = NULL, *totu = NULL;
	size_t nr = sc->rslot.n;
	if (s->math == M_UNIQUE || math_keeps_values(s->math)) {
		const uint32_t *rs = sc->rslot.p, *rb = sc->rbucket.p;
		uint32_t *kc = qa_big_realloc(&q->arena, NULL, (nr ? nr : 1) * sizeof(uint32_t));
		uint32_t *kt = qa_big_realloc(&q->arena, NULL, (nr ? nr : 1) * sizeof(uint32_t));
		for (size_t i = 0; i < nr; i++) {
			kt[i] = pos[rs[i]];
			kc[i] = kt[i] * (uint32_t)nb + rb[i];
		}
		if (s->math == M_UNIQUE && sc->ucell) {
			/* no breakdown: one group, already counted */
			cellu = qa_calloc(&q->arena, cells, sizeof(uint64_t));
			totu = qa_calloc(&q->arena, nout, sizeof(uint64_t));
			memcpy(cellu, sc->ucell, nb * sizeof(uint64_t));
			totu[0] = sc->utotal;
		} else if (s->math == M_UNIQUE) {
			cellu = qa_alloc(&q->arena, cells * sizeof(uint64_t));
			totu = qa_alloc(&q->arena, nout * sizeof(uint64_t));
			q_distinct_by_key(q, kc, sc->rpid.p, nr, cells, cellu);
			q_distinct_by_key(q, kt, sc->rpid.p, nr, nout, totu);
		} else {
			double pq = math_quantile(s->math);
			cellv = qa_alloc(&q->arena, cells * sizeof(double));
			totv = qa_alloc(&q->arena, nout * sizeof(double));
			q_quantile_by_key(q, kc, sc->rval.p, nr, cells, pq, cellv);
			q_quantile_by_key(q, kt, sc->rval.p, nr, nout, pq, totv);
		}
		qa_big_free(&q->arena, kc);
		qa_big_free(&q->arena, kt);
	}
	for (size_t o = 0; o < nout; o++) {
		int64_t rows = 0;
		for (size_t b = 0; b < nb; b++)
			rows += count[o * nb + b];
		/* "other" only when some rows fell outside the top values */
		if (o == other && (!t->bd_path || rows == 0))
			continue;
		qo_raw(q, *first ? "{" : ",{");
		*first = false;
		qo_printf(q, "\"series\":%d,\"event\":", index);
		qo_str(q, s->sel.event);
		qo_raw(q, ",\"name\":");
		qo_str(q, s->name);
		qo_raw(q, ",\"math\":");
		qo_str(q, math_names[s->math]);
		qo_raw(q, ",\"property\":");
		qo_str(q, s->property);
		qo_printf(q, ",\"period\":\"%s\"", previous ? "previous" : "current");
		if (t->bd_path) {
			qo_raw(q, ",\"breakdown_value\":");
			if (o == other || s->top[o] == QBD_NONE)
				qo_raw(q, "null");
			else
				qo_str(q, t->intern.str[s->top[o]]);
			qo_printf(q, ",\"is_other\":%s", o == other ? "true" : "false");
		}
		qo_raw(q, ",\"values\":[");
		int64_t tn = 0, tnv = 0;
		double ts = 0, tmn = INFINITY, tmx = -INFINITY;
		for (size_t b = 0; b < nb; b++) {
			size_t c = o * nb + b;
			if (b)
				qo_raw(q, ",");
			tn += count[c];
			tnv += nval[c];
			ts += sum[c];
			tmn = mn[c] < tmn ? mn[c] : tmn;
			tmx = mx[c] > tmx ? mx[c] : tmx;
			switch (s->math) {
			case M_COUNT:
				qo_int(q, count[c]);
				break;
			case M_UNIQUE:
				qo_int(q, (int64_t)cellu[c]);
				break;
			case M_SUM:
				qo_num(q, sum[c]);
				break;
			case M_AVG:
				qo_num(q, nval[c] ? sum[c] / (double)nval[c] : NAN);
				break;
			case M_MIN:
				qo_num(q, nval[c] ? mn[c] : NAN);
				break;
			case M_MAX:
				qo_num(q, nval[c] ? mx[c] : NAN);
				break;
			default:
				qo_num(q, cellv[c]);
			}
		}
		qo_raw(q, "],\"total\":");
		switch (s->math) {
		case M_COUNT:
			qo_int(q, tn);
			break;
		case M_UNIQUE:
			qo_int(q, (int64_t)totu[o]);
			break;
		case M_SUM:
			qo_num(q, ts);
			break;
		case M_AVG:
			qo_num(q, tnv ? ts / (double)tnv : NAN);
			break;
		case M_MIN:
			qo_num(q, tnv ? tmn : NAN);
			break;
		case M_MAX:
			qo_num(q, tnv ? tmx : NAN);
			break;
		default:
			qo_num(q, totv[o]);
		}
		if (t->costs) {
			double c;
			bool known = line_cost(t, previous ? &t->cprev : &t->ccur, s, o, other, &c);
			qo_raw(q, ",\"cost\":");
			qo_num(q, known ? c : NAN);
			if (s->math == M_SUM) {
				qo_raw(q, ",\"roi\":");
				qo_num(q, known && c > 0 ? (ts - c) / c : NAN);
				qo_raw(q, ",\"roas\":");
				qo_num(q, known && c > 0 ? ts / c : NAN);
			}
		}
		qo_raw(q, "}");
	}
}

static void write_buckets(struct qctx *q, const struct trends *t, const struct tperiod *p)
{
	qo_raw(q, "[");
	for (size_t b = 0; b < p->nb; b++) {
		char label[Q_LOCAL_LEN];
		q_format_local(q_bucket_local_start(t->iv, p->k0 + (int64_t)b), label);
		qo_printf(q, "%s\"%s\"", b ? "," : "", label);
	}
	qo_raw(q, "]");
}

static void free_scan(struct qctx *q, struct tscan *sc)
{
	qa_big_free(&q->arena, sc->acc);
	qa_big_free(&q->arena, sc->rslot.p);
	qa_big_free(&q->arena, sc->rbucket.p);
	qa_big_free(&q->arena, sc->rpid.p);
	qa_big_free(&q->arena, sc->rval.p);
}

int query_trends(struct qctx *q)
{
	struct trends *t = qa_calloc(&q->arena, 1, sizeof(*t));
	int rc = parse(q, t);
	if (rc)
		return rc;
	qintern_init(&t->intern);
	if ((rc = set_period(q, t, &t->cur, q->range.from, q->range.to)))
		return rc;

	if (t->compare) {
		int64_t from, to;
		if (q->range.dates) {
			/* the same number of whole local days, just before */
			int64_t days = q->range.to_day - q->range.from_day;
			from = query_tz_to_utc(&q->tz, (q->range.from_day - days) * MS_PER_DAY);
			to = q->range.from;
		} else {
			from = q->range.from - (q->range.to - q->range.from);
			to = q->range.from;
		}
		if ((rc = set_period(q, t, &t->prev, from, to)))
			return rc;
	}
	if (t->costs && ((rc = load_costs(q, t, &t->cur, &t->ccur)) ||
			 (t->compare && (rc = load_costs(q, t, &t->prev, &t->cprev)))))
		return rc;
	static const char *const ivs[] = {"hour", "day", "week", "month"};
	char a[Q_INSTANT_LEN], b[Q_INSTANT_LEN];
	q_format_instant(q->range.from, query_tz_offset(&q->tz, q->range.from, NULL, NULL), a);
	q_format_instant(q->range.to, query_tz_offset(&q->tz, q->range.to, NULL, NULL), b);
	qo_printf(q, "{\"kind\":\"trends\",\"interval\":\"%s\",\"timezone\":", ivs[t->iv]);
	qo_str(q, q->tz.name);
	qo_printf(q, ",\"from\":\"%s\",\"to\":\"%s\",\"buckets\":", a, b);
	write_buckets(q, t, &t->cur);
	if (t->compare) {
		qo_raw(q, ",\"previous_buckets\":");
		write_buckets(q, t, &t->prev);
	}
	if (t->costs)
		write_costs(q, "costs", &t->ccur);
	if (t->costs && t->compare)
		write_costs(q, "previous_costs", &t->cprev);
	qo_raw(q, ",\"series\":[");
	bool first = true;
	for (int i = 0; i < t->nseries; i++) {
		struct tseries *s = &t->series[i];
		struct tscan sc;
		if ((rc = scan(q, t, s, &t->cur, &sc)))
			return rc;
		if (t->bd_path)
			choose_top(q, t, s, &sc, t->cur.nb);
		write_series(q, t, s, i, &t->cur, &sc, false, &first);
		free_scan(q, &sc);
		if (t->compare) {
			if ((rc = scan(q, t, s, &t->prev, &sc)))
				return rc;
			write_series(q, t, s, i, &t->prev, &sc, true, &first);
			free_scan(q, &sc);
		}
	}
	qo_raw(q, "]}");
	return 0;
}
