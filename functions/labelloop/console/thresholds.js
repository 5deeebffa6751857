// Choosing the decision policy: the live version's precision–coverage curve (of all labels or
// of one), a threshold to try on it, the server's recommendation for a target precision, and
// saving either as the policy. A saved threshold stays as it is across model versions; a saved
// target is solved again by the server for every new version.

import * as api from './api.js';
import {
  h, clear, card, empty, attempt, pct, plural, byName,
} from './ui.js';
import { functionHeader } from './pages.js';
import { thresholdPlot, formatThreshold } from './curve.js';

const SOURCES = { confidence: 'fixed', cv: 'cross-validated', random: 'random captures' };

export function thresholdsPage(ctx, fid) {
  const header = functionHeader(ctx, fid, '/thresholds');
  const st = {
    report: null,
    label: '', // '' = all labels
    target: null, // null: the server's default (the policy's target, else 0.95)
    threshold: null, // the handle's value, kept across reloads
    plot: null,
    seq: 0,
  };

  const labelSelect = h('select', {
    id: 'label-select', 'data-testid': 'label-select',
    onchange: () => selectLabel(labelSelect.value),
  });
  const target = h('input', {
    id: 'target-precision', type: 'number', min: 0.5, max: 0.999, step: 0.01, class: 'narrow',
    'data-testid': 'target-precision',
    onchange: () => {
      st.target = target.value === '' ? null : Number(target.value);
      attempt(load, 'Thresholds');
    },
  });
  const recommendation = h('div', { class: 'recommendation', 'data-testid': 'recommendation' });
  const useRecommended = h('button', {
    type: 'button', 'data-testid': 'use-recommended',
    onclick: () => {
      const rec = scope().recommended;
      if (rec && st.plot) st.plot.set(rec.threshold);
    },
  }, 'Use recommended');
  const evidence = h('p', { class: 'muted small', 'data-testid': 'evidence' });
  const plotBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const savePolicy = h('button', {
    type: 'button', class: 'primary', 'data-testid': 'save-policy', disabled: true,
    title: 'Accept predictions at or above the handle\'s threshold',
    onclick: () => {
      const who = st.label ? ` ${nameOf(st.label)}` : '';
      save(fixedPolicy(), 'Save policy', `accept${who} ${ruleText({ confidence: st.plot.value() })}`);
    },
  }, 'Save as policy');
  const saveTarget = h('button', {
    type: 'button', 'data-testid': 'save-target', disabled: true,
    title: 'Accept at the lowest thresholds that show the target precision, solved again for '
      + 'every new model version',
    onclick: () => save(targetPolicy(), 'Save target',
      `accept ${ruleText({ targetPrecision: Number(target.value) })}`),
  }, 'Save target');
  const saved = h('span', { class: 'muted small', 'data-testid': 'save-status', 'aria-live': 'polite' });
  const clearPolicy = h('button', {
    type: 'button', 'data-testid': 'clear-policy', disabled: true, onclick: remove,
  }, 'Remove policy');
  const policyBox = h('div', { 'data-testid': 'policy-summary' }, h('p', { class: 'muted' }, 'Loading…'));
  const table = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));

  const help = h('p', { class: 'muted small' }, 'Predictions at or above the threshold are '
    + 'accepted. Precision: the share of accepted predictions that are right; coverage: the share '
    + 'of predictions accepted. Drag the handle, or focus it and use the arrow keys.');
  const controls = h('div', { class: 'threshold-controls' },
    h('div', { class: 'field' }, h('label', { for: 'label-select' }, 'Label'), labelSelect),
    h('div', { class: 'field' }, h('label', { for: 'target-precision' }, 'Target precision'), target),
    recommendation, useRecommended);
  const buttons = h('div', { class: 'actions' }, savePolicy, saveTarget, saved);
  const lower = h('div', { class: 'grid thresholds-grid' },
    card('Per label', 'per-label-card', null, table),
    card('Decision policy', 'policy-card', clearPolicy, policyBox));
  ctx.root.append(
    card('Precision and coverage', 'curve-card', null, help, controls, plotBox, evidence, buttons),
    lower);

  const scope = () => (st.label && st.report.label ? st.report.label : st.report.overall);
  const nameOf = (id) => {
    const l = st.report && st.report.perLabel.find((x) => x.labelId === id);
    return l ? l.labelName : id;
  };

  async function load() {
    const seq = ++st.seq;
    let report;
    try {
      report = await api.get(api.fn(fid, '/thresholds'),
        { targetPrecision: st.target, label: st.label });
    } catch (err) {
      if (err.status !== 409) throw err;
      if (seq === st.seq && ctx.alive) noModel();
      return;
    }
    // Only the newest request counts: a slow answer must not undo a later choice.
    if (seq !== st.seq || !ctx.alive) return;
    st.report = report;
    render();
  }

  function selectLabel(labelId) {
    st.label = labelId;
    labelSelect.value = labelId;
    st.threshold = policyThreshold(st.report && st.report.policy, labelId) ?? st.threshold;
    attempt(load, 'Thresholds');
  }

  function noModel() {
    for (const el of [help, controls, buttons, lower]) el.hidden = true;
    clear(plotBox, empty('No model yet', 'Thresholds are chosen on a trained model: add labels '
      + 'and annotated samples first.'));
  }

  function render() {
    const r = st.report;
    clear(labelSelect, h('option', { value: '' }, 'All labels'),
      [...r.perLabel].map((l) => ({ ...l, name: l.labelName })).sort(byName)
        .map((l) => h('option', { value: l.labelId }, l.labelName)));
    labelSelect.value = st.label;
    if (st.target === null) target.value = r.targetPrecision;
    const sc = scope();
    const rec = sc.recommended;
    if (st.threshold === null) {
      st.threshold = policyThreshold(r.policy, st.label) ?? (rec ? rec.threshold : 0.5);
    }
    renderRecommendation(r, sc);
    if (sc.curve.total === 0) {
      st.plot = null;
      clear(plotBox, empty('Nothing to measure on', r.zeroShot
        ? 'The live version is zero-shot: it has no cross-validated predictions. A target can '
          + 'still be saved; it is solved once a trained version is live.'
        : 'This version has no cross-validated predictions.'));
    } else {
      st.plot = thresholdPlot(sc.curve, {
        value: st.threshold,
        recommended: rec ? rec.threshold : null,
        onChange: (t) => { st.threshold = t; },
      });
      clear(plotBox, st.plot.el);
    }
    evidence.textContent = sc.curve.total ? evidenceText(r, sc) : '';
    savePolicy.disabled = !st.plot;
    saveTarget.disabled = false;
    useRecommended.disabled = !rec || !st.plot;
    renderPolicy(r);
    renderTable(r);
  }

  function renderRecommendation(r, sc) {
    const goal = `precision ≥ ${pct(r.targetPrecision, 1)}`;
    const on = st.label ? ` on ${sc.labelName}` : '';
    const rec = sc.recommended;
    recommendation.dataset.threshold = rec ? formatThreshold(rec.threshold) : '';
    clear(recommendation, rec
      ? h('p', {}, 'For ', goal, on, ': threshold ', h('strong', {}, formatThreshold(rec.threshold)),
        `, expected ${interval('precision', rec.precision, rec.precisionInterval95)}, `
        + `${interval('coverage', rec.coverage, rec.coverageInterval95)} `
        + `(${rec.covered} of ${rec.total}).`)
      : h('p', { class: 'warn-text' }, `No threshold shows ${goal}${on}: ${sc.reason}.`));
  }

  function renderPolicy(r) {
    const p = r.policy;
    clearPolicy.disabled = !p;
    if (!p) {
      clear(policyBox, empty('No policy', 'Invokes carry no decision until a threshold or a '
        + 'target is saved.'));
      return;
    }
    const overrides = Object.entries(p.perLabel || {});
    clear(policyBox,
      h('dl', { class: 'policy' },
        h('dt', {}, 'Accept'), h('dd', { 'data-testid': 'policy-accept' }, ruleText(p.accept)),
        h('dt', {}, 'Review'), h('dd', {}, p.review
          ? `${ruleText(p.review)}; below it: reject` : 'whatever is not accepted'),
        overrides.map(([id, rules]) => [h('dt', {}, nameOf(id)), h('dd', {}, [
          rules.accept ? `accept ${ruleText(rules.accept)}` : null,
          rules.review ? `review ${ruleText(rules.review)}` : null,
        ].filter(Boolean).join(' · '))])),
      r.applied ? h('table', { class: 'table compact', 'data-testid': 'applied-table' },
        h('caption', { class: 'muted small' }, `Applied to v${r.modelVersion}`),
        h('thead', {}, h('tr', {}, h('th', {}, 'Label'), h('th', { class: 'num' }, 'Accept at'),
          h('th', { class: 'num' }, 'Review at'), h('th', {}, 'From'))),
        h('tbody', {}, r.applied.map((a) => h('tr', {
          'data-testid': 'applied-row', 'data-label-id': a.labelId, 'data-accept': a.accept ?? '',
        },
        h('td', {}, a.labelName || a.labelId),
        h('td', { class: 'num' }, a.accept === null
          ? h('span', { class: 'muted', title: a.reason || '' }, 'nothing') : formatThreshold(a.accept)),
        h('td', { class: 'num' }, a.review ? formatThreshold(a.review) : '—'),
        h('td', { class: 'muted small' }, sourceText(a.source)))))) : null);
  }

  function renderTable(r) {
    if (!r.perLabel.length) {
      clear(table, empty('No labels'));
      return;
    }
    const rows = [...r.perLabel].map((l) => ({ ...l, name: l.labelName })).sort(byName);
    clear(table, h('div', { class: 'table-scroll' }, h('table', {
      class: 'table', 'data-testid': 'thresholds-table',
    },
    h('thead', {}, h('tr', {}, h('th', {}, 'Label'), h('th', { class: 'num' }, 'Support'),
      h('th', { class: 'num' }, 'Precision'), h('th', { class: 'num' }, 'Recall'),
      h('th', { class: 'num' }, 'Own threshold'))),
    h('tbody', {}, rows.map((l) => h('tr', {
      'data-testid': 'threshold-row', 'data-label-id': l.labelId,
      class: l.labelId === st.label ? 'is-selected' : null,
    },
    h('td', {}, h('button', {
      type: 'button', class: 'link', title: 'Plot this label\'s curve',
      onclick: () => selectLabel(l.labelId),
    }, l.labelName)),
    h('td', { class: 'num' }, l.support),
    h('td', { class: 'num' }, pct(l.precision, 1)),
    h('td', { class: 'num' }, pct(l.recall, 1)),
    h('td', { class: 'num' }, l.recommended ? formatThreshold(l.recommended.threshold)
      : h('span', { class: 'muted', title: l.reason || '' }, '—'))))))));
  }

  // -- saving ------------------------------------------------------------------------------

  // The rest of the current policy is kept: a threshold saved for one label adds (or
  // replaces) that label's override and leaves the others alone.
  function fixedPolicy() {
    const p = st.report.policy || {};
    const rule = { confidence: st.plot.value() };
    if (!st.label) return { accept: rule, review: p.review, perLabel: p.perLabel };
    return {
      accept: p.accept || rule,
      review: p.review,
      perLabel: { ...p.perLabel, [st.label]: { accept: rule } },
    };
  }

  function targetPolicy() {
    const p = st.report.policy || {};
    return {
      accept: { targetPrecision: Number(target.value) }, review: p.review, perLabel: p.perLabel,
    };
  }

  async function save(policy, what, rule) {
    saved.textContent = '';
    const done = await attempt(() => api.put(api.fn(fid, '/thresholds'), policy), what);
    if (done === undefined || !ctx.alive) return;
    saved.textContent = `Saved: ${rule}.`;
    await attempt(load, 'Thresholds');
  }

  async function remove() {
    const done = await attempt(() => api.del(api.fn(fid, '/thresholds')), 'Remove policy');
    if (done === undefined || !ctx.alive) return;
    saved.textContent = 'Policy removed: invokes carry no decision.';
    await attempt(load, 'Thresholds');
  }

  // The function says whether there is a model: no need to ask for the report's 409.
  header.then((f) => {
    if (!ctx.alive) return;
    if (f && !f.liveModelVersion) noModel();
    else attempt(load, 'Thresholds');
  });
}

