/*
 * session.c - dashboard sign-in: /api/session and the session cookie that
 * api_authorize accepts in place of a bearer token (docs/dashboard.md).
 *
 * A session is a random 256-bit id (getrandom) handed to the browser as the
 * HttpOnly, SameSite=Strict cookie tandem_session; the server keeps only the
 * SHA-256 of the id, so a memory dump shows no usable cookie, and compares
 * hashes in constant time. Sessions live in memory (a restart signs everyone
 * out), 12 hours at most, at most HTTP_MAX_SESSIONS at once (signing in past
 * that ends the session closest to expiry). Each one remembers the API token
 * it was opened with, and every request re-checks that token against
 * meta.db: revoking the token ends its sessions at their next request.
 * Neither ids nor tokens are ever logged. Failed sign-ins are limited per
 * client address (below).
 *
 * Locking: sessions.mu guards the table; held for a scan of it only.
 */
#include "http/http_int.h"
#include "base/log.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "meta/meta.h"
#include "query/query.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_ID_BYTES 32
#define SESSION_COOKIE	 "tandem_session"

struct session {
	unsigned char hash[32]; /* SHA-256 of the id's hex form */
	char token[META_TOKEN_LEN + 1];
	int64_t expires_ms; /* 0: free slot */
};

/* Failed sign-ins per client address: past SIGNIN_MAX_FAILURES within
 * SIGNIN_WINDOW_MS, the address is answered 429 until the window ends.
 * Tokens are 256-bit, so guessing is hopeless anyway; this keeps a client
 * from spending the server's SHA-256 and meta.db lookups in a loop. The
 * table is small and fixed: an address maps to one slot by hash, and a busy
 * slot is taken over once its window has passed. */
#define SIGNIN_SLOTS	    256
#define SIGNIN_MAX_FAILURES 10
#define SIGNIN_WINDOW_MS    60000

struct signin_slot {
	char ip[64];
	int64_t since_ms; /* the window's start */
	unsigned failures;
};

struct http_sessions {
	pthread_mutex_t mu;
	struct session s[HTTP_MAX_SESSIONS];
	struct signin_slot fail[SIGNIN_SLOTS];
};

struct http_sessions *session_table_new(void)
{
	struct http_sessions *t = td_calloc(1, sizeof(*t));
	pthread_mutex_init(&t->mu, NULL);
	return t;
}

void session_table_free(struct http_sessions *t)
{
	if (!t)
		return;
	OPENSSL_cleanse(t->s, sizeof(t->s));
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static void forget(struct session *s)
{
	OPENSSL_cleanse(s, sizeof(*s));
}

static bool hash_id(const char *id, unsigned char out[32])
{
	unsigned int n = 0;
	return EVP_Digest(id, strlen(id), out, &n, EVP_sha256(), NULL) == 1 && n == 32;
}

/* The session cookie's value if it is well formed (64 hex), copied to id. */
static bool cookie_id(struct MHD_Connection *c, char id[2 * SESSION_ID_BYTES + 1])
{
	const char *v = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, SESSION_COOKIE);
	if (!v || strlen(v) != 2 * SESSION_ID_BYTES ||
	    strspn(v, "0123456789abcdef") != 2 * SESSION_ID_BYTES)
		return false;
	memcpy(id, v, 2 * SESSION_ID_BYTES + 1);
	return true;
}

/* The live slot whose hash matches; every live slot is compared, in
 * constant time, so timing tells nothing about the table. */
static struct session *find(struct http_sessions *t, const unsigned char hash[32], int64_t now)
{
	struct session *found = NULL;
	for (size_t i = 0; i < HTTP_MAX_SESSIONS; i++) {
		struct session *s = &t->s[i];
		if (!s->expires_ms)
			continue;
		if (s->expires_ms <= now) {
			forget(s);
			continue;
		}
		if (!CRYPTO_memcmp(s->hash, hash, 32))
			found = s;
	}
	return found;
}

