/*
 * paths.c - paths: which events follow (or precede) an anchor event within
 * a session, step by step, as counted transitions "from -> to" per depth.
 *
 * Every row of the events taken into account becomes a 16-byte entry
 * {ts, person, name rank | anchor bit}; a counting sort groups them by
 * person; each person's entries are sorted by (time, name, anchor first),
 * cut into sessions at gaps longer than session_gap, and the first anchor
 * of each session yields up to depth transitions.
 */
#include "query/query_int.h"

#include <stdlib.h>
#include <string.h>

#define P_ANCHOR    (1u << 31)
#define P_NAME_BITS 21

struct pentry {
	int64_t ts;
	uint32_t who;
	uint32_t name; /* rank of the event name in byte order, | P_ANCHOR */
};

struct paths {
	struct qsel anchor;
	bool before;
	int64_t depth, limit, gap;
	const char **names; /* sorted event names taken into account */
	size_t nnames;
};

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int parse(struct qctx *q, struct paths *p)
{
	static const char *const keys[] = {
	    "kind",	 "anchor",  "direction", "depth",   "limit",	    "session_gap", "events",
	    "date_from", "date_to", "timezone",	 "filters", "include_bots", NULL};
	int rc = qj_keys(q, q->root, "", keys);
	if (rc || (rc = qj_time(q, false)))
		return rc;
	const cJSON *ja = cJSON_GetObjectItemCaseSensitive(q->root, "anchor");
	if (!ja)
		return qerr(q, "anchor: required ({\"event\": ..., \"filters\": [...]})");
	if ((rc = qsel_parse(q, ja, "anchor", NULL, true, &p->anchor)))
		return rc;
	static const char *const dirs[] = {"after", "before", NULL};
	int dir = 0;
	p->depth = 5;
	p->limit = 20;
	p->gap = 30 * MS_PER_MIN;
	if ((rc = qj_enum(q, q->root, "direction", "", dirs, &dir)) ||
	    (rc = qj_int(q, q->root, "depth", "", 1, QUERY_MAX_PATH_DEPTH, &p->depth)) ||
	    (rc = qj_int(q, q->root, "limit", "", 1, QUERY_MAX_BREAKDOWN, &p->limit)) ||
	    (rc = qj_duration(q, q->root, "session_gap", "", &p->gap)))
		return rc;
	p->before = dir == 1;

	const cJSON *je = cJSON_GetObjectItemCaseSensitive(q->root, "events");
	size_t cap = q->nnames + 1;
	p->names = qa_alloc(&q->arena, cap * sizeof(*p->names));
	if (je) {
		if (!cJSON_IsArray(je))
			return qerr(q, "events: must be an array of event names");
		int i = 0;
		const cJSON *it;
		cJSON_ArrayForEach(it, je)
		{
			if (!cJSON_IsString(it))
				return qerr(q, "events[%d]: must be an event name", i);
			if (!q_event_exists(q, it->valuestring))
				return qerr(q, "events[%d]: unknown event \"%.100s\"", i,
					    it->valuestring);
			bool dup = false;
			for (size_t k = 0; k < p->nnames; k++)
				dup |= strcmp(p->names[k], it->valuestring) == 0;
			if (!dup && p->nnames < cap)
				p->names[p->nnames++] = it->valuestring;
			i++;
		}
		/* the anchor's own event always takes part */
		bool have = !*p->anchor.event;
		for (size_t k = 0; k < p->nnames; k++)
			have |= strcmp(p->names[k], p->anchor.event) == 0;
		if (!have && p->nnames < cap)
			p->names[p->nnames++] = p->anchor.event;
	} else {
		for (size_t k = 0; k < q->nnames; k++)
			p->names[p->nnames++] = q->names[k];
	}
	if (p->nnames >= (1u << P_NAME_BITS))
		return qerr(q, "events: at most %u event names", (1u << P_NAME_BITS) - 1);
	q_qsort(p->names, p->nnames, sizeof(*p->names), cmp_cstr);
	return 0;
}

