/*
 * attribution.c - campaign attribution: each conversion's credit (1 per
 * model) and value shared among the touchpoints (sessions) that led to it,
 * by six models side by side, with costs, ROI and ROAS per touchpoint group.
 * docs/attribution.md gives every rule; the unit tests check hand-built
 * journeys and a brute-force reference.
 *
 * Plan: attribution_gather.c collects every row of the persons who
 * converted in the range (in the range widened by the lookback), each as an
 * entry {ts, person, touch, conversion} where touch names the row's tuple
 * of campaign / referrer / channel values, grouped by person bucket. The
 * walk sorts each bucket by person and each person's entries by time, cuts
 * them into sessions (session.c), and shares each conversion's credit
 * among the sessions that started within the lookback before it. Credits
 * are summed per touch tuple, then folded into the groups of the touchpoint
 * dimension asked for: the result does not depend on how the rows were
 * stored or on the number of threads.
 */
#include "query/attribution_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const model_names[] = {
    "first_touch", "last_touch", "last_non_direct", "linear", "position_based", "time_decay", NULL};

static const char *const touch_names[] = {"campaign", "source",	       "medium",
					  "channel",  "source_medium", NULL};

#define A_DIRECT      "Direct"
#define A_NOT_SET     "(not set)"
#define A_NO_CAMPAIGN "(no campaign)"

/* ---- parsing -------------------------------------------------------- */

static int parse(struct qctx *q, struct attribution *a)
{
	static const char *const keys[] = {"kind",    "conversion",   "value",	   "touchpoint",
					   "models",  "lookback",     "half_life", "session_gap",
					   "limit",   "date_from",    "date_to",   "timezone",
					   "filters", "include_bots", NULL};
	int rc = qj_keys(q, q->root, "", keys);
	if (rc || (rc = qj_time(q, true)))
		return rc;
	const cJSON *jc = cJSON_GetObjectItemCaseSensitive(q->root, "conversion");
	if (!jc)
		return qerr(q, "conversion: required ({\"event\": ..., \"filters\": [...]})");
	if ((rc = qsel_parse(q, jc, "conversion", NULL, true, &a->conv)))
		return rc;
	if (!*a->conv.event)
		return qerr(q, "conversion.event: must name the conversion event");
	a->value = "properties.revenue";
	if ((rc = qj_string(q, q->root, "value", "", &a->value)))
		return rc;
	a->value_given = cJSON_GetObjectItemCaseSensitive(q->root, "value") != NULL;
	if (!*a->value)
		return qerr(q, "value: must be a property path such as \"properties.revenue\"");
	struct query_column col;
	bool found;
	if ((rc = qprop_find(q, a->conv.event, a->value, &col, &found)))
		return rc;
	if (found && col.kind != QCOL_NUMBER)
		return qerr(
		    q, "value: property \"%s\" of \"%s\" holds %s; the value must be a number",
		    a->value, a->conv.event, col.kind == QCOL_STRING ? "strings" : "booleans");
	if (!found && a->value_given)
		return qerr(q, "value: unknown property \"%s\" (no \"%s\" event has it)", a->value,
			    a->conv.event);
	if (!found)
		a->value = NULL; /* the default, absent: conversions have no value */

	a->touchpoint = T_CHANNEL;
	if ((rc = qj_enum(q, q->root, "touchpoint", "", touch_names, &a->touchpoint)))
		return rc;
	const cJSON *jm = cJSON_GetObjectItemCaseSensitive(q->root, "models");
	if (jm) {
		if (!cJSON_IsArray(jm) || cJSON_GetArraySize(jm) == 0)
			return qerr(
			    q, "models: must be a non-empty array of model names (first_touch, "
			       "last_touch, last_non_direct, linear, position_based, "
			       "time_decay)");
		int i = 0;
		const cJSON *it;
		cJSON_ArrayForEach(it, jm)
		{
			int m = -1;
			for (int k = 0; model_names[k]; k++)
				if (cJSON_IsString(it) &&
				    strcmp(it->valuestring, model_names[k]) == 0)
					m = k;
			if (m < 0)
				return qerr(
				    q,
				    "models[%d]: unknown model (expected one of: first_touch, "
				    "last_touch, last_non_direct, linear, position_based, "
				    "time_decay)",
				    i);
			if (a->model_on[m])
				return qerr(q, "models[%d]: \"%s\" is listed twice", i,
					    model_names[m]);
			a->model_on[m] = true;
			a->models[a->nmodels++] = m;
			i++;
		}
	} else {
		for (int m = 0; m < M_COUNT; m++) {
			a->model_on[m] = true;
			a->models[a->nmodels++] = m;
		}
	}
	a->lookback = 30 * MS_PER_DAY;
	a->half_life = 7 * MS_PER_DAY;
	a->gap = 30 * MS_PER_MIN;
	a->limit = 10;
	if ((rc = qj_duration(q, q->root, "lookback", "", &a->lookback)) ||
	    (rc = qj_duration(q, q->root, "half_life", "", &a->half_life)) ||
	    (rc = qj_duration(q, q->root, "session_gap", "", &a->gap)) ||
	    (rc = qj_int(q, q->root, "limit", "", 1, QUERY_MAX_BREAKDOWN, &a->limit)))
		return rc;
	if (cJSON_GetObjectItemCaseSensitive(q->root, "half_life") && !a->model_on[M_DECAY])
		return qerr(q, "half_life: only used by the time_decay model, which models leaves "
			       "out");
	return 0;
}

