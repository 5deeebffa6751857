"""A batch's captures in one transaction (`capture_many`): the same outcome as offering its
invokes one by one, and a failed transaction costs no capture that one by one would make."""

from __future__ import annotations

import pytest
from test_api import make_function
from test_capture import TEXTS, policy, queue, used

from labelloop.capture.state import CaptureCache
from labelloop.serving import predict
from labelloop.usecases.capture import Offer, capture, capture_many

MORE = ["how do I add a second admin to the workspace",
        "the invoice shows the wrong company address",
        "notifications arrive twice on my phone",
        "is there a discount for nonprofits",
        "search returns nothing for names with accents",
        "my trial ended but I was never asked for a card",
        "the calendar sync stopped after the update",
        "can I pay by bank transfer instead of card",
        "images in the editor appear blurry",
        "which plan includes single sign-on"]
POLICY = {"random": {"rate": 0.5, "quota": 3}, "uncertainty": {"threshold": 0.0, "quota": 4},
          "rare_class": {"quota": 0}}


def offers(d, fid: str, texts: list[str], ids: str = "s") -> list[Offer]:
    view = d.serving.view(fid)
    features = d.encoders["fast"].featurize(texts, 32)
    return [Offer(p, features.take([k]), f"{ids}{k:04d}", t, None) for k, (t, p) in
            enumerate(zip(texts, predict(view.model, view.labels, features), strict=True))]


def buffer(api, fid) -> dict[str, tuple[str, float]]:
    return {i["data"]: (i["captureReason"], i["priority"])
            for i in queue(api, fid, "batchSize=100")}


def run(api, one_by_one: bool, texts: list[str]) -> tuple[list, dict, dict]:
    """A fresh function with POLICY and a seeded cache: `texts` offered at once or singly."""
    from labelloop import container

    fid = make_function(api)
    policy(api, fid, POLICY)
    d = container.deps()
    d.__dict__["captures"] = CaptureCache(d.samples, d.ledger, d.objects, ttl=3600, seed=11)
    bare = fid.removeprefix("function_")
    view = d.serving.view(bare)
    batch = offers(d, bare, texts)
    if one_by_one:
        out = [capture(d, view, view.model, o.prediction, o.features, o.sample_id, o.text,
                       o.external_id) for o in batch]
    else:
        out = capture_many(d, view, view.model, batch)
    return out, buffer(api, fid), used(api, fid)


@pytest.mark.parametrize("texts", [TEXTS[:4], TEXTS + MORE], ids=["room", "fills"])
def test_many_at_once_decide_as_one_by_one(api, texts):
    """"room": every capture fits in one transaction; "fills": the quotas fill midway, so
    the rest is decided one by one after it (reading each new least informative item)."""
    many = run(api, False, texts)
    single = run(api, True, texts)
    assert many == single
    out, buffered, counters = many
    captured = sum(x is not None for x in out)
    assert len(buffered) == sum(counters.values()) > 0
    if len(texts) > 10:  # both quotas full, and items were replaced
        assert counters == {"random": 3, "uncertainty": 4, "rare_class": 0,
                            "near_threshold": 0, "confused_pair": 0}
        assert captured > 7
    else:
        assert captured == len(buffered)


def test_a_claimed_text_costs_the_others_nothing(api):
    """A dismissed text keeps its data-hash claim, which fails the slab's transaction: the
    slab is then offered one by one, and everything but that text is captured."""
    from labelloop import container

    fid = make_function(api)
    policy(api, fid, {"uncertainty": {"threshold": 0.0, "quota": 10}, "random": {"quota": 0},
                      "rare_class": {"quota": 0}})
    status, out, _ = api.call("POST", f"/v1/functions/{fid}/invoke", {"data": TEXTS[0]})
    assert status == 200, out
    assert api.call("POST", f"/v1/functions/{fid}/review/{out['sampleId']}/dismiss")[0] == 200
    d = container.deps()
    bare = fid.removeprefix("function_")
    view = d.serving.view(bare)
    result = capture_many(d, view, view.model, offers(d, bare, TEXTS[:5]))
    assert result == [None] + ["uncertainty"] * 4
    assert sorted(buffer(api, fid)) == sorted(TEXTS[1:5])
    assert used(api, fid)["uncertainty"] == 4


def test_a_stale_counter_fails_the_transaction_not_the_quota(api):
    """Another container filled the strategy after this one read its counter: the combined
    increment does not fit, nothing of the slab is written, and one by one (after a re-read)
    only replacements remain possible."""
    from labelloop import container

    fid = make_function(api)
    policy(api, fid, {"uncertainty": {"threshold": 0.0, "quota": 3}, "random": {"quota": 0},
                      "rare_class": {"quota": 0}})
    d = container.deps()
    d.__dict__["captures"] = CaptureCache(d.samples, d.ledger, d.objects, ttl=3600)
    bare = fid.removeprefix("function_")
    view = d.serving.view(bare)
    d.captures.state(bare, view.function.capture_policy, view.model)  # reads "0 used"
    other = container.Deps()
    other.__dict__["encoders"] = d.encoders
    other.__dict__["captures"] = CaptureCache(other.samples, other.ledger, other.objects, ttl=0)
    assert capture_many(other, view, view.model, offers(other, bare, MORE[:3], "a")) == [
        "uncertainty"] * 3
    late = capture_many(d, view, view.model, offers(d, bare, TEXTS[:3], "b"))
    assert used(api, fid)["uncertainty"] == 3 == len(buffer(api, fid))
    # Decided again on a fresh read, one by one: each that was taken replaced an item.
    kept = set(buffer(api, fid))
    assert {t for t, x in zip(TEXTS[:3], late, strict=True) if x} <= kept
    assert len(kept & set(MORE[:3])) == 3 - sum(x is not None for x in late)

