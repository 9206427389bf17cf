/*
 * test_live.c - the per-minute and per-hour counters behind
 * /api/stats/live and /api/health/data (src/ops/live.c), and the quantiles
 * read from histograms.
 */
#include "ops/metrics.h"

#include <criterion/criterion.h>
#include <pthread.h>

#define MIN  60000LL
#define HOUR 3600000LL
/* 2025-01-01T00:00:00Z, a whole hour */
#define T0 1735689600000LL

Test(live, counts_land_in_their_minute_and_hour)
{
	live_record(3, T0 + 10 * MIN + 5, 4, 1, 2);
	live_record(3, T0 + 10 * MIN + 59999, 1, 0, 0);
	live_record(3, T0 + 11 * MIN, 7, 0, 0);
	live_record(4, T0 + 10 * MIN, 100, 0, 0); /* another source */
	struct live_counts c[3];
	live_read(3, false, T0 / MIN + 9, 3, c);
	cr_assert_eq(c[0].accepted, 0);
	cr_assert_eq(c[1].accepted, 5);
	cr_assert_eq(c[1].rejected, 1);
	cr_assert_eq(c[1].deduplicated, 2);
	cr_assert_eq(c[2].accepted, 7);
	live_read(3, true, T0 / HOUR, 2, c);
	cr_assert_eq(c[0].accepted, 12);
	cr_assert_eq(c[1].accepted, 0);
	cr_assert_eq(live_last_ms(3), T0 + 11 * MIN);
	cr_assert_eq(live_last_ms(5), 0);
	live_read(5, false, T0 / MIN, 3, c); /* never seen: zeros */
	cr_assert_eq(c[0].accepted + c[1].accepted + c[2].accepted, 0);
}

Test(live, a_day_later_the_minute_starts_from_zero)
{
	live_record(1, T0, 5, 0, 0);
	live_record(1, T0 + LIVE_MINUTES * MIN, 2, 0, 0); /* same slot of the ring */
	struct live_counts c;
	live_read(1, false, T0 / MIN, 1, &c); /* the old minute is gone */
	cr_assert_eq(c.accepted, 0);
	live_read(1, false, T0 / MIN + LIVE_MINUTES, 1, &c);
	cr_assert_eq(c.accepted, 2);
	/* a late writer for a minute the ring left behind is dropped */
	live_record(1, T0 + 1, 9, 0, 0);
	live_read(1, false, T0 / MIN + LIVE_MINUTES, 1, &c);
	cr_assert_eq(c.accepted, 2);
	/* the hour ring still holds that hour (a day is inside a week) */
	live_read(1, true, T0 / HOUR, 1, &c);
	cr_assert_eq(c.accepted, 5 + 9);
}

Test(live, sources_out_of_range_are_not_kept)
{
	live_record(LIVE_MAX_SOURCES + 1, T0, 5, 0, 0);
	struct live_counts c;
	live_read(LIVE_MAX_SOURCES + 1, false, T0 / MIN, 1, &c);
	cr_assert_eq(c.accepted, 0);
	live_record(LIVE_MAX_SOURCES, T0, 5, 0, 0);
	live_read(LIVE_MAX_SOURCES, false, T0 / MIN, 1, &c);
	cr_assert_eq(c.accepted, 5);
}

static void *writer(void *arg)
{
	for (int i = 0; i < 100000; i++)
		live_record(2, T0 + (i % 3) * MIN, 1, 0, 1); /* three minutes, taking turns */
	return arg;
}

Test(live, concurrent_writers_lose_nothing)
{
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, writer, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	struct live_counts c[3];
	live_read(2, false, T0 / MIN, 3, c);
	cr_assert_eq(c[0].accepted + c[1].accepted + c[2].accepted, 400000);
	cr_assert_eq(c[0].deduplicated + c[1].deduplicated + c[2].deduplicated, 400000);
	live_read(2, true, T0 / HOUR, 1, c);
	cr_assert_eq(c[0].accepted, 400000);
}

Test(live, metrics_calls_feed_the_counts)
{
	live_start(T0);
	live_start(T0 + 5); /* the first start wins */
	cr_assert_eq(live_started_ms(), T0);
	metrics_source_events(7, "web", 3, 1, 2);
	metrics_event_accepted(3);
	metrics_event_rejected(COLLECT_R_MISSING_EVENT, 2);
	metrics_event_duplicate(1);
	struct live_counts src, all;
	int64_t last = live_last_ms(7);
	cr_assert_gt(last, 0);
	live_read(7, false, last / MIN, 1, &src);
	live_read(0, false, last / MIN, 1, &all);
	/* (a minute may turn between the calls: then the sums still hold) */
	struct live_counts next;
	live_read(0, false, last / MIN + 1, 1, &next);
	cr_assert_eq(src.accepted, 3);
	cr_assert_eq(src.deduplicated, 1);
	cr_assert_eq(src.rejected, 2);
	cr_assert_eq(all.accepted + next.accepted, 3);
	cr_assert_eq(all.rejected + next.rejected, 2);
	cr_assert_eq(all.deduplicated + next.deduplicated, 1);
}

Test(metrics, quantiles_interpolate_inside_buckets)
{
	static const double b[3] = {1, 2, 4};
	uint64_t empty[4] = {0};
	cr_assert_eq(metrics_quantile(b, empty, 3, 0.5), -1);
	uint64_t c[4] = {0, 10, 0, 0}; /* everything in (1, 2] */
	cr_assert_float_eq(metrics_quantile(b, c, 3, 0.5), 1.5, 1e-9);
	cr_assert_float_eq(metrics_quantile(b, c, 3, 1.0), 2.0, 1e-9);
	uint64_t d[4] = {50, 0, 49, 1}; /* one above the last bound */
	cr_assert_float_eq(metrics_quantile(b, d, 3, 0.5), 1.0, 1e-9);
	cr_assert_float_eq(metrics_quantile(b, d, 3, 0.99), 4.0, 1e-9);
	cr_assert_float_eq(metrics_quantile(b, d, 3, 0.999), 4.0, 1e-9);
}
