/*
 * funnel_seq.c - the common funnel, order "sequential" without exclusions
 * or breakdown, in a few passes that stay in cache: the plan here, the
 * partition in funnel_part.c, the walk of a bucket in funnel_walk.c.
 *
 * Every row of a step's event that passes the step's selector becomes one
 * 8-byte entry:
 *
 *   bits 63 .. SB+LB   time: ms after the earliest row taking part
 *   bits SB+LB-1 .. LB step (0-based)
 *   bits LB-1 .. 0     canonical person, inside its person bucket
 *
 * where a person bucket is a range of 2^LB canonical ids. Entries compared
 * without their low LB bits are in (time, step) order: the order in which
 * ClickHouse's windowFunnel() takes its (timestamp, step) pairs, so that
 * rows at one millisecond are taken in step order.
 *
 * Partition (in parallel over slices of up to FS_SLICE rows of a step's
 * chunk): a slice counts its entries per bucket, then writes them to its
 * own region of the entry array, grouped by bucket (a radix partition whose
 * second pass reads what the first kept). A chunk is in time order, so each
 * slice's entries of a bucket are a sorted run, and the runs of a step's
 * slices that do not overlap in time make one run together (a group).
 *
 * Walk (in parallel over buckets), a stage per step after the first, with
 * the automaton's state per person of the bucket in arrays that fit in a
 * core's L2 cache: stage 1 reads the step-1 entries in place beside the
 * step-2 ones (step-1 entries, most of the rows, only store their time);
 * stage k takes the step-(k+1) entries against the entries of step k that
 * passed stage k - 1. A step's groups are merged first if there are
 * several (chunks of one event that overlap in time).
 *
 * Canonical persons: the counting pass maps each row's stored id, so that
 * all of a person's rows land in their canonical person's bucket. Only ids
 * merged into another (a bitmap that stays in cache) read canonical[], once
 * per row, prefetched ahead.
 *
 * The automaton is walk_sequential()'s in funnel.c (ClickHouse's default
 * mode) without exclusions; the tests check both against the references.
 */
#include "query/funnel_seq.h"

#include <stdlib.h>
#include <string.h>

/* ---- plan ----------------------------------------------------------- */

static int cmp_job(const void *pa, const void *pb)
{
	const struct fs_job *a = pa, *b = pb;
	if (a->step != b->step)
		return a->step < b->step ? -1 : 1;
	int64_t x = a->c->ts[a->lo], y = b->c->ts[b->lo];
	if (x != y)
		return x < y ? -1 : 1;
	/* keep the source's order otherwise: qsort is not stable */
	return a->rc < b->rc ? -1 : a->rc > b->rc;
}

/* Every (step, chunk) with rows in the range, filters evaluated (on the
 * query's thread: they read columns), cut into slices of `slice` rows (a
 * multiple of 64) and sorted by step then time. The filters' bitmaps go to
 * passes too (to be freed). */
static int make_jobs(struct qctx *q, const struct qfunnel_seq *fs, struct qvec *jobs,
		     struct qvec *passes, size_t slice)
{
	for (int s = 0; s < fs->nsteps; s++) {
		const struct qsel *sel = &fs->steps[s];
		const struct query_chunk *chunks;
		size_t nchunks = q->src->chunks(q->src->ctx, sel->event, &chunks);
		for (size_t ci = 0; ci < nchunks; ci++) {
			size_t lo, hi;
			qchunk_range(q, &chunks[ci], &lo, &hi);
			if (lo >= hi)
				continue;
			uint64_t *pass = NULL;
			if (sel->nf) {
				pass = qa_big_realloc(&q->arena, NULL,
						      (hi - lo + 63) / 64 * sizeof(uint64_t));
				*(uint64_t **)qvec_push(&q->arena, passes) = pass;
				int rc = qsel_eval(q, sel, &chunks[ci], lo, hi, pass);
				if (rc)
					return rc;
			}
			for (size_t a = lo; a < hi; a += slice) {
				struct fs_job *j = qvec_push(&q->arena, jobs);
				*j = (struct fs_job){.c = &chunks[ci],
						     .lo = a,
						     .hi = hi - a > slice ? a + slice : hi,
						     .pass = pass ? pass + (a - lo) / 64 : NULL,
						     .step = (uint32_t)s};
				j->rc = (int)jobs->n; /* the source's order, for cmp_job */
			}
		}
	}
	q_qsort(jobs->p, jobs->n, sizeof(struct fs_job), cmp_job);
	struct fs_job *j = jobs->p;
	for (size_t i = 0; i < jobs->n; i++)
		j[i].rc = 0;
	return 0;
}

