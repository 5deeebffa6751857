"""Use case: invoke. The hot path: one cached view, one encoder run, one head, one write.

The invoke record (full data, model version, prediction, expiry) is written after the response
has gone out (`afterwork`), so storing adds no latency and the record can hold the prediction.
The capture decision runs there too; it writes only when a strategy takes the invoke. So does
the drift count (`usecases.drift`), which writes once per flush, not per invoke. A container
may hold several invokes' work to do it at once (`labelloop.held_invokes`, off by default).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from labelloop.afterwork import alongside, later
from labelloop.container import Deps
from labelloop.domain import InvokeItem
from labelloop.errors import BadRequest, NotFound, NotReady
from labelloop.ids import bare, new_bare
from labelloop.ml.build import MIN_LABELS_TO_TRAIN, MIN_SAMPLES_PER_LABEL
from labelloop.serving import LiveModel, Prediction, View, predict
from labelloop.thresholds import Decisions
from labelloop.usecases import drift, inputs
from labelloop.usecases.capture import Offer, capture_offer
from labelloop.usecases.common import function_not_found, owned_function
from labelloop.usecases.held import HeldInvoke
from labelloop.usecases.samples import MAX_EXTERNAL_ID, MAX_PAGE


@dataclass(frozen=True)
class InvokeResult:
    prediction: Prediction
    model_version: int
    sample_id: str  # bare
    view: View
    decisions: Decisions | None = None  # the function's policy, solved for model_version
    cache_hit: bool | None = None  # the input's features from the invoke cache (None: not asked)


def _model(d: Deps, view: View, model_id: str | None) -> LiveModel:
    if model_id:
        digits = model_id.removeprefix("model_").removeprefix("v")
        if not (0 < len(digits) <= 8 and digits.isascii() and digits.isdigit()
                and int(digits) > 0):
            raise BadRequest(f"modelId: {model_id!r} is not a model version (1, 2, …)")
        try:
            return d.serving.model(view.function.id, int(digits))
        except NotFound as err:
            raise NotFound(f"modelId: model version {int(digits)} not found") from err
    if view.model is None:
        if view.function.input == inputs.IMAGE:
            raise NotReady(f"this function has no model yet: an Image function needs "
                           f"{MIN_SAMPLES_PER_LABEL} annotated samples of each of "
                           f"{MIN_LABELS_TO_TRAIN} labels (no model can guess from label names "
                           "alone); training starts by itself a few seconds after")
        raise NotReady("this function has no model yet: add labels (training starts by itself "
                       "a few seconds later) and retry")
    return view.model


def invoke(d: Deps, client: str, function_id: str, data, external_id: str | None = None,
           model_id: str | None = None, capture: bool = True, cached: bool = True
           ) -> InvokeResult:
    """`cached`: the input's features may come from the container's invoke cache (an input
    seen before skips the encoder; the live model still predicts)."""
    try:
        view = d.serving.live_view(bare(function_id, "function"))
    except NotFound:
        view = None
    if view is None or view.function.client != client:
        raise function_not_found(function_id)
    fid = view.function.id
    if external_id is not None and len(external_id) > MAX_EXTERNAL_ID:
        raise BadRequest(f"externalId: at most {MAX_EXTERNAL_ID} characters")
    model = _model(d, view, model_id)
    inp = inputs.read(d, view.function, data, cached=cached)
    text, features = inp.data, inp.features
    predictions = predict(model, view.labels, features)
    if not predictions:
        raise NotReady("the model's labels were all deleted; a retrain is queued")
    best, sid = predictions[0], new_bare()
    record = offer = embedding = None
    if view.function.store_invokes:
        if inp.image is not None:
            later(inputs.keep, d, view.function, inp)  # before the record that names it
        record = InvokeItem.answered(fid, sid, text, external_id, model.version, best,
                                     view.function.invoke_retention_days, time.time())
        # A function that stores no invokes captures none either (it keeps no invoke text).
        # Invokes of a version chosen by modelId are experiments, not traffic: not captured.
        if capture and model is view.model:
            offer = Offer(best, features, sid, text, external_id)
    if model is view.model and not model.head.zero_shot:
        # Traffic of the live version, whatever is stored or captured (counts hold no text).
        embedding = features.embeddings[0]
    if d.settings.held_invokes > 1:
        later(d.held_invokes.add, HeldInvoke(view, model, best, record, offer, embedding),
              time.time())
    else:
        if record is not None:
            # Beside the capture decision: a write to another table that capture does not
            # read.
            alongside(d.invokes.put, record)
        if offer is not None:
            later(capture_offer, d, view, model, offer)
        if embedding is not None:
            later(drift.observe, d, view, model, best, embedding)
    decisions = (view.decisions if model is view.model else
                 d.serving.decisions(fid, view.function.thresholds, model, view.labels))
    return InvokeResult(best, model.version, sid, view, decisions, inp.cache_hit)


def recent_invokes(d: Deps, client: str, function_id: str, limit: int, after: str | None
                   ) -> tuple[list[InvokeItem], str | None]:
    """Stored invokes, newest first (within the retention): what the console's confidence
    histogram is drawn from, and where feedback ids can be looked up."""
    fn = owned_function(d, client, function_id)
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"batchSize: between 1 and {MAX_PAGE}")
    return d.invokes.page(fn.id, limit, bare(after, "sample", "after") if after else None,
                          time.time())
