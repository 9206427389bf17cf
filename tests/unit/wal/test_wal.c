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

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[64];
static char waldir[128];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void setup(void)
{
	td_log_quiet = true;
	snprintf(root, sizeof(root), "/tmp/td-wal-XXXXXX");
	cr_assert_not_null(mkdtemp(root));
	snprintf(waldir, sizeof(waldir), "%s/wal", root);
}

static void teardown(void)
{
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(wal, .init = setup, .fini = teardown);

/* ------------------------------------------------------------- helpers */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* Payload number i: a length from 0 to 699 and bytes that depend on i. */
static size_t make_payload(uint64_t i, unsigned char *buf)
{
	size_t len = (size_t)(mix(i) % 700);
	for (size_t k = 0; k < len; k++)
		buf[k] = (unsigned char)mix(i * 1000003u + k);
	return len;
}

struct rec_copy {
	uint64_t lsn;
	uint8_t type;
	uint32_t len;
	unsigned char *data;
	uint32_t file_seq;
	uint64_t offset;
};

struct collected {
	struct rec_copy *v;
	size_t n, cap;
};

static int collect_cb(void *ctx, const struct wal_record *rec)
{
	struct collected *c = ctx;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 256;
		c->v = realloc(c->v, c->cap * sizeof(*c->v));
		cr_assert_not_null(c->v);
	}
	struct rec_copy *r = &c->v[c->n++];
	r->lsn = rec->lsn;
	r->type = rec->type;
	r->len = rec->len;
	r->data = malloc(rec->len ? rec->len : 1);
	cr_assert_not_null(r->data);
	if (rec->len)
		memcpy(r->data, rec->payload, rec->len);
	r->file_seq = rec->file_seq;
	r->offset = rec->offset;
	return 0;
}

static void collected_free(struct collected *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].data);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

/* What the log should hold: LSN -> payload number. */
struct expect {
	uint64_t lsn;
	uint64_t payload_id;
};

static void check_records(const struct collected *c, const struct expect *want, size_t n)
{
	static unsigned char buf[1024];
	cr_assert_eq(c->n, n, "replayed %zu records, want %zu", c->n, n);
	for (size_t i = 0; i < n; i++) {
		const struct rec_copy *r = &c->v[i];
		cr_assert_eq(r->lsn, want[i].lsn, "record %zu: lsn %llu, want %llu", i,
			     (unsigned long long)r->lsn, (unsigned long long)want[i].lsn);
		cr_assert_eq(r->type, WAL_REC_EVENT);
		size_t len = make_payload(want[i].payload_id, buf);
		cr_assert_eq(r->len, len, "record %zu: length", i);
		cr_assert_eq(memcmp(r->data, buf, len), 0, "record %zu: payload differs", i);
		if (i > 0)
			cr_assert_gt(r->lsn, c->v[i - 1].lsn, "LSN order");
	}
}

static struct wal *open_wal(const struct wal_options *opt, struct collected *c)
{
	struct wal *w = NULL;
	int rc = wal_open(&w, opt, c ? collect_cb : NULL, c);
	cr_assert_eq(rc, 0, "wal_open: %s", td_strerror(rc));
	cr_assert_not_null(w);
	return w;
}

static struct wal_options default_opts(void)
{
	struct wal_options o;
	memset(&o, 0, sizeof(o));
	o.dir = waldir;
	return o;
}

/* Appends payloads first_id .. first_id+n-1, waiting for each when `each`,
 * else only for the last; records LSN -> payload in want[]. */
static void append_n(struct wal *w, uint64_t first_id, size_t n, bool each, struct expect *want)
{
	static unsigned char buf[1024];
	uint64_t lsn = 0;
	for (size_t i = 0; i < n; i++) {
		size_t len = make_payload(first_id + i, buf);
		int rc = wal_append(w, WAL_REC_EVENT, buf, len, &lsn);
		cr_assert_eq(rc, 0, "append %zu: %s", i, td_strerror(rc));
		if (want) {
			want[i].lsn = lsn;
			want[i].payload_id = first_id + i;
		}
		if (each)
			cr_assert_eq(wal_wait(w, lsn), 0);
	}
	if (n)
		cr_assert_eq(wal_wait(w, lsn), 0);
}

