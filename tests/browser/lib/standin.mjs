// A stand-in for the dashboard half of `tandem serve` (static files from
// web/ and the /api/session endpoints), used by dashboard.test.mjs only while
// the binary under test does not serve the dashboard itself (GET / is not
// its page). Everything else is forwarded to the real tandem unchanged, with
// the signed-in session's token as its bearer token. Once the binary serves
// the dashboard, the tests talk to it directly and this file is not used.
import { createServer, request as httpRequest } from 'node:http';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
};

// The page's headers as the dashboard contract (docs/dashboard.md) sets them.
export const PAGE_HEADERS = {
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'same-origin',
  'X-Frame-Options': 'DENY',
};

function cookieOf(req) {
  const m = /(?:^|;\s*)tandem_session=([^;]+)/.exec(req.headers.cookie ?? '');
  return m ? m[1] : null;
}

// Serves webDir and forwards to tandemUrl; resolves to its URL. Closed by
// t.after.
export async function startStandin(t, { webDir, tandemUrl }) {
  const sessions = new Map(); // id -> { token, role, expires }
  const json = (res, status, body, headers = {}) => {
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(body === undefined ? '' : JSON.stringify(body));
  };
  const unauthorized = (res) => json(res, 401, { success: false, code: 'unauthorized', error: 'not signed in' });

  async function session(req, res, body) {
    const id = cookieOf(req);
    if (req.method === 'GET') {
      const s = id && sessions.get(id);
      return s ? json(res, 200, { role: s.role, expires: s.expires }) : unauthorized(res);
    }
    if (req.method === 'DELETE') {
      if (id) sessions.delete(id);
      res.writeHead(204, { 'Set-Cookie': 'tandem_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0' });
      return res.end();
    }
    let token = '';
    try {
      token = String(JSON.parse(body).token ?? '');
    } catch {
      return json(res, 400, { success: false, code: 'invalid_request', error: 'body: {"token": "..."}' });
    }
    // The token is good when tandem accepts it for a query.
    const check = await fetch(`${tandemUrl}/api/query`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}` },
      body: '{"kind":"events","limit":1}',
    });
    await check.arrayBuffer();
    if (check.status !== 200) return json(res, 401, { success: false, code: 'unauthorized', error: 'unknown or revoked API token' });
    const sid = randomBytes(32).toString('hex');
    const expires = new Date(Date.now() + 43200e3).toISOString();
    sessions.set(sid, { token, role: 'admin', expires });
    return json(res, 200, { role: 'admin', expires }, {
      'Set-Cookie': `tandem_session=${sid}; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200`,
    });
  }

  function forward(req, res, body) {
    const s = sessions.get(cookieOf(req) ?? '');
    if (!s) return unauthorized(res);
    const headers = { ...req.headers, authorization: `Bearer ${s.token}` };
    delete headers.cookie;
    delete headers.host;
    const up = httpRequest(`${tandemUrl}${req.url}`, { method: req.method, headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', (err) => json(res, 502, { success: false, code: 'bad_gateway', error: err.message }));
    up.end(body);
  }

  // As the build embeds them: web/ as it is, and uPlot's browser files from
  // web/node_modules/uplot/dist as /assets/vendor/.
  async function file(req, res) {
    const url = new URL(req.url, 'http://x');
    let rel = url.pathname === '/' || !url.pathname.startsWith('/assets/') ? 'index.html' : url.pathname.slice(1);
    rel = path.normalize(rel);
    if (rel.startsWith('..')) return json(res, 404, { success: false, code: 'not_found', error: 'not found' });
    const vendor = /^assets\/vendor\/([^/]+)$/.exec(rel);
    try {
      const data = await readFile(vendor ? path.join(webDir, 'node_modules/uplot/dist', vendor[1]) : path.join(webDir, rel));
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(rel)] ?? 'application/octet-stream', 'Cache-Control': 'no-cache', ...PAGE_HEADERS });
      res.end(data);
    } catch {
      json(res, 404, { success: false, code: 'not_found', error: `no file ${rel}` });
    }
  }

  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const p = req.url.split('?')[0];
      const done = p === '/api/session' ? session(req, res, body.toString())
        : p.startsWith('/api/') ? forward(req, res, body)
          : file(req, res);
      Promise.resolve(done).catch((err) => json(res, 500, { success: false, code: 'internal', error: String(err) }));
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  t.after(() => new Promise((resolve) => {
    server.closeAllConnections?.();
    server.close(() => resolve());
  }));
  return `http://127.0.0.1:${server.address().port}`;
}
