/*
 * profile.c - a profile computed from the person's events (profile.h).
 */
#include "profile/profile.h"
#include "profile/profile_int.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "identity/identity.h"
#include "store/store.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- traits: name -> latest value, first seen, updated ------------------ */

struct trait {
	char *name;
	struct store_value v;
	char *str; /* owned copy of v.str */
	int64_t first, updated;
};

struct traits {
	struct trait *t;
	size_t n, cap;
};

static void trait_set(struct traits *ts, const char *name, const struct store_value *v, int64_t at)
{
	struct trait *t = NULL;
	for (size_t i = 0; i < ts->n && !t; i++)
		if (!strcmp(ts->t[i].name, name))
			t = &ts->t[i];
	if (!t) {
		if (ts->n == ts->cap) {
			ts->cap = ts->cap ? ts->cap * 2 : 16;
			ts->t = td_realloc(ts->t, ts->cap * sizeof(*ts->t));
		}
		t = &ts->t[ts->n++];
		memset(t, 0, sizeof(*t));
		t->name = td_strdup(name);
		t->first = at;
	}
	free(t->str);
	t->v = *v;
	t->str = v->kind == QCOL_STRING ? td_strdup(v->str) : NULL;
	t->v.str = t->str;
	t->updated = at;
}

static void traits_release(struct traits *ts)
{
	for (size_t i = 0; i < ts->n; i++) {
		free(ts->t[i].name);
		free(ts->t[i].str);
	}
	free(ts->t);
	memset(ts, 0, sizeof(*ts));
}

struct trait_ctx {
	struct traits *ts;
	int64_t at;
	size_t skip; /* prefix length to drop from paths */
};

static void on_trait(void *ctx, const char *path, const struct store_value *v)
{
	struct trait_ctx *c = ctx;
	trait_set(c->ts, path + c->skip, v, c->at);
}

/* Scalars of a JSON object, as dotted paths under prefix. */
static void json_traits(struct traits *ts, const cJSON *o, char *path, size_t plen, size_t cap,
			int64_t at, int depth)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, o)
	{
		size_t kl = strlen(e->string);
		if (plen + kl + 2 > cap || depth > 8)
			continue;
		size_t l = plen;
		if (l)
			path[l++] = '.';
		memcpy(path + l, e->string, kl + 1);
		struct store_value v = {0};
		if (cJSON_IsObject(e)) {
			json_traits(ts, e, path, l + kl, cap, at, depth + 1);
		} else if (cJSON_IsString(e)) {
			v.kind = QCOL_STRING;
			v.str = e->valuestring;
			trait_set(ts, path, &v, at);
		} else if (cJSON_IsNumber(e)) {
			v.kind = QCOL_NUMBER;
			v.num = e->valuedouble;
			trait_set(ts, path, &v, at);
		} else if (cJSON_IsBool(e)) {
			v.kind = QCOL_BOOL;
			v.b = cJSON_IsTrue(e);
			trait_set(ts, path, &v, at);
		}
		path[plen] = '\0';
	}
}

/* The traits of one identify / group row: its columns, or its message when
 * some traits are rare paths (not columns). */
static int row_traits(struct store_row_reader *rd, const struct store_row *r, struct traits *ts)
{
	int64_t at = store_row_ts(r);
	if (!store_row_has_rare(r, "traits.")) {
		struct trait_ctx c = {ts, at, 7};
		store_row_values(r, "traits.", on_trait, &c);
		return 0;
	}
	const char *json;
	size_t len;
	int rc = store_row_json(rd, r, &json, &len);
	if (rc)
		return rc;
	cJSON *doc = cJSON_ParseWithLength(json, len);
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "traits");
	char path[512] = "";
	if (cJSON_IsObject(t))
		json_traits(ts, t, path, 0, sizeof(path), at, 0);
	cJSON_Delete(doc);
	return 0;
}

/* ---- JSON output ---------------------------------------------------------- */

static void put_time(struct td_buf *o, int64_t ms)
{
	char t[40];
	td_time_format(ms, t);
	td_buf_printf(o, "\"%s\"", t);
}

void profile_put_value(struct td_buf *o, const struct store_value *v)
{
	if (v->kind == QCOL_STRING)
		td_buf_json_str(o, v->str);
	else if (v->kind == QCOL_BOOL)
		td_buf_printf(o, v->b ? "true" : "false");
	else if (isfinite(v->num))
		td_buf_printf(o, "%.17g", v->num);
	else
		td_buf_printf(o, "null");
}

