/*
 * chcmp.c - the C half of bench/clickhouse/compare.sh, which checks tandem's
 * trends, funnels and retention against ClickHouse on the same generated data.
 *
 *   chcmp convert --tsv FILE   Segment NDJSON on stdin -> the same NDJSON on
 *                              stdout with every "timestamp" cut to whole
 *                              seconds, and one TSV row per message
 *                              (person id, unix seconds, event name) to FILE
 *                              once the input has ended
 *   chcmp figures              a tandem query result (JSON) on stdin -> the
 *                              figures as TSV, in the layout of the
 *                              ClickHouse queries in compare.sh
 *   chcmp memquery FILE QUERY  runs QUERY (JSON, docs/queries.md) over an
 *                              NDJSON file with the engine and the in-memory
 *                              source, and prints the result: a cross-check
 *                              of `tandem query` that skips the store
 *   chcmp storequery DIR RUNS QUERY
 *                              opens the event store DIR/events read-only
 *                              once, prints QUERY's result, then runs it RUNS
 *                              more times and prints the best time in ms on
 *                              stderr: the query as a long-running server
 *                              answers it, without process start and store
 *                              open (what `tandem query` adds per call)
 *
 * Why whole seconds: the windowFunnel() of ClickHouse 18.16 (Debian 12) only
 * takes DateTime / UInt32 timestamps, so millisecond data cannot be compared
 * with it exactly. compare.sh feeds both systems the cut data.
 *
 * Event names and persons follow the store (src/store/store.h): a track's
 * "event", "$page", "$screen", "$identify", "$group", "$alias" for the other
 * types; persons come from identity resolution (src/identity/identity.h) run
 * over the messages in file order, as tandem's applier runs it, and every
 * row carries its person's final canonical id (merges count for the past,
 * as in tandem's queries). The TSV is therefore written once every message
 * has been read.
 */
#include "base/buf.h"
#include "base/intern.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "collect/jscan.h"
#include "identity/identity.h"
#include "query/memsource.h"
#include "query/query.h"
#include "store/seg.h"
#include "store/store.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define MAX_LINE (4u << 20)
#define MAX_ID	 4096

static const char usage[] = "usage: chcmp convert --tsv FILE < in.ndjson > out.ndjson\n"
			    "       chcmp figures < result.json\n"
			    "       chcmp memquery FILE.ndjson QUERY_JSON\n"
			    "       chcmp storequery DATA_DIR RUNS QUERY_JSON\n";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("chcmp: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* ---- one NDJSON line -> (event, ts, person) ---- */

struct msg {
	char event[MAX_ID];
	bool is_group;
	int64_t ts;
	struct jspan ts_span; /* the "timestamp" string, quotes included */
	struct identity *ident;
	struct identity_msg idm;
};

static void on_leaf(void *ctx, const char *path, size_t pathlen, enum seg_leaf_kind k,
		    const char *str, size_t slen, double num, bool b)
{
	struct msg *g = ctx;
	seg_identity_leaf(g->ident, &g->idm, path, pathlen, k, str, slen, num);
}

/* The person of a parsed line (the store gathers the same fields). */
static uint32_t resolve(struct msg *g, const char *line, size_t len, uint64_t lsn)
{
	identity_msg_reset(&g->idm);
	g->idm.lsn = lsn;
	g->idm.ts = g->ts;
	g->idm.is_group = g->is_group;
	if (seg_flatten(line, len, on_leaf, g))
		die("line %llu: the store's JSON reader refuses it", (unsigned long long)lsn);
	return identity_resolve(g->ident, &g->idm);
}

static struct identity *graph_new(void)
{
	struct identity *id;
	char err[256];
	if (identity_open(&id, NULL, NULL, UINT64_MAX, 0, false, err, sizeof(err)))
		die("%s", err);
	return id;
}

/* Returns NULL or what is wrong with the line. */
static const char *parse_msg(const char *s, size_t len, struct msg *g)
{
	struct jspan obj;
	struct jscan_error err;
	if (jscan_document(s, len, &obj, &err) != J_OBJECT)
		return "not a JSON object";
	char type[32] = "";
	bool has_ts = false;
	g->event[0] = '\0';
	size_t pos = 0;
	struct jmember m;
	while (jscan_next_member(s, obj, &pos, &m)) {
		if (jscan_key_is(s, &m, "type") && m.type == J_STRING) {
			if (jscan_string(s, m.val, type, sizeof(type)) == (size_t)-1)
				type[0] = '\0';
		} else if (jscan_key_is(s, &m, "event") && m.type == J_STRING) {
			if (jscan_string(s, m.val, g->event, sizeof(g->event)) == (size_t)-1)
				return "\"event\" too long";
		} else if (jscan_key_is(s, &m, "timestamp") && m.type == J_STRING) {
			/* +1/-1: without the quotes */
			if (td_time_parse(s + m.val.start + 1, m.val.end - m.val.start - 2, &g->ts))
				return "bad \"timestamp\"";
			g->ts_span = m.val;
			has_ts = true;
		}
	}
	if (!has_ts)
		return "no \"timestamp\" (the comparison needs explicit times)";
	if (!strcmp(type, "track")) {
		if (!g->event[0])
			return "track without \"event\"";
	} else if (!strcmp(type, "page") || !strcmp(type, "screen") || !strcmp(type, "identify") ||
		   !strcmp(type, "group") || !strcmp(type, "alias")) {
		g->event[0] = '$';
		memcpy(g->event + 1, type, strlen(type) + 1);
	} else {
		return "unknown \"type\"";
	}
	g->is_group = !strcmp(type, "group");
	return NULL;
}

static void put_tsv_field(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '\t':
			fputs("\\t", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		default:
			putc(*s, f);
		}
	}
}

