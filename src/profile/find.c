/*
 * find.c - profiles by trait (profile.h: profile_find): every canonical
 * person whose traits satisfy all the conditions, in person id order,
 * paged. Each condition is "name OP value" over a profile trait (the value
 * of traits.<name> in the person's latest identify call, as queries'
 * person.<name>), compared with the trait's type.
 */
#include "base/td.h"
#include "identity/identity.h"
#include "profile/profile.h"
#include "store/store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum fop { F_EQ, F_NE, F_GE, F_LE, F_GT, F_LT, F_CONTAINS };
static const char *const op_text[] = {"=", "!=", ">=", "<=", ">", "<", "~"};

struct cond {
	char name[PROFILE_MAX_NAME + 1];
	enum fop op;
	const char *value; /* into the caller's string */
	struct store_person_trait t;
	double num; /* number traits: the value parsed */
	int bval;
};

/* "plan=pro", "employees>=50", "email~@acme.com" */
static int parse_cond(const char *s, struct cond *c, char *err, size_t errcap)
{
	size_t n = strcspn(s, "=!<>~");
	if (n == 0 || n > PROFILE_MAX_NAME || !s[n]) {
		snprintf(err, errcap,
			 "where: '%s' is not NAME OP VALUE (e.g. plan=pro, employees>=50, "
			 "email~@acme.com; OP is one of = != > >= < <= ~)",
			 s);
		return TD_EINVAL;
	}
	memcpy(c->name, s, n);
	c->name[n] = '\0';
	const char *o = s + n;
	int found = -1;
	size_t ol = 0;
	for (int i = 0; i < (int)TD_ARRAY_LEN(op_text); i++) {
		size_t l = strlen(op_text[i]);
		if (!strncmp(o, op_text[i], l) && l > ol) {
			found = i;
			ol = l;
		}
	}
	if (found < 0) {
		snprintf(err, errcap, "where: bad operator in '%s' (= != > >= < <= ~)", s);
		return TD_EINVAL;
	}
	c->op = (enum fop)found;
	c->value = o + ol;
	return 0;
}

static int prepare(struct store_snap *sn, struct cond *c, char *err, size_t errcap)
{
	int rc = store_snap_person_trait(sn, c->name, &c->t);
	if (rc == TD_ENOTFOUND) {
		snprintf(err, errcap, "where: unknown trait '%s' (no identify call sets traits.%s)",
			 c->name, c->name);
		return TD_EINVAL;
	}
	if (rc)
		return rc;
	if (c->t.kind == QCOL_NUMBER) {
		char *end;
		c->num = strtod(c->value, &end);
		if (!*c->value || *end || !isfinite(c->num) || c->op == F_CONTAINS) {
			snprintf(err, errcap, "where: trait '%s' holds numbers; '%s' %s", c->name,
				 c->value,
				 c->op == F_CONTAINS ? "cannot be searched with ~" : "is not one");
			return TD_EINVAL;
		}
	} else if (c->t.kind == QCOL_BOOL) {
		c->bval = !strcmp(c->value, "true") ? 1 : !strcmp(c->value, "false") ? 0 : -1;
		if (c->bval < 0 || (c->op != F_EQ && c->op != F_NE)) {
			snprintf(err, errcap,
				 "where: trait '%s' is true or false; use = or != with one",
				 c->name);
			return TD_EINVAL;
		}
	}
	return 0;
}

static int cmp3(double a, double b)
{
	return a < b ? -1 : a > b;
}

static bool matches(const struct cond *c, uint32_t p)
{
	const struct store_person_trait *t = &c->t;
	if (p >= t->n || t->ts[p] == INT64_MIN)
		return c->op == F_NE; /* no value: only != holds */
	int d;
	if (t->kind == QCOL_STRING) {
		if (t->code[p] >= t->ndict)
			return false;
		const char *v = t->dict[t->code[p]];
		if (c->op == F_CONTAINS)
			return strstr(v, c->value) != NULL;
		d = strcmp(v, c->value);
	} else if (t->kind == QCOL_NUMBER) {
		d = cmp3(t->num[p], c->num);
	} else {
		d = (t->boolv[p] != 0) - c->bval;
	}
	switch (c->op) {
	case F_EQ:
		return d == 0;
	case F_NE:
		return d != 0;
	case F_GE:
		return d >= 0;
	case F_LE:
		return d <= 0;
	case F_GT:
		return d > 0;
	case F_LT:
		return d < 0;
	default:
		return false;
	}
}

