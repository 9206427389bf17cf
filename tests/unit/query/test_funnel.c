/*
 * test_funnel.c - funnels against brute force.
 *
 * Two references, neither sharing code with the engine:
 *  - ch_level(): a line-by-line port of ClickHouse's windowFunnel default
 *    mode (pairs (timestamp, step) for every condition an event matches,
 *    sorted, then the events_timestamp loop), for sequential funnels
 *    without exclusions;
 *  - chains(): the definitions of docs/queries.md taken literally: it
 *    enumerates every chain e1..ek (ei matches step i, timestamps
 *    non-decreasing, ek - e1 <= window, no exclusion event strictly between
 *    the steps it covers, and in strict order no other event of a step's
 *    name strictly between consecutive steps) and takes the furthest, with
 *    conversion times from the earliest-completing chains.
 * "any" order has its own direct reference. Breakdown attribution, grouping
 * into top values + other, and the persons lists are recomputed from the
 * per-person results.
 */
#include "qtest.h"
#include "base/td.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXS 6
#define MAXX 2
#define BASE 1709251200000LL /* 2024-03-01T00:00:00Z */

struct fcase {
	int nsteps;
	const char *step_name[MAXS];
	struct qt_filter sf[MAXS][2];
	int nsf[MAXS];
	int nexcl;
	const char *x_name[MAXX];
	struct qt_filter xf[MAXX][2];
	int nxf[MAXX], x_from[MAXX], x_to[MAXX];
	int64_t window;
	int order; /* 0 sequential, 1 strict, 2 any */
	bool has_range;
	int64_t from, to; /* inclusive */
	struct qt_filter gf[2];
	int ngf;
	bool bd;
	int attr, attr_step, limit;
	bool persons, p_dropped;
	int p_step, p_offset, p_limit;
};

static const char *const order_names[] = {"sequential", "strict", "any"};
static const char *const attr_names[] = {"first_touch", "last_touch", "step"};

static void case_json(const struct fcase *fc, char *s, size_t cap)
{
	s[0] = '\0';
	qt_cat(s, cap, "{\"kind\":\"funnel\",\"order\":\"%s\",\"window\":%lld,\"steps\":[",
	       order_names[fc->order], (long long)fc->window);
	for (int i = 0; i < fc->nsteps; i++) {
		qt_cat(s, cap, "%s{\"event\":\"%s\",\"filters\":", i ? "," : "", fc->step_name[i]);
		qt_filters_json(fc->sf[i], fc->nsf[i], s, cap);
		qt_cat(s, cap, "}");
	}
	qt_cat(s, cap, "]");
	if (fc->nexcl) {
		qt_cat(s, cap, ",\"exclusions\":[");
		for (int x = 0; x < fc->nexcl; x++) {
			qt_cat(s, cap,
			       "%s{\"event\":\"%s\",\"from_step\":%d,\"to_step\":%d,\"filters\":",
			       x ? "," : "", fc->x_name[x], fc->x_from[x], fc->x_to[x]);
			qt_filters_json(fc->xf[x], fc->nxf[x], s, cap);
			qt_cat(s, cap, "}");
		}
		qt_cat(s, cap, "]");
	}
	if (fc->has_range) {
		char a[40], b[40];
		qt_iso(fc->from, a, sizeof(a));
		qt_iso(fc->to, b, sizeof(b));
		qt_cat(s, cap, ",\"date_from\":\"%s\",\"date_to\":\"%s\"", a, b);
	}
	if (fc->ngf) {
		qt_cat(s, cap, ",\"filters\":");
		qt_filters_json(fc->gf, fc->ngf, s, cap);
	}
	if (fc->bd) {
		qt_cat(s, cap,
		       ",\"breakdown\":\"properties.plan\",\"breakdown_attribution\":\"%s\","
		       "\"breakdown_limit\":%d",
		       attr_names[fc->attr], fc->limit);
		if (fc->attr == 2)
			qt_cat(s, cap, ",\"breakdown_attribution_step\":%d", fc->attr_step);
	}
	if (fc->persons)
		qt_cat(s, cap,
		       ",\"persons\":{\"step\":%d,\"dropped\":%s,\"offset\":%d,\"limit\":%d}",
		       fc->p_step, fc->p_dropped ? "true" : "false", fc->p_offset, fc->p_limit);
	qt_cat(s, cap, "}");
}

/* ---- reference ------------------------------------------------------ */

static bool base_ok(const struct fcase *fc, const struct qt_ev *e)
{
	if (fc->has_range && (e->ts < fc->from || e->ts > fc->to))
		return false;
	return qt_filters_match(fc->gf, fc->ngf, e);
}

static bool step_match(const struct fcase *fc, int s, const struct qt_ev *e)
{
	return base_ok(fc, e) && (!*fc->step_name[s] || strcmp(fc->step_name[s], e->name) == 0) &&
	       qt_filters_match(fc->sf[s], fc->nsf[s], e);
}

static bool excl_match(const struct fcase *fc, int x, const struct qt_ev *e)
{
	return base_ok(fc, e) && (!*fc->x_name[x] || strcmp(fc->x_name[x], e->name) == 0) &&
	       qt_filters_match(fc->xf[x], fc->nxf[x], e);
}

static bool considered(const struct fcase *fc, const struct qt_ev *e)
{
	if (!base_ok(fc, e))
		return false;
	for (int s = 0; s < fc->nsteps; s++)
		if (!*fc->step_name[s] || strcmp(fc->step_name[s], e->name) == 0)
			return true;
	return false;
}

struct rperson {
	int level;
	int64_t time[MAXS];
	const char *bd;
};

