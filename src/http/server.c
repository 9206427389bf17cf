/*
 * server.c - libmicrohttpd plumbing: routing, body accumulation with caps,
 * suspend/resume around the WAL commit, responses and CORS.
 */
#include "http/http_int.h"
#include "base/log.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "ops/metrics.h"
#include "wal/wal.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Bodies over a limit but at most this large are read (and dropped) before
 * the 413 is sent. */
#define HTTP_DRAIN_MAX (64u << 20)

void http_error(struct req *r, int status, const char *code, const char *fmt, ...)
{
	struct td_buf msg; /* whole, not cut: a query error may quote long names */
	td_buf_init(&msg, 64u << 10);
	va_list ap;
	va_start(ap, fmt);
	td_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	r->status = status;
	td_buf_reset(&r->resp);
	td_buf_printf(&r->resp, "{\"success\":false,\"code\":\"%s\",\"error\":", code);
	td_buf_json_str(&r->resp, msg.data ? msg.data : "");
	td_buf_putc(&r->resp, '}');
	td_buf_release(&msg);
	r->state = REQ_DONE;
}

void http_add_header(struct req *r, const char *name, const char *value)
{
	if (r->nheaders < TD_ARRAY_LEN(r->headers)) {
		r->headers[r->nheaders].name = name;
		r->headers[r->nheaders].value = td_strdup(value);
		r->nheaders++;
	}
}

bool http_request_https(struct req *r)
{
	char peer[64];
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	http_peer_ip(ci ? ci->client_addr : NULL, peer, sizeof(peer));
	const char *xfp =
	    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Forwarded-Proto");
	return xfp && http_is_trusted(&r->srv->cfg, peer) && !strcasecmp(xfp, "https");
}

/* A header list of tokens, commas and blanks only, of sane length. */
static bool is_header_list(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == ',' || c == ' '))
			return false;
	}
	return n > 0 && n < 1024;
}

/*
 * CORS: any page may send events (the write key is the credential, as with
 * Segment). Preflights get back the headers they ask for: SDKs add their own
 * (analytics.js sends X-Retry-Count on every retry, and a preflight refusing
 * it would make the browser drop the retried events).
 */
static void add_cors(struct req *r, struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
	MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
	const char *asked =
	    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Access-Control-Request-Headers");
	MHD_add_response_header(
	    resp, "Access-Control-Allow-Headers",
	    asked && is_header_list(asked)
		? asked
		: "Authorization, Content-Type, Content-Encoding, X-Retry-Count");
	MHD_add_response_header(resp, "Access-Control-Expose-Headers", "Retry-After");
	MHD_add_response_header(resp, "Access-Control-Max-Age", "86400");
}

/*
 * On every response, so the page and whatever it fetches are covered: no
 * inline or foreign scripts (the page is files of this origin only), no
 * framing (clickjacking), no MIME sniffing, no full URL leaking to other
 * sites. Charts set element styles from script (CSSOM), which style-src
 * does not restrict.
 */
static void add_security(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Content-Security-Policy",
				"default-src 'self'; script-src 'self'; style-src 'self'; "
				"img-src 'self' data:; connect-src 'self'; "
				"object-src 'none'; base-uri 'none'; form-action 'self'; "
				"frame-ancestors 'none'");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "same-origin");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
}

static enum MHD_Result send_response(struct req *r)
{
	if (r->prepared) {
		add_security(r->prepared);
		enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, r->prepared);
		MHD_destroy_response(r->prepared);
		r->prepared = NULL;
		return ret;
	}
	size_t len = r->resp.len;
	char *body = td_buf_steal(&r->resp);
	if (len && (!r->content_type || strncmp(r->content_type, "text/", 5) != 0) &&
	    body[len - 1] != '\n') {
		/* JSON bodies end with a newline for curl users */
		body = td_realloc(body, len + 2);
		body[len++] = '\n';
		body[len] = '\0';
	}
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type",
				r->content_type ? r->content_type : "application/json");
	add_cors(r, resp);
	add_security(resp);
	for (size_t i = 0; i < r->nheaders; i++)
		MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
	if (r->allow)
		MHD_add_response_header(resp, "Allow", r->allow);
	if (r->retry_after) {
		char ra[16];
		snprintf(ra, sizeof(ra), "%d", r->retry_after);
		MHD_add_response_header(resp, "Retry-After", ra);
	}
	if (r->status == 401)
		MHD_add_response_header(resp, "WWW-Authenticate",
					r->www_authenticate ? r->www_authenticate
							    : "Basic realm=\"tandem\"");
	enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void ops_get(struct req *r, const char *url)
{
	struct http_server *s = r->srv;
	r->status = 200;
	if (strcmp(url, "/health") == 0) {
		td_buf_printf(&r->resp, "{\"status\":\"ok\"}");
	} else if (strcmp(url, "/ready") == 0) {
		struct wal_stats st;
		wal_get_stats(s->deps.wal, &st);
		if (!st.healthy) {
			http_error(r, 503, "unavailable", "write-ahead log: %s",
				   td_strerror(st.last_error));
			r->retry_after = 5;
		} else {
			td_buf_printf(&r->resp, "{\"status\":\"ready\"}");
		}
	} else if (strcmp(url, "/metrics") == 0) {
		r->content_type = "text/plain; version=0.0.4; charset=utf-8";
		metrics_render(&r->resp, s->deps.wal, s->deps.ingest);
		if (s->deps.store)
			metrics_render_store(&r->resp, s->deps.store, s->deps.wal);
	}
	r->state = REQ_DONE;
}

