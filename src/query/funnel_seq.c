/*
 * funnel_seq.c - the common funnel: order "sequential" without exclusions or
 * breakdown, in a few passes that stay in cache.
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
 * chunk): a slice counts its entries per bucket, then writes them to its own
 * region of the entry array, grouped by bucket (a radix partition whose
 * second pass finds the slice's person ids still in cache). A chunk is in
 * time order, so each slice's entries of a bucket are a sorted run, and the
 * runs of a step's slices that do not overlap in time make one run
 * together.
 *
 * Walk (in parallel over buckets): a bucket's runs are copied next to each
 * other, those of steps 2..N merged into one, and the result walked beside
 * the step-1 run in (time, step) order, with the automaton's state per
 * person of the bucket in arrays that fit in a core's L2 cache. Step-1
 * entries, most of the rows, only store their time there.
 *
 * Canonical persons: the counting pass maps each row's stored id, so that
 * all of a person's rows land in their canonical person's bucket. Only ids
 * merged into another (a bitmap that stays in cache) read canonical[], once
 * per row, prefetched ahead: the counting pass keeps what it read for the
 * placing pass.
 *
 * The automaton is walk_sequential()'s in funnel.c (ClickHouse's default
 * mode) without exclusions; the tests check both against the references.
 */
#include "query/query_int.h"

#include <stdlib.h>
#include <string.h>

/* Person state of one bucket: about this much, so that it stays in L2 with
 * the bucket's entries. */
#define FS_STATE_BYTES (192 * 1024)
#define FS_MAX_BUCKETS 4096	  /* fan-out of the partition */
#define FS_SLICE       (1u << 20) /* most rows per partition task (a multiple of 64) */
#define FS_NO_TIME     INT64_MIN  /* no chain yet: beyond any window (see within()) */

/* The rows of one step in a slice of a chunk. */
struct fs_job {
	const struct query_chunk *c;
	size_t lo, hi;
	const uint64_t *pass; /* bit i: row lo + i passes the step's selector; NULL: all */
	uint32_t step;	      /* 0-based */
	uint64_t base;	      /* its entries are at e + base (room for hi - lo) */
	uint64_t *off;	      /* nb + 1: those of bucket b at e + base + [off[b], off[b + 1]) */
	int rc;
	uint32_t bad;
};

/* A worker's scratch and results. */
struct fs_worker {
	/* partition */
	uint32_t *canon; /* canonical ids of the slice's passing rows */
	uint64_t *pos;	 /* per bucket: where the slice's next entry goes */
	/* walk */
	uint64_t *buf, *tmp;   /* step 1's runs when they overlap, and merge room */
	uint64_t *rbuf, *rtmp; /* a later step's runs, and merge room */
	size_t *ends;	       /* run ends */
	uint64_t *key[2];      /* passing entries of the last two steps... */
	int64_t *start[2];     /* ... and the starts of their chains */
	int64_t *s0;	       /* per person: time of the latest step-1 entry, or FS_NO_TIME */
	int64_t *st;	       /* per person: start and time of the latest passing entry of
				* the previous step (start FS_NO_TIME: none yet) */
	uint8_t *lvl;	       /* per person: furthest step >= 2 reached (0: none) */
	uint64_t levels[QUERY_MAX_STEPS + 1]; /* persons by level */
	int64_t *ms[QUERY_MAX_STEPS];	      /* conversion times by step */
	uint64_t *hist;			      /* and by qfunnel_bin(), QFUNNEL_BINS per step */
	size_t nms[QUERY_MAX_STEPS], capms[QUERY_MAX_STEPS];
	int rc;
};

struct fs_par {
	struct fs_job *jobs;
	size_t njobs;
	size_t *group_last; /* per run group: its last job (jobs of a group are consecutive) */
	size_t ngroups;
	size_t sgroup[QUERY_MAX_STEPS + 1]; /* step s's groups: [sgroup[s], sgroup[s + 1]) */
	const uint32_t *canonical;
	const uint64_t *moved; /* ids whose canonical id is another; NULL: none */
	uint32_t np;
	unsigned shift, sbits; /* LB and SB above */
	size_t nb;	       /* buckets */
	int64_t tmin, window;
	int nsteps;
	uint64_t *e; /* the entries */
	struct fs_worker *w;
	uint64_t *persons;
	int64_t p_step;
	bool p_dropped;
	struct qarena *arena;
};

