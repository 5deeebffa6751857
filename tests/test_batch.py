"""Batch invoke: the API and the worker's real handlers against moto (in process), then the
local stack's poller, its DLQ and the CLI (`invoke --batch`) over HTTP."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from conftest import CONTEXT, isolate_stack_env, trained_function
from test_api import LABELS, SAMPLES, make_function
from test_capture import TEXTS, policy, queue

from labelloop.data.objects import results_prefix
from labelloop.local.poller import sqs_event
from labelloop.usecases import batch as B

ARN = "arn:aws:sqs:us-east-1:000000000000:labelloop-test-batch-invoke"


def jobs(fid: str) -> str:
    return f"/v1/functions/{fid}/batch-invokes"


def submit(api, fid, items, **extra) -> dict:
    status, job, _ = api.call("POST", jobs(fid), {"items": items, **extra})
    assert status == 200, job
    return job


def receive(api) -> list[dict]:
    return boto3.client("sqs").receive_message(
        QueueUrl=api.env["LABELLOOP_BATCH_QUEUE_URL"], MaxNumberOfMessages=10,
        AttributeNames=["All"]).get("Messages", [])


def deliver(messages: list[dict], receive_count: int | None = None) -> set[str]:
    """The worker's handler on one SQS event, as Lambda calls it; the failed message ids."""
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    from labelloop.handlers.batch import handler

    event = sqs_event(messages, ARN)
    if receive_count is not None:
        for r in event["Records"]:
            r["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    try:
        return {f["itemIdentifier"] for f in handler(event, CONTEXT)["batchItemFailures"]}
    except BatchProcessingError:  # every record failed: Lambda retries the whole batch
        return {m["MessageId"] for m in messages}


def drain(api) -> int:
    """Run the worker on everything queued, deleting what succeeded; the messages run."""
    sqs, url, n = boto3.client("sqs"), api.env["LABELLOOP_BATCH_QUEUE_URL"], 0
    while messages := receive(api):
        failed = deliver(messages)
        assert not failed
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        n += len(messages)
    return n


def send_direct(api, body) -> str:
    return boto3.client("sqs").send_message(
        QueueUrl=api.env["LABELLOOP_BATCH_QUEUE_URL"],
        MessageBody=body if isinstance(body, str) else json.dumps(body))["MessageId"]


def status(api, fid, job_id) -> dict:
    code, job, _ = api.call("GET", f"{jobs(fid)}/{job_id}")
    assert code == 200, job
    return job


def all_results(api, fid, job_id) -> list[dict]:
    lines, query = [], ""
    while True:
        code, page, _ = api.call("GET", f"{jobs(fid)}/{job_id}/results", query=query)
        assert code == 200, page
        lines += page["results"]
        if "next" not in page:
            return lines
        query = f"after={page['next']}"


def bare(fid: str) -> str:
    return fid.removeprefix("function_")


def result_versions(aws, fid, job_id) -> dict[str, int]:
    """S3 object versions per key under the job's results prefix (the bucket is versioned)."""
    resp = boto3.client("s3").list_object_versions(
        Bucket=aws["LABELLOOP_BUCKET"], Prefix=results_prefix(bare(fid), job_id))
    out: dict[str, int] = {}
    for v in resp.get("Versions", []):
        out[v["Key"]] = out.get(v["Key"], 0) + 1
    return out


def invoke_records(aws) -> list[dict]:
    return boto3.resource("dynamodb").Table(aws["LABELLOOP_INVOKES_TABLE"]).scan()["Items"]


# -- in process: the API and the worker's handler against moto -----------------------------

def test_a_multi_part_job_gives_complete_correct_results(api, aws, monkeypatch):
    monkeypatch.setattr(B, "PART_ITEMS", 3)
    monkeypatch.setattr(B, "RESULTS_PAGE", 4)
    fid = make_function(api)
    texts = [*TEXTS, "I need a copy of my invoice"]
    items = [{"id": f"t{i}", "data": t} for i, t in enumerate(texts[:-1])] + [{"data": texts[-1]}]
    job = submit(api, fid, items)
    assert (job["state"], job["total"], job["parts"], job["processed"]) == ("Queued", 7, 3, 0)
    assert job["id"].startswith("batch_")
    assert job["resultsPrefix"].endswith(f"/batches/{bare(fid)}/{job['id']}/")

    assert drain(api) == 3
    done = status(api, fid, job["id"])
    assert (done["state"], done["processed"], done["failed"], done["partsDone"]) == (
        "Succeeded", 7, 0, 3)
    # Paged by whole parts (at least 4 lines a page here): parts 0-1, then part 2.
    code, first, headers = api.call("GET", f"{jobs(fid)}/{job['id']}/results")
    assert code == 200 and len(first["results"]) == 6 and first["next"] == 1
    assert 'after=1>; rel="next"' in headers["Link"]
    lines = all_results(api, fid, job["id"])
    assert [x["index"] for x in lines] == list(range(7))
    assert [x.get("id") for x in lines] == [f"t{i}" for i in range(6)] + [None]
    # Each as the single invoke answers it (batched embeddings equal single ones).
    for text, line in zip(texts, lines, strict=True):
        code, one, _ = api.call("POST", f"/v1/functions/{fid}/invoke", {"data": text},
                                query="capture=false")
        assert code == 200
        assert line["labelName"] == one["labelName"] and line["labelId"] == one["labelId"]
        assert abs(line["confidence"] - one["confidence"]) < 1e-3
        assert line["modelVersion"] == one["modelVersion"] == 1
    assert sorted(result_versions(aws, fid, job["id"])) == [
        f"batches/{bare(fid)}/{job['id']}/{p:05d}.jsonl" for p in range(3)]
    # Invoke records, as for HTTP invokes: the batch's seven (plus the seven compared with).
    batch_ids = {x["sampleId"].removeprefix("sample_") for x in lines}
    records = {r["sample_id"]: r for r in invoke_records(aws)}
    assert len(records) == 14 and batch_ids <= set(records)
    assert {records[s].get("external_id") for s in batch_ids} == {f"t{i}" for i in range(6)} | {
        None}


def test_a_bad_item_gets_an_error_line_and_the_others_succeed(api, aws):
    fid = make_function(api)
    job = submit(api, fid, [{"id": "empty", "data": ""}, {"id": "ok", "data": TEXTS[0]},
                            {"id": "blank", "data": "   "}])
    drain(api)
    lines = {x["id"]: x for x in all_results(api, fid, job["id"])}
    assert "data" in lines["empty"]["error"] and "data" in lines["blank"]["error"]
    assert "labelName" not in lines["empty"] and lines["ok"]["labelName"] in LABELS
    done = status(api, fid, job["id"])
    assert (done["state"], done["processed"], done["failed"]) == ("Succeeded", 3, 2)
    # Sent straight to the queue (no jobId): per-item checks there too; the job is named
    # after the message and readable through the API.
    mid = send_direct(api, {"functionId": fid, "items": [
        {"id": "n", "data": 5}, {"id": ["x"], "data": "refund me"},
        {"id": 7, "data": "the export button crashes"}]})
    drain(api)
    direct = status(api, fid, mid)
    assert (direct["state"], direct["total"], direct["processed"], direct["failed"]) == (
        "Succeeded", 3, 3, 2)
    lines = all_results(api, fid, mid)
    assert "data" in lines[0]["error"] and "id" in lines[1]["error"]
    assert lines[2]["labelName"] == "bug" and lines[2]["id"] == 7


def test_a_redelivered_message_gives_one_result_object_and_counts_once(api, aws):
    fid = make_function(api)
    job = submit(api, fid, [{"data": t} for t in TEXTS[:3]])
    (message,) = receive(api)
    assert deliver([message]) == set()
    first = all_results(api, fid, job["id"])
    assert deliver([message]) == set()  # the same message again: answered from its record
    assert list(result_versions(aws, fid, job["id"]).values()) == [1]
    done = status(api, fid, job["id"])
    assert (done["processed"], done["partsDone"], done["state"]) == (3, 1, "Succeeded")
    assert len(invoke_records(aws)) == 3
    # Even once its idempotency record is gone (expired, or a run that died before
    # saving it), a redelivery neither counts twice nor duplicates records or lines.
    table = boto3.resource("dynamodb").Table(aws["LABELLOOP_IDEMPOTENCY_TABLE"])
    keys = [{"id": i["id"]} for i in table.scan()["Items"]]
    assert len(keys) == 1
    for k in keys:
        table.delete_item(Key=k)
    assert deliver([message]) == set()
    assert list(result_versions(aws, fid, job["id"]).values()) == [2]  # rewritten in place
    assert all_results(api, fid, job["id"]) == first
    done = status(api, fid, job["id"])
    assert (done["processed"], done["partsDone"]) == (3, 1)
    assert len(invoke_records(aws)) == 3


def test_worker_failures_are_retried_and_a_deleted_function_is_dropped(api, aws):
    fid = make_function(api)
    unknown = send_direct(api, {"functionId": "function_0000000000zzzzzzzzzzzz",
                                "items": [{"data": "x"}]})
    malformed = send_direct(api, "not json")
    no_items = send_direct(api, {"functionId": fid, "items": []})
    messages = receive(api)
    assert deliver(messages) == {unknown, malformed, no_items}
    # A function deleted after its job was queued: the message is done with, quietly.
    job = submit(api, fid, [{"data": TEXTS[0]}])
    assert api.call("DELETE", f"/v1/functions/{fid}")[0] == 200
    (message,) = [m for m in receive(api) if json.loads(m["Body"]).get("jobId") == job["id"]]
    assert deliver([message]) == set()
    assert result_versions(aws, fid, job["id"]) == {}


def test_the_last_failed_attempt_ends_the_job_as_failed(api, aws):
    fid = make_function(api, train=False)  # no model: every attempt fails
    body = {"functionId": fid, "jobId": "nightly-1", "part": 0, "parts": 2,
            "items": [{"data": "a"}, {"data": "b"}]}
    send_direct(api, body)
    (message,) = receive(api)
    assert deliver([message], receive_count=1) == {message["MessageId"]}
    assert api.call("GET", f"{jobs(fid)}/nightly-1")[0] == 404  # nothing counted yet
    assert deliver([message], receive_count=3) == {message["MessageId"]}  # then the DLQ
    job = status(api, fid, "nightly-1")
    assert (job["state"], job["partsDone"], job["partsFailed"], job["failed"]) == (
        "Running", 1, 1, 2)  # one of its two parts is still to come
    assert "NotReady" in job["lastError"]


def test_capture_applies_to_batch_items(api):
    fid = make_function(api)
    policy(api, fid, {"random": {"rate": 1.0, "quota": 10}, "uncertainty": {"quota": 0},
                      "rare_class": {"quota": 0}})
    job = submit(api, fid, [{"data": t} for t in TEXTS[:4]])
    drain(api)
    captured = queue(api, fid)
    assert {i["captureReason"] for i in captured} == {"random"}
    assert {i["id"] for i in captured} == {x["sampleId"] for x in
                                           all_results(api, fid, job["id"])}
    assert all(i["invokePrediction"]["modelVersion"] == 1 for i in captured)
    # Opted out per job.
    submit(api, fid, [{"data": t} for t in TEXTS[4:]], capture=False)
    drain(api)
    assert len(queue(api, fid)) == 4


def test_api_errors_name_the_field(api):
    fid = make_function(api)
    for body, field in (({}, "items"), ({"items": []}, "items"),
                        ({"items": [{"data": "ok"}, {"data": 5}]}, "items.1.data"),
                        ({"items": [{"id": "x" * 2000, "data": "ok"}]}, "items.0.id"),
                        ({"items": [{"data": "ok"}], "capture": "maybe"}, "capture")):
        code, err, _ = api.call("POST", jobs(fid), body)
        assert code == 400 and err["message"].startswith(field), (body, err)
    job = submit(api, fid, [{"data": "ok"}])
    other = api.token("client-b", "secret-b")
    assert api.call("POST", jobs(fid), {"items": [{"data": "x"}]}, token=other)[0] == 404
    assert api.call("GET", f"{jobs(fid)}/{job['id']}", token=other)[0] == 404
    assert api.call("GET", f"{jobs(fid)}/{job['id']}/results", token=other)[0] == 404
    code, err, _ = api.call("GET", f"{jobs(fid)}/batch_nosuchjob")
    assert code == 404 and "batch job" in err["message"]
    assert api.call("GET", f"{jobs(fid)}/{job['id']}/results", query="after=-1")[0] == 400
    untrained = make_function(api, samples=[], train=False)
    code, err, _ = api.call("POST", jobs(untrained), {"items": [{"data": "x"}]})
    assert code == 409 and "no model" in err["message"]


# -- the local stack: its SQS poller runs the same worker; DLQ; the CLI ----------------------
# (last in this module: moto's in-process mock above must not run while the stack's pollers
# talk to its server)

@pytest.fixture(scope="module")
def stack(tmp_path_factory, encoder_dir):
    from labelloop.client import Client
    from labelloop.local.stack import LocalStack

    mp = pytest.MonkeyPatch()
    isolate_stack_env(mp, encoder_dir)
    with LocalStack(tmp_path_factory.mktemp("stack"), port=0, stage="batch", retry_seconds=1,
                    persist=False) as s:
        client = Client(s.url, s.client_id, s.client_secret)
        fid = trained_function(s, client, "support", LABELS, SAMPLES)
        s.fid, s.client = fid, client
        yield s
    mp.undo()


def test_cli_batch_invoke_writes_merged_results_in_input_order(stack, tmp_path, capsys,
                                                                monkeypatch):
    from labelloop.cli import invoke
    from labelloop.cli.main import build_parser

    # Small jobs and parts, so that the merge spans several jobs of several parts.
    monkeypatch.setattr(invoke, "BATCH_BODY_BYTES", 200)
    monkeypatch.setattr(B, "PART_ITEMS", 2)
    src = tmp_path / "texts.jsonl"
    src.write_text("".join(json.dumps({"id": f"q{i}", "data": t}) + "\n"
                           for i, t in enumerate(TEXTS)))
    out = tmp_path / "results.jsonl"
    parser = build_parser()
    args = parser.parse_args(["invoke", stack.fid, "--batch", str(src), "--out", str(out),
                              "--url", stack.url, "--client-id", stack.client_id,
                              "--client-secret", stack.client_secret])
    args.func(args)
    printed = capsys.readouterr().out
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in lines] == [f"q{i}" for i in range(len(TEXTS))]
    assert all(x["labelName"] in LABELS for x in lines)
    for text, line in zip(TEXTS, lines, strict=True):
        assert line["labelName"] == stack.client.invoke(stack.fid, text, capture=False)[
            "labelName"]
    assert f"{len(TEXTS)} classified, 0 failed" in printed and "jobs" in printed
    # A text file, one text per line, results to stdout (the summary to stderr).
    txt = tmp_path / "texts.txt"
    txt.write_text("\n".join(TEXTS[:2]) + "\n")
    args = parser.parse_args(["invoke", stack.fid, "--batch", str(txt), "--url", stack.url,
                              "--client-id", stack.client_id,
                              "--client-secret", stack.client_secret])
    args.func(args)
    captured = capsys.readouterr()
    printed = [json.loads(x) for x in captured.out.splitlines()]
    assert [x["labelName"] for x in printed] == [x["labelName"] for x in lines[:2]]
    assert "2 classified, 0 failed" in captured.err


