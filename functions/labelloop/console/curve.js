// The precision–coverage curve with a threshold handle, dragged with the pointer or moved by
// keyboard. The handle only ever stops on the curve's own grid, so the readout shows exactly
// what the server measured at that threshold (and a saved policy is one of those thresholds).

import { h, s, pct } from './ui.js';
import { frame, yAxis, PAD } from './charts.js';

const W = 1000;
const H = 300;
const TOP = 26; // room above the plot for the handle's value
const PAGE_STEP = 0.05;

/** A threshold as the handle's data-threshold shows it: at most 3 decimals, no trailing 0s. */
export const formatThreshold = (t) => String(Number(t.toFixed(3)));

/**
 * The plot of `curve` (the API's columns) and its readout. `value` is where the handle starts;
 * `recommended` (a threshold or null) gets a dashed rule; `onChange(t)` follows the handle.
 * Returns {el, value(), set(t)}.
 */
export function thresholdPlot(curve, { value, recommended, onChange }) {
  const grid = curve.threshold;
  const last = grid.length - 1;
  const gridStep = (grid[last] - grid[0]) / last;
  const pageSteps = Math.max(1, Math.round(PAGE_STEP / gridStep));
  const x = (t) => PAD.l + ((t - grid[0]) / (grid[last] - grid[0])) * (W - PAD.l - PAD.r);
  const y = (v) => TOP + (1 - v) * (H - TOP - PAD.b);
  const nearest = (t) => Math.min(last, Math.max(0, Math.round((t - grid[0]) / gridStep)));

  const svg = frame('Precision and coverage by confidence threshold', 'threshold-plot', W, H);
  svg.classList.add('threshold-plot');
  svg.setAttribute('role', 'group'); // not an image: it holds the slider
  yAxis(svg, W, y, [0, 0.25, 0.5, 0.75, 1], (v) => pct(v));
  for (let i = 0; i <= 10; i += 1) {
    svg.append(s('text', { x: x(i / 10), y: H - 8, class: 'tick', 'text-anchor': 'middle' },
      (i / 10).toFixed(1)));
  }
  drawCurve(svg, curve, x, y);
  if (recommended !== null && recommended !== undefined) {
    svg.append(s('line', {
      x1: x(recommended), x2: x(recommended), y1: TOP, y2: y(0), class: 'recommended-rule',
      'data-testid': 'recommended-rule',
    }), s('text', {
      x: x(recommended) - 4, y: y(0) - 6, class: 'tick recommended-label', 'text-anchor': 'end',
    }, `recommended ${formatThreshold(recommended)}`));
  }

  const rule = s('line', { y1: TOP, y2: y(0), class: 'handle-rule' });
  const knob = s('circle', { cy: TOP, r: 7, class: 'handle-knob' });
  const tag = s('text', { y: TOP - 12, class: 'handle-tag', 'text-anchor': 'middle' });
  const handle = s('g', {
    class: 'handle', tabindex: 0, role: 'slider', 'data-testid': 'threshold-handle',
    'aria-label': 'Confidence threshold', 'aria-valuemin': grid[0], 'aria-valuemax': grid[last],
  }, rule, knob, tag);
  svg.append(handle);
  const readout = h('p', { class: 'readout', 'data-testid': 'threshold-readout', 'aria-live': 'polite' });

  let index = nearest(value);
  function set(i) {
    index = Math.min(last, Math.max(0, i));
    const t = grid[index];
    rule.setAttribute('x1', x(t));
    rule.setAttribute('x2', x(t));
    knob.setAttribute('cx', x(t));
    tag.setAttribute('x', Math.min(W - PAD.r - 16, Math.max(PAD.l + 16, x(t))));
    tag.textContent = formatThreshold(t);
    handle.setAttribute('data-threshold', formatThreshold(t));
    handle.setAttribute('aria-valuenow', t);
    const text = describe(curve, index);
    handle.setAttribute('aria-valuetext', text);
    readout.textContent = text;
    readout.dataset.threshold = formatThreshold(t);
    readout.dataset.covered = curve.covered[index];
    readout.dataset.total = curve.total;
    readout.dataset.precision = curve.precision[index] ?? '';
    if (onChange) onChange(t);
  }

  // The whole plot takes the pointer, not only the knob: a click anywhere moves the handle
  // there, and the capture keeps the drag going when the pointer leaves the plot.
  let dragging = null;
  const fromPointer = (e) => {
    const p = new DOMPoint(e.clientX, e.clientY).matrixTransform(svg.getScreenCTM().inverse());
    const t = grid[0] + ((p.x - PAD.l) / (W - PAD.l - PAD.r)) * (grid[last] - grid[0]);
    return nearest(t);
  };
  svg.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    e.preventDefault(); // no text selection, and the focus goes to the handle below
    dragging = e.pointerId;
    svg.setPointerCapture(e.pointerId);
    svg.classList.add('dragging');
    handle.focus();
    set(fromPointer(e));
  });
  svg.addEventListener('pointermove', (e) => {
    if (e.pointerId === dragging) set(fromPointer(e));
  });
  const stop = (e) => {
    if (e.pointerId !== dragging) return;
    dragging = null;
    svg.classList.remove('dragging');
    if (svg.hasPointerCapture(e.pointerId)) svg.releasePointerCapture(e.pointerId);
  };
  svg.addEventListener('pointerup', stop);
  svg.addEventListener('pointercancel', stop);
  handle.addEventListener('keydown', (e) => {
    const moves = {
      ArrowLeft: -1, ArrowDown: -1, ArrowRight: 1, ArrowUp: 1,
      PageDown: -pageSteps, PageUp: pageSteps, Home: -Infinity, End: Infinity,
    };
    if (!(e.key in moves)) return;
    e.preventDefault();
    const move = moves[e.key];
    set(Number.isFinite(move) ? index + move : (move < 0 ? 0 : last));
  });

  set(index);
  const el = h('figure', { class: 'chart-box' }, svg,
    h('figcaption', { class: 'legend' },
      h('span', { class: 'key key-precision' }, 'precision (95% interval)'),
      h('span', { class: 'key key-coverage' }, 'coverage'),
      recommended !== null && recommended !== undefined
        ? h('span', { class: 'key key-recommended' }, 'recommended threshold') : null),
    readout);
  return { el, value: () => grid[index], set: (t) => set(nearest(t)) };
}

