// Customer profiles over HTTP (GET /api/profiles/{type}:{value}) and
// `tandem profile`: one person seen on two devices, identified twice with a
// changed trait, in an account, with orders; every identifier finds the same
// profile, traits keep the latest value with first-seen and updated times,
// computed traits and the timeline cover the merged history.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { makeDataDir, cleanupTempDirs, startServer, createSource, cli, runCli, uid } from './lib/server.mjs';

const T = { timeout: 30_000 };
const HOOK = { timeout: 60_000 };

after(cleanupTempDirs);

const msg = (m) => ({ messageId: uid('p'), ...m });
const EVENTS = [
  msg({ type: 'page', anonymousId: 'dev-a', name: 'Home', timestamp: '2024-06-01T09:00:00.000Z',
        context: { campaign: { name: 'summer', source: 'google' } } }),
  msg({ type: 'track', anonymousId: 'dev-a', event: 'Product Viewed', timestamp: '2024-06-01T09:01:00.000Z',
        properties: { sku: 'A1', price: 20 } }),
  msg({ type: 'identify', anonymousId: 'dev-a', userId: 'kim', timestamp: '2024-06-01T09:02:00.000Z',
        traits: { email: 'Kim@Example.com', plan: 'free', name: 'Kim' } }),
  msg({ type: 'track', anonymousId: 'dev-b', event: 'Product Viewed', timestamp: '2024-06-02T10:00:00.000Z',
        properties: { sku: 'B2', price: 35 } }),
  msg({ type: 'track', anonymousId: 'dev-b', userId: 'kim', event: 'Order Completed',
        timestamp: '2024-06-02T10:05:00.000Z', properties: { revenue: 35, currency: 'EUR' } }),
  msg({ type: 'identify', userId: 'kim', timestamp: '2024-06-03T08:00:00.000Z', traits: { plan: 'pro' } }),
  msg({ type: 'group', userId: 'kim', groupId: 'acme', timestamp: '2024-06-03T08:01:00.000Z',
        traits: { name: 'Acme Inc', employees: 40, email: 'billing@acme.test' } }),
  msg({ type: 'track', userId: 'kim', event: 'Order Completed', timestamp: '2024-06-04T12:00:00.000Z',
        properties: { revenue: 60.5 }, context: { campaign: { name: 'retarget' } } }),
  // someone else in the same account, and a stranger
  msg({ type: 'group', userId: 'lee', groupId: 'acme', timestamp: '2024-06-05T08:00:00.000Z',
        traits: { employees: 42 } }),
  // three events in one millisecond: paging must not lose any
  ...['Tie A', 'Tie B', 'Tie C'].map((event) =>
    msg({ type: 'track', userId: 'lee', event, timestamp: '2024-06-06T00:00:00.000Z' })),
  msg({ type: 'track', anonymousId: 'dev-z', event: 'Product Viewed', timestamp: '2024-06-05T09:00:00.000Z' }),
];

