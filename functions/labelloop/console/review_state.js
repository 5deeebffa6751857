// The review queue and its undo, without the page: step(state, event) returns the next state
// and the effects the page has to carry out (requests, the dismiss timer, toasts), and each
// request's answer comes back as another event. Nothing here touches the DOM or the network,
// so the browser tests drive it event by event.
//
// The state keeps the server's order and a set of ids the page has hidden (labelled, skipped,
// or dismissed); the item shown is the first one not hidden. That makes every undo the same
// move: unhide, and put the item back in front. Writes are optimistic and run one after
// another (so an undo's DELETE always follows its POST); a failed write unhides its items.
//
// Dismissing cannot be undone on the server (the item is deleted), so a dismiss is held back:
// it is sent with the next action, after a few seconds, or when the page goes away.
//
// A state is never changed in place, and a field an event leaves alone keeps its identity:
// the page compares fields to know what to redraw, so that a redraw nobody needs does not take
// the focus from a field the reviewer is typing in.
//
// Events (each `{type, …}`):
//   start, loaded {items}                      the first batch is wanted; a batch arrived
//   annotate {labelId}, skip, dismiss, undo    the reviewer's moves on the current item
//   commitDismiss                              the dismiss timer fired, or the page is leaving
//   strategy {name}, reviewSkipped             another strategy's queue; the skipped ones again
//   toggleSimilar, closeSimilar                the "select similar" panel
//   check {id, on}, threshold {value}          a box in it; its pre-check similarity
//   similarFound {for, items}, similarFailed {for}
//   written {results}, writeFailed             the answer to the write in flight
//   dismissSent, dismissFailed {id}
// Effects (each `{type, …}`):
//   fetch {strategy, batchSize}                GET …/review; answer with loaded
//   annotate {ids, labelId}                    POST …/review/annotations; written/writeFailed
//   clear {ids}                                DELETE each …/annotation; written/writeFailed
//   dismiss {id}                               POST …/dismiss at once (keepalive);
//                                              dismissSent/dismissFailed
//   similar {id}                               GET …/similar; similarFound/similarFailed
//   counts                                     reload the per-strategy counts
//   startTimer, stopTimer                      the held-back dismiss's timer
//   toast {say, count?, labelId?}, undoToast, hideToast, notLabelled {count, message}

const PAGE = 50;
const MAX_BATCH = 1000;
const NONE = new Set();

export function initialState(threshold) {
  return {
    strategy: '', // '' = all strategies, merged by the server
    queue: [],
    loaded: false,
    hidden: NONE,
    skipped: NONE,
    // {kind: 'annotate', seq, item, ids, labelId} | {kind: 'skip', item} | {kind: 'dismissed', item}
    history: [],
    pending: null, // the held-back dismiss's item
    writes: [], // {kind: 'annotate' | 'clear', seq, ids, labelId?}; the first one is in flight
    seq: 0, // ties an annotation to the clear that undoes it
    similar: null, // {for: sampleId, loading, items}
    checked: NONE, // ids ticked in the similar panel (it shows its own boxes: not a redraw)
    threshold,
  };
}

export const current = (s) => s.queue.find((i) => !s.hidden.has(i.id));

export const busy = (s) => s.writes.length > 0;

/** The event a key press stands for (`key` lower-cased), or null when it is not ours.
 * `labelKeys[i]` is the label id on key i + 1. */
export function keyCommand(s, key, labelKeys) {
  if (/^[1-9]$/.test(key)) return { type: 'annotate', labelId: labelKeys[Number(key) - 1] };
  const simple = { s: 'skip', d: 'dismiss', u: 'undo', f: 'toggleSimilar' }[key];
  if (simple) return { type: simple };
  // Escape with nothing to close stays the browser's.
  if (key === 'escape' && s.similar) return { type: 'closeSimilar' };
  return null;
}

export function step(state, event) {
  const s = { ...state };
  const fx = [];
  const handle = HANDLERS[event.type];
  if (!handle) throw new Error(`unknown review event ${event.type}`);
  handle(s, fx, event);
  return { state: s, effects: fx };
}

