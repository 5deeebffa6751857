"""URL fetching for image data: refused before any connection where it could reach inside,
bounded in time, size and redirects where it is allowed. Only loopback servers are involved."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from labelloop.urlfetch import FetchRefused, Policy, fetch

LOCAL = Policy(allow_loopback=True, timeout=2.0)


class _Site(BaseHTTPRequestHandler):
    """/img: 1,000 bytes; /big: 3 MB; /loop: redirect to itself; /to?url: redirect there;
    /slow: never answers."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/img":
            self._send(200, b"\x89PNG" + b"x" * 996)
        elif self.path == "/big":
            self._send(200, b"x" * (3 * 1024 * 1024))
        elif self.path == "/loop":
            self._send(302, b"", {"Location": "/loop"})
        elif self.path.startswith("/to?"):
            self._send(302, b"", {"Location": self.path[4:]})
        elif self.path == "/slow":
            time.sleep(3)
        else:
            self._send(404, b"")

    def _send(self, status, body, headers=()):
        self.send_response(status)
        for k, v in dict(headers).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Counting(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Site)
        self.connections = 0

    def get_request(self):
        self.connections += 1
        return super().get_request()


@pytest.fixture
def site():
    server = _Counting()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "127.1.2.3"])
def test_loopback_is_refused_before_any_connection(site, host):
    port = site.server_address[1]
    for scheme in ("https", "http"):
        with pytest.raises(FetchRefused):
            fetch(f"{scheme}://{host}:{port}/img")
    time.sleep(0.2)
    assert site.connections == 0


@pytest.mark.parametrize(("url", "says"), [
    ("https://169.254.169.254/latest/meta-data/", "not a public address"),  # the metadata service
    ("https://[fd00:ec2::254]/latest/meta-data/", "not a public address"),
    ("https://10.0.0.8/cat.jpg", "not a public address"),
    ("https://192.168.1.1/cat.jpg", "not a public address"),
    ("https://[::1]/cat.jpg", "not a public address"),
    ("https://0.0.0.0/cat.jpg", "not a public address"),
    ("https://224.0.0.1/cat.jpg", "not a public address"),  # multicast counts as global
    ("http://93.184.216.34/cat.jpg", "only https"),
    ("file:///etc/passwd", "only https"),
    ("gopher://example.com/", "only https"),
    ("https://user:pw@93.184.216.34/cat.jpg", "credentials"),
    ("https:///cat.jpg", "no host"),
    ("https://host.invalid/cat.jpg", "does not resolve"),
])
def test_urls_that_could_reach_inside_are_refused_with_a_reason(url, says, monkeypatch):
    connects = []
    real = socket.create_connection
    monkeypatch.setattr(socket, "create_connection",
                        lambda *a, **k: connects.append(a) or real(*a, **k))
    with pytest.raises(FetchRefused, match=says):
        fetch(url)
    assert connects == []


def test_the_local_stack_may_allow_loopback_explicitly(site):
    port = site.server_address[1]
    assert fetch(f"http://127.0.0.1:{port}/img", LOCAL) == b"\x89PNG" + b"x" * 996
    with pytest.raises(FetchRefused, match="HTTP 404"):
        fetch(f"http://127.0.0.1:{port}/nothing", LOCAL)
    # Still nothing private beyond loopback.
    with pytest.raises(FetchRefused, match="not a public address"):
        fetch("http://10.0.0.8/cat.jpg", LOCAL)


def test_each_redirect_is_checked_as_a_new_url(site):
    port = site.server_address[1]
    assert fetch(f"http://127.0.0.1:{port}/to?/img", LOCAL).startswith(b"\x89PNG")
    before = site.connections
    with pytest.raises(FetchRefused, match="not a public address"):
        fetch(f"http://127.0.0.1:{port}/to?http://169.254.169.254/latest/", LOCAL)
    assert site.connections == before + 1  # the redirect was fetched, its target never
    with pytest.raises(FetchRefused, match="more than 3 redirects"):
        fetch(f"http://127.0.0.1:{port}/loop", LOCAL)


def test_size_and_time_are_bounded(site):
    port = site.server_address[1]
    with pytest.raises(FetchRefused, match="larger than 1048576 bytes"):
        fetch(f"http://127.0.0.1:{port}/big", Policy(allow_loopback=True, max_bytes=1 << 20))
    start = time.monotonic()
    with pytest.raises(FetchRefused, match=r"no answer within 0\.5 s"):
        fetch(f"http://127.0.0.1:{port}/slow", Policy(allow_loopback=True, timeout=0.5))
    assert time.monotonic() - start < 2
