/*
 * rare.c - columns for properties that a segment did not promote: built from
 * the group's raw messages the first time a query asks, then kept with the
 * segment (its memory goes when the segment does).
 */
#include "base/td.h"
#include "collect/collect.h"
#include "base/intern.h"
#include "store/seg.h"

#include <stdlib.h>
#include <string.h>

struct rare_build {
	const char *path;
	size_t pathlen;
	int kind; /* -1 until the first value */
	uint32_t row;
	uint64_t *present;
	double *num;
	uint32_t *code;
	uint8_t *boolv;
	struct intern strs;
	uint32_t n;
};

static void on_leaf(void *ctx, const char *path, size_t pathlen, enum seg_leaf_kind k,
		    const char *str, size_t slen, double num, bool b)
{
	struct rare_build *r = ctx;
	if (k == SEG_LEAF_ARRAY || pathlen != r->pathlen || memcmp(path, r->path, pathlen) != 0)
		return;
	int kind = k == SEG_LEAF_STR ? QCOL_STRING : k == SEG_LEAF_NUM ? QCOL_NUMBER : QCOL_BOOL;
	if (r->kind < 0) {
		r->kind = kind;
		if (kind == QCOL_NUMBER)
			r->num = td_calloc(r->n, sizeof(double));
		else if (kind == QCOL_STRING)
			r->code = td_calloc(r->n, sizeof(uint32_t));
		else
			r->boolv = td_calloc(r->n, 1);
	}
	if (kind != r->kind)
		return;
	uint32_t i = r->row;
	r->present[i / 64] |= 1ull << (i % 64);
	if (kind == QCOL_NUMBER)
		r->num[i] = num;
	else if (kind == QCOL_STRING)
		r->code[i] = intern_id(&r->strs, str, slen);
	else
		r->boolv[i] = b;
}

static int on_payload(void *ctx, uint32_t row, const void *payload, size_t len)
{
	struct rare_build *r = ctx;
	struct collect_event_view v;
	if (collect_event_decode(payload, len, &v))
		return TD_ECORRUPT;
	r->row = row;
	return seg_flatten(v.json, v.json_len, on_leaf, r);
}

static void fill(const struct seg_built *b, struct query_column *col)
{
	*col = b->col;
}

int seg_rare_column(struct seg_group *g, const char *path, struct query_column *col)
{
	pthread_mutex_lock(&g->built_lock);
	for (struct seg_built *b = g->built; b; b = b->next)
		if (!strcmp(b->path, path)) {
			fill(b, col);
			pthread_mutex_unlock(&g->built_lock);
			return b->col.present ? 0 : TD_ENOTFOUND;
		}
	struct rare_build r = {.path = path, .pathlen = strlen(path), .kind = -1, .n = g->n};
	r.present = td_calloc((g->n + 63) / 64, 8);
	intern_init(&r.strs);
	int rc = seg_group_payloads(g, 0, g->n, on_payload, &r);
	if (rc) {
		free(r.present);
		free(r.num);
		free(r.code);
		free(r.boolv);
		intern_release(&r.strs);
		pthread_mutex_unlock(&g->built_lock);
		return rc;
	}
	struct seg_built *b = td_calloc(1, sizeof(*b));
	b->path = td_strdup(path);
	if (r.kind >= 0) {
		b->col.kind = r.kind;
		b->col.present = r.present;
		b->mem[0] = r.present;
		b->col.num = r.num;
		b->mem[1] = r.num;
		b->col.code = r.code;
		b->mem[2] = r.code;
		b->col.boolv = r.boolv;
		if (r.kind == QCOL_BOOL)
			b->mem[1] = r.boolv;
		if (r.kind == QCOL_STRING) {
			/* the arena stays; dict points into it */
			const char **dict = td_malloc((r.strs.n ? r.strs.n : 1) * sizeof(char *));
			for (uint32_t k = 0; k < r.strs.n; k++)
				dict[k] = intern_str(&r.strs, k);
			b->col.dict = dict;
			b->col.ndict = r.strs.n;
			b->mem[3] = dict;
			b->mem[1] = r.strs.arena;
			r.strs.arena = NULL;
		}
	} else {
		free(r.present);
	}
	intern_release(&r.strs);
	b->next = g->built;
	g->built = b;
	fill(b, col);
	pthread_mutex_unlock(&g->built_lock);
	return r.kind >= 0 ? 0 : TD_ENOTFOUND;
}
