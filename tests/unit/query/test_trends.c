/*
 * test_trends.c - trends against brute force: every row is bucketed by its
 * local wall-clock time (the C library's localtime_r, not the engine's tz
 * reader), grouped by breakdown value, and each math is recomputed with
 * plain loops over the rows of each cell.
 */
#include "qtest.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BASE	1708387200000LL /* 2024-02-20T00:00:00Z: the range spans March/April DST changes */
#define QUARTER (15 * 60000LL)

static const char *const maths[] = {
    "count", "unique_persons", "sum", "avg", "min", "max", "p50", "p90", "p99"};
static const char *const ivs[] = {"hour", "day", "week", "month"};
static const char *const zones[] = {"UTC",
				    "+05:30",
				    "-08:00",
				    "Europe/Paris",
				    "America/New_York",
				    "Australia/Sydney",
				    "Asia/Kathmandu",
				    "Pacific/Chatham"};

struct tcase {
	int nseries;
	const char *name[3];
	struct qt_filter f[3][2];
	int nf[3];
	int math[3];
	int iv;
	const char *tz;
	bool dates;
	int64_t from_day, to_day; /* dates: day numbers (UTC calendar) of date_from / date_to */
	int64_t from, to;	  /* datetimes: inclusive instants */
	bool bd, compare;
	int limit;
	struct qt_filter gf[2];
	int ngf;
};

static void day_text(int64_t day, char *out, size_t cap)
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, cap, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

static void case_json(const struct tcase *tc, char *s, size_t cap)
{
	s[0] = '\0';
	qt_cat(s, cap, "{\"kind\":\"trends\",\"interval\":\"%s\",\"timezone\":\"%s\",\"series\":[",
	       ivs[tc->iv], tc->tz);
	for (int i = 0; i < tc->nseries; i++) {
		qt_cat(s, cap, "%s{\"event\":\"%s\",\"math\":\"%s\"", i ? "," : "", tc->name[i],
		       maths[tc->math[i]]);
		if (tc->math[i] >= 2)
			qt_cat(s, cap, ",\"property\":\"properties.n\"");
		qt_cat(s, cap, ",\"filters\":");
		qt_filters_json(tc->f[i], tc->nf[i], s, cap);
		qt_cat(s, cap, "}");
	}
	qt_cat(s, cap, "]");
	char a[40], b[40];
	if (tc->dates) {
		day_text(tc->from_day, a, sizeof(a));
		day_text(tc->to_day, b, sizeof(b));
	} else {
		qt_iso(tc->from, a, sizeof(a));
		qt_iso(tc->to, b, sizeof(b));
	}
	qt_cat(s, cap, ",\"date_from\":\"%s\",\"date_to\":\"%s\"", a, b);
	if (tc->bd)
		qt_cat(s, cap, ",\"breakdown\":\"properties.plan\",\"breakdown_limit\":%d",
		       tc->limit);
	if (tc->compare)
		qt_cat(s, cap, ",\"compare\":true");
	if (tc->ngf) {
		qt_cat(s, cap, ",\"filters\":");
		qt_filters_json(tc->gf, tc->ngf, s, cap);
	}
	qt_cat(s, cap, "}");
}

/* ---- reference ------------------------------------------------------ */

static int64_t floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* UTC instant of local midnight starting `day` (a civil day number) in tz. */
static int64_t local_midnight(const char *tz, int64_t day)
{
	/* no zone used here changes its clocks at midnight: local midnight
	 * exists once, at day - offset(that instant); iterate to the fixpoint */
	int64_t u = day * QT_DAY;
	for (int i = 0; i < 4; i++)
		u = day * QT_DAY - qt_offset(tz, u);
	return u;
}

