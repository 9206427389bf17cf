/*
 * persons.h - the person key -> dense person id map (internal to src/store),
 * until identity resolution replaces it: key = "u" + userId when the message
 * has one, else "a" + anonymousId.
 *
 * File DIR/PERSONS (little-endian):
 *   header, 16 bytes: magic "TDPERS\r\n", u32 version (1), u32 reserved (0)
 *   records, one per person in id order: u32 CRC-32C of (length, key),
 *   u16 key length, key bytes
 * New keys are appended by persons_sync(), which the store calls (and which
 * fsyncs) before a manifest that counts them is written. Records past the
 * manifest's count (a crash between the two) are cut off at open. A
 * read-only open reads the keys only when one is first looked up.
 */
#ifndef TD_STORE_PERSONS_H
#define TD_STORE_PERSONS_H

#include "base/intern.h"

#include <stdbool.h>
#include <stdint.h>

struct persons {
	struct intern keys;
	uint32_t synced; /* ids whose records are on disk */
	int fd;		 /* -1 when read-only */
	bool lazy;	 /* read-only: keys not read yet (synced = their count) */
	char *path;
};

/* Opens DIR/PERSONS keeping exactly `count` persons (the manifest's number).
 * TD_ECORRUPT if the file holds fewer valid records. */
int persons_open(struct persons *p, const char *dir, uint32_t count, bool read_only);
void persons_close(struct persons *p);
uint32_t persons_resolve(void *persons, const char *user_id, const char *anonymous_id);
/* Appends the ids created since the last sync and fsyncs; 0 or TD_E*. */
int persons_sync(struct persons *p);
/* Reads a lazily opened map now; 0 or TD_ECORRUPT / TD_EIO. */
int persons_load(struct persons *p);
static inline uint32_t persons_count(const struct persons *p)
{
	return p->lazy ? p->synced : p->keys.n;
}

#endif
