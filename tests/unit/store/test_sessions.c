/*
 * test_sessions.c - the session.* values the store stamps at ingest
 * (docs/sessions.md): every rule on hand-built journeys, identity merges,
 * and the same stamps after a crash and replay, after a log snapshot, and
 * with a torn log.
 */
#include "stest.h"
#include "base/buf.h"
#include "base/td.h"
#include "collect/collect.h"
#include "demo/demo.h"
#include "identity/identity.h"
#include "store/sessions.h"
#include "store/store.h"
#include "store/store_int.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct store *open_store(const char *dir, uint64_t snapshot_bytes)
{
	struct store_options o = {.dir = dir,
				  .no_merge = true,
				  .flush_rows = 500,
				  .session_snapshot_bytes = snapshot_bytes};
	struct store *s;
	cr_assert_eq(store_open(&s, &o), 0);
	return s;
}

/* One row's stamps as " campaign=.. channel=.. first=.. id=.. ..." (path order). */
static void on_value(void *ctx, const char *path, const struct store_value *v)
{
	struct td_buf *b = ctx;
	if (v->kind == QCOL_NUMBER)
		td_buf_printf(b, " %s=%.17g", path + 8, v->num);
	else if (v->kind == QCOL_BOOL)
		td_buf_printf(b, " %s=%s", path + 8, v->b ? "true" : "false");
	else
		td_buf_printf(b, " %s=%s", path + 8, v->str);
}

