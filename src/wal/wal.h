/*
 * wal.h - the write-ahead log, tandem's source of truth.
 *
 * Every accepted event is a WAL record before it is acknowledged. Appenders
 * (any thread) copy framed records into an in-memory pending buffer; one
 * writer thread writes the buffer with a single write() and fdatasync() and
 * then tells every waiter whose record it covered (group commit: all requests
 * that arrived during one fsync share the next one).
 *
 * On-disk layout: DIR/00000001.wal, 00000002.wal, ... (8 hex digits), each
 * starting with a file header, followed by records. All integers are
 * little-endian.
 *
 * File header (32 bytes):
 *   offset size  field
 *   0      8     magic "TDWAL\r\n\x1a"
 *   8      4     format version (1)
 *   12     4     reserved, 0
 *   16     8     first LSN: every record in the file has an LSN >= this
 *   24     4     reserved, 0
 *   28     4     CRC-32C of bytes 0..27
 *
 * Record (17-byte header + payload):
 *   offset size  field
 *   0      4     payload length N (at most WAL_MAX_PAYLOAD)
 *   4      4     CRC-32C of bytes 8 .. 17+N (LSN, type and payload)
 *   8      8     LSN, strictly increasing across the whole log
 *   16     1     record type (WAL_REC_*)
 *   17     N     payload
 *
 * Recovery: a reader stops reading a file at the first record that is cut
 * short or fails its checksum (a torn tail after a crash), reports it, and
 * goes on with the next file; the damaged bytes are never overwritten because
 * every wal_open() starts a new file. So damage can never make an earlier
 * record unreadable.
 *
 * Removal: the log is consumed by derived state that records the LSN it
 * covers (the event store, the dedupe checkpoint). wal_remove_covered()
 * deletes the closed files every record of which is at or below an LSN all
 * consumers cover. A file's records are bounded without reading it: each is
 * below the first LSN in the header of any later file (LSNs increase over the
 * whole log). The file being written is never removed, and since every start
 * begins a new file whose header holds the next LSN, LSNs go on from where
 * they were even when every older file is gone.
 */
#ifndef TD_WAL_WAL_H
#define TD_WAL_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WAL_FILE_HEADER	    32
#define WAL_REC_HEADER	    17
#define WAL_MAX_PAYLOAD	    (16u << 20)
#define WAL_DEFAULT_SEGMENT (64u << 20)

enum wal_rec_type {
	WAL_REC_EVENT = 1, /* an accepted message: see collect.h for the payload */
};

enum wal_durability {
	WAL_SYNC = 0,  /* acknowledge after write + fdatasync (default) */
	WAL_ASYNC = 1, /* acknowledge once queued; fsync every async_interval_ms */
};

struct wal_options {
	const char *dir;	  /* created if missing (mode 0700) */
	size_t segment_bytes;	  /* rotate files past this size; 0 = default */
	size_t max_pending_bytes; /* appends beyond this fail with TD_EFULL; 0 = 64 MiB */
	enum wal_durability durability;
	unsigned async_interval_ms; /* 0 = 200 */
	/* First LSN given to the replay callback (0 = every record): the lowest
	 * LSN a consumer still needs. Files whose records are all below it are
	 * not read at all; records below it in the file that holds it are read
	 * and checked but not passed on. LSNs handed out after the open are
	 * at least this. */
	uint64_t replay_from_lsn;
};

struct wal_record {
	uint64_t lsn;
	uint8_t type;
	const void *payload; /* valid until the next wal_reader_next() call */
	uint32_t len;
	uint32_t file_seq;
	uint64_t offset; /* of the record header in its file */
};

/* Called once per record found at open, in LSN order. Nonzero return stops
 * the replay and fails wal_open with that code. */
typedef int (*wal_replay_fn)(void *ctx, const struct wal_record *rec);

/* Called from the writer thread when every record up to the LSN given to
 * wal_notify() is durable (status 0) or can no longer become so (status < 0).
 * It must not block or call back into the WAL. */
typedef void (*wal_done_fn)(void *arg, int status);

/* Called from the writer thread after a failed write, with the first LSN that
 * was lost: derived in-memory state keyed by LSN must forget it. Appends stay
 * refused until the hook returns. */
typedef void (*wal_rollback_fn)(void *ctx, uint64_t first_lost_lsn);

struct wal;

struct wal_stats {
	uint64_t next_lsn, durable_lsn;
	uint64_t commits, records_written, bytes_written;
	uint64_t pending_bytes, pending_records;
	uint64_t files, disk_bytes;
	uint64_t damaged_files; /* files whose tail was found torn or corrupt at open */
	uint64_t files_removed, bytes_removed; /* by wal_remove_covered since open */
	int last_error;			       /* TD_E* of the last failed write, 0 if none */
	bool healthy; /* false from a failed write until a write succeeds */
};

/* Opens the log, replays every stored record from opt->replay_from_lsn on
 * through fn (may be NULL), starts a new file and the writer thread. On
 * success *out owns the log. */
int wal_open(struct wal **out, const struct wal_options *opt, wal_replay_fn fn, void *ctx);

/* Writes what is pending, stops the writer, frees the log. Waiters still
 * registered are called with TD_ECLOSED. */
void wal_close(struct wal *w);

void wal_set_rollback(struct wal *w, wal_rollback_fn fn, void *ctx);

