/*
 * computed.c - user-defined computed traits (profile.h): a definition is
 * compiled once and evaluated over a person's events, oldest first, each
 * time the profile is read, so it is always current and always covers the
 * whole history.
 *
 * Definition (JSON; docs/profiles.md):
 *   {"name": "orders_90d", "kind": "count", "event": "Order Completed",
 *    "filters": [...], "window_days": 90}
 *   kind: count | sum | avg | min | max (numbers of "property") | first |
 *         last | most_frequent | unique_values | unique_count (of "property")
 */
#include "base/log.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "meta/meta.h"
#include "profile/profile.h"
#include "profile/profile_int.h"
#include "query/query.h"
#include "store/store.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum ct_kind {
	CT_COUNT,
	CT_SUM,
	CT_AVG,
	CT_MIN,
	CT_MAX,
	CT_FIRST,
	CT_LAST,
	CT_MOST_FREQUENT,
	CT_UNIQUE_VALUES,
	CT_UNIQUE_COUNT,
};
static const char *const kind_names[] = {"count",	  "sum",	 "avg",	 "min",
					 "max",		  "first",	 "last", "most_frequent",
					 "unique_values", "unique_count"};

/* Names the built-in computed traits use. */
static const char *const reserved[] = {"first_seen",  "last_seen",	  "event_count",
				       "order_count", "lifetime_revenue", "last_campaign"};

#define CT_MAX_UNIQUE 100 /* values listed by unique_values */

struct profile_computed {
	char *name;
	enum ct_kind kind;
	char *event;	/* NULL = every event */
	char *property; /* NULL for count */
	struct query_filters *filters;
	int64_t window_ms; /* 0 = the whole history */
};

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > PROFILE_MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

int profile_computed_parse(const char *json, size_t len, struct profile_computed **out, char *err,
			   size_t errcap)
{
	*out = NULL;
	cJSON *d = cJSON_ParseWithLength(json, len);
	struct profile_computed *c = td_calloc(1, sizeof(*c));
	int rc = TD_EINVAL;
	if (!cJSON_IsObject(d)) {
		snprintf(err, errcap, "a computed trait is a JSON object (see docs/profiles.md)");
		goto out;
	}
	for (const cJSON *k = d->child; k; k = k->next)
		if (strcmp(k->string, "name") && strcmp(k->string, "kind") &&
		    strcmp(k->string, "event") && strcmp(k->string, "property") &&
		    strcmp(k->string, "filters") && strcmp(k->string, "window_days")) {
			snprintf(err, errcap,
				 "%s: unknown field (a computed trait has name, kind, event, "
				 "property, filters, window_days)",
				 k->string);
			goto out;
		}
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "name"));
	if (!name || !name_ok(name)) {
		snprintf(err, errcap,
			 "name: required, 1 to %d characters of a-z, 0-9 and _ (e.g. "
			 "\"orders_90d\")",
			 PROFILE_MAX_NAME);
		goto out;
	}
	for (size_t i = 0; i < TD_ARRAY_LEN(reserved); i++)
		if (!strcmp(name, reserved[i])) {
			snprintf(err, errcap,
				 "name: \"%s\" is a built-in computed trait; choose another", name);
			goto out;
		}
	c->name = td_strdup(name);
	const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "kind"));
	int found = -1;
	for (size_t i = 0; kind && i < TD_ARRAY_LEN(kind_names); i++)
		if (!strcmp(kind, kind_names[i]))
			found = (int)i;
	if (found < 0) {
		snprintf(err, errcap,
			 "kind: required, one of count, sum, avg, min, max, first, last, "
			 "most_frequent, unique_values, unique_count");
		goto out;
	}
	c->kind = (enum ct_kind)found;
	const cJSON *ev = cJSON_GetObjectItemCaseSensitive(d, "event");
	if (ev && !cJSON_IsString(ev)) {
		snprintf(err, errcap, "event: an event name (\"\" or absent: every event)");
		goto out;
	}
	if (ev && ev->valuestring[0])
		c->event = td_strdup(ev->valuestring);
	const cJSON *prop = cJSON_GetObjectItemCaseSensitive(d, "property");
	if (c->kind != CT_COUNT) {
		if (!cJSON_IsString(prop) || !prop->valuestring[0]) {
			snprintf(err, errcap,
				 "property: required for %s (a property path such as "
				 "\"properties.revenue\")",
				 kind_names[c->kind]);
			goto out;
		}
		c->property = td_strdup(prop->valuestring);
	} else if (prop) {
		snprintf(err, errcap, "property: count takes none (it counts events)");
		goto out;
	}
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(d, "filters");
	if (f) {
		char *text = cJSON_PrintUnformatted(f);
		rc = query_filters_compile(text, strlen(text), "filters", &c->filters, err, errcap);
		free(text);
		if (rc)
			goto out;
		rc = TD_EINVAL;
	}
	const cJSON *w = cJSON_GetObjectItemCaseSensitive(d, "window_days");
	if (w) {
		if (!cJSON_IsNumber(w) || w->valuedouble < 1 || w->valuedouble > 36500 ||
		    w->valuedouble != floor(w->valuedouble)) {
			snprintf(err, errcap,
				 "window_days: a whole number of days from 1 to 36500");
			goto out;
		}
		c->window_ms = (int64_t)w->valuedouble * 86400000;
	}
	rc = 0;
