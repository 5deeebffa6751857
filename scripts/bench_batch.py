"""Batch-invoke throughput: the worker's Lambda handler ÷ the raw batched encoder, same run.

    .venv/bin/python scripts/bench_batch.py [--items 2000] [--rounds 3] [--shots 5]
                                            [--encoder fast|accurate]

Against moto in server mode, in a process of its own (DynamoDB, S3, SQS: as with AWS, its
work does not hold this process's GIL): a BANKING77 function (77
labels, --shots annotated samples per label from the train split) is created and trained
through the use cases; then the same --items test texts are classified, round by round and in
alternating order, by

- raw encoder: `Encoder.featurize` (tokenize + ONNX run + pooling) on the texts in chunks of a
  message's size (`PART_ITEMS`) and the worker's encoder batch size, the baseline;
- worker: `labelloop.handlers.batch.handler` on SQS events of one message of `PART_ITEMS`
  items each (the batch queue's batch size is 1), as Lambda calls it: idempotency records,
  encoder, head, invoke records (BatchWriteItem), the capture policy (defaults; one
  transaction per slab), the S3 results object and the job's counters. Only the handler
  calls are timed;
- worker without capture: the same with `capture: false` in the messages.

Throughput is texts per second; the ratio is the worker's ÷ the raw encoder's (target ≥ 0.85).
The breakdown comes from the worker's own per-part timings (its "batch part" log line).
moto is sped up by scripts/fastmoto.py (the same answers without its O(table) steps per
request; --plain-moto to compare). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import time
from collections import defaultdict

import boto3

from benchlib import emit_json, load_dataset, parse_args, print_table
from fastmoto import moto_process
from labelloop.encoder import DEFAULT_ENCODER, ENCODERS

CLIENT = "bench-client"


class _Laps(logging.Handler):
    """Collects the per-phase seconds the worker logs for each part."""

    def __init__(self):
        super().__init__()
        self.parts: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "seconds", None) is not None:
            self.parts.append(record.seconds)


def setup(d, shots: int, encoder: str) -> str:
    from labelloop.usecases import functions as F
    from labelloop.usecases import labels as L
    from labelloop.usecases import samples as S
    from labelloop.usecases import training_run as T
    from labelloop.usecases.common import TrainingMessage

    texts, labels, _, _ = load_dataset("banking77")
    fn = F.create_function(d, CLIENT, "banking77", "Text", "Classification", encoder=encoder)
    by_label: dict[str, list[str]] = defaultdict(list)
    for t, y in zip(texts, labels, strict=True):
        by_label[y].append(t)
    for name in sorted(by_label):
        L.create_label(d, CLIENT, fn.id, name, None, None)
    for name, group in sorted(by_label.items()):
        for t in random.Random(name).sample(group, shots):
            S.create_sample(d, CLIENT, fn.id, t, None, S.LabelRef(label_name=name))
    result = T.run(d, TrainingMessage(functionId=fn.id, reason="bench"))
    assert result.version is not None and result.decision.promote, result
    d.serving.invalidate(fn.id)
    return fn.id


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--encoder", choices=ENCODERS, default=DEFAULT_ENCODER,
                    help="the function's encoder (the raw baseline uses the same one)")
    ap.add_argument("--plain-moto", action="store_true",
                    help="moto's DynamoDB as shipped: each transaction deep-copies the tables "
                         "(O(table) per capture, which DynamoDB does not cost)")
    args = parse_args(ap, smoke={"items": 40, "rounds": 1, "shots": 2})
    for k, v in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench",
                 "AWS_SECRET_ACCESS_KEY": "bench", "POWERTOOLS_METRICS_DISABLED": "1",
                 "LABELLOOP_TRAIN_DEBOUNCE_SECONDS": "0",
                 "LABELLOOP_CACHE_SECONDS": "2"}.items():
        os.environ[k] = v
    with moto_process(fast=not args.plain_moto) as moto:
        os.environ["AWS_ENDPOINT_URL"] = moto.endpoint
        run(args, moto)


def run(args: argparse.Namespace, moto) -> None:
    from labelloop import container
    from labelloop.local import LambdaContext
    from labelloop.local.poller import sqs_event
    from labelloop.resources import create_all
    from labelloop.settings import BatchSettings
    from labelloop.usecases import batch as B

    os.environ.update(create_all(boto3.Session(), "bench"))
    d = container.Deps()
    worker = container.Deps(settings_cls=BatchSettings)
    worker.__dict__["encoders"] = d.encoders  # the baseline and the handler: one ONNX session
    container.reset(d, worker)
    print(f"training a BANKING77 function ({args.shots} samples per label) …", flush=True)
    fid = setup(d, args.shots, args.encoder)
    from labelloop.handlers.batch import OBS, handler

    # The worker's per-part log line carries the breakdown: collected here, not printed.
    laps, std = _Laps(), logging.getLogger(OBS.service)
    for h in list(std.handlers):
        std.removeHandler(h)
    std.addHandler(laps)

    _, _, test_texts, _ = load_dataset("banking77")
    texts = test_texts[: args.items]
    chunks = [texts[i : i + B.PART_ITEMS] for i in range(0, len(texts), B.PART_ITEMS)]
    sqs, url = boto3.client("sqs"), os.environ["LABELLOOP_BATCH_QUEUE_URL"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    encoder = d.encoders[args.encoder]
    encoder.warm()

    def raw() -> float:
        t0 = time.perf_counter()
        for c in chunks:
            encoder.featurize(c, B.EMBED_BATCH)
        return time.perf_counter() - t0

    moto_cpu = {True: 0.0, False: 0.0}  # the emulator's CPU during the handler's calls

    def worker(capture: bool, rnd: int) -> float:
        for n, c in enumerate(chunks):
            sqs.send_message(QueueUrl=url, MessageBody=B.BatchMessage(
                functionId=fid, jobId=f"bench-{rnd}-{int(capture)}", part=n, parts=len(chunks),
                offset=n * B.PART_ITEMS, items=[{"id": str(i), "data": t} for i, t in
                                                 enumerate(c)], capture=capture
            ).model_dump_json())
        spent = 0.0
        while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1,
                                          AttributeNames=["All"]).get("Messages", []):
            event = sqs_event(msgs, arn)
            t0, c0 = time.perf_counter(), moto.cpu_seconds()
            out = handler(event, LambdaContext("labelloop-bench-batch-invoke", 900))
            spent += time.perf_counter() - t0
            moto_cpu[capture] += moto.cpu_seconds() - c0
            assert out == {"batchItemFailures": []}, out
            sqs.delete_message(QueueUrl=url, ReceiptHandle=msgs[0]["ReceiptHandle"])
        return spent

    variants = {"raw encoder": lambda rnd: raw(),
                "worker (capture on)": lambda rnd: worker(True, rnd),
                "worker (capture off)": lambda rnd: worker(False, rnd)}
    print(f"warm-up, then {args.rounds} rounds of {len(texts)} texts "
          f"({len(chunks)} messages) …", flush=True)
    worker(False, -1)
    raw()
    laps.parts.clear()
    moto_cpu.update({True: 0.0, False: 0.0})
    times: dict[str, list[float]] = {k: [] for k in variants}
    breakdown: dict[str, dict[str, float]] = {k: defaultdict(float) for k in variants}
    for rnd in range(args.rounds):
        order = list(variants) if rnd % 2 == 0 else list(reversed(variants))
        for name in order:
            laps.parts.clear()
            times[name].append(variants[name](rnd))
            for part in laps.parts:
                for phase, s in part.items():
                    breakdown[name][phase] += s
    total = {k: sum(v) for k, v in times.items()}
    n = len(texts) * args.rounds
    base = n / total["raw encoder"]
    rows = [[k, n / total[k], (n / total[k]) / base, total[k] / args.rounds]
            for k in variants]
    print_table(["what", "texts/s", "÷ raw encoder", "s per round"], rows)
    phases = ["parse", "embed", "predict", "wait_for_writer", "results_and_job"]
    writer = ["writer_invoke_records", "writer_capture"]
    print("\nworker breakdown, share of handler time: on the handler's thread (other: "
          "idempotency records, event parsing, logging), and on its two writer threads, beside the "
          "encoder:")
    brows = []
    for k in ("worker (capture on)", "worker (capture off)"):
        b = breakdown[k]
        brows.append([k, *[b.get(p, 0.0) / total[k] for p in phases],
                      1 - sum(b.get(p, 0.0) for p in phases) / total[k],
                      *[b.get(p, 0.0) / total[k] for p in writer]])
    print_table(["variant", *phases, "other", *writer], brows)
    captured = sum(1 for _ in d.samples.facts(fid)) - 77 * args.shots
    print(f"\n{len(chunks)} messages of {B.PART_ITEMS} items per round, encoder batch "
          f"{B.EMBED_BATCH}, 1 ONNX thread; {captured} items captured in all; moto "
          f"{'as shipped' if args.plain_moto else 'with scripts/fastmoto.py (same answers)'}")
    on, off = total["worker (capture on)"], total["worker (capture off)"]
    print(f"the emulator (moto, its own process) used {moto_cpu[True] / args.rounds:.2f} s of "
          f"CPU per round during the worker's calls with capture ({moto_cpu[True] / on:.0%} of "
          f"their time), {moto_cpu[False] / args.rounds:.2f} s without "
          f"({moto_cpu[False] / off:.0%}): on AWS that work is done elsewhere; here it "
          f"shares {os.cpu_count()} cores with the worker")
    ratio = (n / total["worker (capture on)"]) / base
    emit_json("batch_invoke", {
        "encoder": args.encoder,
        "items": len(texts), "rounds": args.rounds, "part_items": B.PART_ITEMS,
        "raw_encoder_texts_per_s": round(base, 1),
        "worker_texts_per_s": round(n / total["worker (capture on)"], 1),
        "worker_no_capture_texts_per_s": round(n / total["worker (capture off)"], 1),
        "ratio": round(ratio, 3),
        "ratio_no_capture": round((n / total["worker (capture off)"]) / base, 3),
        "target": 0.85, "meets_target": ratio >= 0.85,
        **{f"breakdown_{k.split()[-1].rstrip(')')}_{p}": round(
            breakdown[f"worker (capture {k.split()[-1].rstrip(')')})"].get(p, 0.0) / total[
                f"worker (capture {k.split()[-1].rstrip(')')})"], 4)
           for k in ("capture on)", "capture off)") for p in [*phases, *writer]},
        "moto_cpu_share_on": round(moto_cpu[True] / on, 3),
        "moto_cpu_share_off": round(moto_cpu[False] / off, 3),
        "captured": captured, "moto": "plain" if args.plain_moto else "fastmoto"})


if __name__ == "__main__":
    main()
