/*
 * The dedupe checkpoint (checkpoint.c) and the WAL removal policy (walgc.c):
 * a round trip that needs no WAL at all, replay of only what follows the
 * checkpoint, keys of records not yet durable left out, the window applied
 * on save and on load, damage refused without touching the index, saving
 * while other threads submit, and when the policy saves and removes.
 */
#include "base/buf.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "collect/collect.h"
#include "ingtest.h"
#include "wal/wal.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WEEK_MS (7LL * 86400 * 1000)

TestSuite(checkpoint, .init = it_setup, .fini = it_teardown);

/* {"batch":[...]} of n tracks with messageIds "<prefix>-<from>" on; free() it. */
static char *ids_batch(const char *prefix, int from, int n)
{
	struct td_buf b;
	td_buf_init(&b, SIZE_MAX / 2);
	td_buf_printf(&b, "{\"batch\":[");
	for (int i = 0; i < n; i++)
		td_buf_printf(&b,
			      "%s{\"type\":\"track\",\"userId\":\"u\",\"event\":\"e\","
			      "\"messageId\":\"%s-%d\"}",
			      i ? "," : "", prefix, from + i);
	td_buf_printf(&b, "]}");
	return td_buf_steal(&b);
}

static void submit_ids(struct it_env *e, const char *prefix, int from, int n, int64_t now,
		       struct ingest_result *res)
{
	char *body = ids_batch(prefix, from, n);
	it_submit(e, body, 1, now, res);
	cr_assert_eq(res->error, 0, "submit: %s", td_strerror(res->error));
	free(body);
}

/* Submits the ids again: all must be duplicates. */
static void expect_duplicates(struct it_env *e, const char *prefix, int n, int64_t now)
{
	struct ingest_result res;
	submit_ids(e, prefix, 0, n, now, &res);
	cr_assert_eq(res.accepted, 0, "%s-*: %zu taken as new", prefix, res.accepted);
	cr_assert_eq(res.duplicates, (size_t)n);
}

static void save(struct it_env *e, int64_t now, uint64_t *lsn)
{
	char path[128];
	it_ckpt_path(path, sizeof(path));
	*lsn = wal_durable_lsn(e->w);
	int rc = ingest_checkpoint_save(e->g, path, *lsn, now);
	cr_assert_eq(rc, 0, "save: %s", td_strerror(rc));
}

static void remove_wal_dir(void)
{
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf %s/wal", it_dir);
	cr_assert_eq(system(cmd), 0);
}

Test(checkpoint, round_trip_needs_no_wal)
{
	int64_t now = td_now_ms();
	struct it_env e;
	struct ingest_result res;
	it_env_open(&e, WEEK_MS, 0);
	for (int k = 0; k < 10; k++)
		submit_ids(&e, "a", k * 100, 100, now, &res);
	uint64_t lsn;
	save(&e, now, &lsn);
	cr_assert_eq(lsn, 1000);
	struct ingest_checkpoint_stats st;
	ingest_checkpoint_stats(e.g, &st);
	cr_assert_eq(st.lsn, 1000);
	cr_assert_eq(st.entries, 1000);
	cr_assert_eq(st.bytes, 48 + 16 * 1000);
	cr_assert_eq(st.saved_ms, now);
	cr_assert_eq(st.saves, 1);
	it_env_close(&e);

	remove_wal_dir(); /* every WAL file gone: only the checkpoint knows */
	uint64_t ckpt_lsn;
	it_env_open_ckpt(&e, WEEK_MS, 0, &ckpt_lsn);
	cr_assert_eq(ckpt_lsn, 1000);
	cr_assert_eq(ingest_dedupe_size(e.g), 1000);
	expect_duplicates(&e, "a", 1000, now);
	submit_ids(&e, "new", 0, 1, now, &res);
	cr_assert_eq(res.accepted, 1);
	cr_assert_eq(res.wait_lsn, 1001, "LSNs go on past the checkpoint");
	it_env_close(&e);
}

