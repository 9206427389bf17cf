/*
 * stest.c - shared helpers of the store tests (see stest.h).
 */
#include "stest.h"
#include "enrich/enrich.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *stest_tmpdir(void)
{
	char *d = strdup("/tmp/tandem-store-XXXXXX");
	cr_assert(mkdtemp(d));
	return d;
}

void stest_rmtree(const char *d)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	cr_assert_eq(system(cmd), 0);
}

void stest_copy_dir(const char *from, const char *to)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "cp -a '%s/.' '%s/'", from, to);
	cr_assert_eq(system(cmd), 0);
}

void stest_saved_init(struct stest_saved *sv, bool enrich)
{
	memset(sv, 0, sizeof(*sv));
	collect_batch_init(&sv->b);
	if (enrich) {
		char err[600];
		cr_assert_eq(enrich_new(&sv->e, "{}", NULL, err, sizeof(err)), 0, "%s", err);
	}
}

void stest_saved_free(struct stest_saved *sv)
{
	collect_batch_release(&sv->b);
	enrich_free(sv->e);
}

int stest_save_line(void *ctx, const char *line, size_t len)
{
	struct stest_saved *sv = ctx;
	struct collect_limits lim;
	collect_limits_default(&lim);
	struct collect_origin o = {.source_id = 1, .received_ms = 1700000000000LL, .enrich = sv->e};
	if (len && line[len - 1] == '\n')
		len--;
	cr_assert_eq(collect_prepare_line(line, len, (int)sv->n++, &o, &lim, &sv->b), 0, "%s",
		     line);
	return 0;
}

void stest_save(struct stest_saved *sv, const char *json)
{
	stest_save_line(sv, json, strlen(json));
}

void stest_apply_range(struct store *s, const struct stest_saved *sv, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		cr_assert_eq(
		    store_apply(s, i + 1, sv->b.payloads.data + sv->b.off[i], sv->b.len[i]), 0);
}
