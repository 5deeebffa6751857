"""Concurrent invokes with capture on against a large function on the local stack.

Starts `labelloop local` in a process of its own (persisted data directory, as the README's
default runs it), builds a function with --samples real samples (BANKING77 then CLINC150 train
texts, labelled with their intents, posted through the API: stored with their embeddings),
trains it, warms the stack up with --warmup invokes of other texts (the encoder and the
model load on first use), then runs --clients clients x --invokes distinct invokes each, first
with `capture=false`, then the same texts with capture on, then once more with capture on (test
texts of both datasets, none of them a sample). Prints errors, p50/p90/p99 latency, throughput,
the stack's RSS per pass and its growth under load (from after the warm-up to the end) and from
cold, the capture on/off throughput ratio, whether capture counters equal the buffered items
per strategy and stay within quota, and the median of one sample POST at 100 samples and at
--samples.

Each POST probe runs with the function trained and nothing queued: the function is
force-trained first (which takes any pending request, so a debounced run queued earlier finds
nothing to do), and the probe's samples carry no annotation, so they queue none.

    .venv/bin/python scripts/bench_load.py --keep /tmp/load20k     # 20,000 samples, 8 x 500
    .venv/bin/python scripts/bench_load.py --reuse /tmp/load20k --plain-moto --invokes 100

`--reuse DIR` starts on a copy of a data directory kept by `--keep` (the same 20,000 samples,
replayed from its log), skips the build (not the training), and probes the 100-sample size in
a new function of that table: with `--plain-moto`, the "before" figures without building twice.

Targets (issue 17): 0 errors, p99 <= 5x p50, RSS growth under load <= 200 MB, capture-on
throughput >= 1/1.3 of capture-off, sample POST at --samples <= 1.5x that at 100. The machine's
load makes absolute figures noisy: the ratios within one run are what count.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchlib import ROOT, emit_json, load_dataset, parse_args
from labelloop.client import ApiError, Client

PROBE_POSTS = 30  # sequential sample POSTs timed at each size


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Stack:
    """`labelloop local` in a subprocess; with `plain`, moto's DynamoDB as shipped."""

    def __init__(self, data_dir: Path, plain: bool, creds: dict | None = None):
        self.port = free_port()
        self.client_id = creds["client_id"] if creds else "bench-" + secrets.token_hex(4)
        self.client_secret = creds["client_secret"] if creds else secrets.token_urlsafe(24)
        env = {**os.environ, "LABELLOOP_CLIENT_ID": self.client_id,
               "LABELLOOP_CLIENT_SECRET": self.client_secret,
               "LABELLOOP_TRAIN_DEBOUNCE_SECONDS": "900"}  # trained once, when asked
        patch = ("import labelloop.local.fastdynamo as f; f.install = lambda: None; "
                 if plain else "")
        code = (f"{patch}import sys; from labelloop.cli.main import main; "
                f"sys.exit(main(['local', '--data-dir', {str(data_dir)!r}, "
                f"'--port', '{self.port}']))")
        self.log = open(data_dir.parent / "stack.log", "a")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=ROOT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the stack did not start; see {self.log.name}") from None
                time.sleep(0.5)

    def client(self) -> Client:
        return Client(self.url, self.client_id, self.client_secret, timeout=60, retries=0)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def post_samples(client: Client, fid: str, rows: list[tuple[str, str]], workers: int,
                 desc: str) -> None:
    """POST the rows as annotated samples, `workers` at a time."""
    from tqdm import tqdm

    with ThreadPoolExecutor(workers) as pool, tqdm(total=len(rows), desc=desc, unit="sample",
                                                   file=sys.stderr) as bar:
        for _ in pool.map(lambda r: client.create_sample(fid, r[0], r[1]), rows):
            bar.update()


def probe_posts(client: Client, fid: str, rows: list[tuple[str, str]]) -> float:
    """Median seconds of one sample POST, sequential, without annotation (see above)."""
    out = []
    for text, _ in rows:
        start = time.perf_counter()
        client.create_sample(fid, text)
        out.append(time.perf_counter() - start)
    return float(np.median(out))


def live_model(client: Client, fid: str) -> dict | None:
    return next((m for m in client.list_models(fid) if m["live"]), None)


def trained(client: Client, fid: str, samples: int) -> dict:
    """Force a run and wait until the version it makes (on `samples` samples) is live."""
    before = live_model(client, fid)
    client.train(fid, force=True)
    deadline = time.monotonic() + 1800
    while True:
        live = live_model(client, fid)
        if (live and live.get("sampleCount") == samples
                and (before is None or live["version"] > before["version"])):
            return live
        assert time.monotonic() < deadline, f"no model on {samples} samples after 30 min"
        time.sleep(2)


