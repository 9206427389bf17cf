/*
 * sessions_file.c - DATA/events/SESSIONS, the session state's log (see
 * sessions.h; docs/store.md has the format).
 *
 * The file is an 8-byte magic, then batches. A batch is person records and
 * one mark:
 *   'P' u32 person, i64 last_ts, i64 start_ts, u64 id, u32 number, u32 count,
 *       u8 campaign, then per field (landing, source, medium, campaign,
 *       channel) u16 length (0xffff: none) and its bytes;
 *   'M' u64 lsn, i64 the session gap in ms the stamps were made with (a
 *       reader of the log stamps with it too), u32 CRC-32C of the batch's
 *       bytes before this CRC.
 * A batch holds the persons that changed since the previous one and ends at
 * the state as of the mark's LSN. Loading applies batches up to the last
 * whole one whose LSN is at most the manifest's and cuts the rest. A snapshot
 * (every person, one batch) is written to SESSIONS.next and replaces the
 * log once a manifest names its LSN; until then the log stays the truth.
 */
#include "base/buf.h"
#include "base/crc32c.h"
#include "base/log.h"
#include "base/td.h"
#include "store/sessions_int.h"
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char magic[8] = {'T', 'D', 'S', 'E', 'S', 'S', '1', '\n'};

#define REC_FIXED   (1 + 4 + 8 + 8 + 8 + 4 + 4 + 1)
#define MARK_LEN    (1 + 8 + 8 + 4)
#define NO_FIELD    0xffff
#define WRITE_CHUNK (4u << 20)

static void file_path(const struct sessions *ss, const char *name, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", ss->dir, name);
}

/* ---- reading ---- */

/* The length of the person record at p (n bytes left), or 0 if cut short. */
static size_t record_len(const unsigned char *p, size_t n)
{
	if (n < REC_FIXED)
		return 0;
	size_t at = REC_FIXED;
	for (int f = 0; f < SF_N; f++) {
		if (n - at < 2)
			return 0;
		uint16_t l;
		memcpy(&l, p + at, 2);
		at += 2;
		if (l != NO_FIELD) {
			if (n - at < l)
				return 0;
			at += l;
		}
	}
	return at;
}

/* Checks the batch at p: its end (after the mark) and LSN; false when it is
 * cut short or damaged. */
static bool batch_scan(const unsigned char *p, size_t n, size_t *end, uint64_t *lsn, int64_t *gap)
{
	size_t at = 0;
	while (at < n && p[at] == 'P') {
		size_t l = record_len(p + at, n - at);
		if (!l)
			return false;
		at += l;
	}
	if (n - at < MARK_LEN || p[at] != 'M')
		return false;
	uint32_t crc;
	memcpy(lsn, p + at + 1, 8);
	memcpy(gap, p + at + 9, 8);
	memcpy(&crc, p + at + 17, 4);
	if (td_crc32c(0, p, at + 17) != crc)
		return false;
	*end = at + MARK_LEN;
	return true;
}

static void batch_apply(struct sessions *ss, const unsigned char *p, size_t n)
{
	size_t at = 0;
	while (at < n && p[at] == 'P') {
		const unsigned char *r = p + at;
		uint32_t person;
		struct sess_state s;
		memset(&s, 0, sizeof(s));
		memcpy(&person, r + 1, 4);
		memcpy(&s.last_ts, r + 5, 8);
		memcpy(&s.start_ts, r + 13, 8);
		memcpy(&s.id, r + 21, 8);
		memcpy(&s.number, r + 29, 4);
		memcpy(&s.count, r + 33, 4);
		struct sess_tuple t;
		memset(&t, 0, sizeof(t));
		t.campaign = r[37];
		size_t q = REC_FIXED;
		for (int f = 0; f < SF_N; f++) {
			uint16_t l;
			memcpy(&l, r + q, 2);
			q += 2;
			t.f[f] = SESS_NONE;
			if (l != NO_FIELD) {
				t.f[f] = intern_id(&ss->strs, (const char *)r + q, l);
				q += l;
			}
		}
		s.tuple = sessions_tuple_id(ss, &t);
		sessions_grow(ss, person);
		struct sess_state *d = &ss->st[person];
		ss->persons += (s.id != 0) - (d->id != 0);
		*d = s;
		at += q;
	}
}

