"""`labelloop` subcommands that drive a running service (the local stack or a deployment) over
its HTTP API: functions, import, train, invoke, models, promote, rollback, the review side
(review, accuracy, capture), and thresholds (`cli_thresholds`)."""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labelloop.chunking import bounded_chunks
from labelloop.client import BATCH_ENDED, ApiError, Client, Unreachable
from labelloop.encoder import ENCODERS

DEFAULT_URL = "http://127.0.0.1:5000"
CREDENTIALS_FILE = "credentials.json"
IMPORT_WORKERS = 8
SHOWN_ERRORS = 5
# Batch jobs: request bodies stay under the server's 256 KiB limit, with room to spare.
BATCH_BODY_BYTES = 240 * 1024
BATCH_MAX_ITEMS = 10_000


class CliError(Exception):
    """A problem the user can fix (bad input file, missing credentials): one line, no trace."""


@dataclass(frozen=True)
class Row:
    line: int
    text: str
    label: str | None = None
    external_id: str | None = None


# -- parsers ------------------------------------------------------------------------------

def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    conn = argparse.ArgumentParser(add_help=False)
    g = conn.add_argument_group("connection")
    g.add_argument("--url", help=f"service URL (default: $LABELLOOP_URL or {DEFAULT_URL})")
    g.add_argument("--client-id", metavar="ID", help="default: $LABELLOOP_CLIENT_ID, else "
                   f"<data dir>/{CREDENTIALS_FILE} (data dir: $LABELLOOP_DATA_DIR or ./.labelloop)")
    g.add_argument("--client-secret", metavar="SECRET",
                   help="default: $LABELLOOP_CLIENT_SECRET, else as above")

    fns = subparsers.add_parser("functions", help="create, list or delete functions")
    fsub = fns.add_subparsers(dest="functions_command", required=True)
    p = fsub.add_parser("create", parents=[conn], help="create a function; prints its id")
    p.add_argument("name")
    p.add_argument("--labels", type=Path, metavar="CSV", help="CSV with columns name[,description]")
    p.add_argument("--encoder", choices=ENCODERS, default=None,
                   help="fast (all-MiniLM-L6-v2, the default) or accurate (all-mpnet-base-v2: "
                        "more accurate with few samples, ~10x the encoder time); fixed once "
                        "created")
    p.set_defaults(func=_guarded(functions_create))
    p = fsub.add_parser("list", parents=[conn], help="list your functions")
    p.set_defaults(func=_guarded(functions_list))
    p = fsub.add_parser("delete", parents=[conn], help="delete a function and all its data")
    p.add_argument("function_id")
    p.set_defaults(func=_guarded(functions_delete))

    p = subparsers.add_parser(
        "import", parents=[conn], help="add samples from a CSV or JSONL file",
        description="Add samples from a CSV (columns text[,label][,externalId]) or JSONL file "
                    '({"text" or "data", "label"?, "externalId"?} per line). Missing labels '
                    "are created first; samples already there are counted, not errors.")
    p.add_argument("function_id")
    p.add_argument("file", type=Path, help="a .csv, or .jsonl/.ndjson file")
    p.set_defaults(func=_guarded(import_samples))

    p = subparsers.add_parser("train", parents=[conn], help="queue a training run")
    p.add_argument("function_id")
    p.add_argument("--force", action="store_true",
                   help="train even if nothing changed, and promote the result regardless")
    p.add_argument("--wait", action="store_true",
                   help="wait for training to finish, then print the live model")
    p.add_argument("--timeout", type=float, default=600, metavar="S",
                   help="with --wait: give up after S seconds (default 600)")
    p.set_defaults(func=_guarded(train))

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
    p.set_defaults(func=_guarded(invoke))

    p = subparsers.add_parser("models", parents=[conn], help="list a function's model versions")
    p.add_argument("function_id")
    p.set_defaults(func=_guarded(models))

    p = subparsers.add_parser("promote", parents=[conn], help="make a model version live")
    p.add_argument("function_id")
    p.add_argument("version", type=int, help="a version number, as `models` lists them")
    p.set_defaults(func=_guarded(promote))

    p = subparsers.add_parser("rollback", parents=[conn],
                              help="go back to the previously live model version")
    p.add_argument("function_id")
    p.set_defaults(func=_guarded(rollback))

    p = subparsers.add_parser(
        "review", parents=[conn], help="review captured invokes from the keyboard",
        description="Show the review queue one item at a time. Keys: a label's number (1-9, "
                    "0 for the 10th; with more labels, a number or name and Enter), s skip, "
                    "d dismiss, u undo, q quit. Piped input: one key or label per line.")
    p.add_argument("function_id")
    p.add_argument("--strategy", metavar="NAME",
                   help="only items captured by this strategy (e.g. uncertainty, random)")
    p.add_argument("--batch-size", type=_batch_size, default=50, metavar="N",
                   help="items fetched at a time (default 50)")
    p.set_defaults(func=_guarded(review))

    p = subparsers.add_parser("accuracy", parents=[conn],
                              help="live accuracy per model version, from random captures")
    p.add_argument("function_id")
    p.set_defaults(func=_guarded(accuracy))

    p = subparsers.add_parser(
        "capture", parents=[conn], help="show or change the capture policy",
        description="Show the capture policy: per strategy, the slots used of its quota and "
                    "its settings. --set changes settings first; the others keep their values.")
    p.add_argument("function_id")
    p.add_argument("--set", type=_setting, action="append", default=[],
                   metavar="STRATEGY.KEY=VALUE",
                   help="e.g. uncertainty.quota=50 or random.rate=0.05 (repeatable)")
    p.add_argument("--near-duplicate-cosine", type=float, metavar="X",
                   help="skip invokes this similar to a buffered or trained-on text")
    p.set_defaults(func=_guarded(capture))

    from labelloop import cli_thresholds  # it imports this module's helpers

    cli_thresholds.add_parser(subparsers, conn, _guarded)


