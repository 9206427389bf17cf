/*
 * flatten.c - a stored message's JSON as (dotted path, scalar value) leaves,
 * the unit of the store's property columns; and the event name rule.
 */
#include "base/td.h"
#include "collect/collect.h"
#include "collect/jscan.h"
#include "store/seg.h"

#include <stdlib.h>
#include <string.h>

#define FLAT_PATH_MAX  256
#define FLAT_VALUE_MAX 4096
#define FLAT_DEPTH_MAX 8

struct flat {
	const char *s;
	seg_leaf_fn fn;
	void *ctx;
	char path[FLAT_PATH_MAX];
	char value[FLAT_VALUE_MAX];
};

static void walk(struct flat *f, struct jspan obj, size_t plen, int depth)
{
	size_t pos = 0;
	struct jmember m;
	while (jscan_next_member(f->s, obj, &pos, &m)) {
		size_t at = plen ? plen + 1 : 0;
		if (at >= FLAT_PATH_MAX)
			continue;
		size_t kl = jscan_string(f->s, m.key, f->path + at, FLAT_PATH_MAX - at);
		if (kl == (size_t)-1 || kl == 0 || memchr(f->path + at, '.', kl))
			continue; /* too long, \u0000 or a dot: no column for it */
		if (plen)
			f->path[plen] = '.';
		size_t pl = at + kl;
		switch (m.type) {
		case J_OBJECT:
			if (depth < FLAT_DEPTH_MAX)
				walk(f, m.val, pl, depth + 1);
			break;
		case J_STRING: {
			size_t vl = jscan_string(f->s, m.val, f->value, sizeof(f->value));
			if (vl != (size_t)-1)
				f->fn(f->ctx, f->path, pl, SEG_LEAF_STR, f->value, vl, 0, false);
			break;
		}
		case J_NUMBER: {
			char num[64];
			size_t nl = m.val.end - m.val.start;
			if (nl < sizeof(num)) {
				memcpy(num, f->s + m.val.start, nl);
				num[nl] = '\0';
				f->fn(f->ctx, f->path, pl, SEG_LEAF_NUM, NULL, 0, strtod(num, NULL),
				      false);
			}
			break;
		}
		case J_TRUE:
		case J_FALSE:
			f->fn(f->ctx, f->path, pl, SEG_LEAF_BOOL, NULL, 0, 0, m.type == J_TRUE);
			break;
		default: /* arrays and null make no column */
			break;
		}
		f->path[plen] = '\0';
	}
}

int seg_flatten(const char *json, size_t len, seg_leaf_fn fn, void *ctx)
{
	struct jspan doc;
	struct jscan_error err;
	if (jscan_document(json, len, &doc, &err) != J_OBJECT)
		return TD_ECORRUPT;
	struct flat *f = td_malloc(sizeof(*f));
	f->s = json;
	f->fn = fn;
	f->ctx = ctx;
	f->path[0] = '\0';
	walk(f, doc, 0, 0);
	free(f);
	return 0;
}

const char *seg_type_event_name(int type)
{
	switch (type) {
	case COLLECT_IDENTIFY:
		return "$identify";
	case COLLECT_PAGE:
		return "$page";
	case COLLECT_SCREEN:
		return "$screen";
	case COLLECT_GROUP:
		return "$group";
	case COLLECT_ALIAS:
		return "$alias";
	default:
		return NULL; /* track: its "event" */
	}
}
