/*
 * norm.c - identifier values and the message fields that carry them:
 * normalization, blocked values, configuration defaults and names.
 */
#include "base/td.h"
#include "identity/identity_int.h"

#include <string.h>

static const char *const class_names[IDENTITY_NCLASSES] = {
    [IDENTITY_USER] = "user_id",      [IDENTITY_EMAIL] = "email", [IDENTITY_PHONE] = "phone",
    [IDENTITY_EXTERNAL] = "external", [IDENTITY_TRAIT] = "trait", [IDENTITY_ANON] = "anonymous_id",
};

/* Values that mean "no identifier" whatever the type (compared after
 * trimming, ASCII case-insensitively): SDK placeholders and sentinels. */
static const char *const builtin_blocked[] = {"null", "undefined", "0", "-1", "anonymous", "guest"};

void identity_config_default(struct identity_config *c)
{
	memset(c, 0, sizeof(*c));
	for (int i = 0; i < IDENTITY_NCLASSES; i++) {
		c->limit[i] = i == IDENTITY_USER ? 1 : 5;
		c->priority[i] = (uint8_t)i; /* the enum is in default priority order */
	}
}

int identity_class_parse(const char *name)
{
	for (int i = 0; i < IDENTITY_NCLASSES; i++)
		if (!strcmp(name, class_names[i]))
			return i;
	return -1;
}

const char *identity_class_name(enum identity_class c)
{
	return (unsigned)c < IDENTITY_NCLASSES ? class_names[c] : "?";
}

void identity_msg_reset(struct identity_msg *m)
{
	m->lsn = 0;
	m->ts = 0;
	m->message_id = NULL;
	m->message_id_len = 0;
	m->is_group = false;
	m->n = 0;
	m->buf_len = 0;
}

void identity_msg_add(struct identity_msg *m, enum identity_field field, const char *name,
		      size_t name_len, const char *val, size_t len)
{
	if (field != IDENTITY_F_TRAIT && field != IDENTITY_F_CONTEXT_TRAIT)
		name_len = 0;
	if (m->n == IDENTITY_MSG_FIELDS || name_len > UINT8_MAX || len > UINT16_MAX ||
	    name_len + len > sizeof(m->buf) - m->buf_len)
		return;
	m->f[m->n].field = (uint8_t)field;
	m->f[m->n].name_len = (uint8_t)name_len;
	m->f[m->n].len = (uint16_t)len;
	m->f[m->n].off = (uint32_t)m->buf_len;
	if (name_len)
		memcpy(m->buf + m->buf_len, name, name_len);
	memcpy(m->buf + m->buf_len + name_len, val, len);
	m->buf_len += name_len + len;
	m->n++;
}

static bool trait_wanted(const struct identity *g, const char *name, size_t n)
{
	if ((n == 5 && !memcmp(name, "email", 5)) || (n == 5 && !memcmp(name, "phone", 5)))
		return true;
	for (size_t i = 0; i < g->cfg.ntraits; i++)
		if (strlen(g->cfg.traits[i]) == n && !memcmp(g->cfg.traits[i], name, n))
			return true;
	return false;
}

int identity_path_field(const struct identity *g, const char *path, size_t len, const char **name,
			size_t *name_len)
{
	switch (path[0]) {
	case 'u':
		return len == 6 && !memcmp(path, "userId", 6) ? IDENTITY_F_USER_ID : -1;
	case 'a':
		return len == 11 && !memcmp(path, "anonymousId", 11) ? IDENTITY_F_ANON_ID : -1;
	case 'p':
		return len == 10 && !memcmp(path, "previousId", 10) ? IDENTITY_F_PREVIOUS_ID : -1;
	case 't':
		if (len > 7 && !memcmp(path, "traits.", 7) && !memchr(path + 7, '.', len - 7) &&
		    trait_wanted(g, path + 7, len - 7)) {
			*name = path + 7;
			*name_len = len - 7;
			return IDENTITY_F_TRAIT;
		}
		return -1;
	case 'c':
		if (len == 19 && !memcmp(path, "context.externalIds", 19))
			return IDENTITY_F_EXTERNAL_IDS;
		if (len > 15 && !memcmp(path, "context.traits.", 15) &&
		    !memchr(path + 15, '.', len - 15) && trait_wanted(g, path + 15, len - 15)) {
			*name = path + 15;
			*name_len = len - 15;
			return IDENTITY_F_CONTEXT_TRAIT;
		}
		return -1;
	default:
		return -1;
	}
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static bool eq_nocase(const char *a, size_t n, const char *b)
{
	size_t bn = strlen(b);
	if (n != bn)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower(a[i]) != lower(b[i]))
			return false;
	return true;
}

static bool blocked(const struct identity *g, const char *v, size_t n)
{
	if (n == 0)
		return true;
	/* the built-in values are 1 to 9 bytes: longer ids skip them */
	if (n > 9 && g->cfg.nblocked == 0)
		return false;
	for (size_t i = 0; i < TD_ARRAY_LEN(builtin_blocked); i++)
		if (eq_nocase(v, n, builtin_blocked[i]))
			return true;
	for (size_t i = 0; i < g->cfg.nblocked; i++)
		if (eq_nocase(v, n, g->cfg.blocked[i]))
			return true;
	return false;
}

/* E-mail: one '@' with text on both sides, no spaces inside, lowercased. */
static int norm_email(const char *v, size_t n, char *out)
{
	size_t at = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		if (v[i] == '@') {
			if (at != SIZE_MAX)
				return -1;
			at = i;
		} else if (is_space(v[i]) || (unsigned char)v[i] < 0x20) {
			return -1;
		}
		out[i] = lower(v[i]);
	}
	if (at == SIZE_MAX || at == 0 || at == n - 1)
		return -1;
	return (int)n;
}

/* Phone: the digits, '+' for a leading '+' or international "00"; the
 * usual separators are dropped, anything else refuses the value. 7 to 15
 * digits (E.164 has at most 15). */
static int norm_phone(const char *v, size_t n, char *out)
{
	size_t o = 0, i = 0, digits = 0;
	if (n && v[0] == '+') {
		out[o++] = '+';
		i = 1;
	}
	bool lead = true;
	for (; i < n; i++) {
		char c = v[i];
		if (c >= '0' && c <= '9') {
			if (lead && o == 0 && c == '0' && i + 1 < n && v[i + 1] == '0') {
				out[o++] = '+'; /* 00 = international prefix */
				i++;
				lead = false;
				continue;
			}
			lead = false;
			if (++digits > 15)
				return -1;
			out[o++] = c;
		} else if (!(c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' ||
			     c == '/')) {
			return -1;
		}
	}
	return digits >= 7 ? (int)o : -1;
}

int identity_normalize(const struct identity *g, enum identity_class c, const char *v, size_t len,
		       char *out)
{
	size_t s = 0, e = len;
	while (s < e && is_space(v[s]))
		s++;
	while (e > s && is_space(v[e - 1]))
		e--;
	if (blocked(g, v + s, e - s))
		return -1;
	switch (c) {
	case IDENTITY_EMAIL:
		if (e - s > IDENTITY_MAX_VALUE)
			return -1;
		return norm_email(v + s, e - s, out);
	case IDENTITY_PHONE:
		if (e - s > IDENTITY_MAX_VALUE)
			return -1;
		return norm_phone(v + s, e - s, out);
	default:
		/* ids are exact strings: only the blocked test trims */
		if (len > IDENTITY_MAX_VALUE)
			return -1;
		for (size_t i = 0; i < len; i++)
			if (v[i] == '\0')
				return -1;
		memcpy(out, v, len);
		return (int)len;
	}
}
