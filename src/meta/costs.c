/*
 * costs.c - advertising costs in meta.db (table costs, schema in meta.c):
 * the readers of `tandem import costs FILE.csv` and POST /api/costs (CSV or
 * JSON rows, each row validated on its own so that one bad line costs only
 * itself), and the table's writes and reads. docs/attribution.md, "Costs",
 * is the user's side of it.
 */
#include "base/log.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "meta/meta_int.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

enum { C_DATE, C_SOURCE, C_MEDIUM, C_CAMPAIGN, C_COST, C_CURRENCY, C_COUNT };
static const char *const col_names[C_COUNT] = {"date",	   "source", "medium",
					       "campaign", "cost",   "currency"};

void meta_cost_batch_init(struct meta_cost_batch *b)
{
	memset(b, 0, sizeof(*b));
}

void meta_cost_batch_release(struct meta_cost_batch *b)
{
	for (size_t i = 0; i < b->nerrors; i++)
		free(b->errors[i]);
	free(b->errors);
	free(b->rows);
	meta_cost_batch_init(b);
}

static void reject(struct meta_cost_batch *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void reject(struct meta_cost_batch *b, const char *fmt, ...)
{
	b->rejected++;
	if (b->nerrors >= META_COST_ERRORS)
		return;
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!b->errors)
		b->errors = td_calloc(META_COST_ERRORS, sizeof(char *));
	b->errors[b->nerrors++] = td_strdup(msg);
}

bool meta_cost_date_valid(const char *s)
{
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
			return false;
	unsigned y =
	    (unsigned)((s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0'));
	unsigned m = (unsigned)((s[5] - '0') * 10 + (s[6] - '0'));
	unsigned d = (unsigned)((s[8] - '0') * 10 + (s[9] - '0'));
	static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (y < 1970 || m < 1 || m > 12 || d < 1)
		return false;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return d <= mdays[m - 1] + (m == 2 && leap);
}

/* Validates one row's six texts (NULL: missing) into *out; false after
 * rejecting it with the reason. where: "line 3" or "rows[2]". */
static bool check_row(struct meta_cost_batch *b, const char *where, const char *const *v,
		      struct meta_cost *out)
{
	memset(out, 0, sizeof(*out));
	const char *date = v[C_DATE] ? v[C_DATE] : "";
	if (!meta_cost_date_valid(date)) {
		reject(b,
		       "%s: date \"%.40s\" is not a calendar date; write it as YYYY-MM-DD "
		       "(2024-03-01)",
		       where, date);
		return false;
	}
	memcpy(out->date, date, 11);
	char *dst[3] = {out->source, out->medium, out->campaign};
	bool any = false;
	for (int k = C_SOURCE; k <= C_CAMPAIGN; k++) {
		const char *s = v[k] ? v[k] : "";
		if (strlen(s) >= META_COST_FIELD) {
			reject(b, "%s: %s is %zu bytes long; at most %d", where, col_names[k],
			       strlen(s), META_COST_FIELD - 1);
			return false;
		}
		for (const char *p = s; *p; p++)
			if ((unsigned char)*p < 0x20) {
				reject(b, "%s: %s holds a control character; remove it", where,
				       col_names[k]);
				return false;
			}
		snprintf(dst[k - C_SOURCE], META_COST_FIELD, "%s", s);
		any |= *s != 0;
	}
	if (!any) {
		reject(b,
		       "%s: source, medium and campaign are all empty; a cost belongs to at "
		       "least one of them (utm_source, utm_medium, utm_campaign of the ads)",
		       where);
		return false;
	}
	const char *cost = v[C_COST] ? v[C_COST] : "";
	char *end = NULL;
	double c = *cost ? strtod(cost, &end) : NAN;
	if (!*cost || *end || !isfinite(c) || c < 0) {
		if (*cost && strchr(cost, ',') && !strchr(cost, '.'))
			reject(b,
			       "%s: cost \"%.40s\" is not a number; use a dot as the decimal "
			       "separator (12.50)",
			       where, cost);
		else
			reject(b,
			       "%s: cost \"%.40s\" is not a number of 0 or more; write the "
			       "amount alone, without a currency sign (1250.75)",
			       where, cost);
		return false;
	}
	out->cost = c;
	const char *cur = v[C_CURRENCY] ? v[C_CURRENCY] : "";
	bool ok = strlen(cur) == 3;
	for (int i = 0; ok && i < 3; i++)
		ok = isalpha((unsigned char)cur[i]);
	if (!ok) {
		reject(b, "%s: currency \"%.40s\" is not a 3-letter ISO 4217 code (EUR, USD)",
		       where, cur);
		return false;
	}
	for (int i = 0; i < 3; i++)
		out->currency[i] = (char)toupper((unsigned char)cur[i]);
	return true;
}

static int cmp_key(const struct meta_cost *a, const struct meta_cost *b)
{
	int c = strcmp(a->date, b->date);
	if (!c)
		c = strcmp(a->source, b->source);
	if (!c)
		c = strcmp(a->medium, b->medium);
	if (!c)
		c = strcmp(a->campaign, b->campaign);
	return c;
}

static int cmp_row(const void *x, const void *y)
{
	const struct meta_cost *a = *(const struct meta_cost *const *)x,
			       *b = *(const struct meta_cost *const *)y;
	int c = cmp_key(a, b);
	return c ? c : (a > b) - (a < b); /* stable: later lines after earlier ones */
}

/* A key given twice keeps its last row, as importing it twice would. */
static void dedupe(struct meta_cost_batch *b)
{
	if (b->n < 2)
		return;
	const struct meta_cost **by = td_malloc(b->n * sizeof(*by));
	for (size_t i = 0; i < b->n; i++)
		by[i] = &b->rows[i];
	qsort(by, b->n, sizeof(*by), cmp_row);
	struct meta_cost *out = td_malloc(b->n * sizeof(*out));
	size_t k = 0;
	for (size_t i = 0; i < b->n; i++)
		if (i + 1 == b->n || cmp_key(by[i], by[i + 1]) != 0)
			out[k++] = *by[i];
	free(by);
	free(b->rows);
	b->rows = out;
	b->n = b->cap = k;
}

static void keep(struct meta_cost_batch *b, const struct meta_cost *r)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->rows = td_realloc(b->rows, b->cap * sizeof(*b->rows));
	}
	b->rows[b->n++] = *r;
}

