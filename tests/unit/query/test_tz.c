/*
 * test_tz.c - the engine's time zones (src/query/tz.c) against the C
 * library: for IANA zones both read the same TZif files, but through
 * independent code; POSIX footer rules are checked with synthetic TZif
 * images against glibc reading the same rule from the TZ variable.
 */
#include "qtest.h"
#include "query/query_int.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const zones[] = {
    "Europe/Paris",	 "America/New_York",  "Australia/Sydney", "Asia/Kolkata",
    "America/Sao_Paulo", "Pacific/Apia",      "Europe/London",	  "Asia/Tehran",
    "America/Santiago",	 "Africa/Casablanca", "Pacific/Chatham",  "Australia/Lord_Howe",
    "Asia/Kathmandu",	 "America/St_Johns",  "Europe/Dublin",	  "Antarctica/Troll",
};

static bool have_tzdata(void)
{
	return access("/usr/share/zoneinfo/Europe/Paris", R_OK) == 0 && !getenv("TZDIR");
}

static void check_zone(struct query_tz *tz, const char *glibc_tz, struct qt_rng *r, int n,
		       int64_t lo, int64_t hi)
{
	for (int i = 0; i < n; i++) {
		int64_t t = lo + (int64_t)(qt_next(r) % (uint64_t)(hi - lo));
		t -= t % 1000; /* glibc works in seconds */
		int64_t from, until;
		int64_t off = query_tz_offset(tz, t, &from, &until);
		int64_t want = qt_offset(glibc_tz, t);
		cr_assert_eq(off, want, "%s at %lld: %lld, glibc %lld", glibc_tz, (long long)t,
			     (long long)off, (long long)want);
		cr_assert(from <= t && t < until, "%s: span", glibc_tz);
		if (from != INT64_MIN)
			cr_assert_eq(query_tz_offset(tz, from, NULL, NULL), off, "%s: span start",
				     glibc_tz);
		if (until != INT64_MAX)
			cr_assert_eq(query_tz_offset(tz, until - 1, NULL, NULL), off,
				     "%s: span end", glibc_tz);
		/* local -> UTC: a wall-clock time maps to its first instant, or
		 * to the end of a gap */
		int64_t local = t + off + (int64_t)(qt_next(r) % (4 * 3600000ULL)) - 2 * 3600000;
		int64_t u = query_tz_to_utc(tz, local);
		int64_t wall = u + query_tz_offset(tz, u, NULL, NULL);
		if (wall == local) {
			for (int64_t v = u - 26 * 3600000LL; v < u; v += 300000)
				cr_assert_neq(v + query_tz_offset(tz, v, NULL, NULL), local,
					      "%s: an earlier instant has wall clock %lld",
					      glibc_tz, (long long)local);
		} else {
			cr_assert_gt(wall, local, "%s: to_utc(%lld)", glibc_tz, (long long)local);
			cr_assert_lt(u - 1 + query_tz_offset(tz, u - 1, NULL, NULL), local,
				     "%s: not the end of a gap", glibc_tz);
		}
	}
}

Test(query_tz, iana_zones_match_glibc)
{
	if (!have_tzdata())
		cr_skip_test("no system tz database");
	struct qt_rng r = {51};
	for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
		struct qarena a;
		qa_init(&a, NULL);
		struct query_tz tz;
		char err[200];
		int rc = query_tz_load(&tz, &a, zones[z], err, sizeof(err));
		cr_assert_eq(rc, 0, "%s: %s", zones[z], err);
		/* 1900..2100: transitions, the footer rule after 2037 */
		check_zone(&tz, zones[z], &r, 1500, -2208988800000LL, 4102444800000LL);
		/* dense around now */
		check_zone(&tz, zones[z], &r, 1000, 1577836800000LL, 1893456000000LL);
		qa_release(&a);
	}
}

/* A TZif v2 image with no transitions: only the footer rule. p has room
 * for TZIF_CAP bytes. */
