/*
 * profile.c - `tandem profile TYPE:VALUE`: prints one customer profile
 * (src/profile/profile.h) as JSON, the same document GET
 * /api/profiles/TYPE:VALUE returns. Safe while a server runs on the same
 * directory (the store is opened read-only, the WAL tail replayed in memory).
 */
#include "cli/cli.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "meta/meta.h"
#include "profile/profile.h"
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROFILE_RESULT_MAX (256u << 20)

static const char usage[] =
    "usage: tandem profile [--data DIR] [--limit N] [--before TIME] [--raw] TYPE:VALUE\n"
    "\n"
    "Prints the customer profile of the person holding the identifier TYPE:VALUE\n"
    "(user_id:42, anonymous_id:..., email:ann@example.com, phone:+15550100,\n"
    "an externalIds type or an identifier trait) as JSON: identifiers, traits,\n"
    "computed traits, accounts, merge history and a page of events, newest first.\n"
    "Safe while 'tandem serve' runs on DIR.\n"
    "\n"
    "  --data DIR      data directory (default ./" CLI_DEFAULT_DATA ")\n"
    "  --limit N       events per page, 1..100 (default 20)\n"
    "  --before TIME   events older than TIME (the next_before of the previous page)\n"
    "  --raw           each event with its whole message\n";

int cmd_profile(int argc, char **argv)
{
	const char *data = CLI_DEFAULT_DATA, *limit = NULL, *before = NULL, *id = NULL;
	bool raw = false;
	const struct cli_option opts[] = {{"--data", &data, NULL},
					  {"--limit", &limit, NULL},
					  {"--before", &before, NULL},
					  {"--raw", NULL, &raw},
					  {NULL}};
	int rc = cli_parse(argc, argv, "profile", usage, opts, &id, 1);
	if (rc >= 0)
		return rc;
	td_log_quiet = true;
	const char *colon = id ? strchr(id, ':') : NULL;
	if (!colon || colon == id || !colon[1]) {
		fprintf(stderr, "tandem profile: name the person as TYPE:VALUE, e.g. user_id:42 or "
				"email:ann@example.com (see 'tandem profile --help')\n");
		return 2;
	}
	struct profile_options o = {.raw = raw};
	if (limit) {
		char *end;
		long n = strtol(limit, &end, 10);
		if (*limit == '\0' || *end || n < 1 || n > PROFILE_MAX_LIMIT) {
			fprintf(stderr, "tandem profile: --limit is 1 to %d, not '%s'\n",
				PROFILE_MAX_LIMIT, limit);
			return 2;
		}
		o.limit = (size_t)n;
	}
	if (before && profile_cursor_parse(before, &o)) {
		fprintf(
		    stderr,
		    "tandem profile: --before '%s' is not a cursor (next_before) or an ISO 8601 "
		    "time\n",
		    before);
		return 2;
	}
	struct store *s;
	if (cli_store_open_read(&s, "profile", data))
		return 1;
	/* computed traits, when meta.db exists (a reading command creates none) */
	struct profile_computed **defs = NULL;
	char mpath[4096];
	snprintf(mpath, sizeof(mpath), "%s/meta.db", data);
	struct meta *m = NULL;
	if (access(mpath, F_OK) == 0 && meta_open(&m, data) == 0) {
		char merr[512];
		if (profile_load_computed(m, &defs, &o.ncomputed, merr, sizeof(merr)))
			fprintf(stderr, "tandem profile: %s (computed traits left out)\n", merr);
		o.computed = defs;
		meta_close(m);
	}
	char *type = td_strndup(id, (size_t)(colon - id));
	struct td_buf out;
	td_buf_init(&out, PROFILE_RESULT_MAX);
	char err[512];
	rc = profile_get(s, type, colon + 1, &o, &out, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "tandem profile: %s\n", err);
	} else if (fwrite(out.data, 1, out.len, stdout) != out.len || putchar('\n') == EOF ||
		   fflush(stdout)) {
		fprintf(stderr, "tandem profile: cannot write the profile: %s\n", strerror(errno));
		rc = 1;
	}
	td_buf_release(&out);
	free(type);
	profile_computed_list_free(defs, o.ncomputed);
	store_close(s);
	return rc ? 1 : 0;
}
