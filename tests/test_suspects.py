"""Suspected mislabels: the confident-learning ranking, the own-label probabilities training
stores for it, and the queue through the API (keep, relabel, delete)."""

from __future__ import annotations

import numpy as np
import pytest
from test_training import _warm_case, clusters

from labelloop.ml.suspects import suspects, thresholds
from labelloop.ml.trainer import HeadTrainer
from labelloop.usecases.search_plan import own_probability


def test_a_sample_is_suspect_under_its_labels_threshold_while_another_is_over_its_own():
    trained = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "b2": "B", "x": "A", "y": "A"}
    cv = {"a1": ["A", 0.9, 0.9], "a2": ["A", 0.8, 0.8], "a3": ["A", 0.7, 0.7],
          "b1": ["B", 0.6, 0.6], "b2": ["B", 0.5, 0.5],
          "x": ["B", 0.7, 0.2],  # A's threshold is 0.66, B's 0.55: suspect
          "y": ["B", 0.5, 0.45]}  # under B's threshold: the model is not sure of B
    assert thresholds(trained, cv)["B"] == pytest.approx(0.55)
    assert [s.sample_id for s in suspects(trained, cv)] == ["x"]
    cv["y"] = ["B", 0.95, 0.04]
    ranked = suspects(trained, cv)
    assert [s.sample_id for s in ranked] == ["y", "x"]  # the larger margin first
    assert ranked[0].annotated == "A" and ranked[0].predicted == "B"
    assert ranked[0].margin == pytest.approx(0.91)
    cv["x"] = ["B", 0.7, None]  # own probability unknown (an older version): not judged
    assert [s.sample_id for s in suspects(trained, cv)] == ["y"]


def test_cross_validation_stores_each_samples_own_label_probability_and_finds_flips():
    X, y, tokens = clusters({"a": 30, "b": 30, "c": 30}, spread=0.5, seed=2)
    flipped = [3, 40, 75]
    y = y.copy()
    y[flipped] = ["b", "c", "a"]
    t = HeadTrainer(lexical_weights=(0.0,)).fit(X, y, tokens)
    own, conf = t.cv_.own, t.cv_.confidences
    same = np.array(t.cv_.predictions) == y
    assert np.allclose(own[same], conf[same]) and np.all(own[~same] < conf[~same])
    ids = [f"s{i}" for i in range(len(y))]
    trained = dict(zip(ids, y.tolist(), strict=True))
    cv = {sid: [p, c, o] for sid, p, c, o in
          zip(ids, t.cv_.predictions, conf.tolist(), own.tolist(), strict=True)}
    found = [s.sample_id for s in suspects(trained, cv)]
    assert set(found[:3]) == {f"s{i}" for i in flipped}


def test_a_warm_retrain_carries_own_probabilities_and_gives_fresh_samples_their_own():
    X, y, tokens, new, live, warm = _warm_case()
    t = HeadTrainer(lexical_weights=(0.3,)).fit(X, y, tokens, fresh=new, warm=warm)
    old = np.flatnonzero(~new)
    assert t.cv_.own[old].tolist() == live.cv_.own.tolist()
    fresh = t.cv_.own[new]
    assert np.all((fresh > 0) & (fresh <= 1))
    same = np.array(t.cv_.predictions)[new] == y[new]
    assert np.allclose(fresh[same], t.cv_.confidences[new][same])


def test_a_stored_entry_from_before_own_probabilities_is_known_only_where_it_agreed():
    assert own_probability(["A", 0.8], "A") == 0.8
    assert np.isnan(own_probability(["B", 0.8], "A"))
    assert own_probability(["B", 0.8, 0.1], "A") == 0.1
    assert np.isnan(own_probability(["B", 0.8, None], "A"))


LABELS = {"billing": "Charges, invoices, refunds and payment methods",
          "bug": "Something in the product is broken",
          "account": "Logins, passwords, profile and account settings"}
