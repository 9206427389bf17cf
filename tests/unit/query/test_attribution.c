/*
 * test_attribution.c - attribution on hand-built journeys with known
 * answers for every model (the worked example of docs/attribution.md among
 * them), session and lookback edges, ties, costs, and on random journeys a
 * brute-force reference plus the invariant that every model's credits add
 * up to the conversions and the revenue.
 */
#include "qtest.h"
#include "base/td.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASE 1709251200000LL /* 2024-03-01T00:00:00Z */
#define HOUR 3600000LL
#define MIN  60000LL

static const char *const models[] = {"first_touch", "last_touch",     "last_non_direct",
				     "linear",	    "position_based", "time_decay"};

#define PAID                                                                                       \
	"{\"enriched\":{\"campaign\":{\"source\":\"google\",\"medium\":\"cpc\",\"name\":"          \
	"\"spring\"},\"channel\":\"Paid Search\"}}"
#define SOCIAL                                                                                     \
	"{\"enriched\":{\"referrer\":{\"source\":\"Facebook\",\"medium\":\"social\"},\"channel\":" \
	"\"Organic Social\"}}"
#define EMAIL                                                                                      \
	"{\"enriched\":{\"campaign\":{\"source\":\"newsletter\",\"medium\":\"email\",\"name\":"    \
	"\"weekly\"},\"channel\":\"Email\"}}"
#define DIRECT "{\"enriched\":{\"channel\":\"Direct\"}}"
#define PLAIN  "{}"

static const char *const touch_json[] = {PAID, SOCIAL, EMAIL, DIRECT, PLAIN};

static void add(struct memsource *ms, const char *ev, int64_t ts, uint32_t pid, const char *json)
{
	cr_assert_eq(memsource_add_json(ms, ev, ts, pid, json), 0, "%s", json);
}

/* The journey of docs/attribution.md: four sessions, then an order of 120. */
static struct memsource *worked_example(void)
{
	struct memsource *ms = memsource_new();
	add(ms, "$page", BASE + 18 * HOUR, 0, PAID);		     /* 03-01 18:00 */
	add(ms, "$page", BASE + 18 * HOUR + 5 * MIN, 0, PLAIN);	     /* same session */
	add(ms, "$page", BASE + 7 * QT_DAY + 18 * HOUR, 0, SOCIAL);  /* 03-08 18:00 */
	add(ms, "$page", BASE + 14 * QT_DAY + 12 * HOUR, 0, EMAIL);  /* 03-15 12:00 */
	add(ms, "$page", BASE + 14 * QT_DAY + 18 * HOUR, 0, DIRECT); /* 03-15 18:00 */
	add(ms, "Order Completed", BASE + 14 * QT_DAY + 18 * HOUR + 5 * MIN, 0,
	    "{\"properties\":{\"revenue\":120},\"enriched\":{\"channel\":\"Direct\"}}");
	memsource_build(ms, 0, 0);
	return ms;
}

static const cJSON *group(const cJSON *res, const char *name)
{
	const cJSON *g;
	cJSON_ArrayForEach(g, qt_get(res, "groups"))
	{
		const cJSON *t = qt_get(g, "touchpoint");
		if (cJSON_IsString(t) && strcmp(t->valuestring, name) == 0)
			return g;
	}
	cr_assert_fail("no group %s", name);
	return NULL;
}

static double credit(const cJSON *res, const char *grp, const char *model, const char *what)
{
	return qt_num(qt_get(qt_get(group(res, grp), "models"), model), what);
}

static void expect(const cJSON *res, const char *grp, const char *model, double conv, double rev)
{
	double c = credit(res, grp, model, "conversions"), r = credit(res, grp, model, "revenue");
	cr_assert(qt_close(c, conv), "%s / %s: conversions %.17g, expected %.17g", grp, model, c,
		  conv);
	cr_assert(qt_close(r, rev), "%s / %s: revenue %.17g, expected %.17g", grp, model, r, rev);
}

#define Q(extra)                                                                                   \
	"{\"kind\":\"attribution\",\"conversion\":{\"event\":\"Order Completed\"},"                \
	"\"date_from\":\"2024-03-01\",\"date_to\":\"2024-03-31\"" extra "}"

