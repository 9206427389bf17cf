/*
 * netaddr.c - client addresses: CIDR parsing and the X-Forwarded-For rule
 * (walk the list from the right, skipping trusted proxies; the first
 * untrusted hop is the client).
 */
#include "http/http_int.h"
#include "base/td.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool parse_addr(const char *s, unsigned char out[16])
{
	struct in_addr v4;
	if (inet_pton(AF_INET, s, &v4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &v4, 4);
		return true;
	}
	return inet_pton(AF_INET6, s, out) == 1;
}

int http_cidr_parse(const char *s, struct http_cidr *out)
{
	char buf[64];
	if (strlen(s) >= sizeof(buf))
		return TD_EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	char *slash = strchr(buf, '/');
	long bits = -1;
	if (slash) {
		*slash = '\0';
		char *end;
		bits = strtol(slash + 1, &end, 10);
		if (*end || end == slash + 1 || bits < 0)
			return TD_EINVAL;
	}
	if (!parse_addr(buf, out->addr))
		return TD_EINVAL;
	bool v4 = strchr(buf, ':') == NULL;
	if (bits < 0)
		bits = v4 ? 32 : 128;
	if (bits > (v4 ? 32 : 128))
		return TD_EINVAL;
	out->bits = (int)(v4 ? bits + 96 : bits);
	return 0;
}

static bool in_cidr(const unsigned char a[16], const struct http_cidr *c)
{
	int full = c->bits / 8, rest = c->bits % 8;
	if (memcmp(a, c->addr, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (c->addr[full] & mask);
}

bool http_is_trusted(const struct http_config *cfg, const char *ip)
{
	unsigned char a[16];
	if (!cfg->nproxies || !parse_addr(ip, a))
		return false;
	for (size_t i = 0; i < cfg->nproxies; i++)
		if (in_cidr(a, &cfg->proxies[i]))
			return true;
	return false;
}

void http_client_ip(const struct http_config *cfg, const char *peer, const char *xff, char *out,
		    size_t cap)
{
	snprintf(out, cap, "%s", peer);
	if (!xff || !http_is_trusted(cfg, peer))
		return;
	char list[1024];
	snprintf(list, sizeof(list), "%s", xff);
	for (;;) {
		char *comma = strrchr(list, ',');
		char *hop = comma ? comma + 1 : list;
		while (*hop == ' ' || *hop == '\t')
			hop++;
		char *end = hop + strlen(hop);
		while (end > hop && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		unsigned char a[16];
		if (!parse_addr(hop, a))
			return; /* garbage: keep the last trusted hop */
		snprintf(out, cap, "%s", hop);
		if (!comma || !http_is_trusted(cfg, hop))
			return;
		*comma = '\0';
	}
}

void http_peer_ip(const struct sockaddr *sa, char *out, size_t cap)
{
	out[0] = '\0';
	if (!sa)
		return;
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out,
			  (socklen_t)cap);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6))
			inet_ntop(AF_INET, &a6->s6_addr[12], out, (socklen_t)cap);
		else
			inet_ntop(AF_INET6, a6, out, (socklen_t)cap);
	}
}