int session_lookup(struct req *r, char *token, size_t cap, int64_t *expires_ms)
{
	char id[2 * SESSION_ID_BYTES + 1];
	unsigned char hash[32];
	if (!cookie_id(r->conn, id))
		return MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, SESSION_COOKIE)
			   ? TD_EAUTH
			   : TD_ENOTFOUND;
	if (!hash_id(id, hash))
		return TD_EIO;
	struct http_sessions *t = r->srv->sessions;
	int rc = TD_EAUTH;
	pthread_mutex_lock(&t->mu);
	struct session *s = find(t, hash, td_now_ms());
	if (s && strlen(s->token) < cap) {
		memcpy(token, s->token, strlen(s->token) + 1);
		if (expires_ms)
			*expires_ms = s->expires_ms;
		rc = 0;
	}
	pthread_mutex_unlock(&t->mu);
	OPENSSL_cleanse(id, sizeof(id));
	return rc;
}

void session_end_token(struct http_sessions *t, const char *token)
{
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < HTTP_MAX_SESSIONS; i++)
		if (t->s[i].expires_ms && !strcmp(t->s[i].token, token))
			forget(&t->s[i]);
	pthread_mutex_unlock(&t->mu);
}

/* Opens a session for token; id gets the cookie value. */
static int open_session(struct http_sessions *t, const char *token, char id[65], int64_t *expires)
{
	int rc = td_random_hex(id, SESSION_ID_BYTES);
	unsigned char hash[32];
	if (rc)
		return rc;
	if (!hash_id(id, hash))
		return TD_EIO;
	int64_t now = td_now_ms();
	pthread_mutex_lock(&t->mu);
	struct session *slot = NULL;
	for (size_t i = 0; i < HTTP_MAX_SESSIONS; i++) {
		struct session *s = &t->s[i];
		if (s->expires_ms && s->expires_ms <= now)
			forget(s);
		if (!slot || !s->expires_ms ||
		    (slot->expires_ms && s->expires_ms < slot->expires_ms))
			slot = s; /* a free slot, else the one closest to expiry */
	}
	forget(slot);
	memcpy(slot->hash, hash, 32);
	snprintf(slot->token, sizeof(slot->token), "%s", token);
	slot->expires_ms = *expires = now + (int64_t)HTTP_SESSION_SECONDS * 1000;
	pthread_mutex_unlock(&t->mu);
	return 0;
}

/* The Set-Cookie header: Secure when the client reached us over HTTPS
 * (through a trusted proxy); plain-HTTP loopback use must keep working. */
static void set_cookie(struct req *r, const char *value, int max_age)
{
	char h[256];
	snprintf(h, sizeof(h),
		 SESSION_COOKIE "=%s; HttpOnly; SameSite=Strict; Path=/; Max-Age=%d%s", value,
		 max_age, http_request_https(r) ? "; Secure" : "");
	http_add_header(r, "Set-Cookie", h);
}

static void session_json(struct req *r, const char *role, int64_t expires_ms)
{
	char ts[TD_ISO8601_LEN];
	td_buf_reset(&r->resp);
	td_buf_printf(&r->resp, "{\"role\":");
	td_buf_json_str(&r->resp, role);
	if (expires_ms) {
		td_time_format(expires_ms, ts);
		td_buf_printf(&r->resp, ",\"expires\":\"%s\"", ts);
	} else {
		td_buf_printf(&r->resp, ",\"expires\":null");
	}
	/* what the page may offer: a build without a kind hides its page */
	td_buf_printf(&r->resp, ",\"query_kinds\":[");
	for (size_t i = 0; query_kinds[i]; i++) {
		if (i)
			td_buf_putc(&r->resp, ',');
		td_buf_json_str(&r->resp, query_kinds[i]);
	}
	td_buf_printf(&r->resp, "]}");
	r->status = 200;
	r->state = REQ_DONE;
}

static struct signin_slot *signin_slot(struct http_sessions *t, const char *ip)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const char *p = ip; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return &t->fail[h % SIGNIN_SLOTS];
}

/* Seconds until ip may try again (0: now). */
static int signin_wait(struct http_sessions *t, const char *ip, int64_t now)
{
	pthread_mutex_lock(&t->mu);
	const struct signin_slot *f = signin_slot(t, ip);
	int wait = 0;
	if (!strcmp(f->ip, ip) && f->failures >= SIGNIN_MAX_FAILURES &&
	    now - f->since_ms < SIGNIN_WINDOW_MS)
		wait = (int)((SIGNIN_WINDOW_MS - (now - f->since_ms) + 999) / 1000);
	pthread_mutex_unlock(&t->mu);
	return wait;
}

