/*
 * test_enrich.c - table-driven tests of every enrichment step: URLs and
 * percent-decoding, campaign parameters and click ids, __utmz, cookie
 * patterns, referrers, channel rules, user agents, IP modes, geo, the
 * configuration; hostile input (bad escapes, invalid UTF-8, huge values,
 * random bytes) always gives a bounded, valid result.
 */
#include "enrich/enrich.h"
#include "base/td.h"
#include "mmdb.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct enrich *make(const char *json)
{
	struct enrich *e = NULL;
	char err[600];
	int rc = enrich_new(&e, json, NULL, err, sizeof(err));
	cr_assert_eq(rc, 0, "enrich_new: %s", err);
	return e;
}

static struct enrich_str S(const char *s) {
	return (struct enrich_str){s, s ? strlen(s) : 0};
}

/* Valid UTF-8 without control characters. */
static bool
clean_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		size_t len = *p < 0x80	       ? 1
			     : (*p >> 5) == 6  ? 2
			     : (*p >> 4) == 14 ? 3
			     : (*p >> 3) == 30 ? 4
					       : 0;
		if (!len || (*p < 0x20 && len == 1) || *p == 0x7f)
			return false;
		for (size_t k = 1; k < len; k++)
			if ((p[k] & 0xc0) != 0x80)
				return false;
		p += len;
	}
	return true;
}

/* Enriches and returns the JSON object (caller frees with cJSON_Delete). */
static cJSON *run(const struct enrich *e, const struct enrich_input *in)
{
	struct enrich_result *r = td_malloc(sizeof(*r));
	enrich_event(e, in, r);
	struct td_buf b;
	td_buf_init(&b, 1u << 20);
	cr_assert_eq(enrich_result_json(r, &b), 0);
	cr_assert(clean_utf8(b.data), "not clean UTF-8: %s", b.data);
	cJSON *j = cJSON_Parse(b.data);
	cr_assert_not_null(j, "not JSON: %s", b.data);
	td_buf_release(&b);
	free(r);
	return j;
}

static const char *path(const cJSON *j, const char *a, const char *b)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, a);
	if (b)
		v = cJSON_GetObjectItemCaseSensitive(v, b);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void expect(const cJSON *j, const char *a, const char *b, const char *want, const char *ctx)
{
	const char *got = path(j, a, b);
	if (!want || !*want)
		cr_expect_null(got, "%s: %s.%s should be absent, is '%s'", ctx, a, b ? b : "", got);
	else
		cr_expect(got && !strcmp(got, want), "%s: %s.%s is '%s', want '%s'", ctx, a,
			  b ? b : "", got ? got : "(absent)", want);
}

/* ---- URL ---- */

Test(enrich_url, parts)
{
	static const struct {
		const char *url;
		bool ok;
		const char *host, *port, *path, *query, *frag;
	} t[] = {
	    {"https://shop.example.com/p/1?a=b#top", true, "shop.example.com", "", "/p/1", "a=b",
	     "top"},
	    {"http://user:pw@Host.Example:8080", true, "Host.Example", "8080", "", "", ""},
	    {"//cdn.example.com/x", true, "cdn.example.com", "", "/x", "", ""},
	    {"https://[2001:db8::1]:443/a", true, "[2001:db8::1]", "443", "/a", "", ""},
	    {"  https://a.b/?", true, "a.b", "", "/", "", ""},
	    {"https://a.b?q=1", true, "a.b", "", "", "q=1", ""},
	    {"/relative/path", false, "", "", "", "", ""},
	    {"mailto:someone@example.com", false, "", "", "", "", ""},
	    {"https://", false, "", "", "", "", ""},
	    {"https:///path", false, "", "", "", "", ""},
	    {"", false, "", "", "", "", ""},
	    {"h", false, "", "", "", "", ""},
	    {"https://a@@b.c/", true, "b.c", "", "/", "", ""},
	    {"https://[::1", true, "[::1", "", "", "", ""},
	};
	for (size_t i = 0; i < TD_ARRAY_LEN(t); i++) {
		struct enrich_url u;
		bool ok = enrich_url_parse(t[i].url, strlen(t[i].url), &u);
		cr_expect_eq(ok, t[i].ok, "%s", t[i].url);
		if (!ok)
			continue;
		const struct enrich_str *parts[] = {&u.host, &u.port, &u.path, &u.query,
						    &u.fragment};
		const char *want[] = {t[i].host, t[i].port, t[i].path, t[i].query, t[i].frag};
		for (int k = 0; k < 5; k++)
			cr_expect(parts[k]->n == strlen(want[k]) &&
				      (!parts[k]->n || !memcmp(parts[k]->p, want[k], parts[k]->n)),
				  "%s: part %d is '%.*s', want '%s'", t[i].url, k, (int)parts[k]->n,
				  parts[k]->n ? parts[k]->p : "", want[k]);
	}
}

