/*
 * store.h - the column event store: WAL event records in, immutable column
 * segments out, query snapshots for the query engine.
 *
 * Data flow: the applier (one thread, the only writer) hands every WAL event
 * record to store_apply(), which adds it to the open memtable. Every
 * seal_interval_ms the memtable is sealed into an in-memory segment that
 * queries see at once (so an event is queryable within a second of being
 * acknowledged); sealed segments are written to DIR/SEGMENT.tseg files and the
 * MANIFEST is replaced once enough rows or time has gathered (or at
 * store_close), and small segment files are merged in the background.
 * docs/store.md has the file formats and the recovery rules.
 *
 * Recovery: the MANIFEST names the live segments and the WAL position (LSN)
 * they cover; after a crash the caller replays WAL records past
 * store_flushed_lsn() through store_apply() again.
 *
 * Persons: every event gets a dense person id (uint32) from identity
 * resolution (src/identity/identity.h), whose graph is kept in
 * DIR/IDENTITY; snapshots carry the canonical[] of the last seal, so merges
 * apply to past events too.
 *
 * Event names: a track's "event"; other messages get "$page", "$screen",
 * "$identify", "$group", "$alias".
 *
 * Threads: store_apply/store_seal/store_flush* are for one applier thread.
 * store_snapshot()/store_snap_release() and everything reached through a
 * snapshot may be used from any thread at any time; a snapshot is immutable
 * and keeps its segments alive until released, so queries never block ingest.
 */
#ifndef TD_STORE_STORE_H
#define TD_STORE_STORE_H

#include "identity/identity.h"
#include "query/query.h"
#include "store/sessions.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_snap;

struct store_options {
	const char *dir;	    /* DATA/events; created (0700) unless read_only */
	bool read_only;		    /* never writes: for tandem query / export / check */
	unsigned seal_interval_ms;  /* memtable -> queryable in-memory segment; 0 = 500 */
	size_t flush_rows;	    /* write sealed segments to disk past this many rows; 0 = 1M */
	unsigned flush_interval_ms; /* ... or when the oldest is this old; 0 = 10000 */
	bool no_merge;		    /* no background merge thread (tests, benchmarks) */
	int64_t session_gap_ms;	    /* inactivity that ends a session; 0 = 30 min (sessions.h) */
	uint64_t session_snapshot_bytes;	/* rewrite the session log past this; 0 = 64 MiB */
	const struct identity_config *identity; /* NULL = the defaults */
};

/* Opens (creating if missing) the store; on success *out owns it. Errors:
 * TD_ECORRUPT (manifest or a listed segment unreadable: the message on
 * stderr says which), TD_EIO. A read-only open of a store that has no
 * manifest yet (nothing flushed) gives an empty store. */
int store_open(struct store **out, const struct store_options *o);

/* Writes what the memtable holds (unless read_only), stops background work,
 * frees everything. Snapshots still held stay valid until released. */
void store_close(struct store *s);

/* Every WAL record up to this LSN is in a segment file listed in the manifest. */
uint64_t store_flushed_lsn(const struct store *s);

/* Applier: adds one WAL_REC_EVENT payload (see collect.h) with its LSN. Records
 * at or below the highest LSN already applied are ignored (replay overlap).
 * Returns 0, or TD_ECORRUPT for a payload that does not decode (skipped). */
int store_apply(struct store *s, uint64_t lsn, const void *payload, size_t len);

/* Applier: seals the memtable when seal_interval_ms has passed (or force), and
 * writes sealed segments when flush_rows / flush_interval_ms say so (or
 * force). Call it after every batch of store_apply and when idle. Returns 0 or
 * the write error (the data stays in memory and is retried next call). */
int store_tick(struct store *s, bool force);

/* Applier: seals the memtable now (after a replay, so that what was
 * replayed is queryable at once). 0 or an error (the rows stay in the
 * memtable). */
int store_seal(struct store *s);

/* A consistent, immutable view of every applied event. Never NULL. */
struct store_snap *store_snapshot(struct store *s);
void store_snap_release(struct store_snap *snap);
/* The snapshot as a query source for query_run(); valid until released. */
const struct query_source *store_snap_source(struct store_snap *snap);

/*
 * Raw access for export: calls fn for every event of the snapshot whose time
 * lies in [from_ms, to_ms) (INT64_MIN / INT64_MAX for no bound), in time
 * order, with the WAL payload it was stored from (see collect.h), its
 * event name and person id, and the row itself (for store_row_values, valid
 * during the call). A nonzero return from fn stops the walk and is returned.
 */
