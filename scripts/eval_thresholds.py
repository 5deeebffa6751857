"""Thresholds evaluation: does the decision policy deliver the precision the API promises?

For each dataset and size, a fresh function in an in-process moto account (mock_aws), driven
through the real use cases: one label per class (named by the class), the training samples
created with their labels (`usecases.samples.create_sample`; `--sizes 10` draws 10 per class
from the train split with the seed, `full` takes all of it), one training run
(`usecases.training_run.run`, what the SQS worker does). Then, per target precision p:

- the decision policy `{"accept": {"targetPrecision": p}}` is set (`usecases.thresholds.
  set_policy`) and the promise read (`usecases.thresholds.report`, as the API shows it): the
  threshold, and the precision and coverage it is expected to give with their 95 % intervals,
  or why it refuses;
- every held-out test text is invoked (`usecases.invoke.invoke`, capture off) and the
  decisions it returns are scored: realised precision (share of `accept`s that are right) and
  coverage (share of invokes accepted); the live model's test accuracy and top-label ECE (15
  equal bins) come from the same invokes.

Baselines on the same test predictions: the fixed advice "accept at confidence >= 0.90", and
in hindsight the best single threshold picked on the test predictions (grid 0..1 step 0.005)
whose realised precision is at least ours (a bound for any one threshold) or at least the
target. And at equal realised precision: the product's threshold for every target from 0.80
to 0.995 (step 0.005; `solve_overall` on the live version's quality, which is what the invokes
were decided by — checked on every row), scored on the same predictions; of those that realise
the fixed threshold's precision within half a point, the one with the most coverage is
compared with the fixed threshold's coverage (`vs_fixed` lines).

Targets per row: (1) the promise holds: realised precision at least the target minus 2 points,
or the API refused (accepts nothing); also shown, whether it is within 2 points on both sides,
which cannot be where accepting everything is already more precise than the target; (2) ECE
<= 0.05. Per (dataset, size): (3) at equal realised precision, at least the fixed 0.90
threshold's coverage.

Embeddings come from the benchmark cache (`benchlib.featurize_cached`, train+test) through
`eval_capture.CachedEncoder`; moto is made fast by `fastmoto.speed_up_moto`. Datasets:
banking77, clinc150 (in-scope, data_full.json) and clinc150_imbalanced (data_imbalanced.json's
train, its own test split, which is the same as the full one's).

    python scripts/eval_thresholds.py [--datasets banking77 clinc150 clinc150_imbalanced]
        [--sizes 10 full] [--targets 0.9 0.95] [--seed 0] [--limit-test N]

Prints a table per dataset, then one JSON line per (dataset, size, target) and, last, the
summary JSON line (all rows and which targets were met). Progress bars go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager

import numpy as np
from eval_capture import CachedEncoder, moto_deps
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from benchlib import DATA, ROOT, emit_json, featurize_cached, load_dataset, parse_args, print_table
from fastmoto import speed_up_moto
from labelloop.encoder import Encoder, Features
from labelloop.ml.metrics import calibration_error

DATASETS = ("banking77", "clinc150", "clinc150_imbalanced")
CLIENT = "eval-client"
FIXED = 0.90  # the fixed-threshold advice compared with
PRECISION_TOLERANCE = 0.02
MAX_ECE = 0.05
ECE_BINS = 15


def load(name: str, encoder: Encoder) -> tuple[dict, CachedEncoder]:
    """The dataset's splits, and an encoder serving the cached features of its texts."""
    base = "clinc150" if name == "clinc150_imbalanced" else name
    tr, ytr, te, yte = load_dataset(base)
    ftr = featurize_cached(encoder, tr, f"{base}-train")
    fte = featurize_cached(encoder, te, f"{base}-test")
    cached = CachedEncoder(encoder, [*tr, *te], Features(
        np.concatenate([ftr.embeddings, fte.embeddings]), [*ftr.tokens, *fte.tokens]))
    if name == "clinc150_imbalanced":
        # Its train split is a subset of the full one (same labels), its test the same: the
        # full split's cached features serve it.
        data = json.loads((DATA / "clinc150" / "data_imbalanced.json").read_text())
        tr, ytr = [t for t, _ in data["train"]], [y for _, y in data["train"]]
        te, yte = [t for t, _ in data["test"]], [y for _, y in data["test"]]
    return {"train": tr, "ytrain": ytr, "test": te, "ytest": yte,
            "classes": sorted(set(ytr))}, cached


