/*
 * export.c - `tandem export events`: stored events as NDJSON or CSV, read
 * from the event store (plus the WAL records it has not taken yet), in time
 * order, with filters. Safe while the server runs: it only reads.
 */
#include "cli/cli.h"
#include "base/buf.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "collect/collect.h"
#include "collect/jscan.h"
#include "meta/meta.h"
#include "store/store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: tandem export events [--data DIR] [--format ndjson|csv] [filters]\n"
    "\n"
    "Prints stored events in time order: one normalized JSON message per line (ndjson),\n"
    "or CSV with a header row (RFC 4180) and the columns timestamp, event, type,\n"
    "message_id, user_id, anonymous_id, person_id, source_id, received_at, properties,\n"
    "traits, context (the last three as JSON text). Events still only in the write-ahead\n"
    "log are included. Damage found is reported on stderr.\n"
    "\n"
    "  --data DIR       data directory (default ./" CLI_DEFAULT_DATA ")\n"
    "  --format F       ndjson (default) or csv\n"
    "  --source NAME    only events from this source\n"
    "  --event NAME     only events of this name (track events by name; \"$page\",\n"
    "                   \"$screen\", \"$identify\", \"$group\", \"$alias\" for the others)\n"
    "  --type TYPE      only messages of this type (track, page, identify, ...)\n"
    "  --from TIME      events at or after TIME (ISO 8601, e.g. 2024-03-01 or\n"
    "                   2024-03-01T12:00:00Z)\n"
    "  --to TIME        events before TIME\n"
    "  --limit N        at most N events\n"
    "  --with-sessions  add each event's session (docs/sessions.md): a top-level\n"
    "                   \"session\" object in ndjson (unless the message has its own),\n"
    "                   a last column \"session\" (JSON text) in csv\n";

struct exp {
	bool csv, sessions;
	uint32_t source;
	const char *event;
	int type; /* 0 = any */
	uint64_t limit, done;
	struct td_buf line, session;
};

static void csv_field(struct td_buf *b, const char *s, size_t n, bool last)
{
	td_buf_csv_field(b, s, n);
	td_buf_append(b, last ? "\r\n" : ",", last ? 2 : 1);
}

/* Finds the top-level member `name` of the message. */
static bool find_member(const char *json, size_t len, const char *name, struct jmember *m)
{
	struct jspan doc;
	struct jscan_error err;
	if (jscan_document(json, len, &doc, &err) != J_OBJECT)
		return false;
	size_t pos = 0;
	while (jscan_next_member(json, doc, &pos, m))
		if (jscan_key_is(json, m, name))
			return true;
	return false;
}

/* A top-level member of the message: its text (strings decoded), or "". */
static void member(const char *json, size_t len, const char *name, struct td_buf *out)
{
	td_buf_reset(out);
	struct jmember m;
	if (!find_member(json, len, name, &m))
		return;
	if (m.type == J_STRING) {
		size_t cap = m.val.end - m.val.start + 1;
		if (td_buf_reserve(out, cap) == 0) {
			size_t n = jscan_string(json, m.val, out->data, cap);
			out->len = n == (size_t)-1 ? 0 : n;
			out->data[out->len] = '\0';
		}
	} else if (m.type != J_NULL) {
		td_buf_append(out, json + m.val.start, m.val.end - m.val.start);
	}
}

static void on_session(void *ctx, const char *path, const struct store_value *v)
{
	struct td_buf *b = ctx;
	td_buf_putc(b, b->len ? ',' : '{');
	td_buf_json_str(b, path + 8); /* "session." */
	td_buf_putc(b, ':');
	if (v->kind == QCOL_STRING)
		td_buf_json_str(b, v->str);
	else if (v->kind == QCOL_NUMBER)
		td_buf_printf(b, "%.17g", v->num);
	else
		td_buf_printf(b, "%s", v->b ? "true" : "false");
}

/* The row's session.* values as a JSON object in b ("" when it has none). */
static void session_json(const struct store_row *r, struct td_buf *b)
{
	td_buf_reset(b);
	store_row_values(r, "session.", on_session, b);
	if (b->len)
		td_buf_putc(b, '}');
}

