/*
 * test_qformat.c - query results as tables and CSV: the exact text for each
 * result kind, RFC 4180 quoting, cell escaping and cutting, and results that
 * are not what they should be (errors, never crashes).
 */
#include "base/buf.h"
#include "base/td.h"
#include "cli/qformat.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct td_buf notes;
static char err[256];

/* The text of json as fmt (asserting success); notes kept in `notes`. */
static char *render(enum qformat fmt, const char *json)
{
	struct td_buf out;
	td_buf_init(&out, 1u << 20);
	td_buf_release(&notes);
	td_buf_init(&notes, 1u << 20);
	int rc = qformat_render(json, strlen(json), fmt, &out, &notes, err, sizeof(err));
	cr_assert_eq(rc, 0, "render failed (%d): %s", rc, err);
	if (!out.data)
		td_buf_append(&out, "", 0);
	return td_buf_steal(&out);
}

static void expect(enum qformat fmt, const char *json, const char *want)
{
	char *got = render(fmt, json);
	cr_assert_str_eq(got, want, "got:\n%s\nwant:\n%s", got, want);
	free(got);
}

static const char *notes_text(void)
{
	return notes.data ? notes.data : "";
}

static const char trends_simple[] =
    "{\"kind\":\"trends\",\"interval\":\"day\",\"timezone\":\"UTC\","
    "\"from\":\"2024-03-01T00:00:00.000Z\",\"to\":\"2024-03-04T00:00:00.000Z\","
    "\"buckets\":[\"2024-03-01T00:00:00\",\"2024-03-02T00:00:00\",\"2024-03-03T00:00:00\"],"
    "\"series\":[{\"series\":0,\"event\":\"View\",\"name\":null,\"math\":\"count\","
    "\"property\":null,\"period\":\"current\",\"values\":[1,1,1],\"total\":3},"
    "{\"series\":1,\"event\":\"Buy\",\"name\":\"Revenue\",\"math\":\"sum\","
    "\"property\":\"properties.revenue\",\"period\":\"current\",\"values\":[25.5,0,1234.567],"
    "\"total\":1260.067},"
    "{\"series\":2,\"event\":\"Buy\",\"name\":null,\"math\":\"avg\","
    "\"property\":\"properties.revenue\",\"period\":\"current\",\"values\":[25.5,null,0.001],"
    "\"total\":0.3333333333333333}]}";

Test(qformat, trends_table)
{
	expect(QFORMAT_TABLE, trends_simple,
	       "trends by day, UTC, from 2024-03-01T00:00:00.000Z to 2024-03-04T00:00:00.000Z\n"
	       "\n"
	       "bucket               View  Revenue  Buy avg(properties.revenue)\n"
	       "-------------------  ----  -------  ---------------------------\n"
	       "2024-03-01T00:00:00     1     25.5                         25.5\n"
	       "2024-03-02T00:00:00     1        0                            -\n"
	       "2024-03-03T00:00:00     1  1234.57                        0.001\n"
	       "total                   3  1260.07                         0.33\n");
}

Test(qformat, trends_csv_exact_numbers)
{
	expect(QFORMAT_CSV, trends_simple,
	       "bucket,View,Revenue,Buy avg(properties.revenue)\r\n"
	       "2024-03-01T00:00:00,1,25.5,25.5\r\n"
	       "2024-03-02T00:00:00,1,0,\r\n"
	       "2024-03-03T00:00:00,1,1234.567,0.001\r\n"
	       "total,3,1260.067,0.3333333333333333\r\n");
	cr_assert_str_eq(notes_text(), "");
}

static const char trends_breakdown[] =
    "{\"kind\":\"trends\",\"interval\":\"week\",\"timezone\":\"Europe/Paris\","
    "\"from\":\"2024-03-04T00:00:00.000+01:00\",\"to\":\"2024-03-18T00:00:00.000+01:00\","
    "\"buckets\":[\"2024-03-04T00:00:00\",\"2024-03-11T00:00:00\"],"
    "\"previous_buckets\":[\"2024-02-19T00:00:00\",\"2024-02-26T00:00:00\"],"
    "\"series\":["
    "{\"series\":0,\"event\":\"\",\"name\":null,\"math\":\"unique_persons\",\"property\":null,"
    "\"period\":\"current\",\"breakdown_value\":\"fb, \\\"ads\\\"\",\"is_other\":false,"
    "\"values\":[2,1],\"total\":2},"
    "{\"series\":0,\"event\":\"\",\"name\":null,\"math\":\"unique_persons\",\"property\":null,"
    "\"period\":\"current\",\"breakdown_value\":null,\"is_other\":false,"
    "\"values\":[0,1],\"total\":1},"
    "{\"series\":0,\"event\":\"\",\"name\":null,\"math\":\"unique_persons\",\"property\":null,"
    "\"period\":\"current\",\"breakdown_value\":null,\"is_other\":true,"
    "\"values\":[5,0],\"total\":5},"
    "{\"series\":0,\"event\":\"\",\"name\":null,\"math\":\"unique_persons\",\"property\":null,"
    "\"period\":\"previous\",\"breakdown_value\":\"fb, \\\"ads\\\"\",\"is_other\":false,"
    "\"values\":[0,3],\"total\":3}]}";