def _guarded(command: Callable[[argparse.Namespace, Client], None]
             ) -> Callable[[argparse.Namespace], None]:
    """Connect, run, and turn expected failures into `error: …` and exit status 1."""
    def run(args: argparse.Namespace) -> None:
        try:
            command(args, connect(args))
        except ApiError as err:
            _fail(f"{err.status} {err.message}")
        except (Unreachable, CliError) as err:
            _fail(str(err))
    return run


def _fail(message: str, status: int = 1) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(status)


def connect(args: argparse.Namespace) -> Client:
    # Resolved at run time, not as parser defaults, so the environment of the call counts.
    url = args.url or os.environ.get("LABELLOOP_URL") or DEFAULT_URL
    cid = args.client_id or os.environ.get("LABELLOOP_CLIENT_ID")
    secret = args.client_secret or os.environ.get("LABELLOOP_CLIENT_SECRET")
    if not (cid and secret):
        path = Path(os.environ.get("LABELLOOP_DATA_DIR") or ".labelloop") / CREDENTIALS_FILE
        saved = _read_credentials(path)
        cid, secret = cid or saved.get("client_id"), secret or saved.get("client_secret")
        if not (cid and secret):
            raise CliError("no client credentials: pass --client-id and --client-secret, set "
                           f"LABELLOOP_CLIENT_ID and LABELLOOP_CLIENT_SECRET, or start the "
                           f"local stack, which writes {path}")
    return Client(url, cid, secret)


def _read_credentials(path: Path) -> dict:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise CliError(f"{path}: unreadable ({err})") from None
    return saved if isinstance(saved, dict) else {}


# -- functions ----------------------------------------------------------------------------

