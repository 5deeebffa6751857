"""Image bytes → unit-norm embedding: `imaging` (Pillow) + EfficientNet-Lite0 (ONNX), 1280-d.

The `image` encoder of image functions; built by `scripts/build_encoder.py --encoder image`.
Its features carry no token sets (the head's lexical part is text only).

The pooled CNN features are power-normalised (signed square root, then unit norm) before any
head sees them: a few large activations otherwise dominate the cosine. On MNIST few-shot
(scripts/bench_fewshot_images.py, 3 seeds) it gained 2-3 points at k = 5 and 10 and lowered
ECE, for the product's head and plain logistic regression alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np
from pydantic import BaseModel

from labelloop import imaging
from labelloop.encoder import EMPTY_TOKENS, EncoderNotBuilt, Features, OnnxModel

POWER = 0.5


class ImageManifest(BaseModel):
    name: str
    encoder: str
    variant: str
    dim: int
    input: str
    image_size: int
    resize: int
    mean: float
    std: float
    files: dict[str, str]


class ImageEncoder(OnnxModel):
    """Embeds images (bytes of any format `imaging` decodes)."""

    Manifest = ImageManifest
    text = False

    @cached_property
    def _checked(self) -> ImageManifest:
        m = self.manifest
        if (m.image_size, m.resize, m.mean, m.std) != (
                imaging.SIZE, imaging.RESIZE, imaging.MEAN, imaging.STD):
            raise EncoderNotBuilt(f"the image encoder at {self.model_dir} expects other "
                                  "preprocessing: rebuild it (scripts/build_encoder.py)")
        return m

    def warm(self) -> None:
        with self._lock:
            _ = self._checked, self._session

    def embed(self, images: Sequence[bytes], batch_size: int = 16) -> np.ndarray:
        return self.featurize(images, batch_size).embeddings

    def featurize(self, images: Sequence[bytes], batch_size: int = 16) -> Features:
        """One embedding per image, in order; `imaging.ImageError` for bytes it cannot read."""
        if isinstance(images, bytes | str):
            raise TypeError("pass a sequence of images, not one")
        out = np.empty((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            out[start:start + len(chunk)] = self.embed_pixels(
                np.stack([imaging.preprocess(b) for b in chunk]))
        return Features(out, [EMPTY_TOKENS] * len(images))

    def featurize_one(self, image: bytes) -> Features:
        return self.featurize([image])

    def embed_one(self, image: bytes) -> np.ndarray:
        return self.featurize([image]).embeddings[0]

    def featurize_with_views(self, image: bytes) -> tuple[Features, np.ndarray]:
        """One image's features and its training views' embeddings (`imaging.view_pixels`,
        float32 [imaging.N_VIEWS, dim]: rows a trained head learns from, never served), in
        one batch from one decode."""
        img = imaging.decode(image)
        rows = self.embed_pixels(np.concatenate([imaging.pixels(img)[None],
                                                 imaging.view_pixels(img)]))
        return Features(rows[:1], [EMPTY_TOKENS]), rows[1:]

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Embeddings of preprocessed images, [n, 3, size, size] float32."""
        (features,) = self._session.run(None, {self._checked.input: np.ascontiguousarray(pixels)})
        return power_normalize(features)

    @property
    def cache_key(self) -> str:
        """What the embeddings depend on (benchmarks cache them under it)."""
        return f"{self.manifest.files['model.onnx'][:16]}-power{POWER}-pre{imaging.VERSION}"

    def wordpieces(self, images: Sequence[bytes]) -> list[np.ndarray]:
        return [EMPTY_TOKENS] * len(images)


def power_normalize(features: np.ndarray) -> np.ndarray:
    """Signed power POWER, then unit norm, per row."""
    powered = np.sign(features) * np.abs(features) ** POWER
    norms = np.linalg.norm(powered, axis=1, keepdims=True)
    return (powered / np.maximum(norms, 1e-12)).astype(np.float32)
