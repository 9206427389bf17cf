/*
 * merge.c - several segments into one builder, column by column: rows keep
 * their time, person and raw message; column values are carried over through
 * the dictionaries (no message is parsed again), except where one input
 * promoted a path that another kept rare: that input's column is built from
 * its raw messages first so the output column is complete.
 */
#include "base/td.h"
#include "store/seg.h"

#include <stdlib.h>
#include <string.h>

struct copy_ctx {
	struct seg_builder *b;
	const struct seg_group *g;
	struct query_column *cols;
	uint32_t *path_ids;
	uint32_t **codes; /* per column: input dict code -> builder string id */
	uint32_t ncols;
};

static int copy_row(void *ctx, uint32_t row, const void *payload, size_t len)
{
	struct copy_ctx *c = ctx;
	seg_builder_row(c->b, c->g->name, c->g->ts[row], c->g->pid[row], payload, len);
	for (uint32_t k = 0; k < c->ncols; k++) {
		const struct query_column *col = &c->cols[k];
		if (col->present && !(col->present[row / 64] >> (row % 64) & 1))
			continue;
		if (col->kind == QCOL_NUMBER)
			seg_builder_val(c->b, c->path_ids[k], QCOL_NUMBER, col->num[row], 0, false);
		else if (col->kind == QCOL_STRING)
			seg_builder_val(c->b, c->path_ids[k], QCOL_STRING, 0,
					c->codes[k][col->code[row]], false);
		else
			seg_builder_val(c->b, c->path_ids[k], QCOL_BOOL, 0, 0,
					col->boolv[row] != 0);
	}
	return 0;
}

/* Is path promoted in any input's group of this name? */
static bool promoted_anywhere(struct seg *const *in, size_t n, const char *name, const char *path)
{
	for (size_t i = 0; i < n; i++) {
		const struct seg_group *g = seg_group_find(in[i], name);
		if (!g)
			continue;
		for (uint32_t k = 0; k < g->ncols; k++)
			if (!strcmp(g->cols[k].path, path))
				return true;
	}
	return false;
}

static int copy_group(struct seg_builder *b, struct seg *const *in, size_t n,
		      const struct seg_group *g)
{
	/* columns to carry: this group's own, plus its rare paths that another
	 * input promoted */
	uint32_t cap = g->ncols + g->nrare;
	struct copy_ctx c = {.b = b, .g = g};
	c.cols = td_calloc(cap ? cap : 1, sizeof(*c.cols));
	c.path_ids = td_calloc(cap ? cap : 1, sizeof(uint32_t));
	c.codes = td_calloc(cap ? cap : 1, sizeof(uint32_t *));
	int rc = 0;
	for (uint32_t k = 0; k < g->ncols + g->nrare && !rc; k++) {
		const char *path = k < g->ncols ? g->cols[k].path : g->rare[k - g->ncols].path;
		if (k >= g->ncols && !promoted_anywhere(in, n, g->name, path)) {
			seg_builder_rare(b, g->name, path, g->rare[k - g->ncols].count);
			continue;
		}
		struct query_column *col = &c.cols[c.ncols];
		rc = seg_group_column(g, path, col);
		if (rc == TD_ENOTFOUND) {
			rc = 0;
			continue;
		}
		if (rc)
			break;
		c.path_ids[c.ncols] = seg_builder_path(b, path);
		if (col->kind == QCOL_STRING) {
			c.codes[c.ncols] =
			    td_malloc((col->ndict ? col->ndict : 1) * sizeof(uint32_t));
			for (size_t d = 0; d < col->ndict; d++)
				c.codes[c.ncols][d] = seg_builder_str(b, col->dict[d]);
		}
		c.ncols++;
	}
	if (!rc)
		rc = seg_group_payloads(g, 0, g->n, copy_row, &c);
	for (uint32_t k = 0; k < c.ncols; k++)
		free(c.codes[k]);
	free(c.codes);
	free(c.cols);
	free(c.path_ids);
	return rc;
}

int seg_merge_into(struct seg_builder *b, struct seg *const *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		seg_builder_lsn(b, in[i]->min_lsn, in[i]->max_lsn);
		for (uint32_t k = 0; k < in[i]->ngroups; k++) {
			int rc = copy_group(b, in, n, &in[i]->groups[k]);
			if (rc)
				return rc;
		}
	}
	return 0;
}
