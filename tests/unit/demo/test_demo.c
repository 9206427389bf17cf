/*
 * The demo data generator (demo/demo.h): determinism, exact counts, valid
 * Segment messages, time order, session and funnel structure, and the rates
 * docs/demo.md promises (with tolerances).
 */
#include "base/td.h"
#include "base/timeutil.h"
#include "demo/demo.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define END_MS 1764547199999LL /* 2025-11-30T23:59:59.999Z */
#define DAY_MS 86400000LL
#define GAP_MS (30 * 60000LL)
#define SITE   "https://shop.example.com"

/* ---- capturing the output ---- */

struct capture {
	char *data;
	size_t len, cap, lines;
	size_t stop_after; /* return 42 after this many lines (0 = never) */
};

static int capture_line(void *ctx, const char *line, size_t len)
{
	struct capture *c = ctx;
	cr_assert(len > 1 && line[len - 1] == '\n' && line[len] == '\0');
	if (c->len + len + 1 > c->cap) {
		c->cap = (c->len + len + 1) * 2;
		c->data = td_realloc(c->data, c->cap);
	}
	memcpy(c->data + c->len, line, len);
	c->len += len;
	c->data[c->len] = '\0';
	c->lines++;
	return c->stop_after && c->lines == c->stop_after ? 42 : 0;
}

static struct demo_options opts(uint64_t seed, uint64_t events, uint32_t users, uint32_t days)
{
	struct demo_options o;
	demo_options_default(&o);
	o.seed = seed;
	o.events = events;
	o.users = users;
	o.days = days;
	o.end_ms = END_MS;
	return o;
}

static void generate(const struct demo_options *o, struct capture *c)
{
	memset(c, 0, sizeof(*c));
	cr_assert_eq(demo_generate(o, capture_line, c), 0);
}

/* ---- a small string-keyed hash table for the checks ---- */

struct entry {
	char key[48];
	int64_t last_ms;
	uint32_t flags; /* per-device session state, see below */
	char other[48]; /* a second value (userId of a device, anonymousId of a user) */
	bool used, multi, bot;
};

struct table {
	struct entry *e;
	size_t cap, n;
};

static void table_init(struct table *t, size_t cap)
{
	t->cap = cap;
	t->n = 0;
	t->e = td_calloc(cap, sizeof(*t->e));
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* The entry for key; *fresh says whether it was just added. */
static struct entry *table_get(struct table *t, const char *key, bool *fresh)
{
	cr_assert(strlen(key) < sizeof(t->e[0].key), "key too long: %s", key);
	cr_assert(t->n < t->cap / 2, "test table full");
	for (size_t i = hash_str(key) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		struct entry *e = &t->e[i];
		if (!e->used) {
			e->used = true;
			snprintf(e->key, sizeof(e->key), "%s", key);
			t->n++;
			*fresh = true;
			return e;
		}
		if (!strcmp(e->key, key)) {
			*fresh = false;
			return e;
		}
	}
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool jnum(const cJSON *o, const char *k)
{
	return cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, k));
}

/* ---- determinism and counts ---- */

Test(demo, same_options_same_bytes)
{
	struct demo_options o = opts(7, 20000, 1000, 30);
	struct capture a, b, c;
	generate(&o, &a);
	generate(&o, &b);
	cr_assert_eq(a.len, b.len);
	cr_assert(memcmp(a.data, b.data, a.len) == 0, "two runs differ");
	o.seed = 8;
	generate(&o, &c);
	cr_assert_eq(c.lines, 20000);
	cr_assert(a.len != c.len || memcmp(a.data, c.data, a.len) != 0, "seeds 7 and 8 agree");
	/* not just shifted: the first messageIds differ too */
	cr_assert(strncmp(a.data, c.data, 80) != 0);
	free(a.data);
	free(b.data);
	free(c.data);
}

/* With costs: the same messages, and each cost line is its paid landings
 * (pages carrying context.campaign) times the documented price per visit. */