/* Replays the log with a fresh wal_open and closes it again. */
static void replay_all(struct collected *c)
{
	struct wal_options o = default_opts();
	memset(c, 0, sizeof(*c));
	wal_close(open_wal(&o, c));
}

/* Sorted sequence numbers of the *.wal files in waldir. */
static size_t list_seqs(uint32_t *seqs, size_t cap)
{
	DIR *d = opendir(waldir);
	cr_assert_not_null(d);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		unsigned v;
		char tail[8];
		if (strlen(e->d_name) == 12 && sscanf(e->d_name, "%8x%7s", &v, tail) == 2 &&
		    strcmp(tail, ".wal") == 0) {
			cr_assert_lt(n, cap);
			seqs[n++] = v;
		}
	}
	closedir(d);
	for (size_t i = 1; i < n; i++) /* insertion sort */
		for (size_t k = i; k > 0 && seqs[k - 1] > seqs[k]; k--) {
			uint32_t t = seqs[k];
			seqs[k] = seqs[k - 1];
			seqs[k - 1] = t;
		}
	return n;
}

static void seq_path(char *out, size_t cap, uint32_t seq)
{
	snprintf(out, cap, "%s/%08x.wal", waldir, seq);
}

static off_t file_size(const char *path)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "%s", path);
	return st.st_size;
}

static void write_file(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0, "%s", path);
	cr_assert_eq(write(fd, data, n), (ssize_t)n);
	close(fd);
}

static unsigned char *read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *p = malloc(sz > 0 ? (size_t)sz : 1);
	cr_assert_not_null(p);
	cr_assert_eq(fread(p, 1, (size_t)sz, f), (size_t)sz);
	fclose(f);
	*n = (size_t)sz;
	return p;
}

static void flip_byte(const char *path, off_t at)
{
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	unsigned char b;
	cr_assert_eq(pread(fd, &b, 1, at), 1);
	b ^= 0x40;
	cr_assert_eq(pwrite(fd, &b, 1, at), 1);
	close(fd);
}

/* Reads the whole log with a reader; returns the damage text (strdup'd) or
 * NULL, and the records in *c. */
static char *read_log(struct collected *c, uint64_t *damaged_files)
{
	struct wal_reader *r;
	struct wal_record rec;
	memset(c, 0, sizeof(*c));
	cr_assert_eq(wal_reader_open(&r, waldir), 0);
	int rc;
	while ((rc = wal_reader_next(r, &rec)) == 1)
		collect_cb(c, &rec);
	cr_assert_eq(rc, 0, "reader: %s", td_strerror(rc));
	const char *damage = wal_reader_damage(r);
	char *copy = damage ? strdup(damage) : NULL;
	if (damaged_files)
		*damaged_files = wal_reader_damaged_files(r);
	wal_reader_free(r);
	return copy;
}

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
	cr_assert_eq(wal_reader_open(&r, waldir), 0, "a missing directory is an empty log");
	cr_assert_eq(wal_reader_next(r, &rec), 0);
	cr_assert_null(wal_reader_damage(r));
	wal_reader_free(r);

	struct collected c = {0};
	struct wal_options o = default_opts();
	struct wal *w = open_wal(&o, &c);
	cr_assert_eq(c.n, 0);
	struct stat st;
	cr_assert_eq(stat(waldir, &st), 0);
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
	static struct expect want[3 * N];
	struct wal_options o = default_opts();
	struct wal *w = open_wal(&o, NULL);
	append_n(w, 0, N, false, want);
	for (size_t i = 0; i < N; i++)
		cr_assert_eq(want[i].lsn, i + 1, "LSNs start at 1 and are dense");
	struct wal_stats s;
	wal_get_stats(w, &s);
	cr_assert_eq(s.durable_lsn, N);
	cr_assert_eq(s.next_lsn, N + 1);
	cr_assert_eq(s.records_written, N);
	wal_close(w);

	struct collected c = {0};
	w = open_wal(&o, &c);
	check_records(&c, want, N);
	collected_free(&c);
	/* appends after a reopen continue the LSNs */
	append_n(w, N, N, true, want + N);
	cr_assert_eq(want[N].lsn, N + 1);
	wal_close(w);

	replay_all(&c);
	check_records(&c, want, 2 * N);
	collected_free(&c);
}

