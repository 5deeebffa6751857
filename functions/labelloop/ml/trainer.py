"""Training the head (training worker only: the invoke path never imports it).

`HeadTrainer` is a scikit-learn style classifier (`fit`, `predict_proba`, `classes_`). Its fit:

1. assigns every sample to one of up to five folds (three past 5,000 samples, two past
   10,000), label by label, so labels with a single sample still work (held out, they are
   predicted by a model that has only their prior);
2. per fold fits multinomial logistic regression on embeddings for each C of a grid (each
   starting from the previous fold's at that C, or the previous C's) and, once, a logistic
   regression on wordpiece bags;
3. picks C and the lexical mixing weight by cross-validated accuracy (log-loss breaks ties),
   then the softmax temperature by cross-validated log-loss;
4. refits on everything, starting from the last fold's model at that C, and freezes the result
   as a `Head` artifact.

A retrain after a few new annotations (`WarmStart`) skips steps 1–3: it keeps the live
version's C, lexical weight and temperature, starts each fit from the live weights (next to
the new solution: a few L-BFGS steps), and carries the live version's cross-validated
predictions over for the samples it already had. The models are fitted by
`labelloop.ml.softmax` (float32, our L-BFGS), not scikit-learn's LogisticRegression: on 15,000
samples × 150 labels the whole search now costs about one of its fits (scripts/bench_head.py).

Label names and descriptions ("priors") join every training set as extra samples and are never
held out: they steer few-shot models and keep every label predictable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from labelloop.ml.head import Head, log_softmax, softmax
from labelloop.ml.metrics import calibration_error, per_label_accuracy
from labelloop.ml.softmax import Params, SoftmaxRegression
from labelloop.ml.warm_start import WarmStart

DEFAULT_CS = (3.0, 10.0, 30.0, 100.0)
DEFAULT_LEXICAL_WEIGHTS = (0.0, 0.15, 0.3)
LEXICAL_C = 10.0
# The lexical part weighs 0.3 at most and its fits (770k parameters on CLINC150) were half the
# search at 1e-4; at 1e-3 the test accuracy was the same (0.9609 both).
LEXICAL_TOL = 1e-3
# An input's extra views (an image's shifted crops and turns) count this much each: on MNIST
# few-shot (scripts/bench_fewshot_images.py) 0.5 calibrated better than 1 (ECE at k = 10
# 0.048 vs 0.053) at the same accuracy, 0.3 worse on both.
VIEW_WEIGHT = 0.5
# Past this many samples, three folds estimate as well as five and cost 40 % less; past
# HUGE_N two do, each sample's held-out prediction still counted.
LARGE_N = 5000
HUGE_N = 10000
# Fresh samples are predicted by this many models at most, each trained without its share.
FRESH_FOLDS = 2
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
    predictions: list[str]  # each sample's cross-validated label
    confidences: np.ndarray  # and its confidence in it
    # The cross-validated probability of the sample's own label (what finds mislabels:
    # `labelloop.ml.suspects`); NaN where unknown (carried from a version without it).
    own: np.ndarray
    accuracy: float
    per_label_accuracy: dict[str, float]
    ece: float

    @classmethod
    def of(cls, n_folds: int, y: np.ndarray, predictions, confidences,
           own) -> CrossValidation:
        predictions, confidences = list(predictions), np.asarray(confidences, dtype=float)
        correct = np.asarray(predictions) == y
        return cls(n_folds, predictions, confidences, np.asarray(own, dtype=float),
                   float(correct.mean()), per_label_accuracy(y, predictions),
                   calibration_error(confidences, correct))


class HeadTrainer(ClassifierMixin, BaseEstimator):
    def __init__(self, Cs: Sequence[float] = DEFAULT_CS,
                 lexical_weights: Sequence[float] = DEFAULT_LEXICAL_WEIGHTS,
                 lexical_C: float = LEXICAL_C, max_folds: int = 5, max_iter: int = 1000,
                 view_weight: float = VIEW_WEIGHT, random_state: int = 0, tol: float = 1e-4,
                 lexical_tol: float = LEXICAL_TOL):
        self.Cs = Cs
        self.lexical_weights = lexical_weights
        self.lexical_C = lexical_C
        self.tol = tol
        self.lexical_tol = lexical_tol
        self.max_folds = max_folds
        self.max_iter = max_iter
        self.view_weight = view_weight
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: Sequence[str], tokens: Sequence[np.ndarray] | None = None,
            priors: Priors | None = None, fresh: np.ndarray | None = None,
            views: Sequence[np.ndarray | None] | None = None,
            warm: WarmStart | None = None,
            weights: np.ndarray | None = None) -> HeadTrainer:
        """`fresh` (optional, one bool per sample): samples the serving model has not seen.
        Each then also gets a prediction from a model trained, at the chosen settings, on
        every other sample except the fresh ones of its fold (`fresh_predictions_`): what
        the candidate would have said with all the older data, for a fair comparison with
        the serving model (plain CV predictions come from models that lack a fold of the
        older data too).
        `views` (optional, per sample an array of extra embeddings or None): other views of
        the same input (an image's shifted crops and turns), learnt from with the sample's
        label wherever the sample is trained on; a held-out sample is scored on its own
        embedding only, so its views never leak into its fold's validation.
        `warm` (optional): retrain from the live version instead of searching (see
        `WarmStart`); its `cv` has an entry for every sample that is not `fresh`.
        `weights` (optional, one per sample, > 0): how much each sample (and its views)
        counts wherever it is trained on; its own held-out prediction is made as any
        other's (`labelloop.ml.suspect_weights` lightens suspects a review has not reached)."""
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray([str(v) for v in y])
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)} labels")
        if tokens is not None and len(tokens) != len(y):
            raise ValueError("tokens must have one entry per sample")
        if views is not None and len(views) != len(y):
            raise ValueError("views must have one entry per sample")
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (len(y),) or not (weights > 0).all():
                raise ValueError("weights must be one positive number per sample")
        prior_labels = np.asarray(priors.labels if priors else [], dtype=str)
        self.classes_ = np.unique(np.concatenate([y, prior_labels]))
        if len(self.classes_) < 2:
            raise ValueError("training needs at least two labels")
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
        data = _Data(X, y, tokens, priors, views, weights)
        self.warm_ = warm is not None
        start = self._search(data, rng) if warm is None else self._adopt(warm, tokens is not None)
        self.head_ = self._final_head(data, *start)
        live_params = start if warm is not None else self._final_params()
        self.fresh_predictions_, fresh_proba = (
            self._fresh_predictions(data, fresh, rng, *live_params, warm=warm is not None)
            if fresh is not None and fresh.any() else ({}, {}))
        if warm is not None:
            self.cv_ = self._carried_cv(warm, y, self.fresh_predictions_, fresh_proba)
        return self

    def predict_proba(self, X: np.ndarray, tokens: Sequence[np.ndarray] | None = None):
        return self.head_.predict_proba(X, tokens)

    def predict(self, X: np.ndarray, tokens: Sequence[np.ndarray] | None = None):
        return self.head_.predict(X, tokens)

    # -- the search ------------------------------------------------------------------------

    def _search(self, data: _Data, rng: np.random.Generator):
        """Cross-validate C and the lexical weight, fit the temperature; set `cv_` and return
        where the final fits start (the last fold's models at the chosen C)."""
        y = data.y
        weights = [w for w in self.lexical_weights if w == 0 or data.tokens is not None]
        folds = assign_folds(y, min(self.max_folds, fold_count(len(y))), rng)
        n_folds = int(folds.max()) + 1
        emb_scores = {C: np.full((len(y), len(self.classes_)), _LOG_FLOOR, np.float32)
                      for C in self.Cs}
        lex_scores = np.full((len(y), len(self.classes_)), _LOG_FLOOR, np.float32)
        # Each fold's fits start from the previous fold's at the same C: the folds share
        # most of their training samples, so that is next to the solution.
        emb_end, lex_end = {}, None
        for f in range(n_folds):
            held = folds == f
            for C, model in self._fit_embedding_path(data, ~held, emb_end):
                emb_scores[C][held] = self._class_log_proba(model, data.X[held])
                emb_end[C] = model.params()
            if any(w > 0 for w in weights):
                lex = self._fit_lexical(data, ~held, lex_end)
                lex_scores[held] = self._class_log_proba(lex, data.bags(held, len(self.vocab_)))
                lex_end = lex.params()

        mixes = {(C, w): (1 - w) * emb_scores[C] + w * lex_scores
                 for C in self.Cs for w in weights}
        accuracy = {k: float((self.classes_[m.argmax(1)] == y).mean()) for k, m in mixes.items()}
        # Log-loss (at its own temperature) breaks ties in accuracy; only the tied need one.
        top = max(accuracy.values())
        best = None
        for key in (k for k in mixes if accuracy[k] == top):
            temperature, nll = fit_temperature(mixes[key], y, self.classes_)
            if best is None or nll < best[2]:
                best = (key, temperature, nll)
        (self.C_, self.lexical_weight_), self.temperature_, _ = best
        proba = softmax(mixes[self.C_, self.lexical_weight_] / self.temperature_)
        self.cv_ = CrossValidation.of(n_folds, y, self.classes_[proba.argmax(1)],
                                      proba.max(axis=1), self._own(proba, y))
        return emb_end[self.C_], lex_end if self.lexical_weight_ > 0 else None

    def _adopt(self, warm: WarmStart, text: bool):
        """Take the live version's settings; return its weights as where the fits start."""
        head = warm.head
        self.C_, self.temperature_ = warm.C, head.temperature
        self.lexical_weight_ = head.lexical_weight if text else 0.0
        emb = Params(np.asarray(head.classes), head.coef, head.intercept)
        lex = None
        if self.lexical_weight_ > 0:
            # The live model's columns, moved to this vocabulary (new wordpieces start at 0).
            coef = np.zeros((len(head.classes), len(self.vocab_)), dtype=np.float32)
            pos = _compact(head.lexical_vocab, self.vocab_)
            coef[:, pos[pos >= 0]] = head.lexical_coef[:, pos >= 0]
            lex = Params(np.asarray(head.classes), coef, head.lexical_intercept)
        return emb, lex

    def _own(self, proba: np.ndarray, y: np.ndarray) -> np.ndarray:
        return proba[np.arange(len(y)), np.searchsorted(self.classes_, y)].astype(float)

    def _carried_cv(self, warm: WarmStart, y: np.ndarray, fresh_pred: dict[int, str],
                    fresh_proba: dict[int, tuple[float, float]]) -> CrossValidation:
        pred, conf, own = [], [], []
        for i, carried in enumerate(warm.cv):
            if i in fresh_pred:
                pred.append(fresh_pred[i])
                conf.append(fresh_proba[i][0])
                own.append(fresh_proba[i][1])
            elif carried is None:
                raise ValueError(f"sample {i} is neither fresh nor carries a prediction")
            else:
                pred.append(carried[0])
                conf.append(carried[1])
                own.append(carried[2])
        return CrossValidation.of(warm.n_folds, y, pred, conf, own)

    # -- fits --------------------------------------------------------------------------------

    def _model(self, C: float, tol: float) -> SoftmaxRegression:
        return SoftmaxRegression(C=C, tol=tol, max_iter=self.max_iter)

    def _fit_embedding(self, C: float, data: _Data, rows, init: Params | None):
        Xa, ya, weights = data.embedding_set(rows, self.view_weight)
        return self._model(C, self.tol).fit(Xa, ya, sample_weight=weights, init=init)

    def _fit_embedding_path(self, data: _Data, rows, starts: dict[float, Params]):
        """One model per C, each starting from `starts[C]` (another fold's) or else from the
        previous C's."""
        Xa, ya, weights = data.embedding_set(rows, self.view_weight)
        model = None
        for C in sorted(self.Cs):
            init = starts.get(C, model.params() if model else None)
            model = self._model(C, self.tol).fit(Xa, ya, sample_weight=weights, init=init)
            yield C, model

    def _fit_lexical(self, data: _Data, rows, init: Params | None = None):
        bags, ya, weights = data.lexical_set(rows, len(self.vocab_))
        return self._model(self.lexical_C, self.lexical_tol).fit(bags, ya, sample_weight=weights,
                                                                 init=init)

    def _class_log_proba(self, model: SoftmaxRegression, X) -> np.ndarray:
        """Log-probabilities over all classes_ (a fold may lack some labels)."""
        out = np.full((X.shape[0], len(self.classes_)), _LOG_FLOOR, np.float32)
        if X.shape[0]:
            cols = np.searchsorted(self.classes_, model.classes_)
            out[:, cols] = np.maximum(log_softmax(model.decision_function(X)), _LOG_FLOOR)
        return out

    def _mixed(self, emb, lex, data: _Data, rows) -> np.ndarray:
        scores = self._class_log_proba(emb, data.X[rows])
        if lex is not None:
            scores = (1 - self.lexical_weight_) * scores + self.lexical_weight_ * (
                self._class_log_proba(lex, data.bags(rows, len(self.vocab_))))
        return scores

    def _fresh_predictions(self, data: _Data, fresh: np.ndarray, rng: np.random.Generator,
                           emb_init: Params, lex_init: Params | None, warm: bool):
        """Per fresh sample, the label (and its confidence and the sample's own label's
        probability) from a model trained at the chosen settings on everything but its fold's
        fresh samples; each fit starts at `*_init`.
        `warm`: `lex_init` is the live version's lexical model, trained on none of the fresh
        samples, so it serves every fold as it is (the lexical part of a warm retrain was
        three-quarters of its time)."""
        idx = np.flatnonzero(fresh)
        n_folds = min(FRESH_FOLDS, len(idx))
        folds = rng.permutation(len(idx)) % n_folds
        labels: dict[int, str] = {}
        probabilities: dict[int, tuple[float, float]] = {}
        lex = None
        if self.lexical_weight_ > 0 and warm:
            lex = SoftmaxRegression.fitted(lex_init, self.lexical_C)
        for f in range(n_folds):
            held = np.zeros(len(data.y), dtype=bool)
            held[idx[folds == f]] = True
            emb = self._fit_embedding(self.C_, data, ~held, emb_init)
            if self.lexical_weight_ > 0 and not warm:
                lex = self._fit_lexical(data, ~held, lex_init)
            proba = softmax(self._mixed(emb, lex, data, held) / self.temperature_)
            at = np.flatnonzero(held).tolist()
            labels.update(zip(at, self.classes_[proba.argmax(1)].tolist(), strict=True))
            probabilities.update(zip(at, zip(proba.max(axis=1).tolist(),
                                             self._own(proba, data.y[held]).tolist(),
                                             strict=True), strict=True))
        return labels, probabilities

    def _final_head(self, data: _Data, emb_init: Params | None,
                    lex_init: Params | None) -> Head:
        everything = np.ones(len(data.y), dtype=bool)
        emb = self._fit_embedding(self.C_, data, everything, emb_init)
        self.embedding_model_, self.lexical_model_ = emb, None
        coef, intercept = emb.params().rows(self.classes_)
        lexical = {}
        if self.lexical_weight_ > 0:
            lex = self._fit_lexical(data, everything, lex_init)
            self.lexical_model_ = lex
            lcoef, lintercept = lex.params().rows(self.classes_)
            lexical = {"lexical_vocab": self.vocab_, "lexical_coef": lcoef,
                       "lexical_intercept": lintercept}
        return Head(classes=tuple(self.classes_.tolist()), coef=coef, intercept=intercept,
                    temperature=self.temperature_, lexical_weight=self.lexical_weight_,
                    **lexical)

    def _final_params(self) -> tuple[Params, Params | None]:
        emb = self.embedding_model_.params()
        return emb, self.lexical_model_.params() if self.lexical_model_ is not None else None


