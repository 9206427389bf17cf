/*
 * funnel.c - funnels: how far each person gets through 2..20 steps inside a
 * conversion window.
 *
 * Plan: every row of a step's (or an exclusion's) event that passes its
 * filters becomes a 16-byte entry {ts, person, step mask}; a counting sort
 * groups the entries by canonical person (no per-person allocation); each
 * person's entries are sorted by time and walked once by the chosen order's
 * automaton. Rows that match several steps carry several mask bits, exactly
 * as ClickHouse's windowFunnel() adds one (timestamp, step) pair per
 * matching condition.
 *
 * Order "sequential" is ClickHouse windowFunnel(window)(ts, c1..cN) in its
 * default mode: pairs sorted by (timestamp, step); a step-1 pair starts a
 * chain; a step-k pair extends the latest-starting chain that reached k-1 if
 * t - start <= window. docs/queries.md states this and the exact definitions
 * of "strict", "any", exclusions, conversion times and attribution; each
 * automaton below is checked against a brute-force search in the tests.
 */
#include "query/query_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define F_EXCL (1u << 31) /* entry is an exclusion; low bits are its gap mask */

enum { ORDER_SEQUENTIAL, ORDER_STRICT, ORDER_ANY };
enum { ATTR_FIRST, ATTR_LAST, ATTR_STEP };

struct fentry {
	int64_t ts;
	uint32_t who; /* canonical person while gathering; breakdown id (int32) after grouping */
	uint32_t mask;
};

struct fexcl {
	struct qsel sel;
	int64_t from, to; /* 1-based steps */
	uint32_t gaps;	  /* bit g: between step g+1 and step g+2 */
};

struct funnel {
	struct qsel steps[QUERY_MAX_STEPS];
	int nsteps;
	struct fexcl *excl;
	size_t nexcl;
	int64_t window;
	int order;
	const char *bd_path;
	int attribution;
	int64_t attr_step;
	int64_t bd_limit;
	bool want_persons, p_dropped;
	int64_t p_step, p_offset, p_limit;
	struct qintern intern;
	struct qvec entries; /* struct fentry */
	struct qvec bds;     /* int32_t per entry (breakdown only) */
	struct qvec persons; /* uint32_t: the persons list asked for */
	uint32_t *count;     /* npersons + 1: entries per person, at [person + 1] */
};

/* What one person's walk yields. */
struct fresult {
	int level;		       /* furthest step reached, 0..N */
	int64_t time[QUERY_MAX_STEPS]; /* time[k]: ms from step k to step k+1 (0-based k >= 1) */
};

/* ---- parsing -------------------------------------------------------- */

