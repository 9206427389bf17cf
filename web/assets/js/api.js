// The only place that talks to the server: the documented /api/ endpoints,
// with the session cookie (sent by the browser; the page never sees the token
// after signing in). Errors become ApiError with the server's code and
// message ({"success": false, "code", "error"}).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
    this.title =
      status === 0
        ? 'The server cannot be reached'
        : status === 401
          ? 'Not signed in'
          : status === 404 && code === 'not_found'
            ? 'Not found'
            : status >= 500
              ? `The server answered ${status}`
              : 'The server refused the request';
  }
}

const listeners = new Set();
// fn() is called when any request answers 401: the session has ended.
export function onSignedOut(fn) {
  listeners.add(fn);
}

export async function api(path, { method = 'GET', body, signal, quiet401 = false } = {}) {
  const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' }, signal };
  if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers['Content-Type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network', `${method} ${path}: ${err.message}`);
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const code = json?.code ?? 'http_' + res.status;
    const msg = json?.error ?? `${method} ${path} answered ${res.status}`;
    if (res.status === 401 && !quiet401) for (const fn of listeners) fn();
    throw new ApiError(res.status, code, msg);
  }
  return json;
}

export const query = (q, signal) => api('/api/query', { method: 'POST', body: q, signal });

export const session = {
  get: () => api('/api/session', { quiet401: true }),
  create: (token) => api('/api/session', { method: 'POST', body: { token }, quiet401: true }),
  remove: () => api('/api/session', { method: 'DELETE', quiet401: true }),
};

export const profile = (id, params = {}) => {
  const qs = new URLSearchParams(params).toString();
  return api(`/api/profiles/${encodeURIComponent(id).replace(/%3A/i, ':')}${qs ? '?' + qs : ''}`);
};

export const findProfiles = (conditions, params = {}) => {
  const qs = new URLSearchParams(params);
  for (const c of conditions) qs.append('where', c);
  return api(`/api/profiles?${qs}`);
};

export const sources = {
  list: () => api('/api/sources'),
  create: (name) => api('/api/sources', { method: 'POST', body: { name } }),
};

export const liveStats = (minutes = 60) => api(`/api/stats/live?minutes=${minutes}`);
export const dataHealth = (hours = 24) => api(`/api/health/data?hours=${hours}`);
