// Trends: series (event, math, property, filters of its own), global filters, breakdown,
// interval, range, compare; a line or bar chart and a table. The whole query
// is in the URL.
import { h, replace, card, num, select, field, empty } from '../dom.js';
import { chart } from '../chart.js';
import { TIMEZONE, range, decodeState, debounce } from '../util.js';
import { loadEventNames, eventSelect, propertyInput, rangeSelect, filterEditor, queryRunner, bind } from '../widgets.js';

const MATHS = [
  ['count', 'Total count'], ['unique_persons', 'Unique persons'], ['sum', 'Sum of'], ['avg', 'Average of'],
  ['min', 'Minimum of'], ['max', 'Maximum of'], ['p50', 'Median of'], ['p90', '90th percentile of'], ['p99', '99th percentile of'],
];
const NEEDS_PROPERTY = new Set(['sum', 'avg', 'min', 'max', 'p50', 'p90', 'p99']);
const MAX_SERIES = 5;
const MAX_LINES = 12;

const DEFAULTS = { series: [], range: '30d', interval: 'day', breakdown: '', compare: false, chart: 'line', filters: [] };

export function trendsQuery(st) {
  const q = {
    kind: 'trends',
    series: st.series.map((s) => {
      const o = { event: s.event, math: s.math || 'count' };
      if (NEEDS_PROPERTY.has(o.math)) o.property = s.property || 'properties.revenue';
      if (s.filters?.length) o.filters = s.filters;
      return o;
    }),
    interval: st.interval,
    timezone: TIMEZONE,
    ...range(st.range),
  };
  if (st.filters.length) q.filters = st.filters;
  if (st.breakdown) {
    q.breakdown = st.breakdown;
    q.breakdown_limit = 8;
  }
  if (st.compare) q.compare = true;
  return q;
}

// "properties.plan = pro": a series' own filters, for its label
const filterText = (fs) => fs.map((f) => `${f.property} ${f.operator}${'value' in f ? ' ' + JSON.stringify(f.value) : ''}`).join(', ');

function lineLabel(s, q) {
  const sel = q.series[s.series];
  let l = s.name || `${sel.event || 'Any event'} · ${MATHS.find(([m]) => m === s.math)?.[1] ?? s.math}${s.property ? ' ' + s.property : ''}`;
  if (!s.name && sel.filters?.length) l += ` where ${filterText(sel.filters)}`;
  if ('breakdown_value' in s) l += ` · ${s.is_other ? 'other' : s.breakdown_value === null ? '(none)' : s.breakdown_value}`;
  if (s.period === 'previous') l += ' (previous period)';
  return l;
}

function renderResult(out, res, q, kind) {
  if (!res.series.length) return replace(out, empty('Nothing matches this query in the range.'));
  const lines = res.series.slice(0, MAX_LINES * (q.compare ? 2 : 1));
  const chartEl = h('div', { class: 'chart-box' });
  const note = res.series.length > lines.length ? h('p', { class: 'muted' }, `The chart shows the first ${lines.length} of ${res.series.length} lines; the table has all.`) : null;
  const headers = res.buckets.map((b) => b.replace('T00:00:00', '').replace(':00:00', ':00'));
  const tbl = h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'compact', 'aria-label': 'Trend values' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Series'), h('th', { scope: 'col', class: 'num' }, 'Total'), headers.map((b) => h('th', { scope: 'col', class: 'num' }, b)))),
      h(
        'tbody',
        null,
        res.series.map((s) =>
          h('tr', null, h('th', { scope: 'row' }, lineLabel(s, q)), h('td', { class: 'num' }, num(s.total)), s.values.map((v) => h('td', { class: 'num' }, num(v)))),
        ),
      ),
    ),
  );
  replace(out, chartEl, note, tbl);
  const series = lines.map((s, i) => ({ label: lineLabel(s, q), values: s.values, dashed: s.period === 'previous', color: undefined, idx: i }));
  chart(chartEl, { x: res.buckets, series, kind });
}

