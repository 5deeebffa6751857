"""Routes of a function's samples: create, list (paged), read, delete, the samples nearest to
one, and its annotation (set, clear)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from labelloop.api import presenters as P
from labelloop.api.auth import client
from labelloop.api.routing import FN, image_links, next_link
from labelloop.api.schemas import AnnotationIn, SampleIn, SamplesIn
from labelloop.container import deps
from labelloop.domain import Origin
from labelloop.usecases import samples as S
from labelloop.usecases import similar as SIM

router = APIGatewayHttpRouter()
SAMPLE = FN + "/samples/<sample_id>"


def _label_ref(body: AnnotationIn) -> S.LabelRef:
    return S.LabelRef(label_id=body.labelId, label_name=body.labelName)


@router.post(FN + "/samples")
def create_sample(function_id: str, body: SampleIn):
    sv = S.create_sample(deps(), client(router), function_id, body.data, body.externalId,
                         _label_ref(body.annotation) if body.annotation else None)
    return P.respond(200, P.sample_json(sv, image_links(router)))


@router.post(FN + "/samples/batch")
def create_samples(function_id: str, body: SamplesIn,
                   train: Annotated[bool, Query()] = True):
    """Up to 1,000 samples in one request; per item, in order, the sample or its error (the
    status it would have had alone): one bad item does not stop the others. `train=false`:
    no training request (an import in several requests asks once, at its end)."""
    results = S.create_samples(deps(), client(router), function_id, [
        S.NewSample(s.data, s.externalId, _label_ref(s.annotation) if s.annotation else None)
        for s in body.samples], train)
    link = image_links(router)
    return P.respond(200, {"results": [
        {"status": 200, "sample": P.sample_json(r, link)} if isinstance(r, S.SampleView) else
        {"status": r.status, "message": r.message, **r.extra} for r in results]})


@router.get(FN + "/samples")
def list_samples(
    function_id: str,
    batchSize: Annotated[int, Query(ge=1, le=S.MAX_PAGE)] = 100,
    sortBy: Annotated[str, Query(pattern="^creation$")] = "creation",
    sortOrder: Annotated[str, Query(pattern="^(ascending|descending)$")] = "descending",
    after: Annotated[str | None, Query()] = None,
    externalId: Annotated[str | None, Query()] = None,
    origin: Annotated[str | None, Query(pattern=f"^({'|'.join(Origin)})$")] = None,
):
    views, next_after = S.list_samples(deps(), client(router), function_id, batchSize,
                                       sortOrder == "descending", after, externalId, origin)
    query = {"batchSize": batchSize, "sortBy": sortBy, "sortOrder": sortOrder,
             "externalId": externalId, "origin": origin}
    link = image_links(router)
    return P.respond(200, [P.sample_json(v, link) for v in views],
                     next_link(router, query, next_after))


@router.get(SAMPLE + "/similar")
def similar_samples(
    function_id: str,
    sample_id: str,
    batchSize: Annotated[int, Query(ge=1, le=SIM.MAX_SIMILAR)] = 20,
    inReviewQueue: Annotated[bool, Query()] = False,
):
    """The samples nearest to this one by embedding (cosine in `similarity`), nearest first;
    `inReviewQueue=true` keeps to items still to review."""
    found = SIM.similar_samples(deps(), client(router), function_id, sample_id, batchSize,
                                inReviewQueue)
    link = image_links(router)
    return P.respond(200, [P.sample_json(v, link) | {"similarity": round(sim, 6)}
                           for v, sim in found])


@router.get(SAMPLE)
def get_sample(function_id: str, sample_id: str):
    return P.respond(200, P.sample_json(S.get_sample(deps(), client(router), function_id,
                                                     sample_id), image_links(router)))


@router.delete(SAMPLE)
def delete_sample(function_id: str, sample_id: str):
    S.delete_sample(deps(), client(router), function_id, sample_id)
    return P.respond(200, {})


@router.put(SAMPLE + "/annotation")
def annotate(function_id: str, sample_id: str, body: AnnotationIn):
    sv = S.annotate(deps(), client(router), function_id, sample_id, _label_ref(body))
    return P.respond(200, P.sample_json(sv, image_links(router)))


@router.get(FN + "/images/<digest>")
def get_image(function_id: str, digest: str):
    """An Image function's picture, as its samples' and invokes' `data` link to it."""
    body, content_type = S.get_image(deps(), client(router), function_id, digest)
    return Response(200, content_type, body, headers={
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=31536000, "
        "immutable"})  # named by its content: it never changes


@router.delete(SAMPLE + "/annotation")
def clear_annotation(function_id: str, sample_id: str):
    S.clear_annotation(deps(), client(router), function_id, sample_id)
    return P.respond(200, {})
