/*
 * meta.c - sources, write keys, API tokens and settings in DATA/meta.db
 * (SQLite).
 *
 * Schema version 4 (PRAGMA user_version = 4); version 1 had no settings
 * table, version 2 no computed_traits table, version 3 no costs table, and
 * opening an older file adds what it lacks:
 *
 *   sources(id INTEGER PRIMARY KEY AUTOINCREMENT,   -- AUTOINCREMENT: ids never reused
 *           name TEXT UNIQUE NOT NULL,
 *           write_key TEXT UNIQUE NOT NULL,          -- "wk_" + 32 hex
 *           enabled INTEGER NOT NULL DEFAULT 1,
 *           created_at INTEGER NOT NULL)             -- ms since the epoch, UTC
 *   tokens(id INTEGER PRIMARY KEY,
 *          name TEXT UNIQUE NOT NULL,                -- names stay taken after revoke
 *          role TEXT NOT NULL,                       -- admin | analyst | viewer
 *          sha256 TEXT UNIQUE NOT NULL,              -- lowercase hex of the whole token
 *          created_at INTEGER NOT NULL,
 *          revoked_at INTEGER)                       -- NULL while the token is valid
 *   settings(name TEXT PRIMARY KEY,                  -- "identity"
 *            value TEXT NOT NULL,                    -- JSON, see below
 *            updated_at INTEGER NOT NULL)            -- ms since the epoch, UTC
 *   computed_traits(name TEXT PRIMARY KEY,           -- see computed.c
 *                   definition TEXT NOT NULL,        -- JSON (docs/profiles.md)
 *                   updated_at INTEGER NOT NULL)
 *   costs(date TEXT NOT NULL,                        -- YYYY-MM-DD; see costs.c
 *         source TEXT NOT NULL,                      -- "" when not given
 *         medium TEXT NOT NULL,
 *         campaign TEXT NOT NULL,
 *         cost REAL NOT NULL,                        -- >= 0
 *         currency TEXT NOT NULL,                    -- ISO 4217, upper case
 *         updated_at INTEGER NOT NULL,
 *         PRIMARY KEY(date, source, medium, campaign))
 *
 * The "identity" setting (meta_identity_*), every part optional (a missing
 * part is the default):
 *   {"limits": {"user_id": 1, "email": 5, "phone": 5, "external": 5,
 *               "trait": 5, "anonymous_id": 5},
 *    "priority": ["user_id", "email", "phone", "external", "trait",
 *                 "anonymous_id"],
 *    "traits": ["crm_id"],                           -- identifier traits
 *    "blocked": ["test"]}                            -- extra blocked values
 *
 * Locking: meta.mu serializes every use of the connection and its prepared
 * statements (the connection is opened SQLITE_OPEN_NOMUTEX because of it).
 * The write-key cache has its own mutex, cache.mu, held only to probe or
 * fill the table, never across a SQLite call; the two are never held
 * together, so there is no lock order to respect.
 */
#include "meta/meta.h"
#include "meta/meta_int.h"
#include "base/log.h"
#include "base/td.h"
#include "base/timeutil.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define SCHEMA_VERSION 4

static const char schema_v1[] = "CREATE TABLE sources("
				" id INTEGER PRIMARY KEY AUTOINCREMENT,"
				" name TEXT UNIQUE NOT NULL,"
				" write_key TEXT UNIQUE NOT NULL,"
				" enabled INTEGER NOT NULL DEFAULT 1,"
				" created_at INTEGER NOT NULL);"
				"CREATE TABLE tokens("
				" id INTEGER PRIMARY KEY,"
				" name TEXT UNIQUE NOT NULL,"
				" role TEXT NOT NULL,"
				" sha256 TEXT UNIQUE NOT NULL,"
				" created_at INTEGER NOT NULL,"
				" revoked_at INTEGER);"
				"PRAGMA user_version = 1;";

static const char schema_v2[] = "CREATE TABLE settings("
				" name TEXT PRIMARY KEY,"
				" value TEXT NOT NULL,"
				" updated_at INTEGER NOT NULL);"
				"PRAGMA user_version = 2;";

static const char schema_v3[] = "CREATE TABLE computed_traits("
				" name TEXT PRIMARY KEY,"
				" definition TEXT NOT NULL,"
				" updated_at INTEGER NOT NULL);"
				"PRAGMA user_version = 3;";

/* IF NOT EXISTS: a file whose version was set back by hand migrates again
 * without failing on the table it has. */
static const char schema_v4[] = "CREATE TABLE IF NOT EXISTS costs("
				" date TEXT NOT NULL,"
				" source TEXT NOT NULL,"
				" medium TEXT NOT NULL,"
				" campaign TEXT NOT NULL,"
				" cost REAL NOT NULL,"
				" currency TEXT NOT NULL,"
				" updated_at INTEGER NOT NULL,"
				" PRIMARY KEY(date, source, medium, campaign));"
				"PRAGMA user_version = 4;";

/*
 * The write-key cache: meta_source_by_key runs on every ingest request, from
 * every HTTP thread, so it must not queue behind SQLite. Open addressing with
 * linear probing over CACHE_SLOTS slots that point into an array of at most
 * CACHE_MAX entries, handed out in order. Entries are never removed one by
 * one: an expired entry is refreshed in place, and when every entry is in use
 * the whole cache is dropped at once by bumping `gen` (a slot whose gen
 * differs is empty). Half the slots at most are in use, so probes stay short
 * and always end at an empty slot.
 */