/* ---- touch tuples --------------------------------------------------- */

static const char *str_of(const struct attribution *a, uint32_t id)
{
	return id ? a->strs.str[id - 1] : NULL;
}

/* Whether a referrer medium names a referrer that counts ("internal" is the
 * site itself: a later session of the same visit, not a touchpoint). */
static bool real_referrer(const char *medium)
{
	return !medium || strcmp(medium, "internal") != 0;
}

/* Fills the derived parts of a new tuple (docs/attribution.md, "Touchpoints"). */
static void touch_derive(struct qctx *q, struct attribution *a, struct atouch *t)
{
	const char *name = str_of(a, t->f[F_NAME]), *cs = str_of(a, t->f[F_CSOURCE]),
		   *cm = str_of(a, t->f[F_CMEDIUM]), *rm = str_of(a, t->f[F_RMEDIUM]),
		   *rs = str_of(a, t->f[F_RSOURCE]), *ch = str_of(a, t->f[F_CHANNEL]);
	bool campaign = name || cs || cm;
	if (!real_referrer(rm))
		rs = rm = NULL;
	const char *source = campaign ? cs : rs, *medium = campaign ? cm : rm;
	t->direct = !campaign && !rs && !rm && (!ch || strcmp(ch, A_DIRECT) == 0);
	if (campaign) {
		char *k = qa_printf(&q->arena, "%s\x1f%s\x1f%s", name ? name : "", cs ? cs : "",
				    cm ? cm : "");
		t->campaign = qintern_get(&q->arena, &a->strs, k);
	} else {
		t->campaign = QSESSION_NO_CAMPAIGN;
	}
	const char *g = NULL;
	switch (a->touchpoint) {
	case T_CAMPAIGN:
		g = name ? name : t->direct ? A_DIRECT : A_NO_CAMPAIGN;
		break;
	case T_SOURCE:
		g = source ? source : t->direct ? A_DIRECT : A_NOT_SET;
		break;
	case T_MEDIUM:
		g = medium ? medium : t->direct ? A_DIRECT : A_NOT_SET;
		break;
	case T_CHANNEL:
		g = ch ? ch : t->direct ? A_DIRECT : A_NOT_SET;
		break;
	default:
		g = t->direct ? A_DIRECT
			      : qa_printf(&q->arena, "%s / %s", source ? source : A_NOT_SET,
					  medium ? medium : A_NOT_SET);
		break;
	}
	t->group = g;
	for (int i = 0; i < F_COUNT; i++)
		t->text[i] = str_of(a, t->f[i]);
}

