/*
 * fuzz_collect.c - the collector's request path on arbitrary bodies:
 * collect_prepare, collect_prepare_line, collect_body_write_key and
 * collect_event_decode (collect.h), and under them the strict JSON scanner
 * (jscan.h).
 *
 * Input: one control byte, then the request body.
 *   control & 7     request type: 0 and 7 batch, 1..6 identify, track, page,
 *                   screen, group, alias (enum collect_type order)
 *   control & 0x08  tiny limits (200-byte events, 4-message batches) instead
 *                   of collect_limits_default()
 *   control & 0x10  the origin has a client address (context.ip is added)
 *   control & 0x20  with the default enricher (an "enriched" object is added)
 *   control & 0x40  with 0x20: context.ip truncated (else dropped when 0x80)
 *
 * Invariants checked, beyond "no sanitizer report":
 *   - jscan_document accepts exactly the RFC 8259 texts (strict UTF-8, at
 *     most 512 levels of nesting), compared with an independent validator
 *     below, and collect_prepare refuses exactly the others as invalid JSON
 *     with "invalid JSON at line L, column C: ...";
 *   - a request-level error leaves the batch empty; otherwise every message
 *     is accounted for exactly once, as an event or as a reject (never
 *     silently dropped);
 *   - every event payload decodes and its JSON is valid JSON (the validator
 *     below; cJSON reads it too unless it holds a lone UTF-16 surrogate
 *     escape, which RFC 8259 allows and cJSON refuses), fits max_event_bytes,
 *     agrees with the header (type, messageId, receivedAt, timestamp), holds
 *     no writeKey, no second copy of a field tandem writes (nor of a name in
 *     the context / integrations it merges), no member name holding U+0000,
 *     and keeps a numeric id as sent (or as its digits if it is an integer
 *     below 2^53);
 *   - every reject has a valid reason, and its raw text is the message (JSON);
 *   - an import line gives exactly one event or one reject.
 */
#include "fuzz.h"

#include "base/td.h"
#include "base/timeutil.h"
#include "collect/collect.h"
#include "collect/jscan.h"
#include "enrich/enrich.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

/* 2026-11-18T..., the same "now" as the unit tests */
#define RECEIVED_MS INT64_C(1795000000000)
#define SOURCE_ID   7u
#define MAX_LEVELS  512 /* jscan.h: JSCAN_MAX_DEPTH */

static const enum collect_type type_of_control[8] = {
    COLLECT_BATCH,  COLLECT_IDENTIFY, COLLECT_TRACK, COLLECT_PAGE,
    COLLECT_SCREEN, COLLECT_GROUP,    COLLECT_ALIAS, COLLECT_BATCH,
};

/* ---- an RFC 8259 validator, written from the grammar ---- */

struct vj {
	const unsigned char *s;
	size_t len, pos;
};

static bool vj_at(const struct vj *x, char c)
{
	return x->pos < x->len && x->s[x->pos] == (unsigned char)c;
}

static bool vj_digit(const struct vj *x)
{
	return x->pos < x->len && x->s[x->pos] >= '0' && x->s[x->pos] <= '9';
}

static void vj_ws(struct vj *x)
{
	while (vj_at(x, ' ') || vj_at(x, '\t') || vj_at(x, '\n') || vj_at(x, '\r'))
		x->pos++;
}

static bool vj_string(struct vj *x)
{
	if (!vj_at(x, '"'))
		return false;
	x->pos++;
	while (x->pos < x->len) {
		unsigned char c = x->s[x->pos];
		if (c == '"') {
			x->pos++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			if (x->len - x->pos < 2)
				return false;
			unsigned char e = x->s[x->pos + 1];
			if (e == 'u') {
				if (x->len - x->pos < 6)
					return false;
				for (size_t i = 2; i < 6; i++) {
					unsigned char h = x->s[x->pos + i];
					if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') ||
					      (h >= 'A' && h <= 'F')))
						return false;
				}
				x->pos += 6;
			} else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' ||
				   e == 'n' || e == 'r' || e == 't') {
				x->pos += 2;
			} else {
				return false;
			}
			continue;
		}
		size_t k = fuzz_utf8_len(x->s + x->pos, x->len - x->pos);
		if (k == 0)
			return false;
		x->pos += k;
	}
	return false;
}