struct store_row;
typedef int (*store_row_fn)(void *ctx, const char *event, int64_t ts, uint32_t pid,
			    const void *payload, size_t len, const struct store_row *r);
int store_snap_scan(struct store_snap *snap, int64_t from_ms, int64_t to_ms, store_row_fn fn,
		    void *ctx);

/*
 * Single events, for profiles. store_snap_person_rows finds every event of
 * the stored person ids pids[0..npids) (a canonical person's members) through
 * the segments' person indexes, ordered by time; *out is malloc'd (the
 * caller frees it) and valid while the snapshot is held. max > 0 stops after
 * that many rows and returns TD_ETOOLARGE (the rows found are kept).
 */
struct seg_group;
struct store_row {
	const struct seg_group *g;
	uint32_t row;
};
struct store_value {
	int kind; /* QCOL_STRING, QCOL_NUMBER, QCOL_BOOL */
	const char *str;
	double num;
	bool b;
};
int store_snap_person_rows(struct store_snap *sn, const uint32_t *pids, size_t npids, size_t max,
			   struct store_row **out, size_t *n);
/* A profile trait of every canonical person of the snapshot (what queries
 * see as person.<name>): ts[p] is the time of the identify call that set it,
 * INT64_MIN when person p has none; the value by kind in code (into dict),
 * num or boolv. TD_ENOTFOUND when no identify call sets traits.<name>.
 * Valid while the snapshot is held. */
struct store_person_trait {
	int kind; /* QCOL_* */
	uint32_t n;
	const int64_t *ts;
	const uint32_t *code;
	const char *const *dict;
	size_t ndict;
	const double *num;
	const uint8_t *boolv;
};
int store_snap_person_trait(struct store_snap *sn, const char *name,
			    struct store_person_trait *out);

/* The rows of event `event` whose string property `path` equals value
 * (a scan of that column), ordered by time; max and ownership as above. */
int store_snap_rows_where(struct store_snap *sn, const char *event, const char *path,
			  const char *value, size_t max, struct store_row **out, size_t *n);
const char *store_row_event(const struct store_row *r);
uint32_t store_row_pid(const struct store_row *r); /* stored, not canonical */
int64_t store_row_ts(const struct store_row *r);
/* The value of one property path (a column, or a rare path built from the
 * raw messages on its first use: slow once per segment); false if absent. */
bool store_row_value(const struct store_row *r, const char *path, struct store_value *v);
/* Calls fn for each column value of the row whose path starts with prefix
 * ("" = all). Strings are valid while the snapshot is held. */
typedef void (*store_value_fn)(void *ctx, const char *path, const struct store_value *v);
void store_row_values(const struct store_row *r, const char *prefix, store_value_fn fn, void *ctx);
/* Whether the row's event has rare paths (not columns) under prefix. */
bool store_row_has_rare(const struct store_row *r, const char *prefix);
/* The message's JSON of a row (decompresses its block: ~1 ms): a reader
 * keeps the block; the JSON is valid until its next call or its free. */
struct store_row_reader;
struct store_row_reader *store_row_reader_new(void);
void store_row_reader_free(struct store_row_reader *rd);
int store_row_json(struct store_row_reader *rd, const struct store_row *r, const char **json,
		   size_t *len);

/* Keeps large allocations in the heap instead of fresh mappings (mallopt):
 * the store builds and frees segment-sized buffers all the time, and fresh
 * mappings cost a page fault per 4 KiB each time. Call once at start. */
void store_tune_malloc(void);

struct store_stats {
	uint64_t rows, rows_memory;		/* all rows; rows not yet in segment files */
	uint64_t segments, segment_bytes, pids; /* pids: person ids in the last snapshot */
	uint64_t flushed_lsn, applied_lsn;
	uint64_t merges, flushes, flush_errors, bad_records;
	uint64_t flush_ms; /* spent writing segment files from memory */
	/* bytes of the core columns in segment files (see docs/store.md) */
	uint64_t bytes_ts, bytes_pid, bytes_name, bytes_props, bytes_raw;
	struct identity_stats identity;
	struct sessions_stats sessions; /* zeros without session stamping (readers) */
};
void store_get_stats(struct store *s, struct store_stats *st);

/* The store's identity graph, for profile lookups (identity.h says which
 * calls are safe from any thread). Valid until store_close. */
struct identity *store_identity(struct store *s);

/*
 * Verifies the manifest, every segment checksum and the person map without
 * changing anything; prints one line per problem to `report` (and a summary).
 * Returns the number of problems found (0 = healthy), or < 0 if the store
 * cannot be read at all.
 */
struct td_buf;
int store_check(const char *dir, struct td_buf *report);

#endif
