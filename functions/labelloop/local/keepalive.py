"""HTTP/1.1 keep-alive for the local stack's werkzeug servers.

werkzeug's development server answers every request with `Connection: close`, because it
cannot tell where an unread request body ends. So every AWS call a handler made to the local
moto opened a TCP connection, and the server started a thread for it: in a steady run of
invokes, one connection per DynamoDB write on each side. DynamoDB keeps botocore's pooled
connections open; this handler does too. It reads each request's body whole before the app
sees it (the socket is then at the next request line), answers with a Content-Length, and
waits on the same connection for the next request. An idle connection closes after
IDLE_SECONDS; `close_all` ends every connection when the server stops, so that no pooled
client connection reaches a stopped server's app.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import threading

from werkzeug.serving import WSGIRequestHandler

log = logging.getLogger(__name__)

IDLE_SECONDS = 60.0
_NO_BODY = (204, 304)


class KeepAliveHandler(WSGIRequestHandler):
    """A werkzeug request handler that keeps connections open (mix in before the handler)."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS  # socketserver applies it to the connection: idle reads end
    # Status, headers and body leave in one send: written apart, the body would wait for the
    # client's delayed ACK of the headers (Nagle), about 40 ms per answer.
    wbufsize = 64 * 1024
    # A body declared longer than this is not read: the app answers (413) and the connection
    # closes. None: every body is read.
    max_body_bytes: int | None = None

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with _lock:
            _connections.setdefault(self.server, set()).add(self.connection)

    def finish(self) -> None:
        with _lock:
            _connections.get(self.server, set()).discard(self.connection)
        super().finish()

    def log_error(self, format: str, *args) -> None:
        # http.server reports an idle connection's end as "Request timed out": here the
        # normal end of a kept-alive connection, not an error.
        if format.startswith("Request timed out"):
            log.debug("closing a connection idle for %.0f s", IDLE_SECONDS)
        else:
            super().log_error(format, *args)

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()  # the client waits for it before it sends the body
        self.environ = environ = self.make_environ()
        declared = environ.get("CONTENT_LENGTH", "")
        if (self.max_body_bytes is not None and declared.isdigit()
                and int(declared) > self.max_body_bytes):
            # Left unread for the app to refuse (it may never come): the connection cannot
            # carry another request after it.
            self.close_connection = True
        else:
            body = read_body(environ)
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            environ.update({"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
                            "wsgi.input_terminated": False})
        started: list = []
        self._sent = False

        def start_response(status, headers, exc_info=None):
            started[:] = [status, headers]
            return chunks.append

        chunks: list[bytes] = []
        result = None
        try:
            result = self.server.app(environ, start_response)
            body = iter(result)
            first = next(body, b"")  # start_response may wait for the first chunk
            declared = _content_length(started[1])
            if declared is None:
                self._send(started[0], started[1], b"".join([*chunks, first, *body]))
            else:
                # Each chunk leaves as the app yields it: an app may do work once its
                # answer is out (the gateway runs the request's deferred work there).
                self._send(started[0], started[1], b"".join([*chunks, first]), declared)
                for chunk in body:
                    self._write(chunk)
        except (TimeoutError, ConnectionError) as e:
            self.close_connection = True
            self.connection_dropped(e, environ)
        except Exception:
            self.close_connection = True
            log.exception("error on request %r", self.requestline)
            if not self._sent:
                self._send("500 Internal Server Error",
                           [("Content-Type", "text/plain")], b"internal error")
        finally:
            if hasattr(result, "close"):
                result.close()  # WSGI's close(), once the answer is out

    def _send(self, status: str, headers: list, body: bytes, length: int | None = None
              ) -> None:
        """The head and `body` in one write; `length`: the whole body's, when more follows."""
        code_text, _, reason = status.partition(" ")
        code = int(code_text)
        head = self.command == "HEAD"
        self.send_response(code, reason)
        for key, value in headers:
            lower = key.lower()
            # A HEAD answer states the length of what a GET would send; anything else, ours.
            if lower in ("transfer-encoding", "connection") or (
                    lower == "content-length" and not head):
                continue
            self.send_header(key, value)
        if not head and code not in _NO_BODY and not 100 <= code < 200:
            self.send_header("Content-Length", str(len(body) if length is None else length))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self._sent = True
        self._has_body = not head and code not in _NO_BODY
        self._write(body)

    def _write(self, chunk: bytes) -> None:
        if self._has_body and chunk:
            self.wfile.write(chunk)
        self.wfile.flush()


def _content_length(headers: list) -> int | None:
    for key, value in headers:
        if key.lower() == "content-length" and value.strip().isdigit():
            return int(value)
    return None


def read_body(environ: dict) -> bytes:
    """A WSGI request's whole body, de-chunked."""
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):  # chunked: werkzeug's reader stops at the end
        return stream.read()
    length = environ.get("CONTENT_LENGTH")
    return stream.read(int(length)) if length else b""


_lock = threading.Lock()
_connections: dict[object, set[socket.socket]] = {}


def close_all(server) -> None:
    """End the server's open connections (their threads see end of input and finish)."""
    with _lock:
        open_ = _connections.pop(server, set())
    for conn in open_:
        with contextlib.suppress(OSError):  # already gone
            conn.shutdown(socket.SHUT_RDWR)
