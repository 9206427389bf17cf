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
#include "enrich/enrich.h"

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

/*
 * Where a request came from; strings are borrowed for the call. With an
 * enricher, every message gets an "enriched" object (src/enrich) and its
 * context.ip is stored as ip_mode says (after the geo lookup); without one
 * (NULL) neither happens. A client's own "enriched" member is always dropped.
 */
struct collect_origin {
	uint32_t source_id;
	int64_t received_ms;
	const char *ip;		     /* client address for context.ip, may be NULL */
	const struct enrich *enrich; /* shared, immutable; may be NULL */
	enum enrich_ip_mode ip_mode; /* how context.ip is stored (enrich only) */
	const char *cookie;	     /* the request's Cookie header, may be NULL */
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
 * Reading the quarantine back (qread.c): the daily files and the reject
 * files of `tandem import` (import-YYYYMMDDTHHMMSS-NAME.ndjson; a line
 * without receivedAt, from an older tandem, takes the file's time), newest
 * file first and each file's lines from its last: fn is called for every
 * parsable line received at or after since_ms until it returns nonzero
 * (returned unchanged). At most max_bytes of
 * files are read (the newest part of each); *partial says whether older
 * lines inside the time range may have been left unread. The strings of an
 * entry are valid during the call only. Returns 0, fn's code, or an I/O
 * error listing the directory (a missing one is empty, not an error).
 */
struct quarantine_entry {
	int64_t received_ms;
	const char *source, *endpoint, *reason, *field, *error, *raw;
};
typedef int (*quarantine_read_fn)(void *ctx, const struct quarantine_entry *e);
int quarantine_read_recent(const char *data_dir, int64_t since_ms, size_t max_bytes,
			   quarantine_read_fn fn, void *ctx, bool *partial);

/*
 * Ingest: deduplication and the WAL append, shared by HTTP and import.
 * The dedupe index holds (source, messageId) pairs of the last `window_ms`
 * as 96 bits of their XXH3-128 hash with the second the first copy was
 * received (a false match needs ~10^10 messages in the window). At start it
 * is restored from its checkpoint (below) and rebuilt from the WAL records
 * after it (ingest_replay is the wal_open replay callback).
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
/* wal_open replay callback: remembers the record's key; records at or below
 * the LSN of a checkpoint loaded before are skipped (the checkpoint has them). */
int ingest_replay(void *ingest, const struct wal_record *rec);
/* Appends the batch's events (skipping duplicates) to the WAL, atomically
 * with respect to other submits. Wait for res->wait_lsn before acknowledging. */
void ingest_submit(struct ingest *g, const struct collect_batch *b, int64_t now_ms,
		   struct ingest_result *res);
size_t ingest_dedupe_size(struct ingest *g);

/*
 * Dedupe checkpoint (checkpoint.c): the index written to a file, so that
 * the WAL files it was built from can be removed and a start does not replay
 * a week of log. File DATA/dedupe.ckpt, little-endian:
 *
 *   offset size  field
 *   0      8     magic "TDDEDUP\x1a"
 *   8      4     format version (1)
 *   12     4     dedupe window of the saver, seconds
 *   16     8     covered LSN L: the key of every event record with an LSN <= L
 *                still inside the window when saved is here
 *   24     8     saved at, ms since the Unix epoch
 *   32     8     entry count N
 *   40     4     CRC-32C of the N entries (bytes 48 .. 48+16N)
 *   44     4     CRC-32C of bytes 0..43
 *   48     16*N  entries:
 *                0  8  h1: low 64 bits of XXH3-128(source id as 4 bytes LE,
 *                        then the messageId bytes)
 *                8  4  h2: low 32 bits of the hash's high 64 bits
 *                12 4  second the first copy was received: seconds since
 *                        2020-01-01T00:00:00Z plus 2 (so >= 2)
 *
 * The file size is exactly 48 + 16N. Entries may also come from records past
 * L (durable ones only); replaying them again is harmless.
 */
#define INGEST_CHECKPOINT_FILE "dedupe.ckpt"

/*
 * Writes every key still inside the window at now_ms to path, crash-safely
 * (path.tmp, fsync, rename, fsync of the directory). lsn is the covered LSN:
 * it must be durable (<= wal_durable_lsn of the attached WAL, else
 * TD_EINVAL). Safe while other threads call ingest_submit: the ingest lock is
 * taken once per shard, only to copy that shard (1/64 of the index), and keys
 * of records past lsn that are not durable yet are left out (a failed write
 * may still take them back). Saves are serialized. Returns 0 or an I/O error.
 */
int ingest_checkpoint_save(struct ingest *g, const char *path, uint64_t lsn, int64_t now_ms);

/*
 * Adds the keys of the checkpoint at path that are still inside g's window
 * to g, sets *lsn to its covered LSN and makes ingest_replay skip records up
 * to it. TD_ENOTFOUND if there is no file, TD_ECORRUPT if it is damaged or
 * not a checkpoint (g is then unchanged), or an I/O error. Call before
 * wal_open.
 */
int ingest_checkpoint_load(struct ingest *g, const char *path, uint64_t *lsn);

/*
 * Start-up: ingest_checkpoint_load, where no checkpoint is no error (*lsn =
 * 0) and a damaged one is reported, renamed to path.damaged and ignored (*lsn
 * = 0: the index is rebuilt from what the WAL still holds; messages of WAL
 * files removed before are no longer recognised). Returns 0 or an I/O error.
 */
int ingest_checkpoint_restore(struct ingest *g, const char *path, uint64_t *lsn);

struct ingest_checkpoint_stats {
	uint64_t lsn;	     /* of the newest checkpoint saved or loaded; 0 if none */
	int64_t saved_ms;    /* when that one was saved, 0 if none */
	uint64_t bytes;	     /* its file size */
	uint64_t entries;    /* keys in it */
	uint32_t window_sec; /* the dedupe window it was saved with */
	double seconds;	     /* the last save, from start to the directory fsync */
	double lock_seconds; /* the last save: longest single hold of the ingest lock */
	uint64_t saves, errors;
	bool damaged; /* the checkpoint found at start was damaged and set aside */
};
void ingest_checkpoint_stats(struct ingest *g, struct ingest_checkpoint_stats *st);

/*
 * WAL removal policy (walgc.c), for a caller to run every few seconds.
 * consumers_lsn: every record up to it is safe outside the WAL (the event
 * store's flushed LSN). The dedupe index is the other consumer; its
 * checkpoint at ckpt_path covers it. When closed WAL files exist that
 * consumers_lsn (capped at the durable LSN) covers and the checkpoint does
 * not, a new checkpoint is saved at the durable LSN first, at most once per
 * checkpoint_interval_ms unless force; then the files covered by both are
 * removed. Returns 0, or the error of the save or the removal (the other step
 * still ran as far as it could).
 */
struct ingest_gc_policy {
	int64_t checkpoint_interval_ms; /* 0 = INGEST_CHECKPOINT_INTERVAL_MS */
	bool force;			/* save a needed checkpoint now, whatever the interval */
};
#define INGEST_CHECKPOINT_INTERVAL_MS 60000

struct ingest_gc_result {
	uint64_t files_removed, bytes_removed;
	bool checkpoint_saved;
	uint64_t checkpoint_lsn; /* of the checkpoint in force after the call (0: none) */
};

int ingest_wal_gc(struct ingest *g, struct wal *w, const char *ckpt_path, uint64_t consumers_lsn,
		  int64_t now_ms, const struct ingest_gc_policy *policy,
		  struct ingest_gc_result *res);

#endif
