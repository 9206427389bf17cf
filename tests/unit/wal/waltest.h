/*
 * waltest.h - code shared by the WAL tests: a fresh temporary directory
 * per test (wt_setup / wt_teardown, the log in wt_waldir), deterministic
 * payloads, collecting what a replay or a reader returns, and small file
 * manipulations for damage.
 */
#ifndef TD_TESTS_WAL_WALTEST_H
#define TD_TESTS_WAL_WALTEST_H

#include "wal/wal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

extern char wt_root[64];
extern char wt_waldir[128];

void wt_setup(void);
void wt_teardown(void);

uint64_t wt_mix(uint64_t x);
/* Payload number i: a length from 0 to 699 and bytes that depend on i. */
size_t wt_make_payload(uint64_t i, unsigned char *buf);

struct wt_rec {
	uint64_t lsn;
	uint8_t type;
	uint32_t len;
	unsigned char *data;
	uint32_t file_seq;
	uint64_t offset;
};

struct wt_collected {
	struct wt_rec *v;
	size_t n, cap;
};

/* What the log should hold: LSN -> payload number. */
struct wt_expect {
	uint64_t lsn;
	uint64_t payload_id;
};

/* Replay callback (ctx: struct wt_collected) keeping a copy of every record. */
int wt_collect_cb(void *ctx, const struct wal_record *rec);
void wt_collected_free(struct wt_collected *c);
/* The records are exactly want[0..n), payloads included, in LSN order. */
void wt_check_records(const struct wt_collected *c, const struct wt_expect *want, size_t n);

/* wal_open that must succeed; c (may be NULL) collects the replay. */
struct wal *wt_open_wal(const struct wal_options *opt, struct wt_collected *c);
/* Options with dir = wt_waldir and every other field 0. */
struct wal_options wt_default_opts(void);
/* Appends payloads first_id .. first_id+n-1, waiting for each when `each`,
 * else only for the last; records LSN -> payload in want[] (may be NULL). */
void wt_append_n(struct wal *w, uint64_t first_id, size_t n, bool each, struct wt_expect *want);
/* Replays the log with a fresh wal_open and closes it again. */
void wt_replay_all(struct wt_collected *c);

/* Sorted sequence numbers of the *.wal files in wt_waldir. */
size_t wt_list_seqs(uint32_t *seqs, size_t cap);
void wt_seq_path(char *out, size_t cap, uint32_t seq);
off_t wt_file_size(const char *path);
void wt_write_file(const char *path, const void *data, size_t n);
unsigned char *wt_read_file(const char *path, size_t *n);
void wt_flip_byte(const char *path, off_t at);
/* Reads the whole log with a reader; returns the damage text (strdup'd) or
 * NULL, and the records in *c. */
char *wt_read_log(struct wt_collected *c, uint64_t *damaged_files);

#endif
