/*
 * scan.c - the pieces parallel loops are made of: a selector's rows per
 * chunk with its filters already evaluated (spans), a time range cut into
 * runs of one bucket key, and marking the persons of rows in a bitmap.
 *
 * Filters read columns and use the arena, so spans are made on the query's
 * own thread; afterwards the spans, the runs and the source's ts / pid /
 * canonical arrays are only read, and any number of tasks may share them.
 */
#include "query/query_int.h"

#include <string.h>

int qspans_get(struct qctx *q, const struct qsel *sel, int64_t from, int64_t to, struct qspan **out,
	       size_t *nout)
{
	const struct query_chunk *chunks;
	size_t nchunks = q->src->chunks(q->src->ctx, sel->event, &chunks);
	struct qspan *sp = qa_big_realloc(&q->arena, NULL, (nchunks ? nchunks : 1) * sizeof(*sp));
	size_t n = 0;
	for (size_t ci = 0; ci < nchunks; ci++) {
		const struct query_chunk *c = &chunks[ci];
		size_t lo, hi;
		qchunk_span(c, from, to, &lo, &hi);
		if (lo >= hi)
			continue;
		uint64_t *pass = NULL;
		if (sel->nf) {
			pass =
			    qa_big_realloc(&q->arena, NULL, (hi - lo + 63) / 64 * sizeof(uint64_t));
			int rc = qsel_eval(q, sel, c, lo, hi, pass);
			if (rc)
				return rc;
		}
		sp[n++] = (struct qspan){.c = c, .lo = lo, .hi = hi, .pass = pass};
	}
	*out = sp;
	*nout = n;
	return 0;
}

uint64_t qspans_rows(const struct qspan *sp, size_t n)
{
	uint64_t rows = 0;
	for (size_t i = 0; i < n; i++)
		rows += sp[i].hi - sp[i].lo;
	return rows;
}

size_t qruns_get(struct qctx *q, enum qinterval iv, int64_t from, int64_t to, struct qrun **out)
{
	struct qvec v;
	qvec_init(&v, sizeof(struct qrun));
	struct qbucketer b;
	qbucketer_init(&b, &q->tz, iv);
	for (int64_t t = from; t < to;) {
		int64_t key = qbucketer_key(&b, t);
		int64_t end = b.hi < to ? b.hi : to;
		struct qrun *last = v.n ? (struct qrun *)v.p + v.n - 1 : NULL;
		if (last && last->key == key) {
			last->to = end; /* same key across an offset change */
		} else {
			struct qrun *r = qvec_push(&q->arena, &v);
			*r = (struct qrun){.from = t, .to = end, .key = key};
		}
		t = end;
	}
	*out = v.p;
	return v.n;
}

size_t qlower_bound(const int64_t *ts, size_t lo, size_t hi, int64_t t)
{
	while (lo < hi) {
		size_t m = lo + (hi - lo) / 2;
		if (ts[m] < t)
			lo = m + 1;
		else
			hi = m;
	}
	return lo;
}

/* Marks the raw person ids of rows [a, b) of c. Branch-free: an id out of
 * range is replaced by 0 and remembered, and the caller fails the query. */
static int mark_rows(uint32_t np, const struct query_chunk *c, size_t a, size_t b, uint64_t *bits,
		     uint32_t *bad)
{
	const uint32_t *pid = c->pid;
	if (a >= b)
		return 0;
	uint32_t wrong = 0;
	for (size_t i = a; i < b; i++) {
		uint32_t p = pid[i];
		uint32_t ok = p < np;
		p = ok ? p : 0;
		wrong |= ok ^ 1;
		bits[p >> 6] |= 1ULL << (p & 63);
	}
	if (wrong) {
		for (size_t i = a; i < b; i++)
			if (pid[i] >= np) {
				*bad = pid[i];
				break;
			}
		return TD_ECORRUPT;
	}
	return 0;
}

int qmark_pids(uint32_t np, const struct qspan *sp, size_t n, int64_t from, int64_t to,
	       uint64_t *bits, uint32_t *bad)
{
	if (np == 0) { /* every id is out of range */
		for (size_t s = 0; s < n; s++) {
			size_t a = qlower_bound(sp[s].c->ts, sp[s].lo, sp[s].hi, from);
			if (a < sp[s].hi && sp[s].c->ts[a] < to) {
				*bad = sp[s].c->pid[a];
				return TD_ECORRUPT;
			}
		}
		return 0;
	}
	for (size_t s = 0; s < n; s++) {
		const struct qspan *x = &sp[s];
		const int64_t *ts = x->c->ts;
		if (ts[x->lo] >= to || ts[x->hi - 1] < from)
			continue;
		size_t a = qlower_bound(ts, x->lo, x->hi, from);
		size_t b = qlower_bound(ts, a, x->hi, to);
		if (!x->pass) {
			int rc = mark_rows(np, x->c, a, b, bits, bad);
			if (rc)
				return rc;
			continue;
		}
		/* only the rows whose pass bit is set, a word of bits at a time */
		for (size_t i = a; i < b;) {
			size_t k = i - x->lo;
			uint64_t w = x->pass[k >> 6] >> (k & 63);
			size_t take = 64 - (k & 63);
			if (take > b - i)
				take = b - i;
			if (take < 64)
				w &= (1ULL << take) - 1;
			while (w) {
				size_t r = i + (size_t)__builtin_ctzll(w);
				int rc = mark_rows(np, x->c, r, r + 1, bits, bad);
				if (rc)
					return rc;
				w &= w - 1;
			}
			i += take;
		}
	}
	return 0;
}

uint64_t qbits_count(const uint64_t *w, size_t nw)
{
	uint64_t n = 0;
	for (size_t i = 0; i < nw; i++)
		n += (uint64_t)__builtin_popcountll(w[i]);
	return n;
}

