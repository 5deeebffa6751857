"""`labelloop import`: samples from a file, missing labels created first, posted in parallel."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from labelloop.cli.connection import guarded
from labelloop.cli.files import Row, read_samples
from labelloop.cli.output import SHOWN_ERRORS
from labelloop.client import ApiError, Client, Unreachable

IMPORT_WORKERS = 8


def import_samples(client: Client, function_id: str, file: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from tqdm import tqdm

    rows = read_samples(file)
    existing = {lb["name"] for lb in client.list_labels(function_id)}
    missing = list(dict.fromkeys(r.label for r in rows if r.label and r.label not in existing))
    for name in missing:
        client.create_label(function_id, name)
    if missing:
        print(f"created {len(missing)} labels: {', '.join(missing)}", file=sys.stderr)

    counts = {"created": 0, "duplicate": 0, "failed": 0}
    errors: list[tuple[int, str]] = []
    with ThreadPoolExecutor(IMPORT_WORKERS) as pool, \
            tqdm(total=len(rows), unit="sample", desc="import", disable=None) as bar:
        futures = {pool.submit(_post_sample, client, function_id, r): r for r in rows}
        for future in as_completed(futures):
            outcome, message = future.result()
            counts[outcome] += 1
            if message:
                errors.append((futures[future].line, message))
            bar.update()
    print(f"{file}: {counts['created']} created, {counts['duplicate']} already there, "
          f"{counts['failed']} failed")
    for line, message in sorted(errors)[:SHOWN_ERRORS]:
        print(f"  {file}:{line}: {message}")
    if counts["failed"]:
        sys.exit(1)


def _post_sample(client: Client, fid: str, row: Row) -> tuple[str, str | None]:
    try:
        client.create_sample(fid, row.text, row.label, row.external_id)
    except ApiError as err:
        # Only a duplicate names the existing sample; other 409s (e.g. not ready) are failures.
        if err.status == 409 and isinstance(err.body, dict) and err.body.get("existingSampleId"):
            return "duplicate", None
        return "failed", f"{err.status} {err.message}"
    except Unreachable as err:
        return "failed", str(err)
    return "created", None


def add_parser(subparsers: argparse._SubParsersAction, conn: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "import", parents=[conn], help="add samples from a CSV or JSONL file",
        description="Add samples from a CSV (columns text[,label][,externalId]) or JSONL file "
                    '({"text" or "data", "label"?, "externalId"?} per line). Missing labels '
                    "are created first; samples already there are counted, not errors.")
    p.add_argument("function_id")
    p.add_argument("file", type=Path, help="a .csv, or .jsonl/.ndjson file")
    p.set_defaults(func=guarded(lambda a, client: import_samples(client, a.function_id, a.file)))
