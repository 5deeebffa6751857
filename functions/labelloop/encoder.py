"""Text → unit-norm 384-d embedding: tokenizer + ONNX encoder + mean pooling.

One ONNX session per process, created on first use (nothing heavy at import time).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from pydantic import BaseModel

ENCODER_DIR_ENV = "LABELLOOP_ENCODER_DIR"
# Lambda mounts layers under /opt; the encoder layer holds its files in /opt/encoder.
LAMBDA_ENCODER_DIR = Path("/opt/encoder")
EMULATOR_LAYERS_ENV = "_LAMBDA_LAYERS_DIRS"
REPO_ENCODER_DIR = Path(__file__).resolve().parents[2] / "layers" / "encoder"


class EncoderManifest(BaseModel):
    name: str
    variant: str
    dim: int
    max_tokens: int
    pooling: str
    normalize: bool
    files: dict[str, str]


class EncoderNotBuilt(RuntimeError):
    pass


# [PAD], [UNK], [CLS], [SEP]: not words, so not lexical features.
_SPECIAL_IDS = np.array([0, 100, 101, 102])


@dataclass(frozen=True)
class Features:
    """What the head reads of a text: its embedding and its set of wordpiece ids."""

    embeddings: np.ndarray  # (n, dim) float32, unit norm
    tokens: list[np.ndarray]  # per text: sorted unique wordpiece ids (int32), specials removed

    def __len__(self) -> int:
        return len(self.tokens)

    def take(self, idx) -> Features:
        return Features(self.embeddings[idx], [self.tokens[i] for i in np.asarray(idx)])


def default_encoder_dir() -> Path:
    if env := os.environ.get(ENCODER_DIR_ENV):
        return Path(env)
    if (LAMBDA_ENCODER_DIR / "manifest.json").exists():
        return LAMBDA_ENCODER_DIR
    # An emulator (ministack) unpacks each layer into its own folder, not /opt, and lists them
    # here: each is what /opt is on Lambda.
    for root in filter(None, os.environ.get(EMULATOR_LAYERS_ENV, "").split(os.pathsep)):
        if (Path(root) / "encoder" / "manifest.json").exists():
            return Path(root) / "encoder"
    return REPO_ENCODER_DIR


class Encoder:
    """Embeds texts. Safe to share between threads (onnxruntime sessions are)."""

    def __init__(self, model_dir: Path | None = None, threads: int = 1):
        self.model_dir = Path(model_dir) if model_dir else default_encoder_dir()
        self.threads = threads
        self._lock = threading.Lock()

    @cached_property
    def manifest(self) -> EncoderManifest:
        path = self.model_dir / "manifest.json"
        if not path.exists():
            raise EncoderNotBuilt(
                f"no encoder at {self.model_dir}: run `python scripts/build_encoder.py`")
        return EncoderManifest.model_validate(json.loads(path.read_text()))

    @property
    def dim(self) -> int:
        return self.manifest.dim

    @cached_property
    def _tokenizer(self):
        from tokenizers import Tokenizer

        max_tokens = self.manifest.max_tokens  # first: a clear error if nothing is built
        tok = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        # Over-long text is truncated at the model window, never rejected.
        tok.enable_truncation(max_tokens)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
        return tok

    @cached_property
    def _session(self):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(
            str(self.model_dir / "model.onnx"), opts, providers=["CPUExecutionProvider"])

    def warm(self) -> None:
        """Load manifest, tokenizer and session now (cold start) rather than on first embed."""
        with self._lock:
            _ = self.manifest, self._tokenizer, self._session

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit-norm float32 embeddings, one row per text, in order."""
        return self.featurize(texts, batch_size).embeddings

    def featurize(self, texts: Sequence[str], batch_size: int = 32) -> Features:
        """Embeddings and wordpiece sets, one per text, in order."""
        if isinstance(texts, str):
            raise TypeError("pass a sequence of texts, not one string")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        tokens: list[np.ndarray] = [_SPECIAL_IDS] * len(texts)
        # Sort by length so that each batch pads little; results go back in input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            out[idx], batch_tokens = self._run([texts[i] for i in idx])
            for i, t in zip(idx, batch_tokens, strict=True):
                tokens[i] = t
        return Features(out, tokens)

    def featurize_one(self, text: str) -> Features:
        emb, tokens = self._run([text])
        return Features(emb, tokens)

    def embed_one(self, text: str) -> np.ndarray:
        return self._run([text])[0][0]

    def _run(self, texts: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        (hidden,) = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
        return mean_pool_normalize(hidden, mask), [_token_set(e.ids) for e in encodings]

    def wordpieces(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The token part of `featurize` alone (no model run): for features stored earlier."""
        return [_token_set(e.ids) for e in self._tokenizer.encode_batch(list(texts))]


def _token_set(ids: list[int]) -> np.ndarray:
    return np.setdiff1d(np.asarray(ids, dtype=np.int32), _SPECIAL_IDS)


def mean_pool_normalize(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[:, :, None].astype(np.float32)
    pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
