/*
 * metrics.c - counters behind GET /metrics.
 */
#include "ops/metrics.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "wal/wal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define REQ_BUCKETS METRICS_REQ_BUCKETS
const double metrics_request_bounds[REQ_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
						    0.01,   0.025,   0.05,   0.1,   0.25,   1.0};

static _Atomic uint64_t accepted, duplicates, rejected[COLLECT_R_COUNT];
static _Atomic uint64_t refused_unauthorized, refused_overloaded, refused_unavailable;
static _Atomic uint64_t req_bucket[REQ_BUCKETS + 1], req_count, req_sum_ns;

void metrics_event_accepted(uint64_t n)
{
	atomic_fetch_add_explicit(&accepted, n, memory_order_relaxed);
	if (n)
		live_record(0, td_now_ms(), n, 0, 0);
}

void metrics_event_duplicate(uint64_t n)
{
	atomic_fetch_add_explicit(&duplicates, n, memory_order_relaxed);
	if (n)
		live_record(0, td_now_ms(), 0, 0, n);
}

void metrics_event_rejected(enum collect_reason r, uint64_t n)
{
	if ((unsigned)r < COLLECT_R_COUNT)
		atomic_fetch_add_explicit(&rejected[r], n, memory_order_relaxed);
	live_record(0, td_now_ms(), 0, n, 0);
}

void metrics_request_refused(const char *why)
{
	if (strcmp(why, "unauthorized") == 0)
		atomic_fetch_add_explicit(&refused_unauthorized, 1, memory_order_relaxed);
	else if (strcmp(why, "overloaded") == 0)
		atomic_fetch_add_explicit(&refused_overloaded, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&refused_unavailable, 1, memory_order_relaxed);
}

void metrics_request_observe(double seconds)
{
	size_t i = 0;
	while (i < REQ_BUCKETS && seconds > metrics_request_bounds[i])
		i++;
	atomic_fetch_add_explicit(&req_bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&req_count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&req_sum_ns, (uint64_t)(seconds * 1e9), memory_order_relaxed);
}

struct source_counts {
	_Atomic uint64_t accepted, duplicates, rejected;
	char name[128]; /* guarded by source_names_mu; "" until first seen */
};
static struct source_counts sources[METRICS_MAX_SOURCES + 1]; /* last: "other" */
static pthread_mutex_t source_names_mu = PTHREAD_MUTEX_INITIALIZER;

void metrics_source_events(uint32_t source_id, const char *name, uint64_t n_accepted,
			   uint64_t n_duplicates, uint64_t n_rejected)
{
	size_t i = source_id < METRICS_MAX_SOURCES ? source_id : METRICS_MAX_SOURCES;
	struct source_counts *c = &sources[i];
	if (!c->name[0]) {
		pthread_mutex_lock(&source_names_mu);
		if (!c->name[0])
			snprintf(c->name, sizeof(c->name), "%s",
				 i == METRICS_MAX_SOURCES ? "other" : name);
		pthread_mutex_unlock(&source_names_mu);
	}
	atomic_fetch_add_explicit(&c->accepted, n_accepted, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->duplicates, n_duplicates, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->rejected, n_rejected, memory_order_relaxed);
	if (source_id && (n_accepted | n_rejected | n_duplicates))
		live_record(source_id, td_now_ms(), n_accepted, n_rejected, n_duplicates);
}

static void render_sources(struct td_buf *out)
{
	static const char *const what[3] = {"accepted", "deduplicated", "rejected"};
	pthread_mutex_lock(&source_names_mu);
	for (int k = 0; k < 3; k++) {
		td_buf_printf(out,
			      "# HELP tandem_source_events_%s_total Events %s, by source.\n"
			      "# TYPE tandem_source_events_%s_total counter\n",
			      what[k], what[k], what[k]);
		for (size_t i = 0; i <= METRICS_MAX_SOURCES; i++) {
			struct source_counts *c = &sources[i];
			if (!c->name[0])
				continue;
			uint64_t v = atomic_load(k == 0	  ? &c->accepted
						 : k == 1 ? &c->duplicates
							  : &c->rejected);
			td_buf_printf(out, "tandem_source_events_%s_total{source=", what[k]);
			td_buf_json_str(out, c->name); /* names are [A-Za-z0-9._-]: no escapes */
			td_buf_printf(out, "} %llu\n", (unsigned long long)v);
		}
	}
	pthread_mutex_unlock(&source_names_mu);
}

uint64_t metrics_accepted_total(void)
{
	return atomic_load(&accepted);
}

uint64_t metrics_request_histogram(uint64_t counts[METRICS_REQ_BUCKETS + 1])
{
	uint64_t total = 0;
	for (size_t i = 0; i <= REQ_BUCKETS; i++)
		total += counts[i] = atomic_load(&req_bucket[i]);
	return total;
}

