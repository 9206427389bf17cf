/*
 * identity.h - identity resolution: every identifier a message carries is
 * mapped to one dense person id, and persons whose identifiers a message
 * links are merged (docs/identity.md has the rules with worked examples).
 *
 * Identifiers are "type:value" pairs. Types and the class that sets their
 * priority and limit:
 *   user_id       the message's userId                           class USER
 *   email         traits.email / context.traits.email            class EMAIL
 *   phone         traits.phone / context.traits.phone            class PHONE
 *   <type>        context.externalIds[] {type, id}; the types     class EXTERNAL
 *                 user_id, email, phone, anonymous_id keep their own class
 *   <trait name>  traits.<name> / context.traits.<name> for the   class TRAIT
 *                 trait names configured as identifiers
 *   anonymous_id  the message's anonymousId                      class ANON
 * "traits.*" of a group call describe the account, not the person: they are
 * never identifiers. An alias's previousId is the user_id it names when that
 * exists, else the anonymous_id (created when new).
 *
 * Only email, phone and the configured trait names are identifiers among
 * the traits; ids other than email and phone are exact strings (not
 * trimmed, case kept). Values are normalized before they link anything: email trimmed and
 * lowercased and must have one '@' with text on both sides; phone keeps its
 * digits (a leading '+' or "00" becomes '+') and must have 7 to 15 of them;
 * every value is refused when empty after trimming, longer than
 * IDENTITY_MAX_VALUE bytes, or blocked: "null", "undefined", "0", "-1",
 * "anonymous", "guest" (ASCII case-insensitive, after trimming) and the
 * configured extra values. A refused value links nothing.
 *
 * Resolution of one message (identity_resolve):
 *  1. its usable identifiers are ordered by class priority (default USER >
 *     EMAIL > PHONE > EXTERNAL > TRAIT > ANON); within a class by field:
 *     userId, traits.*, context.traits.*, context.externalIds, previousId,
 *     anonymousId (so an alias's userId leads its previousId), then in the
 *     message's order;
 *  2. the message's person P is the person of the first identifier when it
 *     exists; when it is new, the person of the first identifier that exists
 *     if that person has room for it (its class's limit), else a new person;
 *  3. each identifier in that order then: already P's: nothing; new: linked
 *     to P unless P already has `limit` identifiers of its class (conflict);
 *     another person Q's: Q merges with P unless the two together would have
 *     more than `limit` identifiers of some class (conflict);
 *  4. a conflict leaves that identifier out (it keeps its person, or stays
 *     unknown), is counted under the class whose limit it would have broken
 *     (for a merge, the first such class in priority order) and goes into
 *     P's history;
 *  5. the event belongs to P. A message with no usable identifier gets a
 *     person of its own.
 * Default limits: 1 USER, 5 of every other class.
 *
 * Merges are retroactive without rewriting events: events keep the person id
 * they got, and canonical[pid] (kept exact: union by size, every member
 * relabelled) names the merged person. Merges and conflicts are logged with
 * the LSN, time and messageId of the message that caused them.
 *
 * Persistence: with a path, every change is appended to a log file (format
 * in log.c); identity_sync() writes and fdatasyncs it. Each record carries
 * the LSN of its message; identity_open() keeps records up to a given LSN
 * (the store's flushed LSN), cuts the rest, and the caller replays the WAL
 * after it, which decides exactly as before.
 *
 * Threads: one writer (the applier) calls identity_resolve / identity_sync /
 * identity_write / identity_view_publish; identity_fsync and the lookups
 * (identity_find, identity_person_*, identity_view_get) may run on any
 * thread at the same time.
 */
#ifndef TD_IDENTITY_IDENTITY_H
#define TD_IDENTITY_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum identity_class {
	IDENTITY_USER,
	IDENTITY_EMAIL,
	IDENTITY_PHONE,
	IDENTITY_EXTERNAL,
	IDENTITY_TRAIT,
	IDENTITY_ANON,
	IDENTITY_NCLASSES
};

