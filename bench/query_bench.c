/*
 * query_bench.c - times the analytics query engine on a large synthetic data
 * set: the demo generator's shop journeys (src/demo/demo.h) turned into an
 * in-memory source shaped like the column store's (per event name, chunks of
 * time-ordered rows with raw ts / pid arrays), then four queries run best of
 * N through query_run_limited():
 *
 *   (1) trend: count per day of "Product Viewed" over the whole period;
 *   (2) trend: unique persons per day over all events;
 *   (3) funnel: Product Viewed -> Product Added -> Checkout Started ->
 *       Order Completed, sequential, 7-day window, whole period;
 *   (4) retention: first-time cohorts of any event, any event as return,
 *       weekly, 8 periods, whole period.
 *
 * Each generated line is parsed only as far as needed: the event name ("type"
 * and, for track, "event"; other types become "$page", "$identify", ...), the
 * timestamp and the person key (userId if present, else anonymousId), mapped
 * to dense person ids. A message that carries both ids merges the anonymous
 * person into the user (canonical[anon] = user), so the source has identity
 * merges as the store will.
 *
 * Usage: query-bench [--events N] [--users U] [--days D] [--seed S]
 *                    [--runs R] [--threads T] [--chunk-rows C] [--query K]
 *                    [--cache FILE]
 */
#include "base/td.h"
#include "base/timeutil.h"
#include "demo/demo.h"
#include "query/query.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#define QB_END_MS      1767225600000LL /* 2026-01-01T00:00:00Z: fixed, so dates are too */
#define QB_MAX_NAMES   64
#define QB_MAX_KEY     128
#define QB_NAME_LEN    64
#define QB_DEF_CHUNK   1000000u
#define QB_MAX_CHUNK   100000000u
#define QB_MAX_RUNS    100
#define QB_MAX_THREADS 64

/* ---- the in-memory source ------------------------------------------- */

struct qb_name {
	char name[QB_NAME_LEN];
	size_t len;
	struct query_chunk *chunks; /* sealed chunks */
	size_t nchunks, cap;
	int64_t *ts; /* the open chunk */
	uint32_t *pid;
	size_t n;
	uint64_t rows;
};

struct qb_data {
	struct qb_name names[QB_MAX_NAMES];
	const char *name_ptrs[QB_MAX_NAMES];
	size_t nnames;
	size_t chunk_rows;
	struct query_chunk *all; /* every chunk, for event "" */
	size_t nall;
	/* person keys: open addressing, slot = pid + 1 (0 empty) */
	uint32_t *slots;
	uint64_t *hashes;
	size_t nslots;
	char *keys; /* key bytes of pid i at koff[i], length klen[i] */
	size_t keys_len, keys_cap;
	uint64_t *koff;
	uint8_t *klen;
	uint32_t *canonical;
	uint32_t npersons, pcap;
	uint64_t events, merges;
	/* the date part of the last timestamp parsed, and its day number */
	char last_date[10];
	int64_t last_day;
	int parse_errors;
	struct timespec started;
};

static int qb_column(const struct query_chunk *c, const char *path, struct query_column *col)
{
	(void)c;
	(void)path;
	(void)col;
	return TD_ENOTFOUND; /* the benchmark's queries read no property */
}

static size_t qb_chunks(void *ctx, const char *event, const struct query_chunk **out)
{
	struct qb_data *d = ctx;
	if (!*event) {
		*out = d->all;
		return d->nall;
	}
	for (size_t i = 0; i < d->nnames; i++)
		if (strcmp(d->names[i].name, event) == 0) {
			*out = d->names[i].chunks;
			return d->names[i].nchunks;
		}
	*out = NULL;
	return 0;
}

static size_t qb_event_names(void *ctx, const char *const **out)
{
	struct qb_data *d = ctx;
	*out = d->name_ptrs;
	return d->nnames;
}

