/*
 * compact.c - background merging of small segment files.
 *
 * Policy: segments under COMPACT_SMALL rows are merged, smallest first, into
 * one of at most COMPACT_TARGET rows once there are COMPACT_MIN of them, so a
 * steady stream of flushes settles into few large files. Segments hold rows
 * of any time, so any set may merge. The merged file is written and the
 * manifest replaced before the inputs are unlinked; a crash in between leaves
 * either the inputs or the output listed, never both, and stray files are
 * removed at the next open.
 */
#include "store/store_int.h"
#include "base/log.h"
#include "base/td.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COMPACT_TARGET 2000000
#define COMPACT_SMALL  (COMPACT_TARGET / 4)
#define COMPACT_MIN    4

static int cmp_rows(const void *a, const void *b)
{
	const struct seg *x = *(struct seg *const *)a, *y = *(struct seg *const *)b;
	return x->rows < y->rows ? -1 : x->rows > y->rows;
}

/* One merge if the policy asks for it: 1 done, 0 nothing to do, < 0 error. */
static int merge_once(struct store *s)
{
	pthread_mutex_lock(&s->wlock);
	struct seg **pick = td_malloc((s->ndisk + 1) * sizeof(*pick));
	size_t n = 0;
	for (size_t i = 0; i < s->ndisk; i++)
		if (s->disk[i]->rows < COMPACT_SMALL)
			pick[n++] = s->disk[i];
	qsort(pick, n, sizeof(*pick), cmp_rows);
	uint64_t rows = 0;
	size_t take = 0;
	while (take < n && rows + pick[take]->rows <= COMPACT_TARGET)
		rows += pick[take++]->rows;
	pthread_mutex_unlock(&s->wlock);
	if (take < COMPACT_MIN) {
		free(pick);
		return 0;
	}
	/* the inputs stay listed (only this thread removes disk segments) */
	struct seg_builder *b = seg_builder_new();
	unsigned char *img = NULL;
	size_t len = 0;
	int rc = seg_merge_into(b, pick, take);
	if (!rc)
		rc = seg_builder_finish(b, SEG_ZSTD_LEVEL, &img, &len);
	seg_builder_free(b);
	struct seg *out = NULL;
	pthread_mutex_lock(&s->wlock);
	uint64_t id = s->next_id++;
	if (!rc)
		rc = store_write_segment(s, img, len, id, &out);
	free(img);
	if (!rc)
		rc = store_commit_manifest(s, out, pick, take, store_flushed_lsn(s));
	if (rc) {
		pthread_mutex_unlock(&s->wlock);
		if (out)
			seg_unref(out);
		td_log_error("store: merge failed: %s (retried later)", td_strerror(rc));
		free(pick);
		return rc;
	}
	pthread_mutex_lock(&s->lock);
	size_t k = 0;
	for (size_t i = 0; i < s->ndisk; i++) {
		bool dropped = false;
		for (size_t j = 0; j < take && !dropped; j++)
			dropped = pick[j] == s->disk[i];
		if (!dropped)
			s->disk[k++] = s->disk[i];
	}
	s->disk[k++] = out;
	s->ndisk = k;
	s->dirty = true;
	s->merges++;
	pthread_mutex_unlock(&s->lock);
	for (size_t j = 0; j < take; j++) {
		char path[4096];
		manifest_seg_path(s->dir, pick[j]->id, path, sizeof(path));
		unlink(path); /* snapshots still mapping it keep reading it */
		seg_unref(pick[j]);
	}
	td_fsync_dir(s->dir);
	pthread_mutex_unlock(&s->wlock);
	free(pick);
	return 1;
}

int compact_run(struct store *s)
{
	int done = 0, rc;
	while ((rc = merge_once(s)) > 0)
		done++;
	return rc < 0 ? rc : done;
}

static void *merger_main(void *arg)
{
	pthread_setname_np(pthread_self(), "td-merge");
	struct store *s = arg;
	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		struct timespec t;
		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_sec += 5;
		pthread_cond_timedwait(&s->cond, &s->lock, &t);
		if (s->stop)
			break;
		pthread_mutex_unlock(&s->lock);
		compact_run(s);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

void compact_start(struct store *s)
{
	if (pthread_create(&s->merger, NULL, merger_main, s) == 0)
		s->merger_running = true;
}

void compact_stop(struct store *s)
{
	if (!s->merger_running)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->merger, NULL);
	s->merger_running = false;
}

void compact_poke(struct store *s)
{
	pthread_mutex_lock(&s->lock);
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}