#define IDENTITY_MAX_VALUE   256 /* bytes of a normalized value */
#define IDENTITY_MAX_TYPE    64	 /* bytes of a type name */
#define IDENTITY_MAX_TRAITS  16	 /* trait names configured as identifiers */
#define IDENTITY_MAX_BLOCKED 64	 /* extra blocked values */
#define IDENTITY_NONE	     UINT32_MAX

struct identity_config {
	uint8_t limit[IDENTITY_NCLASSES];    /* per person, 1..255 */
	uint8_t priority[IDENTITY_NCLASSES]; /* the classes, highest priority first */
	const char *traits[IDENTITY_MAX_TRAITS];
	size_t ntraits;
	const char *blocked[IDENTITY_MAX_BLOCKED]; /* on top of the built-in list */
	size_t nblocked;
};
/* The defaults above. */
void identity_config_default(struct identity_config *c);
/* Copies c into dst with its strings; returns the malloc'd block dst's
 * strings live in (free it after dst's last use). */
char *identity_config_dup(struct identity_config *dst, const struct identity_config *c);
/* Reads a class name ("user_id", "email", "phone", "external", "trait",
 * "anonymous_id"); -1 if unknown. */
int identity_class_parse(const char *name);
const char *identity_class_name(enum identity_class c);

/* The identifier fields of one message, as the store's parser meets them.
 * identity_msg_add copies the value (the caller's buffer may be reused). */
#define IDENTITY_MSG_FIELDS 24
struct identity_msg {
	uint64_t lsn;
	int64_t ts; /* ms */
	const char *message_id;
	size_t message_id_len;
	bool is_group; /* a group call: its traits.* are the account's */
	size_t n;
	struct {
		uint8_t field; /* enum below */
		uint8_t name_len;
		uint16_t len;
		uint32_t off; /* into buf: name (traits only) then value */
	} f[IDENTITY_MSG_FIELDS];
	size_t buf_len;
	char buf[4096];
};
enum identity_field {
	IDENTITY_F_USER_ID,	  /* userId */
	IDENTITY_F_ANON_ID,	  /* anonymousId */
	IDENTITY_F_PREVIOUS_ID,	  /* previousId (alias) */
	IDENTITY_F_TRAIT,	  /* traits.<name> */
	IDENTITY_F_CONTEXT_TRAIT, /* context.traits.<name> */
	IDENTITY_F_EXTERNAL_IDS,  /* context.externalIds: the JSON array's text */
};
void identity_msg_reset(struct identity_msg *m);
/* Adds one field (name: the trait name for the two trait fields, else
 * ignored). Fields past IDENTITY_MSG_FIELDS or the buffer are dropped. */
void identity_msg_add(struct identity_msg *m, enum identity_field field, const char *name,
		      size_t name_len, const char *val, size_t len);
struct identity;

/* Which field a flattened JSON path is, for the parser's leaves: -1 when it
 * is none (cheap: most paths fail on their first bytes); for the trait
 * fields, *name is the trait name (only email, phone and the configured
 * identifier traits are fields). Safe on any thread. */
int identity_path_field(const struct identity *g, const char *path, size_t len, const char **name,
			size_t *name_len);

/*
 * Opens the graph. path: the log file (created when missing), or NULL for a
 * graph in memory only. Log records past upto_lsn (and a torn tail) are cut
 * off (not when read_only: then they are only ignored). min_persons: the
 * persons the caller knows exist (TD_ECORRUPT when the log holds fewer).
 * err receives a message on failure. The config's strings are copied.
 */
int identity_open(struct identity **out, const char *path, const struct identity_config *c,
		  uint64_t upto_lsn, uint32_t min_persons, bool read_only, char *err,
		  size_t errcap);
void identity_close(struct identity *g);

