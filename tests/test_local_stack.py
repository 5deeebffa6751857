"""The local stack runner: gateway events, serialised moto, SQS pollers, persistence, the stack.

Everything runs against moto's real server on free ports; the handlers are small ones defined
here (the app's own handlers have their own tests).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from labelloop.local.aws import MotoServer
from labelloop.local.gateway import MAX_BODY_BYTES, Gateway
from labelloop.local.poller import QueuePoller
from labelloop.local.workers import NICENESS

AWS_ENV = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
           "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def moto(monkeypatch):
    server = MotoServer().start()
    for key, value in {**AWS_ENV, "AWS_ENDPOINT_URL": server.endpoint}.items():
        monkeypatch.setenv(key, value)
    yield server
    server.stop()


def _client(name: str):
    import boto3

    return boto3.session.Session().client(name)  # the environment's credentials of now


# --- gateway -------------------------------------------------------------------------------

def _api_handler(event, context):
    _api_handler.calls.append((event, context))
    path = event["rawPath"]
    if path == "/boom":
        raise RuntimeError("handler bug")
    if path == "/binary":
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(b"\x00\xff").decode(), "isBase64Encoded": True}
    if path == "/plain":
        return {"hello": "world"}  # no statusCode: HTTP API makes it a 200 JSON body
    return {"statusCode": 201, "headers": {"content-type": "application/json", "x-out": "1"},
            "cookies": ["a=1; Path=/", "b=2"], "body": json.dumps({"seen": path})}


_api_handler.calls = []


def _request(url: str, method: str, path: str, body: bytes | None = None,
             headers: list[tuple[str, str]] = ()):
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for name, value in headers:
        conn.putheader(name, value)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


@pytest.fixture
def gateway():
    _api_handler.calls.clear()
    with Gateway(_api_handler, port=0, function_name="test-api") as gw:
        yield gw


def test_gateway_builds_a_v2_event_and_returns_the_handlers_response(gateway):
    response, data = _request(
        gateway.url, "POST", "/v0.9/functions/f%20x/invoke?a=1&a=2&empty=&c=x%20y",
        body=b'{"data": "caf\xc3\xa9"}',
        headers=[("Content-Type", "application/json"), ("X-Multi", "one"), ("X-Multi", "two"),
                 ("Cookie", "k=v; k2=v2"), ("User-Agent", "tests/1")])
    assert response.status == 201
    assert json.loads(data) == {"seen": "/v0.9/functions/f x/invoke"}
    assert response.getheader("x-out") == "1"
    assert response.getheader("content-type") == "application/json"
    assert response.headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2"]

    event, context = _api_handler.calls[-1]
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/v0.9/functions/f x/invoke"
    assert event["rawQueryString"] == "a=1&a=2&empty=&c=x%20y"
    assert event["queryStringParameters"] == {"a": "1,2", "empty": "", "c": "x y"}
    assert event["cookies"] == ["k=v", "k2=v2"]
    headers = event["headers"]
    assert headers["x-multi"] == "one,two"
    assert headers["content-type"] == "application/json"
    assert "cookie" not in headers and all(k == k.lower() for k in headers)
    assert event["body"] == '{"data": "café"}' and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["http"] == {"method": "POST", "path": "/v0.9/functions/f x/invoke",
                           "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                           "userAgent": "tests/1"}
    assert ctx["stage"] == "$default" and ctx["routeKey"] == "$default"
    assert ctx["accountId"] and ctx["apiId"] and ctx["domainName"] and ctx["requestId"]
    assert abs(ctx["timeEpoch"] / 1000 - time.time()) < 10
    assert re.fullmatch(r"\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000", ctx["time"])
    assert response.getheader("apigw-requestid") == ctx["requestId"]
    assert context.function_name == "test-api"
    assert 0 < context.get_remaining_time_in_millis() <= 30_000
    assert context.invoked_function_arn.endswith(":function:test-api")
    assert context.aws_request_id and context.memory_limit_in_mb and context.log_group_name


def test_gateway_binary_bodies_are_base64_both_ways(gateway):
    response, data = _request(gateway.url, "PUT", "/binary", body=b"\xff\x00\xfe",
                              headers=[("Content-Type", "application/octet-stream")])
    assert response.status == 200 and data == b"\x00\xff"
    event, _ = _api_handler.calls[-1]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00\xfe"
    assert "queryStringParameters" not in event and event["rawQueryString"] == ""

    response, data = _request(gateway.url, "GET", "/plain")
    assert response.status == 200 and json.loads(data) == {"hello": "world"}
    assert "body" not in _api_handler.calls[-1][0]


def test_gateway_handler_errors_and_oversize_bodies(gateway, caplog):
    response, data = _request(gateway.url, "GET", "/boom")
    assert response.status == 500 and json.loads(data) == {"message": "internal error"}
    assert "handler bug" in caplog.text  # logged with its traceback

    calls = len(_api_handler.calls)
    host, port = gateway.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", "/big")
    conn.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
    conn.endheaders()  # the body never comes: the limit is checked before reading it
    response = conn.getresponse()
    assert response.status == 413
    assert len(_api_handler.calls) == calls


# --- serialised moto ---------------------------------------------------------------------

def test_conditional_increments_from_16_threads_stop_exactly_at_the_limit(moto):
    ddb = _client("dynamodb")
    ddb.create_table(TableName="counters", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    limit, threads, attempts = 50, 16, 5
    clients = [_client("dynamodb") for _ in range(threads)]
    barrier = threading.Barrier(threads)
    granted: list[int] = []
    refused: list[str] = []

    def worker(client):
        barrier.wait()
        for _ in range(attempts):
            try:
                r = client.update_item(
                    TableName="counters", Key={"pk": {"S": "c"}}, UpdateExpression="ADD n :one",
                    ConditionExpression="attribute_not_exists(n) OR n < :limit",
                    ExpressionAttributeValues={":one": {"N": "1"}, ":limit": {"N": str(limit)}},
                    ReturnValues="UPDATED_NEW")
                granted.append(int(r["Attributes"]["n"]["N"]))
            except client.exceptions.ConditionalCheckFailedException as e:
                refused.append(e.response["Error"]["Code"])

    pool = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    item = ddb.get_item(TableName="counters", Key={"pk": {"S": "c"}})["Item"]
    assert int(item["n"]["N"]) == limit
    assert sorted(granted) == list(range(1, limit + 1))  # no two increments saw the same value
    assert len(refused) == threads * attempts - limit
    assert set(refused) == {"ConditionalCheckFailedException"}


def test_a_long_poll_does_not_hold_up_other_requests(moto):
    sqs = _client("sqs")
    url = sqs.create_queue(QueueName="waiting")["QueueUrl"]
    got: list = []
    poll = threading.Thread(target=lambda: got.append(
        sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5).get("Messages", [])))
    poll.start()
    time.sleep(0.2)
    started = time.monotonic()
    sqs.list_queues()
    sqs.send_message(QueueUrl=url, MessageBody="wake up")
    poll.join()
    assert time.monotonic() - started < 1.5
    assert [m["Body"] for m in got[0]] == ["wake up"]


def test_dynamodb_writes_do_not_wake_long_polls(moto):
    """A waiting long poll rechecks its queue on SQS changes and every 0.1 s, not on every
    write of another service (each recheck is a ReceiveMessage through moto)."""
    sqs, ddb = _client("sqs"), _client("dynamodb")
    url = sqs.create_queue(QueueName="idle")["QueueUrl"]
    ddb.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    polls = [threading.Thread(target=lambda: sqs.receive_message(QueueUrl=url,
                                                                 WaitTimeSeconds=2))
             for _ in range(2)]
    for t in polls:
        t.start()
    time.sleep(0.2)
    before, started = moto.short_polls, time.monotonic()
    for i in range(300):
        ddb.put_item(TableName="t", Item={"pk": {"S": f"item-{i}"}})
    rechecks = moto.short_polls - before
    # Two polls, each at most one recheck per 0.1 s (and one more as it ends); 600 before.
    assert rechecks <= 2 * ((time.monotonic() - started) / 0.1 + 2), rechecks
    for t in polls:
        t.join()


# --- poller ------------------------------------------------------------------------------

def _queue_with_dlq(sqs, name: str, max_receive_count: int) -> tuple[str, str]:
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": "960",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                     "maxReceiveCount": max_receive_count})})["QueueUrl"]
    return url, dlq


def test_poller_deletes_successes_and_redrives_failures_to_the_dlq(moto):
    sqs = _client("sqs")
    url, dlq = _queue_with_dlq(sqs, "work", max_receive_count=2)
    events: list[dict] = []

    def handler(event, context):
        events.append(event)
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]}
                                      for r in event["Records"] if r["body"] == "bad"]}

    good_id = sqs.send_message(QueueUrl=url, MessageBody="good", MessageAttributes={
        "kind": {"DataType": "String", "StringValue": "k"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x01\x02"}})["MessageId"]
    sqs.send_message(QueueUrl=url, MessageBody="bad")
    started = time.monotonic()
    with QueuePoller(url, handler, batch_size=2, retry_seconds=1) as poller:
        assert poller.wait_idle(timeout=15)
    took = time.monotonic() - started

    records = [r for e in events for r in e["Records"]]
    assert [r["body"] for r in records].count("good") == 1
    assert [r["body"] for r in records].count("bad") == 2
    assert max(len(e["Records"]) for e in events) <= 2
    good = next(r for r in records if r["body"] == "good")
    assert good["messageId"] == good_id
    assert good["eventSource"] == "aws:sqs" and good["awsRegion"] == "us-east-1"
    assert good["eventSourceARN"].endswith(":work") and good["receiptHandle"]
    assert good["md5OfBody"] == hashlib.md5(b"good").hexdigest()
    assert {"ApproximateReceiveCount", "SentTimestamp",
            "ApproximateFirstReceiveTimestamp"} <= set(good["attributes"])
    assert good["messageAttributes"]["kind"] == {
        "stringValue": "k", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
    assert base64.b64decode(good["messageAttributes"]["blob"]["binaryValue"]) == b"\x01\x02"

    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == attrs["ApproximateNumberOfMessagesNotVisible"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in dead] == ["bad"]
    assert took < 10


def test_poller_retries_a_batch_whose_handler_raised(moto):
    sqs = _client("sqs")
    url, dlq = _queue_with_dlq(sqs, "flaky", max_receive_count=3)
    bodies: list[str] = []

    def handler(event, context):
        bodies.extend(r["body"] for r in event["Records"])
        if len(bodies) == 1:
            raise RuntimeError("first attempt fails")

    sqs.send_message(QueueUrl=url, MessageBody="once more")
    with QueuePoller(url, handler, retry_seconds=1) as poller:
        assert poller.wait_idle(timeout=10)
    assert bodies == ["once more", "once more"]
    assert "Messages" not in sqs.receive_message(QueueUrl=dlq)


def test_closing_a_poller_releases_the_batch_in_its_handler(moto):
    sqs = _client("sqs")
    url, _ = _queue_with_dlq(sqs, "slow", max_receive_count=3)
    entered, release = threading.Event(), threading.Event()

    def handler(event, context):
        entered.set()
        release.wait(10)

    sqs.send_message(QueueUrl=url, MessageBody="long job")
    poller = QueuePoller(url, handler).start()
    assert entered.wait(5)
    poller.close()
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "1"  # not 16 minutes away
    release.set()
    poller.stop()


# --- persistence -------------------------------------------------------------------------

_CHILD = r"""
import itertools, json, os, sys, threading, time
from pathlib import Path

