/*
 * demo.h - a deterministic generator of synthetic shop + marketing customer
 * journeys, as Segment messages (one JSON object per line, each with its
 * "type"), for demos, benchmarks and tests of the analytics.
 *
 * People arrive through acquisition channels (search, paid search, social,
 * email, affiliates, referrals, direct) with UTM-tagged landing pages, browse
 * in sessions, run through the product funnel "Product Viewed" -> "Product
 * Added" -> "Checkout Started" -> "Order Completed", sign up and identify,
 * use second devices and shared devices, belong to B2B accounts (group),
 * receive, open and click emails. docs/demo.md gives the model and every rate,
 * so tests and analysts know what the data should show.
 *
 * Guarantees:
 *   - exactly o->events messages (unless emit stops early), globally ordered
 *     by timestamp, so every person's events are in time order;
 *   - every timestamp lies in [end_ms - days * 86400000, end_ms];
 *   - the same options give byte-identical output (own PRNG, no clock, no
 *     global state); another seed gives another data set;
 *   - every message is valid for the collector: a "type", a unique
 *     deterministic "messageId", a "timestamp" (ISO-8601 UTC with ms), and a
 *     userId or anonymousId; track has "event", group "groupId", alias
 *     "previousId" and "userId".
 * Speed: several million lines per second on one core (no allocation per
 * line). Memory: about 40 bytes per user plus a few MB.
 */
#ifndef TD_DEMO_DEMO_H
#define TD_DEMO_DEMO_H

#include <stddef.h>
#include <stdint.h>

/* Limits checked by demo_generate (TD_EINVAL beyond them). */
#define DEMO_MAX_USERS		     20000000u
#define DEMO_MAX_DAYS		     3660u
#define DEMO_MAX_EVENTS_PER_USER_DAY 50u /* events <= users * days * this */

struct demo_options {
	uint64_t seed;	 /* any value; the output is a pure function of the options */
	uint64_t events; /* messages to produce, exactly */
	uint32_t users;	 /* people (1..DEMO_MAX_USERS), bots not included */
	uint32_t days;	 /* length of the period (1..DEMO_MAX_DAYS) */
	int64_t end_ms;	 /* end of the period, ms since the Unix epoch; 0 = now */
	/* When set, called after the last message with the advertising costs of
	 * the paid visits generated: CSV for `tandem import costs`, a header line
	 * then one line per day, source, medium and campaign (cost per click by
	 * channel, docs/demo.md). Same ownership as emit's line. */
	int (*costs)(void *ctx, const char *line, size_t len);
	void *costs_ctx;
};

/* seed 1, 1,000,000 events, 50,000 users, 90 days, ending now. */
void demo_options_default(struct demo_options *o);

/*
 * Generates the data set, calling emit once per message in timestamp order.
 * `line` is one JSON object followed by '\n' (len includes the newline, and
 * line[len] is '\0'); it is owned by the generator and valid only during the
 * call (copy it to keep it). Returns 0; TD_EINVAL if an option is out of
 * range (users 0 or too many, days 0 or too many, more events than
 * users * days * DEMO_MAX_EVENTS_PER_USER_DAY, a period before 1970);
 * TD_ENOMEM if the people table cannot be allocated; or, unchanged, the first
 * nonzero value emit returns (which stops the generation).
 */
int demo_generate(const struct demo_options *o,
		  int (*emit)(void *ctx, const char *line, size_t len), void *ctx);

#endif
