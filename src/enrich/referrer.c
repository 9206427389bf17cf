/*
 * referrer.c - the referrer database (format in enrich.h and
 * data/referrers.txt): host patterns -> medium, source name, search-term
 * parameters, in one open-addressing hash table keyed by the pattern text.
 * Source names (and the first label of each host pattern, "facebook" of
 * facebook.com) are a second kind of key, for the medium of a campaign
 * source. Built once at start; lookups allocate nothing.
 */
#include "enrich/enrich_int.h"
#include "base/td.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PATTERNS 4096
#define KEY_MAX	     (ENRICH_VALUE_MAX + 4)

struct entry {
	char *key; /* 'h' + host pattern, or 'n' + lower-case source name */
	enum enrich_medium medium;
	const char *source, *params; /* owned by strs */
};

struct enrich_refdb {
	struct entry *slots;
	size_t cap, used, patterns;
	char **strs;
	size_t nstrs, capstrs;
};

static const char *const medium_names[ENRICH_M_COUNT] = {NULL,	 "search",   "social", "email",
							 "paid", "internal", "unknown"};

const char *enrich_medium_name(enum enrich_medium m)
{
	return m < ENRICH_M_COUNT ? medium_names[m] : NULL;
}

static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

struct enrich_refdb *enrich_refdb_new(void)
{
	struct enrich_refdb *db = td_calloc(1, sizeof(*db));
	db->cap = 256;
	db->slots = td_calloc(db->cap, sizeof(*db->slots));
	return db;
}

void enrich_refdb_free(struct enrich_refdb *db)
{
	if (!db)
		return;
	for (size_t i = 0; i < db->cap; i++)
		free(db->slots[i].key);
	for (size_t i = 0; i < db->nstrs; i++)
		free(db->strs[i]);
	free(db->strs);
	free(db->slots);
	free(db);
}

size_t enrich_refdb_size(const struct enrich_refdb *db)
{
	return db->patterns;
}

static struct entry *find(const struct enrich_refdb *db, const char *key, size_t n)
{
	size_t mask = db->cap - 1;
	for (size_t i = hash(key, n) & mask;; i = (i + 1) & mask) {
		struct entry *e = &db->slots[i];
		if (!e->key || (strlen(e->key) == n && !memcmp(e->key, key, n)))
			return e;
	}
}

static void grow(struct enrich_refdb *db)
{
	struct entry *old = db->slots;
	size_t oldcap = db->cap;
	db->cap *= 2;
	db->slots = td_calloc(db->cap, sizeof(*db->slots));
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].key)
			*find(db, old[i].key, strlen(old[i].key)) = old[i];
	free(old);
}

/* Sets key -> (medium, source, params); replace: a later entry wins. */
static void put(struct enrich_refdb *db, const char *key, enum enrich_medium m, const char *source,
		const char *params, bool replace)
{
	if ((db->used + 1) * 2 > db->cap)
		grow(db);
	struct entry *e = find(db, key, strlen(key));
	if (e->key && !replace)
		return;
	if (!e->key) {
		e->key = td_strdup(key);
		db->used++;
	}
	e->medium = m;
	e->source = source;
	e->params = params;
}

static const char *keep(struct enrich_refdb *db, const char *s, size_t n)
{
	if (db->nstrs == db->capstrs) {
		db->capstrs = db->capstrs ? db->capstrs * 2 : 64;
		db->strs = td_realloc(db->strs, db->capstrs * sizeof(*db->strs));
	}
	return db->strs[db->nstrs++] = td_strndup(s, n);
}

static void trim(const char **p, size_t *n)
{
	while (*n && (**p == ' ' || **p == '\t')) {
		(*p)++;
		(*n)--;
	}
	while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t' || (*p)[*n - 1] == '\r'))
		(*n)--;
}

static void lower_key(char *key, char kind, const char *s, size_t n)
{
	key[0] = kind;
	for (size_t i = 0; i < n; i++)
		key[i + 1] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
	key[n + 1] = '\0';
}

static bool valid_pattern(const char *p, size_t n)
{
	if (n == 0 || n >= ENRICH_VALUE_MAX || p[0] == '.' || p[n - 1] == '.')
		return false;
	if (n >= 2 && p[n - 1] == '*' && memchr(p, '.', n - 2))
		return false; /* "NAME.*": one label before the wildcard */
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
			  (c == '*' && i == n - 1 && i && p[i - 1] == '.');
		if (!ok)
			return false;
	}
	return true;
}