Test(checkpoint, replay_adds_only_what_follows_it)
{
	int64_t now = td_now_ms();
	struct it_env e;
	struct ingest_result res;
	it_env_open(&e, WEEK_MS, 0);
	submit_ids(&e, "a", 0, 100, now, &res);
	uint64_t lsn;
	save(&e, now, &lsn);
	submit_ids(&e, "b", 0, 100, now, &res);
	it_env_close(&e);

	uint64_t ckpt_lsn;
	it_env_open_ckpt(&e, WEEK_MS, 0, &ckpt_lsn);
	cr_assert_eq(ckpt_lsn, lsn);
	cr_assert_eq(ingest_dedupe_size(e.g), 200);
	expect_duplicates(&e, "a", 100, now);
	expect_duplicates(&e, "b", 100, now);
	it_env_close(&e);

	/* the replay callback itself skips what the checkpoint covers (a replay
	 * may start earlier, for another consumer) */
	struct ingest *g = ingest_new(WEEK_MS);
	char path[128];
	it_ckpt_path(path, sizeof(path));
	cr_assert_eq(ingest_checkpoint_load(g, path, &ckpt_lsn), 0);
	struct collect_batch b;
	char *body = ids_batch("z", 0, 1);
	it_prep(&b, body, 1, now);
	struct wal_record rec = {.lsn = ckpt_lsn,
				 .type = WAL_REC_EVENT,
				 .payload = b.payloads.data + b.off[0],
				 .len = (uint32_t)b.len[0]};
	cr_assert_eq(ingest_replay(g, &rec), 0);
	cr_assert_eq(ingest_dedupe_size(g), 100);
	rec.lsn = ckpt_lsn + 1;
	cr_assert_eq(ingest_replay(g, &rec), 0);
	cr_assert_eq(ingest_dedupe_size(g), 101);
	collect_batch_release(&b);
	free(body);
	ingest_free(g);
}

Test(checkpoint, keys_not_yet_durable_are_left_out)
{
	/* async, with a long interval: appended records stay in the queue */
	char wd[128], path[128];
	snprintf(wd, sizeof(wd), "%s/wal", it_dir);
	it_ckpt_path(path, sizeof(path));
	struct wal_options o = {.dir = wd, .durability = WAL_ASYNC, .async_interval_ms = 10000};
	struct it_env e = {.g = ingest_new(WEEK_MS)};
	cr_assert_eq(wal_open(&e.w, &o, ingest_replay, e.g), 0);
	ingest_attach(e.g, e.w);
	struct ingest_result res;
	int64_t now = td_now_ms();
	submit_ids(&e, "p", 0, 50, now, &res);
	cr_assert_eq(res.accepted, 50);
	cr_assert_eq(wal_durable_lsn(e.w), 0, "the records are still queued");

	cr_assert_eq(ingest_checkpoint_save(e.g, path, 50, now), TD_EINVAL,
		     "a checkpoint may not cover records that are not durable");
	cr_assert_eq(ingest_checkpoint_save(e.g, path, 0, now), 0);
	struct ingest_checkpoint_stats st;
	ingest_checkpoint_stats(e.g, &st);
	cr_assert_eq(st.entries, 0, "a failed write could still take these keys back");
	it_env_close(&e);
}

Test(checkpoint, window_applies_on_save_and_on_load)
{
	int64_t now = td_now_ms();
	struct it_env e;
	struct ingest_result res;
	char path[128], late[160];
	it_ckpt_path(path, sizeof(path));
	snprintf(late, sizeof(late), "%s.late", path);
	it_env_open(&e, 60000, 0);
	submit_ids(&e, "w", 0, 10, now - 50000, &res); /* received 50 s ago */
	cr_assert_eq(res.accepted, 10);
	uint64_t lsn = wal_durable_lsn(e.w);
	cr_assert_eq(ingest_checkpoint_save(e.g, path, lsn, now), 0);
	cr_assert_eq(ingest_checkpoint_save(e.g, late, lsn, now + 20000), 0);
	struct ingest_checkpoint_stats st;
	ingest_checkpoint_stats(e.g, &st);
	cr_assert_eq(st.entries, 0, "20 s later the keys are out of the 60 s window");
	it_env_close(&e);

	struct ingest *g = ingest_new(60000);
	cr_assert_eq(ingest_checkpoint_load(g, path, &lsn), 0);
	cr_assert_eq(ingest_dedupe_size(g), 10);
	ingest_free(g);
	g = ingest_new(30000); /* a shorter window now: 50 s is too old */
	cr_assert_eq(ingest_checkpoint_load(g, path, &lsn), 0);
	cr_assert_eq(ingest_dedupe_size(g), 0);
	ingest_free(g);
}

