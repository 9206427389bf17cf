/*
 * qformat.c - query results as tables and CSV (see qformat.h): a grid
 * builder per result kind (docs/queries.md gives each result's fields), one
 * writer per format.
 */
#include "cli/qformat.h"
#include "base/td.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How a number reads in a table; CSV always has the exact value. */
enum qf_style {
	QF_PLAIN, /* 1234, 25.5, 0.33 */
	QF_PCT,	  /* 66.7% */
	QF_MS,	  /* a duration in ms: 850 ms, 2.5 s, 3 min, 1.5 h, 7 d */
};

struct qf_cell {
	char *text; /* owned; NULL = null ("-" in tables, empty in CSV) */
	bool right; /* a number: right-aligned in tables */
};

/* The grid of one result: column titles, then cells row by row. */
struct qf_grid {
	bool csv;
	char **head; /* owned titles */
	size_t ncols, capcols;
	struct qf_cell *cells; /* row-major, ncells = rows * ncols when complete */
	size_t ncells, capcells;
	struct td_buf title; /* tables: the line above the grid */
	struct td_buf notes; /* lines after the grid (tables) or for stderr (CSV) */
};

static void grid_init(struct qf_grid *g, bool csv)
{
	memset(g, 0, sizeof(*g));
	g->csv = csv;
	td_buf_init(&g->title, 4096);
	td_buf_init(&g->notes, 1u << 20);
}

static void grid_release(struct qf_grid *g)
{
	for (size_t i = 0; i < g->ncols; i++)
		free(g->head[i]);
	for (size_t i = 0; i < g->ncells; i++)
		free(g->cells[i].text);
	free(g->head);
	free(g->cells);
	td_buf_release(&g->title);
	td_buf_release(&g->notes);
}

/* ------------------------------------------------------------ cell text */

/* Text for a table cell: control characters escaped (so a value cannot
 * break the grid), cut to QFORMAT_MAX_CELL characters. */
static char *table_text(const char *s)
{
	struct td_buf b;
	td_buf_init(&b, SIZE_MAX / 2);
	size_t chars = 0, cut_at = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p & 0xC0) != 0x80) {
			if (chars == QFORMAT_MAX_CELL - 3)
				cut_at = b.len;
			chars++;
		}
		if (*p == '\n')
			td_buf_append(&b, "\\n", 2);
		else if (*p == '\r')
			td_buf_append(&b, "\\r", 2);
		else if (*p == '\t')
			td_buf_append(&b, "\\t", 2);
		else if (*p < 0x20 || *p == 0x7f)
			td_buf_printf(&b, "\\u%04x", *p);
		else
			td_buf_putc(&b, (char)*p);
	}
	if (chars > QFORMAT_MAX_CELL) {
		b.len = cut_at;
		td_buf_append(&b, "...", 3);
	}
	if (!b.data)
		td_buf_append(&b, "", 0);
	return td_buf_steal(&b);
}

