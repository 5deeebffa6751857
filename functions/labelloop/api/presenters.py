"""Domain items → Nyckel-shaped JSON. Absent values are left out, never null: the Nyckel SDK
fails on `"prediction": null`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aws_lambda_powertools.event_handler import Response, content_types

from labelloop.api.routing import ImageLink
from labelloop.domain import FunctionItem, InvokeItem, LabelItem, ModelVersionItem
from labelloop.drift.counts import DriftCounts
from labelloop.ids import full
from labelloop.usecases.capture_policy import SCALARS
from labelloop.usecases.drift import DriftReport
from labelloop.usecases.inputs import image_digest, is_image
from labelloop.usecases.invoke import InvokeResult
from labelloop.usecases.samples import SampleView
from labelloop.usecases.suspects import SuspectView


def respond(status: int, body, headers: dict | None = None) -> Response:
    # nosniff here, not only in the middleware: error answers skip the middleware's way back.
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps(body),
                    headers={"X-Content-Type-Options": "nosniff", **(headers or {})})


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def compact(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def function_json(fn: FunctionItem) -> dict:
    return compact({"id": full(fn.id, "function"), "name": fn.name, "input": fn.input,
                    "output": fn.output, "encoder": fn.encoder,
                    "createdAt": iso(fn.created_at),
                    "storeInvokes": fn.store_invokes,
                    "invokeRetentionDays": fn.invoke_retention_days,
                    "liveModelVersion": fn.live,
                    # Ours: where `POST .../models/rollback` would move `live`.
                    "rollbackModelVersion": fn.live_history[-2]
                    if len(fn.live_history) >= 2 else None})


def label_json(lb: LabelItem) -> dict:
    return compact({"id": full(lb.id, "label"), "name": lb.name, "description": lb.description,
                    "metadata": lb.metadata})


def data_json(fid: str, data: str, link: ImageLink) -> str:
    """A sample's or invoke's data: the text, or its picture's URL (`link`)."""
    return link(fid, image_digest(data)) if is_image(data) else data


def sample_json(sv: SampleView, link: ImageLink) -> dict:
    s, p = sv.sample, sv.prediction
    return compact({
        "id": full(s.id, "sample"), "data": data_json(s.function_id, s.data, link),
        "externalId": s.external_id,
        "annotation": {"labelId": full(s.annotation, "label"),
                       "createdAt": iso(s.annotated_at)} if s.annotation else None,
        "prediction": {"labelId": full(p.label_id, "label"),
                       "confidence": round(p.confidence, 6)} if p else None,
        "origin": s.origin, "createdAt": iso(s.created_at),
        # Beyond Nyckel's shape (its SDK reads only the keys it knows):
        "captureReason": s.capture_reason,
        "inReviewQueue": True if s.buffer else None,
        "priority": round(s.priority, 6) if s.buffer and s.priority is not None else None,
        "invokePrediction": {"labelId": full(s.predicted_label_id, "label"),
                             "confidence": round(s.predicted_confidence or 0.0, 6),
                             "margin": round(s.predicted_margin or 0.0, 6),
                             "modelVersion": s.model_version}
        if s.predicted_label_id else None,
        "corrected": s.corrected,
        "kept": True if s.kept and s.kept == s.annotation else None})


def suspect_json(v: SuspectView, link: ImageLink) -> dict:
    """A suspected mislabel: the sample (its `prediction` is the cross-validated one) and
    why it is suspected."""
    x = v.suspect
    return {**sample_json(SampleView(v.sample, None), link),
            "prediction": {"labelId": full(x.predicted, "label"),
                           "confidence": round(x.confidence, 6)},
            "suspect": {"annotatedLabelId": full(x.annotated, "label"),
                        "annotatedConfidence": round(x.own, 6),
                        "labelId": full(x.predicted, "label"),
                        "confidence": round(x.confidence, 6),
                        "margin": round(x.margin, 6), "modelVersion": v.model_version}}