static void qb_seal(struct qb_data *d, struct qb_name *nm)
{
	if (!nm->n)
		return;
	if (nm->nchunks == nm->cap) {
		nm->cap = nm->cap ? nm->cap * 2 : 16;
		nm->chunks = td_realloc(nm->chunks, nm->cap * sizeof(*nm->chunks));
	}
	struct query_chunk *c = &nm->chunks[nm->nchunks++];
	memset(c, 0, sizeof(*c));
	c->n = nm->n;
	c->ts = td_realloc(nm->ts, nm->n * sizeof(int64_t));
	c->pid = td_realloc(nm->pid, nm->n * sizeof(uint32_t));
	c->column = qb_column;
	nm->ts = NULL;
	nm->pid = NULL;
	nm->n = 0;
	(void)d;
}

static struct qb_name *qb_name_of(struct qb_data *d, const char *s, size_t len)
{
	for (size_t i = 0; i < d->nnames; i++) {
		struct qb_name *nm = &d->names[i];
		if (nm->len == len && memcmp(nm->name, s, len) == 0)
			return nm;
	}
	if (d->nnames == QB_MAX_NAMES || len >= QB_NAME_LEN)
		return NULL;
	struct qb_name *nm = &d->names[d->nnames];
	memcpy(nm->name, s, len);
	nm->name[len] = '\0';
	nm->len = len;
	d->name_ptrs[d->nnames++] = nm->name;
	return nm;
}

static void qb_grow_slots(struct qb_data *d)
{
	size_t n = d->nslots ? d->nslots * 2 : (1u << 20);
	uint32_t *slots = td_calloc(n, sizeof(*slots));
	for (uint32_t p = 0; p < d->npersons; p++) {
		size_t i = d->hashes[p] & (n - 1);
		while (slots[i])
			i = (i + 1) & (n - 1);
		slots[i] = p + 1;
	}
	free(d->slots);
	d->slots = slots;
	d->nslots = n;
}

/* Dense person id of a key, added when new. */
static uint32_t qb_person(struct qb_data *d, const char *k, size_t len)
{
	if ((size_t)d->npersons * 2 >= d->nslots)
		qb_grow_slots(d);
	uint64_t h = XXH3_64bits(k, len);
	size_t mask = d->nslots - 1, i = h & mask;
	for (;;) {
		uint32_t s = d->slots[i];
		if (!s)
			break;
		uint32_t p = s - 1;
		if (d->hashes[p] == h && d->klen[p] == len &&
		    memcmp(d->keys + d->koff[p], k, len) == 0)
			return p;
		i = (i + 1) & mask;
	}
	if (d->npersons == d->pcap) {
		d->pcap = d->pcap ? d->pcap * 2 : (1u << 20);
		d->hashes = td_realloc(d->hashes, d->pcap * sizeof(*d->hashes));
		d->koff = td_realloc(d->koff, d->pcap * sizeof(*d->koff));
		d->klen = td_realloc(d->klen, d->pcap * sizeof(*d->klen));
		d->canonical = td_realloc(d->canonical, d->pcap * sizeof(*d->canonical));
	}
	if (d->keys_len + len > d->keys_cap) {
		d->keys_cap = d->keys_cap ? d->keys_cap * 2 : (64u << 20);
		d->keys = td_realloc(d->keys, d->keys_cap);
	}
	uint32_t p = d->npersons++;
	memcpy(d->keys + d->keys_len, k, len);
	d->koff[p] = d->keys_len;
	d->klen[p] = (uint8_t)len;
	d->keys_len += len;
	d->hashes[p] = h;
	d->canonical[p] = p;
	d->slots[i] = p + 1;
	return p;
}

/* ---- parsing the generator's lines ---------------------------------- */

