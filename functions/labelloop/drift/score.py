"""The drift score: the population stability index (PSI) of each signal between a reference
stretch of invokes and a recent one, less what sampling alone would give, and the largest of
them.

PSI = Σ (q − p) ln(q / p) over a signal's categories (labels predicted, confidence bins,
novel or not), with half a count added to every category so that an empty one stays finite.
Two samples of the same traffic still differ: for k categories and n and m invokes that gives
about (k − 1)(1/n + 1/m), which on 77 labels and 500 invokes is 0.19, most of the usual 0.25
threshold. That much is subtracted, so a stationary stream scores about 0 whatever its number
of labels, and 0.25 keeps its usual meaning (a significant shift).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labelloop.drift.counts import DriftCounts


@dataclass(frozen=True)
class DriftScore:
    labels: float
    confidence: float
    novelty: float

    @property
    def score(self) -> float:
        return max(self.labels, self.confidence, self.novelty)


def psi(expected, actual) -> float:
    """Bias-corrected PSI between two count vectors over the same categories."""
    p = np.asarray(expected, dtype=float)
    q = np.asarray(actual, dtype=float)
    m, n = p.sum(), q.sum()
    if m == 0 or n == 0:
        return 0.0
    seen = (p + q) > 0
    p, q = p[seen], q[seen]
    k = len(p)
    p = (p + 0.5) / (m + 0.5 * k)
    q = (q + 0.5) / (n + 0.5 * k)
    raw = float(np.sum((q - p) * np.log(q / p)))
    return max(0.0, raw - float((k - 1) * (1 / n + 1 / m)))


def drift_score(reference: DriftCounts, recent: DriftCounts) -> DriftScore:
    labels = sorted(set(reference.labels) | set(recent.labels))
    return DriftScore(
        psi([reference.labels[x] for x in labels], [recent.labels[x] for x in labels]),
        psi(reference.confidence, recent.confidence),
        psi([reference.invokes - reference.novel, reference.novel],
            [recent.invokes - recent.novel, recent.novel]))
