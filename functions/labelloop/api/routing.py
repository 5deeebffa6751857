"""What the route modules share: the path a function's own routes hang under, the links to a
function's pictures, and the link to the next page of a paged list."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from aws_lambda_powertools.event_handler.api_gateway import Router

from labelloop.container import deps
from labelloop.ids import full

FN = "/v1/functions/<function_id>"


def base_url(router: Router) -> str:
    """This API's own origin as the caller reached it (scheme and host), for absolute links."""
    event = router.current_event
    headers = event.headers or {}
    host = headers.get("host") or event.raw_event.get("requestContext", {}).get(
        "domainName", "localhost")
    return f"{headers.get('x-forwarded-proto', 'https')}://{host}"


# (function id, image digest) -> the URL a sample's or invoke's `data` gives for the picture.
ImageLink = Callable[[str, str], str]


def image_links(router: Router) -> ImageLink:
    """How this answer links pictures (`ApiSettings.image_links`): presigned S3 URLs, or
    this API's own image route at the origin the caller reached."""
    d = deps()
    if d.settings.image_links == "presigned":
        seconds = d.settings.image_link_seconds
        return lambda fid, digest: d.objects.image_link(fid, digest, seconds)
    origin = base_url(router)
    return lambda fid, digest: f"{origin}/v1/functions/{full(fid, 'function')}/images/{digest}"


def next_link(router: Router, query: dict, next_after: str | None) -> dict:
    """The `Link: <…>; rel="next"` header of a page that has a next one: root-relative, as
    the SDK joins it to the server's base URL."""
    if not next_after:
        return {}
    query = {k: v for k, v in query.items() if v is not None} | {
        "after": full(next_after, "sample")}
    return {"Link": f'<{router.current_event.path}?{urlencode(query)}>; rel="next"'}
