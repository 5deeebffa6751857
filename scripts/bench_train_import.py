"""Sample POSTs on the local stack while the function trains, against the same POSTs without.

A user importing thousands of samples meets the retrains the import itself starts. This starts
`labelloop local` (as bench_load.py does), builds a BANKING77 function of --samples annotated
samples and trains it, then posts --posts more samples from --clients clients twice, distinct
texts each time: once with nothing training (the baseline), once right after forcing a
training run, checking that the run was still going when the last POST returned. Prints
throughput and p50/p99/max latency of both, and their ratios.

    .venv/bin/python scripts/bench_train_import.py [--samples 3000] [--posts 600]

Measured before the queue workers left the API's process (issue 17): 12 POSTs/s without a
run, 3.5/s during one (p50 0.7 s -> 2.2 s, max 7.7 s); at 9,500 samples one POST timed out.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_load import Stack, live_model, post_samples, run_clients, trained

from benchlib import emit_json, load_dataset, parse_args
from labelloop.client import Client


def timed_posts(client: Client, fid: str, texts: list[str], clients: int) -> dict:
    lat: list[float] = []
    per = len(texts) // clients

    def run(i: int) -> None:
        for text in texts[i * per:(i + 1) * per]:
            start = time.perf_counter()
            client.create_sample(fid, text)
            lat.append(time.perf_counter() - start)

    wall = run_clients(run, clients)
    a = np.array(lat)
    return {"posts": len(lat), "per_second": len(lat) / wall, "p50": float(np.median(a)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--posts", type=int, default=600, help="per phase")
    ap.add_argument("--clients", type=int, default=8)
    args = parse_args(ap, smoke={"samples": 100, "posts": 20, "clients": 2})

    train, labels, test, _ = load_dataset("banking77")
    rows = list(dict(zip(train, labels, strict=True)).items())
    rng = np.random.default_rng(5)
    rows = [rows[i] for i in rng.permutation(len(rows))][:args.samples]
    fresh = [t for t in dict.fromkeys(test) if t not in dict(rows)]
    assert len(fresh) >= 2 * args.posts, f"only {len(fresh)} distinct test texts"
    with tempfile.TemporaryDirectory(prefix="bench-train-import-") as tmp:
        stack = Stack(Path(tmp) / "data", plain=False)
        try:
            c = stack.client()
            fid = c.create_function("bench-train-import")["id"]
            for label in sorted({r[1] for r in rows}):
                c.create_label(fid, label)
            post_samples(c, fid, rows, 8, f"{args.samples} samples")
            first = trained(c, fid, len(rows))
            quiet = timed_posts(c, fid, fresh[:args.posts], args.clients)
            c.train(fid, force=True)
            time.sleep(1)  # the worker has taken the message
            during = timed_posts(c, fid, fresh[args.posts:2 * args.posts], args.clients)
            still_training = live_model(c, fid)["version"] == first["version"]
            while (second := live_model(c, fid))["version"] == first["version"]:
                time.sleep(1)
            took = second["trainSeconds"]
        finally:
            stack.stop()

    print(f"\n{args.samples} annotated samples, 77 labels; {args.posts} sample POSTs from "
          f"{args.clients} clients per phase; the run took {took} s and was "
          f"{'still' if still_training else 'NOT'} going after the last POST")
    for name, r in (("no run", quiet), ("during a run", during)):
        print(f"{name:>13}: {r['per_second']:.1f} POST/s, p50 {r['p50'] * 1000:.0f} ms, "
              f"p99 {r['p99'] * 1000:.0f} ms, max {r['max'] * 1000:.0f} ms")
    ratio = during["per_second"] / quiet["per_second"]
    print(f"throughput during a run / without: {ratio:.2f}; p50 ratio "
          f"{during['p50'] / quiet['p50']:.2f}")
    emit_json("train_import", {"samples": args.samples, "posts": args.posts,
                               "clients": args.clients, "quiet": quiet, "during": during,
                               "throughput_ratio": ratio, "train_seconds": took,
                               "overlapped": still_training})


if __name__ == "__main__":
    main()
