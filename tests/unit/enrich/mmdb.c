/*
 * mmdb.c - writes a small MaxMind-format database for the geo tests, from
 * the public MaxMind DB File Format Specification 2.0: a binary search tree
 * over the address bits (24-bit records), 16 zero bytes, the data section
 * (typed values: a control byte with the type in the top 3 bits and the size
 * in the low 5; types > 7 are "extended": 0 in the top bits, type - 7 in the
 * next byte), then "\xAB\xCD\xEFMaxMind.com" and the metadata map.
 */
#include "mmdb.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MAX_NODES 4096
#define DATA_MAX  4096

enum { T_STRING = 2, T_MAP = 7, T_UINT16 = 5, T_UINT32 = 6, T_UINT64 = 9, T_ARRAY = 11 };

struct buf {
	unsigned char b[DATA_MAX];
	size_t n;
};

static void ctrl(struct buf *d, int type, size_t size)
{
	/* sizes used here are < 29: they fit in the control byte */
	if (type <= 7) {
		d->b[d->n++] = (unsigned char)(type << 5 | (int)size);
	} else {
		d->b[d->n++] = (unsigned char)size;
		d->b[d->n++] = (unsigned char)(type - 7);
	}
}

static void str(struct buf *d, const char *s)
{
	size_t n = strlen(s);
	ctrl(d, T_STRING, n);
	memcpy(d->b + d->n, s, n);
	d->n += n;
}

static void uint(struct buf *d, int type, uint64_t v)
{
	unsigned char tmp[8];
	size_t n = 0;
	for (uint64_t x = v; x; x >>= 8)
		tmp[n++] = (unsigned char)(x & 0xff);
	ctrl(d, type, n);
	while (n)
		d->b[d->n++] = tmp[--n]; /* big-endian */
}

/* {"en": name} */
static void names(struct buf *d, const char *name)
{
	ctrl(d, T_MAP, 1);
	str(d, "names");
	ctrl(d, T_MAP, 1);
	str(d, "en");
	str(d, name);
}

/* A GeoIP2-City-shaped record; empty strings leave a part out. */
static void record(struct buf *d, const struct mmdb_net *n)
{
	size_t parts = (n->country[0] != 0) + (n->region[0] != 0) + (n->city[0] != 0);
	ctrl(d, T_MAP, parts);
	if (n->country[0]) {
		str(d, "country");
		ctrl(d, T_MAP, 1);
		str(d, "iso_code");
		str(d, n->country);
	}
	if (n->region[0]) {
		str(d, "subdivisions");
		ctrl(d, T_ARRAY, 1);
		names(d, n->region);
	}
	if (n->city[0]) {
		str(d, "city");
		names(d, n->city);
	}
}

struct tree {
	uint32_t rec[MAX_NODES][2]; /* node index, or ~offset of data (resolved later) */
	bool data[MAX_NODES][2];
	uint32_t n;
};

static uint32_t new_node(struct tree *t)
{
	uint32_t i = t->n++;
	t->rec[i][0] = t->rec[i][1] = UINT32_MAX; /* empty */
	t->data[i][0] = t->data[i][1] = false;
	return i;
}

static void insert(struct tree *t, uint32_t addr, int len, uint32_t data_off)
{
	uint32_t node = 0;
	for (int i = 0; i < len; i++) {
		int bit = (int)(addr >> (31 - i)) & 1;
		if (i == len - 1) {
			t->rec[node][bit] = data_off;
			t->data[node][bit] = true;
			return;
		}
		if (t->rec[node][bit] == UINT32_MAX || t->data[node][bit])
			t->rec[node][bit] = new_node(t);
		node = t->rec[node][bit];
	}
}

static void put24(FILE *f, uint32_t v)
{
	unsigned char b[3] = {(unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
	fwrite(b, 1, 3, f);
}

int mmdb_write(const char *path, const struct mmdb_net *nets, size_t n)
{
	static struct tree t;
	static struct buf data, meta;
	t.n = 0;
	data.n = meta.n = 0;
	new_node(&t);
	for (size_t i = 0; i < n; i++) {
		uint32_t off = (uint32_t)data.n;
		record(&data, &nets[i]);
		insert(&t, nets[i].addr, nets[i].prefix, off);
	}
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	for (uint32_t i = 0; i < t.n; i++)
		for (int b = 0; b < 2; b++) {
			uint32_t v = t.rec[i][b];
			if (t.data[i][b])
				v = t.n + 16 + v; /* a data record: node count + 16 + offset */
			else if (v == UINT32_MAX)
				v = t.n; /* no data */
			put24(f, v);
		}
	static const unsigned char zeros[16];
	fwrite(zeros, 1, 16, f);
	fwrite(data.b, 1, data.n, f);
	fwrite("\xab\xcd\xefMaxMind.com", 1, 14, f);
	ctrl(&meta, T_MAP, 9);
	str(&meta, "node_count");
	uint(&meta, T_UINT32, t.n);
	str(&meta, "record_size");
	uint(&meta, T_UINT16, 24);
	str(&meta, "ip_version");
	uint(&meta, T_UINT16, 4);
	str(&meta, "database_type");
	str(&meta, "tandem-test-City");
	str(&meta, "languages");
	ctrl(&meta, T_ARRAY, 1);
	str(&meta, "en");
	str(&meta, "binary_format_major_version");
	uint(&meta, T_UINT16, 2);
	str(&meta, "binary_format_minor_version");
	uint(&meta, T_UINT16, 0);
	str(&meta, "build_epoch");
	uint(&meta, T_UINT64, 1700000000);
	str(&meta, "description");
	ctrl(&meta, T_MAP, 1);
	str(&meta, "en");
	str(&meta, "tandem test data");
	fwrite(meta.b, 1, meta.n, f);
	return fclose(f) ? -1 : 0;
}