uint32_t attr_touch_get(struct qctx *q, struct attribution *a, const uint32_t *f)
{
	if (a->touches.n * 2 >= a->nslots) {
		size_t ns = a->nslots ? a->nslots * 2 : 256;
		uint32_t *slots = qa_big_realloc(&q->arena, NULL, ns * sizeof(*slots));
		memset(slots, 0, ns * sizeof(*slots));
		const struct atouch *t = a->touches.p;
		for (size_t id = 0; id < a->touches.n; id++) {
			size_t i = attr_hash_fields(t[id].f) & (ns - 1);
			while (slots[i])
				i = (i + 1) & (ns - 1);
			slots[i] = (uint32_t)id + 1;
		}
		qa_big_free(&q->arena, a->slots);
		a->slots = slots;
		a->nslots = ns;
	}
	size_t i = attr_hash_fields(f) & (a->nslots - 1);
	while (a->slots[i]) {
		uint32_t id = a->slots[i] - 1;
		if (memcmp(((struct atouch *)a->touches.p)[id].f, f, sizeof(uint32_t) * F_COUNT) ==
		    0)
			return id;
		i = (i + 1) & (a->nslots - 1);
	}
	uint32_t id = (uint32_t)a->touches.n;
	struct atouch *t = qvec_push(&q->arena, &a->touches);
	memset(t, 0, sizeof(*t));
	memcpy(t->f, f, sizeof(t->f));
	touch_derive(q, a, t);
	a->slots[i] = id + 1;
	return id;
}

/* ---- ordering ------------------------------------------------------- */

/* Tuples in the order of their fields' text, field by field, unset first
 * (no shared state: queries run concurrently). */
static int cmp_tuple(const void *x, const void *y)
{
	const struct atouch *a = *(const struct atouch *const *)x,
			    *b = *(const struct atouch *const *)y;
	for (int i = 0; i < F_COUNT; i++) {
		const char *s = a->text[i], *t = b->text[i];
		int c = !s || !t ? (s != NULL) - (t != NULL) : strcmp(s, t);
		if (c)
			return c;
	}
	return 0;
}

/* Renumbers the tuples in the order of their fields (entries follow), so
 * that rows at one millisecond sort the same whatever order they were
 * stored in. */
static void rank_touches(struct qctx *q, struct attribution *a)
{
	size_t n = a->touches.n;
	struct atouch *t = a->touches.p;
	const struct atouch **order = qa_alloc(&q->arena, (n ? n : 1) * sizeof(*order));
	for (size_t i = 0; i < n; i++)
		order[i] = &t[i];
	q_qsort(order, n, sizeof(*order), cmp_tuple);
	uint32_t *rank = qa_alloc(&q->arena, (n ? n : 1) * sizeof(uint32_t));
	struct atouch *sorted = qa_alloc(&q->arena, (n ? n : 1) * sizeof(*sorted));
	for (size_t i = 0; i < n; i++) {
		rank[order[i] - t] = (uint32_t)i;
		sorted[i] = *order[i];
	}
	if (n)
		memcpy(t, sorted, n * sizeof(*t));
	a->rank = rank; /* the walk renumbers the entries as it reads them */
}

/* time; other events before conversions; tuple rank; conversion value */
static inline bool entry_less(const struct aentry *x, const struct aentry *y, const double *values)
{
	if (x->key != y->key) /* one person's: the time */
		return x->key < y->key;
	if ((x->conv != 0) != (y->conv != 0))
		return y->conv != 0;
	if (x->touch != y->touch)
		return x->touch < y->touch;
	if (x->conv && y->conv)
		return values[x->conv - 1] < values[y->conv - 1];
	return false;
}

#define AENTRY_LESS(a, b, values) entry_less(a, b, values)
/* Sorts one person's entries (see Q_DEFINE_RUN_SORT). */
Q_DEFINE_RUN_SORT(sort_person, struct aentry, const double *, AENTRY_LESS)

/* ---- models --------------------------------------------------------- */

/* Credits per model and tuple; the tuple ntouch stands for "no touchpoint
 * in the lookback" (the Direct group). */
