"""Invoke capture through the API handlers against moto: the buffer, its quotas, the review
queue, annotation and dismissal, the policy, re-scoring after a retrain, live accuracy."""

from __future__ import annotations

import boto3
import pytest
from test_api import SAMPLES, make_function

TEXTS = ["my card was charged but the app shows an error",
         "where do I find last month's receipt",
         "the dashboard never finishes loading",
         "refund the duplicate payment please",
         "clicking export freezes the browser tab",
         "can you change the billing email on my account"]
ONLY_UNCERTAINTY = {"uncertainty": {"threshold": 0.0, "quota": 3},
                    "random": {"quota": 0}, "rare_class": {"quota": 0}}


def policy(api, fid, strategies, **extra):
    status, body, _ = api.call("PUT", f"/v1/functions/{fid}/capture",
                               {"strategies": strategies, **extra})
    assert status == 200, body
    return body


def invoke_all(api, fid, texts, query=""):
    outs = []
    for t in texts:
        status, out, _ = api.call("POST", f"/v1/functions/{fid}/invoke", {"data": t},
                                  query=query)
        assert status == 200, out
        outs.append(out)
    return outs


def margin(out) -> float:
    c = sorted((x["confidence"] for x in out["labelConfidences"]), reverse=True)
    return c[0] - c[1]


def queue(api, fid, query=""):
    status, body, _ = api.call("GET", f"/v1/functions/{fid}/review", query=query)
    assert status == 200, body
    return body


def used(api, fid) -> dict:
    body = api.call("GET", f"/v1/functions/{fid}/capture")[1]
    return {s["name"]: s["used"] for s in body["strategies"]}


def test_the_uncertainty_buffer_keeps_the_most_uncertain_within_its_quota(api):
    fid = make_function(api)
    policy(api, fid, ONLY_UNCERTAINTY)
    outs = invoke_all(api, fid, TEXTS)
    uncertainty = {o["sampleId"]: 1 - margin(o) for o in outs}
    items = queue(api, fid)
    # Each item scored by its own invoke; together the three highest (ties may go either way).
    assert all(abs(i["priority"] - uncertainty[i["id"]]) < 1e-5 for i in items)
    top3 = sorted(uncertainty.values(), reverse=True)[:3]
    assert [round(i["priority"], 5) for i in items] == [round(p, 5) for p in top3]
    assert all(i["captureReason"] == "uncertainty" and i["origin"] == "InvokeCapture"
               for i in items)
    assert [i["priority"] for i in items] == sorted((i["priority"] for i in items), reverse=True)
    assert used(api, fid) == {"uncertainty": 3, "random": 0, "rare_class": 0,
                              "near_threshold": 0, "confused_pair": 0}
    # The same items are samples, listed by origin; training samples are not among them.
    status, captured, _ = api.call("GET", f"/v1/functions/{fid}/samples",
                                   query="origin=InvokeCapture")
    assert status == 200 and {s["id"] for s in captured} == {i["id"] for i in items}
    api_made = api.call("GET", f"/v1/functions/{fid}/samples", query="origin=API")[1]
    assert len(api_made) == len(SAMPLES)
    # A call can opt out.
    invoke_all(api, fid, ["a brand new question about invoices and crashes"],
               query="capture=false")
    assert [i["id"] for i in queue(api, fid)] == [i["id"] for i in items]


