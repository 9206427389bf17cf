/*
 * collect_int.h - what normalize.c and enrich_input.c share. Not public.
 */
#ifndef TD_COLLECT_COLLECT_INT_H
#define TD_COLLECT_COLLECT_INT_H

#include "collect/collect.h"
#include "collect/jscan.h"

#include <stdbool.h>

/* A valid message's parts enrichment reads; spans of s (the message's
 * text) and bs (the batch body's), NULL when absent or not objects. */
struct collect_enrich_src {
	const char *s;
	const struct jspan *context, *properties;
	const char *bs;
	const struct jspan *batch_context;
	enum collect_type type;
};

/*
 * Enriches the message with o->enrich. Returns the result, valid until the
 * calling thread's next call (a per-thread scratch: nothing is allocated).
 * *ip_out is the context.ip to store (NULL: none) and *replace_ip says
 * whether it replaces the message's own ip (an IP mode other than keep) or
 * is only added where the message has none.
 */
const struct enrich_result *collect_enrich(const struct collect_enrich_src *m,
					   const struct collect_origin *o, const char **ip_out,
					   bool *replace_ip);

#endif
