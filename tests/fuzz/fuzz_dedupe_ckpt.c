/*
 * fuzz_dedupe_ckpt.c - loading a dedupe checkpoint (ingest_checkpoint_load)
 * from arbitrary file contents, and saving what was loaded again.
 *
 * Input: one control byte, then the file contents.
 *   control & 1  write the magic and version 1 over bytes 0..11 (when there
 *                are that many), so the fuzzer spends its time past them
 *   control & 2  set the entry count to what the file size implies
 *   control & 4  fix both checksums (entries, then header), so mutations
 *                reach the values behind them (count, LSN, seconds)
 *
 * The file lives in one temporary directory per process, created at start
 * and removed at exit; each input overwrites it.
 *
 * Invariants checked: the load succeeds exactly when a reference checker
 * written from the byte table in collect.h accepts the file, and fails with
 * TD_ECORRUPT otherwise, leaving the index empty and the LSN untouched; after
 * a load the index holds at most the file's distinct keys and its LSN is the
 * file's; saving the loaded index again gives a file the reference accepts,
 * with the same LSN, whose keys are distinct, all from the input, and
 * include every input key comfortably inside the window; loading that file
 * gives back its LSN.
 */
#include "fuzz.h"

#include "base/crc32c.h"
#include "base/log.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "collect/collect.h"

#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WINDOW_MS (7LL * 86400 * 1000)
#define HDR	  48
#define ENT	  16

static char dir[4096];
static char path[4200], path2[4200], tmp2[4300];

static void remove_dir(void)
{
	unlink(path);
	unlink(path2);
	unlink(tmp2);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	td_log_quiet = true;
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/tandem-fuzz-ckpt.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(dir)) {
		perror("fuzz_dedupe_ckpt: mkdtemp");
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/in.ckpt", dir);
	snprintf(path2, sizeof(path2), "%s/again.ckpt", dir);
	snprintf(tmp2, sizeof(tmp2), "%s.tmp", path2);
	atexit(remove_dir);
	return 0;
}

/* ---- the reference, from the byte table in collect.h ---- */

static uint64_t le(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int k = n - 1; k >= 0; k--)
		v = v << 8 | p[k];
	return v;
}

struct key {
	uint64_t h1;
	uint32_t h2, sec;
};

struct model {
	bool valid;
	uint64_t lsn, count;
	uint32_t window;
	const unsigned char *entries;
};

static struct model check(const unsigned char *p, size_t n)
{
	static const unsigned char magic[8] = {'T', 'D', 'D', 'E', 'D', 'U', 'P', 0x1a};
	struct model m = {0};
	if (n < HDR || memcmp(p, magic, 8) != 0 || le(p + 8, 4) != 1 ||
	    le(p + 44, 4) != td_crc32c(0, p, 44))
		return m;
	m.window = (uint32_t)le(p + 12, 4);
	m.lsn = le(p + 16, 8);
	m.count = le(p + 32, 8);
	m.entries = p + HDR;
	if (m.lsn >= (UINT64_C(1) << 62) || (n - HDR) % ENT != 0 || (n - HDR) / ENT != m.count ||
	    le(p + 40, 4) != td_crc32c(0, p + HDR, n - HDR))
		return m;
	for (uint64_t i = 0; i < m.count; i++)
		if (le(m.entries + i * ENT + 12, 4) < 2)
			return m;
	m.valid = true;
	return m;
}

static struct key key_at(const struct model *m, uint64_t i)
{
	const unsigned char *e = m->entries + i * ENT;
	return (struct key){le(e, 8), (uint32_t)le(e + 8, 4), (uint32_t)le(e + 12, 4)};
}

static bool has_key(const struct model *m, struct key k)
{
	for (uint64_t i = 0; i < m->count; i++) {
		struct key x = key_at(m, i);
		if (x.h1 == k.h1 && x.h2 == k.h2)
			return true;
	}
	return false;
}

static void write_file(const char *p, const unsigned char *data, size_t n)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FUZZ_CHECK(fd >= 0);
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, data + done, n - done);
		FUZZ_CHECK(w > 0);
		done += (size_t)w;
	}
	close(fd);
}

