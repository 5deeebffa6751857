"""Use cases: the decision policy (set, clear), the thresholds report a policy is chosen from,
and recording what a promotion re-solved."""

from __future__ import annotations

from dataclasses import dataclass

from labelloop.container import Deps
from labelloop.domain import FunctionItem, LabelItem
from labelloop.errors import BadRequest, NotReady
from labelloop.ml.quality import LabelQuality, Quality
from labelloop.serving import LiveModel
from labelloop.thresholds import (
    Decisions,
    Solved,
    ThresholdPolicy,
    resolve,
    solve_label,
    solve_overall,
)
from labelloop.usecases.common import owned_function

DEFAULT_TARGET = 0.95


@dataclass(frozen=True)
class LabelReport:
    label_id: str
    name: str | None  # None: deleted since the version was trained
    quality: LabelQuality | None
    recommended: Solved  # on its own predictions


@dataclass(frozen=True)
class Report:
    function: FunctionItem
    model: LiveModel
    labels: dict[str, LabelItem]
    target: float
    overall: Solved
    per_label: list[LabelReport]
    policy: ThresholdPolicy | None
    applied: Decisions | None  # the function's policy solved for this version
    label_curve: LabelReport | None = None

    @property
    def quality(self) -> Quality | None:
        return self.model.quality


def report(d: Deps, client: str, function_id: str, target: float | None,
           model_version: int | None, label: str | None) -> Report:
    fn = owned_function(d, client, function_id)
    policy = ThresholdPolicy.model_validate(fn.thresholds) if fn.thresholds else None
    if target is None:
        target = (policy.accept.targetPrecision if policy and policy.accept.targetPrecision
                  else DEFAULT_TARGET)
    version = model_version if model_version is not None else fn.live
    if version is None:
        raise NotReady("this function has no model yet: add labels and annotated samples "
                       "(training starts by itself)")
    d.model_versions.get(fn.id, version)  # NotFound names the version, not its files
    model = d.serving.model(fn.id, version)
    labels = {lb.id: lb for lb in d.labels.list(fn.id, consistent=False)}
    q = model.quality
    ids = list(q.labels) if q else sorted(model.head.classes)
    ids += sorted(set(labels) - set(ids))
    quality_of = {lq.label_id: lq for lq in q.per_label} if q else {}
    per_label = [LabelReport(lid, labels[lid].name if lid in labels else None,
                             quality_of.get(lid), solve_label(q, lid, target))
                 for lid in ids]
    chosen = None
    if label is not None:
        lid = _label_id(labels, label, "label")
        chosen = next(r for r in per_label if r.label_id == lid)
    # Applied as invokes are decided: over the labels that exist now.
    applied = resolve(policy, q, sorted(labels), version) if policy else None
    return Report(fn, model, labels, target, solve_overall(q, target), per_label, policy,
                  applied, chosen)


def set_policy(d: Deps, client: str, function_id: str, policy: ThresholdPolicy
               ) -> FunctionItem:
    """Store the policy, its perLabel keys (label names or ids) turned into bare ids."""
    fn = owned_function(d, client, function_id)
    labels = {lb.id: lb for lb in d.labels.list(fn.id)}
    per_label = {}
    for key, rules in policy.perLabel.items():
        lid = _label_id(labels, key, f"perLabel.{key}")
        if lid in per_label:
            raise BadRequest(f"perLabel.{key}: names a label given twice")
        per_label[lid] = rules
    policy = policy.model_copy(update={"perLabel": per_label})
    for lid in ["", *per_label]:
        _review_not_above_accept(policy, lid, f"perLabel.{labels[lid].name}." if lid else "")
    stored = policy.model_dump(exclude_none=True)
    d.functions.update(fn.id, thresholds=stored)
    d.serving.invalidate(fn.id)
    return fn.model_copy(update={"thresholds": stored})


def _review_not_above_accept(policy: ThresholdPolicy, lid: str, field: str) -> None:
    accept, review = policy.rules(lid)
    if (review is not None and review.confidence is not None and accept.confidence is not None
            and review.confidence > accept.confidence):
        raise BadRequest(f"{field}review.confidence: {review.confidence:g} is above the accept "
                         f"confidence {accept.confidence:g}")


def clear_policy(d: Deps, client: str, function_id: str) -> None:
    fn = owned_function(d, client, function_id)
    d.functions.update(fn.id, thresholds=None)
    d.serving.invalidate(fn.id)


def _label_id(labels: dict[str, LabelItem], key: str, field: str) -> str:
    """A label given by name or id (with or without its prefix); names win, as an id is no
    name a person would pick."""
    by_name = [lb.id for lb in labels.values() if lb.name == key.strip()]
    if by_name:
        return by_name[0]
    lid = key.strip().removeprefix("label_")
    if lid not in labels:
        raise BadRequest(f"{field}: no label named or with id {key!r}")
    return lid


def record_thresholds(d: Deps, fid: str, model: LiveModel, previous: LiveModel | None) -> None:
    """On the version that just went live: the thresholds the function's policy gives it, and
    what the version before had (the policy is re-solved at every promotion)."""
    fn = d.functions.get(fid)
    if not fn.thresholds:
        return
    policy = ThresholdPolicy.model_validate(fn.thresholds)
    ids = sorted(lb.id for lb in d.labels.list(fid))
    now = resolve(policy, model.quality, ids, model.version)
    was = (resolve(policy, previous.quality, ids, previous.version)
           if previous is not None else None)
    d.model_versions.record_thresholds(fid, model.version, {
        "policy": fn.thresholds,
        "previousVersion": previous.version if previous is not None else None,
        "labels": {lid: {"accept": a.accept, "review": a.review, "source": a.source,
                         "was": was.by_label[lid].accept if was else None}
                   for lid, a in now.by_label.items()}})
