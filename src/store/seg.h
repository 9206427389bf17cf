/*
 * seg.h - column segments: the immutable unit of event storage (internal to
 * src/store). A segment is one byte image, either a file mapped read-only or
 * a heap block not yet written; both are read by the same code.
 *
 * Layout (all integers little-endian; docs/store.md has the same tables):
 *
 * Header, 64 bytes:
 *   offset size  field
 *   0      8     magic "TDSEG\r\n\x1a"
 *   8      4     format version (3; 1 and 2 are still read)
 *   12     4     number of groups G (one per event name)
 *   16     8     rows
 *   24     8     lowest LSN of the rows
 *   32     8     highest LSN of the rows
 *   40     8     directory offset
 *   48     4     directory length
 *   52     4     CRC-32C of the directory
 *   56     4     reserved, 0
 *   60     4     CRC-32C of bytes 0..59
 *
 * Data areas follow the header, each starting at a multiple of 64 bytes so a
 * mapped array is aligned. An area is described in the directory by
 * {u64 offset, u64 length, u32 CRC-32C of its bytes} (20 bytes); length 0 =
 * absent.
 *
 * Directory, per group (G times), rows ordered by time inside the group:
 *   u16 name length, name bytes (UTF-8)
 *   u32 rows n, i64 min ts, i64 max ts (ms since the epoch)
 *   u32 rows per raw block B (version 3 on; SEG_RAW_BLOCK before)
 *   area ts      int64[n]
 *   area pid     uint32[n]
 *   area rawidx  per block of B rows: u64 offset in raw, u32 compressed
 *                length (0 = stored uncompressed), u32 decompressed length (16 bytes)
 *   area raw     zstd frames (or plain blocks); a decompressed block is u32 length[k]
 *                then the k WAL event payloads (collect.h) back to back
 *   u32 column count C, then per column:
 *     u16 path length, path bytes ("properties.revenue")
 *     u8 kind (0 string, 1 number, 2 bool), u32 rows that have a value
 *     area present  uint64 bitmap[(n+63)/64], bit i = row i has a value (absent: all)
 *     area values   string: uint32 code[n]; number: double[n]; bool: uint8[n]
 *     area dict     string only: u32 count D, u32 offset[D+1] (into the strings
 *                   that follow, relative to the first), then the strings, each
 *                   NUL-terminated
 *     area zone     number only: per block of SEG_ZONE_ROWS rows {double min, max}
 *                   of the present values (NaN, NaN for a block without any)
 *   u32 rare path count R, then per path: u16 length, bytes, u32 rows with a value:
 *     properties that are in the group but not promoted to columns (read from raw)
 * After the groups (version 2 on; version 1 segments have none and are read
 * by scanning the pid areas instead):
 *   area pidx    the person index: uint32 pid[rows] ascending, then uint32
 *                row[rows], the segment-wide row number of each (groups in
 *                directory order, rows of a pid ascending): a profile finds
 *                its rows by binary search instead of a scan
 */
#ifndef TD_STORE_SEG_H
#define TD_STORE_SEG_H

#include "base/buf.h"
#include "query/query.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEG_MAGIC     "TDSEG\r\n\x1a"
#define SEG_VERSION   3 /* 2 added the person index, 3 the raw block size per group */
#define SEG_HEADER    64
#define SEG_ALIGN     64
#define SEG_RAW_BLOCK 1024
/* Rows per raw block of the events profiles read one message at a time
 * ($identify, $group: their traits): a small block decompresses in tens of
 * microseconds instead of a millisecond, at a little compression. */
#define SEG_RAW_BLOCK_SMALL 32
#define SEG_RAW_BLOCK_MAX   65536
#define SEG_ZONE_ROWS	    65536
#define SEG_MAX_COLUMNS	    512 /* promoted columns per group; more become rare paths */
#define SEG_MAX_STAMPED	    16	/* of them kept for stamped paths (SEG_STAMPED_PREFIX) */
/* A raw block decompresses to at most this (1024 messages of 1 MiB on average). */
#define SEG_MAX_BLOCK_BYTES (1u << 30)

struct seg_area {
	uint64_t off, len;
	uint32_t crc;
};

struct seg_column {
	char *path;
	int kind; /* QCOL_* */
	uint32_t count;
	const uint64_t *present;
	const void *values;
	uint32_t ndict;
	const char **dict; /* heap array pointing into the image */
	int codes_state;   /* 0 unchecked, 1 every code < ndict, -1 not (atomic) */
	struct seg_area a_present, a_values, a_dict, a_zone;
};

struct seg_rare {
	char *path;
	uint32_t count;
};

struct seg;

/* Columns built from raw payloads for a rare path, kept for the segment's life. */
struct seg_built {
	struct seg_built *next;
	char *path;
	struct query_column col;
	void *mem[4];
};

