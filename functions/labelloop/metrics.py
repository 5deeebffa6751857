"""Classification metrics in numpy (no scikit-learn: the invoke path may use them)."""

from __future__ import annotations

import numpy as np


def expected_calibration_error(proba: np.ndarray, y, classes, n_bins: int = 15) -> float:
    """Top-label ECE: |accuracy − confidence| averaged over equal-width confidence bins,
    weighted by how many predictions fall in each."""
    y = np.asarray(y)
    if len(y) == 0:
        return 0.0
    conf = proba.max(axis=1)
    correct = np.asarray(classes)[proba.argmax(axis=1)] == y
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
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