Test(demo, costs_price_the_paid_landings)
{
	struct demo_options o = opts(3, 30000, 2000, 20);
	struct capture plain, msgs, costs;
	generate(&o, &plain);
	memset(&costs, 0, sizeof(costs));
	o.costs = capture_line;
	o.costs_ctx = &costs;
	generate(&o, &msgs);
	cr_assert_eq(msgs.len, plain.len);
	cr_assert(memcmp(msgs.data, plain.data, plain.len) == 0, "costs change the messages");
	cr_assert_gt(costs.lines, 20, "%zu cost lines", costs.lines);
	cr_assert_eq(strncmp(costs.data, "date,source,medium,campaign,cost,currency\n", 42), 0);

	/* count the paid landings per date,source,medium,campaign */
	struct table t;
	table_init(&t, 8192);
	size_t landings = 0;
	for (char *line = msgs.data, *nl; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		*nl = '\0';
		cJSON *m = cJSON_Parse(line);
		*nl = '\n';
		const cJSON *camp = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(m, "context"), "campaign");
		if (camp && !strcmp(jstr(m, "type"), "page")) {
			char key[48];
			snprintf(key, sizeof(key), "%.10s,%s,%s,%s", jstr(m, "timestamp"),
				 jstr(camp, "source"), jstr(camp, "medium"), jstr(camp, "name"));
			bool fresh;
			table_get(&t, key, &fresh)->last_ms++;
			landings++;
		}
		cJSON_Delete(m);
	}
	cr_assert_gt(landings, 100);
	size_t lines = 0, priced = 0;
	for (char *line = strchr(costs.data, '\n') + 1, *nl; *line; line = nl + 1, lines++) {
		nl = strchr(line, '\n');
		char key[48], *comma = line;
		for (int k = 0; k < 4; k++)
			comma = strchr(comma, ',') + 1;
		snprintf(key, sizeof(key), "%.*s", (int)(comma - 1 - line), line);
		double cost = strtod(comma, NULL);
		cr_assert_eq(strncmp(nl - 4, ",EUR", 4), 0, "%.*s", (int)(nl - line), line);
		bool fresh;
		struct entry *e = table_get(&t, key, &fresh);
		cr_assert(!fresh, "costs for a campaign day without landings: %s", key);
		double each = strstr(key, ",cpc,") ? (strstr(key, "brand_search") ? 0.45 : 0.95)
			      : strstr(key, ",paid_social,") ? 0.60
			      : strstr(key, ",affiliate,")   ? 0.35
							     : 0.02;
		cr_assert_float_eq(cost, (double)e->last_ms * each, 0.005, "%s: %f for %lld visits",
				   key, cost, (long long)e->last_ms);
		priced += (size_t)e->last_ms;
	}
	cr_assert_eq(priced, landings, "every paid landing is priced once");
	cr_assert_eq(lines, costs.lines - 1);
	free(t.e);
	free(plain.data);
	free(msgs.data);
	free(costs.data);
}

Test(demo, exact_event_count)
{
	static const struct {
		uint64_t events;
		uint32_t users, days;
	} cases[] = {{1, 1, 1},	    {2, 1, 1},	      {50, 1, 1},	   {7, 100, 90},
		     {1000, 10, 7}, {12345, 400, 30}, {100000, 50000, 90}, {30000, 30, 20}};
	for (size_t i = 0; i < TD_ARRAY_LEN(cases); i++) {
		struct demo_options o = opts(i + 1, cases[i].events, cases[i].users, cases[i].days);
		struct capture c;
		generate(&o, &c);
		cr_assert_eq(c.lines, cases[i].events, "case %zu: %zu lines, wanted %llu", i,
			     c.lines, (unsigned long long)cases[i].events);
		free(c.data);
	}
}

Test(demo, emit_stops_generation)
{
	struct demo_options o = opts(1, 1000, 100, 10);
	struct capture c;
	memset(&c, 0, sizeof(c));
	c.stop_after = 10;
	cr_assert_eq(demo_generate(&o, capture_line, &c), 42);
	cr_assert_eq(c.lines, 10);
	free(c.data);
}

