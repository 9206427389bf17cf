/*
 * filter.c - property filters: compiling them from the query, checking them
 * against what the source holds, and evaluating them over chunk rows.
 *
 * Comparisons are typed: a filter value must have the type of the column it
 * is compared with (strings with strings, numbers with numbers, booleans
 * with booleans), otherwise the query fails naming the property. String
 * conditions are evaluated once per dictionary entry, then looked up per row.
 */
#include "query/query_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QF_MAX_VALUES 1000
#define QF_MAX_PATH   255

static const char *const op_names[] = {
    [QOP_EQ] = "=",
    [QOP_NE] = "!=",
    [QOP_IN] = "in",
    [QOP_NOT_IN] = "not_in",
    [QOP_CONTAINS] = "contains",
    [QOP_GT] = ">",
    [QOP_GE] = ">=",
    [QOP_LT] = "<",
    [QOP_LE] = "<=",
    [QOP_IS_SET] = "is_set",
    [QOP_IS_NOT_SET] = "is_not_set",
};

/* Operators that match rows without the property. */
static bool op_negative(enum qop op)
{
	return op == QOP_NE || op == QOP_NOT_IN || op == QOP_IS_NOT_SET;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static enum qvkind value_kind(const cJSON *v)
{
	if (cJSON_IsString(v))
		return QV_STRING;
	if (cJSON_IsNumber(v))
		return QV_NUMBER;
	if (cJSON_IsBool(v))
		return QV_BOOL;
	return QV_NONE;
}

static const char *kind_plural(int k)
{
	switch (k) {
	case QCOL_STRING:
		return "strings";
	case QCOL_NUMBER:
		return "numbers";
	default:
		return "booleans";
	}
}

static const char *vkind_name(enum qvkind k)
{
	switch (k) {
	case QV_STRING:
		return "a string";
	case QV_NUMBER:
		return "a number";
	case QV_BOOL:
		return "a boolean";
	default:
		return "nothing";
	}
}

static int parse_one(struct qctx *q, const cJSON *jf, const char *field, struct qfilter *f)
{
	static const char *const keys[] = {"property", "operator", "value", NULL};
	int rc = qj_keys(q, jf, field, keys);
	if (rc)
		return rc;
	memset(f, 0, sizeof(*f));
	f->field = field;
	const char *path = NULL, *op = NULL;
	if ((rc = qj_string(q, jf, "property", field, &path)) ||
	    (rc = qj_string(q, jf, "operator", field, &op)))
		return rc;
	if (!path || !*path)
		return qerr(q,
			    "%s.property: required (a property path such as "
			    "\"properties.plan\")",
			    field);
	if (strlen(path) > QF_MAX_PATH)
		return qerr(q, "%s.property: longer than %d bytes", field, QF_MAX_PATH);
	if (!op)
		return qerr(q, "%s.operator: required", field);
	f->path = path;
	int found = -1;
	for (size_t i = 0; i < TD_ARRAY_LEN(op_names); i++)
		if (strcmp(op_names[i], op) == 0)
			found = (int)i;
	if (found < 0)
		return qerr(q,
			    "%s.operator: bad operator \"%.20s\" (expected one of: =, !=, in, "
			    "not_in, contains, >, >=, <, <=, is_set, is_not_set)",
			    field, op);
	f->op = (enum qop)found;
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(jf, "value");
	if (f->op == QOP_IS_SET || f->op == QOP_IS_NOT_SET) {
		if (v)
			return qerr(q, "%s.value: not used with %s", field, op);
		f->vkind = QV_NONE;
		return 0;
	}
	if (!v)
		return qerr(q, "%s.value: required with %s", field, op);
	if (cJSON_IsNull(v))
		return qerr(q,
			    "%s.value: null is not a value (is_not_set matches rows "
			    "without the property)",
			    field);
	if (f->op == QOP_IN || f->op == QOP_NOT_IN) {
		if (!cJSON_IsArray(v))
			return qerr(q, "%s.value: %s takes an array of values", field, op);
		int n = cJSON_GetArraySize(v);
		if (n == 0 || n > QF_MAX_VALUES)
			return qerr(q, "%s.value: %s takes 1 to %d values", field, op,
				    QF_MAX_VALUES);
		f->vkind = value_kind(v->child);
		const cJSON *it;
		cJSON_ArrayForEach(it, v)
		{
			enum qvkind k = value_kind(it);
			if (k == QV_NONE)
				return qerr(q,
					    "%s.value: values must be strings, numbers or "
					    "booleans",
					    field);
			if (k != f->vkind)
				return qerr(q,
					    "%s.value: values must all have one type (%s and %s "
					    "are mixed)",
					    field, vkind_name(f->vkind), vkind_name(k));
		}
		f->nv = (size_t)n;
	} else {
		f->vkind = value_kind(v);
		if (f->vkind == QV_NONE)
			return qerr(q, "%s.value: must be a string, a number or a boolean", field);
		if (f->op == QOP_CONTAINS && f->vkind != QV_STRING)
			return qerr(q, "%s.value: contains takes a string, not %s", field,
				    vkind_name(f->vkind));
		if (f->op >= QOP_GT && f->op <= QOP_LE && f->vkind == QV_BOOL)
			return qerr(q, "%s.value: %s compares numbers or strings, not booleans",
				    field, op);
		f->nv = 1;
	}
	size_t i = 0;
	const cJSON *it = cJSON_IsArray(v) ? v->child : v;
	if (f->vkind == QV_STRING)
		f->sv = qa_alloc(&q->arena, f->nv * sizeof(*f->sv));
	else if (f->vkind == QV_NUMBER)
		f->dv = qa_alloc(&q->arena, f->nv * sizeof(*f->dv));
	else
		f->bv = qa_alloc(&q->arena, f->nv);
	for (; i < f->nv; i++, it = it->next) {
		if (f->vkind == QV_STRING)
			f->sv[i] = it->valuestring;
		else if (f->vkind == QV_NUMBER)
			f->dv[i] = it->valuedouble;
		else
			f->bv[i] = cJSON_IsTrue(it);
	}
	if (f->vkind == QV_STRING)
		q_qsort(f->sv, f->nv, sizeof(*f->sv), cmp_str);
	else if (f->vkind == QV_NUMBER)
		q_qsort(f->dv, f->nv, sizeof(*f->dv), cmp_dbl);
	return 0;
}

int qfilters_parse(struct qctx *q, const cJSON *arr, const char *field, struct qfilter **out,
		   size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!arr)
		return 0;
	if (!cJSON_IsArray(arr))
		return qerr(q, "%s: must be an array of filters", field);
	int count = cJSON_GetArraySize(arr);
	if (count > QUERY_MAX_FILTERS)
		return qerr(q, "%s: at most %d filters", field, QUERY_MAX_FILTERS);
	struct qfilter *f = qa_alloc(&q->arena, (size_t)(count ? count : 1) * sizeof(*f));
	int i = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, arr)
	{
		char *ff = qa_printf(&q->arena, "%s[%d]", field, i);
		int rc = parse_one(q, it, ff, &f[i]);
		if (rc)
			return rc;
		i++;
	}
	*out = f;
	*n = (size_t)count;
	return 0;
}

