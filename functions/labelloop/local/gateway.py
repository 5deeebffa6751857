"""A local API Gateway HTTP API: each request becomes a payload format 2.0 event for the handler."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, ValidationError

from labelloop.afterwork import Runner
from labelloop.local import ACCOUNT_ID, LambdaContext, keepalive

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's own payload limit
API_ID = "local"
TIMEOUT_SECONDS = 30.0  # HTTP API's integration timeout
# The deployed stage's default throttling (infra/stage.py; tests/test_infra.py holds them equal).
THROTTLE_RATE, THROTTLE_BURST = 100.0, 200


class HttpResult(BaseModel):
    """A handler's answer in payload format 2.0; anything else is a malformed response."""

    model_config = ConfigDict(extra="ignore")

    statusCode: int
    headers: dict[str, str] = {}
    multiValueHeaders: dict[str, list[str]] = {}
    cookies: list[str] = []
    body: str | None = None
    isBase64Encoded: bool = False


@dataclass
class Throttle:
    """A token bucket as the deployed stage's (infra/stage.py `throttle_rate`, `throttle_burst`:
    all clients together): past it a request is answered 429 before the handler sees it, with
    Retry-After (whole seconds until a token is back; API Gateway's own 429 has none)."""

    rate: float
    burst: int
    _tokens: float = field(init=False)
    _at: float = field(init=False, default_factory=time.monotonic)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._tokens = float(self.burst)

    def take(self) -> float:
        """0 when the request may pass; else the seconds until it could."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate


def _json_response(status: int, payload: dict):
    from werkzeug.wrappers import Response

    return Response(json.dumps(payload), status=status, content_type="application/json")


def build_event(request, request_id: str) -> dict:
    """The event API Gateway would send for `request` (a werkzeug Request), body included."""
    environ = request.environ
    # WSGI hands over the decoded path as latin-1; HTTP APIs pass it decoded, as UTF-8 text.
    path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace") or "/"
    raw_query = environ.get("QUERY_STRING", "")
    # The WSGI server already joined repeated headers with commas, as API Gateway does.
    headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != "cookie"}
    headers.setdefault("x-forwarded-for", request.remote_addr or "")
    headers.setdefault("x-forwarded-proto", request.scheme)
    headers.setdefault("x-forwarded-port", str(environ.get("SERVER_PORT", "")))
    now = datetime.now(UTC)
    event: dict = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
    }
    cookies = [c.strip() for c in request.headers.get("Cookie", "").split(";") if c.strip()]
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    if query:
        event["queryStringParameters"] = query
    host = request.host
    event["requestContext"] = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": host,
        "domainPrefix": host.split(".")[0].split(":")[0],
        "http": {
            "method": request.method,
            "path": path,
            "protocol": environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "sourceIp": request.remote_addr or "",
            "userAgent": request.headers.get("User-Agent", ""),
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    body = request.get_data(cache=False)
    if body:
        try:
            event["body"], event["isBase64Encoded"] = body.decode("utf-8"), False
        except UnicodeDecodeError:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    else:
        event["isBase64Encoded"] = False
    return event


def to_response(result):
    """The HTTP response API Gateway makes of a handler's return value."""
    from werkzeug.wrappers import Response

    if not (isinstance(result, dict) and "statusCode" in result):
        # Payload format 2.0 reads anything without a statusCode as a 200 JSON body.
        body = result if isinstance(result, str) else json.dumps(result)
        return Response(body, status=200, content_type="application/json")
    res = HttpResult.model_validate(result)
    body = res.body or ""
    data = base64.b64decode(body, validate=True) if res.isBase64Encoded else body.encode()
    response = Response(data, status=res.statusCode)
    del response.headers["Content-Type"]  # only what the handler set
    for name, value in res.headers.items():
        response.headers[name] = value
    for name, values in res.multiValueHeaders.items():
        for value in values:
            response.headers.add(name, value)
    for cookie in res.cookies:
        response.headers.add("Set-Cookie", cookie)
    return response


