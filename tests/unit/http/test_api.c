/*
 * test_api.c - POST /api/query on a real server over loopback, for the
 * answers the integration suite cannot reach through `tandem serve`: no
 * store yet, a result over the result limit, a query over the memory limit.
 */
#include "base/log.h"
#include "base/td.h"
#include "http/http.h"
#include "meta/meta.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char dir[64];
static struct meta *meta;
static struct store *store;
static char admin[META_TOKEN_LEN + 1], viewer[META_TOKEN_LEN + 1];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void setup(void)
{
	td_log_quiet = true;
	snprintf(dir, sizeof(dir), "/tmp/td-api-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(meta_open(&meta, dir), 0);
	cr_assert_eq(meta_token_create(meta, "admin", "admin", admin), 0);
	cr_assert_eq(meta_token_create(meta, "viewer", "viewer", viewer), 0);
	char events[128];
	snprintf(events, sizeof(events), "%s/events", dir);
	struct store_options so = {.dir = events, .no_merge = true};
	cr_assert_eq(store_open(&store, &so), 0);
}

static void teardown(void)
{
	store_close(store);
	meta_close(meta);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static struct http_server *start(struct store *s, size_t max_result, size_t max_memory,
				 uint16_t *port)
{
	struct http_config cfg = {.host = "127.0.0.1", .threads = 2};
	collect_limits_default(&cfg.limits);
	cfg.query.max_result = max_result;
	cfg.query.max_memory = max_memory;
	struct http_deps deps = {.meta = meta, .store = s};
	struct http_server *srv;
	cr_assert_eq(http_start(&srv, &cfg, &deps, port), 0);
	return srv;
}

/* POSTs body to /api/query with the token (NULL: none); the whole response
 * (headers and body) goes to resp. Returns the status. */
static int post(uint16_t port, const char *token, const char *body, char *resp, size_t cap)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	char req[4096], auth[128] = "";
	if (token)
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", token);
	int n = snprintf(req, sizeof(req),
			 "POST /api/query HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s"
			 "Content-Length: %zu\r\n\r\n%s",
			 auth, strlen(body), body);
	cr_assert_eq(write(fd, req, (size_t)n), n);
	size_t got = 0;
	ssize_t r;
	while (got + 1 < cap && (r = read(fd, resp + got, cap - 1 - got)) > 0)
		got += (size_t)r;
	resp[got] = '\0';
	close(fd);
	int status = 0;
	cr_assert_eq(sscanf(resp, "HTTP/1.1 %d", &status), 1, "%s", resp);
	return status;
}

TestSuite(http_api, .init = setup, .fini = teardown);

Test(http_api, answers_on_an_empty_store)
{
	uint16_t port;
	struct http_server *srv = start(store, 0, 0, &port);
	char resp[8192];
	cr_assert_eq(post(port, admin, "{\"kind\":\"events\"}", resp, sizeof(resp)), 200, "%s",
		     resp);
	cr_assert(strstr(resp, "\"events\":[]"), "%s", resp);
	cr_assert_eq(post(port, viewer, "{\"kind\":\"events\"}", resp, sizeof(resp)), 403);
	cr_assert(strstr(resp, "role viewer"), "%s", resp);
	http_stop(srv);
}

Test(http_api, no_store_yet_is_503_after_the_token_check)
{
	uint16_t port;
	struct http_server *srv = start(NULL, 0, 0, &port);
	char resp[8192];
	cr_assert_eq(post(port, NULL, "{\"kind\":\"events\"}", resp, sizeof(resp)), 401);
	cr_assert_eq(post(port, admin, "{\"kind\":\"events\"}", resp, sizeof(resp)), 503);
	cr_assert(strstr(resp, "Retry-After: 5\r\n"), "%s", resp);
	cr_assert(strstr(resp, "\"code\":\"unavailable\""), "%s", resp);
	http_stop(srv);
}

Test(http_api, result_over_the_limit_says_how_to_narrow_the_query)
{
	uint16_t port;
	struct http_server *srv = start(store, 32, 0, &port);
	char resp[8192];
	cr_assert_eq(post(port, admin, "{\"kind\":\"events\"}", resp, sizeof(resp)), 400);
	cr_assert(strstr(resp, "\"code\":\"result_too_large\""), "%s", resp);
	cr_assert(strstr(resp, "larger than 32 bytes"), "%s", resp);
	cr_assert(strstr(resp, "narrow the query"), "%s", resp);
	http_stop(srv);
}

Test(http_api, query_over_the_memory_limit)
{
	uint16_t port;
	struct http_server *srv = start(store, 0, 1024, &port);
	char resp[8192];
	/* 10,000 hourly buckets need more than 1 KiB */
	const char *q = "{\"kind\":\"trends\",\"series\":[{\"event\":\"\"}],\"interval\":\"hour\","
			"\"date_from\":\"2024-01-01\",\"date_to\":\"2025-02-10\"}";
	cr_assert_eq(post(port, admin, q, resp, sizeof(resp)), 400, "%s", resp);
	cr_assert(strstr(resp, "\"code\":\"query_too_expensive\""), "%s", resp);
	cr_assert(strstr(resp, "more than 1024 bytes of memory"), "%s", resp);
	http_stop(srv);
}
