/*
 * wal_format.c - serializing and checking file and record headers (byte
 * tables in wal.h).
 */
#include "wal/wal_int.h"
#include "base/crc32c.h"
#include "base/td.h"

const unsigned char wal_magic[8] = {'T', 'D', 'W', 'A', 'L', '\r', '\n', 0x1a};

void wal_make_file_header(unsigned char hdr[WAL_FILE_HEADER], uint64_t first_lsn)
{
	memset(hdr, 0, WAL_FILE_HEADER);
	memcpy(hdr, wal_magic, 8);
	wal_put32(hdr + 8, 1);
	wal_put64(hdr + 16, first_lsn);
	wal_put32(hdr + 28, td_crc32c(0, hdr, 28));
}

int wal_check_file_header(const unsigned char hdr[WAL_FILE_HEADER])
{
	if (memcmp(hdr, wal_magic, 8) != 0)
		return TD_ECORRUPT;
	if (wal_get32(hdr + 28) != td_crc32c(0, hdr, 28))
		return TD_ECORRUPT;
	if (wal_get32(hdr + 8) != 1)
		return TD_ECORRUPT;
	return 0;
}

void wal_frame_header(unsigned char hdr[WAL_REC_HEADER], uint64_t lsn, uint8_t type,
		      const void *payload, uint32_t len)
{
	wal_put32(hdr, len);
	wal_put64(hdr + 8, lsn);
	hdr[16] = type;
	uint32_t crc = td_crc32c(0, hdr + 8, 9);
	crc = td_crc32c(crc, payload, len);
	wal_put32(hdr + 4, crc);
}
