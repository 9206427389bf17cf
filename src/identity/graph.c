/*
 * graph.c - the identity graph: resolution of one message (the rules are in
 * identity.h), persons as union-find sets kept exact (every member of the
 * smaller set is relabelled, so canonical[] needs no find), the merge and
 * conflict history, and lookups for the profile API.
 */
#include "base/log.h"
#include "base/td.h"
#include "identity/identity_int.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_CANDS  32
#define MAX_KEY	   (IDENTITY_MAX_TYPE + 1 + IDENTITY_MAX_VALUE)
#define MAX_MSGID  200 /* bytes of a messageId kept in the history */
#define STRS_MAX   ((size_t)1 << 40)
#define LOGBUF_MAX ((size_t)1 << 40)

char *identity_config_dup(struct identity_config *dst, const struct identity_config *c)
{
	*dst = *c;
	size_t need = 0;
	for (size_t i = 0; i < c->ntraits; i++)
		need += strlen(c->traits[i]) + 1;
	for (size_t i = 0; i < c->nblocked; i++)
		need += strlen(c->blocked[i]) + 1;
	char *strs = td_malloc(need + 1), *p = strs;
	for (size_t i = 0; i < c->ntraits; i++) {
		size_t n = strlen(c->traits[i]) + 1;
		memcpy(p, c->traits[i], n);
		dst->traits[i] = p;
		p += n;
	}
	for (size_t i = 0; i < c->nblocked; i++) {
		size_t n = strlen(c->blocked[i]) + 1;
		memcpy(p, c->blocked[i], n);
		dst->blocked[i] = p;
		p += n;
	}
	return strs;
}

static void copy_config(struct identity *g, const struct identity_config *c)
{
	g->cfg_strs = identity_config_dup(&g->cfg, c);
	for (int i = 0; i < IDENTITY_NCLASSES; i++)
		g->rank[g->cfg.priority[i] % IDENTITY_NCLASSES] = (uint8_t)i;
}

static int check_config(const struct identity_config *c, char *err, size_t errcap)
{
	bool seen[IDENTITY_NCLASSES] = {false};
	for (int i = 0; i < IDENTITY_NCLASSES; i++) {
		if (c->limit[i] == 0) {
			snprintf(err, errcap, "identity: the %s limit must be at least 1",
				 identity_class_name((enum identity_class)i));
			return TD_EINVAL;
		}
		if (c->priority[i] >= IDENTITY_NCLASSES || seen[c->priority[i]]) {
			snprintf(err, errcap,
				 "identity: the priority must name each of the %d classes once",
				 IDENTITY_NCLASSES);
			return TD_EINVAL;
		}
		seen[c->priority[i]] = true;
	}
	if (c->ntraits > IDENTITY_MAX_TRAITS || c->nblocked > IDENTITY_MAX_BLOCKED) {
		snprintf(err, errcap,
			 "identity: at most %d identifier traits and %d blocked values",
			 IDENTITY_MAX_TRAITS, IDENTITY_MAX_BLOCKED);
		return TD_EINVAL;
	}
	for (size_t i = 0; i < c->ntraits; i++) {
		size_t n = strlen(c->traits[i]);
		if (n == 0 || n > IDENTITY_MAX_TYPE || strchr(c->traits[i], ':') ||
		    strchr(c->traits[i], '.')) {
			snprintf(
			    err, errcap,
			    "identity: identifier trait '%s' must be 1 to %d bytes without ':' "
			    "or '.'",
			    c->traits[i], IDENTITY_MAX_TYPE);
			return TD_EINVAL;
		}
	}
	return 0;
}