static bool vj_number(struct vj *x)
{
	if (vj_at(x, '-'))
		x->pos++;
	if (vj_at(x, '0')) {
		x->pos++;
	} else if (vj_digit(x)) {
		while (vj_digit(x))
			x->pos++;
	} else {
		return false;
	}
	if (vj_at(x, '.')) {
		x->pos++;
		if (!vj_digit(x))
			return false;
		while (vj_digit(x))
			x->pos++;
	}
	if (vj_at(x, 'e') || vj_at(x, 'E')) {
		x->pos++;
		if (vj_at(x, '+') || vj_at(x, '-'))
			x->pos++;
		if (!vj_digit(x))
			return false;
		while (vj_digit(x))
			x->pos++;
	}
	return true;
}

static bool vj_word(struct vj *x, const char *w)
{
	size_t n = strlen(w);
	if (x->len - x->pos < n || memcmp(x->s + x->pos, w, n) != 0)
		return false;
	x->pos += n;
	return true;
}

/* level: how many containers enclose this value */
static enum jtype vj_value(struct vj *x, int level)
{
	vj_ws(x);
	if (x->pos >= x->len)
		return J_NONE;
	unsigned char c = x->s[x->pos];
	if (c == '{' || c == '[') {
		char close = c == '{' ? '}' : ']';
		if (level + 1 > MAX_LEVELS)
			return J_NONE;
		x->pos++;
		vj_ws(x);
		if (vj_at(x, close)) {
			x->pos++;
			return c == '{' ? J_OBJECT : J_ARRAY;
		}
		for (;;) {
			if (c == '{') {
				vj_ws(x);
				size_t name_at = x->pos;
				if (!vj_string(x))
					return J_NONE;
				/* tandem's one rule beyond RFC 8259: no U+0000 in member
				 * names (a C-string reader would see "userId\u0000" as
				 * "userId") */
				for (size_t i = name_at; i + 6 <= x->pos; i++)
					if (x->s[i] == '\\' && !memcmp(x->s + i + 1, "u0000", 5)) {
						size_t bs =
						    0; /* an escaped backslash is not an escape */
						while (i - bs > name_at && x->s[i - bs - 1] == '\\')
							bs++;
						if (bs % 2 == 0)
							return J_NONE;
					}
				vj_ws(x);
				if (!vj_at(x, ':'))
					return J_NONE;
				x->pos++;
			}
			if (vj_value(x, level + 1) == J_NONE)
				return J_NONE;
			vj_ws(x);
			if (vj_at(x, close)) {
				x->pos++;
				return c == '{' ? J_OBJECT : J_ARRAY;
			}
			if (!vj_at(x, ','))
				return J_NONE;
			x->pos++;
		}
	}
	if (c == '"')
		return vj_string(x) ? J_STRING : J_NONE;
	if (c == '-' || (c >= '0' && c <= '9'))
		return vj_number(x) ? J_NUMBER : J_NONE;
	if (c == 't')
		return vj_word(x, "true") ? J_TRUE : J_NONE;
	if (c == 'f')
		return vj_word(x, "false") ? J_FALSE : J_NONE;
	if (c == 'n')
		return vj_word(x, "null") ? J_NULL : J_NONE;
	return J_NONE;
}

/* The type of the JSON text s[0..len), J_NONE if it is not one. */
static enum jtype vj_document(const char *s, size_t len)
{
	struct vj x = {(const unsigned char *)s, len, 0};
	enum jtype t = vj_value(&x, 0);
	if (t == J_NONE)
		return J_NONE;
	vj_ws(&x);
	return x.pos == len ? t : J_NONE;
}

