// Dates, ranges and the page's query state in the URL.

// The browser's IANA time zone: every query runs in it, so buckets and
// "today" are the viewer's.
export const TIMEZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

// YYYY-MM-DD of a Date in the browser's zone.
export function ymd(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

export function daysAgo(n) {
  const d = new Date();
  d.setDate(d.getDate() - n);
  return d;
}

export const RANGES = [
  ['today', 'Today'],
  ['yesterday', 'Yesterday'],
  ['7d', 'Last 7 days'],
  ['30d', 'Last 30 days'],
  ['90d', 'Last 90 days'],
  ['180d', 'Last 180 days'],
  ['365d', 'Last 12 months'],
];

// A range name ("30d", "today", or "2024-01-01..2024-03-31") as the query's
// date_from / date_to. "Last N days" includes today.
export function range(name) {
  const m = /^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$/.exec(name || '');
  if (m) return { date_from: m[1], date_to: m[2] };
  if (name === 'today') return { date_from: ymd(new Date()), date_to: ymd(new Date()) };
  if (name === 'yesterday') return { date_from: ymd(daysAgo(1)), date_to: ymd(daysAgo(1)) };
  const d = /^(\d+)d$/.exec(name || '');
  const n = d ? Math.max(1, Number(d[1])) : 30;
  return { date_from: ymd(daysAgo(n - 1)), date_to: ymd(new Date()) };
}

// Page state <-> the hash's query string. Values that are not strings
// (filters, steps) are stored as JSON, so a shared link rebuilds the same view.
export function encodeState(state) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    qs.set(k, typeof v === 'string' ? v : JSON.stringify(v));
  }
  return qs.toString();
}

// Reads the keys of `defaults` from params, typed like the defaults.
export function decodeState(params, defaults) {
  const out = { ...defaults };
  for (const [k, def] of Object.entries(defaults)) {
    if (!params.has(k)) continue;
    const raw = params.get(k);
    if (typeof def === 'string') out[k] = raw;
    else if (typeof def === 'boolean') out[k] = raw === 'true' || raw === '1';
    else if (typeof def === 'number') out[k] = Number.isFinite(Number(raw)) ? Number(raw) : def;
    else {
      try {
        out[k] = JSON.parse(raw);
      } catch {
        out[k] = def;
      }
    }
  }
  return out;
}

// Runs fn at most once per `ms` while called repeatedly (typing in a form).
export function debounce(fn, ms = 300) {
  let t;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}
