/*
 * stest.h - shared helpers of the store tests: scratch directories, and
 * messages prepared as the collector would (optionally enriched), kept to
 * be applied, and applied again as a WAL replay would.
 */
#ifndef TD_TESTS_STORE_STEST_H
#define TD_TESTS_STORE_STEST_H

#include "collect/collect.h"
#include "store/store.h"

#include <stddef.h>

/* A fresh directory under /tmp (malloc'd path), removed by stest_rmtree. */
char *stest_tmpdir(void);
void stest_rmtree(const char *dir);
/* Copies every file of from into to: the state a crash would leave. */
void stest_copy_dir(const char *from, const char *to);

/* Prepared messages; message i is applied with LSN i + 1. */
struct stest_saved {
	struct collect_batch b;
	struct enrich *e; /* NULL: not enriched */
	size_t n;
};
/* enrich: give every message an "enriched" object (default configuration). */
void stest_saved_init(struct stest_saved *sv, bool enrich);
void stest_saved_free(struct stest_saved *sv);
/* For demo_generate: prepares one line (a trailing newline is ignored). */
int stest_save_line(void *ctx, const char *line, size_t len);
void stest_save(struct stest_saved *sv, const char *json);
/* store_apply of messages [from, to). */
void stest_apply_range(struct store *s, const struct stest_saved *sv, size_t from, size_t to);

#endif
