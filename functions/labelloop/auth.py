"""Client credentials and bearer tokens (OAuth2 client-credentials grant, as Nyckel's).

Client secrets are 256-bit random strings stored only as SHA-256 hashes: for secrets of that
entropy a slow hash adds nothing. Tokens are stateless, HMAC-SHA256 signed with a key kept in
Secrets Manager, so checking one costs no database read:

    v1.<base64url {"sub": client id, "exp": epoch seconds}>.<base64url signature>
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from labelloop.container import Deps, deps
from labelloop.domain import ClientItem
from labelloop.errors import Unauthorized


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def register_client(client_id: str, client_secret: str, d: Deps | None = None) -> None:
    """Create or update a client (idempotent)."""
    d = d or deps()
    d.store.put_client(ClientItem(id=client_id, secret_hash=hash_secret(client_secret),
                                  created_at=time.time()))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(client_id: str, client_secret: str, d: Deps | None = None) -> tuple[str, int]:
    d = d or deps()
    client = d.store.get_client(client_id) if client_id else None
    if client is None or not hmac.compare_digest(client.secret_hash, hash_secret(client_secret)):
        raise Unauthorized("invalid client_id or client_secret")
    ttl = d.settings.token_ttl_seconds
    payload = _b64(json.dumps({"sub": client_id, "exp": int(time.time()) + ttl}).encode())
    sig = hmac.new(d.signing_key, f"v1.{payload}".encode(), hashlib.sha256).digest()
    return f"v1.{payload}.{_b64(sig)}", ttl


def verify_token(authorization: str | None, d: Deps | None = None) -> str:
    """The client id of a valid `Authorization: Bearer …` header; Unauthorized otherwise."""
    d = d or deps()
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token (get one from POST /connect/token)")
    try:
        version, payload, sig = token.strip().split(".")
        expected = hmac.new(d.signing_key, f"{version}.{payload}".encode(),
                            hashlib.sha256).digest()
        if version != "v1" or not hmac.compare_digest(expected, _unb64(sig)):
            raise ValueError("bad signature")
        claims = json.loads(_unb64(payload))
    except ValueError as err:
        raise Unauthorized("invalid bearer token") from err
    if int(claims.get("exp", 0)) <= time.time():
        raise Unauthorized("expired bearer token")
    return str(claims["sub"])