Test(demo, invalid_options)
{
	struct capture c;
	memset(&c, 0, sizeof(c));
	struct demo_options o = opts(1, 100, 0, 10);
	cr_assert_eq(demo_generate(&o, capture_line, &c), TD_EINVAL);
	o = opts(1, 100, 10, 0);
	cr_assert_eq(demo_generate(&o, capture_line, &c), TD_EINVAL);
	o = opts(1, 10ULL * 7 * DEMO_MAX_EVENTS_PER_USER_DAY + 1, 10, 7);
	cr_assert_eq(demo_generate(&o, capture_line, &c), TD_EINVAL);
	o = opts(1, 100, 10, 10);
	o.end_ms = 5 * DAY_MS; /* would start before 1970 */
	cr_assert_eq(demo_generate(&o, capture_line, &c), TD_EINVAL);
	o = opts(1, 100, DEMO_MAX_USERS + 1, 10);
	cr_assert_eq(demo_generate(&o, capture_line, &c), TD_EINVAL);
	cr_assert_eq(demo_generate(NULL, capture_line, &c), TD_EINVAL);
	o = opts(1, 0, 10, 10);
	cr_assert_eq(demo_generate(&o, capture_line, &c), 0);
	cr_assert_eq(c.lines, 0);
}

Test(demo, default_options)
{
	struct demo_options o;
	int64_t before = td_now_ms();
	demo_options_default(&o);
	cr_assert_eq(o.seed, 1);
	cr_assert_eq(o.events, 1000000);
	cr_assert_eq(o.users, 50000);
	cr_assert_eq(o.days, 90);
	cr_assert(o.end_ms >= before && o.end_ms <= td_now_ms());
}

/* ---- every message valid, ordered, structured ---- */

static bool known_type(const char *t)
{
	static const char *const types[] = {"identify", "track", "page", "group", "alias"};
	for (size_t i = 0; i < TD_ARRAY_LEN(types); i++)
		if (t && !strcmp(t, types[i]))
			return true;
	return false;
}

static void check_product(const cJSON *props, const char *line)
{
	cr_assert(jstr(props, "product_id") && jstr(props, "category"), "%s", line);
	cr_assert(jnum(props, "price") && jnum(props, "quantity"), "%s", line);
}

static void check_order(const cJSON *props, const char *line)
{
	const char *cur = jstr(props, "currency");
	cr_assert(jstr(props, "order_id") && jnum(props, "revenue"), "%s", line);
	cr_assert(cur && (!strcmp(cur, "EUR") || !strcmp(cur, "USD")), "%s", line);
	const cJSON *products = cJSON_GetObjectItemCaseSensitive(props, "products");
	cr_assert(cJSON_IsArray(products) && cJSON_GetArraySize(products) > 0, "%s", line);
	double sum = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, products)
	{
		check_product(it, line);
		sum += cJSON_GetObjectItem(it, "price")->valuedouble *
		       cJSON_GetObjectItem(it, "quantity")->valuedouble;
	}
	double revenue = cJSON_GetObjectItem(props, "revenue")->valuedouble;
	const cJSON *discount = cJSON_GetObjectItemCaseSensitive(props, "discount");
	if (cJSON_IsNumber(discount))
		revenue += discount->valuedouble;
	cr_assert(revenue > sum - 0.01 && revenue < sum + 0.01, "revenue != products: %s", line);
}

