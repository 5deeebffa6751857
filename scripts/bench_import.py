"""Bulk import on the local stack, as a user runs it: BANKING77's training texts into a new
function with `labelloop import ID samples.csv` (bulk requests, one training run at the end),
end to end until that model is live; the import's samples/s ÷ the raw batched encoder's texts/s
on the same texts, same run; and the single-sample POST the official SDK uses, and the metrics
route its `has_trained_model()` polls, at 100 samples against a function of --large samples
(CLINC150 texts added past BANKING77's).

    .venv/bin/python scripts/bench_import.py [--samples 10000] [--large 20000] [--posts 30]

Targets (issue 20): --samples 10,000 imported and trained once in <= 60 s; the import phase
>= 0.7x the raw batched encoder's throughput; a single POST at --large samples <= 1.5x its time
at 100; so is the metrics route (its counts are kept with every write: `data.sample_counts`).
Starts `labelloop local --ephemeral` in its own process (bench_invoke.start_stack).
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_invoke import start_stack, stop_stack

from benchlib import emit_json, load_dataset, parse_args, print_table
from labelloop.cli.samples import import_samples
from labelloop.client import Client
from labelloop.encoder import Encoder

TARGET_SECONDS, TARGET_RATIO, TARGET_GROWTH = 60.0, 0.7, 1.5
SMALL = 100


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return path


def new_function(client: Client, name: str, labels: list[str]) -> str:
    fid = client.create_function(name)["id"]
    for label in labels:
        client.create_label(fid, label)
    return fid


def wait_trained(client: Client, fid: str, samples: int, timeout: float = 900) -> int:
    """Until a live version trained on `samples` samples; returns how many versions trained
    on samples (the labels alone give a zero-shot one first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # Model versions only (one short query), every 0.5 s: the time measured is the
        # training's, not the polling's.
        models = client.list_models(fid)
        if any(m.get("live") and (m.get("sampleCount") or 0) == samples for m in models):
            return sum(1 for m in models if m.get("sampleCount"))
        time.sleep(0.5)
    raise SystemExit(f"no live model on {samples} samples after {timeout:g} s")


def setup_import(client: Client, fid: str, rows: list[tuple[str, str]]) -> None:
    """Samples for the single-POST comparison, unmeasured and untrained (a training run
    would compete with the POSTs for the CPU)."""
    for label in sorted({y for _, y in rows} - {lb["name"] for lb in client.list_labels(fid)}):
        client.create_label(fid, label)
    for i in range(0, len(rows), 500):
        results = client.create_samples(fid, [{"data": t, "annotation": {"labelName": y}}
                                              for t, y in rows[i:i + 500]], train=False)
        assert all(r["status"] == 200 for r in results), results


def metrics_time(client: Client, fid: str) -> float:
    started = time.perf_counter()
    client.metrics(fid)
    return time.perf_counter() - started


def post_times(client: Client, fid: str, texts: list[str], label: str) -> list[float]:
    out = []
    for text in texts:
        started = time.perf_counter()
        client.create_sample(fid, text, label)
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--large", type=int, default=20_000)
    ap.add_argument("--posts", type=int, default=30)
    args = parse_args(ap, smoke={"samples": 60, "large": 100, "posts": 5})
    b_tr, b_y, b_te, _ = load_dataset("banking77")
    c_tr, c_y, _, _ = load_dataset("clinc150")
    pool = list(dict.fromkeys(zip(b_tr + c_tr, b_y + c_y, strict=True)))
    seen: set[str] = set()
    pool = [r for r in pool if not (r[0] in seen or seen.add(r[0]))]
    if len(pool) < args.large + SMALL:
        raise SystemExit(f"only {len(pool)} distinct training texts")
    rows, more, small = (pool[:args.samples], pool[args.samples:args.large],
                         pool[args.large:args.large + SMALL])
    probes = [t for t in dict.fromkeys(b_te) if t not in seen][:2 * args.posts]
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        proc, s = start_stack(Path(tmp) / "data")
        try:
            client = Client(s["url"], s["client_id"], s["client_secret"], timeout=120)
            figures = run(args, client, Path(tmp), rows, more, small, probes)
        finally:
            stop_stack(proc)
    print("raw encoder: this process, batches of 32, one thread (as the API container's "
          "encoder), the same texts")
    emit_json("import", figures)


def run(args, client: Client, tmp: Path, rows, more, small, probes) -> dict:
    # CLINC150's labels too, for the texts that grow it later: created now, a label made
    # afterwards would ask for a training run on 20,000 samples during the POST timings.
    labels = sorted({y for _, y in rows + more})
    fid = new_function(client, "bulk import", labels)
    wait_trained(client, fid, 0)  # the labels' own (zero-shot) run, before the import
    # Labels created over more than the debounce window queue a second run: wait for it too,
    # or it starts mid-import and trains on the first few hundred samples (seen: 2 of 4 runs).
    while client.metrics(fid).get("isTraining"):
        time.sleep(0.5)
    print(f"importing {len(rows)} samples, {len(labels)} labels …", file=sys.stderr, flush=True)
    started = time.perf_counter()
    import_samples(client, fid, write_csv(tmp / "samples.csv", rows))
    imported = time.perf_counter() - started
    runs = wait_trained(client, fid, len(rows))
    total = time.perf_counter() - started

    # One thread, as the API container's encoder runs (`container.Encoders`): the same work.
    encoder = Encoder(threads=1)
    texts = [t for t, _ in rows]
    encoder.featurize(texts[:64])  # warm
    t0 = time.perf_counter()
    encoder.featurize(texts)
    raw_per_s = len(texts) / (time.perf_counter() - t0)
    ours_per_s = len(rows) / imported

    print(f"growing it to {args.large} samples …", file=sys.stderr, flush=True)
    setup_import(client, fid, more)
    small_fid = new_function(client, "bulk import small", labels)  # the same labels
    setup_import(client, small_fid, small)
    while client.metrics(small_fid).get("isTraining") or client.metrics(fid).get("isTraining"):
        time.sleep(1)  # its labels' zero-shot run
    large_times, small_times, large_metrics, small_metrics = [], [], [], []
    for i in range(args.posts):  # interleaved, so that machine load hits both alike
        large_times += post_times(client, fid, [probes[2 * i]], rows[0][1])
        small_times += post_times(client, small_fid, [probes[2 * i + 1]], small[0][1])
        large_metrics.append(metrics_time(client, fid))
        small_metrics.append(metrics_time(client, small_fid))
    large50, small50, mlarge50, msmall50 = (float(np.median(v)) * 1e3 for v in (
        large_times, small_times, large_metrics, small_metrics))
    growth, metrics_growth = large50 / small50, mlarge50 / msmall50
    print_table(["what", "value", "target"], [
        [f"import + train, {len(rows)} samples (s)", total, f"<= {TARGET_SECONDS:g}"],
        ["import phase (s)", imported, ""],
        ["training runs on samples", runs, "1"],
        ["import samples/s ÷ raw encoder texts/s", ours_per_s / raw_per_s,
         f">= {TARGET_RATIO}"],
        [f"single POST p50 at {args.large} ÷ at {SMALL} samples", growth,
         f"<= {TARGET_GROWTH}"],
        [f"metrics route p50 at {args.large} ÷ at {SMALL} samples", metrics_growth,
         f"<= {TARGET_GROWTH}"]])
    return {"samples": len(rows), "labels": len(labels), "seconds_total": round(total, 2),
            "seconds_import": round(imported, 2), "training_runs_on_samples": runs,
            "import_samples_per_s": round(ours_per_s, 1),
            "raw_encoder_texts_per_s": round(raw_per_s, 1),
            "import_vs_raw_encoder": round(ours_per_s / raw_per_s, 3),
            "single_post_p50_ms": {"at_small": round(small50, 2), "at_large": round(large50, 2),
                                   "small": SMALL, "large": args.large,
                                   "ratio": round(growth, 3)},
            "metrics_p50_ms": {"at_small": round(msmall50, 2), "at_large": round(mlarge50, 2),
                               "ratio": round(metrics_growth, 3)},
            "targets": {"seconds_total": TARGET_SECONDS, "import_vs_raw_encoder": TARGET_RATIO,
                        "single_post_growth": TARGET_GROWTH},
            "met": {"seconds_total": total <= TARGET_SECONDS,
                    "import_vs_raw_encoder": ours_per_s / raw_per_s >= TARGET_RATIO,
                    "single_post_growth": growth <= TARGET_GROWTH,
                    "metrics_growth": metrics_growth <= TARGET_GROWTH, "trained_once": runs == 1}}


if __name__ == "__main__":
    main()