Test(query_attribution, worked_example_every_model)
{
	struct memsource *ms = worked_example();
	cJSON *res = qt_query(memsource_source(ms), Q(""));
	cr_assert_eq(qt_num(res, "conversions"), 1);
	cr_assert_eq(qt_num(res, "revenue"), 120);
	cr_assert_eq(cJSON_GetArraySize(qt_get(res, "groups")), 4);
	/* first / last / last non-direct */
	expect(res, "Paid Search", "first_touch", 1, 120);
	expect(res, "Direct", "first_touch", 0, 0);
	expect(res, "Direct", "last_touch", 1, 120);
	expect(res, "Email", "last_non_direct", 1, 120);
	expect(res, "Direct", "last_non_direct", 0, 0);
	/* linear: a quarter each */
	expect(res, "Paid Search", "linear", 0.25, 30);
	expect(res, "Organic Social", "linear", 0.25, 30);
	expect(res, "Email", "linear", 0.25, 30);
	expect(res, "Direct", "linear", 0.25, 30);
	/* position-based: 40 / 10 / 10 / 40 */
	expect(res, "Paid Search", "position_based", 0.4, 48);
	expect(res, "Organic Social", "position_based", 0.1, 12);
	expect(res, "Email", "position_based", 0.1, 12);
	expect(res, "Direct", "position_based", 0.4, 48);
	/* time decay, half-life 7 days: sessions 14 d 5 min, 7 d 5 min, 6 h 5 min
	 * and 5 min before the order weigh 1/4, 1/2, 2^(-6/168) and 1 relative to
	 * the latest */
	double w[4] = {0.25, 0.5, exp2(-6.0 / 168.0), 1}, sum = w[0] + w[1] + w[2] + w[3];
	expect(res, "Paid Search", "time_decay", w[0] / sum, 120 * w[0] / sum);
	expect(res, "Organic Social", "time_decay", w[1] / sum, 120 * w[1] / sum);
	expect(res, "Email", "time_decay", w[2] / sum, 120 * w[2] / sum);
	expect(res, "Direct", "time_decay", w[3] / sum, 120 * w[3] / sum);
	/* the figures docs/attribution.md prints */
	cr_assert(fabs(credit(res, "Paid Search", "time_decay", "conversions") - 0.0917) < 5e-5);
	cr_assert(fabs(credit(res, "Email", "time_decay", "conversions") - 0.3579) < 5e-5);
	cr_assert(fabs(credit(res, "Direct", "time_decay", "conversions") - 0.3669) < 5e-5);
	cr_assert(fabs(credit(res, "Direct", "linear", "share_pct") - 25) < 1e-9);
	/* no costs known: null ROI */
	cr_assert(cJSON_IsNull(qt_get(res, "cost")));
	cr_assert(cJSON_IsNull(qt_get(group(res, "Paid Search"), "cost")));
	cJSON_Delete(res);
	memsource_free(ms);
}

Test(query_attribution, touchpoint_dimensions)
{
	struct memsource *ms = worked_example();
	cJSON *res = qt_query(memsource_source(ms), Q(",\"touchpoint\":\"campaign\""));
	expect(res, "spring", "first_touch", 1, 120);
	expect(res, "weekly", "last_non_direct", 1, 120);
	expect(res, "(no campaign)", "linear", 0.25, 30); /* the Facebook session */
	expect(res, "Direct", "last_touch", 1, 120);
	cJSON_Delete(res);
	res = qt_query(memsource_source(ms), Q(",\"touchpoint\":\"source\""));
	expect(res, "google", "first_touch", 1, 120);
	expect(res, "Facebook", "linear", 0.25, 30); /* the referrer's source */
	expect(res, "newsletter", "last_non_direct", 1, 120);
	cJSON_Delete(res);
	res = qt_query(memsource_source(ms), Q(",\"touchpoint\":\"medium\""));
	expect(res, "cpc", "position_based", 0.4, 48);
	expect(res, "social", "position_based", 0.1, 12);
	cJSON_Delete(res);
	res = qt_query(memsource_source(ms), Q(",\"touchpoint\":\"source_medium\""));
	expect(res, "google / cpc", "first_touch", 1, 120);
	expect(res, "Facebook / social", "linear", 0.25, 30);
	expect(res, "Direct", "last_touch", 1, 120);
	cJSON_Delete(res);
	memsource_free(ms);
}

Test(query_attribution, models_subset_and_order)
{
	struct memsource *ms = worked_example();
	cJSON *res = qt_query(memsource_source(ms),
			      Q(",\"models\":[\"linear\",\"first_touch\"],\"limit\":2"));
	const cJSON *m = qt_get(res, "models");
	cr_assert_eq(cJSON_GetArraySize(m), 2);
	cr_assert_str_eq(cJSON_GetArrayItem(m, 0)->valuestring, "linear");
	const cJSON *gs = qt_get(res, "groups");
	/* Paid Search: 1.25 over both models; then 0.25 each, ties by name:
	 * Direct; the rest in other */
	cr_assert_eq(cJSON_GetArraySize(gs), 3);
	cr_assert_str_eq(qt_get(cJSON_GetArrayItem(gs, 0), "touchpoint")->valuestring,
			 "Paid Search");
	cr_assert_str_eq(qt_get(cJSON_GetArrayItem(gs, 1), "touchpoint")->valuestring, "Direct");
	const cJSON *o = cJSON_GetArrayItem(gs, 2);
	cr_assert(cJSON_IsTrue(qt_get(o, "is_other")));
	cr_assert(qt_close(qt_num(qt_get(qt_get(o, "models"), "linear"), "conversions"), 0.5));
	cr_assert_null(
	    cJSON_GetObjectItem(qt_get(cJSON_GetArrayItem(gs, 0), "models"), "time_decay"));
	cJSON_Delete(res);
	memsource_free(ms);
}

