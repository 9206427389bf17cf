/*
 * timeutil.h - wall-clock time as int64 milliseconds since the Unix epoch (UTC),
 * and ISO-8601 text in and out.
 */
#ifndef TD_BASE_TIMEUTIL_H
#define TD_BASE_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#define TD_ISO8601_LEN 32 /* room for "+275760-09-13T00:00:00.000Z" and NUL */

int64_t td_now_ms(void);
/* Monotonic clock in nanoseconds, for latencies. */
uint64_t td_mono_ns(void);

/*
 * Parses an ISO-8601 / RFC 3339 timestamp: a date "YYYY-MM-DD", optionally
 * followed by 'T' (or a space) and "HH:MM[:SS[.fraction]]" and a zone "Z",
 * "+HH:MM", "+HHMM" or "+HH" (a time without zone is taken as UTC, as Segment
 * does). Returns 0 and sets *ms, or TD_EPARSE. Fractions beyond milliseconds
 * are truncated.
 */
int td_time_parse(const char *s, size_t len, int64_t *ms);

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" into out (TD_ISO8601_LEN bytes). */
void td_time_format(int64_t ms, char *out);

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
int64_t td_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
