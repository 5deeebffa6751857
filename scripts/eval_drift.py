"""Drift evaluation: is a changed stream flagged, and soon; is a steady one left alone?

Per seed, in a fresh in-process moto account driven through the real use cases
(`evalworld.moto_deps`, embeddings from the benchmark cache): a function trained on
`--per-label` BANKING77 training texts per label; then streams of distinct texts invoked one by
one through `usecases.invoke.invoke` (capture off: drift is counted whatever is captured), each
invoke's drift count and every flush (100 invokes; its score) as in a container:

- steady: `--steady` (5,000) BANKING77 texts not trained on, in random order;
- domain switch: `--before` (2,000) of them, then CLINC150's test texts (another domain);
- label-mix switch: `--before` of them, then BANKING77 texts of only `--labels` (8) of the 77
  labels (the same domain, the traffic's mix moved).

Figures: for the steady stream, how many of its scorings flagged drift and its largest score;
for each switch, how many invokes after it drift was first flagged (None: not within
`--after`, 1,000). Targets (issue 21): no flag on the steady stream; each switch flagged within
500 invokes.

    python scripts/eval_drift.py [--seeds 3] [--steady 5000] [--before 2000]
"""

from __future__ import annotations

import argparse
import os
import sys

import capture_data
import numpy as np
from tqdm import tqdm

from benchlib import emit_json, featurize_cached, parse_args, print_table
from evalworld import CLIENT, CachedEncoder, moto_deps
from fastmoto import speed_up_moto
from labelloop.encoder import Encoder, Features

TARGET_WITHIN = 500


def function(d, data, rows: np.ndarray) -> str:
    """A trained function of those training rows of BANKING77."""
    from labelloop.ids import bare
    from labelloop.usecases import functions, labels, samples, training_run
    from labelloop.usecases.common import TrainingMessage

    fid = functions.create_function(d, CLIENT, "drift", "Text", "Classification",
                                    store_invokes=False).id
    for c in sorted(set(data.ytrain)):
        labels.create_label(d, CLIENT, fid, c)
    samples.create_samples(d, CLIENT, fid, [
        samples.NewSample(data.train[i], annotation=samples.LabelRef(label_name=data.ytrain[i]))
        for i in rows], train=False)
    training_run.run(d, TrainingMessage(functionId=bare(fid, "function"), reason="eval"))
    return fid


def run_stream(d, fid: str, texts: list[str], bar) -> list[tuple[int, float | None, bool]]:
    """Invoke each text; per flush: (invokes so far, score, flagged)."""
    from labelloop.ids import bare
    from labelloop.usecases import invoke

    out, last = [], None
    for k, text in enumerate(texts):
        invoke.invoke(d, CLIENT, fid, text, capture=False)
        status = d.drift_tracker.status(bare(fid, "function"))
        if status is not last and status is not None:
            out.append((k + 1, status.score, status.flagged))
            last = status
        bar.update(1)
    return out


def first_flag(flushes: list[tuple[int, float | None, bool]], after: int) -> int | None:
    return next((n - after for n, _, flagged in flushes if flagged and n > after), None)


