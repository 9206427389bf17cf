/*
 * sessions.c - the session state per canonical person and the stamping of
 * session.* values on the rows the store applies (see sessions.h; the
 * SESSIONS log is in sessions_file.c).
 */
#include "store/sessions_int.h"
#include "base/log.h"
#include "base/td.h"
#include "collect/collect.h"
#include "query/query.h"
#include "store/seg.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What seg_builder_watch notes for us, by index. */
enum { W_CNAME, W_CSOURCE, W_CMEDIUM, W_RSOURCE, W_RMEDIUM, W_CHANNEL, W_PATH, W_N };
static const char *const watch_paths[W_N] = {"enriched.campaign.name",	 "enriched.campaign.source",
					     "enriched.campaign.medium", "enriched.referrer.source",
					     "enriched.referrer.medium", "enriched.channel",
					     "enriched.page.path"};

/* The stamped paths, by index in sessions.path. */
enum { P_ID, P_NUMBER, P_FIRST, P_FIELDS, P_N = P_FIELDS + SF_N };
static const char *const stamp_paths[P_N] = {
    "session.id",     "session.number", "session.first",    "session.landing_page",
    "session.source", "session.medium", "session.campaign", "session.channel"};

static int open_state(struct sessions **out, const char *dir, uint64_t flushed_lsn, int64_t gap_ms,
		      uint64_t snapshot_bytes, bool read_only)
{
	struct sessions *ss = td_calloc(1, sizeof(*ss));
	ss->dir = td_strdup(dir);
	ss->gap = gap_ms > 0 ? gap_ms : SESSIONS_GAP_MS;
	ss->fd = -1;
	ss->snapshot_bytes = snapshot_bytes ? snapshot_bytes : 64ull << 20;
	intern_init(&ss->strs);
	intern_init(&ss->tuples);
	int rc = sessions_load(ss, flushed_lsn, read_only);
	if (rc) {
		sessions_close(ss);
		return rc;
	}
	*out = ss;
	return 0;
}

int sessions_open(struct sessions **out, const char *dir, uint64_t flushed_lsn, int64_t gap_ms,
		  uint64_t snapshot_bytes)
{
	return open_state(out, dir, flushed_lsn, gap_ms, snapshot_bytes, false);
}

int sessions_open_ro(struct sessions **out, const char *dir, uint64_t flushed_lsn, int64_t gap_ms)
{
	return open_state(out, dir, flushed_lsn, gap_ms, 0, true);
}

void sessions_close(struct sessions *ss)
{
	if (!ss)
		return;
	if (ss->fd >= 0)
		close(ss->fd);
	intern_release(&ss->strs);
	intern_release(&ss->tuples);
	free(ss->st);
	free(ss->dirty);
	free(ss->strmap);
	free(ss->dir);
	free(ss);
}

void sessions_watch(struct sessions *ss, struct seg_builder *b)
{
	(void)ss;
	seg_builder_watch(b, watch_paths, W_N);
}

void sessions_grow(struct sessions *ss, uint32_t person)
{
	if (person < ss->cap)
		return;
	uint32_t c = ss->cap ? ss->cap : 1024;
	while (c <= person)
		c = c > UINT32_MAX / 2 ? UINT32_MAX : c * 2;
	ss->st = td_realloc(ss->st, (size_t)c * sizeof(*ss->st));
	memset(ss->st + ss->cap, 0, (size_t)(c - ss->cap) * sizeof(*ss->st));
	ss->cap = c;
}

void sessions_touch(struct sessions *ss, uint32_t person)
{
	struct sess_state *s = &ss->st[person];
	if (s->flags & SESS_DIRTY)
		return;
	s->flags |= SESS_DIRTY;
	if (ss->ndirty == ss->capdirty) {
		ss->capdirty = ss->capdirty ? ss->capdirty * 2 : 4096;
		ss->dirty = td_realloc(ss->dirty, ss->capdirty * sizeof(*ss->dirty));
	}
	ss->dirty[ss->ndirty++] = person;
}

uint32_t sessions_tuple_id(struct sessions *ss, const struct sess_tuple *t)
{
	return intern_id(&ss->tuples, (const char *)t, sizeof(*t));
}

