// Funnels: steps, window, order, breakdown; a bar per step with conversion,
// drop-off and time to convert; a step's button lists the persons who dropped
// off before it (the funnel query's `persons` with `dropped`).
import { h, replace, card, loading, num, pct, duration, select, field, empty, table } from '../dom.js';
import { query } from '../api.js';
import { meter } from '../chart.js';
import { TIMEZONE, range, decodeState } from '../util.js';
import { loadEventNames, eventSelect, propertyInput, rangeSelect, queryRunner, bind } from '../widgets.js';

const DEFAULTS = { steps: [], window: '7d', order: 'sequential', breakdown: '', range: '30d' };
const SHOP = ['Product Viewed', 'Product Added', 'Checkout Started', 'Order Completed'];
const WINDOWS = [['1h', '1 hour'], ['1d', '1 day'], ['7d', '7 days'], ['14d', '14 days'], ['30d', '30 days'], ['90d', '90 days']];

export function funnelQuery(st) {
  const q = {
    kind: 'funnel',
    steps: st.steps.map((s) => ({ event: s.event, ...(s.filters?.length ? { filters: s.filters } : {}) })),
    window: st.window,
    order: st.order,
    timezone: TIMEZONE,
    ...range(st.range),
  };
  if (st.breakdown) {
    q.breakdown = st.breakdown;
    q.breakdown_limit = 10;
  }
  return q;
}

function stepBars(res, onDropped) {
  const first = res.steps[0]?.persons || 0;
  return h(
    'ol',
    { class: 'funnel' },
    res.steps.map((s, i) => {
      const prev = i ? res.steps[i - 1].persons : s.persons;
      const dropped = prev - s.persons;
      return h(
        'li',
        { class: 'funnel-step', dataset: { step: String(s.step), persons: String(s.persons) } },
        h('div', { class: 'funnel-head' }, h('strong', null, `${s.step}. ${s.event || 'Any event'}`),
          h('span', { class: 'funnel-persons' }, `${num(s.persons, 0)} persons`)),
        meter(first ? s.persons / first : 0, `${pct(s.conversion_from_first_pct)} of step 1`),
        h(
          'div',
          { class: 'funnel-facts' },
          h('span', null, `${pct(s.conversion_from_first_pct)} of step 1`),
          i ? h('span', null, `${pct(s.conversion_from_previous_pct)} from step ${i}`) : null,
          i ? h('span', null, `median time ${duration(s.median_ms)}, mean ${duration(s.mean_ms)}`) : null,
          i && dropped > 0
            ? h('button', { type: 'button', class: 'link', onclick: () => onDropped(s.step) }, `${num(dropped, 0)} dropped off: list them`)
            : null,
        ),
      );
    }),
  );
}

function breakdownTable(res) {
  const n = res.steps.length;
  return table(
    [
      { label: 'Breakdown', value: (g) => (g.is_other ? 'other' : g.breakdown_value ?? '(none)') },
      ...res.steps.map((s, i) => ({ label: `${i + 1}. ${s.event}`, num: true, value: (g) => g.steps[i].persons })),
      { label: 'Conversion', num: true, value: (g) => pct(g.steps[n - 1].conversion_from_first_pct) },
    ],
    res.breakdown,
  );
}

