/*
 * attribution_gather.c - the rows an attribution needs: every row, in the
 * range widened by the lookback, of the persons who converted in the range.
 *
 * Plan (the funnel's, docs/queries.md "Execution"): the conversion rows
 * mark their canonical persons in a bitmap, turned into the stored ids to
 * keep. Then per chunk (a job), on up to query_limits.threads threads:
 * a first pass counts the kept rows per person bucket (canonical person >>
 * shift); prefix sums over (bucket, job) give every job its own region in
 * each bucket; a second pass writes each kept row there as a 16-byte entry
 * {time and person, touch tuple, conversion}. The layout depends on the data
 * only, never on the threads.
 *
 * What a task may not do: read columns (the query's thread opens them
 * first and turns every dictionary code into a string id) or make tuples
 * (a task numbers the tuples it meets in a table of its own; the query's
 * thread makes them global afterwards, job by job, and a last parallel pass
 * renumbers the entries). A chunk whose field columns are not all strings
 * is placed on the query's thread, where its values can be interned.
 */
#include "query/attribution_int.h"

#include <string.h>

/* One chunk's rows in the range, filters evaluated. */
struct ajob {
	const struct query_chunk *c;
	size_t lo, hi;
	uint64_t *pass;	 /* global filters */
	uint64_t *conv;	 /* conversion selector (conversion event only), else NULL */
	uint32_t *count; /* entries per bucket */
	size_t *at;	 /* where its entries of each bucket start */
	size_t nconv;	 /* conversions among its kept rows */
	size_t conv0;	 /* number of its first conversion */
	uint64_t total;
	/* columns, opened by the query's thread when the job has entries */
	struct qbdcol cols[F_COUNT];
	struct query_column vcol;
	bool vfound, opened, serial;
	/* its own tuples: open addressing over f[F_COUNT] keys */
	uint32_t *keys; /* F_COUNT per local tuple */
	uint32_t *slots;
	uint32_t *map; /* local tuple -> global tuple */
	size_t ntuples, cap, nslots;
	int rc;
	uint32_t bad;
};

struct agather {
	struct qctx *q;
	struct attribution *a;
	struct ajob *jobs;
	size_t njobs;
	const uint64_t *keep;
	const uint64_t *moved; /* ids merged into another (qcanon_moved), or NULL */
	int64_t conv_from;     /* conversions count from here (the range's start) */
};

/* The canonical person of stored id pid (< npersons): only merged ids read
 * canonical[], which is as big as the person space; the bitmap stays in
 * cache. */
static inline uint32_t canon_of(const struct agather *g, uint32_t pid)
{
	return g->moved && qbit(g->moved, pid) ? g->q->src->canonical[pid] : pid;
}

/* ---- persons ---------------------------------------------------------- */

/* Canonical persons with a conversion in the range, as stored ids to keep. */
static int converters(struct qctx *q, struct attribution *a, uint64_t **keep_out)
{
	uint32_t np = q->src->npersons;
	size_t nw = ((size_t)np + 63) / 64 + 1;
	uint64_t *conv = qa_big_realloc(&q->arena, NULL, nw * sizeof(uint64_t));
	memset(conv, 0, nw * sizeof(uint64_t));
	struct qspan *sp;
	size_t nsp;
	int rc = qspans_get(q, &a->conv, q->range.from, q->range.to, &sp, &nsp);
	if (rc || (rc = qperson_set(q, sp, nsp, q->range.from, q->range.to, conv)))
		return rc;
	for (size_t i = 0; i < nsp; i++)
		qa_big_free(&q->arena, (void *)sp[i].pass);
	qa_big_free(&q->arena, sp);
	uint64_t *keep = qa_big_realloc(&q->arena, NULL, nw * sizeof(uint64_t));
	memset(keep, 0, nw * sizeof(uint64_t));
	const uint32_t *canon = q->src->canonical;
	for (uint32_t p = 0; p < np; p++) {
		uint32_t c = canon ? canon[p] : p;
		if (c >= np || qbit(conv, c)) /* out of range: kept, for the error */
			keep[p >> 6] |= 1ULL << (p & 63);
	}
	qa_big_free(&q->arena, conv);
	*keep_out = keep;
	return 0;
}