static int row(void *ctx, const char *event, int64_t ts, uint32_t pid, const void *payload,
	       size_t len, const struct store_row *r)
{
	struct exp *x = ctx;
	struct collect_event_view v;
	if (collect_event_decode(payload, len, &v))
		return 0;
	if ((x->source && v.source_id != x->source) || (x->type && (int)v.type != x->type) ||
	    (x->event && strcmp(x->event, event) != 0))
		return 0;
	if (x->limit && x->done >= x->limit)
		return 1;
	x->done++;
	struct td_buf f;
	td_buf_init(&f, 64u << 20);
	if (x->sessions)
		session_json(r, &x->session);
	if (!x->csv) {
		/* never over a message's own top-level "session" */
		struct jmember own;
		bool add = x->sessions && x->session.len && v.json_len > 1 &&
			   v.json[v.json_len - 1] == '}' &&
			   !find_member(v.json, v.json_len, "session", &own);
		if (add) {
			fwrite(v.json, 1, v.json_len - 1, stdout);
			fputs(",\"session\":", stdout);
			fwrite(x->session.data, 1, x->session.len, stdout);
			fputs("}\n", stdout);
		} else {
			fwrite(v.json, 1, v.json_len, stdout);
			putchar('\n');
		}
		td_buf_release(&f);
		return 0;
	}
	struct td_buf *b = &x->line;
	td_buf_reset(b);
	char t[40], num[32];
	td_time_format(ts, t);
	csv_field(b, t, strlen(t), false);
	csv_field(b, event, strlen(event), false);
	const char *tn = collect_type_name(v.type);
	csv_field(b, tn, strlen(tn), false);
	csv_field(b, v.message_id, v.message_id_len, false);
	static const char *const ids[] = {"userId", "anonymousId"};
	for (size_t i = 0; i < 2; i++) {
		member(v.json, v.json_len, ids[i], &f);
		csv_field(b, f.data ? f.data : "", f.len, false);
	}
	int n = snprintf(num, sizeof(num), "%u", pid);
	csv_field(b, num, (size_t)n, false);
	n = snprintf(num, sizeof(num), "%u", v.source_id);
	csv_field(b, num, (size_t)n, false);
	td_time_format(v.received_ms, t);
	csv_field(b, t, strlen(t), false);
	static const char *const objs[] = {"properties", "traits", "context"};
	for (size_t i = 0; i < 3; i++) {
		member(v.json, v.json_len, objs[i], &f);
		csv_field(b, f.data ? f.data : "", f.len, i == 2 && !x->sessions);
	}
	if (x->sessions)
		csv_field(b, x->session.data ? x->session.data : "", x->session.len, true);
	td_buf_release(&f);
	fwrite(b->data, 1, b->len, stdout);
	return 0;
}

static int parse_time(const char *opt, const char *v, int64_t *ms)
{
	if (td_time_parse(v, strlen(v), ms) == 0)
		return 0;
	fprintf(stderr,
		"tandem export: %s '%s' is not a time (use ISO 8601: 2024-03-01 or "
		"2024-03-01T12:00:00Z)\n",
		opt, v);
	return 2;
}

static int parse_type(const char *v, int *type)
{
	for (int t = COLLECT_IDENTIFY; t < COLLECT_BATCH; t++)
		if (!strcmp(collect_type_name((enum collect_type)t), v)) {
			*type = t;
			return 0;
		}
	fprintf(stderr,
		"tandem export: --type '%s' is not a message type (identify, track, page, "
		"screen, group, alias)\n",
		v);
	return 2;
}

int cmd_export(int argc, char **argv)
{
	const char *data = CLI_DEFAULT_DATA, *format = "ndjson", *source = NULL, *what = NULL,
		   *event = NULL, *type = NULL, *from = NULL, *to = NULL, *limit = NULL;
	bool sessions = false;
	const struct cli_option opts[] = {{"--data", &data, NULL},
					  {"--format", &format, NULL},
					  {"--source", &source, NULL},
					  {"--event", &event, NULL},
					  {"--type", &type, NULL},
					  {"--from", &from, NULL},
					  {"--to", &to, NULL},
					  {"--limit", &limit, NULL},
					  {"--with-sessions", NULL, &sessions},
					  {NULL}};
	int prc = cli_parse(argc, argv, "export", usage, opts, &what, 1);
	if (prc >= 0)
		return prc;
	if (!what || strcmp(what, "events") != 0) {
		fprintf(stderr, "tandem export: say what to export: 'tandem export events'\n");
		return 2;
	}
	struct exp x = {.event = event, .sessions = sessions};
	if (!strcmp(format, "csv"))
		x.csv = true;
	else if (strcmp(format, "ndjson") != 0) {
		fprintf(stderr, "tandem export: unknown --format '%s' (ndjson or csv)\n", format);
		return 2;
	}
	int64_t lo = INT64_MIN, hi = INT64_MAX;
	if ((from && parse_time("--from", from, &lo)) || (to && parse_time("--to", to, &hi)) ||
	    (type && parse_type(type, &x.type)))
		return 2;
	if (lo >= hi) {
		fprintf(stderr, "tandem export: --from must be before --to\n");
		return 2;
	}
	if (limit)
		x.limit = cli_count("--limit", limit);
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
		x.source = src.id;
	}
	struct store *s;
	if (cli_store_open_read(&s, "export", data))
		return 1;
	static char obuf[1 << 20];
	setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
	td_buf_init(&x.line, 64u << 20);
	td_buf_init(&x.session, 1u << 20);
	if (x.csv)
		fprintf(stdout,
			"timestamp,event,type,message_id,user_id,anonymous_id,person_id,source_id,"
			"received_at,properties,traits,context%s\r\n",
			x.sessions ? ",session" : "");
	struct store_snap *sn = store_snapshot(s);
	int rc = store_snap_scan(sn, lo, hi, row, &x);
	store_snap_release(sn);
	store_close(s);
	td_buf_release(&x.line);
	td_buf_release(&x.session);
	if (rc < 0)
		fprintf(stderr, "tandem export: stored data is damaged: %s (run 'tandem check')\n",
			td_strerror(rc));
	if (fflush(stdout) != 0)
		return 1;
	return rc < 0 ? 1 : 0;
}
