/*
 * wal.c - appending and group commit.
 *
 * Locking: wal.mu protects every field below it in struct wal. Appenders hold
 * it only to frame a record into `pending`; the writer holds it only to swap
 * buffers and to publish results, never across write() or fdatasync().
 */
#include "wal/wal_int.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/td.h"
#include "base/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const double wal_fsync_buckets[WAL_FSYNC_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
						     0.01,   0.025,   0.05,   0.1,   0.25,   1.0};
const double wal_group_buckets[WAL_GROUP_BUCKETS] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};

struct waiter {
	uint64_t lsn;
	wal_done_fn fn;
	void *arg;
};

struct wal {
	char *dir;
	size_t segment_bytes, max_pending;
	enum wal_durability durability;
	unsigned async_interval_ms;
	wal_rollback_fn rollback;
	void *rollback_ctx;
	wal_commit_fn commit;
	bool (*commit_full)(void *ctx);
	void *commit_ctx;
	pthread_t writer;

	pthread_mutex_t mu;
	pthread_cond_t work; /* signalled when pending gains data or on stop */
	pthread_cond_t done; /* broadcast when durable_lsn or failure changes */
	struct td_buf pending;
	uint64_t pending_records;
	uint64_t next_lsn;    /* LSN the next append gets */
	uint64_t durable_lsn; /* every record <= this is on disk */
	uint64_t fail_gen;    /* bumped on each failed write */
	int failed;	      /* TD_E* while appends are refused */
	int64_t failed_until; /* ms: appends refused until then */
	int last_error;
	bool healthy; /* false from a failed write until the next good one */
	bool stop;
	struct waiter *waiters;
	size_t nwaiters, capwaiters;
	uint64_t commits, records_written, bytes_written, damaged_files;
	struct wal_histograms hist;
	uint32_t cur_seq; /* the file being written: never removed */
	uint64_t files_removed, bytes_removed;

	/* writer thread only */
	int fd;
	uint32_t seq;
	uint64_t file_size;
	uint64_t files, disk_bytes;
};

