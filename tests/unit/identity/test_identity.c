/*
 * test_identity.c - identity resolution as a table of scenarios.
 *
 * Each scenario is a short sequence of messages in a small notation and what
 * identity.h's rules say must come of it: which messages share a canonical
 * person, how many person ids, merges, conflicts (per class) and refused
 * values there are and, for some, a person's identifiers, its merge and
 * conflict history, and identity_find answers. Plus persistence (reopen, cut
 * at an LSN, read-only, torn tail, too few persons), the published views of
 * canonical[] and a few edges of the message buffer.
 *
 * Message notation: the call type (track, page, screen, identify, alias,
 * group; only group changes anything), then key=value pairs, a value quoted
 * with '...' or "..." when it holds spaces ('' is the empty value):
 *   user= anon= prev=        userId, anonymousId, previousId
 *   email= phone=            traits.email, traits.phone
 *   trait.<name>=            traits.<name>
 *   ctx.<name>=              context.traits.<name>
 *   ext=<type>:<id>[,...]    context.externalIds, objects {"id", "type"}
 *   extjson=<text>           context.externalIds as raw JSON text
 *   ts=<ms> mid=<id> nomid   time and messageId; the defaults are
 *                            BASE_TS + 1000 * index and "m<index>"
 * Fields go into the message in the order written (the order within a class
 * is the message's). Message i has LSN i + 1.
 *
 * Expectations:
 *   persons  "0 1 | 2": messages 0 and 1 share a canonical person, message 2
 *            has another; every message is listed once;
 *   history  "<k>: @<i> merge <kept> <merged>" or
 *            "<k>: @<i> conflict <class> <kept> <merged>": the history of
 *            message k's person, all of it, oldest first; "<k>:" alone: none.
 *            The LSN, time and messageId are checked against message i, the
 *            person ids against the persons before and after it;
 *   ids      "<k>: <type>:<value> ...": the identifiers of message k's person,
 *            oldest first (their classes follow from the types);
 *   find     identity_find(type, value) gives message msg's person, or
 *            IDENTITY_NONE when msg is -1.
 */
#include "base/buf.h"
#include "base/td.h"
#include "identity/identity.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXM	24 /* messages of a scenario */
#define MAXH	8  /* history lines */
#define MAXI	4  /* identifier lists */
#define MAXF	8  /* lookups */
#define BASE_TS 1700000000000LL
#define NONE	(-1)

struct lookup {
	const char *type, *value;
	int msg; /* NONE: IDENTITY_NONE */
};

struct scenario {
	const char *name;
	const char *config; /* NULL: defaults; else "limit.<class>=N priority=<c>,...
			       traits=<n>,... blocked=<v>,..." */
	const char *msgs[MAXM];
	const char *persons;
	uint32_t pids; /* person ids handed out; 0: not checked */
	uint64_t merges;
	/* "<class>=N ...", counted by the class whose limit was hit (the
	   class a conflict event names), not the left-out identifier's; NULL:
	   none */
	const char *conflicts;
	uint64_t refused;
	const char *history[MAXH];
	const char *ids[MAXI];
	struct lookup find[MAXF];
};

