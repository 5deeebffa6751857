"""Training the head: cross-validated C / lexical weight / temperature, and its reports."""

import numpy as np
import pytest

from labelloop.ml.head import log_softmax, softmax
from labelloop.ml.trainer import HeadTrainer, Priors, assign_folds, bag_of_tokens, fit_temperature
from labelloop.ml.warm_start import WarmStart


def clusters(n_per_label: dict[str, int], dim: int = 16, spread: float = 0.6, seed: int = 0):
    """Unit-norm points around one random direction per label, with word sets per label."""
    rng = np.random.default_rng(seed)
    X, y, tokens = [], [], []
    for j, (label, n) in enumerate(n_per_label.items()):
        center = rng.normal(size=dim)
        for _ in range(n):
            v = center / np.linalg.norm(center) + spread * rng.normal(size=dim) / np.sqrt(dim)
            X.append(v / np.linalg.norm(v))
            y.append(label)
            # A label-specific word (id 1000 + j) most of the time, plus shared noise words.
            words = set(rng.choice(50, size=4).tolist())
            if rng.random() < 0.8:
                words.add(1000 + j)
            tokens.append(np.array(sorted(words), dtype=np.int32))
    return np.array(X, dtype=np.float32), np.array(y), tokens


def test_cross_validation_reports_every_sample_and_label():
    X, y, tokens = clusters({"a": 12, "b": 12, "c": 12})
    t = HeadTrainer().fit(X, y, tokens)
    cv = t.cv_
    assert cv.n_folds == 5
    assert cv.confidences.shape == (36,) and len(cv.predictions) == 36
    assert np.all((cv.confidences >= 1 / 3) & (cv.confidences <= 1))  # the top of three
    assert cv.accuracy == pytest.approx(np.mean(np.array(cv.predictions) == y))
    assert set(cv.per_label_accuracy) == {"a", "b", "c"}
    assert 0.0 <= cv.ece <= 1.0
    assert cv.accuracy > 0.8  # well separated clusters
    assert t.C_ in t.Cs and t.lexical_weight_ in t.lexical_weights and t.temperature_ > 0


def test_labels_with_one_sample_do_not_break_cross_validation():
    X, y, tokens = clusters({"a": 6, "b": 6, "lonely": 1})
    prior_X, prior_y, prior_t = clusters({"a": 1, "b": 1, "lonely": 1}, seed=0)
    t = HeadTrainer().fit(X, y, tokens, Priors(prior_X, prior_t, list(prior_y)))
    assert list(t.classes_) == ["a", "b", "lonely"]
    assert len(t.cv_.predictions) == 13
    assert "lonely" in t.cv_.per_label_accuracy
    # Held out, "lonely" is still predictable thanks to its prior.
    assert t.predict(X[y == "lonely"], [tokens[12]])[0] in t.classes_


def test_labels_known_only_from_priors_are_served():
    X, y, tokens = clusters({"a": 5, "b": 5})
    pX, py, pt = clusters({"a": 1, "b": 1, "new": 1}, seed=3)
    t = HeadTrainer().fit(X, y, tokens, Priors(pX, pt, list(py)))
    assert t.head_.classes == ("a", "b", "new")
    assert t.predict_proba(X[:2], tokens[:2]).shape == (2, 3)


def test_served_head_equals_the_fitted_sklearn_models():
    X, y, tokens = clusters({"a": 10, "b": 10, "c": 10}, seed=2)
    t = HeadTrainer(lexical_weights=(0.3,)).fit(X, y, tokens)
    emb = t.embedding_model_.decision_function(X)
    lex_tokens = [np.append(tok, 99999) for tok in tokens]  # an unseen id: norm only
    from labelloop.ml.trainer import _compact

    bag = bag_of_tokens([_compact(tok, t.vocab_) for tok in lex_tokens], len(t.vocab_))
    lex = t.lexical_model_.decision_function(bag)
    expected = softmax((0.7 * log_softmax(emb) + 0.3 * log_softmax(lex)) / t.temperature_)
    np.testing.assert_allclose(t.predict_proba(X, lex_tokens), expected, rtol=1e-4, atol=1e-6)


def test_two_labels_serve_both_classes():
    X, y, tokens = clusters({"yes": 8, "no": 8}, seed=4)
    t = HeadTrainer().fit(X, y, tokens)
    p = t.predict_proba(X, tokens)
    assert p.shape == (16, 2)
    assert (t.head_.classes_[p.argmax(1)] == y).mean() > 0.8


