"""What a warm container knows about a function, and how it turns features into predictions.

The function item (with its `live` pointer) and labels are re-read at most every
`cache_seconds`, so a promotion reaches every warm container within seconds; model versions are
immutable, so each is read from S3 once per container and kept. While a training run is queued
or running, an invoke rereads the function item first (one GetItem), so a client told that
training is over gets the new version at its next invoke, not after the cache's seconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from labelloop.data.objects import HEAD, META, QUALITY
from labelloop.domain import FunctionItem, LabelItem, SampleItem
from labelloop.encoder import Features
from labelloop.errors import NotFound
from labelloop.ml.head import Head
from labelloop.ml.quality import Quality
from labelloop.refresh import Refresh
from labelloop.thresholds import Decisions, ThresholdPolicy, resolve

MAX_MODELS = 64  # versions kept per container; each is a few hundred KB


def embeddings_to_bytes(embeddings: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(embeddings, dtype=np.float16), allow_pickle=False)
    return buf.getvalue()


def embeddings_from_bytes(raw: bytes) -> np.ndarray:
    # Stored in float16, compared in float32: numpy has no BLAS kernel for float16, and a
    # check against 20,000 rows took three times as long in it.
    return np.load(io.BytesIO(raw), allow_pickle=False).astype(np.float32)


@dataclass(frozen=True)
class Search:
    """The search a trained version's settings come from: the C it chose, its folds, how many
    annotated samples it had, and how many have changed (added, relabelled, removed) since,
    counted by the warm retrains that kept its settings (usecases/search_plan.py)."""

    C: float
    folds: int
    samples: int
    changed: int = 0


@dataclass(frozen=True)
class ModelMeta:
    """model.json beside head.npz: what a version was trained on and how it did there."""

    version: int
    label_ids: list[str]
    zero_shot: bool
    # sample id -> the label it was trained with (the promotion rule compares on the rest)
    trained: dict[str, str] = field(default_factory=dict)
    # sample id -> [label id, confidence]: its cross-validated prediction
    cv: dict[str, list] = field(default_factory=dict)
    search: Search | None = None  # None: zero-shot, or written before retrains were warm
    # Suspects reviewers fixed, this version's training run and all before it
    # (`labelloop.ml.suspect_weights`)
    suspects_fixed: int = 0

    def to_json(self) -> bytes:
        search = None if self.search is None else {
            "C": self.search.C, "folds": self.search.folds, "samples": self.search.samples,
            "changed": self.search.changed}
        return json.dumps({"version": self.version, "labelIds": self.label_ids,
                           "zeroShot": self.zero_shot, "trained": self.trained,
                           "cv": self.cv, "search": search,
                           "suspectsFixed": self.suspects_fixed}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ModelMeta:
        d = json.loads(data)
        search = d.get("search")
        return cls(d["version"], d["labelIds"], d["zeroShot"], d["trained"], d["cv"],
                   Search(**search) if search else None, d.get("suspectsFixed", 0))


@dataclass(frozen=True)
class LiveModel:
    version: int
    head: Head
    meta: ModelMeta
    # Reads quality.json; only what needs it (a decision policy, the thresholds report, the
    # confused_pair strategy) pays the read, once per version.
    load_quality: Callable[[], Quality | None] = field(default=lambda: None, repr=False,
                                                        compare=False)

    @cached_property
    def quality(self) -> Quality | None:
        """How it did on samples it was not trained on; None for zero-shot versions."""
        return self.load_quality()


@dataclass(frozen=True)
class Prediction:
    label_id: str
    confidence: float
    ranked: list[tuple[str, float]]  # every current label, most confident first

    @property
    def margin(self) -> float:
        """Top-1 minus top-2 confidence (the whole confidence with a single label)."""
        return self.confidence - (self.ranked[1][1] if len(self.ranked) > 1 else 0.0)


@dataclass(frozen=True)
class View:
    function: FunctionItem
    labels: dict[str, LabelItem]  # by bare id
    model: LiveModel | None
    loaded_at: float
    # The function's decision policy solved for the live version (None: no policy, or no
    # model yet): travels with the view, so deciding costs an invoke no I/O.
    decisions: Decisions | None = None

    def predict(self, features: Features) -> list[Prediction]:
        return predict(self.model, self.labels, features)

    def sample_prediction(self, sample: SampleItem) -> Prediction | None:
        """The live model's prediction of a stored sample: cross-validated for the samples it
        was trained on (with the annotation they still have), its own for the rest."""
        if self.model is None or self.model.head.zero_shot or not self.labels:
            return None
        meta = self.model.meta
        cv = meta.cv.get(sample.id)
        if cv and meta.trained.get(sample.id) == sample.annotation and cv[0] in self.labels:
            return Prediction(cv[0], float(cv[1]), [(cv[0], float(cv[1]))])
        return self.predict(sample.features())[0]


def predict(model: LiveModel | None, labels: dict[str, LabelItem],
            features: Features) -> list[Prediction]:
    """Confidences over the labels that exist now: a label deleted since the model was trained
    drops out and the rest are renormalised (its retrain is already queued); one the model does
    not know (created since, or an image function's label without samples) is ranked last at
    0, so that every label is listed."""
    if model is None:
        return []
    head = model.head
    proba = head.predict_proba(features.embeddings,
                               features.tokens if head.uses_tokens else None)
    keep = np.array([c in labels for c in head.classes])
    if not keep.any():
        return []
    classes = [c for c, k in zip(head.classes, keep, strict=True) if k]
    proba = proba[:, keep]
    proba /= np.maximum(proba.sum(axis=1, keepdims=True), 1e-12)
    known = set(classes)
    unknown = [(lid, 0.0) for lid in labels if lid not in known]
    out = []
    for row in proba:
        order = np.argsort(-row, kind="stable")
        ranked = [(classes[i], float(row[i])) for i in order] + unknown
        out.append(Prediction(ranked[0][0], ranked[0][1], ranked))
    return out


class ServingCache:
    def __init__(self, functions, labels, objects, cache_seconds: float,
                 training_stale_seconds: float):
        self._functions = functions
        self._labels = labels
        self._objects = objects
        self._ttl = cache_seconds
        self._stale = training_stale_seconds
        self._views: dict[str, View] = {}
        self._models: OrderedDict[tuple[str, int], LiveModel] = OrderedDict()
        # (fid, version) -> ((policy, label ids), decisions): re-solved when one changes.
        self._decisions: OrderedDict[tuple[str, int], tuple[tuple, Decisions | None]] = (
            OrderedDict())
        self._lock = threading.Lock()
        self._refresh = Refresh()

    def view(self, fid: str) -> View:
        return self._refresh.get(fid, lambda: self._views.get(fid),
                                 lambda v: time.monotonic() - v.loaded_at <= self._ttl,
                                 lambda: self._load_view(fid))

    def live_view(self, fid: str) -> View:
        """The view for serving a prediction. A client told that training is done (the
        metrics route's `isTraining`) invokes at once, and must not get "no model yet" or the
        version before: a view without a model is reread, and one read while a run was queued
        or running follows the function item's `live` pointer until the run is over."""
        v = self.view(fid)
        if v.model is None:
            return self._load_view(fid)
        if not v.function.is_training(time.time(), self._stale):
            return v
        fn = self._functions.get(fid)
        if fn.live != v.function.live:
            return self._load_view(fid)
        if not fn.is_training(time.time(), self._stale):
            # Over, and the same version serves: keep the labels and model, stop rereading.
            v = replace(v, function=fn)
            self._views[fid] = v
        return v

    def _load_view(self, fid: str) -> View:
        fn = self._functions.get(fid)
        labels = {lb.id: lb for lb in self._labels.list(fid, consistent=False)}
        model = self.model(fid, fn.live) if fn.live else None
        v = View(fn, labels, model, time.monotonic(),
                 self.decisions(fid, fn.thresholds, model, labels))
        self._views[fid] = v
        return v

    def decisions(self, fid: str, policy: dict | None, model: LiveModel | None,
                  labels: dict[str, LabelItem]) -> Decisions | None:
        """The policy solved for this model version and label set (cached)."""
        if policy is None or model is None:
            return None
        key = (json.dumps(policy, sort_keys=True), tuple(sorted(labels)))
        with self._lock:
            cached = self._decisions.get((fid, model.version))
        if cached is None or cached[0] != key:
            cached = (key, resolve(ThresholdPolicy.model_validate(policy), model.quality,
                                   sorted(labels), model.version))
            with self._lock:
                self._decisions[(fid, model.version)] = cached
                while len(self._decisions) > MAX_MODELS:
                    self._decisions.popitem(last=False)
        return cached[1]

    def invalidate(self, fid: str) -> None:
        self._views.pop(fid, None)

    def model(self, fid: str, version: int) -> LiveModel:
        key = (fid, version)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        m = load_model(self._objects, fid, version)
        with self._lock:
            self._models[key] = m
            while len(self._models) > MAX_MODELS:
                self._models.popitem(last=False)
        return m


def load_model(objects, fid: str, version: int) -> LiveModel:
    head = Head.from_bytes(objects.get_artifact(fid, version, HEAD))
    meta = ModelMeta.from_json(objects.get_artifact(fid, version, META))

    def load_quality() -> Quality | None:
        # A version trained before quality was measured has none.
        with contextlib.suppress(NotFound):
            if not head.zero_shot:
                return Quality.from_json(objects.get_artifact(fid, version, QUALITY))
        return None

    return LiveModel(version, head, meta, load_quality)
