"""The capture decision: pure, from a function's policy and its cached buffer state.

Which strategy (if any) takes an invoke, and whether it fills a free slot or replaces the
strategy's least informative buffered item: the strategies score, the quotas decide. The write
that commits it is atomic and conditional (`CaptureLedger.capture`): a decision made on stale
state fails there, harmlessly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from labelloop.capture.policy import Budget
from labelloop.capture.strategies import Candidate


@dataclass(frozen=True)
class Slot:
    """A buffered item, as a replacement needs it."""

    sample_id: str
    priority: float
    data_hash: str


@dataclass(frozen=True)
class Buffered:
    """A buffered item as the spread rules see it: its slot, the label its invoke was predicted
    as, its embedding (unit-norm)."""

    slot: Slot
    label_id: str | None
    embedding: np.ndarray

    @property
    def id(self) -> str:
        return self.slot.sample_id


@dataclass(frozen=True)
class BufferState:
    used: int = 0
    lowest: Slot | None = None  # the least informative item held (known when full)
    # The items next above `lowest`, least first, as far as this container read them: after
    # a replacement the new lowest is among them (or is the newcomer), with no read.
    above: tuple[Slot, ...] = ()

    def replaced(self, old: Slot, newcomer: Slot) -> BufferState | None:
        """The state after `newcomer` took `old`'s slot, or None when the new lowest is not
        known: every unread item ranks above the last one read, so a newcomer below that one
        has a known place, and one above it is left unread. `old` is the lowest item, or
        (a spread rule's rival) any other."""
        if self.lowest is None:  # not full: only the count matters, and it is unchanged
            return self
        known = [s for s in (self.lowest, *self.above) if s.sample_id != old.sample_id]
        if not known:
            return None
        if newcomer.priority < known[-1].priority:
            known.append(newcomer)
            known.sort(key=lambda slot: slot.priority)
        return BufferState(self.used, known[0], tuple(known[1:]))


@dataclass(frozen=True)
class Take:
    strategy: str
    priority: float
    quota: int
    replaces: Slot | None = None


def rarity(label_counts: Mapping[str, int], label_id: str) -> dict[str, int]:
    """The `Candidate` fields about the predicted label's annotated samples."""
    n = label_counts.get(label_id, 0)
    return {"label_count": n,
            "rarity_rank": sum(1 for c in label_counts.values() if c < n),
            "label_total": max(len(label_counts), 1),
            "top_count": max(label_counts.values(), default=0)}


def decide(budgets: Sequence[Budget], candidate: Candidate,
           buffers: Mapping[str, BufferState], rng: np.random.Generator,
           rival: Callable[[str], Slot | None] | None = None) -> Take | None:
    """The first strategy that takes the candidate: into a free slot, or in place of its
    least informative item if the candidate beats it.

    `rival(strategy)` (the spread rules, `spread.rival`): a buffered item of that strategy
    the candidate may only replace, when it is more informative (too similar to it, or its
    predicted label already holds its cap there). Asked only of a strategy that would take
    the candidate; a candidate that loses to its rival goes on to the next strategy."""
    for budget in budgets:
        p = budget.strategy.priority(candidate, rng)
        if p is None or budget.quota == 0:
            continue
        r = rival(budget.name) if rival is not None and budget.strategy.spread else None
        if r is not None:
            if p > r.priority:
                return Take(budget.name, p, budget.quota, r)
            continue
        b = buffers.get(budget.name, BufferState())
        if b.used < budget.quota:
            return Take(budget.name, p, budget.quota)
        if b.lowest is not None and p > b.lowest.priority:
            return Take(budget.name, p, budget.quota, b.lowest)
    return None


def near_duplicate(embedding: np.ndarray, known: Sequence[np.ndarray], cosine: float) -> bool:
    """Unit-norm rows: the dot product is the cosine."""
    return any(len(k) and float((k @ embedding.astype(k.dtype)).max()) >= cosine
               for k in known)
