#include "base/buf.h"

#include <stdbool.h>
#include "base/td.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void td_buf_init(struct td_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void td_buf_release(struct td_buf *b)
{
	free(b->data);
	td_buf_init(b, b->max);
}

void td_buf_reset(struct td_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

int td_buf_reserve(struct td_buf *b, size_t n)
{
	if (n > b->max || b->len > b->max - n)
		return TD_ETOOLARGE;
	size_t need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = td_try_realloc(b->data, cap);
	if (!p)
		return TD_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int td_buf_append(struct td_buf *b, const void *data, size_t n)
{
	int rc = td_buf_reserve(b, n);
	if (rc)
		return rc;
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int td_buf_putc(struct td_buf *b, char c)
{
	return td_buf_append(b, &c, 1);
}

int td_buf_vprintf(struct td_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return TD_EINVAL;
	int rc = td_buf_reserve(b, (size_t)n);
	if (rc)
		return rc;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int td_buf_printf(struct td_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = td_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if it is not valid. */
static size_t utf8_len(const unsigned char *p)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f))
			return 0; /* overlong, or a UTF-16 surrogate */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

int td_buf_json_str(struct td_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = b->len;
	int rc = td_buf_putc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; !rc && *p;) {
		unsigned char c = *p;
		size_t n = 1;
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			rc = td_buf_append(b, esc, 2);
		} else if (c < 0x20) {
			char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			rc = td_buf_append(b, esc, 6);
		} else if (c < 0x80) {
			rc = td_buf_putc(b, (char)c);
		} else if ((n = utf8_len(p)) != 0) {
			rc = td_buf_append(b, p, n);
		} else {
			/* not UTF-8: U+FFFD keeps the output valid JSON */
			rc = td_buf_append(b, "\\ufffd", 6);
			n = 1;
		}
		p += n;
	}
	if (!rc)
		rc = td_buf_putc(b, '"');
	if (rc) { /* leave the buffer as it was */
		b->len = start;
		if (b->data)
			b->data[start] = '\0';
	}
	return rc;
}

char *td_buf_steal(struct td_buf *b)
{
	char *p = b->data;
	if (!p)
		p = td_strdup("");
	td_buf_init(b, b->max);
	return p;
}

int td_buf_csv_field(struct td_buf *b, const char *s, size_t n)
{
	bool quote = false;
	for (size_t i = 0; i < n && !quote; i++)
		quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
	if (!quote)
		return td_buf_append(b, s, n);
	size_t start = b->len;
	int rc = td_buf_putc(b, '"');
	for (size_t i = 0; i < n && !rc; i++)
		rc = s[i] == '"' ? td_buf_append(b, "\"\"", 2) : td_buf_putc(b, s[i]);
	if (!rc)
		rc = td_buf_putc(b, '"');
	if (rc) { /* all or nothing, like the other appends */
		b->len = start;
		b->data[start] = '\0';
	}
	return rc;
}