static char *read_line(FILE *f, char **buf, size_t *cap, size_t *len)
{
	ssize_t n = getline(buf, cap, f);
	if (n < 0)
		return NULL;
	if (n > 0 && (*buf)[n - 1] == '\n')
		(*buf)[--n] = '\0';
	*len = (size_t)n;
	return *buf;
}

static bool blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

/*
 * Cuts the timestamp text to whole seconds in place: the digits of a fraction
 * of a second become zeros, so the line keeps its length. The caller parses
 * the result again to check it.
 */
static void cut_fraction(char *s, struct jspan v)
{
	size_t i = v.start + 1, end = v.end - 1;
	while (i < end && s[i] != '.')
		i++;
	for (i++; i < end && s[i] >= '0' && s[i] <= '9'; i++)
		s[i] = '0';
}

/* A converted row, kept until every person's canonical id is known. */
struct row {
	uint32_t pid, sec, event;
};

static int cmd_convert(int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[1], "--tsv")) {
		fputs(usage, stderr);
		return 2;
	}
	static char obuf[1 << 20], tbuf[1 << 20];
	setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
	struct msg *g = td_malloc(sizeof(*g));
	g->ident = graph_new();
	struct intern events;
	intern_init(&events);
	struct row *rows = NULL;
	size_t nrows = 0, caprows = 0;
	char *line = NULL;
	size_t cap = 0, len;
	unsigned long long lineno = 0;
	while (read_line(stdin, &line, &cap, &len)) {
		lineno++;
		if (blank(line, len))
			continue;
		if (len > MAX_LINE)
			die("line %llu: longer than 4 MiB", lineno);
		const char *why = parse_msg(line, len, g);
		if (why)
			die("line %llu: %s", lineno, why);
		if (g->ts < 0 || g->ts / 1000 > UINT32_MAX)
			die("line %llu: timestamp outside 1970..2106 (ClickHouse DateTime)",
			    lineno);
		int64_t sec = g->ts / 1000;
		cut_fraction(line, g->ts_span);
		int64_t check;
		if (td_time_parse(line + g->ts_span.start + 1,
				  g->ts_span.end - g->ts_span.start - 2, &check) ||
		    check != sec * 1000)
			die("line %llu: cannot cut the timestamp to whole seconds", lineno);
		if (nrows == caprows) {
			caprows = caprows ? caprows * 2 : 1u << 20;
			rows = td_realloc(rows, caprows * sizeof(*rows));
		}
		rows[nrows++] = (struct row){resolve(g, line, len, lineno), (uint32_t)sec,
					     intern_id(&events, g->event, strlen(g->event))};
		fwrite(line, 1, len, stdout);
		putc('\n', stdout);
	}
	if (ferror(stdin))
		die("read error on stdin");
	if (fclose(stdout))
		die("write error on stdout");
	/* opened only now: the reader of a FIFO waits until the rows are ready */
	FILE *tsv = fopen(argv[2], "w");
	if (!tsv)
		die("%s: cannot open for writing", argv[2]);
	setvbuf(tsv, tbuf, _IOFBF, sizeof(tbuf));
	struct identity_view *v = identity_view_publish(g->ident);
	for (size_t i = 0; i < nrows; i++) {
		uint32_t pid = v->canonical ? v->canonical[rows[i].pid] : rows[i].pid;
		fprintf(tsv, "%" PRIu32 "\t%" PRIu32 "\t", pid, rows[i].sec);
		put_tsv_field(tsv, intern_str(&events, rows[i].event));
		putc('\n', tsv);
	}
	if (fclose(tsv))
		die("%s: write error", argv[2]);
	struct identity_stats st;
	identity_get_stats(g->ident, &st);
	fprintf(stderr, "chcmp: %llu lines, %llu persons (%llu merges)\n", lineno,
		(unsigned long long)st.persons, (unsigned long long)st.merges);
	identity_view_release(v);
	identity_close(g->ident);
	intern_release(&events);
	free(rows);
	free(line);
	free(g);
	return 0;
}

