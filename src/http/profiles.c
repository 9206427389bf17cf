/*
 * profiles.c - GET /api/profiles/{type}:{value}: one customer profile
 * (src/profile/profile.h), admin bearer token, computed on a worker thread.
 * Query parameters: limit (timeline page, 1..100, default 20), before (an
 * ISO 8601 time: the timeline's next page), raw=1 (timeline events with
 * their whole message). Also GET /api/profiles?where=... (find.c) and
 * GET /api/accounts/{groupId} (an account's profile).
 */
#include "http/http_int.h"
#include "base/log.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "meta/meta.h"
#include "profile/profile.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct profile_job {
	struct req *r;
	char *type, *value; /* NULL: a search by traits, or an account */
	char *account;	    /* GET /api/accounts/{groupId} */
	struct profile_options o;
	char *where[PROFILE_MAX_WHERE];
	size_t nwhere;
	size_t limit, offset;
	bool too_many;
};

static void job_free(struct profile_job *j)
{
	free(j->type);
	free(j->value);
	free(j->account);
	for (size_t i = 0; i < j->nwhere; i++)
		free(j->where[i]);
	free(j);
}

static void run_find(struct profile_job *j, struct td_buf *out, char *err, size_t errcap, int *rc)
{
	*rc = profile_find(j->r->srv->deps.store, (const char *const *)j->where, j->nwhere,
			   j->limit, j->offset, out, err, errcap);
}

static void run_profile(void *arg)
{
	struct profile_job *j = arg;
	struct req *r = j->r;
	struct td_buf out;
	char err[512];
	td_buf_init(&out, r->srv->cfg.query.max_result);
	struct profile_computed **defs = NULL;
	int rc = 0;
	if (j->account) {
		rc = profile_account_get(r->srv->deps.store, j->account, &out, err, sizeof(err));
	} else if (!j->type) {
		run_find(j, &out, err, sizeof(err), &rc);
	} else {
		rc = profile_load_computed(r->srv->deps.meta, &defs, &j->o.ncomputed, err,
					   sizeof(err));
		j->o.computed = defs;
		if (!rc)
			rc = profile_get(r->srv->deps.store, j->type, j->value, &j->o, &out, err,
					 sizeof(err));
		profile_computed_list_free(defs, j->o.ncomputed);
	}
	if (!rc) {
		td_buf_release(&r->resp);
		r->resp = out;
		td_buf_init(&out, 0);
		r->status = 200;
	} else if (rc == TD_ENOTFOUND) {
		http_error(r, 404, "not_found", "%s", err);
	} else if (rc == TD_EINVAL) {
		http_error(r, 400, "invalid_request", "%s", err);
	} else if (rc == TD_ETOOLARGE) {
		http_error(r, 400, "result_too_large",
			   "the profile is larger than %zu bytes (the server's limit); ask for a "
			   "smaller page (limit) or without raw",
			   r->srv->cfg.query.max_result);
	} else {
		td_log_error("api: profile %s:%s failed: %s", j->type, j->value, err);
		http_error(r, 500, "internal",
			   "reading the profile failed (%s); the error is logged", td_strerror(rc));
	}
	td_buf_release(&out);
	job_free(j);
	api_finish(r);
}

static void cancel_profile(void *arg)
{
	struct profile_job *j = arg;
	struct req *r = j->r;
	job_free(j);
	r->retry_after = 5;
	http_error(r, 503, "unavailable", "the server is shutting down; retry later");
	api_finish(r);
}

/* The options from the query string; false (and the response set) when one is bad. */
static bool parse_options(struct req *r, struct profile_options *o)
{
	memset(o, 0, sizeof(*o));
	const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "limit");
	if (v) {
		char *end;
		long n = strtol(v, &end, 10);
		if (*v == '\0' || *end || n < 1 || n > PROFILE_MAX_LIMIT) {
			http_error(r, 400, "invalid_request",
				   "limit: must be a whole number from 1 to %d, not '%s'",
				   PROFILE_MAX_LIMIT, v);
			return false;
		}
		o->limit = (size_t)n;
	}
	v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "before");
	if (v && profile_cursor_parse(v, o)) {
		http_error(
		    r, 400, "invalid_request",
		    "before: '%s' is not a cursor or an ISO 8601 time (use the next_before of the "
		    "previous page)",
		    v);
		return false;
	}
	v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "raw");
	o->raw = v && (!strcmp(v, "1") || !strcmp(v, "true"));
	return true;
}

static struct profile_job *search_job(struct req *r);
static void submit(struct req *r, struct profile_job *j);

void api_profile(struct req *r, const char *id)
{
	if (!api_ready(r))
		return;
	if (r->account) {
		struct profile_job *j = td_calloc(1, sizeof(*j));
		j->r = r;
		j->account = td_strdup(id);
		submit(r, j);
		return;
	}
	if (!*id) {
		submit(r, search_job(r));
		return;
	}
	const char *colon = strchr(id, ':');
	if (!colon || colon == id || !colon[1]) {
		http_error(r, 400, "invalid_request",
			   "name the profile as TYPE:VALUE, e.g. /api/profiles/user_id:42 or "
			   "/api/profiles/email:ann@example.com (types: user_id, anonymous_id, "
			   "email, phone, an externalIds type, an identifier trait, or person for "
			   "a person id from a query)");
		return;
	}
	struct profile_job *j = td_calloc(1, sizeof(*j));
	if (!parse_options(r, &j->o)) {
		free(j);
		return;
	}
	j->r = r;
	j->type = td_strndup(id, (size_t)(colon - id));
	j->value = td_strdup(colon + 1);
	submit(r, j);
}

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind, const char *key,
			      const char *value)
{
	struct profile_job *j = cls;
	if (key && value && !strcmp(key, "where")) {
		if (j->nwhere == PROFILE_MAX_WHERE)
			j->too_many = true;
		else
			j->where[j->nwhere++] = td_strdup(value);
	}
	return MHD_YES;
}

static bool parse_count(struct req *r, const char *name, size_t max, size_t *out)
{
	const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
	if (!v)
		return true;
	char *end;
	unsigned long long n = strtoull(v, &end, 10);
	if (*v < '0' || *v > '9' || *end || n > max) {
		http_error(r, 400, "invalid_request", "%s: a whole number from 0 to %zu, not '%s'",
			   name, max, v);
		return false;
	}
	*out = (size_t)n;
	return true;
}

/* GET /api/profiles?where=NAME OP VALUE[&where=...]&limit=&offset= */
static struct profile_job *search_job(struct req *r)
{
	struct profile_job *j = td_calloc(1, sizeof(*j));
	j->r = r;
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, on_arg, j);
	if (j->too_many || j->nwhere == 0) {
		http_error(r, 400, "invalid_request",
			   "give 1 to %d where=NAME OP VALUE conditions on profile traits, e.g. "
			   "/api/profiles?where=plan=pro&where=employees>=50 (OP: = != > >= < <= "
			   "~); a single profile is at /api/profiles/TYPE:VALUE",
			   PROFILE_MAX_WHERE);
		job_free(j);
		return NULL;
	}
	if (!parse_count(r, "limit", PROFILE_MAX_FIND, &j->limit) ||
	    !parse_count(r, "offset", 1000000000, &j->offset)) {
		job_free(j);
		return NULL;
	}
	return j;
}

static void submit(struct req *r, struct profile_job *j)
{
	if (j && !api_submit(r, run_profile, cancel_profile, j))
		job_free(j);
}