def one_seed(enc, data, clinc: list[str], seed: int, args, bar) -> dict:
    rng = np.random.default_rng(seed)
    ytr = np.asarray(data.ytrain)
    trained = np.concatenate([rng.choice(np.flatnonzero(ytr == c), args.per_label, replace=False)
                              for c in sorted(set(data.ytrain))])
    rest = [data.train[i] for i in np.setdiff1d(np.arange(len(ytr)), trained)] + data.test
    rest_y = [data.ytrain[i] for i in np.setdiff1d(np.arange(len(ytr)), trained)] + data.ytest
    order = rng.permutation(len(rest))
    steady = [rest[i] for i in order[:args.steady]]
    before = [rest[i] for i in order[:args.before]]
    left = order[args.before:]
    few = set(rng.choice(sorted(set(data.ytrain)), args.labels, replace=False).tolist())
    mix = [rest[i] for i in left if rest_y[i] in few][:args.after]
    domain = [clinc[i] for i in rng.permutation(len(clinc))[:args.after]]
    out = {}
    for name, texts, switch in (("steady", steady, None),
                                ("domain", before + domain, len(before)),
                                ("label_mix", before + mix, len(before))):
        with moto_deps(enc, seed) as d:
            fid = function(d, data, trained)
            flushes = run_stream(d, fid, texts, bar)
        scores = [s for _, s, _ in flushes if s is not None]
        if switch is None:
            out[name] = {"flags": sum(f for _, _, f in flushes), "scorings": len(scores),
                         "max_score": round(max(scores), 4) if scores else None}
        else:
            at = first_flag(flushes, switch)
            out[name] = {"flagged_after": at, "switched": len(texts) - switch,
                         "score_before": round(max([s for n, s, _ in flushes
                                                    if s is not None and n <= switch]
                                                   or [0.0]), 4),
                         "score_after": round(scores[-1], 4) if scores else None}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--per-label", type=int, default=10, help="training texts per label")
    p.add_argument("--steady", type=int, default=5000)
    p.add_argument("--before", type=int, default=2000, help="steady invokes before a switch")
    p.add_argument("--after", type=int, default=1000, help="invokes after a switch")
    p.add_argument("--labels", type=int, default=8, help="labels left by the label-mix switch")
    args = parse_args(p, smoke={"seeds": 1, "per_label": 3, "steady": 60, "before": 40,
                                "after": 20, "labels": 3})
    if args.smoke:  # a flush every 10 invokes, a reference of 20, a window of 10
        os.environ.update(LABELLOOP_DRIFT_FLUSH_INVOKES="10",
                          LABELLOOP_DRIFT_REFERENCE_INVOKES="20",
                          LABELLOOP_DRIFT_WINDOW_INVOKES="10")

    speed_up_moto()
    enc = Encoder(threads=1)
    data = capture_data.load("banking77")
    other = capture_data.load("clinc150")
    texts = data.train + data.test + other.test
    features = featurize_cached(enc, data.train, "banking77-train")
    features = Features(np.concatenate([features.embeddings,
                                        featurize_cached(enc, data.test,
                                                         "banking77-test").embeddings,
                                        featurize_cached(enc, other.test,
                                                         "clinc150-test").embeddings]),
                        enc.wordpieces(texts))
    encoder = CachedEncoder(enc, texts, features)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    total = args.steady + 2 * (args.before + args.after)
    bar = tqdm(total=len(seeds) * total, unit="invoke", file=sys.stderr, desc="eval_drift")
    runs = {seed: one_seed(encoder, data, other.test, seed, args, bar) for seed in seeds}
    bar.close()

    rows = [[seed, r["steady"]["flags"], r["steady"]["scorings"], r["steady"]["max_score"],
             r["domain"]["flagged_after"], r["domain"]["score_after"],
             r["label_mix"]["flagged_after"], r["label_mix"]["score_before"],
             r["label_mix"]["score_after"]] for seed, r in runs.items()]
    print_table(["seed", "steady flags", "scorings", "steady max", "domain: flagged after",
                 "score", "label mix: flagged after", "score before", "score"], rows)
    steady_flags = sum(r["steady"]["flags"] for r in runs.values())
    worst = {k: max((r[k]["flagged_after"] if r[k]["flagged_after"] is not None
                     else float("inf")) for r in runs.values()) for k in ("domain", "label_mix")}
    targets = {"steady_not_flagged": {"target": 0, "measured": steady_flags,
                                      "met": steady_flags == 0}}
    for k, v in worst.items():
        targets[f"{k}_flagged_within"] = {"target": TARGET_WITHIN,
                                          "measured": None if v == float("inf") else v,
                                          "met": v <= TARGET_WITHIN}
    print("\nflagged after: invokes after the switch until the first flush that flagged drift "
          "(a flush is every 100 invokes); steady max: the largest score of the steady stream")
    emit_json("eval_drift", {"config": vars(args), "runs": runs,
                             "targets": targets})


if __name__ == "__main__":
    main()
