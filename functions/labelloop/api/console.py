"""The web console's static files, served by the API function itself: the console then shares
the API's origin (no CORS), and the local stack and the deployed HTTP API serve it alike.
The files are public; everything they show comes from the API with the user's own token."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from labelloop.container import deps
from labelloop.errors import NotFound

router = APIGatewayHttpRouter()
PREFIX = "/console"
FILES = Path(__file__).resolve().parent.parent / "console"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
         ".ico": "image/x-icon"}
# Nothing inline and nothing from elsewhere (but presigned pictures from the bucket): a stored
# sample's text can never run as script.
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:{}; "
          "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate every time: a redeploy must never leave an old app.js beside a new page.
    "Cache-Control": "no-cache",
}


def is_console_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


@cache
def _assets() -> dict[str, tuple[str | bytes, str, str]]:
    """Name → (content, type, etag), read once per container; only these names are served.
    Text stays text (bytes would go out base64-encoded)."""
    out = {}
    for p in sorted(FILES.iterdir()):
        if p.is_file() and p.suffix in TYPES:
            raw, kind = p.read_bytes(), TYPES[p.suffix]
            body = raw.decode() if kind.startswith("text/") else raw
            out[p.name] = (body, kind, f'"{hashlib.sha256(raw).hexdigest()[:16]}"')
    return out


def _picture_origin() -> str:
    """Where presigned picture links point (`ApiSettings.image_links`), or "" (the API's
    own route: 'self'). Signing is local, so asking for a link costs no request."""
    d = deps()
    if d.settings.image_links != "presigned":
        return ""
    url = urlsplit(d.objects.image_link("f", "0" * 64, 60))
    return f" {url.scheme}://{url.netloc}"


def _serve(name: str) -> Response:
    asset = _assets().get(name)
    if asset is None:
        raise NotFound(f"no console file {name!r}")
    body, content_type, etag = asset
    headers = {**HEADERS, "ETag": etag,
               "Content-Security-Policy": POLICY.format(_picture_origin())}
    if router.current_event.headers.get("if-none-match") == etag:
        return Response(304, headers=headers)
    return Response(200, content_type, body, headers=headers)


@router.get(PREFIX)
def console_index():
    """The page links its files by absolute path, so it works at /console and /console/."""
    return _serve("index.html")


# API Gateway refuses route keys that end in "/" and hands /console/ to the /console route
# with the slash still in the path; this route catches it (and keeps it out of the routes).
router.get(PREFIX + "/", include_in_schema=False)(console_index)


@router.get(PREFIX + "/<name>")
def console_file(name: str):
    return _serve(name)
