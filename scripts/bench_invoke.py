"""Invoke latency: through the Lambda handler and over loopback HTTP, ÷ the raw encoder.

    .venv/bin/python scripts/bench_invoke.py [--repeat 300] [--cold 5]
    .venv/bin/python scripts/bench_invoke.py --input image [--repeat 100]

Starts the local stack (`labelloop local --ephemeral`: moto server, real handlers) as its own
process on a free port, as DynamoDB and S3 are remote in production (in-process, moto's request
handling would compete with the encoder for this process's GIL); ephemeral, because snapshotting
moto's state to disk after every invoke is the local stack's durability, which in production
costs the caller's machine nothing; creates and trains the example
function through the API, then measures for one ~20-token text, interleaved round by round so
that machine load hits every variant alike (in a shuffled order per round):

- raw encoder: tokenize + ONNX run + pooling (`Encoder.featurize_one`), the baseline;
- handler: an API Gateway v2 event → `labelloop.handlers.api.handler` → response, in this
  process (auth, cached function view, encoder, head), as Lambda answers the caller: the invoke
  record's write to moto runs after the response (`afterwork`), untimed here;
- handler + record write: the same, with that write timed too (what an invoke costs the Lambda
  container, not the caller);
- HTTP: a POST over loopback through the local stack's gateway (its handler shares its
  process with moto, as `labelloop local` runs), on one kept-alive connection as an SDK's
  session keeps it.

These repeat one text, so they opt out of the invoke cache (`Cache-Control: no-cache`); one
more variant, "handler (cache hit)", repeats it with the cache on.

Steady state (issue 20): a function of realistic size (BANKING77's 77 labels, 10 training
texts each, imported and trained through the API), invoked with --steady distinct BANKING77
test texts back to back (none repeated: the invoke cache never helps), records and capture
on, each invoke's deferred work (record, capture decision, any capture write, drift count and
every 100th invoke its flush) run before the next begins, as on a busy container; per text,
the raw encoder on the same text just before, then the text through two containers in turns,
each with a function of its own (the same data): one as deployed by default (each invoke does
its own work after the response), one holding invokes to do the work of 25 at once
(`LABELLOOP_HELD_INVOKES`, labelloop/held_invokes.py: one batch write of their records, one
transaction for their captures, their drift counts).
Target: p50 of the invoke with its deferred work <= 1.5x the raw encoder's p50. The local
stack's own CPU (moto answering the writes, which AWS does not cost the container) is
reported per invoke, and the mean beside the p50 (held work lands on one invoke in 25).

Cold start: a fresh interpreter importing the handler and serving its first invoke, against a
fresh interpreter importing onnxruntime and creating the same session (medians of --cold runs).
Prints a table, then one JSON line.

`--input image`: an Image function (two labels, three photos each, from scikit-image's wheel),
invoked with distinct 640x480 JPEGs (crops of those photos, as data URIs), each image once per
variant: its decode (Pillow, EXIF, RGB), its preprocessing (resize, crop, normalise), the
encoder on those pixels, the handler (everything the caller waits for: token, base64, decode,
preprocess, encoder, head), the work after its response (the image to S3, the invoke record,
the capture check) and HTTP over loopback, back to back; "the rest" is the handler minus the
first three. Target (issue
19): decode + preprocess <= 30 % of the encoder's time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import boto3
import numpy as np

from benchlib import ROOT, emit_json, load_dataset, parse_args, print_table
from labelloop.client import Client
from labelloop.local import LambdaContext, datadir
from labelloop.local.example import EXAMPLES, run_example
from labelloop.resources import create_all

# What an invoke leaves for after its response: the invoke record, the capture check and the
# drift count (and, for an image, its bytes to S3 first).
DEFERRED = 3
DEFERRED_IMAGE = 4
MAX_PREPROCESS_SHARE = 0.30
TEXT = "I was charged twice for the same order on my credit card last week, please refund me"

COLD_HANDLER = """
import json, sys, time
t0 = time.perf_counter()
from labelloop.handlers.api import handler
from labelloop.local import LambdaContext
event = json.loads(sys.argv[1])
resp = handler(event, LambdaContext("cold"))
assert resp["statusCode"] == 200, resp
print(time.perf_counter() - t0)
"""
COLD_BASELINE = """
import sys, time
t0 = time.perf_counter()
import onnxruntime as ort
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
ort.InferenceSession(sys.argv[1], opts, providers=["CPUExecutionProvider"])
print(time.perf_counter() - t0)
"""


def invoke_event(fid: str, token: str, data: str = TEXT, cached: bool = False) -> dict:
    """An invoke as API Gateway hands it over; not `cached`: it opts out of the invoke cache,
    as the one text repeated here would otherwise measure only cache hits."""
    path = f"/v1/functions/{fid}/invoke"
    return {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
            "headers": {"authorization": f"Bearer {token}",
                        "content-type": "application/json",
                        **({} if cached else {"cache-control": "no-cache"})},
            "requestContext": {"http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
                                        "sourceIp": "127.0.0.1", "userAgent": "bench"},
                               "requestId": "bench", "routeKey": "$default",
                               "stage": "$default", "timeEpoch": 0},
            "body": json.dumps({"data": data}), "isBase64Encoded": False}


def cold(script: str, arg: str, runs: int) -> float:
    out = [float(subprocess.run([sys.executable, "-c", script, arg], capture_output=True,
                                text=True, check=True, env=os.environ).stdout.split()[-1])
           for _ in range(runs)]
    return float(np.median(out))


def start_stack(data_dir: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    """`labelloop local` in its own process; returns it and what it printed (url, moto, …)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "labelloop.cli", "local", "--port", str(port),
                             "--data-dir", str(data_dir), "--ephemeral"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    keys = {"API": "url", "client id": "client_id", "client secret": "client_secret",
            "AWS (moto)": "moto"}
    found: dict[str, str] = {}
    while len(found) < len(keys):
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("labelloop local exited before serving")
        for label, key in keys.items():
            if line.strip().startswith(label):
                found[key] = line.strip()[len(label):].strip()
    # Keep reading: a full pipe would block the stack on its next log line.
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    # "http://127.0.0.1:PORT (access key id in FILE)": the endpoint takes only that key.
    found["moto"] = found["moto"].split()[0]
    found["aws_access_key"] = datadir.aws_access_key(data_dir)
    found["data_dir"] = str(data_dir)
    return proc, found


