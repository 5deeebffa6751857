"""`labelloop invoke`: classify a text or a file's lines one request each, or a file as batch
jobs."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from labelloop.chunking import bounded_chunks
from labelloop.cli.connection import guarded
from labelloop.cli.errors import CliError
from labelloop.cli.files import Row, read_batch, read_lines
from labelloop.cli.output import SHOWN_ERRORS
from labelloop.client import BATCH_ENDED, Client

# Batch jobs: request bodies stay under the server's 256 KiB limit, with room to spare.
BATCH_BODY_BYTES = 240 * 1024
BATCH_MAX_ITEMS = 10_000


def invoke(client: Client, function_id: str, text: str | None = None, *,
           file: Path | None = None, as_json: bool = False) -> None:
    """Classify `text`, or every non-empty line of `file`; print each prediction with its
    runners-up, or with `as_json` each raw response."""
    texts = [r.text for r in read_lines(file)] if file else [text]
    width = 0 if as_json else max((len(lb["name"]) for lb in
                                   client.list_labels(function_id)), default=0)
    for t in texts:
        result = client.invoke(function_id, t, label_count=3)
        if as_json:
            print(json.dumps(result), flush=True)
            continue
        runners_up = ", ".join(f"{c['labelName']} {c['confidence']:.2f}"
                               for c in result.get("labelConfidences", [])[1:3])
        print(f"{result['labelName']:<{width}}  {result['confidence']:.2f}  {t}")
        if runners_up:
            print(f"{'':<{width}}  next: {runners_up}", flush=True)


def batch_invoke(client: Client, function_id: str, batch: Path, *, out: Path | None = None,
                 capture: bool = True, timeout: float = 3600.0) -> None:
    """Submit the file as jobs (bodies under the server's size limit), wait for all of them
    with a progress bar over items, then write the merged results in input order."""
    from tqdm import tqdm

    rows, started = read_batch(batch), time.monotonic()
    jobs = []  # (index of its first row, rows, job id)
    for start, chunk in _batch_jobs(rows):
        items = [{"data": r.text, **({"id": r.external_id} if r.external_id else {})}
                 for r in chunk]
        jobs.append((start, chunk, client.batch_invoke(function_id, items, capture)["id"]))
    status: dict[str, dict] = {}
    with tqdm(total=len(rows), unit="item", desc="batch invoke", disable=None,
              file=sys.stderr) as bar:
        while len([j for j in status.values() if j["state"] in BATCH_ENDED]) < len(jobs):
            for _, _, job_id in jobs:
                if status.get(job_id, {}).get("state") not in BATCH_ENDED:
                    status[job_id] = client.batch_job(function_id, job_id)
            bar.update(sum(j["processed"] for j in status.values()) - bar.n)
            if time.monotonic() - started > timeout:
                raise CliError(f"not done after {timeout:g} s (the jobs go on: "
                               f"{', '.join(j for _, _, j in jobs)})")
            if len([j for j in status.values() if j["state"] in BATCH_ENDED]) < len(jobs):
                time.sleep(0.5)
    merged: list[dict | None] = [None] * len(rows)
    for start, _, job_id in jobs:
        for line in client.batch_results(function_id, job_id):
            merged[start + line["index"]] = {k: v for k, v in line.items() if k != "index"}
    for start, chunk, job_id in jobs:  # items of parts that failed for good have no line
        for i in range(start, start + len(chunk)):
            if merged[i] is None:
                merged[i] = {**({"id": rows[i].external_id} if rows[i].external_id else {}),
                             "error": status[job_id].get("lastError") or "no result"}
    text = "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in merged)
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    errors = [(r.line, m["error"]) for r, m in zip(rows, merged, strict=True) if "error" in m]
    report = sys.stdout if out else sys.stderr
    print(f"{batch}: {len(rows) - len(errors)} classified, {len(errors)} failed "
          f"({len(jobs)} job{'s' if len(jobs) != 1 else ''}, "
          f"{time.monotonic() - started:.1f} s){f' -> {out}' if out else ''}",
          file=report)
    for line, message in errors[:SHOWN_ERRORS]:
        print(f"  {batch}:{line}: {message}", file=report)
    if errors:
        sys.exit(1)


def _batch_jobs(rows: list[Row]) -> list[tuple[int, list[Row]]]:
    """(index of the first row, rows) per job: a body under BATCH_BODY_BYTES, and at most
    BATCH_MAX_ITEMS items."""
    return bounded_chunks(
        rows, lambda r: len(json.dumps({"id": r.external_id, "data": r.text}).encode()) + 2,
        BATCH_MAX_ITEMS, BATCH_BODY_BYTES)


def add_parser(subparsers: argparse._SubParsersAction, conn: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("invoke", parents=[conn], help="classify texts")
    p.add_argument("function_id")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("text", nargs="?", help="the text to classify")
    src.add_argument("--file", type=Path, help="classify every non-empty line of FILE")
    src.add_argument("--batch", type=Path, metavar="FILE",
                     help="classify FILE as batch jobs: .jsonl ({\"id\"?, \"data\"} per line), "
                          ".csv (columns text[,id]) or text (one per line); waits, with a "
                          "progress bar")
    p.add_argument("--json", action="store_true", help="print the raw responses, one per line")
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="with --batch: write the results there (JSON lines, in input order; "
                        "default: standard output)")
    p.add_argument("--no-capture", dest="capture", action="store_false",
                   help="with --batch: offer no item to the capture policy")
    p.add_argument("--timeout", type=float, default=3600, metavar="S",
                   help="with --batch: give up waiting after S seconds (default 3600)")
    p.set_defaults(func=guarded(_run))


def _run(args: argparse.Namespace, client: Client) -> None:
    if args.batch:
        batch_invoke(client, args.function_id, args.batch, out=args.out, capture=args.capture,
                     timeout=args.timeout)
    else:
        invoke(client, args.function_id, args.text, file=args.file, as_json=args.json)
