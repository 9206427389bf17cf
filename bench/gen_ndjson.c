/*
 * gen_ndjson.c - writes synthetic Segment messages as newline-delimited JSON,
 * the input format of `tandem import`.
 *
 * The output is a pure function of (--seed, --events, --users): the same
 * arguments always give the same bytes, so benchmark inputs can be recreated
 * instead of stored. The mix is ~80% track, ~10% identify, ~10% page; ~10% of
 * track/page messages are anonymous (anonymousId only, as before a login), and
 * every user keeps one anonymousId, so identify calls stitch the two. Each
 * message has a unique messageId ("gen-SEED-INDEX") and is ~300 bytes.
 *
 * Speed matters (the import benchmark generates millions of lines first), so
 * lines are assembled with hand-written appenders into a 1 MiB buffer; no
 * printf per line. Timestamps advance by 0-39 ms per message from
 * 2026-10-01T00:00:00Z, and the date part is reformatted only when the second
 * changes.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OUT_CAP	     (1u << 20)
#define LINE_MAX_LEN 1024	  /* flush when less than this is left */
#define BASE_EPOCH_S 1790812800ll /* 2026-10-01T00:00:00Z */
#define MAX_EVENTS   10000000000ull
#define MAX_USERS    99999999ull

struct out {
	FILE *f;
	char *buf;
	size_t len;
	uint64_t total;
};

static void out_flush(struct out *o)
{
	if (o->len && fwrite(o->buf, 1, o->len, o->f) != o->len) {
		fprintf(stderr, "gen_ndjson: write failed: %s\n", strerror(errno));
		exit(1);
	}
	o->total += o->len;
	o->len = 0;
}

