/*
 * config.c - the enrichment configuration: its keys and defaults, and
 * enrich_new / enrich_free, which compile the stored JSON document (form in
 * enrich.h) into the immutable struct enrich every request thread shares.
 */
#include "enrich/enrich_int.h"
#include "base/td.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REFERRER_FILE_MAX (8u << 20)

const char *const enrich_config_keys[] = {"campaign.source",
					  "campaign.medium",
					  "campaign.name",
					  "campaign.term",
					  "campaign.content",
					  "campaign.id",
					  "click_ids",
					  "cookie_patterns",
					  "internal_domains",
					  "channel_rules",
					  "referrer_file",
					  "geo_database",
					  "ip",
					  "session_gap",
					  NULL};

bool enrich_config_key_is_list(const char *key)
{
	return !strcmp(key, "cookie_patterns") || !strcmp(key, "channel_rules");
}

bool enrich_config_key_valid(const char *key)
{
	for (size_t i = 0; enrich_config_keys[i]; i++)
		if (!strcmp(key, enrich_config_keys[i]))
			return true;
	/* ip.SOURCE: a source name (letters, digits, '-', '_', '.') */
	if (strncmp(key, "ip.", 3) || !key[3] || strlen(key) > 3 + 127)
		return false;
	for (const char *p = key + 3; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return false;
	return true;
}

const char *enrich_config_default(const char *key)
{
	for (int f = 0; f < ENRICH_C_COUNT; f++)
		if (!strncmp(key, "campaign.", 9) && !strcmp(key + 9, enrich_cfield_name(f)))
			return enrich_default_params[f];
	if (!strcmp(key, "click_ids"))
		return enrich_default_click_ids;
	if (!strcmp(key, "ip") || !strncmp(key, "ip.", 3))
		return "keep";
	if (!strcmp(key, "session_gap"))
		return "30m";
	if (!strcmp(key, "channel_rules")) {
		static char text[4096];
		static bool done;
		if (!done) { /* built once, before any thread runs (the CLI) */
			size_t k = 0;
			for (size_t i = 0; enrich_default_rules[i]; i++)
				k += (size_t)snprintf(text + k, sizeof(text) - k, "%s%s",
						      i ? "\n" : "", enrich_default_rules[i]);
			done = true;
		}
		return text;
	}
	return "";
}

/* ---- building ---- */

static const char *keep(struct enrich *e, const char *s, size_t n)
{
	if ((e->nstrs & (e->nstrs + 1)) == 0 || !e->strs) /* 0, 1, 3, 7, ...: grow */
		e->strs = td_realloc(e->strs, (e->nstrs + 1) * 2 * sizeof(*e->strs));
	return e->strs[e->nstrs++] = td_strndup(s, n);
}

static void trim(const char **p, const char **end)
{
	while (*p < *end && (**p == ' ' || **p == '\t'))
		(*p)++;
	while (*end > *p && ((*end)[-1] == ' ' || (*end)[-1] == '\t'))
		(*end)--;
}

/* Splits a comma list into kept strings; returns the count, or -1 past cap. */
static int split(struct enrich *e, const char *s, const char **items, size_t cap, bool lower)
{
	size_t n = 0;
	for (const char *p = s;;) {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		const char *b = p;
		trim(&b, &end);
		if (b < end) {
			if (n == cap)
				return -1;
			char *v = (char *)keep(e, b, (size_t)(end - b));
			for (char *q = v; lower && *q; q++)
				if (*q >= 'A' && *q <= 'Z')
					*q = (char)(*q + 32);
			items[n++] = v;
		}
		if (!comma)
			return (int)n;
		p = comma + 1;
	}
}

static const char *str_value(const cJSON *doc, const char *key, char *err, size_t errcap, int *rc)
{
	const cJSON *v = doc ? cJSON_GetObjectItemCaseSensitive(doc, key) : NULL;
	if (!v)
		return NULL;
	if (!cJSON_IsString(v)) {
		snprintf(err, errcap, "the setting %s must be a string", key);
		*rc = TD_EINVAL;
		return NULL;
	}
	return v->valuestring;
}

static int params(struct enrich *e, const cJSON *doc, char *err, size_t errcap)
{
	int rc = 0;
	for (int f = 0; f < ENRICH_C_COUNT; f++) {
		char key[32];
		snprintf(key, sizeof(key), "campaign.%s", enrich_cfield_name(f));
		const char *v = str_value(doc, key, err, errcap, &rc);
		if (rc)
			return rc;
		int n = split(e, v ? v : enrich_default_params[f], e->params.names[f],
			      ENRICH_MAX_PARAMS, false);
		if (n < 0) {
			snprintf(err, errcap, "%s: at most %d parameters", key, ENRICH_MAX_PARAMS);
			return TD_EINVAL;
		}
		e->params.n[f] = (size_t)n;
	}
	const char *v = str_value(doc, "click_ids", err, errcap, &rc);
	if (rc)
		return rc;
	const char *items[ENRICH_MAX_PARAMS];
	int n = split(e, v ? v : enrich_default_click_ids, items, ENRICH_MAX_PARAMS, false);
	if (n < 0) {
		snprintf(err, errcap, "click_ids: at most %d parameters", ENRICH_MAX_PARAMS);
		return TD_EINVAL;
	}
	for (int i = 0; i < n; i++) {
		char *colon = strchr(items[i], ':');
		if (!colon || colon == items[i] || !colon[1]) {
			snprintf(err, errcap,
				 "click_ids: '%s' is not PARAMETER:NETWORK (e.g. gclid:google)",
				 items[i]);
			return TD_EINVAL;
		}
		*colon = '\0';
		e->params.click_param[i] = items[i];
		e->params.click_network[i] = colon + 1;
	}
	e->params.nclick = (size_t)n;
	return 0;
}

/* The list setting key as an array of strings (NULL, 0 when absent). */
static int list_value(const cJSON *doc, const char *key, const cJSON **arr, char *err,
		      size_t errcap)
{
	*arr = doc ? cJSON_GetObjectItemCaseSensitive(doc, key) : NULL;
	if (!*arr)
		return 0;
	const cJSON *it;
	bool ok = cJSON_IsArray(*arr);
	cJSON_ArrayForEach(it, *arr) ok = ok && cJSON_IsString(it);
	if (!ok) {
		snprintf(err, errcap, "the setting %s must be a list of strings", key);
		return TD_EINVAL;
	}
	return 0;
}

static int cookie_patterns(struct enrich *e, const cJSON *doc, char *err, size_t errcap)
{
	const cJSON *arr, *it;
	int rc = list_value(doc, "cookie_patterns", &arr, err, errcap);
	if (rc || !arr)
		return rc;
	cJSON_ArrayForEach(it, arr)
	{
		const char *s = it->valuestring, *colon = strchr(s, ':');
		if (!colon || colon == s || !colon[1]) {
			snprintf(err, errcap,
				 "cookie pattern '%.80s' is not COOKIE:REGEX (e.g. "
				 "__utmz:pk10mkto-([0-9]+))",
				 s);
			return TD_EINVAL;
		}
		if (e->npats == ENRICH_MAX_PATTERNS) {
			snprintf(err, errcap, "at most %d cookie patterns", ENRICH_MAX_PATTERNS);
			return TD_EINVAL;
		}
		struct enrich_cookie_pattern *p = &e->pats[e->npats];
		int r = regcomp(&p->re, colon + 1, REG_EXTENDED);
		if (r) {
			char why[120];
			regerror(r, &p->re, why, sizeof(why));
			snprintf(err, errcap, "cookie pattern '%.80s': %s", s, why);
			return TD_EINVAL;
		}
		e->npats++;
		if (p->re.re_nsub < 1) {
			snprintf(
			    err, errcap,
			    "cookie pattern '%.80s' needs one capture group ( ... ) around the "
			    "campaign id",
			    s);
			return TD_EINVAL;
		}
		p->cookie = keep(e, s, (size_t)(colon - s));
	}
	return 0;
}

static int rules(struct enrich *e, const cJSON *doc, char *err, size_t errcap)
{
	const cJSON *arr, *it;
	int rc = list_value(doc, "channel_rules", &arr, err, errcap);
	if (rc)
		return rc;
	if (!arr) {
		size_t n = 0;
		while (enrich_default_rules[n])
			n++;
		return enrich_rules_parse(&e->rules, enrich_default_rules, n, err, errcap);
	}
	const char *list[65];
	size_t n = 0;
	cJSON_ArrayForEach(it, arr)
	{
		if (n == TD_ARRAY_LEN(list))
			break;
		list[n++] = it->valuestring;
	}
	return enrich_rules_parse(&e->rules, list, n, err, errcap);
}

static int load_file(struct enrich_refdb *db, const char *path, char *err, size_t errcap)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errcap, "cannot read the referrer file %s: %s", path,
			 strerror(errno));
		return TD_ENOTFOUND;
	}
	char *text = td_malloc(REFERRER_FILE_MAX + 1);
	size_t n = fread(text, 1, REFERRER_FILE_MAX + 1, f);
	fclose(f);
	int rc;
	if (n > REFERRER_FILE_MAX) {
		snprintf(err, errcap, "the referrer file %s is larger than 8 MiB", path);
		rc = TD_ETOOLARGE;
	} else {
		rc = enrich_refdb_load(db, text, n, path, err, errcap);
	}
	free(text);
	return rc;
}

