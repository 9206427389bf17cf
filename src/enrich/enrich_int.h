/*
 * enrich_int.h - what the files of src/enrich share beyond enrich.h: the
 * compiled configuration (struct enrich) and the helpers between the steps.
 */
#ifndef TD_ENRICH_ENRICH_INT_H
#define TD_ENRICH_ENRICH_INT_H

#include "enrich/enrich.h"

#include <regex.h>

#define ENRICH_MAX_PARAMS   16 /* URL parameters feeding one campaign field, click ids */
#define ENRICH_MAX_PATTERNS 16 /* cookie patterns */
#define ENRICH_MAX_DOMAINS  32 /* internal domains */
#define ENRICH_MAX_SOURCES  64 /* per-source IP modes */

/* URL parameter names per campaign field, in precedence order, and the
 * click id parameters with their networks. Strings owned by the struct
 * enrich. */
struct enrich_params {
	const char *names[ENRICH_C_COUNT][ENRICH_MAX_PARAMS];
	size_t n[ENRICH_C_COUNT];
	const char *click_param[ENRICH_MAX_PARAMS], *click_network[ENRICH_MAX_PARAMS];
	size_t nclick;
};

struct enrich_cookie_pattern {
	const char *cookie;
	regex_t re;
};

struct enrich {
	struct enrich_params params;
	struct enrich_cookie_pattern pats[ENRICH_MAX_PATTERNS];
	size_t npats;
	const char *internal[ENRICH_MAX_DOMAINS];
	size_t ninternal;
	struct enrich_refdb *refdb;
	struct enrich_rules *rules;
	struct enrich_geo *geo;
	enum enrich_ip_mode ip_default;
	const char *ip_source[ENRICH_MAX_SOURCES];
	enum enrich_ip_mode ip_mode[ENRICH_MAX_SOURCES];
	size_t nip;
	int64_t session_gap_ms; /* used by the store (sessions.h), kept with these settings */
	char **strs;		/* every string above, freed by enrich_free */
	size_t nstrs;
};

/* url.c: true if the raw (percent-encoded) key equals name, ASCII case
 * ignored. */
bool enrich_key_is(struct enrich_str key, const char *name);
/* url.c: enrich_pct_decode without the decoding: the same safe, bounded
 * UTF-8 copy. */
size_t enrich_text_copy(const char *s, size_t n, char *out, size_t cap);

/* campaign.c: fills the empty fields of c from the URL query; click id too. */
void enrich_campaign_from_query(const struct enrich_params *p, struct enrich_str query,
				struct enrich_campaign *c);
/* campaign.c: copies a decoded value into a campaign field (cut at a
 * character boundary, control characters made spaces). */
void enrich_value_copy(char *dst, const char *src);

/* utmz.c: the first cookie pattern that matches fills an empty campaign.id. */
void enrich_cookie_patterns_apply(const struct enrich *e, struct enrich_str cookies,
				  struct enrich_campaign *c);

/* The default URL parameters and click ids (campaign.c). */
extern const char *const enrich_default_params[ENRICH_C_COUNT];
extern const char enrich_default_click_ids[];

/* True if host (lower case) is domain or one of its subdomains. */
bool enrich_host_in(const char *host, const char *domain);

#endif