/* Called from the writer thread after each successful commit with the framed
 * records just made durable (headers as above, LSN order), so a consumer can
 * follow the log without reading it back. It must copy what it keeps and not
 * block or call back into the WAL. full (may be NULL) is asked before every
 * append: while it says true, appends fail with TD_EFULL (clients get 429), so
 * a consumer that falls behind holds ingest back instead of queueing without
 * bound. */
typedef void (*wal_commit_fn)(void *ctx, const void *records, size_t len);
void wal_set_commit_hook(struct wal *w, wal_commit_fn fn, bool (*full)(void *ctx), void *ctx);

/*
 * Appends one record; *lsn receives its LSN. The payload is copied.
 * Fails with TD_EFULL when the pending buffer is at its cap (the client should
 * retry later), with the error of the last failed write (TD_ENOSPC, TD_EROFS,
 * TD_EIO) for one second after a write failed, TD_ETOOLARGE past
 * WAL_MAX_PAYLOAD.
 */
int wal_append(struct wal *w, uint8_t type, const void *payload, size_t len, uint64_t *lsn);

/* One record to append. */
struct wal_iov {
	const void *data;
	size_t len;
};

/*
 * Appends n records of one type atomically: they get consecutive LSNs from
 * *first_lsn on and go to disk in the same commit, so they become durable
 * (or are lost to a failed write) together. Same errors as wal_append; on
 * error nothing was appended.
 */
int wal_append_many(struct wal *w, uint8_t type, const struct wal_iov *recs, size_t n,
		    uint64_t *first_lsn);

/*
 * Would `records` appends totalling `payload_bytes` be accepted now? Returns 0
 * or the error wal_append would give. Lets a caller that is the only appender
 * (the ingest lock makes it so) refuse a whole batch rather than keep half.
 */
int wal_reserve_check(struct wal *w, size_t payload_bytes, size_t records);

/* Calls fn(arg, status) once every record up to lsn is durable. In async
 * mode it calls fn(arg, 0) at once: the record is only queued, and becomes
 * durable within async_interval_ms. May call fn before returning, on the
 * calling thread, when that is already so. */
void wal_notify(struct wal *w, uint64_t lsn, wal_done_fn fn, void *arg);

/* Blocks until lsn is durable; returns 0 or the error that lost it. */
int wal_wait(struct wal *w, uint64_t lsn);

enum wal_durability wal_durability(const struct wal *w);
size_t wal_max_pending(const struct wal *w);
/* Every record up to this LSN is on disk. */
uint64_t wal_durable_lsn(struct wal *w);
void wal_get_stats(struct wal *w, struct wal_stats *st);

/*
 * Removes the closed files whose every record has an LSN <= lsn, oldest
 * first, stopping at the first one that holds a later record; then fsyncs the
 * directory. Never the file being written. *files and *bytes (may be NULL)
 * receive what was removed. Any thread; readers that have a removed file open
 * keep reading it, readers that reach it later skip it. Returns 0 or the I/O
 * error that stopped it (what was removed before stays removed).
 */
int wal_remove_covered(struct wal *w, uint64_t lsn, uint64_t *files, uint64_t *bytes);
/* What wal_remove_covered(w, lsn, ...) would remove now, without removing. */
int wal_count_covered(struct wal *w, uint64_t lsn, uint64_t *files, uint64_t *bytes);

/* Latency of write+fdatasync, for /metrics: fills counts for the bucket upper
 * bounds in seconds given by wal_fsync_buckets (cumulative, Prometheus style). */
#define WAL_FSYNC_BUCKETS 12
extern const double wal_fsync_buckets[WAL_FSYNC_BUCKETS];
#define WAL_GROUP_BUCKETS 10
extern const double wal_group_buckets[WAL_GROUP_BUCKETS];
struct wal_histograms {
	uint64_t fsync[WAL_FSYNC_BUCKETS + 1]; /* last: +Inf */
	double fsync_sum;
	uint64_t group[WAL_GROUP_BUCKETS + 1];
	double group_sum;
	uint64_t count;
};
void wal_get_histograms(struct wal *w, struct wal_histograms *h);

/*
 * Reading. A reader walks every file of DIR in order and returns records one
 * by one; it never writes. Damage (a cut-short or corrupt record, a bad file
 * header) ends that file: it is described by wal_reader_damage() and reading
 * continues with the next file. A file removed (wal_remove_covered) after the
 * reader listed the directory is skipped if it was not open yet; one already
 * open is read to its end.
 */
struct wal_reader;

int wal_reader_open(struct wal_reader **out, const char *dir);
/* A reader that returns only records with LSN >= from_lsn: files whose
 * records are all below it are not read (nor checked for damage). */
int wal_reader_open_from(struct wal_reader **out, const char *dir, uint64_t from_lsn);
/* Returns 1 and fills rec, 0 at the end of the log, or < 0 on an I/O error. */
int wal_reader_next(struct wal_reader *r, struct wal_record *rec);
/* Damage found so far, one line per damaged file ("00000003.wal at byte 4096:
 * record checksum mismatch (torn write?)"); NULL if none. Valid until free. */
const char *wal_reader_damage(const struct wal_reader *r);
uint64_t wal_reader_damaged_files(const struct wal_reader *r);
/* The first LSN (from its header) of the first file the reader opened, 0 if
 * none yet: above from_lsn, records in between were removed before reading. */
uint64_t wal_reader_first_lsn(const struct wal_reader *r);
void wal_reader_free(struct wal_reader *r);

/* Serializes a record header for (lsn, type, payload) into hdr. */
void wal_frame_header(unsigned char hdr[WAL_REC_HEADER], uint64_t lsn, uint8_t type,
		      const void *payload, uint32_t len);

#endif
