"""How well a model version does, per label, and how far its confidence can be trusted.

Measured on predictions for samples the version was not trained on: the cross-validated
prediction of every annotated sample (`cv`). Per-label metrics and the confusion use them all.
Precision–coverage curves leave out the samples picked *for being hard* (captured by an active
strategy, or sent as feedback, mostly corrections): they over-represent mistakes, and on a
function fed by its review queue they pushed a 0.90 target to 0.98 realised precision at half
the coverage (scripts/eval_capture.py --thresholds). Among the rest, the annotated `random`
captures are an unbiased sample of live traffic and are preferred once there are enough. The
training worker computes this once per version and stores it beside the head
(`quality.json`); the API and the capture read it. numpy only.

A precision–coverage curve answers, for each confidence threshold t on `GRID`: of the
predictions (of one label, or all), which share has confidence ≥ t (coverage), and how many of
those are right (precision), each with its 95 % Wilson interval.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from labelloop.ml.metrics import wilson

FORMAT_VERSION = 1
GRID = np.arange(201) / 200  # thresholds 0, 0.005, …, 1
# Random captures are preferred over all cross-validated samples once there are this many of
# them (overall, and predicted as one label): fewer give intervals too wide to act on.
MIN_RANDOM = 200
MIN_RANDOM_PER_LABEL = 50
CONFUSED_PAIRS = 10  # the most confused label pairs a version keeps


@dataclass(frozen=True, eq=False)
class Evidence:
    """Predictions checked against the truth: indices into the version's labels, and the
    confidence of each prediction (rounded to 6 decimals, as the API shows it)."""

    predicted: np.ndarray
    truth: np.ndarray
    confidence: np.ndarray

    def __post_init__(self):
        n = len(self.predicted)
        if len(self.truth) != n or len(self.confidence) != n:
            raise ValueError("evidence arrays must have one entry per prediction")
        object.__setattr__(self, "predicted", np.asarray(self.predicted, dtype=np.int64))
        object.__setattr__(self, "truth", np.asarray(self.truth, dtype=np.int64))
        object.__setattr__(self, "confidence",
                           np.round(np.asarray(self.confidence, dtype=np.float64), 6))

    def __len__(self) -> int:
        return len(self.predicted)

    @property
    def correct(self) -> np.ndarray:
        return self.predicted == self.truth

    def take(self, mask) -> Evidence:
        return Evidence(self.predicted[mask], self.truth[mask], self.confidence[mask])

    def of_label(self, index: int) -> Evidence:
        """The predictions *of* this label (what its accept threshold acts on)."""
        return self.take(self.predicted == index)


@dataclass(frozen=True, eq=False)
class Curve:
    """Counts and rates at each threshold of `thresholds` (ascending)."""

    thresholds: np.ndarray
    total: int
    covered: np.ndarray  # predictions with confidence ≥ threshold
    correct: np.ndarray  # of those, right

    @cached_property
    def coverage(self) -> np.ndarray:
        return self.covered / max(self.total, 1)

    @cached_property
    def precision(self) -> np.ndarray:
        """NaN where nothing is covered."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.covered > 0, self.correct / np.maximum(self.covered, 1), np.nan)

    @cached_property
    def precision_interval(self) -> tuple[np.ndarray, np.ndarray]:
        return wilson(self.correct, self.covered)

    @cached_property
    def coverage_interval(self) -> tuple[np.ndarray, np.ndarray]:
        return wilson(self.covered, np.full(len(self.covered), self.total))


def curve(ev: Evidence, thresholds: np.ndarray = GRID) -> Curve:
    order = np.argsort(ev.confidence, kind="stable")
    conf, right = ev.confidence[order], ev.correct[order]
    # Right predictions at or after each position of the ascending order.
    right_from = np.concatenate([np.cumsum(right[::-1])[::-1], [0]])
    start = np.searchsorted(conf, thresholds, side="left")
    return Curve(np.asarray(thresholds, dtype=float), len(ev), len(ev) - start,
                 right_from[start])