/* Every chunk with rows in [from - lookback, to), filters evaluated. */
static int make_jobs(struct qctx *q, struct attribution *a, struct qvec *jobs)
{
	struct qsel global = {.field = "filters", .event = "", .f = q->global, .nf = q->nglobal};
	int64_t from = a->t0, to = q->range.to;
	qvec_init(jobs, sizeof(struct ajob));
	for (size_t ni = 0; ni < q->nnames; ni++) {
		bool conv_here = strcmp(q->names[ni], a->conv.event) == 0;
		const struct query_chunk *chunks;
		size_t nchunks = q->src->chunks(q->src->ctx, q->names[ni], &chunks);
		for (size_t ci = 0; ci < nchunks; ci++) {
			struct ajob j;
			memset(&j, 0, sizeof(j));
			j.c = &chunks[ci];
			qchunk_span(j.c, from, to, &j.lo, &j.hi);
			if (j.lo >= j.hi)
				continue;
			size_t nw = (j.hi - j.lo + 63) / 64;
			j.pass = qa_big_realloc(&q->arena, NULL, nw * sizeof(uint64_t));
			int rc = qsel_eval(q, &global, j.c, j.lo, j.hi, j.pass);
			if (!rc && conv_here) {
				j.conv = qa_big_realloc(&q->arena, NULL, nw * sizeof(uint64_t));
				rc = qsel_eval(q, &a->conv, j.c, j.lo, j.hi, j.conv);
			}
			if (rc)
				return rc;
			*(struct ajob *)qvec_push(&q->arena, jobs) = j;
		}
	}
	return 0;
}

/* ---- pass 1: counts per bucket ---------------------------------------- */

static void count_task(void *arg, size_t ji, unsigned worker)
{
	struct agather *g = arg;
	struct ajob *j = &g->jobs[ji];
	const struct query_source *src = g->q->src;
	unsigned shift = g->a->shift;
	(void)worker;
	memset(j->count, 0, g->a->nb * sizeof(uint32_t));
	for (size_t i = 0; i < j->hi - j->lo; i++) {
		if (!qbit(j->pass, i))
			continue;
		uint32_t pid = j->c->pid[j->lo + i];
		if (pid >= src->npersons) {
			j->rc = TD_ECORRUPT;
			j->bad = pid;
			return;
		}
		if (!qbit(g->keep, pid))
			continue;
		uint32_t who = canon_of(g, pid);
		if (who >= src->npersons) {
			j->rc = TD_ECORRUPT;
			j->bad = pid;
			return;
		}
		j->count[who >> shift]++;
		j->total++;
		j->nconv += j->conv && qbit(j->conv, i) && j->c->ts[j->lo + i] >= g->conv_from;
	}
}

/* ---- pass 2: entries ---------------------------------------------------- */

/* A field's string id + 1 (0: unset); codes were turned into ids when the
 * column was opened, so only a serial job ever interns here. */
static inline uint32_t field_id(struct qctx *q, struct attribution *a, struct qbdcol *bc,
				size_t row)
{
	if (!bc->found || !qcol_has(&bc->col, row))
		return 0;
	if (bc->col.kind == QCOL_STRING) {
		uint32_t code = bc->col.code[row];
		return code < bc->col.ndict ? (uint32_t)bc->code_ids[code] + 1 : 0;
	}
	return (uint32_t)(qbdcol_get(q, &a->strs, bc, row) + 1);
}

/* The job's own number for tuple f; UINT32_MAX when out of memory. */
static uint32_t local_tuple(struct qarena *arena, struct ajob *j, const uint32_t *f)
{
	if (j->ntuples * 2 >= j->nslots) {
		size_t ns = j->nslots ? j->nslots * 2 : 64;
		uint32_t *slots = qa_try_big_realloc(arena, NULL, ns * sizeof(uint32_t));
		if (!slots)
			return UINT32_MAX;
		memset(slots, 0, ns * sizeof(uint32_t));
		for (size_t t = 0; t < j->ntuples; t++) {
			size_t i = attr_hash_fields(j->keys + t * F_COUNT) & (ns - 1);
			while (slots[i])
				i = (i + 1) & (ns - 1);
			slots[i] = (uint32_t)t + 1;
		}
		qa_big_free(arena, j->slots);
		j->slots = slots;
		j->nslots = ns;
	}
	size_t i = attr_hash_fields(f) & (j->nslots - 1);
	while (j->slots[i]) {
		uint32_t t = j->slots[i] - 1;
		if (!memcmp(j->keys + (size_t)t * F_COUNT, f, F_COUNT * sizeof(uint32_t)))
			return t;
		i = (i + 1) & (j->nslots - 1);
	}
	if (j->ntuples == j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 32;
		uint32_t *k = qa_try_big_realloc(arena, j->keys, cap * F_COUNT * sizeof(uint32_t));
		if (!k)
			return UINT32_MAX;
		j->keys = k;
		j->cap = cap;
	}
	memcpy(j->keys + j->ntuples * F_COUNT, f, F_COUNT * sizeof(uint32_t));
	j->slots[i] = (uint32_t)j->ntuples + 1;
	return (uint32_t)j->ntuples++;
}