static int parse(struct qctx *q, struct funnel *f)
{
	static const char *const keys[] = {"kind",
					   "steps",
					   "window",
					   "order",
					   "exclusions",
					   "breakdown",
					   "breakdown_attribution",
					   "breakdown_attribution_step",
					   "breakdown_limit",
					   "persons",
					   "date_from",
					   "date_to",
					   "timezone",
					   "filters",
					   NULL};
	int rc = qj_keys(q, q->root, "", keys);
	if (rc || (rc = qj_time(q, false)))
		return rc;
	const cJSON *js = cJSON_GetObjectItemCaseSensitive(q->root, "steps");
	if (!js)
		return qerr(q, "steps: required (2 to %d steps)", QUERY_MAX_STEPS);
	if (!cJSON_IsArray(js))
		return qerr(q, "steps: must be an array of 2 to %d steps", QUERY_MAX_STEPS);
	int n = cJSON_GetArraySize(js);
	if (n < 2 || n > QUERY_MAX_STEPS)
		return qerr(q, "steps: a funnel has 2 to %d steps (got %d)", QUERY_MAX_STEPS, n);
	f->nsteps = n;
	int i = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, js)
	{
		char *field = qa_printf(&q->arena, "steps[%d]", i);
		if ((rc = qsel_parse(q, it, field, NULL, true, &f->steps[i])))
			return rc;
		i++;
	}
	f->window = 14 * MS_PER_DAY;
	if ((rc = qj_duration(q, q->root, "window", "", &f->window)))
		return rc;
	static const char *const orders[] = {"sequential", "strict", "any", NULL};
	f->order = ORDER_SEQUENTIAL;
	if ((rc = qj_enum(q, q->root, "order", "", orders, &f->order)))
		return rc;

	const cJSON *jx = cJSON_GetObjectItemCaseSensitive(q->root, "exclusions");
	if (jx) {
		if (!cJSON_IsArray(jx))
			return qerr(q, "exclusions: must be an array");
		int nx = cJSON_GetArraySize(jx);
		if (nx > QUERY_MAX_STEPS)
			return qerr(q, "exclusions: at most %d", QUERY_MAX_STEPS);
		if (nx && f->order == ORDER_ANY)
			return qerr(q, "exclusions: not supported with order \"any\" (steps have "
				       "no order there, so no step is between two others)");
		f->excl = qa_calloc(&q->arena, (size_t)(nx ? nx : 1), sizeof(*f->excl));
		f->nexcl = (size_t)nx;
		static const char *const extra[] = {"from_step", "to_step", NULL};
		i = 0;
		cJSON_ArrayForEach(it, jx)
		{
			struct fexcl *x = &f->excl[i];
			char *field = qa_printf(&q->arena, "exclusions[%d]", i);
			if ((rc = qsel_parse(q, it, field, extra, true, &x->sel)))
				return rc;
			x->from = 1;
			x->to = n;
			if ((rc = qj_int(q, it, "from_step", field, 1, n - 1, &x->from)) ||
			    (rc = qj_int(q, it, "to_step", field, 2, n, &x->to)))
				return rc;
			if (x->to <= x->from)
				return qerr(q, "%s.to_step: must be greater than from_step (%lld)",
					    field, (long long)x->from);
			for (int64_t g = x->from - 1; g <= x->to - 2; g++)
				x->gaps |= 1u << g;
			i++;
		}
	}

	if ((rc = qj_string(q, q->root, "breakdown", "", &f->bd_path)))
		return rc;
	static const char *const attrs[] = {"first_touch", "last_touch", "step", NULL};
	f->attribution = ATTR_FIRST;
	f->bd_limit = 10;
	if ((rc = qj_enum(q, q->root, "breakdown_attribution", "", attrs, &f->attribution)) ||
	    (rc = qj_int(q, q->root, "breakdown_attribution_step", "", 1, n, &f->attr_step)) ||
	    (rc = qj_int(q, q->root, "breakdown_limit", "", 1, QUERY_MAX_BREAKDOWN, &f->bd_limit)))
		return rc;
	if (f->bd_path) {
		if (!*f->bd_path)
			return qerr(q, "breakdown: must be a property path");
		/* the property must exist on some step's event */
		bool found = false;
		for (int s = 0; s < n && !found; s++) {
			struct query_column col;
			if ((rc = qprop_find(q, f->steps[s].event, f->bd_path, &col, &found)))
				return rc;
		}
		if (!found)
			return qerr(q,
				    "breakdown: unknown property \"%s\" (no step's event has it)",
				    f->bd_path);
		if (f->attribution == ATTR_STEP && !f->attr_step)
			return qerr(q,
				    "breakdown_attribution_step: required with attribution "
				    "\"step\" (1 to %d)",
				    n);
	} else if (cJSON_GetObjectItemCaseSensitive(q->root, "breakdown_attribution") ||
		   cJSON_GetObjectItemCaseSensitive(q->root, "breakdown_limit")) {
		return qerr(q, "breakdown: required when breakdown_attribution or "
			       "breakdown_limit is given");
	}
	if (f->attr_step && f->attribution != ATTR_STEP)
		return qerr(q, "breakdown_attribution_step: only used with attribution \"step\"");

	const cJSON *jp = cJSON_GetObjectItemCaseSensitive(q->root, "persons");
	if (jp) {
		static const char *const pkeys[] = {"step", "dropped", "offset", "limit", NULL};
		if ((rc = qj_keys(q, jp, "persons", pkeys)))
			return rc;
		f->want_persons = true;
		f->p_limit = 100;
		if ((rc = qj_int(q, jp, "step", "persons", 1, n, &f->p_step)) ||
		    (rc = qj_bool(q, jp, "dropped", "persons", &f->p_dropped)) ||
		    (rc = qj_int(q, jp, "offset", "persons", 0, QUERY_MAX_OFFSET, &f->p_offset)) ||
		    (rc = qj_int(q, jp, "limit", "persons", 1, QUERY_MAX_PAGE, &f->p_limit)))
			return rc;
		if (!f->p_step)
			return qerr(q, "persons.step: required (1 to %d)", n);
		if (f->p_dropped && f->p_step == 1)
			return qerr(q, "persons.step: nobody drops off at step 1 (the persons who "
				       "dropped off at step k reached step k-1 but not step k)");
	}
	return 0;
}

