/*
 * test_errors.c - queries a caller must fix fail with TD_EINVAL and a
 * message naming the field and the problem; store errors pass through;
 * the output buffer is untouched on failure (qt_query_fail checks it).
 */
#include "qtest.h"
#include "base/td.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define BASE 1709251200000LL

static struct memsource *ms;
static const struct query_source *src;

static void setup(void)
{
	ms = memsource_new();
	memsource_add_json(ms, "Signup", BASE, 0,
			   "{\"properties\":{\"plan\":\"pro\",\"revenue\":10,\"ok\":true}}");
	memsource_add_json(ms, "Buy", BASE + 1, 1, "{\"properties\":{\"revenue\":5}}");
	memsource_build(ms, 0, 0);
	src = memsource_source(ms);
}

static void teardown(void)
{
	memsource_free(ms);
}

TestSuite(query_errors, .init = setup, .fini = teardown);

static void expect(const char *json, int code, const char *needle)
{
	char err[512];
	int rc = qt_query_fail(src, json, err, sizeof(err));
	cr_assert_eq(rc, code, "code %d, expected %d for %s (%s)", rc, code, json, err);
	cr_assert(strstr(err, needle), "message \"%s\" lacks \"%s\" (query %s)", err, needle, json);
}

#define FUN(rest)                                                                                  \
	"{\"kind\":\"funnel\",\"steps\":[{\"event\":\"Signup\"},{\"event\":\"Buy\"}]" rest "}"
#define TRE(rest)                                                                                  \
	"{\"kind\":\"trends\",\"series\":[{\"event\":\"Signup\"}],\"date_from\":\"2024-03-01\","   \
	"\"date_to\":\"2024-03-02\"" rest "}"

Test(query_errors, documents)
{
	expect("{\"kind\":", TD_EINVAL, "query: not valid JSON");
	expect("{\"kind\":\"events\"} x", TD_EINVAL, "unexpected text after the JSON");
	expect("[1]", TD_EINVAL, "query: must be a JSON object");
	expect("{}", TD_EINVAL, "kind: required");
	expect("{\"kind\":\"funel\"}", TD_EINVAL, "kind: unknown value \"funel\"");
	expect("{\"kind\":5}", TD_EINVAL, "kind: must be a string");
	expect("{\"kind\":\"events\",\"limt\":3}", TD_EINVAL, "limt: unknown field");
	expect("{\"kind\":\"events\",\"limit\":1,\"limit\":2}", TD_EINVAL, "limit: given twice");
}

