/*
 * parse.c - reading the query document: typed field access with messages
 * that name the field, durations, time zones and date ranges.
 */
#include "base/timeutil.h"
#include "query/query_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *json_type(const cJSON *v)
{
	if (cJSON_IsString(v))
		return "a string";
	if (cJSON_IsNumber(v))
		return "a number";
	if (cJSON_IsBool(v))
		return "a boolean";
	if (cJSON_IsNull(v))
		return "null";
	if (cJSON_IsArray(v))
		return "an array";
	if (cJSON_IsObject(v))
		return "an object";
	return "invalid";
}

/* "series[0]" + "filters" -> "series[0].filters"; "" + "kind" -> "kind". */
static void join(char *out, size_t cap, const char *field, const char *key)
{
	if (field && *field)
		snprintf(out, cap, "%s.%s", field, key);
	else
		snprintf(out, cap, "%s", key);
}

int qj_keys(struct qctx *q, const cJSON *obj, const char *field, const char *const *allowed)
{
	char f[160];
	if (!cJSON_IsObject(obj))
		return qerr(q, "%s: must be an object, not %s", field && *field ? field : "query",
			    json_type(obj));
	for (const cJSON *it = obj->child; it; it = it->next) {
		const char *k = it->string ? it->string : "";
		bool ok = false;
		for (size_t i = 0; allowed[i]; i++)
			if (strcmp(allowed[i], k) == 0)
				ok = true;
		join(f, sizeof(f), field, k);
		if (!ok) {
			char list[512];
			size_t len = 0;
			list[0] = '\0';
			for (size_t i = 0; allowed[i] && len < sizeof(list) - 1; i++)
				len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
							i ? ", " : "", allowed[i]);
			return qerr(q, "%s: unknown field (expected one of: %s)", f, list);
		}
		for (const cJSON *p = obj->child; p != it; p = p->next)
			if (p->string && strcmp(p->string, k) == 0)
				return qerr(q, "%s: given twice", f);
	}
	return 0;
}

int qj_string(struct qctx *q, const cJSON *obj, const char *key, const char *field,
	      const char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!v)
		return 0;
	char f[160];
	join(f, sizeof(f), field, key);
	if (!cJSON_IsString(v) || !v->valuestring)
		return qerr(q, "%s: must be a string, not %s", f, json_type(v));
	*out = v->valuestring;
	return 0;
}

int qj_int(struct qctx *q, const cJSON *obj, const char *key, const char *field, int64_t lo,
	   int64_t hi, int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!v)
		return 0;
	char f[160];
	join(f, sizeof(f), field, key);
	if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
	    v->valuedouble < (double)lo || v->valuedouble > (double)hi)
		return qerr(q, "%s: must be a whole number from %lld to %lld", f, (long long)lo,
			    (long long)hi);
	*out = (int64_t)v->valuedouble;
	return 0;
}

int qj_bool(struct qctx *q, const cJSON *obj, const char *key, const char *field, bool *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!v)
		return 0;
	char f[160];
	join(f, sizeof(f), field, key);
	if (!cJSON_IsBool(v))
		return qerr(q, "%s: must be true or false, not %s", f, json_type(v));
	*out = cJSON_IsTrue(v);
	return 0;
}

int qj_enum(struct qctx *q, const cJSON *obj, const char *key, const char *field,
	    const char *const *choices, int *out)
{
	const char *s = NULL;
	int rc = qj_string(q, obj, key, field, &s);
	if (rc || !s)
		return rc;
	for (int i = 0; choices[i]; i++) {
		if (strcmp(choices[i], s) == 0) {
			*out = i;
			return 0;
		}
	}
	char f[160], list[256];
	size_t len = 0;
	list[0] = '\0';
	for (int i = 0; choices[i] && len < sizeof(list) - 1; i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s\"%s\"", i ? ", " : "",
					choices[i]);
	join(f, sizeof(f), field, key);
	return qerr(q, "%s: unknown value \"%.64s\" (expected one of: %s)", f, s, list);
}

int qj_duration(struct qctx *q, const cJSON *obj, const char *key, const char *field, int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!v)
		return 0;
	char f[160];
	join(f, sizeof(f), field, key);
	const char *how = "a positive number of ms or a string such as \"30m\", \"7d\" "
			  "(units ms, s, m, h, d, w)";
	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (d <= 0)
			return qerr(q, "%s: must be positive (got %g)", f, d);
		if (d != floor(d) || d > 1e15)
			return qerr(q, "%s: must be %s", f, how);
		*out = (int64_t)d;
		return 0;
	}
	if (!cJSON_IsString(v))
		return qerr(q, "%s: must be %s, not %s", f, how, json_type(v));
	const char *s = v->valuestring;
	size_t i = 0;
	int64_t n = 0;
	bool neg = s[0] == '-';
	if (neg)
		i++;
	size_t digits = 0;
	while (s[i] >= '0' && s[i] <= '9') {
		if (n > 1000000000000LL)
			return qerr(q, "%s: \"%.40s\" is too long", f, s);
		n = n * 10 + (s[i++] - '0');
		digits++;
	}
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {{"ms", 1},		 {"s", MS_PER_SEC}, {"m", MS_PER_MIN},
		     {"h", MS_PER_HOUR}, {"d", MS_PER_DAY}, {"w", 7 * MS_PER_DAY}};
	for (size_t u = 0; digits && u < TD_ARRAY_LEN(units); u++) {
		if (strcmp(s + i, units[u].unit) == 0) {
			if (neg || n == 0)
				return qerr(q, "%s: must be positive (got \"%.40s\")", f, s);
			if (n > 1000000000000000LL / units[u].ms)
				return qerr(q, "%s: \"%.40s\" is too long", f, s);
			*out = n * units[u].ms;
			return 0;
		}
	}
	return qerr(q, "%s: \"%.40s\" is not a duration: use %s", f, s, how);
}

