"""The capture decision: pure, from a function's policy and its cached buffer state.

Which strategy (if any) takes an invoke, and whether it fills a free slot or replaces the
strategy's least informative buffered item. The write that commits it is atomic and
conditional (`Store.capture_sample`): a decision made on stale state fails there, harmlessly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from labelloop.capture.strategies import STRATEGIES, Candidate, Strategy


class CapturePolicy(BaseModel):
    """A function's capture settings: per-strategy overrides of the defaults, and the cosine
    above which an invoke counts as a near-duplicate of something buffered or trained on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategies: dict[str, dict[str, Any]] = Field(default_factory=dict)
    near_duplicate_cosine: float = Field(0.97, gt=0.0, le=1.0)

    @field_validator("strategies")
    @classmethod
    def _known(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, settings in v.items():
            if name not in STRATEGIES:
                raise ValueError(f"unknown strategy {name!r} (known: {', '.join(STRATEGIES)})")
            try:
                STRATEGIES[name].model_validate(settings)
            except ValidationError as err:
                raise ValueError("; ".join(
                    f"{name}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                    for e in err.errors())) from None
        return v

    def build(self) -> list[Strategy]:
        """Every registered strategy, configured, in registry order."""
        return [cls.model_validate(self.strategies.get(name, {}))
                for name, cls in STRATEGIES.items()]


@dataclass(frozen=True)
class Slot:
    """A buffered item, as a replacement needs it."""

    sample_id: str
    priority: float
    data_hash: str


@dataclass(frozen=True)
class BufferState:
    used: int = 0
    lowest: Slot | None = None  # the least informative item held (known when full)


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


def decide(strategies: Sequence[Strategy], candidate: Candidate,
           buffers: Mapping[str, BufferState], rng: np.random.Generator) -> Take | None:
    """The first strategy that takes the candidate: into a free slot, or in place of its
    least informative item if the candidate beats it."""
    for s in strategies:
        p = s.priority(candidate, rng)
        if p is None or s.quota == 0:
            continue
        b = buffers.get(s.name, BufferState())
        if b.used < s.quota:
            return Take(s.name, p, s.quota)
        if b.lowest is not None and p > b.lowest.priority:
            return Take(s.name, p, s.quota, b.lowest)
    return None


def near_duplicate(embedding: np.ndarray, known: Sequence[np.ndarray], cosine: float) -> bool:
    """Unit-norm rows: the dot product is the cosine."""
    return any(len(k) and float((k @ embedding.astype(k.dtype)).max()) >= cosine
               for k in known)
