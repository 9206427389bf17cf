/*
 * ua.c - User-Agent classification: browser and version, OS and version,
 * device class, bot flag. Token rules over the lower-cased string (the first
 * UA_MAX bytes), tried in a fixed order because the strings lie by design:
 * Edge and Opera say "Chrome", Chrome says "Safari", every browser says
 * "Mozilla". Tables below are tandem's own; docs/enrichment.md lists them.
 */
#include "enrich/enrich_int.h"
#include "base/td.h"

#include <pthread.h>

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

/* Words the OS and device rules look for. */
enum kw {
	K_WINPHONE,
	K_WINPHONE_OS,
	K_WINNT,
	K_WINDOWS,
	K_IPHONE_OS,
	K_CPU_OS,
	K_IPHONE,
	K_IPAD,
	K_IPOD,
	K_HARMONY,
	K_ANDROID,
	K_MACOSX,
	K_CROS,
	K_LINUX,
	K_X11,
	K_TABLET,
	K_KINDLE,
	K_SILK,
	K_PLAYBOOK,
	K_MOBILE,
	K_BLACKBERRY,
	K_OPERAMINI,
	K_COUNT
};
static const char *const keywords[K_COUNT] = {"windows phone", "windows phone os ",
					      "windows nt ",   "windows",
					      "iphone os ",    "cpu os ",
					      "iphone",	       "ipad",
					      "ipod",	       "harmonyos",
					      "android",       "mac os x",
					      "cros ",	       "linux",
					      "x11",	       "tablet",
					      "kindle",	       "silk/",
					      "playbook",      "mobile",
					      "blackberry",    "opera mini"};

/*
 * Every token of the tables above in one registry, chained by first byte,
 * so one pass over the string finds the first position of all of them
 * (instead of a substring search per token). Built once.
 */
#define MAX_TOKENS 192
static struct {
	const char *tok[MAX_TOKENS];
	uint8_t len[MAX_TOKENS];
	int16_t next[MAX_TOKENS], head[256];
	int n;
	int16_t bot[TD_ARRAY_LEN(bots)], browser[TD_ARRAY_LEN(browsers)],
	    version[TD_ARRAY_LEN(browsers)], kw[K_COUNT];
} reg;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static int16_t reg_add(const char *t)
{
	if (!t)
		return -1;
	for (int i = 0; i < reg.n; i++)
		if (!strcmp(reg.tok[i], t))
			return (int16_t)i;
	int i = reg.n++;
	reg.tok[i] = t;
	reg.len[i] = (uint8_t)strlen(t);
	reg.next[i] = reg.head[(unsigned char)t[0]];
	reg.head[(unsigned char)t[0]] = (int16_t)i;
	return (int16_t)i;
}

static void reg_init(void)
{
	memset(reg.head, 0xff, sizeof(reg.head));
	for (size_t i = 0; i < TD_ARRAY_LEN(bots); i++)
		reg.bot[i] = reg_add(bots[i].token);
	for (size_t i = 0; i < TD_ARRAY_LEN(browsers); i++) {
		reg.browser[i] = reg_add(browsers[i].token);
		reg.version[i] = reg_add(browsers[i].version_token);
	}
	for (int k = 0; k < K_COUNT; k++)
		reg.kw[k] = reg_add(keywords[k]);
}

/* The lower-cased string and where each registered token first occurs. */
struct scan {
	const char *s;
	size_t n;
	int16_t at[MAX_TOKENS]; /* -1: absent */
};

static void scan(struct scan *sc, const char *s, size_t n)
{
	sc->s = s;
	sc->n = n;
	memset(sc->at, 0xff, sizeof(sc->at[0]) * (size_t)reg.n);
	for (size_t i = 0; i < n; i++)
		for (int16_t t = reg.head[(unsigned char)s[i]]; t >= 0; t = reg.next[t])
			if (sc->at[t] < 0 && reg.len[t] <= n - i && reg.tok[t][1] == s[i + 1] &&
			    !memcmp(s + i, reg.tok[t], reg.len[t]))
				sc->at[t] = (int16_t)i;
}

