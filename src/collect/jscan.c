/*
 * jscan.c - strict JSON validation and navigation over byte spans.
 *
 * Grammar: RFC 8259. Strings must be valid UTF-8 without raw control
 * characters; numbers follow the JSON number grammar exactly; nesting is
 * limited to JSCAN_MAX_DEPTH. Everything the collector stores passes through
 * here, so what it stores is always valid JSON.
 */
#include "collect/jscan.h"
#include "base/td.h"
#include "base/utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct sc {
	const char *s;
	size_t len, pos;
	struct jscan_error *err;
};

static bool fail(struct sc *x, const char *why)
{
	x->err->offset = x->pos;
	x->err->why = x->pos >= x->len ? "unexpected end of input (truncated body?)" : why;
	return false;
}

static inline void ws(struct sc *x)
{
	while (x->pos < x->len) {
		char c = x->s[x->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		x->pos++;
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Length of the valid UTF-8 sequence at p (n bytes available), 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f))
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
		    (p[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

static bool string_body(struct sc *x, bool name);

static bool string(struct sc *x)
{
	return string_body(x, false);
}

static bool string_body(struct sc *x, bool name)
{
	if (x->pos >= x->len || x->s[x->pos] != '"')
		return fail(x, "expected '\"' to start a string");
	x->pos++;
	const unsigned char *s = (const unsigned char *)x->s;
	while (x->pos < x->len) {
		unsigned char c = s[x->pos];
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			x->pos++;
			continue;
		}
		if (c == '"') {
			x->pos++;
			return true;
		}
		if (c < 0x20)
			return fail(x, "control character inside a string (escape it, e.g. \\n)");
		if (c == '\\') {
			if (x->pos + 1 >= x->len) {
				x->pos++;
				break;
			}
			char e = x->s[x->pos + 1];
			if (e == 'u') {
				for (size_t i = 2; i < 6; i++)
					if (x->pos + i >= x->len || hexval(x->s[x->pos + i]) < 0) {
						x->pos += i;
						return fail(x, "\\u needs four hex digits");
					}
				/* "userId\u0000" would read as "userId" to any C-string
				 * reader of the stored event: refuse such names */
				if (name && !memcmp(x->s + x->pos + 2, "0000", 4))
					return fail(x, "a member name may not contain \\u0000");
				x->pos += 6;
			} else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' ||
				   e == 'n' || e == 'r' || e == 't') {
				x->pos += 2;
			} else {
				x->pos++;
				return fail(x, "invalid escape in a string");
			}
			continue;
		}
		size_t n = utf8_seq(s + x->pos, x->len - x->pos);
		if (!n)
			return fail(x, "invalid UTF-8 in a string");
		x->pos += n;
	}
	return fail(x, "unterminated string");
}

static bool digits(struct sc *x)
{
	size_t start = x->pos;
	while (x->pos < x->len && x->s[x->pos] >= '0' && x->s[x->pos] <= '9')
		x->pos++;
	return x->pos > start;
}

static bool number(struct sc *x)
{
	if (x->s[x->pos] == '-')
		x->pos++;
	if (x->pos < x->len && x->s[x->pos] == '0') {
		x->pos++;
	} else if (!digits(x)) {
		return fail(x, "invalid number: expected a digit");
	}
	if (x->pos < x->len && x->s[x->pos] == '.') {
		x->pos++;
		if (!digits(x))
			return fail(x, "invalid number: expected a digit after '.'");
	}
	if (x->pos < x->len && (x->s[x->pos] == 'e' || x->s[x->pos] == 'E')) {
		x->pos++;
		if (x->pos < x->len && (x->s[x->pos] == '+' || x->s[x->pos] == '-'))
			x->pos++;
		if (!digits(x))
			return fail(x, "invalid number: expected a digit in the exponent");
	}
	if (x->pos < x->len) {
		char c = x->s[x->pos];
		if ((c >= '0' && c <= '9') || c == '.' || c == '+' || c == '-' || c == 'e' ||
		    c == 'E')
			return fail(x, "invalid number (leading zeros and repeated signs are not "
				       "JSON)");
	}
	return true;
}

static bool literal(struct sc *x, const char *word)
{
	for (size_t i = 0; word[i]; i++, x->pos++)
		if (x->pos >= x->len || x->s[x->pos] != word[i])
			return fail(x, "expected a value (string, number, object, array, true, "
				       "false or null)");
	return true;
}

static enum jtype value(struct sc *x, int depth);

static bool container(struct sc *x, int depth, char close)
{
	if (depth >= JSCAN_MAX_DEPTH)
		return fail(x, "nested too deeply (at most 512 levels)");
	x->pos++; /* '{' or '[' */
	ws(x);
	if (x->pos < x->len && x->s[x->pos] == close) {
		x->pos++;
		return true;
	}
	for (;;) {
		if (close == '}') {
			if (x->pos < x->len && x->s[x->pos] != '"')
				return fail(x, "expected '\"' to start a member name");
			if (!string_body(x, true))
				return false;
			ws(x);
			if (x->pos >= x->len || x->s[x->pos] != ':')
				return fail(x, "expected ':' after a member name");
			x->pos++;
			ws(x);
		}
		if (value(x, depth + 1) == J_NONE)
			return false;
		ws(x);
		if (x->pos >= x->len)
			return fail(x, "");
		char c = x->s[x->pos];
		if (c == close) {
			x->pos++;
			return true;
		}
		if (c != ',')
			return fail(x, close == '}' ? "expected ',' or '}' after a member"
						    : "expected ',' or ']' after an element");
		x->pos++;
		ws(x);
	}
}

static enum jtype value(struct sc *x, int depth)
{
	ws(x);
	if (x->pos >= x->len) {
		fail(x, "");
		return J_NONE;
	}
	switch (x->s[x->pos]) {
	case '{':
		return container(x, depth, '}') ? J_OBJECT : J_NONE;
	case '[':
		return container(x, depth, ']') ? J_ARRAY : J_NONE;
	case '"':
		return string(x) ? J_STRING : J_NONE;
	case 't':
		return literal(x, "true") ? J_TRUE : J_NONE;
	case 'f':
		return literal(x, "false") ? J_FALSE : J_NONE;
	case 'n':
		return literal(x, "null") ? J_NULL : J_NONE;
	default: {
		char c = x->s[x->pos];
		if (c == '-' || (c >= '0' && c <= '9'))
			return number(x) ? J_NUMBER : J_NONE;
		fail(x, "expected a value (string, number, object, array, true, false or null)");
		return J_NONE;
	}
	}
}

enum jtype jscan_value(const char *s, size_t len, size_t *pos, struct jscan_error *err)
{
	struct sc x = {s, len, *pos, err};
	enum jtype t = value(&x, 0);
	*pos = x.pos;
	return t;
}

enum jtype jscan_document(const char *s, size_t len, struct jspan *v, struct jscan_error *err)
{
	struct sc x = {s, len, 0, err};
	ws(&x);
	if (x.pos >= len) {
		err->offset = x.pos;
		err->why = len ? "the body holds only whitespace" : "the body is empty";
		return J_NONE;
	}
	v->start = x.pos;
	enum jtype t = value(&x, 0);
	if (t == J_NONE)
		return J_NONE;
	v->end = x.pos;
	ws(&x);
	if (x.pos < len) {
		err->offset = x.pos;
		err->why = "unexpected text after the JSON value";
		return J_NONE;
	}
	return t;
}

/* Skips a value known to be valid; returns its type. */
/* The end of the string starting at p (its opening quote) of validated
 * text: the first '"' not escaped, found with rawmemchr (the text was
 * validated, so the closing quote is there). */
static size_t skip_string(const char *s, size_t p)
{
	p++;
	for (;;) {
		size_t at = (size_t)((const char *)rawmemchr(s + p, '"') - s), k = at;
		while (k > p && s[k - 1] == '\\')
			k--;
		if (((at - k) & 1) == 0) /* an even run of backslashes escapes nothing */
			return at + 1;
		p = at + 1;
	}
}

/*
 * Moves *pos past the value at *pos of text jscan_document accepted: only
 * its structure is followed (quotes, escapes, brackets), nothing is checked
 * again. The member iterators below read every stored message's context,
 * properties and traits this way, several times per message.
 */
static enum jtype skip(const char *s, size_t *pos)
{
	size_t p = *pos;
	char c = s[p];
	switch (c) {
	case '"':
		*pos = skip_string(s, p);
		return J_STRING;
	case '{':
	case '[': {
		int depth = 0;
		for (;;) {
			char d = s[p];
			if (d == '"') {
				p = skip_string(s, p);
				continue;
			}
			if (d == '{' || d == '[')
				depth++;
			else if ((d == '}' || d == ']') && --depth == 0)
				break;
			p++;
		}
		*pos = p + 1;
		return c == '{' ? J_OBJECT : J_ARRAY;
	}
	case 't':
		*pos = p + 4;
		return J_TRUE;
	case 'f':
		*pos = p + 5;
		return J_FALSE;
	case 'n':
		*pos = p + 4;
		return J_NULL;
	default:
		while ((s[p] >= '0' && s[p] <= '9') || s[p] == '-' || s[p] == '+' || s[p] == '.' ||
		       s[p] == 'e' || s[p] == 'E')
			p++;
		*pos = p;
		return J_NUMBER;
	}
}

static void skip_ws(const char *s, size_t *pos)
{
	char c;
	while ((c = s[*pos]) == ' ' || c == '\t' || c == '\n' || c == '\r')
		(*pos)++;
}

bool jscan_next_member(const char *s, struct jspan obj, size_t *pos, struct jmember *m)
{
	size_t p = *pos ? *pos : obj.start + 1;
	skip_ws(s, &p);
	if (s[p] == ',') {
		p++;
		skip_ws(s, &p);
	}
	if (p >= obj.end - 1 || s[p] == '}') {
		*pos = obj.end;
		return false;
	}
	m->key.start = p;
	skip(s, &p);
	m->key.end = p;
	skip_ws(s, &p);
	p++; /* ':' */
	skip_ws(s, &p);
	m->val.start = p;
	m->type = skip(s, &p);
	m->val.end = p;
	*pos = p;
	return true;
}

bool jscan_next_element(const char *s, struct jspan arr, size_t *pos, struct jspan *v,
			enum jtype *type)
{
	size_t p = *pos ? *pos : arr.start + 1;
	skip_ws(s, &p);
	if (s[p] == ',') {
		p++;
		skip_ws(s, &p);
	}
	if (p >= arr.end - 1 || s[p] == ']') {
		*pos = arr.end;
		return false;
	}
	v->start = p;
	*type = skip(s, &p);
	v->end = p;
	*pos = p;
	return true;
}

static uint32_t hex4(const char *p)
{
	return (uint32_t)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 |
			  hexval(p[3]));
}