static bool qb_digits(const char *s, int n, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" -> ms since the epoch. */
static bool qb_time(struct qb_data *d, const char *s, int64_t *out)
{
	if (memcmp(s, d->last_date, 10) != 0) {
		unsigned y, m, dd;
		if (!qb_digits(s, 4, &y) || !qb_digits(s + 5, 2, &m) || !qb_digits(s + 8, 2, &dd))
			return false;
		d->last_day = td_days_from_civil(y, m, dd);
		memcpy(d->last_date, s, 10);
	}
	unsigned hh, mm, ss, ms;
	if (s[10] != 'T' || !qb_digits(s + 11, 2, &hh) || !qb_digits(s + 14, 2, &mm) ||
	    !qb_digits(s + 17, 2, &ss) || !qb_digits(s + 20, 3, &ms) || s[23] != 'Z')
		return false;
	*out = d->last_day * 86400000LL + (int64_t)((hh * 3600 + mm * 60 + ss) * 1000 + ms);
	return true;
}

/* The value of "key":"value" at p (p points at the opening quote of key). */
static const char *qb_field(const char *p, const char *key, size_t *len)
{
	size_t kl = strlen(key);
	if (memcmp(p, key, kl) != 0)
		return NULL;
	const char *v = p + kl, *e = strchr(v, '"');
	if (!e)
		return NULL;
	*len = (size_t)(e - v);
	return v;
}

static void qb_progress(struct qb_data *d, uint64_t total)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double s = (double)(now.tv_sec - d->started.tv_sec) +
		   (double)(now.tv_nsec - d->started.tv_nsec) / 1e9;
	fprintf(stderr, "generated %" PRIu64 " / %" PRIu64 " events (%.0f%%), %u persons, %.1f s\n",
		d->events, total, 100.0 * (double)d->events / (double)total, d->npersons, s);
}

struct qb_emit {
	struct qb_data *d;
	uint64_t total;
};

static int qb_emit_line(void *ctx, const char *line, size_t len)
{
	struct qb_emit *em = ctx;
	struct qb_data *d = em->d;
	(void)len;
	/* {"type":"track","event":"NAME",... or {"type":"page",... */
	static const char type_key[] = "{\"type\":\"";
	if (memcmp(line, type_key, sizeof(type_key) - 1) != 0)
		goto bad;
	const char *t = line + sizeof(type_key) - 1, *te = strchr(t, '"');
	if (!te)
		goto bad;
	char name[QB_NAME_LEN];
	const char *nm_s;
	size_t nm_len;
	const char *p = te + 1;
	if ((size_t)(te - t) == 5 && memcmp(t, "track", 5) == 0) {
		nm_s = qb_field(p, ",\"event\":\"", &nm_len);
		if (!nm_s)
			goto bad;
		p = nm_s + nm_len + 1;
	} else {
		size_t tl = (size_t)(te - t);
		if (tl + 2 > sizeof(name))
			goto bad;
		name[0] = '$';
		memcpy(name + 1, t, tl);
		nm_s = name;
		nm_len = tl + 1;
	}
	const char *ts_at = strstr(p, "\"timestamp\":\"");
	if (!ts_at)
		goto bad;
	int64_t ts;
	if (!qb_time(d, ts_at + 13, &ts))
		goto bad;
	p = ts_at + 13 + 25; /* past the closing quote */
	size_t al = 0, ul = 0;
	const char *anon = qb_field(p, ",\"anonymousId\":\"", &al);
	if (anon)
		p = anon + al + 1;
	const char *user = qb_field(p, ",\"userId\":\"", &ul);
	if ((!anon && !user) || al > QB_MAX_KEY || ul > QB_MAX_KEY)
		goto bad;
	uint32_t pid;
	if (user) {
		pid = qb_person(d, user, ul);
		if (anon) {
			uint32_t a = qb_person(d, anon, al);
			if (d->canonical[a] == a && a != pid) {
				d->canonical[a] = pid;
				d->merges++;
			}
		}
	} else {
		pid = qb_person(d, anon, al);
	}
	struct qb_name *nm = qb_name_of(d, nm_s, nm_len);
	if (!nm)
		goto bad;
	if (!nm->ts) {
		nm->ts = td_malloc(d->chunk_rows * sizeof(int64_t));
		nm->pid = td_malloc(d->chunk_rows * sizeof(uint32_t));
	}
	nm->ts[nm->n] = ts;
	nm->pid[nm->n++] = pid;
	nm->rows++;
	if (nm->n == d->chunk_rows)
		qb_seal(d, nm);
	if (++d->events % 10000000 == 0)
		qb_progress(d, em->total);
	return 0;
bad:
	if (d->parse_errors++ < 5)
		fprintf(stderr, "query-bench: cannot read line: %.120s\n", line);
	return 0;
}

