"""Acknowledged means durable on the local stack: SIGKILL at any moment loses nothing that was
acknowledged, and a restart replays the log into the same state (ids, receipt handles)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

_MOTO_CHILD = r"""
import itertools, json, os, sys, threading

import boto3
from botocore.config import Config

from labelloop.local import wait_for_signal
from labelloop.local.aws import MotoServer

data, mode = sys.argv[1], sys.argv[2]
server = MotoServer(data).start()
os.environ.update(AWS_ENDPOINT_URL=server.endpoint, AWS_ACCESS_KEY_ID="local",
                  AWS_SECRET_ACCESS_KEY="local", AWS_DEFAULT_REGION="us-east-1")
ddb, s3, sqs = (boto3.client(n, config=Config(retries={"total_max_attempts": 1}))
                for n in ("dynamodb", "s3", "sqs"))
if mode == "write":
    ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    s3.create_bucket(Bucket="bucket")
    s3.put_bucket_versioning(Bucket="bucket", VersioningConfiguration={"Status": "Enabled"})
    url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "900"})["QueueUrl"]
    for i in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    print("RECEIVED", json.dumps([[m["Body"], m["MessageId"], m["ReceiptHandle"]] for m in got]),
          flush=True)

    def writer(k):
        for i in itertools.count():
            ddb.put_item(TableName="t", Item={"pk": {"S": f"{k}#{i}"}})
            v = s3.put_object(Bucket="bucket", Key=f"k{k}", Body=f"{i}".encode())["VersionId"]
            sys.stdout.write(f"ACK {k} {i} {v}\n")  # one write: whole lines from 4 threads
            sys.stdout.flush()

    for k in range(4):
        threading.Thread(target=writer, args=(k,), daemon=True).start()
    wait_for_signal()
else:
    url = sqs.get_queue_url(QueueName="q")["QueueUrl"]
    handle = sys.argv[3]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)  # held across the restart
    items = [i["pk"]["S"] for i in ddb.scan(TableName="t")["Items"]]
    versions = {v["VersionId"]: v["Key"]
                for v in s3.list_object_versions(Bucket="bucket").get("Versions", [])}
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    print(json.dumps({"items": items, "versions": versions,
                      "messages": sorted(m["Body"] for m in messages),
                      "replayed": server.replayed_records}))
    server.stop()
"""


def test_sigkill_of_the_local_aws_loses_nothing_acknowledged_and_replays_ids(tmp_path):
    data = tmp_path / "data"
    child = subprocess.Popen([sys.executable, "-c", _MOTO_CHILD, str(data), "write"],
                             stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    kill_after = random.Random(17).randrange(40, 120)
    try:
        while sum(line.startswith("ACK") for line in lines) < kill_after:
            line = child.stdout.readline()
            assert line, "the child died before writing"
            lines.append(line.strip())
        child.kill()  # no SIGTERM: no final snapshot
        lines += child.communicate(timeout=10)[0].splitlines()
    finally:
        child.kill()
    received = json.loads(next(line for line in lines if line.startswith("RECEIVED"))[9:])
    # The line being written at the kill may be cut short: only whole ones count.
    acked = [line.split() for line in lines if line.startswith("ACK") and line.count(" ") == 3]
    assert not (data / "moto.pickle").exists()  # all of it comes from the log

    report = subprocess.run(
        [sys.executable, "-c", _MOTO_CHILD, str(data), "read", received[1][2]],
        capture_output=True, text=True, timeout=60)
    assert report.returncode == 0, report.stderr[-2000:]
    state = json.loads(report.stdout.splitlines()[-1])
    assert state["replayed"] > len(acked)
    assert {f"{k}#{i}" for _, k, i, _ in acked} <= set(state["items"])
    # S3 version ids are moto's random: the replay made the very same ones.
    assert {v: f"k{k}" for _, k, _, v in acked}.items() <= state["versions"].items()
    # Both received messages are settled: one deleted before the kill, one after the restart
    # with the receipt handle from before it. The rest were never received.
    assert state["messages"] == sorted({"m0", "m1", "m2", "m3", "m4"}
                                       - {received[0][0], received[1][0]})


# --- the whole stack, killed mid-stream ---------------------------------------------------

CLIENT_ID, CLIENT_SECRET = "client-durable", "durable-secret-0123456789abcdef"
SUBJECTS = ["invoice", "refund", "crash", "login", "export", "receipt", "password", "upload"]
PROBLEMS = ["is wrong", "never arrived", "fails on mobile", "shows an error",
            "takes forever", "was charged twice", "is missing", "looks broken"]


def texts(prefix: str, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"{prefix} {k}: my {rng.choice(SUBJECTS)} {rng.choice(PROBLEMS)}" for k in range(n)]


def workers_of(pid: int) -> list[int]:
    """Live worker processes a stack with this pid started (their argv names it)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if argv[1:4] == [b"-m", b"labelloop.local.workers", str(pid).encode()] and state != "Z":
            found.append(int(proc.name))
    return found