def draw(ds: dict, size: str, seed: int) -> list[int]:
    """Indices into train: `size` per class drawn with the seed, or all ("full"); distinct
    texts (a repeated one would be one sample)."""
    ytr = np.asarray(ds["ytrain"])
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    for c in ds["classes"]:
        pool = np.flatnonzero(ytr == c)
        if size != "full":
            pool = rng.permutation(pool)
        taken = []
        for i in pool:
            if ds["train"][i] not in seen:
                seen.add(ds["train"][i])
                taken.append(int(i))
            if size != "full" and len(taken) == int(size):
                break
        out += taken
    return sorted(out)


@contextmanager
def deferred_invalidation(d):
    """The serving cache's invalidations held back until the block ends, then done once.

    `create_sample` queues training (which invalidates the function's view) and then reads the
    view for the prediction it returns: a reload per sample, whose label query moto answers in
    O(table) (every put re-sorts the table): quadratic over an import of thousands. Before the
    first training there is no model, so the prediction is None either way; what is stored and
    queued is the same."""
    serving, held = d.serving, set()
    invalidate = serving.invalidate
    serving.invalidate = held.add
    try:
        yield
    finally:
        del serving.invalidate  # the class's method again
        for fid in held:
            invalidate(fid)


def realised(take: np.ndarray, right: np.ndarray) -> dict:
    """Precision (None if nothing taken) and coverage of the predictions taken."""
    n = int(take.sum())
    return {"precision": round(float(right[take].mean()), 4) if n else None,
            "coverage": round(float(take.mean()), 4), "accepted": n}


def at_threshold(conf: np.ndarray, right: np.ndarray, threshold: float | None) -> dict:
    """A single global threshold on the test predictions (compared as the API does: at 6
    decimals); accepts nothing if None."""
    take = (np.round(conf, 6) >= threshold) if threshold is not None else np.zeros(
        len(conf), dtype=bool)
    return {"threshold": threshold, **realised(take, right)}


def best_global(conf: np.ndarray, right: np.ndarray, precision: float | None) -> dict | None:
    """Hindsight: of the grid thresholds whose precision on these very predictions is at least
    `precision`, the one with the most coverage."""
    from labelloop.ml.quality import GRID, Evidence, curve

    if precision is None:
        return None
    c = curve(Evidence(np.zeros(len(conf)), (~right).astype(int), conf), GRID)
    with np.errstate(invalid="ignore"):
        ok = np.flatnonzero((c.covered > 0) & (c.precision >= precision - 1e-12))
    if not len(ok):
        return {"threshold": None, "precision": None, "coverage": 0.0}
    i = int(ok[np.argmax(c.coverage[ok])])  # the lowest such threshold
    return {"threshold": round(float(c.thresholds[i]), 3),
            "precision": round(float(c.precision[i]), 4),
            "coverage": round(float(c.coverage[i]), 4)}


def promise(rep) -> dict:
    """What the thresholds report promises for its target (as the API's JSON shows it)."""
    from labelloop.api.quality_presenters import solved_json

    overall = solved_json(rep.overall)
    return {**overall, "refused": overall["recommended"] is None}


