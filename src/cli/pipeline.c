/*
 * pipeline.c - the write path every appending command opens the same way:
 * the store (DATA/events), the WAL replayed into the dedupe index and the
 * store, and the applier following the WAL from then on.
 */
#include "cli/cli.h"
#include "base/td.h"
#include "collect/collect.h"
#include "store/applier.h"
#include "store/store.h"
#include "wal/wal.h"

#include <stdio.h>
#include <string.h>

static int replay(void *ctx, const struct wal_record *rec)
{
	struct cli_pipeline *p = ctx;
	int rc = ingest_replay(p->ing, rec);
	if (!rc)
		rc = applier_replay(p->store, rec);
	return rc;
}

int cli_pipeline_open(struct cli_pipeline *p, const char *cmd, const char *data,
		      struct wal_options *wo, int64_t dedupe_window_ms)
{
	memset(p, 0, sizeof(*p));
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/events", data);
	struct store_options so = {.dir = dir};
	int err = store_open(&p->store, &so);
	if (err) {
		fprintf(stderr, "tandem %s: cannot open the event store in %s: %s%s\n", cmd, dir,
			td_strerror(err),
			err == TD_ECORRUPT ? " (run 'tandem check' for details)" : "");
		return 1;
	}
	p->ing = ingest_new(dedupe_window_ms);
	snprintf(p->waldir, sizeof(p->waldir), "%s/wal", data);
	wo->dir = p->waldir;
	err = wal_open(&p->wal, wo, replay, p);
	if (err) {
		fprintf(stderr, "tandem %s: cannot open the write-ahead log in %s: %s\n", cmd,
			p->waldir, td_strerror(err));
		cli_pipeline_close(p);
		return 1;
	}
	ingest_attach(p->ing, p->wal);
	if (applier_start(&p->applier, p->store)) {
		fprintf(stderr, "tandem %s: cannot start the store applier\n", cmd);
		cli_pipeline_close(p);
		return 1;
	}
	wal_set_commit_hook(p->wal, applier_feed, p->applier);
	return 0;
}

void cli_pipeline_close(struct cli_pipeline *p)
{
	/* the WAL's last commits still reach the applier, which then drains */
	wal_close(p->wal);
	applier_stop(p->applier);
	store_close(p->store);
	ingest_free(p->ing);
	memset(p, 0, sizeof(*p));
}
