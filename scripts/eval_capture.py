"""Capture-policy evaluation: a labelled dataset replayed as invokes through the real capture.

For each dataset, policy and seed, a fresh function in an in-process moto account (mock_aws),
driven through the real use cases: one label per class, 2 annotated samples per label (drawn
with the seed from the train split), a training run; then `--rounds` rounds of: invoke the
next `--chunk` texts of the stream (the rest of the train split, shuffled with the seed)
with capture on (`usecases.invoke.invoke`: outside a request the capture runs inline), let a
simulated annotator take `--per-round` items and annotate each with its true label
(`usecases.samples.annotate`): the review queue's first (`usecases.review.review_queue`, the
strategies interleaved by quota), or, as the reviewer `newest`, the newest captures first as a
plain listing gives them (shown as POLICY@newest; not run for the reference policies), run
the training worker once (`usecases.training_run.run`, what the SQS worker does: train, then
promote or not by the product's rule) and evaluate the live model on the test split (accuracy,
macro-F1).

Datasets (`capture_data`): BANKING77 and CLINC150 (about balanced), and the skewed
`clinc150_imbalanced`, `banking77_zipf`, `sms_spam` and `bbc_news`; a set too small for
`--rounds` chunks of `--chunk` invokes streams shorter chunks. Where the test split does not
follow the traffic, accuracy is each label's recall weighted by its traffic share. Per policy:
accuracy and macro-F1 at 150 and 500 labels (a policy that captured fewer over the whole stream
at its end), and labels per bucket of labels by traffic (head: the labels carrying the first
half of it, torso the next 30 %, tail the rest). Embeddings come from the benchmark cache
(`benchlib.featurize_cached`): the injected encoder serves stored `Features` by text and falls
back to the real encoder (label names). moto's DynamoDB is made fast enough by `speed_up_moto`
(same answers, far fewer O(table) steps per
request; EVAL_CAPTURE_VERIFY_MOTO=1 checks every shortcut against moto's own code).

Policies: `random` (random only, rate 1), `margin` (uncertainty only, threshold 0), `mix`
(60/20/20: uncertainty 300 threshold 0, random 100 rate 0.2, rare_class 100), `default`
(`CapturePolicy()` with no overrides), `no_near` (the default without near_threshold) and
`pair` (the default plus confused_pair, quota 50), `before` (the default as it was before issue
21: no spread rules, rare_class by annotated samples only, random rate 0.02, uncertainty
threshold 0.5), `rules_only` (issue 21's rules at those rates) and `no_spread` (those rules
but the spread rules, at those rates); more with
`--policy name=JSON` (the strategies dict given to `usecases.capture_policy.set_policy`, unset
quotas are NOT zeroed: give them; the keys `near_duplicate_cosine`, `spread_cosine` and
`label_cap` set the policy's own settings). `--thresholds JSON` sets that decision policy on
every function: near_threshold then has thresholds to capture under, and each round also
reports the precision and coverage of the live version's accept decisions on the test split.

Summary per policy: final accuracy vs the issue's anchor; labels-to-target (labels the policy
needed to first reach random-only's final accuracy, interpolated between rounds, over
random-only's total; ">1" if never); coverage (classes given >= 1 new label); labels given to
the rarest classes (the 10 % of classes with the fewest invokes in the replayed stream) and
how many of those got one. Targets: (1) labels-to-target <= 0.5; (2) final accuracy within
0.5 point of margin-only; (3) coverage and labels to the rarest classes both >= the mix's.
The effective number of classes (exp of the entropy of the new labels' classes) is shown too,
and for each candidate the promotion rule held back, its test accuracy minus the live model's
(what holding it back cost or saved). "Best candidate": of the policies other than the three
references, the one meeting the most targets over the datasets (then: mean final accuracy).

    python scripts/eval_capture.py [--datasets banking77 clinc150] [--policies default random
        margin mix] [--policy 'p80={"uncertainty": {"quota": 400}, ...}'] [--seeds 1]
        [--rounds 10] [--chunk 500] [--per-round 50] [--start 2] [--first-seed 0]
        [--reuse earlier.out]
    python scripts/eval_capture.py --merge seed0.out seed1.out   # average runs of other seeds
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import capture_data
import numpy as np
from tqdm import tqdm

from benchlib import emit_json, featurize_cached, parse_args, print_table
from evalworld import CLIENT, CachedEncoder, evaluate, moto_deps
from fastmoto import speed_up_moto
from labelloop.encoder import Encoder, Features

OFF = {"quota": 0}


def only(**settings: dict) -> dict:
    """These strategies' settings, every other registered strategy off."""
    from labelloop.capture.strategies import STRATEGIES

    return {name: settings.get(name, OFF) for name in STRATEGIES}


