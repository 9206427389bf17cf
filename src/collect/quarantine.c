/*
 * quarantine.c - rejected input, kept with its reason so nothing is silently
 * dropped: DATA/quarantine/YYYY-MM-DD.ndjson (UTC day of receipt).
 *
 * Locking: quarantine.mu serializes writers; each record is one write() of a
 * whole line (O_APPEND), so readers never see half a line from us.
 */
#include "collect/collect.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/td.h"
#include "base/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct quarantine {
	pthread_mutex_t mu;
	char *dir;
	int fd;
	int64_t day; /* UTC day number of the open file */
};

int quarantine_open(struct quarantine **out, const char *data_dir)
{
	struct quarantine *q = td_calloc(1, sizeof(*q));
	size_t n = strlen(data_dir) + 16;
	q->dir = td_malloc(n);
	snprintf(q->dir, n, "%s/quarantine", data_dir);
	if (mkdir(q->dir, 0700) && errno != EEXIST) {
		int rc = td_from_errno(errno);
		free(q->dir);
		free(q);
		return rc;
	}
	pthread_mutex_init(&q->mu, NULL);
	q->fd = -1;
	q->day = -1;
	*out = q;
	return 0;
}

void quarantine_close(struct quarantine *q)
{
	if (!q)
		return;
	if (q->fd >= 0) {
		fdatasync(q->fd);
		close(q->fd);
	}
	pthread_mutex_destroy(&q->mu);
	free(q->dir);
	free(q);
}

void quarantine_write(struct quarantine *q, const char *source, const char *endpoint,
		      const struct collect_reject *r, int64_t received_ms)
{
	struct td_buf line;
	char ts[TD_ISO8601_LEN];
	td_buf_init(&line, 1u << 26);
	td_time_format(received_ms, ts);
	td_buf_printf(&line, "{\"receivedAt\":\"%s\",\"source\":", ts);
	td_buf_json_str(&line, source ? source : "");
	td_buf_printf(&line, ",\"endpoint\":");
	td_buf_json_str(&line, endpoint ? endpoint : "");
	td_buf_printf(&line, ",\"index\":%d,\"reason\":\"%s\",\"field\":", r->index,
		      collect_reason_code(r->reason));
	td_buf_json_str(&line, r->field);
	td_buf_printf(&line, ",\"error\":");
	td_buf_json_str(&line, r->error);
	td_buf_printf(&line, ",\"raw\":");
	/* raw is compact JSON text of the item as received; keep it as a string so
	 * even text that is not valid JSON stays readable */
	td_buf_json_str(&line, r->raw ? r->raw : "");
	td_buf_printf(&line, "}\n");

	int64_t day = received_ms / 86400000;
	pthread_mutex_lock(&q->mu);
	if (q->day != day) {
		if (q->fd >= 0)
			close(q->fd);
		char path[4096];
		td_time_format(received_ms, ts);
		snprintf(path, sizeof(path), "%s/%.10s.ndjson", q->dir, ts);
		q->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		q->day = q->fd >= 0 ? day : -1;
	}
	if (q->fd < 0 || write(q->fd, line.data, line.len) != (ssize_t)line.len)
		td_log_error("quarantine: could not record a rejected message (%s): %s",
			     collect_reason_code(r->reason), strerror(errno));
	pthread_mutex_unlock(&q->mu);
	td_buf_release(&line);
}
