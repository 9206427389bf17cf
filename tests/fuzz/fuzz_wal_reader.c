/*
 * fuzz_wal_reader.c - the WAL reader (wal_reader_open/next/free) on arbitrary
 * file contents, and what replay does with each record it returns
 * (collect_event_decode, ingest_replay).
 *
 * Input: one control byte, then file contents.
 *   control & 1  prefix each file with a valid file header (first LSN 1), so
 *                the fuzzer spends its time on records rather than the magic
 *   control & 2  split the contents in two halves: DIR/00000001.wal and
 *                DIR/00000002.wal (LSNs must keep increasing across files;
 *                damage in the first ends only the first)
 *   control & 4  fix checksums: the harness rewrites the CRC of each whole
 *                record it can frame, so mutations reach what lies past the
 *                checksum (lengths, LSN order, payloads for replay)
 *   control & 24 both bits set (a quarter of the inputs: it is slow):
 *                extend the last file with 1.5 MiB of zeros (a sparse hole),
 *                so record lengths past the reader's 1 MiB buffer take the
 *                large-record path instead of ending as "cut short"
 *   control & 32 read with wal_reader_open_from, from LSN 1 + 2 * (control >> 6)
 *                (1, 3, 5 or 7): files whose records are all below it (a later
 *                file's header starts at or below it) are skipped unread, and
 *                records below it are not returned
 *
 * The files live in one temporary directory per process, created at start
 * and removed at exit; each input overwrites them.
 *
 * Invariants checked: the reader returns exactly the records a reference
 * reader written from wal.h's byte tables finds (same LSNs, offsets, lengths,
 * types, files; so damage ends only its own file and never hides an earlier
 * record) and counts the same damaged files (none in skipped files); every
 * record is the bytes of its
 * file at rec.offset (its header re-framed from lsn/type/payload is
 * byte-identical), len <= WAL_MAX_PAYLOAD, LSNs strictly increase; replay's
 * collect_event_decode and ingest_replay take every record.
 */
#include "fuzz.h"

#include "base/crc32c.h"
#include "base/td.h"
#include "collect/collect.h"
#include "wal/wal_int.h"

#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ZERO_TAIL (3u << 19) /* 1.5 MiB */

static char dir[4096];
static char path1[4200], path2[4200];

static void remove_dir(void)
{
	unlink(path1);
	unlink(path2);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/tandem-fuzz-wal.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("fuzz_wal_reader: mkdtemp");
		exit(1);
	}
	wal_file_path(path1, sizeof(path1), dir, 1);
	wal_file_path(path2, sizeof(path2), dir, 2);
	atexit(remove_dir);
	return 0;
}

struct file {
	unsigned char *bytes;
	size_t len; /* in memory; the file on disk may have a zero tail */
	size_t disk_len;
};

/* Rewrites the checksum of each record that fits in p[0..n), in order. */
static void fix_checksums(unsigned char *p, size_t n)
{
	size_t off = 0;
	while (n - off >= WAL_REC_HEADER) {
		uint32_t len = wal_get32(p + off);
		if (len > WAL_MAX_PAYLOAD || len > n - off - WAL_REC_HEADER)
			break;
		size_t total = WAL_REC_HEADER + (size_t)len;
		wal_put32(p + off + 4, td_crc32c(0, p + off + 8, total - 8));
		off += total;
	}
}

static void write_file(const char *path, struct file *f, bool header, bool fix_crc,
		       const uint8_t *data, size_t n, bool zero_tail)
{
	size_t hlen = header ? WAL_FILE_HEADER : 0;
	f->len = hlen + n;
	f->bytes = malloc(f->len ? f->len : 1);
	FUZZ_CHECK(f->bytes != NULL);
	if (header)
		wal_make_file_header(f->bytes, 1);
	if (n)
		memcpy(f->bytes + hlen, data, n);
	if (fix_crc)
		fix_checksums(f->bytes + hlen, n);
	f->disk_len = f->len + (zero_tail ? ZERO_TAIL : 0);

	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FUZZ_CHECK(fd >= 0);
	size_t done = 0;
	while (done < f->len) {
		ssize_t w = write(fd, f->bytes + done, f->len - done);
		FUZZ_CHECK(w > 0);
		done += (size_t)w;
	}
	FUZZ_CHECK(ftruncate(fd, (off_t)f->disk_len) == 0);
	close(fd);
}

