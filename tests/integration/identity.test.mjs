// Identity resolution through the real binary: anonymous devices that a
// login links count as one person in every query right after the merging
// identify, over HTTP and in `tandem query`; limit conflicts (a shared
// device) keep two users apart and show in /metrics; the graph survives a
// clean restart and kill -9.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { makeDataDir, cleanupTempDirs, startServer, createSource, cli, parseMetrics } from './lib/server.mjs';
import { V, A, FUNNEL, UNIQUES, track, identify, stepPersons, queryOk, sendVisible } from './lib/journeys.mjs';

const T = { timeout: 30_000 };
const HOOK = { timeout: 60_000 };

after(cleanupTempDirs);

const query = queryOk;
const send = sendVisible;

describe('identity resolution over HTTP', () => {
  let dir, key, srv, token;

  before(async () => {
    dir = await makeDataDir();
    key = await createSource(dir, 'web');
    srv = await startServer(null, { dataDir: dir });
    token = (await readFile(path.join(dir, 'admin-token'), 'utf8')).trim();
  }, HOOK);
  after(() => srv?.stop());

  it('two anonymous devices count once right after the identify that links them', T, async () => {
    // the same person browses on a laptop and adds to cart on a phone
    await send(srv, key, token, [
      track({ anonymousId: 'laptop-1' }, V, '2024-05-01T10:00:00.000Z'),
      track({ anonymousId: 'phone-1' }, A, '2024-05-01T12:00:00.000Z'),
    ]);
    assert.deepEqual(stepPersons(await query(srv, token, FUNNEL)), [1, 0]);
    assert.equal((await query(srv, token, UNIQUES)).series[0].total, 2);

    // logs in on the laptop: the laptop's person gets the userId (no merge yet)
    await send(srv, key, token, [identify({ anonymousId: 'laptop-1', userId: 'ann' }, '2024-05-01T12:30:00.000Z')]);
    assert.deepEqual(stepPersons(await query(srv, token, FUNNEL)), [1, 0]);

    // and on the phone: the phone's past events are now ann's
    await send(srv, key, token, [
      identify({ anonymousId: 'phone-1', userId: 'ann' }, '2024-05-01T13:00:00.000Z', { email: 'Ann@Example.com' }),
    ]);
    assert.deepEqual(stepPersons(await query(srv, token, FUNNEL)), [1, 1]);
    assert.equal((await query(srv, token, UNIQUES)).series[0].total, 1);

    // an email match from a third device joins the same person
    await send(srv, key, token, [
      track({ anonymousId: 'tablet-1' }, V, '2024-05-02T09:00:00.000Z'),
      identify({ anonymousId: 'tablet-1' }, '2024-05-02T09:01:00.000Z', { email: ' ann@example.COM ' }),
    ]);
    assert.equal((await query(srv, token, UNIQUES)).series[0].total, 1);

    // the CLI, reading the store and the WAL tail while the server runs, agrees
    const { stdout } = await cli(['query', '--data', dir, JSON.stringify(FUNNEL)]);
    assert.deepEqual(stepPersons(JSON.parse(stdout)), [1, 1]);

    const m = parseMetrics((await srv.get('/metrics')).text);
    assert.ok(m.get('tandem_identity_merges_total') >= 2, `merges: ${m.get('tandem_identity_merges_total')}`);
  });

  it('a shared device keeps two users apart and records the conflict', T, async () => {
    const before = parseMetrics((await srv.get('/metrics')).text);
    const conflicts0 = before.get('tandem_identity_conflicts_total{class="user_id"}') ?? 0;
    await send(srv, key, token, [
      identify({ anonymousId: 'kiosk-1', userId: 'bob' }, '2024-05-03T08:00:00.000Z'),
      track({ anonymousId: 'kiosk-1', userId: 'bob' }, V, '2024-05-03T08:05:00.000Z'),
      identify({ anonymousId: 'kiosk-1', userId: 'carl' }, '2024-05-03T09:00:00.000Z'),
      track({ anonymousId: 'kiosk-1', userId: 'carl' }, A, '2024-05-03T09:05:00.000Z'),
    ]);
    // bob viewed, carl added: no conversion between them
    const f = await query(srv, token, { ...FUNNEL, date_from: '2024-05-03', date_to: '2024-05-03' });
    assert.deepEqual(stepPersons(f), [1, 0]);
    const u = await query(srv, token, { ...UNIQUES, date_from: '2024-05-03', date_to: '2024-05-03' });
    assert.equal(u.series[0].total, 2);
    const after_ = parseMetrics((await srv.get('/metrics')).text);
    assert.ok(
      after_.get('tandem_identity_conflicts_total{class="user_id"}') >= conflicts0 + 1,
      'the user_id conflict is counted',
    );
  });

  it('a clean restart and kill -9 keep the merged persons', T, async () => {
    const want = [await query(srv, token, FUNNEL), await query(srv, token, UNIQUES)];
    await srv.restart();
    assert.deepEqual([await query(srv, token, FUNNEL), await query(srv, token, UNIQUES)], want);
    // a merge that only the WAL holds when the process dies
    await send(srv, key, token, [
      track({ anonymousId: 'watch-1' }, A, '2024-05-02T10:00:00.000Z'),
      identify({ anonymousId: 'watch-1', userId: 'ann' }, '2024-05-02T10:01:00.000Z'),
    ]);
    const want2 = [await query(srv, token, FUNNEL), await query(srv, token, UNIQUES)];
    assert.equal(want2[1].series[0].total, want[1].series[0].total, 'the watch is ann');
    const profile = async () => {
      const r = await srv.get('/api/profiles/user_id:ann', { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(r.status, 200, r.text);
      return r.json;
    };
    const ann = await profile();
    assert.ok(ann.identifiers.some((x) => x.type === 'anonymous_id' && x.value === 'watch-1'));
    await srv.kill9();
    await srv.start();
    assert.deepEqual([await query(srv, token, FUNNEL), await query(srv, token, UNIQUES)], want2);
    assert.deepEqual(await profile(), ann, 'the profile (identifiers, traits, merges, events) is the same');
    const { stdout } = await cli(['check', '--data', dir]);
    assert.match(stdout, /0 problems/);
  });
});
