"""The serving head, in plain numpy: what turns features into label confidences.

    p(label | text) ∝ exp(((1 − a)·log softmax(W·e + b) + a·log softmax(V·t + c)) / T)

with e the text's unit-norm embedding, t its bag of wordpieces (binary, L2-normalised;
`lexical_weight` a = 0 leaves it out, as for zero-shot heads and, later, images) and T the
temperature fitted by cross-validation.

A `Head` is an immutable artifact. It is written without pickle (an `.npz` of plain numbers
and unicode strings) and read with `allow_pickle=False`, so a model file is data, never
code. Trained heads come from `labelloop.ml.trainer`, zero-shot heads from `labelloop.ml.zeroshot`;
both serve through this module, which imports neither scikit-learn nor scipy.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

FORMAT_VERSION = 1
_EMPTY_VOCAB = np.zeros(0, dtype=np.int32)


@dataclass(frozen=True, eq=False)
class Head:
    classes: tuple[str, ...]
    coef: np.ndarray  # (n_classes, dim)
    intercept: np.ndarray  # (n_classes,)
    temperature: float = 1.0
    zero_shot: bool = False
    lexical_weight: float = 0.0
    lexical_vocab: np.ndarray = field(default_factory=lambda: _EMPTY_VOCAB)  # sorted token ids
    lexical_coef: np.ndarray | None = None  # (n_classes, len(vocab))
    lexical_intercept: np.ndarray | None = None  # (n_classes,)
    _w: np.ndarray = field(init=False, repr=False)
    _lex_w: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        k = len(self.classes)
        if len(set(self.classes)) != k or k < 1:
            raise ValueError("classes must be unique and non-empty")
        coef = _frozen(self.coef, (k, None), "coef")
        _set(self, "coef", coef)
        _set(self, "intercept", _frozen(self.intercept, (k,), "intercept"))
        if not self.temperature > 0:
            raise ValueError("temperature must be positive")
        if not 0.0 <= self.lexical_weight < 1.0:
            raise ValueError("lexical_weight must be in [0, 1)")
        vocab = np.asarray(self.lexical_vocab, dtype=np.int32)
        if self.lexical_weight > 0:
            if np.any(np.diff(vocab) <= 0):
                raise ValueError("lexical_vocab must be sorted and unique")
            lex = _frozen(self.lexical_coef, (k, len(vocab)), "lexical_coef")
            _set(self, "lexical_intercept",
                 _frozen(self.lexical_intercept, (k,), "lexical_intercept"))
            _set(self, "lexical_coef", lex)
            _set(self, "_lex_w", np.ascontiguousarray(lex.T))  # (V, K): rows gathered by token
        else:
            vocab = _EMPTY_VOCAB
            _set(self, "lexical_coef", None)
            _set(self, "lexical_intercept", None)
            _set(self, "_lex_w", np.zeros((0, k), dtype=np.float32))
        vocab.setflags(write=False)
        _set(self, "lexical_vocab", vocab)
        _set(self, "_w", np.ascontiguousarray(coef.T))

    @property
    def classes_(self) -> np.ndarray:
        return np.array(self.classes)

    @property
    def dim(self) -> int:
        return self.coef.shape[1]

    @property
    def uses_tokens(self) -> bool:
        return self.lexical_weight > 0

    def log_scores(self, X: np.ndarray, tokens: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """Mixed log-probabilities before temperature, shape (n, n_classes)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float32))
        scores = log_softmax(X @ self._w + self.intercept)
        if self.uses_tokens:
            if tokens is None or len(tokens) != len(X):
                raise ValueError("this head mixes in a lexical model: pass tokens for every row")
            scores *= 1.0 - self.lexical_weight
            scores += self.lexical_weight * log_softmax(self._lexical_logits(tokens))
        return scores

    def predict_proba(self, X: np.ndarray,
                      tokens: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """Label confidences, shape (n, n_classes), columns in `classes` order."""
        return softmax(self.log_scores(X, tokens) / self.temperature)

    def predict(self, X: np.ndarray, tokens: Sequence[np.ndarray] | None = None) -> np.ndarray:
        return self.classes_[self.predict_proba(X, tokens).argmax(axis=1)]

    def _lexical_logits(self, tokens: Sequence[np.ndarray]) -> np.ndarray:
        out = np.tile(self.lexical_intercept, (len(tokens), 1))
        vocab = self.lexical_vocab
        for i, ids in enumerate(tokens):
            if len(ids) == 0 or len(vocab) == 0:
                continue
            pos = np.minimum(np.searchsorted(vocab, ids), len(vocab) - 1)
            hits = pos[vocab[pos] == ids]
            # The bag is binary and L2-normalised over all of the text's tokens.
            out[i] += self._lex_w[hits].sum(axis=0) / np.sqrt(len(ids))
        return out

    def to_bytes(self) -> bytes:
        arrays = {
            "format_version": np.int64(FORMAT_VERSION),
            "classes": np.array(self.classes, dtype=np.str_),
            "coef": self.coef,
            "intercept": self.intercept,
            "temperature": np.float64(self.temperature),
            "zero_shot": np.bool_(self.zero_shot),
            "lexical_weight": np.float64(self.lexical_weight),
        }
        if self.uses_tokens:
            arrays |= {"lexical_vocab": self.lexical_vocab, "lexical_coef": self.lexical_coef,
                       "lexical_intercept": self.lexical_intercept}
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Head:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            if int(z["format_version"]) != FORMAT_VERSION:
                raise ValueError(f"unsupported head format {int(z['format_version'])}")
            lexical = {k: z[k] for k in ("lexical_vocab", "lexical_coef", "lexical_intercept")
                       if k in z.files}
            return cls(
                classes=tuple(str(c) for c in z["classes"]),
                coef=z["coef"],
                intercept=z["intercept"],
                temperature=float(z["temperature"]),
                zero_shot=bool(z["zero_shot"]),
                lexical_weight=float(z["lexical_weight"]),
                **lexical,
            )


def _frozen(a, shape: tuple, name: str) -> np.ndarray:
    if a is None:
        raise ValueError(f"{name} is required")
    arr = np.array(a, dtype=np.float32)
    if arr.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, arr.shape,
                                                                             strict=True)):
        raise ValueError(f"{name} has shape {arr.shape}, expected {shape}")
    arr.setflags(write=False)
    return arr


def _set(obj, name, value) -> None:
    object.__setattr__(obj, name, value)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z
