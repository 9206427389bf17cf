/*
 * collect.h - the Segment tracking-spec front door: parse a request body,
 * validate each message, normalize it, and hand it to the WAL exactly once.
 *
 * Flow for one request (HTTP, or one line of an import):
 *   collect_body_write_key() the key from the body, when there is no Basic auth
 *   collect_prepare()        validate the JSON, then validate + normalize every
 *                            message into a batch of WAL payloads; invalid ones
 *                            become rejects (see normalize.c for the rules)
 *   ingest_submit()          dedupe by (source, messageId) and append to the WAL
 *
 * WAL payload of an event record (WAL_REC_EVENT), little-endian:
 *   offset size  field
 *   0      1     payload version (1)
 *   1      1     message type (enum collect_type)
 *   2      1     flags: bit 0 = messageId assigned by tandem
 *   3      1     length M of the messageId (1..100)
 *   4      4     source id
 *   8      8     receivedAt, ms since the Unix epoch
 *   16     8     timestamp (corrected), ms since the Unix epoch
 *   24     M     messageId (UTF-8, not NUL-terminated)
 *   24+M   ...   the normalized message as compact JSON (to the end)
 */
#ifndef TD_COLLECT_COLLECT_H
#define TD_COLLECT_COLLECT_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wal;
struct wal_record;

#define COLLECT_MSGID_MAX 100
#define COLLECT_EVENT_HDR 24

enum collect_type {
	COLLECT_IDENTIFY = 1,
	COLLECT_TRACK,
	COLLECT_PAGE,
	COLLECT_SCREEN,
	COLLECT_GROUP,
	COLLECT_ALIAS,
	COLLECT_BATCH, /* a request type only: /v1/batch and /v1/import */
};

/* Reasons a message is rejected; each has a stable code for clients and metrics. */
enum collect_reason {
	COLLECT_R_INVALID_JSON,
	COLLECT_R_INVALID_BATCH,
	COLLECT_R_NOT_OBJECT,
	COLLECT_R_INVALID_TYPE,
	COLLECT_R_MISSING_IDENTITY,
	COLLECT_R_MISSING_EVENT,
	COLLECT_R_MISSING_GROUP_ID,
	COLLECT_R_MISSING_PREVIOUS_ID,
	COLLECT_R_MISSING_USER_ID,
	COLLECT_R_INVALID_FIELD,
	COLLECT_R_MESSAGE_ID_TOO_LONG,
	COLLECT_R_INVALID_TIMESTAMP,
	COLLECT_R_EVENT_TOO_LARGE,
	COLLECT_R_TOO_LARGE,
	COLLECT_R_COUNT
};

const char *collect_reason_code(enum collect_reason r);
const char *collect_type_name(enum collect_type t);
/* Maps "/v1/track" or "/v1/t" (path after the host) to a type; false if none. */
bool collect_type_from_path(const char *path, enum collect_type *t);

struct collect_limits {
	size_t max_event_bytes;	 /* 32 KB: one normalized message */
	size_t max_batch_bytes;	 /* 500 KB: one request body (after gunzip) */
	size_t max_batch_events; /* 2,500 */
};
void collect_limits_default(struct collect_limits *l);

/* Where a request came from; strings are borrowed for the call. */
struct collect_origin {
	uint32_t source_id;
	int64_t received_ms;
	const char *ip; /* client address for context.ip, may be NULL */
};

struct collect_reject {
	int index; /* position in the batch (or line number - 1 for import) */
	enum collect_reason reason;
	char field[32];	  /* the offending field, "" if none */
	char *message_id; /* as sent (even when too long), malloc'd; NULL if none */
	char error[200];  /* human text: what is wrong and how to fix it */
	char *raw;	  /* the message as received (compact JSON), malloc'd */
};

/* A prepared batch. WAL payloads are concatenated in `payloads`; event i is
 * payloads.data + off[i], len[i] bytes. */
struct collect_batch {
	struct td_buf payloads;
	size_t *off, *len;
	int *index; /* the event's position in the request */
	size_t n, cap;
	struct collect_reject *rejects;
	size_t nrejects, caprejects;
};

