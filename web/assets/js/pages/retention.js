// Retention: cohorts of persons by their start event, how many came back
// with the return event 0..N-1 periods later; a shaded cohort table.
import { h, replace, card, num, select, field, empty } from '../dom.js';
import { TIMEZONE, range, decodeState } from '../util.js';
import { loadEventNames, eventSelect, rangeSelect, queryRunner, bind } from '../widgets.js';

const DEFAULTS = { start: '', return: '', cohort: 'first_time', period: 'week', periods: 8, range: '90d' };

export function retentionQuery(st) {
  return {
    kind: 'retention',
    start: { event: st.start },
    return: { event: st.return },
    cohort: st.cohort,
    period: st.period,
    periods: st.periods,
    timezone: TIMEZONE,
    ...range(st.range),
  };
}

function shade(td, p) {
  if (p === null || p === undefined) return td;
  const a = Math.min(1, Math.max(0.04, p / 100));
  td.style.backgroundColor = `rgba(47, 91, 211, ${a.toFixed(3)})`;
  if (a > 0.55) td.classList.add('on-dark');
  return td;
}

function cohortTable(res) {
  const n = res.periods;
  const label = res.period === 'day' ? 'Day' : res.period === 'week' ? 'Week' : 'Month';
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'cohorts compact', 'aria-label': 'Retention by cohort' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Cohort'), h('th', { scope: 'col', class: 'num' }, 'Persons'),
        Array.from({ length: n }, (_, k) => h('th', { scope: 'col', class: 'num' }, `${label} ${k}`)))),
      h('tbody', null, res.cohorts.map((c) => h('tr', null,
        h('th', { scope: 'row' }, c.start.replace('T00:00:00', '')),
        h('td', { class: 'num' }, num(c.size, 0)),
        c.values.map((v, k) => shade(h('td', { class: 'num', title: `${num(v, 0)} persons` }, c.percentages[k] === null ? '–' : `${num(c.percentages[k])} %`), c.percentages[k]))))),
    ),
  );
}

export default {
  title: 'Retention',
  async render(main, ctx) {
    const names = await loadEventNames();
    const st = decodeState(ctx.params, DEFAULTS);
    const dflt = names.includes('$page') ? '$page' : names[0] ?? '';
    st.start ||= names.includes('Signed Up') ? 'Signed Up' : dflt;
    st.return ||= dflt;
    const out = h('div', { class: 'result', 'aria-live': 'polite' });
    const run = queryRunner(ctx, out, {
      state: st,
      build: retentionQuery,
      render: (res) => replace(out, res.cohorts.some((c) => c.size) ? cohortTable(res) : empty('No cohort has anyone in this range.')),
    });
    const start = eventSelect(['', ...names], st.start);
    const ret = eventSelect(['', ...names], st.return);
    const cohort = select([['first_time', 'First time'], ['recurring', 'Recurring']], st.cohort);
    const period = select([['day', 'Day'], ['week', 'Week'], ['month', 'Month']], st.period);
    const periods = h('input', { type: 'number', min: 1, max: 400, value: String(st.periods) });
    const rng = rangeSelect(st.range);
    const wholePeriods = (el) => {
      const v = Math.round(Number(el.value));
      el.value = String(v >= 1 && v <= 400 ? v : 8);
      return Number(el.value);
    };
    bind(st, run, { start, return: ret, cohort, period, periods: [periods, wholePeriods], range: rng });
    const form = h(
      'form',
      { class: 'query-form', onsubmit: (e) => (e.preventDefault(), run()) },
      h('div', { class: 'row' }, field('Persons who did', start), field('and came back to do', ret), field('Cohort', cohort)),
      h('div', { class: 'row' }, field('Period', period), field('Periods', periods), field('Cohorts in', rng),
        h('button', { type: 'submit', class: 'primary' }, 'Run')),
    );
    replace(main, h('h1', null, 'Retention'), card(null, form), card(null, out));
    await run();
  },
};
