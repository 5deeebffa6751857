"""Training the head with scikit-learn (training worker only: the invoke path never imports it).

`HeadTrainer` is a scikit-learn style classifier (`fit`, `predict_proba`, `classes_`). Its fit:

1. assigns every sample to one of up to five folds (three past 5,000 samples), label by label,
   so labels with a single sample still work (held out, they are predicted by a model that has
   only their prior);
2. per fold fits multinomial logistic regression on embeddings for each C of a grid (warm
   started along the grid) and, once, a logistic regression on wordpiece bags;
3. picks C and the lexical mixing weight by cross-validated accuracy (log-loss breaks ties),
   then the softmax temperature by cross-validated log-loss;
4. refits on everything and freezes the result as a `Head` artifact.

Label names and descriptions ("priors") join every training set as extra samples and are never
held out: they steer few-shot models and keep every label predictable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from labelloop.ml.head import Head, log_softmax, softmax
from labelloop.ml.metrics import expected_calibration_error, per_label_accuracy

DEFAULT_CS = (3.0, 10.0, 30.0, 100.0)
DEFAULT_LEXICAL_WEIGHTS = (0.0, 0.15, 0.3)
LEXICAL_C = 10.0
# An input's extra views (an image's shifted crops and turns) count this much each: on MNIST
# few-shot (scripts/bench_fewshot_images.py) 0.5 calibrated better than 1 (ECE at k = 10
# 0.048 vs 0.053) at the same accuracy, 0.3 worse on both.
VIEW_WEIGHT = 0.5
# Past this many samples, three folds estimate as well as five and cost 40 % less.
LARGE_N = 5000
_LOG_FLOOR = np.log(1e-12)


@dataclass(frozen=True)
class Priors:
    """Texts that describe labels (names, descriptions), already featurized."""

    embeddings: np.ndarray
    tokens: list[np.ndarray]
    labels: list[str]


@dataclass(frozen=True)
class CrossValidation:
    """How the chosen model did on samples it was not trained on."""

    n_folds: int
    accuracy: float
    per_label_accuracy: dict[str, float]
    ece: float
    log_loss: float
    proba: np.ndarray  # (n_samples, n_classes): each sample's cross-validated confidences
    predictions: list[str]  # each sample's cross-validated label


class HeadTrainer(ClassifierMixin, BaseEstimator):
    def __init__(self, Cs: Sequence[float] = DEFAULT_CS,
                 lexical_weights: Sequence[float] = DEFAULT_LEXICAL_WEIGHTS,
                 lexical_C: float = LEXICAL_C, max_folds: int = 5, max_iter: int = 1000,
                 view_weight: float = VIEW_WEIGHT, random_state: int = 0):
        self.Cs = Cs
        self.lexical_weights = lexical_weights
        self.lexical_C = lexical_C
        self.max_folds = max_folds
        self.max_iter = max_iter
        self.view_weight = view_weight
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: Sequence[str], tokens: Sequence[np.ndarray] | None = None,
            priors: Priors | None = None, fresh: np.ndarray | None = None,
            views: Sequence[np.ndarray | None] | None = None) -> HeadTrainer:
        """`fresh` (optional, one bool per sample): samples the serving model has not seen.
        Each then also gets a prediction from a model trained, at the chosen settings, on
        every other sample except the fresh ones of its fold (`fresh_predictions_`): what
        the candidate would have said with all the older data, for a fair comparison with
        the serving model (plain CV predictions come from models that lack a fold of the
        older data too).
        `views` (optional, per sample an array of extra embeddings or None): other views of
        the same input (an image's shifted crops and turns), learnt from with the sample's
        label wherever the sample is trained on; a held-out sample is scored on its own
        embedding only, so its views never leak into its fold's validation."""
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray([str(v) for v in y])
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)} labels")
        if tokens is not None and len(tokens) != len(y):
            raise ValueError("tokens must have one entry per sample")
        if views is not None and len(views) != len(y):
            raise ValueError("views must have one entry per sample")
        prior_labels = np.asarray(priors.labels if priors else [], dtype=str)
        self.classes_ = np.unique(np.concatenate([y, prior_labels]))
        if len(self.classes_) < 2:
            raise ValueError("training needs at least two labels")
        weights = [w for w in self.lexical_weights if w == 0 or tokens is not None]
        if tokens is not None:
            # Lexical features over the training vocabulary only (a few thousand wordpieces,
            # not 30k): the model is as good and many times faster to fit.
            prior_tokens = list(priors.tokens) if priors else []
            self.vocab_ = np.unique(np.concatenate(
                [np.asarray(t, dtype=np.int32) for t in [*tokens, *prior_tokens]] or [[]]))
            tokens = [_compact(t, self.vocab_) for t in tokens]
            if priors:
                priors = Priors(priors.embeddings, [_compact(t, self.vocab_) for t in
                                                    prior_tokens], priors.labels)
        rng = np.random.default_rng(self.random_state)
        folds = assign_folds(y, self.max_folds if len(y) <= LARGE_N else min(self.max_folds, 3),
                             rng)
        n_folds = int(folds.max()) + 1

        emb_scores = {C: np.full((len(y), len(self.classes_)), _LOG_FLOOR) for C in self.Cs}
        lex_scores = np.full((len(y), len(self.classes_)), _LOG_FLOOR)
        for f in range(n_folds):
            held = folds == f
            tr = ~held
            for C, model in self._fit_embedding_path(X, y, tr, priors, views):
                emb_scores[C][held] = self._class_log_proba(model, X[held])
            if any(w > 0 for w in weights):
                lex = self._fit_lexical([tokens[i] for i in np.flatnonzero(tr)], y[tr], priors)
                lex_scores[held] = self._class_log_proba(lex, bag_of_tokens(
                    [tokens[i] for i in np.flatnonzero(held)], lex.n_features_in_))

        best = None
        for C in self.Cs:
            for w in weights:
                mixed = (1 - w) * emb_scores[C] + w * lex_scores
                acc = float((self.classes_[mixed.argmax(1)] == y).mean())
                temperature, nll = fit_temperature(mixed, y, self.classes_)
                key = (round(acc, 6), -nll)
                if best is None or key > best[0]:
                    best = (key, C, w, temperature, mixed)
        _, self.C_, self.lexical_weight_, self.temperature_, mixed = best

        proba = softmax(mixed / self.temperature_)
        pred = self.classes_[proba.argmax(1)]
        self.cv_ = CrossValidation(
            n_folds=n_folds,
            accuracy=float((pred == y).mean()),
            per_label_accuracy=per_label_accuracy(y, pred),
            ece=expected_calibration_error(proba, y, self.classes_),
            log_loss=float(-np.log(np.maximum(
                proba[np.arange(len(y)), np.searchsorted(self.classes_, y)], 1e-12)).mean()),
            proba=proba,
            predictions=pred.tolist(),
        )
        self.head_ = self._final_head(X, y, tokens, priors, views)
        self.fresh_predictions_ = (self._fresh_predictions(X, y, tokens, priors, fresh, rng,
                                                           views)
                                   if fresh is not None and fresh.any() else {})
        return self

    def predict_proba(self, X: np.ndarray, tokens: Sequence[np.ndarray] | None = None):
        return self.head_.predict_proba(X, tokens)

    def predict(self, X: np.ndarray, tokens: Sequence[np.ndarray] | None = None):
        return self.head_.predict(X, tokens)

    # -- internals -----------------------------------------------------------------------

    def _with_priors(self, X, y, priors: Priors | None, tokens=None):
        if priors is None or not priors.labels:
            return X, y, tokens
        Xa = np.vstack([X, priors.embeddings]) if X is not None else None
        ya = np.concatenate([y, np.asarray(priors.labels, dtype=str)])
        ta = list(tokens) + list(priors.tokens) if tokens is not None else None
        return Xa, ya, ta

    def _embedding_set(self, X, y, rows: np.ndarray, priors: Priors | None, views):
        """What the embedding model learns from: the samples at `rows`, their views (each
        weighted `view_weight`; None when there are none) and the priors."""
        idx = np.flatnonzero(rows)
        Xa, ya = self._with_priors(X[idx], y[idx], priors)[:2]
        extra = [(views[i], y[i]) for i in idx if views[i] is not None and len(views[i])] \
            if views is not None else []
        if not extra:
            return Xa, ya, None
        weights = np.concatenate([np.ones(len(ya)), np.full(sum(len(v) for v, _ in extra),
                                                            self.view_weight)])
        return (np.vstack([Xa, *(np.asarray(v, dtype=np.float32) for v, _ in extra)]),
                np.concatenate([ya, *(np.full(len(v), label) for v, label in extra)]), weights)

    def _fit_embedding(self, C: float, X, y, rows, priors, views) -> LogisticRegression:
        Xa, ya, weights = self._embedding_set(X, y, rows, priors, views)
        return LogisticRegression(C=C, max_iter=self.max_iter).fit(Xa, ya, sample_weight=weights)

    def _fit_embedding_path(self, X, y, rows, priors, views):
        """One model per C, each warm-started from the previous (smaller) C."""
        Xa, ya, weights = self._embedding_set(X, y, rows, priors, views)
        model = LogisticRegression(max_iter=self.max_iter, warm_start=True)
        for C in sorted(self.Cs):
            model.set_params(C=C)
            model.fit(Xa, ya, sample_weight=weights)
            yield C, model

    def _fit_lexical(self, tokens, y, priors):
        _, ya, ta = self._with_priors(None, y, priors, tokens)
        return LogisticRegression(C=self.lexical_C, max_iter=self.max_iter).fit(
            bag_of_tokens(ta, len(self.vocab_)), ya)

    def _class_log_proba(self, model, X) -> np.ndarray:
        """Log-probabilities over all classes_ (a fold may lack some labels)."""
        out = np.full((X.shape[0], len(self.classes_)), _LOG_FLOOR)
        if X.shape[0]:
            logits = model.decision_function(X)
            if logits.ndim == 1:  # two classes: sklearn keeps one logit
                logits = np.stack([-logits / 2, logits / 2], axis=1)
            cols = np.searchsorted(self.classes_, model.classes_)
            out[:, cols] = np.maximum(log_softmax(logits), _LOG_FLOOR)
        return out

    def _fresh_predictions(self, X, y, tokens, priors, fresh: np.ndarray,
                           rng: np.random.Generator, views) -> dict[int, str]:
        idx = np.flatnonzero(fresh)
        n_folds = min(self.max_folds, len(idx))
        folds = rng.permutation(len(idx)) % n_folds
        out: dict[int, str] = {}
        for f in range(n_folds):
            held = idx[folds == f]
            keep = np.ones(len(y), dtype=bool)
            keep[held] = False
            emb = self._fit_embedding(self.C_, X, y, keep, priors, views)
            scores = self._class_log_proba(emb, X[held])
            if self.lexical_weight_ > 0:
                lex = self._fit_lexical([tokens[i] for i in np.flatnonzero(keep)], y[keep],
                                        priors)
                scores = (1 - self.lexical_weight_) * scores + self.lexical_weight_ * (
                    self._class_log_proba(lex, bag_of_tokens([tokens[i] for i in held],
                                                             lex.n_features_in_)))
            out.update(zip(held.tolist(), self.classes_[scores.argmax(1)].tolist(),
                           strict=True))
        return out

    def _final_head(self, X, y, tokens, priors, views) -> Head:
        emb = self._fit_embedding(self.C_, X, y, np.ones(len(y), dtype=bool), priors, views)
        self.embedding_model_, self.lexical_model_ = emb, None
        coef, intercept = _multiclass_params(emb, len(self.classes_))
        lexical = {}
        if self.lexical_weight_ > 0:
            _, yl, tl = self._with_priors(None, y, priors, tokens)
            lex = LogisticRegression(C=self.lexical_C, max_iter=self.max_iter).fit(
                bag_of_tokens(tl, len(self.vocab_)), yl)
            self.lexical_model_ = lex
            lcoef, lintercept = _multiclass_params(lex, len(self.classes_))
            lcoef = np.pad(lcoef, ((0, 0), (0, len(self.vocab_) - lcoef.shape[1])))
            lexical = {"lexical_vocab": self.vocab_, "lexical_coef": lcoef,
                       "lexical_intercept": lintercept}
        return Head(classes=tuple(self.classes_.tolist()), coef=coef, intercept=intercept,
                    temperature=self.temperature_, lexical_weight=self.lexical_weight_,
                    **lexical)


