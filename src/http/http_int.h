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

struct http_server {
	struct MHD_Daemon *daemon;
	struct http_config cfg; /* query limits filled with their defaults */
	struct http_deps deps;
	struct http_pool *queries; /* runs POST /api/query */
	_Atomic int suspended;	   /* connections waiting for the WAL or a query */
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
	bool collect;	   /* a /v1 collector POST */
	bool query;	   /* a POST /api/query */
	char *profile_id;  /* a GET /api/profiles/{id} or /api/accounts/{id}: the id */
	bool account;	   /* ... the latter */
	char *traits_call; /* a /api/computed-traits call: "METHOD NAME" ("METHOD" for the list) */
	const char *costs_call; /* a /api/costs call: its method (a static string) */
	bool body_too_large;
	enum collect_type type;
	uint64_t t0;
	struct td_buf body;
	int status;
	struct td_buf resp;
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
