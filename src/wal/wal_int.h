/*
 * wal_int.h - helpers shared by the WAL's writer and reader (not public).
 */
#ifndef TD_WAL_WAL_INT_H
#define TD_WAL_WAL_INT_H

#include "wal/wal.h"

#include <string.h>

static inline uint32_t wal_get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t wal_get64(const unsigned char *p)
{
	return (uint64_t)wal_get32(p) | (uint64_t)wal_get32(p + 4) << 32;
}

static inline void wal_put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static inline void wal_put64(unsigned char *p, uint64_t v)
{
	wal_put32(p, (uint32_t)v);
	wal_put32(p + 4, (uint32_t)(v >> 32));
}

extern const unsigned char wal_magic[8];

void wal_make_file_header(unsigned char hdr[WAL_FILE_HEADER], uint64_t first_lsn);
int wal_check_file_header(const unsigned char hdr[WAL_FILE_HEADER]);
/* wal_files.c: the files of DIR */
int wal_list_files(const char *dir, uint32_t **seqs, size_t *n);
void wal_file_path(char *out, size_t cap, const char *dir, uint32_t seq);
/* 0 and *first_lsn; TD_ENOTFOUND (gone), TD_ECORRUPT (empty, short, bad
 * check) or an I/O error. */
int wal_read_file_header(const char *dir, uint32_t seq, uint64_t *first_lsn);
/* The first LSN of the earliest of the files seqs[from..n) with a valid
 * header (every record of the files before it is below it), its index in *at;
 * false if none has one. */
bool wal_next_first_lsn(const char *dir, const uint32_t *seqs, size_t n, size_t from,
			uint64_t *first_lsn, size_t *at);
/* Closed files (seq < cur_seq) whose every record is <= lsn, oldest first up
 * to the first that is not: counted in *files / *bytes, and unlinked (then
 * the directory fsync'd) if remove. */
int wal_dir_covered(const char *dir, uint32_t cur_seq, uint64_t lsn, bool remove, uint64_t *files,
		    uint64_t *bytes);

/* The last LSN the reader returned or skipped. */
uint64_t wal_reader_last_lsn(const struct wal_reader *r);
/* Where the log ends as far as the reader saw: the higher of the last record
 * and (first LSN - 1) of every file header it read or skipped by, so that an
 * empty newest file, or skipped files, still say where LSNs stand. */
uint64_t wal_reader_end_lsn(const struct wal_reader *r);
/* Files not read at all because wal_reader_open_from's LSN covers them. */
uint64_t wal_reader_skipped_files(const struct wal_reader *r);

#endif
