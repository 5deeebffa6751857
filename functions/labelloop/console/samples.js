// The samples browser (the API's own filters and Link paging) and a try-it box that invokes
// the function without capturing, so trying things out never fills the review queue.

import * as api from './api.js';
import {
  h, clear, card, empty, attempt, clearError, pct, when, byName, labelNamer,
} from './ui.js';
import { confidenceBar } from './charts.js';
import { functionHeader } from './pages.js';
import { shown } from './picture.js';

const ORIGINS = [['', 'Any origin'], ['API', 'API'], ['InvokeCapture', 'Invoke capture'],
  ['InvokeFeedback', 'Invoke feedback']];

function select(id, testid, options, value) {
  return h('select', { id, 'data-testid': testid },
    options.map(([v, text]) => h('option', { value: v, selected: v === value }, text)));
}

export function samplesPage(ctx, fid) {
  functionHeader(ctx, fid, '/samples');
  let nameOf = labelNamer([]);
  const labelsReady = attempt(async () => {
    nameOf = labelNamer((await api.get(api.fn(fid, '/labels'))).sort(byName));
  });

  // -- try it ------------------------------------------------------------------------------
  const text = h('textarea', {
    id: 'try-text', rows: 3, 'data-testid': 'try-text', placeholder: 'Type a text to classify',
  });
  const result = h('div', { class: 'try-result', 'data-testid': 'try-result', 'aria-live': 'polite' });
  const tryButton = h('button', { type: 'submit', class: 'primary', 'data-testid': 'try-submit' }, 'Classify');
  const tryForm = h('form', {
    class: 'try-form',
    async onsubmit(e) {
      e.preventDefault();
      clearError();
      tryButton.disabled = true;
      clear(result);
      // 409 (no model yet) and 400 (empty text) land in the banner with the API's message.
      const out = await attempt(() => api.post(api.fn(fid, '/invoke'), { data: text.value },
        { capture: 'false' }), 'Invoke');
      tryButton.disabled = false;
      if (!out) return;
      clear(result,
        h('p', {}, h('strong', { 'data-testid': 'try-label' }, out.labelName), ' ',
          h('span', { 'data-testid': 'try-confidence' }, pct(out.confidence, 1)),
          h('span', { class: 'muted small' }, ` · model v${out.modelVersion} · not captured`)),
        h('table', { class: 'table compact', 'data-testid': 'try-confidences' },
          h('tbody', {}, out.labelConfidences.map((c) => h('tr', {},
            h('td', {}, c.labelName), h('td', { class: 'conf-cell' }, confidenceBar(c.confidence)))))));
    },
  },
  h('label', { for: 'try-text' }, 'Text'), text, h('div', {}, tryButton));

  // -- browse ------------------------------------------------------------------------------
  const origin = select('f-origin', 'filter-origin', ORIGINS, '');
  const externalId = h('input', { id: 'f-external', 'data-testid': 'filter-external-id', placeholder: 'exact match' });
  const order = select('f-order', 'filter-order', [['descending', 'Newest first'], ['ascending', 'Oldest first']], 'descending');
  const size = select('f-size', 'filter-size', [['25', '25'], ['50', '50'], ['100', '100'], ['500', '500']], '25');
  const list = h('div', { 'data-testid': 'samples-list' });
  const pager = h('div', { class: 'pager' });
  let page = 1;

  const filters = h('form', {
    class: 'filters',
    onsubmit(e) {
      e.preventDefault();
      page = 1;
      attempt(() => load(null));
    },
  },
  h('div', {}, h('label', { for: 'f-origin' }, 'Origin'), origin),
  h('div', {}, h('label', { for: 'f-external' }, 'External id'), externalId),
  h('div', {}, h('label', { for: 'f-order' }, 'Order'), order),
  h('div', {}, h('label', { for: 'f-size' }, 'Page size'), size),
  h('div', {}, h('button', { type: 'submit', 'data-testid': 'filter-apply' }, 'Apply')));

  ctx.root.append(h('div', { class: 'grid samples-grid' },
    card('Samples', 'samples-card', null, filters, list, pager),
    card('Try it', 'try-card', null,
      h('p', { class: 'muted small' }, 'Invokes the live model with capture=false: nothing is stored for review.'),
      tryForm, result)));

  async function load(next) {
    clear(list, h('p', { class: 'muted' }, 'Loading…'));
    clear(pager);
    await labelsReady;
    const { data, next: following } = next
      ? await api.request('GET', next)
      : await api.request('GET', api.fn(fid, '/samples'), {
        query: {
          origin: origin.value, externalId: externalId.value.trim(), sortOrder: order.value,
          batchSize: size.value,
        },
      });
    if (!data.length) {
      clear(list, empty(page === 1 ? 'No samples match' : 'No more samples',
        page === 1 ? 'Change the filters, or add samples through the API.' : null));
    } else {
      clear(list, h('div', { class: 'table-scroll' }, h('table', { class: 'table samples', 'data-testid': 'samples-table' },
        h('thead', {}, h('tr', {}, ['Text', 'Annotation', 'Prediction', 'Origin', 'Created']
          .map((t) => h('th', {}, t)))),
        h('tbody', {}, data.map((x) => h('tr', {
          'data-testid': 'sample-row', 'data-sample-id': x.id, 'data-origin': x.origin,
        },
        h('td', { class: 'sample-text' }, shown(x.data, 'small'),
          x.externalId ? h('div', { class: 'muted small mono' }, x.externalId) : null),
        h('td', { 'data-testid': 'sample-annotation' }, x.annotation ? nameOf(x.annotation.labelId)
          : h('span', { class: 'muted' }, x.inReviewQueue ? 'in review' : '—')),
        h('td', { class: 'nowrap' }, x.prediction ? [nameOf(x.prediction.labelId), ' ',
          h('span', { class: 'muted small' }, pct(x.prediction.confidence))] : h('span', { class: 'muted' }, '—')),
        h('td', { class: 'small' }, x.origin, x.corrected ? h('span', { class: 'badge warn' }, 'corrected') : null),
        h('td', { class: 'small nowrap' }, when(x.createdAt))))))));
    }
    clear(pager,
      h('span', { class: 'muted small', 'data-testid': 'samples-page' }, `Page ${page}`),
      page > 1 ? h('button', {
        type: 'button', 'data-testid': 'first-page',
        onclick() {
          page = 1;
          attempt(() => load(null));
        },
      }, 'First page') : null,
      following ? h('button', {
        type: 'button', 'data-testid': 'next-page',
        onclick() {
          page += 1;
          attempt(() => load(following));
        },
      }, 'Next page →') : null);
  }

  attempt(() => load(null));
}