/* Run groups: consecutive jobs of one step, each starting no earlier than
 * the previous one ends, so that their entries in a bucket make one run. */
static void make_groups(struct qctx *q, struct fs_par *fp)
{
	fp->group_last = qa_alloc(&q->arena, (fp->njobs ? fp->njobs : 1) * sizeof(size_t));
	fp->ngroups = 0;
	int s = 0;
	for (size_t i = 0; i < fp->njobs; i++) {
		const struct fs_job *j = &fp->jobs[i], *n = i + 1 < fp->njobs ? j + 1 : NULL;
		for (; s <= (int)j->step; s++)
			fp->sgroup[s] = fp->ngroups;
		bool joins = n && n->step == j->step && n->c->ts[n->lo] >= j->c->ts[j->hi - 1];
		if (!joins)
			fp->group_last[fp->ngroups++] = i;
	}
	for (; s <= fp->nsteps; s++)
		fp->sgroup[s] = fp->ngroups;
}

/* Bits for the step, and person buckets: state of about FS_STATE_BYTES
 * each, at least four buckets per thread, at most FS_MAX_BUCKETS. */
static void choose_layout(struct fs_par *fp, unsigned nthr)
{
	fp->sbits = 1;
	while ((1 << fp->sbits) < fp->nsteps)
		fp->sbits++;
	size_t per = sizeof(int64_t) * 3 + 1; /* s0, st, lvl */
	unsigned shift = 0;
	while (((size_t)2 << shift) * per <= FS_STATE_BYTES &&
	       ((uint64_t)fp->np >> (shift + 1)) >= 4 * (uint64_t)nthr)
		shift++;
	while (((uint64_t)fp->np >> shift) > FS_MAX_BUCKETS)
		shift++;
	fp->shift = shift;
	fp->nb = fp->np ? (((size_t)fp->np - 1) >> shift) + 1 : 1;
}

/* The walk's results, summed over workers. */
static int gather(struct qctx *q, struct fs_par *fp, unsigned nthr, struct qfunnel_seq *fs)
{
	int N = fp->nsteps;
	size_t nt = 0;
	for (int s = 0; s < N; s++) {
		fs->count[s] = 0;
		for (unsigned t = 0; t < nthr; t++) {
			fs->count[s] += fp->w[t].count[s];
			nt += fp->w[t].nms[s];
		}
	}
	if (nt >= UINT32_MAX)
		return qerr_code(q, TD_ETOOLARGE, "query: more than 4 billion conversion times");
	fs->ms = qa_big_realloc(&q->arena, NULL, (nt ? nt : 1) * sizeof(int64_t));
	fs->start = qa_alloc(&q->arena, ((size_t)N + 1) * sizeof(uint32_t));
	size_t at = 0;
	for (int s = 0; s < N; s++) {
		fs->start[s] = (uint32_t)at;
		for (unsigned t = 0; t < nthr; t++) {
			struct fs_worker *w = &fp->w[t];
			if (w->nms[s])
				memcpy(fs->ms + at, w->ms[s], w->nms[s] * sizeof(int64_t));
			at += w->nms[s];
		}
	}
	fs->start[N] = (uint32_t)at;
	size_t nh = (size_t)N * QFUNNEL_BINS;
	fs->hist = qa_big_realloc(&q->arena, NULL, nh * sizeof(uint64_t));
	memset(fs->hist, 0, nh * sizeof(uint64_t));
	for (unsigned t = 0; t < nthr; t++)
		for (size_t i = 0; i < nh; i++)
			fs->hist[i] += fp->w[t].hist[i];
	return 0;
}

