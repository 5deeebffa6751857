"""The `labelloop` command line."""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from labelloop.encoder import DEFAULT_ENCODER, ENCODERS

EXAMPLES = Path(__file__).resolve().parents[2] / "scripts" / "data"


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
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


def demo(args: argparse.Namespace) -> None:
    """Train on a small labelled file and predict new texts: the ML core end to end."""
    from labelloop.encoder import Encoder
    from labelloop.model import LabelSpec, build_model

    labels = [LabelSpec(r["name"], r.get("description") or None)
              for r in _read_csv(args.labels, ("name",))]
    samples = _read_csv(args.samples, ("text", "label"))
    queries = [q for q in args.queries.read_text(encoding="utf-8").splitlines() if q.strip()]
    known = {lb.name for lb in labels}
    for i, s in enumerate(samples, start=2):
        if s["label"] not in known:
            raise SystemExit(f"{args.samples}:{i}: label {s['label']!r} is not in {args.labels}")
    encoder = Encoder(args.encoder_dir, encoder=args.encoder)
    started = time.perf_counter()
    encoder.warm()
    print(f"encoder: {encoder.manifest.name} ({encoder.manifest.variant}) from {encoder.model_dir}"
          f", loaded in {time.perf_counter() - started:.2f} s")

    zero = build_model(encoder, labels, encoder.featurize([]), [])
    print(f"\nzero-shot (label names and descriptions only, {len(labels)} labels):")
    _print_predictions(zero.head, encoder, queries)

    started = time.perf_counter()
    features = encoder.featurize([s["text"] for s in samples])
    model = build_model(encoder, labels, features, [s["label"] for s in samples])
    took = time.perf_counter() - started
    print(f"\ntrained on {model.sample_count} samples in {took:.1f} s: cross-validated accuracy "
          f"{model.cv_accuracy:.3f} ({model.n_folds} folds), ECE {model.cv_ece:.3f}, "
          f"C={model.C:g}, lexical weight {model.head.lexical_weight:g}, "
          f"temperature {model.head.temperature:.2f}")
    weakest = sorted(model.cv_per_label_accuracy.items(), key=lambda kv: kv[1])[:2]
    print("  weakest labels (cv accuracy): " + ", ".join(f"{k} {v:.2f}" for k, v in weakest))
    print("\npredictions:")
    _print_predictions(model.head, encoder, queries)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="labelloop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="train on an example file and print predictions")
    p.add_argument("--labels", type=Path, default=EXAMPLES / "example_labels.csv",
                   help="CSV with columns name[,description]")
    p.add_argument("--samples", type=Path, default=EXAMPLES / "example_samples.csv",
                   help="CSV with columns text,label")
    p.add_argument("--queries", type=Path, default=EXAMPLES / "example_queries.txt",
                   help="texts to classify, one per line")
    p.add_argument("--encoder", choices=ENCODERS, default=DEFAULT_ENCODER,
                   help="fast: all-MiniLM-L6-v2; accurate: all-mpnet-base-v2 (default: fast)")
    p.add_argument("--encoder-dir", type=Path, default=None,
                   help="built encoder folder (default: layers/encoder, layers/encoder-accurate)")
    p.set_defaults(func=demo)
    from labelloop.cli_client import add_parsers
    from labelloop.clients_cli import add_parser as add_clients
    from labelloop.local.cli import add_parser as add_local

    add_local(sub)
    add_parsers(sub)
    add_clients(sub)
    args = parser.parse_args(argv)
    for name in ("labels", "samples", "queries"):
        path = getattr(args, name, None)
        if path is not None and not path.exists():
            parser.error(f"--{name}: {path} does not exist")
    try:
        args.func(args)
    except BrokenPipeError:  # e.g. piped into head
        sys.exit(0)


if __name__ == "__main__":
    main()
