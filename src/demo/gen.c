/*
 * gen.c - the demo data generator (contract in demo.h; the model and its
 * rates in docs/demo.md, which must change with any constant below).
 *
 * Activity is a stream of "slots": a person's web session, an email touch
 * (sent, maybe opened, maybe clicked into a web session) or a bot crawl.
 * Slot start times follow the traffic curve (weekly and daily seasonality, a
 * growth trend, a promotion at the end of the period). A slot is planned in
 * full when it starts: every event with its time, and the person's state
 * changes (signed up, device identified, ...) are applied then, so turning an
 * event into text later needs no decisions. Planned slots wait in a min-heap
 * keyed by the time of their next event and emitting always takes the
 * earliest, so the output is ordered by timestamp, globally and per person.
 * A person has at most one slot in flight and the next starts more than 30
 * minutes after their previous event, so 30-minute session splitting
 * recovers exactly the generated sessions.
 *
 * Exact count: a plan's length is known when it starts, so the scheduler
 * knows the remaining budget R = events - planned. The next slot starts after
 * an exponential gap in "traffic time" v (the share of the period's traffic
 * already passed, 0..1) whose mean spreads the R / (mean plan length)
 * remaining slots evenly over what is left of the period; the last plan is
 * cut to fit.
 *
 * Determinism: one xoshiro256** stream drives every decision in a fixed
 * order; per-person attributes come from a hash of (seed, person) so they do
 * not depend on when the person first appears. No clock, no rand().
 */
#include "demo/demo.h"
#include "base/td.h"
#include "base/timeutil.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_MS		60000LL
#define HOUR_MS		3600000LL
#define DAY_MS		86400000LL
#define SESSION_GAP_MS	(30 * MIN_MS + 1000) /* > 30 min between a person's visits */
#define MAX_TIME_MS	253402300799999LL    /* 9999-12-31T23:59:59.999Z */
#define PROMO_DAYS	10		     /* the promotion: the period's last 10 days, */
#define PROMO_MIN_DAYS	21		     /* in periods of at least 21 days */
#define PROMO_LIFT	1.5		     /* traffic multiplier during the promotion */
#define TREND		0.2		     /* traffic grows 20% over the period */
#define MAX_PAGES	24		     /* pages after the landing page, per visit */
#define MAX_CART	3
#define MAX_EV		112  /* events of one plan (bound: see plan_web) */
#define LINE_CAP	8192 /* the longest line is about 2 KB */
#define NONE		UINT32_MAX
#define MEAN_PLAN_PRIOR 7.0 /* events per slot assumed before any is planned */

/* Rates of the model (docs/demo.md). */
#define EXISTING_SHARE	   0.20 /* people who were customers before the period */
#define EXISTING_KNOWN	   0.50 /* ... of whom have an account (userId) */
#define WILL_SIGN_UP	   0.20 /* new people who sign up at some visit */
#define FIRST_VISIT_SIGNUP 0.55 /* ... at their first visit (else at the next) */
#define SECOND_DEVICE	   0.25 /* people with a second device */
#define SECOND_DEVICE_USE  0.40 /* visits of known people on the second device */
#define LOGIN_RATE	   0.60 /* known person, unidentified device: logs in */
#define B2B_SHARE	   0.10 /* people in a B2B account (group call when known) */
#define GROUP_REPEAT	   0.10 /* later visits that repeat the group call */
#define TWO_EMAILS_SHARE   0.03 /* people who later identify with a second email */
#define SHARED_DEV_SHARE   0.02 /* people who sometimes use another person's device */
#define SHARED_DEV_USE	   0.30
#define ALIAS_SHARE	   0.05	 /* sign-ups that also send alias(anonymousId -> userId) */
#define CRM_ALIAS_SHARE	   0.06	 /* existing accounts aliased from a legacy "crm-N" id */
#define OPT_IN_SHARE	   0.80	 /* known people who receive marketing email */
#define MEMBER_RATE	   0.03	 /* visits of known people that start a subscription */
#define BOT_RATE	   0.005 /* slots that are crawler visits */
#define CONTINUE_RATE	   0.70	 /* after each page, another page */
#define ADD_RATE	   0.30	 /* visits with a Product Viewed that add to cart */
#define CHECKOUT_RATE	   0.50	 /* visits with Product Added that start checkout */
#define ORDER_RATE	   0.60	 /* checkouts that complete */
#define ABANDON_IDENTIFY   0.40	 /* anonymous abandoned checkouts that left an email */
#define COUPON_RATE	   0.60	 /* orders in the promotion with its coupon */
#define COUPON_PERCENT	   20
#define EMAIL_SLOT_FACTOR  0.50 /* email slots: this * known / acquired, ... */
#define EMAIL_SLOT_MAX	   0.30 /* ... at most this share of slots */
#define OPEN_RATE	   0.25
#define CLICK_GIVEN_OPEN   0.16 /* 4% of sent */

/* ---- random numbers: xoshiro256** seeded through splitmix64 ---- */

struct rng {
	uint64_t s[4];
};

