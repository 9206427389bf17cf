// The dashboard's server side (docs/dashboard.md) against the real binary:
// sign-in sessions (cookie attributes, sign-out, revocation, cross-site
// refusal), /api/sources, /api/stats/live, /api/health/data (live counts,
// the store's history from before the start, quarantine samples), and the
// embedded static files (ETag/304, gzip, HEAD, client routes, --web-dir,
// security headers, unknown paths).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  makeDataDir,
  cleanupTempDirs,
  startServer,
  createSource,
  cli,
  runCli,
  request,
  uid,
  waitFor,
  WRITE_KEY_RE,
} from './lib/server.mjs';

const T = { timeout: 30_000 };
const HOOK = { timeout: 60_000 };
const ISO_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const SESSION_RE = /^tandem_session=([0-9a-f]{64}); HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/;

after(cleanupTempDirs);

// A raw HTTP/1.1 request (fetch would decompress bodies and normalize paths).
function raw(url, p, headers = {}, method = 'GET') {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path: p, method, headers, timeout: 10_000 },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

function assertSecurityHeaders(headers, what) {
  const h = (n) => (headers.get ? headers.get(n) : headers[n]);
  const csp = h('content-security-policy');
  assert.ok(csp, `${what}: no Content-Security-Policy`);
  assert.match(csp, /script-src 'self'(;|$)/, `${what}: scripts must be same-origin only: ${csp}`);
  assert.doesNotMatch(csp, /script-src[^;]*unsafe-inline/, csp);
  assert.match(csp, /frame-ancestors 'none'/, csp);
  assert.equal(h('x-content-type-options'), 'nosniff', what);
  assert.equal(h('referrer-policy'), 'same-origin', what);
  assert.equal(h('x-frame-options'), 'DENY', what);
}

async function signIn(srv, token, headers = {}) {
  const res = await srv.post('/api/session', { token }, { headers });
  assert.equal(res.status, 200, res.text);
  const set = res.headers.get('set-cookie');
  const m = SESSION_RE.exec(set);
  assert.ok(m, `Set-Cookie: ${set}`);
  return { cookie: `tandem_session=${m[1]}`, id: m[1], json: res.json };
}