# The random rate and uncertainty threshold of the defaults before issue 21's last change.
OLD_RATES = {"random": {"rate": 0.02}, "uncertainty": {"threshold": 0.5}}
POLICIES: dict[str, dict | None] = {
    "default": None,  # CapturePolicy() as shipped: no overrides
    "random": only(random={"quota": 500, "rate": 1.0}),
    "margin": only(uncertainty={"quota": 500, "threshold": 0.0}),
    "mix": only(random={"quota": 100, "rate": 0.2}, uncertainty={"quota": 300, "threshold": 0.0},
                rare_class={"quota": 100}),
    # The strategies that know the decision policy (run with --thresholds to give them one).
    "no_near": {"near_threshold": OFF},
    "pair": {"confused_pair": {"quota": 50}},
    # Issue 21's parts, all at the rates of before it: the default before it (no spread rules,
    # rare_class by annotated samples only), its rules (its first default), and its rules
    # without the spread rules.
    "before": {**OLD_RATES, "spread_cosine": 1.0, "label_cap": 1.0,
               "rare_class": {"seldom": 0.0}},
    "rules_only": OLD_RATES,
    "no_spread": {**OLD_RATES, "spread_cosine": 1.0, "label_cap": 1.0},
}
# The measurements on the same encoder: accuracy after 500 labels.
ANCHOR = {"banking77": {"random": 0.809, "margin": 0.854, "mix": 0.840},
          "clinc150": {"random": 0.838, "margin": 0.885, "mix": 0.871}}
REFERENCES = ("random", "margin", "mix")
# Issue 21: accuracy after this many labels.
BUDGETS = (150, 500)
# The default policy's accuracy before issue 21's changes (main at ffc1555, the queue's
# reviewer; 3 seeds, 10 rounds of 50 labels from 500 invokes, 2 samples per label to start).
TODAY: dict[str, dict[str, float]] = {"banking77": {"150": 0.7873, "500": 0.8650},
                                      "clinc150": {"150": 0.8707, "500": 0.9099}}
@dataclass
class Run:
    """One (dataset, policy, seed) replay."""

    seed: int
    labels: list[int] = field(default_factory=list)  # new labels used, cumulative, per round
    accuracy: list[float] = field(default_factory=list)
    macro_f1: list[float] = field(default_factory=list)
    annotated: list[tuple[str, str]] = field(default_factory=list)  # (strategy, true label)
    promoted: int = 0
    not_promoted: int = 0
    rejected_gain: list[float] = field(default_factory=list)  # candidate - live, test accuracy
    captured: dict[str, int] = field(default_factory=dict)  # per strategy, over all invokes
    seconds: float = 0.0
    # With --thresholds, per round: the accept decisions' precision and coverage on test.
    accept_precision: list[float | None] = field(default_factory=list)
    accept_coverage: list[float] = field(default_factory=list)


def accepted(d, fid: str, test: Features, yte: np.ndarray) -> tuple[float | None, float]:
    """The live version's accept decisions on the test split under the function's decision
    policy: their precision (None if none) and coverage."""
    view = d.serving.view(fid)
    head = view.model.head
    proba = head.predict_proba(test.embeddings, test.tokens if head.uses_tokens else None)
    classes = np.array(head.classes)
    best = proba.argmax(axis=1)
    take = np.array([view.decisions.decide(classes[i], float(row[i]))[0] == "accept"
                     for i, row in zip(best, proba, strict=True)])
    right = np.array([view.labels[c].name for c in classes[best]]) == yte
    return (float(right[take].mean()) if take.any() else None), float(take.mean())


