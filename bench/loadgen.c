/*
 * loadgen.c - HTTP/1.1 keep-alive load generator for tandem's Segment-compatible
 * collector (POST /v1/track and /v1/batch).
 *
 * Design, chosen so that the generator stays cheap next to the server on a
 * small machine:
 *   - one epoll loop per thread (1-2 threads), non-blocking sockets, no
 *     pipelining: each connection has at most one request in flight;
 *   - every connection owns one preformatted request (headers + body). Before
 *     each send only the fixed-width messageId and userId digits are patched
 *     in place, so the Content-Length never changes and nothing is formatted
 *     per request;
 *   - responses are parsed properly (status line, Content-Length, partial
 *     reads, "Connection: close", reconnect when the server closes).
 *
 * Two modes:
 *   closed loop (--rate 0): each connection sends its next request as soon as
 *     the previous response arrives; latency is measured from the send time.
 *   open loop (--rate R): requests are due on a fixed schedule (R per second
 *     in total), whether or not the server has kept up. Latency is measured
 *     from the *scheduled* time, so a stall shows up in the percentiles instead
 *     of silently slowing the generator down ("coordinated omission", Gil Tene).
 *     Requests that were due but never sent or never answered by the end are
 *     recorded at their lower-bound latency and reported as backlog/unfinished.
 *
 * Latency is kept in a log-linear histogram (HdrHistogram-style: 128
 * sub-buckets per power of two, < 0.8% relative error) per thread and merged
 * at the end.
 *
 * Safety: only loopback addresses (127.0.0.0/8, "localhost") are accepted, and
 * every run is bounded by --duration (hard cap 120 s) plus a 1 s drain.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_DURATION_S	120.0
#define MAX_WARMUP_S	60.0
#define DRAIN_NS	1000000000ull /* wait this long for in-flight responses at the end */
#define BACKOFF_NS	100000000ull  /* reconnect delay after a failed connect */
#define MAX_CONNECTIONS 10000
#define MAX_BATCH	5000
#define MAX_USERS	9999999 /* userId has 7 fixed-width digits */
#define RBUF_SIZE	8192	/* response headers must fit in this */
#define ERR_SAMPLE	200
#define MAX_STATUS	600
#define HIST_SUB_BITS	7
#define HIST_SUB	(1 << HIST_SUB_BITS)
#define HIST_LINEAR	(2 * HIST_SUB) /* values below this are exact */
#define HIST_MAX_EXP	44	       /* values up to 2^44 ns (~4.9 hours) */
#define HIST_BUCKETS	(HIST_LINEAR + (HIST_MAX_EXP - HIST_SUB_BITS - 1) * HIST_SUB)
#define ID_HEX_DIGITS	16
#define USER_DIGITS	7

struct config {
	struct sockaddr_in addr;
	char host_header[96];
	char path[256];
	char url[512];
	char *auth_b64;
	int connections;
	int threads;
	double duration_s;
	double warmup_s;
	double rate;
	int batch;
	int users;
	uint64_t id_prefix;
	char timestamp[32];
};

struct hist {
	uint64_t count[HIST_BUCKETS];
	uint64_t n;
	uint64_t max;
};

struct stats {
	uint64_t status[MAX_STATUS]; /* whole run, including warmup */
	uint64_t requests;	     /* responses completed inside the measured window */
	uint64_t ok_requests;	     /* ... of which 2xx */
	uint64_t events_ok;	     /* events in 2xx responses inside the window */
	uint64_t sent;		     /* requests started (whole run) */
	uint64_t connect_errors;
	uint64_t io_errors;	     /* send/recv failures, resets */
	uint64_t closed_midreq;	     /* server closed with a request in flight */
	uint64_t proto_errors;	     /* unparseable or unexpected response bytes */
	uint64_t reconnects;	     /* any reconnect (incl. clean Connection: close) */
	uint64_t unfinished;	     /* in flight at the end of the drain */
	uint64_t backlog;	     /* open loop: due but never sent */
	char err_sample[ERR_SAMPLE]; /* first non-2xx response or error, for diagnosis */
	struct hist lat;
};

enum conn_state {
	CS_CLOSED,     /* no socket; reconnect when retry_at passes */
	CS_CONNECTING, /* non-blocking connect in progress */
	CS_IDLE,       /* connected, nothing in flight */
	CS_SENDING,    /* request partly written */
	CS_WAITING,    /* request written, response not complete */
};

struct patch {
	uint32_t id;   /* offset of the 16 hex digits of the messageId counter */
	uint32_t user; /* offset of the 7 digits of userId */
	uint32_t anon; /* offset of the 7 digits of anonymousId */
};

struct conn {
	int fd;
	enum conn_state state;
	bool want_out; /* EPOLLOUT currently registered */
	char *req;     /* preformatted request, patched in place per send */
	size_t req_len;
	size_t body_len;
	size_t sent;	       /* bytes of req written so far */
	struct patch *patches; /* one per event in the body */
	uint64_t sched_ns;     /* scheduled (open loop) or actual (closed) send time */
	uint64_t retry_at;
	/* response parser */
	char rbuf[RBUF_SIZE];
	size_t rlen;
	bool have_headers;
	bool close_after;
	int status;
	long long body_left; /* -1: body runs until the server closes */
};

