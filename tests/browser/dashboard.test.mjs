// The dashboard (web/) in headless Chromium against the real tandem binary
// on a demo workspace (`tandem demo --generate`, as `make run` makes it):
// sign in, open every page (each page's data load time is measured in the
// browser and printed, and must stay under 300 ms), build a funnel and check
// its numbers equal the API's answer, search a profile, see a rejected event
// in data health, create a source; no console error anywhere. Screenshots of
// every page (1280 px wide, and phone width) go to BUILD/screenshots/, BUILD
// being the directory of the tandem binary under test (TANDEM_BIN).
//
// Needs Debian's chromium, as analytics-js.test.mjs.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO, TANDEM_BIN, startServer, makeDataDir, createSource, cli, request } from '../integration/lib/server.mjs';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-proxy-server',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
];
const WEB = path.join(REPO, 'web');
const SHOTS = path.join(path.dirname(TANDEM_BIN), 'screenshots');
const EVENTS = Number(process.env.TANDEM_DASH_EVENTS || 300_000); // make run's demo size
const PAGE_BUDGET_MS = 300;
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const skip = !existsSync(CHROMIUM) && !isRoot ? `${CHROMIUM} is not installed (apt-get install chromium)` : false;

// ---------------------------------------------------------------------------
// One workspace, one server, one browser for the whole file.

const cleanups = [];
const hooks = { after: (fn) => cleanups.push(fn) };
const S = {}; // tandem, front, token, writeKey, browser, page, problems, timings

