/*
 * url.c - splitting a URL into its parts and decoding percent-encoding
 * (RFC 3986 section 3 for the parts; WHATWG's application/x-www-form-
 * urlencoded for '+' in query values). Works on spans of the input; never
 * reads past the given length, never allocates.
 */
#include "enrich/enrich_int.h"

#include <string.h>

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool is_alpha(unsigned char c)
{
	c |= 0x20;
	return c >= 'a' && c <= 'z';
}

static struct enrich_str span(const char *p, size_t n)
{
	return (struct enrich_str){p, n};
}

/* The length of the first of the bytes of stop in s[0..n), or n. */
static size_t upto(const char *s, size_t n, const char *stop)
{
	for (size_t i = 0; i < n; i++)
		if (strchr(stop, s[i]) && s[i])
			return i;
	return n;
}

bool enrich_url_parse(const char *s, size_t n, struct enrich_url *u)
{
	memset(u, 0, sizeof(*u));
	while (n && (unsigned char)*s <= ' ') { /* leading blanks, as browsers strip them */
		s++;
		n--;
	}
	size_t i = 0;
	if (n && is_alpha((unsigned char)s[0])) { /* scheme = ALPHA *(ALPHA/DIGIT/+/-/.) ":" */
		size_t k = 1;
		while (k < n && (is_alpha((unsigned char)s[k]) || (s[k] >= '0' && s[k] <= '9') ||
				 s[k] == '+' || s[k] == '-' || s[k] == '.'))
			k++;
		if (k < n && s[k] == ':') {
			u->scheme = span(s, k);
			i = k + 1;
		}
	}
	if (n - i < 2 || s[i] != '/' || s[i + 1] != '/') {
		memset(u, 0, sizeof(*u));
		return false;
	}
	i += 2;
	size_t alen = upto(s + i, n - i, "/?#");
	const char *auth = s + i;
	/* drop userinfo ("user:pass@"): the last '@' of the authority */
	for (size_t k = alen; k > 0; k--)
		if (auth[k - 1] == '@') {
			auth += k;
			alen -= k;
			break;
		}
	size_t hlen = alen;
	if (alen && auth[0] == '[') { /* [IPv6]:port */
		const char *close = memchr(auth, ']', alen);
		hlen = close ? (size_t)(close - auth) + 1 : alen;
	} else {
		const char *colon = memchr(auth, ':', alen);
		if (colon)
			hlen = (size_t)(colon - auth);
	}
	u->host = span(auth, hlen);
	if (hlen < alen && auth[hlen] == ':')
		u->port = span(auth + hlen + 1, alen - hlen - 1);
	i += (size_t)(auth - (s + i)) + alen;
	size_t plen = upto(s + i, n - i, "?#");
	u->path = span(s + i, plen);
	i += plen;
	if (i < n && s[i] == '?') {
		size_t qlen = upto(s + i + 1, n - i - 1, "#");
		u->query = span(s + i + 1, qlen);
		i += 1 + qlen;
	}
	if (i < n && s[i] == '#')
		u->fragment = span(s + i + 1, n - i - 1);
	if (!u->host.n) {
		memset(u, 0, sizeof(*u));
		return false;
	}
	return true;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, at most U+10FFFF), or 0 if there is none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k < len; k++)
		if (s[k] < 0x80 || s[k] > 0xbf)
			return 0;
	return len;
}

/* The decoder behind enrich_pct_decode and enrich_text_copy: pct = false
 * copies '%' as it is. */