def test_annotating_a_capture_frees_its_slot_flags_corrections_and_retrains(api):
    fid = make_function(api)
    policy(api, fid, ONLY_UNCERTAINTY)
    outs = invoke_all(api, fid, TEXTS[:3])
    first = queue(api, fid)[0]
    predicted = next(o for o in outs if o["sampleId"] == first["id"])
    wrong = "bug" if predicted["labelName"] == "billing" else "billing"
    status, sample, _ = api.call("PUT", f"/v1/functions/{fid}/samples/{first['id']}/annotation",
                                 {"labelName": wrong})
    assert status == 200, sample
    assert sample["origin"] == "InvokeCapture" and sample["captureReason"] == "uncertainty"
    assert sample["corrected"] is True and "inReviewQueue" not in sample
    assert sample["invokePrediction"]["labelId"] == predicted["labelId"]
    assert first["id"] not in {i["id"] for i in queue(api, fid)}
    assert used(api, fid)["uncertainty"] == 2
    # Annotating it again (a second reviewer) does not free a second slot.
    api.call("PUT", f"/v1/functions/{fid}/samples/{first['id']}/annotation",
             {"labelName": predicted["labelName"]})
    assert used(api, fid)["uncertainty"] == 2
    # The annotation queued a retrain; after it, the buffer is re-scored by the new model
    # (two labels: uncertainty = 1 - margin = 2 - 2 * top confidence), while each item keeps
    # the prediction its invoke answered.
    api.train()
    live = api.call("GET", f"/v1/functions/{fid}")[1]["liveModelVersion"]
    assert live == 2
    rest = queue(api, fid)
    assert rest and all(i["invokePrediction"]["modelVersion"] == 1 for i in rest)
    for i in rest:
        assert abs(i["priority"] - (2 - 2 * i["prediction"]["confidence"])) < 1e-4


def test_bulk_annotation_reports_each_item(api):
    fid = make_function(api)
    policy(api, fid, ONLY_UNCERTAINTY)
    invoke_all(api, fid, TEXTS[:2])
    ids = [i["id"] for i in queue(api, fid)]
    status, body, _ = api.call("POST", f"/v1/functions/{fid}/review/annotations", {
        "annotations": [{"sampleId": ids[0], "labelName": "bug"},
                        {"sampleId": ids[1], "labelName": "no such label"},
                        {"sampleId": "sample_0000000000abc", "labelName": "bug"}]})
    assert status == 200
    results = body["results"]
    assert [r["status"] for r in results] == [200, 400, 404]
    assert "labelName" in results[1]["message"]
    assert [i["id"] for i in queue(api, fid)] == [ids[1]]
    status, body, _ = api.call("POST", f"/v1/functions/{fid}/review/annotations",
                               {"annotations": []})
    assert status == 400 and "annotations" in body["message"]


def test_clearing_a_captures_annotation_returns_it_to_the_queue_while_there_is_room(api):
    fid = make_function(api)
    policy(api, fid, {**ONLY_UNCERTAINTY, "uncertainty": {"threshold": 0.0, "quota": 2}})
    invoke_all(api, fid, TEXTS[:2])
    first, second = queue(api, fid)
    path = f"/v1/functions/{fid}/samples/{first['id']}/annotation"
    assert api.call("PUT", path, {"labelName": "bug"})[0] == 200
    assert used(api, fid)["uncertainty"] == 1
    # The reviewer's undo: back in the queue, at the same priority, holding its slot again.
    assert api.call("DELETE", path)[0] == 200
    back = {i["id"]: i for i in queue(api, fid)}
    assert set(back) == {first["id"], second["id"]} and used(api, fid)["uncertainty"] == 2
    assert back[first["id"]]["priority"] == first["priority"]
    assert "annotation" not in back[first["id"]] and back[first["id"]]["inReviewQueue"]
    # With no free slot it is only un-annotated (a new capture took the slot meanwhile).
    assert api.call("PUT", path, {"labelName": "bug"})[0] == 200
    invoke_all(api, fid, TEXTS[2:3])
    assert used(api, fid)["uncertainty"] == 2
    assert api.call("DELETE", path)[0] == 200
    sample = api.call("GET", f"/v1/functions/{fid}/samples/{first['id']}")[1]
    assert "annotation" not in sample and "inReviewQueue" not in sample
    assert first["id"] not in {i["id"] for i in queue(api, fid)}
    assert used(api, fid)["uncertainty"] == 2


