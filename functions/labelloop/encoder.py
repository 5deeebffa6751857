"""Text → unit-norm embedding: tokenizer + ONNX encoder + mean pooling.

Two text encoders, named by what they are for; a text function picks one when it is created:
`fast` (all-MiniLM-L6-v2, 384-d, the default) and `accurate` (all-mpnet-base-v2, 768-d). Image
functions have the `image` encoder (`image_encoder.py`), built on the same `OnnxModel` base.
One ONNX session per encoder per process, created on first use (nothing heavy at import time).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from pydantic import BaseModel

ENCODERS = ("fast", "accurate")  # a text function's choice
DEFAULT_ENCODER = "fast"
IMAGE_ENCODER = "image"
LAYERS_DIR = Path(__file__).resolve().parents[2] / "layers"
# Lambda mounts layers under /opt: the encoder layer holds /opt/encoder, /opt/encoder-accurate.
LAMBDA_LAYERS_DIR = Path("/opt")
EMULATOR_LAYERS_ENV = "_LAMBDA_LAYERS_DIRS"


def folder_name(encoder: str) -> str:
    return "encoder" if encoder == DEFAULT_ENCODER else f"encoder-{encoder}"


def dir_env(encoder: str) -> str:
    """LABELLOOP_ENCODER_DIR, LABELLOOP_ACCURATE_ENCODER_DIR: a built folder to use instead."""
    return ("LABELLOOP_ENCODER_DIR" if encoder == DEFAULT_ENCODER
            else f"LABELLOOP_{encoder.upper()}_ENCODER_DIR")



class EncoderManifest(BaseModel):
    name: str
    encoder: str
    variant: str
    dim: int
    max_tokens: int
    pooling: str
    normalize: bool
    inputs: list[str]
    pad_id: int
    special_ids: list[int]  # not words, so not lexical features
    files: dict[str, str]


class EncoderNotBuilt(RuntimeError):
    pass


@dataclass(frozen=True)
class Features:
    """What the head reads of a text: its embedding and its set of wordpiece ids."""

    embeddings: np.ndarray  # (n, dim) float32, unit norm
    tokens: list[np.ndarray]  # per text: sorted unique wordpiece ids (int32), specials removed

    def __len__(self) -> int:
        return len(self.tokens)

    def take(self, idx) -> Features:
        return Features(self.embeddings[idx], [self.tokens[i] for i in np.asarray(idx)])


def default_encoder_dir(encoder: str = DEFAULT_ENCODER) -> Path:
    if env := os.environ.get(dir_env(encoder)):
        return Path(env)
    name = folder_name(encoder)
    # An emulator (ministack) unpacks each layer into its own folder, not /opt, and lists them
    # here: each is what /opt is on Lambda.
    roots = [LAMBDA_LAYERS_DIR, *map(Path, filter(None, os.environ.get(
        EMULATOR_LAYERS_ENV, "").split(os.pathsep)))]
    for root in roots:
        if (root / name / "manifest.json").exists():
            return root / name
    return LAYERS_DIR / name


class OnnxModel:
    """A built encoder folder (manifest.json, model.onnx) and its lazy ONNX session. Safe to
    share between threads (onnxruntime sessions are)."""

    Manifest: type[BaseModel]
    text = True  # its inputs are texts: label names give priors, wordpieces a lexical part

    def __init__(self, model_dir: Path | None = None, threads: int = 1,
                 encoder: str = DEFAULT_ENCODER,
                 fetch_model: Callable[[Path], None] | None = None):
        self.model_dir = Path(model_dir) if model_dir else default_encoder_dir(encoder)
        self.threads = threads
        self._lock = threading.Lock()
        self._encoder = encoder
        # Where model.onnx is not beside the manifest (on Lambda the accurate encoder's is too
        # big for the layers: it is fetched from S3 on first use), this writes it to a path.
        self._fetch_model = fetch_model

    @cached_property
    def manifest(self):
        path = self.model_dir / "manifest.json"
        if not path.exists():
            raise EncoderNotBuilt(
                f"no {self._encoder} encoder at {self.model_dir}: run "
                f"`python scripts/build_encoder.py --encoder {self._encoder}`")
        return self.Manifest.model_validate(json.loads(path.read_text()))

    @property
    def name(self) -> str:
        """The encoder's name (fast, accurate, image), as functions store it."""
        return self.manifest.encoder

    @property
    def dim(self) -> int:
        return self.manifest.dim

    @cached_property
    def _session(self):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(
            str(self._model_path()), opts, providers=["CPUExecutionProvider"])

    def _model_path(self) -> Path:
        path = self.model_dir / "model.onnx"
        if path.exists() or self._fetch_model is None:
            return path
        digest = self.manifest.files["model.onnx"]
        local = Path(tempfile.gettempdir()) / f"labelloop-{self.name}-{digest[:16]}.onnx"
        if not local.exists():
            partial = local.with_suffix(".part")
            self._fetch_model(partial)
            if file_sha256(partial) != digest:
                partial.unlink()
                raise EncoderNotBuilt(f"the {self.name} encoder's model.onnx does not match its "
                                      "manifest: redeploy the stack")
            partial.rename(local)
        return local


