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
// The suspect queue (strategy `suspect`: annotated samples the cross-validated model doubts;
// each item has a `suspect` field) runs on the same moves, told apart by the item: a label
// relabels it, and its undo puts the old label back rather than clearing it; keep confirms the
// label (no request undoes that: its undo only shows the item again, to be relabelled); and
// dismiss deletes the sample, held back like a dismiss. "Select similar" is for captured items.
//
// A state is never changed in place, and a field an event leaves alone keeps its identity:
// the page compares fields to know what to redraw, so that a redraw nobody needs does not take
// the focus from a field the reviewer is typing in.
//
// Events (each `{type, …}`):
//   start, loaded {items, strategy?}           the first batch is wanted; a batch arrived
//                                              (one for another strategy than the shown one
//                                              is dropped: the tab changed meanwhile)
//   annotate {labelId}, skip, dismiss, undo    the reviewer's moves on the current item
//   keep                                       the same, on a suspected mislabel only
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
//                                              (an undone relabel's too: the old label)
//   clear {ids}                                DELETE each …/annotation; written/writeFailed
//   keep {id}                                  POST …/review/{id}/keep; written/writeFailed
//   dismiss {id}                               POST …/dismiss at once (keepalive);
//                                              dismissSent/dismissFailed
//   delete {id}                                a suspect's dismiss: DELETE …/samples/{id}, the
//                                              same way
//   similar {id}                               GET …/similar; similarFound/similarFailed
//   counts                                     reload the per-strategy counts
//   startTimer, stopTimer                      the held-back dismiss's timer
//   toast {say, count?, labelId?}, undoToast {say?}, hideToast
//   notLabelled {count, message}, notRestored {count, message}   a write's items that failed

const PAGE = 50;
const MAX_BATCH = 1000;
const NONE = new Set();
export const SUSPECT = 'suspect';

/** A suspected mislabel (from the suspect queue), not a captured invoke. */
export const suspected = (item) => !!(item && item.suspect);

/** A suspect's label as it was loaded: what undoing a relabel puts back. */
const oldLabel = (item) => (item.annotation && item.annotation.labelId) || item.suspect.annotatedLabelId;