const plus = (set, ids) => new Set([...set, ...ids]);
const minus = (set, ids) => {
  const out = new Set(set);
  for (const id of ids) out.delete(id);
  return out;
};

function toFront(s, item) {
  s.queue = [item, ...s.queue.filter((i) => i.id !== item.id)];
}

function fetchBatch(s, fx) {
  // Skipped and in-flight items still come back from the server: ask for enough to see past them.
  fx.push({ type: 'fetch', strategy: s.strategy, batchSize: Math.min(MAX_BATCH, PAGE + s.hidden.size) });
}

function refillIfEmpty(s, fx) {
  if (!current(s)) fetchBatch(s, fx);
}

function closeSimilar(s) {
  if (!s.similar) return;
  s.similar = null;
  s.checked = NONE;
}

function write(s, fx, w) {
  s.writes = [...s.writes, w];
  if (s.writes.length === 1) fx.push(send(w));
}

function send(w) {
  return w.kind === 'annotate'
    ? { type: 'annotate', ids: w.ids, labelId: w.labelId }
    : { type: 'clear', ids: w.ids };
}

/** The write in flight is done: the next one goes. */
function nextWrite(s, fx) {
  s.writes = s.writes.slice(1);
  fx.push({ type: 'counts' });
  if (s.writes.length) fx.push(send(s.writes[0]));
}

/** Sends the held-back dismiss, if any. */
function commitDismiss(s, fx) {
  const item = s.pending;
  if (!item) return;
  s.pending = null;
  s.history = [...s.history, { kind: 'dismissed', item }];
  fx.push({ type: 'stopTimer' }, { type: 'hideToast' }, { type: 'dismiss', id: item.id });
}