def test_a_poison_message_ends_in_the_dlq(stack):
    sqs = boto3.session.Session().client("sqs")  # with the stack's access key
    url = stack.env["LABELLOOP_BATCH_QUEUE_URL"]
    dlq = sqs.get_queue_url(QueueName=url.rsplit("/", 1)[-1] + "-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(
        {"functionId": stack.fid, "items": "not a list"}))
    deadline = time.monotonic() + 30
    while True:
        parked = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages", [])
        if parked:
            break
        assert time.monotonic() < deadline, "not in the DLQ after 30 s"
    assert json.loads(parked[0]["Body"])["items"] == "not a list"
    # The worker goes on: a good message after it is served.
    job = stack.client.batch_invoke(stack.fid, [{"data": TEXTS[0]}])
    assert stack.client.wait_batch(stack.fid, job["id"], timeout=30)["state"] == "Succeeded"


@pytest.mark.parametrize("n", [0, 1, 16, 17, 64, 80, 81, 250])
def test_slabs_cover_every_text_once_and_end_short(n):
    slabs = B._slabs(n)
    assert [i for a, b in slabs for i in range(a, b)] == list(range(n))
    assert all(0 < b - a <= B.SLAB for a, b in slabs)
    if n > B.LAST_SLAB:
        assert slabs[-1][1] - slabs[-1][0] == B.LAST_SLAB
