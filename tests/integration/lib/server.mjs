// Helpers for the integration suite: run the real tandem binary on 127.0.0.1,
// drive its CLI, and clean every child process up whatever happens.
//
// Every wait here is bounded (startup 10 s, stop 10 s, CLI 20 s, HTTP 10 s) so a
// hung server fails a test instead of hanging the run. Children are tracked in
// one set and SIGKILLed when the test process exits, even after a failed test.
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, readFile, readdir, open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '../../..');
export const TANDEM_BIN = process.env.TANDEM_BIN
  ? path.resolve(process.env.TANDEM_BIN)
  : path.join(REPO, 'build/tandem');

export const START_TIMEOUT_MS = 10_000;
export const STOP_TIMEOUT_MS = 10_000;
export const CLI_TIMEOUT_MS = 20_000;
export const HTTP_TIMEOUT_MS = 10_000;

const OUTPUT_CAP = 1 << 20; // bytes of a child's stdout/stderr kept for diagnostics

// ---------------------------------------------------------------------------
// Child-process bookkeeping

const children = new Set();
const tempDirs = new Set();

function killAllChildren() {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

process.on('exit', killAllChildren);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    killAllChildren();
    process.exit(130);
  });
}

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.once('close', () => (child.tandemClosed = true));
  return child;
}

// A sanitizer report in a child's stderr (ASan/UBSan builds: `make asan`).
const SANITIZER_RE = /ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error: |SUMMARY: UndefinedBehaviorSanitizer/;
export function sanitizerReport(stderr) {
  const m = SANITIZER_RE.exec(stderr);
  return m ? stderr.slice(Math.max(0, m.index - 200), m.index + 6000) : null;
}

function appendCapped(prev, chunk) {
  const s = prev + chunk;
  return s.length > OUTPUT_CAP ? s.slice(s.length - OUTPUT_CAP) : s;
}

// Resolves true once the child exited and its pipes closed (so all of its
// output was read), false after `ms`.
function waitForExit(child, ms) {
  if (child.tandemClosed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('close', onClose);
      resolve(false);
    }, ms);
    const onClose = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('close', onClose);
  });
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Temporary data directories

// Returns the path of a data directory that does not exist yet (its parent is
// a fresh temp dir), so the server or CLI creates it and sets its mode.
// Removed by cleanupTempDirs() / the `t.after` hook when `t` is given.
export async function makeDataDir(t) {
  const parent = await mkdtemp(path.join(tmpdir(), 'tandem-it-'));
  tempDirs.add(parent);
  if (t) t.after(() => removeTempDir(parent));
  return path.join(parent, 'data');
}

async function removeTempDir(dir) {
  tempDirs.delete(dir);
  if (process.env.TANDEM_KEEP_DATA) return;
  await rm(dir, { recursive: true, force: true });
}

export async function cleanupTempDirs() {
  await Promise.all([...tempDirs].map(removeTempDir));
}

// ---------------------------------------------------------------------------
// The server

export class TandemServer {
  constructor(dataDir, args = []) {
    this.dataDir = dataDir;
    this.args = args;
    this.child = null;
    this.stdout = ''; // everything the current process printed
    this.stderr = '';
    this.url = null;
    this.port = null;
    this.starts = 0;
  }

  get pid() {
    return this.child ? this.child.pid : null;
  }

  get running() {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  // Starts `tandem serve` and resolves when it printed its "listening on" line.
  async start() {
    if (this.running) throw new Error('server already running');
    const argv = ['serve', '--data', this.dataDir, '--listen', '127.0.0.1:0', ...this.args];
    this.stdout = '';
    this.stderr = '';
    this.url = null;
    this.port = null;
    const child = track(
      spawn(TANDEM_BIN, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } }),
    );
    this.child = child;
    this.starts++;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    // Keep draining both pipes for the whole life of the process: a full pipe
    // would block the server.
    child.stderr.on('data', (d) => {
      this.stderr = appendCapped(this.stderr, d);
    });