/* ---- tandem's result JSON -> TSV figures ---- */

static void put_num(const cJSON *v)
{
	if (!cJSON_IsNumber(v)) {
		fputs("null", stdout);
		return;
	}
	double d = v->valuedouble;
	if (d == (double)(int64_t)d && d > -9e15 && d < 9e15)
		printf("%" PRId64, (int64_t)d);
	else
		printf("%.17g", d);
}

/* Bucket and cohort labels: "2025-09-01T00:00:00" -> "2025-09-01" (day, week, month). */
static void put_label(const cJSON *v)
{
	const char *s = cJSON_IsString(v) ? v->valuestring : "?";
	if (strlen(s) == 19 && !strcmp(s + 10, "T00:00:00"))
		printf("%.10s", s);
	else
		fputs(s, stdout);
}

static int cmd_figures(void)
{
	struct td_buf in;
	td_buf_init(&in, (size_t)1 << 30);
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		if (td_buf_append(&in, chunk, n))
			die("result over 1 GiB");
	cJSON *r = cJSON_ParseWithLength(in.data, in.len);
	if (!r)
		die("the result on stdin is not JSON");
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(r, "kind");
	const char *k = cJSON_IsString(kind) ? kind->valuestring : "";
	const cJSON *it;
	if (!strcmp(k, "trends")) {
		/* per series: "bucket<TAB>value" for non-zero buckets, then "total<TAB>value" */
		const cJSON *buckets = cJSON_GetObjectItemCaseSensitive(r, "buckets");
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "series"))
		{
			const cJSON *vals = cJSON_GetObjectItemCaseSensitive(it, "values");
			int i = 0;
			const cJSON *v;
			cJSON_ArrayForEach(v, vals)
			{
				if (!(cJSON_IsNumber(v) && v->valuedouble == 0)) {
					put_label(cJSON_GetArrayItem(buckets, i));
					putchar('\t');
					put_num(v);
					putchar('\n');
				}
				i++;
			}
			fputs("total\t", stdout);
			put_num(cJSON_GetObjectItemCaseSensitive(it, "total"));
			putchar('\n');
		}
	} else if (!strcmp(k, "funnel")) {
		/* "step<TAB>persons" */
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "steps"))
		{
			put_num(cJSON_GetObjectItemCaseSensitive(it, "step"));
			putchar('\t');
			put_num(cJSON_GetObjectItemCaseSensitive(it, "persons"));
			putchar('\n');
		}
	} else if (!strcmp(k, "retention")) {
		/* "cohort<TAB>size<TAB>values..." for non-empty cohorts */
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "cohorts"))
		{
			const cJSON *size = cJSON_GetObjectItemCaseSensitive(it, "size");
			if (cJSON_IsNumber(size) && size->valuedouble == 0)
				continue;
			put_label(cJSON_GetObjectItemCaseSensitive(it, "start"));
			putchar('\t');
			put_num(size);
			const cJSON *v;
			cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(it, "values"))
			{
				putchar('\t');
				put_num(v);
			}
			putchar('\n');
		}
	} else {
		die("result of kind \"%s\": only trends, funnel and retention are compared", k);
	}
	cJSON_Delete(r);
	td_buf_release(&in);
	return fflush(stdout) ? 1 : 0;
}