static const char *at(const struct scan *sc, int16_t t)
{
	return t >= 0 && sc->at[t] >= 0 ? sc->s + sc->at[t] : NULL;
}

static const char *kw(const struct scan *sc, enum kw k)
{
	return at(sc, reg.kw[k]);
}

const char *enrich_device_name(enum enrich_device d)
{
	static const char *const names[] = {NULL, "desktop", "mobile", "tablet", "bot"};
	return d <= ENRICH_DEV_BOT ? names[d] : NULL;
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

static void os(const struct scan *sc, struct enrich_ua *u)
{
	const char *end = sc->s + sc->n, *p;
	if (kw(sc, K_WINPHONE)) {
		u->os = "Windows Phone";
		if ((p = kw(sc, K_WINPHONE_OS)))
			version(p + 17, end, u->os_version, sizeof(u->os_version));
	} else if ((p = kw(sc, K_WINNT))) {
		windows(p + 11, end, u);
	} else if (kw(sc, K_WINDOWS)) {
		u->os = "Windows";
	} else if ((p = kw(sc, K_IPHONE_OS)) || (p = kw(sc, K_CPU_OS))) {
		u->os = "iOS";
		version(p + (p[0] == 'i' ? 10 : 7), end, u->os_version, sizeof(u->os_version));
	} else if (kw(sc, K_IPHONE) || kw(sc, K_IPAD) || kw(sc, K_IPOD)) {
		u->os = "iOS";
	} else if (kw(sc, K_HARMONY)) {
		u->os = "HarmonyOS";
	} else if ((p = kw(sc, K_ANDROID))) {
		u->os = "Android";
		p += 7;
		while (p < end && (*p == ' ' || *p == '/'))
			p++;
		version(p, end, u->os_version, sizeof(u->os_version));
	} else if ((p = kw(sc, K_MACOSX))) {
		u->os = "macOS";
		p += 8;
		while (p < end && *p == ' ')
			p++;
		version(p, end, u->os_version, sizeof(u->os_version));
	} else if (kw(sc, K_CROS)) {
		u->os = "Chrome OS";
	} else if (kw(sc, K_LINUX) || kw(sc, K_X11)) {
		u->os = "Linux";
	}
}

static enum enrich_device device(const struct scan *sc)
{
	if (kw(sc, K_IPAD) || kw(sc, K_TABLET) || kw(sc, K_KINDLE) || kw(sc, K_SILK) ||
	    kw(sc, K_PLAYBOOK))
		return ENRICH_DEV_TABLET;
	bool mobile = kw(sc, K_MOBILE) || kw(sc, K_IPHONE) || kw(sc, K_IPOD) ||
		      kw(sc, K_WINPHONE) || kw(sc, K_BLACKBERRY) || kw(sc, K_OPERAMINI);
	if (kw(sc, K_ANDROID))
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
	pthread_once(&reg_once, reg_init);
	for (size_t i = 0; i < n; i++)
		s[i] = ua[i] >= 'A' && ua[i] <= 'Z' ? (char)(ua[i] + 32) : ua[i];
	struct scan sc;
	scan(&sc, s, n);
	const char *end = s + n, *p;
	for (size_t i = 0; i < TD_ARRAY_LEN(bots); i++)
		if (at(&sc, reg.bot[i])) {
			u->bot = true;
			u->device = ENRICH_DEV_BOT;
			u->browser = bots[i].name;
			os(&sc, u);
			return;
		}
	for (size_t i = 0; i < TD_ARRAY_LEN(browsers); i++)
		if ((p = at(&sc, reg.browser[i]))) {
			u->browser = browsers[i].name;
			const char *v = at(&sc, reg.version[i]);
			if (v)
				version(v + strlen(browsers[i].version_token), end,
					u->browser_version, sizeof(u->browser_version));
			else if (!browsers[i].version_token)
				version(p + strlen(browsers[i].token), end, u->browser_version,
					sizeof(u->browser_version));
			break;
		}
	os(&sc, u);
	u->device = device(&sc);
}
