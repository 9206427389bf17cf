/*
 * demo.c - `tandem demo --generate`: writes a synthetic shop + marketing data
 * set (Segment messages, NDJSON) for demos, benchmarks and tests; see
 * docs/demo.md for what it contains.
 */
#include "cli/cli.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "demo/demo.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: tandem demo --generate [--events N] [--users U] [--days D] [--seed S]\n"
    "                   [--end TIME] [--out FILE|-] [--costs FILE]\n"
    "\n"
    "Writes a synthetic data set of shop and marketing customer journeys as Segment\n"
    "messages, one JSON object per line (the input of 'tandem import'): visits from\n"
    "search, ads, social, email, affiliates and referrals with UTM-tagged landing\n"
    "pages, the product funnel, sign-ups, identify / group / alias calls, second\n"
    "devices, email sends, opens and clicks. Events are in time order and the output\n"
    "is the same for the same options (docs/demo.md lists every rate).\n"
    "\n"
    "  --events N   messages to write, exactly (default 1000000; k/m/g suffixes)\n"
    "  --users U    people (default 50000)\n"
    "  --days D     length of the period in days (default 90)\n"
    "  --seed S     random seed (default 1)\n"
    "  --end TIME   end of the period, ISO-8601 (a plain date means the end of that\n"
    "               day, UTC); default now. Set it for byte-identical reruns.\n"
    "  --out FILE   output file, '-' for standard output (default -)\n"
    "  --costs FILE also write the advertising costs of the paid visits, per day,\n"
    "               source, medium and campaign, as CSV for 'tandem import costs'\n"
    "\n"
    "A summary (events, users, bytes, seconds, lines/s) goes to standard error.\n";

struct sink {
	FILE *f;
	uint64_t lines, bytes;
};

static int write_line(void *ctx, const char *line, size_t len)
{
	struct sink *k = ctx;
	if (fwrite_unlocked(line, 1, len, k->f) != len)
		return TD_EIO;
	k->lines++;
	k->bytes += len;
	return 0;
}

static int parse_end(const char *value, int64_t *ms)
{
	size_t n = strlen(value);
	if (td_time_parse(value, n, ms))
		return TD_EPARSE;
	if (n == 10) /* YYYY-MM-DD: the whole day */
		*ms += 86400000 - 1;
	return 0;
}

static uint32_t small_count(const char *opt, const char *value, uint32_t max)
{
	unsigned long long v = cli_count(opt, value);
	if (v == 0 || v > max) {
		fprintf(stderr, "tandem demo: %s must be between 1 and %u, not '%s'\n", opt, max,
			value);
		exit(2);
	}
	return (uint32_t)v;
}

int cmd_demo(int argc, char **argv)
{
	struct demo_options o;
	demo_options_default(&o);
	const char *out = "-", *costs = NULL;
	bool generate = false;
	for (int i = 1; i < argc;) {
		const char *v;
		if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return 0;
		} else if (!strcmp(argv[i], "--generate")) {
			generate = true;
			i++;
		} else if (cli_opt(argc, argv, &i, "--events", &v)) {
			o.events = cli_count("--events", v);
		} else if (cli_opt(argc, argv, &i, "--users", &v)) {
			o.users = small_count("--users", v, DEMO_MAX_USERS);
		} else if (cli_opt(argc, argv, &i, "--days", &v)) {
			o.days = small_count("--days", v, DEMO_MAX_DAYS);
		} else if (cli_opt(argc, argv, &i, "--seed", &v)) {
			o.seed = cli_count("--seed", v);
		} else if (cli_opt(argc, argv, &i, "--end", &v)) {
			if (parse_end(v, &o.end_ms) || o.end_ms <= 0) {
				fprintf(stderr,
					"tandem demo: --end takes an ISO-8601 time after 1970, "
					"such as 2026-11-30 or 2026-11-30T18:00:00Z, not '%s'\n",
					v);
				return 2;
			}
		} else if (cli_opt(argc, argv, &i, "--out", &v)) {
			out = v;
		} else if (cli_opt(argc, argv, &i, "--costs", &v)) {
			costs = v;
		} else {
			return cli_bad_option("demo", argv[i]);
		}
	}
	if (!generate) {
		fputs(usage, stderr);
		return 2;
	}
	uint64_t cap = (uint64_t)o.users * o.days * DEMO_MAX_EVENTS_PER_USER_DAY;
	if (o.events > cap) {
		fprintf(stderr,
			"tandem demo: %llu events from %u users in %u days is more than %u events "
			"per user per day; use at most %llu events, or more users or days\n",
			(unsigned long long)o.events, o.users, o.days, DEMO_MAX_EVENTS_PER_USER_DAY,
			(unsigned long long)cap);
		return 2;
	}
	if (o.end_ms - (int64_t)o.days * 86400000 < 0) {
		fprintf(stderr, "tandem demo: the period would start before 1970; move --end "
				"later or use fewer --days\n");
		return 2;
	}

	bool to_stdout = !strcmp(out, "-");
	struct sink sink = {.f = to_stdout ? stdout : fopen(out, "w")};
	if (!sink.f) {
		fprintf(stderr, "tandem demo: cannot write %s: %s\n", out, strerror(errno));
		return 1;
	}
	/* one line is ~700 bytes: write in 1 MiB blocks, not per line */
	static char buf[1 << 20];
	setvbuf(sink.f, buf, _IOFBF, sizeof(buf));

	struct sink csink = {.f = NULL};
	if (costs) {
		csink.f = fopen(costs, "w");
		if (!csink.f) {
			fprintf(stderr, "tandem demo: cannot write %s: %s\n", costs,
				strerror(errno));
			if (!to_stdout)
				fclose(sink.f);
			return 1;
		}
		o.costs = write_line;
		o.costs_ctx = &csink;
	}

	uint64_t t0 = td_mono_ns();
	int rc = demo_generate(&o, write_line, &sink);
	if (csink.f && (fclose(csink.f) != 0 || rc == TD_EIO) && !rc) {
		fprintf(stderr, "tandem demo: error writing %s: %s\n", costs, strerror(errno));
		rc = TD_EIO;
	}
	if (fflush(sink.f) != 0 && !rc)
		rc = TD_EIO;
	if (rc == TD_EIO || ferror(sink.f)) {
		fprintf(stderr, "tandem demo: error writing %s: %s\n", to_stdout ? "output" : out,
			strerror(errno));
		rc = TD_EIO;
	} else if (rc) {
		fprintf(stderr, "tandem demo: cannot generate: %s\n", td_strerror(rc));
	}
	if (!to_stdout && fclose(sink.f) != 0 && !rc) {
		fprintf(stderr, "tandem demo: error writing %s: %s\n", out, strerror(errno));
		rc = TD_EIO;
	}
	if (rc)
		return 1;
	double secs = (double)(td_mono_ns() - t0) / 1e9;
	char end[TD_ISO8601_LEN];
	td_time_format(o.end_ms, end);
	fprintf(stderr,
		"generated %llu events from %u users over %u day%s to %s (seed %llu): %llu bytes "
		"in %.2f s, %.0f lines/s\n",
		(unsigned long long)sink.lines, o.users, o.days, o.days == 1 ? "" : "s", end,
		(unsigned long long)o.seed, (unsigned long long)sink.bytes, secs,
		secs > 0 ? (double)sink.lines / secs : 0.0);
	return 0;
}
