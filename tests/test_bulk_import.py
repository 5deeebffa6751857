"""Bulk import (`POST …/samples/batch`): per item, in order, the sample or the error it would
have had alone; duplicates (stored, or twice in one request) are 409s naming the sample that
exists; limits; one training run for the whole import; another client's function is a 404."""

from __future__ import annotations

import numpy as np
from test_api import SAMPLES, make_function

from labelloop.api.schemas import MAX_IMPORT


def _import(api, fid: str, samples: list[dict], **kw):
    return api.call("POST", f"/v1/functions/{fid}/samples/batch", {"samples": samples}, **kw)


def test_each_item_gets_its_own_answer_and_one_bad_item_stops_nothing(api):
    fid = make_function(api, train=False)
    existing = api.call("GET", f"/v1/functions/{fid}/samples")[1][0]
    status, body, _ = _import(api, fid, [
        {"data": "Refund the second charge please", "annotation": {"labelName": "billing"}},
        {"data": existing["data"], "annotation": {"labelName": "billing"}},
        {"data": "The export button does nothing", "annotation": {"labelName": "bug"},
         "externalId": "ticket-7"},
        {"data": "The export button does nothing"},
        {"data": "Where is my parcel?", "annotation": {"labelName": "shipping"}},
        {"data": "   "},
        {"data": "Just a question without a label"},
    ])
    assert status == 200, body
    results = body["results"]
    assert [r["status"] for r in results] == [200, 409, 200, 409, 400, 400, 200]
    assert results[1]["existingSampleId"] == existing["id"]
    assert results[3]["existingSampleId"] == results[2]["sample"]["id"]  # twice in one request
    assert results[4]["message"].startswith("samples[4].annotation.labelName: no label named")
    assert results[5]["message"] == "samples[5].data: must not be empty"
    assert results[2]["sample"]["externalId"] == "ticket-7"
    assert "annotation" not in results[6]["sample"]
    stored = {s["id"]: s for s in api.call("GET", f"/v1/functions/{fid}/samples",
                                           query="batchSize=100")[1]}
    assert {r["sample"]["id"] for r in results if r["status"] == 200} <= set(stored)
    assert len(stored) == len(SAMPLES) + 3


def test_answers_hold_across_the_chunks_an_import_is_written_in(api):
    """Items are embedded and written in chunks (the next embedded while one is written): a
    duplicate of an item of an earlier chunk is a 409 naming it, every item is answered in
    its place, and a bad item in a later chunk stops nothing."""
    from labelloop.usecases.samples import IMPORT_CHUNK

    fid = make_function(api, train=False)
    n = 2 * IMPORT_CHUNK + 50
    items = [{"data": f"Ticket {i}: the invoice total looks wrong", "externalId": f"t{i}"}
             for i in range(n)]
    items[IMPORT_CHUNK + 5] = {"data": items[3]["data"]}  # in the second chunk, of the first
    items[n - 1] = {"data": items[IMPORT_CHUNK + 7]["data"]}  # in the third, of the second
    items[2 * IMPORT_CHUNK + 1] = {"data": ""}
    status, body, _ = _import(api, fid, items)
    assert status == 200, body
    results = body["results"]
    assert len(results) == n
    assert results[IMPORT_CHUNK + 5]["existingSampleId"] == results[3]["sample"]["id"]
    assert results[n - 1]["existingSampleId"] == results[IMPORT_CHUNK + 7]["sample"]["id"]
    assert results[2 * IMPORT_CHUNK + 1]["status"] == 400
    assert sum(r["status"] == 200 for r in results) == n - 3
    assert all(results[i]["sample"]["externalId"] == f"t{i}"
               for i in range(n) if results[i]["status"] == 200)


def test_imported_texts_are_embedded_as_one_by_one(api):
    """Embedded in batches, stored as a sample created alone would be."""
    from labelloop import container
    from labelloop.ids import bare

    fid = make_function(api, train=False)
    texts = [f"Question number {i} about my invoice and the VAT on it" for i in range(40)]
    status, body, _ = _import(api, fid, [{"data": t} for t in texts])
    assert status == 200 and all(r["status"] == 200 for r in body["results"]), body
    d = container.deps()
    alone = d.encoders["fast"].featurize_one(texts[17]).embeddings[0]
    item = d.samples.get(bare(fid, "function"), bare(body["results"][17]["sample"]["id"],
                                                     "sample"))
    np.testing.assert_allclose(np.frombuffer(item.embedding, np.float32), alone, atol=1e-5)


def test_an_import_trains_once_and_the_model_knows_the_imported_samples(api):
    fid = make_function(api, samples=[], train=False)
    samples = [{"data": t, "annotation": {"labelName": lb}} for t, lb in [
        ("I was charged twice this month", "billing"), ("Refund my annual plan", "billing"),
        ("Send me an invoice with VAT", "billing"), ("The app crashes on start", "bug"),
        ("The save button is greyed out", "bug"), ("Login page throws an error", "bug")]]
    api.train()  # the labels' zero-shot version
    before = len(api.call("GET", f"/v1/functions/{fid}/models")[1])
    # An import in parts asks for no training until its end.
    assert _import(api, fid, samples[:3], query="train=false")[0] == 200
    api.train()
    assert len(api.call("GET", f"/v1/functions/{fid}/models")[1]) == before
    assert _import(api, fid, samples[3:])[0] == 200
    results = api.train()
    assert all(not r["batchItemFailures"] for r in results)
    models = api.call("GET", f"/v1/functions/{fid}/models")[1]
    assert len(models) == before + 1 and max(m["sampleCount"] for m in models) == 6, models


def test_limits_and_another_clients_function(api):
    fid = make_function(api, samples=[], train=False)
    status, body, _ = _import(api, fid, [{"data": f"text {i}"} for i in range(MAX_IMPORT + 1)])
    assert status == 400 and body["message"].startswith("samples"), body
    status, body, _ = _import(api, fid, [])
    assert status == 400 and "samples" in body["message"], body
    other = api.token("client-b", "secret-b")
    assert _import(api, fid, [{"data": "x"}], token=other)[0] == 404
