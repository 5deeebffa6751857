"""Use cases: capturing invokes into the review buffer, re-scoring it after a retrain, the
review queue (list, dismiss), the capture policy, and live accuracy from random captures.

The capture runs after the invoke's response (`afterwork`), decides from cached buffer state
(no read), and writes only for a candidate: one transaction that cannot overfill a quota. A
batch slab's invokes are decided the same way and committed together (`capture_many`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from pydantic import ValidationError

from labelloop.capture.decide import (
    BufferState,
    CapturePolicy,
    Slot,
    Take,
    decide,
    near_duplicate,
    rarity,
)
from labelloop.capture.state import CaptureState
from labelloop.capture.strategies import STRATEGIES, Candidate
from labelloop.container import Deps
from labelloop.domain import Origin, SampleItem, features_of, predicted
from labelloop.encoder import Features
from labelloop.errors import BadRequest, Conflict
from labelloop.ids import bare
from labelloop.ml.metrics import wilson
from labelloop.serving import LiveModel, Prediction, View, predict
from labelloop.thresholds import Decisions
from labelloop.usecases.common import owned_function


def _candidate(p: Prediction, st: CaptureState, decisions: Decisions | None) -> Candidate:
    runner_up = p.ranked[1][0] if len(p.ranked) > 1 else None
    applied = decisions.by_label.get(p.label_id) if decisions is not None else None
    return Candidate(p.label_id, p.confidence, p.margin, **rarity(st.label_counts, p.label_id),
                     accept_threshold=applied.accept if applied is not None else None,
                     pair_rank=st.pair_ranks.get(frozenset((p.label_id, runner_up))))


@dataclass(frozen=True)
class Offer:
    """One invoke offered to the capture policy."""

    prediction: Prediction
    features: Features  # its one row
    sample_id: str
    text: str
    external_id: str | None


def capture(d: Deps, view: View, model: LiveModel, prediction: Prediction, features: Features,
            sample_id: str, text: str, external_id: str | None) -> str | None:
    """Capture one invoke if a strategy takes it; returns the strategy's name or None."""
    return _capture(d, view, model, Offer(prediction, features, sample_id, text, external_id))


def _capture(d: Deps, view: View, model: LiveModel, o: Offer) -> str | None:
    fid = view.function.id
    cache = d.captures
    st = cache.state(fid, view.function.capture, model)
    with cache.lock:
        take = decide(st.strategies, _candidate(o.prediction, st, view.decisions), st.buffers,
                      cache.rng)
    if take is None:
        return None
    row = o.features.embeddings[0]
    if near_duplicate(row, cache.known_embeddings(fid, st), st.policy.near_duplicate_cosine):
        return None
    try:
        d.ledger.capture(_sample(fid, model, o, take), take.quota, take.replaces)
    except Conflict:
        # Full, replaced by another container first, or the same text exists: re-read.
        cache.invalidate(fid)
        return None
    with cache.lock:
        cache.committed(fid, st, take, o.sample_id, row)
    return take.strategy


# Stands for a full strategy's least informative item once the cached state no longer knows
# it (just filled, or just replaced): every candidate beats it, which marks where the cached
# state stops answering.
_UNKNOWN = Slot("", -1.0, "")
# Captures per transaction: two operations each, plus per strategy one counter and at most
# one replacement (two more): 69 at most, under DynamoDB's 100.
MANY_PER_WRITE = 30


def capture_many(d: Deps, view: View, model: LiveModel, offers: list[Offer]
                 ) -> list[str | None]:
    """Offer a batch's invokes in order, as `capture` one by one would, but commit their
    captures in one transaction: one request instead of one per capture.

    Decisions run on a copy of the cached buffer state, updated as if each capture had
    landed, while it answers them: free slots, or the replacement of a full strategy's known
    least informative item. From the first offer that would need a read (a strategy that
    just filled, or whose least informative item was just replaced), or if the transaction
    fails (stale state, a data-hash claim), the offers left go through `capture`."""
    fid = view.function.id
    cache = d.captures
    st = cache.state(fid, view.function.capture, model)
    buffers = dict(st.buffers)
    taken: list[tuple[int, Take]] = []
    known, kept, texts = None, [], set()
    stop = len(offers)
    for n, o in enumerate(offers):
        with cache.lock:
            drawn = cache.rng.bit_generator.state
            take = decide(st.strategies, _candidate(o.prediction, st, view.decisions), buffers,
                          cache.rng)
            if take is not None and (take.replaces is _UNKNOWN
                                     or len(taken) == MANY_PER_WRITE):
                # `capture` decides this offer again: with the same draws, as one by one.
                cache.rng.bit_generator.state = drawn
                stop = n
                break
        if take is None:
            continue
        row = o.features.embeddings[0]
        known = cache.known_embeddings(fid, st) if known is None else known
        if (o.text in texts or near_duplicate(row, [*known, *kept],
                                               st.policy.near_duplicate_cosine)):
            continue
        texts.add(o.text)
        kept.append(row[None, :].astype(np.float32))
        b = buffers.get(take.strategy, BufferState())
        used = b.used + (take.replaces is None)
        buffers[take.strategy] = BufferState(used, _UNKNOWN if used >= take.quota else None)
        taken.append((n, take))
    out: list[str | None] = [None] * len(offers)
    if taken:
        samples = [(_sample(fid, model, offers[n], t), t) for n, t in taken]
        try:
            d.ledger.capture_many(samples)
        except Conflict:
            cache.invalidate(fid)
            rest = [n for n, _ in taken] + list(range(stop, len(offers)))
            for n in rest:
                out[n] = _capture(d, view, model, offers[n])
            return out
        with cache.lock:
            cache.committed_many(fid, st, [(offers[n].sample_id, t,
                                            offers[n].features.embeddings[0])
                                           for n, t in taken])
        for n, t in taken:
            out[n] = t.strategy
    for n in range(stop, len(offers)):
        out[n] = _capture(d, view, model, offers[n])
    return out


