/*
 * memsource.h - an in-memory struct query_source built from plain rows, for
 * tests of the query engine and of anything that runs queries before the
 * column store exists.
 *
 * Usage: memsource_new(), then memsource_add() per row with
 * memsource_set_*() for its properties (or memsource_add_json()), then
 * memsource_build(), then hand memsource_source() to query_run(). Adding
 * rows after a build needs another build; the source returned before it is
 * then stale.
 *
 * Columns: one per (chunk, property path). A path's column kind in a chunk is
 * the kind of the first value set for it among that chunk's rows (in the
 * order the values were set); rows whose value has another kind read as not
 * having the property, the way a store that promotes one type per segment
 * would show them. Setting a path twice on a row keeps the last value.
 */
#ifndef TD_QUERY_MEMSOURCE_H
#define TD_QUERY_MEMSOURCE_H

#include "query/query.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct memsource;

struct memsource *memsource_new(void);
void memsource_free(struct memsource *ms);

/* Adds a row (event name copied); returns its row number. */
size_t memsource_add(struct memsource *ms, const char *event, int64_t ts, uint32_t pid);
void memsource_set_str(struct memsource *ms, size_t row, const char *path, const char *value);
void memsource_set_num(struct memsource *ms, size_t row, const char *path, double value);
void memsource_set_bool(struct memsource *ms, size_t row, const char *path, bool value);
/* Adds a row whose properties come from a JSON object: nested objects give
 * dotted paths ({"properties":{"plan":"pro"}} sets "properties.plan");
 * strings, numbers and booleans are kept, null and arrays skipped. Returns
 * 0 or TD_EPARSE. */
int memsource_add_json(struct memsource *ms, const char *event, int64_t ts, uint32_t pid,
		       const char *json);

/* npersons and canonical[npersons] (copied; NULL = identity). Without this
 * call npersons is one more than the largest pid added. */
void memsource_set_persons(struct memsource *ms, uint32_t npersons, const uint32_t *canonical);

/* Makes the column() callback of every chunk return rc for path (0 to undo):
 * for tests of store errors. */
void memsource_fail_column(struct memsource *ms, const char *path, int rc);

/*
 * Builds the chunks. Rows are grouped by event name and sorted by time.
 * seed == 0: rows keep their insertion order among equal times and each
 * name's rows are cut into consecutive chunks of at most chunk_rows rows
 * (0 = one chunk per name). seed != 0: ties are shuffled and rows are dealt
 * to ceil(n / chunk_rows) chunks at random, so chunks of one name overlap
 * in time, as segments of a real store may.
 */
void memsource_build(struct memsource *ms, size_t chunk_rows, uint64_t seed);

/* The source; valid until the next memsource_build() or memsource_free(). */
const struct query_source *memsource_source(struct memsource *ms);

#endif
