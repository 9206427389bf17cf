// Profiles: find a person by an identifier (email, user id, TYPE:VALUE) or by
// traits (plan=pro, address.city~Ly), and the profile page: identifiers,
// traits, computed traits, accounts, merge history and event timeline.
import { h, replace, card, loading, num, time, empty, table } from '../dom.js';
import { profile, findProfiles } from '../api.js';
import { decodeState } from '../util.js';

const ID_TYPES = ['user_id', 'anonymous_id', 'email', 'phone', 'userId', 'anonymousId', 'person'];
const CONDITION = /^[A-Za-z0-9_.$-]+\s*(=|!=|>=|<=|>|<|~)\s*.+$/;

// What the search box means: a list of `where` conditions, one identifier,
// or a bare value tried as a user id and then as an anonymous id.
export function parseSearch(text) {
  const t = text.trim();
  if (!t) return null;
  const typed = /^([A-Za-z_]+):(.+)$/.exec(t);
  if (typed && ID_TYPES.includes(typed[1])) return { ids: [`${typed[1]}:${typed[2]}`] };
  const parts = t.split(/\s+and\s+|\s*&\s*/i);
  if (parts.every((p) => CONDITION.test(p))) return { where: parts.map((p) => p.replace(/\s*(!=|>=|<=|=|>|<|~)\s*/, '$1')) };
  if (typed) return { ids: [t] }; // a configured identifier type
  if (t.includes('@')) return { ids: [`email:${t}`] };
  if (/^\+?[\d\s().-]{6,}$/.test(t)) return { ids: [`phone:${t}`, `user_id:${t}`] };
  return { ids: [`user_id:${t}`, `anonymous_id:${t}`] };
}

const idOf = (ids) => {
  const pick = ids.find((i) => i.type === 'user_id') ?? ids.find((i) => i.type === 'email') ?? ids[0];
  return pick ? `${pick.type}:${pick.value}` : null;
};
const profileLink = (id, text) => h('a', { href: `#/profiles/${encodeURIComponent(id)}` }, text ?? id);

async function search(out, ctx, text) {
  const what = parseSearch(text);
  if (!what) return replace(out, empty('Search by email, user id, TYPE:VALUE, or traits such as plan=pro.'));
  replace(out, loading('Searching'));
  if (what.ids) {
    for (const id of what.ids) {
      try {
        await profile(id, { limit: 1 });
        ctx.go(`#/profiles/${encodeURIComponent(id)}`);
        return;
      } catch (err) {
        if (err.status !== 404) throw err;
      }
    }
    replace(out, empty(`No profile has the identifier ${what.ids.join(' or ')}.`));
    return;
  }
  const res = await findProfiles(what.where, { limit: 50 });
  if (!res.profiles.length) return replace(out, empty('No profile matches.'));
  const traitNames = [...new Set(res.profiles.flatMap((p) => Object.keys(p.traits)))];
  replace(
    out,
    h('p', { class: 'muted' }, `${num(res.total, 0)} profiles match${res.total > res.profiles.length ? `; the first ${res.profiles.length}` : ''}.`),
    table(
      [
        { label: 'Person', value: (p) => profileLink(idOf(p.identifiers) ?? '', idOf(p.identifiers) ?? `person ${p.person}`) },
        { label: 'Identifiers', num: true, value: (p) => p.identifiers.length },
        ...traitNames.map((n) => ({ label: n, value: (p) => (p.traits[n] === undefined ? '–' : String(p.traits[n])) })),
      ],
      res.profiles,
      { class: 'search-results' },
    ),
  );
}

const traitRows = (traits) => Object.entries(traits || {}).map(([name, t]) => ({ name, ...t }));
const show = (v) => (v === null ? 'null' : typeof v === 'object' ? JSON.stringify(v) : typeof v === 'number' ? num(v) : String(v));

// "visit 3 · newsletter / email · /spring": the session the event belongs to
function sessionLabel(s) {
  if (!s) return null;
  const from = [s.source, s.medium].filter(Boolean).join(' / ') || s.channel;
  return [`visit ${s.number}`, from, s.landing_page].filter(Boolean).join(' · ');
}

function eventItem(e) {
  const props = Object.entries(e.properties || {});
  const visit = sessionLabel(e.session);
  return h('li', { class: 'event' },
    h('time', { datetime: e.timestamp }, time(e.timestamp)),
    h('strong', null, e.event),
    h('span', { class: 'props' },
      visit ? h('span', { class: 'visit', title: `session ${e.session.id}` }, visit) : null,
      props.length ? props.slice(0, 8).map(([k, v]) => `${k}=${show(v)}`).join(' · ') : null));
}

