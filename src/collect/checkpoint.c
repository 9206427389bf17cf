/*
 * checkpoint.c - the dedupe index saved to a file and restored from it (the
 * byte table is in collect.h).
 *
 * Saving runs beside ingest. The ingest lock is taken once per shard, only
 * to copy that shard's table (a memcpy of 1/64 of the index) and the keys of
 * it still pending in the WAL past the covered LSN; filtering and writing
 * happen outside the lock. Why the result covers every durable record up to
 * L = lsn: submit inserts a key before its record is appended, under the
 * same lock, so a shard copied after L was durable holds the key of every
 * record <= L (a failed write only takes back records past the durable LSN).
 * Keys of records past L that are still pending are left out, because a
 * failed write could still take them back and a retry must then be stored.
 *
 * Loading survives arbitrary bytes: the header is checked (magic, version,
 * checksum) before its count is believed, the count must match the file
 * size, and a first pass checks the entries' checksum and values before a
 * second pass adds a single key, so a damaged file leaves the index as it was.
 */
#include "collect/ingest_int.h"
#include "base/crc32c.h"
#include "base/log.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "wal/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CKPT_HEADER  48
#define CKPT_ENTRY   16
#define CKPT_VERSION 1
#define CKPT_CHUNK   4096		 /* entries per read or write */
#define CKPT_MAX_LSN (UINT64_C(1) << 62) /* as the WAL: no real log gets there */

/* An entry is a struct slot as it is in memory: that is its byte table on
 * the little-endian machines tandem runs on. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "checkpoint entries are little-endian");
_Static_assert(sizeof(struct slot) == CKPT_ENTRY && offsetof(struct slot, h2) == 8 &&
		   offsetof(struct slot, sec) == 12,
	       "struct slot is the entry layout");

static const unsigned char ckpt_magic[8] = {'T', 'D', 'D', 'E', 'D', 'U', 'P', 0x1a};

struct header {
	uint32_t window_sec;
	uint64_t lsn;
	int64_t saved_ms;
	uint64_t count;
	uint32_t entries_crc;
};

static void encode_header(unsigned char *p, const struct header *h)
{
	uint32_t version = CKPT_VERSION;
	memset(p, 0, CKPT_HEADER);
	memcpy(p, ckpt_magic, 8);
	memcpy(p + 8, &version, 4);
	memcpy(p + 12, &h->window_sec, 4);
	memcpy(p + 16, &h->lsn, 8);
	memcpy(p + 24, &h->saved_ms, 8);
	memcpy(p + 32, &h->count, 8);
	memcpy(p + 40, &h->entries_crc, 4);
	uint32_t crc = td_crc32c(0, p, 44);
	memcpy(p + 44, &crc, 4);
}

/* Checks a header read from a file of `size` bytes. */
static int decode_header(const unsigned char *p, uint64_t size, struct header *h)
{
	uint32_t version, crc;
	memcpy(&version, p + 8, 4);
	memcpy(&crc, p + 44, 4);
	if (memcmp(p, ckpt_magic, 8) != 0 || crc != td_crc32c(0, p, 44) || version != CKPT_VERSION)
		return TD_ECORRUPT;
	memcpy(&h->window_sec, p + 12, 4);
	memcpy(&h->lsn, p + 16, 8);
	memcpy(&h->saved_ms, p + 24, 8);
	memcpy(&h->count, p + 32, 8);
	memcpy(&h->entries_crc, p + 40, 4);
	if (h->lsn >= CKPT_MAX_LSN || (size - CKPT_HEADER) % CKPT_ENTRY != 0 ||
	    (size - CKPT_HEADER) / CKPT_ENTRY != h->count)
		return TD_ECORRUPT;
	return 0;
}

/* ------------------------------------------------------------------ save */

/* One shard as copied under the lock, and its keys that must be left out. */
struct shard_copy {
	struct shard sh;
	size_t cap;
	struct pend *held; /* pending in the WAL past the covered LSN */
	size_t nheld, capheld;
};

/* Copies shard i; returns how long the ingest lock was held (ns). */
static uint64_t copy_shard(struct ingest *g, size_t i, uint64_t lsn, struct shard_copy *c)
{
	pthread_mutex_lock(&g->mu);
	uint64_t t0 = td_mono_ns();
	const struct shard *sh = &g->shards[i];
	size_t n = sh->mask + 1;
	if (c->cap < n) {
		c->sh.slots = td_realloc(c->sh.slots, n * sizeof(struct slot));
		c->cap = n;
	}
	memcpy(c->sh.slots, sh->slots, n * sizeof(struct slot));
	c->sh.mask = sh->mask;
	c->nheld = 0;
	for (size_t k = g->pend_head; k < g->npend; k++) {
		const struct pend *p = &g->pend[k];
		if (p->lsn <= lsn || shard_of(g, p->h1) != sh)
			continue;
		if (c->nheld == c->capheld) {
			c->capheld = c->capheld ? c->capheld * 2 : 64;
			c->held = td_realloc(c->held, c->capheld * sizeof(*c->held));
		}
		c->held[c->nheld++] = *p;
	}
	uint64_t ns = td_mono_ns() - t0;
	pthread_mutex_unlock(&g->mu);
	return ns;
}

