/*
 * test_buf.c - the capped growable buffer (base/buf.h).
 */
#include "base/buf.h"
#include "base/td.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

Test(buf, append_and_nul)
{
	struct td_buf b;
	td_buf_init(&b, 1024);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(td_buf_append(&b, "hello", 5), 0);
	cr_assert_eq(td_buf_putc(&b, ' '), 0);
	cr_assert_eq(td_buf_append(&b, "world!!", 5), 0);
	cr_assert_eq(b.len, 11);
	cr_assert_str_eq(b.data, "hello world");
	cr_assert_eq(td_buf_append(&b, "", 0), 0);
	cr_assert_eq(b.len, 11);
	td_buf_reset(&b);
	cr_assert_eq(b.len, 0);
	cr_assert_str_eq(b.data, "");
	td_buf_release(&b);
	cr_assert_null(b.data);
	cr_assert_eq(b.max, 1024, "release keeps the cap");
}

Test(buf, grows_past_initial_capacity)
{
	struct td_buf b;
	td_buf_init(&b, 1 << 20);
	for (int i = 0; i < 100000; i++)
		cr_assert_eq(td_buf_putc(&b, (char)('a' + i % 26)), 0);
	cr_assert_eq(b.len, 100000);
	cr_assert_eq(strlen(b.data), 100000);
	for (int i = 0; i < 100000; i++)
		cr_assert_eq(b.data[i], (char)('a' + i % 26));
	cr_assert_gt(b.cap, b.len);
	td_buf_release(&b);
}

Test(buf, cap_is_exact_and_failure_leaves_buffer_unchanged)
{
	struct td_buf b;
	td_buf_init(&b, 10);
	cr_assert_eq(td_buf_append(&b, "0123456789", 10), 0, "exactly max bytes fit");
	cr_assert_eq(td_buf_putc(&b, 'x'), TD_ETOOLARGE);
	cr_assert_eq(td_buf_append(&b, "x", 1), TD_ETOOLARGE);
	cr_assert_eq(td_buf_printf(&b, "%d", 1), TD_ETOOLARGE);
	cr_assert_eq(td_buf_reserve(&b, 1), TD_ETOOLARGE);
	cr_assert_eq(td_buf_reserve(&b, SIZE_MAX), TD_ETOOLARGE, "no overflow in len + n");
	cr_assert_eq(b.len, 10);
	cr_assert_str_eq(b.data, "0123456789");
	cr_assert_eq(td_buf_append(&b, "", 0), 0, "appending nothing at the cap is fine");

	td_buf_reset(&b);
	cr_assert_eq(td_buf_append(&b, "abc", 3), 0);
	cr_assert_eq(td_buf_append(&b, "12345678", 8), TD_ETOOLARGE);
	cr_assert_eq(b.len, 3);
	cr_assert_str_eq(b.data, "abc");
	cr_assert_eq(td_buf_printf(&b, "%s", "12345678"), TD_ETOOLARGE);
	cr_assert_eq(b.len, 3);
	cr_assert_str_eq(b.data, "abc");
	cr_assert_eq(td_buf_printf(&b, "%s", "1234567"), 0);
	cr_assert_str_eq(b.data, "abc1234567");
	td_buf_release(&b);

	/* max 0: nothing fits, not even on an empty buffer */
	td_buf_init(&b, 0);
	cr_assert_eq(td_buf_putc(&b, 'a'), TD_ETOOLARGE);
	cr_assert_eq(b.len, 0);
	td_buf_release(&b);
}

Test(buf, printf)
{
	struct td_buf b;
	td_buf_init(&b, 1 << 20);
	cr_assert_eq(td_buf_printf(&b, "%s=%d", "n", 42), 0);
	cr_assert_eq(td_buf_printf(&b, ",%05.1f,%llu", 3.14159, 18446744073709551615ull), 0);
	cr_assert_str_eq(b.data, "n=42,003.1,18446744073709551615");
	cr_assert_eq(b.len, strlen(b.data));
	cr_assert_eq(td_buf_printf(&b, "%s", ""), 0);
	cr_assert_eq(b.len, strlen("n=42,003.1,18446744073709551615"));
	/* longer than the first allocation, in one call */
	char big[5000];
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	td_buf_reset(&b);
	cr_assert_eq(td_buf_printf(&b, "[%s]", big), 0);
	cr_assert_eq(b.len, 5000 + 1);
	cr_assert_eq(b.data[0], '[');
	cr_assert_eq(b.data[5000], ']');
	cr_assert_eq(b.data[5001], '\0');
	td_buf_release(&b);
}