#define CACHE_SLOTS  8192 /* power of two */
#define CACHE_MAX    4096 /* live entries; the cache is cleared when they are all used */
#define CACHE_TTL_MS 1000 /* how long an answer (found or not) is trusted */

struct cache_slot {
	uint64_t hash;
	uint32_t gen;
	uint32_t entry;
};

struct cache_entry {
	int64_t expires_ms; /* monotonic clock */
	int rc;		    /* 0 or TD_ENOTFOUND */
	char key[META_KEY_LEN + 1];
	struct meta_source src; /* valid when rc == 0 */
};

struct key_cache {
	pthread_mutex_t mu;
	/* everything below is protected by mu */
	uint32_t gen;	/* current generation, never 0 (calloc'd slots are empty) */
	uint32_t used;	/* entries handed out in this generation */
	uint64_t epoch; /* bumped by cache_forget: lookups started earlier don't fill */
	struct cache_slot *slots;
	struct cache_entry *entries;
};

struct meta {
	pthread_mutex_t mu;
	/* protected by mu: the connection and every statement */
	sqlite3 *db;
	sqlite3_stmt *src_insert, *src_by_name, *src_by_id, *src_by_key, *src_list;
	sqlite3_stmt *src_set_enabled;
	sqlite3_stmt *tok_insert, *tok_by_name, *tok_by_hash, *tok_revoke, *tok_count;
	sqlite3_stmt *set_get, *set_put, *set_del;

	struct key_cache cache;
};

#define SOURCE_COLS "id, name, write_key, enabled, created_at"

/* ---------------------------------------------------------------- helpers */

static int db_fail(struct meta *m, const char *what)
{
	td_log_error("meta: %s: %s", what, sqlite3_errmsg(m->db));
	return TD_EDB;
}

static bool is_valid_name(const char *name)
{
	if (!name)
		return false;
	size_t n = 0;
	for (const char *p = name; *p; p++, n++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (!ok || n >= META_NAME_MAX - 1)
			return false;
	}
	return n > 0;
}

static int64_t mono_ms(void)
{
	return (int64_t)(td_mono_ns() / 1000000u);
}

/* Copies a TEXT column into dst (cap bytes); false if it is NULL or too long. */
static bool column_text(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
	const unsigned char *s = sqlite3_column_text(st, col);
	int n = sqlite3_column_bytes(st, col);
	if (!s || n < 0 || (size_t)n >= cap)
		return false;
	memcpy(dst, s, (size_t)n);
	dst[n] = '\0';
	return true;
}

/* Reads a row of SOURCE_COLS. Rows written by hand (the sqlite3 shell) that do
 * not fit struct meta_source are reported as corrupt, not truncated. */
static int read_source(sqlite3_stmt *st, struct meta_source *out)
{
	sqlite3_int64 id = sqlite3_column_int64(st, 0);
	if (id < 1 || id > UINT32_MAX || !column_text(st, 1, out->name, sizeof(out->name)) ||
	    !column_text(st, 2, out->write_key, sizeof(out->write_key))) {
		td_log_error("meta: source row id %lld does not fit (id out of range or name / "
			     "write_key too long); fix it with the sqlite3 shell",
			     (long long)id);
		return TD_ECORRUPT;
	}
	out->id = (uint32_t)id;
	out->enabled = sqlite3_column_int(st, 3) != 0;
	out->created_ms = sqlite3_column_int64(st, 4);
	return 0;
}

/* Steps a statement that returns at most one source row; resets it. */
static int step_source(struct meta *m, sqlite3_stmt *st, struct meta_source *out, const char *what)
{
	int rc;
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW)
		rc = read_source(st, out);
	else if (s == SQLITE_DONE)
		rc = TD_ENOTFOUND;
	else
		rc = db_fail(m, what);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

/* ------------------------------------------------------------ key cache */

static int cache_init(struct key_cache *c)
{
	if (pthread_mutex_init(&c->mu, NULL))
		return TD_ENOMEM;
	c->gen = 1;
	c->used = 0;
	c->epoch = 0;
	c->slots = td_calloc(CACHE_SLOTS, sizeof(*c->slots));
	c->entries = td_calloc(CACHE_MAX, sizeof(*c->entries));
	return 0;
}

static void cache_release(struct key_cache *c)
{
	pthread_mutex_destroy(&c->mu);
	free(c->slots);
	free(c->entries);
}

/* Returns the slot holding key, or the empty slot where it belongs. Call with
 * c->mu held. */
static struct cache_slot *cache_probe(struct key_cache *c, uint64_t hash, const char *key)
{
	size_t i = (size_t)hash & (CACHE_SLOTS - 1);
	for (;;) {
		struct cache_slot *s = &c->slots[i];
		if (s->gen != c->gen)
			return s;
		if (s->hash == hash && strcmp(c->entries[s->entry].key, key) == 0)
			return s;
		i = (i + 1) & (CACHE_SLOTS - 1);
	}
}

/* Answers from the cache: true and *rc (and *out when found) on a fresh hit;
 * false on a miss, with *epoch set for a later cache_put. */
static bool cache_get(struct key_cache *c, uint64_t hash, const char *key, int64_t now,
		      struct meta_source *out, int *rc, uint64_t *epoch)
{
	bool hit = false;
	pthread_mutex_lock(&c->mu);
	struct cache_slot *s = cache_probe(c, hash, key);
	if (s->gen == c->gen) {
		const struct cache_entry *e = &c->entries[s->entry];
		if (now < e->expires_ms) {
			*rc = e->rc;
			if (e->rc == 0)
				*out = e->src;
			hit = true;
		}
	}
	*epoch = c->epoch;
	pthread_mutex_unlock(&c->mu);
	return hit;
}

