/*
 * enrich.c - `tandem enrich config` (shows and changes the enrichment
 * settings in DATA/meta.db) and `tandem enrich test` (enriches one made-up
 * message with them and prints the result); docs/enrichment.md has what
 * every setting does. Also cli_enrich_load, for serve and import.
 */
#include "cli/cli.h"
#include "base/buf.h"
#include "base/td.h"
#include "enrich/enrich.h"
#include "meta/meta.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: tandem enrich config [--data DIR] [--format text|json] [--show] [--set KEY=VALUE]...\n"
    "                            [--unset KEY]... [--reset]\n"
    "       tandem enrich test [--data DIR] [--url URL] [--referrer URL] [--ua TEXT]\n"
    "                          [--ip ADDR] [--cookie TEXT] [--source NAME]\n"
    "\n"
    "config shows the enrichment settings; with options, changes them (nothing is\n"
    "stored unless every option is valid). test enriches one message made of the\n"
    "given fields with the stored settings and prints the \"enriched\" object.\n"
    "\n"
    "  --data DIR          data directory (default ./" CLI_DEFAULT_DATA ")\n"
    "  --format text|json  how to print the settings (default text)\n"
    "  --show              print the settings (what config does without options)\n"
    "  --set KEY=VALUE     set KEY; for the list keys (cookie_patterns, channel_rules)\n"
    "                      each --set adds one item to a list that replaces the stored\n"
    "                      one, and --set KEY= empties it\n"
    "  --unset KEY         back to the default for KEY\n"
    "  --reset             every key back to its default\n"
    "\n"
    "Keys:\n"
    "  campaign.source ... campaign.id  URL parameters feeding the field, first present\n"
    "                      wins (campaign.source, .medium, .name, .term, .content, .id)\n"
    "  click_ids           PARAM:NETWORK,... ad click ids\n"
    "  cookie_patterns     COOKIE:REGEX, one capture group -> campaign.id (list)\n"
    "  internal_domains    own domains, comma separated (referrers from them: internal)\n"
    "  channel_rules       CHANNEL: FIELD=V1,V2 & ... (list; replaces the defaults)\n"
    "  referrer_file       a referrer database file extending the built-in one\n"
    "                      (default: DATA/referrers.txt when it exists)\n"
    "  geo_database        a MaxMind-format .mmdb file for enriched.geo\n"
    "  ip                  keep | truncate | drop: how context.ip is stored\n"
    "  ip.SOURCE           the same for the source named SOURCE\n"
    "\n"
    "A running server applies a change after a restart; events already stored keep\n"
    "the enrichment they had.\n";

#define CMD	 "enrich config"
#define MAX_OPTS 256

int cli_enrich_load(struct enrich **out, struct meta *m, const char *cmd, const char *data)
{
	char err[600];
	int rc = enrich_load(out, m, data, err, sizeof(err));
	if (rc) {
		fprintf(stderr,
			"tandem %s: %s\n(fix it with 'tandem enrich config --data %s', see "
			"--help)\n",
			cmd, err, data);
		return 1;
	}
	return 0;
}

static bool meta_exists(const char *data)
{
	char path[4096];
	struct stat st;
	snprintf(path, sizeof(path), "%s/meta.db", data);
	return stat(path, &st) == 0;
}

/* The stored document, or an empty object when nothing is stored or there is
 * no meta.db (nothing is created). *m is left open when there was one. */
static cJSON *read_doc(const char *data, struct meta **m, bool create)
{
	*m = NULL;
	if (!create && !meta_exists(data))
		return cJSON_CreateObject();
	if ((create && cli_data_dir(data)) || meta_open(m, data)) {
		fprintf(stderr, "tandem " CMD ": cannot open %s/meta.db\n", data);
		return NULL;
	}
	char *json = NULL;
	if (enrich_settings_get(*m, &json)) {
		fprintf(stderr, "tandem " CMD ": cannot read the settings from %s/meta.db\n", data);
		return NULL;
	}
	cJSON *doc = json ? cJSON_Parse(json) : cJSON_CreateObject();
	free(json);
	if (!cJSON_IsObject(doc)) {
		cJSON_Delete(doc);
		doc = cJSON_CreateObject(); /* damaged by hand: start again from the defaults */
	}
	return doc;
}

