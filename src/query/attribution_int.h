/*
 * attribution_int.h - what the attribution kind's files share:
 * attribution.c (parsing, touch tuples, models, the walk, the result) and
 * attribution_gather.c (the rows of the converting persons, gathered in
 * parallel and grouped by person bucket).
 */
#ifndef TD_QUERY_ATTRIBUTION_INT_H
#define TD_QUERY_ATTRIBUTION_INT_H

#include "query/query_int.h"

enum { M_FIRST, M_LAST, M_LAST_NON_DIRECT, M_LINEAR, M_POSITION, M_DECAY, M_COUNT };

enum { T_CAMPAIGN, T_SOURCE, T_MEDIUM, T_CHANNEL, T_SOURCE_MEDIUM };

/* The row fields a touch tuple is made of, read from these paths. */
enum { F_NAME, F_CSOURCE, F_CMEDIUM, F_RSOURCE, F_RMEDIUM, F_CHANNEL, F_COUNT };
#define ATTR_FIELD_PATHS                                                                           \
	{                                                                                          \
		"enriched.campaign.name", "enriched.campaign.source", "enriched.campaign.medium",  \
		    "enriched.referrer.source", "enriched.referrer.medium", QUERY_CHANNEL_PATH     \
	}

/* A distinct tuple of the fields (string ids + 1; 0 = not set). */
struct atouch {
	uint32_t f[F_COUNT];
	uint32_t campaign; /* session-splitting campaign id, or QSESSION_NO_CAMPAIGN */
	bool direct;
	const char *group;	   /* text of its group in the dimension asked for */
	const char *text[F_COUNT]; /* the fields' text, NULL when unset */
};

/* A row of a converting person, placed in the person's bucket: 16 bytes.
 * key holds the time (ms after the attribution's t0, 44 bits: 557 years)
 * above the person's number inside its bucket (ATTR_PBITS bits), so that one
 * person's keys order by time. */
#define ATTR_PBITS    20
#define ATTR_MAX_SPAN (1ULL << (64 - ATTR_PBITS))
struct aentry {
	uint64_t key;
	uint32_t touch; /* tuple id (struct atouch) */
	uint32_t conv;	/* conversion number + 1 (into values); 0: not a conversion */
};

struct attribution {
	struct qsel conv;
	const char *value; /* property path, NULL: conversions have no value */
	bool value_given;
	int touchpoint;
	bool model_on[M_COUNT];
	int models[M_COUNT], nmodels;
	int64_t lookback, half_life, gap, limit;
	/* touch tuples */
	struct qintern strs; /* field values */
	struct qvec touches; /* struct atouch */
	uint32_t *slots;     /* open addressing over touches: id + 1 */
	size_t nslots;
	/* entries by person bucket (canonical person >> shift, shift <=
	 * ATTR_PBITS): bucket b's at [start[b], start[b + 1]) */
	int64_t t0; /* the first instant read: date_from - lookback */
	struct aentry *e;
	size_t *start;
	size_t n, nb;
	unsigned shift;
	double *values; /* per conversion */
	size_t nconv;
	uint32_t *rank; /* tuple id -> rank of its key (the tuples are renumbered so) */
};

static inline int64_t attr_ts(const struct attribution *a, const struct aentry *e)
{
	return a->t0 + (int64_t)(e->key >> ATTR_PBITS);
}

/* t - d (d >= 0), INT64_MIN when that is below the range of int64_t. */
static inline int64_t attr_before(int64_t t, int64_t d)
{
	int64_t r;
	return __builtin_sub_overflow(t, d, &r) ? INT64_MIN : r;
}

static inline uint64_t attr_hash_fields(const uint32_t *f)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a over the ids */
	for (int i = 0; i < F_COUNT; i++)
		h = (h ^ f[i]) * 1099511628211ULL;
	return h ^ (h >> 29);
}

/* The id of the tuple with fields f, made (on the query's thread) if new. */
uint32_t attr_touch_get(struct qctx *q, struct attribution *a, const uint32_t *f);

/* Gathers the rows of the persons with a conversion in the range (in the
 * range widened by the lookback, passing the global filters): a->e, start,
 * n, nb, shift, values, nconv; tuples made with attr_touch_get. Returns 0
 * or an error with its message set. */
int attr_gather(struct qctx *q, struct attribution *a);

#endif
