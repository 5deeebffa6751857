// Small hand-drawn SVG charts. Everything is in viewBox units and scales with its container;
// colours come from classes in app.css (the CSP forbids style attributes).

import { h, s, pct } from './ui.js';

const H = 200;
export const PAD = { l: 40, r: 12, t: 12, b: 28 };

export function frame(label, testid, W, height = H) {
  return s('svg', {
    viewBox: `0 0 ${W} ${height}`, class: 'chart', role: 'img', 'aria-label': label,
    'data-testid': testid,
  });
}

export function yAxis(svg, W, y, ticks, format) {
  for (const t of ticks) {
    svg.append(
      s('line', { x1: PAD.l, x2: W - PAD.r, y1: y(t), y2: y(t), class: 'gridline' }),
      s('text', { x: PAD.l - 6, y: y(t) + 4, class: 'tick', 'text-anchor': 'end' }, format(t)),
    );
  }
}

/**
 * Accuracy per model version: cross-validated (a line) and live, on annotated random
 * captures (squares with their 95 % interval), with the live version marked.
 */
export function accuracyChart(models, liveAccuracy) {
  const W = 1000;
  const svg = frame('Accuracy by model version', 'accuracy-chart', W);
  const versions = models.map((m) => m.version).sort((a, b) => a - b);
  const lows = [
    ...models.map((m) => m.cvAccuracy).filter((v) => v !== undefined && v !== null),
    ...liveAccuracy.map((r) => r.interval95[0]),
  ];
  // Zoom in on the interesting band, with the floor on a gridline so the scale reads honestly.
  const lowest = Math.min(1, ...lows);
  const step = lowest < 0.6 ? 0.25 : 0.1;
  const floor = Math.max(0, Math.floor((lowest - 0.02) / step) * step);
  const x = (v) => {
    const i = versions.indexOf(v);
    const span = Math.max(1, versions.length - 1);
    return versions.length === 1 ? (PAD.l + W - PAD.r) / 2 : PAD.l + 16 + (i / span) * (W - PAD.l - PAD.r - 32);
  };
  const y = (a) => PAD.t + (1 - (a - floor) / (1 - floor)) * (H - PAD.t - PAD.b);
  const ticks = [];
  for (let t = 1; t >= floor - 1e-9; t -= step) ticks.push(Math.round(t * 100) / 100);
  yAxis(svg, W, y, ticks, (t) => pct(t));
  const current = models.find((m) => m.live);
  if (current) {
    svg.append(s('line', {
      x1: x(current.version), x2: x(current.version), y1: PAD.t, y2: H - PAD.b, class: 'live-rule',
    }));
  }
  // Versions can run into the hundreds: label at most ~16 of them (always the live one).
  const every = Math.ceil(versions.length / 16);
  versions.forEach((v, i) => {
    const isLive = current && current.version === v;
    if (isLive || i % every === 0 || i === versions.length - 1) {
      svg.append(s('text', {
        x: x(v), y: H - 8, class: isLive ? 'tick tick-live' : 'tick', 'text-anchor': 'middle',
      }, isLive ? `v${v} live` : `v${v}`));
    }
  });

  const cv = models.filter((m) => m.cvAccuracy !== undefined && m.cvAccuracy !== null)
    .sort((a, b) => a.version - b.version);
  if (cv.length > 1) {
    svg.append(s('polyline', {
      class: 'line-cv', points: cv.map((m) => `${x(m.version)},${y(m.cvAccuracy)}`).join(' '),
    }));
  }
  for (const m of cv) {
    svg.append(s('circle', { cx: x(m.version), cy: y(m.cvAccuracy), r: 3.5, class: 'dot-cv' },
      s('title', {}, `v${m.version} cross-validated ${pct(m.cvAccuracy, 1)}`)));
  }
  for (const r of liveAccuracy) {
    if (!versions.includes(r.modelVersion)) continue;
    const cx = x(r.modelVersion) + 6;
    svg.append(
      s('line', { x1: cx, x2: cx, y1: y(r.interval95[0]), y2: y(r.interval95[1]), class: 'whisker' }),
      s('rect', { x: cx - 3.5, y: y(r.accuracy) - 3.5, width: 7, height: 7, class: 'dot-live' },
        s('title', {}, `v${r.modelVersion} live ${pct(r.accuracy, 1)} `
          + `(${pct(r.interval95[0])}–${pct(r.interval95[1])}, n=${r.annotated})`)),
    );
  }
  return h('figure', { class: 'chart-box' }, svg,
    h('figcaption', { class: 'legend' },
      h('span', { class: 'key key-cv' }, 'cross-validated'),
      h('span', { class: 'key key-live' }, 'live, on annotated random captures (95% interval)')));
}

/** Counts of `values` (0..1) in `bins` equal bins; the last bin includes 1. */
export function binned(values, bins = 10) {
  const counts = new Array(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.max(0, Math.floor(v * bins)))] += 1;
  return counts;
}

export function histogram(values, bins = 10) {
  const W = 520;
  const svg = frame('Histogram of invoke confidences', 'confidence-histogram', W);
  const counts = binned(values, bins);
  const top = Math.max(1, ...counts);
  const y = (c) => PAD.t + (1 - c / top) * (H - PAD.t - PAD.b);
  const bw = (W - PAD.l - PAD.r) / bins;
  const ticks = top <= 4 ? [...Array(top + 1).keys()] : [0, Math.round(top / 2), top];
  yAxis(svg, W, y, ticks, String);
  counts.forEach((c, i) => {
    const x0 = PAD.l + i * bw;
    svg.append(s('rect', {
      x: x0 + 2, y: y(c), width: bw - 4, height: Math.max(0, y(0) - y(c)), class: 'bar',
      'data-count': c,
    }, s('title', {}, `${pct(i / bins)}–${pct((i + 1) / bins)}: ${c}`)));
  });
  for (let i = 0; i <= bins; i += 2) {
    svg.append(s('text', { x: PAD.l + i * bw, y: H - 8, class: 'tick', 'text-anchor': 'middle' },
      pct(i / bins)));
  }
  return h('figure', { class: 'chart-box' }, svg);
}

/** A horizontal fill bar (HTML: its width is set through the CSSOM, which the CSP allows). */
export function fillBar(used, quota) {
  const fill = h('span', { class: 'fill-bar-inner' });
  fill.style.width = `${quota > 0 ? Math.min(100, (100 * used) / quota) : 0}%`;
  return h('span', {
    class: 'fill-bar', role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': quota,
    'aria-valuenow': used, 'aria-label': `${used} of ${quota}`,
  }, fill);
}

/** One confidence as a thin bar with its number, for the try-it box. */
export function confidenceBar(confidence) {
  return h('span', { class: 'conf' }, fillBar(Math.round(confidence * 1000), 1000),
    h('span', { class: 'conf-num' }, pct(confidence, 1)));
}
