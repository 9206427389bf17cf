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
#define FS_MAX_BUCKETS 4096	       /* fan-out of the partition */
#define FS_SLICE       (1u << 20)      /* most rows per partition task (a multiple of 64) */
#define FS_NO_TIME     (INT64_MIN / 2) /* no step-1 row yet: beyond any window */

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
	uint64_t *buf, *tmp; /* a bucket's entries, and merge room */
	size_t *ends;	     /* run ends of a bucket */
	int64_t *s0;	     /* per person: time of the latest step-1 entry, or FS_NO_TIME */
	uint8_t *lvl;	     /* per person: furthest step >= 2 reached (0: none) */
	/* per person, for steps j = 2..N-1 (1-based): start and time of the step-j
	 * entry of the latest-starting chain that reached step j (valid when
	 * lvl >= j) */
	int64_t *st;
	int64_t sink[2];		      /* what the last step would store there */
	uint64_t levels[QUERY_MAX_STEPS + 1]; /* persons by level */
	int64_t *ms[QUERY_MAX_STEPS];	      /* conversion times by step */
	size_t nms[QUERY_MAX_STEPS], capms[QUERY_MAX_STEPS];
	int rc;
};

struct fs_par {
	struct fs_job *jobs;
	size_t njobs;
	size_t *group_last; /* per run group: its last job (jobs of a group are consecutive) */
	size_t ngroups, ngroups0; /* groups, and those of step 1 (first) */
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

/* Copies bucket b's runs into buf, in job order: those of step 1 first,
 * with their ends in ends[0..*na), then the others, with their ends
 * (relative to where they start, returned) in ends[*na..*na + *nr). Empty
 * runs are left out. Sets *n to the bucket's entries. */
static size_t gather_bucket(const struct fs_par *fp, size_t b, uint64_t *buf, size_t *ends,
			    size_t *na, size_t *nr, size_t *n)
{
	size_t at = 0, mid = 0, k = 0, ji = 0;
	*na = 0;
	for (size_t g = 0; g < fp->ngroups; g++) {
		if (g == fp->ngroups0) {
			*na = k;
			mid = at;
		}
		size_t from = at;
		for (; ji <= fp->group_last[g]; ji++) {
			const struct fs_job *j = &fp->jobs[ji];
			size_t c = (size_t)(j->off[b + 1] - j->off[b]);
			memcpy(buf + at, fp->e + j->base + j->off[b], c * sizeof(*buf));
			at += c;
		}
		if (at > from)
			ends[k++] = at - (g < fp->ngroups0 ? 0 : mid);
	}
	if (fp->ngroups == fp->ngroups0) {
		*na = k;
		mid = at;
	}
	*nr = k - *na;
	*n = at;
	return mid;
}

/* Walks bucket b's entries in (time, step) order. */
static void walk_task(void *arg, size_t b, unsigned worker)
{
	struct fs_par *fp = arg;
	struct fs_worker *w = &fp->w[worker];
	if (w->rc)
		return;
	unsigned shift = fp->shift, tshift = fp->shift + fp->sbits;
	uint64_t lmask = ((uint64_t)1 << shift) - 1, smask = ((uint64_t)1 << fp->sbits) - 1;
	size_t na, nr, n;
	size_t mid = gather_bucket(fp, b, w->buf, w->ends, &na, &nr, &n);
	const uint64_t *A = merge_runs(w->buf, w->tmp, w->ends, na, shift);
	const uint64_t *B = merge_runs(w->buf + mid, w->tmp + mid, w->ends + na, nr, shift);
	size_t nA = mid, nB = n - mid;
	if (!times_room(fp, w, nB)) {
		w->rc = TD_ENOMEM;
		return;
	}

	size_t P = (size_t)1 << shift, first = b << shift;
	if (P > fp->np - first)
		P = fp->np - first;
	int64_t *s0 = w->s0, *st = w->st;
	uint8_t *lvl = w->lvl;
	for (size_t p = 0; p < P; p++)
		s0[p] = FS_NO_TIME;
	memset(lvl, 0, P);

	int N = fp->nsteps;
	size_t W = 2 * (size_t)(N - 2);
	int64_t win = fp->window;
	size_t i = 0;
	for (size_t j = 0; j < nB; j++) {
		uint64_t x = B[j];
		/* step-1 entries up to x's time come first */
		uint64_t lim = x & ~lmask;
		for (; i < nA && A[i] < lim; i++)
			s0[A[i] & lmask] = (int64_t)(A[i] >> tshift);
		/* step k + 1 extends the latest-starting chain at step k if its
		 * start is within the window: selects, not branches, as steps
		 * come in no pattern */
		size_t p = (size_t)(x & lmask);
		unsigned k = (unsigned)((x >> shift) & smask), l = lvl[p];
		int64_t t = (int64_t)(x >> tshift);
		size_t kp = k >= 2 ? k - 2 : 0, kc = (int)k + 1 < N ? k - 1 : 0;
		const int64_t *prev = k == 1 ? &s0[p] : &st[p * W + 2 * kp];
		int64_t start = prev[0], from = k == 1 ? start : prev[1];
		bool ok = (k == 1 || l >= k) && t - start <= win;
		int64_t *cur = (int)k + 1 < N ? &st[p * W + 2 * kc] : w->sink;
		cur[0] = ok ? start : cur[0];
		cur[1] = ok ? t : cur[1];
		bool reached = ok && l <= k; /* first time at step k + 1 */
		lvl[p] = (uint8_t)(reached ? k + 1 : l);
		w->ms[k][w->nms[k]] = t - from;
		w->nms[k] += reached;
	}
	/* later step-1 entries only tell who is in the funnel */
	for (; i < nA; i++)
		s0[A[i] & lmask] = 0;

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
	fp->ngroups = fp->ngroups0 = 0;
	for (size_t i = 0; i < fp->njobs; i++) {
		const struct fs_job *j = &fp->jobs[i], *n = i + 1 < fp->njobs ? j + 1 : NULL;
		bool joins = n && n->step == j->step && n->c->ts[n->lo] >= j->c->ts[j->hi - 1];
		if (joins)
			continue;
		fp->group_last[fp->ngroups++] = i;
		if (j->step == 0)
			fp->ngroups0 = fp->ngroups;
	}
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
	return 0;
}

/* Frees the arena blocks of the walk. */
static void free_workers(struct qctx *q, struct fs_par *fp, unsigned nthr)
{
	for (unsigned t = 0; t < nthr; t++) {
		struct fs_worker *w = &fp->w[t];
		void *blocks[] = {w->canon, w->pos, w->buf, w->tmp, w->ends, w->s0, w->lvl, w->st};
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
		w->buf = qa_big_realloc(&q->arena, NULL, maxb * sizeof(uint64_t));
		w->tmp = qa_big_realloc(&q->arena, NULL, maxb * sizeof(uint64_t));
		w->ends = qa_big_realloc(&q->arena, NULL, (fp->ngroups + 1) * sizeof(size_t));
		w->s0 = qa_big_realloc(&q->arena, NULL, P * sizeof(int64_t));
		w->lvl = qa_big_realloc(&q->arena, NULL, P);
		w->st = qa_big_realloc(&q->arena, NULL,
				       (P * 2 * (size_t)(fp->nsteps - 2) + 2) * sizeof(int64_t));
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