struct acredit {
	double *conv, *rev; /* [model * (ntouch + 1) + touch] */
	size_t stride;
	double *w; /* scratch: one weight per session */
};

static void credit(struct acredit *cr, int m, uint32_t touch, double share, double value)
{
	cr->conv[(size_t)m * cr->stride + touch] += share;
	cr->rev[(size_t)m * cr->stride + touch] += share * value;
}

/* Shares one conversion at t (value v) among the sessions s[0..n) (start
 * times st, tuples tp, in time order) of every model asked for. */
static void attribute(const struct attribution *a, const struct atouch *touches, struct acredit *cr,
		      const int64_t *st, const uint32_t *tp, size_t n, int64_t t, double v)
{
	uint32_t none = (uint32_t)(cr->stride - 1);
	if (n == 0) {
		for (int k = 0; k < a->nmodels; k++)
			credit(cr, a->models[k], none, 1, v);
		return;
	}
	if (a->model_on[M_FIRST])
		credit(cr, M_FIRST, tp[0], 1, v);
	if (a->model_on[M_LAST])
		credit(cr, M_LAST, tp[n - 1], 1, v);
	if (a->model_on[M_LAST_NON_DIRECT]) {
		size_t i = n;
		while (i > 0 && touches[tp[i - 1]].direct)
			i--;
		credit(cr, M_LAST_NON_DIRECT, tp[i ? i - 1 : n - 1], 1, v);
	}
	if (a->model_on[M_LINEAR])
		for (size_t i = 0; i < n; i++)
			credit(cr, M_LINEAR, tp[i], 1.0 / (double)n, v);
	if (a->model_on[M_POSITION]) {
		if (n == 1) {
			credit(cr, M_POSITION, tp[0], 1, v);
		} else if (n == 2) {
			credit(cr, M_POSITION, tp[0], 0.5, v);
			credit(cr, M_POSITION, tp[1], 0.5, v);
		} else {
			credit(cr, M_POSITION, tp[0], 0.4, v);
			credit(cr, M_POSITION, tp[n - 1], 0.4, v);
			for (size_t i = 1; i + 1 < n; i++)
				credit(cr, M_POSITION, tp[i], 0.2 / (double)(n - 2), v);
		}
	}
	if (a->model_on[M_DECAY]) {
		/* 2^(-(t - start) / half_life), relative to the latest session so
		 * that the weights never all underflow to 0 */
		double sum = 0;
		for (size_t i = 0; i < n; i++) {
			cr->w[i] = exp2(-(double)(st[n - 1] - st[i]) / (double)a->half_life);
			sum += cr->w[i];
		}
		for (size_t i = 0; i < n; i++)
			credit(cr, M_DECAY, tp[i], cr->w[i] / sum, v);
	}
	(void)t;
}

/* First index in [0, n) with st[i] >= from (n if none). */
static size_t first_from(const int64_t *st, size_t n, int64_t from)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (st[mid] < from)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The walk runs in parallel over blocks of person buckets: each bucket's
 * entries are sorted by person (a counting sort in cache), then each person's
 * by time, and walked. Each block sums into its own credits and the blocks
 * are added up in block order: how many blocks there are depends on the data
 * only, so the sums (floating point) are the same on any number of threads.
 */
struct awalk {
	const struct attribution *a;
	const struct atouch *touches;
	const double *values;
	uint32_t np;
	size_t nblocks, stride;
	struct acredit *block; /* per block */
	uint64_t *nsessions;   /* per block, stride each */
	struct aworker {
		int64_t *st;
		uint32_t *tp;
		double *w;
		struct aentry *by, *tmp; /* a bucket's entries by person; merge room */
		uint32_t *cnt;		 /* 2^shift + 1 */
	} * wk;				 /* per thread */
};

