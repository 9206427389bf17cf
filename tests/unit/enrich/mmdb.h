/*
 * mmdb.h - a writer of small MaxMind-format (.mmdb) databases for tests.
 */
#ifndef TD_TEST_MMDB_H
#define TD_TEST_MMDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One IPv4 network and what the database says about it. */
struct mmdb_net {
	uint32_t addr;			     /* host order: 192.0.2.0 = 0xC0000200 */
	int prefix;			     /* 1..32 */
	const char *country, *region, *city; /* "" to leave out */
};

/* Writes an IPv4 database of the networks (which must not nest) to path;
 * 0 or -1. */
int mmdb_write(const char *path, const struct mmdb_net *nets, size_t n);

#endif
