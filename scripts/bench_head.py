"""Head benchmark: training time (with cross-validation) and one-vector predict time.

Data: CLINC150's in-scope training set (150 labels), embedded once and cached, subsampled to
1k, 10k and 15k samples. Baselines, measured in the same run: one scikit-learn
LogisticRegression fit at a fixed C (no CV, no calibration, no lexical model) for training,
and that model's `predict_proba` on one vector for serving.

    python scripts/bench_head.py [--sizes 1000 10000 15000] [--encoder fast|accurate]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from benchlib import emit_json, featurize_cached, load_dataset, parse_args, print_table, timings
from labelloop.encoder import DEFAULT_ENCODER, ENCODERS, Encoder
from labelloop.ml.build import LabelSpec, build_model


def main() -> None:
    from sklearn.linear_model import LogisticRegression

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 15000])
    p.add_argument("--encoder", choices=ENCODERS, default=DEFAULT_ENCODER)
    args = parse_args(p, smoke={"sizes": [100]})
    enc = Encoder(threads=2, encoder=args.encoder)
    texts, labels, _, _ = load_dataset("clinc150")
    features = featurize_cached(enc, texts, "clinc150-train")
    y = np.asarray(labels)
    specs = [LabelSpec(c) for c in np.unique(y)]
    rng = np.random.default_rng(0)
    rows, figures = [], {}
    for n in args.sizes:
        idx = rng.permutation(len(y))[:n]
        print(f"training on {n} samples …", file=sys.stderr, flush=True)
        start = time.perf_counter()
        model = build_model(enc, specs, features.take(idx), y[idx])
        ours = time.perf_counter() - start
        start = time.perf_counter()
        LogisticRegression(C=10, max_iter=1000).fit(features.embeddings[idx], y[idx])
        base = time.perf_counter() - start
        figures[f"train_{n}"] = {"ours_s": round(ours, 3), "baseline_s": round(base, 3),
                                 "ratio": round(ours / base, 2), "folds": model.n_folds,
                                 "cv_accuracy": round(model.cv_accuracy, 4)}
        rows.append([f"train n={n}", ours, base, ours / base, f"{model.n_folds} folds, "
                     f"C={model.C:g}, lexical={model.head.lexical_weight:g}"])
    head = model.head
    x, t = features.embeddings[:1], features.tokens[:1]
    sk = LogisticRegression(C=10, max_iter=1000).fit(features.embeddings[:2000], y[:2000])
    ours_p = np.median(timings(lambda: head.predict_proba(x, t), 2000)) * 1e6
    base_p = np.median(timings(lambda: sk.predict_proba(x), 2000)) * 1e6
    rows.append(["predict 1 vector (µs)", ours_p, base_p, ours_p / base_p,
                 f"lexical={'yes' if head.uses_tokens else 'no'}, {len(head.classes)} labels"])
    figures["predict_one_us"] = {"ours": round(ours_p, 1), "baseline_sklearn": round(base_p, 1),
                                 "ratio": round(ours_p / base_p, 3)}
    print_table(["what", "ours (s or µs)", "baseline", "ratio", "notes"], rows)
    print(f"encoder: {args.encoder} ({enc.dim}-d); baseline: sklearn LogisticRegression(C=10) "
          "fit / predict_proba, same data, same run")
    emit_json("head", {"encoder": args.encoder, "dim": enc.dim, **figures})


if __name__ == "__main__":
    main()
