"""A function's decision policy: which predictions to act on (`accept`), which to route to a
person (`review`) and which to a fallback (`reject`), by confidence thresholds that are either
fixed or solved, per model version, for a target precision.

A function-level target is one threshold for every label without a rule of its own, solved on
their predictions together: the lowest at which precision is above the target with 95 %
confidence. One threshold, not one per label: the head's confidence is calibrated as a whole,
and holding every label to the target separately costs coverage at the same overall precision
(2 to 9 points on BANKING77 and CLINC150 with all their data, scripts/eval_thresholds.py). A
label's own target is solved on its own predictions. Solving is pure and cheap; the serving
cache does it once per (version, policy, label set): a promotion re-solves by itself, and an
invoke does no extra I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from labelloop.ml.quality import (
    MIN_RANDOM,
    Curve,
    Evidence,
    Quality,
    curve,
    lowest_supported,
    unsupported_reason,
)

ACCEPT, REVIEW, REJECT = "accept", "review", "reject"


class Rule(BaseModel):
    """A fixed `confidence`, or the lowest threshold that shows `targetPrecision`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    confidence: float | None = Field(None, ge=0.0, le=1.0)
    targetPrecision: float | None = Field(None, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _one(self) -> Rule:
        if (self.confidence is None) == (self.targetPrecision is None):
            raise ValueError("give either confidence or targetPrecision")
        return self


class LabelRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    accept: Rule | None = None
    review: Rule | None = None


class ThresholdPolicy(BaseModel):
    """Stored on the function (perLabel keyed by bare label id). Without `review`, whatever is
    not accepted is `review`; with it, what is below it too is `reject`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accept: Rule
    review: Rule | None = None
    perLabel: dict[str, LabelRules] = Field(default_factory=dict)

    def rules(self, label_id: str) -> tuple[Rule, Rule | None]:
        own = self.perLabel.get(label_id) or LabelRules()
        return own.accept or self.accept, own.review or self.review


@dataclass(frozen=True)
class Applied:
    """One label's thresholds under a policy and a model version."""

    accept: float | None  # None: the target cannot be shown; nothing is accepted
    review: float  # 0 without a review rule: nothing is rejected
    source: str  # "confidence" (fixed), or the evidence solved on: "cv" / "random"
    reason: str | None = None  # why accept is None


@dataclass(frozen=True)
class Decisions:
    """A policy solved for one model version: what invokes of it are told."""

    model_version: int | None
    by_label: Mapping[str, Applied]

    def decide(self, label_id: str, confidence: float) -> tuple[str, float | None]:
        """(decision, decisionThreshold) for a prediction. The confidence is compared as the
        API shows it (6 decimals), so a client sees the same comparison."""
        a = self.by_label.get(label_id)
        if a is None:
            return REVIEW, None
        c = round(confidence, 6)
        if a.accept is not None and c >= a.accept:
            return ACCEPT, a.accept
        return (REVIEW if c >= a.review else REJECT), a.accept

    def fields(self, label_id: str, confidence: float) -> dict:
        """What an invoke's answer (HTTP, batch) adds: `decision`, and `decisionThreshold`
        (the predicted label's accept threshold; absent where its target cannot be shown)."""
        decision, threshold = self.decide(label_id, confidence)
        return {"decision": decision,
                **({} if threshold is None else {"decisionThreshold": threshold})}


@dataclass(frozen=True)
class Solved:
    threshold: float | None
    source: str
    reason: str | None
    curve: Curve


def solve_label(q: Quality | None, label_id: str, target: float) -> Solved:
    """The lowest threshold at which this label's own predictions show `target`."""
    i = q.index(label_id) if q is not None else None
    if i is None:
        return Solved(None, "cv", _no_evidence(q, label_id), curve(_empty()))
    source = q.source(i)
    c = curve(q.evidence(source).of_label(i))
    at = lowest_supported(c, target)
    if at is None:
        return Solved(None, source, unsupported_reason(
            c, target, f"{_what(source)} of this label"), c)
    return Solved(float(c.thresholds[at]), source, None, c)


def solve_group(q: Quality | None, label_ids: Iterable[str], target: float) -> Solved:
    """One threshold shared by these labels, on their predictions together (the annotated
    random captures among them once there are enough)."""
    idx = [i for i in (q.index(x) for x in label_ids) if i is not None] if q else []
    if not idx:
        return Solved(None, "cv", _no_evidence(q, None), curve(_empty()))
    random = np.isin(q.random_evidence.predicted, idx)
    source = "random" if random.sum() >= MIN_RANDOM else "cv"
    ev = q.evidence(source)
    ev = ev.take(np.isin(ev.predicted, idx))
    c = curve(ev)
    at = lowest_supported(c, target)
    if at is None:
        return Solved(None, source, unsupported_reason(c, target, _what(source)), c)
    return Solved(float(c.thresholds[at]), source, None, c)


def solve_overall(q: Quality | None, target: float) -> Solved:
    """One threshold for every label, on all predictions."""
    return solve_group(q, q.labels if q is not None else (), target)


def resolve(policy: ThresholdPolicy | None, q: Quality | None, label_ids: Iterable[str],
            model_version: int | None) -> Decisions | None:
    """Each label's thresholds under `policy` for the version measured by `q`."""
    if policy is None:
        return None
    label_ids = list(label_ids)
    groups: dict[tuple[str, float], Solved] = {}

    def threshold(kind: str, lid: str) -> Solved:
        own = getattr(policy.perLabel.get(lid) or LabelRules(), kind)
        rule = own or getattr(policy, kind)
        if rule.confidence is not None:
            return Solved(rule.confidence, "confidence", None, curve(_empty()))
        if own is not None:
            return solve_label(q, lid, rule.targetPrecision)
        key = (kind, rule.targetPrecision)
        if key not in groups:  # the labels that follow the function's rule of this kind
            members = [x for x in label_ids
                       if getattr(policy.perLabel.get(x) or LabelRules(), kind) is None]
            groups[key] = solve_group(q, members, rule.targetPrecision)
        return groups[key]

    out = {}
    for lid in label_ids:
        accept = threshold("accept", lid)
        review = threshold("review", lid).threshold if policy.rules(lid)[1] else 0.0
        if review is None:  # a review target that cannot be shown: review everything
            review = 0.0
        if accept.threshold is not None:
            review = min(review, accept.threshold)
        out[lid] = Applied(accept.threshold, review, accept.source, accept.reason)
    return Decisions(model_version, out)


def _empty() -> Evidence:
    return Evidence(np.zeros(0), np.zeros(0), np.zeros(0))


def _what(source: str) -> str:
    return ("annotated random captures" if source == "random"
            else "cross-validated predictions (of samples not picked for being hard)")


def _no_evidence(q: Quality | None, label_id: str | None) -> str:
    if q is None:
        return "this model version has no measured predictions (zero-shot, or trained " \
               "before quality was measured): only a fixed confidence applies"
    if label_id is not None:
        return "this label is newer than the model version"
    return "no cross-validated predictions to measure it on"
