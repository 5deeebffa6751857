"""Suspected-mislabel evaluation: flipped labels found by the suspect queue, and what fixing
them gives back.

Per seed, in a fresh in-process moto account driven through the real use cases
(`evalworld.moto_deps`): BANKING77's training split is imported (`usecases.samples.
create_samples`) into two functions, one with its labels as given ("clean") and one with
`--noise` (5 %) of them flipped at random, each to another label drawn uniformly; both are
trained (`usecases.training_run.run`, as the SQS worker does). The noisy function's suspect
queue (`usecases.suspects.suspect_queue`, read whole) is scored: precision of its first
`--top` (100), its size, and its precision and recall of the flips. Then a reviewer works
through it as the console and CLI let one: a flipped sample is relabelled with its true label
(`usecases.samples.annotate`), any other kept (`usecases.suspects.keep`). First the top
`--top`, then a retrain; then the whole queue of the retrained version, then a retrain. Each
retrain is an ordinary one (warm when few samples changed; promoted or not by the product's
rule; the live version is what is measured). So the retrain after the top trains the queue's
unreviewed suspects lighter, as reviews that found the queue right make it do
(`labelloop.ml.suspect_weights`).

Accuracy on the test split: clean, noisy, after the top `--top`, after the whole queue; the
share of the noise's cost won back: (fixed − noisy) / (clean − noisy), of the means over seeds
(the cost is a fraction of a point, within a seed's test-set noise: a mean of per-seed ratios
would be ruled by the seeds where it happened to be smallest).
Targets: precision of the top `--top` >= 0.6 (`precision_top`); fixing them wins back at least
half the cost (`recovered_top`), and so does working through the whole queue
(`recovered_queue`).

Baselines (unless `--no-baseline`), each on another function with the same flips: the same
top `--top` reviewed the same way, then retrained with no suspect trained lighter
(`recovered_fixes_only`: what the reviewer's fixes alone win back); and `--top` flips chosen at
random relabelled (an oracle that knows the flips and does not rank them), then an ordinary
retrain (`recovered_random_flips`: what fixing that many flips wins back without any ranking).
Each baseline is measured from its own function's first version, not the noisy one's:
functions trained apart on the same labels differ by up to a few tenths of a point (their folds
follow the sample ids), which is a good part of what the noise costs.

    python scripts/eval_mislabels.py [--seeds 3] [--noise 0.05] [--top 100] [--search]
        [--no-baseline]
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import capture_data
import numpy as np
from tqdm import tqdm

from benchlib import emit_json, featurize_cached, parse_args, print_table
from evalworld import CLIENT, CachedEncoder, evaluate, moto_deps
from fastmoto import speed_up_moto
from labelloop.encoder import Encoder

TARGET_PRECISION = 0.6
TARGET_RECOVERED = 0.5


@dataclass
class Run:
    seed: int
    flipped: int = 0
    samples: int = 0
    queue: int = 0  # suspects in the noisy version's queue
    top_precision: float = 0.0
    queue_precision: float = 0.0
    queue_recall: float = 0.0
    accuracy: dict[str, float] = field(default_factory=dict)  # clean, noisy, top, queue
    fixed: dict[str, int] = field(default_factory=dict)  # flips relabelled per step
    kept: dict[str, int] = field(default_factory=dict)
    promoted: dict[str, bool] = field(default_factory=dict)
    lighter: dict[str, int] = field(default_factory=dict)  # suspects trained lighter per step
    seconds: dict[str, float] = field(default_factory=dict)  # training runs


def flip(labels: list[str], share: float, rng: np.random.Generator) -> list[str]:
    """`share` of the labels, chosen at random, each replaced by another label at random."""
    classes = sorted(set(labels))
    out = list(labels)
    for i in rng.choice(len(labels), size=round(share * len(labels)), replace=False):
        out[i] = rng.choice([c for c in classes if c != labels[i]])
    return out


def one_seed(encoder, data, test, seed: int, args, bar) -> Run:
    from labelloop.ids import bare
    from labelloop.usecases import functions, labels, samples, suspects, training_run
    from labelloop.usecases.common import TrainingMessage

    rng = np.random.default_rng(seed)
    noisy = flip(data.ytrain, args.noise, rng)
    run = Run(seed)
    with moto_deps(encoder, seed) as d:
        def function(name: str, given: list[str]) -> tuple[str, dict[str, int]]:
            """A trained function of the training split annotated with `given`; its sample
            ids → training row."""
            fid = functions.create_function(d, CLIENT, name, "Text", "Classification").id
            for c in sorted(set(data.ytrain)):
                labels.create_label(d, CLIENT, fid, c)
            rows: dict[str, int] = {}
            for at in range(0, len(given), 1000):
                items = [samples.NewSample(data.train[i],
                                           annotation=samples.LabelRef(label_name=given[i]))
                         for i in range(at, min(at + 1000, len(given)))]
                made = samples.create_samples(d, CLIENT, fid, items, train=False)
                rows.update({r.sample.id: at + k for k, r in enumerate(made)
                             if isinstance(r, samples.SampleView)})  # a repeated text: 409
            train(fid, name)
            return fid, rows

        def train(fid: str, step: str) -> bool:
            started = time.perf_counter()
            result = training_run.run(d, TrainingMessage(
                functionId=bare(fid, "function"), reason=step,
                force=args.search and step in ("top", "queue")))
            run.seconds[step] = round(time.perf_counter() - started, 2)
            bar.update(1)
            # No version when nothing was relabelled (keeping asks for no training run).
            found = (d.model_versions.get(bare(fid, "function"), result.version).suspects
                     if result.version is not None else None)
            run.lighter[step] = (found or {}).get("lighter", 0)
            return bool(result.decision and result.decision.promote)

        def accuracy(fid: str) -> float:
            return round(evaluate(d, fid, test, np.asarray(data.ytest), None)[0],
                         4)

        clean, _ = function("clean", data.ytrain)
        run.accuracy["clean"] = accuracy(clean)
        fid, rows = function("noisy", noisy)
        run.accuracy["noisy"] = accuracy(fid)
        wrong = {sid for sid, i in rows.items() if noisy[i] != data.ytrain[i]}
        run.samples, run.flipped = len(rows), len(wrong)

        queue = suspects.suspect_queue(d, CLIENT, fid, len(rows))
        hits = [v.sample.id in wrong for v in queue]
        run.queue = len(queue)
        run.top_precision = round(float(np.mean(hits[:args.top])) if hits else 0.0, 4)
        run.queue_precision = round(float(np.mean(hits)) if hits else 0.0, 4)
        run.queue_recall = round(sum(hits) / max(len(wrong), 1), 4)

        def review(items, step: str) -> None:
            run.fixed[step] = run.kept[step] = 0
            for v in items:
                i = rows[v.sample.id]
                if v.sample.id in wrong:
                    samples.annotate(d, CLIENT, fid, v.sample.id,
                                     samples.LabelRef(label_name=data.ytrain[i]))
                    run.fixed[step] += 1
                else:
                    suspects.keep(d, CLIENT, fid, v.sample.id)
                    run.kept[step] += 1
            run.promoted[step] = train(fid, step)
            run.accuracy[step] = accuracy(fid)

        review(queue[:args.top], "top")
        review(suspects.suspect_queue(d, CLIENT, fid, len(rows)), "queue")
        if args.baseline:
            # A twin of the noisy function, the same top `--top` reviewed the same way, then
            # retrained with nothing trained lighter: what the fixes alone win back.
            twin, twin_rows = function("noisy twin", noisy)
            run.accuracy["twin_noisy"] = accuracy(twin)
            sample_at = {i: sid for sid, i in twin_rows.items()}
            for v in queue[:args.top]:
                i = rows[v.sample.id]
                if v.sample.id in wrong:
                    samples.annotate(d, CLIENT, twin, sample_at[i],
                                     samples.LabelRef(label_name=data.ytrain[i]))
                else:
                    suspects.keep(d, CLIENT, twin, sample_at[i])
            with nothing_lighter(d):
                run.promoted["fixes only"] = train(twin, "fixes only")
            run.accuracy["fixes_only"] = accuracy(twin)
            # The same noisy function again, with `--top` flips chosen at random fixed (an
            # oracle no reviewer has): what fixing that many flips gives without any ranking.
            other, other_rows = function("noisy again", noisy)
            run.accuracy["random_noisy"] = accuracy(other)
            flips = sorted(sid for sid, i in other_rows.items() if noisy[i] != data.ytrain[i])
            for sid in rng.permutation(flips)[:args.top]:
                samples.annotate(d, CLIENT, other, str(sid),
                                 samples.LabelRef(label_name=data.ytrain[other_rows[sid]]))
            run.promoted["random"] = train(other, "random")
            run.accuracy["random"] = accuracy(other)
    return run


@contextmanager
def nothing_lighter(d):
    """Training runs that train no suspect lighter, whatever the reviews
    (`labelloop.ml.suspect_weights`: its minimum of reviews out of reach)."""
    settings = d.settings
    d.__dict__["settings"] = settings.model_copy(update={"suspects_min_reviewed": 10**9})
    try:
        yield
    finally:
        d.__dict__["settings"] = settings


# Where each step starts: the baselines' own functions, trained apart from the noisy one.
START = {"fixes_only": "twin_noisy", "random": "random_noisy"}


def recovered(acc: dict[str, float], step: str) -> float:
    """(step − its function's first version) / (clean − noisy)."""
    cost = acc["clean"] - acc["noisy"]
    start = acc[START.get(step, "noisy")]
    return float("nan") if cost <= 0 else round((acc[step] - start) / cost, 4)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--noise", type=float, default=0.05, help="share of labels flipped")
    p.add_argument("--top", type=int, default=100, help="suspects fixed first")
    p.add_argument("--no-baseline", dest="baseline", action="store_false",
                   help="skip the baseline: --top flips chosen at random fixed (an oracle) on "
                        "a second noisy function")
    p.add_argument("--search", action="store_true",
                   help="retrain after the fixes with a full search (force), not as the "
                        "product would (warm, a few samples changed)")
    args = parse_args(p, smoke={"seeds": 1, "top": 10, "noise": 0.1})

    speed_up_moto()
    enc = Encoder(threads=1)
    data = capture_data.load("banking77")
    features = featurize_cached(enc, data.train, "banking77-train")
    test = featurize_cached(enc, data.test, "banking77-test")
    encoder = CachedEncoder(enc, data.train, features)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    bar = tqdm(total=len(seeds) * (8 if args.baseline else 4), unit="training run",
               file=sys.stderr, desc="eval_mislabels")
    runs = [one_seed(encoder, data, test, seed, args, bar) for seed in seeds]
    bar.close()

    def mean(values) -> float:
        values = [v for v in values if v is not None]
        return round(float(np.mean(values)), 4) if values else float("nan")

    rows = []
    for r in runs:
        rows.append([r.seed, r.samples, r.flipped, r.queue, r.top_precision, r.queue_precision,
                     r.queue_recall, r.accuracy["clean"], r.accuracy["noisy"],
                     r.accuracy["top"], r.accuracy["queue"], recovered(r.accuracy, "top"),
                     recovered(r.accuracy, "queue"),
                     *([r.accuracy["twin_noisy"], r.accuracy["fixes_only"],
                        recovered(r.accuracy, "fixes_only"), r.accuracy["random_noisy"],
                        r.accuracy["random"], recovered(r.accuracy, "random")]
                       if args.baseline else []),
                     f"{r.fixed['top']}/{r.kept['top']}", f"{r.fixed['queue']}/{r.kept['queue']}",
                     "".join(str(int(v)) for v in r.promoted.values()),
                     r.lighter.get("top", 0),
                     " ".join(f"{k}:{v}" for k, v in r.seconds.items())])
    print_table(["seed", "samples", "flipped", "queue", f"P@{args.top}", "queue P",
                 "queue R", "acc clean", "acc noisy", f"acc top{args.top}", "acc queue",
                 "won back top", "won back queue",
                 *(["acc twin", "acc fixes only", "won back fixes only", "acc again",
                    "acc random", "won back random"] if args.baseline else []),
                 "top fixed/kept", "queue fixed/kept", "promoted", "lighter", "training s"],
                rows)
    figures = {
        "config": {"seeds": args.seeds, "first_seed": args.first_seed, "noise": args.noise,
                   "top": args.top, "search": args.search,
                   "baseline": args.baseline},
        "samples": mean(r.samples for r in runs), "flipped": mean(r.flipped for r in runs),
        "queue": mean(r.queue for r in runs),
        "precision_top": mean(r.top_precision for r in runs),
        "queue_precision": mean(r.queue_precision for r in runs),
        "queue_recall": mean(r.queue_recall for r in runs),
        "lighter_top": mean(r.lighter.get("top", 0) for r in runs),
        **{f"accuracy_{k}": mean(r.accuracy[k] for r in runs)
           for k in ("clean", "noisy", "top", "queue",
                     *(("twin_noisy", "fixes_only", "random_noisy", "random")
                       if args.baseline else ()))},
    }
    means = {k.removeprefix("accuracy_"): v for k, v in figures.items()
             if k.startswith("accuracy_")}
    figures |= {"recovered_top": recovered(means, "top"),
                "recovered_queue": recovered(means, "queue")}
    if args.baseline:
        figures["recovered_fixes_only"] = recovered(means, "fixes_only")
        figures["recovered_random_flips"] = recovered(means, "random")
    figures["targets"] = {
        "precision_top": {"target": TARGET_PRECISION, "measured": figures["precision_top"],
                          "met": figures["precision_top"] >= TARGET_PRECISION},
        **{k: {"target": TARGET_RECOVERED, "measured": figures[k],
               "met": figures[k] >= TARGET_RECOVERED} for k in ("recovered_top",
                                                                "recovered_queue")},
    }
    print(f"\nP@{args.top}: the first {args.top} suspects that were flipped; queue P / R: the "
          "whole queue's precision and recall of the flips; top / queue fixed/kept: flips "
          "relabelled / others kept at each step; won back: (fixed - noisy) / (clean - noisy), "
          "the baselines from their own function's first version (acc twin, acc again); "
          + (f"fixes only: the same top {args.top} reviewed on a twin, retrained with no "
             f"suspect lighter; random: {args.top} flips chosen at random fixed instead (the "
             "baseline); " if args.baseline else "")
          + "promoted: whether each retrain went live (top, queue, fixes only, random); "
          "lighter: suspects the retrain after the top trained lighter "
          "(labelloop.ml.suspect_weights)")
    emit_json("eval_mislabels", figures)


if __name__ == "__main__":
    main()
