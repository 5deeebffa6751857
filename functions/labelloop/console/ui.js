// DOM building without innerHTML: sample texts are user data, so they only ever become text
// nodes. Plus the error banner and number formatting shared by the pages.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.setAttribute('class', value);
    } else if (key in el && !key.includes('-') && typeof el[key] !== 'function' && el.namespaceURI !== SVG_NS) {
      el[key] = value; // properties: value, checked, disabled, hidden, htmlFor…
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** h('button', {class: 'primary', onclick}, 'Save') */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// -- the error banner ----------------------------------------------------------------------

const banner = () => document.getElementById('banner');

/** Shows an API error's message (or any error's), except for an ended session: the sign-in
 * page says that. */
export function showError(err, prefix = '') {
  if (err && err.sessionEnded) return;
  const text = (err && err.message) || String(err);
  document.getElementById('banner-text').textContent = prefix ? `${prefix}: ${text}` : text;
  banner().hidden = false;
  if (!(err && err.status)) console.error(err);
}

export function clearError() {
  banner().hidden = true;
  document.getElementById('banner-text').textContent = '';
}

/** Runs an async action; failures go to the banner. Returns the action's value or undefined. */
export async function attempt(action, prefix) {
  try {
    return await action();
  } catch (err) {
    showError(err, prefix);
    return undefined;
  }
}

// -- formatting ----------------------------------------------------------------------------

export function pct(x, digits = 0) {
  return x === undefined || x === null ? '—' : `${(x * 100).toFixed(digits)}%`;
}

export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `
    + `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

/** Label id → name, with the bare id as the fallback for a deleted label. */
export function labelNamer(labels) {
  const names = new Map(labels.map((l) => [l.id, l.name]));
  return (id) => (id ? names.get(id) || id : '—');
}

export const byName = (a, b) => a.name.localeCompare(b.name);

const STRATEGY_NAMES = {
  random: 'Random',
  near_threshold: 'Near threshold',
  confused_pair: 'Confused pair',
  uncertainty: 'Uncertainty',
  rare_class: 'Rare class',
};

export const strategyName = (name) => STRATEGY_NAMES[name] || name;

/** A card: a titled panel; `extra` goes to the right of the title. */
export function card(title, testid, extra, ...body) {
  return h('section', { class: 'card', 'data-testid': testid },
    h('div', { class: 'card-head' }, h('h2', {}, title), extra || null),
    ...body);
}

export function empty(text, hint) {
  return h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, text),
    hint ? h('p', { class: 'muted' }, hint) : null);
}