/* ---- partition ------------------------------------------------------ */

/* Rows between prefetching a row's canonical id and reading it: enough to
 * keep many misses in flight (canonical[] is as big as the person space). */
#define FS_AHEAD 64

static inline uint64_t is_moved(const uint64_t *moved, uint32_t p)
{
	return (moved[p >> 6] >> (p & 63)) & 1;
}

/* Counts slice j's entries per bucket into j->off[b + 1], keeping the
 * canonical ids it reads in w->canon. False when an id is out of range. */
static bool count_slice(const struct fs_par *fp, struct fs_job *j, struct fs_worker *w)
{
	const uint32_t *pid = j->c->pid, *canonical = fp->canonical;
	const uint64_t *pass = j->pass, *moved = fp->moved;
	uint64_t *cnt = j->off + 1;
	uint32_t np = fp->np, *canon = w->canon;
	unsigned shift = fp->shift;
	size_t k = 0;
	for (size_t i = j->lo; i < j->hi; i++) {
		if (moved && i + FS_AHEAD < j->hi) {
			/* no branch: the rows of merged ids come at random */
			uint32_t q = pid[i + FS_AHEAD];
			q = q < np ? q : 0;
			__builtin_prefetch(&canonical[q & (0u - (uint32_t)is_moved(moved, q))]);
		}
		if (pass && !qbit(pass, i - j->lo))
			continue;
		uint32_t p = pid[i], c = p;
		if (p >= np) {
			j->bad = p;
			return false;
		}
		if (moved) {
			uint64_t mb = is_moved(moved, p);
			c = canonical[p & (0u - (uint32_t)mb)];
			c = mb ? c : p;
			if (c >= np) {
				j->bad = p;
				return false;
			}
		}
		canon[k++] = c;
		cnt[c >> shift]++;
	}
	return true;
}

/* Writes slice j's entries, grouped by bucket. (Stores straight to their
 * place beat write-combining buffers flushed around the caches here.) */
static void place_slice(const struct fs_par *fp, const struct fs_job *j, struct fs_worker *w)
{
	const uint32_t *canon = w->canon;
	const int64_t *ts = j->c->ts;
	const uint64_t *pass = j->pass;
	uint64_t *pos = w->pos, *out = fp->e + j->base;
	unsigned shift = fp->shift, tshift = fp->shift + fp->sbits;
	uint64_t step = (uint64_t)j->step << shift, lmask = ((uint64_t)1 << shift) - 1;
	int64_t tmin = fp->tmin;
	memcpy(pos, j->off, fp->nb * sizeof(*pos));
	size_t k = 0;
	for (size_t i = j->lo; i < j->hi; i++) {
		if (pass && !qbit(pass, i - j->lo))
			continue;
		uint32_t p = canon[k++];
		uint64_t t = (uint64_t)(ts[i] - tmin);
		out[pos[p >> shift]++] = t << tshift | step | (p & lmask);
	}
}

static void part_task(void *arg, size_t ji, unsigned worker)
{
	struct fs_par *fp = arg;
	struct fs_job *j = &fp->jobs[ji];
	struct fs_worker *w = &fp->w[worker];
	memset(j->off, 0, (fp->nb + 1) * sizeof(*j->off));
	if (!count_slice(fp, j, w)) {
		j->rc = TD_ECORRUPT;
		return;
	}
	for (size_t b = 0; b < fp->nb; b++)
		j->off[b + 1] += j->off[b];
	place_slice(fp, j, w);
}

/* ---- one bucket ----------------------------------------------------- */

/* Merges two runs sorted by (entry >> shift) into out; stable. */
static void merge2(const uint64_t *a, size_t na, const uint64_t *b, size_t nb, uint64_t *out,
		   unsigned shift)
{
	size_t i = 0, j = 0, k = 0;
	while (i < na && j < nb) {
		uint64_t x = a[i], y = b[j];
		bool take_b = (y >> shift) < (x >> shift);
		out[k++] = take_b ? y : x;
		j += take_b;
		i += !take_b;
	}
	if (i < na)
		memcpy(out + k, a + i, (na - i) * sizeof(*a));
	if (j < nb)
		memcpy(out + k, b + j, (nb - j) * sizeof(*b));
}