static void put_traits(struct td_buf *o, const struct traits *ts)
{
	td_buf_putc(o, '{');
	for (size_t i = 0; i < ts->n; i++) {
		const struct trait *t = &ts->t[i];
		if (i)
			td_buf_putc(o, ',');
		td_buf_json_str(o, t->name);
		td_buf_printf(o, ":{\"value\":");
		profile_put_value(o, &t->v);
		td_buf_printf(o, ",\"first_seen\":");
		put_time(o, t->first);
		td_buf_printf(o, ",\"updated\":");
		put_time(o, t->updated);
		td_buf_putc(o, '}');
	}
	td_buf_putc(o, '}');
}

struct ids_ctx {
	struct td_buf *o;
	int n;
};

static void on_id(void *ctx, const char *type, const char *value, enum identity_class c)
{
	struct ids_ctx *x = ctx;
	td_buf_printf(x->o, "%s{\"type\":", x->n++ ? "," : "");
	td_buf_json_str(x->o, type);
	td_buf_printf(x->o, ",\"value\":");
	td_buf_json_str(x->o, value);
	td_buf_printf(x->o, ",\"class\":\"%s\"}", identity_class_name(c));
}

static void on_event(void *ctx, const struct identity_event *e)
{
	struct ids_ctx *x = ctx;
	struct td_buf *o = x->o;
	td_buf_printf(o, "%s{\"kind\":\"%s\",\"at\":", x->n++ ? "," : "",
		      e->kind == IDENTITY_EV_MERGE ? "merge" : "conflict");
	put_time(o, e->ts);
	td_buf_printf(o, ",\"lsn\":%llu,\"message_id\":", (unsigned long long)e->lsn);
	td_buf_json_str(o, e->message_id);
	td_buf_printf(o, ",\"kept\":");
	td_buf_json_str(o, e->kept);
	td_buf_printf(o, e->kind == IDENTITY_EV_MERGE ? ",\"merged\":" : ",\"left_out\":");
	td_buf_json_str(o, e->merged);
	if (e->kind == IDENTITY_EV_CONFLICT)
		td_buf_printf(o, ",\"limit\":\"%s\"", identity_class_name(e->cls));
	td_buf_putc(o, '}');
}

/* ---- the person's events --------------------------------------------------- */

static const char *type_of(const char *event)
{
	static const char *const t[] = {"$page",    "page",   "$screen", "screen", "$identify",
					"identify", "$group", "group",	 "$alias", "alias"};
	for (size_t i = 0; i < TD_ARRAY_LEN(t); i += 2)
		if (!strcmp(event, t[i]))
			return t[i + 1];
	return "track";
}

struct prop_ctx {
	struct td_buf *o;
	int n;
};

static void on_prop(void *ctx, const char *path, const struct store_value *v)
{
	struct prop_ctx *p = ctx;
	if (p->n++)
		td_buf_putc(p->o, ',');
	td_buf_json_str(p->o, path + 11); /* "properties." */
	td_buf_putc(p->o, ':');
	profile_put_value(p->o, v);
}

/* The row's session (docs/sessions.md) as "session":{"id":..,...}. */
static void on_session(void *ctx, const char *path, const struct store_value *v)
{
	struct prop_ctx *p = ctx;
	td_buf_printf(p->o, p->n++ ? "," : ",\"session\":{");
	td_buf_json_str(p->o, path + 8); /* "session." */
	td_buf_putc(p->o, ':');
	profile_put_value(p->o, v);
}