Test(demo, messages_are_valid_and_ordered)
{
	struct demo_options o = opts(3, 100000, 5000, 60);
	struct capture c;
	generate(&o, &c);
	cr_assert_eq(c.lines, 100000);

	struct table ids, devices, orders;
	table_init(&ids, 1 << 18);
	table_init(&devices, 1 << 16);
	table_init(&orders, 1 << 16);
	int64_t start = END_MS - 60 * DAY_MS, prev_ms = start;
	size_t n = 0, completed = 0, landings = 0;
	for (char *line = c.data, *nl; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		*nl = '\0';
		n++;
		cJSON *m = cJSON_Parse(line);
		cr_assert_not_null(m, "line %zu is not JSON: %s", n, line);
		const char *type = jstr(m, "type");
		cr_assert(known_type(type), "line %zu: bad type: %s", n, line);

		const char *id = jstr(m, "messageId");
		cr_assert(id && *id, "no messageId: %s", line);
		bool fresh;
		table_get(&ids, id, &fresh);
		cr_assert(fresh, "duplicate messageId %s", id);

		const char *ts = jstr(m, "timestamp");
		int64_t ms;
		cr_assert(ts && strlen(ts) == 24 && ts[23] == 'Z', "timestamp format: %s", line);
		cr_assert_eq(td_time_parse(ts, strlen(ts), &ms), 0, "%s", line);
		cr_assert(ms >= start && ms <= END_MS, "timestamp out of range: %s", line);
		cr_assert(ms >= prev_ms, "timestamps go back: %s", line);
		prev_ms = ms;

		const char *anon = jstr(m, "anonymousId"), *user = jstr(m, "userId");
		cr_assert((anon && *anon) || (user && *user), "no identity: %s", line);
		const cJSON *props = cJSON_GetObjectItemCaseSensitive(m, "properties");
		if (!strcmp(type, "track")) {
			const char *ev = jstr(m, "event");
			cr_assert(ev && *ev && cJSON_IsObject(props), "%s", line);
			if (!strcmp(ev, "Product Viewed") || !strcmp(ev, "Product Added"))
				check_product(props, line);
			if (!strcmp(ev, "Checkout Started") || !strcmp(ev, "Order Completed"))
				check_order(props, line);
			if (!strcmp(ev, "Checkout Started")) {
				table_get(&orders, jstr(props, "order_id"), &fresh);
				cr_assert(fresh, "order started twice: %s", line);
			}
			if (!strcmp(ev, "Order Completed")) {
				/* the same order's Checkout Started came first, same device */
				struct entry *e =
				    table_get(&orders, jstr(props, "order_id"), &fresh);
				cr_assert(!fresh, "Order Completed without Checkout Started: %s",
					  line);
				completed++;
				(void)e;
			}
			if (!strncmp(ev, "Email ", 6))
				cr_assert(user && jstr(props, "campaign") &&
					      jstr(props, "email_id"),
					  "%s", line);
		} else if (!strcmp(type, "group")) {
			const char *g = jstr(m, "groupId");
			cr_assert(g && !strncmp(g, "acct-", 5), "%s", line);
			const cJSON *traits = cJSON_GetObjectItemCaseSensitive(m, "traits");
			cr_assert(jstr(traits, "name") && jstr(traits, "industry") &&
				      jnum(traits, "employees"),
				  "%s", line);
		} else if (!strcmp(type, "alias")) {
			cr_assert(jstr(m, "previousId") && user, "%s", line);
		} else if (!strcmp(type, "identify")) {
			cr_assert(user && cJSON_IsObject(cJSON_GetObjectItem(m, "traits")), "%s",
				  line);
		} else if (!strcmp(type, "page")) {
			cr_assert(jstr(m, "name") && jstr(props, "url") && jstr(props, "path"),
				  "%s", line);
		}

		/* a device's visits: a page whose referrer is not the shop starts a
		 * visit, more than 30 minutes after the device's last event; inside a
		 * visit no gap reaches 30 minutes */
		if (anon && strcmp(type, "alias")) {
			const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(m, "context");
			cr_assert(jstr(ctx, "ip") && jstr(ctx, "userAgent") && jstr(ctx, "locale"),
				  "%s", line);
			struct entry *d = table_get(&devices, anon, &fresh);
			if (!strcmp(type, "page")) {
				const char *ref = jstr(props, "referrer");
				bool landing = !ref || strncmp(ref, SITE, strlen(SITE)) != 0;
				const char *url = jstr(props, "url");
				if (landing) {
					landings++;
					cr_assert(fresh || ms - d->last_ms > GAP_MS,
						  "visit starts %lld ms after the last: %s",
						  (long long)(ms - d->last_ms), line);
					if (strstr(url, "utm_medium=cpc"))
						cr_assert(strstr(url, "gclid=") ||
							      strstr(url, "msclkid="),
							  "%s", line);
					if (strstr(url, "utm_medium=paid_social"))
						cr_assert(strstr(url, "fbclid="), "%s", line);
				} else {
					cr_assert(!fresh && ms - d->last_ms < GAP_MS,
						  "gap inside a visit: %s", line);
					cr_assert(!strchr(url, '?'), "UTM past the landing: %s",
						  line);
				}
			} else {
				cr_assert(!fresh && ms - d->last_ms < GAP_MS, "%s", line);
			}
			d->last_ms = ms;
		}
		cJSON_Delete(m);
	}
	cr_assert_eq(n, 100000);
	cr_assert(completed > 100, "only %zu orders", completed);
	cr_assert(landings > 5000);
	free(ids.e);
	free(devices.e);
	free(orders.e);
	free(c.data);
}

