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
					   "include_bots",
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

/* What the rows of one event name can be to the funnel. */
struct fname {
	int steps_here[QUERY_MAX_STEPS], nsh;
	int excl_here[QUERY_MAX_STEPS], nxh;
	bool considered; /* strict order: every row of a step's name takes part */
	int nsel;	 /* selectors evaluated per chunk: steps, exclusions, considered */
};

/* One chunk's rows in the range, with every selector evaluated. */
struct fjob {
	const struct query_chunk *c;
	size_t lo, hi;
	const struct fname *nm;
	const uint64_t *bits[2 * QUERY_MAX_STEPS + 1]; /* per selector; NULL: every row */
	bool any_bits;
	const int32_t *bd; /* breakdown value id of row lo + i, or NULL */
	uint32_t *hist;	   /* entries per person bucket, then where the next one goes */
	uint64_t nentries;
	int rc;
	uint32_t bad;
};

/* Step mask, exclusion gaps and "considered" of row lo + i. */
static inline void row_bits(const struct funnel *f, const struct fjob *j, size_t i, uint32_t *mask,
			    uint32_t *gaps, bool *other)
{
	const struct fname *nm = j->nm;
	uint32_t m = 0, g = 0;
	for (int k = 0; k < nm->nsh; k++)
		if (!j->bits[k] || qbit(j->bits[k], i))
			m |= 1u << nm->steps_here[k];
	for (int k = 0; k < nm->nxh; k++)
		if (!j->bits[nm->nsh + k] || qbit(j->bits[nm->nsh + k], i))
			g |= f->excl[nm->excl_here[k]].gaps;
	int ko = nm->nsh + nm->nxh;
	*other = nm->considered && (!j->bits[ko] || qbit(j->bits[ko], i));
	*mask = m;
	*gaps = g;
}

/* The parallel part of a funnel. Gathering turns rows into entries placed
 * by person bucket (person >> shift): a first pass over each chunk counts
 * its entries per bucket, prefix sums give every (bucket, chunk) its place,
 * a second pass writes them there (tasks per chunk). Then each bucket is
 * sorted by person inside the bucket (a range that fits in cache) and its
 * persons walked (tasks per bucket), each worker summing into its own
 * counts and conversion times. */
struct fpar {
	const struct funnel *f;
	const struct query_source *src;
	struct fjob *jobs;
	unsigned shift;
	size_t nb;	    /* person buckets */
	uint32_t *bstart;   /* nb + 1: entries of bucket b at [bstart[b], bstart[b + 1]) */
	struct fentry *tmp; /* entries by bucket */
	int32_t *tmp_bd;    /* their breakdown ids (breakdown only) */
	struct fentry *mv;  /* entries moved to another bucket by canonical[] */
	int32_t *mv_bd;
	uint32_t *mstart; /* nb + 1: moved entries of bucket b */
	struct qarena *arena;
	size_t nslots;
	struct fworker *w;
	uint64_t *persons;    /* bitmap of the persons listed, or NULL */
	const uint64_t *keep; /* stored ids whose rows are gathered, or NULL: all */
	int *rc;	      /* per bucket */
	uint32_t *bad;	      /* per bucket: the id with a canonical id out of range */
};

/* A worker's scratch (each sized for the largest bucket) and results. */
struct fworker {
	uint32_t *local;     /* (1 << shift) + 1 counts */
	struct fentry *by;   /* the bucket's entries by person */
	struct fentry *stmp; /* merge sort room */
	int64_t *mts;	     /* order "any" */
	uint32_t *mmask;
	uint64_t *count; /* nslots * N */
	struct ftime *times;
	size_t ntimes, captimes;
	struct fmove *moves; /* entries found in the wrong bucket */
	size_t nmoves, capmoves;
};

struct fmove {
	struct fentry e; /* who: the canonical person */
	int32_t bd;
	uint32_t bucket;
};

static void count_task(void *arg, size_t ji, unsigned worker)
{
	struct fpar *fp = arg;
	struct fjob *j = &fp->jobs[ji];
	(void)worker;
	memset(j->hist, 0, fp->nb * sizeof(uint32_t));
	uint32_t cmask = 0, cgaps = 0;
	bool cother = false;
	if (!j->any_bits)
		row_bits(fp->f, j, 0, &cmask, &cgaps, &cother);
	uint64_t total = 0;
	for (size_t i = 0; i < j->hi - j->lo; i++) {
		uint32_t mask = cmask, gaps = cgaps;
		bool other = cother;
		if (j->any_bits)
			row_bits(fp->f, j, i, &mask, &gaps, &other);
		uint32_t ne = (mask || other) + (gaps != 0);
		if (!ne)
			continue;
		uint32_t pid = j->c->pid[j->lo + i];
		if (pid >= fp->src->npersons) {
			j->rc = TD_ECORRUPT;
			j->bad = pid;
			return;
		}
		if (fp->keep && !qbit(fp->keep, pid))
			continue;
		j->hist[pid >> fp->shift] += ne;
		total += ne;
	}
	j->nentries = total;
}

