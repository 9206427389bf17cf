/*
 * pipeline.c - the write path every appending command opens the same way:
 * the store (DATA/events), the WAL replayed into the dedupe index and the
 * store, and the applier following the WAL from then on; and the read-only
 * store of the reading commands. Both open the store with the identity
 * configuration stored in DATA/meta.db, so every command resolves the
 * messages it replays from the WAL as the server does.
 */
#include "cli/cli.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "collect/collect.h"
#include "meta/meta.h"
#include "store/applier.h"
#include "store/store.h"
#include "wal/wal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static int replay(void *ctx, const struct wal_record *rec)
{
	struct cli_pipeline *p = ctx;
	int rc = ingest_replay(p->ing, rec);
	if (!rc)
		rc = applier_replay(p->store, rec);
	return rc;
}

/* The configuration through an open meta.db connection. */
static int identity_config_from(struct meta *m, struct meta_identity *out, const char *cmd)
{
	char err[600];
	if (meta_identity_get(m, out, err, sizeof(err))) {
		fprintf(stderr, "tandem %s: %s\n", cmd, err);
		return 1;
	}
	return 0;
}

int cli_identity_config(struct meta_identity *out, const char *cmd, const char *data)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/meta.db", data);
	identity_config_default(&out->cfg);
	out->stored = false;
	/* no meta.db: nothing configured (a reading command creates nothing) */
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return 0;
	struct meta *m;
	if (meta_open(&m, data)) {
		fprintf(stderr, "tandem %s: cannot open %s\n", cmd, path);
		return 1;
	}
	int rc = identity_config_from(m, out, cmd);
	meta_close(m);
	return rc;
}

int cli_pipeline_open(struct cli_pipeline *p, const char *cmd, const char *data, struct meta *meta,
		      struct wal_options *wo, int64_t dedupe_window_ms, int64_t session_gap_ms)
{
	memset(p, 0, sizeof(*p));
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/events", data);
	/* through the caller's connection: a second one, opened and closed in
	 * this process while the caller's stays open, left the caller's blind to
	 * what other processes write to meta.db afterwards (sources created or
	 * tokens revoked while the server runs) */
	struct meta_identity *idc = td_malloc(sizeof(*idc));
	if (meta ? identity_config_from(meta, idc, cmd) : cli_identity_config(idc, cmd, data)) {
		free(idc);
		return 1;
	}
	struct store_options so = {
	    .dir = dir, .identity = &idc->cfg, .session_gap_ms = session_gap_ms};
	int err = store_open(&p->store, &so);
	free(idc); /* the store copied what it keeps */
	if (err) {
		fprintf(stderr, "tandem %s: cannot open the event store in %s: %s%s\n", cmd, dir,
			td_strerror(err),
			err == TD_ECORRUPT ? " (run 'tandem check' for details)" : "");
		return 1;
	}
	p->ing = ingest_new(dedupe_window_ms);
	snprintf(p->ckpt_path, sizeof(p->ckpt_path), "%s/%s", data, INGEST_CHECKPOINT_FILE);
	uint64_t ckpt_lsn;
	err = ingest_checkpoint_restore(p->ing, p->ckpt_path, &ckpt_lsn);
	if (err) {
		fprintf(stderr, "tandem %s: cannot read %s: %s\n", cmd, p->ckpt_path,
			td_strerror(err));
		cli_pipeline_close(p, false);
		return 1;
	}
	snprintf(p->waldir, sizeof(p->waldir), "%s/wal", data);
	wo->dir = p->waldir;
	/* replay from the lowest LSN a consumer still needs: the dedupe index what
	 * its checkpoint does not cover, the store what it has not flushed */
	wo->replay_from_lsn = TD_MIN(ckpt_lsn, store_flushed_lsn(p->store)) + 1;
	err = wal_open(&p->wal, wo, replay, p);
	if (err) {
		fprintf(stderr, "tandem %s: cannot open the write-ahead log in %s: %s\n", cmd,
			p->waldir, td_strerror(err));
		cli_pipeline_close(p, false);
		return 1;
	}
	ingest_attach(p->ing, p->wal);
	/* what the replay applied is queryable before the first request */
	err = store_seal(p->store);
	if (err)
		fprintf(stderr,
			"tandem %s: cannot seal the replayed events: %s (they become "
			"queryable at the next seal)\n",
			cmd, td_strerror(err));
	if (applier_start(&p->applier, p->store)) {
		fprintf(stderr, "tandem %s: cannot start the store applier\n", cmd);
		cli_pipeline_close(p, false);
		return 1;
	}
	wal_set_commit_hook(p->wal, applier_feed, applier_full, p->applier);
	return 0;
}

void cli_pipeline_gc(struct cli_pipeline *p, bool remove, int64_t checkpoint_interval_ms)
{
	/* a record is safe outside the WAL once it is durable, in a segment
	 * file (the store's flushed LSN) and, for dedupe, in a checkpoint
	 * (ingest_wal_gc saves one when files could go) */
	uint64_t covered = TD_MIN(wal_durable_lsn(p->wal), store_flushed_lsn(p->store));
	struct ingest_gc_policy policy = {.checkpoint_interval_ms = checkpoint_interval_ms};
	struct ingest_gc_result res;
	ingest_wal_gc(p->ing, p->wal, p->ckpt_path, remove ? covered : 0, td_now_ms(), &policy,
		      &res);
}