static bool route_get(struct req *r, const char *url)
{
	if (!strcmp(url, "/health") || !strcmp(url, "/ready") || !strcmp(url, "/metrics")) {
		ops_get(r, url);
		return true;
	}
	static const char pre[] = "/v1/projects/", suf[] = "/settings";
	size_t n = strlen(url);
	if (!strncmp(url, pre, sizeof(pre) - 1) && n > sizeof(pre) - 1 + sizeof(suf) - 1 &&
	    !strcmp(url + n - (sizeof(suf) - 1), suf)) {
		char key[128];
		size_t klen = n - (sizeof(pre) - 1) - (sizeof(suf) - 1);
		if (klen >= sizeof(key) || memchr(url + sizeof(pre) - 1, '/', klen)) {
			http_error(r, 404, "not_found", "unknown write key");
			return true;
		}
		memcpy(key, url + sizeof(pre) - 1, klen);
		key[klen] = '\0';
		v1_settings(r, key);
		return true;
	}
	return false;
}

/*
 * Prepares to read a body of at most cap bytes. A body over the limit is
 * read and dropped before the 413 (see on_request), because closing on a
 * client that is still sending makes it see a connection reset instead of
 * the answer. Only an absurd size is refused before reading: then the 413 is
 * set and false returned.
 */
static bool start_body(struct req *r, const char *url, size_t cap, const char *hint)
{
	const char *cl =
	    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long clen = cl ? strtoull(cl, NULL, 10) : 0;
	if (clen > cap && clen > HTTP_DRAIN_MAX) {
		http_error(r, 413, "too_large", "the body is %s bytes; %s takes at most %zu (%s)",
			   cl, url, cap, hint);
		return false;
	}
	td_buf_init(&r->body, cap);
	if (clen && clen <= cap) /* one allocation for the whole body */
		td_buf_reserve(&r->body, (size_t)clen);
	return true;
}

/* The dashboard's endpoints (docs/dashboard.md): answered by the handler
 * once the body (at most 4 KiB: a name, a token) is in. */
static const struct {
	const char *path;
	const char *allow; /* the methods, for the check and the 405's Allow */
	void (*handler)(struct req *r);
} api_routes[] = {
    {"/api/session", "GET, HEAD, POST, DELETE, OPTIONS", api_session},
    {"/api/sources", "GET, HEAD, POST, OPTIONS", api_sources},
    {"/api/stats/live", "GET, HEAD, OPTIONS", api_stats_live},
    {"/api/health/data", "GET, HEAD, OPTIONS", api_health_data},
};