static void place_task(void *arg, size_t ji, unsigned worker)
{
	struct fpar *fp = arg;
	struct fjob *j = &fp->jobs[ji];
	(void)worker;
	uint32_t cmask = 0, cgaps = 0;
	bool cother = false;
	if (!j->any_bits)
		row_bits(fp->f, j, 0, &cmask, &cgaps, &cother);
	const int64_t *ts = j->c->ts;
	for (size_t i = 0; i < j->hi - j->lo; i++) {
		uint32_t mask = cmask, gaps = cgaps;
		bool other = cother;
		if (j->any_bits)
			row_bits(fp->f, j, i, &mask, &gaps, &other);
		if (!mask && !gaps && !other)
			continue;
		uint32_t person = j->c->pid[j->lo + i]; /* checked when counting */
		if (fp->keep && !qbit(fp->keep, person))
			continue;
		uint32_t *at = &j->hist[person >> fp->shift];
		if (mask || other) {
			struct fentry *e = &fp->tmp[*at];
			e->ts = ts[j->lo + i];
			e->who = person;
			e->mask = mask;
			if (fp->tmp_bd)
				fp->tmp_bd[*at] = mask && j->bd ? j->bd[i] : QBD_NONE;
			(*at)++;
		}
		if (gaps) {
			struct fentry *e = &fp->tmp[*at];
			e->ts = ts[j->lo + i];
			e->who = person;
			e->mask = F_EXCL | gaps;
			if (fp->tmp_bd)
				fp->tmp_bd[*at] = QBD_NONE;
			(*at)++;
		}
	}
}

/* ---- per-person automata -------------------------------------------- */

/* Whether a chain from `from` may reach `to` (from <= to), even for times
 * more than INT64_MAX apart. */
