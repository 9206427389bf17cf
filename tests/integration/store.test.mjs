// The event store as a user meets it: events sent over HTTP end up in segment
// files when the server stops, `tandem check` vouches for them (and finds
// damage), and `tandem export events` reads them back with filters, as NDJSON
// or CSV.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, open } from 'node:fs/promises';
import path from 'node:path';
import { makeDataDir, cleanupTempDirs, startServer, createSource, runCli, cli, exportEvents, uid, waitFor, parseMetrics } from './lib/server.mjs';

after(cleanupTempDirs);

const DAY = 86_400_000;
const T0 = Date.parse('2024-03-01T00:00:00Z');

function events(n, prefix) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const kind = i % 3;
    const ts = new Date(T0 + Math.floor(i / 10) * DAY + i * 1000).toISOString();
    if (kind === 0) out.push({ type: 'page', anonymousId: `anon-${i % 7}`, messageId: `${prefix}-${i}`, timestamp: ts, properties: { path: `/p/${i % 5}` } });
    else
      out.push({
        type: 'track',
        event: kind === 1 ? 'Product Viewed' : 'Order Completed',
        userId: `user-${i % 11}`,
        messageId: `${prefix}-${i}`,
        timestamp: ts,
        properties: { price: i % 50, note: i === 4 ? 'has, "quotes"\nand a newline' : 'plain' },
      });
  }
  return out;
}

async function loaded(t, n = 300) {
  const srv = await startServer(t);
  const key = await createSource(srv.dataDir, 'web');
  const prefix = uid('st');
  const batch = events(n, prefix);
  for (let i = 0; i < batch.length; i += 100) {
    const res = await srv.post('/v1/batch', { batch: batch.slice(i, i + 100) }, { key });
    assert.equal(res.status, 200, res.text);
  }
  return { srv, batch, prefix };
}

async function check(dir) {
  return runCli(['check', '--data', dir]);
}

describe('store files', () => {
  it('writes segments and a manifest covering every acknowledged event on shutdown', async (t) => {
    const { srv, batch } = await loaded(t);
    // /metrics shows the store taking everything in, well within a second or two
    const m = await waitFor(async () => {
      const mm = parseMetrics((await srv.get('/metrics')).text);
      return mm.get('tandem_store_events') === batch.length && mm.get('tandem_store_lag_records') === 0 ? mm : null;
    }, { ms: 5000 });
    assert.ok(m, 'the store did not report every event');
    assert.equal(m.get('tandem_store_applied_lsn'), batch.length);
    assert.equal(m.get('tandem_store_bad_records_total'), 0);
    const st = await srv.stop();
    assert.ok(st.clean, 'server did not stop cleanly');
    const files = await readdir(path.join(srv.dataDir, 'events'));
    assert.ok(files.includes('MANIFEST'), `no MANIFEST in ${files}`);
    assert.ok(files.some((f) => f.endsWith('.tseg')), `no segment file in ${files}`);
    const r = await check(srv.dataDir);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`${batch.length} events`), r.stdout);
    assert.match(r.stdout, new RegExp(`WAL covered up to LSN ${batch.length}:`), r.stdout);
    assert.match(r.stdout, /0 problems/);
    // a restart does not apply anything twice
    await srv.start();
    await srv.stop();
    const again = await check(srv.dataDir);
    assert.match(again.stdout, new RegExp(`${batch.length} events`), again.stdout);
    assert.equal((await exportEvents(srv.dataDir)).length, batch.length);
  });

  it('tandem check reports a damaged segment and the server refuses to start on it', async (t) => {
    const { srv } = await loaded(t, 120);
    await srv.stop();
    const dir = path.join(srv.dataDir, 'events');
    const seg = (await readdir(dir)).find((f) => f.endsWith('.tseg'));
    const fh = await open(path.join(dir, seg), 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, 70);
    b[0] ^= 0x55;
    await fh.write(b, 0, 1, 70);
    await fh.close();
    const r = await check(srv.dataDir);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, new RegExp(`${seg}: checksum mismatch in timestamps`), r.stdout);
    assert.match(r.stdout, /1 problem$/m);
    // repair the byte: healthy again
    const fh2 = await open(path.join(dir, seg), 'r+');
    b[0] ^= 0x55;
    await fh2.write(b, 0, 1, 70);
    await fh2.close();
    assert.equal((await check(srv.dataDir)).code, 0);
    // a cut-off manifest: check says so, serve refuses with a pointer to check
    const man = path.join(dir, 'MANIFEST');
    const bytes = await readFile(man);
    const fh3 = await open(man, 'r+');
    await fh3.truncate(bytes.length - 3);
    await fh3.close();
    const bad = await check(srv.dataDir);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /manifest: .*MANIFEST: (checksum mismatch|not a manifest or cut short|unknown version or bad length)/);
    const serve = await runCli(['serve', '--data', srv.dataDir, '--listen', '127.0.0.1:0'], { timeout: 10_000 });
    assert.notEqual(serve.code, 0);
    assert.match(serve.stderr, /cannot open the event store .*run 'tandem check'/);
  });
});

