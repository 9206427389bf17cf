/*
 * costs.c - `tandem import costs FILE.csv`: advertising costs per day,
 * source, medium and campaign into meta.db, for ROI and ROAS in attribution
 * and trends queries (docs/attribution.md, "Costs"). Safe while a server runs
 * on the same directory: meta.db is SQLite, shared between processes.
 */
#include "cli/cli.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/td.h"
#include "meta/meta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: tandem import costs FILE.csv [--data DIR]\n"
    "\n"
    "Imports advertising costs: a CSV file whose header names the columns\n"
    "date,source,medium,campaign,cost,currency (any order), one line per day and\n"
    "source / medium / campaign, e.g.\n"
    "  date,source,medium,campaign,cost,currency\n"
    "  2024-03-01,google,cpc,spring_sale,1250.50,EUR\n"
    "Importing a day, source, medium and campaign again replaces its cost. Valid\n"
    "lines are kept; every invalid line is reported with its number, the problem and\n"
    "how to fix it, and the exit status is then 1. '-' reads the file from stdin.\n"
    "Attribution and trends queries join the costs (see docs/attribution.md).\n"
    "\n"
    "  --data DIR      data directory (default ./" CLI_DEFAULT_DATA ")\n";

#define COSTS_FILE_MAX (256u << 20)

/* Prints the rows' span and total per currency. */
static void summary(const char *file, const struct meta_cost_batch *b)
{
	printf("imported %zu cost row%s from %s", b->n, b->n == 1 ? "" : "s", file);
	if (b->n) {
		const char *first = b->rows[0].date, *last = b->rows[0].date;
		for (size_t i = 1; i < b->n; i++) {
			if (strcmp(b->rows[i].date, first) < 0)
				first = b->rows[i].date;
			if (strcmp(b->rows[i].date, last) > 0)
				last = b->rows[i].date;
		}
		printf(" (%s to %s;", first, last);
		/* per currency, in the order they first appear */
		for (size_t i = 0; i < b->n; i++) {
			bool seen = false;
			for (size_t j = 0; j < i && !seen; j++)
				seen = !strcmp(b->rows[j].currency, b->rows[i].currency);
			if (seen)
				continue;
			double sum = 0;
			for (size_t j = i; j < b->n; j++)
				if (!strcmp(b->rows[j].currency, b->rows[i].currency))
					sum += b->rows[j].cost;
			printf(" %.2f %s", sum, b->rows[i].currency);
		}
		printf(")");
	}
	printf("; %zu line%s rejected\n", b->rejected, b->rejected == 1 ? "" : "s");
}

int cmd_import_costs(int argc, char **argv)
{
	const char *data = CLI_DEFAULT_DATA, *file = NULL;
	bool dash = false;
	const struct cli_option opts[] = {{"--data", &data, NULL}, {"-", NULL, &dash}, {NULL}};
	int rc = cli_parse(argc, argv, "import costs", usage, opts, &file, 1);
	if (rc >= 0)
		return rc;
	if (!!file + dash != 1) {
		fputs(usage, stderr);
		return 2;
	}
	if (dash)
		file = "-";
	td_log_quiet = true; /* a schema migration's note is not this command's output */
	struct td_buf text;
	td_buf_init(&text, COSTS_FILE_MAX);
	if (cli_read_all("import costs", "", file, &text)) {
		td_buf_release(&text);
		return 1;
	}
	struct meta_cost_batch b;
	meta_cost_batch_init(&b);
	char err[512];
	rc = meta_costs_parse_csv(text.data ? text.data : "", text.len, &b, err, sizeof(err));
	td_buf_release(&text);
	if (rc) {
		fprintf(stderr, "tandem import costs: %s: %s; nothing was imported\n", file, err);
		meta_cost_batch_release(&b);
		return 1;
	}
	for (size_t i = 0; i < b.nerrors; i++)
		fprintf(stderr, "tandem import costs: %s: %s\n", file, b.errors[i]);
	if (b.rejected > b.nerrors)
		fprintf(stderr, "tandem import costs: %s: ... and %zu more rejected lines\n", file,
			b.rejected - b.nerrors);
	struct meta *m = NULL;
	if (cli_data_dir(data) || meta_open(&m, data)) {
		fprintf(stderr,
			"tandem import costs: cannot open %s/meta.db; nothing was imported\n",
			data);
		meta_cost_batch_release(&b);
		return 1;
	}
	rc = b.n ? meta_costs_put(m, b.rows, b.n) : 0;
	meta_close(m);
	if (rc) {
		fprintf(stderr,
			"tandem import costs: cannot store the costs: %s; nothing was "
			"imported\n",
			td_strerror(rc));
		meta_cost_batch_release(&b);
		return 1;
	}
	summary(file, &b);
	rc = b.rejected ? 1 : 0;
	meta_cost_batch_release(&b);
	return rc;
}
