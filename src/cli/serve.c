/*
 * serve.c - `tandem serve`: open the data directory, replay the WAL, serve HTTP
 * until SIGINT/SIGTERM.
 */
#include "cli/cli.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/td.h"
#include "base/timeutil.h"
#include "collect/collect.h"
#include "http/http.h"
#include "meta/meta.h"
#include "wal/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: tandem serve [--data DIR] [--listen HOST:PORT] [options]\n"
    "\n"
    "Serves the Segment-compatible collector (/v1/...), the API (/api/...), the dashboard\n"
    "(/), /health, /ready and /metrics.\n"
    "\n"
    "  --data DIR               data directory (default ./" CLI_DEFAULT_DATA ", created 0700)\n"
    "  --listen HOST:PORT       address to listen on (default 127.0.0.1:8080; port 0 picks\n"
    "                           a free port; the chosen one is printed)\n"
    "  --config FILE            read options from FILE: lines 'name = value' using the long\n"
    "                           option names without '--'; flags given here win\n"
    "  --durability sync|async  sync (default): acknowledge after fdatasync; async:\n"
    "                           acknowledge at once, fsync every 200 ms (a crash of the\n"
    "                           machine may lose up to that much)\n"
    "  --max-event-bytes N      largest message (default 32k)\n"
    "  --max-batch-bytes N      largest request body (default 500k)\n"
    "  --max-batch-events N     most messages in one batch (default 2500)\n"
    "  --dedupe-window SECONDS  window for (source, messageId) dedupe (default 604800 = 7 d)\n"
    "  --trusted-proxy CIDR     honour X-Forwarded-For from these peers (repeatable)\n"
    "  --threads N              HTTP event-loop threads (default: number of cores)\n"
    "  --wal-segment-bytes N    rotate WAL files at this size (default 64m)\n"
    "  --wal-queue-bytes N      answer 429 when this much is waiting for disk (default 64m)\n"
    "  --query-threads N        threads running /api/query requests (default 2)\n"
    "  --query-max-result N     largest query result (default 32m; larger: 400 with advice)\n"
    "  --query-max-memory N     memory one query may use (default 1g)\n"
    "  --wal-retention consumed|all\n"
    "                           consumed (default): remove the WAL files whose events are\n"
    "                           all in segment files and in the dedupe checkpoint; all:\n"
    "                           keep every file (for audits; the disk fills up)\n"
    "  --web-dir DIR            serve the dashboard's files from DIR (e.g. ./web) before the\n"
    "                           ones built into the binary: edit and reload (development)\n"
    "  --dedupe-checkpoint-interval SECONDS\n"
    "                           save the dedupe checkpoint that WAL removal needs at most\n"
    "                           this often (default 60)\n";

struct serve_opts {
	const char *data;
	char host[256];
	unsigned port;
	struct http_config http;
	struct wal_options wal;
	long long dedupe_window_s;
	bool wal_remove_consumed; /* --wal-retention consumed */
	long long ckpt_interval_s;
	struct td_buf config_text; /* values read from --config; options point into it */
};

static int parse_listen(const char *v, struct serve_opts *o)
{
	const char *colon = strrchr(v, ':');
	if (!colon || colon == v) {
		fprintf(stderr, "tandem serve: --listen takes HOST:PORT, e.g. 127.0.0.1:8080\n");
		return 2;
	}
	size_t hl = (size_t)(colon - v);
	if (v[0] == '[' && hl >= 2 && v[hl - 1] == ']') { /* [::1]:8080 */
		v++;
		hl -= 2;
	}
	if (hl >= sizeof(o->host)) {
		fprintf(stderr, "tandem serve: --listen host too long\n");
		return 2;
	}
	memcpy(o->host, v, hl);
	o->host[hl] = '\0';
	if (!strcmp(o->host, "localhost"))
		snprintf(o->host, sizeof(o->host), "127.0.0.1");
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || p < 0 || p > 65535) {
		fprintf(stderr, "tandem serve: --listen port must be 0..65535, not '%s'\n",
			colon + 1);
		return 2;
	}
	o->port = (unsigned)p;
	return 0;
}

