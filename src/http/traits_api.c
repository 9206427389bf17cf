/*
 * traits_api.c - computed trait definitions (docs/profiles.md), admin
 * bearer token:
 *   GET    /api/computed-traits         every definition
 *   PUT    /api/computed-traits/{name}  create or replace (body: the definition)
 *   DELETE /api/computed-traits/{name}  remove
 * Definitions live in meta.db; profiles evaluate them on every read, so a
 * new one covers the whole history at once. Runs on the event loop: each
 * call is one small SQLite statement.
 */
#include "http/http_int.h"
#include "base/log.h"
#include "base/td.h"
#include "meta/meta.h"
#include "profile/profile.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void list(struct req *r)
{
	struct meta_computed *l;
	size_t n;
	int rc = meta_computed_list(r->srv->deps.meta, &l, &n);
	if (rc) {
		td_log_error("api: cannot list computed traits: %s", td_strerror(rc));
		http_error(r, 500, "internal",
			   "cannot read the computed traits; the error is logged");
		return;
	}
	td_buf_reset(&r->resp);
	td_buf_printf(&r->resp, "{\"computed_traits\":[");
	for (size_t i = 0; i < n; i++)
		td_buf_printf(&r->resp, "%s%s", i ? "," : "", l[i].definition);
	td_buf_printf(&r->resp, "]}");
	meta_computed_list_free(l, n);
	r->status = 200;
}

/* The definition with "name" set from the path (it may be left out of the body). */
static char *with_name(struct req *r, const char *name)
{
	cJSON *d = cJSON_ParseWithLength(r->body.data ? r->body.data : "", r->body.len);
	if (!cJSON_IsObject(d)) {
		cJSON_Delete(d);
		http_error(r, 400, "invalid_request",
			   "the body must be the computed trait's definition, a JSON object (see "
			   "docs/profiles.md)");
		return NULL;
	}
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(d, "name");
	if (n && (!cJSON_IsString(n) || strcmp(n->valuestring, name))) {
		cJSON_Delete(d);
		http_error(r, 400, "invalid_request",
			   "name: the body names another trait than the path (%s); leave it out "
			   "or make them equal",
			   name);
		return NULL;
	}
	if (!n)
		cJSON_AddStringToObject(d, "name", name);
	char *text = cJSON_PrintUnformatted(d);
	cJSON_Delete(d);
	return text;
}

static void put(struct req *r, const char *name)
{
	char *def = with_name(r, name);
	if (!def)
		return;
	char err[512];
	struct profile_computed *c;
	int rc = profile_computed_parse(def, strlen(def), &c, err, sizeof(err));
	if (rc) {
		http_error(r, 400, "invalid_computed_trait", "%s", err);
		free(def);
		return;
	}
	profile_computed_free(c);
	rc = meta_computed_put(r->srv->deps.meta, name, def);
	if (rc == TD_EFULL) {
		http_error(r, 400, "too_many", "at most %d computed traits; delete one first",
			   PROFILE_MAX_COMPUTED);
	} else if (rc) {
		td_log_error("api: cannot store computed trait %s: %s", name, td_strerror(rc));
		http_error(r, 500, "internal",
			   "cannot store the computed trait; the error is logged");
	} else {
		td_buf_reset(&r->resp);
		td_buf_append(&r->resp, def, strlen(def));
		r->status = 200;
	}
	free(def);
}

static void del(struct req *r, const char *name)
{
	int rc = meta_computed_delete(r->srv->deps.meta, name);
	if (rc == TD_ENOTFOUND) {
		http_error(r, 404, "not_found", "no computed trait is named %s", name);
	} else if (rc) {
		td_log_error("api: cannot delete computed trait %s: %s", name, td_strerror(rc));
		http_error(r, 500, "internal",
			   "cannot delete the computed trait; the error is logged");
	} else {
		r->status = 204;
	}
}

void api_computed_traits(struct req *r, const char *method, const char *name)
{
	if (!api_authorize(r))
		return;
	if (!name) {
		if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
			r->allow = "GET, HEAD, OPTIONS";
			http_error(r, 405, "method_not_allowed",
				   "/api/computed-traits takes GET; PUT and DELETE go to "
				   "/api/computed-traits/NAME");
			return;
		}
		list(r);
		return;
	}
	if (!strcmp(method, "PUT"))
		put(r, name);
	else if (!strcmp(method, "DELETE"))
		del(r, name);
	else {
		r->allow = "PUT, DELETE, OPTIONS";
		http_error(r, 405, "method_not_allowed",
			   "/api/computed-traits/%s takes PUT or DELETE", name);
	}
}
