/*
 * rows.c - single events of a snapshot for the profile API: the rows of a
 * set of person ids (through each segment's person index) and their values.
 */
#include "base/td.h"
#include "collect/collect.h"
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

struct gather {
	struct store_row *rows;
	size_t n, cap, max;
	bool truncated;
};

static void on_row(void *ctx, const struct seg_group *g, uint32_t row)
{
	struct gather *ga = ctx;
	if (ga->n == ga->max) {
		ga->truncated = true;
		return;
	}
	if (ga->n == ga->cap) {
		ga->cap = ga->cap ? ga->cap * 2 : 64;
		ga->rows = td_realloc(ga->rows, ga->cap * sizeof(*ga->rows));
	}
	ga->rows[ga->n++] = (struct store_row){g, row};
}

static int cmp_rows(const void *a, const void *b)
{
	int64_t x = store_row_ts(a), y = store_row_ts(b);
	if (x != y)
		return x < y ? -1 : 1;
	const struct store_row *p = a, *q = b; /* ties: a fixed order */
	if (p->g != q->g)
		return (uintptr_t)p->g < (uintptr_t)q->g ? -1 : 1;
	return p->row < q->row ? -1 : p->row > q->row;
}

static bool present(const struct query_column *c, uint32_t row)
{
	return !c->present || (c->present[row / 64] >> (row % 64) & 1);
}

int store_snap_person_rows(struct store_snap *sn, const uint32_t *pids, size_t npids, size_t max,
			   struct store_row **out, size_t *n)
{
	struct seg *const *segs;
	size_t ns = store_snap_segments(sn, &segs);
	struct gather ga = {.max = max ? max : SIZE_MAX};
	for (size_t i = 0; i < ns; i++)
		for (size_t k = 0; k < npids; k++)
			seg_person_rows(segs[i], pids[k], on_row, &ga);
	if (ga.n > 1)
		qsort(ga.rows, ga.n, sizeof(*ga.rows), cmp_rows);
	*out = ga.rows;
	*n = ga.n;
	return ga.truncated ? TD_ETOOLARGE : 0;
}

int store_snap_rows_where(struct store_snap *sn, const char *event, const char *path,
			  const char *value, size_t max, struct store_row **out, size_t *n)
{
	struct seg *const *segs;
	size_t ns = store_snap_segments(sn, &segs);
	struct gather ga = {.max = max ? max : SIZE_MAX};
	for (size_t i = 0; i < ns; i++) {
		const struct seg_group *g = seg_group_find(segs[i], event);
		struct query_column c;
		if (!g || seg_group_column(g, path, &c) || c.kind != QCOL_STRING)
			continue;
		uint32_t code = UINT32_MAX;
		for (size_t k = 0; k < c.ndict && code == UINT32_MAX; k++)
			if (!strcmp(c.dict[k], value))
				code = (uint32_t)k;
		for (uint32_t r = 0; code != UINT32_MAX && r < g->n; r++)
			if (c.code[r] == code && present(&c, r))
				on_row(&ga, g, r);
	}
	if (ga.n > 1)
		qsort(ga.rows, ga.n, sizeof(*ga.rows), cmp_rows);
	*out = ga.rows;
	*n = ga.n;
	return ga.truncated ? TD_ETOOLARGE : 0;
}

const char *store_row_event(const struct store_row *r)
{
	return r->g->name;
}

uint32_t store_row_pid(const struct store_row *r)
{
	return r->g->pid[r->row];
}

int64_t store_row_ts(const struct store_row *r)
{
	return r->g->ts[r->row];
}

static bool column_value(const struct query_column *c, uint32_t row, struct store_value *v)
{
	if (!present(c, row))
		return false;
	v->kind = c->kind;
	switch (c->kind) {
	case QCOL_STRING:
		if (c->code[row] >= c->ndict)
			return false;
		v->str = c->dict[c->code[row]];
		break;
	case QCOL_NUMBER:
		v->num = c->num[row];
		break;
	default:
		v->b = c->boolv[row] != 0;
	}
	return true;
}

bool store_row_value(const struct store_row *r, const char *path, struct store_value *v)
{
	struct query_column c;
	return seg_group_column(r->g, path, &c) == 0 && column_value(&c, r->row, v);
}

void store_row_values(const struct store_row *r, const char *prefix, store_value_fn fn, void *ctx)
{
	size_t pl = strlen(prefix);
	const struct seg_group *g = r->g;
	for (uint32_t k = 0; k < g->ncols; k++) {
		const char *path = g->cols[k].path;
		struct query_column c;
		struct store_value v;
		if (strncmp(path, prefix, pl) == 0 && seg_group_column(g, path, &c) == 0 &&
		    column_value(&c, r->row, &v))
			fn(ctx, path, &v);
	}
}

bool store_row_has_rare(const struct store_row *r, const char *prefix)
{
	size_t pl = strlen(prefix);
	for (uint32_t k = 0; k < r->g->nrare; k++)
		if (strncmp(r->g->rare[k].path, prefix, pl) == 0)
			return true;
	return false;
}

struct store_row_reader {
	struct seg_cursor cur;
	bool used;
};

struct store_row_reader *store_row_reader_new(void)
{
	return td_calloc(1, sizeof(struct store_row_reader));
}

void store_row_reader_free(struct store_row_reader *rd)
{
	if (!rd)
		return;
	if (rd->used)
		seg_cursor_release(&rd->cur);
	free(rd);
}

int store_row_json(struct store_row_reader *rd, const struct store_row *r, const char **json,
		   size_t *len)
{
	if (rd->used && rd->cur.g == r->g && rd->cur.blkno == r->row / r->g->raw_block) {
		/* the same block: the cursor goes on in it (or reloads it if behind) */
		rd->cur.row = r->row;
		rd->cur.end = r->row + 1;
	} else {
		unsigned char *blk = rd->used ? rd->cur.blk : NULL; /* its buffer is reused */
		size_t cap = rd->used ? rd->cur.blkcap : 0;
		seg_cursor_init(&rd->cur, r->g, r->row, r->row + 1);
		rd->cur.blk = blk;
		rd->cur.blkcap = cap;
		rd->used = true;
	}
	const void *p;
	size_t pl;
	int rc = seg_cursor_next(&rd->cur, &p, &pl);
	if (rc != 1)
		return rc ? rc : TD_ECORRUPT;
	struct collect_event_view v;
	if (collect_event_decode(p, pl, &v))
		return TD_ECORRUPT;
	*json = v.json;
	*len = v.json_len;
	return 0;
}
