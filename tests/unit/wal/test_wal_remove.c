/*
 * test_wal_remove.c - removing covered WAL files (wal_remove_covered) and
 * replaying from an LSN (wal_options.replay_from_lsn): which files go, that
 * the file being written never does, that LSNs go on after a reopen, that
 * covered files are not even read, and that readers survive a removal.
 *
 * Every wal_open starts a new file, so the logs here are built one "run"
 * (open, append, close) per file: run k writes file k.
 */
#include "base/td.h"
#include "wal/wal.h"
#include "waltest.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(wal_remove, .init = wt_setup, .fini = wt_teardown);

#define PER_FILE 10

/* Writes `closed` runs of PER_FILE records each (file k holds LSNs
 * (k-1)*PER_FILE+1 .. k*PER_FILE), then opens one more, appends PER_FILE
 * records to it and returns it open: its file is the one being written. */
static struct wal *runs(int closed, struct wt_expect *want)
{
	struct wal_options o = wt_default_opts();
	for (int k = 0; k < closed; k++) {
		struct wal *w = wt_open_wal(&o, NULL);
		wt_append_n(w, (uint64_t)k * PER_FILE, PER_FILE, false,
			    want ? want + k * PER_FILE : NULL);
		wal_close(w);
	}
	struct wal *w = wt_open_wal(&o, NULL);
	wt_append_n(w, (uint64_t)closed * PER_FILE, PER_FILE, false,
		    want ? want + closed * PER_FILE : NULL);
	return w;
}

static bool exists(uint32_t seq)
{
	char p[256];
	wt_seq_path(p, sizeof(p), seq);
	return access(p, F_OK) == 0;
}

static uint64_t size_of(uint32_t seq)
{
	char p[256];
	wt_seq_path(p, sizeof(p), seq);
	return (uint64_t)wt_file_size(p);
}

Test(wal_remove, current_file_is_never_removed)
{
	struct wal *w = runs(0, NULL);
	uint64_t files = 99, bytes = 99;
	cr_assert_eq(wal_remove_covered(w, UINT64_MAX, &files, &bytes), 0);
	cr_assert_eq(files, 0);
	cr_assert_eq(bytes, 0);
	cr_assert(exists(1));
	wal_close(w);

	/* reopened: file 1 is closed now, file 2 (empty) is being written */
	struct wal_options o = wt_default_opts();
	w = wt_open_wal(&o, NULL);
	cr_assert_eq(wal_remove_covered(w, UINT64_MAX, &files, &bytes), 0);
	cr_assert_eq(files, 1);
	cr_assert(!exists(1));
	cr_assert(exists(2), "the file being written stays, even when empty");
	cr_assert_eq(wal_remove_covered(w, UINT64_MAX, &files, &bytes), 0);
	cr_assert_eq(files, 0);
	wal_close(w);
}

Test(wal_remove, only_fully_covered_files_go_oldest_first)
{
	struct wal *w = runs(3, NULL); /* files 1-3 closed (LSN 1-30), 4 open (31-40) */
	uint64_t s1 = size_of(1), s2 = size_of(2), files, bytes;
	struct wal_stats before, after;
	wal_get_stats(w, &before);

	/* LSN 15 covers file 1 (1-10) but not file 2 (11-20) */
	cr_assert_eq(wal_count_covered(w, 15, &files, &bytes), 0);
	cr_assert_eq(files, 1);
	cr_assert_eq(bytes, s1);
	cr_assert(exists(1), "counting removes nothing");
	cr_assert_eq(wal_remove_covered(w, 15, &files, &bytes), 0);
	cr_assert_eq(files, 1);
	cr_assert_eq(bytes, s1);
	cr_assert(!exists(1) && exists(2) && exists(3) && exists(4));

	/* 19 is one short of file 2's last record: it stays */
	cr_assert_eq(wal_remove_covered(w, 19, &files, &bytes), 0);
	cr_assert_eq(files, 0);
	cr_assert_eq(wal_remove_covered(w, 20, &files, &bytes), 0);
	cr_assert_eq(files, 1);
	cr_assert_eq(bytes, s2);
	cr_assert(!exists(2) && exists(3));

	wal_get_stats(w, &after);
	cr_assert_eq(after.files_removed, 2);
	cr_assert_eq(after.bytes_removed, s1 + s2);
	cr_assert_eq(after.files, before.files - 2);
	cr_assert_eq(after.disk_bytes, before.disk_bytes - s1 - s2);
	wal_close(w);
}

Test(wal_remove, lsns_go_on_after_removal_and_reopen)
{
	enum { N = 4 * PER_FILE };
	static struct wt_expect want[N + 1];
	struct wal *w = runs(3, want);
	cr_assert_eq(wal_remove_covered(w, UINT64_MAX, NULL, NULL), 0);
	cr_assert(!exists(1) && !exists(2) && !exists(3) && exists(4));
	wal_close(w);

	/* what is left replays; the next LSN follows the last one ever given */
	struct wt_collected c;
	struct wal_options o = wt_default_opts();
	memset(&c, 0, sizeof(c));
	w = wt_open_wal(&o, &c); /* file 5 */
	wt_check_records(&c, want + 3 * PER_FILE, PER_FILE);
	wt_collected_free(&c);
	struct wal_stats st;
	wal_get_stats(w, &st);
	cr_assert_eq(st.next_lsn, N + 1);
	wal_close(w);

	/* every file with records gone, the newest closed one empty: its header
	 * still says where LSNs stand */
	w = wt_open_wal(&o, NULL); /* file 6 */
	cr_assert_eq(wal_remove_covered(w, UINT64_MAX, NULL, NULL), 0);
	cr_assert(!exists(4) && !exists(5) && exists(6));
	wal_close(w);
	w = wt_open_wal(&o, &c); /* file 7 */
	cr_assert_eq(c.n, 0);
	wt_append_n(w, 9999, 1, false, want + N);
	cr_assert_eq(want[N].lsn, N + 1, "LSN %llu reused", (unsigned long long)want[N].lsn);
	wal_close(w);
}