static void write_bytes(const char *path, const unsigned char *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(p, 1, n, f), n);
	cr_assert_eq(fclose(f), 0);
}

static int load_fresh(const char *path)
{
	struct ingest *g = ingest_new(WEEK_MS);
	uint64_t lsn = 12345;
	int rc = ingest_checkpoint_load(g, path, &lsn);
	if (rc) {
		cr_assert_eq(ingest_dedupe_size(g), 0, "a refused file added keys");
		cr_assert_eq(lsn, 12345, "a refused file set the LSN");
	}
	ingest_free(g);
	return rc;
}

Test(checkpoint, damage_is_refused_and_leaves_the_index_alone)
{
	int64_t now = td_now_ms();
	struct it_env e;
	struct ingest_result res;
	char path[128], bad[160];
	it_ckpt_path(path, sizeof(path));
	snprintf(bad, sizeof(bad), "%s/bad.ckpt", it_dir);
	it_env_open(&e, WEEK_MS, 0);
	submit_ids(&e, "d", 0, 3, now, &res);
	uint64_t lsn;
	save(&e, now, &lsn);
	it_env_close(&e);

	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f);
	unsigned char good[48 + 3 * 16 + 1];
	size_t n = fread(good, 1, sizeof(good), f);
	fclose(f);
	cr_assert_eq(n, 48 + 3 * 16);
	cr_assert_eq(load_fresh(path), 0);

	unsigned char mut[sizeof(good)];
	for (size_t i = 0; i < n; i++) /* any one bit of any byte */
		for (int bit = 0; bit < 8; bit += 3) {
			memcpy(mut, good, n);
			mut[i] ^= (unsigned char)(1u << bit);
			write_bytes(bad, mut, n);
			cr_assert_eq(load_fresh(bad), TD_ECORRUPT, "byte %zu bit %d", i, bit);
		}
	for (size_t len = 0; len < n; len++) { /* cut anywhere */
		write_bytes(bad, good, len);
		cr_assert_eq(load_fresh(bad), TD_ECORRUPT, "cut at %zu", len);
	}
	memcpy(mut, good, n);
	mut[n] = 0;
	write_bytes(bad, mut, n + 1);
	cr_assert_eq(load_fresh(bad), TD_ECORRUPT, "a byte too many");
	unlink(bad);
	cr_assert_eq(load_fresh(bad), TD_ENOTFOUND);

	/* at start: reported, set aside, ignored */
	good[60] ^= 1;
	write_bytes(path, good, n);
	struct ingest *g = ingest_new(WEEK_MS);
	cr_assert_eq(ingest_checkpoint_restore(g, path, &lsn), 0);
	cr_assert_eq(lsn, 0);
	struct ingest_checkpoint_stats st;
	ingest_checkpoint_stats(g, &st);
	cr_assert(st.damaged);
	cr_assert_eq(access(path, F_OK), -1);
	char aside[200];
	snprintf(aside, sizeof(aside), "%s.damaged", path);
	cr_assert_eq(access(aside, F_OK), 0);
	ingest_free(g);
}

/* ------------------------------------------------ saving beside ingest */

enum { SUBMITTERS = 2, PER_THREAD = 200000 };

struct submitter {
	struct it_env *e;
	int id;
	int64_t now;
	atomic_bool *stop;
	uint64_t *lsn; /* LSN of message i, 0 if not stored */
	int n, errors;
	uint64_t worst_ns;
};

