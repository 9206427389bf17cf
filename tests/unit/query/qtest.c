/*
 * qtest.c - helpers shared by the query engine tests (see qtest.h).
 */
#include "qtest.h"
#include "base/buf.h"
#include "base/td.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t qt_next(struct qt_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

int qt_int(struct qt_rng *r, int n)
{
	return (int)(qt_next(r) % (uint64_t)n);
}

void qt_data_init(struct qt_data *d, uint32_t npersons)
{
	memset(d, 0, sizeof(*d));
	d->npersons = npersons;
	d->canon = calloc(npersons ? npersons : 1, sizeof(uint32_t));
	for (uint32_t p = 0; p < npersons; p++)
		d->canon[p] = p;
}

void qt_data_free(struct qt_data *d)
{
	free(d->ev);
	free(d->canon);
	memset(d, 0, sizeof(*d));
}

struct qt_ev *qt_add(struct qt_data *d, const char *name, int64_t ts, uint32_t pid)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 64;
		d->ev = realloc(d->ev, d->cap * sizeof(*d->ev));
	}
	struct qt_ev *e = &d->ev[d->n++];
	memset(e, 0, sizeof(*e));
	e->name = name;
	e->ts = ts;
	e->pid = pid;
	e->flag = -1;
	return e;
}

void qt_random_canon(struct qt_data *d, struct qt_rng *r)
{
	for (uint32_t p = 1; p < d->npersons; p++)
		if (qt_int(r, 3) == 0)
			d->canon[p] = d->canon[qt_int(r, (int)p)];
}

void qt_random_props(struct qt_ev *e, struct qt_rng *r)
{
	static const char *const plans[] = {"a", "b", "c", "ab"};
	e->plan = qt_int(r, 4) ? plans[qt_int(r, 4)] : NULL;
	e->has_n = qt_int(r, 4) != 0;
	e->n = (double)(qt_int(r, 5) - 1) + (qt_int(r, 3) == 0 ? 0.5 : 0);
	e->flag = qt_int(r, 3) - 1;
}

struct memsource *qt_memsource(const struct qt_data *d, struct qt_rng *r)
{
	struct memsource *ms = memsource_new();
	for (size_t i = 0; i < d->n; i++) {
		const struct qt_ev *e = &d->ev[i];
		size_t row = memsource_add(ms, e->name, e->ts, e->pid);
		if (e->plan)
			memsource_set_str(ms, row, "properties.plan", e->plan);
		if (e->has_n)
			memsource_set_num(ms, row, "properties.n", e->n);
		if (e->flag >= 0)
			memsource_set_bool(ms, row, "properties.flag", e->flag);
	}
	memsource_set_persons(ms, d->npersons, d->canon);
	size_t chunk = (size_t)qt_int(r, 7); /* 0: one chunk per name */
	uint64_t seed = qt_int(r, 4) ? qt_next(r) | 1 : 0;
	memsource_build(ms, chunk, seed);
	return ms;
}

bool qt_name_exists(const struct qt_data *d, const char *name)
{
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->ev[i].name, name) == 0)
			return true;
	return false;
}

bool qt_has_prop(const struct qt_data *d, const char *name, int prop)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct qt_ev *e = &d->ev[i];
		if (*name && strcmp(e->name, name) != 0)
			continue;
		if ((prop == 0 && e->plan) || (prop == 1 && e->has_n) ||
		    (prop == 2 && e->flag >= 0))
			return true;
	}
	return false;
}

const char *const qt_ops[] = {"=",  "!=", "in", "not_in", "contains",  ">",
			      ">=", "<",  "<=", "is_set", "is_not_set"};
const char *const qt_paths[] = {"properties.plan", "properties.n", "properties.flag"};

enum { OP_EQ, OP_NE, OP_IN, OP_NIN, OP_CONTAINS, OP_GT, OP_GE, OP_LT, OP_LE, OP_SET, OP_UNSET };

