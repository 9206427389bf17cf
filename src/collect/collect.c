/*
 * collect.c - validation and normalization of Segment messages.
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
#include "base/arena.h"
#include "base/td.h"
#include "base/timeutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
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

static bool type_from_name(const char *name, enum collect_type *t)
{
	for (size_t i = 0; i < TD_ARRAY_LEN(types); i++) {
		if (types[i].type != COLLECT_BATCH && strcmp(name, types[i].name) == 0) {
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

int collect_parse_json(const char *body, size_t len, cJSON **root, char *err, size_t errcap,
		       int *line, int *col)
{
	const char *end = NULL;
	*root = cJSON_ParseWithLengthOpts(body, len + 1, &end, 1);
	if (*root)
		return 0;
	size_t pos;
	const char *why = collect_json_error(body, len, &pos);
	if (!why) { /* cJSON refused what the checker accepts (e.g. a NUL byte) */
		pos = end && end >= body && end <= body + len ? (size_t)(end - body) : len;
		why = "malformed JSON";
	}
	int l = 1, c = 1;
	for (size_t i = 0; i < pos && i < len; i++) {
		if (body[i] == '\n') {
			l++;
			c = 1;
		} else if (((unsigned char)body[i] & 0xc0) != 0x80) {
			c++; /* columns count characters, not UTF-8 continuation bytes */
		}
	}
	*line = l;
	*col = c;
	if (pos < len && (unsigned char)body[pos] >= 0x20 && (unsigned char)body[pos] < 0x7f)
		snprintf(err, errcap, "invalid JSON at line %d, column %d: %s (found '%c')", l, c,
			 why, body[pos]);
	else
		snprintf(err, errcap, "invalid JSON at line %d, column %d: %s", l, c, why);
	return TD_EPARSE;
}

const char *collect_body_write_key(const cJSON *root)
{
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(root, "writeKey");
	return cJSON_IsString(k) ? k->valuestring : NULL;
}

/* ---- cJSON memory: a per-thread arena while a request is processed ---- */

/*
 * Per-thread state: the arena and the print buffer. Allocated on a thread's
 * first use and freed by a pthread key destructor when the thread exits
 * (HTTP worker threads end when the server stops).
 */
struct thread_state {
	struct td_arena arena;
	char *print_buf;
	size_t print_cap;
};

static __thread struct thread_state *tl_state;
static __thread struct td_arena *tl_arena; /* non-NULL between begin and end */
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;
static pthread_key_t state_key;

static void state_free(void *p)
{
	struct thread_state *ts = p;
	td_arena_release(&ts->arena);
	free(ts->print_buf);
	free(ts);
	tl_state = NULL;
	tl_arena = NULL;
}

static void *hook_malloc(size_t n)
{
	return tl_arena ? td_arena_alloc(tl_arena, n) : td_malloc(n);
}

static void hook_free(void *p)
{
	if (p && tl_arena && td_arena_owns(tl_arena, p))
		return; /* freed with the arena */
	free(p);
}

static void install_hooks(void)
{
	cJSON_Hooks h = {.malloc_fn = hook_malloc, .free_fn = hook_free};
	cJSON_InitHooks(&h);
	pthread_key_create(&state_key, state_free);
}

static struct thread_state *thread_state(void)
{
	pthread_once(&hooks_once, install_hooks);
	if (!tl_state) {
		tl_state = td_calloc(1, sizeof(*tl_state));
		td_arena_init(&tl_state->arena, 256 * 1024);
		pthread_setspecific(state_key, tl_state);
	}
	return tl_state;
}

void collect_arena_begin(void)
{
	tl_arena = &thread_state()->arena;
}

void collect_arena_end(void)
{
	if (!tl_arena)
		return;
	tl_arena = NULL;
	td_arena_reset(&tl_state->arena);
}

/* ---- message ids ---- */

static __thread uint64_t rng_state;

static uint64_t rng_next(void)
{
	if (rng_state == 0) {
		if (td_random(&rng_state, sizeof(rng_state)) || rng_state == 0)
			rng_state = (uint64_t)td_mono_ns() | 1;
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
	uint64_t a = rng_next(), b = rng_next();
	unsigned char u[16];
	memcpy(u, &a, 8);
	memcpy(u + 8, &b, 8);
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
		 u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
		 u[14], u[15]);
}

/* ---- validation ---- */

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

static bool is_null(const cJSON *v)
{
	return !v || cJSON_IsNull(v);
}

/* The fields of a message that tandem reads, found in one pass over its keys
 * (a message has a dozen keys and we look at most of them: one pass beats
 * a cJSON_GetObjectItem scan per field). */
