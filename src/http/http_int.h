/*
 * http_int.h - shared between the HTTP server's files (not public).
 */
#ifndef TD_HTTP_HTTP_INT_H
#define TD_HTTP_HTTP_INT_H

#include "http/http.h"
#include "base/buf.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <sys/socket.h>

struct http_pool;
struct http_sessions;

#define HTTP_MAX_SESSIONS    1024
#define HTTP_SESSION_SECONDS 43200 /* 12 h */

struct http_server {
	struct MHD_Daemon *daemon;
	struct http_config cfg; /* query limits filled with their defaults */
	struct http_deps deps;
	struct http_pool *queries;	/* runs POST /api/query */
	struct http_sessions *sessions; /* dashboard sign-ins (session.c) */
	struct http_health *health;	/* history from before the start (health.c) */
	_Atomic int suspended;		/* connections waiting for the WAL or a query */
};

enum req_state {
	REQ_READING = 0,
	REQ_WAITING, /* suspended until the WAL commit or the query's end */
	REQ_DONE,    /* response ready to queue */
};

/* One request. Owned by the connection (con_cls); freed on completion. */
struct req {
	struct http_server *srv;
	struct MHD_Connection *conn;
	enum req_state state;
	char method[8];			/* "GET", "POST", ... ("" if longer) */
	void (*handler)(struct req *r); /* called once the body is in (route_api) */
	bool collect;			/* a /v1 collector POST */
	bool query;			/* a POST /api/query */
	char *profile_id;		/* a GET /api/profiles/{id} or /api/accounts/{id}: the id */
	bool account;			/* ... the latter */
	char *traits_call; /* a /api/computed-traits call: "METHOD NAME" ("METHOD" for the list) */
	const char *costs_call; /* a /api/costs call: its method (a static string) */
	bool body_too_large;
	enum collect_type type;
	uint64_t t0;
	struct td_buf body;
	int status;
	struct td_buf resp;
	struct MHD_Response *prepared; /* a whole response (web.c); else resp is the body */
	struct {
		const char *name; /* static */
		char *value;	  /* malloc'd, freed with the request */
	} headers[2];		  /* extra response headers (Set-Cookie) */
	size_t nheaders;
	const char *content_type;
	const char *allow;	      /* Allow header for 405 */
	const char *www_authenticate; /* for 401; NULL = HTTP Basic (write keys) */
	int retry_after;	      /* seconds; 0 = no header */
	bool waited;		      /* suspended for the WAL; v1_finish completes it */
	size_t accepted, duplicates, rejected;
	uint32_t source_id;
	char source_name[128];
	_Atomic int wal_status;
};

bool http_is_trusted(const struct http_config *cfg, const char *ip);
void http_client_ip(const struct http_config *cfg, const char *peer, const char *xff, char *out,
		    size_t cap);
void http_peer_ip(const struct sockaddr *sa, char *out, size_t cap);

/* Adds a response header (at most 2 per request); value is copied. */
void http_add_header(struct req *r, const char *name, const char *value);

