"""Model quality, thresholds and the decision policy → JSON. Rates are rounded to 4 decimals;
curves go as columns (one array per quantity, one entry per threshold)."""

from __future__ import annotations

import numpy as np

from labelloop.domain import LabelItem
from labelloop.ids import full
from labelloop.ml.quality import MIN_RANDOM, MIN_RANDOM_PER_LABEL, Curve, Quality, point
from labelloop.thresholds import Decisions, Solved
from labelloop.usecases.thresholds import Report


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def _interval(low, high) -> list[float]:
    return [_r(low), _r(high)]


def curve_json(c: Curve) -> dict:
    low, high = c.precision_interval
    c_low, c_high = c.coverage_interval
    return {"total": c.total,
            "threshold": [round(float(t), 4) for t in c.thresholds],
            "covered": c.covered.tolist(), "correct": c.correct.tolist(),
            "coverage": [_r(x) for x in c.coverage],
            "coverageLow": [_r(x) for x in c_low], "coverageHigh": [_r(x) for x in c_high],
            "precision": [None if np.isnan(x) else _r(x) for x in c.precision],
            "precisionLow": [_r(x) for x in low], "precisionHigh": [_r(x) for x in high]}


def solved_json(s: Solved, with_curve: bool = False) -> dict:
    """The recommendation of one curve: the threshold and what it promises, or null with why."""
    out: dict = {"source": s.source, "recommended": None}
    if s.threshold is not None:
        i = int(np.searchsorted(s.curve.thresholds, s.threshold - 1e-12))
        pt = point(s.curve, i)
        out["recommended"] = {
            "threshold": pt.threshold, "precision": _r(pt.precision),
            "precisionInterval95": _interval(pt.precision_low, pt.precision_high),
            "coverage": _r(pt.coverage),
            "coverageInterval95": _interval(pt.coverage_low, pt.coverage_high),
            "covered": pt.covered, "total": pt.total}
    else:
        out["reason"] = s.reason
    if with_curve:
        out["curve"] = curve_json(s.curve)
    return out


def policy_json(stored: dict | None) -> dict | None:
    """The stored policy as the API shows it: perLabel keyed by full label id."""
    if not stored:
        return None
    return {**stored, "perLabel": {full(k, "label"): v
                                   for k, v in stored.get("perLabel", {}).items()}}


def decisions_json(d: Decisions | None, labels: dict[str, LabelItem]) -> list[dict] | None:
    if d is None:
        return None
    return [{"labelId": full(lid, "label"),
             "labelName": labels[lid].name if lid in labels else None,
             "accept": a.accept, "review": a.review, "source": a.source,
             **({"reason": a.reason} if a.reason else {})}
            for lid, a in d.by_label.items()]


def thresholds_json(r: Report) -> dict:
    q = r.quality
    per_label = []
    for lr in r.per_label:
        lq = lr.quality
        per_label.append({
            "labelId": full(lr.label_id, "label"), "labelName": lr.name,
            "support": lq.support if lq else 0, "predicted": lq.predicted if lq else 0,
            "precision": _r(lq.precision) if lq else None,
            "recall": _r(lq.recall) if lq else None,
            **solved_json(lr.recommended)})
    out = {
        "modelVersion": r.model.version, "zeroShot": r.model.head.zero_shot,
        "targetPrecision": r.target,
        "evidence": {"crossValidated": len(q.cv) if q else 0,
                     # left out of the curves: picked for being hard (captures, feedback)
                     "picked": len(q.picked) if q else 0,
                     "randomCaptures": len(q.random) if q else 0,
                     "minRandom": MIN_RANDOM, "minRandomPerLabel": MIN_RANDOM_PER_LABEL},
        "overall": solved_json(r.overall, with_curve=True),
        "perLabel": per_label,
        "policy": policy_json(r.function.thresholds),
        "applied": decisions_json(r.applied, r.labels),
    }
    if r.label_curve is not None:
        out["label"] = {"labelId": full(r.label_curve.label_id, "label"),
                        "labelName": r.label_curve.name,
                        **solved_json(r.label_curve.recommended, with_curve=True)}
    return out


def quality_json(q: Quality | None, labels: dict[str, LabelItem]) -> dict | None:
    """Per-label metrics, the most confused pairs and the confusion matrix (sparse cells)."""
    if q is None:
        return None

    def name(lid: str) -> str | None:
        return labels[lid].name if lid in labels else None

    m = q.confusion
    return {
        "accuracy": _r(q.accuracy), "macroF1": _r(q.macro_f1), "ece": _r(q.ece),
        "samples": len(q.cv), "randomCaptures": len(q.random),
        "perLabel": [{"labelId": full(x.label_id, "label"), "labelName": name(x.label_id),
                      "precision": _r(x.precision), "recall": _r(x.recall), "f1": _r(x.f1),
                      "support": x.support, "predicted": x.predicted} for x in q.per_label],
        "confusedPairs": [{"labelIds": [full(p.a, "label"), full(p.b, "label")],
                           "labelNames": [name(p.a), name(p.b)], "count": p.count,
                           "rate": _r(p.rate)} for p in q.confused_pairs],
        "confusion": {"labelIds": [full(x, "label") for x in q.labels],
                      "cells": [[int(i), int(j), int(m[i, j])]
                                for i, j in zip(*np.nonzero(m), strict=True)]},
    }


def version_thresholds_json(record: dict | None) -> dict | None:
    """What a promotion re-solved (ModelVersionItem.thresholds), label ids in full."""
    if not record:
        return None
    return {"policy": policy_json(record.get("policy")),
            "previousVersion": record.get("previousVersion"),
            "labels": [{"labelId": full(lid, "label"), "accept": v.get("accept"),
                        "review": v.get("review"), "source": v.get("source"),
                        "was": v.get("was")} for lid, v in record.get("labels", {}).items()]}
