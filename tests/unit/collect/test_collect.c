/*
 * Parsing, validation and normalization of Segment messages (collect.c).
 */
#include "base/td.h"
#include "base/timeutil.h"
#include "collect/collect.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int64_t NOW = 1795000000000; /* 2026-11-18T... */

struct prepared {
	struct collect_batch b;
	cJSON *out[16]; /* parsed normalized JSON of each accepted event */
	int rc;
	enum collect_reason why;
};

static void prepare(struct prepared *p, const char *body, enum collect_type t, const char *ip)
{
	struct collect_limits lim;
	collect_limits_default(&lim);
	struct collect_origin o = {.source_id = 7, .received_ms = NOW, .ip = ip};
	struct collect_error err;
	memset(p, 0, sizeof(*p));
	collect_batch_init(&p->b);
	p->rc = collect_prepare(body, strlen(body), t, &o, &lim, &p->b, &err);
	p->why = err.reason;
	for (size_t i = 0; i < p->b.n && i < 16; i++) {
		struct collect_event_view v;
		cr_assert_eq(
		    collect_event_decode(p->b.payloads.data + p->b.off[i], p->b.len[i], &v), 0);
		cr_assert_eq(v.source_id, 7u);
		cr_assert_eq(v.received_ms, NOW);
		p->out[i] = cJSON_ParseWithLength(v.json, v.json_len);
		cr_assert_not_null(p->out[i], "stored JSON must parse: %.*s", (int)v.json_len,
				   v.json);
	}
}

