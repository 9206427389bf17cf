/*
 * test_wal.c - the write-ahead log (wal/wal.h): append and replay, group
 * commit from several threads, rotation, torn and corrupt tails, garbage
 * files, notifications and back-pressure. Every test works in a fresh
 * temporary directory.
 */
#include "base/crc32c.h"
#include "base/log.h"
#include "base/td.h"
#include "wal/wal.h"
#include "waltest.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(wal, .init = wt_setup, .fini = wt_teardown);

/* --------------------------------------------------------------- tests */

Test(wal, frame_header_layout)
{
	unsigned char hdr[WAL_REC_HEADER];
	const char payload[] = "hello";
	wal_frame_header(hdr, 0x0102030405060708ull, WAL_REC_EVENT, payload, 5);
	cr_assert_eq(hdr[0], 5);
	cr_assert_eq(hdr[1] | hdr[2] | hdr[3], 0);
	cr_assert_eq(hdr[8], 0x08, "LSN little-endian");
	cr_assert_eq(hdr[15], 0x01);
	cr_assert_eq(hdr[16], WAL_REC_EVENT);
	uint32_t crc = td_crc32c(0, hdr + 8, 9);
	crc = td_crc32c(crc, payload, 5);
	uint32_t stored = (uint32_t)hdr[4] | (uint32_t)hdr[5] << 8 | (uint32_t)hdr[6] << 16 |
			  (uint32_t)hdr[7] << 24;
	cr_assert_eq(stored, crc, "CRC-32C of LSN, type and payload");
}

