/*
 * query.c - query_run(): parses the query document, sets up the context
 * (time zone, date range, global filters) and hands over to the kind.
 */
#include "query/query_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define QUERY_MAX_JSON (1 << 20)

int qerr(struct qctx *q, const char *fmt, ...)
{
	if (q->errcap) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(q->err, q->errcap, fmt, ap);
		va_end(ap);
	}
	return TD_EINVAL;
}

int qerr_code(struct qctx *q, int code, const char *fmt, ...)
{
	if (q->errcap) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(q->err, q->errcap, fmt, ap);
		va_end(ap);
	}
	return code;
}

int qerr_nomem(struct qctx *q)
{
	if (q->arena.limit)
		return qerr_code(q, TD_ENOMEM,
				 "query: needs more than its memory limit of %zu bytes "
				 "(narrow the date range or the events)",
				 q->arena.limit);
	return qerr_code(q, TD_ENOMEM, "query: not enough memory to run this query");
}

int qerr_pid(struct qctx *q, uint32_t pid)
{
	return qerr_code(q, TD_ECORRUPT,
			 "store: person id %u is out of range (npersons %u, or its canonical id "
			 "is)",
			 pid, q->src->npersons);
}

void qo_raw(struct qctx *q, const char *s)
{
	if (!q->out_err)
		q->out_err = td_buf_append(q->out, s, strlen(s));
}

void qo_printf(struct qctx *q, const char *fmt, ...)
{
	if (q->out_err)
		return;
	va_list ap;
	va_start(ap, fmt);
	q->out_err = td_buf_vprintf(q->out, fmt, ap);
	va_end(ap);
}

void qo_str(struct qctx *q, const char *s)
{
	if (q->out_err)
		return;
	q->out_err = s ? td_buf_json_str(q->out, s) : td_buf_append(q->out, "null", 4);
}

void qo_num(struct qctx *q, double v)
{
	if (!isfinite(v)) {
		qo_raw(q, "null");
		return;
	}
	char buf[40];
	q_format_number(v, buf, sizeof(buf));
	qo_raw(q, buf);
}

void qo_int(struct qctx *q, int64_t v)
{
	qo_printf(q, "%lld", (long long)v);
}

/* Bots are kept but left out of analytics unless the query says
 * "include_bots": true: a global filter enriched.ua.bot != true, added only
 * when some stored row has the property (without it there is nothing to
 * leave out, and a filter on a property nothing has would be refused). */
static int exclude_bots(struct qctx *q)
{
	bool include = false;
	int rc = qj_bool(q, q->root, "include_bots", "", &include);
	if (rc || include)
		return rc;
	struct query_column col;
	bool found;
	if ((rc = qprop_find(q, "", QUERY_BOT_PATH, &col, &found)))
		return rc;
	if (!found || col.kind != QCOL_BOOL)
		return 0;
	if (q->nglobal >= QUERY_MAX_FILTERS)
		return qerr(q,
			    "filters: at most %d filters, the one that leaves bots out included "
			    "(\"include_bots\": true drops it)",
			    QUERY_MAX_FILTERS - 1);
	struct qfilter *g = qa_alloc(&q->arena, (q->nglobal + 1) * sizeof(*g));
	if (q->nglobal)
		memcpy(g, q->global, q->nglobal * sizeof(*g));
	struct qfilter *f = &g[q->nglobal];
	memset(f, 0, sizeof(*f));
	f->field = "include_bots";
	f->path = QUERY_BOT_PATH;
	f->op = QOP_NE;
	f->vkind = QV_BOOL;
	f->nv = 1;
	f->bv = qa_alloc(&q->arena, 1);
	f->bv[0] = 1;
	q->global = g;
	q->nglobal++;
	return 0;
}

const char *const query_kinds[] = {"trends", "funnel",	    "retention", "paths",
				   "events", "attribution", NULL};

