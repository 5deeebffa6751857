"""What the routes answer, as models for the OpenAPI document only: the routes build their
JSON in api/presenters.py, and tests/test_fuzz.py checks every answer against these. Keys a
presenter leaves out when empty are optional here; extra keys stay allowed (the Nyckel SDK
reads only the ones it knows, and so may a client of the document)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class Error(Out):
    """Every 4xx: what went wrong, the offending field named first when there is one; some
    carry more, e.g. a 409 on a duplicate sample carries `existingSampleId`."""

    message: str
    existingSampleId: str | None = None


class Empty(Out):
    """`{}`: done, nothing to show."""


class Token(Out):
    access_token: str
    token_type: str = Field(description="Bearer")
    expires_in: int = Field(description="seconds")


class Function(Out):
    id: str = Field(description="function_<id>")
    name: str | None = None
    input: str
    output: str
    encoder: str | None = None
    createdAt: str | None = None
    storeInvokes: bool | None = None
    invokeRetentionDays: int | None = None
    liveModelVersion: int | None = None
    rollbackModelVersion: int | None = None


class FunctionV09(Function):
    state: str = Field(description="Annotating, Training or Browsing")


class FunctionMetrics(Out):
    isTraining: bool
    sampleCount: int
    predictionCount: int
    annotatedLabelCounts: dict[str, int]
    labelCount: int
    liveModelVersion: int | None = None
    lastTrainingError: str | None = None


class Label(Out):
    id: str = Field(description="label_<id>")
    name: str
    description: str | None = None
    metadata: dict[str, str] | None = None


class Annotation(Out):
    labelId: str
    createdAt: str | None = None


class Prediction(Out):
    labelId: str
    confidence: float


class InvokePrediction(Prediction):
    margin: float
    modelVersion: int | None = None


class Suspect(Out):
    """Why a sample is a suspected mislabel: annotated X (annotatedConfidence, the
    cross-validated probability of its own label), model says Y (confidence)."""

    annotatedLabelId: str
    annotatedConfidence: float
    labelId: str
    confidence: float
    margin: float
    modelVersion: int


class Sample(Out):
    id: str = Field(description="sample_<id>")
    data: str
    externalId: str | None = None
    annotation: Annotation | None = None
    prediction: Prediction | None = None
    origin: str | None = None
    createdAt: str | None = None
    captureReason: str | None = None
    inReviewQueue: bool | None = None
    priority: float | None = None
    invokePrediction: InvokePrediction | None = None
    corrected: bool | None = None
    kept: bool | None = Field(None, description="a suspected mislabel whose label a reviewer "
                                                "kept (while it keeps that label)")
    suspect: Suspect | None = Field(None, description="GET …/review?strategy=suspect only")


class SimilarSample(Sample):
    similarity: float


class LabelConfidence(Out):
    labelName: str
    labelId: str
    confidence: float
    labelMetadata: dict[str, str] | None = None


class InvokeResult(LabelConfidence):
    labelConfidences: list[LabelConfidence]
    modelVersion: int
    sampleId: str
    decision: str | None = None
    decisionThreshold: float | None = None


class InvokeRecord(Out):
    sampleId: str
    data: str
    externalId: str | None = None
    labelId: str
    confidence: float
    margin: float
    modelVersion: int
    createdAt: str | None = None


class TrainQueued(Out):
    queued: bool
    force: bool


class ModelVersion(Out):
    version: int
    live: bool
    createdAt: str | None = None
    zeroShot: bool | None = None
    sampleCount: int | None = None
    labelIds: list[str]
    cvAccuracy: float | None = None
    cvEce: float | None = None
    folds: int | None = None
    trainSeconds: float | None = None
    reason: str | None = None
    promoted: bool | None = None
    decision: str | None = None
    search: dict[str, Any] | None = Field(
        None, description="how its settings were found: warm (kept the live version's and "
        "started from its weights) or searched, why, and C")
    suspects: dict[str, Any] | None = Field(
        None, description="what reviewers had done with the live version's suspected "
        "mislabels (fixed: relabelled or unlabelled, all versions so far; kept; shareFixed) "
        "and how many of the rest this version trained lighter (lighter, meanWeight)")


class ModelVersionDetail(ModelVersion):
    quality: dict[str, Any] | None = Field(
        None, description="per-label precision/recall/F1, confused pairs, confusion matrix")
    thresholds: dict[str, Any] | None = Field(None, description="what a promotion re-solved")


class Live(Out):
    live: int | None


class BulkResult(Out):
    sampleId: str
    status: int
    sample: Sample | None = None
    message: str | None = None


class BulkResults(Out):
    results: list[BulkResult]


class ImportResult(Out):
    """One item of a bulk import, in the request's order: 200 with the sample, or the status
    and message it would have had alone (409: `existingSampleId`)."""
    status: int
    sample: Sample | None = None
    message: str | None = None
    existingSampleId: str | None = None


class ImportResults(Out):
    results: list[ImportResult]


class CaptureStrategy(Out):
    name: str
    used: int


class CapturePolicy(Out):
    nearDuplicateCosine: float | None = None
    spreadCosine: float | None = None
    labelCap: float | None = None
    driftRandomFactor: float | None = None
    strategies: list[CaptureStrategy]


class DriftCountsOut(Out):
    invokes: int
    novelShare: float | None = None
    confidenceBins: list[int]
    labels: list[dict[str, Any]]


class DriftDay(DriftCountsOut):
    date: str


class Drift(Out):
    modelVersion: int | None = None
    score: float | None = Field(None, description="PSI, sampling noise taken off; null until "
                                                  "the reference and a recent window exist")
    flagged: bool
    signals: dict[str, float] | None = None
    reference: DriftCountsOut | None = None
    recent: DriftCountsOut | None = None
    settings: dict[str, float]
    days: list[DriftDay]


class LiveAccuracy(Out):
    modelVersion: int | None = None
    annotated: int
    correct: int
    accuracy: float
    interval95: list[float]


class Solved(Out):
    source: str | None = None
    recommended: dict[str, Any] | None = None
    reason: str | None = None
    curve: dict[str, Any] | None = None


class Thresholds(Out):
    """The report (`GET`, and `PUT` once a model is live); before that `PUT` answers with
    the policy alone."""

    modelVersion: int | None = None
    zeroShot: bool | None = None
    targetPrecision: float | None = None
    evidence: dict[str, int] | None = None
    overall: Solved | None = None
    perLabel: list[dict[str, Any]] | None = None
    policy: dict[str, Any] | None = None
    applied: list[dict[str, Any]] | None = None
    label: dict[str, Any] | None = None


class BatchJob(Out):
    id: str = Field(description="batch_<id>")
    functionId: str
    state: str
    total: int | None = None
    processed: int | None = None
    failed: int | None = None
    parts: int
    partsDone: int | None = None
    partsFailed: int | None = None
    capture: bool | None = None
    createdAt: str | None = None
    updatedAt: str | None = None
    lastError: str | None = None
    resultsPrefix: str


class BatchResults(Out):
    results: list[dict[str, Any]]
    next: int | None = None
