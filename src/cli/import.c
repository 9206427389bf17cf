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

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: tandem import FILE.ndjson [--data DIR] [--source NAME]\n"
    "       tandem import costs FILE.csv [--data DIR]   (advertising costs; --help)\n"
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

/*
 * The file is cut into chunks of about 1 MiB at line ends. Worker threads
 * (one per core) parse and validate chunks in parallel; chunks are appended
 * to the WAL strictly in file order (each waits for its turn), so the log
 * holds the file's events in the file's order and "first copy wins" dedupe
 * means the first line in the file.
 */
#define CHUNK_BYTES (1u << 20)
#define MAX_LINE    (4u << 20)

struct import_state {
	const char *file, *data;
	const char *source; /* its name, for the reject file */
	const char *map;
	size_t size;
	struct ingest *ing;
	struct wal *wal;
	struct collect_limits lim;
	struct collect_origin origin;
	bool show;
	uint64_t t0, next_tick;

	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t turn;
	size_t pos;	      /* next chunk starts here */
	size_t line;	      /* lines before `pos` */
	uint64_t next_take;   /* sequence number of the next chunk handed out */
	uint64_t next_submit; /* sequence number whose turn it is to append */
	int error;	      /* first fatal error; stops everyone */
	char reject_path[4096];
	FILE *rejects;
	size_t accepted, duplicates, rejected, lines_done;
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
	int baselen = (int)TD_MIN(strlen(base), 100);
	const char *dot = strrchr(base, '.');
	if (dot && dot > base && dot - base < baselen)
		baselen = (int)(dot - base);
	/* 2026-11-22T16:05:25 -> 20261122T160525 */
	char stamp[20];
	snprintf(stamp, sizeof(stamp), "%.4s%.2s%.2sT%.2s%.2s%.2s", ts, ts + 5, ts + 8, ts + 11,
		 ts + 14, ts + 17);
	snprintf(st->reject_path, sizeof(st->reject_path), "%s/quarantine", st->data);
	mkdir(st->reject_path, 0700);
	snprintf(st->reject_path, sizeof(st->reject_path), "%s/quarantine/import-%s-%.*s.ndjson",
		 st->data, stamp, baselen, base);
	st->rejects = fopen(st->reject_path, "w");
	if (!st->rejects) {
		fprintf(stderr, "tandem import: cannot write %s: %s\n", st->reject_path,
			strerror(errno));
		return 1;
	}
	return 0;
}

/* Called in file order with st->mu held. */
static int write_rejects(struct import_state *st, const struct collect_batch *b)
{
	if (b->nrejects == 0)
		return 0;
	if (open_rejects(st))
		return 1;
	struct td_buf o;
	td_buf_init(&o, SIZE_MAX / 2);
	/* the quarantine's fields (the data health page reads both), plus the line */
	char at[TD_ISO8601_LEN];
	td_time_format(td_now_ms(), at);
	for (size_t i = 0; i < b->nrejects; i++) {
		const struct collect_reject *r = &b->rejects[i];
		td_buf_printf(&o, "{\"receivedAt\":\"%s\",\"source\":", at);
		td_buf_json_str(&o, st->source);
		td_buf_printf(&o,
			      ",\"endpoint\":\"import\",\"line\":%d,\"reason\":\"%s\",\"field\":",
			      r->index + 1, collect_reason_code(r->reason));
		td_buf_json_str(&o, r->field);
		td_buf_printf(&o, ",\"error\":");
		td_buf_json_str(&o, r->error);
		td_buf_printf(&o, ",\"raw\":");
		td_buf_json_str(&o, r->raw ? r->raw : "");
		td_buf_printf(&o, "}\n");
	}
	bool ok = fwrite(o.data, 1, o.len, st->rejects) == o.len;
	td_buf_release(&o);
	st->rejected += b->nrejects;
	if (!ok)
		fprintf(stderr, "tandem import: cannot write %s: %s\n", st->reject_path,
			strerror(errno));
	return ok ? 0 : 1;
}

/* Appends a prepared chunk to the WAL (st->mu held), waiting when its queue
 * is full. */
static int append_chunk(struct import_state *st, const struct collect_batch *b)
{
	struct collect_batch view = *b;
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
	return 0;
}

static void progress(struct import_state *st, size_t pos, bool done)
{
	double secs = (double)(td_mono_ns() - st->t0) / 1e9;
	double pct = st->size ? 100.0 * (double)pos / (double)st->size : 100.0;
	fprintf(stderr, "\rimporting %s: %5.1f%%  %zu lines  %.0f lines/s   %s", st->file, pct,
		st->lines_done, secs > 0 ? (double)st->lines_done / secs : 0.0, done ? "\n" : "");
}

/* Parses the lines of [start, end) (first line number first_line) into b. */
static void parse_chunk(struct import_state *st, size_t start, size_t end, size_t first_line,
			char *line, struct collect_batch *b)
{
	size_t pos = start, lineno = first_line;
	while (pos < end) {
		const char *text = st->map + pos;
		const char *nl = memchr(text, '\n', end - pos);
		size_t len = nl ? (size_t)(nl - text) : end - pos;
		pos += len + 1;
		lineno++;
		if (len && text[len - 1] == '\r')
			len--;
		size_t blank = 0;
		while (blank < len && (text[blank] == ' ' || text[blank] == '\t'))
			blank++;
		if (blank == len)
			continue;
		int index = (int)lineno - 1;
		if (len > MAX_LINE) {
			collect_batch_add_reject(b, index, COLLECT_R_EVENT_TOO_LARGE,
						 "the line is longer than 4 MiB", text, 1024);
			continue;
		}
		memcpy(line, text, len);
		line[len] = '\0';
		size_t before = b->nrejects;
		collect_prepare_line(line, len, index, &st->origin, &st->lim, b);
		if (b->nrejects > before) { /* keep the line as it was */
			free(b->rejects[before].raw);
			b->rejects[before].raw = td_strndup(text, len);
		}
	}
}

