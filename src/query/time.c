/*
 * time.c - calendar arithmetic for buckets: local wall-clock times are
 * int64 ms since 1970-01-01T00:00 of the wall clock (UTC instant + offset).
 */
#include "base/timeutil.h"
#include "query/query_int.h"

#include <stdio.h>

int64_t q_floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

/* H. Hinnant's civil_from_days (the inverse of td_days_from_civil). */
void q_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int64_t q_bucket_key(enum qinterval iv, int64_t local_ms)
{
	switch (iv) {
	case QI_HOUR:
		return q_floor_div(local_ms, MS_PER_HOUR);
	case QI_DAY:
		return q_floor_div(local_ms, MS_PER_DAY);
	case QI_WEEK:
		/* day -3 (1969-12-29) was a Monday */
		return q_floor_div(q_floor_div(local_ms, MS_PER_DAY) + 3, 7);
	case QI_MONTH:
	default: {
		int64_t y;
		unsigned m, d;
		q_civil_from_days(q_floor_div(local_ms, MS_PER_DAY), &y, &m, &d);
		return y * 12 + (int64_t)m - 1;
	}
	}
}

int64_t q_bucket_local_start(enum qinterval iv, int64_t key)
{
	switch (iv) {
	case QI_HOUR:
		return key * MS_PER_HOUR;
	case QI_DAY:
		return key * MS_PER_DAY;
	case QI_WEEK:
		return (key * 7 - 3) * MS_PER_DAY;
	case QI_MONTH:
	default: {
		int64_t y = q_floor_div(key, 12);
		unsigned m = (unsigned)(key - y * 12) + 1;
		return td_days_from_civil(y, m, 1) * MS_PER_DAY;
	}
	}
}

void q_format_local(int64_t local_ms, char *out)
{
	int64_t days = q_floor_div(local_ms, MS_PER_DAY);
	int64_t rem = local_ms - days * MS_PER_DAY;
	int64_t y;
	unsigned m, d;
	q_civil_from_days(days, &y, &m, &d);
	unsigned secs = (unsigned)(rem / 1000) % 86400;
	snprintf(out, Q_LOCAL_LEN, "%04lld-%02u-%02uT%02u:%02u:%02u", (long long)y, m % 13, d % 32,
		 secs / 3600, secs / 60 % 60, secs % 60);
}

void q_format_instant(int64_t utc_ms, int64_t off_ms, char *out)
{
	int64_t local = utc_ms + off_ms;
	char base[Q_LOCAL_LEN];
	q_format_local(local, base);
	unsigned ms = (unsigned)(local - q_floor_div(local, 1000) * 1000) % 1000;
	if (off_ms == 0) {
		snprintf(out, Q_INSTANT_LEN, "%s.%03uZ", base, ms);
		return;
	}
	int64_t a = off_ms < 0 ? -off_ms : off_ms;
	unsigned mins = (unsigned)(a / MS_PER_MIN) % (100 * 60);
	snprintf(out, Q_INSTANT_LEN, "%s.%03u%c%02u:%02u", base, ms, off_ms < 0 ? '-' : '+',
		 mins / 60, mins % 60);
}

void qbucketer_init(struct qbucketer *b, const struct query_tz *tz, enum qinterval iv)
{
	b->tz = tz;
	b->iv = iv;
	b->lo = 0;
	b->hi = 0; /* empty: the first lookup fills the cache */
	b->key = 0;
}

int64_t qbucketer_key(struct qbucketer *b, int64_t t)
{
	if (t >= b->lo && t < b->hi)
		return b->key;
	int64_t from, until;
	int64_t off = query_tz_offset(b->tz, t, &from, &until);
	int64_t local = t + off;
	int64_t key = q_bucket_key(b->iv, local);
	int64_t ls = q_bucket_local_start(b->iv, key);
	int64_t le = q_bucket_local_start(b->iv, key + 1);
	/* same offset and same local bucket: the cache's span */
	int64_t lo = ls - off, hi = le - off;
	b->lo = from > lo ? from : lo;
	b->hi = until < hi ? until : hi;
	b->key = key;
	return key;
}
