/*
 * manifest.h - DIR/MANIFEST, the list of live segment files and the WAL
 * position they cover (internal to src/store). Replaced atomically: written to
 * MANIFEST.tmp, fsync'd, renamed over MANIFEST, directory fsync'd.
 *
 * Layout (little-endian):
 *   offset size  field
 *   0      8     magic "TDMANIF\n"
 *   8      4     version (1)
 *   12     4     segment count N
 *   16     8     flushed LSN: every WAL record up to it is in the listed segments
 *   24     8     next segment id
 *   32     4     persons: person ids handed out as of the flushed LSN (DIR/IDENTITY
 *                 must hold at least these)
 *   36     4     reserved, 0
 *   40     40*N  per segment: u64 id (file DIR/<id as 16 hex digits>.tseg), u64 rows,
 *                u64 lowest LSN, u64 highest LSN, u64 file bytes
 *   40+40N 4     CRC-32C of every byte before
 */
#ifndef TD_STORE_MANIFEST_H
#define TD_STORE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

struct manifest_entry {
	uint64_t id, rows, min_lsn, max_lsn, bytes;
};

struct manifest {
	uint64_t flushed_lsn, next_id;
	uint32_t persons;
	uint32_t n;
	struct manifest_entry *e; /* malloc'd */
};

/* 0, TD_ENOTFOUND (no manifest: a new store), TD_ECORRUPT (err says why), TD_EIO. */
int manifest_read(const char *dir, struct manifest *m, char *err, size_t errcap);
int manifest_write(const char *dir, const struct manifest *m);
void manifest_release(struct manifest *m);
/* DIR/<id>.tseg into out. */
void manifest_seg_path(const char *dir, uint64_t id, char *out, size_t cap);

#endif
