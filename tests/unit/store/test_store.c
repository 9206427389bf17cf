/*
 * test_store.c - the column store against the in-memory reference source:
 * the same generated journeys go into a store (sealed, flushed, merged and
 * reopened at different points) and into memsource; every query must give
 * byte-identical results. Plus recovery rules and tandem check.
 */
#include "base/td.h"
#include "collect/collect.h"
#include "demo/demo.h"
#include "query/memsource.h"
#include "query/query.h"
#include "store/store.h"
#include "store/store_int.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct feed {
	struct store *s;
	struct memsource *ms;
	uint64_t lsn;
	size_t every; /* store_tick(force) after this many rows; 0 = never */
	char **keys;  /* person keys in order of first appearance */
	size_t nkeys, capkeys;
};

static uint32_t ref_pid(struct feed *f, const char *key)
{
	for (size_t i = f->nkeys; i-- > 0;)
		if (!strcmp(f->keys[i], key))
			return (uint32_t)i;
	if (f->nkeys == f->capkeys) {
		f->capkeys = f->capkeys ? f->capkeys * 2 : 256;
		f->keys = realloc(f->keys, f->capkeys * sizeof(char *));
	}
	f->keys[f->nkeys] = strdup(key);
	return (uint32_t)f->nkeys++;
}

/* The reference's view of one message: name, person key, JSON. */
static void reference_add(struct feed *f, const struct collect_event_view *v)
{
	cJSON *doc = cJSON_ParseWithLength(v->json, v->json_len);
	cr_assert(doc);
	const char *uid = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "userId"));
	const char *aid = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "anonymousId"));
	char key[300];
	snprintf(key, sizeof(key), "%c%s", uid ? 'u' : 'a', uid ? uid : aid ? aid : "");
	static const char *const names[] = {"",	       "$identify", NULL,    "$page",
					    "$screen", "$group",    "$alias"};
	const char *name = v->type == COLLECT_TRACK
			       ? cJSON_GetStringValue(cJSON_GetObjectItem(doc, "event"))
			       : names[v->type];
	cr_assert(name);
	uint32_t pid = ref_pid(f, key);
	char *json = td_strndup(v->json, v->json_len);
	cr_assert_eq(memsource_add_json(f->ms, name, v->timestamp_ms, pid, json), 0);
	free(json);
	cJSON_Delete(doc);
}

static int emit(void *ctx, const char *line, size_t len)
{
	struct feed *f = ctx;
	struct collect_batch b;
	collect_batch_init(&b);
	struct collect_limits lim;
	collect_limits_default(&lim);
	struct collect_origin o = {.source_id = 1, .received_ms = 1700000000000LL};
	cr_assert_eq(collect_prepare_line(line, len - 1, 0, &o, &lim, &b), 0);
	cr_assert_eq(b.n, 1);
	const char *p = b.payloads.data + b.off[0];
	cr_assert_eq(store_apply(f->s, ++f->lsn, p, b.len[0]), 0);
	struct collect_event_view v;
	cr_assert_eq(collect_event_decode(p, b.len[0], &v), 0);
	reference_add(f, &v);
	collect_batch_release(&b);
	if (f->every && f->lsn % f->every == 0)
		cr_assert_eq(store_tick(f->s, true), 0);
	return 0;
}

