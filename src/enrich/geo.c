/*
 * geo.c - country, region and city of an IP address from a MaxMind-format
 * database (MaxMind DB spec 2.0: GeoLite2/GeoIP2 City and Country, DB-IP's
 * lite databases, or any file with the same record layout), read with
 * libmaxminddb. The paths used are the GeoIP2 City ones:
 *   country.iso_code, subdivisions[0].names.en, city.names.en
 * The file is memory-mapped once; lookups are read-only and thread-safe.
 */
#include "enrich/enrich_int.h"
#include "base/td.h"

#include <arpa/inet.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct enrich_geo {
	MMDB_s db;
	uint64_t id; /* unique per open database: the key of the per-thread cache */
};

static uint64_t next_id = 1; /* atomic */

/*
 * The last lookups of this thread, direct-mapped by a hash of the address:
 * the messages of one visitor come in together (a batch, a session), and a
 * hit saves the tree walk and the three map searches (~0.4 us).
 */
#define CACHE_SLOTS 16
static __thread struct {
	uint64_t id; /* of the database; 0: empty */
	char ip[INET6_ADDRSTRLEN];
	bool found;
	struct enrich_geo_result r;
} cache[CACHE_SLOTS];

int enrich_geo_open(struct enrich_geo **out, const char *path, char *err, size_t errcap)
{
	*out = NULL;
	struct enrich_geo *g = td_calloc(1, sizeof(*g));
	int s = MMDB_open(path, MMDB_MODE_MMAP, &g->db);
	if (s != MMDB_SUCCESS) {
		int rc = s == MMDB_FILE_OPEN_ERROR ? TD_ENOTFOUND
			 : s == MMDB_IO_ERROR	   ? TD_EIO
						   : TD_ECORRUPT;
		snprintf(
		    err, errcap,
		    "cannot open the geo database %s: %s (set geo_database to a MaxMind-format "
		    ".mmdb file, or unset it)",
		    path, MMDB_strerror(s));
		free(g);
		return rc;
	}
	g->id = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
	*out = g;
	return 0;
}

void enrich_geo_close(struct enrich_geo *g)
{
	if (!g)
		return;
	MMDB_close(&g->db);
	free(g);
}

/* Copies the UTF-8 string at the path into out; false if there is none. */
static bool get(MMDB_entry_s *e, char *out, size_t cap, const char *const *path)
{
	MMDB_entry_data_s d;
	if (MMDB_aget_value(e, &d, path) != MMDB_SUCCESS || !d.has_data ||
	    d.type != MMDB_DATA_TYPE_UTF8_STRING)
		return false;
	enrich_text_copy(d.utf8_string, d.data_size, out, cap);
	return out[0] != '\0';
}

static bool lookup(const struct enrich_geo *g, const char *ip, struct enrich_geo_result *out)
{
	memset(out, 0, sizeof(*out));
	/* inet_pton + the sockaddr lookup: MMDB_lookup_string would go through
	 * getaddrinfo for every event */
	struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6};
	struct sockaddr_in sa4 = {.sin_family = AF_INET};
	const struct sockaddr *sa;
	if (inet_pton(AF_INET, ip, &sa4.sin_addr) == 1)
		sa = (const struct sockaddr *)&sa4;
	else if (inet_pton(AF_INET6, ip, &sa6.sin6_addr) == 1)
		sa = (const struct sockaddr *)&sa6;
	else
		return false;
	int merr = 0;
	/* libmaxminddb takes a non-const MMDB_s but only reads it */
	MMDB_lookup_result_s r = MMDB_lookup_sockaddr((MMDB_s *)&g->db, sa, &merr);
	if (merr != MMDB_SUCCESS || !r.found_entry)
		return false;
	static const char *const country[] = {"country", "iso_code", NULL};
	static const char *const region[] = {"subdivisions", "0", "names", "en", NULL};
	static const char *const city[] = {"city", "names", "en", NULL};
	bool any = get(&r.entry, out->country, sizeof(out->country), country);
	any |= get(&r.entry, out->region, sizeof(out->region), region);
	any |= get(&r.entry, out->city, sizeof(out->city), city);
	return any;
}

bool enrich_geo_lookup(const struct enrich_geo *g, const char *ip, struct enrich_geo_result *out)
{
	size_t n = strlen(ip);
	if (n >= INET6_ADDRSTRLEN) {
		memset(out, 0, sizeof(*out));
		return false;
	}
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)ip[i]) * 16777619u;
	__typeof__(&cache[0]) c = &cache[h % CACHE_SLOTS];
	if (c->id == g->id && !strcmp(c->ip, ip)) {
		*out = c->r;
		return c->found;
	}
	bool found = lookup(g, ip, out);
	c->id = g->id;
	memcpy(c->ip, ip, n + 1);
	c->found = found;
	c->r = *out;
	return found;
}