Test(qformat, trends_breakdown_compare_table)
{
	expect(QFORMAT_TABLE, trends_breakdown,
	       "trends by week, Europe/Paris, from 2024-03-04T00:00:00.000+01:00 to "
	       "2024-03-18T00:00:00.000+01:00\n"
	       "\n"
	       "bucket               previous bucket      all events unique_persons [fb, \"ads\"]  "
	       "all events unique_persons [none]  all events unique_persons [other]  "
	       "all events unique_persons [fb, \"ads\"] (previous)\n"
	       "-------------------  -------------------  -------------------------------------  "
	       "--------------------------------  ---------------------------------  "
	       "------------------------------------------------\n"
	       "2024-03-04T00:00:00  2024-02-19T00:00:00                                      2  "
	       "                               0                                  5  "
	       "                                               0\n"
	       "2024-03-11T00:00:00  2024-02-26T00:00:00                                      1  "
	       "                               1                                  0  "
	       "                                               3\n"
	       "total                -                                                        2  "
	       "                               1                                  5  "
	       "                                               3\n");
}

Test(qformat, trends_breakdown_compare_csv_quotes)
{
	expect(QFORMAT_CSV, trends_breakdown,
	       "bucket,previous_bucket,\"all events unique_persons [fb, \"\"ads\"\"]\","
	       "all events unique_persons [none],all events unique_persons [other],"
	       "\"all events unique_persons [fb, \"\"ads\"\"] (previous)\"\r\n"
	       "2024-03-04T00:00:00,2024-02-19T00:00:00,2,0,5,0\r\n"
	       "2024-03-11T00:00:00,2024-02-26T00:00:00,1,1,0,3\r\n"
	       "total,,2,1,5,3\r\n");
}

Test(qformat, trends_same_labels_are_numbered)
{
	expect(QFORMAT_CSV,
	       "{\"kind\":\"trends\",\"buckets\":[\"2024-03-01T00:00:00\"],\"series\":["
	       "{\"series\":0,\"event\":\"View\",\"math\":\"count\",\"period\":\"current\","
	       "\"values\":[4],\"total\":4},"
	       "{\"series\":1,\"event\":\"View\",\"math\":\"count\",\"period\":\"current\","
	       "\"values\":[1],\"total\":1}]}",
	       "bucket,1. View,2. View\r\n"
	       "2024-03-01T00:00:00,4,1\r\n"
	       "total,4,1\r\n");
}

Test(qformat, trends_without_lines)
{
	expect(QFORMAT_CSV,
	       "{\"kind\":\"trends\",\"buckets\":[\"2024-03-01T00:00:00\"],\"series\":[]}",
	       "bucket\r\n2024-03-01T00:00:00\r\ntotal\r\n");
}

