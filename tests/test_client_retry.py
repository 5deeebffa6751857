"""The project's own client (used by the CLI and the example) against a loopback server that
answers from a script: it retries 429 (no sooner than Retry-After), 5xx and dropped
connections with backoff, never another 4xx; and the local gateway's throttle answers 429 with
Retry-After before the handler runs."""

from __future__ import annotations

import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from test_local_stack import _api_handler

from labelloop.client import ApiError, Client
from labelloop.local.gateway import Gateway, Throttle


class Scripted:
    """Answers POST /connect/token with a token, and every other request with the next of
    `answers` ((status, headers) or "drop": close without answering), recording the times."""

    def __init__(self, answers: list):
        self.answers, self.seen = list(answers), []
        script = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/connect/token":
                    return self._send(200, {}, {"access_token": "t", "expires_in": 3600})
                self.do_GET()

            def do_GET(self) -> None:
                script.seen.append((time.monotonic(), self.headers.get("Cache-Control")))
                answer = script.answers.pop(0) if script.answers else (200, {})
                if answer == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                status, headers = answer
                self._send(status, headers, {"ok": status == 200, "message": f"{status}"})

            def _send(self, status: int, headers: dict, body: dict) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def client(self, retries: int = 3) -> Client:
        return Client(self.url, "id", "secret", timeout=5, retries=retries, backoff=0.05)


@pytest.fixture
def scripted():
    servers = []

    def make(answers):
        servers.append(Scripted(answers))
        return servers[-1]
    yield make
    for s in servers:
        s.server.shutdown()


def test_a_429_is_retried_no_sooner_than_its_retry_after(scripted):
    s = scripted([(429, {"Retry-After": "1"}), (200, {})])
    assert s.client().request("GET", "/v1/functions")["ok"]
    (first, _), (second, _) = s.seen
    assert len(s.seen) == 2 and second - first >= 1.0


def test_5xx_and_dropped_connections_are_retried_with_backoff(scripted):
    s = scripted([(503, {}), "drop", (502, {}), (200, {})])
    assert s.client(retries=3).request("GET", "/v1/functions")["ok"]
    assert len(s.seen) == 4
    gaps = [b - a for (a, _), (b, _) in zip(s.seen, s.seen[1:], strict=False)]
    assert gaps[2] > gaps[0]  # exponential: 0.05 * 2^k, jittered by 0.5-1.5
    s = scripted([(500, {})] * 3)
    with pytest.raises(ApiError) as err:
        s.client(retries=2).request("GET", "/v1/functions")
    assert err.value.status == 500 and len(s.seen) == 3


@pytest.mark.parametrize("status", [400, 404, 409, 413])
def test_a_4xx_other_than_429_is_never_retried(scripted, status):
    s = scripted([(status, {}), (200, {})])
    with pytest.raises(ApiError) as err:
        s.client().request("POST", "/v1/functions/f/samples", {"data": "x"})
    assert err.value.status == status and len(s.seen) == 1


def test_a_429_asking_for_minutes_is_final_at_once(scripted):
    s = scripted([(429, {"Retry-After": "300"}), (200, {})])
    started = time.monotonic()
    with pytest.raises(ApiError) as err:
        s.client().request("GET", "/v1/functions")
    assert err.value.status == 429 and len(s.seen) == 1 and time.monotonic() - started < 1


def test_an_invoke_can_opt_out_of_the_invoke_cache(scripted):
    s = scripted([(200, {}), (200, {})])
    c = s.client()
    c.invoke("f", "text")
    c.invoke("f", "text", cached=False)
    assert [h for _, h in s.seen] == [None, "no-cache"]


def test_the_local_gateway_throttles_with_retry_after_before_the_handler():
    _api_handler.calls.clear()
    with Gateway(_api_handler, throttle=Throttle(rate=0.5, burst=2)) as gw:
        url = urlsplit(gw.url)
        answers = []
        for _ in range(3):
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
            conn.request("GET", "/v1/functions")
            response = conn.getresponse()
            response.read()
            answers.append((response.status, response.getheader("Retry-After")))
            conn.close()
    assert [status for status, _ in answers[:2]] != [429, 429] and 429 not in dict(answers[:2])
    assert answers[2] == (429, "2") and len(_api_handler.calls) == 2  # 1 token / 2 s