class StackProcess:
    """`labelloop local` in a child process on a data directory, killed and restarted."""

    def __init__(self, data_dir: Path, encoder_dir: Path):
        self.data_dir = data_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.env.update(LABELLOOP_ENCODER_DIR=str(encoder_dir),
                        LABELLOOP_CLIENT_ID=CLIENT_ID, LABELLOOP_CLIENT_SECRET=CLIENT_SECRET)
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.started_seconds = 0.0
        self.outputs: list[Path] = []

    def start(self) -> StackProcess:
        started = time.monotonic()
        # Output to a file: a pipe nobody drains would block the stack's logging when full.
        out = self.data_dir.parent / f"stack-{len(self.outputs)}.log"
        self.outputs.append(out)
        with out.open("w") as f:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "labelloop.cli", "local", "--port", "0",
                 "--data-dir", str(self.data_dir)],
                stdout=f, stderr=subprocess.STDOUT, text=True, env=self.env)
        while "Ctrl-C to stop" not in (text := out.read_text()):
            assert self.proc.poll() is None, text[-3000:]
            assert time.monotonic() - started < 60, "the stack did not start"
            time.sleep(0.05)
        self.url = next(line.split()[-1] for line in text.splitlines()
                        if line.strip().startswith("API "))
        self.started_seconds = time.monotonic() - started
        return self

    def client(self, retries: int = 3):
        from labelloop.client import Client

        return Client(self.url, CLIENT_ID, CLIENT_SECRET, retries=retries, backoff=0.1)

    def kill(self) -> None:
        assert workers_of(self.proc.pid), "the stack runs its queue workers in a child"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while workers_of(self.proc.pid):  # they die with it: none left behind
            assert time.monotonic() < deadline, "the workers outlived a SIGKILLed stack"
            time.sleep(0.05)

    def restart(self) -> StackProcess:
        self.kill()
        return self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, encoder_dir):
    from test_api import LABELS, SAMPLES

    s = StackProcess(tmp_path_factory.mktemp("durable") / "data", encoder_dir).start()
    try:
        client = s.client()
        fid = client.create_function("durable")["id"]
        for label, description in LABELS.items():
            client.create_label(fid, label, description)
        for text, label in SAMPLES:
            client.create_sample(fid, text, label)
        deadline = time.monotonic() + 90
        while client.get_function(fid).get("liveModelVersion") is None:
            assert time.monotonic() < deadline, "no model"
            time.sleep(0.2)
        s.fid, s.labels = fid, list(LABELS)
        yield s
    finally:
        s.stop()