struct fields {
	cJSON *type, *write_key, *context, *integrations, *message_id, *user_id, *anonymous_id,
	    *properties, *traits, *event, *name, *category, *group_id, *previous_id, *timestamp,
	    *sent_at, *original_timestamp, *received_at;
};

static void scan(cJSON *msg, struct fields *f)
{
	memset(f, 0, sizeof(*f));
	for (cJSON *k = msg->child; k; k = k->next) {
		const char *s = k->string;
		cJSON **slot = NULL;
		if (!s)
			continue;
		switch (s[0]) {
		case 'a':
			if (!strcmp(s, "anonymousId"))
				slot = &f->anonymous_id;
			break;
		case 'c':
			if (!strcmp(s, "context"))
				slot = &f->context;
			else if (!strcmp(s, "category"))
				slot = &f->category;
			break;
		case 'e':
			if (!strcmp(s, "event"))
				slot = &f->event;
			break;
		case 'g':
			if (!strcmp(s, "groupId"))
				slot = &f->group_id;
			break;
		case 'i':
			if (!strcmp(s, "integrations"))
				slot = &f->integrations;
			break;
		case 'm':
			if (!strcmp(s, "messageId"))
				slot = &f->message_id;
			break;
		case 'n':
			if (!strcmp(s, "name"))
				slot = &f->name;
			break;
		case 'o':
			if (!strcmp(s, "originalTimestamp"))
				slot = &f->original_timestamp;
			break;
		case 'p':
			if (!strcmp(s, "properties"))
				slot = &f->properties;
			else if (!strcmp(s, "previousId"))
				slot = &f->previous_id;
			break;
		case 'r':
			if (!strcmp(s, "receivedAt"))
				slot = &f->received_at;
			break;
		case 's':
			if (!strcmp(s, "sentAt"))
				slot = &f->sent_at;
			break;
		case 't':
			if (!strcmp(s, "type"))
				slot = &f->type;
			else if (!strcmp(s, "timestamp"))
				slot = &f->timestamp;
			else if (!strcmp(s, "traits"))
				slot = &f->traits;
			break;
		case 'u':
			if (!strcmp(s, "userId"))
				slot = &f->user_id;
			break;
		case 'w':
			if (!strcmp(s, "writeKey"))
				slot = &f->write_key;
			break;
		}
		if (slot && !*slot) /* first occurrence wins, as in cJSON lookups */
			*slot = k;
	}
}

/* Replaces member *item of obj by a string node with the same key. */
static cJSON *replace_string(cJSON *obj, cJSON *item, const char *value)
{
	cJSON *s = cJSON_CreateString(value);
	s->string = item->string;
	s->type |= item->type & cJSON_StringIsConst;
	item->string = NULL;
	cJSON_ReplaceItemViaPointer(obj, item, s);
	return s;
}

/* Sets obj[name] = value; *item is the member if already known (or NULL). */
static cJSON *set_string(cJSON *obj, cJSON *item, const char *name, const char *value)
{
	if (item)
		return replace_string(obj, item, value);
	cJSON *s = cJSON_CreateString(value);
	cJSON_AddItemToObject(obj, name, s);
	return s;
}

/*
 * An identifier field (userId, anonymousId, groupId, previousId): a string or
 * a number (turned into its decimal string, as Segment does). Returns 1 if
 * present and non-empty, 0 if absent/empty, -1 (reject filled) if invalid.
 */
static int id_field(cJSON *msg, cJSON **v, const char *name, struct collect_reject *r)
{
	if (is_null(*v))
		return 0;
	if (cJSON_IsNumber(*v)) {
		char num[32];
		double d = (*v)->valuedouble;
		if (!isfinite(d))
			return fail(r, COLLECT_R_INVALID_FIELD, name, "%s must be a string", name);
		if (d == floor(d) && fabs(d) < 9007199254740992.0)
			snprintf(num, sizeof(num), "%.0f", d);
		else
			snprintf(num, sizeof(num), "%.17g", d);
		*v = replace_string(msg, *v, num);
		return 1;
	}
	if (!cJSON_IsString(*v))
		return fail(r, COLLECT_R_INVALID_FIELD, name,
			    "%s must be a string (or a number), not %s", name,
			    cJSON_IsArray(*v)	 ? "an array"
			    : cJSON_IsObject(*v) ? "an object"
						 : "a boolean");
	return (*v)->valuestring[0] != '\0';
}

static int object_field(const cJSON *v, const char *name, struct collect_reject *r)
{
	if (is_null(v) || cJSON_IsObject(v))
		return 0;
	return fail(r, COLLECT_R_INVALID_FIELD, name, "%s must be a JSON object", name);
}