/* ---- CSV ------------------------------------------------------------ */

/* One CSV record (RFC 4180) from *p: fields into f (at most nf; more are
 * counted in *count), their text in buf (cap bytes, each NUL-terminated).
 * Advances *p past the record and *line past its line breaks. Returns
 * false with *why set on a malformed record (skipped to its end). */
static bool csv_record(const char **p, const char *end, size_t *line, char *buf, size_t cap,
		       const char **f, int nf, int *count, const char **why)
{
	size_t at = 0;
	int k = 0;
	bool ok = true;
	*why = NULL;
	for (;;) {
		bool quoted = *p < end && **p == '"';
		size_t start = at;
		if (quoted) {
			(*p)++;
			for (;;) {
				if (*p >= end) {
					ok = false;
					*why = "a quoted field is not closed (a \" is missing)";
					break;
				}
				char c = *(*p)++;
				if (c == '"') {
					if (*p < end && **p == '"')
						(*p)++;
					else
						break;
				} else if (c == '\n') {
					(*line)++;
				}
				if (at + 1 < cap)
					buf[at++] = c;
			}
			if (ok && *p < end && **p != ',' && **p != '\n' && **p != '\r') {
				ok = false;
				*why = "text follows a closing quote; double a \" inside a quoted "
				       "field (\"\")";
			}
		}
		while (*p < end && **p != ',' && **p != '\n') {
			char c = *(*p)++;
			if (!quoted && c != '\r' && at + 1 < cap)
				buf[at++] = c;
		}
		buf[at++] = '\0';
		if (k < nf)
			f[k] = buf + start;
		k++;
		if (*p >= end)
			break;
		char c = *(*p)++;
		if (c == '\n') {
			(*line)++;
			break;
		}
	}
	*count = k;
	return ok;
}

