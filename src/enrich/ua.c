/*
 * ua.c - User-Agent classification: browser and version, OS and version,
 * device class, bot flag. Token rules over the lower-cased string (the first
 * UA_MAX bytes), tried in a fixed order because the strings lie by design:
 * Edge and Opera say "Chrome", Chrome says "Safari", every browser says
 * "Mozilla". Tables below are tandem's own; docs/enrichment.md lists them.
 */
#include "enrich/enrich_int.h"

#include <stdio.h>
#include <string.h>

#define UA_MAX 512

/* Bots: a token anywhere in the string. Named ones first (their name is the
 * browser), then generic words that only automated clients use. */
static const struct {
	const char *token, *name;
} bots[] = {
    {"googlebot", "Googlebot"},
    {"adsbot-google", "Google AdsBot"},
    {"mediapartners-google", "Google AdSense"},
    {"googleother", "GoogleOther"},
    {"google-inspectiontool", "Google Inspection Tool"},
    {"bingbot", "Bingbot"},
    {"bingpreview", "Bing Preview"},
    {"yandexbot", "YandexBot"},
    {"baiduspider", "Baiduspider"},
    {"duckduckbot", "DuckDuckBot"},
    {"applebot", "Applebot"},
    {"slurp", "Yahoo! Slurp"},
    {"facebookexternalhit", "Facebook"},
    {"facebookcatalog", "Facebook"},
    {"meta-externalagent", "Meta"},
    {"twitterbot", "Twitterbot"},
    {"linkedinbot", "LinkedInBot"},
    {"pinterestbot", "Pinterestbot"},
    {"slackbot", "Slackbot"},
    {"discordbot", "Discordbot"},
    {"telegrambot", "TelegramBot"},
    {"whatsapp", "WhatsApp"},
    {"ahrefsbot", "AhrefsBot"},
    {"semrushbot", "SemrushBot"},
    {"mj12bot", "MJ12bot"},
    {"dotbot", "DotBot"},
    {"petalbot", "PetalBot"},
    {"bytespider", "Bytespider"},
    {"gptbot", "GPTBot"},
    {"chatgpt-user", "ChatGPT"},
    {"claudebot", "ClaudeBot"},
    {"ccbot", "CCBot"},
    {"perplexitybot", "PerplexityBot"},
    {"amazonbot", "Amazonbot"},
    {"uptimerobot", "UptimeRobot"},
    {"pingdom", "Pingdom"},
    {"headlesschrome", "Headless Chrome"},
    {"phantomjs", "PhantomJS"},
    {"lighthouse", "Lighthouse"},
    {"curl/", "curl"},
    {"wget/", "Wget"},
    {"python-requests", "Python Requests"},
    {"python-urllib", "Python urllib"},
    {"aiohttp", "aiohttp"},
    {"go-http-client", "Go HTTP client"},
    {"node-fetch", "node-fetch"},
    {"axios/", "axios"},
    {"apache-httpclient", "Apache HttpClient"},
    {"java/", "Java"},
    {"libwww-perl", "libwww-perl"},
    {"scrapy", "Scrapy"},
    {"postmanruntime", "Postman"},
    {"bot", NULL},
    {"crawler", NULL},
    {"spider", NULL},
    {"crawl", NULL},
    {"scraper", NULL},
    {"headless", NULL},
    {"httpclient", NULL},
    {"monitoring", NULL},
    {"preview", NULL},
    {"fetcher", NULL},
};

/* Browsers: the first token found names the browser; its version follows
 * the token (or the "version/" token for Safari-style strings). */
static const struct {
	const char *token, *name, *version_token;
} browsers[] = {
    {"edg/", "Edge", NULL},
    {"edga/", "Edge", NULL},
    {"edgios/", "Edge", NULL},
    {"edge/", "Edge", NULL},
    {"opr/", "Opera", NULL},
    {"opt/", "Opera", NULL},
    {"opera mini/", "Opera Mini", NULL},
    {"opera/", "Opera", "version/"},
    {"samsungbrowser/", "Samsung Internet", NULL},
    {"yabrowser/", "Yandex Browser", NULL},
    {"ucbrowser/", "UC Browser", NULL},
    {"vivaldi/", "Vivaldi", NULL},
    {"brave/", "Brave", NULL},
    {"duckduckgo/", "DuckDuckGo", NULL},
    {"miuibrowser/", "MIUI Browser", NULL},
    {"fbav/", "Facebook", NULL},
    {"instagram ", "Instagram", NULL},
    {"fxios/", "Firefox", NULL},
    {"firefox/", "Firefox", NULL},
    {"crios/", "Chrome", NULL},
    {"; wv)", "Android WebView", "chrome/"},
    {"chromium/", "Chromium", NULL},
    {"chrome/", "Chrome", NULL},
    {"msie ", "Internet Explorer", NULL},
    {"trident/", "Internet Explorer", "rv:"},
    {"safari/", "Safari", "version/"},
};

const char *enrich_device_name(enum enrich_device d)
{
	static const char *const names[] = {NULL, "desktop", "mobile", "tablet", "bot"};
	return d <= ENRICH_DEV_BOT ? names[d] : NULL;
}

