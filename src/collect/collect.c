/*
 * collect.c - the collector's vocabulary: message types and their endpoints,
 * reject reasons, limits, prepared batches and the WAL event payload.
 * Validation and normalization are in normalize.c.
 */
#include "collect/collect.h"
#include "base/td.h"

#include <stdlib.h>
#include <string.h>

static const char *const reason_codes[COLLECT_R_COUNT] = {
    [COLLECT_R_INVALID_JSON] = "invalid_json",
    [COLLECT_R_INVALID_BATCH] = "invalid_batch",
    [COLLECT_R_NOT_OBJECT] = "not_an_object",
    [COLLECT_R_INVALID_TYPE] = "invalid_type",
    [COLLECT_R_MISSING_IDENTITY] = "missing_identity",
    [COLLECT_R_MISSING_EVENT] = "missing_event",
    [COLLECT_R_MISSING_GROUP_ID] = "missing_group_id",
    [COLLECT_R_MISSING_PREVIOUS_ID] = "missing_previous_id",
    [COLLECT_R_MISSING_USER_ID] = "missing_user_id",
    [COLLECT_R_INVALID_FIELD] = "invalid_field",
    [COLLECT_R_MESSAGE_ID_TOO_LONG] = "message_id_too_long",
    [COLLECT_R_INVALID_TIMESTAMP] = "invalid_timestamp",
    [COLLECT_R_EVENT_TOO_LARGE] = "event_too_large",
    [COLLECT_R_TOO_LARGE] = "too_large",
};

const char *collect_reason_code(enum collect_reason r)
{
	return (unsigned)r < COLLECT_R_COUNT ? reason_codes[r] : "unknown";
}

static const struct {
	const char *name, *path, *short_path;
	enum collect_type type;
} types[] = {
    {"identify", "/v1/identify", "/v1/i", COLLECT_IDENTIFY},
    {"track", "/v1/track", "/v1/t", COLLECT_TRACK},
    {"page", "/v1/page", "/v1/p", COLLECT_PAGE},
    {"screen", "/v1/screen", "/v1/s", COLLECT_SCREEN},
    {"group", "/v1/group", "/v1/g", COLLECT_GROUP},
    {"alias", "/v1/alias", "/v1/a", COLLECT_ALIAS},
    {"batch", "/v1/batch", "/v1/b", COLLECT_BATCH},
    {"import", "/v1/import", NULL, COLLECT_BATCH},
};

const char *collect_type_name(enum collect_type t)
{
	for (size_t i = 0; i < TD_ARRAY_LEN(types); i++)
		if (types[i].type == t)
			return types[i].name;
	return "unknown";
}

bool collect_type_from_path(const char *path, enum collect_type *t)
{
	for (size_t i = 0; i < TD_ARRAY_LEN(types); i++) {
		if (strcmp(path, types[i].path) == 0 ||
		    (types[i].short_path && strcmp(path, types[i].short_path) == 0)) {
			*t = types[i].type;
			return true;
		}
	}
	return false;
}

void collect_limits_default(struct collect_limits *l)
{
	l->max_event_bytes = 32 * 1024;
	l->max_batch_bytes = 500 * 1024;
	l->max_batch_events = 2500;
}

void collect_batch_init(struct collect_batch *b)
{
	memset(b, 0, sizeof(*b));
	td_buf_init(&b->payloads, SIZE_MAX / 2);
}

void collect_batch_reset(struct collect_batch *b)
{
	for (size_t i = 0; i < b->nrejects; i++) {
		free(b->rejects[i].raw);
		free(b->rejects[i].message_id);
	}
	b->nrejects = 0;
	b->n = 0;
	td_buf_reset(&b->payloads);
}

void collect_batch_release(struct collect_batch *b)
{
	collect_batch_reset(b);
	td_buf_release(&b->payloads);
	free(b->off);
	free(b->len);
	free(b->index);
	free(b->rejects);
	memset(b, 0, sizeof(*b));
}

int collect_event_decode(const void *payload, size_t len, struct collect_event_view *v)
{
	const unsigned char *p = payload;
	if (len < COLLECT_EVENT_HDR || p[0] != 1)
		return TD_ECORRUPT;
	size_t mlen = p[3];
	if (mlen == 0 || mlen > COLLECT_MSGID_MAX || COLLECT_EVENT_HDR + mlen > len)
		return TD_ECORRUPT;
	uint32_t sid;
	uint64_t recv, ts;
	memcpy(&sid, p + 4, 4);
	memcpy(&recv, p + 8, 8);
	memcpy(&ts, p + 16, 8);
	v->type = (enum collect_type)p[1];
	v->id_assigned = p[2] & 1;
	v->source_id = sid;
	v->received_ms = (int64_t)recv;
	v->timestamp_ms = (int64_t)ts;
	v->message_id = (const char *)p + COLLECT_EVENT_HDR;
	v->message_id_len = mlen;
	v->json = (const char *)p + COLLECT_EVENT_HDR + mlen;
	v->json_len = len - COLLECT_EVENT_HDR - mlen;
	return 0;
}
