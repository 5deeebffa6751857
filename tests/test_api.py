"""The HTTP API and the training worker, as Lambda handlers against moto (see conftest.Api)."""

from __future__ import annotations

import time

import boto3

from labelloop.usecases.samples import INVOKE_RECORD_GRACE_SECONDS

LABELS = {"billing": "Charges, invoices, refunds and payment methods",
          "bug": "Something in the product is broken"}
SAMPLES = [("I was charged twice this month", "billing"),
           ("Can I get a refund for the annual plan?", "billing"),
           ("Please send me an invoice with our VAT number", "billing"),
           ("The app crashes when I open settings", "bug"),
           ("The save button does nothing", "bug"),
           ("Export to PDF produces an empty file", "bug")]


def make_function(api, labels=LABELS, samples=SAMPLES, train=True, **extra) -> str:
    status, fn, _ = api.call("POST", "/v1/functions", {"name": "support", "input": "Text",
                                                        "output": "Classification", **extra})
    assert status == 200, fn
    for name, description in labels.items():
        status, body, _ = api.call("POST", f"/v1/functions/{fn['id']}/labels",
                                   {"name": name, "description": description,
                                    "metadata": None})
        assert status == 200, body
    for text, label in samples:
        status, body, _ = api.call("POST", f"/v1/functions/{fn['id']}/samples",
                                   {"data": text, "annotation": {"labelName": label},
                                    "externalId": None, "sampleSets": []})
        assert status == 200, body
    if train:
        assert all(not r["batchItemFailures"] for r in api.train())
    return fn["id"]


def test_token_grant_and_bearer_checks(api, monkeypatch):
    status, body, _ = api.call("POST", "/connect/token", token=None,
                               form="client_id=client-a&client_secret=nope"
                                    "&grant_type=client_credentials")
    assert status == 401 and "client_secret" in body["message"]
    status, body, _ = api.call("POST", "/connect/token", token=None,
                               form="client_secret=x&grant_type=client_credentials")
    assert status == 400 and body["message"].startswith("client_id")
    assert api.call("GET", "/v1/functions", token=None)[0] == 401
    assert api.call("GET", "/v1/functions", token="v1.forged.token")[0] == 401
    good = api.token()
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    assert api.call("GET", "/v1/functions", token=tampered)[0] == 401
    # A bad request without a valid token learns nothing of what the route expects.
    for token in (None, tampered):
        status, body, _ = api.call("POST", "/v1/functions/function_x/labels", {}, token=token)
        assert status == 401 and "name" not in body["message"], body
        assert api.call("GET", "/v1/functions/function_x/samples", query="batchSize=0",
                        token=token)[0] == 401
    status, body, _ = api.call("POST", "/v1/functions/function_x/labels", {})
    assert status == 400 and body["message"].startswith("name")
    # A token issued two hours ago has expired.
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - 7200)
    status, body, _ = api.call("POST", "/connect/token", token=None,
                               form="client_id=client-b&client_secret=secret-b")
    monkeypatch.setattr(time, "time", real_time)
    status, body, _ = api.call("GET", "/v1/functions", token=body["access_token"])
    assert status == 401 and "expired" in body["message"]


def test_an_accurate_function_embeds_with_mpnet_end_to_end(api):
    from labelloop import container

    status, body, _ = api.call("POST", "/v1/functions", {"name": "x", "encoder": "huge"})
    assert status == 400 and body["message"].startswith("encoder: 'huge' is not supported")
    fast, accurate = make_function(api), make_function(api, encoder="accurate")
    assert api.call("GET", f"/v1/functions/{fast}")[1]["encoder"] == "fast"
    assert api.call("GET", f"/v1/functions/{accurate}")[1]["encoder"] == "accurate"
    status, body, _ = api.call("PUT", f"/v1/functions/{accurate}", {"encoder": "fast"})
    assert status == 400 and body["message"].startswith("encoder: fixed")
    # Sending back the function as read (its own encoder) is no change.
    status, body, _ = api.call("PUT", f"/v1/functions/{accurate}",
                               {"name": "renamed", "encoder": "accurate"})
    assert status == 200 and (body["name"], body["encoder"]) == ("renamed", "accurate")
    # Samples and label priors are stored as the function's encoder embeds them.
    d = container.deps()
    for fid, dim in ((fast, 384), (accurate, 768)):
        bare = fid.removeprefix("function_")
        assert {v.embedding.nbytes for v in d.samples.vectors(bare)} == {4 * dim}
        assert {len(lb.prior_embeddings) % (4 * dim) for lb in d.labels.list(bare)} == {0}
    for text, label in [("my card was charged two times", "billing"),
                        ("clicking export gives a blank document", "bug")]:
        for fid in (fast, accurate):
            status, out, _ = api.call("POST", f"/v1/functions/{fid}/invoke", {"data": text})
            assert status == 200 and out["labelName"] == label, (fid, out)
    # A sample added later (and an invoke's feedback) is embedded by the same encoder.
    status, out, _ = api.call("POST", f"/v1/functions/{accurate}/invoke",
                              {"data": "why is there a fee on my statement"})
    status, sample, _ = api.call("POST", f"/v1/functions/{accurate}/samples",
                                 {"data": "the dashboard shows an error 500", "annotation": {
                                     "labelName": "bug"}})
    assert status == 200, sample
    assert all(not r["batchItemFailures"] for r in api.train())
    bare = accurate.removeprefix("function_")
    assert {v.embedding.nbytes for v in d.samples.vectors(bare)} == {4 * 768}


