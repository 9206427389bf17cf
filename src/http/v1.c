/*
 * v1.c - the Segment HTTP Tracking API: /v1/{identify,track,page,screen,
 * group,alias,batch,import} and the analytics.js settings document.
 */
#include "http/http_int.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "meta/meta.h"
#include "ops/metrics.h"
#include "wal/wal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Inflates a gzip (or zlib) body into out, at most out->max bytes. */
static int gunzip(const struct td_buf *in, struct td_buf *out)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 32 + MAX_WBITS) != Z_OK) /* 32: detect gzip or zlib */
		return TD_ENOMEM;
	zs.next_in = (Bytef *)in->data;
	zs.avail_in = (uInt)in->len;
	int rc = 0;
	for (;;) {
		if (td_buf_reserve(out, 16384)) {
			rc = TD_ETOOLARGE;
			/* try with whatever room is left up to the cap */
			if (out->len >= out->max)
				break;
			rc = td_buf_reserve(out, out->max - out->len);
			if (rc)
				break;
		}
		size_t room = out->cap - out->len - 1;
		zs.next_out = (Bytef *)out->data + out->len;
		zs.avail_out = (uInt)room;
		int z = inflate(&zs, Z_NO_FLUSH);
		out->len += room - zs.avail_out;
		out->data[out->len] = '\0';
		if (z == Z_STREAM_END) {
			rc = 0;
			break;
		}
		if (z != Z_OK && z != Z_BUF_ERROR) {
			rc = TD_EPARSE;
			break;
		}
		if (z == Z_BUF_ERROR && zs.avail_in == 0) {
			rc = TD_EPARSE; /* truncated stream */
			break;
		}
		if (out->len >= out->max) {
			rc = TD_ETOOLARGE;
			break;
		}
	}
	inflateEnd(&zs);
	return rc;
}

/* Write key from "Authorization: Basic base64(key:)", copied into key. */
static bool basic_key(struct MHD_Connection *c, char *key, size_t cap)
{
	char *pass = NULL;
	char *user = MHD_basic_auth_get_username_password(c, &pass);
	bool ok = user && *user && strlen(user) < cap;
	if (ok)
		snprintf(key, cap, "%s", user);
	if (user)
		MHD_free(user);
	if (pass)
		MHD_free(pass);
	return ok;
}

static void on_durable(void *arg, int status)
{
	struct req *r = arg;
	atomic_store(&r->wal_status, status);
	r->state = REQ_DONE;
	atomic_fetch_sub(&r->srv->suspended, 1);
	MHD_resume_connection(r->conn);
}

static void reject_json(struct td_buf *o, const struct collect_reject *rj)
{
	td_buf_printf(o, "{\"index\":%d,\"messageId\":", rj->index);
	if (rj->message_id)
		td_buf_json_str(o, rj->message_id);
	else
		td_buf_printf(o, "null");
	td_buf_printf(o, ",\"code\":\"%s\",\"field\":", collect_reason_code(rj->reason));
	td_buf_json_str(o, rj->field);
	td_buf_printf(o, ",\"error\":");
	td_buf_json_str(o, rj->error);
	td_buf_putc(o, '}');
}

/* The response for a processed request; rejects listed from the batch. */
static void result_body(struct req *r, const struct collect_batch *b)
{
	struct td_buf *o = &r->resp;
	size_t kept = r->accepted + r->duplicates;
	bool all_bad = b->nrejects > 0 && kept == 0;
	r->status = b->nrejects == 0 ? 200 : all_bad ? 400 : 207;
	td_buf_reset(o);
	td_buf_printf(o, "{\"success\":%s,\"accepted\":%zu,\"duplicates\":%zu,",
		      all_bad ? "false" : "true", r->accepted, r->duplicates);
	if (all_bad) {
		const struct collect_reject *first = &b->rejects[0];
		td_buf_printf(o, "\"code\":\"%s\",\"error\":", collect_reason_code(first->reason));
		if (b->nrejects == 1)
			td_buf_json_str(o, first->error);
		else
			td_buf_json_str(o, "no message in the batch is valid; see \"rejected\"");
		td_buf_putc(o, ',');
	}
	td_buf_printf(o, "\"rejected\":[");
	for (size_t i = 0; i < b->nrejects && i < 1000; i++) {
		if (i)
			td_buf_putc(o, ',');
		reject_json(o, &b->rejects[i]);
	}
	td_buf_printf(o, "]}");
}

