/*
 * fuzz.h - what every libFuzzer harness in tests/fuzz/ shares.
 *
 * A harness checks invariants with FUZZ_CHECK, not assert(): the check must
 * stay on whatever NDEBUG says, and its message names the broken invariant so
 * a crash report is readable without a debugger.
 */
#ifndef TD_TESTS_FUZZ_FUZZ_H
#define TD_TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__,       \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/*
 * Length of the valid UTF-8 sequence at p (n bytes available), 0 if it is not
 * valid RFC 3629 UTF-8: no overlong forms, no UTF-16 surrogates, nothing past
 * U+10FFFF. Written from the code point ranges, independently of src/.
 */
static inline size_t fuzz_utf8_len(const unsigned char *p, size_t n)
{
	static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
	if (n == 0)
		return 0;
	unsigned char c = p[0];
	size_t k;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) {
		k = 1;
		cp = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		k = 2;
		cp = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		k = 3;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n <= k)
		return 0;
	for (size_t j = 1; j <= k; j++) {
		if ((p[j] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[j] & 0x3f);
	}
	if (cp < min_cp[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return k + 1;
}

static inline int fuzz_is_utf8(const unsigned char *p, size_t n)
{
	size_t i = 0, k;
	while (i < n) {
		if ((k = fuzz_utf8_len(p + i, n - i)) == 0)
			return 0;
		i += k;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif
