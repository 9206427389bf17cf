// The Segment-compatible collector and the CLI around it, against the real
// binary on 127.0.0.1. Each test asserts something that breaks when the
// feature it names breaks; every test has its own timeout.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { stat, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  TandemServer,
  makeDataDir,
  cleanupTempDirs,
  startServer,
  createSource,
  exportEvents,
  runCli,
  cli,
  request,
  basicAuth,
  waitFor,
  uid,
  sleep,
  quarantineLines,
  parseMetrics,
  WRITE_KEY_RE,
} from './lib/server.mjs';

const T = { timeout: 20_000 }; // per-test timeout for ordinary tests
const HOOK = { timeout: 30_000 };
const ISO_MS_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

after(cleanupTempDirs);

function withId(events, id) {
  return events.filter((e) => e.messageId === id);
}

// The one stored copy of messageId `id` (asserts there is exactly one).
function one(events, id) {
  const found = withId(events, id);
  assert.equal(found.length, 1, `expected exactly one stored event with messageId ${id}, found ${found.length}`);
  return found[0];
}

function assertOk(res, accepted, duplicates = 0) {
  assert.equal(res.status, 200, `expected 200, got ${res.status}: ${res.text}`);
  assert.ok(res.json, `response is not JSON: ${res.text}`);
  assert.equal(res.json.success, true, res.text);
  assert.equal(res.json.accepted, accepted, res.text);
  assert.equal(res.json.duplicates, duplicates, res.text);
  assert.deepEqual(res.json.rejected, [], res.text);
}

function assertError(res, status, code) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.ok(res.json, `response is not JSON: ${res.text}`);
  assert.equal(res.json.success, false, res.text);
  assert.equal(res.json.code, code, res.text);
  assert.equal(typeof res.json.error, 'string', res.text);
  assert.ok(res.json.error.length > 0, res.text);
}

function trackMsg(extra = {}) {
  return { type: 'track', userId: 'user-1', event: 'Test Event', messageId: uid('trk'), ...extra };
}

// ---------------------------------------------------------------------------