static void release(struct prepared *p)
{
	for (size_t i = 0; i < 16; i++)
		cJSON_Delete(p->out[i]);
	collect_batch_release(&p->b);
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

Test(collect, paths_map_to_types)
{
	enum collect_type t;
	cr_assert(collect_type_from_path("/v1/track", &t) && t == COLLECT_TRACK);
	cr_assert(collect_type_from_path("/v1/t", &t) && t == COLLECT_TRACK);
	cr_assert(collect_type_from_path("/v1/i", &t) && t == COLLECT_IDENTIFY);
	cr_assert(collect_type_from_path("/v1/a", &t) && t == COLLECT_ALIAS);
	cr_assert(collect_type_from_path("/v1/import", &t) && t == COLLECT_BATCH);
	cr_assert(collect_type_from_path("/v1/b", &t) && t == COLLECT_BATCH);
	cr_assert_not(collect_type_from_path("/v1/tracks", &t));
	cr_assert_not(collect_type_from_path("/v2/track", &t));
}

static void json_error(const char *body, struct collect_error *err)
{
	struct collect_limits lim;
	collect_limits_default(&lim);
	struct collect_origin o = {.source_id = 1, .received_ms = NOW};
	struct collect_batch b;
	collect_batch_init(&b);
	cr_assert_eq(collect_prepare(body, strlen(body), COLLECT_TRACK, &o, &lim, &b, err),
		     TD_EPARSE, "%s must be refused", body);
	cr_assert_eq(err->reason, COLLECT_R_INVALID_JSON);
	cr_assert_eq(b.n + b.nrejects, 0);
	collect_batch_release(&b);
}

Test(collect, json_error_has_line_and_column)
{
	struct collect_error err;
	json_error("{\n  \"userId\": \"a\",\n  \"event\": x\n}", &err);
	cr_assert_eq(err.line, 3);
	cr_assert_eq(err.column, 12);
	cr_assert(strstr(err.message, "line 3, column 12"), "%s", err.message);
}

Test(collect, json_trailing_garbage_and_empty_rejected)
{
	struct collect_error err;
	json_error("{} x", &err);
	cr_assert(strstr(err.message, "after the JSON value"), "%s", err.message);
	json_error("", &err);
	cr_assert(strstr(err.message, "empty"), "%s", err.message);
}

Test(collect, strict_json_keeps_stored_messages_valid)
{
	/* what passes through byte for byte must be JSON a strict reader accepts */
	static const char *const bad[] = {
	    "{\"userId\":\"u\",\"event\":\"e\",\"properties\":{\"n\":01}}",
	    "{\"userId\":\"u\",\"event\":\"e\",\"properties\":{\"n\":1.}}",
	    "{\"userId\":\"u\",\"event\":\"e\",\"properties\":{\"n\":-}}",
	    "{\"userId\":\"u\",\"event\":\"e\",\"properties\":{\"n\":NaN}}",
	    "{\"userId\":\"u\",\"event\":\"e\",\"properties\":{\"s\":\"a\tb\"}}",
	    "{\"userId\":\"u\",\"event\":\"e\",\"properties\":{\"s\":\"\xff\"}}",
	    "{\"userId\":\"u\",\"event\":\"e\",\"properties\":{\"s\":\"\xc0\xaf\"}}",
	    "{\"userId\":\"u\",\"event\":\"e\",\"properties\":{\"s\":\"\\x\"}}",
	    /* a C-string reader would take this for a second userId */
	    "{\"userId\":\"alice\",\"event\":\"e\",\"userId\\u0000\":\"mallory\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct collect_error err;
		json_error(bad[i], &err);
	}
}

Test(collect, numbers_and_escapes_pass_through_exactly)
{
	struct prepared p;
	prepare(&p,
		"{\"userId\":\"u\",\"event\":\"e\",\"properties\":{\"big\":"
		"12345678901234567890,\"price\":19.90,\"s\":\"caf\\u00e9 \\\"q\\\"\"}}",
		COLLECT_TRACK, NULL);
	cr_assert_eq(p.b.n, 1);
	struct collect_event_view v;
	collect_event_decode(p.b.payloads.data + p.b.off[0], p.b.len[0], &v);
	char *json = td_strndup(v.json, v.json_len);
	cr_assert(strstr(json, "\"big\":12345678901234567890"), "%s", json);
	cr_assert(strstr(json, "\"price\":19.90"), "%s", json);
	cr_assert(strstr(json, "caf\\u00e9 \\\"q\\\""), "%s", json);
	free(json);
	release(&p);
}

Test(collect, track_is_normalized)
{
	struct prepared p;
	prepare(&p,
		"{\"userId\":42,\"event\":\"Order Completed\",\"writeKey\":\"secret\","
		"\"properties\":{\"revenue\":9.5},\"timestamp\":\"2026-11-18T10:00:00Z\","
		"\"sentAt\":\"2026-11-18T10:00:03Z\",\"messageId\":\"m-1\"}",
		COLLECT_TRACK, "10.1.2.3");
	cr_assert_eq(p.rc, 0);
	cr_assert_eq(p.b.n, 1);
	cr_assert_eq(p.b.nrejects, 0);
	cJSON *m = p.out[0];
	cr_assert_str_eq(str(m, "type"), "track");
	cr_assert_str_eq(str(m, "userId"), "42", "numeric userId becomes a string");
	cr_assert_null(cJSON_GetObjectItem(m, "writeKey"), "writeKey is never stored");
	cr_assert_str_eq(str(m, "messageId"), "m-1");
	cr_assert_str_eq(str(m, "originalTimestamp"), "2026-11-18T10:00:00Z");
	char want[TD_ISO8601_LEN];
	td_time_format(NOW - 3000, want); /* receivedAt - (sentAt - originalTimestamp) */
	cr_assert_str_eq(str(m, "timestamp"), want);
	td_time_format(NOW, want);
	cr_assert_str_eq(str(m, "receivedAt"), want);
	cr_assert_str_eq(str(cJSON_GetObjectItem(m, "context"), "ip"), "10.1.2.3");
	release(&p);
}

Test(collect, negative_skew_is_not_corrected)
{
	struct prepared p;
	prepare(&p,
		"{\"anonymousId\":\"a\",\"event\":\"E\",\"timestamp\":\"2026-11-18T10:00:05Z\","
		"\"sentAt\":\"2026-11-18T10:00:00Z\"}",
		COLLECT_TRACK, NULL);
	cr_assert_eq(p.b.n, 1);
	int64_t ts;
	const char *got = str(p.out[0], "timestamp");
	cr_assert_eq(td_time_parse(got, strlen(got), &ts), 0);
	int64_t want;
	td_time_parse("2026-11-18T10:00:05Z", 20, &want);
	cr_assert_eq(ts, want, "sentAt before the event: keep the client's time");
	cr_assert_null(cJSON_GetObjectItem(p.out[0], "context"), "no ip given, no context added");
	release(&p);
}

Test(collect, missing_timestamp_uses_received_at_and_assigns_message_id)
{
	struct prepared p;
	prepare(&p, "{\"userId\":\"u\",\"traits\":{\"email\":\"a@b.c\"}}", COLLECT_IDENTIFY, NULL);
	cr_assert_eq(p.b.n, 1);
	char want[TD_ISO8601_LEN];
	td_time_format(NOW, want);
	cr_assert_str_eq(str(p.out[0], "timestamp"), want);
	const char *mid = str(p.out[0], "messageId");
	cr_assert_not_null(mid);
	cr_assert_eq(strlen(mid), 36, "a UUID is assigned: %s", mid);
	struct collect_event_view v;
	collect_event_decode(p.b.payloads.data + p.b.off[0], p.b.len[0], &v);
	cr_assert(v.id_assigned);
	cr_assert_eq(v.type, COLLECT_IDENTIFY);
	release(&p);
}

Test(collect, batch_context_is_merged_item_keys_win)
{
	struct prepared p;
	prepare(&p,
		"{\"batch\":[{\"type\":\"page\",\"userId\":\"u\",\"name\":\"Home\","
		"\"context\":{\"locale\":\"fr\"}},{\"type\":\"screen\",\"anonymousId\":\"x\"}],"
		"\"context\":{\"locale\":\"en\",\"app\":{\"name\":\"shop\"}},"
		"\"integrations\":{\"All\":false}}",
		COLLECT_BATCH, NULL);
	cr_assert_eq(p.b.n, 2);
	cJSON *c0 = cJSON_GetObjectItem(p.out[0], "context");
	cr_assert_str_eq(str(c0, "locale"), "fr");
	cr_assert_str_eq(str(cJSON_GetObjectItem(c0, "app"), "name"), "shop");
	cJSON *c1 = cJSON_GetObjectItem(p.out[1], "context");
	cr_assert_str_eq(str(c1, "locale"), "en");
	cr_assert(cJSON_IsFalse(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(p.out[1], "integrations"), "All")));
	cr_assert_str_eq(str(p.out[1], "type"), "screen");
	release(&p);
}

