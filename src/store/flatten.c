/*
 * flatten.c - a stored message's JSON as (dotted path, scalar value) leaves,
 * the unit of the store's property columns; and the event name rule.
 */
#include "base/td.h"
#include "base/utf8.h"
#include "collect/collect.h"
#include "store/seg.h"

#include <stdlib.h>
#include <string.h>

#define FLAT_PATH_MAX  256
#define FLAT_VALUE_MAX 4096
#define FLAT_DEPTH_MAX 8   /* objects nested deeper make no columns */
#define FLAT_NEST_MAX  512 /* deeper input is refused */

/*
 * One pass over the text, bounds-checked at every byte: it never reads past
 * len and fails on anything that is not JSON structure, so damaged input
 * gives TD_ECORRUPT, never a bad read. It does not re-validate UTF-8 or
 * number grammar: stored messages were validated by the collector.
 */
struct flat {
	const char *s;
	size_t len, pos;
	seg_leaf_fn fn;
	void *ctx;
	char path[FLAT_PATH_MAX];
	char value[FLAT_VALUE_MAX];
};

static void ws(struct flat *f)
{
	while (f->pos < f->len) {
		char c = f->s[f->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			return;
		f->pos++;
	}
}

static int hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int hex4(struct flat *f, size_t at, uint32_t *cp)
{
	if (at + 4 > f->len)
		return -1;
	uint32_t v = 0;
	for (int k = 0; k < 4; k++) {
		int h = hexv(f->s[at + k]);
		if (h < 0)
			return -1;
		v = v << 4 | (uint32_t)h;
	}
	*cp = v;
	return 0;
}

/*
 * A string at f->pos (the opening quote). Sets out and n to its text: a pointer
 * into the input when it has no escapes, else decoded into buf (cap bytes;
 * *n = SIZE_MAX when it does not fit or holds \u0000). Returns 0 or -1.
 */
static int string(struct flat *f, char *buf, size_t cap, const char **out, size_t *n)
{
	size_t start = ++f->pos;
	const char *q = memchr(f->s + start, '"', f->len - start);
	const char *bs = memchr(f->s + start, '\\', (q ? (size_t)(q - f->s) : f->len) - start);
	if (q && !bs) {
		*out = f->s + start;
		*n = (size_t)(q - f->s) - start;
		f->pos = (size_t)(q - f->s) + 1;
		return 0;
	}
	size_t o = 0;
	bool fits = true;
	while (f->pos < f->len) {
		char c = f->s[f->pos++];
		char tmp[4];
		size_t k = 1;
		if (c == '"') {
			*out = buf;
			*n = fits ? o : SIZE_MAX;
			return 0;
		}
		if (c != '\\') {
			tmp[0] = c;
		} else {
			if (f->pos >= f->len)
				return -1;
			char e = f->s[f->pos++];
			uint32_t cp;
			switch (e) {
			case 'u':
				if (hex4(f, f->pos, &cp))
					return -1;
				f->pos += 4;
				if (cp >= 0xd800 && cp <= 0xdbff && f->pos + 6 <= f->len &&
				    f->s[f->pos] == '\\' && f->s[f->pos + 1] == 'u') {
					uint32_t lo;
					if (!hex4(f, f->pos + 2, &lo) && lo >= 0xdc00 &&
					    lo <= 0xdfff) {
						cp =
						    0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
						f->pos += 6;
					}
				}
				if (cp >= 0xd800 && cp <= 0xdfff)
					cp = 0xfffd;
				if (cp == 0)
					fits = false;
				k = td_utf8_put(tmp, cp);
				break;
			default:
				tmp[0] = td_json_escape_byte(e);
			}
		}
		if (o + k > cap)
			fits = false;
		if (fits) {
			memcpy(buf + o, tmp, k);
			o += k;
		}
	}
	return -1;
}

static bool literal(struct flat *f, const char *word, size_t n)
{
	if (f->len - f->pos < n || memcmp(f->s + f->pos, word, n) != 0)
		return false;
	f->pos += n;
	return true;
}

/* Moves to the next member or element of an object or array: 1 when there is
 * one (f->pos at it), 0 at the closing bracket (passed), -1 on bad text. */
static int next_item(struct flat *f, char close, bool first)
{
	ws(f);
	if (f->pos >= f->len)
		return -1;
	if (f->s[f->pos] == close) {
		f->pos++;
		return 0;
	}
	if (!first) {
		if (f->s[f->pos] != ',')
			return -1;
		f->pos++;
		ws(f);
	}
	return f->pos < f->len ? 1 : -1;
}

/* A value at f->pos; plen = length of its path in f->path, or SIZE_MAX for a
 * value that makes no column (inside an array, too deep, unusable key). */
static int value(struct flat *f, size_t plen, int nest)
{
	if (nest > FLAT_NEST_MAX)
		return -1;
	ws(f);
	if (f->pos >= f->len)
		return -1;
	char c = f->s[f->pos];
	bool emit = plen != SIZE_MAX && plen > 0;
	if (c == '{') {
		f->pos++;
		for (bool first = true;; first = false) {
			int st = next_item(f, '}', first);
			if (st <= 0)
				return st;
			if (f->pos >= f->len || f->s[f->pos] != '"')
				return -1;
			size_t at = plen == SIZE_MAX ? SIZE_MAX : plen ? plen + 1 : 0, kl;
			const char *k;
			char *kb = at < FLAT_PATH_MAX ? f->path + at : f->value;
			size_t kcap =
			    at < FLAT_PATH_MAX ? FLAT_PATH_MAX - 1 - at : sizeof(f->value);
			if (string(f, kb, kcap, &k, &kl))
				return -1;
			size_t child = SIZE_MAX;
			if (at < FLAT_PATH_MAX && kl != SIZE_MAX && kl > 0 && kl <= kcap &&
			    !memchr(k, '.', kl) && !memchr(k, '\0', kl) &&
			    (plen == 0 || nest < FLAT_DEPTH_MAX)) {
				if (k != f->path + at)
					memmove(f->path + at, k, kl);
				if (plen)
					f->path[plen] = '.';
				child = at + kl;
			}
			ws(f);
			if (f->pos >= f->len || f->s[f->pos] != ':')
				return -1;
			f->pos++;
			if (value(f, child, nest + 1))
				return -1;
		}
	}
	if (c == '[') {
		size_t start = f->pos++;
		for (bool first = true;; first = false) {
			int st = next_item(f, ']', first);
			if (st < 0)
				return st;
			if (st == 0)
				break;
			if (value(f, SIZE_MAX, nest + 1))
				return -1;
		}
		if (emit)
			f->fn(f->ctx, f->path, plen, SEG_LEAF_ARRAY, f->s + start, f->pos - start,
			      0, false);
		return 0;
	}
	if (c == '"') {
		const char *v;
		size_t vl;
		if (string(f, f->value, sizeof(f->value), &v, &vl))
			return -1;
		if (emit && vl != SIZE_MAX)
			f->fn(f->ctx, f->path, plen, SEG_LEAF_STR, v, vl, 0, false);
		return 0;
	}
	if (c == 't' || c == 'f') {
		bool t = c == 't';
		if (!literal(f, t ? "true" : "false", t ? 4 : 5))
			return -1;
		if (emit)
			f->fn(f->ctx, f->path, plen, SEG_LEAF_BOOL, NULL, 0, 0, t);
		return 0;
	}
	if (c == 'n')
		return literal(f, "null", 4) ? 0 : -1;
	size_t start = f->pos;
	while (f->pos < f->len && strchr("+-0123456789.eE", f->s[f->pos]) && f->s[f->pos])
		f->pos++;
	size_t nl = f->pos - start;
	if (nl == 0 || nl >= 64)
		return -1;
	if (emit) {
		char num[64];
		memcpy(num, f->s + start, nl);
		num[nl] = '\0';
		f->fn(f->ctx, f->path, plen, SEG_LEAF_NUM, NULL, 0, strtod(num, NULL), false);
	}
	return 0;
}

int seg_flatten(const char *json, size_t len, seg_leaf_fn fn, void *ctx)
{
	struct flat *f = td_malloc(sizeof(*f));
	f->s = json;
	f->len = len;
	f->pos = 0;
	f->fn = fn;
	f->ctx = ctx;
	ws(f);
	int rc = f->pos < len && json[f->pos] == '{' ? value(f, 0, 0) : -1;
	free(f);
	return rc ? TD_ECORRUPT : 0;
}

const char *seg_type_event_name(int type)
{
	switch (type) {
	case COLLECT_IDENTIFY:
		return "$identify";
	case COLLECT_PAGE:
		return "$page";
	case COLLECT_SCREEN:
		return "$screen";
	case COLLECT_GROUP:
		return "$group";
	case COLLECT_ALIAS:
		return "$alias";
	default:
		return NULL; /* track: its "event" */
	}
}
