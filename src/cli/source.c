/*
 * source.c - `tandem source create|list|enable|disable`: write keys.
 */
#include "cli/cli.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "meta/meta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: tandem source create NAME [--data DIR]   create a source, print its write key\n"
    "       tandem source list [--data DIR]          list sources and their write keys\n"
    "       tandem source disable NAME [--data DIR]  refuse its write key (401)\n"
    "       tandem source enable NAME [--data DIR]   accept its write key again\n"
    "\n"
    "A source is one sender of data (a website, an app, a backend) with its own write\n"
    "key; SDKs send the key as HTTP Basic user name. Changes reach a running server\n"
    "within a second. Names: letters, digits, '.', '-', '_'.\n";

int cmd_source(int argc, char **argv)
{
	const char *data = CLI_DEFAULT_DATA, *pos[2] = {NULL, NULL};
	const struct cli_option opts[] = {{"--data", &data, NULL}, {NULL}};
	int rc = cli_parse(argc, argv, "source", usage, opts, pos, 2);
	if (rc >= 0)
		return rc;
	const char *verb = pos[0], *name = pos[1];
	bool list = verb && !strcmp(verb, "list");
	if (!verb || (!list && !name) || (list && name)) {
		fputs(usage, stderr);
		return 2;
	}
	if (strcmp(verb, "create") && !list && strcmp(verb, "enable") && strcmp(verb, "disable")) {
		fprintf(stderr, "tandem source: unknown action '%s'\n", verb);
		fputs(usage, stderr);
		return 2;
	}
	if (cli_data_dir(data))
		return 1;
	struct meta *m;
	if (meta_open(&m, data)) {
		fprintf(stderr, "tandem source: cannot open %s/meta.db\n", data);
		return 1;
	}
	rc = 0;
	struct meta_source s;
	if (!strcmp(verb, "create")) {
		rc = meta_source_create(m, name, &s);
		if (!rc)
			printf("%s\n", s.write_key);
		else if (rc == TD_EEXIST)
			fprintf(stderr, "tandem source: a source named '%s' already exists\n",
				name);
		else if (rc == TD_EINVAL)
			fprintf(stderr,
				"tandem source: '%s' is not a valid name (1-127 letters, "
				"digits, '.', '-', '_')\n",
				name);
	} else if (list) {
		struct meta_source *all;
		size_t n;
		rc = meta_source_list(m, &all, &n);
		if (!rc) {
			printf("%-4s %-24s %-36s %-8s %s\n", "ID", "NAME", "WRITE KEY", "ENABLED",
			       "CREATED");
			for (size_t i = 0; i < n; i++) {
				char ts[TD_ISO8601_LEN];
				td_time_format(all[i].created_ms, ts);
				printf("%-4u %-24s %-36s %-8s %s\n", all[i].id, all[i].name,
				       all[i].write_key, all[i].enabled ? "yes" : "no", ts);
			}
			free(all);
		}
	} else {
		rc = meta_source_set_enabled(m, name, !strcmp(verb, "enable"));
		if (rc == TD_ENOTFOUND)
			fprintf(stderr, "tandem source: no source named '%s'\n", name);
		else if (!rc)
			printf("source %s %sd\n", name, verb);
	}
	if (rc && rc != TD_EEXIST && rc != TD_EINVAL && rc != TD_ENOTFOUND)
		fprintf(stderr, "tandem source: %s\n", td_strerror(rc));
	meta_close(m);
	return rc ? 1 : 0;
}