def run_clients(run, clients: int) -> float:
    """`run(i)` for each client i, in threads of their own, all at once; wall seconds."""
    start = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def load(stack: Stack, fid: str, texts: list[str], clients: int, capture: bool) -> dict:
    """Each client invokes its share of `texts` back to back; latency per call, errors."""
    per = len(texts) // clients
    lat: list[float] = []
    errors: list[str] = []
    peak = [rss_mb(stack.proc.pid)]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            peak[0] = max(peak[0], rss_mb(stack.proc.pid))

    def run(i: int) -> None:
        c = stack.client()
        for text in texts[i * per:(i + 1) * per]:
            start = time.perf_counter()
            try:
                # Passes repeat their texts: past the invoke cache, or later passes would
                # measure only its hits.
                c.invoke(fid, text, capture=capture, cached=False)
                lat.append(time.perf_counter() - start)
            except (ApiError, OSError) as e:
                errors.append(repr(e)[:200])

    before = rss_mb(stack.proc.pid)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    wall = run_clients(run, clients)
    done.set()
    after = rss_mb(stack.proc.pid)
    a = np.array(lat) if lat else np.array([float("nan")])
    return {"capture": capture, "calls": per * clients, "errors": len(errors),
            "first_errors": errors[:3], "p50": float(np.percentile(a, 50)),
            "p90": float(np.percentile(a, 90)), "p99": float(np.percentile(a, 99)),
            "rps": len(lat) / wall, "rss_before_mb": before, "rss_after_mb": after,
            "rss_peak_mb": max(peak[0], after)}