import boto3
from botocore.config import Config

from labelloop.local import wait_for_signal
from labelloop.local.aws import MotoServer
from labelloop.resources import create_all

server = MotoServer(Path(sys.argv[1])).start()
os.environ.update(AWS_ENDPOINT_URL=server.endpoint, AWS_ACCESS_KEY_ID="local",
                  AWS_SECRET_ACCESS_KEY="local", AWS_DEFAULT_REGION="us-east-1")
env = create_all(boto3.Session(), "persist")
ddb, s3, sqs, sm = (boto3.client(n, config=Config(retries={"total_max_attempts": 1}))
                    for n in ("dynamodb", "s3", "sqs", "secretsmanager"))
if sys.argv[2] == "write":
    s3.put_object(Bucket=env["LABELLOOP_BUCKET"], Key="model", Body=b"v1\x00")
    s3.put_object(Bucket=env["LABELLOOP_BUCKET"], Key="model", Body=b"v2\xff")
    sqs.send_message(QueueUrl=env["LABELLOOP_TRAINING_QUEUE_URL"], MessageBody="train f1")
    secret = sm.get_secret_value(SecretId=env["LABELLOOP_SIGNING_SECRET"])["SecretString"]
    print("SECRET", secret, flush=True)

    def writer():
        for i in itertools.count():
            try:
                ddb.put_item(TableName=env["LABELLOOP_TABLE"],
                             Item={"pk": {"S": f"item#{i}"}, "sk": {"S": "x"}})
            except Exception as e:  # refused once the server stops
                print("REFUSED", i, e, flush=True)
                return
            print("ACK", i, flush=True)

    threading.Thread(target=writer, daemon=True).start()
    wait_for_signal()
    started = time.perf_counter()
    server.stop()
    print("STOPPED", time.perf_counter() - started, server.last_snapshot_seconds, flush=True)
