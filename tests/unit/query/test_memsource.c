/*
 * test_memsource.c - the in-memory query source: chunks per name in time
 * order, random chunking keeps every row, columns and their kinds.
 */
#include "qtest.h"
#include "base/td.h"

#include <criterion/criterion.h>
#include <string.h>

static bool qcol_has_row(const struct query_column *c, size_t i)
{
	return !c->present || ((c->present[i / 64] >> (i % 64)) & 1);
}

static size_t rows_of(const struct query_source *s, const char *name)
{
	const struct query_chunk *c;
	size_t n = s->chunks(s->ctx, name, &c), rows = 0;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 1; j < c[i].n; j++)
			cr_assert_leq(c[i].ts[j - 1], c[i].ts[j], "chunk rows in time order");
		rows += c[i].n;
	}
	return rows;
}

Test(query_memsource, chunks_cover_every_row)
{
	struct qt_rng r = {61};
	for (int it = 0; it < 200; it++) {
		struct memsource *ms = memsource_new();
		size_t per[3] = {0};
		static const char *const names[] = {"A", "B", "C"};
		int n = qt_int(&r, 100);
		for (int i = 0; i < n; i++) {
			int k = qt_int(&r, 3);
			memsource_add(ms, names[k], qt_int(&r, 10), (uint32_t)qt_int(&r, 5));
			per[k]++;
		}
		memsource_build(ms, (size_t)qt_int(&r, 8), qt_int(&r, 2) ? qt_next(&r) : 0);
		const struct query_source *s = memsource_source(ms);
		for (int k = 0; k < 3; k++)
			cr_assert_eq(rows_of(s, names[k]), per[k]);
		cr_assert_eq(rows_of(s, ""), (size_t)n);
		cr_assert_eq(rows_of(s, "Z"), 0);
		const char *const *nm;
		size_t nn = s->event_names(s->ctx, &nm);
		size_t want = (per[0] > 0) + (per[1] > 0) + (per[2] > 0);
		cr_assert_eq(nn, want);
		memsource_free(ms);
	}
}

Test(query_memsource, columns)
{
	struct memsource *ms = memsource_new();
	cr_assert_eq(
	    memsource_add_json(ms, "A", 1, 0,
			       "{\"properties\":{\"plan\":\"pro\",\"n\":1,\"x\":\"s\"},"
			       "\"context\":{\"campaign\":{\"source\":\"g\"}},\"skip\":null}"),
	    0);
	size_t row = memsource_add(ms, "A", 2, 1);
	memsource_set_num(ms, row, "properties.x", 3); /* another kind: reads as absent */
	memsource_set_str(ms, row, "properties.plan", "free");
	cr_assert_eq(memsource_add_json(ms, "A", 3, 0, "[1]"), TD_EPARSE);
	memsource_build(ms, 0, 0);
	const struct query_source *s = memsource_source(ms);
	const struct query_chunk *c;
	cr_assert_eq(s->chunks(s->ctx, "A", &c), 1);
	struct query_column col;
	cr_assert_eq(c->column(c, "properties.plan", &col), 0);
	cr_assert_eq(col.kind, QCOL_STRING);
	cr_assert_null(col.present, "every row has it");
	cr_assert_str_eq(col.dict[col.code[0]], "pro");
	cr_assert_str_eq(col.dict[col.code[1]], "free");
	cr_assert_eq(c->column(c, "context.campaign.source", &col), 0);
	cr_assert(qcol_has_row(&col, 0) && !qcol_has_row(&col, 1));
	cr_assert_eq(c->column(c, "properties.x", &col), 0);
	cr_assert_eq(col.kind, QCOL_STRING);
	cr_assert(!qcol_has_row(&col, 1));
	cr_assert_eq(c->column(c, "skip", &col), TD_ENOTFOUND);
	cr_assert_eq(c->column(c, "properties.none", &col), TD_ENOTFOUND);
	cr_assert_eq(s->npersons, 2);
	memsource_free(ms);
}
