"""Multinomial logistic regression with an L2 penalty, solved in float32 (training only).

scikit-learn's objective, so C means what it means there:

    Σ wᵢ·(−log pᵢ[yᵢ]) / Σ wᵢ  +  ‖W‖² / (2·C·Σ wᵢ)      (the intercept is not penalised)

The loss and its gradient are two float32 matrix products and a softmax per evaluation, and
the L-BFGS (`labelloop.ml.lbfgs`) adds a few vector operations: on 15,000 × 384 embeddings with
150 labels a fit at C = 10 took 1.6 s here against 7.9 s for scikit-learn's
`LogisticRegression` (float64, a Cython loss and scipy's L-BFGS-B). A fit can start from
another model's parameters (`init`): a retrain after a few new annotations starts next to its
solution.

`tol` bounds the gradient of the *mean* loss, as scikit-learn's does; on thousands of samples
that is loose enough to accept a start near the solution as it is (the same samples at a
larger C, the live model before 50 new annotations): a fit from `init` also goes on until the
gradient's norm is `rel_tol` of what it was at the start, so the change is learnt.

Every class in `y` gets a row; the two-class case keeps two (scikit-learn keeps one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin

from labelloop.ml import lbfgs
from labelloop.ml.head import softmax

# CLINC150, C = 100, 50 new annotations on 14,000: at 0.5 the 50 hardest (lowest live
# confidence) were all predicted right but their probabilities stood 0.31 from the exact
# solution's (a cold fit to `tol` stands 0.06 off); 0.35 came within 0.10 in twice the steps.
REL_TOL = 0.4
_LOGIT_FLOOR = np.float32(-60.0)


@dataclass(frozen=True)
class Params:
    """A fitted model's classes and parameters: where another fit can start from."""

    classes: np.ndarray  # (K,)
    coef: np.ndarray  # (K, d)
    intercept: np.ndarray  # (K,)

    def rows(self, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(coef, intercept) for `classes`, zero where this model has no such class."""
        coef = np.zeros((len(classes), self.coef.shape[1]), dtype=np.float64)
        intercept = np.zeros(len(classes), dtype=np.float64)
        pos = {c: i for i, c in enumerate(np.asarray(self.classes).tolist())}
        for j, c in enumerate(np.asarray(classes).tolist()):
            if c in pos:
                coef[j] = self.coef[pos[c]]
                intercept[j] = self.intercept[pos[c]]
        return coef, intercept


class SoftmaxRegression(ClassifierMixin, BaseEstimator):
    def __init__(self, C: float = 1.0, tol: float = 1e-4, rel_tol: float = REL_TOL,
                 max_iter: int = 1000):
        self.C = C
        self.tol = tol
        self.rel_tol = rel_tol
        self.max_iter = max_iter

    def fit(self, X, y, sample_weight: np.ndarray | None = None,
            init: Params | None = None) -> SoftmaxRegression:
        X = sparse.csr_matrix(X, dtype=np.float32) if sparse.issparse(X) else \
            np.ascontiguousarray(X, dtype=np.float32)
        self.classes_, target = np.unique(np.asarray(y), return_inverse=True)
        n, d = X.shape
        k = len(self.classes_)
        if len(target) != n:
            raise ValueError(f"X has {n} rows but y has {len(target)} labels")
        if sample_weight is None:
            weight, total = None, float(n)
        else:
            weight = np.asarray(sample_weight, dtype=np.float64)
            total = float(weight.sum())
            weight = weight * (n / total)
        theta = np.zeros((d + 1, k), dtype=np.float32)
        if init is not None:
            coef, intercept = init.rows(self.classes_)
            if coef.shape[1] != d:
                raise ValueError(f"init has {coef.shape[1]} features, X has {d}")
            theta[:d], theta[d] = coef.T, intercept
        loss = _Loss(X, target, weight, 1.0 / (self.C * total), k)
        result = lbfgs.minimize(loss, theta.ravel(), gtol=self.tol,
                                rel_gtol=self.rel_tol if init is not None else 0.0,
                                max_iter=self.max_iter)
        theta = result.x.reshape(d + 1, k)
        self.coef_ = np.ascontiguousarray(theta[:d].T, dtype=np.float32)
        self.intercept_ = theta[d].astype(np.float32)
        self.n_features_in_ = d
        self.n_iter_ = result.n_iter
        self.n_evals_ = result.n_evals
        return self

    def decision_function(self, X) -> np.ndarray:
        X = X.astype(np.float32) if sparse.issparse(X) else np.asarray(X, dtype=np.float32)
        return np.asarray(X @ self.coef_.T) + self.intercept_

    def predict_proba(self, X) -> np.ndarray:
        return softmax(self.decision_function(X))

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.decision_function(X).argmax(axis=1)]

    def params(self) -> Params:
        return Params(self.classes_, self.coef_, self.intercept_)

    @classmethod
    def fitted(cls, params: Params, C: float) -> SoftmaxRegression:
        """The model with these parameters, as if fitted."""
        model = cls(C=C)
        model.classes_ = np.asarray(params.classes)
        model.coef_ = np.asarray(params.coef, dtype=np.float32)
        model.intercept_ = np.asarray(params.intercept, dtype=np.float32)
        model.n_features_in_ = model.coef_.shape[1]
        model.n_iter_ = model.n_evals_ = 0
        return model


class _Loss:
    """The objective and its gradient at a flat (d + 1) × K parameter vector (the weights'
    rows, then the intercept)."""

    def __init__(self, X, target: np.ndarray, weight: np.ndarray | None, penalty: float,
                 k: int):
        self.X, self.target, self.penalty, self.k = X, target, penalty, k
        # Weights scaled to a mean of 1 (None: all 1) and the sum divided out in float64 at
        # the end: residuals scaled by 1/n before the product made OpenBLAS's sgemm 3x slower.
        self.weight = weight
        self.weight32 = None if weight is None else weight.astype(np.float32)
        self.rows = np.arange(X.shape[0])
        self.Xt = X.T.tocsr() if sparse.issparse(X) else X.T

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        n, d = self.X.shape
        params = theta.reshape(d + 1, self.k)
        coef = params[:d]
        z = np.asarray(self.X @ coef)
        z += params[d]
        z -= z.max(axis=1, keepdims=True)
        true = z[self.rows, self.target].astype(np.float64)
        # Subnormal float32s (below ~1e-38) slow every later operation down.
        np.maximum(z, _LOGIT_FLOOR, out=z)
        np.exp(z, out=z)
        norm = z.sum(axis=1)
        per_sample = np.log(norm.astype(np.float64)) - true
        loss = float(per_sample.sum() if self.weight is None else self.weight @ per_sample) / n
        z /= norm[:, None]
        z[self.rows, self.target] -= 1.0
        if self.weight is not None:
            z *= self.weight32[:, None]  # z: the weighted residual p − onehot(y)
        grad = np.empty_like(params)
        grad[:d] = self.Xt @ z
        grad[d] = z.sum(axis=0)
        grad *= np.float32(1.0 / n)
        grad[:d] += np.float32(self.penalty) * coef
        penalty = 0.5 * self.penalty * float(np.dot(coef.ravel(), coef.ravel()))
        return loss + penalty, grad.ravel()