describe('dashboard API: sessions', () => {
  let dir, srv, admin;
  const withCookie = (cookie, extra = {}) => ({ headers: { Cookie: cookie, ...extra } });

  before(async () => {
    dir = await makeDataDir();
    srv = await startServer(null, { dataDir: dir });
    admin = (await readFile(path.join(dir, 'admin-token'), 'utf8')).trim();
  }, HOOK);
  after(() => srv?.stop());

  it('signs in with a token: an opaque HttpOnly SameSite=Strict cookie and the role', T, async () => {
    const t0 = Date.now();
    const a = await signIn(srv, admin);
    assert.equal(a.json.role, 'admin');
    assert.match(a.json.expires, ISO_RE);
    const left = Date.parse(a.json.expires) - t0;
    assert.ok(left > 43_190_000 && left < 43_210_000, `expires in ${left} ms`);
    assert.ok(!a.id.includes(admin.slice(4, 20)), 'the cookie must not carry the token');
    const b = await signIn(srv, admin);
    assert.notEqual(a.id, b.id, 'every sign-in gets a fresh random id');

    const me = await srv.get('/api/session', withCookie(a.cookie));
    assert.equal(me.status, 200, me.text);
    const kinds = ['trends', 'funnel', 'retention', 'paths', 'events', 'attribution'];
    assert.deepEqual(me.json, { role: 'admin', expires: a.json.expires, query_kinds: kinds });
    // the cookie is accepted wherever a bearer token is
    const src = await srv.get('/api/sources', withCookie(a.cookie));
    assert.equal(src.status, 200, src.text);
    const q = await srv.post('/api/query', { kind: 'events', limit: 1 }, withCookie(a.cookie));
    assert.equal(q.status, 200, q.text);
    // and the bearer token still works alone
    const bearer = await srv.get('/api/session', { headers: { Authorization: `Bearer ${admin}` } });
    assert.equal(bearer.status, 200, bearer.text);
    assert.deepEqual(bearer.json, { role: 'admin', expires: null, query_kinds: kinds });
  });

  it('refuses bad tokens, bad bodies, bad cookies and other methods', T, async () => {
    const bad = await srv.post('/api/session', { token: 'tdk_' + '0'.repeat(64) });
    assert.equal(bad.status, 401, bad.text);
    assert.equal(bad.json.code, 'unauthorized');
    assert.equal(bad.headers.get('set-cookie'), null);
    for (const body of ['not json', '{}', '{"token":42}', '[]']) {
      const res = await srv.post('/api/session', body);
      assert.equal(res.status, 400, `${body}: ${res.text}`);
      assert.equal(res.json.code, 'invalid_request');
    }
    const none = await srv.get('/api/session');
    assert.equal(none.status, 401, none.text);
    for (const cookie of ['tandem_session=' + 'a'.repeat(64), 'tandem_session=xyz', 'tandem_session=']) {
      const res = await srv.get('/api/sources', withCookie(cookie));
      assert.equal(res.status, 401, `${cookie}: ${res.text}`);
      assert.equal(res.json.success, false);
    }
    const put = await srv.request('/api/session', { method: 'PUT', body: '{}' });
    assert.equal(put.status, 405, put.text);
    assert.match(put.headers.get('allow'), /DELETE/);
  });

  it('signs out: 204, a cookie that expires now, and the session is gone', T, async () => {
    const a = await signIn(srv, admin);
    const b = await signIn(srv, admin);
    const out = await srv.request('/api/session', { method: 'DELETE', ...withCookie(a.cookie) });
    assert.equal(out.status, 204, out.text);
    assert.match(out.headers.get('set-cookie'), /^tandem_session=; HttpOnly; SameSite=Strict; Path=\/; Max-Age=0$/);
    const after1 = await srv.get('/api/session', withCookie(a.cookie));
    assert.equal(after1.status, 401, after1.text);
    const src = await srv.get('/api/sources', withCookie(a.cookie));
    assert.equal(src.status, 401, src.text);
    // another session of the same token lives on
    const other = await srv.get('/api/session', withCookie(b.cookie));
    assert.equal(other.status, 200, other.text);
    // signing out without a session is harmless
    const again = await srv.request('/api/session', { method: 'DELETE' });
    assert.equal(again.status, 204);
  });

  it('revoking the token ends its sessions', T, async () => {
    const { stdout } = await cli(['token', 'create', 'dash-revoke', '--role', 'admin', '--data', dir]);
    const token = stdout.trim().split(/\s+/).find((w) => w.startsWith('tdk_'));
    assert.ok(token, stdout);
    const s = await signIn(srv, token);
    assert.equal((await srv.get('/api/sources', withCookie(s.cookie))).status, 200);
    await cli(['token', 'revoke', 'dash-revoke', '--data', dir]);
    const res = await srv.get('/api/sources', withCookie(s.cookie));
    assert.equal(res.status, 401, res.text);
    assert.match(res.json.error, /revoked/);
    const me = await srv.get('/api/session', withCookie(s.cookie));
    assert.equal(me.status, 401, me.text);
    // the admin's own sessions are not touched
    const a = await signIn(srv, admin);
    assert.equal((await srv.get('/api/sources', withCookie(a.cookie))).status, 200);
  });

  it('a non-admin token signs in but the API answers 403', T, async () => {
    const { stdout } = await cli(['token', 'create', 'dash-viewer', '--role', 'viewer', '--data', dir]);
    const token = stdout.trim().split(/\s+/).find((w) => w.startsWith('tdk_'));
    const s = await signIn(srv, token);
    assert.equal(s.json.role, 'viewer');
    const res = await srv.get('/api/sources', withCookie(s.cookie));
    assert.equal(res.status, 403, res.text);
  });

  it('a cookie cannot change anything from another site (Origin)', T, async () => {
    const a = await signIn(srv, admin);
    const evil = await srv.post('/api/sources', { name: 'evil' },
      withCookie(a.cookie, { Origin: 'https://evil.example' }));
    assert.equal(evil.status, 403, evil.text);
    const list = await srv.get('/api/sources', withCookie(a.cookie));
    assert.ok(!list.json.sources.some((s) => s.name === 'evil'), 'the cross-site POST created a source');
    const same = await srv.post('/api/sources', { name: 'same-site' },
      withCookie(a.cookie, { Origin: srv.url }));
    assert.equal(same.status, 201, same.text);
  });

  it('keeps at most 1024 live sessions: signing in past that ends the oldest', { timeout: 60_000 }, async () => {
    const first = await signIn(srv, admin);
    const rest = [];
    for (let i = 0; i < 1024; i++) {
      const res = await srv.post('/api/session', { token: admin });
      assert.equal(res.status, 200, res.text);
      rest.push(SESSION_RE.exec(res.headers.get('set-cookie'))[1]);
    }
    assert.equal((await srv.get('/api/session', withCookie(first.cookie))).status, 401, 'the oldest survived');
    for (const id of [rest[0], rest[1023]]) {
      const res = await srv.get('/api/session', withCookie(`tandem_session=${id}`));
      assert.equal(res.status, 200, res.text);
    }
  });

  it('never logs tokens or session ids', T, async () => {
    const a = await signIn(srv, admin);
    await srv.get('/api/sources', withCookie(a.cookie));
    assert.ok(!srv.stderr.includes(admin), 'the admin token is in the log');
    assert.ok(!srv.stderr.includes(a.id), 'a session id is in the log');
  });
});