bool q_event_exists(const struct qctx *q, const char *name)
{
	for (size_t i = 0; i < q->nnames; i++)
		if (strcmp(q->names[i], name) == 0)
			return true;
	return false;
}

/* Fails unless the filter's value type fits a column of kind k. */
static int check_kind(struct qctx *q, const struct qfilter *f, int k)
{
	if (f->vkind == QV_NONE)
		return 0;
	if (f->op == QOP_CONTAINS && k != QCOL_STRING)
		return qerr(q, "%s: contains needs a string property, but \"%s\" holds %s",
			    f->field, f->path, kind_plural(k));
	static const int want[] = {
	    [QV_STRING] = QCOL_STRING, [QV_NUMBER] = QCOL_NUMBER, [QV_BOOL] = QCOL_BOOL};
	if (want[f->vkind] != k) {
		char shown[80];
		if (f->vkind == QV_STRING)
			snprintf(shown, sizeof(shown), "the string \"%.40s\"", f->sv[0]);
		else if (f->vkind == QV_NUMBER)
			snprintf(shown, sizeof(shown), "the number %g", f->dv[0]);
		else
			snprintf(shown, sizeof(shown), "the boolean %s",
				 f->bv[0] ? "true" : "false");
		return qerr(q, "%s: property \"%s\" holds %s; it cannot be compared with %s",
			    f->field, f->path, kind_plural(k), shown);
	}
	return 0;
}

static int column_error(struct qctx *q, int rc, const char *path)
{
	return qerr_code(q, rc, "store: reading property \"%s\" failed: %s", path, td_strerror(rc));
}

