/*
 * builder.c - rows in, one segment image out (the layout is in seg.h).
 *
 * Rows are kept as added: the payload bytes in one arena, and every scalar
 * leaf of the message as a (path id, kind, value) entry, strings interned.
 * seg_builder_finish sorts the rows by (event name, time, insertion order),
 * picks the columns of each event name (a path present in at least 1 % of its
 * rows, strings only while their dictionary stays small) and writes the areas.
 */
#include "base/crc32c.h"
#include "base/td.h"
#include "identity/identity.h"
#include "collect/collect.h"
#include "base/intern.h"
#include "store/seg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

struct brow {
	int64_t ts;
	uint64_t raw_off;
	uint32_t raw_len, pid, name, val_start, nvals;
};

#define BVAL_RARE 3 /* a value that only counts towards a rare path */

struct bval {
	uint32_t path;
	uint8_t kind; /* QCOL_*, BVAL_RARE */
	union {
		double num;
		uint32_t str;
		uint8_t b;
	} v;
};

struct brare {
	uint32_t name, path, count;
};

struct seg_builder {
	struct brow *rows;
	size_t nrows, caprows;
	struct bval *vals;
	size_t nvals, capvals;
	unsigned char *raw;
	size_t raw_len, raw_cap;
	uint64_t min_lsn, max_lsn;
	struct intern names, paths, strs;
	struct brare *rare; /* paths known rare in merged inputs */
	size_t nrare, caprare;
	/* during add */
	struct identity *ident; /* while adding a message that needs resolution */
	struct identity_msg idm;
	int type;
	uint32_t name;
	bool has_name;
	size_t sealed;	       /* rows [0, sealed) are in images made by seg_builder_seal */
	uint64_t seal_min_lsn; /* lowest LSN of the rows after them */
	uint32_t leaf;	       /* leaves of the message so far */
	/* seg_builder_watch */
	const char *const *watch;
	unsigned nwatch;
	uint8_t *role; /* path id -> 1 + watched index, 0 */
	uint32_t nrole;
	uint32_t watched[SEG_WATCH_MAX];
	uint64_t epoch;
	uint32_t path_cache[128]; /* path id of the previous message's leaf at each position */
};

static uint64_t next_epoch(void)
{
	static uint64_t epochs;
	return __atomic_add_fetch(&epochs, 1, __ATOMIC_RELAXED);
}

uint64_t seg_builder_epoch(const struct seg_builder *b)
{
	return b->epoch;
}

struct seg_builder *seg_builder_new(void)
{
	struct seg_builder *b = td_calloc(1, sizeof(*b));
	intern_init(&b->names);
	intern_init(&b->paths);
	intern_init(&b->strs);
	b->min_lsn = b->seal_min_lsn = UINT64_MAX;
	memset(b->path_cache, 0xff, sizeof(b->path_cache));
	b->epoch = next_epoch();
	return b;
}

void seg_builder_free(struct seg_builder *b)
{
	if (!b)
		return;
	free(b->rows);
	free(b->vals);
	free(b->raw);
	free(b->rare);
	free(b->role);
	intern_release(&b->names);
	intern_release(&b->paths);
	intern_release(&b->strs);
	free(b);
}

size_t seg_builder_rows(const struct seg_builder *b)
{
	return b->nrows;
}

size_t seg_builder_bytes(const struct seg_builder *b)
{
	return b->raw_len + b->nvals * sizeof(struct bval) + b->nrows * sizeof(struct brow) +
	       b->strs.arena_len;
}

static struct bval *push_val(struct seg_builder *b)
{
	if (b->nvals == b->capvals) {
		b->capvals = b->capvals ? b->capvals * 2 : 65536;
		b->vals = td_realloc(b->vals, b->capvals * sizeof(*b->vals));
	}
	return &b->vals[b->nvals++];
}

/* Top-level fields that hold a different value in (nearly) every message:
 * their dictionaries would be as large as the data, so they stay rare. */
static bool unique_valued(const char *path, size_t n)
{
	static const char *const names[] = {"messageId", "timestamp", "originalTimestamp", "sentAt",
					    "receivedAt"};
	for (size_t i = 0; i < TD_ARRAY_LEN(names); i++)
		if (strlen(names[i]) == n && !memcmp(path, names[i], n))
			return true;
	return false;
}

