/*
 * profile.h - customer profiles: one person (after identity merges) with
 * their identifiers, traits, computed traits, accounts, merge history and
 * event timeline, computed on read from a store snapshot.
 *
 * Nothing is kept per profile: the person's events are found through the
 * segments' person indexes (a binary search per segment and member person
 * id), so a profile is always exactly as current as the snapshot, merges
 * included, and a computed trait covers the whole history without a
 * backfill. docs/profiles.md describes the JSON.
 *
 *  - traits: the traits.* of the person's identify calls; the latest message
 *    (by timestamp, then storage order) wins; each with first_seen (the first
 *    message that had the trait) and updated (the latest that had it);
 *  - computed: first_seen, last_seen, event_count, order_count ("Order
 *    Completed" events), lifetime_revenue (their properties.revenue, else
 *    properties.total), last_campaign (context.campaign.name of the latest
 *    event with one);
 *  - accounts: the groupIds of the person's group calls, each with the
 *    traits the person's own calls set (profile_account_get has the
 *    account's traits from every member);
 *  - events: newest first, a page of `limit` before the cursor.
 *
 * Threads: safe from any thread (the store's snapshot and identity lookups
 * are).
 */
#ifndef TD_PROFILE_PROFILE_H
#define TD_PROFILE_PROFILE_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

#define PROFILE_MAX_LIMIT 100	  /* timeline events per page */
#define PROFILE_MAX_ROWS  2000000 /* events read for one profile */

/*
 * Computed traits defined by users (computed.c; docs/profiles.md): parsed
 * from their JSON definition (TD_EINVAL with err naming the field), then
 * evaluated over a person's events on every read.
 */
#define PROFILE_MAX_NAME     64	 /* bytes of a computed trait's name */
#define PROFILE_MAX_COMPUTED 100 /* computed traits defined at once */
struct profile_computed;
int profile_computed_parse(const char *json, size_t len, struct profile_computed **out, char *err,
			   size_t errcap);
void profile_computed_free(struct profile_computed *c);
const char *profile_computed_name(const struct profile_computed *c);
struct store_row;
/* Appends the JSON value of c over rows[0..n) (oldest first) to o. */
void profile_computed_eval(const struct profile_computed *c, const struct store_row *rows, size_t n,
			   int64_t now_ms, struct td_buf *o);

/* Every definition stored in meta.db, parsed (a definition that no longer
 * parses is skipped with a log line). *out: free with
 * profile_computed_list_free. Returns 0 or the meta error (err says it). */
struct meta;
int profile_load_computed(struct meta *m, struct profile_computed ***out, size_t *n, char *err,
			  size_t errcap);
void profile_computed_list_free(struct profile_computed **l, size_t n);

struct profile_options {
	size_t limit; /* timeline page size; 0 = 20 */
	/* timeline cursor (profile_cursor_parse): events older than before_ms,
	 * plus those at before_ms after the newest before_skip of them */
	int64_t before_ms; /* 0 = the newest events */
	size_t before_skip;
	bool raw; /* timeline events carry their whole message (slower) */
	/* computed traits to add (owned by the caller) */
	struct profile_computed *const *computed;
	size_t ncomputed;
};

/* Reads a timeline cursor: next_before of a page ("2024-06-02T10:05:00.000Z~2":
 * events older than that time, and at that time those after the 2 newest),
 * or a plain ISO 8601 time (events strictly older). 0 or TD_EPARSE. */
int profile_cursor_parse(const char *s, struct profile_options *o);

/*
 * Appends the profile of the person holding identifier type:value (e.g.
 * "user_id", "ann"; "email", "Ann@Example.com" is normalized as at ingest)
 * to out as one JSON object. Returns 0, TD_ENOTFOUND (no such identifier:
 * err says so), TD_EINVAL (a bad option), TD_ETOOLARGE (out's cap), or a
 * storage error.
 */
int profile_get(struct store *s, const char *type, const char *value,
		const struct profile_options *o, struct td_buf *out, char *err, size_t errcap);

/*
 * Profiles by trait: the canonical persons whose traits satisfy every
 * condition of where[] ("plan=pro", "employees>=50", "email~@acme.com"; OP
 * one of = != > >= < <= ~ (contains), the value read as the trait's type),
 * in person id order, `limit` (0 = 50, at most PROFILE_MAX_FIND) from
 * `offset`. Appends {"profiles":[{person, identifiers, traits}], "total",
 * "next_offset"} to out. TD_EINVAL with err for a bad condition or an
 * unknown trait.
 */
#define PROFILE_MAX_WHERE 16
#define PROFILE_MAX_FIND  1000
int profile_find(struct store *s, const char *const *where, size_t nwhere, size_t limit,
		 size_t offset, struct td_buf *out, char *err, size_t errcap);

/*
 * The account profile of a groupId (B2B): the latest traits of every group
 * call that names it (any member's), first and last seen, and its members
 * (the canonical persons of those calls, at most PROFILE_MAX_FIND listed,
 * with their identifiers). TD_ENOTFOUND when no group call names it.
 */
int profile_account_get(struct store *s, const char *group_id, struct td_buf *out, char *err,
			size_t errcap);

#endif