static unsigned char *read_all(const char *p, size_t *n)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	struct stat st;
	FUZZ_CHECK(fstat(fd, &st) == 0);
	*n = (size_t)st.st_size;
	unsigned char *b = malloc(*n ? *n : 1);
	FUZZ_CHECK(b != NULL);
	FUZZ_CHECK(pread(fd, b, *n, 0) == (ssize_t)*n);
	close(fd);
	return b;
}

static void put(unsigned char *p, uint64_t v, int n)
{
	for (int k = 0; k < n; k++)
		p[k] = (unsigned char)(v >> (8 * k));
}

/* Applies the control bits to a copy of the input. */
static unsigned char *shape(unsigned control, const uint8_t *data, size_t n)
{
	static const unsigned char magic[8] = {'T', 'D', 'D', 'E', 'D', 'U', 'P', 0x1a};
	unsigned char *p = malloc(n ? n : 1);
	FUZZ_CHECK(p != NULL);
	memcpy(p, data, n);
	if ((control & 1) && n >= 12) {
		memcpy(p, magic, 8);
		put(p + 8, 1, 4);
	}
	if ((control & 2) && n >= HDR)
		put(p + 32, (n - HDR) / ENT, 8);
	if ((control & 4) && n >= HDR) {
		put(p + 40, td_crc32c(0, p + HDR, n - HDR), 4);
		put(p + 44, td_crc32c(0, p, 44), 4);
	}
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned control = data[0];
	size_t n = size - 1;
	unsigned char *file = shape(control, data + 1, n);
	write_file(path, file, n);
	struct model m = check(file, n);

	struct ingest *g = ingest_new(WINDOW_MS);
	uint64_t lsn = 777;
	int64_t now = td_now_ms();
	int rc = ingest_checkpoint_load(g, path, &lsn);
	FUZZ_CHECK(rc == 0 || rc == TD_ECORRUPT);
	FUZZ_CHECK((rc == 0) == m.valid);
	if (rc) {
		FUZZ_CHECK(ingest_dedupe_size(g) == 0);
		FUZZ_CHECK(lsn == 777);
		ingest_free(g);
		free(file);
		return 0;
	}
	FUZZ_CHECK(lsn == m.lsn);
	FUZZ_CHECK(ingest_dedupe_size(g) <= m.count);

	/* save what was loaded and check the new file */
	FUZZ_CHECK(ingest_checkpoint_save(g, path2, lsn, now) == 0);
	size_t n2;
	unsigned char *again = read_all(path2, &n2);
	struct model m2 = check(again, n2);
	FUZZ_CHECK(m2.valid);
	FUZZ_CHECK(m2.lsn == m.lsn);
	FUZZ_CHECK(m2.window == WINDOW_MS / 1000);
	FUZZ_CHECK(m2.count == ingest_dedupe_size(g));
	uint32_t now_sec = (uint32_t)((now - 1577836800000LL) / 1000 + 2);
	for (uint64_t i = 0; i < m2.count; i++) {
		struct key k = key_at(&m2, i);
		FUZZ_CHECK(has_key(&m, k));
		for (uint64_t j = i + 1; j < m2.count; j++) {
			struct key x = key_at(&m2, j);
			FUZZ_CHECK(x.h1 != k.h1 || x.h2 != k.h2);
		}
	}
	for (uint64_t i = 0; i < m.count; i++) {
		struct key k = key_at(&m, i);
		if ((uint64_t)k.sec + WINDOW_MS / 1000 >= (uint64_t)now_sec + 5)
			FUZZ_CHECK(has_key(&m2, k));
	}

	struct ingest *g2 = ingest_new(WINDOW_MS);
	uint64_t lsn2 = 0;
	FUZZ_CHECK(ingest_checkpoint_load(g2, path2, &lsn2) == 0);
	FUZZ_CHECK(lsn2 == m.lsn);
	FUZZ_CHECK(ingest_dedupe_size(g2) <= m2.count);
	ingest_free(g2);
	ingest_free(g);
	free(again);
	free(file);
	return 0;
}
