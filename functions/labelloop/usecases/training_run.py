"""Use case: one training run (the training queue's worker).

Reads the labels and annotated samples with their stored features (the encoder never runs
here), trains a candidate (the live version's suspects no reviewer has reached lighter, once
reviews show its suspect queue is right: `labelloop.ml.suspect_weights`), writes it as an
immutable model version (S3: head.npz + model.json; DynamoDB: the version's metrics), and
moves the `live` pointer unless the promotion rule (`usecases/promotion.py`) says the
candidate is worse; a promotion re-scores the capture buffer with the new model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from labelloop.container import Deps
from labelloop.data.objects import HEAD, META, QUALITY, TRAINED_EMBEDDINGS, artifact_key
from labelloop.data.tasks import TrainingTask
from labelloop.domain import FunctionItem, ModelVersionItem, Origin
from labelloop.encoder import Features
from labelloop.errors import Busy, Conflict, NotFound
from labelloop.ml.build import LabelSpec, TrainedModel, build_model, is_trainable
from labelloop.ml.quality import Quality
from labelloop.ml.suspect_weights import Reviews, SampleNow, reviews, weights
from labelloop.ml.suspects import suspects
from labelloop.serving import LiveModel, ModelMeta, embeddings_to_bytes
from labelloop.usecases.common import TrainingMessage
from labelloop.usecases.inputs import IMAGE
from labelloop.usecases.promotion import Decision, compares, decide
from labelloop.usecases.rescore import rescore
from labelloop.usecases.search_plan import Plan, plan, record
from labelloop.usecases.thresholds import record_thresholds

# A request that finds its function training is queued again this much later.
BUSY_RETRY_SECONDS = 20


@dataclass(frozen=True)
class RunResult:
    version: int | None
    decision: Decision | None
    task: str | None = None  # handed to the Fargate training task (its ARN)


def dispatch(d: Deps, message: TrainingMessage) -> RunResult:
    """Run here, or hand the run to the Fargate training task when the stage has one and the
    function is large (a Lambda's memory and 15 minutes would not do). The training Lambda's
    own: `d` has its `TrainingSettings`."""
    s = d.settings
    if s.fargate and d.samples.count(
            message.functionId, s.fargate_min_samples) >= s.fargate_min_samples:
        task = TrainingTask(cluster=s.training_cluster, task_definition=s.training_task_definition,
                            container=s.training_container,
                            subnets=[x for x in s.training_subnets.split(",") if x],
                            security_group=s.training_security_group)
        return RunResult(None, None, d.tasks.start(task, message.model_dump_json()))
    return run(d, message)


def run(d: Deps, message: TrainingMessage) -> RunResult:
    now = time.time()
    try:
        fn = d.functions.begin_training(message.functionId, now,
                                        now - d.settings.training_stale_seconds)
    except NotFound:
        return RunResult(None, None)  # deleted since: nothing to train
    except Busy:
        # One run per function at a time (queues deliver in parallel): this request waits
        # for the running one, and still finds its changes pending then.
        d.queues.send_training_message(message.model_dump(), BUSY_RETRY_SECONDS)
        return RunResult(None, None)
    if fn is None:
        return RunResult(None, None)  # a duplicate delivery: its request was taken already
    started = now  # the lease, as written
    try:
        result = _train(d, fn, message)
    except Exception as err:
        d.functions.end_training(fn.id, started, error=f"{type(err).__name__}: {err}")
        raise
    d.functions.end_training(fn.id, started)
    d.serving.invalidate(fn.id)  # in-process tests and scripts share this container's cache
    return result


def _train(d: Deps, fn: FunctionItem, message: TrainingMessage) -> RunResult:
    labels = d.labels.list(fn.id)
    if not labels:
        return RunResult(None, None)
    label_ids = {lb.id for lb in labels}
    ids, annotations, emb, tokens, views, random, picked = [], [], [], [], [], [], []
    now: dict[str, SampleNow] = {}
    for row in d.samples.training_rows(fn.id):
        s = row.facts
        if s.annotation in label_ids:
            now[s.id] = SampleNow(s.annotation, s.kept)
            ids.append(s.id)
            annotations.append(s.annotation)
            emb.append(row.embedding)
            tokens.append(row.tokens)
            views.append(row.views)
            random.append(s.capture_reason == "random")
            picked.append(is_picked(s.origin, s.capture_reason))
    features = Features(np.stack(emb) if emb else np.zeros((0, 1), np.float32), tokens)

    started = time.perf_counter()
    # Classes are label ids, so a rename never invalidates a model.
    specs = [LabelSpec(lb.id, priors=lb.priors()) for lb in labels]
    live = d.serving.model(fn.id, fn.live) if fn.live else None
    # Fresh predictions only where the promotion rule will look at them: for a first model
    # they were five more fits of everything, thrown away.
    fresh = np.array([live.meta.trained.get(sid) != label
                      for sid, label in zip(ids, annotations, strict=True)], dtype=bool) \
        if compares(live, label_ids, message.force) else None
    text = fn.input != IMAGE
    if not text and not is_trainable(annotations):
        return RunResult(None, None)  # an Image function has no model before its samples
    s = d.settings
    how = plan(live, label_ids, ids, fresh, message.force, s.warm_min_samples,
               s.search_growth)
    lighter, found = _lighter_suspects(live, now, label_ids, s.suspects_min_reviewed)
    model = build_model(None, specs, features, annotations, fresh=fresh, text=text,
                        views=views, warm=how.warm,
                        weights=np.array([lighter.get(sid, 1.0) for sid in ids])
                        if lighter else None)
    took = time.perf_counter() - started

    version = d.functions.next_model_version(fn.id)
    meta = ModelMeta(version=version, label_ids=sorted(label_ids), zero_shot=model.zero_shot,
                     trained=dict(zip(ids, annotations, strict=True)), cv=_cv(model, ids),
                     search=None if model.zero_shot else record(how, model.C, model.n_folds,
                                                                len(ids)),
                     suspects_fixed=found.fixed)
    d.objects.put_artifact(fn.id, version, HEAD, model.head.to_bytes())
    d.objects.put_artifact(fn.id, version, META, meta.to_json())
    if ids:
        d.objects.put_artifact(fn.id, version, TRAINED_EMBEDDINGS,
                               embeddings_to_bytes(features.embeddings))
    if not model.zero_shot:
        quality = Quality.measure(model.head.classes, annotations, model.cv_predictions,
                                  model.cv_confidences, random, picked, ece=model.cv_ece)
        d.objects.put_artifact(fn.id, version, QUALITY, quality.to_json())
    decision = decide(model, meta, features, live, message.force)
    d.model_versions.put(ModelVersionItem(
        function_id=fn.id, version=version, created_at=time.time(),
        artifact_key=artifact_key(fn.id, version, ""),
        zero_shot=model.zero_shot, label_ids=meta.label_ids, sample_count=len(ids),
        cv_accuracy=model.cv_accuracy, cv_ece=model.cv_ece, n_folds=model.n_folds,
        train_seconds=round(took, 3), reason=message.reason, promoted=False,
        decision=decision.reason, search=_search_json(model, how),
        suspects=_suspects_json(found, lighter) if live is not None else None))
    if decision.promote:
        try:
            d.functions.set_live(fn.id, version, fn.live, [*fn.live_history, version])
        except Conflict:
            # Moved by hand meanwhile: the user's choice stands; this run is recorded only.
            return RunResult(version, Decision(False, "live moved by hand during training"))
        d.model_versions.mark_promoted(fn.id, version, decision.reason, True)
        promoted = d.serving.model(fn.id, version)
        record_thresholds(d, fn.id, promoted, live)
        rescore(d, fn.id, promoted, {lb.id: lb for lb in labels})
    return RunResult(version, decision)


def is_picked(origin: str | None, capture_reason: str | None) -> bool:
    """Picked for being hard (or wrong): captured by a strategy other than `random`, or sent
    as feedback from an app, which is mostly corrections."""
    if origin == Origin.FEEDBACK:
        return True
    return origin == Origin.CAPTURE and capture_reason != "random"


def _lighter_suspects(live: LiveModel | None, now: dict[str, SampleNow], label_ids: set[str],
                      min_reviewed: int) -> tuple[dict[str, float], Reviews]:
    """The live version's suspects no reviewer has reached, trained lighter when reviews
    show its queue is right (`labelloop.ml.suspect_weights`); and what reviewers did."""
    if live is None:
        return {}, Reviews()
    found_suspects = suspects(live.meta.trained, live.meta.cv)
    found = reviews(found_suspects, now, label_ids, live.meta.suspects_fixed, min_reviewed)
    return weights(found_suspects, now, found), found


def _suspects_json(found: Reviews, lighter: dict[str, float]) -> dict:
    share = found.share_fixed
    return {"fixed": found.fixed, "kept": found.kept,
            "shareFixed": None if share is None else round(share, 4),
            "lighter": len(lighter),
            "meanWeight": round(sum(lighter.values()) / len(lighter), 4) if lighter else None}


def _search_json(model: TrainedModel, how: Plan) -> dict | None:
    if model.zero_shot:
        return None
    return {"warm": model.warm, "why": how.reason, "C": model.C}


def _cv(model: TrainedModel, ids: list[str]) -> dict[str, list]:
    """Per sample: [cross-validated label, its confidence, the own label's probability (None:
    unknown)]."""
    if model.cv_predictions is None:
        return {}
    return {sid: [label, round(float(conf), 6), None if own != own else round(float(own), 6)]
            for sid, label, conf, own in zip(ids, model.cv_predictions, model.cv_confidences,
                                             model.cv_own, strict=True)}