static int referrers(struct enrich *e, const cJSON *doc, const char *data_dir, char *err,
		     size_t errcap)
{
	int rc = 0;
	e->refdb = enrich_refdb_new();
	rc = enrich_refdb_load(e->refdb, enrich_builtin_referrers, enrich_builtin_referrers_len(),
			       "data/referrers.txt", err, errcap);
	if (rc)
		return rc;
	const char *path = str_value(doc, "referrer_file", err, errcap, &rc);
	if (rc)
		return rc;
	if (path && *path)
		return load_file(e->refdb, path, err, errcap);
	if (!data_dir)
		return 0;
	char def[4096];
	struct stat st;
	snprintf(def, sizeof(def), "%s/referrers.txt", data_dir);
	return stat(def, &st) == 0 ? load_file(e->refdb, def, err, errcap) : 0;
}

static int ip_modes(struct enrich *e, const cJSON *doc, char *err, size_t errcap)
{
	const cJSON *it;
	if (!doc)
		return 0;
	cJSON_ArrayForEach(it, doc)
	{
		if (strcmp(it->string, "ip") && strncmp(it->string, "ip.", 3))
			continue;
		int m = cJSON_IsString(it) ? enrich_ip_mode_parse(it->valuestring) : -1;
		if (m < 0) {
			snprintf(err, errcap, "%s must be keep, truncate or drop", it->string);
			return TD_EINVAL;
		}
		if (!strcmp(it->string, "ip")) {
			e->ip_default = (enum enrich_ip_mode)m;
			continue;
		}
		if (e->nip == ENRICH_MAX_SOURCES) {
			snprintf(err, errcap, "at most %d per-source IP modes", ENRICH_MAX_SOURCES);
			return TD_EINVAL;
		}
		e->ip_source[e->nip] = keep(e, it->string + 3, strlen(it->string + 3));
		e->ip_mode[e->nip++] = (enum enrich_ip_mode)m;
	}
	return 0;
}