struct sess_tuple sessions_tuple(const struct sessions *ss, uint32_t id)
{
	struct sess_tuple t; /* the arena keeps no alignment: copied out */
	memcpy(&t, intern_str(&ss->tuples, id), sizeof(t));
	return t;
}

/* A watched string of the row as an id in ss->strs, or SESS_NONE. */
static uint32_t watched_str(struct sessions *ss, const struct seg_builder *b, unsigned w)
{
	uint32_t id = seg_builder_watched(b, w);
	if (id == UINT32_MAX)
		return SESS_NONE;
	size_t len;
	const char *s = seg_builder_strof(b, id, &len);
	return intern_id(&ss->strs, s, len);
}

static bool watched_is(const struct seg_builder *b, unsigned w, const char *lit)
{
	uint32_t id = seg_builder_watched(b, w);
	if (id == UINT32_MAX)
		return false;
	size_t len;
	const char *s = seg_builder_strof(b, id, &len);
	return len == strlen(lit) && !memcmp(s, lit, len);
}

static bool has_campaign(const struct seg_builder *b)
{
	return seg_builder_watched(b, W_CNAME) != UINT32_MAX ||
	       seg_builder_watched(b, W_CSOURCE) != UINT32_MAX ||
	       seg_builder_watched(b, W_CMEDIUM) != UINT32_MAX;
}

/* The fields of a session that starts with this row (sessions.h; the
 * touchpoint rules of docs/attribution.md). */
static uint32_t start_tuple(struct sessions *ss, const struct seg_builder *b)
{
	struct sess_tuple t;
	memset(&t, 0, sizeof(t));
	t.f[SF_LANDING] = watched_str(ss, b, W_PATH);
	t.f[SF_CHANNEL] = watched_str(ss, b, W_CHANNEL);
	t.f[SF_CAMPAIGN] = watched_str(ss, b, W_CNAME);
	if (has_campaign(b)) {
		t.campaign = 1;
		t.f[SF_SOURCE] = watched_str(ss, b, W_CSOURCE);
		t.f[SF_MEDIUM] = watched_str(ss, b, W_CMEDIUM);
	} else if (!watched_is(b, W_RMEDIUM, "internal")) {
		t.f[SF_SOURCE] = watched_str(ss, b, W_RSOURCE);
		t.f[SF_MEDIUM] = watched_str(ss, b, W_RMEDIUM);
	} else {
		t.f[SF_SOURCE] = t.f[SF_MEDIUM] = SESS_NONE;
	}
	return sessions_tuple_id(ss, &t);
}

/* Does this row's campaign differ from that of the session's first event? */
static bool other_campaign(struct sessions *ss, const struct seg_builder *b,
			   const struct sess_tuple *t)
{
	if (!has_campaign(b))
		return false;
	if (!t->campaign)
		return true;
	return watched_str(ss, b, W_CNAME) != t->f[SF_CAMPAIGN] ||
	       watched_str(ss, b, W_CSOURCE) != t->f[SF_SOURCE] ||
	       watched_str(ss, b, W_CMEDIUM) != t->f[SF_MEDIUM];
}

/* ss->strs id -> the builder's string id, cached per builder epoch. */
static uint32_t builder_str(struct sessions *ss, struct seg_builder *b, uint32_t id)
{
	if (id >= ss->nstrmap) {
		uint32_t n = TD_MAX(id + 1, ss->nstrmap * 2);
		ss->strmap = td_realloc(ss->strmap, (size_t)n * sizeof(*ss->strmap));
		memset(ss->strmap + ss->nstrmap, 0xff, (size_t)(n - ss->nstrmap) * 4);
		ss->nstrmap = n;
	}
	if (ss->strmap[id] == SESS_NONE)
		ss->strmap[id] = seg_builder_str(b, intern_str(&ss->strs, id));
	return ss->strmap[id];
}

