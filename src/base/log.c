#include "base/log.h"
#include "base/timeutil.h"

#include <stdarg.h>
#include <stdio.h>

bool td_log_quiet;

static void emit(const char *level, const char *fmt, va_list ap)
{
	char ts[TD_ISO8601_LEN];
	char msg[1024];
	td_time_format(td_now_ms(), ts);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "%s %s %s\n", ts, level, msg);
}

void td_log_info(const char *fmt, ...)
{
	if (td_log_quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	emit("info", fmt, ap);
	va_end(ap);
}

void td_log_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit("warn", fmt, ap);
	va_end(ap);
}

void td_log_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit("error", fmt, ap);
	va_end(ap);
}