static void refuse_for_wal(struct req *r, int rc)
{
	if (rc == TD_EFULL) {
		metrics_request_refused("overloaded");
		r->retry_after = 1;
		http_error(r, 429, "overloaded",
			   "events arrive faster than they are stored (write-ahead log queue "
			   "or event store behind); retry after 1 s");
	} else {
		metrics_request_refused("unavailable");
		r->retry_after = 5;
		http_error(r, 503, "unavailable",
			   "events cannot be stored right now (write-ahead log: %s); nothing "
			   "from this request was acknowledged, retry later",
			   td_strerror(rc));
	}
}

void v1_collect(struct req *r)
{
	struct http_server *s = r->srv;
	struct MHD_Connection *c = r->conn;
	struct td_buf plain;
	struct td_buf *body = &r->body;
	struct collect_batch b;
	collect_batch_init(&b);
	td_buf_init(&plain, r->body.max);

	const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
	if (enc && strcasecmp(enc, "identity") != 0) {
		if (strcasecmp(enc, "gzip") != 0 && strcasecmp(enc, "deflate") != 0) {
			http_error(r, 415, "unsupported_encoding",
				   "Content-Encoding %s is not supported; use gzip or none", enc);
			goto out;
		}
		int rc = gunzip(body, &plain);
		if (rc == TD_ETOOLARGE) {
			metrics_event_rejected(COLLECT_R_TOO_LARGE, 1);
			http_error(r, 413, "too_large",
				   "the decompressed body exceeds %zu bytes (send smaller batches)",
				   plain.max);
			goto out;
		}
		if (rc) {
			http_error(r, 400, "invalid_encoding",
				   "the body is not valid %s data (truncated or corrupt)", enc);
			goto out;
		}
		body = &plain;
	}
	if (!body->data)
		td_buf_append(body, "", 0);

	/* authenticate before anything is kept or quarantined */
	char key[128];
	struct meta_source src;
	if (!basic_key(c, key, sizeof(key)) &&
	    !collect_body_write_key(body->data, body->len, key, sizeof(key))) {
		metrics_request_refused("unauthorized");
		http_error(r, 401, "unauthorized",
			   "no write key: send it as HTTP Basic user name (empty password) or as "
			   "\"writeKey\" in the body");
		goto out;
	}
	int rc = meta_source_by_key(s->deps.meta, key, &src);
	if (rc || !src.enabled) {
		metrics_request_refused("unauthorized");
		http_error(r, 401, "unauthorized",
			   rc == TD_ENOTFOUND || !rc
			       ? (rc ? "unknown write key" : "this source is disabled")
			       : "could not check the write key");
		goto out;
	}

	int64_t now = td_now_ms();
	char peer[64], ip[64];
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	http_peer_ip(ci ? ci->client_addr : NULL, peer, sizeof(peer));
	http_client_ip(&s->cfg, peer,
		       MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For"), ip,
		       sizeof(ip));
	const struct enrich *enr = s->deps.enrich;
	struct collect_origin o = {
	    .source_id = src.id,
	    .received_ms = now,
	    .ip = ip[0] ? ip : NULL,
	    .enrich = enr,
	    .ip_mode = enr ? enrich_ip_mode_for(enr, src.name) : ENRICH_IP_KEEP,
	    .cookie = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Cookie")};
	struct collect_error err;
	rc = collect_prepare(body->data, body->len, r->type, &o, &s->cfg.limits, &b, &err);
	if (rc == TD_ETOOLARGE) {
		metrics_event_rejected(COLLECT_R_TOO_LARGE, 1);
		http_error(r, 413, "too_large", "%s", err.message);
		goto out;
	}
	if (rc) {
		/* the whole body is unusable: keep it in quarantine with the reason */
		struct collect_reject rj = {.index = -1, .reason = err.reason};
		snprintf(rj.error, sizeof(rj.error), "%s", err.message);
		rj.raw = body->data;
		quarantine_write(s->deps.quarantine, src.name, collect_type_name(r->type), &rj,
				 now);
		metrics_event_rejected(err.reason, 1);
		metrics_source_events(src.id, src.name, 0, 0, 1);
		http_error(r, 400, collect_reason_code(err.reason), "%s", err.message);
		if (err.reason == COLLECT_R_INVALID_JSON) { /* line/column for programs */
			r->resp.len--;			    /* drop '}' */
			td_buf_printf(&r->resp, ",\"line\":%d,\"column\":%d}", err.line,
				      err.column);
		}
		goto out;
	}
	if (r->type != COLLECT_BATCH && b.nrejects &&
	    b.rejects[0].reason == COLLECT_R_EVENT_TOO_LARGE) {
		/* a single message over the limit: the request itself is too large */
		quarantine_write(s->deps.quarantine, src.name, collect_type_name(r->type),
				 &b.rejects[0], now);
		metrics_event_rejected(COLLECT_R_EVENT_TOO_LARGE, 1);
		metrics_source_events(src.id, src.name, 0, 0, 1);
		http_error(r, 413, "too_large", "%s", b.rejects[0].error);
		goto out;
	}
	for (size_t i = 0; i < b.nrejects; i++) {
		quarantine_write(s->deps.quarantine, src.name, collect_type_name(r->type),
				 &b.rejects[i], now);
		metrics_event_rejected(b.rejects[i].reason, 1);
	}

	struct ingest_result res;
	ingest_submit(s->deps.ingest, &b, now, &res);
	if (res.error) {
		refuse_for_wal(r, res.error);
		goto out;
	}
	r->accepted = res.accepted;
	r->duplicates = res.duplicates;
	r->rejected = b.nrejects;
	r->source_id = src.id;
	snprintf(r->source_name, sizeof(r->source_name), "%s", src.name);
	result_body(r, &b); /* status and body now; sent after the commit */
	if (res.wait_lsn && wal_durability(s->deps.wal) == WAL_SYNC) {
		/* The response is ready; it is sent once the WAL commit is durable
		 * (v1_finish, after on_durable resumes the connection). Suspend
		 * before registering: the commit may already be done. */
		r->waited = true;
		r->state = REQ_WAITING;
		atomic_fetch_add(&s->suspended, 1);
		MHD_suspend_connection(c);
		wal_notify(s->deps.wal, res.wait_lsn, on_durable, r);
		goto out;
	}
	metrics_event_accepted(res.accepted);
	metrics_event_duplicate(res.duplicates);
	metrics_source_events(src.id, src.name, res.accepted, res.duplicates, b.nrejects);
	r->state = REQ_DONE;
out:
	collect_batch_release(&b);
	td_buf_release(&plain);
}

void v1_finish(struct req *r)
{
	int st = atomic_load(&r->wal_status);
	if (st) {
		refuse_for_wal(r, st);
		return;
	}
	metrics_event_accepted(r->accepted);
	metrics_event_duplicate(r->duplicates);
	metrics_source_events(r->source_id, r->source_name, r->accepted, r->duplicates,
			      r->rejected);
}

void v1_settings(struct req *r, const char *key)
{
	struct meta_source src;
	if (meta_source_by_key(r->srv->deps.meta, key, &src) || !src.enabled) {
		http_error(r, 404, "not_found", "unknown or disabled write key");
		return;
	}
	const char *host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Host");
	const char *proto = http_request_https(r) ? "https" : "http";
	char api_host[300];
	snprintf(api_host, sizeof(api_host), "%s/v1", host && *host ? host : "localhost");
	struct td_buf *o = &r->resp;
	td_buf_printf(o, "{\"integrations\":{\"Segment.io\":{\"apiKey\":");
	td_buf_json_str(o, key);
	td_buf_printf(o, ",\"apiHost\":");
	td_buf_json_str(o, api_host);
	td_buf_printf(o,
		      ",\"protocol\":\"%s\",\"unbundledIntegrations\":[],"
		      "\"addBundledMetadata\":true,\"maybeBundledConfigIds\":{}}},"
		      "\"plan\":{\"track\":{\"__default\":{\"enabled\":true,\"integrations\":{}}},"
		      "\"identify\":{\"__default\":{\"enabled\":true}},"
		      "\"group\":{\"__default\":{\"enabled\":true}}},"
		      "\"edgeFunction\":{},\"analyticsNextEnabled\":true,"
		      "\"middlewareSettings\":{},\"enabledMiddleware\":{},"
		      "\"metrics\":{\"sampleRate\":0},\"legacyVideoPluginsEnabled\":false,"
		      "\"remotePlugins\":[]}",
		      proto);
	r->status = 200;
	r->state = REQ_DONE;
}
