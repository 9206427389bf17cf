/*
 * campaign.c - campaign fields from the page URL's query: UTM (utm_*),
 * Matomo (mtm_*, pk_*), ad click ids. Which parameters feed which field is
 * configurable; for each field the first configured parameter present (with
 * a value) wins, whatever its position in the URL.
 */
#include "enrich/enrich_int.h"

#include <string.h>

static const char *const cfield_names[ENRICH_C_COUNT] = {"source", "medium",  "name",
							 "term",   "content", "id"};

/* Matomo documents mtm_* and its older pk_* names (pk_cpn/pk_campaign,
 * pk_kwd/pk_keyword, pk_source, pk_medium, pk_content, pk_cid); mtm_cid and
 * utm_id carry a campaign id. */
const char *const enrich_default_params[ENRICH_C_COUNT] = {
    [ENRICH_C_SOURCE] = "utm_source,mtm_source,pk_source",
    [ENRICH_C_MEDIUM] = "utm_medium,mtm_medium,pk_medium",
    [ENRICH_C_NAME] = "utm_campaign,mtm_campaign,mtm_cpn,pk_campaign,pk_cpn",
    [ENRICH_C_TERM] = "utm_term,mtm_keyword,mtm_kwd,pk_keyword,pk_kwd",
    [ENRICH_C_CONTENT] = "utm_content,mtm_content,pk_content",
    [ENRICH_C_ID] = "utm_id,mtm_cid,pk_cid",
};

/* gclid: Google Ads; msclkid: Microsoft Advertising; dclid: Google Display &
 * Video 360 / Campaign Manager; fbclid: Meta; ttclid: TikTok; li_fat_id:
 * LinkedIn. */
const char enrich_default_click_ids[] =
    "gclid:google,msclkid:microsoft,dclid:google_display,fbclid:meta,ttclid:tiktok,"
    "li_fat_id:linkedin";

const char *enrich_cfield_name(enum enrich_cfield f)
{
	return f < ENRICH_C_COUNT ? cfield_names[f] : "";
}

bool enrich_campaign_any(const struct enrich_campaign *c)
{
	return c->v[ENRICH_C_SOURCE][0] || c->v[ENRICH_C_MEDIUM][0] || c->v[ENRICH_C_NAME][0];
}

void enrich_value_copy(char *dst, const char *src)
{
	enrich_text_copy(src, strlen(src), dst, ENRICH_VALUE_MAX);
}

void enrich_campaign_from_query(const struct enrich_params *p, struct enrich_str query,
				struct enrich_campaign *c)
{
	struct enrich_str best[ENRICH_C_COUNT], click = {0};
	size_t rank[ENRICH_C_COUNT], click_rank = ENRICH_MAX_PARAMS;
	for (int f = 0; f < ENRICH_C_COUNT; f++)
		rank[f] = c->v[f][0] ? 0 : ENRICH_MAX_PARAMS; /* a filled field stays */
	struct enrich_str rest = query, k, v;
	while (enrich_query_next(&rest, &k, &v)) {
		if (!v.n)
			continue;
		for (int f = 0; f < ENRICH_C_COUNT; f++)
			for (size_t i = 0; i < rank[f] && i < p->n[f]; i++)
				if (enrich_key_is(k, p->names[f][i])) {
					best[f] = v;
					rank[f] = i;
					break;
				}
		if (c->click_id[0])
			continue;
		for (size_t i = 0; i < click_rank && i < p->nclick; i++)
			if (enrich_key_is(k, p->click_param[i])) {
				click = v;
				click_rank = i;
				break;
			}
	}
	for (int f = 0; f < ENRICH_C_COUNT; f++)
		if (rank[f] < ENRICH_MAX_PARAMS && !c->v[f][0])
			enrich_pct_decode(best[f].p, best[f].n, true, c->v[f], ENRICH_VALUE_MAX);
	if (click_rank < ENRICH_MAX_PARAMS && click_rank < p->nclick) {
		enrich_pct_decode(click.p, click.n, true, c->click_id, ENRICH_VALUE_MAX);
		c->click_network = p->click_network[click_rank];
	}
}
