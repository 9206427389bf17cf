/*
 * data.c - the data files tandem maintains (data/), embedded into the binary
 * at build time with the assembler's .incbin, NUL-terminated. The path is
 * relative to the repository root, where the build runs; the Makefile makes
 * this object depend on the files.
 */
#include "enrich/enrich.h"

__asm__(".section .rodata\n"
	".global enrich_builtin_referrers\n"
	".type enrich_builtin_referrers, @object\n"
	"enrich_builtin_referrers:\n"
	".incbin \"data/referrers.txt\"\n"
	"enrich_builtin_referrers_end:\n"
	".byte 0\n"
	".previous\n");

extern const char enrich_builtin_referrers_end[];

size_t enrich_builtin_referrers_len(void)
{
	return (size_t)(enrich_builtin_referrers_end - enrich_builtin_referrers);
}
