/*
 * funnel_walk.c - the walk of one person bucket of the sequential funnel
 * path (see funnel_seq.c): the automaton of ClickHouse's windowFunnel()
 * default mode over the bucket's entries, a stage per step.
 */
#include "query/funnel_seq.h"

#include <string.h>

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

/* Room for n more conversion times of 0-based step k (the stages append
 * without checking); false when out of memory. */
static bool times_room(struct fs_par *fp, struct fs_worker *w, int k, size_t n)
{
	if (w->capms[k] - w->nms[k] >= n)
		return true;
	size_t cap = w->capms[k] ? w->capms[k] : 1024;
	while (cap - w->nms[k] < n)
		cap *= 2;
	int64_t *p = qa_try_big_realloc(fp->arena, w->ms[k], cap * sizeof(int64_t));
	if (!p)
		return false;
	w->ms[k] = p;
	w->capms[k] = cap;
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

/* Step 1's entries of a bucket, read in place when they make one run (the
 * common case: a step's chunks follow each other in time). */
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
 * Stage k (k >= 2): the entries of step k + 1 (R; 0-based step k) against
 * those of step k that passed stage k - 1 (pk / ps, in time order). One
 * passes if the chain of the latest passing step-k entry before it started
 * within the window (the latest start is the best: starts only grow);
 * passing entries go to key / start for the next stage.
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

/* Counts the bucket's persons by level (lvl[] becomes the level: those of
 * level 1 reached only step 1), and lists them if asked. Four histograms
 * take turns, so that the counts of the common levels (0 and 1) do not
 * wait on each other. */
static void count_levels(const struct fs_par *fp, struct fs_worker *w, size_t P, size_t first)
{
	uint8_t *lvl = w->lvl;
	const int64_t *s0 = w->s0;
	uint32_t h[4][QUERY_MAX_STEPS + 1] = {{0}};
	for (size_t p = 0; p < P; p++) {
		unsigned lv = lvl[p] + (lvl[p] == 0 && s0[p] != FS_NO_TIME);
		lvl[p] = (uint8_t)lv;
		h[p & 3][lv]++;
	}
	for (int s = 0; s < fp->nsteps; s++)
		for (int l = s + 1; l <= fp->nsteps; l++)
			w->count[s] += (uint64_t)h[0][l] + h[1][l] + h[2][l] + h[3][l];
	if (!fp->persons)
		return;
	for (size_t p = 0; p < P; p++) {
		unsigned lv = lvl[p];
		if (fp->p_dropped ? lv + 1 == fp->p_step : lv >= fp->p_step) {
			size_t id = first + p; /* buckets may share a word of the bitmap */
			__atomic_fetch_or(&fp->persons[id >> 6], 1ULL << (id & 63),
					  __ATOMIC_RELAXED);
		}
	}
}

/* Walks bucket b, a stage per step after the first. */
void fs_walk_task(void *arg, size_t b, unsigned worker)
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
	if (!times_room(fp, w, 1, nr)) {
		w->rc = TD_ENOMEM;
		return;
	}
	size_t from = w->nms[1];
	nl = stage_first(fp, w, &a, R, nr, w->key[0], w->start[0]);
	bin_times(w, 1, from);
	for (int k = 2; k < fp->nsteps && nl; k++) {
		R = step_run(fp, w, b, k, w->rbuf, w->rtmp, &nr);
		if (!times_room(fp, w, k, nr)) {
			w->rc = TD_ENOMEM;
			return;
		}
		/* stage k reads the list stage k - 1 wrote, and writes the other */
		from = w->nms[k];
		nl = stage_next(fp, w, (unsigned)k, w->key[k % 2], w->start[k % 2], nl, R, nr,
				w->key[(k + 1) % 2], w->start[(k + 1) % 2], P);
		bin_times(w, (unsigned)k, from);
	}

	count_levels(fp, w, P, first);
}
