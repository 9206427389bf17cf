/*
 * query.c - `tandem query`: runs one query document (docs/queries.md) on the
 * data directory and prints the result as JSON, a table or CSV.
 *
 * Safe while a server runs on the same directory: the store is opened
 * read-only, and the WAL records past what its segment files cover are
 * replayed into its memory, so the answer includes every acknowledged event.
 * Nothing is written.
 */
#include "cli/cli.h"
#include "cli/qformat.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/td.h"
#include "query/query.h"
#include "store/store.h"
#include "wal/wal.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The query language reads at most this much text. */
#define QUERY_TEXT_MAX (1u << 20)
/* Results larger than this are refused (narrow the query). */
#define QUERY_RESULT_MAX (1ull << 30)

static const char usage[] =
    "usage: tandem query [--data DIR] [--format json|table|csv] [--file FILE | QUERY]\n"
    "\n"
    "Runs one query document (see docs/queries.md) on the stored events and prints\n"
    "the result. QUERY is the JSON text itself; '-' or '--file -' reads it from stdin.\n"
    "Safe while 'tandem serve' runs on DIR: the answer includes every acknowledged\n"
    "event, and nothing is written.\n"
    "\n"
    "  --data DIR        data directory (default ./" CLI_DEFAULT_DATA ")\n"
    "  --format FORMAT   json (default), table (aligned columns) or csv (RFC 4180)\n"
    "  --file FILE       read the query from FILE ('-' = stdin)\n"
    "  --max-memory N    memory the query may use (default: no limit; k, m, g suffixes)\n"
    "\n"
    "example:\n"
    "  tandem query --format table '{\"kind\":\"trends\",\"series\":[{\"event\":\"Signed "
    "Up\"}],\n"
    "                \"date_from\":\"2024-03-01\",\"date_to\":\"2024-03-31\"}'\n";

/* Reads the whole query from path ("-" = stdin) into q. Returns 0 or 1 after
 * saying why. */
static int read_query(const char *path, struct td_buf *q)
{
	bool is_stdin = !strcmp(path, "-");
	FILE *f = is_stdin ? stdin : fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "tandem query: cannot read %s: %s\n", path, strerror(errno));
		return 1;
	}
	char chunk[65536];
	size_t got;
	int rc = 0;
	while (!rc && (got = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (td_buf_append(q, chunk, got)) {
			fprintf(stderr, "tandem query: the query in %s is larger than %u bytes\n",
				is_stdin ? "stdin" : path, QUERY_TEXT_MAX);
			rc = 1;
		}
	if (!rc && ferror(f)) {
		fprintf(stderr, "tandem query: cannot read %s: %s\n", path, strerror(errno));
		rc = 1;
	}
	if (!is_stdin)
		fclose(f);
	return rc;
}

/*
 * Applies the WAL records the store's segment files do not cover yet (the
 * server keeps them in memory until it flushes), so the query sees every
 * acknowledged event. A read-only store keeps them in memory only.
 *
 * Damage at the very end of the log is not reported: it is a record a
 * running server is writing right now (or the torn tail of a crash, which the
 * server reports when it starts); no acknowledged event is in it.
 */
static int replay_wal(struct store *s, const char *data)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/wal", data);
	struct wal_reader *r;
	int rc = wal_reader_open(&r, dir);
	if (rc) {
		fprintf(stderr, "tandem query: cannot read %s: %s\n", dir, td_strerror(rc));
		return 1;
	}
	uint64_t flushed = store_flushed_lsn(s), bad = 0, damaged_before_last = 0;
	struct wal_record rec;
	while ((rc = wal_reader_next(r, &rec)) == 1) {
		damaged_before_last = wal_reader_damaged_files(r);
		if (rec.type == WAL_REC_EVENT && rec.lsn > flushed &&
		    store_apply(s, rec.lsn, rec.payload, rec.len) != 0)
			bad++;
	}
	if (rc < 0)
		fprintf(stderr, "tandem query: read error in %s: %s\n", dir, td_strerror(rc));
	if (damaged_before_last)
		fprintf(stderr,
			"tandem query: warning: damage in the log (the rest of each damaged file "
			"is not counted):\n%s",
			wal_reader_damage(r));
	if (bad)
		fprintf(stderr, "tandem query: warning: %llu log records could not be decoded\n",
			(unsigned long long)bad);
	wal_reader_free(r);
	if (rc < 0)
		return 1;
	rc = store_tick(s, true);
	if (rc) {
		fprintf(stderr, "tandem query: cannot prepare the events: %s\n", td_strerror(rc));
		return 1;
	}
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/*
 * Opens DATA/events read-only. A server that has not written its first
 * segment file yet has no MANIFEST, and a read-only store cannot be opened
 * without one: then every event is still in the WAL, and it is replayed into
 * an empty scratch store in a temporary directory (scratch gets its path;
 * empty otherwise), removed when the query is done.
 */
static int open_store(const char *data, struct store **s, char *scratch, size_t cap)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/events", data);
	struct store_options so = {.dir = dir, .read_only = true, .no_merge = true};
	scratch[0] = '\0';
	int rc = store_open(s, &so);
	struct stat st;
	if (rc != TD_ENOTFOUND || stat(data, &st) != 0 || !S_ISDIR(st.st_mode))
		return rc;
	const char *tmp = getenv("TMPDIR");
	snprintf(scratch, cap, "%s/tandem-query-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(scratch)) {
		rc = td_from_errno(errno);
		scratch[0] = '\0';
		return rc;
	}
	so.dir = scratch;
	so.read_only = false;
	return store_open(s, &so);
}