struct bad_case {
	const char *body;
	enum collect_type type;
	enum collect_reason reason;
	const char *field;
};

Test(collect, every_reject_reason)
{
	char longid[200];
	memset(longid, 'x', 101);
	longid[101] = '\0';
	char longbody[400];
	snprintf(longbody, sizeof(longbody),
		 "{\"userId\":\"u\",\"event\":\"e\",\"messageId\":\"%s\"}", longid);
	const struct bad_case cases[] = {
	    {"{\"event\":\"e\"}", COLLECT_TRACK, COLLECT_R_MISSING_IDENTITY, "userId"},
	    {"{\"userId\":\"\",\"anonymousId\":null,\"event\":\"e\"}", COLLECT_TRACK,
	     COLLECT_R_MISSING_IDENTITY, "userId"},
	    {"{\"userId\":\"u\"}", COLLECT_TRACK, COLLECT_R_MISSING_EVENT, "event"},
	    {"{\"userId\":\"u\",\"event\":\"\"}", COLLECT_TRACK, COLLECT_R_MISSING_EVENT, "event"},
	    {"{\"userId\":\"u\",\"event\":5}", COLLECT_TRACK, COLLECT_R_INVALID_FIELD, "event"},
	    {"{\"userId\":\"u\"}", COLLECT_GROUP, COLLECT_R_MISSING_GROUP_ID, "groupId"},
	    {"{\"userId\":\"u\"}", COLLECT_ALIAS, COLLECT_R_MISSING_PREVIOUS_ID, "previousId"},
	    {"{\"previousId\":\"p\"}", COLLECT_ALIAS, COLLECT_R_MISSING_USER_ID, "userId"},
	    {"{\"userId\":[1]}", COLLECT_IDENTIFY, COLLECT_R_INVALID_FIELD, "userId"},
	    {"{\"userId\":\"u\",\"traits\":[1]}", COLLECT_IDENTIFY, COLLECT_R_INVALID_FIELD,
	     "traits"},
	    {"{\"userId\":\"u\",\"event\":\"e\",\"properties\":\"x\"}", COLLECT_TRACK,
	     COLLECT_R_INVALID_FIELD, "properties"},
	    {"{\"userId\":\"u\",\"context\":1}", COLLECT_PAGE, COLLECT_R_INVALID_FIELD, "context"},
	    {"{\"userId\":\"u\",\"name\":{}}", COLLECT_PAGE, COLLECT_R_INVALID_FIELD, "name"},
	    {longbody, COLLECT_TRACK, COLLECT_R_MESSAGE_ID_TOO_LONG, "messageId"},
	    {"{\"userId\":\"u\",\"event\":\"e\",\"timestamp\":\"yesterday\"}", COLLECT_TRACK,
	     COLLECT_R_INVALID_TIMESTAMP, "timestamp"},
	    {"{\"userId\":\"u\",\"event\":\"e\",\"sentAt\":\"2026-02-30T00:00:00Z\"}",
	     COLLECT_TRACK, COLLECT_R_INVALID_TIMESTAMP, "sentAt"},
	    {"{\"userId\":\"u\",\"event\":\"e\",\"timestamp\":1700000000}", COLLECT_TRACK,
	     COLLECT_R_INVALID_TIMESTAMP, "timestamp"},
	    {"{\"batch\":[{\"type\":\"nope\",\"userId\":\"u\"}]}", COLLECT_BATCH,
	     COLLECT_R_INVALID_TYPE, "type"},
	    {"{\"batch\":[{\"userId\":\"u\"}]}", COLLECT_BATCH, COLLECT_R_INVALID_TYPE, "type"},
	    {"{\"batch\":[7]}", COLLECT_BATCH, COLLECT_R_NOT_OBJECT, ""},
	    /* JavaScript readers take the last copy, cJSON the first: refused */
	    {"{\"userId\":\"u\",\"event\":\"e\",\"properties\":{},\"properties\":7}", COLLECT_TRACK,
	     COLLECT_R_INVALID_FIELD, "properties"},
	    {"{\"userId\":\"u\",\"event\":\"e\",\"userId\":\"v\"}", COLLECT_TRACK,
	     COLLECT_R_INVALID_FIELD, "userId"},
	    {"{\"userId\":\"u\",\"event\":\"e\",\"messageId\":\"a\\u0000b\"}", COLLECT_TRACK,
	     COLLECT_R_INVALID_FIELD, "messageId"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct prepared p;
		prepare(&p, cases[i].body, cases[i].type, NULL);
		cr_assert_eq(p.rc, 0);
		cr_assert_eq(p.b.n, 0, "case %zu (%s) must be rejected", i, cases[i].body);
		cr_assert_eq(p.b.nrejects, 1);
		cr_assert_eq(p.b.rejects[0].reason, cases[i].reason, "case %zu: got %s", i,
			     collect_reason_code(p.b.rejects[0].reason));
		cr_assert_str_eq(p.b.rejects[0].field, cases[i].field, "case %zu", i);
		cr_assert_gt(strlen(p.b.rejects[0].error), 10, "case %zu has a message", i);
		cr_assert_not_null(p.b.rejects[0].raw, "case %zu keeps the raw message", i);
		release(&p);
	}
}

Test(collect, partial_batch_keeps_valid_neighbours)
{
	struct prepared p;
	prepare(&p,
		"{\"batch\":[{\"type\":\"track\",\"userId\":\"a\",\"event\":\"ok1\"},"
		"{\"type\":\"track\",\"userId\":\"a\"},"
		"{\"type\":\"alias\",\"userId\":\"a\",\"previousId\":\"b\"},"
		"{\"type\":\"group\",\"userId\":\"a\",\"groupId\":12}]}",
		COLLECT_BATCH, NULL);
	cr_assert_eq(p.b.n, 3);
	cr_assert_eq(p.b.nrejects, 1);
	cr_assert_eq(p.b.rejects[0].index, 1);
	cr_assert_eq(p.b.index[0], 0);
	cr_assert_eq(p.b.index[1], 2);
	cr_assert_eq(p.b.index[2], 3);
	cr_assert_str_eq(str(p.out[2], "groupId"), "12");
	release(&p);
}

Test(collect, request_level_errors)
{
	struct prepared p;
	prepare(&p, "{\"batch\":{}}", COLLECT_BATCH, NULL);
	cr_assert_eq(p.rc, TD_EINVAL);
	cr_assert_eq(p.why, COLLECT_R_INVALID_BATCH);
	release(&p);
	prepare(&p, "[1,2]", COLLECT_TRACK, NULL);
	cr_assert_eq(p.rc, TD_EINVAL);
	cr_assert_eq(p.why, COLLECT_R_NOT_OBJECT);
	release(&p);
}

Test(collect, too_many_events)
{
	struct collect_limits lim;
	collect_limits_default(&lim);
	lim.max_batch_events = 2;
	struct collect_origin o = {.source_id = 1, .received_ms = NOW};
	const char *body = "{\"batch\":[{},{},{}]}";
	struct collect_batch b;
	collect_batch_init(&b);
	struct collect_error err;
	cr_assert_eq(collect_prepare(body, strlen(body), COLLECT_BATCH, &o, &lim, &b, &err),
		     TD_ETOOLARGE);
	cr_assert_eq(err.reason, COLLECT_R_TOO_LARGE);
	cr_assert_eq(b.n + b.nrejects, 0, "nothing of an over-long batch is kept");
	collect_batch_release(&b);
}

Test(collect, event_too_large)
{
	struct collect_limits lim;
	collect_limits_default(&lim);
	lim.max_event_bytes = 300;
	struct collect_origin o = {.source_id = 1, .received_ms = NOW};
	char body[1024];
	char pad[600];
	memset(pad, 'a', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	snprintf(body, sizeof(body),
		 "{\"userId\":\"u\",\"event\":\"e\",\"properties\":{\"p\":\"%s\"}}", pad);
	struct collect_batch b;
	collect_batch_init(&b);
	struct collect_error err;
	cr_assert_eq(collect_prepare(body, strlen(body), COLLECT_TRACK, &o, &lim, &b, &err), 0);
	cr_assert_eq(b.n, 0);
	cr_assert_eq(b.nrejects, 1);
	cr_assert_eq(b.rejects[0].reason, COLLECT_R_EVENT_TOO_LARGE);
	cr_assert_eq(b.payloads.len, 0, "the refused message left nothing behind");
	collect_batch_release(&b);
}

Test(collect, import_line_takes_its_own_type)
{
	struct collect_limits lim;
	collect_limits_default(&lim);
	struct collect_origin o = {.source_id = 3, .received_ms = NOW};
	struct collect_batch b;
	collect_batch_init(&b);
	const char *l1 = "{\"type\":\"alias\",\"userId\":\"n\",\"previousId\":\"o\"}";
	cr_assert_eq(collect_prepare_line(l1, strlen(l1), 9, &o, &lim, &b), 0);
	cr_assert_eq(b.n, 1);
	cr_assert_eq(b.index[0], 9);
	const char *l2 = "{\"userId\":\"n\"}";
	cr_assert_eq(collect_prepare_line(l2, strlen(l2), 10, &o, &lim, &b), TD_EINVAL);
	cr_assert_eq(b.rejects[0].index, 10);
	cr_assert_eq(b.rejects[0].reason, COLLECT_R_INVALID_TYPE);
	const char *l3 = "{\"type\":";
	cr_assert_eq(collect_prepare_line(l3, strlen(l3), 11, &o, &lim, &b), TD_EINVAL);
	cr_assert_eq(b.rejects[1].reason, COLLECT_R_INVALID_JSON);
	cr_assert(strstr(b.rejects[1].error, "line 1, column 9"), "%s", b.rejects[1].error);
	collect_batch_release(&b);
}

Test(collect, write_key_from_body)
{
	char key[64];
	const char *b1 = "{\"writeKey\":\"wk_1\",\"batch\":[]}";
	cr_assert(collect_body_write_key(b1, strlen(b1), key, sizeof(key)));
	cr_assert_str_eq(key, "wk_1");
	const char *b2 = "{\"batch\":[{\"writeKey\":\"nested\"}]}";
	cr_assert_not(collect_body_write_key(b2, strlen(b2), key, sizeof(key)));
	const char *b3 = "{\"writeKey\":\"wk_1\",";
	cr_assert_not(collect_body_write_key(b3, strlen(b3), key, sizeof(key)));
}

Test(collect, decode_rejects_garbage)
{
	struct collect_event_view v;
	unsigned char junk[64];
	memset(junk, 0xff, sizeof(junk));
	cr_assert_eq(collect_event_decode(junk, sizeof(junk), &v), TD_ECORRUPT);
	cr_assert_eq(collect_event_decode(junk, 3, &v), TD_ECORRUPT);
	junk[0] = 1;
	junk[3] = 200; /* messageId longer than allowed */
	cr_assert_eq(collect_event_decode(junk, sizeof(junk), &v), TD_ECORRUPT);
}

Test(collect, json_errors_point_at_the_culprit)
{
	static const struct {
		const char *body;
		int line, col;
		const char *why;
	} cases[] = {
	    {"{\"batch\": [\n{\"type\": \"track\"},\n{\"type\": \"track\",, }\n]}", 3, 18,
	     "member name"},
	    {"{\"a\":1,,}", 1, 8, "member name"},
	    {"{,}", 1, 2, "member name"},
	    {"{\"a\":1,}", 1, 8, "member name"},
	    {"{\"userId\": }", 1, 12, "expected a value"},
	    {"{\"a\" 1}", 1, 6, "':'"},
	    {"{\"a\":1 \"b\":2}", 1, 8, "','"},
	    {"[1 2]", 1, 4, "','"},
	    {"{\"a\":\"x", 1, 8, "end of input"},
	    {"{\"a\":tru}", 1, 9, "expected a value"},
	    {"{\"a\":\"\\q\"}", 1, 8, "escape"},
	    {"{} {}", 1, 4, "after the JSON value"},
	    {"  \n ", 2, 2, "only whitespace"},
	    {"{\"é\":x}", 1, 6, "expected a value"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct collect_error err;
		json_error(cases[i].body, &err);
		cr_assert_eq(err.line, cases[i].line, "case %zu: %s", i, err.message);
		cr_assert_eq(err.column, cases[i].col, "case %zu: %s", i, err.message);
		cr_assert(strstr(err.message, cases[i].why), "case %zu: %s", i, err.message);
	}
	struct prepared p;
	prepare(&p,
		"{\"userId\":\"u\",\"event\":\"e\",\"properties\":{\"a\":[1,2.5e3,-0,{\"b\":null}],"
		"\"c\":\"\\u00e9\",\"d\":\"\\t\"}}",
		COLLECT_TRACK, NULL);
	cr_assert_eq(p.b.n, 1, "valid JSON is accepted");
	release(&p);
}

Test(collect, context_merge_compares_keys_exactly)
{
	/* keys longer than any fixed buffer, or written with escapes, must
	 * still be recognized as present: never a duplicate key in the output */
	char longkey[400];
	memset(longkey, 'k', 300);
	longkey[300] = '\0';
	char body[2048];
	snprintf(body, sizeof(body),
		 "{\"batch\":[{\"type\":\"identify\",\"userId\":\"u\",\"context\":{\"%s\":1,"
		 "\"a\\u0041\":2,\"b\\u0062\":3}}],\"context\":{\"%s\":9,\"aA\":9,\"bb\":9,"
		 "\"new\":4}}",
		 longkey, longkey);
	struct prepared p;
	prepare(&p, body, COLLECT_BATCH, NULL);
	cr_assert_eq(p.b.n, 1);
	cJSON *ctx = cJSON_GetObjectItem(p.out[0], "context");
	cr_assert_eq(cJSON_GetArraySize(ctx), 4, "3 own keys + the new one, no duplicates");
	cr_assert_eq(cJSON_GetObjectItem(ctx, longkey)->valuedouble, 1);
	cr_assert_eq(cJSON_GetObjectItem(ctx, "bb")->valuedouble, 3);
	cr_assert_eq(cJSON_GetObjectItem(ctx, "new")->valuedouble, 4);
	release(&p);
}

Test(collect, long_numeric_ids_are_kept_whole)
{
	char digits[120];
	memset(digits, '1', 90);
	digits[90] = '\0';
	char body[512];
	snprintf(body, sizeof(body), "{\"userId\":%s,\"event\":\"e\",\"messageId\":4.0}", digits);
	struct prepared p;
	prepare(&p, body, COLLECT_TRACK, NULL);
	cr_assert_eq(p.b.n, 1);
	cr_assert_str_eq(str(p.out[0], "userId"), digits);
	cr_assert_str_eq(str(p.out[0], "messageId"), "4");
	release(&p);
}