static bool method_allowed(const char *allow, const char *method)
{
	size_t n = strlen(method);
	for (const char *p = allow; (p = strstr(p, method)); p += n)
		if ((p == allow || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
			return true;
	return false;
}

static void route_api(struct req *r, const char *url, const char *method)
{
	for (size_t i = 0; i < TD_ARRAY_LEN(api_routes); i++) {
		if (strcmp(url, api_routes[i].path) != 0)
			continue;
		if (!r->method[0] || !method_allowed(api_routes[i].allow, method)) {
			r->allow = api_routes[i].allow;
			http_error(r, 405, "method_not_allowed", "%s takes %s, not %s", url,
				   api_routes[i].allow, method);
			return;
		}
		if (start_body(r, url, 4096, "the dashboard's requests are small"))
			r->handler = api_routes[i].handler;
		return;
	}
	if (!strncmp(url, "/api/accounts/", 14) && url[14]) {
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
			r->allow = "GET, HEAD, OPTIONS";
			http_error(r, 405, "method_not_allowed", "%s takes GET, not %s", url,
				   method);
			return;
		}
		r->account = true;
		r->profile_id = td_strdup(url + 14);
		return;
	}
	if (!strncmp(url, "/api/profiles/", 14) || !strcmp(url, "/api/profiles")) {
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
			r->allow = "GET, HEAD, OPTIONS";
			http_error(r, 405, "method_not_allowed", "%s takes GET, not %s", url,
				   method);
			return;
		}
		/* answered on the next call, as a request whose (empty) body is in */
		r->profile_id = td_strdup(url[13] ? url + 14 : ""); /* "": a search */
		return;
	}
	if (!strcmp(url, "/api/computed-traits") || !strncmp(url, "/api/computed-traits/", 21)) {
		/* answered once the body (a PUT's definition) is in */
		const char *name = url[20] == '/' && url[21] ? url + 21 : NULL;
		size_t n = strlen(method) + 2 + (name ? strlen(name) : 0);
		r->traits_call = td_malloc(n);
		snprintf(r->traits_call, n, "%s%s%s", method, name ? " " : "", name ? name : "");
		start_body(r, url, 64u << 10, "a computed trait's definition is small");
		return;
	}
	if (!strcmp(url, "/api/costs")) {
		/* answered once the body (a POST's rows) is in */
		r->costs_call = !strcmp(method, "POST")	  ? "POST"
				: !strcmp(method, "GET")  ? "GET"
				: !strcmp(method, "HEAD") ? "HEAD"
							  : "other";
		start_body(r, url, HTTP_COSTS_BODY_MAX, "send the costs in parts");
		return;
	}
	if (strcmp(url, "/api/query") != 0) {
		http_error(
		    r, 404, "not_found",
		    "no such endpoint: %s %s (queries go to POST /api/query, see "
		    "docs/queries.md; profiles are at GET /api/profiles/TYPE:VALUE, computed "
		    "traits at /api/computed-traits, advertising costs at /api/costs)",
		    method, url);
		return;
	}
	if (strcmp(method, "POST") != 0) {
		r->allow = "POST, OPTIONS";
		http_error(r, 405, "method_not_allowed",
			   "%s takes POST with a JSON query document, not %s", url, method);
		return;
	}
	r->query = start_body(r, url, r->srv->cfg.query.max_body, "see docs/queries.md, Limits");
}

