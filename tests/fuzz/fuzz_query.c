/*
 * fuzz_query.c - the query language reader and every query kind: query_run
 * over a small fixed data set (memsource), under a memory limit.
 *
 * Input: the query document, arbitrary bytes.
 *
 * Invariants checked:
 *   - a query that succeeds appends one JSON object that cJSON reads back;
 *   - a query that fails leaves the output buffer as it was and says why.
 */
#include "fuzz.h"

#include "base/buf.h"
#include "base/td.h"
#include "query/memsource.h"
#include "query/query.h"

#include <cjson/cJSON.h>
#include <string.h>

static struct memsource *ms;

/* Three people over three days: page views, a funnel, revenue, a plan trait,
 * campaigns and referrers, a bot. */
static void build(void)
{
	static const char *const events[] = {"Page Viewed", "Product Viewed", "Product Added",
					     "Order Completed", "Signed Up"};
	ms = memsource_new();
	const int64_t t0 = 1709251200000; /* 2024-03-01T00:00:00Z */
	for (uint32_t pid = 0; pid < 3; pid++) {
		for (int k = 0; k < 12; k++) {
			const char *ev = events[(pid + (uint32_t)k) % 5];
			int64_t ts = t0 + (int64_t)k * 5 * 3600 * 1000 + pid * 60000;
			size_t row = memsource_add(ms, ev, ts, pid);
			memsource_set_num(ms, row, "properties.revenue", 10.0 * k + pid);
			memsource_set_str(ms, row, "properties.plan", k % 2 ? "pro" : "free");
			memsource_set_bool(ms, row, "properties.first", k == 0);
			/* touchpoints for attribution, and one bot event */
			if (k % 4 == 0) {
				memsource_set_str(ms, row, "enriched.campaign.name",
						  k ? "spring" : "fall");
				memsource_set_str(ms, row, "enriched.campaign.source", "google");
				memsource_set_str(ms, row, "enriched.channel", "Paid Search");
			} else if (k % 4 == 1) {
				memsource_set_str(ms, row, "enriched.referrer.source", "Facebook");
				memsource_set_str(ms, row, "enriched.referrer.medium", "social");
			}
			if (pid == 2 && k == 7)
				memsource_set_bool(ms, row, "enriched.ua.bot", true);
		}
	}
	static const uint32_t canonical[3] = {0, 1, 1}; /* persons 1 and 2 merged */
	memsource_set_persons(ms, 3, canonical);
	memsource_build(ms, 5, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ms)
		build();
	struct td_buf out;
	td_buf_init(&out, 1u << 20);
	td_buf_append(&out, "x", 1); /* a prefix the engine must leave alone */
	char err[256];
	err[0] = '\0';
	struct query_limits lim = {.max_memory = 64u << 20};
	int rc = query_run_limited((const char *)data, size, memsource_source(ms), &lim, &out, err,
				   sizeof(err));
	FUZZ_CHECK(out.len >= 1 && out.data[0] == 'x');
	if (rc == 0) {
		cJSON *j = cJSON_ParseWithLength(out.data + 1, out.len - 1);
		FUZZ_CHECK(cJSON_IsObject(j));
		cJSON_Delete(j);
	} else {
		FUZZ_CHECK(out.len == 1);
		FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
	}
	td_buf_release(&out);
	return 0;
}