const HANDLERS = {
  start(s, fx) {
    fetchBatch(s, fx);
  },

  loaded(s, fx, { items }) {
    const ids = new Set(items.map((i) => i.id));
    // An undone annotation may not be back in the server's buffer (its DELETE may still be on
    // its way, and a strategy whose slots filled meanwhile does not take it back), so keep such
    // items here; anything the batch has again comes in the server's order, once.
    const kept = s.queue.filter((i) => !s.hidden.has(i.id) && !ids.has(i.id));
    s.queue = [...kept, ...items];
    s.loaded = true;
  },

  annotate(s, fx, { labelId }) {
    const item = current(s);
    if (!item || !labelId) return;
    commitDismiss(s, fx);
    const along = s.similar && s.similar.for === item.id
      ? s.similar.items.filter((x) => s.checked.has(x.id)).map((x) => x.id) : [];
    const ids = [item.id, ...along];
    s.hidden = plus(s.hidden, ids);
    s.seq += 1;
    s.history = [...s.history, { kind: 'annotate', seq: s.seq, item, ids, labelId }];
    closeSimilar(s);
    fx.push({ type: 'toast', say: 'labelled', count: ids.length, labelId });
    refillIfEmpty(s, fx);
    write(s, fx, { kind: 'annotate', seq: s.seq, ids, labelId });
  },

  skip(s, fx) {
    const item = current(s);
    if (!item) return;
    commitDismiss(s, fx);
    s.hidden = plus(s.hidden, [item.id]);
    s.skipped = plus(s.skipped, [item.id]);
    s.history = [...s.history, { kind: 'skip', item }];
    closeSimilar(s);
    refillIfEmpty(s, fx);
  },

  dismiss(s, fx) {
    const item = current(s);
    if (!item) return;
    commitDismiss(s, fx);
    s.hidden = plus(s.hidden, [item.id]);
    closeSimilar(s);
    s.pending = item;
    fx.push({ type: 'startTimer' }, { type: 'undoToast' });
    refillIfEmpty(s, fx);
  },

  commitDismiss,

  undo(s, fx) {
    if (s.pending) {
      const item = s.pending;
      s.pending = null;
      s.hidden = minus(s.hidden, [item.id]);
      toFront(s, item);
      fx.push({ type: 'stopTimer' }, { type: 'toast', say: 'dismissUndone' });
      return;
    }
    const entry = s.history[s.history.length - 1];
    if (!entry) {
      fx.push({ type: 'toast', say: 'nothingToUndo' });
      return;
    }
    // A sent dismiss is popped too: the next undo reaches the action before it.
    s.history = s.history.slice(0, -1);
    if (entry.kind === 'dismissed') {
      fx.push({ type: 'toast', say: 'dismissSent' });
      return;
    }
    closeSimilar(s);
    if (entry.kind === 'skip') {
      s.skipped = minus(s.skipped, [entry.item.id]);
      s.hidden = minus(s.hidden, [entry.item.id]);
      toFront(s, entry.item);
      return;
    }
    s.hidden = minus(s.hidden, entry.ids);
    toFront(s, entry.item);
    fx.push({ type: 'toast', say: 'labelRemoved', count: entry.ids.length });
    write(s, fx, { kind: 'clear', seq: entry.seq, ids: entry.ids });
  },

  written(s, fx, { results }) {
    const done = s.writes[0];
    const failed = done.kind === 'annotate' ? results.filter((r) => r.status !== 200) : [];
    if (failed.length) {
      const bad = new Set(failed.map((r) => r.sampleId));
      const labelled = (ids) => ids.filter((id) => !bad.has(id));
      s.hidden = minus(s.hidden, bad);
      // Undoing it later, or an undo already waiting behind it, clears only what was labelled.
      s.history = s.history.map((e) => (e.seq === done.seq ? { ...e, ids: labelled(e.ids) } : e));
      s.writes = s.writes.map((w) => (w.kind === 'clear' && w.seq === done.seq
        ? { ...w, ids: labelled(w.ids) } : w));
      fx.push({ type: 'notLabelled', count: failed.length, message: failed[0].message });
    }
    nextWrite(s, fx);
  },

  writeFailed(s, fx) {
    const done = s.writes[0];
    if (done.kind === 'annotate') {
      s.hidden = minus(s.hidden, done.ids);
      s.history = s.history.filter((e) => e.seq !== done.seq);
    }
    nextWrite(s, fx);
  },

  dismissSent(s, fx) {
    fx.push({ type: 'counts' });
  },

  dismissFailed(s, fx, { id }) {
    s.hidden = minus(s.hidden, [id]);
  },

  toggleSimilar(s, fx) {
    const item = current(s);
    if (!item) return;
    if (s.similar && s.similar.for === item.id) {
      closeSimilar(s);
      return;
    }
    s.similar = { for: item.id, loading: true, items: [] };
    s.checked = NONE;
    fx.push({ type: 'similar', id: item.id });
  },

  similarFound(s, fx, { for: id, items }) {
    if (!s.similar || s.similar.for !== id) return; // moved on meanwhile
    // Skipped items are still to review, so they may go along; labelled ones may not.
    const open = items.filter((x) => !s.hidden.has(x.id) || s.skipped.has(x.id));
    s.similar = { for: id, loading: false, items: open };
    s.checked = new Set(open.filter((x) => x.similarity >= s.threshold).map((x) => x.id));
  },

  similarFailed(s, fx, { for: id }) {
    if (s.similar && s.similar.for === id) closeSimilar(s);
  },

  closeSimilar,

  check(s, fx, { id, on }) {
    s.checked = on ? plus(s.checked, [id]) : minus(s.checked, [id]);
  },

  threshold(s, fx, { value }) {
    s.threshold = value;
    if (s.similar) {
      s.checked = new Set(s.similar.items.filter((x) => x.similarity >= value).map((x) => x.id));
    }
  },

  strategy(s, fx, { name }) {
    if (name === s.strategy) return;
    commitDismiss(s, fx);
    s.strategy = name;
    closeSimilar(s);
    s.queue = [];
    s.loaded = false;
    fetchBatch(s, fx);
  },

  reviewSkipped(s, fx) {
    s.hidden = minus(s.hidden, s.skipped);
    s.skipped = NONE;
    s.history = s.history.filter((e) => e.kind !== 'skip');
    refillIfEmpty(s, fx);
  },
};
