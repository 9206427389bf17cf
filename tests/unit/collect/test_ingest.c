/*
 * Exactly-once acceptance (ingest.c): dedupe by (source, messageId) within the
 * window, across restarts (rebuilt from the WAL), whole-batch refusal.
 */
#include "base/td.h"
#include "collect/collect.h"
#include "ingtest.h"
#include "wal/wal.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char batch3[] =
    "{\"batch\":[{\"type\":\"track\",\"userId\":\"u\",\"event\":\"a\",\"messageId\":\"m1\"},"
    "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"b\",\"messageId\":\"m2\"},"
    "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"c\",\"messageId\":\"m1\"}]}";

Test(ingest, duplicates_in_and_across_batches_and_restarts, .init = it_setup, .fini = it_teardown)
{
	const int64_t t = 1795000000000;
	struct it_env e;
	struct ingest_result res;
	it_env_open(&e, 7LL * 86400000, 0);
	it_submit(&e, batch3, 1, t, &res);
	cr_assert_eq(res.error, 0);
	cr_assert_eq(res.accepted, 2, "m1 twice in one batch is stored once");
	cr_assert_eq(res.duplicates, 1);
	it_submit(&e, batch3, 1, t + 1000, &res);
	cr_assert_eq(res.accepted, 0);
	cr_assert_eq(res.duplicates, 3, "a retried batch is acknowledged, not stored");
	it_submit(&e, batch3, 2, t + 1000, &res);
	cr_assert_eq(res.accepted, 2, "another source may use the same messageIds");
	cr_assert_eq(ingest_dedupe_size(e.g), 4);
	it_env_close(&e);

	it_env_open(&e, 7LL * 86400000, 0);
	cr_assert_eq(ingest_dedupe_size(e.g), 4, "the index is rebuilt from the WAL");
	it_submit(&e, batch3, 1, t + 2000, &res);
	cr_assert_eq(res.accepted, 0);
	cr_assert_eq(res.duplicates, 3);
	it_env_close(&e);
	cr_assert_eq(it_count_records(), 4);
}

Test(ingest, window_expires, .init = it_setup, .fini = it_teardown)
{
	const int64_t t = 1795000000000;
	struct it_env e;
	struct ingest_result res;
	it_env_open(&e, 60000, 0);
	it_submit(&e, batch3, 1, t, &res);
	cr_assert_eq(res.accepted, 2);
	it_submit(&e, batch3, 1, t + 59000, &res);
	cr_assert_eq(res.accepted, 0);
	it_submit(&e, batch3, 1, t + 61000, &res);
	cr_assert_eq(res.accepted, 2, "past the window the same ids are new messages");
	it_env_close(&e);
}

Test(ingest, assigned_ids_are_never_duplicates, .init = it_setup, .fini = it_teardown)
{
	const char body[] = "{\"batch\":[{\"type\":\"track\",\"userId\":\"u\",\"event\":\"a\"}]}";
	struct it_env e;
	struct ingest_result res;
	it_env_open(&e, 60000, 0);
	it_submit(&e, body, 1, 1795000000000, &res);
	it_submit(&e, body, 1, 1795000000000, &res);
	cr_assert_eq(res.accepted, 1);
	cr_assert_eq(ingest_dedupe_size(e.g), 0);
	it_env_close(&e);
	cr_assert_eq(it_count_records(), 2);
}

Test(ingest, full_queue_refuses_the_whole_batch, .init = it_setup, .fini = it_teardown)
{
	/* The writer drains the queue once per fsync (a fraction of a
	 * millisecond); submitting without waiting fills a 1000-byte queue
	 * within a few batches. */
	struct it_env e;
	struct ingest_result res;
	it_env_open(&e, 60000, 1000);
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
		it_prep(&bb, body, 1, 1795000000000);
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
	it_env_close(&e);
	cr_assert_eq(it_count_records(), accepted);
}

Test(ingest, remembers_every_id_while_growing, .init = it_setup, .fini = it_teardown)
{
	/* 100k ids force every shard to grow several times */
	const int64_t t = 1795000000000;
	struct it_env e;
	struct ingest_result res;
	it_env_open(&e, 7LL * 86400000, 0);
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
			it_submit(&e, body, 1, t + round * 1000, &res);
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
	it_env_close(&e);
}