static void cache_put(struct key_cache *c, uint64_t hash, const char *key, int64_t now,
		      uint64_t epoch, int rc, const struct meta_source *src)
{
	pthread_mutex_lock(&c->mu);
	if (c->epoch != epoch) /* a local change raced with our lookup: don't cache it */
		goto out;
	struct cache_slot *s = cache_probe(c, hash, key);
	if (s->gen != c->gen) {
		if (c->used == CACHE_MAX) {
			/* full: drop everything at once (a flood of unknown keys
			 * costs the good keys one SQLite lookup each, nothing more) */
			if (++c->gen == 0) { /* wrapped: 0 would match calloc'd slots */
				memset(c->slots, 0, CACHE_SLOTS * sizeof(*c->slots));
				c->gen = 1;
			}
			c->used = 0;
			s = cache_probe(c, hash, key);
		}
		s->hash = hash;
		s->gen = c->gen;
		s->entry = c->used++;
	}
	struct cache_entry *e = &c->entries[s->entry];
	e->expires_ms = now + CACHE_TTL_MS;
	e->rc = rc;
	memcpy(e->key, key, strlen(key) + 1); /* callers pass at most META_KEY_LEN bytes */
	if (rc == 0)
		e->src = *src;
out:
	pthread_mutex_unlock(&c->mu);
}

/* Makes the next lookup of key go to SQLite (after a change made here). */
static void cache_forget(struct key_cache *c, const char *key)
{
	uint64_t hash = XXH3_64bits(key, strlen(key));
	pthread_mutex_lock(&c->mu);
	struct cache_slot *s = cache_probe(c, hash, key);
	if (s->gen == c->gen)
		c->entries[s->entry].expires_ms = 0;
	c->epoch++;
	pthread_mutex_unlock(&c->mu);
}

/* --------------------------------------------------------- open / close */

/* Creates DATA_DIR/meta.db with mode 0600 (whatever the umask) before SQLite
 * sees it, and takes group and world access away from an existing file:
 * meta.db holds write keys. SQLite gives the -wal and -shm files the same
 * mode as the database file. */
static int create_db_file(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		int err = errno;
		td_log_error("meta: cannot open %s: %s", path, strerror(err));
		return td_from_errno(err);
	}
	int rc = 0;
	struct stat st;
	if (fstat(fd, &st)) {
		rc = td_from_errno(errno);
		td_log_error("meta: cannot stat %s: %s", path, strerror(errno));
	} else if ((st.st_mode & 0077) != 0) {
		if (fchmod(fd, st.st_mode & 0700)) {
			rc = td_from_errno(errno);
			td_log_error("meta: %s is readable by other users and chmod failed: %s",
				     path, strerror(errno));
		} else {
			td_log_warn("meta: %s was readable by other users; mode set to 0%o", path,
				    (unsigned)(st.st_mode & 0700));
		}
	}
	close(fd);
	return rc;
}

static int exec(struct meta *m, const char *sql, const char *what)
{
	if (sqlite3_exec(m->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(m, what);
	return 0;
}

/* WAL journal mode lets the server read while `tandem source create` writes.
 * SQLite answers with the mode it ended up in: some file systems (network
 * mounts) cannot do WAL, and meta.db still works there, only with more
 * blocking, so that is a warning. */
static int set_wal_mode(struct meta *m)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(m->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK)
		return db_fail(m, "set journal_mode=WAL");
	int rc = 0;
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *mode = (const char *)sqlite3_column_text(st, 0);
		if (!mode || strcmp(mode, "wal") != 0)
			td_log_warn("meta: meta.db is in journal mode %s, not wal (file system "
				    "without shared memory?)",
				    mode ? mode : "?");
	} else {
		rc = db_fail(m, "set journal_mode=WAL");
	}
	sqlite3_finalize(st);
	return rc;
}

/* Brings the schema to SCHEMA_VERSION in one transaction. BEGIN IMMEDIATE
 * takes the write lock first, so two processes opening a fresh file at once
 * do not both create the tables. */
