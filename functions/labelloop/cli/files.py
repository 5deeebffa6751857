"""The files the commands read: labels (CSV), samples (CSV or JSONL), texts (one per line).
Every row is checked before anything is sent, and a bad one is named by file and line."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from labelloop.cli.errors import CliError
from labelloop.cli.output import SHOWN_ERRORS

# A source checkout's example files (`labelloop demo`, `labelloop local --example`).
EXAMPLES = Path(__file__).resolve().parents[3] / "scripts" / "data"


@dataclass(frozen=True)
class Row:
    line: int
    text: str
    label: str | None = None
    external_id: str | None = None


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


def read_samples(path: Path, id_key: str = "externalId") -> list[Row]:
    """Every row of a CSV or JSONL file. `id_key`: the column or key read as the row's
    external id."""
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


def read_batch(path: Path) -> list[Row]:
    """Rows to classify: .jsonl/.ndjson and .csv as `import` reads them (with `id` for
    `externalId`), anything else one text per non-empty line."""
    if path.suffix.lower() in (".jsonl", ".ndjson", ".csv"):
        return read_samples(path, id_key="id")
    rows = read_lines(path)
    if not rows:
        raise CliError(f"{path}: no texts")
    return rows


def read_lines(path: Path) -> list[Row]:
    """Every non-empty line, stripped."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as err:
        raise CliError(f"{path}: {err.strerror or err}") from None
    return [Row(n, t.strip()) for n, t in enumerate(lines, start=1) if t.strip()]


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
