/*
 * funnel_part.c - the partition of the sequential funnel path (see
 * funnel_seq.c): each slice of a step's chunk counts its entries per person
 * bucket, then writes them to its own region, grouped by bucket.
 */
#include "query/funnel_seq.h"

#include <string.h>

/* ---- partition ------------------------------------------------------ */

/* Rows between prefetching a row's canonical id and reading it: enough to
 * keep many misses in flight. */
#define FS_AHEAD 64

enum { FS_CANON, FS_PACKED }; /* where count_body() reads canonical ids */

static inline uint64_t is_moved(const uint64_t *moved, uint32_t p)
{
	return (moved[p >> 6] >> (p & 63)) & 1;
}

/* Where canonical ids are read: canonical[] (table), or the packed table
 * (dense, with rank). Copied into locals so that the loop keeps them in
 * registers. */
struct fs_lookup {
	const uint64_t *moved;
	const uint32_t *table, *rank;
	int how;
};

/* Where the canonical id of stored id p (< np) is: its index in the table
 * (0 when p was not merged), and bit 32 set when p was merged. No branch:
 * merged ids come at random. */
static inline __attribute__((always_inline)) uint64_t canon_code(struct fs_lookup l, uint32_t p)
{
	uint64_t word = l.moved[p >> 6];
	uint32_t mb = (uint32_t)(word >> (p & 63)) & 1, i = p;
	if (l.how == FS_PACKED)
		i = l.rank[p >> 6] +
		    (uint32_t)__builtin_popcountll(word & ((1ULL << (p & 63)) - 1));
	return (uint64_t)mb << 32 | (i & (0u - mb));
}

/* Counts slice j's entries per bucket into j->off[b + 1], keeping their
 * canonical ids in w->canon. False when an id is out of range. The rows'
 * codes (canon_code()) are worked out FS_AHEAD rows ahead, when their slot
 * is prefetched, and kept until the row's turn in a ring. The slot is read
 * whether the row's id was merged or not, and the choice made with a mask:
 * with a ?:, compilers read the slot only for merged ids, behind a branch
 * that would mispredict. */
static inline __attribute__((always_inline)) bool
count_body(const struct fs_par *fp, struct fs_job *j, struct fs_worker *w, int how)
{
	const uint32_t *pid = j->c->pid;
	const uint64_t *pass = j->pass;
	uint64_t *cnt = j->off + 1, ring[FS_AHEAD];
	uint32_t np = fp->np, *canon = w->canon;
	unsigned shift = fp->shift;
	struct fs_lookup l = {.moved = fp->moved,
			      .table = how == FS_CANON ? fp->canonical : fp->pk.dense,
			      .rank = fp->pk.rank,
			      .how = how};
	size_t k = 0, lo = j->lo, hi = j->hi;
	for (size_t i = lo; l.moved && i < hi && i < lo + FS_AHEAD; i++) {
		ring[i % FS_AHEAD] = canon_code(l, pid[i] < np ? pid[i] : 0);
		__builtin_prefetch(&l.table[(uint32_t)ring[i % FS_AHEAD]]);
	}
	for (size_t i = lo; i < hi; i++) {
		uint64_t code = 0;
		if (l.moved) {
			code = ring[i % FS_AHEAD];
			if (i + FS_AHEAD < hi) {
				uint32_t q = pid[i + FS_AHEAD];
				uint64_t next = canon_code(l, q < np ? q : 0);
				ring[i % FS_AHEAD] = next;
				__builtin_prefetch(&l.table[(uint32_t)next]);
			}
		}
		if (pass && !qbit(pass, i - lo))
			continue;
		uint32_t p = pid[i], c = p;
		if (p >= np)
			goto bad;
		if (l.moved) {
			uint32_t t = l.table[(uint32_t)code], all = 0u - (uint32_t)(code >> 32);
			if ((c = (t & all) | (p & ~all)) >= np)
				goto bad;
		}
		canon[k++] = c;
		cnt[c >> shift]++;
		continue;
	bad:
		j->bad = p;
		return false;
	}
	return true;
}

static bool count_canon(const struct fs_par *fp, struct fs_job *j, struct fs_worker *w)
{
	return count_body(fp, j, w, FS_CANON);
}

/* The packed table (built from FS_PACKED_FROM persons) needs a population
 * count per row: with the instruction (x86-64 since 2008, checked at run
 * time), not with its emulation. */
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("popcnt"))) static bool count_packed(const struct fs_par *fp,
							   struct fs_job *j, struct fs_worker *w)
{
	return count_body(fp, j, w, FS_PACKED);
}

static bool count_slice(const struct fs_par *fp, struct fs_job *j, struct fs_worker *w)
{
	if (fp->pk.dense && __builtin_cpu_supports("popcnt"))
		return count_packed(fp, j, w);
	return count_canon(fp, j, w);
}
#else
static bool count_slice(const struct fs_par *fp, struct fs_job *j, struct fs_worker *w)
{
	return count_canon(fp, j, w);
}
#endif

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
		uint64_t t = (uint64_t)ts[i] - (uint64_t)tmin; /* < 2^(64 - tshift) */
		out[pos[p >> shift]++] = t << tshift | step | (p & lmask);
	}
}

void fs_part_task(void *arg, size_t ji, unsigned worker)
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
