"""Capture strategies: small pure scorers behind one interface, one registry.

A strategy looks at one invoke's prediction (`Candidate`) and returns its priority in [0, 1]
(higher = more worth a human's look) or None (not a candidate). It does no I/O; randomness
comes from the injected `numpy.random.Generator`. How many of the buffer's slots a strategy
may hold is the policy's (`labelloop.capture.policy`), as is what to do with a priority
(`labelloop.capture.decide`): a strategy only scores, like an active-learning query strategy
beside its budget manager.

Adding a strategy: one class here, one entry in `STRATEGIES` and its default quota
(`policy.DEFAULT_QUOTAS`); the contract tests in tests/test_capture_strategies.py run over
every entry. The defaults (uncertainty threshold 0.3, random rate 0.05, rare fraction 0.2,
seldom 0.5) were chosen with scripts/eval_capture.py together with the quotas
(`policy.DEFAULT_QUOTAS`): on a small or easy stream (BBC News: 1,500 texts, 5 topics) the
old 0.5 and 0.02 left the review queue to rare_class's confident items once the few uncertain
ones were annotated, under random-only there; on the large ones the buffers fill either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class Candidate:
    """What strategies see of one invoke."""

    label_id: str  # predicted label
    confidence: float  # its confidence
    margin: float  # top-1 minus top-2 confidence
    # Annotated samples of the predicted label (the live model's training data), how many
    # labels have fewer, how many labels there are, and the most any label has.
    label_count: int
    rarity_rank: int
    label_total: int = 1
    top_count: int = 0
    # The decision policy's accept threshold for the predicted label (None: no policy, or its
    # target cannot be shown), and the rank of the top two labels among the live version's
    # most confused pairs (0 = most; None: not one, or no strategy asked for pairs).
    accept_threshold: float | None = None
    pair_rank: int | None = None
    # The predicted label's share of this container's recent predictions (None: too few seen
    # yet to tell).
    prediction_share: float | None = None


class Strategy(BaseModel):
    """Base: a strategy's settings are its fields; `priority` is its scorer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str]
    # Whether it reads `Candidate.pair_rank`: the live version's quality is read only then.
    uses_pairs: ClassVar[bool] = False
    # Whether the spread rules (`capture.spread`: no near-twins, a cap per predicted label)
    # apply to its buffer.
    spread: ClassVar[bool] = True

    def priority(self, c: Candidate, rng: np.random.Generator) -> float | None:
        raise NotImplementedError

    def rescore(self, c: Candidate, old: float) -> float:
        """A buffered item's priority under a new model (after a retrain). Unlike `priority`
        it never declines: an item that no longer qualifies gets 0 and is replaced first."""
        p = self.priority(c, np.random.default_rng(0))
        return 0.0 if p is None else p


class Uncertainty(Strategy):
    """Stack-ranked uncertainty: takes predictions whose uncertainty reaches `threshold`; once
    its slots are full, a new one replaces the least uncertain buffered item if it is more
    uncertain, so the buffer converges to the most uncertain items.

    Uncertainty is 1 - margin (top-1 minus top-2) by default, 1 - confidence with
    `measure="least_confidence"`."""

    name: ClassVar[str] = "uncertainty"
    threshold: float = Field(0.3, ge=0.0, le=1.0)
    measure: Literal["margin", "least_confidence"] = "margin"

    def priority(self, c: Candidate, rng: np.random.Generator) -> float | None:
        u = 1.0 - (c.margin if self.measure == "margin" else c.confidence)
        u = min(max(u, 0.0), 1.0)
        return u if u >= self.threshold else None


class Random(Strategy):
    """An unbiased fraction `rate` of invokes. The priority is a uniform random key: a full
    buffer keeps the largest keys, i.e. a uniform sample of every invoke it was offered
    (what live-accuracy estimates need)."""

    name: ClassVar[str] = "random"
    spread: ClassVar[bool] = False  # a uniform sample must stay one
    rate: float = Field(0.05, ge=0.0, le=1.0)

    def priority(self, c: Candidate, rng: np.random.Generator) -> float | None:
        # Both draws always happen: a strategy after it that draws from the offer's generator
        # gets the same numbers whatever this one decided.
        take, key = rng.random(), rng.random()
        return float(key) if take < self.rate else None

    def rescore(self, c: Candidate, old: float) -> float:
        return old  # a random key means nothing about the model


class RareClass(Strategy):
    """The predicted label is rare, by either of two measures: among the rarest `fraction` of
    labels (at least one) by annotated samples, with fewer than the best-covered label (when
    all are equal, none is rare by this one); or predicted seldom: its share of recent
    predictions under `seldom` times an even share (1 / labels), which works from the first
    invokes of a function whose labels all started with the same few samples. Rarer (fewer
    samples, a smaller share) and less certain first."""

    name: ClassVar[str] = "rare_class"
    fraction: float = Field(0.2, gt=0.0, le=1.0)
    seldom: float = Field(0.5, ge=0.0, le=1.0)

    def priority(self, c: Candidate, rng: np.random.Generator) -> float | None:
        rare = max(1, round(self.fraction * c.label_total))
        by_samples = c.rarity_rank < rare and c.label_count < c.top_count
        even = c.prediction_share * c.label_total if c.prediction_share is not None else None
        by_predictions = even is not None and even < self.seldom
        if not (by_samples or by_predictions):
            return None
        p = (1.0 - c.margin / 2) / (1.0 + c.label_count)
        if even is not None:
            p *= 1.0 - min(even, 1.0) / 2
        return min(max(p, 0.0), 1.0)


class NearThreshold(Strategy):
    """Predictions whose confidence lies within `band` under the accept threshold of their
    label (the function's decision policy): the annotations that move the threshold. Closer
    first. Without a policy it takes nothing."""

    name: ClassVar[str] = "near_threshold"
    band: float = Field(0.1, gt=0.0, le=1.0)

    def priority(self, c: Candidate, rng: np.random.Generator) -> float | None:
        t = c.accept_threshold
        if t is None or not t - self.band <= c.confidence < t:
            return None
        return min(max(1.0 - (t - c.confidence) / self.band, 0.0), 1.0)


class ConfusedPair(Strategy):
    """Predictions whose top two labels are one of the live version's `pairs` most confused
    pairs (its cross-validated confusion: the "problematic classes"), with uncertainty
    (1 − margin) at least `threshold`. More uncertain first."""

    name: ClassVar[str] = "confused_pair"
    uses_pairs: ClassVar[bool] = True
    pairs: int = Field(5, ge=1, le=10)
    threshold: float = Field(0.3, ge=0.0, le=1.0)

    def priority(self, c: Candidate, rng: np.random.Generator) -> float | None:
        if c.pair_rank is None or c.pair_rank >= self.pairs:
            return None
        u = min(max(1.0 - c.margin, 0.0), 1.0)
        return u if u >= self.threshold else None


# Order matters: an invoke goes to the first strategy that takes it, and `random` comes first
# so that its sample stays unbiased (nothing is taken away from it by the others). The narrow
# strategies come before the broad uncertainty one, which would otherwise take their items.
STRATEGIES: dict[str, type[Strategy]] = {
    Random.name: Random,
    NearThreshold.name: NearThreshold,
    ConfusedPair.name: ConfusedPair,
    Uncertainty.name: Uncertainty,
    RareClass.name: RareClass,
}