static const char funnel[] =
    "{\"kind\":\"funnel\",\"order\":\"sequential\",\"window_ms\":1209600000,"
    "\"steps\":[{\"step\":1,\"event\":\"View\",\"persons\":3,\"conversion_from_first_pct\":100,"
    "\"conversion_from_previous_pct\":100,\"median_ms\":null,\"mean_ms\":null},"
    "{\"step\":2,\"event\":\"\",\"persons\":2,"
    "\"conversion_from_first_pct\":66.66666666666667,"
    "\"conversion_from_previous_pct\":66.66666666666667,\"median_ms\":2500,"
    "\"mean_ms\":302398000}],"
    "\"breakdown\":[{\"breakdown_value\":\"google\",\"is_other\":false,"
    "\"steps\":[{\"step\":1,\"event\":\"View\",\"persons\":2,\"conversion_from_first_pct\":100,"
    "\"conversion_from_previous_pct\":100,\"median_ms\":null,\"mean_ms\":null},"
    "{\"step\":2,\"event\":\"\",\"persons\":2,\"conversion_from_first_pct\":100,"
    "\"conversion_from_previous_pct\":100,\"median_ms\":999,\"mean_ms\":90000}]},"
    "{\"breakdown_value\":null,\"is_other\":false,"
    "\"steps\":[{\"step\":1,\"event\":\"View\",\"persons\":0,\"conversion_from_first_pct\":null,"
    "\"conversion_from_previous_pct\":null,\"median_ms\":null,\"mean_ms\":null},"
    "{\"step\":2,\"event\":\"\",\"persons\":0,\"conversion_from_first_pct\":null,"
    "\"conversion_from_previous_pct\":null,\"median_ms\":null,\"mean_ms\":null}]},"
    "{\"breakdown_value\":null,\"is_other\":true,"
    "\"steps\":[{\"step\":1,\"event\":\"View\",\"persons\":1,\"conversion_from_first_pct\":100,"
    "\"conversion_from_previous_pct\":100,\"median_ms\":null,\"mean_ms\":null},"
    "{\"step\":2,\"event\":\"\",\"persons\":0,\"conversion_from_first_pct\":0,"
    "\"conversion_from_previous_pct\":0,\"median_ms\":null,\"mean_ms\":null}]}],"
    "\"persons\":{\"step\":2,\"dropped\":true,\"offset\":0,\"limit\":2,\"total\":3,"
    "\"pids\":[4,17]}}";

Test(qformat, funnel_table)
{
	expect(QFORMAT_TABLE, funnel,
	       "funnel, order sequential, window 14 d\n"
	       "\n"
	       "breakdown  step  event       persons  % of first  % of previous  median time  "
	       "mean time\n"
	       "---------  ----  ----------  -------  ----------  -------------  -----------  "
	       "---------\n"
	       "(all)         1  View              3        100%           100%            -  "
	       "        -\n"
	       "(all)         2  all events        2       66.7%          66.7%        2.5 s  "
	       "    3.5 d\n"
	       "google        1  View              2        100%           100%            -  "
	       "        -\n"
	       "google        2  all events        2        100%           100%       999 ms  "
	       "  1.5 min\n"
	       "(none)        1  View              0           -              -            -  "
	       "        -\n"
	       "(none)        2  all events        0           -              -            -  "
	       "        -\n"
	       "(other)       1  View              1        100%           100%            -  "
	       "        -\n"
	       "(other)       2  all events        0          0%             0%            -  "
	       "        -\n"
	       "\n"
	       "persons at step 2 who dropped off: 3 in all; 1-2: 4, 17 (more with \"offset\": "
	       "2)\n");
}

Test(qformat, funnel_csv_and_persons_note)
{
	expect(QFORMAT_CSV, funnel,
	       "breakdown_value,is_other,step,event,persons,conversion_from_first_pct,"
	       "conversion_from_previous_pct,median_ms,mean_ms\r\n"
	       ",,1,View,3,100,100,,\r\n"
	       ",,2,,2,66.66666666666667,66.66666666666667,2500,302398000\r\n"
	       "google,false,1,View,2,100,100,,\r\n"
	       "google,false,2,,2,100,100,999,90000\r\n"
	       ",false,1,View,0,,,,\r\n"
	       ",false,2,,0,,,,\r\n"
	       ",true,1,View,1,100,100,,\r\n"
	       ",true,2,,0,0,0,,\r\n");
	cr_assert_str_eq(notes_text(), "persons at step 2 who dropped off: 3 in all; 1-2: 4, 17 "
				       "(more with \"offset\": 2)\n");
}

Test(qformat, funnel_without_breakdown)
{
	expect(QFORMAT_CSV,
	       "{\"kind\":\"funnel\",\"order\":\"any\",\"window_ms\":60000,\"steps\":["
	       "{\"step\":1,\"event\":\"A\",\"persons\":1,\"conversion_from_first_pct\":100,"
	       "\"conversion_from_previous_pct\":100,\"median_ms\":null,\"mean_ms\":null}],"
	       "\"persons\":{\"step\":1,\"dropped\":false,\"offset\":5,\"limit\":10,\"total\":5,"
	       "\"pids\":[]}}",
	       "step,event,persons,conversion_from_first_pct,conversion_from_previous_pct,"
	       "median_ms,mean_ms\r\n"
	       "1,A,1,100,100,,\r\n");
	cr_assert_str_eq(notes_text(), "persons at step 1: 5 in all\n");
}