static const char *const queries[] = {
    "{\"kind\":\"trends\",\"series\":[{\"event\":\"$page\"}],\"interval\":\"day\","
    "\"date_from\":\"2024-01-01\",\"date_to\":\"2024-03-31\",\"timezone\":\"UTC\"}",
    "{\"kind\":\"trends\",\"series\":[{\"event\":\"\",\"math\":\"unique_persons\"}],"
    "\"interval\":\"week\",\"date_from\":\"2024-01-01\",\"date_to\":\"2024-03-31\","
    "\"timezone\":\"Europe/Berlin\"}",
    "{\"kind\":\"trends\",\"series\":[{\"event\":\"Order Completed\",\"math\":\"sum\","
    "\"property\":\"properties.revenue\"}],\"interval\":\"month\",\"date_from\":\"2024-01-01\","
    "\"date_to\":\"2024-03-31\",\"breakdown\":\"properties.currency\"}",
    "{\"kind\":\"funnel\",\"steps\":[{\"event\":\"Product Viewed\"},{\"event\":\"Product "
    "Added\"},{\"event\":\"Checkout Started\"},{\"event\":\"Order Completed\"}],"
    "\"window\":\"7d\"}",
    "{\"kind\":\"funnel\",\"order\":\"strict\",\"steps\":[{\"event\":\"$page\"},{\"event\":"
    "\"Product Viewed\",\"filters\":[{\"property\":\"properties.price\",\"operator\":\">\","
    "\"value\":20}]}],\"window\":\"1d\",\"breakdown\":\"context.campaign.medium\"}",
    "{\"kind\":\"retention\",\"start\":{\"event\":\"$page\"},\"return\":{\"event\":\"Order "
    "Completed\"},\"period\":\"week\",\"periods\":8,\"date_from\":\"2024-01-01\","
    "\"date_to\":\"2024-03-31\"}",
    "{\"kind\":\"paths\",\"anchor\":{\"event\":\"Product Viewed\"},\"direction\":\"after\","
    "\"depth\":3}",
    "{\"kind\":\"events\",\"event\":\"Order Completed\",\"limit\":50,\"filters\":[{"
    "\"property\":\"properties.revenue\",\"operator\":\">=\",\"value\":50}]}",
    "{\"kind\":\"events\",\"event\":\"\",\"limit\":20,\"offset\":100}",
    "{\"kind\":\"events\",\"event\":\"$page\",\"limit\":30,\"filters\":[{\"property\":"
    "\"messageId\",\"operator\":\"contains\",\"value\":\"ab\"}]}",
};

static void compare_all(struct store *s, struct memsource *ms)
{
	struct store_snap *sn = store_snapshot(s);
	for (size_t i = 0; i < TD_ARRAY_LEN(queries); i++) {
		struct td_buf a, b;
		td_buf_init(&a, 64u << 20);
		td_buf_init(&b, 64u << 20);
		char ea[300] = "", eb[300] = "";
		int ra = query_run(queries[i], strlen(queries[i]), store_snap_source(sn), &a, ea,
				   sizeof(ea));
		int rb = query_run(queries[i], strlen(queries[i]), memsource_source(ms), &b, eb,
				   sizeof(eb));
		cr_assert_eq(ra, rb, "query %zu: store %d (%s), reference %d (%s)", i, ra, ea, rb,
			     eb);
		cr_assert_eq(ra, 0, "query %zu failed: %s", i, ea);
		cr_assert_str_eq(a.data, b.data, "query %zu differs", i);
		td_buf_release(&a);
		td_buf_release(&b);
	}
	store_snap_release(sn);
}

static char *tmpdir(void)
{
	char *d = strdup("/tmp/tandem-store-XXXXXX");
	cr_assert(mkdtemp(d));
	return d;
}

static void rmtree(const char *d)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	cr_assert_eq(system(cmd), 0);
}

static struct store *open_store(const char *dir, bool no_merge)
{
	struct store_options o = {.dir = dir, .no_merge = no_merge, .flush_rows = 7000};
	struct store *s;
	cr_assert_eq(store_open(&s, &o), 0);
	return s;
}

static void generate(struct feed *f, uint64_t events)
{
	struct demo_options o;
	demo_options_default(&o);
	o.events = events;
	o.users = 2000;
	o.days = 90;
	o.end_ms = 1711843200000LL; /* 2024-03-31 */
	cr_assert_eq(demo_generate(&o, emit, f), 0);
	memsource_build(f->ms, 0, 0);
}