describe('dashboard API: failed sign-ins', () => {
  let dir, srv, admin;

  before(async () => {
    dir = await makeDataDir();
    srv = await startServer(null, { dataDir: dir, args: ['--trusted-proxy', '127.0.0.1/32'] });
    admin = (await readFile(path.join(dir, 'admin-token'), 'utf8')).trim();
  }, HOOK);
  after(() => srv?.stop());

  it('10 failures from one address within a minute: 429 for it, others still sign in', T, async () => {
    const from = (ip) => ({ headers: { 'X-Forwarded-For': ip } });
    for (let i = 0; i < 10; i++) {
      const bad = await srv.post('/api/session', { token: `tdk_${'1'.repeat(63)}${i}` }, from('203.0.113.7'));
      assert.equal(bad.status, 401, `attempt ${i + 1}: ${bad.text}`);
    }
    const held = await srv.post('/api/session', { token: admin }, from('203.0.113.7'));
    assert.equal(held.status, 429, held.text);
    assert.equal(held.json.code, 'too_many_attempts');
    assert.match(held.json.error, /10 failed sign-ins from 203\.0\.113\.7 within a minute; try again in \d+ s/);
    const wait = Number(held.headers.get('retry-after'));
    assert.ok(wait >= 1 && wait <= 60, `Retry-After ${wait}`);
    assert.equal(held.headers.get('set-cookie'), null);
    const other = await srv.post('/api/session', { token: admin }, from('203.0.113.8'));
    assert.equal(other.status, 200, other.text);
  });
});

