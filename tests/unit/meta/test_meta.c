/*
 * test_meta.c - sources, write keys, the write-key cache and API tokens,
 * each test in a fresh temporary data directory.
 */
#include "base/log.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "meta/meta.h"

#include "mtest.h"
#include <criterion/criterion.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define dir    mtest_dir
#define dbpath mtest_db

static void setup(void)
{
	mtest_setup("/tmp/td-meta");
}

static void teardown(void)
{
	mtest_teardown();
}

static struct meta *open_meta(void)
{
	struct meta *m = NULL;
	int rc = meta_open(&m, dir);
	cr_assert_eq(rc, 0, "meta_open: %s", td_strerror(rc));
	cr_assert_not_null(m);
	return m;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

static int64_t mono_ms(void)
{
	return (int64_t)(td_mono_ns() / 1000000u);
}

static bool is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return true;
}

static void assert_same_source(const struct meta_source *a, const struct meta_source *b)
{
	cr_assert_eq(a->id, b->id);
	cr_assert_str_eq(a->name, b->name);
	cr_assert_str_eq(a->write_key, b->write_key);
	cr_assert_eq(a->enabled, b->enabled);
	cr_assert_eq(a->created_ms, b->created_ms);
}

TestSuite(meta, .init = setup, .fini = teardown);

Test(meta, create_list_lookup)
{
	struct meta *m = open_meta();
	const char *names[] = {"web", "ios.app", "server_1-X"};
	struct meta_source src[3];
	int64_t before = td_now_ms();
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(meta_source_create(m, names[i], &src[i]), 0);
		cr_assert_eq(src[i].id, (uint32_t)i + 1);
		cr_assert_str_eq(src[i].name, names[i]);
		cr_assert_eq(strlen(src[i].write_key), META_KEY_LEN);
		cr_assert_eq(strncmp(src[i].write_key, "wk_", 3), 0);
		cr_assert(is_lower_hex(src[i].write_key + 3, 32), "%s", src[i].write_key);
		cr_assert(src[i].enabled);
		cr_assert(src[i].created_ms >= before && src[i].created_ms <= td_now_ms() + 1);
	}
	cr_assert_str_neq(src[0].write_key, src[1].write_key);

	struct meta_source got;
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(meta_source_by_name(m, names[i], &got), 0);
		assert_same_source(&got, &src[i]);
		cr_assert_eq(meta_source_by_id(m, src[i].id, &got), 0);
		assert_same_source(&got, &src[i]);
		cr_assert_eq(meta_source_by_key(m, src[i].write_key, &got), 0);
		assert_same_source(&got, &src[i]);
		/* second time from the cache: the same answer */
		cr_assert_eq(meta_source_by_key(m, src[i].write_key, &got), 0);
		assert_same_source(&got, &src[i]);
	}

	struct meta_source *list = NULL;
	size_t n = 0;
	cr_assert_eq(meta_source_list(m, &list, &n), 0);
	cr_assert_eq(n, 3);
	for (size_t i = 0; i < n; i++)
		assert_same_source(&list[i], &src[i]);
	free(list);

	cr_assert_eq(meta_source_set_enabled(m, "ios.app", false), 0);
	cr_assert_eq(meta_source_by_name(m, "ios.app", &got), 0);
	cr_assert_not(got.enabled);
	/* a change made through this struct meta is seen at once, cache or not */
	cr_assert_eq(meta_source_by_key(m, src[1].write_key, &got), 0);
	cr_assert_not(got.enabled);
	cr_assert_eq(meta_source_set_enabled(m, "ios.app", true), 0);
	cr_assert_eq(meta_source_by_key(m, src[1].write_key, &got), 0);
	cr_assert(got.enabled);
	meta_close(m);
}