/* One session per row at the given minutes, then a conversion at `conv`. */
Test(query_attribution, session_gap_and_campaign_change)
{
	struct memsource *ms = memsource_new();
	/* person 0: 30 min exactly stays in the session; 30 min + 1 ms does not */
	add(ms, "$page", BASE, 0, PAID);
	add(ms, "$page", BASE + 30 * MIN, 0, PLAIN);
	add(ms, "$page", BASE + 60 * MIN + 1, 0, PLAIN);
	add(ms, "Order Completed", BASE + 61 * MIN, 0, "{\"properties\":{\"revenue\":10}}");
	/* person 1: a new campaign starts a session at once; an event without
	 * one does not */
	add(ms, "$page", BASE, 1, PAID);
	add(ms, "$page", BASE + MIN, 1, PLAIN);
	add(ms, "$page", BASE + 2 * MIN, 1, EMAIL);
	add(ms, "$page", BASE + 3 * MIN, 1, EMAIL); /* same campaign: same session */
	add(ms, "Order Completed", BASE + 4 * MIN, 1, "{\"properties\":{\"revenue\":20}}");
	memsource_build(ms, 0, 0);
	cJSON *res = qt_query(memsource_source(ms), Q(",\"models\":[\"linear\"]"));
	expect(res, "Paid Search", "linear", 0.5 + 0.5, 5 + 10);
	expect(res, "Direct", "linear", 0.5, 5); /* a session without any field */
	expect(res, "Email", "linear", 0.5, 10);
	cJSON_Delete(res);
	res = qt_query(memsource_source(ms), Q(",\"models\":[\"linear\"],\"session_gap\":\"31m\""));
	expect(res, "Paid Search", "linear", 1.5, 20);
	cJSON_Delete(res);
	memsource_free(ms);
}

Test(query_attribution, lookback_edges)
{
	struct memsource *ms = memsource_new();
	int64_t conv = BASE + 10 * QT_DAY;
	/* person 0: a session exactly 2 days before counts */
	add(ms, "$page", conv - 2 * QT_DAY, 0, PAID);
	add(ms, "$page", conv - 10 * MIN, 0, EMAIL);
	add(ms, "Order Completed", conv, 0, "{\"properties\":{\"revenue\":10}}");
	/* person 1: 2 days and 1 ms before does not */
	add(ms, "$page", conv - 2 * QT_DAY - 1, 1, PAID);
	add(ms, "$page", conv - 10 * MIN, 1, EMAIL);
	add(ms, "Order Completed", conv, 1, "{\"properties\":{\"revenue\":10}}");
	/* person 2: one long session that began before the lookback: no
	 * touchpoint, credited to Direct */
	for (int64_t t = conv - 2 * QT_DAY - HOUR; t < conv; t += 20 * MIN)
		add(ms, "$page", t, 2, t == conv - 2 * QT_DAY - HOUR ? PAID : PLAIN);
	add(ms, "Order Completed", conv, 2, "{\"properties\":{\"revenue\":7}}");
	memsource_build(ms, 0, 0);
	cJSON *res = qt_query(memsource_source(ms), Q(",\"lookback\":\"2d\""));
	expect(res, "Paid Search", "first_touch", 1, 10);
	expect(res, "Email", "first_touch", 1, 10);
	expect(res, "Direct", "first_touch", 1, 7);
	expect(res, "Direct", "time_decay", 1, 7);
	expect(res, "Direct", "last_non_direct", 1, 7);
	cJSON_Delete(res);
	memsource_free(ms);
}

Test(query_attribution, half_life)
{
	struct memsource *ms = memsource_new();
	int64_t conv = BASE + 10 * QT_DAY;
	add(ms, "$page", conv - 70 * MIN, 0, PAID);
	add(ms, "$page", conv - 10 * MIN, 0, EMAIL); /* the order is in this session */
	add(ms, "Order Completed", conv, 0, "{\"properties\":{\"revenue\":30}}");
	memsource_build(ms, 0, 0);
	cJSON *res = qt_query(memsource_source(ms), Q(",\"half_life\":\"1h\""));
	expect(res, "Paid Search", "time_decay", 1.0 / 3, 10);
	expect(res, "Email", "time_decay", 2.0 / 3, 20);
	cJSON_Delete(res);
	/* a half-life far below the gaps: the weights do not all vanish */
	res = qt_query(memsource_source(ms), Q(",\"half_life\":1"));
	expect(res, "Email", "time_decay", 1, 30);
	expect(res, "Paid Search", "time_decay", 0, 0);
	cJSON_Delete(res);
	memsource_free(ms);
}

Test(query_attribution, ties_do_not_depend_on_storage)
{
	/* a campaign row and a conversion at the same millisecond: the session
	 * starts first; two campaign rows at one ms: ordered by their fields */
	char *first = NULL;
	for (uint64_t seed = 0; seed < 20; seed++) {
		struct memsource *ms = memsource_new();
		add(ms, "Order Completed", BASE + HOUR, 0, "{\"properties\":{\"revenue\":5}}");
		add(ms, "$page", BASE + HOUR, 0, PAID);
		add(ms, "$page", BASE, 1, EMAIL);
		add(ms, "$page", BASE, 1, PAID);
		add(ms, "Order Completed", BASE + MIN, 1, "{\"properties\":{\"revenue\":8}}");
		memsource_build(ms, seed ? 1 : 0, seed);
		cJSON *res = qt_query(memsource_source(ms), Q(""));
		char *s = cJSON_PrintUnformatted(res);
		if (!first) {
			first = s;
			expect(res, "Paid Search", "first_touch", 2, 13);
			expect(res, "Email", "last_touch", 1, 8);
		} else {
			cr_assert_str_eq(s, first);
			free(s);
		}
		cJSON_Delete(res);
		memsource_free(ms);
	}
	free(first);
}