double metrics_quantile(const double *bounds, const uint64_t *counts, size_t n, double q)
{
	uint64_t total = 0;
	for (size_t i = 0; i <= n; i++)
		total += counts[i];
	if (!total)
		return -1;
	double rank = q * (double)total, cum = 0;
	for (size_t i = 0; i < n; i++) {
		if (cum + (double)counts[i] >= rank && counts[i]) {
			double lo = i ? bounds[i - 1] : 0;
			return lo + (bounds[i] - lo) * (rank - cum) / (double)counts[i];
		}
		cum += (double)counts[i];
	}
	return bounds[n - 1];
}

static void histogram(struct td_buf *out, const char *name, const double *bounds, size_t n,
		      const uint64_t *counts, double sum, uint64_t total)
{
	uint64_t cum = 0;
	for (size_t i = 0; i < n; i++) {
		cum += counts[i];
		td_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i],
			      (unsigned long long)cum);
	}
	td_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)total);
	td_buf_printf(out, "%s_sum %.6f\n%s_count %llu\n", name, sum, name,
		      (unsigned long long)total);
}

static void render_checkpoint(struct td_buf *out, struct ingest *g)
{
	struct ingest_checkpoint_stats ck;
	ingest_checkpoint_stats(g, &ck);
	if (ck.saved_ms) {
		int64_t age = td_now_ms() - ck.saved_ms;
		td_buf_printf(out,
			      "# HELP tandem_dedupe_checkpoint_age_seconds Time since the dedupe "
			      "checkpoint in force was saved.\n"
			      "# TYPE tandem_dedupe_checkpoint_age_seconds gauge\n"
			      "tandem_dedupe_checkpoint_age_seconds %.3f\n",
			      age > 0 ? (double)age / 1000 : 0.0);
	}
	td_buf_printf(
	    out,
	    "# HELP tandem_dedupe_checkpoint_lsn WAL position the dedupe checkpoint covers.\n"
	    "# TYPE tandem_dedupe_checkpoint_lsn gauge\ntandem_dedupe_checkpoint_lsn %llu\n"
	    "# HELP tandem_dedupe_checkpoint_bytes Size of the dedupe checkpoint file.\n"
	    "# TYPE tandem_dedupe_checkpoint_bytes gauge\ntandem_dedupe_checkpoint_bytes %llu\n"
	    "# HELP tandem_dedupe_checkpoint_entries Keys in the dedupe checkpoint.\n"
	    "# TYPE tandem_dedupe_checkpoint_entries gauge\n"
	    "tandem_dedupe_checkpoint_entries %llu\n"
	    "# HELP tandem_dedupe_checkpoint_duration_seconds Time the last checkpoint save "
	    "took.\n# TYPE tandem_dedupe_checkpoint_duration_seconds gauge\n"
	    "tandem_dedupe_checkpoint_duration_seconds %.6f\n"
	    "# HELP tandem_dedupe_checkpoint_lock_seconds Longest time the last checkpoint save "
	    "held the ingest lock at once.\n# TYPE tandem_dedupe_checkpoint_lock_seconds gauge\n"
	    "tandem_dedupe_checkpoint_lock_seconds %.6f\n"
	    "# HELP tandem_dedupe_checkpoint_saves_total Dedupe checkpoints saved.\n"
	    "# TYPE tandem_dedupe_checkpoint_saves_total counter\n"
	    "tandem_dedupe_checkpoint_saves_total %llu\n"
	    "# HELP tandem_dedupe_checkpoint_errors_total Dedupe checkpoint saves that failed.\n"
	    "# TYPE tandem_dedupe_checkpoint_errors_total counter\n"
	    "tandem_dedupe_checkpoint_errors_total %llu\n"
	    "# HELP tandem_dedupe_checkpoint_damaged 1 if the checkpoint found at start was "
	    "damaged (set aside; duplicates from removed WAL files are not recognised).\n"
	    "# TYPE tandem_dedupe_checkpoint_damaged gauge\ntandem_dedupe_checkpoint_damaged %d\n",
	    (unsigned long long)ck.lsn, (unsigned long long)ck.bytes,
	    (unsigned long long)ck.entries, ck.seconds, ck.lock_seconds,
	    (unsigned long long)ck.saves, (unsigned long long)ck.errors, ck.damaged ? 1 : 0);
}