/* ---- gathering ------------------------------------------------------ */

static bool applies(const struct qsel *s, const char *name)
{
	return !*s->event || strcmp(s->event, name) == 0;
}

/* Entries for every row of chunks(name) that matters to the funnel. */
static int gather_name(struct qctx *q, struct funnel *f, const char *name, const char *src_name)
{
	int steps_here[QUERY_MAX_STEPS], nsh = 0;
	int excl_here[QUERY_MAX_STEPS], nxh = 0;
	for (int s = 0; s < f->nsteps; s++)
		if (applies(&f->steps[s], name))
			steps_here[nsh++] = s;
	for (size_t x = 0; x < f->nexcl; x++)
		if (applies(&f->excl[x].sel, name))
			excl_here[nxh++] = (int)x;
	/* strict order: every row of a step's event name takes part, matching or not */
	bool considered = f->order == ORDER_STRICT && nsh > 0;
	if (!nsh && !nxh)
		return 0;
	const struct query_chunk *chunks;
	size_t nchunks = q->src->chunks(q->src->ctx, src_name, &chunks);
	uint64_t *bits[2 * QUERY_MAX_STEPS + 1];
	struct qbits poolb = {0};
	uint64_t *pool = NULL;
	/* strict order also needs the rows that pass only the global filters */
	struct qsel global = {.field = "filters", .event = "", .f = q->global, .nf = q->nglobal};
	int nsel = nsh + nxh + (considered ? 1 : 0);
	for (size_t ci = 0; ci < nchunks; ci++) {
		const struct query_chunk *c = &chunks[ci];
		size_t lo, hi;
		qchunk_range(q, c, &lo, &hi);
		if (lo >= hi)
			continue;
		pool = qbits_fit(&q->arena, &poolb, hi - lo, (size_t)nsel);
		for (int k = 0; k < nsel; k++) {
			bits[k] = pool + (size_t)k * poolb.cap;
			const struct qsel *sel = k < nsh	 ? &f->steps[steps_here[k]]
						 : k < nsh + nxh ? &f->excl[excl_here[k - nsh]].sel
								 : &global;
			int rc = qsel_eval(q, sel, c, lo, hi, bits[k]);
			if (rc)
				return rc;
		}
		struct qbdcol bc;
		bool bd = f->bd_path && nsh > 0;
		if (bd) {
			int rc = qbdcol_open(q, &f->intern, f->bd_path, c, &bc);
			if (rc)
				return rc;
		}
		for (size_t i = 0; i < hi - lo; i++) {
			uint32_t mask = 0, gaps = 0;
			for (int k = 0; k < nsh; k++)
				if (qbit(bits[k], i))
					mask |= 1u << steps_here[k];
			for (int k = 0; k < nxh; k++)
				if (qbit(bits[nsh + k], i))
					gaps |= f->excl[excl_here[k]].gaps;
			bool other = considered && qbit(bits[nsh + nxh], i);
			if (!mask && !gaps && !other)
				continue;
			uint32_t person;
			if (qperson(q, c->pid[lo + i], &person))
				return qerr_pid(q, c->pid[lo + i]);
			if (f->entries.n + 2 > f->entries.cap)
				qvec_reserve(&q->arena, &f->entries, f->entries.n + 2);
			f->count[person + 1] += (mask || other) + (gaps != 0);
			if (mask || other) {
				struct fentry *e = (struct fentry *)f->entries.p + f->entries.n++;
				e->ts = c->ts[lo + i];
				e->who = person;
				e->mask = mask;
				if (f->bd_path) {
					int32_t *b = qvec_push(&q->arena, &f->bds);
					*b = mask && bd ? qbdcol_get(q, &f->intern, &bc, lo + i)
							: QBD_NONE;
				}
			}
			if (gaps) {
				struct fentry *e = (struct fentry *)f->entries.p + f->entries.n++;
				e->ts = c->ts[lo + i];
				e->who = person;
				e->mask = F_EXCL | gaps;
				if (f->bd_path) {
					int32_t *b = qvec_push(&q->arena, &f->bds);
					*b = QBD_NONE;
				}
			}
		}
		if (bd)
			qbdcol_close(q, &bc);
	}
	qa_big_free(&q->arena, pool);
	return 0;
}

/* Rows of name inside the range: room to reserve before gathering. */
static size_t rows_in_range(struct qctx *q, const char *name)
{
	const struct query_chunk *chunks;
	size_t n = q->src->chunks(q->src->ctx, name, &chunks), rows = 0;
	for (size_t i = 0; i < n; i++) {
		size_t lo, hi;
		qchunk_range(q, &chunks[i], &lo, &hi);
		rows += hi - lo;
	}
	return rows;
}