int identity_open(struct identity **out, const char *path, const struct identity_config *c,
		  uint64_t upto_lsn, uint32_t min_persons, bool read_only, char *err, size_t errcap)
{
	struct identity_config def;
	if (!c) {
		identity_config_default(&def);
		c = &def;
	}
	if (errcap)
		err[0] = '\0';
	int rc = check_config(c, err, errcap);
	if (rc)
		return rc;
	struct identity *g = td_calloc(1, sizeof(*g));
	copy_config(g, c);
	pthread_mutex_init(&g->lock, NULL);
	g->fd = -1;
	td_buf_init(&g->strs, STRS_MAX);
	td_buf_init(&g->logbuf, LOGBUF_MAX);
	if (path) {
		rc = identity_log_open(g, path, upto_lsn, read_only, err, errcap);
		if (!rc && g->npids < min_persons) {
			snprintf(err, errcap,
				 "%s: holds %u persons, fewer than the %u the store's manifest "
				 "counts",
				 path, g->npids, min_persons);
			rc = TD_ECORRUPT;
		}
		if (rc) {
			identity_close(g);
			return rc;
		}
	}
	*out = g;
	return 0;
}

void identity_close(struct identity *g)
{
	if (!g)
		return;
	if (g->fd >= 0)
		close(g->fd);
	identity_view_release(g->view);
	free(g->canon);
	free(g->p);
	free(g->ids);
	free(g->keys);
	free(g->hist);
	free(g->path);
	free(g->cfg_strs);
	identity_table_release(&g->table);
	td_buf_release(&g->strs);
	td_buf_release(&g->logbuf);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

/* ---- changes (caller holds lock) ---------------------------------------- */

uint32_t identity_new_person(struct identity *g, uint64_t lsn)
{
	if (g->npids == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 4096;
		g->canon = td_realloc(g->canon, (size_t)g->cap * sizeof(*g->canon));
		g->p = td_realloc(g->p, (size_t)g->cap * sizeof(*g->p));
	}
	uint32_t pid = g->npids;
	g->canon[pid] = pid;
	g->p[pid] = (struct identity_person){.next = pid,
					     .size = 1,
					     .ids = IDENTITY_NONE,
					     .ids_tail = IDENTITY_NONE,
					     .hist = IDENTITY_NONE,
					     .hist_tail = IDENTITY_NONE};
	__atomic_store_n(&g->npids, pid + 1, __ATOMIC_RELAXED);
	g->persons++;
	g->changed = true;
	identity_log_person(g, lsn);
	return pid;
}

uint32_t identity_link(struct identity *g, uint64_t lsn, uint32_t pid, const char *key, size_t len,
		       enum identity_class cls, struct identity_hash h)
{
	if (g->nids == g->capids) {
		g->capids = g->capids ? g->capids * 2 : 4096;
		g->ids = td_realloc(g->ids, (size_t)g->capids * sizeof(*g->ids));
	}
	if (g->keys_len + len + 1 > g->keys_cap) {
		size_t c = g->keys_cap ? g->keys_cap * 2 : 65536;
		while (c < g->keys_len + len + 1)
			c *= 2;
		g->keys = td_realloc(g->keys, c);
		g->keys_cap = c;
	}
	memcpy(g->keys + g->keys_len, key, len);
	g->keys[g->keys_len + len] = '\0';
	uint32_t id = g->nids++;
	g->ids[id] = (struct identity_ident){.off = g->keys_len,
					     .pid = pid,
					     .next = IDENTITY_NONE,
					     .len = (uint16_t)len,
					     .cls = cls};
	g->keys_len += len + 1;
	struct identity_person *p = &g->p[pid];
	if (p->ids_tail == IDENTITY_NONE)
		p->ids = id;
	else
		g->ids[p->ids_tail].next = id;
	p->ids_tail = id;
	struct identity_person *root = &g->p[g->canon[pid]];
	if (root->cnt[cls] < UINT8_MAX)
		root->cnt[cls]++;
	identity_table_put(&g->table, h, id);
	identity_log_link(g, lsn, pid, cls, key, len);
	return id;
}

static uint32_t add_hist(struct identity *g, uint32_t person, const struct identity_hist *h)
{
	if (g->nhist == g->caphist) {
		g->caphist = g->caphist ? g->caphist * 2 : 1024;
		g->hist = td_realloc(g->hist, (size_t)g->caphist * sizeof(*g->hist));
	}
	uint32_t i = g->nhist++;
	g->hist[i] = *h;
	g->hist[i].next = IDENTITY_NONE;
	struct identity_person *p = &g->p[person];
	if (p->hist_tail == IDENTITY_NONE)
		p->hist = i;
	else
		g->hist[p->hist_tail].next = i;
	p->hist_tail = i;
	return i;
}

static uint64_t put_strs(struct identity *g, const char *a, size_t alen, const char *b, size_t blen)
{
	uint64_t off = g->strs.len;
	alen = TD_MIN(alen, MAX_MSGID);
	if (td_buf_append(&g->strs, a, alen) || td_buf_putc(&g->strs, '\0') ||
	    td_buf_append(&g->strs, b, blen) || td_buf_putc(&g->strs, '\0'))
		td_log_error("identity: history strings past %zu bytes", (size_t)STRS_MAX);
	return off;
}

void identity_merge(struct identity *g, uint32_t winner, uint32_t loser, uint64_t lsn, int64_t ts,
		    const char *msgid, size_t msgid_len, uint32_t kept, uint32_t merged)
{
	struct identity_person *w = &g->p[winner], *l = &g->p[loser];
	uint32_t x = loser;
	do {
		g->canon[x] = winner;
		x = g->p[x].next;
	} while (x != loser);
	uint32_t t = w->next;
	w->next = l->next;
	l->next = t;
	w->size += l->size;
	for (int c = 0; c < IDENTITY_NCLASSES; c++)
		w->cnt[c] = (uint8_t)TD_MIN(255, w->cnt[c] + l->cnt[c]);
	if (l->hist != IDENTITY_NONE) {
		if (w->hist_tail == IDENTITY_NONE)
			w->hist = l->hist;
		else
			g->hist[w->hist_tail].next = l->hist;
		w->hist_tail = l->hist_tail;
		l->hist = l->hist_tail = IDENTITY_NONE;
	}
	struct identity_hist h = {.lsn = lsn,
				  .ts = ts,
				  .str = put_strs(g, msgid, msgid_len, "", 0),
				  .winner = winner,
				  .loser = loser,
				  .kept = kept,
				  .merged = merged,
				  .kind = IDENTITY_EV_MERGE};
	add_hist(g, winner, &h);
	g->persons--;
	g->merges++;
	g->changed = true;
	identity_log_merge(g, &h, msgid, TD_MIN(msgid_len, MAX_MSGID));
	if (g->on_merge && !g->replaying)
		g->on_merge(g->on_merge_ctx, winner, loser);
}

void identity_set_merge_hook(struct identity *g, identity_merge_fn fn, void *ctx)
{
	pthread_mutex_lock(&g->lock);
	g->on_merge = fn;
	g->on_merge_ctx = ctx;
	pthread_mutex_unlock(&g->lock);
}

void identity_conflict(struct identity *g, uint32_t person, uint32_t other, enum identity_class cls,
		       uint64_t lsn, int64_t ts, const char *msgid, size_t msgid_len, uint32_t kept,
		       const char *key, size_t key_len)
{
	struct identity_hist h = {.lsn = lsn,
				  .ts = ts,
				  .str = put_strs(g, msgid, msgid_len, key, key_len),
				  .winner = person,
				  .loser = other,
				  .kept = kept,
				  .merged = IDENTITY_NONE,
				  .kind = IDENTITY_EV_CONFLICT,
				  .cls = cls};
	add_hist(g, person, &h);
	g->conflicts[cls]++;
	identity_log_conflict(g, &h, msgid, TD_MIN(msgid_len, MAX_MSGID), key, key_len);
}

/* ---- resolution ----------------------------------------------------------- */

struct cand {
	struct identity_hash h;
	uint32_t id; /* identifier id, IDENTITY_NONE while new */
	uint16_t klen, order;
	uint8_t cls, rank;
	char key[MAX_KEY + 1];
};

struct cands {
	struct cand c[MAX_CANDS];
	uint8_t at[MAX_CANDS]; /* the candidates in resolution order */
	size_t n;
};

static void count_refused(struct identity *g)
{
	__atomic_add_fetch(&g->refused, 1, __ATOMIC_RELAXED);
}

/* Adds "type:normalized value" unless refused or already there. */
static void add_cand(struct identity *g, struct cands *cs, enum identity_class cls,
		     const char *type, size_t tlen, const char *v, size_t len)
{
	if (cs->n == MAX_CANDS)
		return;
	struct cand *c = &cs->c[cs->n];
	if (tlen == 0 || tlen > IDENTITY_MAX_TYPE || memchr(type, ':', tlen)) {
		count_refused(g);
		return;
	}
	memcpy(c->key, type, tlen);
	c->key[tlen] = ':';
	int vl = identity_normalize(g, cls, v, len, c->key + tlen + 1);
	if (vl < 0) {
		count_refused(g);
		return;
	}
	c->klen = (uint16_t)(tlen + 1 + (size_t)vl);
	c->h = identity_hash_key(c->key, c->klen);
	for (size_t i = 0; i < cs->n; i++)
		if (cs->c[i].h.h0 == c->h.h0 && cs->c[i].h.h1 == c->h.h1)
			return;
	c->id = identity_table_find(&g->table, c->h);
	c->cls = (uint8_t)cls;
	c->rank = g->rank[cls];
	c->order = (uint16_t)cs->n;
	cs->n++;
}

static bool is_trait_id(const struct identity *g, const char *name, size_t n)
{
	for (size_t i = 0; i < g->cfg.ntraits; i++)
		if (strlen(g->cfg.traits[i]) == n && !memcmp(g->cfg.traits[i], name, n))
			return true;
	return false;
}

/* The class of an identifier type named by a message or a lookup. */
static enum identity_class type_class(const struct identity *g, const char *t, size_t n)
{
	if ((n == 7 && !memcmp(t, "user_id", 7)) || (n == 6 && !memcmp(t, "userId", 6)))
		return IDENTITY_USER;
	if (n == 5 && !memcmp(t, "email", 5))
		return IDENTITY_EMAIL;
	if (n == 5 && !memcmp(t, "phone", 5))
		return IDENTITY_PHONE;
	if ((n == 12 && !memcmp(t, "anonymous_id", 12)) ||
	    (n == 11 && !memcmp(t, "anonymousId", 11)))
		return IDENTITY_ANON;
	return is_trait_id(g, t, n) ? IDENTITY_TRAIT : IDENTITY_EXTERNAL;
}

/* The canonical type name of a class, for the classes with one type. */
static const char *class_type(enum identity_class c)
{
	switch (c) {
	case IDENTITY_USER:
		return "user_id";
	case IDENTITY_EMAIL:
		return "email";
	case IDENTITY_PHONE:
		return "phone";
	case IDENTITY_ANON:
		return "anonymous_id";
	default:
		return NULL;
	}
}

static void add_typed(struct identity *g, struct cands *cs, const char *type, size_t tlen,
		      const char *v, size_t len)
{
	enum identity_class cls = type_class(g, type, tlen);
	const char *ct = class_type(cls);
	if (ct)
		add_cand(g, cs, cls, ct, strlen(ct), v, len);
	else
		add_cand(g, cs, cls, type, tlen, v, len);
}

/* context.externalIds: [{"id": "...", "type": "...", ...}, ...] */
static void add_external(struct identity *g, struct cands *cs, const char *json, size_t len)
{
	cJSON *a = cJSON_ParseWithLength(json, len);
	if (!cJSON_IsArray(a)) {
		count_refused(g);
		cJSON_Delete(a);
		return;
	}
	const cJSON *e;
	cJSON_ArrayForEach(e, a)
	{
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
		char num[32];
		const char *v = NULL;
		if (cJSON_IsString(id)) {
			v = id->valuestring;
		} else if (cJSON_IsNumber(id)) {
			snprintf(num, sizeof(num), "%.17g", id->valuedouble);
			v = num;
		}
		if (!v || !cJSON_IsString(type)) {
			count_refused(g);
			continue;
		}
		add_typed(g, cs, type->valuestring, strlen(type->valuestring), v, strlen(v));
	}
	cJSON_Delete(a);
}

/* Within a class, candidates lead in this order of the fields they came
 * from (then in message order): an alias's userId before its previousId. */
static const uint8_t field_rank[] = {
    [IDENTITY_F_USER_ID] = 0,	   [IDENTITY_F_TRAIT] = 1,	 [IDENTITY_F_CONTEXT_TRAIT] = 2,
    [IDENTITY_F_EXTERNAL_IDS] = 3, [IDENTITY_F_PREVIOUS_ID] = 4, [IDENTITY_F_ANON_ID] = 5,
};

static void gather(struct identity *g, const struct identity_msg *m, struct cands *cs)
{
	cs->n = 0;
	for (size_t i = 0; i < m->n; i++) {
		size_t first = cs->n;
		const char *name = m->buf + m->f[i].off;
		size_t nl = m->f[i].name_len;
		const char *v = name + nl;
		size_t len = m->f[i].len;
		switch (m->f[i].field) {
		case IDENTITY_F_USER_ID:
			add_cand(g, cs, IDENTITY_USER, "user_id", 7, v, len);
			break;
		case IDENTITY_F_ANON_ID:
			add_cand(g, cs, IDENTITY_ANON, "anonymous_id", 12, v, len);
			break;
		case IDENTITY_F_PREVIOUS_ID: {
			/* the user_id it names if that exists, else an anonymous_id */
			size_t at = cs->n;
			add_cand(g, cs, IDENTITY_USER, "user_id", 7, v, len);
			if (cs->n > at && cs->c[at].id == IDENTITY_NONE) {
				cs->n = at;
				add_cand(g, cs, IDENTITY_ANON, "anonymous_id", 12, v, len);
			}
			break;
		}
		case IDENTITY_F_TRAIT:
			if (m->is_group)
				break;
			/* fall through */
		case IDENTITY_F_CONTEXT_TRAIT:
			/* only email, phone and the configured identifier traits */
			if ((nl == 5 && (!memcmp(name, "email", 5) || !memcmp(name, "phone", 5))) ||
			    is_trait_id(g, name, nl))
				add_typed(g, cs, name, nl, v, len);
			break;
		case IDENTITY_F_EXTERNAL_IDS:
			add_external(g, cs, v, len);
			break;
		}
		uint8_t fr =
		    m->f[i].field < TD_ARRAY_LEN(field_rank) ? field_rank[m->f[i].field] : 6;
		for (size_t k = first; k < cs->n; k++)
			cs->c[k].order = (uint16_t)(fr << 8 | (k & 0xff));
	}
	/* insertion sort of their indexes by (priority, order in the message) */
	for (size_t i = 0; i < cs->n; i++) {
		const struct cand *t = &cs->c[i];
		size_t j = i;
		while (j > 0 && (cs->c[cs->at[j - 1]].rank > t->rank ||
				 (cs->c[cs->at[j - 1]].rank == t->rank &&
				  cs->c[cs->at[j - 1]].order > t->order))) {
			cs->at[j] = cs->at[j - 1];
			j--;
		}
		cs->at[j] = (uint8_t)i;
	}
}

/* The first class (in priority order) whose limit merging a and b would
 * break, or -1 when the merge fits. */
static int merge_breaks(const struct identity *g, uint32_t a, uint32_t b)
{
	for (int i = 0; i < IDENTITY_NCLASSES; i++) {
		int c = g->cfg.priority[i];
		if (g->p[a].cnt[c] + g->p[b].cnt[c] > g->cfg.limit[c])
			return c;
	}
	return -1;
}

uint32_t identity_resolve(struct identity *g, const struct identity_msg *m)
{
	struct cands cs;
	gather(g, m, &cs);
	/* the common case changes nothing: every identifier known, one person */
#define CAND(i) (&cs.c[cs.at[i]])
	if (cs.n && CAND(0)->id != IDENTITY_NONE) {
		uint32_t p = g->canon[g->ids[CAND(0)->id].pid];
		size_t i = 1;
		while (i < cs.n && CAND(i)->id != IDENTITY_NONE &&
		       g->canon[g->ids[CAND(i)->id].pid] == p)
			i++;
		if (i == cs.n)
			return p;
	}
	const char *msgid = m->message_id ? m->message_id : "";
	size_t ml = m->message_id ? m->message_id_len : 0;
	pthread_mutex_lock(&g->lock);
	uint32_t P = IDENTITY_NONE, lead = IDENTITY_NONE;
	for (size_t i = 0; i < cs.n; i++) {
		struct cand *c = CAND(i);
		uint32_t r = c->id != IDENTITY_NONE ? g->canon[g->ids[c->id].pid] : IDENTITY_NONE;
		if (P == IDENTITY_NONE) {
			if (r == IDENTITY_NONE) {
				/* a new leader joins the person of the first known identifier
				 * when its limit allows (a login links, it does not merge) */
				uint32_t q = IDENTITY_NONE;
				for (size_t k = i + 1; k < cs.n && q == IDENTITY_NONE; k++)
					if (CAND(k)->id != IDENTITY_NONE)
						q = g->canon[g->ids[CAND(k)->id].pid];
				if (q != IDENTITY_NONE &&
				    g->p[q].cnt[c->cls] < g->cfg.limit[c->cls])
					P = q;
				else
					P = identity_new_person(g, m->lsn);
				c->id = identity_link(g, m->lsn, P, c->key, c->klen, c->cls, c->h);
			} else {
				P = r;
			}
			lead = c->id;
			continue;
		}
		if (r == P)
			continue;
		if (r != IDENTITY_NONE) {
			int broken = merge_breaks(g, P, r);
			if (broken < 0) {
				bool keep = g->p[P].size > g->p[r].size ||
					    (g->p[P].size == g->p[r].size && P < r);
				uint32_t w = keep ? P : r, l = keep ? r : P;
				identity_merge(g, w, l, m->lsn, m->ts, msgid, ml, lead, c->id);
				P = w;
			} else {
				identity_conflict(g, P, r, (enum identity_class)broken, m->lsn,
						  m->ts, msgid, ml, lead, c->key, c->klen);
			}
		} else if (g->p[P].cnt[c->cls] < g->cfg.limit[c->cls]) {
			c->id = identity_link(g, m->lsn, P, c->key, c->klen, c->cls, c->h);
		} else {
			identity_conflict(g, P, IDENTITY_NONE, c->cls, m->lsn, m->ts, msgid, ml,
					  lead, c->key, c->klen);
		}
	}
	if (P == IDENTITY_NONE)
		P = identity_new_person(g, m->lsn); /* nothing usable: a person of its own */
	pthread_mutex_unlock(&g->lock);
	return P;
#undef CAND
}

/* ---- lookups ---------------------------------------------------------------- */

uint32_t identity_npids(const struct identity *g)
{
	return __atomic_load_n(&g->npids, __ATOMIC_RELAXED);
}

uint32_t identity_canonical(struct identity *g, uint32_t pid)
{
	pthread_mutex_lock(&g->lock);
	uint32_t c = pid < g->npids ? g->canon[pid] : IDENTITY_NONE;
	pthread_mutex_unlock(&g->lock);
	return c;
}

uint32_t identity_find(struct identity *g, const char *type, const char *value)
{
	size_t tl = strlen(type);
	enum identity_class cls = type_class(g, type, tl);
	const char *ct = class_type(cls);
	if (ct) {
		type = ct;
		tl = strlen(ct);
	}
	char key[MAX_KEY + 1];
	if (tl == 0 || tl > IDENTITY_MAX_TYPE)
		return IDENTITY_NONE;
	memcpy(key, type, tl);
	key[tl] = ':';
	int vl = identity_normalize(g, cls, value, strlen(value), key + tl + 1);
	if (vl < 0)
		return IDENTITY_NONE;
	struct identity_hash h = identity_hash_key(key, tl + 1 + (size_t)vl);
	pthread_mutex_lock(&g->lock);
	uint32_t id = identity_table_find(&g->table, h), r = IDENTITY_NONE;
	if (id != IDENTITY_NONE)
		r = g->canon[g->ids[id].pid];
	pthread_mutex_unlock(&g->lock);
	return r;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* A growing list of ids, sorted before use. */
struct u32list {
	uint32_t *v;
	size_t n, cap;
};

static void list_push(struct u32list *l, uint32_t x)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = td_realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = x;
}

/* Takes the lock when person is a canonical person (true); else leaves it. */
static bool lock_person(struct identity *g, uint32_t person)
{
	pthread_mutex_lock(&g->lock);
	if (person < g->npids && g->canon[person] == person)
		return true;
	pthread_mutex_unlock(&g->lock);
	return false;
}

void identity_person_ids(struct identity *g, uint32_t person, identity_id_fn fn, void *ctx)
{
	if (!lock_person(g, person))
		return;
	struct u32list l = {0};
	uint32_t x = person;
	do {
		for (uint32_t id = g->p[x].ids; id != IDENTITY_NONE; id = g->ids[id].next)
			list_push(&l, id);
		x = g->p[x].next;
	} while (x != person);
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), cmp_u32);
	for (size_t i = 0; i < l.n; i++) {
		const struct identity_ident *d = &g->ids[l.v[i]];
		char buf[MAX_KEY + 1];
		memcpy(buf, g->keys + d->off, d->len + 1u);
		char *colon = strchr(buf, ':');
		*colon = '\0';
		fn(ctx, buf, colon + 1, (enum identity_class)d->cls);
	}
	free(l.v);
	pthread_mutex_unlock(&g->lock);
}