Test(query_attribution, merged_persons_and_filters)
{
	struct memsource *ms = memsource_new();
	add(ms, "$page", BASE, 0, PAID); /* pid 0 is merged into pid 1 */
	add(ms, "Order Completed", BASE + 10 * MIN, 1,
	    "{\"properties\":{\"revenue\":10,\"plan\":\"pro\"}}");
	add(ms, "$page", BASE, 2, EMAIL);
	add(ms, "Order Completed", BASE + 10 * MIN, 2,
	    "{\"properties\":{\"revenue\":4,\"plan\":\"free\"}}");
	uint32_t canon[3] = {1, 1, 2};
	memsource_set_persons(ms, 3, canon);
	memsource_build(ms, 0, 0);
	cJSON *res =
	    qt_query(memsource_source(ms),
		     "{\"kind\":\"attribution\",\"conversion\":{\"event\":\"Order Completed\","
		     "\"filters\":[{\"property\":\"properties.plan\",\"operator\":\"=\",\"value\":"
		     "\"pro\"}]},"
		     "\"date_from\":\"2024-03-01\",\"date_to\":\"2024-03-31\"}");
	cr_assert_eq(qt_num(res, "conversions"), 1);
	expect(res, "Paid Search", "first_touch", 1, 10);
	cr_assert_eq(cJSON_GetArraySize(qt_get(res, "groups")), 1);
	cJSON_Delete(res);
	memsource_free(ms);
}

Test(query_attribution, no_conversion_in_the_range)
{
	struct memsource *ms = worked_example();
	cJSON *res =
	    qt_query(memsource_source(ms),
		     "{\"kind\":\"attribution\",\"conversion\":{\"event\":\"Order "
		     "Completed\"},\"date_from\":\"2024-05-01\",\"date_to\":\"2024-05-31\"}");
	cr_assert_eq(qt_num(res, "conversions"), 0);
	cr_assert_eq(qt_num(res, "revenue"), 0);
	cr_assert_eq(cJSON_GetArraySize(qt_get(res, "groups")), 0);
	cJSON_Delete(res);
	memsource_free(ms);
}

Test(query_attribution, same_result_on_any_number_of_threads)
{
	/* enough persons for several person buckets and walk blocks */
	struct qt_rng r = {77};
	struct memsource *ms = memsource_new();
	for (uint32_t p = 0; p < 40000; p++) {
		int64_t t = BASE + qt_int(&r, 20) * QT_DAY + qt_int(&r, 1000) * MIN;
		int n = 1 + qt_int(&r, 4);
		for (int k = 0; k < n; k++) {
			add(ms, "$page", t, p, touch_json[qt_int(&r, 5)]);
			t += (1 + qt_int(&r, 3 * 24 * 60)) * MIN;
		}
		if (qt_int(&r, 3) == 0) {
			char j[64];
			snprintf(j, sizeof(j), "{\"properties\":{\"revenue\":%d}}", qt_int(&r, 90));
			add(ms, "Order Completed", t, p, j);
		}
	}
	memsource_build(ms, 5000, 9);
	char *first = NULL;
	for (unsigned th = 1; th <= 4; th++) {
		qt_threads = th;
		cJSON *res = qt_query(memsource_source(ms), Q(""));
		char *s = cJSON_PrintUnformatted(res);
		if (!first) {
			first = s;
			cr_assert_gt(qt_num(res, "conversions"), 10000);
		} else {
			cr_assert_str_eq(s, first, "threads %u", th);
			free(s);
		}
		cJSON_Delete(res);
	}
	qt_threads = 0;
	free(first);
	memsource_free(ms);
}

/* ---- costs ---------------------------------------------------------- */

struct cost_src {
	struct query_cost *rows;
	size_t n;
	char first[11], last[11];
	int calls;
};

static int load_costs(void *ctx, const char *first, const char *last, struct query_cost **out,
		      size_t *n, char *err, size_t errcap)
{
	struct cost_src *c = ctx;
	snprintf(c->first, sizeof(c->first), "%s", first);
	snprintf(c->last, sizeof(c->last), "%s", last);
	c->calls++;
	size_t k = 0;
	struct query_cost *rows = calloc(c->n + 1, sizeof(*rows));
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->rows[i].date, first) >= 0 && strcmp(c->rows[i].date, last) <= 0)
			rows[k++] = c->rows[i];
	*out = rows;
	*n = k;
	(void)err;
	(void)errcap;
	return 0;
}

static void release_costs(void *ctx, struct query_cost *rows, size_t n)
{
	(void)ctx;
	(void)n;
	free(rows);
}