static void print_value(const char *key, const cJSON *v)
{
	if (!v) {
		const char *d = enrich_config_default(key);
		if (!strcmp(key, "referrer_file")) {
			printf("%-18s (default: referrers.txt in the data directory, if there is "
			       "one)\n",
			       key);
			return;
		}
		if (!enrich_config_key_is_list(key)) {
			printf("%-18s %s%s\n", key, d, *d ? "  (default)" : "(none)");
			return;
		}
		printf("%-18s (default)\n", key);
		for (const char *p = d; *p;) {
			const char *nl = strchr(p, '\n');
			int n = nl ? (int)(nl - p) : (int)strlen(p);
			printf("  %.*s\n", n, p);
			p += n + (nl ? 1 : 0);
		}
		if (!*d)
			printf("  (none)\n");
		return;
	}
	if (cJSON_IsString(v)) {
		printf("%-18s %s\n", key, v->valuestring);
		return;
	}
	printf("%s\n", key);
	const cJSON *it;
	cJSON_ArrayForEach(it, v) printf("  %s\n", cJSON_IsString(it) ? it->valuestring : "?");
	if (!cJSON_GetArraySize(v))
		printf("  (none)\n");
}

static void show(const char *data, const cJSON *doc, bool json)
{
	if (json) {
		char *s = cJSON_PrintUnformatted(doc);
		printf("%s\n", s ? s : "{}");
		free(s);
		return;
	}
	printf("enrichment settings of %s (docs/enrichment.md):\n", data);
	for (size_t i = 0; enrich_config_keys[i]; i++)
		print_value(enrich_config_keys[i],
			    cJSON_GetObjectItemCaseSensitive(doc, enrich_config_keys[i]));
	const cJSON *it;
	cJSON_ArrayForEach(it, doc) if (!strncmp(it->string, "ip.", 3)) print_value(it->string, it);
}

/* Applies one --set; 0, or 2 after printing why. touched: list keys already
 * set by this command (their stored list is replaced, not extended). */
static int apply_set(cJSON *doc, const char *kv, cJSON *touched)
{
	const char *eq = strchr(kv, '=');
	char key[160];
	if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key)) {
		fprintf(stderr, "tandem " CMD ": --set takes KEY=VALUE, not '%s'\n", kv);
		return 2;
	}
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = '\0';
	if (!enrich_config_key_valid(key)) {
		fprintf(stderr, "tandem " CMD ": unknown key '%s' (see 'tandem enrich --help')\n",
			key);
		return 2;
	}
	const char *val = eq + 1;
	if (!enrich_config_key_is_list(key)) {
		cJSON_DeleteItemFromObjectCaseSensitive(doc, key);
		cJSON_AddStringToObject(doc, key, val);
		return 0;
	}
	cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, key);
	if (!cJSON_GetObjectItemCaseSensitive(touched, key) || !cJSON_IsArray(list)) {
		cJSON_DeleteItemFromObjectCaseSensitive(doc, key);
		list = cJSON_AddArrayToObject(doc, key);
		cJSON_AddTrueToObject(touched, key);
	}
	if (*val)
		cJSON_AddItemToArray(list, cJSON_CreateString(val));
	return 0;
}