static const struct scenario scenarios[] = {
    {
	.name = "anonymous events, then login: all one person",
	.msgs = {"track anon=a1", "page anon=a1", "identify user=u1 anon=a1", "track user=u1",
		 "track anon=a1"},
	.persons = "0 1 2 3 4",
	/* the first identifier (user_id:u1) is new: it joins a1's person */
	.pids = 1,
	.history = {"0:"},
	.ids = {"0: anonymous_id:a1 user_id:u1"},
	.find = {{"user_id", "u1", 0}, {"anonymous_id", "a1", 0}},
    },
    {
	.name = "login on two devices: two anonymousIds, one userId, one person",
	.msgs = {"track anon=a1", "identify user=u1 anon=a1", "track anon=a2",
		 "identify user=u1 anon=a2", "track anon=a1", "track anon=a2", "track user=u1"},
	.persons = "0 1 2 3 4 5 6",
	/* the first login links, the second merges the phone's person */
	.pids = 2,
	.merges = 1,
	.history = {"0: @3 merge user_id:u1 anonymous_id:a2"},
	.ids = {"2: anonymous_id:a1 user_id:u1 anonymous_id:a2"},
    },
    {
	.name = "shared device: a1 stays with u1, u2's events go to u2",
	.msgs = {"identify user=u1 anon=a1", "track anon=a1", "identify user=u2 anon=a1",
		 "track anon=a1", "track user=u2", "track user=u2 anon=a1 nomid", "track user=u1"},
	.persons = "0 1 3 6 | 2 4 5",
	.pids = 2,
	.conflicts = "user_id=2",
	.history = {"2: @2 conflict user_id user_id:u2 anonymous_id:a1",
		    "2: @5 conflict user_id user_id:u2 anonymous_id:a1", "0:"},
	.ids = {"0: user_id:u1 anonymous_id:a1", "2: user_id:u2"},
	.find = {{"anonymous_id", "a1", 0}, {"user_id", "u2", 2}},
    },
    {
	.name = "email match: same address in other case and spacing links",
	.msgs = {"track anon=a1", "identify anon=a1 email=X@Y.com", "track anon=a2",
		 "identify anon=a2 email=' x@y.COM '", "track anon=a3 ctx.email='X@Y.COM'",
		 "track anon=a4 ctx.email=other@y.com"},
	.persons = "0 1 2 3 4 | 5",
	.pids = 3,
	.merges = 1,
	.history = {"0: @3 merge email:x@y.com anonymous_id:a2"},
	/* oldest first across the merges */
	.ids = {"0: anonymous_id:a1 email:x@y.com anonymous_id:a2 anonymous_id:a3"},
	.find = {{"email", " X@y.Com ", 0}, {"email", "x@y.com", 0}, {"email", "y.com", NONE}},
    },
    {
	.name = "alias from anonymousIds: previousId names the anonymous_id",
	.msgs = {"track anon=a1", "alias prev=a1 user=u1", "track user=u1", "track anon=a2",
		 "alias prev=a2 user=u1", "alias prev=a9 user=u3", "track anon=a9",
		 "track user=u3"},
	.persons = "0 1 2 3 4 | 5 6 7",
	/* a1 (u1 joins it), a2, u3's new person (a9 created in it) */
	.pids = 3,
	.merges = 1,
	.history = {"0: @4 merge user_id:u1 anonymous_id:a2", "5:"},
	.ids = {"5: user_id:u3 anonymous_id:a9"},
	.find = {{"anonymous_id", "a9", 5}, {"user_id", "a9", NONE}},
    },
    {
	.name = "alias user to user, userId first: u2's new person cannot take u1 (limit 1)",
	.msgs = {"identify user=u1 anon=a1", "alias user=u2 prev=u1", "track user=u2",
		 "track user=u1", "track anon=a1"},
	.persons = "0 3 4 | 1 2",
	.pids = 2,
	.conflicts = "user_id=1",
	.history = {"1: @1 conflict user_id user_id:u2 user_id:u1", "0:"},
	.find = {{"anonymous_id", "u1", NONE}},
    },
    {
	.name = "alias user to user, previousId written first: the userId still leads",
	.msgs = {"identify user=u1 anon=a1", "alias prev=u1 user=u2", "track user=u2",
		 "track user=u1"},
	.persons = "0 3 | 1 2",
	.pids = 2,
	.conflicts = "user_id=1",
	.history = {"1: @1 conflict user_id user_id:u2 user_id:u1", "0:"},
	.ids = {"0: user_id:u1 anonymous_id:a1", "1: user_id:u2"},
    },
    {
	.name = "alias chain with two userIds allowed",
	.config = "limit.user_id=2",
	.msgs = {"identify user=u1 anon=a1", "alias prev=u1 user=u2", "track user=u2",
		 "alias prev=u2 user=u3", "track user=u3"},
	.persons = "0 1 2 | 3 4",
	/* u2 joins u1's person (room for two); u3 finds it full: a person of its own */
	.pids = 2,
	.conflicts = "user_id=1",
	.history = {"0:", "3: @3 conflict user_id user_id:u3 user_id:u2"},
	.ids = {"0: user_id:u1 anonymous_id:a1 user_id:u2", "3: user_id:u3"},
    },
    {
	.name = "built-in blocked values never link",
	.msgs = {"identify user=null anon=a1",
		 "identify user=null anon=a2",
		 "identify user=NULL anon=a3",
		 "identify user=undefined anon=a4",
		 "identify user=' Undefined' anon=a5",
		 "identify user=0 anon=a6",
		 "identify user=-1 anon=a7",
		 "identify user=anonymous anon=a8",
		 "identify user=Anonymous anon=a9",
		 "identify user=guest anon=a10",
		 "identify user=' GUEST ' anon=a11",
		 "identify user='' anon=a12",
		 "identify user='  ' anon=a13",
		 "track anon=null",
		 "track anon=null",
		 "track anon=Guest user=u1",
		 "track anon=gUeSt user=u2",
		 "identify anon=b1 email=null",
		 "identify anon=b2 email=NULL",
		 "identify anon=b3 ext=crm:null",
		 "identify anon=b4 ext='crm: null '",
		 "identify anon=b5 trait.email=' '"},
	.persons = "0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12 | 13 | 14 | 15 | 16 | "
		   "17 | 18 | 19 | 20 | 21",
	.pids = 22,
	.refused = 22,
	.find = {{"user_id", "null", NONE},
		 {"anonymous_id", "null", NONE},
		 {"user_id", "", NONE},
		 {"crm", "null", NONE},
		 {"user_id", "u1", 15}},
    },
    {
	.name = "configured blocked values never link",
	.config = "blocked=unknown,n/a,test@example.com",
	.msgs = {"identify user=unknown anon=a1", "identify user=unknown anon=a2",
		 "identify user=n/a anon=a3", "identify user=n/a anon=a4",
		 "identify anon=a5 email=test@example.com",
		 "identify anon=a6 email=test@example.com", "identify user=known anon=a7",
		 "identify user=known anon=a8"},
	.persons = "0 | 1 | 2 | 3 | 4 | 5 | 6 7",
	.pids = 7,
	.refused = 6,
	.find = {{"user_id", "unknown", NONE}, {"email", "test@example.com", NONE}},
    },
    {
	.name = "configured trait identifiers, from traits and context.traits",
	.config = "traits=hubspot_id,crm_id",
	.msgs = {"identify anon=a1 trait.hubspot_id=H1", "identify anon=a2 ctx.hubspot_id=H1",
		 "identify anon=a3 trait.other_id=H1", "identify anon=a4 trait.other_id=H1",
		 "identify anon=a5 trait.crm_id=C1 trait.hubspot_id=H2",
		 "identify anon=a6 trait.hubspot_id=h1", "identify anon=a7 trait.hubspot_id=null",
		 "group anon=a8 trait.hubspot_id=H1"},
	/* only email is lowercased: h1 is not H1 */
	.persons = "0 1 | 2 | 3 | 4 | 5 | 6 | 7",
	.pids = 7,
	.refused = 1,
	.ids = {"0: hubspot_id:H1 anonymous_id:a1 anonymous_id:a2",
		"4: crm_id:C1 hubspot_id:H2 anonymous_id:a5"},
	.find = {{"hubspot_id", "H1", 0}, {"other_id", "H1", NONE}, {"crm_id", "C1", 4}},
    },
    {
	.name = "trait identifiers are not identifiers without configuration",
	.msgs = {"identify anon=a1 trait.hubspot_id=H1", "identify anon=a2 trait.hubspot_id=H1"},
	.persons = "0 | 1",
	.pids = 2,
	.find = {{"hubspot_id", "H1", NONE}},
    },
    {
	.name = "externalIds: own types, and email/phone/user_id/anonymous_id keep their class",
	.msgs = {"track anon=a1 ext=crm:77", "track anon=a2 ext=crm:77",
		 "track anon=a3 ext=shop:77", "identify anon=a4 email=Z@Q.com",
		 "track anon=a5 ext='email: z@q.COM '", "track anon=a6 ext=user_id:u9",
		 "track user=u9",
		 "track anon=a7 extjson='[{\"type\":\"crm\",\"id\":\"88\"},"
		 "{\"id\":\"99\",\"type\":\"shop\"}]'",
		 "track anon=a8 ext=shop:99", "track anon=a9 ext=crm:88",
		 "track anon=a10 ext='phone:+1 (555) 010-2000'",
		 "identify anon=a11 phone='001 555 010 2000'",
		 "track ext=anonymous_id:a1 anon=a12"},
	.persons = "0 1 12 | 2 | 3 4 | 5 6 | 7 8 9 | 10 11",
	.pids = 6,
	.ids = {"0: crm:77 anonymous_id:a1 anonymous_id:a2 anonymous_id:a12",
		"3: email:z@q.com anonymous_id:a4 anonymous_id:a5",
		"7: crm:88 shop:99 anonymous_id:a7 anonymous_id:a8 anonymous_id:a9",
		"5: user_id:u9 anonymous_id:a6"},
	.find = {{"crm", "77", 0},
		 {"shop", "77", 2},
		 {"email", "Z@q.com", 3},
		 {"phone", "+1 555 010 2000", 10},
		 {"crm", "99", NONE},
		 {"user_id", "u9", 5}},
    },
    {
	.name = "a group call's traits describe the account and never link",
	.msgs = {"group anon=a1 email=corp@x.com", "group anon=a2 email=corp@x.com",
		 "group anon=a3 phone='+1 555 010 9999'", "group anon=a4 phone='+1 555 010 9999'",
		 "group user=u1 ctx.email=me@x.com", "identify anon=a5 email=me@x.com"},
	/* context.traits are the person's, also in a group call */
	.persons = "0 | 1 | 2 | 3 | 4 5",
	.pids = 5,
	.find = {{"email", "corp@x.com", NONE},
		 {"phone", "+15550109999", NONE},
		 {"email", "me@x.com", 4}},
    },
    {
	.name = "a 6th anonymousId is a conflict (default limit 5)",
	.msgs = {"identify user=u1 anon=a1", "identify user=u1 anon=a2", "identify user=u1 anon=a3",
		 "identify user=u1 anon=a4", "identify user=u1 anon=a5", "identify user=u1 anon=a6",
		 "track anon=a6", "track user=u1 anon=a6", "track anon=a5"},
	.persons = "0 1 2 3 4 5 7 8 | 6",
	.pids = 2,
	.conflicts = "anonymous_id=2",
	.history = {"0: @5 conflict anonymous_id user_id:u1 anonymous_id:a6",
		    "0: @7 conflict anonymous_id user_id:u1 anonymous_id:a6", "6:"},
	.ids = {"0: user_id:u1 anonymous_id:a1 anonymous_id:a2 anonymous_id:a3 anonymous_id:a4 "
		"anonymous_id:a5",
		"6: anonymous_id:a6"},
	.find = {{"anonymous_id", "a6", 6}},
    },
    {
	.name = "a merge that would give two userIds is a conflict",
	.msgs = {"identify user=u1 email=e1@x.com", "identify user=u2 phone='+1 555 010 2000'",
		 "identify anon=a1 email=E1@x.com phone='001 555 010 2000'", "track anon=a1"},
	.persons = "0 2 3 | 1",
	.pids = 2,
	.conflicts = "user_id=1",
	.history = {"0: @2 conflict user_id email:e1@x.com phone:+15550102000", "1:"},
	.ids = {"0: user_id:u1 email:e1@x.com anonymous_id:a1"},
    },
    {
	.name = "a merge that would give six anonymousIds is a conflict",
	.msgs = {"identify email=p@x.com anon=b1", "identify email=p@x.com anon=b2",
		 "identify phone=5550100001 anon=c1", "identify phone=5550100001 anon=c2",
		 "track ctx.email=p@x.com ctx.phone=5550100001", "identify user=u7 anon=d1",
		 "identify user=u7 anon=d2", "track ctx.email=p@x.com user=u7", "track anon=d1",
		 "track anon=b1"},
	.persons = "0 1 2 3 4 9 | 5 6 7 8",
	.pids = 3,
	.merges = 1,
	.conflicts = "anonymous_id=1",
	.history = {"5: @7 conflict anonymous_id user_id:u7 email:p@x.com",
		    "0: @4 merge email:p@x.com phone:5550100001"},
    },
    {
	.name = "priority: email before anonymousId, phone before externalIds",
	.msgs = {"identify user=u1 email=e@x.com", "identify user=u2 anon=a1",
		 "track anon=a1 ctx.email=E@x.com", "track anon=a1",
		 "identify phone=5550100002 anon=a9", "track ext=crm:1 anon=a8",
		 "track ext=crm:1 ctx.phone=5550100002"},
	.persons = "0 2 | 1 3 | 4 5 6",
	.pids = 4,
	.merges = 1,
	.conflicts = "user_id=1",
	.history = {"0: @2 conflict user_id email:e@x.com anonymous_id:a1",
		    "4: @6 merge phone:5550100002 crm:1"},
	.ids = {"0: user_id:u1 email:e@x.com", "1: user_id:u2 anonymous_id:a1"},
    },
    {
	.name = "configured priority: anonymousId first",
	.config = "priority=anonymous_id,email,user_id,phone,external,trait",
	.msgs = {"identify user=u1 email=e@x.com", "identify user=u2 anon=a1",
		 "track anon=a1 ctx.email=E@x.com", "track anon=a1"},
	.persons = "0 | 1 2 3",
	.pids = 2,
	.conflicts = "user_id=1",
	.history = {"1: @2 conflict user_id anonymous_id:a1 email:e@x.com", "0:"},
	.ids = {"0: email:e@x.com user_id:u1", "1: anonymous_id:a1 user_id:u2"},
    },
    {
	.name = "configured limits: two userIds, two anonymousIds",
	.config = "limit.user_id=2 limit.anonymous_id=2",
	.msgs = {"identify user=u1 anon=a1", "identify user=u2 anon=a1", "track user=u1 anon=a2",
		 "track user=u1 anon=a3", "track anon=a3", "identify user=u1 anon=a3",
		 "identify user=u4 anon=a3"},
	.persons = "0 1 2 3 5 | 4 6",
	.pids = 2,
	.conflicts = "anonymous_id=2",
	.history = {"0: @3 conflict anonymous_id user_id:u1 anonymous_id:a3",
		    "0: @5 conflict anonymous_id user_id:u1 anonymous_id:a3", "4:"},
	.ids = {"0: user_id:u1 anonymous_id:a1 user_id:u2 anonymous_id:a2",
		"4: anonymous_id:a3 user_id:u4"},
    },
    {
	.name = "out of order: the userId's track before the identify that links",
	.msgs = {"track user=u1 ts=5000", "track anon=a1 ts=1000",
		 "identify user=u1 anon=a1 ts=3000 mid=late-identify", "track anon=a1 ts=2000",
		 "identify user=u2 anon=a2 ts=9000", "track anon=a2 ts=8000",
		 "track user=u2 ts=7000"},
	.persons = "0 1 2 3 | 4 5 6",
	.pids = 3,
	.merges = 1,
	.history = {"0: @2 merge user_id:u1 anonymous_id:a1", "4:"},
	.ids = {"0: user_id:u1 anonymous_id:a1"},
    },
    {
	.name = "messages without a usable identifier get a person each",
	.msgs = {"track", "track", "page anon=null", "identify email=nope phone=12",
		 "group email=x@y.com", "screen anon=''"},
	.persons = "0 | 1 | 2 | 3 | 4 | 5",
	.pids = 6,
	.refused = 4,
    },
    {
	.name = "email and phone normalization; malformed values refused",
	.msgs = {"identify anon=a1 phone='+1 (555) 010-2000'",
		 "identify anon=a2 phone='001 555 010 2000'",
		 "identify anon=a3 phone='555 010 2000'", "identify anon=a4 phone=123456",
		 "identify anon=a5 phone=1234567890123456", "identify anon=a6 phone=555-0102",
		 "identify anon=a7 phone=5550102", "identify anon=a8 phone=+123456789012345",
		 "identify anon=a9 phone=555-CALL", "identify anon=a10 email=foo",
		 "identify anon=a11 email=@x.com", "identify anon=a12 email=a@",
		 "identify anon=a13 email=a@b@c.com", "identify anon=a14 email=' Ann@Example.COM '",
		 "identify anon=a15 ctx.email=ann@example.com", "identify user=U1 anon=a16",
		 "identify user=u1 anon=a17", "identify anon=a18 email=a@b"},
	.persons = "0 1 | 2 | 3 | 4 | 5 6 | 7 | 8 | 9 | 10 | 11 | 12 | 13 14 | 15 | 16 | 17",
	.pids = 15,
	.refused = 7,
	.ids = {"0: phone:+15550102000 anonymous_id:a1 anonymous_id:a2",
		"2: phone:5550102000 anonymous_id:a3",
		"13: email:ann@example.com anonymous_id:a14 anonymous_id:a15",
		"7: phone:+123456789012345 anonymous_id:a8"},
	.find = {{"phone", "+1 555-010-2000", 0},
		 {"phone", "00 1 555 0102000", 0},
		 {"phone", "(555) 010 2000", 2},
		 {"email", "ANN@example.com ", 13},
		 {"phone", "123456", NONE},
		 {"email", "foo", NONE},
		 {"user_id", "U1", 15},
		 {"email", "A@B", 17}},
    },
};

