"""What a warm container knows of each function's capture buffer, so that deciding costs no
read and a prediction that is not taken costs no write.

Buffer counters (and, for a full strategy, its `KNOWN_LOWEST` least informative items) are
re-read at most every `ttl` seconds, and after a capture this container commits they are
updated in place: a replacement's new least informative item is among those read (or is the
newcomer), so a full strategy is read again only when they run out. The buffered items (the
embeddings a capture must not near-duplicate, what the spread rules compare with) are read
only when a candidate needs them, every `BUFFERED_TTL` seconds or when the live version
changes (its re-scoring changed their priorities); they are kept up to date with this
container's own captures, and another container's show up at the next read. The live model's
training samples are read once per version (immutable). The label mix of recent predictions
(`PredictionMix`) is this container's own count.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from labelloop.capture import spread
from labelloop.capture.decide import Buffered, BufferState, Slot, Take, rarity
from labelloop.capture.mix import PredictionMix
from labelloop.capture.policy import Budget, CapturePolicy
from labelloop.capture.strategies import Candidate
from labelloop.data.objects import TRAINED_EMBEDDINGS
from labelloop.errors import NotFound
from labelloop.refresh import Refresh
from labelloop.serving import embeddings_from_bytes

if TYPE_CHECKING:
    from labelloop.domain import SampleItem
    from labelloop.serving import Prediction
    from labelloop.thresholds import Decisions

# How long the buffered items' embeddings are trusted for near-duplicate checks.
BUFFERED_TTL = 60.0
# A full strategy's least informative items read at once (one query, a few hundred bytes):
# the replacements of that many captures need no read.
KNOWN_LOWEST = 16


@dataclass
class CaptureState:
    policy: CapturePolicy  # the function's: a change reloads the state
    budgets: list[Budget]
    buffers: dict[str, BufferState]
    model_version: int | None
    loaded_at: float
    trained: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    label_counts: dict[str, int] = field(default_factory=dict)
    # The live version's most confused label pairs: {frozenset({a, b}): rank}.
    pair_ranks: dict[frozenset, int] = field(default_factory=dict)
    mix: PredictionMix = field(default_factory=PredictionMix)  # the function's, shared

    def candidate(self, p: Prediction, decisions: Decisions | None) -> Candidate:
        """What the strategies see of a prediction: with the live version's label counts and
        confused pairs, the label's share of recent predictions, and the accept threshold of
        the function's decision policy."""
        runner_up = p.ranked[1][0] if len(p.ranked) > 1 else None
        applied = decisions.by_label.get(p.label_id) if decisions is not None else None
        facts = rarity(self.label_counts, p.label_id)
        return Candidate(p.label_id, p.confidence, p.margin, **facts,
                         accept_threshold=applied.accept if applied is not None else None,
                         pair_rank=self.pair_ranks.get(frozenset((p.label_id, runner_up))),
                         prediction_share=self.mix.share(p.label_id, facts["label_total"]))

    def quota(self, strategy: str) -> int:
        return next(b.quota for b in self.budgets if b.name == strategy)


@dataclass
class _BufferedView:
    """A function's buffered items per strategy, as read (then kept up to date)."""

    read_at: float
    model_version: int | None
    items: dict[str, dict[str, Buffered]]  # strategy -> sample id -> item
    # Stacked embeddings, per strategy and (key None) of all: one matrix per change.
    stacked: dict[str | None, tuple[list[Buffered], np.ndarray]] = field(default_factory=dict)

    def rows(self, strategy: str | None) -> tuple[list[Buffered], np.ndarray]:
        if strategy not in self.stacked:
            items = [i for s, by_id in self.items.items() if strategy in (None, s)
                     for i in by_id.values()]
            self.stacked[strategy] = (items, np.stack([i.embedding for i in items]) if items
                                      else np.zeros((0, 0), np.float32))
        return self.stacked[strategy]


