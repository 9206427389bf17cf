/*
 * qread.c - reads the quarantine back, newest first, for the dashboard's
 * data health page (GET /api/health/data). The files are ours
 * (quarantine.c writes them) but may be cut short by a crash or edited, so
 * a line that does not parse is skipped, never trusted.
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

static int newest_first(const void *a, const void *b)
{
	return strcmp(*(char *const *)b, *(char *const *)a);
}

static const char *str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(v) ? v->valuestring : "";
}

/* Calls fn for each line of buf[0..len) from the last, while they are at or
 * after since_ms. Returns 1 when an older line was met (stop), fn's nonzero
 * return, or 0. */
static int walk_back(char *buf, size_t len, int64_t since_ms, quarantine_read_fn fn, void *ctx)
{
	size_t end = len;
	while (end > 0) {
		size_t start = end;
		while (start > 0 && buf[start - 1] != '\n')
			start--;
		buf[end] = '\0';
		cJSON *o = end > start ? cJSON_ParseWithLength(buf + start, end - start) : NULL;
		int64_t ms;
		const char *at = str(o, "receivedAt");
		if (o && !td_time_parse(at, strlen(at), &ms)) {
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
	char *names[QREAD_MAX_FILES];
	size_t n = 0;
	struct dirent *de;
	char oldest[TD_ISO8601_LEN];
	td_time_format(since_ms, oldest); /* files of days before it hold nothing newer */
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l != 17 || strcmp(de->d_name + 10, ".ndjson") != 0 ||
		    strncmp(de->d_name, oldest, 10) < 0)
			continue;
		if (n == QREAD_MAX_FILES) {
			*partial = true;
			break;
		}
		names[n++] = td_strdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), newest_first);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
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
		if (got > 0)
			rc = walk_back(buf, (size_t)got, since_ms, fn, ctx);
		free(buf);
		max_bytes -= want;
		if (!max_bytes && i + 1 < n) {
			*partial = true;
			break;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	return rc == 1 ? 0 : rc;
}
