// Building DOM nodes and formatting numbers and times. Nodes are made with
// createElement and textContent only (never innerHTML), so data from the
// server can never become markup, and the page needs no inline script or
// style attribute (the Content-Security-Policy forbids both).

// h('div', {class: 'x', onclick: f}, child, [children], 'text')
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'value') el.value = v;
      else if (k === 'checked') el.checked = !!v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// A labelled form control: field('Event', select).
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hint ? h('small', null, hint) : null);
}

export function select(options, value, attrs = {}) {
  const el = h('select', attrs);
  for (const o of options) {
    const [v, label] = Array.isArray(o) ? o : [o, o];
    el.appendChild(h('option', { value: v }, label));
  }
  if (value !== undefined && value !== null) el.value = value;
  return el;
}

const nf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const nf0 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

export function num(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (typeof v !== 'number') return String(v);
  if (digits === 0) return nf0.format(v);
  return nf.format(v);
}

export function pct(v) {
  return v === null || v === undefined ? '–' : `${nf.format(Math.round(v * 10) / 10)} %`;
}

export function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${nf.format(i ? Math.round(n * 10) / 10 : n)} ${units[i]}`;
}

export function duration(ms) {
  if (ms === null || ms === undefined) return '–';
  const s = ms / 1000;
  if (s < 60) return `${nf.format(Math.round(s * 10) / 10)} s`;
  if (s < 3600) return `${nf.format(Math.round(s / 6) / 10)} min`;
  if (s < 86400) return `${nf.format(Math.round(s / 360) / 10)} h`;
  return `${nf.format(Math.round(s / 8640) / 10)} d`;
}

const dtf = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

// An ISO time from the server, shown in the browser's zone.
export function time(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : dtf.format(d);
}

export function ago(iso) {
  if (!iso) return 'never';
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  if (s < 0) return time(iso);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

// A table from column definitions [{label, value: row => x, num: bool}].
export function table(columns, rows, attrs = {}) {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      attrs,
      h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)))),
      h(
        'tbody',
        null,
        rows.map((r) =>
          h(
            'tr',
            null,
            columns.map((c) => {
              const v = c.value(r);
              return h('td', { class: c.num ? 'num' : null }, v instanceof Node ? v : c.num ? num(v) : v ?? '–');
            }),
          ),
        ),
      ),
    ),
  );
}

// Loading, error and empty states, the same on every page.
export function loading(what = 'Loading') {
  return h('p', { class: 'state loading', role: 'status' }, `${what}…`);
}

export function errorBox(err, retry) {
  return h(
    'div',
    { class: 'state error', role: 'alert' },
    h('strong', null, err.title || 'Something went wrong'),
    h('p', null, err.message || String(err)),
    retry ? h('button', { type: 'button', onclick: retry }, 'Try again') : null,
  );
}

export function empty(text) {
  return h('p', { class: 'state empty' }, text);
}

export function card(title, ...body) {
  return h('section', { class: 'card' }, title ? h('h2', null, title) : null, ...body);
}
