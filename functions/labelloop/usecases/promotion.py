"""Use case: the promotion rule, which decides whether a candidate model version goes live.

- compared on the same items: the annotated samples the live model was not trained on (new
  ones, and ones whose annotation changed). The live model's predictions there vs. the
  candidate's from models trained on all the other samples but that item's fold of new ones
  (all the data the live model had: a fair fight, unlike plain CV predictions);
- promoted unless its accuracy there is lower by more than two standard errors of the paired
  difference; leaving zero-shot, a changed label set, and `force` always promote.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labelloop.encoder import Features
from labelloop.ml.build import TrainedModel
from labelloop.serving import LiveModel, ModelMeta, predict

# How much worse (in standard errors of the paired difference) a candidate must look on the
# new annotations to be held back. One was too eager: with two equal models it holds back
# about one retrain in six (the one-sided normal tail), and the demo's five fresh, hard
# (actively chosen) annotations kept blocking a retrain that was no worse.
BLOCK_STANDARD_ERRORS = 2.0

@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def compares(live: LiveModel | None, label_ids: set[str], force: bool) -> bool:
    """Whether the rule will compare on the new annotations (so the candidate must predict
    them fresh); otherwise it promotes without looking."""
    return not force and live is not None and not live.head.zero_shot and set(
        live.meta.label_ids) == label_ids


def decide(model: TrainedModel, meta: ModelMeta, features: Features, live: LiveModel | None,
           force: bool) -> Decision:
    if force:
        return Decision(True, "forced")
    if live is None:
        return Decision(True, "first model")
    if live.head.zero_shot and not model.zero_shot:
        return Decision(True, "leaves zero-shot")
    if set(live.meta.label_ids) != set(meta.label_ids):
        return Decision(True, "label set changed")
    if model.zero_shot:
        return Decision(True, "too few annotated samples left to train: zero-shot")
    new = [i for i, (sid, label) in enumerate(meta.trained.items())
           if live.meta.trained.get(sid) != label]
    if not new:
        return Decision(True, "no new annotations to compare on")
    truth = np.array(list(meta.trained.values()))[new]
    fresh = model.fresh_predictions or {}
    candidate = np.array([fresh.get(i, model.cv_predictions[i]) for i in new]) == truth
    labels_now = {lid: None for lid in meta.label_ids}
    live_pred = predict(live, labels_now, features.take(np.array(new)))
    incumbent = np.array([p.label_id for p in live_pred]) == truth
    diff = candidate.astype(float) - incumbent.astype(float)
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 1.0
    summary = (f"on {len(new)} new annotations: candidate {candidate.mean():.3f}, "
               f"live v{live.version} {incumbent.mean():.3f}, standard error {se:.3f}")
    if diff.mean() < -BLOCK_STANDARD_ERRORS * se:
        return Decision(False, "worse by more than two standard errors " + summary)
    return Decision(True, summary)