static int gather(struct qctx *q, struct funnel *f)
{
	bool every = false;
	for (int s = 0; s < f->nsteps; s++)
		every |= !*f->steps[s].event;
	for (size_t x = 0; x < f->nexcl; x++)
		every |= !*f->excl[x].sel.event;
	int rc;
	if (every) {
		/* some selector reads every event: walk the names one by one so
		 * each chunk is read once and knows its name */
		for (size_t i = 0; i < q->nnames; i++)
			if ((rc = gather_name(q, f, q->names[i], q->names[i])))
				return rc;
		return 0;
	}
	const char *done[2 * QUERY_MAX_STEPS];
	size_t ndone = 0, rows = 0;
	for (size_t k = 0; k < (size_t)f->nsteps + f->nexcl; k++) {
		const char *name =
		    k < (size_t)f->nsteps ? f->steps[k].event : f->excl[k - f->nsteps].sel.event;
		bool seen = false;
		for (size_t d = 0; d < ndone; d++)
			seen |= strcmp(done[d], name) == 0;
		if (!seen) {
			done[ndone++] = name;
			rows += rows_in_range(q, name);
		}
	}
	/* most rows of the steps' events become one entry: reserve once */
	qvec_reserve(&q->arena, &f->entries, rows + 2);
	for (size_t d = 0; d < ndone; d++)
		if ((rc = gather_name(q, f, done[d], done[d])))
			return rc;
	return 0;
}

/* ---- per-person automata -------------------------------------------- */

/* windowFunnel default mode, plus exclusions. has[k]: some chain reached
 * step k+1 and may still be extended; start[k]: the latest start among such
 * chains (starts only grow, so the latest is the best for the window);
 * at[k]: the time of the step-(k+1) event that set it. */
static void walk_sequential(const struct funnel *f, const struct fentry *e, size_t n,
			    struct fresult *r)
{
	int N = f->nsteps;
	bool has[QUERY_MAX_STEPS] = {0};
	int64_t start[QUERY_MAX_STEPS], at[QUERY_MAX_STEPS];
	r->level = 0;
	for (size_t i = 0; i < n;) {
		int64_t t = e[i].ts;
		uint32_t steps = 0, gaps = 0;
		for (; i < n && e[i].ts == t; i++) {
			if (e[i].mask & F_EXCL)
				gaps |= e[i].mask & ~F_EXCL;
			else
				steps |= e[i].mask;
		}
		/* pairs at one timestamp are taken in step order */
		for (int s = 0; s < N; s++) {
			if (!((steps >> s) & 1))
				continue;
			if (s == 0) {
				has[0] = true;
				start[0] = at[0] = t;
				if (r->level < 1)
					r->level = 1;
			} else if (has[s - 1] && t - start[s - 1] <= f->window) {
				if (r->level < s + 1) {
					/* first time step s+1 is reached */
					r->time[s] = t - at[s - 1];
					r->level = s + 1;
				}
				has[s] = true;
				start[s] = start[s - 1];
				at[s] = t;
			}
		}
		if (r->level == N)
			return;
		/* an exclusion at t separates every step event before t from
		 * the next step's events after t */
		for (int g = 0; gaps && g < N - 1; g++)
			if (((gaps >> g) & 1) && has[g] && at[g] < t)
				has[g] = false;
	}
}

/* Strict order: the steps of a chain are consecutive among the person's
 * events of the funnel's step names (events at the same millisecond count
 * as neither before nor after each other). cur/prev: per step, the latest
 * start of a chain whose step event is at the current / previous moment. */
