/*
 * channel.c - channel grouping: an ordered list of rules over the campaign
 * and the referrer (syntax in enrich.h; docs/enrichment.md has the default
 * rules as a table). The first rule whose conditions all hold names the
 * channel; Direct when none does. Values are globs ('*'), compared ignoring
 * ASCII case, so no regular expression runs per event.
 */
#include "enrich/enrich_int.h"
#include "base/td.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RULES  64
#define MAX_CONDS  8
#define MAX_VALUES 32

static const char *const channel_names[ENRICH_CH_COUNT] = {
    "Paid Search", "Organic Search", "Paid Social", "Organic Social", "Email",
    "Affiliate",   "Referral",	     "Display",	    "Direct"};

/* Fields 0..5 are the campaign's (enum enrich_cfield). */
enum rfield { RF_CLICK_NETWORK = ENRICH_C_COUNT, RF_REF_MEDIUM, RF_REF_SOURCE, RF_SOURCE_MEDIUM };
static const char *const rfield_names[] = {
    "source",	       "medium",	  "name",	  "term", "content", "id", "click_network",
    "referrer.medium", "referrer.source", "source.medium"};

enum op { OP_IN, OP_NOT_IN, OP_PRESENT };

struct cond {
	int field;
	enum op op;
	char *values[MAX_VALUES]; /* lower case globs */
	size_t nvalues;
};

struct rule {
	enum enrich_channel channel;
	struct cond conds[MAX_CONDS];
	size_t nconds;
};

struct enrich_rules {
	struct rule rules[MAX_RULES];
	size_t n;
};

/* The defaults, modelled on the usual marketing definitions (paid = a
 * cost-per-click medium or an ad click id; organic = a search engine or a
 * social network as referrer or campaign source). */
const char *const enrich_default_rules[] = {
    "Paid Search: click_network=google,microsoft",
    "Display: click_network=google_display",
    "Paid Social: click_network=meta,tiktok,linkedin",
    "Display: medium=display,banner,cpm,expandable,interstitial,programmatic",
    "Paid Social: medium=paid*social,social*paid,paidsocial",
    "Paid Social: medium=cpc,ppc,paid*,retargeting & source.medium=social",
    "Paid Search: medium=cpc,ppc,paid*,retargeting,sem",
    "Email: medium=email,e-mail,e_mail,newsletter,mail",
    "Email: source=email,e-mail,e_mail,newsletter",
    "Affiliate: medium=affiliate,affiliates,partner",
    "Organic Social: medium=social,social-network,social-media,social_media,sm,"
    "organic*social",
    "Organic Search: medium=organic",
    "Referral: medium=referral",
    "Organic Social: source.medium=social",
    "Organic Search: source.medium=search",
    "Email: source.medium=email",
    "Display: referrer.medium=paid",
    "Email: referrer.medium=email",
    "Organic Social: referrer.medium=social",
    "Organic Search: referrer.medium=search",
    "Referral: referrer.medium=unknown",
    NULL};

const char *enrich_channel_name(enum enrich_channel c)
{
	return c < ENRICH_CH_COUNT ? channel_names[c] : "Direct";
}

void enrich_rules_free(struct enrich_rules *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		for (size_t c = 0; c < r->rules[i].nconds; c++)
			for (size_t v = 0; v < r->rules[i].conds[c].nvalues; v++)
				free(r->rules[i].conds[c].values[v]);
	free(r);
}

