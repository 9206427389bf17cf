/*
 * main.c - `tandem`: dispatch to a subcommand.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#define TANDEM_VERSION "0.1.0"

static const char usage[] =
    "tandem " TANDEM_VERSION " - customer data platform\n"
    "\n"
    "usage: tandem COMMAND [options]   ('tandem COMMAND --help' for each)\n"
    "\n"
    "  serve     run the server: Segment-compatible collector, query API, /metrics\n"
    "  import    import a file of Segment messages (NDJSON), or advertising costs (CSV)\n"
    "  export    print stored events (NDJSON)\n"
    "  query     run a query (trends, funnel, retention, paths, events, attribution)\n"
    "  profile   print a customer profile (identifiers, traits, events)\n"
    "  computed-trait  define computed traits of profiles (list, set, delete)\n"
    "  source    create and manage sources and their write keys\n"
    "  token     create and revoke API tokens\n"
    "  identity  show and set how identities are resolved (limits, traits, ...)\n"
    "  enrich    show and set how events are enriched (campaigns, channels, geo, IPs)\n"
    "  check     verify the event store's files (changes nothing)\n"
    "  demo      generate realistic demo data (Segment NDJSON)\n"
    "  version   print the version\n"
    "\n"
    "Commands that work on stored data take --data DIR (default ./" CLI_DEFAULT_DATA ").\n";

int main(int argc, char **argv)
{
	if (argc < 2 || cli_is_help(argv[1])) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *cmd = argv[1];
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
	    {"serve", cmd_serve},	{"import", cmd_import}, {"export", cmd_export},
	    {"query", cmd_query},	{"source", cmd_source}, {"token", cmd_token},
	    {"demo", cmd_demo},		{"check", cmd_check},	{"profile", cmd_profile},
	    {"identity", cmd_identity}, {"enrich", cmd_enrich}, {"computed-trait", cmd_computed}};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(cmd, cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("tandem %s\n", TANDEM_VERSION);
		return 0;
	}
	fprintf(stderr, "tandem: unknown command '%s'\n\n%s", cmd, usage);
	return 2;
}