else:
    items = ddb.scan(TableName=env["LABELLOOP_TABLE"])["Items"]
    versions = s3.list_object_versions(Bucket=env["LABELLOOP_BUCKET"])["Versions"]
    print(json.dumps({
        "items": [i["pk"]["S"] for i in items],
        "versions": [s3.get_object(Bucket=env["LABELLOOP_BUCKET"], Key="model",
                                   VersionId=v["VersionId"])["Body"].read().hex()
                     for v in versions],
        "latest": s3.get_object(Bucket=env["LABELLOOP_BUCKET"], Key="model")["Body"].read()
        .hex(),
        "messages": [m["Body"] for m in sqs.receive_message(
            QueueUrl=env["LABELLOOP_TRAINING_QUEUE_URL"], MaxNumberOfMessages=10
        ).get("Messages", [])],
        "secret": sm.get_secret_value(SecretId=env["LABELLOOP_SIGNING_SECRET"])["SecretString"],
    }))
    server.stop()
"""


def test_sigterm_then_sigkill_a_second_later_loses_nothing_acknowledged(tmp_path):
    data = tmp_path / "data"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(data), "write"],
                             stdout=subprocess.PIPE, text=True)
    lines = []
    try:
        while not (lines and lines[-1].startswith("ACK 40")):
            line = child.stdout.readline()
            assert line, "the child died before writing"
            lines.append(line.strip())
        child.send_signal(signal.SIGTERM)  # while the writer is mid-stream
        time.sleep(1.0)
        child.kill()
        rest, _ = child.communicate(timeout=10)
    finally:
        child.kill()
    lines += rest.splitlines()
    acked = [int(line.split()[1]) for line in lines if line.startswith("ACK")]
    secret = next(line.split()[1] for line in lines if line.startswith("SECRET"))
    # The stop usually ends within the second; on a loaded machine the kill lands in the middle
    # of its final snapshot, which must not lose anything either (the log has it all).
    assert acked == list(range(len(acked))) and len(acked) > 40

    report = subprocess.run([sys.executable, "-c", _CHILD, str(data), "read"],
                            capture_output=True, text=True, timeout=60, check=True)
    state = json.loads(report.stdout.splitlines()[-1])
    assert {f"item#{i}" for i in acked} <= set(state["items"])
    assert sorted(state["versions"]) == sorted([b"v1\x00".hex(), b"v2\xff".hex()])
    assert state["latest"] == b"v2\xff".hex()
    assert state["messages"] == ["train f1"]
    assert state["secret"] == secret
    assert not list(data.glob("*.tmp"))


# --- the stack ---------------------------------------------------------------------------

def stack_api_handler(event, context):
    from labelloop import afterwork

    with afterwork.collect(context.aws_request_id):  # as every API handler must
        if event["rawPath"] == "/hold":  # what a container holds until its shutdown
            afterwork.at_shutdown(lambda: _client("dynamodb").put_item(
                TableName=os.environ["LABELLOOP_TABLE"],
                Item={"pk": {"S": "held"}, "sk": {"S": "x"}}))
        return {"statusCode": 200, "body": json.dumps({"path": event["rawPath"],
                                                       "table": os.environ["LABELLOOP_TABLE"]})}


def stack_training_handler(event, context):
    """Runs in the stack's worker process: it leaves what it got, and where, in the table."""
    import boto3

    table = boto3.session.Session().resource("dynamodb").Table(os.environ["LABELLOOP_TABLE"])
    for r in event["Records"]:
        table.put_item(Item={"pk": "handled", "sk": r["body"], "pid": os.getpid(),
                             "nice": os.getpriority(os.PRIO_PROCESS, 0),
                             "function": context.function_name})
    return {"batchItemFailures": []}


