/*
 * events.c - raw event listing: the rows of one event name (or of every
 * event) that pass the filters, newest first, a page at a time.
 *
 * A bounded heap keeps the offset + limit + 1 first rows in listing order
 * (the extra one tells whether another page follows); once it is full, rows
 * older than its last entry are skipped without evaluating filters, and
 * chunks are read from their newest row down.
 */
#include "query/query_int.h"

#include <stdlib.h>
#include <string.h>

struct eentry {
	int64_t ts;
	uint32_t name; /* rank of the event name in byte order */
	uint32_t who;
};

/* Listing order: time descending, then event name, then person. */
static bool before(const struct eentry *a, const struct eentry *b)
{
	if (a->ts != b->ts)
		return a->ts > b->ts;
	if (a->name != b->name)
		return a->name < b->name;
	return a->who < b->who;
}

/* Max-heap on listing order: the root is the entry listed last. */
static void heap_up(struct eentry *h, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!before(&h[p], &h[i]))
			break;
		struct eentry t = h[p];
		h[p] = h[i];
		h[i] = t;
		i = p;
	}
}

static void heap_down(struct eentry *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && before(&h[m], &h[l]))
			m = l;
		if (r < n && before(&h[m], &h[r]))
			m = r;
		if (m == i)
			return;
		struct eentry t = h[m];
		h[m] = h[i];
		h[i] = t;
		i = m;
	}
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_entry(const void *a, const void *b)
{
	const struct eentry *x = a, *y = b;
	return before(x, y) ? -1 : before(y, x) ? 1 : 0;
}

int query_events(struct qctx *q)
{
	static const char *const keys[] = {"kind",	"event",   "filters",  "include_bots",
					   "date_from", "date_to", "timezone", "limit",
					   "offset",	NULL};
	int rc = qj_keys(q, q->root, "", keys);
	if (rc || (rc = qj_time(q, false)))
		return rc;
	const char *event = "";
	int64_t limit = 100, offset = 0;
	if ((rc = qj_string(q, q->root, "event", "", &event)) ||
	    (rc = qj_int(q, q->root, "limit", "", 1, QUERY_MAX_PAGE, &limit)) ||
	    (rc = qj_int(q, q->root, "offset", "", 0, QUERY_MAX_OFFSET, &offset)))
		return rc;
	if (*event && !q_event_exists(q, event))
		return qerr(q, "event: unknown event \"%.100s\"", event);
	struct qsel sel = {.field = "filters", .event = event, .f = q->global, .nf = q->nglobal};

	const char **names;
	size_t nnames;
	if (*event) {
		names = &event;
		nnames = 1;
	} else {
		names = qa_alloc(&q->arena, (q->nnames ? q->nnames : 1) * sizeof(*names));
		memcpy(names, q->names, q->nnames * sizeof(*names));
		nnames = q->nnames;
		q_qsort(names, nnames, sizeof(*names), cmp_cstr);
	}
	size_t cap = (size_t)(offset + limit + 1);
	struct eentry *h = qa_big_realloc(&q->arena, NULL, cap * sizeof(*h));
	size_t nh = 0;
	uint64_t *pass = NULL;
	struct qbits passb = {0};
	for (size_t ni = 0; ni < nnames; ni++) {
		const struct query_chunk *chunks;
		size_t nchunks = q->src->chunks(q->src->ctx, names[ni], &chunks);
		for (size_t ci = 0; ci < nchunks; ci++) {
			const struct query_chunk *c = &chunks[ci];
			size_t lo, hi;
			qchunk_range(q, c, &lo, &hi);
			if (nh == cap) {
				/* only rows at or after the last kept one can enter */
				size_t l2, h2;
				qchunk_span(c, h[0].ts, INT64_MAX, &l2, &h2);
				if (l2 > lo)
					lo = l2;
			}
			if (lo >= hi)
				continue;
			pass = qbits_fit(&q->arena, &passb, hi - lo, 1);
			if ((rc = qsel_eval(q, &sel, c, lo, hi, pass)))
				return rc;
			for (size_t i = hi - lo; i-- > 0;) {
				if (!qbit(pass, i))
					continue;
				struct eentry x = {.ts = c->ts[lo + i], .name = (uint32_t)ni};
				if (qperson(q, c->pid[lo + i], &x.who))
					return qerr_pid(q, c->pid[lo + i]);
				if (nh < cap) {
					h[nh] = x;
					heap_up(h, nh++);
				} else if (before(&x, &h[0])) {
					h[0] = x;
					heap_down(h, nh, 0);
				} else if (x.ts < h[0].ts) {
					break; /* older rows of this chunk cannot enter */
				}
			}
		}
	}
	qa_big_free(&q->arena, pass);
	q_qsort(h, nh, sizeof(*h), cmp_entry);
	bool more = nh == cap;
	size_t end = nh < (size_t)(offset + limit) ? nh : (size_t)(offset + limit);
	qo_printf(q,
		  "{\"kind\":\"events\",\"offset\":%lld,\"limit\":%lld,\"has_more\":%s,"
		  "\"events\":[",
		  (long long)offset, (long long)limit, more ? "true" : "false");
	for (size_t i = (size_t)offset; i < end; i++) {
		char when[Q_INSTANT_LEN];
		q_format_instant(h[i].ts, query_tz_offset(&q->tz, h[i].ts, NULL, NULL), when);
		qo_printf(q, "%s{\"ts\":\"%s\",\"ts_ms\":%lld,\"event\":",
			  i > (size_t)offset ? "," : "", when, (long long)h[i].ts);
		qo_str(q, names[h[i].name]);
		qo_printf(q, ",\"pid\":%u}", h[i].who);
	}
	qo_raw(q, "]}");
	return 0;
}