static void trim(char *s)
{
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	size_t i = 0;
	while (s[i] && isspace((unsigned char)s[i]))
		i++;
	memmove(s, s + i, n - i + 1);
}

int meta_costs_parse_csv(const char *text, size_t len, struct meta_cost_batch *b, char *err,
			 size_t errcap)
{
	const char *p = text, *end = text + len;
	if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
		p += 3; /* a UTF-8 byte order mark, as spreadsheets write */
	size_t line = 1;
	char buf[4096];
	const char *f[C_COUNT + 1];
	int count;
	const char *why;
	while (p < end && (*p == '\n' || *p == '\r'))
		line += *p++ == '\n';
	if (p >= end) {
		snprintf(err, errcap,
			 "the CSV is empty; its first line must be the header "
			 "date,source,medium,campaign,cost,currency");
		return TD_EINVAL;
	}
	if (!csv_record(&p, end, &line, buf, sizeof(buf), f, C_COUNT + 1, &count, &why)) {
		snprintf(err, errcap, "line 1: %s", why);
		return TD_EINVAL;
	}
	int map[C_COUNT]; /* column of each field */
	for (int k = 0; k < C_COUNT; k++)
		map[k] = -1;
	if (count > C_COUNT) {
		snprintf(
		    err, errcap,
		    "line 1: the header has %d columns; it names the six columns date, source, "
		    "medium, campaign, cost, currency (in any order, each once)",
		    count);
		return TD_EINVAL;
	}
	for (int i = 0; i < count; i++) {
		char *h = (char *)f[i];
		trim(h);
		int k = -1;
		for (int j = 0; j < C_COUNT; j++)
			if (!strcasecmp(h, col_names[j]))
				k = j;
		if (k < 0 || map[k] >= 0) {
			snprintf(
			    err, errcap,
			    "line 1: %s column \"%.60s\"; the header names the columns date, "
			    "source, medium, campaign, cost, currency (in any order, each once)",
			    k < 0 ? "unknown" : "a second", h);
			return TD_EINVAL;
		}
		map[k] = i;
	}
	for (int k = 0; k < C_COUNT; k++)
		if (map[k] < 0) {
			snprintf(err, errcap,
				 "line 1: the header lacks the column %s (the header is "
				 "date,source,medium,campaign,cost,currency)",
				 col_names[k]);
			return TD_EINVAL;
		}
	while (p < end) {
		size_t at = line;
		if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n')) {
			p += *p == '\r' ? 2 : 1; /* empty lines are skipped */
			line++;
			continue;
		}
		if (++b->lines > META_COST_ROWS) {
			snprintf(err, errcap, "more than %d lines; split the file", META_COST_ROWS);
			return TD_EINVAL;
		}
		char where[32];
		snprintf(where, sizeof(where), "line %zu", at);
		bool ok =
		    csv_record(&p, end, &line, buf, sizeof(buf), f, C_COUNT + 1, &count, &why);
		if (!ok) {
			reject(b, "%s: %s", where, why);
			continue;
		}
		if (count != C_COUNT) {
			reject(b,
			       "%s: %d fields, the header has %d; a comma inside a value splits "
			       "it: quote the value (\"Spring, 2024\") and write amounts with a "
			       "decimal dot (12.50)",
			       where, count, C_COUNT);
			continue;
		}
		const char *v[C_COUNT];
		for (int k = 0; k < C_COUNT; k++) {
			trim((char *)f[map[k]]);
			v[k] = f[map[k]];
		}
		struct meta_cost r;
		if (check_row(b, where, v, &r))
			keep(b, &r);
	}
	dedupe(b);
	return 0;
}

/* ---- JSON ----------------------------------------------------------- */