def test_a_deployment_can_make_accurate_the_default_encoder(api, monkeypatch):
    from labelloop import container

    monkeypatch.setenv("LABELLOOP_DEFAULT_ENCODER", "accurate")
    d = container.Deps()
    d.__dict__["encoders"] = container.deps().encoders
    container.reset(d)
    status, fn, _ = api.call("POST", "/v1/functions", {"name": "x"})
    assert status == 200 and fn["encoder"] == "accurate"
    status, fn, _ = api.call("POST", "/v1/functions", {"name": "y", "encoder": "fast"})
    assert status == 200 and fn["encoder"] == "fast"


def test_a_client_sees_only_its_own_functions(api):
    fid = make_function(api, samples=[], train=False)
    other = api.token("client-b", "secret-b")
    assert api.call("GET", f"/v1/functions/{fid}", token=other)[0] == 404
    assert api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "x"}, token=other)[0] == 404
    assert api.call("DELETE", f"/v1/functions/{fid}", token=other)[0] == 404
    assert api.call("GET", "/v1/functions", token=other)[1] == []
    assert [f["id"] for f in api.call("GET", "/v1/functions")[1]] == [fid]
    # Ids work with and without their prefix.
    assert api.call("GET", f"/v1/functions/{fid.removeprefix('function_')}")[0] == 200


def test_train_invoke_and_samples_end_to_end(api):
    fid = make_function(api)
    status, metrics, _ = api.call("GET", f"/v0.9/functions/{fid}/metrics")
    assert status == 200
    assert metrics["isTraining"] is False
    assert metrics["sampleCount"] == metrics["predictionCount"] == len(SAMPLES)
    assert sorted(metrics["annotatedLabelCounts"].values()) == [3, 3]
    assert api.call("GET", f"/v0.9/functions/{fid}")[1]["state"] == "Browsing"

    status, out, _ = api.call("POST", f"/v1/functions/{fid}/invoke",
                              {"data": "my invoice shows the wrong amount"}, query="modelId=")
    assert status == 200, out
    assert out["labelName"] == "billing" and out["labelId"].startswith("label_")
    assert abs(sum(c["confidence"] for c in out["labelConfidences"]) - 1) < 1e-4
    assert out["labelConfidences"][0]["labelName"] == "billing"
    assert out["modelVersion"] >= 1 and out["sampleId"].startswith("sample_")
    one = api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "app crashed"},
                   query="labelCount=1&capture=false")[1]
    assert one["labelName"] == "bug" and len(one["labelConfidences"]) == 1

    # Samples: the duplicate names the original; every sample carries a prediction.
    status, dup, _ = api.call("POST", f"/v1/functions/{fid}/samples", {"data": SAMPLES[0][0]})
    assert status == 409 and dup["existingSampleId"].startswith("sample_")
    first = api.call("GET", f"/v1/functions/{fid}/samples/{dup['existingSampleId']}")[1]
    assert first["data"] == SAMPLES[0][0] and "prediction" in first
    assert first["annotation"]["labelId"] == out["labelId"]