static size_t decode(const char *s, size_t n, bool pct, bool plus_space, char *out, size_t cap)
{
	/* Decode into a window of up to 4 bytes, then emit whole characters:
	 * a sequence split across escapes ("%C3%A9") is checked once whole. */
	size_t o = 0, i = 0;
	unsigned char pend[4];
	size_t np = 0;
	if (cap == 0)
		return 0;
	for (;;) {
		/* plain ASCII needs no window: the common case, copied as it is */
		while (np == 0 && i < n && o < cap - 1) {
			unsigned char c = (unsigned char)s[i];
			if (c < 0x20 || c >= 0x7f || (pct && c == '%') || (plus_space && c == '+'))
				break;
			out[o++] = (char)c;
			i++;
		}
		if (np == 0 && i < n && o >= cap - 1)
			break;
		/* refill the pending window */
		while (np < 4 && i < n) {
			unsigned char c = (unsigned char)s[i];
			int h1, h2;
			if (pct && c == '%' && i + 2 < n &&
			    (h1 = hexval((unsigned char)s[i + 1])) >= 0 &&
			    (h2 = hexval((unsigned char)s[i + 2])) >= 0) {
				pend[np++] = (unsigned char)(h1 << 4 | h2);
				i += 3;
			} else {
				pend[np++] = plus_space && c == '+' ? ' ' : c;
				i++;
			}
		}
		if (np == 0)
			break;
		size_t len = utf8_seq(pend, np);
		char tmp[4];
		size_t tl;
		if (len == 0) { /* invalid: U+FFFD for one byte, go on with the next */
			memcpy(tmp, "\xef\xbf\xbd", 3);
			tl = 3;
			len = 1;
		} else if (len == 1 && (pend[0] < 0x20 || pend[0] == 0x7f)) {
			tmp[0] = ' ';
			tl = 1;
		} else {
			memcpy(tmp, pend, len);
			tl = len;
		}
		if (o + tl > cap - 1)
			break;
		memcpy(out + o, tmp, tl);
		o += tl;
		memmove(pend, pend + len, np - len);
		np -= len;
	}
	out[o] = '\0';
	return o;
}

size_t enrich_pct_decode(const char *s, size_t n, bool plus_space, char *out, size_t cap)
{
	return decode(s, n, true, plus_space, out, cap);
}

size_t enrich_text_copy(const char *s, size_t n, char *out, size_t cap)
{
	return decode(s, n, false, false, out, cap);
}

size_t enrich_host_copy(struct enrich_str host, char *out, size_t cap)
{
	const char *p = host.p;
	size_t n = host.n;
	if (n >= 2 && p[0] == '[' && p[n - 1] == ']') {
		p++;
		n -= 2;
	}
	while (n && p[n - 1] == '.')
		n--;
	size_t len = enrich_pct_decode(p, n, false, out, cap);
	for (size_t k = 0; k < len; k++)
		if (out[k] >= 'A' && out[k] <= 'Z')
			out[k] = (char)(out[k] + 32);
	return len;
}

bool enrich_query_next(struct enrich_str *rest, struct enrich_str *key, struct enrich_str *val)
{
	while (rest->n) {
		size_t m = upto(rest->p, rest->n, "&;");
		const char *item = rest->p;
		if (m < rest->n) {
			rest->p += m + 1;
			rest->n -= m + 1;
		} else {
			rest->p += m;
			rest->n = 0;
		}
		if (!m)
			continue; /* "&&" */
		const char *eq = memchr(item, '=', m);
		if (eq) {
			*key = span(item, (size_t)(eq - item));
			*val = span(eq + 1, m - (size_t)(eq - item) - 1);
		} else {
			*key = span(item, m);
			*val = span(item + m, 0);
		}
		return true;
	}
	return false;
}

/* True if the raw key k equals name (ASCII case ignored) once decoded. */
bool enrich_key_is(struct enrich_str k, const char *name)
{
	size_t i = 0, j = 0;
	for (; i < k.n; j++) {
		unsigned char c = (unsigned char)k.p[i];
		int h1, h2;
		if (c == '%' && i + 2 < k.n && (h1 = hexval((unsigned char)k.p[i + 1])) >= 0 &&
		    (h2 = hexval((unsigned char)k.p[i + 2])) >= 0) {
			c = (unsigned char)(h1 << 4 | h2);
			i += 3;
		} else {
			i++;
		}
		unsigned char w = (unsigned char)name[j];
		if (!w)
			return false;
		if (c >= 'A' && c <= 'Z')
			c += 32;
		if (w >= 'A' && w <= 'Z')
			w += 32;
		if (c != w)
			return false;
	}
	return name[j] == '\0';
}

bool enrich_query_get(struct enrich_str query, const char *name, struct enrich_str *val)
{
	struct enrich_str k, v;
	while (enrich_query_next(&query, &k, &v))
		if (v.n && enrich_key_is(k, name)) {
			*val = v;
			return true;
		}
	return false;
}
