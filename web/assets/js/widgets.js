// Form parts shared by the query pages: the event picker, the filter editor,
// the range picker, and the list of event names they offer.
import { h, select, field, replace, loading } from './dom.js';
import { query } from './api.js';
import { RANGES, range, TIMEZONE } from './util.js';

const SPECIAL = ['$page', '$screen', '$identify', '$group', '$alias'];
let eventNames = null;

// The stored event names: track names by count over the last year, then the
// other message types (docs/queries.md: "$page", "$identify", ...) present.
// Asked once per page load: one trends query broken down by `event`, one by
// `type`.
export async function loadEventNames() {
  if (eventNames) return eventNames;
  const r = range('365d');
  const base = { kind: 'trends', interval: 'month', timezone: TIMEZONE, ...r, breakdown_limit: 1000 };
  const [byEvent, byType] = await Promise.all([
    query({ ...base, series: [{ event: '' }], breakdown: 'event' }),
    query({ ...base, series: [{ event: '' }], breakdown: 'type' }),
  ]);
  const names = byEvent.series.filter((s) => !s.is_other && s.breakdown_value !== null).map((s) => s.breakdown_value);
  const types = new Set(byType.series.map((s) => s.breakdown_value));
  for (const t of ['page', 'screen', 'identify', 'group', 'alias']) if (types.has(t)) names.push('$' + t);
  eventNames = names;
  return names;
}

export function eventSelect(names, value, attrs = {}) {
  const opts = names.includes(value) || !value ? names : [value, ...names];
  return select(
    opts.map((n) => [n, n === '' ? 'Any event' : n]),
    value ?? names[0],
    attrs,
  );
}

// Suggestions for property paths; any path can be typed.
export const PROPERTY_HINTS = [
  'properties.revenue', 'properties.price', 'properties.quantity', 'properties.category', 'properties.product_id',
  'properties.currency', 'properties.coupon', 'properties.method', 'properties.plan', 'properties.url',
  'context.campaign.name', 'context.campaign.source', 'context.campaign.medium', 'context.page.path',
  'context.page.referrer', 'context.locale', 'context.library.name', 'person.plan', 'person.email', 'type',
];

export function propertyList() {
  let dl = document.getElementById('property-hints');
  if (!dl) {
    dl = h('datalist', { id: 'property-hints' }, PROPERTY_HINTS.map((p) => h('option', { value: p })));
    document.body.appendChild(dl);
  }
  return 'property-hints';
}

export function propertyInput(value, attrs = {}) {
  return h('input', { type: 'text', list: propertyList(), value: value ?? '', placeholder: 'properties.…', spellcheck: 'false', autocomplete: 'off', ...attrs });
}

export function rangeSelect(value, attrs = {}) {
  const opts = [...RANGES];
  if (value && !opts.some(([v]) => v === value)) opts.push([value, value.replace('..', ' to ')]);
  return select(opts, value, attrs);
}

const OPERATORS = ['=', '!=', 'in', 'not_in', 'contains', '>', '>=', '<', '<=', 'is_set', 'is_not_set'];

// A filter's value as typed: numbers and booleans as such, `in` lists split
// at commas.
function typedValue(op, text) {
  const one = (s) => {
    s = s.trim();
    if (s === 'true' || s === 'false') return s === 'true';
    if (s !== '' && /^-?\d+(\.\d+)?$/.test(s)) return Number(s);
    return s;
  };
  if (op === 'in' || op === 'not_in') return text.split(',').map(one);
  if (op === 'contains') return text;
  return one(text);
}

function valueText(v) {
  return Array.isArray(v) ? v.join(', ') : v === undefined ? '' : String(v);
}

// Filters as [{property, operator, value}]; onChange(filters) after an edit.
export function filterEditor(filters, onChange, label = 'Filters') {
  const list = h('div', { class: 'filters' });
  const rows = [];
  const emit = () => onChange(rows.map((r) => r.read()).filter((f) => f.property));
  const addRow = (f = { property: '', operator: '=', value: '' }) => {
    const prop = propertyInput(f.property, { 'aria-label': 'Filter property' });
    const op = select(OPERATORS, f.operator, { 'aria-label': 'Filter operator' });
    const val = h('input', { type: 'text', value: valueText(f.value), 'aria-label': 'Filter value', placeholder: 'value' });
    const syncVal = () => (val.hidden = op.value === 'is_set' || op.value === 'is_not_set');
    syncVal();
    const row = h('div', { class: 'filter-row' }, prop, op, val);
    const r = {
      read: () => {
        const out = { property: prop.value.trim(), operator: op.value };
        if (!val.hidden) out.value = typedValue(op.value, val.value);
        return out;
      },
    };
    const del = h('button', {
      type: 'button', class: 'icon', 'aria-label': 'Remove filter', title: 'Remove filter',
      onclick: () => {
        rows.splice(rows.indexOf(r), 1);
        row.remove();
        emit();
      },
    }, '×');
    row.appendChild(del);
    prop.addEventListener('change', emit);
    op.addEventListener('change', () => {
      syncVal();
      emit();
    });
    val.addEventListener('change', emit);
    rows.push(r);
    list.appendChild(row);
    return prop;
  };
  for (const f of filters || []) addRow(f);
  const add = h('button', { type: 'button', class: 'link', onclick: () => addRow().focus() }, '+ filter');
  return h('div', { class: 'field filter-field' }, h('span', { class: 'label' }, label), list, add);
}

export { field };

// The run() of a query page: builds the query, puts the page state in the
// URL, and renders the answer into `out`. The latest run wins; the previous
// result stays, dimmed, until the new one arrives; an error replaces it
// (unless handle(err) took care of it and returned true).
export function queryRunner(ctx, out, { state, build, render, before, handle }) {
  let runId = 0;
  const run = async () => {
    const id = ++runId;
    ctx.setState(state);
    ctx.busy();
    before?.();
    if (!out.firstChild) replace(out, loading());
    else out.classList.add('stale');
    try {
      const res = await query(build(state), ctx.signal);
      if (id !== runId) return;
      out.classList.remove('stale');
      render(res);
      ctx.done();
    } catch (err) {
      if (id !== runId) return;
      out.classList.remove('stale');
      if (handle?.(err)) return ctx.done();
      const box = ctx.fail(err, run);
      if (box) replace(out, box);
    }
  };
  return run;
}

// Binds form controls to the page state: on change, state[key] takes the
// control's value (read(el), by default its trimmed value) and run() runs.
// controls: {key: element} or {key: [element, read]}.
export function bind(state, run, controls) {
  for (const [key, c] of Object.entries(controls)) {
    const [el, read] = Array.isArray(c) ? c : [c, (e) => e.value.trim()];
    el.addEventListener('change', () => {
      state[key] = read(el);
      run();
    });
  }
}
