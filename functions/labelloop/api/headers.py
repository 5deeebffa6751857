"""Response headers every answer carries, and the Swagger page's content security policy."""

from __future__ import annotations

import base64
import hashlib
import re

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

DOCS = "/docs"
NONE = "'none'"
_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def secure(app: APIGatewayHttpResolver, next_middleware) -> Response:
    response = next_middleware(app)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if app.current_event.path == DOCS and isinstance(response.body, str):
        response.headers["Content-Security-Policy"] = docs_policy(response.body)
    return response


def docs_policy(html: str) -> str:
    """Powertools inlines Swagger UI and the document in the page: allow exactly those
    scripts (by hash), nothing from elsewhere. Swagger UI styles elements inline."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in _SCRIPT.findall(html))
    return (f"default-src 'none'; script-src {hashes or NONE}; "
            "style-src 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
