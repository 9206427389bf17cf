/*
 * fuzz_text.c - the small text readers and writers that see outside input:
 *   td_time_parse / td_time_format (timestamp, sentAt, ... of every message)
 *   http_cidr_parse (--trusted-proxy), http_client_ip (X-Forwarded-For)
 *   collect_type_from_path (the request URL)
 *   td_buf_json_str (every string tandem writes into JSON it emits)
 *   http_accepts (Accept-Encoding), http_etag_match (If-None-Match),
 *   http_web_path_ok (the URL path of a dashboard file)
 *
 * Input: arbitrary bytes, used whole by each reader (the raw, unterminated
 * buffer for td_time_parse so an over-read is caught; a NUL-terminated copy
 * for the C-string APIs).
 *
 * Invariants checked:
 *   - a parsed time in years 0000..9999 formats and parses back to the same
 *     millisecond; any int64 formats to 24 characters that parse;
 *   - a parsed CIDR has a prefix that fits its family, IPv4 as ::ffff:a.b.c.d;
 *   - the client address chosen from X-Forwarded-For is an address;
 *   - td_buf_json_str writes valid UTF-8 JSON that cJSON reads back as a
 *     string, equal to the input when the input is valid UTF-8 without NUL;
 *     at its cap it fails and leaves the buffer as it was;
 *   - an ETag matches itself, alone or listed; a path accepted for a file
 *     starts with '/' and has no "..", hidden name or empty segment.
 */
#include "fuzz.h"

#include "base/buf.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "collect/collect.h"
#include "http/http_int.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <string.h>

#define MIN_MS (-INT64_C(62167219200000)) /* 0000-01-01T00:00:00.000Z */
#define MAX_MS (INT64_C(253402300799999)) /* 9999-12-31T23:59:59.999Z */

static void check_time(const uint8_t *data, size_t size)
{
	int64_t ms = 0, again = 0;
	char iso[TD_ISO8601_LEN];
	if (td_time_parse((const char *)data, size, &ms) == 0) {
		td_time_format(ms, iso);
		FUZZ_CHECK(strlen(iso) == 24);
		FUZZ_CHECK(td_time_parse(iso, strlen(iso), &again) == 0);
		if (ms >= MIN_MS && ms <= MAX_MS)
			FUZZ_CHECK(again == ms);
		else
			FUZZ_CHECK(again == (ms < MIN_MS ? MIN_MS : MAX_MS));
	}
	/* the writer on any int64 */
	if (size >= 8) {
		int64_t any;
		memcpy(&any, data, 8);
		td_time_format(any, iso);
		FUZZ_CHECK(strlen(iso) == 24);
		FUZZ_CHECK(td_time_parse(iso, strlen(iso), &again) == 0);
		FUZZ_CHECK(again == (any < MIN_MS ? MIN_MS : any > MAX_MS ? MAX_MS : any));
	}
}