static const char *find(const char *s, size_t n, const char *tok)
{
	return memmem(s, n, tok, strlen(tok));
}

/* Copies the version at p ("124.0.6367.60" -> "124.0"): digits, and at
 * most one '.' or '_' (as '.') followed by a digit. */
static void version(const char *p, const char *end, char *out, size_t cap)
{
	size_t k = 0;
	int dots = 0;
	while (p < end && k + 1 < cap) {
		char c = *p;
		if (c >= '0' && c <= '9') {
			out[k++] = c;
		} else if ((c == '.' || c == '_') && k && dots == 0 && p + 1 < end && p[1] >= '0' &&
			   p[1] <= '9') {
			out[k++] = '.';
			dots++;
		} else {
			break;
		}
		p++;
	}
	out[k] = '\0';
}

static void windows(const char *v, const char *end, struct enrich_ua *u)
{
	static const struct {
		const char *nt, *name;
	} map[] = {{"10.0", "10"},   {"6.3", "8.1"}, {"6.2", "8"}, {"6.1", "7"},
		   {"6.0", "Vista"}, {"5.1", "XP"},  {"5.2", "XP"}};
	u->os = "Windows";
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		size_t l = strlen(map[i].nt);
		if ((size_t)(end - v) >= l && !memcmp(v, map[i].nt, l)) {
			snprintf(u->os_version, sizeof(u->os_version), "%s", map[i].name);
			return;
		}
	}
}

static void os(const char *s, size_t n, struct enrich_ua *u)
{
	const char *end = s + n, *p;
	if ((p = find(s, n, "windows phone"))) {
		u->os = "Windows Phone";
		p = find(s, n, "windows phone os ");
		if (p)
			version(p + 17, end, u->os_version, sizeof(u->os_version));
	} else if ((p = find(s, n, "windows nt "))) {
		windows(p + 11, end, u);
	} else if (find(s, n, "windows")) {
		u->os = "Windows";
	} else if ((p = find(s, n, "iphone os ")) || (p = find(s, n, "cpu os "))) {
		u->os = "iOS";
		version(p + (p[0] == 'i' ? 10 : 7), end, u->os_version, sizeof(u->os_version));
	} else if (find(s, n, "iphone") || find(s, n, "ipad") || find(s, n, "ipod")) {
		u->os = "iOS";
	} else if ((p = find(s, n, "harmonyos"))) {
		u->os = "HarmonyOS";
	} else if ((p = find(s, n, "android"))) {
		u->os = "Android";
		p += 7;
		while (p < end && (*p == ' ' || *p == '/'))
			p++;
		version(p, end, u->os_version, sizeof(u->os_version));
	} else if ((p = find(s, n, "mac os x"))) {
		u->os = "macOS";
		p += 8;
		while (p < end && *p == ' ')
			p++;
		version(p, end, u->os_version, sizeof(u->os_version));
	} else if (find(s, n, "cros ")) {
		u->os = "Chrome OS";
	} else if (find(s, n, "linux") || find(s, n, "x11")) {
		u->os = "Linux";
	}
}

static enum enrich_device device(const char *s, size_t n)
{
	if (find(s, n, "ipad") || find(s, n, "tablet") || find(s, n, "kindle") ||
	    find(s, n, "silk/") || find(s, n, "playbook"))
		return ENRICH_DEV_TABLET;
	bool mobile = find(s, n, "mobile") || find(s, n, "iphone") || find(s, n, "ipod") ||
		      find(s, n, "windows phone") || find(s, n, "blackberry") ||
		      find(s, n, "opera mini");
	if (find(s, n, "android"))
		return mobile ? ENRICH_DEV_MOBILE : ENRICH_DEV_TABLET;
	return mobile ? ENRICH_DEV_MOBILE : ENRICH_DEV_DESKTOP;
}

void enrich_ua_parse(const char *ua, size_t n, struct enrich_ua *u)
{
	memset(u, 0, sizeof(*u));
	char s[UA_MAX];
	if (n > UA_MAX)
		n = UA_MAX;
	while (n && (*ua == ' ' || *ua == '\t')) {
		ua++;
		n--;
	}
	if (!n)
		return;
	for (size_t i = 0; i < n; i++)
		s[i] = ua[i] >= 'A' && ua[i] <= 'Z' ? (char)(ua[i] + 32) : ua[i];
	const char *end = s + n, *p;
	for (size_t i = 0; i < sizeof(bots) / sizeof(bots[0]); i++)
		if (find(s, n, bots[i].token)) {
			u->bot = true;
			u->device = ENRICH_DEV_BOT;
			u->browser = bots[i].name;
			os(s, n, u);
			return;
		}
	for (size_t i = 0; i < sizeof(browsers) / sizeof(browsers[0]); i++)
		if ((p = find(s, n, browsers[i].token))) {
			u->browser = browsers[i].name;
			const char *vt = browsers[i].version_token;
			const char *v = vt ? find(s, n, vt) : NULL;
			if (v)
				version(v + strlen(vt), end, u->browser_version,
					sizeof(u->browser_version));
			else if (!vt)
				version(p + strlen(browsers[i].token), end, u->browser_version,
					sizeof(u->browser_version));
			break;
		}
	os(s, n, u);
	u->device = device(s, n);
}