/* Frees the arena blocks of the walk. */
static void free_workers(struct qctx *q, struct fs_par *fp, unsigned nthr)
{
	for (unsigned t = 0; t < nthr; t++) {
		struct fs_worker *w = &fp->w[t];
		void *blocks[] = {w->canon, w->pos,    w->buf,	  w->tmp,      w->rbuf,
				  w->rtmp,  w->key[0], w->key[1], w->start[0], w->start[1],
				  w->ends,  w->s0,     w->st,	  w->lvl,      w->hist};
		for (size_t i = 0; i < TD_ARRAY_LEN(blocks); i++)
			qa_big_free(&q->arena, blocks[i]);
		for (int s = 0; s < fp->nsteps; s++)
			qa_big_free(&q->arena, w->ms[s]);
		memset(w, 0, sizeof(*w));
	}
}

/* The partition's scratch, per worker. */
static void alloc_part(struct qctx *q, struct fs_par *fp, unsigned nthr)
{
	size_t slice = 1;
	for (size_t i = 0; i < fp->njobs; i++)
		slice = TD_MAX(slice, fp->jobs[i].hi - fp->jobs[i].lo);
	for (unsigned t = 0; t < nthr; t++) {
		struct fs_worker *w = &fp->w[t];
		w->canon = qa_big_realloc(&q->arena, NULL, slice * sizeof(uint32_t));
		w->pos = qa_big_realloc(&q->arena, NULL, fp->nb * sizeof(uint64_t));
	}
}

/* The walk's scratch, per worker: maxb is the largest bucket. */
static void alloc_walk(struct qctx *q, struct fs_par *fp, unsigned nthr, size_t maxb)
{
	size_t P = (size_t)1 << fp->shift;
	for (unsigned t = 0; t < nthr; t++) {
		struct fs_worker *w = &fp->w[t];
		uint64_t **u[] = {&w->buf, &w->tmp, &w->rbuf, &w->rtmp, &w->key[0], &w->key[1]};
		for (size_t i = 0; i < TD_ARRAY_LEN(u); i++)
			*u[i] = qa_big_realloc(&q->arena, NULL, maxb * sizeof(uint64_t));
		w->start[0] = qa_big_realloc(&q->arena, NULL, maxb * sizeof(int64_t));
		w->start[1] = qa_big_realloc(&q->arena, NULL, maxb * sizeof(int64_t));
		w->ends = qa_big_realloc(&q->arena, NULL, (fp->ngroups + 1) * sizeof(size_t));
		w->s0 = qa_big_realloc(&q->arena, NULL, P * sizeof(int64_t));
		w->st = qa_big_realloc(&q->arena, NULL, 2 * P * sizeof(int64_t));
		w->lvl = qa_big_realloc(&q->arena, NULL, P);
		size_t nh = (size_t)fp->nsteps * QFUNNEL_BINS;
		w->hist = qa_big_realloc(&q->arena, NULL, nh * sizeof(uint64_t));
		memset(w->hist, 0, nh * sizeof(uint64_t));
	}
}

/* Rows per partition task: a few tasks per thread (so that they balance),
 * at most FS_SLICE (a worker keeps a slice's canonical ids between its two
 * passes). */
static size_t slice_rows(struct qctx *q, const struct qfunnel_seq *fs)
{
	uint64_t rows = 0;
	for (int s = 0; s < fs->nsteps; s++) {
		const struct query_chunk *chunks;
		size_t nchunks = q->src->chunks(q->src->ctx, fs->steps[s].event, &chunks);
		for (size_t ci = 0; ci < nchunks; ci++) {
			size_t lo, hi;
			qchunk_range(q, &chunks[ci], &lo, &hi);
			rows += hi - lo;
		}
	}
	uint64_t want = rows / (4 * (uint64_t)qpar_threads(q, rows)) + 63;
	want -= want % 64;
	return want < 64 ? 64 : want > FS_SLICE ? FS_SLICE : (size_t)want;
}