struct out {
	FILE *f;
	struct header h;
	struct slot buf[CKPT_CHUNK];
	size_t len;
};

static int flush_out(struct out *o)
{
	size_t bytes = o->len * CKPT_ENTRY;
	o->h.entries_crc = td_crc32c(o->h.entries_crc, o->buf, bytes);
	o->h.count += o->len;
	o->len = 0;
	return fwrite(o->buf, 1, bytes, o->f) == bytes ? 0 : td_from_errno(errno);
}

/* Writes the live keys of a copied shard. */
static int write_shard(struct out *o, struct shard_copy *c, uint32_t now_sec, uint32_t window)
{
	for (size_t k = 0; k < c->nheld; k++) {
		struct slot *s = find(&c->sh, c->held[k].h1, c->held[k].h2);
		if (s->sec)
			s->sec = SEC_EXPIRED; /* stays in the probe chain, not live */
	}
	int rc = 0;
	for (size_t j = 0; j <= c->sh.mask && !rc; j++) {
		if (!is_live(&c->sh.slots[j], now_sec, window))
			continue;
		o->buf[o->len++] = c->sh.slots[j];
		if (o->len == CKPT_CHUNK)
			rc = flush_out(o);
	}
	return rc;
}

/* fsyncs the directory holding path, so a rename into it is durable. */
static int fsync_parent(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash == path ? 1 : slash - path), path);
	return td_fsync_dir(dir);
}

/* Writes the file at tmp; o->h gets what was written. */
static int write_file(struct ingest *g, const char *tmp, struct out *o, uint32_t now_sec,
		      uint64_t *lock_ns)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return td_from_errno(errno);
	o->f = fdopen(fd, "wb");
	if (!o->f) {
		close(fd);
		return td_from_errno(errno);
	}
	unsigned char hdr[CKPT_HEADER] = {0};
	int rc = fwrite(hdr, 1, CKPT_HEADER, o->f) == CKPT_HEADER ? 0 : td_from_errno(errno);
	struct shard_copy c;
	memset(&c, 0, sizeof(c));
	for (size_t i = 0; i < NSHARDS && !rc; i++) {
		*lock_ns = TD_MAX(*lock_ns, copy_shard(g, i, o->h.lsn, &c));
		rc = write_shard(o, &c, now_sec, g->window_sec);
	}
	free(c.sh.slots);
	free(c.held);
	if (!rc && o->len)
		rc = flush_out(o);
	if (!rc) {
		encode_header(hdr, &o->h);
		if (fseek(o->f, 0, SEEK_SET) || fwrite(hdr, 1, CKPT_HEADER, o->f) != CKPT_HEADER ||
		    fflush(o->f) || fsync(fileno(o->f)))
			rc = td_from_errno(errno);
	}
	if (fclose(o->f) && !rc)
		rc = td_from_errno(errno);
	return rc;
}

int ingest_checkpoint_save(struct ingest *g, const char *path, uint64_t lsn, int64_t now_ms)
{
	if (lsn >= CKPT_MAX_LSN || (g->wal && lsn > wal_durable_lsn(g->wal)))
		return TD_EINVAL;
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return TD_ETOOLARGE;
	struct out *o = td_calloc(1, sizeof(*o));
	o->h.window_sec = g->window_sec;
	o->h.lsn = lsn;
	o->h.saved_ms = now_ms;
	uint64_t lock_ns = 0;

	pthread_mutex_lock(&g->save_mu);
	uint64_t t0 = td_mono_ns();
	int rc = write_file(g, tmp, o, second_of(now_ms), &lock_ns);
	if (!rc && rename(tmp, path) != 0)
		rc = td_from_errno(errno);
	if (!rc)
		rc = fsync_parent(path);
	if (rc)
		unlink(tmp);
	double secs = (double)(td_mono_ns() - t0) / 1e9;
	pthread_mutex_lock(&g->ck_mu);
	if (rc) {
		g->ck.errors++;
	} else {
		g->ck.lsn = lsn;
		g->ck.saved_ms = now_ms;
		g->ck.entries = o->h.count;
		g->ck.bytes = CKPT_HEADER + o->h.count * CKPT_ENTRY;
		g->ck.window_sec = g->window_sec;
		g->ck.seconds = secs;
		g->ck.lock_seconds = (double)lock_ns / 1e9;
		g->ck.saves++;
	}
	pthread_mutex_unlock(&g->ck_mu);
	pthread_mutex_unlock(&g->save_mu);
	if (rc)
		td_log_error("dedupe: cannot save the checkpoint %s: %s", path, td_strerror(rc));
	else
		td_log_info("dedupe: checkpoint at LSN %llu saved: %llu keys in %.3f s (ingest "
			    "lock held at most %.3f ms at a time)",
			    (unsigned long long)lsn, (unsigned long long)o->h.count, secs,
			    (double)lock_ns / 1e6);
	free(o);
	return rc;
}

/* ------------------------------------------------------------------ load */

