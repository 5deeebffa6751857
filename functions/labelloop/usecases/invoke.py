"""Use case: invoke. The hot path: one cached view, one encoder run, one head, one write.

The invoke record (full data, model version, expiry) is written by a worker thread while the
encoder runs (onnxruntime releases the GIL), so storing adds no latency. The prediction is not
part of that write, because it is not known until the encoder is done; it is a pure function of
(data, model version) — static quantisation makes embeddings batch-invariant and versions are
immutable — so whoever reads a record recomputes it exactly.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from labelloop.container import Deps
from labelloop.domain import InvokeItem
from labelloop.errors import BadRequest, NotFound, NotReady
from labelloop.ids import bare, new_bare
from labelloop.serving import LiveModel, Prediction, View, predict
from labelloop.usecases.samples import MAX_EXTERNAL_ID, _text


@dataclass(frozen=True)
class InvokeResult:
    prediction: Prediction
    model_version: int
    sample_id: str  # bare
    view: View


def _model(d: Deps, view: View, model_id: str | None) -> LiveModel:
    if model_id:
        try:
            version = int(model_id.removeprefix("model_").removeprefix("v"))
        except ValueError as err:
            raise BadRequest(f"modelId: {model_id!r} is not a model version") from err
        return d.serving.model(view.function.id, version)  # NotFound if no such version
    if view.model is None:
        raise NotReady("this function has no model yet: add labels (training starts by itself "
                       "a few seconds later) and retry")
    return view.model


def invoke(d: Deps, client: str, function_id: str, data, external_id: str | None = None,
           model_id: str | None = None) -> InvokeResult:
    fid = bare(function_id, "function")
    view = d.serving.view(fid)
    if view.function.client != client:
        raise NotFound(f"function {function_id!r} not found")
    text = _text(data)
    if external_id is not None and len(external_id) > MAX_EXTERNAL_ID:
        raise BadRequest(f"externalId: at most {MAX_EXTERNAL_ID} characters")
    model = _model(d, view, model_id)
    sid = new_bare()
    pending = None
    if view.function.store_invokes:
        now = time.time()
        record = InvokeItem(
            function_id=fid, sample_id=sid, data=text, external_id=external_id,
            model_version=model.version, created_at=now,
            expires_at=math.ceil(now + 86400 * view.function.invoke_retention_days))
        pending = d.writer.submit(d.store.put_invoke, record)
    features = d.encoder.featurize_one(text)
    predictions = predict(model, view.labels, features)
    if pending is not None:
        pending.result()  # done by now; a failed write fails the invoke rather than vanish
    if not predictions:
        raise NotReady("the model's labels were all deleted; a retrain is queued")
    return InvokeResult(predictions[0], model.version, sid, view)
