// A model version's cross-validated quality: how often each label is recognised, and what it
// is taken for instead. Everything comes from the version's confusion matrix (rows: the true
// label, columns: the predicted one), so the bars, the heat map and the pairs always agree.

import { h, pct, plural } from './ui.js';

const MAX_BARS = 20;
const MAX_HEAT = 12;
const SHADES = 5; // heat-1 … heat-5 in app.css; heat-0 is an empty cell

/** The card's body for a version's `quality` (not null: the caller says why there is none). */
export function qualityView(quality) {
  const names = new Map(quality.perLabel.map((l) => [l.labelId, l.labelName || l.labelId]));
  const nameOf = (id) => names.get(id) || id;
  return [
    h('p', { class: 'muted small', 'data-testid': 'quality-summary' },
      `Cross-validated on ${plural(quality.samples, 'sample')}: accuracy ${pct(quality.accuracy, 1)}`
      + ` · macro F1 ${fixed(quality.macroF1, 2)} · calibration error ${fixed(quality.ece, 3)}`),
    h('div', { class: 'quality-grid' },
      h('div', {}, h('h3', {}, 'Accuracy per label'), labelAccuracy(quality.perLabel)),
      h('div', {}, h('h3', {}, 'Confusion'), confusionHeatmap(quality.confusion, nameOf),
        confusedPairs(quality.confusedPairs, nameOf))),
  ];
}

function fixed(x, digits) {
  return x === undefined || x === null ? '—' : x.toFixed(digits);
}

/** One bar per label: its recall (how many of its samples it gets right), worst first. */
function labelAccuracy(perLabel) {
  // A label without samples has no recall: it goes last rather than looking perfect or awful.
  const rank = (l) => (l.recall === null || l.recall === undefined ? 2 : l.recall);
  const sorted = [...perLabel].sort((a, b) => rank(a) - rank(b) || b.support - a.support
    || (a.labelName || '').localeCompare(b.labelName || ''));
  const shown = sorted.slice(0, MAX_BARS);
  const rest = sorted.length - shown.length;
  return h('div', { class: 'acc-bars' }, shown.map((l) => {
    const name = l.labelName || l.labelId;
    const fill = h('span', { class: `acc-fill ${level(l.recall)}` });
    fill.style.width = `${Math.round((l.recall || 0) * 1000) / 10}%`;
    return h('div', {
      class: 'acc-row', 'data-testid': 'label-accuracy-bar', 'data-label-id': l.labelId,
      'data-recall': l.recall ?? '',
    },
    h('span', { class: 'acc-name', title: name }, name),
    h('span', { class: 'acc-track', role: 'img', 'aria-label': `${name}: ${pct(l.recall, 1)} right` },
      fill),
    h('span', { class: 'num' }, pct(l.recall, 0)),
    h('span', { class: 'muted small' }, `precision ${pct(l.precision, 0)} · n=${l.support}`));
  }), rest > 0 ? h('p', { class: 'muted small', 'data-testid': 'more-labels' },
    moreText(rest, sorted[MAX_BARS].recall)) : null);
}

function moreText(rest, next) {
  const more = `and ${plural(rest, 'more label')}`;
  return next === null || next === undefined ? `${more} without samples`
    : `${more}, each at ${pct(next, 0)} or better`;
}

function level(recall) {
  if (recall === null || recall === undefined) return 'acc-none';
  if (recall < 0.7) return 'acc-bad';
  return recall < 0.9 ? 'acc-warn' : 'acc-ok';
}

/**
 * Rows: true label, columns: predicted; a cell's shade is its share of the row, so a rare
 * label's mistakes show as clearly as a common one's. With many labels only those most
 * involved in mistakes are shown, but shares stay shares of the whole row.
 */
function confusionHeatmap(confusion, nameOf) {
  const ids = confusion.labelIds;
  const k = ids.length;
  const m = ids.map(() => new Array(k).fill(0));
  for (const [i, j, count] of confusion.cells) m[i][j] = count;
  const rowTotal = m.map((row) => row.reduce((a, b) => a + b, 0));
  const mistakes = ids.map((_, i) => rowTotal[i] + m.reduce((a, row) => a + row[i], 0) - 2 * m[i][i]);
  let shown = [...ids.keys()];
  if (k > MAX_HEAT) {
    shown = shown.sort((a, b) => mistakes[b] - mistakes[a] || rowTotal[b] - rowTotal[a])
      .slice(0, MAX_HEAT);
  }
  shown.sort((a, b) => nameOf(ids[a]).localeCompare(nameOf(ids[b])));

  const cell = (i, j) => {
    const count = m[i][j];
    const share = rowTotal[i] ? count / rowTotal[i] : 0;
    const shade = count ? Math.max(1, Math.ceil(share * SHADES)) : 0;
    return h('td', {
      class: `heat ${i === j ? 'heat-hit' : 'heat-miss'} heat-${shade}`,
      'data-testid': 'confusion-cell', 'data-true': ids[i], 'data-predicted': ids[j],
      'data-count': count,
      title: `${nameOf(ids[i])} predicted as ${nameOf(ids[j])}: ${count} of ${rowTotal[i]}`
        + ` (${pct(share)})`,
    }, count || '');
  };
  return h('div', { class: 'table-scroll' },
    h('table', { class: 'heatmap', 'data-testid': 'confusion-heatmap' },
      h('thead', {}, h('tr', {},
        h('th', { class: 'heat-corner' }, 'true ↓ predicted →'),
        shown.map((j) => h('th', { class: 'heat-col', scope: 'col', title: nameOf(ids[j]) },
          h('span', {}, nameOf(ids[j])))))),
      h('tbody', {}, shown.map((i) => h('tr', {},
        h('th', { class: 'heat-row', scope: 'row', title: nameOf(ids[i]) }, nameOf(ids[i])),
        shown.map((j) => cell(i, j)))))),
    k > MAX_HEAT ? h('p', { class: 'muted small', 'data-testid': 'heatmap-note' },
      `Showing the ${MAX_HEAT} of ${k} labels most involved in mistakes.`) : null);
}

function confusedPairs(pairs, nameOf) {
  if (!pairs.length) {
    return h('p', { class: 'muted small' }, 'No label was mistaken for another.');
  }
  return h('div', { class: 'pairs' }, h('h3', {}, 'Most confused pairs'),
    h('ul', {}, pairs.map((p) => h('li', {
      'data-testid': 'confused-pair', 'data-label-ids': p.labelIds.join(' '),
    },
    h('strong', {}, `${nameOf(p.labelIds[0])} ↔ ${nameOf(p.labelIds[1])}`),
    h('span', { class: 'muted small' },
      ` ${plural(p.count, 'mistake')}, ${pct(p.rate, 1)} of their samples`)))));
}