int meta_costs_parse_json(const char *text, size_t len, struct meta_cost_batch *b, char *err,
			  size_t errcap)
{
	cJSON *root = cJSON_ParseWithLength(text, len);
	const cJSON *arr = root;
	if (cJSON_IsObject(root))
		arr = cJSON_GetObjectItemCaseSensitive(root, "rows");
	if (!cJSON_IsArray(arr)) {
		snprintf(err, errcap,
			 "%s; send an array of rows {\"date\", \"source\", \"medium\", "
			 "\"campaign\", \"cost\", \"currency\"} (or {\"rows\": [...]}), or CSV "
			 "with Content-Type: text/csv",
			 root ? "the JSON is not an array of rows" : "the body is not valid JSON");
		cJSON_Delete(root);
		return TD_EINVAL;
	}
	if (cJSON_GetArraySize(arr) > META_COST_ROWS) {
		snprintf(err, errcap, "more than %d rows; send them in parts", META_COST_ROWS);
		cJSON_Delete(root);
		return TD_EINVAL;
	}
	const cJSON *it;
	cJSON_ArrayForEach(it, arr)
	{
		b->lines++;
		char where[32];
		snprintf(where, sizeof(where), "row %zu", b->lines);
		if (!cJSON_IsObject(it)) {
			reject(b, "%s: must be an object", where);
			continue;
		}
		const char *v[C_COUNT] = {NULL};
		char num[64];
		bool bad = false;
		for (const cJSON *f = it->child; f && !bad; f = f->next) {
			int k = -1;
			for (int j = 0; j < C_COUNT; j++)
				if (f->string && !strcmp(f->string, col_names[j]))
					k = j;
			if (k < 0) {
				reject(
				    b,
				    "%s: unknown field \"%.40s\" (expected date, source, medium, "
				    "campaign, cost, currency)",
				    where, f->string ? f->string : "");
				bad = true;
			} else if (k == C_COST && cJSON_IsNumber(f)) {
				snprintf(num, sizeof(num), "%.17g", f->valuedouble);
				v[k] = num;
			} else if (cJSON_IsString(f)) {
				v[k] = f->valuestring;
			} else if (!cJSON_IsNull(f)) {
				reject(b, "%s: %s must be a %s", where, col_names[k],
				       k == C_COST ? "number" : "string");
				bad = true;
			}
		}
		struct meta_cost r;
		if (!bad && check_row(b, where, v, &r))
			keep(b, &r);
	}
	cJSON_Delete(root);
	dedupe(b);
	return 0;
}

/* ---- the table ------------------------------------------------------ */

static int fail(sqlite3 *db, const char *what)
{
	td_log_error("meta: %s: %s", what, sqlite3_errmsg(db));
	return TD_EDB;
}

struct put_ctx {
	const struct meta_cost *rows;
	size_t n;
};

static int do_put(sqlite3 *db, void *arg)
{
	struct put_ctx *c = arg;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return fail(db, "store costs");
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO costs(date, source, medium, campaign, cost, currency, "
			       "updated_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(date, "
			       "source, medium, campaign) DO UPDATE SET cost = excluded.cost, "
			       "currency = excluded.currency, updated_at = excluded.updated_at",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = fail(db, "store costs");
		goto out;
	}
	int64_t now = td_now_ms();
	for (size_t i = 0; i < c->n && !rc; i++) {
		const struct meta_cost *r = &c->rows[i];
		sqlite3_bind_text(st, 1, r->date, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, r->source, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, r->medium, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, r->campaign, -1, SQLITE_STATIC);
		sqlite3_bind_double(st, 5, r->cost);
		sqlite3_bind_text(st, 6, r->currency, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 7, now);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = fail(db, "store costs");
		sqlite3_reset(st);
	}
out:
	sqlite3_finalize(st);
	if (sqlite3_exec(db, rc ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL) != SQLITE_OK && !rc)
		rc = fail(db, "commit costs");
	return rc;
}

int meta_costs_put(struct meta *m, const struct meta_cost *rows, size_t n)
{
	struct put_ctx c = {rows, n};
	return meta_with_db(m, do_put, &c);
}