def test_embeddings_only_training_skips_the_lexical_model():
    X, y, _ = clusters({"a": 6, "b": 6})
    t = HeadTrainer().fit(X, y)
    assert t.lexical_weight_ == 0 and not t.head_.uses_tokens


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(4000, 5))
    classes = np.array(list("abcde"))
    p = softmax(logits / 2.5)
    y = classes[[rng.choice(5, p=row) for row in p]]
    temperature, nll = fit_temperature(logits, y, classes)
    assert temperature == pytest.approx(2.5, rel=0.1)
    assert nll < fit_temperature(logits, y, classes, lo=0.99, hi=1.01)[1]


def test_folds_deal_each_label_round_robin():
    y = np.array(["a"] * 10 + ["b"] * 5 + ["c"])
    folds = assign_folds(y, 5, np.random.default_rng(0))
    assert folds.max() == 4
    for f in range(5):
        assert set(y[folds == f]) >= {"a", "b"}
        assert (y[folds == f] == "a").sum() == 2
    np.testing.assert_array_equal(folds, assign_folds(y, 5, np.random.default_rng(0)))
    assert assign_folds(np.array(["a", "a", "b", "b"]), 5, np.random.default_rng(0)).max() == 1


def test_bad_input_is_rejected():
    X, y, tokens = clusters({"a": 3, "b": 3})
    with pytest.raises(ValueError, match="rows"):
        HeadTrainer().fit(X[:-1], y)
    with pytest.raises(ValueError, match="two labels"):
        HeadTrainer().fit(X[:3], y[:3])
    with pytest.raises(ValueError, match="tokens"):
        HeadTrainer().fit(X, y, tokens[:-1])


def test_fresh_samples_are_predicted_by_models_with_all_older_data():
    X, y, tokens = clusters({"a": 12, "b": 12, "c": 12}, spread=1.2)
    fresh = np.zeros(len(y), dtype=bool)
    fresh[[0, 13, 14, 30]] = True
    t = HeadTrainer(lexical_weights=(0.3,)).fit(X, y, tokens, fresh=fresh)
    assert set(t.fresh_predictions_) == {0, 13, 14, 30}
    assert set(t.fresh_predictions_.values()) <= {"a", "b", "c"}
    # One fresh sample: its prediction is exactly that of a model fitted on all the others.
    one = np.zeros(len(y), dtype=bool)
    one[5] = True
    t1 = HeadTrainer(lexical_weights=(0.3,)).fit(X, y, tokens, fresh=one)
    keep = ~one
    ref = HeadTrainer(Cs=(t1.C_,), lexical_weights=(0.3,)).fit(
        X[keep], y[keep], [tk for tk, k in zip(tokens, keep, strict=True) if k])
    assert t1.fresh_predictions_[5] == ref.predict(X[one], [tokens[5]])[0]
    assert HeadTrainer().fit(X, y, tokens).fresh_predictions_ == {}


def test_a_held_out_sample_is_never_validated_against_its_own_views():
    """Labels drawn at random: nothing to learn, so cross-validated accuracy stays near chance.
    Were a held-out sample's views (near copies of it) in its fold's training set, every
    sample would be recognised by them and the accuracy would be near 1."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 64)).astype(np.float32)  # n < d: any labelling can be fitted
    y = rng.choice(["a", "b"], size=40)
    views = [x + rng.normal(scale=0.01, size=(6, 64)).astype(np.float32) for x in X]
    assert HeadTrainer(random_state=0).fit(X, y, views=views).cv_.accuracy < 0.75
    # The leak this guards against: views as samples of their own, dealt into other folds.
    leaky = HeadTrainer(random_state=0).fit(np.vstack([X, *views]),
                                            np.concatenate([y, np.repeat(y, 6)]))
    assert leaky.cv_.accuracy > 0.9


def test_views_teach_the_final_model_with_their_samples_label():
    """Two samples per label; label a's views reach toward a point that, from the samples
    alone, lies on b's side: with the views it is a."""
    a = np.array([[1.0, 0.0], [1.0, 0.2]], dtype=np.float32)
    b = np.array([[-1.0, 0.0], [-1.0, 0.2]], dtype=np.float32)
    X, y = np.vstack([a, b]), ["a", "a", "b", "b"]
    probe = np.array([[-0.4, 3.0]], dtype=np.float32)
    toward = [np.linspace(s, [-0.4, 3.0], 7)[1:].astype(np.float32) for s in a]
    assert HeadTrainer(random_state=0).fit(X, y).predict(probe)[0] == "b"
    with_views = HeadTrainer(random_state=0).fit(X, y, views=[*toward, None, None])
    assert with_views.predict(probe)[0] == "a"
    with pytest.raises(ValueError, match="views must have one entry per sample"):
        HeadTrainer().fit(X, y, views=[None])


