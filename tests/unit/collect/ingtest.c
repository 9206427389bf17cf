/*
 * ingtest.c - code shared by the ingest and checkpoint tests (ingtest.h).
 */
#include "ingtest.h"
#include "base/log.h"
#include "base/td.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char it_dir[64];

void it_setup(void)
{
	td_log_quiet = true;
	snprintf(it_dir, sizeof(it_dir), "/tmp/tandem-ingest-XXXXXX");
	cr_assert_not_null(mkdtemp(it_dir));
}

void it_teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", it_dir);
	cr_assert_eq(system(cmd), 0);
}

void it_env_open(struct it_env *e, int64_t window_ms, size_t queue_bytes)
{
	it_env_open_ckpt(e, window_ms, queue_bytes, NULL);
}

void it_env_open_ckpt(struct it_env *e, int64_t window_ms, size_t queue_bytes, uint64_t *ckpt_lsn)
{
	char wd[128];
	snprintf(wd, sizeof(wd), "%s/wal", it_dir);
	struct wal_options o = {.dir = wd, .max_pending_bytes = queue_bytes};
	e->g = ingest_new(window_ms);
	if (ckpt_lsn) {
		char path[128];
		it_ckpt_path(path, sizeof(path));
		cr_assert_eq(ingest_checkpoint_restore(e->g, path, ckpt_lsn), 0);
		o.replay_from_lsn = *ckpt_lsn + 1;
	}
	cr_assert_eq(wal_open(&e->w, &o, ingest_replay, e->g), 0);
	ingest_attach(e->g, e->w);
}

void it_ckpt_path(char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", it_dir, INGEST_CHECKPOINT_FILE);
}

void it_env_close(struct it_env *e)
{
	wal_close(e->w);
	ingest_free(e->g);
}

/* Prepares `body` (a batch) as source `source` received at `now`. */
void it_prep(struct collect_batch *b, const char *body, uint32_t source, int64_t now)
{
	struct collect_limits lim;
	collect_limits_default(&lim);
	struct collect_origin o = {.source_id = source, .received_ms = now};
	struct collect_error err;
	collect_batch_init(b);
	cr_assert_eq(collect_prepare(body, strlen(body), COLLECT_BATCH, &o, &lim, b, &err), 0);
}

void it_submit(struct it_env *e, const char *body, uint32_t source, int64_t now,
	       struct ingest_result *res)
{
	struct collect_batch b;
	it_prep(&b, body, source, now);
	ingest_submit(e->g, &b, now, res);
	if (!res->error && res->wait_lsn)
		cr_assert_eq(wal_wait(e->w, res->wait_lsn), 0);
	collect_batch_release(&b);
}

size_t it_count_records(void)
{
	char wd[128];
	snprintf(wd, sizeof(wd), "%s/wal", it_dir);
	struct wal_reader *r;
	struct wal_record rec;
	size_t n = 0;
	cr_assert_eq(wal_reader_open(&r, wd), 0);
	while (wal_reader_next(r, &rec) == 1)
		n++;
	wal_reader_free(r);
	return n;
}