/* Applies one option; returns 0, or 2 after printing why. */
static int apply(struct serve_opts *o, const char *name, const char *v)
{
	if (!strcmp(name, "data")) {
		o->data = v;
	} else if (!strcmp(name, "listen")) {
		return parse_listen(v, o);
	} else if (!strcmp(name, "durability")) {
		if (!strcmp(v, "sync"))
			o->wal.durability = WAL_SYNC;
		else if (!strcmp(v, "async"))
			o->wal.durability = WAL_ASYNC;
		else {
			fprintf(stderr, "tandem serve: --durability is sync or async, not '%s'\n",
				v);
			return 2;
		}
	} else if (!strcmp(name, "max-event-bytes")) {
		o->http.limits.max_event_bytes = cli_size("--max-event-bytes", v);
	} else if (!strcmp(name, "max-batch-bytes")) {
		o->http.limits.max_batch_bytes = cli_size("--max-batch-bytes", v);
	} else if (!strcmp(name, "max-batch-events")) {
		o->http.limits.max_batch_events = cli_size("--max-batch-events", v);
	} else if (!strcmp(name, "dedupe-window")) {
		o->dedupe_window_s = (long long)cli_size("--dedupe-window", v);
	} else if (!strcmp(name, "threads")) {
		o->http.threads = (unsigned)cli_size("--threads", v);
	} else if (!strcmp(name, "wal-segment-bytes")) {
		o->wal.segment_bytes = cli_size("--wal-segment-bytes", v);
	} else if (!strcmp(name, "wal-queue-bytes")) {
		o->wal.max_pending_bytes = cli_size("--wal-queue-bytes", v);
	} else if (!strcmp(name, "query-threads")) {
		o->http.query.threads = (unsigned)cli_size("--query-threads", v);
		if (o->http.query.threads < 1 || o->http.query.threads > 64) {
			fprintf(stderr, "tandem serve: --query-threads is 1 to 64\n");
			return 2;
		}
	} else if (!strcmp(name, "query-max-result")) {
		o->http.query.max_result = cli_size("--query-max-result", v);
	} else if (!strcmp(name, "query-max-memory")) {
		o->http.query.max_memory = cli_size("--query-max-memory", v);
	} else if (!strcmp(name, "wal-retention")) {
		if (strcmp(v, "all") && strcmp(v, "consumed")) {
			fprintf(stderr,
				"tandem serve: --wal-retention is all or consumed, not '%s'\n", v);
			return 2;
		}
		o->wal_remove_consumed = !strcmp(v, "consumed");
	} else if (!strcmp(name, "dedupe-checkpoint-interval")) {
		o->ckpt_interval_s = (long long)cli_size("--dedupe-checkpoint-interval", v);
		if (o->ckpt_interval_s < 1 || o->ckpt_interval_s > 86400) {
			fprintf(stderr, "tandem serve: --dedupe-checkpoint-interval is 1 to 86400 "
					"seconds\n");
			return 2;
		}
	} else if (!strcmp(name, "web-dir")) {
		struct stat st;
		if (stat(v, &st) || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "tandem serve: --web-dir %s is not a directory\n", v);
			return 2;
		}
		o->http.web_dir = v;
	} else if (!strcmp(name, "trusted-proxy")) {
		if (o->http.nproxies == HTTP_MAX_PROXIES) {
			fprintf(stderr, "tandem serve: at most %d --trusted-proxy ranges\n",
				HTTP_MAX_PROXIES);
			return 2;
		}
		if (http_cidr_parse(v, &o->http.proxies[o->http.nproxies])) {
			fprintf(stderr,
				"tandem serve: --trusted-proxy '%s' is not an address or CIDR "
				"range (e.g. 10.0.0.0/8)\n",
				v);
			return 2;
		}
		o->http.nproxies++;
	} else {
		fprintf(stderr, "tandem serve: unknown option '%s' (see 'tandem serve --help')\n",
			name);
		return 2;
	}
	return 0;
}

/* Reads `name = value` lines; values may be quoted. The file is read whole
 * into o->config_text and split in place, so option values can point into it
 * until cmd_serve returns. */
