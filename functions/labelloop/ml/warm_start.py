"""Where a retrain starts when it does not search (numpy only: the use case builds it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from labelloop.ml.head import Head


@dataclass(frozen=True)
class WarmStart:
    """The live version's head (its weights, temperature and lexical weight), the C its
    search chose, how many folds that search used, and per sample the cross-validated
    (label, confidence, own label's probability) it carries over: None for the fresh samples,
    which get new ones."""

    head: Head
    C: float
    n_folds: int
    cv: Sequence[tuple[str, float, float] | None]