static int migrate(struct meta *m)
{
	int rc = exec(m, "BEGIN IMMEDIATE", "begin migration");
	if (rc)
		return rc;
	sqlite3_stmt *st = NULL;
	int version = -1;
	if (sqlite3_prepare_v2(m->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		rc = db_fail(m, "read schema version");
		goto fail;
	}
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (version > SCHEMA_VERSION) {
		td_log_error("meta: meta.db has schema version %d, newer than this tandem "
			     "understands (%d); run a newer tandem",
			     version, SCHEMA_VERSION);
		rc = TD_EDB;
		goto fail;
	}
	if (version < 1) {
		rc = exec(m, schema_v1, "create schema version 1");
		if (rc)
			goto fail;
	}
	if (version < 2) {
		rc = exec(m, schema_v2, "migrate to schema version 2");
		if (rc)
			goto fail;
	}
	if (version < 3) {
		rc = exec(m, schema_v3, "migrate to schema version 3");
		if (rc)
			goto fail;
	}
	if (version < 4) {
		rc = exec(m, schema_v4, "migrate to schema version 4");
		if (rc)
			goto fail;
	}
	if (version < SCHEMA_VERSION)
		td_log_info("meta: %s schema version %d", version < 1 ? "created" : "migrated to",
			    SCHEMA_VERSION);
	rc = exec(m, "COMMIT", "commit migration");
	if (rc)
		goto fail;
	return 0;
fail:
	sqlite3_finalize(st);
	sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int prepare_all(struct meta *m)
{
	const struct {
		sqlite3_stmt **st;
		const char *sql;
	} all[] = {
	    {&m->src_insert, "INSERT INTO sources(name, write_key, enabled, created_at) "
			     "VALUES(?1, ?2, 1, ?3)"},
	    {&m->src_by_name, "SELECT " SOURCE_COLS " FROM sources WHERE name = ?1"},
	    {&m->src_by_id, "SELECT " SOURCE_COLS " FROM sources WHERE id = ?1"},
	    {&m->src_by_key, "SELECT " SOURCE_COLS " FROM sources WHERE write_key = ?1"},
	    {&m->src_list, "SELECT " SOURCE_COLS " FROM sources ORDER BY id"},
	    {&m->src_set_enabled,
	     "UPDATE sources SET enabled = ?2 WHERE name = ?1 RETURNING write_key"},
	    {&m->tok_insert,
	     "INSERT INTO tokens(name, role, sha256, created_at) VALUES(?1, ?2, ?3, ?4)"},
	    {&m->tok_by_name, "SELECT revoked_at FROM tokens WHERE name = ?1"},
	    {&m->tok_by_hash, "SELECT role FROM tokens WHERE sha256 = ?1 AND revoked_at IS NULL"},
	    {&m->tok_revoke,
	     "UPDATE tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL"},
	    {&m->tok_count, "SELECT count(*) FROM tokens WHERE revoked_at IS NULL"},
	    {&m->set_get, "SELECT value FROM settings WHERE name = ?1"},
	    {&m->set_put, "INSERT INTO settings(name, value, updated_at) VALUES(?1, ?2, ?3) "
			  "ON CONFLICT(name) DO UPDATE SET value = excluded.value, "
			  "updated_at = excluded.updated_at"},
	    {&m->set_del, "DELETE FROM settings WHERE name = ?1"},
	};
	for (size_t i = 0; i < TD_ARRAY_LEN(all); i++) {
		if (sqlite3_prepare_v3(m->db, all[i].sql, -1, SQLITE_PREPARE_PERSISTENT, all[i].st,
				       NULL) != SQLITE_OK)
			return db_fail(m, "prepare statement");
	}
	return 0;
}

void meta_close(struct meta *m)
{
	if (!m)
		return;
	sqlite3_stmt **all[] = {
	    &m->src_insert,	 &m->src_by_name, &m->src_by_id,   &m->src_by_key,  &m->src_list,
	    &m->src_set_enabled, &m->tok_insert,  &m->tok_by_name, &m->tok_by_hash, &m->tok_revoke,
	    &m->tok_count,	 &m->set_get,	  &m->set_put,	   &m->set_del};
	for (size_t i = 0; i < TD_ARRAY_LEN(all); i++)
		sqlite3_finalize(*all[i]);
	if (m->db && sqlite3_close(m->db) != SQLITE_OK)
		td_log_error("meta: close: %s", sqlite3_errmsg(m->db));
	pthread_mutex_destroy(&m->mu);
	cache_release(&m->cache);
	free(m);
}

int meta_open(struct meta **out, const char *data_dir)
{
	*out = NULL;
	if (!data_dir || !*data_dir)
		return TD_EINVAL;
	if (mkdir(data_dir, 0700) && errno != EEXIST) {
		int err = errno;
		td_log_error("meta: cannot create data directory %s: %s", data_dir, strerror(err));
		return td_from_errno(err);
	}
	size_t plen = strlen(data_dir) + sizeof("/meta.db");
	char *path = td_malloc(plen);
	snprintf(path, plen, "%s/meta.db", data_dir);
	int rc = create_db_file(path);
	if (rc) {
		free(path);
		return rc;
	}

	struct meta *m = td_calloc(1, sizeof(*m));
	if (pthread_mutex_init(&m->mu, NULL)) {
		free(m);
		free(path);
		return TD_ENOMEM;
	}
	if (cache_init(&m->cache)) {
		pthread_mutex_destroy(&m->mu);
		free(m);
		free(path);
		return TD_ENOMEM;
	}
	int s = sqlite3_open_v2(path, &m->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (s != SQLITE_OK) {
		if (m->db)
			rc = db_fail(m, path);
		else
			rc = TD_ENOMEM;
		goto fail;
	}
	sqlite3_extended_result_codes(m->db, 1);
	sqlite3_busy_timeout(m->db, 5000);
	rc = set_wal_mode(m);
	if (!rc)
		rc = exec(m, "PRAGMA synchronous=NORMAL", "set synchronous=NORMAL");
	if (!rc)
		rc = exec(m, "PRAGMA foreign_keys=ON", "set foreign_keys=ON");
	if (!rc)
		rc = migrate(m);
	if (!rc)
		rc = prepare_all(m);
	if (rc)
		goto fail;
	free(path);
	*out = m;
	return 0;
fail:
	td_log_error("meta: cannot open %s", path);
	free(path);
	meta_close(m);
	return rc;
}

/* --------------------------------------------------------------- sources */

int meta_source_create(struct meta *m, const char *name, struct meta_source *out)
{
	if (!is_valid_name(name))
		return TD_EINVAL;
	struct meta_source src;
	memset(&src, 0, sizeof(src));
	snprintf(src.name, sizeof(src.name), "%s", name);
	src.enabled = true;
	int rc = 0;
	pthread_mutex_lock(&m->mu);
	/* A UNIQUE failure is the name (taken) or, with odds of 2^-128, the
	 * fresh write key: a second try with another key tells them apart. */
	for (int attempt = 0; attempt < 3; attempt++) {
		memcpy(src.write_key, "wk_", 3);
		rc = td_random_hex(src.write_key + 3, (META_KEY_LEN - 3) / 2);
		if (rc)
			break;
		src.created_ms = td_now_ms();
		sqlite3_stmt *st = m->src_insert;
		sqlite3_bind_text(st, 1, src.name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, src.write_key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, src.created_ms);
		int s = sqlite3_step(st);
		if (s == SQLITE_DONE) {
			sqlite3_int64 id = sqlite3_last_insert_rowid(m->db);
			src.id = (uint32_t)id;
			rc = id >= 1 && id <= UINT32_MAX ? 0 : TD_ECORRUPT;
			if (rc)
				td_log_error("meta: source id %lld is out of range", (long long)id);
		} else if (s == SQLITE_CONSTRAINT_UNIQUE) {
			rc = TD_EEXIST;
		} else {
			rc = db_fail(m, "insert source");
		}
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		if (rc != TD_EEXIST)
			break;
		struct meta_source other;
		sqlite3_bind_text(m->src_by_name, 1, src.name, -1, SQLITE_STATIC);
		int by_name = step_source(m, m->src_by_name, &other, "look up source");
		if (by_name != TD_ENOTFOUND) {
			if (by_name != 0)
				rc = by_name;
			break;
		}
	}
	pthread_mutex_unlock(&m->mu);
	if (rc)
		return rc;
	cache_forget(&m->cache, src.write_key);
	if (out)
		*out = src;
	return 0;
}

int meta_source_by_name(struct meta *m, const char *name, struct meta_source *out)
{
	if (!is_valid_name(name))
		return TD_EINVAL;
	pthread_mutex_lock(&m->mu);
	sqlite3_bind_text(m->src_by_name, 1, name, -1, SQLITE_STATIC);
	int rc = step_source(m, m->src_by_name, out, "look up source by name");
	pthread_mutex_unlock(&m->mu);
	return rc;
}

int meta_source_by_id(struct meta *m, uint32_t id, struct meta_source *out)
{
	if (id == 0)
		return TD_ENOTFOUND;
	pthread_mutex_lock(&m->mu);
	sqlite3_bind_int64(m->src_by_id, 1, id);
	int rc = step_source(m, m->src_by_id, out, "look up source by id");
	pthread_mutex_unlock(&m->mu);
	return rc;
}

int meta_source_by_key(struct meta *m, const char *write_key, struct meta_source *out)
{
	/* A key that cannot fit struct meta_source cannot be stored: no lookup. */
	size_t len = write_key ? strnlen(write_key, META_KEY_LEN + 1) : 0;
	if (len == 0 || len > META_KEY_LEN)
		return TD_ENOTFOUND;
	uint64_t hash = XXH3_64bits(write_key, len);
	int64_t now = mono_ms();
	uint64_t epoch;
	int rc;
	struct meta_source src;
	if (cache_get(&m->cache, hash, write_key, now, &src, &rc, &epoch)) {
		if (rc == 0)
			*out = src;
		return rc;
	}
	pthread_mutex_lock(&m->mu);
	sqlite3_bind_text(m->src_by_key, 1, write_key, (int)len, SQLITE_STATIC);
	rc = step_source(m, m->src_by_key, &src, "look up write key");
	pthread_mutex_unlock(&m->mu);
	if (rc != 0 && rc != TD_ENOTFOUND)
		return rc; /* errors are not cached: the next request tries again */
	cache_put(&m->cache, hash, write_key, now, epoch, rc, &src);
	if (rc == 0)
		*out = src;
	return rc;
}

int meta_source_list(struct meta *m, struct meta_source **out, size_t *n)
{
	size_t count = 0, cap = 16;
	struct meta_source *list = td_malloc(cap * sizeof(*list));
	int rc = 0;
	pthread_mutex_lock(&m->mu);
	sqlite3_stmt *st = m->src_list;
	int s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap *= 2;
			list = td_realloc(list, cap * sizeof(*list));
		}
		rc = read_source(st, &list[count]);
		if (rc)
			break;
		count++;
	}
	if (!rc && s != SQLITE_DONE)
		rc = db_fail(m, "list sources");
	sqlite3_reset(st);
	pthread_mutex_unlock(&m->mu);
	if (rc) {
		free(list);
		return rc;
	}
	*out = list;
	*n = count;
	return 0;
}

int meta_source_set_enabled(struct meta *m, const char *name, bool enabled)
{
	if (!is_valid_name(name))
		return TD_EINVAL;
	char key[META_KEY_LEN + 1] = "";
	int rc;
	pthread_mutex_lock(&m->mu);
	sqlite3_stmt *st = m->src_set_enabled;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, enabled ? 1 : 0);
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		column_text(st, 0, key, sizeof(key));
		s = sqlite3_step(st);
		rc = s == SQLITE_DONE ? 0 : db_fail(m, "update source");
	} else if (s == SQLITE_DONE) {
		rc = TD_ENOTFOUND;
	} else {
		rc = db_fail(m, "update source");
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	pthread_mutex_unlock(&m->mu);
	if (!rc && key[0])
		cache_forget(&m->cache, key);
	return rc;
}

