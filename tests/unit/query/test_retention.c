/*
 * test_retention.c - retention against brute force, written the way
 * ClickHouse's retention() is used: for each cohort period C and person p,
 * r = retention(start in C [first time: and C is p's first start period],
 * return in C, return in C+1, ...), and the table sums r over persons.
 */
#include "qtest.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BASE 1709251200000LL /* 2024-03-01T00:00:00Z */
#define HOUR 3600000LL

static const char *const periods[] = {"day", "week", "month"};
static const char *const zones[] = {"UTC", "+09:00", "-03:30", "Europe/Paris", "America/New_York"};
static const char *const names[] = {"A", "B", "C"};

struct rcase {
	const char *start, *ret;
	struct qt_filter sf[2], rf[2], gf[1];
	int nsf, nrf, ngf;
	bool recurring;
	int period, n;
	const char *tz;
	int64_t from_day, to_day;
};

static int64_t floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t key_of(const struct rcase *rc, int64_t ts)
{
	int64_t local = ts + qt_offset(rc->tz, ts);
	int64_t day = floordiv(local, QT_DAY);
	if (rc->period == 0)
		return day;
	if (rc->period == 1)
		return floordiv(day + 3, 7);
	time_t t = (time_t)(day * 86400);
	struct tm tm;
	gmtime_r(&t, &tm);
	return (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon;
}

static int64_t local_midnight(const char *tz, int64_t day)
{
	int64_t u = day * QT_DAY;
	for (int i = 0; i < 4; i++)
		u = day * QT_DAY - qt_offset(tz, u);
	return u;
}

static void day_text(int64_t day, char *out, size_t cap)
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, cap, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

static bool is_start(const struct rcase *rc, const struct qt_ev *e)
{
	return (!*rc->start || strcmp(e->name, rc->start) == 0) &&
	       qt_filters_match(rc->gf, rc->ngf, e) && qt_filters_match(rc->sf, rc->nsf, e);
}

static bool is_return(const struct rcase *rc, const struct qt_ev *e)
{
	return (!*rc->ret || strcmp(e->name, rc->ret) == 0) &&
	       qt_filters_match(rc->gf, rc->ngf, e) && qt_filters_match(rc->rf, rc->nrf, e);
}

static void run_case(const struct rcase *rc, const struct qt_data *d, struct qt_rng *r)
{
	char json[4096] = "", a[48], b[48];
	day_text(rc->from_day, a, sizeof(a));
	day_text(rc->to_day, b, sizeof(b));
	qt_cat(json, sizeof(json),
	       "{\"kind\":\"retention\",\"cohort\":\"%s\",\"period\":\"%s\",\"periods\":%d,"
	       "\"timezone\":\"%s\",\"date_from\":\"%s\",\"date_to\":\"%s\",\"start\":{\"event\":"
	       "\"%s\",\"filters\":",
	       rc->recurring ? "recurring" : "first_time", periods[rc->period], rc->n, rc->tz, a, b,
	       rc->start);
	qt_filters_json(rc->sf, rc->nsf, json, sizeof(json));
	qt_cat(json, sizeof(json), "},\"return\":{\"event\":\"%s\",\"filters\":", rc->ret);
	qt_filters_json(rc->rf, rc->nrf, json, sizeof(json));
	qt_cat(json, sizeof(json), "}");
	if (rc->ngf) {
		qt_cat(json, sizeof(json), ",\"filters\":");
		qt_filters_json(rc->gf, rc->ngf, json, sizeof(json));
	}
	qt_cat(json, sizeof(json), "}");
	struct memsource *ms = qt_memsource(d, r);
	cJSON *res = qt_query(memsource_source(ms), json);

	int64_t k0 = key_of(rc, local_midnight(rc->tz, rc->from_day));
	int64_t k1 = key_of(rc, local_midnight(rc->tz, rc->to_day + 1) - 1);
	const cJSON *coh = qt_get(res, "cohorts");
	cr_assert_eq(cJSON_GetArraySize(coh), (int)(k1 - k0 + 1), "cohort count\n%s", json);
	for (int64_t c = k0; c <= k1; c++) {
		uint64_t size = 0, val[16] = {0};
		for (uint32_t p = 0; p < d->npersons; p++) {
			/* cond 1: p is in cohort c */
			bool in = false;
			if (rc->recurring) {
				for (size_t i = 0; i < d->n; i++)
					in |= d->canon[d->ev[i].pid] == p &&
					      is_start(rc, &d->ev[i]) &&
					      key_of(rc, d->ev[i].ts) == c;
			} else {
				bool any = false;
				int64_t first = 0;
				for (size_t i = 0; i < d->n; i++)
					if (d->canon[d->ev[i].pid] == p &&
					    is_start(rc, &d->ev[i]) &&
					    (!any || d->ev[i].ts < first)) {
						first = d->ev[i].ts;
						any = true;
					}
				in = any && key_of(rc, first) == c;
			}
			if (!in)
				continue;
			size++;
			for (int k = 0; k < rc->n; k++) {
				bool back = false;
				for (size_t i = 0; i < d->n; i++)
					back |= d->canon[d->ev[i].pid] == p &&
						is_return(rc, &d->ev[i]) &&
						key_of(rc, d->ev[i].ts) == c + k;
				val[k] += back;
			}
		}
		const cJSON *co = cJSON_GetArrayItem(coh, (int)(c - k0));
		cr_assert_eq((uint64_t)qt_num(co, "size"), size, "cohort %lld size\n%s",
			     (long long)(c - k0), json);
		const cJSON *vals = qt_get(co, "values"), *pct = qt_get(co, "percentages");
		cr_assert_eq(cJSON_GetArraySize(vals), rc->n);
		for (int k = 0; k < rc->n; k++) {
			cr_assert_eq((uint64_t)cJSON_GetArrayItem(vals, k)->valuedouble, val[k],
				     "cohort %lld period %d: %g, expected %llu\n%s",
				     (long long)(c - k0), k,
				     cJSON_GetArrayItem(vals, k)->valuedouble,
				     (unsigned long long)val[k], json);
			double want = size ? 100.0 * (double)val[k] / (double)size : NAN;
			cr_assert(qt_close(qt_num_or_nan(cJSON_GetArrayItem(pct, k)), want));
		}
	}
	cJSON_Delete(res);
	memsource_free(ms);
}

static void random_retention(uint64_t seed, int iterations)
{
	struct qt_rng r = {seed};
	for (int it = 0; it < iterations; it++) {
		struct qt_data d;
		qt_data_init(&d, 2 + (uint32_t)qt_int(&r, 8));
		qt_random_canon(&d, &r);
		int nev = 1 + qt_int(&r, 50);
		for (int i = 0; i < nev; i++) {
			/* hours over ~75 days, some right at local midnights */
			int64_t ts = BASE - 10 * QT_DAY + (int64_t)qt_int(&r, 75 * 24) * HOUR +
				     (qt_int(&r, 4) == 0 ? qt_int(&r, 3) - 1 : 0);
			struct qt_ev *e = qt_add(&d, names[qt_int(&r, 3)], ts,
						 (uint32_t)qt_int(&r, (int)d.npersons));
			qt_random_props(e, &r);
		}
		struct rcase rc;
		memset(&rc, 0, sizeof(rc));
		do
			rc.start = qt_int(&r, 8) ? names[qt_int(&r, 3)] : "";
		while (*rc.start && !qt_name_exists(&d, rc.start));
		do
			rc.ret = qt_int(&r, 8) ? names[qt_int(&r, 3)] : "";
		while (*rc.ret && !qt_name_exists(&d, rc.ret));
		rc.nsf = qt_int(&r, 3) == 0 ? qt_pick_filters(&r, &d, rc.start, 2, rc.sf) : 0;
		rc.nrf = qt_int(&r, 3) == 0 ? qt_pick_filters(&r, &d, rc.ret, 2, rc.rf) : 0;
		rc.ngf = qt_int(&r, 6) == 0 ? qt_pick_filters(&r, &d, "", 1, rc.gf) : 0;
		rc.recurring = qt_int(&r, 2);
		rc.period = qt_int(&r, 3);
		rc.n = 1 + qt_int(&r, rc.period == 0 ? 15 : 6);
		rc.tz = zones[qt_int(&r, 5)];
		rc.from_day = BASE / QT_DAY + qt_int(&r, 40) - 5;
		rc.to_day = rc.from_day + qt_int(&r, rc.period == 0 ? 20 : 60);
		run_case(&rc, &d, &r);
		qt_data_free(&d);
	}
}

Test(query_retention, random_against_clickhouse_style_reference)
{
	random_retention(21, 1500);
}

Test(query_retention, parallel_matches_reference)
{
	for (unsigned t = 2; t <= 4; t++) {
		qt_threads = t;
		random_retention(30 + t, 500);
	}
}

Test(query_retention, first_time_uses_events_before_the_range)
{
	struct memsource *ms = memsource_new();
	memsource_add(ms, "A", BASE - 5 * QT_DAY, 0); /* person 0 started before the range */
	memsource_add(ms, "A", BASE, 0);
	memsource_add(ms, "A", BASE, 1);
	memsource_add(ms, "A", BASE + QT_DAY, 1);
	memsource_build(ms, 0, 0);
	cJSON *res = qt_query(memsource_source(ms),
			      "{\"kind\":\"retention\",\"start\":{\"event\":\"A\"},\"return\":{"
			      "\"event\":\"A\"},\"periods\":2,\"date_from\":\"2024-03-01\","
			      "\"date_to\":\"2024-03-01\"}");
	const cJSON *c = cJSON_GetArrayItem(qt_get(res, "cohorts"), 0);
	cr_assert_eq(qt_num(c, "size"), 1);
	cr_assert_eq(cJSON_GetArrayItem(qt_get(c, "values"), 0)->valuedouble, 1);
	cr_assert_eq(cJSON_GetArrayItem(qt_get(c, "values"), 1)->valuedouble, 1);
	cr_assert_eq(cJSON_GetArrayItem(qt_get(c, "percentages"), 1)->valuedouble, 100);
	cr_assert_str_eq(qt_get(c, "start")->valuestring, "2024-03-01T00:00:00");
	cJSON_Delete(res);
	res = qt_query(memsource_source(ms),
		       "{\"kind\":\"retention\",\"cohort\":\"recurring\",\"start\":{\"event\":"
		       "\"A\"},\"return\":{\"event\":\"A\"},\"periods\":2,\"date_from\":"
		       "\"2024-03-01\",\"date_to\":\"2024-03-01\"}");
	c = cJSON_GetArrayItem(qt_get(res, "cohorts"), 0);
	cr_assert_eq(qt_num(c, "size"), 2);
	cJSON_Delete(res);
	memsource_free(ms);
}

/* Over 400 daily cohorts of 400 periods and a person space of 3M ids, the
 * bitmaps would take gigabytes: the engine counts per person instead. Both
 * ways must give the same answer (the bitmap one is checked against the
 * reference above). */
static char *retention_text(uint32_t npersons, const struct qt_data *d, unsigned threads)
{
	struct memsource *ms = memsource_new();
	for (size_t i = 0; i < d->n; i++)
		memsource_add(ms, d->ev[i].name, d->ev[i].ts, d->ev[i].pid);
	memsource_set_persons(ms, npersons, NULL);
	memsource_build(ms, 7, 0);
	qt_threads = threads;
	cJSON *res = qt_query(memsource_source(ms),
			      "{\"kind\":\"retention\",\"start\":{\"event\":\"A\"},\"return\":{"
			      "\"event\":\"\"},\"period\":\"day\",\"periods\":400,\"date_from\":"
			      "\"2024-01-01\",\"date_to\":\"2025-02-03\"}");
	char *text = cJSON_PrintUnformatted(res);
	cJSON_Delete(res);
	memsource_free(ms);
	return text;
}

Test(query_retention, per_person_path_matches_bitmaps)
{
	struct qt_rng r = {77};
	struct qt_data d;
	qt_data_init(&d, 20);
	for (int i = 0; i < 400; i++)
		qt_add(&d, names[qt_int(&r, 2)],
		       1704067200000LL + (int64_t)qt_int(&r, 800) * QT_DAY / 2,
		       (uint32_t)qt_int(&r, 20));
	char *small = retention_text(20, &d, 0);
	char *big = retention_text(3000000, &d, 2);
	cr_assert_str_eq(small, big);
	free(small);
	free(big);
	qt_data_free(&d);
}