def functions_create(args: argparse.Namespace, client: Client) -> None:
    # Read the labels before creating anything: a bad file leaves no half-made function.
    labels = read_labels(args.labels) if args.labels else []
    fn = client.create_function(args.name, encoder=args.encoder)
    for name, description in labels:
        client.create_label(fn["id"], name, description)
    print(fn["id"])
    if labels:
        print(f"created {fn['id']} with {len(labels)} labels", file=sys.stderr)


def functions_list(args: argparse.Namespace, client: Client) -> None:
    rows = [[f["id"], f.get("name", ""), _version(f.get("liveModelVersion")),
             f.get("encoder", ""), f.get("createdAt", "")] for f in client.list_functions()]
    _print_table(["id", "name", "live", "encoder", "created"], rows)


def functions_delete(args: argparse.Namespace, client: Client) -> None:
    client.delete_function(args.function_id)
    print(f"deleted {args.function_id}")


def read_labels(path: Path) -> list[tuple[str, str | None]]:
    reader, f = _csv_reader(path, required=("name",))
    with f:
        labels, seen = [], set()
        for row in reader:
            name = (row.get("name") or "").strip()
            if not name:
                raise CliError(f"{path}:{reader.line_num}: empty label name")
            if name in seen:
                raise CliError(f"{path}:{reader.line_num}: label {name!r} is listed twice")
            seen.add(name)
            labels.append((name, (row.get("description") or "").strip() or None))
    if not labels:
        raise CliError(f"{path}: no labels")
    return labels


# -- import -------------------------------------------------------------------------------

def import_samples(args: argparse.Namespace, client: Client) -> None:
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from tqdm import tqdm

    rows = read_samples(args.file)
    fid = args.function_id
    existing = {lb["name"] for lb in client.list_labels(fid)}
    missing = list(dict.fromkeys(r.label for r in rows if r.label and r.label not in existing))
    for name in missing:
        client.create_label(fid, name)
    if missing:
        print(f"created {len(missing)} labels: {', '.join(missing)}", file=sys.stderr)

    counts = {"created": 0, "duplicate": 0, "failed": 0}
    errors: list[tuple[int, str]] = []
    with ThreadPoolExecutor(IMPORT_WORKERS) as pool, \
            tqdm(total=len(rows), unit="sample", desc="import", disable=None) as bar:
        futures = {pool.submit(_post_sample, client, fid, r): r for r in rows}
        for future in as_completed(futures):
            outcome, message = future.result()
            counts[outcome] += 1
            if message:
                errors.append((futures[future].line, message))
            bar.update()
    print(f"{args.file}: {counts['created']} created, {counts['duplicate']} already there, "
          f"{counts['failed']} failed")
    for line, message in sorted(errors)[:SHOWN_ERRORS]:
        print(f"  {args.file}:{line}: {message}")
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


def read_samples(path: Path, id_key: str = "externalId") -> list[Row]:
    """Every row of a CSV or JSONL file, all checked before anything is sent. `id_key`: the
    column or key read as the row's external id."""
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
    rows, bad = [], []
    for item in (_jsonl_rows(path, id_key) if jsonl else _csv_rows(path, id_key)):
        (bad if isinstance(item, str) else rows).append(item)
    if bad:
        more = f" (and {len(bad) - SHOWN_ERRORS} more)" if len(bad) > SHOWN_ERRORS else ""
        raise CliError("bad rows, nothing imported" + more + ":\n  " +
                       "\n  ".join(bad[:SHOWN_ERRORS]))
    if not rows:
        raise CliError(f"{path}: no samples")
    return rows


def _csv_rows(path: Path, id_key: str = "externalId"):
    reader, f = _csv_reader(path, required=("text",))
    with f:
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if not (row.get("text") or "").strip():
                yield f"{where}: empty text"
            else:
                yield Row(reader.line_num, row["text"], (row.get("label") or "").strip() or None,
                          (row.get(id_key) or "").strip() or None)