def _warm_case():
    """A live model trained on all but the last six samples of each label, and the same
    samples with those six added."""
    X, y, tokens = clusters({"a": 60, "b": 60, "c": 60}, spread=1.0, seed=4)
    new = np.zeros(len(y), dtype=bool)
    for label in "abc":
        new[np.flatnonzero(y == label)[-6:]] = True
    old = ~new
    live = HeadTrainer(lexical_weights=(0.3,)).fit(
        X[old], y[old], [t for t, k in zip(tokens, old, strict=True) if k])
    carried = iter(zip(live.cv_.predictions, live.cv_.confidences.tolist(),
                      live.cv_.own.tolist(), strict=True))
    cv = [None if n else next(carried) for n in new]
    return X, y, tokens, new, live, WarmStart(live.head_, live.C_, live.cv_.n_folds, cv)


def test_a_warm_retrain_predicts_as_a_full_retrain_at_the_same_settings():
    X, y, tokens, new, live, warm = _warm_case()
    t = HeadTrainer(lexical_weights=(0.3,)).fit(X, y, tokens, fresh=new, warm=warm)
    assert t.warm_ and t.C_ == live.C_ and t.temperature_ == live.temperature_
    full = HeadTrainer(Cs=(live.C_,), lexical_weights=(0.3,)).fit(X, y, tokens)
    exact = HeadTrainer(Cs=(live.C_,), lexical_weights=(0.3,), tol=1e-7,
                        lexical_tol=1e-7).fit(X, y, tokens)
    probe, _, probe_t = clusters({"a": 100, "b": 100, "c": 100}, spread=1.0, seed=4)

    def proba(trainer):  # before temperature: the full retrains fit their own
        return softmax(trainer.head_.log_scores(probe, probe_t))

    ours, theirs, truth = proba(t), proba(full), proba(exact)
    assert (ours.argmax(1) == theirs.argmax(1)).mean() >= 0.99
    # Both stop at a tolerance; the warm retrain is as near the exact solution as the full.
    assert np.abs(ours - truth).max() <= max(np.abs(theirs - truth).max(), 0.02) + 0.01
    # Cross-validation: carried over for the samples the live model had, fresh for the rest.
    assert t.cv_.predictions[:54] == live.cv_.predictions[:54]
    assert set(t.fresh_predictions_) == set(np.flatnonzero(new).tolist())
    assert [t.cv_.predictions[i] for i in np.flatnonzero(new)] == [
        t.fresh_predictions_[i] for i in np.flatnonzero(new)]


def test_a_warm_retrain_learns_the_new_annotations():
    """The new samples relabelled: the live model says their old labels; the warm retrain,
    like a full one, has moved toward the new ones."""
    X, y, tokens, new, _, warm = _warm_case()
    relabelled = y.copy()
    relabelled[new] = np.where(y[new] == "a", "b", "a")[: new.sum()]
    t = HeadTrainer(lexical_weights=(0.3,)).fit(X, relabelled, tokens, fresh=new, warm=warm)
    live_p = warm.head.predict_proba(X[new], [tokens[i] for i in np.flatnonzero(new)])
    warm_p = t.predict_proba(X[new], [tokens[i] for i in np.flatnonzero(new)])
    cols = np.searchsorted(t.classes_, relabelled[new])
    rows = np.arange(new.sum())
    assert (warm_p[rows, cols] > live_p[rows, cols]).all()


def test_a_warm_start_needs_a_carried_prediction_for_every_sample_it_had():
    X, y, tokens, new, _, warm = _warm_case()
    broken = WarmStart(warm.head, warm.C, warm.n_folds, [None] * len(y))
    with pytest.raises(ValueError, match="neither fresh"):
        HeadTrainer(lexical_weights=(0.3,)).fit(X, y, tokens, fresh=new, warm=broken)