def run_one(enc: CachedEncoder, ds: dict, name: str, size: str, args
            ) -> tuple[list[dict], dict]:
    """One function on moto: samples, training, then per target the promise and the invokes."""
    from labelloop.thresholds import ThresholdPolicy
    from labelloop.usecases import (
        functions,
        invoke,
        labels,
        samples,
        thresholds,
        training_run,
    )
    from labelloop.usecases.common import TrainingMessage

    picked = draw(ds, size, args.seed)
    test = list(range(len(ds["test"])))
    if args.limit_test and args.limit_test < len(test):
        test = sorted(np.random.default_rng(args.seed).permutation(test)[:args.limit_test])
    texts = [ds["test"][i] for i in test]
    truth = np.array([ds["ytest"][i] for i in test])
    rows, times = [], {}
    with moto_deps(enc, args.seed) as d:
        started = time.perf_counter()
        fid = functions.create_function(d, CLIENT, f"{name}-{size}", "Text", "Classification").id
        names = {labels.create_label(d, CLIENT, fid, c).id: c for c in ds["classes"]}
        with tqdm(total=len(picked), desc=f"{name} {size}: samples", unit="sample",
                  file=sys.stderr, mininterval=1.0) as bar, deferred_invalidation(d):
            for k, i in enumerate(picked, 1):
                samples.create_sample(d, CLIENT, fid, ds["train"][i],
                                      annotation=samples.LabelRef(label_name=ds["ytrain"][i]))
                if k % 100 == 0 or k == len(picked):
                    bar.update(k - bar.n)
        times["samples"] = time.perf_counter() - started
        started = time.perf_counter()
        result = training_run.run(d, TrainingMessage(functionId=fid, reason="eval_thresholds"))
        times["train"] = time.perf_counter() - started
        version = d.functions.get(fid).live
        if version is None or version != result.version:
            raise SystemExit(f"{name} {size}: training promoted nothing ({result})")
        quality = d.serving.model(fid, version).quality
        predictions = None
        for target in args.targets:
            thresholds.set_policy(d, CLIENT, fid, ThresholdPolicy.model_validate(
                {"accept": {"targetPrecision": target}}))
            rep = thresholds.report(d, CLIENT, fid, target, None, None)
            started = time.perf_counter()
            label, conf, decision = [], [], []
            for text in tqdm(texts, desc=f"{name} {size} p={target:g}: invokes", unit="invoke",
                             file=sys.stderr, mininterval=1.0):
                r = invoke.invoke(d, CLIENT, fid, text, capture=False)
                label.append(r.prediction.label_id)
                conf.append(r.prediction.confidence)
                decision.append(r.decisions.decide(r.prediction.label_id,
                                                   r.prediction.confidence)[0])
            times[f"invokes {target:g}"] = time.perf_counter() - started
            if r.model_version != version:
                raise SystemExit(f"{name} {size}: invoked v{r.model_version}, not v{version}")
            if predictions is not None and predictions != (label, conf):
                raise SystemExit(f"{name} {size}: the predictions changed between targets")
            predictions = (label, conf)
            conf_a = np.array(conf)
            right = np.array([names[x] for x in label]) == truth
            ours = realised(np.array(decision) == "accept", right)
            promised = promise(rep)
            decided = {rep.applied.by_label[x].accept for x in label}
            if decided != {rep.overall.threshold}:
                raise SystemExit(f"{name} {size}: invokes decided at {decided}, the report "
                                 f"recommends {rep.overall.threshold}")
            fixed = at_threshold(conf_a, right, FIXED)
            at_ours = best_global(conf_a, right, ours["precision"])
            # What a single threshold could have done at the target itself, in hindsight.
            at_target = best_global(conf_a, right, target)
            diff = None if ours["precision"] is None else round(ours["precision"] - target, 4)
            ece = calibration_error(conf_a, right, ECE_BINS)
            rec = promised["recommended"]
            all_accepted = ours["coverage"] == 1.0
            row = {
                "dataset": name, "size": size, "train_samples": len(picked),
                "classes": len(ds["classes"]), "test": len(texts), "target": target,
                "model_version": version, "cv_accuracy": round(float(quality.accuracy), 4),
                "cv_ece": None if quality.ece is None else round(float(quality.ece), 4),
                "accuracy": round(float(right.mean()), 4),
                "ece": round(ece, 4), "promised": promised,
                "realised": {**ours, "precision_minus_target": diff,
                             "precision_in_promised_interval": None if rec is None or
                             ours["precision"] is None else bool(
                                 rec["precisionInterval95"][0] <= ours["precision"]
                                 <= rec["precisionInterval95"][1])},
                "coverage_minus_fixed": round(ours["coverage"] - fixed["coverage"], 4),
                "coverage_minus_best_global": None if at_ours is None else round(
                    ours["coverage"] - at_ours["coverage"], 4),
                "fixed_090": fixed, "best_global_at_our_precision": at_ours,
                "best_global_at_target": at_target,
                "targets": {
                    "promise_held": bool(
                        (promised["refused"] and ours["accepted"] == 0)
                        or (diff is not None and diff >= -PRECISION_TOLERANCE - 1e-9)),
                    "within_2pts": None if all_accepted and diff is not None and diff > 0
                    else bool((promised["refused"] and ours["accepted"] == 0)
                              or (diff is not None and abs(diff) <= PRECISION_TOLERANCE + 1e-9)),
                    "ece": bool(ece <= MAX_ECE)},
                "seconds": {k: round(v, 1) for k, v in times.items()}}
            rows.append(row)
            tqdm.write(f"{name} {size} p={target:g}: realised {ours['precision']} / "
                       f"{ours['coverage']}, promised "
                       f"{None if rec is None else (rec['precision'], rec['coverage'])}, "
                       f"targets {row['targets']}", file=sys.stderr)
        vs_fixed = equal_precision(quality, conf_a, right, at_threshold(conf_a, right, FIXED))
    return rows, {"dataset": name, "size": size, **vs_fixed}