describe('collector on a default server', () => {
  let dir, key, srv;

  before(async () => {
    dir = await makeDataDir();
    key = await createSource(dir, 'web');
    srv = await startServer(null, { dataDir: dir });
  }, HOOK);
  after(() => srv?.stop());

  const post = (p, body, opts = {}) => srv.post(p, body, { key, ...opts });

  describe('endpoints store the right type', () => {
    const single = [
      ['identify', { traits: { plan: 'pro' } }],
      ['track', { event: 'Clicked' }],
      ['page', { name: 'Home' }],
      ['screen', { name: 'Main' }],
      ['group', { groupId: 'g-1' }],
      ['alias', { previousId: 'anon-old' }],
    ];
    for (const [type, fields] of single) {
      for (const p of [`/v1/${type}`, `/v1/${type[0]}`]) {
        it(`POST ${p} stores a ${type}`, T, async () => {
          const id = uid(type);
          const res = await post(p, { userId: 'user-ep', messageId: id, ...fields });
          assertOk(res, 1);
          assert.match(res.headers.get('content-type') ?? '', /application\/json/);
          const ev = one(await exportEvents(dir), id);
          assert.equal(ev.type, type);
          assert.equal(ev.userId, 'user-ep');
          for (const [k, v] of Object.entries(fields)) assert.deepEqual(ev[k], v, `field ${k}`);
        });
      }
    }
    for (const p of ['/v1/batch', '/v1/b', '/v1/import']) {
      it(`POST ${p} stores every item with its own type`, T, async () => {
        const items = [
          { type: 'track', event: 'Batch Track', userId: 'u-b', messageId: uid('b') },
          { type: 'identify', traits: { a: 1 }, userId: 'u-b', messageId: uid('b') },
          { type: 'page', name: 'P', anonymousId: 'anon-b', messageId: uid('b') },
          { type: 'screen', name: 'S', anonymousId: 'anon-b', messageId: uid('b') },
          { type: 'group', groupId: 'g', userId: 'u-b', messageId: uid('b') },
          { type: 'alias', previousId: 'anon-b', userId: 'u-b', messageId: uid('b') },
        ];
        const res = await post(p, { batch: items });
        assertOk(res, items.length);
        const events = await exportEvents(dir);
        for (const item of items) assert.equal(one(events, item.messageId).type, item.type);
      });
    }
  });

  describe('write keys and bodies', () => {
    it('accepts the key by HTTP Basic auth (key as user, empty password)', T, async () => {
      const m = trackMsg();
      assertOk(await srv.post('/v1/track', m, { headers: { Authorization: basicAuth(key) } }), 1);
      one(await exportEvents(dir), m.messageId);
    });

    it('accepts the key as "writeKey" in the body and does not store it', T, async () => {
      const m = trackMsg({ writeKey: key });
      assertOk(await srv.post('/v1/track', m), 1);
      const ev = one(await exportEvents(dir), m.messageId);
      assert.equal('writeKey' in ev, false, `writeKey was stored: ${JSON.stringify(ev)}`);
      assert.equal(JSON.stringify(ev).includes(key), false, 'the write key appears in the stored event');
    });

    it('accepts a batch-level writeKey and strips it from every item', T, async () => {
      const items = [trackMsg(), trackMsg({ writeKey: key })];
      assertOk(await srv.post('/v1/batch', { writeKey: key, batch: items }), 2);
      const events = await exportEvents(dir);
      for (const item of items) {
        const ev = one(events, item.messageId);
        assert.equal('writeKey' in ev, false, JSON.stringify(ev));
      }
    });

    it('decodes a gzip body (Content-Encoding: gzip)', T, async () => {
      const items = [trackMsg({ properties: { pad: 'z'.repeat(2000) } }), trackMsg()];
      const res = await post('/v1/batch', { batch: items }, { gzip: true });
      assertOk(res, 2);
      const events = await exportEvents(dir);
      assert.equal(one(events, items[0].messageId).properties.pad, 'z'.repeat(2000));
      one(events, items[1].messageId);
    });

    it('accepts a text/plain body with the writeKey inside, as analytics.js sends it', T, async () => {
      const m = trackMsg({ writeKey: key, properties: { via: 'beacon' } });
      const res = await srv.post('/v1/t', JSON.stringify(m), { contentType: 'text/plain;charset=UTF-8' });
      assertOk(res, 1);
      const ev = one(await exportEvents(dir), m.messageId);
      assert.equal(ev.type, 'track');
      assert.deepEqual(ev.properties, { via: 'beacon' });
    });

    it('answers 401 unauthorized with no key, an unknown key, or a malformed Basic header', T, async () => {
      const m = trackMsg();
      assertError(await srv.post('/v1/track', m), 401, 'unauthorized');
      assertError(await srv.post('/v1/track', m, { key: 'wk_' + '0'.repeat(32) }), 401, 'unauthorized');
      assertError(
        await srv.post('/v1/track', m, { headers: { Authorization: 'Basic !!!not-base64' } }),
        401,
        'unauthorized',
      );
      assertError(await srv.post('/v1/batch', { writeKey: 'wk_nope', batch: [m] }), 401, 'unauthorized');
      assert.equal(withId(await exportEvents(dir), m.messageId).length, 0, 'an unauthorized event was stored');
    });

    it('sees a source created while running, and a disabled / re-enabled key, within about a second', T, async () => {
      const name = 'hot-' + process.pid;
      const hotKey = await createSource(dir, name);
      const okSoon = await waitFor(async () => (await srv.post('/v1/track', trackMsg(), { key: hotKey })).status === 200, { ms: 3000 });
      assert.ok(okSoon, 'a key created by `tandem source create` while the server runs was not accepted within 3 s');

      const list = await cli(['source', 'list', '--data', dir]);
      assert.match(list.stdout, new RegExp(name));
      assert.match(list.stdout, /\bweb\b/);

      await cli(['source', 'disable', name, '--data', dir]);
      const denied = await waitFor(async () => (await srv.post('/v1/track', trackMsg(), { key: hotKey })).status === 401, { ms: 3000 });
      assert.ok(denied, 'a disabled key still got through 3 s after `source disable`');
      const m = trackMsg();
      assertError(await srv.post('/v1/track', m, { key: hotKey }), 401, 'unauthorized');
      assert.equal(withId(await exportEvents(dir), m.messageId).length, 0);

      await cli(['source', 'enable', name, '--data', dir]);
      const back = await waitFor(async () => (await srv.post('/v1/track', trackMsg(), { key: hotKey })).status === 200, { ms: 3000 });
      assert.ok(back, 'a re-enabled key was not accepted within 3 s');
    });
  });

  describe('size limits (defaults)', () => {
    it('answers 413 too_large for a body over 500 KB and stores none of it', { timeout: 30_000 }, async () => {
      const marker = uid('big');
      const items = [];
      for (let i = 0; i < 620; i++) items.push(trackMsg({ messageId: `${marker}-${i}`, properties: { pad: 'p'.repeat(900) } }));
      const body = JSON.stringify({ batch: items });
      assert.ok(body.length > 512_000 && items.length < 2500);
      const res = await post('/v1/batch', body);
      assertError(res, 413, 'too_large');
      const events = await exportEvents(dir);
      assert.equal(events.filter((e) => String(e.messageId).startsWith(marker)).length, 0);
    });

    it('answers 413 too_large for more than 2500 events in a batch', { timeout: 30_000 }, async () => {
      const marker = uid('many');
      const items = [];
      for (let i = 0; i < 2501; i++) items.push({ type: 'track', event: 'e', userId: 'u', messageId: `${marker}-${i}` });
      const body = JSON.stringify({ batch: items });
      assert.ok(body.length < 512_000, 'the body must stay under the byte limit to test the event limit');
      assertError(await post('/v1/batch', body), 413, 'too_large');
      const events = await exportEvents(dir);
      assert.equal(events.filter((e) => String(e.messageId).startsWith(marker)).length, 0);
    });

    it('answers 413 too_large for a single message over 32 KB, 200 for one just under', T, async () => {
      const big = trackMsg({ properties: { pad: 'x'.repeat(33 * 1024) } });
      assertError(await post('/v1/track', big), 413, 'too_large');
      const fine = trackMsg({ properties: { pad: 'x'.repeat(30 * 1024) } });
      assertOk(await post('/v1/track', fine), 1);
      const events = await exportEvents(dir);
      assert.equal(withId(events, big.messageId).length, 0);
      assert.equal(one(events, fine.messageId).properties.pad.length, 30 * 1024);
    });
  });

  describe('invalid input', () => {
    it('reports the line and column of a JSON syntax error (error on line 3)', T, async () => {
      const body = '{\n  "userId": "u1",\n  "event": oops\n}';
      const res = await post('/v1/track', body);
      assertError(res, 400, 'invalid_json');
      assert.equal(res.json.line, 3, res.text);
      assert.equal(res.json.column, 12, res.text); // 1-based: the "o" of oops
      assert.match(res.json.error, /^invalid JSON at line 3, column 12: /);
    });

    it('reports line and column for errors on other lines too', T, async () => {
      let res = await post('/v1/batch', '{"batch": [\n{"type": "track"},\n{"type": "track",, }\n]}');
      assertError(res, 400, 'invalid_json');
      assert.equal(res.json.line, 3, res.text);
      assert.equal(res.json.column, 18, res.text);
      res = await post('/v1/identify', '{"userId": }');
      assertError(res, 400, 'invalid_json');
      assert.equal(res.json.line, 1, res.text);
      assert.equal(res.json.column, 12, res.text);
    });

    it('answers 400 invalid_batch for a batch without a "batch" array', T, async () => {
      assertError(await post('/v1/batch', { events: [trackMsg()] }), 400, 'invalid_batch');
      assertError(await post('/v1/batch', { batch: { 0: trackMsg() } }), 400, 'invalid_batch');
    });

    const singleCases = [
      ['missing_identity', '/v1/track', { event: 'E' }, null],
      ['missing_event', '/v1/track', { userId: 'u' }, 'event'],
      ['missing_group_id', '/v1/group', { userId: 'u' }, null],
      ['missing_previous_id', '/v1/alias', { userId: 'u' }, null],
      ['missing_user_id', '/v1/alias', { previousId: 'p' }, null],
      ['invalid_field', '/v1/track', { userId: 'u', event: 'E', properties: 'not an object' }, 'properties'],
      ['invalid_field', '/v1/identify', { userId: ['an', 'array'] }, 'userId'],
      ['invalid_field', '/v1/identify', { userId: 'u', traits: [1, 2] }, 'traits'],
      ['invalid_timestamp', '/v1/track', { userId: 'u', event: 'E', timestamp: 'yesterday' }, null],
      ['invalid_timestamp', '/v1/track', { userId: 'u', event: 'E', sentAt: 'not a date' }, null],
      ['invalid_timestamp', '/v1/track', { userId: 'u', event: 'E', originalTimestamp: '2020-13-45T99:00:00Z' }, null],
    ];
    for (const [code, p, fields, field] of singleCases) {
      it(`answers 400 ${code} for ${p} ${JSON.stringify(fields)}`, T, async () => {
        const id = uid(code);
        const res = await post(p, { messageId: id, ...fields });
        assertError(res, 400, code);
        assert.equal(res.json.accepted, 0, res.text);
        assert.equal(res.json.rejected.length, 1, res.text);
        assert.equal(res.json.rejected[0].code, code, res.text);
        assert.equal(res.json.rejected[0].index, 0, res.text);
        assert.equal(res.json.rejected[0].messageId, id, res.text);
        if (field) assert.equal(res.json.rejected[0].field, field, res.text);
        assert.equal(withId(await exportEvents(dir), id).length, 0, 'a rejected message was stored');
        assert.ok((await quarantineLines(dir)).some((l) => l.text.includes(id) && l.text.includes(code)), `${id} is not in quarantine with reason ${code}`);
      });
    }

    it('answers 400 message_id_too_long for 101 characters and accepts exactly 100', T, async () => {
      const long = 'L' + uid('x').replace(/[^a-z0-9]/gi, '');
      const id101 = long.padEnd(101, 'x');
      const id100 = long.padEnd(100, 'y');
      const res = await post('/v1/track', trackMsg({ messageId: id101 }));
      assertError(res, 400, 'message_id_too_long');
      assertOk(await post('/v1/track', trackMsg({ messageId: id100 })), 1);
      const events = await exportEvents(dir);
      one(events, id100);
      assert.equal(withId(events, id101).length, 0);
    });

    it('answers 400 not_an_object for a single-message body that is an array', T, async () => {
      assertError(await post('/v1/track', '[{"userId":"u","event":"E"}]'), 400, 'not_an_object');
    });

    it('answers 207 for a partial batch: valid items stored, invalid listed, quarantined with reason', T, async () => {
      const good1 = { type: 'track', ...trackMsg() };
      const good2 = { type: 'identify', userId: 'u-207', traits: { ok: true }, messageId: uid('good') };
      const items = [
        good1, // 0
        { type: 'track', userId: 'u', messageId: uid('noevent') }, // 1 missing_event
        good2, // 2
        { type: 'bogus', userId: 'u', messageId: uid('bogus') }, // 3 invalid_type
        'just a string', // 4 not_an_object
        { type: 'track', event: 'E', messageId: uid('noid') }, // 5 missing_identity
        { type: 'group', userId: 'u', messageId: uid('nogroup') }, // 6 missing_group_id
        { type: 'alias', userId: 'u', messageId: uid('noprev') }, // 7 missing_previous_id
        { type: 'alias', previousId: 'p', messageId: uid('nouser') }, // 8 missing_user_id
        { type: 'track', userId: 'u', event: 'E', properties: 5, messageId: uid('badfield') }, // 9 invalid_field
        { type: 'track', userId: 'u', event: 'E', messageId: 'm'.repeat(101) + process.pid }, // 10 message_id_too_long
        { type: 'track', userId: 'u', event: 'E', timestamp: '31/12/2020', messageId: uid('badts') }, // 11 invalid_timestamp
        { type: 'track', userId: 'u', event: 'E', properties: { pad: 'q'.repeat(40 * 1024) }, messageId: uid('huge') }, // 12 event_too_large
        42, // 13 not_an_object
      ];
      const expected = {
        1: 'missing_event',
        3: 'invalid_type',
        4: 'not_an_object',
        5: 'missing_identity',
        6: 'missing_group_id',
        7: 'missing_previous_id',
        8: 'missing_user_id',
        9: 'invalid_field',
        10: 'message_id_too_long',
        11: 'invalid_timestamp',
        12: 'event_too_large',
        13: 'not_an_object',
      };
      const res = await post('/v1/batch', { batch: items });
      assert.equal(res.status, 207, `expected 207, got ${res.status}: ${res.text}`);
      assert.equal(res.json.success, true, res.text);
      assert.equal(res.json.accepted, 2, res.text);
      assert.equal(res.json.duplicates, 0, res.text);
      const byIndex = new Map(res.json.rejected.map((r) => [r.index, r]));
      assert.deepEqual([...byIndex.keys()].sort((a, b) => a - b), Object.keys(expected).map(Number), res.text);
      for (const [i, code] of Object.entries(expected)) {
        const r = byIndex.get(Number(i));
        assert.equal(r.code, code, `item ${i}: ${JSON.stringify(r)}`);
        assert.equal(typeof r.error, 'string');
        assert.ok(r.error.length > 0);
        const item = items[i];
        const wantId = item && typeof item === 'object' ? item.messageId : null;
        assert.equal(r.messageId, wantId, `item ${i}: ${JSON.stringify(r)}`);
      }
      assert.equal(byIndex.get(1).field, 'event');

      const events = await exportEvents(dir);
      one(events, good1.messageId);
      assert.deepEqual(one(events, good2.messageId).traits, { ok: true });
      for (const i of Object.keys(expected)) {
        const item = items[i];
        if (item && typeof item === 'object') assert.equal(withId(events, item.messageId).length, 0, `item ${i} was stored`);
      }
      const q = await quarantineLines(dir);
      for (const [i, code] of Object.entries(expected)) {
        const item = items[i];
        if (!item || typeof item !== 'object') continue;
        assert.ok(q.some((l) => l.text.includes(item.messageId) && l.text.includes(code)), `item ${i} (${code}) not quarantined with its reason`);
      }
      for (const l of q) JSON.parse(l.text); // every quarantine line is JSON
    });

    it('answers 400 when every item of a batch is invalid', T, async () => {
      const items = [
        { type: 'track', userId: 'u', messageId: uid('a') },
        { type: 'identify', messageId: uid('b') },
      ];
      const res = await post('/v1/batch', { batch: items });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.json.success, false, res.text);
      assert.equal(res.json.accepted, 0, res.text);
      assert.equal(typeof res.json.code, 'string', res.text);
      assert.deepEqual(
        res.json.rejected.map((r) => [r.index, r.code]),
        [
          [0, 'missing_event'],
          [1, 'missing_identity'],
        ],
      );
    });
  });

  describe('dedupe', () => {
    it('acknowledges a replayed batch as duplicates and stores it once', T, async () => {
      const items = [trackMsg(), trackMsg(), trackMsg({ event: 'Other' }), { type: 'identify', userId: 'u', messageId: uid('d') }, trackMsg()];
      assertOk(await post('/v1/batch', { batch: items }), 5, 0);
      assertOk(await post('/v1/batch', { batch: items }), 0, 5);
      assertOk(await post('/v1/track', items[0]), 0, 1);
      const events = await exportEvents(dir);
      for (const item of items) one(events, item.messageId);
    });

    it('dedupes the same messageId twice inside one batch', T, async () => {
      const m = trackMsg();
      assertOk(await post('/v1/batch', { batch: [m, { ...m }] }), 1, 1);
      one(await exportEvents(dir), m.messageId);
    });

    it('dedupes per source: the same messageId on another source is a new event', T, async () => {
      const otherKey = await createSource(dir, 'other-' + process.pid);
      const m = trackMsg();
      assertOk(await post('/v1/track', m), 1);
      const ok = await waitFor(async () => {
        const r = await srv.post('/v1/track', m, { key: otherKey });
        return r.status === 200 ? r : null;
      }, { ms: 3000 });
      assert.ok(ok, 'new source not accepted');
      assertOk(ok, 1, 0);
      assert.equal(withId(await exportEvents(dir), m.messageId).length, 2);
    });
  });

  describe('normalization', () => {
    async function postOne(msg, opts) {
      const m = { messageId: uid('norm'), userId: 'u-norm', event: 'Norm', ...msg };
      const before = Date.now();
      assertOk(await post('/v1/track', m, opts), 1);
      const afterMs = Date.now();
      return { ev: one(await exportEvents(dir), m.messageId), before, after: afterMs, sent: m };
    }

    it('sets receivedAt (ISO-8601 UTC with ms) at the time of the request', T, async () => {
      const { ev, before: b, after: a } = await postOne({});
      assert.match(ev.receivedAt, ISO_MS_UTC);
      const r = Date.parse(ev.receivedAt);
      assert.ok(r >= b - 1 && r <= a + 1, `receivedAt ${ev.receivedAt} outside [${new Date(b).toISOString()}, ${new Date(a).toISOString()}]`);
      assert.equal(ev.type, 'track');
    });

    it('corrects timestamp for clock skew: receivedAt - (sentAt - originalTimestamp)', T, async () => {
      const { ev } = await postOne({ timestamp: '2020-01-01T00:00:00.000Z', sentAt: '2020-01-01T00:00:10.000Z' });
      assert.equal(ev.originalTimestamp, '2020-01-01T00:00:00.000Z');
      assert.equal(Date.parse(ev.sentAt), Date.parse('2020-01-01T00:00:10.000Z'));
      assert.match(ev.timestamp, ISO_MS_UTC);
      assert.equal(Date.parse(ev.timestamp), Date.parse(ev.receivedAt) - 10_000, JSON.stringify(ev));
    });

    it('parses zone offsets when correcting timestamp', T, async () => {
      const { ev } = await postOne({ timestamp: '2020-01-01T01:00:00.250+01:00', sentAt: '2020-01-01T00:00:03Z' });
      assert.equal(Date.parse(ev.originalTimestamp), Date.parse('2020-01-01T00:00:00.250Z'));
      assert.equal(Date.parse(ev.timestamp), Date.parse(ev.receivedAt) - 2750, JSON.stringify(ev));
    });

    it('keeps the client timestamp when sentAt is earlier than it', T, async () => {
      const { ev } = await postOne({ timestamp: '2020-01-01T00:00:10.000Z', sentAt: '2020-01-01T00:00:00.000Z' });
      assert.equal(Date.parse(ev.timestamp), Date.parse('2020-01-01T00:00:10.000Z'), JSON.stringify(ev));
      assert.equal(Date.parse(ev.originalTimestamp), Date.parse('2020-01-01T00:00:10.000Z'));
    });

    it('keeps the client timestamp when there is no sentAt', T, async () => {
      const { ev } = await postOne({ timestamp: '2019-06-15T12:34:56.789Z' });
      assert.equal(ev.timestamp, '2019-06-15T12:34:56.789Z');
    });

    it('uses receivedAt as timestamp when the client sends none', T, async () => {
      const { ev } = await postOne({});
      assert.equal(Date.parse(ev.timestamp), Date.parse(ev.receivedAt), JSON.stringify(ev));
    });

    it('assigns a distinct messageId when a message has none', T, async () => {
      const marker = uid('noid');
      const res = await post('/v1/batch', {
        batch: [
          { type: 'track', event: 'NoId', userId: marker },
          { type: 'track', event: 'NoId', userId: marker },
        ],
      });
      assertOk(res, 2);
      const evs = (await exportEvents(dir)).filter((e) => e.userId === marker);
      assert.equal(evs.length, 2);
      for (const e of evs) {
        assert.equal(typeof e.messageId, 'string');
        assert.ok(e.messageId.length > 0 && e.messageId.length <= 100);
      }
      assert.notEqual(evs[0].messageId, evs[1].messageId);
    });

    it('merges batch-level context and integrations into each item, the item\'s keys winning', T, async () => {
      const a = { type: 'track', event: 'A', userId: 'u', messageId: uid('ctx'), context: { locale: 'fr-FR' }, integrations: { Mixpanel: true } };
      const b = { type: 'track', event: 'B', userId: 'u', messageId: uid('ctx') };
      assertOk(
        await post('/v1/batch', {
          context: { locale: 'en-US', app: { name: 'shop', version: '1.2' } },
          integrations: { All: false, Mixpanel: false },
          batch: [a, b],
        }),
        2,
      );
      const events = await exportEvents(dir);
      const ea = one(events, a.messageId);
      const eb = one(events, b.messageId);
      assert.equal(ea.context.locale, 'fr-FR');
      assert.deepEqual(ea.context.app, { name: 'shop', version: '1.2' });
      assert.equal(ea.integrations.Mixpanel, true);
      assert.equal(ea.integrations.All, false);
      assert.equal(eb.context.locale, 'en-US');
      assert.deepEqual(eb.context.app, { name: 'shop', version: '1.2' });
      assert.deepEqual(eb.integrations, { All: false, Mixpanel: false });
    });

    it('converts numeric userId and anonymousId to strings', T, async () => {
      const m1 = { messageId: uid('num'), userId: 42, event: 'N' };
      const m2 = { type: 'page', messageId: uid('num'), anonymousId: 7, name: 'P' };
      assertOk(await post('/v1/track', m1), 1);
      assertOk(await post('/v1/batch', { batch: [m2] }), 1);
      const events = await exportEvents(dir);
      assert.strictEqual(one(events, m1.messageId).userId, '42');
      assert.strictEqual(one(events, m2.messageId).anonymousId, '7');
    });

    it('sets context.ip from the connection, keeps a client-supplied one', T, async () => {
      const { ev } = await postOne({});
      assert.equal(ev.context?.ip, '127.0.0.1');
      const { ev: ev2 } = await postOne({ context: { ip: '203.0.113.9' } });
      assert.equal(ev2.context.ip, '203.0.113.9');
    });

    it('ignores X-Forwarded-For from a peer that is not a trusted proxy', T, async () => {
      const { ev } = await postOne({}, { headers: { 'X-Forwarded-For': '198.51.100.7' } });
      assert.equal(ev.context?.ip, '127.0.0.1');
    });
  });

  describe('other endpoints', () => {
    it('serves analytics.js settings for a write key, 404 for an unknown one', T, async () => {
      const res = await srv.get(`/v1/projects/${key}/settings`);
      assert.equal(res.status, 200, res.text);
      const s = res.json?.integrations?.['Segment.io'];
      assert.ok(s, res.text);
      assert.equal(s.apiKey, key);
      assert.equal(s.apiHost, `127.0.0.1:${srv.port}/v1`);
      assert.equal(s.protocol, 'http');
      const miss = await srv.get(`/v1/projects/wk_${'f'.repeat(32)}/settings`);
      assert.equal(miss.status, 404, miss.text);
    });

    it('answers /health and /ready', T, async () => {
      const h = await srv.get('/health');
      assert.equal(h.status, 200);
      assert.deepEqual(h.json, { status: 'ok' });
      const r = await srv.get('/ready');
      assert.equal(r.status, 200);
      assert.deepEqual(r.json, { status: 'ready' });
    });

    it('answers 404 JSON for unknown paths and 405 for a wrong method on /v1', T, async () => {
      // (other paths without a '.' are the dashboard's client routes: its page)
      for (const [method, p] of [['GET', '/no/such/path.json'], ['GET', '/api/nope'], ['POST', '/no/such/path'],
                                 ['POST', '/v1/nope'], ['GET', '/v1/projects'], ['GET', '/v1/nope']]) {
        const res = await srv.request(p, { method, key, body: method === 'POST' ? trackMsg() : undefined });
        assert.equal(res.status, 404, `${method} ${p}: ${res.status} ${res.text}`);
        assert.ok(res.json, `${method} ${p} 404 body is not JSON: ${res.text}`);
      }
      for (const [method, p] of [['GET', '/v1/track'], ['PUT', '/v1/batch'], ['DELETE', '/v1/i']]) {
        const res = await srv.request(p, { method, key });
        assert.equal(res.status, 405, `${method} ${p}: ${res.status} ${res.text}`);
      }
    });

    it('answers a CORS preflight with 204 and puts Access-Control-Allow-Origin on responses', T, async () => {
      const origin = 'http://shop.example';
      const pre = await srv.request('/v1/batch', {
        method: 'OPTIONS',
        headers: {
          Origin: origin,
          'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'authorization, content-type',
        },
      });
      assert.equal(pre.status, 204, pre.text);
      const allowOrigin = pre.headers.get('access-control-allow-origin');
      assert.ok(allowOrigin === '*' || allowOrigin === origin, `Access-Control-Allow-Origin: ${allowOrigin}`);
      const allowHeaders = (pre.headers.get('access-control-allow-headers') ?? '').toLowerCase();
      assert.match(allowHeaders, /content-type/);
      assert.match(allowHeaders, /authorization/); // "*" does not cover Authorization (Fetch spec)
      const allowMethods = pre.headers.get('access-control-allow-methods') ?? '';
      assert.match(allowMethods, /POST/);

      const ok = await post('/v1/track', trackMsg(), { headers: { Origin: origin } });
      assert.equal(ok.status, 200);
      assert.ok(ok.headers.get('access-control-allow-origin'), 'no Access-Control-Allow-Origin on a 200');
      const bad = await post('/v1/track', { userId: 'u' }, { headers: { Origin: origin } });
      assert.equal(bad.status, 400);
      assert.ok(bad.headers.get('access-control-allow-origin'), 'no Access-Control-Allow-Origin on a 400');
      const unauth = await srv.post('/v1/track', trackMsg(), { headers: { Origin: origin } });
      assert.equal(unauth.status, 401);
      assert.ok(unauth.headers.get('access-control-allow-origin'), 'no Access-Control-Allow-Origin on a 401');
    });

    it('refuses `tandem import` while the server runs on the data dir, naming it', T, async () => {
      const file = path.join(path.dirname(dir), 'while-running.ndjson');
      await writeFile(file, JSON.stringify({ type: 'track', userId: 'u', event: 'E', messageId: uid('imp') }) + '\n');
      const r = await runCli(['import', file, '--data', dir]);
      assert.equal(r.code, 2, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
      const out = r.stdout + r.stderr;
      assert.ok(out.includes(String(srv.pid)) || out.includes(String(srv.port)), `message does not name the running server (pid ${srv.pid}, port ${srv.port}): ${out}`);
    });
  });
});