/* ---- the engine over an in-memory source ---- */

static int cmd_memquery(int argc, char **argv)
{
	if (argc != 3) {
		fputs(usage, stderr);
		return 2;
	}
	FILE *f = fopen(argv[1], "r");
	if (!f)
		die("%s: cannot open", argv[1]);
	struct memsource *ms = memsource_new();
	struct msg *g = td_malloc(sizeof(*g));
	g->ident = graph_new();
	char *line = NULL;
	size_t cap = 0, len;
	unsigned long long lineno = 0;
	while (read_line(f, &line, &cap, &len)) {
		lineno++;
		if (blank(line, len))
			continue;
		const char *why = parse_msg(line, len, g);
		if (why)
			die("line %llu: %s", lineno, why);
		memsource_add(ms, g->event, g->ts, resolve(g, line, len, lineno));
	}
	fclose(f);
	struct identity_view *v = identity_view_publish(g->ident);
	memsource_set_persons(ms, v->n, v->canonical);
	memsource_build(ms, 65536, 0);
	struct td_buf out;
	td_buf_init(&out, (size_t)256 << 20);
	char err[512];
	int rc = query_run(argv[2], strlen(argv[2]), memsource_source(ms), &out, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "chcmp: query failed (%s): %s\n", td_strerror(rc), err);
	} else {
		fwrite(out.data, 1, out.len, stdout);
		putchar('\n');
	}
	td_buf_release(&out);
	memsource_free(ms);
	identity_view_release(v);
	identity_close(g->ident);
	free(g);
	free(line);
	return rc ? 1 : 0;
}

/* ---- the engine over the store, timed in-process ---- */

static int cmd_storequery(int argc, char **argv)
{
	if (argc != 4) {
		fputs(usage, stderr);
		return 2;
	}
	char *end;
	long runs = strtol(argv[2], &end, 10);
	if (*end || runs < 1 || runs > 1000)
		die("RUNS must be 1..1000, not '%s'", argv[2]);
	char dir[4096];
	if ((size_t)snprintf(dir, sizeof(dir), "%s/events", argv[1]) >= sizeof(dir))
		die("%s: path too long", argv[1]);
	struct store_options so = {.dir = dir, .read_only = true};
	struct store *s;
	int rc = store_open(&s, &so);
	if (rc)
		die("cannot open the event store in %s: %s", dir, td_strerror(rc));
	struct store_snap *snap = store_snapshot(s);
	const struct query_source *src = store_snap_source(snap);
	struct td_buf out;
	td_buf_init(&out, (size_t)256 << 20);
	char err[512];
	const char *q = argv[3];
	uint64_t best = UINT64_MAX;
	for (long i = 0; i <= runs && !rc; i++) {
		td_buf_reset(&out);
		uint64_t t0 = td_mono_ns();
		rc = query_run(q, strlen(q), src, &out, err, sizeof(err));
		uint64_t t = td_mono_ns() - t0;
		if (i == 0 && !rc) { /* the first run prints the result and warms up */
			fwrite(out.data, 1, out.len, stdout);
			putchar('\n');
		} else if (t < best) {
			best = t;
		}
	}
	if (rc)
		fprintf(stderr, "chcmp: query failed (%s): %s\n", td_strerror(rc), err);
	else
		fprintf(stderr, "%.3f\n", (double)best / 1e6);
	td_buf_release(&out);
	store_snap_release(snap);
	store_close(s);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "convert"))
		return cmd_convert(argc - 1, argv + 1);
	if (argc == 2 && !strcmp(argv[1], "figures"))
		return cmd_figures();
	if (argc >= 2 && !strcmp(argv[1], "memquery"))
		return cmd_memquery(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "storequery"))
		return cmd_storequery(argc - 1, argv + 1);
	fputs(usage, argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
	return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
}
