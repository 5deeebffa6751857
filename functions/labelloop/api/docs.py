"""The OpenAPI document and its Swagger page, both public. The document is built (by
api/openapi.py) from the resolver this router is included in, so it covers every route."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from labelloop.api import openapi as OA

router = APIGatewayHttpRouter()


@router.get("/openapi.json")
def openapi():
    return Response(200, content_types.APPLICATION_JSON, OA.document(router.api_resolver))


@router.get("/docs", include_in_schema=False)
def docs():
    # The page asks for `?format=json` (a download link) and `?format=oauth2-redirect`.
    fmt = router.current_event.get_query_string_value("format")
    if fmt == "json":
        return openapi()
    return Response(200, "text/html", OA.docs_page(router.api_resolver, fmt == "oauth2-redirect"))
