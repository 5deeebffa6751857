"""Who is calling: every route but the public ones needs a bearer token. The middleware puts
the token's client id in the resolver's context, where a route reads it with `client(router)`
(an included router's `context` is the resolver's)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from labelloop.api import console
from labelloop.auth import verify_token

PUBLIC = ("/connect/token", "/docs", "/openapi.json")


def is_public(path: str) -> bool:
    return path in PUBLIC or console.is_console_path(path)


def caller(event: BaseProxyEvent) -> str | None:
    """The client id of the request's bearer token; None on a public path. Unauthorized (401)
    when a token is needed and missing, invalid or expired."""
    if is_public(event.path):
        return None
    return verify_token(event.headers.get("authorization"))


def authenticate(app: APIGatewayHttpResolver, next_middleware) -> Response:
    client_id = caller(app.current_event)  # already through the input gate (api/gate.py)
    if client_id is not None:
        app.append_context(client=client_id)
    return next_middleware(app)


def client(router: Router) -> str:
    """The client id `authenticate` found for this request."""
    return router.context["client"]