/* ClickHouse windowFunnel(window)(ts, c1..cN), default mode, ported as is. */
static int ch_level(const struct fcase *fc, const struct qt_ev *const *ev, int n)
{
	struct {
		int64_t t;
		int step;
	} pairs[512];
	int np = 0;
	for (int i = 0; i < n; i++)
		for (int s = fc->nsteps; s >= 1; s--)
			if (step_match(fc, s - 1, ev[i]))
				pairs[np].t = ev[i]->ts, pairs[np++].step = s;
	/* std::stable_sort on std::pair: (timestamp, step) */
	for (int i = 1; i < np; i++)
		for (int j = i;
		     j > 0 && (pairs[j - 1].t > pairs[j].t ||
			       (pairs[j - 1].t == pairs[j].t && pairs[j - 1].step > pairs[j].step));
		     j--) {
			__typeof__(pairs[0]) tmp = pairs[j];
			pairs[j] = pairs[j - 1];
			pairs[j - 1] = tmp;
		}
	bool has[MAXS] = {0};
	int64_t first[MAXS];
	for (int i = 0; i < np; i++) {
		int64_t t = pairs[i].t;
		int idx = pairs[i].step - 1;
		if (idx == 0) {
			has[0] = true;
			first[0] = t;
		} else if (has[idx - 1]) {
			if (t <= first[idx - 1] + fc->window) {
				has[idx] = true;
				first[idx] = first[idx - 1];
				if (idx + 1 == fc->nsteps)
					return fc->nsteps;
			}
		}
	}
	for (int s = fc->nsteps; s > 0; s--)
		if (has[s - 1])
			return s;
	return 0;
}

struct dfs {
	const struct fcase *fc;
	const struct qt_ev *const *ev;
	int n;
	const struct qt_ev *chain[MAXS];
	struct rperson *r;
	bool found[MAXS];
	int64_t tend[MAXS], tprev[MAXS];
};

static bool link_ok(struct dfs *d, int k, const struct qt_ev *e)
{
	const struct fcase *fc = d->fc;
	const struct qt_ev *p = d->chain[k - 1];
	if (e->ts < p->ts || e->ts - d->chain[0]->ts > fc->window)
		return false;
	int gap = k - 1; /* between step k and step k+1 (1-based) */
	for (int x = 0; x < fc->nexcl; x++) {
		if (gap < fc->x_from[x] - 1 || gap > fc->x_to[x] - 2)
			continue;
		for (int i = 0; i < d->n; i++)
			if (excl_match(fc, x, d->ev[i]) && d->ev[i]->ts > p->ts &&
			    d->ev[i]->ts < e->ts)
				return false;
	}
	if (fc->order == 1)
		for (int i = 0; i < d->n; i++)
			if (considered(fc, d->ev[i]) && d->ev[i]->ts > p->ts &&
			    d->ev[i]->ts < e->ts)
				return false;
	return true;
}

static void dfs(struct dfs *d, int k)
{
	if (k > d->r->level)
		d->r->level = k;
	if (k >= 2) {
		int64_t te = d->chain[k - 1]->ts, tp = d->chain[k - 2]->ts;
		if (!d->found[k - 1] || te < d->tend[k - 1] ||
		    (te == d->tend[k - 1] && tp > d->tprev[k - 1])) {
			d->found[k - 1] = true;
			d->tend[k - 1] = te;
			d->tprev[k - 1] = tp;
		}
	}
	if (k == d->fc->nsteps)
		return;
	for (int i = 0; i < d->n; i++) {
		if (!step_match(d->fc, k, d->ev[i]) || !link_ok(d, k, d->ev[i]))
			continue;
		d->chain[k] = d->ev[i];
		dfs(d, k + 1);
	}
}

static void chains(const struct fcase *fc, const struct qt_ev *const *ev, int n, struct rperson *r)
{
	struct dfs d = {.fc = fc, .ev = ev, .n = n, .r = r};
	r->level = 0;
	for (int i = 0; i < n; i++) {
		if (!step_match(fc, 0, ev[i]))
			continue;
		d.chain[0] = ev[i];
		dfs(&d, 1);
	}
	for (int s = 1; s < r->level; s++)
		r->time[s] = d.tend[s] - d.tprev[s];
}

static void any_order(const struct fcase *fc, const struct qt_ev *const *ev, int n,
		      struct rperson *r)
{
	int64_t tstar[MAXS];
	r->level = 0;
	/* candidate window ends, ascending */
	int64_t ends[512];
	int ne = 0;
	for (int i = 0; i < n; i++) {
		bool any = false;
		for (int s = 0; s < fc->nsteps; s++)
			any |= step_match(fc, s, ev[i]);
		if (any)
			ends[ne++] = ev[i]->ts;
	}
	for (int i = 1; i < ne; i++)
		for (int j = i; j > 0 && ends[j - 1] > ends[j]; j--) {
			int64_t t = ends[j];
			ends[j] = ends[j - 1];
			ends[j - 1] = t;
		}
	for (int w = 0; w < ne; w++) {
		int64_t t = ends[w];
		int k = 0;
		while (k < fc->nsteps) {
			bool have = false;
			for (int i = 0; i < n; i++)
				have |= step_match(fc, k, ev[i]) && ev[i]->ts <= t &&
					ev[i]->ts >= t - fc->window;
			if (!have)
				break;
			k++;
		}
		for (int s = r->level; s < k; s++)
			tstar[s] = t;
		if (k > r->level)
			r->level = k;
	}
	for (int s = 1; s < r->level; s++)
		r->time[s] = tstar[s] - tstar[s - 1];
}