static void *submitter_main(void *arg)
{
	struct submitter *s = arg;
	char prefix[16];
	snprintf(prefix, sizeof(prefix), "t%d", s->id);
	while (!atomic_load(s->stop) && s->n < PER_THREAD) {
		char *body = ids_batch(prefix, s->n, 1);
		struct collect_batch b;
		it_prep(&b, body, 1, s->now);
		struct ingest_result res;
		uint64_t t0 = td_mono_ns();
		ingest_submit(s->e->g, &b, s->now, &res);
		uint64_t ns = td_mono_ns() - t0;
		s->worst_ns = ns > s->worst_ns ? ns : s->worst_ns;
		if (res.error || res.accepted != 1 || wal_wait(s->e->w, res.wait_lsn))
			s->errors++;
		else
			s->lsn[s->n] = res.wait_lsn;
		s->n++;
		collect_batch_release(&b);
		free(body);
	}
	return NULL;
}

Test(checkpoint, saving_beside_ingest_blocks_it_briefly, .timeout = 120)
{
	int64_t now = td_now_ms();
	struct it_env e;
	struct ingest_result res;
	it_env_open(&e, WEEK_MS, 0);
	for (int k = 0; k < 300; k++) /* 300k keys: shards of 8k-16k slots */
		submit_ids(&e, "pre", k * 1000, 1000, now, &res);

	atomic_bool stop = false;
	struct submitter s[SUBMITTERS];
	pthread_t th[SUBMITTERS];
	for (int i = 0; i < SUBMITTERS; i++) {
		s[i] = (struct submitter){.e = &e, .id = i, .now = now, .stop = &stop};
		s[i].lsn = calloc(PER_THREAD, sizeof(uint64_t));
		cr_assert_eq(pthread_create(&th[i], NULL, submitter_main, &s[i]), 0);
	}
	uint64_t lsn = 0;
	double worst_lock = 0, worst_save = 0;
	for (int k = 0; k < 5; k++) {
		usleep(50000);
		save(&e, now, &lsn);
		struct ingest_checkpoint_stats st;
		ingest_checkpoint_stats(e.g, &st);
		worst_lock = st.lock_seconds > worst_lock ? st.lock_seconds : worst_lock;
		worst_save = st.seconds > worst_save ? st.seconds : worst_save;
		cr_assert_geq(st.entries, 300000);
	}
	atomic_store(&stop, true);
	uint64_t worst_submit = 0;
	for (int i = 0; i < SUBMITTERS; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(s[i].errors, 0);
		worst_submit = s[i].worst_ns > worst_submit ? s[i].worst_ns : worst_submit;
	}
	fprintf(stderr,
		"checkpoint beside ingest: save %.1f ms, ingest lock held at most %.3f ms, "
		"slowest ingest_submit %.3f ms, %d + %d submits meanwhile\n",
		worst_save * 1e3, worst_lock * 1e3, (double)worst_submit / 1e6, s[0].n, s[1].n);
	cr_assert_lt(worst_lock, 0.05, "a save held the ingest lock %.3f s", worst_lock);
	it_env_close(&e);

	/* the last checkpoint alone knows every message stored up to its LSN */
	remove_wal_dir();
	uint64_t ckpt_lsn;
	it_env_open_ckpt(&e, WEEK_MS, 0, &ckpt_lsn);
	cr_assert_eq(ckpt_lsn, lsn);
	size_t covered = 0;
	for (int i = 0; i < SUBMITTERS; i++) {
		char prefix[16];
		snprintf(prefix, sizeof(prefix), "t%d", i);
		for (int k = 0; k < s[i].n; k++) {
			if (!s[i].lsn[k] || s[i].lsn[k] > lsn)
				continue;
			char *body = ids_batch(prefix, k, 1);
			it_submit(&e, body, 1, now, &res);
			cr_assert_eq(res.duplicates, 1, "%s-%d (LSN %llu) missing", prefix, k,
				     (unsigned long long)s[i].lsn[k]);
			free(body);
			covered++;
		}
		free(s[i].lsn);
	}
	cr_assert_gt(covered, 0, "no message was submitted during the saves");
	it_env_close(&e);
}