def newest_captures(d, fid: str, n: int) -> list:
    """The reviewer who annotates the newest captures first, as a plain listing of the
    function's captured samples gives them (sample ids order by time)."""
    from labelloop.capture.strategies import STRATEGIES

    items = [i for s in STRATEGIES for i in d.ledger.items(fid, s)]
    return sorted(items, key=lambda i: i.id, reverse=True)[:n]


def replay(encoder, ds: dict, policy: dict | None, seed: int, args, bar,
           reviewer: str = "queue") -> Run:
    from labelloop.ids import bare
    from labelloop.thresholds import ThresholdPolicy
    from labelloop.usecases import (
        capture_policy,
        functions,
        invoke,
        labels,
        review,
        samples,
        thresholds,
        training_run,
    )
    from labelloop.usecases.common import TrainingMessage

    run, started = Run(seed), time.perf_counter()
    with moto_deps(encoder, seed) as d:
        fid = functions.create_function(d, CLIENT, f"eval-{seed}", "Text", "Classification").id
        for c in ds["classes"]:
            labels.create_label(d, CLIENT, fid, c)
        if policy is not None:
            scalars = {k: v for k, v in policy.items() if k in capture_policy.SCALARS}
            capture_policy.set_policy(d, CLIENT, fid, {k: v for k, v in policy.items()
                                                       if k not in scalars}, **scalars)
        if args.thresholds is not None:
            thresholds.set_policy(d, CLIENT, fid, ThresholdPolicy.model_validate(args.thresholds))
        for i in ds["start"][seed]:
            samples.create_sample(d, CLIENT, fid, ds["train"][i],
                                  annotation=samples.LabelRef(label_name=ds["ytrain"][i]))

        def retrain_and_evaluate(reason: str) -> None:
            result = training_run.run(d, TrainingMessage(functionId=bare(fid, "function"),
                                                         reason=reason))
            acc, f1 = evaluate(d, fid, ds["test"], ds["ytest"], ds["shares"])
            if result.decision is not None:
                if result.decision.promote:
                    run.promoted += 1
                else:  # what keeping the live model cost (or saved), on the test split
                    run.not_promoted += 1
                    run.rejected_gain.append(
                        evaluate(d, fid, ds["test"], ds["ytest"], ds["shares"],
                                 result.version)[0] - acc)
            run.labels.append(len(run.annotated))
            run.accuracy.append(acc)
            run.macro_f1.append(f1)
            if args.thresholds is not None:
                precision, coverage = accepted(d, fid, ds["test"], ds["ytest"])
                run.accept_precision.append(precision)
                run.accept_coverage.append(coverage)

        retrain_and_evaluate("start")
        stream = ds["stream"][seed]
        chunk = ds["chunk"]
        for r in range(args.rounds):
            for i in stream[r * chunk:(r + 1) * chunk]:
                invoke.invoke(d, CLIENT, fid, ds["train"][i], capture=True)
            items = (review.review_queue(d, CLIENT, fid, None, args.per_round)
                     if reviewer == "queue" else newest_captures(d, fid, args.per_round))
            for item in items:
                truth = ds["truth"][item.data]
                samples.annotate(d, CLIENT, fid, item.id, samples.LabelRef(label_name=truth))
                run.annotated.append((item.buffer, truth))
            retrain_and_evaluate(f"round {r + 1}")
            bar.update(1)
        for s in d.samples.facts(fid):
            if reason := s.capture_reason:
                run.captured[reason] = run.captured.get(reason, 0) + 1
    run.seconds = time.perf_counter() - started
    return run


def labels_to_target(labels: list[float], acc: list[float], target: float) -> float | None:
    """Labels at which the curve first reaches `target` (linear between rounds)."""
    for k, a in enumerate(acc):
        if a >= target:
            if k == 0:
                return 0.0
            a0, l0, l1 = acc[k - 1], labels[k - 1], labels[k]
            return l0 + (target - a0) / (a - a0) * (l1 - l0)
    return None


