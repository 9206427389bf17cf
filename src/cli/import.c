/*
 * import.c - `tandem import FILE.ndjson`: the collector's validation and WAL
 * path for files (CRM exports, backfills), with progress and a rejects file.
 */
#include "cli/cli.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "collect/collect.h"
#include "meta/meta.h"
#include "wal/wal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: tandem import FILE.ndjson [--data DIR] [--source NAME]\n"
    "\n"
    "Imports Segment messages, one JSON object per line, each with its \"type\"\n"
    "(identify, track, page, screen, group, alias). Every line goes through the same\n"
    "validation, normalization and dedupe (source, messageId) as the HTTP collector and\n"
    "is durable in the write-ahead log when the command ends. Invalid lines are written,\n"
    "with their line number and reason, to a rejects file under DIR/quarantine/.\n"
    "The server must not be running on DIR (stop it, or send the data over HTTP).\n"
    "\n"
    "  --data DIR      data directory (default ./" CLI_DEFAULT_DATA ")\n"
    "  --source NAME   source to import as (default \"import\", created if missing)\n"
    "  --quiet         no progress bar\n";

#define CHUNK_EVENTS 2048
#define MAX_LINE     (4u << 20)

struct import_state {
	const char *file;
	struct ingest *ing;
	struct wal *wal;
	struct collect_batch batch;
	struct collect_limits lim;
	struct collect_origin origin;
	char reject_path[4096];
	FILE *rejects;
	const char *data;
	size_t accepted, duplicates, rejected, lines;
	uint64_t last_lsn;
};

static int open_rejects(struct import_state *st)
{
	if (st->rejects)
		return 0;
	char ts[TD_ISO8601_LEN];
	td_time_format(td_now_ms(), ts);
	const char *base = strrchr(st->file, '/');
	base = base ? base + 1 : st->file;
	/* 2026-11-22T16:05:25 -> 20261122T160525 */
	char stamp[20];
	snprintf(stamp, sizeof(stamp), "%.4s%.2s%.2sT%.2s%.2s%.2s", ts, ts + 5, ts + 8, ts + 11,
		 ts + 14, ts + 17);
	snprintf(st->reject_path, sizeof(st->reject_path), "%s/quarantine", st->data);
	mkdir(st->reject_path, 0700);
	snprintf(st->reject_path, sizeof(st->reject_path), "%s/quarantine/import-%s-%.100s.ndjson",
		 st->data, stamp, base);
	st->rejects = fopen(st->reject_path, "w");
	if (!st->rejects) {
		fprintf(stderr, "tandem import: cannot write %s: %s\n", st->reject_path,
			strerror(errno));
		return 1;
	}
	return 0;
}

static int write_reject(struct import_state *st, size_t line, const char *code, const char *field,
			const char *error, const char *raw, size_t rawlen)
{
	if (open_rejects(st))
		return 1;
	struct td_buf b;
	td_buf_init(&b, SIZE_MAX / 2);
	td_buf_printf(&b, "{\"line\":%zu,\"reason\":\"%s\",\"field\":", line, code);
	td_buf_json_str(&b, field);
	td_buf_printf(&b, ",\"error\":");
	td_buf_json_str(&b, error);
	td_buf_printf(&b, ",\"raw\":");
	char *copy = td_strndup(raw, rawlen);
	td_buf_json_str(&b, copy);
	free(copy);
	td_buf_printf(&b, "}\n");
	fwrite(b.data, 1, b.len, st->rejects);
	td_buf_release(&b);
	st->rejected++;
	return 0;
}

/* Appends the prepared chunk to the WAL, waiting when its queue is full. */
static int flush_chunk(struct import_state *st)
{
	struct collect_batch view = st->batch;
	while (view.n > 0) {
		struct ingest_result res;
		ingest_submit(st->ing, &view, td_now_ms(), &res);
		st->accepted += res.accepted;
		st->duplicates += res.duplicates;
		if (res.wait_lsn > st->last_lsn)
			st->last_lsn = res.wait_lsn;
		size_t done = res.accepted + res.duplicates;
		view.off += done;
		view.len += done;
		view.index += done;
		view.n -= done;
		if (res.error == TD_EFULL) {
			wal_wait(st->wal, st->last_lsn);
			continue;
		}
		if (res.error) {
			fprintf(stderr, "tandem import: the write-ahead log refused events: %s\n",
				td_strerror(res.error));
			return 1;
		}
	}
	collect_batch_reset(&st->batch);
	return 0;
}

static void progress(const struct import_state *st, size_t pos, size_t size, uint64_t t0,
		     bool done)
{
	double secs = (double)(td_mono_ns() - t0) / 1e9;
	double pct = size ? 100.0 * (double)pos / (double)size : 100.0;
	fprintf(stderr, "\rimporting %s: %5.1f%%  %zu lines  %.0f lines/s   %s", st->file, pct,
		st->lines, secs > 0 ? (double)st->lines / secs : 0.0, done ? "\n" : "");
}

