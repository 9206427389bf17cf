/*
 * json_where.c - where is the first error in a JSON text, and what is it?
 *
 * cJSON says only that parsing failed and gives an offset that is sometimes one
 * past the culprit. A client that sent a broken body deserves the exact line,
 * column and reason, so on the (rare) error path we re-read the text with this
 * strict, allocation-free checker. It accepts what cJSON accepts (numbers are
 * any run of digits, signs, '.', 'e'), so the first error it finds is the one
 * cJSON hit.
 */
#include "collect/collect.h"

#include <string.h>

#define MAX_DEPTH 1000 /* cJSON's CJSON_NESTING_LIMIT */

struct scan {
	const char *s;
	size_t len, pos;
	const char *why;
};

static void ws(struct scan *x)
{
	while (x->pos < x->len) {
		char c = x->s[x->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		x->pos++;
	}
}

static bool fail(struct scan *x, const char *why)
{
	x->why = x->pos >= x->len ? "unexpected end of input (truncated body?)" : why;
	return false;
}

static bool hexdig(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool string(struct scan *x)
{
	if (x->pos >= x->len || x->s[x->pos] != '"')
		return fail(x, "expected '\"' to start a string");
	x->pos++;
	while (x->pos < x->len) {
		unsigned char c = (unsigned char)x->s[x->pos];
		if (c == '"') {
			x->pos++;
			return true;
		}
		/* raw control characters are accepted, as cJSON does */
		if (c == '\\') {
			x->pos++;
			if (x->pos >= x->len)
				break;
			char e = x->s[x->pos];
			if (e == 'u') {
				for (int i = 1; i <= 4; i++)
					if (x->pos + i >= x->len || !hexdig(x->s[x->pos + i])) {
						x->pos += (size_t)i;
						return fail(x, "\\u needs four hex digits");
					}
				x->pos += 4;
			} else if (!strchr("\"\\/bfnrt", e) || e == '\0') {
				return fail(x, "invalid escape in a string");
			}
		}
		x->pos++;
	}
	return fail(x, "unterminated string");
}

static bool value(struct scan *x, int depth);

static bool container(struct scan *x, int depth, char close)
{
	if (depth >= MAX_DEPTH)
		return fail(x, "nested deeper than 1000 levels");
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
			if (!string(x))
				return false;
			ws(x);
			if (x->pos >= x->len || x->s[x->pos] != ':')
				return fail(x, "expected ':' after a member name");
			x->pos++;
			ws(x);
		}
		if (!value(x, depth + 1))
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

static bool literal(struct scan *x, const char *word)
{
	size_t n = strlen(word);
	for (size_t i = 0; i < n; i++, x->pos++)
		if (x->pos >= x->len || x->s[x->pos] != word[i])
			return fail(x, "expected a value (string, number, object, array, true, "
				       "false or null)");
	return true;
}

static bool value(struct scan *x, int depth)
{
	if (x->pos >= x->len)
		return fail(x, "");
	char c = x->s[x->pos];
	switch (c) {
	case '{':
		return container(x, depth, '}');
	case '[':
		return container(x, depth, ']');
	case '"':
		return string(x);
	case 't':
		return literal(x, "true");
	case 'f':
		return literal(x, "false");
	case 'n':
		return literal(x, "null");
	default:
		if (c == '-' || (c >= '0' && c <= '9')) {
			while (x->pos < x->len && strchr("0123456789+-.eE", x->s[x->pos]) &&
			       x->s[x->pos] != '\0')
				x->pos++;
			return true;
		}
		return fail(x, "expected a value (string, number, object, array, true, false or "
			       "null)");
	}
}

const char *collect_json_error(const char *text, size_t len, size_t *offset)
{
	struct scan x = {.s = text, .len = len};
	ws(&x);
	if (x.pos >= len) {
		*offset = x.pos;
		return len ? "the body holds only whitespace" : "the body is empty";
	}
	if (value(&x, 0)) {
		ws(&x);
		if (x.pos >= len) {
			*offset = len;
			return NULL;
		}
		x.why = "unexpected text after the JSON value";
	}
	*offset = x.pos;
	return x.why;
}