def _sample(fid: str, model: LiveModel, o: Offer, take: Take) -> SampleItem:
    return SampleItem.new(
        fid, o.sample_id, o.text, o.features, Origin.CAPTURE, external_id=o.external_id,
        **predicted(model.version, o.prediction), capture_reason=take.strategy,
        buffer=take.strategy, priority=take.priority)


def rescore(d: Deps, fid: str, model: LiveModel, labels: dict) -> int:
    """After a retrain: every buffered item's priority under the new model, so that the
    uncertainty buffer holds what is uncertain now. Returns how many were re-scored."""
    fn = d.functions.get(fid)
    policy = CapturePolicy.model_validate(fn.capture)
    st = d.captures.state(fid, fn.capture, model)
    decisions = d.serving.decisions(fid, fn.thresholds, model, labels)
    n = 0
    for s in policy.build():
        items = list(d.ledger.items(fid, s.name))
        if not items:
            continue
        for item, p in zip(items, predict(model, labels, features_of(items)), strict=True):
            d.ledger.rescore(item, s.rescore(_candidate(p, st, decisions), item.priority or 0.0))
            n += 1
    d.captures.invalidate(fid)
    return n


# -- review queue ---------------------------------------------------------------------------

def review_queue(d: Deps, client: str, function_id: str, strategy: str | None,
                 limit: int) -> list[SampleItem]:
    """Buffered items, most informative first (per strategy; merged by priority)."""
    fn = owned_function(d, client, function_id)
    if strategy is not None and strategy not in STRATEGIES:
        raise BadRequest(f"strategy: unknown {strategy!r} (known: {', '.join(STRATEGIES)})")
    names = [strategy] if strategy else list(STRATEGIES)
    items = [i for name in names for i in d.ledger.page(fn.id, name, limit)]
    return sorted(items, key=lambda i: -(i.priority or 0.0))[:limit]


def dismiss(d: Deps, client: str, function_id: str, sample_id: str) -> None:
    """Drop a buffered item without annotating it: its slot is freed, and the same text is
    not captured again."""
    fn = owned_function(d, client, function_id)
    sample = d.samples.get(fn.id, bare(sample_id, "sample"))
    if sample.buffer is None:
        raise Conflict(f"sample {sample_id!r} is not in the capture buffer")
    d.samples.delete(sample, keep_claim=True)
    d.captures.invalidate(fn.id)


# -- policy ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class BufferUsage:
    strategy: str
    used: int
    settings: dict


def get_policy(d: Deps, client: str, function_id: str) -> tuple[CapturePolicy,
                                                                list[BufferUsage]]:
    fn = owned_function(d, client, function_id)
    policy = CapturePolicy.model_validate(fn.capture)
    used = d.ledger.counters(fn.id)
    return policy, [BufferUsage(s.name, used.get(s.name, 0), s.model_dump())
                    for s in policy.build()]


def set_policy(d: Deps, client: str, function_id: str, strategies: dict[str, dict],
               near_duplicate_cosine: float | None = None) -> CapturePolicy:
    """Change some settings; the rest keep their values."""
    fn = owned_function(d, client, function_id)
    old = CapturePolicy.model_validate(fn.capture)
    merged = {name: {**old.strategies.get(name, {}), **settings}
              for name, settings in {**old.strategies, **strategies}.items()}
    try:
        policy = CapturePolicy(strategies=merged, near_duplicate_cosine=(
            old.near_duplicate_cosine if near_duplicate_cosine is None
            else near_duplicate_cosine))
    except ValidationError as err:
        raise BadRequest("; ".join(_problem(e) for e in err.errors())) from err
    d.functions.update(fn.id, capture=policy.model_dump())
    d.serving.invalidate(fn.id)
    d.captures.invalidate(fn.id)
    return policy


def _problem(e: dict) -> str:
    field = "nearDuplicateCosine" if "near_duplicate_cosine" in e.get("loc", ()) else "strategies"
    return f"{field}: {e.get('msg', 'invalid').removeprefix('Value error, ')}"


# -- live accuracy --------------------------------------------------------------------------

@dataclass(frozen=True)
class LiveAccuracy:
    model_version: int
    annotated: int
    correct: int
    accuracy: float
    low: float  # 95 % Wilson interval
    high: float


def live_accuracy(d: Deps, client: str, function_id: str) -> list[LiveAccuracy]:
    """Per model version, from annotated random captures: an unbiased sample of its invokes."""
    fn = owned_function(d, client, function_id)
    tally: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for s in d.samples.facts(fn.id):
        if s.capture_reason == "random" and s.annotation and s.model_version is not None:
            t = tally[s.model_version]
            t[0] += 1
            t[1] += s.annotation == s.predicted_label_id
    out = []
    for v in sorted(tally):
        n, c = tally[v]
        out.append(LiveAccuracy(v, n, c, c / n, *wilson(c, n)))
    return out