static int cmp_lines(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every row's stamps, one line each, sorted by messageId. */
static char *dump(struct store *s)
{
	cr_assert_eq(store_seal(s), 0);
	struct store_snap *sn = store_snapshot(s);
	struct store_stats st;
	store_get_stats(s, &st);
	uint32_t *pids = malloc((st.pids ? st.pids : 1) * sizeof(*pids));
	for (uint32_t i = 0; i < st.pids; i++)
		pids[i] = i;
	struct store_row *rows;
	size_t n;
	cr_assert_eq(store_snap_person_rows(sn, pids, st.pids, 0, &rows, &n), 0);
	char **lines = malloc((n ? n : 1) * sizeof(*lines));
	for (size_t i = 0; i < n; i++) {
		struct td_buf b;
		td_buf_init(&b, 1 << 20);
		struct store_value v;
		cr_assert(store_row_value(&rows[i], "messageId", &v));
		td_buf_printf(&b, "%s|%s|", v.str, store_row_event(&rows[i]));
		store_row_values(&rows[i], "session.", on_value, &b);
		lines[i] = td_buf_steal(&b);
	}
	qsort(lines, n, sizeof(*lines), cmp_lines);
	struct td_buf all;
	td_buf_init(&all, 256u << 20);
	for (size_t i = 0; i < n; i++) {
		td_buf_printf(&all, "%s\n", lines[i]);
		free(lines[i]);
	}
	free(lines);
	free(rows);
	free(pids);
	store_snap_release(sn);
	return td_buf_steal(&all);
}

/* The stamps of message id in a dump ("" when it has none). */
static char *stamps_of(const char *all, const char *id)
{
	char key[64];
	snprintf(key, sizeof(key), "\n%s|", id);
	size_t n = strlen(all);
	char *whole = malloc(n + 2);
	whole[0] = '\n';
	memcpy(whole + 1, all, n + 1);
	const char *p = strstr(whole, key);
	cr_assert(p, "no row for %s in\n%s", id, all);
	p += strlen(key); /* at the event name, then the stamps up to the line's end */
	const char *end = strchr(p, '\n'), *sp = memchr(p, '|', (size_t)(end - p));
	char *r = sp ? strndup(sp + 1, (size_t)(end - sp - 1)) : strdup("");
	free(whole);
	return r;
}

static void expect(const char *all, const char *id, const char *want)
{
	char *got = stamps_of(all, id);
	cr_expect(strcmp(got, want) == 0, "%s:\n got: [%s]\nwant: [%s]", id, got, want);
	free(got);
}

#define URL(path) "\"context\":{\"page\":{\"url\":\"https://shop.example" path "\"}}"

Test(sessions, rules_on_a_hand_built_journey)
{
	struct stest_saved sv;
	stest_saved_init(&sv, true);
	/* 1: a paid landing, pages after it stay in its session */
	stest_save(&sv,
		   "{\"type\":\"page\",\"messageId\":\"e1\",\"anonymousId\":\"a\","
		   "\"timestamp\":\"2026-01-01T10:00:00Z\","
		   "\"context\":{\"page\":{\"url\":\"https://shop.example/land?utm_source=google&"
		   "utm_medium=cpc&utm_campaign=spring\"}}}");
	stest_save(&sv, "{\"type\":\"page\",\"messageId\":\"e2\",\"anonymousId\":\"a\","
			"\"timestamp\":\"2026-01-01T10:30:00Z\"," URL("/p1") "}");
	/* exactly 30 minutes later: same session; an identify is never stamped */
	stest_save(&sv, "{\"type\":\"track\",\"event\":\"Order Completed\",\"messageId\":\"e3\","
			"\"anonymousId\":\"a\",\"timestamp\":\"2026-01-01T11:00:00Z\"}");
	stest_save(&sv, "{\"type\":\"identify\",\"messageId\":\"e4\",\"anonymousId\":\"a\","
			"\"timestamp\":\"2026-01-01T11:00:01Z\",\"traits\":{\"plan\":\"pro\"}}");
	/* 30 min + 1 ms after e3: a new session, from an organic search */
	stest_save(&sv,
		   "{\"type\":\"page\",\"messageId\":\"e5\",\"anonymousId\":\"a\","
		   "\"timestamp\":\"2026-01-01T11:30:00.001Z\",\"context\":{\"page\":{\"url\":"
		   "\"https://shop.example/blog\",\"referrer\":\"https://www.google.com/\"}}}");
	/* a new campaign starts a session at once; the same one again does not */
	stest_save(&sv, "{\"type\":\"page\",\"messageId\":\"e6\",\"anonymousId\":\"a\","
			"\"timestamp\":\"2026-01-01T11:31:00Z\"," URL(
			    "/n?utm_source=news&utm_medium=email&"
			    "utm_campaign=jan") "}");
	stest_save(&sv, "{\"type\":\"page\",\"messageId\":\"e7\",\"anonymousId\":\"a\","
			"\"timestamp\":\"2026-01-01T11:32:00Z\"," URL(
			    "/n2?utm_source=news&utm_medium=email&"
			    "utm_campaign=jan") "}");
	/* late, inside the current session: joins it without moving it */
	stest_save(&sv, "{\"type\":\"track\",\"event\":\"Late\",\"messageId\":\"e8\","
			"\"anonymousId\":\"a\",\"timestamp\":\"2026-01-01T11:10:00Z\"}");
	/* late, before the current session by more than the gap: none */
	stest_save(&sv, "{\"type\":\"track\",\"event\":\"Late\",\"messageId\":\"e9\","
			"\"anonymousId\":\"a\",\"timestamp\":\"2026-01-01T09:00:00Z\"}");
	/* a link of the site itself is no source; the client's own session.* is
	 * not indexed */
	stest_save(&sv, "{\"type\":\"page\",\"messageId\":\"e10\",\"anonymousId\":\"a\","
			"\"timestamp\":\"2026-01-01T14:00:00Z\",\"session\":{\"id\":\"forged\"},"
			"\"context\":{\"page\":{\"url\":\"https://shop.example/back\","
			"\"referrer\":\"https://shop.example/blog\"}}}");
	stest_save(&sv, "{\"type\":\"screen\",\"name\":\"Home\",\"messageId\":\"e11\","
			"\"userId\":\"u9\",\"timestamp\":\"2026-01-01T14:00:00Z\"}");
	char *dir = stest_tmpdir();
	struct store *s = open_store(dir, 0);
	stest_apply_range(s, &sv, 0, sv.n);
	char *all = dump(s);
	expect(all, "e1",
	       " campaign=spring channel=Paid Search first=true id=1 landing_page=/land medium=cpc "
	       "number=1 source=google");
	expect(all, "e2",
	       " campaign=spring channel=Paid Search id=1 landing_page=/land medium=cpc number=1 "
	       "source=google");
	expect(all, "e3",
	       " campaign=spring channel=Paid Search id=1 landing_page=/land medium=cpc number=1 "
	       "source=google");
	expect(all, "e4", "");
	expect(all, "e5",
	       " channel=Organic Search first=true id=5 landing_page=/blog medium=search number=2 "
	       "source=Google");
	expect(all, "e6",
	       " campaign=jan channel=Email first=true id=6 landing_page=/n medium=email number=3 "
	       "source=news");
	expect(
	    all, "e7",
	    " campaign=jan channel=Email id=6 landing_page=/n medium=email number=3 source=news");
	expect(
	    all, "e8",
	    " campaign=jan channel=Email id=6 landing_page=/n medium=email number=3 source=news");
	expect(all, "e9", "");
	expect(all, "e10", " channel=Direct first=true id=10 landing_page=/back number=4");
	expect(all, "e11", " first=true id=11 number=1");
	struct sessions_stats st;
	sessions_get_stats(s->sess, &st);
	cr_expect_eq(st.late, 1);
	cr_expect_eq(st.persons, 2);
	/* the same after a restart: the state came back from the log */
	store_close(s);
	s = open_store(dir, 0);
	stest_save(&sv, "{\"type\":\"page\",\"messageId\":\"e12\",\"anonymousId\":\"a\","
			"\"timestamp\":\"2026-01-01T14:20:00Z\"," URL("/again") "}");
	stest_save(&sv, "{\"type\":\"page\",\"messageId\":\"e13\",\"anonymousId\":\"a\","
			"\"timestamp\":\"2026-01-02T09:00:00Z\"," URL("/next-day") "}");
	stest_apply_range(s, &sv, 11, sv.n);
	char *after = dump(s);
	expect(after, "e12", " channel=Direct id=10 landing_page=/back number=4");
	expect(after, "e13", " channel=Direct first=true id=13 landing_page=/next-day number=5");
	store_close(s);
	free(all);
	free(after);
	stest_saved_free(&sv);
	stest_rmtree(dir);
	free(dir);
}

Test(sessions, a_merge_keeps_the_later_session_and_adds_the_counts)
{
	struct stest_saved sv;
	stest_saved_init(&sv, true);
	/* person A (user u1): two sessions a day before */
	stest_save(&sv, "{\"type\":\"page\",\"messageId\":\"m1\",\"userId\":\"u1\","
			"\"timestamp\":\"2026-01-01T08:00:00Z\"," URL("/a1") "}");
	stest_save(&sv, "{\"type\":\"page\",\"messageId\":\"m2\",\"userId\":\"u1\","
			"\"timestamp\":\"2026-01-01T12:00:00Z\"," URL("/a2") "}");
	/* person B (a new device): one session, then signs in as u1 */
	stest_save(&sv, "{\"type\":\"page\",\"messageId\":\"m3\",\"anonymousId\":\"dev2\","
			"\"timestamp\":\"2026-01-02T09:00:00Z\"," URL("/b1") "}");
	stest_save(&sv, "{\"type\":\"identify\",\"messageId\":\"m4\",\"anonymousId\":\"dev2\","
			"\"userId\":\"u1\",\"timestamp\":\"2026-01-02T09:05:00Z\"}");
	/* the same visit goes on as u1, then a new one days later */
	stest_save(&sv, "{\"type\":\"track\",\"event\":\"Order Completed\",\"messageId\":\"m5\","
			"\"userId\":\"u1\",\"timestamp\":\"2026-01-02T09:06:00Z\"}");
	stest_save(&sv, "{\"type\":\"page\",\"messageId\":\"m6\",\"userId\":\"u1\","
			"\"timestamp\":\"2026-01-05T09:00:00Z\"," URL("/c") "}");
	char *dir = stest_tmpdir();
	struct store *s = open_store(dir, 0);
	stest_apply_range(s, &sv, 0, sv.n);
	char *all = dump(s);
	expect(all, "m2", " channel=Direct first=true id=2 landing_page=/a2 number=2");
	expect(all, "m3", " channel=Direct first=true id=3 landing_page=/b1 number=1");
	expect(all, "m5", " channel=Direct id=3 landing_page=/b1 number=1");
	expect(all, "m6", " channel=Direct first=true id=6 landing_page=/c number=4");
	struct sessions_stats st;
	sessions_get_stats(s->sess, &st);
	cr_expect_eq(st.persons, 1);
	store_close(s);
	free(all);
	stest_saved_free(&sv);
	stest_rmtree(dir);
	free(dir);
}

/* Generated journeys (campaigns, referrers, identify calls that merge). */
static void generate(struct stest_saved *sv, uint64_t events)
{
	struct demo_options o;
	demo_options_default(&o);
	o.events = events;
	o.users = 400;
	o.days = 20;
	o.end_ms = 1711843200000LL;
	cr_assert_eq(demo_generate(&o, stest_save_line, sv), 0);
}

Test(sessions, a_crash_and_replay_stamp_the_same_sessions)
{
	struct stest_saved sv;
	stest_saved_init(&sv, true);
	generate(&sv, 8000);
	char *a = stest_tmpdir(), *b = stest_tmpdir();
	struct store *s = open_store(a, 0);
	stest_apply_range(s, &sv, 0, 5000);
	cr_assert_eq(store_tick(s, true), 0);
	/* a crash right after this flush, with more of the log written after it
	 * (a later flush's batch that its manifest never named) and a torn tail */
	stest_apply_range(s, &sv, 5000, 5600);
	int fd = -1;
	cr_assert_eq(sessions_write(s->sess, 5600, 5000, &fd), 0);
	close(fd);
	stest_copy_dir(a, b);
	stest_apply_range(s, &sv, 5600, 8000);
	cr_assert_eq(store_tick(s, true), 0);
	char *want = dump(s);
	struct sessions_stats st;
	sessions_get_stats(s->sess, &st);
	cr_assert_gt(st.started, 500, "the journeys have sessions (%llu)",
		     (unsigned long long)st.started);
	store_close(s);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "printf 'Ptorn' >> '%s/SESSIONS'", b);
	cr_assert_eq(system(cmd), 0);
	s = open_store(b, 0);
	cr_assert_eq(store_flushed_lsn(s), 5000);
	stest_apply_range(s, &sv, 0, 8000); /* the WAL replays from the start: overlap ignored */
	char *got = dump(s);
	cr_assert_str_eq(got, want);
	store_close(s);
	free(got);
	/* reopened with nothing to replay: the same again */
	s = open_store(b, 0);
	got = dump(s);
	cr_assert_str_eq(got, want);
	store_close(s);
	free(got);
	free(want);
	stest_saved_free(&sv);
	stest_rmtree(a);
	stest_rmtree(b);
	free(a);
	free(b);
}

