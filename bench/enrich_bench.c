/*
 * enrich_bench.c - the cost of enrichment at ingest, on one core.
 *
 * Generates demo messages (src/demo: landing pages with UTM links and click
 * ids, referrers, browsers, phones, bots), then times the collector's
 * normalization of every message (collect_prepare_line) without and with an
 * enricher. The difference per message is what enrichment adds to the
 * request thread: finding the inputs in the message, enrich_event, writing
 * the "enriched" object. Prints the median of the runs, and the channel mix
 * the demo data gets.
 *
 *   build/bench/enrich_bench [--events N] [--runs R] [--config JSON]
 *                            [--ip keep|truncate|drop]
 */
#include "base/td.h"
#include "base/timeutil.h"
#include "collect/collect.h"
#include "demo/demo.h"
#include "enrich/enrich.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct lines {
	char *text;
	size_t *off, n, cap, len, textcap;
};

static int keep(void *ctx, const char *line, size_t len)
{
	struct lines *l = ctx;
	if (l->len + len + 1 > l->textcap) {
		l->textcap = (l->len + len + 1) * 2;
		l->text = td_realloc(l->text, l->textcap);
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1024;
		l->off = td_realloc(l->off, l->cap * sizeof(*l->off));
	}
	l->off[l->n++] = l->len;
	memcpy(l->text + l->len, line, len - 1); /* without the '\n' */
	l->text[l->len + len - 1] = '\0';
	l->len += len;
	return 0;
}

/* CPU time of this thread, ns: on a shared machine wall time would also
 * count the time other processes held the core. */
static uint64_t cpu_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Normalizes every line once; returns CPU ns per message. */
static double pass(const struct lines *l, const struct collect_origin *o,
		   const struct collect_limits *lim, struct collect_batch *b)
{
	uint64_t t0 = cpu_ns();
	for (size_t i = 0; i < l->n; i++) {
		const char *s = l->text + l->off[i];
		collect_prepare_line(s, strlen(s), (int)i, o, lim, b);
		if (b->n == 1000)
			collect_batch_reset(b);
	}
	collect_batch_reset(b);
	return (double)(cpu_ns() - t0) / (double)l->n;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	unsigned long long events = 200000;
	int runs = 5;
	const char *config = NULL;
	enum enrich_ip_mode ip_mode = ENRICH_IP_KEEP;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--events"))
			events = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--runs"))
			runs = (int)strtol(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--config"))
			config = argv[i + 1];
		else if (!strcmp(argv[i], "--ip") && enrich_ip_mode_parse(argv[i + 1]) >= 0)
			ip_mode = (enum enrich_ip_mode)enrich_ip_mode_parse(argv[i + 1]);
		else {
			fprintf(stderr, "usage: enrich_bench [--events N] [--runs R] [--config "
					"JSON] [--ip keep|truncate|drop]\n");
			return 2;
		}
	}
	if (runs < 1 || runs > 99 || events < 1000)
		return 2;
	struct demo_options d;
	demo_options_default(&d);
	d.events = events;
	d.users = (uint32_t)(events / 20 + 100);
	d.days = 30;
	d.end_ms = 1795000000000;
	struct lines l = {0};
	if (demo_generate(&d, keep, &l)) {
		fprintf(stderr, "enrich_bench: demo_generate failed\n");
		return 1;
	}
	struct enrich *e;
	char err[600];
	if (enrich_new(&e, config, NULL, err, sizeof(err))) {
		fprintf(stderr, "enrich_bench: %s\n", err);
		return 1;
	}
	struct collect_limits lim;
	collect_limits_default(&lim);
	struct collect_origin plain = {
	    .source_id = 1, .received_ms = 1795000000000, .ip = "198.51.100.7"};
	struct collect_origin enriched = plain;
	enriched.enrich = e;
	enriched.ip_mode = ip_mode;
	struct collect_batch b;
	collect_batch_init(&b);

	/* the channel mix, and how many messages carry what */
	static const char *const channels[] = {"Paid Search",	 "Organic Search", "Paid Social",
					       "Organic Social", "Email",	   "Affiliate",
					       "Referral",	 "Display",	   "Direct"};
	size_t count[9] = {0}, bots = 0, pages = 0, nochannel = 0;
	for (size_t i = 0; i < l.n; i++) {
		const char *s = l.text + l.off[i];
		collect_prepare_line(s, strlen(s), 0, &enriched, &lim, &b);
		if (!b.n)
			continue;
		const char *p = b.payloads.data;
		const char *ch = memmem(p, b.payloads.len, "\"channel\":\"", 11);
		bool found = false;
		for (int k = 0; ch && k < 9; k++)
			if (!strncmp(ch + 11, channels[k], strlen(channels[k])) &&
			    ch[11 + strlen(channels[k])] == '"') {
				count[k]++;
				found = true;
			}
		nochannel += !found;
		bots += memmem(p, b.payloads.len, "\"bot\":true", 10) != NULL;
		pages += memmem(p, b.payloads.len, "\"type\":\"page\"", 13) != NULL;
		collect_batch_reset(&b);
	}

	double without[99], with[99];
	pass(&l, &plain, &lim, &b); /* warm up */
	for (int r = 0; r < runs; r++) {
		without[r] = pass(&l, &plain, &lim, &b);
		with[r] = pass(&l, &enriched, &lim, &b);
	}
	double a = median(without, runs), c = median(with, runs);
	printf("enrich_bench: %zu demo messages (%zu pages, %zu bots), median of %d runs, CPU "
	       "time of one core\n",
	       l.n, pages, bots, runs);
	printf("  normalize without enrichment  %8.0f ns/message\n", a);
	printf("  normalize with enrichment     %8.0f ns/message\n", c);
	printf("  enrichment                    %8.0f ns/message  (target < 2000: %s)\n", c - a,
	       c - a < 2000 ? "PASS" : "MISS");
	printf("  channels of the demo messages:");
	for (int k = 0; k < 9; k++)
		printf(" %s %.1f%%,", channels[k], 100.0 * (double)count[k] / (double)l.n);
	printf(" none %.1f%%\n", 100.0 * (double)nochannel / (double)l.n);
	collect_batch_release(&b);
	enrich_free(e);
	free(l.text);
	free(l.off);
	return 0;
}