/* ---- helpers ---- */

/* Parses text (len bytes, not NUL-terminated) with cJSON, as one document. */
static cJSON *cjson_parse(const char *text, size_t len)
{
	char *copy = malloc(len + 1);
	FUZZ_CHECK(copy != NULL);
	memcpy(copy, text, len);
	copy[len] = '\0';
	cJSON *j = cJSON_ParseWithLengthOpts(copy, len + 1, NULL, 1);
	free(copy);
	return j;
}

/* True if text holds a \u escape of a UTF-16 surrogate (cJSON refuses a
 * lone one; RFC 8259's grammar allows it). */
static bool has_surrogate_escape(const char *s, size_t len)
{
	for (size_t i = 0; i + 2 < len; i++)
		if (s[i] == '\\' && s[i + 1] == 'u' && (s[i + 2] == 'd' || s[i + 2] == 'D'))
			return true;
	return false;
}

static const char *str_member(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Members named key at the top level of the object text s[0..len). */
static size_t count_members(const char *s, size_t len, const char *key)
{
	struct jspan obj = {0, len};
	struct jmember m;
	size_t pos = 0, n = 0;
	while (jscan_next_member(s, obj, &pos, &m))
		n += jscan_key_is(s, &m, key);
	return n;
}

/* The members tandem writes into a stored message (normalize.c), each once. */
static const char *const written_fields[] = {
    "type",    "messageId",    "userId",    "anonymousId",	 "groupId",    "previousId",
    "context", "integrations", "timestamp", "originalTimestamp", "receivedAt", "enriched",
};

/* How many messages collect_prepare must account for: 1, or the elements of
 * the first "batch" member. */
static size_t count_messages(const char *body, size_t len, enum collect_type t)
{
	if (t != COLLECT_BATCH)
		return 1;
	struct jspan root = {0, len};
	struct jscan_error e;
	FUZZ_CHECK(jscan_document(body, len, &root, &e) == J_OBJECT);
	struct jmember m;
	size_t pos = 0;
	while (jscan_next_member(body, root, &pos, &m)) {
		if (!jscan_key_is(body, &m, "batch"))
			continue;
		if (m.type != J_ARRAY)
			return 0;
		struct jspan item;
		enum jtype it;
		size_t n = 0, ipos = 0;
		while (jscan_next_element(body, m.val, &ipos, &item, &it)) {
			FUZZ_CHECK(item.start >= m.val.start && item.end <= m.val.end);
			FUZZ_CHECK(vj_document(body + item.start, item.end - item.start) == it);
			n++;
		}
		return n;
	}
	return 0;
}

/* The span of message `index` of the request: the body, or the index-th
 * element of its first "batch" member. */
static struct jspan message_span(const char *body, size_t len, enum collect_type t, int index)
{
	struct jspan root;
	struct jscan_error e;
	FUZZ_CHECK(jscan_document(body, len, &root, &e) != J_NONE);
	if (t != COLLECT_BATCH)
		return root;
	struct jmember m;
	size_t pos = 0;
	while (jscan_next_member(body, root, &pos, &m)) {
		if (!jscan_key_is(body, &m, "batch"))
			continue;
		struct jspan item;
		enum jtype it;
		size_t ipos = 0;
		for (int k = 0; jscan_next_element(body, m.val, &ipos, &item, &it); k++)
			if (k == index)
				return item;
		break;
	}
	FUZZ_CHECK(!"no such message");
	return root;
}

/*
 * A numeric id is stored as a string: an integer below 2^53 as its digits
 * ("4.0" -> "4"), any other number exactly as sent (Segment's rule, and
 * normalize.c's promise to store numbers as sent).
 */
static void check_numeric_ids(const char *body, struct jspan msg, const cJSON *stored)
{
	static const char *const ids[] = {"userId", "anonymousId", "groupId", "previousId"};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		struct jmember m;
		size_t pos = 0;
		bool found = false;
		while (!found && jscan_next_member(body, msg, &pos, &m))
			found = jscan_key_is(body, &m, ids[i]);
		if (!found || m.type != J_NUMBER)
			continue;
		size_t n = m.val.end - m.val.start;
		char *want = malloc(n + 32);
		FUZZ_CHECK(want != NULL);
		memcpy(want, body + m.val.start, n);
		want[n] = '\0';
		double d = strtod(want, NULL);
		if (d == floor(d) && fabs(d) < 9007199254740992.0)
			snprintf(want, n + 32, "%.0f", d);
		const char *got = str_member(stored, ids[i]);
		FUZZ_CHECK(got != NULL);
		FUZZ_CHECK(strcmp(got, want) == 0);
		free(want);
	}
}

