/*
 * enrich.c - one message's enrichment, step by step (enrich_event), and the
 * "enriched" object the collector stores (enrich_result_json). The order of
 * the steps is the precedence docs/enrichment.md describes.
 */
#include "enrich/enrich_int.h"

#include <string.h>

bool enrich_host_in(const char *host, const char *domain)
{
	size_t hl = strlen(host), dl = strlen(domain);
	if (hl < dl || memcmp(host + hl - dl, domain, dl) != 0)
		return false;
	return hl == dl || host[hl - dl - 1] == '.';
}

static void reset(struct enrich_result *r)
{
	r->page_host[0] = r->page_path[0] = r->page_query[0] = '\0';
	r->has_page = false;
	for (int f = 0; f < ENRICH_C_COUNT; f++)
		r->campaign.v[f][0] = '\0';
	r->campaign.click_id[0] = '\0';
	r->campaign.click_network = NULL;
	r->ref_host[0] = r->ref_term[0] = '\0';
	r->ref_medium = ENRICH_M_NONE;
	r->ref_source = NULL;
	r->channel = ENRICH_CH_DIRECT;
	memset(&r->ua, 0, sizeof(r->ua));
	r->geo.country[0] = r->geo.region[0] = r->geo.city[0] = '\0';
}

static void page(const struct enrich_input *in, struct enrich_result *r, struct enrich_str *query)
{
	struct enrich_url u;
	query->n = 0;
	if (!in->page_url.n || !enrich_url_parse(in->page_url.p, in->page_url.n, &u))
		return;
	r->has_page = true;
	enrich_host_copy(u.host, r->page_host, sizeof(r->page_host));
	if (u.path.n)
		enrich_pct_decode(u.path.p, u.path.n, false, r->page_path, sizeof(r->page_path));
	else
		memcpy(r->page_path, "/", 2);
	enrich_text_copy(u.query.p, u.query.n, r->page_query, sizeof(r->page_query));
	*query = u.query;
}

static void campaign(const struct enrich *e, const struct enrich_input *in, struct enrich_str query,
		     struct enrich_result *r)
{
	struct enrich_campaign *c = &r->campaign;
	for (int f = 0; f < ENRICH_C_COUNT; f++)
		if (in->campaign[f] && in->campaign[f][0])
			enrich_value_copy(c->v[f], in->campaign[f]);
	if (query.n)
		enrich_campaign_from_query(&e->params, query, c);
	struct enrich_str utmz;
	if (!enrich_campaign_any(c) && in->cookies.n &&
	    enrich_cookie_find(in->cookies, "__utmz", &utmz))
		enrich_utmz_parse(utmz, c);
	if (in->cookies.n && e->npats)
		enrich_cookie_patterns_apply(e, in->cookies, c);
}

static void referrer(const struct enrich *e, const struct enrich_input *in, struct enrich_result *r)
{
	struct enrich_url u;
	if (!in->referrer.n || !enrich_url_parse(in->referrer.p, in->referrer.n, &u))
		return;
	if (!enrich_host_copy(u.host, r->ref_host, sizeof(r->ref_host)))
		return;
	if (r->page_host[0] && !strcmp(r->page_host, r->ref_host)) {
		r->ref_medium = ENRICH_M_INTERNAL;
		return;
	}
	for (size_t i = 0; i < e->ninternal; i++)
		if (enrich_host_in(r->ref_host, e->internal[i])) {
			r->ref_medium = ENRICH_M_INTERNAL;
			return;
		}
	struct enrich_refinfo info;
	if (!enrich_refdb_lookup(e->refdb, r->ref_host, &info)) {
		r->ref_medium = ENRICH_M_UNKNOWN;
		return;
	}
	r->ref_medium = info.medium;
	r->ref_source = info.source;
	/* the search term: the first listed parameter present */
	const char *p = info.term_params;
	while (*p && u.query.n) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char name[64];
		struct enrich_str v;
		if (n && n < sizeof(name)) {
			memcpy(name, p, n);
			name[n] = '\0';
			if (enrich_query_get(u.query, name, &v)) {
				enrich_pct_decode(v.p, v.n, true, r->ref_term, sizeof(r->ref_term));
				break;
			}
		}
		p += n + (comma ? 1 : 0);
	}
}

/*
 * The user agents this thread classified last, direct-mapped: the messages of
 * one visitor (a batch, a session) carry the same string, and a hit costs a
 * memcmp instead of the classification. enrich_ua_parse reads at most the
 * first UA_TEXT bytes, so they are the key.
 */
#define UA_SLOTS 8
#define UA_TEXT	 512
static __thread struct {
	size_t n; /* 0: empty */
	char text[UA_TEXT];
	struct enrich_ua ua;
} ua_cache[UA_SLOTS];

static void user_agent(struct enrich_str s, struct enrich_ua *out)
{
	size_t n = s.n < UA_TEXT ? s.n : UA_TEXT;
	size_t h = n * 31 + (unsigned char)s.p[n / 2] * 7 + (unsigned char)s.p[n - 1];
	__typeof__(&ua_cache[0]) c = &ua_cache[h % UA_SLOTS];
	if (c->n == n && !memcmp(c->text, s.p, n)) {
		*out = c->ua;
		return;
	}
	enrich_ua_parse(s.p, n, out);
	c->n = n;
	memcpy(c->text, s.p, n);
	c->ua = *out;
}