void collect_batch_init(struct collect_batch *b);
/* Records a reject found outside collect_prepare (e.g. a line that is not
 * JSON); raw (rawlen bytes) is copied. */
void collect_batch_add_reject(struct collect_batch *b, int index, enum collect_reason reason,
			      const char *error, const char *raw, size_t rawlen);
void collect_batch_reset(struct collect_batch *b);
void collect_batch_release(struct collect_batch *b);

/* What was wrong with a request as a whole. */
struct collect_error {
	enum collect_reason reason; /* INVALID_JSON, NOT_OBJECT, INVALID_BATCH, TOO_LARGE */
	int line, column;	    /* of the JSON error (1-based; columns in characters) */
	char message[200];	    /* "invalid JSON at line 3, column 18: ..." */
};

/*
 * Validates and normalizes the message(s) of a request body (len bytes,
 * NUL-terminated at body[len]) for a request of type t (COLLECT_BATCH: a
 * {"batch":[...]} body whose items carry their own "type"). Appends one WAL
 * payload per valid message and one reject per invalid one to out. Returns 0,
 * or for a problem with the request as a whole TD_EPARSE (not JSON),
 * TD_EINVAL (not an object, no batch array) or TD_ETOOLARGE (too many
 * messages; out is left empty), with err filled.
 */
int collect_prepare(const char *body, size_t len, enum collect_type t,
		    const struct collect_origin *o, const struct collect_limits *lim,
		    struct collect_batch *out, struct collect_error *err);

/* One import line (NUL-terminated at line[len]) holding one message with its
 * own "type": appends its payload, or a reject with `index` (also for a line
 * that is not JSON). Returns 0, or TD_EINVAL if it was rejected. */
int collect_prepare_line(const char *line, size_t len, int index, const struct collect_origin *o,
			 const struct collect_limits *lim, struct collect_batch *out);

/* Copies the top-level "writeKey" string of a JSON object body into out;
 * false if there is none (or the body is not a JSON object). */
bool collect_body_write_key(const char *body, size_t len, char *out, size_t cap);

/* Decoded view of an event payload; pointers borrow from the payload. */
struct collect_event_view {
	enum collect_type type;
	bool id_assigned;
	uint32_t source_id;
	int64_t received_ms, timestamp_ms;
	const char *message_id;
	size_t message_id_len;
	const char *json;
	size_t json_len;
};

/* Decodes an event payload; TD_ECORRUPT if it is malformed. */
int collect_event_decode(const void *payload, size_t len, struct collect_event_view *v);

/*
 * Quarantine: rejected input is appended to DATA/quarantine/YYYY-MM-DD.ndjson,
 * one JSON object per line {"receivedAt","source","endpoint","index","reason",
 * "field","error","raw"}. Thread-safe.
 */
struct quarantine;
int quarantine_open(struct quarantine **out, const char *data_dir);
void quarantine_close(struct quarantine *q);
void quarantine_write(struct quarantine *q, const char *source, const char *endpoint,
		      const struct collect_reject *r, int64_t received_ms);

/*
 * Ingest: deduplication and the WAL append, shared by HTTP and import.
 * The dedupe index holds (source, messageId) pairs of the last `window_ms`
 * as 128-bit XXH3 hashes with the LSN of the first copy (a collision needs
 * ~2^64 messages, so it is exact for any real workload). It is rebuilt from
 * the WAL at start (ingest_replay is the wal_open replay callback).
 */
struct ingest;

struct ingest_result {
	size_t accepted, duplicates;
	uint64_t wait_lsn; /* 0 if nothing to wait for */
	int error;	   /* TD_EFULL, TD_ENOSPC, ... if the WAL refused; nothing was kept */
};

struct ingest *ingest_new(int64_t window_ms);
void ingest_free(struct ingest *g);
void ingest_attach(struct ingest *g, struct wal *w);
int ingest_replay(void *ingest, const struct wal_record *rec);
/* Appends the batch's events (skipping duplicates) to the WAL, atomically
 * with respect to other submits. Wait for res->wait_lsn before acknowledging. */
void ingest_submit(struct ingest *g, const struct collect_batch *b, int64_t now_ms,
		   struct ingest_result *res);
size_t ingest_dedupe_size(struct ingest *g);

#endif
