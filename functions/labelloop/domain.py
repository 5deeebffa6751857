"""Stored items: what the data-access module reads and writes (pydantic at the storage edge).

Ids here are bare (no `function_` prefix); embeddings and wordpiece sets are stored as raw
float32 / int32 bytes, computed once when a sample or label is created, so training never runs
the encoder. Table layout: docs/storage.md.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from labelloop.capture.policy import CapturePolicy
from labelloop.encoder import Features

if TYPE_CHECKING:
    from labelloop.serving import Prediction


class Item(BaseModel):
    model_config = ConfigDict(frozen=True)


class ClientItem(Item):
    id: str
    secret_hash: str
    created_at: float


class FunctionItem(Item):
    id: str
    client: str
    name: str
    input: str = "Text"
    output: str = "Classification"
    # Which encoder embeds its texts (labelloop.encoder.ENCODERS): fixed at creation, since
    # every stored sample's embedding comes from it.
    encoder: str = "fast"
    created_at: float
    # The `live` pointer: the model version that serves. The only mutable part of a model.
    live: int | None = None
    live_history: list[int] = Field(default_factory=list)  # promotions, oldest first
    next_version: int = 0
    # Training state: a queued request (debounce) and a run in progress.
    train_pending: bool = False
    train_requested_at: float | None = None
    training_since: float | None = None
    last_train_error: str | None = None
    store_invokes: bool = True
    invoke_retention_days: int = 30
    # Overrides of the capture defaults, as given: read them as `capture_policy`.
    capture: dict = Field(default_factory=dict)
    # The decision policy (labelloop.thresholds.ThresholdPolicy, as a dict; perLabel keyed by
    # bare label id), or None: invokes then carry no decision.
    thresholds: dict | None = None

    @property
    def capture_policy(self) -> CapturePolicy:
        return CapturePolicy.model_validate(self.capture)

    def is_training(self, now: float, stale_seconds: float) -> bool:
        """A run queued, or running under a lease younger than `stale_seconds` (an older one
        is a crashed worker's): the `live` pointer may move at any moment."""
        running = self.training_since is not None and now - self.training_since < stale_seconds
        return self.train_pending or running


class LabelItem(Item):
    id: str
    function_id: str
    name: str
    description: str | None = None
    metadata: dict[str, str] | None = None
    created_at: float
    # Features of the label's name/description texts (see labelloop.ml.zeroshot.prior_texts).
    prior_embeddings: bytes
    prior_tokens: list[bytes]

    def priors(self) -> Features:
        if not self.prior_tokens:  # an Image function's label: no prior
            return Features(np.zeros((0, 0), dtype=np.float32), [])
        emb = np.frombuffer(self.prior_embeddings, dtype=np.float32).reshape(
            len(self.prior_tokens), -1)
        return Features(emb, [np.frombuffer(t, dtype=np.int32) for t in self.prior_tokens])


class Origin(StrEnum):
    """Where a sample came from (Nyckel's names)."""

    API = "API"  # posted as a sample
    CAPTURE = "InvokeCapture"  # an invoke the capture kept for review
    FEEDBACK = "InvokeFeedback"  # an invoke the application annotated (a correction)


class SampleItem(Item):
    id: str
    function_id: str
    data: str
    external_id: str | None = None
    data_hash: str
    origin: Origin = Origin.API
    annotation: str | None = None  # bare label id
    annotated_at: float | None = None
    created_at: float
    embedding: bytes
    tokens: bytes
    # For samples that come from an invoke (captured, or annotated as feedback): what the
    # model predicted then, so that corrections can be found (`corrected`).
    model_version: int | None = None
    predicted_label_id: str | None = None
    predicted_confidence: float | None = None
    predicted_margin: float | None = None
    # Captured samples: the strategy that took it (kept after review), and while the sample
    # holds one of that strategy's slots in the capture buffer, `buffer` names it.
    capture_reason: str | None = None
    buffer: str | None = None
    priority: float | None = None
    # An annotated image's training views (`encode_views`), kept from its first annotation.
    views: bytes | None = None
    # A suspected mislabel a reviewer kept: the label they confirmed (bare id). While the
    # annotation still names it, the sample is not suspected again.
    kept: str | None = None

    @property
    def corrected(self) -> bool | None:
        """Whether the annotation differs from the invoke's prediction (None: nothing to
        compare)."""
        if self.annotation is None or self.predicted_label_id is None:
            return None
        return self.annotation != self.predicted_label_id

    @classmethod
    def new(cls, function_id: str, sid: str, text: str, features: Features, origin: Origin,
            *, external_id: str | None = None, annotation: str | None = None,
            **fields) -> SampleItem:
        """A sample of `text` with its stored features (`features`: its one row), created now;
        `fields`: the rest (an invoke's prediction, a capture's strategy and priority)."""
        now = time.time()
        return cls(id=sid, function_id=function_id, data=text, external_id=external_id,
                   data_hash=data_hash(text), origin=origin, annotation=annotation,
                   annotated_at=now if annotation else None, created_at=now,
                   embedding=np.ascontiguousarray(features.embeddings[0],
                                                  dtype=np.float32).tobytes(),
                   tokens=np.asarray(features.tokens[0], dtype=np.int32).tobytes(), **fields)

    def features(self) -> Features:
        return features_of([self])


def predicted(model_version: int, prediction: Prediction | InvokeItem) -> dict:
    """The fields a sample keeps of the prediction an invoke made on it (so that a
    correction can be told apart: `SampleItem.corrected`)."""
    return {"model_version": model_version, "predicted_label_id": prediction.label_id,
            "predicted_confidence": prediction.confidence,
            "predicted_margin": prediction.margin}


def data_hash(text: str) -> str:
    """What makes two samples of a function the same sample."""
    return hashlib.sha256(text.encode()).hexdigest()


def encode_views(views: np.ndarray) -> bytes:
    """Training views as stored: float16 rows, half the bytes (6 x 1280-d: 15 KB a sample);
    the fit cannot tell the rounding from the views' own variation."""
    return np.ascontiguousarray(views, dtype=np.float16).tobytes()


def decode_views(raw: bytes | None, dim: int) -> np.ndarray | None:
    if not raw:
        return None
    return np.frombuffer(raw, dtype=np.float16).reshape(-1, dim).astype(np.float32)


def features_of(samples: list[SampleItem]) -> Features:
    """The stored features of these samples, stacked in their order (at least one)."""
    return Features(np.stack([np.frombuffer(s.embedding, dtype=np.float32) for s in samples]),
                    [np.frombuffer(s.tokens, dtype=np.int32) for s in samples])


@dataclass(frozen=True, slots=True)
class SampleFacts:
    """A sample's small attributes, read for every sample of a function (counts, tallies)."""
    id: str
    annotation: str | None = None
    origin: str | None = None
    capture_reason: str | None = None
    predicted_label_id: str | None = None
    model_version: int | None = None
    kept: str | None = None  # the label a reviewer kept (`SampleItem.kept`)


@dataclass(frozen=True)
class SampleCounts:
    """A function's samples, and per label id those annotated with it (none: absent)."""
    samples: int
    annotated: dict[str, int]


@dataclass(frozen=True, slots=True)
class SampleVector:
    """A sample's stored embedding (float32, unit-norm): nearest-neighbour reads."""
    id: str
    embedding: np.ndarray


@dataclass(frozen=True, slots=True)
class TrainingRow:
    """An annotated sample as training reads it: facts, embedding, wordpiece set and (an
    image's) training views."""
    facts: SampleFacts
    embedding: np.ndarray
    tokens: np.ndarray
    views: np.ndarray | None = None


class ModelVersionItem(Item):
    function_id: str
    version: int
    created_at: float
    artifact_key: str  # S3 prefix holding head.npz and model.json
    zero_shot: bool
    label_ids: list[str]
    sample_count: int
    cv_accuracy: float | None = None
    cv_ece: float | None = None
    n_folds: int = 0
    train_seconds: float = 0.0
    reason: str = ""  # why it was trained
    # Promotion decision against the model that was live: promoted, and why.
    promoted: bool = False
    decision: str = ""
    # How its settings were found: {"warm": kept the live version's and started from its
    # weights, or searched; "why"; "C"}. None for zero-shot versions.
    search: dict | None = None
    # What reviewers had done with the live version's suspects when it was trained, and how
    # many of the rest it trained lighter: {"fixed", "kept", "shareFixed", "lighter",
    # "meanWeight"} (`labelloop.ml.suspect_weights`). None for a first version.
    suspects: dict | None = None
    # When it went live under a decision policy: {"policy", "previousVersion", "labels":
    # {label id: {"accept", "review", "source", "was": the previous live version's accept}}}.
    thresholds: dict | None = None


class InvokeItem(Item):
    function_id: str
    sample_id: str  # bare; the invoke's sampleId, usable for feedback within the retention
    data: str
    external_id: str | None = None
    model_version: int
    label_id: str  # the prediction: label (bare id), its confidence, and top-1 minus top-2
    confidence: float
    margin: float
    created_at: float
    expires_at: int  # epoch seconds (the table's TTL attribute)

    @classmethod
    def answered(cls, function_id: str, sample_id: str, text: str, external_id: str | None,
                 model_version: int, prediction: Prediction, retention_days: int,
                 now: float) -> InvokeItem:
        """The record of an invoke's answer, kept `retention_days`."""
        return cls(function_id=function_id, sample_id=sample_id, data=text,
                   external_id=external_id, model_version=model_version,
                   label_id=prediction.label_id, confidence=prediction.confidence,
                   margin=prediction.margin, created_at=now,
                   expires_at=math.ceil(now + 86400 * retention_days))


class BatchJobItem(Item):
    """A batch-invoke job: its parts (SQS messages) are counted in as the worker finishes them.

    `total` and `parts` are declared by the API when it submits the job; a job started by a
    message sent straight to the queue takes the message's `parts` (1 by default) and has no
    declared total (its `processed` count is what arrived)."""

    function_id: str
    id: str
    parts: int
    total: int | None = None
    capture: bool = True
    created_at: float
    updated_at: float | None = None
    parts_done: int = 0  # succeeded or failed for good
    parts_failed: int = 0  # parked in the DLQ after the queue's receive limit
    processed: int = 0  # items settled: a result line (an error line too), or a failed part's
    failed: int = 0  # error lines, plus the items of failed parts
    last_error: str | None = None

    @property
    def state(self) -> str:
        if self.parts_done == 0:
            return "Queued"
        if self.parts_done < self.parts:
            return "Running"
        return "Failed" if self.parts_failed else "Succeeded"