before(async () => {
  if (skip) return;
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is not installed; as root scripts/deps.sh installs it`);
  assert.ok(existsSync(path.join(WEB, 'node_modules/uplot/dist/uPlot.iife.min.js')),
    'web/node_modules/uplot is missing: run npm ci in web/ (scripts/deps.sh does)');

  const dataDir = await makeDataDir(hooks);
  S.writeKey = await createSource(dataDir, 'demo');
  const file = path.join(path.dirname(dataDir), 'demo.ndjson');
  await cli(['demo', '--generate', '--events', String(EVENTS), '--users', String(Math.max(1000, Math.round(EVENTS / 15))), '--days', '90', '--out', file], { timeout: 120_000 });
  await cli(['import', file, '--data', dataDir, '--source', 'demo', '--quiet'], { timeout: 180_000 });
  S.tandem = await startServer(hooks, { dataDir });
  S.token = (await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();

  // One rejected event (no event name) for the data health page.
  S.marker = `dash-${process.pid}`;
  const bad = await S.tandem.post('/v1/track', { userId: 'user-1', properties: { marker: S.marker } }, { key: S.writeKey });
  assert.equal(bad.status, 400, `a track without event is rejected: ${bad.text}`);

  const home = await request(S.tandem.url + '/');
  const served = home.status === 200 && /text\/html/.test(home.headers.get('content-type') ?? '') && home.text.includes('/assets/js/main.js');
  assert.ok(served, `GET / must be the dashboard (status ${home.status}, ${home.headers.get('content-type')})`);
  S.front = S.tandem.url;

  const { chromium } = await import('playwright-core');
  S.browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 15_000 });
  const context = await S.browser.newContext({ viewport: DESKTOP });
  S.page = await context.newPage();
  S.page.setDefaultTimeout(10_000);
  S.problems = [];
  S.timings = new Map();
  S.page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    // Chromium logs every HTTP error answer. Expected ones: 401 from
    // /api/session before signing in or for a wrong token. A refused query
    // shows an error box on its page, which ready() checks.
    const where = msg.location()?.url ?? '';
    if (/\/api\/session$/.test(where) && /status of 401/.test(msg.text())) return;
    S.problems.push(`console error: ${msg.text()} (${msg.location()?.url})`);
  });
  S.page.on('pageerror', (err) => S.problems.push(`page error: ${err.message}`));
  S.page.on('requestfailed', (req) => {
    if (req.failure()?.errorText === 'net::ERR_ABORTED') return; // a page left before its answer
    S.problems.push(`request failed: ${req.method()} ${req.url()}: ${req.failure()?.errorText}`);
  });
  S.page.on('request', (req) => {
    if (!req.url().startsWith(S.front)) S.problems.push(`request off the server: ${req.url()}`);
  });
  await mkdir(SHOTS, { recursive: true });
});

// What a test's page did is that test's: nothing carries over.
beforeEach(() => S.problems?.splice(0));

after(async () => {
  if (S.timings?.size) {
    console.log('page data load times (ms, in the browser):');
    for (const [name, ms] of S.timings) console.log(`  ${name.padEnd(12)} ${ms.toFixed(1)}`);
  }
  if (S.browser) await S.browser.close().catch(() => {});
  for (const fn of cleanups.reverse()) await fn();
});

// ---------------------------------------------------------------------------
// Helpers

const api = async (p, body) => {
  const r = await request(S.tandem.url + p, {
    method: body === undefined ? 'GET' : 'POST',
    body,
    headers: { Authorization: `Bearer ${S.token}` },
  });
  assert.equal(r.status, 200, `${p}: ${r.text}`);
  return r.json;
};

async function signIn() {
  const { page } = S;
  await page.goto(S.front + '/');
  await page.waitForSelector('#token');
  await page.fill('#token', S.token);
  await page.press('#token', 'Enter');
  await page.waitForSelector('#app:not([hidden])');
}

async function ensureSignedIn() {
  if (await S.page.isVisible('#app')) return;
  await signIn();
}

// Waits until page `name` has its data on screen; returns the load time the
// page measured (route to data shown).
async function ready(name) {
  await S.page.waitForFunction((n) => {
    const m = document.getElementById('main');
    return m.dataset.page === n && (m.dataset.state === 'ready' || m.dataset.state === 'error');
  }, name);
  const state = await S.page.getAttribute('#main', 'data-state');
  const errors = await S.page.$$eval('#main .state.error', (els) => els.map((e) => e.textContent));
  assert.equal(state, 'ready', `page ${name} shows an error: ${errors.join(' | ')}`);
  assert.deepEqual(errors, [], `page ${name} shows no error box`);
  return S.page.evaluate((n) => performance.getEntriesByName(`tandem:page:${n}`).at(-1)?.duration ?? null, name);
}

async function open(name, hash) {
  await ensureSignedIn();
  // a navigation that changes the hash starts a new visit of a page: wait for
  // it, so that the state of the page shown before (the same page, after
  // signing in) is not taken for the new one's
  const target = hash ?? `#/${name}`;
  const before = await S.page.evaluate((t) => (location.hash === t ? null : document.getElementById('main').dataset.visit ?? ''), target);
  if (hash) await S.page.evaluate((h) => (location.hash = h), hash);
  else await S.page.click(`nav a[data-page="${name}"]`);
  if (before !== null) await S.page.waitForFunction((v) => document.getElementById('main').dataset.visit !== v, before);
  return ready(name);
}

async function shoot(name) {
  await S.page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

function noProblems() {
  const p = S.problems.splice(0);
  assert.deepEqual(p, [], 'no console error, page error or failed request');
}

// ---------------------------------------------------------------------------

test('sign in: a wrong token is refused, the admin token signs in to the linked page, sign out signs out', { skip, timeout: 60_000 }, async () => {
  const { page } = S;
  await page.goto(S.front + '/#/trends');
  await page.waitForSelector('#token');
  await shoot('signin');
  await page.fill('#token', 'not-a-token');
  await page.click('form button[type="submit"]');
  await page.waitForSelector('.form-status.error');
  assert.match(await page.textContent('.form-status'), /unknown or revoked/);
  assert.equal(await page.isVisible('#app'), false);

  await page.fill('#token', S.token);
  await page.press('#token', 'Enter');
  await page.waitForSelector('#app:not([hidden])');
  await ready('trends');
  const cookies = await page.context().cookies();
  const c = cookies.find((x) => x.name === 'tandem_session');
  assert.ok(c, 'a tandem_session cookie');
  assert.equal(c.httpOnly, true);
  assert.equal(c.sameSite, 'Strict');
  assert.equal(await page.evaluate(() => document.cookie.includes('tandem_session')), false, 'the page cannot read the session cookie');

  // The session survives a reload; signing out ends it. The reload is a
  // first page load: from navigation to the page's data on screen.
  await page.reload();
  await ready('trends');
  const first = await page.evaluate(() => {
    const m = performance.getEntriesByName('tandem:page:trends').at(-1);
    return m.startTime + m.duration;
  });
  S.timings.set('first load', first);
  assert.ok(first < 1000, `first page load: data on screen ${first.toFixed(1)} ms after navigation, over 1 s`);
  await page.click('#signout');
  await page.waitForSelector('#token');
  assert.equal(await page.isVisible('#app'), false);
  await page.reload();
  await page.waitForSelector('#token');
  noProblems();
});

const PAGES = [
  ['overview', 'Overview'],
  ['trends', 'Trends'],
  ['funnels', 'Funnels'],
  ['retention', 'Retention'],
  ['paths', 'Paths'],
  ['profiles', 'Profiles'],
  ['health', 'Data health'],
  ['sources', 'Sources'],
];

for (const [name, title] of PAGES) {
  test(`page ${title}: its data loads in under ${PAGE_BUDGET_MS} ms, at 1280 px and phone width`, { skip, timeout: 60_000 }, async () => {
    const ms = await open(name);
    S.timings.set(name, ms);
    assert.equal(await S.page.title(), `${title} · tandem`);
    assert.equal(await S.page.getAttribute(`nav a[data-page="${name}"]`, 'aria-current'), 'page');
    await shoot(name);
    await S.page.setViewportSize(PHONE);
    try {
      // Nothing wider than the screen but what scrolls inside its own box.
      const overflow = await S.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `page ${name} is ${overflow} px wider than a phone screen`);
      await shoot(`${name}-phone`);
    } finally {
      await S.page.setViewportSize(DESKTOP);
    }
    assert.ok(ms !== null, `page ${name} measured its load`);
    assert.ok(ms < PAGE_BUDGET_MS, `page ${name}: data in ${ms.toFixed(1)} ms, over ${PAGE_BUDGET_MS} ms`);
    noProblems();
  });
}

test('Overview: the latest events show who and where the visit came from, as the API does', { skip, timeout: 60_000 }, async () => {
  const { page } = S;
  await open('overview');
  const rows = await page.$$eval('#latest-events table tbody tr',
    (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  const head = await page.$$eval('#latest-events table thead th', (ths) => ths.map((t) => t.textContent));
  assert.deepEqual(head, ['Time', 'Event', 'User', 'Visit from', 'Person']);
  const res = await api('/api/query', { kind: 'events', limit: 15, properties: ['userId', 'session.channel'] });
  assert.equal(rows.length, res.events.length);
  assert.deepEqual(rows.map((r) => [r[1], r[2], r[3], r[4]]),
    res.events.map((e) => [e.event, e.properties.userId ?? '', e.properties['session.channel'] ?? '', String(e.pid)]));
  assert.ok(res.events.some((e) => e.properties.userId), 'the demo\'s latest events name some users');
  noProblems();
});

test('the phone menu opens and leads to a page; the pages are reachable with the keyboard', { skip, timeout: 60_000 }, async () => {
  const { page } = S;
  await open('trends');
  await page.setViewportSize(PHONE);
  try {
    assert.equal(await page.isVisible('nav a[data-page="paths"]'), false, 'the menu is closed on a phone');
    await page.click('#menu-toggle');
    await page.click('nav a[data-page="paths"]');
    await ready('paths');
    assert.equal(await page.isVisible('nav a[data-page="paths"]'), false, 'choosing a page closes the menu');
  } finally {
    await page.setViewportSize(DESKTOP);
  }
  await page.focus('.brand');
  let reached = false;
  for (let i = 0; i < 15 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement?.dataset?.page === 'retention');
  }
  assert.ok(reached, 'Tab reaches the Retention link');
  await page.keyboard.press('Enter');
  await ready('retention');
  noProblems();
});

test('a funnel built in the page shows the numbers of the API, and its drop-offs', { skip, timeout: 60_000 }, async () => {
  const { page } = S;
  await open('funnels');
  // Product Viewed -> Product Added -> Order Completed within 1 day.
  const answered = page.waitForResponse((r) => {
    const body = r.request().postData() ?? '';
    return r.url().endsWith('/api/query') && body.includes('"window":"1d"') && !body.includes('"persons"');
  });
  await page.selectOption('[aria-label="Step 1 event"]', 'Product Viewed');
  await page.selectOption('[aria-label="Step 2 event"]', 'Product Added');
  if (await page.$('[aria-label="Remove step 4"]')) await page.click('[aria-label="Remove step 4"]');
  await page.selectOption('[aria-label="Step 3 event"]', 'Order Completed');
  await page.getByLabel('Conversion window').selectOption('1d');
  const res = await answered;
  await ready('funnels');
  await page.waitForFunction(() => document.querySelectorAll('.funnel-step').length === 3 && !document.querySelector('.result.stale'));
  const q = JSON.parse(res.request().postData());
  assert.deepEqual(q.steps.map((s) => s.event), ['Product Viewed', 'Product Added', 'Order Completed']);
  assert.equal(q.window, '1d');

  const fromApi = await api('/api/query', q);
  const shown = await page.$$eval('.funnel-step', (els) => els.map((e) => Number(e.dataset.persons)));
  assert.deepEqual(shown, fromApi.steps.map((s) => s.persons), 'persons per step as the API answers');
  assert.ok(fromApi.steps[0].persons > 100 && fromApi.steps[2].persons > 0, `a meaningful funnel: ${JSON.stringify(fromApi.steps)}`);
  const facts = await page.$$eval('.funnel-step .funnel-facts', (els) => els.map((e) => e.textContent));
  const pct = (v) => new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 }).format(Math.round(v * 10) / 10);
  for (let i = 1; i < 3; i++) {
    assert.ok(facts[i].includes(`${pct(fromApi.steps[i].conversion_from_first_pct)} % of step 1`), `step ${i + 1} conversion: ${facts[i]}`);
  }

  // The persons who dropped off before step 2.
  const dropped = page.waitForResponse((r) => (r.request().postData() ?? '').includes('"dropped":true'));
  await page.click('.funnel-step[data-step="2"] button');
  const dq = JSON.parse((await dropped).request().postData());
  const dApi = await api('/api/query', dq);
  await page.waitForSelector('.persons h3');
  const head = await page.textContent('.persons h3');
  assert.equal(dApi.persons.total, fromApi.steps[0].persons - fromApi.steps[1].persons);
  assert.match(head.replace(/[\s,.\u202f]/g, ''), new RegExp(`:${dApi.persons.total}persons`));
  const pids = await page.$$eval('.pids li', (els) => els.map((e) => e.textContent));
  assert.deepEqual(pids, dApi.persons.pids.map((p) => `person ${p}`));
  await shoot('funnels-built');

  // The view is in the URL: opening it again shows the same funnel.
  const url = page.url();
  const steps = JSON.parse(new URLSearchParams(url.split('?')[1]).get('steps'));
  assert.deepEqual(steps.map((s) => s.event), q.steps.map((s) => s.event));
  await page.goto('about:blank');
  await page.goto(url);
  await ready('funnels');
  const again = await page.$$eval('.funnel-step', (els) => els.map((e) => Number(e.dataset.persons)));
  assert.deepEqual(again, shown);
  noProblems();
});