describe('export events from the store', () => {
  it('filters by event, type, time range and limit, in time order', async (t) => {
    const { srv, batch } = await loaded(t);
    const all = await exportEvents(srv.dataDir);
    assert.equal(all.length, batch.length);
    const times = all.map((e) => Date.parse(e.timestamp));
    assert.deepEqual(times, [...times].sort((a, b) => a - b), 'export is not in time order');

    const run = async (...args) => (await cli(['export', 'events', '--data', srv.dataDir, ...args])).stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const orders = await run('--event', 'Order Completed');
    assert.equal(orders.length, batch.filter((e) => e.event === 'Order Completed').length);
    assert.ok(orders.every((e) => e.event === 'Order Completed'));
    const pages = await run('--event', '$page');
    assert.equal(pages.length, batch.filter((e) => e.type === 'page').length);
    assert.deepEqual(await run('--type', 'page'), pages);

    const from = T0 + 3 * DAY, to = T0 + 5 * DAY;
    const ranged = await run('--from', new Date(from).toISOString(), '--to', '2024-03-06');
    const want = batch.filter((e) => Date.parse(e.timestamp) >= from && Date.parse(e.timestamp) < to);
    assert.equal(ranged.length, want.length);
    assert.deepEqual(new Set(ranged.map((e) => e.messageId)), new Set(want.map((e) => e.messageId)));
    assert.equal((await run('--limit', '7')).length, 7);

    for (const [args, re] of [
      [['--from', 'yesterday'], /--from 'yesterday' is not a time/],
      [['--type', 'click'], /--type 'click' is not a message type/],
      [['--format', 'xml'], /unknown --format 'xml'/],
      [['--from', '2024-03-02', '--to', '2024-03-01'], /--from must be before --to/],
    ]) {
      const r = await runCli(['export', 'events', '--data', srv.dataDir, ...args]);
      assert.equal(r.code, 2, `${args}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
  });

  it('writes RFC 4180 CSV with the person id and the JSON columns', async (t) => {
    const { srv, batch } = await loaded(t, 30);
    const { stdout } = await cli(['export', 'events', '--data', srv.dataDir, '--format', 'csv', '--event', 'Order Completed']);
    const lines = stdout.split('\r\n');
    assert.equal(lines[0], 'timestamp,event,type,message_id,user_id,anonymous_id,person_id,source_id,received_at,properties,traits,context');
    assert.equal(lines.at(-1), '', 'CSV must end with CRLF');
    const orders = batch.filter((e) => e.event === 'Order Completed');
    assert.equal(lines.length - 2, orders.length);
    const first = lines[1].split(',');
    assert.equal(first[1], 'Order Completed');
    assert.equal(first[2], 'track');
    assert.equal(first[3], orders[0].messageId);
    assert.equal(first[4], orders[0].userId);
    assert.match(first[6], /^\d+$/);
    // a property with a comma, quotes and a newline is quoted and escaped
    const all = await cli(['export', 'events', '--data', srv.dataDir, '--format', 'csv']);
    assert.ok(all.stdout.includes('""note"":""has, \\""quotes\\""\\nand a newline""'), all.stdout.slice(0, 3000));
  });
});