def test_local_stack_wires_everything_and_keeps_its_state(tmp_path, monkeypatch):
    from labelloop.auth import issue_token, verify_token
    from labelloop.local.stack import LocalStack

    monkeypatch.delenv("LABELLOOP_CLIENT_ID", raising=False)
    monkeypatch.delenv("LABELLOOP_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)

    def stack() -> LocalStack:
        return LocalStack(tmp_path, port=0, stage="t", retry_seconds=1,
                          api_handler=f"{__name__}.stack_api_handler",
                          queue_handlers={"LABELLOOP_TRAINING_QUEUE_URL":
                                          f"{__name__}.stack_training_handler"})

    with stack() as s:
        assert re.fullmatch(r"client-[a-z0-9]{12}", s.client_id) and len(s.client_secret) >= 40
        # Registered for real: the credentials get a token that verifies.
        token, _ = issue_token(s.client_id, s.client_secret)
        assert verify_token(f"Bearer {token}") == s.client_id
        creds = tmp_path / "credentials.json"
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        assert os.environ["AWS_ENDPOINT_URL"] == s.env["AWS_ENDPOINT_URL"]
        assert os.environ["LABELLOOP_TABLE"] == "labelloop-t-main"
        _, data = _request(s.url, "GET", "/v0.9/functions")
        assert json.loads(data) == {"path": "/v0.9/functions", "table": "labelloop-t-main"}
        sqs = _client("sqs")
        sqs.send_message(QueueUrl=os.environ["LABELLOOP_TRAINING_QUEUE_URL"], MessageBody="go")
        assert s.wait_idle(timeout=10)
        handled = _client("dynamodb").query(
            TableName="labelloop-t-main", KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "handled"}})["Items"]
        assert [h["sk"]["S"] for h in handled] == ["go"]
        # In a process of its own, as a Lambda function's container: not the API's.
        assert int(handled[0]["pid"]["N"]) not in (os.getpid(), 0)
        # Below the API's priority (this process's), so that a training run does not starve it.
        assert int(handled[0]["nice"]["N"]) == os.getpriority(os.PRIO_PROCESS, 0) + NICENESS
        assert handled[0]["function"]["S"] == "labelloop-t-training"
        _client("dynamodb").put_item(TableName="labelloop-t-main",
                                     Item={"pk": {"S": "kept"}, "sk": {"S": "x"}})
        first = (s.client_id, s.client_secret)
        _request(s.url, "GET", "/hold")
    assert "AWS_ENDPOINT_URL" not in os.environ and "LABELLOOP_TABLE" not in os.environ

    with stack() as s:
        assert (s.client_id, s.client_secret) == first
        for key in ("kept", "held"):  # held: written at the stop, through moto, then saved
            item = _client("dynamodb").get_item(TableName="labelloop-t-main",
                                                Key={"pk": {"S": key}, "sk": {"S": "x"}})
            assert "Item" in item, key


