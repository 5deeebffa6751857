"""Use case: turn a function's labels and annotated samples into a servable model version.

Zero-shot while fewer than two labels have two annotated samples each; otherwise a trained
head with cross-validated metrics. Imports scikit-learn only when it trains.

Image functions have no zero-shot model (no text-image model ships offline: a label's name says
nothing about pixels) and no lexical part: their head is trained on embeddings alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from labelloop.encoder import Features, OnnxModel
from labelloop.ml.head import Head
from labelloop.ml.warm_start import WarmStart
from labelloop.ml.zeroshot import prior_texts, zero_shot_head

MIN_LABELS_TO_TRAIN = 2
MIN_SAMPLES_PER_LABEL = 2
# With its views an image sample is seven rows: cross-validation picks the grid's top C
# (100) most of the time, and one step more is often better (MNIST few-shot, k = 5 and 10).
IMAGE_CS = (3.0, 10.0, 30.0, 100.0, 300.0)


@dataclass(frozen=True)
class LabelSpec:
    name: str
    description: str | None = None
    # Features of `prior_texts(name, description)`, when computed earlier (stored labels);
    # otherwise `build_model` runs the encoder for them.
    priors: Features | None = None


@dataclass(frozen=True)
class TrainedModel:
    head: Head
    # Cross-validated results; None for zero-shot models (nothing to validate against).
    cv_accuracy: float | None
    cv_per_label_accuracy: dict[str, float] | None
    cv_ece: float | None
    cv_predictions: list[str] | None  # per annotated sample, in input order
    cv_confidences: list[float] | None
    # Sample index -> prediction, for the `fresh` samples (see HeadTrainer.fit).
    fresh_predictions: dict[int, str] | None
    n_folds: int
    C: float | None
    sample_count: int
    warm: bool = False  # retrained from the live version (no search)
    # Per annotated sample, the cross-validated probability of its own label (NaN: unknown).
    cv_own: list[float] | None = None

    @property
    def zero_shot(self) -> bool:
        return self.head.zero_shot


class NeedsSamples(ValueError):
    """An image function without annotated samples of two labels: nothing to build from."""


def label_priors(encoder: OnnxModel | None, labels: Sequence[LabelSpec]) -> list[Features]:
    """Each label's prior features: stored ones as given, the rest encoded now."""
    missing = [lb for lb in labels if lb.priors is None]
    if missing and encoder is None:
        raise ValueError("labels without stored priors need an encoder")
    texts = [t for lb in missing for t in prior_texts(lb.name, lb.description)]
    encoded = encoder.featurize(texts) if missing else None
    out, at = [], 0
    for lb in labels:
        if lb.priors is not None:
            out.append(lb.priors)
            continue
        n = len(prior_texts(lb.name, lb.description))
        out.append(encoded.take(np.arange(at, at + n)))
        at += n
    return out


def is_trainable(sample_labels: Sequence[str]) -> bool:
    counts = Counter(sample_labels)
    return sum(1 for n in counts.values() if n >= MIN_SAMPLES_PER_LABEL) >= MIN_LABELS_TO_TRAIN


def build_model(encoder: OnnxModel | None, labels: Sequence[LabelSpec], features: Features,
                sample_labels: Sequence[str], random_state: int = 0,
                fresh: np.ndarray | None = None, text: bool | None = None,
                views: Sequence[np.ndarray | None] | None = None,
                warm: WarmStart | None = None,
                weights: np.ndarray | None = None) -> TrainedModel:
    """`features[i]` is annotated with `sample_labels[i]`; every such label is in `labels`.
    `views[i]`: sample i's training views (an image's; see `HeadTrainer.fit`), or None.
    `warm`: retrain from the live version's settings and weights instead of searching (the
    caller checks that the live version is a trained head over the same labels).
    `encoder` None: every label's priors are stored (the training worker has no encoder).
    `text`: whether the inputs are texts (default: the encoder's kind, or True).
    `weights`: per sample, how much it counts in training (see `HeadTrainer.fit`)."""
    names = [label.name for label in labels]
    if len(set(names)) != len(names):
        raise ValueError("label names must be unique")
    unknown = set(sample_labels) - set(names)
    if unknown:
        raise ValueError(f"samples name unknown labels: {sorted(unknown)}")
    if len(features) != len(sample_labels):
        raise ValueError("one label per sample")
    if not (text if text is not None else encoder is None or encoder.text):
        return _image_model(features, sample_labels, random_state, fresh, views, warm, weights)
    priors = label_priors(encoder, labels)
    prior_owner = [lb.name for lb, f in zip(labels, priors, strict=True) for _ in range(len(f))]
    priors = Features(
        np.concatenate([f.embeddings for f in priors]) if priors else np.zeros((0, 1)),
        [t for f in priors for t in f.tokens])
    classes = sorted(names)
    if len(classes) < 1:
        raise ValueError("a model needs at least one label")
    if not is_trainable(sample_labels) or len(classes) < 2:
        head = zero_shot_head(prior_owner, priors.embeddings, classes)
        return TrainedModel(head, None, None, None, None, None, None, 0, None,
                            len(sample_labels))

    from labelloop.ml.trainer import HeadTrainer, Priors

    trainer = HeadTrainer(random_state=random_state).fit(
        features.embeddings, list(sample_labels), features.tokens,
        Priors(priors.embeddings, priors.tokens, prior_owner), fresh=fresh, warm=warm,
        weights=weights)
    return _trained(trainer, len(sample_labels))


def _image_model(features: Features, sample_labels: Sequence[str], random_state: int,
                 fresh: np.ndarray | None, views, warm: WarmStart | None,
                 weights: np.ndarray | None) -> TrainedModel:
    if not is_trainable(sample_labels):
        raise NeedsSamples(f"an image function needs at least {MIN_SAMPLES_PER_LABEL} annotated "
                           f"samples of {MIN_LABELS_TO_TRAIN} labels before it has a model")
    from labelloop.ml.trainer import HeadTrainer

    # Labels without samples cannot be predicted: there is nothing to learn them from.
    trainer = HeadTrainer(Cs=IMAGE_CS, random_state=random_state).fit(
        features.embeddings, list(sample_labels), fresh=fresh, views=views, warm=warm,
        weights=weights)
    return _trained(trainer, len(sample_labels))


def _trained(trainer, sample_count: int) -> TrainedModel:
    cv = trainer.cv_
    return TrainedModel(
        head=trainer.head_,
        cv_accuracy=cv.accuracy,
        cv_per_label_accuracy=cv.per_label_accuracy,
        cv_ece=cv.ece,
        cv_predictions=cv.predictions,
        cv_confidences=cv.confidences.tolist(),
        fresh_predictions=trainer.fresh_predictions_,
        n_folds=cv.n_folds,
        C=float(trainer.C_),
        sample_count=sample_count,
        warm=trainer.warm_,
        cv_own=cv.own.tolist(),
    )
