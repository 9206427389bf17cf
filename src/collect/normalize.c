/*
 * normalize.c - validation and normalization of Segment messages, on spans
 * of the request text (see jscan.h for why there is no JSON tree here).
 *
 * A message's members are split in two: the managed ones, which tandem checks
 * and rewrites (type, writeKey, messageId, the ids, context, integrations and
 * the timestamps), and everything else, which is copied byte for byte. The
 * stored message is
 *   {"type":..,"messageId":..,ids..,<other members in their order>,
 *    "context":..,"integrations":..,"originalTimestamp":..,"timestamp":..,
 *    "receivedAt":..}
 *
 * Segment spec references:
 *   - common fields: https://segment.com/docs/connections/spec/common/
 *   - timestamps: "timestamp = receivedAt - (sentAt - originalTimestamp)"
 *     corrects client clock skew; like Snowplow's derived timestamp we apply it
 *     only when sentAt >= originalTimestamp (a negative skew means the client
 *     clock jumped between the event and the send, and there is nothing
 *     trustworthy to correct by).
 */
#include "collect/collect.h"
#include "collect/collect_int.h"
#include "collect/jscan.h"
#include "base/td.h"
#include "base/timeutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MEMBERS 256 /* top-level members of one message */

/* ---- message ids ---- */

static __thread uint64_t rng_state;

static uint64_t rng_next(void)
{
	if (rng_state == 0) {
		if (td_random(&rng_state, sizeof(rng_state)) || rng_state == 0)
			rng_state = td_mono_ns() | 1;
	}
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* A random (version 4) UUID, 36 characters + NUL. */
static void make_uuid(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	uint64_t a = rng_next(), b = rng_next();
	unsigned char u[16];
	memcpy(u, &a, 8);
	memcpy(u + 8, &b, 8);
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
	size_t k = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[k++] = '-';
		out[k++] = hex[u[i] >> 4];
		out[k++] = hex[u[i] & 15];
	}
	out[k] = '\0';
}

/* ---- the fields of one message ---- */

enum field {
	F_TYPE,
	F_WRITE_KEY,
	F_MESSAGE_ID,
	F_USER_ID,
	F_ANONYMOUS_ID,
	F_GROUP_ID,
	F_PREVIOUS_ID,
	F_CONTEXT,
	F_INTEGRATIONS,
	F_TIMESTAMP,
	F_ORIGINAL_TIMESTAMP,
	F_RECEIVED_AT,
	F_ENRICHED,    /* tandem's own: a client's copy is dropped */
	F_MANAGED_END, /* fields after this are checked but copied as they are */
	F_EVENT = F_MANAGED_END,
	F_NAME,
	F_CATEGORY,
	F_PROPERTIES,
	F_TRAITS,
	F_SENT_AT,
	F_COUNT,
	F_OTHER = F_COUNT
};

static const char *const field_names[F_COUNT] = {
    [F_TYPE] = "type",
    [F_WRITE_KEY] = "writeKey",
    [F_MESSAGE_ID] = "messageId",
    [F_USER_ID] = "userId",
    [F_ANONYMOUS_ID] = "anonymousId",
    [F_GROUP_ID] = "groupId",
    [F_PREVIOUS_ID] = "previousId",
    [F_CONTEXT] = "context",
    [F_INTEGRATIONS] = "integrations",
    [F_TIMESTAMP] = "timestamp",
    [F_ORIGINAL_TIMESTAMP] = "originalTimestamp",
    [F_RECEIVED_AT] = "receivedAt",
    [F_ENRICHED] = "enriched",
    [F_EVENT] = "event",
    [F_NAME] = "name",
    [F_CATEGORY] = "category",
    [F_PROPERTIES] = "properties",
    [F_TRAITS] = "traits",
    [F_SENT_AT] = "sentAt",
};

