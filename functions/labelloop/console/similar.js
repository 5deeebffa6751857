// "Select similar": the current item's nearest neighbours still in the review queue, with
// checkboxes. Those at or above a threshold start checked; the next label key labels the
// item and every checked neighbour in one request.

import { isPicture, shown } from './picture.js';
import { h, pct, plural } from './ui.js';

const THRESHOLD = 'labelloop.similarThreshold';

export function savedThreshold() {
  const t = Number(localStorage.getItem(THRESHOLD));
  return t > 0 && t <= 1 ? t : 0.8;
}

/** `sim`: {loading, items}; `checked`: the ids ticked. A box reports itself through
 * `onCheck(id, on)` and is not drawn again: the reviewer may be tabbing through them. */
export function similarPanel({
  sim, checked, threshold, nameOf, onCheck, onThreshold,
}) {
  if (sim.loading) {
    return h('div', { class: 'similar', 'data-testid': 'similar-panel' },
      h('p', { class: 'muted' }, 'Finding similar items…'));
  }
  const field = h('input', {
    id: 'similar-threshold', type: 'number', min: 0, max: 1, step: 0.05, value: threshold,
    class: 'narrow', 'data-testid': 'similar-threshold',
    onchange() {
      const t = Number(field.value);
      if (!(t >= 0 && t <= 1)) return;
      localStorage.setItem(THRESHOLD, String(t));
      onThreshold(t);
    },
  });
  const note = h('p', { class: 'small', 'data-testid': 'similar-note' });
  const boxes = [];
  const updateNote = () => {
    const n = boxes.filter((box) => box.checked).length;
    note.textContent = n
      ? `The next label key labels this item and ${plural(n, 'checked item')}.`
      : 'Nothing checked: the next label key labels this item only.';
  };
  const list = sim.items.length ? h('ul', { class: 'similar-list' }, sim.items.map((x) => {
    const box = h('input', {
      type: 'checkbox', checked: checked.has(x.id), 'data-testid': 'similar-check',
      onchange() {
        onCheck(x.id, box.checked);
        updateNote();
      },
    });
    boxes.push(box);
    const p = x.invokePrediction;
    return h('li', {
      'data-testid': 'similar-item', 'data-sample-id': x.id, 'data-similarity': x.similarity,
    },
    h('label', { class: 'similar-row' }, box,
      h('span', { class: 'sim num' }, x.similarity.toFixed(2)),
      h('span', { class: 'sim-text', title: isPicture(x.data) ? null : x.data }, shown(x.data, 'small')),
      p ? h('span', { class: 'muted small' }, `${nameOf(p.labelId)} ${pct(p.confidence)}`) : null));
  })) : h('p', { class: 'muted', 'data-testid': 'similar-empty' }, 'No similar items left in the queue.');
  updateNote();
  return h('div', { class: 'similar', 'data-testid': 'similar-panel' },
    h('div', { class: 'similar-head' },
      h('strong', {}, `Similar items in the queue (${sim.items.length})`),
      h('label', { for: 'similar-threshold', class: 'small' }, 'Pre-check at similarity ≥'), field),
    list, sim.items.length ? note : null);
}
