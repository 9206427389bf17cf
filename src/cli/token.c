/*
 * token.c - `tandem token create|revoke`: API tokens for /api/.
 */
#include "cli/cli.h"
#include "base/td.h"
#include "meta/meta.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: tandem token create NAME [--role admin|analyst|viewer] [--data DIR]\n"
    "       tandem token revoke NAME [--data DIR]\n"
    "\n"
    "API tokens authenticate the admin and query API (Authorization: Bearer TOKEN).\n"
    "Only a SHA-256 hash is stored: the token is printed once, at creation. The first\n"
    "'tandem serve' creates an admin token and saves it to DIR/admin-token.\n";

int cmd_token(int argc, char **argv)
{
	const char *data = CLI_DEFAULT_DATA, *role = "viewer", *pos[2] = {NULL, NULL};
	const struct cli_option opts[] = {{"--data", &data, NULL}, {"--role", &role, NULL}, {NULL}};
	int rc = cli_parse(argc, argv, "token", usage, opts, pos, 2);
	if (rc >= 0)
		return rc;
	const char *verb = pos[0], *name = pos[1];
	if (!verb || !name || (strcmp(verb, "create") && strcmp(verb, "revoke"))) {
		fputs(usage, stderr);
		return 2;
	}
	if (cli_data_dir(data))
		return 1;
	struct meta *m;
	if (meta_open(&m, data)) {
		fprintf(stderr, "tandem token: cannot open %s/meta.db\n", data);
		return 1;
	}
	if (!strcmp(verb, "create")) {
		char tok[META_TOKEN_LEN + 1];
		rc = meta_token_create(m, name, role, tok);
		if (!rc)
			printf("%s\n", tok);
		else if (rc == TD_EINVAL)
			fprintf(stderr,
				"tandem token: role is admin, analyst or viewer, and the name "
				"1-127 letters, digits, '.', '-', '_'\n");
		else if (rc == TD_EEXIST)
			fprintf(stderr, "tandem token: a token named '%s' exists\n", name);
	} else {
		rc = meta_token_revoke(m, name);
		if (rc == TD_ENOTFOUND)
			fprintf(stderr, "tandem token: no token named '%s'\n", name);
		else if (!rc)
			printf("token %s revoked\n", name);
	}
	meta_close(m);
	return rc ? 1 : 0;
}