/* One parsed message: the identity_msg and the strings it points to. */
struct tmsg {
	struct identity_msg m;
	char mid[64];
};

static void add_ext(struct identity_msg *m, const char *list, const char *text)
{
	struct td_buf b;
	td_buf_init(&b, 4096);
	td_buf_putc(&b, '[');
	char *copy = strdup(list), *save = NULL;
	bool first = true;
	for (char *e = strtok_r(copy, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(e, ':');
		cr_assert(colon, "ext needs type:id in \"%s\"", text);
		*colon = '\0';
		td_buf_printf(&b, "%s{\"id\":", first ? "" : ",");
		td_buf_json_str(&b, colon + 1);
		td_buf_printf(&b, ",\"type\":");
		td_buf_json_str(&b, e);
		td_buf_putc(&b, '}');
		first = false;
	}
	td_buf_putc(&b, ']');
	identity_msg_add(m, IDENTITY_F_EXTERNAL_IDS, NULL, 0, b.data, b.len);
	free(copy);
	td_buf_release(&b);
}

static void parse_msg(const char *text, size_t idx, struct tmsg *t)
{
	struct identity_msg *m = &t->m;
	identity_msg_reset(m);
	m->lsn = idx + 1;
	m->ts = BASE_TS + 1000 * (int64_t)idx;
	snprintf(t->mid, sizeof(t->mid), "m%zu", idx);
	bool has_mid = true;

	static const char *const kinds[] = {"track",	"page",	 "screen",
					    "identify", "alias", "group"};
	const char *p = text;
	size_t klen = strcspn(p, " ");
	bool known = false;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		known |= strlen(kinds[i]) == klen && !memcmp(kinds[i], p, klen);
	cr_assert(known, "unknown call type in \"%s\"", text);
	m->is_group = klen == 5 && !memcmp(p, "group", 5);
	p += klen;

	for (;;) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		char key[64], val[1024];
		size_t kl = strcspn(p, "= ");
		cr_assert_lt(kl, sizeof(key), "key too long in \"%s\"", text);
		memcpy(key, p, kl);
		key[kl] = '\0';
		p += kl;
		size_t vl = 0;
		if (*p == '=') {
			p++;
			const char *v = p;
			if (*p == '\'' || *p == '"') {
				const char *end = strchr(p + 1, *p);
				cr_assert(end, "unterminated quote in \"%s\"", text);
				v = p + 1;
				vl = (size_t)(end - v);
				p = end + 1;
			} else {
				vl = strcspn(p, " ");
				p += vl;
			}
			cr_assert_lt(vl, sizeof(val));
			memcpy(val, v, vl);
		}
		val[vl] = '\0';

		if (!strcmp(key, "user"))
			identity_msg_add(m, IDENTITY_F_USER_ID, NULL, 0, val, vl);
		else if (!strcmp(key, "anon"))
			identity_msg_add(m, IDENTITY_F_ANON_ID, NULL, 0, val, vl);
		else if (!strcmp(key, "prev"))
			identity_msg_add(m, IDENTITY_F_PREVIOUS_ID, NULL, 0, val, vl);
		else if (!strcmp(key, "email") || !strcmp(key, "phone"))
			identity_msg_add(m, IDENTITY_F_TRAIT, key, kl, val, vl);
		else if (!strncmp(key, "trait.", 6))
			identity_msg_add(m, IDENTITY_F_TRAIT, key + 6, kl - 6, val, vl);
		else if (!strncmp(key, "ctx.", 4))
			identity_msg_add(m, IDENTITY_F_CONTEXT_TRAIT, key + 4, kl - 4, val, vl);
		else if (!strcmp(key, "ext"))
			add_ext(m, val, text);
		else if (!strcmp(key, "extjson"))
			identity_msg_add(m, IDENTITY_F_EXTERNAL_IDS, NULL, 0, val, vl);
		else if (!strcmp(key, "ts"))
			m->ts = strtoll(val, NULL, 10);
		else if (!strcmp(key, "mid"))
			snprintf(t->mid, sizeof(t->mid), "%.*s", (int)sizeof(t->mid) - 1, val);
		else if (!strcmp(key, "nomid"))
			has_mid = false;
		else
			cr_assert_fail("unknown key \"%s\" in \"%s\"", key, text);
	}
	if (has_mid) {
		m->message_id = t->mid;
		m->message_id_len = strlen(t->mid);
	} else {
		t->mid[0] = '\0';
		m->message_id = NULL;
		m->message_id_len = 0;
	}
}