describe('dashboard API: sources, live stats, data health', () => {
  let dir, srv, token, key, auth;
  const HIST_EVENTS = 7;
  let histHourMs;

  before(async () => {
    dir = await makeDataDir();
    key = await createSource(dir, 'web');
    await createSource(dir, 'batch');
    // history from before the start: events imported two hours ago (by
    // timestamp), and a rejection in the quarantine an hour ago
    const now = Date.now();
    histHourMs = Math.floor((now - 2 * 3600_000) / 3600_000) * 3600_000;
    const lines = [];
    for (let i = 0; i < HIST_EVENTS; i++)
      lines.push(JSON.stringify({ type: 'track', userId: `h${i}`, event: 'Old Event', messageId: uid('h'),
        timestamp: new Date(histHourMs + 60_000 * (i + 1)).toISOString() }));
    lines.push('this line is not JSON'); // rejected by the import: data health shows it
    const file = path.join(path.dirname(dir), 'hist.ndjson');
    await writeFile(file, lines.join('\n') + '\n');
    await cli(['import', file, '--data', dir, '--source', 'batch', '--quiet']);
    const qAt = new Date(now - 3600_000);
    await mkdir(path.join(dir, 'quarantine'), { recursive: true });
    await writeFile(path.join(dir, 'quarantine', `${qAt.toISOString().slice(0, 10)}.ndjson`),
      JSON.stringify({ receivedAt: qAt.toISOString(), source: 'batch', endpoint: 'batch', index: 0,
        reason: 'invalid_timestamp', field: 'timestamp', error: 'not a time', raw: '{"old":true}' }) + '\n' +
      'a torn line that is not JSON\n', { flag: 'a' });

    srv = await startServer(null, { dataDir: dir });
    token = (await readFile(path.join(dir, 'admin-token'), 'utf8')).trim();
    auth = { headers: { Authorization: `Bearer ${token}` } };
  }, HOOK);
  after(() => srv?.stop());

  it('every endpoint wants a token or a session', T, async () => {
    for (const p of ['/api/sources', '/api/stats/live', '/api/health/data', '/api/session']) {
      const res = await srv.get(p);
      assert.equal(res.status, 401, `${p}: ${res.text}`);
      assert.equal(res.json.success, false);
      assertSecurityHeaders(res.headers, p);
    }
    const post = await srv.post('/api/sources', { name: 'nope' });
    assert.equal(post.status, 401, post.text);
  });

  it('lists and creates sources', T, async () => {
    const list = await srv.get('/api/sources', auth);
    assert.equal(list.status, 200, list.text);
    const web = list.json.sources.find((s) => s.name === 'web');
    assert.deepEqual(Object.keys(web).sort(), ['created', 'enabled', 'id', 'last_event', 'name', 'write_key']);
    assert.equal(web.write_key, key);
    assert.equal(web.enabled, true);
    assert.match(web.created, ISO_RE);
    assert.equal(web.last_event, null, 'nothing was sent as web');
    const batch = list.json.sources.find((s) => s.name === 'batch');
    assert.match(batch.last_event, ISO_RE, 'the import before the start is the last event (from the store)');

    const made = await srv.post('/api/sources', { name: 'shop.app-2' }, auth);
    assert.equal(made.status, 201, made.text);
    assert.equal(made.json.name, 'shop.app-2');
    assert.match(made.json.write_key, WRITE_KEY_RE);
    assert.equal(made.json.enabled, true);
    assert.equal(made.json.last_event, null);
    assert.ok(made.json.id > web.id);
    // the new key works at once
    const sent = await srv.post('/v1/track', { userId: 'n1', event: 'Hello' }, { key: made.json.write_key });
    assert.equal(sent.status, 200, sent.text);
    const again = await srv.get('/api/sources', auth);
    const s2 = again.json.sources.find((s) => s.name === 'shop.app-2');
    assert.match(s2.last_event, ISO_RE);

    const dup = await srv.post('/api/sources', { name: 'shop.app-2' }, auth);
    assert.equal(dup.status, 409, dup.text);
    assert.equal(dup.json.code, 'conflict');
    for (const body of [{ name: 'bad name!' }, { name: '' }, { name: 5 }, {}, 'nope']) {
      const res = await srv.post('/api/sources', body, auth);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
      assert.equal(res.json.code, 'invalid_request');
    }
    const del = await srv.request('/api/sources', { method: 'DELETE', ...auth });
    assert.equal(del.status, 405, del.text);
  });

  it('counts what the collector takes per minute', T, async () => {
    const id = uid('live');
    const batch = [
      { type: 'track', userId: 'l1', event: 'A', messageId: id },
      { type: 'track', userId: 'l2', event: 'B', messageId: uid('live') },
      { type: 'track', userId: 'l3', event: 'C', messageId: uid('live') },
      { type: 'track', userId: 'l4' }, // no event: rejected
    ];
    const before = await srv.get('/api/stats/live?minutes=2', auth);
    assert.equal(before.status, 200, before.text);
    const sum = (r, k) => r.json.minutes.reduce((a, m) => a + m[k], 0);
    let res = await srv.post('/v1/batch', { batch }, { key });
    assert.equal(res.status, 207, res.text);
    res = await srv.post('/v1/track', { type: 'track', userId: 'l1', event: 'A', messageId: id }, { key });
    assert.equal(res.json.duplicates, 1, res.text);
    const now = await srv.get('/api/stats/live?minutes=2', auth);
    // the minute may turn between the two reads: compare sums over both
    const turned = now.json.from !== before.json.from;
    const base = (k) => (turned ? before.json.minutes[1][k] : sum(before, k));
    assert.equal(sum(now, 'accepted') - base('accepted'), 3, now.text);
    assert.equal(sum(now, 'rejected') - base('rejected'), 1, now.text);
    assert.equal(sum(now, 'deduplicated') - base('deduplicated'), 1, now.text);

    const def = await srv.get('/api/stats/live', auth);
    assert.equal(def.json.interval, 'minute');
    assert.equal(def.json.minutes.length, 60);
    assert.equal(def.json.from, def.json.minutes[0].t);
    for (let i = 1; i < 60; i++)
      assert.equal(Date.parse(def.json.minutes[i].t) - Date.parse(def.json.minutes[i - 1].t), 60_000);
    const last = Date.parse(def.json.minutes[59].t);
    assert.ok(Date.now() - last < 120_000 && last % 60_000 === 0, def.json.minutes[59].t);
    assert.equal((await srv.get('/api/stats/live?minutes=1440', auth)).json.minutes.length, 1440);
    for (const q of ['0', '1441', 'abc', '5x', '']) {
      const bad = await srv.get(`/api/stats/live?minutes=${q}`, auth);
      assert.equal(bad.status, 400, `${q}: ${bad.text}`);
    }
  });

  it('reports data health: per source, reasons with samples, latency, sizes', T, async () => {
    const rejected = { type: 'track', userId: 'bad', messageId: uid('bad'), properties: { marker: 'sample-1' } };
    let res = await srv.post('/v1/batch', { batch: [rejected, { type: 'track', userId: 'ok', event: 'Fine' }] }, { key });
    assert.equal(res.status, 207, res.text);

    const h = await waitFor(async () => {
      const r = await srv.get('/api/health/data?hours=3', auth);
      return r.status === 200 && r.json.events_stored >= HIST_EVENTS + 1 ? r : null;
    });
    assert.ok(h, 'health never showed the stored events');
    const d = h.json;
    assert.equal(d.interval, 'minute');
    assert.equal(d.times.length, 180);
    for (const t of d.times) assert.match(t, ISO_RE);
    const web = d.sources.find((s) => s.name === 'web');
    for (const k of ['accepted', 'rejected', 'deduplicated']) assert.equal(web[k].length, 180);
    const total = (k) => web[k].reduce((a, b) => a + b, 0);
    assert.equal(total('accepted'), 4, JSON.stringify(web)); // 3 + 1 from the tests above
    assert.equal(total('rejected'), 2);
    assert.equal(total('deduplicated'), 1);
    assert.match(web.last_event, ISO_RE);

    const missing = d.reasons.find((r) => r.code === 'missing_event');
    assert.ok(missing, JSON.stringify(d.reasons));
    assert.equal(missing.count, 2);
    assert.ok(missing.samples.length >= 1 && missing.samples.length <= 5);
    const s0 = missing.samples[0]; // newest first
    assert.equal(s0.source, 'web');
    assert.equal(s0.field, 'event');
    assert.match(s0.received, ISO_RE);
    assert.match(s0.error, /event/);
    assert.equal(JSON.parse(s0.raw).properties.marker, 'sample-1');
    // the quarantine line from before the start is a reason too, and counted
    // for its source at its minute
    const old = d.reasons.find((r) => r.code === 'invalid_timestamp');
    assert.equal(old?.count, 1, JSON.stringify(d.reasons));
    assert.equal(old.samples[0].raw, '{"old":true}');
    // so is the line `tandem import` rejected before the start, with its source
    const imported = d.reasons.find((r) => r.code === 'invalid_json');
    assert.equal(imported?.count, 1, JSON.stringify(d.reasons));
    assert.equal(imported.samples[0].source, 'batch');
    assert.equal(imported.samples[0].endpoint, 'import');
    assert.equal(imported.samples[0].raw, 'this line is not JSON');
    assert.match(imported.samples[0].received, ISO_RE);
    const batch = d.sources.find((s) => s.name === 'batch');
    assert.equal(batch.rejected.reduce((a, b) => a + b, 0), 2);

    assert.equal(typeof d.latency.fsync_ms.p50, 'number');
    assert.ok(d.latency.fsync_ms.p99 >= d.latency.fsync_ms.p50);
    assert.equal(typeof d.latency.request_ms.p99, 'number');
    assert.ok(d.wal_bytes > 0, `wal_bytes ${d.wal_bytes}`);
    assert.ok(d.store_bytes > 0, `store_bytes ${d.store_bytes}`);
  });

  it('hourly: the store fills the hours before the start', T, async () => {
    const res = await srv.get('/api/health/data', auth);
    assert.equal(res.status, 200, res.text);
    const d = res.json;
    assert.equal(d.interval, 'hour');
    assert.equal(d.times.length, 24);
    const batch = d.sources.find((s) => s.name === 'batch');
    const i = d.times.indexOf(new Date(histHourMs).toISOString());
    assert.ok(i >= 0, `${new Date(histHourMs).toISOString()} not in ${d.times}`);
    assert.equal(batch.accepted[i], HIST_EVENTS, JSON.stringify(batch.accepted));
    assert.equal(batch.accepted.reduce((a, b) => a + b, 0), HIST_EVENTS);
    assert.match(batch.last_event, ISO_RE);
    const week = await srv.get('/api/health/data?hours=168', auth);
    assert.equal(week.json.times.length, 168);
    const mins = await srv.get('/api/health/data?hours=24&interval=minute', auth);
    assert.equal(mins.json.times.length, 1440);
    for (const q of ['hours=0', 'hours=169', 'hours=x', 'hours=48&interval=minute', 'interval=day']) {
      const bad = await srv.get(`/api/health/data?${q}`, auth);
      assert.equal(bad.status, 400, `${q}: ${bad.text}`);
      assert.equal(bad.json.code, 'invalid_request');
    }
  });

  it('unknown API paths are JSON 404s, not the page', T, async () => {
    for (const p of ['/api/nope', '/api/stats', '/api/sources/1', '/v1/nope']) {
      const res = await srv.get(p, auth);
      assert.equal(res.status, 404, `${p}: ${res.text}`);
      assert.equal(res.json.code, 'not_found');
    }
  });
});

