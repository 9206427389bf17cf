/*
 * funnel_part.c - the partition of the sequential funnel path (see
 * funnel_seq.c): each slice of a step's chunk counts its entries per person
 * bucket, then writes them to its own region, grouped by bucket.
 */
#include "query/funnel_seq.h"

#include <string.h>

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
