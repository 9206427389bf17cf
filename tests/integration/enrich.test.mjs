// Enrichment at ingest through the real binary: messages sent to /v1/ come
// back from POST /api/query with their enriched.* fields filterable and
// enriched.channel usable as a breakdown; `tandem enrich config` settings
// (per-source IP mode, internal domains, cookie patterns, channel rules)
// apply after a restart; the stored context.ip is anonymized; a client's own
// "enriched" is dropped; consent preferences are filterable; a bad setting
// exits 2 and changes nothing.
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { makeDataDir, cleanupTempDirs, startServer, createSource, cli, runCli, uid, exportEvents } from './lib/server.mjs';

const T = { timeout: 60_000 };
after(cleanupTempDirs);

const IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1';
const WINDOWS =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';
const BOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';

const page = (anonymousId, url, referrer, ua, extra = {}) => ({
  type: 'page',
  messageId: uid('p'),
  anonymousId,
  timestamp: '2024-05-01T10:00:00.000Z',
  context: { page: { url, ...(referrer ? { referrer } : {}) }, userAgent: ua, ...(extra.context ?? {}) },
  ...(extra.top ?? {}),
});

describe('enrichment', () => {
  let dir, key, srv, token;

  const query = async (body) => {
    const res = await srv.post('/api/query', body, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200, res.text);
    return res.json;
  };
  // listings keep bots (every kind leaves them out unless include_bots)
  const rows = async (filters) => (await query({ kind: 'events', limit: 100, filters, include_bots: true })).events.length;
  const eq = (property, value) => ({ property, operator: '=', value });

  before(async () => {
    dir = await makeDataDir();
    key = await createSource(dir, 'web');
    await cli([
      'enrich', 'config', '--data', dir,
      '--set', 'ip.web=truncate',
      '--set', 'internal_domains=shop.example,partner-shop.example',
      '--set', 'cookie_patterns=__utmz:pk10mkto-([0-9]+)',
    ]);
    srv = await startServer(null, { dataDir: dir });
    token = (await readFile(path.join(dir, 'admin-token'), 'utf8')).trim();

    const batch = [
      page('v1', 'https://shop.example/p/tent?utm_source=google&utm_medium=cpc&utm_campaign=summer&gclid=G1',
        'https://www.google.com/search?q=tent', IPHONE,
        { context: { ip: '198.51.100.77', consent: { categoryPreferences: { Advertising: true, Analytics: true } } } }),
      page('v2', 'https://shop.example/', 'https://l.facebook.com/l.php', WINDOWS,
        { context: { consent: { categoryPreferences: { Advertising: false, Analytics: true } } } }),
      page('v3', 'https://shop.example/?mtm_campaign=newsletter-may&mtm_source=newsletter&mtm_medium=email', '', WINDOWS),
      page('v4', 'https://shop.example/blog', 'https://partner-shop.example/deals', WINDOWS),
      page('v5', 'https://shop.example/', 'https://blog.example.org/review', WINDOWS,
        { top: { enriched: { channel: 'Forged' } } }),
      { type: 'track', event: 'Crawled', messageId: uid('t'), anonymousId: 'bot-1', timestamp: '2024-05-01T10:00:00.000Z', context: { userAgent: BOT } },
    ];
    const res = await srv.post('/v1/batch', { batch }, { key });
    assert.equal(res.status, 200, res.text);
    // a __utmz cookie carried by the request itself (a first-party collector)
    const res2 = await srv.post('/v1/page', page('v6', 'https://shop.example/landing', '', WINDOWS), {
      key,
      headers: { Cookie: 'x=1; __utmz=1.2.3.4.utmcsr=newsletter|utmccn=pk10mkto-4711|utmcmd=email' },
    });
    assert.equal(res2.status, 200, res2.text);
    const deadline = Date.now() + 5000;
    while ((await query({ kind: 'events', limit: 100, include_bots: true })).events.length < 7) {
      assert.ok(Date.now() < deadline, 'events not visible after 5 s');
      await new Promise((r) => setTimeout(r, 20));
    }
  });

  after(async () => srv?.stop());

  it('fills the page, campaign, referrer and user agent fields', T, async () => {
    assert.equal(await rows([eq('enriched.page.host', 'shop.example')]), 6);
    assert.equal(await rows([eq('enriched.page.path', '/p/tent')]), 1);
    assert.equal(await rows([eq('enriched.campaign.source', 'google'), eq('enriched.campaign.medium', 'cpc'), eq('enriched.campaign.name', 'summer')]), 1);
    assert.equal(await rows([eq('enriched.campaign.click_network', 'google'), eq('enriched.campaign.click_id', 'G1')]), 1);
    assert.equal(await rows([eq('enriched.campaign.name', 'newsletter-may')]), 1, 'Matomo mtm_* parameters');
    assert.equal(await rows([eq('enriched.referrer.medium', 'search'), eq('enriched.referrer.source', 'Google'), eq('enriched.referrer.term', 'tent')]), 1);
    assert.equal(await rows([eq('enriched.referrer.medium', 'internal')]), 1, 'a configured own domain');
    assert.equal(await rows([eq('enriched.referrer.medium', 'unknown')]), 1);
    assert.equal(await rows([eq('enriched.ua.os', 'iOS'), eq('enriched.ua.device', 'mobile'), eq('enriched.ua.browser', 'Safari')]), 1);
    assert.equal(await rows([eq('enriched.ua.browser', 'Chrome'), eq('enriched.ua.os', 'Windows')]), 5);
    assert.equal(await rows([eq('enriched.ua.bot', true)]), 1);
    assert.equal(await rows([eq('enriched.ua.device', 'bot')]), 1);
  });

  it('reads __utmz from the Cookie header and the configured cookie pattern', T, async () => {
    assert.equal(await rows([eq('enriched.campaign.id', '4711'), eq('enriched.campaign.source', 'newsletter')]), 1);
  });

  it('groups by channel (the bot, which has none, only with include_bots)', T, async () => {
    for (const include_bots of [false, true]) {
      const r = await query({
        kind: 'trends', series: [{ event: '', math: 'count' }], interval: 'day',
        date_from: '2024-05-01', date_to: '2024-05-01', breakdown: 'enriched.channel', include_bots,
      });
      const got = Object.fromEntries(r.series.map((s) => [s.breakdown_value ?? s.breakdown ?? s.name, s.total]));
      const want = { 'Paid Search': 1, 'Organic Social': 1, Email: 2, Direct: 1, Referral: 1, null: include_bots ? 1 : undefined };
      for (const [k, v] of Object.entries(want)) assert.equal(got[k], v, `${k}: ${JSON.stringify(r.series.map((s) => [s.breakdown_value ?? s.breakdown, s.total]))}`);
    }
    assert.equal(await rows([eq('enriched.channel', 'Forged')]), 0, "a client's own enriched object is dropped");
  });

  it('keeps consent preferences filterable', T, async () => {
    assert.equal(await rows([eq('context.consent.categoryPreferences.Advertising', true)]), 1);
    assert.equal(await rows([eq('context.consent.categoryPreferences.Advertising', false)]), 1);
    assert.equal(await rows([eq('context.consent.categoryPreferences.Analytics', true)]), 2);
  });

  it('stores context.ip as the source IP mode says', T, async () => {
    await srv.stop();
    const events = await exportEvents(dir);
    srv = await startServer(null, { dataDir: dir });
    const v1 = events.find((e) => e.anonymousId === 'v1');
    assert.equal(v1.context.ip, '198.51.100.0', 'truncated to the network');
    const v2 = events.find((e) => e.anonymousId === 'v2');
    assert.equal(v2.context.ip, '127.0.0.0', "the client's address, truncated");
    assert.ok(events.every((e) => e.context?.ip === undefined || e.context.ip.endsWith('.0')), 'no full address stored');
  });
});