Test(enrich_url, percent_decoding)
{
	static const struct {
		const char *in;
		bool plus;
		const char *out;
	} t[] = {
	    {"a%20b+c", true, "a b c"},
	    {"a%20b+c", false, "a b+c"},
	    {"caf%C3%A9", false, "caf\xc3\xa9"},
	    {"100%", false, "100%"},
	    {"%zz%4", false, "%zz%4"},
	    {"%C3", false, "\xef\xbf\xbd"},				  /* a lone lead byte */
	    {"%C0%AF", false, "\xef\xbf\xbd\xef\xbf\xbd"},		  /* overlong '/' */
	    {"%ED%A0%80", false, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* a surrogate */
	    {"a%00b%0Ac", false, "a b c"},				  /* control characters */
	    {"\xff\xfe", false, "\xef\xbf\xbd\xef\xbf\xbd"},		  /* raw invalid bytes */
	    {"%F0%9F%98%80", false, "\xf0\x9f\x98\x80"},
	    {"", false, ""},
	};
	for (size_t i = 0; i < TD_ARRAY_LEN(t); i++) {
		char out[64];
		size_t n = enrich_pct_decode(t[i].in, strlen(t[i].in), t[i].plus, out, sizeof(out));
		cr_expect_str_eq(out, t[i].out, "decode '%s'", t[i].in);
		cr_expect_eq(n, strlen(t[i].out));
	}
	/* cut at a character boundary: 3 x "é" in 6 bytes is 2 of them */
	char small[6];
	cr_expect_eq(enrich_pct_decode("%C3%A9%C3%A9%C3%A9", 18, false, small, sizeof(small)), 4);
	cr_expect_str_eq(small, "\xc3\xa9\xc3\xa9");
}

Test(enrich_url, query_params)
{
	struct enrich_str v;
	cr_assert(enrich_query_get(S("a=1&UTM%5FSource=x&b"), "utm_source", &v));
	cr_expect(v.n == 1 && v.p[0] == 'x');
	cr_expect(!enrich_query_get(S("utm_source=&b=2"), "utm_source", &v), "empty values skip");
	cr_expect(enrich_query_get(S(";;&&k;q=z"), "q", &v) && v.p[0] == 'z');
	cr_expect(!enrich_query_get(S("==&=&&="), "q", &v));
}

/* ---- campaign ---- */

Test(enrich_campaign, url_parameters)
{
	struct enrich *e = make(NULL);
	static const struct {
		const char *url;
		const char *source, *medium, *name, *term, *content, *id, *click, *network;
	} t[] = {
	    {"https://s.example/?utm_source=google&utm_medium=cpc&utm_campaign=spring%20sale&"
	     "utm_term=shoes&utm_content=ad1&utm_id=42",
	     "google", "cpc", "spring sale", "shoes", "ad1", "42", "", ""},
	    {"https://s.example/?mtm_campaign=m1&mtm_source=news&mtm_medium=email&mtm_keyword=k&"
	     "mtm_cid=7",
	     "news", "email", "m1", "k", "", "7", "", ""},
	    {"https://s.example/?pk_campaign=p1&pk_source=s&pk_medium=m&pk_kwd=w", "s", "m", "p1",
	     "w", "", "", "", ""},
	    /* utm_* wins over mtm_* whatever the order in the URL */
	    {"https://s.example/?mtm_source=second&utm_source=first", "first", "", "", "", "", "",
	     "", ""},
	    {"https://s.example/?gclid=Cj0KCQ", "", "", "", "", "", "", "Cj0KCQ", "google"},
	    {"https://s.example/?msclkid=abc", "", "", "", "", "", "", "abc", "microsoft"},
	    {"https://s.example/?dclid=d1", "", "", "", "", "", "", "d1", "google_display"},
	    {"https://s.example/?fbclid=IwAR", "", "", "", "", "", "", "IwAR", "meta"},
	    {"https://s.example/?ttclid=t1", "", "", "", "", "", "", "t1", "tiktok"},
	    {"https://s.example/?li_fat_id=l1", "", "", "", "", "", "", "l1", "linkedin"},
	    {"https://s.example/?fbclid=f&gclid=g", "", "", "", "", "", "", "g", "google"},
	    {"https://s.example/?utm_source=%ZZ%C3", "%ZZ\xef\xbf\xbd", "", "", "", "", "", "", ""},
	    {"https://s.example/?utm_source=", "", "", "", "", "", "", "", ""},
	};
	for (size_t i = 0; i < TD_ARRAY_LEN(t); i++) {
		struct enrich_input in = {.page_url = S(t[i].url)};
		cJSON *j = run(e, &in);
		expect(j, "campaign", "source", t[i].source, t[i].url);
		expect(j, "campaign", "medium", t[i].medium, t[i].url);
		expect(j, "campaign", "name", t[i].name, t[i].url);
		expect(j, "campaign", "term", t[i].term, t[i].url);
		expect(j, "campaign", "content", t[i].content, t[i].url);
		expect(j, "campaign", "id", t[i].id, t[i].url);
		expect(j, "campaign", "click_id", t[i].click, t[i].url);
		expect(j, "campaign", "click_network", t[i].network, t[i].url);
		cJSON_Delete(j);
	}
	enrich_free(e);
}

Test(enrich_campaign, configured_parameters_and_sdk_campaign)
{
	struct enrich *e = make("{\"campaign.source\":\"src, utm_source\",\"click_ids\":"
				"\"yclid:yandex\"}");
	struct enrich_input in = {.page_url = S("https://s.example/?utm_source=u&src=s&yclid=Y&"
						"gclid=G")};
	cJSON *j = run(e, &in);
	expect(j, "campaign", "source", "s", "configured order");
	expect(j, "campaign", "click_id", "Y", "configured click id");
	expect(j, "campaign", "click_network", "yandex", "configured click id");
	cJSON_Delete(j);
	/* context.campaign wins field by field; the URL fills the rest */
	in.campaign[ENRICH_C_SOURCE] = "sdk";
	in.campaign[ENRICH_C_NAME] = "sdk-name";
	in.page_url = S("https://s.example/?utm_source=url&utm_medium=cpc&utm_campaign=u");
	j = run(e, &in);
	expect(j, "campaign", "source", "sdk", "sdk wins");
	expect(j, "campaign", "name", "sdk-name", "sdk wins");
	expect(j, "campaign", "medium", "cpc", "url fills");
	cJSON_Delete(j);
	enrich_free(e);
}

/* ---- __utmz and cookie patterns ---- */

Test(enrich_cookies, utmz)
{
	static const struct {
		const char *cookie;
		bool filled;
		const char *source, *medium, *name, *term, *content, *click;
	} t[] = {
	    {"173272373.1318500000.1.1.utmcsr=google|utmccn=(organic)|utmcmd=organic|"
	     "utmctr=(not%20provided)",
	     true, "google", "organic", "", "", "", ""},
	    {"1.2.3.4.utmcsr=newsletter|utmccn=spring|utmcmd=email|utmctr=shoes|utmcct=top", true,
	     "newsletter", "email", "spring", "shoes", "top", ""},
	    {"1.2.3.4.utmcsr=(direct)|utmccn=(direct)|utmcmd=(none)", false, "", "", "", "", "",
	     ""},
	    {"1.2.3.4.utmgclid=CjwK|utmccn=(not%20set)|utmcmd=(not%20set)", true, "google", "cpc",
	     "", "", "", "CjwK"},
	    {"1.2.3.4.utmcsr%3Dbing%7Cutmcmd%3Dcpc", true, "bing", "cpc", "", "", "", ""},
	    {"utmcsr=x", true, "x", "", "", "", "", ""}, /* no prefix */
	    {"garbage", false, "", "", "", "", "", ""},
	    {"1.2.3.4.utmcsr|utmcmd=|=|||", false, "", "", "", "", "", ""},
	    {"", false, "", "", "", "", "", ""},
	};
	for (size_t i = 0; i < TD_ARRAY_LEN(t); i++) {
		struct enrich_campaign c;
		memset(&c, 0, sizeof(c));
		bool f = enrich_utmz_parse(S(t[i].cookie), &c);
		cr_expect_eq(f, t[i].filled, "%s", t[i].cookie);
		cr_expect_str_eq(c.v[ENRICH_C_SOURCE], t[i].source, "%s", t[i].cookie);
		cr_expect_str_eq(c.v[ENRICH_C_MEDIUM], t[i].medium, "%s", t[i].cookie);
		cr_expect_str_eq(c.v[ENRICH_C_NAME], t[i].name, "%s", t[i].cookie);
		cr_expect_str_eq(c.v[ENRICH_C_TERM], t[i].term, "%s", t[i].cookie);
		cr_expect_str_eq(c.v[ENRICH_C_CONTENT], t[i].content, "%s", t[i].cookie);
		cr_expect_str_eq(c.click_id, t[i].click, "%s", t[i].cookie);
	}
}

Test(enrich_cookies, find)
{
	struct enrich_str v;
	cr_assert(enrich_cookie_find(S("a=1; __utmz=\"x.y\" ;b=2"), "__utmz", &v));
	cr_expect(v.n == 3 && !memcmp(v.p, "x.y", 3));
	cr_expect(!enrich_cookie_find(S("x__utmz=1"), "__utmz", &v));
	cr_expect(enrich_cookie_find(S(";;;b=2;"), "b", &v) && v.n == 1);
	cr_expect(!enrich_cookie_find(S("=;=;"), "b", &v));
}

Test(enrich_cookies, utmz_only_without_url_campaign_and_patterns)
{
	struct enrich *e = make("{\"cookie_patterns\":[\"__utmz:pk10mkto-([0-9]+)\","
				"\"_mkto_trk:id:([0-9]+)\"]}");
	static const struct {
		const char *url, *cookies, *source, *name, *id;
	} t[] = {
	    {"https://s.example/", "__utmz=1.2.3.4.utmcsr=old|utmccn=pk10mkto-4711|utmcmd=email",
	     "old", "pk10mkto-4711", "4711"},
	    /* the URL's campaign wins over the cookie's (a new visit) */
	    {"https://s.example/?utm_source=new", "__utmz=1.2.3.4.utmcsr=old|utmcmd=email", "new",
	     "", ""},
	    {"https://s.example/", "_mkto_trk=id:123-ABC&token:_mch; other=1", "", "", "123"},
	    {"https://s.example/?utm_id=9", "__utmz=pk10mkto-4711", "", "", "9"},
	    {"https://s.example/", "__utmz=pk10mkto-", "", "", ""},
	};
	for (size_t i = 0; i < TD_ARRAY_LEN(t); i++) {
		struct enrich_input in = {.page_url = S(t[i].url), .cookies = S(t[i].cookies)};
		cJSON *j = run(e, &in);
		expect(j, "campaign", "source", t[i].source, t[i].cookies);
		expect(j, "campaign", "name", t[i].name, t[i].cookies);
		expect(j, "campaign", "id", t[i].id, t[i].cookies);
		cJSON_Delete(j);
	}
	enrich_free(e);
}

/* ---- referrers and channels ---- */

Test(enrich_referrer, classification)
{
	struct enrich *e = make("{\"internal_domains\":\"example-shop.com, Partner.Example\"}");
	static const struct {
		const char *ref, *host, *medium, *source, *term;
	} t[] = {
	    {"https://www.google.com/search?q=red+shoes", "www.google.com", "search", "Google",
	     "red shoes"},
	    {"https://www.google.co.uk/", "www.google.co.uk", "search", "Google", ""},
	    {"https://google.com.br/url?q=x", "google.com.br", "search", "Google", "x"},
	    {"https://mail.google.com/mail/u/0/", "mail.google.com", "email", "Gmail", ""},
	    {"https://www.bing.com/search?q=%C3%A9t%C3%A9", "www.bing.com", "search", "Bing",
	     "\xc3\xa9t\xc3\xa9"},
	    {"https://search.yahoo.com/search?p=tents", "search.yahoo.com", "search", "Yahoo!",
	     "tents"},
	    {"https://yandex.ru/search/?text=x", "yandex.ru", "search", "Yandex", "x"},
	    {"https://duckduckgo.com/", "duckduckgo.com", "search", "DuckDuckGo", ""},
	    {"https://l.facebook.com/l.php", "l.facebook.com", "social", "Facebook", ""},
	    {"https://t.co/abc", "t.co", "social", "Twitter", ""},
	    {"android-app://com.linkedin.android/", "com.linkedin.android", "unknown", "", ""},
	    {"https://outlook.live.com/mail/", "outlook.live.com", "email", "Outlook.com", ""},
	    {"https://googleads.g.doubleclick.net/", "googleads.g.doubleclick.net", "paid",
	     "Google Display", ""},
	    {"https://blog.example.org/post", "blog.example.org", "unknown", "", ""},
	    {"https://shop.example.com/cart", "shop.example.com", "internal", "", ""},
	    {"https://www.example-shop.com/", "www.example-shop.com", "internal", "", ""},
	    {"https://partner.example/", "partner.example", "internal", "", ""},
	    {"https://notexample-shop.com/", "notexample-shop.com", "unknown", "", ""},
	    {"https://WWW.GOOGLE.DE./", "www.google.de", "search", "Google", ""},
	    {"not a url", "", "", "", ""},
	};
	for (size_t i = 0; i < TD_ARRAY_LEN(t); i++) {
		struct enrich_input in = {.page_url = S("https://shop.example.com/"),
					  .referrer = S(t[i].ref)};
		cJSON *j = run(e, &in);
		expect(j, "referrer", "host", t[i].host, t[i].ref);
		expect(j, "referrer", "medium", t[i].medium, t[i].ref);
		expect(j, "referrer", "source", t[i].source, t[i].ref);
		expect(j, "referrer", "term", t[i].term, t[i].ref);
		cJSON_Delete(j);
	}
	enrich_free(e);
}

Test(enrich_referrer, database_format_and_user_file)
{
	struct enrich_refdb *db = enrich_refdb_new();
	char err[300];
	cr_assert_eq(enrich_refdb_load(db, enrich_builtin_referrers, enrich_builtin_referrers_len(),
				       "builtin", err, sizeof(err)),
		     0, "%s", err);
	cr_expect_gt(enrich_refdb_size(db), 100);
	const char user[] = "# mine\n\nsearch | Intranet Search | search.corp.example | query\n"
			    "social | Google Social | google.*\n";
	cr_assert_eq(enrich_refdb_load(db, user, sizeof(user) - 1, "user", err, sizeof(err)), 0);
	struct enrich_refinfo info;
	cr_assert(enrich_refdb_lookup(db, "search.corp.example", &info));
	cr_expect_str_eq(info.source, "Intranet Search");
	cr_assert(enrich_refdb_lookup(db, "www.google.fr", &info));
	cr_expect_str_eq(info.source, "Google Social", "a later entry replaces");
	cr_expect_eq(enrich_refdb_source_medium(db, "FACEBOOK"), ENRICH_M_SOCIAL);
	cr_expect_eq(enrich_refdb_source_medium(db, "bing"), ENRICH_M_SEARCH);
	cr_expect_eq(enrich_refdb_source_medium(db, "nobody"), ENRICH_M_NONE);
	static const struct {
		const char *line, *msg;
	} bad[] = {
	    {"search | X", "expected MEDIUM"},
	    {"video | X | x.com", "medium 'video'"},
	    {"search |  | x.com", "source name"},
	    {"search | X | bad/host", "not a host pattern"},
	    {"search | X | a.b.* ", "not a host pattern"},
	    {"search | X | | q", "no host pattern"},
	    {"search | X | x.com | q | more", "too many"},
	};
	for (size_t i = 0; i < TD_ARRAY_LEN(bad); i++) {
		int rc = enrich_refdb_load(db, bad[i].line, strlen(bad[i].line), "f.txt", err,
					   sizeof(err));
		cr_expect_eq(rc, TD_EPARSE, "%s", bad[i].line);
		cr_expect(strstr(err, bad[i].msg) && strstr(err, "f.txt:1"), "%s: %s", bad[i].line,
			  err);
	}
	enrich_refdb_free(db);
}

Test(enrich_channel, default_rules)
{
	struct enrich *e = make(NULL);
	static const struct {
		const char *url, *ref, *channel;
	} t[] = {
	    {"https://s.example/?gclid=x", "https://www.google.com/", "Paid Search"},
	    {"https://s.example/?msclkid=x", "", "Paid Search"},
	    {"https://s.example/?fbclid=x", "https://l.facebook.com/", "Paid Social"},
	    {"https://s.example/?dclid=x", "", "Display"},
	    {"https://s.example/?utm_source=google&utm_medium=cpc", "", "Paid Search"},
	    {"https://s.example/?utm_source=facebook&utm_medium=cpc", "", "Paid Social"},
	    {"https://s.example/?utm_source=facebook&utm_medium=paid_social", "", "Paid Social"},
	    {"https://s.example/?utm_source=news&utm_medium=email", "", "Email"},
	    {"https://s.example/?utm_source=newsletter", "", "Email"},
	    {"https://s.example/?utm_source=x&utm_medium=affiliate", "", "Affiliate"},
	    {"https://s.example/?utm_source=x&utm_medium=display", "", "Display"},
	    {"https://s.example/?utm_source=x&utm_medium=banner", "", "Display"},
	    {"https://s.example/?utm_source=twitter&utm_medium=social", "", "Organic Social"},
	    {"https://s.example/?utm_source=instagram", "", "Organic Social"},
	    {"https://s.example/?utm_source=bing&utm_medium=organic", "", "Organic Search"},
	    {"https://s.example/?utm_source=partner&utm_medium=referral", "", "Referral"},
	    {"https://s.example/", "https://www.google.de/", "Organic Search"},
	    {"https://s.example/", "https://www.reddit.com/r/x", "Organic Social"},
	    {"https://s.example/", "https://mail.google.com/", "Email"},
	    {"https://s.example/", "https://blog.example.org/", "Referral"},
	    {"https://s.example/", "https://s.example/other", "Direct"},
	    {"https://s.example/", "", "Direct"},
	    {"https://s.example/", "https://ad.doubleclick.net/", "Display"},
	};
	for (size_t i = 0; i < TD_ARRAY_LEN(t); i++) {
		struct enrich_input in = {.page_url = S(t[i].url), .referrer = S(t[i].ref)};
		cJSON *j = run(e, &in);
		expect(j, "channel", NULL, t[i].channel, t[i].url);
		cJSON_Delete(j);
	}
	/* nothing to judge by: no channel at all */
	struct enrich_input none = {.user_agent = S("curl/8.0")};
	cJSON *j = run(e, &none);
	expect(j, "channel", NULL, NULL, "no page");
	cJSON_Delete(j);
	enrich_free(e);
}

Test(enrich_channel, configured_rules_and_errors)
{
	struct enrich *e = make("{\"channel_rules\":[\"Affiliate: source=deal*,*coupon* & "
				"medium!=email\",\"Email: medium=email\",\"Referral: "
				"referrer.source\"]}");
	static const struct {
		const char *url, *ref, *channel;
	} t[] = {
	    {"https://s.example/?utm_source=DealSpot", "", "Affiliate"},
	    {"https://s.example/?utm_source=mycoupons&utm_medium=cpc", "", "Affiliate"},
	    {"https://s.example/?utm_source=dealspot&utm_medium=email", "", "Email"},
	    {"https://s.example/", "https://www.bing.com/", "Referral"},
	    {"https://s.example/?utm_source=google&utm_medium=cpc", "", "Direct"},
	};
	for (size_t i = 0; i < TD_ARRAY_LEN(t); i++) {
		struct enrich_input in = {.page_url = S(t[i].url), .referrer = S(t[i].ref)};
		cJSON *j = run(e, &in);
		expect(j, "channel", NULL, t[i].channel, t[i].url);
		cJSON_Delete(j);
	}
	enrich_free(e);
	static const struct {
		const char *json, *msg;
	} bad[] = {
	    {"{\"channel_rules\":[\"Paid: medium=cpc\"]}", "unknown channel 'Paid'"},
	    {"{\"channel_rules\":[\"Email medium=email\"]}", "expected 'CHANNEL:"},
	    {"{\"channel_rules\":[\"Email: colour=red\"]}", "unknown field 'colour'"},
	    {"{\"channel_rules\":[\"Email: medium=\"]}", "needs a value"},
	    {"{\"channel_rules\":[\"Email: medium=x & \"]}", "empty condition"},
	    {"{\"channel_rules\":[\"Email:\"]}", "at least one condition"},
	    {"{\"channel_rules\":\"Email: medium=x\"}", "list of strings"},
	    {"{\"cookie_patterns\":[\"__utmz:([0-9]+\"]}", "cookie pattern"},
	    {"{\"cookie_patterns\":[\"__utmz:[0-9]+\"]}", "capture group"},
	    {"{\"cookie_patterns\":[\"nocolon\"]}", "COOKIE:REGEX"},
	    {"{\"click_ids\":\"gclid\"}", "PARAMETER:NETWORK"},
	    {"{\"ip\":\"hash\"}", "keep, truncate or drop"},
	    {"{\"ip.web\":\"none\"}", "keep, truncate or drop"},
	    {"{\"colour\":\"red\"}", "unknown enrichment setting"},
	    {"{\"geo_database\":\"/nonexistent/x.mmdb\"}", "cannot open the geo database"},
	    {"{\"referrer_file\":\"/nonexistent/r.txt\"}", "cannot read the referrer file"},
	    {"[1]", "not a JSON object"},
	    {"{\"campaign.source\":5}", "must be a string"},
	    {"{\"session_gap\":\"30\"}", "session_gap: \"30\" is not a duration from 1m to 24h"},
	    {"{\"session_gap\":\"59s\"}", "session_gap: \"59s\" is not a duration"},
	    {"{\"session_gap\":\"25h\"}", "session_gap: \"25h\" is not a duration"},
	    {"{\"session_gap\":\"30 m\"}", "session_gap"},
	    {"{\"session_gap\":\"-5m\"}", "session_gap"},
	};
	for (size_t i = 0; i < TD_ARRAY_LEN(bad); i++) {
		char err[600];
		struct enrich *x = NULL;
		cr_expect_neq(enrich_new(&x, bad[i].json, NULL, err, sizeof(err)), 0, "%s",
			      bad[i].json);
		cr_expect_null(x);
		cr_expect(strstr(err, bad[i].msg), "%s: '%s' lacks '%s'", bad[i].json, err,
			  bad[i].msg);
	}
}

/* ---- user agents ---- */

Test(enrich_ua, classification)
{
	static const struct {
		const char *ua, *browser, *bver, *os, *over, *device;
		bool bot;
	} t[] = {
	    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
	     "Chrome/124.0.6367.60 Safari/537.36",
	     "Chrome", "124.0", "Windows", "10", "desktop", false},
	    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
	     "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
	     "Edge", "124.0", "Windows", "10", "desktop", false},
	    {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
	     "Gecko) Version/17.4.1 Safari/605.1.15",
	     "Safari", "17.4", "macOS", "10.15", "desktop", false},
	    {"Mozilla/5.0 (Windows NT 6.1; rv:125.0) Gecko/20100101 Firefox/125.0", "Firefox",
	     "125.0", "Windows", "7", "desktop", false},
	    {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
	     "like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
	     "Safari", "17.4", "iOS", "17.4", "mobile", false},
	    {"Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
	     "Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
	     "Chrome", "124.0", "iOS", "16.6", "tablet", false},
	    {"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
	     "Chrome/124.0.0.0 Mobile Safari/537.36",
	     "Chrome", "124.0", "Android", "10", "mobile", false},
	    {"Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
	     "Chrome/123.0.0.0 Safari/537.36",
	     "Chrome", "123.0", "Android", "13", "tablet", false},
	    {"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
	     "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
	     "Samsung Internet", "24.0", "Android", "14", "mobile", false},
	    {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
	     "Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0",
	     "Opera", "109.0", "Linux", "", "desktop", false},
	    {"Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
	     "Internet Explorer", "11.0", "Windows", "7", "desktop", false},
	    {"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
	     "Chrome/124.0.0.0 Safari/537.36",
	     "Chrome", "124.0", "Chrome OS", "", "desktop", false},
	    {"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	     "Googlebot", "", "", "", "bot", true},
	    {"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "Bingbot",
	     "", "", "", "bot", true},
	    {"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, "
	     "like Gecko) Chrome/124.0.6367.60 Mobile Safari/537.36 (compatible; Googlebot/2.1)",
	     "Googlebot", "", "Android", "6.0", "bot", true},
	    {"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
	     "Facebook", "", "", "", "bot", true},
	    {"curl/8.5.0", "curl", "", "", "", "bot", true},
	    {"python-requests/2.31.0", "Python Requests", "", "", "", "bot", true},
	    {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
	     "HeadlessChrome/124.0.0.0 Safari/537.36",
	     "Headless Chrome", "", "Linux", "", "bot", true},
	    {"SomeCrawler/1.0", "", "", "", "", "bot", true},
	    {"MyApp/3.2 (unknown)", "", "", "", "", "desktop", false},
	    {"\xff\xfe\x00garbage", "", "", "", "", "desktop", false},
	    {"Mozilla/5.0 (Windows NT 10.0) Chrome/", "Chrome", "", "Windows", "10", "desktop",
	     false},
	    {"Chrome/999999999999999999999999999999999999999999.1", "Chrome",
	     "9999999999999999999999999999999", "", "", "desktop", false},
	};
	for (size_t i = 0; i < TD_ARRAY_LEN(t); i++) {
		struct enrich_ua u;
		/* the one with a NUL inside is 10 bytes: \xff \xfe \0 "garbage" */
		enrich_ua_parse(t[i].ua, t[i].ua[0] == '\xff' ? 10 : strlen(t[i].ua), &u);
		cr_expect_str_eq(u.browser ? u.browser : "", t[i].browser, "%s", t[i].ua);
		cr_expect_str_eq(u.browser_version, t[i].bver, "%s", t[i].ua);
		cr_expect_str_eq(u.os ? u.os : "", t[i].os, "%s", t[i].ua);
		cr_expect_str_eq(u.os_version, t[i].over, "%s", t[i].ua);
		cr_expect_str_eq(enrich_device_name(u.device), t[i].device, "%s", t[i].ua);
		cr_expect_eq(u.bot, t[i].bot, "%s", t[i].ua);
	}
	struct enrich_ua u;
	enrich_ua_parse("   ", 3, &u);
	cr_expect_eq(u.device, ENRICH_DEV_NONE);
}