/* Sets a JSON error response {"success":false,"code":..,"error":..}. */
void http_error(struct req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The collector: called once the whole body of a /v1 POST is in r->body. */
void v1_collect(struct req *r);
/* Completes a request that waited for the WAL (sets the response). */
void v1_finish(struct req *r);
/* GET /v1/projects/{key}/settings */
void v1_settings(struct req *r, const char *key);

/* POST /api/query: called once the whole body is in r->body. Answers at
 * once (auth, 503) or suspends the connection and hands the query to the
 * pool; the worker sets the response and resumes it. */
void api_query(struct req *r);
/* GET /api/profiles/{type}:{value} (profiles.c), id = "{type}:{value}". */
void api_profile(struct req *r, const char *id);
/* /api/computed-traits[/name] (traits_api.c); a PUT's body is in r->body. */
void api_computed_traits(struct req *r, const char *method, const char *name);
/* /api/costs (costs_api.c): GET, or POST with the rows in r->body (at most
 * HTTP_COSTS_BODY_MAX bytes). */
#define HTTP_COSTS_BODY_MAX (8u << 20)
void api_costs(struct req *r, const char *method);
/* Shared by the /api/ handlers: the admin bearer check (false: the response
 * is set) and the resume of a request a worker answered. */
bool api_authorize(struct req *r);
/* api_authorize plus a 503 while the store is not open. */
bool api_ready(struct req *r);
/* Suspends the request and hands run(arg) to the worker pool (cancel(arg)
 * if the pool stops first); false when the pool refused it: the 503 is set
 * and the request resumed, and arg stays the caller's. */
bool api_submit(struct req *r, void (*run)(void *), void (*cancel)(void *), void *arg);
void api_finish(struct req *r);

/* Sessions (session.c). session_lookup: the token of the request's session
 * cookie into token (cap bytes) and its expiry; TD_ENOTFOUND without a
 * cookie, TD_EAUTH for an unknown or expired one. */
struct http_sessions *session_table_new(void);
void session_table_free(struct http_sessions *t);
int session_lookup(struct req *r, char *token, size_t cap, int64_t *expires_ms);
/* Ends every session opened with token (it was revoked). */
void session_end_token(struct http_sessions *t, const char *token);
/* /api/session: GET, POST (sign in), DELETE (sign out). */
void api_session(struct req *r);
/* Did the client reach us over HTTPS (X-Forwarded-Proto from a trusted proxy)? */
bool http_request_https(struct req *r);

/* The dashboard's endpoints (dashboard.c, health.c). */
void api_sources(struct req *r);
void api_stats_live(struct req *r);
void api_health_data(struct req *r);
struct http_health *health_new(void);
void health_free(struct http_health *h);
/* Starts the scan of the history on a worker, so that the first page load
 * finds it done. */
void health_warm(struct http_server *s);
/* When the source's newest event arrived: since the start from live.c,
 * before it from the store (scanned once; a call before health_warm's
 * scan ended waits for it: worker threads only). 0 if none is known. */
int64_t health_last_event_ms(struct http_server *s, uint32_t source_id);
/* A whole number in [lo, hi] from the query string, or def if absent;
 * false (400 set) if it is something else. */
bool http_int_param(struct req *r, const char *name, long lo, long hi, long def, long *out);

/* Who sent the request: a bearer token or a session cookie whose token is
 * valid, any role; *expires_ms the session's end (0 for a bearer token).
 * false: the 401/403/500 response is set. */
bool api_authorize_role(struct req *r, char *role, size_t cap, int64_t *expires_ms);

/*
 * The dashboard's files (web.c). The build embeds them: a generated C file
 * (tools/webembed.c writes it) defines web_assets[], sorted by path, each
 * with its ETag (a quoted hash of the content) and, where it is smaller, a
 * gzip variant (gz NULL otherwise). All static: never freed.
 */
struct web_asset {
	const char *path; /* "/index.html", "/assets/app.js" */
	const char *type; /* Content-Type */
	const char *etag; /* "\"16 hex\"" */
	const unsigned char *data;
	size_t len;
	const unsigned char *gz;
	size_t gzlen;
};
extern const struct web_asset web_assets[];
extern const size_t web_nassets;

/* Content-Type from the file name's extension (application/octet-stream if
 * unknown); *compressible (may be NULL) says whether gzip is worth trying. */
const char *http_mime_type(const char *path, bool *compressible);
/* A URL path that may name a dashboard file: '/'-separated names of
 * letters, digits, '.', '_' and '-', none empty or starting with '.' (so no
 * "..", no hidden files), at most 512 bytes. */
bool http_web_path_ok(const char *u);
/* Does the header list h (Accept-Encoding; may be NULL) name token
 * (case-insensitive) with a q-value other than 0? "*" counts too. */
bool http_accepts(const char *h, const char *token);
/* Does If-None-Match inm (may be NULL) name etag ("\"HASH\"", W/ ignored),
 * its gzip variant "\"HASH-gz\"" (the same content), or "*"? */
bool http_etag_match(const char *inm, const char *etag);
/* GET or HEAD of a path outside /api/, /v1/ and the operations endpoints:
 * a dashboard file, or index.html for a client-side route. */
void web_serve(struct req *r, const char *url);

/*
 * Worker threads for slow requests. A job's run() is called on a worker;
 * cancel() instead when the pool stops before the job started (both on a
 * thread that is not an event-loop thread, so they resume the connection).
 */
struct http_job {
	void (*run)(void *arg);
	void (*cancel)(void *arg);
	void *arg;
};
int http_pool_start(struct http_pool **out, unsigned threads, size_t max_queued);
/* Queues a copy of job; TD_EFULL when max_queued jobs wait, TD_ECLOSED when stopping. */
int http_pool_submit(struct http_pool *p, const struct http_job *job);
/* Cancels the queued jobs, waits for the running ones, frees the pool. NULL is a no-op. */
void http_pool_stop(struct http_pool *p);
/* The first half of http_pool_stop: cancels queued jobs, lets running ones
 * finish, joins the workers; submits fail with TD_ECLOSED from then on, but
 * the pool stays valid (callers may still hold it) until http_pool_stop. */
void http_pool_close(struct http_pool *p);

#endif