/* The config notation of struct scenario; the strings point into store. */
static void parse_config(const char *text, struct identity_config *c, char *store, size_t cap)
{
	identity_config_default(c);
	if (!text)
		return;
	cr_assert_lt(strlen(text), cap);
	snprintf(store, cap, "%s", text);
	char *save = NULL;
	for (char *tok = strtok_r(store, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');
		cr_assert(eq, "config \"%s\"", text);
		*eq = '\0';
		char *v = eq + 1, *save2 = NULL;
		if (!strncmp(tok, "limit.", 6)) {
			int cls = identity_class_parse(tok + 6);
			cr_assert_geq(cls, 0, "config \"%s\"", text);
			c->limit[cls] = (uint8_t)strtol(v, NULL, 10);
		} else if (!strcmp(tok, "priority")) {
			size_t i = 0;
			for (char *x = strtok_r(v, ",", &save2); x;
			     x = strtok_r(NULL, ",", &save2)) {
				int cls = identity_class_parse(x);
				cr_assert(cls >= 0 && i < IDENTITY_NCLASSES, "config \"%s\"", text);
				c->priority[i++] = (uint8_t)cls;
			}
			cr_assert_eq(i, IDENTITY_NCLASSES, "config \"%s\"", text);
		} else if (!strcmp(tok, "traits")) {
			for (char *x = strtok_r(v, ",", &save2); x; x = strtok_r(NULL, ",", &save2))
				c->traits[c->ntraits++] = x;
		} else if (!strcmp(tok, "blocked")) {
			for (char *x = strtok_r(v, ",", &save2); x; x = strtok_r(NULL, ",", &save2))
				c->blocked[c->nblocked++] = x;
		} else {
			cr_assert_fail("config \"%s\"", text);
		}
	}
}

static struct identity *open_mem(const struct identity_config *c)
{
	struct identity *g = NULL;
	char err[256] = "";
	int rc = identity_open(&g, NULL, c, UINT64_MAX, 0, false, err, sizeof(err));
	cr_assert_eq(rc, 0, "identity_open: %d %s", rc, err);
	cr_assert_not_null(g);
	return g;
}

static uint32_t canon(struct identity *g, uint32_t pid)
{
	return identity_canonical(g, pid);
}

/* "type:value" split at the first ':'. */
static uint32_t find_typed(struct identity *g, const char *typed)
{
	char type[IDENTITY_MAX_TYPE + 1];
	const char *colon = strchr(typed, ':');
	cr_assert(colon && (size_t)(colon - typed) <= IDENTITY_MAX_TYPE, "\"%s\"", typed);
	memcpy(type, typed, (size_t)(colon - typed));
	type[colon - typed] = '\0';
	return identity_find(g, type, colon + 1);
}

/* Expected history lines, parsed. */
struct xev {
	int k;	/* the message whose person's history this is */
	int at; /* the message that caused it; -1: "<k>:" (no history) */
	int kind;
	int cls;
	char kept[400], merged[400];
	uint32_t before; /* the person of `merged` before message `at` */
};

static size_t parse_history(const struct scenario *sc, struct xev *xe)
{
	size_t n = 0;
	for (size_t i = 0; i < MAXH && sc->history[i]; i++) {
		const char *h = sc->history[i];
		struct xev *x = &xe[n++];
		memset(x, 0, sizeof(*x));
		char kind[16] = "", a[400] = "", b[400] = "", c[400] = "";
		int got = sscanf(h, "%d: @%d %15s %399s %399s %399s", &x->k, &x->at, kind, a, b, c);
		if (got == 1) {
			x->at = -1;
			continue;
		}
		if (!strcmp(kind, "merge")) {
			cr_assert_eq(got, 5, "%s: history \"%s\"", sc->name, h);
			x->kind = IDENTITY_EV_MERGE;
			snprintf(x->kept, sizeof(x->kept), "%s", a);
			snprintf(x->merged, sizeof(x->merged), "%s", b);
		} else {
			cr_assert(got == 6 && !strcmp(kind, "conflict"), "%s: history \"%s\"",
				  sc->name, h);
			x->kind = IDENTITY_EV_CONFLICT;
			x->cls = identity_class_parse(a);
			cr_assert_geq(x->cls, 0, "%s: history \"%s\"", sc->name, h);
			snprintf(x->kept, sizeof(x->kept), "%s", b);
			snprintf(x->merged, sizeof(x->merged), "%s", c);
		}
	}
	return n;
}

/* Actual history events, copied out of the callback. */
struct aev {
	int kind;
	uint64_t lsn;
	int64_t ts;
	char mid[64], kept[400], merged[400];
	int cls;
	uint32_t winner, loser;
};
struct aevs {
	struct aev ev[32];
	size_t n;
};

static void collect_event(void *ctx, const struct identity_event *e)
{
	struct aevs *a = ctx;
	cr_assert_lt(a->n, 32, "history too long");
	struct aev *x = &a->ev[a->n++];
	x->kind = e->kind;
	x->lsn = e->lsn;
	x->ts = e->ts;
	cr_assert_not_null(e->message_id);
	cr_assert_not_null(e->kept);
	cr_assert_not_null(e->merged);
	snprintf(x->mid, sizeof(x->mid), "%s", e->message_id);
	snprintf(x->kept, sizeof(x->kept), "%s", e->kept);
	snprintf(x->merged, sizeof(x->merged), "%s", e->merged);
	x->cls = e->cls;
	x->winner = e->winner;
	x->loser = e->loser;
}

struct idlist {
	struct td_buf b;
	const struct identity_config *cfg;
	const char *who;
};

static int class_of_type(const char *type, const struct identity_config *cfg)
{
	static const char *const own[] = {"user_id", "email", "phone", "anonymous_id"};
	static const int cls[] = {IDENTITY_USER, IDENTITY_EMAIL, IDENTITY_PHONE, IDENTITY_ANON};
	for (size_t i = 0; i < 4; i++)
		if (!strcmp(type, own[i]))
			return cls[i];
	for (size_t i = 0; i < cfg->ntraits; i++)
		if (!strcmp(type, cfg->traits[i]))
			return IDENTITY_TRAIT;
	return IDENTITY_EXTERNAL;
}

static void collect_id(void *ctx, const char *type, const char *value, enum identity_class c)
{
	struct idlist *l = ctx;
	td_buf_printf(&l->b, "%s%s:%s", l->b.len ? " " : "", type, value);
	cr_expect_eq((int)c, class_of_type(type, l->cfg), "%s: %s:%s has class %s", l->who, type,
		     value, identity_class_name(c));
}

static void check_partition(const struct scenario *sc, struct identity *g, const uint32_t *pid,
			    size_t n)
{
	int group[MAXM];
	for (size_t i = 0; i < n; i++)
		group[i] = -1;
	int gi = 0;
	for (const char *p = sc->persons; *p;) {
		if (*p == ' ') {
			p++;
		} else if (*p == '|') {
			gi++;
			p++;
		} else {
			char *end;
			long k = strtol(p, &end, 10);
			cr_assert(end != p && k >= 0 && (size_t)k < n && group[k] < 0,
				  "%s: bad persons \"%s\"", sc->name, sc->persons);
			group[k] = gi;
			p = end;
		}
	}
	for (size_t i = 0; i < n; i++)
		cr_assert_geq(group[i], 0, "%s: message %zu missing from persons", sc->name, i);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++) {
			bool same = canon(g, pid[i]) == canon(g, pid[j]);
			cr_expect_eq(same, group[i] == group[j],
				     "%s: messages %zu and %zu should be %s persons (%u, %u)",
				     sc->name, i, j,
				     group[i] == group[j] ? "the same" : "different",
				     canon(g, pid[i]), canon(g, pid[j]));
		}
}