static uint32_t hex4(const char *p)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v = v << 4 | (uint32_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

/* Decodes a valid JSON string span (quotes included) into code points, so
 * that two names compare as a JSON reader sees them ("\u0061" == "a", a
 * surrogate pair == the raw character). out has room for the span length. */
static size_t decode_name(const char *s, struct jspan str, uint32_t *out)
{
	size_t n = 0;
	for (size_t p = str.start + 1; p < str.end - 1;) {
		unsigned char c = (unsigned char)s[p];
		if (c == '\\') {
			char e = s[p + 1];
			if (e != 'u') {
				static const char from[] = "bfnrt", to[] = "\b\f\n\r\t";
				const char *k = strchr(from, e);
				out[n++] = (unsigned char)(k ? to[k - from] : e);
				p += 2;
				continue;
			}
			uint32_t u = hex4(s + p + 2);
			p += 6;
			if (u >= 0xd800 && u <= 0xdbff && s[p] == '\\' && s[p + 1] == 'u') {
				uint32_t lo = hex4(s + p + 2);
				if (lo >= 0xdc00 && lo <= 0xdfff) {
					u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
					p += 6;
				}
			}
			out[n++] = u;
		} else if (c < 0x80) {
			out[n++] = c;
			p++;
		} else {
			size_t k = fuzz_utf8_len((const unsigned char *)s + p, str.end - 1 - p);
			FUZZ_CHECK(k >= 2);
			uint32_t cp = c & (0x7f >> k);
			for (size_t j = 1; j < k; j++)
				cp = cp << 6 | ((unsigned char)s[p + j] & 0x3f);
			out[n++] = cp;
			p += k;
		}
	}
	return n;
}

/* True if the object span has two members with the same name. */
static bool has_duplicate_names(const char *s, struct jspan obj)
{
	struct name {
		uint32_t *cp;
		size_t n;
	} names[64];
	size_t count = 0;
	bool dup = false;
	struct jmember m;
	size_t pos = 0;
	while (!dup && count < 64 && jscan_next_member(s, obj, &pos, &m)) {
		uint32_t *cp = malloc((m.key.end - m.key.start) * sizeof(*cp));
		FUZZ_CHECK(cp != NULL);
		size_t n = decode_name(s, m.key, cp);
		for (size_t i = 0; i < count && !dup; i++)
			dup = names[i].n == n && memcmp(names[i].cp, cp, n * sizeof(*cp)) == 0;
		names[count++] = (struct name){cp, n};
	}
	for (size_t i = 0; i < count; i++)
		free(names[i].cp);
	return dup;
}

/* The first member called name of the object span, if it is an object. */
static bool object_member(const char *s, struct jspan obj, const char *name, struct jspan *out)
{
	struct jmember m;
	size_t pos = 0;
	while (jscan_next_member(s, obj, &pos, &m)) {
		if (jscan_key_is(s, &m, name)) {
			*out = m.val;
			return m.type == J_OBJECT;
		}
	}
	return false;
}

/*
 * context and integrations are the message's own object merged with the
 * batch's ("the message's own key wins"): if neither has a name twice, the
 * stored object does not either.
 */
static void check_merged(const char *body, struct jspan msg, const struct jspan *batch_root,
			 const char *json, size_t json_len)
{
	static const char *const merged[] = {"context", "integrations"};
	struct jspan stored_obj = {0, json_len};
	for (size_t i = 0; i < 2; i++) {
		struct jspan own, def, out;
		if (!object_member(json, stored_obj, merged[i], &out))
			continue;
		if (object_member(body, msg, merged[i], &own) && has_duplicate_names(body, own))
			continue;
		if (batch_root && object_member(body, *batch_root, merged[i], &def) &&
		    has_duplicate_names(body, def))
			continue;
		FUZZ_CHECK(!has_duplicate_names(json, out));
	}
}

/*
 * No top-level member name holds U+0000: a reader with C strings (cJSON, and
 * so anything that loads stored events with it) would take "userId\u0000"
 * for "userId" and see the sender's value instead of the one tandem checked.
 */
static void check_names(const char *json, size_t json_len)
{
	struct jspan obj = {0, json_len};
	struct jmember m;
	size_t pos = 0;
	while (jscan_next_member(json, obj, &pos, &m)) {
		uint32_t *cp = malloc((m.key.end - m.key.start) * sizeof(*cp));
		FUZZ_CHECK(cp != NULL);
		size_t n = decode_name(json, m.key, cp);
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK(cp[i] != 0);
		free(cp);
	}
}

/* ---- checks on a prepared batch ---- */

/* want_type is 0 when any type will do; msg is the message as sent and
 * batch_root the batch body around it (NULL if none). */
static void check_event(const struct collect_batch *b, size_t i, enum collect_type want_type,
			const struct collect_limits *lim, const char *body, struct jspan msg,
			const struct jspan *batch_root)
{
	struct collect_event_view v;
	FUZZ_CHECK(b->off[i] <= b->payloads.len && b->len[i] <= b->payloads.len - b->off[i]);
	FUZZ_CHECK(collect_event_decode(b->payloads.data + b->off[i], b->len[i], &v) == 0);
	FUZZ_CHECK(v.type >= COLLECT_IDENTIFY && v.type <= COLLECT_ALIAS);
	FUZZ_CHECK(!want_type || v.type == want_type);
	FUZZ_CHECK(v.source_id == SOURCE_ID);
	FUZZ_CHECK(v.received_ms == RECEIVED_MS);
	FUZZ_CHECK(v.message_id_len >= 1 && v.message_id_len <= COLLECT_MSGID_MAX);
	FUZZ_CHECK(memchr(v.message_id, '\0', v.message_id_len) == NULL);
	FUZZ_CHECK(fuzz_is_utf8((const unsigned char *)v.message_id, v.message_id_len));
	FUZZ_CHECK(v.json_len <= lim->max_event_bytes);

	/* valid JSON, an object, with the members tandem writes once */
	FUZZ_CHECK(vj_document(v.json, v.json_len) == J_OBJECT);
	for (size_t k = 0; k < sizeof(written_fields) / sizeof(written_fields[0]); k++)
		FUZZ_CHECK(count_members(v.json, v.json_len, written_fields[k]) <= 1);
	FUZZ_CHECK(count_members(v.json, v.json_len, "writeKey") == 0);
	check_merged(body, msg, batch_root, v.json, v.json_len);
	check_names(v.json, v.json_len);

	cJSON *j = cjson_parse(v.json, v.json_len);
	if (!j) {
		FUZZ_CHECK(has_surrogate_escape(v.json, v.json_len));
		return;
	}
	FUZZ_CHECK(cJSON_IsObject(j));
	const char *type = str_member(j, "type");
	FUZZ_CHECK(type && strcmp(type, collect_type_name(v.type)) == 0);
	const char *mid = str_member(j, "messageId");
	FUZZ_CHECK(mid && strlen(mid) == v.message_id_len &&
		   memcmp(mid, v.message_id, v.message_id_len) == 0);
	char iso[TD_ISO8601_LEN];
	td_time_format(RECEIVED_MS, iso);
	const char *recv = str_member(j, "receivedAt");
	FUZZ_CHECK(recv && strcmp(recv, iso) == 0);
	td_time_format(v.timestamp_ms, iso);
	const char *ts = str_member(j, "timestamp");
	FUZZ_CHECK(ts && strcmp(ts, iso) == 0);
	check_numeric_ids(body, msg, j);
	cJSON_Delete(j);
}

static void check_reject(const struct collect_reject *r)
{
	FUZZ_CHECK((unsigned)r->reason < COLLECT_R_COUNT);
	FUZZ_CHECK(strcmp(collect_reason_code(r->reason), "unknown") != 0);
	FUZZ_CHECK(memchr(r->field, '\0', sizeof(r->field)) != NULL);
	/* message_id: NULL or a live string, as sent (strlen lets ASan check it) */
	size_t mid_len = r->message_id ? strlen(r->message_id) : 0;
	if (r->message_id && r->reason == COLLECT_R_MESSAGE_ID_TOO_LONG)
		FUZZ_CHECK(mid_len > COLLECT_MSGID_MAX);
	FUZZ_CHECK(memchr(r->error, '\0', sizeof(r->error)) != NULL && r->error[0] != '\0');
	FUZZ_CHECK(r->raw != NULL);
	if (r->reason != COLLECT_R_INVALID_JSON) /* else raw is the line as received */
		FUZZ_CHECK(vj_document(r->raw, strlen(r->raw)) != J_NONE);
}

/* Every request position 0..nmsg-1 is an event or a reject, exactly once. */
static void check_accounting(const struct collect_batch *b, size_t nmsg)
{
	FUZZ_CHECK(b->n + b->nrejects == nmsg);
	unsigned char *seen = calloc(nmsg ? nmsg : 1, 1);
	FUZZ_CHECK(seen != NULL);
	for (size_t i = 0; i < b->n; i++) {
		FUZZ_CHECK(b->index[i] >= 0 && (size_t)b->index[i] < nmsg && !seen[b->index[i]]);
		seen[b->index[i]] = 1;
	}
	for (size_t i = 0; i < b->nrejects; i++) {
		int k = b->rejects[i].index;
		FUZZ_CHECK(k >= 0 && (size_t)k < nmsg && !seen[k]);
		seen[k] = 1;
	}
	free(seen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned control = data[0];
	enum collect_type type = type_of_control[control & 7];
	struct collect_limits lim;
	collect_limits_default(&lim);
	if (control & 0x08) {
		lim.max_event_bytes = 200;
		lim.max_batch_events = 4;
	}
	static struct enrich *enr;
	if (!enr) {
		char err[300];
		FUZZ_CHECK(enrich_new(&enr, NULL, NULL, err, sizeof(err)) == 0);
	}
	struct collect_origin origin = {
	    .source_id = SOURCE_ID,
	    .received_ms = RECEIVED_MS,
	    .ip = (control & 0x10) ? "203.0.113.9" : NULL,
	    .enrich = (control & 0x20) ? enr : NULL,
	    .ip_mode = (control & 0x40)	  ? ENRICH_IP_TRUNCATE
		       : (control & 0x80) ? ENRICH_IP_DROP
					  : ENRICH_IP_KEEP,
	};

	/* the collector wants body[len] == '\0', as the HTTP layer's td_buf has */
	size_t len = size - 1;
	char *body = malloc(len + 1);
	FUZZ_CHECK(body != NULL);
	memcpy(body, data + 1, len);
	body[len] = '\0';

	/* the scanner against the grammar */
	enum jtype want = vj_document(body, len);
	struct jspan root = {0, 0};
	struct jscan_error je = {0, NULL};
	enum jtype got = jscan_document(body, len, &root, &je);
	FUZZ_CHECK(got == want);
	if (got == J_NONE)
		FUZZ_CHECK(je.offset <= len && je.why && je.why[0]);
	else
		FUZZ_CHECK(root.start <= root.end && root.end <= len);

	char key[128];
	memset(key, 'x', sizeof(key));
	if (collect_body_write_key(body, len, key, sizeof(key)))
		FUZZ_CHECK(got == J_OBJECT && memchr(key, '\0', sizeof(key)) != NULL);

	struct collect_batch b, one;
	collect_batch_init(&b);
	collect_batch_init(&one);
	struct collect_error err;
	int rc = collect_prepare(body, len, type, &origin, &lim, &b, &err);
	FUZZ_CHECK(memchr(err.message, '\0', sizeof(err.message)) != NULL);
	if (got == J_NONE) {
		FUZZ_CHECK(rc == TD_EPARSE && err.reason == COLLECT_R_INVALID_JSON);
		FUZZ_CHECK(err.line >= 1 && err.column >= 1);
		FUZZ_CHECK(strncmp(err.message, "invalid JSON at line ", 21) == 0);
		FUZZ_CHECK(b.n == 0 && b.nrejects == 0);
	} else if (rc == TD_EINVAL) {
		FUZZ_CHECK(err.reason == COLLECT_R_NOT_OBJECT ||
			   err.reason == COLLECT_R_INVALID_BATCH);
		FUZZ_CHECK((err.reason == COLLECT_R_NOT_OBJECT) == (got != J_OBJECT));
		FUZZ_CHECK(b.n == 0 && b.nrejects == 0 && err.message[0]);
	} else if (rc == TD_ETOOLARGE) {
		FUZZ_CHECK(type == COLLECT_BATCH && err.reason == COLLECT_R_TOO_LARGE);
		FUZZ_CHECK(count_messages(body, len, type) > lim.max_batch_events);
		FUZZ_CHECK(b.n == 0 && b.nrejects == 0);
	} else {
		FUZZ_CHECK(rc == 0 && got == J_OBJECT);
		size_t nmsg = count_messages(body, len, type);
		FUZZ_CHECK(nmsg <= lim.max_batch_events || type != COLLECT_BATCH);
		check_accounting(&b, nmsg);
	}
	for (size_t i = 0; i < b.n; i++)
		check_event(&b, i, type == COLLECT_BATCH ? 0 : type, &lim, body,
			    message_span(body, len, type, b.index[i]),
			    type == COLLECT_BATCH ? &root : NULL);
	for (size_t i = 0; i < b.nrejects; i++)
		check_reject(&b.rejects[i]);

	/* the import path: the body as one NDJSON line */
	rc = collect_prepare_line(body, len, 3, &origin, &lim, &one);
	FUZZ_CHECK(rc == 0 || rc == TD_EINVAL);
	FUZZ_CHECK(rc == 0 ? one.n == 1 && one.nrejects == 0 : one.n == 0 && one.nrejects == 1);
	FUZZ_CHECK(one.n ? one.index[0] == 3 : one.rejects[0].index == 3);
	if (got == J_NONE)
		FUZZ_CHECK(one.rejects[0].reason == COLLECT_R_INVALID_JSON &&
			   strcmp(one.rejects[0].raw, body) == 0);
	for (size_t i = 0; i < one.n; i++)
		check_event(&one, i, 0, &lim, body, message_span(body, len, COLLECT_IDENTIFY, 0),
			    NULL);
	for (size_t i = 0; i < one.nrejects; i++)
		check_reject(&one.rejects[i]);

	collect_batch_release(&b);
	collect_batch_release(&one);
	free(body);
	return 0;
}
