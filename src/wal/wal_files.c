/*
 * wal_files.c - the log's files on disk: names, the listing, file headers,
 * and which closed files an LSN covers (the removal rule).
 *
 * Why a file's records can be bounded without reading it: LSNs increase over
 * the whole log and every file header holds the first LSN of its file, so
 * every record of a file is below the first LSN of any later file with a
 * valid header. A file whose only bound is its own header (the newest) is
 * never covered.
 */
#include "wal/wal_int.h"
#include "base/td.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int wal_list_files(const char *dir, uint32_t **seqs, size_t *n)
{
	DIR *d = opendir(dir);
	*seqs = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 : td_from_errno(errno);
	size_t cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *name = e->d_name;
		/* exactly 8 lowercase hex digits + ".wal", as wal_file_path writes */
		if (strlen(name) != 12 || strcmp(name + 8, ".wal") != 0)
			continue;
		uint32_t v = 0;
		bool ok = true;
		for (int k = 0; k < 8 && ok; k++) {
			char c = name[k];
			if (c >= '0' && c <= '9')
				v = v << 4 | (uint32_t)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v = v << 4 | (uint32_t)(c - 'a' + 10);
			else
				ok = false;
		}
		if (!ok || v == 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*seqs = td_realloc(*seqs, cap * sizeof(**seqs));
		}
		(*seqs)[(*n)++] = v;
	}
	closedir(d);
	if (*n)
		qsort(*seqs, *n, sizeof(**seqs), cmp_u32);
	return 0;
}

void wal_file_path(char *out, size_t cap, const char *dir, uint32_t seq)
{
	snprintf(out, cap, "%s/%08x.wal", dir, seq);
}

int wal_read_file_header(const char *dir, uint32_t seq, uint64_t *first_lsn)
{
	char path[4096];
	unsigned char hdr[WAL_FILE_HEADER];
	wal_file_path(path, sizeof(path), dir, seq);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? TD_ENOTFOUND : td_from_errno(errno);
	ssize_t got = pread(fd, hdr, sizeof(hdr), 0);
	int rc = got < 0 ? td_from_errno(errno) : 0;
	close(fd);
	if (rc)
		return rc;
	if (got != (ssize_t)sizeof(hdr) || wal_check_file_header(hdr) != 0)
		return TD_ECORRUPT;
	*first_lsn = wal_get64(hdr + 16);
	return 0;
}

bool wal_next_first_lsn(const char *dir, const uint32_t *seqs, size_t n, size_t from,
			uint64_t *first_lsn, size_t *at)
{
	for (size_t j = from; j < n; j++) {
		/* a file gone, empty or damaged says nothing: look further */
		if (wal_read_file_header(dir, seqs[j], first_lsn) == 0) {
			*at = j;
			return true;
		}
	}
	return false;
}

int wal_dir_covered(const char *dir, uint32_t cur_seq, uint64_t lsn, bool remove, uint64_t *files,
		    uint64_t *bytes)
{
	uint32_t *seqs = NULL;
	size_t n = 0, bound_at = 0;
	uint64_t bound = 0;
	bool have = false;
	*files = 0;
	*bytes = 0;
	int rc = wal_list_files(dir, &seqs, &n);
	for (size_t i = 0; !rc && i < n && seqs[i] < cur_seq; i++) {
		if (!have || bound_at <= i)
			have = wal_next_first_lsn(dir, seqs, n, i + 1, &bound, &bound_at);
		/* every record of seqs[i] is below `bound`: covered if bound - 1 <= lsn */
		if (!have || bound == 0 || bound - 1 > lsn)
			break;
		char path[4096];
		struct stat st;
		wal_file_path(path, sizeof(path), dir, seqs[i]);
		if (stat(path, &st) != 0) {
			if (errno != ENOENT)
				rc = td_from_errno(errno);
			continue;
		}
		if (remove && unlink(path) != 0) {
			if (errno != ENOENT)
				rc = td_from_errno(errno);
			continue;
		}
		(*files)++;
		*bytes += (uint64_t)st.st_size;
	}
	free(seqs);
	if (remove && *files) {
		int frc = td_fsync_dir(dir);
		if (!rc)
			rc = frc;
	}
	return rc;
}
