/*
 * snap.c - snapshots: an immutable list of segments (each referenced) with
 * the chunk index the query engine reads, built once per change of the
 * segment set and shared by every query until the next change.
 */
#include "store/store_int.h"
#include "base/td.h"

#include <stdlib.h>
#include <string.h>

struct snap_name {
	const char *name;
	struct query_chunk *chunks;
	size_t n;
};

struct store_snap {
	int refs;
	struct seg **segs;
	size_t nsegs;
	struct query_source src;
	struct snap_name *names;
	const char **name_list;
	size_t nnames;
	struct query_chunk *all; /* every chunk, grouped by name */
	size_t nall;
	struct identity_view *view; /* canonical persons (src points into it) */
	struct snap_chunk *impl;    /* per chunk of all */
	struct ptraits *ptraits;    /* person.* columns, made on first use */
};

struct snap_chunk {
	const struct seg_group *g;
	struct store_snap *sn;
};

static int chunk_column(const struct query_chunk *c, const char *path, struct query_column *col)
{
	const struct snap_chunk *sc = c->impl;
	if (!strncmp(path, "person.", 7) && path[7])
		return ptraits_column(sc->sn->ptraits, &sc->sn->src, c, path + 7, col);
	return seg_group_column(sc->g, path, col);
}

static size_t src_chunks(void *ctx, const char *event, const struct query_chunk **out)
{
	struct store_snap *sn = ctx;
	if (!event || !*event) {
		*out = sn->all;
		return sn->nall;
	}
	size_t lo = 0, hi = sn->nnames;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(sn->names[mid].name, event);
		if (c == 0) {
			*out = sn->names[mid].chunks;
			return sn->names[mid].n;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*out = NULL;
	return 0;
}

static size_t src_names(void *ctx, const char *const **out)
{
	struct store_snap *sn = ctx;
	*out = sn->name_list;
	return sn->nnames;
}

static int cmp_groups(const void *a, const void *b)
{
	const struct seg_group *x = *(const struct seg_group *const *)a;
	const struct seg_group *y = *(const struct seg_group *const *)b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->min_ts < y->min_ts ? -1 : x->min_ts > y->min_ts;
}

static struct store_snap *snap_build(struct seg *const *segs, size_t n, struct identity_view *v)
{
	struct store_snap *sn = td_calloc(1, sizeof(*sn));
	sn->refs = 1;
	sn->segs = td_malloc((n ? n : 1) * sizeof(*sn->segs));
	size_t ng = 0;
	for (size_t i = 0; i < n; i++) {
		sn->segs[i] = segs[i];
		seg_ref(segs[i]);
		ng += segs[i]->ngroups;
	}
	sn->nsegs = n;
	const struct seg_group **gs = td_malloc((ng ? ng : 1) * sizeof(*gs));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < segs[i]->ngroups; j++)
			gs[k++] = &segs[i]->groups[j];
	qsort(gs, ng, sizeof(*gs), cmp_groups);
	sn->all = td_calloc(ng ? ng : 1, sizeof(*sn->all));
	sn->names = td_calloc(ng ? ng : 1, sizeof(*sn->names));
	sn->impl = td_calloc(ng ? ng : 1, sizeof(*sn->impl));
	sn->ptraits = ptraits_new();
	sn->name_list = td_calloc(ng ? ng : 1, sizeof(*sn->name_list));
	for (size_t i = 0; i < ng; i++) {
		struct query_chunk *c = &sn->all[i];
		c->n = gs[i]->n;
		c->ts = gs[i]->ts;
		c->pid = gs[i]->pid;
		c->column = chunk_column;
		sn->impl[i] = (struct snap_chunk){gs[i], sn};
		c->impl = &sn->impl[i];
		if (sn->nnames == 0 || strcmp(sn->names[sn->nnames - 1].name, gs[i]->name) != 0) {
			sn->names[sn->nnames].name = gs[i]->name;
			sn->names[sn->nnames].chunks = c;
			sn->name_list[sn->nnames] = gs[i]->name;
			sn->nnames++;
		}
		sn->names[sn->nnames - 1].n++;
	}
	sn->nall = ng;
	free(gs);
	sn->src.ctx = sn;
	sn->src.chunks = src_chunks;
	sn->src.event_names = src_names;
	identity_view_ref(v);
	sn->view = v;
	sn->src.canonical = v->canonical;
	sn->src.npersons = v->n;
	return sn;
}

struct store_snap *store_snapshot(struct store *s)
{
	pthread_mutex_lock(&s->lock);
	if (s->dirty || !s->snap) {
		struct seg **all = td_malloc((s->ndisk + s->nmem + 1) * sizeof(*all));
		for (size_t i = 0; i < s->ndisk; i++)
			all[i] = s->disk[i];
		for (size_t i = 0; i < s->nmem; i++)
			all[s->ndisk + i] = s->mem[i];
		struct store_snap *sn = snap_build(all, s->ndisk + s->nmem, s->view);
		free(all);
		if (s->snap)
			store_snap_release(s->snap);
		s->snap = sn;
		s->dirty = false;
	}
	struct store_snap *r = s->snap;
	__atomic_add_fetch(&r->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&s->lock);
	return r;
}

void store_snap_release(struct store_snap *sn)
{
	if (!sn || __atomic_sub_fetch(&sn->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (size_t i = 0; i < sn->nsegs; i++)
		seg_unref(sn->segs[i]);
	free(sn->segs);
	free(sn->names);
	free(sn->name_list);
	free(sn->all);
	free(sn->impl);
	ptraits_free(sn->ptraits);
	identity_view_release(sn->view);
	free(sn);
}

const struct query_source *store_snap_source(struct store_snap *sn)
{
	return &sn->src;
}

size_t store_snap_segments(const struct store_snap *sn, struct seg *const **out)
{
	*out = sn->segs;
	return sn->nsegs;
}

int store_snap_person_trait(struct store_snap *sn, const char *name, struct store_person_trait *out)
{
	return ptraits_values(sn->ptraits, &sn->src, name, out);
}
