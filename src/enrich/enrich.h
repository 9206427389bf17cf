/*
 * enrich.h - enrichment at ingest: what the collector derives from a message
 * before it is written to the WAL, stored as the message's "enriched" object
 * (docs/enrichment.md has every field and rule).
 *
 *   page URL        -> enriched.page.{host,path,query}
 *   campaign        -> enriched.campaign.{source,medium,name,term,content,id,
 *                      click_id,click_network}: context.campaign, then URL
 *                      parameters, then the __utmz cookie, then cookie patterns
 *   referrer        -> enriched.referrer.{host,medium,source,term} from the
 *                      referrer database (data/referrers.txt + the user's file)
 *   channel rules   -> enriched.channel
 *   user agent      -> enriched.ua.{browser,browser_version,os,os_version,
 *                      device,bot}
 *   IP              -> enriched.geo.{country,region,city} (MaxMind-format
 *                      database, when configured), then the IP is anonymized
 *                      per source
 *
 * Everything here is a pure function of borrowed strings: enrich_event()
 * allocates nothing, writes only into the caller's struct enrich_result, and
 * may run on any number of threads at once over one struct enrich (which is
 * immutable after enrich_new). Every value it produces is valid UTF-8, at most
 * ENRICH_VALUE_MAX bytes (longer ones are cut at a character boundary), so
 * hostile input gives a defined, bounded result.
 */
#ifndef TD_ENRICH_ENRICH_H
#define TD_ENRICH_ENRICH_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENRICH_VALUE_MAX 256  /* bytes of one value (host, campaign field, term...) */
#define ENRICH_PATH_MAX	 1024 /* bytes of enriched.page.path */
#define ENRICH_QUERY_MAX 2048 /* bytes of enriched.page.query */

/* A borrowed byte span (not NUL-terminated). */
struct enrich_str {
	const char *p;
	size_t n;
};

/* ------------------------------------------------------------ url.c */

/* The parts of an absolute URL ("scheme://host[:port]/path?query#frag"),
 * as spans of the input; absent parts have n = 0. A scheme-relative URL
 * ("//host/path") is accepted too. */
struct enrich_url {
	struct enrich_str scheme, host, port, path, query, fragment;
};

/* Splits s (n bytes). False when it is not an absolute URL with a host (then
 * u is zeroed). Never reads past n; bytes are not validated or decoded. */
bool enrich_url_parse(const char *s, size_t n, struct enrich_url *u);

/*
 * Decodes percent-encoding ('+' as a space when plus_space) into out (cap >=
 * 4 bytes) and NUL-terminates it. The result is always valid UTF-8 without
 * control characters: a '%' not followed by two hex digits stays a '%', a
 * decoded invalid UTF-8 sequence becomes U+FFFD, control characters (NUL
 * included) become a space. Output longer than cap - 1 bytes is cut at a
 * character boundary. Returns the length written.
 */
size_t enrich_pct_decode(const char *s, size_t n, bool plus_space, char *out, size_t cap);

/* A host as stored: lower-cased ASCII, no trailing dot, no brackets around
 * an IPv6 address; other bytes as enrich_pct_decode leaves them. */
size_t enrich_host_copy(struct enrich_str host, char *out, size_t cap);

/* Iterates "k=v&k2=v2" (also ';' separators): returns false at the end.
 * Key and value are raw (still percent-encoded) spans; a member without '='
 * has an empty value. Start with *rest = the query. */
bool enrich_query_next(struct enrich_str *rest, struct enrich_str *key, struct enrich_str *val);

/* The raw value of the first parameter named name (compared after decoding,
 * ASCII case-insensitively) whose value is not empty. */
bool enrich_query_get(struct enrich_str query, const char *name, struct enrich_str *val);

/* ------------------------------------------------------------ campaign.c */

enum enrich_cfield {
	ENRICH_C_SOURCE,
	ENRICH_C_MEDIUM,
	ENRICH_C_NAME,
	ENRICH_C_TERM,
	ENRICH_C_CONTENT,
	ENRICH_C_ID,
	ENRICH_C_COUNT
};
/* "source", "medium", "name", "term", "content", "id" */
const char *enrich_cfield_name(enum enrich_cfield f);

struct enrich_campaign {
	char v[ENRICH_C_COUNT][ENRICH_VALUE_MAX]; /* "" when absent */
	char click_id[ENRICH_VALUE_MAX];
	const char *click_network; /* static or owned by the struct enrich; NULL if none */
};