def test_client_credentials_can_come_from_the_environment(tmp_path, monkeypatch):
    from labelloop.local.stack import load_credentials

    monkeypatch.setenv("LABELLOOP_CLIENT_ID", "client-fixed")
    monkeypatch.setenv("LABELLOOP_CLIENT_SECRET", "s3cret")
    creds = load_credentials(tmp_path)
    assert (creds.client_id, creds.client_secret) == ("client-fixed", "s3cret")
    assert not (tmp_path / "credentials.json").exists()
    monkeypatch.delenv("LABELLOOP_CLIENT_SECRET")
    with pytest.raises(ValueError):
        load_credentials(tmp_path)


def test_cli_parser(monkeypatch):
    import argparse

    from labelloop.cli import local

    calls = []
    monkeypatch.setattr(local, "run_local", lambda *a, **kw: calls.append((a, kw)))
    parser = argparse.ArgumentParser()
    local.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["local"])
    assert (args.port, args.data_dir) == (5000, Path(".labelloop"))
    args.func(args)
    assert calls.pop() == ((Path(".labelloop"),), {
        "port": 5000, "ephemeral": False, "example": False, "example_images": None,
        "verbose": False, "allow_loopback_image_urls": False})
    args = parser.parse_args(["local", "--port", "5001", "--data-dir", "/tmp/x", "--verbose",
                              "--example", "--example-images", "/tmp/digits",
                              "--allow-loopback-image-urls"])
    args.func(args)
    assert calls.pop() == ((Path("/tmp/x"),), {
        "port": 5001, "ephemeral": False, "example": True, "example_images": Path("/tmp/digits"),
        "verbose": True, "allow_loopback_image_urls": True})