Test(wal, empty_and_missing_directory)
{
	struct wal_reader *r;
	struct wal_record rec;
	cr_assert_eq(wal_reader_open(&r, wt_waldir), 0, "a missing directory is an empty log");
	cr_assert_eq(wal_reader_next(r, &rec), 0);
	cr_assert_null(wal_reader_damage(r));
	wal_reader_free(r);

	struct wt_collected c = {0};
	struct wal_options o = wt_default_opts();
	struct wal *w = wt_open_wal(&o, &c);
	cr_assert_eq(c.n, 0);
	struct stat st;
	cr_assert_eq(stat(wt_waldir, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(st.st_mode & 0077, 0, "WAL directory mode %o", (unsigned)st.st_mode & 0777);
	struct wal_stats s;
	wal_get_stats(w, &s);
	cr_assert_eq(s.next_lsn, 1);
	cr_assert_eq(s.damaged_files, 0);
	cr_assert_eq(wal_durability(w), WAL_SYNC);
	cr_assert_eq(wal_max_pending(w), 64u << 20, "default pending cap");
	wal_close(w);
}

Test(wal, append_close_replay)
{
	enum { N = 1000 };
	static struct wt_expect want[3 * N];
	struct wal_options o = wt_default_opts();
	struct wal *w = wt_open_wal(&o, NULL);
	wt_append_n(w, 0, N, false, want);
	for (size_t i = 0; i < N; i++)
		cr_assert_eq(want[i].lsn, i + 1, "LSNs start at 1 and are dense");
	struct wal_stats s;
	wal_get_stats(w, &s);
	cr_assert_eq(s.durable_lsn, N);
	cr_assert_eq(s.next_lsn, N + 1);
	cr_assert_eq(s.records_written, N);
	wal_close(w);

	struct wt_collected c = {0};
	w = wt_open_wal(&o, &c);
	wt_check_records(&c, want, N);
	wt_collected_free(&c);
	/* appends after a reopen continue the LSNs */
	wt_append_n(w, N, N, true, want + N);
	cr_assert_eq(want[N].lsn, N + 1);
	wal_close(w);

	wt_replay_all(&c);
	wt_check_records(&c, want, 2 * N);
	wt_collected_free(&c);
}

Test(wal, zero_length_and_large_records)
{
	struct wal_options o = wt_default_opts();
	struct wal *w = wt_open_wal(&o, NULL);
	/* larger than the reader's 1 MiB buffer, and the largest allowed */
	const size_t sizes[] = {
	    0, 1, (1u << 20) - WAL_REC_HEADER, (1u << 20) + 1, 3u << 20, 5, WAL_MAX_PAYLOAD, 0, 17};
	enum { NS = sizeof(sizes) / sizeof(sizes[0]) };
	unsigned char *big = malloc(WAL_MAX_PAYLOAD + 64);
	cr_assert_not_null(big);
	for (size_t i = 0; i < WAL_MAX_PAYLOAD + 64; i++)
		big[i] = (unsigned char)wt_mix(i);
	uint64_t lsn = 0;
	for (size_t i = 0; i < NS; i++) {
		cr_assert_eq(wal_append(w, WAL_REC_EVENT, big + i, sizes[i], &lsn), 0, "size %zu",
			     sizes[i]);
	}
	cr_assert_eq(wal_append(w, WAL_REC_EVENT, big, WAL_MAX_PAYLOAD + 1, &lsn), TD_ETOOLARGE);
	cr_assert_eq(wal_wait(w, lsn), 0);
	wal_close(w);

	struct wt_collected c = {0};
	char *damage = wt_read_log(&c, NULL);
	cr_assert_null(damage, "%s", damage);
	cr_assert_eq(c.n, NS);
	for (size_t i = 0; i < NS; i++) {
		cr_assert_eq(c.v[i].lsn, i + 1);
		cr_assert_eq(c.v[i].len, sizes[i]);
		cr_assert_eq(memcmp(c.v[i].data, big + i, sizes[i]), 0, "record %zu", i);
	}
	wt_collected_free(&c);
	free(big);
}

struct appender {
	struct wal *w;
	int id;
	uint64_t lsns[500];
};

static void *appender_main(void *arg)
{
	struct appender *a = arg;
	unsigned char buf[1024];
	for (int i = 0; i < 500; i++) {
		uint64_t pid = (uint64_t)a->id * 1000000 + (uint64_t)i;
		size_t len = wt_make_payload(pid, buf);
		if (wal_append(a->w, WAL_REC_EVENT, buf, len, &a->lsns[i]) != 0 ||
		    wal_wait(a->w, a->lsns[i]) != 0)
			a->lsns[i] = 0;
	}
	return NULL;
}

static int cmp_expect(const void *a, const void *b)
{
	const struct wt_expect *x = a, *y = b;
	return x->lsn < y->lsn ? -1 : x->lsn > y->lsn;
}

Test(wal, concurrent_appenders_group_commit)
{
	enum { T = 6 };
	static struct appender ap[T];
	static struct wt_expect want[T * 500];
	struct wal_options o = wt_default_opts();
	struct wal *w = wt_open_wal(&o, NULL);
	pthread_t th[T];
	for (int t = 0; t < T; t++) {
		ap[t].w = w;
		ap[t].id = t;
		cr_assert_eq(pthread_create(&th[t], NULL, appender_main, &ap[t]), 0);
	}
	for (int t = 0; t < T; t++)
		pthread_join(th[t], NULL);
	size_t n = 0;
	for (int t = 0; t < T; t++) {
		for (int i = 0; i < 500; i++) {
			cr_assert_neq(ap[t].lsns[i], 0, "thread %d append %d failed", t, i);
			if (i > 0)
				cr_assert_gt(ap[t].lsns[i], ap[t].lsns[i - 1]);
			want[n].lsn = ap[t].lsns[i];
			want[n].payload_id = (uint64_t)t * 1000000 + (uint64_t)i;
			n++;
		}
	}
	qsort(want, n, sizeof(want[0]), cmp_expect);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(want[i].lsn, i + 1, "every LSN handed out once");
	struct wal_stats s;
	wal_get_stats(w, &s);
	cr_assert_eq(s.records_written, n);
	cr_assert_leq(s.commits, n);
	struct wal_histograms h;
	wal_get_histograms(w, &h);
	cr_assert_eq(h.count, s.commits);
	wal_close(w);

	struct wt_collected c;
	wt_replay_all(&c);
	wt_check_records(&c, want, n);
	wt_collected_free(&c);
}

Test(wal, rotation_makes_several_files)
{
	enum { N = 400 };
	static struct wt_expect want[N];
	struct wal_options o = wt_default_opts();
	o.segment_bytes = 4096;
	struct wal *w = wt_open_wal(&o, NULL);
	wt_append_n(w, 0, N, true, want); /* one commit per record: many rotations */
	struct wal_stats s;
	wal_get_stats(w, &s);
	wal_close(w);

	uint32_t seqs[1024];
	size_t nfiles = wt_list_seqs(seqs, 1024);
	cr_assert_geq(nfiles, 10, "only %zu files", nfiles);
	cr_assert_eq(s.files, nfiles);
	for (size_t i = 0; i < nfiles; i++) {
		cr_assert_eq(seqs[i], i + 1, "files are numbered densely from 1");
		char p[256];
		wt_seq_path(p, sizeof(p), seqs[i]);
		/* a file holds at least one record, so it may pass the limit by one */
		cr_assert_leq(wt_file_size(p), 4096 + WAL_REC_HEADER + 700, "%s too big", p);
	}
	struct wt_collected c;
	wt_replay_all(&c);
	wt_check_records(&c, want, N);
	cr_assert_gt(c.v[N - 1].file_seq, c.v[0].file_seq);
	wt_collected_free(&c);
}

/* Finds the last record of the log (file and offset) with a reader. */
static struct wt_rec last_record(void)
{
	struct wt_collected c;
	free(wt_read_log(&c, NULL));
	cr_assert_gt(c.n, 0);
	struct wt_rec last = c.v[c.n - 1];
	last.data = NULL;
	wt_collected_free(&c);
	return last;
}

/* Writes N records, lets `damage` hurt the last one, then checks that a
 * reopen keeps every earlier record, reports the damage, and that records
 * appended afterwards survive the next reopen. */
static void torn_tail_case(void (*damage)(const struct wt_rec *last, const char *path))
{
	enum { N = 100, M = 20 };
	static struct wt_expect want[N + M];
	struct wal_options o = wt_default_opts();
	struct wal *w = wt_open_wal(&o, NULL);
	wt_append_n(w, 0, N, false, want);
	wal_close(w);

	struct wt_rec last = last_record();
	cr_assert_eq(last.lsn, N);
	char path[256];
	wt_seq_path(path, sizeof(path), last.file_seq);
	damage(&last, path);

	uint64_t damaged = 0;
	struct wt_collected c;
	char *text = wt_read_log(&c, &damaged);
	cr_assert_not_null(text, "damage must be reported");
	cr_assert_eq(damaged, 1);
	cr_assert_not_null(strstr(text, ".wal at byte"), "%s", text);
	free(text);
	wt_check_records(&c, want, N - 1);
	wt_collected_free(&c);

	w = wt_open_wal(&o, &c);
	wt_check_records(&c, want, N - 1);
	wt_collected_free(&c);
	struct wal_stats s;
	wal_get_stats(w, &s);
	cr_assert_eq(s.damaged_files, 1);
	cr_assert_eq(s.next_lsn, N, "the lost record's LSN is handed out again");
	wt_append_n(w, 1000, M, false, want + N - 1);
	wal_close(w);

	wt_replay_all(&c);
	wt_check_records(&c, want, N - 1 + M);
	wt_collected_free(&c);
}

static void cut_tail(const struct wt_rec *last, const char *path)
{
	off_t size = wt_file_size(path);
	cr_assert_eq(truncate(path, size - 3), 0);
}

static void cut_into_header(const struct wt_rec *last, const char *path)
{
	cr_assert_eq(truncate(path, (off_t)last->offset + 5), 0);
}

static void flip_payload(const struct wt_rec *last, const char *path)
{
	cr_assert_gt(last->len, 0);
	wt_flip_byte(path, (off_t)last->offset + WAL_REC_HEADER + last->len / 2);
}

static void flip_lsn(const struct wt_rec *last, const char *path)
{
	wt_flip_byte(path, (off_t)last->offset + 9);
}

static void flip_length(const struct wt_rec *last, const char *path)
{
	wt_flip_byte(path, (off_t)last->offset + 3); /* length becomes huge */
}

static void flip_crc(const struct wt_rec *last, const char *path)
{
	wt_flip_byte(path, (off_t)last->offset + 4);
}

Test(wal, torn_tail_truncated)
{
	torn_tail_case(cut_tail);
}

Test(wal, torn_tail_inside_record_header)
{
	torn_tail_case(cut_into_header);
}

Test(wal, corrupt_last_record_payload)
{
	torn_tail_case(flip_payload);
}

Test(wal, corrupt_last_record_lsn)
{
	torn_tail_case(flip_lsn);
}

Test(wal, corrupt_last_record_length)
{
	torn_tail_case(flip_length);
}

Test(wal, corrupt_last_record_checksum)
{
	torn_tail_case(flip_crc);
}

Test(wal, damage_in_middle_file_keeps_later_files)
{
	enum { N = 300 };
	static struct wt_expect want[N], keep[N];
	struct wal_options o = wt_default_opts();
	o.segment_bytes = 4096;
	struct wal *w = wt_open_wal(&o, NULL);
	wt_append_n(w, 0, N, true, want);
	wal_close(w);

	struct wt_collected c;
	free(wt_read_log(&c, NULL));
	cr_assert_eq(c.n, N);
	/* corrupt the second record of the third file */
	uint32_t victim_seq = 3;
	size_t first_in_file = N, victim = N;
	for (size_t i = 0; i < c.n; i++) {
		if (c.v[i].file_seq == victim_seq && first_in_file == N)
			first_in_file = i;
		if (c.v[i].file_seq == victim_seq && i == first_in_file + 1)
			victim = i;
	}
	cr_assert_lt(victim, N, "file 3 has at least two records");
	char path[256];
	wt_seq_path(path, sizeof(path), victim_seq);
	wt_flip_byte(path, (off_t)c.v[victim].offset + WAL_REC_HEADER / 2);
	size_t nkeep = 0;
	for (size_t i = 0; i < c.n; i++) {
		/* file 3 is read up to the damage; every other file fully */
		if (c.v[i].file_seq != victim_seq || i < victim)
			keep[nkeep++] = want[i];
	}
	cr_assert_gt(nkeep, victim + 1, "there are records after file 3");
	wt_collected_free(&c);

	uint64_t damaged;
	char *text = wt_read_log(&c, &damaged);
	cr_assert_not_null(text);
	cr_assert_eq(damaged, 1);
	cr_assert_not_null(strstr(text, "00000003.wal"), "%s", text);
	free(text);
	wt_check_records(&c, keep, nkeep);
	wt_collected_free(&c);
}

Test(wal, garbage_files_never_crash_the_reader)
{
	struct wal_options o = wt_default_opts();
	static struct wt_expect want[50 + 10];
	struct wal *w = wt_open_wal(&o, NULL);
	wt_append_n(w, 0, 50, false, want);
	wal_close(w);

	char garbage[256];
	wt_seq_path(garbage, sizeof(garbage), 9);
	static unsigned char bytes[200000];
	unsigned char hdr[WAL_FILE_HEADER];
	{
		/* a genuine file header from a real file, to let random records
		 * past the header check */
		char p1[256];
		wt_seq_path(p1, sizeof(p1), 1);
		size_t n;
		unsigned char *f = wt_read_file(p1, &n);
		cr_assert_geq(n, WAL_FILE_HEADER);
		memcpy(hdr, f, WAL_FILE_HEADER);
		free(f);
	}
	for (int round = 0; round < 200; round++) {
		size_t n = (size_t)(wt_mix((uint64_t)round) % sizeof(bytes));
		if (round % 4 == 0)
			n %= 64; /* around the size of a header */
		for (size_t i = 0; i < n; i++)
			bytes[i] = (unsigned char)wt_mix((uint64_t)round << 32 | i);
		if (round % 2 == 1 && n >= WAL_FILE_HEADER)
			memcpy(bytes, hdr, WAL_FILE_HEADER);
		if (round % 8 == 3 && n >= WAL_FILE_HEADER + 4) /* a plausible small length */
			bytes[WAL_FILE_HEADER + 1] = bytes[WAL_FILE_HEADER + 2] =
			    bytes[WAL_FILE_HEADER + 3] = 0;
		wt_write_file(garbage, bytes, n);

		struct wt_collected c;
		char *text = wt_read_log(&c, NULL);
		wt_check_records(&c, want, 50);
		if (n > 0)
			cr_assert_not_null(text, "round %d: garbage not reported", round);
		free(text);
		wt_collected_free(&c);
	}

	/* the log still opens, and writes after the garbage file survive */
	struct wt_collected c = {0};
	w = wt_open_wal(&o, &c);
	wt_check_records(&c, want, 50);
	wt_collected_free(&c);
	wt_append_n(w, 500, 10, false, want + 50);
	wal_close(w);
	wt_replay_all(&c);
	wt_check_records(&c, want, 60);
	wt_collected_free(&c);
}

Test(wal, mutated_files_give_only_true_records)
{
	/* Random damage anywhere in a real file: whatever the reader returns must
	 * be records that were written, byte for byte, in LSN order. */
	enum { N = 200 };
	static struct wt_expect want[N];
	struct wal_options o = wt_default_opts();
	struct wal *w = wt_open_wal(&o, NULL);
	wt_append_n(w, 0, N, false, want);
	wal_close(w);
	char path[256];
	wt_seq_path(path, sizeof(path), 1);
	size_t size;
	unsigned char *orig = wt_read_file(path, &size);
	unsigned char *mut = malloc(size);
	cr_assert_not_null(mut);
	static unsigned char buf[1024];
	for (int round = 0; round < 300; round++) {
		memcpy(mut, orig, size);
		size_t n = size;
		uint64_t r = wt_mix((uint64_t)round + 77);
		if (round % 3 == 0)
			n = (size_t)(r % size);
		int flips = (int)((r >> 32) % 4);
		for (int k = 0; k < flips && n > 0; k++)
			mut[wt_mix(r + (uint64_t)k) % n] ^= (unsigned char)(1u << k);
		wt_write_file(path, mut, n);

		struct wt_collected c;
		free(wt_read_log(&c, NULL));
		for (size_t i = 0; i < c.n; i++) {
			uint64_t lsn = c.v[i].lsn;
			cr_assert(lsn >= 1 && lsn <= N, "round %d: invented LSN %llu", round,
				  (unsigned long long)lsn);
			size_t len = wt_make_payload(want[lsn - 1].payload_id, buf);
			cr_assert_eq(c.v[i].len, len, "round %d", round);
			cr_assert_eq(memcmp(c.v[i].data, buf, len), 0, "round %d", round);
			if (i > 0)
				cr_assert_gt(lsn, c.v[i - 1].lsn);
		}
		wt_collected_free(&c);
	}
	free(mut);
	free(orig);
}

/* Only names of exactly 8 lowercase hex digits are WAL files: "+0000001.wal"
 * or "0x000001.wal" must not be taken for file 1 (read twice, reported as
 * damage). */
Test(wal, stray_file_names_are_ignored)
{
	static struct wt_expect want[20];
	struct wal_options o = wt_default_opts();
	struct wal *w = wt_open_wal(&o, NULL);
	wt_append_n(w, 0, 20, false, want);
	wal_close(w);
	char p[256];
	snprintf(p, sizeof(p), "%s/+0000001.wal", wt_waldir);
	wt_write_file(p, "not a wal", 9);
	snprintf(p, sizeof(p), "%s/0x000001.wal", wt_waldir);
	wt_write_file(p, "not a wal", 9);
	struct wt_collected c;
	char *text = wt_read_log(&c, NULL);
	wt_check_records(&c, want, 20);
	cr_assert_null(text, "%s", text);
	wt_collected_free(&c);
}

/* A stray file named ffffffff.wal must not make wal_open wrap to file
 * "00000000.wal", which no reader lists: records acknowledged afterwards
 * would be missing from the next replay. */
Test(wal, highest_file_number_does_not_lose_records)
{
	static struct wt_expect want[10];
	char p[256];
	struct wal_options o = wt_default_opts();
	cr_assert_eq(mkdir(wt_waldir, 0700), 0);
	wt_seq_path(p, sizeof(p), 0xffffffffu);
	wt_write_file(p, "garbage", 7);
	struct wal *w = NULL;
	int rc = wal_open(&w, &o, NULL, NULL);
	if (rc != 0)
		return; /* refusing to open is a fine answer too */
	wt_append_n(w, 0, 10, false, want);
	wal_close(w);
	struct wt_collected c;
	wt_replay_all(&c);
	wt_check_records(&c, want, 10);
	wt_collected_free(&c);
}

struct note {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int calls;
	int status;
	pthread_t thread;
};

static void note_init(struct note *n)
{
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->cv, NULL);
	n->calls = 0;
	n->status = 1;
}

static void note_done(void *arg, int status)
{
	struct note *n = arg;
	pthread_mutex_lock(&n->mu);
	n->calls++;
	n->status = status;
	n->thread = pthread_self();
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->mu);
}