def test_dismissal_frees_the_slot_and_the_text_is_not_captured_again(api):
    fid = make_function(api)
    policy(api, fid, ONLY_UNCERTAINTY)
    (out,) = invoke_all(api, fid, TEXTS[:1])
    assert api.call("POST", f"/v1/functions/{fid}/review/{out['sampleId']}/dismiss")[0] == 200
    assert queue(api, fid) == [] and used(api, fid)["uncertainty"] == 0
    assert api.call("GET", f"/v1/functions/{fid}/samples/{out['sampleId']}")[0] == 404
    invoke_all(api, fid, TEXTS[:1])
    assert queue(api, fid) == []
    # As a training sample the text is still welcome.
    status, body, _ = api.call("POST", f"/v1/functions/{fid}/samples",
                               {"data": TEXTS[0], "annotation": {"labelName": "billing"}})
    assert status == 200, body
    # Only buffered items can be dismissed.
    status, body, _ = api.call("POST", f"/v1/functions/{fid}/review/{body['id']}/dismiss")
    assert status == 409 and "not in the capture buffer" in body["message"]


@pytest.mark.parametrize("artifact", ["kept", "from before it existed"])
def test_no_capture_of_near_duplicates_of_training_data(api, artifact):
    from labelloop import container
    from labelloop.data.objects import TRAINED_EMBEDDINGS, artifact_key

    fid = make_function(api)
    d = container.Deps()  # a container that has not seen the version yet
    d.__dict__["encoders"] = container.deps().encoders
    container.reset(d)
    version = api.call("GET", f"/v1/functions/{fid}")[1]["liveModelVersion"]
    key = artifact_key(fid.removeprefix("function_"), version, TRAINED_EMBEDDINGS)
    if artifact != "kept":  # a version trained before the artifact: the samples are read
        d.s3.delete_object(Bucket=d.objects.bucket, Key=key)
    sample_reads = []

    def count(params, **_):  # the serialised request
        if b'"SAMPLE#"' in params["body"]:
            sample_reads.append(1)

    client = d.tables.main.meta.client
    client.meta.events.register("before-call.dynamodb.Query", count)
    try:
        policy(api, fid, ONLY_UNCERTAINTY, nearDuplicateCosine=0.9)
        invoke_all(api, fid, [SAMPLES[0][0], SAMPLES[3][0] + "!",
                              "I was charged twice this month."])
        assert queue(api, fid) == []
        invoke_all(api, fid, [TEXTS[2]])
        assert len(queue(api, fid)) == 1
    finally:
        client.meta.events.unregister("before-call.dynamodb.Query", count)
    # The version's embeddings come from its artifact: no read of the samples.
    assert (len(sample_reads) == 0) == (artifact == "kept")


def test_policy_defaults_merging_and_errors_that_name_the_field(api):
    fid = make_function(api, train=False)
    body = api.call("GET", f"/v1/functions/{fid}/capture")[1]
    quotas = {s["name"]: s["quota"] for s in body["strategies"]}
    assert quotas == {"random": 50, "near_threshold": 50, "confused_pair": 0,
                      "uncertainty": 400, "rare_class": 50}
    body = policy(api, fid, {"uncertainty": {"quota": 7}})
    body = policy(api, fid, {"uncertainty": {"measure": "least_confidence"}})
    u = next(s for s in body["strategies"] if s["name"] == "uncertainty")
    assert u["quota"] == 7 and u["measure"] == "least_confidence"
    for strategies, field in (({"uncertainty": {"quota": -1}}, "uncertainty.quota"),
                              ({"random": {"rate": 2}}, "random.rate"),
                              ({"loudest": {}}, "loudest")):
        status, err, _ = api.call("PUT", f"/v1/functions/{fid}/capture",
                                  {"strategies": strategies})
        assert status == 400 and field in err["message"], err
    for field, bad in (("nearDuplicateCosine", 1.5), ("spreadCosine", 1.5), ("labelCap", 1.5),
                       ("driftRandomFactor", 0.5)):
        status, err, _ = api.call("PUT", f"/v1/functions/{fid}/capture", {field: bad})
        assert status == 400 and field in err["message"], err
    status, body, _ = api.call("PUT", f"/v1/functions/{fid}/capture", {"labelCap": 0.25})
    assert status == 200 and (body["labelCap"], body["spreadCosine"]) == (0.25, 0.9), body
    status, err, _ = api.call("GET", f"/v1/functions/{fid}/review", query="strategy=loudest")
    assert status == 400 and "strategy" in err["message"]
    other = api.token("client-b", "secret-b")
    assert api.call("GET", f"/v1/functions/{fid}/capture", token=other)[0] == 404


