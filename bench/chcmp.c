/*
 * chcmp.c - the C half of bench/clickhouse/compare.sh, which checks tandem's
 * trends, funnels and retention against ClickHouse on the same generated data.
 *
 *   chcmp convert --tsv FILE   Segment NDJSON on stdin -> the same NDJSON on
 *                              stdout with every "timestamp" cut to whole
 *                              seconds, and one TSV row per message
 *                              (person id, unix seconds, event name) to FILE
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
 * types; the person key is the userId when the message has one, else the
 * anonymousId. Person keys become dense ids in order of first appearance (the
 * TSV carries the id; ClickHouse groups by a UInt32 then, as tandem does).
 * When identity resolution lands, persons must follow it here too.
 */
#include "base/buf.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "collect/jscan.h"
#include "query/memsource.h"
#include "query/query.h"
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

/* ---- person keys -> dense ids ---- */

struct pmap {
	uint32_t *slot; /* id + 1, 0 = empty */
	size_t mask;
	char **key;
	size_t *keylen;
	uint32_t n, cap;
};

static void pmap_grow(struct pmap *m)
{
	size_t nslots = m->slot ? (m->mask + 1) * 2 : 1u << 16;
	uint32_t *slot = td_calloc(nslots, sizeof(*slot));
	for (uint32_t id = 0; id < m->n; id++) {
		size_t h = XXH3_64bits(m->key[id], m->keylen[id]) & (nslots - 1);
		while (slot[h])
			h = (h + 1) & (nslots - 1);
		slot[h] = id + 1;
	}
	free(m->slot);
	m->slot = slot;
	m->mask = nslots - 1;
}

static uint32_t pmap_id(struct pmap *m, const char *k, size_t len)
{
	if (!m->slot || (size_t)m->n * 2 >= m->mask + 1)
		pmap_grow(m);
	size_t h = XXH3_64bits(k, len) & m->mask;
	for (;; h = (h + 1) & m->mask) {
		uint32_t s = m->slot[h];
		if (!s)
			break;
		if (m->keylen[s - 1] == len && !memcmp(m->key[s - 1], k, len))
			return s - 1;
	}
	if (m->n == UINT32_MAX)
		die("more than 2^32 - 1 persons");
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 1024;
		m->key = td_realloc(m->key, m->cap * sizeof(*m->key));
		m->keylen = td_realloc(m->keylen, m->cap * sizeof(*m->keylen));
	}
	m->key[m->n] = td_strndup(k, len);
	m->keylen[m->n] = len;
	m->slot[h] = m->n + 1;
	return m->n++;
}

static void pmap_free(struct pmap *m)
{
	for (uint32_t i = 0; i < m->n; i++)
		free(m->key[i]);
	free(m->key);
	free(m->keylen);
	free(m->slot);
}

/* ---- one NDJSON line -> (event, ts, person key) ---- */

struct msg {
	char event[MAX_ID];
	char person[MAX_ID];
	size_t person_len;
	int64_t ts;
	struct jspan ts_span; /* the "timestamp" string, quotes included */
};

/* An id member (string, or a number as written) into out; false if absent or empty. */
static bool id_text(const char *s, const struct jmember *m, char *out, size_t *outlen)
{
	size_t n;
	if (m->type == J_STRING) {
		n = jscan_string(s, m->val, out, MAX_ID);
		if (n == (size_t)-1)
			return false;
	} else if (m->type == J_NUMBER) {
		n = m->val.end - m->val.start;
		if (n >= MAX_ID)
			return false;
		memcpy(out, s + m->val.start, n);
		out[n] = '\0';
	} else {
		return false;
	}
	*outlen = n;
	return n > 0;
}

/* Returns NULL or what is wrong with the line. */
static const char *parse_msg(const char *s, size_t len, struct msg *g)
{
	struct jspan obj;
	struct jscan_error err;
	if (jscan_document(s, len, &obj, &err) != J_OBJECT)
		return "not a JSON object";
	char type[32] = "", uid[MAX_ID], aid[MAX_ID];
	size_t uidlen = 0, aidlen = 0;
	bool has_uid = false, has_aid = false, has_ts = false;
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
		} else if (jscan_key_is(s, &m, "userId")) {
			has_uid = id_text(s, &m, uid, &uidlen);
		} else if (jscan_key_is(s, &m, "anonymousId")) {
			has_aid = id_text(s, &m, aid, &aidlen);
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
	if (has_uid) {
		memcpy(g->person, uid, uidlen + 1);
		g->person_len = uidlen;
	} else if (has_aid) {
		memcpy(g->person, aid, aidlen + 1);
		g->person_len = aidlen;
	} else {
		return "neither \"userId\" nor \"anonymousId\"";
	}
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

static int cmd_convert(int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[1], "--tsv")) {
		fputs(usage, stderr);
		return 2;
	}
	FILE *tsv = fopen(argv[2], "w");
	if (!tsv)
		die("%s: cannot open for writing", argv[2]);
	static char obuf[1 << 20], tbuf[1 << 20];
	setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
	setvbuf(tsv, tbuf, _IOFBF, sizeof(tbuf));
	struct pmap pm = {0};
	struct msg *g = td_malloc(sizeof(*g));
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
		uint32_t pid = pmap_id(&pm, g->person, g->person_len);
		fprintf(tsv, "%" PRIu32 "\t%" PRId64 "\t", pid, sec);
		put_tsv_field(tsv, g->event);
		putc('\n', tsv);
		fwrite(line, 1, len, stdout);
		putc('\n', stdout);
	}
	if (ferror(stdin))
		die("read error on stdin");
	if (fflush(stdout) || ferror(stdout))
		die("write error on stdout");
	if (fclose(tsv))
		die("%s: write error", argv[2]);
	fprintf(stderr, "chcmp: %llu lines, %" PRIu32 " persons\n", lineno, pm.n);
	free(line);
	free(g);
	pmap_free(&pm);
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
	struct pmap pm = {0};
	struct msg *g = td_malloc(sizeof(*g));
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
		memsource_add(ms, g->event, g->ts, pmap_id(&pm, g->person, g->person_len));
	}
	fclose(f);
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
	pmap_free(&pm);
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