/* Resolves one message (rules above) and returns its person id (not
 * necessarily canonical later: map through identity_canonical()). */
uint32_t identity_resolve(struct identity *g, const struct identity_msg *m);

/* Writes the log records made so far and fdatasyncs; 0 or TD_E*. No-op
 * without a path. It is identity_write() (the writer's thread: hands the
 * records to the file) then identity_fsync() (any thread: makes what was
 * written durable, e.g. on a background flush while the writer goes on). */
int identity_sync(struct identity *g);
int identity_write(struct identity *g);
int identity_fsync(struct identity *g);

/* Called by identity_resolve when canonical person `loser` merges into
 * canonical person `winner` (after canonical[] is updated; never while
 * identity_open replays the log). On the writer's thread, with the graph's
 * lock held: fn must not call back into the graph. NULL unsets it. */
typedef void (*identity_merge_fn)(void *ctx, uint32_t winner, uint32_t loser);
void identity_set_merge_hook(struct identity *g, identity_merge_fn fn, void *ctx);

/* Person ids handed out (canonical or not). */
uint32_t identity_npids(const struct identity *g);
uint32_t identity_canonical(struct identity *g, uint32_t pid);

/* The canonical person of an identifier ("email", " A@B.com " finds
 * "email:a@b.com"); IDENTITY_NONE when unknown or refused. */
uint32_t identity_find(struct identity *g, const char *type, const char *value);

/* Calls fn for each identifier of the canonical person `person`, oldest
 * first. The strings are valid during the call. */
typedef void (*identity_id_fn)(void *ctx, const char *type, const char *value,
			       enum identity_class c);
void identity_person_ids(struct identity *g, uint32_t person, identity_id_fn fn, void *ctx);

/* The person ids merged into the canonical person `person` (itself
 * included), ascending, into a malloc'd *out (the caller frees it); returns
 * how many (0 when person is not canonical). */
size_t identity_person_members(struct identity *g, uint32_t person, uint32_t **out);

/* The merge and conflict history of a canonical person, oldest first. */
struct identity_event {
	enum { IDENTITY_EV_MERGE, IDENTITY_EV_CONFLICT } kind;
	uint64_t lsn;
	int64_t ts;
	const char *message_id; /* "" when the message had none */
	/* merge: `kept` (the identifier that led) absorbed the person of
	 * `merged`; conflict: `merged` was left out of `kept`'s person because
	 * of class `cls`'s limit */
	const char *kept, *merged; /* "type:value" */
	enum identity_class cls;
	uint32_t winner, loser; /* merge: person ids; conflict: the person, and the
				   left-out identifier's person or IDENTITY_NONE */
};
typedef void (*identity_event_fn)(void *ctx, const struct identity_event *e);
void identity_person_history(struct identity *g, uint32_t person, identity_event_fn fn, void *ctx);

struct identity_stats {
	uint64_t pids, persons; /* ids handed out; canonical persons */
	uint64_t identifiers, merges;
	uint64_t conflicts[IDENTITY_NCLASSES];
	uint64_t refused; /* values blocked, empty, too long or malformed */
	uint64_t log_bytes;
};
void identity_get_stats(struct identity *g, struct identity_stats *st);

/*
 * Snapshots of canonical[] for queries: an immutable, refcounted copy made
 * by the writer. canonical is NULL while no merge has happened (identity).
 */
struct identity_view {
	uint32_t refs;
	uint32_t n;
	const uint32_t *canonical;
};
/* Writer: makes a view of the current graph (the previous one when nothing
 * changed) and returns it with one reference for the caller. */
struct identity_view *identity_view_publish(struct identity *g);
void identity_view_ref(struct identity_view *v);
/* A view over a canonical array read elsewhere (owned by the view from now
 * on; NULL = no merge), with one reference. */
struct identity_view *identity_view_new(uint32_t n, uint32_t *canonical);
void identity_view_release(struct identity_view *v);

#endif
