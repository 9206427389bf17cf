/*
 * health.c - GET /api/health/data: what each source sent per minute or per
 * hour, why messages were rejected (with samples from the quarantine),
 * latencies, WAL and store sizes (docs/dashboard.md has the fields).
 *
 * Since the start, counts come from memory (src/ops/live.c: what the
 * collector took, by time of receipt). Before it, the event store is the
 * only witness: accepted events by their timestamp, found once by a scan of
 * the last LIVE_HOURS hours of the store (the WAL payloads carry the source
 * id) that a worker starts with the server, and kept (struct http_health);
 * and rejections by the quarantine's receivedAt. Duplicates before the start are not known: zeros.
 *
 * Runs on a query worker: the first call scans the store, and every call
 * reads the quarantine (at most HEALTH_QUARANTINE_BYTES of it).
 */
#include "http/http_int.h"
#include "base/log.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "meta/meta.h"
#include "ops/metrics.h"
#include "store/store.h"
#include "wal/wal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEALTH_QUARANTINE_BYTES (8u << 20)
#define HEALTH_SAMPLES		5
#define HEALTH_SAMPLE_RAW	2048	      /* bytes of a sample's raw message shown */
#define HEALTH_SCAN_NS		3000000000ull /* the history scan gives up after 3 s */

/* Counts from before the start, per source (index = source id). */
struct history {
	uint64_t minutes[LIVE_MINUTES]; /* minute numbers start_min - LIVE_MINUTES .. */
	uint64_t hours[LIVE_HOURS];	/* hour numbers start_hour - LIVE_HOURS + 1 .. */
	int64_t last_ms;		/* newest receivedAt seen */
};

struct http_health {
	pthread_mutex_t mu; /* guards the first scan; after done, read-only */
	bool done, partial;
	int64_t start_min, start_hour; /* the bucket holding live_started_ms() */
	struct history *src[LIVE_MAX_SOURCES + 1];
};

struct http_health *health_new(void)
{
	struct http_health *h = td_calloc(1, sizeof(*h));
	pthread_mutex_init(&h->mu, NULL);
	return h;
}

