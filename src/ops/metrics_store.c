/*
 * metrics_store.c - the event store's series for /metrics.
 */
#include "base/buf.h"
#include "ops/metrics.h"
#include "store/store.h"
#include "wal/wal.h"

void metrics_render_store(struct td_buf *out, struct store *s, struct wal *w)
{
	struct store_stats st;
	store_get_stats(s, &st);
	uint64_t durable = w ? wal_durable_lsn(w) : st.applied_lsn;
	unsigned long long lag = durable > st.applied_lsn ? durable - st.applied_lsn : 0;
	td_buf_printf(
	    out,
	    "# HELP tandem_store_events Events in the store (segment files and memory).\n"
	    "# TYPE tandem_store_events gauge\ntandem_store_events %llu\n"
	    "# HELP tandem_store_events_in_memory Events queryable but not yet in a segment "
	    "file.\n# TYPE tandem_store_events_in_memory gauge\ntandem_store_events_in_memory "
	    "%llu\n"
	    "# HELP tandem_store_segments Segment files listed in the manifest.\n"
	    "# TYPE tandem_store_segments gauge\ntandem_store_segments %llu\n"
	    "# HELP tandem_store_persons Person ids assigned (merged ones included).\n"
	    "# TYPE tandem_store_persons gauge\ntandem_store_persons %llu\n"
	    "# HELP tandem_store_bytes Bytes of segment files by part.\n"
	    "# TYPE tandem_store_bytes gauge\n"
	    "tandem_store_bytes{part=\"time\"} %llu\ntandem_store_bytes{part=\"person\"} %llu\n"
	    "tandem_store_bytes{part=\"directory\"} %llu\n"
	    "tandem_store_bytes{part=\"properties\"} %llu\ntandem_store_bytes{part=\"raw\"} %llu\n"
	    "# HELP tandem_store_applied_lsn Last WAL record applied to the store.\n"
	    "# TYPE tandem_store_applied_lsn gauge\ntandem_store_applied_lsn %llu\n"
	    "# HELP tandem_store_flushed_lsn Last WAL record in a segment file.\n"
	    "# TYPE tandem_store_flushed_lsn gauge\ntandem_store_flushed_lsn %llu\n"
	    "# HELP tandem_store_lag_records Durable WAL records not yet applied to the store.\n"
	    "# TYPE tandem_store_lag_records gauge\ntandem_store_lag_records %llu\n"
	    "# HELP tandem_store_flushes_total Segment files written from memory.\n"
	    "# TYPE tandem_store_flushes_total counter\ntandem_store_flushes_total %llu\n"
	    "# HELP tandem_store_merges_total Background merges of segment files.\n"
	    "# TYPE tandem_store_merges_total counter\ntandem_store_merges_total %llu\n"
	    "# HELP tandem_store_flush_errors_total Failed flushes (retried; the WAL keeps the "
	    "events).\n# TYPE tandem_store_flush_errors_total counter\n"
	    "tandem_store_flush_errors_total %llu\n"
	    "# HELP tandem_store_flush_seconds_total Time spent encoding and writing segment "
	    "files from memory (in the background).\n# TYPE tandem_store_flush_seconds_total "
	    "counter\ntandem_store_flush_seconds_total %.3f\n"
	    "# HELP tandem_store_bad_records_total WAL records the store could not decode "
	    "(skipped).\n# TYPE tandem_store_bad_records_total counter\n"
	    "tandem_store_bad_records_total %llu\n",
	    (unsigned long long)st.rows, (unsigned long long)st.rows_memory,
	    (unsigned long long)st.segments, (unsigned long long)st.pids,
	    (unsigned long long)st.bytes_ts, (unsigned long long)st.bytes_pid,
	    (unsigned long long)st.bytes_name, (unsigned long long)st.bytes_props,
	    (unsigned long long)st.bytes_raw, (unsigned long long)st.applied_lsn,
	    (unsigned long long)st.flushed_lsn, lag, (unsigned long long)st.flushes,
	    (unsigned long long)st.merges, (unsigned long long)st.flush_errors,
	    (double)st.flush_ms / 1000.0, (unsigned long long)st.bad_records);
	td_buf_printf(out,
		      "# HELP tandem_sessions_persons Persons with a session (docs/sessions.md).\n"
		      "# TYPE tandem_sessions_persons gauge\ntandem_sessions_persons %llu\n"
		      "# HELP tandem_sessions_started_total Sessions started since the server "
		      "started.\n# TYPE tandem_sessions_started_total counter\n"
		      "tandem_sessions_started_total %llu\n"
		      "# HELP tandem_sessions_late_events_total Events too late for their "
		      "person's current session, stored without one.\n"
		      "# TYPE tandem_sessions_late_events_total counter\n"
		      "tandem_sessions_late_events_total %llu\n"
		      "# HELP tandem_sessions_log_bytes Size of the session state's log "
		      "(SESSIONS).\n# TYPE tandem_sessions_log_bytes gauge\n"
		      "tandem_sessions_log_bytes %llu\n",
		      (unsigned long long)st.sessions.persons,
		      (unsigned long long)st.sessions.started, (unsigned long long)st.sessions.late,
		      (unsigned long long)st.sessions.log_bytes);
	const struct identity_stats *id = &st.identity;
	td_buf_printf(out,
		      "# HELP tandem_identity_persons Persons after merges.\n"
		      "# TYPE tandem_identity_persons gauge\ntandem_identity_persons %llu\n"
		      "# HELP tandem_identity_identifiers Identifiers linked to a person.\n"
		      "# TYPE tandem_identity_identifiers gauge\ntandem_identity_identifiers %llu\n"
		      "# HELP tandem_identity_merges_total Persons merged into another.\n"
		      "# TYPE tandem_identity_merges_total counter\ntandem_identity_merges_total "
		      "%llu\n"
		      "# HELP tandem_identity_refused_total Identifier values refused (blocked, "
		      "empty, too long or malformed).\n"
		      "# TYPE tandem_identity_refused_total counter\ntandem_identity_refused_total "
		      "%llu\n"
		      "# HELP tandem_identity_conflicts_total Identifiers left out of a person "
		      "because of a limit, by class.\n"
		      "# TYPE tandem_identity_conflicts_total counter\n",
		      (unsigned long long)id->persons, (unsigned long long)id->identifiers,
		      (unsigned long long)id->merges, (unsigned long long)id->refused);
	for (int c = 0; c < IDENTITY_NCLASSES; c++)
		td_buf_printf(out, "tandem_identity_conflicts_total{class=\"%s\"} %llu\n",
			      identity_class_name((enum identity_class)c),
			      (unsigned long long)id->conflicts[c]);
}
