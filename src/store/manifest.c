/*
 * manifest.c - reading and atomically replacing DIR/MANIFEST (layout in manifest.h).
 */
#include "store/manifest.h"
#include "base/crc32c.h"
#include "base/td.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAN_MAGIC  "TDMANIF\n"
#define MAN_HEADER 40
#define MAN_ENTRY  40

void manifest_seg_path(const char *dir, uint64_t id, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%016llx.tseg", dir, (unsigned long long)id);
}

void manifest_release(struct manifest *m)
{
	free(m->e);
	m->e = NULL;
	m->n = 0;
}

int manifest_read(const char *dir, struct manifest *m, char *err, size_t errcap)
{
	memset(m, 0, sizeof(*m));
	char path[4096];
	snprintf(path, sizeof(path), "%s/MANIFEST", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errcap, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? TD_ENOTFOUND : TD_EIO;
	}
	struct stat st;
	if (fstat(fd, &st)) {
		close(fd);
		return TD_EIO;
	}
	size_t len = (size_t)st.st_size;
	unsigned char *b = td_malloc(len + 1);
	ssize_t got = pread(fd, b, len, 0);
	close(fd);
	int rc = 0;
	uint32_t n = 0, ver = 0, crc = 0;
	if (got != (ssize_t)len || len < MAN_HEADER + 4 || memcmp(b, MAN_MAGIC, 8) != 0) {
		snprintf(err, errcap, "%s: not a manifest or cut short", path);
		rc = TD_ECORRUPT;
		goto out;
	}
	memcpy(&crc, b + len - 4, 4);
	if (crc != td_crc32c(0, b, len - 4)) {
		snprintf(err, errcap, "%s: checksum mismatch", path);
		rc = TD_ECORRUPT;
		goto out;
	}
	memcpy(&ver, b + 8, 4);
	memcpy(&n, b + 12, 4);
	if (ver != 1 || (uint64_t)n * MAN_ENTRY + MAN_HEADER + 4 != len) {
		snprintf(err, errcap, "%s: unknown version or bad length", path);
		rc = TD_ECORRUPT;
		goto out;
	}
	memcpy(&m->flushed_lsn, b + 16, 8);
	memcpy(&m->next_id, b + 24, 8);
	memcpy(&m->persons, b + 32, 4);
	m->n = n;
	m->e = td_calloc(n ? n : 1, sizeof(*m->e));
	for (uint32_t i = 0; i < n; i++)
		memcpy(&m->e[i], b + MAN_HEADER + (size_t)i * MAN_ENTRY, MAN_ENTRY);
out:
	free(b);
	return rc;
}

int manifest_write(const char *dir, const struct manifest *m)
{
	size_t len = MAN_HEADER + (size_t)m->n * MAN_ENTRY + 4;
	unsigned char *b = td_calloc(1, len);
	uint32_t ver = 1;
	memcpy(b, MAN_MAGIC, 8);
	memcpy(b + 8, &ver, 4);
	memcpy(b + 12, &m->n, 4);
	memcpy(b + 16, &m->flushed_lsn, 8);
	memcpy(b + 24, &m->next_id, 8);
	memcpy(b + 32, &m->persons, 4);
	for (uint32_t i = 0; i < m->n; i++)
		memcpy(b + MAN_HEADER + (size_t)i * MAN_ENTRY, &m->e[i], MAN_ENTRY);
	uint32_t crc = td_crc32c(0, b, len - 4);
	memcpy(b + len - 4, &crc, 4);
	char tmp[4096], path[4096];
	snprintf(tmp, sizeof(tmp), "%s/MANIFEST.tmp", dir);
	snprintf(path, sizeof(path), "%s/MANIFEST", dir);
	int rc = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		rc = td_from_errno(errno);
	else if (write(fd, b, len) != (ssize_t)len || fsync(fd))
		rc = td_from_errno(errno ? errno : EIO);
	if (fd >= 0)
		close(fd);
	free(b);
	if (!rc && rename(tmp, path))
		rc = td_from_errno(errno);
	if (!rc)
		rc = td_fsync_dir(dir);
	if (rc)
		unlink(tmp);
	return rc;
}