#define TZIF_CAP 512
static size_t tzif(unsigned char *p, const char *rule)
{
	size_t n = 0;
	for (int block = 0; block < 2; block++) {
		memcpy(p + n, "TZif2", 5);
		memset(p + n + 5, 0, 15);
		n += 20;
		uint32_t counts[6] = {0, 0, 0, 0, 1, 4}; /* one type, 4 chars */
		for (int i = 0; i < 6; i++) {
			p[n++] = (unsigned char)(counts[i] >> 24);
			p[n++] = (unsigned char)(counts[i] >> 16);
			p[n++] = (unsigned char)(counts[i] >> 8);
			p[n++] = (unsigned char)counts[i];
		}
		memset(p + n, 0, 6); /* utoff 0, isdst 0, idx 0 */
		n += 6;
		memcpy(p + n, "UTC", 4);
		n += 4;
	}
	n += (size_t)snprintf((char *)p + n, TZIF_CAP - n, "\n%s\n", rule);
	cr_assert_lt(n, TZIF_CAP);
	return n;
}

Test(query_tz, posix_rules_match_glibc)
{
	static const char *const rules[] = {
	    "EST5EDT,M3.2.0,M11.1.0",
	    "AEST-10AEDT,M10.1.0,M4.1.0/3", /* southern: DST over new year */
	    "<+0330>-3:30",		    /* fixed, quoted name */
	    "XXX3YYY,J60/2,J300/2",	    /* Julian days without Feb 29 */
	    "XXX3YYY,59,299",		    /* zero-based days with Feb 29 */
	    "CET-1CEST,M3.5.0,M10.5.0/3",   /* last Sunday */
	    "NZST-12NZDT,M9.5.0,M4.1.0/3",
	    "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1", /* negative transition times */
	    "IST-2IDT,M3.4.4/26,M10.5.0",	/* hours past 24 */
	    "AAA-5:45BBB-6:45,M4.1.0,M9.5.0/1:30",
	};
	struct qt_rng r = {52};
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		unsigned char img[TZIF_CAP];
		size_t n = tzif(img, rules[i]);
		struct qarena a;
		qa_init(&a, NULL);
		struct query_tz tz;
		memset(&tz, 0, sizeof(tz));
		char err[200];
		int rc = query_tz_parse_tzif(&tz, &a, img, n, err, sizeof(err));
		cr_assert_eq(rc, 0, "%s: %s", rules[i], err);
		check_zone(&tz, rules[i], &r, 4000, 0, 4102444800000LL);
		qa_release(&a);
	}
}

Test(query_tz, fixed_offsets_and_bad_names)
{
	struct qarena a;
	qa_init(&a, NULL);
	struct query_tz tz;
	char err[200];
	static const struct {
		const char *name;
		int64_t off;
	} ok[] = {{"+02:00", 7200000}, {"-05:30", -19800000},
		  {"+0545", 20700000}, {"+05", 18000000},
		  {"UTC", 0},	       {"-00:00", 0}};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(query_tz_load(&tz, &a, ok[i].name, err, sizeof(err)), 0, "%s: %s",
			     ok[i].name, err);
		cr_assert_eq(query_tz_offset(&tz, 1700000000000LL, NULL, NULL), ok[i].off, "%s",
			     ok[i].name);
		cr_assert_eq(query_tz_to_utc(&tz, 1700000000000LL), 1700000000000LL - ok[i].off);
	}
	static const char *const bad[] = {
	    "+24:00",		"+1:00",	 "02:00",	"+02:60",	  "+02:0",
	    "../../etc/passwd", "Europe/../etc", "/etc/passwd", "Europe/Nowhere", "",
	    "Europe//Paris"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(query_tz_load(&tz, &a, bad[i], err, sizeof(err)), TD_EINVAL, "%s",
			     bad[i]);
		cr_assert(strstr(err, "timezone"), "%s", err);
	}
	unsigned char junk[64] = "TZif2";
	cr_assert_eq(query_tz_parse_tzif(&tz, &a, junk, sizeof(junk), err, sizeof(err)), TD_EINVAL);
	qa_release(&a);
}

Test(query_tz, truncated_tzif_files_are_rejected)
{
	unsigned char img[TZIF_CAP];
	size_t n = tzif(img, "CET-1CEST,M3.5.0,M10.5.0/3");
	struct qarena a;
	qa_init(&a, NULL);
	struct query_tz tz;
	char err[200];
	for (size_t cut = 0; cut + 1 < n; cut++) {
		memset(&tz, 0, sizeof(tz));
		int rc = query_tz_parse_tzif(&tz, &a, img, cut, err, sizeof(err));
		/* every prefix either fails or (without the footer) reads as UTC */
		if (rc == 0)
			cr_assert(!tz.has_rule, "cut at %zu", cut);
	}
	qa_release(&a);
}
