/*
 * computed.c - `tandem computed-trait list|set|delete`: computed trait
 * definitions (docs/profiles.md) in DATA/meta.db. A running server uses a
 * change at its next profile read.
 */
#include "cli/cli.h"
#include "base/td.h"
#include "meta/meta.h"
#include "profile/profile.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: tandem computed-trait list [--data DIR]\n"
    "       tandem computed-trait set NAME DEFINITION [--data DIR]\n"
    "       tandem computed-trait delete NAME [--data DIR]\n"
    "\n"
    "Computed traits are evaluated over each person's whole history whenever a\n"
    "profile is read (GET /api/profiles/..., tandem profile). DEFINITION is JSON:\n"
    "  {\"kind\": \"count\", \"event\": \"Order Completed\", \"window_days\": 90,\n"
    "   \"filters\": [{\"property\": \"properties.revenue\", \"operator\": \">\", \"value\": "
    "50}]}\n"
    "kind: count, sum, avg, min, max, first, last, most_frequent, unique_values or\n"
    "unique_count (all but count take \"property\"). See docs/profiles.md.\n";

/* DEFINITION with "name" set to NAME (it may be left out; if present it
 * must be NAME). NULL with err on a bad definition. */
static char *named(const char *name, const char *def, char *err, size_t errcap)
{
	cJSON *d = cJSON_Parse(def);
	if (!cJSON_IsObject(d)) {
		snprintf(err, errcap, "DEFINITION must be a JSON object (see --help)");
		cJSON_Delete(d);
		return NULL;
	}
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(d, "name");
	if (n && (!cJSON_IsString(n) || strcmp(n->valuestring, name))) {
		snprintf(err, errcap, "name: the definition names another trait than NAME (%s)",
			 name);
		cJSON_Delete(d);
		return NULL;
	}
	if (!n)
		cJSON_AddStringToObject(d, "name", name);
	char *out = cJSON_PrintUnformatted(d);
	cJSON_Delete(d);
	return out;
}

int cmd_computed(int argc, char **argv)
{
	const char *data = CLI_DEFAULT_DATA, *pos[3] = {NULL, NULL, NULL};
	const struct cli_option opts[] = {{"--data", &data, NULL}, {NULL}};
	int rc = cli_parse(argc, argv, "computed-trait", usage, opts, pos, 3);
	if (rc >= 0)
		return rc;
	const char *verb = pos[0];
	bool ok = verb && ((!strcmp(verb, "list") && !pos[1]) ||
			   (!strcmp(verb, "set") && pos[1] && pos[2]) ||
			   (!strcmp(verb, "delete") && pos[1] && !pos[2]));
	if (!ok) {
		fputs(usage, stderr);
		return 2;
	}
	if (cli_data_dir(data))
		return 1;
	struct meta *m;
	if (meta_open(&m, data)) {
		fprintf(stderr, "tandem computed-trait: cannot open %s/meta.db\n", data);
		return 1;
	}
	char err[512];
	if (!strcmp(verb, "list")) {
		struct meta_computed *l;
		size_t n;
		rc = meta_computed_list(m, &l, &n);
		for (size_t i = 0; !rc && i < n; i++)
			printf("%s\n", l[i].definition);
		if (!rc)
			meta_computed_list_free(l, n);
	} else if (!strcmp(verb, "set")) {
		char *def = named(pos[1], pos[2], err, sizeof(err));
		struct profile_computed *c = NULL;
		rc = def ? profile_computed_parse(def, strlen(def), &c, err, sizeof(err))
			 : TD_EINVAL;
		if (rc) {
			fprintf(stderr, "tandem computed-trait: %s\n", err);
			meta_close(m);
			free(def);
			return 2;
		}
		profile_computed_free(c);
		rc = meta_computed_put(m, pos[1], def);
		if (rc == TD_EFULL)
			fprintf(stderr,
				"tandem computed-trait: at most %d computed traits; delete one "
				"first\n",
				PROFILE_MAX_COMPUTED);
		else if (!rc)
			printf("computed trait %s stored; profiles show it from their next read\n",
			       pos[1]);
		free(def);
	} else {
		rc = meta_computed_delete(m, pos[1]);
		if (rc == TD_ENOTFOUND)
			fprintf(stderr, "tandem computed-trait: no computed trait is named %s\n",
				pos[1]);
		else if (!rc)
			printf("computed trait %s deleted\n", pos[1]);
	}
	meta_close(m);
	return rc ? 1 : 0;
}
