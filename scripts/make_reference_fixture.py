"""Write tests/fixtures/reference_embeddings[-accurate].npz: fp32 reference embeddings.

The reference is computed independently of our ONNX graphs, one text at a time (no padding),
mean-pooled and normalised as sentence-transformers does: for the fast encoder a float64 numpy
BERT forward pass over the upstream safetensors; for the accurate one transformers' MPNet in
float64 (scripts/export_mpnet.py --reference). Run it again only if the texts change.

    python scripts/make_reference_fixture.py [--encoder fast|accurate]
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
import build_mpnet  # noqa: E402
from build_encoder import (  # noqa: E402
    UPSTREAM_DIR,
    download,
    fetch_sources,
    patched_tokenizer,
    read_safetensors,
)
from labelloop.encoder import DEFAULT_ENCODER, ENCODERS  # noqa: E402

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


def main() -> None:
    from tokenizers import Tokenizer

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--encoder", choices=ENCODERS, default=DEFAULT_ENCODER)
    accurate = p.parse_args().encoder == "accurate"
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