static void json_is(const char *in, const char *want)
{
	struct td_buf b;
	td_buf_init(&b, 1 << 16);
	cr_assert_eq(td_buf_json_str(&b, in), 0);
	cr_assert_str_eq(b.data, want);
	cr_assert_eq(b.len, strlen(want));
	td_buf_release(&b);
}

Test(buf, json_string_escaping)
{
	json_is("", "\"\"");
	json_is("plain", "\"plain\"");
	json_is("say \"hi\"", "\"say \\\"hi\\\"\"");
	json_is("back\\slash", "\"back\\\\slash\"");
	json_is("a\nb\tc\rd", "\"a\\u000ab\\u0009c\\u000dd\"");
	json_is("\x01\x1f", "\"\\u0001\\u001f\"");
	json_is("/ and \x7f", "\"/ and \x7f\"");
	json_is("caf\xc3\xa9 \xe2\x82\xac", "\"caf\xc3\xa9 \xe2\x82\xac\""); /* UTF-8 kept */
	json_is("</script>", "\"</script>\"");
}

Test(buf, json_string_appends)
{
	struct td_buf b;
	td_buf_init(&b, 1024);
	cr_assert_eq(td_buf_putc(&b, '['), 0);
	cr_assert_eq(td_buf_json_str(&b, "a"), 0);
	cr_assert_eq(td_buf_putc(&b, ','), 0);
	cr_assert_eq(td_buf_json_str(&b, "b\""), 0);
	cr_assert_eq(td_buf_putc(&b, ']'), 0);
	cr_assert_str_eq(b.data, "[\"a\",\"b\\\"\"]");
	td_buf_release(&b);
}

Test(buf, json_string_too_large_fails)
{
	struct td_buf b;
	td_buf_init(&b, 8);
	cr_assert_eq(td_buf_json_str(&b, "0123456789"), TD_ETOOLARGE);
	td_buf_release(&b);
}

/*
 * buf.h promises that an append past the cap fails "and leaves the buffer
 * unchanged"; td_buf_json_str appends piece by piece, so it must roll back
 * a partial, unterminated string when the cap is hit half way.
 */
Test(buf, json_string_failure_leaves_buffer_unchanged)
{
	struct td_buf b;
	td_buf_init(&b, 8);
	cr_assert_eq(td_buf_append(&b, "[", 1), 0);
	cr_assert_eq(td_buf_json_str(&b, "0123456789"), TD_ETOOLARGE);
	cr_assert_eq(b.len, 1);
	cr_assert_str_eq(b.data, "[");
	td_buf_release(&b);
}

Test(buf, steal)
{
	struct td_buf b;
	td_buf_init(&b, 100);
	char *empty = td_buf_steal(&b);
	cr_assert_not_null(empty, "stealing an empty buffer gives an empty string");
	cr_assert_str_eq(empty, "");
	free(empty);
	cr_assert_eq(td_buf_printf(&b, "x%dy", 5), 0);
	char *s = td_buf_steal(&b);
	cr_assert_str_eq(s, "x5y");
	cr_assert_null(b.data);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.max, 100);
	free(s);
	cr_assert_eq(td_buf_append(&b, "again", 5), 0, "usable after steal");
	cr_assert_str_eq(b.data, "again");
	td_buf_release(&b);
}

Test(buf, csv_field_quotes_only_when_needed)
{
	struct td_buf b;
	td_buf_init(&b, 64);
	cr_assert_eq(td_buf_csv_field(&b, "plain", 5), 0);
	cr_assert_eq(td_buf_csv_field(&b, "a,b", 3), 0);
	cr_assert_eq(td_buf_csv_field(&b, "say \"hi\"\r\n", 10), 0);
	cr_assert_str_eq(b.data, "plain\"a,b\"\"say \"\"hi\"\"\r\n\"");
	/* a field that does not fit leaves the buffer as it was */
	size_t len = b.len;
	cr_assert_eq(td_buf_csv_field(&b, "\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"", 20),
		     TD_ETOOLARGE);
	cr_assert_eq(b.len, len);
	cr_assert_eq(b.data[len], '\0');
	td_buf_release(&b);
}
