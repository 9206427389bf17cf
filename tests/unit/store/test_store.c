/*
 * test_store.c - the column store against the in-memory reference source:
 * the same generated journeys go into a store (sealed, flushed, merged and
 * reopened at different points) and into memsource; every query must give
 * byte-identical results. Plus recovery rules and tandem check.
 */
#include "stest.h"
#include "base/td.h"
#include "collect/collect.h"
#include "demo/demo.h"
#include "identity/identity.h"
#include "query/memsource.h"
#include "query/query.h"
#include "store/store.h"
#include "store/seg.h"
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
	size_t every;		    /* store_tick(force) after this many rows; 0 = never */
	bool background;	    /* ... store_tick(not forced): flushes in the background */
	struct identity *ref;	    /* the reference's own identity graph */
	struct identity_view *view; /* its canonical persons, once generated */
	uint32_t *rowpid;	    /* person of each reference row */
	size_t nrows;
	struct plan_call { /* identify calls with traits.plan, for person.plan */
		uint32_t pid;
		int64_t ts;
		char *plan;
	} * plans;
	size_t nplans;
};

static void add_str(struct identity_msg *m, enum identity_field f, const char *name, const cJSON *v)
{
	if (cJSON_IsString(v))
		identity_msg_add(m, f, name, name ? strlen(name) : 0, v->valuestring,
				 strlen(v->valuestring));
}

/* The identifiers of a message, read with cJSON (the store reads them
 * while flattening): the two must agree for the answers to agree. */
static uint32_t reference_person(struct feed *f, const cJSON *doc,
				 const struct collect_event_view *v)
{
	struct identity_msg *m = malloc(sizeof(*m));
	identity_msg_reset(m);
	m->lsn = f->lsn;
	m->ts = v->timestamp_ms;
	m->message_id = v->message_id;
	m->message_id_len = v->message_id_len;
	m->is_group = v->type == COLLECT_GROUP;
	add_str(m, IDENTITY_F_USER_ID, NULL, cJSON_GetObjectItem(doc, "userId"));
	add_str(m, IDENTITY_F_ANON_ID, NULL, cJSON_GetObjectItem(doc, "anonymousId"));
	add_str(m, IDENTITY_F_PREVIOUS_ID, NULL, cJSON_GetObjectItem(doc, "previousId"));
	const cJSON *traits = cJSON_GetObjectItem(doc, "traits");
	const cJSON *ctx = cJSON_GetObjectItem(doc, "context");
	const cJSON *ctraits = cJSON_GetObjectItem(ctx, "traits");
	static const char *const names[] = {"email", "phone"};
	for (size_t i = 0; i < 2; i++) {
		add_str(m, IDENTITY_F_TRAIT, names[i], cJSON_GetObjectItem(traits, names[i]));
		add_str(m, IDENTITY_F_CONTEXT_TRAIT, names[i],
			cJSON_GetObjectItem(ctraits, names[i]));
	}
	const cJSON *ext = cJSON_GetObjectItem(ctx, "externalIds");
	if (cJSON_IsArray(ext)) {
		char *t = cJSON_PrintUnformatted(ext);
		identity_msg_add(m, IDENTITY_F_EXTERNAL_IDS, NULL, 0, t, strlen(t));
		free(t);
	}
	uint32_t pid = identity_resolve(f->ref, m);
	free(m);
	return pid;
}

/* The reference's view of one message: name, person, JSON. */
static void reference_add(struct feed *f, const struct collect_event_view *v)
{
	cJSON *doc = cJSON_ParseWithLength(v->json, v->json_len);
	cr_assert(doc);
	static const char *const names[] = {"",	       "$identify", NULL,    "$page",
					    "$screen", "$group",    "$alias"};
	const char *name = v->type == COLLECT_TRACK
			       ? cJSON_GetStringValue(cJSON_GetObjectItem(doc, "event"))
			       : names[v->type];
	cr_assert(name);
	uint32_t pid = reference_person(f, doc, v);
	char *json = td_strndup(v->json, v->json_len);
	cr_assert_eq(memsource_add_json(f->ms, name, v->timestamp_ms, pid, json), 0);
	f->rowpid = realloc(f->rowpid, (f->nrows + 1) * sizeof(*f->rowpid));
	f->rowpid[f->nrows++] = pid;
	const char *plan =
	    cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "traits"), "plan"));
	if (v->type == COLLECT_IDENTIFY && plan) {
		f->plans = realloc(f->plans, (f->nplans + 1) * sizeof(*f->plans));
		f->plans[f->nplans++] = (struct plan_call){pid, v->timestamp_ms, strdup(plan)};
	}
	free(json);
	cJSON_Delete(doc);
}