void qt_random_filter(struct qt_rng *r, int prop, struct qt_filter *f)
{
	static const char *const strs[] = {"a", "b", "c", "ab", "z"};
	memset(f, 0, sizeof(*f));
	f->prop = prop;
	for (;;) {
		f->op = qt_int(r, 11);
		if (f->op == OP_CONTAINS && prop != 0)
			continue;
		if (f->op >= OP_GT && f->op <= OP_LE && prop == 2)
			continue;
		break;
	}
	f->nv = f->op == OP_IN || f->op == OP_NIN ? 1 + qt_int(r, 3) : 1;
	if (f->op == OP_SET || f->op == OP_UNSET)
		f->nv = 0;
	for (int i = 0; i < f->nv; i++) {
		f->sv[i] = strs[qt_int(r, 5)];
		f->dv[i] = (double)(qt_int(r, 5) - 1) + (qt_int(r, 4) == 0 ? 0.5 : 0);
		f->bv[i] = qt_int(r, 2);
	}
}

static bool cmp_ok(int op, int c)
{
	switch (op) {
	case OP_GT:
		return c > 0;
	case OP_GE:
		return c >= 0;
	case OP_LT:
		return c < 0;
	case OP_LE:
		return c <= 0;
	default:
		return false;
	}
}

bool qt_filter_match(const struct qt_filter *f, const struct qt_ev *e)
{
	bool has = f->prop == 0 ? e->plan != NULL : f->prop == 1 ? e->has_n : e->flag >= 0;
	if (f->op == OP_SET)
		return has;
	if (f->op == OP_UNSET)
		return !has;
	if (!has) /* only the negative operators match a missing value */
		return f->op == OP_NE || f->op == OP_NIN;
	bool any = false;
	for (int i = 0; i < f->nv; i++) {
		if (f->prop == 0)
			any |= strcmp(e->plan, f->sv[i]) == 0;
		else if (f->prop == 1)
			any |= e->n == f->dv[i];
		else
			any |= (e->flag != 0) == (f->bv[i] != 0);
	}
	switch (f->op) {
	case OP_EQ:
	case OP_IN:
		return any;
	case OP_NE:
	case OP_NIN:
		return !any;
	case OP_CONTAINS:
		return strstr(e->plan, f->sv[0]) != NULL;
	default:
		if (f->prop == 0)
			return cmp_ok(f->op, strcmp(e->plan, f->sv[0]));
		return cmp_ok(f->op, (e->n > f->dv[0]) - (e->n < f->dv[0]));
	}
}

bool qt_filters_match(const struct qt_filter *f, int n, const struct qt_ev *e)
{
	for (int i = 0; i < n; i++)
		if (!qt_filter_match(&f[i], e))
			return false;
	return true;
}

void qt_cat(char *s, size_t cap, const char *fmt, ...)
{
	size_t len = strlen(s);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s + len, cap - len, fmt, ap);
	va_end(ap);
}

static void value_json(const struct qt_filter *f, int i, char *s, size_t cap)
{
	if (f->prop == 0)
		qt_cat(s, cap, "\"%s\"", f->sv[i]);
	else if (f->prop == 1)
		qt_cat(s, cap, "%g", f->dv[i]);
	else
		qt_cat(s, cap, "%s", f->bv[i] ? "true" : "false");
}

void qt_filters_json(const struct qt_filter *f, int n, char *s, size_t cap)
{
	qt_cat(s, cap, "[");
	for (int k = 0; k < n; k++) {
		qt_cat(s, cap, "%s{\"property\":\"%s\",\"operator\":\"%s\"", k ? "," : "",
		       qt_paths[f[k].prop], qt_ops[f[k].op]);
		if (f[k].op == OP_IN || f[k].op == OP_NIN) {
			qt_cat(s, cap, ",\"value\":[");
			for (int i = 0; i < f[k].nv; i++) {
				if (i)
					qt_cat(s, cap, ",");
				value_json(&f[k], i, s, cap);
			}
			qt_cat(s, cap, "]");
		} else if (f[k].nv) {
			qt_cat(s, cap, ",\"value\":");
			value_json(&f[k], 0, s, cap);
		}
		qt_cat(s, cap, "}");
	}
	qt_cat(s, cap, "]");
}