SWEEP = np.round(np.arange(0.80, 0.9951, 0.005), 3)


def equal_precision(quality, conf: np.ndarray, right: np.ndarray, fixed: dict) -> dict:
    """The product's threshold for every target of `SWEEP`, scored on the test predictions;
    of those within half a point of the fixed threshold's realised precision, the one with
    the most coverage, against the fixed threshold."""
    from labelloop.thresholds import solve_overall

    points = []
    for target in SWEEP:
        threshold = solve_overall(quality, float(target)).threshold
        if threshold is not None:
            points.append({"target": float(target), **at_threshold(conf, right, threshold)})
    near = [x for x in points if x["precision"] is not None
            and abs(x["precision"] - fixed["precision"]) <= 0.005]
    ours = max(near, key=lambda x: x["coverage"]) if near else None
    return {"fixed_090": fixed, "ours": ours,
            "coverage_minus_fixed": None if ours is None else round(
                ours["coverage"] - fixed["coverage"], 4),
            "met": None if ours is None else bool(ours["coverage"] >= fixed["coverage"])}


def fmt(p: float | None, c: float | None = None) -> str:
    ps = "-" if p is None else f"{p:.3f}"
    return ps if c is None else f"{ps}/{c:.3f}"


def yn(v: bool | None) -> str:
    return "-" if v is None else "Y" if v else "n"


def print_dataset(name: str, rows: list[dict]) -> None:
    r0 = rows[0]
    print(f"\n== {name}: {r0['classes']} classes, {r0['test']} test texts")
    table = []
    for r in rows:
        ours, rec = r["realised"], r["promised"]["recommended"]
        table.append([
            r["size"], r["train_samples"],
            f"{r['target']:g}",
            f"{r['accuracy']:.3f}", f"{r['ece']:.3f}",
            "refused" if rec is None else
            f"{rec['threshold']:.3f}: {rec['precision']:.3f} [{rec['precisionInterval95'][0]:.3f},"
            f"{rec['precisionInterval95'][1]:.3f}]/{rec['coverage']:.3f}",
            fmt(ours["precision"], ours["coverage"]),
            "-" if ours["precision_minus_target"] is None
            else f"{100 * ours['precision_minus_target']:+.1f}",
            fmt(r["fixed_090"]["precision"], r["fixed_090"]["coverage"])
            + f" ({100 * r['coverage_minus_fixed']:+.1f})",
            "-" if r["best_global_at_our_precision"] is None else
            f"{r['best_global_at_our_precision']['coverage']:.3f} "
            f"({100 * r['coverage_minus_best_global']:+.1f})",
            "-" if r["best_global_at_target"]["threshold"] is None else
            f"{r['best_global_at_target']['threshold']:.3f}: "
            f"{r['best_global_at_target']['coverage']:.3f}",
            "".join(yn(v) for v in r["targets"].values())])
    print_table(["size", "samples", "target", "acc", "ECE", "promised thr: P [95%]/cov",
                 "realised P/cov", "ΔP pts", "fixed .90 P/cov (our Δcov)",
                 "best single cov @our P (our Δcov)", "best single @target", "targets"],
                rows=table)
    print("Δ in points; best single: hindsight, the test threshold with the most coverage at "
          "precision >= ours (or the target); targets: promise held (>= target - 2 pts, or "
          "refused), within 2 pts both ways ('-': accepting everything is already above), "
          "ECE <= 0.05")