def _jsonl_rows(path: Path, id_key: str = "externalId"):
    with path.open(encoding="utf-8-sig") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                obj = json.loads(line)
            except ValueError as err:
                yield f"{where}: invalid JSON ({err})"
                continue
            if not isinstance(obj, dict):
                yield f"{where}: expected an object with a \"text\" field"
                continue
            text = obj.get("text", obj.get("data"))
            label, ext = obj.get("label"), obj.get(id_key)
            if not isinstance(text, str) or not text.strip():
                yield f"{where}: \"text\" (or \"data\") must be a non-empty string"
            elif label is not None and not isinstance(label, str):
                yield f"{where}: \"label\" must be a string"
            elif ext is not None and not isinstance(ext, str):
                yield f"{where}: \"{id_key}\" must be a string"
            else:
                yield Row(n, text, (label or "").strip() or None, ext or None)


def _csv_reader(path: Path, required: tuple[str, ...]):
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark.
        f = path.open(newline="", encoding="utf-8-sig")
    except OSError as err:
        raise CliError(f"{path}: {err.strerror or err}") from None
    reader = csv.DictReader(f)
    header = reader.fieldnames or []
    missing = [c for c in required if c not in header]
    if missing:
        f.close()
        raise CliError(f"{path}:1: the header needs column(s) {', '.join(missing)} "
                       f"(found: {', '.join(header) or 'nothing'})")
    return reader, f


# -- training and models ------------------------------------------------------------------

def train(args: argparse.Namespace, client: Client) -> None:
    client.train(args.function_id, force=args.force)
    if not args.wait:
        print(f"training queued for {args.function_id}")
        return
    metrics = _wait_for_training(client, args.function_id, args.timeout)
    if metrics.get("lastTrainingError"):
        raise CliError(f"training failed: {metrics['lastTrainingError']}")
    versions = sorted(client.list_models(args.function_id), key=lambda m: m["version"])
    live = next((m for m in versions if m.get("live")), None)
    if live is None:
        raise CliError("training finished but no model is live (does the function have labels?)")
    quality = ("zero-shot" if live.get("zeroShot") else
               f"cv accuracy {_num(live.get('cvAccuracy'))}, "
               f"{live.get('sampleCount', 0)} samples")
    print(f"live model: v{live['version']} ({quality})")
    newest = versions[-1]
    if newest is not live and not newest.get("promoted"):
        print(f"not promoted: v{newest['version']}: {newest.get('decision', '')}")


def _wait_for_training(client: Client, fid: str, timeout: float) -> dict:
    from tqdm import tqdm

    deadline = time.monotonic() + timeout
    # No total to show: the bar is a spinner with elapsed time, on a terminal only.
    with tqdm(desc="training", bar_format="{desc}: {elapsed}", disable=None) as bar:
        while True:
            metrics = client.metrics(fid)
            if not metrics.get("isTraining"):
                return metrics
            if time.monotonic() >= deadline:
                raise CliError(f"still training after {timeout:g} s (it goes on; check with "
                               f"`labelloop models {fid}`)")
            bar.update()
            time.sleep(0.5)


def models(args: argparse.Namespace, client: Client) -> None:
    rows = [[str(m["version"]), "*" if m.get("live") else "", "yes" if m.get("zeroShot") else "",
             str(m.get("sampleCount", "")), _num(m.get("cvAccuracy")), _num(m.get("cvEce")),
             "yes" if m.get("promoted") else "no", m.get("decision", "")]
            for m in sorted(client.list_models(args.function_id), key=lambda m: m["version"])]
    if not rows:
        print("no model versions yet")
        return
    _print_table(["version", "live", "zero-shot", "samples", "cv acc", "ECE", "promoted",
                  "decision"], rows)


def promote(args: argparse.Namespace, client: Client) -> None:
    print(f"live model: v{client.promote(args.function_id, args.version)['live']}")


def rollback(args: argparse.Namespace, client: Client) -> None:
    print(f"rolled back: live model is now v{client.rollback(args.function_id)['live']}")


# -- invoke -------------------------------------------------------------------------------