int qprop_find(struct qctx *q, const char *event, const char *path, struct query_column *col,
	       bool *found)
{
	const struct query_chunk *chunks;
	size_t n = q->src->chunks(q->src->ctx, event, &chunks);
	*found = false;
	for (size_t i = 0; i < n; i++) {
		int rc = chunks[i].column(&chunks[i], path, col);
		if (rc == TD_ENOTFOUND)
			continue;
		if (rc)
			return column_error(q, rc, path);
		*found = true;
		return 0;
	}
	return 0;
}

int qsel_check_property(struct qctx *q, const char *event, const char *path, const char *field,
			const struct qfilter *f)
{
	struct query_column col;
	bool found;
	int rc = qprop_find(q, event, path, &col, &found);
	if (rc)
		return rc;
	if (found)
		return f ? check_kind(q, f, (int)col.kind) : 0;
	if (!strncmp(path, "person.", 7))
		return qerr(q, "%s: unknown person trait \"%s\" (no identify call sets traits.%s)",
			    field, path + 7, path + 7);
	if (!*event)
		return qerr(q, "%s: unknown property \"%s\" (no event has it)", field, path);
	return qerr(q, "%s: unknown property \"%s\" (no \"%s\" event has it)", field, path, event);
}

int qsel_parse(struct qctx *q, const cJSON *obj, const char *field, const char *const *extra_keys,
	       bool event_required, struct qsel *sel)
{
	const char *keys[16];
	size_t nk = 0;
	keys[nk++] = "event";
	keys[nk++] = "filters";
	for (size_t i = 0; extra_keys && extra_keys[i] && nk < TD_ARRAY_LEN(keys) - 1; i++)
		keys[nk++] = extra_keys[i];
	keys[nk] = NULL;
	int rc = qj_keys(q, obj, field, keys);
	if (rc)
		return rc;
	sel->field = field;
	sel->event = NULL;
	if ((rc = qj_string(q, obj, "event", field, &sel->event)))
		return rc;
	if (!sel->event) {
		if (event_required)
			return qerr(q,
				    "%s.event: required (an event name, or \"\" for every "
				    "event)",
				    field);
		sel->event = "";
	}
	if (*sel->event && !q_event_exists(q, sel->event))
		return qerr(q, "%s.event: unknown event \"%.100s\"", field, sel->event);
	struct qfilter *own;
	size_t nown;
	char *ff = qa_printf(&q->arena, "%s.filters", field);
	rc = qfilters_parse(q, cJSON_GetObjectItemCaseSensitive(obj, "filters"), ff, &own, &nown);
	if (rc)
		return rc;
	if (nown + q->nglobal > QUERY_MAX_FILTERS)
		return qerr(q, "%s: at most %d filters, global ones included", ff,
			    QUERY_MAX_FILTERS);
	sel->nf = q->nglobal + nown;
	sel->f = qa_alloc(&q->arena, (sel->nf ? sel->nf : 1) * sizeof(*sel->f));
	if (q->nglobal)
		memcpy(sel->f, q->global, q->nglobal * sizeof(*sel->f));
	if (nown)
		memcpy(sel->f + q->nglobal, own, nown * sizeof(*sel->f));
	for (size_t i = 0; i < nown; i++) {
		char *pf = qa_printf(&q->arena, "%s.property", own[i].field);
		if ((rc = qsel_check_property(q, sel->event, own[i].path, pf, &own[i])))
			return rc;
	}
	return 0;
}

void qchunk_span(const struct query_chunk *c, int64_t from, int64_t to, size_t *lo, size_t *hi)
{
	size_t l = 0, r = c->n;
	while (l < r) {
		size_t m = l + (r - l) / 2;
		if (c->ts[m] < from)
			l = m + 1;
		else
			r = m;
	}
	*lo = l;
	r = c->n;
	while (l < r) {
		size_t m = l + (r - l) / 2;
		if (c->ts[m] < to)
			l = m + 1;
		else
			r = m;
	}
	*hi = l;
}

void qchunk_range(const struct qctx *q, const struct query_chunk *c, size_t *lo, size_t *hi)
{
	if (!q->range.set) {
		*lo = 0;
		*hi = c->n;
		return;
	}
	qchunk_span(c, q->range.from, q->range.to, lo, hi);
}

static bool in_sorted_str(const struct qfilter *f, const char *s)
{
	return bsearch(&s, f->sv, f->nv, sizeof(*f->sv), cmp_str) != NULL;
}

static bool in_sorted_dbl(const struct qfilter *f, double x)
{
	return bsearch(&x, f->dv, f->nv, sizeof(*f->dv), cmp_dbl) != NULL;
}