void cli_pipeline_close(struct cli_pipeline *p, bool remove)
{
	if (p->wal && p->applier) {
		/* every append is durable, so the commit hook has handed every
		 * record to the applier; the applier drains, then this thread is
		 * the store's only writer and flushes it, and the WAL files it now
		 * covers (with a fresh dedupe checkpoint) can go */
		struct wal_stats ws;
		wal_get_stats(p->wal, &ws);
		if (ws.next_lsn > 1)
			wal_wait(p->wal, ws.next_lsn - 1);
		wal_set_commit_hook(p->wal, NULL, NULL, NULL);
		applier_stop(p->applier);
		p->applier = NULL;
		int rc = store_tick(p->store, true);
		struct ingest_gc_policy policy = {.force = true};
		struct ingest_gc_result res;
		uint64_t covered = TD_MIN(wal_durable_lsn(p->wal), store_flushed_lsn(p->store));
		if (!rc)
			ingest_wal_gc(p->ing, p->wal, p->ckpt_path, remove ? covered : 0,
				      td_now_ms(), &policy, &res);
	}
	/* so the next start need not replay for dedupe what is stored now */
	if (p->wal && p->ing)
		ingest_checkpoint_save(p->ing, p->ckpt_path, wal_durable_lsn(p->wal), td_now_ms());
	wal_close(p->wal);
	applier_stop(p->applier);
	store_close(p->store);
	ingest_free(p->ing);
	memset(p, 0, sizeof(*p));
}

bool cli_writer_running(const char *data)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/LOCK", data);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool held = flock(fd, LOCK_SH | LOCK_NB) != 0;
	close(fd);
	return held;
}

/* The name of the newest WAL file ("0000002a.wal"), "" if none. */
static void newest_wal(const char *waldir, char *out, size_t cap)
{
	out[0] = '\0';
	DIR *d = opendir(waldir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l == 12 && l < cap && !strcmp(e->d_name + 8, ".wal") &&
		    strcmp(e->d_name, out) > 0)
			memcpy(out, e->d_name, l + 1);
	}
	closedir(d);
}

/* Prints the reader's damage report, leaving out the tail of the newest file
 * while a writer runs: that is a record being written, not damage. */
static void report_damage(const struct wal_reader *r, const char *data, const char *waldir,
			  const char *cmd)
{
	const char *d = wal_reader_damage(r);
	if (!d)
		return;
	const char *last = d, *p;
	for (p = d; (p = strchr(p, '\n')) && p[1]; p++)
		last = p + 1;
	char newest[64];
	newest_wal(waldir, newest, sizeof(newest));
	bool in_flight =
	    *newest && !strncmp(last, newest, strlen(newest)) && cli_writer_running(data);
	size_t n = in_flight ? (size_t)(last - d) : strlen(d);
	if (n)
		fprintf(stderr, "tandem %s: damage in the WAL (records before it are used):\n%.*s",
			cmd, (int)n, d);
}

/* Applies the WAL records past what the store has to a read-only store.
 * TD_EBUSY when records it needs were removed meanwhile (a flush and a WAL
 * removal by the server between reading the manifest and the WAL). */
static int catch_up(struct store *s, const char *data, const char *waldir, const char *cmd)
{
	uint64_t from = store_flushed_lsn(s) + 1;
	struct wal_reader *r;
	int rc = wal_reader_open_from(&r, waldir, from);
	if (rc == TD_ENOTFOUND)
		return 0;
	if (rc) {
		fprintf(stderr, "tandem %s: cannot read %s: %s\n", cmd, waldir, td_strerror(rc));
		return rc;
	}
	struct wal_record rec;
	while ((rc = wal_reader_next(r, &rec)) == 1)
		if (rec.type == WAL_REC_EVENT)
			store_apply(s, rec.lsn, rec.payload, rec.len);
	if (rc < 0)
		fprintf(stderr, "tandem %s: read error in the WAL: %s\n", cmd, td_strerror(rc));
	else if (wal_reader_first_lsn(r) > from)
		rc = TD_EBUSY;
	else
		report_damage(r, data, waldir, cmd);
	wal_reader_free(r);
	return rc < 0 ? rc : store_tick(s, true);
}

int cli_store_open_read(struct store **out, const char *cmd, const char *data)
{
	char dir[4096], waldir[4096];
	snprintf(dir, sizeof(dir), "%s/events", data);
	snprintf(waldir, sizeof(waldir), "%s/wal", data);
	struct stat sb;
	if (stat(data, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "tandem %s: no data directory %s\n", cmd, data);
		return 1;
	}
	struct meta_identity *idc = td_malloc(sizeof(*idc));
	if (cli_identity_config(idc, cmd, data)) {
		free(idc);
		return 1;
	}
	int ret = 1;
	for (int attempt = 0;; attempt++) {
		struct store_options so = {.dir = dir, .read_only = true, .identity = &idc->cfg};
		int rc = store_open(out, &so);
		if (rc) {
			fprintf(stderr, "tandem %s: cannot open the event store in %s: %s%s\n", cmd,
				dir, td_strerror(rc),
				rc == TD_ECORRUPT ? " (run 'tandem check' for details)" : "");
			break;
		}
		rc = catch_up(*out, data, waldir, cmd);
		if (!rc) {
			ret = 0;
			break;
		}
		store_close(*out);
		*out = NULL;
		if (rc != TD_EBUSY)
			break;
		if (attempt == 4) {
			fprintf(stderr,
				"tandem %s: the server keeps moving WAL records into the "
				"store while this reads; try again\n",
				cmd);
			break;
		}
	}
	free(idc);
	return ret;
}