static const char retention[] =
    "{\"kind\":\"retention\",\"period\":\"week\",\"cohort\":\"first_time\",\"periods\":3,"
    "\"timezone\":\"UTC\",\"cohorts\":["
    "{\"start\":\"2024-02-26T00:00:00\",\"size\":3,\"values\":[3,1,0],"
    "\"percentages\":[100,33.333333333333336,0]},"
    "{\"start\":\"2024-03-04T00:00:00\",\"size\":0,\"values\":[0,0,0],"
    "\"percentages\":[null,null,null]}]}";

Test(qformat, retention_table)
{
	expect(QFORMAT_TABLE, retention,
	       "retention, first_time cohorts by week, UTC\n"
	       "\n"
	       "cohort               size    week 0     week 1  week 2\n"
	       "-------------------  ----  --------  ---------  ------\n"
	       "2024-02-26T00:00:00     3  3 (100%)  1 (33.3%)  0 (0%)\n"
	       "2024-03-04T00:00:00     0         0          0       0\n");
}

Test(qformat, retention_csv)
{
	expect(QFORMAT_CSV, retention,
	       "start,size,period_0,period_1,period_2,pct_0,pct_1,pct_2\r\n"
	       "2024-02-26T00:00:00,3,3,1,0,100,33.333333333333336,0\r\n"
	       "2024-03-04T00:00:00,0,0,0,0,,,\r\n");
}

static const char paths[] =
    "{\"kind\":\"paths\",\"direction\":\"before\",\"anchor\":\"Order Completed\","
    "\"session_gap_ms\":1800000,\"sessions\":4,\"depths\":["
    "{\"depth\":1,\"sessions\":3,\"transitions\":["
    "{\"from\":\"Checkout\",\"to\":\"Order Completed\",\"count\":2},"
    "{\"from\":\"$page\",\"to\":\"Order Completed\",\"count\":1}]},"
    "{\"depth\":2,\"sessions\":0,\"transitions\":[]}]}";

Test(qformat, paths_table)
{
	expect(QFORMAT_TABLE, paths,
	       "paths before Order Completed, sessions split after 30 min without events\n"
	       "\n"
	       "depth  sessions  from      to               count\n"
	       "-----  --------  --------  ---------------  -----\n"
	       "    0         4  -         -                    -\n"
	       "    1         3  Checkout  Order Completed      2\n"
	       "    1         3  $page     Order Completed      1\n"
	       "    2         0  -         -                    -\n");
}

Test(qformat, paths_csv)
{
	expect(QFORMAT_CSV, paths,
	       "depth,sessions,from,to,count\r\n"
	       "0,4,,,\r\n"
	       "1,3,Checkout,Order Completed,2\r\n"
	       "1,3,$page,Order Completed,1\r\n"
	       "2,0,,,\r\n");
}

Test(qformat, trends_costs_rows)
{
	expect(QFORMAT_CSV,
	       "{\"kind\":\"trends\",\"interval\":\"month\",\"timezone\":\"UTC\","
	       "\"buckets\":[\"2024-03-01T00:00:00\"],\"costs\":{\"currency\":\"EUR\",\"total\":50,"
	       "\"values\":[]},\"series\":[{\"series\":0,\"event\":\"Buy\",\"name\":null,"
	       "\"math\":\"sum\",\"property\":\"properties.revenue\",\"period\":\"current\","
	       "\"breakdown_value\":\"spring\",\"is_other\":false,\"values\":[150],\"total\":150,"
	       "\"cost\":50,\"roi\":2,\"roas\":3}]}",
	       "bucket,Buy sum(properties.revenue) [spring]\r\n"
	       "2024-03-01T00:00:00,150\r\n"
	       "total,150\r\n"
	       "cost,50\r\n"
	       "roi,2\r\n"
	       "roas,3\r\n");
}

static const char attribution[] =
    "{\"kind\":\"attribution\",\"conversion\":\"Order Completed\",\"value\":\"properties.revenue\","
    "\"touchpoint\":\"channel\",\"timezone\":\"UTC\",\"lookback_ms\":2592000000,"
    "\"models\":[\"first_touch\",\"linear\"],\"conversions\":2,\"revenue\":150,\"cost\":60,"
    "\"currency\":\"EUR\",\"roi\":1.5,\"roas\":2.5,\"groups\":["
    "{\"touchpoint\":\"Paid Search\",\"is_other\":false,\"cost\":60,\"models\":{"
    "\"first_touch\":{\"conversions\":1,\"revenue\":120,\"share_pct\":50,\"roi\":1,\"roas\":2},"
    "\"linear\":{\"conversions\":0.5,\"revenue\":60,\"share_pct\":25,\"roi\":0,\"roas\":1}}},"
    "{\"touchpoint\":null,\"is_other\":true,\"cost\":null,\"models\":{"
    "\"first_touch\":{\"conversions\":1,\"revenue\":30,\"share_pct\":50,\"roi\":null,\"roas\":null}"
    ","
    "\"linear\":{\"conversions\":1.5,\"revenue\":90,\"share_pct\":75,\"roi\":null,\"roas\":null}}}]"
    "}";