int qj_interval(struct qctx *q, const cJSON *obj, const char *key, const char *field,
		const char *const *allowed, enum qinterval *out)
{
	static const char *const names[] = {"hour", "day", "week", "month", NULL};
	const char *s = NULL;
	int rc = qj_string(q, obj, key, field, &s);
	if (rc || !s)
		return rc;
	char f[160];
	join(f, sizeof(f), field, key);
	for (size_t i = 0; allowed[i]; i++) {
		if (strcmp(allowed[i], s) == 0) {
			for (int k = 0; names[k]; k++)
				if (strcmp(names[k], s) == 0)
					*out = (enum qinterval)k;
			return 0;
		}
	}
	char list[128];
	size_t len = 0;
	list[0] = '\0';
	for (size_t i = 0; allowed[i] && len < sizeof(list) - 1; i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s\"%s\"", i ? ", " : "",
					allowed[i]);
	return qerr(q, "%s: bad interval \"%.40s\" (expected one of: %s)", f, s, list);
}

/* True if a date-time string carries its own zone ("Z", "+02:00"...). */
static bool has_zone(const char *s)
{
	size_t n = strlen(s);
	if (n <= 10)
		return false;
	for (size_t i = 11; i < n; i++)
		if (s[i] == 'Z' || s[i] == 'z' || s[i] == '+' || s[i] == '-')
			return true;
	return false;
}

static int parse_date(struct qctx *q, const char *key, bool is_to, int64_t *out, int64_t *day)
{
	const char *s = NULL;
	int rc = qj_string(q, q->root, key, "", &s);
	if (rc || !s)
		return rc;
	size_t n = strlen(s);
	int64_t ms;
	if (td_time_parse(s, n, &ms) != 0 || n > 40)
		return qerr(q,
			    "%s: \"%.40s\" is not a date (YYYY-MM-DD) or a date-time "
			    "(YYYY-MM-DDTHH:MM:SS, optionally with a zone such as Z or +02:00)",
			    key, s);
	if (n == 10) {
		/* a date: midnight in the query's time zone; date_to covers its whole day */
		*day = q_floor_div(ms, MS_PER_DAY) + (is_to ? 1 : 0);
		*out = query_tz_to_utc(&q->tz, *day * MS_PER_DAY);
		return 0;
	}
	*day = INT64_MIN; /* not a date */
	if (!has_zone(s))
		ms = query_tz_to_utc(&q->tz, ms); /* wall-clock time in the query's zone */
	*out = is_to ? ms + 1 : ms;		  /* date_to is inclusive */
	return 0;
}

int qj_time(struct qctx *q, bool range_required)
{
	const char *tzname = "UTC";
	int rc = qj_string(q, q->root, "timezone", "", &tzname);
	if (rc)
		return rc;
	rc = query_tz_load(&q->tz, &q->arena, tzname, q->err, q->errcap);
	if (rc)
		return rc;
	const cJSON *jf = cJSON_GetObjectItemCaseSensitive(q->root, "date_from");
	const cJSON *jt = cJSON_GetObjectItemCaseSensitive(q->root, "date_to");
	if (range_required && !jf)
		return qerr(q, "date_from: required for this kind of query");
	if (range_required && !jt)
		return qerr(q, "date_to: required for this kind of query");
	q->range.from = INT64_MIN;
	q->range.to = INT64_MAX;
	q->range.set = jf || jt;
	q->range.from_day = q->range.to_day = INT64_MIN;
	if ((rc = parse_date(q, "date_from", false, &q->range.from, &q->range.from_day)) ||
	    (rc = parse_date(q, "date_to", true, &q->range.to, &q->range.to_day)))
		return rc;
	q->range.dates = q->range.from_day != INT64_MIN && q->range.to_day != INT64_MIN;
	if (q->range.from >= q->range.to)
		return qerr(q,
			    "date_to: \"%.40s\" is before date_from \"%.40s\" (impossible date "
			    "range)",
			    cJSON_GetStringValue(jt), cJSON_GetStringValue(jf));
	return 0;
}