Test(enrich_ua, bot_flag_in_json)
{
	struct enrich *e = make(NULL);
	struct enrich_input in = {.user_agent = S("Googlebot/2.1")};
	cJSON *j = run(e, &in);
	const cJSON *ua = cJSON_GetObjectItemCaseSensitive(j, "ua");
	cr_expect(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ua, "bot")));
	expect(j, "ua", "device", "bot", "bot");
	cJSON_Delete(j);
	in.user_agent = S("Mozilla/5.0 (Windows NT 10.0) Firefox/1.0");
	j = run(e, &in);
	cr_expect_null(
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "ua"), "bot"),
	    "bot is omitted for people");
	cJSON_Delete(j);
	enrich_free(e);
}

/* ---- IP modes and geo ---- */

Test(enrich_ip, modes)
{
	static const struct {
		const char *ip;
		enum enrich_ip_mode mode;
		const char *out; /* NULL: nothing stored */
	} t[] = {
	    {"203.0.113.77", ENRICH_IP_KEEP, "203.0.113.77"},
	    {"203.0.113.77", ENRICH_IP_TRUNCATE, "203.0.113.0"},
	    {"203.0.113.77", ENRICH_IP_DROP, NULL},
	    {"2001:db8:85a3:1234:5678:8a2e:370:7334", ENRICH_IP_TRUNCATE, "2001:db8:85a3::"},
	    {"::ffff:198.51.100.9", ENRICH_IP_TRUNCATE, "198.51.100.0"},
	    {"not-an-ip", ENRICH_IP_TRUNCATE, NULL},
	    {"1.2.3.4.5", ENRICH_IP_TRUNCATE, NULL},
	    {"", ENRICH_IP_TRUNCATE, NULL},
	};
	for (size_t i = 0; i < TD_ARRAY_LEN(t); i++) {
		char out[64];
		bool ok =
		    enrich_ip_anonymize(t[i].ip, strlen(t[i].ip), t[i].mode, out, sizeof(out));
		cr_expect_eq(ok, t[i].out != NULL, "%s", t[i].ip);
		if (ok && t[i].out)
			cr_expect_str_eq(out, t[i].out, "%s", t[i].ip);
	}
	cr_expect_eq(enrich_ip_mode_parse("truncate"), ENRICH_IP_TRUNCATE);
	cr_expect_eq(enrich_ip_mode_parse("anonymize"), -1);
}

