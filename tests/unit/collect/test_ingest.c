/*
 * Exactly-once acceptance (ingest.c): dedupe by (source, messageId) within the
 * window, across restarts (rebuilt from the WAL), whole-batch refusal.
 */
#include "base/td.h"
#include "collect/collect.h"
#include "wal/wal.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/tandem-ingest-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

struct env {
	struct ingest *g;
	struct wal *w;
};

static void env_open(struct env *e, int64_t window_ms, size_t queue_bytes)
{
	char wd[128];
	snprintf(wd, sizeof(wd), "%s/wal", dir);
	struct wal_options o = {.dir = wd, .max_pending_bytes = queue_bytes};
	e->g = ingest_new(window_ms);
	cr_assert_eq(wal_open(&e->w, &o, ingest_replay, e->g), 0);
	ingest_attach(e->g, e->w);
}

static void env_close(struct env *e)
{
	wal_close(e->w);
	ingest_free(e->g);
}

/* Prepares `body` (a batch) as source `source` received at `now`. */
static void prep(struct collect_batch *b, const char *body, uint32_t source, int64_t now)
{
	struct collect_limits lim;
	collect_limits_default(&lim);
	struct collect_origin o = {.source_id = source, .received_ms = now};
	struct collect_error err;
	collect_batch_init(b);
	cr_assert_eq(collect_prepare(body, strlen(body), COLLECT_BATCH, &o, &lim, b, &err), 0);
}

static void submit(struct env *e, const char *body, uint32_t source, int64_t now,
		   struct ingest_result *res)
{
	struct collect_batch b;
	prep(&b, body, source, now);
	ingest_submit(e->g, &b, now, res);
	if (!res->error && res->wait_lsn)
		cr_assert_eq(wal_wait(e->w, res->wait_lsn), 0);
	collect_batch_release(&b);
}

static const char batch3[] =
    "{\"batch\":[{\"type\":\"track\",\"userId\":\"u\",\"event\":\"a\",\"messageId\":\"m1\"},"
    "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"b\",\"messageId\":\"m2\"},"
    "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"c\",\"messageId\":\"m1\"}]}";

static size_t count_records(void)
{
	char wd[128];
	snprintf(wd, sizeof(wd), "%s/wal", dir);
	struct wal_reader *r;
	struct wal_record rec;
	size_t n = 0;
	cr_assert_eq(wal_reader_open(&r, wd), 0);
	while (wal_reader_next(r, &rec) == 1)
		n++;
	wal_reader_free(r);
	return n;
}

Test(ingest, duplicates_in_and_across_batches_and_restarts, .init = setup, .fini = teardown)
{
	const int64_t t = 1795000000000;
	struct env e;
	struct ingest_result res;
	env_open(&e, 7LL * 86400000, 0);
	submit(&e, batch3, 1, t, &res);
	cr_assert_eq(res.error, 0);
	cr_assert_eq(res.accepted, 2, "m1 twice in one batch is stored once");
	cr_assert_eq(res.duplicates, 1);
	submit(&e, batch3, 1, t + 1000, &res);
	cr_assert_eq(res.accepted, 0);
	cr_assert_eq(res.duplicates, 3, "a retried batch is acknowledged, not stored");
	submit(&e, batch3, 2, t + 1000, &res);
	cr_assert_eq(res.accepted, 2, "another source may use the same messageIds");
	cr_assert_eq(ingest_dedupe_size(e.g), 4);
	env_close(&e);

	env_open(&e, 7LL * 86400000, 0);
	cr_assert_eq(ingest_dedupe_size(e.g), 4, "the index is rebuilt from the WAL");
	submit(&e, batch3, 1, t + 2000, &res);
	cr_assert_eq(res.accepted, 0);
	cr_assert_eq(res.duplicates, 3);
	env_close(&e);
	cr_assert_eq(count_records(), 4);
}

