/*
 * test_meta_identity.c - the identity configuration in meta.db: defaults,
 * set / get / reset across reopen, every validation rule with its boundary,
 * hand-edited documents, and the migration of a version 1 meta.db.
 */
#include "base/log.h"
#include "base/td.h"
#include "meta/meta.h"

#include "mtest.h"
#include <criterion/criterion.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define dir    mtest_dir
#define dbpath mtest_db

static void setup(void)
{
	mtest_setup("/tmp/td-metaid");
}

static void teardown(void)
{
	mtest_teardown();
}

static struct meta *open_meta(void)
{
	struct meta *m = NULL;
	int rc = meta_open(&m, dir);
	cr_assert_eq(rc, 0, "meta_open: %s", td_strerror(rc));
	return m;
}

static void assert_same_config(const struct identity_config *a, const struct identity_config *b)
{
	cr_assert_eq(memcmp(a->limit, b->limit, sizeof(a->limit)), 0);
	cr_assert_eq(memcmp(a->priority, b->priority, sizeof(a->priority)), 0);
	cr_assert_eq(a->ntraits, b->ntraits);
	for (size_t i = 0; i < a->ntraits; i++)
		cr_assert_str_eq(a->traits[i], b->traits[i]);
	cr_assert_eq(a->nblocked, b->nblocked);
	for (size_t i = 0; i < a->nblocked; i++)
		cr_assert_str_eq(a->blocked[i], b->blocked[i]);
}

static void assert_defaults(struct meta *m)
{
	struct meta_identity got;
	char err[512];
	cr_assert_eq(meta_identity_get(m, &got, err, sizeof(err)), 0, "%s", err);
	cr_assert_not(got.stored);
	struct identity_config def;
	identity_config_default(&def);
	assert_same_config(&got.cfg, &def);
}

/* A configuration that differs from the defaults in every part. */
static void sample(struct identity_config *c)
{
	identity_config_default(c);
	c->limit[IDENTITY_USER] = 2;
	c->limit[IDENTITY_ANON] = 255;
	const uint8_t prio[] = {IDENTITY_EMAIL, IDENTITY_USER,	   IDENTITY_TRAIT,
				IDENTITY_PHONE, IDENTITY_EXTERNAL, IDENTITY_ANON};
	memcpy(c->priority, prio, sizeof(prio));
	c->traits[0] = "crm_id";
	c->traits[1] = "loyalty_no";
	c->ntraits = 2;
	c->blocked[0] = "test";
	c->blocked[1] = "n/a";
	c->blocked[2] = "x, y"; /* commas and inner spaces are fine here */
	c->nblocked = 3;
}

TestSuite(meta_identity, .init = setup, .fini = teardown);

Test(meta_identity, defaults_when_nothing_is_stored)
{
	struct meta *m = open_meta();
	assert_defaults(m);
	meta_close(m);
}

Test(meta_identity, set_get_reset_across_reopen)
{
	struct meta *m = open_meta();
	struct identity_config c;
	sample(&c);
	char err[512] = "";
	cr_assert_eq(meta_identity_set(m, &c, err, sizeof(err)), 0, "%s", err);
	meta_close(m);

	m = open_meta();
	struct meta_identity got;
	cr_assert_eq(meta_identity_get(m, &got, err, sizeof(err)), 0, "%s", err);
	cr_assert(got.stored);
	assert_same_config(&got.cfg, &c);

	/* setting again replaces everything (no leftovers of the first) */
	struct identity_config d;
	identity_config_default(&d);
	d.traits[0] = "member_no";
	d.ntraits = 1;
	cr_assert_eq(meta_identity_set(m, &d, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(meta_identity_get(m, &got, err, sizeof(err)), 0);
	assert_same_config(&got.cfg, &d);
	cr_assert_eq(mtest_int(dbpath, "SELECT count(*) FROM settings"), 1);

	cr_assert_eq(meta_identity_reset(m), 0);
	assert_defaults(m);
	cr_assert_eq(meta_identity_reset(m), 0, "resetting twice is fine");
	meta_close(m);
}

Test(meta_identity, json_is_the_stored_document)
{
	struct identity_config c;
	sample(&c);
	char *j = meta_identity_json(&c);
	cr_assert_str_eq(j, "{\"limits\":{\"user_id\":2,\"email\":5,\"phone\":5,\"external\":5,"
			    "\"trait\":5,\"anonymous_id\":255},\"priority\":[\"email\",\"user_id\","
			    "\"trait\",\"phone\",\"external\",\"anonymous_id\"],\"traits\":["
			    "\"crm_id\",\"loyalty_no\"],\"blocked\":[\"test\",\"n/a\",\"x, y\"]}");
	struct meta *m = open_meta();
	char err[512];
	cr_assert_eq(meta_identity_set(m, &c, err, sizeof(err)), 0, "%s", err);
	sqlite3 *db;
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT value FROM settings WHERE name = 'identity'",
					-1, &st, NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), j);
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(j);
	meta_close(m);
}