/* Decodes a string span; NUL characters allowed. Returns the length, or
 * (size_t)-1 if it does not fit in cap bytes. */
static size_t decode(const char *s, struct jspan str, char *out, size_t cap, bool *has_nul);

size_t jscan_string(const char *s, struct jspan str, char *out, size_t cap)
{
	bool nul = false;
	size_t n = cap ? decode(s, str, out, cap - 1, &nul) : (size_t)-1;
	if (n == (size_t)-1 || nul)
		return (size_t)-1;
	out[n] = '\0';
	return n;
}

bool jscan_strings_equal(const char *s1, struct jspan a, const char *s2, struct jspan b)
{
	size_t la = a.end - a.start, lb = b.end - b.start;
	if (!memchr(s1 + a.start, '\\', la) && !memchr(s2 + b.start, '\\', lb))
		return la == lb && memcmp(s1 + a.start, s2 + b.start, la) == 0;
	/* decoded text is never longer than its JSON form */
	char *da = td_malloc(la), *db = td_malloc(lb);
	bool nul;
	size_t na = decode(s1, a, da, la, &nul), nb = decode(s2, b, db, lb, &nul);
	bool eq = na == nb && memcmp(da, db, na) == 0;
	free(da);
	free(db);
	return eq;
}

static size_t decode(const char *s, struct jspan str, char *out, size_t cap, bool *has_nul)
{
	size_t n = 0;
	for (size_t p = str.start + 1; p < str.end - 1;) {
		char c = s[p];
		char tmp[4];
		size_t k = 1;
		if (c != '\\') {
			tmp[0] = c;
			p++;
		} else {
			char e = s[p + 1];
			p += 2;
			switch (e) {
			case 'u': {
				uint32_t cp = hex4(s + p);
				p += 4;
				if (cp >= 0xd800 && cp <= 0xdbff && s[p] == '\\' &&
				    s[p + 1] == 'u') {
					uint32_t lo = hex4(s + p + 2);
					if (lo >= 0xdc00 && lo <= 0xdfff) {
						cp =
						    0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
						p += 6;
					}
				}
				if (cp >= 0xd800 && cp <= 0xdfff)
					cp = 0xfffd; /* a lone surrogate */
				if (cp == 0)
					*has_nul = true;
				k = td_utf8_put(tmp, cp);
				break;
			}
			default:
				tmp[0] = td_json_escape_byte(e);
			}
		}
		if (n + k > cap)
			return (size_t)-1;
		memcpy(out + n, tmp, k);
		n += k;
	}
	return n;
}

bool jscan_key_is(const char *s, const struct jmember *m, const char *name)
{
	size_t klen = m->key.end - m->key.start - 2;
	const char *k = s + m->key.start + 1;
	if (!memchr(k, '\\', klen))
		return klen == strlen(name) && memcmp(k, name, klen) == 0;
	char buf[64];
	size_t n = jscan_string(s, m->key, buf, sizeof(buf));
	return n != (size_t)-1 && strcmp(buf, name) == 0;
}

void jscan_line_col(const char *s, size_t len, size_t offset, int *line, int *col)
{
	int l = 1, c = 1;
	for (size_t i = 0; i < offset && i < len; i++) {
		if (s[i] == '\n') {
			l++;
			c = 1;
		} else if (((unsigned char)s[i] & 0xc0) != 0x80) {
			c++; /* columns count characters, not UTF-8 continuation bytes */
		}
	}
	*line = l;
	*col = c;
}
