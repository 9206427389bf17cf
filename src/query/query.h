/*
 * query.h - the analytics query engine: trends, funnels, retention, paths,
 * campaign attribution and raw event listings over any event store that can hand out time-ordered
 * chunks of rows.
 *
 * The engine knows nothing about the storage format. A store describes its
 * data with a struct query_source (chunks of one event name, columns fetched
 * by property path on demand); query_run() parses one JSON query document,
 * scans the chunks it needs and writes one JSON result. docs/queries.md gives
 * the query language and the exact semantics of every kind; the unit tests in
 * tests/unit/query/ check each of them against a brute-force reference.
 *
 * Threads: query_run() keeps all its state in the call; several queries may
 * run at once over the same source as long as the source's callbacks are
 * safe to call concurrently.
 */
#ifndef TD_QUERY_QUERY_H
#define TD_QUERY_QUERY_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct query_column;

/* A run of rows of one event name, ordered by time (ascending; ties in any order). */
struct query_chunk {
	size_t n;
	const int64_t *ts;   /* ms since epoch, UTC */
	const uint32_t *pid; /* person id at ingest; map through canonical[] */
	/* Fills *col with the values of a property path ("properties.revenue",
	 * "context.campaign.source", "type"...) for these n rows; returns 0, or
	 * TD_ENOTFOUND if no row has it. Memory owned by the chunk. */
	int (*column)(const struct query_chunk *c, const char *path, struct query_column *col);
	void *impl;
};

struct query_column {
	enum { QCOL_STRING, QCOL_NUMBER, QCOL_BOOL } kind;
	const uint64_t
	    *present; /* bitmap: row i has a value if present[i/64] >> (i%64) & 1; NULL = all */
	const uint32_t *code; /* QCOL_STRING: dictionary code per row */
	const char *const *dict;
	size_t ndict;	      /* QCOL_STRING: code -> string */
	const double *num;    /* QCOL_NUMBER */
	const uint8_t *boolv; /* QCOL_BOOL: 0/1 */
};

/*
 * Advertising costs ("tandem import costs", docs/attribution.md): one row
 * per calendar day, source, medium and campaign. Attribution joins them to
 * touchpoints and trends to breakdown values, for ROI and ROAS. Strings are
 * "" when the row does not name the part.
 */
struct query_cost {
	char date[11]; /* YYYY-MM-DD */
	const char *source, *medium, *campaign;
	const char *currency; /* ISO 4217, upper case */
	double cost;
};

/* Where a query gets its costs. load() is called at most once per query
 * that asks for costs, on the query's thread, with the first and the last
 * day (YYYY-MM-DD, inclusive): it sets *out to the rows of those days
 * (valid until release(ctx, *out, *n)) and returns 0, or an error code
 * with a message in err. */
struct query_costs {
	void *ctx;
	int (*load)(void *ctx, const char *first_day, const char *last_day, struct query_cost **out,
		    size_t *n, char *err, size_t errcap);
	void (*release)(void *ctx, struct query_cost *rows, size_t n);
};

/* What a query reads: the chunks of one event name (empty name "" = every event). */
struct query_source {
	void *ctx;
	/* Sets *out to the chunks of `event` (array valid until the query ends) and returns how
	 * many. */
	size_t (*chunks)(void *ctx, const char *event, const struct query_chunk **out);
	/* Every event name that exists (for "all events" queries and errors), valid during the
	 * query. */
	size_t (*event_names)(void *ctx, const char *const **out);
	const uint32_t *canonical; /* canonical[pid] = merged person id; NULL = identity */
	uint32_t npersons;
	/* Advertising costs; NULL = none known (a query asking for them gets
	 * null costs). A store leaves it NULL; the caller sets it on a copy. */
	const struct query_costs *costs;
};

/*
 * Runs one query. json/len: the query document (docs/queries.md). The
 * result JSON is appended to out_json, whose cap bounds the result size
 * (TD_ETOOLARGE past it). On failure out_json is left as it was and err
 * (errcap bytes, always NUL-terminated when errcap > 0) names the field and
 * the problem, e.g. "steps[2].window: must be positive".
 *
 * Returns 0; TD_EINVAL for a query the caller must fix (the message says
 * how); TD_ETOOLARGE when the result does not fit out_json; TD_ENOMEM when
 * the query needs more memory than the process can get; TD_ECORRUPT when
 * the source hands out a person id >= npersons; any error a column()
 * callback returned, passed through.
 */
int query_run(const char *json, size_t len, const struct query_source *src, struct td_buf *out_json,
	      char *err, size_t errcap);

/* The values of a query's "kind" this build answers; NULL-terminated. */
extern const char *const query_kinds[];

/* Resource limits of one query. */
struct query_limits {
	size_t max_memory; /* bytes the query may allocate (0 = no limit); past it TD_ENOMEM */
	/* Threads a query may use (the caller's included): 0 = automatic (the
	 * number of online cores, at most QUERY_MAX_THREADS, and one thread for
	 * queries too small to gain from more); n = exactly min(n,
	 * QUERY_MAX_THREADS), whatever the size (tests use it to exercise the
	 * parallel paths on small data). */
	unsigned threads;
};

/* query_run() under limits (NULL = none). */
int query_run_limited(const char *json, size_t len, const struct query_source *src,
		      const struct query_limits *limits, struct td_buf *out_json, char *err,
		      size_t errcap);

/*
 * Filters outside a query (computed traits): a JSON array of filters with
 * the query language's syntax and semantics (docs/queries.md, "Filters"),
 * compiled once and matched one value at a time. compile returns 0 or
 * TD_EINVAL with err naming the field (e.g. "filters[1].operator: ...");
 * properties are not checked against any data.
 */
struct query_filters;
int query_filters_compile(const char *json, size_t len, const char *field,
			  struct query_filters **out, char *err, size_t errcap);
void query_filters_free(struct query_filters *f);
size_t query_filters_count(const struct query_filters *f);
const char *query_filters_path(const struct query_filters *f, size_t i);
/* Whether row `row` of col (NULL: the row has no such property) passes
 * filter i. A value of another type than the filter's never equals it. */
bool query_filters_match(const struct query_filters *f, size_t i, const struct query_column *col,
			 size_t row);

/* Limits of the query language, also listed in docs/queries.md. */
#define QUERY_MAX_STEPS	     20	   /* funnel steps */
#define QUERY_MAX_SERIES     20	   /* trend series */
#define QUERY_MAX_FILTERS    64	   /* filters per event selector, global ones included */
#define QUERY_MAX_BUCKETS    10000 /* time buckets of a trend or cohorts of a retention */
#define QUERY_MAX_PERIODS    400   /* retention periods */
#define QUERY_MAX_BREAKDOWN  1000  /* breakdown_limit */
#define QUERY_MAX_PATH_DEPTH 20	   /* paths depth */
#define QUERY_MAX_PAGE	     10000 /* persons / events per page */
#define QUERY_MAX_OFFSET     1000000
#define QUERY_MAX_THREADS    16 /* threads inside one query */

/* The property enrichment sets to true on events of bots; every kind
 * leaves those events out unless the query has "include_bots": true. */
#define QUERY_BOT_PATH "enriched.ua.bot"

#endif
