"""Two clients' worth of real state behind the real API handler, against moto in-process:
what the fuzzing profile (tests/test_fuzz.py, scripts/fuzz_api.py) and the tenant matrix
(tests/test_tenants.py) send their requests into. Each client owns a trained function (two
model versions, labels, annotated and captured samples, stored invokes, a batch job that
ran) and an untrained one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import boto3
import pytest
from conftest import Api, install_containers, sqs_event
from test_api import LABELS, SAMPLES

CLIENTS = {"client-a": "secret-a", "client-b": "secret-b"}
ENV = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test",
       "AWS_SECRET_ACCESS_KEY": "test", "POWERTOOLS_METRICS_DISABLED": "1",
       "LABELLOOP_TRAIN_DEBOUNCE_SECONDS": "0", "LABELLOOP_CACHE_SECONDS": "0"}
INVOKES = ["my card was billed two times", "the page is blank after login",
           "where is my receipt", "clicking export freezes everything"]


@dataclass
class Tenant:
    client_id: str
    token: str
    # id kind → this client's ids of that kind, as the API shows them (prefixed)
    ids: dict[str, list[str]] = field(default_factory=dict)


@contextmanager
def moto_api(encoders) -> Iterator[Api]:
    """A fresh moto account with labelloop's resources and both clients, for a whole module
    (the conftest `api` fixture does the same per test)."""
    from moto import mock_aws

    from labelloop import container
    from labelloop.auth import register_client
    from labelloop.resources import create_all

    with pytest.MonkeyPatch.context() as mp, mock_aws():
        for k, v in ENV.items():
            mp.setenv(k, v)
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        env = create_all(boto3.Session(), "test")
        for k, v in env.items():
            mp.setenv(k, v)
        install_containers(encoders)
        for cid, secret in CLIENTS.items():
            register_client(cid, secret)
        try:
            yield Api(env, *next(iter(CLIENTS.items())))
        finally:
            container.reset()


def _ok(result) -> dict | list:
    status, body, _ = result
    assert status == 200, body
    return body


def populate(api: Api, client_id: str) -> Tenant:
    t = Tenant(client_id, api.token(client_id, CLIENTS[client_id]))

    def call(method, path, body=None, query=""):
        return _ok(api.call(method, path, body, query=query, token=t.token))

    fid = call("POST", "/v1/functions", {"name": f"support-{client_id}",
                                         "storeInvokes": True})["id"]
    labels = [call("POST", f"/v1/functions/{fid}/labels", {"name": n, "description": d})["id"]
              for n, d in LABELS.items()]
    samples = [call("POST", f"/v1/functions/{fid}/samples",
                    {"data": text, "annotation": {"labelName": label}})["id"]
               for text, label in SAMPLES]
    _train(api)
    call("POST", f"/v1/functions/{fid}/samples", {"data": "refund my last payment please",
                                                  "annotation": {"labelName": "billing"}})
    call("POST", f"/v1/functions/{fid}/train", {"force": True})
    _train(api)
    invoked = [call("POST", f"/v1/functions/{fid}/invoke", {"data": text})["sampleId"]
               for text in INVOKES]
    captured = [s["id"] for s in call("GET", f"/v1/functions/{fid}/samples",
                                      query="origin=InvokeCapture")]
    job = call("POST", f"/v1/functions/{fid}/batch-invokes",
               {"items": [{"id": "x1", "data": "charged twice"}, {"data": "it crashes"}]})
    _run_batches(api)
    untrained = call("POST", "/v1/functions", {"name": f"empty-{client_id}"})["id"]
    versions = [v["version"] for v in call("GET", f"/v1/functions/{fid}/models")]
    assert len(versions) >= 2, versions
    t.ids = {"function": [fid, untrained], "label": labels,
             "sample": samples + invoked + captured, "job": [job["id"]],
             "version": [str(v) for v in versions]}
    return t


def _train(api: Api) -> None:
    assert all(not r["batchItemFailures"] for r in api.train())


def _run_batches(api: Api) -> None:
    """The batch worker on every queued part, as its event source mapping would."""
    from conftest import CONTEXT

    from labelloop.handlers.batch import handler

    sqs, url = boto3.client("sqs"), api.env["LABELLOOP_BATCH_QUEUE_URL"]
    while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                      AttributeNames=["All"]).get("Messages", []):
        result = handler(sqs_event(msgs, "batch"), CONTEXT)
        assert not result.get("batchItemFailures"), result
        for m in msgs:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def document(api: Api) -> dict:
    status, doc, _ = api.call("GET", "/openapi.json", token=None)
    assert status == 200
    return doc if isinstance(doc, dict) else json.loads(doc)