class _Data:
    """One fit's samples, tokens (as vocabulary positions), priors, views and sample weights;
    the training sets the models learn from, by the rows taken."""

    def __init__(self, X, y, tokens, priors: Priors | None, views,
                 weights: np.ndarray | None = None):
        self.X, self.y, self.tokens, self.priors, self.views = X, y, tokens, priors, views
        self.weights = weights
        self.prior_labels = np.asarray(priors.labels if priors else [], dtype=str)

    def _weight(self, idx):
        """The weights of samples `idx` (an index array, or one index)."""
        return np.ones(np.shape(idx)) if self.weights is None else self.weights[idx]

    def embedding_set(self, rows: np.ndarray, view_weight: float):
        """The samples at `rows`, the priors, and the samples' views (each weighted
        `view_weight` times its sample's weight); weights None when all are 1."""
        idx = np.flatnonzero(rows)
        parts, labels = [self.X[idx]], [self.y[idx]]
        weights = [self._weight(idx)]
        if len(self.prior_labels):
            parts.append(self.priors.embeddings)
            labels.append(self.prior_labels)
            weights.append(np.ones(len(self.prior_labels)))
        if self.views is not None:
            for i in idx:
                v = self.views[i]
                if v is not None and len(v):
                    parts.append(np.asarray(v, dtype=np.float32))
                    labels.append(np.full(len(v), self.y[i]))
                    weights.append(np.full(len(v), view_weight * self._weight(i)))
        Xa, ya = np.vstack(parts).astype(np.float32, copy=False), np.concatenate(labels)
        w = np.concatenate(weights)
        return Xa, ya, None if (w == 1).all() else w

    def lexical_set(self, rows: np.ndarray, width: int):
        idx = np.flatnonzero(rows)
        tokens = [self.tokens[i] for i in idx]
        labels, weights = [self.y[idx]], [self._weight(idx)]
        if len(self.prior_labels):
            tokens += list(self.priors.tokens)
            labels.append(self.prior_labels)
            weights.append(np.ones(len(self.prior_labels)))
        w = np.concatenate(weights)
        return (bag_of_tokens(tokens, width), np.concatenate(labels),
                None if (w == 1).all() else w)

    def bags(self, rows: np.ndarray, width: int):
        return bag_of_tokens([self.tokens[i] for i in np.flatnonzero(rows)], width)


def _compact(ids, vocab: np.ndarray) -> np.ndarray:
    """Token ids → positions in the training vocabulary. Ids outside it become -1: they carry
    no weight but still count in the bag's norm, exactly as `Head` serves them."""
    ids = np.asarray(ids, dtype=np.int64)
    if not len(vocab):
        return np.full(len(ids), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(vocab, ids), len(vocab) - 1)
    return np.where(vocab[pos] == ids, pos, -1)


def fold_count(n: int) -> int:
    return 5 if n <= LARGE_N else 3 if n <= HUGE_N else 2


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