size_t identity_person_members(struct identity *g, uint32_t person, uint32_t **out)
{
	*out = NULL;
	if (!lock_person(g, person))
		return 0;
	size_t n = g->p[person].size, k = 0;
	uint32_t *list = td_malloc(n * sizeof(*list));
	uint32_t x = person;
	do {
		list[k++] = x;
		x = g->p[x].next;
	} while (x != person && k < n);
	pthread_mutex_unlock(&g->lock);
	qsort(list, k, sizeof(*list), cmp_u32);
	*out = list;
	return k;
}

static const char *key_of(const struct identity *g, uint32_t id)
{
	return id == IDENTITY_NONE ? "" : g->keys + g->ids[id].off;
}

void identity_person_history(struct identity *g, uint32_t person, identity_event_fn fn, void *ctx)
{
	if (!lock_person(g, person))
		return;
	struct u32list l = {0};
	for (uint32_t i = g->p[person].hist; i != IDENTITY_NONE; i = g->hist[i].next)
		list_push(&l, i);
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), cmp_u32);
	for (size_t i = 0; i < l.n; i++) {
		const struct identity_hist *h = &g->hist[l.v[i]];
		const char *msgid = g->strs.data + h->str;
		struct identity_event e = {.kind = h->kind,
					   .lsn = h->lsn,
					   .ts = h->ts,
					   .message_id = msgid,
					   .kept = key_of(g, h->kept),
					   .merged = h->kind == IDENTITY_EV_MERGE
							 ? key_of(g, h->merged)
							 : msgid + strlen(msgid) + 1,
					   .cls = (enum identity_class)h->cls,
					   .winner = h->winner,
					   .loser = h->loser};
		fn(ctx, &e);
	}
	free(l.v);
	pthread_mutex_unlock(&g->lock);
}

void identity_get_stats(struct identity *g, struct identity_stats *st)
{
	pthread_mutex_lock(&g->lock);
	memset(st, 0, sizeof(*st));
	st->pids = g->npids;
	st->persons = g->persons;
	st->identifiers = g->nids;
	st->merges = g->merges;
	memcpy(st->conflicts, g->conflicts, sizeof(st->conflicts));
	st->refused = __atomic_load_n(&g->refused, __ATOMIC_RELAXED);
	st->log_bytes = g->log_bytes + g->logbuf.len;
	pthread_mutex_unlock(&g->lock);
}
