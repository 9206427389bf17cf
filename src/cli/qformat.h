/*
 * qformat.h - query results as text: the JSON document query_run() writes,
 * rendered as an aligned table for a terminal or as CSV for spreadsheets
 * (`tandem query --format json|table|csv`).
 *
 * Pure functions of the result text: no I/O, no store. Every result kind has
 * one grid (docs/cli.md shows them):
 *   trends     a row per bucket (and a "total" row), a column per line
 *              (series x breakdown value x period)
 *   funnel     a row per step (then per breakdown group and step)
 *   retention  a row per cohort, a column per period
 *   paths      a row per transition, depth 0 = sessions with the anchor
 *   events     a row per event, a column per field
 *   attribution  a row per touchpoint group and model
 * Tables start with a title line and may end with notes (a funnel's persons
 * page, "more events follow"); CSV (RFC 4180: CRLF line ends, fields quoted
 * when they hold a comma, quote, CR or LF, quotes doubled) has a header row
 * and the same grid, with numbers in their shortest exact form and null as
 * an empty field; notes that CSV cannot hold go to a separate buffer.
 */
#ifndef TD_CLI_QFORMAT_H
#define TD_CLI_QFORMAT_H

#include "base/buf.h"

#include <stddef.h>

enum qformat {
	QFORMAT_JSON,  /* the result as it is, plus a newline */
	QFORMAT_TABLE, /* aligned columns for people */
	QFORMAT_CSV,   /* RFC 4180 for programs and spreadsheets */
};

/* "json", "table" or "csv" -> *out; TD_EINVAL for anything else. */
int qformat_from_name(const char *name, enum qformat *out);

/* Table cells are cut to this many characters ("..." ends a cut cell). */
#define QFORMAT_MAX_CELL 60

/*
 * Renders one result (json/len) as fmt, appending to out. With
 * QFORMAT_CSV, what the grid cannot hold (a funnel's persons page, whether
 * more events follow) is appended to notes as lines of text (for stderr);
 * notes may be NULL. Returns 0; TD_EPARSE when json is not a query result
 * (err, errcap bytes, says why); TD_ETOOLARGE past out's cap. On failure out
 * and notes may hold part of the text.
 */
int qformat_render(const char *json, size_t len, enum qformat fmt, struct td_buf *out,
		   struct td_buf *notes, char *err, size_t errcap);

#endif