/* Display width: UTF-8 code points (wide characters count as one). */
static size_t text_width(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

/* The shortest text that reads back as exactly v (JSON's number form). */
static void fmt_exact(double v, char *out, size_t cap)
{
	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(out, cap, "%.0f", v == 0 ? 0.0 : v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, cap, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

/* v with at most `decimals` decimals, trailing zeros dropped, then unit. */
static void fmt_trim(double v, int decimals, const char *unit, char *out, size_t cap)
{
	char num[64];
	snprintf(num, sizeof(num), "%.*f", decimals, v);
	if (strchr(num, '.')) {
		size_t n = strlen(num);
		while (num[n - 1] == '0')
			num[--n] = '\0';
		if (num[n - 1] == '.')
			num[--n] = '\0';
	}
	if (!strcmp(num, "-0"))
		snprintf(num, sizeof(num), "0");
	snprintf(out, cap, "%s%s", num, unit);
}

static void fmt_duration(double ms, char *out, size_t cap)
{
	static const struct {
		double ms;
		const char *unit;
	} units[] = {{86400000, " d"}, {3600000, " h"}, {60000, " min"}, {1000, " s"}};
	for (size_t i = 0; i < TD_ARRAY_LEN(units); i++)
		if (fabs(ms) >= units[i].ms) {
			fmt_trim(ms / units[i].ms, 1, units[i].unit, out, cap);
			return;
		}
	fmt_trim(ms, 0, " ms", out, cap);
}

static void fmt_table_number(double v, enum qf_style style, char *out, size_t cap)
{
	if (!isfinite(v))
		snprintf(out, cap, "%g", v);
	else if (style == QF_PCT)
		fmt_trim(v, 1, "%", out, cap);
	else if (style == QF_MS)
		fmt_duration(v, out, cap);
	else if (v == floor(v) && fabs(v) < 1e15)
		fmt_exact(v, out, cap);
	else if (fabs(v) >= 1e15 || fabs(v) < 0.01)
		snprintf(out, cap, "%.3g", v);
	else
		fmt_trim(v, 2, "", out, cap);
}

/* ------------------------------------------------------------ building */

static void grid_col(struct qf_grid *g, const char *title)
{
	if (g->ncols == g->capcols) {
		g->capcols = g->capcols ? g->capcols * 2 : 16;
		g->head = td_realloc(g->head, g->capcols * sizeof(*g->head));
	}
	g->head[g->ncols++] = g->csv ? td_strdup(title) : table_text(title);
}

/* A column named for programs in CSV and for people in tables. */
static void grid_col2(struct qf_grid *g, const char *csv_name, const char *table_title)
{
	grid_col(g, g->csv ? csv_name : table_title);
}

/* Appends a cell; text is owned by the grid from here on. */
static void grid_put(struct qf_grid *g, char *text, bool right)
{
	if (g->ncells == g->capcells) {
		g->capcells = g->capcells ? g->capcells * 2 : 256;
		g->cells = td_realloc(g->cells, g->capcells * sizeof(*g->cells));
	}
	g->cells[g->ncells++] = (struct qf_cell){.text = text, .right = right};
}

static void cell_null(struct qf_grid *g)
{
	grid_put(g, NULL, false);
}

static void cell_text(struct qf_grid *g, const char *s)
{
	grid_put(g, g->csv ? td_strdup(s) : table_text(s), false);
}

static void cell_number(struct qf_grid *g, double v, enum qf_style style)
{
	char buf[64];
	if (g->csv)
		fmt_exact(v, buf, sizeof(buf));
	else
		fmt_table_number(v, style, buf, sizeof(buf));
	grid_put(g, td_strdup(buf), true);
}

/* Any JSON value: null or missing -> null, objects and arrays as JSON text. */
static void cell_value(struct qf_grid *g, const cJSON *v, enum qf_style style)
{
	if (!v || cJSON_IsNull(v)) {
		cell_null(g);
	} else if (cJSON_IsNumber(v)) {
		cell_number(g, v->valuedouble, style);
	} else if (cJSON_IsString(v)) {
		cell_text(g, v->valuestring);
	} else if (cJSON_IsBool(v)) {
		cell_text(g, cJSON_IsTrue(v) ? "true" : "false");
	} else {
		char *s = cJSON_PrintUnformatted(v);
		cell_text(g, s ? s : "");
		free(s);
	}
}

static const cJSON *field(const cJSON *o, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(o, name);
}

/* The string member, or NULL. */
static const char *field_str(const cJSON *o, const char *name)
{
	const cJSON *v = field(o, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The array member, or NULL. */
static const cJSON *field_array(const cJSON *o, const char *name)
{
	const cJSON *v = field(o, name);
	return cJSON_IsArray(v) ? v : NULL;
}

static double field_num(const cJSON *o, const char *name, double dflt)
{
	const cJSON *v = field(o, name);
	return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static const char *str_or(const char *s, const char *dflt)
{
	return s ? s : dflt;
}

/* An event name for people: "" selects every event. */
static const char *event_label(const char *name)
{
	return !name ? "?" : *name ? name : "all events";
}

/* ------------------------------------------------------------ trends */

/* "Revenue", "Buy sum(properties.revenue)", "View [google] (previous)". */
static void line_label(const cJSON *line, bool numbered, struct td_buf *b)
{
	const char *name = field_str(line, "name"), *math = field_str(line, "math");
	const char *prop = field_str(line, "property"), *period = field_str(line, "period");
	td_buf_reset(b);
	if (numbered)
		td_buf_printf(b, "%.0f. ", field_num(line, "series", 0) + 1);
	if (name) {
		td_buf_printf(b, "%s", name);
	} else {
		td_buf_printf(b, "%s", event_label(field_str(line, "event")));
		if (math && strcmp(math, "count") != 0)
			td_buf_printf(b, prop ? " %s(%s)" : " %s", math, prop);
	}
	const cJSON *bv = field(line, "breakdown_value"); /* text, or null: no value */
	if (cJSON_IsTrue(field(line, "is_other")))
		td_buf_printf(b, " [other]");
	else if (cJSON_IsString(bv))
		td_buf_printf(b, " [%s]", bv->valuestring);
	else if (cJSON_IsNull(bv))
		td_buf_printf(b, " [none]");
	if (period && !strcmp(period, "previous"))
		td_buf_printf(b, " (previous)");
}

/* True when two lines would get the same column title. */
static bool labels_collide(const cJSON *lines)
{
	int n = cJSON_GetArraySize(lines);
	char **labels = td_calloc((size_t)n + 1, sizeof(char *));
	struct td_buf b;
	td_buf_init(&b, 1u << 20);
	int i = 0;
	const cJSON *line;
	cJSON_ArrayForEach(line, lines)
	{
		line_label(line, false, &b);
		labels[i++] = td_strdup(b.data ? b.data : "");
	}
	bool same = false;
	for (int a = 0; a < n && !same; a++)
		for (int c = a + 1; c < n && !same; c++)
			same = !strcmp(labels[a], labels[c]);
	for (int a = 0; a < n; a++)
		free(labels[a]);
	free(labels);
	td_buf_release(&b);
	return same;
}

static int build_trends(struct qf_grid *g, const cJSON *r)
{
	const cJSON *buckets = field_array(r, "buckets"),
		    *prev = field_array(r, "previous_buckets");
	const cJSON *lines = field_array(r, "series");
	if (!buckets || !lines)
		return TD_EPARSE;
	td_buf_printf(&g->title, "trends by %s, %s, from %s to %s",
		      str_or(field_str(r, "interval"), "?"), str_or(field_str(r, "timezone"), "?"),
		      str_or(field_str(r, "from"), "?"), str_or(field_str(r, "to"), "?"));
	grid_col(g, "bucket");
	if (prev)
		grid_col2(g, "previous_bucket", "previous bucket");
	bool numbered = labels_collide(lines);
	struct td_buf label;
	td_buf_init(&label, 1u << 20);
	const cJSON *line;
	cJSON_ArrayForEach(line, lines)
	{
		line_label(line, numbered, &label);
		grid_col(g, label.data ? label.data : "");
	}
	td_buf_release(&label);
	int n = cJSON_GetArraySize(buckets);
	for (int i = 0; i <= n; i++) { /* i == n: the totals */
		if (i < n)
			cell_value(g, cJSON_GetArrayItem(buckets, i), QF_PLAIN);
		else
			cell_text(g, "total");
		if (prev)
			cell_value(g, i < n ? cJSON_GetArrayItem(prev, i) : NULL, QF_PLAIN);
		cJSON_ArrayForEach(line, lines)
		{
			const cJSON *values = field_array(line, "values");
			cell_value(g, i < n ? cJSON_GetArrayItem(values, i) : field(line, "total"),
				   QF_PLAIN);
		}
	}
	/* with "costs": a row each for the lines' cost, ROI and ROAS */
	static const char *const money[] = {"cost", "roi", "roas"};
	bool costs = cJSON_GetArraySize(lines) && field(cJSON_GetArrayItem(lines, 0), "cost");
	for (int k = 0; costs && k < 3; k++) {
		cell_text(g, money[k]);
		if (prev)
			cell_null(g);
		cJSON_ArrayForEach(line, lines)
		{
			cell_value(g, field(line, money[k]), QF_PLAIN);
		}
	}
	return 0;
}

/* ------------------------------------------------------------ funnel */

static void funnel_steps(struct qf_grid *g, const cJSON *steps, const cJSON *group, bool bd)
{
	const cJSON *step;
	cJSON_ArrayForEach(step, steps)
	{
		if (bd && g->csv) {
			cell_value(g, group ? field(group, "breakdown_value") : NULL, QF_PLAIN);
			if (group)
				cell_text(g, cJSON_IsTrue(field(group, "is_other")) ? "true"
										    : "false");
			else
				cell_null(g);
		} else if (bd) {
			const cJSON *v = group ? field(group, "breakdown_value") : NULL;
			if (!group)
				cell_text(g, "(all)");
			else if (cJSON_IsTrue(field(group, "is_other")))
				cell_text(g, "(other)");
			else if (!v || cJSON_IsNull(v))
				cell_text(g, "(none)");
			else
				cell_value(g, v, QF_PLAIN);
		}
		cell_value(g, field(step, "step"), QF_PLAIN);
		const char *ev = field_str(step, "event");
		if (g->csv)
			cell_value(g, field(step, "event"), QF_PLAIN);
		else
			cell_text(g, event_label(ev));
		cell_value(g, field(step, "persons"), QF_PLAIN);
		cell_value(g, field(step, "conversion_from_first_pct"), QF_PCT);
		cell_value(g, field(step, "conversion_from_previous_pct"), QF_PCT);
		cell_value(g, field(step, "median_ms"), QF_MS);
		cell_value(g, field(step, "mean_ms"), QF_MS);
	}
}

/* "persons at step 3 who dropped off: 250 in all; 1-100: 3, 17, ..." */
static void funnel_persons_note(struct qf_grid *g, const cJSON *p)
{
	const cJSON *pids = field_array(p, "pids");
	double offset = field_num(p, "offset", 0), total = field_num(p, "total", 0);
	int n = cJSON_GetArraySize(pids);
	char num[64];
	td_buf_printf(&g->notes, "persons at step %.0f%s: %.0f in all", field_num(p, "step", 0),
		      cJSON_IsTrue(field(p, "dropped")) ? " who dropped off" : "", total);
	if (n > 0)
		td_buf_printf(&g->notes, "; %.0f-%.0f:", offset + 1, offset + n);
	const cJSON *pid;
	int i = 0;
	cJSON_ArrayForEach(pid, pids)
	{
		fmt_exact(cJSON_IsNumber(pid) ? pid->valuedouble : -1, num, sizeof(num));
		td_buf_printf(&g->notes, "%s %s", i++ ? "," : "", num);
	}
	if (offset + n < total)
		td_buf_printf(&g->notes, " (more with \"offset\": %.0f)", offset + n);
	td_buf_putc(&g->notes, '\n');
}

static int build_funnel(struct qf_grid *g, const cJSON *r)
{
	const cJSON *steps = field_array(r, "steps"), *groups = field_array(r, "breakdown");
	if (!steps)
		return TD_EPARSE;
	char window[64];
	fmt_duration(field_num(r, "window_ms", 0), window, sizeof(window));
	td_buf_printf(&g->title, "funnel, order %s, window %s", str_or(field_str(r, "order"), "?"),
		      window);
	bool bd = groups != NULL;
	if (bd && g->csv) {
		grid_col(g, "breakdown_value");
		grid_col(g, "is_other");
	} else if (bd) {
		grid_col(g, "breakdown");
	}
	grid_col(g, "step");
	grid_col(g, "event");
	grid_col(g, "persons");
	grid_col2(g, "conversion_from_first_pct", "% of first");
	grid_col2(g, "conversion_from_previous_pct", "% of previous");
	grid_col2(g, "median_ms", "median time");
	grid_col2(g, "mean_ms", "mean time");
	funnel_steps(g, steps, NULL, bd);
	const cJSON *group;
	cJSON_ArrayForEach(group, groups)
	{
		funnel_steps(g, field_array(group, "steps"), group, bd);
	}
	const cJSON *persons = field(r, "persons");
	if (cJSON_IsObject(persons))
		funnel_persons_note(g, persons);
	return 0;
}

/* ------------------------------------------------------------ retention */

static int build_retention(struct qf_grid *g, const cJSON *r)
{
	const cJSON *cohorts = field_array(r, "cohorts");
	if (!cohorts)
		return TD_EPARSE;
	const char *period = str_or(field_str(r, "period"), "period");
	td_buf_printf(&g->title, "retention, %s cohorts by %s, %s",
		      str_or(field_str(r, "cohort"), "?"), period,
		      str_or(field_str(r, "timezone"), "?"));
	int nper = (int)field_num(r, "periods", 0);
	const cJSON *c;
	cJSON_ArrayForEach(c, cohorts)
	{
		nper = TD_MAX(nper, cJSON_GetArraySize(field_array(c, "values")));
	}
	nper = TD_MIN(nper, 100000); /* a sane bound on columns whatever the input */
	char title[64];
	grid_col2(g, "start", "cohort");
	grid_col(g, "size");
	for (int pass = 0; pass < (g->csv ? 2 : 1); pass++)
		for (int k = 0; k < nper; k++) {
			if (g->csv)
				snprintf(title, sizeof(title), "%s_%d", pass ? "pct" : "period", k);
			else
				snprintf(title, sizeof(title), "%s %d", period, k);
			grid_col(g, title);
		}
	cJSON_ArrayForEach(c, cohorts)
	{
		const cJSON *values = field_array(c, "values"),
			    *pct = field_array(c, "percentages");
		cell_value(g, field(c, "start"), QF_PLAIN);
		cell_value(g, field(c, "size"), QF_PLAIN);
		for (int k = 0; k < nper && g->csv; k++)
			cell_value(g, cJSON_GetArrayItem(values, k), QF_PLAIN);
		for (int k = 0; k < nper && g->csv; k++)
			cell_value(g, cJSON_GetArrayItem(pct, k), QF_PLAIN);
		for (int k = 0; k < nper && !g->csv; k++) {
			/* "40 (33.3%)": the count and its share of the cohort */
			const cJSON *v = cJSON_GetArrayItem(values, k),
				    *p = cJSON_GetArrayItem(pct, k);
			char a[64], b[64], both[140];
			if (!cJSON_IsNumber(v)) {
				cell_null(g);
				continue;
			}
			fmt_table_number(v->valuedouble, QF_PLAIN, a, sizeof(a));
			if (cJSON_IsNumber(p)) {
				fmt_table_number(p->valuedouble, QF_PCT, b, sizeof(b));
				snprintf(both, sizeof(both), "%s (%s)", a, b);
			} else {
				snprintf(both, sizeof(both), "%s", a);
			}
			grid_put(g, td_strdup(both), true);
		}
	}
	return 0;
}

/* ------------------------------------------------------------ paths */

static int build_paths(struct qf_grid *g, const cJSON *r)
{
	const cJSON *depths = field_array(r, "depths");
	if (!depths)
		return TD_EPARSE;
	char gap[64];
	fmt_duration(field_num(r, "session_gap_ms", 0), gap, sizeof(gap));
	td_buf_printf(&g->title, "paths %s %s, sessions split after %s without events",
		      str_or(field_str(r, "direction"), "?"), event_label(field_str(r, "anchor")),
		      gap);
	grid_col(g, "depth");
	grid_col(g, "sessions");
	grid_col(g, "from");
	grid_col(g, "to");
	grid_col(g, "count");
	/* depth 0: the sessions that contain the anchor */
	cell_number(g, 0, QF_PLAIN);
	cell_value(g, field(r, "sessions"), QF_PLAIN);
	cell_null(g);
	cell_null(g);
	cell_null(g);
	const cJSON *d;
	cJSON_ArrayForEach(d, depths)
	{
		const cJSON *ts = field_array(d, "transitions"), *t;
		if (cJSON_GetArraySize(ts) == 0) {
			cell_value(g, field(d, "depth"), QF_PLAIN);
			cell_value(g, field(d, "sessions"), QF_PLAIN);
			cell_null(g);
			cell_null(g);
			cell_null(g);
		}
		cJSON_ArrayForEach(t, ts)
		{
			cell_value(g, field(d, "depth"), QF_PLAIN);
			cell_value(g, field(d, "sessions"), QF_PLAIN);
			cell_value(g, field(t, "from"), QF_PLAIN);
			cell_value(g, field(t, "to"), QF_PLAIN);
			cell_value(g, field(t, "count"), QF_PLAIN);
		}
	}
	return 0;
}

/* ------------------------------------------------------- attribution */

static int build_attribution(struct qf_grid *g, const cJSON *r)
{
	const cJSON *groups = field_array(r, "groups"), *models = field_array(r, "models");
	if (!groups || !models)
		return TD_EPARSE;
	char lb[64];
	fmt_duration(field_num(r, "lookback_ms", 0), lb, sizeof(lb));
	td_buf_printf(&g->title, "attribution of %s by %s, lookback %s: %.0f conversions",
		      event_label(field_str(r, "conversion")),
		      str_or(field_str(r, "touchpoint"), "?"), lb, field_num(r, "conversions", 0));
	const char *cur = field_str(r, "currency");
	if (cur)
		td_buf_printf(&g->title, ", costs in %s", cur);
	grid_col(g, "touchpoint");
	grid_col(g, "model");
	grid_col(g, "conversions");
	grid_col(g, "revenue");
	grid_col2(g, "share_pct", "share");
	grid_col(g, "cost");
	grid_col(g, "roi");
	grid_col(g, "roas");
	const cJSON *gr, *m;
	cJSON_ArrayForEach(gr, groups)
	{
		const cJSON *per = field(gr, "models");
		cJSON_ArrayForEach(m, models)
		{
			if (!cJSON_IsString(m))
				return TD_EPARSE;
			const cJSON *v = field(per, m->valuestring);
			if (cJSON_IsTrue(field(gr, "is_other")))
				cell_text(g, "(other)");
			else
				cell_value(g, field(gr, "touchpoint"), QF_PLAIN);
			cell_text(g, m->valuestring);
			cell_value(g, field(v, "conversions"), QF_PLAIN);
			cell_value(g, field(v, "revenue"), QF_PLAIN);
			cell_value(g, field(v, "share_pct"), QF_PCT);
			cell_value(g, field(gr, "cost"), QF_PLAIN);
			cell_value(g, field(v, "roi"), QF_PLAIN);
			cell_value(g, field(v, "roas"), QF_PLAIN);
		}
	}
	return 0;
}

/* ------------------------------------------------------------ events */

static int build_events(struct qf_grid *g, const cJSON *r)
{
	const cJSON *events = field_array(r, "events"), *e, *f;
	if (!events)
		return TD_EPARSE;
	int n = cJSON_GetArraySize(events);
	double offset = field_num(r, "offset", 0);
	if (n)
		td_buf_printf(&g->title, "events %.0f-%.0f, newest first", offset + 1, offset + n);
	else
		td_buf_printf(&g->title, "events: none");
	/* columns: every field of any row, in order of first appearance (the
	 * documented ones when there is no row), then each path of the rows'
	 * "properties" (the query's "properties" list) */
	static const char *const dflt[] = {"ts", "ts_ms", "event", "pid"};
	const char **keys = NULL;
	size_t nkeys = 0;
	for (size_t k = 0; k < TD_ARRAY_LEN(dflt) && n == 0; k++) {
		keys = td_realloc(keys, (nkeys + 1) * sizeof(*keys));
		keys[nkeys++] = dflt[k];
	}
	const char **pkeys = NULL;
	size_t npkeys = 0;
	cJSON_ArrayForEach(e, events)
	{
		cJSON_ArrayForEach(f, e)
		{
			bool props =
			    f->string && !strcmp(f->string, "properties") && cJSON_IsObject(f);
			const cJSON *p = props ? f->child : f;
			for (; p; p = props ? p->next : NULL) {
				const char ***ks = props ? &pkeys : &keys;
				size_t *nk = props ? &npkeys : &nkeys, k = 0;
				while (p->string && k < *nk && strcmp((*ks)[k], p->string) != 0)
					k++;
				if (p->string && k == *nk) {
					*ks = td_realloc(*ks, (*nk + 1) * sizeof(**ks));
					(*ks)[(*nk)++] = p->string;
				}
			}
		}
	}
	for (size_t k = 0; k < nkeys; k++)
		grid_col(g, keys[k]);
	for (size_t k = 0; k < npkeys; k++)
		grid_col(g, pkeys[k]);
	cJSON_ArrayForEach(e, events)
	{
		const cJSON *props = cJSON_IsObject(e) ? field(e, "properties") : NULL;
		for (size_t k = 0; k < nkeys; k++)
			cell_value(g, cJSON_IsObject(e) ? field(e, keys[k]) : NULL, QF_PLAIN);
		for (size_t k = 0; k < npkeys; k++)
			cell_value(g, cJSON_IsObject(props) ? field(props, pkeys[k]) : NULL,
				   QF_PLAIN);
	}
	free(keys);
	free(pkeys);
	if (cJSON_IsTrue(field(r, "has_more")))
		td_buf_printf(&g->notes,
			      "more events follow: run the query again with \"offset\": %.0f\n",
			      offset + n);
	return 0;
}

/* ------------------------------------------------------------ writers */

/* Appends with a sticky error: after the first failure nothing is added. */
struct qf_out {
	struct td_buf *b;
	int rc;
};

static void out_put(struct qf_out *o, const char *s, size_t n)
{
	if (!o->rc)
		o->rc = td_buf_append(o->b, s, n);
}

static void out_str(struct qf_out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

static void out_pad(struct qf_out *o, size_t n, char c)
{
	char sp[64];
	memset(sp, c, sizeof(sp));
	for (; n > sizeof(sp); n -= sizeof(sp))
		out_put(o, sp, sizeof(sp));
	out_put(o, sp, n);
}

static void table_cell(struct qf_out *o, const char *s, size_t width, bool right, bool last)
{
	size_t w = text_width(s), pad = width > w ? width - w : 0;
	if (right)
		out_pad(o, pad, ' ');
	out_str(o, s);
	if (!right && !last)
		out_pad(o, pad, ' ');
	if (!last)
		out_put(o, "  ", 2);
}

static int write_table(const struct qf_grid *g, struct td_buf *out)
{
	struct qf_out o = {out, 0};
	size_t nrows = g->ncols ? g->ncells / g->ncols : 0;
	size_t *width = td_calloc(g->ncols + 1, sizeof(*width));
	bool *right = td_calloc(g->ncols + 1, sizeof(*right));
	for (size_t c = 0; c < g->ncols; c++) {
		width[c] = text_width(g->head[c]);
		bool any_right = false, any_left = false;
		for (size_t r = 0; r < nrows; r++) {
			const struct qf_cell *cell = &g->cells[r * g->ncols + c];
			width[c] = TD_MAX(width[c], cell->text ? text_width(cell->text) : 1);
			any_right |= cell->text && cell->right;
			any_left |= cell->text && !cell->right;
		}
		right[c] = any_right && !any_left;
	}
	if (g->title.len) {
		out_put(&o, g->title.data, g->title.len);
		out_put(&o, "\n\n", 2);
	}
	for (size_t c = 0; c < g->ncols; c++)
		table_cell(&o, g->head[c], width[c], right[c], c + 1 == g->ncols);
	out_put(&o, "\n", 1);
	for (size_t c = 0; c < g->ncols; c++) {
		out_pad(&o, width[c], '-');
		if (c + 1 < g->ncols)
			out_put(&o, "  ", 2);
	}
	out_put(&o, "\n", 1);
	for (size_t r = 0; r < nrows; r++) {
		for (size_t c = 0; c < g->ncols; c++) {
			const char *t = g->cells[r * g->ncols + c].text;
			table_cell(&o, t ? t : "-", width[c], right[c], c + 1 == g->ncols);
		}
		out_put(&o, "\n", 1);
	}
	if (g->notes.len) {
		out_put(&o, "\n", 1);
		out_put(&o, g->notes.data, g->notes.len);
	}
	free(width);
	free(right);
	return o.rc;
}

static void csv_field(struct qf_out *o, const char *s)
{
	if (!o->rc)
		o->rc = td_buf_csv_field(o->b, s, strlen(s));
}

static int write_csv(const struct qf_grid *g, struct td_buf *out)
{
	struct qf_out o = {out, 0};
	for (size_t c = 0; c < g->ncols; c++) {
		if (c)
			out_put(&o, ",", 1);
		csv_field(&o, g->head[c]);
	}
	out_put(&o, "\r\n", 2);
	for (size_t i = 0; i < g->ncells; i++) {
		const char *t = g->cells[i].text;
		csv_field(&o, t ? t : "");
		out_put(&o, (i + 1) % g->ncols ? "," : "\r\n", (i + 1) % g->ncols ? 1 : 2);
	}
	return o.rc;
}

/* ------------------------------------------------------------ entry points */

int qformat_from_name(const char *name, enum qformat *out)
{
	static const char *const names[] = {"json", "table", "csv"};
	for (size_t i = 0; i < TD_ARRAY_LEN(names); i++)
		if (!strcmp(name, names[i])) {
			*out = (enum qformat)i;
			return 0;
		}
	return TD_EINVAL;
}

int qformat_render(const char *json, size_t len, enum qformat fmt, struct td_buf *out,
		   struct td_buf *notes, char *err, size_t errcap)
{
	static const struct {
		const char *kind;
		int (*build)(struct qf_grid *g, const cJSON *r);
	} kinds[] = {{"trends", build_trends},	     {"funnel", build_funnel},
		     {"retention", build_retention}, {"paths", build_paths},
		     {"events", build_events},	     {"attribution", build_attribution}};
	if (errcap)
		err[0] = '\0';
	if (fmt == QFORMAT_JSON) {
		int rc = td_buf_append(out, json, len);
		if (!rc && (len == 0 || json[len - 1] != '\n'))
			rc = td_buf_putc(out, '\n');
		return rc;
	}
	cJSON *root = cJSON_ParseWithLength(json, len);
	const char *kind = field_str(root, "kind");
	if (!cJSON_IsObject(root) || !kind) {
		snprintf(err, errcap, "not a query result (a JSON object with a \"kind\")");
		cJSON_Delete(root);
		return TD_EPARSE;
	}
	struct qf_grid g;
	grid_init(&g, fmt == QFORMAT_CSV);
	int rc = TD_EPARSE;
	size_t i = 0;
	while (i < TD_ARRAY_LEN(kinds) && strcmp(kinds[i].kind, kind) != 0)
		i++;
	if (i < TD_ARRAY_LEN(kinds))
		rc = kinds[i].build(&g, root);
	if (rc) {
		snprintf(err, errcap, "not a query result: %s result without its fields", kind);
		if (i == TD_ARRAY_LEN(kinds))
			snprintf(err, errcap, "not a query result: unknown kind \"%s\"", kind);
		goto out;
	}
	if (g.csv) {
		rc = write_csv(&g, out);
		if (!rc && notes && g.notes.len)
			rc = td_buf_append(notes, g.notes.data, g.notes.len);
	} else {
		rc = write_table(&g, out);
	}
out:
	grid_release(&g);
	cJSON_Delete(root);
	return rc;
}