/* ---------------------------------------------------------------- tokens */

static bool is_valid_role(const char *role)
{
	return role && (strcmp(role, "admin") == 0 || strcmp(role, "analyst") == 0 ||
			strcmp(role, "viewer") == 0);
}

/* Lowercase hex SHA-256 of s: the only form in which a token is stored. */
static int sha256_hex(const char *s, size_t len, char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (EVP_Digest(s, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		td_log_error("meta: SHA-256 failed (OpenSSL)");
		return TD_EIO;
	}
	for (unsigned i = 0; i < 32; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[64] = '\0';
	return 0;
}

int meta_token_create(struct meta *m, const char *name, const char *role, char *token_out)
{
	if (!is_valid_name(name) || !is_valid_role(role) || !token_out)
		return TD_EINVAL;
	char token[META_TOKEN_LEN + 1];
	char hash[65];
	int rc = 0;
	pthread_mutex_lock(&m->mu);
	/* As for write keys: a UNIQUE failure is the name unless it is free. */
	for (int attempt = 0; attempt < 3; attempt++) {
		memcpy(token, "tdk_", 4);
		rc = td_random_hex(token + 4, (META_TOKEN_LEN - 4) / 2);
		if (!rc)
			rc = sha256_hex(token, META_TOKEN_LEN, hash);
		if (rc)
			break;
		sqlite3_stmt *st = m->tok_insert;
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, role, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, hash, 64, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, td_now_ms());
		int s = sqlite3_step(st);
		if (s == SQLITE_DONE)
			rc = 0;
		else if (s == SQLITE_CONSTRAINT_UNIQUE)
			rc = TD_EEXIST;
		else
			rc = db_fail(m, "insert token");
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		if (rc != TD_EEXIST)
			break;
		st = m->tok_by_name;
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		s = sqlite3_step(st);
		if (s != SQLITE_ROW && s != SQLITE_DONE)
			rc = db_fail(m, "look up token");
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		if (s != SQLITE_DONE)
			break;
	}
	pthread_mutex_unlock(&m->mu);
	if (!rc)
		memcpy(token_out, token, META_TOKEN_LEN + 1);
	explicit_bzero(token, sizeof(token));
	return rc;
}

int meta_token_check(struct meta *m, const char *token, char *role, size_t role_cap)
{
	size_t len = token ? strnlen(token, META_TOKEN_LEN + 1) : 0;
	if (len != META_TOKEN_LEN || memcmp(token, "tdk_", 4) != 0)
		return TD_EAUTH;
	char hash[65];
	int rc = sha256_hex(token, len, hash);
	if (rc)
		return rc;
	pthread_mutex_lock(&m->mu);
	sqlite3_stmt *st = m->tok_by_hash;
	sqlite3_bind_text(st, 1, hash, 64, SQLITE_STATIC);
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		const unsigned char *r = sqlite3_column_text(st, 0);
		int n = sqlite3_column_bytes(st, 0);
		if (!r || n < 0 || !role || (size_t)n >= role_cap) {
			rc = TD_EINVAL;
		} else {
			memcpy(role, r, (size_t)n);
			role[n] = '\0';
		}
	} else if (s == SQLITE_DONE) {
		rc = TD_EAUTH;
	} else {
		rc = db_fail(m, "look up token");
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	pthread_mutex_unlock(&m->mu);
	return rc;
}

int meta_token_revoke(struct meta *m, const char *name)
{
	if (!is_valid_name(name))
		return TD_EINVAL;
	int rc = 0;
	pthread_mutex_lock(&m->mu);
	sqlite3_stmt *st = m->tok_revoke;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, td_now_ms());
	int s = sqlite3_step(st);
	int changed = sqlite3_changes(m->db);
	if (s != SQLITE_DONE)
		rc = db_fail(m, "revoke token");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (!rc && changed == 0) {
		/* Revoking twice is fine (the first time stays recorded); an
		 * unknown name is not. */
		st = m->tok_by_name;
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		s = sqlite3_step(st);
		if (s == SQLITE_DONE)
			rc = TD_ENOTFOUND;
		else if (s != SQLITE_ROW)
			rc = db_fail(m, "look up token");
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	pthread_mutex_unlock(&m->mu);
	return rc;
}

int meta_token_count(struct meta *m)
{
	int rc;
	pthread_mutex_lock(&m->mu);
	sqlite3_stmt *st = m->tok_count;
	if (sqlite3_step(st) == SQLITE_ROW) {
		sqlite3_int64 n = sqlite3_column_int64(st, 0);
		rc = n > INT_MAX ? INT_MAX : (int)n;
	} else {
		rc = db_fail(m, "count tokens");
	}
	sqlite3_reset(st);
	pthread_mutex_unlock(&m->mu);
	return rc;
}

/* ------------------------------------------------------ identity settings */

#define IDENTITY_SETTING "identity"

/* Names that are identifier types of their own: a trait of that name is
 * already an identifier (email, phone) or would be read as a user_id or an
 * anonymous_id, not as a configured trait. */
static const char *const builtin_ids[] = {"email",  "phone",	    "user_id",
					  "userId", "anonymous_id", "anonymousId"};

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool same_nocase(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
		char y = *b >= 'A' && *b <= 'Z' ? (char)(*b + 32) : *b;
		if (x != y)
			return false;
	}
	return *a == *b;
}

