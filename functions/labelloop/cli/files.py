"""The files the commands read: labels (CSV), samples (CSV or JSONL, or a folder of images,
one subfolder per label), texts (one per line). Every row is checked before anything is sent,
and a bad one is named by file and line."""

from __future__ import annotations

import base64
import csv
import json
from dataclasses import dataclass
from pathlib import Path

from labelloop.cli.errors import CliError
from labelloop.cli.output import SHOWN_ERRORS
from labelloop.imaging import sniff

# A source checkout's example files (`labelloop demo`, `labelloop local --example`).
EXAMPLES = Path(__file__).resolve().parents[3] / "scripts" / "data"


@dataclass(frozen=True)
class Row:
    line: int
    text: str
    label: str | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class Picture:
    """An image file of a folder import: read when it is sent, not before."""

    path: Path
    kind: str  # image/<subtype>, from its magic numbers
    label: str | None = None
    external_id: str | None = None  # its path under the folder

    @property
    def where(self) -> str:
        return str(self.path)

    def data_uri(self) -> str:
        return f"data:{self.kind};base64," + base64.b64encode(self.path.read_bytes()).decode()


# What a folder import reads; other files (notes, .DS_Store, …) are listed, not sent.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")


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


def read_pictures(folder: Path) -> tuple[list[Picture], list[Path]]:
    """A folder's images: those in a subfolder are samples of the label the subfolder names,
    those at the top have no annotation. Also the files skipped (not an image by name). A file
    named as an image that holds none stops the import before anything is sent."""
    if not folder.is_dir():
        raise CliError(f"{folder}: no such folder")
    pictures, skipped, bad = [], [], []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        if path.suffix.lower() not in IMAGE_SUFFIXES or any(
                part.startswith(".") for part in rel.parts):
            skipped.append(path)
            continue
        if len(rel.parts) > 2:
            bad.append(f"{path}: one level of subfolders (one per label), found {rel.parent}")
            continue
        try:
            with path.open("rb") as f:
                kind = sniff(f.read(16))
        except OSError as err:
            bad.append(f"{path}: {err.strerror or err}")
            continue
        if kind is None:
            bad.append(f"{path}: not a JPEG, PNG, WebP, GIF or BMP image")
            continue
        label = rel.parts[0] if len(rel.parts) == 2 else None
        pictures.append(Picture(path, f"image/{kind.lower()}", label, rel.as_posix()))
    if bad:
        more = f" (and {len(bad) - SHOWN_ERRORS} more)" if len(bad) > SHOWN_ERRORS else ""
        raise CliError("bad files, nothing imported" + more + ":\n  " +
                       "\n  ".join(bad[:SHOWN_ERRORS]))
    if not pictures:
        raise CliError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in it or its "
                       "subfolders")
    return pictures, skipped


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
