// Attribution and advertising costs against the real binary: costs imported
// over HTTP (CSV and JSON) and with `tandem import costs`, with their errors;
// attribution queries refused with the field named; and, when the collector
// enriches events (enriched.campaign.* from context.campaign), an attribution
// over hand-built journeys whose credits are worked out by hand.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cleanupTempDirs, startWithSource, runCli, uid, waitFor } from './lib/server.mjs';

const T = { timeout: 20_000 };
const HOOK = { timeout: 60_000 };

after(cleanupTempDirs);

const bearer = (token) => ({ Authorization: `Bearer ${token}` });
const near = (a, b) => Math.abs(a - b) < 1e-9;

describe('advertising costs and attribution over HTTP', () => {
  let dir, key, srv, token;

  before(async () => {
    ({ dir, key, srv, token } = await startWithSource());
  }, HOOK);
  after(() => srv?.stop());

  const costs = (body, contentType) =>
    srv.post('/api/costs', body, { headers: bearer(token), contentType });
  const listCosts = (q = '') => srv.get(`/api/costs${q}`, { headers: bearer(token) });
  const query = (doc) => srv.post('/api/query', doc, { headers: bearer(token) });

  it('POST /api/costs takes CSV, keeps the valid lines and explains the others', T, async () => {
    const csv =
      'date,source,medium,campaign,cost,currency\n' +
      '2024-03-01,google,cpc,spring,40,EUR\n' +
      '2024-03-01,google,cpc,spring,12,50,EUR\n' +
      '2024-03-02,google,cpc,spring,20,eur\n' +
      '2024-03-31,bing,cpc,spring,5,EUR\n';
    const res = await costs(csv, 'text/csv');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.success, true);
    assert.equal(res.json.imported, 3);
    assert.equal(res.json.rejected, 1);
    assert.equal(res.json.errors.length, 1);
    assert.match(res.json.errors[0], /^line 3: 7 fields/);
  });

  it('POST /api/costs takes JSON rows; the same day and campaign again replaces the cost', T, async () => {
    const res = await costs([
      { date: '2024-03-02', source: 'google', medium: 'cpc', campaign: 'spring', cost: 25, currency: 'EUR' },
      { date: '2024-03-03', source: 'newsletter', medium: 'email', campaign: 'weekly', cost: 0, currency: 'EUR' },
    ]);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.imported, 2);
    const list = await listCosts('?from=2024-03-02&to=2024-03-03');
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(
      list.json.costs.map((c) => [c.date, c.campaign, c.cost, c.currency]),
      [
        ['2024-03-02', 'spring', 25, 'EUR'],
        ['2024-03-03', 'weekly', 0, 'EUR'],
      ],
    );
    assert.deepEqual(list.json.totals, [{ currency: 'EUR', cost: 25, rows: 2 }]);
  });

  it('GET /api/costs gives amounts as imported (cents, no binary noise)', T, async () => {
    const res = await costs('date,source,medium,campaign,cost,currency\n2024-05-01,bing,cpc,cents,0.95,EUR\n2024-05-02,bing,cpc,cents,0.1,EUR\n2024-05-03,bing,cpc,cents,0.2,EUR\n', 'text/csv');
    assert.equal(res.status, 200, res.text);
    const list = await listCosts('?from=2024-05-01&to=2024-05-03');
    assert.equal(list.status, 200, list.text);
    assert.match(list.text, /"cost":0\.95,/);
    assert.doesNotMatch(list.text, /0000000|9999999/, list.text);
    assert.deepEqual(list.json.totals, [{ currency: 'EUR', cost: 1.25, rows: 3 }]);
  });

  it('/api/costs errors: a wrong header, only bad rows, a bad date, no token, a wrong method', T, async () => {
    let res = await costs('day,source,medium,campaign,cost,currency\n', 'text/csv');
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.code, 'invalid_costs');
    assert.match(res.json.error, /unknown column "day"/);
    res = await costs([{ date: '2024-13-01', source: 'x', cost: 1, currency: 'EUR' }]);
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.imported, 0);
    assert.match(res.json.errors[0], /^row 1: date "2024-13-01" is not a calendar date/);
    res = await listCosts('?from=March');
    assert.equal(res.status, 400, res.text);
    assert.match(res.json.error, /^from: "March" is not a date/);
    res = await srv.get('/api/costs');
    assert.equal(res.status, 401, res.text);
    res = await fetch(`${srv.url}/api/costs`, { method: 'DELETE', headers: bearer(token) });
    assert.equal(res.status, 405);
    assert.match(res.headers.get('allow'), /POST/);
  });

  it('tandem import costs: a summary, each bad line on stderr, exit 1; the server sees the rows', T, async () => {
    const file = path.join(dir, 'costs.csv');
    await writeFile(
      file,
      'date,source,medium,campaign,cost,currency\n2024-04-01,meta,paid_social,launch,60,EUR\n2024-04-02,meta,paid_social,launch,€5,EUR\n',
    );
    const r = await runCli(['import', 'costs', file, '--data', dir]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /imported 1 cost row from .*costs\.csv \(2024-04-01 to 2024-04-01; 60\.00 EUR\); 1 line rejected/);
    assert.match(r.stderr, /line 3: cost "€5" is not a number of 0 or more; write the amount alone/);
    const list = await listCosts('?from=2024-04-01&to=2024-04-30');
    assert.deepEqual(
      list.json.costs.map((c) => [c.campaign, c.cost]),
      [['launch', 60]],
    );
  });

  it('attribution queries are refused with the field and the problem', T, async () => {
    await srv.post('/v1/track', { userId: 'u0', event: 'Order Completed', messageId: uid('o') }, { key });
    await waitFor(async () => (await query({ kind: 'events', event: 'Order Completed' })).status === 200);
    const base = { kind: 'attribution', conversion: { event: 'Order Completed' }, date_from: '2024-03-01', date_to: '2024-03-31' };
    const cases = [
      [{ ...base, conversion: undefined }, /^conversion: required/],
      [{ ...base, models: ['u_shaped'] }, /^models\[0\]: unknown model/],
      [{ ...base, touchpoint: 'keyword' }, /^touchpoint/],
      [{ ...base, lookback: '0d' }, /^lookback: must be positive/],
      [{ ...base, date_to: undefined }, /^date_to: required/],
      [{ ...base, include_bots: 'yes' }, /include_bots/],
    ];
    for (const [doc, re] of cases) {
      const res = await query(doc);
      assert.equal(res.status, 400, res.text);
      assert.equal(res.json.code, 'invalid_query');
      assert.match(res.json.error, re);
    }
    // costs in two currencies over the range: refused, naming both
    await costs([{ date: '2024-03-05', source: 'bing', medium: 'cpc', campaign: 'spring', cost: 9, currency: 'USD' }]);
    const res = await query(base);
    assert.equal(res.status, 400, res.text);
    assert.match(res.json.error, /more than one currency \(EUR and USD\)/);
    await costs([{ date: '2024-03-05', source: 'bing', medium: 'cpc', campaign: 'spring', cost: 9, currency: 'EUR' }]);
    const ok = await query(base);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.currency, 'EUR');
  });
});