static int put_timeline(struct td_buf *o, struct store_row_reader *rd, const struct store_row *rows,
			size_t n, const struct profile_options *opt)
{
	size_t limit = opt->limit ? opt->limit : 20, shown = 0;
	size_t i = n;
	if (opt->before_ms) {
		while (i > 0 && store_row_ts(&rows[i - 1]) > opt->before_ms)
			i--;
		/* at the cursor's time: skip the ones the previous page showed */
		for (size_t k = 0;
		     i > 0 && store_row_ts(&rows[i - 1]) == opt->before_ms && k < opt->before_skip;
		     k++)
			i--;
	}
	td_buf_printf(o, "\"events\":{\"items\":[");
	for (; i > 0 && shown < limit; i--, shown++) {
		const struct store_row *r = &rows[i - 1];
		const char *ev = store_row_event(r);
		td_buf_printf(o, "%s{\"event\":", shown ? "," : "");
		td_buf_json_str(o, ev);
		td_buf_printf(o, ",\"type\":\"%s\",\"timestamp\":", type_of(ev));
		put_time(o, store_row_ts(r));
		td_buf_printf(o, ",\"properties\":{");
		struct prop_ctx pc = {o, 0};
		store_row_values(r, "properties.", on_prop, &pc);
		td_buf_putc(o, '}');
		struct prop_ctx sc = {o, 0};
		store_row_values(r, "session.", on_session, &sc);
		if (sc.n)
			td_buf_putc(o, '}');
		if (opt->raw) {
			const char *json;
			size_t len;
			int rc = store_row_json(rd, r, &json, &len);
			if (rc)
				return rc;
			td_buf_printf(o, ",\"message\":");
			td_buf_append(o, json, len);
		}
		td_buf_putc(o, '}');
	}
	td_buf_printf(o, "],\"next_before\":");
	if (i > 0) {
		/* the cursor: the oldest time shown and how many rows at that time
		 * this and the earlier pages showed (ties are never lost) */
		int64_t at = store_row_ts(&rows[i]);
		size_t same = 0;
		for (size_t k = i; k < n && store_row_ts(&rows[k]) == at; k++)
			same++;
		char t[40];
		td_time_format(at, t);
		td_buf_printf(o, "\"%s~%zu\"", t, same);
	} else {
		td_buf_printf(o, "null");
	}
	td_buf_putc(o, '}');
	return 0;
}

/* ---- accounts ----------------------------------------------------------------- */

/* The accounts of the person's own group calls, in order of the first call,
 * each with the traits those calls set (the account's traits from every
 * member are GET /api/accounts/{groupId}: a scan of every group call, too
 * slow for every profile read). */
static int put_accounts(struct td_buf *o, struct store_row_reader *rd, const struct store_row *rows,
			size_t n)
{
	char **ids = NULL;
	size_t nids = 0;
	for (size_t i = 0; i < n; i++) {
		struct store_value v;
		if (strcmp(store_row_event(&rows[i]), "$group") ||
		    !store_row_value(&rows[i], "groupId", &v) || v.kind != QCOL_STRING)
			continue;
		bool seen = false;
		for (size_t k = 0; k < nids && !seen; k++)
			seen = !strcmp(ids[k], v.str);
		if (!seen) {
			ids = td_realloc(ids, (nids + 1) * sizeof(*ids));
			ids[nids++] = td_strdup(v.str);
		}
	}
	int rc = 0;
	td_buf_printf(o, "\"accounts\":[");
	for (size_t k = 0; k < nids && !rc; k++) {
		struct traits ts = {0};
		size_t calls = 0;
		for (size_t i = 0; i < n && !rc; i++) {
			struct store_value v;
			if (strcmp(store_row_event(&rows[i]), "$group") ||
			    !store_row_value(&rows[i], "groupId", &v) || v.kind != QCOL_STRING ||
			    strcmp(v.str, ids[k]))
				continue;
			calls++;
			rc = row_traits(rd, &rows[i], &ts);
		}
		td_buf_printf(o, "%s{\"group_id\":", k ? "," : "");
		td_buf_json_str(o, ids[k]);
		td_buf_printf(o, ",\"traits\":");
		put_traits(o, &ts);
		td_buf_printf(o, ",\"group_calls\":%zu}", calls);
		traits_release(&ts);
	}
	td_buf_putc(o, ']');
	for (size_t k = 0; k < nids; k++)
		free(ids[k]);
	free(ids);
	return rc;
}

/* ---- the profile ------------------------------------------------------------------ */

