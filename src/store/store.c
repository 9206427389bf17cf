/*
 * store.c - the store's life cycle: open and recovery, the applier's
 * memtable -> sealed in-memory segment -> segment file path, snapshots.
 * Background merging is in compact.c, export scans in scan.c.
 *
 * Locks: s->lock guards the segment lists, the current snapshot and the
 * counters (held briefly, never during I/O); s->wlock serializes the
 * changes of the file set (flush, merge) and the manifest writes.
 */
#include "store/store_int.h"
#include "base/log.h"
#include "base/td.h"
#include "collect/collect.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void store_tune_malloc(void)
{
	mallopt(M_MMAP_THRESHOLD, 512 << 20);
	mallopt(M_TRIM_THRESHOLD, 1024 << 20);
}

int64_t store_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Removes files a crash or an interrupted merge left behind: temporaries
 * and segment files the manifest does not list. */
static void remove_strays(struct store *s)
{
	DIR *d = opendir(s->dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		const char *n = e->d_name;
		size_t l = strlen(n);
		bool tmp = l > 4 && !strcmp(n + l - 4, ".tmp");
		bool seg = l == 21 && !strcmp(n + 16, ".tseg");
		if (seg) {
			unsigned long long id = strtoull(n, NULL, 16);
			for (size_t i = 0; i < s->ndisk; i++)
				if (s->disk[i]->id == id)
					seg = false;
		}
		if (tmp || seg) {
			char p[4096];
			snprintf(p, sizeof(p), "%s/%s", s->dir, n);
			if (unlink(p) == 0)
				td_log_info("store: removed leftover %s", n);
		}
	}
	closedir(d);
}

int store_read_file(const char *path, unsigned char **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? TD_ENOTFOUND : td_from_errno(errno);
	struct stat st;
	if (fstat(fd, &st)) {
		int rc = td_from_errno(errno);
		close(fd);
		return rc;
	}
	size_t n = (size_t)st.st_size, have = 0;
	unsigned char *b = td_malloc(n ? n : 1);
	while (have < n) {
		ssize_t r = pread(fd, b + have, n - have, (off_t)have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int rc = r < 0 ? td_from_errno(errno) : TD_EIO;
			free(b);
			close(fd);
			return rc;
		}
		have += (size_t)r;
	}
	close(fd);
	*out = b;
	*len = n;
	return 0;
}

int store_open(struct store **out, const struct store_options *o)
{
	struct store *s = td_calloc(1, sizeof(*s));
	s->o = *o;
	s->dir = td_strdup(o->dir);
	if (!s->o.seal_interval_ms)
		s->o.seal_interval_ms = 500;
	if (!s->o.flush_rows)
		s->o.flush_rows = 1000000;
	if (!s->o.flush_interval_ms)
		s->o.flush_interval_ms = 10000;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->wlock, NULL);
	pthread_mutex_init(&s->ident_lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	int rc = 0;
	if (!o->read_only && mkdir(s->dir, 0700) && errno != EEXIST) {
		td_log_error("store: cannot create %s: %s", s->dir, strerror(errno));
		rc = td_from_errno(errno);
		goto fail;
	}
	char err[512];
	struct manifest m;
	rc = manifest_read(s->dir, &m, err, sizeof(err));
	if (rc == TD_ENOTFOUND) {
		memset(&m, 0, sizeof(m));
		m.next_id = 1;
		rc = 0;
	} else if (rc) {
		if (rc != TD_ENOTFOUND)
			td_log_error("store: %s", err);
		goto fail;
	}
	s->flushed_lsn = s->applied_lsn = m.flushed_lsn;
	s->next_id = m.next_id;
	s->disk = td_calloc(m.n ? m.n : 1, sizeof(*s->disk));
	for (uint32_t i = 0; i < m.n; i++) {
		char p[4096];
		manifest_seg_path(s->dir, m.e[i].id, p, sizeof(p));
		struct seg *g;
		rc = seg_open_file(&g, p, m.e[i].id, err, sizeof(err));
		if (rc) {
			td_log_error("store: segment %s listed in the manifest: %s", p, err);
			manifest_release(&m);
			rc = rc == TD_ENOTFOUND ? TD_ECORRUPT : rc;
			goto fail;
		}
		s->disk[s->ndisk++] = g;
	}
	manifest_release(&m);
	s->flushed_persons = m.persons;
	s->ident_lsn = m.flushed_lsn;
	if (o->identity)
		s->ident_strs = identity_config_dup(&s->ident_cfg, o->identity);
	else
		identity_config_default(&s->ident_cfg);
	/* a reader takes canonical[] from the checkpoint when it is current and
	 * opens the graph only if something needs it */
	if (o->read_only && s->ndisk > 0)
		s->view = canon_read(s->dir, m.flushed_lsn, m.persons);
	if (!s->view) {
		rc = store_identity_open(&s->ident, s->dir, o->identity, m.flushed_lsn, m.persons,
					 o->read_only);
		if (rc)
			goto fail;
		s->view = identity_view_publish(s->ident);
		/* the graph is exactly as of the flushed LSN now: a store from before
		 * the checkpoint, or after a crash that tore it, gets one for readers */
		if (!o->read_only && s->ndisk > 0) {
			struct identity_view *cur = canon_read(s->dir, m.flushed_lsn, m.persons);
			if (!cur && canon_write(s->dir, s->view, m.flushed_lsn))
				td_log_error("store: cannot write %s/CANONICAL", s->dir);
			identity_view_release(cur);
		}
	}
	s->npersons = s->view->n;
	s->memtable = seg_builder_new();
	if (!o->read_only) {
		rc = sessions_open(&s->sess, s->dir, m.flushed_lsn, o->session_gap_ms,
				   o->session_snapshot_bytes);
		if (rc)
			goto fail;
		sessions_watch(s->sess, s->memtable);
		identity_set_merge_hook(s->ident, sessions_merge, s->sess);
	}
	s->last_seal_ms = store_now_ms();
	s->dirty = true;
	if (!o->read_only) {
		remove_strays(s);
		flush_start(s);
		if (!o->no_merge)
			compact_start(s);
	}
	*out = s;
	return 0;
fail:
	store_close(s);
	return rc;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	compact_stop(s);
	if (!s->o.read_only && s->memtable && s->ident) {
		int rc = store_tick(s, true);
		if (rc)
			td_log_error("store: final flush failed: %s (the WAL still has it)",
				     td_strerror(rc));
	}
	flush_stop(s);
	if (s->ident)
		identity_set_merge_hook(s->ident, NULL, NULL);
	sessions_close(s->sess);
	for (size_t i = 0; i < s->ndisk; i++)
		seg_unref(s->disk[i]);
	for (size_t i = 0; i < s->nmem; i++)
		seg_unref(s->mem[i]);
	free(s->disk);
	free(s->mem);
	if (s->snap)
		store_snap_release(s->snap);
	seg_builder_free(s->memtable);
	identity_view_release(s->view);
	identity_close(s->ident);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->wlock);
	pthread_mutex_destroy(&s->ident_lock);
	pthread_cond_destroy(&s->cond);
	free(s->ident_strs);
	free(s->dir);
	free(s);
}