static void stamp(struct sessions *ss, struct seg_builder *b, const struct sess_state *s,
		  bool first)
{
	uint64_t e = seg_builder_epoch(b);
	if (e != ss->epoch) {
		for (unsigned i = 0; i < P_N; i++)
			ss->path[i] = seg_builder_path(b, stamp_paths[i]);
		if (ss->strmap)
			memset(ss->strmap, 0xff, (size_t)ss->nstrmap * sizeof(*ss->strmap));
		ss->epoch = e;
	}
	seg_builder_val(b, ss->path[P_ID], QCOL_NUMBER, (double)s->id, 0, false);
	seg_builder_val(b, ss->path[P_NUMBER], QCOL_NUMBER, s->number, 0, false);
	if (first)
		seg_builder_val(b, ss->path[P_FIRST], QCOL_BOOL, 0, 0, true);
	struct sess_tuple tu = sessions_tuple(ss, s->tuple);
	const struct sess_tuple *t = &tu;
	for (unsigned f = 0; f < SF_N; f++)
		if (t->f[f] != SESS_NONE)
			seg_builder_val(b, ss->path[P_FIELDS + f], QCOL_STRING, 0,
					builder_str(ss, b, t->f[f]), false);
}

void sessions_stamp(struct sessions *ss, struct seg_builder *b, uint32_t person, uint64_t lsn)
{
	int type;
	int64_t ts;
	uint32_t pid;
	seg_builder_last(b, &type, &ts, &pid);
	if ((type != COLLECT_TRACK && type != COLLECT_PAGE && type != COLLECT_SCREEN) ||
	    person == UINT32_MAX)
		return;
	sessions_grow(ss, person);
	struct sess_state *s = &ss->st[person];
	bool start;
	if (!s->id) {
		start = true;
		__atomic_add_fetch(&ss->persons, 1, __ATOMIC_RELAXED);
	} else if (ts >= s->last_ts) {
		struct sess_tuple t = sessions_tuple(ss, s->tuple);
		start = (uint64_t)ts - (uint64_t)s->last_ts > (uint64_t)ss->gap ||
			other_campaign(ss, b, &t);
	} else if ((uint64_t)s->start_ts - (uint64_t)ts <= (uint64_t)ss->gap || ts >= s->start_ts) {
		stamp(ss, b, s, false); /* late, but inside the session: it joins */
		return;
	} else {
		__atomic_add_fetch(&ss->late, 1, __ATOMIC_RELAXED); /* none to give it */
		return;
	}
	if (start) {
		s->id = lsn;
		s->count++;
		s->number = s->count;
		s->start_ts = ts;
		s->tuple = start_tuple(ss, b);
		__atomic_add_fetch(&ss->started, 1, __ATOMIC_RELAXED);
	}
	s->last_ts = ts;
	sessions_touch(ss, person);
	stamp(ss, b, s, start);
}

void sessions_merge(void *ctx, uint32_t winner, uint32_t loser)
{
	struct sessions *ss = ctx;
	sessions_grow(ss, TD_MAX(winner, loser));
	struct sess_state *w = &ss->st[winner], *l = &ss->st[loser];
	if (!l->id)
		return;
	uint32_t count = w->count + l->count;
	if (w->id)
		__atomic_sub_fetch(&ss->persons, 1, __ATOMIC_RELAXED); /* two become one */
	if (!w->id || l->last_ts > w->last_ts) {
		uint32_t flags = w->flags;
		*w = *l;
		w->flags = flags;
	}
	w->count = count;
	uint32_t lflags = l->flags;
	memset(l, 0, sizeof(*l));
	l->flags = lflags;
	sessions_touch(ss, winner);
	sessions_touch(ss, loser);
}

void sessions_get_stats(const struct sessions *ss, struct sessions_stats *st)
{
	/* from any thread (metrics) while the applier counts */
	st->persons = __atomic_load_n(&ss->persons, __ATOMIC_RELAXED);
	st->started = __atomic_load_n(&ss->started, __ATOMIC_RELAXED);
	st->late = __atomic_load_n(&ss->late, __ATOMIC_RELAXED);
	st->log_bytes = __atomic_load_n(&ss->log_bytes, __ATOMIC_RELAXED);
	st->snapshots = __atomic_load_n(&ss->snapshots, __ATOMIC_RELAXED);
}