static int gather(struct qctx *q, struct paths *p, struct qvec *out)
{
	struct qsel global = {.field = "filters", .event = "", .f = q->global, .nf = q->nglobal};
	uint64_t *pass = NULL, *anc = NULL;
	struct qbits passb = {0}, ancb = {0};
	for (size_t ni = 0; ni < p->nnames; ni++) {
		const char *name = p->names[ni];
		bool anchor_here = !*p->anchor.event || strcmp(p->anchor.event, name) == 0;
		const struct query_chunk *chunks;
		size_t nchunks = q->src->chunks(q->src->ctx, name, &chunks);
		for (size_t ci = 0; ci < nchunks; ci++) {
			const struct query_chunk *c = &chunks[ci];
			size_t lo, hi;
			qchunk_range(q, c, &lo, &hi);
			if (lo >= hi)
				continue;
			pass = qbits_fit(&q->arena, &passb, hi - lo, 1);
			anc = qbits_fit(&q->arena, &ancb, hi - lo, 1);
			int rc = qsel_eval(q, &global, c, lo, hi, pass);
			if (rc)
				return rc;
			if (anchor_here && (rc = qsel_eval(q, &p->anchor, c, lo, hi, anc)))
				return rc;
			for (size_t i = 0; i < hi - lo; i++) {
				if (!qbit(pass, i))
					continue;
				uint32_t person;
				if (qperson(q, c->pid[lo + i], &person))
					return qerr_pid(q, c->pid[lo + i]);
				struct pentry *e = qvec_push(&q->arena, out);
				e->ts = c->ts[lo + i];
				e->who = person;
				e->name =
				    (uint32_t)ni | (anchor_here && qbit(anc, i) ? P_ANCHOR : 0);
			}
		}
	}
	qa_big_free(&q->arena, pass);
	qa_big_free(&q->arena, anc);
	return 0;
}

/* (time, name, anchor first) */
static bool entry_less(const struct pentry *a, const struct pentry *b)
{
	if (a->ts != b->ts)
		return a->ts < b->ts;
	uint32_t na = a->name & ~P_ANCHOR, nb = b->name & ~P_ANCHOR;
	if (na != nb)
		return na < nb;
	return (a->name & P_ANCHOR) > (b->name & P_ANCHOR);
}

static int cmp_entry(const void *a, const void *b)
{
	const struct pentry *x = a, *y = b;
	return entry_less(x, y) ? -1 : entry_less(y, x) ? 1 : 0;
}