describe('dashboard: static files', () => {
  let dir, srv, webDir, dev;

  before(async () => {
    dir = await makeDataDir();
    srv = await startServer(null, { dataDir: dir });
    webDir = path.join(path.dirname(dir), 'web');
    await mkdir(path.join(webDir, 'assets'), { recursive: true });
    await writeFile(path.join(webDir, 'index.html'), '<!doctype html><title>dev page</title>\n');
    await writeFile(path.join(webDir, 'assets', 'app.js'), 'console.log("dev");\n');
    await writeFile(path.join(path.dirname(dir), 'secret.txt'), 'secret\n');
    await symlink(path.join(path.dirname(dir), 'secret.txt'), path.join(webDir, 'assets', 'link.js'));
    await symlink(path.dirname(dir), path.join(webDir, 'up'));
    dev = await startServer(null, { dataDir: await makeDataDir(), args: ['--web-dir', webDir] });
  }, HOOK);
  after(async () => {
    await srv?.stop();
    await dev?.stop();
  });

  it('serves the embedded page with a content type, ETag, Cache-Control and security headers', T, async () => {
    const res = await raw(srv.url, '/');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
    assert.match(res.headers.etag, /^"[0-9a-f]{16}"$/);
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.equal(res.headers['content-encoding'], undefined);
    assert.match(res.body.toString(), /<html|<!doctype html/i);
    assertSecurityHeaders(res.headers, '/');
    const idx = await raw(srv.url, '/index.html');
    assert.equal(idx.headers.etag, res.headers.etag);
    assert.deepEqual(idx.body, res.body);
  });

  it('answers 304 to a matching If-None-Match', T, async () => {
    const first = await raw(srv.url, '/');
    const etag = first.headers.etag;
    const again = await raw(srv.url, '/', { 'If-None-Match': etag });
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);
    assert.equal(again.headers.etag, etag);
    const list = await raw(srv.url, '/', { 'If-None-Match': `"0000000000000000", W/${etag}` });
    assert.equal(list.status, 304);
    const other = await raw(srv.url, '/', { 'If-None-Match': '"0000000000000000"' });
    assert.equal(other.status, 200);
    assert.deepEqual(other.body, first.body);
  });

  it('sends the gzip variant when accepted, with its own ETag', T, async () => {
    const plain = await raw(srv.url, '/');
    const gz = await raw(srv.url, '/', { 'Accept-Encoding': 'gzip, deflate' });
    if (!plain.headers.vary) {
      // the page is too small to be worth compressing: no variant
      assert.equal(gz.headers['content-encoding'], undefined);
      return;
    }
    assert.equal(plain.headers.vary, 'Accept-Encoding');
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.deepEqual(gunzipSync(gz.body), plain.body);
    assert.equal(gz.headers.etag, plain.headers.etag.replace(/"$/, '-gz"'));
    const refused = await raw(srv.url, '/', { 'Accept-Encoding': 'gzip;q=0' });
    assert.equal(refused.headers['content-encoding'], undefined);
    const revalidate = await raw(srv.url, '/', { 'Accept-Encoding': 'gzip', 'If-None-Match': gz.headers.etag });
    assert.equal(revalidate.status, 304);
  });

  it('HEAD: the headers of a GET without the body', T, async () => {
    const get = await raw(srv.url, '/');
    const head = await raw(srv.url, '/', {}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers.etag, get.headers.etag);
    assert.equal(Number(head.headers['content-length']), get.body.length);
  });

  it('client routes get index.html; missing files and odd paths get 404', T, async () => {
    const page = await raw(srv.url, '/');
    for (const p of ['/funnels', '/profiles/user_id:kim', '/health-data?hours=3']) {
      const res = await raw(srv.url, p);
      assert.equal(res.status, 200, p);
      assert.deepEqual(res.body, page.body, p);
      assertSecurityHeaders(res.headers, p);
    }
    for (const p of ['/assets/nope.js', '/nope.css', '/assets/x', '/assets/../../etc/passwd', '/.env']) {
      const res = await raw(srv.url, p);
      assert.ok(res.status === 404 || (res.status === 200 && res.body.equals(page.body)), `${p}: ${res.status}`);
      assert.ok(!res.body.toString().includes('root:'), p);
    }
    const missing = await raw(srv.url, '/assets/nope.js');
    assert.equal(missing.status, 404);
    assert.equal(JSON.parse(missing.body).code, 'not_found');
    const post = await request(srv.url + '/', { method: 'POST', body: '{}' });
    assert.equal(post.status, 404, post.text);
  });

  it('--web-dir serves files from disk first, read at each request', T, async () => {
    const page = await raw(dev.url, '/');
    assert.equal(page.status, 200);
    assert.equal(page.body.toString(), '<!doctype html><title>dev page</title>\n');
    const js = await raw(dev.url, '/assets/app.js');
    assert.equal(js.status, 200);
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.match(js.headers.etag, /^"[0-9a-f]{16}"$/);
    assert.equal((await raw(dev.url, '/assets/app.js', { 'If-None-Match': js.headers.etag })).status, 304);
    await writeFile(path.join(webDir, 'assets', 'app.js'), 'console.log("changed");\n');
    const changed = await raw(dev.url, '/assets/app.js', { 'If-None-Match': js.headers.etag });
    assert.equal(changed.status, 200);
    assert.equal(changed.body.toString(), 'console.log("changed");\n');
    assert.notEqual(changed.headers.etag, js.headers.etag);
    // a client route gets the disk's index.html
    assert.equal((await raw(dev.url, '/trends')).body.toString(), page.body.toString());
    // symlinks and paths out of the directory are not followed
    const link = await raw(dev.url, '/assets/link.js');
    assert.equal(link.status, 404);
    for (const p of ['/../secret.txt', '/assets/../../secret.txt', '/%2e%2e/secret.txt', '/up/secret.txt']) {
      const out = await raw(dev.url, p);
      assert.equal(out.status, 404, p);
      assert.ok(!out.body.toString().includes('secret\n'), `${p} left the web directory`);
    }
    const bad = await runCli(['serve', '--data', await makeDataDir(), '--web-dir', path.join(webDir, 'nope')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--web-dir .* is not a directory/);
  });
});
