"""Routes. Each one: authenticate (middleware), validate (pydantic), call one use case,
present. Domain errors map to HTTP here, once."""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import parse_qs, urlencode

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from labelloop.api import batch, console, headers, review, thresholds
from labelloop.api import openapi as OA
from labelloop.api import presenters as P
from labelloop.api import quality_presenters as QP
from labelloop.api.schemas import (
    AnnotationIn,
    FunctionIn,
    FunctionPatch,
    InvokeIn,
    LabelIn,
    SampleIn,
    TrainIn,
)
from labelloop.auth import issue_token, verify_token
from labelloop.container import deps
from labelloop.errors import BadRequest, DomainError
from labelloop.ids import full
from labelloop.usecases import functions as F
from labelloop.usecases import invoke as I
from labelloop.usecases import labels as L
from labelloop.usecases import models as M
from labelloop.usecases import samples as S
from labelloop.usecases import similar as SIM

logger = Logger(service="labelloop")
app = APIGatewayHttpResolver(enable_validation=True)
PUBLIC = ("/connect/token", "/docs", "/openapi.json")
FN = "/v1/functions/<function_id>"
Version = Annotated[int, Path(ge=1, lt=10**8)]  # a model version


_json = P.respond


@app.exception_handler(DomainError)
def _domain_error(err: DomainError) -> Response:
    return _json(err.status, {"message": err.message, **err.extra}, err.headers or None)


@app.exception_handler(RequestValidationError)
def _invalid(err: RequestValidationError) -> Response:
    """400 with the offending field named first, e.g. `annotation.labelName: …`. powertools
    validates before any middleware runs, so the token is checked here first: without a
    valid one, a route's expected shape stays unknown (401)."""
    event = app.current_event
    if not _public(event.path):
        try:
            verify_token(event.headers.get("authorization"))
        except DomainError as denied:
            return _domain_error(denied)
    problems = []
    for e in err.errors():
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")]
        msg = e.get("msg", "invalid").removeprefix("Value error, ")
        problems.append(f"{'.'.join(loc) or 'body'}: {msg}")
    return _json(400, {"message": "; ".join(problems) or "invalid request"})


def _authenticate(app: APIGatewayHttpResolver, next_middleware) -> Response:
    event = app.current_event  # already through the input gate (api/gate.py)
    if not _public(event.path):
        app.append_context(client=verify_token(event.headers.get("authorization")))
    return next_middleware(app)


def _public(path: str) -> bool:
    return path in PUBLIC or console.is_console_path(path)


app.use(middlewares=[headers.secure, _authenticate])
app.include_router(review.router)
app.include_router(thresholds.router)
app.include_router(batch.router)
app.include_router(console.router)


def _client() -> str:
    return app.context["client"]


# -- auth ---------------------------------------------------------------------------------

@app.post("/connect/token")
def token():
    """OAuth2 client-credentials grant; the body is form-encoded, as Nyckel's."""
    event = app.current_event
    raw = event.decoded_body or ""
    form = {k: v[0] for k, v in parse_qs(raw).items()} if "=" in raw else {}
    if not form and raw.strip().startswith("{"):
        try:
            form = json.loads(raw)
        except ValueError as err:
            raise BadRequest("body: expected form-encoded client credentials") from err
    if form.get("grant_type", "client_credentials") != "client_credentials":
        raise BadRequest("grant_type: only client_credentials is supported")
    for field in ("client_id", "client_secret"):
        if not form.get(field) or not isinstance(form[field], str):
            raise BadRequest(f"{field}: required, a string")
    access, ttl = issue_token(form["client_id"], form["client_secret"])
    return _json(200, {"access_token": access, "token_type": "Bearer", "expires_in": ttl})


@app.get("/openapi.json")
def openapi():
    return Response(200, content_types.APPLICATION_JSON, OA.document(app))


@app.get("/docs", include_in_schema=False)
def docs():
    # The page asks for `?format=json` (a download link) and `?format=oauth2-redirect`.
    fmt = app.current_event.get_query_string_value("format")
    if fmt == "json":
        return openapi()
    return Response(200, "text/html", OA.docs_page(app, fmt == "oauth2-redirect"))


# -- functions ----------------------------------------------------------------------------