/* Merges the k runs of x (run r ends at ends[r]; ends[k - 1] is the length)
 * pairwise, through y (as long as x), until one is left; returns where it is
 * (x or y). ends is overwritten. */
static const uint64_t *merge_runs(uint64_t *x, uint64_t *y, size_t *ends, size_t k, unsigned shift)
{
	while (k > 1) {
		size_t nk = 0, from = 0;
		for (size_t r = 0; r < k; r += 2) {
			if (r + 1 == k) {
				memcpy(y + from, x + from, (ends[r] - from) * sizeof(*x));
				ends[nk++] = ends[r];
				break;
			}
			merge2(x + from, ends[r] - from, x + ends[r], ends[r + 1] - ends[r],
			       y + from, shift);
			from = ends[r + 1];
			ends[nk++] = from;
		}
		uint64_t *t = x;
		x = y;
		y = t;
		k = nk;
	}
	return x;
}

/* Room for n more conversion times of every step; false when out of memory. */
static bool times_room(struct fs_par *fp, struct fs_worker *w, size_t n)
{
	for (int k = 1; k < fp->nsteps; k++) {
		if (w->capms[k] - w->nms[k] >= n)
			continue;
		size_t cap = w->capms[k] ? w->capms[k] : 1024;
		while (cap - w->nms[k] < n)
			cap *= 2;
		int64_t *p = qa_try_big_realloc(fp->arena, w->ms[k], cap * sizeof(int64_t));
		if (!p)
			return false;
		w->ms[k] = p;
		w->capms[k] = cap;
	}
	return true;
}

/* Whether a chain started at `from` may take a step at t (from <= t or
 * from == FS_NO_TIME, which never may). */
static inline bool within(int64_t from, int64_t t, int64_t window)
{
	return (uint64_t)t - (uint64_t)from <= (uint64_t)window;
}

/* The entries of bucket b from job j. */
static inline const uint64_t *job_entries(const struct fs_par *fp, size_t j, size_t b, size_t *n)
{
	const struct fs_job *jb = &fp->jobs[j];
	*n = (size_t)(jb->off[b + 1] - jb->off[b]);
	return fp->e + jb->base + jb->off[b];
}

/* Step s's entries of bucket b in (time) order, in one array: its runs
 * copied to buf and merged through tmp if there are several. */
static const uint64_t *step_run(const struct fs_par *fp, struct fs_worker *w, size_t b, int s,
				uint64_t *buf, uint64_t *tmp, size_t *n)
{
	size_t at = 0, k = 0, ji = fp->sgroup[s] ? fp->group_last[fp->sgroup[s] - 1] + 1 : 0;
	for (size_t g = fp->sgroup[s]; g < fp->sgroup[s + 1]; g++) {
		size_t from = at;
		for (; ji <= fp->group_last[g]; ji++) {
			size_t c;
			const uint64_t *e = job_entries(fp, ji, b, &c);
			memcpy(buf + at, e, c * sizeof(*buf));
			at += c;
		}
		if (at > from)
			w->ends[k++] = at;
	}
	*n = at;
	return merge_runs(buf, tmp, w->ends, k, fp->shift);
}

/* Step 1's entries of a bucket, read in place when they make one run. */
struct fs_cursor {
	const uint64_t *p, *end;
	size_t j, jend; /* next job, and the last one */
	size_t b;
};

static bool cursor_next(const struct fs_par *fp, struct fs_cursor *c)
{
	while (c->j <= c->jend) {
		size_t n;
		c->p = job_entries(fp, c->j++, c->b, &n);
		c->end = c->p + n;
		if (n)
			return true;
	}
	return false;
}

static void cursor_open(const struct fs_par *fp, struct fs_worker *w, size_t b, struct fs_cursor *c)
{
	*c = (struct fs_cursor){.b = b, .j = 1, .jend = 0};
	if (fp->sgroup[1] == 0)
		return; /* no step-1 rows */
	if (fp->sgroup[1] == 1) {
		c->j = 0;
		c->jend = fp->group_last[0];
		cursor_next(fp, c);
		return;
	}
	size_t n;
	c->p = step_run(fp, w, b, 0, w->buf, w->tmp, &n);
	c->end = c->p + n;
}

