/*
 * buf.h - a growable byte buffer with a hard cap (curl's dynbuf habit).
 *
 * Every buffer that grows from outside input has a cap: appends past it fail
 * with TD_ETOOLARGE and leave the buffer unchanged. The buffer always keeps a
 * NUL after its contents so text can be handed to C string functions.
 * Ownership: the buffer owns its memory; td_buf_release() frees it and
 * td_buf_steal() hands it to the caller (free() it).
 */
#ifndef TD_BASE_BUF_H
#define TD_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct td_buf {
	char *data;
	size_t len;
	size_t cap; /* allocated bytes (contents + NUL) */
	size_t max; /* most content bytes allowed */
};

void td_buf_init(struct td_buf *b, size_t max);
void td_buf_release(struct td_buf *b);
void td_buf_reset(struct td_buf *b);
int td_buf_append(struct td_buf *b, const void *data, size_t n);
int td_buf_putc(struct td_buf *b, char c);
int td_buf_printf(struct td_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int td_buf_vprintf(struct td_buf *b, const char *fmt, va_list ap);
/* Makes room for n more bytes; returns 0 or TD_ETOOLARGE / TD_ENOMEM. */
int td_buf_reserve(struct td_buf *b, size_t n);
/* Appends n bytes of s as one CSV field (RFC 4180): quoted when it holds a
 * comma, a quote, CR or LF, with quotes doubled. */
int td_buf_csv_field(struct td_buf *b, const char *s, size_t n);
/* Appends s as a JSON string literal, quotes included. */
int td_buf_json_str(struct td_buf *b, const char *s);
char *td_buf_steal(struct td_buf *b);

#endif