/* session_gap: a whole number and a unit, s, m or h ("30m", "1h"); 1 minute
 * to 24 hours (docs/sessions.md). */
static int session_gap(const char *v, int64_t *ms, char *err, size_t errcap)
{
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	int64_t unit = *end == 's' ? 1000 : *end == 'm' ? 60000 : *end == 'h' ? 3600000 : 0;
	if (errno || end == v || !unit || end[1] || n < 1 || n > 86400 || n * unit < 60000 ||
	    n * unit > 86400000) {
		snprintf(
		    err, errcap,
		    "session_gap: \"%.40s\" is not a duration from 1m to 24h (e.g. 30m, 45m, 2h)",
		    v);
		return TD_EINVAL;
	}
	*ms = n * unit;
	return 0;
}

static int build(struct enrich *e, const cJSON *doc, const char *data_dir, char *err, size_t errcap)
{
	if (doc) {
		const cJSON *it;
		cJSON_ArrayForEach(it, doc) if (!enrich_config_key_valid(it->string))
		{
			snprintf(err, errcap, "unknown enrichment setting '%.60s'", it->string);
			return TD_EINVAL;
		}
	}
	int rc = params(e, doc, err, errcap);
	if (!rc)
		rc = cookie_patterns(e, doc, err, errcap);
	if (!rc)
		rc = rules(e, doc, err, errcap);
	if (!rc)
		rc = referrers(e, doc, data_dir, err, errcap);
	if (!rc)
		rc = ip_modes(e, doc, err, errcap);
	if (rc)
		return rc;
	const char *v = str_value(doc, "internal_domains", err, errcap, &rc);
	if (rc)
		return rc;
	int n = split(e, v ? v : "", e->internal, ENRICH_MAX_DOMAINS, true);
	if (n < 0) {
		snprintf(err, errcap, "internal_domains: at most %d domains", ENRICH_MAX_DOMAINS);
		return TD_EINVAL;
	}
	e->ninternal = (size_t)n;
	v = str_value(doc, "session_gap", err, errcap, &rc);
	if (rc || (rc = session_gap(v ? v : "30m", &e->session_gap_ms, err, errcap)))
		return rc;
	v = str_value(doc, "geo_database", err, errcap, &rc);
	if (rc)
		return rc;
	if (v && *v)
		rc = enrich_geo_open(&e->geo, v, err, errcap);
	return rc;
}

int64_t enrich_session_gap_ms(const struct enrich *e)
{
	return e->session_gap_ms;
}

int enrich_new(struct enrich **out, const char *config_json, const char *data_dir, char *err,
	       size_t errcap)
{
	*out = NULL;
	if (errcap)
		err[0] = '\0';
	cJSON *doc = NULL;
	if (config_json && *config_json) {
		doc = cJSON_Parse(config_json);
		if (!cJSON_IsObject(doc)) {
			cJSON_Delete(doc);
			snprintf(err, errcap, "the enrichment configuration is not a JSON object");
			return TD_EINVAL;
		}
	}
	struct enrich *e = td_calloc(1, sizeof(*e));
	int rc = build(e, doc, data_dir, err, errcap);
	cJSON_Delete(doc);
	if (rc) {
		enrich_free(e);
		return rc;
	}
	*out = e;
	return 0;
}

void enrich_free(struct enrich *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->npats; i++)
		regfree(&e->pats[i].re);
	enrich_refdb_free(e->refdb);
	enrich_rules_free(e->rules);
	enrich_geo_close(e->geo);
	for (size_t i = 0; i < e->nstrs; i++)
		free(e->strs[i]);
	free(e->strs);
	free(e);
}

enum enrich_ip_mode enrich_ip_mode_for(const struct enrich *e, const char *source)
{
	for (size_t i = 0; source && i < e->nip; i++)
		if (!strcmp(e->ip_source[i], source))
			return e->ip_mode[i];
	return e->ip_default;
}

bool enrich_has_geo(const struct enrich *e)
{
	return e->geo != NULL;
}