int meta_identity_check(const struct identity_config *c, char *err, size_t errcap)
{
	bool seen[IDENTITY_NCLASSES] = {false};
	for (int i = 0; i < IDENTITY_NCLASSES; i++) {
		if (c->limit[i] == 0) {
			snprintf(err, errcap, "the %s limit is 0; a limit is 1 to 255",
				 identity_class_name((enum identity_class)i));
			return TD_EINVAL;
		}
	}
	for (int i = 0; i < IDENTITY_NCLASSES; i++) {
		unsigned p = c->priority[i];
		if (p >= IDENTITY_NCLASSES || seen[p]) {
			snprintf(err, errcap,
				 "the priority %s; it must name each of the %d classes once "
				 "(user_id, email, phone, external, trait, anonymous_id)",
				 p >= IDENTITY_NCLASSES ? "names an unknown class"
							: "repeats a class",
				 IDENTITY_NCLASSES);
			return TD_EINVAL;
		}
		seen[p] = true;
	}
	if (c->ntraits > IDENTITY_MAX_TRAITS) {
		snprintf(err, errcap, "%zu identifier traits; at most %d", c->ntraits,
			 IDENTITY_MAX_TRAITS);
		return TD_EINVAL;
	}
	for (size_t i = 0; i < c->ntraits; i++) {
		const char *t = c->traits[i] ? c->traits[i] : "";
		size_t n = strlen(t);
		if (n == 0 || n > IDENTITY_MAX_TYPE || strchr(t, ':') || strchr(t, '.') ||
		    has_control(t)) {
			snprintf(
			    err, errcap,
			    "identifier trait '%.80s%s': a trait name is 1 to %d bytes without "
			    "':', '.' or control characters",
			    t, n > 80 ? "..." : "", IDENTITY_MAX_TYPE);
			return TD_EINVAL;
		}
		for (size_t k = 0; k < TD_ARRAY_LEN(builtin_ids); k++) {
			if (!strcmp(t, builtin_ids[k])) {
				snprintf(err, errcap,
					 "identifier trait '%s' is a built-in identifier name "
					 "(email, phone, user_id, anonymous_id and their "
					 "camelCase forms); list only other trait names",
					 t);
				return TD_EINVAL;
			}
		}
		for (size_t k = 0; k < i; k++) {
			if (!strcmp(t, c->traits[k])) {
				snprintf(err, errcap, "identifier trait '%s' is listed twice", t);
				return TD_EINVAL;
			}
		}
	}
	if (c->nblocked > IDENTITY_MAX_BLOCKED) {
		snprintf(err, errcap, "%zu blocked values; at most %d", c->nblocked,
			 IDENTITY_MAX_BLOCKED);
		return TD_EINVAL;
	}
	for (size_t i = 0; i < c->nblocked; i++) {
		const char *b = c->blocked[i] ? c->blocked[i] : "";
		size_t n = strlen(b);
		if (n == 0 || n > IDENTITY_MAX_VALUE || is_blank(b[0]) || is_blank(b[n - 1]) ||
		    has_control(b)) {
			snprintf(
			    err, errcap,
			    "blocked value '%.80s%s': a blocked value is 1 to %d bytes without "
			    "white space at either end or control characters",
			    b, n > 80 ? "..." : "", IDENTITY_MAX_VALUE);
			return TD_EINVAL;
		}
		for (size_t k = 0; k < i; k++) {
			if (same_nocase(b, c->blocked[k])) {
				snprintf(err, errcap,
					 "blocked value '%.80s' is listed twice (blocking ignores "
					 "ASCII case)",
					 b);
				return TD_EINVAL;
			}
		}
	}
	return 0;
}