struct worker {
	const struct config *cfg;
	int index;
	int epfd;
	int nconn;
	struct conn *conns;
	struct conn **idle; /* open loop: stack of idle connections */
	int nidle;
	int nclosed; /* connections waiting for a reconnect */
	uint64_t next_id;
	uint64_t rng;
	/* schedule */
	uint64_t t0, mstart, end;
	bool open_loop;
	double rate; /* this worker's share */
	uint64_t sched_i;
	uint64_t sched_next;
	bool stopping;	     /* past end: send nothing new */
	uint64_t stopped_at; /* when the sending loop ended (early on SIGINT) */
	struct stats st;
};

static volatile sig_atomic_t g_interrupted;
static bool g_have_pwait2; /* set once in main(), before the threads start */

static const char hexdig[] = "0123456789abcdef";

static void on_sigint(int sig)
{
	(void)sig;
	g_interrupted = 1;
}

/* ---- small helpers ---- */

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void put_hex(char *p, uint64_t v, int digits)
{
	for (int i = digits - 1; i >= 0; i--) {
		p[i] = hexdig[v & 15];
		v >>= 4;
	}
}

static void put_dec(char *p, uint32_t v, int digits)
{
	for (int i = digits - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* Growable string used only while building templates. */
struct sb {
	char *p;
	size_t len, cap;
};

static void sb_add(struct sb *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (b->len + n + 1 > cap)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			die("out of memory");
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_adds(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void sb_addf(struct sb *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp)
		die("internal: template piece too long");
	sb_add(b, tmp, (size_t)n);
}

static char *base64(const char *in, size_t n)
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)(unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (uint32_t)(unsigned char)in[i + 2];
		out[o++] = tbl[(v >> 18) & 63];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? tbl[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

/* ---- histogram ---- */

static int hist_index(uint64_t v)
{
	if (v < HIST_LINEAR)
		return (int)v;
	if (v >= (1ull << HIST_MAX_EXP))
		v = (1ull << HIST_MAX_EXP) - 1;
	int e = 63 - __builtin_clzll(v); /* >= HIST_SUB_BITS + 1 */
	int shift = e - HIST_SUB_BITS;
	return HIST_LINEAR + (e - HIST_SUB_BITS - 1) * HIST_SUB + (int)((v >> shift) - HIST_SUB);
}

/* Highest value that falls in bucket idx (HdrHistogram's "highest equivalent value"). */
static uint64_t hist_value(int idx)
{
	if (idx < HIST_LINEAR)
		return (uint64_t)idx;
	int k = idx - HIST_LINEAR;
	int e = HIST_SUB_BITS + 1 + k / HIST_SUB;
	uint64_t m = (uint64_t)(HIST_SUB + k % HIST_SUB);
	int shift = e - HIST_SUB_BITS;
	return (m << shift) + (1ull << shift) - 1;
}

static void hist_record(struct hist *h, uint64_t v)
{
	h->count[hist_index(v)]++;
	h->n++;
	if (v > h->max)
		h->max = v;
}

static void hist_merge(struct hist *dst, const struct hist *src)
{
	for (int i = 0; i < HIST_BUCKETS; i++)
		dst->count[i] += src->count[i];
	dst->n += src->n;
	if (src->max > dst->max)
		dst->max = src->max;
}

static uint64_t hist_percentile(const struct hist *h, double p)
{
	if (h->n == 0)
		return 0;
	uint64_t want = (uint64_t)(p / 100.0 * (double)h->n + 0.999999);
	if (want < 1)
		want = 1;
	uint64_t seen = 0;
	for (int i = 0; i < HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= want) {
			uint64_t v = hist_value(i);
			return v < h->max ? v : h->max;
		}
	}
	return h->max;
}

/* ---- request templates ---- */

struct event_kind {
	const char *name;
	const char *props; /* JSON object members, without braces */
	const char *path;
};

/* A small, realistic mix; the properties differ so bodies are not identical. */
static const struct event_kind kinds[] = {
    {"Order Completed",
     "\"order_id\":\"o-58213\",\"revenue\":84.5,\"currency\":\"USD\",\"products\":3", "/checkout"},
    {"Product Viewed", "\"product_id\":\"p-1042\",\"category\":\"Shoes\",\"price\":59.99",
     "/products/1042"},
    {"Product Added", "\"product_id\":\"p-2210\",\"quantity\":2,\"price\":12.5", "/cart"},
    {"Checkout Started", "\"cart_id\":\"c-7731\",\"value\":112.4,\"currency\":\"EUR\"",
     "/checkout/start"},
    {"Signed In", "\"method\":\"password\",\"plan\":\"pro\"", "/login"},
};

/* Appends one track message; records where the per-send digits live (relative to b). */
static void append_event(struct sb *b, const struct config *cfg, int kind, struct patch *pt)
{
	const struct event_kind *k = &kinds[kind % (int)(sizeof kinds / sizeof kinds[0])];

	sb_adds(b, "{\"type\":\"track\",\"messageId\":\"lg-");
	sb_addf(b, "%016" PRIx64 "-", cfg->id_prefix);
	pt->id = (uint32_t)b->len;
	sb_adds(b, "0000000000000000\",\"userId\":\"user-");
	pt->user = (uint32_t)b->len;
	sb_adds(b, "0000000\",\"anonymousId\":\"anon-");
	pt->anon = (uint32_t)b->len;
	sb_adds(b, "0000000\",\"event\":\"");
	sb_adds(b, k->name);
	sb_adds(b, "\",\"properties\":{");
	sb_adds(b, k->props);
	sb_adds(b, "},\"context\":{\"library\":{\"name\":\"analytics.js\",\"version\":\"5.2.0\"},"
		   "\"page\":{\"path\":\"");
	sb_adds(b, k->path);
	sb_adds(b, "\"},\"userAgent\":\"Mozilla/5.0 (Macintosh) Chrome/126.0\"},"
		   "\"timestamp\":\"");
	sb_adds(b, cfg->timestamp);
	sb_adds(b, "\"}");
}

static void build_request(struct conn *c, const struct config *cfg, int conn_index)
{
	struct sb body = {0};
	struct sb req = {0};

	c->patches = xmalloc(sizeof *c->patches * (size_t)cfg->batch);
	if (cfg->batch > 1)
		sb_adds(&body, "{\"batch\":[");
	for (int i = 0; i < cfg->batch; i++) {
		if (i)
			sb_adds(&body, ",");
		append_event(&body, cfg, conn_index + i, &c->patches[i]);
	}
	if (cfg->batch > 1)
		sb_adds(&body, "]}");

	sb_addf(&req,
		"POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\n"
		"Content-Type: application/json\r\nUser-Agent: tandem-loadgen/1.0\r\n"
		"Content-Length: %zu\r\n\r\n",
		cfg->path, cfg->host_header, cfg->auth_b64, body.len);
	uint32_t hdr = (uint32_t)req.len;
	sb_add(&req, body.p, body.len);
	for (int i = 0; i < cfg->batch; i++) {
		c->patches[i].id += hdr;
		c->patches[i].user += hdr;
		c->patches[i].anon += hdr;
	}
	free(body.p);
	c->req = req.p;
	c->req_len = req.len;
	c->body_len = body.len;
}

/* Makes every event in c's request unique: fresh messageId counter, random user. */
static void patch_request(struct worker *w, struct conn *c)
{
	for (int i = 0; i < w->cfg->batch; i++) {
		const struct patch *pt = &c->patches[i];
		uint32_t user = (uint32_t)(xorshift(&w->rng) % (uint64_t)w->cfg->users);
		put_hex(c->req + pt->id, w->next_id++, ID_HEX_DIGITS);
		put_dec(c->req + pt->user, user, USER_DIGITS);
		put_dec(c->req + pt->anon, user, USER_DIGITS);
	}
}

/* ---- connection handling ---- */

static void note_error(struct worker *w, const char *fmt, ...)
{
	if (w->st.err_sample[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->st.err_sample, sizeof w->st.err_sample, fmt, ap);
	va_end(ap);
}

static void set_events(struct worker *w, struct conn *c, bool want_out)
{
	if (c->want_out == want_out)
		return;
	struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
	if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
	c->want_out = want_out;
}

static void reset_parser(struct conn *c)
{
	c->rlen = 0;
	c->have_headers = false;
	c->close_after = false;
	c->status = 0;
	c->body_left = 0;
}

static void conn_became_idle(struct worker *w, struct conn *c, uint64_t now);

static void conn_start(struct worker *w, struct conn *c)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s (too many connections? raise ulimit -n)", strerror(errno));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->fd = fd;
	c->want_out = true;
	reset_parser(c);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
	int r = connect(fd, (const struct sockaddr *)&w->cfg->addr, sizeof w->cfg->addr);
	if (r == 0 || errno == EINPROGRESS) {
		/* Completion (or failure) is reported by EPOLLOUT. */
		c->state = CS_CONNECTING;
		return;
	}
	w->st.connect_errors++;
	note_error(w, "connect: %s", strerror(errno));
	close(fd);
	c->fd = -1;
	c->state = CS_CLOSED;
	c->retry_at = now_ns() + BACKOFF_NS;
	w->nclosed++;
}

/* Drops the socket; a request in flight is lost (counted by the caller). */
static void conn_reset(struct worker *w, struct conn *c, bool backoff)
{
	if (c->state == CS_IDLE && w->open_loop) {
		for (int i = 0; i < w->nidle; i++) {
			if (w->idle[i] == c) {
				w->idle[i] = w->idle[--w->nidle];
				break;
			}
		}
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = CS_CLOSED;
	if (backoff) {
		c->retry_at = now_ns() + BACKOFF_NS;
		w->nclosed++;
		return;
	}
	w->st.reconnects++;
	if (!w->stopping)
		conn_start(w, c);
}

static void conn_send(struct worker *w, struct conn *c, uint64_t sched)
{
	patch_request(w, c);
	c->sent = 0;
	c->sched_ns = sched;
	c->state = CS_SENDING;
	reset_parser(c);
	w->st.sent++;
	while (c->sent < c->req_len) {
		ssize_t n = send(c->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);
		if (n > 0) {
			c->sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			set_events(w, c, true);
			return;
		}
		w->st.io_errors++;
		note_error(w, "send: %s", n < 0 ? strerror(errno) : "wrote nothing");
		conn_reset(w, c, false);
		return;
	}
	set_events(w, c, false);
	c->state = CS_WAITING;
}

static void conn_became_idle(struct worker *w, struct conn *c, uint64_t now)
{
	c->state = CS_IDLE;
	if (w->stopping)
		return;
	if (w->open_loop)
		w->idle[w->nidle++] = c;
	else
		conn_send(w, c, now);
}

static void on_connected(struct worker *w, struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof err;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		w->st.connect_errors++;
		note_error(w, "connect to %s: %s", w->cfg->url, strerror(err));
		conn_reset(w, c, true);
		return;
	}
	set_events(w, c, false);
	conn_became_idle(w, c, now_ns());
}

/* Parses the status line and headers in c->rbuf[0..hlen). Returns 0 or -1. */
static int parse_headers(struct worker *w, struct conn *c, size_t hlen)
{
	const char *p = c->rbuf;
	const char *end = c->rbuf + hlen;
	bool http10 = false;
	bool have_cl = false;

	if (hlen < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
		goto bad;
	http10 = p[7] == '0';
	if (p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
		goto bad;
	c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	c->close_after = http10; /* HTTP/1.0 closes unless it says keep-alive */
	c->body_left = -1;

	p = memchr(p, '\n', (size_t)(end - p));
	while (p && ++p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			break;
		size_t len = (size_t)(eol - p);
		const char *colon = memchr(p, ':', len);
		if (colon) {
			size_t nlen = (size_t)(colon - p);
			const char *v = colon + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			size_t vlen = (size_t)(eol - v);
			while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == ' '))
				vlen--;
			char val[64];
			size_t cp = vlen < sizeof val - 1 ? vlen : sizeof val - 1;
			memcpy(val, v, cp);
			val[cp] = '\0';
			if (nlen == 14 && strncasecmp(p, "content-length", 14) == 0) {
				char *e;
				errno = 0;
				long long cl = strtoll(val, &e, 10);
				if (errno || e == val || *e || cl < 0)
					goto bad;
				c->body_left = cl;
				have_cl = true;
			} else if (nlen == 10 && strncasecmp(p, "connection", 10) == 0) {
				if (strcasestr(val, "close"))
					c->close_after = true;
				else if (strcasestr(val, "keep-alive"))
					c->close_after = false;
			} else if (nlen == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
				if (strcasestr(val, "chunked")) {
					note_error(w, "server sent a chunked response; loadgen "
						      "expects Content-Length");
					return -1;
				}
			}
		}
		p = eol;
	}
	/* RFC 9112 6.3: these never have a body; otherwise no length = until close. */
	if (!have_cl && (c->status < 200 || c->status == 204 || c->status == 304))
		c->body_left = 0;
	if (c->body_left < 0)
		c->close_after = true;
	return 0;
bad:
	note_error(w, "malformed response starting %.40s", c->rbuf);
	return -1;
}

/* Returns 1 when the response is complete, 0 when more bytes are needed, -1 on error. */
static int consume(struct worker *w, struct conn *c)
{
	for (;;) {
		if (c->have_headers) {
			size_t avail = c->rlen;
			c->rlen = 0;
			if (c->body_left < 0)
				return 0; /* body ends when the server closes */
			if ((long long)avail > c->body_left) {
				note_error(w, "server sent bytes past the response body");
				return -1;
			}
			c->body_left -= (long long)avail;
			return c->body_left == 0;
		}
		char *hend = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
		if (!hend) {
			if (c->rlen == sizeof c->rbuf) {
				note_error(w, "response headers larger than %d bytes", RBUF_SIZE);
				return -1;
			}
			return 0;
		}
		size_t hlen = (size_t)(hend + 4 - c->rbuf);
		if (parse_headers(w, c, hlen) < 0)
			return -1;
		if (c->status < 200) { /* interim 1xx response: skip it */
			memmove(c->rbuf, c->rbuf + hlen, c->rlen - hlen);
			c->rlen -= hlen;
			continue;
		}
		if ((c->status < 200 || c->status > 299) && !w->st.err_sample[0]) {
			size_t blen = c->rlen - hlen;
			note_error(w, "first non-2xx: HTTP %d, body: %.*s", c->status,
				   (int)(blen < 150 ? blen : 150), c->rbuf + hlen);
		}
		c->have_headers = true;
		memmove(c->rbuf, c->rbuf + hlen, c->rlen - hlen);
		c->rlen -= hlen;
	}
}

static void on_response(struct worker *w, struct conn *c)
{
	uint64_t now = now_ns();
	struct stats *st = &w->st;
	bool ok = c->status >= 200 && c->status <= 299;

	st->status[c->status < MAX_STATUS ? c->status : 0]++;
	if (c->sched_ns >= w->mstart && c->sched_ns < w->end)
		hist_record(&st->lat, now - c->sched_ns);
	if (now >= w->mstart && now < w->end) {
		st->requests++;
		if (ok) {
			st->ok_requests++;
			st->events_ok += (uint64_t)w->cfg->batch;
		}
	}
	if (c->close_after || c->sent < c->req_len) {
		/* Answered before the whole request went out: the stream is unusable. */
		conn_reset(w, c, false);
		return;
	}
	reset_parser(c);
	conn_became_idle(w, c, now);
}

static void on_readable(struct worker *w, struct conn *c)
{
	ssize_t n = recv(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen, 0);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		w->st.io_errors++;
		note_error(w, "recv: %s", strerror(errno));
		conn_reset(w, c, false);
		return;
	}
	if (n == 0) {
		if (c->state == CS_WAITING && c->have_headers && c->body_left < 0) {
			on_response(w, c); /* body delimited by close */
			if (c->state != CS_CLOSED)
				conn_reset(w, c, false);
			return;
		}
		if (c->state == CS_WAITING || c->state == CS_SENDING) {
			w->st.closed_midreq++;
			note_error(w, "server closed the connection with a request in flight");
		}
		conn_reset(w, c, false);
		return;
	}
	if (c->state != CS_WAITING && c->state != CS_SENDING) {
		/* We never pipeline, so bytes now mean the server is confused. */
		w->st.proto_errors++;
		note_error(w, "unsolicited %zd bytes from server", n);
		conn_reset(w, c, false);
		return;
	}
	c->rlen += (size_t)n;
	int r = consume(w, c);
	if (r < 0) {
		w->st.proto_errors++;
		conn_reset(w, c, false);
	} else if (r > 0) {
		on_response(w, c);
	}
}

static void on_event(struct worker *w, struct conn *c, uint32_t events)
{
	if (c->state == CS_CONNECTING) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			on_connected(w, c);
		return;
	}
	if (c->state == CS_SENDING && (events & EPOLLOUT)) {
		while (c->sent < c->req_len) {
			ssize_t n =
			    send(c->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);
			if (n > 0) {
				c->sent += (size_t)n;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return;
			w->st.io_errors++;
			note_error(w, "send: %s", n < 0 ? strerror(errno) : "wrote nothing");
			conn_reset(w, c, false);
			return;
		}
		set_events(w, c, false);
		c->state = CS_WAITING;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		on_readable(w, c);
}

/* ---- the loop ---- */

static uint64_t sched_at(const struct worker *w, uint64_t i)
{
	return w->t0 + (uint64_t)((double)i * 1e9 / w->rate);
}

static int wait_events(struct worker *w, struct epoll_event *evs, int max, uint64_t timeout_ns)
{
	if (g_have_pwait2) {
		struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000ull),
				      .tv_nsec = (long)(timeout_ns % 1000000000ull)};
		return epoll_pwait2(w->epfd, evs, max, &ts, NULL);
	}
	/* Old kernels: millisecond timeout, rounded up. */
	return epoll_wait(w->epfd, evs, max, (int)((timeout_ns + 999999) / 1000000));
}

static void retry_closed(struct worker *w, uint64_t now)
{
	for (int i = 0; i < w->nconn && w->nclosed > 0; i++) {
		struct conn *c = &w->conns[i];
		if (c->state == CS_CLOSED && c->fd < 0 && c->retry_at && c->retry_at <= now) {
			c->retry_at = 0;
			w->nclosed--;
			conn_start(w, c);
		}
	}
}

static int count_in_flight(const struct worker *w)
{
	int n = 0;
	for (int i = 0; i < w->nconn; i++)
		n += w->conns[i].state == CS_SENDING || w->conns[i].state == CS_WAITING;
	return n;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[256];

	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0)
		die("epoll_create1: %s", strerror(errno));
	for (int i = 0; i < w->nconn; i++)
		conn_start(w, &w->conns[i]);

	for (;;) {
		uint64_t now = now_ns();
		w->stopped_at = now < w->end ? now : w->end;
		if (now >= w->end || g_interrupted)
			break;
		if (w->open_loop) {
			while (w->nidle > 0 && w->sched_next <= now) {
				struct conn *c = w->idle[--w->nidle];
				conn_send(w, c, w->sched_next);
				w->sched_next = sched_at(w, ++w->sched_i);
			}
		}
		if (w->nclosed > 0)
			retry_closed(w, now);
		uint64_t timeout = w->end - now;
		if (w->open_loop && w->nidle > 0 && w->sched_next > now &&
		    w->sched_next - now < timeout)
			timeout = w->sched_next - now;
		if (w->nclosed > 0 && timeout > BACKOFF_NS)
			timeout = BACKOFF_NS;
		if (timeout > 200000000ull) /* wake up now and then to see SIGINT */
			timeout = 200000000ull;
		int n = wait_events(w, evs, (int)(sizeof evs / sizeof evs[0]), timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++)
			on_event(w, evs[i].data.ptr, evs[i].events);
	}

	/* Drain: no new requests; give those in flight up to DRAIN_NS to finish. */
	w->stopping = true;
	uint64_t drain_end = now_ns() + DRAIN_NS;
	for (;;) {
		uint64_t now = now_ns();
		if (now >= drain_end || count_in_flight(w) == 0)
			break;
		int n = wait_events(w, evs, (int)(sizeof evs / sizeof evs[0]), drain_end - now);
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++)
			on_event(w, evs[i].data.ptr, evs[i].events);
	}

	/* Whatever is still owed is recorded at its lower-bound latency. */
	uint64_t fin = now_ns();
	for (int i = 0; i < w->nconn; i++) {
		struct conn *c = &w->conns[i];
		if (c->state == CS_SENDING || c->state == CS_WAITING) {
			w->st.unfinished++;
			if (c->sched_ns >= w->mstart && c->sched_ns < w->end)
				hist_record(&w->st.lat, fin - c->sched_ns);
		}
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
	}
	if (w->open_loop) {
		for (uint64_t i = w->sched_i;; i++) {
			uint64_t s = sched_at(w, i);
			if (s >= w->end)
				break;
			w->st.backlog++;
			if (s >= w->mstart)
				hist_record(&w->st.lat, fin - s);
		}
	}
	close(w->epfd);
	return NULL;
}

