/*
 * test_crc32c.c - CRC-32C (base/crc32c.h).
 *
 * td_crc32c picks the SSE4.2 instruction when the CPU has it and a table
 * otherwise, once per process, with no way to force a path. So the tests
 * compare it with a bit-at-a-time reference written here from the
 * definition: whichever path this machine takes, it must agree with the
 * reference on every length and alignment (the hardware path handles 8-byte
 * words and a byte tail separately, so both matter).
 */
#include "base/crc32c.h"

#include <criterion/criterion.h>
#include <string.h>

/* Reflected CRC-32C, one bit at a time: slow and obviously right. */
static uint32_t ref_crc32c(uint32_t crc, const void *data, size_t n)
{
	const unsigned char *p = data;
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
	}
	return ~crc;
}

static void fill_random(unsigned char *buf, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)(x >> 24);
	}
}

Test(crc32c, known_vectors)
{
	cr_assert_eq(td_crc32c(0, "123456789", 9), 0xE3069283u);
	cr_assert_eq(td_crc32c(0, "", 0), 0);
	cr_assert_eq(td_crc32c(0, NULL, 0), 0);
	cr_assert_eq(td_crc32c(0, "a", 1), 0xC1D04330u);
	/* RFC 3720 (iSCSI) appendix B.4 test patterns */
	unsigned char buf[32];
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(td_crc32c(0, buf, 32), 0x8A9136AAu);
	memset(buf, 0xff, sizeof(buf));
	cr_assert_eq(td_crc32c(0, buf, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (unsigned char)i;
	cr_assert_eq(td_crc32c(0, buf, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (unsigned char)(31 - i);
	cr_assert_eq(td_crc32c(0, buf, 32), 0x113FDB5Cu);
}

Test(crc32c, reference_agrees)
{
	cr_assert_eq(ref_crc32c(0, "123456789", 9), 0xE3069283u);
}

Test(crc32c, matches_reference_at_every_length_and_alignment)
{
	static unsigned char buf[4096 + 16];
	fill_random(buf, sizeof(buf), 42);
	for (size_t align = 0; align < 16; align++) {
		for (size_t n = 0; n <= 300; n++)
			cr_assert_eq(td_crc32c(0, buf + align, n), ref_crc32c(0, buf + align, n),
				     "align %zu, length %zu", align, n);
		cr_assert_eq(td_crc32c(0, buf + align, 4096), ref_crc32c(0, buf + align, 4096),
			     "align %zu, length 4096", align);
	}
}

Test(crc32c, chaining_equals_one_shot)
{
	static unsigned char buf[10000];
	fill_random(buf, sizeof(buf), 7);
	uint32_t whole = td_crc32c(0, buf, sizeof(buf));
	cr_assert_eq(whole, ref_crc32c(0, buf, sizeof(buf)));
	const size_t cuts[] = {0, 1, 3, 7, 8, 9, 17, 64, 4095, 9999, 10000};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		size_t k = cuts[i];
		uint32_t c = td_crc32c(0, buf, k);
		c = td_crc32c(c, buf + k, sizeof(buf) - k);
		cr_assert_eq(c, whole, "split at %zu", k);
	}
	/* many small pieces of uneven sizes */
	uint32_t c = 0;
	size_t off = 0, step = 1;
	while (off < sizeof(buf)) {
		size_t k = step < sizeof(buf) - off ? step : sizeof(buf) - off;
		c = td_crc32c(c, buf + off, k);
		off += k;
		step = step % 13 + 1;
	}
	cr_assert_eq(c, whole);
}

Test(crc32c, detects_single_bit_flips)
{
	unsigned char buf[64];
	fill_random(buf, sizeof(buf), 3);
	uint32_t good = td_crc32c(0, buf, sizeof(buf));
	for (size_t bit = 0; bit < sizeof(buf) * 8; bit++) {
		buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
		cr_assert_neq(td_crc32c(0, buf, sizeof(buf)), good, "bit %zu", bit);
		buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
	}
}