export function initialState(threshold) {
  return {
    strategy: '', // '' = all strategies, merged by the server
    queue: [],
    loaded: false,
    hidden: NONE,
    skipped: NONE,
    // {kind: 'annotate', seq, item, ids, labelId, restore?} (restore: a relabelled suspect's
    // old label) | {kind: 'keep', seq, item, ids} | {kind: 'skip', item} | {kind: 'dismissed', item}
    history: [],
    pending: null, // the held-back dismiss's item
    // {kind: 'annotate' | 'clear' | 'restore' | 'keep', seq, ids, labelId?}; the first is in flight
    writes: [],
    seq: 0, // ties an annotation to the clear (or restore) that undoes it
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
  const item = current(s);
  if (key === 'k') return suspected(item) ? { type: 'keep' } : null;
  if (key === 'f' && suspected(item)) return null;
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
  if (w.kind === 'clear') return { type: 'clear', ids: w.ids };
  if (w.kind === 'keep') return { type: 'keep', id: w.ids[0] };
  return { type: 'annotate', ids: w.ids, labelId: w.labelId }; // annotate, restore
}

/** The write in flight is done: the next one goes. */
function nextWrite(s, fx) {
  s.writes = s.writes.slice(1);
  // An undo whose items all failed to be labelled has nothing left to undo.
  while (s.writes.length && !s.writes[0].ids.length) s.writes = s.writes.slice(1);
  fx.push({ type: 'counts' });
  if (s.writes.length) fx.push(send(s.writes[0]));
}

/** Sends the held-back dismiss, if any. */
function commitDismiss(s, fx) {
  const item = s.pending;
  if (!item) return;
  s.pending = null;
  s.history = [...s.history, { kind: 'dismissed', item }];
  fx.push({ type: 'stopTimer' }, { type: 'hideToast' },
    { type: suspected(item) ? 'delete' : 'dismiss', id: item.id });
}

const HANDLERS = {
  start(s, fx) {
    fetchBatch(s, fx);
  },

  loaded(s, fx, { items, strategy }) {
    if (strategy !== undefined && strategy !== s.strategy) return;
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
    const entry = { kind: 'annotate', seq: s.seq, item, ids, labelId };
    if (suspected(item)) entry.restore = oldLabel(item);
    s.history = [...s.history, entry];
    closeSimilar(s);
    fx.push({ type: 'toast', say: suspected(item) ? 'relabelled' : 'labelled', count: ids.length, labelId });
    refillIfEmpty(s, fx);
    write(s, fx, { kind: 'annotate', seq: s.seq, ids, labelId });
  },

  keep(s, fx) {
    const item = current(s);
    if (!suspected(item)) return;
    commitDismiss(s, fx);
    s.hidden = plus(s.hidden, [item.id]);
    s.seq += 1;
    s.history = [...s.history, { kind: 'keep', seq: s.seq, item, ids: [item.id] }];
    fx.push({ type: 'toast', say: 'kept', labelId: oldLabel(item) });
    refillIfEmpty(s, fx);
    write(s, fx, { kind: 'keep', seq: s.seq, ids: [item.id] });
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
    fx.push({ type: 'startTimer' },
      suspected(item) ? { type: 'undoToast', say: 'deleted' } : { type: 'undoToast' });
    refillIfEmpty(s, fx);
  },

  commitDismiss,

  undo(s, fx) {
    if (s.pending) {
      const item = s.pending;
      s.pending = null;
      s.hidden = minus(s.hidden, [item.id]);
      toFront(s, item);
      fx.push({ type: 'stopTimer' },
        { type: 'toast', say: suspected(item) ? 'deleteUndone' : 'dismissUndone' });
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
      fx.push({ type: 'toast', say: suspected(entry.item) ? 'deleteSent' : 'dismissSent' });
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
    if (entry.kind === 'keep') {
      // The keep stays on the server (nothing unkeeps); the item is back to be relabelled.
      fx.push({ type: 'toast', say: 'keepUndone' });
      return;
    }
    if (entry.restore) {
      fx.push({ type: 'toast', say: 'labelRestored', count: entry.ids.length, labelId: entry.restore });
      write(s, fx, { kind: 'restore', seq: entry.seq, ids: entry.ids, labelId: entry.restore });
      return;
    }
    fx.push({ type: 'toast', say: 'labelRemoved', count: entry.ids.length });
    write(s, fx, { kind: 'clear', seq: entry.seq, ids: entry.ids });
  },

  written(s, fx, { results }) {
    const done = s.writes[0];
    const posted = done.kind === 'annotate' || done.kind === 'restore';
    const failed = posted ? results.filter((r) => r.status !== 200) : [];
    if (failed.length && done.kind === 'restore') {
      fx.push({ type: 'notRestored', count: failed.length, message: failed[0].message });
    } else if (failed.length) {
      const bad = new Set(failed.map((r) => r.sampleId));
      const labelled = (ids) => ids.filter((id) => !bad.has(id));
      s.hidden = minus(s.hidden, bad);
      // Undoing it later, or an undo already waiting behind it, clears (or restores) only what
      // was labelled.
      s.history = s.history.map((e) => (e.seq === done.seq ? { ...e, ids: labelled(e.ids) } : e));
      s.writes = s.writes.map((w) => ((w.kind === 'clear' || w.kind === 'restore') && w.seq === done.seq
        ? { ...w, ids: labelled(w.ids) } : w));
      fx.push({ type: 'notLabelled', count: failed.length, message: failed[0].message });
    }
    nextWrite(s, fx);
  },

  writeFailed(s, fx) {
    const done = s.writes[0];
    if (done.kind === 'annotate' || done.kind === 'keep') {
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
    if (!item || suspected(item)) return;
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