/* Walks one person's entries (sorted here). */
static void walk_person(struct awalk *w, struct aworker *wk, struct acredit *cr,
			uint64_t *nsessions, struct aentry *e, size_t m)
{
	const struct attribution *a = w->a;
	sort_person(e, m, wk->tmp, w->values);
	struct qsession s;
	qsession_init(&s, a->gap);
	size_t ns = 0;
	for (size_t i = 0; i < m; i++) {
		int64_t ts = attr_ts(a, &e[i]);
		if (qsession_next(&s, ts, w->touches[e[i].touch].campaign)) {
			wk->st[ns] = ts;
			wk->tp[ns++] = e[i].touch;
			nsessions[e[i].touch]++;
		}
		if (!e[i].conv)
			continue;
		size_t f = first_from(wk->st, ns, attr_before(ts, a->lookback));
		attribute(a, w->touches, cr, wk->st + f, wk->tp + f, ns - f, ts,
			  w->values[e[i].conv - 1]);
	}
}

static void walk_task(void *arg, size_t blk, unsigned worker)
{
	struct awalk *w = arg;
	const struct attribution *a = w->a;
	struct aworker *wk = &w->wk[worker];
	struct acredit *cr = &w->block[blk];
	uint64_t *nsessions = w->nsessions + blk * w->stride;
	cr->w = wk->w;
	size_t P = (size_t)1 << a->shift;
	size_t b0 = a->nb * blk / w->nblocks, b1 = a->nb * (blk + 1) / w->nblocks;
	for (size_t b = b0; b < b1; b++) {
		const struct aentry *in = a->e + a->start[b];
		size_t n = a->start[b + 1] - a->start[b];
		if (!n)
			continue;
		/* counting sort by person, stable: each person's entries stay in
		 * runs of time order */
		uint32_t *cnt = wk->cnt;
		uint64_t pmask = P - 1;
		memset(cnt, 0, (P + 1) * sizeof(uint32_t));
		for (size_t i = 0; i < n; i++)
			cnt[(in[i].key & pmask) + 1]++;
		for (size_t p = 0; p < P; p++)
			cnt[p + 1] += cnt[p];
		for (size_t i = 0; i < n; i++) {
			struct aentry *e = &wk->by[cnt[in[i].key & pmask]++];
			*e = in[i];
			e->touch = a->rank[e->touch];
		}
		/* cnt[p] is now the end of person p's entries */
		size_t lo = 0;
		for (size_t p = 0; p < P && lo < n; p++) {
			size_t hi = cnt[p];
			if (hi > lo)
				walk_person(w, wk, cr, nsessions, wk->by + lo, hi - lo);
			lo = hi;
		}
	}
}

/* Walks every person: sessions, then each conversion's credits, summed into
 * cr and nsessions (stride entries each, zeroed). */
