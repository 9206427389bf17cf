// Attribution / Campaigns: conversions and revenue credited to touchpoint
// groups (campaign, source, medium, source / medium, channel) by the six
// models side by side, with cost, ROI and ROAS where costs are imported. One
// `attribution` query (docs/attribution.md). Shown only when the server
// answers that kind (main.js probes it).
import { h, replace, card, num, pct, select, field, empty } from '../dom.js';
import { TIMEZONE, range, decodeState } from '../util.js';
import { loadEventNames, eventSelect, propertyInput, rangeSelect, queryRunner, bind } from '../widgets.js';

const MODEL_LABELS = {
  first_touch: 'First touch', last_touch: 'Last touch', last_non_direct: 'Last non-direct',
  linear: 'Linear', position_based: 'Position 40/20/40', time_decay: 'Time decay',
};
const METRICS = [['conversions', 'Conversions'], ['revenue', 'Revenue'], ['share_pct', 'Share of conversions'], ['roas', 'ROAS'], ['roi', 'ROI']];
const DEFAULTS = { conversion: '', value: 'properties.revenue', touchpoint: 'channel', lookback: '30d', range: '30d', metric: 'conversions' };

export function attributionQuery(st) {
  return {
    kind: 'attribution',
    conversion: { event: st.conversion },
    value: st.value || undefined,
    touchpoint: st.touchpoint,
    lookback: st.lookback,
    limit: 15,
    timezone: TIMEZONE,
    ...range(st.range),
  };
}

const fmt = (metric, v) => (metric === 'share_pct' ? pct(v) : num(v));

function kpi(label, value) {
  return h('div', { class: 'kpi' }, h('span', { class: 'kpi-label' }, label), h('span', { class: 'kpi-value' }, value));
}

function result(res, metric) {
  if (!res.conversions) return empty('No conversion in this range.');
  const models = res.models;
  return [
    h('div', { class: 'kpis' },
      kpi('Conversions', num(res.conversions, 0)), kpi('Revenue', num(res.revenue)),
      kpi('Cost', res.cost === null ? '–' : `${num(res.cost)} ${res.currency ?? ''}`),
      kpi('ROAS', num(res.roas)), kpi('ROI', num(res.roi))),
    res.cost === null ? h('p', { class: 'muted' }, 'No advertising costs are imported for this range (tandem import costs): ROI and ROAS need them.') : null,
    h('div', { class: 'table-wrap' }, h('table', { class: 'compact attribution', 'aria-label': 'Attribution by model' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, res.touchpoint.replace('_', ' / ')), h('th', { scope: 'col', class: 'num' }, 'Cost'),
        models.map((m) => h('th', { scope: 'col', class: 'num' }, MODEL_LABELS[m] ?? m)))),
      h('tbody', null, res.groups.map((g) => h('tr', null,
        h('th', { scope: 'row' }, g.is_other ? 'other' : g.touchpoint),
        h('td', { class: 'num' }, num(g.cost)),
        models.map((m) => h('td', { class: 'num' }, fmt(metric, g.models[m]?.[metric])))))))),
  ];
}

export default {
  title: 'Attribution',
  async render(main, ctx) {
    const names = await loadEventNames();
    const st = decodeState(ctx.params, DEFAULTS);
    st.conversion ||= names.includes('Order Completed') ? 'Order Completed' : names[0] ?? '';
    const out = h('div', { class: 'result', 'aria-live': 'polite' });
    let last = null;
    const draw = () => last && replace(out, result(last, st.metric));
    const run = queryRunner(ctx, out, {
      state: st,
      build: attributionQuery,
      render: (res) => ((last = res), draw()),
    });
    const conv = eventSelect(names, st.conversion);
    const value = propertyInput(st.value);
    const tp = select([['channel', 'Channel'], ['campaign', 'Campaign'], ['source', 'Source'], ['medium', 'Medium'], ['source_medium', 'Source / medium']], st.touchpoint);
    const lookback = select([['7d', '7 days'], ['30d', '30 days'], ['90d', '90 days']], st.lookback);
    const rng = rangeSelect(st.range);
    const metric = select(METRICS, st.metric);
    bind(st, run, { conversion: conv, value, touchpoint: tp, lookback, range: rng });
    metric.addEventListener('change', () => {
      st.metric = metric.value;
      ctx.setState(st);
      draw();
    });
    const form = h(
      'form',
      { class: 'query-form', onsubmit: (e) => (e.preventDefault(), run()) },
      h('div', { class: 'row' }, field('Conversion', conv), field('Value', value), field('Touchpoints', tp), field('Lookback', lookback), field('Range', rng),
        field('Show', metric), h('button', { type: 'submit', class: 'primary' }, 'Run')),
    );
    replace(main, h('h1', null, 'Attribution and campaigns'), card(null, form), card(null, out));
    await run();
  },
};
