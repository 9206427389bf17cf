/*
 * view.c - immutable copies of canonical[] for query snapshots. A view is
 * made by the writer when the graph changed since the last one; while no
 * merge has happened every person is its own canonical and the view holds
 * no array at all.
 */
#include "base/td.h"
#include "identity/identity_int.h"

#include <stdlib.h>
#include <string.h>

struct identity_view *identity_view_publish(struct identity *g)
{
	if (!g->view || g->changed) {
		struct identity_view *v = td_calloc(1, sizeof(*v));
		v->refs = 1; /* the graph's */
		v->n = g->npids;
		if (g->merges) {
			uint32_t *c = td_malloc((v->n ? v->n : 1) * sizeof(*c));
			memcpy(c, g->canon, (size_t)v->n * sizeof(*c));
			v->canonical = c;
		}
		identity_view_release(g->view);
		g->view = v;
		g->changed = false;
	}
	identity_view_ref(g->view);
	return g->view;
}

void identity_view_ref(struct identity_view *v)
{
	__atomic_add_fetch(&v->refs, 1, __ATOMIC_RELAXED);
}

void identity_view_release(struct identity_view *v)
{
	if (!v || __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	free((void *)v->canonical);
	free(v);
}

struct identity_view *identity_view_new(uint32_t n, uint32_t *canonical)
{
	struct identity_view *v = td_calloc(1, sizeof(*v));
	v->refs = 1;
	v->n = n;
	v->canonical = canonical;
	return v;
}
