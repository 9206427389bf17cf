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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct eentry {
	int64_t ts;
	uint32_t name; /* rank of the event name in byte order */
	uint32_t who;
	const struct query_chunk *c; /* where the row is, for its properties */
	size_t row;
};

#define EVENTS_MAX_PROPERTIES 20

/* "properties": the paths whose values each row shows. A path no row has is
 * not an error here (unlike in filters): it is a column that stays empty, so
 * a listing can ask for userId or session.source of data that may lack them. */
static int parse_properties(struct qctx *q, const char ***out, size_t *n)
{
	*n = 0;
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(q->root, "properties");
	if (!a)
		return 0;
	int size = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
	if (size < 1 || size > EVENTS_MAX_PROPERTIES)
		return qerr(q,
			    "properties: a list of 1 to %d property paths, e.g. "
			    "[\"userId\", \"session.source\"]",
			    EVENTS_MAX_PROPERTIES);
	*out = qa_alloc(&q->arena, (size_t)size * sizeof(**out));
	const cJSON *p;
	cJSON_ArrayForEach(p, a)
	{
		char field[40];
		snprintf(field, sizeof(field), "properties[%zu]", *n);
		if (!cJSON_IsString(p) || !p->valuestring[0])
			return qerr(q, "%s: a property path (a non-empty string)", field);
		(*out)[(*n)++] = p->valuestring;
	}
	return 0;
}

/* ,"properties":{...}: the row's values of the paths asked for (those it has). */
static int put_properties(struct qctx *q, const struct eentry *e, const char **paths, size_t n)
{
	qo_raw(q, ",\"properties\":{");
	bool first = true;
	for (size_t k = 0; k < n; k++) {
		struct query_column col;
		int rc = e->c->column(e->c, paths[k], &col);
		if (rc == TD_ENOTFOUND)
			continue;
		if (rc)
			return qerr(q, "properties[%zu]: cannot read \"%s\" (%s)", k, paths[k],
				    td_strerror(rc));
		if (col.present && !(col.present[e->row / 64] >> (e->row % 64) & 1))
			continue;
		qo_raw(q, first ? "" : ",");
		first = false;
		qo_str(q, paths[k]);
		qo_raw(q, ":");
		if (col.kind == QCOL_STRING)
			qo_str(q, col.dict[col.code[e->row]]);
		else if (col.kind == QCOL_NUMBER)
			qo_num(q, col.num[e->row]);
		else
			qo_raw(q, col.boolv[e->row] ? "true" : "false");
	}
	qo_raw(q, "}");
	return 0;
}

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
	static const char *const keys[] = {"kind",	"event",      "filters",  "include_bots",
					   "date_from", "date_to",    "timezone", "limit",
					   "offset",	"properties", NULL};
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
	const char **props = NULL;
	size_t nprops = 0;
	if ((rc = parse_properties(q, &props, &nprops)))
		return rc;
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
				struct eentry x = {.ts = c->ts[lo + i],
						   .name = (uint32_t)ni,
						   .c = c,
						   .row = lo + i};
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
		qo_printf(q, ",\"pid\":%u", h[i].who);
		if (nprops && (rc = put_properties(q, &h[i], props, nprops)))
			return rc;
		qo_raw(q, "}");
	}
	qo_raw(q, "]}");
	return 0;
}
