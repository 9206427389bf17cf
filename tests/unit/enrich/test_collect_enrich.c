/*
 * The collector's use of enrichment (normalize.c): the stored "enriched"
 * object, where its inputs come from (context, batch context, properties of
 * a page call, cookies, the client address), the IP modes applied to
 * context.ip after the geo lookup, and a client's own "enriched" dropped.
 */
#include "base/td.h"
#include "collect/collect.h"
#include "enrich/enrich.h"
#include "mmdb.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Prepares body (one message, or a batch when t is COLLECT_BATCH) and
 * returns the stored JSON of message i (the caller deletes it). */
static cJSON *stored(const char *body, enum collect_type t, const struct enrich *e,
		     enum enrich_ip_mode mode, const char *ip, const char *cookie, size_t i)
{
	struct collect_limits lim;
	collect_limits_default(&lim);
	struct collect_origin o = {.source_id = 1,
				   .received_ms = 1795000000000,
				   .ip = ip,
				   .enrich = e,
				   .ip_mode = mode,
				   .cookie = cookie};
	struct collect_batch b;
	struct collect_error err;
	collect_batch_init(&b);
	cr_assert_eq(collect_prepare(body, strlen(body), t, &o, &lim, &b, &err), 0);
	cr_assert_gt(b.n, i, "message %zu was rejected: %s", i,
		     b.nrejects ? b.rejects[0].error : "");
	struct collect_event_view v;
	cr_assert_eq(collect_event_decode(b.payloads.data + b.off[i], b.len[i], &v), 0);
	cJSON *j = cJSON_ParseWithLength(v.json, v.json_len);
	cr_assert_not_null(j);
	collect_batch_release(&b);
	return j;
}

static const char *at(const cJSON *j, const char *a, const char *b, const char *c)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, a);
	if (b)
		v = cJSON_GetObjectItemCaseSensitive(v, b);
	if (c)
		v = cJSON_GetObjectItemCaseSensitive(v, c);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void expect_at(const cJSON *j, const char *a, const char *b, const char *c, const char *want)
{
	const char *got = at(j, a, b, c);
	if (want)
		cr_expect(got && !strcmp(got, want), "%s.%s.%s = '%s', want '%s'", a, b ? b : "",
			  c ? c : "", got ? got : "(absent)", want);
	else
		cr_expect_null(got, "%s.%s.%s should be absent, is '%s'", a, b ? b : "", c ? c : "",
			       got);
}

static struct enrich *make(const char *json)
{
	struct enrich *e = NULL;
	char err[600];
	cr_assert_eq(enrich_new(&e, json, NULL, err, sizeof(err)), 0, "%s", err);
	return e;
}

Test(collect_enrich, fields_from_the_message)
{
	struct enrich *e = make(NULL);
	const char *body =
	    "{\"type\":\"page\",\"anonymousId\":\"a1\",\"enriched\":{\"channel\":\"forged\"},"
	    "\"context\":{\"userAgent\":\"Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
	    "Firefox/125.0\","
	    "\"page\":{\"url\":\"https://Shop.Example.com/p/1?utm_source=Google&utm_medium=cpc&"
	    "gclid=G1\",\"referrer\":\"https://www.google.com/search?q=tent\"},"
	    "\"campaign\":{\"name\":\"from-sdk\"},"
	    "\"consent\":{\"categoryPreferences\":{\"Advertising\":true,\"Analytics\":false}}}}";
	cJSON *j = stored(body, COLLECT_PAGE, e, ENRICH_IP_KEEP, "198.51.100.7", NULL, 0);
	expect_at(j, "enriched", "page", "host", "shop.example.com");
	expect_at(j, "enriched", "page", "path", "/p/1");
	expect_at(j, "enriched", "campaign", "source", "Google");
	expect_at(j, "enriched", "campaign", "name", "from-sdk");
	expect_at(j, "enriched", "campaign", "click_network", "google");
	expect_at(j, "enriched", "referrer", "medium", "search");
	expect_at(j, "enriched", "referrer", "term", "tent");
	expect_at(j, "enriched", "channel", NULL, "Paid Search");
	expect_at(j, "enriched", "ua", "browser", "Firefox");
	expect_at(j, "context", "ip", NULL, "198.51.100.7");
	/* consent is stored as sent, inside context */
	const cJSON *adv = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "context"),
					     "consent"),
	    "categoryPreferences");
	cr_expect(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(adv, "Advertising")));
	/* only one "enriched", tandem's */
	int n = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, j) n += !strcmp(it->string, "enriched");
	cr_expect_eq(n, 1);
	cJSON_Delete(j);
	enrich_free(e);
}