def _multiclass_params(model, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(coef, intercept) with one row per class; sklearn stores one row for two classes."""
    if n_classes == 2:
        c, b = model.coef_[0], model.intercept_[0]
        return np.stack([-c / 2, c / 2]), np.array([-b / 2, b / 2])
    return model.coef_, model.intercept_


def _compact(ids, vocab: np.ndarray) -> np.ndarray:
    """Token ids → positions in the training vocabulary. Ids outside it become -1: they carry
    no weight but still count in the bag's norm, exactly as `Head` serves them."""
    ids = np.asarray(ids, dtype=np.int64)
    if not len(vocab):
        return np.full(len(ids), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(vocab, ids), len(vocab) - 1)
    return np.where(vocab[pos] == ids, pos, -1)


def assign_folds(y: np.ndarray, max_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Fold id per sample: each label's samples dealt round-robin from a random start, so
    every fold sees every label that has enough samples and singletons still get a fold."""
    counts = {c: int((y == c).sum()) for c in np.unique(y)}
    n_folds = max(2, min(max_folds, max(counts.values())))
    folds = np.empty(len(y), dtype=np.int64)
    for c in counts:
        idx = rng.permutation(np.flatnonzero(y == c))
        folds[idx] = (rng.integers(n_folds) + np.arange(len(idx))) % n_folds
    return folds


def bag_of_tokens(tokens: Sequence[np.ndarray], width: int | None = None):
    """Binary wordpiece bags, L2-normalised per text over all its tokens, as a sparse matrix
    with `width` columns (ids at or beyond it are dropped after normalising): what `Head`
    serves."""
    from scipy import sparse

    tokens = [np.asarray(t, dtype=np.int64) for t in tokens]
    if width is None:
        width = max((int(t.max()) for t in tokens if len(t)), default=0) + 1
    rows = np.repeat(np.arange(len(tokens)), [len(t) for t in tokens])
    cols = np.concatenate(tokens) if tokens else np.zeros(0, dtype=np.int64)
    vals = np.repeat([1 / np.sqrt(max(len(t), 1)) for t in tokens], [len(t) for t in tokens])
    keep = (cols >= 0) & (cols < width)
    return sparse.csr_matrix((vals[keep].astype(np.float32), (rows[keep], cols[keep])),
                             shape=(len(tokens), width))


def fit_temperature(scores: np.ndarray, y: np.ndarray, classes: np.ndarray,
                    lo: float = 0.05, hi: float = 20.0) -> tuple[float, float]:
    """Temperature minimising the log-loss of softmax(scores / T): golden-section on log T."""
    target = np.searchsorted(classes, y)
    rows = np.arange(len(y))

    def nll(log_t: float) -> float:
        z = log_softmax(scores / np.exp(log_t))
        return float(-z[rows, target].mean())

    a, b = np.log(lo), np.log(hi)
    g = (np.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(c), nll(d)
    for _ in range(40):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(d)
    log_t = (a + b) / 2
    return float(np.exp(log_t)), nll(log_t)
