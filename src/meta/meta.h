/*
 * meta.h - tandem's metadata in SQLite (DATA/meta.db, WAL journal mode), so IT
 * can inspect it with the sqlite3 shell: sources and their write keys, API
 * tokens, settings (the identity configuration). The schema is versioned with PRAGMA user_version
 * and migrated on open.
 *
 * Thread safety: one struct meta may be used from any thread; calls are
 * serialized by an internal mutex. Several processes may open the same file
 * (the server and `tandem source create`): SQLite's locking keeps them
 * consistent and a busy timeout of 5 s rides over short write locks.
 */
#ifndef TD_META_META_H
#define TD_META_META_H

#include "identity/identity.h"
#include "query/query.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define META_NAME_MAX  128 /* bytes of a source or token name, NUL included */
#define META_KEY_LEN   35  /* write key "wk_" + 32 hex, NUL excluded */
#define META_TOKEN_LEN 68  /* API token "tdk_" + 64 hex, NUL excluded */

struct meta;

struct meta_source {
	uint32_t id; /* dense, starts at 1, never reused */
	char name[META_NAME_MAX];
	char write_key[META_KEY_LEN + 1];
	bool enabled;
	int64_t created_ms;
};

/*
 * Opens or creates DATA_DIR/meta.db (file mode 0600) and migrates its schema.
 * DATA_DIR is created (mode 0700) if missing; an existing meta.db readable by
 * group or others is chmod'ed to owner-only. TD_EDB if the file's schema is
 * newer than this build understands. meta_close(NULL) is a no-op.
 */
int meta_open(struct meta **out, const char *data_dir);
void meta_close(struct meta *m);

/*
 * Creates a source with a fresh random write key. Names are 1..127 bytes of
 * letters, digits, '-', '_' and '.'; TD_EINVAL otherwise, TD_EEXIST if taken.
 * out may be NULL. Lookups: TD_EINVAL for an invalid name, TD_ENOTFOUND for
 * an unknown one; *out is written only on success.
 */
int meta_source_create(struct meta *m, const char *name, struct meta_source *out);
int meta_source_by_name(struct meta *m, const char *name, struct meta_source *out);
int meta_source_by_id(struct meta *m, uint32_t id, struct meta_source *out);

/*
 * Looks a write key up for the ingest path: answers from an in-memory cache
 * whose entries (found and not found) live at most one second, so a key
 * disabled or created by another process takes effect within a second.
 * TD_ENOTFOUND for unknown keys; a disabled source is returned with
 * enabled = false.
 */
int meta_source_by_key(struct meta *m, const char *write_key, struct meta_source *out);

/* All sources ordered by id; *out is malloc'd (never NULL on success, even
 * when *n is 0), the caller frees it. */
int meta_source_list(struct meta *m, struct meta_source **out, size_t *n);
int meta_source_set_enabled(struct meta *m, const char *name, bool enabled);

/*
 * API tokens. Only a SHA-256 hash is stored; the plain token is written once
 * into token_out (META_TOKEN_LEN + 1 bytes). Roles: "admin", "analyst",
 * "viewer" (TD_EINVAL for others).
 */
int meta_token_create(struct meta *m, const char *name, const char *role, char *token_out);
/* TD_EAUTH for an unknown or revoked token; else copies its role into role
 * (TD_EINVAL if it does not fit in role_cap bytes; 8 is enough). */
int meta_token_check(struct meta *m, const char *token, char *role, size_t role_cap);
/* TD_ENOTFOUND for an unknown name; revoking twice is not an error. A
 * revoked token keeps its row (and its name) for the audit trail. */
int meta_token_revoke(struct meta *m, const char *name);
/* How many tokens (not revoked) exist; < 0 on error. */
int meta_token_count(struct meta *m);

/*
 * The identity configuration (identity.h: per-class limits, class priority,
 * identifier traits, extra blocked values) that every command opening the
 * event store passes to it. Stored as one JSON document in the settings
 * table (meta.c has its form); nothing stored means the defaults.
 *
 * struct meta_identity holds the configuration and the strings its traits
 * and blocked values point to: cfg is valid as long as the struct is, and
 * the struct must not be copied (the copy's pointers would point into the
 * original).
 */
struct meta_identity {
	struct identity_config cfg;
	bool stored; /* false: nothing stored, cfg holds the defaults */
	char strs[IDENTITY_MAX_TRAITS * (IDENTITY_MAX_TYPE + 1) +
		  IDENTITY_MAX_BLOCKED * (IDENTITY_MAX_VALUE + 1)];
};

/*
 * Checks a configuration against the rules of a stored one: every limit
 * 1..255; the priority names each class once; at most IDENTITY_MAX_TRAITS
 * trait names of 1..IDENTITY_MAX_TYPE bytes, without ':', '.' or control
 * characters, not one of the built-in identifier names (email, phone,
 * user_id, userId, anonymous_id, anonymousId), no name twice; at most
 * IDENTITY_MAX_BLOCKED blocked values of 1..IDENTITY_MAX_VALUE bytes, without
 * white space at either end or control characters, none twice (ignoring
 * ASCII case, as blocking does). 0, or TD_EINVAL with a message naming the
 * bad value and the rule in err.
 */