static void note_wait(struct note *n)
{
	pthread_mutex_lock(&n->mu);
	while (n->calls == 0)
		pthread_cond_wait(&n->cv, &n->mu);
	pthread_mutex_unlock(&n->mu);
}

Test(wal, notify_fires_after_durable)
{
	struct wal_options o = wt_default_opts();
	struct wal *w = wt_open_wal(&o, NULL);
	unsigned char buf[1024];
	for (int i = 0; i < 50; i++) {
		uint64_t lsn;
		size_t len = wt_make_payload((uint64_t)i, buf);
		cr_assert_eq(wal_append(w, WAL_REC_EVENT, buf, len, &lsn), 0);
		struct note n;
		note_init(&n);
		wal_notify(w, lsn, note_done, &n);
		note_wait(&n);
		cr_assert_eq(n.calls, 1);
		cr_assert_eq(n.status, 0);
		struct wal_stats s;
		wal_get_stats(w, &s);
		cr_assert_geq(s.durable_lsn, lsn, "notified before durable");
		/* the record is in the file already */
		struct wt_collected c;
		free(wt_read_log(&c, NULL));
		cr_assert_eq(c.n, (size_t)i + 1);
		cr_assert_eq(c.v[i].lsn, lsn);
		wt_collected_free(&c);
		/* asking again for a durable LSN answers at once, on this thread */
		struct note again;
		note_init(&again);
		wal_notify(w, lsn, note_done, &again);
		cr_assert_eq(again.calls, 1);
		cr_assert_eq(again.status, 0);
		cr_assert(pthread_equal(again.thread, pthread_self()));
	}
	/* an LSN that was never handed out cannot become durable */
	struct note never;
	note_init(&never);
	wal_notify(w, 1000000, note_done, &never);
	cr_assert_eq(never.calls, 1);
	cr_assert_lt(never.status, 0);
	wal_close(w);
}