/* Every chunk of every name, for event "". */
static void qb_index_all(struct qb_data *d)
{
	for (size_t i = 0; i < d->nnames; i++)
		d->nall += d->names[i].nchunks;
	d->all = td_malloc((d->nall ? d->nall : 1) * sizeof(*d->all));
	size_t k = 0;
	for (size_t i = 0; i < d->nnames; i++)
		for (size_t c = 0; c < d->names[i].nchunks; c++)
			d->all[k++] = d->names[i].chunks[c];
}

/* Canonical ids must be canonical themselves (a merge target is never merged). */
static void qb_finish(struct qb_data *d)
{
	for (size_t i = 0; i < d->nnames; i++)
		qb_seal(d, &d->names[i]);
	for (uint32_t p = 0; p < d->npersons; p++) {
		uint32_t c = d->canonical[p];
		while (d->canonical[c] != c)
			c = d->canonical[c];
		d->canonical[p] = c;
	}
	qb_index_all(d);
	free(d->slots);
	free(d->hashes);
	free(d->keys);
	free(d->koff);
	free(d->klen);
	d->slots = NULL;
	d->hashes = NULL;
	d->keys = NULL;
	d->koff = NULL;
	d->klen = NULL;
}

static void qb_free(struct qb_data *d)
{
	for (size_t i = 0; i < d->nnames; i++) {
		struct qb_name *nm = &d->names[i];
		for (size_t c = 0; c < nm->nchunks; c++) {
			free((void *)nm->chunks[c].ts);
			free((void *)nm->chunks[c].pid);
		}
		free(nm->chunks);
	}
	free(d->all);
	free(d->canonical);
}

/* ---- the data set cache (--cache FILE) ------------------------------ */

/*
 * Generating 100M events takes minutes; --cache FILE keeps the data set
 * between runs. The file is for this machine only (native byte order):
 *
 *   "TDQBDATA"  u32 version  u64 seed  u64 events  u32 users  u32 days
 *   i64 end_ms  u64 chunk_rows  u32 nnames  u32 npersons  u64 merges
 *   per name:   u32 length, the name, u64 rows, u64 chunks,
 *               per chunk: u64 n, n x i64 ts, n x u32 pid
 *   npersons x u32 canonical
 *   u64 XXH3-64 of every byte before it
 *
 * A file written with other options is replaced; a damaged one is an error.
 */
#define QB_CACHE_MAGIC	 "TDQBDATA"
#define QB_CACHE_VERSION 1u

struct qb_file {
	FILE *f;
	XXH3_state_t *h;
	bool ok;
};

static void qb_put(struct qb_file *w, const void *p, size_t n)
{
	if (w->ok && n && fwrite(p, 1, n, w->f) != n)
		w->ok = false;
	XXH3_64bits_update(w->h, p, n);
}

static void qb_get(struct qb_file *r, void *p, size_t n)
{
	if (r->ok && n && fread(p, 1, n, r->f) != n)
		r->ok = false;
	if (r->ok)
		XXH3_64bits_update(r->h, p, n);
}

/* The header fields that must match, in file order. */
struct qb_cache_head {
	char magic[8];
	uint32_t version;
	uint64_t seed, events;
	uint32_t users, days;
	int64_t end_ms;
	uint64_t chunk_rows;
};

static void qb_cache_head(struct qb_cache_head *h, const struct demo_options *o, size_t chunk)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, QB_CACHE_MAGIC, 8);
	h->version = QB_CACHE_VERSION;
	h->seed = o->seed;
	h->events = o->events;
	h->users = o->users;
	h->days = o->days;
	h->end_ms = o->end_ms;
	h->chunk_rows = chunk;
}

