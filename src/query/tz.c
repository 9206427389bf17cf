/*
 * tz.c - time zones for bucketing: fixed UTC offsets, and IANA names read
 * from the system tz database (RFC 8536 TZif files, version 2 or later).
 *
 * We read the files ourselves instead of calling localtime_r() with a TZ
 * environment variable: TZ is process-global, so two queries in different
 * zones could not run at once. A TZif v2+ file holds 64-bit transition
 * instants and a footer POSIX TZ rule (e.g. "CET-1CEST,M3.5.0,M10.5.0/3")
 * for instants after the last transition; both are implemented here.
 *
 * File layout (RFC 8536 section 3), all integers big-endian:
 *   offset  size  field
 *   0       4     magic "TZif"
 *   4       1     version: 0, '2', '3' or '4'
 *   5       15    unused
 *   20      24    isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt (u32 each)
 *   44      ...   v1 data block (32-bit times), skipped
 *   then a second header and the v2 data block:
 *                 timecnt x i64 transition times
 *                 timecnt x u8  type index of each transition
 *                 typecnt x {i32 utoff, u8 isdst, u8 desigidx}
 *                 charcnt bytes of designations
 *                 leapcnt x {i64, i32} (must be 0 here)
 *                 isstdcnt + isutcnt bytes
 *   "\n" POSIX-TZ-string "\n"
 */
#include "base/timeutil.h"
#include "query/query_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TZ_MAX_FILE (1 << 20)

static int tzerr(char *err, size_t errcap, const char *msg, const char *name)
{
	if (errcap)
		snprintf(err, errcap, "timezone: %s%s%s", name ? name : "", name ? ": " : "", msg);
	return TD_EINVAL;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* Parses "[+-]hh[:mm[:ss]]" (POSIX TZ offsets and rule times) at *s. */
static bool posix_hms(const char **s, int32_t *out, int maxh)
{
	const char *p = *s;
	int sign = 1;
	if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		p++;
	}
	if (*p < '0' || *p > '9')
		return false;
	int h = 0;
	while (*p >= '0' && *p <= '9' && h <= 999)
		h = h * 10 + (*p++ - '0');
	if (h > maxh)
		return false;
	int m = 0, sec = 0;
	if (*p == ':') {
		p++;
		if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
			return false;
		m = (p[0] - '0') * 10 + (p[1] - '0');
		p += 2;
		if (*p == ':') {
			p++;
			if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
				return false;
			sec = (p[0] - '0') * 10 + (p[1] - '0');
			p += 2;
		}
	}
	if (m > 59 || sec > 59)
		return false;
	*out = sign * (h * 3600 + m * 60 + sec);
	*s = p;
	return true;
}

static bool posix_name(const char **s)
{
	const char *p = *s;
	if (*p == '<') {
		p++;
		while (*p && *p != '>')
			p++;
		if (*p != '>')
			return false;
		*s = p + 1;
		return true;
	}
	int n = 0;
	while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) {
		p++;
		n++;
	}
	if (n < 3)
		return false;
	*s = p;
	return true;
}

static bool posix_num(const char **s, int *out, int lo, int hi)
{
	const char *p = *s;
	if (*p < '0' || *p > '9')
		return false;
	int v = 0;
	while (*p >= '0' && *p <= '9' && v <= 9999)
		v = v * 10 + (*p++ - '0');
	if (v < lo || v > hi)
		return false;
	*out = v;
	*s = p;
	return true;
}

static bool posix_date(const char **s, struct qtz_rule_date *d)
{
	const char *p = *s;
	memset(d, 0, sizeof(*d));
	if (*p == 'J') {
		p++;
		d->kind = 'J';
		if (!posix_num(&p, &d->n, 1, 365))
			return false;
	} else if (*p == 'M') {
		p++;
		d->kind = 'M';
		if (!posix_num(&p, &d->m, 1, 12) || *p++ != '.' || !posix_num(&p, &d->w, 1, 5) ||
		    *p++ != '.' || !posix_num(&p, &d->d, 0, 6))
			return false;
	} else {
		d->kind = 'D';
		if (!posix_num(&p, &d->n, 0, 365))
			return false;
	}
	d->secs = 7200; /* default 02:00:00 */
	if (*p == '/') {
		p++;
		/* RFC 8536 allows -167..167 hours here */
		if (!posix_hms(&p, &d->secs, 167))
			return false;
	}
	*s = p;
	return true;
}