static int parse_line(struct enrich_refdb *db, const char *line, size_t n, char *err, size_t errcap)
{
	const char *f[4];
	size_t fl[4], nf = 0;
	const char *p = line, *end = line + n;
	while (nf < 4) {
		const char *bar = memchr(p, '|', (size_t)(end - p));
		f[nf] = p;
		fl[nf] = bar ? (size_t)(bar - p) : (size_t)(end - p);
		trim(&f[nf], &fl[nf]);
		nf++;
		if (!bar)
			break;
		p = bar + 1;
		if (nf == 4) {
			snprintf(err, errcap,
				 "too many '|' (MEDIUM | SOURCE | HOSTS | TERM PARAMS)");
			return TD_EPARSE;
		}
	}
	if (nf < 3) {
		snprintf(err, errcap, "expected MEDIUM | SOURCE | HOSTS [| TERM PARAMS]");
		return TD_EPARSE;
	}
	enum enrich_medium m = ENRICH_M_NONE;
	for (int k = ENRICH_M_SEARCH; k <= ENRICH_M_PAID; k++)
		if (fl[0] == strlen(medium_names[k]) && !memcmp(f[0], medium_names[k], fl[0]))
			m = (enum enrich_medium)k;
	if (m == ENRICH_M_NONE) {
		snprintf(err, errcap, "medium '%.*s' is not search, social, email or paid",
			 (int)(fl[0] > 40 ? 40 : fl[0]), f[0]);
		return TD_EPARSE;
	}
	if (fl[1] == 0 || fl[1] >= 64) {
		snprintf(err, errcap, "the source name must be 1 to 63 bytes");
		return TD_EPARSE;
	}
	const char *source = keep(db, f[1], fl[1]);
	const char *params = keep(db, nf > 3 ? f[3] : "", nf > 3 ? fl[3] : 0);
	char key[KEY_MAX];
	lower_key(key, 'n', f[1], fl[1]);
	put(db, key, m, source, params, true);
	size_t npat = 0;
	for (const char *q = f[2], *qe = f[2] + fl[2]; q < qe;) {
		while (q < qe && (*q == ' ' || *q == '\t' || *q == ','))
			q++;
		const char *s = q;
		while (q < qe && *q != ' ' && *q != '\t' && *q != ',')
			q++;
		if (q == s)
			break;
		if (!valid_pattern(s, (size_t)(q - s))) {
			snprintf(
			    err, errcap,
			    "'%.*s' is not a host pattern (a host name such as example.com, or "
			    "NAME.* for any top-level domain)",
			    (int)(q - s > 60 ? 60 : q - s), s);
			return TD_EPARSE;
		}
		if (db->patterns == MAX_PATTERNS) {
			snprintf(err, errcap, "more than %d host patterns", MAX_PATTERNS);
			return TD_ETOOLARGE;
		}
		lower_key(key, 'h', s, (size_t)(q - s));
		put(db, key, m, source, params, true);
		db->patterns++;
		npat++;
		/* the first label that is not www/m as a source name too */
		const char *l = s, *dot = memchr(s, '.', (size_t)(q - s));
		if (dot &&
		    ((dot - l == 3 && !memcmp(l, "www", 3)) || (dot - l == 1 && *l == 'm'))) {
			l = dot + 1;
			dot = memchr(l, '.', (size_t)(q - l));
		}
		if (dot) {
			lower_key(key, 'n', l, (size_t)(dot - l));
			put(db, key, m, source, params, false);
		}
	}
	if (!npat) {
		snprintf(err, errcap, "no host pattern");
		return TD_EPARSE;
	}
	return 0;
}

int enrich_refdb_load(struct enrich_refdb *db, const char *text, size_t n, const char *origin,
		      char *err, size_t errcap)
{
	int lineno = 0;
	for (const char *p = text, *end = text + n; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		lineno++;
		const char *s = p;
		size_t len = (size_t)(le - p);
		trim(&s, &len);
		p = nl ? nl + 1 : end;
		if (!len || s[0] == '#')
			continue;
		char why[200];
		int rc = parse_line(db, s, len, why, sizeof(why));
		if (rc) {
			snprintf(err, errcap, "%s:%d: %s", origin, lineno, why);
			return rc;
		}
	}
	return 0;
}

/* The number of labels after position i of host (1 + dots), and whether
 * they look like a public suffix: one or two labels of 2..3 letters, or
 * one label up to 6 (google.com.br, google.co.uk, bing.com, yandex.ru). */
static bool tld_like(const char *s)
{
	size_t labels = 0, len = 0, maxlen = 0;
	for (;; s++) {
		if (*s == '.' || *s == '\0') {
			if (len == 0)
				return false;
			labels++;
			if (len > maxlen)
				maxlen = len;
			len = 0;
			if (!*s)
				break;
		} else {
			len++;
		}
	}
	return (labels == 1 && maxlen <= 6) || (labels == 2 && maxlen <= 3);
}

static bool probe(const struct enrich_refdb *db, const char *key, size_t n,
		  struct enrich_refinfo *out)
{
	const struct entry *e = find(db, key, n);
	if (!e->key)
		return false;
	out->medium = e->medium;
	out->source = e->source;
	out->term_params = e->params;
	return true;
}

bool enrich_refdb_lookup(const struct enrich_refdb *db, const char *host,
			 struct enrich_refinfo *out)
{
	char key[KEY_MAX];
	size_t hl = strlen(host);
	if (!hl || hl + 2 >= KEY_MAX)
		return false;
	key[0] = 'h';
	for (const char *l = host; l && *l;) { /* l: start of a label, longest suffix first */
		size_t rest = hl - (size_t)(l - host);
		memcpy(key + 1, l, rest + 1);
		if (probe(db, key, rest + 1, out))
			return true;
		const char *dot = strchr(l, '.');
		if (dot && tld_like(dot + 1)) {
			size_t ll = (size_t)(dot - l);
			memcpy(key + 1 + ll, ".*", 3);
			if (probe(db, key, ll + 3, out))
				return true;
		}
		l = dot ? dot + 1 : NULL;
	}
	return false;
}

enum enrich_medium enrich_refdb_source_medium(const struct enrich_refdb *db, const char *source)
{
	char key[KEY_MAX];
	size_t n = strlen(source);
	if (!n || n + 2 >= KEY_MAX)
		return ENRICH_M_NONE;
	lower_key(key, 'n', source, n);
	struct enrich_refinfo info;
	return probe(db, key, n + 1, &info) ? info.medium : ENRICH_M_NONE;
}