def test_live_accuracy_from_annotated_random_captures(api):
    fid = make_function(api)
    policy(api, fid, {"random": {"rate": 1.0, "quota": 10}, "uncertainty": {"quota": 0},
                      "rare_class": {"quota": 0}})
    outs = invoke_all(api, fid, TEXTS[:4])
    assert {i["captureReason"] for i in queue(api, fid)} == {"random"}
    # Two annotated as predicted, one corrected; one left unannotated.
    for out, keep in zip(outs[:3], (True, True, False), strict=True):
        label = out["labelName"] if keep else (
            "bug" if out["labelName"] == "billing" else "billing")
        api.call("PUT", f"/v1/functions/{fid}/samples/{out['sampleId']}/annotation",
                 {"labelName": label})
    status, rows, _ = api.call("GET", f"/v1/functions/{fid}/live-accuracy")
    assert status == 200
    (row,) = rows
    assert (row["modelVersion"], row["annotated"], row["correct"]) == (1, 3, 2)
    lo, hi = row["interval95"]
    assert 0 < lo < row["accuracy"] == round(2 / 3, 4) < hi < 1


def test_counters_match_the_buffer_in_the_table(api, aws):
    """The stored state itself: one CAPTURE# counter per strategy equal to its buffered items,
    each with a data-hash claim."""
    fid = make_function(api)
    policy(api, fid, {"uncertainty": {"threshold": 0.0, "quota": 2}, "random": {"quota": 0},
                      "rare_class": {"quota": 0}})
    invoke_all(api, fid, TEXTS)
    items = table_items(aws, fid)
    buffered = [i for i in items if i["sk"].startswith("SAMPLE#") and i.get("buffer")]
    counter = next(i for i in items if i["sk"] == "CAPTURE#uncertainty")
    assert int(counter["used"]) == len(buffered) == 2
    claims = {i["sample_id"] for i in items if i["sk"].startswith("HASH#")}
    assert {i["id"] for i in buffered} <= claims


def test_a_prediction_not_taken_writes_nothing_but_its_invoke_record(api, aws):
    fid = make_function(api)
    policy(api, fid, {"uncertainty": {"quota": 0}, "random": {"quota": 0},
                      "rare_class": {"quota": 0}})
    before = table_items(aws, fid)
    invoke_all(api, fid, TEXTS)
    assert table_items(aws, fid) == before
    records = boto3.resource("dynamodb").Table(aws["LABELLOOP_INVOKES_TABLE"]).scan()["Items"]
    assert len(records) == len(TEXTS)


def test_no_capture_of_near_duplicates_of_buffered_items(api):
    fid = make_function(api)
    policy(api, fid, ONLY_UNCERTAINTY, nearDuplicateCosine=0.95)
    invoke_all(api, fid, [TEXTS[2], TEXTS[2] + "!!", TEXTS[2].upper()])
    assert [i["data"] for i in queue(api, fid)] == [TEXTS[2]]


def table_items(aws, fid: str) -> list[dict]:
    table = boto3.resource("dynamodb").Table(aws["LABELLOOP_TABLE"])
    return table.query(KeyConditionExpression="pk = :p", ExpressionAttributeValues={
        ":p": f"FN#{fid.removeprefix('function_')}"})["Items"]