/* ----------------------------------------------------------- the policy */

static size_t wal_files(void)
{
	char wd[128];
	snprintf(wd, sizeof(wd), "%s/wal", it_dir);
	struct wal_reader *r;
	cr_assert_eq(wal_reader_open(&r, wd), 0);
	wal_reader_free(r);
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "exit $(ls %s/wal | grep -c '\\.wal$')", it_dir);
	int st = system(cmd);
	return (size_t)WEXITSTATUS(st);
}

static void gc(struct it_env *e, uint64_t consumers, int64_t now, bool force,
	       struct ingest_gc_result *res)
{
	char path[128];
	it_ckpt_path(path, sizeof(path));
	struct ingest_gc_policy p = {.checkpoint_interval_ms = 60000, .force = force};
	int rc = ingest_wal_gc(e->g, e->w, path, consumers, now, &p, res);
	cr_assert_eq(rc, 0, "gc: %s", td_strerror(rc));
}

/* Closes and reopens, restoring the checkpoint: the file written so far is
 * closed and a new one begins. */
static void restart(struct it_env *e)
{
	uint64_t lsn;
	it_env_close(e);
	it_env_open_ckpt(e, WEEK_MS, 0, &lsn);
}

Test(checkpoint, policy_saves_only_to_let_files_go)
{
	int64_t t = td_now_ms();
	struct it_env e;
	struct ingest_result res;
	struct ingest_gc_result r;
	it_env_open(&e, WEEK_MS, 0);
	submit_ids(&e, "a", 0, 100, t, &res);
	gc(&e, UINT64_MAX, t, true, &r);
	cr_assert(!r.checkpoint_saved, "no closed file: nothing to save for");
	cr_assert_eq(r.files_removed, 0);

	restart(&e); /* file 1 (a-*) closed */
	cr_assert_eq(wal_files(), 2);
	gc(&e, 0, t, false, &r);
	cr_assert(!r.checkpoint_saved && r.files_removed == 0, "the consumers cover nothing");
	gc(&e, 99, t, false, &r);
	cr_assert(!r.checkpoint_saved && r.files_removed == 0, "file 1 is not wholly covered");
	gc(&e, UINT64_MAX, t, false, &r);
	cr_assert(r.checkpoint_saved, "the first checkpoint is due at once");
	cr_assert_eq(r.checkpoint_lsn, 100);
	cr_assert_eq(r.files_removed, 1);
	cr_assert_gt(r.bytes_removed, 0);
	cr_assert_eq(wal_files(), 1);

	submit_ids(&e, "b", 0, 100, t, &res);
	restart(&e); /* file 2 (b-*) closed; the loaded checkpoint was saved at t */
	gc(&e, UINT64_MAX, t + 1000, false, &r);
	cr_assert(!r.checkpoint_saved, "within the interval");
	cr_assert_eq(r.files_removed, 0, "the checkpoint does not cover file 2 yet");
	gc(&e, UINT64_MAX, t + 61000, false, &r);
	cr_assert(r.checkpoint_saved);
	cr_assert_eq(r.checkpoint_lsn, 200);
	cr_assert_eq(r.files_removed, 1);

	submit_ids(&e, "c", 0, 100, t, &res);
	restart(&e);
	gc(&e, UINT64_MAX, t + 62000, true, &r);
	cr_assert(r.checkpoint_saved, "forced");
	cr_assert_eq(r.files_removed, 1);
	gc(&e, UINT64_MAX, t + 63000, true, &r);
	cr_assert(!r.checkpoint_saved, "nothing left to remove: no save, even forced");

	/* only the files of this run are left; every message is still known */
	restart(&e);
	cr_assert_eq(wal_files(), 2);
	expect_duplicates(&e, "a", 100, t);
	expect_duplicates(&e, "b", 100, t);
	expect_duplicates(&e, "c", 100, t);
	it_env_close(&e);
}