int metrics_render(struct td_buf *out, struct wal *w, struct ingest *g)
{
	td_buf_printf(out,
		      "# HELP tandem_events_accepted_total Events stored in the WAL.\n"
		      "# TYPE tandem_events_accepted_total counter\n"
		      "tandem_events_accepted_total %llu\n",
		      (unsigned long long)atomic_load(&accepted));
	td_buf_printf(out,
		      "# HELP tandem_events_deduplicated_total Events acknowledged as duplicates "
		      "of a stored (source, messageId).\n"
		      "# TYPE tandem_events_deduplicated_total counter\n"
		      "tandem_events_deduplicated_total %llu\n",
		      (unsigned long long)atomic_load(&duplicates));
	td_buf_printf(out, "# HELP tandem_events_rejected_total Events rejected and quarantined, "
			   "by reason.\n# TYPE tandem_events_rejected_total counter\n");
	for (int r = 0; r < COLLECT_R_COUNT; r++)
		td_buf_printf(out, "tandem_events_rejected_total{reason=\"%s\"} %llu\n",
			      collect_reason_code((enum collect_reason)r),
			      (unsigned long long)atomic_load(&rejected[r]));
	render_sources(out);
	td_buf_printf(out,
		      "# HELP tandem_requests_refused_total Requests refused as a whole.\n"
		      "# TYPE tandem_requests_refused_total counter\n"
		      "tandem_requests_refused_total{reason=\"unauthorized\"} %llu\n"
		      "tandem_requests_refused_total{reason=\"overloaded\"} %llu\n"
		      "tandem_requests_refused_total{reason=\"unavailable\"} %llu\n",
		      (unsigned long long)atomic_load(&refused_unauthorized),
		      (unsigned long long)atomic_load(&refused_overloaded),
		      (unsigned long long)atomic_load(&refused_unavailable));

	uint64_t counts[REQ_BUCKETS + 1];
	for (size_t i = 0; i <= REQ_BUCKETS; i++)
		counts[i] = atomic_load(&req_bucket[i]);
	td_buf_printf(out, "# HELP tandem_http_request_duration_seconds Time from request to "
			   "response, collector requests.\n"
			   "# TYPE tandem_http_request_duration_seconds histogram\n");
	histogram(out, "tandem_http_request_duration_seconds", metrics_request_bounds, REQ_BUCKETS,
		  counts, (double)atomic_load(&req_sum_ns) / 1e9, atomic_load(&req_count));

	if (w) {
		struct wal_histograms h;
		struct wal_stats st;
		wal_get_histograms(w, &h);
		wal_get_stats(w, &st);
		td_buf_printf(out, "# HELP tandem_wal_fsync_duration_seconds Time of one group "
				   "commit (write + fdatasync).\n"
				   "# TYPE tandem_wal_fsync_duration_seconds histogram\n");
		histogram(out, "tandem_wal_fsync_duration_seconds", wal_fsync_buckets,
			  WAL_FSYNC_BUCKETS, h.fsync, h.fsync_sum, h.count);
		td_buf_printf(out, "# HELP tandem_wal_group_commit_records Records made durable "
				   "by one commit.\n"
				   "# TYPE tandem_wal_group_commit_records histogram\n");
		histogram(out, "tandem_wal_group_commit_records", wal_group_buckets,
			  WAL_GROUP_BUCKETS, h.group, h.group_sum, h.count);
		td_buf_printf(
		    out,
		    "# HELP tandem_wal_queue_bytes Bytes appended but not yet written.\n"
		    "# TYPE tandem_wal_queue_bytes gauge\ntandem_wal_queue_bytes %llu\n"
		    "# HELP tandem_wal_queue_records Records appended but not yet written.\n"
		    "# TYPE tandem_wal_queue_records gauge\ntandem_wal_queue_records %llu\n"
		    "# HELP tandem_wal_durable_lsn Highest LSN on disk.\n"
		    "# TYPE tandem_wal_durable_lsn gauge\ntandem_wal_durable_lsn %llu\n"
		    "# HELP tandem_wal_disk_bytes Size of the WAL files.\n"
		    "# TYPE tandem_wal_disk_bytes gauge\ntandem_wal_disk_bytes %llu\n"
		    "# HELP tandem_wal_files WAL files on disk.\n"
		    "# TYPE tandem_wal_files gauge\ntandem_wal_files %llu\n"
		    "# HELP tandem_wal_damaged_files WAL files with a torn or corrupt tail found "
		    "at start.\n# TYPE tandem_wal_damaged_files gauge\ntandem_wal_damaged_files "
		    "%llu\n",
		    (unsigned long long)st.pending_bytes, (unsigned long long)st.pending_records,
		    (unsigned long long)st.durable_lsn, (unsigned long long)st.disk_bytes,
		    (unsigned long long)st.files, (unsigned long long)st.damaged_files);
		td_buf_printf(
		    out,
		    "# HELP tandem_wal_removed_files_total WAL files removed because "
		    "every consumer covers them.\n"
		    "# TYPE tandem_wal_removed_files_total counter\n"
		    "tandem_wal_removed_files_total %llu\n"
		    "# HELP tandem_wal_removed_bytes_total Bytes of the WAL files removed.\n"
		    "# TYPE tandem_wal_removed_bytes_total counter\n"
		    "tandem_wal_removed_bytes_total %llu\n",
		    (unsigned long long)st.files_removed, (unsigned long long)st.bytes_removed);
	}
	if (g)
		td_buf_printf(out,
			      "# HELP tandem_dedupe_entries (source, messageId) pairs in the "
			      "dedupe window.\n# TYPE tandem_dedupe_entries gauge\n"
			      "tandem_dedupe_entries %zu\n",
			      ingest_dedupe_size(g));
	if (g)
		render_checkpoint(out, g);
	return 0;
}