struct seg_group {
	char *name;
	uint32_t n;
	uint64_t row0;	    /* segment-wide number of its first row */
	uint32_t raw_block; /* rows per raw block */
	int64_t min_ts, max_ts;
	const int64_t *ts;
	const uint32_t *pid;
	const unsigned char *rawidx;
	struct seg_area a_ts, a_pid, a_rawidx, a_raw;
	struct seg_column *cols;
	uint32_t ncols;
	struct seg_rare *rare;
	uint32_t nrare;
	struct seg *seg;
	pthread_mutex_t built_lock;
	struct seg_built *built;
};

struct seg {
	uint64_t id; /* file name id; 0 = in memory only */
	const unsigned char *img;
	size_t len;
	bool mapped;
	uint64_t rows, min_lsn, max_lsn;
	struct seg_group *groups;
	uint32_t ngroups;
	const uint32_t *pidx_pid, *pidx_row; /* the person index; NULL in version 1 */
	struct seg_area a_pidx;
	int refs;	      /* atomic */
	uint32_t npids_after; /* sealed images: person ids handed out once its rows were in */
};

/*
 * Opening. seg_open_image takes ownership of a malloc'd image (freed with the
 * segment); seg_open_file maps a file. Both check the header and directory
 * checksums and every bound; area checksums are checked by seg_verify. On
 * failure err says what is wrong.
 */
int seg_open_image(struct seg **out, unsigned char *img, size_t len, char *err, size_t errcap);
int seg_open_file(struct seg **out, const char *path, uint64_t id, char *err, size_t errcap);
void seg_ref(struct seg *s);
void seg_unref(struct seg *s);
/* Checks every area checksum; returns 0 or TD_ECORRUPT with err naming the area. */
int seg_verify(const struct seg *s, char *err, size_t errcap);

/* Calls fn for every row of person id `pid` (not canonical) in the segment,
 * in segment row order (groups in name order, then time); returns how many.
 * Uses the person index, or scans the pid areas of a version 1 segment. */
typedef void (*seg_person_fn)(void *ctx, const struct seg_group *g, uint32_t row);
size_t seg_person_rows(const struct seg *s, uint32_t pid, seg_person_fn fn, void *ctx);

/* The group of an event name, or NULL. */
const struct seg_group *seg_group_find(const struct seg *s, const char *name);
/* Fills col for path over the group's rows (0, or TD_ENOTFOUND when no row
 * has it). Thread-safe. */
int seg_group_column(const struct seg_group *g, const char *path, struct query_column *col);

/* A column of a rare path, built from the raw messages on first use and kept
 * with the segment (internal to seg_group_column). */
int seg_rare_column(struct seg_group *g, const char *path, struct query_column *col);

/* A reader of a group's raw messages, row by row (one block decompressed at a time). */
struct seg_cursor {
	const struct seg_group *g;
	uint32_t row, end;
	uint32_t blkno, blkrows, next_in_blk;
	unsigned char *blk;
	size_t blkcap, blklen, pos;
};
void seg_cursor_init(struct seg_cursor *c, const struct seg_group *g, uint32_t from, uint32_t to);
/* 1 and the payload of the next row (valid until the next call), 0 at the end,
 * TD_ECORRUPT. */
int seg_cursor_next(struct seg_cursor *c, const void **payload, size_t *len);
void seg_cursor_release(struct seg_cursor *c);

/* Walks the payloads of rows [from, to) of a group in order. */
typedef int (*seg_payload_fn)(void *ctx, uint32_t row, const void *payload, size_t len);
int seg_group_payloads(const struct seg_group *g, uint32_t from, uint32_t to, seg_payload_fn fn,
		       void *ctx);

/*
 * Building. Rows go in in any order; seg_builder_finish sorts them by (event
 * name, time, insertion order), chooses the columns and produces the image.
 */
struct seg_builder;
struct seg_builder *seg_builder_new(void);
void seg_builder_free(struct seg_builder *b);
/*
 * Adds an event: a WAL event payload (collect.h; copied). Its JSON is
 * flattened once here; the event name and time come from the message. pid:
 * the person id, or SEG_PID_RESOLVE to have identity resolution name it
 * from the identifiers the message carries. Returns 0 or TD_ECORRUPT for a
 * payload that does not decode (nothing added, nothing resolved).
 */
#define SEG_PID_RESOLVE UINT32_MAX
struct identity;
int seg_builder_add(struct seg_builder *b, uint64_t lsn, const void *payload, size_t len,
		    uint32_t pid, struct identity *ident);
/*
 * Watched paths: string leaves at these paths are noted by seg_builder_add
 * for the caller (the store's session stamping reads the campaign, referrer
 * and page of each event without parsing it twice). paths[0..n) (n <=
 * SEG_WATCH_MAX) must outlive the builder; kept across seg_builder_reset.
 * A builder that watches also reserves the top-level `session` member:
 * leaves under "session." that a message brings are not indexed (its raw
 * JSON keeps them), since the store stamps its own session.* values.
 */