int qt_pick_filters(struct qt_rng *r, const struct qt_data *d, const char *name, int max,
		    struct qt_filter *out)
{
	int n = 0, want = qt_int(r, max + 1);
	for (int tries = 0; n < want && tries < 10; tries++) {
		int prop = qt_int(r, 3);
		if (!qt_has_prop(d, name, prop))
			continue;
		qt_random_filter(r, prop, &out[n++]);
	}
	return n;
}

unsigned qt_threads;

cJSON *qt_query(const struct query_source *src, const char *json)
{
	struct td_buf b;
	td_buf_init(&b, 64 << 20);
	char err[512];
	struct query_limits lim = {.threads = qt_threads};
	int rc = query_run_limited(json, strlen(json), src, &lim, &b, err, sizeof(err));
	cr_assert_eq(rc, 0, "query failed (%d): %s\nquery: %s", rc, err, json);
	cJSON *out = cJSON_Parse(b.data);
	cr_assert(out, "result is not JSON: %s", b.data);
	td_buf_release(&b);
	return out;
}

int qt_query_fail(const struct query_source *src, const char *json, char *err, size_t cap)
{
	struct td_buf b;
	td_buf_init(&b, 1 << 20);
	td_buf_append(&b, "keep", 4);
	struct query_limits lim = {.threads = qt_threads};
	int rc = query_run_limited(json, strlen(json), src, &lim, &b, err, cap);
	cr_assert_neq(rc, 0, "query should fail: %s\nresult: %s", json, b.data);
	cr_assert_eq(b.len, 4, "a failed query must leave the output as it was");
	td_buf_release(&b);
	return rc;
}

void qt_memory_limits(const struct query_source *src, const char *json, size_t max,
		      unsigned threads)
{
	bool failed = false, passed = false;
	for (size_t lim = 1; lim < max; lim *= 2) {
		struct query_limits l = {.max_memory = lim, .threads = threads};
		struct td_buf b;
		td_buf_init(&b, 1 << 20);
		char err[256];
		int rc = query_run_limited(json, strlen(json), src, &l, &b, err, sizeof(err));
		if (rc) {
			cr_assert_eq(rc, TD_ENOMEM, "%s: %s", json, err);
			cr_assert(strstr(err, "memory limit"), "%s", err);
			cr_assert_eq(b.len, 0);
			failed = true;
		} else {
			passed = true;
		}
		td_buf_release(&b);
	}
	cr_assert(failed && passed, "%s: limits never/always enough", json);
}

int64_t qt_offset(const char *tz, int64_t utc_ms)
{
	if (strcmp(tz, "UTC") == 0)
		return 0;
	if (tz[0] == '+' || tz[0] == '-') {
		int h = (tz[1] - '0') * 10 + (tz[2] - '0');
		int m = (tz[4] - '0') * 10 + (tz[5] - '0');
		return (tz[0] == '-' ? -1 : 1) * (int64_t)(h * 60 + m) * 60000;
	}
	static char current[64];
	if (strcmp(current, tz) != 0) {
		setenv("TZ", tz, 1);
		tzset();
		snprintf(current, sizeof(current), "%s", tz);
	}
	time_t t = (time_t)(utc_ms >= 0 ? utc_ms / 1000 : -((-utc_ms + 999) / 1000));
	struct tm tm;
	localtime_r(&t, &tm);
	return (int64_t)tm.tm_gmtoff * 1000;
}

void qt_iso(int64_t ms, char *out, size_t cap)
{
	time_t t = (time_t)(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
	int64_t frac = ms - (int64_t)t * 1000;
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
}

const cJSON *qt_get(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	cr_assert(v, "result has no \"%s\"", key);
	return v;
}

double qt_num(const cJSON *obj, const char *key)
{
	const cJSON *v = qt_get(obj, key);
	cr_assert(cJSON_IsNumber(v), "\"%s\" is not a number", key);
	return v->valuedouble;
}

double qt_num_or_nan(const cJSON *v)
{
	cr_assert(v && (cJSON_IsNumber(v) || cJSON_IsNull(v)), "expected a number or null");
	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

bool qt_close(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b);
	return fabs(a - b) <= 1e-9 * fmax(1.0, fmax(fabs(a), fabs(b)));
}
