"""What the route modules share: the path a function's own routes hang under, and the link to
the next page of a paged list."""

from __future__ import annotations

from urllib.parse import urlencode

from aws_lambda_powertools.event_handler.api_gateway import Router

from labelloop.ids import full

FN = "/v1/functions/<function_id>"


def base_url(router: Router) -> str:
    """This API's own origin as the caller reached it (scheme and host), for absolute links."""
    event = router.current_event
    headers = event.headers or {}
    host = headers.get("host") or event.raw_event.get("requestContext", {}).get(
        "domainName", "localhost")
    return f"{headers.get('x-forwarded-proto', 'https')}://{host}"


def next_link(router: Router, query: dict, next_after: str | None) -> dict:
    """The `Link: <…>; rel="next"` header of a page that has a next one: root-relative, as
    the SDK joins it to the server's base URL."""
    if not next_after:
        return {}
    query = {k: v for k, v in query.items() if v is not None} | {
        "after": full(next_after, "sample")}
    return {"Link": f'<{router.current_event.path}?{urlencode(query)}>; rel="next"'}