Test(wal, zero_length_and_large_records)
{
	struct wal_options o = default_opts();
	struct wal *w = open_wal(&o, NULL);
	/* larger than the reader's 1 MiB buffer, and the largest allowed */
	const size_t sizes[] = {
	    0, 1, (1u << 20) - WAL_REC_HEADER, (1u << 20) + 1, 3u << 20, 5, WAL_MAX_PAYLOAD, 0, 17};
	enum { NS = sizeof(sizes) / sizeof(sizes[0]) };
	unsigned char *big = malloc(WAL_MAX_PAYLOAD + 64);
	cr_assert_not_null(big);
	for (size_t i = 0; i < WAL_MAX_PAYLOAD + 64; i++)
		big[i] = (unsigned char)mix(i);
	uint64_t lsn = 0;
	for (size_t i = 0; i < NS; i++) {
		cr_assert_eq(wal_append(w, WAL_REC_EVENT, big + i, sizes[i], &lsn), 0, "size %zu",
			     sizes[i]);
	}
	cr_assert_eq(wal_append(w, WAL_REC_EVENT, big, WAL_MAX_PAYLOAD + 1, &lsn), TD_ETOOLARGE);
	cr_assert_eq(wal_wait(w, lsn), 0);
	wal_close(w);

	struct collected c = {0};
	char *damage = read_log(&c, NULL);
	cr_assert_null(damage, "%s", damage);
	cr_assert_eq(c.n, NS);
	for (size_t i = 0; i < NS; i++) {
		cr_assert_eq(c.v[i].lsn, i + 1);
		cr_assert_eq(c.v[i].len, sizes[i]);
		cr_assert_eq(memcmp(c.v[i].data, big + i, sizes[i]), 0, "record %zu", i);
	}
	collected_free(&c);
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
		size_t len = make_payload(pid, buf);
		if (wal_append(a->w, WAL_REC_EVENT, buf, len, &a->lsns[i]) != 0 ||
		    wal_wait(a->w, a->lsns[i]) != 0)
			a->lsns[i] = 0;
	}
	return NULL;
}

static int cmp_expect(const void *a, const void *b)
{
	const struct expect *x = a, *y = b;
	return x->lsn < y->lsn ? -1 : x->lsn > y->lsn;
}

Test(wal, concurrent_appenders_group_commit)
{
	enum { T = 6 };
	static struct appender ap[T];
	static struct expect want[T * 500];
	struct wal_options o = default_opts();
	struct wal *w = open_wal(&o, NULL);
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

	struct collected c;
	replay_all(&c);
	check_records(&c, want, n);
	collected_free(&c);
}

Test(wal, rotation_makes_several_files)
{
	enum { N = 400 };
	static struct expect want[N];
	struct wal_options o = default_opts();
	o.segment_bytes = 4096;
	struct wal *w = open_wal(&o, NULL);
	append_n(w, 0, N, true, want); /* one commit per record: many rotations */
	struct wal_stats s;
	wal_get_stats(w, &s);
	wal_close(w);

	uint32_t seqs[1024];
	size_t nfiles = list_seqs(seqs, 1024);
	cr_assert_geq(nfiles, 10, "only %zu files", nfiles);
	cr_assert_eq(s.files, nfiles);
	for (size_t i = 0; i < nfiles; i++) {
		cr_assert_eq(seqs[i], i + 1, "files are numbered densely from 1");
		char p[256];
		seq_path(p, sizeof(p), seqs[i]);
		/* a file holds at least one record, so it may pass the limit by one */
		cr_assert_leq(file_size(p), 4096 + WAL_REC_HEADER + 700, "%s too big", p);
	}
	struct collected c;
	replay_all(&c);
	check_records(&c, want, N);
	cr_assert_gt(c.v[N - 1].file_seq, c.v[0].file_seq);
	collected_free(&c);
}

