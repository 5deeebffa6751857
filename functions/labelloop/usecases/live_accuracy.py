"""Use case: live accuracy, per model version, from its annotated random captures (an
unbiased sample of its invokes), with a 95 % Wilson interval."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from labelloop.container import Deps
from labelloop.ml.metrics import wilson
from labelloop.usecases.common import owned_function


@dataclass(frozen=True)
class LiveAccuracy:
    model_version: int
    annotated: int
    correct: int
    accuracy: float
    low: float  # 95 % Wilson interval
    high: float


def live_accuracy(d: Deps, client: str, function_id: str) -> list[LiveAccuracy]:
    fn = owned_function(d, client, function_id)
    tally: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for s in d.samples.facts(fn.id):
        if s.capture_reason == "random" and s.annotation and s.model_version is not None:
            t = tally[s.model_version]
            t[0] += 1
            t[1] += s.annotation == s.predicted_label_id
    out = []
    for v in sorted(tally):
        n, c = tally[v]
        out.append(LiveAccuracy(v, n, c, c / n, *wilson(c, n)))
    return out