// ---------------------------------------------------------------------------
// End to end: journeys sent as an SDK would, enriched by the collector
// (enriched.campaign.* from context.campaign), attributed by the server.

const DAY = 86400000;
const at = (ms) => new Date(Date.UTC(2024, 5, 1) + ms).toISOString(); // June 2024

function page(userId, ms, campaign) {
  const m = { type: 'page', userId, timestamp: at(ms), messageId: uid('p'), properties: {} };
  m.context = { page: { url: 'https://shop.example/landing' } };
  if (campaign) m.context.campaign = campaign;
  return m;
}

function order(userId, ms, revenue) {
  return { type: 'track', event: 'Order Completed', userId, timestamp: at(ms), messageId: uid('o'), properties: { revenue } };
}

const SPRING = { source: 'google', medium: 'cpc', name: 'spring' };
const WEEKLY = { source: 'newsletter', medium: 'email', name: 'weekly' };

describe('attribution end to end (enriched events)', () => {
  let dir, key, srv, token;

  before(async () => {
    ({ dir, key, srv, token } = await startWithSource());
    // u1: spring, then weekly 2 days later, orders 10 minutes after (100)
    // u2: weekly, orders (60); u3: spring 40 days before ordering (30): out of the lookback
    const batch = [
      page('u1', 0, SPRING),
      page('u1', 2 * DAY, WEEKLY),
      order('u1', 2 * DAY + 600_000, 100),
      page('u2', DAY, WEEKLY),
      order('u2', DAY + 60_000, 60),
      page('u3', -40 * DAY, SPRING),
      page('u3', 3 * DAY, null),
      order('u3', 3 * DAY + 60_000, 30),
    ];
    const res = await srv.post('/v1/batch', { batch }, { key });
    assert.equal(res.status, 200, res.text);
    await srv.post(
      '/api/costs',
      [
        { date: '2024-06-01', source: 'google', medium: 'cpc', campaign: 'spring', cost: 50, currency: 'EUR' },
        { date: '2024-06-02', source: 'newsletter', medium: 'email', campaign: 'weekly', cost: 40, currency: 'EUR' },
      ],
      { headers: bearer(token) },
    );
    // wait until the batch is queryable, then see whether the collector
    // derived enriched.campaign.* from context.campaign
    const q = (doc) => srv.post('/api/query', doc, { headers: bearer(token) });
    const seen = await waitFor(async () => {
      const r = await q({ kind: 'events', event: 'Order Completed' });
      return r.status === 200 && r.json.events.length === 3;
    });
    assert.ok(seen, 'the journeys are not queryable after 3 s');
    const probe = async () => {
      const r = await q({ kind: 'events', event: '$page', filters: [{ property: 'enriched.campaign.name', operator: 'is_set' }] });
      if (r.status === 200) return 'yes';
      return /unknown property/.test(r.json?.error ?? '') ? 'no' : null;
    };
    assert.equal(await waitFor(probe, { ms: 5000 }), 'yes', 'the collector fills enriched.campaign.*');
  }, HOOK);
  after(() => srv?.stop());

  it('credits, revenue and ROI per campaign for every model', T, async () => {
    const res = await srv.post(
      '/api/query',
      {
        kind: 'attribution',
        conversion: { event: 'Order Completed' },
        touchpoint: 'campaign',
        date_from: '2024-06-01',
        date_to: '2024-06-30',
      },
      { headers: bearer(token) },
    );
    assert.equal(res.status, 200, res.text);
    const r = res.json;
    assert.equal(r.conversions, 3);
    assert.equal(r.revenue, 190);
    assert.equal(r.cost, 90);
    const g = Object.fromEntries(r.groups.map((x) => [x.touchpoint, x]));
    // first touch: u1 spring, u2 weekly, u3 no campaign in the lookback (a direct session)
    assert.equal(g.spring.models.first_touch.conversions, 1);
    assert.equal(g.spring.models.first_touch.revenue, 100);
    assert.equal(g.weekly.models.first_touch.revenue, 60);
    assert.equal(g.Direct.models.first_touch.revenue, 30);
    // last touch: weekly gets u1 and u2
    assert.equal(g.weekly.models.last_touch.conversions, 2);
    assert.equal(g.weekly.models.last_touch.revenue, 160);
    // linear: u1 half and half
    assert.ok(near(g.spring.models.linear.revenue, 50));
    assert.ok(near(g.weekly.models.linear.revenue, 110));
    // ROI of spring, first touch: (100 - 50) / 50
    assert.equal(g.spring.cost, 50);
    assert.ok(near(g.spring.models.first_touch.roi, 1));
    assert.ok(near(g.weekly.models.last_touch.roas, 4));
    for (const m of r.models) {
      const sum = r.groups.reduce((s, x) => s + x.models[m].conversions, 0);
      assert.ok(near(sum, 3), `${m}: ${sum}`);
    }
  });

  it('trends: cost, ROI and ROAS per campaign', T, async () => {
    const res = await srv.post(
      '/api/query',
      {
        kind: 'trends',
        series: [{ event: '$page' }],
        breakdown: 'enriched.campaign.name',
        costs: true,
        interval: 'month',
        date_from: '2024-06-01',
        date_to: '2024-06-30',
      },
      { headers: bearer(token) },
    );
    assert.equal(res.status, 200, res.text);
    const line = (v) => res.json.series.find((l) => l.breakdown_value === v);
    assert.equal(line('spring').total, 1);
    assert.equal(line('spring').cost, 50);
    assert.equal(line('weekly').total, 2);
    assert.equal(line('weekly').cost, 40);
    assert.equal(res.json.costs.total, 90);
    assert.equal(res.json.costs.currency, 'EUR');
  });
});
