/*
 * test_bots.c - every kind leaves out events whose enriched.ua.bot is true,
 * unless the query has "include_bots": true; data without the property is
 * untouched.
 */
#include "qtest.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define BASE 1709251200000LL
#define BOT  "{\"enriched\":{\"ua\":{\"bot\":true,\"device\":\"bot\"}}}"

/* person 0 is a person, person 1 a crawler doing the same */
static struct memsource *data(bool with_bots)
{
	struct memsource *ms = memsource_new();
	for (uint32_t p = 0; p < 2; p++) {
		const char *props = p && with_bots ? BOT : "{\"properties\":{\"revenue\":5}}";
		cr_assert_eq(memsource_add_json(ms, "A", BASE + 1000, p, props), 0);
		cr_assert_eq(memsource_add_json(ms, "B", BASE + 2000, p, props), 0);
		cr_assert_eq(memsource_add_json(ms, "Order Completed", BASE + 3000, p,
						"{\"properties\":{\"revenue\":5}}"),
			     0);
	}
	/* the crawler's order carries the flag too */
	if (with_bots)
		memsource_set_bool(ms, 5, "enriched.ua.bot", true);
	memsource_build(ms, 0, 0);
	return ms;
}

static const char *const queries[] = {
    "{\"kind\":\"trends\",\"series\":[{\"event\":\"A\",\"math\":\"unique_persons\"}],"
    "\"date_from\":\"2024-03-01\",\"date_to\":\"2024-03-01\"%s}",
    "{\"kind\":\"funnel\",\"steps\":[{\"event\":\"A\"},{\"event\":\"B\"}]%s}",
    "{\"kind\":\"retention\",\"start\":{\"event\":\"A\"},\"return\":{\"event\":\"B\"},"
    "\"periods\":1,\"date_from\":\"2024-03-01\",\"date_to\":\"2024-03-01\"%s}",
    "{\"kind\":\"paths\",\"anchor\":{\"event\":\"A\"}%s}",
    "{\"kind\":\"events\",\"event\":\"A\"%s}",
    "{\"kind\":\"attribution\",\"conversion\":{\"event\":\"Order Completed\"},"
    "\"date_from\":\"2024-03-01\",\"date_to\":\"2024-03-01\"%s}",
};

/* The number of persons (or events, conversions) each kind reports. */
static double persons(const cJSON *res, int kind)
{
	switch (kind) {
	case 0:
		return qt_num(cJSON_GetArrayItem(qt_get(res, "series"), 0), "total");
	case 1:
		return qt_num(cJSON_GetArrayItem(qt_get(res, "steps"), 1), "persons");
	case 2:
		return qt_num(cJSON_GetArrayItem(qt_get(res, "cohorts"), 0), "size");
	case 3:
		return qt_num(res, "sessions");
	case 4:
		return cJSON_GetArraySize(qt_get(res, "events"));
	default:
		return qt_num(res, "conversions");
	}
}

Test(query_bots, every_kind_leaves_bots_out_by_default)
{
	struct memsource *bots = data(true), *none = data(false);
	for (int k = 0; k < (int)(sizeof(queries) / sizeof(queries[0])); k++) {
		char json[1024];
		snprintf(json, sizeof(json), queries[k], "");
		cJSON *res = qt_query(memsource_source(bots), json);
		cr_assert_eq(persons(res, k), 1, "kind %d without include_bots: %s", k, json);
		cJSON_Delete(res);
		snprintf(json, sizeof(json), queries[k], ",\"include_bots\":true");
		res = qt_query(memsource_source(bots), json);
		cr_assert_eq(persons(res, k), 2, "kind %d with include_bots", k);
		cJSON_Delete(res);
		snprintf(json, sizeof(json), queries[k], ",\"include_bots\":false");
		res = qt_query(memsource_source(none), json);
		cr_assert_eq(persons(res, k), 2, "kind %d on data without bots", k);
		cJSON_Delete(res);
	}
	char err[256];
	char json[1024];
	snprintf(json, sizeof(json), queries[4], ",\"include_bots\":\"yes\"");
	qt_query_fail(memsource_source(bots), json, err, sizeof(err));
	cr_assert(strstr(err, "include_bots"), "%s", err);
	memsource_free(bots);
	memsource_free(none);
}
