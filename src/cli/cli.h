/*
 * cli.h - the `tandem` command line: one file per subcommand, sharing the
 * option reader and the data-directory helpers below.
 *
 * Exit codes: 0 success, 1 failure at run time, 2 usage error (unknown
 * command or flag, missing argument, data directory in use).
 */
#ifndef TD_CLI_CLI_H
#define TD_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLI_DEFAULT_DATA "tandem-data"

int cmd_serve(int argc, char **argv);
int cmd_import(int argc, char **argv);
/* `tandem import costs` (costs.c); argv[0] is "costs". */
int cmd_import_costs(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_profile(int argc, char **argv);
int cmd_computed(int argc, char **argv);
int cmd_source(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_identity(int argc, char **argv);
int cmd_enrich(int argc, char **argv);

/*
 * Option reading: argv[*i] is "--name VALUE" or "--name=VALUE". Returns true
 * and sets *value (borrowed from argv) when argv[*i] is that option, moving
 * *i past it; exits with code 2 if the value is missing.
 */
bool cli_opt(int argc, char **argv, int *i, const char *name, const char **value);
/* One option of a command: "--name VALUE" sets *value, a flag sets *flag. */
struct cli_option {
	const char *name; /* "--data" */
	const char **value;
	bool *flag;
};

/*
 * Reads argv[1..] against opts (ended by a {NULL} entry); words that are not
 * options fill pos[0..npos). Returns -1 when the command should go on, 0 after
 * printing usage for --help, 2 after an error message (unknown option, extra
 * argument, missing value).
 */
int cli_parse(int argc, char **argv, const char *cmd, const char *usage,
	      const struct cli_option *opts, const char **pos, size_t npos);

/* True if argv[i] is -h or --help. */
bool cli_is_help(const char *arg);
/* Reads a --format value of text or json into *json; 0, or 2 after saying
 * what is wrong. */
int cli_format_json(const char *cmd, const char *format, bool *json);
/* Prints "tandem CMD: unknown option X" plus a hint and returns 2. */
int cli_bad_option(const char *cmd, const char *arg);
/* Parses a non-negative integer with an optional k/m/g suffix (1024-based);
 * exits 2 naming the option if malformed. */
unsigned long long cli_size(const char *opt, const char *value);

/* Like cli_size, but for counts: k, m, g are 1000-based (10m = 10,000,000). */
unsigned long long cli_count(const char *opt, const char *value);

/* Reads the whole file path ("-" = stdin) into b, whose cap bounds it.
 * Returns 0, or 1 after printing "tandem CMD: ..." (what names the text in
 * the too-large message, e.g. "the query in"; "" for the file itself). */
struct td_buf;
int cli_read_all(const char *cmd, const char *what, const char *path, struct td_buf *b);

/* Creates DIR (mode 0700) if missing. Returns 0 or prints why and returns 1. */
int cli_data_dir(const char *dir);

/*
 * Takes the exclusive lock DIR/LOCK (held until exit), so only one process
 * writes the WAL. Returns 0; 2 with a message naming the holder's pid if
 * another process has it; 1 on other errors.
 */
int cli_lock_data(const char *dir);

/* The write path of serve and import: store, WAL (replayed into the dedupe
 * index and the store), applier. The store gets the identity configuration
 * read through meta (the caller's open meta.db; NULL: read from DATA) and
 * the session gap (the enrichment setting session_gap; 0: the default). Open
 * prints what failed and returns 1. */
struct cli_pipeline {
	struct store *store;
	struct ingest *ing;
	struct wal *wal;
	struct applier *applier;
	char waldir[4096], ckpt_path[4096];
};
struct wal_options;
struct meta;
int cli_pipeline_open(struct cli_pipeline *p, const char *cmd, const char *data, struct meta *meta,
		      struct wal_options *wo, int64_t dedupe_window_ms, int64_t session_gap_ms);
/* Opens the event store of DATA read-only and applies the WAL records it does
 * not have yet (in memory), so readers see every acknowledged event, also
 * while a server runs. Prints what failed and returns 1. */
int cli_store_open_read(struct store **out, const char *cmd, const char *data);
/* Reads the identity configuration stored in DATA/meta.db into *out (the
 * defaults when there is no meta.db or nothing stored; no file is created).
 * Prints what failed and returns 1. */
struct meta_identity;
/* Builds the enricher from the settings in meta.db (serve, import); prints
 * what is wrong and returns 1 when they do not build. */
struct enrich;
struct meta;
int cli_enrich_load(struct enrich **out, struct meta *m, const char *cmd, const char *data);
int cli_identity_config(struct meta_identity *out, const char *cmd, const char *data);
/* Is DATA's lock held by a running server (or import)? */
bool cli_writer_running(const char *data);
/* Removes the WAL files whose records are all durable, in segment files and
 * in a dedupe checkpoint (saving one when files could go, at most every
 * checkpoint_interval_ms); remove = false keeps every file. Call every few
 * seconds. */
void cli_pipeline_gc(struct cli_pipeline *p, bool remove, int64_t checkpoint_interval_ms);
/* Call after the last append: the store takes and flushes everything, the
 * WAL files it covers are removed (remove = true; see cli_pipeline_gc), the
 * dedupe checkpoint is saved, and what open opened is closed (any part may
 * be NULL). */
void cli_pipeline_close(struct cli_pipeline *p, bool remove);

#endif