static int run(struct qctx *q)
{
	const char *const *kinds = query_kinds;
	const cJSON *jk = cJSON_GetObjectItemCaseSensitive(q->root, "kind");
	if (!jk)
		return qerr(q, "kind: required (one of: \"trends\", \"funnel\", \"retention\", "
			       "\"paths\", \"events\", \"attribution\")");
	int kind = -1;
	int rc = qj_enum(q, q->root, "kind", "", kinds, &kind);
	if (rc)
		return rc;
	if (q->src->event_names)
		q->nnames = q->src->event_names(q->src->ctx, &q->names);
	rc = qfilters_parse(q, cJSON_GetObjectItemCaseSensitive(q->root, "filters"), "filters",
			    &q->global, &q->nglobal);
	if (rc)
		return rc;
	for (size_t i = 0; i < q->nglobal; i++) {
		char *pf = qa_printf(&q->arena, "%s.property", q->global[i].field);
		if ((rc = qsel_check_property(q, "", q->global[i].path, pf, &q->global[i])))
			return rc;
	}
	if ((rc = exclude_bots(q)))
		return rc;
	switch (kind) {
	case 0:
		return query_trends(q);
	case 1:
		return query_funnel(q);
	case 2:
		return query_retention(q);
	case 3:
		return query_paths(q);
	case 5:
		return query_attribution(q);
	default:
		return query_events(q);
	}
}

/* Every allocation of the query comes from the arena; when it runs out it
 * jumps back here. The context lives in the caller's frame, so nothing that
 * setjmp() would leave indeterminate is read after the jump. */
static int run_guarded(struct qctx *q)
{
	if (setjmp(q->oom))
		return qerr_nomem(q);
	return run(q);
}

int query_run(const char *json, size_t len, const struct query_source *src, struct td_buf *out_json,
	      char *err, size_t errcap)
{
	return query_run_limited(json, len, src, NULL, out_json, err, errcap);
}

int query_run_limited(const char *json, size_t len, const struct query_source *src,
		      const struct query_limits *limits, struct td_buf *out_json, char *err,
		      size_t errcap)
{
	struct qctx ctx;
	struct qctx *q = &ctx;
	memset(q, 0, sizeof(*q));
	q->src = src;
	q->err = err;
	q->errcap = errcap;
	q->out = out_json;
	if (errcap)
		err[0] = '\0';
	size_t start_len = out_json->len;
	int rc;
	if (len > QUERY_MAX_JSON)
		return qerr_code(q, TD_ETOOLARGE, "query: longer than %d bytes", QUERY_MAX_JSON);
	const char *end = NULL;
	q->root = cJSON_ParseWithLengthOpts(json, len, &end, false);
	if (!q->root) {
		size_t at = end && end >= json ? (size_t)(end - json) : 0;
		return qerr(q, "query: not valid JSON (at byte %zu)", at);
	}
	while (end && (size_t)(end - json) < len &&
	       (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
		end++;
	if (end && (size_t)(end - json) < len && *end) {
		rc = qerr(q, "query: unexpected text after the JSON document (at byte %zu)",
			  (size_t)(end - json));
		goto out;
	}
	if (!cJSON_IsObject(q->root)) {
		rc = qerr(q, "query: must be a JSON object");
		goto out;
	}
	qa_init(&q->arena, &q->oom);
	q->arena.limit = limits ? limits->max_memory : 0;
	unsigned threads = limits ? limits->threads : 0;
	q->threads_auto = threads == 0;
	q->nthreads = threads ? TD_MIN(threads, QUERY_MAX_THREADS) : qpar_cores();
	rc = run_guarded(q);
	if (!rc && q->out_err) {
		rc = q->out_err;
		if (rc == TD_ETOOLARGE)
			qerr_code(q, rc, "query: the result is larger than %zu bytes",
				  out_json->max);
		else
			qerr_code(q, rc, "query: cannot build the result: %s", td_strerror(rc));
	}
	qa_release(&q->arena);
out:
	cJSON_Delete(q->root);
	if (rc) {
		out_json->len = start_len;
		if (out_json->data)
			out_json->data[start_len] = '\0';
	}
	return rc;
}
