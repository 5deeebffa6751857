"""The promotion rule: worse models never ship, other changes always do."""

from __future__ import annotations

import numpy as np

from labelloop.encoder import Features
from labelloop.ml.build import TrainedModel
from labelloop.ml.head import Head
from labelloop.serving import LiveModel, ModelMeta
from labelloop.usecases.promotion import decide

# Two labels on a 2-d toy embedding: "a" points along x, "b" along y.
A, B = np.array([1.0, 0.0]), np.array([0.0, 1.0])
LIVE_HEAD = Head(classes=("a", "b"), coef=np.eye(2) * 10, intercept=np.zeros(2))


def features(rows) -> Features:
    return Features(np.array(rows, dtype=np.float32), [np.zeros(0, np.int32)] * len(rows))


def live(trained: dict[str, str], label_ids=("a", "b"), zero_shot=False) -> LiveModel:
    head = LIVE_HEAD if not zero_shot else Head(classes=label_ids, coef=np.eye(2),
                                                 intercept=np.zeros(2), zero_shot=True)
    return LiveModel(1, head, ModelMeta(1, list(label_ids), zero_shot, trained, {}))


def candidate(truth: list[str], cv_pred: list[str], fresh_pred: dict[int, str] | None = None):
    ids = [f"s{i}" for i in range(len(truth))]
    model = TrainedModel(LIVE_HEAD, 0.9, None, 0.02, cv_pred, [0.9] * len(truth), fresh_pred,
                         5, 10.0, len(truth))
    return model, ModelMeta(2, ["a", "b"], False, dict(zip(ids, truth, strict=True)), {})


def test_a_candidate_worse_on_the_new_annotations_is_not_promoted():
    truth = ["a", "b"] * 10
    rows = [A if t == "a" else B for t in truth]  # the live model gets every one right
    model, meta = candidate(truth, ["b" if t == "a" else "a" for t in truth][:6] + truth[6:])
    d = decide(model, meta, features(rows), live({}), force=False)
    assert not d.promote and "worse" in d.reason and "20 new annotations" in d.reason


def test_an_equal_or_better_candidate_is_promoted_and_old_samples_do_not_count():
    truth = ["a", "b"] * 10
    rows = [A if t == "a" else B for t in truth]
    model, meta = candidate(truth, truth)
    assert decide(model, meta, features(rows), live({}), force=False).promote
    # Wrong only on samples the live model was trained on (same annotation): not compared.
    old = {f"s{i}": truth[i] for i in range(6)}
    model, meta = candidate(truth, ["b" if t == "a" else "a" for t in truth][:6] + truth[6:])
    d = decide(model, meta, features(rows), live(old), force=False)
    assert d.promote and "14 new annotations" in d.reason


def test_a_changed_annotation_counts_as_new():
    truth = ["a", "b"] * 10
    rows = [A if t == "a" else B for t in truth]
    trained_before = {f"s{i}": ("b" if truth[i] == "a" else "a") for i in range(20)}
    model, meta = candidate(truth, truth)
    d = decide(model, meta, features(rows), live(trained_before), force=False)
    assert d.promote and "20 new annotations" in d.reason


def test_force_zero_shot_exit_and_label_changes_always_promote():
    truth = ["a", "b"] * 10
    rows = [A if t == "a" else B for t in truth]
    bad, meta = candidate(truth, ["b" if t == "a" else "a" for t in truth])
    assert decide(bad, meta, features(rows), live({}), force=True).reason == "forced"
    assert decide(bad, meta, features(rows), None, force=False).reason == "first model"
    assert decide(bad, meta, features(rows), live({}, zero_shot=True),
                  force=False).reason == "leaves zero-shot"
    other = live({}, label_ids=("a", "c"))
    assert decide(bad, meta, features(rows), other, force=False).reason == "label set changed"


def test_predictions_with_all_older_data_replace_plain_cv_ones_on_new_annotations():
    truth = ["a", "b"] * 10
    rows = [A if t == "a" else B for t in truth]
    wrong = ["b" if t == "a" else "a" for t in truth]
    # Plain CV (models short of a fold of the older data) got 6 wrong; trained on all of it,
    # the candidate gets them right: it is judged on the latter.
    model, meta = candidate(truth, wrong[:6] + truth[6:], dict(enumerate(truth)))
    assert decide(model, meta, features(rows), live({}), force=False).promote
    model, meta = candidate(truth, truth, dict(enumerate(wrong[:6] + truth[6:])))
    assert not decide(model, meta, features(rows), live({}), force=False).promote


def test_slightly_worse_within_two_standard_errors_is_still_promoted():
    truth = ["a", "b"] * 10
    rows = [A if t == "a" else B for t in truth]
    wrong = ["b" if t == "a" else "a" for t in truth]
    # Wrong on 2 of 20 where the live model is right: 1.45 standard errors worse.
    model, meta = candidate(truth, wrong[:2] + truth[2:])
    d = decide(model, meta, features(rows), live({}), force=False)
    assert d.promote and "standard error 0.069" in d.reason
