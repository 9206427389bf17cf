/*
 * export.c - `tandem export events`: every stored event as NDJSON, read from
 * the write-ahead log (safe while the server runs: the reader only reads).
 */
#include "cli/cli.h"
#include "base/td.h"
#include "collect/collect.h"
#include "meta/meta.h"
#include "wal/wal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: tandem export events [--data DIR] [--format ndjson] [--source NAME]\n"
    "\n"
    "Prints every stored event, one normalized JSON message per line, in the order\n"
    "they were stored. Damage found in the log is reported on stderr.\n"
    "\n"
    "  --data DIR      data directory (default ./" CLI_DEFAULT_DATA ")\n"
    "  --format ndjson output format (ndjson is the only one so far)\n"
    "  --source NAME   only events from this source\n";

int cmd_export(int argc, char **argv)
{
	const char *data = CLI_DEFAULT_DATA, *format = "ndjson", *source = NULL, *what = NULL;
	const struct cli_option opts[] = {{"--data", &data, NULL},
					  {"--format", &format, NULL},
					  {"--source", &source, NULL},
					  {NULL}};
	int prc = cli_parse(argc, argv, "export", usage, opts, &what, 1);
	if (prc >= 0)
		return prc;
	if (!what || strcmp(what, "events") != 0) {
		fprintf(stderr, "tandem export: say what to export: 'tandem export events'\n");
		return 2;
	}
	if (strcmp(format, "ndjson") != 0) {
		fprintf(stderr, "tandem export: unknown --format '%s' (ndjson)\n", format);
		return 2;
	}
	uint32_t only = 0;
	if (source) {
		struct meta *m;
		struct meta_source src;
		if (meta_open(&m, data)) {
			fprintf(stderr, "tandem export: cannot open %s/meta.db\n", data);
			return 1;
		}
		int rc = meta_source_by_name(m, source, &src);
		meta_close(m);
		if (rc) {
			fprintf(stderr, "tandem export: no source named '%s'\n", source);
			return 1;
		}
		only = src.id;
	}
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/wal", data);
	struct wal_reader *r;
	int rc = wal_reader_open(&r, dir);
	if (rc) {
		fprintf(stderr, "tandem export: cannot read %s: %s\n", dir, td_strerror(rc));
		return 1;
	}
	static char obuf[1 << 20];
	setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
	struct wal_record rec;
	while ((rc = wal_reader_next(r, &rec)) == 1) {
		struct collect_event_view v;
		if (rec.type != WAL_REC_EVENT || collect_event_decode(rec.payload, rec.len, &v))
			continue;
		if (only && v.source_id != only)
			continue;
		fwrite(v.json, 1, v.json_len, stdout);
		putchar('\n');
	}
	if (rc < 0)
		fprintf(stderr, "tandem export: read error: %s\n", td_strerror(rc));
	const char *damage = wal_reader_damage(r);
	if (damage)
		fprintf(stderr,
			"tandem export: damage in the log (records before it are "
			"exported):\n%s",
			damage);
	wal_reader_free(r);
	if (fflush(stdout) != 0)
		return 1;
	return rc < 0 ? 1 : 0;
}