struct first_id {
	struct td_buf *o;
	int n;
};

static void on_id(void *ctx, const char *type, const char *value, enum identity_class cls)
{
	struct first_id *f = ctx;
	td_buf_printf(f->o, "%s{\"type\":", f->n++ ? "," : "");
	td_buf_json_str(f->o, type);
	td_buf_printf(f->o, ",\"value\":");
	td_buf_json_str(f->o, value);
	td_buf_putc(f->o, '}');
}

static void put_trait(struct td_buf *o, const struct store_person_trait *t, uint32_t p)
{
	if (t->kind == QCOL_STRING)
		td_buf_json_str(o, t->code[p] < t->ndict ? t->dict[t->code[p]] : "");
	else if (t->kind == QCOL_NUMBER)
		td_buf_printf(o, "%.17g", t->num[p]);
	else
		td_buf_printf(o, t->boolv[p] ? "true" : "false");
}

int profile_find(struct store *s, const char *const *where, size_t nwhere, size_t limit,
		 size_t offset, struct td_buf *out, char *err, size_t errcap)
{
	if (nwhere == 0 || nwhere > PROFILE_MAX_WHERE) {
		snprintf(err, errcap, "where: give 1 to %d conditions (e.g. where=plan=pro)",
			 PROFILE_MAX_WHERE);
		return TD_EINVAL;
	}
	if (limit == 0)
		limit = 50;
	if (limit > PROFILE_MAX_FIND) {
		snprintf(err, errcap, "limit: at most %d profiles per page", PROFILE_MAX_FIND);
		return TD_EINVAL;
	}
	struct cond *c = td_calloc(nwhere, sizeof(*c));
	struct store_snap *sn = store_snapshot(s);
	int rc = 0;
	for (size_t i = 0; i < nwhere && !rc; i++) {
		rc = parse_cond(where[i], &c[i], err, errcap);
		if (!rc)
			rc = prepare(sn, &c[i], err, errcap);
	}
	struct td_buf o;
	td_buf_init(&o, out->max);
	if (!rc) {
		const struct query_source *src = store_snap_source(sn);
		struct identity *g = store_identity(s);
		size_t total = 0, shown = 0;
		td_buf_printf(&o, "{\"profiles\":[");
		for (uint32_t p = 0; p < src->npersons; p++) {
			if (src->canonical && src->canonical[p] != p)
				continue;
			bool ok = true;
			for (size_t i = 0; i < nwhere && ok; i++)
				ok = matches(&c[i], p);
			if (!ok || total++ < offset || shown >= limit)
				continue;
			td_buf_printf(&o, "%s{\"person\":%u,\"identifiers\":[", shown++ ? "," : "",
				      p);
			struct first_id f = {&o, 0};
			identity_person_ids(g, p, on_id, &f);
			td_buf_printf(&o, "],\"traits\":{");
			for (size_t i = 0; i < nwhere; i++) {
				if (c[i].t.ts[p] == INT64_MIN)
					continue;
				td_buf_printf(&o, "%s", o.data[o.len - 1] == '{' ? "" : ",");
				td_buf_json_str(&o, c[i].name);
				td_buf_putc(&o, ':');
				put_trait(&o, &c[i].t, p);
			}
			td_buf_printf(&o, "}}");
		}
		td_buf_printf(&o, "],\"total\":%zu,\"next_offset\":", total);
		if (offset + shown < total)
			td_buf_printf(&o, "%zu}", offset + shown);
		else
			td_buf_printf(&o, "null}");
		if (o.len > out->max - out->len || td_buf_append(out, o.data, o.len)) {
			rc = TD_ETOOLARGE;
			snprintf(err, errcap, "the page is larger than the response limit");
		}
	} else if (rc != TD_EINVAL) {
		snprintf(err, errcap, "reading the traits failed: %s", td_strerror(rc));
	}
	td_buf_release(&o);
	store_snap_release(sn);
	free(c);
	return rc;
}
