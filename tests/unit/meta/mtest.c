/*
 * mtest.c - helpers of the meta tests (mtest.h).
 */
#include "mtest.h"

#include "base/log.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

char mtest_dir[64];
char mtest_db[128];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void mtest_setup(const char *prefix)
{
	td_log_quiet = true;
	snprintf(mtest_dir, sizeof(mtest_dir), "%s-XXXXXX", prefix);
	cr_assert_not_null(mkdtemp(mtest_dir));
	snprintf(mtest_db, sizeof(mtest_db), "%s/meta.db", mtest_dir);
}

void mtest_teardown(void)
{
	nftw(mtest_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

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