static int run(struct import_state *st, const char *map, size_t size, bool show)
{
	uint64_t t0 = td_mono_ns(), next_tick = t0;
	char *line = td_malloc(MAX_LINE + 1);
	size_t pos = 0;
	int rc = 0;
	while (pos < size && !rc) {
		const char *nl = memchr(map + pos, '\n', size - pos);
		size_t end = nl ? (size_t)(nl - map) : size;
		size_t len = end - pos;
		const char *text = map + pos;
		pos = end + 1;
		st->lines++;
		if (len && text[len - 1] == '\r')
			len--;
		size_t blank = 0;
		while (blank < len && (text[blank] == ' ' || text[blank] == '\t'))
			blank++;
		if (blank == len)
			continue;
		if (len > MAX_LINE) {
			rc = write_reject(st, st->lines, collect_reason_code(COLLECT_R_EVENT_TOO_LARGE),
					  "", "the line is longer than 4 MiB", text, 1024);
			continue;
		}
		memcpy(line, text, len);
		line[len] = '\0';
		cJSON *msg;
		char err[200];
		int l, c;
		collect_arena_begin();
		if (collect_parse_json(line, len, &msg, err, sizeof(err), &l, &c)) {
			collect_arena_end();
			rc = write_reject(st, st->lines, "invalid_json", "", err, text, len);
			continue;
		}
		size_t before = st->batch.nrejects;
		collect_prepare_message(msg, (int)st->lines - 1, &st->origin, &st->lim, &st->batch);
		cJSON_Delete(msg);
		collect_arena_end();
		if (st->batch.nrejects > before) {
			const struct collect_reject *r = &st->batch.rejects[before];
			rc = write_reject(st, st->lines, collect_reason_code(r->reason), r->field,
					  r->error, text, len);
		}
		if (st->batch.n >= CHUNK_EVENTS)
			rc = rc ? rc : flush_chunk(st);
		if (show && (st->lines & 1023) == 0 && td_mono_ns() >= next_tick) {
			progress(st, pos, size, t0, false);
			next_tick = td_mono_ns() + 200000000u;
		}
	}
	if (!rc)
		rc = flush_chunk(st);
	if (!rc && st->last_lsn) {
		int w = wal_wait(st->wal, st->last_lsn);
		if (w) {
			fprintf(stderr, "tandem import: could not make the import durable: %s\n",
				td_strerror(w));
			rc = 1;
		}
	}
	if (show)
		progress(st, size, size, t0, true);
	free(line);
	return rc;
}

int cmd_import(int argc, char **argv)
{
	const char *data = CLI_DEFAULT_DATA, *source = NULL, *file = NULL;
	bool quiet = false;
	for (int i = 1; i < argc;) {
		const char *v;
		if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return 0;
		} else if (cli_opt(argc, argv, &i, "--data", &v)) {
			data = v;
		} else if (cli_opt(argc, argv, &i, "--source", &v)) {
			source = v;
		} else if (!strcmp(argv[i], "--quiet")) {
			quiet = true;
			i++;
		} else if (argv[i][0] != '-' && !file) {
			file = argv[i++];
		} else {
			return cli_bad_option("import", argv[i]);
		}
	}
	if (!file) {
		fputs(usage, stderr);
		return 2;
	}
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) != 0) {
		fprintf(stderr, "tandem import: cannot open %s: %s\n", file, strerror(errno));
		return 1;
	}
	int rc = cli_data_dir(data);
	if (!rc)
		rc = cli_lock_data(data);
	if (rc) {
		close(fd);
		return rc;
	}
	td_log_quiet = true;

	struct import_state st;
	memset(&st, 0, sizeof(st));
	st.file = file;
	st.data = data;
	collect_limits_default(&st.lim);
	collect_batch_init(&st.batch);
	struct meta *meta = NULL;
	struct meta_source src;
	char waldir[4096];
	rc = 1;
	if (meta_open(&meta, data))
		goto out;
	int err = meta_source_by_name(meta, source ? source : "import", &src);
	if (err == TD_ENOTFOUND && !source)
		err = meta_source_create(meta, "import", &src);
	if (err) {
		if (err == TD_ENOTFOUND)
			fprintf(stderr,
				"tandem import: no source named '%s' (create it with 'tandem source "
				"create %s')\n",
				source, source);
		else
			fprintf(stderr, "tandem import: cannot look up the source: %s\n",
				td_strerror(err));
		goto out;
	}
	st.ing = ingest_new(7LL * 86400 * 1000);
	snprintf(waldir, sizeof(waldir), "%s/wal", data);
	struct wal_options wo = {.dir = waldir, .max_pending_bytes = 256u << 20};
	err = wal_open(&st.wal, &wo, ingest_replay, st.ing);
	if (err) {
		fprintf(stderr, "tandem import: cannot open the write-ahead log: %s\n",
			td_strerror(err));
		goto out;
	}
	ingest_attach(st.ing, st.wal);
	st.origin.source_id = src.id;
	st.origin.received_ms = td_now_ms();

	const char *map = NULL;
	if (sb.st_size > 0) {
		map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			fprintf(stderr, "tandem import: cannot map %s: %s\n", file, strerror(errno));
			goto out;
		}
		madvise((void *)map, (size_t)sb.st_size, MADV_SEQUENTIAL);
	}
	bool show = !quiet && isatty(STDERR_FILENO);
	rc = run(&st, map, (size_t)sb.st_size, show);
	if (map)
		munmap((void *)map, (size_t)sb.st_size);
	printf("imported %s: %zu accepted, %zu duplicates, %zu rejected\n", file, st.accepted,
	       st.duplicates, st.rejected);
	if (st.rejects)
		printf("rejects written to %s\n", st.reject_path);
out:
	if (st.rejects && fclose(st.rejects) != 0)
		fprintf(stderr, "tandem import: error writing %s\n", st.reject_path);
	wal_close(st.wal);
	ingest_free(st.ing);
	collect_batch_release(&st.batch);
	meta_close(meta);
	close(fd);
	return rc;
}
