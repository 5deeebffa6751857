"""`labelloop import`: samples from a file or a folder of images, missing labels created
first, with a progress bar: texts in bulk requests (`POST …/samples/batch`, up to
BATCH_SAMPLES a request, two at a time), images one per request (a picture is most of a
request body) eight at a time."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labelloop.cli.connection import guarded
from labelloop.cli.errors import CliError
from labelloop.cli.files import read_pictures, read_samples
from labelloop.cli.output import SHOWN_ERRORS
from labelloop.client import ApiError, Client, Unreachable

IMPORT_WORKERS = 8
BULK_WORKERS = 2
BATCH_SAMPLES = 500
# Under the API's 256 KiB body limit with room for the JSON around the texts.
BATCH_BYTES = 200_000


def import_samples(client: Client, function_id: str, source: Path) -> None:
    """Samples from a CSV/JSONL file, or from a folder of images (an Image function's)."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from tqdm import tqdm

    if source.is_dir():
        if client.get_function(function_id).get("input") != "Image":
            raise CliError(f"{source}: a folder of images goes into an Image function; "
                           f"{function_id} takes text (import a CSV or JSONL file)")
        pictures, skipped = read_pictures(source)
        for path in skipped[:SHOWN_ERRORS]:
            print(f"skipped {path}: not an image file by its name", file=sys.stderr)
        if len(skipped) > SHOWN_ERRORS:
            print(f"(and {len(skipped) - SHOWN_ERRORS} more skipped)", file=sys.stderr)
        items = [_Item(p.where, p.data_uri, p.label, p.external_id) for p in pictures]
    else:
        items = [_Item(f"{source}:{r.line}", (lambda r=r: r.text), r.label, r.external_id)
                 for r in read_samples(source)]
    _create_labels(client, function_id, items)

    counts = {"created": 0, "duplicate": 0, "failed": 0}
    errors: list[tuple[str, str]] = []
    unit = "image" if source.is_dir() else "sample"
    groups = [[it] for it in items] if source.is_dir() else list(_batches(items))
    post = _post_sample if source.is_dir() else _post_batch
    with ThreadPoolExecutor(IMPORT_WORKERS if source.is_dir() else BULK_WORKERS) as pool, \
            tqdm(total=len(items), unit=unit, desc="import", disable=None) as bar:
        futures = {pool.submit(post, client, function_id, group): group for group in groups}
        for future in as_completed(futures):
            for item, (outcome, message) in zip(futures[future], future.result(), strict=True):
                counts[outcome] += 1
                if message:
                    errors.append((item.where, message))
            bar.update(len(futures[future]))
    if not source.is_dir() and counts["created"] and any(it.label for it in items):
        client.train(function_id)  # the bulk requests asked for none: one run for the import
    print(f"{source}: {counts['created']} created, {counts['duplicate']} already there, "
          f"{counts['failed']} failed")
    for where, message in sorted(errors, key=_in_order)[:SHOWN_ERRORS]:
        print(f"  {where}: {message}")
    if counts["failed"]:
        sys.exit(1)


@dataclass(frozen=True)
class _Item:
    where: str  # file:line, or an image's path
    data: Callable[[], str]  # read when sent: a folder of photos is not held in memory
    label: str | None
    external_id: str | None


def _in_order(error: tuple[str, str]):
    where, _ = error
    file, _, line = where.rpartition(":")
    return (file, int(line)) if line.isdigit() else (where, 0)


def _create_labels(client: Client, function_id: str, items: list[_Item]) -> None:
    existing = {lb["name"] for lb in client.list_labels(function_id)}
    missing = list(dict.fromkeys(it.label for it in items
                                 if it.label and it.label not in existing))
    for name in missing:
        client.create_label(function_id, name)
    if missing:
        print(f"created {len(missing)} labels: {', '.join(missing)}", file=sys.stderr)


def _batches(items: list[_Item]):
    """Groups of at most BATCH_SAMPLES items and (roughly) BATCH_BYTES of text, in order."""
    group, size = [], 0
    for item in items:
        n = len(item.data().encode()) + 100
        if group and (len(group) == BATCH_SAMPLES or size + n > BATCH_BYTES):
            yield group
            group, size = [], 0
        group.append(item)
        size += n
    if group:
        yield group


def _outcome(status: int, body) -> tuple[str, str | None]:
    # Only a duplicate names the existing sample; other 409s (e.g. not ready) are failures.
    if status == 409 and isinstance(body, dict) and body.get("existingSampleId"):
        return "duplicate", None
    message = body.get("message") if isinstance(body, dict) else body
    return "failed", f"{status} {message}"


def _post_sample(client: Client, fid: str, group: list[_Item]) -> list[tuple[str, str | None]]:
    (item,) = group
    try:
        client.create_sample(fid, item.data(), item.label, item.external_id)
    except ApiError as err:
        return [_outcome(err.status, err.body if isinstance(err.body, dict) else err.message)]
    except (Unreachable, OSError) as err:
        return [("failed", str(err))]
    return [("created", None)]


def _post_batch(client: Client, fid: str, group: list[_Item]) -> list[tuple[str, str | None]]:
    body = [{"data": it.data(), **({"annotation": {"labelName": it.label}} if it.label else {}),
             **({"externalId": it.external_id} if it.external_id is not None else {})}
            for it in group]
    try:
        results = client.create_samples(fid, body, train=False)  # once, after the last
    except ApiError as err:
        return [("failed", f"{err.status} {err.message}")] * len(group)
    except (Unreachable, OSError) as err:
        return [("failed", str(err))] * len(group)
    # An item's error names its place in the request (`samples[3].data: …`); the file and
    # line it came from are printed instead.
    return [("created", None) if r["status"] == 200 else _outcome(
        r["status"], {**r, "message": re.sub(r"^samples\[\d+\]\.", "", r.get("message") or "")})
        for r in results]


def add_parser(subparsers: argparse._SubParsersAction, conn: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "import", parents=[conn], help="add samples from a CSV or JSONL file, or a folder of "
                                       "images",
        description="Add samples from a CSV (columns text[,label][,externalId]) or JSONL file "
                    '({"text" or "data", "label"?, "externalId"?} per line), or, to an Image '
                    "function, from a folder of images with one subfolder per label "
                    "(photos/cat/1.jpg is a sample of cat; images at the top have no label; "
                    "each one's path under the folder is its externalId). Missing labels are "
                    "created first; samples already there are counted, not errors.")
    p.add_argument("function_id")
    p.add_argument("file", type=Path, metavar="file_or_folder",
                   help="a .csv or .jsonl/.ndjson file, or a folder of images")
    p.set_defaults(func=guarded(lambda a, client: import_samples(client, a.function_id, a.file)))