    await new Promise((resolve, reject) => {
      let settled = false;
      let pending = '';
      const finish = (err) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        finish(
          new Error(
            `tandem serve did not print "listening on" within ${START_TIMEOUT_MS} ms\n` +
              this.describe(),
          ),
        );
      }, START_TIMEOUT_MS);
      child.stdout.on('data', (d) => {
        this.stdout = appendCapped(this.stdout, d);
        if (settled) return;
        pending += d;
        let nl;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl).replace(/\r$/, '');
          pending = pending.slice(nl + 1);
          const m = /^listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
          if (m) {
            this.url = m[1];
            this.port = Number(m[2]);
            finish();
            return;
          }
        }
      });
      child.once('error', (err) => finish(new Error(`cannot run ${TANDEM_BIN}: ${err.message}`)));
      child.once('exit', (code, signal) =>
        finish(
          new Error(
            `tandem serve exited (code ${code}, signal ${signal}) before listening\n` +
              this.describe(),
          ),
        ),
      );
    });
    return this;
  }

  describe() {
    return (
      `  command: ${TANDEM_BIN} serve --data ${this.dataDir} --listen 127.0.0.1:0 ${this.args.join(' ')}\n` +
      `  stdout: ${this.stdout.slice(-2000)}\n  stderr: ${this.stderr.slice(-4000)}`
    );
  }

  // SIGTERM, wait up to STOP_TIMEOUT_MS, then SIGKILL. Resolves to
  // { code, signal, clean } where clean means it exited by itself in time.
  async stop() {
    const child = this.child;
    if (!child) return { code: null, signal: null, clean: true };
    if (!this.running) return { code: child.exitCode, signal: child.signalCode, clean: true };
    child.kill('SIGTERM');
    let clean = await waitForExit(child, STOP_TIMEOUT_MS);
    if (!clean) {
      child.kill('SIGKILL');
      await waitForExit(child, STOP_TIMEOUT_MS);
    }
    const report = sanitizerReport(this.stderr);
    if (report) throw new Error(`tandem serve reported a sanitizer error:\n${report}`);
    return { code: child.exitCode, signal: child.signalCode, clean };
  }

  // kill -9: no chance to flush anything that was not already durable.
  async kill9() {
    const child = this.child;
    if (!child || !this.running) return;
    child.kill('SIGKILL');
    await waitForExit(child, STOP_TIMEOUT_MS);
  }

  async restart() {
    await this.stop();
    return this.start();
  }

  // HTTP helpers bound to this server.
  request(p, opts) {
    return request(this.url + p, opts);
  }

  post(p, body, opts = {}) {
    return request(this.url + p, { ...opts, method: 'POST', body });
  }

  get(p, opts = {}) {
    return request(this.url + p, { ...opts, method: 'GET' });
  }
}

// Starts a server on dataDir (a fresh one when omitted) and registers its
// shutdown with t.after (t may be a test context or omitted).
export async function startServer(t, { dataDir, args = [] } = {}) {
  const dir = dataDir ?? (await makeDataDir(t));
  const server = new TandemServer(dir, args);
  if (t) t.after(() => server.stop());
  await server.start();
  return server;
}

// ---------------------------------------------------------------------------
// CLI

// Runs `tandem ARGS...`; resolves to { code, signal, stdout, stderr }. Never
// rejects for a non-zero exit; SIGKILLs the command after `timeout` ms.
// `input` (a string or Buffer) is written to its stdin, else stdin is empty.
export function runCli(args, { timeout = CLI_TIMEOUT_MS, env, maxOutput = OUTPUT_CAP, input } = {}) {
  return new Promise((resolve, reject) => {
    const child = track(
      spawn(TANDEM_BIN, args, {
        stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        env: { ...process.env, ...env },
      }),
    );
    if (input !== undefined) {
      child.stdin.on('error', () => {}); // the command may exit before reading it all
      child.stdin.end(input);
    }
    // stdout is kept whole up to maxOutput bytes (export prints every event),
    // then the command fails rather than returning a silently cut listing.
    const outChunks = [];
    let outBytes = 0;
    let overflow = false;
    let stderr = '';
    let timedOut = false;
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      outBytes += d.length;
      if (outBytes > maxOutput) {
        if (!overflow) child.kill('SIGKILL');
        overflow = true;
        return;
      }
      outChunks.push(d);
    });
    child.stderr.on('data', (d) => (stderr = appendCapped(stderr, d)));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeout);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${TANDEM_BIN}: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(outChunks).toString('utf8');
      if (overflow) {
        reject(new Error(`tandem ${args.join(' ')} printed more than ${maxOutput} bytes`));
        return;
      }
      const report = sanitizerReport(stderr);
      if (report) {
        reject(new Error(`tandem ${args.join(' ')} reported a sanitizer error:\n${report}`));
        return;
      }
      if (timedOut) {
        reject(
          new Error(
            `tandem ${args.join(' ')} did not finish within ${timeout} ms\nstdout: ${stdout.slice(0, 2000)}\nstderr: ${stderr}`,
          ),
        );
        return;
      }
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// Like runCli but fails (throws) unless the command exits 0.
export async function cli(args, opts) {
  const r = await runCli(args, opts);
  if (r.code !== 0) {
    throw new Error(
      `tandem ${args.join(' ')} exited ${r.code} (signal ${r.signal})\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr}`,
    );
  }
  return r;
}

