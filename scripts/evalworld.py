"""The evaluation scripts' world: a fresh in-process moto account with labelloop's resources
and a container pointing at it (`moto_deps`), an encoder that serves precomputed features by
text (`CachedEncoder`), reproducible ids, and the live model's accuracy on a test split."""

from __future__ import annotations

import itertools
import os
from contextlib import contextmanager
from unittest import mock

import numpy as np

from labelloop.encoder import Encoder, Encoders, Features
from labelloop.ml.metrics import macro_f1

CLIENT = "eval-client"
ENV = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test",
       "AWS_SECRET_ACCESS_KEY": "test", "POWERTOOLS_METRICS_DISABLED": "1",
       "LABELLOOP_TRAIN_DEBOUNCE_SECONDS": "0",
       # Every write this process makes invalidates the caches it affects (one container),
       # so a long TTL changes no decision, only saves moto reads.
       "LABELLOOP_CACHE_SECONDS": "300"}


class CachedEncoder:
    """The real encoder's interface, serving precomputed `Features` by text."""

    def __init__(self, encoder: Encoder, texts: list[str], features: Features):
        self._enc = encoder
        self._rows = {t: i for i, t in enumerate(texts)}
        self._feats = features
        self.misses = 0

    def __getattr__(self, name):  # manifest, dim, wordpieces, ...
        return getattr(self._enc, name)

    def _add(self, texts: list[str]) -> None:
        new = [t for t in dict.fromkeys(texts) if t not in self._rows]
        if not new:
            return
        self.misses += len(new)
        f = self._enc.featurize(new)
        base = len(self._feats)
        self._feats = Features(np.concatenate([self._feats.embeddings, f.embeddings]),
                               [*self._feats.tokens, *f.tokens])
        self._rows.update({t: base + i for i, t in enumerate(new)})

    def featurize(self, texts, batch_size: int = 32) -> Features:
        if isinstance(texts, str):
            raise TypeError("pass a sequence of texts, not one string")
        self._add(list(texts))
        return self._feats.take([self._rows[t] for t in texts])

    def featurize_one(self, text: str) -> Features:
        return self.featurize([text])

    def embed(self, texts, batch_size: int = 32) -> np.ndarray:
        return self.featurize(texts).embeddings

    def embed_one(self, text: str) -> np.ndarray:
        return self.featurize([text]).embeddings[0]


def counted_ids():
    """New bare ids, the same sequence every run."""
    from labelloop.ids import new_bare

    count = itertools.count()

    def new() -> str:
        n = next(count)
        return new_bare(1_700_000_000_000 + n, n.to_bytes(8, "big"))

    return new


@contextmanager
def moto_deps(encoder, seed: int):
    """A fresh moto account with labelloop's resources and a container pointing at it."""
    import boto3
    from moto import mock_aws

    from labelloop import container
    from labelloop.capture.state import CaptureCache

    saved = {k: os.environ.get(k) for k in ENV}
    saved["AWS_ENDPOINT_URL"] = os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.update(ENV)
    env: dict[str, str] = {}
    try:
        with mock_aws():
            from labelloop.resources import create_all

            env = create_all(boto3.Session(), "eval")
            for k, v in env.items():
                saved.setdefault(k, os.environ.get(k))
                os.environ[k] = v
            d = container.Deps()
            encoders = Encoders()
            encoders.put(encoder)  # serves the cached features under the encoder's name
            d.__dict__["encoders"] = encoders
            # The random strategy draws from each offer's sample id and the seed: with invoke
            # ids counted instead of taken from the clock and urandom, a run is reproducible.
            d.__dict__["captures"] = CaptureCache(d.samples, d.ledger, d.objects,
                                                  d.settings.cache_seconds, seed=seed)
            container.reset(d)
            with mock.patch("labelloop.usecases.invoke.new_bare", counted_ids()):
                yield d
    finally:
        container.reset()
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def evaluate(d, fid: str, test: Features, yte: np.ndarray, shares: dict[str, float] | None,
             version: int | None = None) -> tuple[float, float]:
    """The live model's (or another version's) accuracy and macro-F1 on the test split;
    with `shares`, accuracy is each label's recall weighted by its share of the traffic."""
    view = d.serving.view(fid)
    head = (view.model if version is None else d.serving.model(fid, version)).head
    proba = head.predict_proba(test.embeddings, test.tokens if head.uses_tokens else None)
    names = np.array([view.labels[c].name for c in head.classes])
    pred = names[proba.argmax(axis=1)]
    right = pred == yte
    if shares is None:
        return float(right.mean()), macro_f1(yte, pred)
    weighted = sum(w * float(right[yte == c].mean()) for c, w in shares.items()
                   if (yte == c).any())
    return weighted / sum(w for c, w in shares.items() if (yte == c).any()), macro_f1(yte, pred)
