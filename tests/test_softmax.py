"""The head's solver: scikit-learn's objective in float32 with our L-BFGS."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from labelloop.ml import lbfgs
from labelloop.ml.softmax import Params, SoftmaxRegression


def blobs(n_per=40, k=4, dim=12, seed=0, spread=1.5):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, dim))
    X = np.vstack([c + spread * rng.normal(size=(n_per, dim)) for c in centers])
    y = np.repeat([f"l{j}" for j in range(k)], n_per)
    return X.astype(np.float32), y


@pytest.mark.parametrize("C", [0.1, 10.0])
def test_it_solves_scikit_learns_problem(C):
    X, y = blobs()
    ours = SoftmaxRegression(C=C, tol=1e-7).fit(X, y)
    ref = LogisticRegression(C=C, tol=1e-10, max_iter=5000).fit(X, y)
    assert list(ours.classes_) == list(ref.classes_)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=2e-3)
    assert (ours.predict(X) == ref.predict(X)).all()


def test_a_weight_of_two_is_the_sample_twice():
    X, y = blobs(n_per=15)
    w = np.ones(len(y))
    w[:5] = 2.0
    weighted = SoftmaxRegression(C=1.0, tol=1e-7).fit(X, y, sample_weight=w)
    twice = SoftmaxRegression(C=1.0, tol=1e-7).fit(np.vstack([X, X[:5]]),
                                                  np.concatenate([y, y[:5]]))
    np.testing.assert_allclose(weighted.coef_, twice.coef_, atol=2e-3)


def test_a_warm_start_reaches_the_cold_solution():
    X, y = blobs(n_per=60)
    old = SoftmaxRegression(C=10.0).fit(X[:-10], y[:-10])  # lacks the last ten samples
    # A tol float32 can reach: below ~1e-6 both fits end where the line search stalls, and
    # their iteration counts say nothing (with numpy 2.4: warm 79, cold 48 at 1e-7).
    cold = SoftmaxRegression(C=10.0, tol=1e-5).fit(X, y)
    warm = SoftmaxRegression(C=10.0, tol=1e-5).fit(X, y, init=old.params())
    np.testing.assert_allclose(warm.predict_proba(X), cold.predict_proba(X), atol=1e-3)
    assert warm.n_iter_ < cold.n_iter_


def test_a_warm_start_learns_even_when_its_start_already_meets_tol():
    """Near a solution the mean-loss gradient is below any usual `tol` (the reason for
    `rel_tol`): with it the fit still moves toward the new samples."""
    X, y = blobs(n_per=200, spread=3.0)
    old = SoftmaxRegression(C=10.0, tol=1e-7).fit(X[:-1], y[:-1])
    loose = SoftmaxRegression(C=10.0, tol=1.0, rel_tol=0.0).fit(X, y, init=old.params())
    assert loose.n_iter_ == 0  # accepted as it was
    learnt = SoftmaxRegression(C=10.0, tol=1.0, rel_tol=0.1).fit(X, y, init=old.params())
    exact = SoftmaxRegression(C=10.0, tol=1e-8).fit(X, y)
    assert learnt.n_iter_ > 0
    before = np.abs(old.coef_ - exact.coef_).max()
    assert np.abs(learnt.coef_ - exact.coef_).max() < 0.5 * before


def test_two_classes_keep_a_row_each_and_sparse_input_is_the_same_problem():
    X, y = blobs(k=2)
    dense = SoftmaxRegression(C=1.0, tol=1e-7).fit(X, y)
    assert dense.coef_.shape == (2, X.shape[1])
    sp = SoftmaxRegression(C=1.0, tol=1e-7).fit(sparse.csr_matrix(X), y)
    np.testing.assert_allclose(sp.coef_, dense.coef_, atol=1e-3)
    np.testing.assert_allclose(sp.predict_proba(sparse.csr_matrix(X)), dense.predict_proba(X),
                               atol=1e-4)


def test_params_rows_follow_the_classes_asked_for():
    p = Params(np.array(["a", "c"]), np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([5.0, 6.0]))
    coef, intercept = p.rows(np.array(["a", "b", "c"]))
    np.testing.assert_array_equal(coef, [[1, 2], [0, 0], [3, 4]])
    np.testing.assert_array_equal(intercept, [5, 0, 6])
    with pytest.raises(ValueError, match="features"):
        SoftmaxRegression().fit(np.zeros((4, 3)), ["a", "b", "a", "c"], init=p)


def test_lbfgs_finds_the_minimum_of_an_ill_conditioned_quadratic():
    scales = np.logspace(0, 3, 50)
    target = np.linspace(-1, 1, 50)

    def fun(x):
        r = x.astype(np.float64) - target
        return float(0.5 * (scales * r * r).sum()), (scales * r).astype(np.float32)

    result = lbfgs.minimize(fun, np.zeros(50), gtol=1e-4)
    assert result.converged and result.n_iter < 200
    np.testing.assert_allclose(result.x, target, atol=1e-4)