export const WRITE_KEY_RE = /^wk_[0-9a-f]{32}$/;

// `tandem source create NAME`: returns the write key it printed.
export async function createSource(dataDir, name) {
  const { stdout } = await cli(['source', 'create', name, '--data', dataDir]);
  const key = stdout.trim();
  if (!WRITE_KEY_RE.test(key)) {
    throw new Error(`source create printed ${JSON.stringify(stdout)}, expected only a write key`);
  }
  return key;
}

// `tandem export events`: every stored event as parsed objects, in order.
export async function exportEvents(dataDir) {
  const { stdout } = await cli(['export', 'events', '--data', dataDir, '--format', 'ndjson'], {
    timeout: 60_000,
    maxOutput: 400 << 20,
  });
  const events = [];
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    try {
      events.push(JSON.parse(line));
    } catch (err) {
      throw new Error(`export printed a line that is not JSON: ${line.slice(0, 300)}`);
    }
  }
  return events;
}

// `tandem export events` into FILE (for exports too big to hold as one
// string), then calls onEvent(parsedEvent) for each line. Resolves to the
// number of events.
export async function exportEventsStreaming(dataDir, file, onEvent, { timeout = 120_000 } = {}) {
  const fd = await open(file, 'w');
  let stderr = '';
  try {
    await new Promise((resolve, reject) => {
      const child = track(
        spawn(TANDEM_BIN, ['export', 'events', '--data', dataDir, '--format', 'ndjson'], {
          stdio: ['ignore', fd.fd, 'pipe'],
        }),
      );
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (d) => (stderr = appendCapped(stderr, d)));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`tandem export events exited ${code} (signal ${signal}): ${stderr}`));
      });
    });
  } finally {
    await fd.close();
  }
  let n = 0;
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of rl) {
    if (line.trim() === '') continue;
    let ev;
    try {
      ev = JSON.parse(line);
    } catch {
      throw new Error(`export printed a line that is not JSON: ${line.slice(0, 300)}`);
    }
    n++;
    onEvent(ev);
  }
  return n;
}

// ---------------------------------------------------------------------------
// HTTP

export function basicAuth(key) {
  return 'Basic ' + Buffer.from(key + ':').toString('base64');
}

// A fresh data directory with a source, and a server on it: resolves to
// { dir, key, srv, token } (token: the admin token the first serve saved).
export async function startWithSource(name = 'web') {
  const dir = await makeDataDir();
  const key = await createSource(dir, name);
  const srv = await startServer(null, { dataDir: dir });
  const token = (await readFile(path.join(dir, 'admin-token'), 'utf8')).trim();
  return { dir, key, srv, token };
}

// fetch with a timeout; `body` objects are sent as JSON. Options: key (Basic
// auth), gzip (compress the body), contentType, headers. Resolves to
// { status, headers, text, json } where json is null when the body is not JSON.
export async function request(url, opts = {}) {
  const { method = 'GET', key, gzip = false, contentType, timeout = HTTP_TIMEOUT_MS } = opts;
  const headers = { ...(opts.headers ?? {}) };
  let body = opts.body;
  if (body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body)) {
    body = JSON.stringify(body);
  }
  if (body !== undefined) headers['Content-Type'] = contentType ?? 'application/json';
  if (gzip && body !== undefined) {
    body = gzipSync(Buffer.from(body));
    headers['Content-Encoding'] = 'gzip';
  }
  if (key) headers['Authorization'] = basicAuth(key);
  const res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(timeout) });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.status, headers: res.headers, text, json };
}

// Polls fn() every `interval` ms until it returns a truthy value or `ms` pass;
// returns the last value.
export async function waitFor(fn, { ms = 3000, interval = 100 } = {}) {
  const deadline = Date.now() + ms;
  let v;
  for (;;) {
    v = await fn();
    if (v || Date.now() >= deadline) return v;
    await sleep(interval);
  }
}

// ---------------------------------------------------------------------------
// Misc

let idCounter = 0;
// A messageId unique across this run: prefix-pid-time-counter.
export function uid(prefix = 'm') {
  idCounter++;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${idCounter}`;
}

// All lines of DIR/quarantine/*.ndjson as { file, text } objects.
export async function quarantineLines(dataDir) {
  const dir = path.join(dataDir, 'quarantine');
  let names;
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out = [];
  for (const name of names.filter((n) => n.endsWith('.ndjson')).sort()) {
    const text = await readFile(path.join(dir, name), 'utf8');
    for (const line of text.split('\n')) if (line.trim()) out.push({ file: name, text: line });
  }
  return out;
}

// Reads a Prometheus text exposition into a map "name{labels}" -> number.
export function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}