/* The header's fields in file order: their addresses in h and their sizes. */
#define QB_HEAD_FIELDS 8
static void qb_head_fields(struct qb_cache_head *h, void **p, size_t *n)
{
	void *ps[QB_HEAD_FIELDS] = {h->magic,  &h->version, &h->seed,	&h->events,
				    &h->users, &h->days,    &h->end_ms, &h->chunk_rows};
	size_t ns[QB_HEAD_FIELDS] = {8, 4, 8, 8, 4, 4, 8, 8};
	memcpy(p, ps, sizeof(ps));
	memcpy(n, ns, sizeof(ns));
}

static void qb_put_head(struct qb_file *w, struct qb_cache_head *h)
{
	void *p[QB_HEAD_FIELDS];
	size_t n[QB_HEAD_FIELDS];
	qb_head_fields(h, p, n);
	for (int i = 0; i < QB_HEAD_FIELDS; i++)
		qb_put(w, p[i], n[i]);
}

static void qb_get_head(struct qb_file *r, struct qb_cache_head *h)
{
	void *p[QB_HEAD_FIELDS];
	size_t n[QB_HEAD_FIELDS];
	memset(h, 0, sizeof(*h));
	qb_head_fields(h, p, n);
	for (int i = 0; i < QB_HEAD_FIELDS; i++)
		qb_get(r, p[i], n[i]);
}

/* Writes the data set to path (through path.tmp, renamed when complete). */
static int qb_cache_write(const struct qb_data *d, const struct demo_options *o, const char *path)
{
	char tmp[4096];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -1;
	struct qb_file w = {.f = fopen(tmp, "wb"), .h = XXH3_createState(), .ok = true};
	if (!w.f || !w.h) {
		if (w.f)
			fclose(w.f);
		XXH3_freeState(w.h);
		return -1;
	}
	XXH3_64bits_reset(w.h);
	struct qb_cache_head h;
	qb_cache_head(&h, o, d->chunk_rows);
	qb_put_head(&w, &h);
	uint32_t nn = (uint32_t)d->nnames;
	qb_put(&w, &nn, 4);
	qb_put(&w, &d->npersons, 4);
	qb_put(&w, &d->merges, 8);
	for (size_t i = 0; i < d->nnames; i++) {
		const struct qb_name *nm = &d->names[i];
		uint32_t len = (uint32_t)nm->len;
		uint64_t nchunks = nm->nchunks;
		qb_put(&w, &len, 4);
		qb_put(&w, nm->name, len);
		qb_put(&w, &nm->rows, 8);
		qb_put(&w, &nchunks, 8);
		for (size_t c = 0; c < nm->nchunks; c++) {
			uint64_t n = nm->chunks[c].n;
			qb_put(&w, &n, 8);
			qb_put(&w, nm->chunks[c].ts, n * sizeof(int64_t));
			qb_put(&w, nm->chunks[c].pid, n * sizeof(uint32_t));
		}
	}
	qb_put(&w, d->canonical, (size_t)d->npersons * sizeof(uint32_t));
	uint64_t sum = XXH3_64bits_digest(w.h);
	qb_put(&w, &sum, 8);
	XXH3_freeState(w.h);
	if (fclose(w.f) != 0 || !w.ok || rename(tmp, path) != 0) {
		remove(tmp);
		return -1;
	}
	return 0;
}

/* Reads the data set from path: 1 when there is none for these options
 * (no file, or one written with others), 0 when loaded, -1 when damaged. */
