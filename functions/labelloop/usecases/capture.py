"""Use case: capturing invokes into the review buffer, one invoke or a batch slab.

The capture runs after the invoke's response (`afterwork`), decides from cached buffer state
(no read), and writes only for a candidate: one transaction that cannot overfill a quota. A
batch slab's invokes are decided the same way and committed together (`capture_many`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labelloop.capture.decide import BufferState, Slot, Take, decide, near_duplicate
from labelloop.capture.policy import CapturePolicy
from labelloop.container import Deps
from labelloop.domain import Origin, SampleItem, predicted
from labelloop.encoder import Features
from labelloop.errors import Conflict
from labelloop.observability import MetricUnit, per_function
from labelloop.serving import LiveModel, Prediction, View


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
    return capture_offer(d, view, model, Offer(prediction, features, sample_id, text,
                                               external_id))


def capture_offer(d: Deps, view: View, model: LiveModel, offer: Offer) -> str | None:
    strategy = _capture(d, view, model, offer)
    count_captures(view.function.id, [strategy])
    return strategy


def count_captures(fid: str, strategies: list[str | None]) -> None:
    """The API's `Captures` metric, per function and strategy."""
    for strategy in filter(None, strategies):
        per_function("api", fid, {"Captures": (MetricUnit.Count, 1)}, strategy=strategy)


def _capture(d: Deps, view: View, model: LiveModel, o: Offer, observed: bool = False
             ) -> str | None:
    fid = view.function.id
    cache = d.captures
    st = cache.state(fid, _policy(d, view, model), model)
    if not observed:
        cache.observe(st, o.prediction.label_id)
    row = o.features.embeddings[0]
    take = decide(st.budgets, st.candidate(o.prediction, view.decisions), st.buffers,
                  cache.draws(o.sample_id), _rival(cache, fid, st, o))
    if take is None:
        return None
    if near_duplicate(row, cache.known_embeddings(fid, st), st.policy.near_duplicate_cosine):
        return None
    sample = _sample(fid, model, o, take)
    try:
        d.ledger.capture(sample, take.quota, take.replaces)
    except Conflict:
        # Full, replaced by another container first, or the same text exists: re-read.
        cache.invalidate(fid)
        return None
    cache.committed(fid, st, take, sample, row)
    return take.strategy


def _policy(d: Deps, view: View, model: LiveModel) -> CapturePolicy:
    """The function's policy, or while this container last read drift for the live version,
    the policy under drift (`random` sampling more)."""
    policy = view.function.capture_policy
    return policy.drifted() if d.drift_tracker.flagged(view.function.id, model.version) \
        else policy


def _rival(cache, fid: str, st, o: Offer):
    """The spread rules' question to the cached buffer, for `decide` to ask per strategy."""
    row, label_id = o.features.embeddings[0], o.prediction.label_id
    return lambda strategy: cache.rival(fid, st, strategy, row, label_id)


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
    st = cache.state(fid, _policy(d, view, model), model)
    buffers = dict(st.buffers)
    taken: list[tuple[int, Take]] = []
    known, kept, texts, vacated = None, [], set(), set()
    stop = len(offers)
    for n, o in enumerate(offers):
        cache.observe(st, o.prediction.label_id)
        take = decide(st.budgets, st.candidate(o.prediction, view.decisions), buffers,
                      cache.draws(o.sample_id), _rival(cache, fid, st, o))
        if take is not None and (take.replaces is _UNKNOWN or len(taken) == MANY_PER_WRITE
                                 or (take.replaces is not None
                                     and take.replaces.sample_id in vacated)):
            # From this offer on, `capture` decides one by one (drawing the same numbers;
            # this offer is counted in the mix already).
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
        if take.replaces is not None:
            vacated.add(take.replaces.sample_id)
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
                out[n] = _capture(d, view, model, offers[n], observed=n <= stop)
            return out
        cache.committed_many(fid, st, [(sample, t, offers[n].features.embeddings[0])
                                       for (n, _), (sample, t) in zip(taken, samples,
                                                                      strict=True)])
        for n, t in taken:
            out[n] = t.strategy
    for n in range(stop, len(offers)):
        out[n] = _capture(d, view, model, offers[n], observed=n <= stop)
    return out


def _sample(fid: str, model: LiveModel, o: Offer, take: Take) -> SampleItem:
    return SampleItem.new(
        fid, o.sample_id, o.text, o.features, Origin.CAPTURE, external_id=o.external_id,
        **predicted(model.version, o.prediction), capture_reason=take.strategy,
        buffer=take.strategy, priority=take.priority)
