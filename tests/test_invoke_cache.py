"""The invoke path's feature cache (labelloop/feature_cache.py): an input seen before skips the
encoder but is still predicted by the live model, so a promotion changes the answers at once;
never shared between functions; `Cache-Control: no-cache` opts out."""

from __future__ import annotations

import pytest
from test_api import make_function

from labelloop.feature_cache import FeatureCache

TEXT = "Why was I billed two times for one order?"


def _invoke(api, fid: str, text: str = TEXT, **headers) -> tuple[dict, str | None]:
    status, out, response_headers = api.call("POST", f"/v1/functions/{fid}/invoke",
                                             {"data": text}, query="capture=false",
                                             headers=headers)
    assert status == 200, out
    return out, response_headers.get("X-Labelloop-Cache")


def _cache():
    from labelloop import container

    return container.deps().feature_cache


def test_an_input_seen_before_skips_the_encoder_and_answers_alike(api):
    fid = make_function(api)
    first, was = _invoke(api, fid)
    hits = _cache().hits
    again, now = _invoke(api, fid)
    assert (was, now) == ("miss", "hit") and _cache().hits == hits + 1
    assert again["labelName"] == first["labelName"] and again["sampleId"] != first["sampleId"]
    assert again["confidence"] == first["confidence"]
    records = api.call("GET", f"/v1/functions/{fid}/invokes")[1]
    assert {r["sampleId"] for r in records} >= {first["sampleId"], again["sampleId"]}
    # Opting out: the encoder runs (no lookup), with the same answer.
    fresh, header = _invoke(api, fid, **{"cache-control": "no-cache"})
    assert header is None and _cache().hits == hits + 1
    assert fresh["confidence"] == pytest.approx(first["confidence"], abs=1e-6)


def test_a_hit_is_answered_by_the_model_that_is_live_now(api):
    fid = make_function(api)
    unsure = "The payment page crashes when I try to pay my invoice"
    before, _ = _invoke(api, fid, unsure)
    for text in ("Paying the invoice crashed my browser tab", "The checkout throws an error"):
        status, out, _ = api.call("POST", f"/v1/functions/{fid}/samples", {
            "data": text, "annotation": {"labelName": "bug"}})
        assert status == 200, out
    assert all(not r["batchItemFailures"] for r in api.train())
    if api.call("GET", f"/v1/functions/{fid}")[1]["liveModelVersion"] == 1:
        assert api.call("POST", f"/v1/functions/{fid}/models/2/promote")[0] == 200  # by hand
    after, header = _invoke(api, fid, unsure)
    uncached, _ = _invoke(api, fid, unsure, **{"cache-control": "no-store"})
    assert header == "hit"
    assert after["confidence"] == pytest.approx(uncached["confidence"], abs=1e-6)
    assert abs(after["confidence"] - before["confidence"]) > 1e-3  # version 2's answer


def test_functions_never_share_cached_features(api):
    one, other = make_function(api), make_function(api)
    assert _invoke(api, one)[1] == "miss" and _invoke(api, one)[1] == "hit"
    assert _invoke(api, other)[1] == "miss"


def test_the_least_recently_used_entry_goes_first():
    cache = FeatureCache(2)
    a, b, c = (("f", "fast", digest) for digest in "abc")
    cache.put(a, "A")
    cache.put(b, "B")
    assert cache.get(a) == "A"  # a is now the most recent
    cache.put(c, "C")
    assert cache.get(b) is None and cache.get(a) == "A" and cache.get(c) == "C"
    assert (cache.hits, cache.misses) == (3, 1)
    off = FeatureCache(0)
    off.put(a, "A")
    assert off.get(a) is None