def test_state_kept_in_place_after_own_captures_matches_a_fresh_read(api):
    """With a long cache time the container updates its buffer state after each capture it
    commits, instead of re-reading it: the result must equal what a fresh read finds."""
    from labelloop import container
    from labelloop.capture.state import CaptureCache

    fid = make_function(api)
    policy(api, fid, {"uncertainty": {"threshold": 0.0, "quota": 2}, "random": {"quota": 0},
                      "rare_class": {"quota": 0}})
    d = container.deps()
    d.__dict__["captures"] = CaptureCache(d.samples, d.ledger, d.objects, ttl=3600)
    invoke_all(api, fid, TEXTS)  # fills two slots, then replaces
    bare = fid.removeprefix("function_")
    view = d.serving.view(bare)
    kept = d.captures.state(bare, view.function.capture_policy, view.model)
    fresh = CaptureCache(d.samples, d.ledger, d.objects, ttl=0).state(
        bare, view.function.capture_policy, view.model)
    assert kept.loaded_at < fresh.loaded_at  # really the kept one, not a reload
    assert kept.buffers == fresh.buffers and kept.buffers["uncertainty"].used == 2
    ids = {i["id"].removeprefix("sample_") for i in queue(api, fid)}
    assert len(d.captures.known_embeddings(bare, kept)[0]) == len(ids) == 2


def test_replacements_reuse_the_least_informative_items_read_and_choose_as_fresh_reads_do(
        api):
    """A full strategy's least informative items are read a few at a time: a replacement's
    new lowest comes from them (or is the newcomer), so a stream of replacements reads far
    less often than it captures, and the buffer ends as with a fresh read before every
    decision."""
    from pathlib import Path

    from labelloop import container
    from labelloop.capture.state import CaptureCache

    texts = [t for t in (Path(__file__).parent / "fixtures" / "reference_texts.txt")
             .read_text().splitlines() if t.strip()]
    strategies = {"uncertainty": {"threshold": 0.0, "quota": 5}, "random": {"quota": 0},
                  "rare_class": {"quota": 0}}
    d = container.deps()
    queues = []
    for ttl in (0, 3600):  # every decision on a fresh read; then on the state kept in place
        fid = make_function(api)
        policy(api, fid, strategies)
        d.__dict__["captures"] = CaptureCache(d.samples, d.ledger, d.objects, ttl=ttl)
        reads, writes = [], []
        client = d.tables.main.meta.client

        def count_reads(params, reads=reads, **_):  # a strategy's least informative items
            if b'"IndexName": "gsi2"' in params["body"] and b'"Limit"' in params["body"]:
                reads.append(1)

        def count_writes(writes=writes, **_):  # a capture
            writes.append(1)

        client.meta.events.register("before-call.dynamodb.Query", count_reads)
        client.meta.events.register("before-call.dynamodb.TransactWriteItems", count_writes)
        try:
            invoke_all(api, fid, texts)
        finally:
            client.meta.events.unregister("before-call.dynamodb.Query", count_reads)
            client.meta.events.unregister("before-call.dynamodb.TransactWriteItems",
                                          count_writes)
        queues.append(sorted(round(i["priority"], 6) for i in queue(api, fid)))
    replacements = len(writes) - 5
    assert replacements >= 5, writes  # the stream really replaced, more than once
    assert len(reads) < replacements / 2, (len(reads), replacements)
    assert queues[0] == queues[1] and len(queues[1]) == 5


def test_a_predictions_margin_is_top_one_minus_top_two():
    from labelloop.serving import Prediction

    assert Prediction("a", 0.7, [("a", 0.7), ("b", 0.2), ("c", 0.1)]).margin == pytest.approx(0.5)
    assert Prediction("a", 0.9, [("a", 0.9)]).margin == pytest.approx(0.9)  # one label