TEXTS = {
    "billing": ["I was charged twice this month", "Can I get a refund for the annual plan?",
                "Please send me an invoice with our VAT number",
                "My credit card payment was declined", "Why did my subscription price go up?",
                "I need a receipt for last month's payment", "Cancel my plan and refund me",
                "The invoice total is wrong"],
    "bug": ["The app crashes when I open settings", "The save button does nothing",
            "Export to PDF produces an empty file", "The page is blank after I log in",
            "Search results never finish loading", "Uploading a photo shows an error 500",
            "The chart on the dashboard is broken", "Notifications arrive twice and then freeze"],
    "account": ["How do I reset my password?", "I want to change the email on my profile",
                "Please delete my account", "I cannot log in with my username",
                "How do I enable two-factor authentication?", "Change my display name",
                "My account got locked after three attempts", "Add a second user to my login"],
}
FLIPPED = {"The invoice total is wrong": "account",
           "Search results never finish loading": "billing",
           "How do I reset my password?": "bug"}


def flipped_function(client, name: str) -> str:
    """A function (through `labelloop.client.Client`) with LABELS and TEXTS imported, the
    FLIPPED ones mislabelled; not trained yet."""
    fid = client.create_function(name)["id"]
    for label, description in LABELS.items():
        client.create_label(fid, label, description)
    results = client.create_samples(fid, [
        {"data": text, "annotation": {"labelName": FLIPPED.get(text, label)}}
        for label, texts in TEXTS.items() for text in texts], train=False)
    assert all(r["status"] == 200 for r in results), results
    return fid


def test_the_suspect_queue_through_the_api_keep_relabel_delete(api):
    samples = [(t, FLIPPED.get(t, label)) for label, texts in TEXTS.items() for t in texts]
    from test_api import make_function

    fid = make_function(api, labels=LABELS, samples=samples)
    status, queue, _ = api.call("GET", f"/v1/functions/{fid}/review",
                                query="strategy=suspect")
    assert status == 200, queue
    top = {q["data"]: q for q in queue[:3]}
    assert set(top) == set(FLIPPED)
    labels = {lb["name"]: lb["id"] for lb in api.call("GET", f"/v1/functions/{fid}/labels")[1]}
    for text, q in top.items():
        truth = next(label for label, texts in TEXTS.items() if text in texts)
        assert q["annotation"]["labelId"] == labels[FLIPPED[text]]
        assert q["suspect"]["annotatedLabelId"] == labels[FLIPPED[text]]
        assert q["prediction"]["labelId"] == q["suspect"]["labelId"] == labels[truth]
        assert q["suspect"]["confidence"] > q["suspect"]["annotatedConfidence"]
        assert q["suspect"]["modelVersion"] >= 1
    keep, relabel, drop = (top[t]["id"] for t in FLIPPED)
    status, kept, _ = api.call("POST", f"/v1/functions/{fid}/review/{keep}/keep")
    assert status == 200 and kept["kept"] is True, kept
    status, body, _ = api.call("PUT", f"/v1/functions/{fid}/samples/{relabel}/annotation",
                               {"labelId": labels["bug"]})
    assert status == 200, body
    assert api.call("DELETE", f"/v1/functions/{fid}/samples/{drop}")[0] == 200
    after = api.call("GET", f"/v1/functions/{fid}/review", query="strategy=suspect")[1]
    assert not {keep, relabel, drop} & {q["id"] for q in after}
    # Kept holds while the label stays; relabelled, it may be suspected again.
    status, body, _ = api.call("PUT", f"/v1/functions/{fid}/samples/{keep}/annotation",
                               {"labelId": labels["billing"]})
    assert status == 200 and "kept" not in body
    # Errors: not annotated, unknown sample, and the strategy list names suspect.
    status, out, _ = api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "hello there"})
    status, body, _ = api.call("POST", f"/v1/functions/{fid}/review/{out['sampleId']}/keep")
    assert status in (404, 409), body
    assert api.call("POST", f"/v1/functions/{fid}/review/{drop}/keep")[0] == 404
    status, body, _ = api.call("GET", f"/v1/functions/{fid}/review", query="strategy=nope")
    assert status == 400 and "suspect" in body["message"]


def test_no_suspects_before_a_trained_model(api):
    from test_api import make_function

    fid = make_function(api, train=False)
    status, queue, _ = api.call("GET", f"/v1/functions/{fid}/review", query="strategy=suspect")
    assert status == 200 and queue == []