def test_sample_listing_pages_with_root_relative_links(api):
    fid = make_function(api, train=False)
    seen, query = [], "batchSize=4&sortBy=creation&sortOrder=descending"
    while True:
        status, page, headers = api.call("GET", f"/v1/functions/{fid}/samples", query=query)
        assert status == 200
        seen += [s["data"] for s in page]
        link = headers.get("Link")
        if not link:
            break
        assert link.startswith(f"</v1/functions/{fid}/samples?") and link.endswith('rel="next"')
        query = link[1:link.index(">")].split("?", 1)[1]
    assert seen == [t for t, _ in reversed(SAMPLES)]
    status, body, _ = api.call("GET", f"/v1/functions/{fid}/samples", query="batchSize=0")
    assert status == 400 and "batchSize" in body["message"]


def test_feedback_on_an_invoke_becomes_training_data(api):
    fid = make_function(api)
    # capture=false: this invoke is not captured, so the feedback creates its sample.
    out = api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "the login page is blank"},
                   query="externalId=ticket-7&capture=false")[1]
    status, sample, _ = api.call("PUT", f"/v1/functions/{fid}/samples/{out['sampleId']}"
                                 "/annotation", {"labelName": "bug"})
    assert status == 200, sample
    assert sample["id"] == out["sampleId"] and sample["origin"] == "InvokeFeedback"
    assert sample["externalId"] == "ticket-7"
    # The invoke's prediction is kept beside the annotation, and a correction is flagged.
    assert sample["invokePrediction"]["labelId"] == out["labelId"]
    assert sample["invokePrediction"]["modelVersion"] == out["modelVersion"]
    assert sample["corrected"] is (out["labelName"] != "bug")
    assert api.call("GET", f"/v0.9/functions/{fid}/metrics")[1]["isTraining"] is True
    api.train()
    metrics = api.call("GET", f"/v0.9/functions/{fid}/metrics")[1]
    assert metrics["sampleCount"] == len(SAMPLES) + 1 and not metrics["isTraining"]
    # Ids that are neither a sample nor a stored invoke: an old one, one from the future and
    # one no `new_bare` made. None is waited for (only a fresh invoke's record can be on its
    # way).
    for sid in ("sample_0000000000abc", "sample_zzzzzzzzzzzzzzzzzzzzzz", "sample_iiiiiiiiiiii"):
        started = time.monotonic()
        status, body, _ = api.call("PUT", f"/v1/functions/{fid}/samples/{sid}/annotation",
                                   {"labelName": "bug"})
        assert status == 404 and "retention" in body["message"], body
        assert time.monotonic() - started < INVOKE_RECORD_GRACE_SECONDS  # 1.0 was tight


def test_a_function_can_turn_invoke_storing_off(api):
    fid = make_function(api)
    assert api.call("PUT", f"/v1/functions/{fid}", {"storeInvokes": False})[0] == 200
    out = api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "refund please"})[1]
    status, _, _ = api.call("PUT", f"/v1/functions/{fid}/samples/{out['sampleId']}/annotation",
                            {"labelName": "billing"})
    assert status == 404


def test_deleting_a_label_clears_its_annotations_and_predictions(api):
    fid = make_function(api)
    labels = {lb["name"]: lb["id"] for lb in api.call("GET", f"/v1/functions/{fid}/labels")[1]}
    api.call("POST", f"/v1/functions/{fid}/labels", {"name": "praise"})
    assert api.call("DELETE", f"/v1/functions/{fid}/labels/{labels['bug']}")[0] == 200
    samples = api.call("GET", f"/v1/functions/{fid}/samples")[1]
    assert not any(s.get("annotation", {}).get("labelId") == labels["bug"] for s in samples)
    assert not any(s.get("prediction", {}).get("labelId") == labels["bug"] for s in samples)
    out = api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "the app crashes"})[1]
    assert labels["bug"] not in [c["labelId"] for c in out["labelConfidences"]]
    api.train()
    versions = api.call("GET", f"/v1/functions/{fid}/models")[1]
    assert versions[-1]["live"] and versions[-1]["decision"] == "label set changed"


def test_deleting_a_function_deletes_everything_under_it(api, aws):
    fid = make_function(api)
    api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "refund"})
    assert api.call("DELETE", f"/v1/functions/{fid}")[0] == 200
    assert api.call("GET", f"/v1/functions/{fid}")[0] == 404
    ddb = boto3.client("dynamodb")
    for table in (aws["LABELLOOP_TABLE"], aws["LABELLOOP_INVOKES_TABLE"]):
        items = ddb.scan(TableName=table)["Items"]
        assert not [i for i in items if i["pk"]["S"].startswith("FN#")], table
    objects = boto3.client("s3").list_object_versions(Bucket=aws["LABELLOOP_BUCKET"])
    assert not objects.get("Versions") and not objects.get("DeleteMarkers")