static bool match_str(const struct qfilter *f, const char *s)
{
	switch (f->op) {
	case QOP_EQ:
		return strcmp(s, f->sv[0]) == 0;
	case QOP_NE:
		return strcmp(s, f->sv[0]) != 0;
	case QOP_IN:
		return in_sorted_str(f, s);
	case QOP_NOT_IN:
		return !in_sorted_str(f, s);
	case QOP_CONTAINS:
		return strstr(s, f->sv[0]) != NULL;
	case QOP_GT:
		return strcmp(s, f->sv[0]) > 0;
	case QOP_GE:
		return strcmp(s, f->sv[0]) >= 0;
	case QOP_LT:
		return strcmp(s, f->sv[0]) < 0;
	case QOP_LE:
		return strcmp(s, f->sv[0]) <= 0;
	default:
		return true;
	}
}

static bool match_num(const struct qfilter *f, double x)
{
	switch (f->op) {
	case QOP_EQ:
		return x == f->dv[0];
	case QOP_NE:
		return x != f->dv[0];
	case QOP_IN:
		return in_sorted_dbl(f, x);
	case QOP_NOT_IN:
		return !in_sorted_dbl(f, x);
	case QOP_GT:
		return x > f->dv[0];
	case QOP_GE:
		return x >= f->dv[0];
	case QOP_LT:
		return x < f->dv[0];
	case QOP_LE:
		return x <= f->dv[0];
	default:
		return true;
	}
}

static bool match_bool(const struct qfilter *f, uint8_t b)
{
	bool any = false;
	for (size_t i = 0; i < f->nv; i++)
		any |= (f->bv[i] != 0) == (b != 0);
	switch (f->op) {
	case QOP_EQ:
	case QOP_IN:
		return any;
	case QOP_NE:
	case QOP_NOT_IN:
		return !any;
	default:
		return true;
	}
}

static uint8_t *scratch(struct qctx *q, size_t n)
{
	if (n > q->scratch_cap) {
		size_t cap = q->scratch_cap ? q->scratch_cap : 4096;
		while (cap < n)
			cap *= 2;
		q->scratch = qa_big_realloc(&q->arena, q->scratch, cap);
		q->scratch_cap = cap;
	}
	return q->scratch;
}

/* ANDs the result of filter f on rows [lo, hi) into pass. */
static int eval_one(struct qctx *q, const struct qfilter *f, const struct query_chunk *c, size_t lo,
		    size_t hi, uint64_t *pass)
{
	size_t n = hi - lo, nw = (n + 63) / 64;
	struct query_column col;
	int rc = c->column(c, f->path, &col);
	if (rc == TD_ENOTFOUND) {
		if (!op_negative(f->op))
			memset(pass, 0, nw * sizeof(*pass));
		return 0;
	}
	if (rc)
		return column_error(q, rc, f->path);
	if ((rc = check_kind(q, f, (int)col.kind)))
		return rc;
	bool missing = op_negative(f->op); /* what a row without a value gives */
	if (f->op == QOP_IS_SET || f->op == QOP_IS_NOT_SET) {
		if (!col.present)
			return f->op == QOP_IS_SET ? 0 : (memset(pass, 0, nw * sizeof(*pass)), 0);
		for (size_t i = 0; i < n; i++)
			if (qcol_has(&col, lo + i) != (f->op == QOP_IS_SET))
				pass[i >> 6] &= ~(1ULL << (i & 63));
		return 0;
	}
	if (col.kind == QCOL_STRING) {
		uint8_t *ok = scratch(q, col.ndict ? col.ndict : 1);
		for (size_t d = 0; d < col.ndict; d++)
			ok[d] = match_str(f, col.dict[d]);
		for (size_t i = 0; i < n; i++) {
			if (!qbit(pass, i))
				continue;
			bool m;
			if (!qcol_has(&col, lo + i))
				m = missing;
			else {
				uint32_t code = col.code[lo + i];
				m = code < col.ndict && ok[code];
			}
			if (!m)
				pass[i >> 6] &= ~(1ULL << (i & 63));
		}
	} else if (col.kind == QCOL_NUMBER) {
		for (size_t i = 0; i < n; i++) {
			if (!qbit(pass, i))
				continue;
			bool m = qcol_has(&col, lo + i) ? match_num(f, col.num[lo + i]) : missing;
			if (!m)
				pass[i >> 6] &= ~(1ULL << (i & 63));
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			if (!qbit(pass, i))
				continue;
			bool m =
			    qcol_has(&col, lo + i) ? match_bool(f, col.boolv[lo + i]) : missing;
			if (!m)
				pass[i >> 6] &= ~(1ULL << (i & 63));
		}
	}
	return 0;
}