/* Applies f's batches up to LSN upto; returns the end of the last one
 * applied and its LSN (0, 0 when none). */
static size_t log_apply(struct sessions *ss, const unsigned char *f, size_t n, uint64_t upto,
			uint64_t *mark, int64_t *gap)
{
	size_t at = sizeof(magic), good = sizeof(magic);
	*mark = 0;
	*gap = 0;
	while (at < n) {
		size_t end;
		uint64_t lsn;
		int64_t g;
		if (!batch_scan(f + at, n - at, &end, &lsn, &g) || lsn > upto)
			break;
		batch_apply(ss, f + at, end);
		at += end;
		good = at;
		*mark = lsn;
		*gap = g;
	}
	return good;
}

/* ---- writing ---- */

static void put_state(struct td_buf *b, const struct sessions *ss, uint32_t person)
{
	const struct sess_state *s = &ss->st[person];
	unsigned char r[REC_FIXED];
	r[0] = 'P';
	memcpy(r + 1, &person, 4);
	memcpy(r + 5, &s->last_ts, 8);
	memcpy(r + 13, &s->start_ts, 8);
	memcpy(r + 21, &s->id, 8);
	memcpy(r + 29, &s->number, 4);
	memcpy(r + 33, &s->count, 4);
	struct sess_tuple tu;
	if (s->id)
		tu = sessions_tuple(ss, s->tuple);
	const struct sess_tuple *t = s->id ? &tu : NULL;
	r[37] = t ? (unsigned char)t->campaign : 0;
	td_buf_append(b, r, sizeof(r));
	for (int f = 0; f < SF_N; f++) {
		uint32_t id = t ? t->f[f] : SESS_NONE;
		uint16_t l = NO_FIELD;
		if (id != SESS_NONE)
			l = (uint16_t)TD_MIN(intern_len(&ss->strs, id), NO_FIELD - 1);
		td_buf_append(b, &l, 2);
		if (l != NO_FIELD)
			td_buf_append(b, intern_str(&ss->strs, id), l);
	}
}

/* Writes what b holds to fd, folding it into the batch's CRC. */
static int drain(int fd, struct td_buf *b, uint32_t *crc, uint64_t *written)
{
	*crc = td_crc32c(*crc, b->data, b->len);
	int rc = td_write_all(fd, b->data, b->len);
	if (!rc)
		*written += b->len;
	td_buf_reset(b);
	return rc;
}

/* One batch (the dirty persons, or every person with a session) and its
 * mark, to fd. */
static int write_batch(struct sessions *ss, int fd, bool all, uint64_t lsn, uint64_t *written)
{
	struct td_buf b;
	td_buf_init(&b, SIZE_MAX);
	uint32_t crc = 0;
	int rc = 0;
	size_t n = all ? ss->cap : ss->ndirty;
	for (size_t i = 0; i < n && !rc; i++) {
		uint32_t p = all ? (uint32_t)i : ss->dirty[i];
		if (all && !ss->st[p].id)
			continue;
		put_state(&b, ss, p);
		if (b.len >= WRITE_CHUNK)
			rc = drain(fd, &b, &crc, written);
	}
	if (!rc) {
		td_buf_putc(&b, 'M');
		td_buf_append(&b, &lsn, 8);
		td_buf_append(&b, &ss->gap, 8);
		crc = td_crc32c(crc, b.data, b.len);
		td_buf_append(&b, &crc, 4);
		rc = td_write_all(fd, b.data, b.len);
		if (!rc)
			*written += b.len;
	}
	td_buf_release(&b);
	return rc;
}

