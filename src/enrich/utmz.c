/*
 * utmz.c - campaigns from cookies: the legacy Google Analytics (urchin.js /
 * ga.js) cookie __utmz, and the configured campaign-id patterns (a POSIX
 * extended regular expression with one capture group over a named cookie).
 *
 * __utmz layout: DOMAINHASH.TIMESTAMP.SESSIONS.SOURCES.KEY=VALUE|KEY=VALUE...
 * with the keys utmcsr (source), utmccn (campaign name), utmcmd (medium),
 * utmctr (term), utmcct (content) and utmgclid (a Google Ads click id).
 * Sites store it raw or percent-encoded; both are read.
 */
#include "enrich/enrich_int.h"

#include <string.h>

#define UTMZ_MAX 1024 /* bytes of a decoded __utmz looked at; the rest is ignored */

bool enrich_cookie_find(struct enrich_str cookies, const char *name, struct enrich_str *val)
{
	size_t nl = strlen(name);
	const char *p = cookies.p, *end = cookies.p + cookies.n;
	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == ';'))
			p++;
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *item_end = semi ? semi : end;
		const char *eq = memchr(p, '=', (size_t)(item_end - p));
		if (eq) {
			const char *ke = eq;
			while (ke > p && (ke[-1] == ' ' || ke[-1] == '\t'))
				ke--;
			if ((size_t)(ke - p) == nl && memcmp(p, name, nl) == 0) {
				const char *v = eq + 1, *ve = item_end;
				while (v < ve && (*v == ' ' || *v == '\t'))
					v++;
				while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
					ve--;
				if (ve - v >= 2 && *v == '"' &&
				    ve[-1] == '"') { /* RFC 6265 quotes */
					v++;
					ve--;
				}
				*val = (struct enrich_str){v, (size_t)(ve - v)};
				return true;
			}
		}
		p = item_end;
	}
	return false;
}

/* GA's placeholders: a value that stands for "nothing known". */
static bool placeholder(const char *v, size_t n)
{
	static const char *const words[] = {"(not set)", "(none)",     "(not provided)",
					    "(organic)", "(referral)", "(direct)"};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i]) == n && memcmp(words[i], v, n) == 0)
			return true;
	return n == 0;
}

static void put_field(char *dst, const char *v, size_t n)
{
	if (dst[0] || placeholder(v, n))
		return;
	/* decoded with the whole cookie already: not twice */
	enrich_text_copy(v, n, dst, ENRICH_VALUE_MAX);
}

bool enrich_utmz_parse(struct enrich_str value, struct enrich_campaign *c)
{
	char buf[UTMZ_MAX];
	size_t n = enrich_pct_decode(value.p, value.n, false, buf, sizeof(buf));
	/* the fields start after the fourth '.' of the prefix, or at the first
	 * "utm" when the prefix is missing or damaged */
	const char *p = buf, *end = buf + n;
	const char *first = strstr(buf, "utm");
	if (!first)
		return false;
	p = first;
	struct {
		const char *v;
		size_t n;
	} f[6] = {{0}};
	static const char *const keys[6] = {"utmcsr", "utmccn", "utmcmd",
					    "utmctr", "utmcct", "utmgclid"};
	while (p < end) {
		const char *bar = memchr(p, '|', (size_t)(end - p));
		const char *ie = bar ? bar : end;
		const char *eq = memchr(p, '=', (size_t)(ie - p));
		if (eq)
			for (int k = 0; k < 6; k++)
				if ((size_t)(eq - p) == strlen(keys[k]) &&
				    !memcmp(p, keys[k], (size_t)(eq - p)) && !f[k].v) {
					f[k].v = eq + 1;
					f[k].n = (size_t)(ie - eq - 1);
				}
		p = bar ? bar + 1 : end;
	}
	if (f[0].v && f[0].n == 8 && !memcmp(f[0].v, "(direct)", 8))
		return false; /* a direct visit: no campaign */
	struct enrich_campaign before = *c;
	put_field(c->v[ENRICH_C_SOURCE], f[0].v ? f[0].v : "", f[0].n);
	put_field(c->v[ENRICH_C_NAME], f[1].v ? f[1].v : "", f[1].n);
	put_field(c->v[ENRICH_C_MEDIUM], f[2].v ? f[2].v : "", f[2].n);
	put_field(c->v[ENRICH_C_TERM], f[3].v ? f[3].v : "", f[3].n);
	put_field(c->v[ENRICH_C_CONTENT], f[4].v ? f[4].v : "", f[4].n);
	if (f[5].v && f[5].n && !c->click_id[0]) {
		put_field(c->click_id, f[5].v, f[5].n);
		if (c->click_id[0]) {
			c->click_network = "google";
			put_field(c->v[ENRICH_C_SOURCE], "google", 6);
			put_field(c->v[ENRICH_C_MEDIUM], "cpc", 3);
		}
	}
	return memcmp(&before, c, sizeof(before)) != 0;
}

void enrich_cookie_patterns_apply(const struct enrich *e, struct enrich_str cookies,
				  struct enrich_campaign *c)
{
	char buf[UTMZ_MAX];
	for (size_t i = 0; i < e->npats && !c->v[ENRICH_C_ID][0]; i++) {
		struct enrich_str v;
		if (!enrich_cookie_find(cookies, e->pats[i].cookie, &v))
			continue;
		enrich_pct_decode(v.p, v.n, false, buf, sizeof(buf));
		regmatch_t m[2];
		if (regexec(&e->pats[i].re, buf, 2, m, 0) != 0 || m[1].rm_so < 0 ||
		    m[1].rm_eo <= m[1].rm_so)
			continue;
		enrich_text_copy(buf + m[1].rm_so, (size_t)(m[1].rm_eo - m[1].rm_so),
				 c->v[ENRICH_C_ID], ENRICH_VALUE_MAX);
	}
}