/*
 * Stage 1: step-2 entries (R) against step-1 entries (the cursor), in
 * (time, step) order. A step-1 entry only records its time: the latest
 * start of a chain at step 1 is the latest step-1 entry. A step-2 entry
 * passes if that start is within the window; passing entries go to key /
 * start for stage 2 (when there is one).
 */
static size_t stage_first(const struct fs_par *fp, struct fs_worker *w, struct fs_cursor *a,
			  const uint64_t *R, size_t nr, uint64_t *key, int64_t *start)
{
	unsigned shift = fp->shift, tshift = fp->shift + fp->sbits;
	uint64_t lmask = ((uint64_t)1 << shift) - 1;
	int64_t *s0 = w->s0, *ms = w->ms[1], win = fp->window;
	uint8_t *lvl = w->lvl;
	size_t nms = w->nms[1], nl = 0;
	bool more = fp->nsteps > 2;
	for (size_t i = 0; i < nr; i++) {
		uint64_t x = R[i], lim = x & ~lmask;
		for (;;) {
			for (; a->p < a->end && *a->p < lim; a->p++)
				s0[*a->p & lmask] = (int64_t)(*a->p >> tshift);
			if (a->p < a->end || !cursor_next(fp, a))
				break;
		}
		size_t p = (size_t)(x & lmask);
		int64_t t = (int64_t)(x >> tshift), from = s0[p];
		if (!within(from, t, win))
			continue;
		/* first time at step 2: no branch, persons come in no order */
		bool reached = lvl[p] < 2;
		lvl[p] = reached ? 2 : lvl[p];
		ms[nms] = t - from;
		nms += reached;
		if (more) {
			key[nl] = x;
			start[nl++] = from;
		}
	}
	/* later step-1 entries only tell who is in the funnel */
	do {
		for (; a->p < a->end; a->p++)
			s0[*a->p & lmask] = 0;
	} while (cursor_next(fp, a));
	w->nms[1] = nms;
	return nl;
}

/*
 * Stage k (k >= 2, 0-based step k): step-k entries (R) against the passing
 * entries of step k - 1 (pk / ps, in time order). A step-k entry passes if
 * the chain of the latest passing step-(k-1) entry before it started within
 * the window; passing entries go to key / start for the next stage.
 */
static size_t stage_next(const struct fs_par *fp, struct fs_worker *w, unsigned k,
			 const uint64_t *pk, const int64_t *ps, size_t np, const uint64_t *R,
			 size_t nr, uint64_t *key, int64_t *start, size_t P)
{
	unsigned shift = fp->shift, tshift = fp->shift + fp->sbits;
	uint64_t lmask = ((uint64_t)1 << shift) - 1;
	int64_t *st = w->st, *ms = w->ms[k], win = fp->window;
	uint8_t *lvl = w->lvl;
	size_t nms = w->nms[k], nl = 0, j = 0;
	bool more = (int)k + 1 < fp->nsteps;
	for (size_t p = 0; p < P; p++)
		st[2 * p] = FS_NO_TIME;
	for (size_t i = 0; i < nr; i++) {
		uint64_t x = R[i], lim = x & ~lmask;
		for (; j < np && pk[j] < lim; j++) {
			size_t q = (size_t)(pk[j] & lmask);
			st[2 * q] = ps[j];
			st[2 * q + 1] = (int64_t)(pk[j] >> tshift);
		}
		size_t p = (size_t)(x & lmask);
		int64_t t = (int64_t)(x >> tshift), from = st[2 * p];
		if (!within(from, t, win))
			continue;
		bool reached = lvl[p] <= k;
		lvl[p] = (uint8_t)(reached ? k + 1 : lvl[p]);
		ms[nms] = t - st[2 * p + 1];
		nms += reached;
		if (more) {
			key[nl] = x;
			start[nl++] = from;
		}
	}
	w->nms[k] = nms;
	return nl;
}

/* Adds step k's times from the from-th on to the worker's histogram. */
static void bin_times(struct fs_worker *w, unsigned k, size_t from)
{
	uint64_t *h = w->hist + (size_t)k * QFUNNEL_BINS;
	for (size_t i = from; i < w->nms[k]; i++)
		h[qfunnel_bin((uint64_t)w->ms[k][i])]++;
}