static int qb_cache_read(struct qb_data *d, const struct demo_options *o, const char *path)
{
	struct qb_file r = {.f = fopen(path, "rb"), .h = XXH3_createState(), .ok = true};
	if (!r.f || !r.h) {
		if (r.f)
			fclose(r.f);
		XXH3_freeState(r.h);
		return 1;
	}
	XXH3_64bits_reset(r.h);
	struct qb_cache_head want, got;
	qb_cache_head(&want, o, d->chunk_rows);
	qb_get_head(&r, &got);
	int rc = -1;
	if (!r.ok || memcmp(&want, &got, sizeof(want)) != 0) {
		rc = 1;
		goto out;
	}
	uint32_t nn = 0;
	qb_get(&r, &nn, 4);
	qb_get(&r, &d->npersons, 4);
	qb_get(&r, &d->merges, 8);
	for (uint32_t i = 0; r.ok && i < nn; i++) {
		uint32_t len = 0;
		char name[QB_NAME_LEN];
		uint64_t rows = 0, nchunks = 0;
		qb_get(&r, &len, 4);
		if (!r.ok || len >= QB_NAME_LEN)
			goto out;
		qb_get(&r, name, len);
		qb_get(&r, &rows, 8);
		qb_get(&r, &nchunks, 8);
		struct qb_name *nm = r.ok ? qb_name_of(d, name, len) : NULL;
		if (!nm)
			goto out;
		nm->rows = rows;
		for (uint64_t c = 0; r.ok && c < nchunks; c++) {
			uint64_t n = 0;
			qb_get(&r, &n, 8);
			if (!r.ok || n == 0 || n > QB_MAX_CHUNK)
				goto out;
			nm->ts = td_malloc(n * sizeof(int64_t));
			nm->pid = td_malloc(n * sizeof(uint32_t));
			nm->n = n;
			qb_get(&r, nm->ts, n * sizeof(int64_t));
			qb_get(&r, nm->pid, n * sizeof(uint32_t));
			qb_seal(d, nm);
			d->events += n;
		}
	}
	d->canonical = td_malloc(((size_t)d->npersons + 1) * sizeof(uint32_t));
	qb_get(&r, d->canonical, (size_t)d->npersons * sizeof(uint32_t));
	uint64_t want_sum = XXH3_64bits_digest(r.h), sum = 0;
	if (r.ok && fread(&sum, 1, 8, r.f) == 8 && sum == want_sum) {
		qb_index_all(d);
		rc = 0;
	}
out:
	fclose(r.f);
	XXH3_freeState(r.h);
	return rc;
}

/* ---- running the queries -------------------------------------------- */