#define SEG_WATCH_MAX 8
void seg_builder_watch(struct seg_builder *b, const char *const *paths, unsigned n);
/* After a successful seg_builder_add: watched path i's string (builder string
 * id, see seg_builder_strof) or UINT32_MAX, and the row's message type
 * (collect.h), time and person id. */
uint32_t seg_builder_watched(const struct seg_builder *b, unsigned i);
void seg_builder_last(const struct seg_builder *b, int *type, int64_t *ts, uint32_t *pid);
const char *seg_builder_strof(const struct seg_builder *b, uint32_t str, size_t *len);
/* Changes whenever the builder's path and string ids are renewed (new,
 * reset): ids cached from it are valid while it stays the same. */
uint64_t seg_builder_epoch(const struct seg_builder *b);
/* Paths under "session." are stamped values (never rare: always a column,
 * whatever their share of rows or dictionary size). */
#define SEG_STAMPED_PREFIX "session."
/* Lower-level adding, for merges: a row whose values follow (seg_builder_val
 * with ids from seg_builder_path / seg_builder_str), the LSN range the rows
 * cover, and paths an input kept rare (listed rare in the output unless
 * some row carries them as values). */
void seg_builder_row(struct seg_builder *b, const char *name, int64_t ts, uint32_t pid,
		     const void *payload, size_t len);
void seg_builder_lsn(struct seg_builder *b, uint64_t min_lsn, uint64_t max_lsn);
uint32_t seg_builder_path(struct seg_builder *b, const char *path);
uint32_t seg_builder_str(struct seg_builder *b, const char *s);
void seg_builder_val(struct seg_builder *b, uint32_t path, int kind, double num, uint32_t str,
		     bool bv);
void seg_builder_rare(struct seg_builder *b, const char *name, const char *path, uint32_t count);
size_t seg_builder_rows(const struct seg_builder *b);
size_t seg_builder_bytes(const struct seg_builder *b);
/* Produces the image (malloc'd, *img owned by the caller) and empties the
 * builder. level: zstd level of the raw messages, or SEG_STORE_PLAIN to keep
 * them uncompressed (in-memory segments, which are merged before they are
 * written). */
#define SEG_STORE_PLAIN INT32_MIN
#define SEG_ZSTD_LEVEL	1
int seg_builder_finish(struct seg_builder *b, int level, unsigned char **img, size_t *len);
/* An uncompressed image of the rows added since the last seal (or reset),
 * keeping every row in the builder: a memtable seals often for queries and
 * is finished whole, once, for its file. */
int seg_builder_seal(struct seg_builder *b, unsigned char **img, size_t *len);
size_t seg_builder_unsealed(const struct seg_builder *b);
/* Forgets every row. */
void seg_builder_reset(struct seg_builder *b);

/* Buffers for in-memory images (imgpool.c): seg_img_alloc returns one of at
 * least need bytes (a freed image's when one is big enough; *cap its usable
 * size) or NULL; seg_img_free takes any malloc'd image back (a segment from
 * seg_open_image is released with it). Thread-safe. */
void *seg_img_alloc(size_t need, size_t *cap);
void seg_img_free(void *img);
/* Buffers waiting in the pool now (and their bytes). */
size_t seg_img_pooled(size_t *bytes);

/* Adds every row of the n segments to b (see merge.c); 0 or TD_ECORRUPT. */
int seg_merge_into(struct seg_builder *b, struct seg *const *in, size_t n);

/* Leaf values of a JSON object text, as dotted paths (null skipped). An
 * array is not a leaf: its elements make no paths, and the array itself is
 * reported as SEG_LEAF_ARRAY with its JSON text in str/slen. */
enum seg_leaf_kind { SEG_LEAF_STR, SEG_LEAF_NUM, SEG_LEAF_BOOL, SEG_LEAF_ARRAY };
typedef void (*seg_leaf_fn)(void *ctx, const char *path, size_t pathlen, enum seg_leaf_kind k,
			    const char *str, size_t slen, double num, bool b);
int seg_flatten(const char *json, size_t len, seg_leaf_fn fn, void *ctx);
/* Adds a flattened leaf to m when it carries an identifier (the builder's
 * rule, shared with tools that must resolve persons as the store does). */
struct identity_msg;
void seg_identity_leaf(const struct identity *g, struct identity_msg *m, const char *path,
		       size_t pathlen, enum seg_leaf_kind k, const char *str, size_t slen,
		       double num);

/* The event name of a message type other than track ("$page", ...); NULL for
 * track, whose name is its "event". */
const char *seg_type_event_name(int type);

#endif
