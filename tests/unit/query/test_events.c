/*
 * test_events.c - raw listings against brute force (sort everything, take
 * the page), and the filter operators' typed semantics through them.
 */
#include "qtest.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASE 1709251200000LL

static const char *const names[] = {"A", "B", "C"};

struct row {
	int64_t ts;
	const char *name;
	uint32_t pid;
};

static int cmp_row(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if (x->ts != y->ts)
		return x->ts > y->ts ? -1 : 1;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

Test(query_events, random_pages_against_reference)
{
	struct qt_rng r = {41};
	for (int it = 0; it < 2000; it++) {
		struct qt_data d;
		qt_data_init(&d, 2 + (uint32_t)qt_int(&r, 6));
		qt_random_canon(&d, &r);
		int nev = 1 + qt_int(&r, 60);
		for (int i = 0; i < nev; i++) {
			struct qt_ev *e = qt_add(&d, names[qt_int(&r, 3)], BASE + qt_int(&r, 20),
						 (uint32_t)qt_int(&r, (int)d.npersons));
			qt_random_props(e, &r);
		}
		const char *event = qt_int(&r, 3) ? "" : names[qt_int(&r, 3)];
		if (*event && !qt_name_exists(&d, event))
			event = "";
		struct qt_filter f[3];
		int nf = qt_pick_filters(&r, &d, "", 3, f);
		int limit = 1 + qt_int(&r, 10), offset = qt_int(&r, 12);
		bool range = qt_int(&r, 3) == 0;
		int64_t from = BASE + qt_int(&r, 20), to = from + qt_int(&r, 10);
		char json[4096] = "";
		qt_cat(json, sizeof(json), "{\"kind\":\"events\",\"limit\":%d,\"offset\":%d", limit,
		       offset);
		if (*event || qt_int(&r, 2))
			qt_cat(json, sizeof(json), ",\"event\":\"%s\"", event);
		if (range) {
			char a[40], b[40];
			qt_iso(from, a, sizeof(a));
			qt_iso(to, b, sizeof(b));
			qt_cat(json, sizeof(json), ",\"date_from\":\"%s\",\"date_to\":\"%s\"", a,
			       b);
		}
		qt_cat(json, sizeof(json), ",\"filters\":");
		qt_filters_json(f, nf, json, sizeof(json));
		qt_cat(json, sizeof(json), "}");

		struct row rows[128];
		int n = 0;
		for (size_t i = 0; i < d.n; i++) {
			const struct qt_ev *e = &d.ev[i];
			if (*event && strcmp(e->name, event) != 0)
				continue;
			if (range && (e->ts < from || e->ts > to))
				continue;
			if (!qt_filters_match(f, nf, e))
				continue;
			rows[n++] = (struct row){e->ts, e->name, d.canon[e->pid]};
		}
		qsort(rows, (size_t)n, sizeof(rows[0]), cmp_row);

		struct memsource *ms = qt_memsource(&d, &r);
		cJSON *res = qt_query(memsource_source(ms), json);
		const cJSON *list = qt_get(res, "events");
		int want = n - offset < 0 ? 0 : n - offset < limit ? n - offset : limit;
		cr_assert_eq(cJSON_GetArraySize(list), want, "page size\n%s", json);
		cr_assert_eq(cJSON_IsTrue(qt_get(res, "has_more")), n > offset + limit, "%s", json);
		for (int i = 0; i < want; i++) {
			const cJSON *e = cJSON_GetArrayItem(list, i);
			const struct row *w = &rows[offset + i];
			cr_assert_eq((int64_t)qt_num(e, "ts_ms"), w->ts, "row %d ts\n%s", i, json);
			cr_assert_str_eq(qt_get(e, "event")->valuestring, w->name, "row %d\n%s", i,
					 json);
			cr_assert_eq((uint32_t)qt_num(e, "pid"), w->pid, "row %d pid\n%s", i, json);
			char iso[40];
			qt_iso(w->ts, iso, sizeof(iso));
			cr_assert_str_eq(qt_get(e, "ts")->valuestring, iso);
		}
		cJSON_Delete(res);
		memsource_free(ms);
		qt_data_free(&d);
	}
}

static int count_of(const struct query_source *src, const char *filter)
{
	char q[512];
	snprintf(q, sizeof(q), "{\"kind\":\"events\",\"limit\":1000,\"filters\":[%s]}", filter);
	cJSON *res = qt_query(src, q);
	int n = cJSON_GetArraySize(qt_get(res, "events"));
	cJSON_Delete(res);
	return n;
}

Test(query_events, typed_operators)
{
	struct memsource *ms = memsource_new();
	memsource_add_json(ms, "A", BASE, 0, "{\"properties\":{\"plan\":\"pro\",\"n\":10}}");
	memsource_add_json(ms, "A", BASE, 1, "{\"properties\":{\"plan\":\"free\",\"n\":9}}");
	memsource_add_json(ms, "A", BASE, 2, "{\"properties\":{\"ok\":true}}");
	memsource_build(ms, 0, 0);
	const struct query_source *s = memsource_source(ms);
	/* numbers compare as numbers: 10 > 9 (as strings "10" < "9") */
	cr_assert_eq(count_of(s, "{\"property\":\"properties.n\",\"operator\":\">\",\"value\":9}"),
		     1);
	cr_assert_eq(count_of(s, "{\"property\":\"properties.n\",\"operator\":\">=\",\"value\":9}"),
		     2);
	/* strings compare in byte order */
	cr_assert_eq(count_of(s, "{\"property\":\"properties.plan\",\"operator\":\">\",\"value\":"
				 "\"g\"}"),
		     1);
	/* negative operators match rows without the property */
	cr_assert_eq(count_of(s, "{\"property\":\"properties.plan\",\"operator\":\"!=\",\"value\":"
				 "\"pro\"}"),
		     2);
	cr_assert_eq(count_of(s, "{\"property\":\"properties.plan\",\"operator\":\"not_in\","
				 "\"value\":[\"pro\",\"free\"]}"),
		     1);
	cr_assert_eq(count_of(s, "{\"property\":\"properties.plan\",\"operator\":\"is_not_set\"}"),
		     1);
	cr_assert_eq(count_of(s, "{\"property\":\"properties.plan\",\"operator\":\"contains\","
				 "\"value\":\"r\"}"),
		     2);
	cr_assert_eq(
	    count_of(s, "{\"property\":\"properties.ok\",\"operator\":\"=\",\"value\":true}"), 1);
	cr_assert_eq(count_of(s, "{\"property\":\"properties.n\",\"operator\":\"in\",\"value\":[10,"
				 "11]}"),
		     1);
	memsource_free(ms);
}

Test(query_events, timezone_in_timestamps)
{
	struct memsource *ms = memsource_new();
	memsource_add(ms, "A", 1711846800000LL, 0); /* 2024-03-31T01:00:00Z */
	memsource_build(ms, 0, 0);
	cJSON *res =
	    qt_query(memsource_source(ms), "{\"kind\":\"events\",\"timezone\":\"Europe/Paris\"}");
	const cJSON *e = cJSON_GetArrayItem(qt_get(res, "events"), 0);
	cr_assert_str_eq(qt_get(e, "ts")->valuestring, "2024-03-31T03:00:00.000+02:00");
	cJSON_Delete(res);
	memsource_free(ms);
}

Test(query_events, properties_show_each_rows_values)
{
	struct memsource *ms = memsource_new();
	memsource_add_json(ms, "A", BASE + 2, 0,
			   "{\"userId\":\"u0\",\"properties\":{\"plan\":\"pro\",\"n\":10}}");
	memsource_add_json(ms, "A", BASE + 1, 1,
			   "{\"userId\":\"u1\",\"properties\":{\"ok\":true}}");
	memsource_add_json(ms, "B", BASE, 2, "{\"properties\":{\"plan\":\"free\"}}");
	memsource_build(ms, 0, 0);
	const struct query_source *s = memsource_source(ms);
	cJSON *res =
	    qt_query(s, "{\"kind\":\"events\",\"properties\":[\"userId\",\"properties.plan\","
			"\"properties.n\",\"properties.ok\"]}");
	char *got = cJSON_PrintUnformatted(qt_get(res, "events"));
	/* newest first; a row shows only the paths it has */
	cr_assert(strstr(got, "\"event\":\"A\",\"pid\":0,\"properties\":{\"userId\":\"u0\","
			      "\"properties.plan\":\"pro\",\"properties.n\":10}"),
		  "%s", got);
	cr_assert(strstr(got, "\"event\":\"A\",\"pid\":1,\"properties\":{\"userId\":\"u1\","
			      "\"properties.ok\":true}"),
		  "%s", got);
	cr_assert(
	    strstr(got, "\"event\":\"B\",\"pid\":2,\"properties\":{\"properties.plan\":\"free\"}"),
	    "%s", got);
	free(got);
	cJSON_Delete(res);
	/* a path no row has is an empty column, not an error */
	res = qt_query(s, "{\"kind\":\"events\",\"event\":\"B\",\"properties\":[\"userId\","
			  "\"no.such\"]}");
	got = cJSON_PrintUnformatted(qt_get(res, "events"));
	cr_assert(strstr(got, "\"event\":\"B\",\"pid\":2,\"properties\":{}}"), "%s", got);
	free(got);
	cJSON_Delete(res);
	/* bad lists are refused */
	char err[300];
	struct td_buf out;
	td_buf_init(&out, 1 << 20);
	static const char *const bad[][2] = {
	    {"{\"kind\":\"events\",\"properties\":[]}", "properties: a list of 1 to 20"},
	    {"{\"kind\":\"events\",\"properties\":\"userId\"}", "properties: a list of 1 to 20"},
	    {"{\"kind\":\"events\",\"properties\":[\"\"]}", "properties[0]: a property path"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		td_buf_reset(&out);
		cr_assert_neq(query_run(bad[i][0], strlen(bad[i][0]), s, &out, err, sizeof(err)), 0,
			      "%s", bad[i][0]);
		cr_assert(strstr(err, bad[i][1]), "%s: %s", bad[i][0], err);
	}
	td_buf_release(&out);
	memsource_free(ms);
}
