// The dashboard's entry point: the session, the navigation and the router.
// Routes live in the hash (#/trends?series=...), so every view is a link
// that can be shared and needs nothing from the server but index.html.
import { h, replace, errorBox, loading } from './dom.js';
import { session, onSignedOut, query, ApiError } from './api.js';
import { encodeState } from './util.js';
import signin from './pages/signin.js';
import overview from './pages/overview.js';
import trends from './pages/trends.js';
import funnels from './pages/funnels.js';
import retention from './pages/retention.js';
import paths from './pages/paths.js';
import attribution from './pages/attribution.js';
import profiles from './pages/profiles.js';
import health from './pages/health.js';
import sources from './pages/sources.js';

const PAGES = { overview, trends, funnels, retention, paths, attribution, profiles, health, sources };

const app = document.getElementById('app');
const main = document.getElementById('main');
const signinEl = document.getElementById('signin');
const nav = document.getElementById('nav');
const menuToggle = document.getElementById('menu-toggle');

let current = null; // { name, controller, cleanup }
let signedIn = false;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const pathPart = q < 0 ? raw : raw.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
  const [name, ...rest] = pathPart.split('/');
  return { name: name || 'overview', rest: rest.map(decodeURIComponent).join('/'), params };
}

// Leaves the current page: aborts its requests, stops its timers.
function leave() {
  if (!current) return;
  current.controller.abort();
  for (const fn of current.cleanups) {
    try {
      fn();
    } catch {
      // a page's cleanup never stops navigation
    }
  }
  current = null;
}

let visits = 0; // main's data-visit: which page visit its state belongs to

function route() {
  if (!signedIn) return;
  const { name, rest, params } = parseHash();
  const page = PAGES[name];
  leave();
  nav.classList.remove('open');
  menuToggle.setAttribute('aria-expanded', 'false');
  for (const a of nav.querySelectorAll('a')) {
    if (a.dataset.page === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!page) {
    replace(main, errorBox({ title: 'No such page', message: `There is no page "${name}".` }));
    return;
  }
  const controller = new AbortController();
  const cleanups = [];
  const startMark = `tandem:${name}:start:${performance.now()}`;
  performance.mark(startMark);
  let measured = false;
  const ctx = {
    name,
    rest,
    params,
    signal: controller.signal,
    onLeave: (fn) => cleanups.push(fn),
    // The page's data is on screen: measured once per visit of a page
    // ("tandem:page:NAME" in the Performance timeline; the browser tests
    // read it).
    done() {
      if (controller.signal.aborted) return;
      main.dataset.state = 'ready';
      if (measured) return;
      measured = true;
      performance.measure(`tandem:page:${name}`, startMark);
    },
    fail(err, retry) {
      if (controller.signal.aborted || err?.name === 'AbortError') return null;
      main.dataset.state = 'error';
      return errorBox(err, retry);
    },
    // (A page left behind keeps no say: its late runs must not mark the
    // current page as loading, nor put their state into its URL.)
    busy() {
      if (controller.signal.aborted) return;
      main.dataset.state = 'loading';
    },
    // Puts the page's state into the URL without reloading the page.
    setState(state, subpath) {
      if (controller.signal.aborted) return;
      const qs = encodeState(state);
      const path = `#/${name}${subpath ? '/' + subpath : ''}${qs ? '?' + qs : ''}`;
      if (location.hash !== path) history.replaceState(null, '', path);
    },
    go(hash) {
      location.hash = hash;
    },
  };
  current = { name, controller, cleanups };
  main.dataset.state = 'loading';
  main.dataset.page = name;
  main.dataset.visit = String(++visits);
  document.title = `${page.title} · tandem`;
  replace(main, loading());
  Promise.resolve()
    .then(() => page.render(main, ctx))
    .catch((err) => {
      const box = ctx.fail(err, route);
      if (box) replace(main, box);
    });
}

function showSignin(message) {
  signedIn = false;
  leave();
  app.hidden = true;
  signinEl.hidden = false;
  document.title = 'Sign in · tandem';
  signin.render(signinEl, { message, onSignedIn: start });
}

// Signed in: show the dashboard and find out what the server offers.
function start(info) {
  signedIn = true;
  signinEl.hidden = true;
  replace(signinEl);
  app.hidden = false;
  document.getElementById('whoami').textContent = info?.role ? `signed in (${info.role})` : '';
  route();
  main.focus({ preventScroll: true });
  showOptionalPages(info);
}

// The Attribution page appears when the server answers `attribution`
// queries: the session names the query kinds it knows.
function showOptionalPages(info) {
  const link = nav.querySelector('[data-page="attribution"]');
  link.hidden = !(info?.query_kinds ?? []).includes('attribution');
}

async function signOut() {
  try {
    await session.remove();
  } catch {
    // signed out on this side whatever the server said
  }
  showSignin('Signed out.');
}

menuToggle.addEventListener('click', () => {
  const open = !nav.classList.contains('open');
  nav.classList.toggle('open', open);
  menuToggle.setAttribute('aria-expanded', String(open));
});
document.getElementById('signout').addEventListener('click', signOut);
// The skip link moves the focus without touching the hash (the router's).
document.querySelector('.skip').addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});
window.addEventListener('hashchange', route);
onSignedOut(() => showSignin('Your session has ended; sign in again.'));

(async () => {
  replace(signinEl, loading('Starting'));
  try {
    start(await session.get());
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) showSignin();
    else {
      signinEl.hidden = false;
      replace(signinEl, h('div', { class: 'signin-box' }, errorBox(err, () => location.reload())));
    }
  }
})();