static bool parse_posix(struct query_tz *tz, const char *s)
{
	int32_t off;
	if (!posix_name(&s) || !posix_hms(&s, &off, 24))
		return false;
	tz->std_off = -off; /* POSIX offsets are west-positive */
	tz->has_rule = true;
	tz->rule_has_dst = false;
	if (!*s)
		return true;
	if (!posix_name(&s))
		return false;
	tz->dst_off = tz->std_off + 3600;
	if (*s && *s != ',') {
		if (!posix_hms(&s, &off, 24))
			return false;
		tz->dst_off = -off;
	}
	if (*s++ != ',' || !posix_date(&s, &tz->start) || *s++ != ',' ||
	    !posix_date(&s, &tz->end) || *s)
		return false;
	tz->rule_has_dst = true;
	return true;
}

int query_tz_parse_tzif(struct query_tz *tz, struct qarena *a, const unsigned char *p, size_t n,
			char *err, size_t errcap)
{
	const char *bad = "not a valid TZif file";
	if (n < 44 || memcmp(p, "TZif", 4) != 0)
		return tzerr(err, errcap, bad, tz->name);
	if (p[4] < '2')
		return tzerr(err, errcap, "TZif version 1 files are not supported", tz->name);
	/* skip the v1 block */
	uint32_t c[6];
	for (int i = 0; i < 6; i++)
		c[i] = be32(p + 20 + 4 * i);
	uint64_t v1 =
	    (uint64_t)c[3] * 5 + (uint64_t)c[4] * 6 + c[5] + (uint64_t)c[2] * 8 + c[1] + c[0];
	if (v1 > n - 44)
		return tzerr(err, errcap, bad, tz->name);
	size_t off = 44 + (size_t)v1;
	if (n - off < 44 || memcmp(p + off, "TZif", 4) != 0)
		return tzerr(err, errcap, bad, tz->name);
	for (int i = 0; i < 6; i++)
		c[i] = be32(p + off + 20 + 4 * i);
	uint32_t isutcnt = c[0], isstdcnt = c[1], leapcnt = c[2], timecnt = c[3], typecnt = c[4],
		 charcnt = c[5];
	off += 44;
	uint64_t need = (uint64_t)timecnt * 9 + (uint64_t)typecnt * 6 + charcnt +
			(uint64_t)leapcnt * 12 + isstdcnt + isutcnt;
	if (typecnt == 0 || need > n - off)
		return tzerr(err, errcap, bad, tz->name);
	if (leapcnt)
		return tzerr(err, errcap, "zones with leap seconds (right/...) are not supported",
			     tz->name);
	const unsigned char *times = p + off;
	const unsigned char *idx = times + (size_t)timecnt * 8;
	const unsigned char *types = idx + timecnt;
	tz->ntrans = timecnt;
	tz->trans = qa_alloc(a, (timecnt ? timecnt : 1) * sizeof(int64_t));
	tz->after = qa_alloc(a, (timecnt ? timecnt : 1) * sizeof(int32_t));
	for (uint32_t i = 0; i < timecnt; i++) {
		tz->trans[i] = be64(times + 8 * (size_t)i);
		if (i && tz->trans[i] <= tz->trans[i - 1])
			return tzerr(err, errcap, bad, tz->name);
		if (idx[i] >= typecnt)
			return tzerr(err, errcap, bad, tz->name);
		int32_t ut = (int32_t)be32(types + 6 * (size_t)idx[i]);
		if (ut < -25 * 3600 || ut > 26 * 3600)
			return tzerr(err, errcap, bad, tz->name);
		tz->after[i] = ut;
	}
	tz->before = (int32_t)be32(types);
	if (tz->before < -25 * 3600 || tz->before > 26 * 3600)
		return tzerr(err, errcap, bad, tz->name);
	tz->fixed = timecnt ? tz->after[timecnt - 1] : tz->before;
	off += (size_t)need;
	/* footer: "\n" rule "\n" */
	tz->has_rule = false;
	if (off < n && p[off] == '\n') {
		size_t end = off + 1;
		while (end < n && p[end] != '\n')
			end++;
		if (end >= n)
			return tzerr(err, errcap, bad, tz->name);
		size_t len = end - off - 1;
		if (len > 0) {
			char rule[128];
			if (len >= sizeof(rule))
				return tzerr(err, errcap, "footer rule too long", tz->name);
			memcpy(rule, p + off + 1, len);
			rule[len] = '\0';
			if (!parse_posix(tz, rule))
				return tzerr(err, errcap, "cannot read the footer TZ rule",
					     tz->name);
		}
	}
	return 0;
}

