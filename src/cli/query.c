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
#include "meta/meta.h"
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

/* Costs come from DATA/meta.db, opened only when a query asks for them
 * (attribution, trends with "costs"); a directory without meta.db has none. */
struct lazy_costs {
	const char *data;
	struct meta *m;
	struct query_costs inner;
};

static int lazy_load(void *ctx, const char *first_day, const char *last_day,
		     struct query_cost **out, size_t *n, char *err, size_t errcap)
{
	struct lazy_costs *c = ctx;
	*out = NULL;
	*n = 0;
	if (!c->m) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/meta.db", c->data);
		if (access(path, F_OK) != 0)
			return 0;
		if (meta_open(&c->m, c->data)) {
			snprintf(err, errcap, "cannot open %s", path);
			return TD_EDB;
		}
		meta_costs_query_source(c->m, &c->inner);
	}
	return c->inner.load(c->inner.ctx, first_day, last_day, out, n, err, errcap);
}

static void lazy_release(void *ctx, struct query_cost *rows, size_t n)
{
	struct lazy_costs *c = ctx;
	if (rows)
		c->inner.release(c->inner.ctx, rows, n);
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
	struct lazy_costs lc = {.data = data};
	struct query_costs costs = {.ctx = &lc, .load = lazy_load, .release = lazy_release};
	struct query_source src = *store_snap_source(snap);
	src.costs = &costs;
	int rc =
	    query_run_limited(q->data ? q->data : "", q->len, &src, &limits, out, err, sizeof(err));
	store_snap_release(snap);
	meta_close(lc.m);
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
		rc = cli_read_all("query", "the query in", file, &q);
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