export default {
  title: 'Funnels',
  async render(main, ctx) {
    const names = await loadEventNames();
    const st = decodeState(ctx.params, DEFAULTS);
    if (st.steps.length < 2) {
      const shop = SHOP.filter((e) => names.includes(e));
      st.steps = (shop.length >= 2 ? shop : names.slice(0, 2)).map((event) => ({ event }));
    }
    const out = h('div', { class: 'result', 'aria-live': 'polite' });
    const persons = h('div', { class: 'persons' });
    const stepsBox = h('ol', { class: 'steps-edit' });

    const showDropped = async (step) => {
      replace(persons, loading(`Persons who dropped off before step ${step}`));
      try {
        const res = await query({ ...funnelQuery(st), persons: { step, dropped: true, limit: 100 } }, ctx.signal);
        const p = res.persons;
        replace(
          persons,
          h('h3', null, `Dropped off before step ${step}: ${num(p.total, 0)} persons`),
          p.pids.length
            ? h('ul', { class: 'pids' }, p.pids.map((pid) => h('li', null, h('a', { href: `#/profiles/person:${pid}` }, h('code', null, `person ${pid}`)))))
            : empty('Nobody.'),
          p.total > p.pids.length ? h('p', { class: 'muted' }, `The first ${p.pids.length} by person id.`) : null,
        );
        persons.querySelector('h3').setAttribute('tabindex', '-1');
        persons.querySelector('h3').focus();
      } catch (err) {
        const box = ctx.fail(err, () => showDropped(step));
        if (box) replace(persons, box);
      }
    };
    const run = queryRunner(ctx, out, {
      state: st,
      build: funnelQuery,
      before: () => replace(persons),
      render: (res) => replace(
        out,
        res.steps[0].persons === 0 ? empty('Nobody did the first step in this range.') : stepBars(res, showDropped),
        res.breakdown?.length ? h('h3', null, 'By breakdown') : null,
        res.breakdown?.length ? breakdownTable(res) : null,
      ),
    });

    const drawSteps = () => {
      replace(stepsBox, st.steps.map((s, i) => {
        const ev = eventSelect(['', ...names], s.event, { 'aria-label': `Step ${i + 1} event` });
        ev.addEventListener('change', () => ((s.event = ev.value), run()));
        const btn = (label, text, fn, disabled) => h('button', { type: 'button', class: 'icon', 'aria-label': label, title: label, disabled, onclick: fn }, text);
        return h('li', { class: 'step-row' }, h('span', { class: 'series-tag' }, String(i + 1)), ev,
          btn(`Move step ${i + 1} up`, '↑', () => ([st.steps[i - 1], st.steps[i]] = [st.steps[i], st.steps[i - 1]], drawSteps(), run()), i === 0),
          btn(`Move step ${i + 1} down`, '↓', () => ([st.steps[i + 1], st.steps[i]] = [st.steps[i], st.steps[i + 1]], drawSteps(), run()), i === st.steps.length - 1),
          btn(`Remove step ${i + 1}`, '×', () => (st.steps.splice(i, 1), drawSteps(), run()), st.steps.length <= 2));
      }));
      if (st.steps.length < 20) {
        stepsBox.appendChild(h('li', null, h('button', {
          type: 'button', class: 'link',
          onclick: () => {
            st.steps.push({ event: names.find((n) => !st.steps.some((s) => s.event === n)) ?? '' });
            drawSteps();
            run();
            stepsBox.querySelectorAll('select')[st.steps.length - 1]?.focus();
          },
        }, '+ step')));
      }
    };
    drawSteps();

    const win = select(WINDOWS.some(([w]) => w === st.window) ? WINDOWS : [[st.window, st.window], ...WINDOWS], st.window);
    const order = select([['sequential', 'Sequential'], ['strict', 'Strict (no other step between)'], ['any', 'Any order']], st.order);
    const rng = rangeSelect(st.range);
    const breakdown = propertyInput(st.breakdown, { placeholder: 'none (e.g. context.campaign.source)' });
    bind(st, run, { window: win, order, range: rng, breakdown });

    const form = h(
      'form',
      { class: 'query-form', onsubmit: (e) => (e.preventDefault(), run()) },
      h('div', { class: 'field' }, h('span', { class: 'label' }, 'Steps'), stepsBox),
      h('div', { class: 'row' }, field('Range', rng), field('Conversion window', win), field('Order', order), field('Breakdown', breakdown),
        h('button', { type: 'submit', class: 'primary' }, 'Run')),
    );
    replace(main, h('h1', null, 'Funnels'), card(null, form), card(null, out, persons));
    await run();
  },
};
