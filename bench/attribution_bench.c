/*
 * attribution_bench.c - campaign attribution over the column store: N
 * generated events (visits that arrive by paid campaigns, search, social,
 * email or directly, pages, orders with revenue) go through the collector's
 * normalization into a store, then attribution queries (every model side
 * by side, with costs per campaign and day) run on a snapshot of it, warm,
 * and the median of the runs is printed against the target.
 *
 * usage: attribution_bench [--events N] [--days D] [--dir DIR] [--reuse]
 *                          [--runs R] [--threads T]
 *
 * Events carry both what an SDK sends (context.campaign, the page's
 * referrer) and the enriched fields the collector derives from it
 * (enriched.campaign.*, enriched.referrer.*, enriched.channel), so the
 * store has them whether or not the collector enriches. Deterministic: the
 * same options make the same store. With --reuse and an existing DIR the
 * build is skipped.
 */
#include "base/td.h"
#include "base/timeutil.h"
#include "collect/collect.h"
#include "query/query.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define END_MS	    1711929600000LL /* 2024-04-01T00:00:00Z */
#define DAY_MS	    86400000LL
#define TARGET_MS   1000.0 /* 100M events; the figure here scales with --events */
#define MAX_RUNS    50
#define EV_PER_USER 60 /* events per person over the period, on average */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static double unif(void)
{
	return (double)(rnd() >> 11) / 9007199254740992.0;
}

/* How a visit arrives. */
struct touch {
	const char *source, *medium, *name; /* campaign, or NULL */
	const char *rsource, *rmedium;	    /* referrer, or NULL */
	const char *channel;
	double share;	   /* of visits */
	double daily_cost; /* EUR per day, campaigns only */
};

static const struct touch touches[] = {
    {NULL, NULL, NULL, NULL, NULL, "Direct", 0.34, 0},
    {NULL, NULL, NULL, "Google", "search", "Organic Search", 0.20, 0},
    {NULL, NULL, NULL, "Facebook", "social", "Organic Social", 0.06, 0},
    {NULL, NULL, NULL, "news.example", "unknown", "Referral", 0.04, 0},
    {"google", "cpc", "spring_sale", "Google", "search", "Paid Search", 0.10, 900},
    {"google", "cpc", "brand", "Google", "search", "Paid Search", 0.06, 300},
    {"bing", "cpc", "spring_sale", "Bing", "search", "Paid Search", 0.03, 200},
    {"facebook", "paid_social", "retargeting", "Facebook", "social", "Paid Social", 0.06, 500},
    {"facebook", "paid_social", "lookalike", "Facebook", "social", "Paid Social", 0.03, 400},
    {"newsletter", "email", "weekly", NULL, NULL, "Email", 0.05, 50},
    {"partner", "affiliate", "coupons", "coupons.example", "unknown", "Affiliate", 0.02, 150},
    {"display", "cpm", "awareness", "ads.example", "unknown", "Display", 0.01, 250},
};
#define NTOUCH (sizeof(touches) / sizeof(touches[0]))

static const struct touch *pick_touch(void)
{
	double u = unif(), acc = 0;
	for (size_t i = 0; i < NTOUCH; i++)
		if (u < (acc += touches[i].share))
			return &touches[i];
	return &touches[0];
}

struct ev {
	int64_t ts;
	uint32_t user;
	uint8_t kind;	 /* 0 landing page, 1 page, 2 product viewed, 3 order */
	uint8_t touch;	 /* landing: index into touches */
	uint16_t amount; /* order: revenue */
};

static int cmp_ev(const void *a, const void *b)
{
	const struct ev *x = a, *y = b;
	return (x->ts > y->ts) - (x->ts < y->ts);
}

static void iso(int64_t ms, char *out, size_t cap)
{
	int64_t days = ms / DAY_MS, rem = ms % DAY_MS;
	/* civil from days (Howard Hinnant) */
	int64_t z = days + 719468, era = z / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	snprintf(out, cap, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ",
		 (long long)(y + (m <= 2)), m, d, (long long)(rem / 3600000),
		 (long long)(rem / 60000 % 60), (long long)(rem / 1000 % 60),
		 (long long)(rem % 1000));
}

