// A function at a glance: model versions (with accuracy and the live pointer), the live
// version's quality per label, labels, the capture buffer and recent invoke confidence.
// Metrics are polled, quickly while a training run is pending or running, and the versions
// reload when one ends.

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
    card('Labels', 'labels-card', null, labels),
    h('div', { class: 'column' },
      card('Capture buffer', 'capture-card',
        h('a', { href: `#/functions/${fid}/review`, class: 'button-link' }, 'Review →'), capture),
      card('Recent invoke confidence', 'invokes-card', null, invokes))));

  const state = { labels: [], metrics: null };
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
      await Promise.all([attempt(loadModels), attempt(loadCapture), attempt(loadInvokes)]);
    }
    schedule();
  }

  Promise.all([attempt(loadLabels), attempt(loadModels), attempt(loadCapture),
    attempt(loadInvokes)]).then(() => {
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