static int string_field(const cJSON *v, const char *name, struct collect_reject *r)
{
	if (is_null(v) || cJSON_IsString(v))
		return 0;
	return fail(r, COLLECT_R_INVALID_FIELD, name, "%s must be a string", name);
}

/* Parses an optional ISO-8601 field; *present says whether it was there. */
static int time_field(const cJSON *v, const char *name, int64_t *ms, bool *present,
		      struct collect_reject *r)
{
	*present = false;
	if (is_null(v))
		return 0;
	if (!cJSON_IsString(v) || td_time_parse(v->valuestring, strlen(v->valuestring), ms))
		return fail(r, COLLECT_R_INVALID_TIMESTAMP, name,
			    "%s must be an ISO-8601 timestamp such as "
			    "\"2026-01-31T12:00:00.000Z\"",
			    name);
	*present = true;
	return 0;
}

/* Adds the batch-level keys of `from` (context, integrations) that the
 * message's own object lacks; returns the message's object. */
static cJSON *merge_defaults(cJSON *msg, cJSON *to, const char *name, const cJSON *from)
{
	if (!cJSON_IsObject(from))
		return to;
	if (is_null(to)) {
		cJSON *copy = cJSON_Duplicate(from, 1);
		if (to) {
			copy->string = to->string;
			to->string = NULL;
			copy->type |= to->type & cJSON_StringIsConst;
			cJSON_ReplaceItemViaPointer(msg, to, copy);
		} else {
			cJSON_AddItemToObject(msg, name, copy);
		}
		return copy;
	}
	if (!cJSON_IsObject(to))
		return to; /* reported by validation */
	for (const cJSON *k = from->child; k; k = k->next)
		if (k->string && !cJSON_GetObjectItemCaseSensitive(to, k->string))
			cJSON_AddItemToObject(to, k->string, cJSON_Duplicate(k, 1));
	return to;
}

struct prep_env {
	const struct collect_origin *o;
	const struct collect_limits *lim;
	const cJSON *batch_context, *batch_integrations;
	char *print_buf;
	size_t print_cap;
};

/* Validates and normalizes one message. 0 = ok, -1 = rejected (r filled). */
static int normalize(cJSON *msg, enum collect_type *tp, struct prep_env *env,
		     struct collect_reject *r, int64_t *ts_out, bool *assigned)
{
	enum collect_type t = *tp;
	struct fields f;
	if (!cJSON_IsObject(msg))
		return fail(r, COLLECT_R_NOT_OBJECT, "", "each message must be a JSON object");
	scan(msg, &f);

	if (cJSON_IsString(f.message_id))
		r->message_id = td_strdup(f.message_id->valuestring);

	/* the type: from the endpoint, or the item's "type" inside a batch */
	if (t == COLLECT_BATCH) {
		if (!cJSON_IsString(f.type) || !type_from_name(f.type->valuestring, &t))
			return fail(r, COLLECT_R_INVALID_TYPE, "type",
				    "type must be one of identify, track, page, screen, group, "
				    "alias");
	} else if (!cJSON_IsString(f.type) || strcmp(f.type->valuestring, collect_type_name(t))) {
		f.type = set_string(msg, f.type, "type", collect_type_name(t));
	}
	*tp = t;
	if (f.write_key)
		cJSON_Delete(cJSON_DetachItemViaPointer(msg, f.write_key));

	if (env->batch_context)
		f.context = merge_defaults(msg, f.context, "context", env->batch_context);
	if (env->batch_integrations)
		f.integrations =
		    merge_defaults(msg, f.integrations, "integrations", env->batch_integrations);

	/* message id */
	if (cJSON_IsNumber(f.message_id) && id_field(msg, &f.message_id, "messageId", r) < 0)
		return -1;
	if (!is_null(f.message_id) && !cJSON_IsString(f.message_id))
		return fail(r, COLLECT_R_INVALID_FIELD, "messageId", "messageId must be a string");
	if (cJSON_IsString(f.message_id)) {
		size_t n = strlen(f.message_id->valuestring);
		if (n > COLLECT_MSGID_MAX)
			return fail(r, COLLECT_R_MESSAGE_ID_TOO_LONG, "messageId",
				    "messageId is %zu characters; at most %d are allowed", n,
				    COLLECT_MSGID_MAX);
	}

	int has_user = id_field(msg, &f.user_id, "userId", r);
	if (has_user < 0)
		return -1;
	int has_anon = id_field(msg, &f.anonymous_id, "anonymousId", r);
	if (has_anon < 0)
		return -1;
	if (object_field(f.context, "context", r) ||
	    object_field(f.integrations, "integrations", r) ||
	    object_field(f.properties, "properties", r) || object_field(f.traits, "traits", r))
		return -1;

