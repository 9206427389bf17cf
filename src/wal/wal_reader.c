/*
 * wal_reader.c - reads WAL files in order, checking every checksum. Survives
 * arbitrary bytes: lengths are bounded before use and a bad record ends its
 * file, never the process.
 */
#include "wal/wal_int.h"
#include "base/buf.h"
#include "base/crc32c.h"
#include "base/td.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct wal_reader {
	char *dir;
	uint32_t *seqs;
	size_t nseqs, next_file;
	int fd;
	uint32_t cur_seq;
	uint64_t offset;   /* offset of the next record in the current file */
	unsigned char *io; /* read buffer */
	size_t io_len, io_pos;
	uint64_t io_base;   /* file offset of io[0] */
	unsigned char *rec; /* current record (header + payload) */
	size_t rec_cap;
	uint64_t last_lsn;
	uint64_t from_lsn;	 /* records below it are read but not returned */
	uint64_t floor_lsn;	 /* highest (first LSN - 1) of the file headers seen */
	uint64_t first_file_lsn; /* header LSN of the first file opened, 0 before */
	bool skipping;		 /* still looking for files below from_lsn to skip */
	uint64_t skipped_files;
	struct td_buf damage;
	uint64_t damaged_files;
};

#define IO_SIZE (1u << 20)

int wal_reader_open(struct wal_reader **out, const char *dir)
{
	return wal_reader_open_from(out, dir, 0);
}