def stop_stack(proc: subprocess.Popen) -> None:
    """SIGTERM, then a wait longer than the stack's own bounds on its stop (30 s for its
    workers, 5 s for each server): a stack still running after it hangs, and is killed."""
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise RuntimeError("labelloop local did not stop within 60 s of SIGTERM") from None


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=300)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--input", choices=("text", "image"), default="text")
    ap.add_argument("--steady", type=int, default=500, help="distinct texts, steady state")
    args = parse_args(ap, smoke={"repeat": 5, "cold": 1, "steady": 20})
    os.environ.setdefault("LABELLOOP_TRAIN_DEBOUNCE_SECONDS", "0")
    with tempfile.TemporaryDirectory() as tmp:
        proc, s = start_stack(Path(tmp))
        s["pid"] = str(proc.pid)
        try:
            (run_image if args.input == "image" else run)(args, s)
        finally:
            stop_stack(proc)


def handler_env(s: dict[str, str]) -> None:
    """This process's handler talks to the stack's moto, like a second Lambda container."""
    os.environ.update(AWS_ENDPOINT_URL=s["moto"], AWS_ACCESS_KEY_ID=s["aws_access_key"],
                      AWS_SECRET_ACCESS_KEY="local", AWS_DEFAULT_REGION="us-east-1",
                      POWERTOOLS_METRICS_DISABLED="1")
    # As `labelloop local` wires its handlers: the signing key is a file in its data directory.
    session = boto3.Session()
    env = create_all(session, "local", with_secrets=False)
    key_file = datadir.signing_key_file(Path(s["data_dir"]), session.client("secretsmanager"),
                                        env.pop("LABELLOOP_SIGNING_SECRET"))
    os.environ.update(env, LABELLOOP_SIGNING_KEY_FILE=str(key_file))


