/*
 * sessions_int.h - the session state shared by sessions.c (stamping,
 * merges) and sessions_file.c (the SESSIONS log).
 */
#ifndef TD_STORE_SESSIONS_INT_H
#define TD_STORE_SESSIONS_INT_H

#include "base/intern.h"
#include "store/sessions.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A session's fields, in the order they are stamped and stored. */
enum {
	SF_LANDING,  /* session.landing_page */
	SF_SOURCE,   /* session.source */
	SF_MEDIUM,   /* session.medium */
	SF_CAMPAIGN, /* session.campaign */
	SF_CHANNEL,  /* session.channel */
	SF_N
};
#define SESS_NONE UINT32_MAX

/* Interned in sessions.tuples: the fields as ids in sessions.strs (or
 * SESS_NONE) and whether the first event carried a campaign (then
 * source/medium/campaign are the campaign's and name it). */
struct sess_tuple {
	uint32_t f[SF_N];
	uint32_t campaign; /* 1: it did */
};

#define SESS_DIRTY 1u

struct sess_state {
	int64_t last_ts, start_ts;
	uint64_t id;	 /* LSN of the session's first event; 0: no session yet */
	uint32_t number; /* of the current session */
	uint32_t count;	 /* sessions so far */
	uint32_t tuple;	 /* in sessions.tuples */
	uint32_t flags;
};

struct sessions {
	char *dir;
	int64_t gap;
	struct sess_state *st; /* by canonical person id */
	uint32_t cap;
	uint64_t persons; /* with st[].id != 0 */
	struct intern strs, tuples;
	uint32_t *dirty; /* persons changed since the last write */
	size_t ndirty, capdirty;

	/* the log */
	int fd;
	uint64_t log_bytes;
	bool next_pending; /* a snapshot in SESSIONS.next waits for the manifest */
	uint64_t next_lsn; /* its mark */
	uint64_t snapshot_bytes;
	uint64_t snapshots;
	uint64_t loaded_mark; /* the last batch read at open (0: none) */
	bool loaded_none;     /* there was no log at open */

	/* stamping: the builder whose ids the caches hold */
	uint64_t epoch;
	uint32_t path[8]; /* session.* path ids in it */
	uint32_t *strmap; /* strs id -> its string id, SESS_NONE */
	uint32_t nstrmap;

	uint64_t started, late;
};

void sessions_grow(struct sessions *ss, uint32_t person);
void sessions_touch(struct sessions *ss, uint32_t person);
uint32_t sessions_tuple_id(struct sessions *ss, const struct sess_tuple *t);
struct sess_tuple sessions_tuple(const struct sessions *ss, uint32_t id);

/* sessions_file.c */
int sessions_load(struct sessions *ss, uint64_t flushed_lsn, bool read_only);

#endif
