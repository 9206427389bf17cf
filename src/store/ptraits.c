/*
 * ptraits.c - person traits as columns of every event: "person.plan" on an
 * Order Completed row is the plan its person (after merges) has in the
 * snapshot, so any query can filter and break down by profile traits.
 *
 * A trait's value per canonical person is the traits.<name> of the person's
 * latest identify call in the snapshot (the profile's rule, profile.h); it
 * is built once per snapshot and trait, on first use, from the $identify
 * chunks. The column of a chunk maps each row's person to it and is kept
 * with the snapshot too, so a query's threads and later queries reuse it.
 */
#include "base/intern.h"
#include "base/td.h"
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ptrait {
	struct ptrait *next;
	char *name;
	bool exists;	/* some identify call has it */
	int kind;	/* QCOL_* of the first column found */
	uint32_t n;	/* persons */
	int64_t *ts;	/* latest identify time per person, INT64_MIN = none */
	uint32_t *code; /* strings: dictionary code per person */
	double *num;
	uint8_t *boolv;
	struct intern dict;
	const char **dictv;
};

struct pcol {
	struct pcol *next;
	const struct query_chunk *chunk;
	const struct ptrait *t;
	struct query_column col;
	void *mem[3];
};

struct ptraits {
	pthread_mutex_t lock;
	struct ptrait *traits;
	struct pcol *cols;
};