Test(enrich_geo, database)
{
	char dir[] = "/tmp/tandem-geo-XXXXXX", file[64], json[128];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/city.mmdb", dir);
	const struct mmdb_net nets[] = {
	    {0xC0000200, 24, "DE", "Berlin", "Berlin"},		   /* 192.0.2.0/24 */
	    {0xC6336400, 24, "US", "California", "San Francisco"}, /* 198.51.100.0/24 */
	    {0xCB007100, 25, "JP", "", ""},			   /* 203.0.113.0/25 */
	};
	cr_assert_eq(mmdb_write(file, nets, TD_ARRAY_LEN(nets)), 0);
	snprintf(json, sizeof(json), "{\"geo_database\":\"%s\"}", file);
	struct enrich *e = make(json);
	cr_expect(enrich_has_geo(e));
	static const struct {
		const char *ip, *country, *region, *city;
	} t[] = {
	    {"192.0.2.1", "DE", "Berlin", "Berlin"},
	    {"198.51.100.200", "US", "California", "San Francisco"},
	    {"203.0.113.5", "JP", "", ""},
	    {"203.0.113.200", "", "", ""}, /* the other half of the /24 */
	    {"10.1.2.3", "", "", ""},
	    {"2001:db8::1", "", "", ""}, /* an IPv6 address in an IPv4 database */
	    {"garbage", "", "", ""},
	};
	for (size_t i = 0; i < TD_ARRAY_LEN(t); i++) {
		struct enrich_input in = {.ip = t[i].ip};
		cJSON *j = run(e, &in);
		expect(j, "geo", "country", t[i].country, t[i].ip);
		expect(j, "geo", "region", t[i].region, t[i].ip);
		expect(j, "geo", "city", t[i].city, t[i].ip);
		cJSON_Delete(j);
	}
	enrich_free(e);
	/* a file that is not a database */
	FILE *f = fopen(file, "wb");
	fputs("not a database", f);
	fclose(f);
	char err[600];
	cr_expect_eq(enrich_new(&e, json, NULL, err, sizeof(err)), TD_ECORRUPT);
	cr_expect(strstr(err, file), "%s", err);
	unlink(file);
	rmdir(dir);
}