void seg_identity_leaf(const struct identity *g, struct identity_msg *m, const char *path,
		       size_t pathlen, enum seg_leaf_kind k, const char *str, size_t slen,
		       double num)
{
	const char *name = NULL;
	size_t nl = 0;
	int f = k == SEG_LEAF_BOOL ? -1 : identity_path_field(g, path, pathlen, &name, &nl);
	if (f < 0 || (k == SEG_LEAF_ARRAY) != (f == IDENTITY_F_EXTERNAL_IDS))
		return;
	char tmp[32];
	if (k == SEG_LEAF_NUM) {
		/* a numeric id or phone number: its digits, as the SDK would have sent them */
		int n = snprintf(tmp, sizeof(tmp), "%.17g", num);
		str = tmp;
		slen = n > 0 && (size_t)n < sizeof(tmp) ? (size_t)n : 0;
	}
	identity_msg_add(m, (enum identity_field)f, name, nl, str, slen);
}

static void on_leaf(void *ctx, const char *path, size_t pathlen, enum seg_leaf_kind k,
		    const char *str, size_t slen, double num, bool bv)
{
	struct seg_builder *b = ctx;
	if (k == SEG_LEAF_STR && pathlen == 5 && !memcmp(path, "event", 5) &&
	    b->type == COLLECT_TRACK) {
		b->name = intern_id(&b->names, str, slen);
		b->has_name = true;
	}
	if (b->ident)
		seg_identity_leaf(b->ident, &b->idm, path, pathlen, k, str, slen, num);
	if (k == SEG_LEAF_ARRAY)
		return;
	if (b->nwatch && pathlen > sizeof(SEG_STAMPED_PREFIX) - 1 &&
	    !memcmp(path, SEG_STAMPED_PREFIX, sizeof(SEG_STAMPED_PREFIX) - 1))
		return; /* reserved for the store's stamps */
	struct bval *v = push_val(b);
	/* messages of one source repeat their shape: try the path the previous
	 * message had at this position before hashing */
	uint32_t at = b->leaf++ % TD_ARRAY_LEN(b->path_cache), id = b->path_cache[at];
	if (id < b->paths.n && intern_len(&b->paths, id) == pathlen &&
	    memcmp(intern_str(&b->paths, id), path, pathlen) == 0)
		v->path = id;
	else
		v->path = b->path_cache[at] = intern_id(&b->paths, path, pathlen);
	if (k == SEG_LEAF_STR && unique_valued(path, pathlen)) {
		v->kind = BVAL_RARE; /* counted, never a column: not worth interning */
		return;
	}
	switch (k) {
	case SEG_LEAF_STR:
		v->kind = QCOL_STRING;
		v->v.str = intern_id(&b->strs, str, slen);
		break;
	case SEG_LEAF_NUM:
		v->kind = QCOL_NUMBER;
		v->v.num = num;
		break;
	case SEG_LEAF_BOOL:
		v->kind = QCOL_BOOL;
		v->v.b = bv;
		break;
	case SEG_LEAF_ARRAY: /* returned above */
		break;
	}
	if (k == SEG_LEAF_STR && v->path < b->nrole && b->role[v->path])
		b->watched[b->role[v->path] - 1] = v->v.str;
}

static void watch_intern(struct seg_builder *b)
{
	free(b->role);
	b->role = NULL;
	b->nrole = 0;
	if (!b->nwatch)
		return;
	uint32_t ids[SEG_WATCH_MAX], max = 0;
	for (unsigned i = 0; i < b->nwatch; i++) {
		ids[i] = intern_id(&b->paths, b->watch[i], strlen(b->watch[i]));
		max = TD_MAX(max, ids[i] + 1);
	}
	b->role = td_calloc(max, 1);
	b->nrole = max;
	for (unsigned i = 0; i < b->nwatch; i++)
		b->role[ids[i]] = (uint8_t)(i + 1);
}

void seg_builder_watch(struct seg_builder *b, const char *const *paths, unsigned n)
{
	b->watch = paths;
	b->nwatch = TD_MIN(n, (unsigned)SEG_WATCH_MAX);
	watch_intern(b);
}

uint32_t seg_builder_watched(const struct seg_builder *b, unsigned i)
{
	return i < b->nwatch ? b->watched[i] : UINT32_MAX;
}

void seg_builder_last(const struct seg_builder *b, int *type, int64_t *ts, uint32_t *pid)
{
	const struct brow *r = &b->rows[b->nrows - 1];
	*type = b->type;
	*ts = r->ts;
	*pid = r->pid;
}

const char *seg_builder_strof(const struct seg_builder *b, uint32_t str, size_t *len)
{
	*len = intern_len(&b->strs, str);
	return intern_str(&b->strs, str);
}

static void push_row(struct seg_builder *b, uint32_t name, int64_t ts, uint32_t pid,
		     const void *payload, size_t len);

