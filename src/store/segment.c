/*
 * segment.c - reading segment images (layout in seg.h): bounds-checked
 * directory parsing, column access, payload walks, checksum verification.
 */
#include "base/crc32c.h"
#include "base/td.h"
#include "store/seg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

/* A cursor over the directory; any read past its end sets bad. */
struct cur {
	const unsigned char *p, *end;
	bool bad;
};

static const void *take(struct cur *c, size_t n)
{
	if (c->bad || (size_t)(c->end - c->p) < n) {
		c->bad = true;
		return NULL;
	}
	const void *r = c->p;
	c->p += n;
	return r;
}

static uint64_t get_u64(struct cur *c)
{
	uint64_t v = 0;
	const void *p = take(c, 8);
	if (p)
		memcpy(&v, p, 8);
	return v;
}

static uint32_t get_u32(struct cur *c)
{
	uint32_t v = 0;
	const void *p = take(c, 4);
	if (p)
		memcpy(&v, p, 4);
	return v;
}

static uint16_t get_u16(struct cur *c)
{
	uint16_t v = 0;
	const void *p = take(c, 2);
	if (p)
		memcpy(&v, p, 2);
	return v;
}

static char *get_str16(struct cur *c)
{
	uint16_t n = get_u16(c);
	const char *p = take(c, n);
	if (!p || memchr(p, '\0', n)) {
		c->bad = true;
		return NULL;
	}
	return td_strndup(p, n);
}

/* Reads an area descriptor and checks that it lies inside the image, before
 * the directory, aligned, and exactly `want` bytes long (want = SIZE_MAX: any). */
static struct seg_area get_area(struct cur *c, const struct seg *s, uint64_t dir_off, size_t want)
{
	struct seg_area a;
	a.off = get_u64(c);
	a.len = get_u64(c);
	a.crc = get_u32(c);
	if (a.len == 0) {
		if (want != SIZE_MAX && want != 0)
			c->bad = true;
		return a;
	}
	if (a.off % SEG_ALIGN || a.off < SEG_HEADER || a.off > dir_off || a.len > dir_off - a.off ||
	    (want != SIZE_MAX && a.len != want))
		c->bad = true;
	return a;
}

static const void *at(const struct seg *s, struct seg_area a)
{
	return a.len ? s->img + a.off : NULL;
}

static void group_release(struct seg_group *g)
{
	free(g->name);
	for (uint32_t k = 0; k < g->ncols; k++) {
		free(g->cols[k].path);
		free(g->cols[k].dict);
	}
	free(g->cols);
	for (uint32_t k = 0; k < g->nrare; k++)
		free(g->rare[k].path);
	free(g->rare);
	for (struct seg_built *b = g->built, *next; b; b = next) {
		next = b->next;
		free(b->path);
		for (size_t k = 0; k < TD_ARRAY_LEN(b->mem); k++)
			free(b->mem[k]);
		free(b);
	}
	pthread_mutex_destroy(&g->built_lock);
}

static void seg_free(struct seg *s)
{
	for (uint32_t i = 0; i < s->ngroups; i++)
		group_release(&s->groups[i]);
	free(s->groups);
	if (s->mapped)
		munmap((void *)s->img, s->len);
	else
		seg_img_free((void *)s->img);
	free(s);
}

void seg_ref(struct seg *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
}