Test(query_attribution, costs_roi_roas)
{
	struct memsource *ms = worked_example();
	struct query_cost rows[] = {
	    {"2024-03-01", "google", "cpc", "spring", "EUR", 40},
	    {"2024-03-02", "google", "cpc", "spring", "EUR", 20},
	    {"2024-03-05", "bing", "cpc", "spring", "EUR", 15},	    /* no session: (not set) */
	    {"2024-04-01", "google", "cpc", "spring", "EUR", 1000}, /* outside the range */
	};
	struct cost_src cs = {.rows = rows, .n = 4};
	struct query_costs qc = {.ctx = &cs, .load = load_costs, .release = release_costs};
	struct query_source src = *memsource_source(ms);
	src.costs = &qc;
	cJSON *res = qt_query(&src, Q(""));
	cr_assert_eq(cs.calls, 1);
	cr_assert_str_eq(cs.first, "2024-03-01");
	cr_assert_str_eq(cs.last, "2024-03-31");
	cr_assert_eq(qt_num(res, "cost"), 75);
	cr_assert_str_eq(qt_get(res, "currency")->valuestring, "EUR");
	cr_assert(qt_close(qt_num(res, "roas"), 120.0 / 75));
	cr_assert_eq(qt_num(group(res, "Paid Search"), "cost"), 60);
	cr_assert(qt_close(credit(res, "Paid Search", "first_touch", "roi"), 1));
	cr_assert(qt_close(credit(res, "Paid Search", "first_touch", "roas"), 2));
	cr_assert(qt_close(credit(res, "Paid Search", "linear", "roi"), -0.5));
	cr_assert(
	    cJSON_IsNull(qt_get(qt_get(qt_get(group(res, "Email"), "models"), "linear"), "roi")));
	/* spend without a matching session is not lost */
	cr_assert_eq(qt_num(group(res, "(not set)"), "cost"), 15);
	expect(res, "(not set)", "linear", 0, 0);
	cJSON_Delete(res);
	/* by campaign: both sources of "spring" */
	res = qt_query(&src, Q(",\"touchpoint\":\"campaign\""));
	cr_assert_eq(qt_num(group(res, "spring"), "cost"), 75);
	cr_assert(qt_close(credit(res, "spring", "first_touch", "roas"), 120.0 / 75));
	cJSON_Delete(res);
	/* many rows of sources the data never saw, each pair more than once:
	 * all of it is (not set), by channel */
	struct query_cost more[24];
	static const char *const srcs[] = {"bing", "yandex", "baidu", "naver", "ecosia", "seznam"};
	for (size_t i = 0; i < 24; i++) {
		more[i] = (struct query_cost){.source = srcs[i % 6],
					      .medium = i % 4 < 2 ? "cpc" : "display",
					      .campaign = "spring",
					      .currency = "EUR",
					      .cost = 1};
		snprintf(more[i].date, sizeof(more[i].date), "2024-03-0%d", i % 2 ? 3 : 4);
	}
	struct cost_src cs2 = {.rows = more, .n = 24};
	struct query_costs qc2 = {.ctx = &cs2, .load = load_costs, .release = release_costs};
	src.costs = &qc2;
	res = qt_query(&src, Q(""));
	cr_assert_eq(qt_num(res, "cost"), 24);
	cr_assert_eq(qt_num(group(res, "(not set)"), "cost"), 24);
	cJSON_Delete(res);
	src.costs = &qc;
	/* a range whose costs mix currencies is refused */
	rows[1].currency = "USD";
	char err[512];
	cr_assert_eq(qt_query_fail(&src, Q(""), err, sizeof(err)), TD_EINVAL);
	cr_assert(strstr(err, "more than one currency") && strstr(err, "EUR") && strstr(err, "USD"),
		  "%s", err);
	memsource_free(ms);
}

/* ---- costs in trends --------------------------------------------------- */

#define ORDER(c, s, m, ch, rev)                                                                    \
	"{\"properties\":{\"revenue\":" #rev "},\"enriched\":{\"campaign\":{\"name\":\"" c         \
	"\",\"source\":\"" s "\",\"medium\":\"" m "\"},\"channel\":\"" ch "\"}}"

static const cJSON *line(const cJSON *res, const char *value)
{
	const cJSON *l;
	cJSON_ArrayForEach(l, qt_get(res, "series"))
	{
		const cJSON *v = qt_get(l, "breakdown_value");
		if (value ? cJSON_IsString(v) && !strcmp(v->valuestring, value)
			  : cJSON_IsTrue(qt_get(l, "is_other")))
			return l;
	}
	cr_assert_fail("no line %s", value ? value : "other");
	return NULL;
}

