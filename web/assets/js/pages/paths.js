// Paths: the most frequent transitions after (or before) an anchor event
// within a session, per step away from the anchor.
import { h, replace, card, num, select, field, empty } from '../dom.js';
import { meter } from '../chart.js';
import { TIMEZONE, range, decodeState } from '../util.js';
import { loadEventNames, eventSelect, rangeSelect, queryRunner, bind } from '../widgets.js';

const DEFAULTS = { anchor: '', direction: 'after', depth: 4, limit: 6, range: '7d' };

export function pathsQuery(st) {
  return {
    kind: 'paths',
    anchor: { event: st.anchor },
    direction: st.direction,
    depth: st.depth,
    limit: st.limit,
    timezone: TIMEZONE,
    ...range(st.range),
  };
}

function columns(res) {
  if (!res.sessions) return empty('No session contains the anchor event in this range.');
  return h(
    'div',
    { class: 'paths' },
    h('div', { class: 'path-col' }, h('h3', null, 'Anchor'), h('div', { class: 'path-node anchor' }, h('strong', null, res.anchor), h('span', null, `${num(res.sessions, 0)} sessions`))),
    res.depths.map((d) =>
      h(
        'div',
        { class: 'path-col' },
        h('h3', null, `${res.direction === 'before' ? '−' : '+'}${d.depth}: ${num(d.sessions, 0)} sessions`),
        d.transitions.map((t) =>
          h('div', { class: 'path-node' },
            res.direction === 'before'
              ? [h('strong', null, t.from), h('span', { class: 'path-edge' }, `→ ${t.to}`)]
              : [h('span', { class: 'path-edge' }, `${t.from} →`), h('strong', null, t.to)],
            h('span', null, `${num(t.count, 0)} (${num((t.count / res.sessions) * 100)} %)`),
            meter(t.count / res.sessions, `${t.count} of ${res.sessions} sessions`)),
        ),
      ),
    ),
  );
}

export default {
  title: 'Paths',
  async render(main, ctx) {
    const names = await loadEventNames();
    const st = decodeState(ctx.params, DEFAULTS);
    st.anchor ||= names.includes('$page') ? '$page' : names[0] ?? '';
    const out = h('div', { class: 'result', 'aria-live': 'polite' });
    const run = queryRunner(ctx, out, { state: st, build: pathsQuery, render: (res) => replace(out, columns(res)) });
    const anchor = eventSelect(names, st.anchor);
    const direction = select([['after', 'After the anchor'], ['before', 'Before the anchor']], st.direction);
    const depth = select([1, 2, 3, 4, 5, 6, 8, 10].map((n) => [String(n), String(n)]), String(st.depth));
    const rng = rangeSelect(st.range);
    bind(st, run, { anchor, direction, depth: [depth, (e) => Number(e.value)], range: rng });
    const form = h(
      'form',
      { class: 'query-form', onsubmit: (e) => (e.preventDefault(), run()) },
      h('div', { class: 'row' }, field('Anchor event', anchor), field('Direction', direction), field('Steps', depth), field('Range', rng),
        h('button', { type: 'submit', class: 'primary' }, 'Run')),
    );
    replace(main, h('h1', null, 'Paths'), card(null, form), card(null, out));
    await run();
  },
};
