/*
 * flush.c - writing sealed in-memory segments to a segment file, on a
 * background thread (the flusher) so that the applier keeps applying while a
 * segment is compressed and fsync'd.
 *
 * A flush is a job in two halves:
 *   prepare (applier thread): seal, take every sealed segment of mem (refs),
 *     hand the memtable that holds exactly their rows to the job (a fresh one
 *     takes its place), write the identity log's new records to its file;
 *   run (flusher thread, or inline for a forced flush): encode the memtable
 *     (or merge the images), fdatasync the identity log, write the segment
 *     file, replace the manifest, swap the in-memory segments for the file,
 *     publish the flushed LSN, write CANONICAL.
 * One job at a time. While it runs the applier seals new segments after the
 * job's (sealing only appends to mem); a job that fails leaves its segments
 * in mem, and the next job, a second later, merges them with the rest. When
 * sealed rows pile up past FLUSH_HOLD times flush_rows behind a slow flush,
 * the applier waits for it: memory stays bounded and the WAL's backlog limit
 * pushes back on clients instead.
 */
#include "store/store_int.h"
#include "base/log.h"
#include "base/td.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FLUSH_HOLD 4

struct flush_job {
	struct seg **in; /* mem[0..n), referenced */
	size_t n;
	struct seg_builder *b;	    /* holds exactly in's rows; NULL: merge in */
	struct identity_view *view; /* canonical persons as of in[n - 1] */
	uint64_t flushed;	    /* in[n - 1]->max_lsn */
	uint32_t persons;	    /* in[n - 1]->npids_after */
	int sess_fd;		    /* the session log, to fdatasync; -1 */
};

static void job_free(struct flush_job *j)
{
	for (size_t i = 0; i < j->n; i++)
		seg_unref(j->in[i]);
	free(j->in);
	seg_builder_free(j->b);
	identity_view_release(j->view);
	if (j->sess_fd >= 0)
		close(j->sess_fd);
	free(j);
}

/* Applier thread, after a successful seal: nothing of the memtable is unsealed. */
static int job_prepare(struct store *s, struct flush_job **out)
{
	*out = NULL;
	/* the graph's records up to the flushed LSN must be on disk before a
	 * manifest says the WAL before it is covered: written here, synced by run */
	int rc = identity_write(s->ident);
	if (rc)
		return rc;
	struct flush_job *j = td_calloc(1, sizeof(*j));
	j->sess_fd = -1;
	pthread_mutex_lock(&s->lock);
	j->n = s->nmem;
	j->in = td_malloc((j->n ? j->n : 1) * sizeof(*j->in));
	for (size_t i = 0; i < j->n; i++) {
		j->in[i] = s->mem[i];
		seg_ref(j->in[i]);
	}
	j->view = s->view; /* the last seal's: it made in[n - 1] */
	identity_view_ref(j->view);
	pthread_mutex_unlock(&s->lock);
	if (j->n == 0) {
		job_free(j);
		return 0;
	}
	j->flushed = j->in[j->n - 1]->max_lsn;
	j->persons = j->in[j->n - 1]->npids_after;
	/* the session state is exactly as of the sealed rows (everything
	 * applied is sealed): its log gets a mark for j->flushed */
	if (s->sess) {
		rc = sessions_write(s->sess, j->flushed, store_flushed_lsn(s), &j->sess_fd);
		if (rc) {
			job_free(j);
			return rc;
		}
	}
	/* every row of the memtable is in an image of mem: either it holds
	 * exactly the job's rows and is encoded once, or the images are merged */
	if (s->mem_in_memtable == j->n)
		j->b = s->memtable;
	else
		seg_builder_free(s->memtable);
	/* the last job's memtable, emptied: its memory is mapped already, so
	 * filling it costs no page faults (about a fifth of applying, measured) */
	pthread_mutex_lock(&s->lock);
	s->memtable = s->spare ? s->spare : seg_builder_new();
	s->spare = NULL;
	pthread_mutex_unlock(&s->lock);
	if (s->sess)
		sessions_watch(s->sess, s->memtable);
	s->mem_in_memtable = 0;
	*out = j;
	return 0;
}

