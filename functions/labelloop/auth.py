"""Client credentials and bearer tokens (OAuth2 client-credentials grant, as Nyckel's).

Client secrets are stored only as salted scrypt hashes: a generated secret has 256 bits and
needs no slow hash, but a user may choose a weak one (LABELLOOP_CLIENT_SECRET), and a copied
table must not give it away. A secret stored by an older version (unsalted SHA-256) still
verifies and is re-hashed on its next use. Failed token requests are counted per client id in
fixed windows; past the limit every request for that id gets 429 until the window ends, known
id or not (no oracle), right secret or not. Tokens are stateless, HMAC-SHA256 signed with a key
kept in Secrets Manager (a 0600 file on the local stack), so checking one costs no read:

    v1.<base64url {"sub": client id, "exp": epoch seconds}>.<base64url signature>
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import string
import time

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from labelloop.container import Deps, deps
from labelloop.domain import ClientItem
from labelloop.errors import BadRequest, TooManyRequests, Unauthorized

# scrypt at n=2^14, r=8: ~16 MiB and tens of milliseconds per check, once per token.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MAX_CLIENT_ID = 128


class Claims(BaseModel):
    """A token's payload, checked as data: a signed token with odd claims is still refused."""

    model_config = ConfigDict(extra="ignore")

    sub: str = Field(min_length=1, max_length=MAX_CLIENT_ID)
    exp: StrictInt


def new_credentials() -> tuple[str, str]:
    """A client id and a 256-bit secret. The secret never starts with "-": command lines take
    it as a separate argument (`--client-secret S`), and argparse reads "-…" as an option
    (one generated secret in 64 did)."""
    client_id = "client-" + "".join(secrets.choice(string.ascii_lowercase + string.digits)
                                    for _ in range(12))
    while (secret := secrets.token_urlsafe(32)).startswith("-"):
        pass
    return client_id, secret


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${_b64(salt)}${_b64(digest)}"


def secret_matches(secret: str, stored: str) -> bool:
    if not stored.startswith("scrypt$"):  # an unsalted SHA-256 from before
        return hmac.compare_digest(stored, hashlib.sha256(secret.encode()).hexdigest())
    _, n, r, p, salt, digest = stored.split("$")
    got = hashlib.scrypt(secret.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                         dklen=32)
    return hmac.compare_digest(got, _unb64(digest))


def register_client(client_id: str, client_secret: str, d: Deps | None = None) -> None:
    """Create or update a client (idempotent)."""
    d = d or deps()
    d.clients.put(ClientItem(id=client_id, secret_hash=hash_secret(client_secret),
                             created_at=time.time()))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(client_id: str, client_secret: str, d: Deps | None = None,
                now: float | None = None) -> tuple[str, int]:
    d = d or deps()
    now = time.time() if now is None else now
    if len(client_id) > MAX_CLIENT_ID:
        raise BadRequest(f"client_id: at most {MAX_CLIENT_ID} characters")
    s = d.settings
    window = int(now // s.token_failure_window_seconds) * s.token_failure_window_seconds
    retry_after = int(window + s.token_failure_window_seconds - now) + 1
    if d.clients.token_failures(client_id, window) >= s.token_failure_limit:
        raise TooManyRequests(f"client_id: too many failed attempts; retry in {retry_after} s",
                              retry_after)
    client = d.clients.get(client_id)
    if client is None or not secret_matches(client_secret, client.secret_hash):
        d.clients.count_token_failure(client_id, window,
                                      window + 2 * s.token_failure_window_seconds)
        raise Unauthorized("invalid client_id or client_secret")
    if not client.secret_hash.startswith("scrypt$"):
        register_client(client_id, client_secret, d)
    ttl = s.token_ttl_seconds
    payload = _b64(json.dumps({"sub": client_id, "exp": int(now) + ttl}).encode())
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
        claims = Claims.model_validate_json(_unb64(payload))
    except (ValueError, ValidationError) as err:
        raise Unauthorized("invalid bearer token") from err
    if claims.exp <= time.time():
        raise Unauthorized("expired bearer token")
    return claims.sub