/* ---- hostile input ---- */

Test(enrich_hostile, huge_and_random_values)
{
	struct enrich *e = make("{\"cookie_patterns\":[\"c:x([a-z]*)\"]}");
	/* a 64 KB URL of escapes and a 64 KB user agent */
	size_t n = 65536;
	char *big = td_malloc(n + 1);
	memcpy(big, "https://h.example/?utm_source=", 30);
	for (size_t i = 30; i < n; i++)
		big[i] = "%C3%A9\xff"[i % 7];
	big[n] = '\0';
	struct enrich_input in = {.page_url = {big, n},
				  .referrer = {big, n},
				  .user_agent = {big, n},
				  .cookies = {big, n}};
	cJSON *j = run(e, &in);
	const char *src = path(j, "campaign", "source");
	cr_assert_not_null(src);
	cr_expect_leq(strlen(src), ENRICH_VALUE_MAX - 1);
	cJSON_Delete(j);
	/* random bytes in every field, deterministic */
	uint64_t x = 88172645463325252ull;
	char buf[4][300];
	for (int round = 0; round < 3000; round++) {
		for (int f = 0; f < 4; f++) {
			for (size_t i = 0; i < sizeof(buf[f]); i++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				/* mostly URL-ish characters, some anything */
				buf[f][i] = (x & 7) ? "https://%.=&?;|/_-aAz09 "[(x >> 8) % 24]
						    : (char)(x >> 16);
			}
		}
		struct enrich_input r = {.page_url = {buf[0], (size_t)(x % 300)},
					 .referrer = {buf[1], (size_t)((x >> 9) % 300)},
					 .user_agent = {buf[2], (size_t)((x >> 18) % 300)},
					 .cookies = {buf[3], (size_t)((x >> 27) % 300)}};
		cJSON_Delete(run(e, &r));
	}
	free(big);
	enrich_free(e);
}

Test(enrich_config, session_gap)
{
	static const struct {
		const char *json;
		int64_t ms;
	} ok[] = {{"{}", 1800000},
		  {"{\"session_gap\":\"45m\"}", 2700000},
		  {"{\"session_gap\":\"60s\"}", 60000},
		  {"{\"session_gap\":\"24h\"}", 86400000},
		  {"{\"session_gap\":\"90m\"}", 5400000}};
	for (size_t i = 0; i < TD_ARRAY_LEN(ok); i++) {
		struct enrich *e = make(ok[i].json);
		cr_expect_eq(enrich_session_gap_ms(e), ok[i].ms, "%s", ok[i].json);
		enrich_free(e);
	}
}
