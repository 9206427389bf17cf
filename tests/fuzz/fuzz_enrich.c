/*
 * fuzz_enrich.c - enrichment of outside input: page URLs, referrers, user
 * agents, cookies (Cookie headers and __utmz), context.campaign values, IP
 * addresses (enrich_event, enrich_result_json, enrich_ip_anonymize), and
 * the user's referrer file and channel rules (enrich_refdb_load,
 * enrich_rules_parse).
 *
 * Input: fields separated by the byte 0x00: URL, referrer, user agent,
 * cookies, IP, campaign source; missing fields are absent. The whole input
 * is also read as a referrer file and, line by line, as channel rules.
 *
 * Invariants checked:
 *   - the "enriched" object is valid JSON (cJSON reads it) and valid UTF-8
 *     without control characters, every value at most 255 bytes (path 1023,
 *     query 2047);
 *   - the same input enriched twice gives the same bytes;
 *   - an anonymized IP is an address (inet_pton reads it back).
 */
#include "fuzz.h"

#include "base/buf.h"
#include "base/td.h"
#include "enrich/enrich.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <string.h>

static struct enrich *enr;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char err[600];
	FUZZ_CHECK(
	    enrich_new(&enr,
		       "{\"cookie_patterns\":[\"__utmz:pk10mkto-([0-9]+)\",\"mk:id:([^&]*)\"],"
		       "\"internal_domains\":\"shop.example\"}",
		       NULL, err, sizeof(err)) == 0);
	return 0;
}

static void check_utf8(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		size_t k = fuzz_utf8_len(p + i, n - i);
		FUZZ_CHECK(k > 0);
		FUZZ_CHECK(k > 1 || p[i] >= 0x20);
		i += k;
	}
}

static void check_lengths(const cJSON *j)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, j)
	{
		if (cJSON_IsObject(it))
			check_lengths(it);
		else if (cJSON_IsString(it))
			FUZZ_CHECK(strlen(it->valuestring) < (!strcmp(it->string, "query") ? 2048u
							      : !strcmp(it->string, "path")
								  ? 1024u
								  : 256u));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct enrich_str f[6] = {{0}};
	const char *p = (const char *)data, *end = p + size;
	for (int k = 0; k < 6 && p <= end; k++) {
		const char *z = memchr(p, 0, (size_t)(end - p));
		const char *fe = z ? z : end;
		f[k] = (struct enrich_str){p, (size_t)(fe - p)};
		if (!z)
			break;
		p = z + 1;
	}
	char ip[64] = "", source[64] = "";
	memcpy(ip, f[4].p ? f[4].p : "", f[4].n < 63 ? f[4].n : 63);
	memcpy(source, f[5].p ? f[5].p : "", f[5].n < 63 ? f[5].n : 63);
	struct enrich_input in = {
	    .page_url = f[0], .referrer = f[1], .user_agent = f[2], .cookies = f[3], .ip = ip};
	in.campaign[ENRICH_C_SOURCE] = source;
	struct enrich_result *r = malloc(sizeof(*r));
	FUZZ_CHECK(r != NULL);
	struct td_buf a, b;
	td_buf_init(&a, 1u << 20);
	td_buf_init(&b, 1u << 20);
	enrich_event(enr, &in, r);
	FUZZ_CHECK(enrich_result_json(r, &a) == 0);
	enrich_event(enr, &in, r);
	FUZZ_CHECK(enrich_result_json(r, &b) == 0);
	FUZZ_CHECK(a.len == b.len && !memcmp(a.data, b.data, a.len));
	check_utf8(a.data, a.len);
	cJSON *j = cJSON_ParseWithLength(a.data, a.len);
	FUZZ_CHECK(j != NULL);
	check_lengths(j);
	cJSON_Delete(j);
	td_buf_release(&a);
	td_buf_release(&b);
	free(r);

	char out[64];
	unsigned char bin[16];
	if (enrich_ip_anonymize(ip, strlen(ip), ENRICH_IP_TRUNCATE, out, sizeof(out)))
		FUZZ_CHECK(inet_pton(AF_INET, out, bin) == 1 || inet_pton(AF_INET6, out, bin) == 1);

	/* the whole input as a user's referrer file, and as channel rules */
	struct enrich_refdb *db = enrich_refdb_new();
	char err[300];
	enrich_refdb_load(db, (const char *)data, size, "fuzz", err, sizeof(err));
	struct enrich_refinfo info;
	if (f[1].n && f[1].n < 200) {
		char host[256];
		memcpy(host, f[1].p, f[1].n);
		host[f[1].n] = '\0';
		if (!memchr(host, 0, f[1].n))
			enrich_refdb_lookup(db, host, &info);
	}
	enrich_refdb_free(db);
	char *text = malloc(size + 1);
	FUZZ_CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';
	const char *rules[8];
	size_t nr = 0;
	for (char *q = text; q && nr < 8; nr++) {
		rules[nr] = q;
		q = strchr(q, '\n');
		if (q)
			*q++ = '\0';
	}
	struct enrich_rules *rr = NULL;
	if (enrich_rules_parse(&rr, rules, nr, err, sizeof(err)) == 0)
		enrich_rules_free(rr);
	free(text);
	return 0;
}
