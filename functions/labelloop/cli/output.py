"""What the commands print their results with."""

from __future__ import annotations

SHOWN_ERRORS = 5  # per report: more would bury the summary line


def num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def version(v: int | None) -> str:
    return "-" if v is None else f"v{v}"


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