out:
	cJSON_Delete(d);
	if (rc)
		profile_computed_free(c);
	else
		*out = c;
	return rc;
}

void profile_computed_free(struct profile_computed *c)
{
	if (!c)
		return;
	free(c->name);
	free(c->event);
	free(c->property);
	query_filters_free(c->filters);
	free(c);
}

const char *profile_computed_name(const struct profile_computed *c)
{
	return c->name;
}

/* ---- evaluation ------------------------------------------------------------- */

/* A one-row column holding v, for the filters. */
static void one_row(const struct store_value *v, struct query_column *col, uint32_t *code,
		    const char **dict)
{
	memset(col, 0, sizeof(*col));
	col->kind = v->kind;
	*code = 0;
	dict[0] = v->str;
	col->code = code;
	col->dict = dict;
	col->ndict = 1;
	col->num = &v->num;
	static const uint8_t t = 1, f = 0;
	col->boolv = v->kind == QCOL_BOOL && v->b ? &t : &f;
}

static bool passes(const struct profile_computed *c, const struct store_row *r, int64_t from)
{
	if (c->event && strcmp(store_row_event(r), c->event))
		return false;
	if (c->window_ms && store_row_ts(r) < from)
		return false;
	for (size_t i = 0; i < query_filters_count(c->filters); i++) {
		struct store_value v;
		struct query_column col;
		uint32_t code;
		const char *dict[1];
		bool has = store_row_value(r, query_filters_path(c->filters, i), &v);
		if (has)
			one_row(&v, &col, &code, dict);
		if (!query_filters_match(c->filters, i, has ? &col : NULL, 0))
			return false;
	}
	return true;
}

/* A value as a distinct key: type letter + text. */
static void key_of(const struct store_value *v, char *out, size_t cap)
{
	if (v->kind == QCOL_STRING)
		snprintf(out, cap, "s%s", v->str);
	else if (v->kind == QCOL_NUMBER)
		snprintf(out, cap, "n%.17g", v->num);
	else
		snprintf(out, cap, "b%d", v->b);
}

struct distinct {
	struct {
		char *key;
		struct store_value v;
		size_t count;
		size_t last; /* index of its latest row, for ties */
	} * e;
	size_t n;
};

static size_t distinct_add(struct distinct *d, const struct store_value *v, size_t at)
{
	char key[1024];
	key_of(v, key, sizeof(key));
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->e[i].key, key)) {
			d->e[i].count++;
			d->e[i].last = at;
			return i;
		}
	d->e = td_realloc(d->e, (d->n + 1) * sizeof(*d->e));
	d->e[d->n].key = td_strdup(key);
	d->e[d->n].v = *v;
	d->e[d->n].count = 1;
	d->e[d->n].last = at;
	return d->n++;
}