export default {
  title: 'Trends',
  async render(main, ctx) {
    const names = await loadEventNames();
    const st = decodeState(ctx.params, DEFAULTS);
    if (!st.series.length) st.series = [{ event: names.includes('$page') ? '$page' : names[0] ?? '', math: 'unique_persons' }];

    const out = h('div', { class: 'result', 'aria-live': 'polite' });
    const seriesBox = h('div', { class: 'series-list' });
    const run = queryRunner(ctx, out, {
      state: st,
      build: trendsQuery,
      render: (res) => {
        out.querySelector('.chart')?.disconnect?.();
        renderResult(out, res, trendsQuery(st), st.chart);
      },
    });
    ctx.onLeave(() => out.querySelector('.chart')?.disconnect?.());
    const later = debounce(run, 250);

    const drawSeries = () => {
      replace(seriesBox, st.series.map((s, i) => {
        const ev = eventSelect(['', ...names], s.event, { 'aria-label': `Series ${i + 1} event` });
        const math = select(MATHS, s.math || 'count', { 'aria-label': `Series ${i + 1} math` });
        const prop = propertyInput(s.property || 'properties.revenue', { 'aria-label': `Series ${i + 1} property` });
        prop.hidden = !NEEDS_PROPERTY.has(math.value);
        ev.addEventListener('change', () => ((s.event = ev.value), run()));
        math.addEventListener('change', () => {
          s.math = math.value;
          prop.hidden = !NEEDS_PROPERTY.has(s.math);
          if (!prop.hidden) s.property = prop.value;
          run();
        });
        prop.addEventListener('change', () => ((s.property = prop.value.trim()), run()));
        const del = st.series.length > 1
          ? h('button', { type: 'button', class: 'icon', 'aria-label': `Remove series ${i + 1}`, onclick: () => (st.series.splice(i, 1), drawSeries(), run()) }, '×')
          : null;
        // this series' own filters (on top of the global ones), shown when it has some
        const own = h('div', { class: 'series-filters' });
        const showOwn = () => replace(own, filterEditor(s.filters || [], (f) => ((s.filters = f), later()), `Series ${String.fromCharCode(65 + i)} filters`));
        if (s.filters?.length) showOwn();
        const addOwn = s.filters?.length ? null : h('button', {
          type: 'button', class: 'link', 'aria-label': `Filter series ${i + 1}`,
          onclick: (e) => {
            e.currentTarget.remove();
            showOwn();
            own.querySelector('.filters + button')?.click();
          },
        }, 'filter');
        return h('div', { class: 'series-item' },
          h('div', { class: 'series-row' }, h('span', { class: 'series-tag' }, String.fromCharCode(65 + i)), ev, math, prop, addOwn, del),
          own);
      }));
      if (st.series.length < MAX_SERIES) {
        seriesBox.appendChild(h('button', {
          type: 'button', class: 'link',
          onclick: () => {
            st.series.push({ event: st.series.at(-1)?.event ?? '', math: 'count' });
            drawSeries();
            run();
          },
        }, '+ series'));
      }
    };
    drawSeries();

    const interval = select([['hour', 'Hour'], ['day', 'Day'], ['week', 'Week'], ['month', 'Month']], st.interval);
    const rng = rangeSelect(st.range);
    const breakdown = propertyInput(st.breakdown, { placeholder: 'none (e.g. context.campaign.source)' });
    const compare = h('input', { type: 'checkbox', checked: st.compare });
    const kind = select([['line', 'Line'], ['bar', 'Bar']], st.chart);
    bind(st, run, { interval, range: rng, breakdown, compare: [compare, (e) => e.checked], chart: kind });

    const form = h(
      'form',
      { class: 'query-form', onsubmit: (e) => (e.preventDefault(), run()) },
      h('div', { class: 'field' }, h('span', { class: 'label' }, 'Series'), seriesBox),
      filterEditor(st.filters, (f) => ((st.filters = f), later())),
      h('div', { class: 'row' },
        field('Range', rng), field('Interval', interval), field('Breakdown', breakdown), field('Chart', kind),
        h('label', { class: 'check' }, compare, ' Compare with the previous period'),
        h('button', { type: 'submit', class: 'primary' }, 'Run')),
    );
    replace(main, h('h1', null, 'Trends'), card(null, form), card(null, out));
    await run();
  },
};
