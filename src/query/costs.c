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

int qcosts_load(struct qctx *q, const char *field, struct qcosts *c)
{
	memset(c, 0, sizeof(*c));
	const struct query_costs *qc = q->src->costs;
	if (!qc || !qc->load)
		return 0;
	char first[11], last[11], err[512];
	local_day(q, q->range.from, first);
	local_day(q, q->range.to - 1, last);
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