static double qb_ms_since(const struct timespec *a)
{
	struct timespec b;
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

static uint64_t qb_rows_of(const struct qb_data *d, const char *name)
{
	uint64_t n = 0;
	for (size_t i = 0; i < d->nnames; i++)
		if (!*name || strcmp(d->names[i].name, name) == 0)
			n += d->names[i].rows;
	return n;
}

struct qb_query {
	const char *label;
	const char *json_fmt;  /* %s: date_from, %s: date_to */
	const char *events[4]; /* whose rows the query reads, for rows/s */
	double target_ms;
};

static const struct qb_query qb_queries[] = {
    {"trend count/day \"Product Viewed\"",
     "{\"kind\":\"trends\",\"series\":[{\"event\":\"Product Viewed\"}],\"interval\":\"day\","
     "\"date_from\":\"%s\",\"date_to\":\"%s\"}",
     {"Product Viewed"},
     50},
    {"trend unique persons/day, all events",
     "{\"kind\":\"trends\",\"series\":[{\"event\":\"\",\"math\":\"unique_persons\"}],"
     "\"interval\":\"day\",\"date_from\":\"%s\",\"date_to\":\"%s\"}",
     {""},
     300},
    {"funnel 4 steps sequential, 7d",
     "{\"kind\":\"funnel\",\"steps\":[{\"event\":\"Product Viewed\"},{\"event\":\"Product "
     "Added\"},{\"event\":\"Checkout Started\"},{\"event\":\"Order Completed\"}],"
     "\"window\":\"7d\",\"order\":\"sequential\",\"date_from\":\"%s\",\"date_to\":\"%s\"}",
     {"Product Viewed", "Product Added", "Checkout Started", "Order Completed"},
     300},
    {"retention weekly x8, any event",
     "{\"kind\":\"retention\",\"start\":{\"event\":\"\"},\"return\":{\"event\":\"\"},"
     "\"cohort\":\"first_time\",\"period\":\"week\",\"periods\":8,\"date_from\":\"%s\","
     "\"date_to\":\"%s\"}",
     {""},
     300},
};

static void qb_date(int64_t ms, char *out, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, cap, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

static int qb_run(const struct qb_data *d, const struct query_source *src, unsigned days, int runs,
		  unsigned threads, unsigned only)
{
	char from[48], to[48];
	qb_date(QB_END_MS - (int64_t)days * 86400000LL, from, sizeof(from));
	qb_date(QB_END_MS - 1, to, sizeof(to));
	struct query_limits lim = {.max_memory = 0, .threads = threads};
	int failed = 0;
	printf("%-40s %10s %10s %10s %14s %8s %s\n", "query", "best ms", "median ms", "cpu ms",
	       "rows/s", "target", "result");
	for (size_t qi = 0; qi < TD_ARRAY_LEN(qb_queries); qi++) {
		const struct qb_query *qq = &qb_queries[qi];
		if (only && only != qi + 1)
			continue;
		char json[1024];
		snprintf(json, sizeof(json), qq->json_fmt, from, to);
		uint64_t rows = 0;
		for (size_t e = 0; e < TD_ARRAY_LEN(qq->events) && qq->events[e]; e++)
			rows += qb_rows_of(d, qq->events[e]);
		double t[QB_MAX_RUNS], cpu_best = 0;
		size_t out_len = 0;
		for (int r = 0; r < runs; r++) {
			struct td_buf out;
			td_buf_init(&out, 64u << 20);
			char err[512];
			struct timespec a, ca, cb;
			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ca);
			clock_gettime(CLOCK_MONOTONIC, &a);
			int rc = query_run_limited(json, strlen(json), src, &lim, &out, err,
						   sizeof(err));
			t[r] = qb_ms_since(&a);
			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cb);
			double cpu = (double)(cb.tv_sec - ca.tv_sec) * 1e3 +
				     (double)(cb.tv_nsec - ca.tv_nsec) / 1e6;
			if (r == 0 || cpu < cpu_best)
				cpu_best = cpu;
			if (rc) {
				fprintf(stderr, "query-bench: %s failed: %s (%s)\n", qq->label, err,
					td_strerror(rc));
				td_buf_release(&out);
				failed = 1;
				break;
			}
			out_len = out.len;
			if (getenv("QUERY_BENCH_PRINT") && r == 0)
				fprintf(stderr, "%s\n", out.data);
			td_buf_release(&out);
		}
		if (failed)
			break;
		/* sort the times for best and median */
		for (int i = 1; i < runs; i++)
			for (int j = i; j > 0 && t[j - 1] > t[j]; j--) {
				double x = t[j];
				t[j] = t[j - 1];
				t[j - 1] = x;
			}
		double best = t[0], med = t[runs / 2];
		printf("%-40s %10.1f %10.1f %10.1f %14.0f %6.0fms %s\n", qq->label, best, med,
		       cpu_best, (double)rows / (best / 1e3), qq->target_ms,
		       best <= qq->target_ms ? "PASS" : "MISS");
		(void)out_len;
	}
	return failed;
}

/* ---- main ----------------------------------------------------------- */

static int qb_arg(const char *opt, const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long x = v ? strtoull(v, &end, 10) : 0;
	if (!v || errno || *end || end == v || x < lo || x > hi) {
		fprintf(stderr, "query-bench: %s takes a number from %" PRIu64 " to %" PRIu64 "\n",
			opt, lo, hi);
		return -1;
	}
	*out = x;
	return 0;
}