static void place_task(void *arg, size_t ji, unsigned worker)
{
	struct agather *g = arg;
	struct ajob *j = &g->jobs[ji];
	struct attribution *a = g->a;
	const struct query_chunk *c = j->c;
	(void)worker;
	if (!j->total || (j->serial && worker != UINT32_MAX))
		return;
	uint32_t last_f[F_COUNT] = {0}, last = UINT32_MAX;
	uint32_t pmask = (uint32_t)((1ULL << a->shift) - 1);
	size_t conv = j->conv0;
	for (size_t i = 0; i < j->hi - j->lo; i++) {
		uint32_t pid = c->pid[j->lo + i]; /* checked when counting */
		if (!qbit(j->pass, i) || !qbit(g->keep, pid))
			continue;
		size_t row = j->lo + i;
		uint32_t f[F_COUNT];
		for (int k = 0; k < F_COUNT; k++)
			f[k] = field_id(g->q, a, &j->cols[k], row);
		if (last == UINT32_MAX || memcmp(f, last_f, sizeof(f)) != 0) {
			last = local_tuple(&g->q->arena, j, f);
			if (last == UINT32_MAX) {
				j->rc = TD_ENOMEM;
				return;
			}
			memcpy(last_f, f, sizeof(f));
		}
		uint32_t who = canon_of(g, pid);
		int64_t ts = c->ts[row];
		struct aentry *e = &a->e[j->at[who >> a->shift]++];
		e->key = ((uint64_t)ts - (uint64_t)a->t0) << ATTR_PBITS | (who & pmask);
		e->touch = last;
		e->conv = 0;
		if (j->conv && qbit(j->conv, i) && ts >= g->conv_from) {
			a->values[conv] =
			    j->vfound && qcol_has(&j->vcol, row) ? j->vcol.num[row] : 0;
			e->conv = (uint32_t)++conv;
		}
	}
}

/* Renumbers a job's entries from its own tuples to the global ones; at[b]
 * is the end of its region of bucket b (count[b] entries). */
static void remap_task(void *arg, size_t ji, unsigned worker)
{
	struct agather *g = arg;
	struct ajob *j = &g->jobs[ji];
	(void)worker;
	for (size_t b = 0; b < g->a->nb; b++) {
		struct aentry *e = g->a->e + j->at[b] - j->count[b];
		for (uint32_t i = 0; i < j->count[b]; i++)
			e[i].touch = j->map[e[i].touch];
	}
}

/* Opens a job's columns on the query's thread: every dictionary code of the
 * field columns becomes a string id now, so tasks only read. */
static int open_columns(struct qctx *q, struct attribution *a, struct ajob *j)
{
	static const char *const paths[F_COUNT] = ATTR_FIELD_PATHS;
	const struct query_chunk *c = j->c;
	int rc;
	for (int k = 0; k < F_COUNT; k++) {
		struct qbdcol *bc = &j->cols[k];
		if ((rc = qbdcol_open(q, &a->strs, paths[k], c, bc)))
			return rc;
		if (!bc->found)
			continue;
		if (bc->col.kind != QCOL_STRING) {
			j->serial = true;
			continue;
		}
		for (size_t d = 0; d < bc->col.ndict; d++)
			bc->code_ids[d] =
			    (int32_t)qintern_get(&q->arena, &a->strs, bc->col.dict[d]);
	}
	if (j->conv && a->value) {
		rc = c->column(c, a->value, &j->vcol);
		if (rc && rc != TD_ENOTFOUND)
			return qerr_code(q, rc, "store: reading property \"%s\" failed: %s",
					 a->value, td_strerror(rc));
		j->vfound = !rc;
		if (j->vfound && j->vcol.kind != QCOL_NUMBER)
			return qerr(
			    q,
			    "value: property \"%s\" holds %s in some rows; the value must be "
			    "a number",
			    a->value, j->vcol.kind == QCOL_STRING ? "strings" : "booleans");
	}
	j->opened = true;
	return 0;
}