static int write_all(int fd, const void *data, size_t n)
{
	const char *p = data;
	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return td_from_errno(errno);
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Creates file `seq` with its header, durably (file and directory fsync'd). */
static int start_file(struct wal *w, uint32_t seq, uint64_t first_lsn)
{
	char path[4096];
	unsigned char hdr[WAL_FILE_HEADER];
	wal_file_path(path, sizeof(path), w->dir, seq);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return td_from_errno(errno);
	wal_make_file_header(hdr, first_lsn);
	int rc = write_all(fd, hdr, sizeof(hdr));
	if (!rc && fdatasync(fd))
		rc = td_from_errno(errno);
	if (!rc)
		rc = td_fsync_dir(w->dir);
	if (rc) {
		close(fd);
		unlink(path);
		return rc;
	}
	if (w->fd >= 0)
		close(w->fd);
	w->fd = fd;
	w->seq = seq;
	w->file_size = WAL_FILE_HEADER;
	w->files++;
	w->disk_bytes += WAL_FILE_HEADER;
	pthread_mutex_lock(&w->mu);
	w->cur_seq = seq;
	pthread_mutex_unlock(&w->mu);
	return 0;
}

static void observe(struct wal *w, double secs, uint64_t records)
{
	size_t i = 0;
	while (i < WAL_FSYNC_BUCKETS && secs > wal_fsync_buckets[i])
		i++;
	w->hist.fsync[i]++;
	w->hist.fsync_sum += secs;
	i = 0;
	while (i < WAL_GROUP_BUCKETS && (double)records > wal_group_buckets[i])
		i++;
	w->hist.group[i]++;
	w->hist.group_sum += (double)records;
	w->hist.count++;
}

/* Takes the waiters whose LSN is covered (status 0) or all of them (failure). */
static size_t take_waiters(struct wal *w, struct waiter **out, bool all)
{
	size_t n = 0, keep = 0;
	struct waiter *fire = NULL;
	for (size_t i = 0; i < w->nwaiters; i++) {
		if (all || w->waiters[i].lsn <= w->durable_lsn) {
			if (!fire)
				fire = td_malloc(w->nwaiters * sizeof(*fire));
			fire[n++] = w->waiters[i];
		} else {
			w->waiters[keep++] = w->waiters[i];
		}
	}
	w->nwaiters = keep;
	*out = fire;
	return n;
}

static int write_batch(struct wal *w, struct td_buf *batch, uint64_t first_lsn)
{
	int rc = 0;
	if (w->file_size > WAL_FILE_HEADER && w->file_size + batch->len > w->segment_bytes) {
		if (w->seq == UINT32_MAX)
			return TD_ETOOLARGE; /* file numbers exhausted: keep appending is wrong */
		if (fdatasync(w->fd))
			return td_from_errno(errno);
		rc = start_file(w, w->seq + 1, first_lsn);
		if (rc)
			return rc;
	}
	rc = write_all(w->fd, batch->data, batch->len);
	if (!rc && w->durability == WAL_SYNC && fdatasync(w->fd))
		rc = td_from_errno(errno);
	if (rc) {
		/* Cut off whatever part of the batch reached the file, so the next
		 * successful write follows the last good record. */
		if (ftruncate(w->fd, (off_t)w->file_size) == 0)
			lseek(w->fd, (off_t)w->file_size, SEEK_SET);
		else
			td_log_error("wal: could not truncate %08x.wal after failed write: %s",
				     w->seq, strerror(errno));
		return rc;
	}
	w->file_size += batch->len;
	w->disk_bytes += batch->len;
	w->bytes_written += batch->len;
	return 0;
}

static void *writer_main(void *arg)
{
	pthread_setname_np(pthread_self(), "td-wal");
	struct wal *w = arg;
	struct td_buf batch;
	td_buf_init(&batch, SIZE_MAX / 2);

	pthread_mutex_lock(&w->mu);
	for (;;) {
		if (w->pending.len == 0) {
			if (w->stop)
				break;
			pthread_cond_wait(&w->work, &w->mu);
			continue;
		}
		if (w->durability == WAL_ASYNC && !w->stop) {
			/* let appends accumulate for one interval */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			uint64_t ns =
			    (uint64_t)ts.tv_nsec + (uint64_t)w->async_interval_ms * 1000000u;
			ts.tv_sec += (time_t)(ns / 1000000000u);
			ts.tv_nsec = (long)(ns % 1000000000u);
			while (!w->stop && w->pending.len < w->max_pending / 2 &&
			       pthread_cond_timedwait(&w->work, &w->mu, &ts) == 0)
				;
		}
		struct td_buf tmp = w->pending;
		w->pending = batch;
		batch = tmp;
		td_buf_reset(&w->pending);
		uint64_t records = w->pending_records;
		w->pending_records = 0;
		uint64_t last = w->next_lsn - 1;
		uint64_t first = last - records + 1;
		pthread_mutex_unlock(&w->mu);

		uint64_t t0 = td_mono_ns();
		int rc = write_batch(w, &batch, first);
		if (!rc && w->durability == WAL_ASYNC && fdatasync(w->fd))
			rc = td_from_errno(errno);
		double secs = (double)(td_mono_ns() - t0) / 1e9;
		if (!rc && w->commit)
			w->commit(w->commit_ctx, batch.data, batch.len);
		td_buf_reset(&batch);

		struct waiter *fire = NULL;
		size_t nfire;
		pthread_mutex_lock(&w->mu);
		if (!rc) {
			w->healthy = true;
			w->durable_lsn = last;
			w->commits++;
			w->records_written += records;
			observe(w, secs, records);
			nfire = take_waiters(w, &fire, false);
		} else {
			/* Everything not durable is lost: the batch just tried and
			 * whatever was appended meanwhile. Their LSNs are reused. */
			td_log_error("wal: write of %llu records failed: %s; refusing appends "
				     "for 1 s",
				     (unsigned long long)(records + w->pending_records),
				     td_strerror(rc));
			td_buf_reset(&w->pending);
			w->pending_records = 0;
			w->next_lsn = w->durable_lsn + 1;
			w->failed = rc;
			w->last_error = rc;
			w->healthy = false;
			w->failed_until = INT64_MAX;
			w->fail_gen++;
			nfire = take_waiters(w, &fire, true);
		}
		pthread_cond_broadcast(&w->done);
		pthread_mutex_unlock(&w->mu);

		if (rc && w->rollback)
			w->rollback(w->rollback_ctx, w->durable_lsn + 1);
		for (size_t i = 0; i < nfire; i++)
			fire[i].fn(fire[i].arg, rc);
		free(fire);

		pthread_mutex_lock(&w->mu);
		if (rc)
			w->failed_until = td_now_ms() + 1000;
	}
	pthread_mutex_unlock(&w->mu);
	td_buf_release(&batch);
	return NULL;
}

static int replay(struct wal *w, uint64_t from, wal_replay_fn fn, void *ctx)
{
	struct wal_reader *r;
	struct wal_record rec;
	int rc = wal_reader_open_from(&r, w->dir, from);
	if (rc)
		return rc;
	uint64_t n = 0;
	while ((rc = wal_reader_next(r, &rec)) == 1) {
		n++;
		if (fn && (rc = fn(ctx, &rec)) != 0)
			break;
	}
	/* LSNs go on after every LSN the log has held, even one whose files are
	 * gone (an empty newest file, removed files) */
	uint64_t end = wal_reader_end_lsn(r);
	if (rc == 0 && end >= (UINT64_C(1) << 62)) {
		/* no real log gets here (2^62 records); a record that does is crafted
		 * or damaged with a matching checksum, and continuing from it would
		 * make every later record unreadable */
		td_log_error("wal: LSN %llu is out of range: the log is damaged; move its files "
			     "aside",
			     (unsigned long long)end);
		rc = TD_ECORRUPT;
	}
	if (rc == 0 && from > end + 1) {
		/* consumers recorded LSNs the log no longer reaches (files moved
		 * away by hand): never hand those LSNs out again */
		td_log_warn("wal: the log ends at LSN %llu but its consumers have recorded up to "
			    "%llu; were files removed by hand? New records start at %llu",
			    (unsigned long long)end, (unsigned long long)(from - 1),
			    (unsigned long long)from);
		end = from - 1;
	}
	if (rc == 0) {
		w->next_lsn = end + 1;
		w->durable_lsn = w->next_lsn - 1;
		const char *damage = wal_reader_damage(r);
		w->damaged_files = wal_reader_damaged_files(r);
		if (damage)
			td_log_warn("wal: damage found while replaying (records before it are "
				    "kept; the damaged bytes are left in place):\n%s",
				    damage);
		td_log_info("wal: replayed %llu records from LSN %llu (%llu files before it not "
			    "read), next LSN %llu",
			    (unsigned long long)n, (unsigned long long)TD_MAX(from, 1),
			    (unsigned long long)wal_reader_skipped_files(r),
			    (unsigned long long)w->next_lsn);
	}
	wal_reader_free(r);
	return rc;
}

int wal_open(struct wal **out, const struct wal_options *opt, wal_replay_fn fn, void *ctx)
{
	if (mkdir(opt->dir, 0700) && errno != EEXIST)
		return td_from_errno(errno);
	struct wal *w = td_calloc(1, sizeof(*w));
	w->dir = td_strdup(opt->dir);
	w->segment_bytes = opt->segment_bytes ? opt->segment_bytes : WAL_DEFAULT_SEGMENT;
	w->max_pending = opt->max_pending_bytes ? opt->max_pending_bytes : (64u << 20);
	w->durability = opt->durability;
	w->async_interval_ms = opt->async_interval_ms ? opt->async_interval_ms : 200;
	w->fd = -1;
	w->next_lsn = 1;
	w->healthy = true;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->done, NULL);
	td_buf_init(&w->pending, SIZE_MAX / 2);

	uint32_t *seqs = NULL;
	size_t nseqs = 0;
	int rc = opt->replay_from_lsn >= (UINT64_C(1) << 62)
		     ? TD_EINVAL
		     : replay(w, opt->replay_from_lsn, fn, ctx);
	if (!rc)
		rc = wal_list_files(w->dir, &seqs, &nseqs);
	if (!rc) {
		struct stat st;
		char path[4096];
		for (size_t i = 0; i < nseqs; i++) {
			wal_file_path(path, sizeof(path), w->dir, seqs[i]);
			if (stat(path, &st) == 0)
				w->disk_bytes += (uint64_t)st.st_size;
		}
		w->files = nseqs;
		if (nseqs && seqs[nseqs - 1] == UINT32_MAX) {
			td_log_error("wal: %s/ffffffff.wal exists: no file number left for new "
				     "records; move the log's files aside or renumber them",
				     w->dir);
			rc = TD_ECORRUPT;
		} else {
			rc = start_file(w, nseqs ? seqs[nseqs - 1] + 1 : 1, w->next_lsn);
		}
	}
	free(seqs);
	if (!rc && pthread_create(&w->writer, NULL, writer_main, w))
		rc = TD_ENOMEM;
	if (rc) {
		if (w->fd >= 0)
			close(w->fd);
		td_buf_release(&w->pending);
		free(w->dir);
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}

void wal_close(struct wal *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->writer, NULL);
	struct waiter *fire = NULL;
	size_t n = take_waiters(w, &fire, true);
	for (size_t i = 0; i < n; i++)
		fire[i].fn(fire[i].arg, TD_ECLOSED);
	free(fire);
	if (w->fd >= 0) {
		fdatasync(w->fd);
		close(w->fd);
	}
	td_buf_release(&w->pending);
	free(w->waiters);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->work);
	pthread_cond_destroy(&w->done);
	free(w->dir);
	free(w);
}

