// The review queue's page: one captured invoke at a time, labelled from the keyboard. The
// queue and its undo are review_state.js; this draws its state, turns keys and buttons into its
// events, and carries out the effects it asks for (requests through api.js, timers, toasts).
// Its last tab is the suspected mislabels: annotated samples the last training run doubts,
// relabelled, kept or deleted the same way.

import * as api from './api.js';
import {
  h, clear, empty, attempt, showError, pct, when, plural, byName, labelNamer, strategyName,
} from './ui.js';
import { functionHeader } from './pages.js';
import { shown } from './picture.js';
import {
  typingIn, defaultKeys, loadKeys, saveKeys, forgetKeys, keySettings,
} from './keys.js';
import { similarPanel, savedThreshold } from './similar.js';
import {
  initialState, step, current, busy, keyCommand, suspected, SUSPECT,
} from './review_state.js';

const DISMISS_DELAY_MS = 5000;
const SIMILAR = 20;
const SUSPECT_PEEK = 50; // suspects fetched on opening, for the tab's count
// The state fields the page draws from: an event that changes none of them redraws nothing.
const DRAWN = ['queue', 'hidden', 'skipped', 'loaded', 'strategy', 'similar', 'threshold'];

export function reviewPage(ctx, fid) {
  functionHeader(ctx, fid, '/review');
  let st = initialState(savedThreshold());
  let labels = [];
  let keys = []; // keys[i]: the label id for key i + 1, or ''
  let strategies = [];
  let nameOf = labelNamer([]);
  // The suspect queue has no count: the items last seen of it, `more` when a batch came full.
  let suspects = null; // {n, more}
  let toastTimer = null;
  let dismissTimer = null;

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

  /** Every change of the queue's state goes through here. Requests keep running after the
   * page is left (a write or a dismiss must still land); drawing into it then is harmless. */
  function send(event) {
    const before = st;
    const out = step(st, event);
    st = out.state;
    root.dataset.busy = busy(st) ? 'true' : 'false';
    if (st.strategy !== before.strategy) renderTabs();
    if (DRAWN.some((k) => st[k] !== before[k])) render();
    for (const effect of out.effects) perform(effect);
  }

  function perform(fx) {
    switch (fx.type) {
      case 'fetch':
        attempt(async () => {
          const items = await api.get(api.fn(fid, '/review'),
            { strategy: fx.strategy, batchSize: fx.batchSize });
          if (fx.strategy === SUSPECT && st.strategy === SUSPECT) {
            suspects = { n: items.length, more: items.length >= fx.batchSize };
          }
          send({ type: 'loaded', items, strategy: fx.strategy });
        });
        break;
      case 'annotate':
        settle(api.post(api.fn(fid, '/review/annotations'), {
          annotations: fx.ids.map((sampleId) => ({ sampleId, labelId: fx.labelId })),
        }).then((out) => ({ type: 'written', results: out.results })));
        break;
      case 'clear':
        settle(Promise.all(fx.ids.map((id) => api.del(
          api.fn(fid, `/samples/${encodeURIComponent(id)}/annotation`))))
          .then(() => ({ type: 'written' })));
        break;
      case 'keep':
        settle(api.post(api.fn(fid, `/review/${encodeURIComponent(fx.id)}/keep`))
          .then(() => ({ type: 'written' })));
        break;
      case 'dismiss':
        // Not queued behind the writes: on pagehide it has to leave now.
        api.request('POST', api.fn(fid, `/review/${encodeURIComponent(fx.id)}/dismiss`), { keepalive: true })
          .then(() => send({ type: 'dismissSent' }), (err) => {
            showError(err, 'Dismiss');
            send({ type: 'dismissFailed', id: fx.id });
          });
        break;
      case 'delete':
        api.request('DELETE', api.fn(fid, `/samples/${encodeURIComponent(fx.id)}`), { keepalive: true })
          .then(() => send({ type: 'dismissSent' }), (err) => {
            showError(err, 'Delete');
            send({ type: 'dismissFailed', id: fx.id });
          });
        break;
      case 'similar':
        attempt(() => api.get(api.fn(fid, `/samples/${encodeURIComponent(fx.id)}/similar`),
          { batchSize: SIMILAR, inReviewQueue: true }), 'Similar items')
          .then((items) => send(items
            ? { type: 'similarFound', for: fx.id, items }
            : { type: 'similarFailed', for: fx.id }));
        break;
      case 'counts':
        if (ctx.alive) attempt(loadCapture);
        break;
      case 'startTimer':
        dismissTimer = setTimeout(() => send({ type: 'commitDismiss' }), DISMISS_DELAY_MS);
        break;
      case 'stopTimer':
        clearTimeout(dismissTimer);
        break;
      case 'toast':
        flash(toastText(fx));
        break;
      case 'undoToast':
        showToast(`${fx.say === 'deleted' ? 'Deleted' : 'Dismissed'} · u to undo`, true);
        break;
      case 'hideToast':
        hideToast();
        break;
      case 'notLabelled':
        showError(`${plural(fx.count, 'item')} not labelled: ${fx.message}`);
        break;
      case 'notRestored':
        showError(`Old label not put back on ${plural(fx.count, 'item')}: ${fx.message}`);
        break;
      default:
        throw new Error(`unknown review effect ${fx.type}`);
    }
  }

  /** A write's answer, good or bad, goes back as the event that lets the next write go. */
  function settle(request) {
    request.catch((err) => {
      showError(err);
      return { type: 'writeFailed' };
    }).then(send);
  }

  function toastText(fx) {
    switch (fx.say) {
      case 'labelled':
        return `${fx.count > 1 ? plural(fx.count, 'item') : 'Labelled'} → ${nameOf(fx.labelId)} · u to undo`;
      case 'relabelled': return `Relabelled → ${nameOf(fx.labelId)} · u to undo`;
      case 'kept': return `Kept ${nameOf(fx.labelId)} · u to undo`;
      case 'labelRemoved': return `Label removed from ${plural(fx.count, 'item')}`;
      case 'labelRestored': return `Label ${nameOf(fx.labelId)} put back`;
      case 'keepUndone': return 'Shown again: its label stays kept unless you relabel it';
      case 'dismissUndone': return 'Dismiss undone';
      case 'deleteUndone': return 'Delete undone';
      case 'dismissSent': return 'A dismissed item cannot be brought back once it is sent';
      case 'deleteSent': return 'A deleted sample cannot be brought back once it is sent';
      case 'nothingToUndo': return 'Nothing to undo';
      default: throw new Error(`unknown review toast ${fx.say}`);
    }
  }

  async function loadCapture() {
    const policy = await api.get(api.fn(fid, '/capture'));
    strategies = policy.strategies;
    renderTabs();
  }

  async function peekSuspects() {
    const items = await api.get(api.fn(fid, '/review'), { strategy: SUSPECT, batchSize: SUSPECT_PEEK });
    if (!suspects) suspects = { n: items.length, more: items.length >= SUSPECT_PEEK };
    renderTabs();
  }

  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat || typingIn(e.target)) return;
    const event = keyCommand(st, e.key.toLowerCase(), keys);
    if (!event) return;
    e.preventDefault();
    send(event);
  }

  document.addEventListener('keydown', onKey);
  ctx.onCleanup(() => {
    document.removeEventListener('keydown', onKey);
    clearTimeout(toastTimer);
    send({ type: 'commitDismiss' });
  });

  // -- rendering ---------------------------------------------------------------------------

  function flash(text) {
    showToast(text, false);
    clearTimeout(toastTimer);
    toastTimer = setTimeout(hideToast, 2500);
  }

  function showToast(text, withUndo) {
    clearTimeout(toastTimer);
    clear(toast, h('span', {}, text), withUndo
      ? h('button', {
        type: 'button', class: 'link', 'data-testid': 'toast-undo', onclick: () => send({ type: 'undo' }),
      }, 'Undo')
      : null);
    toast.hidden = false;
  }

  function hideToast() {
    toast.hidden = true;
  }

  function renderTabs() {
    if (st.strategy === SUSPECT && st.loaded) {
      // What is left of the loaded ones.
      suspects = { ...suspects, n: st.queue.filter((i) => !st.hidden.has(i.id)).length };
    }
    const count = (name) => {
      if (name === SUSPECT) return suspects ? suspects.n : null;
      return strategies.filter((x) => !name || x.name === name).reduce((n, x) => n + x.used, 0);
    };
    const counted = (name) => {
      const n = count(name);
      return n === null ? '…' : `${n}${name === SUSPECT && suspects.more ? '+' : ''}`;
    };
    const tab = (name, text) => h('button', {
      type: 'button', class: name === st.strategy ? 'tab active' : 'tab', role: 'tab',
      'aria-selected': name === st.strategy ? 'true' : 'false',
      'data-testid': `strategy-tab-${name || 'all'}`, onclick: () => send({ type: 'strategy', name }),
    }, text, ' ', h('span', { class: 'count' }, counted(name)));
    clear(tabs, tab('', 'All'), strategies.map((x) => tab(x.name, strategyName(x.name))),
      tab(SUSPECT, 'Suspected mislabels'));
    const n = count(st.strategy);
    left.textContent = n === null ? '' : `${counted(st.strategy)} ${n === 1 ? 'item' : 'items'} left`;
    left.dataset.count = n === null ? '' : String(n);
  }

  function renderSuspect(item) {
    const x = item.suspect;
    return h('article', { class: 'review-item card', 'data-testid': 'review-item', 'data-sample-id': item.id },
      h('div', { class: 'item-meta' },
        h('span', { class: 'badge suspect', 'data-testid': 'suspect-badge' }, 'suspected mislabel'),
        h('span', { class: 'muted small' }, `margin ${x.margin.toFixed(2)} · model v${x.modelVersion}`),
        h('span', { class: 'muted small' }, when(item.createdAt)),
        item.externalId ? h('span', { class: 'muted small mono' }, item.externalId) : null),
      h('div', { class: 'item-suspect', 'data-testid': 'suspect-line' },
        'annotated ', h('strong', { 'data-testid': 'suspect-annotated' }, nameOf(x.annotatedLabelId)),
        ` (${x.annotatedConfidence.toFixed(2)})`, h('span', { class: 'muted' }, ' · '),
        'model says ', h('strong', { 'data-testid': 'suspect-model' }, nameOf(x.labelId)),
        ` (${x.confidence.toFixed(2)})`),
      h('div', { class: 'item-text', 'data-testid': 'review-text' }, shown(item.data, 'large')),
      h('div', { class: 'item-actions' },
        h('button', { type: 'button', onclick: () => send({ type: 'keep' }), 'data-testid': 'keep' },
          h('kbd', {}, 'k'), ` Keep ${nameOf(x.annotatedLabelId)}`),
        h('button', { type: 'button', onclick: () => send({ type: 'skip' }), 'data-testid': 'skip' },
          h('kbd', {}, 's'), ' Skip'),
        h('button', { type: 'button', onclick: () => send({ type: 'dismiss' }), 'data-testid': 'dismiss' },
          h('kbd', {}, 'd'), ' Delete'),
        h('button', { type: 'button', onclick: () => send({ type: 'undo' }), 'data-testid': 'undo' },
          h('kbd', {}, 'u'), ' Undo')));
  }

  function renderItem(item) {
    if (suspected(item)) return renderSuspect(item);
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
      h('div', { class: 'item-text', 'data-testid': 'review-text' }, shown(item.data, 'large')),
      h('div', { class: 'item-prediction', 'data-testid': 'review-prediction' }, p
        ? ['Predicted ', h('strong', {}, nameOf(p.labelId)), ` ${pct(p.confidence)}`,
          h('span', { class: 'muted small' }, ` · margin ${p.margin.toFixed(2)} · model v${p.modelVersion}`),
          changed ? h('span', { class: 'muted small' },
            ` · current model: ${nameOf(now.labelId)} ${pct(now.confidence)}`) : null]
        : h('span', { class: 'muted' }, 'No prediction stored')),
      h('div', { class: 'item-actions' },
        h('button', { type: 'button', onclick: () => send({ type: 'skip' }), 'data-testid': 'skip' },
          h('kbd', {}, 's'), ' Skip'),
        h('button', { type: 'button', onclick: () => send({ type: 'dismiss' }), 'data-testid': 'dismiss' },
          h('kbd', {}, 'd'), ' Dismiss'),
        h('button', { type: 'button', onclick: () => send({ type: 'undo' }), 'data-testid': 'undo' },
          h('kbd', {}, 'u'), ' Undo'),
        h('button', {
          type: 'button', onclick: () => send({ type: 'toggleSimilar' }), 'data-testid': 'similar-button',
          'aria-expanded': similarOpen ? 'true' : 'false',
        }, h('kbd', {}, 'f'), ' Select similar')),
      similarOpen ? similarPanel({
        sim: st.similar,
        checked: st.checked,
        threshold: st.threshold,
        nameOf,
        onCheck: (id, on) => send({ type: 'check', id, on }),
        onThreshold: (value) => send({ type: 'threshold', value }),
      }) : null);
  }

  function renderSide() {
    const byKey = keys.map((id, i) => [i + 1, id]).filter(([, id]) => id);
    const keyed = new Set(byKey.map(([, id]) => id));
    const item = current(st);
    const suspect = suspected(item) || (!item && st.strategy === SUSPECT);
    const predicted = item && (suspected(item) ? item.suspect.labelId
      : item.invokePrediction && item.invokePrediction.labelId);
    const annotated = suspected(item) && item.suspect.annotatedLabelId;
    const button = (key, l) => h('button', {
      type: 'button',
      class: ['label-button', l.id === predicted && 'predicted', l.id === annotated && 'annotated']
        .filter(Boolean).join(' '),
      'data-testid': 'label-button', 'data-label-id': l.id, disabled: !item,
      onclick: () => send({ type: 'annotate', labelId: l.id }),
    }, key ? h('kbd', {}, String(key)) : h('kbd', { class: 'blank' }, '·'), ` ${l.name}`,
    l.id === annotated ? h('span', { class: 'muted small' }, 'annotated') : null);
    const labelsById = new Map(labels.map((l) => [l.id, l]));
    const details = side.querySelector('details');
    const settings = keySettings({
      labels,
      keys,
      open: !!(details && details.open),
      onChange(mapped) {
        keys = mapped;
        saveKeys(fid, keys);
        render();
      },
      onReset() {
        forgetKeys(fid);
        keys = defaultKeys(labels);
        render();
      },
    });
    clear(side,
      h('h2', {}, suspect ? 'Relabel' : 'Label'),
      h('div', { class: 'label-buttons', 'data-testid': 'label-buttons' },
        byKey.map(([k, id]) => labelsById.get(id) && button(k, labelsById.get(id))),
        labels.filter((l) => !keyed.has(l.id)).map((l) => button(null, l))),
      h('p', { class: 'muted small keys-help' }, suspect
        ? [h('kbd', {}, '1'), '–', h('kbd', {}, '9'), ' relabel · ', h('kbd', {}, 'k'), ' keep · ',
          h('kbd', {}, 's'), ' skip · ', h('kbd', {}, 'd'), ' delete · ', h('kbd', {}, 'u'), ' undo']
        : [h('kbd', {}, '1'), '–', h('kbd', {}, '9'), ' label · ', h('kbd', {}, 's'), ' skip · ',
          h('kbd', {}, 'd'), ' dismiss · ', h('kbd', {}, 'u'), ' undo · ', h('kbd', {}, 'f'), ' similar']),
      settings);
  }

  function render() {
    renderSide();
    if (st.strategy === SUSPECT) renderTabs(); // its count is what is left on the page
    const item = current(st);
    if (item) {
      clear(stage, renderItem(item));
      return;
    }
    if (!st.loaded) {
      clear(stage, h('p', { class: 'muted' }, 'Loading…'));
      return;
    }
    const skipped = st.skipped.size;
    const where = st.strategy ? ` for ${strategyName(st.strategy)}` : '';
    const suspect = st.strategy === SUSPECT;
    clear(stage, h('div', { class: 'card', 'data-testid': 'review-empty' },
      empty(suspect ? 'No suspected mislabels' : `Nothing to review${where}`, skipped
        ? `You skipped ${plural(skipped, 'item')} in this session.`
        : suspect
          ? 'Every annotated sample agrees with the model trained without it, or nothing is '
            + 'trained yet. Each training run looks again.'
          : 'Captured invokes land here. Invoke the function, or raise a capture strategy’s '
            + 'rate or quota (PUT …/capture).'),
      skipped ? h('button', {
        type: 'button', 'data-testid': 'review-skipped-again',
        onclick: () => send({ type: 'reviewSkipped' }),
      }, 'Review the skipped items') : null));
  }

  render();
  Promise.all([
    attempt(async () => {
      labels = (await api.get(api.fn(fid, '/labels'))).sort(byName);
      nameOf = labelNamer(labels);
      keys = loadKeys(fid, labels);
    }),
    attempt(loadCapture),
  ]).then(() => send({ type: 'start' }));
  attempt(peekSuspects);
}