test('a trends view is rebuilt from its URL and shows the API totals', { skip, timeout: 60_000 }, async () => {
  const { page } = S;
  const series = [{ event: 'Order Completed', math: 'sum', property: 'properties.revenue' }, { event: 'Product Viewed', math: 'unique_persons' }];
  const answered = page.waitForResponse((r) => r.url().endsWith('/api/query') && (r.request().postData() ?? '').includes('"interval":"week"'));
  await open('trends', `#/trends?series=${encodeURIComponent(JSON.stringify(series))}&range=90d&interval=week&chart=bar`);
  const q = JSON.parse((await answered).request().postData());
  assert.deepEqual(q.series, series);
  const fromApi = await api('/api/query', q);
  const totals = await page.$$eval('table[aria-label="Trend values"] tbody tr td:first-of-type', (els) => els.map((e) => e.textContent));
  const fmt = (v) => new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 }).format(v);
  assert.deepEqual(totals, fromApi.series.map((s) => fmt(s.total)));
  assert.ok(fromApi.series[0].total > 0);
  assert.equal(await page.$$eval('.uplot', (els) => els.length), 1, 'one chart');
  await shoot('trends-url');
  noProblems();
});

test('trends: a series gets filters of its own in the page, and the totals are the API\'s', { skip, timeout: 60_000 }, async () => {
  const { page } = S;
  const series = [{ event: '$page', math: 'count' }, { event: '$page', math: 'count' }];
  await open('trends', `#/trends?series=${encodeURIComponent(JSON.stringify(series))}&range=90d&interval=week`);
  // series B: only the pages of visits that came from paid search
  const answered = page.waitForResponse((r) => r.url().endsWith('/api/query') && (r.request().postData() ?? '').includes('Paid Search'));
  await page.click('button[aria-label="Filter series 2"]');
  const row = page.locator('.series-filters .filter-row').first();
  await row.locator('[aria-label="Filter property"]').fill('session.channel');
  await row.locator('[aria-label="Filter property"]').dispatchEvent('change');
  await row.locator('[aria-label="Filter value"]').fill('Paid Search');
  await row.locator('[aria-label="Filter value"]').dispatchEvent('change');
  const q = JSON.parse((await answered).request().postData());
  assert.equal(q.series[0].filters, undefined, 'series A keeps no filter');
  assert.deepEqual(q.series[1].filters, [{ property: 'session.channel', operator: '=', value: 'Paid Search' }]);
  await page.waitForFunction(() => [...document.querySelectorAll('table[aria-label="Trend values"] tbody th')].some((t) => t.textContent.includes('where session.channel')));
  const fromApi = await api('/api/query', q);
  const totals = await page.$$eval('table[aria-label="Trend values"] tbody tr td:first-of-type', (els) => els.map((e) => e.textContent));
  const fmt = (v) => new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 }).format(v);
  assert.deepEqual(totals, fromApi.series.map((s) => fmt(s.total)));
  assert.ok(fromApi.series[1].total > 0 && fromApi.series[1].total < fromApi.series[0].total,
    `paid search pages ${fromApi.series[1].total} of ${fromApi.series[0].total}`);
  // the filter is in the URL, so the view can be shared
  const hash = await page.evaluate(() => location.hash);
  const inUrl = JSON.parse(new URLSearchParams(hash.slice(hash.indexOf('?') + 1)).get('series'));
  assert.deepEqual(inUrl[1].filters, q.series[1].filters);
  await shoot('trends-series-filter');
  noProblems();
});