	switch (t) {
	case COLLECT_TRACK:
		if (is_null(f.event) || (cJSON_IsString(f.event) && f.event->valuestring[0] == '\0'))
			return fail(r, COLLECT_R_MISSING_EVENT, "event",
				    "track calls need an \"event\" name, e.g. \"Order Completed\"");
		if (!cJSON_IsString(f.event))
			return fail(r, COLLECT_R_INVALID_FIELD, "event", "event must be a string");
		break;
	case COLLECT_PAGE:
	case COLLECT_SCREEN:
		if (string_field(f.name, "name", r) || string_field(f.category, "category", r))
			return -1;
		break;
	case COLLECT_GROUP: {
		int g = id_field(msg, &f.group_id, "groupId", r);
		if (g < 0)
			return -1;
		if (g == 0)
			return fail(r, COLLECT_R_MISSING_GROUP_ID, "groupId",
				    "group calls need a \"groupId\"");
		break;
	}
	case COLLECT_ALIAS: {
		int p = id_field(msg, &f.previous_id, "previousId", r);
		if (p < 0)
			return -1;
		if (p == 0)
			return fail(r, COLLECT_R_MISSING_PREVIOUS_ID, "previousId",
				    "alias calls need a \"previousId\" (the old id)");
		if (!has_user)
			return fail(r, COLLECT_R_MISSING_USER_ID, "userId",
				    "alias calls need a \"userId\" (the new id)");
		break;
	}
	default:
		break;
	}
	if (t != COLLECT_ALIAS && !has_user && !has_anon)
		return fail(r, COLLECT_R_MISSING_IDENTITY, "userId",
			    "every message needs a \"userId\" or an \"anonymousId\"");

	/* timestamps: the client's "timestamp" is the original one */
	int64_t orig = 0, sent = 0, dummy;
	bool has_ts, has_orig = false, has_sent, has_recv;
	if (time_field(f.timestamp, "timestamp", &orig, &has_ts, r) ||
	    time_field(f.sent_at, "sentAt", &sent, &has_sent, r) ||
	    time_field(f.received_at, "receivedAt", &dummy, &has_recv, r))
		return -1;
	if (!has_ts && time_field(f.original_timestamp, "originalTimestamp", &orig, &has_orig, r))
		return -1;
	int64_t recv = env->o->received_ms, ts = recv;
	if (has_ts || has_orig) {
		ts = orig;
		if (has_sent && sent >= orig)
			ts = recv - (sent - orig);
	}
	char buf[TD_ISO8601_LEN];
	if (has_ts)
		f.original_timestamp = set_string(msg, f.original_timestamp, "originalTimestamp",
						  f.timestamp->valuestring);
	td_time_format(ts, buf);
	set_string(msg, f.timestamp, "timestamp", buf);
	td_time_format(recv, buf);
	set_string(msg, f.received_at, "receivedAt", buf);
	*ts_out = ts;

	/* context.ip from the connection unless the sender set one */
	if (env->o->ip) {
		if (is_null(f.context)) {
			if (f.context)
				cJSON_Delete(cJSON_DetachItemViaPointer(msg, f.context));
			f.context = cJSON_AddObjectToObject(msg, "context");
		}
		if (is_null(cJSON_GetObjectItemCaseSensitive(f.context, "ip")))
			set_string(f.context, cJSON_GetObjectItemCaseSensitive(f.context, "ip"),
				   "ip", env->o->ip);
	}

	*assigned = false;
	if (!cJSON_IsString(f.message_id) || f.message_id->valuestring[0] == '\0') {
		char uuid[37];
		make_uuid(uuid);
		set_string(msg, f.message_id, "messageId", uuid);
		*assigned = true;
	}
	return 0;
}

static void put32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, 4); /* x86-64 and aarch64 are little-endian */
}

static void put64(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, 8);
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

static void keep_reject(struct collect_batch *b, const cJSON *msg)
{
	struct collect_reject *r = &b->rejects[b->nrejects++];
	char *text = msg ? cJSON_PrintUnformatted(msg) : NULL;
	r->raw = text ? td_strdup(text) : NULL; /* text may live in the arena */
	cJSON_free(text);
}