static void sort_person(struct pentry *e, size_t n)
{
	if (n > 32) {
		q_qsort(e, n, sizeof(*e), cmp_entry);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		struct pentry x = e[i];
		size_t j = i;
		while (j > 0 && entry_less(&x, &e[j - 1])) {
			e[j] = e[j - 1];
			j--;
		}
		e[j] = x;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

struct ptrans {
	uint32_t from, to;
	uint64_t count;
};

/* count descending, then from and to in byte order (ranks follow it) */
static int cmp_trans(const void *a, const void *b)
{
	const struct ptrans *x = a, *y = b;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	return (x->to > y->to) - (x->to < y->to);
}

int query_paths(struct qctx *q)
{
	struct paths *p = qa_calloc(&q->arena, 1, sizeof(*p));
	int rc = parse(q, p);
	if (rc)
		return rc;
	struct qvec ev;
	qvec_init(&ev, sizeof(struct pentry));
	if ((rc = gather(q, p, &ev)))
		return rc;
	size_t n = ev.n;
	uint32_t *who = qa_big_realloc(&q->arena, NULL, (n ? n : 1) * sizeof(uint32_t));
	const struct pentry *in = ev.p;
	for (size_t i = 0; i < n; i++)
		who[i] = in[i].who;
	uint32_t *start;
	uint32_t *perm = q_by_key(q, who, n, q->src->npersons, &start);
	qa_big_free(&q->arena, who);
	struct pentry *by = qa_big_realloc(&q->arena, NULL, (n ? n : 1) * sizeof(*by));
	for (size_t i = 0; i < n; i++)
		by[i] = in[perm[i]];
	qa_big_free(&q->arena, perm);
	qa_big_free(&q->arena, ev.p);

	struct qvec keys; /* depth << 42 | from << 21 | to */
	qvec_init(&keys, sizeof(uint64_t));
	uint64_t sessions = 0;
	uint64_t reach[QUERY_MAX_PATH_DEPTH + 1] = {0};
	for (size_t person = 0; person < q->src->npersons; person++) {
		size_t a = start[person], b = start[person + 1];
		if (a == b)
			continue;
		struct pentry *e = by + a;
		size_t m = b - a;
		sort_person(e, m);
		/* sessions as session.c cuts them, by inactivity alone */
		struct qsession ss;
		qsession_init(&ss, p->gap);
		qsession_next(&ss, e[0].ts, QSESSION_NO_CAMPAIGN);
		for (size_t s = 0; s < m;) {
			size_t end = s + 1;
			while (end < m && !qsession_next(&ss, e[end].ts, QSESSION_NO_CAMPAIGN))
				end++;
			size_t at = s;
			while (at < end && !(e[at].name & P_ANCHOR))
				at++;
			if (at < end) {
				sessions++;
				for (int64_t d = 1; d <= p->depth; d++) {
					size_t x, y; /* from, to */
					if (p->before) {
						if (at < s + (size_t)d)
							break;
						x = at - (size_t)d;
						y = x + 1;
					} else {
						if (at + (size_t)d >= end)
							break;
						y = at + (size_t)d;
						x = y - 1;
					}
					reach[d]++;
					uint64_t k = (uint64_t)d << (2 * P_NAME_BITS) |
						     (uint64_t)(e[x].name & ~P_ANCHOR)
							 << P_NAME_BITS |
						     (e[y].name & ~P_ANCHOR);
					*(uint64_t *)qvec_push(&q->arena, &keys) = k;
				}
			}
			s = end;
		}
	}
	qa_big_free(&q->arena, start);
	qa_big_free(&q->arena, by);

	uint64_t *kv = keys.p;
	q_qsort(kv, keys.n, sizeof(*kv), cmp_u64);
	qo_printf(q, "{\"kind\":\"paths\",\"direction\":\"%s\",\"anchor\":",
		  p->before ? "before" : "after");
	qo_str(q, p->anchor.event);
	qo_printf(q, ",\"session_gap_ms\":%lld,\"sessions\":%llu,\"depths\":[", (long long)p->gap,
		  (unsigned long long)sessions);
	struct ptrans *tr = qa_big_realloc(&q->arena, NULL, (keys.n ? keys.n : 1) * sizeof(*tr));
	size_t i = 0;
	for (int64_t d = 1; d <= p->depth; d++) {
		size_t nt = 0;
		while (i < keys.n && (int64_t)(kv[i] >> (2 * P_NAME_BITS)) == d) {
			size_t j = i;
			while (j < keys.n && kv[j] == kv[i])
				j++;
			uint32_t mask = (1u << P_NAME_BITS) - 1;
			tr[nt].from = (uint32_t)(kv[i] >> P_NAME_BITS) & mask;
			tr[nt].to = (uint32_t)kv[i] & mask;
			tr[nt++].count = j - i;
			i = j;
		}
		q_qsort(tr, nt, sizeof(*tr), cmp_trans);
		qo_printf(q, "%s{\"depth\":%lld,\"sessions\":%llu,\"transitions\":[",
			  d > 1 ? "," : "", (long long)d, (unsigned long long)reach[d]);
		for (size_t k = 0; k < nt && k < (size_t)p->limit; k++) {
			qo_raw(q, k ? ",{\"from\":" : "{\"from\":");
			qo_str(q, p->names[tr[k].from]);
			qo_raw(q, ",\"to\":");
			qo_str(q, p->names[tr[k].to]);
			qo_printf(q, ",\"count\":%llu}", (unsigned long long)tr[k].count);
		}
		qo_raw(q, "]}");
	}
	qo_raw(q, "]}");
	return 0;
}
