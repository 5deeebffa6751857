// A function at a glance: model versions (with accuracy and the live pointer), the live
// version's quality per label, labels, drift, the capture buffer and recent invoke confidence.
// Metrics are polled, quickly while a training run is pending or running, and the versions
// (and drift, which is per live version) reload when one ends.

import * as api from './api.js';
import {
  h, clear, card, empty, attempt, pct, when, plural, byName, strategyName,
} from './ui.js';
import { accuracyChart, histogram, fillBar } from './charts.js';
import { functionHeader } from './pages.js';
import { qualityView } from './quality.js';

const FAST_MS = 2000;
const SLOW_MS = 15000;

export function overviewPage(ctx, fid) {
  functionHeader(ctx, fid, '');
  const status = h('div', { class: 'status-strip', 'data-testid': 'status-strip' });
  const models = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const quality = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const labels = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const capture = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const invokes = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const drift = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const rollback = h('button', {
    type: 'button', 'data-testid': 'rollback',
    title: 'Move the live pointer back to the version live before this one',
    onclick: () => act(() => api.post(api.fn(fid, '/models/rollback')), 'Roll back'),
  }, 'Roll back');
  const retrain = h('button', {
    type: 'button', 'data-testid': 'train',
    title: 'Queue a training run now (the usual promotion rule applies)',
    onclick: () => act(() => api.post(api.fn(fid, '/train'), { force: false }), 'Train'),
  }, 'Train now');

  ctx.root.append(status, h('div', { class: 'grid' },
    card('Model versions', 'models-card', h('div', { class: 'actions' }, retrain, rollback), models),
    card('Label quality', 'quality-card',
      h('a', { href: `#/functions/${fid}/thresholds`, class: 'button-link' }, 'Thresholds →'), quality),
    h('div', { class: 'column' },
      card('Labels', 'labels-card', null, labels),
      card('Drift', 'drift', null, drift)),
    h('div', { class: 'column' },
      card('Capture buffer', 'capture-card',
        h('a', { href: `#/functions/${fid}/review`, class: 'button-link' }, 'Review →'), capture),
      card('Recent invoke confidence', 'invokes-card', null, invokes))));

  const state = { labels: [], metrics: null, drift: null, capture: null };
  let timer = null;
  let lastMetrics = null;
  ctx.onCleanup(() => clearTimeout(timer));

  async function act(action, what) {
    const done = await attempt(action, what);
    if (done !== undefined) await Promise.all([loadMetrics(), loadModels()]);
  }

  async function loadLabels() {
    const [ls, metrics] = await Promise.all([api.get(api.fn(fid, '/labels')), api.get(
      `/v0.9/functions/${encodeURIComponent(fid)}/metrics`)]);
    state.labels = ls.sort(byName);
    state.metrics = metrics;
    renderLabels();
    renderStatus();
  }

  async function loadMetrics() {
    state.metrics = await api.get(`/v0.9/functions/${encodeURIComponent(fid)}/metrics`);
    renderStatus();
    renderLabels();
  }

  async function loadModels() {
    const [versions, live, fn] = await Promise.all([
      api.get(api.fn(fid, '/models')), api.get(api.fn(fid, '/live-accuracy')),
      api.get(api.fn(fid))]);
    const byVersion = new Map(live.map((r) => [r.modelVersion, r]));
    const back = fn.rollbackModelVersion;
    rollback.disabled = back === undefined;
    rollback.textContent = back === undefined ? 'Roll back' : `Roll back to v${back}`;
    if (!versions.length) {
      clear(models, empty('No model yet',
        'Add labels and a few annotated samples; training starts by itself.'));
      clear(quality, empty('No model yet'));
      return;
    }
    const rows = [...versions].sort((a, b) => b.version - a.version).map((v) => {
      const la = byVersion.get(v.version);
      return h('tr', {
        'data-testid': 'model-row', 'data-version': v.version, class: v.live ? 'is-live' : null,
      },
      h('td', {}, `v${v.version} `, v.live ? h('span', { class: 'badge live', 'data-testid': 'live-badge' }, 'live') : null),
      h('td', {}, when(v.createdAt)),
      h('td', { class: 'num' }, v.sampleCount),
      h('td', { class: 'num' }, v.zeroShot ? h('span', { class: 'muted' }, 'zero-shot') : pct(v.cvAccuracy, 1)),
      h('td', { class: 'num', 'data-testid': 'live-accuracy' }, la
        ? [pct(la.accuracy, 1), h('span', { class: 'muted small' },
          ` ${pct(la.interval95[0])}–${pct(la.interval95[1])}, n=${la.annotated}`)]
        : h('span', { class: 'muted' }, '—')),
      h('td', { class: 'decision small' }, v.decision || v.reason || '', v.promoted ? null
        : h('span', { class: 'badge warn' }, 'not promoted')),
      h('td', {}, v.live ? null : h('button', {
        type: 'button', class: 'small-button', 'data-testid': `promote-${v.version}`,
        onclick: () => act(() => api.post(api.fn(fid, `/models/${v.version}/promote`)), `Promote v${v.version}`),
      }, 'Promote')));
    });
    clear(models, accuracyChart(versions, live),
      h('div', { class: 'table-scroll' }, h('table', { class: 'table', 'data-testid': 'models-table' },
        h('thead', {}, h('tr', {}, ['Version', 'Created', 'Samples', 'CV accuracy',
          'Live accuracy (95%)', 'Decision', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, rows))));
    await loadQuality(fn.liveModelVersion);
  }

  async function loadQuality(version) {
    const v = version ? await api.get(api.fn(fid, `/models/${version}`)) : null;
    if (!v) {
      clear(quality, empty('No live model'));
    } else if (v.quality) {
      clear(quality, qualityView(v.quality));
    } else {
      clear(quality, empty(`No quality for v${v.version}`, v.zeroShot
        ? 'A zero-shot model learned from label names alone: there is nothing to cross-validate.'
        : 'This version was trained before quality was measured.'));
    }
  }

  async function loadCapture() {
    const policy = await api.get(api.fn(fid, '/capture'));
    state.capture = policy;
    renderDrift();
    const left = policy.strategies.reduce((n, st) => n + st.used, 0);
    clear(capture,
      h('p', { 'data-testid': 'capture-left' }, h('strong', {}, plural(left, 'item')), ' to review'),
      h('div', { class: 'strategy-bars' }, policy.strategies.map((st) => h('div', {
        class: 'strategy-bar', 'data-testid': 'capture-strategy', 'data-strategy': st.name,
      },
      h('span', { class: 'strategy-name' }, strategyName(st.name)),
      fillBar(st.used, st.quota),
      h('span', { class: 'num small' }, `${st.used} / ${st.quota}`),
      h('span', { class: 'muted small' }, settingsText(st))))));
  }

  async function loadInvokes() {
    let recent;
    try {
      recent = await api.get(api.fn(fid, '/invokes'), { batchSize: 500 });
    } catch (err) {
      if (err.sessionEnded) throw err;
      clear(invokes, h('p', { class: 'muted' }, `Invokes are not available: ${err.message}`));
      return;
    }
    if (!recent.length) {
      clear(invokes, empty('No invokes stored yet', 'Invoke the function; its answers show up here.'));
      return;
    }
    const conf = recent.map((r) => r.confidence).sort((a, b) => a - b);
    const median = conf[Math.floor(conf.length / 2)];
    const low = conf.filter((c) => c < 0.5).length;
    clear(invokes, histogram(conf),
      h('p', { class: 'muted small', 'data-testid': 'invokes-summary' },
        `Last ${plural(recent.length, 'invoke')} · median confidence ${pct(median)} · `
        + `${low} below 50%`));
  }

  async function loadDrift() {
    try {
      state.drift = await api.get(api.fn(fid, '/drift'));
    } catch (err) {
      if (err.sessionEnded) throw err;
      clear(drift, h('p', { class: 'muted' }, `Drift is not available: ${err.message}`));
      return;
    }
    renderDrift();
    renderStatus();
  }

  function renderDrift() {
    if (state.drift) clear(drift, driftView(state.drift, state.capture));
  }

  function renderStatus() {
    const m = state.metrics;
    if (!m) return;
    const training = m.isTraining;
    clear(status,
      h('span', {
        class: `pill ${training ? 'training' : (m.liveModelVersion ? '' : 'none')}`.trim(),
        'data-testid': 'training-indicator',
        'data-state': training ? 'training' : 'idle',
      }, training ? [h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Training…']
        : (m.liveModelVersion ? 'Model up to date' : 'No model yet')),
      h('span', { class: 'stat' }, 'Live model ', h('strong', { 'data-testid': 'live-version' },
        m.liveModelVersion ? `v${m.liveModelVersion}` : 'none')),
      h('span', { class: 'stat' }, h('strong', {}, m.sampleCount), ' samples'),
      h('span', { class: 'stat' }, h('strong', {}, m.labelCount), ' labels'),
      state.drift && state.drift.flagged ? h('span', {
        class: 'pill drift', 'data-testid': 'drift-pill',
        title: 'Recent traffic differs from the reference: see the Drift card',
      }, `Drift on v${state.drift.modelVersion}`) : null,
      m.lastTrainingError ? h('span', { class: 'pill error', 'data-testid': 'training-error' },
        `Last training failed: ${m.lastTrainingError}`) : null);
  }

  function renderLabels() {
    const counts = (state.metrics && state.metrics.annotatedLabelCounts) || {};
    const name = h('input', { id: 'label-name', 'data-testid': 'new-label-name', placeholder: 'name' });
    const description = h('input', {
      id: 'label-description', 'data-testid': 'new-label-description', placeholder: 'optional',
    });
    const form = h('form', {
      class: 'inline-form',
      async onsubmit(e) {
        e.preventDefault();
        const made = await attempt(() => api.post(api.fn(fid, '/labels'), {
          name: name.value, description: description.value.trim() || undefined,
        }), 'Add label');
        if (made) await attempt(loadLabels);
      },
    },
    h('label', { for: 'label-name' }, 'Name'), name,
    h('label', { for: 'label-description' }, 'Description'), description,
    h('button', { type: 'submit', 'data-testid': 'add-label' }, 'Add label'));
    const list = state.labels.length ? h('table', { class: 'table', 'data-testid': 'labels-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Label'), h('th', {}, 'Description'),
        h('th', { class: 'num' }, 'Annotated'))),
      h('tbody', {}, state.labels.map((l) => h('tr', { 'data-testid': 'label-row', 'data-label-id': l.id },
        h('td', {}, l.name), h('td', { class: 'muted small' }, l.description || ''),
        h('td', { class: 'num', 'data-testid': 'label-count' }, counts[l.id] || 0)))))
      : empty('No labels yet', 'A function needs at least two labels to train.');
    // Keep what the user is typing when a poll re-renders the table.
    const typing = labels.querySelector('form');
    if (typing) clear(labels, list, typing);
    else clear(labels, list, form);
  }

  function schedule() {
    clearTimeout(timer);
    if (!ctx.alive) return;
    const training = state.metrics && state.metrics.isTraining;
    timer = setTimeout(poll, training ? FAST_MS : SLOW_MS);
  }

  async function poll() {
    const before = lastMetrics;
    await attempt(loadMetrics);
    const now = state.metrics;
    lastMetrics = now;
    // A run ended (or the pointer moved): new versions, live accuracy and re-scored buffer.
    if (before && now && ((before.isTraining && !now.isTraining)
        || before.liveModelVersion !== now.liveModelVersion)) {
      await Promise.all([attempt(loadModels), attempt(loadCapture), attempt(loadInvokes),
        attempt(loadDrift)]);
    }
    schedule();
  }

  Promise.all([attempt(loadLabels), attempt(loadModels), attempt(loadCapture),
    attempt(loadInvokes), attempt(loadDrift)]).then(() => {
    lastMetrics = state.metrics;
    schedule();
  });
}

function settingsText(st) {
  if (st.name === 'random') return `rate ${pct(st.rate, st.rate < 0.1 ? 1 : 0)}`;
  if (st.name === 'uncertainty') return `threshold ${st.threshold} · ${st.measure || 'margin'}`;
  if (st.name === 'rare_class') return `rarest ${pct(st.fraction)}`;
  if (st.name === 'near_threshold') return `band ${st.band} below accept`;
  if (st.name === 'confused_pair') return `top ${st.pairs} pairs · uncertainty ≥ ${st.threshold}`;
  return '';
}

// -- drift -----------------------------------------------------------------------------------

const count = (n) => Number(n).toLocaleString('en-US');
/** A PSI value as text: two decimals, trailing zeros dropped (0.3, 0.84, 0). */
const psi = (x) => String(Number(x.toFixed(2)));

/** The drift report (GET .../drift): a status line, the novel share then and now, and the
 * last days' invokes. `capture` (the capture policy, once loaded) gives the random boost. */
function driftView(d, capture) {
  const st = d.settings;
  const ref = count(st.referenceInvokes);
  const more = count(st.windowInvokes);
  let status;
  let state;
  if (d.modelVersion === null || d.modelVersion === undefined) {
    state = 'none';
    status = 'No live model: drift is measured on the live version\'s invokes.';
  } else if (d.score === null || d.score === undefined) {
    state = 'waiting';
    status = `Not enough traffic yet: the reference is the first ${ref} invokes of the live `
      + `version (v${d.modelVersion}), then ${more} more.`;
  } else if (d.flagged) {
    state = 'flagged';
    const s = d.signals;
    const factor = capture ? capture.driftRandomFactor : 2;
    const boost = factor === 1 ? 'Random capture is not boosted (drift factor 1).'
      : `Random capture samples ${factor === 2 ? 'twice' : `${factor}×`} as often until it settles.`;
    status = `Drift: the traffic no longer looks like the first ${ref} invokes of model `
      + `v${d.modelVersion} (score ${psi(d.score)} ≥ ${psi(st.threshold)}): labels `
      + `${psi(s.labels)}, confidence ${psi(s.confidence)}, novel inputs ${psi(s.novelty)}. `
      + boost;
  } else {
    state = 'ok';
    // Never show a score that rounds up to the threshold it stays under.
    const shown = Number(psi(d.score)) >= st.threshold ? d.score.toFixed(3) : psi(d.score);
    status = `No drift (score ${shown}, threshold ${psi(st.threshold)})`;
  }
  const head = h('p', {
    class: state === 'flagged' ? 'notice drift-status' : 'drift-status',
    'data-testid': 'drift-status', 'data-state': state,
  }, status);

  const detail = [];
  if (state === 'ok' && d.signals) {
    detail.push(h('p', { class: 'muted small', 'data-testid': 'drift-signals' },
      `labels ${psi(d.signals.labels)} · confidence ${psi(d.signals.confidence)} · `
      + `novel inputs ${psi(d.signals.novelty)}`));
  }
  if (state === 'waiting') {
    const counted = d.days.reduce((n, day) => n + day.invokes, 0);
    detail.push(h('p', { class: 'muted small', 'data-testid': 'drift-progress' }, d.reference
      ? `Reference complete (${count(d.reference.invokes)} invokes); waiting for ${more} more.`
      : (counted ? `${count(counted)} invokes counted in the last 14 days (all versions).`
        : 'No invokes counted yet.'),
    ' Counts are written every ', count(st.flushInvokes), ' invokes or ', st.flushSeconds,
    ' s.'));
  }
  if (d.reference) {
    detail.push(h('p', { class: 'small', 'data-testid': 'drift-novel' },
      'Novel inputs (no training sample within cosine ', String(st.novelCosine), '): ',
      h('strong', {}, pct(d.recent ? d.recent.novelShare : null, 1)), ' recently vs ',
      h('strong', {}, pct(d.reference.novelShare, 1)), ' in the reference'));
  }
  if (d.days.length) {
    const top = Math.max(1, ...d.days.map((day) => day.invokes));
    detail.push(h('table', { class: 'table compact drift-days', 'data-testid': 'drift-days' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Day (UTC)'), h('th', { class: 'num' }, 'Invokes'),
        h('th', {}), h('th', { class: 'num' }, 'Novel'))),
      h('tbody', {}, d.days.map((day) => h('tr', { 'data-testid': 'drift-day', 'data-date': day.date },
        h('td', { class: 'nowrap' }, day.date),
        h('td', { class: 'num' }, count(day.invokes)),
        h('td', { class: 'drift-bar' }, fillBar(day.invokes, top)),
        h('td', { class: 'num' }, pct(day.novelShare, 1)))))));
  }
  return [head, ...detail];
}
