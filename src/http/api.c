/*
 * api.c - POST /api/query: bearer-token check on the loop thread, then the
 * query on a worker thread over a store snapshot (docs/queries.md, "Running
 * queries", has the statuses).
 */
#include "http/http_int.h"
#include "base/log.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "meta/meta.h"
#include "query/query.h"
#include "store/store.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Queries slower than this are logged. */
#define API_SLOW_QUERY_MS 1000

/* Sends the response a worker prepared: the connection wakes up. */
void api_finish(struct req *r)
{
	struct http_server *s = r->srv;
	r->state = REQ_DONE;
	atomic_fetch_sub(&s->suspended, 1);
	MHD_resume_connection(r->conn);
}

/* Sets the response for a failed query_run_limited(). */
static void query_failed(struct req *r, int rc, const char *err)
{
	const struct http_query_limits *lim = &r->srv->cfg.query;
	switch (rc) {
	case TD_EINVAL:
		http_error(r, 400, "invalid_query", "%s", err);
		break;
	case TD_ETOOLARGE: /* the result: bodies are capped below the query text limit */
		http_error(r, 400, "result_too_large",
			   "the result is larger than %zu bytes (the server's limit); narrow "
			   "the query: a shorter date range, a coarser interval, fewer series "
			   "or steps, a smaller breakdown_limit, or a smaller page (limit)",
			   lim->max_result);
		break;
	case TD_ENOMEM: {
		bool mib = lim->max_memory >= (1u << 20);
		http_error(r, 400, "query_too_expensive",
			   "the query needs more than %zu %s of memory (the server's limit per "
			   "query); narrow it: a shorter date range, fewer steps or series, "
			   "filters on the events",
			   mib ? lim->max_memory >> 20 : lim->max_memory, mib ? "MiB" : "bytes");
		break;
	}
	default:
		/* TD_ECORRUPT, a store read error: ours, not the client's */
		td_log_error("api: query failed: %s: %s", td_strerror(rc), err);
		http_error(r, 500, "internal",
			   "the query failed on the server (%s); the error is logged",
			   td_strerror(rc));
		break;
	}
}

/* Worker thread: runs the query on a snapshot, so ingest goes on meanwhile. */
static void run_query(void *arg)
{
	struct req *r = arg;
	struct http_server *s = r->srv;
	struct query_limits limits = {.max_memory = s->cfg.query.max_memory};
	struct td_buf out;
	char err[1024];
	td_buf_init(&out, s->cfg.query.max_result);
	uint64_t t0 = td_mono_ns();
	struct store_snap *snap = store_snapshot(s->deps.store);
	struct query_source src = *store_snap_source(snap);
	struct query_costs costs;
	meta_costs_query_source(s->deps.meta, &costs);
	src.costs = &costs;
	int rc = query_run_limited(r->body.data ? r->body.data : "", r->body.len, &src, &limits,
				   &out, err, sizeof(err));
	store_snap_release(snap);
	uint64_t ms = (td_mono_ns() - t0) / 1000000;
	if (ms >= API_SLOW_QUERY_MS)
		td_log_info("api: slow query: %llu ms, %zu result bytes, status %s",
			    (unsigned long long)ms, out.len, rc ? td_strerror(rc) : "ok");
	if (rc) {
		query_failed(r, rc, err);
	} else {
		td_buf_release(&r->resp);
		r->resp = out; /* the request owns the result now */
		td_buf_init(&out, 0);
		r->status = 200;
	}
	td_buf_release(&out);
	api_finish(r);
}

/* The pool stopped before the query started. */
static void cancel_query(void *arg)
{
	struct req *r = arg;
	r->retry_after = 5;
	http_error(r, 503, "unavailable", "the server is shutting down; retry later");
	api_finish(r);
}