static int emit(struct collect_batch *b, cJSON *msg, enum collect_type t, int64_t ts,
		bool assigned, int index, struct prep_env *env, struct collect_reject *r)
{
	if (!cJSON_PrintPreallocated(msg, env->print_buf, (int)env->print_cap, 0))
		return fail(r, COLLECT_R_EVENT_TOO_LARGE, "",
			    "the message is larger than %zu bytes", env->lim->max_event_bytes);
	size_t jlen = strlen(env->print_buf);
	if (jlen > env->lim->max_event_bytes)
		return fail(r, COLLECT_R_EVENT_TOO_LARGE, "",
			    "the message is %zu bytes; at most %zu are allowed (trim properties "
			    "or raise max-event-bytes)",
			    jlen, env->lim->max_event_bytes);
	const char *mid = cJSON_GetObjectItemCaseSensitive(msg, "messageId")->valuestring;
	size_t mlen = strlen(mid);
	unsigned char hdr[COLLECT_EVENT_HDR];
	hdr[0] = 1;
	hdr[1] = (unsigned char)t;
	hdr[2] = assigned ? 1 : 0;
	hdr[3] = (unsigned char)mlen;
	put32(hdr + 4, env->o->source_id);
	put64(hdr + 8, (uint64_t)env->o->received_ms);
	put64(hdr + 16, (uint64_t)ts);
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		b->off = td_realloc(b->off, b->cap * sizeof(*b->off));
		b->len = td_realloc(b->len, b->cap * sizeof(*b->len));
		b->index = td_realloc(b->index, b->cap * sizeof(*b->index));
	}
	size_t off = b->payloads.len;
	if (td_buf_append(&b->payloads, hdr, sizeof(hdr)) ||
	    td_buf_append(&b->payloads, mid, mlen) ||
	    td_buf_append(&b->payloads, env->print_buf, jlen))
		return fail(r, COLLECT_R_TOO_LARGE, "", "out of memory");
	b->off[b->n] = off;
	b->len[b->n] = b->payloads.len - off;
	b->index[b->n] = index;
	b->n++;
	return 0;
}


static int prepare_one(struct collect_batch *b, cJSON *msg, enum collect_type t, int index,
		       struct prep_env *env)
{
	struct collect_reject *r = new_reject(b, index);
	int64_t ts = 0;
	bool assigned = false;
	if (normalize(msg, &t, env, r, &ts, &assigned) == 0 &&
	    emit(b, msg, t, ts, assigned, index, env, r) == 0) {
		free(r->message_id); /* the reject slot is simply not kept */
		r->message_id = NULL;
		return 0;
	}
	keep_reject(b, msg);
	return -1;
}

static void env_init(struct prep_env *env, const struct collect_origin *o,
		     const struct collect_limits *lim)
{
	memset(env, 0, sizeof(*env));
	env->o = o;
	env->lim = lim;
	struct thread_state *ts = thread_state();
	size_t need = lim->max_event_bytes + 1024;
	if (need < 64 * 1024)
		need = 64 * 1024;
	if (ts->print_cap < need) {
		free(ts->print_buf);
		ts->print_buf = td_malloc(need);
		ts->print_cap = need;
	}
	env->print_buf = ts->print_buf;
	env->print_cap = ts->print_cap;
}

int collect_prepare_message(cJSON *msg, int index, const struct collect_origin *o,
			    const struct collect_limits *lim, struct collect_batch *out)
{
	struct prep_env env;
	env_init(&env, o, lim);
	return prepare_one(out, msg, COLLECT_BATCH, index, &env) ? TD_EINVAL : 0;
}

int collect_prepare(cJSON *root, enum collect_type t, const struct collect_origin *o,
		    const struct collect_limits *lim, struct collect_batch *out,
		    enum collect_reason *why)
{
	struct prep_env env;
	env_init(&env, o, lim);

	if (!cJSON_IsObject(root)) {
		*why = COLLECT_R_NOT_OBJECT;
		return TD_EINVAL;
	}
	if (t != COLLECT_BATCH) {
		prepare_one(out, root, t, 0, &env);
		return 0;
	}
	cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "batch");
	if (!cJSON_IsArray(arr)) {
		*why = COLLECT_R_INVALID_BATCH;
		return TD_EINVAL;
	}
	if ((size_t)cJSON_GetArraySize(arr) > lim->max_batch_events) {
		*why = COLLECT_R_TOO_LARGE;
		return TD_ETOOLARGE;
	}
	env.batch_context = cJSON_GetObjectItemCaseSensitive(root, "context");
	env.batch_integrations = cJSON_GetObjectItemCaseSensitive(root, "integrations");
	int i = 0;
	for (cJSON *msg = arr->child; msg; msg = msg->next, i++)
		prepare_one(out, msg, COLLECT_BATCH, i, &env);
	return 0;
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