static int load_config(struct serve_opts *o, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "tandem serve: cannot read config %s: %s\n", path, strerror(errno));
		return 2;
	}
	char chunk[4096];
	size_t got;
	int rc = 0;
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (td_buf_append(&o->config_text, chunk, got)) {
			fprintf(stderr, "tandem serve: config %s is larger than 1 MiB\n", path);
			rc = 2;
			break;
		}
	fclose(f);
	if (rc || !o->config_text.data)
		return rc;
	int lineno = 0;
	for (char *p = o->config_text.data, *next; !rc && p; p = next) {
		lineno++;
		next = strchr(p, '\n');
		if (next)
			*next++ = '\0';
		p += strspn(p, " \t");
		p[strcspn(p, "\r")] = '\0';
		if (*p == '#' || *p == '\0')
			continue;
		char *eq = strchr(p, '=');
		if (!eq) {
			fprintf(stderr, "tandem serve: %s:%d: expected 'name = value'\n", path,
				lineno);
			rc = 2;
			break;
		}
		char *name = p, *val = eq + 1;
		char *e = eq;
		while (e > name && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		*e = '\0';
		val += strspn(val, " \t");
		/* a '#' after blanks starts a comment, outside quotes */
		if (val[0] == '"' || val[0] == '\'') {
			char *q = strchr(val + 1, val[0]);
			if (q)
				q[1] = '\0';
		} else {
			for (char *h = strchr(val, '#'); h; h = strchr(h + 1, '#'))
				if (h == val || h[-1] == ' ' || h[-1] == '\t') {
					*h = '\0';
					break;
				}
		}
		size_t vl = strlen(val);
		while (vl && (val[vl - 1] == ' ' || val[vl - 1] == '\t'))
			val[--vl] = '\0';
		if (vl >= 2 && ((val[0] == '"' && val[vl - 1] == '"') ||
				(val[0] == '\'' && val[vl - 1] == '\''))) {
			val[vl - 1] = '\0';
			val++;
		}
		if (!strcmp(name, "config")) {
			fprintf(stderr, "tandem serve: %s:%d: config files cannot include others\n",
				path, lineno);
			rc = 2;
			break;
		}
		rc = apply(o, name, val);
		if (rc)
			fprintf(stderr, "tandem serve: (in %s line %d)\n", path, lineno);
	}
	return rc;
}