/* Fixed offsets: "+02:00", "-0530", "+05". */
static bool parse_fixed(const char *s, int32_t *secs)
{
	size_t n = strlen(s);
	if (n < 3 || (s[0] != '+' && s[0] != '-'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] == ':' && i == 3)))
			return false;
	int h, m = 0;
	if (n == 3) {
		h = (s[1] - '0') * 10 + (s[2] - '0');
	} else if (n == 5 && s[3] != ':') {
		h = (s[1] - '0') * 10 + (s[2] - '0');
		m = (s[3] - '0') * 10 + (s[4] - '0');
	} else if (n == 6 && s[3] == ':') {
		h = (s[1] - '0') * 10 + (s[2] - '0');
		m = (s[4] - '0') * 10 + (s[5] - '0');
	} else {
		return false;
	}
	if (h > 23 || m > 59)
		return false;
	*secs = (s[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
	return true;
}

static bool valid_zone_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= 64 || s[0] == '/' || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '/' || ch == '_' || ch == '-' || ch == '+'))
			return false;
		if (ch == '/' && (s[i + 1] == '.' || s[i + 1] == '/' || s[i + 1] == '\0'))
			return false;
	}
	return true;
}

int query_tz_load(struct query_tz *tz, struct qarena *a, const char *name, char *err, size_t errcap)
{
	memset(tz, 0, sizeof(*tz));
	snprintf(tz->name, sizeof(tz->name), "%s", name);
	if (strcmp(name, "UTC") == 0 || strcmp(name, "Z") == 0 || strcmp(name, "Etc/UTC") == 0 ||
	    strcmp(name, "GMT") == 0)
		return 0;
	if (name[0] == '+' || name[0] == '-') {
		if (!parse_fixed(name, &tz->fixed))
			return tzerr(err, errcap,
				     "a fixed offset is written +HH:MM or -HH:MM, at most 23:59",
				     name);
		return 0;
	}
	if (!valid_zone_name(name))
		return tzerr(err, errcap,
			     "not a time zone: use an IANA name such as \"Europe/Paris\" or a "
			     "UTC offset such as \"+02:00\"",
			     name);
	const char *dir = getenv("TZDIR");
	if (!dir || !*dir)
		dir = "/usr/share/zoneinfo";
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return tzerr(err, errcap,
			     errno == ENOENT ? "unknown time zone (not in the system tz database)"
					     : "cannot read the system tz database",
			     name);
	unsigned char *buf = qa_alloc(a, TZ_MAX_FILE);
	size_t n = fread(buf, 1, TZ_MAX_FILE, f);
	fclose(f);
	return query_tz_parse_tzif(tz, a, buf, n, err, errcap);
}