Test(query_costs, trends_breakdown_by_campaign_and_channel)
{
	struct memsource *ms = memsource_new();
	add(ms, "Order Completed", BASE + HOUR, 0,
	    ORDER("spring", "google", "cpc", "Paid Search", 100));
	add(ms, "Order Completed", BASE + 2 * HOUR, 1,
	    ORDER("spring", "google", "cpc", "Paid Search", 50));
	add(ms, "Order Completed", BASE + 3 * HOUR, 2,
	    ORDER("weekly", "newsletter", "email", "Email", 30));
	add(ms, "Order Completed", BASE + 4 * HOUR, 3,
	    ORDER("fall", "bing", "cpc", "Paid Search", 10));
	memsource_build(ms, 0, 0);
	struct query_cost rows[] = {
	    {"2024-03-01", "google", "cpc", "spring", "EUR", 50},
	    {"2024-03-02", "google", "cpc", "spring", "EUR", 25},
	    {"2024-03-01", "newsletter", "email", "weekly", "EUR", 0},
	    {"2024-03-03", "bing", "cpc", "fall", "EUR", 40},
	    {"2024-03-03", "meta", "paid_social", "launch", "EUR", 60}, /* no event */
	    {"2024-02-29", "google", "cpc", "spring", "EUR", 30},	/* before the range */
	};
	struct cost_src cs = {.rows = rows, .n = 6};
	struct query_costs qc = {.ctx = &cs, .load = load_costs, .release = release_costs};
	struct query_source src = *memsource_source(ms);
	src.costs = &qc;
	cJSON *res = qt_query(
	    &src,
	    "{\"kind\":\"trends\",\"series\":[{\"event\":\"Order Completed\",\"math\":\"sum\","
	    "\"property\":\"properties.revenue\"}],\"breakdown\":\"enriched.campaign.name\","
	    "\"breakdown_limit\":2,\"costs\":true,\"date_from\":\"2024-03-01\","
	    "\"date_to\":\"2024-03-31\",\"interval\":\"month\"}");
	const cJSON *l = line(res, "spring");
	cr_assert_eq(qt_num(l, "total"), 150);
	cr_assert_eq(qt_num(l, "cost"), 75);
	cr_assert(qt_close(qt_num(l, "roi"), 1));
	cr_assert(qt_close(qt_num(l, "roas"), 2));
	l = line(res, "fall"); /* ranked before weekly: one row each, then by value */
	cr_assert_eq(qt_num(l, "cost"), 40);
	cr_assert(qt_close(qt_num(l, "roi"), -0.75));
	/* other: weekly (30 of revenue, a cost of 0) plus launch's spend without events */
	l = line(res, NULL);
	cr_assert_eq(qt_num(l, "total"), 30);
	cr_assert_eq(qt_num(l, "cost"), 60);
	cr_assert(qt_close(qt_num(l, "roi"), -0.5));
	const cJSON *c = qt_get(res, "costs");
	cr_assert_eq(qt_num(c, "total"), 175);
	cr_assert_str_eq(qt_get(c, "currency")->valuestring, "EUR");
	const cJSON *v0 = cJSON_GetArrayItem(qt_get(c, "values"), 0);
	cr_assert_str_eq(qt_get(v0, "breakdown_value")->valuestring, "spring");
	cr_assert_eq(qt_num(v0, "cost"), 75);
	cJSON_Delete(res);

	/* by channel: google/cpc and bing/cpc are Paid Search in the events */
	res = qt_query(
	    &src,
	    "{\"kind\":\"trends\",\"series\":[{\"event\":\"Order Completed\",\"math\":\"sum\","
	    "\"property\":\"properties.revenue\"}],\"breakdown\":\"enriched.channel\","
	    "\"costs\":true,\"date_from\":\"2024-03-01\",\"date_to\":\"2024-03-31\"}");
	l = line(res, "Paid Search");
	cr_assert_eq(qt_num(l, "total"), 160);
	cr_assert_eq(qt_num(l, "cost"), 115);
	cr_assert(qt_close(qt_num(l, "roas"), 160.0 / 115));
	l = line(res, "Email"); /* a cost of 0: no ROI */
	cr_assert_eq(qt_num(l, "cost"), 0);
	cr_assert(cJSON_IsNull(qt_get(l, "roi")));
	cJSON_Delete(res);

	/* compare: the previous period's lines get that period's costs */
	res = qt_query(&src,
		       "{\"kind\":\"trends\",\"series\":[{\"event\":\"Order "
		       "Completed\",\"math\":\"sum\",\"property\":\"properties.revenue\"}],"
		       "\"breakdown\":\"enriched.campaign.name\",\"costs\":true,\"compare\":true,"
		       "\"date_from\":\"2024-03-01\",\"date_to\":\"2024-03-01\"}");
	const cJSON *cur = NULL, *prev = NULL;
	cJSON_ArrayForEach(l, qt_get(res, "series"))
	{
		const cJSON *v = qt_get(l, "breakdown_value");
		if (cJSON_IsString(v) && !strcmp(v->valuestring, "spring"))
			*(strcmp(qt_get(l, "period")->valuestring, "previous") ? &cur : &prev) = l;
	}
	cr_assert(cur && prev);
	cr_assert_eq(qt_num(cur, "cost"), 50);
	cr_assert(qt_close(qt_num(cur, "roas"), 3));
	cr_assert_eq(qt_num(prev, "total"), 0);
	cr_assert_eq(qt_num(prev, "cost"), 30);
	cr_assert(qt_close(qt_num(prev, "roi"), -1));
	cr_assert_eq(qt_num(qt_get(res, "costs"), "total"), 50);
	cr_assert_eq(qt_num(qt_get(res, "previous_costs"), "total"), 30);
	cJSON_Delete(res);

	char err[512];
	cr_assert_eq(
	    qt_query_fail(&src,
			  "{\"kind\":\"trends\",\"series\":[{\"event\":\"Order Completed\"}],"
			  "\"costs\":true,\"date_from\":\"2024-03-01\",\"date_to\":\"2024-03-31\"}",
			  err, sizeof(err)),
	    TD_EINVAL);
	cr_assert(strstr(err, "costs: needs a breakdown by enriched.campaign.name"), "%s", err);
	cr_assert_eq(
	    qt_query_fail(&src,
			  "{\"kind\":\"trends\",\"series\":[{\"event\":\"Order Completed\"}],"
			  "\"breakdown\":\"properties.revenue\",\"costs\":true,"
			  "\"date_from\":\"2024-03-01\",\"date_to\":\"2024-03-31\"}",
			  err, sizeof(err)),
	    TD_EINVAL);
	cr_assert(strstr(err, "costs: needs a breakdown"), "%s", err);
	/* without a cost source: null costs, no error */
	res = qt_query(memsource_source(ms),
		       "{\"kind\":\"trends\",\"series\":[{\"event\":\"Order Completed\"}],"
		       "\"breakdown\":\"enriched.campaign.source\",\"costs\":true,"
		       "\"date_from\":\"2024-03-01\",\"date_to\":\"2024-03-31\"}");
	cr_assert(cJSON_IsNull(qt_get(line(res, "google"), "cost")));
	cr_assert(cJSON_IsNull(qt_get(qt_get(res, "costs"), "total")));
	cJSON_Delete(res);
	memsource_free(ms);
}

