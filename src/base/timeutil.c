#include "base/timeutil.h"
#include "base/td.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t td_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t td_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t td_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
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

/* Reads exactly n digits at s[*i]; returns -1 if any is not a digit. */
static int digits(const char *s, size_t len, size_t *i, int n)
{
	int v = 0;
	for (int k = 0; k < n; k++) {
		if (*i >= len || s[*i] < '0' || s[*i] > '9')
			return -1;
		v = v * 10 + (s[*i] - '0');
		(*i)++;
	}
	return v;
}

static int days_in_month(int64_t y, int m)
{
	static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

int td_time_parse(const char *s, size_t len, int64_t *ms)
{
	size_t i = 0;
	int y = digits(s, len, &i, 4);
	if (y < 0 || i >= len || s[i++] != '-')
		return TD_EPARSE;
	int mo = digits(s, len, &i, 2);
	if (mo < 1 || mo > 12 || i >= len || s[i++] != '-')
		return TD_EPARSE;
	int d = digits(s, len, &i, 2);
	if (d < 1 || d > days_in_month(y, mo))
		return TD_EPARSE;
	int hh = 0, mi = 0, ss = 0, frac = 0;
	int64_t offset_min = 0;
	if (i < len && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
		i++;
		hh = digits(s, len, &i, 2);
		if (hh < 0 || hh > 23 || i >= len || s[i++] != ':')
			return TD_EPARSE;
		mi = digits(s, len, &i, 2);
		if (mi < 0 || mi > 59)
			return TD_EPARSE;
		if (i < len && s[i] == ':') {
			i++;
			ss = digits(s, len, &i, 2);
			if (ss < 0 || ss > 60) /* 60: leap second, folded below */
				return TD_EPARSE;
			if (ss == 60)
				ss = 59;
			if (i < len && (s[i] == '.' || s[i] == ',')) {
				i++;
				int nd = 0;
				while (i < len && s[i] >= '0' && s[i] <= '9') {
					if (nd < 3)
						frac = frac * 10 + (s[i] - '0');
					nd++;
					i++;
				}
				if (nd == 0)
					return TD_EPARSE;
				for (; nd < 3; nd++)
					frac *= 10;
			}
		}
		if (i < len) {
			char c = s[i];
			if (c == 'Z' || c == 'z') {
				i++;
			} else if (c == '+' || c == '-') {
				i++;
				int oh = digits(s, len, &i, 2);
				int om = 0;
				if (oh < 0 || oh > 23)
					return TD_EPARSE;
				bool colon = i < len && s[i] == ':';
				if (colon)
					i++;
				if (i < len || colon) {
					om = digits(s, len, &i, 2);
					if (om < 0 || om > 59)
						return TD_EPARSE;
				}
				offset_min = (int64_t)oh * 60 + om;
				if (c == '-')
					offset_min = -offset_min;
			}
		}
	}
	if (i != len)
		return TD_EPARSE;
	int64_t days = td_days_from_civil(y, (unsigned)mo, (unsigned)d);
	int64_t secs = days * 86400 + hh * 3600 + mi * 60 + ss - offset_min * 60;
	*ms = secs * 1000 + frac;
	return 0;
}

static void put_digits(char *p, unsigned v, int n)
{
	while (n--) {
		p[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

void td_time_format(int64_t ms, char *out)
{
	/* years 0..9999 only; also keeps the arithmetic below from overflowing */
	if (ms < -62167219200000LL)
		ms = -62167219200000LL; /* 0000-01-01 */
	if (ms > 253402300799999LL)
		ms = 253402300799999LL; /* 9999-12-31T23:59:59.999 */
	int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
	unsigned msec = (unsigned)(ms - secs * 1000);
	int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	unsigned rem = (unsigned)(secs - days * 86400);
	int64_t y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	if (y < 0 || y > 9999) {
		/* outside what ISO-8601 basic years hold: clamp, never overflow */
		snprintf(out, TD_ISO8601_LEN, "%s",
			 y < 0 ? "0000-01-01T00:00:00.000Z" : "9999-12-31T23:59:59.999Z");
		return;
	}
	/* hand-formatted: this runs twice per ingested event */
	memcpy(out, "0000-00-00T00:00:00.000Z", 25);
	put_digits(out, (unsigned)y, 4);
	put_digits(out + 5, m, 2);
	put_digits(out + 8, d, 2);
	put_digits(out + 11, rem / 3600, 2);
	put_digits(out + 14, rem / 60 % 60, 2);
	put_digits(out + 17, rem % 60, 2);
	put_digits(out + 20, msec, 3);
}