@app.post("/v1/functions")
def create_function(body: FunctionIn):
    fn = F.create_function(deps(), _client(), body.name, body.input, body.output,
                           body.storeInvokes, body.invokeRetentionDays, body.encoder)
    return _json(200, P.function_json(fn))


@app.get("/v1/functions")
def list_functions():
    return _json(200, [P.function_json(f) for f in F.list_functions(deps(), _client())])


@app.get(FN)
def get_function(function_id: str):
    return _json(200, P.function_json(F.owned_function(deps(), _client(), function_id)))


@app.put(FN)
def update_function(function_id: str, body: FunctionPatch):
    fn = F.update_function(deps(), _client(), function_id, name=body.name,
                           store_invokes=body.storeInvokes,
                           invoke_retention_days=body.invokeRetentionDays, encoder=body.encoder)
    return _json(200, P.function_json(fn))


@app.delete(FN)
def delete_function(function_id: str):
    F.delete_function(deps(), _client(), function_id)
    return _json(200, {})


@app.get("/v0.9/functions/<function_id>")
def function_v09(function_id: str):
    d = deps()
    fn = F.owned_function(d, _client(), function_id)
    zero_shot = d.serving.model(fn.id, fn.live).head.zero_shot if fn.live else None
    return _json(200, {**P.function_json(fn), "state": F.function_state(d, fn, zero_shot)})


@app.get("/v0.9/functions/<function_id>/metrics")
def function_metrics(function_id: str):
    return _json(200, F.metrics(deps(), _client(), function_id))


# -- labels -------------------------------------------------------------------------------

@app.post(FN + "/labels")
def create_label(function_id: str, body: LabelIn):
    lb = L.create_label(deps(), _client(), function_id, body.name, body.description,
                        body.metadata)
    return _json(200, P.label_json(lb))


@app.get(FN + "/labels")
def list_labels(function_id: str):
    return _json(200, [P.label_json(lb) for lb in L.list_labels(deps(), _client(), function_id)])


@app.get(FN + "/labels/<label_id>")
def get_label(function_id: str, label_id: str):
    return _json(200, P.label_json(L.get_label(deps(), _client(), function_id, label_id)))


@app.put(FN + "/labels/<label_id>")
def update_label(function_id: str, label_id: str, body: LabelIn):
    lb = L.update_label(deps(), _client(), function_id, label_id, body.name, body.description,
                        body.metadata)
    return _json(200, P.label_json(lb))


@app.delete(FN + "/labels/<label_id>")
def delete_label(function_id: str, label_id: str):
    L.delete_label(deps(), _client(), function_id, label_id)
    return _json(200, {})


# -- samples and annotations --------------------------------------------------------------

def _label_ref(body: AnnotationIn) -> S.LabelRef:
    return S.LabelRef(label_id=body.labelId, label_name=body.labelName)


@app.post(FN + "/samples")
def create_sample(function_id: str, body: SampleIn):
    sv = S.create_sample(deps(), _client(), function_id, body.data, body.externalId,
                         _label_ref(body.annotation) if body.annotation else None)
    return _json(200, P.sample_json(sv))


@app.get(FN + "/samples")
def list_samples(
    function_id: str,
    batchSize: Annotated[int, Query(ge=1, le=S.MAX_PAGE)] = 100,
    sortBy: Annotated[str, Query(pattern="^creation$")] = "creation",
    sortOrder: Annotated[str, Query(pattern="^(ascending|descending)$")] = "descending",
    after: Annotated[str | None, Query()] = None,
    externalId: Annotated[str | None, Query()] = None,
    origin: Annotated[str | None, Query(pattern="^(API|InvokeCapture|InvokeFeedback)$")] = None,
):
    views, next_after = S.list_samples(deps(), _client(), function_id, batchSize,
                                       sortOrder == "descending", after, externalId, origin)
    query = {"batchSize": batchSize, "sortBy": sortBy, "sortOrder": sortOrder,
             "externalId": externalId, "origin": origin}
    return _json(200, [P.sample_json(v) for v in views], _next_link(query, next_after))


def _next_link(query: dict, next_after: str | None) -> dict:
    """The `Link: <…>; rel="next"` header of a page that has a next one: root-relative, as
    the SDK joins it to the server's base URL."""
    if not next_after:
        return {}
    query = {k: v for k, v in query.items() if v is not None} | {
        "after": full(next_after, "sample")}
    return {"Link": f'<{app.current_event.path}?{urlencode(query)}>; rel="next"'}