describe('tandem enrich config', () => {
  it('refuses a bad setting and changes nothing', T, async () => {
    const dir = await makeDataDir();
    await cli(['enrich', 'config', '--data', dir, '--set', 'ip=drop']);
    for (const [args, msg] of [
      [['--set', 'channel_rules=Paid: medium=cpc'], /unknown channel 'Paid'/],
      [['--set', 'cookie_patterns=__utmz:[0-9]+'], /capture group/],
      [['--set', 'ip.web=hash'], /keep, truncate or drop/],
      [['--set', 'colour=red'], /unknown key 'colour'/],
      [['--set', 'geo_database=/nonexistent/city.mmdb'], /cannot open the geo database/],
    ]) {
      const r = await runCli(['enrich', 'config', '--data', dir, ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, msg);
    }
    const r = await cli(['enrich', 'config', '--data', dir, '--format', 'json']);
    assert.deepEqual(JSON.parse(r.stdout), { ip: 'drop' });
  });

  it('changes channel rules for messages after a restart', T, async () => {
    const dir = await makeDataDir();
    const key = await createSource(dir, 'web');
    const srv = await startServer(null, { dataDir: dir });
    try {
      const token = (await readFile(path.join(dir, 'admin-token'), 'utf8')).trim();
      const send = async (id) => {
        const res = await srv.post('/v1/page', page(id, 'https://s.example/?utm_source=dealspot&utm_medium=cpc', '', WINDOWS), { key });
        assert.equal(res.status, 200, res.text);
      };
      const channelOf = async (id) => {
        const deadline = Date.now() + 5000;
        for (;;) {
          for (const ch of ['Paid Search', 'Affiliate']) {
            const res = await srv.post('/api/query', {
              kind: 'events', limit: 1,
              filters: [{ property: 'anonymousId', operator: '=', value: id }, { property: 'enriched.channel', operator: '=', value: ch }],
            }, { headers: { Authorization: `Bearer ${token}` } });
            if (res.status === 200 && res.json.events.length) return ch;
          }
          assert.ok(Date.now() < deadline, `no channel for ${id}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      await send('before');
      assert.equal(await channelOf('before'), 'Paid Search');
      await cli(['enrich', 'config', '--data', dir, '--set', 'channel_rules=Affiliate: source=deal*', '--set', 'channel_rules=Paid Search: medium=cpc']);
      await send('still-old');
      assert.equal(await channelOf('still-old'), 'Paid Search', 'a running server keeps its settings');
      await srv.restart();
      await send('after');
      assert.equal(await channelOf('after'), 'Affiliate');
      assert.equal(await channelOf('before'), 'Paid Search', 'stored events keep their enrichment');
    } finally {
      await srv.stop();
    }
  });
});