static void walk(struct qctx *q, struct attribution *a, struct acredit *cr, uint64_t *nsessions)
{
	size_t maxn = 1; /* entries of the largest bucket, so of any person too */
	for (size_t b = 0; b < a->nb; b++)
		if (a->start[b + 1] - a->start[b] > maxn)
			maxn = a->start[b + 1] - a->start[b];
	struct awalk w = {.a = a,
			  .touches = a->touches.p,
			  .values = a->values,
			  .np = q->src->npersons,
			  .stride = cr->stride};
	/* blocks: at most 64, and their credits at most 64 MB together */
	size_t per_block = (2 * M_COUNT + 1) * w.stride * sizeof(double);
	w.nblocks = a->nb < 64 ? a->nb : 64;
	while (w.nblocks > 1 && w.nblocks * per_block > (64u << 20))
		w.nblocks /= 2;
	unsigned nthr = qpar_threads(q, a->n);
	w.block = qa_calloc(&q->arena, w.nblocks, sizeof(*w.block));
	for (size_t b = 0; b < w.nblocks; b++) {
		w.block[b].stride = w.stride;
		w.block[b].conv =
		    b ? qa_calloc(&q->arena, M_COUNT * w.stride, sizeof(double)) : cr->conv;
		w.block[b].rev =
		    b ? qa_calloc(&q->arena, M_COUNT * w.stride, sizeof(double)) : cr->rev;
	}
	w.nsessions = qa_calloc(&q->arena, w.nblocks * w.stride, sizeof(uint64_t));
	w.wk = qa_calloc(&q->arena, nthr, sizeof(*w.wk));
	for (unsigned t = 0; t < nthr; t++) {
		w.wk[t].st = qa_big_realloc(&q->arena, NULL, maxn * sizeof(int64_t));
		w.wk[t].tp = qa_big_realloc(&q->arena, NULL, maxn * sizeof(uint32_t));
		w.wk[t].w = qa_big_realloc(&q->arena, NULL, maxn * sizeof(double));
		w.wk[t].by = qa_big_realloc(&q->arena, NULL, maxn * sizeof(struct aentry));
		w.wk[t].tmp = qa_big_realloc(&q->arena, NULL, maxn * sizeof(struct aentry));
		w.wk[t].cnt = qa_big_realloc(&q->arena, NULL,
					     (((size_t)1 << a->shift) + 1) * sizeof(uint32_t));
	}
	qpar_for(nthr, w.nblocks, walk_task, &w);
	for (size_t b = 1; b < w.nblocks; b++)
		for (size_t i = 0; i < M_COUNT * w.stride; i++) {
			cr->conv[i] += w.block[b].conv[i];
			cr->rev[i] += w.block[b].rev[i];
		}
	for (size_t b = 0; b < w.nblocks; b++)
		for (size_t i = 0; i < w.stride; i++)
			nsessions[i] += w.nsessions[b * w.stride + i];
	for (unsigned t = 0; t < nthr; t++) {
		qa_big_free(&q->arena, w.wk[t].st);
		qa_big_free(&q->arena, w.wk[t].tp);
		qa_big_free(&q->arena, w.wk[t].w);
		qa_big_free(&q->arena, w.wk[t].by);
		qa_big_free(&q->arena, w.wk[t].tmp);
		qa_big_free(&q->arena, w.wk[t].cnt);
	}
}

/* ---- groups and result ---------------------------------------------- */

struct agroup {
	const char *name;
	double conv[M_COUNT], rev[M_COUNT];
	double cost;
	bool has_cost;
	double weight; /* conversions over every model asked for */
};

static int cmp_group(const void *x, const void *y)
{
	const struct agroup *a = x, *b = y;
	if (a->weight != b->weight)
		return a->weight > b->weight ? -1 : 1;
	double ra = 0, rb = 0;
	for (int m = 0; m < M_COUNT; m++) {
		ra += a->rev[m];
		rb += b->rev[m];
	}
	if (ra != rb)
		return ra > rb ? -1 : 1;
	if (a->has_cost != b->has_cost || a->cost != b->cost)
		return a->cost > b->cost ? -1 : a->cost < b->cost ? 1 : b->has_cost - a->has_cost;
	return strcmp(a->name, b->name);
}

/* The channels of campaign sources and mediums, from the sessions seen. */
static void channels_build(struct qctx *q, const struct attribution *a, const uint64_t *nsessions,
			   struct qchannels *c)
{
	const struct atouch *t = a->touches.p;
	qchannels_init(c);
	for (size_t i = 0; i < a->touches.n; i++) {
		const char *ch = str_of(a, t[i].f[F_CHANNEL]);
		if (t[i].campaign != QSESSION_NO_CAMPAIGN && ch && nsessions[i])
			qchannels_add(q, c, str_of(a, t[i].f[F_CSOURCE]),
				      str_of(a, t[i].f[F_CMEDIUM]), ch, nsessions[i]);
	}
}

/* The group a cost row's money goes to in the dimension asked for. */
static const char *cost_group(struct qctx *q, const struct attribution *a,
			      const struct query_cost *r, struct qchannels *chans)
{
	const char *s = *r->source ? r->source : A_NOT_SET;
	const char *m = *r->medium ? r->medium : A_NOT_SET;
	switch (a->touchpoint) {
	case T_CAMPAIGN:
		return *r->campaign ? r->campaign : A_NOT_SET;
	case T_SOURCE:
		return s;
	case T_MEDIUM:
		return m;
	case T_CHANNEL: {
		const char *ch = qchannels_of(q, chans, r->source, r->medium);
		return ch ? ch : A_NOT_SET;
	}
	default:
		return qa_printf(&q->arena, "%s / %s", s, m);
	}
}

