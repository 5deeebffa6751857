"""When a training run retrains warm from the live version and when it searches again."""

from __future__ import annotations

import numpy as np
import pytest

from labelloop.ml.head import Head
from labelloop.serving import LiveModel, ModelMeta, Search
from labelloop.usecases.search_plan import plan, record

HEAD = Head(classes=("a", "b"), coef=np.eye(2), intercept=np.zeros(2), temperature=0.7)
IDS = [f"s{i}" for i in range(100)]
SEARCHED = Search(30.0, 3, 100, 0)


def live(search=SEARCHED, label_ids=("a", "b"), zero_shot=False, ids=IDS):
    trained = {sid: "a" for sid in ids}
    cv = {sid: ["a", 0.9] for sid in ids}
    head = HEAD if not zero_shot else Head(classes=("a", "b"), coef=np.eye(2),
                                           intercept=np.zeros(2), zero_shot=True)
    return LiveModel(3, head, ModelMeta(3, list(label_ids), zero_shot, trained, cv, search))


def fresh_last(k: int, n: int = 100) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[n - k:] = True
    return out


def run(live_model, ids=IDS, fresh=None, force=False, min_samples=50, growth=0.2):
    fresh = fresh_last(5, len(ids)) if fresh is None else fresh
    return plan(live_model, {"a", "b"}, ids, fresh, force, min_samples, growth)


def test_a_few_new_annotations_retrain_warm_from_the_live_settings():
    p = run(live())
    assert p.warm is not None and p.warm.C == 30.0 and p.warm.n_folds == 3
    assert p.warm.head is HEAD
    # Carried predictions for what the live version had, none for the fresh samples.
    # (stored before own-label probabilities: known where the prediction was the label)
    assert p.warm.cv[:95] == [("a", 0.9, 0.9)] * 95 and p.warm.cv[95:] == [None] * 5
    assert p.changed == 5 and "5 of 100" in p.reason
    # The new version keeps the search record with the changes counted.
    assert record(p, 99.0, 5, 100) == Search(30.0, 3, 100, 5)


def test_changes_add_up_across_warm_retrains_until_a_search():
    assert run(live(Search(30.0, 3, 100, 14))).warm is not None  # 14 + 5 = 19 <= 20
    p = run(live(Search(30.0, 3, 100, 16)))  # 21 > 20
    assert p.warm is None and "21 samples changed" in p.reason
    assert record(p, 10.0, 3, 100) == Search(10.0, 3, 100, 0)


def test_removed_samples_count_as_changes():
    p = run(live(), ids=IDS[:85], fresh=fresh_last(5, 85))  # 15 gone + 5 fresh = 20
    assert p.warm is not None and p.changed == 20
    p = run(live(), ids=IDS[:80], fresh=fresh_last(5, 80))  # 20 gone + 5 fresh
    assert p.warm is None and "25 samples changed" in p.reason


@pytest.mark.parametrize(("case", "why"), [
    (dict(force=True), "forced"),
    (dict(live_model=None), "no trained live version"),
    (dict(live_model=live(zero_shot=True)), "no trained live version"),
    (dict(live_model=live(label_ids=("a", "c"))), "label set changed"),
    (dict(live_model=live(search=None)), "no search record"),
    (dict(min_samples=101), "fewer than 101"),
])
def test_other_cases_search(case, why):
    case.setdefault("live_model", live())
    p = run(**case)
    assert p.warm is None and why in p.reason


def test_a_sample_the_live_version_had_without_a_prediction_means_a_search():
    model = live()
    del model.meta.cv["s0"]
    assert "lacks" in run(model).reason