static void walk_strict(const struct funnel *f, const struct fentry *e, size_t n, struct fresult *r)
{
	int N = f->nsteps;
	bool pv[QUERY_MAX_STEPS] = {0}, cu[QUERY_MAX_STEPS];
	int64_t ps[QUERY_MAX_STEPS], cs[QUERY_MAX_STEPS];
	bool have_prev = false;
	int64_t prev_t = 0;
	uint32_t between = 0; /* exclusion gaps strictly between the previous moment and now */
	r->level = 0;
	for (size_t i = 0; i < n;) {
		int64_t t = e[i].ts;
		uint32_t steps = 0, gaps = 0;
		bool moment = false;
		for (; i < n && e[i].ts == t; i++) {
			if (e[i].mask & F_EXCL) {
				gaps |= e[i].mask & ~F_EXCL;
			} else {
				steps |= e[i].mask;
				moment = true;
			}
		}
		if (!moment) {
			between |= gaps;
			continue;
		}
		for (int s = 0; s < N; s++) {
			cu[s] = false;
			if (!((steps >> s) & 1))
				continue;
			if (s == 0) {
				cu[0] = true;
				cs[0] = t;
				if (r->level < 1)
					r->level = 1;
				continue;
			}
			bool same = cu[s - 1] && t - cs[s - 1] <= f->window;
			bool back = have_prev && pv[s - 1] && !((between >> (s - 1)) & 1) &&
				    t - ps[s - 1] <= f->window;
			if (!same && !back)
				continue;
			cu[s] = true;
			cs[s] = same && (!back || cs[s - 1] >= ps[s - 1]) ? cs[s - 1] : ps[s - 1];
			if (r->level < s + 1) {
				r->time[s] = same ? 0 : t - prev_t;
				r->level = s + 1;
			}
		}
		if (r->level == N)
			return;
		memcpy(pv, cu, sizeof(pv));
		memcpy(ps, cs, sizeof(ps));
		have_prev = true;
		prev_t = t;
		between = 0; /* exclusions at t itself are between nothing */
	}
}

/* Any order: step k is reached when steps 1..k all happen inside one
 * window; its time is when that first happens. count[s]: moments in the
 * sliding window [t - window, t] with a step-s event. */
static void walk_any(const struct funnel *f, const struct fentry *e, size_t n, struct fresult *r,
		     int64_t *mts, uint32_t *mmask)
{
	int N = f->nsteps;
	size_t m = 0;
	for (size_t i = 0; i < n;) {
		int64_t t = e[i].ts;
		uint32_t steps = 0;
		for (; i < n && e[i].ts == t; i++)
			steps |= e[i].mask & ~F_EXCL;
		if (steps) {
			mts[m] = t;
			mmask[m++] = steps;
		}
	}
	int count[QUERY_MAX_STEPS] = {0};
	int64_t first[QUERY_MAX_STEPS];
	r->level = 0;
	for (size_t lo = 0, hi = 0; hi < m; hi++) {
		for (int s = 0; s < N; s++)
			count[s] += (mmask[hi] >> s) & 1;
		while (mts[hi] - mts[lo] > f->window) {
			for (int s = 0; s < N; s++)
				count[s] -= (mmask[lo] >> s) & 1;
			lo++;
		}
		int k = 0;
		while (k < N && count[k] > 0)
			k++;
		for (int s = r->level; s < k; s++) {
			first[s] = mts[hi];
			if (s > 0)
				r->time[s] = first[s] - first[s - 1];
		}
		if (k > r->level)
			r->level = k;
		if (r->level == N)
			return;
	}
}

/* ---- attribution ---------------------------------------------------- */

/* Smaller value wins ties at one millisecond. */
static bool value_before(const struct qintern *t, int32_t a, int32_t b)
{
	return strcmp(t->str[a], t->str[b]) < 0;
}

static int32_t attribute(const struct funnel *f, const struct fentry *e, size_t n)
{
	int32_t best = QBD_NONE;
	int64_t best_ts = 0;
	uint32_t need = f->attribution == ATTR_STEP ? 1u << (f->attr_step - 1) : ~F_EXCL;
	for (size_t i = 0; i < n; i++) {
		int32_t v = (int32_t)e[i].who;
		if ((e[i].mask & F_EXCL) || !(e[i].mask & need) || v == QBD_NONE)
			continue;
		bool take;
		if (best == QBD_NONE)
			take = true;
		else if (e[i].ts == best_ts)
			take = value_before(&f->intern, v, best);
		else
			take = f->attribution == ATTR_LAST; /* entries are in time order */
		if (take) {
			best = v;
			best_ts = e[i].ts;
		}
	}
	return best;
}

/* ---- grouping and results ------------------------------------------- */

struct ftime {
	uint32_t key; /* slot * N + step */
	int64_t ms;
};

static int cmp_fentry_ts(const void *a, const void *b)
{
	const struct fentry *x = a, *y = b;
	return (x->ts > y->ts) - (x->ts < y->ts);
}

static void sort_person(struct fentry *e, size_t n)
{
	if (n > 32) {
		q_qsort(e, n, sizeof(*e), cmp_fentry_ts);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		struct fentry x = e[i];
		size_t j = i;
		while (j > 0 && e[j - 1].ts > x.ts) {
			e[j] = e[j - 1];
			j--;
		}
		e[j] = x;
	}
}