def load(name: str, seeds: range, args, encoder: Encoder) -> tuple[dict, Features]:
    data = capture_data.load(name)
    tr, ytr, te, yte = data.train, data.ytrain, data.test, data.ytest
    ftr = featurize_cached(encoder, tr, f"{name}-train")
    fte = featurize_cached(encoder, te, f"{name}-test")
    ytr_a = np.asarray(ytr)
    classes = sorted(set(ytr))
    ds = {"classes": classes, "train": tr, "ytrain": ytr, "test": fte, "ytest": np.asarray(yte),
          "truth": dict(zip(tr, ytr, strict=True)), "start": {}, "stream": {}, "rare": {},
          "shares": data.shares, "buckets": buckets(ytr)}
    # A small set streams what it has: the same rounds, shorter chunks.
    ds["chunk"] = min(args.chunk, (len(tr) - args.start * len(classes)) // args.rounds)
    need = args.rounds * ds["chunk"]
    for seed in seeds:
        rng = np.random.default_rng(seed)
        start, seen = [], set()
        for c in classes:  # distinct texts: a repeated one would be one sample
            pool = [i for i in rng.permutation(np.flatnonzero(ytr_a == c)) if tr[i] not in seen]
            start += pool[:args.start]
            seen.update(tr[i] for i in pool[:args.start])
        rest = np.setdiff1d(np.arange(len(tr)), start)
        stream = rng.permutation(rest)
        if len(stream) < need:
            raise SystemExit(f"{name}: {len(stream)} stream texts, {need} needed")
        ds["start"][seed], ds["stream"][seed] = start, stream
        # The rarest classes of the replayed stream: the 10 % with the fewest invokes.
        counts = {c: 0 for c in classes}
        for i in stream[:need]:
            counts[ytr[i]] += 1
        k = max(1, math.ceil(0.1 * len(classes)))
        ds["rare"][seed] = set(sorted(classes, key=lambda c: (counts[c], c))[:k])
    return ds, ftr


def buckets(labels: list[str]) -> dict[str, str]:
    """Each label's bucket by its traffic: the most frequent labels that carry the first half
    of it are the head, the next 30 % the torso, the rest the tail."""
    counts = sorted(Counter(labels).items(), key=lambda kv: (-kv[1], kv[0]))
    out, carried = {}, 0
    for c, n in counts:
        out[c] = "head" if carried < 0.5 * len(labels) else (
            "torso" if carried < 0.8 * len(labels) else "tail")
        carried += n
    return out


def at_budgets(labels: list[float], values: list[float]) -> dict[str, float]:
    """A curve's value at each budget of labels (linear between rounds). A policy that
    captured fewer than the budget over the whole stream is taken at its end: the reviewer
    had nothing more to annotate (`labels` says how many it spent)."""
    return {str(b): round(float(np.interp(min(b, labels[-1]), labels, values)), 4)
            for b in BUDGETS}


def summarize(ds_name: str, ds: dict, runs: dict[str, list[Run]], seeds: int) -> dict:
    """Seed-averaged curves and per-policy figures for one dataset."""
    out: dict[str, dict] = {}
    for name, rs in runs.items():
        labels = np.mean([r.labels for r in rs], axis=0).tolist()
        acc = np.mean([r.accuracy for r in rs], axis=0).tolist()
        f1 = np.mean([r.macro_f1 for r in rs], axis=0).tolist()
        per_seed = []
        for r in rs:
            given: dict[str, int] = {}
            for _, y in r.annotated:
                given[y] = given.get(y, 0) + 1
            rare = ds["rare"][r.seed]
            p = np.array(list(given.values()), dtype=float) / max(len(r.annotated), 1)
            per_seed.append((len(given), sum(given.get(c, 0) for c in rare),
                             sum(1 for c in rare if given.get(c)),
                             float(np.exp(-(p * np.log(p)).sum())) if len(p) else 0.0))
        coverage, rare_labels, rare_covered, effective = np.mean(per_seed, axis=0).tolist()
        by_strategy: dict[str, int] = {}
        for r in rs:
            for s, _ in r.annotated:
                by_strategy[s] = by_strategy.get(s, 0) + 1
        per_bucket = {b: 0.0 for b in ("head", "torso", "tail")}
        for r in rs:
            for _, y in r.annotated:
                per_bucket[ds["buckets"][y]] += 1 / len(rs)
        out[name] = {
            "accuracy_at": at_budgets(labels, acc), "macro_f1_at": at_budgets(labels, f1),
            "labels_per_bucket": {b: round(v, 1) for b, v in per_bucket.items()},
            "classes_per_bucket": dict(Counter(ds["buckets"].values())),
            "labels": [round(x, 1) for x in labels], "accuracy": [round(x, 4) for x in acc],
            "macro_f1": [round(x, 4) for x in f1], "final_accuracy": round(acc[-1], 4),
            "final_macro_f1": round(f1[-1], 4), "anchor": ANCHOR.get(ds_name, {}).get(name),
            "final_accuracy_per_seed": {r.seed: round(r.accuracy[-1], 4) for r in rs},
            "coverage": round(coverage, 1), "classes": len(ds["classes"]),
            "rare_classes": len(ds["rare"][rs[0].seed]), "rare_labels": round(rare_labels, 1),
            "rare_classes_covered": round(rare_covered, 1),
            "effective_classes": round(effective, 1),
            "labels_by_strategy": {s: n / seeds for s, n in by_strategy.items()},
            "captured_by_strategy": {s: sum(r.captured.get(s, 0) for r in rs) / seeds
                                     for s in sorted({s for r in rs for s in r.captured})},
            "promoted": sum(r.promoted for r in rs), "not_promoted":
                sum(r.not_promoted for r in rs),
            "rejected_candidates_gain_pts": [round(100 * g, 2) for r in rs
                                             for g in r.rejected_gain],
            "wall_seconds": round(sum(r.seconds for r in rs), 1)}
        if rs[0].accept_coverage:
            final = [r.accept_precision[-1] for r in rs if r.accept_precision[-1] is not None]
            out[name] |= {
                "accept_coverage": [round(float(x), 4) for x in np.mean(
                    [r.accept_coverage for r in rs], axis=0)],
                "final_accept_precision": round(float(np.mean(final)), 4) if final else None,
                "final_accept_coverage": round(float(np.mean(
                    [r.accept_coverage[-1] for r in rs])), 4)}
    return out


def compare(out: dict[str, dict], ds_name: str) -> None:
    """Labels-to-target and the targets, against the reference policies present: the
    original three (half_labels, near_margin, spread), then issue 21's per budget: at least
    random-only's accuracy (`random_<budget>`) and, for the default policy on a balanced
    set, within 0.5 point of its accuracy before the skew work (`kept_<budget>`, `TODAY`)."""
    base = out.get("random")
    for name, f in out.items():
        if base is not None:
            at = labels_to_target(f["labels"], f["accuracy"], base["final_accuracy"])
            f["labels_to_target"] = None if at is None else round(at / base["labels"][-1], 3)
        targets = {}
        if f.get("labels_to_target") is not None or base is not None:
            targets["half_labels"] = (f.get("labels_to_target") is not None
                                      and f["labels_to_target"] <= 0.5)
        if "margin" in out:
            targets["near_margin"] = f["final_accuracy"] >= out["margin"]["final_accuracy"] - 0.005
        if "mix" in out:
            targets["spread"] = (f["coverage"] >= out["mix"]["coverage"]
                                 and f["rare_labels"] >= out["mix"]["rare_labels"])
        for b in map(str, BUDGETS):
            mine = f.get("accuracy_at", {}).get(b)
            if base is not None and name not in REFERENCES and mine is not None:
                targets[f"random_{b}"] = mine >= base["accuracy_at"][b]
            today = TODAY.get(ds_name, {}).get(b)
            if name.split("@")[0] == "default" and today is not None and mine is not None:
                targets[f"kept_{b}"] = mine >= today - 0.005
        f["targets"] = targets


def parse_policy(arg: str) -> tuple[str, dict]:
    name, _, text = arg.partition("=")
    if not name or not text:
        raise argparse.ArgumentTypeError("--policy name=JSON")
    return name, json.loads(text)


def print_dataset(title: str, summary: dict[str, dict], ran: list[str]) -> None:
    """The per-round table and the summary table of one dataset."""
    def order(n: str) -> tuple:
        base = n.split("@")[0]
        return (base not in POLICIES, n not in ran,
                list(POLICIES).index(base) if base in POLICIES else 0, n)

    shown = sorted(summary, key=order)
    print(f"\n== {title}")
    first = summary[shown[0]]
    rows = []
    for k in range(len(first["labels"])):
        row: list[object] = [k, f"{first['labels'][k]:g}"]
        for n in shown:
            row += [summary[n]["accuracy"][k], summary[n]["macro_f1"][k]]
        rows.append(row)
    print_table(["round", "labels", *[f"{n} {m}" for n in shown for m in ("acc", "F1")]], rows)
    print()
    rows = []
    for n in shown:
        f = summary[n]
        ltt = f.get("labels_to_target")
        rows.append([n, f["final_accuracy"], f["final_macro_f1"],
                     "-" if f["anchor"] is None else f["anchor"],
                     "-" if f["anchor"] is None else
                     f"{100 * (f['final_accuracy'] - f['anchor']):+.1f}",
                     "-" if "labels_to_target" not in f else ">1" if ltt is None
                     else f"{ltt:.2f}", f"{f['coverage']:g}", f"{f['effective_classes']:g}",
                     f"{f['rare_labels']:g} / {f['rare_classes_covered']:g} of "
                     f"{f['rare_classes']}",
                     " ".join(f"{s}:{v:g}" for s, v in f["labels_by_strategy"].items()),
                     f"{f['promoted']}/{f['promoted'] + f['not_promoted']}" + "".join(
                         f" {g:+.1f}" for g in f.get("rejected_candidates_gain_pts", [])),
                     " ".join(f"{k}:{'Y' if v else 'n'}" for k, v in f["targets"].items()),
                     "-" if "final_accept_coverage" not in f else
                     f"{f['final_accept_precision'] or 0:.3f} / "
                     f"{f['final_accept_coverage']:.3f}",
                     f"{f['wall_seconds']:.0f}" + ("" if n in ran else " (reused)")])
    print_table(["policy", "final acc", "final F1", "anchor", "Δ pts", "labels→target",
                 "coverage", "eff. classes", "rare labels / covered", "labels by strategy",
                 "promoted", "targets", "accept P / cov", "wall s"], rows)
    print("labels→target: labels to first reach random-only's final accuracy / its total; "
          "promoted: training runs promoted / all, then per rejected candidate its test "
          "accuracy minus the live model's (pts); targets: Y met, n not (see `compare`)")
    print()
    buckets = first["classes_per_bucket"]
    print_table(["policy", *[f"{m} @{b}" for b in BUDGETS for m in ("acc", "F1")],
                 *[f"labels {b} ({buckets.get(b, 0)} cl.)" for b in ("head", "torso", "tail")]],
                [[n, *[summary[n][f"{m}_at"][str(b)] for b in BUDGETS
                       for m in ("accuracy", "macro_f1")],
                  *summary[n]["labels_per_bucket"].values()] for n in shown])


def best_candidate(all_summaries: dict[str, dict], figures: dict) -> None:
    """Which candidate (any policy but the three references) meets the most targets over the
    datasets; ties go to the higher mean final accuracy."""
    scores = {}
    for n in {n for s in all_summaries.values() for n in s}:
        if n in REFERENCES or any(n not in s for s in all_summaries.values()):
            continue
        met = sum(v for s in all_summaries.values() for v in s[n]["targets"].values())
        acc = float(np.mean([s[n]["final_accuracy"] for s in all_summaries.values()]))
        scores[n] = (met, acc)
    if scores:
        best = max(scores, key=lambda n: scores[n])
        figures["best_candidate"] = {"name": best, "targets_met": scores[best][0],
                                     "mean_final_accuracy": round(scores[best][1], 4)}
        print(f"\nbest candidate: {best} (targets met {scores[best][0]} of "
              f"{sum(len(s[best]['targets']) for s in all_summaries.values())}, mean final "
              f"accuracy {scores[best][1]:.4f})")


def last_json(path: str) -> dict:
    with open(path) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def merge(paths: list[str]) -> None:
    """Average the figures of earlier runs that differ only in their seeds."""
    runs = [last_json(path) for path in paths]
    keys = ("rounds", "chunk", "per_round", "start")
    if any({k: r["config"][k] for k in keys} != {k: runs[0]["config"][k] for k in keys}
           for r in runs):
        raise SystemExit("--merge: the runs differ in more than their seeds")
    seeds = [s for r in runs for s in range(r["config"].get("first_seed", 0), r["config"].get(
        "first_seed", 0) + r["config"]["seeds"])]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"--merge: a seed appears twice ({seeds})")
    figures: dict = {"config": {**{k: runs[0]["config"][k] for k in keys}, "seeds": len(seeds),
                                "seed_list": seeds, "policies": {}}, "merged_from": paths}
    all_summaries = {}
    for ds in [k for k in runs[0] if k in capture_data.BALANCED + capture_data.SKEWED]:
        names = [n for n in runs[0][ds] if all(n in r.get(ds, {}) for r in runs)]
        summary = {}
        for n in names:
            parts = [r[ds][n] for r in runs]
            w = np.array([r["config"]["seeds"] for r in runs], dtype=float)

            def mean(key, parts=parts, w=w):
                return np.average(np.array([p[key] for p in parts], dtype=float), axis=0,
                                  weights=w)

            acc, f1 = mean("accuracy"), mean("macro_f1")
            strategies = {s for p in parts for s in p["labels_by_strategy"]}
            labels = [round(float(x), 1) for x in mean("labels")]
            summary[n] = {
                "accuracy_at": at_budgets(labels, acc), "macro_f1_at": at_budgets(labels, f1),
                "labels_per_bucket": {b: round(float(np.average(
                    [p["labels_per_bucket"][b] for p in parts], weights=w)), 1)
                    for b in parts[0]["labels_per_bucket"]},
                "classes_per_bucket": parts[0]["classes_per_bucket"],
                "labels": labels,
                "accuracy": [round(float(x), 4) for x in acc],
                "macro_f1": [round(float(x), 4) for x in f1],
                "final_accuracy": round(float(acc[-1]), 4),
                "final_macro_f1": round(float(f1[-1]), 4), "anchor": parts[0]["anchor"],
                "final_accuracy_per_seed": {k: v for p in parts for k, v in p.get(
                    "final_accuracy_per_seed", {}).items()},
                **{k: round(float(mean(k)), 1) for k in (
                    "coverage", "rare_labels", "rare_classes_covered", "effective_classes")},
                "classes": parts[0]["classes"], "rare_classes": parts[0]["rare_classes"],
                "labels_by_strategy": {s: round(float(np.average(
                    [p["labels_by_strategy"].get(s, 0) for p in parts], weights=w)), 1)
                    for s in sorted(strategies)},
                "promoted": sum(p["promoted"] for p in parts),
                "not_promoted": sum(p["not_promoted"] for p in parts),
                "rejected_candidates_gain_pts": [g for p in parts for g in p.get(
                    "rejected_candidates_gain_pts", [])],
                "wall_seconds": round(sum(p["wall_seconds"] for p in parts), 1)}
            figures["config"]["policies"][n] = runs[0]["config"]["policies"].get(n)
        compare(summary, ds)
        all_summaries[ds] = figures[ds] = summary
        print_dataset(f"{ds}: merged seeds {', '.join(map(str, seeds))}", summary, names)
    best_candidate(all_summaries, figures)
    emit_json("capture", figures)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+",
                   default=[*capture_data.BALANCED, *capture_data.SKEWED])
    p.add_argument("--reviewers", nargs="+", default=["queue", "newest"],
                   choices=["queue", "newest"],
                   help="who annotates: the review queue's order, or the newest captures "
                        "first (run for every policy but the references; shown as NAME@newest)")
    p.add_argument("--policies", nargs="+", default=None,
                   help="names to run (default: the four built-in ones and every --policy)")
    p.add_argument("--policy", action="append", type=parse_policy, default=[],
                   metavar="NAME=JSON", help="an extra policy: a strategies dict")
    p.add_argument("--seeds", type=int, default=1, help="how many seeds (averaged)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--chunk", type=int, default=500)
    p.add_argument("--per-round", type=int, default=50)
    p.add_argument("--start", type=int, default=2, help="annotated samples per label at start")
    p.add_argument("--thresholds", type=json.loads, metavar="JSON",
                   help='a decision policy set on every function, e.g. \'{"accept": '
                        '{"targetPrecision": 0.9}}\': near_threshold captures under it, and '
                        "the accept decisions' precision and coverage on test are reported")
    p.add_argument("--reuse", metavar="FILE",
                   help="an earlier run's output (its last line): its policies' figures are "
                        "shown and compared with, without running them again")
    p.add_argument("--merge", nargs="+", metavar="FILE",
                   help="run nothing: average earlier runs' outputs that differ only in seeds")
    args = parse_args(p, smoke={"datasets": ["banking77", "banking77_zipf"], "seeds": 1,
                                "rounds": 1, "chunk": 50, "per_round": 10})
    if args.merge:
        merge(args.merge)
        return
    policies = {**POLICIES, **dict(args.policy)}
    names = args.policies or list(policies)
    unknown = [n for n in names if n not in policies]
    if unknown:
        raise SystemExit(f"unknown policies {unknown} (known: {', '.join(policies)})")
    # (shown name, policy, reviewer): the references' queue is their own strategy's order.
    variants = [(n if r == "queue" else f"{n}@{r}", n, r) for n in names for r in args.reviewers
                if r == "queue" or n not in REFERENCES]

    speed_up_moto()
    enc = Encoder(threads=1)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    config = {"seeds": args.seeds, "first_seed": args.first_seed, "rounds": args.rounds,
              "chunk": args.chunk, "per_round": args.per_round, "start": args.start,
              "thresholds": args.thresholds, "reviewers": args.reviewers}
    reused: dict = {}
    if args.reuse:
        earlier = last_json(args.reuse)
        if {k: earlier["config"].get(k, 0 if k == "first_seed" else None)
                for k in config} != config:
            raise SystemExit(f"--reuse: {args.reuse} was run with other settings "
                             f"({earlier['config']})")
        shown = {v[0] for v in variants}
        reused = {ds: {n: v for n, v in earlier[ds].items() if n not in shown}
                  for ds in args.datasets if ds in earlier}
        for pols in reused.values():
            for n in pols:
                policies.setdefault(n.split("@")[0],
                                    earlier["config"]["policies"].get(n.split("@")[0]))
    figures: dict = {"config": {**config, "policies": {
        n: policies[n] for n in [*names, *{n.split("@")[0] for r in reused.values()
                                           for n in r}]}},
        **({"reused_from": args.reuse} if args.reuse else {})}
    bar = tqdm(total=len(args.datasets) * len(variants) * args.seeds * args.rounds, unit="round",
               file=sys.stderr, desc="eval_capture")
    all_summaries = {}
    for ds_name in args.datasets:
        ds, ftr = load(ds_name, seeds, args, enc)
        encoder = CachedEncoder(enc, ds["train"], ftr)
        runs: dict[str, list[Run]] = {}
        for name, policy, reviewer in variants:
            bar.set_postfix_str(f"{ds_name} {name}")
            runs[name] = []
            for seed in seeds:
                runs[name].append(replay(encoder, ds, policies[policy], seed, args, bar,
                                         reviewer))
                tqdm.write(f"{ds_name} {name} seed {seed}: {runs[name][-1].seconds:.0f} s, "
                           f"final accuracy {runs[name][-1].accuracy[-1]:.4f}", file=sys.stderr)
        summary = {**summarize(ds_name, ds, runs, args.seeds), **reused.get(ds_name, {})}
        compare(summary, ds_name)
        all_summaries[ds_name] = figures[ds_name] = summary
        print_dataset(f"{ds_name}: {len(ds['classes'])} classes, start {args.start}/label, "
                      f"{args.rounds} rounds of {args.per_round} labels from {ds['chunk']} "
                      f"invokes, seed(s) {', '.join(map(str, seeds))}; encoder misses "
                      f"{encoder.misses}", summary, [v[0] for v in variants])
    bar.close()
    best_candidate(all_summaries, figures)
    emit_json("capture", figures)


if __name__ == "__main__":
    main()