def test_the_terminal_shows_the_story_and_the_logs_go_to_the_data_directory(tmp_path,
                                                                              encoder_dir):
    data, out = tmp_path / "data", tmp_path / "terminal.txt"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "LABELLOOP_CLIENT", "POWERTOOLS_LOG_LEVEL"))}
    env["LABELLOOP_ENCODER_DIR"] = str(encoder_dir)
    with out.open("w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "labelloop.cli", "local", "--port", "0",
                                 "--data-dir", str(data), "--ephemeral"],
                                stdout=f, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        # The SIGTERM handler is installed once the banner is out: wait for it.
        while "Ctrl-C to stop" not in out.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.05)
        url = next(line.split()[-1] for line in out.read_text().splitlines()
                   if line.strip().startswith("API "))
        conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
        conn.request("GET", "/v1/functions", headers={"Authorization": "Bearer nope"})
        assert conn.getresponse().status == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    terminal, log = out.read_text(), (data / "stack.log").read_text()
    assert f"logs: {data / 'stack.log'}" in terminal and "stopping: saving state" in terminal
    assert '"level"' not in terminal  # not one JSON log line
    assert '"service":"labelloop-api"' in log  # the API's JSON lines go there
    assert '"GET /v1/functions HTTP/1.1\\" 401' in log  # the request's line, in the file
    assert stat.S_IMODE((data / "stack.log").stat().st_mode) == 0o600


@pytest.mark.parametrize("how", ["sent, close() skipped", "dropped unsent"])
def test_deferred_work_runs_even_when_the_server_skips_close(how):
    """werkzeug's server skips a body's close() when the client resets the connection while
    it drains the request: the request's deferred work must run all the same."""
    from werkzeug.test import EnvironBuilder

    from labelloop import afterwork

    done: list[str] = []

    def handler(event, context):
        with afterwork.collect(context.aws_request_id):
            afterwork.later(done.append, event["rawPath"])
        return {"statusCode": 200, "body": "ok"}

    runner = afterwork.Runner()
    previous = afterwork.install(runner)
    try:
        gw = Gateway(handler, runner=runner)
        body = gw(EnvironBuilder(path="/later", method="POST").get_environ(),
                  lambda status, headers, exc_info=None: None)
        if how == "sent, close() skipped":
            assert b"".join(body) == b"ok"
        else:
            del body
        assert runner.wait_idle(timeout=5) and done == ["/later"]
    finally:
        afterwork.install(previous)