/* One message as an SDK would send it, plus its enriched fields. */
static size_t format(const struct ev *e, uint64_t n, char *buf, size_t cap)
{
	char ts[64];
	iso(e->ts, ts, sizeof(ts));
	static const char *const names[] = {"page", "page", "Product Viewed", "Order Completed"};
	int len;
	if (e->kind == 3)
		return (size_t)snprintf(buf, cap,
					"{\"type\":\"track\",\"event\":\"%s\",\"userId\":\"u%u\","
					"\"timestamp\":\"%s\",\"messageId\":\"b%llu\","
					"\"properties\":{\"revenue\":%u}}",
					names[3], e->user, ts, (unsigned long long)n, e->amount);
	if (e->kind == 2)
		return (size_t)snprintf(buf, cap,
					"{\"type\":\"track\",\"event\":\"%s\",\"userId\":\"u%u\","
					"\"timestamp\":\"%s\",\"messageId\":\"b%llu\","
					"\"properties\":{\"sku\":\"p%u\"}}",
					names[2], e->user, ts, (unsigned long long)n,
					e->user % 500);
	len = snprintf(buf, cap,
		       "{\"type\":\"page\",\"userId\":\"u%u\",\"timestamp\":\"%s\","
		       "\"messageId\":\"b%llu\"",
		       e->user, ts, (unsigned long long)n);
	if (e->kind == 1)
		return (size_t)len + (size_t)snprintf(buf + len, cap - (size_t)len, "}");
	const struct touch *t = &touches[e->touch];
	char camp[256] = "", ref[256] = "", ecamp[256] = "", eref[256] = "";
	if (t->name) {
		snprintf(camp, sizeof(camp),
			 "\"campaign\":{\"source\":\"%s\",\"medium\":\"%s\",\"name\":\"%s\"}",
			 t->source, t->medium, t->name);
		snprintf(ecamp, sizeof(ecamp), "%s,", camp);
	}
	if (t->rsource) {
		snprintf(ref, sizeof(ref), "\"page\":{\"referrer\":\"https://%s/\"}", t->rsource);
		snprintf(eref, sizeof(eref), "\"referrer\":{\"source\":\"%s\",\"medium\":\"%s\"},",
			 t->rsource, t->rmedium);
	}
	len += snprintf(buf + len, cap - (size_t)len,
			",\"context\":{%s%s%s},\"enriched\":{%s%s\"channel\":\"%s\"}}", camp,
			*camp && *ref ? "," : "", ref, ecamp, eref, t->channel);
	return (size_t)len;
}

static double now_s(void)
{
	return (double)td_mono_ns() / 1e9;
}

