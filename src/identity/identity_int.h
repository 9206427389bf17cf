/*
 * identity_int.h - the identity graph's internals, shared by graph.c
 * (resolution and merges), norm.c (values and message fields), table.c
 * (the identifier hash table), log.c (the log file) and view.c (canonical
 * snapshots).
 */
#ifndef TD_IDENTITY_IDENTITY_INT_H
#define TD_IDENTITY_IDENTITY_INT_H

#include "base/buf.h"
#include "identity/identity.h"

#include <pthread.h>

/*
 * The identifier table: open addressing, linear probing, at most 70 % full.
 * A slot holds 96 bits of the key's XXH3-128 hash and the identifier id; the
 * key itself is not compared (a false match needs ~10^13 identifiers, the
 * same bound as the collector's dedupe index), so a lookup touches one slot.
 */
struct identity_slot {
	uint64_t h0;
	uint32_t h1;
	uint32_t id; /* identifier id + 1; 0 = empty */
};
struct identity_table {
	struct identity_slot *slots;
	size_t mask, n; /* slots - 1; identifiers inside */
};
struct identity_hash {
	uint64_t h0;
	uint32_t h1;
};
struct identity_hash identity_hash_key(const char *key, size_t len);
/* The identifier id of a hash, or IDENTITY_NONE. */
uint32_t identity_table_find(const struct identity_table *t, struct identity_hash h);
void identity_table_put(struct identity_table *t, struct identity_hash h, uint32_t id);
void identity_table_release(struct identity_table *t);

/* One identifier: its "type:value" key is in the graph's key arena. */
struct identity_ident {
	uint64_t off;  /* of the key in keys */
	uint32_t pid;  /* the person it was linked to (map through canon) */
	uint32_t next; /* the next identifier of the same pid, IDENTITY_NONE ends */
	uint16_t len;
	uint8_t cls;
};

/* Per person id. Only a canonical person's size, count, history are used. */
struct identity_person {
	uint32_t next;			/* circular list of the members of its canonical person */
	uint32_t size;			/* members */
	uint32_t ids, ids_tail;		/* identifiers linked to this pid */
	uint32_t hist, hist_tail;	/* history records of the canonical person */
	uint8_t cnt[IDENTITY_NCLASSES]; /* identifiers per class (saturating) */
};

/* A merge or conflict. */
struct identity_hist {
	uint64_t lsn;
	int64_t ts;
	uint64_t str; /* offset in strs: message id NUL, left-out key NUL (conflicts) */
	uint32_t winner, loser;
	uint32_t kept, merged; /* identifier ids (merged: conflicts use the string) */
	uint32_t next;
	uint8_t kind, cls;
};

struct identity {
	struct identity_config cfg;
	char *cfg_strs;			 /* the config's strings (cfg points into it) */
	uint8_t rank[IDENTITY_NCLASSES]; /* class -> position in priority */

	pthread_mutex_t lock; /* readers, and the writer while it changes anything */

	uint32_t *canon; /* pid -> canonical pid */
	struct identity_person *p;
	uint32_t npids, cap;
	uint64_t persons; /* canonical ones */

	struct identity_table table;
	struct identity_ident *ids;
	uint32_t nids, capids;
	char *keys;
	size_t keys_len, keys_cap;

	struct identity_hist *hist;
	uint32_t nhist, caphist;
	struct td_buf strs;

	uint64_t merges, refused, conflicts[IDENTITY_NCLASSES];

	/* the log */
	int fd; /* -1: in memory, or read-only */
	char *path;
	struct td_buf logbuf; /* records not written yet */
	uint64_t log_bytes;
	bool replaying; /* identity_open applies records: none are logged */

	/* identity_set_merge_hook */
	identity_merge_fn on_merge;
	void *on_merge_ctx;

	/* views */
	struct identity_view *view;
	bool changed; /* since view */
};

/* graph.c: changes, used by resolution and by the log's replay. Caller
 * holds lock. */
uint32_t identity_new_person(struct identity *g, uint64_t lsn);
uint32_t identity_link(struct identity *g, uint64_t lsn, uint32_t pid, const char *key, size_t len,
		       enum identity_class cls, struct identity_hash h);
/* Merges the canonical persons a and b; winner names which survives. */
void identity_merge(struct identity *g, uint32_t winner, uint32_t loser, uint64_t lsn, int64_t ts,
		    const char *msgid, size_t msgid_len, uint32_t kept, uint32_t merged);
void identity_conflict(struct identity *g, uint32_t person, uint32_t other, enum identity_class cls,
		       uint64_t lsn, int64_t ts, const char *msgid, size_t msgid_len, uint32_t kept,
		       const char *key, size_t key_len);

/* norm.c: the normalized value of a field value for class c into out (cap
 * IDENTITY_MAX_VALUE + 1); its length, or -1 when refused. */
int identity_normalize(const struct identity *g, enum identity_class c, const char *v, size_t len,
		       char *out);

/* log.c */
enum {
	IDLOG_LINK = 1,
	IDLOG_PERSON = 2,
	IDLOG_MERGE = 3,
	IDLOG_CONFLICT = 4,
};
void identity_log_link(struct identity *g, uint64_t lsn, uint32_t pid, enum identity_class cls,
		       const char *key, size_t len);
void identity_log_person(struct identity *g, uint64_t lsn);
void identity_log_merge(struct identity *g, const struct identity_hist *h, const char *msgid,
			size_t msgid_len);
void identity_log_conflict(struct identity *g, const struct identity_hist *h, const char *msgid,
			   size_t msgid_len, const char *key, size_t key_len);
/* Opens or creates the file and applies its records up to upto_lsn. */
int identity_log_open(struct identity *g, const char *path, uint64_t upto_lsn, bool read_only,
		      char *err, size_t errcap);

#endif