int seg_builder_add(struct seg_builder *b, uint64_t lsn, const void *payload, size_t len,
		    uint32_t pid, struct identity *ident)
{
	struct collect_event_view v;
	if (collect_event_decode(payload, len, &v) || len > UINT32_MAX)
		return TD_ECORRUPT;
	size_t vals0 = b->nvals;
	b->type = v.type;
	b->ident = pid == SEG_PID_RESOLVE ? ident : NULL;
	if (b->ident) {
		identity_msg_reset(&b->idm);
		b->idm.lsn = lsn;
		b->idm.ts = v.timestamp_ms;
		b->idm.message_id = v.message_id;
		b->idm.message_id_len = v.message_id_len;
		b->idm.is_group = v.type == COLLECT_GROUP;
	}
	b->has_name = false;
	b->leaf = 0;
	memset(b->watched, 0xff, sizeof(b->watched));
	const char *tn = seg_type_event_name(v.type);
	if (tn) {
		b->name = intern_id(&b->names, tn, strlen(tn));
		b->has_name = true;
	}
	if (seg_flatten(v.json, v.json_len, on_leaf, b) || !b->has_name) {
		b->nvals = vals0;
		return TD_ECORRUPT;
	}
	if (pid == SEG_PID_RESOLVE)
		pid = identity_resolve(ident, &b->idm);
	b->ident = NULL;
	push_row(b, b->name, v.timestamp_ms, pid, payload, len);
	seg_builder_lsn(b, lsn, lsn);
	struct brow *r = &b->rows[b->nrows - 1];
	r->val_start = (uint32_t)vals0;
	r->nvals = (uint32_t)(b->nvals - vals0);
	return 0;
}

static void push_row(struct seg_builder *b, uint32_t name, int64_t ts, uint32_t pid,
		     const void *payload, size_t len)
{
	if (b->nrows == b->caprows) {
		b->caprows = b->caprows ? b->caprows * 2 : 16384;
		b->rows = td_realloc(b->rows, b->caprows * sizeof(*b->rows));
	}
	if (b->raw_len + len > b->raw_cap) {
		size_t c = b->raw_cap ? b->raw_cap * 2 : (1u << 20);
		while (c < b->raw_len + len)
			c *= 2;
		b->raw = td_realloc(b->raw, c);
		b->raw_cap = c;
	}
	memcpy(b->raw + b->raw_len, payload, len);
	struct brow *r = &b->rows[b->nrows++];
	r->ts = ts;
	r->raw_off = b->raw_len;
	r->raw_len = (uint32_t)len;
	r->pid = pid;
	r->name = name;
	r->val_start = (uint32_t)b->nvals;
	r->nvals = 0;
	b->raw_len += len;
}

void seg_builder_row(struct seg_builder *b, const char *name, int64_t ts, uint32_t pid,
		     const void *payload, size_t len)
{
	push_row(b, intern_id(&b->names, name, strlen(name)), ts, pid, payload, len);
}

void seg_builder_lsn(struct seg_builder *b, uint64_t min_lsn, uint64_t max_lsn)
{
	if (min_lsn < b->seal_min_lsn)
		b->seal_min_lsn = min_lsn;
	if (min_lsn < b->min_lsn)
		b->min_lsn = min_lsn;
	if (max_lsn > b->max_lsn)
		b->max_lsn = max_lsn;
}

uint32_t seg_builder_path(struct seg_builder *b, const char *path)
{
	return intern_id(&b->paths, path, strlen(path));
}

uint32_t seg_builder_str(struct seg_builder *b, const char *s)
{
	return intern_id(&b->strs, s, strlen(s));
}

void seg_builder_val(struct seg_builder *b, uint32_t path, int kind, double num, uint32_t str,
		     bool bv)
{
	struct bval *v = push_val(b);
	v->path = path;
	v->kind = (uint8_t)kind;
	if (kind == QCOL_NUMBER)
		v->v.num = num;
	else if (kind == QCOL_STRING)
		v->v.str = str;
	else
		v->v.b = bv;
	b->rows[b->nrows - 1].nvals++;
}

void seg_builder_rare(struct seg_builder *b, const char *name, const char *path, uint32_t count)
{
	uint32_t nm = intern_id(&b->names, name, strlen(name));
	uint32_t p = intern_id(&b->paths, path, strlen(path));
	for (size_t i = 0; i < b->nrare; i++)
		if (b->rare[i].name == nm && b->rare[i].path == p) {
			b->rare[i].count += count;
			return;
		}
	if (b->nrare == b->caprare) {
		b->caprare = b->caprare ? b->caprare * 2 : 64;
		b->rare = td_realloc(b->rare, b->caprare * sizeof(*b->rare));
	}
	b->rare[b->nrare++] = (struct brare){nm, p, count};
}

