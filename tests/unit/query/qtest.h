/*
 * qtest.h - shared helpers of the query engine tests: a seeded RNG, random
 * event data with a fixed property schema, random filters with their own
 * (engine-independent) evaluator, and running queries through memsource.
 *
 * The brute-force references in the test files use only these helpers and
 * plain loops; nothing here calls into src/query/ except memsource and
 * query_run().
 */
#ifndef TD_TESTS_QUERY_QTEST_H
#define TD_TESTS_QUERY_QTEST_H

#include "query/memsource.h"
#include "query/query.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QT_DAY 86400000LL

struct qt_rng {
	uint64_t s;
};
uint64_t qt_next(struct qt_rng *r);
/* Uniform in [0, n). */
int qt_int(struct qt_rng *r, int n);

/* One test event; properties: "properties.plan" (string), "properties.n"
 * (number), "properties.flag" (boolean). */
struct qt_ev {
	const char *name;
	int64_t ts;
	uint32_t pid;
	const char *plan; /* NULL: not set */
	bool has_n;
	double n;
	int flag; /* -1: not set */
};

struct qt_data {
	struct qt_ev *ev;
	size_t n, cap;
	uint32_t npersons;
	uint32_t *canon; /* canonical person of each pid */
};

void qt_data_init(struct qt_data *d, uint32_t npersons);
void qt_data_free(struct qt_data *d);
struct qt_ev *qt_add(struct qt_data *d, const char *name, int64_t ts, uint32_t pid);
/* Random merges: canonical[p] is p or an earlier canonical person. */
void qt_random_canon(struct qt_data *d, struct qt_rng *r);
/* Random properties on an event. */
void qt_random_props(struct qt_ev *e, struct qt_rng *r);
/* Builds a memsource with random chunking (chunk size, overlap, tie order). */
struct memsource *qt_memsource(const struct qt_data *d, struct qt_rng *r);
bool qt_name_exists(const struct qt_data *d, const char *name);
/* Whether some event of name ("" = any) has property prop (0 plan, 1 n, 2 flag). */
bool qt_has_prop(const struct qt_data *d, const char *name, int prop);

/* A filter on one of the three properties. */
struct qt_filter {
	int prop; /* 0 plan, 1 n, 2 flag */
	int op;	  /* index into qt_ops */
	int nv;
	const char *sv[3];
	double dv[3];
	int bv[3];
};
extern const char *const qt_ops[];
extern const char *const qt_paths[];
void qt_random_filter(struct qt_rng *r, int prop, struct qt_filter *f);
bool qt_filter_match(const struct qt_filter *f, const struct qt_ev *e);
bool qt_filters_match(const struct qt_filter *f, int n, const struct qt_ev *e);
/* Appends `[...]` for n filters to s (a buffer of cap bytes holding a string). */
void qt_filters_json(const struct qt_filter *f, int n, char *s, size_t cap);
/* Picks up to max random filters valid for event name (properties it has). */
int qt_pick_filters(struct qt_rng *r, const struct qt_data *d, const char *name, int max,
		    struct qt_filter *out);

/* appends printf output to s (cap bytes) */
void qt_cat(char *s, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Threads qt_query() and qt_query_fail() ask for (query_limits.threads; 0 =
 * automatic, which keeps these small data sets on one thread). */
extern unsigned qt_threads;

/* Runs a query that must succeed; returns the parsed result (cJSON_Delete it). */
cJSON *qt_query(const struct query_source *src, const char *json);
/* Runs a query that must fail; returns its code, message in err. */
int qt_query_fail(const struct query_source *src, const char *json, char *err, size_t cap);
/* Runs a query under memory limits from 1 byte, doubling, to below max, on
 * `threads` threads: each run must give the result or TD_ENOMEM with a
 * message naming the limit and the output untouched (and leak nothing,
 * under ASan); some limit must be too small and some enough. */
void qt_memory_limits(const struct query_source *src, const char *json, size_t max,
		      unsigned threads);

/* Wall-clock offset (ms) at utc_ms in zone tz ("UTC", "+02:00", or an IANA
 * name, via the C library's localtime_r: independent of the engine's TZif
 * reader). */
int64_t qt_offset(const char *tz, int64_t utc_ms);
/* Formats a UTC instant as "YYYY-MM-DDTHH:MM:SS.mmmZ". */
void qt_iso(int64_t ms, char *out, size_t cap);

/* cJSON access that fails the test on a missing or wrong-typed item. */
const cJSON *qt_get(const cJSON *obj, const char *key);
double qt_num(const cJSON *obj, const char *key);
/* A number or null (NaN). */
double qt_num_or_nan(const cJSON *v);
bool qt_close(double a, double b);

#endif