/* Walks bucket b, a stage per step after the first. */
static void walk_task(void *arg, size_t b, unsigned worker)
{
	struct fs_par *fp = arg;
	struct fs_worker *w = &fp->w[worker];
	if (w->rc)
		return;
	size_t P = (size_t)1 << fp->shift, first = b << fp->shift;
	if (P > fp->np - first)
		P = fp->np - first;
	int64_t *s0 = w->s0;
	uint8_t *lvl = w->lvl;
	for (size_t p = 0; p < P; p++)
		s0[p] = FS_NO_TIME;
	memset(lvl, 0, P);

	struct fs_cursor a;
	cursor_open(fp, w, b, &a);
	size_t nr, nl;
	const uint64_t *R = step_run(fp, w, b, 1, w->rbuf, w->rtmp, &nr);
	if (!times_room(fp, w, nr)) {
		w->rc = TD_ENOMEM;
		return;
	}
	size_t from = w->nms[1];
	nl = stage_first(fp, w, &a, R, nr, w->key[0], w->start[0]);
	bin_times(w, 1, from);
	for (int k = 2; k < fp->nsteps && nl; k++) {
		R = step_run(fp, w, b, k, w->rbuf, w->rtmp, &nr);
		if (!times_room(fp, w, nr)) {
			w->rc = TD_ENOMEM;
			return;
		}
		/* stage k reads the list stage k - 1 wrote, and writes the other */
		from = w->nms[k];
		nl = stage_next(fp, w, (unsigned)k, w->key[k % 2], w->start[k % 2], nl, R, nr,
				w->key[(k + 1) % 2], w->start[(k + 1) % 2], P);
		bin_times(w, (unsigned)k, from);
	}

	for (size_t p = 0; p < P; p++) {
		unsigned lv = lvl[p] ? lvl[p] : s0[p] != FS_NO_TIME;
		w->levels[lv]++;
		if (fp->persons && (fp->p_dropped ? lv + 1 == fp->p_step : lv >= fp->p_step)) {
			size_t id = first + p; /* buckets may share a word of the bitmap */
			__atomic_fetch_or(&fp->persons[id >> 6], 1ULL << (id & 63),
					  __ATOMIC_RELAXED);
		}
	}
}

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
	size_t per = 8 + 1 + 16 * (size_t)(fp->nsteps - 2);
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
	uint64_t levels[QUERY_MAX_STEPS + 1] = {0};
	size_t nt = 0;
	for (unsigned t = 0; t < nthr; t++) {
		for (int l = 0; l <= N; l++)
			levels[l] += fp->w[t].levels[l];
		for (int s = 0; s < N; s++)
			nt += fp->w[t].nms[s];
	}
	if (nt >= UINT32_MAX)
		return qerr_code(q, TD_ETOOLARGE, "query: more than 4 billion conversion times");
	for (int s = 0; s < N; s++) {
		fs->count[s] = 0;
		for (int l = s + 1; l <= N; l++)
			fs->count[s] += levels[l];
	}
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
 * at most FS_SLICE (so that a slice's ids stay in cache between its two
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
	if (fp.canonical)
		fp.moved = qcanon_moved(q);
	for (size_t i = 0; i < fp.njobs; i++)
		fp.jobs[i].off = qa_big_realloc(&q->arena, NULL, (fp.nb + 1) * sizeof(uint64_t));
	fp.e = qa_big_realloc(&q->arena, NULL, (rows ? rows : 1) * sizeof(uint64_t));
	fp.w = qa_calloc(&q->arena, nthr, sizeof(*fp.w));
	alloc_part(q, &fp, nthr);
	qpar_for(nthr, fp.njobs, part_task, &fp);
	for (size_t i = 0; i < fp.njobs; i++)
		if (fp.jobs[i].rc)
			return qerr_pid(q, fp.jobs[i].bad);
	for (size_t i = 0; i < passes.n; i++)
		qa_big_free(&q->arena, ((uint64_t **)passes.p)[i]);
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
	qpar_for(nthr, fp.nb, walk_task, &fp);
	for (unsigned t = 0; t < nthr; t++)
		if (fp.w[t].rc)
			return qerr_code(q, fp.w[t].rc,
					 "query: not enough memory to run this query");
	qa_big_free(&q->arena, fp.e);
	for (size_t i = 0; i < fp.njobs; i++)
		qa_big_free(&q->arena, fp.jobs[i].off);
	rc = gather(q, &fp, nthr, fs);
	free_workers(q, &fp, nthr);
	return rc;
}