def run(args: argparse.Namespace, s: dict[str, str]) -> None:
    print(f"local stack at {s['url']}; training the example function …", flush=True)
    fid = run_example(s["url"], s["client_id"], s["client_secret"], EXAMPLES)
    client = Client(s["url"], s["client_id"], s["client_secret"])
    print(f"importing and training a BANKING77 function ({STEADY_PER_LABEL} texts per label) "
          "for the steady state …", flush=True)
    # One function per steady-state container, so that neither meets the other's captures
    # in its quota transactions (the same data, trained alike).
    steady_fids = {}
    for name in STEADY_LABELS:
        steady_fids[name], steady_size = banking77_function(client)
    token = client._bearer()
    handler_env(s)
    from labelloop import afterwork
    from labelloop.container import deps
    from labelloop.handlers.api import handler

    runner = afterwork.Runner()  # this process runs deferred work as Lambda's extension would
    afterwork.install(runner)

    encoder = deps().encoders["fast"]  # the handler's own session: same model, same threads
    event, ctx = invoke_event(fid, token), LambdaContext("bench")
    url = urlparse(s["url"])
    conn = http.client.HTTPConnection(url.hostname, url.port)
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json",
               "cache-control": "no-cache"}
    body = json.dumps({"data": TEXT})
    hit_event = invoke_event(fid, token, cached=True)

    def over_http():
        conn.request("POST", f"/v1/functions/{fid}/invoke", body, headers)
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        resp.read()

    def handler_and_write():
        out = handler(event, ctx)
        done = runner.finish(ctx.aws_request_id)
        assert done == DEFERRED, (done, out)

    variants = {"raw encoder": lambda: encoder.featurize_one(TEXT),
                "handler": lambda: handler(event, ctx),
                # The same text again with the invoke cache (labelloop/feature_cache.py) on.
                "handler (cache hit)": lambda: handler(hit_event, ctx),
                "handler + record write": handler_and_write,
                "HTTP loopback": over_http}
    times = {k: [] for k in variants}
    order = np.random.default_rng(0)
    for rnd in range(20 + args.repeat):  # 20 warm-up rounds
        # A new order every round: whatever runs after an idle moment (or after another
        # variant's leftovers) is then no one variant in particular.
        for name in order.permutation(list(variants)):
            fn = variants[name]
            t0 = time.perf_counter()
            fn()
            if rnd >= 20:
                times[name].append(time.perf_counter() - t0)
            if name in ("handler", "handler (cache hit)"):  # its record, after the response
                assert runner.finish(ctx.aws_request_id) == DEFERRED
            elif name == "HTTP loopback":
                # The stack writes that invoke's record after responding: let it finish before
                # the next timing, which it would otherwise slow down.
                time.sleep(0.03)
    tokens = len(encoder._tokenizer.encode(TEXT).ids)
    print(f"steady state: {args.steady} distinct texts back to back …", flush=True)
    steady_figures = {"function": steady_size, **steady(
        args.steady, steady_fids, token, handler, runner, encoder, int(s["pid"]))}
    print(f"measuring cold starts ({args.cold} runs each) …", flush=True)
    cold_handler = cold(COLD_HANDLER, json.dumps(event), args.cold)
    cold_base = cold(COLD_BASELINE, str(encoder.model_dir / "model.onnx"), args.cold)

    stats = {k: (np.percentile(v, 50) * 1e3, np.percentile(v, 95) * 1e3)
             for k, v in times.items()}
    base50, base95 = stats["raw encoder"]
    rows = [[k, p50, p95, p50 / base50, p95 / base95] for k, (p50, p95) in stats.items()]
    rows.append(["cold start (s)", cold_handler, float("nan"), cold_handler / cold_base,
                 float("nan")])
    print_table(["what", "p50 ms", "p95 ms", "p50 ÷ encoder", "p95 ÷ encoder"], rows)
    print(f"baseline: raw encoder (tokenize + run + pool), {tokens} tokens, same run; "
          f"cold baseline: onnxruntime import + session {cold_base:.3f} s")
    emit_json("invoke", {
        "tokens": tokens, "repeat": args.repeat,
        **{re.sub(r"[^a-z0-9]+", "_", k.lower()).strip("_"): {
            "p50_ms": round(p50, 3), "p95_ms": round(p95, 3),
            "p50_ratio": round(p50 / base50, 3), "p95_ratio": round(p95 / base95, 3)}
           for k, (p50, p95) in stats.items()},
        "cold_start": {"handler_s": round(cold_handler, 3), "baseline_s": round(cold_base, 3),
                       "ratio": round(cold_handler / cold_base, 3)},
        "steady": steady_figures})


STEADY_TARGET = 1.5
STEADY_PER_LABEL = 10
STEADY_WARMUP = 20  # texts per container before timing (its encoder session's first runs)
STEADY_BATCH = 25  # the held container's LABELLOOP_HELD_INVOKES (BatchWriteItem's most)
STEADY_LABELS = {"own": "each invoke's work its own, the default",
                 "held": f"the work of {STEADY_BATCH} held invokes at once"}


def banking77_function(client: Client) -> tuple[str, dict]:
    """The steady state's function: BANKING77's labels with STEADY_PER_LABEL training texts
    each, bulk imported and trained once (as `bench_import` does it)."""
    from bench_import import setup_import, wait_trained

    texts, labels, _, _ = load_dataset("banking77")
    per: dict[str, list[str]] = {}
    for text, label in zip(texts, labels, strict=True):
        if len(per.setdefault(label, [])) < STEADY_PER_LABEL:
            per[label].append(text)
    rows = [(text, label) for label, some in per.items() for text in some]
    fid = client.create_function("banking77 (steady state)")["id"]
    setup_import(client, fid, rows)
    client.train(fid)
    wait_trained(client, fid, len(rows))
    return fid, {"labels": len(per), "samples": len(rows)}


