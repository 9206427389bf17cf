// `tandem identity config` through the real binary: a configured identifier
// trait links two anonymous visitors that stay apart without it; a raised
// user_id limit lets an alias join two userIds that conflict by default; a
// change made while the server runs applies after a restart, to messages
// from then on; `tandem query` resolves the WAL tail with the same settings;
// bad options exit 2, name the bad value and change nothing.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { makeDataDir, cleanupTempDirs, startServer, createSource, cli, runCli, parseMetrics } from './lib/server.mjs';
import { V, A, FUNNEL, UNIQUES, track, identify, alias, stepPersons, queryOk, sendVisible } from './lib/journeys.mjs';

const T = { timeout: 60_000 };

after(cleanupTempDirs);

// A server on a fresh data directory, after `tandem identity config ARGS`
// (none: the defaults).
async function serverWith(configArgs) {
  const dir = await makeDataDir();
  const key = await createSource(dir, 'web');
  if (configArgs.length) await cli(['identity', 'config', '--data', dir, ...configArgs]);
  const srv = await startServer(null, { dataDir: dir });
  const token = (await readFile(path.join(dir, 'admin-token'), 'utf8')).trim();
  return { dir, key, srv, token };
}

const query = (s, body) => queryOk(s.srv, s.token, body);
const send = (s, batch) => sendVisible(s.srv, s.key, s.token, batch);
const persons = async (s) => (await query(s, UNIQUES)).series[0].total;

// A visitor views on one device, another adds to cart on a second; both
// later give the same CRM number.
const crmVisitors = (crm) => [
  track({ anonymousId: 'laptop-1' }, V, '2024-05-01T10:00:00.000Z'),
  identify({ anonymousId: 'laptop-1' }, '2024-05-01T10:01:00.000Z', { crm_id: crm }),
  track({ anonymousId: 'phone-1' }, A, '2024-05-01T12:00:00.000Z'),
  identify({ anonymousId: 'phone-1' }, '2024-05-01T12:01:00.000Z', { crm_id: crm }),
];

// Two signed-up users, then an alias that says they are one.
const twoUsersAndAlias = () => [
  identify({ anonymousId: 'a-1', userId: 'u-1' }, '2024-05-01T09:00:00.000Z'),
  track({ userId: 'u-1' }, V, '2024-05-01T09:05:00.000Z'),
  identify({ anonymousId: 'a-2', userId: 'u-2' }, '2024-05-01T11:00:00.000Z'),
  track({ userId: 'u-2' }, A, '2024-05-01T11:05:00.000Z'),
  alias('u-1', 'u-2', '2024-05-01T11:10:00.000Z'),
];