def settle_counters(client: Client, fid: str, timeout: float = 120) -> dict:
    """Capture work runs after each response: wait until the counters stop moving, then
    compare each strategy's counter with its buffered items and its quota."""
    deadline, last = time.monotonic() + timeout, None
    while True:
        usage = client.capture_policy(fid)
        if usage == last or time.monotonic() > deadline:
            break
        last = usage
        time.sleep(3)
    out = {}
    for u in usage["strategies"]:
        name, quota = u["name"], u.get("quota")
        buffered = len(client.review_queue(fid, name, batch_size=1000))
        out[name] = {"used": u["used"], "buffered": buffered, "quota": quota,
                     "exact": u["used"] == buffered and (quota is None or buffered <= quota)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--invokes", type=int, default=500, help="per client")
    ap.add_argument("--warmup", type=int, default=50,
                    help="invokes of other texts before the measured passes")
    ap.add_argument("--build-workers", type=int, default=8)
    ap.add_argument("--plain-moto", action="store_true",
                    help="moto's DynamoDB as shipped (labelloop.local.fastdynamo not installed)")
    ap.add_argument("--keep", type=Path, help="keep the stack's data in DIR/data, with the "
                    "client and function in DIR/bench.json (default: a temporary directory)")
    ap.add_argument("--reuse", type=Path, help="start on a copy of DIR kept by --keep: no "
                    "build (see above)")
    args = parse_args(ap, smoke={"samples": 150, "clients": 2, "invokes": 10, "warmup": 5,
                                 "build_workers": 2})
    kept = json.loads((args.reuse / "bench.json").read_text()) if args.reuse else None
    if kept:
        args.samples = kept["samples"]

    b_tr, b_trl, b_te, _ = load_dataset("banking77")
    c_tr, c_trl, c_te, _ = load_dataset("clinc150")
    rows = list(zip(b_tr + c_tr, b_trl + c_trl, strict=True))
    rng = np.random.default_rng(17)
    rows = [rows[i] for i in rng.permutation(len(rows))]
    seen: set[str] = set()
    rows = [r for r in rows if not (r[0] in seen or seen.add(r[0]))]
    need = args.samples + 2 * PROBE_POSTS
    assert len(rows) >= need, f"only {len(rows)} distinct training texts"
    probe_small, probe_large = rows[:PROBE_POSTS], rows[PROBE_POSTS:2 * PROBE_POSTS]
    first, rest = rows[2 * PROBE_POSTS:2 * PROBE_POSTS + 100], rows[
        2 * PROBE_POSTS + 100:need]
    invoke_texts = [t for t in dict.fromkeys(b_te + c_te) if t not in seen]
    invoke_texts = [invoke_texts[i] for i in rng.permutation(len(invoke_texts))]
    n_calls = args.clients * args.invokes
    assert len(invoke_texts) >= n_calls + args.warmup, (
        f"only {len(invoke_texts)} distinct test texts")
    invoke_texts, warm_texts = (invoke_texts[:n_calls],
                                invoke_texts[n_calls:n_calls + args.warmup])

    tmp = tempfile.TemporaryDirectory(prefix="bench-load-")
    data_dir = Path(tmp.name) / "data"
    if kept:
        shutil.copytree(args.reuse / "data", data_dir, symlinks=True)
    stack = Stack(data_dir, args.plain_moto, kept)
    try:
        c = stack.client()
        if kept:  # the large function is there; a small one in the same table
            fid, spare = kept["function_id"], rows[need:]
            small_fid = c.create_function("bench-load-small")["id"]
            for label in sorted({r[1] for r in spare[:100]}):
                c.create_label(small_fid, label)
            post_samples(c, small_fid, spare[:100], args.build_workers, "first 100")
            trained(c, small_fid, 100)
            small = probe_posts(c, small_fid, spare[100:100 + PROBE_POSTS])
            probe_large = spare[100 + PROBE_POSTS:100 + 2 * PROBE_POSTS]
        else:
            fid = c.create_function("bench-load")["id"]
            for label in sorted({r[1] for r in rows[:need]}):
                c.create_label(fid, label)
            post_samples(c, fid, first, args.build_workers, "first 100")
            trained(c, fid, len(first))
            small = probe_posts(c, fid, probe_small)
            post_samples(c, fid, rest, args.build_workers, f"to {args.samples}")
        model = trained(c, fid, args.samples)  # reused: a version of this code's making
        large = probe_posts(c, fid, probe_large)
        print(f"sample POST median: {small * 1000:.1f} ms at 100 samples, "
              f"{large * 1000:.1f} ms at {args.samples}: ratio {large / small:.2f}; the "
              f"model on {args.samples} samples trained in {model.get('trainSeconds')} s",
              flush=True)
        if args.keep and not kept:  # the built state, before any invoke or capture
            stack.stop()
            shutil.copytree(data_dir, args.keep / "data", symlinks=True)
            creds = {"client_id": stack.client_id, "client_secret": stack.client_secret}
            (args.keep / "bench.json").write_text(json.dumps(
                {**creds, "function_id": fid, "samples": args.samples}))
            stack = Stack(data_dir, args.plain_moto, creds)
            c = stack.client()
        rss_cold = rss_mb(stack.proc.pid)
        for text in warm_texts:
            c.invoke(fid, text, capture=False)
        passes = [load(stack, fid, invoke_texts, args.clients, capture=capture)
                  for capture in (False, True, True)]
        counters = settle_counters(c, fid)
        rss_end = rss_mb(stack.proc.pid)
    finally:
        stack.stop()
        tmp.cleanup()

    print(f"\nmoto: {'as shipped' if args.plain_moto else 'labelloop.local.fastdynamo'}; "
          f"{'reused' if kept else 'built'} {args.samples} samples; {args.clients} clients x "
          f"{args.invokes} invokes; capture off then on, over the same distinct texts")
    off, on = passes[0], passes[1]
    for r in passes:
        print(f"capture {'on ' if r['capture'] else 'off'}: errors {r['errors']}, p50 "
              f"{r['p50'] * 1000:.0f} ms, p90 {r['p90'] * 1000:.0f} ms, p99 "
              f"{r['p99'] * 1000:.0f} ms (p99/p50 {r['p99'] / r['p50']:.1f}), "
              f"{r['rps']:.1f} req/s, RSS {r['rss_before_mb']:.0f} -> {r['rss_after_mb']:.0f} MB "
              f"(peak {r['rss_peak_mb']:.0f})")
        for e in r["first_errors"]:
            print("   ", e)
    top = max([r["rss_peak_mb"] for r in passes] + [rss_end])
    growth, from_cold = top - off["rss_before_mb"], top - rss_cold
    ratio = off["rps"] / on["rps"]
    print(f"RSS: {rss_cold:.0f} MB cold, {off['rss_before_mb']:.0f} MB after {args.warmup} "
          f"warm-up invokes, peak {top:.0f} MB; growth under load {growth:.0f} MB "
          f"({from_cold:.0f} MB from cold); capture off/on throughput: {ratio:.2f}")
    print(f"capture counters: {counters}")
    print(f"sample POST at {args.samples} / at 100: {large / small:.2f}")
    exact = bool(counters) and all(v["exact"] for v in counters.values())
    emit_json("load", {
        "moto": "plain" if args.plain_moto else "fastdynamo", "samples": args.samples,
        "reused": bool(kept),
        "clients": args.clients, "invokes": args.invokes, "warmup": args.warmup,
        "passes": passes, "rss_cold_mb": rss_cold, "rss_growth_mb": growth,
        "rss_growth_from_cold_mb": from_cold, "throughput_off_over_on": ratio,
        "counters_exact": exact,
        "post_small_s": small, "post_large_s": large, "post_ratio": large / small})


if __name__ == "__main__":
    main()
