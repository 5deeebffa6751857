"""The OpenAPI document, truthful: every route's success schema, each error status it can
answer (with the one error schema), the bearer token it needs. The routes answer with
ready-made `Response` objects, so powertools cannot infer any of it: the table below says it,
and `describe` hands it to powertools' own route fields (`responses`, `security`) once every
route is registered. tests/test_fuzz.py holds the answers to it; a route missing here fails
there."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.models import (
    OAuth2,
    OAuthFlowClientCredentials,
    OAuthFlows,
)
from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html
from aws_lambda_powertools.event_handler.openapi.swagger_ui.oauth2 import (
    generate_oauth2_redirect_html,
)

from labelloop import __version__
from labelloop.api import responses as R
from labelloop.api.routing import FN

TITLE = "labelloop API"
VERSION = __version__  # the package's
SCHEME = "oauth2"
SECURITY_SCHEMES = {SCHEME: OAuth2(
    description="A bearer token from `POST /connect/token` (client credentials, form-encoded)",
    flows=OAuthFlows(clientCredentials=OAuthFlowClientCredentials(tokenUrl="/connect/token")))}
BEARER = [{SCHEME: []}]
JOBS = FN + "/batch-invokes"

# Statuses of every route: the input gate's 400 (undecodable or too deep a body, a malformed
# parameter) and 413 (body over the limit).
GATE = (400, 413)
_REASONS = {400: "Invalid request (the message names the field)",
            401: "Missing, invalid or expired bearer token",
            404: "No such function (or item in it) for this client",
            409: "Conflicts with the current state (duplicate, no model yet, training)",
            413: "Request body too large",
            429: "Too many failed attempts for this client id (see Retry-After)"}

# (method, path) → (success model, error statuses beyond the gate's and 401).
ROUTES: dict[tuple[str, str], tuple[Any, tuple[int, ...]]] = {
    ("POST", "/connect/token"): (R.Token, (401, 429)),
    ("GET", "/openapi.json"): (dict[str, Any], ()),
    ("GET", "/console"): ("text/html", ()),
    ("GET", "/console/<name>"): ("*/*", (404,)),
    ("POST", "/v1/functions"): (R.Function, ()),
    ("GET", "/v1/functions"): (list[R.Function], ()),
    ("GET", FN): (R.Function, (404,)),
    ("PUT", FN): (R.Function, (404,)),
    ("DELETE", FN): (R.Empty, (404,)),
    ("GET", "/v0.9/functions/<function_id>"): (R.FunctionV09, (404,)),
    ("GET", "/v0.9/functions/<function_id>/metrics"): (R.FunctionMetrics, (404,)),
    ("POST", FN + "/labels"): (R.Label, (404, 409)),
    ("GET", FN + "/labels"): (list[R.Label], (404,)),
    ("GET", FN + "/labels/<label_id>"): (R.Label, (404,)),
    ("PUT", FN + "/labels/<label_id>"): (R.Label, (404, 409)),
    ("DELETE", FN + "/labels/<label_id>"): (R.Empty, (404,)),
    ("POST", FN + "/samples"): (R.Sample, (404, 409)),
    ("POST", FN + "/samples/batch"): (R.ImportResults, (404,)),
    ("GET", FN + "/samples"): (list[R.Sample], (404,)),
    ("GET", FN + "/samples/<sample_id>/similar"): (list[R.SimilarSample], (404, 409)),
    ("GET", FN + "/samples/<sample_id>"): (R.Sample, (404,)),
    ("GET", FN + "/images/<digest>"): ("image/*", (404,)),
    ("DELETE", FN + "/samples/<sample_id>"): (R.Empty, (404,)),
    ("PUT", FN + "/samples/<sample_id>/annotation"): (R.Sample, (404, 409)),
    ("DELETE", FN + "/samples/<sample_id>/annotation"): (R.Empty, (404,)),
    ("POST", FN + "/invoke"): (R.InvokeResult, (404, 409)),
    ("GET", FN + "/invokes"): (list[R.InvokeRecord], (404,)),
    ("POST", FN + "/train"): (R.TrainQueued, (404, 409)),
    ("GET", FN + "/models"): (list[R.ModelVersion], (404,)),
    ("GET", FN + "/models/<version>"): (R.ModelVersionDetail, (404,)),
    ("POST", FN + "/models/<version>/promote"): (R.Live, (404, 409)),
    ("POST", FN + "/models/rollback"): (R.Live, (404, 409)),
    ("GET", FN + "/review"): (list[R.Sample], (404,)),
    ("POST", FN + "/review/annotations"): (R.BulkResults, (404,)),
    ("POST", FN + "/review/<sample_id>/dismiss"): (R.Empty, (404, 409)),
    ("POST", FN + "/review/<sample_id>/keep"): (R.Sample, (404, 409)),
    ("GET", FN + "/drift"): (R.Drift, (404,)),
    ("GET", FN + "/capture"): (R.CapturePolicy, (404,)),
    ("PUT", FN + "/capture"): (R.CapturePolicy, (404,)),
    ("GET", FN + "/live-accuracy"): (list[R.LiveAccuracy], (404,)),
    ("GET", FN + "/thresholds"): (R.Thresholds, (404, 409)),
    ("PUT", FN + "/thresholds"): (R.Thresholds, (404, 409)),
    ("DELETE", FN + "/thresholds"): (R.Empty, (404,)),
    ("POST", JOBS): (R.BatchJob, (404, 409)),
    ("GET", JOBS + "/<job_id>"): (R.BatchJob, (404,)),
    ("GET", JOBS + "/<job_id>/results"): (R.BatchResults, (404, 409)),
}
PUBLIC = {("POST", "/connect/token"), ("GET", "/openapi.json"), ("GET", "/console"),
          ("GET", "/console/<name>")}


def label(key: tuple[str, str]) -> str:
    """`GET /v1/functions/{function_id}`: a route as the document names its operation."""
    method, path = key
    return method + " " + re.sub(r"<(\w+)>", r"{\1}", path)


def _error(status: int) -> dict:
    return {"description": _REASONS[status],
            "content": {"application/json": {"model": R.Error}}}


def _responses(key: tuple[str, str]) -> dict:
    success, errors = ROUTES[key]
    if isinstance(success, str):  # a console file: its own type, revalidated by ETag
        out: dict = {200: {"description": "The file", "content": {success: {}}},
                     304: {"description": "Not modified (If-None-Match)"}}
    else:
        out = {200: {"description": "OK",
                     "content": {"application/json": {"model": success}}}}
    statuses = set(GATE) | set(errors) | (set() if key in PUBLIC else {401})
    out.update({s: _error(s) for s in sorted(statuses)})
    return out


def describe(app: APIGatewayHttpResolver) -> None:
    """Give every documented route its responses and security; call once all routes are
    registered and before the first request (powertools builds a route's models lazily)."""
    for route in app._static_routes + app._dynamic_routes:
        key = (route.method, route.path)
        if not route.include_in_schema or key not in ROUTES:
            continue  # tests/test_fuzz.py fails on a documented route missing from ROUTES
        route.responses = _responses(key)
        route.security = None if key in PUBLIC else BEARER
        route._dependant = route._body_field = None  # rebuilt with the response models


@cache
def document(app: APIGatewayHttpResolver) -> str:
    """The document `GET /openapi.json` serves. Two things powertools cannot be told: a
    refused request is a 400 here, never its 422 (so that goes), and the token route reads
    its form body itself (so that is declared)."""
    doc = json.loads(app.get_openapi_json_schema(
        title=TITLE, version=VERSION, security_schemes=SECURITY_SCHEMES))
    for path in doc["paths"].values():
        for operation in path.values():
            operation["responses"].pop("422", None)
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        doc.get("components", {}).get("schemas", {}).pop(unused, None)
    doc["paths"]["/connect/token"]["post"]["requestBody"] = {"required": True, "content": {
        "application/x-www-form-urlencoded": {"schema": {
            "type": "object", "required": ["client_id", "client_secret"],
            "properties": {"grant_type": {"type": "string", "enum": ["client_credentials"]},
                           "client_id": {"type": "string"},
                           "client_secret": {"type": "string"}}}}}}
    return json.dumps(doc)


@cache
def docs_page(app: APIGatewayHttpResolver, oauth2_redirect: bool = False) -> str:
    """Swagger UI over `document` (powertools' own /docs page renders the document it builds
    itself, 422s and all). The bundle is the one powertools ships, inlined: no CDN."""
    if oauth2_redirect:
        return generate_oauth2_redirect_html()
    ui = Path(generate_swagger_html.__code__.co_filename).parent
    return generate_swagger_html(
        document(app).replace("</", "<\\/"),  # no `</script>` inside the inlined JSON
        (ui / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (ui / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "", None, False)
