/*
 * identity_bench.c - identity resolution in the ingest path: messages per
 * second on one core, in memory, over a mix of known and new identifiers,
 * and the memory each person takes.
 *
 *   build/bench/identity_bench [--messages N] [--visitors V] [--runs R]
 *
 * The mix (per message, seeded): 55 % a returning visitor's event (anonymousId,
 * plus userId once known), 15 % a new visitor, 10 % an identify that gives a
 * visitor a userId and an email, 5 % a known user on a new device (a new
 * anonymousId, or another visitor's, which merges two persons), 15 % a
 * server-side event with userId only. Identifier strings are made before the
 * clock starts; filling the message's fields is timed, as the store does it.
 */
#include "base/td.h"
#include "identity/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = 0;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

struct visitor {
	char anon[40];
	int32_t user; /* -1 until identified */
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v == 0)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t messages = 10000000, visitors = 3000000, runs = 3;
	for (int i = 1; i + 1 < argc; i += 2) {
		uint64_t *dst = !strcmp(argv[i], "--messages")	 ? &messages
				: !strcmp(argv[i], "--visitors") ? &visitors
				: !strcmp(argv[i], "--runs")	 ? &runs
								 : NULL;
		if (!dst || parse_u64(argv[i + 1], dst)) {
			fprintf(stderr,
				"usage: identity_bench [--messages N] [--visitors V] [--runs R]\n");
			return 2;
		}
	}
	/* visitors that exist before the clock starts are made by the run's first
	 * part; the arrays hold every identifier the run can name */
	size_t vcap = visitors + messages / 4 + 16, ucap = vcap;
	struct visitor *vs = td_malloc(vcap * sizeof(*vs));
	char(*users)[24] = td_malloc(ucap * sizeof(*users));
	char(*emails)[40] = td_malloc(ucap * sizeof(*emails));
	for (size_t i = 0; i < vcap; i++) {
		uint64_t r = next_rand();
		snprintf(vs[i].anon, sizeof(vs[i].anon), "%08x-%04x-4%03x-a%03x-%012llx",
			 (unsigned)(r >> 32), (unsigned)(r >> 16) & 0xffff, (unsigned)r & 0xfff,
			 (unsigned)(r >> 20) & 0xfff, (unsigned long long)(i * 2654435761u));
		vs[i].user = -1;
	}
	for (size_t i = 0; i < ucap; i++) {
		snprintf(users[i], sizeof(users[i]), "u%zu", i);
		snprintf(emails[i], sizeof(emails[i]), "Person.%zu@Example.com", i);
	}
	double *rates = td_malloc(runs * sizeof(double));
	struct identity_stats st = {0};
	long rss_before = 0, rss_after = 0;
	for (uint64_t run = 0; run < runs; run++) {
		struct identity *g;
		char err[256];
		if (identity_open(&g, NULL, NULL, UINT64_MAX, 0, false, err, sizeof(err))) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		for (size_t i = 0; i < vcap; i++)
			vs[i].user = -1;
		rng = 0x9E3779B97F4A7C15ULL;
		struct identity_msg *m = td_malloc(sizeof(*m));
		size_t nv = 0, nu = 0;
		/* warm: the existing visitors (a third of them known users) */
		rss_before = rss_kb();
		for (; nv < visitors; nv++) {
			identity_msg_reset(m);
			identity_msg_add(m, IDENTITY_F_ANON_ID, NULL, 0, vs[nv].anon, 36);
			if (nv % 3 == 0) {
				vs[nv].user = (int32_t)nu++;
				identity_msg_add(m, IDENTITY_F_USER_ID, NULL, 0, users[vs[nv].user],
						 strlen(users[vs[nv].user]));
			}
			identity_resolve(g, m);
		}
		double t0 = now_s();
		for (uint64_t k = 0; k < messages; k++) {
			uint64_t r = next_rand();
			unsigned pick = (unsigned)(r % 100);
			size_t v = (size_t)((r >> 8) % nv);
			identity_msg_reset(m);
			m->lsn = k + 1;
			if (pick < 55) { /* a returning visitor */
				identity_msg_add(m, IDENTITY_F_ANON_ID, NULL, 0, vs[v].anon, 36);
				if (vs[v].user >= 0)
					identity_msg_add(m, IDENTITY_F_USER_ID, NULL, 0,
							 users[vs[v].user],
							 strlen(users[vs[v].user]));
			} else if (pick < 70 && nv < vcap) { /* a new visitor */
				identity_msg_add(m, IDENTITY_F_ANON_ID, NULL, 0, vs[nv].anon, 36);
				nv++;
			} else if (pick < 80 && nu < ucap) { /* identify */
				if (vs[v].user < 0)
					vs[v].user = (int32_t)nu++;
				identity_msg_add(m, IDENTITY_F_ANON_ID, NULL, 0, vs[v].anon, 36);
				identity_msg_add(m, IDENTITY_F_USER_ID, NULL, 0, users[vs[v].user],
						 strlen(users[vs[v].user]));
				identity_msg_add(m, IDENTITY_F_TRAIT, "email", 5,
						 emails[vs[v].user], strlen(emails[vs[v].user]));
			} else if (pick < 85 &&
				   vs[v].user >= 0) { /* a known user, another device */
				size_t d =
				    (r >> 40) & 1 || nv == vcap ? (size_t)((r >> 41) % nv) : nv++;
				identity_msg_add(m, IDENTITY_F_ANON_ID, NULL, 0, vs[d].anon, 36);
				identity_msg_add(m, IDENTITY_F_USER_ID, NULL, 0, users[vs[v].user],
						 strlen(users[vs[v].user]));
			} else { /* server side: userId only */
				int32_t u = vs[v].user >= 0 ? vs[v].user
							    : (int32_t)((r >> 20) % (nu ? nu : 1));
				identity_msg_add(m, IDENTITY_F_USER_ID, NULL, 0, users[u],
						 strlen(users[u]));
			}
			identity_resolve(g, m);
		}
		double dt = now_s() - t0;
		rates[run] = (double)messages / dt;
		rss_after = rss_kb();
		identity_get_stats(g, &st);
		free(m);
		fprintf(stderr, "run %llu: %.0f messages/s\n", (unsigned long long)run + 1,
			rates[run]);
		if (run + 1 < runs)
			identity_close(g);
		else
			identity_close(g);
	}
	qsort(rates, runs, sizeof(double), cmp_double);
	printf("identity resolution, one core, in memory: %llu messages over %llu existing "
	       "visitors\n",
	       (unsigned long long)messages, (unsigned long long)visitors);
	printf("  median %.0f messages/s (%.2f us each); runs:", rates[runs / 2],
	       1e6 / rates[runs / 2]);
	for (uint64_t i = 0; i < runs; i++)
		printf(" %.0f", rates[i]);
	printf("\n  graph: %llu person ids, %llu persons, %llu identifiers, %llu merges, "
	       "%llu conflicts (user_id), %llu refused\n",
	       (unsigned long long)st.pids, (unsigned long long)st.persons,
	       (unsigned long long)st.identifiers, (unsigned long long)st.merges,
	       (unsigned long long)st.conflicts[IDENTITY_USER], (unsigned long long)st.refused);
	printf("  memory: %.1f MB resident for the graph, %.0f bytes per person id, "
	       "%.0f per identifier\n",
	       (double)(rss_after - rss_before) / 1024.0,
	       (double)(rss_after - rss_before) * 1024.0 / (double)st.pids,
	       (double)(rss_after - rss_before) * 1024.0 / (double)st.identifiers);
	free(rates);
	free(vs);
	free(users);
	free(emails);
	return 0;
}