char *meta_identity_json(const struct identity_config *c)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *limits = cJSON_AddObjectToObject(root, "limits");
	for (int i = 0; i < IDENTITY_NCLASSES; i++)
		cJSON_AddNumberToObject(limits, identity_class_name((enum identity_class)i),
					c->limit[i]);
	cJSON *prio = cJSON_AddArrayToObject(root, "priority");
	for (int i = 0; i < IDENTITY_NCLASSES; i++)
		cJSON_AddItemToArray(prio, cJSON_CreateString(identity_class_name(
					       (enum identity_class)c->priority[i])));
	cJSON *traits = cJSON_AddArrayToObject(root, "traits");
	for (size_t i = 0; i < c->ntraits; i++)
		cJSON_AddItemToArray(traits, cJSON_CreateString(c->traits[i]));
	cJSON *blocked = cJSON_AddArrayToObject(root, "blocked");
	for (size_t i = 0; i < c->nblocked; i++)
		cJSON_AddItemToArray(blocked, cJSON_CreateString(c->blocked[i]));
	char *out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (!out) { /* as td_malloc does: nothing sensible to do without memory */
		td_log_error("meta: out of memory writing the identity setting");
		abort();
	}
	return out;
}

/* Copies the strings of a JSON array into out->strs (from *used on), each at
 * most max bytes; sets list and *n. */
static int read_strings(const cJSON *a, const char *what, size_t cap, size_t max,
			struct meta_identity *out, size_t *used, const char **list, size_t *n,
			char *err, size_t errcap)
{
	if (!cJSON_IsArray(a)) {
		snprintf(err, errcap, "\"%s\" is not an array of strings", what);
		return TD_ECORRUPT;
	}
	*n = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, a)
	{
		if (!cJSON_IsString(e)) {
			snprintf(err, errcap, "\"%s\" holds something other than a string", what);
			return TD_ECORRUPT;
		}
		size_t len = strlen(e->valuestring);
		if (*n == cap || len > max) {
			snprintf(err, errcap,
				 "\"%s\" has more than %zu entries or one longer than "
				 "%zu bytes",
				 what, cap, max);
			return TD_ECORRUPT;
		}
		char *dst = out->strs + *used;
		memcpy(dst, e->valuestring, len + 1);
		*used += len + 1;
		list[(*n)++] = dst;
	}
	return 0;
}