/* ---- errors --------------------------------------------------------- */

Test(query_attribution, errors)
{
	struct memsource *ms = worked_example();
	const struct query_source *src = memsource_source(ms);
	struct {
		const char *json, *msg;
	} cases[] = {
	    {"{\"kind\":\"attribution\",\"date_from\":\"2024-03-01\",\"date_to\":\"2024-03-02\"}",
	     "conversion: required"},
	    {"{\"kind\":\"attribution\",\"conversion\":{\"event\":\"Order Completed\"}}",
	     "date_from: required"},
	    {Q(",\"touchpoint\":\"keyword\""), "touchpoint"},
	    {Q(",\"models\":[\"u_shaped\"]"), "models[0]: unknown model"},
	    {Q(",\"models\":[\"linear\",\"linear\"]"), "listed twice"},
	    {Q(",\"models\":[]"), "models: must be a non-empty array"},
	    {Q(",\"lookback\":\"0d\""), "lookback: must be positive"},
	    {Q(",\"value\":\"properties.price\""), "value: unknown property"},
	    {Q(",\"limit\":0"), "limit"},
	    {Q(",\"half_life\":\"1d\",\"models\":[\"linear\"]"), "half_life: only used"},
	    {"{\"kind\":\"attribution\",\"conversion\":{\"event\":\"Sale\"},"
	     "\"date_from\":\"2024-03-01\",\"date_to\":\"2024-03-02\"}",
	     "conversion.event: unknown event"},
	    {Q(",\"window\":\"7d\""), "window: unknown field"},
	    {Q(",\"lookback\":\"300000d\""), "span more than 500 years"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[512];
		cr_assert_eq(qt_query_fail(src, cases[i].json, err, sizeof(err)), TD_EINVAL, "%s",
			     cases[i].json);
		cr_assert(strstr(err, cases[i].msg), "%s: got \"%s\"", cases[i].json, err);
	}
	memsource_free(ms);
}

/* ---- random journeys ------------------------------------------------- */

static const char *const touch_channel[] = {"Paid Search", "Organic Social", "Email", "Direct"};
/* the group of each touch: a row without fields is Direct too */
static const int touch_group[] = {0, 1, 2, 3, 3};
/* campaign ids for session splitting (-1: none) */
static const int touch_campaign[] = {0, -1, 1, -1, -1};

struct rrow {
	int64_t ts;
	uint32_t person;
	int touch;
	bool conv;
	double value;
};

static int cmp_rrow(const void *a, const void *b)
{
	const struct rrow *x = a, *y = b;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	if (x->conv != y->conv)
		return x->conv ? 1 : -1;
	return 0;
}

/* The reference: per person, rows in time order (other events first at one
 * ms; the random rows never tie otherwise), sessions, credits per model. */
static void reference(struct rrow *rows, size_t n, uint32_t np, const uint32_t *canon,
		      int64_t lookback, int64_t half_life, double out[6][6], double rev[6][6])
{
	memset(out, 0, sizeof(double) * 36);
	memset(rev, 0, sizeof(double) * 36);
	qsort(rows, n, sizeof(*rows), cmp_rrow);
	for (uint32_t p = 0; p < np; p++) {
		int64_t st[512];
		int tp[512], ns = 0, camp = -2;
		int64_t last = 0;
		for (size_t i = 0; i < n; i++) {
			if (canon[rows[i].person] != p)
				continue;
			const struct rrow *r = &rows[i];
			int c = touch_campaign[r->touch];
			if (ns == 0 || r->ts - last > 30 * MIN || (c >= 0 && c != camp)) {
				st[ns] = r->ts;
				tp[ns++] = r->touch;
				camp = c;
			}
			last = r->ts;
			if (!r->conv)
				continue;
			int f = 0;
			while (f < ns && st[f] < r->ts - lookback)
				f++;
			int k = ns - f;
			double v = r->value;
			if (k == 0) {
				for (int m = 0; m < 6; m++) {
					out[m][3] += 1;
					rev[m][3] += v;
				}
				continue;
			}
#define GIVE(m, t, s)                                                                              \
	do {                                                                                       \
		out[m][t] += (s);                                                                  \
		rev[m][t] += (s)*v;                                                                \
	} while (0)
			for (int i2 = f; i2 < ns; i2++)
				tp[i2] = touch_group[tp[i2]];
			GIVE(0, tp[f], 1);
			GIVE(1, tp[ns - 1], 1);
			int lnd = ns - 1;
			while (lnd >= f && tp[lnd] == 3)
				lnd--;
			GIVE(2, lnd >= f ? tp[lnd] : tp[ns - 1], 1);
			for (int i2 = f; i2 < ns; i2++)
				GIVE(3, tp[i2], 1.0 / k);
			for (int i2 = f; i2 < ns; i2++) {
				double s = k == 1		       ? 1
					   : k == 2		       ? 0.5
					   : (i2 == f || i2 == ns - 1) ? 0.4
								       : 0.2 / (k - 2);
				GIVE(4, tp[i2], s);
			}
			double sum = 0;
			for (int i2 = f; i2 < ns; i2++)
				sum += pow(0.5, (double)(r->ts - st[i2]) / (double)half_life);
			for (int i2 = f; i2 < ns; i2++)
				GIVE(5, tp[i2],
				     pow(0.5, (double)(r->ts - st[i2]) / (double)half_life) / sum);
#undef GIVE
		}
	}
}

Test(query_attribution, random_against_reference_and_sums)
{
	struct qt_rng r = {2024};
	for (int it = 0; it < 300; it++) {
		uint32_t np = 1 + (uint32_t)qt_int(&r, 6);
		uint32_t canon[8];
		for (uint32_t p = 0; p < np; p++)
			canon[p] = p && qt_int(&r, 4) == 0 ? canon[qt_int(&r, (int)p)] : p;
		struct memsource *ms = memsource_new();
		struct rrow rows[200];
		size_t n = (size_t)(1 + qt_int(&r, 120));
		int64_t lookback = (1 + qt_int(&r, 4)) * HOUR,
			half_life = (1 + qt_int(&r, 90)) * MIN;
		int64_t t = BASE;
		for (size_t i = 0; i < n; i++) {
			struct rrow *x = &rows[i];
			/* distinct times (ties are tested above), gaps around 30 min */
			t += 1 + qt_int(&r, 50 * MIN);
			x->ts = t;
			x->person = (uint32_t)qt_int(&r, (int)np);
			x->touch = qt_int(&r, 5);
			x->conv = qt_int(&r, 5) == 0 || i + 1 == n;
			x->value = qt_int(&r, 100);
			if (x->conv) {
				char j[128];
				snprintf(j, sizeof(j), "{\"properties\":{\"revenue\":%g}}",
					 x->value);
				add(ms, "Order Completed", x->ts, x->person, j);
				x->touch = 4; /* conversions carry no fields */
			} else {
				add(ms, "$page", x->ts, x->person, touch_json[x->touch]);
			}
		}
		memsource_set_persons(ms, np, canon);
		memsource_build(ms, 1 + (size_t)qt_int(&r, 8), 1 + (uint64_t)it);
		double want[6][6], wrev[6][6];
		reference(rows, n, np, canon, lookback, half_life, want, wrev);
		char json[512];
		snprintf(
		    json, sizeof(json),
		    "{\"kind\":\"attribution\",\"conversion\":{\"event\":\"Order Completed\"},"
		    "\"date_from\":\"2024-03-01\",\"date_to\":\"2024-03-31\",\"lookback\":%lld,"
		    "\"half_life\":%lld,\"limit\":1000}",
		    (long long)lookback, (long long)half_life);
		qt_threads = 1 + (unsigned)qt_int(&r, 4);
		cJSON *res = qt_query(memsource_source(ms), json);
		qt_threads = 0;
		double nconv = qt_num(res, "conversions"), total = qt_num(res, "revenue");
		for (int m = 0; m < 6; m++) {
			double sc = 0, sr = 0;
			const cJSON *g;
			cJSON_ArrayForEach(g, qt_get(res, "groups"))
			{
				const cJSON *mm = qt_get(qt_get(g, "models"), models[m]);
				sc += qt_num(mm, "conversions");
				sr += qt_num(mm, "revenue");
			}
			cr_assert(fabs(sc - nconv) < 1e-9, "%s: credits %.17g, conversions %g",
				  models[m], sc, nconv);
			cr_assert(fabs(sr - total) < 1e-6, "%s: revenue %.17g of %g", models[m], sr,
				  total);
			for (int g4 = 0; g4 < 4; g4++) {
				double got = 0, grev = 0;
				const cJSON *gg;
				cJSON_ArrayForEach(gg, qt_get(res, "groups"))
				{
					if (strcmp(qt_get(gg, "touchpoint")->valuestring,
						   touch_channel[g4]) == 0) {
						const cJSON *mm =
						    qt_get(qt_get(gg, "models"), models[m]);
						got = qt_num(mm, "conversions");
						grev = qt_num(mm, "revenue");
					}
				}
				cr_assert(fabs(got - want[m][g4]) < 1e-9,
					  "it %d %s %s: %.17g, reference %.17g", it, models[m],
					  touch_channel[g4], got, want[m][g4]);
				cr_assert(fabs(grev - wrev[m][g4]) < 1e-6);
			}
		}
		cJSON_Delete(res);
		memsource_free(ms);
	}
}