static void feed_init(struct feed *f, struct store *s, size_t every)
{
	memset(f, 0, sizeof(*f));
	f->s = s;
	f->ms = memsource_new();
	f->every = every;
	char err[200];
	cr_assert_eq(identity_open(&f->ref, NULL, NULL, UINT64_MAX, 0, false, err, sizeof(err)), 0);
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
	if (f->every && f->lsn % f->every == 0 && f->background) {
		/* every row is visible while the flusher works: in memory or on disk */
		cr_assert_eq(store_tick(f->s, false), 0);
		cr_assert_eq(store_seal(f->s), 0);
		struct store_stats st;
		store_get_stats(f->s, &st);
		cr_assert_eq(st.rows, f->lsn, "%llu rows visible of %llu",
			     (unsigned long long)st.rows, (unsigned long long)f->lsn);
	} else if (f->every && f->lsn % f->every == 0) {
		cr_assert_eq(store_tick(f->s, true), 0);
	}
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
    /* person traits as breakdown and filters */
    "{\"kind\":\"trends\",\"series\":[{\"event\":\"Order Completed\",\"math\":\"sum\","
    "\"property\":\"properties.revenue\"},{\"event\":\"$page\",\"math\":\"unique_persons\"}],"
    "\"interval\":\"week\",\"date_from\":\"2024-01-01\",\"date_to\":\"2024-03-31\","
    "\"breakdown\":\"person.plan\"}",
    "{\"kind\":\"funnel\",\"steps\":[{\"event\":\"Product Viewed\"},{\"event\":\"Order "
    "Completed\",\"filters\":[{\"property\":\"person.plan\",\"operator\":\"in\",\"value\":["
    "\"pro\",\"business\"]}]}],\"window\":\"7d\",\"breakdown\":\"person.plan\"}",
    "{\"kind\":\"retention\",\"start\":{\"event\":\"$page\"},\"return\":{\"event\":\"Order "
    "Completed\"},\"period\":\"week\",\"periods\":6,\"date_from\":\"2024-01-01\","
    "\"date_to\":\"2024-03-31\",\"filters\":[{\"property\":\"person.plan\",\"operator\":"
    "\"is_not_set\"}]}",
    "{\"kind\":\"events\",\"event\":\"\",\"limit\":40,\"filters\":[{\"property\":\"person."
    "plan\",\"operator\":\"=\",\"value\":\"free\"}]}",
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

static struct store *open_store(const char *dir, bool no_merge)
{
	struct store_options o = {.dir = dir, .no_merge = no_merge, .flush_rows = 7000};
	struct store *s;
	cr_assert_eq(store_open(&s, &o), 0);
	return s;
}

static uint32_t canon(const struct feed *f, uint32_t pid)
{
	return f->view->canonical ? f->view->canonical[pid] : pid;
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
	f->view = identity_view_publish(f->ref);
	memsource_set_persons(f->ms, f->view->n, f->view->canonical);
	/* person.plan: the plan of the person's latest identify call (ties: the
	   later call), on every row of the person */
	uint32_t n = f->view->n;
	const char **plan = calloc(n ? n : 1, sizeof(*plan));
	int64_t *at = calloc(n ? n : 1, sizeof(*at));
	for (size_t i = 0; i < f->nplans; i++) {
		uint32_t p = canon(f, f->plans[i].pid);
		if (!plan[p] || f->plans[i].ts >= at[p]) {
			plan[p] = f->plans[i].plan;
			at[p] = f->plans[i].ts;
		}
	}
	size_t with = 0;
	for (size_t r = 0; r < f->nrows; r++) {
		const char *v = plan[canon(f, f->rowpid[r])];
		if (v) {
			memsource_set_str(f->ms, r, "person.plan", v);
			with++;
		}
	}
	cr_assert_gt(with, 0, "no row has a person plan: the test would prove nothing");
	free(plan);
	free(at);
	memsource_build(f->ms, 0, 0);
}

static void feed_free(struct feed *f)
{
	for (size_t i = 0; i < f->nplans; i++)
		free(f->plans[i].plan);
	free(f->plans);
	free(f->rowpid);
	identity_view_release(f->view);
	identity_close(f->ref);
	memsource_free(f->ms);
}

Test(store, same_answers_as_reference_through_seal_flush_merge_reopen)
{
	char *dir = stest_tmpdir();
	struct feed f;
	feed_init(&f, open_store(dir, true), 3000);
	generate(&f, 40000);
	/* in memory (sealed) and on disk */
	store_tick(f.s, true);
	compare_all(f.s, f.ms);
	struct store_stats st;
	store_get_stats(f.s, &st);
	cr_assert_eq(st.rows, 40000);
	cr_assert_gt(st.segments, 4);
	/* the journeys merge persons (logins on a second device), so canonical[] matters */
	cr_assert_gt(st.identity.merges, 10, "%llu merges", (unsigned long long)st.identity.merges);
	cr_assert_eq(st.identity.persons, st.pids - st.identity.merges);
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
	stest_rmtree(dir);
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

struct prow {
	const struct seg_group *g;
	uint32_t row;
};
struct prows {
	struct prow r[4096];
	size_t n;
};

static void on_person_row(void *ctx, const struct seg_group *g, uint32_t row)
{
	struct prows *p = ctx;
	cr_assert_lt(p->n, 4096);
	p->r[p->n++] = (struct prow){g, row};
}

/* Every segment's person index gives exactly the rows a scan of the pid
 * areas finds, in the same order. */
static void check_person_index(struct store *s)
{
	struct store_snap *sn = store_snapshot(s);
	struct seg *const *segs;
	size_t ns = store_snap_segments(sn, &segs);
	cr_assert_gt(ns, 0);
	struct prows *got = malloc(sizeof(*got)), *want = malloc(sizeof(*want));
	for (size_t i = 0; i < ns; i++) {
		cr_assert_not_null(segs[i]->pidx_pid, "segment %zu has no person index", i);
		uint32_t maxpid = 0;
		for (uint32_t k = 0; k < segs[i]->ngroups; k++)
			for (uint32_t r = 0; r < segs[i]->groups[k].n; r++)
				if (segs[i]->groups[k].pid[r] > maxpid)
					maxpid = segs[i]->groups[k].pid[r];
		for (uint32_t pid = 0; pid <= maxpid + 1; pid += 1 + pid % 7) {
			got->n = want->n = 0;
			size_t n = seg_person_rows(segs[i], pid, on_person_row, got);
			cr_assert_eq(n, got->n);
			for (uint32_t k = 0; k < segs[i]->ngroups; k++)
				for (uint32_t r = 0; r < segs[i]->groups[k].n; r++)
					if (segs[i]->groups[k].pid[r] == pid)
						on_person_row(want, &segs[i]->groups[k], r);
			cr_assert_eq(got->n, want->n, "pid %u: %zu rows, a scan finds %zu", pid,
				     got->n, want->n);
			for (size_t k = 0; k < got->n; k++)
				cr_assert(got->r[k].g == want->r[k].g &&
					      got->r[k].row == want->r[k].row,
					  "pid %u row %zu differs", pid, k);
		}
	}
	free(got);
	free(want);
	store_snap_release(sn);
}

Test(store, background_flush_keeps_every_row_and_answer)
{
	char *dir = stest_tmpdir();
	struct feed f;
	feed_init(&f, open_store(dir, true), 1000);
	f.background = true;
	generate(&f, 40000);
	store_tick(f.s, true); /* waits for the flusher, then flushes the rest */
	struct store_stats st;
	store_get_stats(f.s, &st);
	cr_assert_eq(st.rows, 40000);
	cr_assert_eq(st.rows_memory, 0);
	cr_assert_geq(st.flushes, 4, "%llu flushes", (unsigned long long)st.flushes);
	cr_assert_eq(st.flush_errors, 0);
	cr_assert_eq(store_flushed_lsn(f.s), 40000);
	compare_all(f.s, f.ms);
	store_close(f.s);
	f.s = open_store(dir, true);
	compare_all(f.s, f.ms);
	store_close(f.s);
	feed_free(&f);
	stest_rmtree(dir);
	free(dir);
}

Test(store, person_index_finds_the_rows_a_scan_finds)
{
	char *dir = stest_tmpdir();
	struct feed f;
	feed_init(&f, open_store(dir, true), 2500);
	generate(&f, 12000);
	check_person_index(f.s); /* in-memory images and files */
	cr_assert_gt(compact_run(f.s), 0);
	check_person_index(f.s); /* merged */
	store_close(f.s);
	struct td_buf rep;
	td_buf_init(&rep, 1u << 20);
	cr_assert_eq(store_check(dir, &rep), 0, "%s", rep.data);
	/* a wrong entry in the index: check finds it */
	char seg[512];
	struct store_options o = {.dir = dir, .read_only = true};
	struct store *s;
	cr_assert_eq(store_open(&s, &o), 0);
	struct seg *const *segs;
	struct store_snap *sn = store_snapshot(s);
	cr_assert_gt(store_snap_segments(sn, &segs), 0);
	off_t at = (off_t)segs[0]->a_pidx.off + 4; /* the second pid */
	snprintf(seg, sizeof(seg), "%s/%016llx.tseg", dir, (unsigned long long)segs[0]->id);
	store_snap_release(sn);
	store_close(s);
	flip_byte(seg, at);
	td_buf_reset(&rep);
	cr_assert_eq(store_check(dir, &rep), 1, "%s", rep.data);
	cr_assert(strstr(rep.data, "person index"), "%s", rep.data);
	td_buf_release(&rep);
	feed_free(&f);
	stest_rmtree(dir);
	free(dir);
}

Test(store, read_only_sees_unflushed_rows_after_apply)
{
	char *dir = stest_tmpdir();
	struct feed f;
	feed_init(&f, open_store(dir, true), 0);
	generate(&f, 5000);
	store_close(f.s); /* flushes */
	struct store_options o = {.dir = dir, .read_only = true};
	struct store *s;
	cr_assert_eq(store_open(&s, &o), 0);
	/* nothing past the flushed LSN: canonical[] comes from the checkpoint and
	   the identity log is not read */
	cr_assert_null(s->ident);
	compare_all(s, f.ms);
	cr_assert_not_null(store_identity(s)); /* read when asked for */
	compare_all(s, f.ms);
	store_close(s);
	/* a checkpoint that contradicts the log (a valid CRC over wrong ids):
	   tandem check reports it */
	{
		struct manifest m;
		char err[256];
		cr_assert_eq(manifest_read(dir, &m, err, sizeof(err)), 0, "%s", err);
		cr_assert_gt(m.persons, 1);
		uint32_t *zero = calloc(m.persons, sizeof(uint32_t)); /* all in person 0 */
		struct identity_view *fake = identity_view_new(m.persons, zero);
		cr_assert_eq(canon_write(dir, fake, m.flushed_lsn), 0);
		identity_view_release(fake);
		manifest_release(&m);
		struct td_buf rep;
		td_buf_init(&rep, 1u << 20);
		cr_assert_eq(store_check(dir, &rep), 1, "%s", rep.data);
		cr_assert(strstr(rep.data, "CANONICAL"), "%s", rep.data);
		td_buf_release(&rep);
		char fix[512];
		snprintf(fix, sizeof(fix), "%s/CANONICAL", dir);
		cr_assert_eq(unlink(fix), 0);
		s = open_store(dir, true); /* a writable open writes a true one again */
		store_close(s);
		cr_assert_eq(access(fix, F_OK), 0);
	}
	/* a damaged checkpoint: the log is read instead, the answers stay */
	char cp[512];
	snprintf(cp, sizeof(cp), "%s/CANONICAL", dir);
	flip_byte(cp, 29); /* its CRC */
	cr_assert_eq(store_open(&s, &o), 0);
	cr_assert_not_null(s->ident);
	compare_all(s, f.ms);
	store_close(s);
	feed_free(&f);
	stest_rmtree(dir);
	free(dir);
}

Test(store, check_reports_damage_and_open_refuses_it)
{
	char *dir = stest_tmpdir();
	struct feed f;
	feed_init(&f, open_store(dir, true), 0);
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
	stest_rmtree(dir);
	free(dir);
}

Test(store, leftovers_removed_and_missing_store_reads_empty)
{
	char *dir = stest_tmpdir();
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
	stest_rmtree(dir);
	free(dir);
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
	struct stest_saved sv;
	stest_saved_init(&sv, false);
	struct demo_options o;
	demo_options_default(&o);
	o.events = 6000;
	o.users = 800;
	o.end_ms = 1711843200000LL;
	cr_assert_eq(demo_generate(&o, stest_save_line, &sv), 0);
	char *a = stest_tmpdir(), *b = stest_tmpdir();
	struct store *s = open_store(a, true);
	stest_apply_range(s, &sv, 0, 4000);
	cr_assert_eq(store_tick(s, true), 0);
	/* the state a crash right after this flush leaves on disk, with the
	 * identity records of later messages already synced ... */
	stest_apply_range(s, &sv, 4000, 4500);
	cr_assert_eq(identity_sync(store_identity(s)), 0);
	stest_copy_dir(a, b);
	stest_apply_range(s, &sv, 4500, 6000);
	cr_assert_eq(store_tick(s, true), 0);
	char *want = run_all(s);
	store_close(s);
	/* ... and a torn record after them */
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "printf 'torn-identity-record' >> '%s/IDENTITY'", b);
	cr_assert_eq(system(cmd), 0);
	s = open_store(b, true);
	cr_assert_eq(store_flushed_lsn(s), 4000);
	stest_apply_range(s, &sv, 0, 6000); /* the WAL replays from the start: overlap ignored */
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
	stest_saved_free(&sv);
	stest_rmtree(a);
	stest_rmtree(b);
	free(a);
	free(b);
}

Test(store, image_buffers_are_reused_and_the_pool_stays_bounded)
{
	/* drain whatever earlier tests left, so the counts below are this test's */
	size_t cap;
	void *held[64];
	size_t nheld = 0;
	while (seg_img_pooled(NULL) > 0 && nheld < 64)
		held[nheld++] = seg_img_alloc(1, &cap);
	cr_assert_eq(seg_img_pooled(NULL), 0);
	void *a = seg_img_alloc(1 << 20, &cap);
	cr_assert(a && cap >= (1u << 20));
	memset(a, 1, 1 << 20);
	seg_img_free(a);
	cr_assert_eq(seg_img_pooled(NULL), 1);
	/* a smaller need takes the freed buffer; a larger one does not */
	void *b = seg_img_alloc(4096, &cap);
	cr_assert_eq(b, a, "the freed image's memory is written again");
	cr_assert_eq(seg_img_pooled(NULL), 0);
	seg_img_free(b);
	void *c = seg_img_alloc(2 << 20, &cap);
	cr_assert_neq(c, a);
	cr_assert_eq(seg_img_pooled(NULL), 1);
	seg_img_free(c);
	/* many frees: at most 31 buffers wait, the largest are let go first */
	void *many[40];
	for (int i = 0; i < 40; i++)
		many[i] = seg_img_alloc((size_t)(i + 1) * 4096 + (8 << 20), &cap);
	for (int i = 0; i < 40; i++)
		seg_img_free(many[i]);
	size_t bytes = 0;
	cr_assert_leq(seg_img_pooled(&bytes), 31);
	cr_assert_leq(bytes, (size_t)1 << 30);
	void *small = seg_img_alloc(4096, &cap);
	cr_assert_lt(cap, (size_t)(9 << 20), "the smallest buffer that fits is taken (%zu)", cap);
	seg_img_free(small);
	for (size_t i = 0; i < nheld; i++)
		seg_img_free(held[i]);
}