function drawCurve(svg, c, x, y) {
  const covered = c.threshold.map((_, i) => i).filter((i) => c.covered[i] > 0);
  if (covered.length) {
    const upper = covered.map((i) => `${x(c.threshold[i])},${y(c.precisionHigh[i])}`);
    const lower = covered.map((i) => `${x(c.threshold[i])},${y(c.precisionLow[i])}`).reverse();
    svg.append(s('polygon', { points: [...upper, ...lower].join(' '), class: 'precision-band' }));
    svg.append(s('polyline', {
      points: covered.map((i) => `${x(c.threshold[i])},${y(c.precision[i])}`).join(' '),
      class: 'precision-line',
    }));
  }
  svg.append(s('polyline', {
    points: c.threshold.map((t, i) => `${x(t)},${y(c.coverage[i])}`).join(' '),
    class: 'coverage-line',
  }));
}

function describe(c, i) {
  const t = formatThreshold(c.threshold[i]);
  const [pLow, pHigh] = [c.precisionLow[i], c.precisionHigh[i]];
  const [cLow, cHigh] = [c.coverageLow[i], c.coverageHigh[i]];
  const precision = c.precision[i] === null ? 'precision — (nothing covered)'
    : `precision ${pct(c.precision[i], 1)} (${pct(pLow, 1)}–${pct(pHigh, 1)})`;
  return `Threshold ${t}: ${precision}, coverage ${pct(c.coverage[i], 1)} `
    + `(${pct(cLow, 1)}–${pct(cHigh, 1)}), ${c.covered[i]} of ${c.total} covered`;
}
