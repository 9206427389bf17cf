/*
 * mtest.c - helpers of the meta tests (mtest.h).
 */
#include "mtest.h"

#include <criterion/criterion.h>
#include <sqlite3.h>

void mtest_sql(const char *db, const char *sql)
{
	sqlite3 *c;
	cr_assert_eq(sqlite3_open(db, &c), SQLITE_OK);
	sqlite3_busy_timeout(c, 5000);
	char *err = NULL;
	int rc = sqlite3_exec(c, sql, NULL, NULL, &err);
	cr_assert_eq(rc, SQLITE_OK, "%s: %s", sql, err ? err : "?");
	sqlite3_close(c);
}

long long mtest_int(const char *db, const char *sql)
{
	sqlite3 *c;
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_open(db, &c), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(c, sql, -1, &st, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	long long v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(c);
	return v;
}