test('a profile is found by email and by trait, and its page shows what the API has', { skip, timeout: 60_000 }, async () => {
  const { page } = S;
  const found = await api('/api/profiles?where=plan%3Dbusiness&limit=1');
  assert.ok(found.total > 0, 'the demo has business customers');
  const email = found.profiles[0].identifiers.find((i) => i.type === 'email')?.value;
  assert.ok(email, `an email among ${JSON.stringify(found.profiles[0].identifiers)}`);
  const prof = await api(`/api/profiles/email:${encodeURIComponent(email)}?limit=1`);

  await open('profiles');
  await page.fill('#profile-search', email);
  await page.press('#profile-search', 'Enter');
  await page.waitForFunction(() => location.hash.startsWith('#/profiles/'));
  await ready('profiles');
  const ids = await page.$$eval('table.identifiers tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
  assert.deepEqual(ids, prof.identifiers.map((i) => [i.type, i.value]));
  const traits = await page.$$eval('table.traits tbody tr td:first-child', (els) => els.map((e) => e.textContent));
  assert.deepEqual(traits, Object.keys(prof.traits));
  assert.ok(await page.$$eval('.timeline .event', (els) => els.length) > 0, 'an event timeline');
  // each visit's events say which visit they belong to, as the API does
  const visits = await page.$$eval('.timeline .visit', (els) => els.map((e) => e.textContent));
  const stamped = (await api(`/api/profiles/email:${encodeURIComponent(email)}?limit=25`))
    .events.items.filter((e) => e.session);
  assert.ok(stamped.length > 0, 'the demo events have sessions');
  assert.equal(visits.length, stamped.length);
  assert.ok(visits.every((v, i) => v.startsWith(`visit ${stamped[i].session.number}`)), visits.join('\n'));
  await shoot('profile');

  // By trait: the number of matches is the API's.
  await open('profiles');
  await page.fill('#profile-search', 'plan=business');
  await page.press('#profile-search', 'Enter');
  await page.waitForSelector('table.search-results');
  const all = await api('/api/profiles?where=plan%3Dbusiness&limit=50');
  const rows = await page.$$eval('table.search-results tbody tr', (els) => els.length);
  assert.equal(rows, all.profiles.length);
  assert.match((await page.textContent('#main .result p')).replace(/[\s,.\u202f]/g, ''), new RegExp(`^${all.total}profilesmatch`));
  await shoot('profiles-search');
  noProblems();
});

test('data health shows the rejected event with its sample from the quarantine', { skip, timeout: 60_000 }, async () => {
  const { page } = S;
  await open('health');
  const reason = await page.waitForSelector('.reason[data-code="missing_event"]');
  await (await reason.$('summary')).click();
  const raw = await reason.$$eval('pre.raw', (els) => els.map((e) => e.textContent).join('\n'));
  assert.ok(raw.includes(S.marker), `the rejected message is shown: ${raw}`);
  const rows = await page.$$eval('table.sources-health tbody tr', (els) => els.map((r) => [...r.cells].map((c) => c.textContent)));
  const demo = rows.find((r) => r[0] === 'demo');
  assert.ok(demo, `the demo source is listed: ${JSON.stringify(rows)}`);
  assert.equal(demo[2], '1', 'one event rejected from the demo source');
  await shoot('health-rejected');
  noProblems();
});

test('a new source shows its write key and install snippets for this server', { skip, timeout: 60_000 }, async () => {
  const { page } = S;
  await open('sources');
  await page.fill('#source-name', 'web-shop');
  await page.press('#source-name', 'Enter');
  await page.waitForSelector('.source[data-source="web-shop"]');
  const key = (await page.textContent('.source[data-source="web-shop"] .write-key')).trim();
  assert.match(key, /^wk_[0-9a-f]{32}$/);
  const listed = await cli(['source', 'list', '--data', S.tandem.dataDir]);
  assert.match(listed.stdout, new RegExp(`web-shop\\s+${key}`));
  const code = await page.$$eval('.source[data-source="web-shop"] pre code', (els) => els.map((e) => e.textContent));
  assert.equal(code.length, 3);
  for (const c of code) assert.ok(c.includes(key) && c.includes(S.front), `a snippet with the key and this server: ${c}`);
  // A second source of the same name is refused with a clear message.
  await page.fill('#source-name', 'web-shop');
  await page.press('#source-name', 'Enter');
  await page.waitForSelector('.form-status.error');
  assert.match(await page.textContent('.form-status'), /exists already/);
  await shoot('sources-created');
  const errs = S.problems.splice(0).filter((p) => !/409/.test(p));
  assert.deepEqual(errs, []);
});

test('the Attribution page is offered when the server answers attribution queries', { skip, timeout: 60_000 }, async () => {
  const { page } = S;
  await open('trends');
  const r = await request(S.tandem.url + '/api/session', { headers: { Authorization: `Bearer ${S.token}` } });
  assert.ok(r.json.query_kinds.includes('attribution'), `the session names the query kinds: ${r.text}`);
  assert.equal(await page.isVisible('nav a[data-page="attribution"]'), true);
  S.timings.set('attribution', await open('attribution'));
  await shoot('attribution');
  noProblems();
});
