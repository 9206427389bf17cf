/*
 * waltest.c - code shared by the WAL tests (see waltest.h).
 */
#include "waltest.h"
#include "base/log.h"
#include "base/td.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char wt_root[64];
char wt_waldir[128];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

void wt_setup(void)
{
	td_log_quiet = true;
	snprintf(wt_root, sizeof(wt_root), "/tmp/td-wal-XXXXXX");
	cr_assert_not_null(mkdtemp(wt_root));
	snprintf(wt_waldir, sizeof(wt_waldir), "%s/wal", wt_root);
}

void wt_teardown(void)
{
	nftw(wt_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

uint64_t wt_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* Payload number i: a length from 0 to 699 and bytes that depend on i. */
size_t wt_make_payload(uint64_t i, unsigned char *buf)
{
	size_t len = (size_t)(wt_mix(i) % 700);
	for (size_t k = 0; k < len; k++)
		buf[k] = (unsigned char)wt_mix(i * 1000003u + k);
	return len;
}

int wt_collect_cb(void *ctx, const struct wal_record *rec)
{
	struct wt_collected *c = ctx;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 256;
		c->v = realloc(c->v, c->cap * sizeof(*c->v));
		cr_assert_not_null(c->v);
	}
	struct wt_rec *r = &c->v[c->n++];
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

void wt_collected_free(struct wt_collected *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].data);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

void wt_check_records(const struct wt_collected *c, const struct wt_expect *want, size_t n)
{
	static unsigned char buf[1024];
	cr_assert_eq(c->n, n, "replayed %zu records, want %zu", c->n, n);
	for (size_t i = 0; i < n; i++) {
		const struct wt_rec *r = &c->v[i];
		cr_assert_eq(r->lsn, want[i].lsn, "record %zu: lsn %llu, want %llu", i,
			     (unsigned long long)r->lsn, (unsigned long long)want[i].lsn);
		cr_assert_eq(r->type, WAL_REC_EVENT);
		size_t len = wt_make_payload(want[i].payload_id, buf);
		cr_assert_eq(r->len, len, "record %zu: length", i);
		cr_assert_eq(memcmp(r->data, buf, len), 0, "record %zu: payload differs", i);
		if (i > 0)
			cr_assert_gt(r->lsn, c->v[i - 1].lsn, "LSN order");
	}
}

struct wal *wt_open_wal(const struct wal_options *opt, struct wt_collected *c)
{
	struct wal *w = NULL;
	int rc = wal_open(&w, opt, c ? wt_collect_cb : NULL, c);
	cr_assert_eq(rc, 0, "wal_open: %s", td_strerror(rc));
	cr_assert_not_null(w);
	return w;
}

struct wal_options wt_default_opts(void)
{
	struct wal_options o;
	memset(&o, 0, sizeof(o));
	o.dir = wt_waldir;
	return o;
}

/* Appends payloads first_id .. first_id+n-1, waiting for each when `each`,
 * else only for the last; records LSN -> payload in want[]. */
void wt_append_n(struct wal *w, uint64_t first_id, size_t n, bool each, struct wt_expect *want)
{
	static unsigned char buf[1024];
	uint64_t lsn = 0;
	for (size_t i = 0; i < n; i++) {
		size_t len = wt_make_payload(first_id + i, buf);
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
void wt_replay_all(struct wt_collected *c)
{
	struct wal_options o = wt_default_opts();
	memset(c, 0, sizeof(*c));
	wal_close(wt_open_wal(&o, c));
}

/* Sorted sequence numbers of the *.wal files in wt_waldir. */
size_t wt_list_seqs(uint32_t *seqs, size_t cap)
{
	DIR *d = opendir(wt_waldir);
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

void wt_seq_path(char *out, size_t cap, uint32_t seq)
{
	snprintf(out, cap, "%s/%08x.wal", wt_waldir, seq);
}

off_t wt_file_size(const char *path)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "%s", path);
	return st.st_size;
}

void wt_write_file(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0, "%s", path);
	cr_assert_eq(write(fd, data, n), (ssize_t)n);
	close(fd);
}

unsigned char *wt_read_file(const char *path, size_t *n)
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

void wt_flip_byte(const char *path, off_t at)
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
char *wt_read_log(struct wt_collected *c, uint64_t *damaged_files)
{
	struct wal_reader *r;
	struct wal_record rec;
	memset(c, 0, sizeof(*c));
	cr_assert_eq(wal_reader_open(&r, wt_waldir), 0);
	int rc;
	while ((rc = wal_reader_next(r, &rec)) == 1)
		wt_collect_cb(c, &rec);
	cr_assert_eq(rc, 0, "reader: %s", td_strerror(rc));
	const char *damage = wal_reader_damage(r);
	char *copy = damage ? strdup(damage) : NULL;
	if (damaged_files)
		*damaged_files = wal_reader_damaged_files(r);
	wal_reader_free(r);
	return copy;
}