static off_t file_size(const char *dir, const char *name)
{
	char p[600];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	struct stat st;
	return stat(p, &st) ? -1 : st.st_size;
}

Test(sessions, the_log_is_rewritten_as_a_snapshot_without_changing_a_stamp)
{
	struct stest_saved sv;
	stest_saved_init(&sv, true);
	generate(&sv, 12000);
	char *a = stest_tmpdir(), *b = stest_tmpdir(), *c = stest_tmpdir();
	/* the reference: one store, never snapshotted */
	struct store *s = open_store(a, UINT64_MAX);
	stest_apply_range(s, &sv, 0, 12000);
	char *want = dump(s);
	store_close(s);
	/* snapshots past 16 KiB, with a crash between a snapshot's flush and its
	 * taking over the log (SESSIONS.next left behind, its LSN in the manifest) */
	s = open_store(b, 16 << 10);
	bool copied = false;
	for (size_t at = 0; at < 9000; at += 250) {
		stest_apply_range(s, &sv, at, at + 250);
		cr_assert_eq(store_tick(s, true), 0);
		if (file_size(b, "SESSIONS.next") > 0 && !copied) {
			stest_copy_dir(b, c);
			copied = true;
		}
	}
	cr_assert(copied, "a snapshot was written");
	cr_assert_gt(file_size(c, "SESSIONS.next"), 0);
	stest_apply_range(s, &sv, 9000, 12000);
	cr_assert_eq(store_tick(s, true), 0);
	char *got = dump(s);
	cr_assert_str_eq(got, want);
	free(got);
	store_close(s);
	s = open_store(b, 16 << 10);
	got = dump(s);
	cr_assert_str_eq(got, want);
	free(got);
	store_close(s);
	s = open_store(c, 16 << 10);
	cr_assert_eq(file_size(c, "SESSIONS.next"), -1, "taken over at open");
	struct sessions_stats st;
	sessions_get_stats(s->sess, &st);
	cr_assert_gt(st.persons, 100);
	stest_apply_range(s, &sv, 0, 12000);
	got = dump(s);
	cr_assert_str_eq(got, want);
	free(got);
	store_close(s);
	free(want);
	stest_saved_free(&sv);
	stest_rmtree(a);
	stest_rmtree(b);
	stest_rmtree(c);
	free(a);
	free(b);
	free(c);
}