static void feed_free(struct feed *f)
{
	for (size_t i = 0; i < f->nkeys; i++)
		free(f->keys[i]);
	free(f->keys);
	memsource_free(f->ms);
}

Test(store, same_answers_as_reference_through_seal_flush_merge_reopen)
{
	char *dir = tmpdir();
	struct feed f = {.s = open_store(dir, true), .ms = memsource_new(), .every = 3000};
	generate(&f, 40000);
	/* in memory (sealed) and on disk */
	store_tick(f.s, true);
	compare_all(f.s, f.ms);
	struct store_stats st;
	store_get_stats(f.s, &st);
	cr_assert_eq(st.rows, 40000);
	cr_assert_gt(st.segments, 4);
	cr_assert_eq(store_flushed_lsn(f.s), 40000);
	/* merged */
	cr_assert_gt(compact_run(f.s), 0);
	store_get_stats(f.s, &st);
	cr_assert_lt(st.segments, 4);
	compare_all(f.s, f.ms);
	store_close(f.s);
	/* reopened from the files */
	f.s = open_store(dir, true);
	cr_assert_eq(store_flushed_lsn(f.s), 40000);
	compare_all(f.s, f.ms);
	/* replayed records are ignored, new ones continue the person ids */
	cr_assert_eq(store_apply(f.s, 40000, "x", 1), 0);
	store_close(f.s);
	struct td_buf rep;
	td_buf_init(&rep, 1u << 20);
	cr_assert_eq(store_check(dir, &rep), 0, "%s", rep.data);
	td_buf_release(&rep);
	feed_free(&f);
	rmtree(dir);
	free(dir);
}

Test(store, read_only_sees_unflushed_rows_after_apply)
{
	char *dir = tmpdir();
	struct feed f = {.s = open_store(dir, true), .ms = memsource_new()};
	generate(&f, 5000);
	store_close(f.s); /* flushes */
	struct store_options o = {.dir = dir, .read_only = true};
	struct store *s;
	cr_assert_eq(store_open(&s, &o), 0);
	compare_all(s, f.ms);
	store_close(s);
	feed_free(&f);
	rmtree(dir);
	free(dir);
}

static void flip_byte(const char *path, off_t at)
{
	int fd = open(path, O_RDWR);
	cr_assert(fd >= 0);
	unsigned char c;
	cr_assert_eq(pread(fd, &c, 1, at), 1);
	c ^= 0x40;
	cr_assert_eq(pwrite(fd, &c, 1, at), 1);
	close(fd);
}

Test(store, check_reports_damage_and_open_refuses_it)
{
	char *dir = tmpdir();
	struct feed f = {.s = open_store(dir, true), .ms = memsource_new()};
	generate(&f, 3000);
	store_close(f.s);
	char seg[512];
	snprintf(seg, sizeof(seg), "%s/0000000000000001.tseg", dir);
	/* a byte in the data areas: only check sees it (open checks the directory) */
	flip_byte(seg, 70);
	struct td_buf rep;
	td_buf_init(&rep, 1u << 20);
	cr_assert_eq(store_check(dir, &rep), 1, "%s", rep.data);
	cr_assert(strstr(rep.data, "checksum mismatch"), "%s", rep.data);
	flip_byte(seg, 70);
	td_buf_reset(&rep);
	cr_assert_eq(store_check(dir, &rep), 0, "%s", rep.data);
	/* a cut-short file: open fails and check says so */
	struct stat sb;
	cr_assert_eq(stat(seg, &sb), 0);
	cr_assert_eq(truncate(seg, sb.st_size - 10), 0);
	td_buf_reset(&rep);
	cr_assert_eq(store_check(dir, &rep), 1, "%s", rep.data);
	struct store_options o = {.dir = dir};
	struct store *s;
	cr_assert_eq(store_open(&s, &o), TD_ECORRUPT);
	td_buf_release(&rep);
	feed_free(&f);
	rmtree(dir);
	free(dir);
}

