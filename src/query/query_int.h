/*
 * query_int.h - what the query engine's files share and nothing outside
 * src/query/ may use: the per-query arena, the query context with its error
 * message, JSON helpers, time zones and time buckets, compiled filters,
 * breakdown values and the result writer.
 *
 * Memory: everything a query allocates comes from its arena and is freed by
 * query_run() when the query ends, on success and on every error path. When
 * the arena cannot get memory it longjmp()s back to query_run(), which turns
 * that into TD_ENOMEM: kinds never check for NULL, and no allocation is
 * leaked on the way out because the arena owns them all.
 */
#ifndef TD_QUERY_QUERY_INT_H
#define TD_QUERY_QUERY_INT_H

#include "base/buf.h"
#include "base/td.h"
#include "query/query.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MS_PER_SEC  1000LL
#define MS_PER_MIN  60000LL
#define MS_PER_HOUR 3600000LL
#define MS_PER_DAY  86400000LL

/* ---- arena ---------------------------------------------------------- */

struct qa_block;

/* Locking: lock guards big, used and limit, so that qa_try_big_realloc()
 * may be called from the tasks of a parallel loop (par.c); everything else
 * is for the query's own thread, outside parallel loops. */
struct qarena {
	struct qa_block *small; /* current slab for small allocations */
	struct qa_block *big;	/* doubly linked list of single big allocations */
	struct qa_block *slabs; /* full slabs */
	jmp_buf *oom;		/* where to go when memory runs out */
	size_t used;		/* bytes of live blocks */
	size_t limit;		/* most bytes allowed, 0 = no limit */
	pthread_mutex_t lock;
};

void qa_init(struct qarena *a, jmp_buf *oom);
void qa_release(struct qarena *a);
/* 16-byte aligned, never NULL (longjmp()s on failure). */
void *qa_alloc(struct qarena *a, size_t n);
void *qa_calloc(struct qarena *a, size_t count, size_t n);
char *qa_strdup(struct qarena *a, const char *s);
char *qa_strndup(struct qarena *a, const char *s, size_t n);
char *qa_printf(struct qarena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Growable arrays: p is NULL or a pointer qa_big_realloc() returned. */
void *qa_big_realloc(struct qarena *a, void *p, size_t n);
void qa_big_free(struct qarena *a, void *p);
/* qa_big_realloc() that returns NULL (p untouched, still owned by the arena)
 * instead of jumping; safe in the tasks of a parallel loop. */
void *qa_try_big_realloc(struct qarena *a, void *p, size_t n);

/* A growable array of fixed-size items in the arena. */
struct qvec {
	void *p;
	size_t n, cap, size;
};
void qvec_init(struct qvec *v, size_t item_size);
/* Returns room for one more item (not initialised). */
void *qvec_push(struct qarena *a, struct qvec *v);
void qvec_reserve(struct qarena *a, struct qvec *v, size_t n);

/* ---- time zones (tz.c) ---------------------------------------------- */

/* POSIX TZ rule date: Jn, n or Mm.w.d, with a time of day in seconds. */
struct qtz_rule_date {
	char kind; /* 'J', 'D' (zero-based day), 'M' */
	int m, w, d, n;
	int32_t secs;
};

struct query_tz {
	char name[64];
	int32_t fixed; /* seconds east of UTC when ntrans == 0 && !has_rule */
	size_t ntrans;
	int64_t *trans;	   /* transition instants, seconds, ascending */
	int32_t *after;	   /* UTC offset in seconds from trans[i] on */
	int32_t before;	   /* offset before the first transition */
	bool has_rule;	   /* after the last transition, the POSIX TZ rule applies */
	bool rule_has_dst; /* rule with daylight saving (else std_off always) */
	int32_t std_off, dst_off;
	struct qtz_rule_date start, end;
};

/*
 * Loads a time zone: "UTC", "Z", a fixed offset "+02:00" / "-0530" / "+05",
 * or an IANA name read from the system tz database ($TZDIR or
 * /usr/share/zoneinfo, TZif version 2+ with its POSIX footer rule). Tables
 * come from the arena. Returns 0 or TD_EINVAL with a message in err.
 */
int query_tz_load(struct query_tz *tz, struct qarena *a, const char *name, char *err,
		  size_t errcap);
/* Loads a TZif image already in memory (tests use it for synthetic zones). */
int query_tz_parse_tzif(struct query_tz *tz, struct qarena *a, const unsigned char *p, size_t n,
			char *err, size_t errcap);
/* UTC offset in ms at instant t; *from / *until (may be NULL) receive the
 * span [from, until) around t where the offset is the same. */
int64_t query_tz_offset(const struct query_tz *tz, int64_t t, int64_t *from, int64_t *until);
/* The first instant whose local wall-clock time is >= local (so a time in a
 * spring-forward gap maps to the end of the gap; a repeated time in a
 * fall-back fold maps to its first occurrence). */
int64_t query_tz_to_utc(const struct query_tz *tz, int64_t local);

/* ---- calendar (time.c) ---------------------------------------------- */

enum qinterval { QI_HOUR, QI_DAY, QI_WEEK, QI_MONTH };

int64_t q_floor_div(int64_t a, int64_t b);
void q_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);
/* Bucket number of a local wall-clock time, and the local start of a bucket.
 * Weeks start on Monday (ISO 8601). */