void wal_set_commit_hook(struct wal *w, wal_commit_fn fn, bool (*full)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&w->mu);
	w->commit = fn;
	w->commit_full = full;
	w->commit_ctx = ctx;
	pthread_mutex_unlock(&w->mu);
}

void wal_set_rollback(struct wal *w, wal_rollback_fn fn, void *ctx)
{
	w->rollback = fn;
	w->rollback_ctx = ctx;
}

int wal_append_many(struct wal *w, uint8_t type, const struct wal_iov *recs, size_t n,
		    uint64_t *first_lsn)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (recs[i].len > WAL_MAX_PAYLOAD)
			return TD_ETOOLARGE;
		total += WAL_REC_HEADER + recs[i].len;
	}
	unsigned char hdr[WAL_REC_HEADER];
	int rc = 0;
	pthread_mutex_lock(&w->mu);
	if (w->stop) {
		rc = TD_ECLOSED;
	} else if (w->failed) {
		if (td_now_ms() < w->failed_until)
			rc = w->failed;
		else
			w->failed = 0;
	}
	if (!rc && (w->pending.len + total > w->max_pending ||
		    (w->commit_full && w->commit_full(w->commit_ctx))))
		rc = TD_EFULL;
	if (!rc)
		rc = td_buf_reserve(&w->pending, total);
	if (!rc) {
		/* one lock hold: the writer takes all of these records or none */
		*first_lsn = w->next_lsn;
		for (size_t i = 0; i < n; i++) {
			uint64_t l = w->next_lsn++;
			wal_frame_header(hdr, l, type, recs[i].data, (uint32_t)recs[i].len);
			td_buf_append(&w->pending, hdr, WAL_REC_HEADER);
			td_buf_append(&w->pending, recs[i].data, recs[i].len);
		}
		bool was_empty = w->pending_records == 0;
		w->pending_records += n;
		if (n && (was_empty ||
			  (w->durability == WAL_ASYNC && w->pending.len >= w->max_pending / 2)))
			pthread_cond_signal(&w->work);
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

int wal_append(struct wal *w, uint8_t type, const void *payload, size_t len, uint64_t *lsn)
{
	struct wal_iov rec = {payload, len};
	return wal_append_many(w, type, &rec, 1, lsn);
}

int wal_reserve_check(struct wal *w, size_t payload_bytes, size_t records)
{
	int rc = 0;
	pthread_mutex_lock(&w->mu);
	if (w->stop)
		rc = TD_ECLOSED;
	else if (w->failed && td_now_ms() < w->failed_until)
		rc = w->failed;
	else if (w->pending.len + payload_bytes + records * WAL_REC_HEADER > w->max_pending ||
		 (w->commit_full && w->commit_full(w->commit_ctx)))
		rc = TD_EFULL;
	pthread_mutex_unlock(&w->mu);
	return rc;
}

void wal_notify(struct wal *w, uint64_t lsn, wal_done_fn fn, void *arg)
{
	pthread_mutex_lock(&w->mu);
	if (lsn <= w->durable_lsn || w->durability == WAL_ASYNC) {
		pthread_mutex_unlock(&w->mu);
		fn(arg, 0);
		return;
	}
	if (lsn >= w->next_lsn) {
		/* lost in a failed write before we registered */
		int rc = w->last_error ? w->last_error : TD_EIO;
		pthread_mutex_unlock(&w->mu);
		fn(arg, rc);
		return;
	}
	if (w->nwaiters == w->capwaiters) {
		w->capwaiters = w->capwaiters ? w->capwaiters * 2 : 64;
		w->waiters = td_realloc(w->waiters, w->capwaiters * sizeof(*w->waiters));
	}
	w->waiters[w->nwaiters++] = (struct waiter){lsn, fn, arg};
	pthread_mutex_unlock(&w->mu);
}

int wal_wait(struct wal *w, uint64_t lsn)
{
	int rc = 0;
	pthread_mutex_lock(&w->mu);
	uint64_t gen = w->fail_gen;
	if (w->durability == WAL_SYNC) {
		while (w->durable_lsn < lsn) {
			if (w->fail_gen != gen || lsn >= w->next_lsn) {
				rc = w->last_error ? w->last_error : TD_EIO;
				break;
			}
			if (w->stop && w->pending.len == 0) {
				rc = TD_ECLOSED;
				break;
			}
			pthread_cond_wait(&w->done, &w->mu);
		}
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

static int covered(struct wal *w, uint64_t lsn, bool remove, uint64_t *files, uint64_t *bytes)
{
	uint64_t f = 0, b = 0;
	pthread_mutex_lock(&w->mu);
	uint32_t cur = w->cur_seq;
	pthread_mutex_unlock(&w->mu);
	int rc = wal_dir_covered(w->dir, cur, lsn, remove, &f, &b);
	if (remove && f) {
		pthread_mutex_lock(&w->mu);
		w->files_removed += f;
		w->bytes_removed += b;
		pthread_mutex_unlock(&w->mu);
		td_log_info("wal: removed %llu files (%llu bytes) covered by LSN %llu",
			    (unsigned long long)f, (unsigned long long)b, (unsigned long long)lsn);
	}
	if (rc)
		td_log_error("wal: %s files covered by LSN %llu: %s",
			     remove ? "removing" : "looking for", (unsigned long long)lsn,
			     td_strerror(rc));
	if (files)
		*files = f;
	if (bytes)
		*bytes = b;
	return rc;
}

int wal_remove_covered(struct wal *w, uint64_t lsn, uint64_t *files, uint64_t *bytes)
{
	return covered(w, lsn, true, files, bytes);
}

int wal_count_covered(struct wal *w, uint64_t lsn, uint64_t *files, uint64_t *bytes)
{
	return covered(w, lsn, false, files, bytes);
}

uint64_t wal_durable_lsn(struct wal *w)
{
	pthread_mutex_lock(&w->mu);
	uint64_t l = w->durable_lsn;
	pthread_mutex_unlock(&w->mu);
	return l;
}

size_t wal_max_pending(const struct wal *w)
{
	return w->max_pending;
}

enum wal_durability wal_durability(const struct wal *w)
{
	return w->durability;
}

void wal_get_stats(struct wal *w, struct wal_stats *st)
{
	pthread_mutex_lock(&w->mu);
	st->next_lsn = w->next_lsn;
	st->durable_lsn = w->durable_lsn;
	st->commits = w->commits;
	st->records_written = w->records_written;
	st->bytes_written = w->bytes_written;
	st->pending_bytes = w->pending.len;
	st->pending_records = w->pending_records;
	st->files = w->files;
	st->disk_bytes = w->disk_bytes;
	st->damaged_files = w->damaged_files;
	st->files -= TD_MIN(st->files, w->files_removed);
	st->disk_bytes -= TD_MIN(st->disk_bytes, w->bytes_removed);
	st->files_removed = w->files_removed;
	st->bytes_removed = w->bytes_removed;
	st->last_error = w->last_error;
	st->healthy = w->healthy;
	pthread_mutex_unlock(&w->mu);
}

void wal_get_histograms(struct wal *w, struct wal_histograms *h)
{
	pthread_mutex_lock(&w->mu);
	*h = w->hist;
	pthread_mutex_unlock(&w->mu);
}