/* Finds the last record of the log (file and offset) with a reader. */
static struct rec_copy last_record(void)
{
	struct collected c;
	free(read_log(&c, NULL));
	cr_assert_gt(c.n, 0);
	struct rec_copy last = c.v[c.n - 1];
	last.data = NULL;
	collected_free(&c);
	return last;
}

/* Writes N records, lets `damage` hurt the last one, then checks that a
 * reopen keeps every earlier record, reports the damage, and that records
 * appended afterwards survive the next reopen. */
static void torn_tail_case(void (*damage)(const struct rec_copy *last, const char *path))
{
	enum { N = 100, M = 20 };
	static struct expect want[N + M];
	struct wal_options o = default_opts();
	struct wal *w = open_wal(&o, NULL);
	append_n(w, 0, N, false, want);
	wal_close(w);

	struct rec_copy last = last_record();
	cr_assert_eq(last.lsn, N);
	char path[256];
	seq_path(path, sizeof(path), last.file_seq);
	damage(&last, path);

	uint64_t damaged = 0;
	struct collected c;
	char *text = read_log(&c, &damaged);
	cr_assert_not_null(text, "damage must be reported");
	cr_assert_eq(damaged, 1);
	cr_assert_not_null(strstr(text, ".wal at byte"), "%s", text);
	free(text);
	check_records(&c, want, N - 1);
	collected_free(&c);

	w = open_wal(&o, &c);
	check_records(&c, want, N - 1);
	collected_free(&c);
	struct wal_stats s;
	wal_get_stats(w, &s);
	cr_assert_eq(s.damaged_files, 1);
	cr_assert_eq(s.next_lsn, N, "the lost record's LSN is handed out again");
	append_n(w, 1000, M, false, want + N - 1);
	wal_close(w);

	replay_all(&c);
	check_records(&c, want, N - 1 + M);
	collected_free(&c);
}

static void cut_tail(const struct rec_copy *last, const char *path)
{
	off_t size = file_size(path);
	cr_assert_eq(truncate(path, size - 3), 0);
}

static void cut_into_header(const struct rec_copy *last, const char *path)
{
	cr_assert_eq(truncate(path, (off_t)last->offset + 5), 0);
}

static void flip_payload(const struct rec_copy *last, const char *path)
{
	cr_assert_gt(last->len, 0);
	flip_byte(path, (off_t)last->offset + WAL_REC_HEADER + last->len / 2);
}

static void flip_lsn(const struct rec_copy *last, const char *path)
{
	flip_byte(path, (off_t)last->offset + 9);
}

static void flip_length(const struct rec_copy *last, const char *path)
{
	flip_byte(path, (off_t)last->offset + 3); /* length becomes huge */
}

static void flip_crc(const struct rec_copy *last, const char *path)
{
	flip_byte(path, (off_t)last->offset + 4);
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
	static struct expect want[N], keep[N];
	struct wal_options o = default_opts();
	o.segment_bytes = 4096;
	struct wal *w = open_wal(&o, NULL);
	append_n(w, 0, N, true, want);
	wal_close(w);

	struct collected c;
	free(read_log(&c, NULL));
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
	seq_path(path, sizeof(path), victim_seq);
	flip_byte(path, (off_t)c.v[victim].offset + WAL_REC_HEADER / 2);
	size_t nkeep = 0;
	for (size_t i = 0; i < c.n; i++) {
		/* file 3 is read up to the damage; every other file fully */
		if (c.v[i].file_seq != victim_seq || i < victim)
			keep[nkeep++] = want[i];
	}
	cr_assert_gt(nkeep, victim + 1, "there are records after file 3");
	collected_free(&c);

	uint64_t damaged;
	char *text = read_log(&c, &damaged);
	cr_assert_not_null(text);
	cr_assert_eq(damaged, 1);
	cr_assert_not_null(strstr(text, "00000003.wal"), "%s", text);
	free(text);
	check_records(&c, keep, nkeep);
	collected_free(&c);
}