def invoke_json(r: InvokeResult, label_count: int | None, include_metadata: bool) -> dict:
    labels = r.view.labels

    def one(lid: str, conf: float) -> dict:
        out = {"labelName": labels[lid].name, "labelId": full(lid, "label"),
               "confidence": round(conf, 6)}
        if include_metadata and labels[lid].metadata:
            out["labelMetadata"] = labels[lid].metadata
        return out

    ranked = r.prediction.ranked[:label_count] if label_count else r.prediction.ranked
    return {**one(r.prediction.label_id, r.prediction.confidence),
            "labelConfidences": [one(lid, c) for lid, c in ranked],
            "modelVersion": r.model_version, "sampleId": full(r.sample_id, "sample"),
            **(r.decisions.fields(r.prediction.label_id, r.prediction.confidence)
               if r.decisions else {})}


def invoke_record_json(r: InvokeItem, link: ImageLink) -> dict:
    return compact({"sampleId": full(r.sample_id, "sample"),
                    "data": data_json(r.function_id, r.data, link),
                    "externalId": r.external_id, "labelId": full(r.label_id, "label"),
                    "confidence": round(r.confidence, 6), "margin": round(r.margin, 6),
                    "modelVersion": r.model_version, "createdAt": iso(r.created_at)})


def model_version_json(mv: ModelVersionItem, live: int | None) -> dict:
    return compact({
        "version": mv.version, "live": mv.version == live, "createdAt": iso(mv.created_at),
        "zeroShot": mv.zero_shot, "sampleCount": mv.sample_count,
        "labelIds": [full(x, "label") for x in mv.label_ids],
        "cvAccuracy": mv.cv_accuracy, "cvEce": mv.cv_ece, "folds": mv.n_folds or None,
        "trainSeconds": mv.train_seconds, "reason": mv.reason or None,
        "promoted": mv.promoted, "decision": mv.decision or None, "search": mv.search,
        "suspects": mv.suspects})


def capture_policy_json(policy, usage) -> dict:
    return {**{camel: getattr(policy, k) for k, camel in SCALARS.items()},
            "strategies": [{"name": u.strategy, "used": u.used, **u.settings} for u in usage]}


def drift_counts_json(c: DriftCounts) -> dict:
    return {"invokes": c.invokes,
            "novelShare": None if c.novel_share is None else round(c.novel_share, 4),
            "confidenceBins": c.confidence,
            "labels": [{"labelId": full(lid, "label"), "count": n}
                       for lid, n in c.labels.most_common()]}


def drift_json(r: DriftReport, settings) -> dict:
    reading = r.reading
    signals = reading.signals if reading else None
    return {
        "modelVersion": reading.version if reading else None,
        "score": round(signals.score, 4) if signals else None,
        "flagged": bool(reading and reading.flagged),
        "signals": {"labels": round(signals.labels, 4),
                    "confidence": round(signals.confidence, 4),
                    "novelty": round(signals.novelty, 4)} if signals else None,
        "reference": drift_counts_json(reading.reference) if reading and reading.reference
        else None,
        "recent": drift_counts_json(reading.recent) if reading and reading.recent else None,
        "settings": {"threshold": settings.drift_threshold,
                     "referenceInvokes": settings.drift_reference_invokes,
                     "windowInvokes": settings.drift_window_invokes,
                     "novelCosine": settings.drift_novel_cosine,
                     "flushInvokes": settings.drift_flush_invokes,
                     "flushSeconds": settings.drift_flush_seconds},
        "days": [{"date": day, **drift_counts_json(c)} for day, c in r.days]}


def live_accuracy_json(rows) -> list[dict]:
    return [{"modelVersion": r.model_version, "annotated": r.annotated, "correct": r.correct,
             "accuracy": round(r.accuracy, 4), "interval95": [round(r.low, 4), round(r.high, 4)]}
            for r in rows]