static int build(const char *dir, uint64_t events, uint32_t days)
{
	struct store_options so = {.dir = dir};
	struct store *s;
	if (store_open(&s, &so)) {
		fprintf(stderr, "attribution_bench: cannot open %s\n", dir);
		return 1;
	}
	uint32_t users = (uint32_t)(events / EV_PER_USER + 1);
	uint64_t per_day = events / days, made = 0, lsn = 0;
	struct ev *ev = td_malloc((per_day + 64) * sizeof(*ev));
	struct collect_limits lim;
	collect_limits_default(&lim);
	struct collect_origin origin = {.source_id = 1, .received_ms = END_MS};
	struct collect_batch b;
	collect_batch_init(&b);
	char line[2048];
	double t0 = now_s();
	for (uint32_t d = 0; d < days; d++) {
		uint64_t want = d + 1 == days ? events - made : per_day, n = 0;
		int64_t day0 = END_MS - (int64_t)(days - d) * DAY_MS;
		while (n < want) {
			/* a visit: landing, pages, maybe an order */
			uint32_t user = (uint32_t)(rnd() % users);
			int64_t t = day0 + (int64_t)(rnd() % (uint64_t)(DAY_MS - 3600000));
			const struct touch *tc = pick_touch();
			ev[n++] = (struct ev){t, user, 0, (uint8_t)(tc - touches), 0};
			int pages = 1 + (int)(rnd() % 7);
			for (int p = 0; p < pages && n < want; p++) {
				t += 20000 + (int64_t)(rnd() % 240000);
				ev[n++] = (struct ev){t, user, (uint8_t)(p % 2 ? 2 : 1), 0, 0};
			}
			if (n < want && unif() < 0.06) {
				t += 60000;
				ev[n++] = (struct ev){t, user, 3, 0, (uint16_t)(10 + rnd() % 290)};
			}
		}
		qsort(ev, n, sizeof(*ev), cmp_ev);
		for (uint64_t i = 0; i < n; i++) {
			size_t len = format(&ev[i], made + i, line, sizeof(line));
			collect_prepare_line(line, len, 0, &origin, &lim, &b);
			if (b.n == 4096 || i + 1 == n) {
				for (size_t k = 0; k < b.n; k++)
					store_apply(s, ++lsn, b.payloads.data + b.off[k], b.len[k]);
				store_tick(s, false);
				collect_batch_reset(&b);
			}
		}
		made += n;
		if (d % 10 == 9)
			fprintf(stderr, "  %llu events (%.0f s)\n", (unsigned long long)made,
				now_s() - t0);
	}
	store_tick(s, true);
	collect_batch_release(&b);
	free(ev);
	printf("build: %llu events, %u persons, in %.1f s\n", (unsigned long long)lsn, users,
	       now_s() - t0);
	store_close(s);
	return 0;
}

/* ---- costs: every campaign, every day of the period ---------------- */

static uint32_t g_days;

static int load_costs(void *ctx, const char *first, const char *last, struct query_cost **out,
		      size_t *n, char *err, size_t errcap)
{
	(void)ctx;
	(void)err;
	(void)errcap;
	struct query_cost *rows = td_calloc((size_t)g_days * NTOUCH + 1, sizeof(*rows));
	size_t k = 0;
	for (uint32_t d = 0; d < g_days; d++) {
		char day[64];
		iso(END_MS - (int64_t)(g_days - d) * DAY_MS, day, sizeof(day));
		day[10] = '\0';
		if (strcmp(day, first) < 0 || strcmp(day, last) > 0)
			continue;
		for (size_t i = 0; i < NTOUCH; i++) {
			if (!touches[i].name)
				continue;
			struct query_cost *r = &rows[k++];
			memcpy(r->date, day, 11);
			r->source = touches[i].source;
			r->medium = touches[i].medium;
			r->campaign = touches[i].name;
			r->currency = "EUR";
			r->cost = touches[i].daily_cost;
		}
	}
	*out = rows;
	*n = k;
	return 0;
}

