// Sessions stamped at ingest, against the real binary: events sent over
// /v1/batch get session.id, .number, .landing_page and .source/.medium/
// .campaign/.channel, queryable at once over /api/query and with
// `tandem query` on the running server's data; a kill -9 and restart keep a
// visit's session going and number the next one after it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  cleanupTempDirs, createSource, makeDataDir, runCli, startServer, startWithSource, waitFor,
} from './lib/server.mjs';

const T = { timeout: 30_000 };
const HOOK = { timeout: 60_000 };

after(cleanupTempDirs);

const bearer = (token) => ({ Authorization: `Bearer ${token}` });

// One visitor: a paid landing and two pages (one session), 45 minutes of
// silence, an organic visit, then a newsletter click two minutes later
// (a new campaign: a new session at once).
const t0 = Date.parse('2026-03-02T09:00:00Z');
const at = (min) => new Date(t0 + min * 60_000).toISOString();
const page = (id, min, url, referrer) => ({
  type: 'page',
  messageId: id,
  anonymousId: 'visitor-1',
  timestamp: at(min),
  context: { page: { url, ...(referrer ? { referrer } : {}) } },
});
const journey = [
  page('s1', 0, 'https://shop.example/spring?utm_source=google&utm_medium=cpc&utm_campaign=spring'),
  page('s2', 10, 'https://shop.example/product/7', 'https://shop.example/spring'),
  { type: 'track', event: 'Order Completed', messageId: 's3', anonymousId: 'visitor-1', timestamp: at(20),
    properties: { revenue: 80 } },
  page('s4', 65, 'https://shop.example/blog/tips', 'https://www.google.com/'),
  page('s5', 67, 'https://shop.example/offer?utm_source=newsletter&utm_medium=email&utm_campaign=march'),
];

