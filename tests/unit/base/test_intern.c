/*
 * test_intern.c - the string -> dense id table: ids in insertion order,
 * lookups across growth and clear, strings that share a hash prefix.
 */
#include "base/intern.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

Test(intern, ids_are_dense_and_stable_across_growth)
{
	struct intern t;
	intern_init(&t);
	char s[32];
	for (uint32_t i = 0; i < 100000; i++) {
		int n = snprintf(s, sizeof(s), "value-%u", i);
		cr_assert_eq(intern_id(&t, s, (size_t)n), i);
	}
	cr_assert_eq(t.n, 100000);
	for (uint32_t i = 0; i < 100000; i += 7) {
		int n = snprintf(s, sizeof(s), "value-%u", i);
		cr_assert_eq(intern_id(&t, s, (size_t)n), i, "again: %s", s);
		cr_assert_eq(intern_find(&t, s, (size_t)n), i);
		cr_assert_eq(intern_len(&t, i), (uint32_t)n);
		cr_assert_str_eq(intern_str(&t, i), s);
	}
	cr_assert_eq(intern_find(&t, "value-100000", 12), UINT32_MAX);
	intern_release(&t);
}

Test(intern, empty_prefixes_and_embedded_nul_are_distinct)
{
	struct intern t;
	intern_init(&t);
	cr_assert_eq(intern_find(&t, "a", 1), UINT32_MAX, "an empty table finds nothing");
	cr_assert_eq(intern_id(&t, "", 0), 0);
	cr_assert_eq(intern_id(&t, "a", 1), 1);
	cr_assert_eq(intern_id(&t, "a\0b", 3), 2);
	cr_assert_eq(intern_id(&t, "ab", 2), 3);
	cr_assert_eq(intern_id(&t, "a", 1), 1);
	cr_assert_eq(intern_id(&t, "", 0), 0);
	cr_assert_eq(intern_len(&t, 2), 3);
	cr_assert_eq(memcmp(intern_str(&t, 2), "a\0b", 3), 0);
	intern_release(&t);
}

Test(intern, clear_keeps_memory_and_starts_ids_over)
{
	struct intern t;
	intern_init(&t);
	for (int round = 0; round < 3; round++) {
		char s[32];
		for (uint32_t i = 0; i < 5000; i++) {
			int n = snprintf(s, sizeof(s), "r%d-%u", round, i);
			cr_assert_eq(intern_id(&t, s, (size_t)n), i);
		}
		cr_assert_eq(intern_find(&t, "r0-1", 4), round == 0 ? 1 : UINT32_MAX);
		intern_clear(&t);
		cr_assert_eq(t.n, 0);
		cr_assert_eq(intern_find(&t, "r0-1", 4), UINT32_MAX);
	}
	intern_release(&t);
}