def test_bad_input_gets_a_4xx_naming_the_field(api):
    fid = make_function(api, train=False)
    cases = [
        ("POST", f"/v1/functions/{fid}/samples", {"externalId": "x"}, 400, "data"),
        ("POST", f"/v1/functions/{fid}/samples", {"data": 5}, 400, "data"),
        ("POST", f"/v1/functions/{fid}/samples", {"data": "  "}, 400, "data"),
        ("POST", f"/v1/functions/{fid}/samples", {"data": "x", "annotation": {
            "labelName": "nope"}}, 400, "annotation.labelName"),
        ("POST", f"/v1/functions/{fid}/samples", {"data": "x", "annotation": {
            "labelId": "label_no_such"}}, 400, "annotation.labelId"),
        ("POST", f"/v1/functions/{fid}/labels", {"name": ""}, 400, "name"),
        ("POST", "/v1/functions", {"input": "Audio"}, 400, "input"),
        ("POST", f"/v1/functions/{fid}/invoke", {}, 400, "data"),
    ]
    for method, path, body, status, field in cases:
        got, out, _ = api.call(method, path, body)
        assert got == status and out["message"].startswith(field), (path, body, out)
    got, out, _ = api.call("POST", f"/v1/functions/{fid}/samples", raw="{not json")
    assert got == 400, out
    got, out, _ = api.call("POST", f"/v1/functions/{fid}/samples", {"data": "x" * 300_000})
    assert got == 400 and out["message"] == "data: at most 50000 characters", out
    got, out, _ = api.call("POST", f"/v1/functions/{fid}/labels", {"name": "x" * 300_000})
    assert got == 413 and "body" in out["message"]
    got, out, _ = api.call("POST", f"/v1/functions/{fid}/samples",
                           {"data": "x" * (6 * 1024 * 1024)})  # over the image routes' limit
    assert got == 413 and "body" in out["message"]
    # Over-long text is truncated at the model window, not rejected.
    long_text = "my card was charged twice " * 400
    assert api.call("POST", f"/v1/functions/{fid}/samples", {"data": long_text})[0] == 200


def test_promote_and_rollback_move_the_live_pointer(api):
    fid = make_function(api)
    api.call("POST", f"/v1/functions/{fid}/samples",
             {"data": "Where is my receipt?", "annotation": {"labelName": "billing"}})
    api.train()
    versions = api.call("GET", f"/v1/functions/{fid}/models")[1]
    live = [v["version"] for v in versions if v["live"]]
    assert len(versions) >= 2 and live == [versions[-1]["version"]]
    fn = api.call("GET", f"/v1/functions/{fid}")[1]
    assert fn["rollbackModelVersion"] == versions[-2]["version"]
    status, out, _ = api.call("POST", f"/v1/functions/{fid}/models/rollback")
    assert status == 200 and out["live"] == versions[-2]["version"]
    assert "rollbackModelVersion" not in api.call("GET", f"/v1/functions/{fid}")[1]
    assert api.call("POST", f"/v1/functions/{fid}/models/rollback")[0] == 409
    got = api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "refund"})[1]
    assert got["modelVersion"] == versions[-2]["version"]
    status, out, _ = api.call("POST", f"/v1/functions/{fid}/models/{versions[-1]['version']}"
                              "/promote")
    assert status == 200 and out["live"] == versions[-1]["version"]
    assert api.call("POST", f"/v1/functions/{fid}/models/999/promote")[0] == 404


def test_an_annotated_import_reads_the_labels_once_not_per_sample(api, monkeypatch):
    from labelloop import container

    fid = make_function(api, train=False)
    monkeypatch.setenv("LABELLOOP_CACHE_SECONDS", "60")  # tests run with no cache
    d = container.Deps()
    d.__dict__["encoders"] = container.deps().encoders
    container.reset(d)
    client = d.tables.main.meta.client
    label_reads = []

    def count(params, **_):  # the serialised request
        if b'"LABEL#"' in params["body"]:
            label_reads.append(1)

    client.meta.events.register("before-call.dynamodb.Query", count)
    try:
        for i in range(20):
            status, body, _ = api.call("POST", f"/v1/functions/{fid}/samples", {
                "data": f"Refund number {i} has not arrived",
                "annotation": {"labelName": "billing"}})
            assert status == 200, body
    finally:
        client.meta.events.unregister("before-call.dynamodb.Query", count)
    assert len(label_reads) == 1  # the view's first load; one more per sample before
    # A new label is seen at once by the next sample naming it (same container).
    api.call("POST", f"/v1/functions/{fid}/labels", {"name": "shipping"})
    status, body, _ = api.call("POST", f"/v1/functions/{fid}/samples", {
        "data": "Where is my parcel?", "annotation": {"labelName": "shipping"}})
    assert status == 200, body