/* A notification callback that holds the writer thread until released: the
 * way to make the writer "slow" without a slow disk. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t main_thread;
	bool entered, open, ran_inline;
};

static void gate_fn(void *arg, int status)
{
	struct gate *g = arg;
	pthread_mutex_lock(&g->mu);
	if (pthread_equal(pthread_self(), g->main_thread)) {
		g->ran_inline = true; /* already durable: not the writer thread */
	} else {
		g->entered = true;
		pthread_cond_broadcast(&g->cv);
		while (!g->open)
			pthread_cond_wait(&g->cv, &g->mu);
	}
	pthread_mutex_unlock(&g->mu);
}

Test(wal, full_when_writer_is_slow)
{
	struct wal_options o = wt_default_opts();
	o.max_pending_bytes = 4096;
	struct wal *w = wt_open_wal(&o, NULL);
	unsigned char buf[100];
	memset(buf, 'e', sizeof(buf));
	uint64_t lsn;

	/* larger than the pending cap: never fits */
	static unsigned char big[8192];
	cr_assert_eq(wal_max_pending(w), 4096);
	cr_assert_eq(wal_reserve_check(w, sizeof(big), 1), TD_EFULL);
	cr_assert_eq(wal_reserve_check(w, 4096 - 2 * WAL_REC_HEADER, 2), 0);
	cr_assert_eq(wal_reserve_check(w, 4096 - 2 * WAL_REC_HEADER + 1, 2), TD_EFULL);
	cr_assert_eq(wal_append(w, WAL_REC_EVENT, big, sizeof(big), &lsn), TD_EFULL);

	struct gate g = {.main_thread = pthread_self()};
	pthread_mutex_init(&g.mu, NULL);
	pthread_cond_init(&g.cv, NULL);
	bool parked = false;
	for (int tries = 0; tries < 1000 && !parked; tries++) {
		cr_assert_eq(wal_append(w, WAL_REC_EVENT, buf, sizeof(buf), &lsn), 0);
		g.ran_inline = false;
		wal_notify(w, lsn, gate_fn, &g);
		pthread_mutex_lock(&g.mu);
		if (!g.ran_inline) {
			while (!g.entered)
				pthread_cond_wait(&g.cv, &g.mu);
			parked = true;
		}
		pthread_mutex_unlock(&g.mu);
	}
	cr_assert(parked, "could not park the writer");

	/* the writer is stuck: appends pile up until the cap */
	int rc = 0, appended = 0;
	uint64_t last_ok = 0;
	while (appended < 1000) {
		rc = wal_append(w, WAL_REC_EVENT, buf, sizeof(buf), &lsn);
		if (rc)
			break;
		last_ok = lsn;
		appended++;
	}
	cr_assert_eq(rc, TD_EFULL, "got %s after %d appends", td_strerror(rc), appended);
	cr_assert_leq((size_t)appended * (WAL_REC_HEADER + sizeof(buf)), 4096);
	cr_assert_gt(appended, 0);
	struct wal_stats s;
	wal_get_stats(w, &s);
	cr_assert_eq(s.pending_records, (uint64_t)appended);
	cr_assert_eq(wal_reserve_check(w, sizeof(buf), 1), TD_EFULL, "agrees with wal_append");
	cr_assert_eq(wal_reserve_check(w, 0, 0), 0);

	pthread_mutex_lock(&g.mu);
	g.open = true;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	cr_assert_eq(wal_wait(w, last_ok), 0);
	cr_assert_eq(wal_append(w, WAL_REC_EVENT, buf, sizeof(buf), &lsn), 0, "room again");
	cr_assert_eq(wal_wait(w, lsn), 0);
	wal_close(w);
}