def drive(work: list, act, threads: int, kill_after: int, stack: StackProcess) -> dict:
    """`act(client, item)` over `work` from several threads; SIGKILL once `kill_after` were
    acknowledged (the others still in flight). The acknowledged results, by item."""
    acked: dict = {}
    errors: list[Exception] = []
    lock = threading.Lock()
    items = iter(work)
    enough = threading.Event()

    def worker() -> None:
        client = stack.client(retries=0)
        while True:
            with lock:
                item = next(items, None)
            if item is None:
                return
            try:
                result = act(client, item)
            except Exception as e:
                errors.append(e)  # after the kill: the stack is gone, not acknowledged
                return
            with lock:
                acked[item] = result
                if len(acked) >= kill_after:
                    enough.set()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    while not enough.wait(0.2):
        assert not errors and any(t.is_alive() for t in pool), errors
    stack.kill()
    for t in pool:
        t.join(30)
    print(f"killed after {len(acked)} acknowledged, {len(errors)} in flight")
    return acked


def test_sigkill_during_a_2000_item_batch_job_keeps_its_progress_and_it_ends(stack):
    rng = random.Random(2)
    client = stack.client()
    client.set_capture_policy(stack.fid, {"random": {"rate": 1.0, "quota": 60}})
    items = [{"id": f"item-{k}", "data": text} for k, text in enumerate(texts("batch", 2000, 2))]
    job = client.batch_invoke(stack.fid, items)
    seen: list[tuple[int, int]] = []
    kill_at = rng.uniform(0.0, 1.5)  # seconds after the first part is done
    first_part = None
    while True:
        status = client.batch_job(stack.fid, job["id"])
        seen.append((status.get("partsDone") or 0, status.get("processed") or 0))
        if seen[-1][0] and first_part is None:
            first_part = time.monotonic()
        if first_part is not None and time.monotonic() - first_part >= kill_at:
            break
        assert status["state"] not in ("Succeeded", "Failed"), "ended before the kill"
        time.sleep(0.05)
    stack.restart()
    client = stack.client()
    after = client.batch_job(stack.fid, job["id"])
    assert (after["partsDone"], after["processed"]) >= max(seen)  # nothing went backwards
    ended = client.wait_batch(stack.fid, job["id"], timeout=120, poll=0.2)
    assert ended["partsDone"] == ended["parts"] and ended["partsDone"] >= max(seen)[0]
    results = list(client.batch_results(stack.fid, job["id"]))
    if ended["state"] == "Succeeded":
        assert ended["processed"] == len(items) == len(results)
        assert sorted(r["id"] for r in results) == sorted(i["id"] for i in items)
    else:
        assert ended["partsFailed"] > 0 and ended["processed"] == len(items)


def buffer_state(client, fid: str) -> tuple[dict, dict]:
    """Capture counters, and buffered (captured, not yet reviewed) samples, per strategy."""
    used = {s["name"]: s["used"] for s in client.capture_policy(fid)["strategies"]}
    buffered = {name: 0 for name in used}
    for sample in client.samples(fid):
        if sample.get("inReviewQueue"):
            buffered[sample["captureReason"]] += 1
    return used, buffered


def test_sigkill_during_a_burst_of_annotations_keeps_them_and_the_counters_exact(stack):
    rng = random.Random(3)
    client = stack.client()
    client.set_capture_policy(stack.fid, {"random": {"rate": 1.0, "quota": 300}})
    for text in texts("capture", 60, 3):
        client.invoke(stack.fid, text)
    previous = None
    while (state := buffer_state(client, stack.fid)) != previous:  # captures come after
        previous = state                                           # the responses
        time.sleep(0.5)
    captured = [s["id"] for s in client.samples(stack.fid) if s.get("inReviewQueue")]
    assert len(captured) >= 40
    labels = {sid: rng.choice(stack.labels) for sid in captured}

    def annotate(client, sid):
        return client.annotate(stack.fid, sid, labels[sid])

    acked = drive(captured, annotate, threads=4, kill_after=rng.randrange(10, 30), stack=stack)
    stack.start()
    client = stack.client()
    for sid in acked:
        sample = client.get_sample(stack.fid, sid)
        assert sample["annotation"]["labelId"] == acked[sid]["annotation"]["labelId"]
        assert not sample.get("inReviewQueue")
    used, buffered = buffer_state(client, stack.fid)
    assert used == buffered
    # Each acknowledged annotation freed its slot; the 4 in flight at the kill may have.
    before = previous[0]["random"] - len(acked)
    assert before - 4 <= used["random"] <= before