Test(store, leftovers_removed_and_missing_store_reads_empty)
{
	char *dir = tmpdir();
	char p[512];
	snprintf(p, sizeof(p), "%s/00000000000000ff.tseg", dir);
	FILE *fp = fopen(p, "w");
	fputs("junk", fp);
	fclose(fp);
	struct store *s = open_store(dir, true);
	cr_assert_neq(access(p, F_OK), 0, "stray segment file not removed");
	store_close(s);
	struct store_options o = {.dir = "/nonexistent/tandem", .read_only = true};
	cr_assert_eq(store_open(&s, &o), 0);
	struct store_stats st;
	store_get_stats(s, &st);
	cr_assert_eq(st.rows, 0);
	store_close(s);
	rmtree(dir);
	free(dir);
}

/* Payloads kept for replay. */
struct saved {
	struct collect_batch b;
	size_t n;
};

static int save_line(void *ctx, const char *line, size_t len)
{
	struct saved *sv = ctx;
	struct collect_limits lim;
	collect_limits_default(&lim);
	struct collect_origin o = {.source_id = 1, .received_ms = 1700000000000LL};
	cr_assert_eq(collect_prepare_line(line, len - 1, (int)sv->n++, &o, &lim, &sv->b), 0);
	return 0;
}

static void apply_range(struct store *s, const struct saved *sv, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		cr_assert_eq(
		    store_apply(s, i + 1, sv->b.payloads.data + sv->b.off[i], sv->b.len[i]), 0);
}

static char *run_all(struct store *s)
{
	struct td_buf all;
	td_buf_init(&all, 256u << 20);
	struct store_snap *sn = store_snapshot(s);
	for (size_t i = 0; i < TD_ARRAY_LEN(queries); i++) {
		char err[300];
		cr_assert_eq(query_run(queries[i], strlen(queries[i]), store_snap_source(sn), &all,
				       err, sizeof(err)),
			     0, "%s", err);
	}
	store_snap_release(sn);
	return td_buf_steal(&all);
}

Test(store, crash_after_flush_replays_the_rest_to_the_same_state)
{
	struct saved sv = {.n = 0};
	collect_batch_init(&sv.b);
	struct demo_options o;
	demo_options_default(&o);
	o.events = 6000;
	o.users = 800;
	o.end_ms = 1711843200000LL;
	cr_assert_eq(demo_generate(&o, save_line, &sv), 0);
	char *a = tmpdir(), *b = tmpdir();
	struct store *s = open_store(a, true);
	apply_range(s, &sv, 0, 4000);
	cr_assert_eq(store_tick(s, true), 0);
	/* the state a crash right after this flush leaves on disk ... */
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "cp -a '%s/.' '%s/'", a, b);
	cr_assert_eq(system(cmd), 0);
	apply_range(s, &sv, 4000, 6000);
	cr_assert_eq(store_tick(s, true), 0);
	char *want = run_all(s);
	store_close(s);
	/* ... plus person records that were synced but never counted by a manifest */
	snprintf(cmd, sizeof(cmd), "printf 'torn-person-record' >> '%s/PERSONS'", b);
	cr_assert_eq(system(cmd), 0);
	s = open_store(b, true);
	cr_assert_eq(store_flushed_lsn(s), 4000);
	apply_range(s, &sv, 0, 6000); /* the WAL replays from the start: overlap ignored */
	cr_assert_eq(store_tick(s, true), 0);
	char *got = run_all(s);
	cr_assert_str_eq(got, want);
	store_close(s);
	struct td_buf rep;
	td_buf_init(&rep, 1u << 20);
	cr_assert_eq(store_check(b, &rep), 0, "%s", rep.data);
	td_buf_release(&rep);
	free(want);
	free(got);
	collect_batch_release(&sv.b);
	rmtree(a);
	rmtree(b);
	free(a);
	free(b);
}
