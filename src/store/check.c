/*
 * check.c - `tandem check`: reads the manifest, every listed segment (all
 * checksums, ordering, person ids) and the person map, and reports what is
 * wrong. It only reads.
 */
#include "store/store_int.h"
#include "base/buf.h"
#include "base/td.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_segment(const char *dir, const struct manifest_entry *e, uint32_t persons,
			 struct td_buf *r)
{
	char path[4096], err[512];
	manifest_seg_path(dir, e->id, path, sizeof(path));
	struct seg *g;
	int rc = seg_open_file(&g, path, e->id, err, sizeof(err));
	if (rc) {
		td_buf_printf(r, "segment %s: %s\n", path, err);
		return 1;
	}
	int problems = 0;
	if (g->rows != e->rows || g->min_lsn != e->min_lsn || g->max_lsn != e->max_lsn ||
	    g->len != e->bytes) {
		td_buf_printf(r, "segment %s: does not match its manifest entry\n", path);
		problems++;
	}
	if (seg_verify(g, err, sizeof(err))) {
		td_buf_printf(r, "segment %s: %s\n", path, err);
		problems++;
	}
	for (uint32_t k = 0; k < g->ngroups; k++) {
		const struct seg_group *gr = &g->groups[k];
		for (uint32_t i = 0; i < gr->n; i++)
			if (gr->pid[i] >= persons) {
				td_buf_printf(r,
					      "segment %s: event \"%s\" row %u has person id %u, "
					      "beyond the %u person ids the manifest counts\n",
					      path, gr->name, i, gr->pid[i], persons);
				problems++;
				break;
			}
	}
	seg_unref(g);
	return problems;
}

/* A checkpoint that readers would trust must say what the log says (a
 * stale or torn one is ignored by readers, so it is no problem). */
static int check_canonical(const char *dir, struct identity *g, const struct manifest *m,
			   struct td_buf *r)
{
	struct identity_view *cp = canon_read(dir, m->flushed_lsn, m->persons);
	if (!cp)
		return 0;
	struct identity_view *v = identity_view_publish(g);
	int bad = 0;
	for (uint32_t i = 0; i < cp->n && !bad; i++) {
		uint32_t a = cp->canonical ? cp->canonical[i] : i;
		uint32_t b = i < v->n && v->canonical ? v->canonical[i] : i;
		if (a != b) {
			td_buf_printf(r,
				      "%s/CANONICAL: person id %u is %u there but %u in IDENTITY "
				      "(delete CANONICAL: readers then use the log)\n",
				      dir, i, a, b);
			bad = 1;
		}
	}
	identity_view_release(v);
	identity_view_release(cp);
	return bad;
}

int store_check(const char *dir, struct td_buf *r)
{
	char err[512];
	struct manifest m;
	int rc = manifest_read(dir, &m, err, sizeof(err));
	if (rc == TD_ENOTFOUND) {
		td_buf_printf(r, "no store in %s (nothing stored yet)\n", dir);
		return 0;
	}
	if (rc) {
		td_buf_printf(r, "manifest: %s\n", err);
		return 1;
	}
	int problems = 0;
	struct identity *g = NULL;
	rc = store_identity_open(&g, dir, NULL, m.flushed_lsn, m.persons, true);
	if (!rc)
		problems += check_canonical(dir, g, &m, r);
	identity_close(g);
	if (rc) {
		td_buf_printf(r,
			      "%s/IDENTITY: unreadable or fewer than the %u persons the manifest "
			      "counts (%s)\n",
			      dir, m.persons, td_strerror(rc));
		problems++;
	}
	char msg[700];
	if (sessions_check(dir, m.flushed_lsn, msg, sizeof(msg))) {
		td_buf_printf(r, "%s\n", msg);
		problems++;
	}
	uint64_t rows = 0, bytes = 0;
	for (uint32_t i = 0; i < m.n; i++) {
		problems += check_segment(dir, &m.e[i], m.persons, r);
		rows += m.e[i].rows;
		bytes += m.e[i].bytes;
		for (uint32_t k = 0; k < i; k++)
			if (m.e[k].id == m.e[i].id) {
				td_buf_printf(r, "manifest: segment %016llx listed twice\n",
					      (unsigned long long)m.e[i].id);
				problems++;
			}
	}
	td_buf_printf(r,
		      "%s: %u segments, %llu events, %llu bytes, %u persons, WAL covered up to "
		      "LSN %llu: %d problem%s\n",
		      dir, m.n, (unsigned long long)rows, (unsigned long long)bytes, m.persons,
		      (unsigned long long)m.flushed_lsn, problems, problems == 1 ? "" : "s");
	manifest_release(&m);
	return problems;
}