/* The file's byte at off, zero in the sparse tail. */
static unsigned char byte_at(const struct file *f, uint64_t off)
{
	return off < f->len ? f->bytes[off] : 0;
}

/* ---- a reference reader, from the byte tables in wal.h ---- */

static uint64_t le_at(const struct file *f, uint64_t off, int n)
{
	uint64_t v = 0;
	for (int k = n - 1; k >= 0; k--)
		v = v << 8 | byte_at(f, off + (uint64_t)k);
	return v;
}

/* CRC-32C of the file's bytes [from, to), sparse tail included. */
static uint32_t crc_range(const struct file *f, uint64_t from, uint64_t to)
{
	static const unsigned char zeros[65536];
	uint32_t crc = 0;
	if (from < f->len) {
		uint64_t end = to < f->len ? to : f->len;
		crc = td_crc32c(crc, f->bytes + from, (size_t)(end - from));
		from = end;
	}
	while (from < to) {
		size_t n = to - from < sizeof(zeros) ? (size_t)(to - from) : sizeof(zeros);
		crc = td_crc32c(crc, zeros, n);
		from += n;
	}
	return crc;
}

struct want {
	uint64_t lsn, offset;
	uint32_t len, seq;
	uint8_t type;
};

/*
 * What a correct reader returns: each file in order; an empty file is
 * skipped; a bad header, or a record that is cut short, too long, fails its
 * checksum or does not raise the LSN, is damage that ends its file.
 */
static bool header_ok(const struct file *f)
{
	static const unsigned char magic[8] = {'T', 'D', 'W', 'A', 'L', '\r', '\n', 0x1a};
	unsigned char hdr[WAL_FILE_HEADER];
	if (f->disk_len < WAL_FILE_HEADER)
		return false;
	for (size_t k = 0; k < WAL_FILE_HEADER; k++)
		hdr[k] = byte_at(f, k);
	return memcmp(hdr, magic, 8) == 0 && le_at(f, 8, 4) == 1 &&
	       le_at(f, 28, 4) == td_crc32c(0, hdr, 28);
}

/* Are all records of files[i] below `from`, by the first later good header? */
static bool covered(const struct file *files, size_t nfiles, size_t i, uint64_t from)
{
	for (size_t j = i + 1; j < nfiles; j++)
		if (header_ok(&files[j]))
			return le_at(&files[j], 16, 8) <= from;
	return false;
}

static struct want *model(const struct file *files, size_t nfiles, uint64_t from, size_t *nwant,
			  uint64_t *damaged)
{
	struct want *w = NULL;
	size_t n = 0, cap = 0;
	uint64_t last = 0;
	bool skipping = from > 1;
	*damaged = 0;
	for (size_t i = 0; i < nfiles; i++) {
		const struct file *f = &files[i];
		if (skipping && covered(files, nfiles, i, from))
			continue;
		skipping = false;
		if (f->disk_len == 0)
			continue;
		bool ok = header_ok(f);
		uint64_t off = WAL_FILE_HEADER;
		while (ok && off < f->disk_len) {
			uint64_t len = le_at(f, off, 4);
			ok = f->disk_len - off >= WAL_REC_HEADER && len <= WAL_MAX_PAYLOAD &&
			     off + WAL_REC_HEADER + len <= f->disk_len &&
			     crc_range(f, off + 8, off + WAL_REC_HEADER + len) ==
				 le_at(f, off + 4, 4) &&
			     le_at(f, off + 8, 8) > last;
			if (!ok)
				break;
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				w = realloc(w, cap * sizeof(*w));
				FUZZ_CHECK(w != NULL);
			}
			last = le_at(f, off + 8, 8);
			if (last >= from)
				w[n++] = (struct want){last, off, (uint32_t)len, (uint32_t)i + 1,
						       byte_at(f, off + 16)};
			off += WAL_REC_HEADER + len;
		}
		if (!ok)
			(*damaged)++;
	}
	*nwant = n;
	return w;
}