/* ---- finishing ---- */

struct out {
	struct td_buf img, dir;
	int err;
	ZSTD_CCtx *cc; /* one per image: creating one costs fresh memory */
};

static void put(struct td_buf *t, const void *p, size_t n, int *err)
{
	if (!*err)
		*err = td_buf_append(t, p, n);
}
static void put_u16(struct td_buf *t, uint16_t v, int *err)
{
	put(t, &v, 2, err);
}
static void put_u32(struct td_buf *t, uint32_t v, int *err)
{
	put(t, &v, 4, err);
}
static void put_u64(struct td_buf *t, uint64_t v, int *err)
{
	put(t, &v, 8, err);
}
static void put_str16(struct td_buf *t, const char *s, size_t n, int *err)
{
	put_u16(t, (uint16_t)n, err);
	put(t, s, n, err);
}

/* Appends an area (aligned) to the image and its descriptor to the directory. */
static void area(struct out *o, const void *p, size_t n)
{
	if (n == 0) {
		put_u64(&o->dir, 0, &o->err);
		put_u64(&o->dir, 0, &o->err);
		put_u32(&o->dir, 0, &o->err);
		return;
	}
	static const char zeros[SEG_ALIGN];
	size_t pad = (SEG_ALIGN - o->img.len % SEG_ALIGN) % SEG_ALIGN;
	put(&o->img, zeros, pad, &o->err);
	put_u64(&o->dir, o->img.len, &o->err);
	put_u64(&o->dir, n, &o->err);
	put_u32(&o->dir, td_crc32c(0, p, n), &o->err);
	put(&o->img, p, n, &o->err);
}

static int cmp_rows(const void *a, const void *b, void *ctx)
{
	const struct seg_builder *sb = ctx;
	const struct brow *x = &sb->rows[*(const uint32_t *)a];
	const struct brow *y = &sb->rows[*(const uint32_t *)b];
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
	return i < j ? -1 : i > j;
}

static int cmp_str_ids(const void *a, const void *b, void *ctx)
{
	const struct intern *t = ctx;
	return strcmp(intern_str(t, *(const uint32_t *)a), intern_str(t, *(const uint32_t *)b));
}

/* Per-path statistics of one group. */
struct pstat {
	size_t pos, fill; /* where its values start in the value list */
	uint32_t cnt[4];  /* values per kind */
	uint32_t count;	  /* values of the chosen kind */
	uint32_t first;	  /* position in the group of the earliest row with a value */
	uint8_t kind, seen;
	int32_t col; /* column index, -1 = rare */
};

static void write_raw(struct out *o, const struct seg_builder *b, const uint32_t *idx, size_t n,
		      int level, uint32_t block)
{
	size_t nblocks = (n + block - 1) / block;
	unsigned char *index = td_calloc(nblocks ? nblocks : 1, 16);
	struct td_buf raw, blk;
	td_buf_init(&raw, SIZE_MAX / 2);
	td_buf_init(&blk, SIZE_MAX / 2);
	ZSTD_CCtx *cc = o->cc;
	for (size_t k = 0; k < nblocks && !o->err; k++) {
		size_t from = k * block, to = TD_MIN(n, from + block);
		td_buf_reset(&blk);
		for (size_t i = from; i < to; i++)
			put_u32(&blk, b->rows[idx[i]].raw_len, &o->err);
		for (size_t i = from; i < to; i++)
			put(&blk, b->raw + b->rows[idx[i]].raw_off, b->rows[idx[i]].raw_len,
			    &o->err);
		size_t bound = ZSTD_compressBound(blk.len);
		if (!o->err)
			o->err = td_buf_reserve(&raw, bound);
		if (o->err)
			break;
		size_t c;
		if (level == SEG_STORE_PLAIN) {
			memcpy(raw.data + raw.len, blk.data, blk.len);
			c = blk.len;
		} else {
			c = ZSTD_compressCCtx(cc, raw.data + raw.len, bound, blk.data, blk.len,
					      level);
			if (ZSTD_isError(c)) {
				o->err = TD_ENOMEM;
				break;
			}
		}
		uint64_t off = raw.len;
		uint32_t cl = level == SEG_STORE_PLAIN ? 0 : (uint32_t)c, ul = (uint32_t)blk.len;
		memcpy(index + k * 16, &off, 8);
		memcpy(index + k * 16 + 8, &cl, 4);
		memcpy(index + k * 16 + 12, &ul, 4);
		raw.len += c;
	}
	area(o, index, nblocks * 16);
	area(o, raw.data, raw.len);
	free(index);
	td_buf_release(&raw);
	td_buf_release(&blk);
}