void seg_unref(struct seg *s)
{
	if (s && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
		seg_free(s);
}

static int parse_dict(const struct seg *s, struct seg_column *col)
{
	if (col->a_dict.len < 8)
		return TD_ECORRUPT;
	const unsigned char *d = at(s, col->a_dict);
	uint32_t nd;
	memcpy(&nd, d, 4);
	uint64_t need = 4 + ((uint64_t)nd + 1) * 4;
	if (need > col->a_dict.len)
		return TD_ECORRUPT;
	const unsigned char *offs = d + 4, *strs = d + need;
	uint64_t slen = col->a_dict.len - need;
	const char **dict = td_malloc((nd ? nd : 1) * sizeof(char *));
	uint32_t prev = 0;
	for (uint32_t k = 0; k <= nd; k++) {
		uint32_t o;
		memcpy(&o, offs + 4 * k, 4);
		if (o > slen || o < prev || (k > 0 && (o == prev || strs[o - 1] != '\0'))) {
			free(dict);
			return TD_ECORRUPT;
		}
		if (k < nd)
			dict[k] = (const char *)strs + o;
		prev = o;
	}
	col->dict = dict;
	col->ndict = nd;
	return 0;
}

/*
 * A string column's dictionary is parsed, and every code checked against it,
 * once, when something first reads the column: opening a large store must
 * not read every dictionary and column. 1 = ready, -1 = damaged.
 */
static int string_column_ready(const struct seg_group *g, const struct seg_column *cc)
{
	struct seg_column *c = (struct seg_column *)cc;
	int st = __atomic_load_n(&c->codes_state, __ATOMIC_ACQUIRE);
	if (st)
		return st;
	pthread_mutex_lock((pthread_mutex_t *)&g->built_lock);
	st = c->codes_state;
	if (!st) {
		st = parse_dict(g->seg, c) ? -1 : 1;
		const uint32_t *codes = c->values;
		for (uint32_t i = 0; i < g->n && st > 0; i++)
			if (codes[i] >= c->ndict &&
			    (!c->present || c->present[i / 64] >> (i % 64) & 1))
				st = -1;
		__atomic_store_n(&c->codes_state, st, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock((pthread_mutex_t *)&g->built_lock);
	return st;
}

static int parse_group(struct seg *s, struct cur *c, uint64_t dir_off, struct seg_group *g,
		       uint32_t ver)
{
	g->seg = s;
	pthread_mutex_init(&g->built_lock, NULL);
	g->name = get_str16(c);
	g->n = get_u32(c);
	g->min_ts = (int64_t)get_u64(c);
	g->max_ts = (int64_t)get_u64(c);
	g->raw_block = ver >= 3 ? get_u32(c) : SEG_RAW_BLOCK;
	if (g->raw_block == 0 || g->raw_block > SEG_RAW_BLOCK_MAX)
		return TD_ECORRUPT;
	size_t n = g->n;
	g->a_ts = get_area(c, s, dir_off, n * 8);
	g->a_pid = get_area(c, s, dir_off, n * 4);
	g->a_rawidx = get_area(c, s, dir_off, (n + g->raw_block - 1) / g->raw_block * 16);
	g->a_raw = get_area(c, s, dir_off, SIZE_MAX);
	if (c->bad || n == 0)
		return TD_ECORRUPT;
	g->ts = at(s, g->a_ts);
	g->pid = at(s, g->a_pid);
	g->rawidx = at(s, g->a_rawidx);
	uint32_t nc = get_u32(c);
	if (nc > SEG_MAX_COLUMNS || c->bad)
		return TD_ECORRUPT;
	g->cols = td_calloc(nc ? nc : 1, sizeof(*g->cols));
	for (uint32_t k = 0; k < nc; k++) {
		struct seg_column *col = &g->cols[k];
		g->ncols = k + 1;
		col->path = get_str16(c);
		const uint8_t *kind = take(c, 1);
		col->kind = kind ? *kind : -1;
		col->count = get_u32(c);
		size_t width = col->kind == QCOL_NUMBER ? 8 : col->kind == QCOL_STRING ? 4 : 1;
		col->a_present = get_area(c, s, dir_off, col->count == n ? 0 : (n + 63) / 64 * 8);
		col->a_values = get_area(c, s, dir_off, n * width);
		col->a_dict = get_area(c, s, dir_off, SIZE_MAX);
		col->a_zone = get_area(
		    c, s, dir_off,
		    col->kind == QCOL_NUMBER ? (n + SEG_ZONE_ROWS - 1) / SEG_ZONE_ROWS * 16 : 0);
		if (c->bad || col->kind < QCOL_STRING || col->kind > QCOL_BOOL || col->count > n ||
		    col->count == 0)
			return TD_ECORRUPT;
		col->present = at(s, col->a_present);
		col->values = at(s, col->a_values);
		if (col->kind == QCOL_STRING && col->a_dict.len < 8)
			return TD_ECORRUPT;
		if (k > 0 && strcmp(g->cols[k - 1].path, col->path) >= 0)
			return TD_ECORRUPT; /* sorted, unique */
	}
	uint32_t nr = get_u32(c);
	if (c->bad || nr > (uint32_t)(c->end - c->p) / 6)
		return TD_ECORRUPT;
	g->rare = td_calloc(nr ? nr : 1, sizeof(*g->rare));
	for (uint32_t k = 0; k < nr; k++) {
		g->nrare = k + 1;
		g->rare[k].path = get_str16(c);
		g->rare[k].count = get_u32(c);
	}
	/* raw blocks must lie inside the raw area */
	for (size_t b = 0; !c->bad && b < g->a_rawidx.len / 16; b++) {
		uint64_t off;
		uint32_t cl;
		memcpy(&off, g->rawidx + b * 16, 8);
		memcpy(&cl, g->rawidx + b * 16 + 8, 4);
		if (off > g->a_raw.len || cl > g->a_raw.len - off)
			return TD_ECORRUPT;
	}
	return c->bad ? TD_ECORRUPT : 0;
}

static int open_common(struct seg *s, char *err, size_t errcap)
{
	const unsigned char *h = s->img;
	if (s->len < SEG_HEADER || memcmp(h, SEG_MAGIC, 8) != 0) {
		snprintf(err, errcap, "not a segment (bad magic)");
		return TD_ECORRUPT;
	}
	uint32_t crc, ver, ng, dlen, dcrc;
	memcpy(&crc, h + 60, 4);
	if (crc != td_crc32c(0, h, 60)) {
		snprintf(err, errcap, "header checksum mismatch");
		return TD_ECORRUPT;
	}
	memcpy(&ver, h + 8, 4);
	if (ver < 1 || ver > SEG_VERSION) {
		snprintf(err, errcap, "unknown segment version %u", ver);
		return TD_ECORRUPT;
	}
	uint64_t dir_off;
	memcpy(&ng, h + 12, 4);
	memcpy(&s->rows, h + 16, 8);
	memcpy(&s->min_lsn, h + 24, 8);
	memcpy(&s->max_lsn, h + 32, 8);
	memcpy(&dir_off, h + 40, 8);
	memcpy(&dlen, h + 48, 4);
	memcpy(&dcrc, h + 52, 4);
	if (dir_off < SEG_HEADER || dir_off > s->len || dlen != s->len - dir_off) {
		snprintf(err, errcap, "directory outside the file (file cut short?)");
		return TD_ECORRUPT;
	}
	if (dcrc != td_crc32c(0, h + dir_off, dlen)) {
		snprintf(err, errcap, "directory checksum mismatch");
		return TD_ECORRUPT;
	}
	if (ng > dlen / 8 + 1) {
		snprintf(err, errcap, "bad group count");
		return TD_ECORRUPT;
	}
	struct cur c = {h + dir_off, h + dir_off + dlen, false};
	s->groups = td_calloc(ng ? ng : 1, sizeof(*s->groups));
	uint64_t rows = 0;
	for (uint32_t i = 0; i < ng; i++) {
		s->ngroups = i + 1;
		if (parse_group(s, &c, dir_off, &s->groups[i], ver)) {
			snprintf(err, errcap, "directory entry of group %u is damaged", i);
			return TD_ECORRUPT;
		}
		s->groups[i].row0 = rows;
		rows += s->groups[i].n;
		if (i > 0 && strcmp(s->groups[i - 1].name, s->groups[i].name) >= 0) {
			snprintf(err, errcap, "groups out of order");
			return TD_ECORRUPT;
		}
	}
	if (ver >= 2 && rows == s->rows && rows <= UINT32_MAX) {
		s->a_pidx = get_area(&c, s, dir_off, (size_t)rows * 8);
		if (c.bad) {
			snprintf(err, errcap, "the person index is damaged");
			return TD_ECORRUPT;
		}
		s->pidx_pid = at(s, s->a_pidx);
		s->pidx_row = s->pidx_pid ? s->pidx_pid + rows : NULL;
	}
	if (rows != s->rows || c.p != c.end) {
		snprintf(err, errcap, "row count or directory length does not add up");
		return TD_ECORRUPT;
	}
	return 0;
}

int seg_open_image(struct seg **out, unsigned char *img, size_t len, char *err, size_t errcap)
{
	struct seg *s = td_calloc(1, sizeof(*s));
	s->img = img;
	s->len = len;
	s->refs = 1;
	int rc = open_common(s, err, errcap);
	if (rc) {
		seg_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int seg_open_file(struct seg **out, const char *path, uint64_t id, char *err, size_t errcap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errcap, "cannot open: %s", strerror(errno));
		return errno == ENOENT ? TD_ENOTFOUND : TD_EIO;
	}
	struct stat st;
	if (fstat(fd, &st) || st.st_size < SEG_HEADER) {
		close(fd);
		snprintf(err, errcap, "file too short");
		return TD_ECORRUPT;
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		snprintf(err, errcap, "cannot map: %s", strerror(errno));
		return TD_EIO;
	}
	struct seg *s = td_calloc(1, sizeof(*s));
	s->img = p;
	s->len = (size_t)st.st_size;
	s->mapped = true;
	s->refs = 1;
	s->id = id;
	int rc = open_common(s, err, errcap);
	if (rc) {
		seg_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

static int check_area(const struct seg *s, struct seg_area a, const char *group, const char *what,
		      char *err, size_t errcap)
{
	if (a.len && td_crc32c(0, s->img + a.off, a.len) != a.crc) {
		snprintf(err, errcap, "checksum mismatch in %s of event \"%s\"", what, group);
		return TD_ECORRUPT;
	}
	return 0;
}

static int verify_person_index(const struct seg *s, char *err, size_t errcap);
static const struct seg_group *group_of_row(const struct seg *s, uint64_t r);

int seg_verify(const struct seg *s, char *err, size_t errcap)
{
	for (uint32_t i = 0; i < s->ngroups; i++) {
		const struct seg_group *g = &s->groups[i];
		if (check_area(s, g->a_ts, g->name, "timestamps", err, errcap) ||
		    check_area(s, g->a_pid, g->name, "person ids", err, errcap) ||
		    check_area(s, g->a_rawidx, g->name, "raw index", err, errcap) ||
		    check_area(s, g->a_raw, g->name, "raw messages", err, errcap))
			return TD_ECORRUPT;
		for (uint32_t k = 0; k < g->ncols; k++) {
			const struct seg_column *c = &g->cols[k];
			char what[300];
			snprintf(what, sizeof(what), "column %s", c->path);
			if (check_area(s, c->a_present, g->name, what, err, errcap) ||
			    check_area(s, c->a_values, g->name, what, err, errcap) ||
			    check_area(s, c->a_dict, g->name, what, err, errcap) ||
			    check_area(s, c->a_zone, g->name, what, err, errcap))
				return TD_ECORRUPT;
			if (c->kind == QCOL_STRING && string_column_ready(g, c) < 0) {
				snprintf(
				    err, errcap,
				    "column %s of event \"%s\" has codes outside its dictionary",
				    c->path, g->name);
				return TD_ECORRUPT;
			}
		}
		for (uint32_t r = 1; r < g->n; r++)
			if (g->ts[r] < g->ts[r - 1]) {
				snprintf(err, errcap, "timestamps out of order in event \"%s\"",
					 g->name);
				return TD_ECORRUPT;
			}
	}
	return verify_person_index(s, err, errcap);
}

/* The person index must list every row once, under its pid, in order. */
static int verify_person_index(const struct seg *s, char *err, size_t errcap)
{
	if (!s->pidx_pid)
		return 0;
	if (check_area(s, s->a_pidx, "(all)", "person index", err, errcap))
		return TD_ECORRUPT;
	uint8_t *seen = td_calloc(s->rows ? s->rows : 1, 1);
	int rc = 0;
	for (uint64_t i = 0; i < s->rows && !rc; i++) {
		uint32_t r = s->pidx_row[i];
		const struct seg_group *g = r < s->rows ? group_of_row(s, r) : NULL;
		if (!g || seen[r] || g->pid[r - g->row0] != s->pidx_pid[i] ||
		    (i > 0 && (s->pidx_pid[i] < s->pidx_pid[i - 1] ||
			       (s->pidx_pid[i] == s->pidx_pid[i - 1] && r < s->pidx_row[i - 1]))))
			rc = TD_ECORRUPT;
		else
			seen[r] = 1;
	}
	free(seen);
	if (rc)
		snprintf(err, errcap, "the person index does not match the rows");
	return rc;
}

/* The group holding segment-wide row r (< rows). */
static const struct seg_group *group_of_row(const struct seg *s, uint64_t r)
{
	uint32_t lo = 0, hi = s->ngroups;
	while (hi - lo > 1) {
		uint32_t mid = (lo + hi) / 2;
		if (s->groups[mid].row0 <= r)
			lo = mid;
		else
			hi = mid;
	}
	return &s->groups[lo];
}

size_t seg_person_rows(const struct seg *s, uint32_t pid, seg_person_fn fn, void *ctx)
{
	size_t found = 0;
	if (!s->pidx_pid) { /* version 1: scan */
		for (uint32_t i = 0; i < s->ngroups; i++) {
			const struct seg_group *g = &s->groups[i];
			for (uint32_t r = 0; r < g->n; r++)
				if (g->pid[r] == pid) {
					fn(ctx, g, r);
					found++;
				}
		}
		return found;
	}
	uint64_t lo = 0, hi = s->rows; /* first entry with pid >= the one asked */
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (s->pidx_pid[mid] < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (uint64_t i = lo; i < s->rows && s->pidx_pid[i] == pid; i++) {
		uint32_t r = s->pidx_row[i];
		if (r >= s->rows)
			break; /* damaged: tandem check reports it */
		const struct seg_group *g = group_of_row(s, r);
		if (r - g->row0 >= g->n || g->pid[r - g->row0] != pid)
			continue;
		fn(ctx, g, (uint32_t)(r - g->row0));
		found++;
	}
	return found;
}

const struct seg_group *seg_group_find(const struct seg *s, const char *name)
{
	uint32_t lo = 0, hi = s->ngroups;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		int c = strcmp(s->groups[mid].name, name);
		if (c == 0)
			return &s->groups[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void seg_cursor_init(struct seg_cursor *c, const struct seg_group *g, uint32_t from, uint32_t to)
{
	memset(c, 0, sizeof(*c));
	c->g = g;
	c->row = from;
	c->end = TD_MIN(to, g->n);
	c->blkno = UINT32_MAX;
}

void seg_cursor_release(struct seg_cursor *c)
{
	free(c->blk);
	c->blk = NULL;
}

/* Decompresses block b into the cursor; 0 or TD_ECORRUPT. */
static int load_block(struct seg_cursor *c, uint32_t b)
{
	const struct seg_group *g = c->g;
	uint64_t off;
	uint32_t cl, ul;
	memcpy(&off, g->rawidx + (size_t)b * 16, 8);
	memcpy(&cl, g->rawidx + (size_t)b * 16 + 8, 4);
	memcpy(&ul, g->rawidx + (size_t)b * 16 + 12, 4);
	uint32_t first = b * g->raw_block, k = TD_MIN(g->n - first, g->raw_block);
	const unsigned char *src = g->seg->img + g->a_raw.off + off;
	if ((size_t)k * 4 > ul || ul > SEG_MAX_BLOCK_BYTES) /* too short for its length table */
		return TD_ECORRUPT;
	if (cl == 0 ? ul > g->a_raw.len - off : ZSTD_getFrameContentSize(src, cl) != ul)
		return TD_ECORRUPT; /* do not allocate what the index claims before checking */
	if (ul > c->blkcap) {
		free(c->blk);
		c->blk = td_malloc(ul);
		c->blkcap = ul;
	}
	size_t got;
	if (cl == 0) { /* stored plain */
		memcpy(c->blk, src, ul);
		got = ul;
	} else {
		got = ZSTD_decompress(c->blk, ul, src, cl);
	}
	if (ZSTD_isError(got) || got != ul || (size_t)k * 4 > ul)
		return TD_ECORRUPT;
	c->blkno = b;
	c->blkrows = k;
	c->blklen = ul;
	c->pos = (size_t)k * 4;
	c->next_in_blk = 0;
	return 0;
}

int seg_cursor_next(struct seg_cursor *c, const void **payload, size_t *len)
{
	if (c->row >= c->end)
		return 0;
	uint32_t b = c->row / c->g->raw_block, want = c->row % c->g->raw_block;
	if (b != c->blkno || want < c->next_in_blk) {
		int rc = load_block(c, b);
		if (rc)
			return rc;
	}
	for (;;) {
		uint32_t l;
		memcpy(&l, c->blk + 4 * c->next_in_blk, 4);
		if (l > c->blklen - c->pos)
			return TD_ECORRUPT;
		const unsigned char *p = c->blk + c->pos;
		c->pos += l;
		if (c->next_in_blk++ == want) {
			*payload = p;
			*len = l;
			c->row++;
			return 1;
		}
	}
}

int seg_group_payloads(const struct seg_group *g, uint32_t from, uint32_t to, seg_payload_fn fn,
		       void *ctx)
{
	struct seg_cursor c;
	seg_cursor_init(&c, g, from, to);
	int rc;
	const void *p;
	size_t len;
	while ((rc = seg_cursor_next(&c, &p, &len)) == 1)
		if ((rc = fn(ctx, c.row - 1, p, len)) != 0)
			break;
	seg_cursor_release(&c);
	return rc < 0 || rc > 1 ? rc : 0;
}

static int find_col(const struct seg_group *g, const char *path)
{
	uint32_t lo = 0, hi = g->ncols;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		int c = strcmp(g->cols[mid].path, path);
		if (c == 0)
			return (int)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

int seg_group_column(const struct seg_group *g, const char *path, struct query_column *col)
{
	int k = find_col(g, path);
	if (k >= 0) {
		const struct seg_column *c = &g->cols[k];
		memset(col, 0, sizeof(*col));
		col->kind = c->kind;
		col->present = c->present;
		if (c->kind == QCOL_STRING) {
			if (string_column_ready(g, c) < 0)
				return TD_ECORRUPT;
			col->code = c->values;
			col->dict = (const char *const *)c->dict;
			col->ndict = c->ndict;
		} else if (c->kind == QCOL_NUMBER) {
			col->num = c->values;
		} else {
			col->boolv = c->values;
		}
		return 0;
	}
	for (uint32_t r = 0; r < g->nrare; r++)
		if (!strcmp(g->rare[r].path, path))
			return seg_rare_column((struct seg_group *)g, path, col);
	return TD_ENOTFOUND;
}