def invoke(args: argparse.Namespace, client: Client) -> None:
    if args.batch:
        batch_invoke(args, client)
        return
    if args.file:
        try:
            lines = args.file.read_text(encoding="utf-8-sig").splitlines()
        except OSError as err:
            raise CliError(f"{args.file}: {err.strerror or err}") from None
        texts = [t.strip() for t in lines if t.strip()]
    else:
        texts = [args.text]
    width = 0 if args.json else max((len(lb["name"]) for lb in
                                     client.list_labels(args.function_id)), default=0)
    for text in texts:
        result = client.invoke(args.function_id, text, label_count=3)
        if args.json:
            print(json.dumps(result), flush=True)
            continue
        runners_up = ", ".join(f"{c['labelName']} {c['confidence']:.2f}"
                               for c in result.get("labelConfidences", [])[1:3])
        print(f"{result['labelName']:<{width}}  {result['confidence']:.2f}  {text}")
        if runners_up:
            print(f"{'':<{width}}  next: {runners_up}", flush=True)


def batch_invoke(args: argparse.Namespace, client: Client) -> None:
    """Submit the file as jobs (bodies under the server's size limit), wait for all of them
    with a progress bar over items, then write the merged results in input order."""
    from tqdm import tqdm

    rows, fid, started = read_batch(args.batch), args.function_id, time.monotonic()
    jobs = []  # (index of its first row, rows, job id)
    for start, chunk in _batch_jobs(rows):
        items = [{"data": r.text, **({"id": r.external_id} if r.external_id else {})}
                 for r in chunk]
        jobs.append((start, chunk, client.batch_invoke(fid, items, args.capture)["id"]))
    status: dict[str, dict] = {}
    with tqdm(total=len(rows), unit="item", desc="batch invoke", disable=None,
              file=sys.stderr) as bar:
        while len([j for j in status.values() if j["state"] in BATCH_ENDED]) < len(jobs):
            for _, _, job_id in jobs:
                if status.get(job_id, {}).get("state") not in BATCH_ENDED:
                    status[job_id] = client.batch_job(fid, job_id)
            bar.update(sum(j["processed"] for j in status.values()) - bar.n)
            if time.monotonic() - started > args.timeout:
                raise CliError(f"not done after {args.timeout:g} s (the jobs go on: "
                               f"{', '.join(j for _, _, j in jobs)})")
            if len([j for j in status.values() if j["state"] in BATCH_ENDED]) < len(jobs):
                time.sleep(0.5)
    merged: list[dict | None] = [None] * len(rows)
    for start, _, job_id in jobs:
        for line in client.batch_results(fid, job_id):
            merged[start + line["index"]] = {k: v for k, v in line.items() if k != "index"}
    for start, chunk, job_id in jobs:  # items of parts that failed for good have no line
        for i in range(start, start + len(chunk)):
            if merged[i] is None:
                merged[i] = {**({"id": rows[i].external_id} if rows[i].external_id else {}),
                             "error": status[job_id].get("lastError") or "no result"}
    text = "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in merged)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    errors = [(r.line, m["error"]) for r, m in zip(rows, merged, strict=True) if "error" in m]
    report = sys.stdout if args.out else sys.stderr
    print(f"{args.batch}: {len(rows) - len(errors)} classified, {len(errors)} failed "
          f"({len(jobs)} job{'s' if len(jobs) != 1 else ''}, "
          f"{time.monotonic() - started:.1f} s){f' -> {args.out}' if args.out else ''}",
          file=report)
    for line, message in errors[:SHOWN_ERRORS]:
        print(f"  {args.batch}:{line}: {message}", file=report)
    if errors:
        sys.exit(1)


def _batch_jobs(rows: list[Row]) -> list[tuple[int, list[Row]]]:
    """(index of the first row, rows) per job: a body under BATCH_BODY_BYTES, and at most
    BATCH_MAX_ITEMS items."""
    return bounded_chunks(
        rows, lambda r: len(json.dumps({"id": r.external_id, "data": r.text}).encode()) + 2,
        BATCH_MAX_ITEMS, BATCH_BODY_BYTES)