Test(qformat, attribution_table)
{
	expect(QFORMAT_TABLE, attribution,
	       "attribution of Order Completed by channel, lookback 30 d: 2 conversions, costs in "
	       "EUR\n"
	       "\n"
	       "touchpoint   model        conversions  revenue  share  cost  roi  roas\n"
	       "-----------  -----------  -----------  -------  -----  ----  ---  ----\n"
	       "Paid Search  first_touch            1      120    50%    60    1     2\n"
	       "Paid Search  linear               0.5       60    25%    60    0     1\n"
	       "(other)      first_touch            1       30    50%     -    -     -\n"
	       "(other)      linear               1.5       90    75%     -    -     -\n");
}

Test(qformat, attribution_csv)
{
	expect(QFORMAT_CSV, attribution,
	       "touchpoint,model,conversions,revenue,share_pct,cost,roi,roas\r\n"
	       "Paid Search,first_touch,1,120,50,60,1,2\r\n"
	       "Paid Search,linear,0.5,60,25,60,0,1\r\n"
	       "(other),first_touch,1,30,50,,,\r\n"
	       "(other),linear,1.5,90,75,,,\r\n");
}

static const char events[] =
    "{\"kind\":\"events\",\"offset\":10,\"limit\":2,\"has_more\":true,\"events\":["
    "{\"ts\":\"2024-03-09T01:00:00.000+01:00\",\"ts_ms\":1709942400000,\"event\":\"Buy\","
    "\"pid\":1},"
    "{\"ts\":\"2024-03-09T00:59:00.000+01:00\",\"ts_ms\":1709942340000,"
    "\"event\":\"Line\\nbreak, \\\"quoted\\\"\\r\",\"pid\":22,"
    "\"properties\":{\"plan\":\"pro\",\"n\":[1,2]},\"ok\":true}]}";

Test(qformat, events_table_escapes_control_characters)
{
	expect(QFORMAT_TABLE, events,
	       "events 11-12, newest first\n"
	       "\n"
	       "ts                                     ts_ms  event                    pid  "
	       "ok    plan  n\n"
	       "-----------------------------  -------------  -----------------------  ---  "
	       "----  ----  -----\n"
	       "2024-03-09T01:00:00.000+01:00  1709942400000  Buy                        1  "
	       "-     -     -\n"
	       "2024-03-09T00:59:00.000+01:00  1709942340000  Line\\nbreak, \"quoted\"\\r   22  "
	       "true  pro   [1,2]\n"
	       "\n"
	       "more events follow: run the query again with \"offset\": 12\n");
}

Test(qformat, events_csv_quotes_line_breaks)
{
	expect(QFORMAT_CSV, events,
	       "ts,ts_ms,event,pid,ok,plan,n\r\n"
	       "2024-03-09T01:00:00.000+01:00,1709942400000,Buy,1,,,\r\n"
	       "2024-03-09T00:59:00.000+01:00,1709942340000,\"Line\nbreak, \"\"quoted\"\"\r\","
	       "22,true,pro,\"[1,2]\"\r\n");
	cr_assert_str_eq(notes_text(),
			 "more events follow: run the query again with \"offset\": 12\n");
}

Test(qformat, events_none)
{
	const char *none = "{\"kind\":\"events\",\"offset\":0,\"limit\":5,\"has_more\":false,"
			   "\"events\":[]}";
	expect(QFORMAT_CSV, none, "ts,ts_ms,event,pid\r\n");
	expect(QFORMAT_TABLE, none,
	       "events: none\n\nts  ts_ms  event  pid\n--  -----  -----  ---\n");
}

