// Durability under kill -9: with durability=sync, every event acknowledged
// with a 2xx is in the store exactly once after any number of crashes.
//
// Several clients post batches with unique messageIds for a bounded time while
// the server is killed with SIGKILL and restarted on the same data dir. A
// request cut off by the kill is retried with the same messageIds (as SDKs
// do), so the server's dedupe must also hold across the crash.
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { makeDataDir, cleanupTempDirs, TandemServer, createSource, exportEventsStreaming, request, runCli, sleep } from './lib/server.mjs';

after(cleanupTempDirs);

const CLIENTS = 6;
const BATCH = 25;
const THROTTLE_MS = 5; // pause between a client's batches: keeps the store to a few 100k events
const BURST = 6; // extra requests fired just before each kill
const KILLS = 4;
const LOAD_MS = 20_000; // total load time; kills are spread over it
const REQUEST_TIMEOUT_MS = 3000;

it('keeps every acknowledged event exactly once across kill -9 restarts', { timeout: 90_000 }, async (t) => {
  const dir = await makeDataDir(t);
  const key = await createSource(dir, 'load');
  const srv = new TandemServer(dir, ['--durability', 'sync']);
  t.after(() => srv.stop());
  await srv.start();

  const acked = new Set(); // messageIds acknowledged with a 2xx
  const sentEver = new Set();
  const stats = { ok: 0, connErrors: 0, retryAfter: 0, duplicates: 0, other: [] };
  let stopping = false;
  let restarting = null; // promise while the server is down

  const makeBatch = (tag) => {
    const batch = [];
    for (let i = 0; i < BATCH; i++) {
      const messageId = `crash-${tag}-${i}`;
      sentEver.add(messageId);
      batch.push({ type: 'track', event: 'Load', userId: `load-${tag}`, messageId, properties: { tag, i } });
    }
    return batch;
  };

  // Posts batch until it is acknowledged (true), or the run ends / an
  // unexpected status comes back (false). Same messageIds on every retry.
  async function deliver(batch) {
    for (;;) {
      if (restarting) await restarting;
      if (stopping) return false;
      let res;
      try {
        res = await request(srv.url + '/v1/batch', { method: 'POST', key, body: { batch }, timeout: REQUEST_TIMEOUT_MS });
      } catch {
        stats.connErrors++;
        await sleep(20);
        continue;
      }
      if (res.status >= 200 && res.status < 300) {
        stats.ok++;
        stats.duplicates += res.json?.duplicates ?? 0;
        for (const m of batch) acked.add(m.messageId);
        return true;
      }
      if (res.status === 429 || res.status === 503) {
        stats.retryAfter++;
        const ra = Number(res.headers.get('retry-after'));
        await sleep(Math.min(Number.isFinite(ra) && ra > 0 ? ra * 1000 : 100, 1000));
        continue;
      }
      stats.other.push(`${res.status} ${res.text.slice(0, 200)}`);
      return false;
    }
  }

  async function client(c) {
    for (let seq = 0; !stopping; seq++) {
      if (!(await deliver(makeBatch(`${c}-${seq}`)))) return;
      await sleep(THROTTLE_MS);
    }
  }

  const clients = [];
  for (let c = 0; c < CLIENTS; c++) clients.push(client(c));

  const ackedAtKill = [];
  const gap = LOAD_MS / (KILLS + 1);
  for (let k = 0; k < KILLS; k++) {
    await sleep(gap);
    ackedAtKill.push(acked.size);
    // A burst of requests that are in flight when the kill lands: some are
    // durable but unacknowledged, and their retries must be deduplicated.
    for (let b = 0; b < BURST; b++) clients.push(deliver(makeBatch(`k${k}-b${b}`)));
    await sleep(1 + (k % 3));
    let done;
    restarting = new Promise((resolve) => (done = resolve));
    await srv.kill9();
    try {
      await srv.start();
    } finally {
      restarting = null;
      done();
    }
  }
  await sleep(gap);
  stopping = true;
  await Promise.all(clients);

  assert.deepEqual(stats.other, [], 'unexpected responses during the load');
  // The run is meaningful only if events were acknowledged between every kill.
  ackedAtKill.push(acked.size);
  for (let k = 1; k < ackedAtKill.length; k++) {
    assert.ok(ackedAtKill[k] > ackedAtKill[k - 1], `no event acknowledged between kill ${k} and ${k + 1}: ${ackedAtKill}`);
  }
  t.diagnostic(`acked ${acked.size} events in ${stats.ok} batches; ${stats.connErrors} connection errors; ${stats.duplicates} acknowledged as duplicates on retry; ${stats.retryAfter} 429/503; acked at each kill ${ackedAtKill}`);

  // One more crash after the load ended, then look at what a restart recovers.
  await srv.kill9();
  await srv.start();
  const counts = new Map();
  await exportEventsStreaming(dir, path.join(path.dirname(dir), 'export.ndjson'), (e) =>
    counts.set(e.messageId, (counts.get(e.messageId) ?? 0) + 1),
  );

  const missing = [...acked].filter((id) => !counts.has(id));
  assert.equal(missing.length, 0, `${missing.length} acknowledged events lost, e.g. ${missing.slice(0, 5)}`);
  const dupes = [...counts].filter(([, n]) => n > 1);
  assert.equal(dupes.length, 0, `${dupes.length} messageIds stored more than once, e.g. ${JSON.stringify(dupes.slice(0, 5))}`);
  const strangers = [...counts.keys()].filter((id) => !sentEver.has(id));
  assert.equal(strangers.length, 0, `export has events nobody sent: ${strangers.slice(0, 5)}`);

  // And the server still takes traffic on the recovered store.
  const res = await srv.post('/v1/track', { userId: 'after', event: 'After Crash', messageId: 'crash-after' }, { key });
  assert.equal(res.status, 200, res.text);
  const s = await srv.stop();
  assert.ok(s.clean, 'server did not stop on SIGTERM after recovery');
  // The crashes left the event store consistent: every segment and the
  // manifest verify, and the store alone holds every acknowledged event.
  const chk = await runCli(['check', '--data', dir]);
  assert.equal(chk.code, 0, chk.stdout + chk.stderr);
  const m = /(\d+) events/.exec(chk.stdout);
  assert.equal(Number(m?.[1]), counts.size + 1, chk.stdout);
});