describe('identity configuration', () => {
  it('a configured identifier trait links two anonymous visitors', T, async () => {
    const plain = await serverWith([]);
    const crm = await serverWith(['--traits', 'crm_id']);
    try {
      await send(plain, crmVisitors('C-1'));
      await send(crm, crmVisitors('C-1'));
      // without configuration traits.crm_id is only a trait
      assert.deepEqual(stepPersons(await query(plain, FUNNEL)), [1, 0]);
      assert.equal(await persons(plain), 2);
      // configured, it identifies: one person viewed and added
      assert.deepEqual(stepPersons(await query(crm, FUNNEL)), [1, 1]);
      assert.equal(await persons(crm), 1);
      // the CLI resolves the WAL tail it reads with the same settings
      const { stdout } = await cli(['query', '--data', crm.dir, JSON.stringify(FUNNEL)]);
      assert.deepEqual(stepPersons(JSON.parse(stdout)), [1, 1]);
      const { stdout: plainOut } = await cli(['query', '--data', plain.dir, JSON.stringify(FUNNEL)]);
      assert.deepEqual(stepPersons(JSON.parse(plainOut)), [1, 0]);
    } finally {
      await plain.srv.stop();
      await crm.srv.stop();
    }
    // and after the servers stopped, from the segment files alone
    const { stdout } = await cli(['query', '--data', crm.dir, JSON.stringify(UNIQUES)]);
    assert.equal(JSON.parse(stdout).series[0].total, 1);
  });

  it('a raised user_id limit lets an alias link two userIds', T, async () => {
    const plain = await serverWith([]);
    const two = await serverWith(['--limit', 'user_id=2']);
    try {
      await send(plain, twoUsersAndAlias());
      await send(two, twoUsersAndAlias());
      // default limit 1: the alias would give one person two userIds
      assert.deepEqual(stepPersons(await query(plain, FUNNEL)), [1, 0]);
      assert.equal(await persons(plain), 2);
      const m = parseMetrics((await plain.srv.get('/metrics')).text);
      assert.equal(m.get('tandem_identity_conflicts_total{class="user_id"}'), 1);
      // limit 2: the alias merges them
      assert.deepEqual(stepPersons(await query(two, FUNNEL)), [1, 1]);
      assert.equal(await persons(two), 1);
      const m2 = parseMetrics((await two.srv.get('/metrics')).text);
      assert.equal(m2.get('tandem_identity_conflicts_total{class="user_id"}'), 0);
      assert.ok(m2.get('tandem_identity_merges_total') >= 1);
    } finally {
      await plain.srv.stop();
      await two.srv.stop();
    }
  });

  it('a change made while the server runs applies after a restart, from then on', T, async () => {
    const s = await serverWith([]);
    try {
      await send(s, crmVisitors('C-1'));
      assert.equal(await persons(s), 2);

      const r = await cli(['identity', 'config', '--data', s.dir, '--traits', 'crm_id']);
      assert.match(r.stdout, /identifier traits\s+crm_id/);
      assert.match(r.stdout, /after a restart/);
      assert.match(r.stdout, /running on .*restart it/);
      // not before the restart
      await send(s, [identify({ anonymousId: 'tablet-1' }, '2024-05-01T13:00:00.000Z', { crm_id: 'C-1' })]);
      assert.equal(await persons(s), 3);

      await s.srv.restart();
      // the messages processed before are not resolved again
      assert.equal(await persons(s), 3);
      // new ones are: the laptop and the phone give a new CRM number
      await send(s, [
        identify({ anonymousId: 'laptop-1' }, '2024-05-02T09:00:00.000Z', { crm_id: 'C-2' }),
        identify({ anonymousId: 'phone-1' }, '2024-05-02T09:01:00.000Z', { crm_id: 'C-2' }),
      ]);
      assert.equal(await persons(s), 2);
      assert.deepEqual(stepPersons(await query(s, FUNNEL)), [1, 1]);

      const { stdout } = await cli(['identity', 'config', '--data', s.dir, '--format', 'json']);
      const doc = JSON.parse(stdout);
      assert.deepEqual(doc.traits, ['crm_id']);
      assert.equal(doc.stored, true);
      assert.equal(doc.limits.user_id, 1);
    } finally {
      await s.srv.stop();
    }
  });

  it('shows the defaults, resets, and refuses bad values with exit 2', T, async () => {
    const dir = await makeDataDir();
    const shown = JSON.parse((await cli(['identity', 'config', '--data', dir, '--format', 'json'])).stdout);
    assert.deepEqual(shown, {
      limits: { user_id: 1, email: 5, phone: 5, external: 5, trait: 5, anonymous_id: 5 },
      priority: ['user_id', 'email', 'phone', 'external', 'trait', 'anonymous_id'],
      traits: [],
      blocked: [],
      stored: false,
    });

    await cli(['identity', 'config', '--data', dir, '--traits', 'crm_id,loyalty_no', '--blocked', 'test', '--blocked', 'n/a']);
    const bad = [
      [['--limit', 'users=2'], /unknown class 'users'.*user_id, email/],
      [['--limit', 'user_id=0'], /user_id=0: the limit must be a whole number from 1 to 255/],
      [['--limit', 'email=300'], /from 1 to 255/],
      [['--priority', 'email,user_id'], /names 2 classes; name all 6 once/],
      [['--priority', 'user_id,email,phone,external,trait,anon'], /unknown class 'anon'/],
      [['--traits', 'crm.id'], /identifier trait 'crm\.id'.*without ':', '\.'/],
      [['--traits', 'email'], /'email' is a built-in identifier name/],
      [['--traits', 'a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q'], /more than 16 traits/],
      [['--format', 'yaml'], /--format is text or json/],
      [['--nope'], /unknown option/],
    ];
    for (const [args, re] of bad) {
      const r = await runCli(['identity', 'config', '--data', dir, ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
    }
    // nothing of that was stored
    const kept = JSON.parse((await cli(['identity', 'config', '--data', dir, '--format', 'json'])).stdout);
    assert.deepEqual(kept.traits, ['crm_id', 'loyalty_no']);
    assert.deepEqual(kept.blocked, ['test', 'n/a']);

    // --reset with an option starts from the defaults; alone it removes the setting
    const part = JSON.parse(
      (await cli(['identity', 'config', '--data', dir, '--reset', '--limit', 'email=1', '--format', 'json'])).stdout,
    );
    assert.deepEqual(part.traits, []);
    assert.equal(part.limits.email, 1);
    await cli(['identity', 'config', '--data', dir, '--reset']);
    const text = (await cli(['identity', 'config', '--data', dir])).stdout;
    assert.match(text, /the defaults: nothing stored/);
    assert.match(text, /user_id=1, email=5/);

    const u = await runCli(['identity']);
    assert.equal(u.code, 2);
  });
});