/* One rule broken at a time: the error names the bad value, nothing is
 * stored. */
Test(meta_identity, invalid_configurations_are_refused)
{
	static char long_trait[IDENTITY_MAX_TYPE + 2], long_value[IDENTITY_MAX_VALUE + 2];
	memset(long_trait, 't', IDENTITY_MAX_TYPE + 1);
	memset(long_value, 'v', IDENTITY_MAX_VALUE + 1);
	static const char *const many[IDENTITY_MAX_BLOCKED + 1] = {
	    "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "b0", "b1", "b2",
	    "b3", "b4", "b5", "b6", "b7", "b8", "b9", "c0", "c1", "c2", "c3", "c4", "c5",
	    "c6", "c7", "c8", "c9", "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8",
	    "d9", "e0", "e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9", "f0", "f1",
	    "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "g0", "g1", "g2", "g3", "g4"};
	struct {
		const char *name;
		int kind; /* 0 limit, 1 priority dup, 2 priority range, 3 traits, 4 blocked */
		const char *value;
		size_t count;	  /* for kinds 3, 4: how many of many[] (0: just value) */
		const char *want; /* in the message */
	} cases[] = {
	    {"limit 0", 0, NULL, 0, "email limit is 0"},
	    {"priority repeats", 1, NULL, 0, "repeats a class"},
	    {"priority out of range", 2, NULL, 0, "unknown class"},
	    {"empty trait", 3, "", 0, "identifier trait ''"},
	    {"long trait", 3, long_trait, 0, "1 to 64 bytes"},
	    {"trait with colon", 3, "crm:id", 0, "'crm:id'"},
	    {"trait with dot", 3, "crm.id", 0, "'crm.id'"},
	    {"trait with control", 3, "crm\tid", 0, "control"},
	    {"trait email", 3, "email", 0, "'email' is a built-in"},
	    {"trait userId", 3, "userId", 0, "'userId' is a built-in"},
	    {"trait anonymous_id", 3, "anonymous_id", 0, "built-in"},
	    {"too many traits", 3, NULL, IDENTITY_MAX_TRAITS + 1, "17 identifier traits"},
	    {"empty blocked", 4, "", 0, "blocked value ''"},
	    {"blocked with space in front", 4, " test", 0, "' test'"},
	    {"blocked with space behind", 4, "test ", 0, "white space"},
	    {"long blocked", 4, long_value, 0, "1 to 256 bytes"},
	    {"too many blocked", 4, NULL, IDENTITY_MAX_BLOCKED + 1, "65 blocked values"},
	};
	struct meta *m = open_meta();
	for (size_t i = 0; i < TD_ARRAY_LEN(cases); i++) {
		struct identity_config c;
		identity_config_default(&c);
		switch (cases[i].kind) {
		case 0:
			c.limit[IDENTITY_EMAIL] = 0;
			break;
		case 1:
			c.priority[3] = IDENTITY_USER;
			break;
		case 2:
			c.priority[5] = IDENTITY_NCLASSES;
			break;
		case 3:
		case 4: {
			const char **list = cases[i].kind == 3 ? c.traits : c.blocked;
			size_t *n = cases[i].kind == 3 ? &c.ntraits : &c.nblocked;
			if (cases[i].count) {
				/* the struct holds at most the maximum: test the count
				 * through check only */
				*n = cases[i].count;
				for (size_t k = 0;
				     k < TD_MIN(cases[i].count, cases[i].kind == 3
								    ? IDENTITY_MAX_TRAITS
								    : IDENTITY_MAX_BLOCKED);
				     k++)
					list[k] = many[k];
			} else {
				list[0] = cases[i].value;
				*n = 1;
			}
			break;
		}
		}
		char err[512] = "";
		cr_assert_eq(meta_identity_check(&c, err, sizeof(err)), TD_EINVAL, "%s",
			     cases[i].name);
		cr_assert(strstr(err, cases[i].want), "%s: message '%s' lacks '%s'", cases[i].name,
			  err, cases[i].want);
		if (cases[i].count)
			continue; /* past the arrays: only check may see it */
		cr_assert_eq(meta_identity_set(m, &c, err, sizeof(err)), TD_EINVAL, "%s",
			     cases[i].name);
		assert_defaults(m);
	}
	meta_close(m);
}

Test(meta_identity, duplicates_are_refused)
{
	struct identity_config c;
	identity_config_default(&c);
	char err[512];
	c.traits[0] = "crm_id";
	c.traits[1] = "crm_id";
	c.ntraits = 2;
	cr_assert_eq(meta_identity_check(&c, err, sizeof(err)), TD_EINVAL);
	cr_assert(strstr(err, "'crm_id' is listed twice"), "%s", err);
	c.ntraits = 0;
	c.blocked[0] = "Test";
	c.blocked[1] = "tEST";
	c.nblocked = 2;
	cr_assert_eq(meta_identity_check(&c, err, sizeof(err)), TD_EINVAL);
	cr_assert(strstr(err, "'tEST' is listed twice"), "%s", err);
	/* trait names are exact: another case is another trait */
	c.nblocked = 0;
	c.traits[0] = "crm_id";
	c.traits[1] = "CRM_ID";
	c.ntraits = 2;
	cr_assert_eq(meta_identity_check(&c, err, sizeof(err)), 0, "%s", err);
}

Test(meta_identity, the_largest_configuration_is_accepted)
{
	static char names[IDENTITY_MAX_TRAITS][IDENTITY_MAX_TYPE + 1];
	static char values[IDENTITY_MAX_BLOCKED][IDENTITY_MAX_VALUE + 1];
	struct identity_config c;
	identity_config_default(&c);
	for (int i = 0; i < IDENTITY_NCLASSES; i++)
		c.limit[i] = 255;
	for (size_t i = 0; i < IDENTITY_MAX_TRAITS; i++) {
		memset(names[i], 'a' + (int)i, IDENTITY_MAX_TYPE);
		c.traits[i] = names[i];
	}
	c.ntraits = IDENTITY_MAX_TRAITS;
	for (size_t i = 0; i < IDENTITY_MAX_BLOCKED; i++) {
		memset(values[i], 'v', IDENTITY_MAX_VALUE);
		snprintf(values[i], 8, "%03zu", i);
		values[i][3] = 'v';
		c.blocked[i] = values[i];
	}
	c.nblocked = IDENTITY_MAX_BLOCKED;
	struct meta *m = open_meta();
	char err[512] = "";
	cr_assert_eq(meta_identity_set(m, &c, err, sizeof(err)), 0, "%s", err);
	meta_close(m);
	m = open_meta();
	struct meta_identity got;
	cr_assert_eq(meta_identity_get(m, &got, err, sizeof(err)), 0, "%s", err);
	assert_same_config(&got.cfg, &c);
	meta_close(m);
}

Test(meta_identity, a_partial_document_has_defaults_for_the_rest)
{
	meta_close(open_meta());
	mtest_sql(dbpath, "INSERT INTO settings(name, value, updated_at) VALUES('identity', "
			  "'{\"traits\":[\"crm_id\"],\"limits\":{\"user_id\":3}}', 0)");
	struct meta *m = open_meta();
	struct meta_identity got;
	char err[512];
	cr_assert_eq(meta_identity_get(m, &got, err, sizeof(err)), 0, "%s", err);
	cr_assert(got.stored);
	struct identity_config want;
	identity_config_default(&want);
	want.limit[IDENTITY_USER] = 3;
	want.traits[0] = "crm_id";
	want.ntraits = 1;
	assert_same_config(&got.cfg, &want);
	meta_close(m);
}

Test(meta_identity, a_hand_edited_bad_document_is_reported)
{
	static const char *const bad[] = {
	    "not json",
	    "[1]",
	    "{\"limts\":{}}",
	    "{\"limits\":{\"user_id\":0}}",
	    "{\"limits\":{\"user_id\":1.5}}",
	    "{\"limits\":{\"users\":2}}",
	    "{\"priority\":[\"user_id\",\"email\"]}",
	    "{\"priority\":[\"user_id\",\"user_id\",\"phone\",\"external\",\"trait\","
	    "\"anonymous_id\"]}",
	    "{\"traits\":\"crm_id\"}",
	    "{\"traits\":[\"crm.id\"]}",
	    "{\"blocked\":[1]}",
	};
	meta_close(open_meta());
	for (size_t i = 0; i < TD_ARRAY_LEN(bad); i++) {
		char sql[512];
		sqlite3 *db;
		cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
		sqlite3_stmt *st;
		snprintf(sql, sizeof(sql),
			 "INSERT OR REPLACE INTO settings(name, value, updated_at) "
			 "VALUES('identity', ?1, 0)");
		cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
		sqlite3_bind_text(st, 1, bad[i], -1, SQLITE_STATIC);
		cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
		sqlite3_finalize(st);
		sqlite3_close(db);

		struct meta *m = open_meta();
		struct meta_identity got;
		char err[512] = "";
		cr_assert_eq(meta_identity_get(m, &got, err, sizeof(err)), TD_ECORRUPT, "%s",
			     bad[i]);
		cr_assert(strstr(err, "tandem identity config"), "%s: %s", bad[i], err);
		cr_assert_not(got.stored);
		/* a reset repairs it */
		cr_assert_eq(meta_identity_reset(m), 0);
		assert_defaults(m);
		meta_close(m);
	}
}

/* A meta.db written by a build with schema version 1 gains the settings
 * table and keeps its rows. */
Test(meta_identity, version_1_is_migrated)
{
	mtest_sql(dbpath,
		  "CREATE TABLE sources(id INTEGER PRIMARY KEY AUTOINCREMENT,"
		  " name TEXT UNIQUE NOT NULL, write_key TEXT UNIQUE NOT NULL,"
		  " enabled INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL);"
		  "CREATE TABLE tokens(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,"
		  " role TEXT NOT NULL, sha256 TEXT UNIQUE NOT NULL, created_at INTEGER NOT NULL,"
		  " revoked_at INTEGER);"
		  "INSERT INTO sources(name, write_key, created_at)"
		  " VALUES('web', 'wk_0123456789abcdef0123456789abcdef', 1);"
		  "PRAGMA user_version = 1;");
	chmod(dbpath, 0600);
	struct meta *m = open_meta();
	cr_assert_eq(mtest_int(dbpath, "PRAGMA user_version"), 4);
	struct meta_source src;
	cr_assert_eq(meta_source_by_name(m, "web", &src), 0);
	cr_assert_str_eq(src.write_key, "wk_0123456789abcdef0123456789abcdef");
	assert_defaults(m);
	struct identity_config c;
	sample(&c);
	char err[512];
	cr_assert_eq(meta_identity_set(m, &c, err, sizeof(err)), 0, "%s", err);
	meta_close(m);
	/* and opening it again migrates nothing twice */
	m = open_meta();
	struct meta_identity got;
	cr_assert_eq(meta_identity_get(m, &got, err, sizeof(err)), 0, "%s", err);
	assert_same_config(&got.cfg, &c);
	meta_close(m);
}