int qfunnel_seq(struct qctx *q, struct qfunnel_seq *fs)
{
	struct qvec jobs, passes;
	qvec_init(&jobs, sizeof(struct fs_job));
	qvec_init(&passes, sizeof(uint64_t *));
	int rc = make_jobs(q, fs, &jobs, &passes, slice_rows(q, fs));
	if (rc)
		return rc;
	struct fs_par fp = {.jobs = jobs.p,
			    .njobs = jobs.n,
			    .canonical = q->src->canonical,
			    .np = q->src->npersons,
			    .nsteps = fs->nsteps,
			    .persons = fs->persons,
			    .p_step = fs->p_step,
			    .p_dropped = fs->p_dropped,
			    .arena = &q->arena};
	uint64_t rows = 0;
	int64_t tmin = INT64_MAX, tmax = INT64_MIN;
	for (size_t i = 0; i < fp.njobs; i++) {
		struct fs_job *j = &fp.jobs[i];
		j->base = rows;
		rows += j->hi - j->lo;
		tmin = TD_MIN(tmin, j->c->ts[j->lo]);
		tmax = TD_MAX(tmax, j->c->ts[j->hi - 1]);
	}
	unsigned nthr = qpar_threads(q, rows);
	choose_layout(&fp, nthr);
	uint64_t span = fp.njobs ? (uint64_t)tmax - (uint64_t)tmin : 0;
	unsigned tbits = 64 - fp.sbits - fp.shift;
	if (tbits < 64 && span >> tbits)
		return QFUNNEL_SEQ_UNSUITABLE;
	fp.tmin = tmin;
	/* times are at most span apart: a longer window is the same */
	fp.window = fs->window < (int64_t)span ? fs->window : (int64_t)span;
	make_groups(q, &fp);

	/* partition */
	if (fp.canonical && (fp.moved = qcanon_moved(q)) && fp.np >= FS_PACKED_FROM)
		qcanon_pack(q, &fp.pk);
	for (size_t i = 0; i < fp.njobs; i++)
		fp.jobs[i].off = qa_big_realloc(&q->arena, NULL, (fp.nb + 1) * sizeof(uint64_t));
	fp.e = qa_big_realloc(&q->arena, NULL, (rows ? rows : 1) * sizeof(uint64_t));
	fp.w = qa_calloc(&q->arena, nthr, sizeof(*fp.w));
	alloc_part(q, &fp, nthr);
	qpar_for(nthr, fp.njobs, fs_part_task, &fp);
	for (size_t i = 0; i < fp.njobs; i++)
		if (fp.jobs[i].rc)
			return qerr_pid(q, fp.jobs[i].bad);
	for (size_t i = 0; i < passes.n; i++)
		qa_big_free(&q->arena, ((uint64_t **)passes.p)[i]);
	qa_big_free(&q->arena, fp.pk.rank);
	qa_big_free(&q->arena, fp.pk.dense);
	free_workers(q, &fp, nthr);

	/* walk */
	size_t maxb = 1;
	for (size_t b = 0; b < fp.nb; b++) {
		size_t n = 0;
		for (size_t i = 0; i < fp.njobs; i++)
			n += (size_t)(fp.jobs[i].off[b + 1] - fp.jobs[i].off[b]);
		maxb = TD_MAX(maxb, n);
	}
	alloc_walk(q, &fp, nthr, maxb);
	qpar_for(nthr, fp.nb, fs_walk_task, &fp);
	for (unsigned t = 0; t < nthr; t++)
		if (fp.w[t].rc)
			return qerr_nomem(q);
	qa_big_free(&q->arena, fp.e);
	for (size_t i = 0; i < fp.njobs; i++)
		qa_big_free(&q->arena, fp.jobs[i].off);
	rc = gather(q, &fp, nthr, fs);
	free_workers(q, &fp, nthr);
	return rc;
}
