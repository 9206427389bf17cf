// A full disk: requests that cannot be made durable get 503 with Retry-After,
// /ready turns 503, nothing acknowledged is lost, and once space is back the
// retried batches are stored (not mistaken for duplicates of lost ones).
//
// Needs a small file system of its own: a 1 MiB tmpfs mounted by the test,
// which needs root (CI runs as root; elsewhere the test is skipped).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, readdir, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TandemServer, createSource, exportEvents, waitFor } from './lib/server.mjs';

const isRoot = process.getuid && process.getuid() === 0;

function tryMount(dir) {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', dir], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

describe('disk full', { skip: !isRoot && 'needs root to mount a small tmpfs' }, () => {
  it('answers 503, keeps every acknowledged event, stores retries once space is back', { timeout: 60_000 }, async (t) => {
    const mnt = await mkdtemp(path.join(tmpdir(), 'tandem-full-'));
    if (!tryMount(mnt)) {
      await rm(mnt, { recursive: true, force: true });
      t.skip('mount -t tmpfs is not allowed here');
      return;
    }
    const dataDir = path.join(mnt, 'data');
    const server = new TandemServer(dataDir, []);
    t.after(async () => {
      await server.stop().catch(() => {});
      try {
        execFileSync('umount', [mnt], { stdio: 'pipe' });
      } catch {
        execFileSync('umount', ['-l', mnt], { stdio: 'pipe' });
      }
      await rm(mnt, { recursive: true, force: true });
    });
    const key = await createSource(dataDir, 'full');
    await server.start();

    const acked = [];
    const refused = [];
    let refusal = null;
    const pad = 'x'.repeat(400);
    // ~10 KB per batch: the 1 MiB file system fills within ~100 batches.
    for (let b = 0; b < 200; b++) {
      const batch = Array.from({ length: 20 }, (_, i) => ({
        type: 'track', userId: 'u', event: 'Filled', messageId: `full-${b}-${i}`, properties: { pad },
      }));
      const res = await server.post('/v1/batch', { batch }, { key });
      if (res.status === 200) {
        acked.push(...batch.map((m) => m.messageId));
      } else {
        assert.equal(res.status, 503, `unexpected ${res.status}: ${res.text}`);
        assert.equal(res.json.code, 'unavailable');
        assert.match(res.json.error, /no space left/);
        assert.equal(res.headers.get('retry-after'), '5');
        refusal ??= res;
        refused.push(batch);
      }
      if (refused.length >= 3) break;
    }
    assert.ok(acked.length > 0, 'some batches were stored before the disk filled');
    assert.ok(refused.length >= 1, 'the disk never filled');

    const ready = await server.get('/ready');
    assert.equal(ready.status, 503, `/ready while the disk is full: ${ready.text}`);

    // Make room (what an operator would do) and retry the refused batches.
    for (const f of await readdir(path.join(dataDir, 'quarantine')).catch(() => [])) {
      await unlink(path.join(dataDir, 'quarantine', f));
    }
    execFileSync('mount', ['-o', 'remount,size=8m', mnt], { stdio: 'pipe' });
    const retried = [];
    for (const batch of refused) {
      const res = await waitFor(async () => {
        const r = await server.post('/v1/batch', { batch }, { key });
        return r.status === 200 ? r : null;
      }, { ms: 10_000, interval: 300 });
      assert.ok(res, 'a retried batch was stored once space was back');
      assert.equal(res.json.accepted, batch.length, `retry stored as new, not as duplicates: ${res.text}`);
      retried.push(...batch.map((m) => m.messageId));
    }
    assert.equal((await server.get('/ready')).status, 200);

    await server.stop();
    const counts = new Map();
    for (const ev of await exportEvents(dataDir)) counts.set(ev.messageId, (counts.get(ev.messageId) ?? 0) + 1);
    for (const id of [...acked, ...retried]) assert.equal(counts.get(id), 1, `${id} stored exactly once`);
    assert.equal(counts.size, acked.length + retried.length, 'nothing refused was stored');
  });
});
