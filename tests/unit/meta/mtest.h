/*
 * mtest.h - helpers of the meta tests: SQL on meta.db through a connection
 * of its own, as an administrator with the sqlite3 shell would.
 */
#ifndef TD_TESTS_META_MTEST_H
#define TD_TESTS_META_MTEST_H

/* Runs sql on the database file db; the test fails on an error. */
void mtest_sql(const char *db, const char *sql);
/* The integer in the first column of the first row of sql. */
long long mtest_int(const char *db, const char *sql);

#endif