static inline bool within(const struct funnel *f, int64_t from, int64_t to)
{
	return (uint64_t)to - (uint64_t)from <= (uint64_t)f->window;
}

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
			} else if (has[s - 1] && within(f, start[s - 1], t)) {
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
			bool same = cu[s - 1] && within(f, cs[s - 1], t);
			bool back = have_prev && pv[s - 1] && !((between >> (s - 1)) & 1) &&
				    within(f, ps[s - 1], t);
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
		while (!within(f, mts[lo], mts[hi])) {
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

#define FENTRY_LESS(a, b, ctx) ((a)->ts < (b)->ts)
/* Sorts one person's entries by time (see Q_DEFINE_RUN_SORT). */
Q_DEFINE_RUN_SORT(sort_person_ctx, struct fentry, int, FENTRY_LESS)

static void sort_person(struct fentry *e, size_t n, struct fentry *tmp)
{
	sort_person_ctx(e, n, tmp, 0);
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

#define F_HIST_FROM 4096 /* values from which the median takes the bins first */

/* Median (mean of the two middle values for even n); v is reordered. Many
 * values: a histogram of bins (hist, or one made here; values >= 0) finds
 * the bins of the two middle ones, and only the values of those bins are
 * selected among (quickselect over all of them would mispredict a branch on
 * every other value). */
static double median_i64(int64_t *v, size_t n, const uint64_t *hist)
{
	size_t r2 = n / 2, r1 = (n - 1) / 2; /* ranks of the middle values */
	uint64_t own[QFUNNEL_BINS];
	bool negative = false;
	if (n >= F_HIST_FROM && !hist) {
		memset(own, 0, sizeof(own));
		for (size_t i = 0; i < n && !negative; i++) {
			negative = v[i] < 0;
			own[qfunnel_bin((uint64_t)v[i])]++;
		}
		hist = own;
	}
	if (n >= F_HIST_FROM && !negative) {
		size_t below = 0, b1 = 0;
		while (below + hist[b1] <= r1)
			below += hist[b1++];
		size_t b2 = b1, upto = below + hist[b1];
		while (upto <= r2)
			upto += hist[++b2];
		/* the values of bins b1..b2: [lo, hi] */
		uint64_t lo = qfunnel_bin_min((unsigned)b1);
		uint64_t hi =
		    b2 + 1 < QFUNNEL_BINS ? qfunnel_bin_min((unsigned)b2 + 1) - 1 : UINT64_MAX;
		size_t m = 0;
		for (size_t i = 0; i < n; i++) {
			if ((uint64_t)v[i] - lo <= hi - lo) {
				int64_t t = v[m];
				v[m++] = v[i];
				v[i] = t;
			}
		}
		n = m;
		r1 -= below;
		r2 -= below;
	}
	int64_t hi = select_k(v, n, r2);
	if (r1 == r2)
		return (double)hi;
	/* the other middle value: the largest below rank r2 */
	int64_t lo = v[0];
	for (size_t i = 1; i < r2; i++)
		if (v[i] > lo)
			lo = v[i];
	return ((double)lo + (double)hi) / 2;
}

/* Times grouped by key: ms values in key order, start[key] offsets. */
struct fgroups {
	int64_t *ms;
	uint32_t *start;
	const uint64_t *hist; /* NULL, or per key the values by qfunnel_bin() */
};

static void group_times(struct qctx *q, const struct ftime *t, size_t n, size_t nkeys,
			struct fgroups *g)
{
	uint32_t *key = qa_big_realloc(&q->arena, NULL, (n ? n : 1) * sizeof(uint32_t));
	for (size_t i = 0; i < n; i++)
		key[i] = t[i].key;
	uint32_t *perm = q_by_key(q, key, n, nkeys, &g->start);
	g->hist = NULL;
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
			const uint64_t *h = g->hist ? g->hist + (base + s) * QFUNNEL_BINS : NULL;
			qo_num(q, median_i64(g->ms + a, b - a, h));
			qo_raw(q, ",\"mean_ms\":");
			qo_num(q, sum / (double)(b - a));
		} else {
			qo_raw(q, "null,\"mean_ms\":null");
		}
		qo_raw(q, "}");
	}
	qo_raw(q, "]");
}

/* ---- walking persons, in parallel ------------------------------------ */

/* Grows a worker's array (thread-safe arena calls only); false when out of memory. */
static bool fgrow(struct qarena *a, void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return true;
	size_t n = *cap ? *cap : 64;
	while (n < need)
		n *= 2;
	void *x = qa_try_big_realloc(a, *p, n * size);
	if (!x)
		return false;
	*p = x;
	*cap = n;
	return true;
}

static int walk_person(struct fpar *fp, struct fworker *w, struct fentry *e, size_t k,
		       uint32_t person)
{
	const struct funnel *f = fp->f;
	int N = f->nsteps;
	sort_person(e, k, w->stmp);
	struct fresult r;
	if (f->order == ORDER_SEQUENTIAL)
		walk_sequential(f, e, k, &r);
	else if (f->order == ORDER_STRICT)
		walk_strict(f, e, k, &r);
	else
		walk_any(f, e, k, &r, w->mts, w->mmask);
	if (r.level == 0)
		return 0;
	uint32_t slot = 0;
	if (f->bd_path)
		slot = (uint32_t)(attribute(f, e, k) + 1);
	for (int s = 0; s < r.level; s++)
		w->count[(size_t)slot * N + s]++;
	if (r.level > 1 && !fgrow(fp->arena, (void **)&w->times, &w->captimes,
				  w->ntimes + (size_t)r.level, sizeof(*w->times)))
		return TD_ENOMEM;
	for (int s = 1; s < r.level; s++) {
		struct ftime *t = &w->times[w->ntimes++];
		t->key = slot * (uint32_t)N + (uint32_t)s;
		t->ms = r.time[s];
	}
	if (fp->persons) {
		bool in_list = f->p_dropped ? r.level == f->p_step - 1 : r.level >= f->p_step;
		if (in_list) /* buckets may share a word of the bitmap */
			__atomic_fetch_or(&fp->persons[person >> 6], 1ULL << (person & 63),
					  __ATOMIC_RELAXED);
	}
	return 0;
}

#define F_DEAD UINT32_MAX /* an entry that moved to another bucket */

/* Entries were placed by stored person id, which needs no read of
 * canonical[] per row; here each bucket maps its ids, reading only its own
 * slice of canonical[]. Entries whose canonical person belongs to another
 * bucket are set aside (and marked dead here) for the main thread to hand
 * over. */
static void map_task(void *arg, size_t b, unsigned worker)
{
	struct fpar *fp = arg;
	struct fworker *w = &fp->w[worker];
	const uint32_t *canon = fp->src->canonical;
	uint32_t np = fp->src->npersons;
	for (size_t i = fp->bstart[b]; i < fp->bstart[b + 1]; i++) {
		uint32_t p = fp->tmp[i].who, c = canon[p];
		if (c >= np) {
			fp->rc[b] = TD_ECORRUPT;
			fp->bad[b] = p;
			return;
		}
		if ((c >> fp->shift) == b) {
			fp->tmp[i].who = c;
			continue;
		}
		if (!fgrow(fp->arena, (void **)&w->moves, &w->capmoves, w->nmoves + 1,
			   sizeof(*w->moves))) {
			fp->rc[b] = TD_ENOMEM;
			return;
		}
		struct fmove *m = &w->moves[w->nmoves++];
		m->e = fp->tmp[i];
		m->e.who = c;
		m->bd = fp->tmp_bd ? fp->tmp_bd[i] : QBD_NONE;
		m->bucket = c >> fp->shift;
		fp->tmp[i].who = F_DEAD;
	}
}

/* Sorts bucket b's entries by person (a counting sort over the bucket's
 * persons; "who" becomes the breakdown value id) and walks each person. */
static void walk_task(void *arg, size_t b, unsigned worker)
{
	struct fpar *fp = arg;
	struct fworker *w = &fp->w[worker];
	size_t a = fp->bstart[b], z = fp->bstart[b + 1];
	size_t ma = fp->mstart ? fp->mstart[b] : 0, mz = fp->mstart ? fp->mstart[b + 1] : 0;
	if (a == z && ma == mz)
		return;
	size_t nloc = (size_t)1 << fp->shift;
	uint32_t *cnt = w->local, lowmask = (uint32_t)nloc - 1;
	memset(cnt, 0, (nloc + 1) * sizeof(uint32_t));
	for (size_t i = a; i < z; i++)
		if (fp->tmp[i].who != F_DEAD)
			cnt[(fp->tmp[i].who & lowmask) + 1]++;
	for (size_t i = ma; i < mz; i++)
		cnt[(fp->mv[i].who & lowmask) + 1]++;
	for (size_t p = 0; p < nloc; p++)
		cnt[p + 1] += cnt[p];
	struct fentry *by = w->by;
	for (size_t i = a; i < z; i++) {
		struct fentry x = fp->tmp[i];
		if (x.who == F_DEAD)
			continue;
		uint32_t p = x.who & lowmask;
		x.who = fp->tmp_bd ? (uint32_t)fp->tmp_bd[i] : (uint32_t)QBD_NONE;
		by[cnt[p]++] = x;
	}
	for (size_t i = ma; i < mz; i++) {
		struct fentry x = fp->mv[i];
		uint32_t p = x.who & lowmask;
		x.who = fp->mv_bd ? (uint32_t)fp->mv_bd[i] : (uint32_t)QBD_NONE;
		by[cnt[p]++] = x;
	}
	/* cnt[p] is now the end of local person p's entries */
	uint32_t base = (uint32_t)(b << fp->shift);
	for (size_t p = 0, from = 0; p < nloc; p++) {
		size_t to = cnt[p];
		if (to > from) {
			int rc = walk_person(fp, w, by + from, to - from, base + (uint32_t)p);
			if (rc) {
				fp->rc[b] = rc;
				return;
			}
		}
		from = to;
	}
}

/* Every chunk of every name the funnel reads, with its selectors evaluated
 * (filters read columns: on the query's thread). */
static int make_jobs(struct qctx *q, struct funnel *f, struct qvec *jobs)
{
	bool every = false;
	for (int s = 0; s < f->nsteps; s++)
		every |= !*f->steps[s].event;
	for (size_t x = 0; x < f->nexcl; x++)
		every |= !*f->excl[x].sel.event;
	/* names to read: each once, so each chunk is read once and knows its name */
	const char **names =
	    qa_alloc(&q->arena, (q->nnames + 2 * QUERY_MAX_STEPS + 1) * sizeof(*names));
	size_t nn = 0;
	if (every) {
		for (size_t i = 0; i < q->nnames; i++)
			names[nn++] = q->names[i];
	} else {
		for (size_t k = 0; k < (size_t)f->nsteps + f->nexcl; k++) {
			const char *name = k < (size_t)f->nsteps ? f->steps[k].event
								 : f->excl[k - f->nsteps].sel.event;
			bool seen = false;
			for (size_t d = 0; d < nn; d++)
				seen |= strcmp(names[d], name) == 0;
			if (!seen)
				names[nn++] = name;
		}
	}
	/* strict order also needs the rows that pass only the global filters */
	struct qsel *global = qa_alloc(&q->arena, sizeof(*global));
	*global = (struct qsel){.field = "filters", .event = "", .f = q->global, .nf = q->nglobal};
	for (size_t d = 0; d < nn; d++) {
		struct fname *nm = qa_calloc(&q->arena, 1, sizeof(*nm));
		for (int s = 0; s < f->nsteps; s++)
			if (applies(&f->steps[s], names[d]))
				nm->steps_here[nm->nsh++] = s;
		for (size_t x = 0; x < f->nexcl; x++)
			if (applies(&f->excl[x].sel, names[d]))
				nm->excl_here[nm->nxh++] = (int)x;
		nm->considered = f->order == ORDER_STRICT && nm->nsh > 0;
		nm->nsel = nm->nsh + nm->nxh + (nm->considered ? 1 : 0);
		if (!nm->nsh && !nm->nxh)
			continue;
		const struct query_chunk *chunks;
		size_t nchunks = q->src->chunks(q->src->ctx, names[d], &chunks);
		for (size_t ci = 0; ci < nchunks; ci++) {
			const struct query_chunk *c = &chunks[ci];
			size_t lo, hi;
			qchunk_range(q, c, &lo, &hi);
			if (lo >= hi)
				continue;
			struct fjob *j = qvec_push(&q->arena, jobs);
			memset(j, 0, sizeof(*j));
			j->c = c;
			j->lo = lo;
			j->hi = hi;
			j->nm = nm;
			for (int k = 0; k < nm->nsel; k++) {
				const struct qsel *sel =
				    k < nm->nsh ? &f->steps[nm->steps_here[k]]
				    : k < nm->nsh + nm->nxh
					? &f->excl[nm->excl_here[k - nm->nsh]].sel
					: global;
				if (!sel->nf)
					continue;
				uint64_t *bits = qa_big_realloc(
				    &q->arena, NULL, (hi - lo + 63) / 64 * sizeof(uint64_t));
				int rc = qsel_eval(q, sel, c, lo, hi, bits);
				if (rc)
					return rc;
				j->bits[k] = bits;
				j->any_bits = true;
			}
			if (f->bd_path && nm->nsh > 0) {
				struct qbdcol bc;
				int rc = qbdcol_open(q, &f->intern, f->bd_path, c, &bc);
				if (rc)
					return rc;
				int32_t *bd =
				    qa_big_realloc(&q->arena, NULL, (hi - lo) * sizeof(int32_t));
				for (size_t i = lo; i < hi; i++)
					bd[i - lo] = qbdcol_get(q, &f->intern, &bc, i);
				qbdcol_close(q, &bc);
				j->bd = bd;
			}
		}
	}
	return 0;
}

/* Maps stored ids to canonical persons (map_task), then hands the entries
 * that belong to another bucket over: grouped by bucket into fp->mv. */
static int map_canonical(struct qctx *q, struct fpar *fp, unsigned nthr)
{
	qpar_for(nthr, fp->nb, map_task, fp);
	for (size_t b = 0; b < fp->nb; b++) {
		if (fp->rc[b] == TD_ECORRUPT)
			return qerr_pid(q, fp->bad[b]);
		if (fp->rc[b])
			return qerr_code(q, fp->rc[b],
					 "query: not enough memory to run this query");
	}
	size_t n = 0;
	for (unsigned t = 0; t < nthr; t++)
		n += fp->w[t].nmoves;
	fp->mstart = qa_big_realloc(&q->arena, NULL, (fp->nb + 1) * sizeof(uint32_t));
	memset(fp->mstart, 0, (fp->nb + 1) * sizeof(uint32_t));
	for (unsigned t = 0; t < nthr; t++)
		for (size_t i = 0; i < fp->w[t].nmoves; i++)
			fp->mstart[fp->w[t].moves[i].bucket + 1]++;
	for (size_t b = 0; b < fp->nb; b++)
		fp->mstart[b + 1] += fp->mstart[b];
	uint32_t *next = qa_big_realloc(&q->arena, NULL, (fp->nb + 1) * sizeof(uint32_t));
	memcpy(next, fp->mstart, (fp->nb + 1) * sizeof(uint32_t));
	fp->mv = qa_big_realloc(&q->arena, NULL, (n ? n : 1) * sizeof(*fp->mv));
	if (fp->tmp_bd)
		fp->mv_bd = qa_big_realloc(&q->arena, NULL, (n ? n : 1) * sizeof(int32_t));
	for (unsigned t = 0; t < nthr; t++) {
		for (size_t i = 0; i < fp->w[t].nmoves; i++) {
			const struct fmove *m = &fp->w[t].moves[i];
			uint32_t at = next[m->bucket]++;
			fp->mv[at] = m->e;
			if (fp->mv_bd)
				fp->mv_bd[at] = m->bd;
		}
		qa_big_free(&q->arena, fp->w[t].moves);
		fp->w[t].moves = NULL;
	}
	qa_big_free(&q->arena, next);
	return 0;
}

/*
 * Whoever has no row of step 2 ends at step 1 (with a row of step 1) or
 * nowhere, in every order and whatever the exclusions: so only the rows of
 * persons with a step-2 row need gathering and walking. Sets fp->keep (the
 * stored ids whose canonical person has a step-2 row) and *only1 (the
 * canonical persons with a step-1 row and none of step 2). Not with a
 * breakdown: its attribution reads every person's rows.
 */
static int step2_persons(struct qctx *q, struct funnel *f, struct fpar *fp, uint64_t **only1)
{
	int64_t from = q->range.set ? q->range.from : INT64_MIN;
	int64_t to = q->range.set ? q->range.to : INT64_MAX;
	uint32_t np = q->src->npersons;
	size_t nw = ((size_t)np + 63) / 64;
	uint64_t *s1 = qa_big_realloc(&q->arena, NULL, (nw ? nw : 1) * sizeof(uint64_t));
	uint64_t *s2 = qa_big_realloc(&q->arena, NULL, (nw ? nw : 1) * sizeof(uint64_t));
	memset(s1, 0, (nw ? nw : 1) * sizeof(uint64_t));
	memset(s2, 0, (nw ? nw : 1) * sizeof(uint64_t));
	for (int s = 0; s < 2; s++) {
		struct qspan *sp;
		size_t nsp;
		int rc = qspans_get(q, &f->steps[s], from, to, &sp, &nsp);
		if (rc || (rc = qperson_set(q, sp, nsp, from, to, s ? s2 : s1)))
			return rc;
		for (size_t i = 0; i < nsp; i++)
			qa_big_free(&q->arena, (void *)sp[i].pass);
		qa_big_free(&q->arena, sp);
	}
	/* in stored ids; a canonical id out of range is kept, for the error */
	uint64_t *keep = qa_big_realloc(&q->arena, NULL, (nw ? nw : 1) * sizeof(uint64_t));
	memset(keep, 0, (nw ? nw : 1) * sizeof(uint64_t));
	const uint32_t *canon = q->src->canonical;
	for (uint32_t p = 0; p < np; p++) {
		uint32_t c = canon ? canon[p] : p;
		if (c >= np || qbit(s2, c))
			keep[p >> 6] |= 1ULL << (p & 63);
	}
	for (size_t w = 0; w < nw; w++)
		s1[w] &= ~s2[w];
	qa_big_free(&q->arena, s2);
	fp->keep = keep;
	*only1 = s1;
	return 0;
}

/* The start of the result, up to the overall steps. */
static void write_head(struct qctx *q, const struct funnel *f)
{
	static const char *const order_names[] = {"sequential", "strict", "any"};
	qo_raw(q, "{\"kind\":\"funnel\",\"order\":");
	qo_str(q, order_names[f->order]);
	qo_printf(q, ",\"window_ms\":%lld,\"steps\":", (long long)f->window);
}

/* The persons list: the set bits of `bits` (canonical ids), paged. */
static void write_persons(struct qctx *q, const struct funnel *f, const uint64_t *bits)
{
	struct qvec persons;
	qvec_init(&persons, sizeof(uint32_t));
	size_t nw = ((size_t)q->src->npersons + 63) / 64;
	for (size_t w = 0; w < nw; w++)
		for (uint64_t x = bits[w]; x; x &= x - 1)
			*(uint32_t *)qvec_push(&q->arena, &persons) =
			    (uint32_t)(w * 64 + (size_t)__builtin_ctzll(x));
	const uint32_t *pl = persons.p;
	size_t total_p = persons.n;
	qo_printf(q,
		  ",\"persons\":{\"step\":%lld,\"dropped\":%s,\"offset\":%lld,\"limit\":%lld,"
		  "\"total\":%zu,\"pids\":[",
		  (long long)f->p_step, f->p_dropped ? "true" : "false", (long long)f->p_offset,
		  (long long)f->p_limit, total_p);
	for (size_t i = (size_t)f->p_offset, k = 0; i < total_p && k < (size_t)f->p_limit; i++, k++)
		qo_printf(q, "%s%u", k ? "," : "", pl[i]);
	qo_raw(q, "]}");
	qa_big_free(&q->arena, persons.p);
}

/* Order "sequential" without exclusions or breakdown: funnel_seq.c's path.
 * Returns QFUNNEL_SEQ_UNSUITABLE when the general path must run instead. */
static int run_sequential(struct qctx *q, const struct funnel *f)
{
	struct qfunnel_seq fs = {.steps = f->steps,
				 .nsteps = f->nsteps,
				 .window = f->window,
				 .p_step = f->p_step,
				 .p_dropped = f->p_dropped};
	if (f->want_persons) {
		size_t nw = ((size_t)q->src->npersons + 63) / 64;
		fs.persons = qa_big_realloc(&q->arena, NULL, (nw ? nw : 1) * sizeof(uint64_t));
		memset(fs.persons, 0, (nw ? nw : 1) * sizeof(uint64_t));
	}
	int rc = qfunnel_seq(q, &fs);
	if (rc)
		return rc;
	struct fgroups g = {.ms = fs.ms, .start = fs.start, .hist = fs.hist};
	write_head(q, f);
	write_steps(q, f, fs.count, &g, 0);
	if (f->want_persons)
		write_persons(q, f, fs.persons);
	qo_raw(q, "}");
	return 0;
}

/* Average entries per person bucket: the bucket's entries (16 bytes each,
 * twice over while sorting) stay well inside a core's cache. */
#define F_BUCKET_ENTRIES 8192

int query_funnel(struct qctx *q)
{
	struct funnel *f = qa_calloc(&q->arena, 1, sizeof(*f));
	int rc = parse(q, f);
	if (rc)
		return rc;
	if (f->order == ORDER_SEQUENTIAL && !f->nexcl && !f->bd_path &&
	    (rc = run_sequential(q, f)) != QFUNNEL_SEQ_UNSUITABLE)
		return rc;
	qintern_init(&f->intern);
	struct qvec jobs;
	qvec_init(&jobs, sizeof(struct fjob));
	if ((rc = make_jobs(q, f, &jobs)))
		return rc;

	uint32_t np = q->src->npersons;
	struct fpar fp = {.f = f, .src = q->src, .jobs = jobs.p, .arena = &q->arena};
	uint64_t rows = 0;
	for (size_t i = 0; i < jobs.n; i++)
		rows += fp.jobs[i].hi - fp.jobs[i].lo;
	uint64_t *only1 = NULL;
	if (!f->bd_path && (rc = step2_persons(q, f, &fp, &only1)))
		return rc;
	unsigned nthr = qpar_threads(q, rows);
	/* person buckets: about F_BUCKET_ENTRIES entries each, at most 2^16,
	 * and at least a few per thread so that threads balance */
	uint64_t want = TD_MAX(rows / F_BUCKET_ENTRIES, 4 * (uint64_t)nthr);
	unsigned shift = 0;
	while (shift < 32 && ((uint64_t)np >> shift) > (want < 65536 ? want : 65536))
		shift++;
	fp.shift = shift;
	fp.nb = np ? (((size_t)np - 1) >> shift) + 1 : 1;
	for (size_t i = 0; i < jobs.n; i++)
		fp.jobs[i].hist = qa_big_realloc(&q->arena, NULL, fp.nb * sizeof(uint32_t));
	qpar_for(nthr, jobs.n, count_task, &fp);
	uint64_t n = 0;
	for (size_t i = 0; i < jobs.n; i++) {
		if (fp.jobs[i].rc)
			return qerr_pid(q, fp.jobs[i].bad);
		n += fp.jobs[i].nentries;
	}
	if (n >= UINT32_MAX)
		return qerr_code(q, TD_ETOOLARGE, "query: more than 4 billion funnel events");
	/* where each (bucket, chunk) goes: buckets in order, chunks in order inside */
	fp.bstart = qa_big_realloc(&q->arena, NULL, (fp.nb + 1) * sizeof(uint32_t));
	uint32_t at = 0;
	for (size_t b = 0; b < fp.nb; b++) {
		fp.bstart[b] = at;
		for (size_t i = 0; i < jobs.n; i++) {
			uint32_t c = fp.jobs[i].hist[b];
			fp.jobs[i].hist[b] = at;
			at += c;
		}
	}
	fp.bstart[fp.nb] = at;
	fp.tmp = qa_big_realloc(&q->arena, NULL, (n ? n : 1) * sizeof(*fp.tmp));
	if (f->bd_path)
		fp.tmp_bd = qa_big_realloc(&q->arena, NULL, (n ? n : 1) * sizeof(int32_t));
	qpar_for(nthr, jobs.n, place_task, &fp);
	for (size_t i = 0; i < jobs.n; i++) {
		qa_big_free(&q->arena, fp.jobs[i].hist);
		qa_big_free(&q->arena, (void *)fp.jobs[i].bd);
		for (int k = 0; k < fp.jobs[i].nm->nsel; k++)
			qa_big_free(&q->arena, (void *)fp.jobs[i].bits[k]);
	}

	int N = f->nsteps;
	/* slot 0: no breakdown value (or no breakdown); slot id + 1: value id */
	size_t nslots = f->bd_path ? f->intern.n + 1 : 1;
	fp.nslots = nslots;
	fp.w = qa_calloc(&q->arena, nthr, sizeof(*fp.w));
	fp.rc = qa_calloc(&q->arena, fp.nb, sizeof(int));
	fp.bad = qa_calloc(&q->arena, fp.nb, sizeof(uint32_t));
	if (q->src->canonical && (rc = map_canonical(q, &fp, nthr)))
		return rc;
	size_t maxb = 1;
	for (size_t b = 0; b < fp.nb; b++)
		maxb = TD_MAX(maxb, (size_t)(fp.bstart[b + 1] - fp.bstart[b]) +
					(fp.mstart ? fp.mstart[b + 1] - fp.mstart[b] : 0));
	for (unsigned t = 0; t < nthr; t++) {
		struct fworker *w = &fp.w[t];
		w->local =
		    qa_big_realloc(&q->arena, NULL, (((size_t)1 << shift) + 1) * sizeof(uint32_t));
		w->by = qa_big_realloc(&q->arena, NULL, maxb * sizeof(*w->by));
		w->stmp = qa_big_realloc(&q->arena, NULL, maxb * sizeof(*w->stmp));
		if (f->order == ORDER_ANY) {
			w->mts = qa_big_realloc(&q->arena, NULL, maxb * sizeof(*w->mts));
			w->mmask = qa_big_realloc(&q->arena, NULL, maxb * sizeof(*w->mmask));
		}
		w->count = qa_calloc(&q->arena, nslots * (size_t)N, sizeof(uint64_t));
	}
	if (f->want_persons) {
		size_t nw = ((size_t)np + 63) / 64;
		fp.persons = qa_big_realloc(&q->arena, NULL, (nw ? nw : 1) * sizeof(uint64_t));
		memset(fp.persons, 0, (nw ? nw : 1) * sizeof(uint64_t));
	}
	fp.rc = qa_calloc(&q->arena, fp.nb, sizeof(int));
	qpar_for(nthr, fp.nb, walk_task, &fp);
	for (size_t b = 0; b < fp.nb; b++)
		if (fp.rc[b])
			return qerr_code(q, fp.rc[b], "query: not enough memory to run this query");
	qa_big_free(&q->arena, fp.tmp);
	qa_big_free(&q->arena, fp.tmp_bd);
	qa_big_free(&q->arena, fp.mv);
	qa_big_free(&q->arena, fp.mv_bd);
	for (unsigned t = 0; t < nthr; t++) {
		qa_big_free(&q->arena, fp.w[t].by);
		qa_big_free(&q->arena, fp.w[t].stmp);
		qa_big_free(&q->arena, fp.w[t].mts);
		qa_big_free(&q->arena, fp.w[t].mmask);
	}

	/* the workers' counts and times together */
	uint64_t *count = fp.w[0].count;
	if (only1) { /* persons at step 1 who were not walked */
		size_t nw = ((size_t)np + 63) / 64;
		count[0] += qbits_count(only1, nw);
		bool listed = f->p_dropped ? f->p_step == 2 : f->p_step == 1;
		if (fp.persons && listed)
			for (size_t w = 0; w < nw; w++)
				fp.persons[w] |= only1[w];
	}
	size_t nt_all = 0;
	for (unsigned t = 0; t < nthr; t++)
		nt_all += fp.w[t].ntimes;
	struct ftime *tv = qa_big_realloc(&q->arena, NULL, (nt_all ? nt_all : 1) * sizeof(*tv));
	size_t nt_done = 0;
	for (unsigned t = 0; t < nthr; t++) {
		if (t)
			for (size_t i = 0; i < nslots * (size_t)N; i++)
				count[i] += fp.w[t].count[i];
		if (fp.w[t].ntimes)
			memcpy(tv + nt_done, fp.w[t].times, fp.w[t].ntimes * sizeof(*tv));
		nt_done += fp.w[t].ntimes;
		qa_big_free(&q->arena, fp.w[t].times);
	}
	/* overall: all slots together */
	uint64_t total[QUERY_MAX_STEPS] = {0};
	for (size_t sl = 0; sl < nslots; sl++)
		for (int s = 0; s < N; s++)
			total[s] += count[sl * N + s];
	size_t nt = nt_all;
	/* overall times: by step alone */
	struct ftime *all = qa_big_realloc(&q->arena, NULL, (nt ? nt : 1) * sizeof(*all));
	for (size_t i = 0; i < nt; i++) {
		all[i].key = tv[i].key % (uint32_t)N;
		all[i].ms = tv[i].ms;
	}
	struct fgroups g_all;
	group_times(q, all, nt, (size_t)N, &g_all);
	qa_big_free(&q->arena, all);

	write_head(q, f);
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

	if (f->want_persons)
		write_persons(q, f, fp.persons);
	qo_raw(q, "}");
	return 0;
}
