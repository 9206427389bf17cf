/*
 * sessions.h - sessions stamped on events as the store applies them
 * (docs/sessions.md): every track, page and screen event gets its person's
 * session id and number, the session's landing page and source.
 *
 * A session is a canonical person's run of events without a gap of more
 * than `gap` ms; an event that carries a campaign other than its session's
 * starts a new one (the rules of the query-time sessions, src/query/session.c).
 * Events are taken in the order the store applies them (LSN order): an event
 * earlier than its person's latest joins the current session when it is at
 * most `gap` before that session's start, and gets no session otherwise.
 *
 * State: per canonical person, the current session (first LSN, number,
 * start, last event, fields) and how many sessions it had. It is kept in
 * DATA/events/SESSIONS, a log of changed persons written with each flush
 * and ended by a mark carrying the flushed LSN (sessions_write, applier
 * thread; made durable by the flusher with the segment), so that after a
 * crash the state is exactly that of the manifest's LSN and the WAL replay
 * stamps the same sessions again. The log is rewritten as a snapshot when it
 * has grown past four times the live state.
 *
 * Threads: all calls are for the applier (the descriptor sessions_write
 * returns is for any thread).
 */
#ifndef TD_STORE_SESSIONS_H
#define TD_STORE_SESSIONS_H

#include <stdbool.h>
#include <stdint.h>

#define SESSIONS_GAP_MS (30 * 60 * 1000) /* the default inactivity that ends a session */

struct sessions;
struct seg_builder;

/* Opens the state of the store in dir as of flushed_lsn (creating the log
 * when missing). gap_ms 0 = SESSIONS_GAP_MS; snapshot_bytes: the log is
 * rewritten past this size (and four times the live state), 0 = 64 MiB.
 * 0 or TD_E* (logged). */
int sessions_open(struct sessions **out, const char *dir, uint64_t flushed_lsn, int64_t gap_ms,
		  uint64_t snapshot_bytes);
/* The same for a read-only store (which stamps the WAL records it applies in
 * memory as the server did): reads the log, never changes a file, and
 * sessions_write must not be called. A missing log is an empty state. */
int sessions_open_ro(struct sessions **out, const char *dir, uint64_t flushed_lsn, int64_t gap_ms);
void sessions_close(struct sessions *ss);

/* Has b note the enriched fields sessions read (seg_builder_watch); call for
 * every builder before it takes rows. */
void sessions_watch(struct sessions *ss, struct seg_builder *b);

/* Right after seg_builder_add(b, lsn, ...) succeeded: stamps the row's
 * session.* values when it is a track, page or screen event of the
 * canonical person `person`, and updates its state. */
void sessions_stamp(struct sessions *ss, struct seg_builder *b, uint32_t person, uint64_t lsn);

/* identity_merge_fn (ctx = ss): folds the loser's state into the winner's:
 * the later of the two current sessions goes on, and the session counts
 * add up (the next session's number follows both). */
void sessions_merge(void *ctx, uint32_t winner, uint32_t loser);

/* At a flush whose rows end at lsn (the state is exactly as of lsn): appends
 * the changed persons and a mark for lsn to the log (or starts a snapshot),
 * and returns in *sync_fd a descriptor the flusher fdatasyncs before the
 * manifest names lsn, then closes. flushed_lsn: the manifest's LSN now.
 * 0 or TD_E* (the changes stay pending for the next flush). */
int sessions_write(struct sessions *ss, uint64_t lsn, uint64_t flushed_lsn, int *sync_fd);

/* tandem check: 1 (with msg) when the log of the store in dir is unreadable
 * or does not reach flushed_lsn, else 0. Changes nothing. */
int sessions_check(const char *dir, uint64_t flushed_lsn, char *msg, size_t n);

/* Figures for tests and metrics. */
struct sessions_stats {
	uint64_t persons;   /* with a session */
	uint64_t started;   /* sessions started since open */
	uint64_t late;	    /* events left without a session (too early) */
	uint64_t log_bytes; /* of the log file */
	uint64_t snapshots; /* log rewrites since open */
};
void sessions_get_stats(const struct sessions *ss, struct sessions_stats *st);

#endif
