/*
 * test_qread.c - reading the quarantine back for data health
 * (quarantine_read_recent): newest first across daily files, stops at the
 * time bound, skips torn or foreign lines, honours the byte budget, and
 * reads back what quarantine_write wrote.
 */
#include "base/td.h"
#include "base/timeutil.h"
#include "collect/collect.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char dir[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/td-qread-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(qread, .init = setup, .fini = teardown);

struct seen {
	int n;
	char reasons[16][32];
	int64_t at[16];
	int stop_after;
};

static int collect(void *arg, const struct quarantine_entry *e)
{
	struct seen *s = arg;
	if (s->n < 16) {
		snprintf(s->reasons[s->n], sizeof(s->reasons[0]), "%s", e->reason);
		s->at[s->n] = e->received_ms;
	}
	s->n++;
	return s->stop_after && s->n == s->stop_after ? 42 : 0;
}

static void put(const char *day, const char *text)
{
	char path[200];
	snprintf(path, sizeof(path), "%s/quarantine", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/quarantine/%s.ndjson", dir, day);
	FILE *f = fopen(path, "a");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

#define LINE(ts, reason)                                                                           \
	"{\"receivedAt\":\"" ts "\",\"source\":\"web\",\"endpoint\":\"track\",\"index\":0,"        \
	"\"reason\":\"" reason "\",\"field\":\"event\",\"error\":\"e\",\"raw\":\"{}\"}\n"

static int64_t at(const char *iso)
{
	int64_t ms;
	cr_assert_eq(td_time_parse(iso, strlen(iso), &ms), 0);
	return ms;
}

Test(qread, newest_first_across_days_until_the_bound)
{
	put("2025-03-01",
	    LINE("2025-03-01T10:00:00.000Z", "a") LINE("2025-03-01T23:00:00.000Z", "b"));
	put("2025-03-02", LINE("2025-03-02T01:00:00.000Z",
			       "c") "torn {\"receivedAt\n"
				    "{\"no\":\"time\"}\n" LINE("2025-03-02T02:00:00.000Z", "d"));
	put("2025-02-27", LINE("2025-02-27T10:00:00.000Z", "old"));
	put("import-2025-03-02T00-00-00-x", LINE("2025-03-02T03:00:00.000Z", "import"));
	struct seen s = {0};
	bool partial;
	cr_assert_eq(quarantine_read_recent(dir, at("2025-03-01T12:00:00.000Z"), 1u << 20, collect,
					    &s, &partial),
		     0);
	cr_assert_not(partial);
	cr_assert_eq(s.n, 3);
	cr_assert_str_eq(s.reasons[0], "d");
	cr_assert_str_eq(s.reasons[1], "c");
	cr_assert_str_eq(s.reasons[2], "b");
	cr_assert_eq(s.at[2], at("2025-03-01T23:00:00.000Z"));
}

Test(qread, the_callback_stops_it)
{
	put("2025-03-01",
	    LINE("2025-03-01T10:00:00.000Z", "a") LINE("2025-03-01T11:00:00.000Z", "b"));
	struct seen s = {.stop_after = 1};
	bool partial;
	cr_assert_eq(quarantine_read_recent(dir, 0, 1u << 20, collect, &s, &partial), 42);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.reasons[0], "b");
}

Test(qread, the_byte_budget_reads_the_newest_part)
{
	char big[8192] = "";
	for (int i = 0; i < 20; i++)
		memcpy(big + strlen(big), LINE("2025-03-01T10:00:00.000Z", "x"),
		       sizeof(LINE("2025-03-01T10:00:00.000Z", "x")));
	put("2025-03-01", big);
	put("2025-03-02", LINE("2025-03-02T10:00:00.000Z", "y"));
	struct seen s = {0};
	bool partial;
	size_t one = strlen(LINE("2025-03-01T10:00:00.000Z", "x"));
	/* the newer file whole, then the last 3 lines and 10 bytes of the older */
	cr_assert_eq(quarantine_read_recent(dir, 0, one * 4 + 10, collect, &s, &partial), 0);
	cr_assert(partial);
	cr_assert_str_eq(s.reasons[0], "y");
	cr_assert_eq(s.n, 4, "the newest lines that fit, the cut one skipped: %d", s.n);
}

Test(qread, no_directory_is_empty)
{
	struct seen s = {0};
	bool partial = true;
	cr_assert_eq(quarantine_read_recent(dir, 0, 1024, collect, &s, &partial), 0);
	cr_assert_eq(s.n, 0);
	cr_assert_not(partial);
}

Test(qread, reads_what_quarantine_write_wrote)
{
	struct quarantine *q;
	cr_assert_eq(quarantine_open(&q, dir), 0);
	struct collect_reject rj = {.index = 2, .reason = COLLECT_R_MISSING_EVENT};
	snprintf(rj.field, sizeof(rj.field), "event");
	snprintf(rj.error, sizeof(rj.error), "track calls need an \"event\"");
	rj.raw = "{\"userId\":\"u\\n1\"}";
	int64_t now = td_now_ms();
	quarantine_write(q, "web", "batch", &rj, now);
	quarantine_close(q);
	struct seen s = {0};
	bool partial;
	cr_assert_eq(quarantine_read_recent(dir, now - 1000, 1u << 20, collect, &s, &partial), 0);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.reasons[0], "missing_event");
	cr_assert_eq(s.at[0], now);
}

Test(qread, import_reject_files_are_read_in_time_order)
{
	/* a day's file, an import that day with receivedAt on its lines, and an
	 * import file from before its lines had one (the file's time is theirs) */
	put("2025-03-02", LINE("2025-03-02T01:00:00.000Z", "day-early")
			      LINE("2025-03-02T09:00:00.000Z", "day-late"));
	put("import-20250302T050000-orders", "{\"receivedAt\":\"2025-03-02T05:00:01.000Z\","
					     "\"source\":\"crm\",\"endpoint\":\"import\","
					     "\"line\":3,\"reason\":\"missing_event\",\"field\":"
					     "\"event\",\"error\":\"e\",\"raw\":\"{}\"}\n");
	put("import-20250302T040000-old", "{\"line\":7,\"reason\":\"invalid_json\",\"field\":\"\","
					  "\"error\":\"e\",\"raw\":\"x\"}\n");
	put("import-20250301T040000-yesterday",
	    "{\"line\":1,\"reason\":\"too_old\",\"field\":\"\",\"error\":\"e\",\"raw\":\"x\"}\n");
	put("import-2025030xT040000-bad-name",
	    "{\"line\":1,\"reason\":\"foreign\",\"field\":\"\",\"error\":\"e\",\"raw\":\"x\"}\n");
	struct seen s = {0};
	bool partial;
	cr_assert_eq(quarantine_read_recent(dir, at("2025-03-02T03:00:00.000Z"), 1u << 20, collect,
					    &s, &partial),
		     0);
	cr_assert_eq(s.n, 3, "%d lines", s.n);
	cr_assert_str_eq(s.reasons[0], "day-late");
	cr_assert_str_eq(s.reasons[1], "missing_event");
	cr_assert_eq(s.at[1], at("2025-03-02T05:00:01.000Z"));
	cr_assert_str_eq(s.reasons[2], "invalid_json");
	cr_assert_eq(s.at[2], at("2025-03-02T04:00:00.000Z"));
}
