// The review queue: one captured invoke at a time, labelled from the keyboard.
//
// The page keeps the server's order and a set of ids it has hidden (labelled, skipped, or
// dismissed); the item shown is the first one not hidden. That makes every undo the same
// move: unhide, and put the item back in front. Writes are optimistic and run one after
// another (so an undo's DELETE always follows its POST); a failed write unhides its items.
//
// Dismissing cannot be undone on the server (the item is deleted), so a dismiss is held back:
// it is sent with the next action, after a few seconds, or when the page goes away.

import * as api from './api.js';
import {
  h, clear, empty, attempt, showError, pct, when, plural, byName, labelNamer, strategyName,
} from './ui.js';
import { functionHeader } from './pages.js';
import {
  typingIn, defaultKeys, loadKeys, saveKeys, forgetKeys, keySettings,
} from './keys.js';
import { similarPanel, savedThreshold } from './similar.js';

const DISMISS_DELAY_MS = 5000;
const PAGE = 50;
const SIMILAR = 20;

export function reviewPage(ctx, fid) {
  functionHeader(ctx, fid, '/review');
  const st = {
    labels: [],
    keys: [], // keys[i]: the label id for key i + 1, or ''
    strategies: [],
    strategy: '', // '' = all strategies, merged by the server
    queue: [],
    loaded: false,
    hidden: new Set(),
    skipped: new Set(),
    history: [],
    pending: null, // the deferred dismiss: {item, timer}
    similar: null, // {for: sampleId, loading, items: [{item, checked}]}
    threshold: savedThreshold(),
    busy: 0,
  };
  let nameOf = labelNamer([]);
  let chain = Promise.resolve();
  let toastTimer = null;

  const tabs = h('div', {
    class: 'tabs sub', role: 'tablist', 'aria-label': 'Capture strategy', 'data-testid': 'strategy-tabs',
  });
  const left = h('span', { class: 'left-count', 'data-testid': 'review-left', 'aria-live': 'polite' });
  const stage = h('div', { class: 'review-stage' });
  const side = h('aside', { class: 'review-side' });
  const toast = h('div', { class: 'toast', 'data-testid': 'toast', 'aria-live': 'polite', hidden: true });
  const root = h('div', { class: 'review', 'data-testid': 'review', 'data-busy': 'false' },
    h('div', { class: 'review-bar' }, tabs, left), h('div', { class: 'review-body' }, stage, side), toast);
  ctx.root.append(root);

  const current = () => st.queue.find((i) => !st.hidden.has(i.id));

  // -- server ------------------------------------------------------------------------------

  function serial(work, onFail) {
    st.busy += 1;
    root.dataset.busy = 'true';
    chain = chain.then(work).catch((err) => {
      if (onFail) onFail(err);
      showError(err);
      render();
    }).finally(() => {
      st.busy -= 1;
      root.dataset.busy = st.busy ? 'true' : 'false';
      if (ctx.alive) attempt(loadCapture);
    });
  }

  async function loadCapture() {
    const policy = await api.get(api.fn(fid, '/capture'));
    st.strategies = policy.strategies;
    renderTabs();
  }

  async function fetchQueue() {
    // Skipped and in-flight items still come back from the server: ask for enough to see past them.
    const size = Math.min(1000, PAGE + st.hidden.size);
    const items = await api.get(api.fn(fid, '/review'), {
      strategy: st.strategy || undefined, batchSize: size,
    });
    const ids = new Set(items.map((i) => i.id));
    // An undone annotation is not back in the server's buffer (clearing it does not re-buffer
    // the item), so keep such items here.
    const kept = st.queue.filter((i) => !st.hidden.has(i.id) && !ids.has(i.id));
    st.queue = [...kept, ...items];
    st.loaded = true;
    render();
  }

  function refillIfEmpty() {
    if (!current()) attempt(fetchQueue);
  }

  function toFront(item) {
    st.queue = [item, ...st.queue.filter((i) => i.id !== item.id)];
  }

  // -- actions -----------------------------------------------------------------------------

  function annotate(labelId) {
    const item = current();
    if (!item || !labelId) return;
    commitDismiss();
    const similar = st.similar && st.similar.for === item.id ? st.similar.items : [];
    const ids = [item.id, ...similar.filter((x) => x.checked).map((x) => x.item.id)];
    for (const id of ids) st.hidden.add(id);
    const entry = { kind: 'annotate', item, ids, labelId };
    st.history.push(entry);
    st.similar = null;
    flash(`${ids.length > 1 ? plural(ids.length, 'item') : 'Labelled'} → ${nameOf(labelId)} · u to undo`);
    render();
    refillIfEmpty();
    serial(async () => {
      const out = await api.post(api.fn(fid, '/review/annotations'), {
        annotations: ids.map((sampleId) => ({ sampleId, labelId })),
      });
      const failed = out.results.filter((r) => r.status !== 200);
      if (failed.length) {
        for (const r of failed) st.hidden.delete(r.sampleId);
        entry.ids = entry.ids.filter((id) => !failed.some((r) => r.sampleId === id));
        showError(`${plural(failed.length, 'item')} not labelled: ${failed[0].message}`);
        render();
      }
    }, () => {
      for (const id of ids) st.hidden.delete(id);
      st.history = st.history.filter((e) => e !== entry);
    });
  }

  function skip() {
    const item = current();
    if (!item) return;
    commitDismiss();
    st.hidden.add(item.id);
    st.skipped.add(item.id);
    st.history.push({ kind: 'skip', item });
    st.similar = null;
    render();
    refillIfEmpty();
  }

  function dismiss() {
    const item = current();
    if (!item) return;
    commitDismiss();
    st.hidden.add(item.id);
    st.similar = null;
    st.pending = { item, timer: setTimeout(commitDismiss, DISMISS_DELAY_MS) };
    showToast('Dismissed · u to undo', true);
    render();
    refillIfEmpty();
  }

  /** Sends the held-back dismiss, if any. keepalive: it may run from pagehide. */
  function commitDismiss() {
    const p = st.pending;
    if (!p) return;
    clearTimeout(p.timer);
    st.pending = null;
    hideToast();
    st.history.push({ kind: 'dismissed', item: p.item });
    // Not queued behind other writes: on pagehide it has to leave now.
    api.request('POST', api.fn(fid, `/review/${encodeURIComponent(p.item.id)}/dismiss`), { keepalive: true })
      .then(() => ctx.alive && attempt(loadCapture))
      .catch((err) => {
        st.hidden.delete(p.item.id);
        showError(err, 'Dismiss');
        render();
      });
  }

  function undo() {
    if (st.pending) {
      const { item, timer } = st.pending;
      clearTimeout(timer);
      st.pending = null;
      st.hidden.delete(item.id);
      toFront(item);
      flash('Dismiss undone');
      render();
      return;
    }
    const entry = st.history.pop();
    if (!entry) {
      flash('Nothing to undo');
      return;
    }
    if (entry.kind === 'dismissed') {
      flash('A dismissed item cannot be brought back once it is sent');
      return;
    }
    st.similar = null;
    if (entry.kind === 'skip') {
      st.skipped.delete(entry.item.id);
      st.hidden.delete(entry.item.id);
      toFront(entry.item);
      render();
      return;
    }
    for (const id of entry.ids) st.hidden.delete(id);
    toFront(entry.item);
    flash(`Label removed from ${plural(entry.ids.length, 'item')}`);
    render();
    serial(() => Promise.all(entry.ids.map((id) => api.del(
      api.fn(fid, `/samples/${encodeURIComponent(id)}/annotation`)))));
  }

  async function toggleSimilar() {
    const item = current();
    if (!item) return;
    if (st.similar && st.similar.for === item.id) {
      st.similar = null;
      render();
      return;
    }
    st.similar = { for: item.id, loading: true, items: [] };
    render();
    const found = await attempt(() => api.get(
      api.fn(fid, `/samples/${encodeURIComponent(item.id)}/similar`),
      { batchSize: SIMILAR, inReviewQueue: true }), 'Similar items');
    if (!st.similar || st.similar.for !== item.id) return; // moved on meanwhile
    st.similar = found ? {
      for: item.id,
      loading: false,
      // Skipped items are still to review, so they may go along; labelled ones may not.
      items: found.filter((x) => !st.hidden.has(x.id) || st.skipped.has(x.id))
        .map((x) => ({ item: x, checked: x.similarity >= st.threshold })),
    } : null;
    render();
  }

  function setStrategy(name) {
    if (name === st.strategy) return;
    commitDismiss();
    st.strategy = name;
    st.similar = null;
    st.queue = [];
    st.loaded = false;
    renderTabs();
    render();
    attempt(fetchQueue);
  }

  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat || typingIn(e.target)) return;
    const key = e.key.toLowerCase();
    let handled = true;
    if (/^[1-9]$/.test(key)) annotate(st.keys[Number(key) - 1]);
    else if (key === 's') skip();
    else if (key === 'd') dismiss();
    else if (key === 'u') undo();
    else if (key === 'f') toggleSimilar();
    else if (key === 'escape' && st.similar) {
      st.similar = null;
      render();
    } else handled = false;
    if (handled) e.preventDefault();
  }

  document.addEventListener('keydown', onKey);
  ctx.onCleanup(() => {
    document.removeEventListener('keydown', onKey);
    clearTimeout(toastTimer);
    commitDismiss();
  });

  // -- rendering ---------------------------------------------------------------------------

  function flash(text) {
    if (st.pending) return; // the pending dismiss keeps its undo hint
    showToast(text, false);
    clearTimeout(toastTimer);
    toastTimer = setTimeout(hideToast, 2500);
  }

  function showToast(text, withUndo) {
    clearTimeout(toastTimer);
    clear(toast, h('span', {}, text), withUndo
      ? h('button', { type: 'button', class: 'link', 'data-testid': 'toast-undo', onclick: undo }, 'Undo')
      : null);
    toast.hidden = false;
  }

  function hideToast() {
    toast.hidden = true;
  }

  function renderTabs() {
    const count = (name) => st.strategies.filter((x) => !name || x.name === name)
      .reduce((n, x) => n + x.used, 0);
    const tab = (name, text) => h('button', {
      type: 'button', class: name === st.strategy ? 'tab active' : 'tab', role: 'tab',
      'aria-selected': name === st.strategy ? 'true' : 'false',
      'data-testid': `strategy-tab-${name || 'all'}`, onclick: () => setStrategy(name),
    }, text, ' ', h('span', { class: 'count' }, count(name)));
    clear(tabs, tab('', 'All'), st.strategies.map((x) => tab(x.name, strategyName(x.name))));
    const n = count(st.strategy);
    left.textContent = `${plural(n, 'item')} left`;
    left.dataset.count = String(n);
  }

  function renderItem(item) {
    const p = item.invokePrediction;
    const now = item.prediction;
    const changed = p && now && now.labelId !== p.labelId;
    const similarOpen = st.similar && st.similar.for === item.id;
    return h('article', { class: 'review-item card', 'data-testid': 'review-item', 'data-sample-id': item.id },
      h('div', { class: 'item-meta' },
        h('span', { class: 'badge', 'data-testid': 'capture-reason' },
          item.captureReason ? strategyName(item.captureReason) : 'captured'),
        item.priority !== undefined ? h('span', { class: 'muted small' }, `priority ${item.priority.toFixed(3)}`) : null,
        h('span', { class: 'muted small' }, when(item.createdAt)),
        item.externalId ? h('span', { class: 'muted small mono' }, item.externalId) : null),
      h('div', { class: 'item-text', 'data-testid': 'review-text' }, item.data),
      h('div', { class: 'item-prediction', 'data-testid': 'review-prediction' }, p
        ? ['Predicted ', h('strong', {}, nameOf(p.labelId)), ` ${pct(p.confidence)}`,
          h('span', { class: 'muted small' }, ` · margin ${p.margin.toFixed(2)} · model v${p.modelVersion}`),
          changed ? h('span', { class: 'muted small' },
            ` · current model: ${nameOf(now.labelId)} ${pct(now.confidence)}`) : null]
        : h('span', { class: 'muted' }, 'No prediction stored')),
      h('div', { class: 'item-actions' },
        h('button', { type: 'button', onclick: skip, 'data-testid': 'skip' }, h('kbd', {}, 's'), ' Skip'),
        h('button', { type: 'button', onclick: dismiss, 'data-testid': 'dismiss' }, h('kbd', {}, 'd'), ' Dismiss'),
        h('button', { type: 'button', onclick: undo, 'data-testid': 'undo' }, h('kbd', {}, 'u'), ' Undo'),
        h('button', {
          type: 'button', onclick: toggleSimilar, 'data-testid': 'similar-button',
          'aria-expanded': similarOpen ? 'true' : 'false',
        }, h('kbd', {}, 'f'), ' Select similar')),
      similarOpen ? similarPanel({
        sim: st.similar,
        threshold: st.threshold,
        nameOf,
        onThreshold(t) {
          st.threshold = t;
          render();
        },
      }) : null);
  }

  function renderSide() {
    const byKey = st.keys.map((id, i) => [i + 1, id]).filter(([, id]) => id);
    const keyed = new Set(byKey.map(([, id]) => id));
    const item = current();
    const predicted = item && item.invokePrediction && item.invokePrediction.labelId;
    const button = (key, l) => h('button', {
      type: 'button', class: l.id === predicted ? 'label-button predicted' : 'label-button',
      'data-testid': 'label-button', 'data-label-id': l.id, disabled: !item,
      onclick: () => annotate(l.id),
    }, key ? h('kbd', {}, String(key)) : h('kbd', { class: 'blank' }, '·'), ` ${l.name}`);
    const labelsById = new Map(st.labels.map((l) => [l.id, l]));
    const details = side.querySelector('details');
    const settings = keySettings({
      labels: st.labels,
      keys: st.keys,
      open: !!(details && details.open),
      onChange(keys) {
        st.keys = keys;
        saveKeys(fid, keys);
        render();
      },
      onReset() {
        forgetKeys(fid);
        st.keys = defaultKeys(st.labels);
        render();
      },
    });
    clear(side,
      h('h2', {}, 'Label'),
      h('div', { class: 'label-buttons', 'data-testid': 'label-buttons' },
        byKey.map(([k, id]) => labelsById.get(id) && button(k, labelsById.get(id))),
        st.labels.filter((l) => !keyed.has(l.id)).map((l) => button(null, l))),
      h('p', { class: 'muted small keys-help' },
        h('kbd', {}, '1'), '–', h('kbd', {}, '9'), ' label · ', h('kbd', {}, 's'), ' skip · ',
        h('kbd', {}, 'd'), ' dismiss · ', h('kbd', {}, 'u'), ' undo · ', h('kbd', {}, 'f'), ' similar'),
      settings);
  }

  function render() {
    renderSide();
    const item = current();
    if (item) {
      clear(stage, renderItem(item));
      return;
    }
    if (!st.loaded) {
      clear(stage, h('p', { class: 'muted' }, 'Loading…'));
      return;
    }
    const skipped = [...st.skipped].length;
    const where = st.strategy ? ` for ${strategyName(st.strategy)}` : '';
    clear(stage, h('div', { class: 'card', 'data-testid': 'review-empty' },
      empty(`Nothing to review${where}`, skipped
        ? `You skipped ${plural(skipped, 'item')} in this session.`
        : 'Captured invokes land here. Invoke the function, or raise a capture strategy’s '
          + 'rate or quota (PUT …/capture).'),
      skipped ? h('button', {
        type: 'button', 'data-testid': 'review-skipped-again',
        onclick() {
          for (const id of st.skipped) st.hidden.delete(id);
          st.skipped.clear();
          st.history = st.history.filter((e) => e.kind !== 'skip');
          render();
          refillIfEmpty();
        },
      }, 'Review the skipped items') : null));
  }

  render();
  Promise.all([
    attempt(async () => {
      st.labels = (await api.get(api.fn(fid, '/labels'))).sort(byName);
      nameOf = labelNamer(st.labels);
      st.keys = loadKeys(fid, st.labels);
    }),
    attempt(loadCapture),
  ]).then(() => attempt(fetchQueue));
}
