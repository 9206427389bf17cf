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

/* A fresh temporary data directory per test: mtest_dir / mtest_db name it
 * and its meta.db; mtest_teardown removes it. prefix: "/tmp/td-meta". */
extern char mtest_dir[64];
extern char mtest_db[128];
void mtest_setup(const char *prefix);
void mtest_teardown(void);

#endif