/** The fixed accept threshold the policy gives this label ('' = the global rule), or null. */
function policyThreshold(policy, labelId) {
  if (!policy) return null;
  const own = labelId && policy.perLabel && policy.perLabel[labelId];
  const rule = (own && own.accept) || policy.accept;
  return rule.confidence ?? null;
}

function ruleText(rule) {
  return rule.confidence !== undefined && rule.confidence !== null
    ? `at confidence ≥ ${formatThreshold(rule.confidence)}`
    : `where precision ≥ ${pct(rule.targetPrecision, 1)} can be shown (solved per version)`;
}

const sourceText = (source) => SOURCES[source] || source;

function interval(what, value, [low, high]) {
  return `${what} ${pct(value, 1)} (${pct(low, 1)}–${pct(high, 1)})`;
}

function evidenceText(r, sc) {
  const e = r.evidence;
  const on = sc.source && sc.source.startsWith('random')
    ? `${plural(e.randomCaptures, 'annotated random capture')}`
    : `${plural(e.crossValidated - e.picked, 'cross-validated prediction')}`
      + (e.picked ? ` (${e.picked} samples picked for being hard — captures, feedback — left out)` : '')
      + ` (annotated random captures: ${e.randomCaptures} of the ${e.minRandom} that would `
      + 'replace them)';
  return `v${r.modelVersion}, measured on ${on}.`;
}
