/*
 * ip.c - IP anonymization, applied per source after the geo lookup:
 * truncate keeps the network part only (IPv4: the last octet becomes 0, as
 * Google Analytics' anonymizeIp did; IPv6: the last 80 bits become 0, the
 * first 48 kept), drop stores no address.
 */
#include "enrich/enrich_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const char *const mode_names[] = {"keep", "truncate", "drop"};

const char *enrich_ip_mode_name(enum enrich_ip_mode m)
{
	return m <= ENRICH_IP_DROP ? mode_names[m] : "keep";
}

int enrich_ip_mode_parse(const char *s)
{
	for (int m = ENRICH_IP_KEEP; m <= ENRICH_IP_DROP; m++)
		if (!strcmp(s, mode_names[m]))
			return m;
	return -1;
}

bool enrich_ip_anonymize(const char *ip, size_t n, enum enrich_ip_mode mode, char *out, size_t cap)
{
	if (mode == ENRICH_IP_DROP || cap < INET6_ADDRSTRLEN)
		return false;
	if (mode == ENRICH_IP_KEEP) {
		if (n >= cap)
			n = cap - 1;
		memcpy(out, ip, n);
		out[n] = '\0';
		return true;
	}
	char buf[INET6_ADDRSTRLEN];
	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, ip, n);
	buf[n] = '\0';
	unsigned char a[16];
	if (inet_pton(AF_INET, buf, a) == 1) { /* "a.b.c.0", without inet_ntop's printf */
		size_t k = 0;
		for (int i = 0; i < 3; i++) {
			if (a[i] >= 100)
				out[k++] = (char)('0' + a[i] / 100);
			if (a[i] >= 10)
				out[k++] = (char)('0' + a[i] / 10 % 10);
			out[k++] = (char)('0' + a[i] % 10);
			out[k++] = '.';
		}
		memcpy(out + k, "0", 2);
		return true;
	}
	if (inet_pton(AF_INET6, buf, a) == 1) {
		static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0,    0,
							   0, 0, 0, 0, 0xff, 0xff};
		if (!memcmp(a, v4mapped, 12)) { /* ::ffff:a.b.c.d is an IPv4 address */
			a[15] = 0;
			return inet_ntop(AF_INET, a + 12, out, (socklen_t)cap) != NULL;
		}
		memset(a + 6, 0, 10);
		return inet_ntop(AF_INET6, a, out, (socklen_t)cap) != NULL;
	}
	return false;
}