int64_t q_bucket_key(enum qinterval iv, int64_t local_ms);
int64_t q_bucket_local_start(enum qinterval iv, int64_t key);
#define Q_LOCAL_LEN   48
#define Q_INSTANT_LEN 80
/* "YYYY-MM-DDTHH:MM:SS" (local wall clock, no zone) into out[Q_LOCAL_LEN]. */
void q_format_local(int64_t local_ms, char *out);
/* "YYYY-MM-DDTHH:MM:SS.mmm+HH:MM" ("Z" for offset 0) into out[Q_INSTANT_LEN]. */
void q_format_instant(int64_t utc_ms, int64_t off_ms, char *out);

/* Maps instants to bucket keys, caching the span of the last answer
 * (rows come in time order, so most lookups hit the cache). */
struct qbucketer {
	const struct query_tz *tz;
	enum qinterval iv;
	int64_t lo, hi, key; /* instants in [lo, hi) have bucket key */
};
void qbucketer_init(struct qbucketer *b, const struct query_tz *tz, enum qinterval iv);
int64_t qbucketer_key(struct qbucketer *b, int64_t t);

/* ---- query context (query.c) ----------------------------------------- */

/* A time range [from, to) in UTC ms. When both ends were given as dates,
 * dates is set and [from_day, to_day) are the local day numbers. */
struct qrange {
	int64_t from, to;
	bool set;
	bool dates;
	int64_t from_day, to_day;
};

struct qctx {
	const struct query_source *src;
	struct qarena arena;
	jmp_buf oom;
	char *err;
	size_t errcap;
	struct td_buf *out;
	int out_err; /* first error appending to out (sticky) */
	cJSON *root;
	struct query_tz tz;
	struct qrange range;
	const char *const *names; /* every event name, from the source */
	size_t nnames;
	struct qfilter *global; /* top-level "filters", applied to every selector */
	size_t nglobal;
	unsigned nthreads;     /* threads a parallel loop may use (query_limits.threads) */
	const uint64_t *moved; /* qcanon_moved(), once computed */
	bool threads_auto;     /* nthreads is the number of cores: small work stays on one */
	/* scratch reused across chunks */
	uint8_t *scratch;
	size_t scratch_cap;
	uint64_t *words; /* filter scratch bitmap */
	size_t words_cap;
};

