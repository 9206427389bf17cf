// Attribution / Campaigns: conversions and revenue credited to campaigns,
// sources or channels by several models side by side, with ROI where costs
// are known. Shown only when the server answers the `attribution` query kind
// (main.js probes it); the result is drawn generically (every list of rows
// becomes a table), so it follows the server's result document.
import { h, replace, card, num, select, field, empty, table } from '../dom.js';
import { TIMEZONE, range, decodeState } from '../util.js';
import { loadEventNames, eventSelect, propertyInput, rangeSelect, queryRunner, bind } from '../widgets.js';

const MODELS = ['first_touch', 'last_touch', 'last_non_direct', 'linear', 'position_based', 'time_decay'];
const DEFAULTS = { conversion: '', value: 'properties.revenue', touchpoint: 'campaign', lookback: '30d', range: '30d' };

export function attributionQuery(st) {
  return {
    kind: 'attribution',
    conversion: { event: st.conversion },
    value: st.value || undefined,
    touchpoint: st.touchpoint,
    models: MODELS,
    lookback: st.lookback,
    timezone: TIMEZONE,
    ...range(st.range),
  };
}

const isRowList = (v) => Array.isArray(v) && v.length > 0 && v.every((r) => r && typeof r === 'object' && !Array.isArray(r));
const scalar = (v) => v === null || ['string', 'number', 'boolean'].includes(typeof v);

// Any result document: its scalar fields as facts, each list of objects as a
// table (nested lists as their own tables, titled by their owner).
function generic(doc, title) {
  const facts = Object.entries(doc).filter(([k, v]) => scalar(v) && k !== 'kind');
  const lists = Object.entries(doc).filter(([, v]) => isRowList(v));
  const out = [];
  if (title) out.push(h('h3', null, title));
  if (facts.length) out.push(h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', null, k.replace(/_/g, ' ')), h('dd', null, typeof v === 'number' ? num(v) : String(v))])));
  for (const [k, rows] of lists) {
    const cols = [...new Set(rows.flatMap((r) => Object.keys(r).filter((c) => scalar(r[c]))))];
    out.push(h('div', { class: 'attr-block' }, h('h4', null, k.replace(/_/g, ' ')),
      table(cols.map((c) => ({ label: c.replace(/_/g, ' '), num: rows.some((r) => typeof r[c] === 'number'), value: (r) => r[c] })), rows)));
    rows.forEach((r, i) => {
      if (Object.values(r).some(isRowList)) out.push(generic(Object.fromEntries(Object.entries(r).filter(([, v]) => isRowList(v) || scalar(v))), `${k} ${r.model ?? r.name ?? i + 1}`));
    });
  }
  return h('div', { class: 'attr' }, out);
}

export default {
  title: 'Attribution',
  async render(main, ctx) {
    const names = await loadEventNames();
    const st = decodeState(ctx.params, DEFAULTS);
    st.conversion ||= names.includes('Order Completed') ? 'Order Completed' : names[0] ?? '';
    const out = h('div', { class: 'result', 'aria-live': 'polite' });
    const run = queryRunner(ctx, out, {
      state: st,
      build: attributionQuery,
      render: (res) => replace(out, res && typeof res === 'object' ? generic(res) : empty('No answer.')),
      handle: (err) => {
        if (err.status !== 400 || !/^kind: unknown value/.test(err.message)) return false;
        replace(out, empty('Attribution is not available on this server yet.'));
        return true;
      },
    });
    const conv = eventSelect(names, st.conversion);
    const value = propertyInput(st.value);
    const tp = select([['campaign', 'Campaign'], ['source', 'Source'], ['medium', 'Medium'], ['channel', 'Channel']], st.touchpoint);
    const lookback = select([['7d', '7 days'], ['30d', '30 days'], ['90d', '90 days']], st.lookback);
    const rng = rangeSelect(st.range);
    bind(st, run, { conversion: conv, value, touchpoint: tp, lookback, range: rng });
    const form = h(
      'form',
      { class: 'query-form', onsubmit: (e) => (e.preventDefault(), run()) },
      h('div', { class: 'row' }, field('Conversion', conv), field('Value', value), field('Touchpoints', tp), field('Lookback', lookback), field('Range', rng),
        h('button', { type: 'submit', class: 'primary' }, 'Run')),
    );
    replace(main, h('h1', null, 'Attribution and campaigns'), card(null, form), card(null, out));
    await run();
  },
};