/* The k-th smallest of v[0..n) (v is reordered so that v[0..k) <= v[k]):
 * Hoare's selection, O(n) on average. */
static int64_t select_k(int64_t *v, size_t n, size_t k)
{
	ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1, kk = (ptrdiff_t)k;
	while (lo < hi) {
		int64_t a = v[lo], b = v[lo + (hi - lo) / 2], c = v[hi];
		int64_t pivot = a < b ? (b < c ? b : a < c ? c : a) : (a < c ? a : b < c ? c : b);
		ptrdiff_t i = lo, j = hi;
		while (i <= j) {
			while (v[i] < pivot)
				i++;
			while (v[j] > pivot)
				j--;
			if (i <= j) {
				int64_t t = v[i];
				v[i++] = v[j];
				v[j--] = t;
			}
		}
		/* [lo, j] <= pivot, (j, i) == pivot, [i, hi] >= pivot */
		if (kk <= j)
			hi = j;
		else if (kk >= i)
			lo = i;
		else
			return v[kk];
	}
	return v[kk];
}

/* Median (mean of the two middle values for even n); v is reordered. */
static double median_i64(int64_t *v, size_t n)
{
	int64_t hi = select_k(v, n, n / 2);
	if (n % 2)
		return (double)hi;
	/* the other middle value: the largest of the lower half */
	int64_t lo = v[0];
	for (size_t i = 1; i < n / 2; i++)
		if (v[i] > lo)
			lo = v[i];
	return ((double)lo + (double)hi) / 2;
}

/* Times grouped by key: ms values in key order, start[key] offsets. */
struct fgroups {
	int64_t *ms;
	uint32_t *start;
};

static void group_times(struct qctx *q, const struct ftime *t, size_t n, size_t nkeys,
			struct fgroups *g)
{
	uint32_t *key = qa_big_realloc(&q->arena, NULL, (n ? n : 1) * sizeof(uint32_t));
	for (size_t i = 0; i < n; i++)
		key[i] = t[i].key;
	uint32_t *perm = q_by_key(q, key, n, nkeys, &g->start);
	g->ms = qa_big_realloc(&q->arena, NULL, (n ? n : 1) * sizeof(int64_t));
	for (size_t i = 0; i < n; i++)
		g->ms[i] = t[perm[i]].ms;
	qa_big_free(&q->arena, perm);
	qa_big_free(&q->arena, key);
}

/* Writes the steps of one group; times of step s are g->ms[start[base + s] ..). */
static void write_steps(struct qctx *q, const struct funnel *f, const uint64_t *count,
			const struct fgroups *g, size_t base)
{
	qo_raw(q, "[");
	for (int s = 0; s < f->nsteps; s++) {
		size_t a = g->start[base + s], b = g->start[base + s + 1];
		qo_printf(q, "%s{\"step\":%d,\"event\":", s ? "," : "", s + 1);
		qo_str(q, f->steps[s].event);
		qo_printf(q, ",\"persons\":%llu,\"conversion_from_first_pct\":",
			  (unsigned long long)count[s]);
		qo_num(q, count[0] ? 100.0 * (double)count[s] / (double)count[0] : NAN);
		qo_raw(q, ",\"conversion_from_previous_pct\":");
		qo_num(q, s == 0	 ? (count[0] ? 100.0 : NAN)
			  : count[s - 1] ? 100.0 * (double)count[s] / (double)count[s - 1]
					 : NAN);
		qo_raw(q, ",\"median_ms\":");
		if (b > a) {
			double sum = 0;
			for (size_t i = a; i < b; i++)
				sum += (double)g->ms[i];
			qo_num(q, median_i64(g->ms + a, b - a));
			qo_raw(q, ",\"mean_ms\":");
			qo_num(q, sum / (double)(b - a));
		} else {
			qo_raw(q, "null,\"mean_ms\":null");
		}
		qo_raw(q, "}");
	}
	qo_raw(q, "]");
}