class CaptureCache:
    def __init__(self, samples, ledger, objects, ttl: float, seed: int | None = None):
        self._samples = samples
        self._ledger = ledger
        self._objects = objects
        self._ttl = ttl
        self._seed = seed
        self._states: dict[str, CaptureState] = {}
        # (function, model version) -> (trained embeddings, annotated samples per label)
        self._trained: dict[tuple[str, int], tuple[np.ndarray, dict[str, int]]] = {}
        self._buffered: dict[str, _BufferedView] = {}
        self._mixes: dict[str, PredictionMix] = {}
        # This container's threads (the local stack's) update the buffers and the buffered
        # rows they all read.
        self._lock = threading.Lock()
        self._refresh = Refresh()

    def draws(self, sample_id: str) -> np.random.Generator:
        """The random numbers of the offer of `sample_id`, from that id: the same every time it
        is decided (a batch slab's offer decided again one by one), whatever other threads
        drew meanwhile. A seed (evaluation runs, tests) gives other numbers for the same ids."""
        key = int.from_bytes(hashlib.sha256(sample_id.encode()).digest()[:16], "big")
        return np.random.default_rng(key if self._seed is None else [self._seed, key])

    def state(self, fid: str, policy: CapturePolicy, model) -> CaptureState:
        """`model`: the live model (`LiveModel`) or None (zero-shot with no model yet)."""
        version = model.version if model is not None else None

        def usable() -> CaptureState | None:  # another version's or policy's is not
            st = self._states.get(fid)
            return st if (st is not None and st.model_version == version
                          and st.policy == policy) else None

        def load() -> CaptureState:
            st = self._states[fid] = self._load(fid, policy, model)
            return st

        return self._refresh.get(fid, usable,
                                 lambda st: time.monotonic() - st.loaded_at <= self._ttl, load)

    def invalidate(self, fid: str, left: str | None = None) -> None:
        """Re-read the function's buffer state at the next offer; its buffered items too,
        unless the change was only that the item `left` left the buffer (annotated, deleted,
        dismissed: a full read per annotation would cost more than the rest of capture)."""
        self._states.pop(fid, None)
        with self._lock:
            view = self._buffered.get(fid) if left is not None else None
            if view is None:
                self._buffered.pop(fid, None)
                return
            for rows in view.items.values():
                rows.pop(left, None)
            view.stacked.clear()

    def observe(self, st: CaptureState, label_id: str) -> None:
        """An offer's predicted label joins the function's mix of recent predictions."""
        with self._lock:
            st.mix.observe(label_id)

    def _view(self, fid: str, st: CaptureState) -> _BufferedView:
        view = self._buffered.get(fid)
        if (view is None or view.model_version != st.model_version
                or time.monotonic() - view.read_at > BUFFERED_TTL):
            items = {b.name: {i.id: i for i in self._ledger.buffered(fid, b.name)}
                     for b in st.budgets}
            view = _BufferedView(time.monotonic(), st.model_version, items)
            with self._lock:
                self._buffered[fid] = view
        return view

    def trained_embeddings(self, fid: str, model) -> np.ndarray:
        """The live version's training samples' embeddings (read once per version; shared
        with drift's novelty). Unlocked as in `_load`: a race reads a version twice."""
        return self._trained_of(fid, model)[0]

    def known_embeddings(self, fid: str, st: CaptureState) -> list[np.ndarray]:
        """Buffered and trained-on embeddings: what a new capture must not near-duplicate."""
        view = self._view(fid, st)
        with self._lock:
            return [view.rows(None)[1], st.trained]

    def rival(self, fid: str, st: CaptureState, strategy: str, embedding: np.ndarray,
              label_id: str) -> Slot | None:
        """The buffered item of `strategy` a candidate may only replace (`spread.rival`)."""
        view = self._view(fid, st)
        with self._lock:
            items, stacked = view.rows(strategy)
        cap = spread.label_cap(st.quota(strategy), st.policy.label_cap,
                               max(len(st.label_counts), 1))
        return spread.rival(items, stacked, embedding, label_id, st.policy.spread_cosine, cap)

    def committed(self, fid: str, st: CaptureState, take: Take, sample: SampleItem,
                  embedding: np.ndarray) -> None:
        """This container's capture landed: update the state rather than re-read it all."""
        self.committed_many(fid, st, [(sample, take, embedding)])

    def committed_many(self, fid: str, st: CaptureState,
                       captures: list[tuple[SampleItem, Take, np.ndarray]]) -> None:
        """Captures of this container landed (sample, take, embedding each), in one write or
        one by one: a read only for a strategy that just filled, or whose least informative
        items read before have all been replaced."""
        with self._lock:
            buffers = dict(st.buffers)
            for strategy in dict.fromkeys(t.strategy for _, t, _ in captures):
                takes = [(sample, t) for sample, t, _ in captures if t.strategy == strategy]
                before = buffers.get(strategy, BufferState())
                used = before.used + sum(t.replaces is None for _, t in takes)
                b: BufferState | None = before
                for sample, t in takes:
                    if t.replaces is not None:
                        b = b.replaced(t.replaces, Slot(sample.id, t.priority, sample.data_hash))
                    else:
                        b = BufferState(b.used + 1) if b.used + 1 < t.quota else None
                    if b is None:  # just filled, or its new lowest is not known: read
                        b = self._full(fid, strategy, used)
                        break
                buffers[strategy] = b
            st.buffers = buffers
            view = self._buffered.get(fid)
            if view is not None:
                view.stacked.clear()
                for sample, take, embedding in captures:
                    rows = view.items.setdefault(take.strategy, {})
                    if take.replaces is not None:
                        rows.pop(take.replaces.sample_id, None)
                    rows[sample.id] = Buffered(Slot(sample.id, take.priority, sample.data_hash),
                                               sample.predicted_label_id, embedding)

    def _full(self, fid: str, strategy: str, used: int) -> BufferState:
        """A full strategy's state, its least informative items read."""
        lowest = self._ledger.lowest(fid, strategy, KNOWN_LOWEST)
        return BufferState(used, lowest[0] if lowest else None, tuple(lowest[1:]))

    def _load(self, fid: str, policy: CapturePolicy, model) -> CaptureState:
        budgets = policy.budgets()
        used = self._ledger.counters(fid)
        buffers = {}
        for b in budgets:
            n = used.get(b.name, 0)
            buffers[b.name] = (self._full(fid, b.name, n) if n >= b.quota > 0
                               else BufferState(n))
        trained, counts = self._trained_of(fid, model)
        wants_pairs = model is not None and any(b.strategy.uses_pairs and b.quota
                                                for b in budgets)
        quality = model.quality if wants_pairs else None
        with self._lock:
            mix = self._mixes.setdefault(fid, PredictionMix())
        return CaptureState(policy, budgets, buffers,
                            model.version if model is not None else None, time.monotonic(),
                            trained=trained, label_counts=counts,
                            pair_ranks=quality.pair_ranks if quality is not None else {},
                            mix=mix)

    def _trained_of(self, fid: str, model) -> tuple[np.ndarray, dict[str, int]]:
        if model is None:
            return np.zeros((0, 0), np.float32), {}
        key = (fid, model.version)
        if key not in self._trained:
            trained = model.meta.trained
            counts = Counter(trained.values())
            for lid in model.meta.label_ids:
                counts.setdefault(lid, 0)
            emb = self._trained_embeddings(fid, model.version, trained)
            self._trained = {k: v for k, v in self._trained.items() if k[0] != fid}
            self._trained[key] = (emb, dict(counts))
        return self._trained[key]

    def _trained_embeddings(self, fid: str, version: int, trained: dict) -> np.ndarray:
        """From the version's artifact; a version trained before it existed has none, and
        its samples are read instead."""
        if not trained:
            return np.zeros((0, 0), np.float32)
        try:
            return embeddings_from_bytes(self._objects.get_artifact(
                fid, version, TRAINED_EMBEDDINGS))
        except NotFound:
            rows = [v.embedding for v in self._samples.vectors(fid) if v.id in trained]
            return np.stack(rows) if rows else np.zeros((0, 0), np.float32)
