/*
 * stats.c - sorting and quantiles for the engine's aggregates.
 */
#include "query/query_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void q_qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	if (n > 1) /* qsort(NULL, 0, ...) is undefined: empty arrays have no storage here */
		qsort(base, n, size, cmp);
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

void q_sort_doubles(double *v, size_t n)
{
	q_qsort(v, n, sizeof(*v), cmp_dbl);
}

void q_sort_i64(int64_t *v, size_t n)
{
	q_qsort(v, n, sizeof(*v), cmp_i64);
}

double q_quantile_sorted(const double *v, size_t n, double p)
{
	if (n == 0)
		return NAN;
	double h = (double)(n - 1) * p;
	size_t lo = (size_t)floor(h);
	if (lo + 1 >= n)
		return v[n - 1];
	return v[lo] + (h - (double)lo) * (v[lo + 1] - v[lo]);
}

/* Counting sort of items by key: returns the permutation in key order and
 * fills start[nkeys + 1] with each key's range. */
uint32_t *q_by_key(struct qctx *q, const uint32_t *key, size_t n, size_t nkeys,
		   uint32_t **start_out)
{
	uint32_t *start = qa_big_realloc(&q->arena, NULL, (nkeys + 1) * sizeof(uint32_t));
	memset(start, 0, (nkeys + 1) * sizeof(uint32_t));
	for (size_t i = 0; i < n; i++)
		start[key[i] + 1]++;
	for (size_t k = 0; k < nkeys; k++)
		start[k + 1] += start[k];
	uint32_t *next = qa_big_realloc(&q->arena, NULL, (nkeys + 1) * sizeof(uint32_t));
	memcpy(next, start, (nkeys + 1) * sizeof(uint32_t));
	uint32_t *perm = qa_big_realloc(&q->arena, NULL, (n ? n : 1) * sizeof(uint32_t));
	for (size_t i = 0; i < n; i++)
		perm[next[key[i]]++] = (uint32_t)i;
	qa_big_free(&q->arena, next);
	*start_out = start;
	return perm;
}

void q_distinct_by_key(struct qctx *q, const uint32_t *key, const uint32_t *pid, size_t n,
		       size_t nkeys, uint64_t *out)
{
	uint32_t *start;
	uint32_t *perm = q_by_key(q, key, n, nkeys, &start);
	size_t nw = ((size_t)q->src->npersons + 63) / 64;
	uint64_t *seen = qa_big_realloc(&q->arena, NULL, (nw ? nw : 1) * sizeof(uint64_t));
	memset(seen, 0, (nw ? nw : 1) * sizeof(uint64_t));
	for (size_t k = 0; k < nkeys; k++) {
		uint64_t d = 0;
		for (uint32_t i = start[k]; i < start[k + 1]; i++) {
			uint32_t p = pid[perm[i]];
			uint64_t bit = 1ULL << (p & 63);
			if (!(seen[p >> 6] & bit)) {
				seen[p >> 6] |= bit;
				d++;
			}
		}
		for (uint32_t i = start[k]; i < start[k + 1]; i++)
			seen[pid[perm[i]] >> 6] = 0;
		out[k] = d;
	}
	qa_big_free(&q->arena, seen);
	qa_big_free(&q->arena, perm);
	qa_big_free(&q->arena, start);
}

void q_quantile_by_key(struct qctx *q, const uint32_t *key, const double *val, size_t n,
		       size_t nkeys, double p, double *out)
{
	uint32_t *start;
	uint32_t *perm = q_by_key(q, key, n, nkeys, &start);
	double *v = qa_big_realloc(&q->arena, NULL, (n ? n : 1) * sizeof(double));
	for (size_t i = 0; i < n; i++)
		v[i] = val[perm[i]];
	for (size_t k = 0; k < nkeys; k++) {
		size_t a = start[k], b = start[k + 1];
		q_sort_doubles(v + a, b - a);
		out[k] = q_quantile_sorted(v + a, b - a, p);
	}
	qa_big_free(&q->arena, v);
	qa_big_free(&q->arena, perm);
	qa_big_free(&q->arena, start);
}
