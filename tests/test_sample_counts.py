"""The metrics route's sample counts are kept with every write (`data.sample_counts`): each way
a sample is added, annotated, relabelled, cleared, returned to the buffer, dismissed or
deleted leaves them equal to counting the samples; a function from before they were kept is
counted from its samples."""

from __future__ import annotations

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from test_api import SAMPLES, make_function
from test_capture import ONLY_UNCERTAINTY, TEXTS, invoke_all, policy


def metrics(api, fid: str) -> tuple[int, dict[str, int]]:
    status, body, _ = api.call("GET", f"/v0.9/functions/{fid}/metrics")
    assert status == 200, body
    return body["sampleCount"], body["annotatedLabelCounts"]


def listed(api, fid: str) -> tuple[int, dict[str, int]]:
    """What counting every sample through the samples route gives."""
    status, rows, _ = api.call("GET", f"/v1/functions/{fid}/samples", query="batchSize=1000")
    assert status == 200, rows
    annotated: dict[str, int] = {}
    for r in rows:
        if r.get("annotation"):
            lid = r["annotation"]["labelId"]
            annotated[lid] = annotated.get(lid, 0) + 1
    return len(rows), annotated


def same(api, fid: str) -> tuple[int, dict[str, int]]:
    kept = metrics(api, fid)
    assert kept == listed(api, fid)
    return kept


def test_every_write_keeps_the_counts_equal_to_the_samples(api):
    fid = make_function(api)
    labels = {lb["name"]: lb["id"] for lb in api.call("GET", f"/v1/functions/{fid}/labels")[1]}
    assert same(api, fid) == (len(SAMPLES), {labels["billing"]: 3, labels["bug"]: 3})
    # A bulk import (annotated and not), then captures: unannotated samples in the buffer.
    status, out, _ = api.call("POST", f"/v1/functions/{fid}/samples/batch", {"samples": [
        {"data": "where is my refund", "annotation": {"labelName": "billing"}},
        {"data": "the login page is blank"}]})
    assert status == 200, out
    policy(api, fid, ONLY_UNCERTAINTY)
    captured = invoke_all(api, fid, TEXTS)  # up to the quota of 3, the rest replacing
    queue = api.call("GET", f"/v1/functions/{fid}/review")[1]
    assert len(queue) == 3, queue
    total, annotated = same(api, fid)
    assert total == len(SAMPLES) + 2 + 3 and annotated[labels["billing"]] == 4
    first, second, third = (q["id"] for q in queue)
    path = f"/v1/functions/{fid}/samples/{{}}/annotation"
    for sid, name in ((first, "bug"), (second, "billing"), (first, "billing")):
        assert api.call("PUT", path.format(sid), {"labelName": name})[0] == 200  # and relabel
    assert same(api, fid)[1][labels["billing"]] == 6
    assert api.call("DELETE", path.format(first))[0] == 200  # back to the buffer
    assert api.call("POST", f"/v1/functions/{fid}/review/{third}/dismiss")[0] == 200
    assert api.call("DELETE", f"/v1/functions/{fid}/samples/{second}")[0] == 200
    total, annotated = same(api, fid)
    assert total == len(SAMPLES) + 2 + 1 and annotated[labels["billing"]] == 4
    # Feedback on an invoke that was not captured makes an annotated sample of it.
    kept = {q["id"] for q in api.call("GET", f"/v1/functions/{fid}/review")[1]}
    loose = next(o["sampleId"] for o in captured if o["sampleId"] not in kept | {third})
    assert api.call("PUT", path.format(loose), {"labelName": "bug"})[0] == 200
    assert same(api, fid)[0] == len(SAMPLES) + 4
    # Deleting a label clears its annotations.
    assert api.call("DELETE", f"/v1/functions/{fid}/labels/{labels['bug']}")[0] == 200
    total, annotated = same(api, fid)
    assert total == len(SAMPLES) + 4 and labels["bug"] not in annotated


def test_a_function_from_before_the_counts_is_counted_from_its_samples(api, aws):
    fid = make_function(api, train=False)
    before = same(api, fid)
    table = boto3.resource("dynamodb").Table(aws["LABELLOOP_TABLE"])
    pk = f"FN#{fid.removeprefix('function_')}"

    def shards() -> list[dict]:
        return table.query(KeyConditionExpression=Key("pk").eq(pk)
                           & Key("sk").begins_with("COUNTS#"))["Items"]

    assert len(shards()) == 8  # made with the function
    for item in shards():
        table.delete_item(Key={"pk": pk, "sk": item["sk"]})
    assert same(api, fid) == before
    # A write makes a counts item without the mark of a complete count: still counted.
    assert api.call("POST", f"/v1/functions/{fid}/samples",
                    {"data": "one more", "annotation": {"labelName": "bug"}})[0] == 200
    (made,) = shards()
    assert made["samples"] == 1 and "complete" not in made
    assert same(api, fid)[0] == before[0] + 1


def test_a_transaction_another_one_kept_from_its_items_is_written_again(aws, monkeypatch):
    """DynamoDB cancels a transaction whose item another transaction is writing (moto never
    does: the error is made here, as DynamoDB words it)."""
    from botocore.exceptions import ClientError

    from labelloop.data.codec import CONFLICT_ATTEMPTS, Tables
    from labelloop.errors import Conflict

    resource = boto3.resource("dynamodb")
    tables = Tables.of(resource, aws["LABELLOOP_TABLE"], aws["LABELLOOP_INVOKES_TABLE"])
    real, calls, reasons = resource.meta.client.transact_write_items, [], []

    def busy(**kwargs):
        calls.append(kwargs)
        if reasons:
            raise ClientError({"Error": {"Code": "TransactionCanceledException",
                                         "Message": "Transaction cancelled"},
                               "CancellationReasons": reasons.pop(0)}, "TransactWriteItems")
        return real(**kwargs)

    monkeypatch.setattr(resource.meta.client, "transact_write_items", busy)
    monkeypatch.setattr("labelloop.data.codec.CONFLICT_WAIT", 0.001)
    put = {"Put": {"TableName": aws["LABELLOOP_TABLE"], "Item": {"pk": "T", "sk": "1"}}}
    conflict = [{"Code": "None"}, {"Code": "TransactionConflict"}]
    reasons[:] = [conflict, conflict]
    tables.transact([put], on_condition=lambda: Conflict("lost"))
    assert len(calls) == 3 and tables.main.get_item(Key={"pk": "T", "sk": "1"}).get("Item")
    # A failed condition is not tried again; nor is a conflict past the last attempt.
    calls.clear()
    reasons[:] = [[{"Code": "ConditionalCheckFailed"}, {"Code": "TransactionConflict"}]]
    with pytest.raises(Conflict):
        tables.transact([put], on_condition=lambda: Conflict("lost"))
    assert len(calls) == 1
    calls.clear()
    reasons[:] = [conflict] * CONFLICT_ATTEMPTS
    with pytest.raises(ClientError):
        tables.transact([put])
    assert len(calls) == CONFLICT_ATTEMPTS
