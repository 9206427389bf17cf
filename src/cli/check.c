/*
 * check.c - `tandem check`: verifies the event store without changing it.
 */
#include "cli/cli.h"
#include "base/buf.h"
#include "store/store.h"

#include <stdio.h>

static const char usage[] =
    "usage: tandem check [--data DIR]\n"
    "\n"
    "Verifies the event store: the manifest, every checksum of every segment file, the\n"
    "order of timestamps, and the person map. Changes nothing; safe while the server\n"
    "runs. Prints one line per problem and a summary; exits 0 when healthy, 1 when\n"
    "problems were found.\n"
    "\n"
    "  --data DIR   data directory (default ./" CLI_DEFAULT_DATA ")\n";

int cmd_check(int argc, char **argv)
{
	const char *data = CLI_DEFAULT_DATA;
	const struct cli_option opts[] = {{"--data", &data, NULL}, {NULL}};
	int prc = cli_parse(argc, argv, "check", usage, opts, NULL, 0);
	if (prc >= 0)
		return prc;
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/events", data);
	struct td_buf report;
	td_buf_init(&report, 64u << 20);
	int problems = store_check(dir, &report);
	fputs(report.data ? report.data : "", stdout);
	td_buf_release(&report);
	return problems != 0;
}
