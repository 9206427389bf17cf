/*
 * session.c - sessions derived at query time from one person's events in
 * time order (docs/attribution.md, "Sessions"): a session ends after more
 * than `gap` ms without an event, and an event that carries a campaign other
 * than its session's starts a new one.
 *
 * Deriving sessions when a query runs, instead of stamping a session id on
 * each event at ingest, keeps them right for events that arrive late or out
 * of order and for identity merges, which hand past events to another
 * person: the query sees the person's events as they are now.
 */
#include "query/query_int.h"

void qsession_init(struct qsession *s, int64_t gap)
{
	s->gap = gap;
	s->open = false;
	s->last_ts = 0;
	s->campaign = QSESSION_NO_CAMPAIGN;
}

bool qsession_next(struct qsession *s, int64_t ts, uint32_t campaign)
{
	bool start = !s->open || (uint64_t)ts - (uint64_t)s->last_ts > (uint64_t)s->gap ||
		     (campaign != QSESSION_NO_CAMPAIGN && campaign != s->campaign);
	if (start) {
		s->open = true;
		s->campaign = campaign;
	}
	s->last_ts = ts;
	return start;
}