static size_t group_of(struct qctx *q, struct qintern *names, struct qvec *groups, const char *name)
{
	uint32_t id = qintern_get(&q->arena, names, name);
	while (groups->n <= id) {
		struct agroup *g = qvec_push(&q->arena, groups);
		memset(g, 0, sizeof(*g));
		g->name = names->str[groups->n - 1];
	}
	return id;
}

static void write_model(struct qctx *q, const struct agroup *g, int m, double total,
			double total_rev)
{
	qo_printf(q, "\"%s\":{\"conversions\":", model_names[m]);
	qo_num(q, g->conv[m]);
	qo_raw(q, ",\"revenue\":");
	qo_num(q, g->rev[m]);
	qo_raw(q, ",\"share_pct\":");
	qo_num(q, total > 0 ? 100 * g->conv[m] / total : NAN);
	qo_raw(q, ",\"revenue_share_pct\":");
	qo_num(q, total_rev != 0 ? 100 * g->rev[m] / total_rev : NAN);
	qo_raw(q, ",\"roi\":");
	qo_num(q, g->has_cost && g->cost > 0 ? (g->rev[m] - g->cost) / g->cost : NAN);
	qo_raw(q, ",\"roas\":");
	qo_num(q, g->has_cost && g->cost > 0 ? g->rev[m] / g->cost : NAN);
	qo_raw(q, "}");
}

static void write_group(struct qctx *q, const struct attribution *a, const struct agroup *g,
			bool other, double total, double total_rev)
{
	qo_raw(q, "{\"touchpoint\":");
	qo_str(q, other ? NULL : g->name);
	qo_printf(q, ",\"is_other\":%s,\"cost\":", other ? "true" : "false");
	qo_num(q, g->has_cost ? g->cost : NAN);
	qo_raw(q, ",\"models\":{");
	for (int k = 0; k < a->nmodels; k++) {
		if (k)
			qo_raw(q, ",");
		write_model(q, g, a->models[k], total, total_rev);
	}
	qo_raw(q, "}}");
}

