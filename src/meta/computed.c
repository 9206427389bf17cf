/*
 * computed.c - computed trait definitions in meta.db (table computed_traits,
 * schema in meta.c): name -> the JSON definition, which src/profile
 * validates before it is stored and evaluates on every profile read.
 */
#include "base/log.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "meta/meta_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPUTED_MAX 100 /* definitions at once (PROFILE_MAX_COMPUTED) */

static int fail(sqlite3 *db, const char *what)
{
	td_log_error("meta: %s: %s", what, sqlite3_errmsg(db));
	return TD_EDB;
}

struct put_ctx {
	const char *name, *definition;
};

static int do_put(sqlite3 *db, void *arg)
{
	struct put_ctx *c = arg;
	sqlite3_stmt *st = NULL;
	int rc = 0, count = 0;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM computed_traits WHERE name <> ?1", -1, &st,
			       NULL) != SQLITE_OK)
		return fail(db, "count computed traits");
	sqlite3_bind_text(st, 1, c->name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		count = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (count >= COMPUTED_MAX)
		return TD_EFULL;
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO computed_traits(name, definition, updated_at) "
			       "VALUES(?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET "
			       "definition = excluded.definition, updated_at = excluded.updated_at",
			       -1, &st, NULL) != SQLITE_OK)
		return fail(db, "store a computed trait");
	sqlite3_bind_text(st, 1, c->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->definition, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, td_now_ms());
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = fail(db, "store a computed trait");
	sqlite3_finalize(st);
	return rc;
}

int meta_computed_put(struct meta *m, const char *name, const char *definition)
{
	struct put_ctx c = {name, definition};
	return meta_with_db(m, do_put, &c);
}

static int do_delete(sqlite3 *db, void *arg)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "DELETE FROM computed_traits WHERE name = ?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return fail(db, "delete a computed trait");
	sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : fail(db, "delete a computed trait");
	if (!rc && sqlite3_changes(db) == 0)
		rc = TD_ENOTFOUND;
	sqlite3_finalize(st);
	return rc;
}

int meta_computed_delete(struct meta *m, const char *name)
{
	return meta_with_db(m, do_delete, (void *)name);
}

struct list_ctx {
	struct meta_computed *l;
	size_t n;
};

static int do_list(sqlite3 *db, void *arg)
{
	struct list_ctx *c = arg;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db,
			       "SELECT name, definition, updated_at FROM computed_traits ORDER BY "
			       "name",
			       -1, &st, NULL) != SQLITE_OK)
		return fail(db, "list computed traits");
	int rc = 0, s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		c->l = td_realloc(c->l, (c->n + 1) * sizeof(*c->l));
		struct meta_computed *e = &c->l[c->n++];
		memset(e, 0, sizeof(*e));
		snprintf(e->name, sizeof(e->name), "%s", (const char *)sqlite3_column_text(st, 0));
		e->definition = td_strdup((const char *)sqlite3_column_text(st, 1));
		e->updated_ms = sqlite3_column_int64(st, 2);
	}
	if (s != SQLITE_DONE)
		rc = fail(db, "list computed traits");
	sqlite3_finalize(st);
	return rc;
}

int meta_computed_list(struct meta *m, struct meta_computed **out, size_t *n)
{
	struct list_ctx c = {NULL, 0};
	int rc = meta_with_db(m, do_list, &c);
	if (rc) {
		meta_computed_list_free(c.l, c.n);
		c.l = NULL;
		c.n = 0;
	}
	*out = c.l;
	*n = c.n;
	return rc;
}

void meta_computed_list_free(struct meta_computed *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i].definition);
	free(l);
}