def steady(n: int, fids: dict[str, str], token: str, handler, runner, encoder,
           stack_pid: int) -> dict:
    """See the module's docstring: distinct texts back to back, deferred work included; per
    text the raw encoder, then an invoke on each container (each invoke's work its own, and
    invokes held to do their work 25 at once), each of its own function, in turns so that
    load hits both alike."""
    from labelloop import container
    from labelloop.container import Deps, deps

    _, _, test_texts, _ = load_dataset("banking77")
    warmup = min(STEADY_WARMUP, n)
    texts = list(dict.fromkeys(test_texts))[:n + warmup]
    own = deps()
    held = Deps(own.settings.model_copy(update={"held_invokes": STEADY_BATCH}))
    containers = {"own": own, "held": held}
    ctx = LambdaContext("bench")
    raw, ours = [], {k: [] for k in containers}
    cpu = dict.fromkeys(containers, 0.0)
    for i, text in enumerate(texts):
        t0 = time.perf_counter()
        encoder.featurize_one(text)
        if i >= warmup:
            raw.append(time.perf_counter() - t0)
        for name in (("own", "held") if i % 2 else ("held", "own")):
            container.reset(containers[name])
            cpu0 = _cpu_seconds(stack_pid)
            t1 = time.perf_counter()
            out = handler(invoke_event(fids[name], token, text, cached=True), ctx)
            runner.finish(ctx.aws_request_id)
            if i >= warmup:
                ours[name].append(time.perf_counter() - t1)
                cpu[name] += _cpu_seconds(stack_pid) - cpu0
            assert out["statusCode"] == 200, out
        if i == warmup - 1:
            held.held_invokes.flush()  # the warm-up's work, untimed as the warm-up is
    # The timed invokes still held: their work, timed as the last invoke's (as if it had
    # filled the batch), so that every timed invoke's work is in the figures.
    cpu0, t1 = _cpu_seconds(stack_pid), time.perf_counter()
    held.held_invokes.flush()
    ours["held"][-1] += time.perf_counter() - t1
    cpu["held"] += _cpu_seconds(stack_pid) - cpu0
    container.reset(own)
    raw50 = float(np.percentile(raw, 50)) * 1e3
    figures: dict = {"texts": len(raw), "raw_encoder_p50_ms": round(raw50, 3)}
    for name, times in ours.items():
        p50, mean = float(np.percentile(times, 50)) * 1e3, float(np.mean(times)) * 1e3
        stack_ms = cpu[name] / len(times) * 1e3
        ratio = p50 / raw50
        print(f"steady ({STEADY_LABELS[name]}): invoke + deferred work p50 {p50:.2f} ms, "
              f"mean {mean:.2f} ms, raw encoder {raw50:.2f} ms, ratio {ratio:.2f} (target <= "
              f"{STEADY_TARGET}: {'met' if ratio <= STEADY_TARGET else 'NOT met'}); the local "
              f"stack's CPU {stack_ms:.2f} ms per invoke")
        figures[name] = {
            "invoke_with_deferred_p50_ms": round(p50, 3),
            "invoke_with_deferred_p95_ms": round(float(np.percentile(times, 95)) * 1e3, 3),
            "invoke_with_deferred_mean_ms": round(mean, 3),
            "ratio_p50": round(ratio, 3), "ratio_mean": round(mean / raw50, 3),
            "target": STEADY_TARGET, "met": ratio <= STEADY_TARGET,
            "stack_cpu_ms_per_invoke": round(stack_ms, 3),
            "ratio_p50_without_stack_cpu": round((p50 - stack_ms) / raw50, 3)}
    return figures


