/*
 * log.c - the identity graph's log file (DATA/events/IDENTITY): every
 * change, in the order the applier made it, so that the graph at any WAL
 * position can be rebuilt exactly.
 *
 * Little-endian. Header, 16 bytes:
 *   0  8  magic "TDIDENT\n"
 *   8  4  u32 version (1)
 *  12  4  u32 reserved (0)
 * Records:
 *   0  4  u32 CRC-32C of bytes 4 .. 6 + len
 *   4  2  u16 len: bytes after this field
 *   6  1  u8 type
 *   7  8  u64 LSN of the message that made the change (0: made by a migration)
 *  15  .. body by type:
 *     1 LINK      u32 pid, u8 class, key "type:value" (the rest)
 *                 the next identifier id goes to the key, linked to pid
 *     2 PERSON    (nothing) the next person id is created
 *     3 MERGE     i64 ts, u32 winner, u32 loser, u32 kept id, u32 merged id,
 *                 messageId (the rest)
 *     4 CONFLICT  i64 ts, u32 person, u32 other, u32 kept id, u8 class,
 *                 u16 key length, key, messageId (the rest)
 * Replay applies records in order: identifier and person ids are implied by
 * their order, so a MERGE names exactly the sets it joined. Reading stops at
 * the first record that is short, fails its CRC, or has an LSN past the one
 * asked for; a writable open cuts the file there.
 */
#include "base/crc32c.h"
#include "base/log.h"
#include "base/td.h"
#include "identity/identity_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR_LEN 16
#define REC_HDR 15 /* crc, len, type, lsn */
#define CHUNK	(4u << 20)
static const char magic[8] = {'T', 'D', 'I', 'D', 'E', 'N', 'T', '\n'};

static void put(struct td_buf *b, const void *p, size_t n)
{
	(void)td_buf_append(b, p, n);
}

/* Starts a record; returns its offset for finish(). */
static size_t start(struct identity *g, int type, uint64_t lsn)
{
	struct td_buf *b = &g->logbuf;
	size_t at = b->len;
	uint32_t z = 0;
	uint16_t zl = 0;
	uint8_t t = (uint8_t)type;
	put(b, &z, 4);
	put(b, &zl, 2);
	put(b, &t, 1);
	put(b, &lsn, 8);
	return at;
}

static void finish(struct identity *g, size_t at)
{
	struct td_buf *b = &g->logbuf;
	uint16_t len = (uint16_t)(b->len - at - 6);
	memcpy(b->data + at + 4, &len, 2);
	uint32_t crc = td_crc32c(0, b->data + at + 4, b->len - at - 4);
	memcpy(b->data + at, &crc, 4);
}

static bool logging(const struct identity *g)
{
	return g->fd >= 0 && !g->replaying;
}

void identity_log_person(struct identity *g, uint64_t lsn)
{
	if (logging(g))
		finish(g, start(g, IDLOG_PERSON, lsn));
}

void identity_log_link(struct identity *g, uint64_t lsn, uint32_t pid, enum identity_class cls,
		       const char *key, size_t len)
{
	if (!logging(g))
		return;
	size_t at = start(g, IDLOG_LINK, lsn);
	uint8_t c = (uint8_t)cls;
	put(&g->logbuf, &pid, 4);
	put(&g->logbuf, &c, 1);
	put(&g->logbuf, key, len);
	finish(g, at);
}

void identity_log_merge(struct identity *g, const struct identity_hist *h, const char *msgid,
			size_t msgid_len)
{
	if (!logging(g))
		return;
	size_t at = start(g, IDLOG_MERGE, h->lsn);
	put(&g->logbuf, &h->ts, 8);
	put(&g->logbuf, &h->winner, 4);
	put(&g->logbuf, &h->loser, 4);
	put(&g->logbuf, &h->kept, 4);
	put(&g->logbuf, &h->merged, 4);
	put(&g->logbuf, msgid, msgid_len);
	finish(g, at);
}

