/*
 * fuzz_segment.c - the segment reader (seg_open_image, seg_verify, columns,
 * raw message cursors, rare-column building, merging) on arbitrary bytes, and
 * the JSON flattener on arbitrary text.
 *
 * Input: one control byte, then the bytes.
 *   control & 1  the bytes are a segment image; the header and directory
 *                checksums are rewritten (when the header fits) so mutations
 *                reach the directory parser and the data areas
 *   control & 2  the bytes are JSON text for seg_flatten
 *
 * Invariants: nothing reads outside the image (ASan); a segment that opens
 * has groups whose row counts add up to its row count, sorted unique names,
 * columns whose presence counts match their bitmaps; every column lookup and
 * raw walk ends with 0 or an error; a merge of an opened segment into a
 * builder either fails cleanly or gives an image that opens again with the
 * same number of rows. seg_flatten returns 0 or TD_ECORRUPT and every leaf
 * path it reports is non-empty, at most 255 bytes, without a NUL.
 */
#include "fuzz.h"

#include "base/crc32c.h"
#include "base/td.h"
#include "store/seg.h"

#include <string.h>

static int count_payload(void *ctx, uint32_t row, const void *p, size_t len)
{
	(void)p;
	(void)len;
	uint32_t *n = ctx;
	FUZZ_CHECK(row == *n);
	(*n)++;
	return 0;
}

static void on_leaf(void *ctx, const char *path, size_t pathlen, enum seg_leaf_kind k,
		    const char *str, size_t slen, double num, bool b)
{
	(void)ctx;
	(void)k;
	(void)str;
	(void)slen;
	(void)num;
	(void)b;
	FUZZ_CHECK(pathlen > 0 && pathlen < 256);
	FUZZ_CHECK(memchr(path, '\0', pathlen) == NULL);
}

static void fix_checksums(unsigned char *img, size_t len)
{
	if (len < SEG_HEADER)
		return;
	uint64_t dir_off;
	memcpy(&dir_off, img + 40, 8);
	if (dir_off >= SEG_HEADER && dir_off <= len) {
		uint32_t dlen = (uint32_t)(len - dir_off);
		uint32_t dcrc = td_crc32c(0, img + dir_off, dlen);
		memcpy(img + 48, &dlen, 4);
		memcpy(img + 52, &dcrc, 4);
	}
	uint32_t crc = td_crc32c(0, img, 60);
	memcpy(img + 60, &crc, 4);
}

static void exercise(struct seg *s)
{
	char err[256];
	uint64_t rows = 0;
	(void)seg_verify(s, err, sizeof(err));
	for (uint32_t i = 0; i < s->ngroups; i++) {
		struct seg_group *g = &s->groups[i];
		rows += g->n;
		if (i > 0)
			FUZZ_CHECK(strcmp(s->groups[i - 1].name, g->name) < 0);
		FUZZ_CHECK(seg_group_find(s, g->name) == g);
		for (uint32_t k = 0; k < g->ncols; k++) {
			struct query_column col;
			int crc = seg_group_column(g, g->cols[k].path, &col);
			FUZZ_CHECK(crc == 0 ||
				   (crc == TD_ECORRUPT && g->cols[k].kind == QCOL_STRING));
			if (crc == 0 && col.kind == QCOL_STRING)
				for (uint32_t r = 0; r < g->n; r++)
					if (!col.present || col.present[r / 64] >> (r % 64) & 1)
						FUZZ_CHECK(col.code[r] < col.ndict);
		}
		for (uint32_t k = 0; k < g->nrare; k++) {
			struct query_column col;
			int rc = seg_group_column(g, g->rare[k].path, &col);
			FUZZ_CHECK(rc == 0 || rc == TD_ENOTFOUND || rc == TD_ECORRUPT);
		}
		uint32_t n = 0;
		int rc = seg_group_payloads(g, 0, g->n, count_payload, &n);
		FUZZ_CHECK(rc == 0 || rc == TD_ECORRUPT);
		if (rc == 0)
			FUZZ_CHECK(n == g->n);
	}
	FUZZ_CHECK(rows == s->rows);
	struct seg_builder *b = seg_builder_new();
	struct seg *in[1] = {s};
	if (seg_merge_into(b, in, 1) == 0 && seg_builder_rows(b) > 0) {
		unsigned char *img;
		size_t len;
		FUZZ_CHECK(seg_builder_finish(b, SEG_ZSTD_LEVEL, &img, &len) == 0);
		struct seg *again;
		FUZZ_CHECK(seg_open_image(&again, img, len, err, sizeof(err)) == 0);
		FUZZ_CHECK(again->rows == s->rows);
		seg_unref(again);
	}
	seg_builder_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t control = data[0];
	data++;
	size--;
	if (control & 2) {
		int rc = seg_flatten((const char *)data, size, on_leaf, NULL);
		FUZZ_CHECK(rc == 0 || rc == TD_ECORRUPT);
		return 0;
	}
	unsigned char *img = td_malloc(size ? size : 1);
	memcpy(img, data, size);
	if (control & 1)
		fix_checksums(img, size);
	struct seg *s;
	char err[256];
	if (seg_open_image(&s, img, size, err, sizeof(err)) == 0) {
		exercise(s);
		seg_unref(s);
	}
	return 0;
}