struct ptraits *ptraits_new(void)
{
	struct ptraits *p = td_calloc(1, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

void ptraits_free(struct ptraits *p)
{
	if (!p)
		return;
	for (struct ptrait *t = p->traits, *n; t; t = n) {
		n = t->next;
		free(t->name);
		free(t->ts);
		free(t->code);
		free(t->num);
		free(t->boolv);
		free(t->dictv);
		intern_release(&t->dict);
		free(t);
	}
	for (struct pcol *c = p->cols, *n; c; c = n) {
		n = c->next;
		for (size_t i = 0; i < 3; i++)
			free(c->mem[i]);
		free(c);
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static bool has(const struct query_column *c, size_t i)
{
	return !c->present || (c->present[i / 64] >> (i % 64) & 1);
}

/* The trait per person from every identify chunk of the snapshot. */
static int build(const struct query_source *src, struct ptrait *t)
{
	char path[512];
	snprintf(path, sizeof(path), "traits.%s", t->name);
	t->n = src->npersons;
	t->ts = td_malloc((t->n ? t->n : 1) * sizeof(*t->ts));
	for (uint32_t i = 0; i < t->n; i++)
		t->ts[i] = INT64_MIN;
	intern_init(&t->dict);
	const struct query_chunk *chunks;
	size_t nc = src->chunks(src->ctx, "$identify", &chunks);
	for (size_t k = 0; k < nc; k++) {
		const struct query_chunk *c = &chunks[k];
		struct query_column col;
		int rc = c->column(c, path, &col);
		if (rc == TD_ENOTFOUND)
			continue;
		if (rc)
			return rc;
		if (!t->exists) {
			t->exists = true;
			t->kind = col.kind;
			if (t->kind == QCOL_STRING)
				t->code = td_calloc(t->n ? t->n : 1, sizeof(*t->code));
			else if (t->kind == QCOL_NUMBER)
				t->num = td_calloc(t->n ? t->n : 1, sizeof(*t->num));
			else
				t->boolv = td_calloc(t->n ? t->n : 1, 1);
		}
		if ((int)col.kind != t->kind)
			continue; /* another type in these calls: the first type found wins */
		for (size_t r = 0; r < c->n; r++) {
			if (!has(&col, r) || c->pid[r] >= t->n)
				continue;
			uint32_t p = src->canonical ? src->canonical[c->pid[r]] : c->pid[r];
			if (p >= t->n || c->ts[r] < t->ts[p])
				continue; /* an older call: the latest wins (ties: the later chunk)
					   */
			t->ts[p] = c->ts[r];
			if (t->kind == QCOL_STRING) {
				if (col.code[r] >= col.ndict)
					return TD_ECORRUPT;
				const char *s = col.dict[col.code[r]];
				t->code[p] = intern_id(&t->dict, s, strlen(s));
			} else if (t->kind == QCOL_NUMBER) {
				t->num[p] = col.num[r];
			} else {
				t->boolv[p] = col.boolv[r];
			}
		}
	}
	if (t->kind == QCOL_STRING && t->exists) {
		t->dictv = td_malloc((t->dict.n ? t->dict.n : 1) * sizeof(*t->dictv));
		for (uint32_t i = 0; i < t->dict.n; i++)
			t->dictv[i] = intern_str(&t->dict, i);
	}
	return 0;
}

static int find_trait(struct ptraits *p, const struct query_source *src, const char *name,
		      const struct ptrait **out)
{
	for (struct ptrait *t = p->traits; t; t = t->next)
		if (!strcmp(t->name, name)) {
			*out = t;
			return 0;
		}
	struct ptrait *t = td_calloc(1, sizeof(*t));
	t->name = td_strdup(name);
	int rc = build(src, t);
	t->next = p->traits; /* kept even when it failed: freed with the rest */
	p->traits = t;
	*out = t;
	return rc;
}

int ptraits_values(struct ptraits *p, const struct query_source *src, const char *name,
		   struct store_person_trait *out)
{
	pthread_mutex_lock(&p->lock);
	const struct ptrait *t;
	int rc = find_trait(p, src, name, &t);
	if (!rc && !t->exists)
		rc = TD_ENOTFOUND;
	if (!rc)
		*out = (struct store_person_trait){.kind = t->kind,
						   .n = t->n,
						   .ts = t->ts,
						   .code = t->code,
						   .dict = t->dictv,
						   .ndict = t->dict.n,
						   .num = t->num,
						   .boolv = t->boolv};
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int ptraits_column(struct ptraits *p, const struct query_source *src, const struct query_chunk *c,
		   const char *name, struct query_column *col)
{
	pthread_mutex_lock(&p->lock);
	const struct ptrait *t;
	int rc = find_trait(p, src, name, &t);
	if (!rc && !t->exists)
		rc = TD_ENOTFOUND;
	struct pcol *pc = NULL;
	for (struct pcol *x = p->cols; !rc && x && !pc; x = x->next)
		if (x->chunk == c && x->t == t)
			pc = x;
	if (!rc && !pc) {
		pc = td_calloc(1, sizeof(*pc));
		pc->chunk = c;
		pc->t = t;
		size_t nw = (c->n + 63) / 64;
		uint64_t *present = td_calloc(nw ? nw : 1, sizeof(*present));
		pc->mem[0] = present;
		pc->col.kind = t->kind;
		pc->col.present = present;
		if (t->kind == QCOL_STRING) {
			uint32_t *code = td_malloc((c->n ? c->n : 1) * sizeof(*code));
			pc->mem[1] = code;
			pc->col.code = code;
			pc->col.dict = t->dictv;
			pc->col.ndict = t->dict.n;
		} else if (t->kind == QCOL_NUMBER) {
			pc->mem[1] = td_malloc((c->n ? c->n : 1) * sizeof(double));
			pc->col.num = pc->mem[1];
		} else {
			pc->mem[1] = td_malloc(c->n ? c->n : 1);
			pc->col.boolv = pc->mem[1];
		}
		for (size_t r = 0; r < c->n; r++) {
			uint32_t q = c->pid[r] < t->n ? c->pid[r] : UINT32_MAX;
			if (q != UINT32_MAX && src->canonical)
				q = src->canonical[q];
			bool set = q < t->n && t->ts[q] != INT64_MIN;
			if (set)
				present[r / 64] |= 1ULL << (r % 64);
			if (t->kind == QCOL_STRING)
				((uint32_t *)pc->mem[1])[r] = set ? t->code[q] : 0;
			else if (t->kind == QCOL_NUMBER)
				((double *)pc->mem[1])[r] = set ? t->num[q] : 0;
			else
				((uint8_t *)pc->mem[1])[r] = set ? t->boolv[q] : 0;
		}
		pc->next = p->cols;
		p->cols = pc;
	}
	if (!rc)
		*col = pc->col;
	pthread_mutex_unlock(&p->lock);
	return rc;
}