static void *worker(void *arg)
{
	struct import_state *st = arg;
	char *line = td_malloc(MAX_LINE + 1);
	struct collect_batch b;
	collect_batch_init(&b);
	pthread_mutex_lock(&st->mu);
	while (!st->error && st->pos < st->size) {
		/* take the next chunk, ending at a line end */
		size_t start = st->pos, end = TD_MIN(st->size, start + CHUNK_BYTES);
		if (end < st->size) {
			const char *nl = memchr(st->map + end, '\n', st->size - end);
			end = nl ? (size_t)(nl - st->map) + 1 : st->size;
		}
		size_t first_line = st->line, n = 0;
		for (const char *p = st->map + start, *e = st->map + end;
		     (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
			n++;
		if (end == st->size && end > start && st->map[end - 1] != '\n')
			n++; /* last line without a newline */
		st->line += n;
		st->pos = end;
		uint64_t seq = st->next_take++;
		pthread_mutex_unlock(&st->mu);

		parse_chunk(st, start, end, first_line, line, &b);

		pthread_mutex_lock(&st->mu);
		while (st->next_submit != seq && !st->error)
			pthread_cond_wait(&st->turn, &st->mu);
		if (!st->error && (write_rejects(st, &b) || append_chunk(st, &b)))
			st->error = 1;
		st->lines_done += n;
		st->next_submit++;
		pthread_cond_broadcast(&st->turn);
		if (st->show && td_mono_ns() >= st->next_tick) {
			progress(st, end, false);
			st->next_tick = td_mono_ns() + 200000000u;
		}
		collect_batch_reset(&b);
	}
	pthread_mutex_unlock(&st->mu);
	collect_batch_release(&b);
	free(line);
	return NULL;
}

static int run(struct import_state *st)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	size_t nthreads = ncpu > 0 ? (size_t)TD_MIN(ncpu, 16) : 1;
	pthread_t tids[16];
	st->t0 = td_mono_ns();
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->turn, NULL);
	size_t started = 0;
	for (; started < nthreads; started++)
		if (pthread_create(&tids[started], NULL, worker, st))
			break;
	if (started == 0)
		worker(st);
	for (size_t i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	int rc = st->error;
	if (!rc && st->last_lsn) {
		int w = wal_wait(st->wal, st->last_lsn);
		if (w) {
			fprintf(stderr, "tandem import: could not make the import durable: %s\n",
				td_strerror(w));
			rc = 1;
		}
	}
	if (st->show)
		progress(st, st->size, true);
	pthread_cond_destroy(&st->turn);
	pthread_mutex_destroy(&st->mu);
	return rc;
}

int cmd_import(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "costs"))
		return cmd_import_costs(argc - 1, argv + 1);
	const char *data = CLI_DEFAULT_DATA, *source = NULL, *file = NULL;
	bool quiet = false;
	const struct cli_option opts[] = {{"--data", &data, NULL},
					  {"--source", &source, NULL},
					  {"--quiet", NULL, &quiet},
					  {NULL}};
	int prc = cli_parse(argc, argv, "import", usage, opts, &file, 1);
	if (prc >= 0)
		return prc;
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
	struct meta *meta = NULL;
	struct meta_source src;
	struct cli_pipeline pipe = {0};
	struct enrich *enr = NULL;
	rc = 1;
	if (meta_open(&meta, data))
		goto out;
	if (cli_enrich_load(&enr, meta, "import", data))
		goto out;
	int err = meta_source_by_name(meta, source ? source : "import", &src);
	if (err == TD_ENOTFOUND && !source)
		err = meta_source_create(meta, "import", &src);
	if (err) {
		if (err == TD_ENOTFOUND)
			fprintf(
			    stderr,
			    "tandem import: no source named '%s' (create it with 'tandem source "
			    "create %s')\n",
			    source, source);
		else
			fprintf(stderr, "tandem import: cannot look up the source: %s\n",
				td_strerror(err));
		goto out;
	}
	struct wal_options wo = {.max_pending_bytes = 256u << 20};
	if (cli_pipeline_open(&pipe, "import", data, meta, &wo, 7LL * 86400 * 1000,
			      enr ? enrich_session_gap_ms(enr) : 0))
		goto out;
	st.ing = pipe.ing;
	st.wal = pipe.wal;
	st.origin.source_id = src.id;
	st.source = src.name;
	st.origin.received_ms = td_now_ms();
	st.origin.enrich = enr;
	st.origin.ip_mode = enrich_ip_mode_for(enr, src.name);

	const char *map = NULL;
	if (sb.st_size > 0) {
		map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			fprintf(stderr, "tandem import: cannot map %s: %s\n", file,
				strerror(errno));
			goto out;
		}
		madvise((void *)map, (size_t)sb.st_size, MADV_SEQUENTIAL);
	}
	st.map = map;
	st.size = (size_t)sb.st_size;
	st.show = !quiet && isatty(STDERR_FILENO);
	rc = run(&st);
	if (map)
		munmap((void *)map, (size_t)sb.st_size);
	printf("imported %s: %zu accepted, %zu duplicates, %zu rejected\n", file, st.accepted,
	       st.duplicates, st.rejected);
	if (st.rejects)
		printf("rejects written to %s\n", st.reject_path);
out:
	if (st.rejects && fclose(st.rejects) != 0)
		fprintf(stderr, "tandem import: error writing %s\n", st.reject_path);
	cli_pipeline_close(&pipe, true);
	enrich_free(enr);
	meta_close(meta);
	close(fd);
	return rc;
}