static int config(int argc, char **argv)
{
	const char *data = CLI_DEFAULT_DATA, *format = "text";
	const char *sets[MAX_OPTS], *unsets[MAX_OPTS];
	size_t nsets = 0, nunsets = 0;
	bool reset = false;
	for (int i = 1; i < argc;) {
		const char *v;
		if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--reset") || !strcmp(argv[i], "--show")) {
			reset |= !strcmp(argv[i], "--reset");
			i++;
		} else if (cli_opt(argc, argv, &i, "--data", &data) ||
			   cli_opt(argc, argv, &i, "--format", &format)) {
			continue;
		} else if (cli_opt(argc, argv, &i, "--set", &v)) {
			if (nsets == MAX_OPTS)
				return cli_bad_option(CMD, "--set (more than 256)");
			sets[nsets++] = v;
		} else if (cli_opt(argc, argv, &i, "--unset", &v)) {
			if (nunsets == MAX_OPTS)
				return cli_bad_option(CMD, "--unset (more than 256)");
			unsets[nunsets++] = v;
		} else {
			return cli_bad_option(CMD, argv[i]);
		}
	}
	bool json;
	if (cli_format_json(CMD, format, &json))
		return 2;
	bool change = reset || nsets || nunsets;
	struct meta *m = NULL;
	cJSON *doc = read_doc(data, &m, change), *touched = cJSON_CreateObject();
	int rc = 1;
	if (!doc)
		goto out;
	rc = 2;
	if (reset) {
		cJSON_Delete(doc);
		doc = cJSON_CreateObject();
	}
	for (size_t i = 0; i < nunsets; i++) {
		if (!enrich_config_key_valid(unsets[i])) {
			fprintf(stderr, "tandem " CMD ": unknown key '%s'\n", unsets[i]);
			goto out;
		}
		cJSON_DeleteItemFromObjectCaseSensitive(doc, unsets[i]);
	}
	for (size_t i = 0; i < nsets; i++)
		if (apply_set(doc, sets[i], touched))
			goto out;
	if (change) {
		/* the whole configuration must build: rules, patterns, files */
		char *text = cJSON_PrintUnformatted(doc), err[600];
		struct enrich *e = NULL;
		int b = enrich_new(&e, text, data, err, sizeof(err));
		enrich_free(e);
		if (b) {
			fprintf(stderr, "tandem " CMD ": %s (nothing was changed)\n", err);
			free(text);
			goto out;
		}
		b = enrich_settings_put(m, cJSON_GetArraySize(doc) ? text : NULL);
		free(text);
		if (b) {
			fprintf(stderr, "tandem " CMD ": cannot write %s/meta.db\n", data);
			rc = 1;
			goto out;
		}
	}
	show(data, doc, json);
	if (change && !json)
		printf("(a running server applies this after a restart)\n");
	rc = 0;
out:
	cJSON_Delete(doc);
	cJSON_Delete(touched);
	meta_close(m);
	return rc;
}

static int test(int argc, char **argv)
{
	const char *data = CLI_DEFAULT_DATA, *url = NULL, *ref = NULL, *ua = NULL, *ip = NULL,
		   *cookie = NULL, *source = NULL;
	const struct cli_option opts[] = {{"--data", &data, NULL},     {"--url", &url, NULL},
					  {"--referrer", &ref, NULL},  {"--ua", &ua, NULL},
					  {"--ip", &ip, NULL},	       {"--cookie", &cookie, NULL},
					  {"--source", &source, NULL}, {NULL, NULL, NULL}};
	int rc = cli_parse(argc, argv, "enrich test", usage, opts, NULL, 0);
	if (rc >= 0)
		return rc;
	struct meta *m = NULL;
	struct enrich *e = NULL;
	char err[600];
	rc = 1;
	if (meta_exists(data)) {
		if (meta_open(&m, data) || cli_enrich_load(&e, m, "enrich test", data))
			goto out;
	} else if (enrich_new(&e, NULL, data, err, sizeof(err))) {
		fprintf(stderr, "tandem enrich test: %s\n", err);
		goto out;
	}
	struct enrich_input in = {
	    .page_url = {url, url ? strlen(url) : 0},
	    .referrer = {ref, ref ? strlen(ref) : 0},
	    .user_agent = {ua, ua ? strlen(ua) : 0},
	    .ip = ip,
	    .cookies = {cookie, cookie ? strlen(cookie) : 0},
	};
	struct enrich_result *r = td_malloc(sizeof(*r));
	enrich_event(e, &in, r);
	struct td_buf b;
	td_buf_init(&b, 1u << 20);
	enrich_result_json(r, &b);
	printf("%s\n", b.data);
	char stored[64];
	enum enrich_ip_mode mode = enrich_ip_mode_for(e, source);
	if (ip)
		printf("context.ip stored as: %s (%s)\n",
		       enrich_ip_anonymize(ip, strlen(ip), mode, stored, sizeof(stored)) ? stored
											 : "(none)",
		       enrich_ip_mode_name(mode));
	td_buf_release(&b);
	free(r);
	rc = 0;
out:
	enrich_free(e);
	meta_close(m);
	return rc;
}

int cmd_enrich(int argc, char **argv)
{
	if (argc < 2 || cli_is_help(argv[1])) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "config"))
		return config(argc - 1, argv + 1);
	if (!strcmp(argv[1], "test"))
		return test(argc - 1, argv + 1);
	fprintf(stderr, "tandem enrich: unknown subcommand '%s' (config or test)\n", argv[1]);
	return 2;
}