static void check_stats(const struct scenario *sc, struct identity *g)
{
	struct identity_stats st;
	identity_get_stats(g, &st);
	cr_expect_eq(st.pids, identity_npids(g), "%s: stats.pids", sc->name);
	if (sc->pids)
		cr_expect_eq(st.pids, sc->pids, "%s: %llu person ids, expected %u", sc->name,
			     (unsigned long long)st.pids, sc->pids);
	cr_expect_eq(st.merges, sc->merges, "%s: %llu merges, expected %llu", sc->name,
		     (unsigned long long)st.merges, (unsigned long long)sc->merges);
	cr_expect_eq(st.persons, st.pids - st.merges, "%s: persons = pids - merges", sc->name);
	cr_expect_eq(st.refused, sc->refused, "%s: %llu refused, expected %llu", sc->name,
		     (unsigned long long)st.refused, (unsigned long long)sc->refused);
	uint64_t want[IDENTITY_NCLASSES] = {0};
	if (sc->conflicts) {
		char buf[128];
		snprintf(buf, sizeof(buf), "%s", sc->conflicts);
		char *save = NULL;
		for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
			char *eq = strchr(t, '=');
			cr_assert(eq);
			*eq = '\0';
			int cls = identity_class_parse(t);
			cr_assert_geq(cls, 0);
			want[cls] = strtoull(eq + 1, NULL, 10);
		}
	}
	for (int c = 0; c < IDENTITY_NCLASSES; c++)
		cr_expect_eq(st.conflicts[c], want[c],
			     "%s: %llu conflicts of class %s, expected %llu", sc->name,
			     (unsigned long long)st.conflicts[c], identity_class_name(c),
			     (unsigned long long)want[c]);
}

static void check_history(const struct scenario *sc, struct identity *g, const struct tmsg *msg,
			  const uint32_t *pid, const struct xev *xe, size_t nx)
{
	bool done[MAXH] = {false};
	for (size_t i = 0; i < nx; i++) {
		if (done[i])
			continue;
		int k = xe[i].k;
		struct aevs *a = calloc(1, sizeof(*a));
		identity_person_history(g, canon(g, pid[k]), collect_event, a);
		size_t j = 0; /* index into a->ev */
		for (size_t e = i; e < nx; e++) {
			if (xe[e].k != k)
				continue;
			done[e] = true;
			const struct xev *x = &xe[e];
			if (x->at < 0)
				continue;
			if (j >= a->n) {
				cr_expect_fail("%s: history of message %d's person lacks \"%s\"",
					       sc->name, k, sc->history[e]);
				j++;
				continue;
			}
			const struct aev *ev = &a->ev[j++];
			const struct tmsg *t = &msg[x->at];
			const char *h = sc->history[e];
			cr_expect_eq(ev->kind, x->kind, "%s: \"%s\": kind %d", sc->name, h,
				     ev->kind);
			cr_expect_eq(ev->lsn, t->m.lsn, "%s: \"%s\": lsn %llu", sc->name, h,
				     (unsigned long long)ev->lsn);
			cr_expect_eq(ev->ts, t->m.ts, "%s: \"%s\": ts %lld", sc->name, h,
				     (long long)ev->ts);
			cr_expect_str_eq(ev->mid, t->mid, "%s: \"%s\": message_id \"%s\"", sc->name,
					 h, ev->mid);
			cr_expect_str_eq(ev->kept, x->kept, "%s: \"%s\": kept \"%s\"", sc->name, h,
					 ev->kept);
			cr_expect_str_eq(ev->merged, x->merged, "%s: \"%s\": merged \"%s\"",
					 sc->name, h, ev->merged);
			uint32_t here = canon(g, pid[x->at]);
			if (x->kind == IDENTITY_EV_MERGE) {
				cr_expect_neq(ev->winner, ev->loser, "%s: \"%s\"", sc->name, h);
				cr_expect(ev->winner < identity_npids(g) &&
					      ev->loser < identity_npids(g) &&
					      canon(g, ev->winner) == here &&
					      canon(g, ev->loser) == here,
					  "%s: \"%s\": winner %u and loser %u are not message %d's "
					  "person",
					  sc->name, h, ev->winner, ev->loser, x->at);
				cr_expect(
				    x->before != IDENTITY_NONE &&
					(ev->winner == x->before || ev->loser == x->before),
				    "%s: \"%s\": the merged person %u is neither winner %u nor "
				    "loser %u",
				    sc->name, h, x->before, ev->winner, ev->loser);
			} else {
				cr_expect_eq(ev->cls, x->cls, "%s: \"%s\": class %s", sc->name, h,
					     identity_class_name(ev->cls));
				cr_expect(ev->winner < identity_npids(g) &&
					      canon(g, ev->winner) == here,
					  "%s: \"%s\": person %u is not message %d's", sc->name, h,
					  ev->winner, x->at);
				if (x->before == IDENTITY_NONE)
					cr_expect_eq(ev->loser, IDENTITY_NONE,
						     "%s: \"%s\": the left-out identifier was new, "
						     "loser %u",
						     sc->name, h, ev->loser);
				else
					cr_expect(ev->loser < identity_npids(g) &&
						      canon(g, ev->loser) == canon(g, x->before),
						  "%s: \"%s\": loser %u, expected the person of %s",
						  sc->name, h, ev->loser, x->merged);
			}
		}
		cr_expect_eq(a->n, j,
			     "%s: history of message %d's person has %zu events, "
			     "expected %zu",
			     sc->name, k, a->n, j);
		free(a);
	}
}