static void check_record(const struct file *files, size_t nfiles, const struct wal_record *rec,
			 uint64_t prev_lsn)
{
	FUZZ_CHECK(rec->len <= WAL_MAX_PAYLOAD);
	FUZZ_CHECK(rec->lsn > prev_lsn);
	FUZZ_CHECK(rec->file_seq >= 1 && rec->file_seq <= nfiles);
	const struct file *f = &files[rec->file_seq - 1];
	FUZZ_CHECK(rec->offset >= WAL_FILE_HEADER);
	FUZZ_CHECK(rec->offset + WAL_REC_HEADER + rec->len <= f->disk_len);
	FUZZ_CHECK(rec->len == 0 || rec->payload != NULL);

	unsigned char hdr[WAL_REC_HEADER];
	wal_frame_header(hdr, rec->lsn, rec->type, rec->payload, rec->len);
	for (size_t k = 0; k < WAL_REC_HEADER; k++)
		FUZZ_CHECK(hdr[k] == byte_at(f, rec->offset + k));
	const unsigned char *p = rec->payload;
	uint64_t base = rec->offset + WAL_REC_HEADER;
	if (base + rec->len <= f->len) {
		FUZZ_CHECK(memcmp(p, f->bytes + base, rec->len) == 0);
	} else {
		for (uint32_t k = 0; k < rec->len; k++)
			FUZZ_CHECK(p[k] == byte_at(f, base + k));
	}

	/* what wal_open's replay does with an event record */
	struct collect_event_view v;
	if (rec->type == WAL_REC_EVENT && collect_event_decode(rec->payload, rec->len, &v) == 0) {
		const char *end = (const char *)rec->payload + rec->len;
		FUZZ_CHECK(v.message_id_len >= 1 && v.message_id_len <= COLLECT_MSGID_MAX);
		FUZZ_CHECK(v.message_id + v.message_id_len <= v.json);
		FUZZ_CHECK(v.json + v.json_len == end);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned control = data[0];
	bool header = control & 1, split = control & 2, fix_crc = control & 4;
	bool zero_tail = (control & 24) == 24;
	uint64_t from = control & 32 ? 1 + 2 * (uint64_t)(control >> 6) : 0;
	data++;
	size--;

	struct file files[2] = {{0}};
	size_t nfiles = split ? 2 : 1;
	size_t first = split ? size / 2 : size;
	write_file(path1, &files[0], header, fix_crc, data, first, zero_tail && !split);
	if (split)
		write_file(path2, &files[1], header, fix_crc, data + first, size - first,
			   zero_tail);
	else
		unlink(path2);

	struct wal_reader *r = NULL;
	FUZZ_CHECK(wal_reader_open_from(&r, dir, from) == 0 && r != NULL);
	size_t nwant = 0, got = 0;
	uint64_t want_damaged = 0;
	struct want *want = model(files, nfiles, from, &nwant, &want_damaged);
	struct ingest *g = NULL; /* made on the first record: its table is 2 MiB */
	struct wal_record rec;
	uint64_t prev_lsn = 0;
	int rc;
	while ((rc = wal_reader_next(r, &rec)) == 1) {
		check_record(files, nfiles, &rec, prev_lsn);
		FUZZ_CHECK(got < nwant);
		const struct want *w = &want[got++];
		FUZZ_CHECK(rec.lsn == w->lsn && rec.offset == w->offset && rec.len == w->len &&
			   rec.file_seq == w->seq && rec.type == w->type);
		prev_lsn = rec.lsn;
		if (!g)
			g = ingest_new(24 * 3600 * 1000);
		FUZZ_CHECK(ingest_replay(g, &rec) == 0);
	}
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(got == nwant);
	FUZZ_CHECK(wal_reader_damaged_files(r) == want_damaged);
	/* records below `from` are read (so counted as last) but not returned */
	FUZZ_CHECK(from > 1 ? wal_reader_last_lsn(r) >= prev_lsn
			    : wal_reader_last_lsn(r) == prev_lsn);
	FUZZ_CHECK(wal_reader_end_lsn(r) >= wal_reader_last_lsn(r));
	const char *damage = wal_reader_damage(r);
	FUZZ_CHECK((damage != NULL) == (wal_reader_damaged_files(r) > 0));
	if (damage)
		FUZZ_CHECK(strlen(damage) > 0 && damage[strlen(damage) - 1] == '\n');
	/* reading past the end stays at the end */
	FUZZ_CHECK(wal_reader_next(r, &rec) == 0);
	wal_reader_free(r);
	ingest_free(g);
	free(want);
	free(files[0].bytes);
	free(files[1].bytes);
	return 0;
}
