/*
 * memsource.c - the in-memory query source (see memsource.h). Simple over
 * fast: it exists for tests and small tools.
 */
#include "query/memsource.h"
#include "base/td.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mrow {
	uint32_t name;
	uint32_t pid;
	int64_t ts;
};

struct mprop {
	size_t row;
	uint32_t path;
	int kind;
	char *s;
	double d;
	bool b;
};

struct mcol {
	struct query_column col;
	uint64_t *present;
	uint32_t *code;
	const char **dict;
	double *num;
	uint8_t *boolv;
	const char **rowstr; /* while building */
	size_t nset;
};

struct mchunk {
	struct memsource *ms;
	struct mcol **cols; /* per path, NULL = absent */
};

struct memsource {
	char **names;
	size_t nnames;
	char **paths;
	size_t npaths;
	struct mrow *rows;
	size_t nrows, caprows;
	struct mprop *props;
	size_t nprops, capprops;
	uint32_t npersons;
	uint32_t *canonical;
	bool persons_set;
	uint32_t maxpid1;
	char *fail_path;
	int fail_rc;
	/* built */
	struct query_chunk *chunks;
	struct mchunk *mchunks;
	size_t nchunks;
	size_t *name_first, *name_count; /* per name: range in chunks[] */
	struct query_source src;
};

struct memsource *memsource_new(void)
{
	return td_calloc(1, sizeof(struct memsource));
}

static void free_built(struct memsource *ms)
{
	for (size_t c = 0; c < ms->nchunks; c++) {
		for (size_t p = 0; p < ms->npaths; p++) {
			struct mcol *m = ms->mchunks[c].cols ? ms->mchunks[c].cols[p] : NULL;
			if (!m)
				continue;
			free(m->present);
			free(m->code);
			free(m->dict);
			free(m->num);
			free(m->boolv);
			free(m->rowstr);
			free(m);
		}
		free(ms->mchunks[c].cols);
		free((void *)ms->chunks[c].ts);
		free((void *)ms->chunks[c].pid);
	}
	free(ms->chunks);
	free(ms->mchunks);
	free(ms->name_first);
	free(ms->name_count);
	ms->chunks = NULL;
	ms->mchunks = NULL;
	ms->name_first = ms->name_count = NULL;
	ms->nchunks = 0;
}

void memsource_free(struct memsource *ms)
{
	if (!ms)
		return;
	free_built(ms);
	for (size_t i = 0; i < ms->nnames; i++)
		free(ms->names[i]);
	for (size_t i = 0; i < ms->npaths; i++)
		free(ms->paths[i]);
	for (size_t i = 0; i < ms->nprops; i++)
		free(ms->props[i].s);
	free(ms->names);
	free(ms->paths);
	free(ms->rows);
	free(ms->props);
	free(ms->canonical);
	free(ms->fail_path);
	free(ms);
}

static uint32_t intern(char ***arr, size_t *n, const char *s)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*arr)[i], s) == 0)
			return (uint32_t)i;
	*arr = td_realloc(*arr, (*n + 1) * sizeof(**arr));
	(*arr)[*n] = td_strdup(s);
	return (uint32_t)(*n)++;
}

size_t memsource_add(struct memsource *ms, const char *event, int64_t ts, uint32_t pid)
{
	if (ms->nrows == ms->caprows) {
		ms->caprows = ms->caprows ? ms->caprows * 2 : 256;
		ms->rows = td_realloc(ms->rows, ms->caprows * sizeof(*ms->rows));
	}
	struct mrow *r = &ms->rows[ms->nrows];
	r->name = intern(&ms->names, &ms->nnames, event);
	r->ts = ts;
	r->pid = pid;
	if (pid + 1 > ms->maxpid1)
		ms->maxpid1 = pid + 1;
	return ms->nrows++;
}