void enrich_event(const struct enrich *e, const struct enrich_input *in, struct enrich_result *r)
{
	struct enrich_str query;
	reset(r);
	page(in, r, &query);
	campaign(e, in, query, r);
	referrer(e, in, r);
	const char *src = r->campaign.v[ENRICH_C_SOURCE];
	struct enrich_channel_input ci = {
	    .campaign = &r->campaign,
	    .referrer_medium = r->ref_medium,
	    .referrer_source = r->ref_source,
	    .source_medium = src[0] ? enrich_refdb_source_medium(e->refdb, src) : ENRICH_M_NONE,
	};
	r->channel = enrich_rules_apply(e->rules, &ci);
	if (in->user_agent.n)
		user_agent(in->user_agent, &r->ua);
	if (e->geo && in->ip && in->ip[0])
		enrich_geo_lookup(e->geo, in->ip, &r->geo);
}

/* ---- JSON ---- */

/* Written straight into the buffer after one td_buf_reserve of the most
 * the object can take (every value escaped at worst to 6 bytes a byte is
 * far more than needed: values are clean UTF-8, only '"', '\\' and the odd
 * control character of a user's referrer file are escaped). */
#define JSON_MAX (2 * (ENRICH_VALUE_MAX * 20 + ENRICH_PATH_MAX + ENRICH_QUERY_MAX) + 1024)

struct jw {
	char *p;
	bool first;
};

static void raw(struct jw *w, const char *s, size_t n)
{
	memcpy(w->p, s, n);
	w->p += n;
}

static void key(struct jw *w, const char *k)
{
	if (!w->first)
		*w->p++ = ',';
	w->first = false;
	*w->p++ = '"';
	raw(w, k, strlen(k));
	*w->p++ = '"';
	*w->p++ = ':';
}

static void str(struct jw *w, const char *k, const char *v)
{
	static const char hex[] = "0123456789abcdef";
	if (!v || !*v)
		return;
	key(w, k);
	*w->p++ = '"';
	for (const unsigned char *q = (const unsigned char *)v; *q; q++) {
		if (*q == '"' || *q == '\\') {
			*w->p++ = '\\';
			*w->p++ = (char)*q;
		} else if (*q < 0x20) {
			raw(w, "\\u00", 4);
			*w->p++ = hex[*q >> 4];
			*w->p++ = hex[*q & 15];
		} else {
			*w->p++ = (char)*q;
		}
	}
	*w->p++ = '"';
}

static void obj_open(struct jw *w, const char *k)
{
	key(w, k);
	*w->p++ = '{';
	w->first = true;
}

static void close_obj(struct jw *w)
{
	*w->p++ = '}';
	w->first = false;
}

static bool has_campaign(const struct enrich_campaign *c)
{
	for (int f = 0; f < ENRICH_C_COUNT; f++)
		if (c->v[f][0])
			return true;
	return c->click_id[0] != '\0';
}

int enrich_result_json(const struct enrich_result *r, struct td_buf *b)
{
	int rc = td_buf_reserve(b, JSON_MAX);
	if (rc)
		return rc;
	char *start = b->data + b->len;
	struct jw w = {.p = start, .first = true};
	raw(&w, "{", 1);
	if (r->has_page) {
		obj_open(&w, "page");
		str(&w, "host", r->page_host);
		str(&w, "path", r->page_path);
		str(&w, "query", r->page_query);
		close_obj(&w);
	}
	const struct enrich_campaign *c = &r->campaign;
	bool camp = has_campaign(c);
	if (camp) {
		obj_open(&w, "campaign");
		for (int f = 0; f < ENRICH_C_COUNT; f++)
			str(&w, enrich_cfield_name(f), c->v[f]);
		str(&w, "click_id", c->click_id);
		str(&w, "click_network", c->click_network);
		close_obj(&w);
	}
	if (r->ref_host[0]) {
		obj_open(&w, "referrer");
		str(&w, "host", r->ref_host);
		str(&w, "medium", enrich_medium_name(r->ref_medium));
		str(&w, "source", r->ref_source);
		str(&w, "term", r->ref_term);
		close_obj(&w);
	}
	/* a channel needs something to judge by: a page, a referrer or a campaign */
	if (r->has_page || r->ref_host[0] || camp)
		str(&w, "channel", enrich_channel_name(r->channel));
	if (r->ua.device != ENRICH_DEV_NONE) {
		obj_open(&w, "ua");
		str(&w, "browser", r->ua.browser);
		str(&w, "browser_version", r->ua.browser_version);
		str(&w, "os", r->ua.os);
		str(&w, "os_version", r->ua.os_version);
		str(&w, "device", enrich_device_name(r->ua.device));
		if (r->ua.bot) {
			key(&w, "bot");
			raw(&w, "true", 4);
		}
		close_obj(&w);
	}
	if (r->geo.country[0] || r->geo.region[0] || r->geo.city[0]) {
		obj_open(&w, "geo");
		str(&w, "country", r->geo.country);
		str(&w, "region", r->geo.region);
		str(&w, "city", r->geo.city);
		close_obj(&w);
	}
	raw(&w, "}", 1);
	b->len += (size_t)(w.p - start);
	b->data[b->len] = '\0';
	return 0;
}
