/*
 * log.h - one-line diagnostics on stderr: "2026-11-22T16:05:25.123Z warn wal: ...".
 * Thread-safe (one fprintf per line). td_log_quiet silences info lines (tests, CLI).
 */
#ifndef TD_BASE_LOG_H
#define TD_BASE_LOG_H

#include <stdbool.h>

extern bool td_log_quiet;

void td_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void td_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void td_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
