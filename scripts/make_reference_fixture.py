"""Write tests/fixtures/reference_embeddings[-accurate|-image].npz: fp32 reference embeddings.

The reference is computed independently of our ONNX graphs, one text at a time (no padding),
mean-pooled and normalised as sentence-transformers does: for the fast encoder a float64 numpy
BERT forward pass over the upstream safetensors; for the accurate one transformers' MPNet in
float64 (scripts/export_mpnet.py --reference). For the image encoder: the torch model on the
pinned sample photos, decoded to RGB here with plain numpy compositing (RGBA on white, grey
repeated) and resized and cropped with torch's own ops (scripts/export_image_encoder.py
--reference), not with labelloop.imaging. Run it again only if the texts or photos change.

    python scripts/make_reference_fixture.py [--encoder fast|accurate|image]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from math import erf
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import build_image_encoder  # noqa: E402
import build_mpnet  # noqa: E402
from build_encoder import (  # noqa: E402
    UPSTREAM_DIR,
    download,
    extract_pinned,
    fetch_sources,
    patched_tokenizer,
    read_safetensors,
)
from labelloop.encoder import DEFAULT_ENCODER, ENCODERS, IMAGE_ENCODER  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
TEXTS = FIXTURES / "reference_texts.txt"
_erf = np.vectorize(erf)


def layer_norm(x, w, b, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def bert_embed(weights: dict, ids: list[int]) -> np.ndarray:
    w = {k: v.astype(np.float64) for k, v in weights.items() if v.dtype == np.float32}
    n = len(ids)
    x = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.position_embeddings.weight"][:n]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    heads, dh = 12, 32
    for i in range(6):
        p = f"encoder.layer.{i}."
        lin = lambda h, name, p=p: h @ w[p + name + ".weight"].T + w[p + name + ".bias"]  # noqa: E731
        q, k, v = (lin(x, f"attention.self.{m}").reshape(n, heads, dh).transpose(1, 0, 2)
                   for m in ("query", "key", "value"))
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(dh)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attn = scores / scores.sum(-1, keepdims=True)
        ctx = (attn @ v).transpose(1, 0, 2).reshape(n, heads * dh)
        x = layer_norm(x + lin(ctx, "attention.output.dense"),
                       w[p + "attention.output.LayerNorm.weight"],
                       w[p + "attention.output.LayerNorm.bias"])
        h = lin(x, "intermediate.dense")
        h = 0.5 * h * (1.0 + _erf(h / np.sqrt(2.0)))
        x = layer_norm(x + lin(h, "output.dense"),
                       w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def mpnet_reference(tmp: Path) -> np.ndarray:
    import subprocess

    upstream = build_mpnet.fetch_upstream(tmp, download)
    tok_path = tmp / "tokenizer.json"
    patched_tokenizer(upstream / "tokenizer.json", tok_path, build_mpnet.MAX_TOKENS,
                      build_mpnet.PAD)
    out = tmp / "reference.npy"
    subprocess.run([str(build_mpnet.torch_python()), str(ROOT / "scripts" / "export_mpnet.py"),
                    "--reference", str(upstream), str(tok_path), str(TEXTS), str(out)],
                   check=True)
    return np.load(out)


def image_reference(work: Path) -> tuple[list[str], np.ndarray]:
    from PIL import Image

    raw = {}
    for name, path in build_image_encoder.sample_photos(work / "photos", download).items():
        a = np.asarray(Image.open(path)).astype(np.float64)
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        elif a.shape[2] == 4:
            alpha = a[:, :, 3:] / 255.0
            a = a[:, :, :3] * alpha + 255.0 * (1 - alpha)
        raw[name] = np.round(a).astype(np.uint8)
    np.savez(work / "raw.npz", **raw)
    src = build_image_encoder.sources(work / "src", extract_pinned)
    build_image_encoder.export(src, work / "model.onnx", (work / "raw.npz", work / "ref.npz"))
    ref = np.load(work / "ref.npz")
    embs = np.stack([ref[n] / np.linalg.norm(ref[n]) for n in raw])
    return list(raw), embs.astype(np.float32)


def main() -> None:
    from tokenizers import Tokenizer

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--encoder", choices=(*ENCODERS, IMAGE_ENCODER), default=DEFAULT_ENCODER)
    encoder = p.parse_args().encoder
    if encoder == IMAGE_ENCODER:
        with tempfile.TemporaryDirectory() as tmp:
            names, embs = image_reference(Path(tmp))
        out = FIXTURES / "reference_embeddings-image.npz"
        np.savez_compressed(out, names=np.array(names), embeddings=embs)
        print(f"wrote {out}: {embs.shape}")
        return
    accurate = encoder == "accurate"
    texts = [t for t in TEXTS.read_text().splitlines() if t.strip()]
    out = FIXTURES / ("reference_embeddings-accurate.npz" if accurate
                      else "reference_embeddings.npz")
    with tempfile.TemporaryDirectory() as tmp:
        if accurate:
            embs = mpnet_reference(Path(tmp))
            np.savez_compressed(out, texts=np.array(texts), embeddings=embs)
            print(f"wrote {out}: {embs.shape}")
            return
        src = fetch_sources(Path(tmp))
        tok_path = Path(tmp) / "tokenizer.json"
        patched_tokenizer(src[UPSTREAM_DIR + "tokenizer.json"], tok_path)
        tok = Tokenizer.from_file(str(tok_path))
        weights = read_safetensors(src[UPSTREAM_DIR + "model.safetensors"])
        embs = np.stack([bert_embed(weights, tok.encode(t).ids) for t in texts])
    np.savez_compressed(out, texts=np.array(texts), embeddings=embs.astype(np.float32))
    print(f"wrote {out}: {embs.shape}")


if __name__ == "__main__":
    main()