static void clear_dirty(struct sessions *ss)
{
	for (size_t i = 0; i < ss->ndirty; i++)
		ss->st[ss->dirty[i]].flags &= ~SESS_DIRTY;
	ss->ndirty = 0;
}

/* Writes a snapshot as of lsn to DIR/name (created, truncated); returns its
 * descriptor (O_APPEND) in *fd_out. */
static int write_snapshot(struct sessions *ss, const char *name, uint64_t lsn, int *fd_out,
			  uint64_t *bytes)
{
	char path[4096];
	file_path(ss, name, path, sizeof(path));
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return td_from_errno(errno);
	*bytes = 0;
	int rc = td_write_all(fd, magic, sizeof(magic));
	if (!rc) {
		*bytes = sizeof(magic);
		rc = write_batch(ss, fd, true, lsn, bytes);
	}
	if (rc) {
		close(fd);
		unlink(path);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

static bool wants_snapshot(const struct sessions *ss, uint64_t min_bytes)
{
	uint64_t live = ss->persons * 64 + sizeof(magic) + MARK_LEN;
	return ss->log_bytes > min_bytes && ss->log_bytes > 4 * live;
}

int sessions_write(struct sessions *ss, uint64_t lsn, uint64_t flushed_lsn, int *sync_fd)
{
	*sync_fd = -1;
	char path[4096], next[4096];
	file_path(ss, "SESSIONS", path, sizeof(path));
	file_path(ss, "SESSIONS.next", next, sizeof(next));
	if (ss->next_pending && flushed_lsn >= ss->next_lsn) {
		/* a manifest names the snapshot's LSN: it is the log now */
		if (rename(next, path) || td_fsync_dir(ss->dir))
			td_log_warn("store: cannot replace %s with its snapshot: %s", path,
				    strerror(errno));
		else
			ss->next_pending = false;
	}
	int rc;
	if (!ss->next_pending && wants_snapshot(ss, ss->snapshot_bytes)) {
		int fd;
		uint64_t bytes;
		rc = write_snapshot(ss, "SESSIONS.next", lsn, &fd, &bytes);
		if (rc)
			return rc;
		close(ss->fd);
		ss->fd = fd;
		__atomic_store_n(&ss->log_bytes, bytes, __ATOMIC_RELAXED);
		ss->next_pending = true;
		ss->next_lsn = lsn;
		__atomic_add_fetch(&ss->snapshots, 1, __ATOMIC_RELAXED);
	} else {
		uint64_t before = ss->log_bytes, after = before;
		rc = write_batch(ss, ss->fd, false, lsn, &after);
		__atomic_store_n(&ss->log_bytes, after, __ATOMIC_RELAXED);
		if (rc) {
			/* cut the partial batch so the next one follows a whole one */
			if (ftruncate(ss->fd, (off_t)before))
				td_log_error("store: cannot cut %s back: %s", path,
					     strerror(errno));
			__atomic_store_n(&ss->log_bytes, before, __ATOMIC_RELAXED);
			return rc;
		}
	}
	clear_dirty(ss);
	*sync_fd = dup(ss->fd);
	return *sync_fd < 0 ? td_from_errno(errno) : 0;
}

/* ---- opening ---- */

/* A SESSIONS.next that a manifest reached (the crash came between the
 * manifest and the rename) replaces the log; any other is removed. A reader
 * only says which of the two to read. */
static const char *settle_next(struct sessions *ss, uint64_t flushed_lsn, bool read_only)
{
	char path[4096], next[4096];
	file_path(ss, "SESSIONS", path, sizeof(path));
	file_path(ss, "SESSIONS.next", next, sizeof(next));
	unsigned char *f;
	size_t n;
	if (store_read_file(next, &f, &n))
		return "SESSIONS";
	size_t end;
	uint64_t lsn;
	int64_t gap;
	bool use = n > sizeof(magic) && !memcmp(f, magic, sizeof(magic)) &&
		   batch_scan(f + sizeof(magic), n - sizeof(magic), &end, &lsn, &gap) &&
		   lsn <= flushed_lsn;
	free(f);
	if (read_only)
		return use ? "SESSIONS.next" : "SESSIONS";
	if (use && rename(next, path) == 0) {
		td_fsync_dir(ss->dir);
		td_log_info("store: session state taken from its snapshot (LSN %llu)",
			    (unsigned long long)lsn);
	} else {
		unlink(next);
	}
	return "SESSIONS";
}

int sessions_load(struct sessions *ss, uint64_t flushed_lsn, bool read_only)
{
	char path[4096];
	file_path(ss, settle_next(ss, flushed_lsn, read_only), path, sizeof(path));
	unsigned char *f = NULL;
	size_t n = 0;
	int rc = store_read_file(path, &f, &n);
	if (rc && rc != TD_ENOTFOUND) {
		td_log_error("store: cannot read %s: %s", path, td_strerror(rc));
		return rc;
	}
	bool fresh = rc == TD_ENOTFOUND || n < sizeof(magic);
	if (!fresh && memcmp(f, magic, sizeof(magic))) {
		td_log_error(
		    "store: %s is not a session log; move it away to start sessions afresh", path);
		free(f);
		return TD_ECORRUPT;
	}
	uint64_t mark = 0;
	int64_t gap = 0;
	size_t good = fresh ? 0 : log_apply(ss, f, n, flushed_lsn, &mark, &gap);
	free(f);
	ss->loaded_mark = mark;
	ss->loaded_none = fresh;
	if (read_only) {
		if (gap > 0) /* stamp as the writer did */
			ss->gap = gap;
		return 0;
	}
	if (flushed_lsn > 0 && mark != flushed_lsn) {
		if (fresh)
			td_log_info("store: no session state yet (a store from before "
				    "sessions): every person's next event starts a session");
		else
			td_log_warn("store: %s ends at LSN %llu, not at the store's %llu: sessions "
				    "of events in between may be split",
				    path, (unsigned long long)mark,
				    (unsigned long long)flushed_lsn);
	}
	if (fresh || wants_snapshot(ss, TD_MIN(ss->snapshot_bytes, 1u << 20))) {
		/* a new log, or a compact one (the state is exactly as of mark) */
		int fd;
		uint64_t bytes;
		const char *tmp = "SESSIONS.tmp";
		rc = write_snapshot(ss, tmp, fresh ? flushed_lsn : mark, &fd, &bytes);
		if (!rc && fdatasync(fd))
			rc = td_from_errno(errno);
		if (!rc) {
			char tpath[4096];
			file_path(ss, tmp, tpath, sizeof(tpath));
			if (rename(tpath, path) || td_fsync_dir(ss->dir))
				rc = td_from_errno(errno);
		}
		if (rc) {
			td_log_error("store: cannot write %s: %s", path, td_strerror(rc));
			return rc;
		}
		ss->fd = fd;
		ss->log_bytes = bytes;
		return 0;
	}
	ss->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (ss->fd < 0 || ftruncate(ss->fd, (off_t)good)) {
		rc = td_from_errno(errno);
		td_log_error("store: cannot open %s: %s", path, strerror(errno));
		return rc;
	}
	ss->log_bytes = good;
	return 0;
}

int sessions_check(const char *dir, uint64_t flushed_lsn, char *msg, size_t n)
{
	struct sessions *ss;
	int rc = sessions_open_ro(&ss, dir, flushed_lsn, 0);
	if (rc) {
		snprintf(msg, n, "%s/SESSIONS: unreadable or not a session log (%s)", dir,
			 td_strerror(rc));
		return 1;
	}
	int problems = 0;
	if (!ss->loaded_none && flushed_lsn > 0 && ss->loaded_mark != flushed_lsn) {
		snprintf(msg, n,
			 "%s/SESSIONS: ends at LSN %llu, not at the manifest's %llu (the sessions "
			 "of the events in between may be split)",
			 dir, (unsigned long long)ss->loaded_mark, (unsigned long long)flushed_lsn);
		problems = 1;
	}
	sessions_close(ss);
	return problems;
}