describe('sessions stamped at ingest', () => {
  let dir, key, srv, token;

  before(async () => {
    ({ dir, key, srv, token } = await startWithSource());
    const res = await srv.post('/v1/batch', { batch: journey }, { key });
    assert.equal(res.status, 200, res.text);
    await stored(5);
  }, HOOK);
  after(() => srv?.stop());

  const query = (doc) => srv.post('/api/query', doc, { headers: bearer(token) });
  // waits until the store has n events in the journey's days
  const stored = (n) =>
    waitFor(async () => {
      const res = await query({ kind: 'trends', series: [{ event: '' }],
        date_from: '2026-03-01', date_to: '2026-03-05', interval: 'day' });
      return res.status === 200 && res.json.series[0].total === n;
    }, { ms: 5000 });
  const byBreakdown = async (breakdown, filters = []) => {
    const res = await query({
      kind: 'trends', series: [{ event: '' }], breakdown, filters,
      date_from: '2026-03-01', date_to: '2026-03-05', interval: 'day',
    });
    assert.equal(res.status, 200, res.text);
    // (an event without the property is the line whose value is null)
    return Object.fromEntries(
      res.json.series.map((s) => [s.is_other ? '(other)' : String(s.breakdown_value), s.total]));
  };

  it('groups the events of each visit under its source, medium, campaign and channel', T, async () => {
    assert.deepEqual(await byBreakdown('session.source'), { google: 3, Google: 1, newsletter: 1 });
    assert.deepEqual(await byBreakdown('session.medium'), { cpc: 3, search: 1, email: 1 });
    assert.deepEqual(await byBreakdown('session.campaign'), { spring: 3, march: 1, null: 1 });
    assert.deepEqual(await byBreakdown('session.channel'),
      { 'Paid Search': 3, 'Organic Search': 1, Email: 1 });
    assert.deepEqual(await byBreakdown('session.landing_page'),
      { '/spring': 3, '/blog/tips': 1, '/offer': 1 });
  });

  it('numbers the visits and marks the first event of each', T, async () => {
    assert.deepEqual(await byBreakdown('session.number'), { 1: 3, 2: 1, 3: 1 });
    const metrics = (await srv.get('/metrics')).text;
    assert.match(metrics, /^tandem_sessions_started_total 3$/m);
    assert.match(metrics, /^tandem_sessions_persons 1$/m);
    assert.match(metrics, /^tandem_sessions_late_events_total 0$/m);
    assert.match(metrics, /^tandem_sessions_log_bytes [1-9]\d*$/m);
    const firsts = await byBreakdown('session.landing_page',
      [{ property: 'session.first', operator: 'is_set' }]);
    assert.deepEqual(firsts, { '/spring': 1, '/blog/tips': 1, '/offer': 1 });
    // the order came in the paid visit: revenue by session source
    const res = await query({
      kind: 'trends', series: [{ event: 'Order Completed', math: 'sum', property: 'properties.revenue' }],
      breakdown: 'session.campaign', date_from: '2026-03-01', date_to: '2026-03-05', interval: 'day',
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.series.map((s) => [s.breakdown_value, s.total]), [['spring', 80]]);
  });

  it('the profile timeline shows each event\'s session', T, async () => {
    const res = await srv.get('/api/profiles/anonymous_id:visitor-1', { headers: bearer(token) });
    assert.equal(res.status, 200, res.text);
    const items = res.json.events.items; // newest first
    assert.deepEqual(items.map((e) => e.session?.number), [3, 2, 1, 1, 1]);
    assert.deepEqual(items[0].session, {
      campaign: 'march', channel: 'Email', first: true, id: items[0].session.id,
      landing_page: '/offer', medium: 'email', number: 3, source: 'newsletter',
    });
    assert.equal(items[2].event, 'Order Completed');
    assert.equal(items[2].session.id, items[4].session.id, 'the order is in the landing\'s session');
    assert.equal(items[2].session.first, undefined);
  });

  it('tandem query on the running server\'s data sees the same stamps', T, async () => {
    const doc = JSON.stringify({
      kind: 'trends', series: [{ event: '' }], breakdown: 'session.id',
      date_from: '2026-03-01', date_to: '2026-03-05', interval: 'day',
    });
    const cli = await runCli(['query', '--data', dir, doc]);
    assert.equal(cli.code, 0, cli.stderr);
    const api = await query(JSON.parse(doc));
    const ids = (j) => j.series.map((s) => [s.breakdown_value, s.total]).sort();
    assert.deepEqual(ids(JSON.parse(cli.stdout)), ids(api.json));
    assert.equal(ids(api.json).length, 3, 'three sessions');
  });

  it('tandem export --with-sessions adds each event\'s session; without it the messages are as stored', T, async () => {
    const lines = async (...args) => {
      const r = await runCli(['export', 'events', '--data', dir, ...args]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim().split(/\r?\n/).filter(Boolean);
    };
    const plain = (await lines()).map((l) => JSON.parse(l));
    assert.ok(plain.length >= 5 && plain.every((m) => !('session' in m)), 'as stored: no session');
    const withS = (await lines('--with-sessions')).map((l) => JSON.parse(l));
    const byId = Object.fromEntries(withS.map((m) => [m.messageId, m]));
    assert.deepEqual(byId.s1.session, {
      campaign: 'spring', channel: 'Paid Search', first: true, id: byId.s1.session.id,
      landing_page: '/spring', medium: 'cpc', number: 1, source: 'google',
    });
    assert.equal(byId.s3.session.id, byId.s1.session.id);
    assert.equal(byId.s5.session.number, 3);
    // the rest of each message is untouched
    const { session, ...rest } = byId.s3;
    assert.deepEqual(rest, plain.find((m) => m.messageId === 's3'));
    const csv = await lines('--format', 'csv', '--with-sessions', '--event', 'Order Completed');
    assert.match(csv[0], /,context,session$/);
    assert.match(csv[1], /"\{""campaign"":""spring""/);
  });

  it('after kill -9, the visit goes on in its session and the next one is number 4', T, async () => {
    const idOf = async (messageId) => {
      const res = await query({
        kind: 'trends', series: [{ event: '' }], breakdown: 'session.id',
        filters: [{ property: 'messageId', operator: '=', value: messageId }],
        date_from: '2026-03-01', date_to: '2026-03-05', interval: 'day',
      });
      assert.equal(res.status, 200, res.text);
      return res.json.series.find((s) => s.total === 1)?.breakdown_value;
    };
    const before = await idOf('s5');
    assert.ok(before, 'the newsletter visit has a session id');
    await srv.kill9();
    await srv.start();
    const res = await srv.post('/v1/batch', {
      batch: [
        page('s6', 80, 'https://shop.example/offer/2'), // 13 minutes later: same visit
        page('s7', 24 * 60, 'https://shop.example/'), // the next day: a new one
      ],
    }, { key });
    assert.equal(res.status, 200, res.text);
    await stored(7);
    assert.equal(await idOf('s6'), before);
    assert.deepEqual(await byBreakdown('session.number'), { 1: 3, 2: 1, 3: 2, 4: 1 });
  });
});

describe('the session gap is a setting', () => {
  let dir, srv, token, key;

  before(async () => {
    dir = await makeDataDir();
    key = await createSource(dir, 'web');
    const bad = await runCli(['enrich', 'config', '--data', dir, '--set', 'session_gap=10s']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /session_gap: "10s" is not a duration from 1m to 24h/);
    const ok = await runCli(['enrich', 'config', '--data', dir, '--set', 'session_gap=45m']);
    assert.equal(ok.code, 0, ok.stderr);
    srv = await startServer(null, { dataDir: dir });
    token = (await readFile(path.join(dir, 'admin-token'), 'utf8')).trim();
  }, HOOK);
  after(() => srv?.stop());

  it('45m: pages 40 minutes apart are one visit, 50 minutes apart two, for the server and for tandem query', T, async () => {
    const res = await srv.post('/v1/batch', {
      batch: [
        page('g1', 0, 'https://shop.example/a'),
        page('g2', 40, 'https://shop.example/b'),
        page('g3', 90, 'https://shop.example/c'),
      ].map((m) => ({ ...m, anonymousId: 'visitor-gap' })),
    }, { key });
    assert.equal(res.status, 200, res.text);
    const doc = { kind: 'trends', series: [{ event: '' }], breakdown: 'session.number',
      date_from: '2026-03-01', date_to: '2026-03-05', interval: 'day' };
    const lines = (j) => Object.fromEntries(j.series.map((s) => [String(s.breakdown_value), s.total]));
    const got = await waitFor(async () => {
      const r = await srv.post('/api/query', doc, { headers: bearer(token) });
      return r.status === 200 && r.json.series.reduce((a, s) => a + s.total, 0) === 3 ? r.json : null;
    });
    assert.deepEqual(lines(got), { 1: 2, 2: 1 });
    // a reader replaying the WAL stamps with the gap the server wrote in its log
    // (nothing is flushed yet: the log holds only its first mark)
    const cli = await runCli(['query', '--data', dir, JSON.stringify(doc)]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(lines(JSON.parse(cli.stdout)), { 1: 2, 2: 1 });
  });
});