uint64_t store_flushed_lsn(const struct store *s)
{
	return __atomic_load_n(&s->flushed_lsn, __ATOMIC_ACQUIRE);
}

int store_apply(struct store *s, uint64_t lsn, const void *payload, size_t len)
{
	if (lsn <= s->applied_lsn)
		return 0;
	if (seg_builder_rows(s->memtable) == 0)
		s->memtable_since_ms = store_now_ms();
	struct identity *g = store_graph(s);
	if (!g)
		return TD_EIO;
	if (!s->sess && s->o.read_only && !s->sess_failed) {
		/* a reader applying the WAL past the flushed LSN stamps as the
		 * server did: the state as of that LSN, read once, on first use */
		if (sessions_open_ro(&s->sess, s->dir, s->flushed_lsn, s->o.session_gap_ms)) {
			s->sess_failed = true;
		} else {
			sessions_watch(s->sess, s->memtable);
			identity_set_merge_hook(g, sessions_merge, s->sess);
		}
	}
	int rc = seg_builder_add(s->memtable, lsn, payload, len, SEG_PID_RESOLVE, g);
	if (!rc && s->sess) {
		int type;
		int64_t ts;
		uint32_t pid;
		seg_builder_last(s->memtable, &type, &ts, &pid);
		sessions_stamp(s->sess, s->memtable, identity_canonical(g, pid), lsn);
	}
	__atomic_store_n(&s->applied_lsn, lsn, __ATOMIC_RELAXED);
	if (rc)
		__atomic_add_fetch(&s->bad_records, 1, __ATOMIC_RELAXED);
	return rc;
}

/* Seals the memtable into an in-memory segment that the next snapshot sees. */
static int seal(struct store *s)
{
	if (seg_builder_unsealed(s->memtable) == 0)
		return 0;
	unsigned char *img;
	size_t len;
	int rc = seg_builder_seal(s->memtable, &img, &len);
	if (rc)
		return rc;
	struct seg *g;
	char err[256];
	rc = seg_open_image(&g, img, len, err, sizeof(err));
	if (rc) {
		td_log_error("store: a fresh segment does not read back: %s", err);
		return rc;
	}
	g->npids_after = identity_npids(s->ident);
	struct identity_view *v = identity_view_publish(s->ident), *old;
	pthread_mutex_lock(&s->lock);
	if (s->nmem == 0)
		s->mem_since_ms = s->memtable_since_ms;
	s->mem = td_realloc(s->mem, (s->nmem + 1) * sizeof(*s->mem));
	s->mem[s->nmem++] = g;
	s->mem_rows += g->rows;
	s->mem_in_memtable++;
	old = s->view;
	s->view = v;
	s->npersons = v->n;
	s->dirty = true;
	pthread_mutex_unlock(&s->lock);
	identity_view_release(old);
	return 0;
}