int wal_reader_open_from(struct wal_reader **out, const char *dir, uint64_t from_lsn)
{
	struct wal_reader *r = td_calloc(1, sizeof(*r));
	r->dir = td_strdup(dir);
	r->from_lsn = from_lsn;
	r->skipping = from_lsn > 1;
	r->fd = -1;
	r->io = td_malloc(IO_SIZE);
	td_buf_init(&r->damage, 1u << 20);
	int rc = wal_list_files(dir, &r->seqs, &r->nseqs);
	if (rc) {
		wal_reader_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

static void note_damage(struct wal_reader *r, const char *what)
{
	char line[256];
	snprintf(line, sizeof(line), "%08x.wal at byte %llu: %s\n", r->cur_seq,
		 (unsigned long long)r->offset, what);
	td_buf_append(&r->damage, line, strlen(line));
	r->damaged_files++;
}

/* Makes n bytes at file offset r->offset available in r->io; returns how many
 * are (less than n at end of file) or < 0 on error. */
static ssize_t fill(struct wal_reader *r, size_t n)
{
	if (r->offset >= r->io_base && r->offset + n <= r->io_base + r->io_len)
		return (ssize_t)n;
	/* refill starting at r->offset */
	size_t keep = 0;
	if (r->offset >= r->io_base && r->offset < r->io_base + r->io_len) {
		keep = (size_t)(r->io_base + r->io_len - r->offset);
		memmove(r->io, r->io + (r->offset - r->io_base), keep);
	} else if (lseek(r->fd, (off_t)r->offset, SEEK_SET) < 0) {
		return td_from_errno(errno);
	}
	r->io_base = r->offset;
	r->io_len = keep;
	while (r->io_len < IO_SIZE) {
		ssize_t got = read(r->fd, r->io + r->io_len, IO_SIZE - r->io_len);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return td_from_errno(errno);
		}
		if (got == 0)
			break;
		r->io_len += (size_t)got;
	}
	return (ssize_t)TD_MIN(n, r->io_len);
}

/* Is every record of the next file below from_lsn? Then it need not be
 * read: the first LSN of a later file bounds its records. Once a file is not
 * covered, no later one is. */
static bool skip_next_file(struct wal_reader *r)
{
	uint64_t bound;
	size_t at;
	if (r->skipping &&
	    wal_next_first_lsn(r->dir, r->seqs, r->nseqs, r->next_file + 1, &bound, &at) &&
	    bound <= r->from_lsn) {
		r->floor_lsn = TD_MAX(r->floor_lsn, bound - 1);
		return true;
	}
	r->skipping = false;
	return false;
}

static int open_next_file(struct wal_reader *r)
{
	char path[4096];
	unsigned char hdr[WAL_FILE_HEADER];
	while (r->next_file < r->nseqs) {
		if (skip_next_file(r)) {
			r->next_file++;
			r->skipped_files++;
			continue;
		}
		r->cur_seq = r->seqs[r->next_file++];
		wal_file_path(path, sizeof(path), r->dir, r->cur_seq);
		r->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (r->fd < 0) {
			if (errno == ENOENT) /* removed since listing */
				continue;
			return td_from_errno(errno);
		}
		r->offset = 0;
		r->io_base = 0;
		r->io_len = 0;
		ssize_t got = fill(r, WAL_FILE_HEADER);
		if (got < 0)
			return (int)got;
		if (got == 0) { /* empty file: created, crash before the header */
			close(r->fd);
			r->fd = -1;
			continue;
		}
		memcpy(hdr, r->io, (size_t)got);
		if ((size_t)got < WAL_FILE_HEADER || wal_check_file_header(hdr) != 0) {
			note_damage(r, "bad file header (not a tandem WAL file, or torn)");
			close(r->fd);
			r->fd = -1;
			continue;
		}
		uint64_t first = wal_get64(hdr + 16);
		if (first > 0)
			r->floor_lsn = TD_MAX(r->floor_lsn, first - 1);
		if (!r->first_file_lsn)
			r->first_file_lsn = first;
		r->offset = WAL_FILE_HEADER;
		return 1;
	}
	return 0;
}

int wal_reader_next(struct wal_reader *r, struct wal_record *rec)
{
	for (;;) {
		if (r->fd < 0) {
			int rc = open_next_file(r);
			if (rc <= 0)
				return rc;
		}
		ssize_t got = fill(r, WAL_REC_HEADER);
		if (got < 0)
			return (int)got;
		if (got == 0) { /* clean end of file */
			close(r->fd);
			r->fd = -1;
			continue;
		}
		const char *bad = NULL;
		uint32_t len = 0;
		if ((size_t)got < WAL_REC_HEADER) {
			bad = "record header cut short (torn write)";
		} else {
			const unsigned char *h = r->io + (r->offset - r->io_base);
			len = wal_get32(h);
			if (len > WAL_MAX_PAYLOAD)
				bad = "record length out of range (corrupt)";
		}
		if (!bad) {
			size_t total = WAL_REC_HEADER + (size_t)len;
			if (total > IO_SIZE) {
				/* large record: read it directly */
				if (r->rec_cap < total) {
					r->rec = td_realloc(r->rec, total);
					r->rec_cap = total;
				}
				ssize_t n = pread(r->fd, r->rec, total, (off_t)r->offset);
				if (n < 0)
					return td_from_errno(errno);
				got = n;
			} else {
				got = fill(r, total);
				if (got < 0)
					return (int)got;
			}
			if ((size_t)got < total) {
				bad = "record cut short (torn write)";
			} else {
				const unsigned char *h =
				    total > IO_SIZE ? r->rec : r->io + (r->offset - r->io_base);
				uint32_t want = wal_get32(h + 4);
				uint32_t have = td_crc32c(0, h + 8, total - 8);
				uint64_t lsn = wal_get64(h + 8);
				if (want != have) {
					bad = "record checksum mismatch (torn or corrupt write)";
				} else if (lsn <= r->last_lsn) {
					bad = "record LSN does not increase (corrupt)";
				} else {
					rec->lsn = lsn;
					rec->type = h[16];
					rec->payload = h + WAL_REC_HEADER;
					rec->len = len;
					rec->file_seq = r->cur_seq;
					rec->offset = r->offset;
					r->last_lsn = lsn;
					r->offset += total;
					if (lsn < r->from_lsn)
						continue; /* covered: checked, not returned */
					return 1;
				}
			}
		}
		note_damage(r, bad);
		close(r->fd);
		r->fd = -1;
	}
}

const char *wal_reader_damage(const struct wal_reader *r)
{
	return r->damage.len ? r->damage.data : NULL;
}

uint64_t wal_reader_damaged_files(const struct wal_reader *r)
{
	return r->damaged_files;
}

uint64_t wal_reader_last_lsn(const struct wal_reader *r)
{
	return r->last_lsn;
}

uint64_t wal_reader_end_lsn(const struct wal_reader *r)
{
	return TD_MAX(r->last_lsn, r->floor_lsn);
}

uint64_t wal_reader_skipped_files(const struct wal_reader *r)
{
	return r->skipped_files;
}

void wal_reader_free(struct wal_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	free(r->dir);
	free(r->seqs);
	free(r->io);
	free(r->rec);
	td_buf_release(&r->damage);
	free(r);
}

uint64_t wal_reader_first_lsn(const struct wal_reader *r)
{
	return r->first_file_lsn;
}