/* True if source, medium or name is set (a campaign, as opposed to nothing
 * or only an id / term). */
bool enrich_campaign_any(const struct enrich_campaign *c);

/* ------------------------------------------------------------ utmz.c */

/* The value of cookie name in a Cookie header style string "a=1; b=2"
 * (the first one; names compared exactly). */
bool enrich_cookie_find(struct enrich_str cookies, const char *name, struct enrich_str *val);

/*
 * Reads the legacy Google Analytics cookie __utmz
 * ("hash.time.sessions.visits.utmcsr=google|utmccn=(organic)|utmcmd=organic|
 * utmctr=shoes", possibly percent-encoded) into the empty fields of c.
 * Placeholders "(not set)", "(none)", "(not provided)", "(organic)",
 * "(referral)" fill nothing; utmcsr=(direct) is a direct visit and fills
 * nothing at all. utmgclid is a Google Ads click: click id, network
 * "google", and source google / medium cpc when the cookie names none.
 * Returns true if it filled anything.
 */
bool enrich_utmz_parse(struct enrich_str value, struct enrich_campaign *c);

/* ------------------------------------------------------------ referrer.c */

enum enrich_medium {
	ENRICH_M_NONE, /* no referrer */
	ENRICH_M_SEARCH,
	ENRICH_M_SOCIAL,
	ENRICH_M_EMAIL,
	ENRICH_M_PAID,
	ENRICH_M_INTERNAL,
	ENRICH_M_UNKNOWN,
	ENRICH_M_COUNT
};
/* "search", ... ; NULL for ENRICH_M_NONE */
const char *enrich_medium_name(enum enrich_medium m);

/*
 * The referrer database: host patterns -> medium, source name and the query
 * parameters that carry a search term. Text format (data/referrers.txt has
 * the built-in data and a commented description), one entry per line:
 *
 *   MEDIUM | SOURCE NAME | HOST PATTERN ... | TERM PARAM,...
 *
 * e.g. "search | Google | google.* | q". A pattern "example.com" matches that
 * host and its subdomains; "google.*" matches the label "google" followed by
 * one or two short labels (google.de, www.google.co.uk). Blank lines and
 * lines starting with '#' are ignored. A later entry for the same pattern
 * replaces an earlier one, so a user file loaded after the built-in one
 * extends and overrides it.
 */
struct enrich_refdb;
struct enrich_refdb *enrich_refdb_new(void);
void enrich_refdb_free(struct enrich_refdb *db);
/* Adds the entries of text (n bytes); origin names it in errors ("FILE:LINE:
 * ..."). TD_EPARSE with err filled at the first bad line (entries before it
 * stay), TD_ETOOLARGE past 4096 patterns. */
int enrich_refdb_load(struct enrich_refdb *db, const char *text, size_t n, const char *origin,
		      char *err, size_t errcap);
size_t enrich_refdb_size(const struct enrich_refdb *db);

struct enrich_refinfo {
	enum enrich_medium medium;
	const char *source;	 /* owned by the database; NULL if unknown */
	const char *term_params; /* comma list, "" if none; owned by the database */
};
/* Classifies a host (as enrich_host_copy makes it); false if no pattern
 * matches. */
bool enrich_refdb_lookup(const struct enrich_refdb *db, const char *host,
			 struct enrich_refinfo *out);
/* The medium of a campaign source named like an entry ("google" or "Google"
 * -> search, "facebook" -> social); ENRICH_M_NONE if no entry has it. */
enum enrich_medium enrich_refdb_source_medium(const struct enrich_refdb *db, const char *source);

/* The built-in database text (data/referrers.txt, embedded at build time). */
extern const char enrich_builtin_referrers[];
size_t enrich_builtin_referrers_len(void);

/* ------------------------------------------------------------ channel.c */

enum enrich_channel {
	ENRICH_CH_PAID_SEARCH,
	ENRICH_CH_ORGANIC_SEARCH,
	ENRICH_CH_PAID_SOCIAL,
	ENRICH_CH_ORGANIC_SOCIAL,
	ENRICH_CH_EMAIL,
	ENRICH_CH_AFFILIATE,
	ENRICH_CH_REFERRAL,
	ENRICH_CH_DISPLAY,
	ENRICH_CH_DIRECT,
	ENRICH_CH_COUNT
};
/* "Paid Search", ... */
const char *enrich_channel_name(enum enrich_channel c);