int store_write_segment(struct store *s, const unsigned char *img, size_t len, uint64_t id,
			struct seg **out)
{
	char path[4096], tmp[4200];
	manifest_seg_path(s->dir, id, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return td_from_errno(errno);
	int rc = td_write_all(fd, img, len);
	if (!rc && fdatasync(fd))
		rc = td_from_errno(errno);
	close(fd);
	if (!rc && rename(tmp, path))
		rc = td_from_errno(errno);
	if (rc) {
		unlink(tmp);
		return rc;
	}
	char err[256];
	rc = seg_open_file(out, path, id, err, sizeof(err));
	if (rc)
		td_log_error("store: segment %s does not read back: %s", path, err);
	return rc;
}

/* The manifest for the current disk list (+ add, - the n in drop). Caller holds wlock. */
int store_commit_manifest(struct store *s, struct seg *add, struct seg *const *drop, size_t ndrop,
			  uint64_t flushed_lsn)
{
	struct manifest m = {
	    .flushed_lsn = flushed_lsn, .next_id = s->next_id, .persons = s->flushed_persons};
	m.e = td_calloc(s->ndisk + 1, sizeof(*m.e));
	for (size_t i = 0; i <= s->ndisk; i++) {
		struct seg *g = i < s->ndisk ? s->disk[i] : add;
		bool dropped = !g;
		for (size_t k = 0; k < ndrop && !dropped; k++)
			dropped = drop[k] == g;
		if (dropped)
			continue;
		char path[4096];
		manifest_seg_path(s->dir, g->id, path, sizeof(path));
		m.e[m.n++] =
		    (struct manifest_entry){g->id, g->rows, g->min_lsn, g->max_lsn, g->len};
	}
	int rc = manifest_write(s->dir, &m);
	manifest_release(&m);
	return rc;
}

int store_seal(struct store *s)
{
	int rc = seal(s);
	if (!rc)
		s->last_seal_ms = store_now_ms();
	return rc;
}

int store_tick(struct store *s, bool force)
{
	int64_t now = store_now_ms();
	int rc = 0;
	if (force || now - s->last_seal_ms >= (int64_t)s->o.seal_interval_ms ||
	    seg_builder_unsealed(s->memtable) >= s->o.flush_rows) {
		rc = seal(s);
		s->last_seal_ms = now;
	}
	if (rc || s->o.read_only)
		return rc;
	return flush_tick(s, now, force);
}

void store_get_stats(struct store *s, struct store_stats *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->ndisk; i++) {
		const struct seg *g = s->disk[i];
		st->rows += g->rows;
		st->segment_bytes += g->len;
		for (uint32_t k = 0; k < g->ngroups; k++) {
			const struct seg_group *gr = &g->groups[k];
			st->bytes_ts += gr->a_ts.len;
			st->bytes_pid += gr->a_pid.len;
			st->bytes_raw += gr->a_raw.len + gr->a_rawidx.len;
			for (uint32_t c = 0; c < gr->ncols; c++)
				st->bytes_props += gr->cols[c].a_present.len +
						   gr->cols[c].a_values.len +
						   gr->cols[c].a_dict.len + gr->cols[c].a_zone.len;
		}
		st->bytes_name += g->len; /* adjusted below: directory and padding */
	}
	st->bytes_name -= st->bytes_ts + st->bytes_pid + st->bytes_raw + st->bytes_props;
	st->segments = s->ndisk;
	st->rows_memory = s->mem_rows;
	st->rows += s->mem_rows;
	st->pids = s->npersons;
	st->merges = s->merges;
	st->flushes = s->flushes;
	st->flush_ms = s->flush_ms_total;
	st->flush_errors = s->flush_errors;
	pthread_mutex_unlock(&s->lock);
	st->flushed_lsn = store_flushed_lsn(s);
	st->applied_lsn = __atomic_load_n(&s->applied_lsn, __ATOMIC_RELAXED);
	st->bad_records = __atomic_load_n(&s->bad_records, __ATOMIC_RELAXED);
	if (s->ident) /* a reader that did not need the graph has no figures for it */
		identity_get_stats(s->ident, &st->identity);
	if (s->sess && !s->o.read_only) /* set at open: safe from any thread */
		sessions_get_stats(s->sess, &st->sessions);
}

struct identity *store_graph(struct store *s)
{
	pthread_mutex_lock(&s->ident_lock);
	if (!s->ident && store_identity_open(&s->ident, s->dir, &s->ident_cfg, s->ident_lsn,
					     s->flushed_persons, true) != 0)
		s->ident = NULL;
	struct identity *g = s->ident;
	pthread_mutex_unlock(&s->ident_lock);
	return g;
}

struct identity *store_identity(struct store *s)
{
	return store_graph(s);
}
