// Overview: live events per minute (GET /api/stats/live, polled), today vs
// yesterday, top campaigns and pages of the last 7 days, the latest events.
import { h, replace, card, loading, num, table, time, empty } from '../dom.js';
import { query, liveStats } from '../api.js';
import { chart, meter } from '../chart.js';
import { TIMEZONE, range } from '../util.js';
import { loadEventNames } from '../widgets.js';

const POLL_MS = 5000;

// Runs load() into el, with a loading state and an error box in place.
async function section(el, ctx, load) {
  replace(el, loading());
  try {
    await load();
  } catch (err) {
    const box = ctx.fail(err, () => section(el, ctx, load));
    if (box) replace(el, box);
  }
}

function kpi(label, today, yesterday, fmt = num) {
  const delta = yesterday ? ((today - yesterday) / yesterday) * 100 : null;
  return h(
    'div',
    { class: 'kpi' },
    h('span', { class: 'kpi-label' }, label),
    h('span', { class: 'kpi-value', dataset: { kpi: label } }, fmt(today)),
    h(
      'span',
      { class: 'kpi-prev' },
      `yesterday ${fmt(yesterday)}`,
      delta === null ? null : h('span', { class: delta >= 0 ? 'up' : 'down' }, ` ${delta >= 0 ? '▲' : '▼'} ${num(Math.abs(delta))} %`),
    ),
  );
}

async function todayVsYesterday(el, names) {
  const series = [];
  if (names.includes('$page')) series.push({ event: '$page', math: 'unique_persons', name: 'Visitors' });
  if (names.includes('Order Completed')) {
    series.push({ event: 'Order Completed', math: 'count', name: 'Conversions' });
    series.push({ event: 'Order Completed', math: 'sum', property: 'properties.revenue', name: 'Revenue' });
  }
  if (!series.length) return replace(el, empty('No page views or orders stored yet.'));
  const r = range('yesterday');
  const res = await query({ kind: 'trends', series, interval: 'day', timezone: TIMEZONE, date_from: r.date_from, date_to: range('today').date_to });
  replace(el, h('div', { class: 'kpis' }, res.series.map((s) => kpi(s.name, s.values[1] ?? 0, s.values[0] ?? 0))));
}

async function topList(el, { event, math, property, label, limit }) {
  const r = range('7d');
  let res;
  try {
    res = await query({ kind: 'trends', series: [{ event, math }], interval: 'month', timezone: TIMEZONE, ...r, breakdown: property, breakdown_limit: limit });
  } catch (err) {
    if (err.status === 400 && /unknown (property|event)/.test(err.message)) return replace(el, empty(`No ${label.toLowerCase()} in the data yet.`));
    throw err;
  }
  const rows = res.series.filter((s) => !s.is_other && s.breakdown_value !== null);
  if (!rows.length) return replace(el, empty(`No ${label.toLowerCase()} in the last 7 days.`));
  const max = Math.max(...rows.map((s) => s.total));
  replace(el, table(
    [
      { label, value: (s) => s.breakdown_value },
      { label: math === 'unique_persons' ? 'Visitors' : 'Views', num: true, value: (s) => s.total },
      { label: '', value: (s) => meter(s.total / max, `${s.total} of ${max}`) },
    ],
    rows,
  ));
}

export default {
  title: 'Overview',
  async render(main, ctx) {
    const live = h('div', { class: 'live' });
    const kpis = h('div');
    const campaigns = h('div');
    const pages = h('div');
    const latest = h('div', { id: 'latest-events' });
    replace(
      main,
      h('h1', null, 'Overview'),
      card('Today vs yesterday', kpis),
      card('Live: events per minute, last hour', live),
      h('div', { class: 'grid2' }, card('Top campaigns, last 7 days', campaigns), card('Top pages, last 7 days', pages)),
      card('Latest events', latest),
    );

    let plot = null;
    const drawLive = async () => {
      const res = await liveStats(60);
      const x = res.minutes.map((m) => new Date(m.t));
      const series = [
        { label: 'accepted', values: res.minutes.map((m) => m.accepted) },
        { label: 'rejected', values: res.minutes.map((m) => m.rejected), color: '#d23b4b' },
        { label: 'deduplicated', values: res.minutes.map((m) => m.deduplicated), color: '#c9a10a' },
      ];
      if (plot) plot.setData([x.map((d) => d.getTime() / 1000), ...series.map((s) => s.values)]);
      else {
        replace(live);
        plot = chart(live, { x, series, kind: 'bar', height: 200 }).plot;
        ctx.onLeave(() => live.disconnect());
      }
      const last = res.minutes.at(-1);
      live.dataset.lastMinute = last ? String(last.accepted) : '0';
    };
    const drawLatest = async () => {
      const res = await query({
        kind: 'events', limit: 15, timezone: TIMEZONE, properties: ['userId', 'session.channel'],
      }, ctx.signal);
      if (!res.events.length) return replace(latest, empty('No events stored yet.'));
      const prop = (e, p) => e.properties?.[p] ?? '';
      replace(latest, table(
        [
          { label: 'Time', value: (e) => time(e.ts) },
          { label: 'Event', value: (e) => e.event },
          { label: 'User', value: (e) => prop(e, 'userId') },
          { label: 'Visit from', value: (e) => prop(e, 'session.channel') },
          { label: 'Person', num: true, value: (e) => h('a', { href: `#/profiles/person:${e.pid}` }, String(e.pid)) },
        ],
        res.events,
        { class: 'compact' },
      ));
    };

    const names = await loadEventNames();
    await Promise.allSettled([
      section(kpis, ctx, () => todayVsYesterday(kpis, names)),
      section(live, ctx, drawLive),
      section(campaigns, ctx, () => topList(campaigns, { event: '$page', math: 'unique_persons', property: 'enriched.campaign.name', label: 'Campaign', limit: 6 })),
      section(pages, ctx, () => topList(pages, { event: '$page', math: 'count', property: 'context.page.path', label: 'Page', limit: 8 })),
      section(latest, ctx, drawLatest),
    ]);
    ctx.done();

    // Updates without reload: the live chart and the latest events.
    const timer = setInterval(() => {
      if (document.hidden) return;
      if (plot) drawLive().catch(() => {});
      drawLatest().catch(() => {});
    }, POLL_MS);
    ctx.onLeave(() => clearInterval(timer));
  },
};