Test(query_errors, funnels)
{
	expect("{\"kind\":\"funnel\",\"steps\":[{\"event\":\"Signup\"}]}", TD_EINVAL,
	       "steps: a funnel has 2 to 20 steps (got 1)");
	char many[4096] = "{\"kind\":\"funnel\",\"steps\":[";
	for (int i = 0; i < 21; i++)
		qt_cat(many, sizeof(many), "%s{\"event\":\"Signup\"}", i ? "," : "");
	qt_cat(many, sizeof(many), "]}");
	expect(many, TD_EINVAL, "(got 21)");
	expect("{\"kind\":\"funnel\"}", TD_EINVAL, "steps: required");
	expect("{\"kind\":\"funnel\",\"steps\":[{\"event\":\"Signup\"},{\"event\":\"Sigup\"}]}",
	       TD_EINVAL, "steps[1].event: unknown event \"Sigup\"");
	expect("{\"kind\":\"funnel\",\"steps\":[{\"event\":\"Signup\"},{}]}", TD_EINVAL,
	       "steps[1].event: required");
	expect("{\"kind\":\"funnel\",\"steps\":[{\"event\":\"Signup\",\"evnt\":1},{\"event\":"
	       "\"Buy\"}]}",
	       TD_EINVAL, "steps[0].evnt: unknown field");
	expect(FUN(",\"window\":0"), TD_EINVAL, "window: must be positive");
	expect(FUN(",\"window\":-5"), TD_EINVAL, "window: must be positive");
	expect(FUN(",\"window\":\"0d\""), TD_EINVAL, "window: must be positive");
	expect(FUN(",\"window\":\"-1h\""), TD_EINVAL, "window: must be positive");
	expect(FUN(",\"window\":\"7 days\""), TD_EINVAL, "window: \"7 days\" is not a duration");
	expect(FUN(",\"window\":1.5"), TD_EINVAL, "window: must be a positive number of ms");
	expect(FUN(",\"order\":\"strcit\""), TD_EINVAL, "order: unknown value \"strcit\"");
	expect(FUN(",\"order\":\"any\",\"exclusions\":[{\"event\":\"Buy\"}]"), TD_EINVAL,
	       "exclusions: not supported with order \"any\"");
	expect(FUN(",\"exclusions\":[{\"event\":\"Buy\",\"from_step\":2,\"to_step\":2}]"),
	       TD_EINVAL, "exclusions[0].from_step: must be a whole number from 1 to 1");
	expect(FUN(",\"exclusions\":[{\"event\":\"Nope\"}]"), TD_EINVAL,
	       "exclusions[0].event: unknown event \"Nope\"");
	expect(FUN(",\"breakdown\":\"properties.plna\""), TD_EINVAL,
	       "breakdown: unknown property \"properties.plna\"");
	expect(FUN(",\"breakdown\":\"properties.plan\",\"breakdown_attribution\":\"step\""),
	       TD_EINVAL, "breakdown_attribution_step: required");
	expect(FUN(",\"breakdown_limit\":3"), TD_EINVAL, "breakdown: required when");
	expect(FUN(",\"persons\":{\"step\":1,\"dropped\":true}"), TD_EINVAL,
	       "persons.step: nobody drops off at step 1");
	expect(FUN(",\"persons\":{\"step\":3}"), TD_EINVAL, "persons.step: must be a whole number");
	expect(FUN(",\"persons\":{\"dropped\":true}"), TD_EINVAL, "persons.step: required");
}

Test(query_errors, filters)
{
	expect(
	    FUN(",\"filters\":[{\"property\":\"properties.plan\",\"operator\":\"~\",\"value\":1}]"),
	    TD_EINVAL, "filters[0].operator: bad operator \"~\"");
	expect(
	    FUN(",\"filters\":[{\"property\":\"properties.plna\",\"operator\":\"=\",\"value\":1}]"),
	    TD_EINVAL,
	    "filters[0].property: unknown property \"properties.plna\" (no event has it)");
	expect(
	    "{\"kind\":\"funnel\",\"steps\":[{\"event\":\"Signup\"},{\"event\":\"Buy\",\"filters\":"
	    "[{\"property\":\"properties.plan\",\"operator\":\"is_set\"}]}]}",
	    TD_EINVAL,
	    "steps[1].filters[0].property: unknown property \"properties.plan\" (no "
	    "\"Buy\" event has it)");
	expect(
	    FUN(",\"filters\":[{\"property\":\"properties.revenue\",\"operator\":\">\",\"value\":"
		"\"10\"}]"),
	    TD_EINVAL,
	    "filters[0]: property \"properties.revenue\" holds numbers; it cannot be "
	    "compared with the string \"10\"");
	expect(
	    FUN(",\"filters\":[{\"property\":\"properties.plan\",\"operator\":\"=\",\"value\":5}]"),
	    TD_EINVAL,
	    "property \"properties.plan\" holds strings; it cannot be compared with "
	    "the number 5");
	expect(FUN(",\"filters\":[{\"property\":\"properties.revenue\",\"operator\":\"contains\","
		   "\"value\":\"1\"}]"),
	       TD_EINVAL, "contains needs a string property");
	expect(FUN(",\"filters\":[{\"property\":\"properties.ok\",\"operator\":\">\",\"value\":"
		   "true}]"),
	       TD_EINVAL, "filters[0].value: > compares numbers or strings");
	expect(FUN(",\"filters\":[{\"property\":\"properties.plan\",\"operator\":\"in\",\"value\":["
		   "]}]"),
	       TD_EINVAL, "filters[0].value: in takes 1 to 1000 values");
	expect(FUN(",\"filters\":[{\"property\":\"properties.plan\",\"operator\":\"in\",\"value\":"
		   "[\"a\",1]}]"),
	       TD_EINVAL, "values must all have one type");
	expect(FUN(",\"filters\":[{\"property\":\"properties.plan\",\"operator\":\"=\"}]"),
	       TD_EINVAL, "filters[0].value: required with =");
	expect(FUN(",\"filters\":[{\"property\":\"properties.plan\",\"operator\":\"is_set\","
		   "\"value\":1}]"),
	       TD_EINVAL, "filters[0].value: not used with is_set");
	expect(FUN(",\"filters\":[{\"property\":\"properties.plan\",\"operator\":\"=\",\"value\":"
		   "null}]"),
	       TD_EINVAL, "null is not a value");
	expect(FUN(",\"filters\":[{\"operator\":\"is_set\"}]"), TD_EINVAL,
	       "filters[0].property: required");
	expect(FUN(",\"filters\":{}"), TD_EINVAL, "filters: must be an array");
}

