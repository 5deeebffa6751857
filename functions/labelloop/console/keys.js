// Label keys: which label each digit 1–9 picks, per function (kept in localStorage, so a
// reviewer's habits survive reloads), and the small panel that remaps them.

import { h } from './ui.js';

export const KEYS = 9;
const storageKey = (fid) => `labelloop.keys.${fid}`;

/** True when a key press is typing, not a command. A focused checkbox is not typing: the
 * similar list's boxes must not swallow the label keys. */
export function typingIn(target) {
  if (!target || !target.tagName) return false;
  if (target.isContentEditable) return true;
  if (target.tagName === 'TEXTAREA' || target.tagName === 'SELECT') return true;
  return target.tagName === 'INPUT'
    && !['checkbox', 'radio', 'button', 'submit', 'reset', 'range'].includes(target.type);
}

/** Labels in name order on 1, 2, 3… (`labels` sorted by name). */
export function defaultKeys(labels) {
  return Array.from({ length: KEYS }, (_, i) => (labels[i] ? labels[i].id : ''));
}

export function loadKeys(fid, labels) {
  try {
    const saved = JSON.parse(localStorage.getItem(storageKey(fid)) || 'null');
    const known = new Set(labels.map((l) => l.id));
    // A deleted label leaves its key empty rather than shifting the others.
    if (Array.isArray(saved) && saved.length === KEYS) return saved.map((id) => (known.has(id) ? id : ''));
  } catch {
    // a hand-edited or stale mapping: fall back to name order
  }
  return defaultKeys(labels);
}

export function saveKeys(fid, keys) {
  localStorage.setItem(storageKey(fid), JSON.stringify(keys));
}

export function forgetKeys(fid) {
  localStorage.removeItem(storageKey(fid));
}

/** The remapping panel: a select per key. `onChange(keys)` gets the new mapping. */
export function keySettings({ labels, keys, open, onChange, onReset }) {
  const rows = Array.from({ length: KEYS }, (_, i) => {
    const sel = h('select', {
      id: `key-${i + 1}`, 'data-testid': `key-select-${i + 1}`,
      onchange() {
        const next = [...keys];
        next[i] = sel.value;
        onChange(next);
      },
    }, h('option', { value: '' }, '—'), labels.map((l) => h('option', {
      value: l.id, selected: keys[i] === l.id,
    }, l.name)));
    return h('div', { class: 'key-row' }, h('label', { for: `key-${i + 1}` }, h('kbd', {}, String(i + 1))), sel);
  });
  return h('details', { class: 'key-settings', 'data-testid': 'key-settings', open },
    h('summary', {}, 'Key mapping'),
    h('div', { class: 'key-grid' }, rows),
    h('button', { type: 'button', class: 'link', onclick: onReset }, 'Reset to name order'));
}