/* Opens with replay_from_lsn = from, returns what was replayed in *c and the
 * number of damaged files the open found. */
static uint64_t replay_from(uint64_t from, struct wt_collected *c, uint64_t *next_lsn)
{
	struct wal_options o = wt_default_opts();
	o.replay_from_lsn = from;
	memset(c, 0, sizeof(*c));
	struct wal *w = wt_open_wal(&o, c);
	struct wal_stats st;
	wal_get_stats(w, &st);
	wal_close(w);
	if (next_lsn)
		*next_lsn = st.next_lsn;
	return st.damaged_files;
}

Test(wal_remove, replay_from_skips_covered_files_unread)
{
	enum { N = 3 * PER_FILE };
	static struct wt_expect want[N];
	wal_close(runs(2, want)); /* files 1-3, LSN 1-30 */

	/* damage in the middle of file 1: seen only when file 1 is read */
	struct wt_collected c;
	free(wt_read_log(&c, NULL));
	cr_assert_eq(c.v[4].file_seq, 1);
	char p[256];
	wt_seq_path(p, sizeof(p), 1);
	wt_flip_byte(p, (off_t)c.v[4].offset + 9); /* LSN of record 5 */
	wt_collected_free(&c);

	/* from 21: files 1 and 2 are covered and not read, no damage seen */
	uint64_t next;
	cr_assert_eq(replay_from(21, &c, &next), 0);
	wt_check_records(&c, want + 20, 10);
	wt_collected_free(&c);
	cr_assert_eq(next, N + 1);

	/* from 15: file 2 is read from its start, records 11-14 are not passed */
	cr_assert_eq(replay_from(15, &c, NULL), 0);
	wt_check_records(&c, want + 14, N - 14);
	wt_collected_free(&c);

	/* from 0: everything is read, and the damage found */
	cr_assert_eq(replay_from(0, &c, NULL), 1);
	cr_assert_eq(c.n, 4 + 20, "file 1 up to the damage, then files 2 and 3");
	wt_collected_free(&c);

	/* past the end of the log (its files moved away by hand): new LSNs still
	 * start past what the consumers recorded */
	cr_assert_eq(replay_from(1000, &c, &next), 0);
	cr_assert_eq(c.n, 0);
	cr_assert_eq(next, 1000);
}

Test(wal_remove, empty_and_damaged_files_are_bounded_by_later_headers)
{
	struct wal_options o = wt_default_opts();
	struct wal *w = wt_open_wal(&o, NULL); /* file 1: LSN 1-10 */
	wt_append_n(w, 0, PER_FILE, false, NULL);
	wal_close(w);
	/* file 2: created but empty (a crash before its header was written) */
	char p[256];
	wt_seq_path(p, sizeof(p), 2);
	wt_write_file(p, "", 0);
	w = wt_open_wal(&o, NULL); /* file 3: LSN 11-20 */
	wt_append_n(w, 100, PER_FILE, false, NULL);
	wal_close(w);
	w = wt_open_wal(&o, NULL); /* file 4, being written */

	uint64_t files;
	cr_assert_eq(wal_remove_covered(w, 10, &files, NULL), 0);
	cr_assert_eq(files, 2, "file 1 (bounded by file 3's header) and the empty file 2");
	cr_assert(!exists(1) && !exists(2) && exists(3) && exists(4));
	wal_close(w);
}

Test(wal_remove, reader_survives_files_removed_under_it)
{
	enum { N = 4 * PER_FILE };
	static struct wt_expect want[N];
	struct wal *w = runs(3, want);

	struct wal_reader *r;
	struct wal_record rec;
	cr_assert_eq(wal_reader_open(&r, wt_waldir), 0);
	cr_assert_eq(wal_reader_next(r, &rec), 1); /* file 1 is open now */
	cr_assert_eq(rec.lsn, 1);

	uint64_t files;
	cr_assert_eq(wal_remove_covered(w, 20, &files, NULL), 0);
	cr_assert_eq(files, 2);

	/* the open file is read to its end, the removed file 2 skipped */
	uint64_t got[N], n = 0;
	int rc;
	while ((rc = wal_reader_next(r, &rec)) == 1)
		got[n++] = rec.lsn;
	cr_assert_eq(rc, 0);
	cr_assert_null(wal_reader_damage(r));
	cr_assert_eq(n, (PER_FILE - 1) + 2 * PER_FILE);
	for (uint64_t i = 0; i < PER_FILE - 1; i++)
		cr_assert_eq(got[i], i + 2);
	for (uint64_t i = 0; i < 2 * PER_FILE; i++)
		cr_assert_eq(got[PER_FILE - 1 + i], 21 + i);
	wal_reader_free(r);
	wal_close(w);
}
