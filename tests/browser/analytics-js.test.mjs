// Segment's browser SDK (analytics.js, npm @segment/analytics-next) in a real
// headless Chromium against the real tandem binary, all on 127.0.0.1.
//
// Two origins, as in production: a "customer website" (a tiny node http server)
// serves a page and the SDK's prebuilt UMD bundle (dist/umd/index.js, which
// defines window.AnalyticsNext); tandem, on another port, is both the SDK's CDN
// (settings) and its API (events). The page calls
// AnalyticsBrowser.load({ writeKey, cdnURL: tandem }) and then page(),
// identify() and track(). The tests check what the browser asked for and got
// (no console error, no failed request, real CORS preflights answered by
// tandem, nothing sent off 127.0.0.1) and what tandem stored (`tandem export
// events`). The first test saves a screenshot to build/browser/analytics-js.png.
//
// Needs Debian's chromium (/usr/bin/chromium; scripts/deps.sh installs it as
// root). Without it the tests are skipped only when not root, since then
// deps.sh could not have installed it; as root a missing chromium is a failure.
// Every wait is bounded; each test has 25 s.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  REPO,
  startServer,
  createSource,
  exportEvents,
  waitFor,
  sleep,
} from '../integration/lib/server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-proxy-server',
  // Nothing resolves but 127.0.0.1, so nothing can leave the machine. (Not
  // page.route(): with request interception on, Playwright answers CORS
  // preflights itself, which would hide how tandem answers them.)
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
];
const SDK_DIR = path.join(here, 'node_modules/@segment/analytics-next/dist/umd');
const SCREENSHOT = path.join(REPO, 'build/browser/analytics-js.png');
const TEST_TIMEOUT_MS = 25_000;
const EVENTS_TIMEOUT_MS = 10_000;

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const skip =
  !existsSync(CHROMIUM) && !isRoot
    ? `${CHROMIUM} is not installed (not root, so scripts/deps.sh could not install it: apt-get install chromium)`
    : false;

