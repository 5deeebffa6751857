"""The README's main job, once the local stack is up: the example function from the files in
scripts/data, created through the public API (once: a restart finds it), trained, invoked; then
the active-learning loop: simulated traffic is captured per strategy, a reviewer annotates the
top of the review queue through the API, and the model retrains and goes live by itself. Given
a folder of pictures (scripts/example_images.py), a small image function the same way."""

from __future__ import annotations

import base64
import csv
import time
from pathlib import Path

from labelloop.cli.files import EXAMPLES, read_labels
from labelloop.cli.invoke import invoke
from labelloop.cli.samples import import_samples
from labelloop.cli.train import train
from labelloop.client import Client

NAME = "support-inbox (example)"
IMAGE_NAME = "digits (example)"


def run_example(url: str, client_id: str, client_secret: str,
                examples: Path = EXAMPLES, images: Path | None = None) -> str:
    client = Client(url, client_id, client_secret)
    fn = next((f for f in client.list_functions() if f["name"] == NAME), None)
    if fn is None:
        fn = client.create_function(NAME)
        for name, description in read_labels(examples / "example_labels.csv"):
            client.create_label(fn["id"], name, description)
        print(f"\ncreated {fn['id']} ({NAME}); importing samples …", flush=True)
        import_samples(client, fn["id"], examples / "example_samples.csv")
    else:
        print(f"\nfound {fn['id']} ({NAME}) from an earlier run", flush=True)
    train(client, fn["id"], wait=True, timeout=300)
    print("\npredictions:", flush=True)
    invoke(client, fn["id"], file=examples / "example_queries.txt")
    review_loop(client, fn["id"], examples / "example_traffic.csv")
    if images is not None:
        run_image_example(client, images)
    return fn["id"]


def review_loop(client: Client, fid: str, traffic: Path, annotate: int = 5,
                timeout: float = 120) -> None:
    with traffic.open(newline="") as f:
        rows = [(r["text"], r["label"]) for r in csv.DictReader(f)]
    truth = dict(rows)
    # Forty invokes at the default random rate (2 %) would show no random capture at all.
    client.set_capture_policy(fid, {"random": {"rate": 0.25}})
    print(f"\ncapture: {len(rows)} invokes of simulated traffic ({traffic.name}); for the demo "
          "the random strategy takes 25 % (default 2 %) …", flush=True)
    for text, _ in rows:
        client.invoke(fid, text)
    time.sleep(0.5)  # captures are written just after each response
    for s in client.capture_policy(fid)["strategies"]:
        print(f"  {s['name']:<14} {s['used']:>3} / {s['quota']} slots", flush=True)
    print("  (rare_class takes predictions of the labels with the fewest annotations once their "
          "counts differ; here every label starts with 6)", flush=True)
    # Only what the traffic file labels (the example queries may be captured too, e.g. by
    # the raised random rate on a rerun).
    queue = [i for i in client.review_queue(fid, batch_size=100) if i["data"] in truth]
    queue = queue[:annotate]
    if not queue:
        print("review queue empty (everything was reviewed in an earlier run)")
        return
    live = client.get_function(fid).get("liveModelVersion")
    print(f"\nreview: annotating the top {len(queue)} of the queue through the API "
          "(with the traffic file's labels, as a reviewer would):", flush=True)
    for item in queue:
        client.annotate(fid, item["id"], truth[item["data"]])
        print(f"  {item['captureReason']:<12} {item['priority']:.2f}  "
              f"{truth[item['data']]:<16} {item['data']}", flush=True)
    print("\nretraining by itself (debounced) …", flush=True)
    deadline = time.time() + timeout
    while time.time() < deadline:
        newest = max(client.list_models(fid), key=lambda m: m["version"])
        if newest["version"] > (live or 0) and not client.metrics(fid).get("isTraining"):
            now = client.get_function(fid).get("liveModelVersion")
            print(f"live model: v{live} -> v{now} ({newest.get('decision', '')})"
                  if now != live else
                  f"v{newest['version']} trained, not promoted: {newest.get('decision', '')}",
                  flush=True)
            return
        time.sleep(0.5)
    print("no new model version within the timeout", flush=True)


def run_image_example(client: Client, folder: Path) -> str:
    """An Image function from `folder`/samples (one subfolder per digit), invoked on the
    pictures of `folder`/queries, whose names start with the truth."""
    fn = next((f for f in client.list_functions() if f["name"] == IMAGE_NAME), None)
    if fn is None:
        fn = client.create_function(IMAGE_NAME, input="Image")
        print(f"\ncreated {fn['id']} ({IMAGE_NAME}, an Image function); importing "
              f"{folder / 'samples'} (one subfolder per label) …", flush=True)
        import_samples(client, fn["id"], folder / "samples")
    else:
        print(f"\nfound {fn['id']} ({IMAGE_NAME}) from an earlier run", flush=True)
    train(client, fn["id"], wait=True, timeout=300)
    queries = sorted((folder / "queries").glob("*.png"))
    print(f"\npredictions for {len(queries)} digits it has not seen:", flush=True)
    right = 0
    for path in queries:
        out = client.invoke(fn["id"], "data:image/png;base64," +
                            base64.b64encode(path.read_bytes()).decode())
        truth = path.name.split("-")[0]
        right += out["labelName"] == truth
        print(f"  {path.name:<10} {out['labelName']:>2}  {out['confidence']:.2f}"
              f"{'' if out['labelName'] == truth else '  (wrong)'}", flush=True)
    print(f"{right} of {len(queries)} right, from 5 samples per digit", flush=True)
    return fn["id"]
