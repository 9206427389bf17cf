/*
 * jscan.h - a validating JSON scanner that works on byte spans of the input
 * instead of building a tree (internal to src/collect).
 *
 * Why not a DOM parser here: the collector touches a dozen top-level fields of
 * a message and passes everything else through. Scanning validates the text
 * (strict RFC 8259: numbers, escapes, UTF-8), finds those fields, and lets the
 * normalizer copy the untouched members byte for byte. That is several times
 * faster than parse + re-print, and stores numbers exactly as the client sent
 * them (a DOM round trip turns 12345678901234567890 into 1.2345678901234567e19).
 *
 * Offsets are byte positions in the text; spans are [start, end).
 */
#ifndef TD_COLLECT_JSCAN_H
#define TD_COLLECT_JSCAN_H

#include <stdbool.h>
#include <stddef.h>

#define JSCAN_MAX_DEPTH 512

enum jtype { J_NONE = 0, J_OBJECT, J_ARRAY, J_STRING, J_NUMBER, J_TRUE, J_FALSE, J_NULL };

struct jspan {
	size_t start, end;
};

struct jscan_error {
	size_t offset;	 /* byte of the first error */
	const char *why; /* static text */
};

/*
 * Validates the value starting at *pos (after optional whitespace) and moves
 * *pos past it. Returns its type, or J_NONE with err filled.
 */
enum jtype jscan_value(const char *s, size_t len, size_t *pos, struct jscan_error *err);

/* Validates a whole text: one value and nothing but whitespace after it. */
enum jtype jscan_document(const char *s, size_t len, struct jspan *value, struct jscan_error *err);

/* One member of an object: the key span includes its quotes. */
struct jmember {
	struct jspan key, val;
	enum jtype type;
};

/*
 * Iterates the members of an already validated object span. Start with
 * *pos = 0; returns true and fills m for each member, false at the end.
 */
bool jscan_next_member(const char *s, struct jspan obj, size_t *pos, struct jmember *m);

/* Iterates the elements of an already validated array span (same protocol). */
bool jscan_next_element(const char *s, struct jspan arr, size_t *pos, struct jspan *v,
			enum jtype *type);

/* True if the member's key, decoded, equals name. */
bool jscan_key_is(const char *s, const struct jmember *m, const char *name);

/*
 * Decodes a validated string span (with its quotes) into out as UTF-8 with a
 * NUL. Returns the decoded length, or (size_t)-1 if it does not fit in cap-1
 * bytes or holds a NUL character (\u0000).
 */
size_t jscan_string(const char *s, struct jspan str, char *out, size_t cap);

/* True if two validated string spans (of s1 and s2) decode to the same
 * text (NUL characters included). */
bool jscan_strings_equal(const char *s1, struct jspan a, const char *s2, struct jspan b);

/* Line and column (1-based; columns count characters) of a byte offset. */
void jscan_line_col(const char *s, size_t len, size_t offset, int *line, int *col);

#endif