/* Builds and writes the column of path p over the group's rows; returns false
 * (writing nothing) when a string column's dictionary would be too large. */
/* One value of a path, copied out of the row-ordered values so each column
 * is built from a sequential run. */
struct pent {
	uint32_t row;
	struct bval v;
};

static bool write_column(struct out *o, const struct seg_builder *b, const struct pent *ent,
			 size_t nent, size_t n, uint32_t p, const struct pstat *st, uint32_t *remap,
			 bool stamped)
{
	size_t words = (n + 63) / 64;
	uint64_t *present = td_calloc(words ? words : 1, 8);
	size_t width = st->kind == QCOL_NUMBER ? 8 : st->kind == QCOL_STRING ? 4 : 1;
	unsigned char *vals = td_calloc(n ? n : 1, width);
	uint32_t ndict = 0, *dict_ids = NULL, count = 0;
	size_t dict_limit = stamped ? SIZE_MAX : TD_MAX((size_t)1024, (size_t)st->count / 4);
	bool ok = true;
	for (size_t e = 0; e < nent && ok; e++) {
		size_t i = ent[e].row;
		const struct bval *v = &ent[e].v;
		{
			if (!(present[i / 64] >> (i % 64) & 1))
				count++;
			present[i / 64] |= 1ull << (i % 64);
			if (v->kind == QCOL_NUMBER) {
				memcpy(vals + i * 8, &v->v.num, 8);
			} else if (v->kind == QCOL_BOOL) {
				vals[i] = v->v.b;
			} else {
				uint32_t code = remap[v->v.str];
				if (code == UINT32_MAX) {
					if (ndict >= dict_limit) {
						ok = false;
						break;
					}
					if ((ndict & (ndict - 1)) == 0)
						dict_ids =
						    td_realloc(dict_ids, (ndict ? ndict * 2 : 1) *
									     sizeof(uint32_t));
					dict_ids[ndict] = v->v.str;
					code = remap[v->v.str] = ndict++;
				}
				memcpy(vals + i * 4, &code, 4);
			}
		}
	}
	for (uint32_t d = 0; d < ndict; d++)
		remap[dict_ids[d]] = UINT32_MAX;
	if (ok) {
		const char *path = intern_str(&b->paths, p);
		put_str16(&o->dir, path, strlen(path), &o->err);
		put(&o->dir, &st->kind, 1, &o->err);
		put_u32(&o->dir, count, &o->err);
		area(o, present, count == n ? 0 : words * 8);
		area(o, vals, n * width);
		if (st->kind == QCOL_STRING) {
			struct td_buf d;
			td_buf_init(&d, SIZE_MAX / 2);
			put_u32(&d, ndict, &o->err);
			uint32_t off = 0;
			for (uint32_t k = 0; k < ndict; k++) {
				put_u32(&d, off, &o->err);
				off += intern_len(&b->strs, dict_ids[k]) + 1;
			}
			put_u32(&d, off, &o->err);
			for (uint32_t k = 0; k < ndict; k++)
				put(&d, intern_str(&b->strs, dict_ids[k]),
				    intern_len(&b->strs, dict_ids[k]) + 1, &o->err);
			area(o, d.data, d.len);
			td_buf_release(&d);
		} else {
			area(o, NULL, 0);
		}
		if (st->kind == QCOL_NUMBER) {
			size_t nz = (n + SEG_ZONE_ROWS - 1) / SEG_ZONE_ROWS;
			double *zone = td_malloc((nz ? nz : 1) * 2 * sizeof(double));
			for (size_t z = 0; z < nz; z++) {
				double mn = NAN, mx = NAN;
				for (size_t i = z * SEG_ZONE_ROWS;
				     i < TD_MIN(n, (z + 1) * SEG_ZONE_ROWS); i++) {
					if (!(present[i / 64] >> (i % 64) & 1))
						continue;
					double x;
					memcpy(&x, vals + i * 8, 8);
					if (isnan(mn) || x < mn)
						mn = x;
					if (isnan(mx) || x > mx)
						mx = x;
				}
				zone[2 * z] = mn;
				zone[2 * z + 1] = mx;
			}
			area(o, zone, nz * 2 * sizeof(double));
			free(zone);
		} else {
			area(o, NULL, 0);
		}
	}
	free(present);
	free(vals);
	free(dict_ids);
	return ok;
}

