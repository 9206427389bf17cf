// The query API (POST /api/query) and `tandem query`, against the real binary:
// events go in through /v1/batch, answers are checked against numbers worked
// out by hand for a small data set, and the CLI must agree with the server
// both while it runs (reading the WAL tail) and after it stopped.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  makeDataDir,
  cleanupTempDirs,
  startServer,
  createSource,
  runCli,
  cli,
  uid,
} from './lib/server.mjs';

const T = { timeout: 20_000 };
const HOOK = { timeout: 60_000 };
const VISIBLE_WITHIN_MS = 1000; // an acknowledged event is queryable within this

after(cleanupTempDirs);

// ---------------------------------------------------------------------------
// The data set (UTC). Persons are userIds, and one anonymousId.
//
//   u1  Product Viewed 03-01 10:00 (google), Product Added 10:05, Order Completed 10:10 (30),
//       Order Completed 03-08 10:00 (50)
//   u2  Product Viewed 03-01 11:00, Product Added 03-02 09:00
//   u3  Product Viewed 03-02 12:00, Order Completed 03-09 12:00 (20)
//   a4  Product Viewed 03-03 08:00, Product Viewed 08:20, Product Added 08:25
const V = 'Product Viewed';
const A = 'Product Added';
const O = 'Order Completed';
const ROWS = [
  ['u1', V, '2024-03-01T10:00:00.000Z', { price: 10 }, { campaign: { source: 'google' } }],
  ['u1', A, '2024-03-01T10:05:00.000Z', { price: 10 }],
  ['u1', O, '2024-03-01T10:10:00.000Z', { revenue: 30 }],
  ['u1', O, '2024-03-08T10:00:00.000Z', { revenue: 50 }],
  ['u2', V, '2024-03-01T11:00:00.000Z', { price: 5 }],
  ['u2', A, '2024-03-02T09:00:00.000Z', { price: 5 }],
  ['u3', V, '2024-03-02T12:00:00.000Z', {}],
  ['u3', O, '2024-03-09T12:00:00.000Z', { revenue: 20 }],
  ['anon:a4', V, '2024-03-03T08:00:00.000Z', {}],
  ['anon:a4', V, '2024-03-03T08:20:00.000Z', {}],
  ['anon:a4', A, '2024-03-03T08:25:00.000Z', {}],
];

function message([who, event, timestamp, properties, context]) {
  const m = { type: 'track', event, timestamp, properties, messageId: uid('q') };
  if (who.startsWith('anon:')) m.anonymousId = who.slice(5);
  else m.userId = who;
  if (context) m.context = context;
  return m;
}

const Q = {
  trends: {
    kind: 'trends',
    series: [
      { event: V },
      { event: O, math: 'sum', property: 'properties.revenue', name: 'Revenue' },
      { event: V, math: 'unique_persons' },
    ],
    interval: 'day',
    date_from: '2024-03-01',
    date_to: '2024-03-03',
  },
  funnel: { kind: 'funnel', steps: [{ event: V }, { event: A }, { event: O }] },
  retention: {
    kind: 'retention',
    start: { event: V },
    return: { event: O },
    period: 'week',
    periods: 3,
    date_from: '2024-03-01',
    date_to: '2024-03-10',
  },
  paths: { kind: 'paths', anchor: { event: V }, depth: 2 },
  events: { kind: 'events', limit: 3, date_to: '2024-12-31' }, // not the fresh events added below
};

function bearer(token) {
  return { Authorization: `Bearer ${token}` };
}

// POST /api/query with the token; body objects are sent as JSON.
function query(srv, token, body, opts = {}) {
  return srv.post('/api/query', body, { ...opts, headers: { ...bearer(token), ...(opts.headers ?? {}) } });
}

function assertStatus(res, status, code) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.ok(res.json, `response is not JSON: ${res.text}`);
  if (code) {
    assert.equal(res.json.code, code, res.text);
    assert.equal(typeof res.json.error, 'string', res.text);
  }
}

async function ok(srv, token, body) {
  const res = await query(srv, token, body);
  assertStatus(res, 200);
  return res.json;
}

const near = (a, b) => Math.abs(a - b) < 1e-9;