static void trim(const char **p, const char **e)
{
	while (*p < *e && (**p == ' ' || **p == '\t'))
		(*p)++;
	while (*e > *p && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
		(*e)--;
}

static bool same_nocase(const char *a, size_t n, const char *b)
{
	if (strlen(b) != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char x = a[i] >= 'A' && a[i] <= 'Z' ? (char)(a[i] + 32) : a[i];
		char y = b[i] >= 'A' && b[i] <= 'Z' ? (char)(b[i] + 32) : b[i];
		if (x != y)
			return false;
	}
	return true;
}

static int parse_cond(struct cond *c, const char *p, const char *e, char *err, size_t errcap)
{
	const char *eq = memchr(p, '=', (size_t)(e - p));
	const char *fe = eq ? eq : e;
	c->op = OP_PRESENT;
	if (eq) {
		c->op = OP_IN;
		if (eq > p && eq[-1] == '!') {
			c->op = OP_NOT_IN;
			fe = eq - 1;
		}
	}
	const char *fs = p;
	trim(&fs, &fe);
	c->field = -1;
	for (size_t f = 0; f < TD_ARRAY_LEN(rfield_names); f++)
		if ((size_t)(fe - fs) == strlen(rfield_names[f]) &&
		    !memcmp(fs, rfield_names[f], (size_t)(fe - fs)))
			c->field = (int)f;
	if (c->field < 0) {
		snprintf(err, errcap,
			 "unknown field '%.*s' (fields: source, medium, name, term, content, id, "
			 "click_network, referrer.medium, referrer.source, source.medium)",
			 (int)(fe - fs > 40 ? 40 : fe - fs), fs);
		return TD_EINVAL;
	}
	if (!eq)
		return 0;
	for (const char *v = eq + 1; v <= e;) {
		const char *comma = memchr(v, ',', (size_t)(e - v));
		const char *ve = comma ? comma : e;
		const char *vs = v;
		trim(&vs, &ve);
		if (vs < ve) {
			if (c->nvalues == MAX_VALUES) {
				snprintf(err, errcap, "at most %d values in one condition",
					 MAX_VALUES);
				return TD_EINVAL;
			}
			char *val = td_strndup(vs, (size_t)(ve - vs));
			for (char *q = val; *q; q++)
				if (*q >= 'A' && *q <= 'Z')
					*q = (char)(*q + 32);
			c->values[c->nvalues++] = val;
		}
		if (!comma)
			break;
		v = comma + 1;
	}
	if (!c->nvalues) {
		snprintf(err, errcap, "'%.*s=' needs a value", (int)(fe - fs), fs);
		return TD_EINVAL;
	}
	return 0;
}

static int parse_rule(struct rule *r, const char *text, char *err, size_t errcap)
{
	const char *colon = strchr(text, ':');
	if (!colon) {
		snprintf(err, errcap, "expected 'CHANNEL: CONDITION & ...'");
		return TD_EINVAL;
	}
	const char *cs = text, *ce = colon;
	trim(&cs, &ce);
	int ch = -1;
	for (int k = 0; k < ENRICH_CH_COUNT; k++)
		if (same_nocase(cs, (size_t)(ce - cs), channel_names[k]))
			ch = k;
	if (ch < 0) {
		snprintf(err, errcap,
			 "unknown channel '%.*s' (channels: Paid Search, Organic Search, Paid "
			 "Social, Organic Social, Email, Affiliate, Referral, Display, Direct)",
			 (int)(ce - cs > 40 ? 40 : ce - cs), cs);
		return TD_EINVAL;
	}
	r->channel = (enum enrich_channel)ch;
	const char *end = colon + strlen(colon);
	for (const char *p = colon + 1; p < end;) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pe = amp ? amp : end;
		const char *s = p;
		trim(&s, &pe);
		if (s == pe) {
			snprintf(err, errcap, "an empty condition");
			return TD_EINVAL;
		}
		if (r->nconds == MAX_CONDS) {
			snprintf(err, errcap, "at most %d conditions in one rule", MAX_CONDS);
			return TD_EINVAL;
		}
		int rc = parse_cond(&r->conds[r->nconds++], s, pe, err, errcap);
		if (rc)
			return rc;
		p = amp ? amp + 1 : end;
	}
	if (!r->nconds) {
		snprintf(err, errcap, "a rule needs at least one condition");
		return TD_EINVAL;
	}
	return 0;
}

int enrich_rules_parse(struct enrich_rules **out, const char *const *rules, size_t n, char *err,
		       size_t errcap)
{
	*out = NULL;
	if (n > MAX_RULES) {
		snprintf(err, errcap, "at most %d channel rules", MAX_RULES);
		return TD_EINVAL;
	}
	struct enrich_rules *r = td_calloc(1, sizeof(*r));
	for (size_t i = 0; i < n; i++) {
		char why[300];
		int rc = parse_rule(&r->rules[r->n++], rules[i], why, sizeof(why));
		if (rc) {
			snprintf(err, errcap, "channel rule %zu ('%.60s'): %s", i + 1, rules[i],
				 why);
			enrich_rules_free(r);
			return rc;
		}
	}
	*out = r;
	return 0;
}

/* Glob match of a lower-case pattern against s, ASCII case ignored. */
static bool glob(const char *pat, const char *s)
{
	const char *star = NULL, *back = NULL;
	while (*s) {
		char c = *s >= 'A' && *s <= 'Z' ? (char)(*s + 32) : *s;
		if (*pat == '*') {
			star = ++pat;
			back = s;
		} else if (*pat == c) {
			pat++;
			s++;
		} else if (star) {
			pat = star;
			s = ++back;
		} else {
			return false;
		}
	}
	while (*pat == '*')
		pat++;
	return !*pat;
}

static const char *field_value(const struct enrich_channel_input *in, int f)
{
	const char *v;
	switch (f) {
	case RF_CLICK_NETWORK:
		v = in->campaign->click_network;
		break;
	case RF_REF_MEDIUM:
		v = enrich_medium_name(in->referrer_medium);
		break;
	case RF_REF_SOURCE:
		v = in->referrer_source;
		break;
	case RF_SOURCE_MEDIUM:
		v = enrich_medium_name(in->source_medium);
		break;
	default:
		v = in->campaign->v[f];
		break;
	}
	return v && *v ? v : NULL;
}

static bool holds(const struct cond *c, const struct enrich_channel_input *in)
{
	const char *v = field_value(in, c->field);
	if (c->op == OP_PRESENT)
		return v != NULL;
	bool any = false;
	for (size_t i = 0; v && !any && i < c->nvalues; i++)
		any = glob(c->values[i], v);
	return c->op == OP_IN ? any : !any;
}

enum enrich_channel enrich_rules_apply(const struct enrich_rules *r,
				       const struct enrich_channel_input *in)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct rule *rule = &r->rules[i];
		size_t c = 0;
		while (c < rule->nconds && holds(&rule->conds[c], in))
			c++;
		if (c == rule->nconds)
			return rule->channel;
	}
	return ENRICH_CH_DIRECT;
}