@app.get(FN + "/samples/<sample_id>/similar")
def similar_samples(
    function_id: str,
    sample_id: str,
    batchSize: Annotated[int, Query(ge=1, le=SIM.MAX_SIMILAR)] = 20,
    inReviewQueue: Annotated[bool, Query()] = False,
):
    """The samples nearest to this one by embedding (cosine in `similarity`), nearest first;
    `inReviewQueue=true` keeps to items still to review."""
    found = SIM.similar_samples(deps(), _client(), function_id, sample_id, batchSize,
                                inReviewQueue)
    return _json(200, [P.sample_json(v) | {"similarity": round(sim, 6)} for v, sim in found])


@app.get(FN + "/samples/<sample_id>")
def get_sample(function_id: str, sample_id: str):
    return _json(200, P.sample_json(S.get_sample(deps(), _client(), function_id, sample_id)))


@app.delete(FN + "/samples/<sample_id>")
def delete_sample(function_id: str, sample_id: str):
    S.delete_sample(deps(), _client(), function_id, sample_id)
    return _json(200, {})


@app.put(FN + "/samples/<sample_id>/annotation")
def annotate(function_id: str, sample_id: str, body: AnnotationIn):
    sv = S.annotate(deps(), _client(), function_id, sample_id, _label_ref(body))
    return _json(200, P.sample_json(sv))


@app.delete(FN + "/samples/<sample_id>/annotation")
def clear_annotation(function_id: str, sample_id: str):
    S.clear_annotation(deps(), _client(), function_id, sample_id)
    return _json(200, {})


# -- invoke -------------------------------------------------------------------------------

@app.post(FN + "/invoke")
def invoke(
    function_id: str,
    body: InvokeIn,
    labelCount: Annotated[int | None, Query(ge=1)] = None,
    includeMetadata: Annotated[bool, Query()] = False,
    capture: Annotated[bool, Query()] = True,
    modelId: Annotated[str | None, Query()] = None,
    externalId: Annotated[str | None, Query()] = None,
):
    result = I.invoke(deps(), _client(), function_id, body.data, externalId, modelId, capture)
    return _json(200, P.invoke_json(result, labelCount, includeMetadata))


@app.get(FN + "/invokes")
def recent_invokes(
    function_id: str,
    batchSize: Annotated[int, Query(ge=1, le=S.MAX_PAGE)] = 100,
    after: Annotated[str | None, Query()] = None,
):
    """Stored invokes, newest first, within the function's invoke retention."""
    records, next_after = I.recent_invokes(deps(), _client(), function_id, batchSize, after)
    return _json(200, [P.invoke_record_json(r) for r in records],
                 _next_link({"batchSize": batchSize}, next_after))


# -- training and model versions ----------------------------------------------------------

@app.post(FN + "/train")
def train(function_id: str, body: TrainIn):
    M.train(deps(), _client(), function_id, body.force)
    return _json(200, {"queued": True, "force": body.force})


@app.get(FN + "/models")
def list_models(function_id: str):
    versions, live = M.list_versions(deps(), _client(), function_id)
    return _json(200, [P.model_version_json(v, live) for v in versions])


@app.get(FN + "/models/<version>")
def get_model(function_id: str, version: Version):
    """The version, with its cross-validated quality: per-label precision, recall and F1,
    the most confused label pairs, the confusion matrix."""
    d = deps()
    fn = F.owned_function(d, _client(), function_id)
    mv = M.get_version(d, _client(), function_id, version)
    quality, labels = M.version_quality(d, fn, version)
    return _json(200, {**P.model_version_json(mv, fn.live),
                       "quality": QP.quality_json(quality, labels),
                       "thresholds": QP.version_thresholds_json(mv.thresholds)})


@app.post(FN + "/models/<version>/promote")
def promote(function_id: str, version: Version):
    return _json(200, {"live": M.promote(deps(), _client(), function_id, version)})


@app.post(FN + "/models/rollback")
def rollback(function_id: str):
    return _json(200, {"live": M.rollback(deps(), _client(), function_id)})


# Last: the document describes every route registered above.
OA.describe(app)
