/*
 * enrich_input.c - what the collector hands to enrichment (src/enrich): the
 * page URL, referrer, user agent, IP, cookies and SDK campaign of a message,
 * found in one pass over its context (and the batch's), read as borrowed
 * spans where they need no decoding; then the address context.ip is stored
 * with, as the source's IP mode says (after the geo lookup).
 */
#include "collect/collect_int.h"
#include "collect/jscan.h"

#include <string.h>

/* What one message's enrichment reads and writes: per thread, so the hot
 * path allocates nothing (normalize is not re-entered on a thread). */
struct escratch {
	char url[4096], ref[4096], ua[1024], ip[64], ip_stored[64], cookies[4096];
	char camp[ENRICH_C_COUNT][ENRICH_VALUE_MAX];
	struct enrich_result res;
};
static __thread struct escratch es;

/* The context members enrichment reads, found in one pass over the
 * message's context and (for what it lacks) the batch's. */
enum slot {
	S_URL,
	S_REF,
	S_UA,
	S_IP,
	S_COOKIES,
	S_CAMPAIGN,
	S_COUNT = S_CAMPAIGN + ENRICH_C_COUNT
};

struct slots {
	struct jmember m[S_COUNT];
	const char *src[S_COUNT]; /* the text a found member belongs to; NULL: absent */
};

static void slot_set(struct slots *sl, enum slot k, const char *src, const struct jmember *mm)
{
	if (!sl->src[k]) {
		sl->m[k] = *mm;
		sl->src[k] = src;
	}
}

static void scan_context(struct slots *sl, const char *s, struct jspan ctx)
{
	size_t pos = 0, p2;
	struct jmember mm, m2;
	while (jscan_next_member(s, ctx, &pos, &mm)) {
		if (jscan_key_is(s, &mm, "userAgent")) {
			slot_set(sl, S_UA, s, &mm);
		} else if (jscan_key_is(s, &mm, "ip")) {
			slot_set(sl, S_IP, s, &mm);
		} else if (jscan_key_is(s, &mm, "cookies")) {
			slot_set(sl, S_COOKIES, s, &mm);
		} else if (mm.type == J_OBJECT && jscan_key_is(s, &mm, "page")) {
			for (p2 = 0; jscan_next_member(s, mm.val, &p2, &m2);)
				if (jscan_key_is(s, &m2, "url"))
					slot_set(sl, S_URL, s, &m2);
				else if (jscan_key_is(s, &m2, "referrer"))
					slot_set(sl, S_REF, s, &m2);
		} else if (mm.type == J_OBJECT && jscan_key_is(s, &mm, "campaign")) {
			for (p2 = 0; jscan_next_member(s, mm.val, &p2, &m2);)
				for (int f = 0; f < ENRICH_C_COUNT; f++)
					if (jscan_key_is(s, &m2, enrich_cfield_name(f)))
						slot_set(sl, (enum slot)(S_CAMPAIGN + f), s, &m2);
		}
	}
}

/* The member at key of object obj of s. */
static bool find_member(const char *s, struct jspan obj, const char *key, struct jmember *out)
{
	size_t pos = 0;
	while (jscan_next_member(s, obj, &pos, out))
		if (jscan_key_is(s, out, key))
			return true;
	return false;
}

/* A string value decoded into buf; when it does not fit (or holds \u0000)
 * its first cap - 1 raw bytes, which enrichment bounds and cleans like any
 * other input. 0 for a value that is not a string. */
static size_t str_value(const char *s, const struct jmember *v, char *buf, size_t cap)
{
	if (v->type != J_STRING)
		return 0;
	size_t d = jscan_string(s, v->val, buf, cap);
	if (d != (size_t)-1)
		return d;
	size_t n = v->val.end - v->val.start - 2;
	if (n > cap - 1)
		n = cap - 1;
	memcpy(buf, s + v->val.start + 1, n);
	buf[n] = '\0';
	return n;
}

/* A context string as enrichment reads it: into buf (NUL-terminated), or
 * with borrow, when it has no escapes, the span of the message itself. */
static struct enrich_str slot_str(const struct slots *sl, enum slot k, char *buf, size_t cap,
				  bool borrow)
{
	const char *src = sl->src[k];
	if (!src)
		return (struct enrich_str){buf, 0};
	const struct jmember *v = &sl->m[k];
	size_t n = v->val.end - v->val.start - 2;
	if (borrow && v->type == J_STRING && !memchr(src + v->val.start + 1, '\\', n))
		return (struct enrich_str){src + v->val.start + 1, n < cap ? n : cap - 1};
	return (struct enrich_str){buf, str_value(src, v, buf, cap)};
}