def test_sigkill_during_an_import_of_2000_samples_loses_no_acknowledged_sample(stack):
    rng = random.Random(1)
    work = texts("import", 2000, seed=1)
    kill_after = rng.randrange(40, 100)
    labels = {text: rng.choice([None, *stack.labels]) for text in work}

    def create(client, text):
        return client.create_sample(stack.fid, text, labels[text])

    acked = drive(work, create, threads=4, kill_after=kill_after, stack=stack)
    stack.start()
    stored = {s["id"]: s for s in stack.client().samples(stack.fid)}
    for text, sample in acked.items():
        assert stored[sample["id"]]["data"] == text
        assert (stored[sample["id"]].get("annotation") or {}).get("labelId") == \
            (sample.get("annotation") or {}).get("labelId")
    datas = [s["data"] for s in stored.values()]
    assert len(datas) == len(set(datas))  # nothing applied twice either


# --- compaction, older data directories, the access check ---------------------------------

AWS_ENV = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
           "AWS_DEFAULT_REGION": "us-east-1"}


def test_a_compaction_snapshots_in_a_child_and_later_writes_replay_on_top(tmp_path, monkeypatch):
    import boto3

    from labelloop.local.aws import MotoServer

    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    server = MotoServer(tmp_path).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="before")
    server.snapshot()  # forked: this process only rotated the log
    assert (tmp_path / "moto.pickle").exists()
    assert [p.name for p in (tmp_path / "wal").iterdir()] == ["00000001.log"]
    sqs.send_message(QueueUrl=url, MessageBody="after")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    # A crash now: the server is dropped without its final snapshot, the next one restores.
    server._server.shutdown()
    server._server.server_close()
    server.journal.log.close()
    again = MotoServer(tmp_path).start()
    try:
        assert again.replayed_records >= 2
        monkeypatch.setenv("AWS_ENDPOINT_URL", again.endpoint)
        sqs = boto3.client("sqs")
        # Received before the "crash", so visible again at once; same receipt handles.
        sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
        rest = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert sorted(m["Body"] for m in [*got[1:], *rest]) == sorted(
            {"before", "after"} - {got[0]["Body"]}) + [m["Body"] for m in got[1:]]
    finally:
        again.stop()
    assert not list((tmp_path / "wal").glob("0000000[0-2].log"))


def test_a_data_directory_from_before_the_log_still_loads(tmp_path, monkeypatch):
    import pickle

    import boto3
    from moto.backends import get_backend

    from labelloop.local.aws import SERVICES, MotoServer, _register_reducers

    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    with MotoServer() as server:  # in memory
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
        boto3.client("s3").create_bucket(Bucket="old-bucket")
        boto3.client("s3").put_object(Bucket="old-bucket", Key="k", Body=b"kept")
        _register_reducers()
        old = pickle.dumps({name: dict(get_backend(name)) for name in SERVICES})
    (tmp_path / "moto.pickle").write_bytes(old)  # the format before the log
    with MotoServer(tmp_path) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
        body = boto3.client("s3").get_object(Bucket="old-bucket", Key="k")["Body"].read()
        assert body == b"kept"


def test_the_access_check_refuses_other_keys_and_unsigned_requests(monkeypatch):
    import http.client

    import boto3
    from botocore.exceptions import ClientError

    from labelloop.local.aws import MotoServer

    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    with MotoServer(access_key="the-stack-key") as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "the-stack-key")
        answer = boto3.Session().client("sqs").list_queues()
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "someone-else")
        with pytest.raises(ClientError) as refused:
            boto3.Session().client("secretsmanager").list_secrets()
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        host, port = server.endpoint.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("POST", "/", body=b"{}", headers={
            "X-Amz-Target": "secretsmanager.ListSecrets",
            "Content-Type": "application/x-amz-json-1.1"})
        assert conn.getresponse().status == 403