void identity_log_conflict(struct identity *g, const struct identity_hist *h, const char *msgid,
			   size_t msgid_len, const char *key, size_t key_len)
{
	if (!logging(g))
		return;
	size_t at = start(g, IDLOG_CONFLICT, h->lsn);
	uint8_t c = h->cls;
	uint16_t kl = (uint16_t)key_len;
	put(&g->logbuf, &h->ts, 8);
	put(&g->logbuf, &h->winner, 4);
	put(&g->logbuf, &h->loser, 4);
	put(&g->logbuf, &h->kept, 4);
	put(&g->logbuf, &c, 1);
	put(&g->logbuf, &kl, 2);
	put(&g->logbuf, key, key_len);
	put(&g->logbuf, msgid, msgid_len);
	finish(g, at);
}

int identity_write(struct identity *g)
{
	if (g->fd < 0 || g->logbuf.len == 0)
		return 0;
	size_t done = 0;
	int rc = 0;
	while (done < g->logbuf.len) {
		ssize_t w = pwrite(g->fd, g->logbuf.data + done, g->logbuf.len - done,
				   (off_t)(g->log_bytes + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = td_from_errno(w < 0 ? errno : EIO);
			break;
		}
		done += (size_t)w;
	}
	if (rc) {
		/* nothing half-written may stay: the records are written again next time */
		if (ftruncate(g->fd, (off_t)g->log_bytes) != 0)
			td_log_error("identity: cannot cut %s back after a failed write", g->path);
		return rc;
	}
	pthread_mutex_lock(&g->lock);
	g->log_bytes += g->logbuf.len;
	td_buf_reset(&g->logbuf);
	pthread_mutex_unlock(&g->lock);
	return 0;
}

int identity_fsync(struct identity *g)
{
	if (g->fd >= 0 && fdatasync(g->fd))
		return td_from_errno(errno);
	return 0;
}

int identity_sync(struct identity *g)
{
	int rc = identity_write(g);
	return rc ? rc : identity_fsync(g);
}

static uint32_t rd32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static bool valid_person(const struct identity *g, uint32_t pid)
{
	return pid < g->npids && g->canon[pid] == pid;
}

/* Applies one record whose CRC held; TD_ECORRUPT when it contradicts the graph. */
static int apply(struct identity *g, int type, uint64_t lsn, const unsigned char *b, size_t n)
{
	switch (type) {
	case IDLOG_PERSON:
		identity_new_person(g, lsn);
		return 0;
	case IDLOG_LINK: {
		if (n < 6)
			return TD_ECORRUPT;
		uint32_t pid = rd32(b);
		uint8_t cls = b[4];
		const char *key = (const char *)b + 5;
		size_t kl = n - 5;
		if (pid >= g->npids || cls >= IDENTITY_NCLASSES || !memchr(key, ':', kl) ||
		    kl > IDENTITY_MAX_TYPE + 1 + IDENTITY_MAX_VALUE)
			return TD_ECORRUPT;
		identity_link(g, lsn, pid, key, kl, cls, identity_hash_key(key, kl));
		return 0;
	}
	case IDLOG_MERGE: {
		if (n < 24)
			return TD_ECORRUPT;
		int64_t ts;
		memcpy(&ts, b, 8);
		uint32_t w = rd32(b + 8), l = rd32(b + 12), kept = rd32(b + 16),
			 merged = rd32(b + 20);
		if (!valid_person(g, w) || !valid_person(g, l) || w == l ||
		    (kept != IDENTITY_NONE && kept >= g->nids) ||
		    (merged != IDENTITY_NONE && merged >= g->nids))
			return TD_ECORRUPT;
		identity_merge(g, w, l, lsn, ts, (const char *)b + 24, n - 24, kept, merged);
		return 0;
	}
	case IDLOG_CONFLICT: {
		if (n < 27)
			return TD_ECORRUPT;
		int64_t ts;
		memcpy(&ts, b, 8);
		uint32_t person = rd32(b + 8), other = rd32(b + 12), kept = rd32(b + 16);
		uint8_t cls = b[20];
		uint16_t kl;
		memcpy(&kl, b + 21, 2);
		if (!valid_person(g, person) || (other != IDENTITY_NONE && other >= g->npids) ||
		    (kept != IDENTITY_NONE && kept >= g->nids) || cls >= IDENTITY_NCLASSES ||
		    (size_t)kl > n - 23)
			return TD_ECORRUPT;
		identity_conflict(g, person, other, cls, lsn, ts, (const char *)b + 23 + kl,
				  n - 23 - kl, kept, (const char *)b + 23, kl);
		return 0;
	}
	default:
		return TD_ECORRUPT;
	}
}

static int create_file(struct identity *g, const char *path, char *err, size_t errcap)
{
	unsigned char h[HDR_LEN] = {0};
	memcpy(h, magic, 8);
	uint32_t v = 1;
	memcpy(h + 8, &v, 4);
	if (pwrite(g->fd, h, HDR_LEN, 0) != HDR_LEN || fdatasync(g->fd)) {
		snprintf(err, errcap, "%s: cannot write: %s", path, strerror(errno));
		return TD_EIO;
	}
	char *dup = td_malloc(strlen(path) + 1);
	memcpy(dup, path, strlen(path) + 1);
	int rc = td_fsync_dir(dirname(dup));
	free(dup);
	g->log_bytes = HDR_LEN;
	return rc;
}

int identity_log_open(struct identity *g, const char *path, uint64_t upto_lsn, bool read_only,
		      char *err, size_t errcap)
{
	g->path = td_malloc(strlen(path) + 1);
	memcpy(g->path, path, strlen(path) + 1);
	int fd = open(path, read_only ? O_RDONLY | O_CLOEXEC : O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (read_only && errno == ENOENT)
			return 0; /* nothing written yet: an empty graph */
		snprintf(err, errcap, "%s: cannot open: %s", path, strerror(errno));
		return td_from_errno(errno);
	}
	struct stat st;
	if (fstat(fd, &st)) {
		close(fd);
		snprintf(err, errcap, "%s: %s", path, strerror(errno));
		return TD_EIO;
	}
	if (st.st_size == 0 && !read_only) {
		g->fd = fd;
		return create_file(g, path, err, errcap);
	}
	unsigned char h[HDR_LEN];
	if (st.st_size < HDR_LEN || pread(fd, h, HDR_LEN, 0) != HDR_LEN || memcmp(h, magic, 8) ||
	    rd32(h + 8) != 1) {
		close(fd);
		snprintf(err, errcap, "%s: not an identity log of version 1 (bad header)", path);
		return TD_ECORRUPT;
	}
	/* stream the records through a chunk buffer */
	unsigned char *buf = td_malloc(CHUNK + 65536);
	size_t have = 0, pos = 0;
	uint64_t off = HDR_LEN, good = HDR_LEN;
	bool eof = false;
	int rc = 0;
	g->replaying = true;
	for (;;) {
		if (have - pos < REC_HDR + 65536 && !eof) {
			memmove(buf, buf + pos, have - pos);
			off += pos;
			have -= pos;
			pos = 0;
			ssize_t r =
			    pread(fd, buf + have, CHUNK + 65536 - have, (off_t)(off + have));
			if (r < 0) {
				rc = TD_EIO;
				snprintf(err, errcap, "%s: read: %s", path, strerror(errno));
				break;
			}
			eof = r == 0;
			have += (size_t)r;
			if (!eof)
				continue;
		}
		if (have - pos < 6)
			break;
		uint16_t len;
		memcpy(&len, buf + pos + 4, 2);
		if (len < 9 || have - pos < 6u + len ||
		    td_crc32c(0, buf + pos + 4, 2u + len) != rd32(buf + pos))
			break; /* torn or damaged tail */
		uint64_t lsn;
		memcpy(&lsn, buf + pos + 7, 8);
		if (lsn > upto_lsn)
			break;
		rc = apply(g, buf[pos + 6], lsn, buf + pos + REC_HDR, len - 9u);
		if (rc) {
			snprintf(err, errcap,
				 "%s: record at byte %llu contradicts the records before it", path,
				 (unsigned long long)(off + pos));
			break;
		}
		pos += 6u + len;
		good = off + pos;
	}
	g->replaying = false;
	free(buf);
	if (rc) {
		close(fd);
		return rc;
	}
	g->log_bytes = good;
	if (read_only) {
		close(fd);
		return 0;
	}
	if ((uint64_t)st.st_size > good && (ftruncate(fd, (off_t)good) || fdatasync(fd))) {
		snprintf(err, errcap, "%s: cannot cut the log at byte %llu: %s", path,
			 (unsigned long long)good, strerror(errno));
		close(fd);
		return TD_EIO;
	}
	g->fd = fd;
	return 0;
}