/* splitmix64's step: a bijection on 64-bit values, used as a hash. */
static uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = mix64(seed + 0x632be59bd9b4e019ULL * (uint64_t)(i + 1));
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Uniform in [0, 1). */
static inline double rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n). */
static inline uint32_t rng_below(struct rng *r, uint32_t n)
{
	return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform in [lo, hi]. */
static inline int64_t rng_range(struct rng *r, int64_t lo, int64_t hi)
{
	return lo + (int64_t)rng_below(r, (uint32_t)(hi - lo + 1));
}

static inline bool rng_chance(struct rng *r, double p)
{
	return rng_unit(r) < p;
}

/* Exponential with mean 1. */
static inline double rng_exp(struct rng *r)
{
	return -log1p(-rng_unit(r));
}

/* Index drawn with the given shares (summing to 1). */
static unsigned rng_pick(struct rng *r, const double *share, unsigned n)
{
	double u = rng_unit(r);
	for (unsigned i = 0; i + 1 < n; i++) {
		if (u < share[i])
			return i;
		u -= share[i];
	}
	return n - 1;
}

/* ---- the world: channels, campaigns, pages, products, people ---- */

struct str {
	const char *s;
	uint32_t n;
};
#define S(lit)                                                                                     \
	{                                                                                          \
		lit, sizeof(lit) - 1                                                               \
	}

enum channel {
	CH_ORGANIC_SEARCH,
	CH_PAID_SEARCH,
	CH_PAID_SOCIAL,
	CH_ORGANIC_SOCIAL,
	CH_EMAIL,
	CH_AFFILIATE,
	CH_REFERRAL,
	CH_DIRECT,
	CH_COUNT
};
static const double acquisition_share[CH_COUNT] = {0.30, 0.15, 0.12, 0.08, 0.05, 0.06, 0.06, 0.18};
static const struct str utm_medium[CH_COUNT] = {
    [CH_PAID_SEARCH] = S("cpc"),
    [CH_PAID_SOCIAL] = S("paid_social"),
    [CH_EMAIL] = S("email"),
    [CH_AFFILIATE] = S("affiliate"),
};

enum source {
	SRC_NONE,
	SRC_GOOGLE,
	SRC_BING,
	SRC_FACEBOOK,
	SRC_INSTAGRAM,
	SRC_NEWSLETTER,
	SRC_DEALSPOT,
	SRC_CASHBACKCLUB,
	SRC_COUPONHUB
};
static const struct str utm_source[] = {S(""),	       S("google"),	  S("bing"),
					S("facebook"), S("instagram"),	  S("newsletter"),
					S("dealspot"), S("cashbackclub"), S("couponhub")};

enum campaign {
	CAMP_NONE,
	CAMP_BRAND_SEARCH,
	CAMP_AUTUMN_SALE,
	CAMP_BLACK_FRIDAY,
	CAMP_RETARGETING,
	CAMP_NEWSLETTER
};
static const struct str campaign_name[] = {S(""),
					   S("brand_search"),
					   S("autumn_sale"),
					   S("black_friday"),
					   S("retargeting_q4"),
					   S("newsletter_weekly")};

enum referrer {
	REF_NONE,
	REF_GOOGLE,
	REF_BING,
	REF_DUCKDUCKGO,
	REF_FACEBOOK,
	REF_INSTAGRAM,
	REF_TCO,
	REF_LINKEDIN,
	REF_REDDIT,
	REF_PINTEREST,
	REF_DEALSPOT,
	REF_CASHBACKCLUB,
	REF_COUPONHUB,
	REF_GEARREVIEW,
	REF_HOMESTYLE,
	REF_NEWS
};
static const struct str referrer_url[] = {S(""),
					  S("https://www.google.com/"),
					  S("https://www.bing.com/"),
					  S("https://duckduckgo.com/"),
					  S("https://m.facebook.com/"),
					  S("https://l.instagram.com/"),
					  S("https://t.co/"),
					  S("https://www.linkedin.com/"),
					  S("https://www.reddit.com/"),
					  S("https://www.pinterest.com/"),
					  S("https://www.dealspot.example/"),
					  S("https://www.cashbackclub.example/"),
					  S("https://couponhub.example/deals"),
					  S("https://gearreview.example/best-picks"),
					  S("https://blog.homestyle.example/gift-guide"),
					  S("https://news.example.org/shopping/deals")};

enum click { CLICK_NONE, CLICK_GCLID, CLICK_MSCLKID, CLICK_FBCLID };
static const struct str click_param[] = {S(""), S("&gclid=EAIaIQobChMI"), S("&msclkid="),
					 S("&fbclid=IwAR")};

/* How a visit arrived: UTM parameters and referrer of its landing page. */
struct touch {
	uint64_t click_id;
	uint8_t channel, source, campaign, referrer, click;
};

enum page {
	PG_NONE,
	PG_HOME,
	PG_CATEGORY, /* product field = category */
	PG_PRODUCT,
	PG_CART,
	PG_CHECKOUT,
	PG_CONFIRMATION,
	PG_SIGNUP,
	PG_LOGIN,
	PG_MEMBERSHIP,
	PG_COUNT
};
static const struct {
	struct str name, path, title;
} pages[PG_COUNT] = {
    [PG_NONE] = {S(""), S(""), S("")},
    [PG_HOME] = {S("Home"), S("/"), S("Demo Shop")},
    [PG_CATEGORY] = {S("Category"), S("/c/"), S(" | Demo Shop")},
    [PG_PRODUCT] = {S("Product"), S("/p/"), S(" | Demo Shop")},
    [PG_CART] = {S("Cart"), S("/cart"), S("Cart | Demo Shop")},
    [PG_CHECKOUT] = {S("Checkout"), S("/checkout"), S("Checkout | Demo Shop")},
    [PG_CONFIRMATION] = {S("Order Confirmation"), S("/checkout/confirmation"),
			 S("Order Confirmation | Demo Shop")},
    [PG_SIGNUP] = {S("Sign Up"), S("/signup"), S("Sign Up | Demo Shop")},
    [PG_LOGIN] = {S("Log In"), S("/login"), S("Log In | Demo Shop")},
    [PG_MEMBERSHIP] = {S("Membership"), S("/membership"), S("Membership | Demo Shop")},
};
#define SITE "https://shop.example.com"

#define NCAT	6
#define PER_CAT 40
#define NPROD	(NCAT * PER_CAT)
static const struct {
	struct str name, slug;
	uint32_t lo, hi; /* price range in whole euros/dollars */
	const char *noun[8];
} categories[NCAT] = {
    {S("Shoes"),
     S("shoes"),
     39,
     159,
     {"Trail Runner", "Court Sneaker", "Chelsea Boot", "Canvas Slip-On", "Hiking Boot",
      "Leather Loafer", "Running Shoe", "Sandal"}},
    {S("Apparel"),
     S("apparel"),
     15,
     129,
     {"Merino Sweater", "Rain Jacket", "Denim Jeans", "Linen Shirt", "Hoodie", "Chino Pants",
      "Puffer Vest", "T-Shirt"}},
    {S("Accessories"),
     S("accessories"),
     12,
     89,
     {"Leather Wallet", "Backpack", "Beanie", "Sunglasses", "Watch Strap", "Tote Bag", "Scarf",
      "Belt"}},
    {S("Home & Kitchen"),
     S("home-kitchen"),
     9,
     129,
     {"French Press", "Chef Knife", "Mug Set", "Cast Iron Pan", "Throw Blanket", "Table Lamp",
      "Cutting Board", "Scented Candle"}},
    {S("Electronics"),
     S("electronics"),
     19,
     299,
     {"Wireless Earbuds", "Bluetooth Speaker", "Power Bank", "USB-C Charger", "Smart Watch",
      "Action Camera", "E-Reader", "Mechanical Keyboard"}},
    {S("Beauty"),
     S("beauty"),
     5,
     49,
     {"Face Serum", "Hand Cream", "Shampoo Bar", "Lip Balm", "Sunscreen SPF 50", "Eau de Parfum",
      "Beard Oil", "Clay Mask"}},
};
static const char *const product_modifier[PER_CAT / 8] = {"Classic", "Essential", "Premium",
							  "Everyday", "Limited"};

struct product {
	char id[8], name[48], slug[48];
	uint8_t id_n, name_n, slug_n, cat;
	uint32_t cents;
};

static const struct str locales[] = {S("en-US"), S("de-DE"), S("en-GB"), S("fr-FR"),
				     S("es-ES"), S("nl-NL"), S("it-IT"), S("pl-PL")};
static const double locale_share[] = {0.30, 0.22, 0.14, 0.12, 0.08, 0.06, 0.05, 0.03};
#define LOCALE_EN_US 0

enum agent {
	UA_CHROME_WIN,
	UA_CHROME_MAC,
	UA_FIREFOX_WIN,
	UA_SAFARI_MAC,
	UA_EDGE_WIN,
	UA_IPHONE,
	UA_ANDROID,
	UA_GOOGLEBOT,
	UA_BINGBOT,
	UA_COUNT
};
static const double agent_share[UA_ANDROID + 1] = {0.25, 0.08, 0.07, 0.08, 0.05, 0.27, 0.20};
static const struct str user_agent[UA_COUNT] = {
    S("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/124.0.0.0 Safari/537.36"),
    S("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/124.0.0.0 Safari/537.36"),
    S("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"),
    S("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
      "Version/17.4 Safari/605.1.15"),
    S("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51"),
    S("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
      "Gecko) Version/17.4 Mobile/15E148 Safari/604.1"),
    S("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/124.0.0.0 Mobile Safari/537.36"),
    S("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    S("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"),
};

/* Names: {display, lowercase for email addresses}. */
static const struct str first_names[][2] = {
    {S("Emma"), S("emma")},   {S("Liam"), S("liam")},	  {S("Olivia"), S("olivia")},
    {S("Noah"), S("noah")},   {S("Mia"), S("mia")},	  {S("Lucas"), S("lucas")},
    {S("Sofia"), S("sofia")}, {S("Elias"), S("elias")},	  {S("Hannah"), S("hannah")},
    {S("Leon"), S("leon")},   {S("Chloe"), S("chloe")},	  {S("Mateo"), S("mateo")},
    {S("Lea"), S("lea")},     {S("Jonas"), S("jonas")},	  {S("Ava"), S("ava")},
    {S("Luca"), S("luca")},   {S("Amelie"), S("amelie")}, {S("Finn"), S("finn")},
    {S("Clara"), S("clara")}, {S("Milan"), S("milan")},	  {S("Zoe"), S("zoe")},
    {S("Oscar"), S("oscar")}, {S("Nora"), S("nora")},	  {S("Hugo"), S("hugo")},
    {S("Ines"), S("ines")},   {S("Felix"), S("felix")},	  {S("Julia"), S("julia")},
    {S("Theo"), S("theo")},   {S("Alice"), S("alice")},	  {S("Paul"), S("paul")},
    {S("Marta"), S("marta")}, {S("Jakub"), S("jakub")},	  {S("Giulia"), S("giulia")},
    {S("Lars"), S("lars")},   {S("Sara"), S("sara")},	  {S("Diego"), S("diego")},
    {S("Anna"), S("anna")},   {S("Tom"), S("tom")},	  {S("Eva"), S("eva")},
    {S("Ravi"), S("ravi")},
};
static const struct str last_names[][2] = {
    {S("Smith"), S("smith")},	    {S("Muller"), S("muller")},	   {S("Martin"), S("martin")},
    {S("Garcia"), S("garcia")},	    {S("Rossi"), S("rossi")},	   {S("Jansen"), S("jansen")},
    {S("Kowalski"), S("kowalski")}, {S("Dubois"), S("dubois")},	   {S("Schmidt"), S("schmidt")},
    {S("Fischer"), S("fischer")},   {S("Bernard"), S("bernard")},  {S("Lopez"), S("lopez")},
    {S("Bianchi"), S("bianchi")},   {S("de Vries"), S("devries")}, {S("Nowak"), S("nowak")},
    {S("Weber"), S("weber")},	    {S("Moreau"), S("moreau")},	   {S("Fernandez"), S("fernandez")},
    {S("Romano"), S("romano")},	    {S("Bakker"), S("bakker")},	   {S("Wagner"), S("wagner")},
    {S("Laurent"), S("laurent")},   {S("Torres"), S("torres")},	   {S("Ricci"), S("ricci")},
    {S("Visser"), S("visser")},	    {S("Becker"), S("becker")},	   {S("Leroy"), S("leroy")},
    {S("Navarro"), S("navarro")},   {S("Costa"), S("costa")},	   {S("Meyer"), S("meyer")},
    {S("Brown"), S("brown")},	    {S("Wilson"), S("wilson")},	   {S("Taylor"), S("taylor")},
    {S("Clark"), S("clark")},	    {S("Walker"), S("walker")},	   {S("Young"), S("young")},
    {S("Hall"), S("hall")},	    {S("Allen"), S("allen")},	   {S("King"), S("king")},
    {S("Wright"), S("wright")},
};

static const struct str company_prefix[] = {
    S("Acme"),	    S("Blue Harbor"),  S("Brightline"), S("Copperleaf"),
    S("Evergreen"), S("Falcon Ridge"), S("Granite"),	S("Helios"),
    S("Ironwood"),  S("Juniper"),      S("Keystone"),	S("Lumen"),
    S("Meridian"),  S("Northwind"),    S("Oakridge"),	S("Pinnacle")};
static const struct str company_suffix[][2] = {{S("Logistics"), S("Transportation")},
					       {S("Health"), S("Healthcare")},
					       {S("Software"), S("Technology")},
					       {S("Retail"), S("Retail")},
					       {S("Consulting"), S("Professional Services")},
					       {S("Manufacturing"), S("Manufacturing")},
					       {S("Media"), S("Media")},
					       {S("Foods"), S("Food & Beverage")}};
static const uint32_t company_employees[] = {8, 25, 60, 140, 320, 750, 2100, 8500};

static const struct str signup_method[] = {S("email"), S("google"), S("apple"), S("checkout")};
static const double signup_method_share[] = {0.60, 0.30, 0.10};
#define METHOD_CHECKOUT 3

static const struct str billing[] = {S("monthly"), S("yearly")};
static const uint32_t billing_cents[] = {999, 9999};

/* ---- people, plans and the generator ---- */

enum person_flag {
	P_EXISTING = 1 << 0,	  /* a customer from before the period */
	P_KNOWN = 1 << 1,	  /* has a userId */
	P_WILL_SIGN_UP = 1 << 2,  /* new person who signs up at some visit */
	P_SECOND_DEVICE = 1 << 3, /* known person with a second device */
	P_B2B = 1 << 4,		  /* member of a B2B account */
	P_TWO_EMAILS = 1 << 5,	  /* later identifies with a second email */
	P_SHARED_DEVICE = 1 << 6, /* sometimes uses the device of person pid ^ 1 */
	P_ALIAS = 1 << 7,	  /* sign-up also sends alias */
	P_OPT_IN = 1 << 8,	  /* receives marketing email once known */
	P_MEMBER = 1 << 9,	  /* has started a subscription */
	P_REFRESH = 1 << 10,	  /* existing account: identify on the first visit */
	P_CRM_ALIAS = 1 << 11,	  /* existing account with a legacy CRM id */
	P_EMAIL2_DONE = 1 << 12,
};

struct person {
	int64_t free_at;    /* earliest start of their next slot */
	int64_t created_ms; /* account creation, for traits.created_at */
	uint32_t sessions;  /* web visits so far */
	uint16_t flags;	    /* enum person_flag */
	uint8_t channel;    /* acquisition channel */
	uint8_t locale;
	uint8_t agent[2];  /* user agent of device 0 and 1 */
	uint8_t loyalty;   /* tier 0..3: how readily they come back */
	uint8_t known_dev; /* bit d: device d has identified */
};
static const double loyalty_share_new[] = {0.55, 0.30, 0.12, 0.03};
static const double loyalty_share_existing[] = {0.25, 0.40, 0.25, 0.10};
static const double loyalty_accept[] = {0.08, 0.35, 0.80, 1.00};

enum kind {
	K_PAGE,
	K_IDENTIFY,
	K_GROUP,
	K_ALIAS,
	K_PRODUCT_VIEWED,
	K_PRODUCT_ADDED,
	K_CHECKOUT_STARTED,
	K_ORDER_COMPLETED,
	K_SIGNED_UP,
	K_SUBSCRIPTION_STARTED,
	K_EMAIL_SENT,
	K_EMAIL_OPENED,
	K_EMAIL_CLICKED,
	K_COUNT
};
static const struct str event_name[K_COUNT] = {
    [K_PRODUCT_VIEWED] = S("Product Viewed"),
    [K_PRODUCT_ADDED] = S("Product Added"),
    [K_CHECKOUT_STARTED] = S("Checkout Started"),
    [K_ORDER_COMPLETED] = S("Order Completed"),
    [K_SIGNED_UP] = S("Signed Up"),
    [K_SUBSCRIPTION_STARTED] = S("Subscription Started"),
    [K_EMAIL_SENT] = S("Email Sent"),
    [K_EMAIL_OPENED] = S("Email Opened"),
    [K_EMAIL_CLICKED] = S("Email Link Clicked"),
};

enum ev_flag {
	E_ANON = 1,	   /* carries anonymousId */
	E_USER = 2,	   /* carries userId */
	E_LANDING = 4,	   /* on the landing page: URL has the UTM query, referrer external */
	E_REF_LANDING = 8, /* the page's referrer is the landing page */
	E_WEB = 16,	   /* browser context (ip, userAgent, page) */
};
enum identify_kind { ID_FULL, ID_LOGIN, ID_EMAIL2, ID_PLAN };
enum alias_kind { ALIAS_ANON, ALIAS_CRM };

/* One planned event. Web events record the page they happen on and that
 * page's referrer page, which is all the formatter needs. */
struct ev {
	int64_t t;
	uint16_t product, ref_product; /* product index, or category for PG_CATEGORY */
	uint8_t kind, flags, aux, page, ref_page;
};

struct session {
	uint64_t seq;	   /* start order: the heap's tie-break */
	uint32_t pid;	   /* the person; NONE for a bot */
	uint32_t order_no; /* for order_id */
	struct touch touch;
	int64_t email_week; /* day number of the Monday of the email's week */
	uint8_t agent, locale, campaign, coupon, ncart, n, pos;
	uint8_t anon_n, user_n, ip_n;
	char anon[36], user[16], ip[16];
	struct {
		uint16_t product;
		uint8_t qty;
	} cart[MAX_CART];
	struct ev ev[MAX_EV];
};

struct gen {
	const struct demo_options *o;
	int (*emit)(void *ctx, const char *line, size_t len);
	void *ctx;
	struct rng r;
	uint64_t salt_msg, salt_anon, salt_person, salt_ip;
	char tag[6]; /* seed tag in order ids */
	int64_t start_ms, end_ms, promo_ms;

	/* traffic curve: weight of each hour of the period and running sums */
	uint32_t nhours;
	double *weight, *cum;

	struct person *people;
	uint32_t users, existing, acquired; /* people [0, acquired) have appeared */
	uint32_t *known, nknown;	    /* people with a userId, in order */
	uint32_t naccts;
	uint64_t bots, orders;

	struct session *slots;
	uint32_t nslots, *free_slots, nfree, *heap, nheap;
	uint64_t seq;

	/* scheduling */
	double v; /* traffic time of the next slot, 0..1 */
	int64_t next_start;
	bool sched_done;
	uint64_t planned, emitted, nplans, plan_events, stuck;

	struct product catalog[NPROD];
	uint32_t *clicks; /* paid landings by [day][source][channel][campaign], with costs */
	int64_t first_day, ndays;
	int64_t ts_day;
	char ts_date[11];
	char *line;
};

/* ---- the traffic curve ---- */

static const double weekday_weight[7] = {1.00, 1.04, 1.02, 0.98, 0.90, 0.80, 0.96}; /* Mon.. */
static const double hour_weight[24] = {0.30, 0.22, 0.18, 0.15, 0.15, 0.22, 0.40, 0.65,
				       0.85, 0.95, 1.00, 1.05, 1.15, 1.10, 1.00, 0.95,
				       1.00, 1.10, 1.25, 1.40, 1.45, 1.30, 0.90, 0.55};

static int curve_init(struct gen *g)
{
	g->nhours = g->o->days * 24;
	g->weight = td_try_malloc(g->nhours * sizeof(double));
	g->cum = td_try_malloc((g->nhours + 1) * sizeof(double));
	if (!g->weight || !g->cum)
		return TD_ENOMEM;
	g->cum[0] = 0;
	for (uint32_t h = 0; h < g->nhours; h++) {
		int64_t mid = g->start_ms + h * HOUR_MS + HOUR_MS / 2;
		int64_t day = mid / DAY_MS;
		double w = weekday_weight[(day + 3) % 7] * hour_weight[(mid % DAY_MS) / HOUR_MS];
		w *= 1.0 + TREND * (double)h / g->nhours;
		if (mid >= g->promo_ms)
			w *= PROMO_LIFT;
		g->weight[h] = w;
		g->cum[h + 1] = g->cum[h] + w;
	}
	return 0;
}

/* The time by which the share v of the period's traffic has passed. */
static int64_t curve_time(const struct gen *g, double v)
{
	double x = v * g->cum[g->nhours];
	uint32_t lo = 0, hi = g->nhours - 1;
	while (lo < hi) { /* last hour h with cum[h] <= x */
		uint32_t mid = lo + (hi - lo + 1) / 2;
		if (g->cum[mid] <= x)
			lo = mid;
		else
			hi = mid - 1;
	}
	double frac = (x - g->cum[lo]) / g->weight[lo];
	if (frac < 0)
		frac = 0;
	if (frac > 1)
		frac = 1;
	int64_t t = g->start_ms + lo * HOUR_MS + (int64_t)(frac * (double)HOUR_MS);
	return t > g->end_ms ? g->end_ms : t;
}

static uint8_t seasonal_campaign(const struct gen *g, int64_t t)
{
	return t >= g->promo_ms ? CAMP_BLACK_FRIDAY : CAMP_AUTUMN_SALE;
}

/* ---- catalog and people ---- */

static void catalog_init(struct gen *g)
{
	for (uint32_t i = 0; i < NPROD; i++) {
		struct product *pr = &g->catalog[i];
		uint32_t cat = i % NCAT, rank = i / NCAT;
		pr->cat = (uint8_t)cat;
		pr->id_n = (uint8_t)snprintf(pr->id, sizeof(pr->id), "p-%04u", i + 1);
		pr->name_n =
		    (uint8_t)snprintf(pr->name, sizeof(pr->name), "%s %s",
				      product_modifier[rank / 8], categories[cat].noun[rank % 8]);
		size_t n = 0;
		for (const char *c = pr->name; *c && n + 1 < sizeof(pr->slug); c++) {
			if (*c >= 'A' && *c <= 'Z')
				pr->slug[n++] = (char)(*c - 'A' + 'a');
			else if ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9'))
				pr->slug[n++] = *c;
			else if (n && pr->slug[n - 1] != '-')
				pr->slug[n++] = '-';
		}
		pr->slug[n] = '\0';
		pr->slug_n = (uint8_t)n;
		/* the catalog is the same for every seed: prices from the index */
		uint64_t h = mix64(i ^ 0xca7a1095ULL);
		uint32_t span = categories[cat].hi - categories[cat].lo + 1;
		pr->cents = (categories[cat].lo + (uint32_t)(h % span)) * 100 - 1;
	}
}

/* A product by popularity (rank r is chosen about 1/sqrt(r) as often as the first). */
static uint16_t pick_product(struct rng *r)
{
	double u = rng_unit(r);
	return (uint16_t)(u * u * NPROD);
}

static uint16_t pick_product_in(struct rng *r, uint16_t cat)
{
	double u = rng_unit(r);
	return (uint16_t)(cat + NCAT * (uint32_t)(u * u * PER_CAT));
}

static void person_init(struct gen *g, uint32_t pid, bool existing)
{
	struct person *p = &g->people[pid];
	struct rng pr;
	rng_seed(&pr, g->salt_person ^ mix64(pid));
	memset(p, 0, sizeof(*p));
	p->channel = (uint8_t)rng_pick(&pr, acquisition_share, CH_COUNT);
	p->locale = (uint8_t)rng_pick(&pr, locale_share, TD_ARRAY_LEN(locale_share));
	p->agent[0] = (uint8_t)rng_pick(&pr, agent_share, TD_ARRAY_LEN(agent_share));
	bool mobile = p->agent[0] == UA_IPHONE || p->agent[0] == UA_ANDROID;
	if (mobile)
		p->agent[1] = rng_chance(&pr, 0.6) ? UA_CHROME_WIN : UA_SAFARI_MAC;
	else
		p->agent[1] = rng_chance(&pr, 0.55) ? UA_IPHONE : UA_ANDROID;
	p->loyalty =
	    (uint8_t)rng_pick(&pr, existing ? loyalty_share_existing : loyalty_share_new, 4);
	uint16_t f = 0;
	if (rng_chance(&pr, WILL_SIGN_UP))
		f |= P_WILL_SIGN_UP;
	if (rng_chance(&pr, SECOND_DEVICE))
		f |= P_SECOND_DEVICE;
	if (rng_chance(&pr, B2B_SHARE))
		f |= P_B2B;
	if (rng_chance(&pr, TWO_EMAILS_SHARE))
		f |= P_TWO_EMAILS;
	if (rng_chance(&pr, SHARED_DEV_SHARE) && g->users > 1)
		f |= P_SHARED_DEVICE;
	if (rng_chance(&pr, ALIAS_SHARE))
		f |= P_ALIAS;
	if (rng_chance(&pr, OPT_IN_SHARE))
		f |= P_OPT_IN;
	if (existing) {
		f |= P_EXISTING;
		if (rng_chance(&pr, EXISTING_KNOWN)) {
			f |= P_KNOWN | P_REFRESH;
			if (rng_chance(&pr, CRM_ALIAS_SHARE))
				f |= P_CRM_ALIAS;
			p->known_dev = 1;
			p->created_ms = g->start_ms - rng_range(&pr, 30, 720) * DAY_MS -
					rng_range(&pr, 0, DAY_MS - 1);
			g->known[g->nknown++] = pid;
		}
	}
	p->flags = f;
}

static uint32_t shared_partner(const struct gen *g, uint32_t pid)
{
	uint32_t q = pid ^ 1;
	return q < g->users ? q : pid - 1;
}

/* ---- small text appenders (no bounds checks: lines are bounded by design) ---- */

static const char hexdigit[] = "0123456789abcdef";

static inline char *put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}
#define PUTL(p, lit) put((p), (lit), sizeof(lit) - 1)

static inline char *put_str(char *p, struct str s)
{
	return put(p, s.s, s.n);
}

static char *put_u64(char *p, uint64_t v)
{
	char tmp[20];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static char *put_pad(char *p, uint64_t v, int digits)
{
	for (int i = digits - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + digits;
}

static char *put_hex(char *p, uint64_t v, int digits)
{
	for (int i = digits - 1; i >= 0; i--) {
		p[i] = hexdigit[v & 15];
		v >>= 4;
	}
	return p + digits;
}

static char *put_money(char *p, uint64_t cents)
{
	p = put_u64(p, cents / 100);
	*p++ = '.';
	return put_pad(p, cents % 100, 2);
}

/*
 * A version-4-style UUID holding all 64 bits of a (and 58 of b), so distinct
 * a give distinct UUIDs: a comes from a bijective hash of a counter.
 */
static char *put_uuid(char *p, uint64_t a, uint64_t b)
{
	p = put_hex(p, a >> 32, 8);
	*p++ = '-';
	p = put_hex(p, (a >> 16) & 0xffff, 4);
	*p++ = '-';
	*p++ = '4';
	p = put_hex(p, (a >> 4) & 0xfff, 3);
	*p++ = '-';
	*p++ = hexdigit[8 | ((a >> 2) & 3)];
	*p++ = hexdigit[((a & 3) << 2) | (b & 3)];
	p = put_hex(p, (b >> 2) & 0xff, 2);
	*p++ = '-';
	return put_hex(p, b >> 16, 12);
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yoe + era * 400 + (*m <= 2);
}

/* "YYYY-MM-DD" of a day number (days since 1970-01-01, >= 0). */
static char *put_date(char *p, int64_t day)
{
	int64_t y;
	unsigned m, d;
	civil_from_days(day, &y, &m, &d);
	p = put_pad(p, (uint64_t)y, 4);
	*p++ = '-';
	p = put_pad(p, m, 2);
	*p++ = '-';
	return put_pad(p, d, 2);
}

/* "HH:MM:SS.mmmZ" of the time of day. */
static char *put_clock(char *p, int64_t ms)
{
	int64_t r = ms % DAY_MS;
	p = put_pad(p, (uint64_t)(r / HOUR_MS), 2);
	*p++ = ':';
	p = put_pad(p, (uint64_t)(r / MIN_MS % 60), 2);
	*p++ = ':';
	p = put_pad(p, (uint64_t)(r / 1000 % 60), 2);
	*p++ = '.';
	p = put_pad(p, (uint64_t)(r % 1000), 3);
	*p++ = 'Z';
	return p;
}

/* ISO-8601 UTC with milliseconds; the date part is cached (output is in time order). */
static char *put_time(struct gen *g, char *p, int64_t ms)
{
	int64_t day = ms / DAY_MS;
	if (day != g->ts_day) {
		put_date(g->ts_date, day);
		g->ts_date[10] = 'T';
		g->ts_day = day;
	}
	return put_clock(put(p, g->ts_date, 11), ms);
}

static char *put_time_uncached(char *p, int64_t ms)
{
	p = put_date(p, ms / DAY_MS);
	*p++ = 'T';
	return put_clock(p, ms);
}

/* ---- planning ---- */

struct plan {
	struct gen *g;
	struct session *s;
	struct person *p; /* NULL for a bot */
	int64_t t;	  /* time of the last planned event (even one past the end) */
	uint8_t dev;	  /* 0, 1, or 2 = the device of the shared-device partner */
	bool user;	  /* events carry the userId */
	bool web;	  /* events come from the browser */
	bool closed;	  /* reached the end of the period */
	uint8_t page, ref_page, page_flags;
	uint16_t product, ref_product;
};

static struct ev *add(struct plan *pl, uint8_t kind, uint8_t aux)
{
	struct session *s = pl->s;
	if (pl->closed || pl->t > pl->g->end_ms) {
		pl->closed = true;
		return NULL;
	}
	assert(s->n < MAX_EV);
	struct ev *e = &s->ev[s->n++];
	e->t = pl->t;
	e->kind = kind;
	e->aux = aux;
	e->flags = (uint8_t)((pl->user ? E_USER : 0) | (pl->web ? E_ANON | E_WEB : 0));
	if (pl->web) {
		e->flags |= pl->page_flags;
		e->page = pl->page;
		e->product = pl->product;
		e->ref_page = pl->ref_page;
		e->ref_product = pl->ref_product;
	} else {
		e->page = e->ref_page = PG_NONE;
		e->product = e->ref_product = 0;
	}
	return e;
}

static void step(struct plan *pl, int64_t lo_ms, int64_t hi_ms)
{
	pl->t += rng_range(&pl->g->r, lo_ms, hi_ms);
}

/* Time on a page before the next one: 4 s + exponential (mean 35 s), at most 10 min. */
static int64_t dwell(struct rng *r)
{
	double d = 4000 + rng_exp(r) * 35000;
	return d > 600000 ? 600000 : (int64_t)d;
}

static void add_page(struct plan *pl, uint8_t page, uint16_t product, int64_t wait_ms)
{
	if (pl->page != PG_NONE) {
		pl->t += wait_ms;
		pl->ref_page = pl->page;
		pl->ref_product = pl->product;
		pl->page_flags = (pl->page_flags & E_LANDING) ? E_REF_LANDING : 0;
	} else {
		pl->page_flags = E_LANDING;
	}
	pl->page = page;
	pl->product = product;
	add(pl, K_PAGE, 0);
}

static void set_user(struct session *s, uint32_t pid)
{
	char *p = PUTL(s->user, "user-");
	p = put_u64(p, (uint64_t)pid + 1);
	s->user_n = (uint8_t)(p - s->user);
}

/* Sets the session's browser: anonymousId, user agent, locale, IP address. */
static void set_device(struct plan *pl, uint64_t key, uint8_t agent, uint8_t locale)
{
	struct gen *g = pl->g;
	struct session *s = pl->s;
	uint64_t a = mix64(key + g->salt_anon);
	put_uuid(s->anon, a, mix64(a ^ g->salt_anon));
	s->anon_n = 36;
	s->agent = agent;
	s->locale = locale;
	/* addresses from the documentation ranges (RFC 5737): people in
	 * 203.0.113.0/24 and 198.51.100.0/24, crawlers in 192.0.2.0/24 */
	uint64_t h = mix64(key ^ g->salt_ip);
	char *p = agent >= UA_GOOGLEBOT ? PUTL(s->ip, "192.0.2.")
		  : (h & 1)		? PUTL(s->ip, "198.51.100.")
					: PUTL(s->ip, "203.0.113.");
	p = put_u64(p, 1 + (h >> 8) % 254);
	s->ip_n = (uint8_t)(p - s->ip);
}

static void use_person_device(struct plan *pl, uint8_t dev)
{
	struct gen *g = pl->g;
	uint32_t pid = pl->s->pid;
	pl->dev = dev;
	if (dev == 2) {
		uint32_t q = shared_partner(g, pid);
		set_device(pl, (uint64_t)q * 4, g->people[q].agent[0], g->people[q].locale);
	} else {
		set_device(pl, (uint64_t)pid * 4 + dev, pl->p->agent[dev], pl->p->locale);
	}
}

static void add_group(struct plan *pl)
{
	add(pl, K_GROUP, 0);
}

/* The person gets a userId: alias (some), identify with full traits,
 * "Signed Up", group (B2B). */
static void become_known(struct plan *pl, uint8_t method)
{
	struct gen *g = pl->g;
	struct person *p = pl->p;
	p->flags |= P_KNOWN;
	p->created_ms = pl->t;
	if (pl->dev < 2)
		p->known_dev |= (uint8_t)(1u << pl->dev);
	g->known[g->nknown++] = pl->s->pid;
	if (p->flags & P_ALIAS) {
		pl->user = true;
		add(pl, K_ALIAS, ALIAS_ANON);
		step(pl, 20, 200);
	}
	pl->user = true;
	add(pl, K_IDENTIFY, ID_FULL);
	step(pl, 50, 400);
	add(pl, K_SIGNED_UP, method);
	if (p->flags & P_B2B) {
		step(pl, 100, 600);
		add_group(pl);
	}
}

/* The first pages of a visit and its funnel decisions come from the
 * channel: ads land on products, brand searches and direct on the home page. */
static void landing_page(struct rng *r, const struct touch *tc, uint8_t *page, uint16_t *product)
{
	double u = rng_unit(r);
	double to_product, to_category;
	switch (tc->channel) {
	case CH_PAID_SEARCH:
		to_product = tc->campaign == CAMP_BRAND_SEARCH ? 0.10 : 0.60;
		to_category = tc->campaign == CAMP_BRAND_SEARCH ? 0.20 : 0.40;
		break;
	case CH_PAID_SOCIAL:
	case CH_AFFILIATE:
		to_product = 0.75, to_category = 0.25;
		break;
	case CH_ORGANIC_SEARCH:
		to_product = 0.50, to_category = 0.30;
		break;
	case CH_EMAIL:
		to_product = 0.30, to_category = 0.50;
		break;
	case CH_DIRECT:
		to_product = 0.15, to_category = 0.10;
		break;
	default: /* organic social, referral */
		to_product = 0.60, to_category = 0.20;
		break;
	}
	if (u < to_product) {
		*page = PG_PRODUCT;
		*product = pick_product(r);
	} else if (u < to_product + to_category) {
		*page = PG_CATEGORY;
		*product = (uint16_t)rng_below(r, NCAT);
	} else {
		*page = PG_HOME;
		*product = 0;
	}
}

static void next_page(struct rng *r, uint8_t from, uint16_t from_product, uint8_t *page,
		      uint16_t *product)
{
	double u = rng_unit(r);
	if (u < 0.60) {
		*page = PG_PRODUCT;
		*product = from == PG_CATEGORY ? pick_product_in(r, from_product)
			   : from == PG_PRODUCT && rng_chance(r, 0.5)
			       ? pick_product_in(r, from_product % NCAT)
			       : pick_product(r);
	} else if (u < 0.90) {
		*page = PG_CATEGORY;
		*product = (uint16_t)rng_below(r, NCAT);
	} else {
		*page = PG_HOME;
		*product = 0;
	}
}

static void cart_add(struct session *s, uint16_t product, uint8_t qty)
{
	for (unsigned i = 0; i < s->ncart; i++)
		if (s->cart[i].product == product) {
			s->cart[i].qty = (uint8_t)(s->cart[i].qty + qty);
			return;
		}
	if (s->ncart < MAX_CART) {
		s->cart[s->ncart].product = product;
		s->cart[s->ncart].qty = qty;
		s->ncart++;
	}
}

/* Identity steps right after the landing page. */
static void after_landing(struct plan *pl)
{
	struct gen *g = pl->g;
	struct person *p = pl->p;
	struct rng *r = &g->r;
	bool grouped = false;
	if ((p->flags & P_REFRESH) && pl->user) {
		/* an existing account's first visit: the site re-sends its traits */
		p->flags &= (uint16_t)~P_REFRESH;
		step(pl, 500, 3000);
		if (p->flags & P_CRM_ALIAS) {
			add(pl, K_ALIAS, ALIAS_CRM);
			step(pl, 20, 200);
		}
		add(pl, K_IDENTIFY, ID_FULL);
		if (p->flags & P_B2B) {
			step(pl, 100, 600);
			add_group(pl);
		}
		grouped = true;
	} else if ((p->flags & P_KNOWN) && !pl->user &&
		   (pl->dev == 2 || rng_chance(r, LOGIN_RATE))) {
		add_page(pl, PG_LOGIN, 0, dwell(r));
		step(pl, 8000, 40000);
		pl->user = true;
		if (pl->dev < 2)
			p->known_dev |= (uint8_t)(1u << pl->dev);
		add(pl, K_IDENTIFY, ID_LOGIN);
	} else if (pl->user && (p->flags & P_TWO_EMAILS) && !(p->flags & P_EMAIL2_DONE) &&
		   p->sessions >= 2 && rng_chance(r, 0.5)) {
		p->flags |= P_EMAIL2_DONE;
		step(pl, 500, 3000);
		add(pl, K_IDENTIFY, ID_EMAIL2);
	}
	if (!grouped && pl->user && (p->flags & P_B2B) && rng_chance(r, GROUP_REPEAT)) {
		step(pl, 100, 600);
		add_group(pl);
	}
}

/*
 * A web visit. Bound on its events (MAX_EV): 25 pages with a Product Viewed
 * each (50), 3 Product Added, 3 identity steps after landing + a login page
 * (4), sign-up page + alias/identify/Signed Up/group (5), membership (3),
 * cart, checkout page, Checkout Started, login or sign-up (4), confirmation,
 * Order Completed: 73, plus 3 email events before it.
 */
static void plan_web(struct plan *pl, const struct touch *tc, uint8_t forced_page,
		     uint16_t forced_product)
{
	struct gen *g = pl->g;
	struct session *s = pl->s;
	struct person *p = pl->p;
	struct rng *r = &g->r;
	bool first = p->sessions++ == 0;
	s->touch = *tc;
	pl->web = true;
	pl->user = (p->flags & P_KNOWN) && pl->dev < 2 && (p->known_dev & (1u << pl->dev));
	pl->page = pl->ref_page = PG_NONE;

	uint8_t type[1 + MAX_PAGES];
	uint16_t prod[1 + MAX_PAGES];
	unsigned np = 1, views = 0;
	if (forced_page != PG_NONE) {
		type[0] = forced_page;
		prod[0] = forced_product;
	} else {
		landing_page(r, tc, &type[0], &prod[0]);
	}
	while (np < 1 + MAX_PAGES && rng_chance(r, CONTINUE_RATE)) {
		next_page(r, type[np - 1], prod[np - 1], &type[np], &prod[np]);
		np++;
	}
	for (unsigned i = 0; i < np; i++)
		views += type[i] == PG_PRODUCT;
	unsigned nadd = 0;
	if (views && rng_chance(r, ADD_RATE)) {
		double u = rng_unit(r);
		nadd = u < 0.08 ? 3 : u < 0.30 ? 2 : 1;
		nadd = TD_MIN(nadd, views);
	}
	bool signup = !(p->flags & P_KNOWN) && (p->flags & P_WILL_SIGN_UP) &&
		      (!first || rng_chance(r, FIRST_VISIT_SIGNUP));
	unsigned signup_after = signup ? rng_below(r, np) : np;

	unsigned views_left = views;
	for (unsigned i = 0; i < np; i++) {
		add_page(pl, type[i], prod[i], dwell(r));
		if (type[i] == PG_PRODUCT) {
			step(pl, 300, 1500);
			add(pl, K_PRODUCT_VIEWED, 0);
			if (views_left-- <= nadd) { /* the last nadd product pages */
				step(pl, 2000, 20000);
				double u = rng_unit(r);
				uint8_t qty = u < 0.85 ? 1 : u < 0.97 ? 2 : 3;
				if (add(pl, K_PRODUCT_ADDED, qty))
					cart_add(s, prod[i], qty);
			}
		}
		if (i == 0)
			after_landing(pl);
		if (i == signup_after && !(p->flags & P_KNOWN)) {
			add_page(pl, PG_SIGNUP, 0, dwell(r));
			step(pl, 20000, 90000);
			become_known(pl, (uint8_t)rng_pick(r, signup_method_share, 3));
		}
	}
	if (pl->user && !(p->flags & P_MEMBER) && rng_chance(r, MEMBER_RATE)) {
		p->flags |= P_MEMBER;
		add_page(pl, PG_MEMBERSHIP, 0, dwell(r));
		step(pl, 30000, 120000);
		add(pl, K_SUBSCRIPTION_STARTED, (uint8_t)rng_chance(r, 0.3));
		step(pl, 100, 400);
		add(pl, K_IDENTIFY, ID_PLAN);
	}
	if (s->ncart == 0)
		return;
	add_page(pl, PG_CART, 0, dwell(r));
	if (!rng_chance(r, CHECKOUT_RATE))
		return;
	add_page(pl, PG_CHECKOUT, 0, dwell(r));
	step(pl, 500, 2000);
	s->order_no = (uint32_t)++g->orders;
	add(pl, K_CHECKOUT_STARTED, 0);
	bool order = rng_chance(r, ORDER_RATE);
	if (!pl->user && (order || rng_chance(r, ABANDON_IDENTIFY))) {
		/* the checkout asks for an email: a login, or an account made now */
		step(pl, 20000, 90000);
		if (p->flags & P_KNOWN) {
			pl->user = true;
			if (pl->dev < 2)
				p->known_dev |= (uint8_t)(1u << pl->dev);
			add(pl, K_IDENTIFY, ID_LOGIN);
		} else {
			become_known(pl, METHOD_CHECKOUT);
		}
	}
	if (!order)
		return;
	double pay = 30000 + rng_exp(r) * 90000;
	pl->t += pay > 600000 ? 600000 : (int64_t)pay;
	add_page(pl, PG_CONFIRMATION, 0, 0);
	step(pl, 200, 800);
	s->coupon = pl->t >= g->promo_ms && rng_chance(r, COUPON_RATE);
	add(pl, K_ORDER_COMPLETED, 0);
}

/* The channel of a returning visit: direct 45%, the acquisition channel
 * again 20%, organic search 15%, retargeting ads 10%, brand search 10%. */
static uint8_t returning_channel(struct rng *r, uint8_t acquisition, bool *retarget)
{
	double u = rng_unit(r);
	*retarget = false;
	if (u < 0.45)
		return CH_DIRECT;
	if (u < 0.65)
		return acquisition == CH_EMAIL ? CH_DIRECT : acquisition;
	if (u < 0.80)
		return CH_ORGANIC_SEARCH;
	if (u < 0.90) {
		*retarget = true;
		return CH_PAID_SOCIAL;
	}
	return CH_PAID_SEARCH;
}

static void make_touch(struct gen *g, struct touch *tc, uint8_t channel, int64_t t, bool retarget,
		       bool brand)
{
	struct rng *r = &g->r;
	memset(tc, 0, sizeof(*tc));
	tc->channel = channel;
	double u = rng_unit(r);
	switch (channel) {
	case CH_ORGANIC_SEARCH:
		tc->referrer = u < 0.80 ? REF_GOOGLE : u < 0.92 ? REF_BING : REF_DUCKDUCKGO;
		break;
	case CH_PAID_SEARCH:
		if (u < 0.85)
			tc->source = SRC_GOOGLE, tc->referrer = REF_GOOGLE, tc->click = CLICK_GCLID;
		else
			tc->source = SRC_BING, tc->referrer = REF_BING, tc->click = CLICK_MSCLKID;
		tc->campaign =
		    brand || rng_chance(r, 0.55) ? CAMP_BRAND_SEARCH : seasonal_campaign(g, t);
		break;
	case CH_PAID_SOCIAL:
		if (u < 0.60)
			tc->source = SRC_FACEBOOK, tc->referrer = REF_FACEBOOK;
		else
			tc->source = SRC_INSTAGRAM, tc->referrer = REF_INSTAGRAM;
		tc->click = CLICK_FBCLID;
		tc->campaign = retarget ? CAMP_RETARGETING : seasonal_campaign(g, t);
		break;
	case CH_ORGANIC_SOCIAL:
		tc->referrer = u < 0.30	  ? REF_FACEBOOK
			       : u < 0.55 ? REF_INSTAGRAM
			       : u < 0.65 ? REF_TCO
			       : u < 0.75 ? REF_LINKEDIN
			       : u < 0.90 ? REF_REDDIT
					  : REF_PINTEREST;
		break;
	case CH_EMAIL:
		tc->source = SRC_NEWSLETTER;
		tc->campaign = CAMP_NEWSLETTER;
		break;
	case CH_AFFILIATE: {
		unsigned k = rng_below(r, 3);
		tc->source = (uint8_t)(SRC_DEALSPOT + k);
		tc->referrer = (uint8_t)(REF_DEALSPOT + k);
		tc->campaign = seasonal_campaign(g, t);
		break;
	}
	case CH_REFERRAL:
		tc->referrer = (uint8_t)(REF_GEARREVIEW + rng_below(r, 3));
		break;
	default:
		break;
	}
	if (tc->click)
		tc->click_id = rng_next(r);
}

/* A returning person, favouring the recently acquired and the loyal ones;
 * NONE if nobody suitable is free at t. */
static uint32_t pick_returning(struct gen *g, int64_t t)
{
	struct rng *r = &g->r;
	uint32_t a = g->acquired;
	if (a == 0)
		return NONE;
	for (int tries = 0; tries < 24; tries++) {
		double u = rng_unit(r);
		uint32_t back = (uint32_t)(u * u * a);
		uint32_t pid = a - 1 - TD_MIN(back, a - 1);
		const struct person *p = &g->people[pid];
		if (p->free_at <= t && rng_chance(r, loyalty_accept[p->loyalty]))
			return pid;
	}
	uint32_t start = rng_below(r, a), n = TD_MIN(a, 256u);
	for (uint32_t k = 0; k < n; k++) {
		uint32_t pid = (start + k) % a;
		if (g->people[pid].free_at <= t)
			return pid;
	}
	return NONE;
}

static uint32_t pick_email_recipient(struct gen *g, int64_t t)
{
	for (int tries = 0; tries < 8; tries++) {
		uint32_t pid = g->known[rng_below(&g->r, g->nknown)];
		const struct person *p = &g->people[pid];
		if ((p->flags & P_OPT_IN) && p->free_at <= t)
			return pid;
	}
	return NONE;
}

/* Email Sent; Email Opened (25%) hours later; Email Link Clicked (16% of
 * opens) and the visit it starts. */
static void plan_email(struct plan *pl)
{
	struct gen *g = pl->g;
	struct session *s = pl->s;
	struct person *p = pl->p;
	struct rng *r = &g->r;
	bool promo = pl->t >= g->promo_ms;
	double u = rng_unit(r);
	s->campaign = u < (promo ? 0.50 : 0.75) ? CAMP_NEWSLETTER : seasonal_campaign(g, pl->t);
	int64_t day = pl->t / DAY_MS;
	s->email_week = day - (day + 3) % 7;
	pl->web = false;
	pl->user = true;
	add(pl, K_EMAIL_SENT, 0);
	if (!rng_chance(r, OPEN_RATE))
		return;
	double wait = 60000 + rng_exp(r) * 2 * HOUR_MS;
	pl->t += wait > DAY_MS ? DAY_MS : (int64_t)wait;
	add(pl, K_EMAIL_OPENED, 0);
	if (!rng_chance(r, CLICK_GIVEN_OPEN))
		return;
	step(pl, 5000, 90000);
	struct touch tc;
	make_touch(g, &tc, CH_EMAIL, pl->t, false, false);
	tc.campaign = s->campaign;
	s->touch = tc;
	uint8_t page;
	uint16_t product;
	landing_page(r, &tc, &page, &product);
	struct ev *e = add(pl, K_EMAIL_CLICKED, 0);
	if (e) { /* the link's landing page, for properties.url */
		e->page = page;
		e->product = product;
	}
	step(pl, 1000, 4000);
	bool second = (p->flags & P_SECOND_DEVICE) && rng_chance(r, 0.5);
	use_person_device(pl, second ? 1 : 0);
	plan_web(pl, &tc, page, product);
}

static void plan_bot(struct plan *pl)
{
	struct gen *g = pl->g;
	struct rng *r = &g->r;
	uint8_t agent = rng_chance(r, 0.7) ? UA_GOOGLEBOT : UA_BINGBOT;
	/* keys 4k+2 never collide with people's 4*pid+dev */
	set_device(pl, g->bots++ * 4 + 2, agent, LOCALE_EN_US);
	memset(&pl->s->touch, 0, sizeof(pl->s->touch));
	pl->web = true;
	pl->page = PG_NONE;
	double n = 3 + rng_exp(r) * 10;
	unsigned npages = n > 40 ? 40 : (unsigned)n;
	for (unsigned i = 0; i < npages; i++) {
		double u = rng_unit(r);
		if (u < 0.10)
			add_page(pl, PG_HOME, 0, rng_range(r, 1000, 6000));
		else if (u < 0.30)
			add_page(pl, PG_CATEGORY, (uint16_t)rng_below(r, NCAT),
				 rng_range(r, 1000, 6000));
		else
			add_page(pl, PG_PRODUCT, (uint16_t)rng_below(r, NPROD),
				 rng_range(r, 1000, 6000));
	}
}

/* ---- slots and the heap ---- */

static uint32_t slot_alloc(struct gen *g)
{
	if (g->nfree)
		return g->free_slots[--g->nfree];
	if (g->nslots % 256 == 0) {
		size_t cap = (size_t)g->nslots + 256;
		g->slots = td_realloc(g->slots, cap * sizeof(*g->slots));
		g->free_slots = td_realloc(g->free_slots, cap * sizeof(uint32_t));
		g->heap = td_realloc(g->heap, cap * sizeof(uint32_t));
	}
	return g->nslots++;
}

static bool before(const struct gen *g, uint32_t a, uint32_t b)
{
	const struct session *x = &g->slots[a], *y = &g->slots[b];
	int64_t tx = x->ev[x->pos].t, ty = y->ev[y->pos].t;
	return tx < ty || (tx == ty && x->seq < y->seq);
}

static void heap_down(struct gen *g, uint32_t i)
{
	uint32_t *h = g->heap, n = g->nheap;
	for (;;) {
		uint32_t l = 2 * i + 1, m = i;
		if (l < n && before(g, h[l], h[m]))
			m = l;
		if (l + 1 < n && before(g, h[l + 1], h[m]))
			m = l + 1;
		if (m == i)
			return;
		uint32_t tmp = h[i];
		h[i] = h[m];
		h[m] = tmp;
		i = m;
	}
}

static void heap_push(struct gen *g, uint32_t id)
{
	uint32_t *h = g->heap, i = g->nheap++;
	h[i] = id;
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (!before(g, h[i], h[parent]))
			break;
		uint32_t tmp = h[i];
		h[i] = h[parent];
		h[parent] = tmp;
		i = parent;
	}
}

/* ---- scheduling ---- */

/* Moves the next slot's start by an exponential gap in traffic time. */
static void advance(struct gen *g)
{
	uint64_t left = g->o->events - g->planned;
	if (left == 0) {
		g->sched_done = true;
		return;
	}
	double mean = (g->plan_events + MEAN_PLAN_PRIOR * 32) / ((double)g->nplans + 32);
	double slots_left = (double)left / mean;
	if (slots_left < 1)
		slots_left = 1;
	g->v += (1 - g->v) * rng_exp(&g->r) / slots_left;
	if (g->v > 1)
		g->v = 1;
	int64_t t = curve_time(g, g->v);
	if (t > g->next_start)
		g->next_start = t;
}

/* Starts the slot at g->next_start: picks its kind and person and plans it. */
static void start_slot(struct gen *g)
{
	struct rng *r = &g->r;
	int64_t t = g->next_start;
	uint32_t id = slot_alloc(g);
	struct session *s = &g->slots[id];
	s->seq = g->seq++;
	s->n = s->pos = s->ncart = s->coupon = 0;
	s->order_no = 0;
	struct plan pl = {.g = g, .s = s, .t = t, .page = PG_NONE};

	uint64_t left = g->o->events - g->planned;
	double mean = (g->plan_events + MEAN_PLAN_PRIOR * 32) / ((double)g->nplans + 32);
	double slots_left = TD_MAX((double)left / mean, 1.0);
	uint32_t new_left = g->users - g->acquired;
	double email_share = g->acquired ? EMAIL_SLOT_FACTOR * g->nknown / g->acquired : 0;
	email_share = TD_MIN(email_share, EMAIL_SLOT_MAX);

	uint32_t pid = NONE;
	bool is_new = false, is_email = false;
	if (new_left && rng_chance(r, new_left / slots_left)) {
		is_new = true;
	} else if (rng_chance(r, BOT_RATE)) {
		s->pid = NONE;
		plan_bot(&pl);
		goto planned;
	} else if (g->nknown && rng_chance(r, email_share) &&
		   (pid = pick_email_recipient(g, t)) != NONE) {
		is_email = true;
	} else if ((pid = pick_returning(g, t)) == NONE) {
		is_new = new_left > 0;
	}
	if (is_new) {
		pid = g->acquired++;
		person_init(g, pid, false);
	}
	if (pid == NONE) { /* nobody can visit now */
		g->free_slots[g->nfree++] = id;
		if (g->v >= 1 && ++g->stuck > 100000)
			g->sched_done = true;
		return;
	}
	s->pid = pid;
	pl.p = &g->people[pid];
	set_user(s, pid);
	if (is_email) {
		plan_email(&pl);
	} else {
		struct touch tc;
		struct person *p = pl.p;
		uint8_t dev = 0;
		if (is_new) {
			make_touch(g, &tc, p->channel, t, false, false);
		} else {
			bool retarget;
			uint8_t ch = returning_channel(r, p->channel, &retarget);
			make_touch(g, &tc, ch, t, retarget, ch == CH_PAID_SEARCH && !retarget);
			if ((p->flags & (P_KNOWN | P_SECOND_DEVICE)) ==
				(P_KNOWN | P_SECOND_DEVICE) &&
			    rng_chance(r, SECOND_DEVICE_USE)) {
				dev = 1;
			} else if ((p->flags & (P_KNOWN | P_SHARED_DEVICE)) ==
				       (P_KNOWN | P_SHARED_DEVICE) &&
				   rng_chance(r, SHARED_DEV_USE)) {
				uint32_t q = shared_partner(g, pid);
				if (q < g->acquired && g->people[q].free_at <= t)
					dev = 2;
			}
		}
		use_person_device(&pl, dev);
		plan_web(&pl, &tc, PG_NONE, 0);
	}
	pl.p->free_at = pl.t + SESSION_GAP_MS;
	if (pl.dev == 2) {
		struct person *q = &g->people[shared_partner(g, pid)];
		q->free_at = TD_MAX(q->free_at, pl.t + SESSION_GAP_MS);
	}
planned:
	g->nplans++;
	g->plan_events += s->n;
	if (s->n > left)
		s->n = (uint8_t)left;
	g->planned += s->n;
	if (s->n)
		heap_push(g, id);
	else
		g->free_slots[g->nfree++] = id;
	g->stuck = 0;
}

/* ---- formatting ---- */

static char *put_path(const struct gen *g, char *p, uint8_t page, uint16_t product)
{
	p = put_str(p, pages[page].path);
	if (page == PG_CATEGORY)
		p = put_str(p, categories[product].slug);
	else if (page == PG_PRODUCT)
		p = put(p, g->catalog[product].slug, g->catalog[product].slug_n);
	return p;
}

static char *put_query(char *p, const struct touch *tc)
{
	if (tc->source == SRC_NONE)
		return p;
	p = PUTL(p, "?utm_source=");
	p = put_str(p, utm_source[tc->source]);
	p = PUTL(p, "&utm_medium=");
	p = put_str(p, utm_medium[tc->channel]);
	p = PUTL(p, "&utm_campaign=");
	p = put_str(p, campaign_name[tc->campaign]);
	if (tc->click) {
		p = put_str(p, click_param[tc->click]);
		p = put_hex(p, tc->click_id, 16);
	}
	return p;
}

static char *put_url(const struct gen *g, char *p, const struct session *s, uint8_t page,
		     uint16_t product, bool landing)
{
	p = PUTL(p, SITE);
	p = put_path(g, p, page, product);
	return landing ? put_query(p, &s->touch) : p;
}

static char *put_title(const struct gen *g, char *p, uint8_t page, uint16_t product)
{
	if (page == PG_CATEGORY)
		p = put_str(p, categories[product].name);
	else if (page == PG_PRODUCT)
		p = put(p, g->catalog[product].name, g->catalog[product].name_n);
	return put_str(p, pages[page].title);
}

static const struct str *currency(const struct session *s)
{
	static const struct str usd = S("USD"), eur = S("EUR");
	return s->locale == LOCALE_EN_US ? &usd : &eur;
}

static char *put_product(const struct gen *g, char *p, uint16_t product, unsigned qty)
{
	const struct product *pr = &g->catalog[product];
	p = PUTL(p, "{\"product_id\":\"");
	p = put(p, pr->id, pr->id_n);
	p = PUTL(p, "\",\"name\":\"");
	p = put(p, pr->name, pr->name_n);
	p = PUTL(p, "\",\"category\":\"");
	p = put_str(p, categories[pr->cat].name);
	p = PUTL(p, "\",\"price\":");
	p = put_money(p, pr->cents);
	p = PUTL(p, ",\"quantity\":");
	p = put_u64(p, qty);
	*p++ = '}';
	return p;
}

static char *put_order(const struct gen *g, char *p, const struct session *s, bool completed)
{
	uint64_t subtotal = 0;
	for (unsigned i = 0; i < s->ncart; i++)
		subtotal += (uint64_t)g->catalog[s->cart[i].product].cents * s->cart[i].qty;
	uint64_t discount = completed && s->coupon ? subtotal * COUPON_PERCENT / 100 : 0;
	p = PUTL(p, ",\"properties\":{\"order_id\":\"ord-");
	p = put(p, g->tag, sizeof(g->tag));
	*p++ = '-';
	p = s->order_no < 10000000 ? put_pad(p, s->order_no, 7) : put_u64(p, s->order_no);
	p = PUTL(p, "\",\"revenue\":");
	p = put_money(p, subtotal - discount);
	if (discount) {
		p = PUTL(p, ",\"discount\":");
		p = put_money(p, discount);
		p = PUTL(p, ",\"coupon\":\"BLACKFRIDAY20\"");
	}
	p = PUTL(p, ",\"currency\":\"");
	p = put_str(p, *currency(s));
	p = PUTL(p, "\",\"products\":[");
	for (unsigned i = 0; i < s->ncart; i++) {
		if (i)
			*p++ = ',';
		p = put_product(g, p, s->cart[i].product, s->cart[i].qty);
	}
	return PUTL(p, "]}");
}

static char *put_email(const struct gen *g, char *p, uint32_t pid, bool second)
{
	uint64_t h = mix64(pid ^ g->salt_person);
	const struct str *first = first_names[h % TD_ARRAY_LEN(first_names)];
	const struct str *last = last_names[(h >> 16) % TD_ARRAY_LEN(last_names)];
	p = put_str(p, first[1]);
	if (second) {
		p = put_u64(p, (uint64_t)pid + 1);
		return PUTL(p, "@example.org");
	}
	*p++ = '.';
	p = put_str(p, last[1]);
	*p++ = '.';
	p = put_u64(p, (uint64_t)pid + 1);
	return PUTL(p, "@example.com");
}

static char *put_traits(const struct gen *g, char *p, const struct session *s, uint8_t kind)
{
	const struct person *per = &g->people[s->pid];
	p = PUTL(p, ",\"traits\":{");
	switch (kind) {
	case ID_FULL: {
		uint64_t h = mix64(s->pid ^ g->salt_person);
		const struct str *first = first_names[h % TD_ARRAY_LEN(first_names)];
		const struct str *last = last_names[(h >> 16) % TD_ARRAY_LEN(last_names)];
		p = PUTL(p, "\"email\":\"");
		p = put_email(g, p, s->pid, false);
		p = PUTL(p, "\",\"name\":\"");
		p = put_str(p, first[0]);
		*p++ = ' ';
		p = put_str(p, last[0]);
		p = PUTL(p, "\",\"first_name\":\"");
		p = put_str(p, first[0]);
		p = PUTL(p, "\",\"last_name\":\"");
		p = put_str(p, last[0]);
		p = (per->flags & P_B2B) ? PUTL(p, "\",\"plan\":\"business")
					 : PUTL(p, "\",\"plan\":\"free");
		p = PUTL(p, "\",\"created_at\":\"");
		p = put_time_uncached(p, per->created_ms);
		*p++ = '"';
		break;
	}
	case ID_LOGIN:
	case ID_EMAIL2:
		p = PUTL(p, "\"email\":\"");
		p = put_email(g, p, s->pid, kind == ID_EMAIL2);
		*p++ = '"';
		break;
	default:
		p = PUTL(p, "\"plan\":\"plus\"");
		break;
	}
	*p++ = '}';
	return p;
}

static char *put_group(const struct gen *g, char *p, uint32_t pid)
{
	uint32_t acct = (uint32_t)(mix64(pid ^ g->salt_person ^ 0xacc7) % g->naccts);
	uint64_t h = mix64(acct ^ 0xc0ffee);
	uint32_t nsuffix = TD_ARRAY_LEN(company_suffix), nprefix = TD_ARRAY_LEN(company_prefix);
	p = PUTL(p, ",\"groupId\":\"acct-");
	p = put_u64(p, (uint64_t)acct + 1);
	p = PUTL(p, "\",\"traits\":{\"name\":\"");
	p = put_str(p, company_prefix[acct % nprefix]);
	*p++ = ' ';
	p = put_str(p, company_suffix[(acct / nprefix) % nsuffix][0]);
	if (acct >= nprefix * nsuffix) {
		*p++ = ' ';
		p = put_u64(p, acct / (nprefix * nsuffix) + 1);
	}
	p = PUTL(p, "\",\"industry\":\"");
	p = put_str(p, company_suffix[(acct / nprefix) % nsuffix][1]);
	p = PUTL(p, "\",\"employees\":");
	p = put_u64(p, company_employees[h % TD_ARRAY_LEN(company_employees)]);
	return PUTL(p, ",\"plan\":\"business\"}");
}

static char *put_context(const struct gen *g, char *p, const struct session *s, const struct ev *e,
			 const char *url, size_t url_n, const char *ref, size_t ref_n)
{
	if (!(e->flags & E_WEB))
		return PUTL(p, ",\"context\":{\"library\":{\"name\":\"demo-esp\",\"version\":"
			       "\"1.0.0\"}}");
	p = PUTL(p, ",\"context\":{\"ip\":\"");
	p = put(p, s->ip, s->ip_n);
	p = PUTL(p, "\",\"locale\":\"");
	p = put_str(p, locales[s->locale]);
	p = PUTL(p, "\",\"userAgent\":\"");
	p = put_str(p, user_agent[s->agent]);
	p = PUTL(p, "\",\"library\":{\"name\":\"analytics.js\",\"version\":\"next-1.70.0\"},"
		    "\"page\":{\"path\":\"");
	p = put_path(g, p, e->page, e->product);
	p = PUTL(p, "\",\"url\":\"");
	p = put(p, url, url_n);
	if (ref_n) {
		p = PUTL(p, "\",\"referrer\":\"");
		p = put(p, ref, ref_n);
	}
	*p++ = '"';
	*p++ = '}';
	if ((e->flags & E_LANDING) && s->touch.source != SRC_NONE) {
		p = PUTL(p, ",\"campaign\":{\"name\":\"");
		p = put_str(p, campaign_name[s->touch.campaign]);
		p = PUTL(p, "\",\"source\":\"");
		p = put_str(p, utm_source[s->touch.source]);
		p = PUTL(p, "\",\"medium\":\"");
		p = put_str(p, utm_medium[s->touch.channel]);
		p = PUTL(p, "\"}");
	}
	*p++ = '}';
	return p;
}

#define NSOURCES (SRC_COUPONHUB + 1)
#define NCAMPS	 (CAMP_NEWSLETTER + 1)

static uint32_t *click_cell(struct gen *g, int64_t day, unsigned src, unsigned ch, unsigned camp)
{
	return &g->clicks[(((size_t)(day - g->first_day) * NSOURCES + src) * CH_COUNT + ch) *
			      NCAMPS +
			  camp];
}

/* Cost of one paid visit in cents: what such a click roughly costs. */
static unsigned click_cents(unsigned ch, unsigned camp)
{
	switch (ch) {
	case CH_PAID_SEARCH:
		return camp == CAMP_BRAND_SEARCH ? 45 : 95;
	case CH_PAID_SOCIAL:
		return 60;
	case CH_AFFILIATE:
		return 35;
	default: /* email: sending, per visit */
		return 2;
	}
}

/* The costs CSV (demo_options.costs): one line per cell with visits. */
static int emit_costs(struct gen *g)
{
	static const char head[] = "date,source,medium,campaign,cost,currency\n";
	int rc = g->o->costs(g->o->costs_ctx, head, sizeof(head) - 1);
	for (int64_t d = g->first_day; d < g->first_day + g->ndays && !rc; d++)
		for (unsigned src = 1; src < NSOURCES && !rc; src++)
			for (unsigned ch = 0; ch < CH_COUNT && !rc; ch++)
				for (unsigned camp = 1; camp < NCAMPS && !rc; camp++) {
					uint32_t n = *click_cell(g, d, src, ch, camp);
					if (!n)
						continue;
					char date[11], line[160];
					put_date(date, d);
					uint64_t c = (uint64_t)n * click_cents(ch, camp);
					int len = snprintf(
					    line, sizeof(line), "%.10s,%s,%s,%s,%llu.%02llu,EUR\n",
					    date, utm_source[src].s, utm_medium[ch].s,
					    campaign_name[camp].s, (unsigned long long)(c / 100),
					    (unsigned long long)(c % 100));
					rc = g->o->costs(g->o->costs_ctx, line, (size_t)len);
				}
	return rc;
}

static size_t format_event(struct gen *g, const struct session *s, const struct ev *e, char *out)
{
	if (g->clicks && e->kind == K_PAGE && (e->flags & E_WEB) && (e->flags & E_LANDING) &&
	    s->touch.source != SRC_NONE) {
		int64_t day = e->t / DAY_MS;
		if (day >= g->first_day && day < g->first_day + g->ndays)
			(*click_cell(g, day, s->touch.source, s->touch.channel,
				     s->touch.campaign))++;
	}
	char *p = out;
	switch (e->kind) {
	case K_PAGE:
		p = PUTL(p, "{\"type\":\"page\"");
		break;
	case K_IDENTIFY:
		p = PUTL(p, "{\"type\":\"identify\"");
		break;
	case K_GROUP:
		p = PUTL(p, "{\"type\":\"group\"");
		break;
	case K_ALIAS:
		p = PUTL(p, "{\"type\":\"alias\"");
		break;
	default:
		p = PUTL(p, "{\"type\":\"track\",\"event\":\"");
		p = put_str(p, event_name[e->kind]);
		*p++ = '"';
		break;
	}
	/* messageId: a bijective hash of the message's position, so unique */
	uint64_t a = mix64(g->emitted + g->salt_msg);
	p = PUTL(p, ",\"messageId\":\"");
	p = put_uuid(p, a, mix64(a ^ g->salt_msg));
	p = PUTL(p, "\",\"timestamp\":\"");
	p = put_time(g, p, e->t);
	*p++ = '"';
	if ((e->flags & E_ANON) && e->kind != K_ALIAS) {
		p = PUTL(p, ",\"anonymousId\":\"");
		p = put(p, s->anon, s->anon_n);
		*p++ = '"';
	}
	if (e->flags & E_USER) {
		p = PUTL(p, ",\"userId\":\"");
		p = put(p, s->user, s->user_n);
		*p++ = '"';
	}

	char url[512], ref[512];
	size_t url_n = 0, ref_n = 0;
	if (e->flags & E_WEB) {
		url_n =
		    (size_t)(put_url(g, url, s, e->page, e->product, e->flags & E_LANDING) - url);
		if (e->flags & E_LANDING)
			ref_n = (size_t)(put_str(ref, referrer_url[s->touch.referrer]) - ref);
		else if (e->ref_page != PG_NONE)
			ref_n = (size_t)(put_url(g, ref, s, e->ref_page, e->ref_product,
						 e->flags & E_REF_LANDING) -
					 ref);
	}

	switch (e->kind) {
	case K_PAGE:
		p = PUTL(p, ",\"name\":\"");
		p = put_str(p, pages[e->page].name);
		p = PUTL(p, "\",\"properties\":{\"path\":\"");
		p = put_path(g, p, e->page, e->product);
		p = PUTL(p, "\",\"url\":\"");
		p = put(p, url, url_n);
		p = PUTL(p, "\",\"title\":\"");
		p = put_title(g, p, e->page, e->product);
		if (ref_n) {
			p = PUTL(p, "\",\"referrer\":\"");
			p = put(p, ref, ref_n);
		}
		p = PUTL(p, "\"}");
		break;
	case K_IDENTIFY:
		p = put_traits(g, p, s, e->aux);
		break;
	case K_GROUP:
		p = put_group(g, p, s->pid);
		break;
	case K_ALIAS:
		p = PUTL(p, ",\"previousId\":\"");
		if (e->aux == ALIAS_CRM) {
			p = PUTL(p, "crm-");
			p = put_pad(p, (uint64_t)s->pid + 1, 7);
		} else {
			p = put(p, s->anon, s->anon_n);
		}
		*p++ = '"';
		break;
	case K_PRODUCT_VIEWED:
	case K_PRODUCT_ADDED:
		p = PUTL(p, ",\"properties\":");
		p = put_product(g, p, e->product, e->kind == K_PRODUCT_ADDED ? e->aux : 1);
		p--; /* reopen the object for the currency */
		p = PUTL(p, ",\"currency\":\"");
		p = put_str(p, *currency(s));
		p = PUTL(p, "\"}");
		break;
	case K_CHECKOUT_STARTED:
	case K_ORDER_COMPLETED:
		p = put_order(g, p, s, e->kind == K_ORDER_COMPLETED);
		break;
	case K_SIGNED_UP:
		p = PUTL(p, ",\"properties\":{\"method\":\"");
		p = put_str(p, signup_method[e->aux]);
		p = PUTL(p, "\"}");
		break;
	case K_SUBSCRIPTION_STARTED:
		p = PUTL(p, ",\"properties\":{\"plan\":\"plus\",\"billing\":\"");
		p = put_str(p, billing[e->aux]);
		p = PUTL(p, "\",\"price\":");
		p = put_money(p, billing_cents[e->aux]);
		p = PUTL(p, ",\"currency\":\"");
		p = put_str(p, *currency(s));
		p = PUTL(p, "\"}");
		break;
	default: /* email events */
		p = PUTL(p, ",\"properties\":{\"campaign\":\"");
		p = put_str(p, campaign_name[s->campaign]);
		p = PUTL(p, "\",\"email_id\":\"");
		p = put_str(p, campaign_name[s->campaign]);
		*p++ = '-';
		p = put_date(p, s->email_week);
		if (e->kind == K_EMAIL_CLICKED) {
			p = PUTL(p, "\",\"url\":\"");
			p = put_url(g, p, s, e->page, e->product, true);
		}
		p = PUTL(p, "\"}");
		break;
	}
	p = put_context(g, p, s, e, url, url_n, ref, ref_n);
	p = PUTL(p, "}\n");
	*p = '\0';
	assert((size_t)(p - out) < LINE_CAP);
	return (size_t)(p - out);
}

/* ---- the generator ---- */

static int run(struct gen *g)
{
	advance(g);
	while (g->emitted < g->o->events) {
		if (!g->sched_done) {
			if (g->nheap == 0) {
				start_slot(g);
				advance(g);
				continue;
			}
			const struct session *top = &g->slots[g->heap[0]];
			if (g->next_start <= top->ev[top->pos].t) {
				start_slot(g);
				advance(g);
				continue;
			}
		}
		if (g->nheap == 0)
			break; /* nobody could visit any more (see demo.h limits) */
		uint32_t id = g->heap[0];
		struct session *s = &g->slots[id];
		size_t n = format_event(g, s, &s->ev[s->pos], g->line);
		g->emitted++;
		int rc = g->emit(g->ctx, g->line, n);
		if (rc)
			return rc;
		if (++s->pos < s->n) {
			heap_down(g, 0);
		} else {
			g->heap[0] = g->heap[--g->nheap];
			if (g->nheap)
				heap_down(g, 0);
			g->free_slots[g->nfree++] = id;
		}
	}
	return 0;
}

void demo_options_default(struct demo_options *o)
{
	o->seed = 1;
	o->events = 1000000;
	o->users = 50000;
	o->days = 90;
	o->end_ms = td_now_ms();
	o->costs = NULL;
	o->costs_ctx = NULL;
}

int demo_generate(const struct demo_options *o,
		  int (*emit)(void *ctx, const char *line, size_t len), void *ctx)
{
	if (!o || !emit || o->users == 0 || o->users > DEMO_MAX_USERS || o->days == 0 ||
	    o->days > DEMO_MAX_DAYS || o->end_ms < 0 || o->end_ms > MAX_TIME_MS ||
	    o->events > (uint64_t)o->users * o->days * DEMO_MAX_EVENTS_PER_USER_DAY)
		return TD_EINVAL;
	int64_t end = o->end_ms ? o->end_ms : td_now_ms();
	if (end - (int64_t)o->days * DAY_MS < 0)
		return TD_EINVAL;
	if (o->events == 0)
		return 0;

	struct gen *g = td_calloc(1, sizeof(*g));
	int rc = TD_ENOMEM;
	g->o = o;
	g->emit = emit;
	g->ctx = ctx;
	rng_seed(&g->r, o->seed);
	g->salt_msg = mix64(o->seed ^ 0x6d657373616765ULL);
	g->salt_anon = mix64(o->seed ^ 0x616e6f6e796dULL);
	g->salt_person = mix64(o->seed ^ 0x706572736f6eULL);
	g->salt_ip = mix64(o->seed ^ 0x6970ULL);
	put_hex(g->tag, mix64(o->seed ^ 0x746167ULL), (int)sizeof(g->tag));
	g->end_ms = end;
	g->start_ms = end - (int64_t)o->days * DAY_MS;
	g->promo_ms = o->days >= PROMO_MIN_DAYS ? end - PROMO_DAYS * DAY_MS : INT64_MAX;
	g->ts_day = -1;
	g->users = o->users;
	g->naccts = TD_MAX(1u, o->users / 100);
	g->people = td_try_malloc((size_t)o->users * sizeof(*g->people));
	g->known = td_try_malloc((size_t)o->users * sizeof(uint32_t));
	g->line = td_try_malloc(LINE_CAP);
	if (!g->people || !g->known || !g->line || curve_init(g))
		goto out;
	catalog_init(g);
	/* existing customers are people [0, existing); new ones follow in
	 * order of arrival, so a person's index is also their acquisition rank */
	g->existing = (uint32_t)(o->users * EXISTING_SHARE);
	for (uint32_t pid = 0; pid < g->existing; pid++)
		person_init(g, pid, true);
	g->acquired = g->existing;
	if (o->costs) {
		g->first_day = g->start_ms / DAY_MS;
		g->ndays = g->end_ms / DAY_MS - g->first_day + 1;
		g->clicks = td_try_malloc((size_t)g->ndays * NSOURCES * CH_COUNT * NCAMPS *
					  sizeof(*g->clicks));
		if (!g->clicks)
			goto out;
		memset(g->clicks, 0,
		       (size_t)g->ndays * NSOURCES * CH_COUNT * NCAMPS * sizeof(*g->clicks));
	}
	rc = run(g);
	if (!rc && o->costs)
		rc = emit_costs(g);
out:
	free(g->clicks);
	free(g->weight);
	free(g->cum);
	free(g->people);
	free(g->known);
	free(g->line);
	free(g->slots);
	free(g->free_slots);
	free(g->heap);
	free(g);
	return rc;
}