/* Flusher thread (or the applier, for a forced flush). Consumes j. */
static int job_run(struct store *s, struct flush_job *j)
{
	int64_t t0 = store_now_ms();
	unsigned char *img = NULL;
	size_t len = 0;
	int rc;
	if (j->b) {
		rc = seg_builder_finish(j->b, SEG_ZSTD_LEVEL, &img, &len);
	} else {
		struct seg_builder *b = seg_builder_new();
		rc = seg_merge_into(b, j->in, j->n);
		if (!rc)
			rc = seg_builder_finish(b, SEG_ZSTD_LEVEL, &img, &len);
		seg_builder_free(b);
	}
	if (!rc)
		rc = identity_fsync(s->ident);
	if (!rc && j->sess_fd >= 0 && fdatasync(j->sess_fd))
		rc = td_from_errno(errno);
	if (rc)
		goto out;
	pthread_mutex_lock(&s->wlock);
	uint64_t id = s->next_id++;
	struct seg *g = NULL;
	rc = store_write_segment(s, img, len, id, &g);
	uint32_t persons_before = s->flushed_persons;
	s->flushed_persons = j->persons;
	if (!rc)
		rc = store_commit_manifest(s, g, NULL, 0, j->flushed);
	if (rc) {
		s->flushed_persons = persons_before;
		if (g) {
			char path[4096];
			manifest_seg_path(s->dir, id, path, sizeof(path));
			unlink(path);
			seg_unref(g);
		}
		pthread_mutex_unlock(&s->wlock);
		goto out;
	}
	pthread_mutex_lock(&s->lock);
	s->disk = td_realloc(s->disk, (s->ndisk + 1) * sizeof(*s->disk));
	s->disk[s->ndisk++] = g;
	/* the job's are the first n of mem (sealing only appends) */
	for (size_t i = 0; i < j->n; i++) {
		s->mem_rows -= s->mem[i]->rows;
		seg_unref(s->mem[i]);
	}
	memmove(s->mem, s->mem + j->n, (s->nmem - j->n) * sizeof(*s->mem));
	s->nmem -= j->n;
	s->mem_since_ms = store_now_ms();
	s->dirty = true;
	s->flushes++;
	s->flush_ms_total += (uint64_t)(store_now_ms() - t0);
	pthread_mutex_unlock(&s->lock);
	__atomic_store_n(&s->flushed_lsn, j->flushed, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&s->wlock);
	/* a damaged or missing checkpoint only costs readers the log replay */
	if (canon_write(s->dir, j->view, j->flushed))
		td_log_error("store: cannot write %s/CANONICAL (readers replay the identity log)",
			     s->dir);
	compact_poke(s);
out:
	free(img);
	if (j->b)
		seg_builder_reset(j->b);
	pthread_mutex_lock(&s->lock);
	if (j->b && !s->spare) {
		s->spare = j->b;
		j->b = NULL;
	}
	if (rc) {
		s->flush_errors++;
		s->flush_retry_ms = store_now_ms() + 1000; /* once a second, not every tick */
	} else {
		s->flush_retry_ms = 0;
	}
	pthread_mutex_unlock(&s->lock);
	if (rc)
		td_log_error("store: flush failed: %s (kept in memory, retried)", td_strerror(rc));
	job_free(j);
	return rc;
}

static void *flusher_main(void *arg)
{
	pthread_setname_np(pthread_self(), "td-flush");
	struct store *s = arg;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->job && !s->fstop)
			pthread_cond_wait(&s->fcond, &s->lock);
		struct flush_job *j = s->job;
		if (!j)
			break;
		s->job = NULL;
		pthread_mutex_unlock(&s->lock);
		job_run(s, j);
		pthread_mutex_lock(&s->lock);
		s->flushing = false;
		pthread_cond_broadcast(&s->fcond);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

void flush_start(struct store *s)
{
	pthread_cond_init(&s->fcond, NULL);
	s->flusher_running = pthread_create(&s->flusher, NULL, flusher_main, s) == 0;
	if (!s->flusher_running)
		td_log_warn("store: no flusher thread; segment files are written inline");
}

void flush_stop(struct store *s)
{
	if (!s->flusher_running)
		return;
	pthread_mutex_lock(&s->lock);
	s->fstop = true;
	pthread_cond_broadcast(&s->fcond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->flusher, NULL);
	s->flusher_running = false;
	seg_builder_free(s->spare);
	s->spare = NULL;
	pthread_cond_destroy(&s->fcond);
}

/* Waits (holding s->lock) until no job is in flight. */
static void wait_idle(struct store *s)
{
	while (s->flushing)
		pthread_cond_wait(&s->fcond, &s->lock);
}

int flush_tick(struct store *s, int64_t now, bool force)
{
	pthread_mutex_lock(&s->lock);
	if (force || (s->flushing && s->mem_rows >= FLUSH_HOLD * (uint64_t)s->o.flush_rows))
		wait_idle(s);
	bool due = !s->flushing && s->nmem > 0 &&
		   (force || s->mem_rows >= s->o.flush_rows ||
		    now - s->mem_since_ms >= (int64_t)s->o.flush_interval_ms);
	if (!force && now < s->flush_retry_ms)
		due = false;
	pthread_mutex_unlock(&s->lock);
	if (!due)
		return 0;
	int rc = store_seal(s); /* so the memtable's rows are all in the images */
	struct flush_job *j = NULL;
	if (!rc)
		rc = job_prepare(s, &j);
	if (rc) {
		pthread_mutex_lock(&s->lock);
		s->flush_errors++;
		s->flush_retry_ms = now + 1000;
		pthread_mutex_unlock(&s->lock);
		td_log_error("store: flush failed: %s (kept in memory, retried)", td_strerror(rc));
	}
	if (rc || !j)
		return rc;
	if (force || !s->flusher_running)
		return job_run(s, j);
	pthread_mutex_lock(&s->lock);
	s->job = j;
	s->flushing = true;
	pthread_cond_broadcast(&s->fcond);
	pthread_mutex_unlock(&s->lock);
	return 0;
}