static void release_costs(void *ctx, struct query_cost *rows, size_t n)
{
	(void)ctx;
	(void)n;
	free(rows);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Median ms of runs warm runs (after one that warms up). */
static double run_query(const struct query_source *src, const char *q, int runs, unsigned threads,
			char *first, size_t cap)
{
	double t[MAX_RUNS];
	struct query_limits lim = {.threads = threads};
	for (int r = 0; r <= runs; r++) {
		struct td_buf out;
		td_buf_init(&out, 256u << 20);
		char err[512];
		double a = now_s();
		int rc = query_run_limited(q, strlen(q), src, &lim, &out, err, sizeof(err));
		double ms = (now_s() - a) * 1000;
		if (rc) {
			fprintf(stderr, "attribution_bench: query failed: %s\n", err);
			exit(1);
		}
		if (r == 0)
			snprintf(first, cap, "%.300s", out.data);
		else
			t[r - 1] = ms;
		td_buf_release(&out);
	}
	qsort(t, (size_t)runs, sizeof(double), cmp_double);
	return runs % 2 ? t[runs / 2] : (t[runs / 2 - 1] + t[runs / 2]) / 2;
}

int main(int argc, char **argv)
{
	store_tune_malloc();
	uint64_t events = 10000000;
	uint32_t days = 90;
	const char *dir = "/tmp/tandem-attribution-bench";
	bool reuse = false;
	int runs = 5;
	unsigned threads = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--events") && v)
			events = strtoull(v, NULL, 10), i++;
		else if (!strcmp(a, "--days") && v)
			days = (uint32_t)strtoul(v, NULL, 10), i++;
		else if (!strcmp(a, "--dir") && v)
			dir = v, i++;
		else if (!strcmp(a, "--runs") && v)
			runs = (int)strtol(v, NULL, 10), i++;
		else if (!strcmp(a, "--threads") && v)
			threads = (unsigned)strtoul(v, NULL, 10), i++;
		else if (!strcmp(a, "--reuse"))
			reuse = true;
		else {
			fprintf(stderr,
				"usage: attribution_bench [--events N] [--days D] [--dir DIR] "
				"[--reuse] [--runs R] [--threads T]\n");
			return 2;
		}
	}
	if (runs < 1 || runs > MAX_RUNS || days < 40 || days > 3650 || events < days) {
		fprintf(stderr,
			"attribution_bench: --runs 1..%d, --days 40..3650, --events >= "
			"--days\n",
			MAX_RUNS);
		return 2;
	}
	g_days = days;
	char man[4200];
	snprintf(man, sizeof(man), "%s/MANIFEST", dir);
	struct stat sb;
	if (!(reuse && stat(man, &sb) == 0)) {
		printf("building %s: %llu events over %u days\n", dir, (unsigned long long)events,
		       days);
		if (build(dir, events, days))
			return 1;
	}
	struct store_options so = {.dir = dir, .read_only = true};
	struct store *s;
	if (store_open(&s, &so)) {
		fprintf(stderr, "attribution_bench: cannot open %s\n", dir);
		return 1;
	}
	struct store_stats st;
	store_get_stats(s, &st);
	printf("store: %llu events, %llu persons, %llu segments\n", (unsigned long long)st.rows,
	       (unsigned long long)st.pids, (unsigned long long)st.segments);
	/* the last 30 days, 30 days of lookback before them */
	char from[64], to[64];
	iso(END_MS - 30 * DAY_MS, from, sizeof(from));
	iso(END_MS - DAY_MS, to, sizeof(to));
	from[10] = to[10] = '\0';
	char q[3][512];
	snprintf(q[0], sizeof(q[0]),
		 "{\"kind\":\"attribution\",\"conversion\":{\"event\":\"Order Completed\"},"
		 "\"touchpoint\":\"channel\",\"date_from\":\"%s\",\"date_to\":\"%s\"}",
		 from, to);
	snprintf(q[1], sizeof(q[1]),
		 "{\"kind\":\"attribution\",\"conversion\":{\"event\":\"Order Completed\"},"
		 "\"touchpoint\":\"campaign\",\"date_from\":\"%s\",\"date_to\":\"%s\"}",
		 from, to);
	snprintf(q[2], sizeof(q[2]),
		 "{\"kind\":\"attribution\",\"conversion\":{\"event\":\"Order Completed\"},"
		 "\"touchpoint\":\"source_medium\",\"models\":[\"last_non_direct\"],"
		 "\"date_from\":\"%s\",\"date_to\":\"%s\"}",
		 from, to);
	static const char *const what[] = {"6 models by channel, with costs",
					   "6 models by campaign, with costs",
					   "last non-direct by source / medium"};
	struct query_costs costs = {.load = load_costs, .release = release_costs};
	struct store_snap *sn = store_snapshot(s);
	struct query_source src = *store_snap_source(sn);
	src.costs = &costs;
	double scaled = TARGET_MS * (double)st.rows / 1e8;
	printf("\n%-40s %10s %14s\n", "attribution, 30 days (median, warm)", "ms",
	       "target at 100M");
	for (int i = 0; i < 3; i++) {
		char first[320];
		double ms = run_query(&src, q[i], runs, threads, first, sizeof(first));
		printf("%-40s %10.1f %14.0f  %s (scaled to this size: %.0f ms)\n", what[i], ms,
		       TARGET_MS, ms <= scaled ? "PASS" : "MISS", scaled);
		if (i == 0)
			printf("  %s...\n", first);
	}
	store_snap_release(sn);
	store_close(s);
	return 0;
}