class _ThenFinish:
    """A response body that calls `finish` once it has been sent, or once the client is gone.

    Not werkzeug's close() alone: its server skips close() when the client resets the
    connection while it drains the request, and the request's deferred work would then
    never run (and the runner never be idle)."""

    def __init__(self, body, finish: Callable[[], object]):
        self._body, self._finish, self._done = body, finish, False

    def __iter__(self):
        try:
            yield from self._body
        finally:
            self.close()

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            if hasattr(self._body, "close"):
                self._body.close()
        finally:
            self._finish()

    def __del__(self):
        self.close()


class Gateway:
    """Serves `handler(event, context)` on http://127.0.0.1:<port> (0 picks a free port)."""

    def __init__(self, handler: Callable, port: int = 0, function_name: str = "api",
                 runner: Runner | None = None, throttle: Throttle | None = None):
        self.handler = handler
        self.throttle = throttle
        # Runs what each request deferred, once its response is sent: with a runner, the
        # handler must hand every request's work over (`afterwork.collect`), even none.
        self.runner = runner
        self.function_name = function_name
        self._port = port
        self._server = None
        self._thread: threading.Thread | None = None
        self._closed = False
        # One request at a time, as a Lambda execution environment runs them: the handler's
        # module state is built for that (powertools keeps the current event and the route
        # context on the resolver, so two requests at once would read each other's).
        self._container = threading.Lock()
        self.url = ""

    def __call__(self, environ, start_response):
        from werkzeug.exceptions import RequestEntityTooLarge
        from werkzeug.wrappers import Request

        request = Request(environ)
        request.max_content_length = MAX_BODY_BYTES
        request_id = base64.b64encode(secrets.token_bytes(12)).decode()
        finish = None
        wait = self.throttle.take() if self.throttle is not None and not self._closed else 0.0
        if self._closed:
            response = _json_response(503, {"message": "Service Unavailable"})
        elif wait:
            response = _json_response(429, {"message": "Too Many Requests"})
            response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        else:
            try:
                event = build_event(request, request_id)
            except RequestEntityTooLarge:
                response = _json_response(413, {"message": "Request Entity Too Large"})
            else:
                context = LambdaContext(self.function_name, timeout_seconds=TIMEOUT_SECONDS)
                with self._container:
                    response = self._invoke(event, context)
                if self.runner is not None:
                    # Once the body is out, as Lambda posts the response before the extension
                    # runs the deferred work.
                    runner, rid = self.runner, context.aws_request_id
                    finish = lambda: runner.finish(rid)  # noqa: E731
        response.headers["Apigw-Requestid"] = request_id
        body = response(environ, start_response)
        return body if finish is None else _ThenFinish(body, finish)

    def _invoke(self, event: dict, context: LambdaContext):
        try:
            result = self.handler(event, context)
        except Exception:
            log.exception("%s failed on %s %s", self.function_name,
                          event["requestContext"]["http"]["method"], event["rawPath"])
            return _json_response(500, {"message": "internal error"})
        try:
            return to_response(result)
        except (ValidationError, binascii.Error, TypeError, ValueError):
            log.exception("malformed response from %s: %.300r", self.function_name, result)
            return _json_response(500, {"message": "internal error"})

    def start(self) -> Gateway:
        from werkzeug.serving import WSGIRequestHandler, make_server

        # Connections stay open between requests, as API Gateway keeps them; a request's
        # deferred work runs on its connection once the answer is out, before the next request
        # on it is read (as Lambda gives an environment its next invoke only after that work).
        class LoggingHandler(keepalive.KeepAliveHandler, WSGIRequestHandler):
            max_body_bytes = MAX_BODY_BYTES

            def version_string(self) -> str:
                return "labelloop"  # not werkzeug's and Python's versions

            def log_request(self, code="-", size="-") -> None:
                log.info('"%s" %s', self.requestline, code)

        self._server = make_server("127.0.0.1", self._port, self, threaded=True,
                                   request_handler=LoggingHandler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, name="gateway",
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop intake at once: every later request is answered 503 (shutdown takes longer)."""
        self._closed = True

    def stop(self) -> None:
        self.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            keepalive.close_all(self._server)
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