/* First start: create the admin token, show it once, keep it in DATA/admin-token. */
static int ensure_admin_token(struct meta *m, const char *data)
{
	int n = meta_token_count(m);
	if (n < 0)
		return 1;
	if (n > 0)
		return 0;
	char token[META_TOKEN_LEN + 1], path[4096];
	if (meta_token_create(m, "admin", "admin", token))
		return 1;
	snprintf(path, sizeof(path), "%s/admin-token", data);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, token, strlen(token)) < 0 || write(fd, "\n", 1) < 0 || fsync(fd)) {
		fprintf(stderr, "tandem serve: cannot write %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	close(fd);
	printf("admin token (shown once; also saved to %s, mode 0600): %s\n", path, token);
	return 0;
}

static int serve(struct serve_opts *o, int argc, char **argv);

int cmd_serve(int argc, char **argv)
{
	struct serve_opts o;
	memset(&o, 0, sizeof(o));
	td_buf_init(&o.config_text, 1u << 20);
	int rc = serve(&o, argc, argv);
	td_buf_release(&o.config_text);
	return rc;
}

static int serve(struct serve_opts *o, int argc, char **argv)
{
	o->data = CLI_DEFAULT_DATA;
	snprintf(o->host, sizeof(o->host), "127.0.0.1");
	o->port = 8080;
	collect_limits_default(&o->http.limits);
	o->dedupe_window_s = 7 * 86400;
	o->ckpt_interval_s = INGEST_CHECKPOINT_INTERVAL_MS / 1000;
	o->wal_remove_consumed = true;

	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return 0;
		}
	}
	for (int i = 1; i < argc;) {
		const char *v;
		if (cli_opt(argc, argv, &i, "--config", &v)) {
			if (o->config_text.data) {
				fprintf(stderr, "tandem serve: --config may be given once\n");
				return 2;
			}
			int rc = load_config(o, v);
			if (rc)
				return rc;
		} else {
			i++;
		}
	}
	for (int i = 1; i < argc;) {
		const char *a = argv[i], *v;
		if (cli_opt(argc, argv, &i, "--config", &v))
			continue;
		if (strncmp(a, "--", 2) != 0)
			return cli_bad_option("serve", a);
		char name[64];
		const char *eq = strchr(a + 2, '=');
		size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		if (nl >= sizeof(name))
			return cli_bad_option("serve", a);
		memcpy(name, a + 2, nl);
		name[nl] = '\0';
		char flag[70];
		snprintf(flag, sizeof(flag), "--%s", name);
		if (!cli_opt(argc, argv, &i, flag, &v))
			return cli_bad_option("serve", a);
		int rc = apply(o, name, v);
		if (rc)
			return rc;
	}
	if (o->http.limits.max_event_bytes < 256 || o->http.limits.max_batch_bytes < 256 ||
	    o->http.limits.max_batch_events < 1) {
		fprintf(stderr, "tandem serve: limits too small (event and batch bytes >= 256, "
				"batch events >= 1)\n");
		return 2;
	}
	if (o->http.limits.max_event_bytes > (1u << 20)) {
		/* the event store keeps 1024 messages per raw block, at most 1 GiB */
		fprintf(stderr, "tandem serve: --max-event-bytes is at most 1m\n");
		return 2;
	}

	int rc = cli_data_dir(o->data);
	if (rc)
		return rc;
	rc = cli_lock_data(o->data);
	if (rc)
		return rc;

	/* Signals are taken by sigwait below; block them before any thread starts
	 * so every thread inherits the mask. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct meta *meta = NULL;
	struct quarantine *q = NULL;
	struct cli_pipeline pipe = {0};
	struct http_server *http = NULL;
	struct enrich *enr = NULL;
	rc = 1;
	if (meta_open(&meta, o->data)) {
		fprintf(stderr, "tandem serve: cannot open %s/meta.db\n", o->data);
		goto out;
	}
	if (cli_enrich_load(&enr, meta, "serve", o->data))
		goto out;
	if (ensure_admin_token(meta, o->data))
		goto out;
	int err = quarantine_open(&q, o->data);
	if (err) {
		fprintf(stderr, "tandem serve: cannot create %s/quarantine: %s\n", o->data,
			td_strerror(err));
		goto out;
	}
	if (cli_pipeline_open(&pipe, "serve", o->data, meta, &o->wal, o->dedupe_window_s * 1000,
			      enr ? enrich_session_gap_ms(enr) : 0))
		goto out;
	o->http.host = o->host;
	o->http.port = (uint16_t)o->port;
	struct http_deps deps = {.data_dir = o->data,
				 .meta = meta,
				 .wal = pipe.wal,
				 .ingest = pipe.ing,
				 .quarantine = q,
				 .store = pipe.store,
				 .enrich = enr};
	uint16_t port;
	if (http_start(&http, &o->http, &deps, &port))
		goto out;
	int v6 = strchr(o->host, ':') != NULL;
	printf("listening on http://%s%s%s:%u\n", v6 ? "[" : "", o->host, v6 ? "]" : "", port);
	fflush(stdout);
	td_log_info("serve: data %s, durability %s, pid %ld", o->data,
		    o->wal.durability == WAL_SYNC ? "sync" : "async", (long)getpid());

	int64_t tick_ms = TD_MIN(5000, o->ckpt_interval_s * 1000);
	int sig;
	for (;;) {
		struct timespec ts = {(time_t)(tick_ms / 1000), (long)(tick_ms % 1000) * 1000000};
		sig = sigtimedwait(&sigs, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM)
			break;
		cli_pipeline_gc(&pipe, o->wal_remove_consumed, o->ckpt_interval_s * 1000);
	}
	td_log_info("serve: %s received, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	http_stop(http);
	http = NULL;
	rc = 0;
out:
	http_stop(http);
	cli_pipeline_close(&pipe, o->wal_remove_consumed);
	quarantine_close(q);
	enrich_free(enr);
	meta_close(meta);
	return rc;
}