void profile_computed_eval(const struct profile_computed *c, const struct store_row *rows, size_t n,
			   int64_t now_ms, struct td_buf *o)
{
	int64_t from = c->window_ms ? now_ms - c->window_ms : INT64_MIN;
	size_t count = 0, nums = 0;
	double sum = 0, mn = INFINITY, mx = -INFINITY;
	struct store_value first = {0}, last = {0};
	bool have = false;
	struct distinct d = {0};
	for (size_t i = 0; i < n; i++) {
		const struct store_row *r = &rows[i];
		if (!passes(c, r, from))
			continue;
		if (c->kind == CT_COUNT) {
			count++;
			continue;
		}
		struct store_value v;
		if (!store_row_value(r, c->property, &v))
			continue;
		count++;
		if (v.kind == QCOL_NUMBER && isfinite(v.num)) {
			nums++;
			sum += v.num;
			mn = v.num < mn ? v.num : mn;
			mx = v.num > mx ? v.num : mx;
		}
		if (!have)
			first = v;
		last = v;
		have = true;
		if (c->kind == CT_MOST_FREQUENT || c->kind == CT_UNIQUE_VALUES ||
		    c->kind == CT_UNIQUE_COUNT)
			distinct_add(&d, &v, i);
	}
	switch (c->kind) {
	case CT_COUNT:
		td_buf_printf(o, "%zu", count);
		break;
	case CT_SUM:
		td_buf_printf(o, "%.17g", sum);
		break;
	case CT_AVG:
		if (nums)
			td_buf_printf(o, "%.17g", sum / (double)nums);
		else
			td_buf_printf(o, "null");
		break;
	case CT_MIN:
	case CT_MAX:
		if (nums)
			td_buf_printf(o, "%.17g", c->kind == CT_MIN ? mn : mx);
		else
			td_buf_printf(o, "null");
		break;
	case CT_FIRST:
	case CT_LAST:
		if (have)
			profile_put_value(o, c->kind == CT_FIRST ? &first : &last);
		else
			td_buf_printf(o, "null");
		break;
	case CT_MOST_FREQUENT: {
		/* the most frequent value; ties: the one seen most recently */
		size_t best = SIZE_MAX;
		for (size_t i = 0; i < d.n; i++)
			if (best == SIZE_MAX || d.e[i].count > d.e[best].count ||
			    (d.e[i].count == d.e[best].count && d.e[i].last > d.e[best].last))
				best = i;
		if (best == SIZE_MAX)
			td_buf_printf(o, "null");
		else
			profile_put_value(o, &d.e[best].v);
		break;
	}
	case CT_UNIQUE_VALUES:
		td_buf_putc(o, '[');
		for (size_t i = 0; i < d.n && i < CT_MAX_UNIQUE; i++) {
			if (i)
				td_buf_putc(o, ',');
			profile_put_value(o, &d.e[i].v);
		}
		td_buf_putc(o, ']');
		break;
	case CT_UNIQUE_COUNT:
		td_buf_printf(o, "%zu", d.n);
		break;
	}
	for (size_t i = 0; i < d.n; i++)
		free(d.e[i].key);
	free(d.e);
}

int profile_load_computed(struct meta *m, struct profile_computed ***out, size_t *n, char *err,
			  size_t errcap)
{
	*out = NULL;
	*n = 0;
	struct meta_computed *l;
	size_t nl;
	int rc = meta_computed_list(m, &l, &nl);
	if (rc) {
		snprintf(err, errcap, "cannot read the computed traits from meta.db: %s",
			 td_strerror(rc));
		return rc;
	}
	struct profile_computed **defs = td_calloc(nl ? nl : 1, sizeof(*defs));
	for (size_t i = 0; i < nl; i++) {
		char why[256];
		struct profile_computed *c;
		if (profile_computed_parse(l[i].definition, strlen(l[i].definition), &c, why,
					   sizeof(why))) {
			td_log_error("profile: computed trait %s is skipped: %s", l[i].name, why);
			continue;
		}
		defs[(*n)++] = c;
	}
	meta_computed_list_free(l, nl);
	*out = defs;
	return 0;
}

void profile_computed_list_free(struct profile_computed **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		profile_computed_free(l[i]);
	free(l);
}