Test(qformat, table_cells_cut_by_characters)
{
	char json[1024], want[1024], value[256] = "";
	/* 70 two-byte characters: cut to 57 characters and "..." */
	for (int i = 0; i < 70; i++)
		snprintf(value + strlen(value), sizeof(value) - strlen(value), "\xc3\xa9");
	snprintf(json, sizeof(json),
		 "{\"kind\":\"events\",\"offset\":0,\"events\":[{\"event\":\"%s\"},{\"event\":"
		 "\"\xc3\xa9t\xc3\xa9\"}]}",
		 value);
	char cut[256] = "", dashes[64] = "";
	for (int i = 0; i < 57; i++)
		snprintf(cut + strlen(cut), sizeof(cut) - strlen(cut), "\xc3\xa9");
	memset(dashes, '-', QFORMAT_MAX_CELL);
	snprintf(want, sizeof(want),
		 "events 1-2, newest first\n\nevent\n%s\n%s...\n\xc3\xa9t\xc3\xa9\n", dashes, cut);
	expect(QFORMAT_TABLE, json, want);
	/* CSV keeps every byte */
	char *csv = render(QFORMAT_CSV, json);
	cr_assert(strstr(csv, value) != NULL);
	free(csv);
}

Test(qformat, json_passes_through)
{
	expect(QFORMAT_JSON, "{\"kind\":\"x\"}", "{\"kind\":\"x\"}\n");
	expect(QFORMAT_JSON, "{}\n", "{}\n");
}

Test(qformat, format_names)
{
	enum qformat f;
	cr_assert_eq(qformat_from_name("json", &f), 0);
	cr_assert_eq(f, QFORMAT_JSON);
	cr_assert_eq(qformat_from_name("table", &f), 0);
	cr_assert_eq(f, QFORMAT_TABLE);
	cr_assert_eq(qformat_from_name("csv", &f), 0);
	cr_assert_eq(f, QFORMAT_CSV);
	cr_assert_eq(qformat_from_name("CSV", &f), TD_EINVAL);
	cr_assert_eq(qformat_from_name("", &f), TD_EINVAL);
}

static int render_rc(enum qformat fmt, const char *json, size_t cap)
{
	struct td_buf out;
	td_buf_init(&out, cap);
	int rc = qformat_render(json, strlen(json), fmt, &out, NULL, err, sizeof(err));
	td_buf_release(&out);
	return rc;
}

Test(qformat, not_a_result)
{
	cr_assert_eq(render_rc(QFORMAT_TABLE, "not json", 1u << 20), TD_EPARSE);
	cr_assert(strstr(err, "not a query result"), "%s", err);
	cr_assert_eq(render_rc(QFORMAT_CSV, "[1,2]", 1u << 20), TD_EPARSE);
	cr_assert_eq(render_rc(QFORMAT_CSV, "{\"kind\":\"cohorts\"}", 1u << 20), TD_EPARSE);
	cr_assert_str_eq(err, "not a query result: unknown kind \"cohorts\"");
	cr_assert_eq(render_rc(QFORMAT_CSV, "{\"kind\":\"funnel\"}", 1u << 20), TD_EPARSE);
	cr_assert_str_eq(err, "not a query result: funnel result without its fields");
}

Test(qformat, output_cap)
{
	cr_assert_eq(render_rc(QFORMAT_TABLE, trends_simple, 100), TD_ETOOLARGE);
	cr_assert_eq(render_rc(QFORMAT_CSV, trends_simple, 40), TD_ETOOLARGE);
	cr_assert_eq(render_rc(QFORMAT_CSV, trends_simple, 1u << 20), 0);
}

/* Every result with one byte changed or cut short: an error or some text,
 * never a crash (run under `make asan` for memory errors). */
Test(qformat, damaged_results_do_not_crash)
{
	const char *docs[] = {trends_simple, trends_breakdown, funnel, retention, paths, events};
	struct td_buf out;
	td_buf_init(&out, 1u << 20);
	for (size_t d = 0; d < TD_ARRAY_LEN(docs); d++) {
		size_t n = strlen(docs[d]);
		char *copy = malloc(n + 1);
		for (size_t i = 0; i < n; i++) {
			for (int fmt = QFORMAT_TABLE; fmt <= QFORMAT_CSV; fmt++) {
				memcpy(copy, docs[d], n + 1);
				copy[i] = (i & 1) ? '1' : '"';
				td_buf_reset(&out);
				int rc = qformat_render(copy, n, fmt, &out, NULL, err, sizeof(err));
				cr_assert(rc == 0 || rc == TD_EPARSE);
				td_buf_reset(&out);
				rc = qformat_render(docs[d], i, fmt, &out, NULL, err, sizeof(err));
				cr_assert(rc == 0 || rc == TD_EPARSE);
			}
		}
		free(copy);
	}
	td_buf_release(&out);
}