async function profilePage(main, ctx, id) {
  replace(main, h('h1', null, 'Profile'), loading());
  const p = await profile(id, { limit: 25 });
  const events = h('ol', { class: 'timeline' }, p.events.items.map(eventItem));
  const more = h('div');
  const older = (cursor) => {
    if (!cursor) return replace(more);
    const btn = h('button', { type: 'button', onclick: async () => {
      btn.disabled = true;
      try {
        const page = await profile(id, { limit: 50, before: cursor });
        for (const e of page.events.items) events.appendChild(eventItem(e));
        older(page.events.next_before);
      } catch (err) {
        replace(more, ctx.fail(err) ?? '');
      }
    } }, 'Older events');
    replace(more, btn);
  };
  older(p.events.next_before);
  const c = p.computed || {};
  replace(
    main,
    h('p', null, h('a', { href: '#/profiles' }, '← Search')),
    h('h1', null, id),
    h('div', { class: 'kpis' },
      h('div', { class: 'kpi' }, h('span', { class: 'kpi-label' }, 'Events'), h('span', { class: 'kpi-value' }, num(c.event_count, 0))),
      h('div', { class: 'kpi' }, h('span', { class: 'kpi-label' }, 'Orders'), h('span', { class: 'kpi-value' }, num(c.order_count, 0))),
      h('div', { class: 'kpi' }, h('span', { class: 'kpi-label' }, 'Lifetime revenue'), h('span', { class: 'kpi-value' }, num(c.lifetime_revenue))),
      h('div', { class: 'kpi' }, h('span', { class: 'kpi-label' }, 'Last seen'), h('span', { class: 'kpi-value small' }, time(c.last_seen)))),
    h('div', { class: 'grid2' },
      card('Identifiers', table([{ label: 'Type', value: (i) => i.type }, { label: 'Value', value: (i) => i.value }], p.identifiers, { class: 'identifiers' })),
      card('Computed traits', table([{ label: 'Name', value: (r) => r[0] }, { label: 'Value', value: (r) => (r[0].endsWith('_seen') ? time(r[1]) : show(r[1])) }], Object.entries(c)))),
    card('Traits', traitRows(p.traits).length
      ? table([{ label: 'Trait', value: (t) => t.name }, { label: 'Value', value: (t) => show(t.value) }, { label: 'Updated', value: (t) => time(t.updated) }], traitRows(p.traits), { class: 'traits' })
      : empty('No traits: this person never sent an identify call.')),
    p.accounts?.length
      ? card('Accounts', p.accounts.map((a) => h('div', { class: 'account' }, h('h3', null, a.group_id, h('small', null, ` ${a.group_calls} group calls`)),
        table([{ label: 'Trait', value: (t) => t.name }, { label: 'Value', value: (t) => show(t.value) }], traitRows(a.traits)))))
      : null,
    card('Merge history', p.merges?.length
      ? table([
        { label: 'When', value: (m) => time(m.at) },
        { label: 'What', value: (m) => m.kind },
        { label: 'Kept', value: (m) => m.kept },
        { label: 'Merged or left out', value: (m) => m.merged ?? `${m.left_out} (limit: ${m.limit})` },
      ], p.merges)
      : empty('No merges: every identifier joined this person directly.')),
    card('Events', p.truncated ? h('p', { class: 'muted' }, 'This person has over 2,000,000 events; the profile is computed from the first 2,000,000 found.') : null,
      p.events.items.length ? events : empty('No events yet.'), more),
  );
}

export default {
  title: 'Profiles',
  async render(main, ctx) {
    if (ctx.rest) {
      await profilePage(main, ctx, ctx.rest);
      ctx.done();
      return;
    }
    const st = decodeState(ctx.params, { q: '' });
    const input = h('input', { id: 'profile-search', type: 'search', value: st.q, placeholder: 'ann@example.com, user-42, plan=pro and employees>=50', autocomplete: 'off', spellcheck: 'false' });
    const out = h('div', { class: 'result', 'aria-live': 'polite' });
    const run = async () => {
      st.q = input.value;
      ctx.setState(st);
      try {
        await search(out, ctx, st.q);
        ctx.done();
      } catch (err) {
        const box = ctx.fail(err, run);
        if (box) replace(out, box);
      }
    };
    const form = h('form', { class: 'query-form search', role: 'search', onsubmit: (e) => (e.preventDefault(), run()) },
      h('div', { class: 'field' }, h('label', { for: 'profile-search' }, 'Find a profile'), h('div', { class: 'row' }, input, h('button', { type: 'submit', class: 'primary' }, 'Search'))),
      h('small', null, 'An email, a user id, TYPE:VALUE (user_id, anonymous_id, email, phone...), or trait conditions: NAME OP VALUE with = != > >= < <= ~ (contains), joined by "and".'));
    replace(main, h('h1', null, 'Profiles'), card(null, form), card(null, out));
    input.focus();
    if (st.q) await run();
    else {
      replace(out, empty('Search by email, user id, TYPE:VALUE, or traits such as plan=pro.'));
      ctx.done();
    }
  },
};