Test(query_errors, dates_and_zones)
{
	expect(TRE(",\"interval\":\"fortnight\""), TD_EINVAL,
	       "interval: bad interval \"fortnight\"");
	expect(
	    "{\"kind\":\"trends\",\"series\":[{\"event\":\"Signup\"}],\"date_from\":\"2024-03-05\","
	    "\"date_to\":\"2024-03-01\"}",
	    TD_EINVAL,
	    "date_to: \"2024-03-01\" is before date_from \"2024-03-05\" (impossible date "
	    "range)");
	expect(
	    "{\"kind\":\"trends\",\"series\":[{\"event\":\"Signup\"}],\"date_from\":\"2024-02-30\","
	    "\"date_to\":\"2024-03-01\"}",
	    TD_EINVAL, "date_from: \"2024-02-30\" is not a date");
	expect(
	    "{\"kind\":\"trends\",\"series\":[{\"event\":\"Signup\"}],\"date_to\":\"2024-03-01\"}",
	    TD_EINVAL, "date_from: required");
	expect(TRE(",\"timezone\":\"Mars/Olympus\""), TD_EINVAL,
	       "timezone: Mars/Olympus: unknown time zone");
	expect(TRE(",\"timezone\":\"+25:00\""), TD_EINVAL, "timezone: +25:00: a fixed offset");
	expect("{\"kind\":\"trends\",\"interval\":\"hour\",\"series\":[{\"event\":\"Signup\"}],"
	       "\"date_from\":\"2020-01-01\",\"date_to\":\"2024-03-01\"}",
	       TD_EINVAL, "interval: \"hour\" over this date range gives");
}

