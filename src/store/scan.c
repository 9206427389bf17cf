/*
 * scan.c - every event of a snapshot in time order (for export): one cursor
 * per segment group, limited to the time range by binary search, merged
 * through a binary heap keyed by (time, group order).
 */
#include "store/store_int.h"
#include "base/td.h"

#include <stdlib.h>

struct scan_cur {
	struct seg_cursor c;
	uint32_t order;
};

static bool before(const struct scan_cur *a, const struct scan_cur *b)
{
	int64_t ta = a->c.g->ts[a->c.row], tb = b->c.g->ts[b->c.row];
	return ta != tb ? ta < tb : a->order < b->order;
}

static void sift_down(struct scan_cur **h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		if (l < n && before(h[l], h[m]))
			m = l;
		if (l + 1 < n && before(h[l + 1], h[m]))
			m = l + 1;
		if (m == i)
			return;
		struct scan_cur *t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static uint32_t lower_bound(const struct seg_group *g, int64_t t)
{
	uint32_t lo = 0, hi = g->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (g->ts[mid] < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int store_snap_scan(struct store_snap *snap, int64_t from_ms, int64_t to_ms, store_row_fn fn,
		    void *ctx)
{
	struct seg *const *segs;
	size_t nsegs = store_snap_segments(snap, &segs), ng = 0;
	for (size_t i = 0; i < nsegs; i++)
		ng += segs[i]->ngroups;
	struct scan_cur *cur = td_calloc(ng ? ng : 1, sizeof(*cur));
	struct scan_cur **heap = td_calloc(ng ? ng : 1, sizeof(*heap));
	size_t n = 0;
	uint32_t order = 0;
	for (size_t i = 0; i < nsegs; i++)
		for (uint32_t k = 0; k < segs[i]->ngroups; k++) {
			const struct seg_group *g = &segs[i]->groups[k];
			struct scan_cur *c = &cur[order];
			c->order = order++;
			if (g->max_ts < from_ms || g->min_ts >= to_ms)
				continue;
			seg_cursor_init(&c->c, g, lower_bound(g, from_ms), lower_bound(g, to_ms));
			if (c->c.row < c->c.end)
				heap[n++] = c;
		}
	for (size_t i = n; i-- > 0;)
		sift_down(heap, n, i);
	int rc = 0;
	while (n > 0 && !rc) {
		struct scan_cur *c = heap[0];
		const struct seg_group *g = c->c.g;
		uint32_t row = c->c.row;
		const void *p;
		size_t len;
		rc = seg_cursor_next(&c->c, &p, &len);
		if (rc != 1)
			break;
		struct store_row r = {.g = g, .row = row};
		rc = fn(ctx, g->name, g->ts[row], g->pid[row], p, len, &r);
		if (c->c.row >= c->c.end)
			heap[0] = heap[--n];
		sift_down(heap, n, 0);
	}
	for (size_t i = 0; i < ng; i++)
		seg_cursor_release(&cur[i].c);
	free(cur);
	free(heap);
	return rc == 1 ? 0 : rc;
}