struct list_ctx {
	const char *first, *last;
	struct meta_cost *l;
	size_t n;
};

static int do_list(sqlite3 *db, void *arg)
{
	struct list_ctx *c = arg;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db,
			       "SELECT date, source, medium, campaign, cost, currency FROM costs "
			       "WHERE (?1 IS NULL OR date >= ?1) AND (?2 IS NULL OR date <= ?2) "
			       "ORDER BY date, source, medium, campaign",
			       -1, &st, NULL) != SQLITE_OK)
		return fail(db, "read costs");
	if (c->first)
		sqlite3_bind_text(st, 1, c->first, -1, SQLITE_STATIC);
	if (c->last)
		sqlite3_bind_text(st, 2, c->last, -1, SQLITE_STATIC);
	int rc = 0, s;
	size_t cap = 0;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if (c->n == cap) {
			cap = cap ? cap * 2 : 64;
			c->l = td_realloc(c->l, cap * sizeof(*c->l));
		}
		struct meta_cost *e = &c->l[c->n++];
		memset(e, 0, sizeof(*e));
		snprintf(e->date, sizeof(e->date), "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(e->source, sizeof(e->source), "%s",
			 (const char *)sqlite3_column_text(st, 1));
		snprintf(e->medium, sizeof(e->medium), "%s",
			 (const char *)sqlite3_column_text(st, 2));
		snprintf(e->campaign, sizeof(e->campaign), "%s",
			 (const char *)sqlite3_column_text(st, 3));
		e->cost = sqlite3_column_double(st, 4);
		snprintf(e->currency, sizeof(e->currency), "%s",
			 (const char *)sqlite3_column_text(st, 5));
	}
	if (s != SQLITE_DONE)
		rc = fail(db, "read costs");
	sqlite3_finalize(st);
	return rc;
}

int meta_costs_list(struct meta *m, const char *first_day, const char *last_day,
		    struct meta_cost **out, size_t *n)
{
	struct list_ctx c = {first_day, last_day, NULL, 0};
	int rc = meta_with_db(m, do_list, &c);
	if (rc) {
		free(c.l);
		c.l = NULL;
		c.n = 0;
	} else if (!c.l) {
		c.l = td_malloc(sizeof(*c.l));
	}
	*out = c.l;
	*n = c.n;
	return rc;
}

/* ---- the query engine's view ---------------------------------------- */

/* What load() hands out: the engine's rows, pointing into the meta rows. */
struct cost_block {
	struct meta_cost *l;
	struct query_cost q[];
};

static int query_load(void *ctx, const char *first_day, const char *last_day,
		      struct query_cost **out, size_t *n, char *err, size_t errcap)
{
	struct meta_cost *l;
	size_t k;
	int rc = meta_costs_list(ctx, first_day, last_day, &l, &k);
	if (rc) {
		snprintf(err, errcap, "meta.db: %s", td_strerror(rc));
		return rc;
	}
	struct cost_block *b = td_malloc(sizeof(*b) + (k ? k : 1) * sizeof(struct query_cost));
	b->l = l;
	for (size_t i = 0; i < k; i++) {
		struct query_cost *q = &b->q[i];
		memcpy(q->date, l[i].date, sizeof(q->date));
		q->source = l[i].source;
		q->medium = l[i].medium;
		q->campaign = l[i].campaign;
		q->currency = l[i].currency;
		q->cost = l[i].cost;
	}
	*out = b->q;
	*n = k;
	return 0;
}

static void query_release(void *ctx, struct query_cost *rows, size_t n)
{
	(void)ctx;
	(void)n;
	struct cost_block *b =
	    (struct cost_block *)(void *)((char *)rows - offsetof(struct cost_block, q));
	free(b->l);
	free(b);
}

void meta_costs_query_source(struct meta *m, struct query_costs *out)
{
	out->ctx = m;
	out->load = query_load;
	out->release = query_release;
}