static void attribute(const struct fcase *fc, const struct qt_ev *const *ev, int n,
		      struct rperson *r)
{
	const struct qt_ev *best = NULL;
	for (int i = 0; i < n; i++) {
		const struct qt_ev *e = ev[i];
		bool cand = false;
		if (fc->attr == 2)
			cand = step_match(fc, fc->attr_step - 1, e);
		else
			for (int s = 0; s < fc->nsteps; s++)
				cand |= step_match(fc, s, e);
		if (!cand || !e->plan)
			continue;
		if (!best)
			best = e;
		else if (e->ts == best->ts)
			best = strcmp(e->plan, best->plan) < 0 ? e : best;
		else if (fc->attr == 1 ? e->ts > best->ts : e->ts < best->ts)
			best = e;
	}
	r->bd = best ? best->plan : NULL;
}

/* ---- comparison ----------------------------------------------------- */

struct group {
	const char *value; /* NULL: no value */
	uint64_t count[MAXS];
	int64_t *times[MAXS];
	size_t ntimes[MAXS];
};

static void group_add(struct group *g, const struct rperson *r)
{
	for (int s = 0; s < r->level; s++)
		g->count[s]++;
	for (int s = 1; s < r->level; s++) {
		g->times[s] = realloc(g->times[s], (g->ntimes[s] + 1) * sizeof(int64_t));
		g->times[s][g->ntimes[s]++] = r->time[s];
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void check_steps(const cJSON *steps, const struct fcase *fc, struct group *g,
			const char *what, const char *json)
{
	cr_assert(cJSON_IsArray(steps) && cJSON_GetArraySize(steps) == fc->nsteps,
		  "%s: steps array\n%s", what, json);
	for (int s = 0; s < fc->nsteps; s++) {
		const cJSON *st = cJSON_GetArrayItem(steps, s);
		double persons = qt_num(st, "persons");
		cr_assert_eq((uint64_t)persons, g->count[s],
			     "%s step %d: persons %g, expected %llu\n%s", what, s + 1, persons,
			     (unsigned long long)g->count[s], json);
		double c0 = g->count[0], cs = g->count[s], cp = s ? g->count[s - 1] : c0;
		double want_first = c0 ? 100.0 * cs / c0 : NAN;
		double want_prev = s == 0 ? (c0 ? 100.0 : NAN) : (cp ? 100.0 * cs / cp : NAN);
		cr_assert(
		    qt_close(qt_num_or_nan(qt_get(st, "conversion_from_first_pct")), want_first),
		    "%s step %d: conversion_from_first_pct\n%s", what, s + 1, json);
		cr_assert(
		    qt_close(qt_num_or_nan(qt_get(st, "conversion_from_previous_pct")), want_prev),
		    "%s step %d: conversion_from_previous_pct\n%s", what, s + 1, json);
		double med = NAN, mean = NAN;
		size_t n = g->ntimes[s];
		if (n) {
			qsort(g->times[s], n, sizeof(int64_t), cmp_i64);
			med =
			    n % 2
				? (double)g->times[s][n / 2]
				: ((double)g->times[s][n / 2 - 1] + (double)g->times[s][n / 2]) / 2;
			double sum = 0;
			for (size_t i = 0; i < n; i++)
				sum += (double)g->times[s][i];
			mean = sum / (double)n;
		}
		double got_med = qt_num_or_nan(qt_get(st, "median_ms"));
		double got_mean = qt_num_or_nan(qt_get(st, "mean_ms"));
		cr_assert(qt_close(got_med, med), "%s step %d: median %g, expected %g\n%s", what,
			  s + 1, got_med, med, json);
		cr_assert(qt_close(got_mean, mean), "%s step %d: mean %g, expected %g\n%s", what,
			  s + 1, got_mean, mean, json);
	}
}

static void free_group(struct group *g)
{
	for (int s = 0; s < MAXS; s++)
		free(g->times[s]);
}

static int cmp_group(const void *a, const void *b)
{
	const struct group *x = a, *y = b;
	if (x->count[0] != y->count[0])
		return x->count[0] > y->count[0] ? -1 : 1;
	if (!x->value || !y->value)
		return !x->value - !y->value;
	return strcmp(x->value, y->value);
}

/* Runs one case: the engine on a memsource, the references on the rows. */
static void run_case(const struct fcase *fc, const struct qt_data *d, struct qt_rng *rng)
{
	static char json[16384];
	case_json(fc, json, sizeof(json));
	struct memsource *ms = qt_memsource(d, rng);
	cJSON *res = qt_query(memsource_source(ms), json);

	struct group all = {0};
	struct group groups[16] = {{0}};
	int ngroups = 0;
	uint32_t plist[256];
	int nplist = 0;
	const struct qt_ev *ev[512];
	for (uint32_t p = 0; p < d->npersons; p++) {
		int n = 0;
		for (size_t i = 0; i < d->n; i++)
			if (d->canon[d->ev[i].pid] == p)
				ev[n++] = &d->ev[i];
		struct rperson r = {0};
		if (fc->order == 2)
			any_order(fc, ev, n, &r);
		else
			chains(fc, ev, n, &r);
		if (fc->order == 0 && fc->nexcl == 0) {
			int ch = ch_level(fc, ev, n);
			cr_assert_eq(r.level, ch,
				     "references disagree for person %u: %d vs CH %d\n%s", p,
				     r.level, ch, json);
		}
		if (fc->persons &&
		    (fc->p_dropped ? r.level == fc->p_step - 1 : r.level >= fc->p_step))
			plist[nplist++] = p;
		if (r.level == 0)
			continue;
		group_add(&all, &r);
		if (fc->bd) {
			attribute(fc, ev, n, &r);
			int gi = 0;
			while (gi < ngroups &&
			       !(groups[gi].value == r.bd ||
				 (groups[gi].value && r.bd && strcmp(groups[gi].value, r.bd) == 0)))
				gi++;
			if (gi == ngroups)
				groups[ngroups++].value = r.bd;
			group_add(&groups[gi], &r);
		}
	}
	check_steps(qt_get(res, "steps"), fc, &all, "all", json);
	if (fc->bd) {
		qsort(groups, (size_t)ngroups, sizeof(groups[0]), cmp_group);
		int keep = ngroups < fc->limit ? ngroups : fc->limit;
		struct group other = {0};
		for (int gi = keep; gi < ngroups; gi++) {
			for (int s = 0; s < fc->nsteps; s++) {
				other.count[s] += groups[gi].count[s];
				for (size_t i = 0; i < groups[gi].ntimes[s]; i++) {
					other.times[s] =
					    realloc(other.times[s],
						    (other.ntimes[s] + 1) * sizeof(int64_t));
					other.times[s][other.ntimes[s]++] = groups[gi].times[s][i];
				}
			}
		}
		const cJSON *bd = qt_get(res, "breakdown");
		int want = keep + (ngroups > keep);
		cr_assert_eq(cJSON_GetArraySize(bd), want, "breakdown groups: %d, expected %d\n%s",
			     cJSON_GetArraySize(bd), want, json);
		for (int gi = 0; gi < want; gi++) {
			const cJSON *b = cJSON_GetArrayItem(bd, gi);
			const cJSON *v = qt_get(b, "breakdown_value");
			bool is_other = cJSON_IsTrue(qt_get(b, "is_other"));
			cr_assert_eq(is_other, gi == keep, "is_other of group %d\n%s", gi, json);
			if (gi < keep) {
				const char *val = groups[gi].value;
				cr_assert(val ? cJSON_IsString(v) &&
						    strcmp(v->valuestring, val) == 0
					      : cJSON_IsNull(v),
					  "group %d: value %s, expected %s\n%s", gi,
					  cJSON_IsString(v) ? v->valuestring : "null",
					  val ? val : "null", json);
			}
			char what[32];
			snprintf(what, sizeof(what), "group %d", gi);
			check_steps(qt_get(b, "steps"), fc, gi < keep ? &groups[gi] : &other, what,
				    json);
		}
		free_group(&other);
	} else {
		cr_assert_null(cJSON_GetObjectItem(res, "breakdown"));
	}
	if (fc->persons) {
		const cJSON *p = qt_get(res, "persons");
		cr_assert_eq((int)qt_num(p, "total"), nplist, "persons total\n%s", json);
		const cJSON *pids = qt_get(p, "pids");
		int want = nplist - fc->p_offset;
		if (want < 0)
			want = 0;
		if (want > fc->p_limit)
			want = fc->p_limit;
		cr_assert_eq(cJSON_GetArraySize(pids), want, "persons page size\n%s", json);
		for (int i = 0; i < want; i++)
			cr_assert_eq((uint32_t)cJSON_GetArrayItem(pids, i)->valuedouble,
				     plist[fc->p_offset + i], "persons[%d]\n%s", i, json);
	}
	free_group(&all);
	for (int gi = 0; gi < ngroups; gi++)
		free_group(&groups[gi]);
	cJSON_Delete(res);
	memsource_free(ms);
}

/* ---- random cases --------------------------------------------------- */

static const char *const names[] = {"A", "B", "C", "D"};

/* nev random events at `slots` points of a grid of 250 ms (ties, exact
 * window distances, and +-1 ms), of any person or (pids) one of npids. */
static void gen_events(struct qt_rng *r, struct qt_data *d, int nnames, int nev, int slots,
		       const uint32_t *pids, int npids)
{
	for (int i = 0; i < nev; i++) {
		int64_t ts =
		    BASE + qt_int(r, slots) * 250 + (qt_int(r, 4) == 0 ? qt_int(r, 3) - 1 : 0);
		const char *name = names[qt_int(r, nnames)];
		uint32_t pid =
		    pids ? pids[qt_int(r, npids)] : (uint32_t)qt_int(r, (int)d->npersons);
		qt_random_props(qt_add(d, name, ts, pid), r);
	}
}

static void gen_data(struct qt_rng *r, struct qt_data *d, int nnames)
{
	qt_data_init(d, 3 + (uint32_t)qt_int(r, 6));
	qt_random_canon(d, r);
	int nev = 1 + qt_int(r, 40);
	gen_events(r, d, nnames, nev, 16, NULL, 0);
}

static const char *pick_name(struct qt_rng *r, const struct qt_data *d, bool allow_all)
{
	if (allow_all && qt_int(r, 10) == 0)
		return "";
	for (;;) {
		const char *n = names[qt_int(r, 4)];
		if (qt_name_exists(d, n))
			return n;
	}
}

static void gen_case(struct qt_rng *r, const struct qt_data *d, struct fcase *fc, int order,
		     int maxsteps)
{
	static const int64_t windows[] = {1, 250, 499, 500, 501, 750, 1000, 2000, 5000};
	memset(fc, 0, sizeof(*fc));
	fc->order = order;
	fc->nsteps = 2 + qt_int(r, maxsteps - 1);
	for (int s = 0; s < fc->nsteps; s++) {
		fc->step_name[s] = pick_name(r, d, true);
		fc->nsf[s] =
		    qt_int(r, 3) == 0 ? qt_pick_filters(r, d, fc->step_name[s], 2, fc->sf[s]) : 0;
	}
	fc->window = windows[qt_int(r, (int)(sizeof(windows) / sizeof(windows[0])))];
	if (order != 2 && qt_int(r, 3) == 0) {
		fc->nexcl = 1 + qt_int(r, MAXX);
		for (int x = 0; x < fc->nexcl; x++) {
			fc->x_name[x] = pick_name(r, d, true);
			fc->nxf[x] =
			    qt_int(r, 2) ? qt_pick_filters(r, d, fc->x_name[x], 1, fc->xf[x]) : 0;
			fc->x_from[x] = 1 + qt_int(r, fc->nsteps - 1);
			fc->x_to[x] = fc->x_from[x] + 1 + qt_int(r, fc->nsteps - fc->x_from[x]);
		}
	}
	if (qt_int(r, 5) < 2) {
		fc->has_range = true;
		fc->from = BASE + qt_int(r, 16) * 250 - qt_int(r, 2);
		fc->to = fc->from + qt_int(r, 16) * 250 + qt_int(r, 2);
	}
	if (qt_int(r, 6) == 0)
		fc->ngf = qt_pick_filters(r, d, "", 1, fc->gf);
	if (qt_int(r, 3) == 0) {
		bool have = false;
		for (int s = 0; s < fc->nsteps; s++)
			have |= qt_has_prop(d, fc->step_name[s], 0);
		if (have) {
			fc->bd = true;
			fc->attr = qt_int(r, 3);
			fc->attr_step = 1 + qt_int(r, fc->nsteps);
			fc->limit = 1 + qt_int(r, 4);
		}
	}
	if (qt_int(r, 2)) {
		fc->persons = true;
		fc->p_step = 1 + qt_int(r, fc->nsteps);
		fc->p_dropped = fc->p_step > 1 && qt_int(r, 2);
		fc->p_offset = qt_int(r, 3);
		fc->p_limit = 1 + qt_int(r, 5);
	}
}

static void random_funnels(uint64_t seed, int order, int iterations, int nnames, int maxsteps)
{
	struct qt_rng r = {seed};
	for (int it = 0; it < iterations; it++) {
		struct qt_data d;
		gen_data(&r, &d, nnames);
		struct fcase fc;
		gen_case(&r, &d, &fc, order, maxsteps);
		run_case(&fc, &d, &r);
		qt_data_free(&d);
	}
}

Test(query_funnel, sequential_matches_clickhouse_and_chains)
{
	random_funnels(1, 0, 1500, 4, 4);
}

Test(query_funnel, sequential_few_names_many_repeats)
{
	/* two names over up to five steps: repeated steps and one row matching several */
	random_funnels(2, 0, 1500, 2, 5);
}

Test(query_funnel, strict_matches_chains)
{
	random_funnels(3, 1, 1500, 4, 4);
	random_funnels(4, 1, 800, 2, 5);
}

Test(query_funnel, any_order_matches_reference)
{
	random_funnels(5, 2, 1500, 4, 4);
	random_funnels(6, 2, 800, 2, 5);
}

/* The same references with the work split over several threads: person
 * buckets of one or two persons, so canonical merges move entries between
 * buckets, and chunks of a few rows handed to different threads. */
Test(query_funnel, parallel_matches_references)
{
	static const unsigned threads[] = {2, 3, 7};
	for (size_t i = 0; i < sizeof(threads) / sizeof(threads[0]); i++) {
		qt_threads = threads[i];
		random_funnels(101 + i, 0, 500, 4, 4);
		random_funnels(111 + i, 0, 300, 2, 5);
		random_funnels(121 + i, 1, 400, 4, 4);
		random_funnels(131 + i, 2, 400, 4, 4);
	}
}

/* ---- hand-written cases --------------------------------------------- */

/* Builds a one-person dataset from "NAME@ms" tokens ("NAME@ms+t" / "+f" also
 * set properties.flag) and runs a funnel. */
static cJSON *tiny(const char *rows, const char *query)
{
	struct memsource *ms = memsource_new();
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", rows);
	for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) {
		char *at = strchr(tok, '@'), *plus = strchr(tok, '+');
		*at = '\0';
		size_t row = memsource_add(ms, tok, BASE + strtoll(at + 1, NULL, 10), 0);
		if (plus)
			memsource_set_bool(ms, row, "properties.flag", plus[1] == 't');
	}
	memsource_build(ms, 0, 0);
	cJSON *res = qt_query(memsource_source(ms), query);
	memsource_free(ms);
	return res;
}

static int reached(const cJSON *res)
{
	const cJSON *steps = qt_get(res, "steps");
	int level = 0;
	for (int s = 0; s < cJSON_GetArraySize(steps); s++)
		if (qt_num(cJSON_GetArrayItem(steps, s), "persons") > 0)
			level = s + 1;
	return level;
}

static int level_of(const char *rows, const char *steps, const char *extra)
{
	char q[1024];
	snprintf(q, sizeof(q), "{\"kind\":\"funnel\",\"steps\":[%s]%s}", steps, extra);
	cJSON *res = tiny(rows, q);
	int l = reached(res);
	cJSON_Delete(res);
	return l;
}

#define AB  "{\"event\":\"A\"},{\"event\":\"B\"}"
#define ABC "{\"event\":\"A\"},{\"event\":\"B\"},{\"event\":\"C\"}"

Test(query_funnel, window_edges)
{
	cr_assert_eq(level_of("A@0 B@1000", AB, ",\"window\":1000"), 2, "exactly window apart");
	cr_assert_eq(level_of("A@0 B@1001", AB, ",\"window\":1000"), 1, "window + 1");
	cr_assert_eq(level_of("A@0 B@86400000", AB, ",\"window\":\"1d\""), 2);
	cr_assert_eq(level_of("A@0 B@86400001", AB, ",\"window\":\"1d\""), 1);
	/* the latest start counts: A@900 is within 1000 of B@1500 */
	cr_assert_eq(level_of("A@0 A@900 B@1500", AB, ",\"window\":1000"), 2);
	/* the window runs from the chain's start, not from the previous step */
	cr_assert_eq(level_of("A@0 B@600 C@1200", ABC, ",\"window\":1000"), 2);
}

Test(query_funnel, equal_timestamps)
{
	cr_assert_eq(level_of("A@5 B@5", AB, ""), 2, "same ms, in step order");
	cr_assert_eq(level_of("B@5 A@5", AB, ""), 2, "insertion order does not matter");
	cr_assert_eq(level_of("B@4 A@5", AB, ""), 1, "B before A");
	/* ClickHouse: one row matching steps 1 and 2 reaches step 2 */
	cr_assert_eq(level_of("A@0", "{\"event\":\"A\"},{\"event\":\"A\"}", ""), 2);
	cr_assert_eq(level_of("A@0", "{\"event\":\"A\"},{\"event\":\"A\"},{\"event\":\"A\"}", ""),
		     3);
	cr_assert_eq(
	    level_of("A@0 B@1", "{\"event\":\"A\"},{\"event\":\"B\"},{\"event\":\"A\"}", ""), 2);
}

Test(query_funnel, strict_definition)
{
	const char *strict = ",\"order\":\"strict\"";
	cr_assert_eq(level_of("A@0 C@1 B@2", ABC, strict), 1, "C between A and B");
	cr_assert_eq(level_of("A@0 C@1 B@2", AB, strict), 2, "C is not a step name here");
	cr_assert_eq(level_of("A@0 A@1 B@2", AB, strict), 2, "the later A starts a chain");
	cr_assert_eq(level_of("A@0 B@1 B@2 C@3", ABC, strict), 2, "B repeated before C");
	cr_assert_eq(level_of("A@0 C@2 B@2", ABC, strict), 3, "same ms: taken in step order");
	/* a D that matches no step still breaks the chain, but not at the same ms */
	const char *abd = "{\"event\":\"A\"},{\"event\":\"B\"},{\"event\":\"D\",\"filters\":"
			  "[{\"property\":\"properties.flag\",\"operator\":\"=\",\"value\":true}]}";
	cr_assert_eq(level_of("A@0 D@1+f B@2", abd, strict), 1, "other D between");
	cr_assert_eq(level_of("A@0 D@2+f B@2", abd, strict), 2, "other D at the same ms");
	cr_assert_eq(level_of("A@0 D@1+f B@2", abd, ""), 2, "sequential ignores it");
	cr_assert_eq(level_of("A@0 B@1 C@2", ABC, strict), 3);
}

Test(query_funnel, any_order)
{
	const char *any = ",\"order\":\"any\",\"window\":10";
	cr_assert_eq(level_of("B@0 A@5", AB, any), 2);
	cr_assert_eq(level_of("C@0 B@5 A@10", ABC, any), 3);
	cr_assert_eq(level_of("C@0 B@5 A@11", ABC, any), 2, "A and B within 10, C too early");
	cr_assert_eq(level_of("A@100 B@0 C@5", ABC, any), 1, "B and C long before A");
}

Test(query_funnel, exclusions_strictly_between)
{
	const char *x = ",\"exclusions\":[{\"event\":\"X\",\"from_step\":1,\"to_step\":2}]";
	cr_assert_eq(level_of("A@0 X@5 B@10", AB, x), 1);
	cr_assert_eq(level_of("A@0 X@0 B@10", AB, x), 2, "at step 1's ms: not between");
	cr_assert_eq(level_of("A@0 X@10 B@10", AB, x), 2, "at step 2's ms: not between");
	cr_assert_eq(level_of("A@0 X@5 A@6 B@10", AB, x), 2, "a new step 1 after it");
	const char *x23 = ",\"exclusions\":[{\"event\":\"X\",\"from_step\":2,\"to_step\":3}]";
	cr_assert_eq(level_of("A@0 X@1 B@2 C@3", ABC, x23), 3, "before step 2: not covered");
	cr_assert_eq(level_of("A@0 B@2 X@3 C@4", ABC, x23), 2);
}

Test(query_funnel, conversion_times)
{
	/* first reach of step 2 at B@10 (from A@0); step 3 first at C@110 from B@105 */
	cJSON *res = tiny("A@0 B@10 A@100 B@105 C@110",
			  "{\"kind\":\"funnel\",\"window\":20,\"steps\":[" ABC "]}");
	const cJSON *steps = qt_get(res, "steps");
	cr_assert_eq(qt_num(cJSON_GetArrayItem(steps, 1), "median_ms"), 10);
	cr_assert_eq(qt_num(cJSON_GetArrayItem(steps, 2), "median_ms"), 5);
	cr_assert(cJSON_IsNull(qt_get(cJSON_GetArrayItem(steps, 0), "median_ms")));
	cJSON_Delete(res);
}

/* The result's persons list holds exactly pid. */
static void assert_only_pid(const cJSON *res, double pid)
{
	const cJSON *pids = qt_get(qt_get(res, "persons"), "pids");
	cr_assert_eq(cJSON_GetArraySize(pids), 1);
	cr_assert_eq(cJSON_GetArrayItem(pids, 0)->valuedouble, pid);
}

Test(query_funnel, canonical_persons_merge_retroactively)
{
	struct memsource *ms = memsource_new();
	memsource_add(ms, "A", BASE, 1);
	memsource_add(ms, "B", BASE + 10, 2);
	uint32_t canon[3] = {0, 1, 1}; /* person 2 merged into 1 */
	memsource_set_persons(ms, 3, canon);
	memsource_build(ms, 0, 0);
	cJSON *res = qt_query(memsource_source(ms),
			      "{\"kind\":\"funnel\",\"steps\":[" AB "],\"persons\":{\"step\":2}}");
	cr_assert_eq(qt_num(cJSON_GetArrayItem(qt_get(res, "steps"), 1), "persons"), 1);
	assert_only_pid(res, 1);
	cJSON_Delete(res);
	memsource_free(ms);
}

Test(query_funnel, empty_range_gives_zeros)
{
	cJSON *res = tiny("A@0 B@10", "{\"kind\":\"funnel\",\"steps\":[" AB "],"
				      "\"date_from\":\"2030-01-01\",\"date_to\":\"2030-01-02\"}");
	const cJSON *steps = qt_get(res, "steps");
	for (int s = 0; s < 2; s++) {
		const cJSON *st = cJSON_GetArrayItem(steps, s);
		cr_assert_eq(qt_num(st, "persons"), 0);
		cr_assert(cJSON_IsNull(qt_get(st, "conversion_from_first_pct")));
	}
	cJSON_Delete(res);
}

Test(query_funnel, twenty_steps)
{
	char steps[2048] = "", rows[2048] = "";
	for (int i = 0; i < 20; i++) {
		qt_cat(steps, sizeof(steps), "%s{\"event\":\"E%d\"}", i ? "," : "", i);
		qt_cat(rows, sizeof(rows), "%sE%d@%d", i ? " " : "", i, i * 10);
	}
	cr_assert_eq(level_of(rows, steps, ""), 20);
}

/* ---- sequential funnels without exclusions or breakdown ------------- */

/* These take a path of their own (funnel_seq.c): entries partitioned by
 * canonical person, sorted runs merged per bucket. Bigger data than
 * gen_data() so that buckets hold many persons, merged ids land in other
 * buckets, and chunks of a name (overlapping or not) make many runs. */
static void gen_big_data(struct qt_rng *r, struct qt_data *d, int nnames)
{
	qt_data_init(d, 20 + (uint32_t)qt_int(r, 200));
	qt_random_canon(d, r);
	int nev = (int)d->npersons * (1 + qt_int(r, 3));
	gen_events(r, d, nnames, nev, 40, NULL, 0);
}

/* A person space big enough for the packed table of canonical ids
 * (FS_PACKED_FROM), with the events of a few persons spread over it. */
static void gen_wide_data(struct qt_rng *r, struct qt_data *d, int nnames)
{
	qt_data_init(d, 70000);
	qt_random_canon(d, r);
	uint32_t pids[150];
	for (int i = 0; i < 150; i++)
		pids[i] = (uint32_t)qt_int(r, 70000);
	gen_events(r, d, nnames, 1000 + qt_int(r, 1000), 40, pids, 150);
}

enum { DATA_SMALL, DATA_BIG, DATA_WIDE };

static void random_plain_sequential(uint64_t seed, int iterations, int nnames, int maxsteps,
				    int data)
{
	struct qt_rng r = {seed};
	for (int it = 0; it < iterations; it++) {
		struct qt_data d;
		if (data == DATA_WIDE)
			gen_wide_data(&r, &d, nnames);
		else if (data == DATA_BIG)
			gen_big_data(&r, &d, nnames);
		else
			gen_data(&r, &d, nnames);
		struct fcase fc;
		gen_case(&r, &d, &fc, 0, maxsteps);
		fc.nexcl = 0;
		fc.bd = false;
		run_case(&fc, &d, &r);
		qt_data_free(&d);
	}
}

Test(query_funnel, sequential_plain_matches_references)
{
	/* ties, repeated steps, window edges (gen_data's grid), canonical
	 * merges, on one thread and many */
	static const unsigned threads[] = {0, 1, 2, 3, 7, 16};
	for (size_t i = 0; i < sizeof(threads) / sizeof(threads[0]); i++) {
		qt_threads = threads[i];
		random_plain_sequential(201 + i, 400, 4, 4, DATA_SMALL);
		random_plain_sequential(211 + i, 300, 2, 5, DATA_SMALL);
		random_plain_sequential(221 + i, 40, 4, 4, DATA_BIG);
		random_plain_sequential(231 + i, 40, 2, 3, DATA_BIG);
	}
	qt_threads = 0;
}

Test(query_funnel, sequential_wide_person_space)
{
	/* canonical ids from the packed table, on one thread and several */
	static const unsigned threads[] = {1, 3};
	for (size_t i = 0; i < sizeof(threads) / sizeof(threads[0]); i++) {
		qt_threads = threads[i];
		random_plain_sequential(241 + i, 4, 4, 3, DATA_WIDE);
		random_plain_sequential(251 + i, 4, 2, 3, DATA_WIDE);
	}
	qt_threads = 0;
}

/* Rows about 2^62 ms apart do not fit the 8-byte entries: the general path
 * answers. */
Test(query_funnel, sequential_extreme_times)
{
	static const int64_t far = (int64_t)1 << 62;
	struct memsource *ms = memsource_new();
	memsource_add(ms, "A", -far, 0);
	memsource_add(ms, "B", far, 0);
	memsource_add(ms, "A", 0, 1);
	memsource_add(ms, "B", far, 1);
	memsource_add(ms, "A", 5, 2);
	memsource_add(ms, "B", 5, 2);
	memsource_build(ms, 0, 0);
	cJSON *res = qt_query(memsource_source(ms),
			      "{\"kind\":\"funnel\",\"window\":1e15,\"steps\":[" AB "]}");
	const cJSON *steps = qt_get(res, "steps");
	cr_assert_eq(qt_num(cJSON_GetArrayItem(steps, 0), "persons"), 3);
	cr_assert_eq(qt_num(cJSON_GetArrayItem(steps, 1), "persons"), 1);
	cr_assert_eq(qt_num(cJSON_GetArrayItem(steps, 1), "median_ms"), 0);
	cJSON_Delete(res);
	memsource_free(ms);
}

/* Far apart but within reach of the entries; a window longer than all the
 * data is the same as one as long as it. */
Test(query_funnel, sequential_long_windows)
{
	static const int64_t far = (int64_t)1 << 49;
	struct memsource *ms = memsource_new();
	memsource_add(ms, "A", 0, 0);
	memsource_add(ms, "B", far, 0);
	memsource_add(ms, "A", 1, 1);
	memsource_add(ms, "B", far + 2, 1);
	memsource_build(ms, 0, 0);
	cJSON *res = qt_query(memsource_source(ms),
			      "{\"kind\":\"funnel\",\"window\":1e15,\"steps\":[" AB "]}");
	const cJSON *steps = qt_get(res, "steps");
	cr_assert_eq(qt_num(cJSON_GetArrayItem(steps, 1), "persons"), 2);
	cr_assert_eq(qt_num(cJSON_GetArrayItem(steps, 1), "median_ms"), (double)far + 0.5);
	cJSON_Delete(res);
	res = qt_query(memsource_source(ms), "{\"kind\":\"funnel\",\"window\":562949953421312,"
					     "\"steps\":[" AB "],\"persons\":{\"step\":2}}");
	steps = qt_get(res, "steps");
	cr_assert_eq(qt_num(cJSON_GetArrayItem(steps, 1), "persons"), 1);
	cr_assert_eq(qt_num(cJSON_GetArrayItem(steps, 1), "median_ms"), (double)far);
	assert_only_pid(res, 0);
	cJSON_Delete(res);
	memsource_free(ms);
}

Test(query_funnel, sequential_canonical_out_of_range)
{
	struct memsource *ms = memsource_new();
	memsource_add(ms, "A", BASE, 0);
	memsource_add(ms, "B", BASE + 1, 1);
	uint32_t canon[2] = {0, 7};
	memsource_set_persons(ms, 2, canon);
	memsource_build(ms, 0, 0);
	char err[256];
	int rc = qt_query_fail(memsource_source(ms), "{\"kind\":\"funnel\",\"steps\":[" AB "]}",
			       err, sizeof(err));
	cr_assert_eq(rc, TD_ECORRUPT);
	cr_assert(strstr(err, "person id 1 is out of range"), "%s", err);
	memsource_free(ms);
}

Test(query_funnel, sequential_memory_limit)
{
	/* under limits from tiny to enough, on several threads: either the
	 * result or TD_ENOMEM with the output untouched and nothing leaked */
	struct qt_rng r = {42};
	struct qt_data d;
	qt_data_init(&d, 3000);
	qt_random_canon(&d, &r);
	for (int i = 0; i < 20000; i++)
		qt_add(&d, names[qt_int(&r, 3)], BASE + qt_int(&r, 100000),
		       (uint32_t)qt_int(&r, 3000));
	struct memsource *ms = qt_memsource(&d, &r);
	qt_memory_limits(memsource_source(ms),
			 "{\"kind\":\"funnel\",\"steps\":[" ABC "],\"persons\":{\"step\":2}}",
			 64u << 20, 3);
	memsource_free(ms);
	qt_data_free(&d);
}

static int cmp_ms(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Medians of thousands of conversion times (they are selected through a
 * histogram first): ties, wide and skewed spreads, odd and even counts,
 * both paths (sequential and strict). */
Test(query_funnel, median_of_many_times)
{
	struct qt_rng r = {77};
	static const char *const orders[] = {"sequential", "strict"};
	for (int shape = 0; shape < 5; shape++) {
		for (int n = 5000; n <= 5001; n++) {
			struct memsource *ms = memsource_new();
			int64_t *d = malloc((size_t)n * sizeof(*d));
			double sum = 0;
			for (int p = 0; p < n; p++) {
				int64_t x = qt_int(&r, 100000);
				d[p] = shape == 0   ? qt_int(&r, 3)
				       : shape == 1 ? qt_int(&r, 1000)
				       : shape == 2 ? (int64_t)(qt_next(&r) % 1000000000)
				       : shape == 3 ? ((int64_t)1 << qt_int(&r, 30)) + qt_int(&r, 7)
				       : p < n / 2  ? qt_int(&r, 3)
						    : 1000 + qt_int(&r, 100000);
				memsource_add(ms, "A", BASE + x, (uint32_t)p);
				memsource_add(ms, "B", BASE + x + d[p], (uint32_t)p);
				sum += (double)d[p];
			}
			memsource_build(ms, 0, 0);
			qsort(d, (size_t)n, sizeof(*d), cmp_ms);
			double want = n % 2 ? (double)d[n / 2]
					    : ((double)d[n / 2 - 1] + (double)d[n / 2]) / 2;
			for (int o = 0; o < 2; o++) {
				char q[256];
				snprintf(
				    q, sizeof(q),
				    "{\"kind\":\"funnel\",\"order\":\"%s\",\"window\":\"100w\","
				    "\"steps\":[" AB "]}",
				    orders[o]);
				cJSON *res = qt_query(memsource_source(ms), q);
				const cJSON *st = cJSON_GetArrayItem(qt_get(res, "steps"), 1);
				cr_assert_eq(qt_num(st, "persons"), n);
				cr_assert_eq(qt_num(st, "median_ms"), want,
					     "shape %d, %d persons, %s: median %g, expected %g",
					     shape, n, orders[o], qt_num(st, "median_ms"), want);
				cr_assert(qt_close(qt_num(st, "mean_ms"), sum / n));
				cJSON_Delete(res);
			}
			free(d);
			memsource_free(ms);
		}
	}
}
