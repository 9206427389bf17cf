/*
 * dashboard.c - the dashboard's small endpoints (docs/dashboard.md):
 *   GET  /api/sources          every source, its write key and last event
 *   POST /api/sources          {"name":"web"}: a new source (201)
 *   GET  /api/stats/live       what the collector took per minute
 * Admin token or session cookie, as every /api/ endpoint.
 */
#include "http/http_int.h"
#include "base/log.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "meta/meta.h"
#include "ops/metrics.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void source_json(struct td_buf *o, const struct meta_source *src, int64_t last_ms)
{
	char ts[TD_ISO8601_LEN];
	td_buf_printf(o, "{\"id\":%u,\"name\":", src->id);
	td_buf_json_str(o, src->name);
	td_buf_printf(o, ",\"write_key\":");
	td_buf_json_str(o, src->write_key);
	td_time_format(src->created_ms, ts);
	td_buf_printf(o, ",\"enabled\":%s,\"created\":\"%s\",\"last_event\":",
		      src->enabled ? "true" : "false", ts);
	if (last_ms) {
		td_time_format(last_ms, ts);
		td_buf_printf(o, "\"%s\"}", ts);
	} else {
		td_buf_printf(o, "null}");
	}
}

/* Worker thread: the last events may need the store's history (health.c). */
static void run_list(void *arg)
{
	struct req *r = arg;
	struct meta_source *l;
	size_t n;
	int rc = meta_source_list(r->srv->deps.meta, &l, &n);
	if (rc) {
		td_log_error("api: cannot list sources: %s", td_strerror(rc));
		http_error(r, 500, "internal", "cannot read the sources; the error is logged");
		api_finish(r);
		return;
	}
	td_buf_reset(&r->resp);
	td_buf_printf(&r->resp, "{\"sources\":[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			td_buf_putc(&r->resp, ',');
		source_json(&r->resp, &l[i], health_last_event_ms(r->srv, l[i].id));
	}
	td_buf_printf(&r->resp, "]}");
	free(l);
	r->status = 200;
	api_finish(r);
}

static void cancel_list(void *arg)
{
	struct req *r = arg;
	r->retry_after = 5;
	http_error(r, 503, "unavailable", "the server is shutting down; retry later");
	api_finish(r);
}

static void create(struct req *r)
{
	cJSON *d = cJSON_ParseWithLength(r->body.data ? r->body.data : "", r->body.len);
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(d, "name");
	struct meta_source src;
	int rc = cJSON_IsObject(d) && cJSON_IsString(name)
		     ? meta_source_create(r->srv->deps.meta, name->valuestring, &src)
		     : TD_EINVAL;
	if (rc == TD_EINVAL) {
		http_error(r, 400, "invalid_request",
			   "send {\"name\":\"...\"}: a source name is 1 to 127 letters, digits, "
			   "'-', '_' or '.'");
	} else if (rc == TD_EEXIST) {
		http_error(r, 409, "conflict",
			   "a source named %s exists already; pick another name",
			   name->valuestring);
	} else if (rc) {
		td_log_error("api: cannot create a source: %s", td_strerror(rc));
		http_error(r, 500, "internal", "could not create the source; the error is logged");
	} else {
		td_log_info("api: source %s created (id %u)", src.name, src.id);
		td_buf_reset(&r->resp);
		source_json(&r->resp, &src, 0);
		r->status = 201;
		r->state = REQ_DONE;
	}
	cJSON_Delete(d);
}

void api_sources(struct req *r)
{
	if (!api_authorize(r))
		return;
	if (!strcmp(r->method, "POST"))
		create(r);
	else
		api_submit(r, run_list, cancel_list, r);
}

void api_stats_live(struct req *r)
{
	long minutes;
	if (!api_authorize(r) || !http_int_param(r, "minutes", 1, LIVE_MINUTES, 60, &minutes))
		return;
	int64_t first = td_now_ms() / 60000 - minutes + 1;
	struct live_counts *c = td_calloc((size_t)minutes, sizeof(*c));
	live_read(0, false, first, (size_t)minutes, c);
	char ts[TD_ISO8601_LEN];
	struct td_buf *o = &r->resp;
	td_buf_reset(o);
	td_time_format(first * 60000, ts);
	td_buf_printf(o, "{\"interval\":\"minute\",\"from\":\"%s\",\"minutes\":[", ts);
	for (long i = 0; i < minutes; i++) {
		td_time_format((first + i) * 60000, ts);
		td_buf_printf(o,
			      "%s{\"t\":\"%s\",\"accepted\":%llu,\"rejected\":%llu,"
			      "\"deduplicated\":%llu}",
			      i ? "," : "", ts, (unsigned long long)c[i].accepted,
			      (unsigned long long)c[i].rejected,
			      (unsigned long long)c[i].deduplicated);
	}
	td_buf_printf(o, "]}");
	free(c);
	r->status = 200;
	r->state = REQ_DONE;
}
