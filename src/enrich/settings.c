/*
 * settings.c - the enrichment configuration in meta.db: the JSON document
 * of enrich.h stored as the row name = 'enrich' of the settings table (the
 * table and schema belong to src/meta; this file only reads and writes its
 * own row, through meta_with_db, so the schema version is untouched).
 */
#include "enrich/enrich_int.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "meta/meta_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct op {
	const char *json; /* put: the document; NULL: delete */
	char *out;	  /* get: the stored document, malloc'd */
	bool get;
};

static int run(sqlite3 *db, void *ctx)
{
	struct op *op = ctx;
	const char *sql = op->get    ? "SELECT value FROM settings WHERE name = ?1"
			  : op->json ? "INSERT INTO settings(name, value, updated_at) "
				       "VALUES(?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET "
				       "value = excluded.value, updated_at = excluded.updated_at"
				     : "DELETE FROM settings WHERE name = ?1";
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return TD_EDB;
	sqlite3_bind_text(st, 1, ENRICH_SETTING, -1, SQLITE_STATIC);
	if (op->json && !op->get) {
		sqlite3_bind_text(st, 2, op->json, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, td_now_ms());
	}
	int s = sqlite3_step(st), rc = 0;
	if (op->get && s == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(st, 0);
		op->out = td_strdup(v ? (const char *)v : "");
	} else if (s != SQLITE_DONE) {
		rc = TD_EDB;
	}
	sqlite3_finalize(st);
	return rc;
}

int enrich_settings_get(struct meta *m, char **json)
{
	struct op op = {.get = true};
	int rc = meta_with_db(m, run, &op);
	*json = op.out;
	return rc;
}

int enrich_settings_put(struct meta *m, const char *json)
{
	struct op op = {.json = json};
	return meta_with_db(m, run, &op);
}

int enrich_load(struct enrich **out, struct meta *m, const char *data_dir, char *err, size_t errcap)
{
	char *json = NULL;
	*out = NULL;
	int rc = enrich_settings_get(m, &json);
	if (rc) {
		snprintf(err, errcap, "cannot read the enrichment settings from meta.db");
		return rc;
	}
	rc = enrich_new(out, json, data_dir, err, errcap);
	free(json);
	return rc;
}
