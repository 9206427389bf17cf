/*
 * meta_int.h - what the files of src/meta share beyond meta.h.
 */
#ifndef TD_META_META_INT_H
#define TD_META_META_INT_H

#include "meta/meta.h"

#include <sqlite3.h>

/* Runs fn with the connection while holding the meta lock (every use of the
 * connection is serialized by it); returns what fn returns. */
int meta_with_db(struct meta *m, int (*fn)(sqlite3 *db, void *ctx), void *ctx);

#endif