/* First call for a request: decide what it is and whether to read a body. */
static void route(struct req *r, const char *url, const char *method)
{
	enum collect_type t;
	bool is_v1 = collect_type_from_path(url, &t);
	if (!strcmp(method, "OPTIONS")) {
		r->status = 204;
		r->state = REQ_DONE;
		return;
	}
	if (is_v1) {
		if (strcmp(method, "POST") != 0) {
			r->allow = "POST, OPTIONS";
			http_error(r, 405, "method_not_allowed",
				   "%s takes POST with a JSON body, not %s", url, method);
			return;
		}
		size_t cap = t == COLLECT_BATCH ? r->srv->cfg.limits.max_batch_bytes
						: r->srv->cfg.limits.max_event_bytes;
		if (!start_body(r, url, cap, "send smaller batches")) {
			metrics_event_rejected(COLLECT_R_TOO_LARGE, 1);
			return;
		}
		r->collect = true;
		r->type = t;
		return;
	}
	if (!strncmp(url, "/api/", 5) || !strcmp(url, "/api")) {
		route_api(r, url, method);
		return;
	}
	if (!strcmp(method, "GET") || !strcmp(method, "HEAD")) {
		if (!route_get(r, url))
			web_serve(r, url);
		return;
	} else if (!strcmp(url, "/health") || !strcmp(url, "/ready") || !strcmp(url, "/metrics")) {
		r->allow = "GET, HEAD";
		http_error(r, 405, "method_not_allowed", "%s takes GET", url);
		return;
	}
	http_error(r, 404, "not_found",
		   "no such endpoint: %s %s (the collector is under /v1/, see docs/collector.md)",
		   method, url);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct http_server *s = cls;
	struct req *r = *con_cls;
	if (!r) {
		r = td_calloc(1, sizeof(*r));
		r->srv = s;
		r->conn = conn;
		r->t0 = td_mono_ns();
		td_buf_init(&r->resp, 64u << 20);
		td_buf_init(&r->body, 0);
		*con_cls = r;
		if (strlen(method) < sizeof(r->method))
			memcpy(r->method, method, strlen(method) + 1);
		route(r, url, method);
		/* A GET is answered on the next call, after MHD saw the request
		 * end: answering now would make it close the connection. */
		if (r->state == REQ_DONE && strcmp(method, "GET") && strcmp(method, "HEAD"))
			return send_response(r);
		return MHD_YES;
	}
	if (r->state == REQ_READING && *upload_data_size) {
		if (!r->body_too_large &&
		    td_buf_append(&r->body, upload_data, *upload_data_size) != 0)
			r->body_too_large = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->state == REQ_READING) {
		if (r->body_too_large) {
			http_error(
			    r, 413, "too_large", "the body exceeds %zu bytes (%s)", r->body.max,
			    r->query ? "the limit of a query document" : "send smaller batches");
			if (r->collect)
				metrics_event_rejected(COLLECT_R_TOO_LARGE, 1);
		} else if (r->handler) {
			r->handler(r);
		} else if (r->query) {
			api_query(r);
		} else if (r->profile_id) {
			api_profile(r, r->profile_id);
		} else if (r->costs_call) {
			api_costs(r, r->costs_call);
		} else if (r->traits_call) {
			char *sp = strchr(r->traits_call, ' ');
			if (sp)
				*sp = '\0';
			api_computed_traits(r, r->traits_call, sp ? sp + 1 : NULL);
		} else {
			v1_collect(r);
		}
		if (r->state == REQ_WAITING)
			return MHD_YES; /* suspended; called again after resume */
	}
	if (r->state == REQ_WAITING)
		return MHD_YES; /* spurious call while suspended */
	if (r->state == REQ_DONE && *upload_data_size)
		return send_response(r); /* a body nobody reads (a GET's): answer, then close */
	if (r->waited) {
		r->waited = false;
		v1_finish(r);
	}
	return send_response(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;
	if (!r)
		return;
	if (r->collect)
		metrics_request_observe((double)(td_mono_ns() - r->t0) / 1e9);
	td_buf_release(&r->body);
	td_buf_release(&r->resp);
	if (r->prepared)
		MHD_destroy_response(r->prepared);
	for (size_t i = 0; i < r->nheaders; i++)
		free(r->headers[i].value);
	free(r->profile_id);
	free(r->traits_call);
	free(r);
	*con_cls = NULL;
}

int http_start(struct http_server **out, const struct http_config *cfg,
	       const struct http_deps *deps, uint16_t *port_out)
{
	struct http_server *s = td_calloc(1, sizeof(*s));
	s->cfg = *cfg;
	s->deps = *deps;
	struct http_query_limits *ql = &s->cfg.query;
	ql->threads = ql->threads ? ql->threads : HTTP_QUERY_THREADS;
	ql->queue = ql->queue ? ql->queue : HTTP_QUERY_QUEUE;
	/* the query language reads at most 1 MiB of text */
	ql->max_body =
	    ql->max_body && ql->max_body < HTTP_QUERY_MAX_BODY ? ql->max_body : HTTP_QUERY_MAX_BODY;
	ql->max_result = ql->max_result ? ql->max_result : HTTP_QUERY_MAX_RESULT;
	ql->max_memory = ql->max_memory ? ql->max_memory : HTTP_QUERY_MAX_MEMORY;
	unsigned threads = cfg->threads;
	if (!threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (unsigned)n : 1;
	}

	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	/* Not MHD_USE_TURBO: it skips shutdown() before close, so a client still
	 * uploading a body we refused early (413) can get a reset instead of the
	 * answer */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, cfg->host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(cfg->port);
	} else if (inet_pton(AF_INET6, cfg->host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(cfg->port);
		flags |= MHD_USE_IPv6;
	} else {
		td_log_error("http: cannot listen on '%s': not an IPv4 or IPv6 address", cfg->host);
		free(s);
		return TD_EINVAL;
	}
	if (http_pool_start(&s->queries, ql->threads, ql->queue)) {
		free(s);
		return TD_ENOMEM;
	}
	s->sessions = session_table_new();
	s->health = health_new();
	live_start(td_now_ms());
	s->daemon = MHD_start_daemon(
	    flags, cfg->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
	    (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE, threads,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)120, MHD_OPTION_CONNECTION_LIMIT, (unsigned)20000,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
	if (!s->daemon) {
		td_log_error("http: could not listen on %s:%u (address in use, or not allowed)",
			     cfg->host, cfg->port);
		http_pool_stop(s->queries);
		session_table_free(s->sessions);
		health_free(s->health);
		free(s);
		return TD_EIO;
	}
	health_warm(s);
	const union MHD_DaemonInfo *info =
	    MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	*port_out = info ? info->port : cfg->port;
	*out = s;
	return 0;
}

void http_stop(struct http_server *s)
{
	if (!s)
		return;
	MHD_quiesce_daemon(s->daemon);
	/* Suspended connections must be resumed before the daemon stops: queries
	 * still queued are answered 503, running ones finish; connections
	 * waiting for the WAL are resumed as soon as it commits. */
	http_pool_close(s->queries);
	for (int i = 0; i < 1000 && atomic_load(&s->suspended) > 0; i++)
		usleep(10000);
	MHD_stop_daemon(s->daemon);
	/* only now can no event-loop thread submit to the pool any more */
	http_pool_stop(s->queries);
	session_table_free(s->sessions);
	health_free(s->health);
	free(s);
}