static void computed(struct td_buf *o, const struct store_row *rows, size_t n,
		     const struct profile_options *opt)
{
	size_t orders = 0;
	double revenue = 0;
	const char *campaign = NULL;
	for (size_t i = 0; i < n; i++) {
		const struct store_row *r = &rows[i];
		struct store_value v;
		if (!strcmp(store_row_event(r), "Order Completed")) {
			orders++;
			if ((store_row_value(r, "properties.revenue", &v) ||
			     store_row_value(r, "properties.total", &v)) &&
			    v.kind == QCOL_NUMBER && isfinite(v.num))
				revenue += v.num;
		}
		if (store_row_value(r, "context.campaign.name", &v) && v.kind == QCOL_STRING)
			campaign = v.str;
	}
	td_buf_printf(o, "\"computed\":{\"first_seen\":");
	if (n)
		put_time(o, store_row_ts(&rows[0]));
	else
		td_buf_printf(o, "null");
	td_buf_printf(o, ",\"last_seen\":");
	if (n)
		put_time(o, store_row_ts(&rows[n - 1]));
	else
		td_buf_printf(o, "null");
	td_buf_printf(o,
		      ",\"event_count\":%zu,\"order_count\":%zu,\"lifetime_revenue\":%.17g,"
		      "\"last_campaign\":",
		      n, orders, revenue);
	if (campaign)
		td_buf_json_str(o, campaign);
	else
		td_buf_printf(o, "null");
	int64_t now = td_now_ms();
	for (size_t i = 0; i < opt->ncomputed; i++) {
		td_buf_putc(o, ',');
		td_buf_json_str(o, profile_computed_name(opt->computed[i]));
		td_buf_putc(o, ':');
		profile_computed_eval(opt->computed[i], rows, n, now, o);
	}
	td_buf_putc(o, '}');
}

/* "person:ID": a person id as queries print it (a merged one finds the
 * person it joined); IDENTITY_NONE unless ID is a decimal id handed out. */
