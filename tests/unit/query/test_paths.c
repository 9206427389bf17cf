/*
 * test_paths.c - paths against brute force: per person, sort the events,
 * cut sessions at gaps longer than the session gap, walk from the first
 * anchor of each session, count transitions per depth.
 */
#include "qtest.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASE 1709251200000LL
#define MIN  60000LL

static const char *const names[] = {"A", "B", "C", "D"};

struct pcase {
	const char *anchor;
	struct qt_filter af[2], gf[1];
	int naf, ngf;
	bool before;
	int depth, limit;
	int64_t gap;
	bool include[4], use_include;
	bool has_range;
	int64_t from, to;
};

static bool taken(const struct pcase *pc, const struct qt_ev *e)
{
	if (pc->has_range && (e->ts < pc->from || e->ts > pc->to))
		return false;
	if (!qt_filters_match(pc->gf, pc->ngf, e))
		return false;
	if (!pc->use_include)
		return true;
	for (int i = 0; i < 4; i++)
		if (pc->include[i] && strcmp(names[i], e->name) == 0)
			return true;
	return strcmp(e->name, pc->anchor) == 0;
}

static bool is_anchor(const struct pcase *pc, const struct qt_ev *e)
{
	return (!*pc->anchor || strcmp(e->name, pc->anchor) == 0) &&
	       qt_filters_match(pc->af, pc->naf, e);
}

static const struct pcase *sort_pc;

static int cmp_ev(const void *a, const void *b)
{
	const struct qt_ev *x = *(const struct qt_ev *const *)a,
			   *y = *(const struct qt_ev *const *)b;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return (int)is_anchor(sort_pc, y) - (int)is_anchor(sort_pc, x);
}

struct trans {
	int depth;
	const char *from, *to;
	int count;
};

static int cmp_trans(const void *a, const void *b)
{
	const struct trans *x = a, *y = b;
	if (x->count != y->count)
		return y->count - x->count;
	int c = strcmp(x->from, y->from);
	return c ? c : strcmp(x->to, y->to);
}

static void run_case(const struct pcase *pc, const struct qt_data *d, struct qt_rng *r)
{
	char json[4096] = "";
	qt_cat(json, sizeof(json),
	       "{\"kind\":\"paths\",\"direction\":\"%s\",\"depth\":%d,\"limit\":%d,"
	       "\"session_gap\":%lld,\"anchor\":{\"event\":\"%s\",\"filters\":",
	       pc->before ? "before" : "after", pc->depth, pc->limit, (long long)pc->gap,
	       pc->anchor);
	qt_filters_json(pc->af, pc->naf, json, sizeof(json));
	qt_cat(json, sizeof(json), "}");
	if (pc->use_include) {
		qt_cat(json, sizeof(json), ",\"events\":[");
		bool first = true;
		for (int i = 0; i < 4; i++)
			if (pc->include[i]) {
				qt_cat(json, sizeof(json), "%s\"%s\"", first ? "" : ",", names[i]);
				first = false;
			}
		qt_cat(json, sizeof(json), "]");
	}
	if (pc->has_range) {
		char a[40], b[40];
		qt_iso(pc->from, a, sizeof(a));
		qt_iso(pc->to, b, sizeof(b));
		qt_cat(json, sizeof(json), ",\"date_from\":\"%s\",\"date_to\":\"%s\"", a, b);
	}
	if (pc->ngf) {
		qt_cat(json, sizeof(json), ",\"filters\":");
		qt_filters_json(pc->gf, pc->ngf, json, sizeof(json));
	}
	qt_cat(json, sizeof(json), "}");
	struct memsource *ms = qt_memsource(d, r);
	cJSON *res = qt_query(memsource_source(ms), json);

	struct trans tr[2048];
	int nt = 0, sessions = 0, reach[32] = {0};
	const struct qt_ev *ev[512];
	sort_pc = pc;
	for (uint32_t p = 0; p < d->npersons; p++) {
		int n = 0;
		for (size_t i = 0; i < d->n; i++)
			if (d->canon[d->ev[i].pid] == p && taken(pc, &d->ev[i]))
				ev[n++] = &d->ev[i];
		qsort(ev, (size_t)n, sizeof(ev[0]), cmp_ev);
		for (int s = 0; s < n;) {
			int end = s + 1;
			while (end < n && ev[end]->ts - ev[end - 1]->ts <= pc->gap)
				end++;
			int at = s;
			while (at < end && !is_anchor(pc, ev[at]))
				at++;
			if (at < end) {
				sessions++;
				for (int dd = 1; dd <= pc->depth; dd++) {
					int x = pc->before ? at - dd : at + dd - 1;
					int y = x + 1;
					if (x < s || y >= end)
						break;
					reach[dd]++;
					int k = 0;
					while (k < nt && !(tr[k].depth == dd &&
							   strcmp(tr[k].from, ev[x]->name) == 0 &&
							   strcmp(tr[k].to, ev[y]->name) == 0))
						k++;
					if (k == nt)
						tr[nt++] =
						    (struct trans){dd, ev[x]->name, ev[y]->name, 0};
					tr[k].count++;
				}
			}
			s = end;
		}
	}
	cr_assert_eq((int)qt_num(res, "sessions"), sessions, "sessions\n%s", json);
	const cJSON *depths = qt_get(res, "depths");
	cr_assert_eq(cJSON_GetArraySize(depths), pc->depth);
	for (int dd = 1; dd <= pc->depth; dd++) {
		struct trans mine[64];
		int m = 0;
		for (int k = 0; k < nt; k++)
			if (tr[k].depth == dd)
				mine[m++] = tr[k];
		qsort(mine, (size_t)m, sizeof(mine[0]), cmp_trans);
		const cJSON *dj = cJSON_GetArrayItem(depths, dd - 1);
		cr_assert_eq((int)qt_num(dj, "sessions"), reach[dd], "depth %d sessions\n%s", dd,
			     json);
		const cJSON *t = qt_get(dj, "transitions");
		int want = m < pc->limit ? m : pc->limit;
		cr_assert_eq(cJSON_GetArraySize(t), want, "depth %d transitions\n%s", dd, json);
		for (int k = 0; k < want; k++) {
			const cJSON *tj = cJSON_GetArrayItem(t, k);
			cr_assert_str_eq(qt_get(tj, "from")->valuestring, mine[k].from, "%s", json);
			cr_assert_str_eq(qt_get(tj, "to")->valuestring, mine[k].to, "%s", json);
			cr_assert_eq((int)qt_num(tj, "count"), mine[k].count, "%s", json);
		}
	}
	cJSON_Delete(res);
	memsource_free(ms);
}