Test(meta, empty_list)
{
	struct meta *m = open_meta();
	struct meta_source *list = NULL;
	size_t n = 7;
	cr_assert_eq(meta_source_list(m, &list, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_not_null(list);
	free(list);
	meta_close(m);
	meta_close(NULL);
}

Test(meta, open_fails_cleanly)
{
	char file[128];
	snprintf(file, sizeof(file), "%s/not-a-dir", dir);
	FILE *f = fopen(file, "w");
	cr_assert_not_null(f);
	fclose(f);
	struct meta *m = (struct meta *)&m; /* must be reset to NULL */
	cr_assert_lt(meta_open(&m, file), 0);
	cr_assert_null(m);
	cr_assert_eq(meta_open(&m, ""), TD_EINVAL);
	cr_assert_null(m);
}

Test(meta, file_mode_0600)
{
	mode_t old = umask(0); /* the mode must not depend on the caller's umask */
	struct meta *m = open_meta();
	cr_assert_eq(meta_source_create(m, "web", NULL), 0);
	struct stat st;
	cr_assert_eq(stat(dbpath, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "meta.db mode %o", (unsigned)(st.st_mode & 0777));
	const char *side[] = {"-wal", "-shm"};
	for (size_t i = 0; i < 2; i++) {
		char p[160];
		snprintf(p, sizeof(p), "%s%s", dbpath, side[i]);
		if (stat(p, &st) == 0)
			cr_assert_eq(st.st_mode & 0077, 0, "%s mode %o", p,
				     (unsigned)(st.st_mode & 0777));
	}
	meta_close(m);
	umask(old);
}

Test(meta, existing_readable_file_is_tightened)
{
	FILE *f = fopen(dbpath, "w");
	cr_assert_not_null(f);
	fclose(f);
	cr_assert_eq(chmod(dbpath, 0644), 0);
	struct meta *m = open_meta();
	struct stat st;
	cr_assert_eq(stat(dbpath, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "meta.db mode %o", (unsigned)(st.st_mode & 0777));
	meta_close(m);
}

Test(meta, creates_missing_data_dir)
{
	char sub[128];
	snprintf(sub, sizeof(sub), "%s/data", dir);
	struct meta *m = NULL;
	cr_assert_eq(meta_open(&m, sub), 0);
	struct stat st;
	cr_assert_eq(stat(sub, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(st.st_mode & 0077, 0);
	meta_close(m);
}

Test(meta, schema_version_and_wal_mode)
{
	struct meta *m = open_meta();
	cr_assert_eq(mtest_int(dbpath, "PRAGMA user_version"), 4);
	sqlite3 *db;
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(db);
	meta_close(m);
}

Test(meta, newer_schema_is_refused)
{
	struct meta *m = open_meta();
	meta_close(m);
	mtest_sql(dbpath, "PRAGMA user_version = 5");
	m = NULL;
	cr_assert_eq(meta_open(&m, dir), TD_EDB);
	cr_assert_null(m);
}

Test(meta, duplicate_and_invalid_names)
{
	struct meta *m = open_meta();
	struct meta_source src;
	cr_assert_eq(meta_source_create(m, "web", &src), 0);
	cr_assert_eq(meta_source_create(m, "web", &src), TD_EEXIST);
	cr_assert_eq(src.id, 1, "a failed create must not touch *out");

	char longest[128], too_long[129];
	memset(longest, 'a', 127);
	longest[127] = '\0';
	memset(too_long, 'b', 128);
	too_long[128] = '\0';
	cr_assert_eq(meta_source_create(m, longest, &src), 0);
	cr_assert_str_eq(src.name, longest);
	cr_assert_eq(meta_source_create(m, too_long, &src), TD_EINVAL);

	const char *bad[] = {"",    "a b", "a/b",  "web\n", "caf\xc3\xa9", "x;DROP TABLE sources",
			     "a'b", "%",   "tab\t"};
	for (size_t i = 0; i < TD_ARRAY_LEN(bad); i++) {
		cr_assert_eq(meta_source_create(m, bad[i], &src), TD_EINVAL, "name '%s'", bad[i]);
		cr_assert_eq(meta_source_by_name(m, bad[i], &src), TD_EINVAL);
		cr_assert_eq(meta_source_set_enabled(m, bad[i], false), TD_EINVAL);
	}
	cr_assert_eq(meta_source_create(m, NULL, &src), TD_EINVAL);

	cr_assert_eq(meta_source_by_name(m, "nope", &src), TD_ENOTFOUND);
	cr_assert_eq(meta_source_by_id(m, 999, &src), TD_ENOTFOUND);
	cr_assert_eq(meta_source_by_id(m, 0, &src), TD_ENOTFOUND);
	cr_assert_eq(meta_source_set_enabled(m, "nope", false), TD_ENOTFOUND);

	struct meta_source *list;
	size_t n;
	cr_assert_eq(meta_source_list(m, &list, &n), 0);
	cr_assert_eq(n, 2, "failed creates must not leave rows");
	free(list);
	/* the id after a failed (duplicate) insert is still dense */
	cr_assert_eq(meta_source_create(m, "next", &src), 0);
	cr_assert_eq(src.id, 3);
	meta_close(m);
}

Test(meta, unknown_key)
{
	struct meta *m = open_meta();
	struct meta_source src;
	memset(&src, 0x5a, sizeof(src));
	cr_assert_eq(meta_source_create(m, "web", NULL), 0);
	const char *keys[] = {"wk_00000000000000000000000000000000",
			      "wk_0000000000000000000000000000000", "", "x",
			      "wk_000000000000000000000000000000000000000000000000000000"};
	for (int round = 0; round < 3; round++) { /* uncached, then cached */
		for (size_t i = 0; i < TD_ARRAY_LEN(keys); i++)
			cr_assert_eq(meta_source_by_key(m, keys[i], &src), TD_ENOTFOUND, "%s",
				     keys[i]);
	}
	cr_assert_eq(meta_source_by_key(m, NULL, &src), TD_ENOTFOUND);
	meta_close(m);
}

Test(meta, disable_takes_effect_through_cache)
{
	struct meta *server = open_meta();
	struct meta *cli = open_meta(); /* like `tandem source disable` in another process */
	struct meta_source src, got;
	cr_assert_eq(meta_source_create(server, "web", &src), 0);
	cr_assert_eq(meta_source_by_key(server, src.write_key, &got), 0);
	cr_assert(got.enabled);
	int64_t cached_at = mono_ms();

	cr_assert_eq(meta_source_set_enabled(cli, "web", false), 0);
	cr_assert_eq(meta_source_by_key(server, src.write_key, &got), 0);
	if (mono_ms() - cached_at < 900)
		cr_assert(got.enabled, "answered from the cache, so still enabled");

	sleep_ms(1100);
	cr_assert_eq(meta_source_by_key(server, src.write_key, &got), 0);
	cr_assert_not(got.enabled, "the disable must show within a second");

	meta_close(cli);
	meta_close(server);
}

Test(meta, not_found_answers_expire_too)
{
	struct meta *m = open_meta();
	const char *key = "wk_0123456789abcdef0123456789abcdef";
	struct meta_source got;
	cr_assert_eq(meta_source_by_key(m, key, &got), TD_ENOTFOUND);
	int64_t cached_at = mono_ms();
	/* a source inserted by someone else (here: the sqlite3 shell) */
	mtest_sql(dbpath, "INSERT INTO sources(name, write_key, created_at) VALUES('imported', "
			  "'wk_0123456789abcdef0123456789abcdef', 1700000000000)");
	int rc = meta_source_by_key(m, key, &got);
	if (mono_ms() - cached_at < 900)
		cr_assert_eq(rc, TD_ENOTFOUND, "answered from the cache");
	sleep_ms(1100);
	cr_assert_eq(meta_source_by_key(m, key, &got), 0);
	cr_assert_str_eq(got.name, "imported");
	cr_assert(got.enabled);
	cr_assert_eq(got.created_ms, 1700000000000);
	meta_close(m);
}

Test(meta, reopen_keeps_data)
{
	struct meta *m = open_meta();
	struct meta_source a, b, got;
	char token[META_TOKEN_LEN + 1], role[16];
	cr_assert_eq(meta_source_create(m, "web", &a), 0);
	cr_assert_eq(meta_source_create(m, "android", &b), 0);
	cr_assert_eq(meta_source_set_enabled(m, "android", false), 0);
	cr_assert_eq(meta_token_create(m, "ci", "analyst", token), 0);
	meta_close(m);

	m = open_meta();
	cr_assert_eq(meta_source_by_key(m, a.write_key, &got), 0);
	assert_same_source(&got, &a);
	cr_assert_eq(meta_source_by_key(m, b.write_key, &got), 0);
	cr_assert_eq(got.id, b.id);
	cr_assert_not(got.enabled);
	cr_assert_eq(meta_token_check(m, token, role, sizeof(role)), 0);
	cr_assert_str_eq(role, "analyst");
	cr_assert_eq(meta_token_count(m), 1);
	struct meta_source c;
	cr_assert_eq(meta_source_create(m, "server", &c), 0);
	cr_assert_eq(c.id, 3);
	meta_close(m);
}

Test(meta, ids_never_reused)
{
	struct meta *m = open_meta();
	struct meta_source src;
	cr_assert_eq(meta_source_create(m, "a", &src), 0);
	cr_assert_eq(meta_source_create(m, "b", &src), 0);
	cr_assert_eq(src.id, 2);
	mtest_sql(dbpath, "DELETE FROM sources WHERE id = 2");
	cr_assert_eq(meta_source_create(m, "c", &src), 0);
	cr_assert_eq(src.id, 3, "id 2 belonged to a deleted source; events may still carry it");
	meta_close(m);
}

Test(meta, second_handle_sees_changes)
{
	struct meta *m1 = open_meta();
	struct meta *m2 = open_meta();
	struct meta_source src, got;
	cr_assert_eq(meta_source_create(m1, "web", &src), 0);
	cr_assert_eq(meta_source_by_name(m2, "web", &got), 0);
	assert_same_source(&got, &src);
	cr_assert_eq(meta_source_by_key(m2, src.write_key, &got), 0);
	assert_same_source(&got, &src);
	cr_assert_eq(meta_source_create(m2, "web", NULL), TD_EEXIST);
	cr_assert_eq(meta_source_create(m2, "ios", &src), 0);
	cr_assert_eq(src.id, 2);
	struct meta_source *list;
	size_t n;
	cr_assert_eq(meta_source_list(m1, &list, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(list[1].name, "ios");
	free(list);

	char token[META_TOKEN_LEN + 1], role[16];
	cr_assert_eq(meta_token_create(m2, "ops", "admin", token), 0);
	cr_assert_eq(meta_token_check(m1, token, role, sizeof(role)), 0);
	cr_assert_str_eq(role, "admin");
	cr_assert_eq(meta_token_revoke(m1, "ops"), 0);
	cr_assert_eq(meta_token_check(m2, token, role, sizeof(role)), TD_EAUTH);
	meta_close(m2);
	meta_close(m1);
}

Test(meta, tokens)
{
	struct meta *m = open_meta();
	char admin[META_TOKEN_LEN + 1], viewer[META_TOKEN_LEN + 1], role[16];
	cr_assert_eq(meta_token_count(m), 0);
	cr_assert_eq(meta_token_create(m, "root", "admin", admin), 0);
	cr_assert_eq(strlen(admin), META_TOKEN_LEN);
	cr_assert_eq(strlen(admin), 68);
	cr_assert_eq(strncmp(admin, "tdk_", 4), 0);
	cr_assert(is_lower_hex(admin + 4, 64), "%s", admin);
	cr_assert_eq(meta_token_create(m, "dash", "viewer", viewer), 0);
	cr_assert_str_neq(admin, viewer);
	cr_assert_eq(meta_token_count(m), 2);

	cr_assert_eq(meta_token_check(m, admin, role, sizeof(role)), 0);
	cr_assert_str_eq(role, "admin");
	cr_assert_eq(meta_token_check(m, viewer, role, sizeof(role)), 0);
	cr_assert_str_eq(role, "viewer");

	/* wrong tokens */
	char wrong[META_TOKEN_LEN + 1];
	memcpy(wrong, admin, sizeof(wrong));
	wrong[40] = wrong[40] == 'a' ? 'b' : 'a';
	cr_assert_eq(meta_token_check(m, wrong, role, sizeof(role)), TD_EAUTH);
	char longer[META_TOKEN_LEN + 2];
	snprintf(longer, sizeof(longer), "%sa", admin);
	cr_assert_eq(meta_token_check(m, longer, role, sizeof(role)), TD_EAUTH);
	cr_assert_eq(meta_token_check(m, admin + 4, role, sizeof(role)), TD_EAUTH);
	cr_assert_eq(meta_token_check(m, "", role, sizeof(role)), TD_EAUTH);
	cr_assert_eq(meta_token_check(m, NULL, role, sizeof(role)), TD_EAUTH);
	/* the role does not fit */
	cr_assert_eq(meta_token_check(m, admin, role, 3), TD_EINVAL);

	/* bad input */
	char t[META_TOKEN_LEN + 1];
	const char *bad_roles[] = {"root", "", "Admin", "admin ", "owner"};
	for (size_t i = 0; i < TD_ARRAY_LEN(bad_roles); i++)
		cr_assert_eq(meta_token_create(m, "x", bad_roles[i], t), TD_EINVAL, "role '%s'",
			     bad_roles[i]);
	cr_assert_eq(meta_token_create(m, "x", NULL, t), TD_EINVAL);
	cr_assert_eq(meta_token_create(m, "bad name", "admin", t), TD_EINVAL);
	cr_assert_eq(meta_token_create(m, "root", "analyst", t), TD_EEXIST);
	cr_assert_eq(meta_token_count(m), 2);

	/* revoke */
	cr_assert_eq(meta_token_revoke(m, "root"), 0);
	cr_assert_eq(meta_token_check(m, admin, role, sizeof(role)), TD_EAUTH);
	cr_assert_eq(meta_token_check(m, viewer, role, sizeof(role)), 0);
	cr_assert_eq(meta_token_count(m), 1);
	cr_assert_eq(meta_token_revoke(m, "root"), 0, "revoking twice is harmless");
	cr_assert_eq(meta_token_revoke(m, "nobody"), TD_ENOTFOUND);
	cr_assert_eq(meta_token_revoke(m, "bad name"), TD_EINVAL);
	cr_assert_eq(meta_token_count(m), 1);
	cr_assert_eq(mtest_int(dbpath, "SELECT count(*) FROM tokens WHERE revoked_at IS NOT NULL"),
		     1);
	meta_close(m);
}

static bool contains(const unsigned char *hay, size_t n, const char *needle)
{
	return memmem(hay, n, needle, strlen(needle)) != NULL;
}

/* Reads every file of the data directory (meta.db, -wal, -shm) into one buffer. */
static unsigned char *read_dir_files(size_t *n)
{
	const char *names[] = {"meta.db", "meta.db-wal", "meta.db-shm", "meta.db-journal"};
	unsigned char *all = NULL;
	*n = 0;
	for (size_t i = 0; i < TD_ARRAY_LEN(names); i++) {
		char p[160];
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		FILE *f = fopen(p, "rb");
		if (!f)
			continue;
		unsigned char chunk[65536];
		size_t k;
		while ((k = fread(chunk, 1, sizeof(chunk), f)) > 0) {
			all = realloc(all, *n + k);
			cr_assert_not_null(all);
			memcpy(all + *n, chunk, k);
			*n += k;
		}
		fclose(f);
	}
	return all;
}

Test(meta, plaintext_token_never_stored)
{
	struct meta *m = open_meta();
	char token[META_TOKEN_LEN + 1];
	cr_assert_eq(meta_token_create(m, "root", "admin", token), 0);

	unsigned char md[32];
	unsigned int mdlen;
	cr_assert_eq(EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL), 1);
	char hash[65];
	for (int i = 0; i < 32; i++)
		snprintf(hash + 2 * i, 3, "%02x", md[i]);

	for (int pass = 0; pass < 2; pass++) { /* open (data in -wal), then closed */
		size_t n;
		unsigned char *bytes = read_dir_files(&n);
		cr_assert_not_null(bytes);
		cr_assert(contains(bytes, n, hash), "the stored hash is where we look");
		cr_assert_not(contains(bytes, n, token), "plain token found in meta.db");
		cr_assert_not(contains(bytes, n, token + 4), "token body found in meta.db");
		free(bytes);
		if (pass == 0)
			meta_close(m);
	}
}

/* Many threads hit meta_source_by_key (the ingest path) while another
 * toggles a source and a flood of unknown keys forces the cache to clear. */
struct hammer {
	struct meta *m;
	struct meta_source src[4];
	int seed;
	int failures;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	unsigned state = (unsigned)h->seed * 2654435761u + 1;
	for (int i = 0; i < 20000; i++) {
		state = state * 1103515245u + 12345u;
		struct meta_source got;
		if (state % 3 == 0) {
			char key[META_KEY_LEN + 1];
			snprintf(key, sizeof(key), "wk_%08x%08x%016x", state, (unsigned)h->seed,
				 (unsigned)i);
			if (meta_source_by_key(h->m, key, &got) != TD_ENOTFOUND)
				h->failures++;
		} else {
			const struct meta_source *want = &h->src[(state >> 8) % 4];
			if (meta_source_by_key(h->m, want->write_key, &got) != 0 ||
			    got.id != want->id || strcmp(got.name, want->name) != 0 ||
			    strcmp(got.write_key, want->write_key) != 0)
				h->failures++;
		}
	}
	return NULL;
}

Test(meta, concurrent_key_lookups)
{
	struct meta *m = open_meta();
	struct hammer h[4];
	struct meta_source src[4];
	const char *names[] = {"a", "b", "c", "d"};
	for (int i = 0; i < 4; i++)
		cr_assert_eq(meta_source_create(m, names[i], &src[i]), 0);
	pthread_t th[4];
	for (int t = 0; t < 4; t++) {
		h[t].m = m;
		memcpy(h[t].src, src, sizeof(src));
		h[t].seed = t + 1;
		h[t].failures = 0;
		cr_assert_eq(pthread_create(&th[t], NULL, hammer_main, &h[t]), 0);
	}
	for (int i = 0; i < 50; i++) {
		cr_assert_eq(meta_source_set_enabled(m, "d", i % 2 == 1), 0);
		sleep_ms(1);
	}
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		cr_assert_eq(h[t].failures, 0, "thread %d: %d wrong answers", t, h[t].failures);
	}
	struct meta_source got;
	cr_assert_eq(meta_source_by_key(m, src[3].write_key, &got), 0);
	cr_assert(got.enabled, "the last toggle enabled it");
	meta_close(m);
}
