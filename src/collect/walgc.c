/*
 * walgc.c - when WAL files may go: once every consumer covers them. The
 * dedupe index is one consumer and needs a week of history, so it is covered
 * by its checkpoint; the others (the event store) pass the LSN they have made
 * safe. A checkpoint rewrites the whole index, so it is saved only when it
 * lets files go, and at most once per interval.
 */
#include "collect/collect.h"
#include "base/td.h"
#include "wal/wal.h"

#include <string.h>

static bool checkpoint_due(const struct ingest_checkpoint_stats *ck,
			   const struct ingest_gc_policy *policy, int64_t now_ms)
{
	int64_t interval = policy && policy->checkpoint_interval_ms > 0
			       ? policy->checkpoint_interval_ms
			       : INGEST_CHECKPOINT_INTERVAL_MS;
	/* a clock set back must not stop checkpoints for as long */
	return (policy && policy->force) || ck->saved_ms == 0 || now_ms < ck->saved_ms ||
	       now_ms - ck->saved_ms >= interval;
}

int ingest_wal_gc(struct ingest *g, struct wal *w, const char *ckpt_path, uint64_t consumers_lsn,
		  int64_t now_ms, const struct ingest_gc_policy *policy,
		  struct ingest_gc_result *res)
{
	memset(res, 0, sizeof(*res));
	uint64_t target = TD_MIN(consumers_lsn, wal_durable_lsn(w));
	if (target == 0)
		return 0; /* nothing is covered: spare the directory listing */
	uint64_t want = 0, have = 0;
	int rc = wal_count_covered(w, target, &want, NULL);
	if (rc || want == 0)
		return rc;

	struct ingest_checkpoint_stats ck;
	ingest_checkpoint_stats(g, &ck);
	if (ck.lsn)
		rc = wal_count_covered(w, TD_MIN(target, ck.lsn), &have, NULL);
	int save_rc = 0;
	if (!rc && have < want && checkpoint_due(&ck, policy, now_ms)) {
		uint64_t lsn = wal_durable_lsn(w);
		save_rc = ingest_checkpoint_save(g, ckpt_path, lsn, now_ms);
		if (!save_rc) {
			ck.lsn = lsn;
			res->checkpoint_saved = true;
		}
	}
	res->checkpoint_lsn = ck.lsn;
	if (!rc && ck.lsn)
		rc = wal_remove_covered(w, TD_MIN(target, ck.lsn), &res->files_removed,
					&res->bytes_removed);
	return save_rc ? save_rc : rc;
}
