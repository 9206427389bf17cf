/*
 * qread.c - reads the quarantine back, newest first, for the dashboard's
 * data health page (GET /api/health/data): the server's daily files and
 * the reject files of `tandem import`. The files are ours (quarantine.c and
 * the import write them) but may be cut short by a crash or edited, so a
 * line that does not parse is skipped, never trusted.
 */
#include "collect/collect.h"
#include "base/td.h"
#include "base/timeutil.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QREAD_MAX_FILES 400 /* a bit over a year of daily files */

/* A quarantine file: a day's (YYYY-MM-DD.ndjson, written by the server) or
 * an import's rejects (import-YYYYMMDDTHHMMSS-NAME.ndjson); key orders them
 * by time, "YYYYMMDDTHHMMSS" (a day's file by its end: its newest lines). */
struct qfile {
	char *name;
	char key[16];
	int64_t start_ms; /* an import file's time (lines that lack one get it) */
};

static bool qfile_parse(const char *n, struct qfile *f)
{
	size_t l = strlen(n);
	int64_t ms;
	if (l == 17 && !strcmp(n + 10, ".ndjson") && !td_time_parse(n, 10, &ms)) {
		snprintf(f->key, sizeof(f->key), "%.4s%.2s%.2sT240000", n, n + 5, n + 8);
		f->start_ms = ms;
		return true;
	}
	if (l > 30 && !strncmp(n, "import-", 7) && n[22] == '-' && !strcmp(n + l - 7, ".ndjson")) {
		char iso[32];
		snprintf(iso, sizeof(iso), "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", n + 7, n + 11, n + 13,
			 n + 16, n + 18, n + 20);
		if (n[15] != 'T' || td_time_parse(iso, strlen(iso), &ms))
			return false;
		snprintf(f->key, sizeof(f->key), "%.15s", n + 7);
		f->start_ms = ms;
		return true;
	}
	return false;
}

static int newest_first(const void *a, const void *b)
{
	const struct qfile *x = a, *y = b;
	int c = strcmp(y->key, x->key);
	return c ? c : strcmp(y->name, x->name);
}

static const char *str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(v) ? v->valuestring : "";
}

/* Calls fn for each line of buf[0..len) from the last, while they are at or
 * after since_ms (a line without receivedAt takes file_ms, or is skipped
 * when that is INT64_MIN). Returns 1 when an older line was met (stop), fn's
 * nonzero return, or 0. */
static int walk_back(char *buf, size_t len, int64_t since_ms, int64_t file_ms,
		     quarantine_read_fn fn, void *ctx)
{
	size_t end = len;
	while (end > 0) {
		size_t start = end;
		while (start > 0 && buf[start - 1] != '\n')
			start--;
		buf[end] = '\0';
		cJSON *o = end > start ? cJSON_ParseWithLength(buf + start, end - start) : NULL;
		int64_t ms = file_ms;
		const char *at = str(o, "receivedAt");
		/* an import's reject file from before its lines had a time: the file's */
		if (o && (at[0] ? !td_time_parse(at, strlen(at), &ms) : file_ms != INT64_MIN)) {
			if (ms < since_ms) {
				cJSON_Delete(o);
				return 1;
			}
			struct quarantine_entry e = {.received_ms = ms,
						     .source = str(o, "source"),
						     .endpoint = str(o, "endpoint"),
						     .reason = str(o, "reason"),
						     .field = str(o, "field"),
						     .error = str(o, "error"),
						     .raw = str(o, "raw")};
			int rc = fn(ctx, &e);
			if (rc) {
				cJSON_Delete(o);
				return rc;
			}
		}
		cJSON_Delete(o);
		end = start ? start - 1 : 0;
	}
	return 0;
}

int quarantine_read_recent(const char *data_dir, int64_t since_ms, size_t max_bytes,
			   quarantine_read_fn fn, void *ctx, bool *partial)
{
	char dir[4096];
	*partial = false;
	snprintf(dir, sizeof(dir), "%s/quarantine", data_dir);
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : td_from_errno(errno);
	struct qfile *files = td_malloc(QREAD_MAX_FILES * sizeof(*files));
	size_t n = 0;
	struct dirent *de;
	/* files of days before since_ms hold nothing newer */
	int64_t day0 = since_ms - ((since_ms % 86400000) + 86400000) % 86400000;
	while ((de = readdir(d))) {
		struct qfile f;
		if (!qfile_parse(de->d_name, &f) || f.start_ms < day0)
			continue;
		if (n == QREAD_MAX_FILES) {
			*partial = true;
			break;
		}
		f.name = td_strdup(de->d_name);
		files[n++] = f;
	}
	closedir(d);
	qsort(files, n, sizeof(files[0]), newest_first);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		bool import = files[i].name[0] == 'i';
		char path[4200];
		snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st)) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		/* the newest max_bytes of the file; a cut first line fails to parse */
		size_t want = (size_t)st.st_size;
		if (want > max_bytes) {
			want = max_bytes;
			*partial = true;
		}
		char *buf = td_malloc(want + 1);
		ssize_t got = pread(fd, buf, want, st.st_size - (off_t)want);
		close(fd);
		/* 1: the rest of this file is older than since_ms; the next file
		 * (an import's rejects of the same day) may still be newer */
		if (got > 0) {
			rc = walk_back(buf, (size_t)got, since_ms,
				       import ? files[i].start_ms : INT64_MIN, fn, ctx);
			if (rc == 1)
				rc = 0;
		}
		free(buf);
		max_bytes -= want;
		if (!max_bytes && i + 1 < n) {
			*partial = true;
			break;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(files[i].name);
	free(files);
	return rc;
}