/* Day number (since 1970-01-01) of a POSIX rule date in year y. */
static int64_t rule_day(const struct qtz_rule_date *d, int64_t y)
{
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	int64_t jan1 = td_days_from_civil(y, 1, 1);
	switch (d->kind) {
	case 'J': /* 1..365, February 29 never counted */
		return jan1 + d->n - 1 + (leap && d->n >= 60);
	case 'D':
		return jan1 + d->n;
	default: {
		/* day d (0 = Sunday) of week w (5 = last) of month m */
		int64_t first = td_days_from_civil(y, (unsigned)d->m, 1);
		int wd = (int)((first % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday (4) */
		int64_t day = first + (d->d - wd + 7) % 7;
		static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
		int mdays = dm[d->m - 1] + (d->m == 2 && leap);
		for (int k = 1; k < d->w; k++)
			if (day + 7 < first + mdays)
				day += 7;
		return day;
	}
	}
}

/* DST start and end instants (seconds) of year y under the footer rule. */
static void rule_year(const struct query_tz *tz, int64_t y, int64_t *start, int64_t *end)
{
	/* the start time is given in standard time, the end time in DST */
	*start = rule_day(&tz->start, y) * 86400 + tz->start.secs - tz->std_off;
	*end = rule_day(&tz->end, y) * 86400 + tz->end.secs - tz->dst_off;
}

static int32_t rule_offset(const struct query_tz *tz, int64_t t, int64_t *from, int64_t *until)
{
	if (!tz->rule_has_dst) {
		*from = INT64_MIN;
		*until = INT64_MAX;
		return tz->std_off;
	}
	int64_t y;
	unsigned mo, d;
	q_civil_from_days(q_floor_div(t + tz->std_off, 86400), &y, &mo, &d);
	/* the transitions of the years around t, in order; the offset between
	 * two of them is dst when the earlier one is a start */
	int64_t ev[6];
	bool is_start[6];
	int k = 0;
	for (int64_t yy = y - 1; yy <= y + 1; yy++) {
		int64_t s, e;
		rule_year(tz, yy, &s, &e);
		if (s <= e) {
			ev[k] = s, is_start[k++] = true;
			ev[k] = e, is_start[k++] = false;
		} else {
			ev[k] = e, is_start[k++] = false;
			ev[k] = s, is_start[k++] = true;
		}
	}
	int last = -1;
	for (int i = 0; i < k; i++)
		if (ev[i] <= t)
			last = i;
	*from = last >= 0 ? ev[last] : INT64_MIN;
	*until = last + 1 < k ? ev[last + 1] : INT64_MAX;
	bool dst = last >= 0 ? is_start[last] : !is_start[0];
	return dst ? tz->dst_off : tz->std_off;
}

static int64_t sec_to_ms_floor(int64_t s)
{
	if (s <= INT64_MIN / 1000)
		return INT64_MIN;
	if (s >= INT64_MAX / 1000)
		return INT64_MAX;
	return s * 1000;
}

int64_t query_tz_offset(const struct query_tz *tz, int64_t t, int64_t *from, int64_t *until)
{
	int64_t lo = INT64_MIN, hi = INT64_MAX;
	int32_t off = tz->fixed;
	int64_t ts = q_floor_div(t, 1000);
	if (tz->ntrans) {
		if (ts < tz->trans[0]) {
			off = tz->before;
			hi = tz->trans[0];
		} else {
			size_t l = 0, r = tz->ntrans; /* last i with trans[i] <= ts */
			while (r - l > 1) {
				size_t mid = (l + r) / 2;
				if (tz->trans[mid] <= ts)
					l = mid;
				else
					r = mid;
			}
			off = tz->after[l];
			lo = tz->trans[l];
			if (l + 1 < tz->ntrans) {
				hi = tz->trans[l + 1];
			} else if (tz->has_rule) {
				int64_t rf, ru;
				off = rule_offset(tz, ts, &rf, &ru);
				lo = TD_MAX(lo, rf);
				hi = ru;
			}
		}
	} else if (tz->has_rule) {
		off = rule_offset(tz, ts, &lo, &hi);
	}
	if (from)
		*from = sec_to_ms_floor(lo);
	if (until)
		*until = sec_to_ms_floor(hi);
	return (int64_t)off * 1000;
}

int64_t query_tz_to_utc(const struct query_tz *tz, int64_t local)
{
	/* Candidates: the offsets in force a day either side. A candidate u
	 * solves u + off(u) == local; the earliest solution wins (fold). */
	int64_t cand[3] = {query_tz_offset(tz, local - MS_PER_DAY, NULL, NULL),
			   query_tz_offset(tz, local, NULL, NULL),
			   query_tz_offset(tz, local + MS_PER_DAY, NULL, NULL)};
	int64_t best = INT64_MAX;
	for (int i = 0; i < 3; i++) {
		int64_t u = local - cand[i];
		if (query_tz_offset(tz, u, NULL, NULL) == cand[i] && u < best)
			best = u;
	}
	if (best != INT64_MAX)
		return best;
	/* In a gap: the first instant whose wall clock passes local. Wall
	 * clock time u + off(u) only jumps forward across a gap, so search. */
	int64_t lo = local - 2 * MS_PER_DAY, hi = local + 2 * MS_PER_DAY;
	while (hi - lo > 1) {
		int64_t mid = lo + (hi - lo) / 2;
		if (mid + query_tz_offset(tz, mid, NULL, NULL) >= local)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}