// ---------------------------------------------------------------------------

describe('metrics', () => {
  let dir, key, srv;
  before(async () => {
    dir = await makeDataDir();
    key = await createSource(dir, 'm');
    srv = await startServer(null, { dataDir: dir });
  }, HOOK);
  after(() => srv?.stop());

  const metric = (m, name) => m.get(name) ?? 0;
  const findKey = (m, prefix, must = '') => [...m.keys()].find((k) => k.startsWith(prefix) && k.includes(must));

  it('exposes the documented series and the counters move with traffic', T, async () => {
    const r0 = await srv.get('/metrics');
    assert.equal(r0.status, 200);
    assert.match(r0.headers.get('content-type') ?? '', /text\/plain/);
    const m0 = parseMetrics(r0.text);

    const items = [trackMsg(), trackMsg(), trackMsg()];
    assertOk(await srv.post('/v1/batch', { batch: items }, { key }), 3);
    const partial = await srv.post('/v1/batch', { batch: [trackMsg(), { type: 'track', userId: 'u', messageId: uid('r') }] }, { key });
    assert.equal(partial.status, 207, partial.text);
    assertOk(await srv.post('/v1/batch', { batch: items.slice(0, 2) }, { key }), 0, 2);

    const r1 = await srv.get('/metrics');
    const m1 = parseMetrics(r1.text);
    for (const name of [
      'tandem_events_accepted_total',
      'tandem_events_deduplicated_total',
      'tandem_http_request_duration_seconds_bucket',
      'tandem_wal_fsync_duration_seconds_bucket',
      'tandem_wal_group_commit_records_bucket',
      'tandem_wal_queue_bytes',
    ]) {
      assert.ok(findKey(m1, name), `metric ${name} missing from /metrics:\n${r1.text.slice(0, 3000)}`);
    }
    assert.equal(metric(m1, 'tandem_events_accepted_total') - metric(m0, 'tandem_events_accepted_total'), 4);
    assert.equal(metric(m1, 'tandem_events_deduplicated_total') - metric(m0, 'tandem_events_deduplicated_total'), 2);
    const rej = 'tandem_events_rejected_total{reason="missing_event"}';
    assert.ok(m1.has(rej), `${rej} missing:\n${r1.text.slice(0, 3000)}`);
    assert.equal(metric(m1, rej) - metric(m0, rej), 1);
    // Sync durability: the acknowledged writes were fsync'd.
    const fsyncInf = findKey(m1, 'tandem_wal_fsync_duration_seconds_bucket', 'le="+Inf"');
    assert.ok(fsyncInf, 'no +Inf bucket for tandem_wal_fsync_duration_seconds');
    assert.ok(m1.get(fsyncInf) > 0, 'no fsync recorded after acknowledged writes');
    const httpInf = findKey(m1, 'tandem_http_request_duration_seconds_bucket', 'le="+Inf"');
    assert.ok(httpInf && m1.get(httpInf) > 0, 'no request recorded in tandem_http_request_duration_seconds');
    // The same traffic, counted for its source (data health per source).
    for (const [what, want] of [['accepted', 4], ['deduplicated', 2], ['rejected', 1]]) {
      const k = `tandem_source_events_${what}_total{source="m"}`;
      assert.equal(metric(m1, k) - metric(m0, k), want, `${k}:\n${r1.text.slice(0, 4000)}`);
    }
  });
});