Test(query_paths, random_against_reference)
{
	struct qt_rng r = {31};
	for (int it = 0; it < 2000; it++) {
		struct qt_data d;
		qt_data_init(&d, 2 + (uint32_t)qt_int(&r, 6));
		qt_random_canon(&d, &r);
		int nev = 1 + qt_int(&r, 50);
		for (int i = 0; i < nev; i++) {
			/* 10-minute grid over 4 hours: gaps of exactly 30 min and 30 min +- 1 ms */
			int64_t ts = BASE + qt_int(&r, 24) * 10 * MIN +
				     (qt_int(&r, 4) == 0 ? qt_int(&r, 3) - 1 : 0);
			struct qt_ev *e = qt_add(&d, names[qt_int(&r, 4)], ts,
						 (uint32_t)qt_int(&r, (int)d.npersons));
			qt_random_props(e, &r);
		}
		struct pcase pc;
		memset(&pc, 0, sizeof(pc));
		do
			pc.anchor = qt_int(&r, 8) ? names[qt_int(&r, 4)] : "";
		while (*pc.anchor && !qt_name_exists(&d, pc.anchor));
		pc.naf = qt_int(&r, 3) == 0 ? qt_pick_filters(&r, &d, pc.anchor, 2, pc.af) : 0;
		pc.ngf = qt_int(&r, 6) == 0 ? qt_pick_filters(&r, &d, "", 1, pc.gf) : 0;
		pc.before = qt_int(&r, 2);
		pc.depth = 1 + qt_int(&r, 5);
		pc.limit = 1 + qt_int(&r, 6);
		pc.gap = qt_int(&r, 3) ? 30 * MIN : (1 + qt_int(&r, 60)) * MIN;
		if (qt_int(&r, 4) == 0) {
			pc.use_include = true;
			for (int i = 0; i < 4; i++)
				pc.include[i] = qt_int(&r, 2) && qt_name_exists(&d, names[i]);
		}
		if (qt_int(&r, 3) == 0) {
			pc.has_range = true;
			pc.from = BASE + qt_int(&r, 24) * 10 * MIN;
			pc.to = pc.from + qt_int(&r, 24) * 10 * MIN;
		}
		run_case(&pc, &d, &r);
		qt_data_free(&d);
	}
}

Test(query_paths, session_split_after_thirty_minutes)
{
	struct memsource *ms = memsource_new();
	memsource_add(ms, "A", BASE, 0);
	memsource_add(ms, "B", BASE + 30 * MIN, 0);	/* exactly 30 min: same session */
	memsource_add(ms, "C", BASE + 60 * MIN + 1, 0); /* 30 min + 1 ms: a new session */
	memsource_build(ms, 0, 0);
	cJSON *res = qt_query(memsource_source(ms),
			      "{\"kind\":\"paths\",\"anchor\":{\"event\":\"A\"},\"depth\":3}");
	const cJSON *depths = qt_get(res, "depths");
	cr_assert_eq(qt_num(cJSON_GetArrayItem(depths, 0), "sessions"), 1);
	cr_assert_eq(qt_num(cJSON_GetArrayItem(depths, 1), "sessions"), 0);
	const cJSON *t =
	    cJSON_GetArrayItem(qt_get(cJSON_GetArrayItem(depths, 0), "transitions"), 0);
	cr_assert_str_eq(qt_get(t, "to")->valuestring, "B");
	cJSON_Delete(res);
	memsource_free(ms);
}
