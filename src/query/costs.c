/*
 * costs.c - advertising costs for a query: the rows of the days its range
 * touches, fetched once from the source's cost callback and copied into
 * the query's arena, refused when they mix currencies (money in different
 * currencies does not add up; docs/attribution.md, "Costs").
 */
#include "query/query_int.h"

#include <stdio.h>
#include <string.h>

/* The local day (YYYY-MM-DD) of instant t in the query's zone. */
static void local_day(const struct qctx *q, int64_t t, char *out)
{
	char buf[Q_LOCAL_LEN];
	q_format_local(t + query_tz_offset(&q->tz, t, NULL, NULL), buf);
	memcpy(out, buf, 10);
	out[10] = '\0';
}

int qcosts_load(struct qctx *q, const char *field, int64_t from, int64_t to, struct qcosts *c)
{
	memset(c, 0, sizeof(*c));
	const struct query_costs *qc = q->src->costs;
	if (!qc || !qc->load)
		return 0;
	char first[11], last[11], err[512];
	local_day(q, from, first);
	local_day(q, to - 1, last);
	struct query_cost *rows = NULL;
	size_t n = 0;
	err[0] = '\0';
	int rc = qc->load(qc->ctx, first, last, &rows, &n, err, sizeof(err));
	if (rc)
		return qerr_code(q, rc, "%s: cannot read the costs: %s", field, err);
	c->loaded = true;
	c->rows = qa_alloc(&q->arena, (n ? n : 1) * sizeof(*c->rows));
	const char *other = NULL;
	for (size_t i = 0; i < n; i++) {
		struct query_cost *r = &c->rows[i];
		*r = rows[i];
		r->source = qa_strdup(&q->arena, rows[i].source ? rows[i].source : "");
		r->medium = qa_strdup(&q->arena, rows[i].medium ? rows[i].medium : "");
		r->campaign = qa_strdup(&q->arena, rows[i].campaign ? rows[i].campaign : "");
		r->currency = qa_strdup(&q->arena, rows[i].currency ? rows[i].currency : "");
		if (!c->currency)
			c->currency = r->currency;
		else if (strcmp(c->currency, r->currency) != 0 && !other)
			other = r->currency;
	}
	c->n = n;
	if (qc->release)
		qc->release(qc->ctx, rows, n);
	if (other)
		return qerr(
		    q,
		    "%s: the costs from %s to %s are in more than one currency (%s and %s); "
		    "money in different currencies does not add up: import the costs "
		    "converted to one currency, or query a range whose costs use one",
		    field, first, last, c->currency, other);
	return 0;
}

bool qcost_path(const char *path)
{
	static const struct query_cost none = {.campaign = "", .source = "", .medium = ""};
	return qcost_value(&none, path) || strcmp(path, QUERY_CHANNEL_PATH) == 0;
}

const char *qcost_value(const struct query_cost *r, const char *path)
{
	if (strcmp(path, "enriched.campaign.name") == 0)
		return r->campaign;
	if (strcmp(path, "enriched.campaign.source") == 0)
		return r->source;
	if (strcmp(path, "enriched.campaign.medium") == 0)
		return r->medium;
	return NULL;
}

void qchannels_init(struct qchannels *c)
{
	memset(c, 0, sizeof(*c));
	qintern_init(&c->triples);
	qintern_init(&c->pairs);
}

void qchannels_add(struct qctx *q, struct qchannels *c, const char *source, const char *medium,
		   const char *channel, uint64_t weight)
{
	char *k = qa_printf(&q->arena, "%s\x1f%s\x1f%s", source ? source : "", medium ? medium : "",
			    channel);
	uint32_t id = qintern_get(&q->arena, &c->triples, k);
	if (id >= c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		while (cap <= id)
			cap *= 2;
		c->weight = qa_big_realloc(&q->arena, c->weight, cap * sizeof(uint64_t));
		memset(c->weight + c->cap, 0, (cap - c->cap) * sizeof(uint64_t));
		c->cap = cap;
	}
	c->weight[id] += weight;
}