static void write_group(struct out *o, const struct seg_builder *b, uint32_t name,
			const uint32_t *idx, size_t n, struct pstat *st, const struct pent *ent,
			const uint32_t *porder, uint32_t *remap, int level)
{
	const char *nm = intern_str(&b->names, name);
	put_str16(&o->dir, nm, strlen(nm), &o->err);
	put_u32(&o->dir, (uint32_t)n, &o->err);
	int64_t *ts = td_malloc((n ? n : 1) * sizeof(*ts));
	uint32_t *pid = td_malloc((n ? n : 1) * sizeof(*pid));
	for (size_t i = 0; i < n; i++) {
		ts[i] = b->rows[idx[i]].ts;
		pid[i] = b->rows[idx[i]].pid;
	}
	put_u64(&o->dir, (uint64_t)ts[0], &o->err);
	put_u64(&o->dir, (uint64_t)ts[n - 1], &o->err);
	uint32_t block =
	    !strcmp(nm, "$identify") || !strcmp(nm, "$group") ? SEG_RAW_BLOCK_SMALL : SEG_RAW_BLOCK;
	put_u32(&o->dir, block, &o->err);
	area(o, ts, n * sizeof(*ts));
	area(o, pid, n * sizeof(*pid));
	free(ts);
	free(pid);
	write_raw(o, b, idx, n, level, block);

	/* columns, in path order: paths in >= 1 % of the rows (all of a small
	 * group), at most SEG_MAX_COLUMNS - SEG_MAX_STAMPED; the dictionary rule
	 * may still turn one into a rare path. Stamped paths are always columns:
	 * a rare path is read back from the raw messages, which lack them. */
	size_t dir_count_at = o->dir.len;
	put_u32(&o->dir, 0, &o->err);
	uint32_t ncols = 0, nrare = 0, nstamped = 0;
	for (uint32_t t = 0; t < b->paths.n; t++) {
		struct pstat *s = &st[porder[t]];
		if (!s->seen)
			continue;
		s->col = -1;
		const char *path = intern_str(&b->paths, porder[t]);
		bool stamped = !strncmp(path, SEG_STAMPED_PREFIX, sizeof(SEG_STAMPED_PREFIX) - 1) &&
			       s->kind != BVAL_RARE && nstamped < SEG_MAX_STAMPED;
		bool col =
		    stamped || (ncols - nstamped < SEG_MAX_COLUMNS - SEG_MAX_STAMPED &&
				s->kind != BVAL_RARE && (n < 100 || (uint64_t)s->count * 100 >= n));
		if (col &&
		    write_column(o, b, ent + s->pos, s->count, n, porder[t], s, remap, stamped)) {
			s->col = (int32_t)ncols++;
			nstamped += stamped;
		} else {
			nrare++;
		}
	}
	if (!o->err)
		memcpy(o->dir.data + dir_count_at, &ncols, 4);
	/* rare: paths not promoted, and those noted rare in merged inputs that no
	 * row here carries as a value; in path order */
	for (size_t i = 0; i < b->nrare; i++) {
		struct pstat *s = &st[b->rare[i].path];
		if (b->rare[i].name == name && !s->seen) {
			s->seen = 1;
			s->col = -1;
			s->count = b->rare[i].count;
			nrare++;
		}
	}
	put_u32(&o->dir, nrare, &o->err);
	for (uint32_t t = 0; t < b->paths.n; t++) {
		struct pstat *s = &st[porder[t]];
		if (s->seen && s->col < 0) {
			const char *path = intern_str(&b->paths, porder[t]);
			put_str16(&o->dir, path, strlen(path), &o->err);
			put_u32(&o->dir, s->count, &o->err);
		}
	}
}

/* The person index area (seg.h): rows sorted by pid with two stable
 * counting passes over 16-bit digits, so the rows of a pid stay ascending. */
static void write_person_index(struct out *o, const uint32_t *rowpid, size_t n)
{
	uint32_t *a = td_malloc(2 * n * sizeof(uint32_t)), *t = td_malloc(n * sizeof(uint32_t));
	uint32_t *cnt = td_malloc(65537 * sizeof(uint32_t));
	for (size_t i = 0; i < n; i++)
		t[i] = (uint32_t)i;
	uint32_t *src = t, *dst = a + n; /* rows, by low then high digit */
	for (int shift = 0; shift < 32; shift += 16) {
		memset(cnt, 0, 65537 * sizeof(uint32_t));
		for (size_t i = 0; i < n; i++)
			cnt[((rowpid[i] >> shift) & 0xffff) + 1]++;
		for (size_t d = 0; d < 65536; d++)
			cnt[d + 1] += cnt[d];
		for (size_t i = 0; i < n; i++) {
			uint32_t r = src[i];
			dst[cnt[(rowpid[r] >> shift) & 0xffff]++] = r;
		}
		uint32_t *x = src;
		src = dst;
		dst = x;
	}
	/* after two passes the sorted rows are back in t (src); pids before rows */
	for (size_t i = 0; i < n; i++) {
		a[i] = rowpid[src[i]];
		a[n + i] = src[i];
	}
	area(o, a, 2 * n * sizeof(uint32_t));
	free(a);
	free(t);
	free(cnt);
}

