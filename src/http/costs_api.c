/*
 * costs_api.c - advertising costs (docs/attribution.md, "Costs"), admin
 * bearer token:
 *   POST /api/costs            rows as CSV (Content-Type: text/csv) or JSON
 *   GET  /api/costs?from=&to=  the stored rows of those days, with totals
 * Runs on the event loop: an import is a few hundred rows and one SQLite
 * transaction (bodies are capped at HTTP_COSTS_BODY_MAX).
 */
#include "http/http_int.h"
#include "base/log.h"
#include "base/td.h"
#include "meta/meta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The errors of a batch as a JSON array. */
static void write_errors(struct td_buf *o, const struct meta_cost_batch *b)
{
	td_buf_printf(o, "\"errors\":[");
	for (size_t i = 0; i < b->nerrors; i++) {
		if (i)
			td_buf_putc(o, ',');
		td_buf_json_str(o, b->errors[i]);
	}
	td_buf_putc(o, ']');
}

/* JSON when the Content-Type says so, or when none is given and the body
 * starts like JSON; CSV otherwise. */
static bool is_json(struct req *r)
{
	const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
	if (ct)
		return strncasecmp(ct, "application/json", 16) == 0;
	const char *p = r->body.data ? r->body.data : "";
	p += strspn(p, " \t\r\n");
	return *p == '[' || *p == '{';
}

static void post(struct req *r)
{
	struct meta_cost_batch b;
	meta_cost_batch_init(&b);
	char err[512];
	const char *body = r->body.data ? r->body.data : "";
	int rc = is_json(r) ? meta_costs_parse_json(body, r->body.len, &b, err, sizeof(err))
			    : meta_costs_parse_csv(body, r->body.len, &b, err, sizeof(err));
	if (rc) {
		http_error(r, 400, "invalid_costs", "%s; nothing was imported", err);
		goto out;
	}
	if (!b.n && b.rejected) {
		/* nothing valid: the client's to fix */
		r->status = 400;
		td_buf_reset(&r->resp);
		td_buf_printf(
		    &r->resp,
		    "{\"success\":false,\"code\":\"invalid_costs\",\"error\":\"every row "
		    "was rejected; nothing was imported\",\"imported\":0,\"rejected\":%zu,",
		    b.rejected);
		write_errors(&r->resp, &b);
		td_buf_putc(&r->resp, '}');
		goto out;
	}
	rc = b.n ? meta_costs_put(r->srv->deps.meta, b.rows, b.n) : 0;
	if (rc) {
		td_log_error("api: cannot store costs: %s", td_strerror(rc));
		http_error(r, 500, "internal", "cannot store the costs; the error is logged");
		goto out;
	}
	r->status = 200;
	td_buf_reset(&r->resp);
	td_buf_printf(&r->resp, "{\"success\":true,\"imported\":%zu,\"rejected\":%zu,", b.n,
		      b.rejected);
	write_errors(&r->resp, &b);
	td_buf_putc(&r->resp, '}');
out:
	meta_cost_batch_release(&b);
}

/* A from= or to= argument: absent, or a date; false after the 400. */
static bool day_arg(struct req *r, const char *name, const char **out)
{
	*out = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
	if (*out && !meta_cost_date_valid(*out)) {
		http_error(r, 400, "invalid_request",
			   "%s: \"%.40s\" is not a date; write YYYY-MM-DD", name, *out);
		return false;
	}
	return true;
}

static void list(struct req *r)
{
	const char *from, *to;
	if (!day_arg(r, "from", &from) || !day_arg(r, "to", &to))
		return;
	if (from && to && strcmp(from, to) > 0) {
		http_error(r, 400, "invalid_request", "to (%s) is before from (%s)", to, from);
		return;
	}
	struct meta_cost *l;
	size_t n;
	int rc = meta_costs_list(r->srv->deps.meta, from, to, &l, &n);
	if (rc) {
		td_log_error("api: cannot read costs: %s", td_strerror(rc));
		http_error(r, 500, "internal", "cannot read the costs; the error is logged");
		return;
	}
	struct td_buf *o = &r->resp;
	td_buf_reset(o);
	td_buf_printf(o, "{\"costs\":[");
	for (size_t i = 0; i < n; i++) {
		td_buf_printf(o, "%s{\"date\":\"%s\",\"source\":", i ? "," : "", l[i].date);
		td_buf_json_str(o, l[i].source);
		td_buf_printf(o, ",\"medium\":");
		td_buf_json_str(o, l[i].medium);
		td_buf_printf(o, ",\"campaign\":");
		td_buf_json_str(o, l[i].campaign);
		/* 15 digits: the amount as imported, not its binary neighbour
		 * (0.95, not 0.94999999999999996) */
		td_buf_printf(o, ",\"cost\":%.15g,\"currency\":\"%s\"}", l[i].cost, l[i].currency);
	}
	/* money in different currencies is never added up */
	td_buf_printf(o, "],\"totals\":[");
	bool first = true;
	for (size_t i = 0; i < n; i++) {
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = !strcmp(l[j].currency, l[i].currency);
		if (seen)
			continue;
		double sum = 0;
		size_t rows = 0;
		for (size_t j = i; j < n; j++)
			if (!strcmp(l[j].currency, l[i].currency)) {
				sum += l[j].cost;
				rows++;
			}
		td_buf_printf(o, "%s{\"currency\":\"%s\",\"cost\":%.15g,\"rows\":%zu}",
			      first ? "" : ",", l[i].currency, sum, rows);
		first = false;
	}
	td_buf_printf(o, "]}");
	free(l);
	r->status = 200;
}

void api_costs(struct req *r, const char *method)
{
	if (!api_authorize(r))
		return;
	if (!strcmp(method, "POST"))
		post(r);
	else if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
		list(r);
	else {
		r->allow = "GET, HEAD, POST, OPTIONS";
		http_error(r, 405, "method_not_allowed",
			   "/api/costs takes GET (the stored costs) or POST (an import)");
	}
}