static void check_ids(const struct scenario *sc, const struct identity_config *cfg,
		      struct identity *g, const uint32_t *pid, size_t n)
{
	for (size_t i = 0; i < MAXI && sc->ids[i]; i++) {
		const char *s = sc->ids[i];
		char *end;
		long k = strtol(s, &end, 10);
		cr_assert(end != s && *end == ':' && k >= 0 && (size_t)k < n, "%s: ids \"%s\"",
			  sc->name, s);
		const char *want = end + 1;
		while (*want == ' ')
			want++;
		struct idlist l = {.cfg = cfg, .who = sc->name};
		td_buf_init(&l.b, 1 << 16);
		identity_person_ids(g, canon(g, pid[k]), collect_id, &l);
		cr_expect_str_eq(l.b.len ? l.b.data : "", want,
				 "%s: message %ld's person has \"%s\", expected \"%s\"", sc->name,
				 k, l.b.len ? l.b.data : "", want);
		td_buf_release(&l.b);
	}
}

/* The parameters are indices: a test runs in another process, where the
 * table's pointers would not hold. */
#define NSCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))
static int scenario_index[NSCENARIOS];

ParameterizedTestParameters(identity, scenario)
{
	for (size_t i = 0; i < NSCENARIOS; i++)
		scenario_index[i] = (int)i;
	return cr_make_param_array(int, scenario_index, NSCENARIOS);
}

ParameterizedTest(int *index, identity, scenario)
{
	const struct scenario *sc = &scenarios[*index];
	struct identity_config cfg;
	char cfgstore[512];
	parse_config(sc->config, &cfg, cfgstore, sizeof(cfgstore));
	struct identity *g = open_mem(&cfg);

	struct xev xe[MAXH];
	size_t nx = parse_history(sc, xe);

	struct tmsg *msg = calloc(MAXM, sizeof(*msg));
	uint32_t pid[MAXM];
	size_t n = 0;
	while (n < MAXM && sc->msgs[n]) {
		parse_msg(sc->msgs[n], n, &msg[n]);
		for (size_t e = 0; e < nx; e++)
			if (xe[e].at == (int)n)
				xe[e].before = find_typed(g, xe[e].merged);
		uint32_t before = identity_npids(g);
		pid[n] = identity_resolve(g, &msg[n].m);
		cr_assert_lt(pid[n], identity_npids(g), "%s: message %zu got person %u of %u",
			     sc->name, n, pid[n], identity_npids(g));
		cr_assert_geq(identity_npids(g), before);
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t c = canon(g, pid[i]);
		cr_assert_eq(canon(g, c), c, "%s: canonical of a canonical", sc->name);
	}

	check_partition(sc, g, pid, n);
	check_stats(sc, g);
	check_history(sc, g, msg, pid, xe, nx);
	check_ids(sc, &cfg, g, pid, n);
	for (size_t i = 0; i < MAXF && sc->find[i].type; i++) {
		const struct lookup *l = &sc->find[i];
		uint32_t want = l->msg == NONE ? IDENTITY_NONE : canon(g, pid[l->msg]);
		uint32_t got = identity_find(g, l->type, l->value);
		cr_expect_eq(got, want, "%s: find(%s, \"%s\") = %u, expected %u", sc->name, l->type,
			     l->value, got, want);
	}
	free(msg);
	identity_close(g);
}

/* --- single-purpose tests ------------------------------------------------ */

static uint32_t resolve_text(struct identity *g, const char *text, size_t idx)
{
	struct tmsg *t = calloc(1, sizeof(*t));
	parse_msg(text, idx, t);
	uint32_t pid = identity_resolve(g, &t->m);
	cr_assert_lt(pid, identity_npids(g), "\"%s\"", text);
	free(t);
	return pid;
}

Test(identity, config_defaults_and_class_names)
{
	struct identity_config c;
	memset(&c, 0xab, sizeof(c));
	identity_config_default(&c);
	static const uint8_t prio[] = {IDENTITY_USER,	  IDENTITY_EMAIL, IDENTITY_PHONE,
				       IDENTITY_EXTERNAL, IDENTITY_TRAIT, IDENTITY_ANON};
	for (int i = 0; i < IDENTITY_NCLASSES; i++) {
		cr_assert_eq(c.limit[i], i == IDENTITY_USER ? 1 : 5, "limit of %d", i);
		cr_assert_eq(c.priority[i], prio[i], "priority %d", i);
	}
	cr_assert_eq(c.ntraits, 0);
	cr_assert_eq(c.nblocked, 0);

	static const char *const names[] = {"user_id",	"email", "phone",
					    "external", "trait", "anonymous_id"};
	for (int i = 0; i < IDENTITY_NCLASSES; i++) {
		cr_assert_str_eq(identity_class_name(i), names[i]);
		cr_assert_eq(identity_class_parse(names[i]), i);
	}
	cr_assert_eq(identity_class_parse("bogus"), -1);
	cr_assert_eq(identity_class_parse(""), -1);
}