/* Sets the error message ("field: problem") and returns TD_EINVAL. */
int qerr(struct qctx *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets the message for a non-EINVAL error code and returns it. */
int qerr_code(struct qctx *q, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Canonical person of a stored person id; TD_ECORRUPT for ids out of range. */
static inline int qperson(const struct qctx *q, uint32_t pid, uint32_t *out)
{
	const struct query_source *s = q->src;
	if (pid >= s->npersons)
		return TD_ECORRUPT;
	uint32_t c = s->canonical ? s->canonical[pid] : pid;
	if (c >= s->npersons)
		return TD_ECORRUPT;
	*out = c;
	return 0;
}
int qerr_pid(struct qctx *q, uint32_t pid);
/* TD_ENOMEM, with a message that names the query's memory limit if it has one. */
int qerr_nomem(struct qctx *q);

/* ---- JSON helpers (parse.c) ----------------------------------------- */

/* Fails unless every key of obj is in the NULL-terminated list, and no key repeats. */
int qj_keys(struct qctx *q, const cJSON *obj, const char *field, const char *const *allowed);
/* Optional fields: return 0 and leave *out alone when absent. */
int qj_string(struct qctx *q, const cJSON *obj, const char *key, const char *field,
	      const char **out);
int qj_int(struct qctx *q, const cJSON *obj, const char *key, const char *field, int64_t lo,
	   int64_t hi, int64_t *out);
int qj_bool(struct qctx *q, const cJSON *obj, const char *key, const char *field, bool *out);
/* Returns the index of the string value in choices, or an error listing them. */
int qj_enum(struct qctx *q, const cJSON *obj, const char *key, const char *field,
	    const char *const *choices, int *out);
/* Durations: a positive integer of ms, or "<n>ms|s|m|h|d|w". */
int qj_duration(struct qctx *q, const cJSON *obj, const char *key, const char *field, int64_t *out);
/* Reads timezone, date_from and date_to of the query into q->tz / q->range. */
int qj_time(struct qctx *q, bool range_required);
/* Interval names: hour, day, week, month. */
int qj_interval(struct qctx *q, const cJSON *obj, const char *key, const char *field,
		const char *const *allowed, enum qinterval *out);

/* ---- filters and event selectors (filter.c) --------------------------- */

enum qop {
	QOP_EQ,
	QOP_NE,
	QOP_IN,
	QOP_NOT_IN,
	QOP_CONTAINS,
	QOP_GT,
	QOP_GE,
	QOP_LT,
	QOP_LE,
	QOP_IS_SET,
	QOP_IS_NOT_SET,
};

enum qvkind { QV_NONE, QV_STRING, QV_NUMBER, QV_BOOL };

struct qfilter {
	const char *field; /* "series[0].filters[1]" */
	const char *path;
	enum qop op;
	enum qvkind vkind;
	size_t nv;
	const char **sv; /* sorted for in / not_in */
	double *dv;	 /* sorted for in / not_in */
	uint8_t *bv;
};

/* Events of one name (or every event, "") that pass a list of filters. */
struct qsel {
	const char *field; /* "steps[1]" */
	const char *event; /* "" = every event */
	struct qfilter *f; /* the query's global filters first, then its own */
	size_t nf;
};

/* Compiles a filter array (may be NULL) at field. */
int qfilters_parse(struct qctx *q, const cJSON *arr, const char *field, struct qfilter **out,
		   size_t *n);
/* Parses {"event": ..., "filters": [...]} plus extra allowed keys; validates
 * the event name and the properties against the source. */
int qsel_parse(struct qctx *q, const cJSON *obj, const char *field, const char *const *extra_keys,
	       bool event_required, struct qsel *sel);
/* Fails with a message unless some chunk of event has path (and, if the
 * first one found disagrees with the value's type, says so). */
int qsel_check_property(struct qctx *q, const char *event, const char *path, const char *field,
			const struct qfilter *f);
/* Sets *found and *col from the first chunk of event that has path. */
int qprop_find(struct qctx *q, const char *event, const char *path, struct query_column *col,
	       bool *found);
/* Marks in pass (bit i for row lo+i) the rows of [lo, hi) that pass every
 * filter of sel. pass must have room for (hi - lo + 63) / 64 words. */
int qsel_eval(struct qctx *q, const struct qsel *sel, const struct query_chunk *c, size_t lo,
	      size_t hi, uint64_t *pass);
/* Row range of a chunk inside q->range (the whole chunk when no range). */
void qchunk_range(const struct qctx *q, const struct query_chunk *c, size_t *lo, size_t *hi);
/* Index range [lo, hi) of rows with from <= ts < to. */
void qchunk_span(const struct query_chunk *c, int64_t from, int64_t to, size_t *lo, size_t *hi);
/* True if a and b select the same rows (same event, same filters in order). */
bool qsel_same(const struct qsel *a, const struct qsel *b);
/* True if name is an event name of the source. */
bool q_event_exists(const struct qctx *q, const char *name);

/* Row bitmaps reused from chunk to chunk: nsets bitmaps of nbits each, the
 * k-th at w + k * cap. nsets must be the same on every call for one qbits.
 * Returns w (valid until the next call). */
struct qbits {
	uint64_t *w;
	size_t cap; /* words per bitmap */
};

static inline uint64_t *qbits_fit(struct qarena *a, struct qbits *b, size_t nbits, size_t nsets)
{
	size_t nw = (nbits + 63) / 64;
	if (nw > b->cap) {
		b->cap = nw * 2;
		b->w = qa_big_realloc(a, b->w, b->cap * nsets * sizeof(uint64_t));
	}
	return b->w;
}

static inline bool qbit(const uint64_t *w, size_t i)
{
	return (w[i >> 6] >> (i & 63)) & 1;
}
static inline bool qcol_has(const struct query_column *c, size_t i)
{
	return !c->present || ((c->present[i >> 6] >> (i & 63)) & 1);
}

/* ---- breakdown values (breakdown.c) --------------------------------- */

/* Interned breakdown values: every distinct value (as text) gets a dense id. */
struct qintern {
	const char **str; /* id -> text */
	size_t n, cap;
	uint32_t *slots; /* open addressing: id + 1, 0 = empty */
	size_t nslots;
};
void qintern_init(struct qintern *t);
uint32_t qintern_get(struct qarena *a, struct qintern *t, const char *s);

/* Reads a breakdown property of one chunk as interned value ids. */
struct qbdcol {
	struct query_column col;
	bool found;
	int32_t *code_ids; /* string column: dict code -> id, -2 unknown */
	double last_num;
	int32_t last_id;
};
#define QBD_NONE (-1) /* the row has no value */
int qbdcol_open(struct qctx *q, struct qintern *t, const char *path, const struct query_chunk *c,
		struct qbdcol *bc);
int32_t qbdcol_get(struct qctx *q, struct qintern *t, struct qbdcol *bc, size_t row);
void qbdcol_close(struct qctx *q, struct qbdcol *bc);
/* Shortest text that reads back as the same double ("3", "0.1", "1e+300"). */
void q_format_number(double v, char *out, size_t cap);

/* Orders breakdown groups: by weight descending, then value (byte order),
 * with "no value" (id QBD_NONE) after every value of equal weight. */
struct qgroup_rank {
	int32_t id;
	double weight;
};
void qgroups_sort(const struct qintern *t, struct qgroup_rank *g, size_t n);

/* ---- result writer (query.c) ---------------------------------------- */

void qo_raw(struct qctx *q, const char *s);
void qo_printf(struct qctx *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void qo_str(struct qctx *q, const char *s); /* JSON string, or null for NULL */
void qo_num(struct qctx *q, double v);	    /* null for NaN / infinite */
void qo_int(struct qctx *q, int64_t v);

/* ---- statistics (stats.c) ------------------------------------------- */

/* qsort() that accepts an empty array with a NULL base. */
void q_qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));
void q_sort_doubles(double *v, size_t n);
void q_sort_i64(int64_t *v, size_t n);
/* Linear interpolation between closest ranks of sorted v (numpy's default,
 * ClickHouse quantileExactInclusive); NaN for n == 0. */
double q_quantile_sorted(const double *v, size_t n, double p);
/* Counting sort by key (< nkeys): returns the item indices in key order
 * (stable) and sets *start to nkeys + 1 offsets; free both with qa_big_free(). */
uint32_t *q_by_key(struct qctx *q, const uint32_t *key, size_t n, size_t nkeys, uint32_t **start);
/* out[k] = number of distinct pid[i] among items with key[i] == k (k < nkeys). */
void q_distinct_by_key(struct qctx *q, const uint32_t *key, const uint32_t *pid, size_t n,
		       size_t nkeys, uint64_t *out);
/* out[k] = quantile p of val[i] among items with key[i] == k; NaN if none. */
void q_quantile_by_key(struct qctx *q, const uint32_t *key, const double *val, size_t n,
		       size_t nkeys, double p, double *out);

/*
 * Defines static void NAME(T *e, size_t n, T *tmp, CTX ctx): sorts one
 * person's entries, which arrive as a few ascending runs (one per chunk they
 * came from): a small person gets an insertion sort, a big one a natural
 * merge sort, runs merged pairwise through tmp (room for n entries) until
 * one is left. Both are stable. LESS(a, b, ctx) compares two T pointers.
 */
#define Q_DEFINE_RUN_SORT(NAME, T, CTX, LESS)                                                      \
	static void NAME(T *e, size_t n, T *tmp, CTX ctx)                                          \
	{                                                                                          \
		(void)ctx;                                                                         \
		if (n <= 32) {                                                                     \
			for (size_t i = 1; i < n; i++) {                                           \
				T x = e[i];                                                        \
				size_t j = i;                                                      \
				while (j > 0 && LESS(&x, &e[j - 1], ctx)) {                        \
					e[j] = e[j - 1];                                           \
					j--;                                                       \
				}                                                                  \
				e[j] = x;                                                          \
			}                                                                          \
			return;                                                                    \
		}                                                                                  \
		T *src = e, *dst = tmp;                                                            \
		for (;;) {                                                                         \
			size_t nruns = 0;                                                          \
			for (size_t i = 0; i < n;) {                                               \
				size_t m = i + 1;                                                  \
				while (m < n && !LESS(&src[m], &src[m - 1], ctx))                  \
					m++;                                                       \
				size_t b = m;                                                      \
				if (b < n)                                                         \
					for (b++; b < n && !LESS(&src[b], &src[b - 1], ctx);)      \
						b++;                                               \
				if (nruns == 0 && m == n)                                          \
					goto sorted; /* one run: nothing to merge */               \
				size_t x = i, y = m, o = i;                                        \
				while (x < m && y < b)                                             \
					dst[o++] =                                                 \
					    LESS(&src[y], &src[x], ctx) ? src[y++] : src[x++];     \
				while (x < m)                                                      \
					dst[o++] = src[x++];                                       \
				while (y < b)                                                      \
					dst[o++] = src[y++];                                       \
				nruns++;                                                           \
				i = b;                                                             \
			}                                                                          \
			T *t_ = src;                                                               \
			src = dst;                                                                 \
			dst = t_;                                                                  \
			if (nruns == 1)                                                            \
				break;                                                             \
		}                                                                                  \
	sorted:                                                                                    \
		if (src != e)                                                                      \
			memcpy(e, src, n * sizeof(*e));                                            \
	}

/* ---- spans, runs and person bitmaps (scan.c) ------------------------ */

/* The rows of one chunk in a time range that pass a selector: rows
 * [lo, hi) of c, row lo + i passing when bit i of pass is set (pass NULL:
 * every row passes). */
struct qspan {
	const struct query_chunk *c;
	size_t lo, hi;
	const uint64_t *pass;
};
/* Spans of every chunk of sel's event with rows in [from, to), filters
 * evaluated (on the query's thread: it reads columns). Arena memory. */
int qspans_get(struct qctx *q, const struct qsel *sel, int64_t from, int64_t to, struct qspan **out,
	       size_t *n);
uint64_t qspans_rows(const struct qspan *sp, size_t n);

/* A stretch of time [from, to) whose instants all have bucket key `key`. */
struct qrun {
	int64_t from, to, key;
};
/* Cuts [from, to) into runs of one key, in time order (keys usually grow,
 * but a clock set back can repeat one). Arena memory; returns the count. */
size_t qruns_get(struct qctx *q, enum qinterval iv, int64_t from, int64_t to, struct qrun **out);
/* First index in [lo, hi) with ts >= t (hi if none). */
size_t qlower_bound(const int64_t *ts, size_t lo, size_t hi, int64_t t);
/*
 * Person bitmaps go in two steps, so that no row pays a random read of
 * canonical[] (as big as the person space, far bigger than a cache): rows
 * mark their stored person ids (a bitmap that stays in cache), and
 * qcanon_bits() maps the marked ids to canonical persons in id order, where
 * only ids that were merged into another need canonical[] at all.
 */
/* Sets in bits (np bits) the stored person id of every passing row of the
 * spans with from <= ts < to. Only reads its inputs, so tasks of a parallel
 * loop may call it. Returns 0, or TD_ECORRUPT with *bad set to an id >= np. */
int qmark_pids(uint32_t np, const struct qspan *sp, size_t n, int64_t from, int64_t to,
	       uint64_t *bits, uint32_t *bad);
/* Bitmap of the ids whose canonical person is another (computed once per
 * query, arena memory); NULL when the source has no canonical[]. */
const uint64_t *qcanon_moved(struct qctx *q);
/* canonical[] of the merged ids only, packed: the canonical id of merged
 * id p is dense[rank[p / 64] + (bits of moved[p / 64] below p)]. A table the
 * size of the merged ids, not of the person space, stays in the last-level
 * cache when rows look their ids up at random. Arena memory. */
struct qcanon_packed {
	const uint64_t *moved; /* qcanon_moved() */
	uint32_t *rank;	       /* per word of moved: merged ids in the words before */
	uint32_t *dense;
};
/* Fills *pk from qcanon_moved() (the source must have canonical[]). */
void qcanon_pack(struct qctx *q, struct qcanon_packed *pk);
/* ORs into out the canonical persons of the ids set in raw (nw words) and
 * clears raw. Safe in parallel tasks. TD_ECORRUPT (*bad = the id) when a
 * canonical id is out of range. */
int qcanon_bits(const struct query_source *src, const uint64_t *moved, uint64_t *raw, uint64_t *out,
		size_t nw, uint32_t *bad);
/* ORs into out (npersons bits) the canonical persons of the passing rows of
 * the spans with from <= ts < to, with a parallel loop over the spans. */
int qperson_set(struct qctx *q, const struct qspan *sp, size_t n, int64_t from, int64_t to,
		uint64_t *out);
/* Number of set bits in w[0..nw). */
uint64_t qbits_count(const uint64_t *w, size_t nw);
/* ORs the bitmaps of workers 1..nworkers-1 (nw words each, one after the
 * other from w) into worker 0's, at w. */
void qbits_or_workers(uint64_t *w, size_t nw, unsigned nworkers);
/* Number of set bits among bits [from, to) of w. */
uint64_t qbits_count_range(const uint64_t *w, size_t from, size_t to);

/* ---- parallel loops (par.c) ------------------------------------------ */

/* Online cores, at most QUERY_MAX_THREADS. */
unsigned qpar_cores(void);
/* Threads worth using for work over this many rows: q->nthreads when the
 * caller set it, else fewer for small work (one below a few 100k rows). */
unsigned qpar_threads(const struct qctx *q, uint64_t rows);
/* Runs task(arg, i, worker) for every i in [0, ntasks) on up to nthreads
 * threads (the caller's included) and returns when all are done; worker
 * (< nthreads) names the thread, for per-thread scratch. See par.c for what
 * tasks may do. */
void qpar_for(unsigned nthreads, size_t ntasks, void (*task)(void *arg, size_t i, unsigned worker),
	      void *arg);

/* ---- funnel conversion times (funnel.c, funnel_seq.c) ------------------ */

/* Bins of non-negative values, ordered like the values, each holding values
 * within about 6% of each other (a float with 4 bits of mantissa): the
 * median of many conversion times is selected among the values of the
 * middle bins only. */
#define QFUNNEL_BINS 976

static inline unsigned qfunnel_bin(uint64_t v)
{
	if (v < 16)
		return (unsigned)v;
	unsigned e = 63 - (unsigned)__builtin_clzll(v);
	return ((e - 3) << 4) | (unsigned)((v >> (e - 4)) & 15);
}

/* The smallest value of bin b. */
static inline uint64_t qfunnel_bin_min(unsigned b)
{
	if (b < 16)
		return b;
	return (uint64_t)(16 | (b & 15)) << ((b >> 4) - 1);
}

/* ---- sequential funnels without exclusions or breakdown (funnel_seq.c) */

/* The common funnel, computed by its own path: what funnel.c asks for and
 * what it gets back. */
struct qfunnel_seq {
	const struct qsel *steps; /* nsteps (2..QUERY_MAX_STEPS) selectors */
	int nsteps;
	int64_t window;
	/* NULL, or a zeroed bitmap of npersons bits that receives the persons
	 * listed: level >= p_step, or level == p_step - 1 when p_dropped */
	uint64_t *persons;
	int64_t p_step;
	bool p_dropped;
	/* results, in the arena */
	uint64_t count[QUERY_MAX_STEPS]; /* persons at step s + 1 */
	int64_t *ms;	 /* times to convert to step s + 1 at ms[start[s]..start[s + 1]) */
	uint32_t *start; /* nsteps + 1 offsets (step 0 has none) */
	uint64_t *hist;	 /* step s's times by qfunnel_bin() at hist[s * QFUNNEL_BINS + bin] */
};

/* Returned by qfunnel_seq() when the rows do not fit its entries (times more
 * than about a century apart): the caller takes the general path. */
#define QFUNNEL_SEQ_UNSUITABLE 1

/* Runs a sequential funnel without exclusions or breakdown over the query's
 * range and global filters. Returns 0, QFUNNEL_SEQ_UNSUITABLE, or an error
 * with its message set (TD_ECORRUPT, TD_ENOMEM, a column() error). */
int qfunnel_seq(struct qctx *q, struct qfunnel_seq *fs);

/* ---- sessions (session.c) ------------------------------------------- */

/* Splits one person's events, fed in time order, into sessions: the first
 * event starts one, and so does an event more than gap ms after the
 * previous one, or one that carries a campaign other than its session's
 * (the campaign of the session's first event; events without a campaign
 * never start a session by themselves). Campaigns are ids the caller
 * assigns; equal ids are the same campaign. */
#define QSESSION_NO_CAMPAIGN UINT32_MAX
struct qsession {
	int64_t gap, last_ts;
	uint32_t campaign; /* the session's */
	bool open;
};
void qsession_init(struct qsession *s, int64_t gap);
/* Takes the next event (ts not before the previous one's); true when it
 * starts a session. */
bool qsession_next(struct qsession *s, int64_t ts, uint32_t campaign);

/* ---- advertising costs (costs.c) -------------------------------------- */

/* The costs of the days a query's range touches, in one currency. */
struct qcosts {
	struct query_cost *rows;
	size_t n;
	const char *currency; /* NULL when there is no row */
	bool loaded;	      /* false: the source knows no costs */
};
/* Loads the costs of the local days (in the query's zone) from the day of
 * from to the day of to - 1. TD_EINVAL (field named) when the rows are in
 * several currencies. The rows are arena memory. */
int qcosts_load(struct qctx *q, const char *field, int64_t from, int64_t to, struct qcosts *c);
/* Where a cost row goes for a breakdown by path (an enriched.campaign.*
 * path); NULL for other paths (enriched.channel: see qchannels). */
const char *qcost_value(const struct query_cost *r, const char *path);
/* Whether costs can be told per value of path: enriched.campaign.name,
 * .source, .medium, or enriched.channel. */
bool qcost_path(const char *path);

/* Cost rows name a source and medium, not a channel: the channel of a
 * (source, medium) is the one the events with that campaign source and
 * medium have most often (ties: the first in byte order). add() counts
 * weight events (or sessions) of a triple; of() answers, NULL when no
 * event has that source and medium. */
struct qchannels {
	struct qintern triples; /* "source\x1fmedium\x1fchannel" */
	uint64_t *weight;	/* per triple */
	size_t cap;
	struct qintern pairs; /* "source\x1fmedium", made by the first of() */
	const char **channel; /* per pair seen in the data: the first npairs */
	size_t npairs;	      /* lookups of other pairs add them after these */
	bool ready;
};
void qchannels_init(struct qchannels *c);
void qchannels_add(struct qctx *q, struct qchannels *c, const char *source, const char *medium,
		   const char *channel, uint64_t weight);
const char *qchannels_of(struct qctx *q, struct qchannels *c, const char *source,
			 const char *medium);
/* Initialises c and counts the rows of every event in [from, to) that pass
 * the global filters and carry a channel and a campaign source or medium. */
int qchannels_scan(struct qctx *q, int64_t from, int64_t to, struct qchannels *c);
/* The path enrichment writes an event's channel to. */
#define QUERY_CHANNEL_PATH "enriched.channel"

/* ---- kinds ---------------------------------------------------------- */

int query_trends(struct qctx *q);
int query_funnel(struct qctx *q);
int query_retention(struct qctx *q);
int query_paths(struct qctx *q);
int query_events(struct qctx *q);
int query_attribution(struct qctx *q);

#endif