static bool is_address(const char *s)
{
	unsigned char a[16];
	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static void check_net(const char *s)
{
	struct http_cidr c;
	if (http_cidr_parse(s, &c) == 0) {
		const char *slash = strchr(s, '/');
		size_t addr_len = slash ? (size_t)(slash - s) : strlen(s);
		bool v6 = memchr(s, ':', addr_len) != NULL;
		FUZZ_CHECK(c.bits >= 0 && c.bits <= 128);
		if (!v6) {
			static const unsigned char mapped[12] = {0, 0, 0, 0, 0,	   0,
								 0, 0, 0, 0, 0xff, 0xff};
			FUZZ_CHECK(c.bits >= 96);
			FUZZ_CHECK(memcmp(c.addr, mapped, 12) == 0);
		}
	}

	/* X-Forwarded-For behind trusted proxies: the answer is the peer or
	 * one of the hops, and always an address */
	static struct http_config cfg;
	if (cfg.nproxies == 0) {
		static const char *const trusted[] = {"10.0.0.0/8", "127.0.0.1", "::1/128",
						      "fd00::/8"};
		for (size_t i = 0; i < TD_ARRAY_LEN(trusted); i++)
			FUZZ_CHECK(http_cidr_parse(trusted[i], &cfg.proxies[cfg.nproxies++]) == 0);
	}
	static const char *const peers[] = {"10.1.2.3", "::1", "198.51.100.7"};
	for (size_t i = 0; i < TD_ARRAY_LEN(peers); i++) {
		char out[64];
		memset(out, 'x', sizeof(out));
		http_client_ip(&cfg, peers[i], s, out, sizeof(out));
		FUZZ_CHECK(memchr(out, '\0', sizeof(out)) != NULL);
		FUZZ_CHECK(is_address(out));
		if (i == 2) /* an untrusted peer: X-Forwarded-For is ignored */
			FUZZ_CHECK(strcmp(out, peers[i]) == 0);
	}

	enum collect_type t;
	if (collect_type_from_path(s, &t))
		FUZZ_CHECK(t >= COLLECT_IDENTIFY && t <= COLLECT_BATCH);
}

static void check_web(const char *s)
{
	(void)http_accepts(s, "gzip");
	static const char etag[] = "\"0123456789abcdef\"";
	(void)http_etag_match(s, etag);
	if (strlen(s) < 200) {
		char list[512];
		snprintf(list, sizeof(list), "%s, %s", s, etag);
		FUZZ_CHECK(http_etag_match(list, etag));
	}
	if (http_web_path_ok(s)) {
		FUZZ_CHECK(s[0] == '/');
		FUZZ_CHECK(!strstr(s, "/.") && !strstr(s, "//"));
	}
}

static void check_json_str(const char *s)
{
	struct td_buf b;
	td_buf_init(&b, SIZE_MAX / 2);
	FUZZ_CHECK(td_buf_json_str(&b, s) == 0);
	FUZZ_CHECK(b.len >= 2 && b.data[0] == '"' && b.data[b.len - 1] == '"');
	FUZZ_CHECK(strlen(b.data) == b.len);
	FUZZ_CHECK(fuzz_is_utf8((const unsigned char *)b.data, b.len));
	for (size_t i = 0; i < b.len; i++)
		FUZZ_CHECK((unsigned char)b.data[i] >= 0x20);

	cJSON *j = cJSON_ParseWithLengthOpts(b.data, b.len + 1, NULL, 1);
	FUZZ_CHECK(j != NULL && cJSON_IsString(j));
	size_t n = strlen(s);
	if (fuzz_is_utf8((const unsigned char *)s, n)) {
		FUZZ_CHECK(strcmp(j->valuestring, s) == 0);
	} else {
		FUZZ_CHECK(
		    fuzz_is_utf8((const unsigned char *)j->valuestring, strlen(j->valuestring)));
	}
	cJSON_Delete(j);

	/* at the cap: one byte short fails and keeps "ab", an exact fit works */
	for (size_t shortfall = 0; shortfall <= 1; shortfall++) {
		struct td_buf c;
		td_buf_init(&c, 2 + b.len - shortfall);
		FUZZ_CHECK(td_buf_append(&c, "ab", 2) == 0);
		int rc = td_buf_json_str(&c, s);
		if (shortfall) {
			FUZZ_CHECK(rc == TD_ETOOLARGE);
			FUZZ_CHECK(c.len == 2 && strcmp(c.data, "ab") == 0);
		} else {
			FUZZ_CHECK(rc == 0);
			FUZZ_CHECK(c.len == 2 + b.len && memcmp(c.data + 2, b.data, b.len) == 0);
		}
		td_buf_release(&c);
	}
	td_buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_time(data, size);

	char *s = malloc(size + 1);
	FUZZ_CHECK(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	check_net(s);
	check_json_str(s); /* up to the first NUL, as a C string */
	check_web(s);
	free(s);
	return 0;
}