int main(int argc, char **argv)
{
	struct demo_options o;
	demo_options_default(&o);
	o.events = 100000000;
	o.users = 3000000;
	o.days = 90;
	o.seed = 1;
	o.end_ms = QB_END_MS;
	uint64_t runs = 3, threads = 0, chunk = QB_DEF_CHUNK, only = 0;
	const char *cache = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t x;
		int rc = 0;
		if (strcmp(a, "--cache") == 0 && v)
			cache = v;
		else if (strcmp(a, "--events") == 0 && !(rc = qb_arg(a, v, 1, 10000000000ull, &x)))
			o.events = x;
		else if (strcmp(a, "--users") == 0 && !(rc = qb_arg(a, v, 1, DEMO_MAX_USERS, &x)))
			o.users = (uint32_t)x;
		else if (strcmp(a, "--days") == 0 && !(rc = qb_arg(a, v, 1, DEMO_MAX_DAYS, &x)))
			o.days = (uint32_t)x;
		else if (strcmp(a, "--seed") == 0 && !(rc = qb_arg(a, v, 0, UINT64_MAX, &x)))
			o.seed = x;
		else if (strcmp(a, "--runs") == 0 && !(rc = qb_arg(a, v, 1, QB_MAX_RUNS, &x)))
			runs = x;
		else if (strcmp(a, "--threads") == 0 && !(rc = qb_arg(a, v, 0, QB_MAX_THREADS, &x)))
			threads = x;
		else if (strcmp(a, "--query") == 0 &&
			 !(rc = qb_arg(a, v, 0, TD_ARRAY_LEN(qb_queries), &x)))
			only = x;
		else if (strcmp(a, "--chunk-rows") == 0 &&
			 !(rc = qb_arg(a, v, 1, QB_MAX_CHUNK, &x)))
			chunk = x;
		else {
			if (!rc)
				fprintf(stderr,
					"usage: query-bench [--events N] [--users U] [--days D] "
					"[--seed S] [--runs R] [--threads T] [--chunk-rows C] "
					"[--query 1-4] [--cache FILE]\n");
			return 2;
		}
		i++;
	}
	struct qb_data *d = td_calloc(1, sizeof(*d));
	d->chunk_rows = chunk;
	clock_gettime(CLOCK_MONOTONIC, &d->started);
	int rc = cache ? qb_cache_read(d, &o, cache) : 1;
	if (rc < 0) {
		fprintf(stderr, "query-bench: %s is damaged or truncated: delete it\n", cache);
		return 1;
	}
	if (rc == 0)
		fprintf(stderr, "query-bench: data set read from %s\n", cache);
	if (rc) {
		fprintf(stderr,
			"query-bench: generating %" PRIu64
			" events, %u users, %u days, seed %" PRIu64 " (progress every 10M)\n",
			o.events, o.users, o.days, o.seed);
		struct qb_emit em = {.d = d, .total = o.events};
		rc = demo_generate(&o, qb_emit_line, &em);
		if (rc) {
			fprintf(stderr, "query-bench: cannot generate: %s\n", td_strerror(rc));
			return 1;
		}
		qb_finish(d);
		qb_progress(d, o.events);
		if (cache && qb_cache_write(d, &o, cache) != 0)
			fprintf(stderr, "query-bench: cannot write %s (going on without it)\n",
				cache);
	}
	if (d->parse_errors)
		fprintf(stderr, "query-bench: %d lines could not be read\n", d->parse_errors);
	printf("data: %" PRIu64 " events, %zu event names, %zu chunks, %u person ids (%" PRIu64
	       " merged into another), load %.1f s\n",
	       d->events, d->nnames, d->nall, d->npersons, d->merges,
	       qb_ms_since(&d->started) / 1e3);
	for (size_t i = 0; i < d->nnames; i++)
		printf("  %-24s %12" PRIu64 " rows, %zu chunks\n", d->names[i].name,
		       d->names[i].rows, d->names[i].nchunks);
	struct query_source src = {.ctx = d,
				   .chunks = qb_chunks,
				   .event_names = qb_event_names,
				   .canonical = d->canonical,
				   .npersons = d->npersons};
	printf("runs: %" PRIu64 " per query (best and median), threads: %" PRIu64 "%s\n", runs,
	       threads, threads ? "" : " (automatic)");
	rc = qb_run(d, &src, o.days, (int)runs, (unsigned)threads, (unsigned)only);
	qb_free(d);
	free(d);
	return rc ? 1 : 0;
}
