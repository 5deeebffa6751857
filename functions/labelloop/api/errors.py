"""Errors to HTTP, once for every route: a DomainError answers with its own status and
message, a request its route's models refuse with 400 naming the field. A router carries the
handlers: `include_router` hands them to the resolver."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from labelloop.api import auth
from labelloop.api import presenters as P
from labelloop.errors import DomainError

router = APIGatewayHttpRouter()


@router.exception_handler(DomainError)
def _domain_error(err: DomainError) -> Response:
    return P.respond(err.status, {"message": err.message, **err.extra}, err.headers or None)


@router.exception_handler(RequestValidationError)
def _invalid(err: RequestValidationError) -> Response:
    """400 with the offending field named first, e.g. `annotation.labelName: …`. powertools
    validates before any middleware runs, so the token is checked here first: without a
    valid one, a route's expected shape stays unknown (401)."""
    try:
        auth.caller(router.current_event)
    except DomainError as denied:
        return _domain_error(denied)
    problems = []
    for e in err.errors():
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")]
        msg = e.get("msg", "invalid").removeprefix("Value error, ")
        problems.append(f"{'.'.join(loc) or 'body'}: {msg}")
    return P.respond(400, {"message": "; ".join(problems) or "invalid request"})
