/*
 * identity.c - `tandem identity config`: shows and sets the identity
 * configuration in DATA/meta.db (limits, priority, identifier traits,
 * blocked values; docs/identity.md has what they do).
 */
#include "cli/cli.h"
#include "base/td.h"
#include "meta/meta.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: tandem identity config [--data DIR] [--format text|json]\n"
    "                              [--limit CLASS=N]... [--priority LIST] [--traits LIST]\n"
    "                              [--blocked VALUE]... [--reset]\n"
    "\n"
    "Shows the identity configuration; with options, changes it. Classes: user_id, email,\n"
    "phone, external, trait, anonymous_id.\n"
    "\n"
    "  --data DIR          data directory (default ./" CLI_DEFAULT_DATA ")\n"
    "  --format text|json  how to print the configuration (default text)\n"
    "  --limit CLASS=N     most identifiers of CLASS one person may have, 1 to 255\n"
    "                      (repeatable; defaults: user_id=1, the others 5)\n"
    "  --priority LIST     the 6 classes, highest first, separated by commas (default\n"
    "                      user_id,email,phone,external,trait,anonymous_id)\n"
    "  --traits LIST       trait names that identify a person (traits.NAME and\n"
    "                      context.traits.NAME), e.g. crm_id,loyalty_no; replaces the\n"
    "                      list, --traits '' clears it (at most 16)\n"
    "  --blocked VALUE     a value that never identifies anyone, on top of the built-in\n"
    "                      null, undefined, 0, -1, anonymous, guest (repeatable or a\n"
    "                      comma list; replaces the list, --blocked '' clears it; at\n"
    "                      most 64)\n"
    "  --reset             start from the defaults (alone: back to the defaults)\n"
    "\n"
    "A running server applies a change after a restart. A change applies to messages\n"
    "processed from then on: past merges are not undone.\n";

#define CMD	    "identity config"
#define MAX_LIMITS  32
#define MAX_BLOCKED 256 /* --blocked options */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Splits a copy of s at commas into items trimmed of white space, empty
 * ones dropped. Returns the item count, or cap + 1 when there are more than
 * cap. The copy is added to *owned (freed by the caller). */
static size_t split(const char *s, char **owned, const char **items, size_t n, size_t cap)
{
	char *copy = td_strdup(s);
	*owned = copy;
	char *p = copy;
	for (;;) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		while (is_blank(*p))
			p++;
		size_t len = strlen(p);
		while (len && is_blank(p[len - 1]))
			p[--len] = '\0';
		if (len) {
			if (n == cap)
				return cap + 1;
			items[n++] = p;
		}
		if (!comma)
			return n;
		p = comma + 1;
	}
}

static const char class_list[] = "user_id, email, phone, external, trait, anonymous_id";

/* "CLASS=N" into limit[]; prints why not and returns 2. */
static int parse_limit(const char *arg, uint8_t limit[IDENTITY_NCLASSES], bool set[])
{
	const char *eq = strchr(arg, '=');
	if (!eq) {
		fprintf(stderr,
			"tandem " CMD ": --limit %s: write CLASS=N, e.g. --limit user_id=2\n", arg);
		return 2;
	}
	char name[64];
	snprintf(name, sizeof(name), "%.*s", (int)TD_MIN((size_t)(eq - arg), sizeof(name) - 1),
		 arg);
	int cls = identity_class_parse(name);
	if (cls < 0) {
		fprintf(stderr,
			"tandem " CMD ": --limit %s: unknown class '%s'; the classes are %s\n", arg,
			name, class_list);
		return 2;
	}
	char *end;
	errno = 0;
	long v = strtol(eq + 1, &end, 10);
	if (end == eq + 1 || *end || errno || v < 1 || v > 255) {
		fprintf(stderr,
			"tandem " CMD
			": --limit %s: the limit must be a whole number from 1 to 255\n",
			arg);
		return 2;
	}
	limit[cls] = (uint8_t)v;
	set[cls] = true;
	return 0;
}

/* The comma list of all classes into priority[]; prints why not and
 * returns 2. */