/*
 * Channel rules, tried in order; the first whose conditions all hold names
 * the channel, and Direct when none does. One rule per string:
 *
 *   CHANNEL: CONDITION & CONDITION ...
 *
 * CONDITION is FIELD=V1,V2,... (one of the values; '*' in a value matches
 * any run of characters; ASCII case is ignored), FIELD!=V1,... (absent or
 * none of them), or FIELD alone (present). Fields: source, medium, name,
 * term, content, id (the campaign), click_network, referrer.medium,
 * referrer.source, source.medium (the database medium of the campaign
 * source's name). docs/enrichment.md has the default rules as a table.
 */
struct enrich_rules;
/* TD_EINVAL with err naming the rule and what is wrong. */
int enrich_rules_parse(struct enrich_rules **out, const char *const *rules, size_t n, char *err,
		       size_t errcap);
void enrich_rules_free(struct enrich_rules *r);
/* The built-in rules (NULL-terminated). */
extern const char *const enrich_default_rules[];

/* What the rules look at (borrowed; empty strings for absent values). */
struct enrich_channel_input {
	const struct enrich_campaign *campaign;
	enum enrich_medium referrer_medium;
	const char *referrer_source; /* NULL if none */
	enum enrich_medium source_medium;
};
enum enrich_channel enrich_rules_apply(const struct enrich_rules *r,
				       const struct enrich_channel_input *in);

/* ------------------------------------------------------------ ua.c */

enum enrich_device {
	ENRICH_DEV_NONE,
	ENRICH_DEV_DESKTOP,
	ENRICH_DEV_MOBILE,
	ENRICH_DEV_TABLET,
	ENRICH_DEV_BOT
};
/* "desktop", "mobile", "tablet", "bot"; NULL for ENRICH_DEV_NONE */
const char *enrich_device_name(enum enrich_device d);

struct enrich_ua {
	const char *browser, *os; /* static names, NULL if unknown */
	char browser_version[32], os_version[32];
	enum enrich_device device;
	bool bot;
};
/* Classifies a User-Agent string (n bytes). Unknown strings give browser and
 * os NULL and device desktop; an empty one gives ENRICH_DEV_NONE. */
void enrich_ua_parse(const char *s, size_t n, struct enrich_ua *out);

/* ------------------------------------------------------------ ip.c */

enum enrich_ip_mode {
	ENRICH_IP_KEEP,	    /* store the address as sent */
	ENRICH_IP_TRUNCATE, /* IPv4: last octet 0; IPv6: last 80 bits 0 */
	ENRICH_IP_DROP,	    /* store no address */
};
/* "keep", "truncate", "drop"; parse returns -1 for another word */
const char *enrich_ip_mode_name(enum enrich_ip_mode m);
int enrich_ip_mode_parse(const char *s);

/* Writes the address ip (n bytes) as mode stores it into out (cap >= 46).
 * False when nothing is to be stored: mode drop, or truncate of a string
 * that is not an IPv4 or IPv6 address. */
bool enrich_ip_anonymize(const char *ip, size_t n, enum enrich_ip_mode mode, char *out, size_t cap);

/* ------------------------------------------------------------ geo.c */

struct enrich_geo;
/* Opens a MaxMind-format database (libmaxminddb). TD_ENOTFOUND / TD_ECORRUPT
 * with err saying what is wrong with the file. */
int enrich_geo_open(struct enrich_geo **out, const char *path, char *err, size_t errcap);
void enrich_geo_close(struct enrich_geo *g);

struct enrich_geo_result {
	char country[8]; /* ISO 3166-1 alpha-2, "" if unknown */
	char region[ENRICH_VALUE_MAX], city[ENRICH_VALUE_MAX];
};
/* Looks the address ip (NUL-terminated) up; false if it is not an address
 * or not in the database. Thread-safe. */
bool enrich_geo_lookup(const struct enrich_geo *g, const char *ip, struct enrich_geo_result *out);

/* ------------------------------------------------------------ config.c */