Test(wal, async_mode_keeps_records)
{
	enum { N = 300 };
	static struct wt_expect want[N];
	struct wal_options o = wt_default_opts();
	o.durability = WAL_ASYNC;
	o.async_interval_ms = 5;
	struct wal *w = wt_open_wal(&o, NULL);
	cr_assert_eq(wal_durability(w), WAL_ASYNC);
	wt_append_n(w, 0, N, false, want);
	wal_close(w); /* writes what is pending */
	struct wt_collected c;
	wt_replay_all(&c);
	wt_check_records(&c, want, N);
	wt_collected_free(&c);
}

static int stop_at_3(void *ctx, const struct wal_record *rec)
{
	int *seen = ctx;
	(*seen)++;
	return rec->lsn == 3 ? TD_ECORRUPT : 0;
}

Test(wal, replay_callback_error_fails_open)
{
	struct wal_options o = wt_default_opts();
	struct wal *w = wt_open_wal(&o, NULL);
	wt_append_n(w, 0, 10, false, NULL);
	wal_close(w);
	int seen = 0;
	w = NULL;
	cr_assert_eq(wal_open(&w, &o, stop_at_3, &seen), TD_ECORRUPT);
	cr_assert_eq(seen, 3);
	/* and the log is untouched: a later open replays all ten */
	struct wt_collected c;
	wt_replay_all(&c);
	cr_assert_eq(c.n, 10);
	wt_collected_free(&c);
}
