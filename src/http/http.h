/*
 * http.h - tandem's HTTP server (libmicrohttpd): the Segment collector under
 * /v1/, operations endpoints (/health, /ready, /metrics).
 *
 * Threads: libmicrohttpd runs a pool of event-loop threads (one per core).
 * A collector request is parsed and validated on its loop thread, appended to
 * the WAL, then its connection is suspended until the WAL's writer thread
 * reports the group commit that made it durable; the loop thread meanwhile
 * serves other connections. So one fsync acknowledges every request that
 * arrived while the previous one ran.
 *
 * A query can take hundreds of milliseconds, so it never runs on a loop
 * thread: its connection is suspended the same way while one of a few query
 * worker threads runs it on an immutable store snapshot, then resumed with
 * the result. Ingest never waits for a query.
 */
#ifndef TD_HTTP_HTTP_H
#define TD_HTTP_HTTP_H

#include "collect/collect.h"

#include <stdbool.h>
#include <stdint.h>

struct meta;
struct wal;
struct ingest;
struct quarantine;
struct store;

#define HTTP_MAX_PROXIES 16

/* An IPv4 or IPv6 network; IPv4 is stored as an IPv4-mapped IPv6 address. */
struct http_cidr {
	unsigned char addr[16];
	int bits; /* prefix length over the 128-bit form */
};

/* Parses "10.0.0.0/8", "::1/128" or a bare address; TD_EINVAL if malformed. */
int http_cidr_parse(const char *s, struct http_cidr *out);

struct http_config {
	const char *host; /* listen address, e.g. "127.0.0.1" or "0.0.0.0" */
	uint16_t port;	  /* 0 = any free port */
	unsigned threads; /* event-loop threads; 0 = number of cores */
	struct collect_limits limits;
	struct http_cidr proxies[HTTP_MAX_PROXIES];
	size_t nproxies;
	const char *web_dir; /* serve the dashboard's files from here first (development); NULL */
	struct http_query_limits {
		unsigned threads;  /* query worker threads; 0 = 2 */
		unsigned queue;	   /* queries waiting for a worker before 503; 0 = 64 */
		size_t max_body;   /* bytes of a query document; 0 = 1 MiB */
		size_t max_result; /* bytes of a result; 0 = 32 MiB */
		size_t max_memory; /* bytes one query may allocate; 0 = 1 GiB */
	} query;
};

/* The defaults of struct http_query_limits, documented in docs/queries.md. */
#define HTTP_QUERY_THREADS    2
#define HTTP_QUERY_QUEUE      64
#define HTTP_QUERY_MAX_BODY   (1u << 20)
#define HTTP_QUERY_MAX_RESULT (32u << 20)
#define HTTP_QUERY_MAX_MEMORY (1u << 30)

/* What the server uses; all borrowed and must outlive http_stop(). */
struct http_deps {
	const char *data_dir; /* for reading the quarantine back (data health) */
	struct meta *meta;
	struct wal *wal;
	struct ingest *ingest;
	struct quarantine *quarantine;
	struct store *store; /* queries read snapshots of it; NULL: /api/query answers 503 */
	const struct enrich *enrich; /* enrichment of collected messages; NULL: none */
};

struct http_server;

/* Starts listening; *port_out gets the bound port. */
int http_start(struct http_server **out, const struct http_config *cfg,
	       const struct http_deps *deps, uint16_t *port_out);
/* Stops accepting, finishes in-flight requests, frees the server. */
void http_stop(struct http_server *s);

#endif