/* Runs the query on a snapshot of the data directory; the result goes to out. */
static int run(const char *data, const struct td_buf *q, size_t max_memory, struct td_buf *out)
{
	char scratch[4096];
	struct store *s = NULL;
	int rc = open_store(data, &s, scratch, sizeof(scratch));
	if (rc == TD_ENOTFOUND) {
		fprintf(stderr, "tandem query: no data directory %s\n", data);
		return 1;
	}
	if (rc) {
		fprintf(stderr, "tandem query: cannot open the event store in %s/events: %s%s\n",
			data, td_strerror(rc),
			rc == TD_ECORRUPT ? " (run 'tandem check' for details)" : "");
		goto out;
	}
	if (replay_wal(s, data)) {
		rc = 1;
		goto out;
	}
	struct query_limits limits = {.max_memory = max_memory};
	char err[1024];
	struct store_snap *snap = store_snapshot(s);
	rc = query_run_limited(q->data ? q->data : "", q->len, store_snap_source(snap), &limits,
			       out, err, sizeof(err));
	store_snap_release(snap);
	if (rc == TD_EINVAL)
		fprintf(stderr, "tandem query: %s\n", err);
	else if (rc == TD_ETOOLARGE)
		fprintf(stderr,
			"tandem query: the result is larger than %llu bytes; narrow the query (a "
			"shorter date range, a coarser interval, a smaller breakdown_limit or "
			"page)\n",
			QUERY_RESULT_MAX);
	else if (rc == TD_ENOMEM && max_memory)
		fprintf(stderr,
			"tandem query: the query needs more than --max-memory %zu bytes; raise it "
			"or narrow the query\n",
			max_memory);
	else if (rc)
		fprintf(stderr, "tandem query: the query failed: %s (%s)\n", td_strerror(rc), err);
out:
	store_close(s);
	if (scratch[0])
		nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return rc ? 1 : 0;
}

int cmd_query(int argc, char **argv)
{
	const char *data = CLI_DEFAULT_DATA, *format = "json", *file = NULL, *mem = NULL;
	const char *text = NULL;
	bool dash = false;
	const struct cli_option opts[] = {{"--data", &data, NULL}, {"--format", &format, NULL},
					  {"--file", &file, NULL}, {"--max-memory", &mem, NULL},
					  {"-", NULL, &dash},	   {NULL}};
	int rc = cli_parse(argc, argv, "query", usage, opts, &text, 1);
	if (rc >= 0)
		return rc;
	td_log_quiet = true; /* stdout is the result; warnings and errors still go to stderr */
	enum qformat fmt;
	if (qformat_from_name(format, &fmt)) {
		fprintf(stderr, "tandem query: --format is json, table or csv, not '%s'\n", format);
		return 2;
	}
	if (!!text + !!file + dash != 1) {
		fprintf(stderr, "tandem query: give the query once: as an argument, with --file "
				"FILE, or '-' for stdin (see 'tandem query --help')\n");
		return 2;
	}
	if (text && text[strspn(text, " \t\r\n")] != '{' && access(text, R_OK) == 0) {
		fprintf(stderr, "tandem query: '%s' is a file; read it with --file %s\n", text,
			text);
		return 2;
	}
	if (dash)
		file = "-";
	size_t max_memory = mem ? (size_t)cli_size("--max-memory", mem) : 0;

	struct td_buf q, out, notes;
	td_buf_init(&q, QUERY_TEXT_MAX);
	td_buf_init(&out, QUERY_RESULT_MAX);
	td_buf_init(&notes, 1u << 20);
	if (text)
		rc = td_buf_append(&q, text, strlen(text)) ? 1 : 0;
	else
		rc = read_query(file, &q);
	if (rc && text)
		fprintf(stderr, "tandem query: the query is larger than %u bytes\n",
			QUERY_TEXT_MAX);
	if (!rc)
		rc = run(data, &q, max_memory, &out);
	if (!rc) {
		struct td_buf text_out;
		char err[256];
		td_buf_init(&text_out, QUERY_RESULT_MAX * 4);
		int frc =
		    qformat_render(out.data, out.len, fmt, &text_out, &notes, err, sizeof(err));
		if (frc) {
			fprintf(stderr, "tandem query: cannot print the result as %s: %s\n", format,
				frc == TD_EPARSE ? err : td_strerror(frc));
			rc = 1;
		} else if (fwrite(text_out.data, 1, text_out.len, stdout) != text_out.len ||
			   fflush(stdout) != 0) {
			fprintf(stderr, "tandem query: cannot write the result: %s\n",
				strerror(errno));
			rc = 1;
		}
		if (notes.len)
			fputs(notes.data, stderr);
		td_buf_release(&text_out);
	}
	td_buf_release(&q);
	td_buf_release(&out);
	td_buf_release(&notes);
	return rc;
}