/* The token from "Authorization: Bearer TOKEN" (scheme case-insensitive). */
static const char *bearer_token(struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if (!h || strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
		return NULL;
	h += 6;
	while (*h == ' ' || *h == '\t')
		h++;
	return *h ? h : NULL;
}

/*
 * A request sent with the session cookie by a browser: refuse a state change
 * (not GET/HEAD) whose Origin is another site. SameSite=Strict already keeps
 * the cookie off cross-site requests; this is the second lock on that door.
 */
static bool cross_site(struct req *r)
{
	if (!strcmp(r->method, "GET") || !strcmp(r->method, "HEAD"))
		return false;
	const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
	const char *host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Host");
	if (!origin)
		return false; /* not sent by browsers on same-origin GETs; other clients */
	const char *p = strstr(origin, "://");
	return !host || !p || strcmp(p + 3, host) != 0;
}

bool api_authorize_role(struct req *r, char *role, size_t cap, int64_t *expires_ms)
{
	const char *token = bearer_token(r->conn);
	char from_cookie[META_TOKEN_LEN + 1];
	bool cookie = false;
	r->www_authenticate = "Bearer realm=\"tandem\"";
	*expires_ms = 0;
	if (!token) {
		int rc = session_lookup(r, from_cookie, sizeof(from_cookie), expires_ms);
		if (rc == TD_EAUTH) {
			http_error(r, 401, "unauthorized",
				   "the session has expired or was signed out; sign in again");
			return false;
		}
		if (rc) {
			http_error(
			    r, 401, "unauthorized",
			    "no API token: send it as \"Authorization: Bearer TOKEN\" or sign "
			    "in (POST /api/session) for a session cookie ('tandem token create' "
			    "makes a token; the first 'tandem serve' saved an admin token to "
			    "DATA/admin-token)");
			return false;
		}
		token = from_cookie;
		cookie = true;
	}
	int rc = meta_token_check(r->srv->deps.meta, token, role, cap);
	if (rc == TD_EAUTH && cookie) {
		session_end_token(r->srv->sessions, token);
		http_error(r, 401, "unauthorized",
			   "the API token this session was opened with was revoked; sign in again");
	} else if (rc == TD_EAUTH) {
		r->www_authenticate = "Bearer realm=\"tandem\", error=\"invalid_token\"";
		http_error(r, 401, "unauthorized", "unknown or revoked API token");
	} else if (rc) {
		td_log_error("api: cannot check an API token: %s", td_strerror(rc));
		http_error(r, 500, "internal",
			   "could not check the API token; the error is logged");
	} else if (cookie && cross_site(r)) {
		http_error(r, 403, "forbidden",
			   "a session cookie sent from another site (Origin does not match Host) "
			   "cannot change anything");
		rc = TD_EAUTH;
	}
	if (cookie)
		OPENSSL_cleanse(from_cookie, sizeof(from_cookie));
	return rc == 0;
}

/* Admin tokens only, until roles are defined per endpoint. Returns true
 * when the request may go on; else the response is set. */
bool api_authorize(struct req *r)
{
	char role[16];
	int64_t expires;
	if (!api_authorize_role(r, role, sizeof(role), &expires))
		return false;
	if (strcmp(role, "admin") != 0) {
		http_error(r, 403, "forbidden",
			   "this token has the role %s; the API needs an admin token for now",
			   role);
		return false;
	}
	return true;
}

bool api_ready(struct req *r)
{
	if (!api_authorize(r))
		return false;
	if (!r->srv->deps.store) {
		r->retry_after = 5;
		http_error(r, 503, "unavailable",
			   "the event store is not open yet; retry in a few seconds");
		return false;
	}
	return true;
}

bool api_submit(struct req *r, void (*run)(void *), void (*cancel)(void *), void *arg)
{
	struct http_server *s = r->srv;
	/* Suspend before queueing: the worker may finish (and resume) first. */
	r->state = REQ_WAITING;
	atomic_fetch_add(&s->suspended, 1);
	MHD_suspend_connection(r->conn);
	struct http_job job = {.run = run, .cancel = cancel, .arg = arg};
	int rc = http_pool_submit(s->queries, &job);
	if (rc) {
		r->retry_after = rc == TD_EFULL ? 1 : 5;
		http_error(r, 503, "unavailable",
			   rc == TD_EFULL ? "too many requests are waiting; retry in a second"
					  : "the server is shutting down; retry later");
		api_finish(r);
		return false;
	}
	return true;
}

void api_query(struct req *r)
{
	if (!api_ready(r))
		return;
	const char *enc = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Encoding");
	if (enc && strcasecmp(enc, "identity") != 0) {
		http_error(r, 415, "unsupported_encoding",
			   "Content-Encoding %s is not supported for queries; send the JSON as is",
			   enc);
		return;
	}
	api_submit(r, run_query, cancel_query, r);
}