Test(ingest, window_expires, .init = setup, .fini = teardown)
{
	const int64_t t = 1795000000000;
	struct env e;
	struct ingest_result res;
	env_open(&e, 60000, 0);
	submit(&e, batch3, 1, t, &res);
	cr_assert_eq(res.accepted, 2);
	submit(&e, batch3, 1, t + 59000, &res);
	cr_assert_eq(res.accepted, 0);
	submit(&e, batch3, 1, t + 61000, &res);
	cr_assert_eq(res.accepted, 2, "past the window the same ids are new messages");
	env_close(&e);
}

Test(ingest, assigned_ids_are_never_duplicates, .init = setup, .fini = teardown)
{
	const char body[] = "{\"batch\":[{\"type\":\"track\",\"userId\":\"u\",\"event\":\"a\"}]}";
	struct env e;
	struct ingest_result res;
	env_open(&e, 60000, 0);
	submit(&e, body, 1, 1795000000000, &res);
	submit(&e, body, 1, 1795000000000, &res);
	cr_assert_eq(res.accepted, 1);
	cr_assert_eq(ingest_dedupe_size(e.g), 0);
	env_close(&e);
	cr_assert_eq(count_records(), 2);
}

Test(ingest, full_queue_refuses_the_whole_batch, .init = setup, .fini = teardown)
{
	/* The writer drains the queue once per fsync (a fraction of a
	 * millisecond); submitting without waiting fills a 1000-byte queue
	 * within a few batches. */
	struct env e;
	struct ingest_result res;
	env_open(&e, 60000, 1000);
	/* fill the queue without waiting, then a batch that does not fit */
	size_t accepted = 0;
	int refused = 0;
	for (int i = 0; i < 200 && !refused; i++) {
		struct collect_batch bb;
		char body[256];
		snprintf(body, sizeof(body),
			 "{\"batch\":[{\"type\":\"track\",\"userId\":\"u\",\"event\":\"a\","
			 "\"messageId\":\"f%d\"},{\"type\":\"track\",\"userId\":\"u\",\"event\":"
			 "\"a\",\"messageId\":\"g%d\"}]}",
			 i, i);
		prep(&bb, body, 1, 1795000000000);
		ingest_submit(e.g, &bb, 1795000000000, &res);
		if (res.error) {
			cr_assert_eq(res.error, TD_EFULL);
			cr_assert_eq(res.accepted, 0, "nothing of a refused batch is kept");
			refused = 1;
		} else {
			accepted += res.accepted;
		}
		collect_batch_release(&bb);
	}
	cr_assert(refused, "the queue never filled");
	size_t size_before = ingest_dedupe_size(e.g);
	cr_assert_eq(size_before, accepted, "refused messages are not remembered as seen");
	env_close(&e);
	cr_assert_eq(count_records(), accepted);
}

Test(ingest, remembers_every_id_while_growing, .init = setup, .fini = teardown)
{
	/* 100k ids force every shard to grow several times */
	const int64_t t = 1795000000000;
	struct env e;
	struct ingest_result res;
	env_open(&e, 7LL * 86400000, 0);
	static char body[64 * 1024];
	for (int round = 0; round < 2; round++) {
		size_t accepted = 0, dups = 0;
		for (int k = 0; k < 1000; k++) {
			size_t n = (size_t)snprintf(body, sizeof(body), "{\"batch\":[");
			for (int i = 0; i < 100; i++)
				n += (size_t)snprintf(body + n, sizeof(body) - n,
						      "%s{\"type\":\"track\",\"userId\":\"u\","
						      "\"event\":\"e\",\"messageId\":\"id-%d-%d\"}",
						      i ? "," : "", k, i);
			snprintf(body + n, sizeof(body) - n, "]}");
			submit(&e, body, 1, t + round * 1000, &res);
			cr_assert_eq(res.error, 0);
			accepted += res.accepted;
			dups += res.duplicates;
		}
		if (round == 0) {
			cr_assert_eq(accepted, 100000);
			cr_assert_eq(ingest_dedupe_size(e.g), 100000);
		} else {
			cr_assert_eq(accepted, 0, "every id is still remembered after growing");
			cr_assert_eq(dups, 100000);
		}
	}
	env_close(&e);
}