def read_batch(path: Path) -> list[Row]:
    """Rows to classify: .jsonl/.ndjson and .csv as `import` reads them (with `id` for
    `externalId`), anything else one text per non-empty line."""
    if path.suffix.lower() in (".jsonl", ".ndjson", ".csv"):
        return read_samples(path, id_key="id")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as err:
        raise CliError(f"{path}: {err.strerror or err}") from None
    rows = [Row(n, t.strip()) for n, t in enumerate(lines, start=1) if t.strip()]
    if not rows:
        raise CliError(f"{path}: no texts")
    return rows


# -- review, live accuracy, capture policy -------------------------------------------------

def review(args: argparse.Namespace, client: Client) -> None:
    from contextlib import closing

    from labelloop.review_tui import Review, key_entries, line_entries

    labels = client.list_labels(args.function_id)
    if not labels:
        raise CliError(f"{args.function_id} has no labels to review with")
    session = Review(client, args.function_id, labels, args.strategy, args.batch_size,
                     out=lambda line: print(line, flush=True))
    tty = sys.stdin.isatty()
    entries = (key_entries(sys.stdin, typed=len(labels) > 10) if tty
               else line_entries(sys.stdin))
    with closing(entries):  # a terminal is restored even if the API fails meanwhile
        session.run(entries)


def accuracy(args: argparse.Namespace, client: Client) -> None:
    rows = [[f"v{r['modelVersion']}", str(r["annotated"]), _num(r["accuracy"]),
             "{:.3f}-{:.3f}".format(*r["interval95"])]
            for r in sorted(client.live_accuracy(args.function_id),
                            key=lambda r: r["modelVersion"])]
    if not rows:
        print("no live accuracy yet: it comes from annotated random captures. Annotate some:\n"
              f"  labelloop review {args.function_id} --strategy random")
        return
    _print_table(["version", "annotated", "accuracy", "95% interval"], rows)


def capture(args: argparse.Namespace, client: Client) -> None:
    fid = args.function_id
    if args.set or args.near_duplicate_cosine is not None:
        strategies: dict[str, dict] = {}
        for strategy, key, value in args.set:
            strategies.setdefault(strategy, {})[key] = value
        try:
            policy = client.set_capture_policy(fid, strategies, args.near_duplicate_cosine)
        except ApiError as err:
            if err.status != 400:
                raise
            _fail(f"{err.status} {err.message}", status=2)  # a bad value: a usage error
    else:
        policy = client.capture_policy(fid)
    print(f"near-duplicate cosine: {policy['nearDuplicateCosine']:g}")
    rows = [[s["name"], f"{s.get('used', 0)}/{s.get('quota', '?')}",
             " ".join(f"{k}={v}" for k, v in s.items() if k not in ("name", "used", "quota"))]
            for s in policy.get("strategies", [])]
    _print_table(["strategy", "used/quota", "settings"], rows)


def _setting(text: str) -> tuple[str, str, int | float | str]:
    """`strategy.key=value`; the value as an int, else a float, else as written."""
    name, eq, raw = text.partition("=")
    strategy, dot, key = name.strip().partition(".")
    if not (eq and dot and strategy and key):
        raise argparse.ArgumentTypeError(f"{text!r}: expected STRATEGY.KEY=VALUE, "
                                         "e.g. uncertainty.quota=50")
    value: int | float | str = raw.strip()
    for kind in (int, float):
        try:
            number = kind(raw)
        except ValueError:
            continue
        if math.isfinite(number):  # "nan" and "inf" stay text (JSON has no such numbers)
            value = number
        break
    return strategy, key.strip(), value


def _batch_size(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number from 1 to 1000")
    return n


# -- output -------------------------------------------------------------------------------

def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _version(v: int | None) -> str:
    return "-" if v is None else f"v{v}"


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