// ---------------------------------------------------------------------------

describe('serve flags and restarts', () => {
  it('creates the data dir 0700 and an admin token 0600, printed on first start only', { timeout: 40_000 }, async (t) => {
    const dir = await makeDataDir(t);
    const srv = await startServer(t, { dataDir: dir });
    const st = await stat(dir);
    assert.equal(st.mode & 0o777, 0o700, `data dir mode ${(st.mode & 0o777).toString(8)}`);
    const tokPath = path.join(dir, 'admin-token');
    const tst = await stat(tokPath);
    assert.equal(tst.mode & 0o777, 0o600, `admin-token mode ${(tst.mode & 0o777).toString(8)}`);
    const content = await readFile(tokPath, 'utf8');
    assert.match(content, /^tdk_[0-9a-f]{64}\n$/);
    const token = content.trim();
    await sleep(200);
    assert.ok((srv.stdout + srv.stderr).includes(token), 'the admin token was not printed on first start');
    const lines = srv.stdout.split('\n').filter((l) => l.startsWith('listening on'));
    assert.deepEqual(lines, [`listening on ${srv.url}`]);

    const stopped = await srv.stop();
    assert.ok(stopped.clean, 'SIGTERM did not stop the server within 10 s');
    assert.equal(stopped.code, 0, `exit code after SIGTERM: ${stopped.code} signal ${stopped.signal}`);
    await srv.start();
    await sleep(200);
    assert.equal((srv.stdout + srv.stderr).includes(token), false, 'the admin token was printed again on the second start');
    assert.equal(await readFile(tokPath, 'utf8'), content, 'admin-token changed on restart');
  });

  it('dedupe survives a clean restart and a kill -9', { timeout: 40_000 }, async (t) => {
    const dir = await makeDataDir(t);
    const key = await createSource(dir, 'web');
    const srv = await startServer(t, { dataDir: dir });
    const items = [trackMsg(), trackMsg(), trackMsg(), trackMsg()];
    assertOk(await srv.post('/v1/batch', { batch: items }, { key }), 4);
    const s = await srv.stop();
    assert.ok(s.clean && s.code === 0, `SIGTERM: ${JSON.stringify(s)}`);
    await srv.start();
    assertOk(await srv.post('/v1/batch', { batch: items }, { key }), 0, 4);

    const more = [trackMsg(), trackMsg()];
    assertOk(await srv.post('/v1/batch', { batch: more }, { key }), 2);
    await srv.kill9();
    await srv.start();
    assertOk(await srv.post('/v1/batch', { batch: [...more, ...items] }, { key }), 0, 6);
    const events = await exportEvents(dir);
    for (const m of [...items, ...more]) one(events, m.messageId);
    assert.equal(events.length, 6, `export has ${events.length} events, expected 6`);
  });

  it('uses X-Forwarded-For for context.ip when the peer is a --trusted-proxy', T, async (t) => {
    const dir = await makeDataDir(t);
    const key = await createSource(dir, 'web');
    const srv = await startServer(t, { dataDir: dir, args: ['--trusted-proxy', '10.0.0.0/8', '--trusted-proxy', '127.0.0.1/32'] });
    const m = trackMsg();
    assertOk(await srv.post('/v1/track', m, { key, headers: { 'X-Forwarded-For': '198.51.100.7' } }), 1);
    const m2 = trackMsg();
    assertOk(await srv.post('/v1/track', m2, { key }), 1);
    const events = await exportEvents(dir);
    assert.equal(one(events, m.messageId).context?.ip, '198.51.100.7');
    assert.equal(one(events, m2.messageId).context?.ip, '127.0.0.1');
  });

  it('applies --max-batch-events, --max-batch-bytes and --max-event-bytes', T, async (t) => {
    const dir = await makeDataDir(t);
    const key = await createSource(dir, 'web');
    const srv = await startServer(t, {
      dataDir: dir,
      args: ['--max-batch-events', '5', '--max-batch-bytes', '4000', '--max-event-bytes', '1000'],
    });
    const small = () => ({ type: 'track', userId: 'u', event: 'E', messageId: uid('f') });
    const six = [small(), small(), small(), small(), small(), small()];
    assertError(await srv.post('/v1/batch', { batch: six }, { key }), 413, 'too_large');
    assertOk(await srv.post('/v1/batch', { batch: six.slice(0, 5) }, { key }), 5);

    const fat = [small(), small()].map((m) => ({ ...m, properties: { pad: 'b'.repeat(900) } }));
    const fatBatch = { batch: [...fat, ...[small(), small(), small()].map((m) => ({ ...m, properties: { pad: 'c'.repeat(900) } }))] };
    assert.ok(JSON.stringify(fatBatch).length > 4000);
    assertError(await srv.post('/v1/batch', fatBatch, { key }), 413, 'too_large');

    const bigOne = { ...small(), properties: { pad: 'd'.repeat(1500) } };
    assertError(await srv.post('/v1/track', bigOne, { key }), 413, 'too_large');
    const res = await srv.post('/v1/batch', { batch: [small(), bigOne] }, { key });
    assert.equal(res.status, 207, res.text);
    assert.deepEqual(res.json.rejected.map((r) => [r.index, r.code]), [[1, 'event_too_large']]);

    const events = await exportEvents(dir);
    for (const m of six.slice(0, 5)) one(events, m.messageId);
    assert.equal(withId(events, six[5].messageId).length, 0);
    assert.equal(withId(events, bigOne.messageId).length, 0);
  });

  it('reads `key = value` settings and # comments from --config', T, async (t) => {
    const dir = await makeDataDir(t);
    const key = await createSource(dir, 'web');
    const conf = path.join(path.dirname(dir), 'tandem.conf');
    await writeFile(conf, '# tandem test config\n\n  # indented comment\nmax-batch-events = 3\ntrusted-proxy=127.0.0.1/32\n');
    const srv = await startServer(t, { dataDir: dir, args: ['--config', conf] });
    const mk = () => ({ type: 'track', userId: 'u', event: 'E', messageId: uid('c') });
    assertError(await srv.post('/v1/batch', { batch: [mk(), mk(), mk(), mk()] }, { key }), 413, 'too_large');
    assertOk(await srv.post('/v1/batch', { batch: [mk(), mk(), mk()] }, { key }), 3);
    const m = trackMsg();
    assertOk(await srv.post('/v1/track', m, { key, headers: { 'X-Forwarded-For': '192.0.2.44' } }), 1);
    assert.equal(one(await exportEvents(dir), m.messageId).context?.ip, '192.0.2.44');
  });

  it('allows a # comment after a value in --config', T, async (t) => {
    const dir = await makeDataDir(t);
    const key = await createSource(dir, 'web');
    const conf = path.join(path.dirname(dir), 'tandem.conf');
    await writeFile(conf, 'max-batch-events = 3   # small on purpose\n');
    const srv = await startServer(t, { dataDir: dir, args: ['--config', conf] });
    const mk = () => ({ type: 'track', userId: 'u', event: 'E', messageId: uid('c') });
    assertError(await srv.post('/v1/batch', { batch: [mk(), mk(), mk(), mk()] }, { key }), 413, 'too_large');
  });

  it('flags on the command line win over --config', T, async (t) => {
    const dir = await makeDataDir(t);
    const key = await createSource(dir, 'web');
    const conf = path.join(path.dirname(dir), 'tandem.conf');
    await writeFile(conf, 'max-batch-events = 3\n');
    const srv = await startServer(t, { dataDir: dir, args: ['--config', conf, '--max-batch-events', '4'] });
    const mk = () => ({ type: 'track', userId: 'u', event: 'E', messageId: uid('c') });
    assertOk(await srv.post('/v1/batch', { batch: [mk(), mk(), mk(), mk()] }, { key }), 4);
    assertError(await srv.post('/v1/batch', { batch: [mk(), mk(), mk(), mk(), mk()] }, { key }), 413, 'too_large');
  });

  it('--durability async acknowledges, stores within 3 s, and keeps acknowledged events on SIGTERM', T, async (t) => {
    const dir = await makeDataDir(t);
    const key = await createSource(dir, 'web');
    const srv = await startServer(t, { dataDir: dir, args: ['--durability', 'async'] });
    const first = [trackMsg(), trackMsg()];
    assertOk(await srv.post('/v1/batch', { batch: first }, { key }), 2);
    // async acknowledges before the write; the events reach the store soon after.
    const seen = await waitFor(async () => {
      const evs = await exportEvents(dir);
      return first.every((m) => withId(evs, m.messageId).length === 1);
    }, { ms: 3000 });
    assert.ok(seen, 'async-acknowledged events not exported within 3 s');
    const last = [trackMsg(), trackMsg(), trackMsg()];
    assertOk(await srv.post('/v1/batch', { batch: last }, { key }), 3);
    const s = await srv.stop(); // at once: a clean stop must flush what it acknowledged
    assert.ok(s.clean && s.code === 0, `SIGTERM: ${JSON.stringify(s)}`);
    const events = await exportEvents(dir);
    for (const m of [...first, ...last]) one(events, m.messageId);
  });

  it('answers 429 with Retry-After when the WAL queue is full, and stores none of the refused events', { timeout: 30_000 }, async (t) => {
    const dir = await makeDataDir(t);
    const key = await createSource(dir, 'web');
    // --wal-queue-bytes (serve --help): a small queue that 40 concurrent ~11 KB batches overflow.
    const srv = await startServer(t, { dataDir: dir, args: ['--wal-queue-bytes', '30000'] });
    const refused = [];
    const acked = [];
    const badStatus = [];
    await Promise.all(
      [...Array(40).keys()].map(async (c) => {
        for (let j = 0; j < 5; j++) {
          const batch = [...Array(20).keys()].map((i) => ({ type: 'track', userId: 'u', event: 'E', messageId: `bp-${c}-${j}-${i}`, properties: { pad: 'x'.repeat(500) } }));
          const res = await srv.post('/v1/batch', { batch }, { key });
          if (res.status === 200) acked.push(batch);
          else if (res.status === 429) refused.push({ batch, res });
          else badStatus.push(`${res.status} ${res.text}`);
        }
      }),
    );
    assert.deepEqual(badStatus, []);
    assert.ok(refused.length > 0, 'no 429 although 40 clients overflowed a 30 KB queue');
    assert.ok(acked.length > 0, 'nothing was accepted');
    for (const { res } of refused) {
      const ra = res.headers.get('retry-after');
      assert.match(ra ?? '', /^[1-9][0-9]*$/, `Retry-After: ${ra}`);
      assert.equal(res.json?.success, false, res.text);
    }
    const events = await exportEvents(dir);
    for (const b of acked) for (const m of b) one(events, m.messageId);
    for (const { batch } of refused) for (const m of batch) assert.equal(withId(events, m.messageId).length, 0, `refused ${m.messageId} was stored`);
    // A refused batch sent again when the queue has drained is accepted.
    for (const { batch } of refused.slice(0, 5)) assertOk(await srv.post('/v1/batch', { batch }, { key }), batch.length);
  });

  it('forgets a messageId after --dedupe-window seconds', T, async (t) => {
    const dir = await makeDataDir(t);
    const key = await createSource(dir, 'web');
    const srv = await startServer(t, { dataDir: dir, args: ['--dedupe-window', '1'] });
    const m = trackMsg();
    assertOk(await srv.post('/v1/track', m, { key }), 1);
    assertOk(await srv.post('/v1/track', m, { key }), 0, 1);
    await sleep(2500);
    assertOk(await srv.post('/v1/track', m, { key }), 1, 0);
    assert.equal(withId(await exportEvents(dir), m.messageId).length, 2);
  });
});