/* Reads the stored document over the defaults in out->cfg. */
static int parse_identity(const char *json, struct meta_identity *out, char *err, size_t errcap)
{
	cJSON *root = cJSON_Parse(json);
	int rc = 0;
	size_t used = 0;
	if (!cJSON_IsObject(root)) {
		snprintf(err, errcap, "not a JSON object");
		rc = TD_ECORRUPT;
		goto out;
	}
	struct identity_config *c = &out->cfg;
	const cJSON *part;
	cJSON_ArrayForEach(part, root)
	{
		const char *key = part->string ? part->string : "";
		if (!strcmp(key, "limits")) {
			if (!cJSON_IsObject(part)) {
				snprintf(err, errcap, "\"limits\" is not an object");
				rc = TD_ECORRUPT;
				goto out;
			}
			const cJSON *l;
			cJSON_ArrayForEach(l, part)
			{
				int cls = identity_class_parse(l->string ? l->string : "");
				double v = cJSON_IsNumber(l) ? l->valuedouble : -1;
				if (cls < 0 || v < 1 || v > 255 || v != (double)(int)v) {
					snprintf(err, errcap,
						 "\"limits\": \"%.64s\" is not a class with a "
						 "limit from 1 to 255",
						 l->string ? l->string : "");
					rc = TD_ECORRUPT;
					goto out;
				}
				c->limit[cls] = (uint8_t)v;
			}
		} else if (!strcmp(key, "priority")) {
			int n = cJSON_IsArray(part) ? cJSON_GetArraySize(part) : -1;
			if (n != IDENTITY_NCLASSES) {
				snprintf(err, errcap,
					 "\"priority\" is not an array of the %d classes",
					 IDENTITY_NCLASSES);
				rc = TD_ECORRUPT;
				goto out;
			}
			for (int i = 0; i < n; i++) {
				const cJSON *e = cJSON_GetArrayItem(part, i);
				int cls =
				    cJSON_IsString(e) ? identity_class_parse(e->valuestring) : -1;
				if (cls < 0) {
					snprintf(err, errcap,
						 "\"priority\" names an unknown class");
					rc = TD_ECORRUPT;
					goto out;
				}
				c->priority[i] = (uint8_t)cls;
			}
		} else if (!strcmp(key, "traits")) {
			rc = read_strings(part, "traits", IDENTITY_MAX_TRAITS, IDENTITY_MAX_TYPE,
					  out, &used, c->traits, &c->ntraits, err, errcap);
		} else if (!strcmp(key, "blocked")) {
			rc = read_strings(part, "blocked", IDENTITY_MAX_BLOCKED, IDENTITY_MAX_VALUE,
					  out, &used, c->blocked, &c->nblocked, err, errcap);
		} else {
			snprintf(err, errcap, "unknown part \"%.64s\"", key);
			rc = TD_ECORRUPT;
		}
		if (rc)
			goto out;
	}
	if (meta_identity_check(c, err, errcap))
		rc = TD_ECORRUPT;
out:
	cJSON_Delete(root);
	return rc;
}

int meta_identity_get(struct meta *m, struct meta_identity *out, char *err, size_t errcap)
{
	identity_config_default(&out->cfg);
	out->stored = false;
	if (errcap)
		err[0] = '\0';
	char *json = NULL;
	int rc = 0;
	pthread_mutex_lock(&m->mu);
	sqlite3_stmt *st = m->set_get;
	sqlite3_bind_text(st, 1, IDENTITY_SETTING, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(st, 0);
		int n = sqlite3_column_bytes(st, 0);
		json = td_malloc((size_t)(n > 0 ? n : 0) + 1);
		if (v && n > 0)
			memcpy(json, v, (size_t)n);
		json[n > 0 ? n : 0] = '\0';
	} else if (s != SQLITE_DONE) {
		rc = db_fail(m, "read the identity setting");
		snprintf(err, errcap, "cannot read meta.db: %s", sqlite3_errmsg(m->db));
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	pthread_mutex_unlock(&m->mu);
	if (rc || !json)
		return rc;
	char why[300];
	rc = parse_identity(json, out, why, sizeof(why));
	free(json);
	if (rc) {
		identity_config_default(&out->cfg);
		snprintf(err, errcap,
			 "the identity configuration stored in meta.db is invalid (%s); set it "
			 "again with 'tandem identity config' (--reset for the defaults)",
			 why);
		return rc;
	}
	out->stored = true;
	return 0;
}

int meta_identity_set(struct meta *m, const struct identity_config *c, char *err, size_t errcap)
{
	int rc = meta_identity_check(c, err, errcap);
	if (rc)
		return rc;
	char *json = meta_identity_json(c);
	pthread_mutex_lock(&m->mu);
	sqlite3_stmt *st = m->set_put;
	sqlite3_bind_text(st, 1, IDENTITY_SETTING, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, json, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, td_now_ms());
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = db_fail(m, "store the identity setting");
		snprintf(err, errcap, "cannot write meta.db: %s", sqlite3_errmsg(m->db));
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	pthread_mutex_unlock(&m->mu);
	free(json);
	return rc;
}

int meta_identity_reset(struct meta *m)
{
	int rc = 0;
	pthread_mutex_lock(&m->mu);
	sqlite3_stmt *st = m->set_del;
	sqlite3_bind_text(st, 1, IDENTITY_SETTING, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_fail(m, "remove the identity setting");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	pthread_mutex_unlock(&m->mu);
	return rc;
}

int meta_with_db(struct meta *m, int (*fn)(sqlite3 *db, void *ctx), void *ctx)
{
	pthread_mutex_lock(&m->mu);
	int rc = fn(m->db, ctx);
	pthread_mutex_unlock(&m->mu);
	return rc;
}