static inline void put(struct out *o, const char *s, size_t n)
{
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

/* Appends a string literal without measuring it at run time. */
#define PUTL(o, lit) put((o), (lit), sizeof(lit) - 1)

static inline void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static inline void put_u64(struct out *o, uint64_t v)
{
	char tmp[20];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		o->buf[o->len++] = tmp[--n];
}

static inline void put_pad(struct out *o, uint64_t v, int digits)
{
	for (int i = digits - 1; i >= 0; i--) {
		o->buf[o->len + (size_t)i] = (char)('0' + v % 10);
		v /= 10;
	}
	o->len += (size_t)digits;
}

static inline void put_hex(struct out *o, uint64_t v, int digits)
{
	static const char hex[] = "0123456789abcdef";
	for (int i = digits - 1; i >= 0; i--) {
		o->buf[o->len + (size_t)i] = hex[v & 15];
		v >>= 4;
	}
	o->len += (size_t)digits;
}

/* cents -> "12.34" */
static inline void put_money(struct out *o, uint64_t cents)
{
	put_u64(o, cents / 100);
	o->buf[o->len++] = '.';
	put_pad(o, cents % 100, 2);
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t mix(uint64_t x)
{
	uint64_t s = x;
	return splitmix(&s);
}

static const char *const first_names[] = {"Ada",      "Grace",	"Alan",	   "Edsger",
					  "Barbara",  "Ken",	"Dennis",  "Linus",
					  "Margaret", "Donald", "Frances", "John"};
static const char *const last_names[] = {"Lovelace", "Hopper",	 "Turing",  "Dijkstra",
					 "Liskov",   "Thompson", "Ritchie", "Torvalds",
					 "Hamilton", "Knuth",	 "Allen",   "Backus"};
static const char *const plans[] = {"free", "starter", "pro", "enterprise"};
static const char *const categories[] = {"Shoes", "Shirts", "Books", "Kitchen", "Garden", "Toys"};
static const char *const currencies[] = {"USD", "EUR", "GBP"};
static const char *const agents[] = {
    "Mozilla/5.0 (Macintosh) Safari/605.1",
    "Mozilla/5.0 (Windows NT 10.0) Chrome/126.0",
    "Mozilla/5.0 (iPhone) Mobile/15E148",
    "Mozilla/5.0 (X11; Linux) Firefox/127.0",
};
static const char *const pages[][2] = {
    {"Home", "/"},     {"Pricing", "/pricing"},	      {"Product", "/products/"},
    {"Cart", "/cart"}, {"Blog", "/blog/launch-week"},
};

#define PICK(arr, r) (arr[(r) % (sizeof(arr) / sizeof(arr[0]))])

struct clock {
	int64_t sec;   /* cached second */
	char date[20]; /* "YYYY-MM-DDTHH:MM:SS" */
};

static void put_timestamp(struct out *o, struct clock *c, uint64_t ms_since_base)
{
	int64_t sec = BASE_EPOCH_S + (int64_t)(ms_since_base / 1000);
	if (sec != c->sec) {
		time_t t = (time_t)sec;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(c->date, sizeof c->date, "%Y-%m-%dT%H:%M:%S", &tm);
		c->sec = sec;
	}
	put(o, c->date, 19);
	o->buf[o->len++] = '.';
	put_pad(o, ms_since_base % 1000, 3);
	o->buf[o->len++] = 'Z';
}

static void put_ids(struct out *o, uint64_t seed, uint64_t index, uint64_t user, bool with_user)
{
	PUTL(o, "\"messageId\":\"gen-");
	put_hex(o, seed, 8);
	o->buf[o->len++] = '-';
	put_pad(o, index, 12);
	PUTL(o, "\",");
	if (with_user) {
		PUTL(o, "\"userId\":\"user-");
		put_pad(o, user, 8);
		PUTL(o, "\",");
	}
	/* One stable anonymousId per user, as a browser cookie would give. */
	PUTL(o, "\"anonymousId\":\"");
	put_hex(o, mix(user ^ (seed << 32)), 16);
	PUTL(o, "\",");
}

static void put_context(struct out *o, uint64_t user, uint64_t r)
{
	PUTL(o, "\"context\":{\"library\":{\"name\":\"analytics.js\",\"version\":\"5.2.0\"},"
		"\"ip\":\"198.51.100.");
	put_u64(o, user % 250 + 1);
	PUTL(o, "\",\"userAgent\":\"");
	puts_(o, PICK(agents, user + (r & 1)));
	PUTL(o, "\"},");
}

static void gen_track(struct out *o, uint64_t r, uint64_t user)
{
	uint64_t k = (r >> 8) % 5;
	uint64_t a = r >> 16;

	PUTL(o, "\"event\":\"");
	switch (k) {
	case 0:
		PUTL(o, "Order Completed\",\"properties\":{\"order_id\":\"o-");
		put_u64(o, (a % 9000000) + 1000000);
		PUTL(o, "\",\"revenue\":");
		put_money(o, a % 50000 + 500);
		PUTL(o, ",\"currency\":\"");
		puts_(o, PICK(currencies, a >> 20));
		PUTL(o, "\",\"products\":");
		put_u64(o, (a >> 24) % 5 + 1);
		break;
	case 1:
		PUTL(o, "Product Viewed\",\"properties\":{\"product_id\":\"p-");
		put_u64(o, a % 5000);
		PUTL(o, "\",\"category\":\"");
		puts_(o, PICK(categories, a >> 20));
		PUTL(o, "\",\"price\":");
		put_money(o, a % 20000 + 99);
		break;
	case 2:
		PUTL(o, "Product Added\",\"properties\":{\"product_id\":\"p-");
		put_u64(o, a % 5000);
		PUTL(o, "\",\"quantity\":");
		put_u64(o, (a >> 20) % 3 + 1);
		PUTL(o, ",\"price\":");
		put_money(o, a % 20000 + 99);
		break;
	case 3:
		PUTL(o, "Checkout Started\",\"properties\":{\"value\":");
		put_money(o, a % 80000 + 500);
		PUTL(o, ",\"currency\":\"");
		puts_(o, PICK(currencies, a >> 20));
		o->buf[o->len++] = '"';
		break;
	default:
		PUTL(o, "Signed In\",\"properties\":{\"method\":\"");
		puts_(o, (a & 1) ? "password" : "google");
		PUTL(o, "\",\"plan\":\"");
		puts_(o, PICK(plans, user >> 3));
		o->buf[o->len++] = '"';
		break;
	}
	PUTL(o, "},");
}

static void gen_identify(struct out *o, uint64_t user)
{
	PUTL(o, "\"traits\":{\"email\":\"user");
	put_u64(o, user);
	PUTL(o, "@example.com\",\"name\":\"");
	puts_(o, PICK(first_names, user));
	o->buf[o->len++] = ' ';
	puts_(o, PICK(last_names, user / 12));
	PUTL(o, "\",\"plan\":\"");
	puts_(o, PICK(plans, user >> 3));
	PUTL(o, "\",\"logins\":");
	put_u64(o, user % 97);
	PUTL(o, "},");
}

static void gen_page(struct out *o, uint64_t r)
{
	const char *const *pg = PICK(pages, r >> 8);
	PUTL(o, "\"name\":\"");
	puts_(o, pg[0]);
	PUTL(o, "\",\"properties\":{\"path\":\"");
	puts_(o, pg[1]);
	if (pg[1][strlen(pg[1]) - 1] == '/')
		put_u64(o, (r >> 16) % 5000);
	PUTL(o, "\",\"url\":\"https://shop.example.com");
	puts_(o, pg[1]);
	PUTL(o, "\",\"referrer\":\"");
	puts_(o, (r >> 12) & 1 ? "https://www.google.com/" : "");
	PUTL(o, "\"},");
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gen_ndjson [--events N] [--users U] [--seed S] [--out FILE]\n"
		"  --events N   messages to write (default 1000000)\n"
		"  --users U    distinct users (default 100000)\n"
		"  --seed S     any integer; same seed and sizes give the same bytes (default 1)\n"
		"  --out FILE   output file (default stdout)\n");
}

static uint64_t parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi)
{
	char *e;
	errno = 0;
	unsigned long long v = strtoull(s, &e, 10);
	if (errno || e == s || *e || s[0] == '-' || v < lo || v > hi) {
		fprintf(stderr,
			"gen_ndjson: %s: expected an integer between %" PRIu64 " and %" PRIu64
			", got '%s'\n",
			opt, lo, hi, s);
		exit(1);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"events", required_argument, NULL, 'n'}, {"users", required_argument, NULL, 'u'},
	    {"seed", required_argument, NULL, 's'},   {"out", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0},
	};
	uint64_t events = 1000000, users = 100000, seed = 1;
	const char *path = NULL;
	int opt;

	while ((opt = getopt_long(argc, argv, "n:u:s:o:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			events = parse_u64("--events", optarg, 0, MAX_EVENTS);
			break;
		case 'u':
			users = parse_u64("--users", optarg, 1, MAX_USERS);
			break;
		case 's':
			seed = parse_u64("--seed", optarg, 0, UINT32_MAX);
			break;
		case 'o':
			path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 1;
	}

	struct out o = {.f = stdout};
	if (path) {
		o.f = fopen(path, "w");
		if (!o.f) {
			fprintf(stderr, "gen_ndjson: cannot create %s: %s\n", path,
				strerror(errno));
			return 1;
		}
	}
	o.buf = malloc(OUT_CAP);
	if (!o.buf) {
		fprintf(stderr, "gen_ndjson: out of memory\n");
		return 1;
	}

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t rng = seed * 0x2545f4914f6cdd1dull + 1;
	uint64_t ms = 0;
	struct clock clk = {.sec = -1};
	uint64_t n_track = 0, n_identify = 0, n_page = 0;

	for (uint64_t i = 0; i < events; i++) {
		uint64_t r = splitmix(&rng);
		uint64_t user = splitmix(&rng) % users;
		uint64_t kind = r % 100;
		bool anonymous = (r >> 40) % 10 == 0;

		ms += (r >> 48) % 40;
		if (kind < 80) {
			PUTL(&o, "{\"type\":\"track\",");
			put_ids(&o, seed, i, user, !anonymous);
			gen_track(&o, r, user);
			n_track++;
		} else if (kind < 90) {
			PUTL(&o, "{\"type\":\"identify\",");
			put_ids(&o, seed, i, user, true);
			gen_identify(&o, user);
			n_identify++;
		} else {
			PUTL(&o, "{\"type\":\"page\",");
			put_ids(&o, seed, i, user, !anonymous);
			gen_page(&o, r);
			n_page++;
		}
		put_context(&o, user, r >> 20);
		PUTL(&o, "\"timestamp\":\"");
		put_timestamp(&o, &clk, ms);
		PUTL(&o, "\"}\n");
		if (o.len > OUT_CAP - LINE_MAX_LEN)
			out_flush(&o);
	}
	out_flush(&o);
	if (fflush(o.f) != 0 || (path && fclose(o.f) != 0)) {
		fprintf(stderr, "gen_ndjson: write failed: %s\n", strerror(errno));
		return 1;
	}
	free(o.buf);

	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr,
		"gen_ndjson: %" PRIu64 " messages (%" PRIu64 " track, %" PRIu64
		" identify, %" PRIu64 " page), %" PRIu64 " bytes (%.0f B/line) in %.2f s\n",
		events, n_track, n_identify, n_page, o.total,
		events ? (double)o.total / (double)events : 0.0, secs);
	return 0;
}