const char *qchannels_of(struct qctx *q, struct qchannels *c, const char *source,
			 const char *medium)
{
	if (!c->ready) {
		size_t n = c->triples.n;
		c->channel = qa_calloc(&q->arena, n + 1, sizeof(*c->channel));
		uint64_t *best = qa_calloc(&q->arena, n + 1, sizeof(uint64_t));
		for (size_t i = 0; i < n; i++) {
			const char *k = c->triples.str[i], *ch = strrchr(k, '\x1f') + 1;
			char *pair = qa_strndup(&q->arena, k, (size_t)(ch - 1 - k));
			uint32_t p = qintern_get(&q->arena, &c->pairs, pair);
			if (!c->channel[p] || c->weight[i] > best[p] ||
			    (c->weight[i] == best[p] && strcmp(ch, c->channel[p]) < 0)) {
				c->channel[p] = ch;
				best[p] = c->weight[i];
			}
		}
		c->npairs = c->pairs.n;
		c->ready = true;
	}
	/* a pair the data does not have is interned too (after npairs): it
	 * has no channel, however often it is asked for */
	char *k = qa_printf(&q->arena, "%s\x1f%s", source, medium);
	uint32_t p = qintern_get(&q->arena, &c->pairs, k);
	return p < c->npairs ? c->channel[p] : NULL;
}

/* Adds a run of count rows with the same ids (id + 1 into t; 0 = unset). */
static void add_run(struct qctx *q, struct qchannels *c, const struct qintern *t,
		    const int32_t *ids, uint64_t count)
{
	if (!count || ids[2] < 0 || (ids[0] < 0 && ids[1] < 0))
		return;
	qchannels_add(q, c, ids[0] < 0 ? NULL : t->str[ids[0]], ids[1] < 0 ? NULL : t->str[ids[1]],
		      t->str[ids[2]], count);
}

int qchannels_scan(struct qctx *q, int64_t from, int64_t to, struct qchannels *c)
{
	static const char *const paths[3] = {"enriched.campaign.source", "enriched.campaign.medium",
					     QUERY_CHANNEL_PATH};
	qchannels_init(c);
	struct qintern strs;
	qintern_init(&strs);
	struct qsel global = {.field = "filters", .event = "", .f = q->global, .nf = q->nglobal};
	struct qbits passb = {0};
	const struct query_chunk *chunks;
	size_t nchunks = q->src->chunks(q->src->ctx, "", &chunks);
	for (size_t ci = 0; ci < nchunks; ci++) {
		const struct query_chunk *ch = &chunks[ci];
		size_t lo, hi;
		qchunk_span(ch, from, to, &lo, &hi);
		if (lo >= hi)
			continue;
		uint64_t *pass = qbits_fit(&q->arena, &passb, hi - lo, 1);
		int rc = qsel_eval(q, &global, ch, lo, hi, pass);
		struct qbdcol cols[3];
		for (int k = 0; !rc && k < 3; k++)
			rc = qbdcol_open(q, &strs, paths[k], ch, &cols[k]);
		if (rc)
			return rc;
		if (cols[2].found) {
			int32_t run[3] = {-1, -1, -1};
			uint64_t n = 0;
			for (size_t i = lo; i < hi; i++) {
				if (!qbit(pass, i - lo))
					continue;
				int32_t ids[3];
				for (int k = 0; k < 3; k++)
					ids[k] = qbdcol_get(q, &strs, &cols[k], i);
				if (memcmp(ids, run, sizeof(ids)) != 0) {
					add_run(q, c, &strs, run, n);
					memcpy(run, ids, sizeof(ids));
					n = 0;
				}
				n++;
			}
			add_run(q, c, &strs, run, n);
		}
		for (int k = 0; k < 3; k++)
			qbdcol_close(q, &cols[k]);
	}
	qa_big_free(&q->arena, passb.w);
	return 0;
}