/* ---- command line ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: loadgen --url http://127.0.0.1:PORT/v1/track --key WRITEKEY [options]\n"
		"  --url URL          target (loopback only); /v1/track for --batch 1, /v1/batch "
		"otherwise\n"
		"  --key KEY          source write key (sent as HTTP Basic user, empty password)\n"
		"  --connections N    keep-alive connections (default 64)\n"
		"  --threads T        1 or 2 epoll threads (default 1)\n"
		"  --duration S       measured seconds after warmup (default 10, max 120)\n"
		"  --warmup S         seconds run but not measured (default 2, max 60)\n"
		"  --rate R           total requests/s, open loop; 0 = closed loop (default 0)\n"
		"  --batch N          events per request (default 1; N>1 sends /v1/batch bodies)\n"
		"  --users U          distinct userIds (default 10000)\n"
		"Prints a summary and a final line 'RESULT key=value ...' for scripts.\n");
}

static double parse_double(const char *opt, const char *s, double lo, double hi)
{
	char *e;
	errno = 0;
	double v = strtod(s, &e);
	if (errno || e == s || *e || v < lo || v > hi)
		die("%s: expected a number between %g and %g, got '%s'", opt, lo, hi, s);
	return v;
}

static int parse_int(const char *opt, const char *s, long lo, long hi)
{
	char *e;
	errno = 0;
	long v = strtol(s, &e, 10);
	if (errno || e == s || *e || v < lo || v > hi)
		die("%s: expected an integer between %ld and %ld, got '%s'", opt, lo, hi, s);
	return (int)v;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void parse_url(struct config *cfg, const char *url)
{
	char host[64];
	const char *p;
	size_t hlen;
	long port = 80;

	if (strlen(url) >= sizeof cfg->url)
		die("--url too long");
	snprintf(cfg->url, sizeof cfg->url, "%s", url);
	if (strncmp(url, "http://", 7) != 0)
		die("--url must start with http:// (no TLS), got '%s'", url);
	p = url + 7;
	hlen = strcspn(p, ":/");
	if (hlen == 0 || hlen >= sizeof host)
		die("--url has no host: '%s'", url);
	memcpy(host, p, hlen);
	host[hlen] = '\0';
	p += hlen;
	if (*p == ':') {
		char *e;
		errno = 0;
		port = strtol(p + 1, &e, 10);
		if (errno || e == p + 1 || port < 1 || port > 65535)
			die("--url has a bad port: '%s'", url);
		p = e;
	}
	if (*p == '\0')
		p = "/";
	if (*p != '/' || strlen(p) >= sizeof cfg->path)
		die("--url has a bad path: '%s'", url);
	snprintf(cfg->path, sizeof cfg->path, "%s", p);

	const char *ip = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
	memset(&cfg->addr, 0, sizeof cfg->addr);
	cfg->addr.sin_family = AF_INET;
	cfg->addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, ip, &cfg->addr.sin_addr) != 1)
		die("--url host must be a numeric IPv4 address or localhost, got '%s'", host);
	/* A benchmark tool must never point at someone else's machine. */
	if ((ntohl(cfg->addr.sin_addr.s_addr) >> 24) != 127)
		die("--url host %s is not a loopback address (127.0.0.0/8); refusing", host);
	snprintf(cfg->host_header, sizeof cfg->host_header, "%s:%ld", host, port);
}