int query_funnel(struct qctx *q)
{
	struct funnel *f = qa_calloc(&q->arena, 1, sizeof(*f));
	int rc = parse(q, f);
	if (rc)
		return rc;
	qintern_init(&f->intern);
	qvec_init(&f->entries, sizeof(struct fentry));
	qvec_init(&f->bds, sizeof(int32_t));
	qvec_init(&f->persons, sizeof(uint32_t));
	uint32_t np = q->src->npersons;
	f->count = qa_big_realloc(&q->arena, NULL, ((size_t)np + 1) * sizeof(uint32_t));
	memset(f->count, 0, ((size_t)np + 1) * sizeof(uint32_t));
	if ((rc = gather(q, f)))
		return rc;

	/* counting sort of the entries by person; after it, "who" holds the
	 * entry's breakdown value id */
	size_t n = f->entries.n;
	if (n >= UINT32_MAX)
		return qerr_code(q, TD_ETOOLARGE, "query: more than 4 billion funnel events");
	/* off[p] = start of person p's run, off[p + 1] its end */
	uint32_t *off = f->count;
	for (uint32_t p = 0; p < np; p++)
		off[p + 1] += off[p];
	/* Two passes for cache locality (an MSD radix sort): first into 1024
	 * buckets of person ids (1024 sequential write streams), then by person
	 * inside each bucket, whose range fits in cache. A single scatter into
	 * the whole array misses the cache on almost every entry. */
	unsigned shift = 0;
	while (shift < 32 && ((uint64_t)np >> shift) > 1024)
		shift++;
	size_t nb = ((size_t)np >> shift) + 1;
	uint32_t *bcur = qa_big_realloc(&q->arena, NULL, (nb + 1) * sizeof(uint32_t));
	for (size_t b = 0; b <= nb; b++)
		bcur[b] = off[TD_MIN((size_t)np, b << shift)];
	struct fentry *in = f->entries.p;
	struct fentry *tmp = qa_big_realloc(&q->arena, NULL, (n ? n : 1) * sizeof(*tmp));
	const int32_t *bds = f->bds.p;
	int32_t *tmp_bd = NULL;
	if (f->bd_path)
		tmp_bd = qa_big_realloc(&q->arena, NULL, (n ? n : 1) * sizeof(int32_t));
	for (size_t i = 0; i < n; i++) {
		uint32_t at = bcur[in[i].who >> shift]++;
		tmp[at] = in[i];
		if (tmp_bd)
			tmp_bd[at] = bds[i];
	}
	qa_big_free(&q->arena, bcur);
	/* second pass: back into the first array, now by person */
	struct fentry *by = in;
	for (size_t i = 0; i < n; i++) {
		struct fentry x = tmp[i];
		uint32_t p = x.who;
		x.who = tmp_bd ? (uint32_t)tmp_bd[i] : (uint32_t)QBD_NONE;
		by[off[p]++] = x;
	}
	/* off[p] is now the end of person p's run (the start of p + 1's) */
	qa_big_free(&q->arena, tmp);
	qa_big_free(&q->arena, tmp_bd);
	qa_big_free(&q->arena, f->bds.p);
	f->bds.p = NULL;

	int N = f->nsteps;
	/* slot 0: no breakdown value (or no breakdown); slot id + 1: value id */
	size_t nslots = f->bd_path ? f->intern.n + 1 : 1;
	uint64_t *count = qa_calloc(&q->arena, nslots * (size_t)N, sizeof(uint64_t));
	struct qvec times;
	qvec_init(&times, sizeof(struct ftime));
	int64_t *mts = NULL;
	uint32_t *mmask = NULL;
	size_t mcap = 0;
	for (uint32_t p = 0; p < np; p++) {
		size_t a = p ? off[p - 1] : 0, b = off[p];
		if (a == b)
			continue;
		struct fentry *e = by + a;
		size_t k = b - a;
		sort_person(e, k);
		struct fresult r;
		if (f->order == ORDER_SEQUENTIAL) {
			walk_sequential(f, e, k, &r);
		} else if (f->order == ORDER_STRICT) {
			walk_strict(f, e, k, &r);
		} else {
			if (k > mcap) {
				mcap = k * 2;
				mts = qa_big_realloc(&q->arena, mts, mcap * sizeof(*mts));
				mmask = qa_big_realloc(&q->arena, mmask, mcap * sizeof(*mmask));
			}
			walk_any(f, e, k, &r, mts, mmask);
		}
		if (r.level == 0)
			continue;
		uint32_t slot = 0;
		if (f->bd_path)
			slot = (uint32_t)(attribute(f, e, k) + 1);
		for (int s = 0; s < r.level; s++)
			count[(size_t)slot * N + s]++;
		for (int s = 1; s < r.level; s++) {
			struct ftime *t = qvec_push(&q->arena, &times);
			t->key = slot * (uint32_t)N + (uint32_t)s;
			t->ms = r.time[s];
		}
		if (f->want_persons) {
			bool in_list =
			    f->p_dropped ? r.level == f->p_step - 1 : r.level >= f->p_step;
			if (in_list)
				*(uint32_t *)qvec_push(&q->arena, &f->persons) = p;
		}
	}

	/* overall: all slots together */
	uint64_t total[QUERY_MAX_STEPS] = {0};
	for (size_t sl = 0; sl < nslots; sl++)
		for (int s = 0; s < N; s++)
			total[s] += count[sl * N + s];
	struct ftime *tv = times.p;
	size_t nt = times.n;
	/* overall times: by step alone */
	struct ftime *all = qa_big_realloc(&q->arena, NULL, (nt ? nt : 1) * sizeof(*all));
	for (size_t i = 0; i < nt; i++) {
		all[i].key = tv[i].key % (uint32_t)N;
		all[i].ms = tv[i].ms;
	}
	struct fgroups g_all;
	group_times(q, all, nt, (size_t)N, &g_all);
	qa_big_free(&q->arena, all);

	static const char *const order_names[] = {"sequential", "strict", "any"};
	qo_raw(q, "{\"kind\":\"funnel\",\"order\":");
	qo_str(q, order_names[f->order]);
	qo_printf(q, ",\"window_ms\":%lld,\"steps\":", (long long)f->window);
	write_steps(q, f, total, &g_all, 0);

	if (f->bd_path) {
		/* rank values by persons who entered; the rest go to "other" */
		struct qgroup_rank *g = qa_big_realloc(&q->arena, NULL, nslots * sizeof(*g));
		size_t ng = 0;
		for (size_t sl = 0; sl < nslots; sl++) {
			if (count[sl * N] == 0)
				continue;
			g[ng].id = (int32_t)sl - 1;
			g[ng++].weight = (double)count[sl * N];
		}
		qgroups_sort(&f->intern, g, ng);
		size_t keep = ng < (size_t)f->bd_limit ? ng : (size_t)f->bd_limit;
		bool other = ng > keep;
		/* output position of each slot: rank, or keep for "other" */
		uint32_t *pos = qa_big_realloc(&q->arena, NULL, nslots * sizeof(*pos));
		for (size_t sl = 0; sl < nslots; sl++)
			pos[sl] = (uint32_t)keep;
		for (size_t i = 0; i < keep; i++)
			pos[g[i].id + 1] = (uint32_t)i;
		size_t nout = keep + other;
		uint64_t *gc =
		    qa_calloc(&q->arena, (nout ? nout : 1) * (size_t)N, sizeof(uint64_t));
		for (size_t sl = 0; sl < nslots; sl++)
			for (int s = 0; s < N; s++)
				gc[(size_t)pos[sl] * N + s] += count[sl * N + s];
		for (size_t i = 0; i < nt; i++) {
			uint32_t slot = tv[i].key / (uint32_t)N, step = tv[i].key % (uint32_t)N;
			tv[i].key = pos[slot] * (uint32_t)N + step;
		}
		struct fgroups gg;
		group_times(q, tv, nt, nout * (size_t)N, &gg);
		qo_raw(q, ",\"breakdown\":[");
		for (size_t o = 0; o < nout; o++) {
			qo_raw(q, o ? ",{\"breakdown_value\":" : "{\"breakdown_value\":");
			if (o < keep)
				qo_str(q, g[o].id == QBD_NONE ? NULL : f->intern.str[g[o].id]);
			else
				qo_raw(q, "null");
			qo_printf(q, ",\"is_other\":%s,\"steps\":", o < keep ? "false" : "true");
			write_steps(q, f, gc + o * N, &gg, o * (size_t)N);
			qo_raw(q, "}");
		}
		qo_raw(q, "]");
	}

	if (f->want_persons) {
		const uint32_t *pl = f->persons.p;
		size_t total_p = f->persons.n;
		qo_printf(
		    q,
		    ",\"persons\":{\"step\":%lld,\"dropped\":%s,\"offset\":%lld,\"limit\":%lld,"
		    "\"total\":%zu,\"pids\":[",
		    (long long)f->p_step, f->p_dropped ? "true" : "false", (long long)f->p_offset,
		    (long long)f->p_limit, total_p);
		for (size_t i = (size_t)f->p_offset, k = 0; i < total_p && k < (size_t)f->p_limit;
		     i++, k++)
			qo_printf(q, "%s%u", k ? "," : "", pl[i]);
		qo_raw(q, "]}");
	}
	qo_raw(q, "}");
	return 0;
}