// Polls an events listing until `n` rows are visible; resolves to the time
// (Date.now()) it first saw them, or fails after `ms`.
async function visibleAt(srv, token, doc, n, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const res = await query(srv, token, doc);
    if (res.status === 200 && res.json.events.length >= n) return Date.now();
    if (res.status !== 200 && res.status !== 400) assert.fail(`unexpected ${res.status}: ${res.text}`);
    if (Date.now() > deadline) assert.fail(`${n} events not visible after ${ms} ms: ${res.text}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// The CSV the CLI must print for a funnel result, built here from the JSON
// (JavaScript's number text is also the shortest exact form).
function funnelCsv(result) {
  const cell = (v) => (v === null || v === undefined ? '' : String(v));
  const head = 'step,event,persons,conversion_from_first_pct,conversion_from_previous_pct,median_ms,mean_ms';
  const lines = result.steps.map((s) =>
    [s.step, s.event, s.persons, s.conversion_from_first_pct, s.conversion_from_previous_pct, s.median_ms, s.mean_ms]
      .map(cell)
      .join(','),
  );
  return [head, ...lines].join('\r\n') + '\r\n';
}

// ---------------------------------------------------------------------------

describe('query API and tandem query on a hand-built data set', () => {
  let dir, key, srv, token, ackedAt, seenAt;
  const http = {}; // kind -> result over HTTP

  before(async () => {
    dir = await makeDataDir();
    key = await createSource(dir, 'web');
    srv = await startServer(null, { dataDir: dir });
    token = (await readFile(path.join(dir, 'admin-token'), 'utf8')).trim();
    const res = await srv.post('/v1/batch', { batch: ROWS.map(message) }, { key });
    assert.equal(res.status, 200, res.text);
    ackedAt = Date.now();
    seenAt = await visibleAt(srv, token, { kind: 'events', limit: 100 }, ROWS.length);
    for (const [kind, doc] of Object.entries(Q)) http[kind] = await ok(srv, token, doc);
  }, HOOK);
  after(() => srv?.stop());

  it(`acknowledged events are queryable within ${VISIBLE_WITHIN_MS} ms`, T, async () => {
    assert.ok(seenAt - ackedAt < VISIBLE_WITHIN_MS, `visible after ${seenAt - ackedAt} ms`);
    // and again on a server that has been running for a while
    const name = uid('Fresh Event');
    const res = await srv.post('/v1/track', { userId: 'u9', event: name, messageId: uid('f') }, { key });
    assert.equal(res.status, 200, res.text);
    const t0 = Date.now();
    const t1 = await visibleAt(srv, token, { kind: 'events', event: name }, 1);
    assert.ok(t1 - t0 < VISIBLE_WITHIN_MS, `visible after ${t1 - t0} ms`);
  });

  it('trends: counts, sums and unique persons per day', T, () => {
    const r = http.trends;
    assert.equal(r.kind, 'trends');
    assert.deepEqual(r.buckets, ['2024-03-01T00:00:00', '2024-03-02T00:00:00', '2024-03-03T00:00:00']);
    assert.equal(r.series.length, 3);
    assert.deepEqual(r.series[0].values, [2, 1, 2]);
    assert.equal(r.series[0].total, 5);
    assert.equal(r.series[1].name, 'Revenue');
    assert.deepEqual(r.series[1].values, [30, 0, 0]);
    assert.equal(r.series[1].total, 30);
    assert.deepEqual(r.series[2].values, [2, 1, 1]);
    assert.equal(r.series[2].total, 4);
  });

  it('trends: breakdown by campaign source', T, async () => {
    const r = await ok(srv, token, { ...Q.trends, series: [{ event: V }], breakdown: 'context.campaign.source' });
    const lines = r.series.map((l) => [l.breakdown_value, l.is_other, l.total]);
    assert.deepEqual(lines, [
      [null, false, 4],
      ['google', false, 1],
    ]);
  });

  it('funnel: persons per step, conversion and times', T, () => {
    const steps = http.funnel.steps;
    assert.deepEqual(
      steps.map((s) => s.persons),
      [4, 3, 1],
    );
    assert.deepEqual(
      steps.map((s) => s.conversion_from_first_pct),
      [100, 75, 25],
    );
    assert.ok(near(steps[2].conversion_from_previous_pct, 100 / 3), JSON.stringify(steps[2]));
    // step 2: u1 5 min, u2 22 h, a4 5 min (from the later View)
    assert.equal(steps[1].median_ms, 300_000);
    assert.ok(near(steps[1].mean_ms, (300_000 + 79_200_000 + 300_000) / 3));
    assert.equal(steps[2].median_ms, 300_000);
    assert.equal(steps[0].median_ms, null);
  });

  it('retention: weekly cohorts of first views returning to order', T, () => {
    const c = http.retention.cohorts;
    assert.deepEqual(
      c.map((x) => [x.start, x.size, x.values]),
      [
        ['2024-02-26T00:00:00', 4, [1, 2, 0]],
        ['2024-03-04T00:00:00', 0, [0, 0, 0]],
      ],
    );
    assert.deepEqual(c[0].percentages, [25, 50, 0]);
    assert.deepEqual(c[1].percentages, [null, null, null]);
  });

  it('paths: transitions after the first view of each session', T, () => {
    const r = http.paths;
    assert.equal(r.sessions, 4);
    assert.deepEqual(
      r.depths.map((d) => [d.depth, d.sessions, d.transitions.map((t) => [t.from, t.to, t.count])]),
      [
        [1, 2, [[V, A, 1], [V, V, 1]]],
        [2, 2, [[A, O, 1], [V, A, 1]]],
      ],
    );
  });

  it('events: newest first, paged', T, () => {
    const r = http.events;
    assert.equal(r.has_more, true);
    assert.deepEqual(
      r.events.map((e) => [e.event, e.ts]),
      [
        [O, '2024-03-09T12:00:00.000Z'],
        [O, '2024-03-08T10:00:00.000Z'],
        [A, '2024-03-03T08:25:00.000Z'],
      ],
    );
    assert.equal(r.events[0].ts_ms, Date.parse('2024-03-09T12:00:00.000Z'));
  });

  describe('errors', () => {
    it('401 without a token, with a wrong one, or with Basic auth', T, async () => {
      let res = await srv.post('/api/query', Q.events);
      assertStatus(res, 401, 'unauthorized');
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm="tandem"$/);
      assert.match(res.json.error, /Authorization: Bearer/);
      res = await query(srv, 'tdk_' + '0'.repeat(64), Q.events);
      assertStatus(res, 401, 'unauthorized');
      assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
      res = await srv.post('/api/query', Q.events, { key: token });
      assertStatus(res, 401, 'unauthorized');
    });

    it('403 for a token that is not admin', T, async () => {
      const { stdout } = await cli(['token', 'create', 'analyst-1', '--role', 'analyst', '--data', dir]);
      const res = await query(srv, stdout.trim(), Q.events);
      assertStatus(res, 403, 'forbidden');
      assert.match(res.json.error, /analyst/);
    });

    it('a revoked token is refused', T, async () => {
      const { stdout } = await cli(['token', 'create', 'admin-2', '--role', 'admin', '--data', dir]);
      const t2 = stdout.trim();
      assertStatus(await query(srv, t2, Q.events), 200);
      await cli(['token', 'revoke', 'admin-2', '--data', dir]);
      assertStatus(await query(srv, t2, Q.events), 401, 'unauthorized');
    });

    it('400 naming the field and the problem', T, async () => {
      let res = await query(srv, token, { kind: 'funnel', steps: [{ event: V }, { event: 'Sigup' }] });
      assertStatus(res, 400, 'invalid_query');
      assert.match(res.json.error, /^steps\[1\]\.event: .*"Sigup"/);
      res = await query(srv, token, { ...Q.funnel, window: '0d' });
      assertStatus(res, 400, 'invalid_query');
      assert.match(res.json.error, /^window: must be positive/);
      res = await query(srv, token, '{"kind": "trends",');
      assertStatus(res, 400, 'invalid_query');
      assert.match(res.json.error, /not valid JSON/);
      res = await query(srv, token, { kind: 'trends', series: [{ event: V }], date_from: '2024-03-01' });
      assertStatus(res, 400, 'invalid_query');
      assert.match(res.json.error, /date_to/);
    });

    it('405 for other methods, 404 for other paths', T, async () => {
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const res = await srv.request('/api/query', { method, headers: bearer(token) });
        assertStatus(res, 405, 'method_not_allowed');
        assert.match(res.headers.get('allow') ?? '', /POST/);
      }
      assertStatus(await srv.post('/api/nothing', {}, { headers: bearer(token) }), 404, 'not_found');
    });

    it('413 for a body over 1 MiB', T, async () => {
      const big = JSON.stringify({ kind: 'events', pad: 'x'.repeat((1 << 20) + 10) });
      const res = await query(srv, token, big);
      assertStatus(res, 413, 'too_large');
    });

    it('415 for a compressed body', T, async () => {
      const res = await query(srv, token, Q.events, { gzip: true });
      assertStatus(res, 415, 'unsupported_encoding');
    });
  });

  describe('tandem query while the server runs', () => {
    it('prints the same JSON as the API for every kind', T, async () => {
      for (const [kind, doc] of Object.entries(Q)) {
        const { stdout } = await cli(['query', '--data', dir, JSON.stringify(doc)]);
        assert.deepEqual(JSON.parse(stdout), http[kind], kind);
      }
    });

    it('prints CSV and tables', T, async () => {
      let r = await cli(['query', '--data', dir, '--format', 'csv', JSON.stringify(Q.funnel)]);
      assert.equal(r.stdout, funnelCsv(http.funnel));
      r = await cli(['query', '--data', dir, '--format', 'table', JSON.stringify(Q.funnel)]);
      assert.match(r.stdout, /^funnel, order sequential, window 14 d\n/);
      assert.match(r.stdout, /\n\s+1\s+Product Viewed\s+4\s+100%\s+100%\s+-\s+-\n/);
      assert.match(r.stdout, /\n\s+2\s+Product Added\s+3\s+75%\s+75%\s+5 min\s+7\.4 h\n/);
      assert.match(r.stdout, /\n\s+3\s+Order Completed\s+1\s+25%\s+33\.3%\s+5 min\s+5 min\n$/);
      r = await cli(['query', '--data', dir, '--format', 'csv', JSON.stringify(Q.retention)]);
      assert.equal(
        r.stdout,
        'start,size,period_0,period_1,period_2,pct_0,pct_1,pct_2\r\n' +
          '2024-02-26T00:00:00,4,1,2,0,25,50,0\r\n2024-03-04T00:00:00,0,0,0,0,,,\r\n',
      );
      r = await cli(['query', '--data', dir, '--format', 'csv', JSON.stringify(Q.events)]);
      assert.match(r.stdout, /^ts,ts_ms,event,pid\r\n2024-03-09T12:00:00.000Z,1709985600000,Order Completed,\d+\r\n/);
      assert.match(r.stderr, /more events follow: run the query again with "offset": 3/);
    });

    it('reads the query from a file or stdin', T, async () => {
      const file = path.join(path.dirname(dir), 'q.json');
      await writeFile(file, JSON.stringify(Q.paths));
      let r = await cli(['query', '--data', dir, '--file', file]);
      assert.deepEqual(JSON.parse(r.stdout), http.paths);
      r = await runCli(['query', '--data', dir, file]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /is a file; read it with --file/);
      r = await cli(['query', '--data', dir, '-'], { input: JSON.stringify(Q.trends) });
      assert.deepEqual(JSON.parse(r.stdout), http.trends);
      r = await cli(['query', '--data', dir, '--format=csv', '--file', '-'], { input: JSON.stringify(Q.funnel) });
      assert.equal(r.stdout, funnelCsv(http.funnel));
    });

    it('says what is wrong with a query or the command line', T, async () => {
      let r = await runCli(['query', '--data', dir, JSON.stringify({ kind: 'funnel', steps: [{ event: V }, { event: 'Sigup' }] })]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^tandem query: steps\[1\]\.event: .*"Sigup"/);
      assert.equal(r.stdout, '');
      r = await runCli(['query', '--data', dir]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /give the query/);
      r = await runCli(['query', '--data', dir, '--format', 'xml', '{}']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /json, table or csv/);
      r = await runCli(['query', '--data', path.join(dir, 'nothing-here'), JSON.stringify(Q.events)]);
      assert.equal(r.code, 1);
    });
  });

  describe('after the server stopped', () => {
    before(async () => {
      const st = await srv.stop();
      assert.ok(st.clean, 'server stopped cleanly');
    }, HOOK);

    it('tandem query gives the same answers', T, async () => {
      for (const [kind, doc] of Object.entries(Q)) {
        const { stdout } = await cli(['query', '--data', dir, JSON.stringify(doc)]);
        assert.deepEqual(JSON.parse(stdout), http[kind], kind);
      }
      const r = await cli(['query', '--data', dir, '--format', 'csv', JSON.stringify(Q.funnel)]);
      assert.equal(r.stdout, funnelCsv(http.funnel));
    });

    it('after a restart, tandem query reads the segment files plus the new WAL records', T, async () => {
      await srv.start();
      const more = [
        ['u2', O, '2024-03-02T10:00:00.000Z', { revenue: 5 }],
        ['u5', V, '2024-03-09T13:00:00.000Z', {}],
      ];
      const res = await srv.post('/v1/batch', { batch: more.map(message) }, { key });
      assert.equal(res.status, 200, res.text);
      await visibleAt(srv, token, { ...Q.events, limit: 100 }, ROWS.length + more.length);
      const funnel = await ok(srv, token, Q.funnel);
      assert.deepEqual(
        funnel.steps.map((x) => x.persons),
        [5, 3, 2],
      );
      for (const doc of Object.values(Q)) {
        const { stdout } = await cli(['query', '--data', dir, JSON.stringify(doc)]);
        assert.deepEqual(JSON.parse(stdout), await ok(srv, token, doc), doc.kind);
      }
    });
  });
});

describe('query API under load', () => {
  it('serves the collector while queries run, and stops cleanly with queries in flight', { timeout: 60_000 }, async (t) => {
    const dir = await makeDataDir(t);
    const key = await createSource(dir, 'web');
    const srv = await startServer(t, { dataDir: dir });
    const token = (await readFile(path.join(dir, 'admin-token'), 'utf8')).trim();
    const batch = [];
    for (let i = 0; i < 1500; i++) {
      batch.push(message([`u${i % 300}`, i % 3 ? V : A, new Date(Date.UTC(2024, 2, 1) + i * 60_000).toISOString(), {}]));
    }
    assert.equal((await srv.post('/v1/batch', { batch }, { key, timeout: 30_000 })).status, 200);
    await visibleAt(srv, token, { kind: 'events', limit: 1, offset: batch.length - 1 }, 1);
    const funnel = { kind: 'funnel', steps: [{ event: V }, { event: A }, { event: V }] };
    // many queries at once: some wait in the queue, the collector still answers
    const queries = Array.from({ length: 40 }, () => query(srv, token, funnel).catch((e) => e));
    const res = await srv.post('/v1/track', { userId: 'u1', event: 'During', messageId: uid('d') }, { key });
    assert.equal(res.status, 200, res.text);
    for (const q of await Promise.all(queries)) {
      assert.ok(q.status === 200 || q.status === 503, `status ${q.status}: ${q.text}`);
      if (q.status === 503) assert.ok(q.headers.get('retry-after'));
    }
    // stop while queries are in flight: each gets an answer or a closed connection
    const inflight = Array.from({ length: 20 }, () => query(srv, token, funnel).catch(() => null));
    const st = await srv.stop();
    assert.ok(st.clean, 'stopped by itself within the timeout');
    assert.equal(st.code, 0);
    for (const q of await Promise.all(inflight)) if (q) assert.ok([200, 503].includes(q.status), q.text);
  });
});

describe('query limits set on tandem serve', () => {
  it('--query-max-result and --query-max-memory turn big queries into clear 400s', { timeout: 60_000 }, async (t) => {
    const dir = await makeDataDir(t);
    const key = await createSource(dir, 'web');
    let srv = await startServer(t, { dataDir: dir, args: ['--query-max-result', '2k', '--query-threads', '1'] });
    const token = (await readFile(path.join(dir, 'admin-token'), 'utf8')).trim();
    const batch = [];
    for (let i = 0; i < 2000; i++) batch.push(message([`u${i}`, V, new Date(Date.UTC(2024, 2, 1) + i * 60_000).toISOString(), {}]));
    assert.equal((await srv.post('/v1/batch', { batch }, { key, timeout: 30_000 })).status, 200);
    await visibleAt(srv, token, { kind: 'events', limit: 1, offset: batch.length - 1 }, 1);
    const big = await query(srv, token, { kind: 'events', limit: 500 });
    assertStatus(big, 400, 'result_too_large');
    assert.match(big.json.error, /2048|2 KiB|2k/i, big.text);
    assertStatus(await query(srv, token, { kind: 'events', limit: 2 }), 200);
    await srv.stop();

    srv = await startServer(t, { dataDir: dir, args: ['--query-max-memory', '64k'] });
    const heavy = await query(srv, token, { kind: 'funnel', steps: [{ event: V }, { event: V }] });
    assertStatus(heavy, 400, 'query_too_expensive');
    assert.match(heavy.json.error, /65536 bytes/, heavy.text);
    const bad = await runCli(['serve', '--data', dir, '--query-threads', '0']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--query-threads is 1 to 64/);
  });
});