uint64_t qbits_count_range(const uint64_t *w, size_t from, size_t to)
{
	if (from >= to)
		return 0;
	size_t a = from >> 6, b = (to - 1) >> 6;
	uint64_t first = ~0ULL << (from & 63), last = ~0ULL >> (63 - ((to - 1) & 63));
	if (a == b)
		return (uint64_t)__builtin_popcountll(w[a] & first & last);
	uint64_t n = (uint64_t)__builtin_popcountll(w[a] & first);
	n += qbits_count(w + a + 1, b - a - 1);
	return n + (uint64_t)__builtin_popcountll(w[b] & last);
}

const uint64_t *qcanon_moved(struct qctx *q)
{
	const struct query_source *src = q->src;
	if (!src->canonical)
		return NULL;
	if (q->moved)
		return q->moved;
	size_t nw = ((size_t)src->npersons + 63) / 64, full = src->npersons / 64;
	uint64_t *m = qa_big_realloc(&q->arena, NULL, (nw ? nw : 1) * sizeof(uint64_t));
	memset(m, 0, (nw ? nw : 1) * sizeof(uint64_t));
	/* a word at a time, without a branch per id (merged ids come at random) */
	for (size_t w = 0; w < full; w++) {
		const uint32_t *c = src->canonical + w * 64;
		uint32_t base = (uint32_t)(w * 64);
		uint64_t bits = 0;
		for (unsigned b = 0; b < 64; b++)
			bits |= (uint64_t)(c[b] != base + b) << b;
		m[w] = bits;
	}
	for (uint32_t p = (uint32_t)(full * 64); p < src->npersons; p++)
		if (src->canonical[p] != p)
			m[p >> 6] |= 1ULL << (p & 63);
	q->moved = m;
	return m;
}

void qcanon_pack(struct qctx *q, struct qcanon_packed *pk)
{
	const uint32_t *canon = q->src->canonical;
	size_t nw = ((size_t)q->src->npersons + 63) / 64, n = 0;
	pk->moved = qcanon_moved(q);
	pk->rank = qa_big_realloc(&q->arena, NULL, (nw + 1) * sizeof(uint32_t));
	for (size_t w = 0; w < nw; w++) {
		pk->rank[w] = (uint32_t)n;
		n += (size_t)__builtin_popcountll(pk->moved[w]);
	}
	pk->rank[nw] = (uint32_t)n;
	pk->dense = qa_big_realloc(&q->arena, NULL, (n ? n : 1) * sizeof(uint32_t));
	for (size_t w = 0, i = 0; w < nw; w++)
		for (uint64_t m = pk->moved[w]; m; m &= m - 1)
			pk->dense[i++] = canon[w * 64 + (size_t)__builtin_ctzll(m)];
}

int qcanon_bits(const struct query_source *src, const uint64_t *moved, uint64_t *raw, uint64_t *out,
		size_t nw, uint32_t *bad)
{
	const uint32_t *canon = src->canonical;
	uint32_t np = src->npersons;
	for (size_t w = 0; w < nw; w++) {
		uint64_t x = raw[w];
		if (!x)
			continue;
		raw[w] = 0;
		uint64_t y = moved ? x & moved[w] : 0;
		out[w] |= x & ~y;
		for (; y; y &= y - 1) {
			uint32_t p = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(y));
			uint32_t c = canon[p];
			if (c >= np) {
				*bad = p;
				return TD_ECORRUPT;
			}
			out[c >> 6] |= 1ULL << (c & 63);
		}
	}
	return 0;
}

/* qperson_set(): a task per span, each worker marking into its own bitmap. */
struct pset {
	uint32_t np;
	const struct qspan *sp;
	int64_t from, to;
	size_t nw;
	uint64_t *raw; /* per worker */
	int *rc;
	uint32_t *bad;
};

static void pset_task(void *arg, size_t i, unsigned worker)
{
	struct pset *ps = arg;
	ps->rc[i] = qmark_pids(ps->np, &ps->sp[i], 1, ps->from, ps->to, ps->raw + worker * ps->nw,
			       &ps->bad[i]);
}

int qperson_set(struct qctx *q, const struct qspan *sp, size_t n, int64_t from, int64_t to,
		uint64_t *out)
{
	unsigned nt = qpar_threads(q, qspans_rows(sp, n));
	struct pset ps = {.np = q->src->npersons, .sp = sp, .from = from, .to = to};
	ps.nw = ((size_t)q->src->npersons + 63) / 64;
	size_t words = (ps.nw ? ps.nw : 1) * nt;
	ps.raw = qa_big_realloc(&q->arena, NULL, words * sizeof(uint64_t));
	memset(ps.raw, 0, words * sizeof(uint64_t));
	ps.rc = qa_calloc(&q->arena, n ? n : 1, sizeof(int));
	ps.bad = qa_calloc(&q->arena, n ? n : 1, sizeof(uint32_t));
	qpar_for(nt, n, pset_task, &ps);
	for (size_t i = 0; i < n; i++)
		if (ps.rc[i])
			return qerr_pid(q, ps.bad[i]);
	qbits_or_workers(ps.raw, ps.nw, nt);
	uint32_t bad = 0;
	if (qcanon_bits(q->src, qcanon_moved(q), ps.raw, out, ps.nw, &bad))
		return qerr_pid(q, bad);
	qa_big_free(&q->arena, ps.raw);
	return 0;
}

void qbits_or_workers(uint64_t *w, size_t nw, unsigned nworkers)
{
	for (unsigned t = 1; t < nworkers; t++)
		for (size_t i = 0; i < nw; i++)
			w[i] |= w[t * nw + i];
}
