"""Model quality and the decision policy, as pure functions: the curve arithmetic against a
hand-computed case, per-label metrics and confused pairs, the recommendation rule, groups of labels,
policies and the decision of one prediction."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from labelloop.ml.quality import Evidence, Quality, curve, lowest_supported, point
from labelloop.thresholds import (
    ThresholdPolicy,
    resolve,
    solve_group,
    solve_label,
    solve_overall,
)

# Six predictions over labels a (0) and b (1), worked out by hand below.
#   predicted truth confidence
ROWS = [(0, 0, 0.95), (0, 0, 0.90), (0, 1, 0.80), (1, 1, 0.70), (1, 0, 0.60), (0, 0, 0.55)]
EV = Evidence(*map(np.array, zip(*ROWS, strict=True)))


def quality(rows, labels=("a", "b"), random=(), picked=()) -> Quality:
    ev = Evidence(*map(np.array, zip(*rows, strict=True))) if rows else Evidence(
        np.zeros(0), np.zeros(0), np.zeros(0))
    return Quality(tuple(labels), ev, np.array(random, dtype=np.int64),
                   picked=np.array(picked, dtype=np.int64))


def test_the_curve_counts_predictions_at_or_above_each_threshold():
    c = curve(EV, np.array([0.0, 0.6, 0.605, 0.8, 0.805, 0.95, 0.955]))
    assert c.covered.tolist() == [6, 5, 4, 3, 2, 1, 0]
    assert c.correct.tolist() == [4, 3, 3, 2, 2, 1, 0]
    assert c.coverage.tolist() == pytest.approx([1, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6, 0])
    assert c.precision[:6].tolist() == pytest.approx([4 / 6, 3 / 5, 3 / 4, 2 / 3, 1, 1])
    assert np.isnan(c.precision[6])
    # Wilson 95 % at 3 of 4: (p + z²/2n ± z·sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n), z = 1.96.
    at = point(c, 2)
    assert (at.precision_low, at.precision_high) == pytest.approx((0.30064, 0.95441), abs=1e-5)
    assert (at.covered, at.total, at.coverage) == (4, 6, pytest.approx(4 / 6))
    # Nothing covered: precision unknown, its interval the whole of [0, 1].
    assert point(c, 6).precision is None
    assert (point(c, 6).precision_low, point(c, 6).precision_high) == (0.0, 1.0)


def test_per_label_curves_are_over_the_predictions_of_that_label():
    c = curve(EV.of_label(0), np.array([0.0, 0.85]))
    assert c.total == 4 and c.covered.tolist() == [4, 2] and c.correct.tolist() == [3, 2]


def test_per_label_metrics_confusion_and_the_most_confused_pairs():
    q = quality(ROWS)
    assert q.confusion.tolist() == [[3, 1], [1, 1]]  # rows: truth, columns: predicted
    a, b = q.per_label
    assert (a.precision, a.recall, a.f1, a.support, a.predicted) == (0.75, 0.75, 0.75, 4, 4)
    assert (b.precision, b.recall, b.support, b.predicted) == (0.5, 0.5, 2, 2)
    assert q.accuracy == pytest.approx(4 / 6)
    [pair] = q.confused_pairs
    assert (pair.a, pair.b, pair.count, pair.rate) == ("a", "b", 2, pytest.approx(2 / 6))
    assert q.pair_ranks == {frozenset({"a", "b"}): 0}


def test_quality_survives_its_json_form():
    q = quality(ROWS, random=[1, 4])
    back = Quality.from_json(q.to_json())
    assert back.labels == q.labels and back.random.tolist() == [1, 4]
    assert back.cv.confidence.tolist() == q.cv.confidence.tolist()
    assert [x.f1 for x in back.per_label] == [x.f1 for x in q.per_label]


# -- the recommendation ----------------------------------------------------------------------

def many(n_right: int, conf_right: float, n_wrong: int, conf_wrong: float, label: int = 0,
         wrong_truth: int = 1) -> list[tuple[int, int, float]]:
    return [(label, label, conf_right)] * n_right + [(label, wrong_truth, conf_wrong)] * n_wrong


def test_the_lowest_threshold_whose_interval_clears_the_target_and_none_where_none_does():
    # 200 right at 0.9 and 20 wrong at 0.3: 200/220 (lower end 0.864) from 0 to 0.3, then
    # 200/200 (lower end 0.981).
    q = quality(many(200, 0.9, 20, 0.3))
    s = solve_overall(q, 0.9)
    assert s.threshold == pytest.approx(0.305) and s.source == "cv"
    assert lowest_supported(s.curve, 0.85) == 0  # 0.864 ≥ 0.85 already at 0
    unsupported = solve_overall(q, 0.99)
    assert unsupported.threshold is None
    assert "220 cross-validated predictions" in unsupported.reason
    assert "at best 0.981" in unsupported.reason


def test_samples_picked_for_being_hard_count_in_the_metrics_but_not_in_the_curves():
    # 200 right at 0.9, and 40 captured mistakes at 0.9 too (as a review queue feeds them).
    rows = many(200, 0.9, 40, 0.9)
    everything = quality(rows)
    assert solve_overall(everything, 0.95).threshold is None  # 200/240 from any threshold
    q = quality(rows, picked=range(200, 240))
    s = solve_overall(q, 0.95)
    assert s.curve.total == 200 and s.threshold == 0.0
    assert q.per_label[0].predicted == 240 and q.accuracy == pytest.approx(200 / 240)
    assert Quality.from_json(q.to_json()).picked.tolist() == list(range(200, 240))


def test_random_captures_are_preferred_once_they_have_the_numbers():
    rows = many(300, 0.9, 0, 0.0)
    assert quality(rows, random=range(199)).source() == "cv"
    q = quality(rows, random=range(200))
    assert q.source() == "random" and solve_overall(q, 0.9).source == "random"
    assert solve_overall(q, 0.9).curve.total == 200


def test_a_target_is_one_threshold_over_the_labels_without_a_rule_of_their_own():
    # a: 300 right at 0.6; b and c: 14 right at 0.9 and 1 wrong at 0.2 each.
    rows = (many(300, 0.6, 0, 0.0, label=0) + many(14, 0.9, 1, 0.2, label=1, wrong_truth=2)
            + many(14, 0.9, 1, 0.2, label=2, wrong_truth=1))
    q = quality(rows, labels=("a", "b", "c"))
    # All together: 328 of 330 from 0 (lower end 0.978): accept everything.
    d = resolve(ThresholdPolicy(accept={"targetPrecision": 0.95}), q, ["a", "b", "c"], 1)
    assert {lid: a.accept for lid, a in d.by_label.items()} == {"a": 0.0, "b": 0.0, "c": 0.0}
    assert {a.source for a in d.by_label.values()} == {"cv"}
    # a holds its own target: b and c are solved on their predictions alone (28 of 30 from
    # 0: lower end 0.787; 28 of 28 above 0.2: 0.879).
    own = ThresholdPolicy(accept={"targetPrecision": 0.85},
                          perLabel={"a": {"accept": {"targetPrecision": 0.98}}})
    d = resolve(own, q, ["a", "b", "c"], 1)
    assert d.by_label["a"].accept == 0.0  # 300 of 300: lower end 0.987
    assert d.by_label["b"].accept == d.by_label["c"].accept == pytest.approx(0.205)
    assert solve_group(q, ["b", "c"], 0.85).threshold == pytest.approx(0.205)
    # Alone, 15 predictions of b cannot show 0.85.
    assert solve_label(q, "b", 0.85).threshold is None


def test_a_label_newer_than_the_version_and_a_zero_shot_version_cannot_promise():
    q = quality(many(300, 0.9, 0, 0.0))
    assert "newer than the model version" in solve_label(q, "zz", 0.9).reason
    d = resolve(ThresholdPolicy(accept={"targetPrecision": 0.9}), None, ["a"], 3)
    assert d.by_label["a"].accept is None and "zero-shot" in d.by_label["a"].reason
    assert d.decide("a", 0.99) == ("review", None)


# -- policies and decisions ---------------------------------------------------------------

def test_a_policy_gives_each_prediction_accept_review_or_reject():
    policy = ThresholdPolicy(accept={"confidence": 0.9}, review={"confidence": 0.6},
                             perLabel={"b": {"accept": {"confidence": 0.7}}})
    d = resolve(policy, None, ["a", "b"], 1)
    assert d.decide("a", 0.9) == ("accept", 0.9)
    assert d.decide("a", 0.8999999) == ("accept", 0.9)  # compared as shown: 6 decimals
    assert d.decide("a", 0.89) == ("review", 0.9)
    assert d.decide("a", 0.59) == ("reject", 0.9)
    assert d.decide("b", 0.75) == ("accept", 0.7)
    assert d.fields("a", 0.5) == {"decision": "reject", "decisionThreshold": 0.9}
    # Without a review rule nothing is rejected.
    plain = resolve(ThresholdPolicy(accept={"confidence": 0.9}), None, ["a"], 1)
    assert plain.decide("a", 0.01) == ("review", 0.9)


def test_a_target_policy_is_solved_on_the_version_and_review_never_exceeds_accept():
    q = quality(many(200, 0.9, 20, 0.3))
    d = resolve(ThresholdPolicy(accept={"targetPrecision": 0.9}, review={"confidence": 0.5}),
                q, ["a", "b"], 4)
    assert d.model_version == 4
    assert d.by_label["a"].accept == pytest.approx(0.305)
    assert d.by_label["a"].review == pytest.approx(0.305)  # capped at accept
    assert d.fields("a", 0.2) == {"decision": "reject", "decisionThreshold": 0.305}


@pytest.mark.parametrize("body, field", [
    ({}, "accept"),
    ({"accept": {}}, "accept"),
    ({"accept": {"confidence": 0.9, "targetPrecision": 0.9}}, "accept"),
    ({"accept": {"confidence": 1.5}}, "accept.confidence"),
    ({"accept": {"targetPrecision": 1.0}}, "accept.targetPrecision"),
    ({"accept": {"confidense": 0.9}}, "accept.confidense"),
    ({"accept": {"confidence": 0.9}, "review": {"targetPrecision": -1}},
     "review.targetPrecision"),
    ({"accept": {"confidence": 0.9}, "perLabel": {"x": {"accept": {"confidence": 2}}}},
     "perLabel.x.accept.confidence"),
])
def test_bad_policies_are_rejected_naming_the_field(body, field):
    with pytest.raises(ValidationError) as err:
        ThresholdPolicy.model_validate(body)
    assert any(".".join(map(str, e["loc"])) == field for e in err.value.errors())
