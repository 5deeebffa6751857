// Sign-in, the functions list, and the header every function page shares.

import * as api from './api.js';
import {
  h, clear, card, empty, attempt, showError, clearError, when,
} from './ui.js';

export function signInPage(ctx) {
  const id = h('input', {
    id: 'client-id', name: 'client_id', autocomplete: 'username', required: true,
    'data-testid': 'client-id',
  });
  const secret = h('input', {
    id: 'client-secret', name: 'client_secret', type: 'password', required: true,
    autocomplete: 'current-password', 'data-testid': 'client-secret',
  });
  const button = h('button', { type: 'submit', class: 'primary', 'data-testid': 'signin-submit' },
    'Sign in');
  const form = h('form', {
    class: 'signin',
    async onsubmit(e) {
      e.preventDefault();
      clearError();
      button.disabled = true;
      try {
        await api.signIn(id.value.trim(), secret.value);
        secret.value = '';
        ctx.signedIn();
      } catch (err) {
        showError(err, 'Sign-in failed');
      } finally {
        button.disabled = false;
      }
    },
  },
  h('h1', {}, 'Sign in'),
  ctx.notice === 'expired'
    ? h('p', { class: 'notice', 'data-testid': 'session-expired' },
      'Your session expired, sign in again.')
    : h('p', { class: 'muted' }, 'With the client credentials of your labelloop deployment.'),
  h('label', { for: 'client-id' }, 'Client id'), id,
  h('label', { for: 'client-secret' }, 'Client secret'), secret,
  button);
  clear(ctx.root, h('div', { class: 'signin-wrap', 'data-testid': 'signin-page' }, form));
  id.focus();
}

export function functionsPage(ctx) {
  const list = h('div', { 'data-testid': 'function-list' }, h('p', { class: 'muted' }, 'Loading…'));
  const name = h('input', {
    id: 'new-function', required: true, placeholder: 'e.g. support-inbox',
    'data-testid': 'new-function-name',
  });
  const encoder = h('select', { id: 'new-function-encoder', 'data-testid': 'new-function-encoder' },
    h('option', { value: 'fast' }, 'fast (MiniLM)'),
    h('option', { value: 'accurate' }, 'accurate (MPNet, slower)'));
  const form = h('form', {
    class: 'inline-form',
    async onsubmit(e) {
      e.preventDefault();
      const created = await attempt(() => api.post('/v1/functions', {
        name: name.value.trim(), input: 'Text', output: 'Classification', encoder: encoder.value,
      }), 'Create function');
      if (created) location.hash = `#/functions/${created.id}`;
    },
  },
  h('label', { for: 'new-function' }, 'New function'), name,
  h('label', { for: 'new-function-encoder' }, 'Encoder'), encoder,
  h('button', { type: 'submit', class: 'primary', 'data-testid': 'create-function' }, 'Create'));

  clear(ctx.root, h('h1', {}, 'Functions'), card('Your functions', 'functions-card', null, list),
    card('Create a function', 'create-function-card', null,
      h('p', { class: 'muted' }, 'A text classification function: add labels and a few samples '
        + 'per label next, and it trains by itself. The accurate encoder is a few points more '
        + 'accurate with few samples per label; the fast one answers about ten times sooner.'),
      form));

  attempt(async () => {
    const fns = await api.get('/v1/functions');
    if (!fns.length) {
      clear(list, empty('No functions yet', 'Create one below.'));
      return;
    }
    fns.sort((a, b) => (b.createdAt || '').localeCompare(a.createdAt || ''));
    clear(list, h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Live model'),
        h('th', {}, 'Encoder'), h('th', {}, 'Created'), h('th', {}, 'Id'))),
      h('tbody', {}, fns.map((f) => h('tr', { 'data-testid': 'function-row', 'data-function-id': f.id },
        h('td', {}, h('a', { href: `#/functions/${f.id}` }, f.name)),
        h('td', {}, f.liveModelVersion ? `v${f.liveModelVersion}` : h('span', { class: 'muted' }, 'none yet')),
        h('td', { 'data-testid': 'function-encoder' }, f.encoder),
        h('td', {}, when(f.createdAt)),
        h('td', { class: 'mono muted' }, f.id))))));
  }, 'Functions');
}

const TABS = [['', 'Overview', 'tab-overview'], ['/review', 'Review', 'tab-review'],
  ['/samples', 'Samples', 'tab-samples'], ['/thresholds', 'Thresholds', 'tab-thresholds']];

/**
 * The function's name and tabs. Resolves to the function (or undefined when it failed: the
 * banner says why).
 */
export function functionHeader(ctx, fid, active) {
  const title = h('h1', { 'data-testid': 'function-name' }, '…');
  const meta = h('span', { class: 'muted mono' }, fid);
  const encoder = h('span', { class: 'muted', 'data-testid': 'function-encoder' });
  ctx.root.append(h('div', { class: 'fn-head' },
    h('div', {}, h('a', { href: '#/functions', class: 'crumb' }, 'Functions'), ' / ', meta,
      ' · ', encoder),
    title,
    h('nav', { class: 'tabs', 'aria-label': 'Function' }, TABS.map(([suffix, text, testid]) => h('a', {
      href: `#/functions/${fid}${suffix}`, class: suffix === active ? 'tab active' : 'tab',
      'aria-current': suffix === active ? 'page' : null, 'data-testid': testid,
    }, text)))));
  return attempt(async () => {
    const f = await api.get(api.fn(fid));
    title.textContent = f.name;
    encoder.textContent = `${f.encoder} encoder`;
    document.title = `${f.name} · labelloop`;
    return f;
  });
}