static void signin_failed(struct http_sessions *t, const char *ip, int64_t now)
{
	pthread_mutex_lock(&t->mu);
	struct signin_slot *f = signin_slot(t, ip);
	if (strcmp(f->ip, ip) || now - f->since_ms >= SIGNIN_WINDOW_MS) {
		snprintf(f->ip, sizeof(f->ip), "%s", ip);
		f->since_ms = now;
		f->failures = 0;
	}
	f->failures++;
	pthread_mutex_unlock(&t->mu);
}

static void client_ip(struct req *r, char *ip, size_t cap)
{
	char peer[64];
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	http_peer_ip(ci ? ci->client_addr : NULL, peer, sizeof(peer));
	http_client_ip(&r->srv->cfg, peer,
		       MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Forwarded-For"), ip,
		       cap);
}

static void sign_in(struct req *r)
{
	char ip[64];
	client_ip(r, ip, sizeof(ip));
	int64_t now = td_now_ms();
	int wait = signin_wait(r->srv->sessions, ip, now);
	if (wait) {
		r->retry_after = wait;
		http_error(r, 429, "too_many_attempts",
			   "%d failed sign-ins from %s within a minute; try again in %d s",
			   SIGNIN_MAX_FAILURES, ip, wait);
		if (r->body.data)
			OPENSSL_cleanse(r->body.data, r->body.len);
		return;
	}

	cJSON *d = cJSON_ParseWithLength(r->body.data ? r->body.data : "", r->body.len);
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(d, "token");
	char role[16], id[2 * SESSION_ID_BYTES + 1];
	int64_t expires = 0;
	if (!cJSON_IsObject(d) || !cJSON_IsString(tok)) {
		http_error(r, 400, "invalid_request",
			   "send a JSON object {\"token\":\"tdk_...\"} with an API token");
		goto out;
	}
	int rc = meta_token_check(r->srv->deps.meta, tok->valuestring, role, sizeof(role));
	if (rc == TD_EAUTH) {
		signin_failed(r->srv->sessions, ip, now);
		r->www_authenticate = "Bearer realm=\"tandem\", error=\"invalid_token\"";
		http_error(r, 401, "unauthorized",
			   "unknown or revoked API token ('tandem token create' makes one; the "
			   "first 'tandem serve' saved an admin token to DATA/admin-token)");
		goto out;
	}
	if (!rc)
		rc = open_session(r->srv->sessions, tok->valuestring, id, &expires);
	if (rc) {
		td_log_error("api: cannot open a session: %s", td_strerror(rc));
		http_error(r, 500, "internal", "could not sign in; the error is logged");
		goto out;
	}
	set_cookie(r, id, HTTP_SESSION_SECONDS);
	OPENSSL_cleanse(id, sizeof(id));
	session_json(r, role, expires);
out:
	if (cJSON_IsString(tok))
		OPENSSL_cleanse(tok->valuestring, strlen(tok->valuestring));
	cJSON_Delete(d);
	if (r->body.data)
		OPENSSL_cleanse(r->body.data, r->body.len);
}

static void sign_out(struct req *r)
{
	char id[2 * SESSION_ID_BYTES + 1];
	unsigned char hash[32];
	if (cookie_id(r->conn, id) && hash_id(id, hash)) {
		struct http_sessions *t = r->srv->sessions;
		pthread_mutex_lock(&t->mu);
		struct session *s = find(t, hash, td_now_ms());
		if (s)
			forget(s);
		pthread_mutex_unlock(&t->mu);
		OPENSSL_cleanse(id, sizeof(id));
	}
	set_cookie(r, "", 0);
	td_buf_reset(&r->resp);
	r->status = 204;
	r->state = REQ_DONE;
}

void api_session(struct req *r)
{
	if (!strcmp(r->method, "POST")) {
		sign_in(r);
	} else if (!strcmp(r->method, "DELETE")) {
		sign_out(r);
	} else if (!strcmp(r->method, "GET") || !strcmp(r->method, "HEAD")) {
		char role[16];
		int64_t expires = 0;
		if (api_authorize_role(r, role, sizeof(role), &expires))
			session_json(r, role, expires);
	} else {
		r->allow = "GET, POST, DELETE, OPTIONS";
		http_error(r, 405, "method_not_allowed",
			   "/api/session takes GET, POST (sign in) or DELETE (sign out), not %s",
			   r->method);
	}
}
