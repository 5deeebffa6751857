"""Client secrets, tokens and the limit on failed token requests (the real handler on moto)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from labelloop import auth
from labelloop.container import deps
from labelloop.domain import ClientItem
from labelloop.errors import TooManyRequests, Unauthorized


def _grant(api, client_id: str, secret: str):
    return api.call("POST", "/connect/token", token=None,
                    form=f"client_id={client_id}&client_secret={secret}"
                    "&grant_type=client_credentials")


def test_secrets_are_salted_slow_hashes_and_old_sha256_ones_upgrade_on_use(api):
    a, b = auth.hash_secret("hunter2"), auth.hash_secret("hunter2")
    assert a != b and a.startswith("scrypt$16384$8$1$")
    assert auth.secret_matches("hunter2", a) and not auth.secret_matches("hunter3", a)
    clients = deps().clients
    legacy = hashlib.sha256(b"old-secret").hexdigest()
    clients.put(ClientItem(id="client-old", secret_hash=legacy, created_at=0))
    assert _grant(api, "client-old", "wrong")[0] == 401
    assert clients.get("client-old").secret_hash == legacy  # a failure upgrades nothing
    status, out, _ = _grant(api, "client-old", "old-secret")
    assert status == 200, out
    upgraded = clients.get("client-old").secret_hash
    assert upgraded.startswith("scrypt$") and auth.secret_matches("old-secret", upgraded)
    assert _grant(api, "client-old", "old-secret")[0] == 200


def _signed(payload: bytes) -> str:
    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    sig = hmac.new(deps().signing_key, f"v1.{body}".encode(), hashlib.sha256).digest()
    return f"v1.{body}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"


@pytest.mark.parametrize("payload", [
    b"[1, 2]", b'"client-a"', b'{"exp": 9999999999}', b'{"sub": "", "exp": 9999999999}',
    b'{"sub": "client-a", "exp": "soon"}', b'{"sub": "client-a", "exp": 1e30}',
    b'{"sub": ["client-a"], "exp": 9999999999}', b'{"sub": "client-a"}', b"\xff\xfe",
    b"{" * 5000,
])
def test_correctly_signed_tokens_with_odd_claims_get_401(api, payload):
    status, out, _ = api.call("GET", "/v1/functions", token=_signed(payload))
    assert status == 401 and "token" in out["message"], out


def test_a_correctly_signed_token_with_good_claims_passes(api):
    token = _signed(json.dumps({"sub": "client-a", "exp": int(time.time()) + 60}).encode())
    assert api.call("GET", "/v1/functions", token=token)[0] == 200
    expired = _signed(json.dumps({"sub": "client-a", "exp": int(time.time()) - 1}).encode())
    assert api.call("GET", "/v1/functions", token=expired)[0] == 401


def test_failed_token_requests_are_limited_per_client_id(api, monkeypatch):
    # Failures count in fixed 300 s windows of the clock: start well inside one, or a boundary
    # falling mid-test (one run in ~300) lets the last call through in the next window.
    if time.time() % 300 > 290:
        time.sleep(300.1 - time.time() % 300)
    monkeypatch.setenv("LABELLOOP_TOKEN_FAILURE_LIMIT", "3")
    from labelloop import container

    d = container.Deps()
    d.__dict__["encoders"] = deps().encoders
    container.reset(d)
    for _ in range(3):
        assert _grant(api, "client-a", "wrong")[0] == 401
    # Limited now: even the right secret waits, and so does an id nobody has (no oracle).
    status, out, headers = _grant(api, "client-a", "secret-a")
    assert status == 429 and out["message"].startswith("client_id"), out
    assert 1 <= int(headers["Retry-After"]) <= 301
    for _ in range(3):
        assert _grant(api, "client-nobody", "x")[0] == 401
    status, _, headers_nobody = _grant(api, "client-nobody", "x")
    assert status == 429 and "Retry-After" in headers_nobody
    # Another client is not affected.
    assert _grant(api, "client-b", "secret-b")[0] == 200
    # The window passing lets the right secret through again.
    later = time.time() + 301
    token, _ = auth.issue_token("client-a", "secret-a", now=later)
    assert auth.verify_token(f"Bearer {token}") == "client-a"
    with pytest.raises(Unauthorized):
        auth.issue_token("client-a", "wrong", now=later)
    with pytest.raises(TooManyRequests):  # still the old window for now
        auth.issue_token("client-a", "secret-a")


def test_token_requests_with_odd_fields_are_400s(api):
    assert api.call("POST", "/connect/token", token=None,
                    raw=json.dumps({"client_id": 5, "client_secret": "x"}))[0] == 400
    status, out, _ = _grant(api, "c" * 200, "x")
    assert status == 400 and out["message"].startswith("client_id"), out


def test_generated_secrets_never_look_like_an_option():
    from labelloop.auth import new_credentials

    made = [new_credentials() for _ in range(2000)]
    assert all(not secret.startswith("-") and len(secret) == 43 for _, secret in made)
    assert len({cid for cid, _ in made}) == len(made)
    assert all(cid.startswith("client-") and len(cid) == 19 for cid, _ in made)