static int64_t bucket_key(int iv, int64_t local)
{
	int64_t day = floordiv(local, QT_DAY);
	switch (iv) {
	case 0:
		return floordiv(local, 3600000);
	case 1:
		return day;
	case 2:
		return floordiv(day + 3, 7); /* Mondays */
	default: {
		time_t t = (time_t)(day * 86400);
		struct tm tm;
		gmtime_r(&t, &tm);
		return (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon;
	}
	}
}

static void bucket_label(int iv, int64_t key, char *out, size_t cap)
{
	int64_t local;
	if (iv == 0)
		local = key * 3600000;
	else if (iv == 1)
		local = key * QT_DAY;
	else if (iv == 2)
		local = (key * 7 - 3) * QT_DAY;
	else {
		struct tm tm = {0};
		tm.tm_year = (int)(floordiv(key, 12) - 1900);
		tm.tm_mon = (int)(key - floordiv(key, 12) * 12);
		tm.tm_mday = 1;
		local = (int64_t)timegm(&tm) * 1000;
	}
	time_t t = (time_t)floordiv(local, 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double quantile(double *v, int n, double p)
{
	if (n == 0)
		return NAN;
	qsort(v, (size_t)n, sizeof(double), cmp_dbl);
	double h = (n - 1) * p;
	int lo = (int)floor(h);
	if (lo + 1 >= n)
		return v[n - 1];
	return v[lo] + (h - lo) * (v[lo + 1] - v[lo]);
}

/* The math over a set of rows. */
static double aggregate(int math, const struct qt_data *d, const struct qt_ev *const *rows, int n)
{
	if (math == 0)
		return n;
	if (math == 1) {
		int distinct = 0;
		for (int i = 0; i < n; i++) {
			bool seen = false;
			for (int j = 0; j < i; j++)
				seen |= d->canon[rows[j]->pid] == d->canon[rows[i]->pid];
			distinct += !seen;
		}
		return distinct;
	}
	double v[4096];
	int nv = 0;
	for (int i = 0; i < n; i++)
		if (rows[i]->has_n)
			v[nv++] = rows[i]->n;
	if (math == 2) {
		double s = 0;
		for (int i = 0; i < nv; i++)
			s += v[i];
		return s;
	}
	if (nv == 0)
		return NAN;
	double s = 0, mn = v[0], mx = v[0];
	for (int i = 0; i < nv; i++) {
		s += v[i];
		mn = fmin(mn, v[i]);
		mx = fmax(mx, v[i]);
	}
	switch (math) {
	case 3:
		return s / nv;
	case 4:
		return mn;
	case 5:
		return mx;
	case 6:
		return quantile(v, nv, 0.5);
	case 7:
		return quantile(v, nv, 0.9);
	default:
		return quantile(v, nv, 0.99);
	}
}

struct rgroup {
	const char *value;
	int rows;
};

static int cmp_rgroup(const void *a, const void *b)
{
	const struct rgroup *x = a, *y = b;
	if (x->rows != y->rows)
		return x->rows > y->rows ? -1 : 1;
	if (!x->value || !y->value)
		return !x->value - !y->value;
	return strcmp(x->value, y->value);
}

static bool same_value(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Checks the lines of one series in one period, starting at *line. */
static void check_period(const struct tcase *tc, const struct qt_data *d, int si, int64_t from,
			 int64_t to, bool previous, struct rgroup *top, int *ntop,
			 const cJSON *series, int *line, const char *json)
{
	const struct qt_ev *rows[4096];
	int n = 0;
	for (size_t i = 0; i < d->n; i++) {
		const struct qt_ev *e = &d->ev[i];
		if (e->ts < from || e->ts >= to)
			continue;
		if (*tc->name[si] && strcmp(e->name, tc->name[si]) != 0)
			continue;
		if (!qt_filters_match(tc->gf, tc->ngf, e) ||
		    !qt_filters_match(tc->f[si], tc->nf[si], e))
			continue;
		rows[n++] = e;
	}
	int64_t k0 = bucket_key(tc->iv, from + qt_offset(tc->tz, from));
	int64_t k1 = bucket_key(tc->iv, to - 1 + qt_offset(tc->tz, to - 1));
	int nb = (int)(k1 - k0 + 1);
	if (!previous) {
		*ntop = 0;
		if (tc->bd) {
			struct rgroup g[64];
			int ng = 0;
			for (int i = 0; i < n; i++) {
				int k = 0;
				while (k < ng && !same_value(g[k].value, rows[i]->plan))
					k++;
				if (k == ng)
					g[ng++] = (struct rgroup){rows[i]->plan, 0};
				g[k].rows++;
			}
			qsort(g, (size_t)ng, sizeof(g[0]), cmp_rgroup);
			*ntop = ng < tc->limit ? ng : tc->limit;
			memcpy(top, g, (size_t)*ntop * sizeof(*top));
		}
	}
	int nlines = tc->bd ? *ntop + 1 : 1;
	for (int o = 0; o < nlines; o++) {
		/* rows of this line */
		const struct qt_ev *mine[4096];
		int m = 0;
		for (int i = 0; i < n; i++) {
			bool in_top = false;
			for (int k = 0; k < *ntop; k++)
				in_top |= same_value(top[k].value, rows[i]->plan);
			if (!tc->bd ||
			    (o < *ntop ? same_value(top[o].value, rows[i]->plan) : !in_top))
				mine[m++] = rows[i];
		}
		if (tc->bd && o == *ntop && m == 0)
			continue; /* no "other" line without other rows */
		const cJSON *l = cJSON_GetArrayItem(series, (*line)++);
		cr_assert(l, "missing line for series %d\n%s", si, json);
		cr_assert_eq((int)qt_num(l, "series"), si, "line %d series\n%s", *line - 1, json);
		cr_assert_str_eq(qt_get(l, "period")->valuestring,
				 previous ? "previous" : "current");
		if (tc->bd) {
			bool is_other = cJSON_IsTrue(qt_get(l, "is_other"));
			cr_assert_eq(is_other, o == *ntop, "line %d is_other\n%s", *line - 1, json);
			const cJSON *v = qt_get(l, "breakdown_value");
			const char *want = o < *ntop ? top[o].value : NULL;
			cr_assert(want ? cJSON_IsString(v) && strcmp(v->valuestring, want) == 0
				       : cJSON_IsNull(v),
				  "line %d breakdown_value\n%s", *line - 1, json);
		}
		const cJSON *vals = qt_get(l, "values");
		cr_assert_eq(cJSON_GetArraySize(vals), nb, "line %d: %d buckets, expected %d\n%s",
			     *line - 1, cJSON_GetArraySize(vals), nb, json);
		for (int b = 0; b < nb; b++) {
			const struct qt_ev *cell[4096];
			int c = 0;
			for (int i = 0; i < m; i++)
				if (bucket_key(tc->iv,
					       mine[i]->ts + qt_offset(tc->tz, mine[i]->ts)) ==
				    k0 + b)
					cell[c++] = mine[i];
			double want = aggregate(tc->math[si], d, cell, c);
			double got = qt_num_or_nan(cJSON_GetArrayItem(vals, b));
			cr_assert(qt_close(got, want), "line %d bucket %d: %g, expected %g\n%s",
				  *line - 1, b, got, want, json);
		}
		double want = aggregate(tc->math[si], d, mine, m);
		double got = qt_num_or_nan(qt_get(l, "total"));
		cr_assert(qt_close(got, want), "line %d total: %g, expected %g\n%s", *line - 1, got,
			  want, json);
	}
}

static void check_labels(const cJSON *labels, const struct tcase *tc, int64_t from, int64_t to,
			 const char *json)
{
	int64_t k0 = bucket_key(tc->iv, from + qt_offset(tc->tz, from));
	int64_t k1 = bucket_key(tc->iv, to - 1 + qt_offset(tc->tz, to - 1));
	cr_assert_eq(cJSON_GetArraySize(labels), (int)(k1 - k0 + 1), "bucket count\n%s", json);
	for (int64_t k = k0; k <= k1; k++) {
		char want[40];
		bucket_label(tc->iv, k, want, sizeof(want));
		cr_assert_str_eq(cJSON_GetArrayItem(labels, (int)(k - k0))->valuestring, want,
				 "label %lld\n%s", (long long)(k - k0), json);
	}
}

static void run_case(const struct tcase *tc, const struct qt_data *d, struct qt_rng *r)
{
	static char json[16384];
	case_json(tc, json, sizeof(json));
	struct memsource *ms = qt_memsource(d, r);
	cJSON *res = qt_query(memsource_source(ms), json);
	int64_t from, to, pfrom, pto;
	if (tc->dates) {
		from = local_midnight(tc->tz, tc->from_day);
		to = local_midnight(tc->tz, tc->to_day + 1);
		int64_t ndays = tc->to_day + 1 - tc->from_day;
		pfrom = local_midnight(tc->tz, tc->from_day - ndays);
		pto = from;
	} else {
		from = tc->from;
		to = tc->to + 1;
		pfrom = from - (to - from);
		pto = from;
	}
	check_labels(qt_get(res, "buckets"), tc, from, to, json);
	if (tc->compare)
		check_labels(qt_get(res, "previous_buckets"), tc, pfrom, pto, json);
	const cJSON *series = qt_get(res, "series");
	int line = 0;
	for (int si = 0; si < tc->nseries; si++) {
		struct rgroup top[8];
		int ntop = 0;
		check_period(tc, d, si, from, to, false, top, &ntop, series, &line, json);
		if (tc->compare)
			check_period(tc, d, si, pfrom, pto, true, top, &ntop, series, &line, json);
	}
	cr_assert_eq(cJSON_GetArraySize(series), line, "extra lines\n%s", json);
	cJSON_Delete(res);
	memsource_free(ms);
}

static const char *const names[] = {"A", "B", "C"};

/* DST changes of the zones above inside the long span */
static const int64_t transitions[] = {
    1710054000000LL, /* 2024-03-10T07:00Z New York */
    1711846800000LL, /* 2024-03-31T01:00Z Paris */
    1712412000000LL, /* 2024-04-06T14:00Z Chatham */
    1712419200000LL, /* 2024-04-06T16:00Z Sydney */
};

static void gen(struct qt_rng *r, struct qt_data *d, struct tcase *tc, int64_t base,
		int64_t span_days)
{
	qt_data_init(d, 2 + (uint32_t)qt_int(r, 8));
	qt_random_canon(d, r);
	int nev = 1 + qt_int(r, 60);
	for (int i = 0; i < nev; i++) {
		int64_t ts = base + (int64_t)qt_int(r, (int)(span_days * 96)) * QUARTER;
		int64_t tr = transitions[qt_int(r, 4)];
		if (span_days > 30 && qt_int(r, 2)) /* within a day of a DST change */
			ts = tr + (int64_t)(qt_int(r, 8 * 26) - 4 * 26) * QUARTER;
		else if (tr >= base && tr < base + span_days * QT_DAY && qt_int(r, 2))
			ts = tr + (int64_t)(qt_int(r, 8 * 24) - 4 * 24) * QUARTER; /* +-24 h */
		ts += qt_int(r, 3) == 0 ? qt_int(r, 3) - 1 : 0;
		struct qt_ev *e =
		    qt_add(d, names[qt_int(r, 3)], ts, (uint32_t)qt_int(r, (int)d->npersons));
		qt_random_props(e, r);
	}
	memset(tc, 0, sizeof(*tc));
	tc->nseries = 1 + qt_int(r, 3);
	for (int i = 0; i < tc->nseries; i++) {
		do
			tc->name[i] = qt_int(r, 8) ? names[qt_int(r, 3)] : "";
		while (*tc->name[i] && !qt_name_exists(d, tc->name[i]));
		tc->math[i] = qt_int(r, 9);
		if (tc->math[i] >= 2 && !qt_has_prop(d, tc->name[i], 1))
			tc->math[i] = qt_int(r, 2);
		tc->nf[i] = qt_int(r, 3) == 0 ? qt_pick_filters(r, d, tc->name[i], 2, tc->f[i]) : 0;
	}
	tc->iv = qt_int(r, 4);
	tc->tz = zones[qt_int(r, 8)];
	int64_t base_day = base / QT_DAY;
	/* hourly buckets over short ranges only */
	int64_t max_len = tc->iv == 0 ? 3 : span_days;
	if (qt_int(r, 2)) {
		tc->dates = true;
		tc->from_day = base_day + qt_int(r, (int)span_days);
		tc->to_day = tc->from_day + qt_int(r, (int)max_len);
	} else {
		tc->from =
		    base + (int64_t)qt_int(r, (int)(span_days * 96)) * QUARTER - qt_int(r, 2);
		tc->to =
		    tc->from + (int64_t)qt_int(r, (int)(max_len * 96)) * QUARTER + qt_int(r, 2);
	}
	bool have_plan = false;
	for (int i = 0; i < tc->nseries; i++)
		have_plan |= qt_has_prop(d, tc->name[i], 0);
	tc->bd = have_plan && qt_int(r, 3) == 0;
	tc->limit = 1 + qt_int(r, 4);
	tc->compare = qt_int(r, 3) == 0;
	if (qt_int(r, 6) == 0)
		tc->ngf = qt_pick_filters(r, d, "", 1, tc->gf);
}

static void random_trends(uint64_t seed, int iterations, int64_t base, int64_t span_days)
{
	struct qt_rng r = {seed};
	for (int it = 0; it < iterations; it++) {
		struct qt_data d;
		struct tcase tc;
		gen(&r, &d, &tc, base, span_days);
		run_case(&tc, &d, &r);
		qt_data_free(&d);
	}
}

Test(query_trends, random_short_ranges)
{
	/* events on a 15-minute grid (+-1 ms) over 4 days: hour and day edges,
	 * around the DST changes of New York, then Paris, Sydney and Chatham */
	random_trends(11, 700, 1709942400000LL /* 2024-03-09 */, 4);
	random_trends(13, 700, 1711670400000LL /* 2024-03-29 */, 4);
	random_trends(14, 700, 1712275200000LL /* 2024-04-05 */, 4);
}

Test(query_trends, random_long_ranges_across_dst)
{
	/* 70 days from Feb 20: March and April DST changes, weeks, months */
	random_trends(12, 2000, BASE, 70);
}

Test(query_trends, parallel_matches_reference)
{
	/* unique persons run a task per bucket, each with its own bitmaps */
	for (unsigned t = 2; t <= 4; t++) {
		qt_threads = t;
		random_trends(40 + t, 300, 1711670400000LL /* 2024-03-29 */, 4);
		random_trends(50 + t, 500, BASE, 70);
	}
}

/* ---- hand-written cases --------------------------------------------- */

static cJSON *one(const char *tz, const char *interval, const char *from, const char *to,
		  const int64_t *ts, int n)
{
	struct memsource *ms = memsource_new();
	for (int i = 0; i < n; i++)
		memsource_add(ms, "A", ts[i], (uint32_t)i);
	memsource_build(ms, 0, 0);
	char q[512];
	snprintf(q, sizeof(q),
		 "{\"kind\":\"trends\",\"series\":[{\"event\":\"A\"}],\"interval\":\"%s\","
		 "\"timezone\":\"%s\",\"date_from\":\"%s\",\"date_to\":\"%s\"}",
		 interval, tz, from, to);
	cJSON *res = qt_query(memsource_source(ms), q);
	memsource_free(ms);
	return res;
}

static int value_at(const cJSON *res, int b)
{
	const cJSON *l = cJSON_GetArrayItem(qt_get(res, "series"), 0);
	return (int)cJSON_GetArrayItem(qt_get(l, "values"), b)->valuedouble;
}

Test(query_trends, paris_dst_day_boundaries)
{
	/* 2024-03-31: Paris goes from +01:00 to +02:00 at 01:00 UTC */
	int64_t ts[] = {
	    1711839599999LL, /* 2024-03-30T22:59:59.999Z = Mar 30 23:59:59.999 local */
	    1711839600000LL, /* 2024-03-30T23:00:00Z = Mar 31 00:00 local */
	    1711922399999LL, /* 2024-03-31T21:59:59.999Z = Mar 31 23:59:59.999 local (+2) */
	    1711922400000LL, /* 2024-03-31T22:00:00Z = Apr 1 00:00 local */
	};
	cJSON *res = one("Europe/Paris", "day", "2024-03-30", "2024-04-01", ts, 4);
	const cJSON *b = qt_get(res, "buckets");
	cr_assert_str_eq(cJSON_GetArrayItem(b, 1)->valuestring, "2024-03-31T00:00:00");
	cr_assert_eq(value_at(res, 0), 1);
	cr_assert_eq(value_at(res, 1), 2);
	cr_assert_eq(value_at(res, 2), 1);
	cr_assert_str_eq(qt_get(res, "from")->valuestring, "2024-03-30T00:00:00.000+01:00");
	cr_assert_str_eq(qt_get(res, "to")->valuestring, "2024-04-02T00:00:00.000+02:00");
	cJSON_Delete(res);
}

Test(query_trends, fixed_offset_and_hours)
{
	/* +05:45: local midnight is 18:15 UTC the day before */
	int64_t ts[] = {1709230499999LL /* 2024-02-29T18:14:59.999Z */,
			1709230500000LL /* 2024-02-29T18:15:00Z = Mar 1 00:00 */};
	cJSON *res = one("+05:45", "hour", "2024-02-29T23:00:00", "2024-03-01T00:59:59", ts, 2);
	cr_assert_eq(cJSON_GetArraySize(qt_get(res, "buckets")), 2);
	cr_assert_str_eq(cJSON_GetArrayItem(qt_get(res, "buckets"), 1)->valuestring,
			 "2024-03-01T00:00:00");
	cr_assert_eq(value_at(res, 0), 1);
	cr_assert_eq(value_at(res, 1), 1);
	cJSON_Delete(res);
}

Test(query_trends, weeks_start_on_monday_and_months)
{
	int64_t ts[] = {1709510400000LL /* Mon 2024-03-04 */, 1709510399999LL /* Sun 23:59 */};
	cJSON *res = one("UTC", "week", "2024-03-01", "2024-03-10", ts, 2);
	const cJSON *b = qt_get(res, "buckets");
	cr_assert_str_eq(cJSON_GetArrayItem(b, 0)->valuestring, "2024-02-26T00:00:00");
	cr_assert_str_eq(cJSON_GetArrayItem(b, 1)->valuestring, "2024-03-04T00:00:00");
	cr_assert_eq(value_at(res, 0), 1);
	cr_assert_eq(value_at(res, 1), 1);
	cJSON_Delete(res);
	res = one("America/New_York", "month", "2024-01-15", "2024-03-31", ts, 2);
	b = qt_get(res, "buckets");
	cr_assert_eq(cJSON_GetArraySize(b), 3);
	cr_assert_str_eq(cJSON_GetArrayItem(b, 2)->valuestring, "2024-03-01T00:00:00");
	cr_assert_eq(value_at(res, 2), 2);
	cJSON_Delete(res);
}

Test(query_trends, empty_range_and_empty_event)
{
	int64_t ts[] = {BASE};
	cJSON *res = one("UTC", "day", "2030-01-01", "2030-01-03", ts, 1);
	cr_assert_eq(value_at(res, 0) + value_at(res, 1) + value_at(res, 2), 0);
	cr_assert_eq(qt_num(cJSON_GetArrayItem(qt_get(res, "series"), 0), "total"), 0);
	cJSON_Delete(res);
}

Test(query_trends, numbers_as_breakdown_values)
{
	struct memsource *ms = memsource_new();
	double v[] = {3, 0.5, 3, 1e21};
	for (int i = 0; i < 4; i++) {
		size_t row = memsource_add(ms, "A", BASE + i, 0);
		memsource_set_num(ms, row, "properties.n", v[i]);
	}
	memsource_build(ms, 0, 0);
	cJSON *res = qt_query(memsource_source(ms),
			      "{\"kind\":\"trends\",\"series\":[{\"event\":\"A\"}],\"breakdown\":"
			      "\"properties.n\",\"date_from\":\"2024-02-20\",\"date_to\":"
			      "\"2024-02-20\"}");
	const cJSON *s = qt_get(res, "series");
	cr_assert_eq(cJSON_GetArraySize(s), 3);
	cr_assert_str_eq(qt_get(cJSON_GetArrayItem(s, 0), "breakdown_value")->valuestring, "3");
	cr_assert_str_eq(qt_get(cJSON_GetArrayItem(s, 1), "breakdown_value")->valuestring, "0.5");
	cr_assert_str_eq(qt_get(cJSON_GetArrayItem(s, 2), "breakdown_value")->valuestring, "1e+21");
	cJSON_Delete(res);
	memsource_free(ms);
}