static void print_ms(const char *label, uint64_t ns)
{
	printf("%s=%.3f", label, (double)ns / 1e6);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"url", required_argument, NULL, 'u'},
	    {"key", required_argument, NULL, 'k'},
	    {"connections", required_argument, NULL, 'c'},
	    {"threads", required_argument, NULL, 't'},
	    {"duration", required_argument, NULL, 'd'},
	    {"warmup", required_argument, NULL, 'w'},
	    {"rate", required_argument, NULL, 'r'},
	    {"batch", required_argument, NULL, 'b'},
	    {"users", required_argument, NULL, 'U'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct config cfg = {.connections = 64,
			     .threads = 1,
			     .duration_s = 10,
			     .warmup_s = 2,
			     .batch = 1,
			     .users = 10000};
	const char *url = NULL, *key = NULL;
	int opt;

	while ((opt = getopt_long(argc, argv, "u:k:c:t:d:w:r:b:U:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			url = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'c':
			cfg.connections = parse_int("--connections", optarg, 1, MAX_CONNECTIONS);
			break;
		case 't':
			cfg.threads = parse_int("--threads", optarg, 1, 2);
			break;
		case 'd':
			cfg.duration_s = parse_double("--duration", optarg, 0.1, MAX_DURATION_S);
			break;
		case 'w':
			cfg.warmup_s = parse_double("--warmup", optarg, 0, MAX_WARMUP_S);
			break;
		case 'r':
			cfg.rate = parse_double("--rate", optarg, 0, 1e8);
			break;
		case 'b':
			cfg.batch = parse_int("--batch", optarg, 1, MAX_BATCH);
			break;
		case 'U':
			cfg.users = parse_int("--users", optarg, 1, MAX_USERS);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc || !url || !key) {
		usage(stderr);
		return 1;
	}
	parse_url(&cfg, url);
	if (cfg.batch > 1 && ends_with(cfg.path, "/track"))
		die("--batch %d sends /v1/batch bodies; use --url http://HOST:PORT/v1/batch",
		    cfg.batch);
	if (cfg.batch == 1 && ends_with(cfg.path, "/batch"))
		die("--batch 1 sends a single track message; use --url .../v1/track or --batch "
		    "N>1");
	if (cfg.threads > cfg.connections)
		cfg.threads = cfg.connections;

	/* Authorization: Basic base64(key + ":") - Segment's HTTP API convention. */
	size_t klen = strlen(key);
	char *userpass = xmalloc(klen + 2);
	memcpy(userpass, key, klen);
	userpass[klen] = ':';
	cfg.auth_b64 = base64(userpass, klen + 1);
	free(userpass);

	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	cfg.id_prefix = ((uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec) ^
			((uint64_t)getpid() << 40);
	struct tm tm;
	gmtime_r(&rt.tv_sec, &tm);
	strftime(cfg.timestamp, sizeof cfg.timestamp, "%Y-%m-%dT%H:%M:%S.000Z", &tm);

	/* epoll_pwait2 (Linux 5.11) gives sub-millisecond timeouts for the open-loop schedule. */
	int probe = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event pev;
	struct timespec zero = {0, 0};
	g_have_pwait2 = probe >= 0 && epoll_pwait2(probe, &pev, 1, &zero, NULL) >= 0;
	if (probe >= 0)
		close(probe);

	struct sigaction sa = {.sa_handler = SIG_IGN};
	sigaction(SIGPIPE, &sa, NULL);

	struct worker *workers = xmalloc(sizeof *workers * (size_t)cfg.threads);
	uint64_t t0 = now_ns();
	uint64_t mstart = t0 + (uint64_t)(cfg.warmup_s * 1e9);
	uint64_t end = mstart + (uint64_t)(cfg.duration_s * 1e9);
	size_t body_len = 0;
	int conn_index = 0;
	for (int t = 0; t < cfg.threads; t++) {
		struct worker *w = &workers[t];
		w->cfg = &cfg;
		w->index = t;
		w->nconn = cfg.connections / cfg.threads + (t < cfg.connections % cfg.threads);
		w->conns = xmalloc(sizeof *w->conns * (size_t)w->nconn);
		w->idle = xmalloc(sizeof *w->idle * (size_t)w->nconn);
		for (int i = 0; i < w->nconn; i++) {
			w->conns[i].fd = -1;
			build_request(&w->conns[i], &cfg, conn_index++);
		}
		body_len = w->conns[0].body_len;
		/* Thread index in the top byte keeps messageIds unique across threads. */
		w->next_id = (uint64_t)t << 56;
		w->rng = (0x9e3779b97f4a7c15ull ^ (cfg.id_prefix + (uint64_t)t)) | 1;
		w->t0 = t0;
		w->mstart = mstart;
		w->end = end;
		w->open_loop = cfg.rate > 0;
		w->rate = cfg.rate / cfg.threads;
		w->sched_next = t0;
	}

	printf("loadgen: POST %s  batch=%d event(s)/request  body=%zu bytes (~%zu B/event)\n",
	       cfg.url, cfg.batch, body_len, body_len / (size_t)cfg.batch);
	if (cfg.rate > 0)
		printf("loadgen: open loop at %.0f req/s, latency from scheduled send time\n",
		       cfg.rate);
	else
		printf("loadgen: closed loop, latency from actual send time\n");
	printf("loadgen: connections=%d threads=%d warmup=%.1fs duration=%.1fs\n", cfg.connections,
	       cfg.threads, cfg.warmup_s, cfg.duration_s);
	fflush(stdout);

	struct sigaction si = {.sa_handler = on_sigint};
	sigaction(SIGINT, &si, NULL);
	sigaction(SIGTERM, &si, NULL);
	pthread_t *tids = xmalloc(sizeof *tids * (size_t)cfg.threads);
	for (int t = 0; t < cfg.threads; t++)
		if (pthread_create(&tids[t], NULL, worker_main, &workers[t]) != 0)
			die("pthread_create failed");
	for (int t = 0; t < cfg.threads; t++)
		pthread_join(tids[t], NULL);

	struct stats *tot = xmalloc(sizeof *tot);
	for (int t = 0; t < cfg.threads; t++) {
		struct stats *s = &workers[t].st;
		for (int i = 0; i < MAX_STATUS; i++)
			tot->status[i] += s->status[i];
		tot->requests += s->requests;
		tot->ok_requests += s->ok_requests;
		tot->events_ok += s->events_ok;
		tot->sent += s->sent;
		tot->connect_errors += s->connect_errors;
		tot->io_errors += s->io_errors;
		tot->closed_midreq += s->closed_midreq;
		tot->proto_errors += s->proto_errors;
		tot->reconnects += s->reconnects;
		tot->unfinished += s->unfinished;
		tot->backlog += s->backlog;
		if (!tot->err_sample[0] && s->err_sample[0])
			memcpy(tot->err_sample, s->err_sample, sizeof tot->err_sample);
		hist_merge(&tot->lat, &s->lat);
	}

	/* The measured window ends at --duration, or earlier on SIGINT. */
	uint64_t stopped = 0;
	for (int t = 0; t < cfg.threads; t++)
		if (workers[t].stopped_at > stopped)
			stopped = workers[t].stopped_at;
	double window = stopped > mstart ? (double)(stopped - mstart) / 1e9 : 0.0;
	if (window <= 0.0)
		window = 1e-9;
	uint64_t non2xx = 0, total_resp = 0;
	for (int i = 0; i < MAX_STATUS; i++) {
		total_resp += tot->status[i];
		if (i < 200 || i > 299)
			non2xx += tot->status[i];
	}
	uint64_t errors = tot->connect_errors + tot->io_errors + tot->closed_midreq +
			  tot->proto_errors + tot->unfinished;
	double rps = (double)tot->requests / window;
	double eps = (double)tot->events_ok / window;

	printf("\n-- results over %.2f s (after %.1f s warmup) --\n", window, cfg.warmup_s);
	printf("requests   %12" PRIu64 "   %12.1f req/s (2xx: %.1f req/s)\n", tot->requests, rps,
	       (double)tot->ok_requests / window);
	printf("events     %12" PRIu64 "   %12.1f events/s acknowledged (2xx)\n", tot->events_ok,
	       eps);
	printf("status     ");
	for (int i = 0; i < MAX_STATUS; i++)
		if (tot->status[i])
			printf(" %d=%" PRIu64, i, tot->status[i]);
	printf("   (whole run incl. warmup; %" PRIu64 " non-2xx)\n", non2xx);
	printf("errors      connect=%" PRIu64 " io=%" PRIu64 " closed_midrequest=%" PRIu64
	       " protocol=%" PRIu64 " unfinished=%" PRIu64 "   reconnects=%" PRIu64 "\n",
	       tot->connect_errors, tot->io_errors, tot->closed_midreq, tot->proto_errors,
	       tot->unfinished, tot->reconnects);
	if (cfg.rate > 0) {
		double want = cfg.rate * (cfg.warmup_s + cfg.duration_s);
		printf("schedule    target %.0f req/s; %" PRIu64 " of %.0f due requests sent, "
		       "backlog at end %" PRIu64 "%s\n",
		       cfg.rate, tot->sent, want, tot->backlog,
		       tot->backlog > (uint64_t)(cfg.rate / 100) + 1 + (uint64_t)cfg.connections
			   ? "  <- server did not keep up"
			   : "");
	}
	printf("latency ms ");
	print_ms(" p50", hist_percentile(&tot->lat, 50));
	print_ms("  p90", hist_percentile(&tot->lat, 90));
	print_ms("  p99", hist_percentile(&tot->lat, 99));
	print_ms("  p99.9", hist_percentile(&tot->lat, 99.9));
	print_ms("  max", tot->lat.max);
	printf("   (n=%" PRIu64 ", from %s send time)\n", tot->lat.n,
	       cfg.rate > 0 ? "scheduled" : "actual");
	if (tot->err_sample[0])
		printf("note        %s\n", tot->err_sample);
	if (g_interrupted)
		printf("note        interrupted\n");

	printf("RESULT rps=%.1f eps=%.1f", rps, eps);
	printf(" p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f",
	       (double)hist_percentile(&tot->lat, 50) / 1e6,
	       (double)hist_percentile(&tot->lat, 90) / 1e6,
	       (double)hist_percentile(&tot->lat, 99) / 1e6,
	       (double)hist_percentile(&tot->lat, 99.9) / 1e6, (double)tot->lat.max / 1e6);
	printf(" requests=%" PRIu64 " events=%" PRIu64 " sent=%" PRIu64 " responses=%" PRIu64
	       " non2xx=%" PRIu64 " errors=%" PRIu64 " reconnects=%" PRIu64 " backlog=%" PRIu64
	       " duration_s=%.2f rate=%.0f batch=%d connections=%d threads=%d\n",
	       tot->requests, tot->events_ok, tot->sent, total_resp, non2xx, errors,
	       tot->reconnects, tot->backlog, window, cfg.rate, cfg.batch, cfg.connections,
	       cfg.threads);

	for (int t = 0; t < cfg.threads; t++) {
		for (int i = 0; i < workers[t].nconn; i++) {
			free(workers[t].conns[i].req);
			free(workers[t].conns[i].patches);
		}
		free(workers[t].conns);
		free(workers[t].idle);
	}
	free(workers);
	free(tids);
	free(cfg.auth_b64);
	bool any_ok = tot->events_ok > 0;
	free(tot);
	return any_ok ? 0 : 2;
}