Test(collect_enrich, page_properties_batch_context_and_cookies)
{
	struct enrich *e = make("{\"cookie_patterns\":[\"mkto:id-([0-9]+)\"]}");
	const char *body =
	    "{\"context\":{\"userAgent\":\"curl/8\",\"cookies\":{\"mkto\":\"id-77\"}},"
	    "\"batch\":[{\"type\":\"page\",\"userId\":\"u\",\"properties\":{\"url\":"
	    "\"https://s.example/x\",\"referrer\":\"https://www.reddit.com/\",\"__utmz\":"
	    "\"1.2.3.4.utmcsr=news|utmcmd=email|utmccn=spring\"}},"
	    "{\"type\":\"track\",\"event\":\"E\",\"userId\":\"u\",\"context\":{\"userAgent\":"
	    "\"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile Safari/604.1\"}}]}";
	cJSON *j = stored(body, COLLECT_BATCH, e, ENRICH_IP_KEEP, NULL, NULL, 0);
	expect_at(j, "enriched", "page", "path", "/x");
	expect_at(j, "enriched", "referrer", "source", "Reddit");
	expect_at(j, "enriched", "campaign", "source", "news");
	expect_at(j, "enriched", "campaign", "id", "77");
	expect_at(j, "enriched", "channel", NULL, "Email");
	expect_at(j, "enriched", "ua", "device", "bot");
	cJSON_Delete(j);
	j = stored(body, COLLECT_BATCH, e, ENRICH_IP_KEEP, NULL, NULL, 1);
	expect_at(j, "enriched", "ua", "os", "iOS");
	expect_at(j, "enriched", "page", "host", NULL);
	expect_at(j, "enriched", "campaign", "id", "77"); /* the batch context's cookie */
	expect_at(j, "enriched", "channel", NULL, "Direct");
	cJSON_Delete(j);
	/* a Cookie header */
	j = stored("{\"userId\":\"u\",\"context\":{\"page\":{\"url\":\"https://s.example/\"}}}",
		   COLLECT_PAGE, e, ENRICH_IP_KEEP, NULL,
		   "a=1; __utmz=1.2.3.4.utmcsr=bing|utmcmd=organic", 0);
	expect_at(j, "enriched", "campaign", "source", "bing");
	expect_at(j, "enriched", "channel", NULL, "Organic Search");
	cJSON_Delete(j);
	enrich_free(e);
}

Test(collect_enrich, ip_modes_after_geo)
{
	char dir[] = "/tmp/tandem-cgeo-XXXXXX", file[64], json[128];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/c.mmdb", dir);
	const struct mmdb_net nets[] = {{0xC6336400, 24, "US", "California", "San Francisco"}};
	cr_assert_eq(mmdb_write(file, nets, 1), 0);
	snprintf(json, sizeof(json), "{\"geo_database\":\"%s\"}", file);
	struct enrich *e = make(json);
	static const struct {
		const char *body, *client;
		enum enrich_ip_mode mode;
		const char *ip; /* stored context.ip, NULL: none */
	} t[] = {
	    {"{\"userId\":\"u\"}", "198.51.100.77", ENRICH_IP_TRUNCATE, "198.51.100.0"},
	    {"{\"userId\":\"u\"}", "198.51.100.77", ENRICH_IP_DROP, NULL},
	    {"{\"userId\":\"u\"}", "198.51.100.77", ENRICH_IP_KEEP, "198.51.100.77"},
	    {"{\"userId\":\"u\",\"context\":{\"ip\":\"198.51.100.9\",\"x\":1}}", "10.0.0.1",
	     ENRICH_IP_TRUNCATE, "198.51.100.0"},
	    {"{\"userId\":\"u\",\"context\":{\"ip\":\"198.51.100.9\"}}", "10.0.0.1", ENRICH_IP_DROP,
	     NULL},
	    {"{\"userId\":\"u\",\"context\":{\"ip\":null}}", "198.51.100.1", ENRICH_IP_TRUNCATE,
	     "198.51.100.0"},
	};
	for (size_t i = 0; i < TD_ARRAY_LEN(t); i++) {
		cJSON *j = stored(t[i].body, COLLECT_IDENTIFY, e, t[i].mode, t[i].client, NULL, 0);
		expect_at(j, "context", "ip", NULL, t[i].ip);
		expect_at(j, "enriched", "geo", "city", "San Francisco");
		cJSON_Delete(j);
	}
	/* the batch context's ip is replaced too */
	cJSON *j = stored("{\"context\":{\"ip\":\"198.51.100.50\"},\"batch\":[{\"type\":"
			  "\"identify\",\"userId\":\"u\"}]}",
			  COLLECT_BATCH, e, ENRICH_IP_TRUNCATE, "10.0.0.1", NULL, 0);
	expect_at(j, "context", "ip", NULL, "198.51.100.0");
	expect_at(j, "enriched", "geo", "country", "US");
	cJSON_Delete(j);
	enrich_free(e);
	unlink(file);
	rmdir(dir);
}

Test(collect_enrich, without_an_enricher)
{
	cJSON *j = stored("{\"userId\":\"u\",\"enriched\":{\"channel\":\"x\"}}", COLLECT_IDENTIFY,
			  NULL, ENRICH_IP_DROP, "10.0.0.1", NULL, 0);
	cr_expect_null(cJSON_GetObjectItemCaseSensitive(j, "enriched"));
	expect_at(j, "context", "ip", NULL, "10.0.0.1"); /* no enricher: no IP mode */
	cJSON_Delete(j);
}