def test_the_first_model_serves_at_once_though_the_view_was_cached_before_it(api, monkeypatch):
    from labelloop import container

    monkeypatch.setenv("LABELLOOP_CACHE_SECONDS", "60")  # tests run with no cache
    d = container.Deps()
    d.__dict__["encoders"] = container.deps().encoders
    container.reset(d)
    fid = make_function(api, train=False)  # its samples cached a view with no model
    status, body, _ = api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "refund"})
    assert status == 409 and "no model yet" in body["message"]
    # The training Lambda runs in its own container (its own cache), as on AWS.
    assert all(not r["batchItemFailures"] for r in api.train())
    status, body, _ = api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "refund"})
    assert status == 200 and body["labelName"] == "billing", body
    status, body, _ = api.call("POST", f"/v1/functions/{fid}/batch-invokes",
                               {"items": [{"data": "the app crashes"}]})
    assert status == 200 and body["state"], body


def test_a_retrained_version_serves_at_once_though_the_view_was_cached_before_it(
        api, monkeypatch):
    from labelloop import container

    fid = make_function(api)
    monkeypatch.setenv("LABELLOOP_CACHE_SECONDS", "60")  # tests run with no cache
    d = container.Deps()
    d.__dict__["encoders"] = container.deps().encoders
    container.reset(d)
    first = api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "refund"})[1]
    # The sample's request for a run rereads the view: the one the next invoke caches shows
    # the run queued.
    api.call("POST", f"/v1/functions/{fid}/samples",
             {"data": "Why was I billed in euros?", "annotation": {"labelName": "billing"}})
    assert api.call("POST", f"/v1/functions/{fid}/invoke",
                    {"data": "refund"})[1]["modelVersion"] == first["modelVersion"]
    assert all(not r["batchItemFailures"] for r in api.train())  # its own container
    assert not api.call("GET", f"/v0.9/functions/{fid}/metrics")[1]["isTraining"]
    live = [v["version"] for v in api.call("GET", f"/v1/functions/{fid}/models")[1]
            if v["live"]]
    assert live and live[0] > first["modelVersion"]
    function_reads = []
    d.tables.main.meta.client.meta.events.register(
        "before-call.dynamodb.GetItem",
        lambda params, **_: function_reads.append(1) if b'"FUNCTION"' in params["body"]
        else None)
    for _ in range(5):
        got = api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "refund"})[1]
        assert got["modelVersion"] == live[0], got
    # The first invoke reread the function (and then the view); the run is over, so the
    # rest trust the cache again.
    assert 1 <= len(function_reads) <= 2, function_reads


def test_warm_container_sees_a_new_version_without_reading_s3_per_invoke(api, monkeypatch):
    from labelloop import container

    fid = make_function(api)
    monkeypatch.setenv("LABELLOOP_CACHE_SECONDS", "0.3")  # as deployed: seconds, not zero
    d = container.Deps()
    d.__dict__["encoders"] = container.deps().encoders
    container.reset(d)
    reads = []
    d.s3.meta.events.register("before-call.s3.GetObject",
                              lambda **kw: reads.append(1))
    first = api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "refund"})[1]
    for _ in range(20):
        api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "refund"})
    # head.npz and model.json, and trained.npy for capture's near-duplicate check, once each;
    # no decision policy: no quality.json
    assert len(reads) == 3
    api.call("POST", f"/v1/functions/{fid}/samples",
             {"data": "Why was I billed in euros?", "annotation": {"labelName": "billing"}})
    api.call("POST", f"/v1/functions/{fid}/train", {"force": True})
    api.train()
    time.sleep(0.35)
    later = api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "refund"})[1]
    assert later["modelVersion"] > first["modelVersion"]
    # A decision policy reads the version's quality.json, once.
    reads.clear()
    api.call("PUT", f"/v1/functions/{fid}/thresholds", {"accept": {"targetPrecision": 0.9}})
    time.sleep(0.35)
    for _ in range(5):
        assert "decision" in api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "x"})[1]
    assert len(reads) == 1