void health_free(struct http_health *h)
{
	if (!h)
		return;
	for (size_t i = 0; i <= LIVE_MAX_SOURCES; i++)
		free(h->src[i]);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

struct scan_ctx {
	struct http_health *h;
	int64_t started_ms;
	uint64_t t0, rows;
};

static int scan_row(void *arg, const char *event, int64_t ts, uint32_t pid, const void *payload,
		    size_t len, const struct store_row *r)
{
	struct scan_ctx *c = arg;
	struct collect_event_view v;
	if ((++c->rows & 4095) == 0 && td_mono_ns() - c->t0 > HEALTH_SCAN_NS)
		return 1; /* partial */
	if (collect_event_decode(payload, len, &v) || v.received_ms >= c->started_ms ||
	    v.source_id > LIVE_MAX_SOURCES)
		return 0; /* received since the start: live.c counted it */
	struct history **hp = &c->h->src[v.source_id];
	if (!*hp)
		*hp = td_calloc(1, sizeof(**hp));
	int64_t m = ts / 60000 - (c->h->start_min - LIVE_MINUTES);
	int64_t hr = ts / 3600000 - (c->h->start_hour - LIVE_HOURS + 1);
	if (m >= 0 && m < LIVE_MINUTES)
		(*hp)->minutes[m]++;
	if (hr >= 0 && hr < LIVE_HOURS)
		(*hp)->hours[hr]++;
	if (v.received_ms > (*hp)->last_ms)
		(*hp)->last_ms = v.received_ms;
	return 0;
}

/* The history before the start, scanned once (later callers wait for it). */
static struct http_health *history(struct http_server *s)
{
	struct http_health *h = s->health;
	pthread_mutex_lock(&h->mu);
	if (!h->done && s->deps.store) {
		int64_t started = live_started_ms();
		h->start_min = started / 60000;
		h->start_hour = started / 3600000;
		struct scan_ctx c = {.h = h, .started_ms = started, .t0 = td_mono_ns()};
		struct store_snap *snap = store_snapshot(s->deps.store);
		int rc = store_snap_scan(snap, (h->start_hour - LIVE_HOURS + 1) * 3600000, started,
					 scan_row, &c);
		store_snap_release(snap);
		h->partial = rc != 0;
		if (rc)
			td_log_info("api: data health: the history scan stopped after %llu events "
				    "(%s)",
				    (unsigned long long)c.rows, rc == 1 ? "3 s" : td_strerror(rc));
		h->done = true;
	}
	pthread_mutex_unlock(&h->mu);
	return h;
}

static void warm(void *arg)
{
	history(arg);
}

static void warm_cancel(void *arg)
{
}

void health_warm(struct http_server *s)
{
	struct http_job job = {.run = warm, .cancel = warm_cancel, .arg = s};
	http_pool_submit(s->queries, &job); /* a full queue: the first request scans */
}

int64_t health_last_event_ms(struct http_server *s, uint32_t source_id)
{
	int64_t live = live_last_ms(source_id);
	struct http_health *h = history(s);
	int64_t old =
	    source_id <= LIVE_MAX_SOURCES && h->src[source_id] ? h->src[source_id]->last_ms : 0;
	return live > old ? live : old;
}

struct reason {
	char code[32];
	uint64_t count;
	size_t nsamples;
	struct td_buf samples;
};

struct health_job {
	struct req *r;
	int hours;
	bool hourly;
	int64_t first, now_ms; /* first bucket number */
	size_t n;
	struct meta_source *sources;
	size_t nsources;
	uint64_t *rejected_before; /* [nsources * n]: quarantined before the start */
	struct reason reasons[COLLECT_R_COUNT + 4];
	size_t nreasons;
	bool reasons_partial;
};

static void job_free(struct health_job *j)
{
	for (size_t i = 0; i < j->nreasons; i++)
		td_buf_release(&j->reasons[i].samples);
	free(j->sources);
	free(j->rejected_before);
	free(j);
}

static void sample_json(struct td_buf *o, const struct quarantine_entry *e)
{
	char ts[TD_ISO8601_LEN];
	td_time_format(e->received_ms, ts);
	td_buf_printf(o, "%s{\"source\":", o->len ? "," : "");
	td_buf_json_str(o, e->source);
	td_buf_printf(o, ",\"received\":\"%s\",\"endpoint\":", ts);
	td_buf_json_str(o, e->endpoint);
	td_buf_printf(o, ",\"field\":");
	td_buf_json_str(o, e->field);
	td_buf_printf(o, ",\"error\":");
	td_buf_json_str(o, e->error);
	size_t len = strlen(e->raw);
	bool cut = len > HEALTH_SAMPLE_RAW;
	if (cut) { /* at a character boundary */
		len = HEALTH_SAMPLE_RAW;
		while (len && ((unsigned char)e->raw[len] & 0xC0) == 0x80)
			len--;
	}
	char *raw = td_strndup(e->raw, len);
	td_buf_printf(o, ",\"raw\":");
	td_buf_json_str(o, raw);
	td_buf_printf(o, ",\"raw_truncated\":%s}", cut ? "true" : "false");
	free(raw);
}

static int on_quarantined(void *arg, const struct quarantine_entry *e)
{
	struct health_job *j = arg;
	struct reason *rs = NULL;
	for (size_t i = 0; i < j->nreasons && !rs; i++)
		if (!strcmp(j->reasons[i].code, e->reason))
			rs = &j->reasons[i];
	if (!rs && j->nreasons < TD_ARRAY_LEN(j->reasons) && e->reason[0] &&
	    strlen(e->reason) < sizeof(rs->code)) {
		rs = &j->reasons[j->nreasons++];
		snprintf(rs->code, sizeof(rs->code), "%s", e->reason);
		td_buf_init(&rs->samples, 64u << 10);
	}
	if (rs) {
		rs->count++;
		if (rs->nsamples < HEALTH_SAMPLES) {
			sample_json(&rs->samples, e);
			rs->nsamples++;
		}
	}
	if (e->received_ms < live_started_ms()) { /* live.c did not see it */
		int64_t b = e->received_ms / (j->hourly ? 3600000 : 60000) - j->first;
		for (size_t i = 0; i < j->nsources && b >= 0 && (size_t)b < j->n; i++)
			if (!strcmp(j->sources[i].name, e->source))
				j->rejected_before[i * j->n + (size_t)b]++;
	}
	return 0;
}

static void array(struct td_buf *o, const char *name, const uint64_t *v, size_t n)
{
	td_buf_printf(o, ",\"%s\":[", name);
	for (size_t i = 0; i < n; i++)
		td_buf_printf(o, "%s%llu", i ? "," : "", (unsigned long long)v[i]);
	td_buf_putc(o, ']');
}

/* The counts of one source: live ones, plus the history before the start. */
static void source_json(struct health_job *j, struct http_health *h, size_t si,
			struct live_counts *lc, uint64_t *col)
{
	struct td_buf *o = &j->r->resp;
	const struct meta_source *src = &j->sources[si];
	live_read(src->id, j->hourly, j->first, j->n, lc);
	const struct history *hs = src->id <= LIVE_MAX_SOURCES ? h->src[src->id] : NULL;
	for (size_t i = 0; i < j->n && hs; i++) {
		int64_t b = j->first + (int64_t)i;
		int64_t k = j->hourly ? b - (h->start_hour - LIVE_HOURS + 1)
				      : b - (h->start_min - LIVE_MINUTES);
		if (k >= 0 && k < (j->hourly ? LIVE_HOURS : LIVE_MINUTES))
			lc[i].accepted += j->hourly ? hs->hours[k] : hs->minutes[k];
	}
	td_buf_printf(o, "%s{\"id\":%u,\"name\":", si ? "," : "", src->id);
	td_buf_json_str(o, src->name);
	for (size_t i = 0; i < j->n; i++)
		col[i] = lc[i].accepted;
	array(o, "accepted", col, j->n);
	for (size_t i = 0; i < j->n; i++)
		col[i] = lc[i].rejected + j->rejected_before[si * j->n + i];
	array(o, "rejected", col, j->n);
	for (size_t i = 0; i < j->n; i++)
		col[i] = lc[i].deduplicated;
	array(o, "deduplicated", col, j->n);
	int64_t last = health_last_event_ms(j->r->srv, src->id);
	char ts[TD_ISO8601_LEN];
	td_time_format(last, ts);
	td_buf_printf(o, ",\"last_event\":%s%s%s}", last ? "\"" : "", last ? ts : "null",
		      last ? "\"" : "");
}

static void latency_json(struct td_buf *o, const char *name, const double *bounds,
			 const uint64_t *counts, size_t n)
{
	td_buf_printf(o, "\"%s\":{", name);
	static const double qs[2] = {0.5, 0.99};
	for (int k = 0; k < 2; k++) {
		double v = metrics_quantile(bounds, counts, n, qs[k]);
		td_buf_printf(o, "%s\"p%d\":", k ? "," : "", (int)(qs[k] * 100));
		if (v < 0)
			td_buf_printf(o, "null");
		else
			td_buf_printf(o, "%.3f", v * 1000);
	}
	td_buf_putc(o, '}');
}

static int by_count(const void *a, const void *b)
{
	const struct reason *x = a, *y = b;
	return x->count < y->count ? 1 : x->count > y->count ? -1 : strcmp(x->code, y->code);
}

static void run_health(void *arg)
{
	struct health_job *j = arg;
	struct req *r = j->r;
	struct http_server *s = r->srv;
	struct http_health *h = history(s);
	int64_t unit = j->hourly ? 3600000 : 60000;
	j->rejected_before = td_calloc(j->nsources * j->n + 1, sizeof(uint64_t));
	int rc = quarantine_read_recent(s->deps.data_dir, j->first * unit, HEALTH_QUARANTINE_BYTES,
					on_quarantined, j, &j->reasons_partial);
	if (rc)
		td_log_error("api: data health: cannot read the quarantine: %s", td_strerror(rc));

	struct td_buf *o = &r->resp;
	char ts[TD_ISO8601_LEN];
	td_buf_reset(o);
	td_buf_printf(o, "{\"interval\":\"%s\",\"hours\":%d,\"times\":[",
		      j->hourly ? "hour" : "minute", j->hours);
	for (size_t i = 0; i < j->n; i++) {
		td_time_format((j->first + (int64_t)i) * unit, ts);
		td_buf_printf(o, "%s\"%s\"", i ? "," : "", ts);
	}
	td_buf_printf(o, "],\"sources\":[");
	struct live_counts *lc = td_calloc(j->n, sizeof(*lc));
	uint64_t *col = td_calloc(j->n, sizeof(*col));
	for (size_t i = 0; i < j->nsources; i++)
		source_json(j, h, i, lc, col);
	free(lc);
	free(col);
	qsort(j->reasons, j->nreasons, sizeof(j->reasons[0]), by_count);
	td_buf_printf(o, "],\"reasons\":[");
	for (size_t i = 0; i < j->nreasons; i++)
		td_buf_printf(o, "%s{\"code\":\"%s\",\"count\":%llu,\"samples\":[%s]}",
			      i ? "," : "", j->reasons[i].code,
			      (unsigned long long)j->reasons[i].count,
			      j->reasons[i].samples.data ? j->reasons[i].samples.data : "");
	td_buf_printf(o, "],\"reasons_partial\":%s,\"history_partial\":%s,\"latency\":{",
		      j->reasons_partial ? "true" : "false", h->partial ? "true" : "false");

	struct wal_histograms wh;
	struct wal_stats ws;
	wal_get_histograms(s->deps.wal, &wh);
	wal_get_stats(s->deps.wal, &ws);
	latency_json(o, "fsync_ms", wal_fsync_buckets, wh.fsync, WAL_FSYNC_BUCKETS);
	uint64_t req[METRICS_REQ_BUCKETS + 1];
	metrics_request_histogram(req);
	td_buf_putc(o, ',');
	latency_json(o, "request_ms", metrics_request_bounds, req, METRICS_REQ_BUCKETS);
	struct store_stats ss = {0};
	if (s->deps.store)
		store_get_stats(s->deps.store, &ss);
	td_time_format(live_started_ms(), ts);
	td_buf_printf(o,
		      "},\"wal_bytes\":%llu,\"store_bytes\":%llu,\"events_stored\":%llu,"
		      "\"since\":\"%s\"}",
		      (unsigned long long)ws.disk_bytes, (unsigned long long)ss.segment_bytes,
		      (unsigned long long)ss.rows, ts);
	r->status = 200;
	job_free(j);
	api_finish(r);
}

static void cancel_health(void *arg)
{
	struct health_job *j = arg;
	struct req *r = j->r;
	job_free(j);
	r->retry_after = 5;
	http_error(r, 503, "unavailable", "the server is shutting down; retry later");
	api_finish(r);
}

bool http_int_param(struct req *r, const char *name, long lo, long hi, long def, long *out)
{
	const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
	*out = def;
	if (!v)
		return true;
	char *end;
	long n = strtol(v, &end, 10);
	if (!*v || *end || n < lo || n > hi) {
		http_error(r, 400, "invalid_request", "%s must be a whole number from %ld to %ld",
			   name, lo, hi);
		return false;
	}
	*out = n;
	return true;
}

void api_health_data(struct req *r)
{
	long hours;
	if (!api_authorize(r) || !http_int_param(r, "hours", 1, LIVE_HOURS, 24, &hours))
		return;
	const char *iv = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "interval");
	bool hourly = hours > 6;
	if (iv && (!strcmp(iv, "minute") || !strcmp(iv, "hour")))
		hourly = !strcmp(iv, "hour");
	else if (iv) {
		http_error(r, 400, "invalid_request", "interval is minute or hour, not %s", iv);
		return;
	}
	if (!hourly && hours > LIVE_MINUTES / 60) {
		http_error(r, 400, "invalid_request",
			   "interval minute covers at most the last %d hours; ask for hour",
			   LIVE_MINUTES / 60);
		return;
	}
	struct health_job *j = td_calloc(1, sizeof(*j));
	j->r = r;
	j->hours = (int)hours;
	j->hourly = hourly;
	j->now_ms = td_now_ms();
	j->n = hourly ? (size_t)hours : (size_t)hours * 60;
	j->first = j->now_ms / (hourly ? 3600000 : 60000) - (int64_t)j->n + 1;
	int rc = meta_source_list(r->srv->deps.meta, &j->sources, &j->nsources);
	if (rc) {
		td_log_error("api: cannot list sources: %s", td_strerror(rc));
		http_error(r, 500, "internal", "cannot read the sources; the error is logged");
		job_free(j);
		return;
	}
	if (!api_submit(r, run_health, cancel_health, j))
		job_free(j);
}