Test(identity, value_length_limit)
{
	struct identity_config c;
	identity_config_default(&c);
	struct identity *g = open_mem(&c);
	char v256[IDENTITY_MAX_VALUE + 1], v257[IDENTITY_MAX_VALUE + 2];
	memset(v256, 'x', IDENTITY_MAX_VALUE);
	v256[IDENTITY_MAX_VALUE] = '\0';
	memset(v257, 'y', IDENTITY_MAX_VALUE + 1);
	v257[IDENTITY_MAX_VALUE + 1] = '\0';
	/* an email of exactly the limit once trimmed and lowercased */
	char e256[IDENTITY_MAX_VALUE + 8], e257[IDENTITY_MAX_VALUE + 8];
	snprintf(e256, sizeof(e256), "  %.*s@X.COM  ", IDENTITY_MAX_VALUE - 6, v256);
	snprintf(e257, sizeof(e257), "%.*s@x.com", IDENTITY_MAX_VALUE - 5, v257);

	struct identity_msg *m = calloc(1, sizeof(*m));
	uint32_t p[8];
	const char *vals[8] = {v256, v256, v257, v257, e256, e256, e257, e257};
	for (int i = 0; i < 8; i++) {
		identity_msg_reset(m);
		m->lsn = (uint64_t)i + 1;
		char anon[16];
		snprintf(anon, sizeof(anon), "a%d", i);
		if (i < 4)
			identity_msg_add(m, IDENTITY_F_USER_ID, NULL, 0, vals[i], strlen(vals[i]));
		else
			identity_msg_add(m, IDENTITY_F_TRAIT, "email", 5, vals[i], strlen(vals[i]));
		identity_msg_add(m, IDENTITY_F_ANON_ID, NULL, 0, anon, strlen(anon));
		p[i] = identity_resolve(g, m);
	}
	cr_assert_eq(canon(g, p[0]), canon(g, p[1]), "a userId of %d bytes links",
		     IDENTITY_MAX_VALUE);
	cr_assert_neq(canon(g, p[2]), canon(g, p[3]), "a userId of %d bytes is refused",
		      IDENTITY_MAX_VALUE + 1);
	cr_assert_eq(canon(g, p[4]), canon(g, p[5]), "an email of %d bytes when normalized links",
		     IDENTITY_MAX_VALUE);
	cr_assert_neq(canon(g, p[6]), canon(g, p[7]), "an email of %d bytes is refused",
		      IDENTITY_MAX_VALUE + 1);
	cr_assert_eq(identity_find(g, "user_id", v256), canon(g, p[0]));
	cr_assert_eq(identity_find(g, "user_id", v257), IDENTITY_NONE);
	cr_assert_eq(identity_find(g, "email", e256), canon(g, p[4]));
	cr_assert_eq(identity_find(g, "email", e257), IDENTITY_NONE);
	struct identity_stats st;
	identity_get_stats(g, &st);
	cr_assert_eq(st.refused, 4);
	cr_assert_eq(st.merges, 0);
	free(m);
	identity_close(g);
}

Test(identity, msg_add_copies_and_drops_past_capacity)
{
	struct identity_config c;
	identity_config_default(&c);
	struct identity *g = open_mem(&c);
	struct identity_msg *m = calloc(1, sizeof(*m));

	/* the value is copied: the caller's buffer may change afterwards */
	char val[8] = "a1";
	identity_msg_reset(m);
	m->lsn = 1;
	identity_msg_add(m, IDENTITY_F_ANON_ID, NULL, 0, val, 2);
	memcpy(val, "zz", 2);
	uint32_t p1 = identity_resolve(g, m);
	cr_assert_eq(identity_find(g, "anonymous_id", "a1"), canon(g, p1));
	cr_assert_eq(identity_find(g, "anonymous_id", "zz"), IDENTITY_NONE);

	/* the field after IDENTITY_MSG_FIELDS others is dropped */
	for (int last = 0; last < 2; last++) {
		identity_msg_reset(m);
		m->lsn = 2 + (uint64_t)last;
		int others = IDENTITY_MSG_FIELDS - 1 + last;
		for (int i = 0; i < others; i++) /* fields that name nothing */
			identity_msg_add(m, IDENTITY_F_EXTERNAL_IDS, NULL, 0, "[]", 2);
		const char *anon = last ? "dropped" : "kept";
		identity_msg_add(m, IDENTITY_F_ANON_ID, NULL, 0, anon, strlen(anon));
		uint32_t p = identity_resolve(g, m);
		cr_assert_lt(p, identity_npids(g));
		if (last)
			cr_assert_eq(identity_find(g, "anonymous_id", anon), IDENTITY_NONE);
		else
			cr_assert_eq(identity_find(g, "anonymous_id", anon), canon(g, p));
	}
	free(m);
	identity_close(g);
}

Test(identity, views_snapshot_canonical)
{
	struct identity_config c;
	identity_config_default(&c);
	struct identity *g = open_mem(&c);

	struct identity_view *v0 = identity_view_publish(g);
	cr_assert_not_null(v0);
	cr_assert_null(v0->canonical);
	cr_assert_eq(v0->n, 0);

	size_t i = 0;
	resolve_text(g, "track anon=a1", i++);
	resolve_text(g, "track anon=a2", i++);
	resolve_text(g, "identify user=u1", i++);
	resolve_text(g, "track", i++);
	struct identity_view *v1 = identity_view_publish(g);
	cr_assert_not_null(v1);
	cr_assert_null(v1->canonical, "no merge yet");
	cr_assert_eq(v1->n, identity_npids(g));
	cr_assert_eq(v1->n, 4);
	/* nothing changed: the same view */
	struct identity_view *v1b = identity_view_publish(g);
	cr_assert_eq(v1b, v1);
	identity_view_release(v1b);

	resolve_text(g, "identify user=u1 anon=a1", i++);
	struct identity_view *v2 = identity_view_publish(g);
	cr_assert_not_null(v2->canonical);
	cr_assert_eq(v2->n, identity_npids(g));
	uint32_t n2 = v2->n, *copy = malloc(n2 * sizeof(uint32_t));
	bool merged = false;
	for (uint32_t p = 0; p < n2; p++) {
		cr_assert_eq(v2->canonical[p], identity_canonical(g, p), "pid %u", p);
		merged |= v2->canonical[p] != p;
		copy[p] = v2->canonical[p];
	}
	cr_assert(merged);
	cr_assert_eq(identity_find(g, "anonymous_id", "a1"), identity_find(g, "user_id", "u1"));

	/* more persons and merges: a new view, the old one unchanged. The
	   email's person (3 pids) grows larger than u1's (2), so u1's pids are
	   relabelled when the two merge (union by size). */
	resolve_text(g, "track anon=b1", i++);
	resolve_text(g, "track anon=b2", i++);
	resolve_text(g, "track anon=b3", i++);
	resolve_text(g, "identify email=e@x.com anon=b1", i++);
	resolve_text(g, "identify email=e@x.com anon=b2", i++);
	resolve_text(g, "identify email=e@x.com anon=b3", i++);
	resolve_text(g, "identify user=u1 email=e@x.com", i++);
	cr_assert_eq(identity_find(g, "anonymous_id", "b1"), identity_find(g, "user_id", "u1"));
	identity_view_ref(v2);
	struct identity_view *v3 = identity_view_publish(g);
	cr_assert_neq(v3, v2);
	cr_assert_eq(v3->n, identity_npids(g));
	cr_assert_gt(v3->n, n2);
	cr_assert_not_null(v3->canonical);
	for (uint32_t p = 0; p < v3->n; p++)
		cr_assert_eq(v3->canonical[p], identity_canonical(g, p), "pid %u", p);
	cr_assert_eq(v2->n, n2);
	for (uint32_t p = 0; p < n2; p++)
		cr_assert_eq(v2->canonical[p], copy[p], "old view changed at pid %u", p);
	bool differs = false;
	for (uint32_t p = 0; p < n2; p++)
		differs |= v3->canonical[p] != copy[p];
	cr_assert(differs, "the later merges relabel some old pid");
	identity_view_release(v2);
	for (uint32_t p = 0; p < n2; p++)
		cr_assert_eq(v2->canonical[p], copy[p], "a view held twice survives one release");

	identity_view_release(v0);
	identity_view_release(v1);
	identity_view_release(v2);
	identity_view_release(v3);
	free(copy);
	identity_close(g);
}

/* --- persistence ---------------------------------------------------------- */

static const char *const persist_msgs[] = {
    "track anon=a1",
    "identify user=u1 anon=a1 email=A@x.com",
    "track anon=a2",
    "identify user=u1 anon=a2",
    "identify user=u2 anon=a1",
    "track anon=null",
    "identify anon=a3 phone='+1 555 010 2000' ext=crm:5",
    "track anon=a4 ext=crm:5",
    "identify user=u3 anon=a4",
    "identify email=' a@X.com ' phone=0015550102000",
    "alias prev=a5 user=u4 nomid",
    "track anon=a5",
    "identify user=u4 ctx.email=b@x.com",
    "track user=u4 anon=a1",
};
#define NPERSIST (sizeof(persist_msgs) / sizeof(persist_msgs[0]))