def print_versus(rows: list[dict]) -> None:
    print("\nat equal realised precision (within half a point) as the fixed .90 threshold:")
    print_table(["size", "fixed .90 P/cov", "ours: target -> thr: P/cov", "Δcov pts"], [
        [v["size"], fmt(v["fixed_090"]["precision"], v["fixed_090"]["coverage"]),
         "none that close" if v["ours"] is None else
         f"{v['ours']['target']:g} -> {v['ours']['threshold']:.3f}: "
         + fmt(v["ours"]["precision"], v["ours"]["coverage"]),
         "-" if v["coverage_minus_fixed"] is None else f"{100 * v['coverage_minus_fixed']:+.1f}"]
        for v in rows])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    p.add_argument("--sizes", nargs="+", default=["10", "full"],
                   help="samples per label (an integer) or 'full'")
    p.add_argument("--targets", nargs="+", type=float, default=[0.90, 0.95])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit-test", type=int, default=None, metavar="N",
                   help="invoke only N test texts (drawn with the seed), for quick runs")
    args = parse_args(p, smoke={"datasets": ["banking77"], "sizes": ["5"], "limit_test": 40})
    for s in args.sizes:
        if s != "full" and not (s.isdigit() and int(s) > 0):
            raise SystemExit(f"--sizes: {s!r} is neither a positive integer nor 'full'")

    started = time.perf_counter()
    # One BLAS/OpenMP thread: on 2 shared cores, training with the default (one per core) was
    # ~10x slower here (threads spinning against each other and other processes).
    threadpool_limits(1)
    speed_up_moto()
    enc = Encoder(ROOT / "layers" / "encoder")
    rows: list[dict] = []
    fixed: list[dict] = []
    for name in args.datasets:
        ds, cached = load(name, enc)
        ds_rows, ds_fixed = [], []
        for size in args.sizes:
            size_rows, versus = run_one(cached, ds, name, size, args)
            ds_rows += size_rows
            ds_fixed.append(versus)
        print_dataset(name, ds_rows)
        print_versus(ds_fixed)
        sys.stdout.flush()
        rows += ds_rows
        fixed += ds_fixed
    for r in rows:
        emit_json("eval_thresholds_row", r)
    for v in fixed:
        emit_json("eval_thresholds_vs_fixed", v)
    met = {k: {"met": sum(1 for r in rows if r["targets"][k]),
               "not_met": sum(1 for r in rows if r["targets"][k] is False),
               "n/a": sum(1 for r in rows if r["targets"][k] is None)}
           for k in ("promise_held", "within_2pts", "ece")}
    met["coverage_vs_fixed"] = {"met": sum(1 for v in fixed if v["met"]),
                                "not_met": sum(1 for v in fixed if v["met"] is False),
                                "n/a": sum(1 for v in fixed if v["met"] is None)}
    emit_json("eval_thresholds", {
        "config": {"datasets": args.datasets, "sizes": args.sizes, "targets": args.targets,
                   "seed": args.seed, "limit_test": args.limit_test, "fixed": FIXED,
                   "precision_tolerance": PRECISION_TOLERANCE, "max_ece": MAX_ECE},
        "targets_met": met,
        "all_met": all(v["not_met"] == 0 for v in met.values()),
        "wall_seconds": round(time.perf_counter() - started, 1), "rows": rows,
        "vs_fixed": fixed})


if __name__ == "__main__":
    main()
