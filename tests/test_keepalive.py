"""The local stack's keep-alive request handler (labelloop/local/keepalive.py), on a real
werkzeug server: requests share one connection, bodies of either framing are read whole, answers
without a body stay framed, errors close, and a stopped server's connections end."""

from __future__ import annotations

import http.client
import socket
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from labelloop.local import keepalive


def app(environ, start_response):
    path = environ["PATH_INFO"]
    body = environ["wsgi.input"].read()
    if path == "/boom":
        raise RuntimeError("the app failed")
    if path == "/empty":
        start_response("204 No Content", [])
        return [b""]
    answer = f"{environ['REQUEST_METHOD']} {path} {len(body)} {body[:20].decode()}".encode()
    # Two pieces and no Content-Length: the handler frames the joined answer itself.
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [answer[:5], answer[5:]]


class Handler(keepalive.KeepAliveHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


@pytest.fixture()
def server():
    srv = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Handler)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    keepalive.close_all(srv)
    thread.join(timeout=5)


def connect(srv) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=5)


def ask(conn, method: str, path: str, body=None, **kw) -> tuple[int, bytes, bool]:
    conn.request(method, path, body, **kw)
    resp = conn.getresponse()
    return resp.status, resp.read(), resp.will_close


def test_requests_of_both_body_framings_share_one_connection(server):
    conn = connect(server)
    assert ask(conn, "POST", "/a", b"x" * 3000) == (200, b"POST /a 3000 " + b"x" * 20, False)
    sock = conn.sock
    # A chunked upload (as botocore streams an S3 body of unknown length), then a request
    # right behind it: the first body's end was found, not guessed.
    chunks = iter([b"hello ", b"chunked ", b"world"])
    assert ask(conn, "PUT", "/b", chunks, encode_chunked=True) == (
        200, b"PUT /b 19 hello chunked world", False)
    assert ask(conn, "GET", "/c") == (200, b"GET /c 0 ", False)
    assert conn.sock is sock  # never reconnected


def test_answers_without_a_body_keep_the_connection_usable(server):
    conn = connect(server)
    status, body, closes = ask(conn, "HEAD", "/h")
    assert (status, body, closes) == (200, b"", False)
    assert ask(conn, "DELETE", "/empty") == (204, b"", False)
    assert ask(conn, "GET", "/after") == (200, b"GET /after 0 ", False)


def test_an_expect_100_continue_is_answered_before_the_body_is_sent(server):
    # As botocore sends an S3 upload: headers first, the body only after "100 Continue"
    # (it gives up waiting after a second, which would cost every upload that second).
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5) as sock:
        sock.sendall(b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        sock.settimeout(0.5)
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"hello")
        sock.settimeout(5)
        answer = b""
        while not answer.endswith(b"PUT /up 5 hello"):
            answer += sock.recv(1000)
        assert answer.startswith(b"HTTP/1.1 200 OK")


def test_an_app_error_answers_500_and_closes_that_connection(server):
    conn = connect(server)
    status, body, closes = ask(conn, "POST", "/boom", b"{}")
    assert (status, body, closes) == (500, b"internal error", True)
    # The server itself carries on for a new connection.
    assert ask(connect(server), "GET", "/ok") == (200, b"GET /ok 0 ", False)


def test_close_all_ends_the_open_connections_of_a_stopped_server(server):
    conn = connect(server)
    assert ask(conn, "GET", "/x")[0] == 200
    server.shutdown()
    server.server_close()
    keepalive.close_all(server)
    conn.sock.settimeout(5)
    assert conn.sock.recv(1) == b""  # end of input: the pooled connection is not served again


def _connections_to(port: int) -> int:
    """Sockets with `port` at one end that are not listening (Linux /proc/net/tcp: open or in
    TIME_WAIT, i.e. every connection made recently)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, remote, state = line.split()[1:4]
            ports = {int(local.split(":")[1], 16), int(remote.split(":")[1], 16)}
            if port in ports and state != "0A":  # 0A: LISTEN
                count += 1
    return count


def test_a_boto3_client_makes_its_calls_to_the_local_aws_over_one_connection():
    import boto3
    from botocore.config import Config

    from labelloop.local.aws import MotoServer

    with MotoServer() as aws:
        ddb = boto3.client("dynamodb", endpoint_url=aws.endpoint, region_name="us-east-1",
                           aws_access_key_id="k", aws_secret_access_key="s",
                           config=Config(max_pool_connections=1))
        ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        for i in range(40):
            ddb.put_item(TableName="t", Item={"pk": {"S": f"item-{i}"}})
        assert ddb.scan(TableName="t")["Count"] == 40
        port = int(aws.endpoint.rsplit(":", 1)[1])
        # One connection has two ends; werkzeug's own handler left 42 closed ones behind.
        assert _connections_to(port) <= 2
    with MotoServer() as again:  # moto's state is the process's: a new server starts empty
        ddb = boto3.client("dynamodb", endpoint_url=again.endpoint, region_name="us-east-1",
                           aws_access_key_id="k", aws_secret_access_key="s")
        assert ddb.list_tables()["TableNames"] == []