describe('profiles', () => {
  let dir, key, srv, token;

  const get = (p, opts = {}) =>
    srv.get(p, { ...opts, headers: { Authorization: `Bearer ${token}`, ...(opts.headers ?? {}) } });
  const profile = async (id, qs = '') => {
    const res = await get(`/api/profiles/${encodeURIComponent(id).replace('%3A', ':')}${qs}`);
    assert.equal(res.status, 200, res.text);
    return res.json;
  };

  before(async () => {
    dir = await makeDataDir();
    key = await createSource(dir, 'web');
    srv = await startServer(null, { dataDir: dir });
    token = (await readFile(path.join(dir, 'admin-token'), 'utf8')).trim();
    const res = await srv.post('/v1/batch', { batch: EVENTS }, { key });
    assert.equal(res.status, 200, res.text);
    // wait until the last event is in a snapshot (its identifier is known
    // to identity resolution a little earlier: then the profile has no events)
    const deadline = Date.now() + 5000;
    for (;;) {
      const r = await get('/api/profiles/anonymous_id:dev-z');
      if (r.status === 200 && r.json.computed.event_count === 1) break;
      assert.ok(r.status === 200 || r.status === 404, r.text);
      assert.ok(Date.now() < deadline, `profile not visible: ${r.text}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }, HOOK);
  after(() => srv?.stop());

  it('every identifier of the person finds the same profile', T, async () => {
    const a = await profile('user_id:kim');
    for (const id of ['anonymous_id:dev-a', 'anonymous_id:dev-b', 'email: KIM@example.COM ']) {
      assert.equal((await profile(id)).person, a.person, id);
    }
    assert.notEqual((await profile('anonymous_id:dev-z')).person, a.person);
    const ids = a.identifiers.map((x) => `${x.type}:${x.value}`).sort();
    assert.deepEqual(ids, ['anonymous_id:dev-a', 'anonymous_id:dev-b', 'email:kim@example.com', 'user_id:kim']);
  });

  it('person:ID finds the person a query names, merged ids included', T, async () => {
    const a = await profile('user_id:kim');
    assert.equal((await profile(`person:${a.person}`)).person, a.person);
    // kim's devices got person ids of their own before the identify merged them
    let found = 0;
    for (let id = 0; id < 10; id++) {
      const r = await get(`/api/profiles/person:${id}`);
      assert.ok(r.status === 200 || r.status === 404, r.text);
      if (r.status === 200 && r.json.person === a.person) found++;
    }
    assert.ok(found >= 2, `${found} person ids lead to kim`);
    for (const bad of ['person:x1', 'person:-1', 'person:4294967296', 'person:999999']) {
      const r = await get(`/api/profiles/${bad}`);
      assert.equal(r.status, 404, `${bad}: ${r.text}`);
    }
  });

  it('traits: the latest value wins, with first seen and updated times', T, async () => {
    const p = await profile('user_id:kim');
    assert.deepEqual(p.traits.plan, {
      value: 'pro',
      first_seen: '2024-06-01T09:02:00.000Z',
      updated: '2024-06-03T08:00:00.000Z',
    });
    assert.equal(p.traits.name.value, 'Kim');
    assert.equal(p.traits.email.value, 'Kim@Example.com');
    assert.equal(p.traits.employees, undefined, "the account's traits are not the person's");
  });

  it('computed traits cover both devices', T, async () => {
    const p = await profile('anonymous_id:dev-a');
    assert.deepEqual(p.computed, {
      first_seen: '2024-06-01T09:00:00.000Z',
      last_seen: '2024-06-04T12:00:00.000Z',
      event_count: 8,
      order_count: 2,
      lifetime_revenue: 95.5,
      last_campaign: 'retarget',
    });
    assert.equal(p.merges.length, 1, JSON.stringify(p.merges));
    assert.equal(p.merges[0].kind, 'merge');
    assert.equal(p.merges[0].at, '2024-06-02T10:05:00.000Z');
  });

  it("accounts: the person's groups with the traits their calls set", T, async () => {
    const p = await profile('user_id:kim');
    assert.equal(p.accounts.length, 1);
    const a = p.accounts[0];
    assert.equal(a.group_id, 'acme');
    assert.equal(a.group_calls, 1);
    assert.equal(a.traits.employees.value, 40, "kim's call; lee's later 42 is the account's (below)");
    assert.equal(a.traits.name.value, 'Acme Inc');
    // the group's email is the account's, never an identifier of the person
    assert.equal((await get('/api/profiles/email:billing@acme.test')).status, 404);
  });

  it('account profiles: traits and members of a groupId', T, async () => {
    const r = await get('/api/accounts/acme');
    assert.equal(r.status, 200, r.text);
    const a = r.json;
    assert.equal(a.group_id, 'acme');
    assert.equal(a.traits.employees.value, 42);
    assert.equal(a.traits.employees.first_seen, '2024-06-03T08:01:00.000Z');
    assert.equal(a.traits.employees.updated, '2024-06-05T08:00:00.000Z');
    assert.equal(a.group_calls, 2);
    assert.equal(a.first_seen, '2024-06-03T08:01:00.000Z');
    assert.equal(a.last_seen, '2024-06-05T08:00:00.000Z');
    assert.equal(a.members_total, 2);
    const users = a.members.map((m) => m.identifiers.find((x) => x.type === 'user_id')?.value).sort();
    assert.deepEqual(users, ['kim', 'lee']);
    const nf = await get('/api/accounts/nobody');
    assert.equal(nf.status, 404);
    assert.match(nf.json.error, /nobody/);
  });

  it('timeline: newest first, paged with next_before', T, async () => {
    const p1 = await profile('user_id:kim', '?limit=3');
    assert.deepEqual(
      p1.events.items.map((e) => e.event),
      ['Order Completed', '$group', '$identify'],
    );
    assert.equal(p1.events.items[0].properties.revenue, 60.5);
    assert.equal(p1.events.items[1].type, 'group');
    const p2 = await profile('user_id:kim', `?limit=3&before=${p1.events.next_before}`);
    assert.deepEqual(
      p2.events.items.map((e) => e.timestamp),
      ['2024-06-02T10:05:00.000Z', '2024-06-02T10:00:00.000Z', '2024-06-01T09:02:00.000Z'],
    );
    const p3 = await profile('user_id:kim', `?limit=3&before=${p2.events.next_before}`);
    assert.equal(p3.events.items.length, 2);
    assert.equal(p3.events.next_before, null);
    // events in the same millisecond, one per page: each exactly once
    const seen = [];
    let cursor = '';
    for (let k = 0; k < 10; k++) {
      const p = await profile('user_id:lee', `?limit=1${cursor ? `&before=${encodeURIComponent(cursor)}` : ''}`);
      seen.push(...p.events.items.map((e) => e.event));
      if (!p.events.next_before) break;
      cursor = p.events.next_before;
    }
    assert.deepEqual(seen.slice(0, 3).sort(), ['Tie A', 'Tie B', 'Tie C']);
    assert.deepEqual(seen.slice(3), ['$group']);
    const raw = await profile('user_id:kim', '?limit=1&raw=1');
    assert.equal(raw.events.items[0].message.properties.revenue, 60.5);
    assert.equal(raw.events.items[0].message.userId, 'kim');
  });

  it('profiles found by their traits', T, async () => {
    const kim = await profile('user_id:kim');
    let r = await get('/api/profiles?where=plan=pro');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.total, 1);
    assert.equal(r.json.profiles[0].person, kim.person);
    assert.deepEqual(r.json.profiles[0].traits, { plan: 'pro' });
    assert.ok(r.json.profiles[0].identifiers.some((x) => x.type === 'user_id' && x.value === 'kim'));
    // 'free' was kim's plan once: the latest value counts
    r = await get('/api/profiles?where=plan=free');
    assert.equal(r.json.total, 0);
    r = await get(`/api/profiles?where=${encodeURIComponent('name~Ki')}&where=plan=pro`);
    assert.equal(r.json.total, 1);
    // != also matches persons without the trait; paging
    r = await get(`/api/profiles?where=${encodeURIComponent('plan!=pro')}&limit=1`);
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json.total >= 2, r.text);
    assert.equal(r.json.profiles.length, 1);
    assert.equal(r.json.next_offset, 1);
    assert.ok(!r.json.profiles.some((p) => p.person === kim.person));
    r = await get('/api/profiles?where=plna=pro');
    assert.equal(r.status, 400);
    assert.match(r.json.error, /unknown trait 'plna'/);
    r = await get('/api/profiles');
    assert.equal(r.status, 400);
    assert.match(r.json.error, /where=/);
  });

  it('errors name the problem', T, async () => {
    let r = await get('/api/profiles/user_id:nobody');
    assert.equal(r.status, 404);
    assert.match(r.json.error, /user_id:nobody/);
    r = await get('/api/profiles/kim');
    assert.equal(r.status, 400);
    assert.match(r.json.error, /TYPE:VALUE/);
    r = await get('/api/profiles/user_id:kim?limit=0');
    assert.equal(r.status, 400);
    assert.match(r.json.error, /limit/);
    r = await get('/api/profiles/user_id:kim?before=yesterday');
    assert.equal(r.status, 400);
    assert.match(r.json.error, /before/);
    r = await srv.get('/api/profiles/user_id:kim');
    assert.equal(r.status, 401);
    r = await srv.post('/api/profiles/user_id:kim', {}, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(r.status, 405);
  });

  it('computed traits: defined over the API, evaluated over the whole history', T, async () => {
    const auth = { headers: { Authorization: `Bearer ${token}` } };
    const put = (name, def) => srv.request(`/api/computed-traits/${name}`, { method: 'PUT', body: JSON.stringify(def), ...auth });
    const defs = {
      big_orders: { kind: 'count', event: 'Order Completed', filters: [{ property: 'properties.revenue', operator: '>', value: 50 }] },
      avg_order: { kind: 'avg', event: 'Order Completed', property: 'properties.revenue' },
      skus: { kind: 'unique_values', event: 'Product Viewed', property: 'properties.sku' },
      first_sku: { kind: 'first', event: 'Product Viewed', property: 'properties.sku' },
      plans: { kind: 'unique_count', event: '$identify', property: 'traits.plan' },
      orders_30d: { kind: 'count', event: 'Order Completed', window_days: 30 },
    };
    for (const [name, def] of Object.entries(defs)) {
      const r = await put(name, def);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.name, name);
    }
    const p = await profile('anonymous_id:dev-b');
    assert.equal(p.computed.big_orders, 1);
    assert.equal(p.computed.avg_order, 47.75);
    assert.deepEqual(p.computed.skus, ['A1', 'B2']);
    assert.equal(p.computed.first_sku, 'A1');
    assert.equal(p.computed.plans, 2);
    assert.equal(p.computed.orders_30d, 0, 'the orders are from 2024: outside the last 30 days');
    assert.equal(p.computed.order_count, 2, 'the built-in traits stay');
    // listed, replaced, deleted
    const list = await get('/api/computed-traits');
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.json.computed_traits.map((d) => d.name).sort(), Object.keys(defs).sort());
    assert.equal((await put('big_orders', { kind: 'count', event: 'Order Completed' })).status, 200);
    assert.equal((await profile('user_id:kim')).computed.big_orders, 2);
    const del = await srv.request('/api/computed-traits/big_orders', { method: 'DELETE', ...auth });
    assert.equal(del.status, 204, del.text);
    assert.equal((await profile('user_id:kim')).computed.big_orders, undefined);
    assert.equal((await srv.request('/api/computed-traits/big_orders', { method: 'DELETE', ...auth })).status, 404);
    // bad definitions name the field
    let r = await put('x', { kind: 'median', property: 'properties.revenue' });
    assert.equal(r.status, 400);
    assert.match(r.json.error, /^kind:/);
    r = await put('x', { kind: 'sum' });
    assert.match(r.json.error, /^property:/);
    r = await put('x', { kind: 'count', filters: [{ property: 'properties.revenue', operator: '~', value: 1 }] });
    assert.match(r.json.error, /filters\[0\]\.operator/);
    r = await put('last_seen', { kind: 'count' });
    assert.match(r.json.error, /built-in/);
    r = await put('Bad-Name', { kind: 'count' });
    assert.match(r.json.error, /^name:/);
    // the CLI sees and changes the same definitions
    const { stdout } = await cli(['computed-trait', 'list', '--data', dir]);
    assert.equal(stdout.trim().split('\n').length, Object.keys(defs).length - 1);
    await cli(['computed-trait', 'set', 'total', '{"kind":"sum","event":"Order Completed","property":"properties.revenue"}', '--data', dir]);
    assert.equal((await profile('user_id:kim')).computed.total, 95.5);
    const bad = await runCli(['computed-trait', 'set', 'bad', '{"kind":"nope"}', '--data', dir]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /kind:/);
    const other = await runCli(['computed-trait', 'set', 'one', '{"name":"two","kind":"count"}', '--data', dir]);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /name:/);
    await cli(['computed-trait', 'set', 'same', '{"name":"same","kind":"count"}', '--data', dir]);
    const listed = (await cli(['computed-trait', 'list', '--data', dir])).stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(listed.find((d) => d.name === 'same'), { name: 'same', kind: 'count' });
  });

  it('tandem profile prints the same profile, live and after a restart', T, async () => {
    const want = await profile('user_id:kim');
    const { stdout } = await cli(['profile', 'user_id:kim', '--data', dir]);
    assert.deepEqual(JSON.parse(stdout), want);
    await srv.restart();
    assert.deepEqual(await profile('user_id:kim'), want);
    const r = await runCli(['profile', 'email:nobody@x.test', '--data', dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nobody@x\.test/);
  });
});