Test(wal, garbage_files_never_crash_the_reader)
{
	struct wal_options o = default_opts();
	static struct expect want[50 + 10];
	struct wal *w = open_wal(&o, NULL);
	append_n(w, 0, 50, false, want);
	wal_close(w);

	char garbage[256];
	seq_path(garbage, sizeof(garbage), 9);
	static unsigned char bytes[200000];
	unsigned char hdr[WAL_FILE_HEADER];
	{
		/* a genuine file header from a real file, to let random records
		 * past the header check */
		char p1[256];
		seq_path(p1, sizeof(p1), 1);
		size_t n;
		unsigned char *f = read_file(p1, &n);
		cr_assert_geq(n, WAL_FILE_HEADER);
		memcpy(hdr, f, WAL_FILE_HEADER);
		free(f);
	}
	for (int round = 0; round < 200; round++) {
		size_t n = (size_t)(mix((uint64_t)round) % sizeof(bytes));
		if (round % 4 == 0)
			n %= 64; /* around the size of a header */
		for (size_t i = 0; i < n; i++)
			bytes[i] = (unsigned char)mix((uint64_t)round << 32 | i);
		if (round % 2 == 1 && n >= WAL_FILE_HEADER)
			memcpy(bytes, hdr, WAL_FILE_HEADER);
		if (round % 8 == 3 && n >= WAL_FILE_HEADER + 4) /* a plausible small length */
			bytes[WAL_FILE_HEADER + 1] = bytes[WAL_FILE_HEADER + 2] =
			    bytes[WAL_FILE_HEADER + 3] = 0;
		write_file(garbage, bytes, n);

		struct collected c;
		char *text = read_log(&c, NULL);
		check_records(&c, want, 50);
		if (n > 0)
			cr_assert_not_null(text, "round %d: garbage not reported", round);
		free(text);
		collected_free(&c);
	}

	/* the log still opens, and writes after the garbage file survive */
	struct collected c = {0};
	w = open_wal(&o, &c);
	check_records(&c, want, 50);
	collected_free(&c);
	append_n(w, 500, 10, false, want + 50);
	wal_close(w);
	replay_all(&c);
	check_records(&c, want, 60);
	collected_free(&c);
}

Test(wal, mutated_files_give_only_true_records)
{
	/* Random damage anywhere in a real file: whatever the reader returns must
	 * be records that were written, byte for byte, in LSN order. */
	enum { N = 200 };
	static struct expect want[N];
	struct wal_options o = default_opts();
	struct wal *w = open_wal(&o, NULL);
	append_n(w, 0, N, false, want);
	wal_close(w);
	char path[256];
	seq_path(path, sizeof(path), 1);
	size_t size;
	unsigned char *orig = read_file(path, &size);
	unsigned char *mut = malloc(size);
	cr_assert_not_null(mut);
	static unsigned char buf[1024];
	for (int round = 0; round < 300; round++) {
		memcpy(mut, orig, size);
		size_t n = size;
		uint64_t r = mix((uint64_t)round + 77);
		if (round % 3 == 0)
			n = (size_t)(r % size);
		int flips = (int)((r >> 32) % 4);
		for (int k = 0; k < flips && n > 0; k++)
			mut[mix(r + (uint64_t)k) % n] ^= (unsigned char)(1u << k);
		write_file(path, mut, n);

		struct collected c;
		free(read_log(&c, NULL));
		for (size_t i = 0; i < c.n; i++) {
			uint64_t lsn = c.v[i].lsn;
			cr_assert(lsn >= 1 && lsn <= N, "round %d: invented LSN %llu", round,
				  (unsigned long long)lsn);
			size_t len = make_payload(want[lsn - 1].payload_id, buf);
			cr_assert_eq(c.v[i].len, len, "round %d", round);
			cr_assert_eq(memcmp(c.v[i].data, buf, len), 0, "round %d", round);
			if (i > 0)
				cr_assert_gt(lsn, c.v[i - 1].lsn);
		}
		collected_free(&c);
	}
	free(mut);
	free(orig);
}

