/*
 * test_costs.c - advertising costs: the CSV and JSON readers (each bad line
 * rejected with its reason, the good ones kept), the costs table (a key
 * imported again replaces its row; ranges), and the migration of a version 3
 * meta.db, run twice.
 */
#include "base/log.h"
#include "base/td.h"
#include "meta/meta.h"

#include "mtest.h"
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define dir    mtest_dir
#define dbpath mtest_db

static void setup(void)
{
	mtest_setup("/tmp/td-costs");
}

static void teardown(void)
{
	mtest_teardown();
}

TestSuite(meta_costs, .init = setup, .fini = teardown);

static bool has_error(const struct meta_cost_batch *b, const char *a, const char *c)
{
	for (size_t i = 0; i < b->nerrors; i++)
		if (strstr(b->errors[i], a) && strstr(b->errors[i], c))
			return true;
	return false;
}

Test(meta_costs, csv_lines_each_on_their_own)
{
	const char csv[] = "\xEF\xBB\xBF"
			   "Date, Source ,medium,campaign,cost,currency\r\n"
			   "2024-03-01,google,cpc,spring,40,eur\r\n"
			   "2024-03-01,google,cpc,\"Spring, \"\"big\"\"\",12.5,EUR\r\n"
			   "\r\n"
			   "2024-02-30,google,cpc,spring,1,EUR\n"
			   "2024-03-02,google,cpc,spring,12,50,EUR\n"
			   "2024-03-02,google,cpc,spring,\"12,50\",EUR\n"
			   "2024-03-02,google,cpc,spring,-3,EUR\n"
			   "2024-03-02,google,cpc,spring,\xE2\x82\xAC"
			   "3,EUR\n"
			   "2024-03-02,,,,3,EUR\n"
			   "2024-03-02,x,y,z,3,euro\n"
			   "2024-03-02,x,y,\"z,3,EUR\n";
	struct meta_cost_batch b;
	meta_cost_batch_init(&b);
	char err[256];
	cr_assert_eq(meta_costs_parse_csv(csv, sizeof(csv) - 1, &b, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(b.lines, 10);
	cr_assert_eq(b.n, 2);
	cr_assert_eq(b.rejected, 8);
	/* kept in key order; quotes and currency case handled */
	cr_assert_str_eq(b.rows[0].campaign, "Spring, \"big\"");
	cr_assert_eq(b.rows[0].cost, 12.5);
	cr_assert_str_eq(b.rows[1].campaign, "spring");
	cr_assert_str_eq(b.rows[1].currency, "EUR");
	cr_assert(has_error(&b, "line 5:", "not a calendar date"));
	cr_assert(has_error(&b, "line 6:", "7 fields"));
	cr_assert(has_error(&b, "line 7:", "decimal separator"));
	cr_assert(has_error(&b, "line 8:", "0 or more"));
	cr_assert(has_error(&b, "line 9:", "without a currency sign"));
	cr_assert(has_error(&b, "line 10:", "all empty"));
	cr_assert(has_error(&b, "line 11:", "ISO 4217"));
	cr_assert(has_error(&b, "line 12:", "not closed"));
	meta_cost_batch_release(&b);
}

Test(meta_costs, csv_header_errors)
{
	const char *bad[] = {"", "date,source,medium,campaign,cost\n2024-03-01,a,b,c,1\n",
			     "date,source,medium,campaign,cost,currency,extra\n",
			     "date,source,medium,campaign,cost,cost\n",
			     "day,source,medium,campaign,cost,currency\n"};
	const char *why[] = {"empty", "lacks the column currency", "7 columns", "a second column",
			     "unknown column \"day\""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct meta_cost_batch b;
		meta_cost_batch_init(&b);
		char err[256];
		cr_assert_eq(meta_costs_parse_csv(bad[i], strlen(bad[i]), &b, err, sizeof(err)),
			     TD_EINVAL);
		cr_assert(strstr(err, why[i]), "%s: %s", bad[i], err);
		cr_assert_eq(b.n, 0);
		meta_cost_batch_release(&b);
	}
}

Test(meta_costs, json_rows)
{
	const char js[] = "{\"rows\":[{\"date\":\"2024-03-01\",\"source\":\"google\",\"cost\":4.5,"
			  "\"currency\":\"USD\"},"
			  "{\"date\":\"2024-03-01\",\"source\":\"google\",\"cost\":\"x\","
			  "\"currency\":\"USD\"},"
			  "{\"date\":\"2024-03-01\",\"source\":\"google\",\"cost\":1,\"currency\":"
			  "\"USD\",\"clicks\":3},"
			  "7]}";
	struct meta_cost_batch b;
	meta_cost_batch_init(&b);
	char err[256];
	cr_assert_eq(meta_costs_parse_json(js, sizeof(js) - 1, &b, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(b.n, 1);
	cr_assert_eq(b.rows[0].cost, 4.5);
	cr_assert_str_eq(b.rows[0].medium, "");
	cr_assert(has_error(&b, "row 2:", "not a number"));
	cr_assert(has_error(&b, "row 3:", "unknown field \"clicks\""));
	cr_assert(has_error(&b, "row 4:", "must be an object"));
	meta_cost_batch_release(&b);
	meta_cost_batch_init(&b);
	cr_assert_eq(meta_costs_parse_json("{\"a\":1}", 7, &b, err, sizeof(err)), TD_EINVAL);
	cr_assert(strstr(err, "not an array of rows"), "%s", err);
	meta_cost_batch_release(&b);
}

Test(meta_costs, import_again_replaces_and_ranges)
{
	struct meta *m = NULL;
	cr_assert_eq(meta_open(&m, dir), 0);
	struct meta_cost r[3] = {
	    {"2024-03-01", "google", "cpc", "spring", "EUR", 40},
	    {"2024-03-02", "google", "cpc", "spring", "EUR", 20},
	    {"2024-03-03", "bing", "cpc", "", "USD", 7},
	};
	cr_assert_eq(meta_costs_put(m, r, 3), 0);
	r[0].cost = 41;
	cr_assert_eq(meta_costs_put(m, r, 1), 0);
	struct meta_cost *l;
	size_t n;
	cr_assert_eq(meta_costs_list(m, NULL, NULL, &l, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(l[0].cost, 41);
	free(l);
	cr_assert_eq(meta_costs_list(m, "2024-03-02", "2024-03-02", &l, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(l[0].cost, 20);
	free(l);
	cr_assert_eq(meta_costs_list(m, "2024-03-03", NULL, &l, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(l[0].currency, "USD");
	free(l);
	/* the engine's view */
	struct query_costs qc;
	meta_costs_query_source(m, &qc);
	struct query_cost *rows;
	char err[128];
	cr_assert_eq(qc.load(qc.ctx, "2024-03-01", "2024-03-02", &rows, &n, err, sizeof(err)), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(rows[1].source, "google");
	cr_assert_eq(rows[1].cost, 20);
	qc.release(qc.ctx, rows, n);
	meta_close(m);
}

Test(meta_costs, version_3_migrates_once)
{
	struct meta *m = NULL;
	cr_assert_eq(meta_open(&m, dir), 0);
	meta_close(m);
	/* back to version 3, as a file written before costs existed */
	mtest_sql(dbpath, "DROP TABLE costs; PRAGMA user_version = 3;");
	cr_assert_eq(meta_open(&m, dir), 0);
	cr_assert_eq(mtest_int(dbpath, "PRAGMA user_version"), 4);
	struct meta_cost r = {"2024-03-01", "google", "cpc", "spring", "EUR", 40};
	cr_assert_eq(meta_costs_put(m, &r, 1), 0);
	meta_close(m);
	/* a version set back by hand over an existing table migrates again */
	mtest_sql(dbpath, "PRAGMA user_version = 3;");
	cr_assert_eq(meta_open(&m, dir), 0);
	cr_assert_eq(mtest_int(dbpath, "SELECT count(*) FROM costs"), 1);
	meta_close(m);
}