static void dump_id(void *ctx, const char *type, const char *value, enum identity_class c)
{
	td_buf_printf(ctx, " %s:%s/%d", type, value, (int)c);
}

static void dump_event(void *ctx, const struct identity_event *e)
{
	td_buf_printf(ctx, "  %s lsn=%llu ts=%lld mid=%s kept=%s merged=%s cls=%d w=%u l=%u\n",
		      e->kind == IDENTITY_EV_MERGE ? "merge" : "conflict",
		      (unsigned long long)e->lsn, (long long)e->ts, e->message_id, e->kept,
		      e->merged, e->kind == IDENTITY_EV_CONFLICT ? (int)e->cls : -1, e->winner,
		      e->loser);
}

/* Everything the graph tells about itself except refused values and log size. */
static char *dump(struct identity *g)
{
	struct td_buf b;
	td_buf_init(&b, 1 << 20);
	uint32_t n = identity_npids(g);
	td_buf_printf(&b, "pids %u\n", n);
	for (uint32_t p = 0; p < n; p++) {
		uint32_t c = identity_canonical(g, p);
		td_buf_printf(&b, "%u -> %u\n", p, c);
		if (c != p)
			continue;
		td_buf_printf(&b, " ids");
		identity_person_ids(g, p, dump_id, &b);
		td_buf_printf(&b, "\n");
		identity_person_history(g, p, dump_event, &b);
	}
	struct identity_stats st;
	identity_get_stats(g, &st);
	td_buf_printf(&b, "pids %llu persons %llu identifiers %llu merges %llu conflicts",
		      (unsigned long long)st.pids, (unsigned long long)st.persons,
		      (unsigned long long)st.identifiers, (unsigned long long)st.merges);
	for (int c = 0; c < IDENTITY_NCLASSES; c++)
		td_buf_printf(&b, " %llu", (unsigned long long)st.conflicts[c]);
	td_buf_putc(&b, '\n');
	return td_buf_steal(&b);
}

static void feed(struct identity *g, size_t from, size_t to, uint32_t *pid)
{
	for (size_t i = from; i < to; i++) {
		uint32_t p = resolve_text(g, persist_msgs[i], i);
		if (pid)
			cr_assert_eq(p, pid[i], "message %zu: person %u, first time %u", i, p,
				     pid[i]);
	}
}

static struct identity *open_at(const char *path, uint64_t upto, uint32_t min_persons,
				bool read_only)
{
	struct identity_config c;
	identity_config_default(&c);
	struct identity *g = NULL;
	char err[256] = "";
	int rc = identity_open(&g, path, &c, upto, min_persons, read_only, err, sizeof(err));
	cr_assert_eq(rc, 0, "identity_open(%s, upto %llu): %d %s", path, (unsigned long long)upto,
		     rc, err);
	return g;
}

static void expect_state(struct identity *g, const char *want, const char *what)
{
	char *got = dump(g);
	cr_assert_str_eq(got, want, "%s:\n--- got\n%s--- expected\n%s", what, got, want);
	free(got);
}

static void close_synced(struct identity *g)
{
	cr_assert_eq(identity_sync(g), 0);
	identity_close(g);
}

Test(identity, persistence_reopen_cut_and_replay)
{
	/* the reference: the state after every prefix, in memory */
	char *ref[NPERSIST + 1];
	uint32_t pid[NPERSIST];
	struct identity_config c;
	identity_config_default(&c);
	struct identity *m = open_mem(&c);
	cr_assert_eq(identity_sync(m), 0, "sync without a path is a no-op");
	ref[0] = dump(m);
	for (size_t i = 0; i < NPERSIST; i++) {
		pid[i] = resolve_text(m, persist_msgs[i], i);
		ref[i + 1] = dump(m);
	}
	struct identity_stats st;
	identity_get_stats(m, &st);
	cr_assert_gt(st.merges, 0);
	uint64_t nconflicts = 0;
	for (int i = 0; i < IDENTITY_NCLASSES; i++)
		nconflicts += st.conflicts[i];
	cr_assert_gt(nconflicts, 0);
	identity_close(m);

	char dir[] = "/tmp/tandem-identity-XXXXXX";
	cr_assert(mkdtemp(dir));
	char path[64];
	snprintf(path, sizeof(path), "%s/identity.log", dir);

	/* the same messages into a log; reopened whole */
	struct identity *g = open_at(path, UINT64_MAX, 0, false);
	expect_state(g, ref[0], "new log");
	feed(g, 0, NPERSIST, pid);
	expect_state(g, ref[NPERSIST], "with a log, before closing");
	cr_assert_eq(identity_sync(g), 0);
	identity_get_stats(g, &st);
	cr_assert_gt(st.log_bytes, 0);
	identity_close(g);
	g = open_at(path, UINT64_MAX, 0, false);
	expect_state(g, ref[NPERSIST], "reopened");
	identity_close(g);

	/* too few persons in the log for the caller: corrupt, and nothing cut */
	uint32_t npids = (uint32_t)st.pids;
	struct identity *bad = NULL;
	char err[256] = "";
	int rc = identity_open(&bad, path, &c, UINT64_MAX, npids + 1, false, err, sizeof(err));
	cr_assert_eq(rc, TD_ECORRUPT, "min_persons above the log's: %d", rc);
	cr_assert_neq(err[0], '\0', "a message says what is wrong");
	g = open_at(path, UINT64_MAX, (uint32_t)st.persons, false);
	expect_state(g, ref[NPERSIST], "reopened with min_persons met");
	identity_close(g);

	/* read-only up to an LSN: the rest ignored, not cut */
	const size_t cut = NPERSIST - 5;
	g = open_at(path, cut, 0, true);
	expect_state(g, ref[cut], "read-only up to an LSN");
	identity_close(g);
	g = open_at(path, UINT64_MAX, 0, false);
	expect_state(g, ref[NPERSIST], "reopened after a read-only open");
	identity_close(g);

	/* cut at an LSN: as if the later messages never came, for good */
	g = open_at(path, cut, 0, false);
	expect_state(g, ref[cut], "cut at an LSN");
	identity_close(g);
	g = open_at(path, UINT64_MAX, 0, false);
	expect_state(g, ref[cut], "reopened after the cut");
	/* replaying the rest decides exactly as the first time */
	feed(g, cut, NPERSIST, pid);
	expect_state(g, ref[NPERSIST], "replayed after the cut");
	close_synced(g);
	g = open_at(path, UINT64_MAX, 0, false);
	expect_state(g, ref[NPERSIST], "reopened after the replay");
	identity_close(g);

	/* a torn tail: the last message's record lost, cut with it */
	struct stat sb;
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(truncate(path, sb.st_size - 1), 0);
	g = open_at(path, NPERSIST - 1, 0, false);
	expect_state(g, ref[NPERSIST - 1], "torn tail, cut at the last message's LSN");
	identity_close(g);
	g = open_at(path, UINT64_MAX, 0, false);
	expect_state(g, ref[NPERSIST - 1], "reopened after the torn tail");
	feed(g, NPERSIST - 1, NPERSIST, pid);
	expect_state(g, ref[NPERSIST], "replayed after the torn tail");
	close_synced(g);
	g = open_at(path, UINT64_MAX, 0, false);
	expect_state(g, ref[NPERSIST], "reopened after the torn tail's replay");
	identity_close(g);

	for (size_t i = 0; i <= NPERSIST; i++)
		free(ref[i]);
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(rmdir(dir), 0);
}
