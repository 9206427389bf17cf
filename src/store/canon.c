/*
 * canon.c - DIR/CANONICAL, the canonical person of every person id as of
 * the flushed LSN, written with each flush. A read-only open whose WAL has
 * nothing past the flushed LSN (`tandem query` on a stopped or idle server)
 * takes its snapshot's canonical[] from here instead of replaying the whole
 * identity log; the log is read only when something needs the graph (a WAL
 * tail to resolve, a profile).
 *
 * Little-endian:
 *   0  8  magic "TDCANON\n"
 *   8  4  u32 version (1)
 *  12  4  u32 n: person ids
 *  16  8  u64 the flushed LSN it belongs to
 *  24  4  u32 flags: 1 = no merge (every id is its own canonical; no array)
 *  28  4  CRC-32C of bytes 0..27 and the array
 *  32     u32 canonical[n] (absent with flag 1)
 * Written to CANONICAL.tmp and renamed, without fdatasync: after a crash a
 * reader that finds it missing, torn (CRC), or for another LSN or person
 * count than the manifest's falls back to the log.
 */
#include "base/crc32c.h"
#include "base/td.h"
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char magic[8] = {'T', 'D', 'C', 'A', 'N', 'O', 'N', '\n'};

static void header(unsigned char h[32], uint32_t n, uint64_t lsn, uint32_t flags,
		   const uint32_t *canon)
{
	uint32_t ver = 1;
	memcpy(h, magic, 8);
	memcpy(h + 8, &ver, 4);
	memcpy(h + 12, &n, 4);
	memcpy(h + 16, &lsn, 8);
	memcpy(h + 24, &flags, 4);
	uint32_t crc = td_crc32c(0, h, 28);
	if (canon)
		crc = td_crc32c(crc, canon, (size_t)n * 4);
	memcpy(h + 28, &crc, 4);
}

int canon_write(const char *dir, const struct identity_view *v, uint64_t lsn)
{
	char path[4096], tmp[4200];
	snprintf(path, sizeof(path), "%s/CANONICAL", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unsigned char h[32];
	header(h, v->n, lsn, v->canonical ? 0 : 1, v->canonical);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return td_from_errno(errno);
	int rc = td_write_all(fd, h, 32);
	if (!rc && v->canonical)
		rc = td_write_all(fd, v->canonical, (size_t)v->n * 4);
	close(fd); /* no fdatasync: a torn file fails its CRC and readers use the log */
	if (!rc && rename(tmp, path))
		rc = td_from_errno(errno);
	if (rc)
		unlink(tmp);
	return rc;
}

struct identity_view *canon_read(const char *dir, uint64_t lsn, uint32_t n)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/CANONICAL", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	unsigned char h[32];
	uint32_t *canon = NULL;
	struct identity_view *v = NULL;
	uint32_t fn, flags;
	uint64_t flsn;
	if (pread(fd, h, 32, 0) != 32 || memcmp(h, magic, 8))
		goto out;
	memcpy(&fn, h + 12, 4);
	memcpy(&flsn, h + 16, 8);
	memcpy(&flags, h + 24, 4);
	if (fn != n || flsn != lsn || flags > 1)
		goto out;
	if (!flags) {
		canon = td_malloc((n ? n : 1) * sizeof(*canon));
		if (pread(fd, canon, (size_t)n * 4, 32) != (ssize_t)((size_t)n * 4))
			goto out;
		for (uint32_t i = 0; i < n; i++)
			if (canon[i] >= n)
				goto out;
	}
	unsigned char want[32];
	header(want, n, lsn, flags, canon);
	if (memcmp(want + 28, h + 28, 4))
		goto out;
	v = identity_view_new(n, canon);
	canon = NULL;
out:
	free(canon);
	close(fd);
	return v;
}
