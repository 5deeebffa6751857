"""The token route: client credentials in, a bearer token out (api/auth.py checks it)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from labelloop.api import presenters as P
from labelloop.auth import issue_token
from labelloop.errors import BadRequest

router = APIGatewayHttpRouter()


@router.post("/connect/token")
def token():
    """OAuth2 client-credentials grant; the body is form-encoded, as Nyckel's."""
    event = router.current_event
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
    return P.respond(200, {"access_token": access, "token_type": "Bearer", "expires_in": ttl})