/* Only names of exactly 8 lowercase hex digits are WAL files: "+0000001.wal"
 * or "0x000001.wal" must not be taken for file 1 (read twice, reported as
 * damage). */
Test(wal, stray_file_names_are_ignored)
{
	static struct expect want[20];
	struct wal_options o = default_opts();
	struct wal *w = open_wal(&o, NULL);
	append_n(w, 0, 20, false, want);
	wal_close(w);
	char p[256];
	snprintf(p, sizeof(p), "%s/+0000001.wal", waldir);
	write_file(p, "not a wal", 9);
	snprintf(p, sizeof(p), "%s/0x000001.wal", waldir);
	write_file(p, "not a wal", 9);
	struct collected c;
	char *text = read_log(&c, NULL);
	check_records(&c, want, 20);
	cr_assert_null(text, "%s", text);
	collected_free(&c);
}

/* A stray file named ffffffff.wal must not make wal_open wrap to file
 * "00000000.wal", which no reader lists: records acknowledged afterwards
 * would be missing from the next replay. */
Test(wal, highest_file_number_does_not_lose_records)
{
	static struct expect want[10];
	char p[256];
	struct wal_options o = default_opts();
	cr_assert_eq(mkdir(waldir, 0700), 0);
	seq_path(p, sizeof(p), 0xffffffffu);
	write_file(p, "garbage", 7);
	struct wal *w = NULL;
	int rc = wal_open(&w, &o, NULL, NULL);
	if (rc != 0)
		return; /* refusing to open is a fine answer too */
	append_n(w, 0, 10, false, want);
	wal_close(w);
	struct collected c;
	replay_all(&c);
	check_records(&c, want, 10);
	collected_free(&c);
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
	struct wal_options o = default_opts();
	struct wal *w = open_wal(&o, NULL);
	unsigned char buf[1024];
	for (int i = 0; i < 50; i++) {
		uint64_t lsn;
		size_t len = make_payload((uint64_t)i, buf);
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
		struct collected c;
		free(read_log(&c, NULL));
		cr_assert_eq(c.n, (size_t)i + 1);
		cr_assert_eq(c.v[i].lsn, lsn);
		collected_free(&c);
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
	struct wal_options o = default_opts();
	o.max_pending_bytes = 4096;
	struct wal *w = open_wal(&o, NULL);
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
	static struct expect want[N];
	struct wal_options o = default_opts();
	o.durability = WAL_ASYNC;
	o.async_interval_ms = 5;
	struct wal *w = open_wal(&o, NULL);
	cr_assert_eq(wal_durability(w), WAL_ASYNC);
	append_n(w, 0, N, false, want);
	wal_close(w); /* writes what is pending */
	struct collected c;
	replay_all(&c);
	check_records(&c, want, N);
	collected_free(&c);
}

static int stop_at_3(void *ctx, const struct wal_record *rec)
{
	int *seen = ctx;
	(*seen)++;
	return rec->lsn == 3 ? TD_ECORRUPT : 0;
}

Test(wal, replay_callback_error_fails_open)
{
	struct wal_options o = default_opts();
	struct wal *w = open_wal(&o, NULL);
	append_n(w, 0, 10, false, NULL);
	wal_close(w);
	int seen = 0;
	w = NULL;
	cr_assert_eq(wal_open(&w, &o, stop_at_3, &seen), TD_ECORRUPT);
	cr_assert_eq(seen, 3);
	/* and the log is untouched: a later open replays all ten */
	struct collected c;
	replay_all(&c);
	cr_assert_eq(c.n, 10);
	collected_free(&c);
}
