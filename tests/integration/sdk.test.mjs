// Client compatibility: the official Segment Node SDK (@segment/analytics-node),
// unchanged except for its host, talks to tandem.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Analytics } from '@segment/analytics-node';
import { makeDataDir, cleanupTempDirs, startServer, createSource, exportEvents } from './lib/server.mjs';

const T = { timeout: 30_000 };

after(cleanupTempDirs);

// An SDK client that records every HTTP response and error it sees.
function client(srv, writeKey, opts = {}) {
  const analytics = new Analytics({
    writeKey,
    host: srv.url,
    path: '/v1/batch',
    flushAt: 20,
    flushInterval: 200,
    maxRetries: 2,
    httpRequestTimeout: 5000,
    ...opts,
  });
  const seen = { statuses: [], errors: [], requests: 0 };
  analytics.on('http_request', () => seen.requests++);
  analytics.on('http_response', (r) => seen.statuses.push(r.status));
  analytics.on('error', (e) => seen.errors.push(e));
  return { analytics, seen };
}

// Calls analytics[method](params) and resolves with { err, ctx } from its callback.
function call(analytics, method, params) {
  return new Promise((resolve) => analytics[method](params, (err, ctx) => resolve({ err, ctx })));
}

describe('@segment/analytics-node against tandem', () => {
  let dir, key, srv;
  before(async () => {
    dir = await makeDataDir();
    key = await createSource(dir, 'node-sdk');
    srv = await startServer(null, { dataDir: dir });
  }, T);
  after(() => srv?.stop());

  it('delivers identify, track, page, screen, group and alias exactly once, fields intact', T, async () => {
    const { analytics, seen } = client(srv, key);
    const userId = `sdk-user-${process.pid}-${Date.now()}`;
    const previousId = `sdk-anon-${process.pid}-${Date.now()}`;
    const calls = {
      identify: { userId, traits: { email: 'ada@example.com', plan: 'pro', logins: 3 } },
      track: { userId, event: 'Order Completed', properties: { revenue: 42.5, currency: 'EUR', products: [{ sku: 'A-1', qty: 2 }] } },
      page: { userId, name: 'Pricing', properties: { path: '/pricing', referrer: 'https://search.example/' } },
      screen: { userId, name: 'Dashboard', properties: { tab: 'overview' } },
      group: { userId, groupId: 'acme-inc', traits: { name: 'Acme', employees: 120 } },
      alias: { userId, previousId },
    };
    const results = {};
    await Promise.all(
      Object.entries(calls).map(async ([method, params]) => {
        results[method] = await call(analytics, method, params);
      }).concat([analytics.closeAndFlush({ timeout: 15_000 })]),
    );

    assert.deepEqual(seen.errors, [], 'the SDK reported errors');
    assert.ok(seen.statuses.length >= 1, 'the SDK sent nothing');
    for (const s of seen.statuses) assert.equal(s, 200, `HTTP statuses seen by the SDK: ${seen.statuses}`);
    for (const [method, r] of Object.entries(results)) assert.equal(r.err, undefined, `${method}: ${r.err}`);

    const events = (await exportEvents(dir)).filter((e) => e.userId === userId);
    assert.equal(events.length, 6, `expected 6 events for ${userId}, export has:\n${events.map((e) => JSON.stringify(e)).join('\n')}`);
    const byType = {};
    for (const e of events) {
      assert.equal(byType[e.type], undefined, `two ${e.type} events stored`);
      byType[e.type] = e;
    }
    for (const [method, params] of Object.entries(calls)) {
      const ev = byType[method];
      assert.ok(ev, `no ${method} stored`);
      const sent = results[method].ctx.event;
      assert.equal(ev.messageId, sent.messageId, `${method}: messageId`);
      for (const [k, v] of Object.entries(params)) assert.deepEqual(ev[k], v, `${method}.${k}`);
      assert.equal(ev.context?.library?.name, '@segment/analytics-node', `${method}: context.library`);
      assert.equal(ev.context?.library?.version, analytics.VERSION, `${method}: context.library.version`);
      assert.equal(ev.context?.ip, '127.0.0.1');
      assert.equal(Date.parse(ev.originalTimestamp), new Date(sent.timestamp).getTime(), `${method}: originalTimestamp`);
      assert.equal('writeKey' in ev, false, `${method}: writeKey stored`);
      assert.ok(ev.receivedAt, `${method}: receivedAt`);
    }
  });

  it('splits many events into batches (flushAt) and stores each once', T, async () => {
    const { analytics, seen } = client(srv, key, { flushAt: 10 });
    const userId = `sdk-many-${process.pid}-${Date.now()}`;
    const pending = [];
    for (let i = 0; i < 25; i++) pending.push(call(analytics, 'track', { userId, event: 'Step', properties: { i } }));
    const results = await Promise.all([...pending, analytics.closeAndFlush({ timeout: 15_000 })]);
    for (const r of results.slice(0, 25)) assert.equal(r.err, undefined, String(r.err));
    assert.ok(seen.requests >= 3, `expected at least 3 requests, saw ${seen.requests}`);
    for (const s of seen.statuses) assert.equal(s, 200);
    const events = (await exportEvents(dir)).filter((e) => e.userId === userId);
    assert.deepEqual(events.map((e) => e.properties.i).sort((a, b) => a - b), [...Array(25).keys()]);
  });

  it('reports a failed delivery for an unknown write key and stores nothing', T, async () => {
    const { analytics, seen } = client(srv, 'wk_' + '0'.repeat(32), { maxRetries: 0 });
    const userId = `sdk-denied-${process.pid}-${Date.now()}`;
    const [r] = await Promise.all([call(analytics, 'track', { userId, event: 'Nope' }), analytics.closeAndFlush({ timeout: 15_000 })]);
    assert.ok(r.err, 'the SDK did not report a failed delivery');
    assert.deepEqual(seen.statuses, [401]);
    assert.equal((await exportEvents(dir)).filter((e) => e.userId === userId).length, 0);
  });
});