static int parse_priority(const char *arg, uint8_t priority[IDENTITY_NCLASSES])
{
	const char *items[IDENTITY_NCLASSES];
	char *owned = NULL;
	size_t n = split(arg, &owned, items, 0, IDENTITY_NCLASSES);
	bool seen[IDENTITY_NCLASSES] = {false};
	int rc = 0;
	for (size_t i = 0; i < n && i < IDENTITY_NCLASSES; i++) {
		int cls = identity_class_parse(items[i]);
		if (cls < 0) {
			fprintf(stderr,
				"tandem " CMD
				": --priority: unknown class '%s'; the classes are %s\n",
				items[i], class_list);
			rc = 2;
			goto out;
		}
		if (seen[cls]) {
			fprintf(stderr, "tandem " CMD ": --priority: '%s' is named twice\n",
				items[i]);
			rc = 2;
			goto out;
		}
		seen[cls] = true;
		priority[i] = (uint8_t)cls;
	}
	if (n != IDENTITY_NCLASSES) {
		fprintf(stderr,
			"tandem " CMD ": --priority names %s%zu classes; name all %d once, highest "
			"first, e.g. --priority user_id,email,phone,external,trait,anonymous_id\n",
			n > IDENTITY_NCLASSES ? "more than " : "",
			TD_MIN(n, (size_t)IDENTITY_NCLASSES), IDENTITY_NCLASSES);
		rc = 2;
	}
out:
	free(owned);
	return rc;
}

static void print_text(const char *data, const struct meta_identity *id)
{
	const struct identity_config *c = &id->cfg;
	printf("identity configuration of %s (%s)\n", data,
	       id->stored ? "stored in meta.db" : "the defaults: nothing stored");
	printf("  limits per person   ");
	for (int i = 0; i < IDENTITY_NCLASSES; i++)
		printf("%s%s=%u", i ? ", " : "", identity_class_name((enum identity_class)i),
		       c->limit[i]);
	printf("\n  priority            ");
	for (int i = 0; i < IDENTITY_NCLASSES; i++)
		printf("%s%s", i ? " > " : "",
		       identity_class_name((enum identity_class)c->priority[i]));
	printf("\n  identifier traits   ");
	if (!c->ntraits)
		printf("(none: email and phone are the only traits that identify)");
	for (size_t i = 0; i < c->ntraits; i++)
		printf("%s%s", i ? ", " : "", c->traits[i]);
	printf("\n  blocked values      built in: null, undefined, 0, -1, anonymous, guest");
	if (c->nblocked) {
		printf("; configured: ");
		for (size_t i = 0; i < c->nblocked; i++)
			printf("%s\"%s\"", i ? ", " : "", c->blocked[i]);
	}
	printf("\n");
}

static int print_json(const struct meta_identity *id)
{
	char *doc = meta_identity_json(&id->cfg);
	cJSON *root = cJSON_Parse(doc);
	free(doc);
	if (!root) {
		fprintf(stderr, "tandem " CMD ": out of memory\n");
		return 1;
	}
	cJSON_AddBoolToObject(root, "stored", id->stored);
	char *out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (!out) {
		fprintf(stderr, "tandem " CMD ": out of memory\n");
		return 1;
	}
	printf("%s\n", out);
	free(out);
	return 0;
}

static int print_config(const char *data, const struct meta_identity *id, bool json)
{
	if (json)
		return print_json(id);
	print_text(data, id);
	return 0;
}