Test(sessions, a_log_that_is_not_one_is_refused)
{
	char *d = stest_tmpdir();
	char p[600];
	snprintf(p, sizeof(p), "%s/SESSIONS", d);
	FILE *f = fopen(p, "w");
	fputs("not a session log", f);
	fclose(f);
	struct store_options o = {.dir = d, .no_merge = true};
	struct store *s;
	cr_expect_eq(store_open(&s, &o), TD_ECORRUPT);
	stest_rmtree(d);
	free(d);
}

Test(sessions, check_reports_a_log_that_falls_short_of_the_manifest)
{
	struct stest_saved sv;
	stest_saved_init(&sv, true);
	generate(&sv, 3000);
	char *d = stest_tmpdir();
	struct store *s = open_store(d, 0);
	stest_apply_range(s, &sv, 0, 1500);
	cr_assert_eq(store_tick(s, true), 0);
	off_t first = file_size(d, "SESSIONS");
	stest_apply_range(s, &sv, 1500, 3000);
	store_close(s);
	struct td_buf rep;
	td_buf_init(&rep, 1u << 20);
	cr_assert_eq(store_check(d, &rep), 0, "%s", rep.data);
	/* the last flush's batch lost: the log ends at the first flush's LSN */
	char p[600];
	snprintf(p, sizeof(p), "%s/SESSIONS", d);
	cr_assert_eq(truncate(p, first), 0);
	td_buf_reset(&rep);
	cr_assert_eq(store_check(d, &rep), 1, "%s", rep.data);
	cr_assert(strstr(rep.data, "SESSIONS: ends at LSN 1500, not at the manifest's 3000"), "%s",
		  rep.data);
	td_buf_release(&rep);
	stest_saved_free(&sv);
	stest_rmtree(d);
	free(d);
}