void seg_builder_reset(struct seg_builder *b)
{
	b->nrows = b->nvals = b->raw_len = b->nrare = b->sealed = 0;
	b->seal_min_lsn = UINT64_MAX;
	intern_clear(&b->names);
	intern_clear(&b->paths);
	intern_clear(&b->strs);
	b->min_lsn = UINT64_MAX;
	b->max_lsn = 0;
	memset(b->path_cache, 0xff, sizeof(b->path_cache));
	watch_intern(b);
	b->epoch = next_epoch();
}

/* The image of rows [from, nrows) covering LSNs [min_lsn, max_lsn]. */
static int finish_range(struct seg_builder *b, size_t from, uint64_t min_lsn, uint64_t max_lsn,
			int level, unsigned char **img, size_t *len)
{
	*img = NULL;
	*len = 0;
	if (b->nrows <= from)
		return TD_EINVAL;
	size_t n = b->nrows - from;
	uint32_t nn = b->names.n;
	/* counting sort by name, then (time, insertion) inside each name */
	uint32_t *start = td_calloc((size_t)nn + 1, sizeof(uint32_t));
	for (size_t i = from; i < b->nrows; i++)
		start[b->rows[i].name + 1]++;
	uint32_t ngroups = 0;
	for (uint32_t k = 0; k < nn; k++) {
		ngroups += start[k + 1] > 0;
		start[k + 1] += start[k];
	}
	uint32_t *idx = td_malloc(n * sizeof(uint32_t)), *fill = td_malloc(nn * sizeof(uint32_t));
	memcpy(fill, start, nn * sizeof(uint32_t));
	for (size_t i = from; i < b->nrows; i++)
		idx[fill[b->rows[i].name]++] = (uint32_t)i;
	for (uint32_t k = 0; k < nn; k++)
		qsort_r(idx + start[k], start[k + 1] - start[k], sizeof(uint32_t), cmp_rows, b);
	uint32_t *order = td_malloc(nn * sizeof(uint32_t));
	for (uint32_t k = 0; k < nn; k++)
		order[k] = k;
	qsort_r(order, nn, sizeof(uint32_t), cmp_str_ids, &b->names);

	struct out o = {.err = 0, .cc = level == SEG_STORE_PLAIN ? NULL : ZSTD_createCCtx()};
	td_buf_init(&o.img, SIZE_MAX / 2);
	td_buf_init(&o.dir, SIZE_MAX / 2);
	/* room for everything up front: growing a large image by doubling costs
	 * copies and page faults. Raw messages, then at most as many bytes of
	 * dictionary strings, row arrays and indexes, values, alignment. */
	size_t raw = b->raw_len - b->rows[from].raw_off, vals = b->nvals - b->rows[from].val_start;
	size_t need = SEG_HEADER + 2 * raw + n * 32 + vals * 9 + (1u << 20);
	if (level == SEG_STORE_PLAIN) {
		/* an in-memory image: into a buffer an earlier one left (imgpool.c) */
		size_t cap = 0;
		void *p = seg_img_alloc(need + 1, &cap);
		if (p) {
			o.img.data = p;
			o.img.cap = cap;
		}
	}
	o.err = td_buf_reserve(&o.img, need);
	unsigned char hdr[SEG_HEADER] = {0};
	put(&o.img, hdr, sizeof(hdr), &o.err);
	/* Path statistics and values per (name, path), from two passes over the
	 * values in the order they were added (memory order: sequential reads),
	 * each value placed at its row's position in the sorted group. The
	 * column type is the type of the earliest value in time order. */
	uint32_t np = b->paths.n;
	uint32_t *posin = td_malloc(n * sizeof(uint32_t));
	for (size_t i = 0; i < n; i++)
		posin[idx[i] - from] = (uint32_t)(i - start[b->rows[idx[i]].name]);
	struct pstat *st = td_calloc((size_t)nn * np + 1, sizeof(*st));
	for (size_t r = from; r < b->nrows; r++) {
		const struct brow *row = &b->rows[r];
		struct pstat *gs = st + (size_t)row->name * np;
		uint32_t at = posin[r - from];
		for (uint32_t k = 0; k < row->nvals; k++) {
			const struct bval *v = &b->vals[row->val_start + k];
			struct pstat *ps = &gs[v->path];
			ps->cnt[v->kind]++;
			if (!ps->seen || at < ps->first) {
				ps->seen = 1;
				ps->first = at;
				ps->kind = v->kind;
			}
		}
	}
	size_t total = 0;
	for (size_t e = 0; e < (size_t)nn * np; e++)
		if (st[e].seen) {
			st[e].count = st[e].cnt[st[e].kind];
			st[e].pos = total;
			total += st[e].count;
		}
	struct pent *ent = td_malloc((total ? total : 1) * sizeof(*ent));
	for (size_t r = from; r < b->nrows; r++) {
		const struct brow *row = &b->rows[r];
		struct pstat *gs = st + (size_t)row->name * np;
		uint32_t at = posin[r - from];
		for (uint32_t k = 0; k < row->nvals; k++) {
			const struct bval *v = &b->vals[row->val_start + k];
			struct pstat *ps = &gs[v->path];
			if (v->kind == ps->kind) {
				struct pent *pe = &ent[ps->pos + ps->fill++];
				pe->row = at;
				pe->v = *v;
			}
		}
	}
	free(posin);
	uint32_t *porder = td_malloc((np ? np : 1) * sizeof(uint32_t));
	for (uint32_t k = 0; k < np; k++)
		porder[k] = k;
	qsort_r(porder, np, sizeof(uint32_t), cmp_str_ids, (void *)&b->paths);
	uint32_t *remap = td_malloc((b->strs.n ? b->strs.n : 1) * sizeof(uint32_t));
	memset(remap, 0xff, (b->strs.n ? b->strs.n : 1) * sizeof(uint32_t));
	uint32_t *rowpid = td_malloc(n * sizeof(uint32_t)); /* pid per segment-wide row */
	size_t row0 = 0;
	for (uint32_t k = 0; k < nn && !o.err; k++) {
		uint32_t g = order[k];
		if (start[g + 1] == start[g])
			continue;
		for (uint32_t i = start[g]; i < start[g + 1]; i++)
			rowpid[row0++] = b->rows[idx[i]].pid;
		write_group(&o, b, g, idx + start[g], start[g + 1] - start[g], st + (size_t)g * np,
			    ent, porder, remap, level);
	}
	write_person_index(&o, rowpid, n);
	free(rowpid);
	free(st);
	free(ent);
	free(porder);
	free(remap);
	ZSTD_freeCCtx(o.cc);
	free(order);
	free(fill);
	free(idx);
	free(start);
	static const char zeros[SEG_ALIGN];
	put(&o.img, zeros, (SEG_ALIGN - o.img.len % SEG_ALIGN) % SEG_ALIGN, &o.err);
	uint64_t dir_off = o.img.len;
	put(&o.img, o.dir.data, o.dir.len, &o.err);
	if (o.err || o.dir.len > UINT32_MAX) {
		td_buf_release(&o.img);
		td_buf_release(&o.dir);
		return o.err ? o.err : TD_ETOOLARGE;
	}
	unsigned char *h = (unsigned char *)o.img.data;
	uint32_t ver = SEG_VERSION, dlen = (uint32_t)o.dir.len,
		 dcrc = td_crc32c(0, o.dir.data, o.dir.len);
	uint64_t rows = n;
	memcpy(h, SEG_MAGIC, 8);
	memcpy(h + 8, &ver, 4);
	memcpy(h + 12, &ngroups, 4);
	memcpy(h + 16, &rows, 8);
	memcpy(h + 24, &min_lsn, 8);
	memcpy(h + 32, &max_lsn, 8);
	memcpy(h + 40, &dir_off, 8);
	memcpy(h + 48, &dlen, 4);
	memcpy(h + 52, &dcrc, 4);
	uint32_t hcrc = td_crc32c(0, h, 60);
	memcpy(h + 60, &hcrc, 4);
	td_buf_release(&o.dir);
	*len = o.img.len;
	*img = (unsigned char *)td_buf_steal(&o.img);
	return 0;
}

int seg_builder_finish(struct seg_builder *b, int level, unsigned char **img, size_t *len)
{
	int rc = finish_range(b, 0, b->min_lsn, b->max_lsn, level, img, len);
	if (!rc)
		seg_builder_reset(b);
	return rc;
}

int seg_builder_seal(struct seg_builder *b, unsigned char **img, size_t *len)
{
	int rc = finish_range(b, b->sealed, b->seal_min_lsn, b->max_lsn, SEG_STORE_PLAIN, img, len);
	if (!rc) {
		b->sealed = b->nrows;
		b->seal_min_lsn = UINT64_MAX;
	}
	return rc;
}

size_t seg_builder_unsealed(const struct seg_builder *b)
{
	return b->nrows - b->sealed;
}