def test_the_gateway_keeps_connections_and_runs_deferred_work_after_the_answer_is_out():
    """A request's deferred work starts once its answer has reached the client and ends
    before the next request on that connection is handled (as Lambda gives an environment
    its next invoke only then); the connection stays open in between."""
    from labelloop import afterwork

    release, log = threading.Event(), []

    def handler(event, context):
        log.append(f"handle {event['rawPath']}")
        with afterwork.collect(context.aws_request_id):
            afterwork.later(lambda: (release.wait(10), log.append("deferred work done")))
        return {"statusCode": 200, "body": event["rawPath"]}

    runner = afterwork.Runner()
    previous = afterwork.install(runner)
    try:
        with Gateway(handler, runner=runner) as gw:
            host, port = gw.url.removeprefix("http://").split(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            conn.request("GET", "/one")
            first = conn.getresponse()
            # The whole answer, while the deferred work still waits for `release`.
            assert first.read() == b"/one" and not first.will_close
            sock = conn.sock
            threading.Timer(0.2, release.set).start()
            conn.request("GET", "/two")
            assert conn.getresponse().read() == b"/two"
            assert conn.sock is sock  # the same connection
            assert log[:3] == ["handle /one", "deferred work done", "handle /two"]
            assert runner.wait_idle(timeout=10)
    finally:
        release.set()
        afterwork.install(previous)


def _token_status(url: str, client_id: str, secret: str) -> int:
    response, _ = _request(url, "POST", "/connect/token",
                         f"client_id={client_id}&client_secret={secret}".encode(),
                           [("Content-Type", "application/x-www-form-urlencoded")])
    return response.status


def test_local_secrets_stay_in_the_data_dir_and_clients_are_added_from_the_cli(
        tmp_path, monkeypatch, capsys):
    from labelloop.cli.main import main
    from labelloop.local.stack import LocalStack

    for var in ("LABELLOOP_CLIENT_ID", "LABELLOOP_CLIENT_SECRET", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    data = tmp_path / "data"
    # A data directory from before: the key in the local Secrets Manager.
    with MotoServer(data) as moto:
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint)
        for k, v in AWS_ENV.items():
            monkeypatch.setenv(k, v)
        _client("secretsmanager").create_secret(Name="labelloop-t-signing-key",
                                                SecretString="the-old-key")
    monkeypatch.delenv("AWS_ENDPOINT_URL")

    def create_client() -> dict:
        main(["clients", "create", "--local", "--data-dir", str(data)])
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    with LocalStack(data, port=0, stage="t") as s:
        key = data / "signing.key"
        assert key.read_text() == "the-old-key"  # moved: tokens signed before stay valid
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert _client("secretsmanager").list_secrets()["SecretList"] == []
        # The local AWS answers only the data directory's access key id.
        assert os.environ["AWS_ACCESS_KEY_ID"] == (data / "aws-access-key").read_text()
        import boto3
        from botocore.exceptions import ClientError

        stranger = boto3.client("dynamodb", aws_access_key_id="local",
                                aws_secret_access_key="local")
        with pytest.raises(ClientError) as refused:
            stranger.scan(TableName="labelloop-t-main")
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert _token_status(s.url, s.client_id, s.client_secret) == 200
        live = create_client()  # registered in the running stack at once
        assert live["url"] == s.url
        assert _token_status(s.url, live["client_id"], live["client_secret"]) == 200
        assert _token_status(s.url, live["client_id"], "wrong") == 401
        clients_file = (data / "clients.json").read_text()
        assert live["client_secret"] not in clients_file
        assert stat.S_IMODE((data / "clients.json").stat().st_mode) == 0o600
    later = create_client()  # no stack running: registered at its next start
    assert later["url"] == "http://127.0.0.1:5000"
    with LocalStack(data, port=0, stage="t", persist=False) as s:  # moto state not kept
        assert key.read_text() == "the-old-key"
        for c in (live, later):
            assert _token_status(s.url, c["client_id"], c["client_secret"]) == 200


def test_malloc_arenas_can_be_limited_on_this_libc():
    """`labelloop local` and its worker process limit glibc's malloc arenas (RSS under load);
    the call must take effect here, not fail quietly."""
    from labelloop.local import limit_malloc_arenas

    assert limit_malloc_arenas() is True