class Encoder(OnnxModel):
    """Embeds texts."""

    Manifest = EncoderManifest

    @cached_property
    def _tokenizer(self):
        from tokenizers import Tokenizer

        max_tokens = self.manifest.max_tokens  # first: a clear error if nothing is built
        tok = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        # Over-long text is truncated at the model window, never rejected.
        tok.enable_truncation(max_tokens)
        pad_token = tok.id_to_token(self.manifest.pad_id)
        tok.enable_padding(pad_id=self.manifest.pad_id, pad_token=pad_token)
        return tok

    @cached_property
    def _special_ids(self) -> np.ndarray:
        return np.asarray(sorted(self.manifest.special_ids), dtype=np.int32)

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
        tokens: list[np.ndarray] = [EMPTY_TOKENS] * len(texts)
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
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        (hidden,) = self._session.run(None, {k: feeds[k] for k in self.manifest.inputs})
        return mean_pool_normalize(hidden, mask), [self._token_set(e.ids) for e in encodings]

    def wordpieces(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The token part of `featurize` alone (no model run): for features stored earlier."""
        return [self._token_set(e.ids) for e in self._tokenizer.encode_batch(list(texts))]

    def _token_set(self, ids: list[int]) -> np.ndarray:
        return np.setdiff1d(np.asarray(ids, dtype=np.int32), self._special_ids)


EMPTY_TOKENS = np.zeros(0, dtype=np.int32)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Encoders:
    """The encoders of one container, each built on first use (one ONNX session apiece)."""

    def __init__(self, fetch_model: Callable[[str, Path], None] | None = None,
                 threads: int = 1):
        self._fetch_model = fetch_model
        self._threads = threads
        self._built: dict[str, OnnxModel] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> OnnxModel:
        # Every invoke asks: no lock once built (dict reads are atomic under the GIL).
        if built := self._built.get(name):
            return built
        if name not in (*ENCODERS, IMAGE_ENCODER):
            raise KeyError(f"unknown encoder {name!r} (known: {', '.join(ENCODERS)}, "
                           f"{IMAGE_ENCODER})")
        with self._lock:
            if name not in self._built:
                fetch = self._fetch_model
                self._built[name] = _kind(name)(
                    threads=self._threads, encoder=name,
                    fetch_model=(lambda dest: fetch(name, dest)) if fetch else None)
            return self._built[name]

    def put(self, encoder: OnnxModel) -> None:
        """Use this (already built) encoder for its name: tests share one session."""
        with self._lock:
            self._built[encoder.name] = encoder

    def available(self, name: str) -> bool:
        """Whether this deployment has the encoder (its manifest), without loading it."""
        try:
            return self[name].manifest is not None
        except (KeyError, EncoderNotBuilt):
            return False


def _kind(name: str) -> type[OnnxModel]:
    if name != IMAGE_ENCODER:
        return Encoder
    from labelloop.image_encoder import ImageEncoder  # Pillow: only where images are served

    return ImageEncoder


def mean_pool_normalize(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[:, :, None].astype(np.float32)
    pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
