"""Classification metrics in numpy (no scikit-learn: the invoke path may use them)."""

from __future__ import annotations

import numpy as np


def expected_calibration_error(proba: np.ndarray, y, classes, n_bins: int = 15) -> float:
    """Top-label ECE: |accuracy − confidence| averaged over equal-width confidence bins,
    weighted by how many predictions fall in each."""
    y = np.asarray(y)
    if len(y) == 0:
        return 0.0
    return calibration_error(proba.max(axis=1), np.asarray(classes)[proba.argmax(axis=1)] == y,
                             n_bins)


def calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> float:
    """The same, from each prediction's confidence and whether it was right."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=bool)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - confidence[m].mean())
    return float(ece)


def per_label_accuracy(y, pred) -> dict[str, float]:
    """Recall per true label: the share of its samples predicted as it."""
    y, pred = np.asarray(y), np.asarray(pred)
    return {str(c): float((pred[y == c] == c).mean()) for c in np.unique(y)}


def macro_f1(y, pred) -> float:
    y, pred = np.asarray(y), np.asarray(pred)
    scores = []
    for c in np.unique(y):
        tp = float(((pred == c) & (y == c)).sum())
        fp = float(((pred == c) & (y != c)).sum())
        fn = float(((pred != c) & (y == c)).sum())
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def wilson(correct, n, z: float = 1.96):
    """The 95 % Wilson score interval of a proportion `correct / n` (scalars or arrays; where
    n is 0 the interval is the whole of [0, 1])."""
    correct, n = np.asarray(correct, dtype=float), np.asarray(n, dtype=float)
    safe = np.maximum(n, 1.0)
    p = correct / safe
    denom = 1 + z * z / safe
    centre = (p + z * z / (2 * safe)) / denom
    half = z * np.sqrt(p * (1 - p) / safe + z * z / (4 * safe * safe)) / denom
    low = np.where(n > 0, np.maximum(0.0, centre - half), 0.0)
    high = np.where(n > 0, np.minimum(1.0, centre + half), 1.0)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high