/* Appends "name=value; " to the cookie text (dropped when it does not fit). */
static void cookie_add(size_t *len, const char *name, size_t nn, const char *val, size_t vn)
{
	size_t cap = sizeof(es.cookies);
	if (*len + nn + vn + 3 >= cap)
		return;
	memcpy(es.cookies + *len, name, nn);
	es.cookies[*len + nn] = '=';
	memcpy(es.cookies + *len + nn + 1, val, vn);
	*len += nn + vn + 1;
	memcpy(es.cookies + *len, "; ", 2);
	*len += 2;
}

/* The cookies a message offers: context.cookies (a Cookie-header string or
 * an object of name -> value), properties.__utmz, the request's Cookie
 * header; the first of a name wins. */
static struct enrich_str cookies(const struct collect_enrich_src *m, const struct collect_origin *o,
				 const struct slots *sl)
{
	size_t len = 0;
	struct jmember v = sl->m[S_COOKIES];
	const char *src = sl->src[S_COOKIES];
	char name[128], val[1024];
	if (src) {
		if (v.type == J_STRING) {
			len = str_value(src, &v, es.cookies, sizeof(es.cookies) - 2);
			memcpy(es.cookies + len, "; ", 2);
			len += 2;
		} else if (v.type == J_OBJECT) {
			size_t pos = 0;
			struct jmember c;
			while (jscan_next_member(src, v.val, &pos, &c)) {
				size_t nn = jscan_string(src, c.key, name, sizeof(name));
				if (nn != (size_t)-1 && c.type == J_STRING)
					cookie_add(&len, name, nn, val,
						   str_value(src, &c, val, sizeof(val)));
			}
		}
	}
	if (m->properties && find_member(m->s, *m->properties, "__utmz", &v) && v.type == J_STRING)
		cookie_add(&len, "__utmz", 6, val, str_value(m->s, &v, val, sizeof(val)));
	const char *hdr = o->cookie;
	size_t hl = hdr ? strlen(hdr) : 0;
	if (hl && len + hl + 1 < sizeof(es.cookies)) {
		memcpy(es.cookies + len, hdr, hl);
		len += hl;
	}
	es.cookies[len] = '\0';
	return (struct enrich_str){es.cookies, len};
}

const struct enrich_result *collect_enrich(const struct collect_enrich_src *m,
					   const struct collect_origin *o, const char **ip_out,
					   bool *replace_ip)
{
	struct enrich_input in = {0};
	struct slots sl = {0};
	if (m->context)
		scan_context(&sl, m->s, *m->context);
	if (m->batch_context)
		scan_context(&sl, m->bs, *m->batch_context);
	in.page_url = slot_str(&sl, S_URL, es.url, sizeof(es.url), true);
	in.referrer = slot_str(&sl, S_REF, es.ref, sizeof(es.ref), true);
	if (m->type == COLLECT_PAGE && m->properties) {
		struct jmember v;
		struct jspan props = *m->properties;
		if (!in.page_url.n && find_member(m->s, props, "url", &v))
			in.page_url = (struct enrich_str){
			    es.url, str_value(m->s, &v, es.url, sizeof(es.url))};
		if (!in.referrer.n && find_member(m->s, props, "referrer", &v))
			in.referrer = (struct enrich_str){
			    es.ref, str_value(m->s, &v, es.ref, sizeof(es.ref))};
	}
	in.user_agent = slot_str(&sl, S_UA, es.ua, sizeof(es.ua), true);
	struct enrich_str ip = slot_str(&sl, S_IP, es.ip, sizeof(es.ip), false);
	in.ip = ip.n ? es.ip : o->ip;
	in.cookies = cookies(m, o, &sl);
	for (int f = 0; f < ENRICH_C_COUNT; f++) {
		struct enrich_str c = slot_str(&sl, (enum slot)(S_CAMPAIGN + f), es.camp[f],
					       sizeof(es.camp[f]), false);
		in.campaign[f] = c.n ? es.camp[f] : NULL;
	}
	enrich_event(o->enrich, &in, &es.res);
	*ip_out = o->ip;
	*replace_ip = o->ip_mode != ENRICH_IP_KEEP;
	if (*replace_ip)
		*ip_out = in.ip && enrich_ip_anonymize(in.ip, strlen(in.ip), o->ip_mode,
						       es.ip_stored, sizeof(es.ip_stored))
			      ? es.ip_stored
			      : NULL;
	return &es.res;
}
