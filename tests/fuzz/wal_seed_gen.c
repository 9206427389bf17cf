/*
 * wal_seed_gen.c - writes seed inputs for fuzz_wal_reader into OUTDIR, made by
 * the real writer, so the seeds follow the on-disk format as it is today.
 *
 *   wal_seed_gen OUTDIR
 *
 * The log is written with wal_open/wal_append/wal_close into a temporary
 * directory; its event payloads come from collect_prepare on a small batch
 * (real WAL_REC_EVENT records). Seeds (the first byte is fuzz_wal_reader's
 * control byte):
 *   gen-file      0x00 + the whole file as written
 *   gen-records   0x05 + the records only (the harness adds the file header
 *                 and keeps their checksums right as they are mutated)
 *   gen-torn      0x00 + the file with its last record cut short
 *   gen-two-files 0x03 + two equal halves of records, LSNs 1-2 and 3-4, framed
 *                 with wal_frame_header (the harness splits them in two files)
 */
#include "base/log.h"
#include "base/td.h"
#include "collect/collect.h"
#include "wal/wal_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char batch_body[] =
    "{\"batch\":["
    "{\"type\":\"track\",\"userId\":\"u1\",\"event\":\"Signed Up\",\"messageId\":\"m-1\","
    "\"properties\":{\"plan\":\"pro\"},\"timestamp\":\"2026-01-31T12:00:00.000Z\"},"
    "{\"type\":\"identify\",\"anonymousId\":\"a1\",\"traits\":{\"email\":\"x@example.com\"}},"
    "{\"type\":\"page\",\"userId\":42,\"name\":\"Home\"}],"
    "\"context\":{\"library\":{\"name\":\"analytics.js\"}}}";

static int write_seed(const char *outdir, const char *name, unsigned char control,
		      const unsigned char *data, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	FILE *f = fopen(path, "wb");
	if (!f) {
		perror(path);
		return -1;
	}
	int ok = fputc(control, f) != EOF && fwrite(data, 1, len, f) == len;
	if (fclose(f) != 0 || !ok) {
		fprintf(stderr, "wal_seed_gen: could not write %s\n", path);
		return -1;
	}
	return 0;
}

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	unsigned char *data = NULL;
	size_t cap = 0;
	*len = 0;
	for (;;) {
		if (*len == cap) {
			cap = cap ? cap * 2 : 4096;
			data = td_realloc(data, cap);
		}
		size_t got = fread(data + *len, 1, cap - *len, f);
		if (got == 0)
			break;
		*len += got;
	}
	fclose(f);
	return data;
}

/* Appends the framed record (lsn, type, payload) to out. */
static void frame(struct td_buf *out, uint64_t lsn, const void *payload, uint32_t len)
{
	unsigned char hdr[WAL_REC_HEADER];
	wal_frame_header(hdr, lsn, WAL_REC_EVENT, payload, len);
	td_buf_append(out, hdr, sizeof(hdr));
	td_buf_append(out, payload, len);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: wal_seed_gen OUTDIR\n");
		return 2;
	}
	const char *outdir = argv[1];
	td_log_quiet = true;
	int status = 1;

	char dir[] = "/tmp/tandem-wal-seed.XXXXXX";
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}

	/* real event payloads */
	struct collect_limits lim;
	collect_limits_default(&lim);
	struct collect_origin origin = {.source_id = 1, .received_ms = INT64_C(1795000000000)};
	struct collect_batch b;
	collect_batch_init(&b);
	struct collect_error cerr;
	if (collect_prepare(batch_body, strlen(batch_body), COLLECT_BATCH, &origin, &lim, &b,
			    &cerr) != 0 ||
	    b.n < 2) {
		fprintf(stderr, "wal_seed_gen: the sample batch did not prepare: %s\n",
			cerr.message);
		goto out;
	}

	struct wal *w = NULL;
	struct wal_options opt = {.dir = dir};
	int rc = wal_open(&w, &opt, NULL, NULL);
	if (rc) {
		fprintf(stderr, "wal_seed_gen: wal_open %s: %s\n", dir, td_strerror(rc));
		goto out;
	}
	uint64_t lsn = 0;
	for (size_t i = 0; i < b.n && !rc; i++)
		rc = wal_append(w, WAL_REC_EVENT, b.payloads.data + b.off[i], b.len[i], &lsn);
	if (!rc) /* an empty record and one of another type: the reader takes both */
		rc = wal_append(w, WAL_REC_EVENT, "", 0, &lsn);
	if (!rc)
		rc = wal_append(w, 2, "xyz", 3, &lsn);
	if (!rc)
		rc = wal_wait(w, lsn);
	wal_close(w);
	if (rc) {
		fprintf(stderr, "wal_seed_gen: append: %s\n", td_strerror(rc));
		goto out;
	}

	uint32_t *seqs = NULL;
	size_t nseqs = 0;
	char path[4096];
	if (wal_list_files(dir, &seqs, &nseqs) || nseqs != 1) {
		fprintf(stderr, "wal_seed_gen: expected one file in %s\n", dir);
		free(seqs);
		goto out;
	}
	wal_file_path(path, sizeof(path), dir, seqs[0]);
	free(seqs);
	size_t len = 0;
	unsigned char *file = read_file(path, &len);
	if (!file || len <= WAL_FILE_HEADER + WAL_REC_HEADER + 5) {
		fprintf(stderr, "wal_seed_gen: could not read %s\n", path);
		free(file);
		goto out;
	}

	struct td_buf two;
	td_buf_init(&two, SIZE_MAX / 2);
	for (uint64_t half = 0; half < 2; half++)
		for (uint64_t k = 0; k < 2; k++)
			frame(&two, half * 2 + k + 1, b.payloads.data + b.off[k],
			      (uint32_t)b.len[k]);

	if (!write_seed(outdir, "gen-file", 0x00, file, len) &&
	    !write_seed(outdir, "gen-records", 0x05, file + WAL_FILE_HEADER,
			len - WAL_FILE_HEADER) &&
	    !write_seed(outdir, "gen-torn", 0x00, file, len - 5) &&
	    !write_seed(outdir, "gen-two-files", 0x03, (unsigned char *)two.data, two.len))
		status = 0;
	td_buf_release(&two);
	free(file);
	unlink(path);
out:
	rmdir(dir);
	collect_batch_release(&b);
	return status;
}