static struct mprop *add_prop(struct memsource *ms, size_t row, const char *path, int kind)
{
	if (ms->nprops == ms->capprops) {
		ms->capprops = ms->capprops ? ms->capprops * 2 : 256;
		ms->props = td_realloc(ms->props, ms->capprops * sizeof(*ms->props));
	}
	struct mprop *p = &ms->props[ms->nprops++];
	memset(p, 0, sizeof(*p));
	p->row = row;
	p->path = intern(&ms->paths, &ms->npaths, path);
	p->kind = kind;
	return p;
}

void memsource_set_str(struct memsource *ms, size_t row, const char *path, const char *value)
{
	add_prop(ms, row, path, QCOL_STRING)->s = td_strdup(value);
}

void memsource_set_num(struct memsource *ms, size_t row, const char *path, double value)
{
	add_prop(ms, row, path, QCOL_NUMBER)->d = value;
}

void memsource_set_bool(struct memsource *ms, size_t row, const char *path, bool value)
{
	add_prop(ms, row, path, QCOL_BOOL)->b = value;
}

static void add_json_obj(struct memsource *ms, size_t row, const cJSON *obj, const char *prefix)
{
	for (const cJSON *it = obj->child; it; it = it->next) {
		if (!it->string)
			continue;
		size_t n = strlen(prefix) + strlen(it->string) + 2;
		char *path = td_malloc(n);
		if (*prefix)
			snprintf(path, n, "%s.%s", prefix, it->string);
		else
			snprintf(path, n, "%s", it->string);
		if (cJSON_IsObject(it))
			add_json_obj(ms, row, it, path);
		else if (cJSON_IsString(it))
			memsource_set_str(ms, row, path, it->valuestring);
		else if (cJSON_IsNumber(it))
			memsource_set_num(ms, row, path, it->valuedouble);
		else if (cJSON_IsBool(it))
			memsource_set_bool(ms, row, path, cJSON_IsTrue(it));
		free(path);
	}
}

int memsource_add_json(struct memsource *ms, const char *event, int64_t ts, uint32_t pid,
		       const char *json)
{
	cJSON *root = cJSON_Parse(json ? json : "{}");
	if (!root || !cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return TD_EPARSE;
	}
	size_t row = memsource_add(ms, event, ts, pid);
	add_json_obj(ms, row, root, "");
	cJSON_Delete(root);
	return 0;
}

void memsource_set_persons(struct memsource *ms, uint32_t npersons, const uint32_t *canonical)
{
	free(ms->canonical);
	ms->canonical = NULL;
	ms->npersons = npersons;
	ms->persons_set = true;
	if (canonical) {
		ms->canonical = td_malloc((npersons ? npersons : 1) * sizeof(uint32_t));
		memcpy(ms->canonical, canonical, npersons * sizeof(uint32_t));
	}
}

void memsource_fail_column(struct memsource *ms, const char *path, int rc)
{
	free(ms->fail_path);
	ms->fail_path = rc ? td_strdup(path) : NULL;
	ms->fail_rc = rc;
}

static int column(const struct query_chunk *c, const char *path, struct query_column *col)
{
	struct mchunk *mc = c->impl;
	struct memsource *ms = mc->ms;
	if (ms->fail_path && strcmp(ms->fail_path, path) == 0)
		return ms->fail_rc;
	for (size_t p = 0; p < ms->npaths; p++) {
		if (strcmp(ms->paths[p], path) != 0)
			continue;
		if (!mc->cols[p])
			return TD_ENOTFOUND;
		*col = mc->cols[p]->col;
		return 0;
	}
	return TD_ENOTFOUND;
}

static size_t chunks_cb(void *ctx, const char *event, const struct query_chunk **out)
{
	struct memsource *ms = ctx;
	if (!*event) {
		*out = ms->chunks;
		return ms->nchunks;
	}
	for (size_t i = 0; i < ms->nnames; i++) {
		if (strcmp(ms->names[i], event) == 0) {
			*out = ms->chunks + ms->name_first[i];
			return ms->name_count[i];
		}
	}
	*out = ms->chunks;
	return 0;
}