@dataclass(frozen=True)
class Point:
    """One threshold of a curve, as the API reports it."""

    threshold: float
    covered: int
    total: int
    precision: float | None
    precision_low: float
    precision_high: float
    coverage: float
    coverage_low: float
    coverage_high: float


def point(c: Curve, i: int) -> Point:
    p = c.precision[i]
    return Point(float(c.thresholds[i]), int(c.covered[i]), c.total,
                 None if np.isnan(p) else float(p), float(c.precision_interval[0][i]),
                 float(c.precision_interval[1][i]), float(c.coverage[i]),
                 float(c.coverage_interval[0][i]), float(c.coverage_interval[1][i]))


def lowest_supported(c: Curve, target: float) -> int | None:
    """The index of the lowest threshold whose precision is above `target` with 95 %
    confidence (the interval's lower end reaches it): the most coverage the evidence can
    promise at that precision. None when no threshold can show it."""
    ok = np.flatnonzero((c.covered > 0) & (c.precision_interval[0] >= target))
    return int(ok[0]) if len(ok) else None


def unsupported_reason(c: Curve, target: float, what: str) -> str:
    if c.total == 0:
        return f"no {what} to measure it on"
    best = float(np.max(np.where(c.covered > 0, c.precision_interval[0], 0.0)))
    return (f"{c.total} {what}: at best {best:.3f} can be shown with 95 % confidence at any "
            f"threshold, below the target {target:g}")


@dataclass(frozen=True)
class LabelQuality:
    label_id: str
    precision: float | None  # None: never predicted
    recall: float | None  # None: no samples (the cross-validated accuracy of the label)
    f1: float
    support: int  # annotated samples of the label
    predicted: int  # predictions of the label


@dataclass(frozen=True)
class Pair:
    """Two labels mistaken for each other: `count` samples of one predicted as the other
    (both ways), `rate` of their samples together."""

    a: str
    b: str
    count: int
    rate: float