/* ---- the documented rates ---- */

enum { V_VIEW = 1, V_ADD = 2, V_CHECKOUT = 4, V_ORDER = 8 };

struct rates {
	size_t visits, with[16]; /* visits with each V_* bit, indexed by bit value */
	size_t sent, opened, clicked, bot_msgs, web_msgs, groups_users;
	size_t landing_direct, landing_cpc, landing_social, landing_email;
	size_t users, anon_only_devices, devices_two_users, users_two_devices;
	size_t second_emails, crm_aliases, signed_up;
};

static void close_visit(struct rates *r, const struct entry *d)
{
	if (d->bot || !d->flags)
		return;
	for (unsigned b = 1; b <= V_ORDER; b <<= 1)
		if (d->flags & b)
			r->with[b]++;
}

static void measure(const struct capture *c, struct rates *r)
{
	memset(r, 0, sizeof(*r));
	struct table devices, users;
	table_init(&devices, 1 << 17);
	table_init(&users, 1 << 16);
	char *copy = td_malloc(c->len + 1);
	memcpy(copy, c->data, c->len + 1);
	for (char *line = copy, *nl; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		*nl = '\0';
		cJSON *m = cJSON_Parse(line);
		const char *type = jstr(m, "type"), *ev = jstr(m, "event");
		const char *anon = jstr(m, "anonymousId"), *user = jstr(m, "userId");
		const cJSON *props = cJSON_GetObjectItemCaseSensitive(m, "properties");
		const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(m, "context");
		const char *ua = jstr(ctx, "userAgent");
		bool fresh;
		if (ua) {
			r->web_msgs++;
			r->bot_msgs += strstr(ua, "bot") != NULL;
		}
		if (ev && !strcmp(ev, "Email Sent"))
			r->sent++;
		if (ev && !strcmp(ev, "Email Opened"))
			r->opened++;
		if (ev && !strcmp(ev, "Email Link Clicked"))
			r->clicked++;
		if (ev && !strcmp(ev, "Signed Up"))
			r->signed_up++;
		if (!strcmp(type, "alias") && !strncmp(jstr(m, "previousId"), "crm-", 4))
			r->crm_aliases++;
		if (!strcmp(type, "identify")) {
			const char *email = jstr(cJSON_GetObjectItem(m, "traits"), "email");
			r->second_emails += email && strstr(email, "@example.org") != NULL;
		}
		if (user) {
			struct entry *u = table_get(&users, user, &fresh);
			if (fresh)
				r->users++;
			if (!strcmp(type, "group") && !u->flags) {
				u->flags = 1;
				r->groups_users++;
			}
			if (anon && strcmp(type, "alias")) {
				if (!u->other[0])
					snprintf(u->other, sizeof(u->other), "%s", anon);
				else if (strcmp(u->other, anon) && !u->multi) {
					u->multi = true;
					r->users_two_devices++;
				}
			}
		}
		if (anon && strcmp(type, "alias")) {
			struct entry *d = table_get(&devices, anon, &fresh);
			if (fresh)
				d->bot = ua && strstr(ua, "bot");
			if (user) {
				if (!d->other[0])
					snprintf(d->other, sizeof(d->other), "%s", user);
				else if (strcmp(d->other, user) && !d->multi) {
					d->multi = true;
					r->devices_two_users++;
				}
			}
			if (!strcmp(type, "page")) {
				const char *ref = jstr(props, "referrer");
				if (!ref || strncmp(ref, SITE, strlen(SITE))) {
					close_visit(r, d);
					d->flags = 0;
					if (!d->bot) {
						const char *url = jstr(props, "url");
						r->visits++;
						r->landing_direct += !ref && !strchr(url, '?');
						r->landing_cpc +=
						    strstr(url, "utm_medium=cpc") != NULL;
						r->landing_social +=
						    strstr(url, "utm_medium=paid_social") != NULL;
						r->landing_email +=
						    strstr(url, "utm_medium=email") != NULL;
					}
				}
			}
			if (ev && !strcmp(ev, "Product Viewed"))
				d->flags |= V_VIEW;
			if (ev && !strcmp(ev, "Product Added"))
				d->flags |= V_ADD;
			if (ev && !strcmp(ev, "Checkout Started"))
				d->flags |= V_CHECKOUT;
			if (ev && !strcmp(ev, "Order Completed"))
				d->flags |= V_ORDER;
		}
		cJSON_Delete(m);
	}
	for (size_t i = 0; i < devices.cap; i++) {
		const struct entry *d = &devices.e[i];
		if (!d->used)
			continue;
		close_visit(r, d);
		r->anon_only_devices += !d->bot && !d->other[0];
	}
	free(copy);
	free(devices.e);
	free(users.e);
}