int meta_identity_check(const struct identity_config *c, char *err, size_t errcap);

/* Reads the stored configuration into *out (the defaults when nothing is
 * stored; a stored document that lacks a part has the default for it).
 * TD_ECORRUPT, with a message in err, when the stored document does not
 * parse or breaks a rule above (someone edited it by hand). */
int meta_identity_get(struct meta *m, struct meta_identity *out, char *err, size_t errcap);

/* Validates (meta_identity_check) and stores c, replacing what was stored.
 * TD_EINVAL with the message in err. */
int meta_identity_set(struct meta *m, const struct identity_config *c, char *err, size_t errcap);

/* Removes the stored configuration: the defaults apply again. */
int meta_identity_reset(struct meta *m);

/* The configuration as the JSON document meta.db stores, e.g.
 * {"limits":{"user_id":1,...},"priority":["user_id",...],"traits":[...],
 * "blocked":[...]}; malloc'd, the caller frees it. */
char *meta_identity_json(const struct identity_config *c);

/*
 * Computed trait definitions (src/meta/computed.c): name -> JSON text, as
 * src/profile validated it. put creates or replaces (TD_EFULL past 100
 * definitions); delete gives TD_ENOTFOUND for an unknown name; list is in
 * name order, *out malloc'd (meta_computed_list_free).
 */
struct meta_computed {
	char name[META_NAME_MAX];
	char *definition;
	int64_t updated_ms;
};
int meta_computed_put(struct meta *m, const char *name, const char *definition);
int meta_computed_delete(struct meta *m, const char *name);
int meta_computed_list(struct meta *m, struct meta_computed **out, size_t *n);
void meta_computed_list_free(struct meta_computed *l, size_t n);

/*
 * Advertising costs (src/meta/costs.c, docs/attribution.md): the money spent
 * per day, source, medium and campaign, in one currency per row. Strings are
 * "" when not given; a row names at least one of source, medium, campaign.
 */
#define META_COST_FIELD 256 /* bytes of source, medium, campaign, NUL included */
struct meta_cost {
	char date[11]; /* YYYY-MM-DD */
	char source[META_COST_FIELD], medium[META_COST_FIELD], campaign[META_COST_FIELD];
	char currency[4]; /* ISO 4217 code, upper case */
	double cost;	  /* >= 0 */
};

/* Validated cost rows (a key given twice keeps its last row) and the
 * reasons of the rejected ones, as the CSV and JSON readers below fill them. Owned by the caller:
 * meta_cost_batch_release. */
struct meta_cost_batch {
	struct meta_cost *rows;
	size_t n, cap;
	size_t lines;	 /* data lines (CSV) or rows (JSON) read */
	size_t rejected; /* of them */
	char **errors;	 /* the first META_COST_ERRORS messages, "line 3: ..." */
	size_t nerrors;
};
#define META_COST_ERRORS 100
#define META_COST_ROWS	 1000000 /* rows in one import */

void meta_cost_batch_init(struct meta_cost_batch *b);
void meta_cost_batch_release(struct meta_cost_batch *b);
/*
 * Reads CSV text (RFC 4180; a header line naming the columns date, source,
 * medium, campaign, cost, currency in any order, all six, no others). Every
 * valid line goes to b->rows; an invalid one is counted and explained (what,
 * where, how to fix). Returns 0, or TD_EINVAL with a message in err when the
 * text cannot be read at all (no header, a wrong header, more than
 * META_COST_ROWS lines): then nothing is valid.
 */
int meta_costs_parse_csv(const char *text, size_t len, struct meta_cost_batch *b, char *err,
			 size_t errcap);
/* The same for JSON: an array of row objects {"date", "source", "medium",
 * "campaign", "cost", "currency"} (or {"rows": [...]}); "line N" is row N,
 * from 1. */
int meta_costs_parse_json(const char *text, size_t len, struct meta_cost_batch *b, char *err,
			  size_t errcap);

/* Stores rows in one transaction; a row replaces the stored one of the
 * same date, source, medium and campaign (cost and currency). */
int meta_costs_put(struct meta *m, const struct meta_cost *rows, size_t n);
/* Rows with first_day <= date <= last_day (either NULL: open), ordered by
 * date, source, medium, campaign; *out malloc'd (free()), never NULL on
 * success. */
int meta_costs_list(struct meta *m, const char *first_day, const char *last_day,
		    struct meta_cost **out, size_t *n);
/* Whether s is a calendar date YYYY-MM-DD. */
bool meta_cost_date_valid(const char *s);
/* The costs table as the query engine reads costs (valid while m is open;
 * set it as the costs of a copy of the store's query source). */
void meta_costs_query_source(struct meta *m, struct query_costs *out);

#endif
