"""Routes of the review side: the capture buffer as a queue, bulk annotation, dismissal, the
suspected-mislabel queue (`?strategy=suspect`) and keeping a suspect's label, the capture
policy, live accuracy and drift. Captured items are also ordinary samples
(`GET .../samples?origin=InvokeCapture`), annotated with the ordinary `PUT .../annotation`."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import Field

from labelloop.api import presenters as P
from labelloop.api.auth import client
from labelloop.api.routing import FN, image_links
from labelloop.api.schemas import AnnotationIn, Body
from labelloop.container import deps
from labelloop.errors import DomainError
from labelloop.usecases import capture_policy as CP
from labelloop.usecases import drift as D
from labelloop.usecases import functions as F
from labelloop.usecases import live_accuracy as LA
from labelloop.usecases import review as R
from labelloop.usecases import samples as S
from labelloop.usecases.suspects import SUSPECT, keep, suspect_queue

router = APIGatewayHttpRouter()
MAX_BULK = 500


class ReviewAnnotation(AnnotationIn):
    sampleId: str


class BulkAnnotationsIn(Body):
    annotations: list[ReviewAnnotation] = Field(min_length=1, max_length=MAX_BULK)


class CapturePolicyIn(Body):
    # Per strategy, the settings to change, e.g. {"uncertainty": {"quota": 50}}.
    strategies: dict[str, dict[str, Any]] = Field(default_factory=dict)
    nearDuplicateCosine: float | None = None
    spreadCosine: float | None = None
    labelCap: float | None = None
    driftRandomFactor: float | None = None


@router.get(FN + "/review")
def review_queue(
    function_id: str,
    strategy: Annotated[str | None, Query()] = None,
    batchSize: Annotated[int, Query(ge=1, le=S.MAX_PAGE)] = 50,
):
    d = deps()
    if strategy == SUSPECT:
        return P.respond(200, [P.suspect_json(v, image_links(router)) for v in
                               suspect_queue(d, client(router), function_id, batchSize)])
    items = R.review_queue(d, client(router), function_id, strategy, batchSize)
    view = d.serving.view(items[0].function_id) if items else None
    link = image_links(router)
    return P.respond(200, [P.sample_json(S.SampleView(i, view.sample_prediction(i)), link)
                           for i in items])


@router.post(FN + "/review/annotations")
def annotate_many(function_id: str, body: BulkAnnotationsIn):
    """Each item on its own: one bad item does not undo the others (its error is reported).
    A function the caller does not own is a 404 for the whole request, as on every route."""
    F.owned_function(deps(), client(router), function_id)
    results = []
    for a in body.annotations:
        try:
            sv = S.annotate(deps(), client(router), function_id, a.sampleId,
                            S.LabelRef(label_id=a.labelId, label_name=a.labelName))
            results.append({"sampleId": a.sampleId, "status": 200,
                            "sample": P.sample_json(sv, image_links(router))})
        except DomainError as err:
            results.append({"sampleId": a.sampleId, "status": err.status,
                            "message": err.message})
    return P.respond(200, {"results": results})


@router.post(FN + "/review/<sample_id>/dismiss")
def dismiss(function_id: str, sample_id: str):
    R.dismiss(deps(), client(router), function_id, sample_id)
    return P.respond(200, {})


@router.post(FN + "/review/<sample_id>/keep")
def keep_label(function_id: str, sample_id: str):
    """A suspected mislabel's label is right: it leaves the suspect queue."""
    sample = keep(deps(), client(router), function_id, sample_id)
    return P.respond(200, P.sample_json(S.SampleView(sample, None), image_links(router)))


@router.get(FN + "/capture")
def get_capture(function_id: str):
    return P.respond(200, P.capture_policy_json(*CP.get_policy(deps(), client(router),
                                                               function_id)))


@router.put(FN + "/capture")
def set_capture(function_id: str, body: CapturePolicyIn):
    d = deps()
    CP.set_policy(d, client(router), function_id, body.strategies,
                  **{k: getattr(body, camel) for k, camel in CP.SCALARS.items()})
    return P.respond(200, P.capture_policy_json(*CP.get_policy(d, client(router), function_id)))


@router.get(FN + "/drift")
def drift(function_id: str):
    d = deps()
    return P.respond(200, P.drift_json(D.report(d, client(router), function_id), d.settings))


@router.get(FN + "/live-accuracy")
def live_accuracy(function_id: str):
    return P.respond(200, P.live_accuracy_json(LA.live_accuracy(deps(), client(router),
                                                                function_id)))