/*
 * The configuration: a JSON object of settings as `tandem enrich config`
 * sets them, stored in meta.db's settings table (name "enrich"). Keys:
 *
 *   campaign.source ... campaign.id   URL parameters feeding that field, comma
 *                                     list, first present wins
 *   click_ids          "param:network,..." ad click id parameters
 *   cookie_patterns    ["COOKIE:REGEX", ...] (POSIX extended regular
 *                      expressions with one capture group -> campaign.id)
 *   internal_domains   comma list of own domains (and their subdomains)
 *   channel_rules      ["CHANNEL: CONDITIONS", ...] (replaces the defaults)
 *   referrer_file      a referrer database file extending the built-in one
 *                      (default: DATA/referrers.txt when it exists)
 *   geo_database       path of a MaxMind-format database (.mmdb)
 *   ip                 the IP mode of every source (keep | truncate | drop)
 *   ip.SOURCE          the IP mode of the source named SOURCE
 *
 * An absent key has its default (docs/enrichment.md).
 */
#define ENRICH_SETTING "enrich"

/* The keys, for help texts and validation. */
extern const char *const enrich_config_keys[];
/* True for the keys whose value is a list of strings (a JSON array). */
bool enrich_config_key_is_list(const char *key);
/* True if key is a valid key ("ip.web" included). */
bool enrich_config_key_valid(const char *key);
/* The default value of a key as text ("" when it has none); for the list
 * keys one item per line. Static. */
const char *enrich_config_default(const char *key);

/* ------------------------------------------------------------ settings.c */

struct meta;
struct enrich;
/* The stored configuration document: *json malloc'd (free it), NULL when
 * nothing is stored. TD_EDB on a database error. */
int enrich_settings_get(struct meta *m, char **json);
/* Stores json (already checked with enrich_new), or with NULL removes the
 * setting so the defaults apply. */
int enrich_settings_put(struct meta *m, const char *json);
/* enrich_new over the stored configuration. */
int enrich_load(struct enrich **out, struct meta *m, const char *data_dir, char *err,
		size_t errcap);

/* ------------------------------------------------------------ enrich.c */

struct enrich;

/*
 * Builds an enricher from a configuration (the JSON text of the "enrich"
 * setting; NULL or "" for the defaults). data_dir is where a default
 * referrers.txt is looked for (may be NULL). Opens the referrer file and
 * the geo database and compiles the rules and patterns: any problem is
 * TD_EINVAL (or the file's error) with err saying what and how to fix it.
 * The result is immutable and shared by all threads; enrich_free it.
 */
int enrich_new(struct enrich **out, const char *config_json, const char *data_dir, char *err,
	       size_t errcap);
void enrich_free(struct enrich *e);

/* The IP mode of a source (by name; NULL: the default mode). */
enum enrich_ip_mode enrich_ip_mode_for(const struct enrich *e, const char *source);
/* True if a geo database is configured. */
bool enrich_has_geo(const struct enrich *e);
/* The "session_gap" setting: inactivity that ends a session, in ms (the
 * store's session stamping, docs/sessions.md; kept with the enrichment
 * settings because it is read from the same messages at ingest). */
int64_t enrich_session_gap_ms(const struct enrich *e);

/* What a message offers, borrowed for the call; NULL / n = 0 for absent. */
struct enrich_input {
	struct enrich_str page_url;   /* context.page.url, else properties.url of a page */
	struct enrich_str referrer;   /* context.page.referrer, else properties.referrer */
	struct enrich_str user_agent; /* context.userAgent */
	const char *ip;		      /* context.ip or the client address (NUL-terminated) */
	struct enrich_str cookies;    /* "name=value; ..." (context.cookies, Cookie header) */
	/* context.campaign, already decoded (NUL-terminated), NULL if absent */
	const char *campaign[ENRICH_C_COUNT];
};

/* Everything enrich_event derives; absent values are "" / NULL / NONE. */
struct enrich_result {
	char page_host[ENRICH_VALUE_MAX], page_path[ENRICH_PATH_MAX], page_query[ENRICH_QUERY_MAX];
	bool has_page;
	struct enrich_campaign campaign;
	char ref_host[ENRICH_VALUE_MAX], ref_term[ENRICH_VALUE_MAX];
	enum enrich_medium ref_medium;
	const char *ref_source; /* owned by the enricher */
	enum enrich_channel channel;
	struct enrich_ua ua;
	struct enrich_geo_result geo;
};

/* Enriches one message. Allocation-free and thread-safe. */
void enrich_event(const struct enrich *e, const struct enrich_input *in, struct enrich_result *out);

/* Appends the result as a JSON object ({"page":{...},...,"channel":".."}),
 * fields that do not apply left out. 0 or the buffer's error. */
int enrich_result_json(const struct enrich_result *r, struct td_buf *b);

#endif
