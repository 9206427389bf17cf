/*
 * profile_bench.c - profile lookups over HTTP: GET /api/profiles/TYPE:VALUE
 * on one keep-alive connection, one request at a time, for identifiers read
 * from a file; prints the latency percentiles (bench/profiles.sh runs it).
 *
 *   build/bench/profile_bench --port P --token-file F --ids FILE [--requests N]
 *                             [--warmup N] [--limit N]
 *
 * FILE holds one "type:value" per line (values URL-safe). Loopback only.
 */
#include "base/td.h"
#include "base/timeutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int connect_loopback(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		fprintf(stderr, "profile_bench: cannot connect to 127.0.0.1:%d: %s\n", port,
			strerror(errno));
		exit(1);
	}
	return fd;
}

/* One GET; returns the status, or -1 on a broken connection. */
static int get(int fd, const char *req, size_t reqlen, char *buf, size_t cap, size_t *body)
{
	if (write(fd, req, reqlen) != (ssize_t)reqlen)
		return -1;
	size_t have = 0, need = SIZE_MAX, head = 0;
	while (have < need) {
		ssize_t r = read(fd, buf + have, cap - have - 1);
		if (r <= 0)
			return -1;
		have += (size_t)r;
		buf[have] = '\0';
		if (!head) {
			char *e = strstr(buf, "\r\n\r\n");
			if (!e)
				continue;
			head = (size_t)(e - buf) + 4;
			char *cl = strcasestr(buf, "\r\nContent-Length:");
			if (!cl || cl > e)
				return -1;
			need = head + strtoull(cl + 17, NULL, 10);
			if (need >= cap)
				return -1;
		}
	}
	*body = need - head;
	return (int)strtol(buf + 9, NULL, 10);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static long arg_long(const char *name, const char *v)
{
	char *end;
	long n = strtol(v, &end, 10);
	if (*v == '\0' || *end || n < 0) {
		fprintf(stderr, "profile_bench: %s takes a number, not '%s'\n", name, v);
		exit(2);
	}
	return n;
}

int main(int argc, char **argv)
{
	long port = 0, requests = 20000, warmup = 2000, limit = 20;
	const char *token_file = NULL, *ids_file = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port"))
			port = arg_long(argv[i], argv[i + 1]);
		else if (!strcmp(argv[i], "--requests"))
			requests = arg_long(argv[i], argv[i + 1]);
		else if (!strcmp(argv[i], "--warmup"))
			warmup = arg_long(argv[i], argv[i + 1]);
		else if (!strcmp(argv[i], "--limit"))
			limit = arg_long(argv[i], argv[i + 1]);
		else if (!strcmp(argv[i], "--token-file"))
			token_file = argv[i + 1];
		else if (!strcmp(argv[i], "--ids"))
			ids_file = argv[i + 1];
		else {
			fprintf(stderr, "profile_bench: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (!port || !token_file || !ids_file || !requests) {
		fprintf(stderr, "usage: profile_bench --port P --token-file F --ids FILE "
				"[--requests N] [--warmup N] [--limit N]\n");
		return 2;
	}
	char token[256] = "";
	FILE *f = fopen(token_file, "r");
	if (!f || !fgets(token, sizeof(token), f)) {
		fprintf(stderr, "profile_bench: cannot read %s\n", token_file);
		return 1;
	}
	fclose(f);
	token[strcspn(token, "\r\n")] = '\0';
	f = fopen(ids_file, "r");
	if (!f) {
		fprintf(stderr, "profile_bench: cannot read %s\n", ids_file);
		return 1;
	}
	char **ids = NULL, line[512];
	size_t nids = 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0])
			continue;
		ids = td_realloc(ids, (nids + 1) * sizeof(*ids));
		ids[nids++] = td_strdup(line);
	}
	fclose(f);
	if (!nids) {
		fprintf(stderr, "profile_bench: no identifiers in %s\n", ids_file);
		return 1;
	}
	int fd = connect_loopback((int)port);
	size_t cap = 64u << 20;
	char *buf = td_malloc(cap);
	uint64_t *lat = td_malloc((size_t)requests * sizeof(*lat));
	uint64_t bytes = 0, notfound = 0, seed = 88172645463325252ULL;
	for (long k = -warmup; k < requests; k++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		char req[1024];
		int n = snprintf(req, sizeof(req),
				 "GET /api/profiles/%s?limit=%ld HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				 "Authorization: Bearer %s\r\n\r\n",
				 ids[seed % nids], limit, token);
		uint64_t t0 = td_mono_ns();
		size_t body = 0;
		int st = get(fd, req, (size_t)n, buf, cap, &body);
		uint64_t t = td_mono_ns() - t0;
		if (st != 200 && st != 404) {
			fprintf(stderr, "profile_bench: status %d for %s\n", st, ids[seed % nids]);
			return 1;
		}
		if (k >= 0) {
			lat[k] = t;
			bytes += body;
			notfound += st == 404;
		}
	}
	qsort(lat, (size_t)requests, sizeof(*lat), cmp_u64);
#define PCT(p) ((double)lat[(size_t)((double)(requests - 1) * (p))] / 1e6)
	printf("profile lookups over HTTP (one connection, sequential): %ld requests over %zu "
	       "identifiers, %.0f bytes per profile on average, %llu not found\n",
	       requests, nids, (double)bytes / (double)requests, (unsigned long long)notfound);
	printf(
	    "  latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f   (target p99 < 2)\n",
	    PCT(0.50), PCT(0.90), PCT(0.99), PCT(0.999), (double)lat[requests - 1] / 1e6);
	close(fd);
	for (size_t i = 0; i < nids; i++)
		free(ids[i]);
	free(ids);
	free(buf);
	free(lat);
	return 0;
}