static enum field classify(const char *s, const struct jmember *m)
{
	const char *k = s + m->key.start + 1;
	size_t n = m->key.end - m->key.start - 2;
	char buf[32];
	if (memchr(k, '\\', n)) { /* an escaped key: compare its decoded form */
		size_t d = jscan_string(s, m->key, buf, sizeof(buf));
		if (d == (size_t)-1)
			return F_OTHER;
		k = buf;
		n = d;
	}
	if (n < 4 || n > 17)
		return F_OTHER;
	for (int f = 0; f < F_COUNT; f++)
		if (field_names[f][0] == k[0] && strlen(field_names[f]) == n &&
		    memcmp(field_names[f], k, n) == 0)
			return (enum field)f;
	return F_OTHER;
}

struct msg {
	const char *s;
	struct jspan span;
	struct jmember f[F_COUNT]; /* first occurrence; type J_NONE if absent */
	struct jspan other[MAX_MEMBERS];
	size_t nother;
};

static bool has(const struct msg *m, enum field f)
{
	return m->f[f].type != J_NONE && m->f[f].type != J_NULL;
}

/* ---- rejects ---- */

static int fail(struct collect_reject *r, enum collect_reason why, const char *field,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(struct collect_reject *r, enum collect_reason why, const char *field,
		const char *fmt, ...)
{
	va_list ap;
	r->reason = why;
	snprintf(r->field, sizeof(r->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	return -1;
}

static const char *type_word(enum jtype t)
{
	switch (t) {
	case J_OBJECT:
		return "an object";
	case J_ARRAY:
		return "an array";
	case J_STRING:
		return "a string";
	case J_NUMBER:
		return "a number";
	case J_TRUE:
	case J_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

/* An identifier: string or number (or null/absent). 1 = present and not
 * empty, 0 = absent or empty, -1 = wrong type (r filled). */
static int id_field(const struct msg *m, enum field f, struct collect_reject *r)
{
	const struct jmember *v = &m->f[f];
	if (!has(m, f))
		return 0;
	if (v->type == J_NUMBER)
		return 1;
	if (v->type != J_STRING)
		return fail(r, COLLECT_R_INVALID_FIELD, field_names[f],
			    "%s must be a string (or a number), not %s", field_names[f],
			    type_word(v->type));
	return v->val.end - v->val.start > 2;
}

static int want_type(const struct msg *m, enum field f, enum jtype t, struct collect_reject *r)
{
	if (!has(m, f) || m->f[f].type == t)
		return 0;
	return fail(r, COLLECT_R_INVALID_FIELD, field_names[f], "%s must be %s, not %s",
		    field_names[f], type_word(t), type_word(m->f[f].type));
}

static int time_field(const struct msg *m, enum field f, int64_t *ms, struct collect_reject *r)
{
	char buf[64];
	if (!has(m, f))
		return 0;
	size_t n = m->f[f].type == J_STRING ? jscan_string(m->s, m->f[f].val, buf, sizeof(buf))
					    : (size_t)-1;
	if (n == (size_t)-1 || td_time_parse(buf, n, ms))
		return fail(r, COLLECT_R_INVALID_TIMESTAMP, field_names[f],
			    "%s must be an ISO-8601 timestamp such as \"2026-01-31T12:00:00.000Z\"",
			    field_names[f]);
	return 1;
}

/* ---- output ---- */

struct out {
	struct td_buf *b;
	bool first; /* no member written yet */
	int rc;
};

static void put(struct out *o, const char *p, size_t n)
{
	if (!o->rc)
		o->rc = td_buf_append(o->b, p, n);
}

static void put_str(struct out *o, const char *z)
{
	put(o, z, strlen(z));
}

static void member_begin(struct out *o, const char *name)
{
	if (!o->first)
		put(o, ",", 1);
	o->first = false;
	put(o, "\"", 1);
	put_str(o, name);
	put(o, "\":", 2);
}

static void put_raw_member(struct out *o, const char *s, size_t start, size_t end)
{
	if (!o->first)
		put(o, ",", 1);
	o->first = false;
	put(o, s + start, end - start);
}

/* The text of a numeric id as Segment makes it a string: integers below 2^53
 * as their decimal digits (4.0 and 4e0 -> "4"), other numbers as sent. Writes
 * into out (cap >= 32) and returns the length, or 0 when the text to use is
 * the number exactly as sent. */
static size_t number_text(const struct msg *m, enum field f, char *out, size_t cap)
{
	const struct jmember *v = &m->f[f];
	char *lex = td_strndup(m->s + v->val.start, v->val.end - v->val.start);
	double d = strtod(lex, NULL);
	free(lex);
	if (d == floor(d) && fabs(d) < 9007199254740992.0)
		return (size_t)snprintf(out, cap, "%.0f", d);
	return 0;
}

/* An id value as a JSON string: strings as sent, numbers as their text. */
static void put_id(struct out *o, const struct msg *m, enum field f)
{
	const struct jmember *v = &m->f[f];
	member_begin(o, field_names[f]);
	if (v->type == J_STRING) {
		put(o, m->s + v->val.start, v->val.end - v->val.start);
		return;
	}
	char txt[32];
	size_t n = number_text(m, f, txt, sizeof(txt));
	put(o, "\"", 1);
	if (n)
		put(o, txt, n);
	else /* a number's characters need no escaping inside a string */
		put(o, m->s + v->val.start, v->val.end - v->val.start);
	put(o, "\"", 1);
}

/* True if object span obj (of s) has a member named like key (a key span of
 * ks), whose value is not null when skip_null. */
static bool obj_has(const char *s, struct jspan obj, const char *ks, struct jspan key,
		    bool skip_null)
{
	size_t pos = 0;
	struct jmember mm;
	while (jscan_next_member(s, obj, &pos, &mm))
		if (jscan_strings_equal(s, mm.key, ks, key))
			return !(skip_null && mm.type == J_NULL);
	return false;
}

static const char ip_key_text[] = "\"ip\"";
static const struct jspan ip_key = {0, sizeof(ip_key_text) - 1};

/*
 * Writes member `name`: the message's object (or nothing) plus the defaults
 * of the batch object it lacks, plus "ip" when ip is given and missing. With
 * replace_ip every "ip" of the message and the batch is left out and ip (if
 * not NULL) written instead: the address as the source's IP mode stores it.
 */
static void put_merged(struct out *o, const struct msg *m, enum field f, const char *bs,
		       const struct jmember *batch, const char *ip, bool replace_ip)
{
	const struct jmember *own = &m->f[f];
	bool own_obj = own->type == J_OBJECT;
	bool batch_obj = batch && batch->type == J_OBJECT;
	bool need_ip =
	    ip && (replace_ip || !(own_obj && obj_has(m->s, own->val, ip_key_text, ip_key, true)));
	bool need_batch = false;
	if (replace_ip)
		need_batch = (own_obj && obj_has(m->s, own->val, ip_key_text, ip_key, false)) ||
			     (batch_obj && obj_has(bs, batch->val, ip_key_text, ip_key, false));
	if (batch_obj) {
		size_t pos = 0;
		struct jmember bm;
		while (!need_batch && jscan_next_member(bs, batch->val, &pos, &bm))
			need_batch = !own_obj || !obj_has(m->s, own->val, bs, bm.key, false);
	}
	if (!need_ip && !need_batch) {
		if (own_obj)
			put_raw_member(o, m->s, own->key.start, own->val.end);
		return;
	}
	member_begin(o, field_names[f]);
	put(o, "{", 1);
	bool first = true;
	if (own_obj) {
		size_t pos = 0;
		struct jmember mm;
		while (jscan_next_member(m->s, own->val, &pos, &mm)) {
			if ((replace_ip || (need_ip && mm.type == J_NULL)) &&
			    jscan_key_is(m->s, &mm, "ip"))
				continue; /* replaced below */
			if (!first)
				put(o, ",", 1);
			first = false;
			put(o, m->s + mm.key.start, mm.val.end - mm.key.start);
		}
	}
	if (batch_obj) {
		size_t pos = 0;
		struct jmember bm;
		while (jscan_next_member(bs, batch->val, &pos, &bm)) {
			if (own_obj && obj_has(m->s, own->val, bs, bm.key, false))
				continue; /* the message's own key wins */
			bool is_ip = jscan_strings_equal(bs, bm.key, ip_key_text, ip_key);
			if (is_ip && (replace_ip || (need_ip && bm.type == J_NULL)))
				continue;
			if (!first)
				put(o, ",", 1);
			first = false;
			put(o, bs + bm.key.start, bm.val.end - bm.key.start);
			if (is_ip && bm.type != J_NULL)
				need_ip = false; /* the batch's ip counts as the sender's */
		}
	}
	if (need_ip) {
		if (!first)
			put(o, ",", 1);
		put(o, "\"ip\":", 5);
		struct td_buf *b = o->b;
		if (!o->rc)
			o->rc = td_buf_json_str(b, ip);
	}
	put(o, "}", 1);
}

static void put_time(struct out *o, const char *name, int64_t ms)
{
	char buf[TD_ISO8601_LEN + 2];
	buf[0] = '"';
	td_time_format(ms, buf + 1);
	size_t n = strlen(buf);
	buf[n] = '"';
	member_begin(o, name);
	put(o, buf, n + 1);
}

struct env {
	const struct collect_origin *o;
	const struct collect_limits *lim;
	const char *bs; /* text of the batch body, for the two below */
	const struct jmember *batch_context, *batch_integrations;
};

/* ---- one message ---- */

static bool type_from_name(const char *s, struct jspan v, enum collect_type *t)
{
	static const char *const names[] = {NULL,     "identify", "track", "page",
					    "screen", "group",	  "alias"};
	char buf[16];
	if (jscan_string(s, v, buf, sizeof(buf)) == (size_t)-1)
		return false;
	for (int i = COLLECT_IDENTIFY; i <= COLLECT_ALIAS; i++)
		if (!strcmp(buf, names[i])) {
			*t = (enum collect_type)i;
			return true;
		}
	return false;
}

static struct collect_reject *new_reject(struct collect_batch *b, int index)
{
	if (b->nrejects == b->caprejects) {
		b->caprejects = b->caprejects ? b->caprejects * 2 : 8;
		b->rejects = td_realloc(b->rejects, b->caprejects * sizeof(*b->rejects));
	}
	struct collect_reject *r = &b->rejects[b->nrejects];
	memset(r, 0, sizeof(*r));
	r->index = index;
	return r;
}

void collect_batch_add_reject(struct collect_batch *b, int index, enum collect_reason reason,
			      const char *error, const char *raw, size_t rawlen)
{
	struct collect_reject *r = new_reject(b, index);
	r->reason = reason;
	snprintf(r->error, sizeof(r->error), "%s", error);
	r->raw = raw ? td_strndup(raw, rawlen) : NULL;
	b->nrejects++;
}

static void put32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, 4); /* x86-64 and aarch64 are little-endian */
}

static void put64(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* Validates the message at span (type t, or its own "type" if t is
 * COLLECT_BATCH) and appends its payload to b; 0, or -1 with r filled. */
static int normalize(struct collect_batch *b, const char *s, struct jspan span, enum jtype jt,
		     enum collect_type t, int index, const struct env *env,
		     struct collect_reject *r)
{
	if (jt != J_OBJECT)
		return fail(r, COLLECT_R_NOT_OBJECT, "", "each message must be a JSON object");
	struct msg *m = td_malloc(sizeof(*m));
	int rc = -1;
	m->s = s;
	m->span = span;
	m->nother = 0;
	for (int f = 0; f < F_COUNT; f++)
		m->f[f].type = J_NONE;
	size_t pos = 0;
	struct jmember mm;
	while (jscan_next_member(s, span, &pos, &mm)) {
		enum field f = classify(s, &mm);
		if (f != F_OTHER && m->f[f].type != J_NONE) {
			/* readers disagree on which copy counts (cJSON takes the first,
			 * JavaScript the last): a checked field must be unambiguous */
			fail(r, COLLECT_R_INVALID_FIELD, field_names[f],
			     "the field \"%s\" appears more than once", field_names[f]);
			goto out;
		}
		if (f != F_OTHER)
			m->f[f] = mm;
		if (f >= F_MANAGED_END) { /* copied as it is */
			if (m->nother == MAX_MEMBERS) {
				fail(r, COLLECT_R_INVALID_FIELD, "",
				     "a message may have at most %d top-level fields", MAX_MEMBERS);
				goto out;
			}
			m->other[m->nother++] = (struct jspan){mm.key.start, mm.val.end};
		}
	}

	/* the message id, for the reject too */
	char mid[COLLECT_MSGID_MAX + 1];
	size_t midlen = 0;
	bool assigned = false;
	if (m->f[F_MESSAGE_ID].type == J_STRING) {
		size_t n = m->f[F_MESSAGE_ID].val.end - m->f[F_MESSAGE_ID].val.start;
		char *full = td_malloc(n + 1);
		size_t d = jscan_string(s, m->f[F_MESSAGE_ID].val, full, n + 1);
		if (d == (size_t)-1) { /* the only way it can fail: a \u0000 inside */
			free(full);
			fail(r, COLLECT_R_INVALID_FIELD, "messageId",
			     "messageId may not contain \\u0000");
			goto out;
		}
		r->message_id = full;
		if (d > COLLECT_MSGID_MAX) {
			fail(r, COLLECT_R_MESSAGE_ID_TOO_LONG, "messageId",
			     "messageId is %zu bytes; at most %d are allowed", d,
			     COLLECT_MSGID_MAX);
			goto out;
		}
		memcpy(mid, full, d + 1);
		midlen = d;
	} else if (m->f[F_MESSAGE_ID].type == J_NUMBER) {
		size_t n = m->f[F_MESSAGE_ID].val.end - m->f[F_MESSAGE_ID].val.start;
		if (n > COLLECT_MSGID_MAX) {
			fail(r, COLLECT_R_MESSAGE_ID_TOO_LONG, "messageId",
			     "messageId is %zu characters; at most %d are allowed", n,
			     COLLECT_MSGID_MAX);
			goto out;
		}
	} else if (has(m, F_MESSAGE_ID)) {
		fail(r, COLLECT_R_INVALID_FIELD, "messageId", "messageId must be a string, not %s",
		     type_word(m->f[F_MESSAGE_ID].type));
		goto out;
	}

	/* the type: from the endpoint, or the item's "type" inside a batch */
	if (t == COLLECT_BATCH &&
	    (m->f[F_TYPE].type != J_STRING || !type_from_name(s, m->f[F_TYPE].val, &t))) {
		fail(r, COLLECT_R_INVALID_TYPE, "type",
		     "type must be one of identify, track, page, screen, group, alias");
		goto out;
	}

	int has_user = id_field(m, F_USER_ID, r);
	int has_anon = has_user < 0 ? -1 : id_field(m, F_ANONYMOUS_ID, r);
	if (has_user < 0 || has_anon < 0)
		goto out;
	if (want_type(m, F_CONTEXT, J_OBJECT, r) || want_type(m, F_INTEGRATIONS, J_OBJECT, r) ||
	    want_type(m, F_PROPERTIES, J_OBJECT, r) || want_type(m, F_TRAITS, J_OBJECT, r))
		goto out;
	switch (t) {
	case COLLECT_TRACK:
		if (!has(m, F_EVENT) || (m->f[F_EVENT].type == J_STRING &&
					 m->f[F_EVENT].val.end - m->f[F_EVENT].val.start == 2)) {
			fail(r, COLLECT_R_MISSING_EVENT, "event",
			     "track calls need an \"event\" name, e.g. \"Order Completed\"");
			goto out;
		}
		if (want_type(m, F_EVENT, J_STRING, r))
			goto out;
		break;
	case COLLECT_PAGE:
	case COLLECT_SCREEN:
		if (want_type(m, F_NAME, J_STRING, r) || want_type(m, F_CATEGORY, J_STRING, r))
			goto out;
		break;
	case COLLECT_GROUP: {
		int g = id_field(m, F_GROUP_ID, r);
		if (g < 0)
			goto out;
		if (g == 0) {
			fail(r, COLLECT_R_MISSING_GROUP_ID, "groupId",
			     "group calls need a \"groupId\"");
			goto out;
		}
		break;
	}
	case COLLECT_ALIAS: {
		int p = id_field(m, F_PREVIOUS_ID, r);
		if (p < 0)
			goto out;
		if (p == 0) {
			fail(r, COLLECT_R_MISSING_PREVIOUS_ID, "previousId",
			     "alias calls need a \"previousId\" (the old id)");
			goto out;
		}
		if (!has_user) {
			fail(r, COLLECT_R_MISSING_USER_ID, "userId",
			     "alias calls need a \"userId\" (the new id)");
			goto out;
		}
		break;
	}
	default:
		break;
	}
	if (t != COLLECT_ALIAS && !has_user && !has_anon) {
		fail(r, COLLECT_R_MISSING_IDENTITY, "userId",
		     "every message needs a \"userId\" or an \"anonymousId\"");
		goto out;
	}
	if (id_field(m, F_GROUP_ID, r) < 0 || id_field(m, F_PREVIOUS_ID, r) < 0)
		goto out;

	/* timestamps: the client's "timestamp" is the original one */
	int64_t orig = 0, sent = 0, dummy;
	int has_ts = time_field(m, F_TIMESTAMP, &orig, r);
	int has_sent = has_ts < 0 ? -1 : time_field(m, F_SENT_AT, &sent, r);
	int has_recv = has_sent < 0 ? -1 : time_field(m, F_RECEIVED_AT, &dummy, r);
	int has_orig = 0;
	if (has_ts < 0 || has_sent < 0 || has_recv < 0)
		goto out;
	enum field orig_field = F_TIMESTAMP;
	if (!has_ts) {
		has_orig = time_field(m, F_ORIGINAL_TIMESTAMP, &orig, r);
		if (has_orig < 0)
			goto out;
		orig_field = F_ORIGINAL_TIMESTAMP;
	}
	int64_t recv = env->o->received_ms, ts = recv;
	if (has_ts || has_orig) {
		ts = orig;
		if (has_sent && sent >= orig)
			ts = recv - (sent - orig);
	}

	if (m->f[F_MESSAGE_ID].type == J_NUMBER) {
		midlen = number_text(m, F_MESSAGE_ID, mid, sizeof(mid));
		if (!midlen) { /* as sent; at most 100 characters, checked above */
			midlen = m->f[F_MESSAGE_ID].val.end - m->f[F_MESSAGE_ID].val.start;
			memcpy(mid, s + m->f[F_MESSAGE_ID].val.start, midlen);
			mid[midlen] = '\0';
		}
	} else if (!midlen) {
		make_uuid(mid);
		midlen = 36;
		assigned = true;
	}

	/* write the payload: header, messageId, then the message */
	size_t start = b->payloads.len;
	unsigned char hdr[COLLECT_EVENT_HDR];
	struct out o = {.b = &b->payloads, .first = true};
	put(&o, (const char *)hdr, sizeof(hdr)); /* filled in below */
	put(&o, mid, midlen);
	size_t json_at = b->payloads.len;
	put(&o, "{", 1);
	member_begin(&o, "type");
	put(&o, "\"", 1);
	put_str(&o, collect_type_name(t));
	put(&o, "\"", 1);
	member_begin(&o, "messageId");
	if (m->f[F_MESSAGE_ID].type == J_STRING && !assigned) { /* as sent, escapes kept */
		put(&o, s + m->f[F_MESSAGE_ID].val.start,
		    m->f[F_MESSAGE_ID].val.end - m->f[F_MESSAGE_ID].val.start);
	} else {
		put(&o, "\"", 1);
		put(&o, mid, midlen);
		put(&o, "\"", 1);
	}
	static const enum field ids[] = {F_USER_ID, F_ANONYMOUS_ID, F_GROUP_ID, F_PREVIOUS_ID};
	for (size_t i = 0; i < TD_ARRAY_LEN(ids); i++)
		if (has(m, ids[i]))
			put_id(&o, m, ids[i]);
	for (size_t i = 0; i < m->nother; i++)
		put_raw_member(&o, s, m->other[i].start, m->other[i].end);
	const char *ip = env->o->ip;
	const struct enrich_result *er = NULL;
	bool replace_ip = false;
	if (env->o->enrich) {
		struct collect_enrich_src src = {
		    .s = s,
		    .context = m->f[F_CONTEXT].type == J_OBJECT ? &m->f[F_CONTEXT].val : NULL,
		    .properties =
			m->f[F_PROPERTIES].type == J_OBJECT ? &m->f[F_PROPERTIES].val : NULL,
		    .bs = env->bs,
		    .batch_context = env->batch_context ? &env->batch_context->val : NULL,
		    .type = t};
		er = collect_enrich(&src, env->o, &ip, &replace_ip);
	}
	put_merged(&o, m, F_CONTEXT, env->bs, env->batch_context, ip, replace_ip);
	put_merged(&o, m, F_INTEGRATIONS, env->bs, env->batch_integrations, NULL, false);
	if (er) {
		member_begin(&o, "enriched");
		if (!o.rc)
			o.rc = enrich_result_json(er, o.b);
	}
	if (has_ts || has_orig) {
		member_begin(&o, "originalTimestamp");
		put(&o, s + m->f[orig_field].val.start,
		    m->f[orig_field].val.end - m->f[orig_field].val.start);
	}
	put_time(&o, "timestamp", ts);
	put_time(&o, "receivedAt", recv);
	put(&o, "}", 1);

	size_t jlen = b->payloads.len - json_at;
	if (o.rc || jlen > env->lim->max_event_bytes) {
		b->payloads.len = start;
		if (b->payloads.data)
			b->payloads.data[start] = '\0'; /* td_buf keeps a NUL after its contents */
		fail(r, COLLECT_R_EVENT_TOO_LARGE, "",
		     "the message is %zu bytes once normalized; at most %zu are allowed (trim "
		     "properties or raise max-event-bytes)",
		     jlen, env->lim->max_event_bytes);
		goto out;
	}
	hdr[0] = 1;
	hdr[1] = (unsigned char)t;
	hdr[2] = assigned ? 1 : 0;
	hdr[3] = (unsigned char)midlen;
	put32(hdr + 4, env->o->source_id);
	put64(hdr + 8, (uint64_t)recv);
	put64(hdr + 16, (uint64_t)ts);
	memcpy(b->payloads.data + start, hdr, sizeof(hdr));
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		b->off = td_realloc(b->off, b->cap * sizeof(*b->off));
		b->len = td_realloc(b->len, b->cap * sizeof(*b->len));
		b->index = td_realloc(b->index, b->cap * sizeof(*b->index));
	}
	b->off[b->n] = start;
	b->len[b->n] = b->payloads.len - start;
	b->index[b->n] = index;
	b->n++;
	rc = 0;
out:
	free(m);
	return rc;
}

/* Prepares one message; a reject is kept (with the message's raw text). */
static void prepare_one(struct collect_batch *b, const char *s, struct jspan span, enum jtype jt,
			enum collect_type t, int index, const struct env *env)
{
	struct collect_reject *r = new_reject(b, index);
	if (normalize(b, s, span, jt, t, index, env, r) == 0) {
		free(r->message_id); /* the reject slot is simply not kept */
		r->message_id = NULL;
		return;
	}
	r->raw = td_strndup(s + span.start, span.end - span.start);
	b->nrejects++;
}

static void json_error(const char *s, size_t len, const struct jscan_error *e,
		       struct collect_error *err)
{
	err->reason = COLLECT_R_INVALID_JSON;
	jscan_line_col(s, len, e->offset, &err->line, &err->column);
	unsigned char c = e->offset < len ? (unsigned char)s[e->offset] : 0;
	if (c >= 0x20 && c < 0x7f)
		snprintf(err->message, sizeof(err->message),
			 "invalid JSON at line %d, column %d: %s (found '%c')", err->line,
			 err->column, e->why, c);
	else
		snprintf(err->message, sizeof(err->message),
			 "invalid JSON at line %d, column %d: %s", err->line, err->column, e->why);
}

int collect_prepare(const char *body, size_t len, enum collect_type t,
		    const struct collect_origin *o, const struct collect_limits *lim,
		    struct collect_batch *out, struct collect_error *err)
{
	struct jscan_error je;
	struct jspan root;
	memset(err, 0, sizeof(*err));
	enum jtype rt = jscan_document(body, len, &root, &je);
	if (rt == J_NONE) {
		json_error(body, len, &je, err);
		return TD_EPARSE;
	}
	if (rt != J_OBJECT) {
		err->reason = COLLECT_R_NOT_OBJECT;
		snprintf(err->message, sizeof(err->message), "the body must be a JSON object");
		return TD_EINVAL;
	}
	struct env env = {.o = o, .lim = lim, .bs = body};
	if (t != COLLECT_BATCH) {
		prepare_one(out, body, root, rt, t, 0, &env);
		return 0;
	}
	struct jmember batch = {.type = J_NONE}, ctx = {.type = J_NONE}, integ = {.type = J_NONE};
	size_t pos = 0;
	struct jmember mm;
	while (jscan_next_member(body, root, &pos, &mm)) {
		if (batch.type == J_NONE && jscan_key_is(body, &mm, "batch"))
			batch = mm;
		else if (ctx.type == J_NONE && jscan_key_is(body, &mm, "context"))
			ctx = mm;
		else if (integ.type == J_NONE && jscan_key_is(body, &mm, "integrations"))
			integ = mm;
	}
	if (batch.type != J_ARRAY) {
		err->reason = COLLECT_R_INVALID_BATCH;
		snprintf(err->message, sizeof(err->message),
			 "the body needs a \"batch\" array of messages");
		return TD_EINVAL;
	}
	env.batch_context = ctx.type == J_OBJECT ? &ctx : NULL;
	env.batch_integrations = integ.type == J_OBJECT ? &integ : NULL;
	pos = 0;
	struct jspan item;
	enum jtype it;
	int i = 0;
	while (jscan_next_element(body, batch.val, &pos, &item, &it)) {
		if ((size_t)i == lim->max_batch_events) {
			collect_batch_reset(out);
			err->reason = COLLECT_R_TOO_LARGE;
			snprintf(err->message, sizeof(err->message),
				 "a batch holds at most %zu messages", lim->max_batch_events);
			return TD_ETOOLARGE;
		}
		prepare_one(out, body, item, it, COLLECT_BATCH, i++, &env);
	}
	return 0;
}

int collect_prepare_line(const char *line, size_t len, int index, const struct collect_origin *o,
			 const struct collect_limits *lim, struct collect_batch *out)
{
	struct jscan_error je;
	struct jspan root;
	enum jtype rt = jscan_document(line, len, &root, &je);
	if (rt == J_NONE) {
		struct collect_error err;
		json_error(line, len, &je, &err);
		collect_batch_add_reject(out, index, COLLECT_R_INVALID_JSON, err.message, line,
					 len);
		return TD_EINVAL;
	}
	struct env env = {.o = o, .lim = lim, .bs = line};
	size_t before = out->nrejects;
	prepare_one(out, line, root, rt, COLLECT_BATCH, index, &env);
	return out->nrejects > before ? TD_EINVAL : 0;
}

bool collect_body_write_key(const char *body, size_t len, char *out, size_t cap)
{
	struct jscan_error je;
	struct jspan root;
	if (jscan_document(body, len, &root, &je) != J_OBJECT)
		return false;
	size_t pos = 0;
	struct jmember mm;
	while (jscan_next_member(body, root, &pos, &mm))
		if (mm.type == J_STRING && jscan_key_is(body, &mm, "writeKey"))
			return jscan_string(body, mm.val, out, cap) != (size_t)-1;
	return false;
}
