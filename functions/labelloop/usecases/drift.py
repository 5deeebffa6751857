"""Use cases: drift. Every HTTP invoke of the live version is counted after its response
(`observe`): its predicted label, its confidence, and whether it is novel (no training sample
within `drift_novel_cosine`, against up to `NOVELTY_ROWS` of them). A container writes its
counts every `drift_flush_invokes` invokes or `drift_flush_seconds` (`flush`), then scores:
the version's reference (its first `drift_reference_invokes` invokes, summed once) against the
recent window (its last `drift_window_invokes` after the reference), by PSI
(`labelloop.drift.score`). A score at or over `drift_threshold` flags drift: the CloudWatch
metric `DriftFlagged` (what the stack's alarm watches), the score per function
(`DriftScore`), and, while flagged, the function's `random` capture rate multiplied by its
policy's `driftRandomFactor` (2) in this container. `report` is `GET .../drift`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from labelloop.container import Deps
from labelloop.drift.counts import DriftCounts
from labelloop.drift.score import DriftScore, drift_score
from labelloop.drift.tracker import DriftStatus
from labelloop.observability import MetricUnit, per_function, service_wide
from labelloop.serving import LiveModel, Prediction, View
from labelloop.usecases.common import owned_function

# Novelty is measured against at most this many training samples (a fixed draw per version):
# at 384 dimensions about 0.2 ms an invoke, whatever the function's size.
NOVELTY_ROWS = 2048
DAYS = 14  # the days `GET .../drift` lists


@dataclass(frozen=True)
class DriftReading:
    version: int
    reference: DriftCounts | None  # None until the version has had enough invokes
    recent: DriftCounts | None
    signals: DriftScore | None
    flagged: bool

    @property
    def status(self) -> DriftStatus:
        return DriftStatus(self.version, self.signals.score if self.signals else None,
                           self.flagged)


@dataclass(frozen=True)
class DriftReport:
    reading: DriftReading | None  # None: no live version
    days: list[tuple[str, DriftCounts]]


def observe(d: Deps, view: View, model: LiveModel, prediction: Prediction,
            embedding: np.ndarray) -> None:
    fid = view.function.id
    rows = d.drift_tracker.novelty_rows(fid, model.version,
                                        lambda: _novelty_rows(d, fid, model))
    novel = bool(len(rows)) and float((rows @ embedding).max()) < d.settings.drift_novel_cosine
    s = d.settings
    due = d.drift_tracker.observe(fid, model.version, prediction.label_id,
                                  prediction.confidence, novel, s.drift_flush_invokes,
                                  s.drift_flush_seconds)
    if due is not None:
        flush(d, fid, model.version, due)


def _novelty_rows(d: Deps, fid: str, model: LiveModel) -> np.ndarray:
    trained = d.captures.trained_embeddings(fid, model)
    if len(trained) > NOVELTY_ROWS:
        rng = np.random.default_rng(model.version)
        trained = trained[np.sort(rng.choice(len(trained), NOVELTY_ROWS, replace=False))]
    return np.ascontiguousarray(trained, dtype=np.float32)


def flush(d: Deps, fid: str, version: int, counts: DriftCounts) -> DriftReading:
    """Write one container's counts, then score and publish the result."""
    now = time.time()
    d.drift.append(fid, version, counts, now)
    reading = read(d, fid, version, now)
    d.drift_tracker.scored(fid, reading.status)
    if reading.signals is not None:
        per_function("api", fid, {"DriftScore": (MetricUnit.NoUnit, reading.signals.score)})
        service_wide("api", {"DriftFlagged": (MetricUnit.Count, int(reading.flagged))})
    return reading


def flush_pending(d: Deps) -> None:
    """Write every count this container holds, unscored (at its shutdown: Lambda gives the
    runtime 500 ms)."""
    for fid, version, counts in d.drift_tracker.take_pending():
        d.drift.append(fid, version, counts, time.time())


def read(d: Deps, fid: str, version: int, now: float | None = None) -> DriftReading:
    s = d.settings
    now = time.time() if now is None else now
    ref = d.drift_tracker.reference(fid, version) or d.drift.reference(fid, version)
    if ref is None:
        first = d.drift.first(fid, version, s.drift_reference_invokes)
        if first is not None:
            ref = d.drift.put_reference(fid, version, *first, now)
    if ref is None:
        return DriftReading(version, None, None, None, False)
    d.drift_tracker.keep_reference(fid, version, ref)
    recent = d.drift.recent(fid, version, s.drift_window_invokes, after=ref[1])
    if recent is None:
        return DriftReading(version, ref[0], None, None, False)
    signals = drift_score(ref[0], recent)
    return DriftReading(version, ref[0], recent, signals,
                        bool(signals.score >= s.drift_threshold))


def report(d: Deps, client: str, function_id: str) -> DriftReport:
    fn = owned_function(d, client, function_id)
    return DriftReport(read(d, fn.id, fn.live) if fn.live else None, d.drift.days(fn.id, DAYS))