static int job_error(struct qctx *q, const struct ajob *j)
{
	if (j->rc == TD_ECORRUPT)
		return qerr_pid(q, j->bad);
	return qerr_nomem(q);
}

int attr_gather(struct qctx *q, struct attribution *a)
{
	uint64_t *keep;
	struct qvec jv;
	a->t0 = attr_before(q->range.from, a->lookback);
	if ((uint64_t)q->range.to - (uint64_t)a->t0 >= ATTR_MAX_SPAN)
		return qerr(q, "lookback: the date range and the lookback together span more than "
			       "500 years; shorten them");
	int rc = converters(q, a, &keep);
	if (rc || (rc = make_jobs(q, a, &jv)))
		return rc;
	struct agather g = {.q = q, .a = a, .jobs = jv.p, .njobs = jv.n, .keep = keep};
	g.moved = qcanon_moved(q);
	g.conv_from = q->range.from;
	uint32_t np = q->src->npersons;
	a->shift = 13;
	while (((uint64_t)np >> a->shift) > 4096)
		a->shift++;
	a->nb = ((size_t)np >> a->shift) + 1;
	uint64_t rows = 0;
	for (size_t k = 0; k < g.njobs; k++) {
		struct ajob *j = &g.jobs[k];
		j->count = qa_big_realloc(&q->arena, NULL, a->nb * sizeof(uint32_t));
		j->at = qa_big_realloc(&q->arena, NULL, a->nb * sizeof(size_t));
		rows += j->hi - j->lo;
	}
	unsigned nthr = qpar_threads(q, rows);
	qpar_for(nthr, g.njobs, count_task, &g);
	for (size_t k = 0; k < g.njobs; k++)
		if (g.jobs[k].rc)
			return job_error(q, &g.jobs[k]);

	/* regions: bucket by bucket, the jobs in order */
	a->start = qa_calloc(&q->arena, a->nb + 1, sizeof(size_t));
	size_t at = 0;
	for (size_t b = 0; b < a->nb; b++) {
		a->start[b] = at;
		for (size_t k = 0; k < g.njobs; k++) {
			g.jobs[k].at[b] = at;
			at += g.jobs[k].count[b];
		}
	}
	a->start[a->nb] = a->n = at;
	for (size_t k = 0; k < g.njobs; k++) {
		g.jobs[k].conv0 = a->nconv;
		a->nconv += g.jobs[k].nconv;
	}
	a->e = qa_big_realloc(&q->arena, NULL, (a->n ? a->n : 1) * sizeof(struct aentry));
	a->values = qa_big_realloc(&q->arena, NULL, (a->nconv ? a->nconv : 1) * sizeof(double));
	for (size_t k = 0; k < g.njobs; k++)
		if (g.jobs[k].total && (rc = open_columns(q, a, &g.jobs[k])))
			return rc;
	qpar_for(nthr, g.njobs, place_task, &g);
	for (size_t k = 0; k < g.njobs; k++) /* jobs that may intern values */
		if (g.jobs[k].serial)
			place_task(&g, k, UINT32_MAX);
	for (size_t k = 0; k < g.njobs; k++)
		if (g.jobs[k].rc)
			return job_error(q, &g.jobs[k]);

	/* the jobs' tuples made global, in job order */
	for (size_t k = 0; k < g.njobs; k++) {
		struct ajob *j = &g.jobs[k];
		j->map = qa_alloc(&q->arena, (j->ntuples ? j->ntuples : 1) * sizeof(uint32_t));
		for (size_t t = 0; t < j->ntuples; t++)
			j->map[t] = attr_touch_get(q, a, j->keys + t * F_COUNT);
	}
	qpar_for(nthr, g.njobs, remap_task, &g);
	for (size_t k = 0; k < g.njobs; k++) {
		struct ajob *j = &g.jobs[k];
		if (j->opened)
			for (int f = 0; f < F_COUNT; f++)
				qbdcol_close(q, &j->cols[f]);
		qa_big_free(&q->arena, j->pass);
		qa_big_free(&q->arena, j->conv);
		qa_big_free(&q->arena, j->count);
		qa_big_free(&q->arena, j->at);
		qa_big_free(&q->arena, j->keys);
		qa_big_free(&q->arena, j->slots);
	}
	qa_big_free(&q->arena, keep);
	return 0;
}
