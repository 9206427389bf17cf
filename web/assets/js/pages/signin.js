// Sign-in: an API token is exchanged for a session cookie (HttpOnly,
// SameSite=Strict) by POST /api/session; the token is not kept by the page.
import { h, replace } from '../dom.js';
import { session } from '../api.js';

export default {
  title: 'Sign in',
  render(root, { message, onSignedIn }) {
    const token = h('input', {
      id: 'token', name: 'token', type: 'password', autocomplete: 'current-password', required: true,
      spellcheck: 'false', placeholder: 'API token',
    });
    const status = h('p', { class: 'form-status', role: 'status' }, message || '');
    const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
    const form = h(
      'form',
      { class: 'signin-box', novalidate: true },
      h('h1', null, 'tandem'),
      h('p', { class: 'muted' }, 'Sign in with an API token. A new server writes its admin token to DATA/admin-token; ',
        h('code', null, 'tandem token create NAME --role admin'), ' makes more.'),
      h('div', { class: 'field' }, h('label', { for: 'token' }, 'API token'), token),
      button,
      status,
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!token.value.trim()) {
        status.textContent = 'Enter an API token.';
        status.className = 'form-status error';
        token.focus();
        return;
      }
      button.disabled = true;
      status.textContent = 'Signing in…';
      status.className = 'form-status';
      try {
        const info = await session.create(token.value.trim());
        token.value = '';
        onSignedIn(info);
      } catch (err) {
        status.textContent = err.status === 401 ? 'That token is unknown or revoked.' : err.message;
        status.className = 'form-status error';
        button.disabled = false;
        token.select();
      }
    });
    replace(root, form);
    token.focus();
  },
};