#define assert_near(value, want, tol)                                                              \
	cr_assert((value) > (want) - (tol) && (value) < (want) + (tol),                            \
		  #value " = %.4f, documented %.4f +- %.4f", (double)(value), (double)(want),      \
		  (double)(tol))

Test(demo, documented_rates, .timeout = 60)
{
	/* 20 events per person, like the defaults */
	struct demo_options o = opts(11, 200000, 10000, 90);
	struct capture c;
	generate(&o, &c);
	struct rates r;
	measure(&c, &r);

	double with_view = (double)r.with[V_VIEW];
	assert_near(with_view / r.visits, 0.73, 0.04);
	assert_near(r.with[V_ADD] / with_view, 0.30, 0.03);
	assert_near((double)r.with[V_CHECKOUT] / r.with[V_ADD], 0.50, 0.04);
	assert_near((double)r.with[V_ORDER] / r.with[V_CHECKOUT], 0.60, 0.05);

	assert_near((double)r.opened / r.sent, 0.25, 0.03);
	assert_near((double)r.clicked / r.sent, 0.04, 0.012);
	assert_near((double)r.sent / 200000, 0.03, 0.015);

	assert_near((double)r.bot_msgs / r.web_msgs, 0.01, 0.006);
	assert_near((double)r.landing_direct / r.visits, 0.40, 0.05);
	assert_near((double)r.landing_cpc / r.visits, 0.13, 0.03);
	assert_near((double)r.landing_social / r.visits, 0.12, 0.03);
	assert_near((double)r.landing_email / r.visits, 0.02, 0.015);

	/* people: identified users against everyone seen (anonymous devices) */
	double people = (double)(r.users + r.anon_only_devices);
	assert_near(r.users / people, 0.40, 0.05);
	assert_near((double)r.groups_users / r.users, 0.10, 0.04);
	assert_near(people, 10000, 1000);

	/* identity resolution has something to resolve */
	cr_assert(r.users_two_devices > r.users / 20, "%zu users on two devices",
		  r.users_two_devices);
	cr_assert(r.devices_two_users > 0, "no shared device");
	cr_assert(r.second_emails > 0, "no second email");
	cr_assert(r.crm_aliases > 0, "no CRM alias");
	cr_assert(r.signed_up > 0);
	free(c.data);
}