static size_t names_cb(void *ctx, const char *const **out)
{
	struct memsource *ms = ctx;
	*out = (const char *const *)ms->names;
	return ms->nnames;
}

static uint64_t rng_next(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* sort keys for building: (name, ts, tie) */
struct bkey {
	uint32_t name;
	uint32_t chunk;
	int64_t ts;
	uint64_t tie;
	size_t row;
};

static int cmp_bkey(const void *a, const void *b)
{
	const struct bkey *x = a, *y = b;
	if (x->name != y->name)
		return x->name < y->name ? -1 : 1;
	if (x->chunk != y->chunk)
		return x->chunk < y->chunk ? -1 : 1;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	if (x->tie != y->tie)
		return x->tie < y->tie ? -1 : 1;
	return 0;
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void memsource_build(struct memsource *ms, size_t chunk_rows, uint64_t seed)
{
	free_built(ms);
	uint64_t rng = seed;
	size_t n = ms->nrows;
	size_t *per_name = td_calloc(ms->nnames + 1, sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		per_name[ms->rows[i].name]++;
	struct bkey *k = td_malloc((n ? n : 1) * sizeof(*k));
	for (size_t i = 0; i < n; i++) {
		k[i].name = ms->rows[i].name;
		k[i].ts = ms->rows[i].ts;
		k[i].row = i;
		k[i].tie = seed ? rng_next(&rng) : i;
		k[i].chunk = 0;
		if (seed && chunk_rows) {
			size_t nc = (per_name[k[i].name] + chunk_rows - 1) / chunk_rows;
			k[i].chunk = (uint32_t)(rng_next(&rng) % nc);
		}
	}
	qsort(k, n, sizeof(*k), cmp_bkey);
	if (!seed && chunk_rows) {
		/* consecutive runs of chunk_rows rows per name */
		size_t run = 0;
		for (size_t i = 0; i < n; i++) {
			if (i && k[i].name != k[i - 1].name)
				run = 0;
			k[i].chunk = (uint32_t)(run++ / chunk_rows);
		}
	}
	/* count chunks: boundaries where (name, chunk) changes */
	size_t nchunks = 0;
	for (size_t i = 0; i < n; i++)
		if (i == 0 || k[i].name != k[i - 1].name || k[i].chunk != k[i - 1].chunk)
			nchunks++;
	ms->chunks = td_calloc(nchunks ? nchunks : 1, sizeof(*ms->chunks));
	ms->mchunks = td_calloc(nchunks ? nchunks : 1, sizeof(*ms->mchunks));
	ms->name_first = td_calloc(ms->nnames + 1, sizeof(size_t));
	ms->name_count = td_calloc(ms->nnames + 1, sizeof(size_t));
	ms->nchunks = nchunks;
	size_t *chunk_of = td_malloc((n ? n : 1) * sizeof(size_t));
	size_t *pos_of = td_malloc((n ? n : 1) * sizeof(size_t));
	size_t c = (size_t)-1;
	for (size_t i = 0, start = 0; i <= n; i++) {
		if (i == n || i == 0 || k[i].name != k[i - 1].name ||
		    k[i].chunk != k[i - 1].chunk) {
			if (i > 0) {
				/* close chunk c: rows start..i-1 */
				struct query_chunk *qc = &ms->chunks[c];
				size_t m = i - start;
				int64_t *ts = td_malloc(m * sizeof(int64_t));
				uint32_t *pid = td_malloc(m * sizeof(uint32_t));
				for (size_t j = 0; j < m; j++) {
					ts[j] = k[start + j].ts;
					pid[j] = ms->rows[k[start + j].row].pid;
					chunk_of[k[start + j].row] = c;
					pos_of[k[start + j].row] = j;
				}
				qc->n = m;
				qc->ts = ts;
				qc->pid = pid;
				qc->column = column;
				qc->impl = &ms->mchunks[c];
				ms->mchunks[c].ms = ms;
				ms->mchunks[c].cols =
				    td_calloc(ms->npaths ? ms->npaths : 1, sizeof(struct mcol *));
				uint32_t nm = k[start].name;
				if (ms->name_count[nm] == 0)
					ms->name_first[nm] = c;
				ms->name_count[nm]++;
			}
			if (i == n)
				break;
			c++;
			start = i;
		}
	}
	/* properties, in the order they were set */
	for (size_t i = 0; i < ms->nprops; i++) {
		const struct mprop *p = &ms->props[i];
		if (p->row >= n)
			continue;
		size_t ci = chunk_of[p->row], pos = pos_of[p->row];
		size_t m = ms->chunks[ci].n;
		struct mcol **slot = &ms->mchunks[ci].cols[p->path];
		if (!*slot) {
			struct mcol *mc = td_calloc(1, sizeof(*mc));
			mc->col.kind = p->kind;
			mc->present = td_calloc((m + 63) / 64, sizeof(uint64_t));
			if (p->kind == QCOL_STRING)
				mc->rowstr = td_calloc(m, sizeof(char *));
			else if (p->kind == QCOL_NUMBER)
				mc->num = td_calloc(m, sizeof(double));
			else
				mc->boolv = td_calloc(m, 1);
			*slot = mc;
		}
		struct mcol *mc = *slot;
		if ((int)mc->col.kind != p->kind)
			continue;
		mc->present[pos / 64] |= 1ULL << (pos % 64);
		if (p->kind == QCOL_STRING)
			mc->rowstr[pos] = p->s;
		else if (p->kind == QCOL_NUMBER)
			mc->num[pos] = p->d;
		else
			mc->boolv[pos] = p->b;
	}
	/* finish columns: dictionaries, and NULL present when every row has it */
	for (size_t ci = 0; ci < nchunks; ci++) {
		size_t m = ms->chunks[ci].n;
		for (size_t p = 0; p < ms->npaths; p++) {
			struct mcol *mc = ms->mchunks[ci].cols[p];
			if (!mc)
				continue;
			size_t have = 0;
			for (size_t j = 0; j < m; j++)
				have += (mc->present[j / 64] >> (j % 64)) & 1;
			if (mc->col.kind == QCOL_STRING) {
				const char **d = td_malloc((have ? have : 1) * sizeof(char *));
				size_t nd = 0;
				for (size_t j = 0; j < m; j++)
					if ((mc->present[j / 64] >> (j % 64)) & 1)
						d[nd++] = mc->rowstr[j];
				qsort(d, nd, sizeof(*d), cmp_cstr);
				size_t u = 0;
				for (size_t j = 0; j < nd; j++)
					if (u == 0 || strcmp(d[u - 1], d[j]) != 0)
						d[u++] = d[j];
				mc->code = td_calloc(m ? m : 1, sizeof(uint32_t));
				for (size_t j = 0; j < m; j++) {
					if (!((mc->present[j / 64] >> (j % 64)) & 1))
						continue;
					const char **hit =
					    bsearch(&mc->rowstr[j], d, u, sizeof(*d), cmp_cstr);
					mc->code[j] = (uint32_t)(hit - d);
				}
				mc->dict = d;
				mc->col.code = mc->code;
				mc->col.dict = d;
				mc->col.ndict = u;
			}
			mc->col.num = mc->num;
			mc->col.boolv = mc->boolv;
			mc->col.present = have == m ? NULL : mc->present;
		}
	}
	free(chunk_of);
	free(pos_of);
	free(per_name);
	free(k);
	ms->src.ctx = ms;
	ms->src.chunks = chunks_cb;
	ms->src.event_names = names_cb;
	ms->src.canonical = ms->canonical;
	ms->src.npersons = ms->persons_set ? ms->npersons : ms->maxpid1;
}

const struct query_source *memsource_source(struct memsource *ms)
{
	return &ms->src;
}