static uint32_t person_by_id(struct identity *g, const char *id)
{
	uint64_t v = 0;
	if (!*id || strlen(id) > 10)
		return IDENTITY_NONE;
	for (const char *p = id; *p; p++) {
		if (*p < '0' || *p > '9')
			return IDENTITY_NONE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	return v < identity_npids(g) ? identity_canonical(g, (uint32_t)v) : IDENTITY_NONE;
}

int profile_get(struct store *s, const char *type, const char *value,
		const struct profile_options *opt, struct td_buf *out, char *err, size_t errcap)
{
	struct profile_options def = {0};
	if (!opt)
		opt = &def;
	if (opt->limit > PROFILE_MAX_LIMIT) {
		snprintf(err, errcap, "limit: at most %d events per page", PROFILE_MAX_LIMIT);
		return TD_EINVAL;
	}
	struct identity *g = store_identity(s);
	uint32_t person =
	    !strcmp(type, "person") ? person_by_id(g, value) : identity_find(g, type, value);
	if (person == IDENTITY_NONE) {
		snprintf(err, errcap, "no profile has the identifier %s:%s", type, value);
		return TD_ENOTFOUND;
	}
	struct store_snap *sn = store_snapshot(s);
	uint32_t *members;
	size_t nm = identity_person_members(g, person, &members);
	struct store_row *rows = NULL;
	size_t n = 0;
	int rc = store_snap_person_rows(sn, members, nm, PROFILE_MAX_ROWS, &rows, &n);
	bool truncated = rc == TD_ETOOLARGE;
	rc = truncated ? 0 : rc;
	struct store_row_reader *rd = store_row_reader_new();
	struct td_buf o;
	td_buf_init(&o, out->max);
	struct traits ts = {0};
	for (size_t i = 0; i < n && !rc; i++)
		if (!strcmp(store_row_event(&rows[i]), "$identify"))
			rc = row_traits(rd, &rows[i], &ts);
	if (!rc) {
		td_buf_printf(&o, "{\"person\":%u,\"identifiers\":[", person);
		struct ids_ctx x = {&o, 0};
		identity_person_ids(g, person, on_id, &x);
		td_buf_printf(&o, "],\"traits\":");
		put_traits(&o, &ts);
		td_buf_putc(&o, ',');
		computed(&o, rows, n, opt);
		td_buf_putc(&o, ',');
		rc = put_accounts(&o, rd, rows, n);
	}
	if (!rc) {
		td_buf_printf(&o, ",\"merges\":[");
		struct ids_ctx x = {&o, 0};
		identity_person_history(g, person, on_event, &x);
		td_buf_printf(&o, "],");
		rc = put_timeline(&o, rd, rows, n, opt);
	}
	if (!rc)
		td_buf_printf(&o, ",\"truncated\":%s}", truncated ? "true" : "false");
	if (!rc && (o.len > out->max - out->len || td_buf_append(out, o.data, o.len)))
		rc = TD_ETOOLARGE;
	if (rc && rc != TD_ETOOLARGE)
		snprintf(err, errcap, "reading the profile's events failed: %s", td_strerror(rc));
	else if (rc)
		snprintf(err, errcap, "the profile is larger than the response limit");
	td_buf_release(&o);
	traits_release(&ts);
	store_row_reader_free(rd);
	free(rows);
	free(members);
	store_snap_release(sn);
	return rc;
}

int profile_cursor_parse(const char *s, struct profile_options *o)
{
	const char *tilde = strchr(s, '~');
	size_t tl = tilde ? (size_t)(tilde - s) : strlen(s);
	if (td_time_parse(s, tl, &o->before_ms))
		return TD_EPARSE;
	o->before_skip = SIZE_MAX; /* a plain time: strictly older */
	if (tilde) {
		char *end;
		unsigned long long k = strtoull(tilde + 1, &end, 10);
		if (tilde[1] < '0' || tilde[1] > '9' || *end)
			return TD_EPARSE;
		o->before_skip = (size_t)k;
	}
	return 0;
}

/* ---- account profiles -------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int profile_account_get(struct store *s, const char *group_id, struct td_buf *out, char *err,
			size_t errcap)
{
	struct store_snap *sn = store_snapshot(s);
	struct store_row *rows = NULL;
	size_t n = 0;
	int rc =
	    store_snap_rows_where(sn, "$group", "groupId", group_id, PROFILE_MAX_ROWS, &rows, &n);
	bool truncated = rc == TD_ETOOLARGE;
	rc = truncated ? 0 : rc;
	if (!rc && n == 0) {
		snprintf(err, errcap, "no group call names the account %s", group_id);
		rc = TD_ENOTFOUND;
	}
	struct store_row_reader *rd = store_row_reader_new();
	struct traits ts = {0};
	for (size_t i = 0; i < n && !rc; i++)
		rc = row_traits(rd, &rows[i], &ts);
	struct td_buf o;
	td_buf_init(&o, out->max);
	if (!rc) {
		struct identity *g = store_identity(s);
		uint32_t *members = td_malloc((n ? n : 1) * sizeof(*members));
		for (size_t i = 0; i < n; i++)
			members[i] = identity_canonical(g, store_row_pid(&rows[i]));
		qsort(members, n, sizeof(*members), cmp_u32);
		size_t nm = 0;
		for (size_t i = 0; i < n; i++)
			if (members[i] != IDENTITY_NONE &&
			    (nm == 0 || members[nm - 1] != members[i]))
				members[nm++] = members[i];
		td_buf_printf(&o, "{\"group_id\":");
		td_buf_json_str(&o, group_id);
		td_buf_printf(&o, ",\"traits\":");
		put_traits(&o, &ts);
		td_buf_printf(&o, ",\"first_seen\":");
		put_time(&o, store_row_ts(&rows[0]));
		td_buf_printf(&o, ",\"last_seen\":");
		put_time(&o, store_row_ts(&rows[n - 1]));
		td_buf_printf(&o, ",\"group_calls\":%zu,\"members_total\":%zu,\"members\":[", n,
			      nm);
		for (size_t i = 0; i < nm && i < PROFILE_MAX_FIND; i++) {
			td_buf_printf(&o, "%s{\"person\":%u,\"identifiers\":[", i ? "," : "",
				      members[i]);
			struct ids_ctx x = {&o, 0};
			identity_person_ids(g, members[i], on_id, &x);
			td_buf_printf(&o, "]}");
		}
		td_buf_printf(&o, "],\"truncated\":%s}", truncated ? "true" : "false");
		free(members);
		if (o.len > out->max - out->len || td_buf_append(out, o.data, o.len)) {
			rc = TD_ETOOLARGE;
			snprintf(err, errcap, "the account is larger than the response limit");
		}
	} else if (rc != TD_ENOTFOUND) {
		snprintf(err, errcap, "reading the account's group calls failed: %s",
			 td_strerror(rc));
	}
	td_buf_release(&o);
	traits_release(&ts);
	store_row_reader_free(rd);
	free(rows);
	store_snap_release(sn);
	return rc;
}