@dataclass(frozen=True, eq=False)
class Quality:
    labels: tuple[str, ...]  # label ids, in the head's class order
    cv: Evidence
    random: np.ndarray  # indices into `cv` of the annotated random captures
    ece: float | None = None
    # indices into `cv` of the samples picked for being hard: left out of the curves
    picked: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @classmethod
    def measure(cls, labels, truth, predicted, confidence, random_mask, picked_mask=None,
                ece: float | None = None) -> Quality:
        """From label ids per sample (`truth`, `predicted`), confidences, which samples are
        annotated random captures, and which were picked for being hard."""
        labels = tuple(labels)
        index = {lid: i for i, lid in enumerate(labels)}
        ev = Evidence(np.array([index[x] for x in predicted], dtype=np.int64),
                      np.array([index[x] for x in truth], dtype=np.int64), confidence)
        picked = (np.flatnonzero(np.asarray(picked_mask, dtype=bool)) if picked_mask is not None
                  else np.zeros(0, dtype=np.int64))
        return cls(labels, ev, np.flatnonzero(np.asarray(random_mask, dtype=bool)), ece,
                   picked)

    @cached_property
    def random_evidence(self) -> Evidence:
        return self.cv.take(self.random)

    @cached_property
    def curve_evidence(self) -> Evidence:
        """What curves are drawn from: every cross-validated prediction but the picked ones."""
        keep = np.ones(len(self.cv), dtype=bool)
        keep[self.picked] = False
        return self.cv.take(keep)

    def source(self, label: int | None = None) -> str:
        """`random` where the random captures have the numbers, else `cv`."""
        if label is None:
            return "random" if len(self.random) >= MIN_RANDOM else "cv"
        n = int((self.random_evidence.predicted == label).sum())
        return "random" if n >= MIN_RANDOM_PER_LABEL else "cv"

    def evidence(self, source: str) -> Evidence:
        return self.random_evidence if source == "random" else self.curve_evidence

    def index(self, label_id: str) -> int | None:
        try:
            return self.labels.index(label_id)
        except ValueError:
            return None

    @cached_property
    def confusion(self) -> np.ndarray:
        """(truth, predicted) counts over the cross-validated predictions."""
        k = len(self.labels)
        m = np.zeros((k, k), dtype=np.int64)
        np.add.at(m, (self.cv.truth, self.cv.predicted), 1)
        return m

    @property
    def accuracy(self) -> float | None:
        return float(self.cv.correct.mean()) if len(self.cv) else None

    @cached_property
    def per_label(self) -> list[LabelQuality]:
        m = self.confusion
        out = []
        for i, lid in enumerate(self.labels):
            tp, support, predicted = int(m[i, i]), int(m[i].sum()), int(m[:, i].sum())
            precision = tp / predicted if predicted else None
            recall = tp / support if support else None
            f1 = 2 * tp / (support + predicted) if support + predicted else 0.0
            out.append(LabelQuality(lid, precision, recall, f1, support, predicted))
        return out

    @property
    def macro_f1(self) -> float | None:
        scored = [q.f1 for q in self.per_label if q.support]
        return float(np.mean(scored)) if scored else None

    @cached_property
    def confused_pairs(self) -> list[Pair]:
        """The most confused pairs, most mistakes first (then the higher rate)."""
        m = self.confusion
        both = m + m.T
        support = m.sum(axis=1)
        pairs = []
        for a, b in zip(*np.nonzero(np.triu(both, k=1)), strict=True):
            count = int(both[a, b])
            pairs.append(Pair(self.labels[a], self.labels[b], count,
                              count / max(int(support[a] + support[b]), 1)))
        pairs.sort(key=lambda p: (-p.count, -p.rate, p.a, p.b))
        return pairs[:CONFUSED_PAIRS]

    @cached_property
    def pair_ranks(self) -> dict[frozenset, int]:
        """{frozenset({a, b}): rank} of the confused pairs, 0 the most confused."""
        return {frozenset((p.a, p.b)): r for r, p in enumerate(self.confused_pairs)}

    # -- the stored artifact ----------------------------------------------------------------

    def to_json(self) -> bytes:
        per_label = [{"labelId": q.label_id, "precision": _r(q.precision),
                      "recall": _r(q.recall), "f1": _r(q.f1), "support": q.support,
                      "predicted": q.predicted} for q in self.per_label]
        m = self.confusion
        cells = [[int(i), int(j), int(m[i, j])] for i, j in zip(*np.nonzero(m), strict=True)]
        return json.dumps({
            "format": FORMAT_VERSION, "labels": list(self.labels),
            "cv": {"predicted": self.cv.predicted.tolist(), "truth": self.cv.truth.tolist(),
                   "confidence": self.cv.confidence.tolist()},
            "random": self.random.tolist(), "picked": self.picked.tolist(),
            "ece": _r(self.ece),
            # Derived from the above, kept for readers that want only the summary.
            "accuracy": _r(self.accuracy), "macroF1": _r(self.macro_f1),
            "perLabel": per_label, "confusion": cells,
            "confusedPairs": [{"a": p.a, "b": p.b, "count": p.count, "rate": _r(p.rate)}
                              for p in self.confused_pairs],
        }, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Quality:
        d = json.loads(data)
        if d.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported quality format {d.get('format')}")
        cv = d["cv"]
        return cls(tuple(d["labels"]), Evidence(np.array(cv["predicted"], dtype=np.int64),
                                                np.array(cv["truth"], dtype=np.int64),
                                                np.array(cv["confidence"], dtype=float)),
                   np.array(d["random"], dtype=np.int64), d.get("ece"),
                   np.array(d.get("picked", []), dtype=np.int64))


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)
