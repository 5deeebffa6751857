"""The local AWS's write-ahead log: what it costs a request, and what a snapshot holds up.

Prints (all from this run):
- per-request time of a DynamoDB PutItem (~1 KB) with the log (fsync before the response) and
  without persistence, and their ratio;
- with N items (default 20,000 of ~2 KB, like samples with their embeddings) in the table: how
  long a compaction holds requests (fork) against pickling under the lock (what every snapshot
  cost before the log), the snapshot's size and how long the whole snapshot took.

    .venv/bin/python scripts/bench_wal.py [--items 20000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchlib import emit_json, parse_args


def _client(endpoint: str):
    import boto3

    return boto3.Session(aws_access_key_id="local", aws_secret_access_key="local",
                         region_name="us-east-1").client("dynamodb", endpoint_url=endpoint)


def _table(ddb) -> None:
    ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "S"}])


def _puts(ddb, n: int, prefix: str, size: int) -> list[float]:
    times = []
    for i in range(n):
        started = time.perf_counter()
        ddb.put_item(TableName="t", Item={"pk": {"S": "FN#1"}, "sk": {"S": f"{prefix}#{i:06d}"},
                                          "data": {"B": os.urandom(size)}})
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    from labelloop.local.aws import MotoServer, dump_backends

    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parse_args(parser, smoke={"items": 200, "requests": 10})

    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for name, data_dir in (("in memory", None), ("logged", Path(tmp) / "a")):
            server = MotoServer(data_dir).start()
            ddb = _client(server.endpoint)
            _table(ddb)  # each server starts empty
            _puts(ddb, 50, "warm", 1024)
            results[name] = statistics.median(_puts(ddb, args.requests, name, 1024))
            if name == "logged":
                break
            server.stop()
        ratio = results["logged"] / results["in memory"]
        print(f"PutItem median: in memory {results['in memory'] * 1000:.2f} ms, logged "
              f"{results['logged'] * 1000:.2f} ms, ratio {ratio:.2f}")

        batch = [{"PutRequest": {"Item": {"pk": {"S": "FN#2"}, "sk": {"S": f"S#{i:06d}"},
                                          "data": {"B": os.urandom(2048)}}}}
                 for i in range(args.items)]
        for i in range(0, len(batch), 25):
            ddb.batch_write_item(RequestItems={"t": batch[i:i + 25]})
        started = time.perf_counter()
        with server._app.lock:
            data = dump_backends()
        pickled = time.perf_counter() - started
        server.snapshot()
        print(f"with {args.items} items ({len(data) / 1e6:.1f} MB pickled): pickling under the "
              f"lock {pickled * 1000:.0f} ms; compaction holds requests "
              f"{server.last_snapshot_blocked_seconds * 1000:.1f} ms (fork), whole snapshot "
              f"{server.last_snapshot_seconds * 1000:.0f} ms; ratio "
              f"{server.last_snapshot_blocked_seconds / pickled:.3f}")
        started = time.perf_counter()
        server.stop()
        stop_s = time.perf_counter() - started
        print(f"final snapshot on stop: {stop_s * 1000:.0f} ms")
        started = time.perf_counter()
        again = MotoServer(Path(tmp) / "a").start()
        restart_s = time.perf_counter() - started
        print(f"restart (load snapshot): {restart_s * 1000:.0f} ms")
        again.stop()
    emit_json("wal", {
        "put_ms": {"in_memory": round(results["in memory"] * 1000, 3),
                   "logged": round(results["logged"] * 1000, 3), "ratio": round(ratio, 3)},
        "items": args.items, "snapshot_mb": round(len(data) / 1e6, 2),
        "pickle_under_lock_ms": round(pickled * 1000, 1),
        "compaction_blocks_ms": round(server.last_snapshot_blocked_seconds * 1000, 2),
        "snapshot_ms": round(server.last_snapshot_seconds * 1000, 1),
        "stop_ms": round(stop_s * 1000, 1), "restart_ms": round(restart_s * 1000, 1)})


if __name__ == "__main__":
    main()
