"""`labelloop demo`: the ML core end to end, in process, without the service."""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from labelloop.cli.files import EXAMPLES
from labelloop.encoder import DEFAULT_ENCODER, ENCODERS

LABELS = EXAMPLES / "example_labels.csv"
SAMPLES = EXAMPLES / "example_samples.csv"
QUERIES = EXAMPLES / "example_queries.txt"


def demo(*, labels: Path = LABELS, samples: Path = SAMPLES, queries: Path = QUERIES,
         encoder: str = DEFAULT_ENCODER, encoder_dir: Path | None = None) -> None:
    """Train on a small labelled file and predict new texts: the ML core end to end."""
    from labelloop.encoder import Encoder
    from labelloop.ml.build import LabelSpec, build_model

    specs = [LabelSpec(r["name"], r.get("description") or None)
             for r in _read_csv(labels, ("name",))]
    rows = _read_csv(samples, ("text", "label"))
    texts = [q for q in queries.read_text(encoding="utf-8").splitlines() if q.strip()]
    known = {lb.name for lb in specs}
    for i, s in enumerate(rows, start=2):
        if s["label"] not in known:
            raise SystemExit(f"{samples}:{i}: label {s['label']!r} is not in {labels}")
    enc = Encoder(encoder_dir, encoder=encoder)
    started = time.perf_counter()
    enc.warm()
    print(f"encoder: {enc.manifest.name} ({enc.manifest.variant}) from {enc.model_dir}"
          f", loaded in {time.perf_counter() - started:.2f} s")

    zero = build_model(enc, specs, enc.featurize([]), [])
    print(f"\nzero-shot (label names and descriptions only, {len(specs)} labels):")
    _print_predictions(zero.head, enc, texts)

    started = time.perf_counter()
    features = enc.featurize([s["text"] for s in rows])
    model = build_model(enc, specs, features, [s["label"] for s in rows])
    took = time.perf_counter() - started
    print(f"\ntrained on {model.sample_count} samples in {took:.1f} s: cross-validated accuracy "
          f"{model.cv_accuracy:.3f} ({model.n_folds} folds), ECE {model.cv_ece:.3f}, "
          f"C={model.C:g}, lexical weight {model.head.lexical_weight:g}, "
          f"temperature {model.head.temperature:.2f}")
    weakest = sorted(model.cv_per_label_accuracy.items(), key=lambda kv: kv[1])[:2]
    print("  weakest labels (cv accuracy): " + ", ".join(f"{k} {v:.2f}" for k, v in weakest))
    print("\npredictions:")
    _print_predictions(model.head, enc, texts)


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    # Not files.py's readers: they raise CliError for `guarded` to report, and the demo runs
    # unguarded (it needs no service); SystemExit prints the message without a trace.
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    missing = [c for c in required if rows and c not in rows[0]]
    if not rows or missing:
        raise SystemExit(f"{path}: needs a header with columns {', '.join(required)}"
                         + (f" (missing: {', '.join(missing)})" if missing else " and rows"))
    return rows


def _print_predictions(head, encoder, queries: list[str]) -> None:
    features = encoder.featurize(queries)
    proba = head.predict_proba(features.embeddings, features.tokens if head.uses_tokens else None)
    width = max(len(c) for c in head.classes)
    for text, row in zip(queries, proba, strict=True):
        order = row.argsort()[::-1]
        top = ", ".join(f"{head.classes[i]} {row[i]:.2f}" for i in order[1:3])
        print(f"  {head.classes[order[0]]:<{width}}  {row[order[0]]:.2f}  {text}")
        print(f"  {'':<{width}}        next: {top}")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="train on an example file and print predictions")
    p.add_argument("--labels", type=Path, default=LABELS,
                   help="CSV with columns name[,description]")
    p.add_argument("--samples", type=Path, default=SAMPLES,
                   help="CSV with columns text,label")
    p.add_argument("--queries", type=Path, default=QUERIES,
                   help="texts to classify, one per line")
    p.add_argument("--encoder", choices=ENCODERS, default=DEFAULT_ENCODER,
                   help="fast: all-MiniLM-L6-v2; accurate: all-mpnet-base-v2 (default: fast)")
    p.add_argument("--encoder-dir", type=Path, default=None,
                   help="built encoder folder (default: layers/encoder, layers/encoder-accurate)")
    p.set_defaults(func=lambda a: demo(labels=a.labels, samples=a.samples, queries=a.queries,
                                       encoder=a.encoder, encoder_dir=a.encoder_dir))
