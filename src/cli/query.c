/*
 * query.c - `tandem query`: runs one query document (docs/queries.md) on the
 * data directory and prints the result as JSON, a table or CSV.
 *
 * Safe while a server runs on the same directory: cli_store_open_read()
 * opens the store read-only and replays the WAL records past what its
 * segment files cover into memory, so the answer includes every acknowledged
 * event. Nothing is written.
 */
#include "cli/cli.h"
#include "cli/qformat.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/td.h"
#include "query/query.h"
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Runs the query on a snapshot of the data directory; the result goes to out. */
static int run(const char *data, const struct td_buf *q, size_t max_memory, struct td_buf *out)
{
	struct store *s;
	if (cli_store_open_read(&s, "query", data))
		return 1;
	struct query_limits limits = {.max_memory = max_memory};
	char err[1024];
	struct store_snap *snap = store_snapshot(s);
	int rc = query_run_limited(q->data ? q->data : "", q->len, store_snap_source(snap), &limits,
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
	store_close(s);
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
