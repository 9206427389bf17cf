/*
 * breakdown.c - breakdown values: every distinct value of the breakdown
 * property becomes a dense id (its text interned once per query), so kinds
 * group rows with flat arrays indexed by id. Numbers and booleans are
 * grouped by their text ("3", "0.5", "true"), so one value reads the same
 * whichever type a chunk stored it as.
 */
#include "query/query_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void qintern_init(struct qintern *t)
{
	memset(t, 0, sizeof(*t));
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void rehash(struct qarena *a, struct qintern *t, size_t nslots)
{
	uint32_t *slots = qa_big_realloc(a, NULL, nslots * sizeof(*slots));
	memset(slots, 0, nslots * sizeof(*slots));
	for (size_t id = 0; id < t->n; id++) {
		size_t i = hash_str(t->str[id]) & (nslots - 1);
		while (slots[i])
			i = (i + 1) & (nslots - 1);
		slots[i] = (uint32_t)id + 1;
	}
	qa_big_free(a, t->slots);
	t->slots = slots;
	t->nslots = nslots;
}

uint32_t qintern_get(struct qarena *a, struct qintern *t, const char *s)
{
	if (t->n * 2 >= t->nslots)
		rehash(a, t, t->nslots ? t->nslots * 2 : 64);
	size_t i = hash_str(s) & (t->nslots - 1);
	while (t->slots[i]) {
		uint32_t id = t->slots[i] - 1;
		if (strcmp(t->str[id], s) == 0)
			return id;
		i = (i + 1) & (t->nslots - 1);
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->str = qa_big_realloc(a, t->str, t->cap * sizeof(*t->str));
	}
	t->str[t->n] = qa_strdup(a, s);
	t->slots[i] = (uint32_t)t->n + 1;
	return (uint32_t)t->n++;
}

void q_format_number(double v, char *out, size_t cap)
{
	if (!isfinite(v)) {
		snprintf(out, cap, "%s", isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
		return;
	}
	if (v == 0) {
		snprintf(out, cap, "0"); /* -0 too */
		return;
	}
	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(out, cap, "%.0f", v); /* whole numbers without exponent */
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, cap, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

int qbdcol_open(struct qctx *q, struct qintern *t, const char *path, const struct query_chunk *c,
		struct qbdcol *bc)
{
	(void)t;
	memset(bc, 0, sizeof(*bc));
	bc->last_id = -2;
	int rc = c->column(c, path, &bc->col);
	if (rc == TD_ENOTFOUND)
		return 0;
	if (rc)
		return qerr_code(q, rc, "store: reading property \"%s\" failed: %s", path,
				 td_strerror(rc));
	bc->found = true;
	if (bc->col.kind == QCOL_STRING) {
		size_t n = bc->col.ndict ? bc->col.ndict : 1;
		/* a fresh array per chunk: dictionaries are per chunk */
		bc->code_ids = qa_big_realloc(&q->arena, NULL, n * sizeof(int32_t));
		for (size_t i = 0; i < n; i++)
			bc->code_ids[i] = -2;
	}
	return 0;
}

int32_t qbdcol_get(struct qctx *q, struct qintern *t, struct qbdcol *bc, size_t row)
{
	if (!bc->found || !qcol_has(&bc->col, row))
		return QBD_NONE;
	switch (bc->col.kind) {
	case QCOL_STRING: {
		uint32_t code = bc->col.code[row];
		if (code >= bc->col.ndict)
			return QBD_NONE;
		if (bc->code_ids[code] == -2)
			bc->code_ids[code] = (int32_t)qintern_get(&q->arena, t, bc->col.dict[code]);
		return bc->code_ids[code];
	}
	case QCOL_NUMBER: {
		double v = bc->col.num[row];
		if (bc->last_id == -2 || v != bc->last_num) {
			char buf[40];
			q_format_number(v, buf, sizeof(buf));
			bc->last_num = v;
			bc->last_id = (int32_t)qintern_get(&q->arena, t, buf);
		}
		return bc->last_id;
	}
	default:
		return (int32_t)qintern_get(&q->arena, t, bc->col.boolv[row] ? "true" : "false");
	}
}

void qbdcol_close(struct qctx *q, struct qbdcol *bc)
{
	qa_big_free(&q->arena, bc->code_ids);
	bc->code_ids = NULL;
}

static int cmp_rank(const void *a, const void *b, void *arg)
{
	const struct qintern *t = arg;
	const struct qgroup_rank *x = a, *y = b;
	if (x->weight != y->weight)
		return x->weight > y->weight ? -1 : 1;
	if (x->id == y->id)
		return 0;
	if (x->id == QBD_NONE)
		return 1;
	if (y->id == QBD_NONE)
		return -1;
	return strcmp(t->str[x->id], t->str[y->id]);
}

void qgroups_sort(const struct qintern *t, struct qgroup_rank *g, size_t n)
{
	if (n > 1)
		qsort_r(g, n, sizeof(*g), cmp_rank, (void *)t);
}
