"""Suspected mislabels: annotated samples whose own label the cross-validated model doubts while
it is sure of another (confident learning: Northcutt, Jiang and Chuang, 2021).

Each label has a threshold: the mean cross-validated probability its own samples get for it
(how sure the model is of that label's samples, so a label that is hard everywhere is not
flagged everywhere). A sample annotated A is a suspect when its probability of A is under A's
threshold while the label B it is predicted as (B ≠ A) has a probability at or over B's.
Suspects come most doubtful first: by p(B) − p(A), the normalised margin that ranks best in
that paper. Pure: it reads a version's stored cross-validated entries (`ModelMeta.cv`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Suspect:
    sample_id: str
    annotated: str  # the label it was trained with (bare id)
    predicted: str  # the label cross-validation gave it
    confidence: float  # p(predicted)
    own: float  # p(annotated)

    @property
    def margin(self) -> float:
        return self.confidence - self.own


def thresholds(trained: Mapping[str, str],
               cv: Mapping[str, Sequence]) -> dict[str, float]:
    """Per label, the mean probability its samples get for it (samples whose own probability
    is unknown are left out)."""
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for sid, label in trained.items():
        own = _own(cv.get(sid))
        if own is not None:
            sums[label][0] += own
            sums[label][1] += 1
    return {label: total / n for label, (total, n) in sums.items()}


def suspects(trained: Mapping[str, str], cv: Mapping[str, Sequence]) -> list[Suspect]:
    """`trained`: sample id → the label it was trained with; `cv`: sample id → [label,
    confidence, own label's probability or None] (`ModelMeta.cv`)."""
    t = thresholds(trained, cv)
    out = []
    for sid, label in trained.items():
        entry = cv.get(sid)
        own = _own(entry)
        if own is None or entry[0] == label or label not in t or entry[0] not in t:
            continue
        confidence = float(entry[1])
        if own < t[label] and confidence >= t[entry[0]]:
            out.append(Suspect(sid, label, entry[0], confidence, own))
    out.sort(key=lambda s: (-s.margin, s.sample_id))
    return out


def _own(entry: Sequence | None) -> float | None:
    if entry is None or len(entry) < 3 or entry[2] is None:
        return None
    return float(entry[2])