Test(query_errors, trends_retention_paths_events)
{
	expect("{\"kind\":\"trends\",\"series\":[],\"date_from\":\"2024-03-01\",\"date_to\":"
	       "\"2024-03-02\"}",
	       TD_EINVAL, "series: 1 to 20 series (got 0)");
	expect("{\"kind\":\"trends\",\"series\":[{\"event\":\"Signup\",\"math\":\"sum\"}],"
	       "\"date_from\":\"2024-03-01\",\"date_to\":\"2024-03-02\"}",
	       TD_EINVAL, "series[0].property: required with math \"sum\"");
	expect("{\"kind\":\"trends\",\"series\":[{\"event\":\"Signup\",\"math\":\"avg\","
	       "\"property\":\"properties.plan\"}],\"date_from\":\"2024-03-01\",\"date_to\":"
	       "\"2024-03-02\"}",
	       TD_EINVAL,
	       "series[0].property: property \"properties.plan\" holds strings; avg needs "
	       "numbers");
	expect("{\"kind\":\"trends\",\"series\":[{\"event\":\"Signup\",\"property\":\"properties."
	       "plan\""
	       "}],\"date_from\":\"2024-03-01\",\"date_to\":\"2024-03-02\"}",
	       TD_EINVAL, "series[0].property: not used with math \"count\"");
	expect("{\"kind\":\"trends\",\"series\":[{\"event\":\"Signup\",\"math\":\"median\"}],"
	       "\"date_from\":\"2024-03-01\",\"date_to\":\"2024-03-02\"}",
	       TD_EINVAL, "series[0].math: unknown value \"median\"");
	expect(TRE(",\"breakdown\":\"properties.nope\""), TD_EINVAL,
	       "breakdown: unknown property \"properties.nope\"");
	expect("{\"kind\":\"retention\",\"start\":{\"event\":\"Signup\"},\"return\":{\"event\":"
	       "\"Buy\"},"
	       "\"periods\":0,\"date_from\":\"2024-03-01\",\"date_to\":\"2024-03-02\"}",
	       TD_EINVAL, "periods: must be a whole number from 1 to 400");
	expect(
	    "{\"kind\":\"retention\",\"start\":{\"event\":\"Signup\"},\"date_from\":\"2024-03-01\","
	    "\"date_to\":\"2024-03-02\"}",
	    TD_EINVAL, "return: required");
	expect("{\"kind\":\"retention\",\"start\":{\"event\":\"Signup\"},\"return\":{\"event\":"
	       "\"Buy\"},"
	       "\"period\":\"hour\",\"date_from\":\"2024-03-01\",\"date_to\":\"2024-03-02\"}",
	       TD_EINVAL, "period: bad interval \"hour\"");
	expect("{\"kind\":\"paths\",\"anchor\":{\"event\":\"Signup\"},\"depth\":0}", TD_EINVAL,
	       "depth: must be a whole number from 1 to 20");
	expect("{\"kind\":\"paths\"}", TD_EINVAL, "anchor: required");
	expect("{\"kind\":\"paths\",\"anchor\":{\"event\":\"Signup\"},\"events\":[\"Nope\"]}",
	       TD_EINVAL, "events[0]: unknown event \"Nope\"");
	expect("{\"kind\":\"paths\",\"anchor\":{\"event\":\"Signup\"},\"session_gap\":\"0m\"}",
	       TD_EINVAL, "session_gap: must be positive");
	expect("{\"kind\":\"events\",\"limit\":0}", TD_EINVAL,
	       "limit: must be a whole number from 1");
	expect("{\"kind\":\"events\",\"event\":\"Nope\"}", TD_EINVAL,
	       "event: unknown event \"Nope\"");
}

Test(query_errors, result_too_large)
{
	struct td_buf b;
	td_buf_init(&b, 64);
	char err[256];
	const char *q = "{\"kind\":\"events\"}";
	int rc = query_run(q, strlen(q), src, &b, err, sizeof(err));
	cr_assert_eq(rc, TD_ETOOLARGE);
	cr_assert(strstr(err, "the result is larger than 64 bytes"), "%s", err);
	cr_assert_eq(b.len, 0);
	td_buf_release(&b);
}

Test(query_errors, store_errors_pass_through)
{
	memsource_fail_column(ms, "properties.plan", TD_EIO);
	expect("{\"kind\":\"events\",\"filters\":[{\"property\":\"properties.plan\",\"operator\":"
	       "\"is_set\"}]}",
	       TD_EIO, "store: reading property \"properties.plan\" failed");
	memsource_fail_column(ms, "properties.plan", 0);
}

Test(query_errors, person_ids_out_of_range)
{
	uint32_t canon[1] = {0};
	memsource_set_persons(ms, 1, canon); /* pid 1 is now out of range */
	memsource_build(ms, 0, 0);
	src = memsource_source(ms);
	expect("{\"kind\":\"events\"}", TD_ECORRUPT, "person id 1 is out of range");
	expect(FUN(""), TD_ECORRUPT, "person id 1 is out of range");
}

Test(query_errors, memory_limit)
{
	/* every kind, under limits from tiny to enough: either the result or
	 * TD_ENOMEM with the output untouched and nothing leaked (ASan) */
	static const char *const qs[] = {
	    FUN(",\"breakdown\":\"properties.plan\",\"persons\":{\"step\":1}"),
	    TRE(",\"breakdown\":\"properties.plan\",\"compare\":true"),
	    "{\"kind\":\"retention\",\"start\":{\"event\":\"Signup\"},\"return\":{\"event\":"
	    "\"Buy\"},\"date_from\":\"2024-03-01\",\"date_to\":\"2024-03-02\"}",
	    "{\"kind\":\"paths\",\"anchor\":{\"event\":\"Signup\"}}",
	    "{\"kind\":\"events\",\"timezone\":\"Europe/Paris\"}",
	};
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
		qt_memory_limits(src, qs[i], 4u << 20, 0);
}
