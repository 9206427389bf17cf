/*
 * crc32c.h - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of every WAL record. Uses the SSE4.2 crc32 instruction when the CPU
 * has it (the WAL checksums every byte it writes, so this is on the ingest hot
 * path; no Debian package ships CRC-32C) and a table otherwise.
 * td_crc32c(0, "123456789", 9) == 0xE3069283.
 */
#ifndef TD_BASE_CRC32C_H
#define TD_BASE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t td_crc32c(uint32_t crc, const void *data, size_t n);

#endif