int qsel_eval(struct qctx *q, const struct qsel *sel, const struct query_chunk *c, size_t lo,
	      size_t hi, uint64_t *pass)
{
	size_t n = hi - lo, nw = (n + 63) / 64;
	if (nw == 0)
		return 0;
	memset(pass, 0xff, nw * sizeof(*pass));
	if (n % 64)
		pass[nw - 1] = (1ULL << (n % 64)) - 1;
	for (size_t i = 0; i < sel->nf; i++) {
		int rc = eval_one(q, &sel->f[i], c, lo, hi, pass);
		if (rc)
			return rc;
	}
	return 0;
}

static bool filter_same(const struct qfilter *a, const struct qfilter *b)
{
	if (strcmp(a->path, b->path) != 0 || a->op != b->op || a->vkind != b->vkind ||
	    a->nv != b->nv)
		return false;
	for (size_t i = 0; i < a->nv; i++) {
		bool same = a->vkind == QV_STRING   ? strcmp(a->sv[i], b->sv[i]) == 0
			    : a->vkind == QV_NUMBER ? a->dv[i] == b->dv[i]
			    : a->vkind == QV_BOOL   ? a->bv[i] == b->bv[i]
						    : true;
		if (!same)
			return false;
	}
	return true;
}

bool qsel_same(const struct qsel *a, const struct qsel *b)
{
	if (strcmp(a->event, b->event) != 0 || a->nf != b->nf)
		return false;
	for (size_t i = 0; i < a->nf; i++)
		if (!filter_same(&a->f[i], &b->f[i]))
			return false;
	return true;
}

/* ---- filters outside a query (query.h: query_filters_*) ------------------ */

struct query_filters {
	struct qctx q; /* the arena and the error buffer only */
	cJSON *root;   /* the filters' strings point into it */
	struct qfilter *f;
	size_t n;
};

int query_filters_compile(const char *json, size_t len, const char *field,
			  struct query_filters **out, char *err, size_t errcap)
{
	*out = NULL;
	if (errcap)
		err[0] = '\0';
	struct query_filters *qf = td_calloc(1, sizeof(*qf));
	struct qctx *q = &qf->q;
	q->err = err;
	q->errcap = errcap;
	qa_init(&q->arena, &q->oom);
	int rc;
	qf->root = cJSON_ParseWithLength(json, len);
	if (!qf->root) {
		rc = qerr(q, "%s: not valid JSON", field);
	} else if (setjmp(q->oom)) {
		rc = qerr_code(q, TD_ENOMEM, "%s: out of memory", field);
	} else {
		rc = qfilters_parse(q, qf->root, field, &qf->f, &qf->n);
	}
	if (rc) {
		query_filters_free(qf);
		return rc;
	}
	q->err = NULL;
	q->errcap = 0;
	*out = qf;
	return 0;
}

void query_filters_free(struct query_filters *qf)
{
	if (!qf)
		return;
	qa_release(&qf->q.arena);
	cJSON_Delete(qf->root);
	free(qf);
}

size_t query_filters_count(const struct query_filters *qf)
{
	return qf ? qf->n : 0;
}

const char *query_filters_path(const struct query_filters *qf, size_t i)
{
	return qf->f[i].path;
}

bool query_filters_match(const struct query_filters *qf, size_t i, const struct query_column *col,
			 size_t row)
{
	const struct qfilter *f = &qf->f[i];
	bool set = col && qcol_has(col, row);
	if (f->op == QOP_IS_SET || f->op == QOP_IS_NOT_SET)
		return set == (f->op == QOP_IS_SET);
	if (!set)
		return op_negative(f->op);
	static const int want[] = {
	    [QV_STRING] = QCOL_STRING, [QV_NUMBER] = QCOL_NUMBER, [QV_BOOL] = QCOL_BOOL};
	if (want[f->vkind] != (int)col->kind) /* another type: never equal */
		return op_negative(f->op);
	if (col->kind == QCOL_STRING)
		return col->code[row] < col->ndict && match_str(f, col->dict[col->code[row]]);
	if (col->kind == QCOL_NUMBER)
		return match_num(f, col->num[row]);
	return match_bool(f, col->boolv[row]);
}