static int config(int argc, char **argv)
{
	const char *data = CLI_DEFAULT_DATA, *format = "text", *priority = NULL, *traits = NULL;
	const char *limits[MAX_LIMITS], *blocked[MAX_BLOCKED];
	size_t nlimits = 0, nblocked = 0;
	bool reset = false;
	for (int i = 1; i < argc;) {
		const char *v;
		if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--reset")) {
			reset = true;
			i++;
		} else if (cli_opt(argc, argv, &i, "--data", &data) ||
			   cli_opt(argc, argv, &i, "--format", &format) ||
			   cli_opt(argc, argv, &i, "--priority", &priority) ||
			   cli_opt(argc, argv, &i, "--traits", &traits)) {
			continue;
		} else if (cli_opt(argc, argv, &i, "--limit", &v)) {
			if (nlimits == MAX_LIMITS) {
				fprintf(stderr, "tandem " CMD ": more than %d --limit options\n",
					MAX_LIMITS);
				return 2;
			}
			limits[nlimits++] = v;
		} else if (cli_opt(argc, argv, &i, "--blocked", &v)) {
			if (nblocked == MAX_BLOCKED) {
				fprintf(stderr, "tandem " CMD ": more than %d --blocked options\n",
					MAX_BLOCKED);
				return 2;
			}
			blocked[nblocked++] = v;
		} else {
			return cli_bad_option(CMD, argv[i]);
		}
	}
	bool json;
	if (cli_format_json(CMD, format, &json))
		return 2;

	/* every option is read before meta.db is touched: a typo changes nothing */
	uint8_t limit[IDENTITY_NCLASSES] = {0}, prio[IDENTITY_NCLASSES];
	bool limit_set[IDENTITY_NCLASSES] = {false};
	for (size_t i = 0; i < nlimits; i++)
		if (parse_limit(limits[i], limit, limit_set))
			return 2;
	if (priority && parse_priority(priority, prio))
		return 2;
	int rc = 2;
	char *owned[1 + MAX_BLOCKED] = {NULL};
	size_t nowned = 0;
	const char *trait_items[IDENTITY_MAX_TRAITS], *blocked_items[IDENTITY_MAX_BLOCKED];
	size_t ntraits = 0, nblocked_items = 0;
	if (traits) {
		ntraits = split(traits, &owned[nowned++], trait_items, 0, IDENTITY_MAX_TRAITS);
		if (ntraits > IDENTITY_MAX_TRAITS) {
			fprintf(stderr,
				"tandem " CMD ": --traits names more than %d traits; at most %d\n",
				IDENTITY_MAX_TRAITS, IDENTITY_MAX_TRAITS);
			goto out;
		}
	}
	for (size_t i = 0; i < nblocked; i++) {
		nblocked_items = split(blocked[i], &owned[nowned++], blocked_items, nblocked_items,
				       IDENTITY_MAX_BLOCKED);
		if (nblocked_items > IDENTITY_MAX_BLOCKED) {
			fprintf(stderr, "tandem " CMD ": more than %d blocked values; at most %d\n",
				IDENTITY_MAX_BLOCKED, IDENTITY_MAX_BLOCKED);
			goto out;
		}
	}
	bool change = reset || nlimits || priority || traits || nblocked;

	rc = 1;
	struct meta_identity *id = td_malloc(sizeof(*id));
	struct meta *m = NULL;
	char err[600];
	if (!change) {
		/* showing creates nothing */
		rc = cli_identity_config(id, CMD, data) ? 1 : print_config(data, id, json);
		goto out_free;
	}
	if (cli_data_dir(data))
		goto out_free;
	if (meta_open(&m, data)) {
		fprintf(stderr, "tandem " CMD ": cannot open %s/meta.db\n", data);
		goto out_free;
	}
	if (reset) {
		identity_config_default(&id->cfg);
	} else if (meta_identity_get(m, id, err, sizeof(err))) {
		fprintf(stderr, "tandem " CMD ": %s\n", err);
		goto out_free;
	}
	struct identity_config *c = &id->cfg;
	for (int k = 0; k < IDENTITY_NCLASSES; k++)
		if (limit_set[k])
			c->limit[k] = limit[k];
	if (priority)
		memcpy(c->priority, prio, sizeof(prio));
	if (traits) {
		memcpy(c->traits, trait_items, ntraits * sizeof(*trait_items));
		c->ntraits = ntraits;
	}
	if (nblocked) {
		memcpy(c->blocked, blocked_items, nblocked_items * sizeof(*blocked_items));
		c->nblocked = nblocked_items;
	}
	bool only_reset = reset && !nlimits && !priority && !traits && !nblocked;
	int set = only_reset ? meta_identity_reset(m) : meta_identity_set(m, c, err, sizeof(err));
	if (set == TD_EINVAL) {
		fprintf(stderr, "tandem " CMD ": %s\n", err);
		rc = 2;
		goto out_free;
	}
	if (set) {
		fprintf(stderr, "tandem " CMD ": cannot save the configuration: %s\n",
			td_strerror(set));
		goto out_free;
	}
	/* print what is stored now, read back */
	if (meta_identity_get(m, id, err, sizeof(err))) {
		fprintf(stderr, "tandem " CMD ": %s\n", err);
		goto out_free;
	}
	rc = print_config(data, id, json);
	FILE *note = json ? stderr : stdout;
	fprintf(note,
		"%sSaved. A running server applies the change after a restart; it applies to "
		"messages processed from then on (past merges are not undone).\n",
		json ? "" : "\n");
	if (cli_writer_running(data))
		fprintf(note,
			"A tandem process is running on %s now: restart it to apply the "
			"change.\n",
			data);
out_free:
	meta_close(m);
	free(id);
out:
	for (size_t i = 0; i < nowned; i++)
		free(owned[i]);
	return rc;
}

int cmd_identity(int argc, char **argv)
{
	if (argc < 2 || cli_is_help(argv[1])) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "config")) {
		fprintf(stderr,
			"tandem identity: unknown subcommand '%s' (see 'tandem identity "
			"--help')\n",
			argv[1]);
		return 2;
	}
	return config(argc - 1, argv + 1);
}
