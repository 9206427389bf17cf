// Sources: the list (GET /api/sources), a form to create one, and for each its
// write key with install snippets pointing at this server.
import { h, replace, card, time, ago, empty, table } from '../dom.js';
import { sources } from '../api.js';

function copyButton(text, label) {
  const btn = h('button', { type: 'button', class: 'small', 'aria-label': label }, 'Copy');
  btn.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      btn.textContent = 'Copied';
    } catch {
      btn.textContent = 'Select and copy';
    }
    setTimeout(() => (btn.textContent = 'Copy'), 1500);
  });
  return btn;
}

// Install snippets for a write key, all pointing at the origin the dashboard
// is served from (the collector is on the same server).
export function snippets(key, origin = location.origin) {
  const host = new URL(origin).host;
  return [
    ['Website (analytics.js)', `// npm install @segment/analytics-next
import { AnalyticsBrowser } from '@segment/analytics-next'

// Settings come from tandem, which sends the events to ${host}/v1
export const analytics = AnalyticsBrowser.load({ writeKey: '${key}', cdnURL: '${origin}' })
analytics.page()`],
    ['Node.js (@segment/analytics-node)', `import { Analytics } from '@segment/analytics-node'

const analytics = new Analytics({ writeKey: '${key}', host: '${origin}' })
analytics.track({ userId: 'user-1', event: 'Order Completed', properties: { revenue: 42 } })`],
    ['curl', `curl -u '${key}:' -H 'Content-Type: application/json' \\
  -d '{"userId":"user-1","event":"Order Completed","properties":{"revenue":42}}' \\
  ${origin}/v1/track`],
  ];
}

function sourceDetail(s) {
  return h('section', { class: 'source', dataset: { source: s.name } },
    h('h3', null, s.name, s.enabled ? null : h('small', { class: 'badge' }, ' disabled')),
    h('dl', { class: 'facts' },
      h('dt', null, 'Write key'), h('dd', null, h('code', { class: 'write-key' }, s.write_key), ' ', copyButton(s.write_key, `Copy the write key of ${s.name}`)),
      h('dt', null, 'Created'), h('dd', null, time(s.created)),
      h('dt', null, 'Last event'), h('dd', null, s.last_event ? `${ago(s.last_event)} (${time(s.last_event)})` : 'none yet')),
    snippets(s.write_key).map(([title, code]) => h('details', { class: 'snippet' },
      h('summary', null, title),
      h('pre', null, h('code', null, code)),
      copyButton(code, `Copy the ${title} snippet`))));
}

export default {
  title: 'Sources',
  async render(main, ctx) {
    const list = h('div');
    const detail = h('div');
    const name = h('input', { id: 'source-name', type: 'text', required: true, placeholder: 'website', autocomplete: 'off', spellcheck: 'false', pattern: '[A-Za-z0-9_.-]{1,64}' });
    const status = h('p', { class: 'form-status', role: 'status' });
    const draw = async (select) => {
      const res = await sources.list();
      if (!res.sources.length) {
        replace(list, empty('No sources yet: create one to get a write key.'));
        replace(detail);
        return;
      }
      replace(list, table([
        { label: 'Source', value: (s) => h('a', { href: `#/sources/${encodeURIComponent(s.name)}` }, s.name) },
        { label: 'Status', value: (s) => (s.enabled ? 'enabled' : 'disabled') },
        { label: 'Last event', value: (s) => ago(s.last_event) },
      ], res.sources, { class: 'sources' }));
      const chosen = res.sources.find((s) => s.name === (select || ctx.rest)) ?? res.sources[0];
      replace(detail, sourceDetail(chosen));
    };
    const form = h('form', { class: 'query-form', novalidate: true },
      h('div', { class: 'field' }, h('label', { for: 'source-name' }, 'New source'),
        h('div', { class: 'row' }, name, h('button', { type: 'submit', class: 'primary' }, 'Create'))),
      h('small', null, 'A name for where events come from (website, ios-app, crm): letters, digits, - _ .'),
      status);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const n = name.value.trim();
      if (!n) {
        status.textContent = 'Enter a name.';
        status.className = 'form-status error';
        name.focus();
        return;
      }
      status.textContent = 'Creating…';
      status.className = 'form-status';
      try {
        const s = await sources.create(n);
        status.textContent = `Source ${s.name} created.`;
        name.value = '';
        await draw(s.name);
        ctx.setState({}, encodeURIComponent(s.name));
        detail.querySelector('.write-key')?.focus?.();
      } catch (err) {
        status.textContent = err.status === 409 ? `A source named ${n} exists already.` : err.message;
        status.className = 'form-status error';
      }
    });
    replace(main, h('h1', null, 'Sources'), h('div', { class: 'grid2' }, card('Sources', list, form), card(null, detail)));
    await draw();
    ctx.done();
  },
};