static int result(struct qctx *q, struct attribution *a, const struct acredit *cr,
		  const uint64_t *nsessions, const struct qcosts *costs)
{
	struct qintern names;
	qintern_init(&names);
	struct qvec groups;
	qvec_init(&groups, sizeof(struct agroup));
	const struct atouch *t = a->touches.p;
	size_t nt = a->touches.n;
	for (size_t i = 0; i <= nt; i++) {
		bool used = false;
		for (int k = 0; k < a->nmodels; k++)
			used |= cr->conv[(size_t)a->models[k] * cr->stride + i] != 0;
		if (!used)
			continue;
		size_t g = group_of(q, &names, &groups, i < nt ? t[i].group : A_DIRECT);
		struct agroup *gr = &((struct agroup *)groups.p)[g];
		for (int k = 0; k < a->nmodels; k++) {
			int m = a->models[k];
			gr->conv[m] += cr->conv[(size_t)m * cr->stride + i];
			gr->rev[m] += cr->rev[(size_t)m * cr->stride + i];
		}
	}
	double total_cost = 0;
	struct qchannels chans;
	memset(&chans, 0, sizeof(chans));
	if (a->touchpoint == T_CHANNEL)
		channels_build(q, a, nsessions, &chans);
	for (size_t i = 0; i < costs->n; i++) {
		const struct query_cost *r = &costs->rows[i];
		size_t g = group_of(q, &names, &groups, cost_group(q, a, r, &chans));
		struct agroup *gr = &((struct agroup *)groups.p)[g];
		gr->cost += r->cost;
		gr->has_cost = true;
		total_cost += r->cost;
	}
	struct agroup *gs = groups.p;
	size_t ng = groups.n;
	for (size_t i = 0; i < ng; i++)
		for (int k = 0; k < a->nmodels; k++)
			gs[i].weight += gs[i].conv[a->models[k]];
	q_qsort(gs, ng, sizeof(*gs), cmp_group);

	size_t nconv = a->nconv;
	double revenue = 0;
	for (size_t i = 0; i < nconv; i++)
		revenue += a->values[i];

	char from[Q_INSTANT_LEN], to[Q_INSTANT_LEN];
	q_format_instant(q->range.from, query_tz_offset(&q->tz, q->range.from, NULL, NULL), from);
	q_format_instant(q->range.to, query_tz_offset(&q->tz, q->range.to, NULL, NULL), to);
	qo_raw(q, "{\"kind\":\"attribution\",\"conversion\":");
	qo_str(q, a->conv.event);
	qo_raw(q, ",\"value\":");
	qo_str(q, a->value);
	qo_printf(q, ",\"touchpoint\":\"%s\",\"timezone\":", touch_names[a->touchpoint]);
	qo_str(q, q->tz.name);
	qo_printf(q,
		  ",\"from\":\"%s\",\"to\":\"%s\",\"lookback_ms\":%lld,\"half_life_ms\":%lld,"
		  "\"session_gap_ms\":%lld,\"models\":[",
		  from, to, (long long)a->lookback, (long long)a->half_life, (long long)a->gap);
	for (int k = 0; k < a->nmodels; k++)
		qo_printf(q, "%s\"%s\"", k ? "," : "", model_names[a->models[k]]);
	qo_printf(q, "],\"conversions\":%zu,\"revenue\":", nconv);
	qo_num(q, revenue);
	qo_raw(q, ",\"cost\":");
	qo_num(q, costs->n ? total_cost : NAN);
	qo_raw(q, ",\"currency\":");
	qo_str(q, costs->currency);
	qo_raw(q, ",\"roi\":");
	qo_num(q, costs->n && total_cost > 0 ? (revenue - total_cost) / total_cost : NAN);
	qo_raw(q, ",\"roas\":");
	qo_num(q, costs->n && total_cost > 0 ? revenue / total_cost : NAN);
	qo_raw(q, ",\"groups\":[");
	size_t keep = ng < (size_t)a->limit ? ng : (size_t)a->limit;
	for (size_t i = 0; i < keep; i++) {
		if (i)
			qo_raw(q, ",");
		write_group(q, a, &gs[i], false, (double)nconv, revenue);
	}
	if (ng > keep) {
		struct agroup o;
		memset(&o, 0, sizeof(o));
		for (size_t i = keep; i < ng; i++) {
			for (int m = 0; m < M_COUNT; m++) {
				o.conv[m] += gs[i].conv[m];
				o.rev[m] += gs[i].rev[m];
			}
			o.cost += gs[i].cost;
			o.has_cost |= gs[i].has_cost;
		}
		qo_raw(q, keep ? "," : "");
		write_group(q, a, &o, true, (double)nconv, revenue);
	}
	qo_raw(q, "]}");
	return 0;
}

int query_attribution(struct qctx *q)
{
	struct attribution *a = qa_calloc(&q->arena, 1, sizeof(*a));
	int rc = parse(q, a);
	if (rc)
		return rc;
	struct qcosts costs;
	if ((rc = qcosts_load(q, "costs", q->range.from, q->range.to, &costs)))
		return rc;
	qintern_init(&a->strs);
	qvec_init(&a->touches, sizeof(struct atouch));
	if ((rc = attr_gather(q, a)))
		return rc;
	rank_touches(q, a);
	struct acredit cr;
	cr.stride = a->touches.n + 1;
	cr.conv = qa_big_realloc(&q->arena, NULL, M_COUNT * cr.stride * sizeof(double));
	cr.rev = qa_big_realloc(&q->arena, NULL, M_COUNT * cr.stride * sizeof(double));
	memset(cr.conv, 0, M_COUNT * cr.stride * sizeof(double));
	memset(cr.rev, 0, M_COUNT * cr.stride * sizeof(double));
	uint64_t *nsessions = qa_calloc(&q->arena, cr.stride, sizeof(uint64_t));
	walk(q, a, &cr, nsessions);
	return result(q, a, &cr, nsessions, &costs);
}