/* Reads n entries at entry index `at`; a file cut short is damage. */
static int read_entries(int fd, uint64_t at, struct slot *buf, size_t n)
{
	size_t want = n * CKPT_ENTRY, got = 0;
	off_t off = (off_t)(CKPT_HEADER + at * CKPT_ENTRY);
	while (got < want) {
		ssize_t k = pread(fd, (char *)buf + got, want - got, off + (off_t)got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return td_from_errno(errno);
		if (k == 0)
			return TD_ECORRUPT;
		got += (size_t)k;
	}
	return 0;
}

/* First pass: the entries' checksum and values. */
static int check_entries(int fd, const struct header *h, struct slot *buf)
{
	uint32_t crc = 0;
	for (uint64_t at = 0; at < h->count;) {
		size_t n = (size_t)TD_MIN(h->count - at, CKPT_CHUNK);
		int rc = read_entries(fd, at, buf, n);
		if (rc)
			return rc;
		for (size_t k = 0; k < n; k++)
			if (buf[k].sec <= SEC_EXPIRED)
				return TD_ECORRUPT;
		crc = td_crc32c(crc, buf, n * CKPT_ENTRY);
		at += n;
	}
	return crc == h->entries_crc ? 0 : TD_ECORRUPT;
}

/* Second pass: the keys still inside g's window. */
static int add_entries(struct ingest *g, int fd, const struct header *h, struct slot *buf)
{
	uint32_t now_sec = second_of(td_now_ms());
	for (uint64_t at = 0; at < h->count;) {
		size_t n = (size_t)TD_MIN(h->count - at, CKPT_CHUNK);
		int rc = read_entries(fd, at, buf, n);
		if (rc)
			return rc;
		pthread_mutex_lock(&g->mu);
		for (size_t k = 0; k < n; k++)
			if (is_live(&buf[k], now_sec, g->window_sec))
				ingest_insert(g, buf[k].h1, buf[k].h2, buf[k].sec, now_sec);
		pthread_mutex_unlock(&g->mu);
		at += n;
	}
	return 0;
}

static int load(struct ingest *g, int fd, struct header *h)
{
	struct stat st;
	unsigned char hdr[CKPT_HEADER];
	if (fstat(fd, &st) != 0)
		return td_from_errno(errno);
	if (st.st_size < CKPT_HEADER)
		return TD_ECORRUPT;
	ssize_t got = pread(fd, hdr, sizeof(hdr), 0);
	if (got < 0)
		return td_from_errno(errno);
	if (got != CKPT_HEADER || decode_header(hdr, (uint64_t)st.st_size, h) != 0)
		return TD_ECORRUPT;
	struct slot *buf = td_malloc(CKPT_CHUNK * sizeof(*buf));
	int rc = check_entries(fd, h, buf);
	if (!rc)
		rc = add_entries(g, fd, h, buf);
	free(buf);
	return rc;
}

int ingest_checkpoint_load(struct ingest *g, const char *path, uint64_t *lsn)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? TD_ENOTFOUND : td_from_errno(errno);
	struct header h = {0};
	int rc = load(g, fd, &h);
	close(fd);
	if (rc)
		return rc;
	g->replay_after_lsn = h.lsn;
	pthread_mutex_lock(&g->ck_mu);
	g->ck.lsn = h.lsn;
	g->ck.saved_ms = h.saved_ms;
	g->ck.entries = h.count;
	g->ck.bytes = CKPT_HEADER + h.count * CKPT_ENTRY;
	g->ck.window_sec = h.window_sec;
	pthread_mutex_unlock(&g->ck_mu);
	*lsn = h.lsn;
	return 0;
}

int ingest_checkpoint_restore(struct ingest *g, const char *path, uint64_t *lsn)
{
	*lsn = 0;
	int rc = ingest_checkpoint_load(g, path, lsn);
	if (rc == TD_ENOTFOUND)
		return 0;
	struct ingest_checkpoint_stats st;
	ingest_checkpoint_stats(g, &st);
	if (rc == 0 && st.window_sec < g->window_sec)
		td_log_warn("dedupe: the checkpoint %s was saved with a %u s window, shorter than "
			    "the %u s now: messages received more than %u s before it was saved "
			    "are not recognised as duplicates",
			    path, st.window_sec, g->window_sec, st.window_sec);
	if (rc != TD_ECORRUPT)
		return rc;
	char aside[4096];
	snprintf(aside, sizeof(aside), "%s.damaged", path);
	td_log_error("dedupe: the checkpoint %s is damaged; moved to %s and ignored. The index "
		     "is rebuilt from the WAL files still there: messages from removed ones are "
		     "not recognised as duplicates",
		     path, aside);
	if (rename(path, aside) != 0)
		td_log_error("dedupe: cannot move %s aside: %s", path, strerror(errno));
	pthread_mutex_lock(&g->ck_mu);
	g->ck.damaged = true;
	pthread_mutex_unlock(&g->ck_mu);
	*lsn = 0;
	return 0;
}

void ingest_checkpoint_stats(struct ingest *g, struct ingest_checkpoint_stats *st)
{
	pthread_mutex_lock(&g->ck_mu);
	*st = g->ck;
	pthread_mutex_unlock(&g->ck_mu);
}