// ---------------------------------------------------------------------------

describe('CLI', () => {
  const helps = [
    [['--help'], ['serve', 'import', 'export', 'source']],
    [['serve', '--help'], ['--data', '--listen', '--durability', '--max-batch-bytes', '--max-batch-events', '--max-event-bytes', '--trusted-proxy', '--dedupe-window', '--config']],
    [['source', '--help'], ['create', 'list', 'disable', 'enable']],
    [['source', 'create', '--help'], ['--data']],
    [['import', '--help'], ['--data', '--source']],
    [['export', '--help'], ['--data', '--format']],
  ];
  for (const [argv, words] of helps) {
    it(`tandem ${argv.join(' ')} prints usage and exits 0`, T, async () => {
      const r = await runCli(argv);
      assert.equal(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}`);
      assert.match(r.stdout, /usage/i, `stdout: ${r.stdout}`);
      for (const w of words) assert.ok(r.stdout.includes(w), `help for "${argv.join(' ')}" does not mention ${w}:\n${r.stdout}`);
    });
  }

  it('exits 2 with a message on stderr for an unknown subcommand or flag', T, async (t) => {
    const dir = await makeDataDir(t);
    let r = await runCli(['frobnicate']);
    assert.equal(r.code, 2, `exit ${r.code}`);
    assert.match(r.stderr, /frobnicate/);
    r = await runCli(['serve', '--no-such-flag', '--data', dir, '--listen', '127.0.0.1:0'], { timeout: 5000 });
    assert.equal(r.code, 2, `exit ${r.code}; stdout ${r.stdout}`);
    assert.match(r.stderr, /no-such-flag/);
    r = await runCli(['export', 'events', '--data', dir, '--bogus']);
    assert.equal(r.code, 2, `exit ${r.code}`);
    assert.match(r.stderr, /bogus/);
    r = await runCli(['source', 'explode', 'x', '--data', dir]);
    assert.equal(r.code, 2, `exit ${r.code}`);
    assert.match(r.stderr, /explode/);
  });

  it('source create prints only a write key; source list shows the sources', T, async (t) => {
    const dir = await makeDataDir(t);
    const r = await cli(['source', 'create', 'crm', '--data', dir]);
    assert.match(r.stdout, /^wk_[0-9a-f]{32}\n?$/);
    const k2 = await createSource(dir, 'web');
    assert.match(k2, WRITE_KEY_RE);
    assert.notEqual(k2, r.stdout.trim());
    const list = await cli(['source', 'list', '--data', dir]);
    assert.match(list.stdout, /\bcrm\b/);
    assert.match(list.stdout, /\bweb\b/);
  });

  it('import: summary, rejects file, duplicates with an earlier import, per-source dedupe', { timeout: 30_000 }, async (t) => {
    const dir = await makeDataDir(t);
    const base = path.dirname(dir);
    const id = (s) => `imp-${s}-${process.pid}`;
    const a1 = { type: 'track', userId: 'u1', event: 'Signed Up', messageId: id('a1'), timestamp: '2021-03-04T05:06:07.000Z', properties: { plan: 'pro' } };
    const a2 = { type: 'identify', userId: 'u1', traits: { email: 'u1@example.com' }, messageId: id('a2') };
    const a4 = { type: 'page', anonymousId: 'anon-9', name: 'Pricing', messageId: id('a4') };
    const bad2 = '{"type": "track", "userId": "u2", broken';
    const bad4 = JSON.stringify({ type: 'track', userId: 'u2', messageId: id('a3') });
    const bad6 = JSON.stringify({ type: 'bogus', userId: 'u2', messageId: id('a6') });
    const fileA = path.join(base, 'a.ndjson');
    await writeFile(fileA, [JSON.stringify(a1), bad2, JSON.stringify(a2), bad4, JSON.stringify(a4), bad6].join('\n') + '\n');

    const r1 = await runCli(['import', fileA, '--data', dir]);
    assert.equal(r1.code, 0, `exit ${r1.code}\nstdout: ${r1.stdout}\nstderr: ${r1.stderr}`);
    assert.match(r1.stdout, /imported .*a\.ndjson: 3 accepted, 0 duplicates, 3 rejected/);
    const rm = /rejects written to (.+)/.exec(r1.stdout);
    assert.ok(rm, `no "rejects written to" line:\n${r1.stdout}`);
    const rejPath = path.resolve(rm[1].trim());
    const rejects = (await readFile(rejPath, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.deepEqual(
      rejects.map((r) => [r.line, r.reason, r.raw]),
      [
        [2, 'invalid_json', bad2],
        [4, 'missing_event', bad4],
        [6, 'invalid_type', bad6],
      ],
    );
    for (const r of rejects) assert.ok(typeof r.error === 'string' && r.error.length > 0, JSON.stringify(r));
    // the quarantine's fields too, so the data health page lists them
    for (const r of rejects) {
      assert.match(r.receivedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, JSON.stringify(r));
      assert.equal(r.source, 'import');
      assert.equal(r.endpoint, 'import');
    }

    const list = await cli(['source', 'list', '--data', dir]);
    assert.match(list.stdout, /\bimport\b/, 'default source "import" was not created');

    const b1 = { type: 'track', userId: 'u3', event: 'Bought', messageId: id('b1') };
    const fileB = path.join(base, 'b.ndjson');
    await writeFile(fileB, [a1, b1, a4].map((m) => JSON.stringify(m)).join('\n') + '\n');
    const r2 = await runCli(['import', fileB, '--data', dir]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /imported .*b\.ndjson: 1 accepted, 2 duplicates, 0 rejected/);
    assert.doesNotMatch(r2.stdout, /rejects written to/);

    await createSource(dir, 'crm');
    const r3 = await runCli(['import', fileB, '--data', dir, '--source', 'crm']);
    assert.equal(r3.code, 0, r3.stderr);
    assert.match(r3.stdout, /3 accepted, 0 duplicates, 0 rejected/);

    const events = await exportEvents(dir);
    assert.equal(withId(events, a1.messageId).length, 2);
    assert.equal(withId(events, a4.messageId).length, 2);
    assert.equal(withId(events, b1.messageId).length, 2);
    assert.equal(withId(events, a2.messageId).length, 1);
    assert.equal(withId(events, id('a3')).length, 0);
    assert.equal(events.length, 7);
    const ea1 = withId(events, a1.messageId)[0];
    assert.equal(ea1.type, 'track');
    assert.equal(ea1.event, 'Signed Up');
    assert.equal(ea1.timestamp, '2021-03-04T05:06:07.000Z');
    assert.deepEqual(ea1.properties, { plan: 'pro' });
    assert.deepEqual(withId(events, a2.messageId)[0].traits, { email: 'u1@example.com' });
  });

  it('import exits 1 for a file that does not exist', T, async (t) => {
    const dir = await makeDataDir(t);
    const r = await runCli(['import', path.join(path.dirname(dir), 'missing.ndjson'), '--data', dir]);
    assert.equal(r.code, 1, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.ok(r.stderr.length > 0);
  });

  it('export events prints events in the order stored', T, async (t) => {
    const dir = await makeDataDir(t);
    const key = await createSource(dir, 'web');
    const srv = await startServer(t, { dataDir: dir });
    const ids = [];
    for (let i = 0; i < 5; i++) {
      const m = trackMsg({ properties: { i } });
      ids.push(m.messageId);
      assertOk(await srv.post('/v1/track', m, { key }), 1);
    }
    const events = await exportEvents(dir);
    assert.deepEqual(events.map((e) => e.messageId), ids);
    await srv.stop();
    const offline = await exportEvents(dir);
    assert.deepEqual(offline.map((e) => e.messageId), ids, 'export after stop differs');
  });
});
