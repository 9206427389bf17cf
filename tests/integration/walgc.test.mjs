// WAL removal and the dedupe checkpoint, against the real binary: once WAL
// files are removed, only the checkpoint remembers the messageIds they held,
// so a retry sent after a restart (clean or kill -9) must still be answered
// as a duplicate, and every event is still exported (from the event store);
// with --wal-retention all nothing is removed.
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import {
  TandemServer,
  makeDataDir,
  cleanupTempDirs,
  createSource,
  parseMetrics,
  runCli,
  waitFor,
} from './lib/server.mjs';

after(cleanupTempDirs);

const PAD = 'x'.repeat(600); // a few records fill a 4 KiB WAL file
// Small files and a checkpoint allowed every second: files go once the store
// has flushed them to a segment file (within its 10 s flush interval).
// Removal is the default.
const GC_ARGS = ['--dedupe-checkpoint-interval', '1', '--wal-segment-bytes', '4096'];

function batch(prefix, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push({ type: 'track', userId: 'u-gc', event: 'Gc', messageId: `${prefix}-${i}`, properties: { i, pad: PAD } });
  }
  return out;
}

async function send(srv, key, prefix, n) {
  const res = await srv.post('/v1/batch', { batch: batch(prefix, n) }, { key });
  assert.equal(res.status, 200, res.text);
  return res.json;
}

async function metrics(srv) {
  const res = await srv.get('/metrics');
  assert.equal(res.status, 200);
  return parseMetrics(res.text);
}

async function walFiles(dir) {
  return (await readdir(path.join(dir, 'wal'))).filter((n) => n.endsWith('.wal')).sort();
}

// Waits until the checkpoint covers everything durable and WAL files were
// removed beyond `removedBefore`; returns the metrics then.
async function waitForRemoval(srv, removedBefore) {
  let m;
  const ok = await waitFor(
    async () => {
      m = await metrics(srv);
      return (
        m.get('tandem_wal_removed_files_total') > removedBefore &&
        m.get('tandem_dedupe_checkpoint_lsn') >= m.get('tandem_wal_durable_lsn')
      );
    },
    { ms: 40_000, interval: 200 },
  );
  assert.ok(ok, `no WAL file was removed: ${JSON.stringify([...m].filter(([k]) => /removed|checkpoint|wal_files/.test(k)))}\n${srv.describe()}`);
  return m;
}

it('remembers messageIds of removed WAL files across kill -9 and clean restarts', { timeout: 90_000 }, async (t) => {
  const dir = await makeDataDir(t);
  const key = await createSource(dir, 'gc');
  const srv = new TandemServer(dir, GC_ARGS);
  t.after(() => srv.stop());
  await srv.start();

  // Several batches, each in a commit of its own: the log rotates a few times.
  for (let k = 0; k < 4; k++) assert.equal((await send(srv, key, `a${k}`, 5)).accepted, 5);
  let m = await waitForRemoval(srv, 0);
  assert.ok(m.get('tandem_wal_removed_bytes_total') > 0);
  assert.ok(m.get('tandem_dedupe_checkpoint_entries') >= 20);
  assert.ok(m.get('tandem_dedupe_checkpoint_bytes') >= 48 + 16 * 20);
  assert.ok(m.get('tandem_dedupe_checkpoint_age_seconds') >= 0);
  assert.ok(!(await walFiles(dir)).includes('00000001.wal'), 'the first WAL file is still there');

  // A crash: the checkpoint saved for the removal is all that knows a*.
  await srv.kill9();
  await srv.start();
  m = await metrics(srv);
  assert.ok(m.get('tandem_dedupe_checkpoint_lsn') > 0, 'the checkpoint was not loaded');
  for (let k = 0; k < 4; k++) {
    const r = await send(srv, key, `a${k}`, 5);
    assert.deepEqual([r.accepted, r.duplicates], [0, 5], `a${k}-* after kill -9: ${JSON.stringify(r)}`);
  }

  // More files, removed by this process, then a clean restart.
  for (let k = 0; k < 4; k++) assert.equal((await send(srv, key, `b${k}`, 5)).accepted, 5);
  await waitForRemoval(srv, 0);
  await srv.restart();
  for (const prefix of ['a0', 'a3', 'b0', 'b3']) {
    const r = await send(srv, key, prefix, 5);
    assert.deepEqual([r.accepted, r.duplicates], [0, 5], `${prefix}-* after a restart: ${JSON.stringify(r)}`);
  }
  // and new messages are still new
  assert.equal((await send(srv, key, 'c0', 5)).accepted, 5);

  // export reads the store and what the WAL still holds, without tripping
  // over removed files: every event once
  const exp = await runCli(['export', 'events', '--data', dir, '--format', 'ndjson']);
  assert.equal(exp.code, 0, exp.stderr);
  assert.equal(exp.stderr, '');
  const ids = exp.stdout.trim().split('\n').map((l) => JSON.parse(l).messageId).sort();
  const want = [];
  for (const p of ['a0', 'a1', 'a2', 'a3', 'b0', 'b1', 'b2', 'b3', 'c0']) for (let i = 0; i < 5; i++) want.push(`${p}-${i}`);
  assert.deepEqual(ids, want.sort());

  const s = await srv.stop();
  assert.ok(s.clean, 'server did not stop on SIGTERM');
});

it('keeps every WAL file with --wal-retention all', { timeout: 60_000 }, async (t) => {
  const dir = await makeDataDir(t);
  const key = await createSource(dir, 'keep');
  const srv = new TandemServer(dir, ['--wal-retention', 'all', '--dedupe-checkpoint-interval', '1', '--wal-segment-bytes', '4096']);
  t.after(() => srv.stop());
  await srv.start();
  for (let k = 0; k < 4; k++) assert.equal((await send(srv, key, `k${k}`, 5)).accepted, 5);
  await srv.restart(); // saves a checkpoint on the way down
  await new Promise((r) => setTimeout(r, 1500)); // a gc tick or more
  const m = await metrics(srv);
  assert.equal(m.get('tandem_wal_removed_files_total'), 0);
  assert.ok(m.get('tandem_dedupe_checkpoint_lsn') >= 20, 'no checkpoint saved at shutdown');
  const files = await walFiles(dir);
  assert.ok(files.includes('00000001.wal') && files.length >= 4, `files: ${files}`);
  // every event is still exported, and still a duplicate
  const exp = await runCli(['export', 'events', '--data', dir, '--format', 'ndjson']);
  assert.equal(exp.code, 0, exp.stderr);
  assert.equal(exp.stdout.trim().split('\n').length, 20);
  const r = await send(srv, key, 'k1', 5);
  assert.deepEqual([r.accepted, r.duplicates], [0, 5]);
});