// Rejects after `ms` with a message naming `what`.
function within(ms, what, promise) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// The customer website: GET / is the page, /analytics-next.js the SDK's UMD
// bundle, /analytics-next/bundles/* its lazily loaded chunks (the page points
// the SDK's chunk loader here, so nothing is fetched from Segment's CDN).
async function startWebsite(t, page) {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const send = (status, type, body) => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(body);
    };
    try {
      if (req.method !== 'GET') return send(405, 'text/plain', 'method not allowed\n');
      if (url.pathname === '/') return send(200, 'text/html; charset=utf-8', page());
      if (url.pathname === '/favicon.ico') return send(204, 'image/x-icon', '');
      let file = null;
      if (url.pathname === '/analytics-next.js') file = 'index.js';
      const m = /^\/analytics-next\/bundles\/([A-Za-z0-9_.-]+\.js)$/.exec(url.pathname);
      if (m) file = m[1];
      if (!file) return send(404, 'text/plain', 'not found\n');
      const body = await readFile(path.join(SDK_DIR, file));
      return send(200, 'text/javascript; charset=utf-8', body);
    } catch (err) {
      return send(500, 'text/plain', String(err));
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  t.after(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${server.address().port}`;
}

// The website's page. It loads analytics.js with tandem as its CDN (and the
// extra load options `opts`, e.g. a delivery strategy) and exposes it as
// window.ajs; with `run`, it then calls page(), identify() and track() by
// itself, like a real site, and window.RESULT resolves to what it sent.
function pageHtml({ site, tandem, writeKey, opts = {}, run = false }) {
  const cfg = JSON.stringify({ site, tandem, writeKey, opts, run });
  return `<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>tandem browser test</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 24px; }
  button { background: red; color: white; border: 0; padding: 8px 16px; font-size: 15px; }
  pre { background: #f4f4f4; padding: 12px; white-space: pre-wrap; }
  #status.ok { color: #080; } #status.err { color: #c00; }
</style>
<script>
  window.TEST = ${cfg};
  // The UMD bundle takes its chunk URL from window.analytics._cdn when it is
  // evaluated; point it at this website instead of Segment's CDN.
  window.analytics = { _cdn: window.TEST.site };
</script>
<script src="/analytics-next.js"></script>
</head>
<body>
<h1>Customer website</h1>
<p>analytics.js from <code id="site"></code>, settings and events to tandem at <code id="tandem"></code></p>
<button id="btn">Button</button>
<p id="status">running</p>
<pre id="log"></pre>
<script>
  const log = (s) => { document.getElementById('log').textContent += s + '\\n'; };
  document.getElementById('site').textContent = TEST.site;
  document.getElementById('tandem').textContent = TEST.tandem;
  window.note = (ctx) => {
    const e = ctx.event;
    const failed = ctx.failedDelivery() ? String(ctx.failedDelivery().reason) : null;
    log('sent ' + e.type + (e.event ? ' "' + e.event + '"' : '') + ' ' + e.messageId + (failed ? ' FAILED ' + failed : ''));
    return { type: e.type, messageId: e.messageId, failed };
  };
  window.LOADED = window.AnalyticsNext.AnalyticsBrowser
    .load({ writeKey: TEST.writeKey, cdnURL: TEST.tandem }, TEST.opts)
    .then(([analytics]) => {
      window.ajs = analytics;
      const seg = analytics.settings.cdnSettings.integrations['Segment.io'];
      log('settings: Segment.io apiHost ' + seg.apiHost + ', protocol ' + seg.protocol);
      return { apiHost: seg.apiHost, protocol: seg.protocol };
    });
  window.RESULT = !TEST.run ? null : (async () => {
    const out = { ...(await window.LOADED), sent: [] };
    out.sent.push(note(await ajs.page()));
    out.sent.push(note(await ajs.identify('user-7', { email: 'user7@example.com' })));
    out.sent.push(note(await ajs.track('Button Clicked', { color: 'red' })));
    return out;
  })().then(
    (out) => { const s = document.getElementById('status'); s.textContent = 'done'; s.className = 'ok'; return out; },
    (err) => { const s = document.getElementById('status'); s.textContent = 'error: ' + err; s.className = 'err'; throw err; },
  );
</script>
</body>
</html>
`;
}

// tandem with one source, the website, and a Chromium page watched for
// problems. Everything is stopped by t.after hooks.
async function setup(t, pageOpts = {}) {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} is not installed; as root scripts/deps.sh should have installed it (apt-get install chromium)`,
  );
  const { chromium } = await import('playwright-core');

  const tandem = await startServer(t);
  const writeKey = await createSource(tandem.dataDir, 'website');
  const tandemUrl = tandem.url;
  let site = null;
  site = await startWebsite(t, () => pageHtml({ site, tandem: tandemUrl, writeKey, ...pageOpts }));
  assert.notEqual(new URL(site).origin, new URL(tandemUrl).origin, 'website and tandem must be different origins');

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 15_000 });
  t.after(() => within(10_000, 'closing chromium', browser.close()).catch(() => {}));
  const context = await browser.newContext({ viewport: { width: 900, height: 620 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);

  // Everything the page does on the network and in its console.
  const problems = []; // console errors, page errors, failed requests, HTTP errors
  const requests = []; // { method, url, status }
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfailed', (req) =>
    problems.push(`request failed: ${req.method()} ${req.url()}: ${req.failure()?.errorText}`),
  );
  page.on('response', (res) => {
    const req = res.request();
    requests.push({ method: req.method(), url: res.url(), status: res.status() });
    if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${req.method()} ${res.url()}`);
  });

  // CORS preflights (OPTIONS) do not reach page.on('request'); the DevTools
  // protocol shows them, with tandem's real answer.
  const preflights = new Map(); // requestId -> { url, requestHeaders, status, allowOrigin, allowHeaders, failed }
  const cdp = await context.newCDPSession(page);
  cdp.on('Network.requestWillBeSent', (e) => {
    if (e.type === 'Preflight' || e.initiator?.type === 'preflight' || e.request.method === 'OPTIONS') {
      preflights.set(e.requestId, {
        url: e.request.url,
        requestHeaders: e.request.headers['Access-Control-Request-Headers'] ?? null,
        status: null,
      });
    }
  });
  cdp.on('Network.responseReceived', (e) => {
    const p = preflights.get(e.requestId);
    if (!p) return;
    const h = Object.fromEntries(Object.entries(e.response.headers).map(([k, v]) => [k.toLowerCase(), v]));
    p.status = e.response.status;
    p.allowOrigin = h['access-control-allow-origin'] ?? null;
    p.allowHeaders = h['access-control-allow-headers'] ?? null;
  });
  cdp.on('Network.loadingFailed', (e) => {
    const p = preflights.get(e.requestId);
    if (p) p.failed = `${e.errorText}${e.corsErrorStatus ? ' ' + JSON.stringify(e.corsErrorStatus) : ''}`;
  });
  await cdp.send('Network.enable');

  const describe = () =>
    `\nproblems: ${JSON.stringify(problems, null, 1)}\nrequests: ${JSON.stringify(requests, null, 1)}` +
    `\npreflights: ${JSON.stringify([...preflights.values()], null, 1)}`;
  // Runs fn in the page; a rejection or timeout reports everything seen so far.
  const inPage = async (what, fn, arg) => {
    try {
      return await within(EVENTS_TIMEOUT_MS, what, page.evaluate(fn, arg));
    } catch (err) {
      throw new Error(`${what}: ${err.message}${describe()}`);
    }
  };
  const diagnose = () => {
    t.diagnostic(`website ${site}, tandem ${tandemUrl}`);
    for (const r of requests) t.diagnostic(`${r.method} ${r.url} -> ${r.status}`);
    for (const p of preflights.values()) {
      t.diagnostic(`OPTIONS ${p.url} (requesting headers: ${p.requestHeaders}) -> ${p.status ?? p.failed}`);
    }
  };

  await page.goto(site + '/', { waitUntil: 'load' });
  return { tandem, writeKey, tandemUrl, site, context, page, problems, requests, preflights, describe, inPage, diagnose };
}

// Polls `tandem export events` until pred(events) holds (then waits a little
// longer so that anything sent twice shows up too) or `ms` pass.
async function storedEvents(dataDir, pred, ms = EVENTS_TIMEOUT_MS) {
  const ok = await waitFor(async () => pred(await exportEvents(dataDir)), { ms, interval: 200 });
  if (ok) await sleep(300);
  return { ok: !!ok, events: await exportEvents(dataDir) };
}

const count = (events, type) => events.filter((e) => e.type === type).length;
const hasAllThree = (evs) => count(evs, 'page') >= 1 && count(evs, 'identify') >= 1 && count(evs, 'track') >= 1;

// The three events the page sends, as tandem stored them.
function checkStoredEvents(events, { site, sent }) {
  assert.equal(events.length, 3, `exactly three events; export: ${JSON.stringify(events, null, 1)}`);
  assert.equal(count(events, 'page'), 1);
  assert.equal(count(events, 'identify'), 1);
  assert.equal(count(events, 'track'), 1);
  const [pg] = events.filter((e) => e.type === 'page');
  const [id] = events.filter((e) => e.type === 'identify');
  const [tr] = events.filter((e) => e.type === 'track');
  assert.equal(id.userId, 'user-7');
  assert.equal(id.traits?.email, 'user7@example.com');
  assert.equal(tr.event, 'Button Clicked');
  assert.equal(tr.properties?.color, 'red');
  assert.equal(tr.userId, 'user-7', 'track after identify carries the userId');
  assert.equal(pg.properties?.url, site + '/', 'page() carries the page URL');
  for (const e of events) {
    const what = `${e.type} ${JSON.stringify(e)}`;
    assert.match(e.context?.library?.name ?? '', /analytics\.js|analytics-next/, `context.library.name of ${what}`);
    assert.equal(e.context?.ip, '127.0.0.1', `context.ip of ${what}`);
    assert.equal(typeof e.messageId, 'string', `messageId of ${what}`);
    if (sent) assert.equal(e.messageId, sent.get(e.type), `messageId of ${e.type} is the one the SDK sent`);
    assert.ok(e.receivedAt, `receivedAt of ${what}`);
    assert.ok(e.anonymousId, `anonymousId of ${what}`);
  }
  assert.equal(new Set(events.map((e) => e.anonymousId)).size, 1, 'one anonymousId across the session');
}

// Every request went to the website or to tandem.
function checkOrigins(requests, origins) {
  for (const r of requests) {
    assert.ok(origins.includes(new URL(r.url).origin), `request to neither origin: ${r.method} ${r.url}`);
  }
}

test('analytics.js loads its settings from tandem and sends page, identify and track to it', {
  skip,
  timeout: TEST_TIMEOUT_MS,
}, async (t) => {
  const s = await setup(t, { run: true });
  const { tandem, writeKey, tandemUrl, site, page, problems, requests, preflights, describe } = s;
  const result = await s.inPage('the page (load, page, identify, track)', () => window.RESULT);
  s.diagnose();

  // (a) The SDK got its settings from tandem, with tandem as its API host...
  const settingsUrl = `${tandemUrl}/v1/projects/${writeKey}/settings`;
  const settingsReqs = requests.filter((r) => r.url === settingsUrl);
  assert.equal(settingsReqs.length, 1, `one GET ${settingsUrl}${describe()}`);
  assert.equal(settingsReqs[0].status, 200);
  assert.equal(result.apiHost, `${new URL(tandemUrl).host}/v1`);
  assert.equal(result.protocol, 'http');
  // ... and sent its three events to tandem, which accepted each.
  for (const p of ['p', 'i', 't']) {
    const sent = requests.filter((r) => r.method === 'POST' && r.url === `${tandemUrl}/v1/${p}`);
    assert.equal(sent.length, 1, `one POST /v1/${p}${describe()}`);
    assert.equal(sent[0].status, 200, `POST /v1/${p} answered ${sent[0].status}`);
    // Each POST carries Authorization (Basic writeKey), so each needed a real
    // CORS preflight, answered by tandem itself.
    const pf = [...preflights.values()].filter((x) => x.url === `${tandemUrl}/v1/${p}`);
    assert.equal(pf.length, 1, `one preflight for /v1/${p}${describe()}`);
    assert.ok(!pf[0].failed, `preflight for /v1/${p} failed: ${pf[0].failed}`);
    assert.ok(pf[0].status >= 200 && pf[0].status < 300, `preflight for /v1/${p} answered ${pf[0].status}`);
    assert.ok(pf[0].allowOrigin === '*' || pf[0].allowOrigin === site, `preflight Access-Control-Allow-Origin ${pf[0].allowOrigin}`);
  }
  assert.deepEqual(result.sent.map((x) => x.type), ['page', 'identify', 'track']);
  assert.deepEqual(result.sent.filter((x) => x.failed), [], 'the SDK reported no failed delivery');
  checkOrigins(requests, [site, tandemUrl]);

  // (b) tandem stored exactly those three events.
  const { ok, events } = await storedEvents(tandem.dataDir, hasAllThree);
  assert.ok(ok, `page, identify and track stored within ${EVENTS_TIMEOUT_MS} ms; export: ${JSON.stringify(events)}`);
  checkStoredEvents(events, { site, sent: new Map(result.sent.map((x) => [x.type, x.messageId])) });

  // (c) What a person would see, with what tandem stored appended to the page.
  await page.evaluate((lines) => {
    document.getElementById('log').textContent += '\ntandem export events:\n' + lines.join('\n') + '\n';
  }, events.map((e) => `${e.type} ${e.event ?? ''} userId=${e.userId ?? '-'} ip=${e.context?.ip} lib=${e.context?.library?.name} ${e.messageId}`));
  await mkdir(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT });

  assert.deepEqual(problems, [], 'no console error, failed request or HTTP error in the page');
});

test('analytics.js in batching mode sends its events to tandem as one POST /v1/b', {
  skip,
  timeout: TEST_TIMEOUT_MS,
}, async (t) => {
  const opts = {
    integrations: { 'Segment.io': { deliveryStrategy: { strategy: 'batching', config: { size: 3, timeout: 500 } } } },
  };
  const s = await setup(t, { opts });
  const { tandem, tandemUrl, site, problems, requests, describe } = s;
  await s.inPage('load', () => window.LOADED);
  await s.inPage('page, identify, track', () =>
    Promise.all([
      ajs.page(),
      ajs.identify('user-7', { email: 'user7@example.com' }),
      ajs.track('Button Clicked', { color: 'red' }),
    ]).then((ctxs) => ctxs.map(note)),
  );
  const { ok, events } = await storedEvents(tandem.dataDir, hasAllThree);
  s.diagnose();
  assert.ok(ok, `page, identify and track stored within ${EVENTS_TIMEOUT_MS} ms; export: ${JSON.stringify(events)}${describe()}`);
  const batches = requests.filter((r) => r.method === 'POST' && r.url === `${tandemUrl}/v1/b`);
  assert.equal(batches.length, 1, `one POST /v1/b${describe()}`);
  assert.equal(batches[0].status, 200);
  assert.equal(requests.filter((r) => r.method === 'POST' && r.url !== `${tandemUrl}/v1/b`).length, 0);
  checkStoredEvents(events, { site });
  checkOrigins(requests, [site, tandemUrl]);
  assert.deepEqual(problems, [], 'no console error, failed request or HTTP error in the page');
});

// analytics-next sends every retried delivery with an `X-Retry-Count: N`
// header, and an event tracked while the browser is offline is queued with one
// attempt already counted, so it goes out as a retry once the browser is back
// online. The POST's preflight therefore asks for `authorization,x-retry-count`:
// unless tandem's Access-Control-Allow-Headers allows it, Chromium blocks every
// retry and the event is lost.
test('an event tracked while offline reaches tandem once the browser is back online', {
  skip,
  timeout: TEST_TIMEOUT_MS,
}, async (t) => {
  const s = await setup(t);
  const { tandem, tandemUrl, site, context, problems, requests, describe } = s;
  await s.inPage('load', () => window.LOADED);
  await context.setOffline(true);
  assert.equal(await s.page.evaluate(() => navigator.onLine), false);
  await s.inPage('track while offline', () => ajs.track('Offline Click', { n: 1 }).then(note));
  await sleep(300);
  await context.setOffline(false);
  const { ok, events } = await storedEvents(
    tandem.dataDir,
    (evs) => evs.some((e) => e.type === 'track' && e.event === 'Offline Click'),
    6_000,
  );
  s.diagnose();
  assert.ok(ok, `the offline track stored within 6 s of going back online; export: ${JSON.stringify(events)}${describe()}`);
  assert.equal(events.length, 1, `exactly one event; export: ${JSON.stringify(events, null, 1)}`);
  assert.equal(events[0].context?.ip, '127.0.0.1');
  checkOrigins(requests, [site, tandemUrl]);
  // A delivery the SDK attempts while the browser is offline fails with
  // net::ERR_INTERNET_DISCONNECTED (Chromium logs it); that is the point of the
  // test, and the only failure allowed: nothing else may go wrong.
  const real = problems.filter((p) => !p.includes('net::ERR_INTERNET_DISCONNECTED'));
  assert.deepEqual(real, [], 'no other console error, failed request or HTTP error in the page');
});
