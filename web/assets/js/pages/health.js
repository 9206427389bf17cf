// Data health (for IT): events accepted / rejected / deduplicated per source
// over time, rejection reasons with samples from the quarantine, fsync and
// request latency, WAL and store size, last event per source. One call:
// GET /api/health/data.
import { h, replace, card, num, bytes, time, ago, empty, table, select, field } from '../dom.js';
import { dataHealth } from '../api.js';
import { chart } from '../chart.js';
import { decodeState } from '../util.js';

const sum = (a) => a.reduce((x, y) => x + y, 0);
const ms = (v) => (v === null || v === undefined ? '–' : `${num(v)} ms`);

function kpi(label, value) {
  return h('div', { class: 'kpi' }, h('span', { class: 'kpi-label' }, label), h('span', { class: 'kpi-value' }, value));
}

function reasons(list) {
  if (!list.length) return empty('Nothing was rejected in this period.');
  return h('ul', { class: 'reasons' }, list.map((r) =>
    h('li', { class: 'reason', dataset: { code: r.code } },
      h('details', null,
        h('summary', null, h('code', null, r.code), ` ${num(r.count, 0)} rejected`),
        r.samples.length
          ? h('ol', { class: 'samples' }, r.samples.map((s) => h('li', null,
            h('div', { class: 'sample-head' }, `${time(s.received)} · source ${s.source ?? '–'}${s.field ? ` · field ${s.field}` : ''}`),
            h('div', { class: 'sample-error' }, s.error),
            h('pre', { class: 'raw' }, s.raw))))
          : empty('No sample kept.')))));
}

export default {
  title: 'Data health',
  async render(main, ctx) {
    const st = decodeState(ctx.params, { hours: 24 });
    const hours = select([[1, 'Last hour'], [6, 'Last 6 hours'], [24, 'Last 24 hours'], [72, 'Last 3 days'], [168, 'Last 7 days']].map(([v, l]) => [String(v), l]), String(st.hours));
    hours.addEventListener('change', () => {
      ctx.setState({ hours: Number(hours.value) });
      ctx.go(`#/health?hours=${hours.value}`);
    });
    const d = await dataHealth(st.hours);
    const totals = { accepted: 0, rejected: 0, deduplicated: 0 };
    const perTime = { accepted: d.times.map(() => 0), rejected: d.times.map(() => 0), deduplicated: d.times.map(() => 0) };
    for (const s of d.sources) {
      for (const k of Object.keys(totals)) {
        totals[k] += sum(s[k]);
        s[k].forEach((v, i) => (perTime[k][i] += v));
      }
    }
    const chartEl = h('div', { class: 'chart-box' });
    replace(
      main,
      h('div', { class: 'title-row' }, h('h1', null, 'Data health'), field('Period', hours)),
      h('div', { class: 'kpis' },
        kpi('Accepted', num(totals.accepted, 0)), kpi('Rejected', num(totals.rejected, 0)), kpi('Deduplicated', num(totals.deduplicated, 0)),
        kpi('Events stored', num(d.events_stored, 0)), kpi('WAL', bytes(d.wal_bytes)), kpi('Event store', bytes(d.store_bytes))),
      card(`Events per ${d.interval}`, chartEl),
      h('div', { class: 'grid2' },
        card('Sources', d.sources.length
          ? table([
            { label: 'Source', value: (s) => s.name },
            { label: 'Accepted', num: true, value: (s) => sum(s.accepted) },
            { label: 'Rejected', num: true, value: (s) => sum(s.rejected) },
            { label: 'Deduplicated', num: true, value: (s) => sum(s.deduplicated) },
            { label: 'Last event', value: (s) => h('span', { title: time(s.last_event) }, ago(s.last_event)) },
          ], d.sources, { class: 'sources-health' })
          : empty('No sources yet.')),
        card('Latency', table([
          { label: '', value: (r) => r[0] },
          { label: 'p50', num: true, value: (r) => ms(r[1]?.p50) },
          { label: 'p99', num: true, value: (r) => ms(r[1]?.p99) },
        ], [['WAL fsync', d.latency?.fsync_ms], ['Collector request', d.latency?.request_ms]]))),
      card('Rejection reasons (samples from the quarantine, newest first)', reasons(d.reasons)),
    );
    if (d.times.length) {
      chart(chartEl, {
        x: d.times,
        kind: 'bar',
        height: 220,
        series: [
          { label: 'accepted', values: perTime.accepted },
          { label: 'rejected', values: perTime.rejected, color: '#d23b4b' },
          { label: 'deduplicated', values: perTime.deduplicated, color: '#c9a10a' },
        ],
      });
      ctx.onLeave(() => chartEl.disconnect?.());
    } else replace(chartEl, empty('No data in this period.'));
    ctx.done();
  },
};