def _cpu_seconds(pid: int) -> float:
    """A process's user + system CPU so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def photos_640x480(n: int) -> tuple[dict[str, list[str]], list[bytes]]:
    """Training data URIs per label (three crops of one photo each) and n distinct 640x480
    JPEGs, cropped at random from all six photos and scaled to that size."""
    import base64
    import io

    from PIL import Image

    import build_image_encoder
    from build_encoder import download

    paths = build_image_encoder.sample_photos(ROOT / ".cache" / "photos", download)
    imgs = {name: Image.open(p).convert("RGB") for name, p in paths.items()}

    def jpeg(img) -> bytes:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        return buf.getvalue()

    def uri(data: bytes) -> str:
        return "data:image/jpeg;base64," + base64.b64encode(data).decode()

    train = {label: [uri(jpeg(view)) for view in build_image_encoder.views(imgs[name], 3)]
             for label, name in (("cat", "chelsea.png"), ("cup", "coffee.png"))}
    rng, names, out = np.random.default_rng(0), sorted(imgs), []
    for i in range(n):
        img = imgs[names[i % len(names)]]
        w, h = int(img.width * rng.uniform(0.6, 0.95)), int(img.height * rng.uniform(0.6, 0.95))
        x, y = int(rng.integers(0, img.width - w + 1)), int(rng.integers(0, img.height - h + 1))
        out.append(jpeg(img.crop((x, y, x + w, y + h)).resize((640, 480))))
    return train, out


def run_image(args: argparse.Namespace, s: dict[str, str]) -> None:
    import base64

    client = Client(s["url"], s["client_id"], s["client_secret"])
    warmup = 10
    train, images = photos_640x480(warmup + args.repeat)
    fid = client.create_function("bench-images", input="Image")["id"]
    for label, uris in train.items():
        client.create_label(fid, label)
        for data in uris:
            client.create_sample(fid, data, label)
    print(f"local stack at {s['url']}; training an Image function …", flush=True)
    deadline = time.monotonic() + 120
    while client.get_function(fid).get("liveModelVersion") is None:
        assert time.monotonic() < deadline, "no model after 120 s"
        time.sleep(0.5)
    token = client._bearer()
    handler_env(s)
    from labelloop import afterwork, imaging
    from labelloop.container import deps
    from labelloop.handlers.api import handler

    runner = afterwork.Runner()
    afterwork.install(runner)
    encoder = deps().encoders["image"]  # the handler's own session
    url = urlparse(s["url"])
    conn = http.client.HTTPConnection(url.hostname, url.port)
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    times: dict[str, list[float]] = {k: [] for k in (
        "decode", "preprocess", "encoder", "handler", "after-response work", "HTTP loopback")}
    ctx = LambdaContext("bench")
    for i, jpeg in enumerate(images):
        data = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
        t0 = time.perf_counter()
        img = imaging.decode(jpeg)
        t1 = time.perf_counter()
        px = imaging.pixels(img)
        t2 = time.perf_counter()
        encoder.embed_pixels(px[None])
        t3 = time.perf_counter()
        out = handler(invoke_event(fid, token, data), ctx)
        t4 = time.perf_counter()
        assert out["statusCode"] == 200, out
        assert runner.finish(ctx.aws_request_id) == DEFERRED_IMAGE
        t4b = time.perf_counter()
        conn.request("POST", f"/v1/functions/{fid}/invoke", json.dumps({"data": data}),
                     headers)
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        resp.read()
        t5 = time.perf_counter()
        # No pause: the stack keeps each image and writes its record after responding, while
        # the next image is already being timed, as on a busy container.
        if i >= warmup:
            for name, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4b - t4,
                                        t5 - t4b), strict=True):
                times[name].append(dt)
    p50 = {k: float(np.percentile(v, 50)) * 1e3 for k, v in times.items()}
    p95 = {k: float(np.percentile(v, 95)) * 1e3 for k, v in times.items()}
    rest = p50["handler"] - p50["decode"] - p50["preprocess"] - p50["encoder"]
    share = (p50["decode"] + p50["preprocess"]) / p50["encoder"]
    rows = [[k, p50[k], p95[k], p50[k] / p50["encoder"]] for k in times]
    rows.insert(3, ["the rest (handler - above)", rest, float("nan"), rest / p50["encoder"]])
    print_table(["what", "p50 ms", "p95 ms", "p50 ÷ encoder"], rows)
    print(f"{args.repeat} distinct 640x480 JPEGs ({np.mean([len(j) for j in images]) / 1024:.0f}"
          f" KiB on average); decode + preprocess = {share:.2f} of the encoder's time (target "
          f"<= {MAX_PREPROCESS_SHARE}: {'met' if share <= MAX_PREPROCESS_SHARE else 'NOT met'})")
    emit_json("invoke_image", {
        "repeat": args.repeat, "size": [640, 480],
        **{k.replace(" ", "_").lower(): {"p50_ms": round(p50[k], 3), "p95_ms": round(p95[k], 3)}
           for k in times},
        "rest_p50_ms": round(rest, 3), "decode_preprocess_over_encoder": round(share, 3)})


if __name__ == "__main__":
    main()
